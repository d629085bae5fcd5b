/* libFuzzer harness for the conntrack event parser: the bytes are a
 * netlink message whose tuples a VPS chose.  Parsing must never read out
 * of bounds, must leave the event alone when it fails, and what it reports
 * must be consistent. */
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/netfilter/nf_conntrack_common.h>

#include "events/ct_events.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether bytes <from>..15 of <a> are zero. */
static bool zero_tail(const uint8_t *a, size_t from)
{
        for (size_t i = from; i < 16; i++)
                if (a[i] != 0)
                        return false;
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* An exactly sized copy, so that any over-read is caught. */
        uint8_t *buf = size > 0 ? malloc(size) : NULL;
        struct pc_ct_event ev, junk;
        int r;

        if (size > 0 && buf == NULL)
                return 0;
        if (size > 0)
                memcpy(buf, data, size);
        memset(&junk, 0x5a, sizeof(junk));
        ev = junk;
        r = pc_ct_event_parse(buf, size, &ev);
        if (r != 0 && r != -EBADMSG && r != -ENOENT)
                abort();
        if (r != 0) {
                if (memcmp(&ev, &junk, sizeof(ev)) != 0)
                        abort();
        } else {
                size_t alen = ev.family == AF_INET ? 4 : 16;
                bool ports = ev.proto == IPPROTO_TCP || ev.proto == IPPROTO_UDP || ev.proto == IPPROTO_UDPLITE ||
                             ev.proto == IPPROTO_SCTP || ev.proto == IPPROTO_DCCP;

                if (ev.family != AF_INET && ev.family != AF_INET6)
                        abort();
                if (ev.type != PC_CT_NEW && ev.type != PC_CT_UPDATE && ev.type != PC_CT_DESTROY)
                        abort();
                if (!zero_tail(ev.src, alen) || !zero_tail(ev.dst, alen) || !zero_tail(ev.reply_src, alen) ||
                    !zero_tail(ev.reply_dst, alen))
                        abort();
                if (!ports && (ev.sport != 0 || ev.dport != 0 || ev.reply_sport != 0 || ev.reply_dport != 0))
                        abort();
                if (ev.proto != IPPROTO_TCP && ev.tcp_state != 0)
                        abort();
                if (ev.seen_reply != ((ev.status & IPS_SEEN_REPLY) != 0) ||
                    ev.assured != ((ev.status & IPS_ASSURED) != 0))
                        abort();
                if (!ev.has_counters &&
                    (ev.orig_packets != 0 || ev.orig_bytes != 0 || ev.reply_packets != 0 || ev.reply_bytes != 0))
                        abort();
                /* The same bytes, unaligned, parse the same. */
                uint8_t *shifted = malloc(size + 1);
                struct pc_ct_event again;

                if (shifted != NULL) {
                        memcpy(shifted + 1, buf, size);
                        if (pc_ct_event_parse(shifted + 1, size, &again) != 0 || memcmp(&again, &ev, sizeof(ev)) != 0)
                                abort();
                        free(shifted);
                }
        }
        free(buf);
        return 0;
}
