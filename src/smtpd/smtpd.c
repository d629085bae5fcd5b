/* portcullis-smtpd's state: configuration, store and the VPS model. */
#include "smtpd/smtpd.h"

#include <errno.h>
#include <event2/event.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/util.h"
#include "policy/evaluate.h"
#include "policy/explain.h"
#include "policy/addr_index.h"
#include "smtpd/dest.h"
#include "smtpd/lograte.h"

#define LOG_BURST 10        /* lines per VPS (or unknown source) per period */
#define LOG_PERIOD_MS 10000
#define LOG_KEYS_MAX 4096   /* keys tracked at once; beyond, one shared key */

void smtpd_log(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        fputs("portcullis-smtpd: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
}

/* The destinations <cfg> refuses: its internal prefixes and this host's
 * addresses, read now. */
static int guard_build(const struct pc_config *cfg, struct dest_guard **ret, char *err, size_t errsz)
{
        struct dest_guard *g = NULL;
        int r = dest_guard_new(cfg->smtpd.internal, cfg->smtpd.n_internal, &g);

        if (r < 0) {
                snprintf(err, errsz, "out of memory");
                return r;
        }
        r = dest_guard_load_host(g);
        if (r < 0) {
                snprintf(err, errsz, "cannot read this host's addresses: %s", strerror(-r));
                dest_guard_free(g);
                return r;
        }
        *ret = g;
        return 0;
}

int smtpd_load(struct smtpd *d, char *err, size_t errsz)
{
        struct pc_config *cfg = NULL;
        struct pc_store *store = d->store;
        struct pc_model *m = NULL;
        struct addr_index *ix = NULL;
        struct dest_guard *guard = NULL;
        int r;

        r = pc_config_load(d->config_path, &cfg, err, errsz);
        if (r < 0)
                return r;
        /* A reload keeps the open store: after dropping privileges the
         * proxy may not be able to open it again.  Read-only: the proxy
         * faces customers' traffic and never writes the database. */
        if (store == NULL) {
                r = pc_store_open_readonly(d->db_url != NULL ? d->db_url : cfg->database, &store, err,
                                           errsz);
                if (r == -ENOENT) {
                        size_t len = strnlen(err, errsz);

                        /* The proxy never creates it: it would be empty. */
                        if (len + 1 < errsz)
                                snprintf(err + len, errsz - len,
                                         " (the agent creates it at its first start, or "
                                         "`portcullis init`)");
                }
                if (r < 0)
                        goto fail;
        }
        r = guard_build(cfg, &guard, err, errsz);
        if (r < 0)
                goto fail;
        r = pc_model_new(cfg, &m);
        if (r == 0)
                r = pc_store_load(store, m);
        if (r < 0) {
                snprintf(err, errsz, "cannot load the VPSes: %s", pc_store_errmsg(store));
                goto fail;
        }
        r = addr_index_build(m, &ix);
        if (r < 0) {
                snprintf(err, errsz, "cannot index the VPS addresses: %s", strerror(-r));
                goto fail;
        }
        addr_index_free(d->index);
        pc_model_free(d->model);
        pc_config_free(d->cfg);
        dest_guard_free(d->guard);
        d->guard = guard;
        d->cfg = cfg;
        d->store = store;
        d->model = m;
        d->index = ix;
        return 0;
fail:
        dest_guard_free(guard);
        pc_model_free(m);
        if (store != d->store)
                pc_store_close(store);
        pc_config_free(cfg);
        return r;
}

int smtpd_refresh_host(struct smtpd *d, char *err, size_t errsz)
{
        struct dest_guard *g = NULL;
        int r = guard_build(d->cfg, &g, err, errsz);

        if (r < 0)
                return r;
        dest_guard_free(d->guard);
        d->guard = g;
        return 0;
}

/* The summary of a period in which refusals were not all logged. */
static void summary(void *ctx, const struct lograte_summary *s)
{
        const char *what = ctx;
        char total[32], suppressed[32];

        pc_format_count(s->total, total, sizeof(total));
        pc_format_count(s->suppressed, suppressed, sizeof(suppressed));
        smtpd_log("%s: %s %s in the last %lld s, %s not logged one by one%s%s", s->key, total, what,
                  (long long)(s->period_ms / 1000), suppressed, s->reason[0] != '\0' ? ": " : "", s->reason);
}

static void tick(evutil_socket_t fd, short what, void *ctx)
{
        struct smtpd *d = ctx;
        char err[256];

        lograte_flush(d->log_refused, pc_mono_ms());
        lograte_flush(d->log_sessions, pc_mono_ms());
        if (++d->ticks % 10 != 0)
                return;
        if (smtpd_refresh_host(d, err, sizeof(err)) < 0)
                smtpd_log("keeping the previous list of this host's addresses: %s", err);
        /* glibc keeps freed session buffers for reuse; give them back once
         * sessions have ended, so that a burst does not hold memory for ever. */
        if (d->trim_due) {
                malloc_trim(0);
                d->trim_due = false;
        }
}

int smtpd_tick_start(struct smtpd *d, char *err, size_t errsz)
{
        static const struct timeval second = { .tv_sec = 1 };

        if (lograte_new(LOG_BURST, LOG_PERIOD_MS, LOG_KEYS_MAX, summary, "connections refused",
                        &d->log_refused) < 0 ||
            lograte_new(LOG_BURST, LOG_PERIOD_MS, LOG_KEYS_MAX, summary, "sessions opened",
                        &d->log_sessions) < 0 ||
            (d->tick = event_new(d->base, -1, EV_PERSIST, tick, d)) == NULL || event_add(d->tick, &second) < 0) {
                snprintf(err, errsz, "cannot start the housekeeping: out of memory");
                return -ENOMEM;
        }
        return 0;
}

int smtpd_sync_vps(struct smtpd *d, const char *id, char *err, size_t errsz)
{
        struct pc_vps *fresh = NULL;
        struct addr_index *ix = NULL;
        int r;

        r = pc_store_vps_fetch(d->store, d->cfg, id, &fresh);
        if (r < 0 && r != -ENOENT) {
                snprintf(err, errsz, "cannot read %s: %s", id, pc_store_errmsg(d->store));
                return r;
        }
        if (pc_model_find(d->model, id) != NULL)
                pc_model_remove(d->model, id);
        if (fresh != NULL && (r = pc_model_add(d->model, fresh)) < 0) {
                pc_vps_free(fresh);
                snprintf(err, errsz, "cannot add %s: %s", id, strerror(-r));
                return r;
        }
        /* Addresses may have changed: the index is rebuilt (milliseconds
         * even with 100,000 VPSes). */
        r = addr_index_build(d->model, &ix);
        if (r < 0) {
                snprintf(err, errsz, "cannot index the VPS addresses: %s", strerror(-r));
                return r;
        }
        addr_index_free(d->index);
        d->index = ix;
        return 0;
}

const struct pc_policy *smtpd_policy_of(const struct pc_vps *vps)
{
        const struct pc_policy *p = vps->site != NULL ? vps->site->policy : NULL;

        return p != NULL && p->has_smtp_proxy ? p : NULL;
}

bool smtpd_vps_allowed(const struct pc_vps *vps, char *why, size_t size)
{
        const struct pc_flow flow = { .proto = IPPROTO_TCP, .port = 25, .dir = PC_DIR_EGRESS };
        struct pc_verdict v;

        pc_evaluate(vps, &flow, pc_now(), &v);
        if (v.verdict == PC_VERDICT_REDIRECT || v.verdict == PC_VERDICT_ALLOW)
                return true;
        snprintf(why, size, "outbound port 25 is blocked");
        for (unsigned i = 0; i < v.n_reasons; i++)
                if (v.reasons[i].decisive)
                        pc_explain_reason(&v.reasons[i], vps, &flow, why, size);
        return false;
}
