/* portcullis-smtpd: the transparent SMTP proxy for outbound port 25. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "policy/config.h"
#include "policy/model.h"
#include "store/store.h"

struct event_base;
struct evconnlistener;
struct event;
struct account;
struct addr_index;
struct dest_guard;
struct lograte;
struct ssl_ctx_st;

#define SMTPD_LISTENERS_MAX 8

struct session;

struct smtpd {
        const char *config_path;
        const char *db_url;     /* overrides the config's database (tests) */
        bool verbose;

        struct pc_config *cfg;
        struct pc_store *store;
        struct pc_model *model;
        struct addr_index *index; /* source address -> VPS */
        struct account *account;  /* per-VPS figures and limits */
        struct ssl_ctx_st *tls;   /* for upstream-tls: opportunistic; NULL if none */
        struct dest_guard *guard; /* destinations refused: this host, internal networks */
        struct lograte *log_refused;  /* refusal lines, per VPS or unknown source */
        struct lograte *log_sessions; /* session lines, per VPS */
        struct event *tick;       /* once a second: log summaries, housekeeping */
        unsigned ticks;
        bool trim_due;            /* sessions ended since memory was last given back */

        struct event_base *base;
        struct evconnlistener *listeners[SMTPD_LISTENERS_MAX];
        size_t n_listeners;
        int control_fd;
        struct event *control_ev;
        struct event *signals[3];

        unsigned sessions;       /* open now */
        uint64_t sessions_total;
        uint64_t refused_total;  /* at connect: limits, policy, unknown source */
        uint64_t next_session_id;
        int64_t started;
        struct session *first;   /* every open session (proxy.c) */
};

/* Logs one line on stderr ("portcullis-smtpd: ..."); journald keeps it. */
void smtpd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Loads config, store (read-only, opened once) and model into <d>, and the
 * destination guard (the config's internal prefixes, the host's addresses).
 * On failure <d> is unchanged and <err> says why. */
int smtpd_load(struct smtpd *d, char *err, size_t errsz);

/* Reads this host's addresses again into the destination guard (interfaces
 * come and go with VPSes); keeps the old list on failure. */
int smtpd_refresh_host(struct smtpd *d, char *err, size_t errsz);

/* Starts the once-a-second housekeeping: log-rate summaries, the host's
 * addresses every 10 s, memory given back to the system after sessions end. */
int smtpd_tick_start(struct smtpd *d, char *err, size_t errsz);

/* Re-reads VPS <id> from the store (a change told by the agent). */
int smtpd_sync_vps(struct smtpd *d, const char *id, char *err, size_t errsz);

/* proxy.c: listeners and sessions. */
int proxy_listen(struct smtpd *d, char *err, size_t errsz);
void proxy_close_listeners(struct smtpd *d);
/* Ends, with a 421 naming why, the open sessions of VPS <id> that its
 * policy no longer allows (a filter or suspension just placed): a message
 * under way is not finished.  Returns how many. */
unsigned proxy_end_refused(struct smtpd *d, const char *id);

/* Creates the TLS context if a policy wants upstream TLS. */
int proxy_tls_init(struct smtpd *d, char *err, size_t errsz);

/* control.c: the control socket (stats, sync, reload, status). */
int smtpd_control_start(struct smtpd *d, char *err, size_t errsz);
void smtpd_control_stop(struct smtpd *d);

/* The policy that applies to VPS <vps> (NULL: none with a proxy). */
const struct pc_policy *smtpd_policy_of(const struct pc_vps *vps);

/* Whether <vps> may send mail through the proxy now; if not, writes the
 * reason (from the policy's explanation) into <why>. */
bool smtpd_vps_allowed(const struct pc_vps *vps, char *why, size_t size);
