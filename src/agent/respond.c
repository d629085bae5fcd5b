/* The agent's response to a new incident of any kind: the plan comes from
 * respond/response.h (the policy's response, stepped up by the escalation
 * ladder); this carries it out through the store and the kernel, and says
 * what it did. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "ops/ops.h"
#include "respond/response.h"

/* The policy's response bits for incidents of <kind> at <p>. */
static unsigned policy_response(const struct pc_policy *p, const char *kind)
{
        enum pc_abuse k;

        return pc_abuse_from_incident(kind, &k) == 0 ? p->responses[k] : PC_RESP_NOTIFY;
}

unsigned agent_response_bits(const struct pc_vps *vps, const char *kind)
{
        return policy_response(vps->site->policy, kind);
}

struct lifted {
        int64_t since;
        int64_t incidents[16];
        size_t n;
};

static int lifted_cb(const struct pc_store_action *act, void *userdata)
{
        struct lifted *l = userdata;

        if (strcmp(act->kind, "suspension") == 0 && act->lifted_at != 0 && act->lifted_at >= l->since &&
            act->incident_id != 0 && l->n < PC_ARRAY_SIZE(l->incidents))
                l->incidents[l->n++] = act->incident_id;
        return 0;
}

static int kind_cb(const struct pc_incident *i, void *userdata)
{
        snprintf(userdata, PC_NAME_MAX, "%s", i->kind);
        return 0;
}

/* What the circumvention rule needs of <vps_id>'s past: its suspensions
 * for incidents of <kind>, lifted within escalation.memory before <now>.
 * If the store cannot say, none, logged. */
static size_t lifted_suspensions(struct agent *a, const char *vps_id, const char *kind, int64_t now)
{
        struct lifted l = { .since = now - a->cfg->escalation.memory };
        size_t n = 0;

        if (pc_store_action_list(a->store, vps_id, 0, false, now, 0, lifted_cb, &l) < 0) {
                agent_log("Failed to read %s's lifted suspensions, not counting them: %s", vps_id,
                          pc_store_errmsg(a->store));
                return 0;
        }
        for (size_t i = 0; i < l.n; i++) {
                char k[PC_NAME_MAX] = "";

                if (pc_store_incident_get(a->store, l.incidents[i], kind_cb, k) == 0 && strcmp(k, kind) == 0)
                        n++;
        }
        return n;
}

/* The plan for incident <incident> of <kind> by <vps_id> at <now>: the
 * earlier incidents of the kind within escalation.memory decide the
 * ladder's step.  If the store cannot say, the first step, logged. */
static struct pc_response_plan plan(struct agent *a, unsigned resp, const char *vps_id, const char *kind,
                                    int64_t incident, int64_t now)
{
        const struct pc_escalation *e = &a->cfg->escalation;
        int64_t earlier[PC_ESCALATION_STEPS_MAX];
        size_t n = 0;

        if (pc_response_uses_ladder(resp) &&
            pc_store_incident_times(a->store, vps_id, kind, now - e->memory, incident, earlier,
                                    PC_ARRAY_SIZE(earlier), &n) < 0) {
                agent_log("Failed to read %s's earlier %s incidents, taking the ladder's first step: %s", vps_id,
                          kind, pc_store_errmsg(a->store));
                n = 0;
        }
        /* An attacked VPS is a victim: its filter never climbs the ladder. */
        return pc_response_decide(resp, e, earlier, n, now, strcmp(kind, "attacked") == 0);
}

int agent_incident(struct agent *a, const struct pc_vps *vps, const char *kind, uint64_t count,
                   const char *evidence, int64_t gap, int64_t *ret_id)
{
        /* A suspension or filter tells the owner itself; a notify-only
         * response is a notice, queued with the incident. */
        unsigned resp = policy_response(vps->site->policy, kind);
        bool wanted = (resp & PC_RESP_NOTIFY) &&
                      !(resp & (PC_RESP_SUSPEND | PC_RESP_OUTBOUND_FILTER | PC_RESP_INBOUND_FILTER));
        bool notice = wanted && notifier_incident_notice_due(a, vps->id, kind), opened;
        int64_t id;

        if (pc_store_incident_note(a->store, vps->id, kind, count, pc_now(), evidence, gap, &id, &opened,
                                   notice ? PC_INCIDENT_NOTICE : 0) < 0) {
                /* The database is away: the journal keeps it (id 0). */
                if (!pc_store_connected(a->store)) {
                        int r = agent_offline_note(a, vps, kind, count, evidence, gap);

                        *ret_id = 0;
                        return r == -ENOSPC ? 1 : r; /* not kept, but answered in the kernel */
                }
                agent_log("Failed to record %s by %s: %s", kind, vps->id, pc_store_errmsg(a->store));
                return -EIO;
        }
        *ret_id = id;
        if (!opened)
                return 0;
        if (wanted)
                notifier_incident_opened(a, vps->id, kind, notice, pc_now());
        *ret_id = id;
        return 1;
}

/* A detector's findings about one VPS come in bursts: a scanner at a
 * site that only records it is found again every few failures, a flood is
 * sampled twice a second.  Writing each to the store (a commit, an fsync)
 * would stall the event loop and lose the very events that follow.  So
 * within NOTE_COALESCE_S of the last note of (<vps_id>, <kind>) that
 * reached the store, with nothing changed since (a lifted filter closes
 * the incident: a change), a note is of the same open episode for sure,
 * and its count waits here (true: nothing to write).  The next note that
 * reaches the store carries the counts that waited (*<count> is raised). */
#define NOTE_COALESCE_S 5

/* The note of (<vps_id>, <kind>), or the slot to take for it: a free
 * one, else the oldest (AGENT_NOTES at once is a storm: what waited on
 * the oldest is lost to its incident's count, nothing else). */
static struct agent_note *note_slot(struct agent *a, const char *vps_id, const char *kind)
{
        struct agent_note *oldest = &a->notes[0];

        for (size_t i = 0; i < AGENT_NOTES; i++) {
                struct agent_note *n = &a->notes[i];

                if (n->when != 0 && strcmp(n->vps, vps_id) == 0 && strcmp(n->kind, kind) == 0)
                        return n;
                if (n->when < oldest->when)
                        oldest = n;
        }
        return oldest;
}

static bool coalesced(struct agent *a, const char *vps_id, const char *kind, uint64_t *count)
{
        struct agent_note *n = note_slot(a, vps_id, kind);
        int64_t now = pc_now();
        bool same = n->when != 0 && strcmp(n->vps, vps_id) == 0 && strcmp(n->kind, kind) == 0;

        if (same && n->changes == a->changes && now - n->when < NOTE_COALESCE_S) {
                n->count += *count;
                return true;
        }
        if (same)
                *count += n->count;
        snprintf(n->vps, sizeof(n->vps), "%s", vps_id);
        snprintf(n->kind, sizeof(n->kind), "%s", kind);
        n->when = now > 0 ? now : 1;
        n->changes = a->changes;
        n->count = 0;
        return false;
}

int agent_abuse(struct agent *a, struct pc_vps *vps, const char *kind, uint64_t count, const char *evidence,
                int64_t gap, const char *what, const struct pc_port_range *ports)
{
        struct timespec t;
        int64_t id;
        int r;

        if (coalesced(a, vps->id, kind, &count))
                return 0;
        clock_gettime(CLOCK_MONOTONIC, &t);
        r = agent_incident(a, vps, kind, count, evidence, gap, &id);
        if (r <= 0)
                return r;
        agent_log("%s: %s: incident #%" PRId64, vps->id, what, id);
        r = agent_respond(a, vps, kind, id, what, ports, t.tv_sec * 1000000000LL + t.tv_nsec);
        return r < 0 ? r : 1;
}

int agent_respond(struct agent *a, struct pc_vps *vps, const char *kind, int64_t incident, const char *what,
                  const struct pc_port_range *ports, int64_t first_ns)
{
        return agent_respond_episode(a, vps, kind, incident, what, ports, first_ns, 1);
}

int agent_respond_episode(struct agent *a, struct pc_vps *vps, const char *kind, int64_t incident,
                          const char *what, const struct pc_port_range *ports, int64_t first_ns,
                          size_t episode_kinds)
{
        unsigned resp = policy_response(vps->site->policy, kind);
        char reason[384], id[PC_NAME_MAX], step[128], len[32] = "", kind_copy[16];
        /* The response engine acts through the operations, as the agent. */
        struct pc_ops o = { .cfg = a->cfg, .store = a->store };
        const struct pc_ops_actor who = { .principal = "portcullisd", .role = PC_ROLE_AGENT };
        struct pc_ops_error err = { 0 };
        int64_t action = 0, now = pc_now();
        struct pc_response_plan p;
        struct timespec t;
        json_t *reply;
        int r = 0;

        if (incident == 0) /* in the journal: the database is away */
                return agent_offline_respond(a, vps, kind, what, ports, episode_kinds);
        snprintf(id, sizeof(id), "%s", vps->id); /* vps is replaced by the sync below */
        snprintf(kind_copy, sizeof(kind_copy), "%s", kind);
        p = plan(a, resp, id, kind_copy, incident, now);
        if (resp & PC_RESP_TERMINATE) {
                struct pc_response_history h = { .episode_kinds = episode_kinds };

                if (p.kind == PC_RESPONSE_SUSPEND || p.kind == PC_RESPONSE_FILTER)
                        h.lifted_suspensions = lifted_suspensions(a, id, kind_copy, now);
                p = pc_response_circumvent(p, resp, &h, strcmp(kind_copy, "attacked") == 0);
        }
        pc_response_step_text(&p, &a->cfg->escalation, step, sizeof(step));
        if (p.until != 0)
                pc_format_duration(p.until - now, len, sizeof(len));
        if (p.kind == PC_RESPONSE_TERMINATE)
                snprintf(reason, sizeof(reason), "%s (incident #%" PRId64 "%s; %s)", what, incident, step,
                         pc_circumvention_text(p.why));
        else
                snprintf(reason, sizeof(reason), "%s (incident #%" PRId64 "%s)", what, incident, step);
        switch (p.kind) {
        case PC_RESPONSE_RECORD:
        case PC_RESPONSE_NOTICE:
                agent_log("%s: incident #%" PRId64 " recorded; policy %s answers %s with %s", id, incident,
                          vps->site->policy->name, kind_copy,
                          p.kind == PC_RESPONSE_NOTICE ? "a notice to the owner" : "no action");
                return 0; /* the notice, if any, was queued with the incident */
        case PC_RESPONSE_TERMINATE:
                r = pc_ops_terminate(&o, &who, id, incident, pc_circumvention_text(p.why), reason, &action, &err);
                if (r == -EALREADY) {
                        agent_log("%s: incident #%" PRId64 " recorded; already terminated", id, incident);
                        return 0;
                }
                break;
        case PC_RESPONSE_SUSPEND:
                /* (A suspension the journal placed is not the store's yet.) */
                if (vps->suspended && vps->suspension.id != 0) {
                        agent_log("%s: incident #%" PRId64 " recorded; already suspended", id, incident);
                        return 0;
                }
                r = pc_ops_suspend(&o, &who, id, incident, reason, &action, &err);
                break;
        case PC_RESPONSE_FILTER: {
                struct pc_filter f = { .scope = PC_SCOPE_ALL, .incident_id = incident, .direction = p.direction,
                                       .until = p.until };

                if (ports != NULL) {
                        f.scope = PC_SCOPE_PORTS;
                        f.ports = *ports;
                }

                r = pc_ops_filter_place(&o, &who, id, &f, reason, &action, &err);
                break;
        }
        }
        if (r < 0) {
                agent_log("Failed to act on %s's %s (incident #%" PRId64 "): %s", id, kind_copy, incident,
                          err.message);
                return r;
        }
        reply = json_object();
        r = agent_sync_vps(a, id, reply);
        json_decref(reply);
        if (r < 0)
                return r;
        clock_gettime(CLOCK_MONOTONIC, &t);
        /* Enforced at the kernel's commit; ending the VPS's flows came after. */
        agent_log("%s %s%s%s%s for %s (incident #%" PRId64 ", %s #%" PRId64 "%s), in the kernel %.1f ms after "
                  "the first evidence reached the agent (its flows ended after %.1f ms); the owner's email is "
                  "queued",
                  p.kind == PC_RESPONSE_TERMINATE ? "Terminated"
                  : p.kind == PC_RESPONSE_SUSPEND ? "Suspended"
                                                  : "Filtered",
                  id, len[0] != '\0' ? " (" : "", len, len[0] != '\0' ? ")" : "", kind_copy, incident,
                  p.kind == PC_RESPONSE_FILTER ? "filter" : "suspension", action, step,
                  (a->last_enforced_ns - first_ns) / 1e6, (t.tv_sec * 1e9 + t.tv_nsec - first_ns) / 1e6);
        return 0;
}
