/* Destinations the proxy refuses: the hypervisor itself, its internal
 * networks, and addresses no MX can have. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "smtpd/dest.h"

/* <text> as a sockaddr (IPv4 or IPv6), port 25. */
static const struct sockaddr *sa(const char *text)
{
        static struct sockaddr_storage ss;

        memset(&ss, 0, sizeof(ss));
        if (strchr(text, ':') != NULL) {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

                s6->sin6_family = AF_INET6;
                s6->sin6_port = htons(25);
                assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
        } else {
                struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

                s4->sin_family = AF_INET;
                s4->sin_port = htons(25);
                assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
        }
        return (const struct sockaddr *)&ss;
}

static struct dest_guard *guard(void)
{
        struct pc_prefix internal[2];
        struct dest_guard *g;

        assert_int_equal(pc_parse_prefix("192.0.2.64/26", false, &internal[0]), 0);
        assert_int_equal(pc_parse_prefix("2001:db8:ffff::40/122", false, &internal[1]), 0);
        assert_int_equal(dest_guard_new(internal, 2, &g), 0);
        assert_int_equal(dest_guard_add_host(g, sa("203.0.113.1")), 0);
        assert_int_equal(dest_guard_add_host(g, sa("203.0.113.1")), 0); /* on every VPS link */
        assert_int_equal(dest_guard_add_host(g, sa("192.0.2.1")), 0);
        assert_int_equal(dest_guard_add_host(g, sa("2001:db8:ffff::1")), 0);
        assert_int_equal(dest_guard_hosts(g), 3);
        return g;
}

static void expect(const struct dest_guard *g, const char *addr, const char *why)
{
        const char *got = dest_guard_check(g, sa(addr));

        if (why == NULL && got != NULL)
                fail_msg("%s refused as %s", addr, got);
        if (why != NULL && (got == NULL || strcmp(got, why) != 0))
                fail_msg("%s: expected %s, got %s", addr, why, got != NULL ? got : "allowed");
}

static void test_mx_allowed(void **state)
{
        struct dest_guard *g = guard();

        expect(g, "192.0.2.2", NULL);
        expect(g, "198.51.100.7", NULL);
        expect(g, "2001:db8:ffff::2", NULL);
        expect(g, "::ffff:192.0.2.2", NULL);
        expect(g, "192.0.2.63", NULL);  /* just below the internal /26 */
        expect(g, "192.0.2.128", NULL); /* just above */
        dest_guard_free(g);
}

static void test_fixed_classes(void **state)
{
        struct dest_guard *g = guard();

        expect(g, "127.0.0.1", "a loopback address");
        expect(g, "127.255.0.9", "a loopback address");
        expect(g, "::1", "a loopback address");
        expect(g, "0.0.0.0", "the unspecified address");
        expect(g, "::", "the unspecified address");
        expect(g, "169.254.169.254", "a link-local address");
        expect(g, "fe80::1", "a link-local address");
        expect(g, "224.0.0.1", "a multicast address");
        expect(g, "239.255.255.250", "a multicast address");
        expect(g, "ff02::1", "a multicast address");
        expect(g, "255.255.255.255", "a broadcast address");
        expect(g, "0.1.2.3", "a reserved address");
        expect(g, "240.0.0.1", "a reserved address");
        expect(g, "::192.0.2.2", "a reserved address");
        expect(g, "fec0::1", "a reserved address");
        dest_guard_free(g);
}

/* IPv4-mapped IPv6 forms are judged as the IPv4 address. */
static void test_mapped_forms(void **state)
{
        struct dest_guard *g = guard();

        expect(g, "::ffff:127.0.0.1", "a loopback address");
        expect(g, "::ffff:169.254.1.1", "a link-local address");
        expect(g, "::ffff:0.0.0.0", "the unspecified address");
        expect(g, "::ffff:203.0.113.1", "an address of this hypervisor");
        expect(g, "::ffff:192.0.2.70", "an internal address");
        dest_guard_free(g);
}

static void test_host_and_internal(void **state)
{
        struct dest_guard *g = guard();

        expect(g, "203.0.113.1", "an address of this hypervisor");
        expect(g, "192.0.2.1", "an address of this hypervisor");
        expect(g, "2001:db8:ffff::1", "an address of this hypervisor");
        expect(g, "192.0.2.64", "an internal address");
        expect(g, "192.0.2.127", "an internal address");
        expect(g, "2001:db8:ffff::42", "an internal address");
        expect(g, "2001:db8:ffff::80", NULL);
        dest_guard_free(g);
}

/* The host's real interfaces: at least loopback, which is refused anyway. */
static void test_load_host(void **state)
{
        struct dest_guard *g;

        assert_int_equal(dest_guard_new(NULL, 0, &g), 0);
        expect(g, "192.0.2.1", NULL);
        assert_int_equal(dest_guard_load_host(g), 0);
        assert_true(dest_guard_hosts(g) >= 1);
        assert_null(dest_guard_free(g));
        assert_null(dest_guard_free(NULL));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_mx_allowed),
                cmocka_unit_test(test_fixed_classes),
                cmocka_unit_test(test_mapped_forms),
                cmocka_unit_test(test_host_and_internal),
                cmocka_unit_test(test_load_host),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
