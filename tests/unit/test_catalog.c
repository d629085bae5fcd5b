/* Unit tests of the service catalog: built-ins, port ranges, protocols,
 * directions. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "policy/catalog.h"

static const struct pc_service *find(const char *name)
{
        size_t n;
        const struct pc_service *s = pc_catalog_builtin(&n);

        for (size_t i = 0; i < n; i++)
                if (strcmp(s[i].name, name) == 0)
                        return &s[i];
        return NULL;
}

/* The ports of <svc> formatted and joined with spaces. */
static void ports_str(const struct pc_port_range *p, size_t n, char *buf, size_t size)
{
        size_t off = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < n; i++) {
                char one[32];

                pc_port_range_format(&p[i], one, sizeof(one));
                off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? " " : "", one);
        }
}

static void test_builtins(void **state)
{
        const struct pc_service *s;
        char buf[512];
        size_t n;

        (void)state;
        s = pc_catalog_builtin(&n);
        assert_int_equal(n, 3);
        assert_string_equal(s[0].name, "smtp");
        assert_string_equal(s[1].name, "vpn");
        assert_string_equal(s[2].name, "bittorrent");

        s = find("smtp");
        assert_non_null(s);
        assert_true(s->builtin);
        assert_null(s->pos.file);
        assert_int_equal(s->direction, PC_DIR_EGRESS);
        assert_string_equal(s->description, "Mail submission and relay");
        ports_str(s->ports, s->n_ports, buf, sizeof(buf));
        assert_string_equal(buf, "tcp/25 tcp/26 tcp/465 tcp/587 tcp/2525");
        assert_int_equal(s->n_ip_protos, 0);

        s = find("vpn");
        assert_non_null(s);
        assert_int_equal(s->direction, PC_DIR_BOTH);
        assert_string_equal(s->description, "PPTP, L2TP, IKE/IPsec");
        ports_str(s->ports, s->n_ports, buf, sizeof(buf));
        assert_string_equal(buf, "tcp/1723 udp/500 udp/1701 udp/4500");
        assert_int_equal(s->n_ip_protos, 2);
        assert_int_equal(s->ip_protos[0], PC_PROTO_GRE);
        assert_int_equal(s->ip_protos[1], PC_PROTO_ESP);

        s = find("bittorrent");
        assert_non_null(s);
        assert_int_equal(s->direction, PC_DIR_BOTH);
        ports_str(s->ports, s->n_ports, buf, sizeof(buf));
        assert_string_equal(buf, "tcp/6660-6669 tcp/6881-6889 tcp/6969 "
                                 "udp/6660-6669 udp/6881-6889 udp/6969");
        assert_int_equal(s->n_ip_protos, 0);
}

static void test_has_port(void **state)
{
        const struct pc_service *smtp = find("smtp"), *bt = find("bittorrent");

        (void)state;
        assert_true(pc_service_has_port(smtp, PC_PROTO_TCP, 25));
        assert_true(pc_service_has_port(smtp, PC_PROTO_TCP, 2525));
        assert_false(pc_service_has_port(smtp, PC_PROTO_UDP, 25));
        assert_false(pc_service_has_port(smtp, PC_PROTO_TCP, 24));
        assert_false(pc_service_has_port(smtp, PC_PROTO_TCP, 27));
        assert_true(pc_service_has_port(bt, PC_PROTO_UDP, 6881));
        assert_true(pc_service_has_port(bt, PC_PROTO_TCP, 6889));
        assert_false(pc_service_has_port(bt, PC_PROTO_TCP, 6890));
        assert_false(pc_service_has_port(NULL, PC_PROTO_TCP, 25));
}

static void parse_ok(const char *s, uint8_t proto, uint16_t lo, uint16_t hi, const char *canon)
{
        struct pc_port_range r;
        char err[128] = "", buf[32];

        assert_int_equal(pc_port_range_parse(s, &r, err, sizeof(err)), 0);
        assert_int_equal(r.proto, proto);
        assert_int_equal(r.lo, lo);
        assert_int_equal(r.hi, hi);
        pc_port_range_format(&r, buf, sizeof(buf));
        assert_string_equal(buf, canon);
}

static void parse_bad(const char *s, const char *msg)
{
        struct pc_port_range r = { .proto = 99, .lo = 7, .hi = 7 };
        char err[128] = "";

        assert_int_equal(pc_port_range_parse(s, &r, err, sizeof(err)), -EINVAL);
        assert_string_equal(err, msg);
        assert_int_equal(r.proto, 99); /* untouched on failure */
        assert_int_equal(r.lo, 7);
}

static void test_port_range_parse(void **state)
{
        (void)state;
        parse_ok("tcp/25", PC_PROTO_TCP, 25, 25, "tcp/25");
        parse_ok("udp/6881-6889", PC_PROTO_UDP, 6881, 6889, "udp/6881-6889");
        parse_ok("tcp/0-65535", PC_PROTO_TCP, 0, 65535, "tcp/0-65535");
        parse_ok("udp/500-500", PC_PROTO_UDP, 500, 500, "udp/500");

        parse_bad("sctp/9", "unknown protocol 'sctp' (tcp or udp)");
        parse_bad("TCP/25", "unknown protocol 'TCP' (tcp or udp)");
        parse_bad("tcp/70000", "port 70000 out of range 0-65535");
        parse_bad("tcp/1-99999999999999999999", "port 99999999999999999999 out of range 0-65535");
        parse_bad("tcp/20-10", "range 20-10 is reversed");
        parse_bad("tcp/", "unable to parse empty port");
        parse_bad("", "unable to parse empty port");
        parse_bad("tcp/25-", "unable to parse empty port");
        parse_bad("tcp/-25", "unable to parse empty port");
        parse_bad("25", "missing protocol in '25' (write tcp/PORT or udp/PORT)");
        parse_bad("tcp/2x5", "unable to parse port '2x5'");
        parse_bad("tcp/+25", "unable to parse port '+25'");
        parse_bad("tcp/1-2-3", "unable to parse port '2-3'");
        parse_bad("tcp/ 25", "unable to parse port ' 25'");
        /* a NULL error buffer is allowed */
        {
                struct pc_port_range r;

                assert_int_equal(pc_port_range_parse("x", &r, NULL, 0), -EINVAL);
                assert_int_equal(pc_port_range_parse(NULL, &r, NULL, 0), -EINVAL);
        }
}

static void test_protos(void **state)
{
        static const struct {
                const char *name;
                uint8_t num;
        } t[] = { { "tcp", 6 }, { "udp", 17 }, { "gre", 47 }, { "esp", 50 },
                  { "icmp", 1 }, { "ipv6-icmp", 58 } };
        uint8_t p = 0;

        (void)state;
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                assert_int_equal(pc_proto_parse(t[i].name, &p), 0);
                assert_int_equal(p, t[i].num);
                assert_string_equal(pc_proto_name(t[i].num), t[i].name);
        }
        p = 123;
        assert_int_equal(pc_proto_parse("sctp", &p), -EINVAL);
        assert_int_equal(pc_proto_parse("", &p), -EINVAL);
        assert_int_equal(pc_proto_parse(NULL, &p), -EINVAL);
        assert_int_equal(p, 123);
        assert_null(pc_proto_name(132));
}

static void test_dirs(void **state)
{
        unsigned d = 0;

        (void)state;
        assert_int_equal(pc_dir_parse("egress", &d), 0);
        assert_int_equal(d, PC_DIR_EGRESS);
        assert_int_equal(pc_dir_parse("out", &d), 0);
        assert_int_equal(d, PC_DIR_EGRESS);
        assert_int_equal(pc_dir_parse("ingress", &d), 0);
        assert_int_equal(d, PC_DIR_INGRESS);
        assert_int_equal(pc_dir_parse("in", &d), 0);
        assert_int_equal(d, PC_DIR_INGRESS);
        assert_int_equal(pc_dir_parse("both", &d), 0);
        assert_int_equal(d, PC_DIR_BOTH);
        assert_int_equal(pc_dir_parse("sideways", &d), -EINVAL);
        assert_int_equal(pc_dir_parse(NULL, &d), -EINVAL);
        assert_int_equal(d, PC_DIR_BOTH);
        assert_string_equal(pc_dir_name(PC_DIR_EGRESS), "egress");
        assert_string_equal(pc_dir_name(PC_DIR_INGRESS), "ingress");
        assert_string_equal(pc_dir_name(PC_DIR_BOTH), "both");
        assert_string_equal(pc_dir_name(0), "none");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_builtins),
                cmocka_unit_test(test_has_port),
                cmocka_unit_test(test_port_range_parse),
                cmocka_unit_test(test_protos),
                cmocka_unit_test(test_dirs),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
