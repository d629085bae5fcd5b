/* Traffic for bench/packet_cost.sh: the established path (one long UDP flow
 * of small datagrams) and the new-connection path (many short TCP
 * connections), each counted by the tool itself.
 *
 *   bench_pkt server PORT
 *       UDP and TCP on [::]:PORT (dual stack), forever.  UDP: a datagram
 *       starting with '?' is answered (it makes the flow a replied one, so
 *       conntrack sees ESTABLISHED for the rest of it); '!' is answered with
 *       the number of '.' datagrams received so far; '.' is counted.  TCP:
 *       every connection is accepted and closed.
 *   bench_pkt udp ADDR PORT SECONDS [SIZE]
 *       one connected UDP socket: a '?' until answered, then SIZE-byte
 *       (default 18: a 64-byte Ethernet frame) '.' datagrams as fast as it
 *       can for SECONDS; prints
 *       "udp sent N received M seconds S pps R user_s U sys_s Y"
 *       (received = the server's count after minus before).
 *   bench_pkt crr ADDR PORT SECONDS
 *       connect, then close with SO_LINGER 0 (a reset: no TIME_WAIT on
 *       either side), as fast as it can for SECONDS; prints
 *       "crr connections N failed F seconds S cps R user_s U sys_s Y".
 * Addresses are the lab's documentation addresses; nothing else is sent. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void cpu_times(double *user, double *sys)
{
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        *user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
        *sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int resolve(const char *addr, const char *port, int type, struct sockaddr_storage *ss, socklen_t *len)
{
        struct addrinfo hints = { .ai_socktype = type, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
        struct addrinfo *ai;
        int rc = getaddrinfo(addr, port, &hints, &ai);
        if (rc != 0) {
                fprintf(stderr, "bench_pkt: %s: %s\n", addr, gai_strerror(rc));
                return -1;
        }
        memcpy(ss, ai->ai_addr, ai->ai_addrlen);
        *len = ai->ai_addrlen;
        freeaddrinfo(ai);
        return 0;
}

static int server(const char *port)
{
        struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT,
                                  .sin6_port = htons((uint16_t)atoi(port)) };
        int off = 0, on = 1;
        int u = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, 0), t = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (u < 0 || t < 0)
                return perror("socket"), 1;
        setsockopt(u, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
        setsockopt(t, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
        setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        int rcvbuf = 4 << 20;
        setsockopt(u, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        if (bind(u, (struct sockaddr *)&a, sizeof a) < 0 || bind(t, (struct sockaddr *)&a, sizeof a) < 0 ||
            listen(t, 4096) < 0)
                return perror("bind/listen"), 1;
        uint64_t count = 0;
        struct pollfd p[2] = { { .fd = u, .events = POLLIN }, { .fd = t, .events = POLLIN } };
        char buf[2048];
        for (;;) {
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return perror("poll"), 1;
                }
                if (p[0].revents & POLLIN) {
                        for (int i = 0; i < 256; i++) {
                                struct sockaddr_storage from;
                                socklen_t fl = sizeof from;
                                ssize_t n = recvfrom(u, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
                                if (n <= 0)
                                        break;
                                if (buf[0] == '.') {
                                        count++;
                                } else if (buf[0] == '?') {
                                        sendto(u, "?", 1, 0, (struct sockaddr *)&from, fl);
                                } else if (buf[0] == '!') {
                                        int l = snprintf(buf, sizeof buf, "!%llu", (unsigned long long)count);
                                        sendto(u, buf, (size_t)l, 0, (struct sockaddr *)&from, fl);
                                }
                        }
                }
                if (p[1].revents & POLLIN) {
                        for (int i = 0; i < 64; i++) {
                                int c = accept(t, NULL, NULL);
                                if (c < 0)
                                        break;
                                close(c);
                        }
                }
        }
}

/* Sends CH until a datagram comes back (up to 3 s); puts its text in OUT. */
static int ask(int s, char ch, char *out, size_t outlen)
{
        for (int i = 0; i < 30; i++) {
                if (send(s, &ch, 1, 0) < 0 && errno != ECONNREFUSED)
                        return -1;
                struct pollfd p = { .fd = s, .events = POLLIN };
                if (poll(&p, 1, 100) == 1) {
                        ssize_t n = recv(s, out, outlen - 1, 0);
                        if (n > 0 && out[0] == ch) {
                                out[n] = 0;
                                return 0;
                        }
                }
        }
        fprintf(stderr, "bench_pkt: no answer to '%c'\n", ch);
        return -1;
}

static int udp(const char *addr, const char *port, double secs, size_t size)
{
        struct sockaddr_storage ss;
        socklen_t len;
        if (resolve(addr, port, SOCK_DGRAM, &ss, &len) < 0)
                return 1;
        int s = socket(ss.ss_family, SOCK_DGRAM, 0);
        if (s < 0 || connect(s, (struct sockaddr *)&ss, len) < 0)
                return perror("udp socket"), 1;
        char reply[64], pkt[2048];
        if (size < 1 || size > sizeof pkt)
                size = 18;
        memset(pkt, '.', size);
        unsigned long long before, after;
        if (ask(s, '?', reply, sizeof reply) < 0 || ask(s, '!', reply, sizeof reply) < 0)
                return 1;
        before = strtoull(reply + 1, NULL, 10);
        double u0, s0, u1, s1;
        cpu_times(&u0, &s0);
        double t0 = now(), t1 = t0, end = t0 + secs;
        uint64_t sent = 0;
        while (t1 < end) {
                for (int i = 0; i < 64; i++)
                        if (send(s, pkt, size, 0) == (ssize_t)size)
                                sent++;
                t1 = now();
        }
        cpu_times(&u1, &s1);
        usleep(200000); /* what is in flight arrives */
        if (ask(s, '!', reply, sizeof reply) < 0)
                return 1;
        after = strtoull(reply + 1, NULL, 10);
        double dt = t1 - t0;
        unsigned long long got = after - before;
        printf("udp sent %llu received %llu seconds %.3f pps %.0f user_s %.3f sys_s %.3f\n",
               (unsigned long long)sent, got, dt, (double)got / dt, u1 - u0, s1 - s0);
        return 0;
}

static int crr(const char *addr, const char *port, double secs)
{
        struct sockaddr_storage ss;
        socklen_t len;
        if (resolve(addr, port, SOCK_STREAM, &ss, &len) < 0)
                return 1;
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        double u0, s0, u1, s1;
        cpu_times(&u0, &s0);
        double t0 = now(), t1 = t0, end = t0 + secs;
        uint64_t ok = 0, failed = 0;
        while (t1 < end) {
                int s = socket(ss.ss_family, SOCK_STREAM, 0);
                if (s < 0)
                        return perror("socket"), 1;
                struct timeval tv = { .tv_sec = 1 };
                setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
                if (connect(s, (struct sockaddr *)&ss, len) == 0)
                        ok++;
                else
                        failed++;
                setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
                close(s);
                t1 = now();
        }
        cpu_times(&u1, &s1);
        double dt = t1 - t0;
        printf("crr connections %llu failed %llu seconds %.3f cps %.0f user_s %.3f sys_s %.3f\n",
               (unsigned long long)ok, (unsigned long long)failed, dt, (double)ok / dt, u1 - u0, s1 - s0);
        return failed > ok;
}

int main(int argc, char **argv)
{
        if (argc == 3 && strcmp(argv[1], "server") == 0)
                return server(argv[2]);
        if ((argc == 5 || argc == 6) && strcmp(argv[1], "udp") == 0)
                return udp(argv[2], argv[3], atof(argv[4]), argc == 6 ? (size_t)atoi(argv[5]) : 18);
        if (argc == 5 && strcmp(argv[1], "crr") == 0)
                return crr(argv[2], argv[3], atof(argv[4]));
        fprintf(stderr, "usage: bench_pkt server PORT | udp ADDR PORT SECONDS [SIZE] | crr ADDR PORT SECONDS\n");
        return 2;
}
