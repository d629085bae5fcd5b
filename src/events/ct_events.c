/* Conntrack events from ctnetlink's multicast groups (see ct_events.h).
 * The socket is plain netlink; the parser is our own, reads every field
 * with memcpy and checks every length against the message, because the
 * tuples inside are whatever a VPS chose to send. */
#include <errno.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "events/ct_events.h"

#define RCVBUF_SIZE (8 * 1024 * 1024)  /* socket receive buffer */
#define MAX_EVENTS_PER_DISPATCH 1024
#define MAX_RECVS_PER_DISPATCH 4096    /* also bounds overruns and foreign messages */
#define RECV_SIZE 16384                /* an event is a few hundred bytes, one per datagram */

struct pc_ct_events {
        int fd;
        uint64_t overruns;      /* ENOBUFS reports: each lost at least one message */
        uint64_t drops;         /* the kernel's count of messages it could not queue */
        uint32_t last_drops;    /* SO_MEMINFO's (32-bit, wrapping) drop counter when last read */
        bool have_drops;        /* SO_MEMINFO can be read */
        bool congested;         /* an overrun was reported and the queue has not been empty since */
        uint8_t buf[RECV_SIZE];
};

/* One attribute: payload and its length (the header excluded). */
struct attr {
        const uint8_t *data;
        size_t len;
        bool present;
};

/* Collects the attributes of <buf> (<len> bytes) whose type, flags masked
 * off, is below <max> into <tb> (the last of a repeated type wins).
 * Returns -EBADMSG if an attribute's length is below its header or runs
 * past <len>; fewer than 4 bytes left over at the end are ignored, as the
 * kernel does. */
static int parse_attrs(const uint8_t *buf, size_t len, struct attr *tb, size_t max)
{
        memset(tb, 0, max * sizeof(*tb));
        while (len >= NLA_HDRLEN) {
                struct nlattr a;
                size_t step;
                uint16_t type;

                memcpy(&a, buf, sizeof(a));
                if (a.nla_len < NLA_HDRLEN || a.nla_len > len)
                        return -EBADMSG;
                type = a.nla_type & NLA_TYPE_MASK;
                if (type < max) {
                        tb[type].data = buf + NLA_HDRLEN;
                        tb[type].len = a.nla_len - NLA_HDRLEN;
                        tb[type].present = true;
                }
                step = NLA_ALIGN((size_t)a.nla_len);
                if (step >= len)
                        break;
                buf += step;
                len -= step;
        }
        return 0;
}

/* Big-endian integers of exactly the attribute's size: -EBADMSG if the
 * size is wrong, -ENOENT if the attribute is absent. */
static int get_be(const struct attr *a, size_t size, uint64_t *ret)
{
        uint64_t v = 0;

        if (!a->present)
                return -ENOENT;
        if (a->len != size)
                return -EBADMSG;
        for (size_t i = 0; i < size; i++)
                v = v << 8 | a->data[i];
        *ret = v;
        return 0;
}

/* Whether the tuple of <proto> has ports in CTA_PROTO_{SRC,DST}_PORT. */
static bool has_ports(uint8_t proto)
{
        return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE ||
               proto == IPPROTO_SCTP || proto == IPPROTO_DCCP;
}

/* Parses the nested tuple <a> of a <family> flow: addresses into <src> and
 * <dst> (16 bytes each), the protocol into <proto>, ports into <sport> and
 * <dport> (0 for a protocol without).  -EBADMSG unless it has both
 * addresses of <family>'s size and a protocol number. */
static int parse_tuple(const struct attr *a, int family, uint8_t *src, uint8_t *dst, uint8_t *proto,
                       uint16_t *sport, uint16_t *dport)
{
        struct attr tuple[CTA_TUPLE_MAX + 1], ip[CTA_IP_MAX + 1], l4[CTA_PROTO_MAX + 1];
        size_t alen = family == AF_INET ? 4 : 16;
        const struct attr *s, *d;
        uint64_t v;

        if (parse_attrs(a->data, a->len, tuple, CTA_TUPLE_MAX + 1) < 0 || !tuple[CTA_TUPLE_IP].present ||
            !tuple[CTA_TUPLE_PROTO].present)
                return -EBADMSG;
        if (parse_attrs(tuple[CTA_TUPLE_IP].data, tuple[CTA_TUPLE_IP].len, ip, CTA_IP_MAX + 1) < 0 ||
            parse_attrs(tuple[CTA_TUPLE_PROTO].data, tuple[CTA_TUPLE_PROTO].len, l4, CTA_PROTO_MAX + 1) < 0)
                return -EBADMSG;
        s = &ip[family == AF_INET ? CTA_IP_V4_SRC : CTA_IP_V6_SRC];
        d = &ip[family == AF_INET ? CTA_IP_V4_DST : CTA_IP_V6_DST];
        if (!s->present || !d->present || s->len != alen || d->len != alen)
                return -EBADMSG;
        memset(src, 0, 16);
        memset(dst, 0, 16);
        memcpy(src, s->data, alen);
        memcpy(dst, d->data, alen);

        if (get_be(&l4[CTA_PROTO_NUM], 1, &v) < 0)
                return -EBADMSG;
        *proto = (uint8_t)v;
        *sport = 0;
        *dport = 0;
        if (has_ports(*proto)) {
                int r = get_be(&l4[CTA_PROTO_SRC_PORT], 2, &v);

                if (r == -EBADMSG)
                        return r;
                if (r == 0)
                        *sport = (uint16_t)v;
                r = get_be(&l4[CTA_PROTO_DST_PORT], 2, &v);
                if (r == -EBADMSG)
                        return r;
                if (r == 0)
                        *dport = (uint16_t)v;
        }
        return 0;
}

/* Parses the nested counters <a> of one direction (64-bit, or the old
 * 32-bit attributes).  -EBADMSG if malformed or without both numbers. */
static int parse_counters(const struct attr *a, uint64_t *packets, uint64_t *bytes)
{
        struct attr tb[CTA_COUNTERS_MAX + 1];

        if (parse_attrs(a->data, a->len, tb, CTA_COUNTERS_MAX + 1) < 0)
                return -EBADMSG;
        if (get_be(&tb[CTA_COUNTERS_PACKETS], 8, packets) < 0 &&
            get_be(&tb[CTA_COUNTERS32_PACKETS], 4, packets) < 0)
                return -EBADMSG;
        if (get_be(&tb[CTA_COUNTERS_BYTES], 8, bytes) < 0 &&
            get_be(&tb[CTA_COUNTERS32_BYTES], 4, bytes) < 0)
                return -EBADMSG;
        return 0;
}

/* The TCP state in the nested protoinfo <a>: 0 if it has none,
 * -EBADMSG if malformed. */
static int parse_tcp_state(const struct attr *a, uint8_t *ret)
{
        struct attr info[CTA_PROTOINFO_MAX + 1], tcp[CTA_PROTOINFO_TCP_MAX + 1];
        uint64_t v;
        int r;

        if (parse_attrs(a->data, a->len, info, CTA_PROTOINFO_MAX + 1) < 0)
                return -EBADMSG;
        if (!info[CTA_PROTOINFO_TCP].present)
                return 0;
        if (parse_attrs(info[CTA_PROTOINFO_TCP].data, info[CTA_PROTOINFO_TCP].len, tcp,
                        CTA_PROTOINFO_TCP_MAX + 1) < 0)
                return -EBADMSG;
        r = get_be(&tcp[CTA_PROTOINFO_TCP_STATE], 1, &v);
        if (r == -EBADMSG)
                return r;
        if (r == 0)
                *ret = (uint8_t)v;
        return 0;
}

int pc_ct_event_parse(const void *nlmsg, size_t len, struct pc_ct_event *ev)
{
        const uint8_t *p = nlmsg;
        struct attr tb[CTA_MAX + 1];
        struct pc_ct_event e;
        struct nlmsghdr h;
        struct nfgenmsg g;
        uint8_t reply_proto = 0;
        uint64_t v;
        size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(g));
        int r;

        if (len < NLMSG_HDRLEN)
                return -EBADMSG;
        memcpy(&h, p, sizeof(h));
        if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > len)
                return -EBADMSG;
        if (NFNL_SUBSYS_ID(h.nlmsg_type) != NFNL_SUBSYS_CTNETLINK)
                return -ENOENT;
        memset(&e, 0, sizeof(e));
        switch (NFNL_MSG_TYPE(h.nlmsg_type)) {
        case IPCTNL_MSG_CT_NEW:
                /* ctnetlink flags the event of a new flow so; an update not. */
                e.type = (h.nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL)) != 0 ? PC_CT_NEW : PC_CT_UPDATE;
                break;
        case IPCTNL_MSG_CT_DELETE:
                e.type = PC_CT_DESTROY;
                break;
        default:
                return -ENOENT;
        }
        if (h.nlmsg_len < off)
                return -EBADMSG;
        memcpy(&g, p + NLMSG_HDRLEN, sizeof(g));
        if (g.nfgen_family != AF_INET && g.nfgen_family != AF_INET6)
                return -ENOENT;
        e.family = g.nfgen_family;
        if (parse_attrs(p + off, h.nlmsg_len - off, tb, CTA_MAX + 1) < 0)
                return -EBADMSG;

        if (!tb[CTA_TUPLE_ORIG].present)
                return -EBADMSG;
        r = parse_tuple(&tb[CTA_TUPLE_ORIG], e.family, e.src, e.dst, &e.proto, &e.sport, &e.dport);
        if (r < 0)
                return r;
        if (tb[CTA_TUPLE_REPLY].present) {
                r = parse_tuple(&tb[CTA_TUPLE_REPLY], e.family, e.reply_src, e.reply_dst, &reply_proto,
                                &e.reply_sport, &e.reply_dport);
                if (r < 0)
                        return r;
                if (reply_proto != e.proto)
                        return -EBADMSG;
        }
        r = get_be(&tb[CTA_STATUS], 4, &v);
        if (r == -EBADMSG)
                return r;
        if (r == 0) {
                e.status = (uint32_t)v;
                e.seen_reply = (e.status & IPS_SEEN_REPLY) != 0;
                e.assured = (e.status & IPS_ASSURED) != 0;
        }
        r = get_be(&tb[CTA_MARK], 4, &v);
        if (r == -EBADMSG)
                return r;
        if (r == 0)
                e.mark = (uint32_t)v;
        r = get_be(&tb[CTA_ID], 4, &v);
        if (r == -EBADMSG)
                return r;
        if (r == 0)
                e.id = (uint32_t)v;
        if (e.proto == IPPROTO_TCP && tb[CTA_PROTOINFO].present &&
            parse_tcp_state(&tb[CTA_PROTOINFO], &e.tcp_state) < 0)
                return -EBADMSG;
        if (tb[CTA_COUNTERS_ORIG].present || tb[CTA_COUNTERS_REPLY].present) {
                if (tb[CTA_COUNTERS_ORIG].present &&
                    parse_counters(&tb[CTA_COUNTERS_ORIG], &e.orig_packets, &e.orig_bytes) < 0)
                        return -EBADMSG;
                if (tb[CTA_COUNTERS_REPLY].present &&
                    parse_counters(&tb[CTA_COUNTERS_REPLY], &e.reply_packets, &e.reply_bytes) < 0)
                        return -EBADMSG;
                e.has_counters = true;
        }
        *ev = e;
        return 0;
}

/* Reads the kernel's count of messages it dropped on our socket into
 * c->drops; false if it cannot be read. */
static bool read_drops(struct pc_ct_events *c)
{
        uint32_t mem[SK_MEMINFO_VARS];
        socklen_t len = sizeof(mem);

        if (getsockopt(c->fd, SOL_SOCKET, SO_MEMINFO, mem, &len) == -1 || len <= SK_MEMINFO_DROPS * sizeof(mem[0]))
                return false;
        if (c->have_drops)
                c->drops += (uint32_t)(mem[SK_MEMINFO_DROPS] - c->last_drops);
        c->last_drops = mem[SK_MEMINFO_DROPS];
        c->have_drops = true;
        return true;
}

int pc_ct_events_open(unsigned types, struct pc_ct_events **ret)
{
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
        struct pc_ct_events *c;
        int r;

        if (types == 0 || (types & ~(PC_CT_EV_NEW | PC_CT_EV_UPDATE | PC_CT_EV_DESTROY)) != 0)
                return -EINVAL;
        /* Group n is bit n - 1 of nl_groups. */
        if (types & PC_CT_EV_NEW)
                sa.nl_groups |= 1u << (NFNLGRP_CONNTRACK_NEW - 1);
        if (types & PC_CT_EV_UPDATE)
                sa.nl_groups |= 1u << (NFNLGRP_CONNTRACK_UPDATE - 1);
        if (types & PC_CT_EV_DESTROY)
                sa.nl_groups |= 1u << (NFNLGRP_CONNTRACK_DESTROY - 1);

        c = calloc(1, sizeof(*c));
        if (c == NULL)
                return -ENOMEM;
        c->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER);
        if (c->fd == -1) {
                r = -errno;
                goto fail;
        }
        /* SO_RCVBUFFORCE passes net.core.rmem_max with CAP_NET_ADMIN;
         * else SO_RCVBUF, capped by it.  A smaller buffer only means more
         * ENOBUFS, so neither failing is fatal. */
        if (setsockopt(c->fd, SOL_SOCKET, SO_RCVBUFFORCE, &(int){ RCVBUF_SIZE }, sizeof(int)) == -1)
                (void)setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &(int){ RCVBUF_SIZE }, sizeof(int));
        /* Joining ctnetlink's groups needs CAP_NET_ADMIN (-EPERM). */
        if (bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
                r = -errno;
                goto fail;
        }
        (void)read_drops(c);
        *ret = c;
        return 0;
fail:
        pc_ct_events_close(c);
        return r;
}

int pc_ct_events_fd(const struct pc_ct_events *c)
{
        return c->fd;
}

uint64_t pc_ct_events_dropped(const struct pc_ct_events *c)
{
        return c->drops > c->overruns ? c->drops : c->overruns;
}

/* Calls <cb> for each conntrack event among the messages in c->buf (<len>
 * bytes, one datagram); returns how many. */
static int deliver(struct pc_ct_events *c, size_t len, pc_ct_event_cb cb, void *userdata)
{
        size_t off = 0;
        int n = 0;

        while (len - off >= NLMSG_HDRLEN) {
                struct pc_ct_event ev;
                struct nlmsghdr h;
                size_t step;

                memcpy(&h, c->buf + off, sizeof(h));
                if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > len - off)
                        break;
                if (pc_ct_event_parse(c->buf + off, h.nlmsg_len, &ev) == 0) {
                        cb(&ev, userdata);
                        n++;
                }
                step = NLMSG_ALIGN((size_t)h.nlmsg_len);
                if (step >= len - off)
                        break;
                off += step;
        }
        return n;
}

int pc_ct_events_dispatch(struct pc_ct_events *c, pc_ct_event_cb cb, void *userdata)
{
        bool drained = false;
        int count = 0;

        for (int i = 0; i < MAX_RECVS_PER_DISPATCH && count < MAX_EVENTS_PER_DISPATCH; i++) {
                struct sockaddr_nl from;
                socklen_t fromlen = sizeof(from);
                ssize_t got;

                got = recvfrom(c->fd, c->buf, sizeof(c->buf), MSG_DONTWAIT | MSG_TRUNC,
                               (struct sockaddr *)&from, &fromlen);
                if (got == -1) {
                        if (errno == EAGAIN || errno == EWOULDBLOCK) {
                                drained = true;
                                break;
                        }
                        if (errno == EINTR)
                                continue;
                        if (errno == ENOBUFS) {
                                c->overruns++;
                                c->congested = true;
                                continue;
                        }
                        return -errno;
                }
                /* Only the kernel speaks to us (port 0). */
                if (fromlen != sizeof(from) || from.nl_family != AF_NETLINK || from.nl_pid != 0)
                        continue;
                /* Truncated (MSG_TRUNC gives the real size): the message cut
                 * off fails its length check and is skipped. */
                if ((size_t)got > sizeof(c->buf))
                        got = sizeof(c->buf);
                count += deliver(c, (size_t)got, cb, userdata);
        }
        /* Until its queue has been empty once, the kernel drops every
         * message for the socket without reporting ENOBUFS again; its
         * count has them. */
        if (c->congested) {
                (void)read_drops(c);
                if (drained)
                        c->congested = false;
        }
        return count;
}

struct pc_ct_events *pc_ct_events_close(struct pc_ct_events *c)
{
        if (c == NULL)
                return NULL;
        if (c->fd >= 0)
                close(c->fd);
        free(c);
        return NULL;
}
