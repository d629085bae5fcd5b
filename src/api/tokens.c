/* /v1/tokens: an admin mints and revokes the API's bearer tokens. */
#include <errno.h>

#include "api/api.h"
#include "ops/ops_json.h"

static int token_cb(const struct pc_api_token *t, void *userdata)
{
        return json_array_append_new(userdata, pc_json_token(t));
}

void api_token_list(struct api_request *req, struct api_reply *rep)
{
        const char *all = api_query(req, "all");
        struct pc_ops_error err;
        json_t *list = json_array();

        if (pc_ops_token_list(req->ops, &req->who, all != NULL && all[0] != '0' && all[0] != 'f', token_cb, list,
                              &err) < 0) {
                json_decref(list);
                api_reply_error(rep, &err);
                return;
        }
        api_reply_json(rep, 200, json_pack("{s:o}", "tokens", list));
}

void api_token_create(struct api_request *req, struct api_reply *rep)
{
        static const char *const known[] = { "name", "role", "customer", "host", "any_host", "expires", NULL };
        struct pc_token_spec spec = { 0 };
        char text[PC_TOKEN_TEXT_SIZE];
        struct pc_api_token t;
        struct pc_ops_error err;
        json_t *j;

        if (api_body_only(req, rep, known) < 0 || api_body_string(req, rep, "name", true, &spec.name) < 0 ||
            api_body_string(req, rep, "role", true, &spec.role) < 0 ||
            api_body_string(req, rep, "customer", false, &spec.customer) < 0 ||
            api_body_string(req, rep, "host", false, &spec.host) < 0 ||
            api_body_bool(req, rep, "any_host", &spec.any_host) < 0 ||
            api_body_time(req, rep, "expires", &spec.expires) < 0)
                return;
        if (pc_ops_token_create(req->ops, &req->who, &spec, text, &t, &err) < 0) {
                api_reply_error(rep, &err);
                return;
        }
        j = pc_json_token(&t);
        json_object_set_new(j, "token", json_string(text)); /* this once */
        api_reply_json(rep, 201, j);
}

void api_token_revoke(struct api_request *req, struct api_reply *rep)
{
        struct pc_ops_error err;

        if (pc_ops_token_revoke(req->ops, &req->who, req->params[0], &err) < 0) {
                api_reply_error(rep, &err);
                return;
        }
        api_reply_json(rep, 200, json_pack("{s:s}", "revoked", req->params[0]));
}
