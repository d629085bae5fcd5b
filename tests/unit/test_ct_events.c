/* The conntrack event parser: messages built with libnetfilter_conntrack
 * as ctnetlink sends them must come back field by field; truncated,
 * lying and random ones must give an error without reading past their
 * end and without touching the event. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "events/ct_events.h"

#define BUF_SIZE 4096

/* A message built into an aligned buffer, and its length. */
struct msg {
        union {
                uint8_t bytes[BUF_SIZE];
                uint64_t align;
        } u;
        size_t len;
};

/* Starts <m> as a ctnetlink message of <msg_type> (IPCTNL_MSG_CT_*) with
 * <flags> and the family of <ct>, and fills it from <ct> (nfct_nlmsg_build
 * writes the attributes only). */
static struct nlmsghdr *build(struct msg *m, uint16_t msg_type, uint16_t flags, const struct nf_conntrack *ct)
{
        struct nlmsghdr *nlh;
        struct nfgenmsg *g;

        memset(m, 0, sizeof(*m));
        nlh = mnl_nlmsg_put_header(m->u.bytes);
        nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | msg_type;
        nlh->nlmsg_flags = flags;
        g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
        g->nfgen_family = nfct_get_attr_u8(ct, ATTR_L3PROTO);
        g->version = NFNETLINK_V0;
        assert_int_equal(nfct_nlmsg_build(nlh, ct), 0);
        m->len = nlh->nlmsg_len;
        return nlh;
}

/* Appends the counters of one direction, as the kernel's DESTROY does. */
static void put_counters(struct msg *m, struct nlmsghdr *nlh, uint16_t type, uint64_t packets, uint64_t bytes)
{
        struct nlattr *nest = mnl_attr_nest_start(nlh, type);

        mnl_attr_put_u64(nlh, CTA_COUNTERS_PACKETS, htobe64(packets));
        mnl_attr_put_u64(nlh, CTA_COUNTERS_BYTES, htobe64(bytes));
        mnl_attr_nest_end(nlh, nest);
        m->len = nlh->nlmsg_len;
}

/* An IPv4 TCP flow 192.0.2.1:40000 -> 198.51.100.7:22, DNATed to
 * 192.0.2.99:2222, in <state> with <status> and mark 42. */
static struct nf_conntrack *tcp4(uint8_t state, uint32_t status)
{
        struct nf_conntrack *ct = nfct_new();

        assert_non_null(ct);
        nfct_set_attr_u8(ct, ATTR_L3PROTO, AF_INET);
        nfct_set_attr_u32(ct, ATTR_IPV4_SRC, inet_addr("192.0.2.1"));
        nfct_set_attr_u32(ct, ATTR_IPV4_DST, inet_addr("198.51.100.7"));
        nfct_set_attr_u8(ct, ATTR_L4PROTO, IPPROTO_TCP);
        nfct_set_attr_u16(ct, ATTR_PORT_SRC, htons(40000));
        nfct_set_attr_u16(ct, ATTR_PORT_DST, htons(22));
        nfct_set_attr_u8(ct, ATTR_REPL_L3PROTO, AF_INET);
        nfct_set_attr_u32(ct, ATTR_REPL_IPV4_SRC, inet_addr("192.0.2.99"));
        nfct_set_attr_u32(ct, ATTR_REPL_IPV4_DST, inet_addr("192.0.2.1"));
        nfct_set_attr_u8(ct, ATTR_REPL_L4PROTO, IPPROTO_TCP);
        nfct_set_attr_u16(ct, ATTR_REPL_PORT_SRC, htons(2222));
        nfct_set_attr_u16(ct, ATTR_REPL_PORT_DST, htons(40000));
        nfct_set_attr_u8(ct, ATTR_TCP_STATE, state);
        nfct_set_attr_u32(ct, ATTR_STATUS, status);
        nfct_set_attr_u32(ct, ATTR_MARK, 42);
        return ct;
}

/* An IPv6 UDP flow [2001:db8::1]:5353 -> [2001:db8::2]:53 with <status>. */
static struct nf_conntrack *udp6(uint32_t status)
{
        struct nf_conntrack *ct = nfct_new();
        struct in6_addr a, b;

        assert_non_null(ct);
        assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &a), 1);
        assert_int_equal(inet_pton(AF_INET6, "2001:db8::2", &b), 1);
        nfct_set_attr_u8(ct, ATTR_L3PROTO, AF_INET6);
        nfct_set_attr(ct, ATTR_IPV6_SRC, &a);
        nfct_set_attr(ct, ATTR_IPV6_DST, &b);
        nfct_set_attr_u8(ct, ATTR_L4PROTO, IPPROTO_UDP);
        nfct_set_attr_u16(ct, ATTR_PORT_SRC, htons(5353));
        nfct_set_attr_u16(ct, ATTR_PORT_DST, htons(53));
        nfct_set_attr_u8(ct, ATTR_REPL_L3PROTO, AF_INET6);
        nfct_set_attr(ct, ATTR_REPL_IPV6_SRC, &b);
        nfct_set_attr(ct, ATTR_REPL_IPV6_DST, &a);
        nfct_set_attr_u8(ct, ATTR_REPL_L4PROTO, IPPROTO_UDP);
        nfct_set_attr_u16(ct, ATTR_REPL_PORT_SRC, htons(53));
        nfct_set_attr_u16(ct, ATTR_REPL_PORT_DST, htons(5353));
        nfct_set_attr_u32(ct, ATTR_STATUS, status);
        return ct;
}

/* Copies <len> bytes of <src> into an exact-size heap buffer, so ASan
 * catches any read past <len>. */
static uint8_t *exact(const void *src, size_t len)
{
        uint8_t *b = malloc(len > 0 ? len : 1);

        assert_non_null(b);
        if (len > 0)
                memcpy(b, src, len);
        return b;
}

/* Parses <len> bytes of <src> from an exact copy; on failure also checks
 * that the event was left alone. */
static int parse(const void *src, size_t len, struct pc_ct_event *ev)
{
        uint8_t *b = exact(src, len);
        struct pc_ct_event junk;
        int r;

        memset(&junk, 0xa5, sizeof(junk));
        *ev = junk;
        r = pc_ct_event_parse(b, len, ev);
        free(b);
        if (r < 0)
                assert_memory_equal(ev, &junk, sizeof(junk));
        return r;
}

static void assert_addr(int family, const uint8_t *got, const char *want)
{
        uint8_t w[16] = { 0 };

        assert_int_equal(inet_pton(family, want, w), 1);
        assert_memory_equal(got, w, 16);
}

static void test_tcp4_new(void **state)
{
        struct nf_conntrack *ct = tcp4(TCP_CONNTRACK_SYN_SENT, 0);
        struct pc_ct_event ev;
        struct msg m;

        build(&m, IPCTNL_MSG_CT_NEW, NLM_F_CREATE | NLM_F_EXCL, ct);
        assert_int_equal(parse(m.u.bytes, m.len, &ev), 0);
        assert_int_equal(ev.type, PC_CT_NEW);
        assert_int_equal(ev.family, AF_INET);
        assert_int_equal(ev.proto, IPPROTO_TCP);
        assert_addr(AF_INET, ev.src, "192.0.2.1");
        assert_addr(AF_INET, ev.dst, "198.51.100.7");
        assert_addr(AF_INET, ev.reply_src, "192.0.2.99");
        assert_addr(AF_INET, ev.reply_dst, "192.0.2.1");
        assert_int_equal(ev.sport, 40000);
        assert_int_equal(ev.dport, 22);
        assert_int_equal(ev.reply_sport, 2222);
        assert_int_equal(ev.reply_dport, 40000);
        assert_int_equal(ev.tcp_state, TCP_CONNTRACK_SYN_SENT);
        assert_false(ev.seen_reply);
        assert_false(ev.assured);
        assert_int_equal(ev.mark, 42);
        assert_false(ev.has_counters);
        assert_true(ev.orig_packets == 0 && ev.orig_bytes == 0 && ev.reply_packets == 0 && ev.reply_bytes == 0);
        nfct_destroy(ct);
}

static void test_tcp4_update_and_destroy(void **state)
{
        struct nf_conntrack *ct = tcp4(TCP_CONNTRACK_ESTABLISHED, IPS_SEEN_REPLY | IPS_ASSURED | IPS_CONFIRMED);
        struct pc_ct_event ev;
        struct nlmsghdr *nlh;
        struct msg m;

        /* An update is IPCTNL_MSG_CT_NEW without NLM_F_CREATE/EXCL. */
        nlh = build(&m, IPCTNL_MSG_CT_NEW, 0, ct);
        mnl_attr_put_u32(nlh, CTA_ID, htonl(0xdeadbeef));
        m.len = nlh->nlmsg_len;
        assert_int_equal(parse(m.u.bytes, m.len, &ev), 0);
        assert_int_equal(ev.type, PC_CT_UPDATE);
        assert_int_equal(ev.tcp_state, TCP_CONNTRACK_ESTABLISHED);
        assert_true(ev.seen_reply);
        assert_true(ev.assured);
        assert_int_equal(ev.status, IPS_SEEN_REPLY | IPS_ASSURED | IPS_CONFIRMED);
        assert_int_equal(ev.id, 0xdeadbeef);
        /* Either flag alone marks a new flow. */
        nlh->nlmsg_flags = NLM_F_CREATE;
        assert_int_equal(parse(m.u.bytes, m.len, &ev), 0);
        assert_int_equal(ev.type, PC_CT_NEW);

        build(&m, IPCTNL_MSG_CT_DELETE, 0, ct);
        assert_int_equal(parse(m.u.bytes, m.len, &ev), 0);
        assert_int_equal(ev.type, PC_CT_DESTROY);
        assert_int_equal(ev.sport, 40000);
        assert_false(ev.has_counters);
        nfct_destroy(ct);
}

static void test_udp6_counters(void **state)
{
        struct nf_conntrack *ct = udp6(IPS_SEEN_REPLY);
        struct pc_ct_event ev;
        struct nlmsghdr *nlh;
        struct msg m;

        nlh = build(&m, IPCTNL_MSG_CT_DELETE, 0, ct);
        put_counters(&m, nlh, CTA_COUNTERS_ORIG, 3, 180);
        put_counters(&m, nlh, CTA_COUNTERS_REPLY, UINT64_C(5000000000), UINT64_C(0x123456789a));
        assert_int_equal(parse(m.u.bytes, m.len, &ev), 0);
        assert_int_equal(ev.type, PC_CT_DESTROY);
        assert_int_equal(ev.family, AF_INET6);
        assert_int_equal(ev.proto, IPPROTO_UDP);
        assert_addr(AF_INET6, ev.src, "2001:db8::1");
        assert_addr(AF_INET6, ev.dst, "2001:db8::2");
        assert_addr(AF_INET6, ev.reply_src, "2001:db8::2");
        assert_int_equal(ev.sport, 5353);
        assert_int_equal(ev.dport, 53);
        assert_int_equal(ev.tcp_state, 0);
        assert_true(ev.seen_reply);
        assert_false(ev.assured);
        assert_int_equal(ev.mark, 0);
        assert_true(ev.has_counters);
        assert_true(ev.orig_packets == 3 && ev.orig_bytes == 180);
        assert_true(ev.reply_packets == UINT64_C(5000000000) && ev.reply_bytes == UINT64_C(0x123456789a));

        /* Without counters: none, and zero. */
        build(&m, IPCTNL_MSG_CT_DELETE, 0, ct);
        assert_int_equal(parse(m.u.bytes, m.len, &ev), 0);
        assert_false(ev.has_counters);
        assert_true(ev.orig_packets == 0 && ev.reply_bytes == 0);

        /* Counters with a missing number are malformed. */
        nlh = build(&m, IPCTNL_MSG_CT_DELETE, 0, ct);
        struct nlattr *nest = mnl_attr_nest_start(nlh, CTA_COUNTERS_ORIG);
        mnl_attr_put_u64(nlh, CTA_COUNTERS_PACKETS, htobe64(1));
        mnl_attr_nest_end(nlh, nest);
        m.len = nlh->nlmsg_len;
        assert_int_equal(parse(m.u.bytes, m.len, &ev), -EBADMSG);
        nfct_destroy(ct);
}

/* ICMP has no ports: they stay 0 whatever the tuple carries. */
static void test_icmp_no_ports(void **state)
{
        struct nf_conntrack *ct = nfct_new();
        struct pc_ct_event ev;
        struct msg m;

        nfct_set_attr_u8(ct, ATTR_L3PROTO, AF_INET);
        nfct_set_attr_u32(ct, ATTR_IPV4_SRC, inet_addr("192.0.2.1"));
        nfct_set_attr_u32(ct, ATTR_IPV4_DST, inet_addr("192.0.2.2"));
        nfct_set_attr_u8(ct, ATTR_L4PROTO, IPPROTO_ICMP);
        nfct_set_attr_u8(ct, ATTR_ICMP_TYPE, 8);
        nfct_set_attr_u8(ct, ATTR_ICMP_CODE, 0);
        nfct_set_attr_u16(ct, ATTR_ICMP_ID, htons(77));
        build(&m, IPCTNL_MSG_CT_NEW, NLM_F_CREATE | NLM_F_EXCL, ct);
        assert_int_equal(parse(m.u.bytes, m.len, &ev), 0);
        assert_int_equal(ev.proto, IPPROTO_ICMP);
        assert_int_equal(ev.sport, 0);
        assert_int_equal(ev.dport, 0);
        assert_int_equal(ev.tcp_state, 0);
        nfct_destroy(ct);
}

/* Messages that are not conntrack events of an IPv4/IPv6 flow. */
static void test_not_events(void **state)
{
        struct nf_conntrack *ct = tcp4(TCP_CONNTRACK_SYN_SENT, 0);
        struct nlmsghdr *nlh;
        struct pc_ct_event ev;
        struct nfgenmsg *g;
        struct msg m;

        nlh = build(&m, IPCTNL_MSG_CT_NEW, NLM_F_CREATE, ct);
        g = mnl_nlmsg_get_payload(nlh);
        nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK_EXP << 8) | IPCTNL_MSG_EXP_NEW;
        assert_int_equal(parse(m.u.bytes, m.len, &ev), -ENOENT);
        nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
        assert_int_equal(parse(m.u.bytes, m.len, &ev), -ENOENT);
        nlh->nlmsg_type = NLMSG_ERROR;
        assert_int_equal(parse(m.u.bytes, m.len, &ev), -ENOENT);
        nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
        g->nfgen_family = AF_BRIDGE;
        assert_int_equal(parse(m.u.bytes, m.len, &ev), -ENOENT);
        g->nfgen_family = AF_INET;
        assert_int_equal(parse(m.u.bytes, m.len, &ev), 0);
        /* The family says IPv6, the tuple has IPv4 addresses. */
        g->nfgen_family = AF_INET6;
        assert_int_equal(parse(m.u.bytes, m.len, &ev), -EBADMSG);
        nfct_destroy(ct);
}

/* Hand-built tuples: an address of the wrong size, no original tuple,
 * a reply tuple of another protocol. */
static void test_malformed_attrs(void **state)
{
        struct pc_ct_event ev;
        struct nlattr *t, *ip, *l4;
        struct nlmsghdr *nlh;
        struct nfgenmsg *g;
        struct msg m;

        for (int variant = 0; variant < 4; variant++) {
                memset(&m, 0, sizeof(m));
                nlh = mnl_nlmsg_put_header(m.u.bytes);
                nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
                g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
                g->nfgen_family = AF_INET;
                t = mnl_attr_nest_start(nlh, variant == 1 ? CTA_TUPLE_REPLY : CTA_TUPLE_ORIG);
                ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
                if (variant == 2)
                        mnl_attr_put(nlh, CTA_IP_V4_SRC, 3, "\xc0\x00\x02");
                else
                        mnl_attr_put_u32(nlh, CTA_IP_V4_SRC, inet_addr("192.0.2.1"));
                mnl_attr_put_u32(nlh, CTA_IP_V4_DST, inet_addr("192.0.2.2"));
                mnl_attr_nest_end(nlh, ip);
                l4 = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
                mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_UDP);
                mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(1));
                mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(2));
                mnl_attr_nest_end(nlh, l4);
                mnl_attr_nest_end(nlh, t);
                if (variant == 3) { /* a TCP reply to a UDP flow */
                        t = mnl_attr_nest_start(nlh, CTA_TUPLE_REPLY);
                        ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
                        mnl_attr_put_u32(nlh, CTA_IP_V4_SRC, inet_addr("192.0.2.2"));
                        mnl_attr_put_u32(nlh, CTA_IP_V4_DST, inet_addr("192.0.2.1"));
                        mnl_attr_nest_end(nlh, ip);
                        l4 = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
                        mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_TCP);
                        mnl_attr_nest_end(nlh, l4);
                        mnl_attr_nest_end(nlh, t);
                }
                m.len = nlh->nlmsg_len;
                if (variant == 0) {
                        /* The well-formed base: no reply tuple, no status. */
                        assert_int_equal(parse(m.u.bytes, m.len, &ev), 0);
                        assert_int_equal(ev.type, PC_CT_UPDATE);
                        assert_int_equal(ev.sport, 1);
                        assert_int_equal(ev.dport, 2);
                        assert_addr(AF_INET, ev.reply_src, "0.0.0.0");
                } else {
                        assert_int_equal(parse(m.u.bytes, m.len, &ev), -EBADMSG);
                }
        }
}

/* Every truncation of a real message, both with its length field intact
 * (lying: longer than the buffer) and with the length field cut to match
 * (attributes cut mid-way).  Either way no over-read (ASan); the first
 * must fail. */
static void test_truncated(void **state)
{
        struct nf_conntrack *ct = tcp4(TCP_CONNTRACK_ESTABLISHED, IPS_SEEN_REPLY);
        struct pc_ct_event ev;
        struct nlmsghdr *nlh;
        struct msg m, cut;
        int ok = 0;

        nlh = build(&m, IPCTNL_MSG_CT_DELETE, 0, ct);
        put_counters(&m, nlh, CTA_COUNTERS_ORIG, 1, 2);
        for (size_t len = 0; len < m.len; len++) {
                int r = parse(m.u.bytes, len, &ev);

                assert_int_equal(r, -EBADMSG);
                cut = m;
                if (len >= sizeof(struct nlmsghdr)) {
                        ((struct nlmsghdr *)cut.u.bytes)->nlmsg_len = (uint32_t)len;
                        r = parse(cut.u.bytes, len, &ev);
                        assert_true(r == 0 || r == -EBADMSG);
                        ok += r == 0;
                }
        }
        /* Cutting the trailing counters off leaves a valid event. */
        assert_true(ok > 0);
        /* Bytes after the message's own length are ignored. */
        assert_int_equal(parse(m.u.bytes, m.len + 64, &ev), 0);
        assert_true(ev.has_counters);
        /* No alignment needed. */
        memmove(m.u.bytes + 1, m.u.bytes, m.len);
        assert_int_equal(pc_ct_event_parse(m.u.bytes + 1, m.len, &ev), 0);
        assert_int_equal(ev.dport, 22);
        nfct_destroy(ct);
}

/* Random bytes and random corruptions of a real message: only 0, -EBADMSG
 * or -ENOENT, and an event only with sane fields. */
static void test_garbage(void **state)
{
        struct nf_conntrack *ct = udp6(IPS_SEEN_REPLY);
        uint8_t buf[512];
        struct pc_ct_event ev;
        struct nlmsghdr *nlh;
        struct msg m;
        unsigned seed = 12345;

        nlh = build(&m, IPCTNL_MSG_CT_DELETE, 0, ct);
        put_counters(&m, nlh, CTA_COUNTERS_ORIG, 1, 2);
        for (int i = 0; i < 20000; i++) {
                size_t len;
                int r;

                if (i % 2 == 0) {
                        len = (size_t)rand_r(&seed) % sizeof(buf);
                        for (size_t j = 0; j < len; j++)
                                buf[j] = (uint8_t)rand_r(&seed);
                        if (len >= 4) /* often a plausible length */
                                memcpy(buf, &(uint32_t){ (uint32_t)len }, 4);
                } else {
                        len = m.len;
                        memcpy(buf, m.u.bytes, len);
                        for (int k = 0; k < 1 + rand_r(&seed) % 4; k++)
                                buf[16 + (size_t)rand_r(&seed) % (len - 16)] = (uint8_t)rand_r(&seed);
                }
                r = parse(buf, len, &ev);
                assert_true(r == 0 || r == -EBADMSG || r == -ENOENT);
                if (r == 0) {
                        assert_true(ev.family == AF_INET || ev.family == AF_INET6);
                        assert_true(ev.type == PC_CT_NEW || ev.type == PC_CT_UPDATE || ev.type == PC_CT_DESTROY);
                        assert_true(ev.seen_reply == ((ev.status & IPS_SEEN_REPLY) != 0));
                }
        }
        nfct_destroy(ct);
}

static void test_open_args(void **state)
{
        struct pc_ct_events *c = (struct pc_ct_events *)&c;

        assert_int_equal(pc_ct_events_open(0, &c), -EINVAL);
        assert_int_equal(pc_ct_events_open(8, &c), -EINVAL);
        assert_ptr_equal(c, (struct pc_ct_events *)&c);
        assert_null(pc_ct_events_close(NULL));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tcp4_new),
                cmocka_unit_test(test_tcp4_update_and_destroy),
                cmocka_unit_test(test_udp6_counters),
                cmocka_unit_test(test_icmp_no_ports),
                cmocka_unit_test(test_not_events),
                cmocka_unit_test(test_malformed_attrs),
                cmocka_unit_test(test_truncated),
                cmocka_unit_test(test_garbage),
                cmocka_unit_test(test_open_args),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
