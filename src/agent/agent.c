/* portcullisd's state and the operations the control socket and signals
 * trigger. */
#include "agent/agent.h"

#include <errno.h>
#include <net/if.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "dataplane/conntrack.h"
#include "dataplane/proxy_route.h"
#include "detect/attempts.h"
#include "policy/evaluate.h"

#define TOS_EPISODE_GAP 3600 /* blocked attempts an hour apart are separate episodes */

void agent_log(const char *fmt, ...)
{
        va_list ap;

        /* One locked stdio sequence per line: the notifier thread logs too. */
        flockfile(stderr);
        fputs("portcullisd: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        funlockfile(stderr);
}

static int64_t mono_ns(void)
{
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* True (and says so) if the kernel enforces a policy for VPSes while the
 * database <db> is missing: a lost database (an unmounted /var/lib, a
 * deleted file), whose emptiness, programmed, would lift every restriction.
 * The kernel keeps enforcing; the agent does not start. */
static bool kernel_enforces(const struct pc_config *cfg, const char *db)
{
        struct pc_dataplane *dp = NULL;
        size_t held = 0;

        if (pc_dp_open(cfg, &dp) < 0 || pc_dp_held(dp, &held) < 0)
                held = 0;
        pc_dp_close(dp);
        if (held > 0)
                agent_log("Refusing to start: there is no database at %s, but the kernel enforces %zu per-VPS "
                          "elements for VPSes it would have held; the kernel keeps enforcing them.  Restore the "
                          "database, or delete tables inet and bridge %s to start from nothing",
                          db, held, cfg->agent.nft_table);
        return held > 0;
}

const char *agent_host(const struct agent *a)
{
        return a->cfg->agent.host;
}

bool agent_owns(const struct agent *a, const struct pc_vps *vps)
{
        const char *me = agent_host(a);

        return me[0] == '\0' || strcmp(vps->host, me) == 0 || strcmp(vps->moving_from, me) == 0;
}

/* A VPS moving away from <host> is on its interface there until it goes. */
static void localize_vps(const char *host, struct pc_vps *vps)
{
        if (host[0] != '\0' && strcmp(vps->moving_from, host) == 0)
                snprintf(vps->iface, sizeof(vps->iface), "%s", vps->moving_iface);
}

/* <vps>, another host's now, kept here on this host's interface <iface>
 * for as long as its VM is still here (a live migration copies it first). */
static void keep_on(struct pc_vps *vps, const char *iface)
{
        snprintf(vps->iface, sizeof(vps->iface), "%s", iface);
        vps->moving_from[0] = vps->moving_iface[0] = '\0';
}

static void localize(const char *host, struct pc_model *m)
{
        for (size_t i = 0; host[0] != '\0' && i < pc_model_count(m); i++) {
                struct pc_vps *vps = pc_model_at(m, i);

                if (strcmp(vps->moving_from, host) == 0 && strcmp(vps->iface, vps->moving_iface) != 0)
                        pc_model_set_iface(m, vps, vps->moving_iface);
        }
}

/* The heartbeat the agent records now. */
static void beat_now(const struct agent *a, struct pc_agent_beat *b)
{
        *b = (struct pc_agent_beat){
                .started = a->started,
                .heartbeat = pc_now(),
                .change_seen = a->change_seen,
                .changes = a->changes,
                .vpses = pc_model_count(a->model),
                .in_sync = a->in_sync,
        };
        snprintf(b->host, sizeof(b->host), "%s", agent_host(a));
        snprintf(b->version, sizeof(b->version), "%s", PC_VERSION);
}

void agent_heartbeat(struct agent *a)
{
        struct pc_agent_beat b;

        if (agent_host(a)[0] == '\0' || a->store == NULL)
                return;
        beat_now(a, &b);
        if (pc_store_agent_beat(a->store, &b) < 0)
                agent_log("Failed to record the heartbeat: %s", pc_store_errmsg(a->store));
}

/* The periodic pass's heartbeat, through the database thread: a probe
 * of the database too (agent_probe). */
struct probe {
        struct pc_agent_beat b;
        bool beat;                    /* with a host: recorded; else only a read */
        void (*then)(struct agent *a);
};

static int probe_run(struct pc_store *store, const struct pc_config *cfg, void *arg)
{
        struct probe *p = arg;
        int64_t seen;

        (void)cfg;
        return p->beat ? pc_store_agent_beat(store, &p->b) : pc_store_change_last(store, &seen);
}

static void probe_done(struct agent *a, void *arg, const struct agent_db_result *res)
{
        struct probe *p = arg;
        bool quiet = res->r < 0 && res->away;

        a->probing = false;
        if (res->r < 0 && !res->away)
                agent_log("Failed to record the heartbeat: %s", res->err);
        if (quiet != a->db_quiet)
                agent_log(quiet ? "The database does not answer (%s): the periodic passes leave it alone until it "
                                  "does; findings go to the journal"
                                : "%sThe database answers again: the periodic passes use it",
                          quiet ? res->err : "");
        a->db_quiet = quiet;
        p->then(a);
        free(p);
}

int agent_probe(struct agent *a, void (*then)(struct agent *a))
{
        struct probe *p;
        int r;

        if (a->db == NULL || a->store == NULL)
                return -ENOTCONN;
        if (a->probing)
                return -EINPROGRESS;
        p = calloc(1, sizeof(*p));
        if (p == NULL)
                return -ENOMEM;
        beat_now(a, &p->b);
        p->beat = agent_host(a)[0] != '\0';
        p->then = then;
        r = agent_db_submit(a, probe_run, probe_done, p);
        if (r < 0) {
                free(p);
                return r;
        }
        a->probing = a->db != NULL && agent_db_queued(a) > 0; /* (done already if it ran here) */
        return 0;
}

/* Loads the configuration, with --host over its agent.host, into
 * *<ret_cfg>.  0, or a negative errno with why in <err>. */
static int load_config(struct agent *a, struct pc_config **ret_cfg, char *err, size_t errsz)
{
        struct pc_config *cfg = NULL;
        char why[1024];
        int r = pc_config_load(a->config_path, &cfg, why, sizeof(why));

        if (r < 0) {
                snprintf(err, errsz, "cannot load the configuration: %s", why);
                return r;
        }
        if (a->host_arg != NULL) {
                if (strlen(a->host_arg) >= sizeof(cfg->agent.host) || !pc_name_valid(a->host_arg)) {
                        snprintf(err, errsz,
                                 "--host '%.63s' is not a host name: use 1-63 of a-z 0-9 . _ - starting with a letter "
                                 "or digit",
                                 a->host_arg);
                        pc_config_free(cfg);
                        return -EINVAL;
                }
                snprintf(cfg->agent.host, sizeof(cfg->agent.host), "%s", a->host_arg);
        }
        *ret_cfg = cfg;
        return 0;
}

/* Opens the store of <cfg> and loads this host's model from it into the
 * out-parameters, with *<ret_seen> the change feed's last entry before
 * the load; nothing is kept on failure (why in <err>).  With <create>
 * (the agent's start) a missing database is created; a reload never
 * creates one: a database gone from under a running agent is an error to
 * look into, not an empty policy to enforce.  -EEXIST: the database is
 * missing while the kernel enforces a policy (logged: a start refuses). */
static int load_db(struct agent *a, const struct pc_config *cfg, bool create, struct pc_store **ret_store,
                   struct pc_model **ret_model, int64_t *ret_seen, char *err, size_t errsz)
{
        struct pc_store *store = NULL;
        struct pc_model *m = NULL;
        const char *db = a->db_url != NULL ? a->db_url : cfg->database;
        bool created = false;
        int64_t seen = 0;
        char why[1024];
        int r;

        r = pc_store_open(db, &store, why, sizeof(why));
        if (r == -ENOENT && create && kernel_enforces(cfg, db))
                r = -EEXIST;
        else if (r == -ENOENT && create)
                r = pc_store_init(db, &created, &store, why, sizeof(why));
        if (r == -EEXIST) {
                snprintf(err, errsz, "there is no database at %s", db);
                goto fail;
        }
        if (r < 0) {
                snprintf(err, errsz, "cannot open the database: %s", why);
                goto fail;
        }
        if (created)
                agent_log("Created the database %s (no VPS registered yet)", db);
        /* The loop never waits for a database that does not answer. */
        pc_store_background_reconnect(store);
        /* The change feed from before the load on: a change written
         * meanwhile is applied twice, none is missed (changes.c). */
        r = pc_store_change_last(store, &seen);
        if (r >= 0)
                r = pc_model_new(cfg, &m);
        if (r >= 0)
                r = pc_store_load_host(store, m, cfg->agent.host[0] != '\0' ? cfg->agent.host : NULL);
        if (r < 0) {
                snprintf(err, errsz, "cannot load the database: %s", pc_store_errmsg(store));
                goto fail;
        }
        localize(cfg->agent.host, m);
        *ret_store = store;
        *ret_model = m;
        *ret_seen = seen;
        return 0;
fail:
        pc_model_free(m);
        pc_store_close(store);
        return r;
}

int agent_load_all(struct agent *a, bool create, struct pc_config **ret_cfg, struct pc_store **ret_store,
                   struct pc_model **ret_model, int64_t *ret_seen, char *err, size_t errsz)
{
        struct pc_config *cfg = NULL;
        int r = load_config(a, &cfg, err, errsz);

        if (r >= 0)
                r = load_db(a, cfg, create, ret_store, ret_model, ret_seen, err, errsz);
        if (r < 0) {
                pc_config_free(cfg);
                return r;
        }
        *ret_cfg = cfg;
        return 0;
}

static void log_repair(const struct pc_dp_repair *rep, long us)
{
        if (rep->skipped > 0)
                agent_log("NOT enforcing %zu VPSes that cannot be programmed (e.g. %s); fix them in the database",
                          rep->skipped, rep->skipped_example);
        if (rep->unchanged)
                agent_log("The kernel already enforces the policy (%zu per-VPS elements): nothing has changed its "
                          "ruleset since this policy's last transaction, verified in %.1f ms",
                          rep->elements, us / 1000.0);
        else if (rep->from_prev)
                agent_log("The kernel enforced the policy of this agent's last run (its record says so, nothing "
                          "else has written the ruleset since): changed the %zu VPSes that differ, %zu elements "
                          "added and %zu deleted, in %.1f ms; now %zu elements",
                          rep->changed, rep->missing, rep->extra, us / 1000.0, rep->elements);
        else if (rep->reprogrammed)
                agent_log("Programmed the whole ruleset (%zu per-VPS elements) in %.1f ms: %s",
                          rep->elements, us / 1000.0, rep->why);
        else if (rep->missing + rep->extra > 0)
                agent_log("Repaired drift in the kernel: %zu elements missing, %zu extra (e.g. %s); now %zu elements",
                          rep->missing, rep->extra, rep->example, rep->elements);
        else
                agent_log("The kernel already enforces the policy (%zu per-VPS elements): nothing to repair",
                          rep->elements);
}

/* Ends the flows the policy no longer allows: of <vps>, or of every VPS
 * if NULL.  The rules already hold for new flows; a failure here is logged
 * and reported by `status`, and the next change or reconcile tries again. */
static void purge_flows(struct agent *a, const struct pc_vps *vps)
{
        struct pc_ct_purge pg;
        char err[256];
        int r = vps != NULL ? pc_ct_purge_vps(vps, pc_now(), &pg, err, sizeof(err))
                            : pc_ct_purge_model(a->model, pc_now(), &pg, err, sizeof(err));

        if (r < 0) {
                snprintf(a->last_error, sizeof(a->last_error), "conntrack: %s", err);
                agent_log("Failed to end the connections the policy no longer allows%s%s: %s",
                          vps != NULL ? " for " : "", vps != NULL ? vps->id : "", err);
        } else if (pg.deleted > 0)
                agent_log("Ended %zu connection(s) the policy no longer allows (e.g. %s)", pg.deleted, pg.example);
}

/* Records what a full sync found: logs it and updates the health that
 * `status` reports; ends the flows the policy no longer allows (at the
 * start, once the agent listens: agent_start_purge). */
static void synced(struct agent *a, const struct pc_dp_repair *rep, long us)
{
        log_repair(rep, us);
        a->in_sync = rep->skipped == 0;
        if (rep->skipped > 0)
                snprintf(a->last_error, sizeof(a->last_error), "%s", rep->skipped_example);
        a->elements = rep->elements;
        if (!a->purge_due)
                purge_flows(a, NULL);
}

/* pc_dp_sync_start() reads the kernel back in the background (since <t0>). */
static void verifying(struct agent *a, const struct timespec *t0)
{
        a->verifying = true;
        a->in_sync = false;
        a->verify_t0 = *t0;
        agent_log("The kernel's ruleset changed since this policy's last transaction (or the policy did): reading it "
                  "back in the background; it keeps enforcing what it holds, and changes are applied meanwhile");
}

void agent_start_purge(struct agent *a)
{
        if (!a->purge_due)
                return;
        a->purge_due = false;
        purge_flows(a, NULL);
}

/* Routes replies to the SMTP proxy's transparent sockets to the proxy when
 * <cfg> has a proxy that connects from the VPS's address, and takes the
 * routes away when it has none.  Only that mail depends on it, so a failure
 * is logged and the agent goes on enforcing the rest. */
static void proxy_route_apply(const struct pc_config *cfg)
{
        char err[256];

        if (!pc_proxy_route_needed(cfg)) {
                if (pc_proxy_route_remove(err, sizeof(err)) < 0)
                        agent_log("Failed to remove the SMTP proxy's return route (no proxy is configured): %s", err);
                return;
        }
        if (pc_proxy_route_ensure(err, sizeof(err)) < 0)
                agent_log("Failed to route the MX's replies to the SMTP proxy (fwmark " PC_PROXY_FWMARK_STR
                          ", table " PC_PROXY_ROUTE_TABLE_STR "); mail relayed from the VPSes' addresses will "
                          "fail, everything else is enforced: %s", err);
}

/* The start without the database (<why> it cannot be read): the kernel
 * is programmed from the snapshot of the host's policy if it holds
 * nothing (a reboot, a flushed ruleset); if it holds the agent's table,
 * that stays as it is (an agent restarted: the kernel is as new as the
 * snapshot, or newer), and the snapshot's model only names the VPSes for
 * the detectors.  A thread keeps trying the database; when it answers,
 * its policy is loaded and the kernel reconciled with it
 * (agent_db_back).  0, or a negative errno after logging why (the agent
 * does not start: no snapshot, or none usable). */
static int start_from_snapshot(struct agent *a, const char *why)
{
        struct pc_dp_repair rep;
        struct pc_model *m = NULL;
        struct timespec t0;
        size_t held = 0;
        bool enforced;
        char err[1024], t[32];
        int r;

        agent_log("Failed to read the database: %s", why);
        r = pc_dp_open(a->cfg, &a->dp);
        if (r < 0) {
                agent_log("Failed to open nftables: %s", strerror(-r));
                return r;
        }
        r = agent_snapshot_read(a, a->cfg, pc_now(), &m, &a->snapshot_head, err, sizeof(err));
        /* The kernel's own record says it holds the snapshot: nothing to
         * read (a restart; at 100,000 VPSes the read takes seconds). */
        enforced = r >= 0 && pc_dp_enforces(a->dp, a->snapshot_head.fingerprint);
        if (!enforced && pc_dp_held(a->dp, &held) < 0)
                held = 0;
        if (r < 0) {
                if (held > 0)
                        agent_log("Not starting: the database cannot be read and there is no usable snapshot of "
                                  "this host's policy (%s); the kernel keeps enforcing the %zu per-VPS elements it "
                                  "holds.  Starting again once the database answers",
                                  err, held);
                else
                        agent_log("This host enforces NOTHING for its VPSes: the database cannot be read and there "
                                  "is no usable snapshot of its policy (%s).  Starting again once the database "
                                  "answers",
                                  err);
                return r;
        }
        a->model = m;
        a->from_snapshot = true;
        a->policy_loaded = a->snapshot_head.loaded;
        pc_format_time(a->snapshot_head.loaded, t, sizeof(t));
        agent_offline_load(a); /* the journal's holds, into the model */
        if (!enforced && held == 0) {
                clock_gettime(CLOCK_MONOTONIC, &t0);
                r = pc_dp_sync_all(a->dp, a->model, pc_now(), &rep);
                if (r < 0) {
                        snprintf(a->last_error, sizeof(a->last_error), "%s", pc_dp_errmsg(a->dp));
                        agent_log("Failed to program the kernel from the snapshot: %s", pc_dp_errmsg(a->dp));
                        return r;
                }
                a->purge_due = true;
                synced(a, &rep, pc_elapsed_us(&t0));
                agent_log("Enforcing the snapshot of this host's policy of %s (%zu VPSes) while the database cannot "
                          "be read: the kernel held nothing (a reboot?)",
                          t, pc_model_count(a->model));
        } else if (enforced) {
                a->in_sync = true;
                agent_log("The kernel enforces the snapshot of this host's policy of %s already (%zu VPSes; its "
                          "record says so): kept as it is while the database cannot be read",
                          t, pc_model_count(a->model));
        } else {
                a->in_sync = false;
                a->elements = held;
                agent_log("The kernel holds %zu per-VPS elements, not what the snapshot of this host's policy of %s "
                          "says (newer, or changed since): they stay as they are while the database cannot be read; "
                          "the snapshot's %zu VPSes are followed by the detectors.  Reconciled when it answers",
                          held, t, pc_model_count(a->model));
        }
        snprintf(a->last_error, sizeof(a->last_error), "the database cannot be read: enforcing the snapshot of %s",
                 t);
        /* What is written next is this, as it is now. */
        agent_snapshot_written(a, pc_dp_fingerprint(a->dp));
        proxy_route_apply(a->cfg);
        agent_dbwait_start(a, why);
        return 0;
}

static int keep_departing(const struct pc_model *from, const struct pc_config *cfg, struct agent_departing *d,
                          size_t n, struct pc_model *m);

/* The snapshot of the policy the agent enforced last, read once at a
 * start with the database, when something asks for it. */
struct start_snapshot {
        struct agent *a;
        struct pc_model *model; /* NULL: not read, or none usable */
        bool read;
};

static struct pc_model *start_snapshot_get(void *arg)
{
        struct start_snapshot *s = arg;
        struct pc_snapshot_head head;
        char err[512];

        if (!s->read && agent_snapshot_read(s->a, s->a->cfg, pc_now(), &s->model, &head, err, sizeof(err)) < 0)
                s->model = NULL;
        s->read = true;
        return s->model;
}

/* At a start with the database: the VPSes the snapshot kept for a VM that
 * has not left yet (the database names another host for them now).  Read
 * here: the loop does not run yet, and the start read the database
 * already.  0, or a negative errno with <why> if one could not be read
 * (the database went away meanwhile): the load is then no load, as for
 * the thread that waits for the database, or the VPS would be let go
 * with its VM still here. */
static int keep_departing_of_snapshot(struct agent *a, struct start_snapshot *snap, char *why, size_t size)
{
        struct agent_departing *d = NULL;
        size_t n = 0;
        int r;

        if (a->cfg->agent.host[0] == '\0' || start_snapshot_get(snap) == NULL ||
            agent_departing_list(snap->model, &d, &n) < 0)
                return 0;
        r = agent_departing_read(a->store, a->cfg, a->model, d, n);
        if (r < 0)
                snprintf(why, size, "cannot read the VPSes kept for their interface here: %s",
                         pc_store_errmsg(a->store));
        else
                keep_departing(snap->model, a->cfg, d, n, a->model);
        agent_departing_free(d, n);
        return r;
}

int agent_start(struct agent *a)
{
        struct start_snapshot snap = { .a = a };
        struct pc_dp_repair rep;
        struct timespec t0;
        char err[1280];
        int64_t seen = 0;
        int r;

        a->started = pc_now();
        /* what ends from now on is the expiry pass's (the start purges the rest) */
        a->expiry_checked = a->started;
        r = load_config(a, &a->cfg, err, sizeof(err));
        if (r < 0) {
                agent_log("Failed to start: %s", err);
                return r;
        }
        /* The findings' statements, off the loop (--once has no loop). */
        if (!a->once && (r = agent_db_start(a)) < 0)
                agent_log("Failed to start the database thread (%s): findings are stored from the loop",
                          strerror(-r));
        r = load_db(a, a->cfg, true, &a->store, &a->model, &seen, err, sizeof(err));
        if (r == -EEXIST) /* refused, and said why */
                return r;
        if (r < 0)
                return start_from_snapshot(a, err);
        a->change_seen = seen;
        a->policy_loaded = pc_now();
        r = keep_departing_of_snapshot(a, &snap, err, sizeof(err));
        if (r < 0) {
                pc_model_free(snap.model); /* (start_from_snapshot reads it again) */
                a->model = pc_model_free(a->model);
                a->store = pc_store_close(a->store);
                return start_from_snapshot(a, err);
        }
        agent_snapshot_due(a);
        r = pc_dp_open(a->cfg, &a->dp);
        if (r < 0) {
                pc_model_free(snap.model);
                agent_log("Failed to open nftables: %s", strerror(-r));
                return r;
        }
        agent_offline_load(a); /* stored by the first feed follow */
        clock_gettime(CLOCK_MONOTONIC, &t0);
        a->sync_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (a->once || a->sync_fd == -1)
                r = pc_dp_sync_all(a->dp, a->model, pc_now(), &rep);
        else
                r = pc_dp_sync_start(a->dp, a->model, pc_now(), a->sync_fd, start_snapshot_get, &snap, &rep);
        snap.model = pc_model_free(snap.model);
        if (r < 0 && r != -EINPROGRESS) {
                snprintf(a->last_error, sizeof(a->last_error), "%s", pc_dp_errmsg(a->dp));
                agent_log("Failed to program the kernel: %s", pc_dp_errmsg(a->dp));
                return r;
        }
        a->purge_due = true;
        if (r == -EINPROGRESS)
                verifying(a, &t0); /* the table is this config's, and enforces what it holds */
        else
                synced(a, &rep, pc_elapsed_us(&t0));
        proxy_route_apply(a->cfg);
        agent_log("Enforcing %zu VPSes of %zu sites from %s in table inet %s",
                  pc_model_count(a->model), a->cfg->n_sites, a->config_path, a->cfg->agent.nft_table);
        /* A notifier that cannot start (broken templates) is logged; the
         * outbox keeps what it would have sent. */
        notifier_start(a);
        return 0;
}

void agent_sync_finish(struct agent *a)
{
        struct pc_dp_repair rep;
        int r;

        if (!a->verifying)
                return;
        r = pc_dp_sync_finish(a->dp, a->model, pc_now(), a->sync_fd, &rep);
        if (r == -EINPROGRESS) {
                agent_log("Changes were applied while the kernel was read back: reading it again");
                return;
        }
        a->verifying = false;
        if (r < 0) {
                snprintf(a->last_error, sizeof(a->last_error), "%s", pc_dp_errmsg(a->dp));
                agent_log("Failed to repair the kernel after reading it back: %s; `portcullis reconcile` tries again",
                          pc_dp_errmsg(a->dp));
                return;
        }
        synced(a, &rep, pc_elapsed_us(&a->verify_t0));
}

void agent_stop(struct agent *a)
{
        agent_reload_stop(a);
        agent_db_stop(a); /* what it finishes is taken first */
        agent_snapshot_stop(a);
        notifier_stop(a);
        agent_offline_free(a);
        agent_scan_close(a);
        agent_spam_close(a);
        agent_spam_direct_close(a);
        a->nflog = pc_nflog_close(a->nflog);
        a->dp = pc_dp_close(a->dp);
        if (a->sync_fd >= 0)
                close(a->sync_fd);
        a->sync_fd = -1;
        a->model = pc_model_free(a->model);
        a->store = pc_store_close(a->store);
        a->cfg = pc_config_free(a->cfg);
        a->attempts = pc_attempts_free(a->attempts);
        free(a->attempts_grew);
        a->attempts_grew = NULL;
        a->n_attempts_grew = a->attempts_grew_cap = 0;
        json_decref(a->mail_stats);
        a->mail_stats = NULL;
        json_decref(a->incident_notices);
        a->incident_notices = NULL;
        json_decref(a->spoof_episodes);
        a->spoof_episodes = NULL;
}

static void record_change(struct agent *a, const char *what, long us)
{
        a->changes++;
        a->last_change_at = pc_now();
        a->last_change_us = us;
        snprintf(a->last_change, sizeof(a->last_change), "%s", what);
        agent_metrics_change(a, us);
}

/* VPSes read by the database thread (fetch_run), then applied on the
 * loop in their order (fetch_done), until one could not be read. */
struct agent_fetch {
        size_t n, fetched;
        char ids[AGENT_FETCH_MAX][PC_NAME_MAX];
        struct pc_vps *fresh[AGENT_FETCH_MAX];
        int got[AGENT_FETCH_MAX];
        bool feed;
        struct timespec t0;
        agent_fetched_fn then;
        void *arg;
};

static int fetch_run(struct pc_store *store, const struct pc_config *cfg, void *arg)
{
        struct agent_fetch *f = arg;

        for (f->fetched = 0; f->fetched < f->n; f->fetched++) {
                int r = pc_store_vps_fetch(store, cfg, f->ids[f->fetched], &f->fresh[f->fetched]);

                f->got[f->fetched] = r;
                if (r < 0 && r != -ENOENT) {
                        f->fetched++;
                        return r; /* the rest waits: the database does not answer */
                }
        }
        return 0;
}

static void fetch_done(struct agent *a, void *arg, const struct agent_db_result *res)
{
        struct agent_fetch *f = arg;
        json_t *reply = json_object();
        bool pending = false;
        size_t i;

        for (i = 0; i < f->fetched && !pending; i++) {
                json_object_clear(reply);
                agent_sync_vps_apply(a, f->ids[i], f->got[i], f->fresh[i], res->err, &f->t0, f->feed, reply);
                f->fresh[i] = NULL; /* taken */
                pending = json_object_get(reply, "pending") != NULL;
        }
        for (; i < f->fetched; i++)
                pc_vps_free(f->fresh[i]);
        if (f->fetched < f->n && !pending) { /* (the thread stopped short of them) */
                json_object_clear(reply);
                json_object_set_new(reply, "error", json_string(res->err));
                json_object_set_new(reply, "pending", json_string("database"));
                pending = true;
        }
        if (f->then != NULL)
                f->then(a, f->arg, reply, pending);
        json_decref(reply);
        free(f);
}

int agent_sync_vpses(struct agent *a, const char (*ids)[PC_NAME_MAX], size_t n, bool feed, agent_fetched_fn then,
                     void *arg)
{
        struct agent_fetch *f;
        int r;

        if (n > AGENT_FETCH_MAX)
                return -E2BIG;
        f = calloc(1, sizeof(*f));
        if (f == NULL)
                return -ENOMEM;
        f->n = n;
        for (size_t i = 0; i < n; i++)
                snprintf(f->ids[i], sizeof(f->ids[i]), "%s", ids[i]);
        f->feed = feed;
        f->then = then;
        f->arg = arg;
        clock_gettime(CLOCK_MONOTONIC, &f->t0);
        if (a->store == NULL) {
                /* Stored: the database's load brings it when it answers. */
                json_t *reply = json_pack("{s:s, s:s}", "error", "the database cannot be read: this host enforces "
                                          "the snapshot of its policy until it answers", "pending", "database");

                if (then != NULL)
                        then(a, arg, reply, true);
                json_decref(reply);
                free(f);
                return 0;
        }
        r = agent_db_submit(a, fetch_run, fetch_done, f);
        if (r < 0)
                free(f);
        return r;
}

/* Says, by the database thread, that VPS <id> moved here from <from> and
 * is in this host's kernel (arrived). */
struct arrival {
        char id[PC_NAME_MAX], host[PC_NAME_MAX], from[PC_NAME_MAX];
};

static int arrival_run(struct pc_store *store, const struct pc_config *cfg, void *arg)
{
        struct arrival *x = arg;
        struct pc_actor who = { .by = "portcullisd", .reason = "enforced on its new host" };

        (void)cfg;
        return pc_store_vps_arrived(store, x->id, x->host, &who);
}

static void arrival_done(struct agent *a, void *arg, const struct agent_db_result *res)
{
        struct arrival *x = arg;

        (void)a;
        if (res->r < 0)
                agent_log("%s is enforced here, but telling %s so failed (it keeps enforcing it meanwhile): %s",
                          x->id, x->from, res->err);
        else
                agent_log("%s moved here from %s and is enforced: %s may let it go", x->id, x->from, x->from);
        free(x);
}

/* <vps> (NULL: none), now in this host's kernel, moved here: the host it
 * left may let it go.  A failure leaves it enforced there too, and the
 * next change or start of this VPS says it again. */
static void arrived(struct agent *a, const struct pc_vps *vps)
{
        struct arrival *x;

        if (vps == NULL || a->store == NULL || vps->moving_from[0] == '\0' || agent_host(a)[0] == '\0' ||
            strcmp(vps->host, agent_host(a)) != 0)
                return;
        x = calloc(1, sizeof(*x));
        if (x == NULL)
                return;
        snprintf(x->id, sizeof(x->id), "%s", vps->id);
        snprintf(x->host, sizeof(x->host), "%s", agent_host(a));
        snprintf(x->from, sizeof(x->from), "%s", vps->moving_from);
        if (agent_db_submit(a, arrival_run, arrival_done, x) < 0)
                free(x);
}

/* Says, by the database thread, that VPS <id> left this host (departed). */
struct departure {
        char id[PC_NAME_MAX], host[PC_NAME_MAX];
        bool recorded;
};

static int departure_run(struct pc_store *store, const struct pc_config *cfg, void *arg)
{
        struct departure *x = arg;
        struct pc_actor who = { .by = "portcullisd", .reason = "its VM's interface left this host" };

        (void)cfg;
        return pc_store_vps_departed(store, x->id, x->host, &who, &x->recorded);
}

static void departure_done(struct agent *a, void *arg, const struct agent_db_result *res)
{
        struct departure *x = arg;

        (void)a;
        if (res->r < 0)
                agent_log("%s left this host, but telling the fleet so failed (its move shows as unconfirmed): %s",
                          x->id, res->err);
        else if (x->recorded)
                agent_log("%s left this host: its move away is confirmed", x->id);
        free(x);
}

/* <id>, let go, has left this host: the move away from it is confirmed
 * (pc_store_vps_departed decides whether there was one).  A failure
 * leaves the move shown as unconfirmed. */
static void departed(struct agent *a, const char *id)
{
        struct departure *x;

        if (a->store == NULL || (x = calloc(1, sizeof(*x))) == NULL)
                return;
        snprintf(x->id, sizeof(x->id), "%s", id);
        snprintf(x->host, sizeof(x->host), "%s", agent_host(a));
        if (agent_db_submit(a, departure_run, departure_done, x) < 0)
                free(x);
}

/* Whether <vps>, in the model, is one that left for another host and is
 * kept for its interface (logged once, when it began). */
static bool departing(const struct agent *a, const struct pc_vps *vps)
{
        return !agent_owns(a, vps) || (vps->moving_from[0] == '\0' && strcmp(vps->host, agent_host(a)) != 0);
}

/* Whether <old>, as this host enforces it, is leaving it (moving away, or
 * gone but for its VM: <fresh>, the database's now, may be NULL) while its
 * VM's interface is still here. */
static bool leaving_here(const struct agent *a, const struct pc_vps *old, const struct pc_vps *fresh)
{
        const char *me = agent_host(a);

        return me[0] != '\0' && old->iface[0] != '\0' && if_nametoindex(old->iface) != 0 &&
               (strcmp(old->host, me) != 0 || (fresh != NULL && strcmp(fresh->host, me) != 0));
}

/* What this host enforces of <old> (leaving it, leaving_here) now that
 * the database has <fresh> (taken; NULL: removed): <fresh>, unless it would
 * let the VM do more -- a source more, a filter lifted, an exception
 * granted, the VPS removed -- which its new host may give it, not this
 * one: then <old>'s policy, where the database says it is going.  A host
 * that pulls another's VPS (an agent token may) cannot loosen it under
 * the VM still here.  NULL if out of memory. */
static struct pc_vps *leaving_policy(const struct pc_vps *old, struct pc_vps *fresh, bool *ret_kept)
{
        struct pc_vps *kept = NULL;

        *ret_kept = pc_vps_change_loosens(old, fresh, pc_now());
        if (!*ret_kept)
                return fresh;
        if (pc_vps_clone(old, &kept) < 0)
                return pc_vps_free(fresh);
        snprintf(kept->host, sizeof(kept->host), "%s", fresh != NULL ? fresh->host : "");
        snprintf(kept->moving_from, sizeof(kept->moving_from), "%s", fresh != NULL ? fresh->moving_from : "");
        snprintf(kept->moving_iface, sizeof(kept->moving_iface), "%s", fresh != NULL ? fresh->moving_iface : "");
        pc_vps_free(fresh);
        return kept;
}

/* Whether a VPS of this host other than <vps> is on <vps>'s interface: a
 * departed VPS's name given to another VM, whose interface it is now. */
static bool iface_of_another(const struct agent *a, const struct pc_vps *vps)
{
        for (size_t i = 0; i < pc_model_count(a->model); i++) {
                const struct pc_vps *o = pc_model_at(a->model, i);

                if (o != vps && strcmp(o->iface, vps->iface) == 0 && agent_owns(a, o))
                        return true;
        }
        return false;
}

/* Drops <vps>, a departed VPS kept for its interface, which another VPS
 * of this host has now, from the model, and makes the kernel hold what
 * the model says: the kernel knows a VPS by its interface, so the two
 * shared elements, and only a whole sync sorts them out (a rare event).
 * <vps> is not valid afterwards. */
static void let_go(struct agent *a, struct pc_vps *vps)
{
        char id[PC_NAME_MAX], iface[16];
        json_t *reply = json_object();

        snprintf(id, sizeof(id), "%s", vps->id);
        snprintf(iface, sizeof(iface), "%s", vps->iface);
        pc_model_remove(a->model, id);
        agent_reload_touched(a, id);
        a->changes++;
        agent_log("%s left this host; its interface %s is another VPS's now: let go", id, iface);
        departed(a, id);
        agent_reconcile(a, reply);
        json_decref(reply);
}

/* The moves away from this host that the database has not seen
 * confirmed, as read by the database thread: at most DEPARTING_MAX a
 * pass, after <after> (the last of the pass before: the next ones at the
 * next pass, so that VMs still here do not hide the others). */
#define DEPARTING_MAX 64
struct departing_read {
        char host[PC_NAME_MAX];
        char after[PC_NAME_MAX];
        size_t n;
        char id[DEPARTING_MAX][PC_NAME_MAX];
        char iface[DEPARTING_MAX][16];
};

static int departing_one(const char *id, const char *iface, void *arg)
{
        struct departing_read *x = arg;

        if (x->n >= DEPARTING_MAX)
                return 0;
        snprintf(x->id[x->n], PC_NAME_MAX, "%s", id);
        snprintf(x->iface[x->n], sizeof(x->iface[0]), "%s", iface);
        x->n++;
        return 0;
}

static int departing_run(struct pc_store *store, const struct pc_config *cfg, void *arg)
{
        struct departing_read *x = arg;

        (void)cfg;
        x->n = 0;
        return pc_store_vps_departing(store, x->host, x->after, DEPARTING_MAX, departing_one, x);
}

/* Whether the VM of <id>, which the database says departs from this host
 * on <iface> there, may still be here: this host holds <id> on an
 * interface that is here (kept for it, or the feed has not brought the
 * move yet: agent_departures' to let go), or an interface <iface> is here
 * that no VPS of this host has taken since (a start without the snapshot
 * while the VM was still here: only it, or an admin, can say). */
static bool departing_vm_here(const struct agent *a, const char *id, const char *iface)
{
        const struct pc_vps *v = pc_model_find(a->model, id), *holder;

        if (v != NULL && v->iface[0] != '\0' && if_nametoindex(v->iface) != 0)
                return true;
        if (iface[0] == '\0' || if_nametoindex(iface) == 0)
                return false;
        holder = pc_model_find_iface(a->model, iface);
        return holder == NULL || strcmp(holder->id, id) == 0 || !agent_owns(a, holder);
}

static void departing_done(struct agent *a, void *arg, const struct agent_db_result *res)
{
        struct departing_read *x = arg;

        a->departures_checking = false;
        /* (The database away: the heartbeat says so; tried at the next pass.) */
        if (res->r < 0 && !res->away)
                agent_log("Failed to read the moves away from this host not confirmed yet: %s", res->err);
        if (res->r >= 0) /* a page short of full: from the first again */
                snprintf(a->departures_after, sizeof(a->departures_after), "%s",
                         x->n == DEPARTING_MAX ? x->id[x->n - 1] : "");
        for (size_t i = 0; res->r >= 0 && strcmp(x->host, agent_host(a)) == 0 && i < x->n; i++)
                if (!departing_vm_here(a, x->id[i], x->iface[i]))
                        departed(a, x->id[i]);
        free(x);
}

/* Records, through the database thread, the departures from this host
 * that the database still waits for and whose VM is not here: one that
 * failed to be written (the database away, an error), or one the agent
 * never saw (it started without a snapshot after the VM had left).  One
 * indexed query a pass, and a lookup in the model for each VPS it names
 * (moves not confirmed: a handful), not a walk of the model. */
static void departures_unrecorded(struct agent *a)
{
        struct departing_read *x;

        if (a->departures_checking || (x = calloc(1, sizeof(*x))) == NULL)
                return;
        snprintf(x->host, sizeof(x->host), "%s", agent_host(a));
        snprintf(x->after, sizeof(x->after), "%s", a->departures_after);
        a->departures_checking = true;
        if (agent_db_submit(a, departing_run, departing_done, x) < 0) {
                a->departures_checking = false;
                free(x);
        }
}

void agent_departures(struct agent *a)
{
        char gone[16][PC_NAME_MAX];
        size_t n = 0;

        /* Without the database (a snapshot) nobody can say where they went. */
        if (agent_host(a)[0] == '\0' || a->store == NULL)
                return;
        for (size_t i = 0; i < pc_model_count(a->model) && n < PC_ARRAY_SIZE(gone); i++) {
                const struct pc_vps *vps = pc_model_at(a->model, i);

                if (agent_owns(a, vps))
                        continue;
                if (iface_of_another(a, vps)) {
                        let_go(a, pc_model_at(a->model, i));
                        i--; /* the model moved its last VPS here (0 - 1 + 1: unsigned, defined) */
                        continue;
                }
                if (vps->iface[0] == '\0' || if_nametoindex(vps->iface) == 0)
                        snprintf(gone[n++], PC_NAME_MAX, "%s", vps->id);
        }
        for (size_t i = 0; i < n; i++)
                agent_log("%s's interface is gone from this host: letting it go", gone[i]);
        if (n > 0 && agent_sync_vpses(a, (const char (*)[PC_NAME_MAX])gone, n, false, NULL, NULL) < 0)
                agent_log("Failed to read %zu departed VPS(es) again: tried at the next pass", n);
        departures_unrecorded(a);
}

void agent_arrivals(struct agent *a)
{
        for (size_t i = 0; a->in_sync && agent_host(a)[0] != '\0' && i < pc_model_count(a->model); i++)
                arrived(a, pc_model_at(a->model, i));
}

int agent_sync_vps_apply(struct agent *a, const char *id, int fetched, struct pc_vps *fresh, const char *why,
                         const struct timespec *since, bool feed, json_t *reply)
{
        struct pc_vps *old = pc_model_find(a->model, id);
        bool tighten;
        struct timespec t0;
        size_t changes = 0;
        char what[160];
        int r;

        if (since != NULL)
                t0 = *since;
        else
                clock_gettime(CLOCK_MONOTONIC, &t0);
        if (fetched < 0 && fetched != -ENOENT) {
                /* The change is stored: the feed brings it again once the
                 * database answers (changes.c does not pass it by). */
                json_object_set_new(reply, "error", json_string(why != NULL ? why : strerror(-fetched)));
                json_object_set_new(reply, "pending", json_string("database"));
                agent_log("Failed to read %s from the database (applied once it answers): %s", id,
                          why != NULL ? why : strerror(-fetched));
                pc_vps_free(fresh);
                return fetched;
        }
        if (old != NULL && leaving_here(a, old, fresh)) {
                bool removed = fresh == NULL, kept;

                fresh = leaving_policy(old, fresh, &kept);
                if (fresh == NULL) {
                        json_object_set_new(reply, "error", json_string("out of memory"));
                        return -ENOMEM;
                }
                if (kept)
                        agent_log("%s is leaving this host%s%s and its VM is still here on %s: the change (%s) "
                                  "would let it do more, which its new host may give it, not this one; kept as "
                                  "it was until its interface goes", id, fresh->host[0] != '\0' ? " for " : "",
                                  fresh->host, old->iface, removed ? "its removal" : "a loosening");
        }
        if (fresh != NULL && !agent_owns(a, fresh)) {
                /* Another host's (moved there, and enforced there now). */
                if (old != NULL && iface_of_another(a, old)) {
                        pc_vps_free(fresh);
                        let_go(a, old);
                        json_object_set_new(reply, "state", json_string("removed"));
                        return 0;
                }
                if (old != NULL && old->iface[0] != '\0' && if_nametoindex(old->iface) != 0) {
                        /* Its VM is still here (a live migration copies it
                         * first): enforced here too, as it is now (a filter
                         * placed meanwhile holds here too), on its interface
                         * here, until that goes (agent_departures). */
                        if (!departing(a, old))
                                agent_log("%s runs on %s now and is enforced there; its interface %s is still "
                                          "here: enforced here too until it goes",
                                          id, fresh->host, old->iface);
                        keep_on(fresh, old->iface);
                        goto apply;
                }
                if (old == NULL) { /* not ours: its host's agent follows the database */
                        json_object_set_new(reply, "state", json_string("elsewhere"));
                        json_object_set_new(reply, "vps", json_string(id));
                        json_object_set_new(reply, "host", json_string(fresh->host));
                        pc_vps_free(fresh);
                        return 0;
                }
                pc_vps_free(fresh);
                fresh = NULL;
                departed(a, id); /* its interface is gone */
        }
        if (fresh != NULL)
                localize_vps(agent_host(a), fresh);
        /* An interface a departed VPS was kept for is another's now: its
         * VM is gone, whatever the name says. */
        if (fresh != NULL && fresh->iface[0] != '\0') {
                struct pc_vps *holder = pc_model_find_iface(a->model, fresh->iface);

                if (holder != NULL && holder != old && !agent_owns(a, holder))
                        let_go(a, holder);
        }
apply:
        if (old == NULL && fresh == NULL) {
                json_object_set_new(reply, "error", json_string("no such VPS in the database or the kernel"));
                return -ENOENT;
        }
        r = pc_dp_vps_change(a->dp, old, fresh, pc_now(), &changes);
        if (r < 0) {
                /* The kernel kept its previous state: nothing half-applied. */
                snprintf(a->last_error, sizeof(a->last_error), "%s", pc_dp_errmsg(a->dp));
                json_object_set_new(reply, "error", json_string(pc_dp_errmsg(a->dp)));
                agent_log("Failed to apply the change of %s; the kernel keeps its previous state: %s", id,
                          pc_dp_errmsg(a->dp));
                pc_vps_free(fresh);
                return r;
        }
        a->last_enforced_ns = mono_ns();
        agent_reload_touched(a, id);
        /* Where it runs is in the snapshot, not in the kernel's fingerprint:
         * a restart must know a VPS that left but whose VM is still here. */
        if (old != NULL && fresh != NULL &&
            (strcmp(old->host, fresh->host) != 0 || strcmp(old->moving_from, fresh->moving_from) != 0))
                agent_snapshot_changed(a);
        arrived(a, fresh);
        /* The feed repeats what `portcullis` told already: nothing to say. */
        if (feed && changes == 0 && old != NULL && fresh != NULL && !pc_vps_change_tightens(old, fresh, pc_now())) {
                pc_model_remove(a->model, id);
                if (pc_model_add(a->model, fresh) < 0)
                        pc_vps_free(fresh);
                a->changes++; /* the model changed: what indexes it is stale */
                json_object_set_new(reply, "state", json_string("enforced"));
                return 0;
        }
        tighten = fresh != NULL && pc_vps_change_tightens(old, fresh, pc_now());
        if (old != NULL)
                pc_model_remove(a->model, id);
        if (fresh != NULL && pc_model_add(a->model, fresh) < 0) {
                pc_vps_free(fresh);
                fresh = NULL;
        }
        snprintf(what, sizeof(what), "%s %s", fresh == NULL ? "removed" : old == NULL ? "added" : "changed", id);
        record_change(a, what, pc_elapsed_us(&t0));
        json_object_set_new(reply, "vps", json_string(id));
        json_object_set_new(reply, "state", json_string(fresh == NULL ? "removed" : "enforced"));
        json_object_set_new(reply, "elements_changed", json_integer((json_int_t)changes));
        json_object_set_new(reply, "latency_us", json_integer(a->last_change_us));
        agent_log("%s: %zu kernel elements changed in %.2f ms", what, changes, a->last_change_us / 1000.0);
        if (tighten)
                purge_flows(a, fresh);
        /* The proxy refuses a VPS whose port 25 a filter or suspension covers. */
        agent_smtpd_tell(a, "sync", id);
        notifier_wake(a); /* the change may have queued an email */
        return 0;
}

int agent_reconcile(struct agent *a, json_t *reply)
{
        struct pc_dp_repair rep;
        struct timespec t0;
        int r;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        r = pc_dp_sync_all(a->dp, a->model, pc_now(), &rep);
        a->verifying = false; /* the read in the background, if any, is superseded */
        if (r < 0) {
                a->in_sync = false;
                snprintf(a->last_error, sizeof(a->last_error), "%s", pc_dp_errmsg(a->dp));
                json_object_set_new(reply, "error", json_string(pc_dp_errmsg(a->dp)));
                agent_log("Failed to reconcile the kernel: %s", pc_dp_errmsg(a->dp));
                return r;
        }
        synced(a, &rep, pc_elapsed_us(&t0));
        json_object_set_new(reply, "reprogrammed", json_boolean(rep.reprogrammed));
        json_object_set_new(reply, "missing", json_integer((json_int_t)rep.missing));
        json_object_set_new(reply, "extra", json_integer((json_int_t)rep.extra));
        json_object_set_new(reply, "elements", json_integer((json_int_t)rep.elements));
        return 0;
}

/* <v>, of another load of the configuration, as a copy pointed at <cfg>
 * (pc_vps_rebase), or NULL after logging why. */
static struct pc_vps *rebased(const struct pc_vps *v, const struct pc_config *cfg)
{
        struct pc_vps *c = NULL;
        int r = pc_vps_rebase(v, cfg, &c);

        if (r == -ENOENT)
                agent_log("NOT enforcing %s on %s any more: its site %s or a service of its filters is gone from the "
                          "configuration",
                          v->id, v->iface, v->site->name);
        else if (r < 0)
                agent_log("Failed to keep %s on %s through the reload: %s", v->id, v->iface, strerror(-r));
        return c;
}

/* Whether <id> on <iface>, a VPS of the model in force, is one the new
 * load <m> does not have and whose interface is here: one keep_departing
 * may keep.  (Whatever the model in force says of its host: a snapshot
 * may be older than the move.) */
static bool departing_candidate(const struct pc_model *m, const char *id, const char *iface)
{
        return iface[0] != '\0' && pc_model_find(m, id) == NULL && pc_model_find_iface(m, iface) == NULL &&
               if_nametoindex(iface) != 0;
}

/* Orders a list by id (qsort, bsearch). */
static int departing_cmp(const void *x, const void *y)
{
        const struct agent_departing *a = x, *b = y;

        return strcmp(a->id, b->id);
}

int agent_departing_list(const struct pc_model *model, struct agent_departing **ret, size_t *ret_n)
{
        struct agent_departing *d = NULL;
        size_t n = 0, count = pc_model_count(model);

        if (count > 0 && (d = calloc(count, sizeof(*d))) == NULL)
                return -ENOMEM;
        for (size_t i = 0; i < count; i++) {
                const struct pc_vps *v = pc_model_at(model, i);

                if (v->iface[0] == '\0')
                        continue;
                snprintf(d[n].id, sizeof(d[n].id), "%s", v->id);
                snprintf(d[n].iface, sizeof(d[n].iface), "%s", v->iface);
                n++;
        }
        if (n > 1)
                qsort(d, n, sizeof(*d), departing_cmp);
        *ret = d;
        *ret_n = n;
        return 0;
}

int agent_departing_read(struct pc_store *store, const struct pc_config *cfg, const struct pc_model *m,
                         struct agent_departing *d, size_t n)
{
        int err = 0;

        for (size_t i = 0; i < n; i++) {
                /* (Of this load only: the thread reads again after a failure.) */
                d[i].fresh = pc_vps_free(d[i].fresh);
                d[i].read = false;
                if (cfg->agent.host[0] == '\0' || !departing_candidate(m, d[i].id, d[i].iface))
                        continue;
                d[i].r = pc_store_vps_fetch(store, cfg, d[i].id, &d[i].fresh);
                d[i].read = true;
                if (d[i].r < 0 && d[i].r != -ENOENT && err == 0)
                        err = d[i].r;
        }
        return err;
}

struct agent_departing *agent_departing_free(struct agent_departing *d, size_t n)
{
        for (size_t i = 0; d != NULL && i < n; i++)
                pc_vps_free(d[i].fresh);
        free(d);
        return NULL;
}

/* The VPSes of <from> (the running model, or the snapshot's at a start)
 * that left for another host and are kept for their interface here (their
 * VM not gone yet), into the new model <m> (of <cfg>), as the database
 * has them now (<d>, read by agent_departing_read from the list of
 * <from>: this reads nothing, and takes the records it keeps), on their
 * interface here: a reload or a restart must not let them out.  0, or
 * -EAGAIN if one was not read (<from> changed since its list: <m> may
 * hold some of them, drop it). */
static int keep_departing(const struct pc_model *from, const struct pc_config *cfg, struct agent_departing *d,
                          size_t n, struct pc_model *m)
{
        const char *me = cfg->agent.host;

        for (size_t i = 0; me[0] != '\0' && i < pc_model_count(from); i++) {
                const struct pc_vps *v = pc_model_at(from, i);
                struct agent_departing key, *e;
                struct pc_vps *fresh;
                bool kept;

                if (!departing_candidate(m, v->id, v->iface))
                        continue;
                snprintf(key.id, sizeof(key.id), "%s", v->id);
                e = n > 0 ? bsearch(&key, d, n, sizeof(*d), departing_cmp) : NULL;
                if (e == NULL || !e->read || strcmp(e->iface, v->iface) != 0)
                        return -EAGAIN;
                if (e->r < 0 && (e->r != -ENOENT || strcmp(v->host, me) == 0))
                        continue; /* this host's own removed: gone with it */
                fresh = e->fresh;
                e->fresh = NULL;
                if (fresh != NULL && (strcmp(fresh->host, me) == 0 || strcmp(fresh->moving_from, me) == 0)) {
                        pc_vps_free(fresh); /* this host's after all: not <m>'s by a race; the feed brings it */
                        continue;
                }
                /* Removed or loosened on its way out: as <from> had it. */
                fresh = leaving_policy(v, fresh, &kept);
                if (fresh == NULL)
                        continue;
                /* <from>'s copy points into the configuration it was
                 * loaded with, which <m>'s replaces. */
                if (kept) {
                        struct pc_vps *c = rebased(fresh, cfg);

                        pc_vps_free(fresh);
                        if ((fresh = c) == NULL)
                                continue;
                }
                keep_on(fresh, v->iface);
                if (pc_model_add(m, fresh) < 0)
                        pc_vps_free(fresh);
        }
        return 0;
}

/* A load (config, database, model) and the data plane opened for it,
 * given up: the kernel did not take it. */
static void drop_load(struct pc_dataplane *dp, struct pc_model *m, struct pc_store *store, struct pc_config *cfg)
{
        pc_dp_close(dp);
        pc_model_free(m);
        pc_store_close(store);
        pc_config_free(cfg);
}

/* The data plane <dp> and <store> of a load the kernel took replace the
 * agent's, and the config and model it replaced are freed. */
static void take_load(struct agent *a, struct pc_dataplane *dp, struct pc_store *store, struct pc_config *old_cfg,
                      struct pc_model *old_model)
{
        pc_dp_close(a->dp);
        a->dp = dp;
        a->verifying = false;
        pc_store_close(a->store);
        a->store = store;
        pc_model_free(old_model);
        pc_config_free(old_cfg);
}

/* Into the reload's model <m> (of <cfg>), as the running model has them:
 * each VPS the loop changed while the thread loaded (<touched>: the load
 * may have read it before; removed from <m> if the loop removed it), and
 * each VPS <m> has not whose interface is here (a VM that moved away and
 * is still here, kept; or one the load did not read yet).  The kernel
 * must not undo what the loop applied; the change feed, read again from
 * before both (agent_reload_take), brings what the database says of them
 * since. */
static void keep_running(const struct agent *a, const struct pc_config *cfg, struct pc_model *m,
                         const char (*touched)[PC_NAME_MAX], size_t n_touched)
{
        for (size_t i = 0; i < n_touched; i++) {
                const struct pc_vps *v = pc_model_find(a->model, touched[i]);
                struct pc_vps *c;

                if (v == NULL) {
                        if (pc_model_find(m, touched[i]) != NULL)
                                pc_model_remove(m, touched[i]);
                        continue;
                }
                if ((c = rebased(v, cfg)) == NULL)
                        continue;
                if (pc_model_find(m, v->id) != NULL)
                        pc_model_remove(m, v->id);
                if (pc_model_add(m, c) < 0)
                        pc_vps_free(c);
        }
        for (size_t i = 0; i < pc_model_count(a->model); i++) {
                const struct pc_vps *v = pc_model_at(a->model, i);
                struct pc_vps *kept;

                if (!departing_candidate(m, v->id, v->iface))
                        continue;
                if ((kept = rebased(v, cfg)) != NULL && pc_model_add(m, kept) < 0)
                        pc_vps_free(kept);
        }
}

/* The model the kernel holds before a reload takes its load (a
 * pc_dp_prev_fn): the running one. */
static struct pc_model *running_model(void *arg)
{
        struct agent *a = arg;

        return a->model;
}

int agent_reload_take(struct agent *a, struct pc_config *cfg, struct pc_store *store, struct pc_model *m,
                      int64_t seen, long load_us, const char (*touched)[PC_NAME_MAX], size_t n_touched,
                      json_t *reply)
{
        struct pc_config *old_cfg = a->cfg;
        struct pc_model *old_model = a->model;
        struct pc_dataplane *dp = NULL;
        struct pc_dp_repair rep;
        struct timespec t0;
        int r;

        if (a->from_snapshot) { /* (not while it loaded: a start only) */
                json_object_set_new(reply, "error", json_string("the database cannot be read"));
                drop_load(NULL, m, store, cfg);
                return -EAGAIN;
        }
        /* (At the database thread's barrier: agent_reload_ready.) */
        clock_gettime(CLOCK_MONOTONIC, &t0);
        keep_running(a, cfg, m, touched, n_touched);
        /* What the journal holds back holds until it is stored: the
         * database does not know it yet (as agent_db_back). */
        a->cfg = cfg;
        a->model = m;
        agent_offline_hold(a);
        m = a->model;
        a->cfg = old_cfg;
        a->model = old_model;
        /* The data plane holds a pointer to the config it was opened with.
         * The kernel holds the running model: what differs from it is
         * written, or, if the record does not vouch for it, the kernel is
         * read back in the background as at a start. */
        r = pc_dp_open(cfg, &dp);
        if (r >= 0 && a->sync_fd >= 0 && !a->verifying)
                r = pc_dp_sync_start(dp, m, pc_now(), a->sync_fd, running_model, a, &rep);
        else if (r >= 0)
                r = pc_dp_sync_all(dp, m, pc_now(), &rep);
        if (r < 0 && r != -EINPROGRESS) {
                const char *why = dp != NULL ? pc_dp_errmsg(dp) : strerror(-r);

                json_object_set_new(reply, "error", json_string(why));
                agent_log("Reload refused: the kernel did not take the new ruleset (%s); keeping the old one", why);
                drop_load(dp, m, store, cfg);
                return r;
        }
        take_load(a, dp, store, old_cfg, old_model);
        a->cfg = cfg;
        a->model = m;
        if (r == -EINPROGRESS)
                verifying(a, &t0);
        /* The loop applied changes while the thread loaded: the feed from
         * the older of the two, so that none is missed (one applied twice
         * changes nothing). */
        if (seen < a->change_seen)
                a->change_seen = seen;
        if (r == 0)
                synced(a, &rep, pc_elapsed_us(&t0));
        proxy_route_apply(cfg);
        record_change(a, "reloaded the configuration", pc_elapsed_us(&t0));
        agent_log("Reloaded %s: %zu VPSes, %zu sites (loaded in %.1f ms beside the loop, taken in %.1f ms)",
                  a->config_path, pc_model_count(m), cfg->n_sites, load_us / 1000.0, pc_elapsed_us(&t0) / 1000.0);
        agent_smtpd_tell(a, "reload", NULL);
        notifier_retire(a); /* it holds a copy of the old notifications config */
        notifier_start(a);
        agent_scan_reconfigure(a);
        /* The database (or the host) may be another now. */
        agent_watch_close(a);
        a->watch_none = false;
        agent_watch_start(a);
        a->policy_loaded = pc_now();
        agent_snapshot_due(a);
        agent_changes_follow(a); /* from the older of the two, now */
        json_object_set_new(reply, "reloaded", json_true());
        json_object_set_new(reply, "reprogrammed", json_boolean(r == 0 && rep.reprogrammed));
        json_object_set_new(reply, "verifying", json_boolean(r == -EINPROGRESS));
        return 0;
}

int agent_db_back(struct agent *a, struct pc_config *cfg, struct pc_store *store, struct pc_model *m, int64_t seen,
                  struct agent_departing *departing, size_t n)
{
        struct pc_config *old_cfg = a->cfg;
        struct pc_model *old_model = a->model;
        struct pc_dataplane *dp = NULL;
        struct pc_dp_repair rep;
        struct timespec t0;
        char t[32];
        int r;

        agent_db_drain(a); /* its jobs use the config in force */
        clock_gettime(CLOCK_MONOTONIC, &t0);
        /* As the thread read them: the loop does not wait for the server. */
        if (keep_departing(a->model, cfg, departing, n, m) < 0) {
                agent_log("The database answers, but a VPS kept for its interface here was not read with its "
                          "load (its interface came back, or the running model changed, meanwhile): the "
                          "snapshot stays in force; loaded again");
                drop_load(NULL, m, store, cfg);
                return -EAGAIN;
        }
        r = pc_dp_open(cfg, &dp);
        if (r >= 0) {
                /* What the journal held meanwhile holds until it is stored
                 * (agent_changes_follow replays it first). */
                a->cfg = cfg;
                a->model = m;
                agent_offline_hold(a);
                m = a->model;
                r = pc_dp_sync_all(dp, m, pc_now(), &rep);
        }
        if (r < 0) {
                const char *why = dp != NULL ? pc_dp_errmsg(dp) : strerror(-r);

                a->cfg = old_cfg;
                a->model = old_model;
                agent_log("The database answers, but the kernel did not take its policy (%s): the snapshot stays in "
                          "force; tried again",
                          why);
                drop_load(dp, m, store, cfg);
                return r;
        }
        take_load(a, dp, store, old_cfg, old_model);
        agent_db_reconfigure(a);
        a->from_snapshot = false;
        a->change_seen = seen;
        a->policy_loaded = pc_now();
        a->last_error[0] = '\0';
        pc_format_time(a->snapshot_head.loaded, t, sizeof(t));
        synced(a, &rep, pc_elapsed_us(&t0));
        proxy_route_apply(a->cfg);
        record_change(a, "loaded the database's policy", pc_elapsed_us(&t0));
        agent_log("The database answers: enforcing its policy (%zu VPSes of %zu sites) in place of the snapshot of %s",
                  pc_model_count(m), a->cfg->n_sites, t);
        agent_smtpd_tell(a, "reload", NULL);
        notifier_retire(a); /* (reaped once it stopped: it may be in a statement) */
        notifier_start(a);
        agent_scan_reconfigure(a);
        agent_watch_close(a);
        a->watch_none = false;
        agent_watch_start(a);
        agent_snapshot_due(a);
        agent_heartbeat(a);
        agent_changes_follow(a); /* the journal first, then what changed since the load */
        return 0;
}

/* Keeps the count of <x>, an element of <vps> that grew, for
 * attempts_store.  Bounded: the pass tracks at most PC_ATTEMPTS_MAX. */
static int attempts_keep(struct agent *a, const struct pc_vps *vps, const struct pc_dp_attempt *x)
{
        if (a->n_attempts_grew == a->attempts_grew_cap) {
                size_t cap = a->attempts_grew_cap == 0 ? 64 : 2 * a->attempts_grew_cap;
                struct pc_attempt_count *n;

                if (cap > PC_ATTEMPTS_MAX)
                        cap = PC_ATTEMPTS_MAX;
                if (cap == a->attempts_grew_cap)
                        return -ENOSPC;
                n = reallocarray(a->attempts_grew, cap, sizeof(*n));
                if (n == NULL)
                        return -ENOMEM;
                a->attempts_grew = n;
                a->attempts_grew_cap = cap;
        }
        a->attempts_grew[a->n_attempts_grew++] = (struct pc_attempt_count){
                .vps_id = vps->id, .dir = x->dir, .proto = x->proto, .port = x->port,
                .packets = x->packets, .last_seen = x->last_seen,
        };
        return 0;
}

/* The counts that grew in a pass, copied for the database thread. */
struct attempts_write {
        size_t n;
        struct pc_attempt_count *counts;
        char (*ids)[PC_NAME_MAX];     /* counts[i].vps_id points here */
};

static int attempts_run(struct pc_store *store, const struct pc_config *cfg, void *arg)
{
        struct attempts_write *w = arg;
        int r;

        (void)cfg;
        r = pc_store_tx_begin(store);
        for (size_t i = 0; i < w->n && r >= 0; i++) {
                r = pc_store_attempt_note(store, &w->counts[i]);
                if (r == -ENOENT)
                        r = 0;
        }
        if (r == -ENOENT || pc_store_tx_end(store, r) < 0 || r < 0)
                return r < 0 ? r : -EIO;
        return 0;
}

static void attempts_done(struct agent *a, void *arg, const struct agent_db_result *res)
{
        struct attempts_write *w = arg;

        (void)a;
        if (res->r < 0)
                agent_log("Failed to record %zu blocked-attempt count(s): %s", w->n, res->err);
        free(w->counts);
        free(w->ids);
        free(w);
}

/* Writes the counts that grew in this pass to the store, in one
 * transaction, by the database thread: what support reads beside a
 * ticket without the kernel (pc_ops_ticket_findings).  A VPS removed since
 * the model was read is skipped.  A failure is logged; the next growth
 * writes the count again. */
static void attempts_store(struct agent *a)
{
        size_t n = a->n_attempts_grew;
        struct attempts_write *w;

        a->n_attempts_grew = 0;
        if (n == 0 || a->store == NULL)
                return;
        w = calloc(1, sizeof(*w));
        if (w == NULL || (w->counts = calloc(n, sizeof(*w->counts))) == NULL ||
            (w->ids = calloc(n, sizeof(*w->ids))) == NULL) {
                if (w != NULL)
                        free(w->counts);
                free(w);
                agent_log("Failed to record %zu blocked-attempt count(s): out of memory", n);
                return;
        }
        w->n = n;
        for (size_t i = 0; i < n; i++) {
                w->counts[i] = a->attempts_grew[i];
                snprintf(w->ids[i], sizeof(w->ids[i]), "%s", a->attempts_grew[i].vps_id);
                w->counts[i].vps_id = w->ids[i];
        }
        if (agent_db_submit(a, attempts_run, attempts_done, w) < 0)
                attempts_done(a, w, &(struct agent_db_result){ .r = -ENOBUFS, .err = "the database thread is full" });
}

/* A blocked use noted (attempt_cb): what to log once the store has it. */
struct blocked_use {
        char vps[PC_NAME_MAX];
        char what[320];
};

static void blocked_use_noted(struct agent *a, int r, int64_t id, void *arg)
{
        struct blocked_use *b = arg;

        (void)a;
        if (r >= 0 && id != 0)
                agent_log("%s: terms-of-service evidence in incident #%" PRId64 "%s", b->what, id,
                          r > 0 ? " (new)" : "");
        free(b);
}

/* Records new blocked attempts of a terms-of-service rule as an incident,
 * and keeps the VPS's new count for the store. */
static int attempt_cb(const struct pc_dp_attempt *x, void *userdata)
{
        struct agent *a = userdata;
        const struct pc_vps *vps;
        struct pc_flow flow = { x->proto, x->port, x->dir };
        struct pc_verdict v;
        const struct pc_rule *rule = NULL;
        uint64_t delta;
        int r = pc_attempts_note(a->attempts, x->iface, x->dir, x->proto, x->port, x->packets, &delta);

        if (r < 0) {
                a->attempts_refused++;
                return 0;
        }
        if (delta == 0)
                return 0;
        agent_metrics_blocked(a, x->dir, x->proto, x->port, delta);
        vps = pc_model_find_iface(a->model, x->iface);
        if (vps == NULL)
                return 0;
        if (attempts_keep(a, vps, x) < 0)
                a->attempts_unkept++;
        pc_evaluate(vps, &flow, pc_now(), &v);
        for (unsigned i = 0; i < v.n_reasons; i++)
                if (v.reasons[i].kind == PC_REASON_SITE_RULE)
                        rule = v.reasons[i].rule;
        if (rule != NULL && rule->tos_event) {
                struct blocked_use *b = calloc(1, sizeof(*b));
                char evidence[256];

                if (b == NULL)
                        return 0;
                snprintf(evidence, sizeof(evidence),
                         "{\"service\":\"%s\",\"proto\":\"%s\",\"port\":%u,\"direction\":\"%s\",\"packets\":%" PRIu64 "}",
                         rule->service->name, pc_proto_name(x->proto), x->port, pc_dir_name(x->dir), x->packets);
                snprintf(b->vps, sizeof(b->vps), "%s", vps->id);
                snprintf(b->what, sizeof(b->what),
                         "%s tried %s/%u %s %" PRIu64 " more time(s) (service %s blocked by policy %s, no approval)",
                         vps->id, pc_proto_name(x->proto), x->port, pc_dir_name(x->dir), delta, rule->service->name,
                         vps->site->policy->name);
                /* (the database away: the journal keeps it) */
                agent_incident_at(a, vps, "blocked-use", delta, x->last_seen, evidence, TOS_EPISODE_GAP,
                                  blocked_use_noted, b);
        }
        return 0;
}

int agent_attempts_pass(struct agent *a)
{
        int r;

        if (a->attempts == NULL && pc_attempts_new(&a->attempts) < 0) {
                agent_log("Failed to count blocked attempts: %s", strerror(ENOMEM));
                return -ENOMEM;
        }
        a->attempts_refused = 0;
        a->attempts_unkept = 0;
        a->n_attempts_grew = 0;
        pc_attempts_begin(a->attempts);
        r = pc_dp_attempts(a->dp, attempt_cb, a);
        if (r < 0)
                agent_log("Failed to read the blocked-attempt counters: %s", pc_dp_errmsg(a->dp));
        else
                pc_attempts_end(a->attempts); /* forgets the elements the kernel let expire */
        /* What was read before a failure grew all the same. */
        attempts_store(a);
        if (a->attempts_unkept > 0)
                agent_log("Not recording %zu blocked-attempt count(s) for support (out of memory)",
                          a->attempts_unkept);
        if (a->attempts_refused > 0)
                agent_log("Not tracking %zu blocked-attempt counter(s) beyond %zu (at most %u, or out of memory): "
                          "their attempts are not recorded as incidents",
                          a->attempts_refused, pc_attempts_count(a->attempts), PC_ATTEMPTS_MAX);
        return r;
}

/* Re-reads <id> from the store once an exception or filter of it ended:
 * the kernel dropped its elements by itself, and the model now holds what
 * a fresh start would load, so that the next start finds the fingerprint
 * the kernel records (pc_dp_sync_all) and need not read the kernel back.
 * A failure is logged; the next change or start catches up. */
/* A VPS whose exception or filter ended, read again by the database
 * thread (refresh_vps). */
struct refresh {
        char id[PC_NAME_MAX];
        struct pc_vps *fresh;
};

static int refresh_run(struct pc_store *store, const struct pc_config *cfg, void *arg)
{
        struct refresh *x = arg;

        return pc_store_vps_fetch(store, cfg, x->id, &x->fresh);
}

static void refresh_done(struct agent *a, void *arg, const struct agent_db_result *res)
{
        struct refresh *x = arg;
        struct pc_vps *fresh = x->fresh, *old = pc_model_find(a->model, x->id);
        int r;

        if (res->r < 0 || old == NULL) {
                /* (The kernel dropped what ended by itself; only the model
                 * keeps it until the VPS's next change or a reload.) */
                if (res->r < 0 && res->r != -ENOENT)
                        agent_log("Failed to read %s from the database: %s", x->id, res->err);
                pc_vps_free(fresh);
                goto out;
        }
        /* As this host enforces it: a VPS leaving it stays on its
         * interface here, and is not loosened here on its way out. */
        if (leaving_here(a, old, fresh)) {
                bool kept;

                fresh = leaving_policy(old, fresh, &kept);
                if (fresh == NULL)
                        goto out;
                if (!agent_owns(a, fresh))
                        keep_on(fresh, old->iface);
        }
        localize_vps(agent_host(a), fresh);
        r = pc_dp_vps_change(a->dp, old, fresh, pc_now(), NULL);
        if (r < 0) {
                agent_log("Failed to record in the kernel what ended for %s: %s", x->id, pc_dp_errmsg(a->dp));
                pc_vps_free(fresh);
                goto out;
        }
        agent_reload_touched(a, x->id);
        pc_model_remove(a->model, x->id);
        if (pc_model_add(a->model, fresh) < 0)
                pc_vps_free(fresh);
out:
        free(x);
}

/* Reads <id> again, by the database thread: its model (and the kernel's
 * record of it) become what a fresh start would load. */
static void refresh_vps(struct agent *a, const char *id)
{
        struct refresh *x;

        if (a->store == NULL)
                return; /* a snapshot: the database's load, when it answers, has it */
        x = calloc(1, sizeof(*x));
        if (x == NULL)
                return;
        snprintf(x->id, sizeof(x->id), "%s", id);
        if (agent_db_submit(a, refresh_run, refresh_done, x) < 0)
                free(x);
}

/* True if an exception or filter of <vps> ended in (<since>, <now>];
 * *<ret_exception>: the first such exception, if any. */
static bool something_ended(const struct pc_vps *vps, int64_t since, int64_t now,
                            const struct pc_exception **ret_exception)
{
        bool any = false;

        *ret_exception = NULL;
        for (size_t k = 0; k < vps->n_exceptions && *ret_exception == NULL; k++) {
                int64_t until = vps->exceptions[k].until;

                if (until != 0 && until > since && until <= now)
                        *ret_exception = &vps->exceptions[k];
        }
        for (size_t k = 0; k < vps->n_filters && !any; k++)
                any = vps->filters[k].until != 0 && vps->filters[k].until > since && vps->filters[k].until <= now;
        return any || *ret_exception != NULL;
}

void agent_expiry_pass(struct agent *a)
{
        int64_t now = pc_now(), since = a->expiry_checked;
        const struct pc_vps *ended = NULL;
        size_t n_ended = 0, n_refresh = 0;
        char (*refresh)[PC_NAME_MAX] = NULL;

        a->expiry_checked = now;
        if (since == 0)
                return; /* the start's full purge covered the past */
        for (size_t i = 0; i < pc_model_count(a->model); i++) {
                const struct pc_vps *vps = pc_model_at(a->model, i);
                const struct pc_exception *e;
                void *more;

                if (!something_ended(vps, since, now, &e))
                        continue;
                if (e != NULL) {
                        agent_log("%s: exception #%" PRId64 " (%s) ended", vps->id, e->id, e->service);
                        ended = vps;
                        n_ended++;
                }
                more = realloc(refresh, (n_refresh + 1) * sizeof(*refresh));
                if (more == NULL)
                        continue; /* the next start reads the kernel back */
                refresh = more;
                snprintf(refresh[n_refresh++], PC_NAME_MAX, "%s", vps->id);
        }
        /* One pass over the conntrack table however many ended. */
        if (n_ended > 0)
                purge_flows(a, n_ended == 1 ? ended : NULL);
        for (size_t i = 0; i < n_refresh; i++)
                refresh_vps(a, refresh[i]);
        free(refresh);
}

void agent_status(struct agent *a, json_t *reply)
{
        char t[32];

        json_object_set_new(reply, "in_sync", json_boolean(a->in_sync));
        json_object_set_new(reply, "verifying", json_boolean(a->verifying));
        if (agent_host(a)[0] != '\0')
                json_object_set_new(reply, "host", json_string(agent_host(a)));
        json_object_set_new(reply, "table", json_sprintf("inet %s", a->cfg->agent.nft_table));
        json_object_set_new(reply, "vps", json_integer((json_int_t)pc_model_count(a->model)));
        json_object_set_new(reply, "elements", json_integer((json_int_t)a->elements));
        pc_format_time(a->started, t, sizeof(t));
        json_object_set_new(reply, "started", json_string(t));
        json_object_set_new(reply, "changes", json_integer((json_int_t)a->changes));
        if (a->last_change_at != 0) {
                pc_format_time(a->last_change_at, t, sizeof(t));
                json_object_set_new(reply, "last_change",
                                    json_pack("{s:s, s:s, s:I}", "what", a->last_change, "at", t, "latency_us",
                                              (json_int_t)a->last_change_us));
        }
        json_object_set_new(reply, "last_error", a->last_error[0] != '\0' ? json_string(a->last_error) : json_null());
        agent_snapshot_status(a, reply);
        /* The database thread: statements waiting, and whether the last
         * heartbeat found the database answering. */
        if (a->db != NULL)
                json_object_set_new(reply, "database_thread",
                                    json_pack("{s:I, s:b}", "queued", (json_int_t)agent_db_queued(a), "answers",
                                              !a->db_quiet));
}
