/* The proxy's per-VPS windows, domain estimate and source-address index. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "fixture.h"
#include "smtpd/account.h"
#include "policy/addr_index.h"
#include "smtp/relay.h"
#include "base/util.h"

static void test_window_slides(void **state)
{
        struct window w = { 0 };
        const int64_t win = 60000; /* 1 s slices */

        assert_int_equal(window_add(&w, 1, win, 1000), 1);
        assert_int_equal(window_add(&w, 2, win, 30500), 3);
        assert_int_equal(window_sum(&w, win, 59999), 3);
        /* The first slice (1 s) leaves the window 60 s later. */
        assert_int_equal(window_sum(&w, win, 61000), 2);
        assert_int_equal(window_sum(&w, win, 90500), 0);
        /* A bucket reused after a full turn starts from zero. */
        assert_int_equal(window_add(&w, 5, win, 1000 + 60000 * 3), 5);
}

static void test_domains_estimate(void **state)
{
        struct account_vps v = { .window_ms = 3600000 };
        unsigned n = 0;
        char name[32];

        for (int i = 0; i < 100; i++) {
                snprintf(name, sizeof(name), "d%d.example", i);
                n = account_domain(&v, smtp_domain_hash(name, strlen(name)), 1000);
        }
        /* The same domains again change nothing. */
        for (int i = 0; i < 100; i++) {
                snprintf(name, sizeof(name), "D%d.EXAMPLE", i);
                account_domain(&v, smtp_domain_hash(name, strlen(name)), 2000);
        }
        assert_int_equal(account_domains(&v, 2000), n);
        assert_in_range(n, 80, 120);
        /* A new window starts empty. */
        assert_int_equal(account_domains(&v, 1000 + 3600000), 0);
}

static void test_account_table(void **state)
{
        struct account *a;
        char key[32];

        assert_int_equal(account_new(&a), 0);
        for (int i = 0; i < 1000; i++) {
                snprintf(key, sizeof(key), "vps-%d", i);
                account_get(a, key)->messages = (uint64_t)i;
        }
        for (int i = 0; i < 1000; i++) {
                snprintf(key, sizeof(key), "vps-%d", i);
                assert_int_equal(account_get(a, key)->messages, (uint64_t)i);
        }
        json_t *j = account_json(a, 0);
        assert_int_equal(json_array_size(j), 1000);
        json_decref(j);
        account_free(a);
}

static const char *lookup(const struct addr_index *ix, const char *text)
{
        struct sockaddr_in s4 = { .sin_family = AF_INET };
        struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };

        if (inet_pton(AF_INET, text, &s4.sin_addr) == 1)
                return addr_index_lookup(ix, (struct sockaddr *)&s4);
        assert_int_equal(inet_pton(AF_INET6, text, &s6.sin6_addr), 1);
        return addr_index_lookup(ix, (struct sockaddr *)&s6);
}

static void add_vps(struct pc_model *m, const char *id, const char *a, const char *b)
{
        struct pc_vps *v;
        struct pc_prefix p;

        assert_int_equal(pc_vps_new(&v), 0);
        snprintf(v->id, sizeof(v->id), "%s", id);
        v->site = pc_config_site(cfg, "lenoir");
        assert_int_equal(pc_parse_prefix(a, false, &p), 0);
        assert_int_equal(pc_vps_add_addr(v, &p), 0);
        if (b != NULL) {
                assert_int_equal(pc_parse_prefix(b, false, &p), 0);
                assert_int_equal(pc_vps_add_addr(v, &p), 0);
        }
        assert_int_equal(pc_model_add(m, v), 0);
}

static void test_addr_index(void **state)
{
        struct pc_model *m;
        struct addr_index *ix;

        assert_int_equal(pc_model_new(cfg, &m), 0);
        add_vps(m, "vps-a", "198.51.100.10", "2001:db8:a::/64");
        add_vps(m, "vps-b", "198.51.100.16/29", "2001:db8:b::/48");
        add_vps(m, "vps-c", "198.51.100.20", NULL); /* inside b's /29: longest wins */
        assert_int_equal(addr_index_build(m, &ix), 0);
        assert_string_equal(lookup(ix, "198.51.100.10"), "vps-a");
        assert_string_equal(lookup(ix, "198.51.100.17"), "vps-b");
        assert_string_equal(lookup(ix, "198.51.100.20"), "vps-c");
        assert_null(lookup(ix, "198.51.100.11"));
        assert_string_equal(lookup(ix, "2001:db8:a::1234"), "vps-a");
        assert_string_equal(lookup(ix, "2001:db8:b:7::1"), "vps-b");
        assert_null(lookup(ix, "2001:db8:c::1"));
        /* A dual-stack socket's IPv4-mapped address is the IPv4 one. */
        assert_string_equal(lookup(ix, "::ffff:198.51.100.10"), "vps-a");
        addr_index_free(ix);
        pc_model_free(m);
}

/* ---- the limits, each at its edge: N allowed, N+1 refused ---- */

static const int64_t HOUR_MS = 3600 * 1000;

/* A policy's limits with every count <n> over a one-hour window. */
static struct pc_smtp_proxy_limits limits_of(unsigned n)
{
        return (struct pc_smtp_proxy_limits){
                .messages_per_hour = n,
                .recipients_per_message = n,
                .recipients_per_hour = n,
                .sessions_per_vps = n,
                .window = 3600,
        };
}

/* smtpd.max-sessions: the proxy as a whole. */
static void test_limit_max_sessions(void **state)
{
        unsigned open = 0;

        while (open < 100 && account_may_accept(open, 3))
                open++; /* each accepted connection is a session */
        assert_int_equal(open, 3);
        assert_true(account_may_accept(2, 3));
        assert_false(account_may_accept(3, 3));
        assert_false(account_may_accept(4, 3));
        /* one closes: one more may come */
        assert_true(account_may_accept(open - 1, 3));
        assert_true(account_may_accept(9999, 10000));
        assert_false(account_may_accept(10000, 10000));
}

/* sessions-per-vps: open at once, per VPS. */
static void test_limit_sessions_per_vps(void **state)
{
        struct account_vps v = { .window_ms = HOUR_MS };
        struct pc_smtp_proxy_limits l = limits_of(2);

        while (v.active < 100 && account_may_connect(&v, &l))
                v.active++;
        assert_int_equal(v.active, 2);
        assert_false(account_may_connect(&v, &l));
        v.active--; /* one ends */
        assert_true(account_may_connect(&v, &l));
        l.sessions_per_vps = 1;
        v.active = 0;
        assert_true(account_may_connect(&v, &l));
        v.active = 1;
        assert_false(account_may_connect(&v, &l));
}

/* Sends messages as the proxy counts them (a MAIL passes, the message
 * ends and enters the window) at <now_ms> until one is refused; returns
 * how many went. */
static unsigned send_messages(struct account_vps *v, const struct pc_smtp_proxy_limits *l, int64_t now_ms)
{
        unsigned sent = 0;

        while (sent < 1000 && account_may_mail(v, l, now_ms)) {
                v->messages_pending++;
                v->messages_pending--;
                window_add(&v->win_messages, 1, l->window * 1000, now_ms);
                sent++;
        }
        return sent;
}

/* messages-per-hour: those sent in the window and those under way. */
static void test_limit_messages_per_window(void **state)
{
        struct account_vps v = { .window_ms = HOUR_MS };
        struct pc_smtp_proxy_limits l = limits_of(5);
        const int64_t t0 = 10 * HOUR_MS;

        assert_int_equal(send_messages(&v, &l, t0), 5);
        assert_int_equal(window_sum(&v.win_messages, HOUR_MS, t0), 5);
        assert_false(account_may_mail(&v, &l, t0 + HOUR_MS / 2));
        /* A full window later the five have left it: five more, not six. */
        assert_int_equal(send_messages(&v, &l, t0 + HOUR_MS), 5);

        /* Four sent and one under way in another session: the sixth MAIL
         * is refused, the fifth was not. */
        memset(&v, 0, sizeof(v));
        v.window_ms = HOUR_MS;
        for (int i = 0; i < 4; i++)
                window_add(&v.win_messages, 1, HOUR_MS, t0);
        assert_true(account_may_mail(&v, &l, t0));
        v.messages_pending = 1;
        assert_false(account_may_mail(&v, &l, t0));
        v.messages_pending = 0; /* it failed: not counted */
        assert_true(account_may_mail(&v, &l, t0));

        /* A limit of one. */
        memset(&v, 0, sizeof(v));
        l.messages_per_hour = 1;
        assert_int_equal(send_messages(&v, &l, t0), 1);
}

/* recipients-per-message: RCPTs forwarded in one transaction. */
static void test_limit_recipients_per_message(void **state)
{
        struct pc_smtp_proxy_limits l = limits_of(50);
        unsigned rcpt_sent = 0;

        while (rcpt_sent < 1000 && account_may_rcpt(rcpt_sent, &l))
                rcpt_sent++;
        assert_int_equal(rcpt_sent, 50);
        assert_true(account_may_rcpt(49, &l));
        assert_false(account_may_rcpt(50, &l));
        l.recipients_per_message = 1;
        assert_true(account_may_rcpt(0, &l));
        assert_false(account_may_rcpt(1, &l));
}

/* Adds recipients as the proxy does (each RCPT that passes enters the
 * window) at <now_ms> until one is refused; returns how many went. */
static unsigned add_recipients(struct account_vps *v, const struct pc_smtp_proxy_limits *l, int64_t now_ms,
                               unsigned at_most)
{
        unsigned n = 0;

        while (n < at_most && account_may_recipient(v, l, now_ms)) {
                window_add(&v->win_recipients, 1, l->window * 1000, now_ms);
                n++;
        }
        return n;
}

/* recipients-per-hour: over the sliding window, across messages. */
static void test_limit_recipients_per_window(void **state)
{
        struct account_vps v = { .window_ms = HOUR_MS };
        struct pc_smtp_proxy_limits l = limits_of(7);
        const int64_t t0 = 10 * HOUR_MS;

        assert_int_equal(add_recipients(&v, &l, t0, 1000), 7);
        assert_false(account_may_recipient(&v, &l, t0 + HOUR_MS - 1));
        assert_int_equal(add_recipients(&v, &l, t0 + HOUR_MS, 1000), 7);

        /* Four at the start of the window, three half an hour later: the
         * eighth is refused until the first four leave the window. */
        memset(&v, 0, sizeof(v));
        v.window_ms = HOUR_MS;
        assert_int_equal(add_recipients(&v, &l, t0, 4), 4);
        assert_int_equal(add_recipients(&v, &l, t0 + HOUR_MS / 2, 3), 3);
        assert_false(account_may_recipient(&v, &l, t0 + HOUR_MS / 2));
        assert_false(account_may_recipient(&v, &l, t0 + HOUR_MS - 1));
        assert_int_equal(add_recipients(&v, &l, t0 + HOUR_MS, 1000), 4);

        /* A limit of one. */
        memset(&v, 0, sizeof(v));
        l.recipients_per_hour = 1;
        assert_int_equal(add_recipients(&v, &l, t0, 1000), 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_window_slides),
                cmocka_unit_test(test_domains_estimate),
                cmocka_unit_test(test_account_table),
                cmocka_unit_test(test_addr_index),
                cmocka_unit_test(test_limit_max_sessions),
                cmocka_unit_test(test_limit_sessions_per_vps),
                cmocka_unit_test(test_limit_messages_per_window),
                cmocka_unit_test(test_limit_recipients_per_message),
                cmocka_unit_test(test_limit_recipients_per_window),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
