/* The kernel's conntrack events (a flow was created, changed state, went
 * away), read from ctnetlink's multicast groups: the event source beside
 * NFLOG for detectors of scans, floods and reflection.  Functions return 0
 * (or a count) or a negative errno and write ret_ only on success; nothing
 * here logs.
 *
 * What the kernel sends, measured on Linux 6.18 for flows forwarded
 * through the namespace that listens (tests/events/ct_events_live.sh
 * asserts every row; run it with CT_EVENTS_NATURAL=1 to see the timing).
 * st = tcp_state, rep = seen_reply, as = assured:
 *
 *   first contact                 events, in order
 *   TCP SYN, refused by RST       NEW(st SYN_SENT) -> DESTROY(st CLOSE, rep 0) at once.
 *                                 No UPDATE, and not even rep 1: the kernel kills a
 *                                 flow whose first reply is an RST before it marks the
 *                                 reply seen (only the reply counter, 1 packet, shows it)
 *   TCP SYN, answered by SYN-ACK  NEW(SYN_SENT) -> UPDATE(SYN_RECV, rep 1) -> UPDATE(
 *                                 ESTABLISHED, as 1) -> UPDATE per state of the close
 *                                 (FIN_WAIT, LAST_ACK, TIME_WAIT) -> DESTROY(TIME_WAIT)
 *   TCP SYN, never answered       NEW(SYN_SENT) -> DESTROY(SYN_SENT, rep 0) after
 *                                 nf_conntrack_tcp_timeout_syn_sent (120 s); the
 *                                 client's retransmitted SYNs make no event
 *   UDP, answered                 NEW(rep 0) -> UPDATE(rep 1) -> DESTROY(rep 1) after
 *                                 nf_conntrack_udp_timeout (30 s; a stream with more
 *                                 traffic becomes assured: one more UPDATE, not measured)
 *   UDP, never answered           NEW(rep 0) -> DESTROY(rep 0) after the timeout
 *   UDP, answered by ICMP port    exactly as never answered: the ICMP error is a
 *   unreachable                   RELATED packet; it sets nothing on the flow, makes no
 *                                 event and is not in the flow's reply counters
 *
 * So for TCP "answered" means tcp_state reached SYN_RECV or ESTABLISHED
 * (in an UPDATE), never seen_reply alone; a refused TCP contact and an
 * unanswered one differ only in the DESTROY's state (CLOSE at once vs
 * SYN_SENT after the timeout).  A UDP probe answered by ICMP cannot be told
 * from an unanswered one by these events.
 *
 * Pitfalls:
 * - A DESTROY for an expired flow comes when the kernel's gc worker
 *   reaches it: measured 20 s after a 3 s timeout, up to a minute by the
 *   kernel's design (GC_SCAN_INTERVAL_MAX).  A table dump reaps expired
 *   flows at once.  Flows killed (RST, conntrack -D/-F) report at once.
 * - net.netfilter.nf_conntrack_events (per network namespace): 1 gives
 *   every flow events; 2, the default since Linux 5.19 (so also on Debian
 *   12's 6.1; measured 2 here), only flows created while some socket
 *   listened to a ctnetlink group; 0 only flows a rule marks (nft "ct
 *   event set").  Under 2 a flow created before pc_ct_events_open() never
 *   produces any event, not even DESTROY (measured): dump the table once
 *   after opening if that matters.  Nothing needs setting.
 * - Conntrack tracks nothing in a namespace until some rule there uses it
 *   (an nftables "ct" expression, NAT...): listening alone does not start it.
 * - Counters come only in DESTROY, and only if nf_conntrack_acct was 1
 *   when the flow was created (default 0: has_counters false).
 * - An UPDATE carries tcp_state only when the state changed (else 0); a
 *   DESTROY carries the last state.  Track flows by <id> (or tuple).
 * - Cost: the kernel builds every message before any socket filter sees
 *   it.  The cheap cut is in the ruleset: "ct event set new,destroy"
 *   (nftables) on the flows of interest, with nf_conntrack_events 0,
 *   spares the kernel the UPDATEs and everything else.  A BPF socket
 *   filter (nfct_filter_attach) would only spare our wake-ups and copies;
 *   not used.  On our side, subscribe only to the types needed: a scan
 *   detector can work from NEW and DESTROY alone, since the DESTROY's
 *   tcp_state and seen_reply tell refused (CLOSE, rep 0), unanswered
 *   (SYN_SENT, rep 0) and answered (rep 1) apart; but an unanswered
 *   flow's DESTROY comes only after its timeout and the gc delay, while
 *   the UPDATE to SYN_RECV tells "answered" at once.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

struct pc_ct_events;

enum pc_ct_event_type { PC_CT_NEW, PC_CT_UPDATE, PC_CT_DESTROY };

struct pc_ct_event {
        enum pc_ct_event_type type;
        int family;              /* AF_INET or AF_INET6 */
        uint8_t proto;           /* IPPROTO_TCP, UDP, ICMP, ... */
        uint8_t src[16], dst[16];/* original direction (who opened the flow, and to whom); 4 or 16 bytes used */
        uint16_t sport, dport;   /* host order; 0 if the protocol has no ports (only TCP, UDP, UDP-Lite,
                                  * SCTP and DCCP have) */
        uint8_t reply_src[16];   /* reply direction's source (differs from dst under DNAT/redirect) */
        uint8_t reply_dst[16];   /* reply direction's destination (differs from src under SNAT/masquerade) */
        uint16_t reply_sport, reply_dport; /* reply direction's ports, host order, 0 as above */
        uint8_t tcp_state;       /* TCP_CONNTRACK_* value (SYN_SENT=1, SYN_RECV=2, ESTABLISHED=3,
                                  * FIN_WAIT=4, CLOSE_WAIT=5, LAST_ACK=6, TIME_WAIT=7, CLOSE=8, ...),
                                  * 0 if not TCP or the message did not carry it (see above) */
        bool seen_reply;         /* IPS_SEEN_REPLY */
        bool assured;            /* IPS_ASSURED */
        uint32_t status;         /* all IPS_* bits */
        uint32_t mark;           /* ct mark, 0 if not given */
        uint32_t id;             /* the kernel's id of the flow (stable over its life), 0 if not given */
        uint64_t orig_packets, orig_bytes, reply_packets, reply_bytes; /* if the kernel gave counters
                                                                        * (nf_conntrack_acct), else 0 */
        bool has_counters;
};

/* True if <ev>'s flow was redirected (DNAT, redirect to a local proxy):
 * its reply comes from elsewhere than where it was sent. */
static inline bool pc_ct_event_redirected(const struct pc_ct_event *ev)
{
        return memcmp(ev->reply_src, ev->dst, ev->family == AF_INET ? 4 : 16) != 0;
}

/* Event types to subscribe to, for pc_ct_events_open(). */
#define PC_CT_EV_NEW 1u
#define PC_CT_EV_UPDATE 2u
#define PC_CT_EV_DESTROY 4u

/* Called for each event; <ev> is valid only during the call. */
typedef void (*pc_ct_event_cb)(const struct pc_ct_event *ev, void *userdata);

/* Subscribes to the ctnetlink groups of the event types in <types> (a
 * non-zero OR of PC_CT_EV_*; -EINVAL otherwise) in the current network
 * namespace.  The socket is non-blocking and O_CLOEXEC, its receive buffer
 * 8 MiB (SO_RCVBUFFORCE; without CAP_NET_ADMIN whatever net.core.rmem_max
 * allows).  -EPERM without CAP_NET_ADMIN. */
int pc_ct_events_open(unsigned types, struct pc_ct_events **ret);

/* The fd to poll() for POLLIN. */
int pc_ct_events_fd(const struct pc_ct_events *c);

/* Reads the events ready now (never blocks) and calls <cb> for each
 * conntrack event of an IPv4/IPv6 flow; other and malformed messages are
 * skipped.  Returns the number of events, or a negative errno.  ENOBUFS
 * (the kernel dropped events because we were slow) is not an error: it is
 * counted in pc_ct_events_dropped() and reading goes on.  To keep the
 * caller's loop responsive it returns after 1024 events even if more are
 * ready; poll() will say so. */
int pc_ct_events_dispatch(struct pc_ct_events *c, pc_ct_event_cb cb, void *userdata);

/* Messages lost to ENOBUFS so far.  The kernel counts every event it could
 * not queue on the socket (SO_MEMINFO's drop count, read at the end of
 * each dispatch from an ENOBUFS report until the queue has been drained),
 * so this is exact up to the drops since the last dispatch (measured: of
 * 45000 NEW events sent while nothing read, 13107 read + 31893 dropped);
 * if that count cannot be read, each overrun counts as one message (a
 * lower bound). */
uint64_t pc_ct_events_dropped(const struct pc_ct_events *c);

/* Unsubscribes and frees; accepts NULL; returns NULL. */
struct pc_ct_events *pc_ct_events_close(struct pc_ct_events *c);

/* Parses the netlink message <nlmsg> of <len> bytes (a conntrack event:
 * the kernel's framing, but addresses and ports are whatever a VPS sent)
 * into <ev>.  Returns 0; -ENOENT for a message that is not a conntrack
 * event (another subsystem or message type, an expectation, a family other
 * than IPv4/IPv6); -EBADMSG for a malformed one (length fields that
 * disagree with <len>, an attribute of the wrong size, no original tuple
 * or addresses of the wrong family).  Trailing bytes after the message's
 * own length are ignored.  Never reads past <len>; no alignment needed.
 * <ev> is written only on success. */
int pc_ct_event_parse(const void *nlmsg, size_t len, struct pc_ct_event *ev);
