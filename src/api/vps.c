/* /v1/vps: the VPS registry, its exceptions, and the service catalog. */
#include <errno.h>
#include <string.h>

#include "api/api.h"
#include "base/util.h"
#include "ops/ops_json.h"

void api_services(struct api_request *req, struct api_reply *rep)
{
        api_reply_json(rep, 200, json_pack("{s:o}", "services", pc_json_services(req->ops->cfg)));
}

/* A page of VPSes, by name: the next one starts after the last (?after=). */
struct vps_page {
        struct api_page page;
        struct api_request *req;
        char last[PC_NAME_MAX];
        struct pc_ops_error err;
};

static int vps_page_cb(const char *id, void *userdata)
{
        struct vps_page *p = userdata;
        struct pc_vps *v = NULL;

        if (pc_ops_vps_get(p->req->ops, &p->req->who, id, &v, &p->err) < 0)
                return -EIO;
        api_page_take(&p->page, 0, pc_json_vps(v));
        pc_vps_free(v);
        snprintf(p->last, sizeof(p->last), "%s", id);
        return 0;
}

void api_vps_list(struct api_request *req, struct api_reply *rep)
{
        struct vps_page p = { .req = req };

        if (api_page_start(req, rep, NULL, &p.page) < 0)
                return;
        if (pc_ops_vps_list(req->ops, &req->who, api_query(req, "after"), p.page.limit, vps_page_cb, &p, &p.err) < 0) {
                api_page_fail(rep, &p.page, &p.err);
                return;
        }
        /* A full page says where the next one starts. */
        api_page_reply(rep, &p.page, "vps", p.page.n == p.page.limit ? json_string(p.last) : json_null());
}

void api_vps_get(struct api_request *req, struct api_reply *rep)
{
        struct pc_ops_error err;
        struct pc_vps *v = NULL;

        if (pc_ops_vps_get(req->ops, &req->who, req->params[0], &v, &err) < 0) {
                api_reply_error(rep, &err);
                return;
        }
        api_reply_json(rep, 200, pc_json_vps(v));
        pc_vps_free(v);
}

/* The "addresses" member: an array of "CIDR" or bare addresses. */
static int addresses(struct api_request *req, struct api_reply *rep, struct pc_prefix *addrs, size_t *n)
{
        json_t *a = json_object_get(req->body, "addresses"), *v;
        size_t i;

        *n = 0;
        if (a == NULL || json_is_null(a))
                return 0;
        if (!json_is_array(a) || json_array_size(a) > PC_VPS_ADDRS_MAX) {
                api_reply_fail(rep, PC_OPS_EINVAL, "addresses", "addresses must be an array of at most %d addresses",
                               PC_VPS_ADDRS_MAX);
                return -EINVAL;
        }
        json_array_foreach(a, i, v) {
                if (!json_is_string(v) || pc_parse_prefix(json_string_value(v), false, &addrs[i]) < 0) {
                        api_reply_fail(rep, PC_OPS_EINVAL, "addresses",
                                       "addresses[%zu] is not an IPv4 or IPv6 address or prefix without host bits "
                                       "(e.g. \"203.0.113.10\", \"2001:db8:1::/64\")",
                                       i);
                        return -EINVAL;
                }
        }
        *n = json_array_size(a);
        return 0;
}

/* The "mac" member's text <mac> (NULL: absent) into <buf>: *<ret> then
 * points to it, or stays NULL. */
static int parse_mac(struct api_reply *rep, const char *mac, uint8_t buf[6], const uint8_t **ret)
{
        if (mac == NULL)
                return 0;
        if (pc_parse_mac(mac, buf) < 0) {
                api_reply_fail(rep, PC_OPS_EINVAL, "mac", "mac is not a unicast MAC address (aa:bb:cc:dd:ee:ff)");
                return -EINVAL;
        }
        *ret = buf;
        return 0;
}

void api_vps_register(struct api_request *req, struct api_reply *rep)
{
        static const char *const known[] = { "id", "owner", "lang", "site", "iface", "mac", "addresses", "reason",
                                             "host", NULL };
        struct pc_prefix addrs[PC_VPS_ADDRS_MAX];
        struct pc_vps_spec spec = { .addrs = addrs };
        const struct pc_site *site = NULL;
        const char *mac = NULL, *reason = NULL;
        struct pc_ops_error err;
        uint8_t macb[6];
        struct pc_vps *v = NULL;

        if (api_body_only(req, rep, known) < 0 || api_body_string(req, rep, "id", true, &spec.id) < 0 ||
            api_body_string(req, rep, "owner", true, &spec.owner) < 0 ||
            api_body_string(req, rep, "lang", false, &spec.lang) < 0 ||
            api_body_string(req, rep, "site", false, &spec.site) < 0 ||
            api_body_string(req, rep, "iface", true, &spec.iface) < 0 ||
            api_body_string(req, rep, "mac", false, &mac) < 0 ||
            api_body_string(req, rep, "reason", false, &reason) < 0 ||
            api_body_string(req, rep, "host", false, &spec.host) < 0 ||
            addresses(req, rep, addrs, &spec.n_addrs) < 0 || parse_mac(rep, mac, macb, &spec.mac) < 0)
                return;
        if (pc_ops_vps_register(req->ops, &req->who, &spec, reason, &site, &err) < 0 ||
            pc_ops_vps_get(req->ops, &req->who, spec.id, &v, &err) < 0) {
                api_reply_error(rep, &err);
                return;
        }
        api_reply_json(rep, 201, pc_json_vps(v));
        pc_vps_free(v);
}

/* The VPS <id> as it stands now, as <status>; with "changed" when
 * <changed> is not NULL. */
static void vps_reply(struct api_request *req, struct api_reply *rep, const char *id, unsigned status,
                      const bool *changed)
{
        struct pc_ops_error err;
        struct pc_vps *v = NULL;
        json_t *j;

        if (pc_ops_vps_get(req->ops, &req->who, id, &v, &err) < 0) {
                api_reply_error(rep, &err);
                return;
        }
        j = pc_json_vps(v);
        if (j != NULL && changed != NULL)
                json_object_set_new(j, "changed", json_boolean(*changed));
        api_reply_json(rep, status, j);
        pc_vps_free(v);
}

void api_vps_update(struct api_request *req, struct api_reply *rep)
{
        static const char *const known[] = { "iface", "mac", "addresses", "reason", NULL };
        struct pc_prefix addrs[PC_VPS_ADDRS_MAX];
        struct pc_vps_change change = { .id = req->params[0] };
        const char *mac = NULL, *reason = NULL;
        struct pc_ops_error err;
        uint8_t macb[6];

        if (api_body_only(req, rep, known) < 0 || api_body_string(req, rep, "iface", false, &change.iface) < 0 ||
            api_body_string(req, rep, "mac", false, &mac) < 0 ||
            api_body_string(req, rep, "reason", false, &reason) < 0 ||
            addresses(req, rep, addrs, &change.n_addrs) < 0 || parse_mac(rep, mac, macb, &change.mac) < 0)
                return;
        if (json_object_get(req->body, "addresses") != NULL)
                change.addrs = addrs;
        if (pc_ops_vps_update(req->ops, &req->who, &change, reason, NULL, &err) < 0)
                api_reply_error(rep, &err);
        else
                vps_reply(req, rep, change.id, 200, NULL);
}

static void set_state(struct api_request *req, struct api_reply *rep, bool running)
{
        static const char *const known[] = { "reason", NULL };
        struct pc_ops_error err;
        const char *reason = NULL;

        if (api_body_only(req, rep, known) < 0 || api_body_string(req, rep, "reason", false, &reason) < 0)
                return;
        if (pc_ops_vps_set_state(req->ops, &req->who, req->params[0], running, reason, NULL, &err) < 0)
                api_reply_error(rep, &err);
        else
                vps_reply(req, rep, req->params[0], 200, NULL);
}

void api_vps_start(struct api_request *req, struct api_reply *rep)
{
        set_state(req, rep, true);
}

void api_vps_stop(struct api_request *req, struct api_reply *rep)
{
        set_state(req, rep, false);
}

/* To another hypervisor: the operation keeps the host it leaves
 * enforcing the VPS until the new host's agent does. */
void api_vps_move(struct api_request *req, struct api_reply *rep)
{
        static const char *const known[] = { "host", "iface", "reason", NULL };
        const char *host = NULL, *iface = NULL, *reason = NULL;
        struct pc_ops_error err;
        bool changed = false;

        if (api_body_only(req, rep, known) < 0 || api_body_string(req, rep, "host", true, &host) < 0 ||
            api_body_string(req, rep, "iface", false, &iface) < 0 ||
            api_body_string(req, rep, "reason", false, &reason) < 0)
                return;
        if (pc_ops_vps_move(req->ops, &req->who, req->params[0], host, iface, reason, &changed, &err) < 0)
                api_reply_error(rep, &err);
        else
                vps_reply(req, rep, req->params[0], 200, &changed);
}

/* The admin confirms a move away from a host that cannot (dead, or its
 * agent started without the VM): the operation refuses any agent token. */
void api_vps_depart(struct api_request *req, struct api_reply *rep)
{
        static const char *const known[] = { "reason", NULL };
        const char *reason = NULL;
        struct pc_ops_error err;

        if (api_body_only(req, rep, known) < 0 || api_body_string(req, rep, "reason", true, &reason) < 0)
                return;
        if (pc_ops_vps_depart(req->ops, &req->who, req->params[0], reason, NULL, &err) < 0)
                api_reply_error(rep, &err);
        else
                vps_reply(req, rep, req->params[0], 200, NULL);
}

void api_vps_remove(struct api_request *req, struct api_reply *rep)
{
        static const char *const known[] = { "reason", "admin_override", NULL };
        struct pc_ops_error err;
        const char *reason = NULL;
        json_t *ov = req->body != NULL ? json_object_get(req->body, "admin_override") : NULL;

        if (api_body_only(req, rep, known) < 0 || api_body_string(req, rep, "reason", false, &reason) < 0)
                return;
        if (ov != NULL && !json_is_boolean(ov)) {
                api_reply_fail(rep, PC_OPS_EINVAL, "admin_override", "admin_override must be true or false");
                return;
        }
        if (pc_ops_vps_remove(req->ops, &req->who, req->params[0], reason, json_is_true(ov), &err) < 0) {
                api_reply_error(rep, &err);
                return;
        }
        api_reply_json(rep, 200, json_pack("{s:s}", "removed", req->params[0]));
}

void api_exception_grant(struct api_request *req, struct api_reply *rep)
{
        static const char *const known[] = { "service", "reason", "until", "ticket", NULL };
        struct pc_exception_spec spec = { .vps_id = req->params[0] };
        struct pc_grant_result res;
        struct pc_ops_error err;

        if (api_body_only(req, rep, known) < 0 || api_body_string(req, rep, "service", true, &spec.service) < 0 ||
            api_body_string(req, rep, "reason", true, &spec.reason) < 0 ||
            api_body_time(req, rep, "until", &spec.until) < 0 || api_body_int(req, rep, "ticket", &spec.ticket_id) < 0)
                return;
        if (pc_ops_exception_grant(req->ops, &req->who, &spec, &res, &err) < 0) {
                api_reply_error(rep, &err);
                return;
        }
        api_reply_json(rep, 201,
                       json_pack("{s:I, s:s, s:s, s:o, s:o}", "id", (json_int_t)res.id, "vps", spec.vps_id, "service",
                                 spec.service, "rule", res.rule != NULL ? json_integer(res.rule->index + 1) : json_null(),
                                 "until", pc_json_time(spec.until)));
}

void api_exception_revoke(struct api_request *req, struct api_reply *rep)
{
        static const char *const known[] = { "reason", NULL };
        struct pc_ops_error err;
        const char *reason = NULL;

        if (api_body_only(req, rep, known) < 0 || api_body_string(req, rep, "reason", true, &reason) < 0)
                return;
        if (pc_ops_exception_revoke(req->ops, &req->who, req->params[0], req->params[1], reason, &err) < 0) {
                api_reply_error(rep, &err);
                return;
        }
        api_reply_json(rep, 200, json_pack("{s:s, s:s}", "vps", req->params[0], "revoked", req->params[1]));
}
