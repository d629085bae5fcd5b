/* Reads conntrack events for <seconds> (default 5) and prints one line per
 * event, after a first line "ready" once subscribed:
 *   TYPE PROTO SRC SPORT DST DPORT st=TCP_STATE rep=SEEN_REPLY as=ASSURED rsrc=REPLY_SRC ctr=COUNTERS t=SECS
 * TYPE is NEW, UPDATE or DESTROY; PROTO tcp, udp, icmp, icmp6 or the
 * number; COUNTERS "OP/OB/RP/RB" (packets and bytes each way) or "-";
 * SECS the time since subscribing, in tenths.
 * <types> (default 7) is an OR of PC_CT_EV_*.  Exits 0 when the time is
 * up or, if <destroys> is given, once that many DESTROY events came (then
 * 1 if the time runs out first); 1 if reading fails, 2 if subscribing
 * fails.  Usage: ct_events_probe [SECONDS [TYPES [DESTROYS]]] */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "events/ct_events.h"

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t start_ms;
static long destroys;

static void print_event(const struct pc_ct_event *ev, void *userdata)
{
        static const char *const types[] = { [PC_CT_NEW] = "NEW", [PC_CT_UPDATE] = "UPDATE",
                                             [PC_CT_DESTROY] = "DESTROY" };
        char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN], rsrc[INET6_ADDRSTRLEN], proto[8], ctr[96];

        inet_ntop(ev->family, ev->src, src, sizeof(src));
        inet_ntop(ev->family, ev->dst, dst, sizeof(dst));
        inet_ntop(ev->family, ev->reply_src, rsrc, sizeof(rsrc));
        switch (ev->proto) {
        case IPPROTO_TCP: strcpy(proto, "tcp"); break;
        case IPPROTO_UDP: strcpy(proto, "udp"); break;
        case IPPROTO_ICMP: strcpy(proto, "icmp"); break;
        case IPPROTO_ICMPV6: strcpy(proto, "icmp6"); break;
        default: snprintf(proto, sizeof(proto), "%u", ev->proto); break;
        }
        if (ev->type == PC_CT_DESTROY)
                destroys++;
        if (ev->has_counters)
                snprintf(ctr, sizeof(ctr), "%llu/%llu/%llu/%llu", (unsigned long long)ev->orig_packets,
                         (unsigned long long)ev->orig_bytes, (unsigned long long)ev->reply_packets,
                         (unsigned long long)ev->reply_bytes);
        else
                strcpy(ctr, "-");
        printf("%s %s %s %u %s %u st=%u rep=%d as=%d rsrc=%s ctr=%s t=%.1f\n", types[ev->type], proto, src,
               ev->sport, dst, ev->dport, ev->tcp_state, ev->seen_reply, ev->assured, rsrc, ctr,
               (double)(now_ms() - start_ms) / 1000);
        fflush(stdout);
}

int main(int argc, char **argv)
{
        long seconds = argc > 1 ? strtol(argv[1], NULL, 10) : 5;
        unsigned long types = argc > 2 ? strtoul(argv[2], NULL, 0) : 7;
        long want = argc > 3 ? strtol(argv[3], NULL, 10) : -1;
        struct pc_ct_events *c = NULL;
        int64_t deadline;
        int r, rc = 0;

        r = pc_ct_events_open((unsigned)types, &c);
        if (r < 0) {
                fprintf(stderr, "ct_events_probe: Failed to subscribe to conntrack events: %s\n", strerror(-r));
                return 2;
        }
        printf("ready\n");
        fflush(stdout);
        start_ms = now_ms();
        deadline = now_ms() + seconds * 1000;
        while (want < 0 || destroys < want) {
                struct pollfd pfd = { .fd = pc_ct_events_fd(c), .events = POLLIN };
                int64_t left = deadline - now_ms();

                if (left <= 0)
                        break;
                r = poll(&pfd, 1, (int)left);
                if (r == -1 && errno != EINTR) {
                        fprintf(stderr, "ct_events_probe: poll: %s\n", strerror(errno));
                        rc = 1;
                        break;
                }
                if (r <= 0)
                        continue;
                r = pc_ct_events_dispatch(c, print_event, NULL);
                if (r < 0) {
                        fprintf(stderr, "ct_events_probe: Failed to read conntrack events: %s\n", strerror(-r));
                        rc = 1;
                        break;
                }
        }
        if (pc_ct_events_dropped(c) > 0)
                fprintf(stderr, "ct_events_probe: %llu events dropped\n", (unsigned long long)pc_ct_events_dropped(c));
        pc_ct_events_close(c);
        if (rc == 0 && want >= 0 && destroys < want)
                rc = 1;
        return rc;
}
