/* The escalation ladder: which step a new incident gets.
 *
 * A pure function of the config's escalation (memory, steps) and the
 * times of the VPS's earlier incidents of the same kind: no store, no
 * clock of its own (<now> is passed in), no logging.  The rule, once:
 *   - an earlier incident counts if it began within <memory> seconds
 *     before <now>, boundary included (one that began exactly <memory>
 *     seconds ago still counts; one a second older does not); one stamped
 *     after <now> (a clock set back) counts too;
 *   - the n-th incident (n - 1 counting earlier ones) gets step n; past
 *     the last step, the last step repeats;
 *   - a step is a filter of so many seconds, PC_ESCALATION_SUSPEND or
 *     PC_ESCALATION_TERMINATE;
 *   - no steps at all: PC_LADDER_NONE (the caller keeps its own default). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "policy/config.h"

enum pc_ladder_kind {
        PC_LADDER_NONE,    /* the escalation has no steps */
        PC_LADDER_FILTER,  /* a filter for <seconds> */
        PC_LADDER_SUSPEND, /* suspend the VPS */
        PC_LADDER_TERMINATE, /* terminate it: a suspension only an admin lifts */
};

struct pc_ladder_step {
        enum pc_ladder_kind kind;
        size_t repeat;   /* 1 for a first incident, 2 for the second within the memory... */
        size_t index;    /* the step taken, from 0 (0 with PC_LADDER_NONE) */
        int64_t seconds; /* PC_LADDER_FILTER: the filter's length */
};

/* The step for a new incident at <now>, given the escalation <e> and the
 * start times <earlier> (<n_earlier> of them, any order; NULL if none) of
 * the same VPS's earlier incidents of the same kind, the new one not among
 * them.  Total: any input gives a step. */
struct pc_ladder_step pc_ladder_step(const struct pc_escalation *e, const int64_t *earlier, size_t n_earlier,
                                     int64_t now);

/* "1st", "2nd", "3rd", "4th"... of <n> into <buf> (size <sz>); returns <buf>. */
const char *pc_ladder_ordinal(size_t n, char *buf, size_t sz);
