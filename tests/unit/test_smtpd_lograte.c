/* The proxy's log rate limiter, fed with a clock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "smtpd/lograte.h"

struct seen {
        unsigned n;
        char key[8][LOGRATE_KEY_MAX];
        uint64_t total[8], suppressed[8];
        char reason[8][LOGRATE_REASON_MAX];
};

static void emit(void *ctx, const struct lograte_summary *s)
{
        struct seen *w = ctx;

        assert_true(w->n < 8);
        snprintf(w->key[w->n], sizeof(w->key[0]), "%s", s->key);
        w->total[w->n] = s->total;
        w->suppressed[w->n] = s->suppressed;
        snprintf(w->reason[w->n], sizeof(w->reason[0]), "%s", s->reason);
        assert_int_equal(s->period_ms, 10000);
        w->n++;
}

/* A flood of 12,345 events in one period: 10 lines, then one summary
 * with the right counts and the last reason. */
static void test_burst_then_summary(void **state)
{
        struct seen w = { 0 };
        struct lograte *lr;
        unsigned lines = 0;

        assert_int_equal(lograte_new(10, 10000, 16, emit, &w, &lr), 0);
        for (int i = 0; i < 12345; i++)
                lines += lograte_event(lr, "vps-101", i == 12344 ? "421 last" : "421 refused", 1000 + i / 2);
        assert_int_equal(lines, 10);
        lograte_flush(lr, 10999); /* the period is not over */
        assert_int_equal(w.n, 0);
        lograte_flush(lr, 11000);
        assert_int_equal(w.n, 1);
        assert_string_equal(w.key[0], "vps-101");
        assert_int_equal(w.total[0], 12345);
        assert_int_equal(w.suppressed[0], 12335);
        assert_string_equal(w.reason[0], "421 last");
        assert_int_equal(lograte_keys(lr), 0); /* forgotten */
        /* The next period starts afresh. */
        assert_true(lograte_event(lr, "vps-101", "x", 20000));
        lograte_free(lr);
}

/* Keys are apart; a quiet key gets no summary. */
static void test_keys_apart(void **state)
{
        struct seen w = { 0 };
        struct lograte *lr;

        assert_int_equal(lograte_new(2, 10000, 16, emit, &w, &lr), 0);
        for (int i = 0; i < 5; i++)
                lograte_event(lr, "vps-101", "a", 0);
        assert_true(lograte_event(lr, "vps-202", "b", 0));
        assert_true(lograte_event(lr, "203.0.113.99", "c", 5000));
        assert_int_equal(lograte_keys(lr), 3);
        lograte_flush(lr, 10000);
        assert_int_equal(w.n, 1);
        assert_string_equal(w.key[0], "vps-101");
        assert_int_equal(w.suppressed[0], 3);
        assert_int_equal(lograte_keys(lr), 1); /* 203.0.113.99's period runs on */
        lograte_flush(lr, 15000);
        assert_int_equal(w.n, 1);
        assert_int_equal(lograte_keys(lr), 0);
        lograte_free(lr);
}

/* An event after the period ended, before a flush, sums it up first. */
static void test_late_event_summarises(void **state)
{
        struct seen w = { 0 };
        struct lograte *lr;

        assert_int_equal(lograte_new(1, 10000, 16, emit, &w, &lr), 0);
        assert_true(lograte_event(lr, "vps-101", "a", 0));
        assert_false(lograte_event(lr, "vps-101", "b", 1));
        assert_true(lograte_event(lr, "vps-101", "c", 10001));
        assert_int_equal(w.n, 1);
        assert_int_equal(w.total[0], 2);
        assert_int_equal(w.suppressed[0], 1);
        lograte_free(lr);
}

/* More keys than allowed share the overflow key: memory stays bounded. */
static void test_bounded_keys(void **state)
{
        struct seen w = { 0 };
        struct lograte *lr;
        unsigned lines = 0;
        char key[32];

        assert_int_equal(lograte_new(3, 10000, 4, emit, &w, &lr), 0);
        for (int i = 0; i < 1000; i++) {
                snprintf(key, sizeof(key), "198.51.100.%d", i % 250);
                lines += lograte_event(lr, key, "421 unknown", 100);
        }
        assert_int_equal(lograte_keys(lr), 4);
        assert_int_equal(lines, 4 * 3 + 3);
        lograte_flush(lr, 10100);
        assert_int_equal(w.n, 5);
        assert_string_equal(w.key[4], "other");
        assert_int_equal(w.total[4], 1000 - 4 * 4);
        lograte_free(lr);
}

static void test_bad_arguments(void **state)
{
        struct lograte *lr = NULL;

        assert_int_equal(lograte_new(1, 0, 4, emit, NULL, &lr), -22);
        assert_int_equal(lograte_new(1, 1000, 0, emit, NULL, &lr), -22);
        assert_int_equal(lograte_new(1, 1000, 4, NULL, NULL, &lr), -22);
        assert_null(lograte_free(NULL));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_burst_then_summary),
                cmocka_unit_test(test_keys_apart),
                cmocka_unit_test(test_late_event_summarises),
                cmocka_unit_test(test_bounded_keys),
                cmocka_unit_test(test_bad_arguments),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
