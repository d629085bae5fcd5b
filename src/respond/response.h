/* What the agent does about a new incident: the site policy's response to
 * the incident's kind, stepped up by the escalation ladder.
 *
 * Pure, like ladder.h: the policy's response bits, the config's escalation
 * and the start times of the VPS's earlier incidents of the same kind go
 * in; a plan comes out.  The rule, once:
 *   - a policy that suspends suspends;
 *   - one that filters (outbound, inbound or both) takes the ladder's step:
 *     a filter of the step's length in the policy's directions, or a
 *     suspension at a 'suspend' step; with no ladder at all, a filter
 *     until an admin lifts it;
 *   - one that only notifies sends a notice; one with no response records;
 *   - a <victim>'s incident (the VPS is attacked: not its doing) never
 *     climbs: it always gets the first step, and a filter of
 *     PC_RESPONSE_VICTIM_FILTER seconds where that step would suspend
 *     or terminate;
 *   - a ladder step 'terminate' terminates (a suspension only an admin
 *     lifts).
 *
 * Circumvention (pc_response_circumvent), applied to the plan after: a
 * policy that lists 'terminate' with its response terminates, instead of
 * what the plan says, an incident that is an attempt to circumvent the
 * response:
 *   - the VPS does it again after a suspension for an incident of the
 *     same kind was lifted (within the escalation's memory), or
 *   - one episode shows PC_RESPONSE_CIRCUMVENT_KINDS or more different
 *     kinds of the abuse (spoofing: a forged source, then a forged MAC,
 *     then ARP claims: trying one protection after another).
 * A victim's incident is never a circumvention. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/config.h"
#include "respond/ladder.h"

#define PC_RESPONSE_VICTIM_FILTER 3600
#define PC_RESPONSE_CIRCUMVENT_KINDS 2 /* kinds in one episode that make it a circumvention */

enum pc_response_kind {
        PC_RESPONSE_RECORD,  /* the incident is recorded, nothing more */
        PC_RESPONSE_NOTICE,  /* ... and the owner is told (queued with the incident) */
        PC_RESPONSE_FILTER,  /* a filter: <direction>, until <until> (0: until lifted) */
        PC_RESPONSE_SUSPEND, /* the VPS is suspended */
        PC_RESPONSE_TERMINATE, /* ... for good: only an admin lifts it */
};

/* Why an incident is a circumvention (PC_CIRCUMVENT_NONE: it is not). */
enum pc_circumvention {
        PC_CIRCUMVENT_NONE,
        PC_CIRCUMVENT_AFTER_LIFT, /* again, after a suspension for the same kind was lifted */
        PC_CIRCUMVENT_KINDS,      /* several kinds of the abuse in one episode */
        PC_CIRCUMVENT_LADDER,     /* not a circumvention: the ladder's 'terminate' step */
};

/* What the response engine knows of a VPS's past, for the circumvention
 * rule; the caller reads it from the store. */
struct pc_response_history {
        size_t lifted_suspensions; /* suspensions for incidents of the kind, lifted within the memory */
        size_t episode_kinds;      /* different kinds of the abuse in this episode (spoof: ipv4, mac, arp...) */
};

struct pc_response_plan {
        enum pc_response_kind kind;
        unsigned direction;        /* PC_DIR_* bits of a filter */
        int64_t until;             /* a filter's end; 0 if it has none */
        struct pc_ladder_step step; /* the ladder's step taken (PC_LADDER_NONE if none was) */
        enum pc_circumvention why;  /* PC_RESPONSE_TERMINATE: why */
};

/* True if <resp> (enum pc_response bits of a policy) climbs the ladder:
 * only then are the earlier incidents worth reading. */
bool pc_response_uses_ladder(unsigned resp);

/* The plan for a new incident at <now>, for a policy answering its kind
 * with <resp>, under escalation <e>, given the start times <earlier>
 * (<n_earlier>, NULL if none) of the VPS's earlier incidents of the kind. */
struct pc_response_plan pc_response_decide(unsigned resp, const struct pc_escalation *e, const int64_t *earlier,
                                           size_t n_earlier, int64_t now, bool victim);

/* <p>, the plan for an incident by a policy answering with <resp>, made
 * a termination if the incident is a circumvention given <h> (NULL:
 * nothing known) and <victim> (see the rule above); <p> as it was
 * otherwise.  A plan that only records or notifies is never raised: a
 * policy that does not act has nothing to circumvent. */
struct pc_response_plan pc_response_circumvent(struct pc_response_plan p, unsigned resp,
                                               const struct pc_response_history *h, bool victim);

/* "again after its suspension was lifted" ... for <why>; "" for NONE. */
const char *pc_circumvention_text(enum pc_circumvention why);

/* " (the 2nd within 30d: step 2 of 3, 24h)" for <r>'s ladder step under
 * <e>, or "" if none was taken, into <buf> (size <sz>); returns <buf>. */
const char *pc_response_step_text(const struct pc_response_plan *r, const struct pc_escalation *e, char *buf,
                                  size_t sz);
