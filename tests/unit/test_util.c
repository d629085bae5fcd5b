/* Helpers: durations, times, prefixes, MACs, names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/util.h"

static void test_duration(void **state)
{
        int64_t s;
        char buf[32];

        assert_int_equal(pc_parse_duration("90", &s), 0);
        assert_int_equal(s, 90);
        assert_int_equal(pc_parse_duration("5m", &s), 0);
        assert_int_equal(s, 300);
        assert_int_equal(pc_parse_duration("24h", &s), 0);
        assert_int_equal(s, 86400);
        assert_int_equal(pc_parse_duration("30d", &s), 0);
        assert_int_equal(s, 30 * 86400);
        assert_int_equal(pc_parse_duration("2w", &s), 0);
        assert_int_equal(s, 14 * 86400);
        assert_int_equal(pc_parse_duration("", &s), -EINVAL);
        assert_int_equal(pc_parse_duration("h", &s), -EINVAL);
        assert_int_equal(pc_parse_duration("1hh", &s), -EINVAL);
        assert_int_equal(pc_parse_duration("-1h", &s), -EINVAL);
        assert_int_equal(pc_parse_duration("1y", &s), -EINVAL);
        assert_int_equal(pc_parse_duration("99999999999999999999", &s), -EINVAL);
        assert_int_equal(pc_parse_duration("9999999999999999w", &s), -EINVAL);
        pc_format_duration(3600, buf, sizeof(buf));
        assert_string_equal(buf, "1h");
        pc_format_duration(5400, buf, sizeof(buf));
        assert_string_equal(buf, "90m");
        pc_format_duration(45, buf, sizeof(buf));
        assert_string_equal(buf, "45s");
        pc_format_duration(0, buf, sizeof(buf));
        assert_string_equal(buf, "0s");
}

static void test_time(void **state)
{
        int64_t t;
        char buf[32];

        assert_int_equal(pc_parse_time("2026-12-01T00:00:00Z", 0, &t), 0);
        assert_int_equal(t, 1796083200);
        pc_format_time(t, buf, sizeof(buf));
        assert_string_equal(buf, "2026-12-01T00:00:00Z");
        assert_int_equal(pc_parse_time("2026-12-01", 0, &t), 0);
        assert_int_equal(t, 1796083200);
        assert_int_equal(pc_parse_time("+1h", 1000, &t), 0);
        assert_int_equal(t, 4600);
        assert_int_equal(pc_parse_time("tomorrow", 0, &t), -EINVAL);
        assert_int_equal(pc_parse_time("2026-12-01T00:00:00", 0, &t), -EINVAL);
        assert_int_equal(pc_parse_time("+", 0, &t), -EINVAL);
        /* Nothing RFC 3339 cannot write: year 9999 at most. */
        assert_int_equal(pc_parse_time("9999-12-31T23:59:59Z", 0, &t), 0);
        assert_int_equal(t, PC_TIME_MAX);
        assert_true(pc_parse_time("10000-01-01", 0, &t) < 0);
        assert_int_equal(pc_parse_time("+99999999d", 1796083200, &t), -ERANGE);
}

static void test_format_count(void **state)
{
        char buf[32];

        pc_format_count(0, buf, sizeof(buf));
        assert_string_equal(buf, "0");
        pc_format_count(999, buf, sizeof(buf));
        assert_string_equal(buf, "999");
        pc_format_count(54807, buf, sizeof(buf));
        assert_string_equal(buf, "54,807");
        pc_format_count(1234567, buf, sizeof(buf));
        assert_string_equal(buf, "1,234,567");
}

/* What no VPS can own, and what it can. */
static void test_prefix_unassignable(void **state)
{
        static const char *const refused[] = { "0.0.0.0/0", "::/0", "127.0.0.1", "224.0.0.1", "255.255.255.255",
                                               "::", "::1", "fe80::1", "ff02::1", "::ffff:198.51.100.7",
                                               "169.254.1.1", "0.1.2.3", "10.0.0.0/8", "2001::/16",
                                               "127.0.0.0/16", "240.0.0.0/16" };
        static const char *const fine[] = { "198.51.100.10", "203.0.113.8/29", "2001:db8:101::/64",
                                            "2001:db8::/32", "10.1.0.0/16", "192.168.7.7" };
        struct pc_prefix p;

        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
                assert_int_equal(pc_parse_prefix(refused[i], false, &p), 0);
                assert_non_null(pc_prefix_unassignable(&p));
        }
        for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
                assert_int_equal(pc_parse_prefix(fine[i], false, &p), 0);
                assert_null(pc_prefix_unassignable(&p));
        }
}

/* pc_format_prefix() writes what inet_ntop() writes, for addresses with
 * every pattern of zero groups, IPv4-mapped and -compatible ones, and
 * random ones. */
static void test_format_prefix_ntop(void **state)
{
        unsigned seed = 12;

        for (unsigned k = 0; k < 70000; k++) {
                struct pc_prefix p = { .family = k % 7 == 0 ? AF_INET : AF_INET6, .len = (uint8_t)(k % 33) };
                char want[INET6_ADDRSTRLEN + 8], got[INET6_ADDRSTRLEN + 8], addr[INET6_ADDRSTRLEN];

                for (int i = 0; i < 16; i++)
                        p.bytes[i] = (uint8_t)rand_r(&seed);
                if (k < 256) /* every zero pattern of the eight groups */
                        for (int g = 0; g < 8; g++)
                                if (k & (1u << g))
                                        p.bytes[2 * g] = p.bytes[2 * g + 1] = 0;
                if (k % 5 == 1) { /* small groups: no leading zeros */
                        p.bytes[2] = 0;
                        p.bytes[4] = 0;
                        p.bytes[5] &= 0x0f;
                }
                if (k % 11 == 3 || k % 11 == 4) { /* ::ffff:a.b.c.d, ::a.b.c.d */
                        memset(p.bytes, 0, 10);
                        p.bytes[10] = p.bytes[11] = k % 11 == 3 ? 0xff : 0;
                }
                assert_non_null(inet_ntop(p.family, p.bytes, addr, sizeof(addr)));
                snprintf(want, sizeof(want), "%s/%u", addr, p.len);
                pc_format_prefix(&p, got, sizeof(got));
                assert_string_equal(got, want);
        }
}

static void test_prefix(void **state)
{
        struct pc_prefix p;
        char buf[64];

        assert_int_equal(pc_parse_prefix("203.0.113.10", false, &p), 0);
        assert_int_equal(p.family, AF_INET);
        assert_int_equal(p.len, 32);
        pc_format_prefix(&p, buf, sizeof(buf));
        assert_string_equal(buf, "203.0.113.10/32");
        assert_int_equal(pc_parse_prefix("2001:db8:1::/64", false, &p), 0);
        assert_int_equal(p.family, AF_INET6);
        assert_int_equal(p.len, 64);
        pc_format_prefix(&p, buf, sizeof(buf));
        assert_string_equal(buf, "2001:db8:1::/64");
        assert_int_equal(pc_parse_prefix("198.51.100.8/29", false, &p), 0);
        assert_int_equal(pc_parse_prefix("198.51.100.9/29", false, &p), -EINVAL);
        assert_int_equal(pc_parse_prefix("198.51.100.9/29", true, &p), 0);
        pc_format_prefix(&p, buf, sizeof(buf));
        assert_string_equal(buf, "198.51.100.8/29");
        assert_int_equal(pc_parse_prefix("198.51.100.8/33", false, &p), -EINVAL);
        assert_int_equal(pc_parse_prefix("198.51.100.8/", false, &p), -EINVAL);
        assert_int_equal(pc_parse_prefix("198.51.100.8/-1", false, &p), -EINVAL);
        assert_int_equal(pc_parse_prefix("2001:db8::/129", false, &p), -EINVAL);
        assert_int_equal(pc_parse_prefix("example.net", false, &p), -EINVAL);
        assert_int_equal(pc_parse_prefix("", false, &p), -EINVAL);
}

static void test_mac(void **state)
{
        uint8_t mac[6];
        char buf[24];

        assert_int_equal(pc_parse_mac("52:54:00:AB:cd:01", mac), 0);
        pc_format_mac(mac, buf, sizeof(buf));
        assert_string_equal(buf, "52:54:00:ab:cd:01");
        assert_int_equal(pc_parse_mac("01:00:5e:00:00:01", mac), -EINVAL); /* multicast */
        assert_int_equal(pc_parse_mac("ff:ff:ff:ff:ff:ff", mac), -EINVAL);
        assert_int_equal(pc_parse_mac("00:00:00:00:00:00", mac), -EINVAL);
        assert_int_equal(pc_parse_mac("52:54:00:ab:cd", mac), -EINVAL);
        assert_int_equal(pc_parse_mac("52-54-00-ab-cd-01", mac), -EINVAL);
        assert_int_equal(pc_parse_mac("52:54:00:ab:cd:0g", mac), -EINVAL);
}

static void test_mailbox_address(void **state)
{
        char buf[64];

        assert_int_equal(pc_mailbox_address("Portcullis NOC <noc@example.net>", buf, sizeof(buf)), 0);
        assert_string_equal(buf, "noc@example.net");
        assert_int_equal(pc_mailbox_address("noc@example.net", buf, sizeof(buf)), 0);
        assert_string_equal(buf, "noc@example.net");
        assert_int_equal(pc_mailbox_address("A <b> <c@d>", buf, sizeof(buf)), 0);
        assert_string_equal(buf, "c@d");
        assert_int_equal(pc_mailbox_address("NOC <noc@example.net", buf, sizeof(buf)), -EINVAL);
        assert_int_equal(pc_mailbox_address("NOC <noc@example.net> x", buf, sizeof(buf)), -EINVAL);
        assert_int_equal(pc_mailbox_address("NOC <noc@example.net>", buf, 5), -ENOBUFS);
        assert_int_equal(pc_mailbox_address("noc@example.net", buf, 5), -ENOBUFS);
}

static void test_names(void **state)
{
        char buf[4];

        assert_true(pc_name_valid("vps-101"));
        assert_true(pc_name_valid("a"));
        assert_false(pc_name_valid(""));
        assert_false(pc_name_valid("-x"));
        assert_false(pc_name_valid("VPS"));
        assert_false(pc_name_valid("a b"));
        assert_false(pc_name_valid("x'); DROP TABLE vps;--"));
        assert_true(pc_email_valid("owner@example.net"));
        assert_false(pc_email_valid("owner"));
        assert_false(pc_email_valid("a@b@example.net"));
        assert_false(pc_email_valid("owner@localhost"));
        assert_false(pc_email_valid("own er@example.net"));
        assert_false(pc_email_valid("owner@example.net\r\nBcc: x@y.z"));
        assert_true(pc_email_valid("bruno@caff\xc3\xa8.example.it"));
        assert_false(pc_email_valid("own\xc2\x9b" "er@example.net")); /* C1 CSI */
        assert_false(pc_email_valid("own\xff" "er@example.net"));
        assert_true(pc_ifname_valid("tap101i0"));
        assert_false(pc_ifname_valid("a-very-long-interface"));
        assert_false(pc_ifname_valid("eth0:1"));
        assert_false(pc_ifname_valid("x\"}; flush"));
        assert_false(pc_ifname_valid("a b"));
        assert_true(pc_ifname_valid("vnet12.100"));
        assert_int_equal(pc_strlcpy(buf, "abc", sizeof(buf)), 0);
        assert_int_equal(pc_strlcpy(buf, "abcd", sizeof(buf)), -ENAMETOOLONG);
        assert_string_equal(buf, "");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_duration), cmocka_unit_test(test_time), cmocka_unit_test(test_prefix), cmocka_unit_test(test_format_prefix_ntop), cmocka_unit_test(test_prefix_unassignable), cmocka_unit_test(test_format_count),
                cmocka_unit_test(test_mac),      cmocka_unit_test(test_names),
                cmocka_unit_test(test_mailbox_address),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
