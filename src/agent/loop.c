/* portcullisd's event loop (libevent): the control socket, signals, the
 * kernel's event sources (NFLOG; conntrack) and the timers of the periodic
 * passes, each a callback.  Nothing here decides anything: the callbacks
 * hand over to agent.c, spoof.c, scan.c... */
#include <errno.h>
#include <event2/event.h>
#include <stdint.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "agent/agent.h"

struct loop {
        struct agent *a;
        struct event_base *base;
        int sig_fd;
};

static void on_control(evutil_socket_t fd, short what, void *arg)
{
        struct loop *l = arg;

        control_serve(l->a, fd);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
        struct loop *l = arg;
        struct signalfd_siginfo si;

        while (read(fd, &si, sizeof(si)) == sizeof(si)) {
                if (si.ssi_signo == SIGHUP) {
                        agent_log("SIGHUP: reloading %s", l->a->config_path);
                        agent_reload(l->a, NULL, NULL);
                } else {
                        agent_log("Stopping on signal %u; the rules stay in force", si.ssi_signo);
                        event_base_loopbreak(l->base);
                        return;
                }
        }
}

static void on_nflog(evutil_socket_t fd, short what, void *arg)
{
        struct loop *l = arg;

        agent_events_dispatch(l->a);
}

static void on_conntrack(evutil_socket_t fd, short what, void *arg)
{
        struct loop *l = arg;

        agent_scan_dispatch(l->a);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
        struct loop *l = arg;

        agent_changes_wake(l->a);
}

/* The periodic passes, once the heartbeat went through the database
 * thread: their statements are the thread's too (the journal's replay
 * starts only after the database just answered, changes.c).
 * While the heartbeat hangs, they wait: they do not pile up behind it. */
static void periodic_db(struct agent *a)
{
        agent_changes_follow(a); /* a lost wake costs one period */
        agent_arrivals(a);
        agent_departures(a);
        agent_attempts_pass(a);
        agent_expiry_pass(a);
        notifier_expiry_pass(a);
        notifier_digest_pass(a);
}

/* The periodic passes, every agent.attempts-interval. */
static void on_periodic(evutil_socket_t fd, short what, void *arg)
{
        struct loop *l = arg;
        int r = agent_probe(l->a, periodic_db);

        if (r < 0 && r != -EINPROGRESS) { /* no thread, or the snapshot: here, as they come */
                agent_heartbeat(l->a);
                periodic_db(l->a);
        }
        agent_smtpd_poll(l->a);
        agent_spam_direct_pass(l->a);
        agent_metrics_write(l->a);
}

/* The detectors' clock: pending contacts time out, windows slide. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
        struct loop *l = arg;

        agent_scan_tick(l->a);
        agent_snapshot_tick(l->a); /* writes it if the model changed; the database back */
        agent_reload_ready(l->a);  /* (its eventfd tells first) */
        notifier_reap(l->a, false);
}

/* The database thread finished jobs (dbthread.c). */
static void on_db_done(evutil_socket_t fd, short what, void *arg)
{
        struct loop *l = arg;

        agent_db_complete(l->a);
}

/* The start's read of the kernel in the background is done. */
static void on_sync(evutil_socket_t fd, short what, void *arg)
{
        struct loop *l = arg;
        uint64_t n;

        while (read(fd, &n, sizeof(n)) == sizeof(n))
                ;
        agent_sync_finish(l->a);
}

/* The start's purge of flows, at the loop's first turn. */
static void on_start(evutil_socket_t fd, short what, void *arg)
{
        struct loop *l = arg;

        agent_start_purge(l->a);
}

/* Adds a persistent event on <fd> (or a timer of <every> if <fd> is -1). */
static int watch(struct loop *l, int fd, const struct timeval *every, event_callback_fn cb, struct event **ret)
{
        struct event *ev = event_new(l->base, fd, fd >= 0 ? EV_READ | EV_PERSIST : EV_PERSIST, cb, l);

        if (ev == NULL || event_add(ev, every) < 0) {
                if (ev != NULL)
                        event_free(ev);
                return -ENOMEM;
        }
        *ret = ev;
        return 0;
}

int agent_run(struct agent *a, int listen_fd, int sig_fd)
{
        struct loop l = { .a = a, .sig_fd = sig_fd };
        struct event *ev[10] = { NULL };
        struct timeval periodic = { .tv_sec = a->cfg->agent.attempts_interval }, tick = { .tv_usec = 100000 };
        int r;

        l.base = event_base_new();
        if (l.base == NULL)
                return -ENOMEM;
        r = watch(&l, listen_fd, NULL, on_control, &ev[0]);
        if (r == 0)
                r = watch(&l, sig_fd, NULL, on_signal, &ev[1]);
        if (r == 0 && a->nflog != NULL)
                r = watch(&l, pc_nflog_fd(a->nflog), NULL, on_nflog, &ev[2]);
        if (r == 0 && agent_scan_fd(a) >= 0)
                r = watch(&l, agent_scan_fd(a), NULL, on_conntrack, &ev[3]);
        if (r == 0)
                r = watch(&l, -1, &periodic, on_periodic, &ev[4]);
        if (r == 0)
                r = watch(&l, -1, &tick, on_tick, &ev[5]);
        if (r == 0 && a->wake_fd >= 0)
                r = watch(&l, a->wake_fd, NULL, on_wake, &ev[6]);
        if (r == 0 && a->sync_fd >= 0)
                r = watch(&l, a->sync_fd, NULL, on_sync, &ev[7]);
        if (r == 0 && agent_db_fd(a) >= 0)
                r = watch(&l, agent_db_fd(a), NULL, on_db_done, &ev[9]);
        if (r == 0 && event_base_once(l.base, -1, EV_TIMEOUT, on_start, &l, &(struct timeval){ 0 }) < 0)
                r = -ENOMEM;
        a->base = l.base;
        agent_dbwait_watch(a); /* (one started before the loop) */
        if (r == 0)
                agent_watch_start(a);
        if (r == 0 && event_base_dispatch(l.base) < 0)
                r = -EIO;
        agent_reload_stop(a); /* its event is the base's */
        agent_dbwait_unwatch(a);
        agent_watch_close(a);
        control_close(a);
        a->base = NULL;
        for (size_t i = 0; i < PC_ARRAY_SIZE(ev); i++)
                if (ev[i] != NULL)
                        event_free(ev[i]);
        event_base_free(l.base);
        return r;
}
