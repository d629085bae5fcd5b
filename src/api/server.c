/* The API's HTTP side (libmicrohttpd): limits, authentication, routing,
 * and the JSON of every answer.  One thread handles every request in turn
 * (MHD's internal polling thread): the store's connection is not shared
 * between threads, and an operation takes milliseconds. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "api/api.h"
#include "api/slots.h"
#include "base/escape.h"
#include "base/unixsock.h"
#include "base/util.h"
#include "ops/ops_json.h"

#define CLIENTS 1024          /* rate buckets (client addresses) tracked: a power of 2 */
#define PROBES 16             /* the slots a client's address may take, from its hash on */
#define CONNECTION_TIMEOUT 10 /* s: a client that stops sending is dropped */
#define MHD_LOG_BURST 5       /* libmicrohttpd's own messages logged per window: a stranger's */
#define MHD_LOG_WINDOW_MS 10000 /* malformed requests must not write the log at their rate */

/* A client's token bucket: <tokens> (in 1/1000s) refill at <rate>/s. */
struct bucket {
        uint8_t addr[16];
        bool used;
        int64_t tokens;
        int64_t at_ms;
};

struct api_server {
        struct MHD_Daemon *mhd;
        struct pc_ops *ops;
        struct api_settings set;
        struct bucket buckets[CLIENTS];
        struct bucket overflow;  /* shared by newcomers while each of their slots holds a throttled client */
        uint64_t seed;           /* of the slots' hash: a client cannot aim at another's slots */
        uint64_t requests[6];   /* by status class: 1xx .. 5xx; [0] others */
        uint64_t refused_rate, refused_size, refused_auth;
        uint64_t wakes_failed;
        uint16_t port;
        struct api_slots slots;
        int64_t log_window_ms;   /* of libmicrohttpd's messages: when this window began */
        unsigned log_lines;      /* logged in it */
        uint64_t log_suppressed; /* not logged in it */
};

/* What one request accumulates across MHD's calls. */
struct pending {
        char *body;
        size_t len;
        bool too_large;
        bool limited;
        bool ambiguous; /* both Content-Length and Transfer-Encoding: a smuggling attempt */
        bool answered;  /* refused before its body: the rest of it is dropped */
        /* Authenticated from the headers, before any body is read: a
         * stranger's body is never waited for. */
        int auth;                 /* 0, or pc_ops_token_authenticate's failure */
        struct pc_ops_error auth_err;
        struct pc_api_token token;
        struct pc_ops_actor who;  /* its strings are <token>'s */
};

static int64_t mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- limits ----------------------------------------------------------- */

/* The client's address as the rate limiter keys it (api_client_key). */
static void client_addr(struct MHD_Connection *conn, uint8_t out[16])
{
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

        api_client_key(ci != NULL ? ci->client_addr : NULL, out);
}

/* Refills <b> to <now>. */
static void bucket_refill(const struct api_server *s, struct bucket *b, int64_t now)
{
        int64_t full = (int64_t)s->set.burst * 1000;

        b->tokens += (now - b->at_ms) * s->set.rate;
        if (b->tokens > full)
                b->tokens = full;
        b->at_ms = now;
}

/* The first of the PROBES slots of <addr>. */
static size_t slot_of(const struct api_server *s, const uint8_t addr[16])
{
        uint64_t hi, lo;

        memcpy(&hi, addr, 8);
        memcpy(&lo, addr + 8, 8);
        return (size_t)pc_mix64(pc_mix64(hi ^ s->seed) ^ lo) & (CLIENTS - 1);
}

/* Takes one request from the client's bucket: false when it is empty.
 * A client's bucket is in one of the PROBES slots from slot_of() on, never
 * elsewhere: its lookup reads at most those, and stops at an unused slot
 * (a slot is never emptied, so nobody was put past one).  A new client
 * takes an unused slot there or that of a client whose bucket is full
 * again (it holds nothing to forget); with neither, it shares the overflow
 * bucket with every other such newcomer: flooding the table with addresses
 * frees no throttled client, it only throttles the flood. */
static bool rate_take(struct api_server *s, const uint8_t addr[16])
{
        int64_t now = mono_ms(), full = (int64_t)s->set.burst * 1000;
        struct bucket *b = NULL, *free_slot = NULL;
        size_t first = slot_of(s, addr);

        for (size_t i = 0; i < PROBES && b == NULL; i++) {
                struct bucket *c = &s->buckets[(first + i) & (CLIENTS - 1)];

                if (!c->used) {
                        if (free_slot == NULL)
                                free_slot = c;
                        break;
                }
                if (memcmp(c->addr, addr, 16) == 0) {
                        b = c;
                        break;
                }
                bucket_refill(s, c, now);
                if (free_slot == NULL && c->tokens >= full)
                        free_slot = c;
        }
        if (b == NULL && free_slot != NULL) {
                b = free_slot;
                *b = (struct bucket){ .used = true, .tokens = full, .at_ms = now };
                memcpy(b->addr, addr, 16);
        } else if (b == NULL) {
                b = &s->overflow;
                if (b->at_ms == 0)
                        *b = (struct bucket){ .used = true, .tokens = full, .at_ms = now };
        }
        bucket_refill(s, b, now);
        if (b->tokens < 1000)
                return false;
        b->tokens -= 1000;
        return true;
}

/* ---- input that needs the connection ---------------------------------- */

const char *api_query(struct api_request *req, const char *name)
{
        return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* ---- one request ------------------------------------------------------ */

static enum MHD_Result send_reply(struct MHD_Connection *conn, struct api_server *s, struct api_reply *rep)
{
        struct MHD_Response *resp;
        enum MHD_Result ret;
        char *text = NULL;

        if (rep->text != NULL) {
                text = rep->text;
                rep->text = NULL;
                goto send;
        }
        if (rep->body == NULL)
                rep->body = json_object();
        text = rep->body != NULL ? json_dumps(rep->body, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
        if (text == NULL) {
                rep->status = 500;
                text = strdup("{\"error\": {\"code\": \"internal\", \"message\": \"out of memory\", \"field\": null}}");
                if (text == NULL)
                        return MHD_NO;
        }
        {
                /* A newline at the end, as curl users expect. */
                size_t len = strlen(text);
                char *t = realloc(text, len + 2);

                if (t != NULL) {
                        text = t;
                        text[len] = '\n';
                        text[len + 1] = '\0';
                }
        }
send:
        resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        if (resp == NULL) {
                free(text);
                return MHD_NO;
        }
        MHD_add_response_header(resp, "Content-Type",
                                rep->body != NULL ? "application/json" : "text/plain; version=0.0.4; charset=utf-8");
        MHD_add_response_header(resp, "Cache-Control", "no-store");
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        if (rep->status == 401)
                MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"portcullis\"");
        if (rep->status == 429)
                MHD_add_response_header(resp, "Retry-After", "1");
        if (rep->close)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
        ret = MHD_queue_response(conn, rep->status, resp);
        MHD_destroy_response(resp);
        s->requests[rep->status / 100 <= 5 ? rep->status / 100 : 0]++;
        json_decref(rep->body);
        rep->body = NULL;
        return ret;
}

/* The token of "Authorization: Bearer TOKEN", or NULL. */
static const char *bearer(struct MHD_Connection *conn)
{
        const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);

        if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
                return NULL;
        h += 7;
        while (*h == ' ')
                h++;
        return h;
}

static void handle(struct api_server *s, struct MHD_Connection *conn, const char *method, const char *url,
                   struct pending *p, struct api_reply *rep, char who[PC_NAME_MAX])
{
        struct api_request req = { .method = method, .path = url, .conn = conn, .ops = s->ops, .server = s };
        const struct api_route *route;
        struct pc_ops_error err;
        json_error_t jerr;
        char path[1024];
        bool known;

        route = api_route_find(method, url, path, sizeof(path), req.params, &known);
        /* Authenticated from the headers (on_request) before it says
         * whether a route exists. */
        req.who = p->who;
        snprintf(who, PC_NAME_MAX, "%s", req.who.principal);
        if (route == NULL) {
                if (known)
                        api_reply_json(rep, 405,
                                       json_pack("{s:{s:s, s:s, s:n}}", "error", "code", "method_not_allowed",
                                                 "message", "the method is not allowed on this path", "field"));
                else
                        api_reply_fail(rep, PC_OPS_ENOENT, NULL, "no such resource");
                return;
        }
        /* The role before anything of the request is looked at. */
        if (route->op >= 0 && pc_ops_authorize(&req.who, (enum pc_op)route->op, &err) < 0) {
                api_reply_error(rep, &err);
                return;
        }
        if (p->len > 0) {
                req.body = json_loadb(p->body, p->len, JSON_REJECT_DUPLICATES, &jerr);
                if (req.body == NULL || !json_is_object(req.body)) {
                        api_reply_fail(rep, PC_OPS_EINVAL, "body", "the body must be a JSON object: %s",
                                       req.body == NULL ? jerr.text : "it is another JSON value");
                        json_decref(req.body);
                        return;
                }
        }
        route->handler(&req, rep);
        json_decref(req.body);
}

/* A change committed (every write transaction is one, in the feed): the
 * agent is woken before the answer is built. */
static void on_commit(void *userdata)
{
        struct api_server *s = userdata;

        if (s->set.wake_path != NULL && s->set.wake_path[0] != '\0' && pc_unix_wake(s->set.wake_path) < 0)
                s->wakes_failed++; /* the agent follows the feed on its own */
}

/* A refusal before the request is read (its address over the rate, a
 * body it says is too large, two framings, no valid token): into <rep>;
 * false if none. */
static bool refused_early(struct api_server *s, const struct pending *p, struct api_reply *rep)
{
        if (p->auth < 0 && !p->limited) {
                if (p->auth_err.code == PC_OPS_EAUTH)
                        s->refused_auth++;
                api_reply_error(rep, &p->auth_err);
        } else if (p->ambiguous) {
                /* A proxy in front may read another request in it than we
                 * do (RFC 9112 6.3). */
                api_reply_fail(rep, PC_OPS_EINVAL, NULL,
                               "a request with both Content-Length and Transfer-Encoding is refused");
        } else if (p->limited) {
                s->refused_rate++;
                api_reply_fail(rep, PC_OPS_ELIMIT, NULL, "too many requests from this address: at most %u a second",
                               s->set.rate);
                rep->status = 429;
                json_object_set_new(json_object_get(rep->body, "error"), "code", json_string("rate_limited"));
        } else if (p->too_large) {
                s->refused_size++;
                api_reply_fail(rep, PC_OPS_EINVAL, "body", "the body is larger than %d bytes", API_BODY_MAX);
                rep->status = 413;
                json_object_set_new(json_object_get(rep->body, "error"), "code", json_string("too_large"));
        } else
                return false;
        /* What the client still sends is not read: the connection ends. */
        rep->close = true;
        return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
        struct api_server *s = cls;
        struct pending *p = *con_cls;
        struct api_reply rep = { 0 };
        char who[PC_NAME_MAX] = "", path[256], verb[32];
        enum MHD_Result ret;
        unsigned status;

        if (p == NULL) {
                const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
                uint8_t addr[16];

                p = calloc(1, sizeof(*p));
                if (p == NULL)
                        return MHD_NO;
                *con_cls = p;
                api_slots_request(&s->slots, conn, true);
                client_addr(conn, addr);
                p->limited = !rate_take(s, addr);
                if (!p->limited)
                        p->auth = pc_ops_token_authenticate(s->ops, bearer(conn), pc_now(), &p->token, &p->who,
                                                            &p->auth_err);
                p->too_large = cl != NULL && strtoull(cl, NULL, 10) > API_BODY_MAX;
                p->ambiguous = cl != NULL && MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                                         MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
                if (!refused_early(s, p, &rep))
                        return MHD_YES;
                p->answered = true;
                return send_reply(conn, s, &rep);
        }
        if (p->answered) { /* refused early: what follows is dropped */
                *upload_size = 0;
                return MHD_YES;
        }
        if (*upload_size > 0) {
                if (!p->too_large && p->len + *upload_size <= API_BODY_MAX) {
                        char *b = realloc(p->body, p->len + *upload_size);

                        if (b == NULL)
                                return MHD_NO;
                        memcpy(b + p->len, upload, *upload_size);
                        p->body = b;
                        p->len += *upload_size;
                } else
                        p->too_large = true; /* a chunked body, which said no size */
                *upload_size = 0;
                return MHD_YES;
        }
        if (!refused_early(s, p, &rep))
                handle(s, conn, method, url, p, &rep, who);
        status = rep.status;
        ret = send_reply(conn, s, &rep);
        /* One line per request (not per one refused over the rate: a flood
         * would flood the log), what the client sent escaped. */
        pc_escape(path, sizeof(path), url, PC_ESCAPE_LOG);
        pc_escape(verb, sizeof(verb), method, PC_ESCAPE_LOG); /* any token is a method to MHD */
        fprintf(stderr, "%s %s %u by=%s\n", verb, path, status, who[0] != '\0' ? who : "-");
        return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
        struct api_server *s = cls;
        struct pending *p = *con_cls;

        api_slots_request(&s->slots, conn, false);
        if (p != NULL) {
                free(p->body);
                free(p);
        }
        *con_cls = NULL;
}

/* ---- the server ------------------------------------------------------- */

/* libmicrohttpd's own messages (a request it cannot parse never reaches
 * on_request): at most MHD_LOG_BURST per window, escaped, and how many
 * were not logged. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
        struct api_server *s = cls;
        char msg[512], safe[PC_ESCAPED_SIZE(512)];
        int64_t now = mono_ms();
        size_t n;

        if (now - s->log_window_ms >= MHD_LOG_WINDOW_MS) {
                if (s->log_suppressed > 0)
                        fprintf(stderr, "libmicrohttpd: %llu more message(s) not logged (at most %d per %d s)\n",
                                (unsigned long long)s->log_suppressed, MHD_LOG_BURST, MHD_LOG_WINDOW_MS / 1000);
                s->log_window_ms = now;
                s->log_lines = 0;
                s->log_suppressed = 0;
        }
        if (s->log_lines >= MHD_LOG_BURST) {
                s->log_suppressed++;
                return;
        }
        s->log_lines++;
        vsnprintf(msg, sizeof(msg), fmt, ap);
        n = strlen(msg);
        while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
                msg[--n] = '\0';
        pc_escape(safe, sizeof(safe), msg, PC_ESCAPE_LOG);
        fprintf(stderr, "libmicrohttpd: %s\n", safe);
}

int api_server_start(const struct api_settings *set, struct pc_ops *ops, struct api_server **ret, char *err,
                     size_t errsz)
{
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } addr = { 0 };
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
        struct api_server *s;
        const union MHD_DaemonInfo *di;

        if (inet_pton(AF_INET, set->address, &addr.in.sin_addr) == 1) {
                addr.in.sin_family = AF_INET;
                addr.in.sin_port = htons(set->port);
        } else if (inet_pton(AF_INET6, set->address, &addr.in6.sin6_addr) == 1) {
                addr.in6.sin6_family = AF_INET6;
                addr.in6.sin6_port = htons(set->port);
                flags |= MHD_USE_IPv6;
        } else {
                snprintf(err, errsz, "--listen '%s' is not an IPv4 or IPv6 address", set->address);
                return -EINVAL;
        }
        if ((set->tls_cert == NULL) != (set->tls_key == NULL)) {
                snprintf(err, errsz, "TLS needs both a certificate and its key");
                return -EINVAL;
        }
        if (set->tls_cert != NULL)
                flags |= MHD_USE_TLS;
        s = calloc(1, sizeof(*s));
        if (s == NULL)
                return -ENOMEM;
        s->ops = ops;
        s->set = *set;
        pc_store_on_commit(ops->store, on_commit, s);
        if (getrandom(&s->seed, sizeof(s->seed), GRND_NONBLOCK) != (ssize_t)sizeof(s->seed))
                s->seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)s;
        s->slots = (struct api_slots){ .limit = set->connections, .per_client = set->per_client };
        /* The slots are ours (slots.c); MHD's own limit leaves room for the
         * connections they took, which MHD closes at its next turn. */
        if (set->tls_cert != NULL)
                s->mhd = MHD_start_daemon(flags, set->port, api_slots_accept, &s->slots, on_request, s,
                                          MHD_OPTION_SOCK_ADDR, &addr.sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                          MHD_OPTION_NOTIFY_CONNECTION, api_slots_notify, &s->slots,
                                          MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT,
                                          MHD_OPTION_CONNECTION_LIMIT, 2 * set->connections,
                                          MHD_OPTION_HTTPS_MEM_CERT, set->tls_cert, MHD_OPTION_HTTPS_MEM_KEY,
                                          set->tls_key, MHD_OPTION_END);
        else
                s->mhd = MHD_start_daemon(flags, set->port, api_slots_accept, &s->slots, on_request, s,
                                          MHD_OPTION_SOCK_ADDR, &addr.sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                          MHD_OPTION_NOTIFY_CONNECTION, api_slots_notify, &s->slots,
                                          MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT,
                                          MHD_OPTION_CONNECTION_LIMIT, 2 * set->connections, MHD_OPTION_END);
        if (s->mhd == NULL) {
                snprintf(err, errsz, "cannot listen on %s port %u (in use, or not an address of this host?)",
                         set->address, set->port);
                free(s);
                return -EADDRNOTAVAIL;
        }
        di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
        s->port = di != NULL ? di->port : set->port;
        *ret = s;
        return 0;
}

void api_server_stop(struct api_server *s)
{
        if (s == NULL)
                return;
        MHD_stop_daemon(s->mhd);
        pc_store_on_commit(s->ops->store, NULL, NULL);
        free(s);
}

FILE *api_server_agent_metrics(const struct api_server *s)
{
        return s->set.agent_metrics != NULL ? fopen(s->set.agent_metrics, "re") : NULL;
}

uint16_t api_server_port(const struct api_server *s)
{
        return s->port;
}

/* ---- the server's own resources ---------------------------------------- */

void api_whoami(struct api_request *req, struct api_reply *rep)
{
        api_reply_json(rep, 200,
                       json_pack("{s:s, s:s, s:o, s:o}", "name", req->who.principal, "role",
                                 pc_role_name(req->who.role), "customer", pc_json_text(req->who.customer), "host",
                                 pc_json_text(pc_ops_actor_host(&req->who))));
}

void api_server_counters(const struct api_server *s, uint64_t requests[6], uint64_t *rate, uint64_t *size,
                         uint64_t *auth, uint64_t *wakes_failed)
{
        memcpy(requests, s->requests, sizeof(s->requests));
        *rate = s->refused_rate;
        *size = s->refused_size;
        *auth = s->refused_auth;
        *wakes_failed = s->wakes_failed;
}
