/* GET /metrics: Prometheus text format (version 0.0.4).  The API's own
 * counters, the fleet's state from the store, and, appended as it is, the
 * file portcullisd writes with the kernel's figures (verdicts, blocked
 * attempts, change latency), which this unprivileged daemon cannot read
 * from the kernel itself (agent.metrics-file, docs/API.md).  An agent
 * token bound to a host reads that host's figures only: its VPSes', its
 * own agent's, not the kernel file (whichever host this daemon runs on). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "base/strbuf.h"
#include "base/util.h"

#define KINDS 16

struct tally {
        char name[KINDS][PC_NAME_MAX + 16];
        uint64_t n[KINDS];
        size_t used;
};

static void tally_add(struct tally *t, const char *name)
{
        for (size_t i = 0; i < t->used; i++)
                if (strcmp(t->name[i], name) == 0) {
                        t->n[i]++;
                        return;
                }
        if (t->used < KINDS) {
                snprintf(t->name[t->used], sizeof(t->name[0]), "%s", name);
                t->n[t->used++] = 1;
        }
}

/* What the reader may count (pc_ops_actor_host): every VPS (<host>
 * NULL), or the VPSes of <host>, whose ids pc_ops_vps_list gives a token
 * bound to it, kept sorted in <ids>. */
struct scope {
        const char *host;
        char (*ids)[PC_NAME_MAX];
        size_t n, cap;
        uint64_t vpses;
};

static int id_cmp(const void *a, const void *b)
{
        return strcmp(a, b);
}

/* Whether rows of VPS <vps_id> count for <sc>'s reader. */
static bool in_scope(const struct scope *sc, const char *vps_id)
{
        /* (No VPS: no array, and bsearch wants one even of none.) */
        return sc->host == NULL ||
               (sc->n > 0 && bsearch(vps_id, sc->ids, sc->n, sizeof(sc->ids[0]), id_cmp) != NULL);
}

/* A tally of the rows <sc> lets count. */
struct scoped_tally {
        struct tally t;
        const struct scope *sc;
};

static int incident_cb(const struct pc_incident *i, void *userdata)
{
        struct scoped_tally *c = userdata;

        if (in_scope(c->sc, i->vps_id))
                tally_add(&c->t, i->kind);
        return 0;
}

static int action_cb(const struct pc_store_action *a, void *userdata)
{
        struct scoped_tally *c = userdata;

        if (in_scope(c->sc, a->vps_id))
                tally_add(&c->t, a->kind);
        return 0;
}

static int ticket_cb(const struct pc_ticket *t, void *userdata)
{
        struct scoped_tally *c = userdata;

        if (in_scope(c->sc, t->vps_id))
                tally_add(&c->t, pc_ticket_state_name(t->state));
        return 0;
}

static int vps_cb(const char *id, void *userdata)
{
        struct scope *sc = userdata;

        sc->vpses++;
        if (sc->host == NULL)
                return 0;
        if (sc->n == sc->cap) {
                size_t cap = sc->cap == 0 ? 64 : 2 * sc->cap;
                char(*ids)[PC_NAME_MAX] = realloc(sc->ids, cap * sizeof(*ids));

                if (ids == NULL)
                        return -ENOMEM;
                sc->ids = ids;
                sc->cap = cap;
        }
        snprintf(sc->ids[sc->n++], PC_NAME_MAX, "%s", id);
        return 0;
}

/* <s> as a label value of the text format into <buf>: a backslash, a
 * double quote and a newline escaped, cut at <size> (never inside an
 * escape).  Names reach here validated; this keeps a line one line
 * whatever the store holds. */
static const char *label_value(char *buf, size_t size, const char *s)
{
        size_t n = 0;

        for (; *s != '\0' && n + 3 <= size; s++) {
                if (*s == '\\' || *s == '"' || *s == '\n') {
                        buf[n++] = '\\';
                        buf[n++] = *s == '\n' ? 'n' : *s;
                } else
                        buf[n++] = *s;
        }
        buf[n] = '\0';
        return buf;
}

static void gauge(struct strbuf *b, const char *name, const char *help, const char *label, const struct tally *t)
{
        char v[2 * sizeof(t->name[0]) + 1];

        strbuf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
        for (size_t i = 0; i < t->used; i++)
                strbuf_printf(b, "%s{%s=\"%s\"} %llu\n", name, label, label_value(v, sizeof(v), t->name[i]),
                              (unsigned long long)t->n[i]);
}

/* The fleet's agents, judged by the operations layer's rule
 * (pc_fleet_judge) as `portcullis fleet status` and /v1/fleet judge them:
 * how many are in each state, and each one's heartbeat age. */
struct fleet_tally {
        struct pc_fleet_view view;
        const char *host; /* only this agent's (a bound token's reader), or NULL */
        uint64_t n[PC_AGENT_STATE_COUNT_];
        struct strbuf ages;
};

static int beat_cb(const struct pc_agent_beat *b, void *userdata)
{
        struct fleet_tally *f = userdata;
        struct pc_fleet_agent a;
        char host[2 * PC_NAME_MAX + 1];

        if (f->host != NULL && strcmp(b->host, f->host) != 0)
                return 0;
        pc_fleet_judge(b, &f->view, &a);
        f->n[a.state]++;
        strbuf_printf(&f->ages, "portcullis_fleet_heartbeat_age_seconds{host=\"%s\"} %lld\n",
                      label_value(host, sizeof(host), b->host), (long long)a.age);
        return 0;
}

static void fleet_gauges(struct strbuf *b, struct fleet_tally *f)
{
        strbuf_printf(b, "# HELP portcullis_fleet_agents Agents of the fleet (portcullisd --host), by state: stale "
                         "without a heartbeat for %lld s.\n# TYPE portcullis_fleet_agents gauge\n",
                      (long long)f->view.stale_after);
        for (int s = 0; s < PC_AGENT_STATE_COUNT_; s++)
                strbuf_printf(b, "portcullis_fleet_agents{state=\"%s\"} %llu\n", pc_agent_state_name(s),
                              (unsigned long long)f->n[s]);
        strbuf_printf(b, "# HELP portcullis_fleet_heartbeat_age_seconds Seconds since each agent's last heartbeat.\n"
                         "# TYPE portcullis_fleet_heartbeat_age_seconds gauge\n%s",
                      strbuf_str(&f->ages));
}

void api_metrics(struct api_request *req, struct api_reply *rep)
{
        static const char *const classes[] = { "other", "1xx", "2xx", "3xx", "4xx", "5xx" };
        struct pc_ticket_query q = { .state = -1 };
        struct scope sc = { .host = pc_ops_actor_host(&req->who) };
        struct scoped_tally incidents = { .sc = &sc }, actions = { .sc = &sc }, tickets = { .sc = &sc };
        int64_t now = pc_now();
        struct fleet_tally fleet = {
                .view = { .now = now, .stale_after = pc_fleet_stale_after(req->ops->cfg) },
                .host = sc.host,
        };
        uint64_t requests[6], rate, size, auth, wakes;
        struct strbuf b = { 0 };
        struct pc_store *st = req->ops->store;
        FILE *f;
        int r;

        r = pc_ops_vps_list(req->ops, &req->who, NULL, 0, vps_cb, &sc, &(struct pc_ops_error){ 0 });
        if (r >= 0 && sc.n > 0)
                qsort(sc.ids, sc.n, sizeof(sc.ids[0]), id_cmp);
        if (r < 0 || pc_store_incident_list(st, NULL, NULL, true, 0, incident_cb, &incidents) < 0 ||
            pc_store_action_list(st, NULL, 0, true, now, 0, action_cb, &actions) < 0 ||
            pc_store_ticket_query(st, &q, now, ticket_cb, &tickets) < 0 ||
            pc_store_change_last(st, &fleet.view.last_change) < 0 ||
            pc_store_agent_list(st, beat_cb, &fleet) < 0) {
                free(sc.ids);
                strbuf_free(&fleet.ages);
                api_reply_fail(rep, PC_OPS_EIO, NULL, "%s",
                               r == -ENOMEM ? "out of memory" : pc_store_errmsg(st));
                return;
        }
        free(sc.ids);
        api_server_counters(req->server, requests, &rate, &size, &auth, &wakes);
        strbuf_printf(&b, "# HELP portcullis_api_requests_total Requests answered, by status class.\n"
                             "# TYPE portcullis_api_requests_total counter\n");
        for (size_t i = 1; i < 6; i++)
                strbuf_printf(&b, "portcullis_api_requests_total{class=\"%s\"} %llu\n", classes[i],
                                 (unsigned long long)requests[i]);
        strbuf_printf(&b,
                         "# HELP portcullis_api_refused_total Requests refused before any operation.\n"
                         "# TYPE portcullis_api_refused_total counter\n"
                         "portcullis_api_refused_total{reason=\"rate\"} %llu\n"
                         "portcullis_api_refused_total{reason=\"size\"} %llu\n"
                         "portcullis_api_refused_total{reason=\"auth\"} %llu\n"
                         "# HELP portcullis_api_agent_wakes_failed_total Changes the agent was not woken for "
                         "(it follows the feed on its own).\n"
                         "# TYPE portcullis_api_agent_wakes_failed_total counter\n"
                         "portcullis_api_agent_wakes_failed_total %llu\n"
                         "# HELP portcullis_vps VPSes registered.\n# TYPE portcullis_vps gauge\nportcullis_vps %llu\n",
                         (unsigned long long)rate, (unsigned long long)size, (unsigned long long)auth,
                         (unsigned long long)wakes, (unsigned long long)sc.vpses);
        gauge(&b, "portcullis_incidents_open", "Open incidents, by kind.", "kind", &incidents.t);
        gauge(&b, "portcullis_actions_active", "Filters and suspensions in force, by kind.", "kind", &actions.t);
        gauge(&b, "portcullis_tickets", "Tickets, by state.", "state", &tickets.t);
        fleet_gauges(&b, &fleet);
        if (fleet.ages.oom)
                b.oom = true;
        strbuf_free(&fleet.ages);
        /* The agent's own figures, if it writes them where we can read:
         * this machine's kernel, not necessarily a bound reader's host. */
        f = req->server != NULL && sc.host == NULL ? api_server_agent_metrics(req->server) : NULL;
        if (f != NULL) {
                char line[512];

                while (fgets(line, sizeof(line), f) != NULL)
                        strbuf_printf(&b, "%s", line);
                fclose(f);
        }
        if (b.oom) {
                strbuf_free(&b);
                api_reply_fail(rep, PC_OPS_EIO, NULL, "out of memory");
                return;
        }
        json_decref(rep->body);
        rep->body = NULL;
        rep->status = 200;
        rep->text = b.s != NULL ? b.s : strdup("");
}
