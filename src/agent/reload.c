/* Reloading the configuration and the database's policy (SIGHUP, the
 * control socket's `reload`), off the loop.  Loading is the slow half:
 * the configuration parsed, the database connected (up to its
 * connect_timeout when it does not answer) and this host's VPSes read
 * (about half a second at 100,000, BENCHMARKS.md).  A thread of its own
 * does it, as the snapshot's does while the database is away, so the
 * loop goes on reading the kernel's events, answering the control socket
 * and applying changes meanwhile; the loop then takes the load
 * (agent_reload_take: the kernel programmed, the proxy, the notifier and
 * the detectors told).
 *
 * One load at a time: a reload asked for while one loads is merged into
 * one more after it (the files may have changed after the thread read
 * them), whose callers are answered once it is taken. */
#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"

/* The VPSes the loop may change while a reload loads, noted so that the
 * take keeps their running copies (a flood of changes beyond it: loaded
 * again). */
#define RELOAD_TOUCHED_MAX 65536

/* A caller to answer once a reload is taken (or refused). */
struct reload_waiter {
        agent_fetched_fn then;
        void *arg;
};

struct reload_waiters {
        struct reload_waiter *list;
        size_t n, cap;
};

struct agent_reload {
        pthread_t thread;
        struct agent *a;             /* the thread reads its config path, URL and host only */
        int fd;                      /* eventfd: the thread is done */
        struct event *ev;            /* on the loop, for <fd> */
        atomic_bool finished;
        /* The thread's, until <finished>: */
        int r;
        char err[1280];
        struct pc_config *cfg;
        struct pc_store *store;
        struct pc_model *model;
        int64_t seen;
        long us;
        /* The loop's: */
        struct reload_waiters waiting; /* answered when this one is taken */
        struct reload_waiters next;    /* asked for meanwhile: one more after it */
        bool again;
        char (*touched)[PC_NAME_MAX];  /* VPSes the loop changed while it loaded */
        size_t n_touched, touched_cap;
        bool touched_lost;             /* ... more than it could note: the load is not taken */
        bool at_barrier;               /* loaded; waiting for the database thread's barrier */
};

static void *load_run(void *arg)
{
        struct agent_reload *rl = arg;
        struct timespec t0;
        uint64_t one = 1;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        rl->r = agent_load_all(rl->a, false, &rl->cfg, &rl->store, &rl->model, &rl->seen, rl->err,
                               sizeof(rl->err));
        rl->us = pc_elapsed_us(&t0);
        atomic_store(&rl->finished, true);
        (void)!write(rl->fd, &one, sizeof(one)); /* if not, the tick looks too */
        return NULL;
}

/* Adds a caller to answer (NULL <then>: a signal, nobody to answer). */
static int waiters_add(struct reload_waiters *w, agent_fetched_fn then, void *arg)
{
        if (then == NULL)
                return 0;
        if (w->n == w->cap) {
                size_t cap = w->cap == 0 ? 4 : 2 * w->cap;
                struct reload_waiter *l = realloc(w->list, cap * sizeof(*l));

                if (l == NULL)
                        return -ENOMEM;
                w->list = l;
                w->cap = cap;
        }
        w->list[w->n++] = (struct reload_waiter){ then, arg };
        return 0;
}

/* Answers every caller of <w> with <reply>, and empties it. */
static void waiters_answer(struct agent *a, struct reload_waiters *w, json_t *reply)
{
        for (size_t i = 0; i < w->n; i++)
                w->list[i].then(a, w->list[i].arg, reply, false);
        free(w->list);
        *w = (struct reload_waiters){ 0 };
}

/* Answers one caller (NULL <then>: nobody) with the error <why> at once. */
static void answer_now(struct agent *a, agent_fetched_fn then, void *arg, const char *why)
{
        json_t *reply = json_object();

        json_object_set_new(reply, "error", json_string(why));
        if (then != NULL)
                then(a, arg, reply, false);
        json_decref(reply);
}

static void answer_error(struct agent *a, struct reload_waiters *w, const char *why)
{
        json_t *reply = json_object();

        json_object_set_new(reply, "error", json_string(why));
        waiters_answer(a, w, reply);
        json_decref(reply);
}

static void on_loaded(evutil_socket_t fd, short what, void *arg)
{
        (void)fd, (void)what;
        agent_reload_ready(arg);
}

/* Starts a load for the callers of <waiting> (taken, whatever happens). */
static void load_start(struct agent *a, struct reload_waiters *waiting)
{
        struct agent_reload *rl = calloc(1, sizeof(*rl));

        if (rl == NULL) {
                answer_error(a, waiting, "out of memory");
                return;
        }
        rl->a = a;
        rl->waiting = *waiting;
        *waiting = (struct reload_waiters){ 0 };
        rl->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (rl->fd == -1 || pthread_create(&rl->thread, NULL, load_run, rl) != 0) {
                agent_log("Reload refused: cannot start the thread that loads it (%s); keeping the configuration in "
                          "force",
                          strerror(errno));
                if (rl->fd >= 0)
                        close(rl->fd);
                answer_error(a, &rl->waiting, "cannot start the thread that loads the configuration");
                free(rl);
                return;
        }
        /* Without the event, the tick (100 ms) takes it. */
        if (a->base != NULL && (rl->ev = event_new(a->base, rl->fd, EV_READ | EV_PERSIST, on_loaded, a)) != NULL &&
            event_add(rl->ev, NULL) < 0) {
                event_free(rl->ev);
                rl->ev = NULL;
        }
        a->reload = rl;
}

void agent_reload(struct agent *a, agent_fetched_fn then, void *arg)
{
        struct reload_waiters w = { 0 };

        if (a->from_snapshot) {
                agent_log("Reload refused: enforcing the snapshot while the database cannot be read; the "
                          "configuration is read again when it answers");
                answer_now(a, then, arg, "the database cannot be read: the snapshot stays in force; the "
                                         "configuration is read again with the database's policy when it answers");
                return;
        }
        if (a->reload != NULL) {
                if (waiters_add(&a->reload->next, then, arg) < 0) {
                        answer_now(a, then, arg, "out of memory");
                        return;
                }
                if (!a->reload->again)
                        agent_log("A reload is loading already: another follows it");
                a->reload->again = true;
                return;
        }
        if (waiters_add(&w, then, arg) < 0) {
                answer_now(a, then, arg, "out of memory");
                return;
        }
        load_start(a, &w);
}

/* Ends the thread of <rl> (done, or waited for) and its event. */
static void load_end(struct agent_reload *rl)
{
        pthread_join(rl->thread, NULL);
        if (rl->ev != NULL)
                event_free(rl->ev);
        close(rl->fd);
}

void agent_reload_touched(struct agent *a, const char *id)
{
        struct agent_reload *rl = a->reload;

        if (rl == NULL || rl->touched_lost)
                return;
        for (size_t i = rl->n_touched; i-- > 0;) /* (a burst names the same few) */
                if (strcmp(rl->touched[i], id) == 0)
                        return;
        if (rl->n_touched == rl->touched_cap) {
                size_t cap = rl->touched_cap == 0 ? 16 : 2 * rl->touched_cap;
                char(*l)[PC_NAME_MAX] = cap <= RELOAD_TOUCHED_MAX ? realloc(rl->touched, cap * sizeof(*l)) : NULL;

                if (l == NULL) {
                        rl->touched_lost = true;
                        return;
                }
                rl->touched = l;
                rl->touched_cap = cap;
        }
        snprintf(rl->touched[rl->n_touched++], PC_NAME_MAX, "%s", id);
}

/* Takes or refuses the load of <rl>, answers its callers and starts the
 * one asked for meanwhile. */
static void reload_finish(struct agent *a, struct agent_reload *rl)
{
        json_t *reply = json_object();

        a->reload = NULL;
        if (rl->r < 0) {
                json_object_set_new(reply, "error", json_string("the new configuration or database did not load; "
                                                                "the old one stays in force (see the log)"));
                agent_log("Reload refused (%s); keeping the configuration in force", rl->err);
        } else if (rl->touched_lost) {
                /* So many changes meanwhile: loaded again, after them. */
                pc_model_free(rl->model);
                pc_store_close(rl->store);
                pc_config_free(rl->cfg);
                agent_log("The loop applied more than %d changes while the reload loaded: loading it again",
                          RELOAD_TOUCHED_MAX);
                for (size_t i = 0; i < rl->waiting.n; i++)
                        waiters_add(&rl->next, rl->waiting.list[i].then, rl->waiting.list[i].arg);
                free(rl->waiting.list);
                rl->waiting = (struct reload_waiters){ 0 };
                rl->again = true;
        } else
                agent_reload_take(a, rl->cfg, rl->store, rl->model, rl->seen, rl->us,
                                  (const char (*)[PC_NAME_MAX])rl->touched, rl->n_touched, reply);
        waiters_answer(a, &rl->waiting, reply);
        json_decref(reply);
        if (rl->again)
                load_start(a, &rl->next);
        free(rl->touched);
        free(rl);
}

/* The database thread's barrier: the jobs queued before the load are
 * done, under the config they ran with; the others wait.  The take swaps
 * the config, and the thread goes on with the one in force after it. */
static void on_barrier(struct agent *a, void *arg, const struct agent_db_result *res)
{
        struct agent_reload *rl = a->reload;

        (void)arg, (void)res;
        if (rl != NULL && rl->at_barrier) /* (not stopped meanwhile) */
                reload_finish(a, rl);
        agent_db_resume(a);
}

void agent_reload_ready(struct agent *a)
{
        struct agent_reload *rl = a->reload;

        if (rl == NULL || rl->at_barrier || !atomic_load(&rl->finished))
                return;
        load_end(rl);
        if (rl->r < 0 || rl->touched_lost) {
                reload_finish(a, rl);
                return;
        }
        /* The loop does not wait for the jobs queued before it (a database
         * that hangs holds them up to its bound each): the take comes
         * after them, at the barrier; the changes the loop applies
         * meanwhile are noted as while it loaded. */
        rl->at_barrier = true;
        agent_db_barrier(a, on_barrier, NULL);
}

void agent_reload_stop(struct agent *a)
{
        struct agent_reload *rl = a->reload;

        if (rl == NULL)
                return;
        a->reload = NULL;
        if (!rl->at_barrier) /* (its thread ended then) */
                load_end(rl);
        if (rl->r >= 0) {
                pc_model_free(rl->model);
                pc_store_close(rl->store);
                pc_config_free(rl->cfg);
        }
        answer_error(a, &rl->waiting, "the agent is stopping");
        answer_error(a, &rl->next, "the agent is stopping");
        free(rl->touched);
        free(rl);
}
