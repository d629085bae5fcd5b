/* Packets that nftables rules send to an NFLOG group, read with
 * libnetfilter_log.  Functions return 0 (or a count) or a negative errno and
 * write ret_ only on success; nothing here logs. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pc_nflog;

struct pc_nflog_packet {
        char iface[16];      /* input interface name, resolved with if_indextoname in the current netns, "" if none.
                              * For a bridged packet the kernel names the bridge as indev and the port as physindev;
                              * this is the port (the VPS's interface) when the kernel gave one, else the indev. */
        char oface[16];      /* output interface (the port if bridged), "" if none (yet) */
        char prefix[64];     /* the rule's log prefix, "" if none (truncated to 63 bytes) */
        int family;          /* AF_INET, AF_INET6, or 0 (not IP, e.g. from a bridge/arp rule, or malformed) */
        uint8_t src[16];     /* source address (4 or 16 bytes used; zero if family is 0) */
        uint8_t dst[16];
        uint8_t l4proto;     /* IP protocol / IPv6 next header (first one) */
        uint8_t hwsrc[6];    /* source MAC if the kernel gave it */
        bool has_hwsrc;
        uint16_t hwproto;    /* ethertype if given (0x0800, 0x86dd, 0x0806...), host order */
        size_t len;          /* length of the packet: the IP header's length field (IPv4 total length,
                              * 40 + IPv6 payload length) when family is set -- claimed by the sender
                              * and not checked against the wire for bridge rules --, else the
                              * number of bytes logged */
        uint8_t head[128];   /* the first bytes of the network-layer packet */
        size_t head_len;
};

/* Called for each packet; <p> is valid only during the call. */
typedef void (*pc_nflog_cb)(const struct pc_nflog_packet *p, void *userdata);

/* Binds NFLOG group <group> (copying the first 128 bytes of each packet)
 * for AF_INET, AF_INET6 and AF_BRIDGE; the socket is non-blocking and
 * O_CLOEXEC, its receive buffer 1 MiB.  -EPERM without CAP_NET_ADMIN,
 * -EBUSY if another socket has the group.  Binding a family makes
 * nfnetlink_log that family's default logger in the current netns (what
 * conntrack's invalid-packet logging uses); close does not undo that, as
 * other programs may rely on it. */
int pc_nflog_open(uint16_t group, struct pc_nflog **ret);

/* The fd to poll() for POLLIN. */
int pc_nflog_fd(const struct pc_nflog *n);

/* Reads every message ready now (never blocks) and calls <cb> for each
 * packet.  Returns the number of packets, or a negative errno.  ENOBUFS
 * (the kernel dropped messages because we were slow) is not an error: it
 * is counted in pc_nflog_dropped() and reading goes on.  To keep the
 * caller's loop responsive it returns after about 1024 packets (one kernel
 * batch may overshoot) even if more are ready; poll() will say so. */
int pc_nflog_dispatch(struct pc_nflog *n, pc_nflog_cb cb, void *userdata);

/* Packets lost to ENOBUFS so far.  Counted exactly from the gaps in the
 * kernel's per-group sequence numbers, which show only once a later packet
 * has arrived; until then each overrun counts as one packet. */
uint64_t pc_nflog_dropped(const struct pc_nflog *n);

/* Unbinds the group and frees; accepts NULL; returns NULL. */
struct pc_nflog *pc_nflog_close(struct pc_nflog *n);

/* Where the transport header of the logged packet <p> starts: its
 * protocol in *<proto> and its offset in <p>->head in *<off>, IPv6
 * extension headers (hop-by-hop, routing, fragment, AH, destination
 * options) walked.  False if <p> is not IP, or its headers run past the
 * bytes logged.  The transport header itself may still be cut short. */
bool pc_nflog_transport(const struct pc_nflog_packet *p, uint8_t *proto, size_t *off);

/* Parses the network-layer packet <buf> of <len> bytes (attacker-controlled;
 * may be truncated to what the kernel copied) into <p>: always sets
 * family, src, dst, l4proto, len, head and head_len, and leaves the other
 * fields alone.  Returns 0 for a well-formed IPv4 header (IHL >= 5, within
 * <len>, total length >= IHL) or IPv6 fixed header; otherwise -EBADMSG with
 * family 0, addresses and l4proto zero, len = <len>.  Never reads past
 * <len>; <buf> may be NULL if <len> is 0. */
int pc_nflog_parse_payload(const uint8_t *buf, size_t len, struct pc_nflog_packet *p);
