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

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_window_slides),
                cmocka_unit_test(test_domains_estimate),
                cmocka_unit_test(test_account_table),
                cmocka_unit_test(test_addr_index),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
