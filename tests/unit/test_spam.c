/* The spam detector: each rule at its line and one past it, the proxy's
 * restarts, one finding per episode, the window sliding, a legitimate
 * sender, and the limits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "detect/spam.h"

#define REC_MAX 16
#define MIN (60 * 1000LL)
#define HOUR (60 * MIN)

struct rec {
        size_t n;
        struct pc_spam_finding f[REC_MAX];
        char vps[REC_MAX][64];
};

static void record(void *ud, const struct pc_spam_finding *f)
{
        struct rec *r = ud;

        assert_true(r->n < REC_MAX);
        r->f[r->n] = *f;
        snprintf(r->vps[r->n], sizeof(r->vps[0]), "%s", f->vps);
        r->n++;
}

static struct pc_spam *make(const struct pc_spam_params *p)
{
        struct pc_spam_params d;
        struct pc_spam *s = NULL;

        if (p == NULL) {
                pc_spam_params_default(&d);
                p = &d;
        }
        assert_int_equal(pc_spam_new(p, &s), 0);
        return s;
}

/* Feeds <f> at <t>, checks the invariants, returns the findings added. */
static size_t feed(struct pc_spam *s, const struct pc_spam_figures *f, int64_t t, struct rec *r)
{
        size_t before = r->n;

        assert_int_equal(pc_spam_feed(s, f, t, record, r), 0);
        assert_int_equal(pc_spam_check(s), 0);
        return r->n - before;
}

/* A fresh detector, <id> fed a zero baseline at 0 and then <f> at 1 min:
 * the number of findings. */
static size_t one_step(const struct pc_spam_params *p, struct pc_spam_figures f, struct rec *r)
{
        struct pc_spam *s = make(p);
        struct pc_spam_figures zero = { .vps = f.vps };
        size_t n;

        assert_int_equal(feed(s, &zero, 0, r), 0);
        n = feed(s, &f, MIN, r);
        pc_spam_free(s);
        return n;
}

static void test_params(void **state)
{
        struct pc_spam_params p, bad;
        struct pc_spam *s = NULL;

        pc_spam_params_default(&p);
        assert_int_equal(p.messages_per_hour, 200);
        assert_int_equal(p.recipients_per_message, 50);
        assert_int_equal(p.domains_per_hour, 50);
        assert_true(p.upstream_reject_ratio == 0.5);
        assert_int_equal(p.min_recipients, 20);
        assert_int_equal(p.limit_hits_per_hour, 10);
        assert_int_equal(p.window_ms, HOUR);
        assert_int_equal(p.max_vps, 65536);
        bad = p, bad.messages_per_hour = 0;
        assert_int_equal(pc_spam_new(&bad, &s), -EINVAL);
        bad = p, bad.domains_per_hour = PC_SPAM_COUNT_MAX + 1;
        assert_int_equal(pc_spam_new(&bad, &s), -EINVAL);
        bad = p, bad.min_recipients = 0;
        assert_int_equal(pc_spam_new(&bad, &s), -EINVAL);
        bad = p, bad.limit_hits_per_hour = 0;
        assert_int_equal(pc_spam_new(&bad, &s), -EINVAL);
        bad = p, bad.upstream_reject_ratio = 0;
        assert_int_equal(pc_spam_new(&bad, &s), -EINVAL);
        bad = p, bad.upstream_reject_ratio = 1.01;
        assert_int_equal(pc_spam_new(&bad, &s), -EINVAL);
        bad = p, bad.upstream_reject_ratio = NAN;
        assert_int_equal(pc_spam_new(&bad, &s), -EINVAL);
        bad = p, bad.window_ms = PC_SPAM_SLICES - 1;
        assert_int_equal(pc_spam_new(&bad, &s), -EINVAL);
        bad = p, bad.max_vps = 0;
        assert_int_equal(pc_spam_new(&bad, &s), -EINVAL);
        bad = p, bad.max_vps = PC_SPAM_VPS_MAX + 1;
        assert_int_equal(pc_spam_new(&bad, &s), -EINVAL);
        assert_null(s);
        bad = p, bad.upstream_reject_ratio = 1;
        s = make(&bad);
        assert_null(pc_spam_free(s));
        assert_null(pc_spam_free(NULL));
}

static void test_feed_errors(void **state)
{
        struct pc_spam *s = make(NULL);
        char long_id[65];
        struct pc_spam_figures f = { 0 };
        struct pc_spam_vps st;

        assert_int_equal(pc_spam_feed(s, &f, 0, NULL, NULL), -EINVAL);
        f.vps = "";
        assert_int_equal(pc_spam_feed(s, &f, 0, NULL, NULL), -EINVAL);
        memset(long_id, 'a', 64);
        long_id[64] = '\0';
        f.vps = long_id;
        assert_int_equal(pc_spam_feed(s, &f, 0, NULL, NULL), -EINVAL);
        long_id[63] = '\0';
        assert_int_equal(pc_spam_feed(s, &f, 0, NULL, NULL), 0);
        assert_int_equal(pc_spam_stats(s, long_id, &st), 0);
        assert_int_equal(pc_spam_stats(s, "other", &st), -ENOENT);
        assert_int_equal(pc_spam_vps_count(s), 1);
        pc_spam_forget(s, "other");
        pc_spam_forget(s, NULL);
        assert_int_equal(pc_spam_vps_count(s), 1);
        pc_spam_free(s);
}

static void test_baseline_not_judged(void **state)
{
        struct pc_spam *s = make(NULL);
        struct pc_spam_figures f = { .vps = "vps-1", .messages = 1000000, .recipients = 5000000,
                                     .recipients_refused = 4000000, .limited = 9999 };
        struct pc_spam_vps st;
        struct rec r = { 0 };

        assert_int_equal(feed(s, &f, 10 * HOUR, &r), 0);
        assert_int_equal(pc_spam_stats(s, "vps-1", &st), 0);
        assert_int_equal(st.w.messages, 0);
        assert_int_equal(st.w.recipients, 0);
        assert_false(st.reported);
        pc_spam_free(s);
}

static void test_from_zero(void **state)
{
        struct pc_spam *s = make(NULL);
        struct pc_spam_figures f = { .vps = "vps-1", .messages = 60, .recipients = 60, .recipients_refused = 120,
                                     .window_domains = 20, .from_zero = true };
        struct pc_spam_vps st;
        struct rec r = { 0 };

        /* new to the proxy since the caller last read: all of it counts */
        assert_int_equal(feed(s, &f, HOUR, &r), 1);
        assert_int_equal(r.f[0].rule, PC_SPAM_REJECTS);
        assert_int_equal(r.f[0].w.recipients, 180);
        /* only a first snapshot: later ones count their increase */
        f.messages = 61;
        assert_int_equal(feed(s, &f, HOUR + MIN, &r), 0);
        assert_int_equal(pc_spam_stats(s, "vps-1", &st), 0);
        assert_int_equal(st.w.messages, 61);
        pc_spam_free(s);
}

static void test_messages_rule(void **state)
{
        struct rec r = { 0 };

        assert_int_equal(one_step(NULL, (struct pc_spam_figures){ .vps = "v", .messages = 200 }, &r), 0);
        assert_int_equal(one_step(NULL, (struct pc_spam_figures){ .vps = "v", .messages = 201 }, &r), 1);
        assert_int_equal(r.f[0].rule, PC_SPAM_MESSAGES);
        assert_int_equal(r.f[0].rules, 1u << PC_SPAM_MESSAGES);
        assert_int_equal(r.f[0].w.messages, 201);
        assert_true(r.f[0].threshold == 200);
        assert_string_equal(r.vps[0], "v");
        /* failed transactions count as messages too */
        assert_int_equal(one_step(NULL, (struct pc_spam_figures){ .vps = "v", .messages = 150,
                                                                  .messages_failed = 50 }, &r), 0);
        assert_int_equal(one_step(NULL, (struct pc_spam_figures){ .vps = "v", .messages = 150,
                                                                  .messages_failed = 51 }, &r), 1);
        assert_int_equal(r.f[1].rule, PC_SPAM_MESSAGES);
}

static void test_domains_rule(void **state)
{
        struct rec r = { 0 };

        assert_int_equal(one_step(NULL, (struct pc_spam_figures){ .vps = "v", .messages = 50, .recipients = 50,
                                                                  .window_domains = 50 }, &r), 0);
        assert_int_equal(one_step(NULL, (struct pc_spam_figures){ .vps = "v", .messages = 51, .recipients = 51,
                                                                  .window_domains = 51 }, &r), 1);
        assert_int_equal(r.f[0].rule, PC_SPAM_DOMAINS);
        assert_int_equal(r.f[0].w.domains, 51);
        assert_true(r.f[0].threshold == 50);
}

static void test_rejects_rule(void **state)
{
        struct pc_spam_params p;
        struct rec r = { 0 };

        /* 0.5 of at least 20: 10 refused of 20 is spam, 9 of 20 is not */
        assert_int_equal(one_step(NULL, (struct pc_spam_figures){ .vps = "v", .messages = 5, .recipients = 11,
                                                                  .recipients_refused = 9 }, &r), 0);
        assert_int_equal(one_step(NULL, (struct pc_spam_figures){ .vps = "v", .messages = 5, .recipients = 10,
                                                                  .recipients_refused = 10 }, &r), 1);
        assert_int_equal(r.f[0].rule, PC_SPAM_REJECTS);
        assert_int_equal(r.f[0].w.recipients, 20);
        assert_int_equal(r.f[0].w.refused, 10);
        assert_true(fabs(r.f[0].w.reject_ratio - 0.5) < 1e-12);
        assert_true(r.f[0].threshold == 0.5);
        /* the minimum volume: 19 recipients all refused is not judged, 20 is */
        assert_int_equal(one_step(NULL, (struct pc_spam_figures){ .vps = "v", .messages = 19,
                                                                  .recipients_refused = 19 }, &r), 0);
        assert_int_equal(one_step(NULL, (struct pc_spam_figures){ .vps = "v", .messages = 1,
                                                                  .recipients_refused = 1 }, &r), 0);
        assert_int_equal(one_step(NULL, (struct pc_spam_figures){ .vps = "v", .messages = 20,
                                                                  .recipients_refused = 20 }, &r), 1);
        assert_int_equal(r.f[1].rule, PC_SPAM_REJECTS);
        /* floating rounding: 0.3 * 10 is 3.0000000000000004, 3 of 10 is at the line */
        pc_spam_params_default(&p);
        p.upstream_reject_ratio = 0.3;
        p.min_recipients = 10;
        assert_int_equal(one_step(&p, (struct pc_spam_figures){ .vps = "v", .messages = 10, .recipients = 8,
                                                                .recipients_refused = 2 }, &r), 0);
        assert_int_equal(one_step(&p, (struct pc_spam_figures){ .vps = "v", .messages = 10, .recipients = 7,
                                                                .recipients_refused = 3 }, &r), 1);
        assert_int_equal(r.f[2].rule, PC_SPAM_REJECTS);
}

static void test_recipients_rule(void **state)
{
        struct rec r = { 0 };

        /* 50 per message on average, over at least 20 recipients */
        assert_int_equal(one_step(NULL, (struct pc_spam_figures){ .vps = "v", .messages = 2, .recipients = 100 },
                                  &r), 0);
        assert_int_equal(one_step(NULL, (struct pc_spam_figures){ .vps = "v", .messages = 2, .recipients = 101 },
                                  &r), 1);
        assert_int_equal(r.f[0].rule, PC_SPAM_RECIPIENTS);
        assert_true(r.f[0].threshold == 50);
        /* recipients counted before their message ended (no message yet) */
        assert_int_equal(one_step(NULL, (struct pc_spam_figures){ .vps = "v", .recipients = 50 }, &r), 0);
        assert_int_equal(one_step(NULL, (struct pc_spam_figures){ .vps = "v", .recipients = 51 }, &r), 1);
}

static void test_limited_rule(void **state)
{
        struct rec r = { 0 };

        assert_int_equal(one_step(NULL, (struct pc_spam_figures){ .vps = "v", .messages = 3, .limited = 9 }, &r),
                         0);
        assert_int_equal(one_step(NULL, (struct pc_spam_figures){ .vps = "v", .messages = 3, .limited = 10 }, &r),
                         1);
        assert_int_equal(r.f[0].rule, PC_SPAM_LIMITED);
        assert_int_equal(r.f[0].w.limited, 10);
        assert_true(r.f[0].threshold == 10);
}

static void test_several_rules(void **state)
{
        struct rec r = { 0 };

        assert_int_equal(one_step(NULL, (struct pc_spam_figures){ .vps = "v", .messages = 300, .recipients = 100,
                                                                  .recipients_refused = 400, .limited = 12,
                                                                  .window_domains = 80 }, &r), 1);
        assert_int_equal(r.f[0].rule, PC_SPAM_MESSAGES);
        assert_int_equal(r.f[0].rules, (1u << PC_SPAM_MESSAGES) | (1u << PC_SPAM_DOMAINS) |
                                       (1u << PC_SPAM_REJECTS) | (1u << PC_SPAM_LIMITED));
        assert_string_equal(pc_spam_rule_name(PC_SPAM_REJECTS), "rejects");
        assert_string_equal(pc_spam_rule_name(PC_SPAM_RULES), "?");
}

static void test_proxy_restart(void **state)
{
        struct pc_spam *s = make(NULL);
        struct pc_spam_figures f = { .vps = "v", .messages = 1000, .recipients = 3000 };
        struct pc_spam_vps st;
        struct rec r = { 0 };

        assert_int_equal(feed(s, &f, 0, &r), 0);
        f.messages = 1100, f.recipients = 3100;
        assert_int_equal(feed(s, &f, MIN, &r), 0);
        /* the proxy restarted: the counters start again from 0; what they
         * count now was sent since, never a negative (or huge) increase */
        f.messages = 40, f.recipients = 40;
        assert_int_equal(feed(s, &f, 2 * MIN, &r), 0);
        assert_int_equal(pc_spam_stats(s, "v", &st), 0);
        assert_int_equal(st.w.messages, 140);
        assert_int_equal(st.w.recipients, 140);
        f.messages = 100, f.recipients = 100;
        assert_int_equal(feed(s, &f, 3 * MIN, &r), 0);
        assert_int_equal(pc_spam_stats(s, "v", &st), 0);
        assert_int_equal(st.w.messages, 200);
        /* only one counter going down is a restart as well */
        f.messages = 101, f.recipients = 101, f.limited = 0;
        assert_int_equal(feed(s, &f, 4 * MIN, &r), 1);
        assert_int_equal(r.f[0].rule, PC_SPAM_MESSAGES);
        assert_int_equal(r.f[0].w.messages, 201);
        assert_int_equal(r.f[0].restarts, 1);
        pc_spam_free(s);

        s = make(NULL);
        f = (struct pc_spam_figures){ .vps = "v", .messages = 500, .recipients = 500 };
        assert_int_equal(feed(s, &f, 0, &r), 0);
        f.messages = 600, f.recipients = 499; /* recipients went down: all counted again */
        assert_int_equal(feed(s, &f, MIN, &r), 1);
        assert_int_equal(r.f[1].w.messages, 600);
        pc_spam_free(s);
}

static void test_one_finding_per_episode(void **state)
{
        struct pc_spam *s = make(NULL);
        struct pc_spam_figures f = { .vps = "v" };
        struct pc_spam_vps st;
        struct rec r = { 0 };
        int64_t t = 0;

        assert_int_equal(feed(s, &f, t, &r), 0);
        /* 300 messages an hour for two hours, fed every minute: one finding */
        for (int i = 0; i < 120; i++) {
                f.messages += 5;
                t += MIN;
                feed(s, &f, t, &r);
        }
        assert_int_equal(r.n, 1);
        assert_int_equal(pc_spam_stats(s, "v", &st), 0);
        assert_true(st.reported);
        /* silent: the window drains below the line (about 20 minutes
         * later), but an hour under it has not passed; more spam within it
         * is the same episode */
        for (int i = 0; i < 30; i++) {
                t += MIN;
                feed(s, &f, t, &r);
        }
        f.messages += 300;
        t += MIN;
        assert_int_equal(feed(s, &f, t, &r), 0);
        assert_int_equal(r.n, 1);
        /* an hour and more under every line ends the episode */
        for (int i = 0; i < 150; i++) {
                t += MIN;
                feed(s, &f, t, &r);
        }
        assert_int_equal(r.n, 1);
        assert_int_equal(pc_spam_stats(s, "v", &st), 0);
        assert_false(st.reported);
        f.messages += 201;
        t += MIN;
        assert_int_equal(feed(s, &f, t, &r), 1);
        assert_int_equal(r.n, 2);
        /* forgetting it starts afresh: its next snapshot is a baseline */
        pc_spam_forget(s, "v");
        assert_int_equal(pc_spam_vps_count(s), 0);
        f.messages += 500;
        t += MIN;
        assert_int_equal(feed(s, &f, t, &r), 0);
        f.messages += 201;
        t += MIN;
        assert_int_equal(feed(s, &f, t, &r), 1);
        pc_spam_free(s);
}

static void test_legitimate_sender(void **state)
{
        struct pc_spam *s = make(NULL);
        struct pc_spam_figures f = { .vps = "v" };
        struct pc_spam_vps st;
        struct rec r = { 0 };
        int64_t t = 0;

        /* 100 messages an hour, one or two recipients each, 5 domains, no
         * refusal, for a day, fed every 30 s */
        feed(s, &f, t, &r);
        for (int i = 1; i <= 24 * 120; i++) {
                t += 30 * 1000;
                if (i % 6 < 5) { /* 5 of every 6 half-minutes: 100 an hour */
                        f.messages++;
                        f.recipients += 1 + i % 2;
                }
                f.window_domains = 5;
                feed(s, &f, t, &r);
        }
        assert_int_equal(r.n, 0);
        assert_int_equal(pc_spam_stats(s, "v", &st), 0);
        assert_true(st.w.messages >= 90 && st.w.messages <= 100);
        assert_false(st.reported);
        pc_spam_free(s);
}

static void test_window_slides(void **state)
{
        struct pc_spam *s = make(NULL);
        struct pc_spam_figures f = { .vps = "v" };
        struct pc_spam_vps st;
        struct rec r = { 0 };

        feed(s, &f, 0, &r);
        f.messages = 150;
        feed(s, &f, MIN, &r);
        /* an hour later the first 150 are out of the window */
        f.messages = 300;
        assert_int_equal(feed(s, &f, HOUR + 10 * MIN, &r), 0);
        assert_int_equal(pc_spam_stats(s, "v", &st), 0);
        assert_int_equal(st.w.messages, 150);
        /* within it they add up */
        f.messages = 351;
        assert_int_equal(feed(s, &f, HOUR + 20 * MIN, &r), 1);
        assert_int_equal(r.f[0].w.messages, 201);
        /* a clock going back is taken as the latest time given */
        f.messages = 352;
        assert_int_equal(feed(s, &f, 0, &r), 0);
        assert_int_equal(pc_spam_stats(s, "v", &st), 0);
        assert_int_equal(st.w.messages, 202);
        pc_spam_free(s);
}

static void test_limits(void **state)
{
        struct pc_spam_params p;
        struct pc_spam *s;
        struct pc_spam_figures f = { 0 };
        struct pc_spam_vps st;
        struct rec r = { 0 };
        char id[16];

        pc_spam_params_default(&p);
        p.max_vps = 4;
        s = make(&p);
        for (int i = 0; i < 6; i++) {
                snprintf(id, sizeof(id), "vps-%d", i);
                f.vps = id;
                feed(s, &f, i * 1000, &r);
                assert_true(pc_spam_vps_count(s) <= 4);
        }
        /* the least recently fed went first */
        assert_int_equal(pc_spam_stats(s, "vps-0", &st), -ENOENT);
        assert_int_equal(pc_spam_stats(s, "vps-1", &st), -ENOENT);
        assert_int_equal(pc_spam_stats(s, "vps-5", &st), 0);
        /* idle for two windows: forgotten */
        f.vps = "vps-5";
        feed(s, &f, 2 * HOUR + 4000, &r);
        assert_int_equal(pc_spam_vps_count(s), 2);
        assert_int_equal(pc_spam_stats(s, "vps-4", &st), 0);
        assert_int_equal(pc_spam_stats(s, "vps-3", &st), -ENOENT);
        f.vps = "vps-2"; /* forgotten: a new baseline */
        feed(s, &f, 2 * HOUR + 5000, &r);
        assert_int_equal(pc_spam_vps_count(s), 2);
        assert_int_equal(pc_spam_stats(s, "vps-4", &st), -ENOENT);
        assert_true(pc_spam_vps_bytes() < 1024);
        pc_spam_free(s);

        /* many VPSes: the index grows, each is still found */
        p.max_vps = 1000;
        s = make(&p);
        for (int i = 0; i < 1500; i++) {
                snprintf(id, sizeof(id), "vps-%d", i);
                f.vps = id;
                assert_int_equal(pc_spam_feed(s, &f, i, NULL, NULL), 0);
        }
        assert_int_equal(pc_spam_check(s), 0);
        assert_int_equal(pc_spam_vps_count(s), 1000);
        assert_int_equal(pc_spam_stats(s, "vps-1499", &st), 0);
        assert_int_equal(pc_spam_stats(s, "vps-499", &st), -ENOENT);
        pc_spam_free(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_params),
                cmocka_unit_test(test_feed_errors),
                cmocka_unit_test(test_baseline_not_judged),
                cmocka_unit_test(test_from_zero),
                cmocka_unit_test(test_messages_rule),
                cmocka_unit_test(test_domains_rule),
                cmocka_unit_test(test_rejects_rule),
                cmocka_unit_test(test_recipients_rule),
                cmocka_unit_test(test_limited_rule),
                cmocka_unit_test(test_several_rules),
                cmocka_unit_test(test_proxy_restart),
                cmocka_unit_test(test_one_finding_per_episode),
                cmocka_unit_test(test_legitimate_sender),
                cmocka_unit_test(test_window_slides),
                cmocka_unit_test(test_limits),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
