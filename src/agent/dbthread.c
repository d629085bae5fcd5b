/* The agent's database thread.  A finding's statements (its incident
 * noted; the response decided, placed through the operations and read
 * back) run here, on a connection of the thread's own, and their outcome
 * is taken on the loop: a database slow to answer, or not answering for
 * the store's 3 s bound (db_pg.c), no longer holds the loop that reads the
 * kernel's events, answers the control socket and programs the kernel.
 *
 * A job is two halves: run() on the thread, with the thread's store and
 * the config in force (which a reload swaps only once the queue is empty,
 * agent_db_drain), and done() on the loop, in the order jobs were
 * submitted.  Nothing of the loop's state (the model, the kernel) is
 * touched by run(): a job carries copies, and done() finds its VPS again
 * by id. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "agent/agent.h"

/* Jobs waiting at once: beyond it (a flood of findings while the
 * database hangs) a finding is answered from the journal at once. */
#define DB_QUEUE_MAX 4096
/* A store that could not be opened is tried again after this. */
#define DB_REOPEN_S 2

struct agent_db_job {
        agent_db_run_fn run;
        agent_db_done_fn done;
        void *arg;
        struct agent_db_result res;
        struct agent_db_job *next;
};

struct agent_db {
        pthread_t thread;
        pthread_mutex_t mu;
        pthread_cond_t more;           /* todo grew, or stop */
        pthread_cond_t idle;           /* todo is empty and nothing runs */
        struct agent_db_job *todo, **todo_tail, *done, **done_tail;
        size_t queued;                 /* submitted, not yet taken back by the loop */
        bool running;                  /* a job is in run() */
        bool paused;                   /* at a barrier: no job runs until agent_db_resume */
        bool stop;
        bool reopen;                   /* close the store before the next job (a reload) */
        int efd;                       /* the loop's: jobs are done */
        const struct pc_config *cfg;   /* in force; swapped only while idle */
        char url[1024];
        struct pc_store *store;        /* the thread's; NULL until opened */
        int64_t open_failed_at;
        char open_err[256];
};

static void job_run(struct agent_db *d, struct agent_db_job *j)
{
        struct agent_db_result *res = &j->res;

        if (d->reopen) {
                d->store = pc_store_close(d->store);
                d->reopen = false;
                d->open_failed_at = 0;
        }
        if (d->store == NULL && pc_now() - d->open_failed_at >= DB_REOPEN_S) {
                char why[512];

                if (pc_store_open(d->url, &d->store, why, sizeof(why)) < 0) {
                        d->store = NULL;
                        d->open_failed_at = pc_now();
                        snprintf(d->open_err, sizeof(d->open_err), "%s", why);
                } else
                        pc_store_background_reconnect(d->store);
        }
        if (d->store == NULL) {
                res->r = -ENOTCONN;
                res->away = true;
                snprintf(res->err, sizeof(res->err), "%s", d->open_err[0] != '\0' ? d->open_err : "not connected");
                return;
        }
        res->r = j->run(d->store, d->cfg, j->arg);
        if (res->r < 0) {
                res->away = !pc_store_connected(d->store);
                snprintf(res->err, sizeof(res->err), "%s", pc_store_errmsg(d->store));
        }
}

static void *thread_main(void *arg)
{
        struct agent_db *d = arg;

        pthread_mutex_lock(&d->mu);
        for (;;) {
                struct agent_db_job *j;
                uint64_t one = 1;

                while ((d->todo == NULL || d->paused) && !d->stop)
                        pthread_cond_wait(&d->more, &d->mu);
                if (d->todo == NULL || d->paused)
                        break;
                j = d->todo;
                d->todo = j->next;
                if (d->todo == NULL)
                        d->todo_tail = &d->todo;
                if (j->run == NULL) /* a barrier: every job before it ran */
                        d->paused = true;
                else {
                        d->running = true;
                        pthread_mutex_unlock(&d->mu);
                        job_run(d, j);
                        pthread_mutex_lock(&d->mu);
                        d->running = false;
                }
                j->next = NULL;
                *d->done_tail = j;
                d->done_tail = &j->next;
                if (write(d->efd, &one, sizeof(one)) < 0) {
                        /* (a full counter: the loop is reading it already) */
                }
                if (d->todo == NULL || d->paused)
                        pthread_cond_broadcast(&d->idle);
        }
        pthread_mutex_unlock(&d->mu);
        return NULL;
}

/* What agent_db_start made, once its thread is gone (or never ran). */
static void db_free(struct agent_db *d)
{
        pc_store_close(d->store);
        close(d->efd);
        pthread_mutex_destroy(&d->mu);
        pthread_cond_destroy(&d->more);
        pthread_cond_destroy(&d->idle);
        free(d);
}

int agent_db_start(struct agent *a)
{
        struct agent_db *d;
        int r;

        if (a->db != NULL)
                return 0;
        d = calloc(1, sizeof(*d));
        if (d == NULL)
                return -ENOMEM;
        d->todo_tail = &d->todo;
        d->done_tail = &d->done;
        d->cfg = a->cfg;
        snprintf(d->url, sizeof(d->url), "%s", a->db_url != NULL ? a->db_url : a->cfg->database);
        d->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (d->efd < 0) {
                r = -errno;
                free(d);
                return r;
        }
        pthread_mutex_init(&d->mu, NULL);
        pthread_cond_init(&d->more, NULL);
        pthread_cond_init(&d->idle, NULL);
        r = -pthread_create(&d->thread, NULL, thread_main, d);
        if (r < 0) {
                db_free(d);
                return r;
        }
        a->db = d;
        return 0;
}

int agent_db_fd(const struct agent *a)
{
        return a->db != NULL ? a->db->efd : -1;
}

size_t agent_db_queued(const struct agent *a)
{
        size_t n;

        if (a->db == NULL)
                return 0;
        pthread_mutex_lock(&a->db->mu);
        n = a->db->queued;
        pthread_mutex_unlock(&a->db->mu);
        return n;
}

/* Queues <j> (no bound: the caller's). */
static void enqueue(struct agent_db *d, struct agent_db_job *j)
{
        pthread_mutex_lock(&d->mu);
        *d->todo_tail = j;
        d->todo_tail = &j->next;
        d->queued++;
        pthread_cond_signal(&d->more);
        pthread_mutex_unlock(&d->mu);
}

int agent_db_submit(struct agent *a, agent_db_run_fn run, agent_db_done_fn done, void *arg)
{
        struct agent_db *d = a->db;
        struct agent_db_job *j;

        /* Enforcing the snapshot, the database is away for the loop: the
         * journal's, until agent_db_back takes the database again. */
        if (d == NULL || a->store == NULL) { /* (or --once, or no thread: here) */
                agent_db_run_here(a, a->store, run, done, arg);
                return 0; /* done() had it, whatever it gave */
        }
        pthread_mutex_lock(&d->mu);
        if (d->queued >= DB_QUEUE_MAX) {
                pthread_mutex_unlock(&d->mu);
                return -ENOBUFS;
        }
        pthread_mutex_unlock(&d->mu);
        j = calloc(1, sizeof(*j));
        if (j == NULL)
                return -ENOMEM;
        j->run = run;
        j->done = done;
        j->arg = arg;
        enqueue(d, j);
        return 0;
}

void agent_db_barrier(struct agent *a, agent_db_done_fn then, void *arg)
{
        struct agent_db *d = a->db;
        struct agent_db_job *j = d != NULL ? calloc(1, sizeof(*j)) : NULL;

        if (j == NULL) { /* no thread: nothing waits; no memory: waited for */
                agent_db_drain(a);
                then(a, arg, &(struct agent_db_result){ 0 });
                return;
        }
        j->done = then;
        j->arg = arg;
        enqueue(d, j);
}

/* The thread takes a->cfg and its URL, its store opened again before the
 * next job (the database may be another now); under d->mu. */
static void take_config(struct agent_db *d, const struct agent *a)
{
        d->cfg = a->cfg;
        snprintf(d->url, sizeof(d->url), "%s", a->db_url != NULL ? a->db_url : a->cfg->database);
        d->reopen = true;
}

void agent_db_resume(struct agent *a)
{
        struct agent_db *d = a->db;

        if (d == NULL)
                return;
        pthread_mutex_lock(&d->mu);
        if (d->cfg != a->cfg)
                take_config(d, a);
        d->paused = false;
        pthread_cond_signal(&d->more);
        pthread_mutex_unlock(&d->mu);
}

int agent_db_run_here(struct agent *a, struct pc_store *store, agent_db_run_fn run, agent_db_done_fn done,
                      void *arg)
{
        struct agent_db_result res = { 0 };

        if (store == NULL) {
                res.r = -ENOTCONN;
                res.away = true;
                snprintf(res.err, sizeof(res.err), "the database cannot be read");
        } else {
                res.r = run(store, a->cfg, arg);
                if (res.r < 0) {
                        res.away = !pc_store_connected(store);
                        snprintf(res.err, sizeof(res.err), "%s", pc_store_errmsg(store));
                }
        }
        done(a, arg, &res);
        return res.r;
}

void agent_db_complete(struct agent *a)
{
        struct agent_db *d = a->db;
        struct agent_db_job *list;
        uint64_t n;

        if (d == NULL)
                return;
        while (read(d->efd, &n, sizeof(n)) == sizeof(n))
                ;
        pthread_mutex_lock(&d->mu);
        list = d->done;
        d->done = NULL;
        d->done_tail = &d->done;
        pthread_mutex_unlock(&d->mu);
        while (list != NULL) {
                struct agent_db_job *j = list;

                list = j->next;
                j->done(a, j->arg, &j->res);
                pthread_mutex_lock(&d->mu);
                d->queued--;
                pthread_mutex_unlock(&d->mu);
                free(j);
        }
}

void agent_db_drain(struct agent *a)
{
        struct agent_db *d = a->db;

        if (d == NULL)
                return;
        /* A done() may submit the next half of its finding: until none is left. */
        for (;;) {
                pthread_mutex_lock(&d->mu);
                /* (Paused: its barrier's done() below resumes it.) */
                while ((d->todo != NULL && !d->paused) || d->running)
                        pthread_cond_wait(&d->idle, &d->mu);
                pthread_mutex_unlock(&d->mu);
                agent_db_complete(a);
                if (agent_db_queued(a) == 0)
                        return;
        }
}

void agent_db_reconfigure(struct agent *a)
{
        struct agent_db *d = a->db;

        if (d == NULL)
                return;
        agent_db_drain(a);
        pthread_mutex_lock(&d->mu);
        take_config(d, a);
        pthread_mutex_unlock(&d->mu);
}

void agent_db_stop(struct agent *a)
{
        struct agent_db *d = a->db;

        if (d == NULL)
                return;
        agent_db_drain(a);
        pthread_mutex_lock(&d->mu);
        d->stop = true;
        pthread_cond_signal(&d->more);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->thread, NULL);
        db_free(d);
        a->db = NULL;
}
