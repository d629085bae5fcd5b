/* The change feed: how portcullisd learns of changes that writers without
 * its control socket made -- portcullis-apid, which runs unprivileged and
 * must not hold root's socket, and in a fleet every other host's
 * `portcullis` and API.  Every change is a row of the audit log,
 * written in the change's own transaction, so the log is the feed: the
 * agent applies the VPSes named by the rows after the last it saw.
 *
 * A writer wakes the agent with an empty datagram on the wake socket
 * (base/unixsock.h); the periodic pass follows the feed too, so a lost
 * wake delays a change by one period at most, never loses it.  A wake
 * carries nothing: the worst a local flood can do is make the agent read
 * an indexed, empty tail of the log.
 *
 * With PostgreSQL the database itself tells: every audit row notifies
 * `portcullis_change` at commit, and the agent LISTENs on a connection of
 * its own, connected and read without blocking the loop.  A lost
 * connection is made again (after 1 s, backing off to 8 s); the feed is
 * read from the last change applied as soon as it is back, so a notice
 * missed meanwhile costs nothing but its delay.  In a fleet the feed
 * names every host's VPSes: an agent skips those it neither holds nor is
 * to hold. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/agent.h"
#include "base/unixsock.h"
#include "base/util.h"

#define FEED_BATCH 1000  /* rows per read; the rest on the next turn */
#define FEED_VPSES 64    /* distinct VPSes applied per turn, in the order changed */

void agent_changes_open(struct agent *a)
{
        int r;

        a->wake_fd = -1;
        r = pc_unix_wake_path(a->cfg->agent.control_socket, a->wake_path, sizeof(a->wake_path));
        if (r == 0)
                r = pc_unix_wake_listen(a->wake_path, &a->wake_fd);
        if (r < 0) {
                agent_log("Failed to listen on the wake socket %s: %s; changes made through the API are "
                          "applied within %lld s",
                          a->wake_path, strerror(-r), (long long)a->cfg->agent.attempts_interval);
                a->wake_path[0] = '\0';
        }
}

void agent_changes_close(struct agent *a)
{
        if (a->wake_fd >= 0) {
                close(a->wake_fd);
                unlink(a->wake_path);
        }
        a->wake_fd = -1;
}

/* A read of the feed by the database thread: its rows, as they are. */
struct feed_read {
        int64_t after;
        struct pc_change *rows;
        size_t n, cap;
};

static int read_cb(const struct pc_change *c, void *userdata)
{
        struct feed_read *x = userdata;

        if (x->n == x->cap) {
                size_t cap = x->cap != 0 ? 2 * x->cap : 64;
                struct pc_change *more = realloc(x->rows, cap * sizeof(*more));

                if (more == NULL)
                        return -ENOMEM;
                x->rows = more;
                x->cap = cap;
        }
        x->rows[x->n++] = *c;
        return 0;
}

static int read_run(struct pc_store *store, const struct pc_config *cfg, void *arg)
{
        struct feed_read *x = arg;

        (void)cfg;
        return pc_store_changes(store, x->after, FEED_BATCH, read_cb, x);
}

/* The VPSes of one turn, to apply, and the row up to which it goes. */
struct feed {
        char ids[FEED_VPSES][PC_NAME_MAX];
        size_t n;
        int64_t last;     /* the last row taken */
        bool more;        /* rows wait after it */
};

/* Takes <rows> as far as FEED_VPSES distinct VPSes of this host go. */
static void feed_take(const struct agent *a, const struct pc_change *rows, size_t n_rows, struct feed *f)
{
        const char *me = agent_host(a);

        for (size_t r = 0; r < n_rows; r++) {
                const struct pc_change *c = &rows[r];

                /* Another host's VPS, not ours before either: nothing to do. */
                if (me[0] != '\0' && c->vps_id[0] != '\0' && strcmp(c->host, me) != 0 &&
                    strcmp(c->moving_from, me) != 0 && pc_model_find(a->model, c->vps_id) == NULL)
                        goto seen;
                if (c->vps_id[0] != '\0') {
                        for (size_t i = 0; i < f->n; i++)
                                if (strcmp(f->ids[i], c->vps_id) == 0)
                                        goto seen;
                        if (f->n == FEED_VPSES) {
                                f->more = true; /* this row waits for the next turn */
                                return;
                        }
                        snprintf(f->ids[f->n++], PC_NAME_MAX, "%s", c->vps_id);
                }
seen:
                f->last = c->id;
        }
}

static void follow_read(struct agent *a);

/* The turn is over: a follow asked for meanwhile begins. */
static void follow_end(struct agent *a)
{
        a->following = false;
        if (a->follow_again) {
                a->follow_again = false;
                agent_changes_follow(a);
        }
}

/* The turn's VPSes are applied (<pending>: one could not be read, and the
 * feed is read again from where it was: changes.c does not pass it by). */
static void turn_applied(struct agent *a, void *arg, json_t *reply, bool pending)
{
        struct feed *f = arg;

        (void)reply;
        /* The kernel's failure is logged and left to the reconcile (it
         * keeps its previous state); the database's is read again next
         * time, from here. */
        if (!pending && f->last > a->change_seen)
                a->change_seen = f->last;
        /* All of it: a change committed since sends its own notice.  Not
         * while the journal holds anything: its replay's last entry
         * follows the feed (the feed would undo what the journal holds). */
        if (!pending && f->more && a->n_journal == 0 && !a->replaying)
                follow_read(a);
        else
                follow_end(a);
        free(f);
}

static void read_done(struct agent *a, void *arg, const struct agent_db_result *res)
{
        struct feed_read *x = arg;
        struct feed *f = calloc(1, sizeof(*f));

        if (res->r < 0 || f == NULL) {
                if (res->r < 0 && !res->away)
                        agent_log("Failed to read the change feed: %s", res->err);
                free(f);
                follow_end(a);
                goto out;
        }
        /* (a reload or the database's return may have moved it meanwhile) */
        f->last = a->change_seen;
        feed_take(a, x->rows, x->n, f);
        f->more = f->more || x->n == FEED_BATCH;
        if (f->last <= a->change_seen && f->n == 0) {
                free(f);
                follow_end(a);
                goto out;
        }
        if (f->n == 0) {
                turn_applied(a, f, NULL, false);
                goto out;
        }
        if (agent_sync_vpses(a, (const char (*)[PC_NAME_MAX])f->ids, f->n, true, turn_applied, f) < 0) {
                free(f);
                follow_end(a);
        }
out:
        free(x->rows);
        free(x);
}

/* One turn: the thread reads the feed after the last change applied. */
static void follow_read(struct agent *a)
{
        struct feed_read *x = calloc(1, sizeof(*x));

        if (x == NULL) {
                follow_end(a);
                return;
        }
        x->after = a->change_seen;
        if (agent_db_submit(a, read_run, read_done, x) < 0) {
                free(x);
                follow_end(a);
        }
}

void agent_changes_follow(struct agent *a)
{
        if (a->store == NULL)
                return; /* a snapshot: the database's load follows it */
        /* What the database missed first: the feed would undo the
         * kernel's part of it (a suspension the journal placed). */
        if (a->n_journal > 0 || a->replaying) {
                /* (by the database thread, an entry at a time, the last
                 * following the feed: only when the heartbeat just found
                 * the database answering) */
                if (a->db_quiet)
                        return;
                agent_offline_replay(a);
                if (a->n_journal > 0 || a->replaying)
                        return;
        }
        /* One turn at a time, in order; one asked for meanwhile follows it. */
        if (a->following) {
                a->follow_again = true;
                return;
        }
        a->following = true;
        follow_read(a);
}

void agent_changes_wake(struct agent *a)
{
        char buf[16];

        while (recv(a->wake_fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
                ;
        agent_changes_follow(a);
}

/* ---- the database's notices ---- */

static void watch_ready(struct agent *a);
static void follow_paced(struct agent *a);

#define FOLLOW_PACE_MS 10 /* between two reads of the feed on notices */

static void on_watch(evutil_socket_t fd, short what, void *arg)
{
        watch_ready(arg);
}

static void on_watch_retry(evutil_socket_t fd, short what, void *arg)
{
        agent_watch_start(arg);
}

/* Waits for what the connection wants next (it may change descriptor). */
static int watch_arm(struct agent *a)
{
        short what = EV_READ | (pc_store_watch_wants_write(a->watch) ? EV_WRITE : 0);

        if (a->watch_ev != NULL)
                event_free(a->watch_ev);
        a->watch_ev = event_new(a->base, pc_store_watch_fd(a->watch), what, on_watch, a);
        if (a->watch_ev == NULL || event_add(a->watch_ev, NULL) < 0)
                return -ENOMEM;
        return 0;
}

/* Lost (or never made): closed, and tried again after a back-off. */
static void watch_lost(struct agent *a, const char *why)
{
        unsigned delay = a->watch_failures < 3 ? 1u << a->watch_failures : 8;

        if (!a->watch_told)
                agent_log("Lost the database's change notices (%s); following the feed every %lld s and "
                          "connecting again",
                          why, (long long)a->cfg->agent.attempts_interval);
        a->watch_told = true;
        a->watch_failures++;
        agent_watch_close(a);
        event_base_once(a->base, -1, EV_TIMEOUT, on_watch_retry, a, &(struct timeval){ .tv_sec = delay });
}

static void watch_ready(struct agent *a)
{
        const char *why = "";
        bool changed = false;
        int r = pc_store_watch_ready(a->watch, &changed, &why);

        if (r >= 0)
                r = watch_arm(a);
        if (r < 0) {
                watch_lost(a, r == -ENOMEM ? "out of memory" : why);
                return;
        }
        if (changed && a->watch_failures > 0) {
                if (a->watch_told)
                        agent_log("Following the database's change notices again");
                a->watch_failures = 0;
                a->watch_told = false;
        }
        if (changed)
                follow_paced(a);
}

static void on_follow_due(evutil_socket_t fd, short what, void *arg)
{
        struct agent *a = arg;

        a->follow_scheduled = false;
        a->followed_at = pc_mono_ms();
        agent_changes_follow(a);
}

/* Follows the feed now, or, within FOLLOW_PACE_MS of the last time, once
 * at its end: notices can come faster than changes (any session of the
 * database may NOTIFY), and one read takes every change in between. */
static void follow_paced(struct agent *a)
{
        int64_t now = pc_mono_ms(), wait = a->followed_at + FOLLOW_PACE_MS - now;

        if (a->follow_scheduled)
                return;
        if (wait <= 0) {
                a->followed_at = now;
                agent_changes_follow(a);
                return;
        }
        if (event_base_once(a->base, -1, EV_TIMEOUT, on_follow_due, a,
                            &(struct timeval){ .tv_usec = (suseconds_t)wait * 1000 }) == 0)
                a->follow_scheduled = true;
}

void agent_watch_start(struct agent *a)
{
        int r;

        if (a->watch != NULL || a->watch_none || a->base == NULL || a->store == NULL)
                return;
        r = pc_store_watch_open(a->store, agent_host(a), &a->watch);
        if (r == -EOPNOTSUPP) {
                a->watch_none = true;
                return;
        }
        if (r >= 0)
                r = watch_arm(a);
        if (r < 0)
                watch_lost(a, r == -ENOMEM && a->watch != NULL ? "out of memory" : pc_store_errmsg(a->store));
}

void agent_watch_close(struct agent *a)
{
        if (a->watch_ev != NULL)
                event_free(a->watch_ev);
        a->watch_ev = NULL;
        pc_store_watch_close(a->watch);
        a->watch = NULL;
}
