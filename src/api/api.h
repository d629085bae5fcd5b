/* portcullis-apid: the HTTP+JSON API (docs/API.md).  A separate,
 * unprivileged daemon: it parses what customers and control panels send,
 * so it holds no root and no control socket.  It authenticates a bearer
 * token, routes the request to a handler, and the handler calls the
 * operations layer (src/ops/), which authorises and writes the store.  The
 * agent learns of a change from the store's change feed, woken by a
 * datagram (agent/changes.c). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ops/ops.h"

#define API_BODY_MAX (64 * 1024)  /* bytes of a request body: 413 beyond */
#define API_PARAMS_MAX 4           /* {placeholders} in a route */
#define API_PAGE_DEFAULT 50
#define API_PAGE_MAX 100 /* a page is one request's work: bounded */

/* A request, as a handler sees it. */
struct api_request {
        const char *method;
        const char *path;
        const char *params[API_PARAMS_MAX]; /* the route's {placeholders}, in order */
        void *conn;                          /* the MHD connection, for api_query() */
        json_t *body;                        /* the JSON object sent; NULL for none */
        struct pc_ops_actor who;             /* authenticated */
        struct pc_ops *ops;
        struct api_server *server;
};

/* A handler's answer: a status and a JSON body (taken). */
struct api_reply {
        unsigned status;
        json_t *body;
        char *text;      /* instead of <body>: text/plain (Prometheus), freed */
        bool close;      /* close the connection after it */
};

typedef void (*api_handler)(struct api_request *req, struct api_reply *rep);

struct api_route {
        const char *method;   /* "GET", "POST", "DELETE" */
        const char *pattern;  /* "/v1/tickets/{id}/approve"; a last "{name+}" takes the rest of the path */
        api_handler handler;
        int op;               /* the enum pc_op the caller's role must be allowed (pc_ops_authorize),
                               * checked before the body is looked at; -1: any authenticated caller */
};

/* The route table (routes.c), in the order matched. */
extern const struct api_route api_routes[];
extern const size_t api_n_routes;

/* Does <path> (a writable copy, cut at the parameters' ends) match
 * <pattern>?  Fills <params> with pointers into it (route_match.c). */
bool api_path_match(const char *pattern, char *path, const char **params);

/* Finds the route for <method> <path>, filling <params> (pointers into
 * <buf>, a copy of <path> of <size> bytes).  NULL and *<ret_path_known>
 * true if the path exists with other methods (405), false if not (404). */
const struct api_route *api_route_find(const char *method, const char *path, char *buf, size_t size,
                                       const char **params, bool *ret_path_known);

/* ---- replies ---------------------------------------------------------- */

/* <body> (taken) with <status>. */
void api_reply_json(struct api_reply *rep, unsigned status, json_t *body);

/* The error of an operation: its HTTP status and
 * {"error": {"code", "message", "field"}}. */
void api_reply_error(struct api_reply *rep, const struct pc_ops_error *err);

/* An error of the API's own (a bad query argument, an unknown route). */
void api_reply_fail(struct api_reply *rep, enum pc_ops_code code, const char *field, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* ---- input ------------------------------------------------------------ */

/* Body member <name> as a string into *<ret>: 0 (NULL when absent and not
 * <required>), or -EINVAL with a 400 naming the field in <rep>. */
int api_body_string(struct api_request *req, struct api_reply *rep, const char *name, bool required,
                    const char **ret);

/* Body member <name> as an integer (0 when absent). */
int api_body_int(struct api_request *req, struct api_reply *rep, const char *name, int64_t *ret);

/* Body member <name> as a boolean (false when absent). */
int api_body_bool(struct api_request *req, struct api_reply *rep, const char *name, bool *ret);

/* Body member <name> as a time: an integer (unix seconds) or a string
 * pc_parse_time reads ("2026-12-31", "+30d"); 0 when absent. */
int api_body_time(struct api_request *req, struct api_reply *rep, const char *name, int64_t *ret);

/* Fails with 400 if the body has a member not in <known> (NULL-ended):
 * a misspelt field must not pass silently. */
int api_body_only(struct api_request *req, struct api_reply *rep, const char *const *known);

/* Query argument <name>, or NULL. */
const char *api_query(struct api_request *req, const char *name);

/* ?limit= (default API_PAGE_DEFAULT, at most API_PAGE_MAX) into *<ret>. */
int api_query_limit(struct api_request *req, struct api_reply *rep, size_t *ret);

/* Path parameter <i> as a positive id. */
int api_param_id(struct api_request *req, struct api_reply *rep, size_t i, const char *field, int64_t *ret);

/* ---- pages of a list (page.c) ----------------------------------------- */

/* One page of a list: at most <limit> items, newest first by id unless the
 * list is keyed otherwise (/v1/vps, ?after=).  A list may be read in
 * several runs, each newest first (a customer's VPSes, one read each): the
 * page keeps the newest <limit> of them all, so that ?before= skips none. */
struct api_page {
        json_t *list;   /* the items taken, newest first; the reply takes it */
        int64_t before; /* ?before=: only ids below it; 0 from the newest */
        int64_t last;   /* the id of the last item taken: the next page's ?before= */
        size_t limit, n;
        int64_t ids[API_PAGE_MAX]; /* of the items in <list> */
        int64_t prev;   /* the id taken before: a higher one begins another run */
        size_t run;     /* items taken from this run */
        bool more;      /* an item was left out: there is a next page */
};

/* Reads ?limit= and, unless <before_is> is NULL (a list without ?before=),
 * ?before= (a positive id, else "before must be <before_is>") into <p>,
 * with a new empty list: 0, or -EINVAL with a 400 in <rep>. */
int api_page_start(struct api_request *req, struct api_reply *rep, const char *before_is, struct api_page *p);

/* Takes <item> (taken) with id <id> (0 in a list keyed otherwise) into the
 * page; an item at or past ?before= is dropped.  0, or -ENOBUFS when the
 * current run can add nothing more to the page: a read callback's "stop"
 * (of that run; pc_ops lists go on with the next). */
int api_page_take(struct api_page *p, int64_t id, json_t *item);

/* Answers the error <err> of the read, freeing the page's list. */
void api_page_fail(struct api_reply *rep, struct api_page *p, const struct pc_ops_error *err);

/* Answers 200 {<name>: [the items], "next": <next> (taken)}. */
void api_page_reply(struct api_reply *rep, struct api_page *p, const char *name, json_t *next);

/* Answers after a read that returned <r>: its error (r < 0, not -ENOBUFS),
 * or the page, "next" the last id when items were left out of it and null
 * when the list ended within it. */
void api_page_end(struct api_reply *rep, struct api_page *p, const char *name, int r, const struct pc_ops_error *err);

/* ---- the server ------------------------------------------------------- */

struct api_settings {
        const char *address;     /* the address to listen on: "127.0.0.1" (default), "::1", "0.0.0.0" */
        uint16_t port;           /* 8470 */
        const char *tls_cert;    /* PEM text (not a path), or NULL: plain HTTP */
        const char *tls_key;
        unsigned rate;           /* requests per second per client address */
        unsigned burst;          /* and in one burst */
        unsigned connections;    /* at once, all clients */
        unsigned per_client;     /* at once from one address: a slow client (slowloris) holds at most
                                  * these, never all of them */
        const char *wake_path;   /* the agent's wake socket; "" none */
        const char *agent_metrics; /* the file portcullisd writes its figures to; NULL none */
};

struct api_server;

/* Starts serving on a thread of its own; every request is handled on it,
 * one at a time (the store's connection is not shared).  0, or -errno
 * with <err> saying why. */
int api_server_start(const struct api_settings *set, struct pc_ops *ops, struct api_server **ret, char *err,
                     size_t errsz);
void api_server_stop(struct api_server *s);

/* The server's counters, for /metrics: requests by status class ([1] 1xx
 * .. [5] 5xx), refused over the rate, over the size, unauthenticated, and
 * wakes of the agent that failed. */
void api_server_counters(const struct api_server *s, uint64_t requests[6], uint64_t *rate, uint64_t *size,
                         uint64_t *auth, uint64_t *wakes_failed);

/* The agent's metrics file opened for reading, or NULL (none, or not
 * readable: /metrics then has the API's and the store's figures only). */
FILE *api_server_agent_metrics(const struct api_server *s);

/* The port actually bound (for --port 0). */
uint16_t api_server_port(const struct api_server *s);

/* Handlers of routes.c's table, one file per resource. */
void api_whoami(struct api_request *req, struct api_reply *rep);
void api_metrics(struct api_request *req, struct api_reply *rep);
void api_vps_list(struct api_request *req, struct api_reply *rep);
void api_vps_get(struct api_request *req, struct api_reply *rep);
void api_vps_register(struct api_request *req, struct api_reply *rep);
void api_vps_remove(struct api_request *req, struct api_reply *rep);
void api_vps_update(struct api_request *req, struct api_reply *rep);
void api_vps_start(struct api_request *req, struct api_reply *rep);
void api_vps_stop(struct api_request *req, struct api_reply *rep);
void api_vps_move(struct api_request *req, struct api_reply *rep);
void api_vps_depart(struct api_request *req, struct api_reply *rep);
void api_exception_grant(struct api_request *req, struct api_reply *rep);
void api_exception_revoke(struct api_request *req, struct api_reply *rep);
void api_services(struct api_request *req, struct api_reply *rep);
void api_ticket_list(struct api_request *req, struct api_reply *rep);
void api_ticket_open(struct api_request *req, struct api_reply *rep);
void api_ticket_get(struct api_request *req, struct api_reply *rep);
void api_ticket_investigate(struct api_request *req, struct api_reply *rep);
void api_ticket_approve(struct api_request *req, struct api_reply *rep);
void api_ticket_deny(struct api_request *req, struct api_reply *rep);
void api_ticket_revoke(struct api_request *req, struct api_reply *rep);
void api_incident_list(struct api_request *req, struct api_reply *rep);
void api_incident_get(struct api_request *req, struct api_reply *rep);
void api_incident_close(struct api_request *req, struct api_reply *rep);
void api_action_list(struct api_request *req, struct api_reply *rep);
void api_action_lift(struct api_request *req, struct api_reply *rep);
void api_notification_list(struct api_request *req, struct api_reply *rep);
void api_notification_retry(struct api_request *req, struct api_reply *rep);
void api_filter_place(struct api_request *req, struct api_reply *rep);
void api_vps_suspend(struct api_request *req, struct api_reply *rep);
void api_vps_unsuspend(struct api_request *req, struct api_reply *rep);
void api_vps_terminate(struct api_request *req, struct api_reply *rep);
void api_audit_list(struct api_request *req, struct api_reply *rep);
void api_fleet_status(struct api_request *req, struct api_reply *rep);
void api_token_list(struct api_request *req, struct api_reply *rep);
void api_token_create(struct api_request *req, struct api_reply *rep);
void api_token_revoke(struct api_request *req, struct api_reply *rep);
