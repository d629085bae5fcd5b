/* /v1/tickets: provider B's exception process (docs/OPERATIONS.md). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "base/util.h"
#include "ops/ops_json.h"

static int ticket_page_cb(const struct pc_ticket *t, void *userdata)
{
        return api_page_take(userdata, t->id, pc_json_ticket(t));
}

void api_ticket_list(struct api_request *req, struct api_reply *rep)
{
        struct pc_ticket_query q = { .vps_id = api_query(req, "vps"), .state = -1 };
        const char *state = api_query(req, "state");
        struct pc_ops_error err;
        enum pc_ticket_state st;
        struct api_page p;
        int r;

        if (state != NULL) {
                if (pc_ticket_state_parse(state, &st) < 0) {
                        api_reply_fail(rep, PC_OPS_EINVAL, "state",
                                       "state must be open, investigating, approved, denied, revoked or expired");
                        return;
                }
                q.state = (int)st;
        }
        if (api_page_start(req, rep, "a ticket id", &p) < 0)
                return;
        /* A page and one more, through the index: is there a next page? */
        q.before = p.before;
        q.limit = p.limit + 1;
        r = pc_ops_ticket_list(req->ops, &req->who, &q, ticket_page_cb, &p, &err);
        api_page_end(rep, &p, "tickets", r, &err);
}

void api_ticket_open(struct api_request *req, struct api_reply *rep)
{
        static const char *const known[] = { "vps", "service", "ports", "duration", "text", "evidence", NULL };
        struct pc_ticket_spec spec = { 0 };
        struct pc_ops_error err;
        struct pc_ticket t;
        int64_t id;

        if (api_body_only(req, rep, known) < 0 || api_body_string(req, rep, "vps", true, &spec.vps_id) < 0 ||
            api_body_string(req, rep, "service", true, &spec.service) < 0 ||
            api_body_string(req, rep, "ports", false, &spec.ports) < 0 ||
            api_body_int(req, rep, "duration", &spec.duration) < 0 ||
            api_body_string(req, rep, "text", true, &spec.text) < 0 ||
            api_body_string(req, rep, "evidence", false, &spec.evidence) < 0)
                return;
        if (pc_ops_ticket_open(req->ops, &req->who, &spec, &id, &err) < 0 ||
            pc_ops_ticket_get(req->ops, &req->who, id, &t, &err) < 0) {
                api_reply_error(rep, &err);
                return;
        }
        api_reply_json(rep, 201, pc_json_ticket(&t));
}

static int event_cb(const struct pc_ticket_event *e, void *userdata)
{
        return json_array_append_new(userdata, pc_json_ticket_event(e));
}

static int evidence_incident_cb(const struct pc_incident *i, void *userdata)
{
        return json_array_size(userdata) < API_PAGE_MAX ? json_array_append_new(userdata, pc_json_incident(i))
                                                        : -ENOBUFS;
}

struct actions_of {
        json_t *list;
        int64_t now;
};

static int evidence_action_cb(const struct pc_store_action *a, void *userdata)
{
        struct actions_of *x = userdata;

        return json_array_size(x->list) < API_PAGE_MAX ? json_array_append_new(x->list, pc_json_action(a, x->now))
                                                       : -ENOBUFS;
}

struct earlier {
        json_t *list;
        int64_t self;
};

static int evidence_ticket_cb(const struct pc_ticket *t, void *userdata)
{
        struct earlier *e = userdata;

        if (t->id == e->self)
                return 0;
        return json_array_size(e->list) < API_PAGE_MAX ? json_array_append_new(e->list, pc_json_ticket(t)) : -ENOBUFS;
}

/* What support weighs beside ticket <t> (docs/OPERATIONS.md): the VPS's
 * incidents -- the terms-of-service ones, "blocked-use", among them -- and
 * actions, and the customer's other tickets, newest first, 100 of each at
 * most.  The kernel's blocked-attempt counters are root's: the agent
 * publishes their totals on /metrics, and `portcullis ticket show` reads
 * them per VPS. */
static int ticket_evidence(struct api_request *req, const struct pc_ticket *t, json_t *out, struct pc_ops_error *err)
{
        struct pc_ticket_query q = { .owner = t->owner, .state = -1, .limit = API_PAGE_MAX + 1 };
        struct actions_of acts = { json_array(), pc_now() };
        struct earlier earlier = { json_array(), t->id };
        json_t *incidents = json_array();
        int r;

        r = pc_ops_incident_list(req->ops, &req->who, t->vps_id, NULL, false, evidence_incident_cb, incidents, err);
        if (r >= 0 || r == -ENOBUFS)
                r = pc_ops_action_list(req->ops, &req->who, t->vps_id, 0, false, evidence_action_cb, &acts, err);
        if (r >= 0 || r == -ENOBUFS)
                r = pc_ops_ticket_list(req->ops, &req->who, &q, evidence_ticket_cb, &earlier, err);
        if (r < 0 && r != -ENOBUFS) {
                json_decref(incidents);
                json_decref(acts.list);
                json_decref(earlier.list);
                return r;
        }
        json_object_set_new(out, "findings",
                            json_pack("{s:o, s:o, s:o}", "incidents", incidents, "actions", acts.list,
                                      "earlier_tickets", earlier.list));
        return 0;
}

/* Ticket <id> as it stands, with its history, as <status>; for support
 * (admin, support), with the evidence beside it. */
static void ticket_reply(struct api_request *req, struct api_reply *rep, int64_t id, unsigned status)
{
        struct pc_ops_error err;
        struct pc_ticket t;
        json_t *j, *history;

        if (pc_ops_ticket_get(req->ops, &req->who, id, &t, &err) < 0) {
                api_reply_error(rep, &err);
                return;
        }
        j = pc_json_ticket(&t);
        history = json_array();
        if (pc_store_ticket_events(req->ops->store, id, event_cb, history) < 0) {
                json_decref(j);
                json_decref(history);
                api_reply_fail(rep, PC_OPS_EIO, NULL, "%s", pc_store_errmsg(req->ops->store));
                return;
        }
        json_object_set_new(j, "history", history);
        if (req->who.role != PC_ROLE_CUSTOMER && ticket_evidence(req, &t, j, &err) < 0) {
                json_decref(j);
                api_reply_error(rep, &err);
                return;
        }
        api_reply_json(rep, status, j);
}

void api_ticket_get(struct api_request *req, struct api_reply *rep)
{
        int64_t id;

        if (api_param_id(req, rep, 0, "ticket", &id) == 0)
                ticket_reply(req, rep, id, 200);
}

/* A transition whose body is one text member <name> (required or not). */
static int transition_text(struct api_request *req, struct api_reply *rep, const char *name, bool required,
                           int64_t *id, const char **text)
{
        const char *const known[] = { name, NULL };

        if (api_param_id(req, rep, 0, "ticket", id) < 0 || api_body_only(req, rep, known) < 0 ||
            api_body_string(req, rep, name, required, text) < 0)
                return -EINVAL;
        return 0;
}

void api_ticket_investigate(struct api_request *req, struct api_reply *rep)
{
        struct pc_ops_error err;
        const char *note;
        int64_t id;

        if (transition_text(req, rep, "note", false, &id, &note) < 0)
                return;
        if (pc_ops_ticket_investigate(req->ops, &req->who, id, note, &err) < 0)
                api_reply_error(rep, &err);
        else
                ticket_reply(req, rep, id, 200);
}

void api_ticket_approve(struct api_request *req, struct api_reply *rep)
{
        static const char *const known[] = { "ports", "until", "note", NULL };
        struct pc_ticket_approval a = { 0 };
        struct pc_grant_result res;
        struct pc_ops_error err;
        int64_t id;

        if (api_param_id(req, rep, 0, "ticket", &id) < 0 || api_body_only(req, rep, known) < 0 ||
            api_body_string(req, rep, "ports", false, &a.ports) < 0 || api_body_time(req, rep, "until", &a.until) < 0 ||
            api_body_string(req, rep, "note", false, &a.note) < 0)
                return;
        if (pc_ops_ticket_approve(req->ops, &req->who, id, &a, &res, &err) < 0)
                api_reply_error(rep, &err);
        else
                ticket_reply(req, rep, id, 200);
}

void api_ticket_deny(struct api_request *req, struct api_reply *rep)
{
        struct pc_ops_error err;
        const char *reason;
        int64_t id;

        if (transition_text(req, rep, "reason", true, &id, &reason) < 0)
                return;
        if (pc_ops_ticket_deny(req->ops, &req->who, id, reason, &err) < 0)
                api_reply_error(rep, &err);
        else
                ticket_reply(req, rep, id, 200);
}

void api_ticket_revoke(struct api_request *req, struct api_reply *rep)
{
        struct pc_ops_error err;
        const char *reason;
        int64_t id;

        if (transition_text(req, rep, "reason", true, &id, &reason) < 0)
                return;
        if (pc_ops_ticket_revoke(req->ops, &req->who, id, reason, &err) < 0)
                api_reply_error(rep, &err);
        else
                ticket_reply(req, rep, id, 200);
}
