/* The agent's database thread (src/agent/dbthread.c), over a real SQLite
 * store: jobs run off the caller's thread and complete in the order they
 * were submitted; a done() may submit more and a drain waits for those
 * too; a flood of jobs behind one that hangs is refused, not queued
 * without bound; without a store a job is "away" (the journal's). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"

#include "fixture.h"

/* (dbthread.c is linked alone: the agent's log is not) */
void agent_log(const char *fmt, ...)
{
        (void)fmt;
}

static char dir[] = "/tmp/pc-dbthread-XXXXXX";
static char url[128];
static struct agent ag;

static int done_order[8];
static size_t n_done;
static pthread_t loop_thread;
static pthread_t ran_on[8];

struct job {
        int index;
        int ret;                  /* what run() returns */
        bool resubmit;            /* done() submits another (index + 4) */
};

static int job_run(struct pc_store *store, const struct pc_config *c, void *arg)
{
        struct job *j = arg;
        int64_t seen;

        assert_non_null(store);
        assert_ptr_equal(c, cfg);
        ran_on[j->index] = pthread_self();
        if (j->ret < 0)
                return j->ret;
        return pc_store_change_last(store, &seen);
}

static int job_seen_away;

static void job_done(struct agent *a, void *arg, const struct agent_db_result *res)
{
        struct job *j = arg;

        assert_true(pthread_equal(pthread_self(), loop_thread));
        if (j->ret < 0)
                assert_int_equal(res->r, j->ret);
        else
                assert_true(res->r >= 0);
        if (res->r < 0 && res->away)
                job_seen_away++;
        done_order[n_done++] = j->index;
        if (j->resubmit) {
                struct job *next = calloc(1, sizeof(*next));

                next->index = j->index + 4;
                assert_int_equal(agent_db_submit(a, job_run, job_done, next), 0);
        }
        free(j);
}

static int group_setup(void **state)
{
        struct pc_store *s;
        bool created;
        char err[512];

        if (setup(state) < 0)
                return -1;
        if (mkdtemp(dir) == NULL)
                return -1;
        snprintf(url, sizeof(url), "sqlite:%s/portcullis.db", dir);
        if (pc_store_init(url, &created, &s, err, sizeof(err)) < 0) {
                fprintf(stderr, "%s\n", err);
                return -1;
        }
        ag.store = s; /* the loop's: a thread's jobs need the database taken */
        ag.cfg = cfg;
        ag.db_url = url;
        loop_thread = pthread_self();
        return 0;
}

static int group_teardown(void **state)
{
        char path[160];

        agent_db_stop(&ag);
        pc_store_close(ag.store);
        snprintf(path, sizeof(path), "%s/portcullis.db", dir);
        unlink(path);
        rmdir(dir);
        return teardown(state);
}

/* Waits for the thread's eventfd, then completes what it finished. */
static void complete_some(void)
{
        struct pollfd p = { .fd = agent_db_fd(&ag), .events = POLLIN };

        assert_int_equal(poll(&p, 1, 5000), 1);
        agent_db_complete(&ag);
}

static void test_order_and_drain(void **state)
{
        (void)state;
        n_done = 0;
        assert_int_equal(agent_db_start(&ag), 0);
        assert_true(agent_db_fd(&ag) >= 0);
        for (int i = 0; i < 4; i++) {
                struct job *j = calloc(1, sizeof(*j));

                j->index = i;
                j->ret = i == 2 ? -EINVAL : 0;
                j->resubmit = i == 3;
                assert_int_equal(agent_db_submit(&ag, job_run, job_done, j), 0);
        }
        complete_some();
        agent_db_drain(&ag); /* and job 7, which job 3's done() submits */
        assert_int_equal(agent_db_queued(&ag), 0);
        assert_int_equal(n_done, 5);
        for (int i = 0; i < 4; i++)
                assert_int_equal(done_order[i], i);
        assert_int_equal(done_order[4], 7);
        for (int i = 0; i < 4; i++)
                assert_false(pthread_equal(ran_on[i], loop_thread));
        assert_int_equal(job_seen_away, 0); /* a refusal of the store is not "away" */
}

/* A job that waits until the test lets it go: the database hanging. */
static pthread_mutex_t hang_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hang_cv = PTHREAD_COND_INITIALIZER;
static bool hang_go;

static int hang_run(struct pc_store *store, const struct pc_config *c, void *arg)
{
        (void)store, (void)c, (void)arg;
        pthread_mutex_lock(&hang_mu);
        while (!hang_go)
                pthread_cond_wait(&hang_cv, &hang_mu);
        pthread_mutex_unlock(&hang_mu);
        return 0;
}

static size_t n_flood_done;

static void count_done(struct agent *a, void *arg, const struct agent_db_result *res)
{
        (void)a, (void)arg, (void)res;
        n_flood_done++;
}

static void test_flood_bounded(void **state)
{
        static struct job quick; /* index 0, run on the thread: not on this stack */
        size_t accepted = 0;
        int r = 0;

        (void)state;
        assert_int_equal(agent_db_submit(&ag, hang_run, count_done, NULL), 0);
        while (accepted < 100000 && (r = agent_db_submit(&ag, job_run, count_done, &quick)) == 0)
                accepted++;
        assert_int_equal(r, -ENOBUFS);
        assert_true(accepted >= 1000 && accepted < 100000);
        pthread_mutex_lock(&hang_mu);
        hang_go = true;
        pthread_cond_broadcast(&hang_cv);
        pthread_mutex_unlock(&hang_mu);
        agent_db_drain(&ag);
        assert_int_equal(n_flood_done, accepted + 1);
        assert_int_equal(agent_db_queued(&ag), 0);
}

static void test_without_store_away(void **state)
{
        struct pc_store *loop_store = ag.store;
        struct job *j = calloc(1, sizeof(*j));

        (void)state;
        /* Enforcing a snapshot: the loop has no store, a job is away. */
        ag.store = NULL;
        job_seen_away = 0;
        j->index = 0;
        j->ret = -ENOTCONN;
        assert_int_equal(agent_db_submit(&ag, job_run, job_done, j), 0); /* done at once */
        assert_int_equal(job_seen_away, 1);
        ag.store = loop_store;
        /* A reconfigure reopens the thread's store; jobs go on. */
        agent_db_reconfigure(&ag);
        n_done = 0;
        j = calloc(1, sizeof(*j));
        j->index = 1;
        assert_int_equal(agent_db_submit(&ag, job_run, job_done, j), 0);
        agent_db_drain(&ag);
        assert_int_equal(n_done, 1);
}

/* A barrier: its done() comes after every job submitted before it, and
 * no job submitted after it runs until the loop resumes the thread, so
 * that a reload's take need not wait on the loop for a hanging job. */
static char barrier_log[8];
static size_t n_barrier_log;
static volatile bool after_ran;

static void log_done(struct agent *a, void *arg, const struct agent_db_result *res)
{
        (void)a, (void)res;
        barrier_log[n_barrier_log++] = *(const char *)arg;
}

static int after_run(struct pc_store *store, const struct pc_config *c, void *arg)
{
        (void)store, (void)c, (void)arg;
        after_ran = true;
        return 0;
}

static void barrier_done(struct agent *a, void *arg, const struct agent_db_result *res)
{
        log_done(a, arg, res);
        usleep(100 * 1000);
        assert_false(after_ran); /* paused: the job after it waits */
        agent_db_resume(a);
}

static void test_barrier(void **state)
{
        (void)state;
        hang_go = false;
        assert_int_equal(agent_db_submit(&ag, hang_run, log_done, "h"), 0);
        agent_db_barrier(&ag, barrier_done, "b"); /* returns while the job before it hangs */
        assert_int_equal(n_barrier_log, 0);
        assert_int_equal(agent_db_submit(&ag, after_run, log_done, "a"), 0);
        assert_int_equal(agent_db_queued(&ag), 3);
        pthread_mutex_lock(&hang_mu);
        hang_go = true;
        pthread_cond_broadcast(&hang_cv);
        pthread_mutex_unlock(&hang_mu);
        agent_db_drain(&ag); /* the barrier's done() resumes it: no deadlock */
        assert_int_equal(agent_db_queued(&ag), 0);
        assert_int_equal(n_barrier_log, 3);
        assert_memory_equal(barrier_log, "hba", 3);
        assert_true(after_ran);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_order_and_drain),
                cmocka_unit_test(test_flood_bounded),
                cmocka_unit_test(test_without_store_away),
                cmocka_unit_test(test_barrier),
        };

        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
