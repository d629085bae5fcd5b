/* The API's replies and the reading of a request's input (api.h): every
 * byte here comes from the client, so this file has its own fuzz target
 * (tests/fuzz/fuzz_api.c) and needs no connection. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "base/escape.h"
#include "base/utf8.h"
#include "base/util.h"

/* ---- replies ---------------------------------------------------------- */

void api_reply_json(struct api_reply *rep, unsigned status, json_t *body)
{
        json_decref(rep->body);
        rep->status = status;
        rep->body = body;
}

/* A message quotes what the client sent ("host '...' is not a name"), cut
 * to a size, maybe inside a character: JSON needs valid UTF-8 (jansson
 * refuses the rest, and the error would be lost), and whoever shows the
 * message must not get the client's control or bidirectional characters.
 * Such a message is escaped (PC_ESCAPE_TEXT); any other stays as written. */
static void reply_error(struct api_reply *rep, enum pc_ops_code code, const char *field, const char *text)
{
        char why[64], safe[PC_ESCAPED_SIZE(PC_OPS_MESSAGE_MAX + PC_OPS_FIELD_MAX + 2)];
        const char *message = text;

        if (pc_text_invalid(text, why, sizeof(why)) != NULL) {
                pc_escape(safe, sizeof(safe), text, PC_ESCAPE_TEXT);
                message = safe;
        }
        api_reply_json(rep, (unsigned)pc_ops_http_status(code),
                       json_pack("{s:{s:s, s:s, s:o}}", "error", "code", pc_ops_code_name(code), "message", message,
                                 "field", field != NULL && field[0] != '\0' ? json_string(field) : json_null()));
}

void api_reply_error(struct api_reply *rep, const struct pc_ops_error *err)
{
        char msg[PC_OPS_MESSAGE_MAX + PC_OPS_FIELD_MAX + 2];

        /* A bad value's message speaks of the value: say whose it is. */
        if (err->code == PC_OPS_EINVAL && err->field[0] != '\0')
                snprintf(msg, sizeof(msg), "%s: %s", err->field, err->message);
        else
                snprintf(msg, sizeof(msg), "%s", err->message);
        reply_error(rep, err->code, err->field, msg);
}

void api_reply_fail(struct api_reply *rep, enum pc_ops_code code, const char *field, const char *fmt, ...)
{
        char msg[PC_OPS_MESSAGE_MAX];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        reply_error(rep, code, field, msg);
}

/* ---- input ------------------------------------------------------------ */

static int bad_type(struct api_reply *rep, const char *name, const char *what)
{
        api_reply_fail(rep, PC_OPS_EINVAL, name, "%s must be %s", name, what);
        return -EINVAL;
}

int api_body_string(struct api_request *req, struct api_reply *rep, const char *name, bool required,
                    const char **ret)
{
        json_t *v = req->body != NULL ? json_object_get(req->body, name) : NULL;

        *ret = NULL;
        if (v == NULL || json_is_null(v)) {
                if (!required)
                        return 0;
                api_reply_fail(rep, PC_OPS_EINVAL, name, "%s is required", name);
                return -EINVAL;
        }
        if (!json_is_string(v))
                return bad_type(rep, name, "a string");
        /* jansson accepts \u0000 inside a string: C would cut it there. */
        if (strlen(json_string_value(v)) != json_string_length(v))
                return bad_type(rep, name, "a string without NUL characters");
        *ret = json_string_value(v);
        return 0;
}

int api_body_int(struct api_request *req, struct api_reply *rep, const char *name, int64_t *ret)
{
        json_t *v = req->body != NULL ? json_object_get(req->body, name) : NULL;

        *ret = 0;
        if (v == NULL || json_is_null(v))
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return bad_type(rep, name, "an integer >= 0");
        *ret = json_integer_value(v);
        return 0;
}

int api_body_bool(struct api_request *req, struct api_reply *rep, const char *name, bool *ret)
{
        json_t *v = req->body != NULL ? json_object_get(req->body, name) : NULL;

        *ret = false;
        if (v == NULL || json_is_null(v))
                return 0;
        if (!json_is_boolean(v))
                return bad_type(rep, name, "true or false");
        *ret = json_is_true(v);
        return 0;
}

int api_body_time(struct api_request *req, struct api_reply *rep, const char *name, int64_t *ret)
{
        json_t *v = req->body != NULL ? json_object_get(req->body, name) : NULL;
        int64_t now = pc_now();

        *ret = 0;
        if (v == NULL || json_is_null(v))
                return 0;
        if (json_is_integer(v))
                *ret = json_integer_value(v);
        else if (!json_is_string(v) || pc_parse_time(json_string_value(v), now, ret) < 0)
                return bad_type(rep, name,
                                "a time: unix seconds, or \"2026-12-31\", \"2026-12-31T18:00:00Z\" or \"+30d\"");
        if (*ret <= now) {
                api_reply_fail(rep, PC_OPS_EINVAL, name, "%s is in the past", name);
                return -EINVAL;
        }
        return 0;
}

int api_body_only(struct api_request *req, struct api_reply *rep, const char *const *known)
{
        const char *key;
        json_t *v;

        if (req->body == NULL)
                return 0;
        json_object_foreach(req->body, key, v) {
                size_t i;

                for (i = 0; known[i] != NULL && strcmp(known[i], key) != 0; i++)
                        ;
                if (known[i] == NULL) {
                        char name[64];

                        /* The member's name is the client's text: cut, never echoed whole. */
                        pc_escape(name, sizeof(name), key, PC_ESCAPE_TEXT);
                        api_reply_fail(rep, PC_OPS_EINVAL, name, "unknown member '%s'", name);
                        return -EINVAL;
                }
        }
        return 0;
}

int api_query_limit(struct api_request *req, struct api_reply *rep, size_t *ret)
{
        const char *v = api_query(req, "limit");
        char *end;
        long n;

        *ret = API_PAGE_DEFAULT;
        if (v == NULL)
                return 0;
        n = strtol(v, &end, 10);
        if (*v == '\0' || *end != '\0' || n < 1 || n > API_PAGE_MAX) {
                api_reply_fail(rep, PC_OPS_EINVAL, "limit", "limit must be 1 to %d", API_PAGE_MAX);
                return -EINVAL;
        }
        *ret = (size_t)n;
        return 0;
}

int api_param_id(struct api_request *req, struct api_reply *rep, size_t i, const char *field, int64_t *ret)
{
        const char *v = req->params[i];
        char *end;
        long long n;

        n = strtoll(v, &end, 10);
        if (*v < '1' || *v > '9' || *end != '\0' || n <= 0) {
                /* Not an id of anything: the object does not exist. */
                api_reply_fail(rep, PC_OPS_ENOENT, field, "%s does not exist", field);
                return -ENOENT;
        }
        *ret = n;
        return 0;
}
