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

struct feed {
        const struct agent *a;
        char ids[FEED_VPSES][PC_NAME_MAX];
        size_t n;
        size_t rows;      /* read */
        int64_t last;     /* the last row taken */
};

static int feed_cb(const struct pc_change *c, void *userdata)
{
        struct feed *f = userdata;
        const char *me = agent_host(f->a);

        f->rows++;
        /* Another host's VPS, not ours before either: nothing to do. */
        if (me[0] != '\0' && c->vps_id[0] != '\0' && strcmp(c->host, me) != 0 && strcmp(c->moving_from, me) != 0 &&
            pc_model_find(f->a->model, c->vps_id) == NULL)
                goto seen;
        if (c->vps_id[0] != '\0') {
                for (size_t i = 0; i < f->n; i++)
                        if (strcmp(f->ids[i], c->vps_id) == 0)
                                goto seen;
                if (f->n == FEED_VPSES)
                        return -ENOBUFS; /* this row waits for the next turn */
                snprintf(f->ids[f->n++], PC_NAME_MAX, "%s", c->vps_id);
        }
seen:
        f->last = c->id;
        return 0;
}

void agent_changes_follow(struct agent *a)
{
        struct feed f;
        int r;

        if (a->store == NULL)
                return; /* a snapshot: the database's load follows it */
        /* What the database missed first: the feed would undo the
         * kernel's part of it (a suspension the journal placed). */
        if (a->n_journal > 0) {
                agent_offline_replay(a);
                if (a->n_journal > 0)
                        return;
        }

        /* Until a read finds nothing new. */
        for (;;) {
                memset(&f, 0, sizeof(f));
                f.a = a;
                f.last = a->change_seen;
                r = pc_store_changes(a->store, a->change_seen, FEED_BATCH, feed_cb, &f);
                if (r < 0 && r != -ENOBUFS) {
                        agent_log("Failed to read the change feed: %s", pc_store_errmsg(a->store));
                        return;
                }
                for (size_t i = 0; i < f.n; i++) {
                        json_t *reply = json_object();
                        bool later;

                        /* The kernel's failure is logged and left to the
                         * reconcile (it keeps its previous state); the
                         * database's is read again next time, from here. */
                        agent_sync_vps_from(a, f.ids[i], true, reply);
                        later = json_object_get(reply, "pending") != NULL;
                        json_decref(reply);
                        if (later)
                                return;
                }
                if (f.last == a->change_seen)
                        return;
                a->change_seen = f.last;
                /* All of it: a change committed since sends its own notice. */
                if (r != -ENOBUFS && f.rows < FEED_BATCH)
                        return;
        }
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
