/* Packets that nftables rules send to an NFLOG group, read with
 * libnetfilter_log.  The payload is whatever a VPS chose to send: every
 * byte of it is parsed as hostile. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libnetfilter_log/libnetfilter_log.h>
#include <linux/if_ether.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "events/nflog.h"

#define COPY_RANGE 128                 /* bytes of each packet the kernel copies to us */
#define RCVBUF_SIZE (1024 * 1024)      /* socket receive buffer */
#define FLUSH_TIMEOUT 10               /* kernel batching delay, 1/100 s */
#define MAX_PACKETS_PER_DISPATCH 1024
#define MAX_RECVS_PER_DISPATCH 4096    /* also bounds overruns and foreign messages */
#define RECV_SIZE 65536                /* larger than any batch the kernel builds (nlbufsiz) */

struct pc_nflog {
        struct nflog_handle *h;
        struct nflog_g_handle *gh;
        uint64_t overruns;      /* ENOBUFS reports: each lost at least one packet */
        uint64_t gaps;          /* packets missing from the sequence numbers seen so far */
        uint32_t next_seq;      /* the kernel numbers a group's packets from 0 */
        /* valid during pc_nflog_dispatch() only */
        pc_nflog_cb cb;
        void *userdata;
        int count;
        unsigned cached_ifindex; /* one-entry if_indextoname cache, per dispatch */
        char cached_ifname[IF_NAMESIZE];
        uint8_t buf[RECV_SIZE];
};

static int on_packet(struct nflog_g_handle *gh, struct nfgenmsg *nfmsg, struct nflog_data *nfd, void *data);

/* Fills <p>'s payload fields for a packet that is not (well-formed) IP. */
static void set_not_ip(const uint8_t *buf, size_t len, struct pc_nflog_packet *p)
{
        p->family = 0;
        memset(p->src, 0, sizeof(p->src));
        memset(p->dst, 0, sizeof(p->dst));
        p->l4proto = 0;
        p->len = len;
        p->head_len = len < sizeof(p->head) ? len : sizeof(p->head);
        if (p->head_len > 0)
                memcpy(p->head, buf, p->head_len);
}

int pc_nflog_parse_payload(const uint8_t *buf, size_t len, struct pc_nflog_packet *p)
{
        size_t ihl, total;

        set_not_ip(buf, len, p);
        if (len < 1)
                return -EBADMSG;
        switch (buf[0] >> 4) {
        case 4:
                if (len < 20)
                        return -EBADMSG;
                ihl = (size_t)(buf[0] & 0x0f) * 4;
                total = (size_t)buf[2] << 8 | buf[3];
                if (ihl < 20 || ihl > len || total < ihl)
                        return -EBADMSG;
                p->family = AF_INET;
                p->l4proto = buf[9];
                memcpy(p->src, buf + 12, 4);
                memcpy(p->dst, buf + 16, 4);
                p->len = total;
                return 0;
        case 6:
                if (len < 40)
                        return -EBADMSG;
                p->family = AF_INET6;
                p->l4proto = buf[6];
                memcpy(p->src, buf + 8, 16);
                memcpy(p->dst, buf + 24, 16);
                p->len = 40 + ((size_t)buf[4] << 8 | buf[5]);
                return 0;
        default:
                return -EBADMSG;
        }
}

int pc_nflog_open(uint16_t group, struct pc_nflog **ret)
{
        static const uint16_t families[] = { AF_INET, AF_INET6, AF_BRIDGE };
        struct pc_nflog *n;
        int r, fd, fl;

        n = calloc(1, sizeof(*n));
        if (n == NULL)
                return -ENOMEM;
        n->h = nflog_open();
        if (n->h == NULL) {
                r = errno != 0 ? -errno : -ENOMEM;
                goto fail;
        }
        /* libnfnetlink opens the socket without SOCK_CLOEXEC; close the gap now. */
        fd = nflog_fd(n->h);
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1) {
                r = -errno;
                goto fail;
        }
        /* SO_RCVBUFFORCE passes net.core.rmem_max with CAP_NET_ADMIN;
         * else SO_RCVBUF, capped by it.  A smaller buffer only means more
         * ENOBUFS, so neither failing is fatal. */
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &(int){ RCVBUF_SIZE }, sizeof(int)) == -1)
                (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &(int){ RCVBUF_SIZE }, sizeof(int));

        /* Binding a family needs CAP_NET_ADMIN and nothing else, so an EPERM
         * from the group bind below can only mean somebody else holds it. */
        for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
                if (nflog_bind_pf(n->h, families[i]) < 0) {
                        r = errno != 0 ? -errno : -EIO;
                        goto fail;
                }
        n->gh = nflog_bind_group(n->h, group);
        if (n->gh == NULL) {
                r = errno == EPERM || errno == EEXIST ? -EBUSY : errno != 0 ? -errno : -EIO;
                goto fail;
        }
        /* Before any configuration round trip: packets may already be
         * queued ahead of its ack, and libnfnetlink dispatches them. */
        if (nflog_callback_register(n->gh, on_packet, n) < 0) {
                r = -EIO;
                goto fail;
        }
        if (nflog_set_mode(n->gh, NFULNL_COPY_PACKET, COPY_RANGE) < 0 ||
            nflog_set_flags(n->gh, NFULNL_CFG_F_SEQ) < 0 ||
            nflog_set_timeout(n->gh, FLUSH_TIMEOUT) < 0) {
                r = errno != 0 ? -errno : -EIO;
                goto fail;
        }
        /* Only now: the configuration round trips above expect their acks. */
        fl = fcntl(fd, F_GETFL);
        if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1) {
                r = -errno;
                goto fail;
        }
        *ret = n;
        return 0;
fail:
        pc_nflog_close(n);
        return r;
}

int pc_nflog_fd(const struct pc_nflog *n)
{
        return nflog_fd(n->h);
}

/* The gaps are exact but show only when a later packet arrives, and the
 * kernel reports ENOBUFS as soon as it drops, ahead of the packets still
 * queued before the gap; so the larger of the two. */
uint64_t pc_nflog_dropped(const struct pc_nflog *n)
{
        return n->gaps > n->overruns ? n->gaps : n->overruns;
}

/* Counts the packets missing before sequence number <seq>. */
static void account_seq(struct pc_nflog *n, uint32_t seq)
{
        uint32_t gap = seq - n->next_seq;

        if (gap < UINT32_C(0x80000000)) { /* else: old or repeated, ignore */
                n->gaps += gap;
                n->next_seq = seq + 1;
        }
}

/* Names <ifindex> into <buf> (IF_NAMESIZE bytes), "" if unknown. */
static void ifname(struct pc_nflog *n, uint32_t ifindex, char *buf)
{
        buf[0] = '\0';
        if (ifindex == 0)
                return;
        if (n->cached_ifindex != ifindex) {
                n->cached_ifindex = 0;
                if (if_indextoname(ifindex, n->cached_ifname) == NULL)
                        return;
                n->cached_ifindex = ifindex;
        }
        memcpy(buf, n->cached_ifname, IF_NAMESIZE);
}

/* libnetfilter_log's callback: one packet of our group. */
static int on_packet(struct nflog_g_handle *gh, struct nfgenmsg *nfmsg, struct nflog_data *nfd, void *data)
{
        struct pc_nflog *n = data;
        struct pc_nflog_packet p;
        struct nfulnl_msg_packet_hdr *ph;
        struct nfulnl_msg_packet_hw *hw;
        char *payload = NULL, *prefix;
        uint32_t seq, ifindex;
        int plen;

        if (nflog_get_seq(nfd, &seq) == 0)
                account_seq(n, seq);
        if (n->cb == NULL) /* arrived during open or close */
                return 0;

        memset(&p, 0, sizeof(p));
        prefix = nflog_get_prefix(nfd);
        if (prefix != NULL) {
                size_t l = strnlen(prefix, sizeof(p.prefix) - 1);
                memcpy(p.prefix, prefix, l);
                p.prefix[l] = '\0';
        }
        /* Bridged: indev is the bridge, physindev the port (the VPS). */
        ifindex = nflog_get_physindev(nfd);
        if (ifindex == 0)
                ifindex = nflog_get_indev(nfd);
        ifname(n, ifindex, p.iface);
        ifindex = nflog_get_physoutdev(nfd);
        if (ifindex == 0)
                ifindex = nflog_get_outdev(nfd);
        ifname(n, ifindex, p.oface);
        ph = nflog_get_msg_packet_hdr(nfd);
        if (ph != NULL)
                p.hwproto = ntohs(ph->hw_protocol);
        hw = nflog_get_packet_hw(nfd);
        if (hw != NULL && ntohs(hw->hw_addrlen) == sizeof(p.hwsrc)) {
                memcpy(p.hwsrc, hw->hw_addr, sizeof(p.hwsrc));
                p.has_hwsrc = true;
        }

        plen = nflog_get_payload(nfd, &payload);
        if (plen < 0 || payload == NULL)
                plen = 0;
        /* Trust the ethertype over the version nibble: a bridge rule may log
         * ARP or a VLAN-tagged frame whose first nibble happens to be 4. */
        if (p.hwproto == 0 || p.hwproto == ETH_P_IP || p.hwproto == ETH_P_IPV6) {
                pc_nflog_parse_payload((const uint8_t *)payload, (size_t)plen, &p);
                if ((p.hwproto == ETH_P_IP && p.family != AF_INET) ||
                    (p.hwproto == ETH_P_IPV6 && p.family != AF_INET6))
                        set_not_ip((const uint8_t *)payload, (size_t)plen, &p);
        } else {
                set_not_ip((const uint8_t *)payload, (size_t)plen, &p);
        }

        n->cb(&p, n->userdata);
        n->count++;
        return 0;
}

int pc_nflog_dispatch(struct pc_nflog *n, pc_nflog_cb cb, void *userdata)
{
        int fd = nflog_fd(n->h), r;

        n->cb = cb;
        n->userdata = userdata;
        n->count = 0;
        n->cached_ifindex = 0;
        for (int i = 0; i < MAX_RECVS_PER_DISPATCH && n->count < MAX_PACKETS_PER_DISPATCH; i++) {
                struct sockaddr_nl from;
                socklen_t fromlen = sizeof(from);
                ssize_t got;

                got = recvfrom(fd, n->buf, sizeof(n->buf), MSG_DONTWAIT | MSG_TRUNC,
                               (struct sockaddr *)&from, &fromlen);
                if (got == -1) {
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                break;
                        if (errno == ENOBUFS) {
                                n->overruns++;
                                continue;
                        }
                        r = -errno;
                        goto out;
                }
                /* Only the kernel speaks to us (port 0). */
                if (fromlen != sizeof(from) || from.nl_family != AF_NETLINK || from.nl_pid != 0)
                        continue;
                /* Truncated (MSG_TRUNC gives the real size): the messages cut
                 * off are lost, and the sequence numbers will count them. */
                if ((size_t)got > sizeof(n->buf))
                        got = sizeof(n->buf);
                /* A malformed message ends this buffer's processing; the
                 * packets before it were delivered. */
                nflog_handle_packet(n->h, (char *)n->buf, (int)got);
        }
        r = n->count;
out:
        n->cb = NULL;
        n->userdata = NULL;
        return r;
}

struct pc_nflog *pc_nflog_close(struct pc_nflog *n)
{
        if (n == NULL)
                return NULL;
        /* The kernel also frees the group when the socket closes. */
        if (n->gh != NULL)
                nflog_unbind_group(n->gh);
        if (n->h != NULL)
                nflog_close(n->h);
        free(n);
        return NULL;
}

bool pc_nflog_transport(const struct pc_nflog_packet *p, uint8_t *proto, size_t *off)
{
        uint8_t nh = p->l4proto;

        if (p->family == AF_INET && p->head_len >= 20) {
                *off = (size_t)(p->head[0] & 0x0f) * 4;
        } else if (p->family == AF_INET6 && p->head_len >= 40) {
                *off = 40;
                nh = p->head[6];
                for (int i = 0; i < 8 && (nh == 0 || nh == 43 || nh == 44 || nh == 51 || nh == 60); i++) {
                        size_t len;

                        if (*off + 8 > p->head_len)
                                return false;
                        len = nh == 44 ? 8 : nh == 51 ? ((size_t)p->head[*off + 1] + 2) * 4
                                                      : ((size_t)p->head[*off + 1] + 1) * 8;
                        nh = p->head[*off];
                        *off += len;
                }
        } else {
                return false;
        }
        *proto = nh;
        return true;
}
