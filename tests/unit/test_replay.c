/* The journal's replay (src/agent/offline.c) through the database thread
 * (src/agent/dbthread.c), over a real SQLite store: the loop hands an
 * entry over and goes on while the thread hangs, starts no second replay
 * meanwhile, extends no entry in flight; an entry leaves the journal once
 * stored, the change feed is followed only once the journal is empty;
 * the same entries replayed again (an agent killed before it saved the
 * journal) are not stored twice. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"

#include "fixture.h"

/* (offline.c and dbthread.c are linked alone: what else they call) */
void agent_log(const char *fmt, ...)
{
        (void)fmt;
}

const char *agent_host(const struct agent *a)
{
        (void)a;
        return "hv1";
}

int pc_dp_vps_change(struct pc_dataplane *dp, const struct pc_vps *before, const struct pc_vps *after, int64_t now,
                     size_t *ret_changes)
{
        (void)dp, (void)before, (void)after, (void)now, (void)ret_changes;
        return 0;
}

const char *pc_dp_errmsg(const struct pc_dataplane *dp)
{
        (void)dp;
        return "";
}

/* Only the incident: the policy notifies (no response to carry out). */
unsigned agent_response_bits(const struct pc_vps *vps, const char *kind)
{
        (void)vps, (void)kind;
        return PC_RESP_NOTIFY;
}

struct agent_response *agent_response_new(struct pc_vps *vps, const char *kind, const char *what,
                                          size_t episode_kinds)
{
        (void)vps, (void)kind, (void)what, (void)episode_kinds;
        return NULL;
}

int agent_response_run(struct pc_store *store, const struct pc_config *c, struct agent_response *x,
                       int64_t incident)
{
        (void)store, (void)c, (void)x, (void)incident;
        return 0;
}

void agent_response_done(struct agent *a, struct agent_response *x, const struct agent_db_result *res)
{
        (void)a, (void)x, (void)res;
}

static size_t n_follow, journal_at_follow;

void agent_changes_follow(struct agent *a)
{
        n_follow++;
        journal_at_follow = a->n_journal;
}

static char dir[] = "/tmp/pc-replay-XXXXXX";
static char url[128];
static struct agent ag;
static struct pc_vps *vps;

static int group_setup(void **state)
{
        static const struct pc_actor lab = { .by = "lab" };
        struct pc_store *s;
        bool created;
        char err[512];

        if (setup(state) < 0 || mkdtemp(dir) == NULL)
                return -1;
        snprintf(url, sizeof(url), "sqlite:%s/portcullis.db", dir);
        snprintf(cfg->agent.control_socket, sizeof(cfg->agent.control_socket), "%s/hv1.sock", dir);
        if (pc_store_init(url, &created, &s, err, sizeof(err)) < 0) {
                fprintf(stderr, "%s\n", err);
                return -1;
        }
        if (pc_vps_new(&vps) < 0)
                return -1;
        snprintf(vps->id, sizeof(vps->id), "vps-s");
        snprintf(vps->owner, sizeof(vps->owner), "sue@example.org");
        snprintf(vps->lang, sizeof(vps->lang), "en");
        vps->site = pc_config_site(cfg, "lenoir");
        if (vps->site == NULL || pc_store_vps_add(s, vps, &lab) < 0)
                return -1;
        if (pc_model_new(cfg, &ag.model) < 0)
                return -1;
        ag.store = s; /* the loop's: a thread's jobs need the database taken */
        ag.cfg = cfg;
        ag.db_url = url;
        ag.started = 1;
        return agent_db_start(&ag);
}

static int group_teardown(void **state)
{
        char path[160];

        agent_db_stop(&ag);
        agent_offline_free(&ag);
        pc_model_free(ag.model);
        pc_vps_free(vps);
        pc_store_close(ag.store);
        snprintf(path, sizeof(path), "%s/portcullis.db", dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/journal-hv1.json", dir);
        unlink(path);
        rmdir(dir);
        return teardown(state);
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

static void nothing_done(struct agent *a, void *arg, const struct agent_db_result *res)
{
        (void)a, (void)arg, (void)res;
}

static int count_cb(const struct pc_incident *i, void *userdata)
{
        (void)i;
        ++*(size_t *)userdata;
        return 0;
}

static size_t incidents(void)
{
        size_t n = 0;

        assert_int_equal(pc_store_incident_list(ag.store, "vps-s", NULL, false, 0, count_cb, &n), 0);
        return n;
}

static void test_replay_on_the_thread(void **state)
{
        char journal[160], saved[4096];
        size_t size;
        FILE *f;

        (void)state;
        /* The database away: two episodes of vps-s in the journal. */
        assert_int_equal(agent_offline_note(&ag, vps, "spoof", 3, "{\"a\":1}", 600), 1);
        assert_int_equal(agent_offline_note(&ag, vps, "scan", 2, NULL, 600), 1);
        assert_int_equal(ag.n_journal, 2);
        snprintf(journal, sizeof(journal), "%s/journal-hv1.json", dir);
        f = fopen(journal, "r");
        assert_non_null(f);
        size = fread(saved, 1, sizeof(saved), f);
        fclose(f);
        assert_true(size > 0 && size < sizeof(saved));

        /* It answers, but the thread hangs: the loop hands the first entry
         * over and goes on; no second replay meanwhile. */
        assert_int_equal(agent_db_submit(&ag, hang_run, nothing_done, NULL), 0);
        agent_offline_replay(&ag);
        assert_true(ag.replaying);
        assert_int_equal(agent_db_queued(&ag), 2);
        agent_offline_replay(&ag);
        assert_int_equal(agent_db_queued(&ag), 2);
        assert_int_equal(ag.n_journal, 2);
        /* A finding of the entry in flight: kept apart (a new entry). */
        assert_int_equal(agent_offline_note(&ag, vps, "spoof", 1, NULL, 600), 1);
        assert_int_equal(ag.n_journal, 3);

        pthread_mutex_lock(&hang_mu);
        hang_go = true;
        pthread_cond_broadcast(&hang_cv);
        pthread_mutex_unlock(&hang_mu);
        agent_db_drain(&ag); /* each done() hands the next over */
        assert_false(ag.replaying);
        assert_int_equal(ag.n_journal, 0);
        assert_int_equal(access(journal, F_OK), -1);
        /* The feed once, and only with the journal empty. */
        assert_int_equal(n_follow, 1);
        assert_int_equal(journal_at_follow, 0);
        /* Two episodes: the finding that came in flight extended the first. */
        assert_int_equal(incidents(), 2);

        /* The agent killed before it saved the journal: the first two
         * entries (their file as it was) come back, and are not doubled. */
        f = fopen(journal, "w");
        assert_non_null(f);
        assert_int_equal(fwrite(saved, 1, size, f), size);
        fclose(f);
        agent_offline_load(&ag);
        assert_int_equal(ag.n_journal, 2);
        agent_offline_replay(&ag);
        agent_db_drain(&ag);
        assert_int_equal(ag.n_journal, 0);
        assert_int_equal(access(journal, F_OK), -1);
        assert_int_equal(n_follow, 2);
        assert_int_equal(incidents(), 2);
}

/* The database answers, but its writers' lock is held past the store's
 * bound (another writer, a VACUUM): the entry's transaction cannot begin,
 * and the entry is kept for the next try, not dropped. */
static void test_replay_kept_when_it_cannot_begin(void **state)
{
        char path[160];
        sqlite3 *other;
        size_t before = incidents();

        (void)state;
        snprintf(path, sizeof(path), "%s/portcullis.db", dir);
        assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
        assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(agent_offline_note(&ag, vps, "flood", 4, NULL, 600), 1);
        agent_offline_replay(&ag);
        agent_db_drain(&ag);
        assert_false(ag.replaying);
        assert_int_equal(ag.n_journal, 1);
        assert_int_equal(incidents(), before);

        /* The lock let go: the next turn stores it. */
        assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(other);
        agent_offline_replay(&ag);
        agent_db_drain(&ag);
        assert_int_equal(ag.n_journal, 0);
        assert_int_equal(incidents(), before + 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_replay_on_the_thread),
                cmocka_unit_test(test_replay_kept_when_it_cannot_begin),
        };

        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
