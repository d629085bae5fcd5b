/* libFuzzer harness for what portcullis-apid reads from a client: the
 * request line's path against every route pattern, a query argument's
 * value (?limit=), and the JSON body through the input readers every
 * handler uses.  Input: "PATH\nQUERY VALUE\nBODY".  Nothing may crash,
 * leak or read out of bounds; every refusal must come with an error body
 * that serialises (valid UTF-8: it is JSON). */
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The route patterns of src/api/routes.c (the table itself pulls every
 * handler in; tests/api checks the patterns are the served ones). */
static const char *const patterns[] = {
        "/v1/vps/{id}", "/v1/vps/{id}/exceptions/{service+}", "/v1/tickets/{id}/approve", "/v1/tokens/{name}",
        "/metrics",
};

/* The store functions ops.c refers to: never called by the readers. */
const char *pc_store_errmsg(const struct pc_store *s)
{
        return "";
}

int pc_store_tx_begin(struct pc_store *s)
{
        abort();
}

int pc_store_tx_end(struct pc_store *s, int r)
{
        abort();
}

/* The query string is libmicrohttpd's to split (server.c); a query
 * argument's value is the input's second line. */
static char query_value[256];
static bool query_given;

const char *api_query(struct api_request *req, const char *name)
{
        return query_given ? query_value : NULL;
}

static void reply_check(struct api_reply *rep)
{
        json_t *e;

        if (rep->body == NULL)
                return;
        e = json_object_get(rep->body, "error");
        if (e == NULL || !json_is_string(json_object_get(e, "message")))
                abort();
        /* The reply must serialise: jansson refuses invalid UTF-8. */
        free(json_dumps(rep->body, 0));
        json_decref(rep->body);
        rep->body = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char *const known[] = { "vps", "service", "ports", "text", "until", "ticket", NULL };
        const char *nl = memchr(data, '\n', size);
        size_t plen = nl != NULL ? (size_t)(nl - (const char *)data) : size;
        char path[256], buf[256];
        struct api_request req = { 0 };
        struct api_reply rep = { 0 };
        const char *params[API_PARAMS_MAX], *s;
        int64_t v;

        if (plen < sizeof(path) && memchr(data, '\0', plen) == NULL) {
                memcpy(path, data, plen);
                path[plen] = '\0';
                for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
                        memcpy(buf, path, plen + 1);
                        /* Each parameter matched is a non-empty string within the path. */
                        if (api_path_match(patterns[i], buf, params))
                                for (const char *q = patterns[i]; (q = strchr(q, '{')) != NULL; q++) {
                                        size_t k = 0;

                                        for (const char *c = patterns[i]; c < q; c++)
                                                k += *c == '{';
                                        if (params[k] < buf || params[k] >= buf + plen || params[k][0] == '\0')
                                                abort();
                                }
                }
                req.params[0] = path;
                if (api_param_id(&req, &rep, 0, "ticket", &v) == 0 && v <= 0)
                        abort();
                reply_check(&rep);
        }
        if (nl == NULL)
                return 0;
        data = (const uint8_t *)nl + 1;
        size -= plen + 1;
        nl = memchr(data, '\n', size);
        plen = nl != NULL ? (size_t)(nl - (const char *)data) : size;
        query_given = plen < sizeof(query_value) && memchr(data, '\0', plen) == NULL;
        if (query_given) {
                size_t limit;

                memcpy(query_value, data, plen);
                query_value[plen] = '\0';
                if (api_query_limit(&req, &rep, &limit) < 0)
                        reply_check(&rep);
                else if (limit < 1 || limit > API_PAGE_MAX)
                        abort();
        }
        if (nl == NULL)
                return 0;
        req.body = json_loadb(nl + 1, size - plen - 1, JSON_REJECT_DUPLICATES, NULL);
        if (req.body == NULL || !json_is_object(req.body)) {
                json_decref(req.body);
                return 0;
        }
        if (api_body_only(&req, &rep, known) < 0)
                reply_check(&rep);
        if (api_body_string(&req, &rep, "service", true, &s) < 0)
                reply_check(&rep);
        else if (s != NULL && strlen(s) != json_string_length(json_object_get(req.body, "service")))
                abort(); /* a NUL inside got through */
        if (api_body_int(&req, &rep, "ticket", &v) < 0)
                reply_check(&rep);
        else if (v < 0)
                abort();
        if (api_body_time(&req, &rep, "until", &v) < 0)
                reply_check(&rep);
        json_decref(req.body);
        return 0;
}
