/* Reads NFLOG group <group> (default 7) and prints one line per packet:
 * "PREFIX IFACE FAMILY SRC DST PROTO LEN" ("-" for an empty field), after a
 * first line "ready" once the group is bound.  Exits 0 after <count>
 * packets (default 2), 1 if <seconds> (default 3) pass first, 2 if the group
 * cannot be opened.  Usage: nflog_probe [GROUP [COUNT [SECONDS]]] */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "events/nflog.h"

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void print_packet(const struct pc_nflog_packet *p, void *userdata)
{
        char src[INET6_ADDRSTRLEN] = "-", dst[INET6_ADDRSTRLEN] = "-";
        const char *fam = "0";

        if (p->family == AF_INET || p->family == AF_INET6) {
                inet_ntop(p->family, p->src, src, sizeof(src));
                inet_ntop(p->family, p->dst, dst, sizeof(dst));
                fam = p->family == AF_INET ? "ipv4" : "ipv6";
        }
        printf("%s %s %s %s %s %u %zu\n", p->prefix[0] != '\0' ? p->prefix : "-",
               p->iface[0] != '\0' ? p->iface : "-", fam, src, dst, p->l4proto, p->len);
        fflush(stdout);
}

int main(int argc, char **argv)
{
        unsigned long group = argc > 1 ? strtoul(argv[1], NULL, 10) : 7;
        long want = argc > 2 ? strtol(argv[2], NULL, 10) : 2;
        long seconds = argc > 3 ? strtol(argv[3], NULL, 10) : 3;
        struct pc_nflog *n = NULL;
        int64_t deadline;
        long seen = 0;
        int r;

        if (group > UINT16_MAX) {
                fprintf(stderr, "nflog_probe: bad group %s\n", argv[1]);
                return 2;
        }
        r = pc_nflog_open((uint16_t)group, &n);
        if (r < 0) {
                fprintf(stderr, "nflog_probe: Failed to open NFLOG group %lu: %s\n", group, strerror(-r));
                return 2;
        }
        printf("ready\n");
        fflush(stdout);
        deadline = now_ms() + seconds * 1000;
        while (seen < want) {
                struct pollfd pfd = { .fd = pc_nflog_fd(n), .events = POLLIN };
                int64_t left = deadline - now_ms();

                if (left <= 0)
                        break;
                r = poll(&pfd, 1, (int)left);
                if (r == -1 && errno != EINTR) {
                        fprintf(stderr, "nflog_probe: poll: %s\n", strerror(errno));
                        break;
                }
                if (r <= 0)
                        continue;
                r = pc_nflog_dispatch(n, print_packet, NULL);
                if (r < 0) {
                        fprintf(stderr, "nflog_probe: Failed to read NFLOG group %lu: %s\n", group, strerror(-r));
                        break;
                }
                seen += r;
        }
        if (pc_nflog_dropped(n) > 0)
                fprintf(stderr, "nflog_probe: %llu packets dropped\n", (unsigned long long)pc_nflog_dropped(n));
        pc_nflog_close(n);
        return seen >= want ? 0 : 1;
}
