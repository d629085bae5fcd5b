/* The response to a new incident (see response.h for the rule). */
#include "respond/response.h"

#include <stdio.h>

#include "base/util.h"

#define FILTERS (PC_RESP_OUTBOUND_FILTER | PC_RESP_INBOUND_FILTER)

bool pc_response_uses_ladder(unsigned resp)
{
        return (resp & FILTERS) && !(resp & PC_RESP_SUSPEND);
}

struct pc_response_plan pc_response_decide(unsigned resp, const struct pc_escalation *e, const int64_t *earlier,
                                           size_t n_earlier, int64_t now, bool victim)
{
        struct pc_response_plan r = { .kind = PC_RESPONSE_RECORD, .step = { .kind = PC_LADDER_NONE, .repeat = 1 } };

        if (resp & PC_RESP_SUSPEND) {
                r.kind = PC_RESPONSE_SUSPEND;
                return r;
        }
        if (!(resp & FILTERS)) {
                if (resp & PC_RESP_NOTIFY)
                        r.kind = PC_RESPONSE_NOTICE;
                return r;
        }
        r.step = pc_ladder_step(e, victim ? NULL : earlier, victim ? 0 : n_earlier, now);
        if (victim && (r.step.kind == PC_LADDER_SUSPEND || r.step.kind == PC_LADDER_TERMINATE)) {
                r.step.kind = PC_LADDER_FILTER;
                r.step.seconds = PC_RESPONSE_VICTIM_FILTER;
        }
        if (r.step.kind == PC_LADDER_SUSPEND) {
                r.kind = PC_RESPONSE_SUSPEND;
                return r;
        }
        if (r.step.kind == PC_LADDER_TERMINATE) {
                r.kind = PC_RESPONSE_TERMINATE;
                r.why = PC_CIRCUMVENT_LADDER;
                return r;
        }
        r.kind = PC_RESPONSE_FILTER;
        r.direction = (resp & PC_RESP_OUTBOUND_FILTER ? PC_DIR_EGRESS : 0) |
                      (resp & PC_RESP_INBOUND_FILTER ? PC_DIR_INGRESS : 0);
        r.until = r.step.kind == PC_LADDER_FILTER ? now + r.step.seconds : 0;
        return r;
}

const char *pc_response_step_text(const struct pc_response_plan *r, const struct pc_escalation *e, char *buf,
                                  size_t sz)
{
        char nth[16], mem[32], len[32];

        if (r->step.kind == PC_LADDER_NONE) {
                snprintf(buf, sz, "%s", "");
                return buf;
        }
        pc_format_duration(e->memory, mem, sizeof(mem));
        if (r->step.kind == PC_LADDER_FILTER)
                pc_format_duration(r->step.seconds, len, sizeof(len));
        snprintf(buf, sz, "; the %s within %s: step %zu of %zu, %s", pc_ladder_ordinal(r->step.repeat, nth, sizeof(nth)),
                 mem, r->step.index + 1, e->n_steps,
                 r->step.kind == PC_LADDER_SUSPEND     ? "suspend"
                 : r->step.kind == PC_LADDER_TERMINATE ? "terminate"
                                                       : len);
        return buf;
}

struct pc_response_plan pc_response_circumvent(struct pc_response_plan p, unsigned resp,
                                               const struct pc_response_history *h, bool victim)
{
        enum pc_circumvention why = PC_CIRCUMVENT_NONE;

        if (victim || h == NULL || !(resp & PC_RESP_TERMINATE) || p.kind == PC_RESPONSE_RECORD ||
            p.kind == PC_RESPONSE_NOTICE || p.kind == PC_RESPONSE_TERMINATE)
                return p;
        if (h->lifted_suspensions > 0)
                why = PC_CIRCUMVENT_AFTER_LIFT;
        else if (h->episode_kinds >= PC_RESPONSE_CIRCUMVENT_KINDS)
                why = PC_CIRCUMVENT_KINDS;
        if (why == PC_CIRCUMVENT_NONE)
                return p;
        p.kind = PC_RESPONSE_TERMINATE;
        p.why = why;
        p.direction = 0;
        p.until = 0;
        return p;
}

const char *pc_circumvention_text(enum pc_circumvention why)
{
        switch (why) {
        case PC_CIRCUMVENT_AFTER_LIFT:
                return "an attempt to circumvent: again after a suspension for it was lifted";
        case PC_CIRCUMVENT_KINDS:
                return "an attempt to circumvent: several kinds in one episode";
        case PC_CIRCUMVENT_LADDER:
                return "the escalation ladder's last step";
        case PC_CIRCUMVENT_NONE:
                break;
        }
        return "";
}
