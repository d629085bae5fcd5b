/* The NFLOG payload parser: the bytes are a VPS's, so truncated and
 * lying headers must come back as family 0 without reading past the end. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "events/nflog.h"

/* An IPv4/UDP header, 192.0.2.1 -> 198.51.100.7, total length 30. */
static const uint8_t ipv4_udp[] = {
        0x45, 0x00, 0x00, 0x1e, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00,
        192, 0, 2, 1,
        198, 51, 100, 7,
        0x30, 0x39, 0x00, 0x35, 0x00, 0x0a, 0x00, 0x00, 'x', '\n',
};

/* An IPv6/ICMPv6 header, 2001:db8::1 -> 2001:db8::2, payload length 8. */
static const uint8_t ipv6_icmp[] = {
        0x60, 0x00, 0x00, 0x00, 0x00, 0x08, 0x3a, 0x40,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
        0x80, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01,
};

/* Copies <len> bytes of <src> into an exact-size heap buffer, so ASan
 * catches any read past <len>. */
static uint8_t *exact(const uint8_t *src, size_t len)
{
        uint8_t *b = malloc(len > 0 ? len : 1);

        assert_non_null(b);
        if (len > 0)
                memcpy(b, src, len);
        return b;
}

/* Parses <len> bytes of <src>; the packet is pre-filled with junk to show
 * the parser resets what it owns and leaves the rest. */
static int parse(const uint8_t *src, size_t len, struct pc_nflog_packet *p)
{
        uint8_t *b = exact(src, len);
        int r;

        memset(p, 0xa5, sizeof(*p));
        strcpy(p->prefix, "keep");
        r = pc_nflog_parse_payload(b, len, p);
        free(b);
        assert_string_equal(p->prefix, "keep");
        return r;
}

static void assert_not_ip(const struct pc_nflog_packet *p, const uint8_t *src, size_t len)
{
        static const uint8_t zero[16];

        assert_int_equal(p->family, 0);
        assert_memory_equal(p->src, zero, 16);
        assert_memory_equal(p->dst, zero, 16);
        assert_int_equal(p->l4proto, 0);
        assert_int_equal(p->len, len);
        assert_int_equal(p->head_len, len < 128 ? len : 128);
        if (p->head_len > 0)
                assert_memory_equal(p->head, src, p->head_len);
}

static void test_ipv4(void **state)
{
        static const uint8_t src[4] = { 192, 0, 2, 1 }, dst[4] = { 198, 51, 100, 7 };
        struct pc_nflog_packet p;

        assert_int_equal(parse(ipv4_udp, sizeof(ipv4_udp), &p), 0);
        assert_int_equal(p.family, AF_INET);
        assert_memory_equal(p.src, src, 4);
        assert_memory_equal(p.dst, dst, 4);
        assert_int_equal(p.l4proto, 17);
        assert_int_equal(p.len, 30);
        assert_int_equal(p.head_len, sizeof(ipv4_udp));
        assert_memory_equal(p.head, ipv4_udp, sizeof(ipv4_udp));
}

static void test_ipv4_options_and_truncated_body(void **state)
{
        uint8_t b[24];
        struct pc_nflog_packet p;

        /* IHL 6 (one option word), exactly the header: the kernel copied
         * only the start of a longer packet. */
        memcpy(b, ipv4_udp, 20);
        b[0] = 0x46;
        b[2] = 0x05;
        b[3] = 0xdc; /* 1500 */
        memset(b + 20, 0x01, 4);
        assert_int_equal(parse(b, sizeof(b), &p), 0);
        assert_int_equal(p.family, AF_INET);
        assert_int_equal(p.len, 1500);
        assert_int_equal(p.head_len, 24);
}

static void test_ipv6(void **state)
{
        struct pc_nflog_packet p;

        assert_int_equal(parse(ipv6_icmp, sizeof(ipv6_icmp), &p), 0);
        assert_int_equal(p.family, AF_INET6);
        assert_memory_equal(p.src, ipv6_icmp + 8, 16);
        assert_memory_equal(p.dst, ipv6_icmp + 24, 16);
        assert_int_equal(p.l4proto, 58);
        assert_int_equal(p.len, 48);
        /* Exactly the fixed header is enough. */
        assert_int_equal(parse(ipv6_icmp, 40, &p), 0);
        assert_int_equal(p.family, AF_INET6);
        assert_int_equal(p.head_len, 40);
}

static void test_empty_and_one_byte(void **state)
{
        struct pc_nflog_packet p;
        uint8_t one = 0x45;

        memset(&p, 0xa5, sizeof(p));
        assert_int_equal(pc_nflog_parse_payload(NULL, 0, &p), -EBADMSG);
        assert_not_ip(&p, NULL, 0);
        assert_int_equal(parse(&one, 1, &p), -EBADMSG);
        assert_not_ip(&p, &one, 1);
        one = 0x60;
        assert_int_equal(parse(&one, 1, &p), -EBADMSG);
        assert_not_ip(&p, &one, 1);
}

static void test_ipv4_bad_headers(void **state)
{
        uint8_t b[sizeof(ipv4_udp)];
        struct pc_nflog_packet p;

        /* Every length short of the 20-byte header. */
        for (size_t l = 0; l < 20; l++) {
                assert_int_equal(parse(ipv4_udp, l, &p), -EBADMSG);
                assert_not_ip(&p, ipv4_udp, l);
        }
        /* IHL < 5. */
        for (uint8_t ihl = 0; ihl < 5; ihl++) {
                memcpy(b, ipv4_udp, sizeof(b));
                b[0] = (uint8_t)(0x40 | ihl);
                assert_int_equal(parse(b, sizeof(b), &p), -EBADMSG);
                assert_not_ip(&p, b, sizeof(b));
        }
        /* IHL > len: 15 words = 60 bytes, only 30 here; 6 words with 20. */
        memcpy(b, ipv4_udp, sizeof(b));
        b[0] = 0x4f;
        assert_int_equal(parse(b, sizeof(b), &p), -EBADMSG);
        assert_not_ip(&p, b, sizeof(b));
        b[0] = 0x46;
        assert_int_equal(parse(b, 20, &p), -EBADMSG);
        assert_not_ip(&p, b, 20);
        /* Total length shorter than the header. */
        memcpy(b, ipv4_udp, sizeof(b));
        b[2] = 0;
        b[3] = 19;
        assert_int_equal(parse(b, sizeof(b), &p), -EBADMSG);
        assert_not_ip(&p, b, sizeof(b));
}

static void test_ipv6_short(void **state)
{
        struct pc_nflog_packet p;

        for (size_t l = 0; l < 40; l++) {
                assert_int_equal(parse(ipv6_icmp, l, &p), -EBADMSG);
                assert_not_ip(&p, ipv6_icmp, l);
        }
}

static void test_not_ip(void **state)
{
        /* ARP (as a bridge rule logs it): version nibble 0. */
        static const uint8_t arp[28] = { 0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01 };
        uint8_t b[64];
        struct pc_nflog_packet p;

        assert_int_equal(parse(arp, sizeof(arp), &p), -EBADMSG);
        assert_not_ip(&p, arp, sizeof(arp));
        for (unsigned v = 0; v < 16; v++) {
                if (v == 4 || v == 6)
                        continue;
                memset(b, 0, sizeof(b));
                b[0] = (uint8_t)(v << 4 | 5);
                assert_int_equal(parse(b, sizeof(b), &p), -EBADMSG);
                assert_not_ip(&p, b, sizeof(b));
        }
}

static void test_long_payload_head_bounded(void **state)
{
        uint8_t b[300];
        struct pc_nflog_packet p;

        memset(b, 0x5a, sizeof(b));
        memcpy(b, ipv4_udp, 20);
        b[2] = 0x01;
        b[3] = 0x2c; /* 300 */
        assert_int_equal(parse(b, sizeof(b), &p), 0);
        assert_int_equal(p.len, 300);
        assert_int_equal(p.head_len, 128);
        assert_memory_equal(p.head, b, 128);
        /* Garbage of the same size: head still bounded. */
        b[0] = 0xff;
        assert_int_equal(parse(b, sizeof(b), &p), -EBADMSG);
        assert_not_ip(&p, b, sizeof(b));
}

static void test_garbage_never_crashes(void **state)
{
        uint8_t b[96];
        struct pc_nflog_packet p;
        unsigned seed = 1;

        /* Random bytes at every length, with each of the two IP versions
         * forced half the time; ASan watches the reads. */
        for (int round = 0; round < 2000; round++) {
                size_t len = (size_t)round % (sizeof(b) + 1);

                for (size_t i = 0; i < sizeof(b); i++)
                        b[i] = (uint8_t)(rand_r(&seed) >> 7);
                if (round % 2 == 0 && len > 0)
                        b[0] = (uint8_t)((round % 4 == 0 ? 0x40 : 0x60) | (b[0] & 0x0f));
                if (parse(b, len, &p) == 0) {
                        assert_true(p.family == AF_INET || p.family == AF_INET6);
                        assert_true(len >= (p.family == AF_INET ? 20u : 40u));
                } else {
                        assert_not_ip(&p, b, len);
                }
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ipv4),
                cmocka_unit_test(test_ipv4_options_and_truncated_body),
                cmocka_unit_test(test_ipv6),
                cmocka_unit_test(test_empty_and_one_byte),
                cmocka_unit_test(test_ipv4_bad_headers),
                cmocka_unit_test(test_ipv6_short),
                cmocka_unit_test(test_not_ip),
                cmocka_unit_test(test_long_payload_head_bounded),
                cmocka_unit_test(test_garbage_never_crashes),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
