/* Benchmark: the port-scan detector (detect/scan) fed synthetic conntrack
 * events, as the agent would: every connection a VPS opens (OPENED), then
 * its answer or refusal, then conntrack forgetting it (CLOSED); a tick
 * every 100 ms of simulated time and now and then a VPS held.
 *
 * Usage: bench_scan [--vps N] [--events E] [--rate R] [--scanners PCT]
 * N VPSes (default 10,000), E events (default 3,000,000) at R events a
 * second of simulated time (default 200,000), PCT percent of the VPSes
 * scanning (default 1).  Benign VPSes open 90% of their connections to a
 * working set of 50 destinations and 10% to new ones, 95% of which answer
 * within 50 ms; scanners probe new destinations (vertical, horizontal or
 * at random), 80% of which never answer.  The events are generated and
 * sorted by time first; only their replay is timed, on one core.  Prints
 * events/s, the findings, and the memory held: in all, by VPS and by
 * destination remembered (the last two measured apart, pool slack
 * included).  Exits 1 if no scanner is found. */
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "detect/scan.h"

struct gev {
        int64_t t;
        uint32_t seq;
        uint32_t vps;
        uint32_t host;
        uint16_t port;
        uint8_t o;
};

struct counts {
        size_t kind[PC_SCAN_KINDS];
        size_t benign_flagged, scanners_flagged;
        unsigned char *flagged; /* per VPS */
        size_t scanner_every;
};

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_ev(const void *a, const void *b)
{
        const struct gev *x = a, *y = b;

        if (x->t != y->t)
                return x->t < y->t ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void vps_name(char *buf, size_t sz, uint32_t v)
{
        snprintf(buf, sz, "vps-%u", v);
}

static void on_finding(void *ud, const struct pc_scan_finding *f)
{
        struct counts *c = ud;
        uint32_t v = (uint32_t)strtoul(f->vps + 4, NULL, 10);

        c->kind[f->kind]++;
        if ((f->kind != PC_SCAN_FAST && f->kind != PC_SCAN_SLOW) || c->flagged[v])
                return;
        c->flagged[v] = 1;
        if (v % c->scanner_every == 0)
                c->scanners_flagged++;
        else
                c->benign_flagged++;
}

static void contact(struct pc_contact *c, const char *id, uint32_t host, uint16_t port)
{
        memset(c, 0, sizeof(*c));
        c->vps = id;
        c->family = AF_INET;
        c->proto = IPPROTO_TCP;
        c->port = port;
        memcpy(c->addr, &host, 4);
}

/* Marginal bytes per VPS and per destination: <n> VPSes with one
 * answered destination, then with <k> more each. */
static void marginal(size_t n, size_t k, double *per_vps, double *per_dest)
{
        struct pc_scan_params p;
        struct pc_scan *s;
        struct pc_contact c;
        char id[32];
        size_t m0, m1 = 0, m2;

        pc_scan_params_default(&p);
        if (pc_scan_new(&p, &s) < 0)
                exit(1);
        m0 = pc_scan_memory(s);
        for (size_t j = 0; j <= k; j++) {
                if (j == 1)
                        m1 = pc_scan_memory(s);
                for (uint32_t v = 0; v < n; v++) {
                        vps_name(id, sizeof(id), v);
                        contact(&c, id, (uint32_t)(j + 1), 443);
                        (void)pc_scan_event(s, &c, PC_CONTACT_OPENED, 0, NULL, NULL);
                        (void)pc_scan_event(s, &c, PC_CONTACT_ANSWERED, 0, NULL, NULL);
                }
        }
        m2 = pc_scan_memory(s);
        *per_dest = (double)(m2 - m1) / (double)(n * k);
        *per_vps = (double)(m1 - m0) / (double)n - *per_dest;
        pc_scan_free(s);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "vps", required_argument, NULL, 'v' },
                { "events", required_argument, NULL, 'e' },
                { "rate", required_argument, NULL, 'r' },
                { "scanners", required_argument, NULL, 's' },
                { NULL, 0, NULL, 0 },
        };
        size_t n_vps = 10000, n_ev = 3000000, rate = 200000, pct = 1, n = 0, cap, helds = 0;
        struct counts cnt = { 0 };
        struct pc_scan_params p;
        struct pc_scan *s;
        struct gev *ev;
        int64_t dur, next_tick = 100;
        uint32_t *seq_of;
        double t0, dt, per_vps, per_dest;
        size_t peak_mem = 0, peak_vps = 0, peak_con = 0;
        int opt;

        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (opt) {
                case 'v': n_vps = strtoul(optarg, NULL, 10); break;
                case 'e': n_ev = strtoul(optarg, NULL, 10); break;
                case 'r': rate = strtoul(optarg, NULL, 10); break;
                case 's': pct = strtoul(optarg, NULL, 10); break;
                default:
                        fprintf(stderr, "usage: bench_scan [--vps N] [--events E] [--rate R] [--scanners PCT]\n");
                        return 2;
                }
        }
        if (n_vps == 0 || n_ev == 0 || rate == 0 || pct == 0 || pct > 100)
                return 2;
        printf("$");
        for (int i = 0; i < argc; i++)
                printf(" %s", argv[i]);
        printf("\n");
        cnt.scanner_every = 100 / pct;
        cnt.flagged = calloc(n_vps, 1);
        seq_of = calloc(n_vps, sizeof(*seq_of));
        cap = n_ev + 4;
        ev = calloc(cap, sizeof(*ev));
        if (ev == NULL || cnt.flagged == NULL || seq_of == NULL)
                return 1;
        dur = (int64_t)(n_ev * 1000 / rate);
        /* Connections until E events: a scanner's a tenth of the time. */
        while (n + 3 <= n_ev) {
                bool scanner = next() % 10 == 0;
                size_t n_scan = (n_vps + cnt.scanner_every - 1) / cnt.scanner_every;
                uint32_t v = scanner ? (uint32_t)(next() % n_scan * cnt.scanner_every)
                                     : (uint32_t)(next() % n_vps);
                int64_t t = (int64_t)(next() % (uint64_t)dur);
                uint32_t host;
                uint16_t port;
                uint64_t r = next() % 100;

                if (v % cnt.scanner_every == 0) {
                        uint32_t k = seq_of[v]++;

                        switch (v / cnt.scanner_every % 3) {
                        case 0: host = 0x0a000000u + v; port = (uint16_t)(1 + k % 65535); break; /* vertical */
                        case 1: host = 0x0b000000u + k; port = 22; break;                          /* horizontal */
                        default: host = (uint32_t)next(); port = (uint16_t)next(); break;
                        }
                        ev[n++] = (struct gev){ .t = t, .vps = v, .host = host, .port = port, .o = PC_CONTACT_OPENED };
                        if (r < 15)
                                ev[n++] = (struct gev){ .t = t + 1, .vps = v, .host = host, .port = port,
                                                        .o = PC_CONTACT_REFUSED };
                        else if (r < 20)
                                ev[n++] = (struct gev){ .t = t + 5, .vps = v, .host = host, .port = port,
                                                        .o = PC_CONTACT_ANSWERED };
                        continue;
                }
                if (next() % 10 != 0) {
                        host = 0x0c000000u + (uint32_t)(v * 64 + next() % 50);
                        port = 443;
                } else {
                        host = (uint32_t)next();
                        port = next() % 2 ? 443 : 80;
                }
                ev[n++] = (struct gev){ .t = t, .vps = v, .host = host, .port = port, .o = PC_CONTACT_OPENED };
                if (r < 95)
                        ev[n++] = (struct gev){ .t = t + 1 + (int64_t)(next() % 50), .vps = v, .host = host,
                                                .port = port, .o = PC_CONTACT_ANSWERED };
                else
                        ev[n++] = (struct gev){ .t = t + 1 + (int64_t)(next() % 5), .vps = v, .host = host,
                                                .port = port, .o = PC_CONTACT_REFUSED };
                ev[n++] = (struct gev){ .t = t + 1000 + (int64_t)(next() % 30000), .vps = v, .host = host,
                                        .port = port, .o = PC_CONTACT_CLOSED };
        }
        for (size_t i = 0; i < n; i++)
                ev[i].seq = (uint32_t)i;
        qsort(ev, n, sizeof(*ev), cmp_ev);

        pc_scan_params_default(&p);
        if (pc_scan_new(&p, &s) < 0)
                return 1;
        t0 = now_s();
        for (size_t i = 0; i < n; i++) {
                struct pc_contact c;
                char id[32];

                while (ev[i].t >= next_tick) {
                        pc_scan_tick(s, next_tick, on_finding, &cnt);
                        next_tick += 100;
                }
                vps_name(id, sizeof(id), ev[i].vps);
                contact(&c, id, ev[i].host, ev[i].port);
                if (pc_scan_event(s, &c, (enum pc_contact_outcome)ev[i].o, ev[i].t, on_finding, &cnt) < 0)
                        return 1;
                if (i % 10000 == 0) {
                        vps_name(id, sizeof(id), (uint32_t)(next() % n_vps));
                        (void)pc_scan_held(s, id, ev[i].t, on_finding, &cnt);
                        helds++;
                }
                if (i % 65536 == 0 && pc_scan_memory(s) > peak_mem) {
                        peak_mem = pc_scan_memory(s);
                        peak_vps = pc_scan_vps_count(s);
                        peak_con = pc_scan_contact_count(s);
                }
        }
        dt = now_s() - t0;
        if (pc_scan_memory(s) > peak_mem) {
                peak_mem = pc_scan_memory(s);
                peak_vps = pc_scan_vps_count(s);
                peak_con = pc_scan_contact_count(s);
        }
        marginal(n_vps, 50, &per_vps, &per_dest);
        printf("scan detector, %zu VPSes (%zu%% scanning), %zu events over %.1f s simulated, %zu helds:\n", n_vps,
               pct, n, dur / 1e3, helds);
        printf("  replay %.3f s on one core: %.0f events/s (%.0f ns/event)\n", dt, n / dt, dt * 1e9 / n);
        printf("  findings: %zu FAST, %zu SLOW, %zu RELEASE; scanners flagged %zu of %zu, benign VPSes flagged %zu\n",
               cnt.kind[PC_SCAN_FAST], cnt.kind[PC_SCAN_SLOW], cnt.kind[PC_SCAN_RELEASE], cnt.scanners_flagged,
               (n_vps + cnt.scanner_every - 1) / cnt.scanner_every, cnt.benign_flagged);
        printf("  memory at peak: %.1f MB for %zu VPSes and %zu destinations (bound with these parameters: %.0f MB)\n",
               peak_mem / 1e6, peak_vps, peak_con, pc_scan_memory_max(&p) / 1e6);
        printf("  bytes per VPS tracked %.0f, per destination remembered %.0f (measured apart); at peak, all bytes "
               "over destinations %.0f (pools grow by doubling)\n",
               per_vps, per_dest, (double)peak_mem / (double)(peak_con > 0 ? peak_con : 1));
        pc_scan_free(s);
        free(ev);
        free(seq_of);
        free(cnt.flagged);
        return cnt.scanners_flagged == 0;
}
