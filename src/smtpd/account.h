/* Per-VPS mail figures and rate windows, for limits and for the agent. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "policy/model.h"

#define ACCOUNT_BUCKETS 60 /* a window is counted in 60 slices */

/* Where an upstream refusal happened. */
enum account_stage { ACCOUNT_CONNECT, ACCOUNT_MAIL, ACCOUNT_RCPT, ACCOUNT_DATA, ACCOUNT_STAGES };

/* A count over a sliding window of ACCOUNT_BUCKETS slices. */
struct window {
        uint32_t count[ACCOUNT_BUCKETS];
        int64_t slice[ACCOUNT_BUCKETS]; /* which slice each bucket holds */
};

struct account_vps {
        char key[PC_NAME_MAX];  /* the VPS id */
        unsigned active;        /* sessions open now */
        uint64_t sessions;      /* totals since the proxy started */
        uint64_t messages;      /* accepted by the upstream (or sent unconfirmed) */
        unsigned messages_pending; /* MAIL passed, not ended yet: they count
                                    * against the limit already */
        uint64_t messages_failed;
        uint64_t recipients;    /* accepted by the upstream */
        uint64_t recipients_refused;
        uint64_t bytes;
        uint64_t limited;       /* commands refused by a limit */
        uint64_t upstream_4xx[ACCOUNT_STAGES];
        uint64_t upstream_5xx[ACCOUNT_STAGES];
        int64_t window_ms;      /* the policy's window, at the last use */
        struct window win_messages;
        struct window win_recipients;
        uint8_t domains[128];   /* recipient domains seen in the window (bitmap) */
        int64_t domains_since;
        int64_t last_ms;        /* last activity (wall clock) */
};

struct account;

int account_new(struct account **ret);
struct account *account_free(struct account *a);

/* The figures of <key>, created empty on first use; NULL only on ENOMEM. */
struct account_vps *account_get(struct account *a, const char *key);

/* Adds <n> to window <w> at <now_ms>; returns the sum over the window. */
uint64_t window_add(struct window *w, uint64_t n, int64_t window_ms, int64_t now_ms);

/* The sum over the window ending at <now_ms>. */
uint64_t window_sum(const struct window *w, int64_t window_ms, int64_t now_ms);

/* Records a recipient domain (by hash); returns the distinct estimate. */
unsigned account_domain(struct account_vps *v, uint32_t hash, int64_t now_ms);

/* Distinct recipient domains in the current window (an estimate). */
unsigned account_domains(const struct account_vps *v, int64_t now_ms);

/* The proxy's limits, each decided here and only here, so that each is
 * unit-tested at its edge.  Each returns true if one more is allowed: a
 * limit of N lets the Nth through and refuses the (N+1)th. */

/* One more connection to the proxy while <open> sessions are open, all
 * VPSes together, under smtpd.max-sessions <max_sessions>. */
bool account_may_accept(unsigned open, unsigned max_sessions);

/* One more session of <v> while v->active are open (<l>->sessions_per_vps). */
bool account_may_connect(const struct account_vps *v, const struct pc_smtp_proxy_limits *l);

/* One more message (a MAIL) of <v> at <now_ms>: those sent in the window
 * ending then and those still under way (v->messages_pending) count
 * against <l>->messages_per_hour. */
bool account_may_mail(const struct account_vps *v, const struct pc_smtp_proxy_limits *l, int64_t now_ms);

/* One more RCPT in a transaction that has sent <rcpt_sent> of them
 * (<l>->recipients_per_message). */
bool account_may_rcpt(unsigned rcpt_sent, const struct pc_smtp_proxy_limits *l);

/* One more recipient of <v> in the window ending at <now_ms>
 * (<l>->recipients_per_hour); the caller adds it to v->win_recipients. */
bool account_may_recipient(const struct account_vps *v, const struct pc_smtp_proxy_limits *l, int64_t now_ms);

/* Every VPS's figures as a JSON array (for the control socket). */
json_t *account_json(const struct account *a, int64_t now_ms);
