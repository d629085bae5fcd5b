/* The outbox's claim (pc_store_notification_sending) on SQLite: a row is
 * claimed only while it is pending and due, so that of the workers that
 * read one due row (several agents sharing one database) exactly one
 * sends it; the others are told -EBUSY and write nothing.  The lease and
 * a retry_later time both make the row due again. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"
#include "policy/config.h"
#include "store/store.h"

static struct pc_config *cfg;
static char dir[64]; /* the temporary folder */
static char url[160];

static const struct pc_actor alice = { .by = "alice", .reason = "test" };

static int group_setup(void **state)
{
        char err[1024];

        if (pc_config_load(PC_SOURCE_ROOT "/etc/portcullis.yaml", &cfg, err, sizeof(err)) < 0) {
                fprintf(stderr, "%s\n", err);
                return -1;
        }
        return 0;
}

static int group_teardown(void **state)
{
        cfg = pc_config_free(cfg);
        return 0;
}

static int setup(void **state)
{
        snprintf(dir, sizeof(dir), "/tmp/pc-test-outbox-XXXXXX");
        if (mkdtemp(dir) == NULL)
                return -1;
        snprintf(url, sizeof(url), "sqlite:%s/portcullis.db", dir);
        return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
        return remove(path);
}

static int teardown(void **state)
{
        return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A connection to the test's database, created by the first. */
static struct pc_store *open_store(void)
{
        struct pc_store *s = NULL;
        char err[512];

        if (pc_store_init(url, NULL, &s, err, sizeof(err)) < 0)
                fail_msg("pc_store_init(%s): %s", url, err);
        return s;
}

/* The VPS vps-101 on milano, whose owner the notifications go to. */
static void add_vps(struct pc_store *s)
{
        struct pc_vps *v;
        struct pc_prefix p;

        assert_int_equal(pc_vps_new(&v), 0);
        snprintf(v->id, sizeof(v->id), "vps-101");
        snprintf(v->owner, sizeof(v->owner), "owner@example.net");
        snprintf(v->lang, sizeof(v->lang), "en");
        v->site = pc_config_site(cfg, "milano");
        assert_non_null(v->site);
        assert_int_equal(pc_parse_prefix("192.0.2.10", false, &p), 0);
        assert_int_equal(pc_vps_add_addr(v, &p), 0);
        if (pc_store_vps_add(s, v, &alice) < 0)
                fail_msg("vps_add: %s", pc_store_errmsg(s));
        pc_vps_free(v);
}

/* Queues a notification due at <when>; returns its id. */
static int64_t queue(struct pc_store *s, int64_t when)
{
        int64_t id = 0;

        if (pc_store_notification_queue(s, "vps-101", "incident.opened", NULL, when, &id) < 0)
                fail_msg("notification_queue: %s", pc_store_errmsg(s));
        assert_true(id > 0);
        return id;
}

/* Notification <id>'s attempts, next attempt and Message-ID. */
struct row {
        unsigned attempts;
        int64_t next_attempt;
        char message_id[PC_NOTIFICATION_MESSAGE_ID_MAX];
        char state[16];
};

static struct row row_of(struct pc_store *s, int64_t id)
{
        struct pc_notification n = { 0 };
        struct row r;

        if (pc_store_notification_get(s, id, &n) < 0)
                fail_msg("notification_get: %s", pc_store_errmsg(s));
        r.attempts = n.attempts;
        r.next_attempt = n.next_attempt;
        snprintf(r.message_id, sizeof(r.message_id), "%s", n.message_id);
        snprintf(r.state, sizeof(r.state), "%s", n.state);
        pc_notification_clear(&n);
        return r;
}

/* The ids a due read gives. */
struct due {
        int64_t id[64];
        size_t n;
};

static int collect(const struct pc_notification *n, void *userdata)
{
        struct due *d = userdata;

        if (d->n == PC_ARRAY_SIZE(d->id))
                return -ENOSPC;
        d->id[d->n++] = n->id;
        return 0;
}

static struct due due_of(struct pc_store *s, int64_t now)
{
        struct due d = { .n = 0 };

        if (pc_store_notification_due(s, now, 64, collect, &d) < 0)
                fail_msg("notification_due: %s", pc_store_errmsg(s));
        return d;
}

/* Two agents read the same due row; the first claims it, the second is
 * refused with -EBUSY and writes nothing -- until the lease runs out. */
static void test_claimed_row_refused(void **state)
{
        struct pc_store *a = open_store(), *b = open_store();
        char mid[PC_NOTIFICATION_MESSAGE_ID_MAX];
        int64_t now = pc_now(), id;
        struct due da, db;
        struct row r;

        add_vps(a);
        id = queue(a, now);
        da = due_of(a, now);
        db = due_of(b, now);
        assert_int_equal(da.n, 1);
        assert_int_equal(db.n, 1);
        assert_int_equal(da.id[0], id);
        assert_int_equal(db.id[0], id);

        assert_int_equal(pc_store_notification_sending(a, id, "<a@test>", now, mid), 0);
        assert_string_equal(mid, "<a@test>");
        memset(mid, 0, sizeof(mid));
        assert_int_equal(pc_store_notification_sending(b, id, "<b@test>", now, mid), -EBUSY);
        assert_non_null(strstr(pc_store_errmsg(b), "is not due before"));
        assert_string_equal(mid, ""); /* nothing to send with */
        r = row_of(b, id);
        assert_int_equal(r.attempts, 1);
        assert_int_equal(r.next_attempt, now + PC_NOTIFICATION_LEASE);
        assert_string_equal(r.message_id, "<a@test>");
        /* The claimer itself, once more at the same time, is refused too. */
        assert_int_equal(pc_store_notification_sending(a, id, "<a@test>", now, NULL), -EBUSY);

        /* Claimed rows are not due; the lease's last second still holds. */
        assert_int_equal(due_of(b, now + PC_NOTIFICATION_LEASE - 1).n, 0);
        assert_int_equal(pc_store_notification_sending(b, id, "<b@test>", now + PC_NOTIFICATION_LEASE - 1,
                                                       NULL),
                         -EBUSY);
        assert_int_equal(row_of(b, id).attempts, 1);

        /* The lease ran out (the first agent died mid-send): due again, and
         * claimed again with the first attempt's Message-ID. */
        assert_int_equal(due_of(b, now + PC_NOTIFICATION_LEASE).n, 1);
        assert_int_equal(pc_store_notification_sending(b, id, "<b@test>", now + PC_NOTIFICATION_LEASE, mid), 0);
        assert_string_equal(mid, "<a@test>");
        r = row_of(b, id);
        assert_int_equal(r.attempts, 2);
        assert_int_equal(r.next_attempt, now + 2 * PC_NOTIFICATION_LEASE);
        assert_string_equal(r.message_id, "<a@test>");
        assert_int_equal(pc_store_notification_sending(a, id, "<a@test>", now + PC_NOTIFICATION_LEASE, NULL),
                         -EBUSY);

        /* Settled, it is -EALREADY for everyone, whenever. */
        assert_int_equal(pc_store_notification_sent(b, id, now + PC_NOTIFICATION_LEASE + 1), 0);
        assert_int_equal(pc_store_notification_sending(a, id, "<a@test>", now + 10 * PC_NOTIFICATION_LEASE,
                                                       NULL),
                         -EALREADY);
        assert_int_equal(pc_store_notification_sending(a, 99, "<z@test>", now, NULL), -ENOENT);
        pc_store_close(b);
        pc_store_close(a);
}

/* A row queued for later is not claimed before its time. */
static void test_not_yet_due_refused(void **state)
{
        struct pc_store *s = open_store();
        int64_t now = pc_now(), id;
        struct row r;

        add_vps(s);
        id = queue(s, now + 60);
        assert_int_equal(pc_store_notification_sending(s, id, "<a@test>", now + 59, NULL), -EBUSY);
        r = row_of(s, id);
        assert_int_equal(r.attempts, 0);
        assert_int_equal(r.next_attempt, now + 60);
        assert_string_equal(r.message_id, "");
        assert_int_equal(pc_store_notification_sending(s, id, "<a@test>", now + 60, NULL), 0);
        assert_int_equal(row_of(s, id).attempts, 1);
        pc_store_close(s);
}

/* retry_later's next_attempt is the row's next claim time, sooner or
 * later than the lease would have been. */
static void test_retry_later_honoured(void **state)
{
        struct pc_store *a = open_store(), *b = open_store();
        int64_t now = pc_now(), id;

        add_vps(a);
        id = queue(a, now);
        assert_int_equal(pc_store_notification_sending(a, id, "<a@test>", now, NULL), 0);
        /* Later than the lease. */
        assert_int_equal(pc_store_notification_retry_later(a, id, "421 try later", now + 2 * PC_NOTIFICATION_LEASE),
                         0);
        assert_int_equal(pc_store_notification_sending(b, id, "<b@test>", now + PC_NOTIFICATION_LEASE, NULL),
                         -EBUSY);
        assert_int_equal(pc_store_notification_sending(b, id, "<b@test>", now + 2 * PC_NOTIFICATION_LEASE - 1,
                                                       NULL),
                         -EBUSY);
        assert_int_equal(row_of(b, id).attempts, 1);
        assert_int_equal(pc_store_notification_sending(b, id, "<b@test>", now + 2 * PC_NOTIFICATION_LEASE, NULL),
                         0);
        assert_int_equal(row_of(b, id).attempts, 2);

        /* Sooner than the lease: the claimer gave its row back early. */
        assert_int_equal(pc_store_notification_retry_later(b, id, "421 try later",
                                                           now + 2 * PC_NOTIFICATION_LEASE + 60),
                         0);
        assert_int_equal(pc_store_notification_sending(a, id, "<a@test>", now + 2 * PC_NOTIFICATION_LEASE + 59,
                                                       NULL),
                         -EBUSY);
        assert_int_equal(pc_store_notification_sending(a, id, "<a@test>", now + 2 * PC_NOTIFICATION_LEASE + 60,
                                                       NULL),
                         0);
        assert_int_equal(row_of(a, id).attempts, 3);
        assert_string_equal(row_of(a, id).message_id, "<a@test>");
        pc_store_close(b);
        pc_store_close(a);
}

/* Two agents each read the same due rows and claim every one of them in
 * turn, as the notifier does: each row is claimed exactly once. */
static void test_two_workers_claim_each_once(void **state)
{
        struct pc_store *w[2] = { open_store(), open_store() };
        int64_t now = pc_now(), first = 0;
        struct due d[2];
        int claims[20] = { 0 }, busy = 0;
        char mid[64];

        add_vps(w[0]);
        for (int i = 0; i < 20; i++) {
                int64_t id = queue(w[0], now - 20 + i);

                if (i == 0)
                        first = id;
        }
        d[0] = due_of(w[0], now);
        d[1] = due_of(w[1], now);
        assert_int_equal(d[0].n, 20);
        assert_int_equal(d[1].n, 20);
        for (size_t i = 0; i < 20; i++)
                for (int k = 0; k < 2; k++) {
                        /* The second worker starts with the row the first took. */
                        int64_t id = d[k].id[k == 0 ? i : (i + 19) % 20];
                        int r;

                        snprintf(mid, sizeof(mid), "<%d.%lld@test>", k, (long long)id);
                        r = pc_store_notification_sending(w[k], id, mid, now, NULL);
                        if (r == -EBUSY) {
                                busy++;
                                continue;
                        }
                        if (r < 0)
                                fail_msg("sending #%lld: %s", (long long)id, pc_store_errmsg(w[k]));
                        claims[id - first]++;
                }
        for (int i = 0; i < 20; i++)
                assert_int_equal(claims[i], 1);
        assert_int_equal(busy, 20);
        assert_int_equal(due_of(w[1], now).n, 0);
        pc_store_close(w[1]);
        pc_store_close(w[0]);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_claimed_row_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_not_yet_due_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_retry_later_honoured, setup, teardown),
                cmocka_unit_test_setup_teardown(test_two_workers_claim_each_once, setup, teardown),
        };

        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
