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
 * for incidents of <kind>, lifted within <memory> before <now>.  If the
 * store cannot say, none (*<failed>, to log). */
static size_t lifted_suspensions(struct pc_store *store, const char *vps_id, const char *kind, int64_t memory,
                                 int64_t now, bool *failed)
{
        struct lifted l = { .since = now - memory };
        size_t n = 0;

        if (pc_store_action_list(store, vps_id, 0, false, now, 0, lifted_cb, &l) < 0) {
                *failed = true;
                return 0;
        }
        for (size_t i = 0; i < l.n; i++) {
                char k[PC_NAME_MAX] = "";

                if (pc_store_incident_get(store, l.incidents[i], kind_cb, k) == 0 && strcmp(k, kind) == 0)
                        n++;
        }
        return n;
}

/* The plan for incident <incident> of <kind> by <vps_id> at <now>: the
 * earlier incidents of the kind within escalation.memory decide the
 * ladder's step.  If the store cannot say, the first step (*<failed>). */
static struct pc_response_plan plan(struct pc_store *store, const struct pc_config *cfg, unsigned resp,
                                    const char *vps_id, const char *kind, int64_t incident, int64_t now,
                                    bool *failed)
{
        const struct pc_escalation *e = &cfg->escalation;
        int64_t earlier[PC_ESCALATION_STEPS_MAX];
        size_t n = 0;

        if (pc_response_uses_ladder(resp) &&
            pc_store_incident_times(store, vps_id, kind, now - e->memory, incident, earlier,
                                    PC_ARRAY_SIZE(earlier), &n) < 0) {
                *failed = true;
                n = 0;
        }
        /* An attacked VPS is a victim: its filter never climbs the ladder. */
        return pc_response_decide(resp, e, earlier, n, now, strcmp(kind, "attacked") == 0);
}

/* A finding on its way to the store (agent_incident): what the thread
 * needs of it, copied, and what it gave. */
struct noting {
        char vps[PC_NAME_MAX];
        char kind[16];
        uint64_t count;
        char *evidence;
        int64_t gap, at;
        bool wanted, notice;
        agent_noted_fn then;
        void *then_arg;
        int64_t id;                   /* from the store */
        bool opened;
};

static int noting_run(struct pc_store *store, const struct pc_config *cfg, void *arg)
{
        struct noting *n = arg;

        (void)cfg;
        return pc_store_incident_note(store, n->vps, n->kind, n->count, n->at, n->evidence, n->gap, &n->id,
                                      &n->opened, n->notice ? PC_INCIDENT_NOTICE : 0);
}

/* The store did not take it (<why>; <away>: the database does not answer,
 * the journal keeps it). */
static int noting_failed(struct agent *a, struct noting *n, bool away, const char *why)
{
        struct pc_vps *vps = pc_model_find(a->model, n->vps);
        int r;

        if (!away) {
                agent_log("Failed to record %s by %s: %s", n->kind, n->vps, why);
                return -EIO;
        }
        if (vps == NULL) /* removed meanwhile: nothing of it to answer */
                return 0;
        r = agent_offline_note(a, vps, n->kind, n->count, n->evidence, n->gap);
        return r == -ENOSPC ? 1 : r; /* not kept, but answered in the kernel */
}

static void noting_done(struct agent *a, void *arg, const struct agent_db_result *res)
{
        struct noting *n = arg;
        int r;

        if (res->r < 0) {
                n->id = 0;
                r = noting_failed(a, n, res->away, res->err);
        } else {
                r = n->opened ? 1 : 0;
                if (n->opened && n->wanted)
                        notifier_incident_opened(a, n->vps, n->kind, n->notice, n->at);
        }
        if (n->then != NULL)
                n->then(a, r, n->id, n->then_arg);
        free(n->evidence);
        free(n);
}

int agent_incident(struct agent *a, const struct pc_vps *vps, const char *kind, uint64_t count,
                   const char *evidence, int64_t gap, agent_noted_fn then, void *then_arg)
{
        return agent_incident_at(a, vps, kind, count, pc_now(), evidence, gap, then, then_arg);
}

int agent_incident_at(struct agent *a, const struct pc_vps *vps, const char *kind, uint64_t count, int64_t at,
                      const char *evidence, int64_t gap, agent_noted_fn then, void *then_arg)
{
        /* A suspension or filter tells the owner itself; a notify-only
         * response is a notice, queued with the incident. */
        unsigned resp = policy_response(vps->site->policy, kind);
        struct noting *n = calloc(1, sizeof(*n));
        int r;

        if (n == NULL || (evidence != NULL && (n->evidence = strdup(evidence)) == NULL)) {
                free(n);
                agent_log("Failed to record %s by %s: out of memory", kind, vps->id);
                return -ENOMEM;
        }
        snprintf(n->vps, sizeof(n->vps), "%s", vps->id);
        snprintf(n->kind, sizeof(n->kind), "%s", kind);
        n->count = count;
        n->gap = gap;
        n->at = at;
        n->wanted = (resp & PC_RESP_NOTIFY) &&
                    !(resp & (PC_RESP_SUSPEND | PC_RESP_OUTBOUND_FILTER | PC_RESP_INBOUND_FILTER));
        n->notice = n->wanted && notifier_incident_notice_due(a, vps->id, kind);
        n->then = then;
        n->then_arg = then_arg;
        r = agent_db_submit(a, noting_run, noting_done, n);
        if (r < 0) {
                /* So many wait on a database that hangs: the journal's. */
                r = noting_failed(a, n, true, "the database thread is full");
                if (then != NULL)
                        then(a, r, 0, then_arg);
                free(n->evidence);
                free(n);
        }
        return 0;
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

/* A detector's finding (agent_abuse) once noted: a new incident is
 * logged and answered. */
struct abuse {
        char vps[PC_NAME_MAX];
        char kind[16];
        char what[512];
        bool has_ports;
        struct pc_port_range ports;
        int64_t first_ns;
        agent_answered_fn answered;
};

static void abuse_noted(struct agent *a, int r, int64_t id, void *arg)
{
        struct abuse *b = arg;
        struct pc_vps *vps = pc_model_find(a->model, b->vps);

        if (r > 0 && vps != NULL) {
                agent_log("%s: %s: incident #%" PRId64, b->vps, b->what, id);
                agent_respond_episode(a, vps, b->kind, id, b->what, b->has_ports ? &b->ports : NULL, b->first_ns,
                                      1, b->answered);
        }
        free(b);
}

int agent_abuse(struct agent *a, struct pc_vps *vps, const char *kind, uint64_t count, const char *evidence,
                int64_t gap, const char *what, const struct pc_port_range *ports, agent_answered_fn answered)
{
        struct timespec t;
        struct abuse *b;

        if (coalesced(a, vps->id, kind, &count))
                return 0;
        b = calloc(1, sizeof(*b));
        if (b == NULL)
                return -ENOMEM;
        clock_gettime(CLOCK_MONOTONIC, &t);
        snprintf(b->vps, sizeof(b->vps), "%s", vps->id);
        snprintf(b->kind, sizeof(b->kind), "%s", kind);
        snprintf(b->what, sizeof(b->what), "%s", what);
        if (ports != NULL) {
                b->has_ports = true;
                b->ports = *ports;
        }
        b->first_ns = t.tv_sec * 1000000000LL + t.tv_nsec;
        b->answered = answered;
        return agent_incident(a, vps, kind, count, evidence, gap, abuse_noted, b);
}

/* A response on its way (agent_respond_episode): what the thread needs,
 * copied, and what it did. */
struct agent_response {
        char vps[PC_NAME_MAX];
        char kind[16];
        char what[512];
        char policy[PC_NAME_MAX];
        unsigned resp;
        int64_t incident, first_ns, now;
        size_t episode_kinds;
        bool has_ports;
        struct pc_port_range ports;
        bool suspended;               /* by the store already (a journal's is not) */
        agent_answered_fn answered;
        /* the thread's */
        struct pc_response_plan p;
        bool plan_failed, history_failed, already;
        char reason[384], step[128], len[32];
        int64_t action;
        struct pc_ops_error err;
        struct pc_vps *fresh;
        int fetched;
        bool ran;                     /* (a replay's: its incident was opened) */
};

static int response_run(struct pc_store *store, const struct pc_config *cfg, void *arg)
{
        struct agent_response *x = arg;
        /* The response engine acts through the operations, as the agent. */
        struct pc_ops o = { .cfg = cfg, .store = store };
        const struct pc_ops_actor who = { .principal = "portcullisd", .role = PC_ROLE_AGENT };
        int r = 0;

        x->p = plan(store, cfg, x->resp, x->vps, x->kind, x->incident, x->now, &x->plan_failed);
        if (x->resp & PC_RESP_TERMINATE) {
                struct pc_response_history h = { .episode_kinds = x->episode_kinds };

                if (x->p.kind == PC_RESPONSE_SUSPEND || x->p.kind == PC_RESPONSE_FILTER)
                        h.lifted_suspensions = lifted_suspensions(store, x->vps, x->kind, cfg->escalation.memory,
                                                                  x->now, &x->history_failed);
                x->p = pc_response_circumvent(x->p, x->resp, &h, strcmp(x->kind, "attacked") == 0);
        }
        pc_response_step_text(&x->p, &cfg->escalation, x->step, sizeof(x->step));
        if (x->p.until != 0)
                pc_format_duration(x->p.until - x->now, x->len, sizeof(x->len));
        if (x->p.kind == PC_RESPONSE_TERMINATE)
                snprintf(x->reason, sizeof(x->reason), "%s (incident #%" PRId64 "%s; %s)", x->what, x->incident,
                         x->step, pc_circumvention_text(x->p.why));
        else
                snprintf(x->reason, sizeof(x->reason), "%s (incident #%" PRId64 "%s)", x->what, x->incident,
                         x->step);
        switch (x->p.kind) {
        case PC_RESPONSE_RECORD:
        case PC_RESPONSE_NOTICE:
                return 0; /* the notice, if any, was queued with the incident */
        case PC_RESPONSE_TERMINATE:
                r = pc_ops_terminate(&o, &who, x->vps, x->incident, pc_circumvention_text(x->p.why), x->reason,
                                     &x->action, &x->err);
                if (r == -EALREADY) {
                        x->already = true;
                        return 0;
                }
                break;
        case PC_RESPONSE_SUSPEND:
                if (x->suspended) {
                        x->already = true;
                        return 0;
                }
                r = pc_ops_suspend(&o, &who, x->vps, x->incident, x->reason, &x->action, &x->err);
                break;
        case PC_RESPONSE_FILTER: {
                struct pc_filter f = { .scope = PC_SCOPE_ALL, .incident_id = x->incident,
                                       .direction = x->p.direction, .until = x->p.until };

                if (x->has_ports) {
                        f.scope = PC_SCOPE_PORTS;
                        f.ports = x->ports;
                }
                r = pc_ops_filter_place(&o, &who, x->vps, &f, x->reason, &x->action, &x->err);
                break;
        }
        }
        if (r < 0)
                return r;
        /* What the kernel is to enforce now, read back here too. */
        x->fetched = pc_store_vps_fetch(store, cfg, x->vps, &x->fresh);
        return 0;
}

static void response_done(struct agent *a, void *arg, const struct agent_db_result *res)
{
        struct agent_response *x = arg;
        struct pc_vps *vps = pc_model_find(a->model, x->vps);
        struct timespec t;
        json_t *reply;
        int r;

        if (x->plan_failed)
                agent_log("Failed to read %s's earlier %s incidents, took the ladder's first step", x->vps, x->kind);
        if (x->history_failed)
                agent_log("Failed to read %s's lifted suspensions, did not count them", x->vps);
        if (res->r < 0) {
                agent_log("Failed to act on %s's %s (incident #%" PRId64 "): %s", x->vps, x->kind, x->incident,
                          x->err.message[0] != '\0' ? x->err.message : res->err);
                /* The database went away under it: held back in the kernel
                 * meanwhile, as a finding it never heard of would be. */
                if (res->away && vps != NULL)
                        agent_offline_respond(a, vps, x->kind, x->what, x->has_ports ? &x->ports : NULL,
                                              x->episode_kinds);
                goto out;
        }
        if (x->p.kind == PC_RESPONSE_RECORD || x->p.kind == PC_RESPONSE_NOTICE) {
                agent_log("%s: incident #%" PRId64 " recorded; policy %s answers %s with %s", x->vps, x->incident,
                          x->policy, x->kind, x->p.kind == PC_RESPONSE_NOTICE ? "a notice to the owner" : "no action");
                goto out;
        }
        if (x->already) {
                agent_log("%s: incident #%" PRId64 " recorded; already %s", x->vps, x->incident,
                          x->p.kind == PC_RESPONSE_TERMINATE ? "terminated" : "suspended");
                goto out;
        }
        reply = json_object();
        r = agent_sync_vps_apply(a, x->vps, x->fetched, x->fresh, x->fetched < 0 ? res->err : NULL, NULL, false,
                                 reply);
        x->fresh = NULL; /* taken */
        json_decref(reply);
        if (r < 0)
                goto out;
        clock_gettime(CLOCK_MONOTONIC, &t);
        /* Enforced at the kernel's commit; ending the VPS's flows came after. */
        agent_log("%s %s%s%s%s for %s (incident #%" PRId64 ", %s #%" PRId64 "%s), in the kernel %.1f ms after "
                  "the first evidence reached the agent (its flows ended after %.1f ms); the owner's email is "
                  "queued",
                  x->p.kind == PC_RESPONSE_TERMINATE ? "Terminated"
                  : x->p.kind == PC_RESPONSE_SUSPEND ? "Suspended"
                                                     : "Filtered",
                  x->vps, x->len[0] != '\0' ? " (" : "", x->len, x->len[0] != '\0' ? ")" : "", x->kind, x->incident,
                  x->p.kind == PC_RESPONSE_FILTER ? "filter" : "suspension", x->action, x->step,
                  (a->last_enforced_ns - x->first_ns) / 1e6, (t.tv_sec * 1e9 + t.tv_nsec - x->first_ns) / 1e6);
        if (x->answered != NULL)
                x->answered(a, x->vps);
out:
        pc_vps_free(x->fresh);
        free(x);
}

/* The response to <vps>'s <kind> as the thread is to decide it (its
 * incident still 0), or NULL (out of memory). */
static struct agent_response *response_new(struct pc_vps *vps, const char *kind, const char *what,
                                           const struct pc_port_range *ports, int64_t first_ns,
                                           size_t episode_kinds, agent_answered_fn answered)
{
        struct agent_response *x = calloc(1, sizeof(*x));

        if (x == NULL)
                return NULL;
        snprintf(x->vps, sizeof(x->vps), "%s", vps->id);
        snprintf(x->kind, sizeof(x->kind), "%s", kind);
        snprintf(x->what, sizeof(x->what), "%s", what);
        snprintf(x->policy, sizeof(x->policy), "%s", vps->site->policy->name);
        x->resp = policy_response(vps->site->policy, kind);
        x->first_ns = first_ns;
        x->now = pc_now();
        x->episode_kinds = episode_kinds;
        if (ports != NULL) {
                x->has_ports = true;
                x->ports = *ports;
        }
        /* (A suspension the journal placed is not the store's yet.) */
        x->suspended = vps->suspended && vps->suspension.id != 0;
        x->answered = answered;
        return x;
}

int agent_respond_episode(struct agent *a, struct pc_vps *vps, const char *kind, int64_t incident,
                          const char *what, const struct pc_port_range *ports, int64_t first_ns,
                          size_t episode_kinds, agent_answered_fn answered)
{
        struct agent_response *x;
        int r;

        if (incident == 0) { /* in the journal: the database is away */
                r = agent_offline_respond(a, vps, kind, what, ports, episode_kinds);
                if (r >= 0 && answered != NULL)
                        answered(a, vps->id);
                return r;
        }
        x = response_new(vps, kind, what, ports, first_ns, episode_kinds, answered);
        if (x == NULL)
                return -ENOMEM;
        x->incident = incident;
        r = agent_db_submit(a, response_run, response_done, x);
        if (r < 0) {
                free(x);
                /* So many wait on a database that hangs: the kernel's part now. */
                return agent_offline_respond(a, vps, kind, what, ports, episode_kinds);
        }
        return 0;
}

struct agent_response *agent_response_new(struct pc_vps *vps, const char *kind, const char *what,
                                          size_t episode_kinds)
{
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return response_new(vps, kind, what, NULL, t.tv_sec * 1000000000LL + t.tv_nsec, episode_kinds, NULL);
}

int agent_response_run(struct pc_store *store, const struct pc_config *cfg, struct agent_response *r,
                       int64_t incident)
{
        struct agent_response *x = r;

        x->incident = incident;
        x->ran = true;
        return response_run(store, cfg, x);
}

void agent_response_done(struct agent *a, struct agent_response *r, const struct agent_db_result *res)
{
        struct agent_response *x = r;

        if (x == NULL)
                return;
        /* Not opened, or rolled back: nothing of it holds. */
        if (res == NULL || !x->ran) {
                pc_vps_free(x->fresh);
                free(x);
                return;
        }
        response_done(a, x, res);
}
