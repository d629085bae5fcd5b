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

/* Ticket <id> as it stands, with its history, as <status>; for support
 * (admin, support), with its findings beside it (pc_ops_ticket_findings). */
static void ticket_reply(struct api_request *req, struct api_reply *rep, int64_t id, unsigned status)
{
        struct pc_ops_error err;
        struct pc_ticket t;
        json_t *j, *history, *findings;

        if (pc_ops_ticket_get(req->ops, &req->who, id, &t, &err) < 0) {
                api_reply_error(rep, &err);
                return;
        }
        j = pc_json_ticket(&t);
        history = json_array();
        if (pc_ops_ticket_history(req->ops, &req->who, id, event_cb, history, &err) < 0) {
                json_decref(j);
                json_decref(history);
                api_reply_error(rep, &err);
                return;
        }
        json_object_set_new(j, "history", history);
        /* A customer gets the ticket only (EPERM: not theirs to see). */
        if (pc_ops_ticket_findings(req->ops, &req->who, id, &findings, &err) == 0)
                json_object_set_new(j, "findings", findings);
        else if (err.code != PC_OPS_EPERM) {
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
