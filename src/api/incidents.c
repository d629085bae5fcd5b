/* /v1/incidents, /v1/actions, /v1/notifications, /v1/audit: what happened
 * to a VPS and why, for support and for the VPS's owner. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "base/util.h"
#include "ops/ops_json.h"

/* A page of actions: an action's JSON says whether it is in force <now>. */
struct action_page {
        struct api_page page;
        int64_t now;
};

/* ?name=1|true|0|false (absent: false). */
static int query_bool(struct api_request *req, struct api_reply *rep, const char *name, bool *ret)
{
        const char *v = api_query(req, name);

        *ret = false;
        if (v == NULL || strcmp(v, "0") == 0 || strcmp(v, "false") == 0)
                return 0;
        if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0) {
                *ret = true;
                return 0;
        }
        api_reply_fail(rep, PC_OPS_EINVAL, name, "%s must be true or false", name);
        return -EINVAL;
}

static int incident_cb(const struct pc_incident *i, void *userdata)
{
        return api_page_take(userdata, i->id, pc_json_incident(i));
}

void api_incident_list(struct api_request *req, struct api_reply *rep)
{
        struct pc_ops_error err;
        struct api_page p;
        bool open;
        int r;

        if (query_bool(req, rep, "open", &open) < 0 || api_page_start(req, rep, "an id", &p) < 0)
                return;
        r = pc_ops_incident_list(req->ops, &req->who, api_query(req, "vps"), api_query(req, "kind"), open,
                                 p.before, incident_cb, &p, &err);
        api_page_end(rep, &p, "incidents", r, &err);
}

static int incident_one_cb(const struct pc_incident *i, void *userdata)
{
        *(json_t **)userdata = pc_json_incident(i);
        return 0;
}

static int action_cb(const struct pc_store_action *a, void *userdata)
{
        struct action_page *ap = userdata;

        return api_page_take(&ap->page, a->id, pc_json_action(a, ap->now));
}

void api_incident_get(struct api_request *req, struct api_reply *rep)
{
        struct pc_ops_error err;
        struct action_page ap = { .page = { .limit = API_PAGE_MAX }, .now = pc_now() };
        json_t *inc = NULL;
        int64_t id;
        int r;

        if (api_param_id(req, rep, 0, "incident", &id) < 0)
                return;
        if (pc_ops_incident_get(req->ops, &req->who, id, incident_one_cb, &inc, &err) < 0) {
                api_reply_error(rep, &err);
                return;
        }
        ap.page.list = json_array();
        r = pc_ops_action_list(req->ops, &req->who, json_string_value(json_object_get(inc, "vps")), id, false,
                               0, action_cb, &ap, &err);
        if (r < 0 && r != -ENOBUFS) {
                json_decref(inc);
                api_page_fail(rep, &ap.page, &err);
                return;
        }
        /* The incident's actions, the first API_PAGE_MAX of them: no next page. */
        json_object_set_new(inc, "actions", ap.page.list);
        api_reply_json(rep, 200, inc);
}

void api_incident_close(struct api_request *req, struct api_reply *rep)
{
        static const char *const known[] = { "reason", "lift_actions", "admin_override", NULL };
        json_t *lift = json_object_get(req->body, "lift_actions"), *ov = json_object_get(req->body, "admin_override");
        struct pc_ops_error err;
        const char *reason;
        size_t lifted = 0;
        int64_t id;

        if (api_param_id(req, rep, 0, "incident", &id) < 0 || api_body_only(req, rep, known) < 0 ||
            api_body_string(req, rep, "reason", true, &reason) < 0)
                return;
        if ((lift != NULL && !json_is_boolean(lift)) || (ov != NULL && !json_is_boolean(ov))) {
                api_reply_fail(rep, PC_OPS_EINVAL, lift != NULL && !json_is_boolean(lift) ? "lift_actions" : "admin_override",
                               "must be true or false");
                return;
        }
        if (pc_ops_incident_close(req->ops, &req->who, id, json_is_true(lift), reason, json_is_true(ov), &lifted,
                                  &err) < 0) {
                api_reply_error(rep, &err);
                return;
        }
        api_reply_json(rep, 200, json_pack("{s:I, s:I}", "closed", (json_int_t)id, "lifted", (json_int_t)lifted));
}

void api_action_list(struct api_request *req, struct api_reply *rep)
{
        const char *inc = api_query(req, "incident");
        struct pc_ops_error err;
        int64_t incident = 0;
        struct action_page ap;
        bool active;
        int r;

        if (inc != NULL) {
                char *end;

                incident = strtoll(inc, &end, 10);
                if (*inc == '\0' || *end != '\0' || incident <= 0) {
                        api_reply_fail(rep, PC_OPS_EINVAL, "incident", "incident must be an incident id");
                        return;
                }
        }
        if (query_bool(req, rep, "active", &active) < 0 || api_page_start(req, rep, "an id", &ap.page) < 0)
                return;
        ap.now = pc_now();
        r = pc_ops_action_list(req->ops, &req->who, api_query(req, "vps"), incident, active, ap.page.before, action_cb,
                               &ap, &err);
        api_page_end(rep, &ap.page, "actions", r, &err);
}

void api_action_lift(struct api_request *req, struct api_reply *rep)
{
        static const char *const known[] = { "reason", "admin_override", NULL };
        json_t *ov = json_object_get(req->body, "admin_override");
        struct pc_ops_error err;
        char vps[PC_NAME_MAX];
        const char *reason;
        int64_t id;

        if (api_param_id(req, rep, 0, "action", &id) < 0 || api_body_only(req, rep, known) < 0 ||
            api_body_string(req, rep, "reason", true, &reason) < 0)
                return;
        if (ov != NULL && !json_is_boolean(ov)) {
                api_reply_fail(rep, PC_OPS_EINVAL, "admin_override", "must be true or false");
                return;
        }
        if (pc_ops_action_lift(req->ops, &req->who, id, reason, json_is_true(ov), vps, &err) < 0) {
                api_reply_error(rep, &err);
                return;
        }
        api_reply_json(rep, 200, json_pack("{s:I, s:s}", "lifted", (json_int_t)id, "vps", vps));
}

static int notification_cb(const struct pc_notification *n, void *userdata)
{
        return api_page_take(userdata, n->id, pc_json_notification(n));
}

void api_notification_list(struct api_request *req, struct api_reply *rep)
{
        const char *state = api_query(req, "state");
        struct pc_ops_error err;
        struct api_page p;
        int r;

        if (state != NULL && strcmp(state, "pending") != 0 && strcmp(state, "sent") != 0 &&
            strcmp(state, "failed") != 0) {
                api_reply_fail(rep, PC_OPS_EINVAL, "state", "state must be pending, sent or failed");
                return;
        }
        if (api_page_start(req, rep, "an id", &p) < 0)
                return;
        r = pc_ops_notification_list(req->ops, &req->who, api_query(req, "vps"), state, 0, p.before, notification_cb,
                                     &p, &err);
        api_page_end(rep, &p, "notifications", r, &err);
}

static int audit_cb(const struct pc_audit_entry *e, void *userdata)
{
        return api_page_take(userdata, e->id, pc_json_audit(e));
}

void api_audit_list(struct api_request *req, struct api_reply *rep)
{
        struct pc_ops_error err;
        struct api_page p;

        /* The newest <limit> entries, read as such by the store: no ?before=, no next page. */
        if (api_page_start(req, rep, NULL, &p) < 0)
                return;
        if (pc_ops_audit_list(req->ops, &req->who, api_query(req, "vps"), p.limit, audit_cb, &p, &err) < 0) {
                api_page_fail(rep, &p, &err);
                return;
        }
        api_reply_json(rep, 200, json_pack("{s:o}", "audit", p.list));
}

/* ---- actions by hand: filters, suspensions, terminations ------------------ */

void api_filter_place(struct api_request *req, struct api_reply *rep)
{
        static const char *const known[] = { "service", "ports", "all", "direction", "until", "reason", NULL };
        struct pc_filter f = { .direction = PC_DIR_EGRESS, .scope = PC_SCOPE_ALL };
        const char *service, *ports, *dir, *reason;
        json_t *all = json_object_get(req->body, "all");
        struct pc_ops_error err;
        char why[256];
        int64_t id;

        if (api_body_only(req, rep, known) < 0 || api_body_string(req, rep, "service", false, &service) < 0 ||
            api_body_string(req, rep, "ports", false, &ports) < 0 ||
            api_body_string(req, rep, "direction", false, &dir) < 0 ||
            api_body_string(req, rep, "reason", true, &reason) < 0 || api_body_time(req, rep, "until", &f.until) < 0)
                return;
        if (all != NULL && !json_is_true(all)) {
                api_reply_fail(rep, PC_OPS_EINVAL, "all", "all must be true when given");
                return;
        }
        if ((service != NULL) + (ports != NULL) + (all != NULL) != 1) {
                api_reply_fail(rep, PC_OPS_EINVAL, "service", "say what to filter: one of service, ports, all");
                return;
        }
        if (dir != NULL) {
                if (strcmp(dir, "out") == 0 || strcmp(dir, "egress") == 0)
                        f.direction = PC_DIR_EGRESS;
                else if (strcmp(dir, "in") == 0 || strcmp(dir, "ingress") == 0)
                        f.direction = PC_DIR_INGRESS;
                else if (strcmp(dir, "both") == 0)
                        f.direction = PC_DIR_BOTH;
                else {
                        api_reply_fail(rep, PC_OPS_EINVAL, "direction", "direction must be out, in or both");
                        return;
                }
        }
        if (service != NULL) {
                f.scope = PC_SCOPE_SERVICE;
                f.service = pc_config_service(req->ops->cfg, service);
                if (f.service == NULL) {
                        api_reply_fail(rep, PC_OPS_EINVAL, "service", "service: no such service (see /v1/services)");
                        return;
                }
        } else if (ports != NULL) {
                f.scope = PC_SCOPE_PORTS;
                if (pc_port_range_parse(ports, &f.ports, why, sizeof(why)) < 0) {
                        api_reply_fail(rep, PC_OPS_EINVAL, "ports", "ports: %s", why);
                        return;
                }
        }
        if (pc_ops_filter_place(req->ops, &req->who, req->params[0], &f, reason, &id, &err) < 0) {
                api_reply_error(rep, &err);
                return;
        }
        api_reply_json(rep, 201, json_pack("{s:s, s:I}", "vps", req->params[0], "filter", (json_int_t)id));
}

/* Body {reason, incident?} of a suspension or a termination. */
static int suspension_body(struct api_request *req, struct api_reply *rep, const char **reason, int64_t *incident)
{
        static const char *const known[] = { "reason", "incident", NULL };

        if (api_body_only(req, rep, known) < 0 || api_body_string(req, rep, "reason", true, reason) < 0 ||
            api_body_int(req, rep, "incident", incident) < 0)
                return -EINVAL;
        return 0;
}

void api_vps_suspend(struct api_request *req, struct api_reply *rep)
{
        struct pc_ops_error err;
        const char *reason;
        int64_t incident, id;

        if (suspension_body(req, rep, &reason, &incident) < 0)
                return;
        if (pc_ops_suspend(req->ops, &req->who, req->params[0], incident, reason, &id, &err) < 0) {
                api_reply_error(rep, &err);
                return;
        }
        api_reply_json(rep, 201, json_pack("{s:s, s:I}", "suspended", req->params[0], "suspension", (json_int_t)id));
}

void api_vps_terminate(struct api_request *req, struct api_reply *rep)
{
        struct pc_ops_error err;
        const char *reason;
        int64_t incident, id;

        if (suspension_body(req, rep, &reason, &incident) < 0)
                return;
        if (pc_ops_terminate(req->ops, &req->who, req->params[0], incident, "terminated by hand", reason, &id,
                             &err) < 0) {
                api_reply_error(rep, &err);
                return;
        }
        api_reply_json(rep, 201, json_pack("{s:s, s:I}", "terminated", req->params[0], "suspension", (json_int_t)id));
}

void api_vps_unsuspend(struct api_request *req, struct api_reply *rep)
{
        static const char *const known[] = { "reason", "admin_override", NULL };
        json_t *ov = json_object_get(req->body, "admin_override");
        struct pc_ops_error err;
        const char *reason;

        if (api_body_only(req, rep, known) < 0 || api_body_string(req, rep, "reason", true, &reason) < 0)
                return;
        if (ov != NULL && !json_is_boolean(ov)) {
                api_reply_fail(rep, PC_OPS_EINVAL, "admin_override", "must be true or false");
                return;
        }
        if (pc_ops_unsuspend(req->ops, &req->who, req->params[0], reason, json_is_true(ov), &err) < 0) {
                api_reply_error(rep, &err);
                return;
        }
        api_reply_json(rep, 200, json_pack("{s:s}", "unsuspended", req->params[0]));
}

void api_notification_retry(struct api_request *req, struct api_reply *rep)
{
        static const char *const known[] = { "reason", NULL };
        struct pc_ops_error err;
        const char *reason;
        int64_t id;

        if (api_param_id(req, rep, 0, "notification", &id) < 0 || api_body_only(req, rep, known) < 0 ||
            api_body_string(req, rep, "reason", true, &reason) < 0)
                return;
        if (pc_ops_notification_retry(req->ops, &req->who, id, reason, &err) < 0) {
                api_reply_error(rep, &err);
                return;
        }
        api_reply_json(rep, 200, json_pack("{s:I}", "retried", (json_int_t)id));
}
