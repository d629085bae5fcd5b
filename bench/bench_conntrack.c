/* Benchmark: ending the flows the policy no longer allows (conntrack purge).
 *
 * Runs in a network namespace of its own (unshare), so it touches nothing
 * else.  Builds V VPSes at provider B's site (each an IPv4 /32 and an IPv6
 * /64), creates N established TCP conntrack entries spread over them
 * (ctnetlink, NFCT_Q_CREATE, one-hour timeouts, documentation addresses
 * only), and measures:
 *   - pc_ct_purge_vps() for one VPS (what the agent does at every `sync`),
 *     over K calls on VPSes in turn: p50, p99, max; what a call deleted is
 *     created again (untimed) so that every call has the same work;
 *   - pc_ct_purge_model() once (what a full sync does);
 *   - two baselines in the same run, interleaved with the K calls: dumping
 *     the whole table with nothing decided or deleted (the floor of reading
 *     the table from user space), and a dump the kernel filters by conntrack
 *     mark down to the VPS's entries (what a per-VPS mark would allow).
 * Entries are, per VPS and in turn, of ten kinds; two must go: the VPS's own
 * connection to tcp/587 (smtp, blocked egress) and the "reply" disguise of
 * it (peer:587 -> VPS).  The other eight (egress to 443, 80, 993, 8080,
 * 22022; ingress to 22, 25, 443) pass.  Every purge must delete exactly the
 * entries of the two kinds in its scope, and the table must end with
 * exactly the others: a mismatch fails the run.
 * Usage: bench_conntrack [--config FILE] [--entries N] [--vps V] [--calls K]
 * V is at most 508 (IPv4 addresses from 192.0.2.0/24 and 198.51.100.0/24;
 * the peers are in 203.0.113.0/24 and 2001:db8:ffff::/48). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataplane/conntrack.h"
#include "policy/config.h"
#include "policy/model.h"

#define MAX_VPS 508
#define N_KINDS 10

/* What an entry is: who opened it, to which port, and whether it must go. */
struct kind {
        bool egress;     /* VPS -> peer; otherwise peer -> VPS */
        uint16_t port;   /* the other side's port if egress, the VPS's if not */
        bool from_port;  /* ingress from <port> to an ephemeral port of the VPS */
        bool doomed;
};

static const struct kind kinds[N_KINDS] = {
        { true, 587, false, true },  /* smtp submission: blocked egress */
        { false, 587, true, true },  /* peer:587 -> VPS:eph, the same in disguise */
        { true, 443, false, false }, { true, 80, false, false },   { true, 993, false, false },
        { true, 8080, false, false }, { true, 22022, false, false }, { false, 22, false, false },
        { false, 25, false, false }, /* a mail server on the VPS may receive */
        { false, 443, false, false },
};

static size_t n_vps;

static double now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

/* Entry <j> belongs to VPS j % V; its rank k = j / V within the VPS gives
 * the family (k % 2) and the kind ((k / 2) % 10). */
static const struct kind *kind_of(size_t j)
{
        return &kinds[(j / n_vps / 2) % N_KINDS];
}

static void vps_addr(size_t i, int family, uint8_t *out)
{
        static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8 };

        if (family == AF_INET) {
                out[0] = i < 254 ? 192 : 198;
                out[1] = i < 254 ? 0 : 51;
                out[2] = i < 254 ? 2 : 100;
                out[3] = (uint8_t)(i < 254 ? i + 1 : i - 253);
        } else {
                memcpy(out, v6, 16);
                out[6] = (uint8_t)(i >> 8);
                out[7] = (uint8_t)i;
                out[15] = 1;
        }
}

/* Fills <ct> with entry <j>: an established TCP flow of an hour. */
static void make_entry(size_t j, struct nf_conntrack *ct)
{
        size_t v = j % n_vps, k = j / n_vps, pair = k / 2;
        int family = k % 2 == 0 ? AF_INET : AF_INET6;
        const struct kind *kd = kind_of(j);
        uint8_t vps[16] = { 0 }, peer[16] = { 0 };
        uint16_t eph = (uint16_t)(32768 + pair / 254), vps_port, peer_port, sport, dport;
        const uint8_t *src, *dst;

        vps_addr(v, family, vps);
        if (family == AF_INET) {
                peer[0] = 203, peer[1] = 0, peer[2] = 113, peer[3] = (uint8_t)(pair % 254 + 1);
        } else {
                static const uint8_t p6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff };

                memcpy(peer, p6, 16);
                peer[15] = (uint8_t)(pair % 254 + 1);
        }
        vps_port = kd->egress || kd->from_port ? eph : kd->port;
        peer_port = kd->egress || kd->from_port ? kd->port : eph;
        src = kd->egress ? vps : peer;
        dst = kd->egress ? peer : vps;

        /* The kernel creates only with both tuples; no NAT: one mirrors the other. */
        nfct_set_attr_u8(ct, ATTR_L3PROTO, (uint8_t)family);
        nfct_set_attr_u8(ct, ATTR_REPL_L3PROTO, (uint8_t)family);
        if (family == AF_INET) {
                nfct_set_attr(ct, ATTR_ORIG_IPV4_SRC, src);
                nfct_set_attr(ct, ATTR_ORIG_IPV4_DST, dst);
                nfct_set_attr(ct, ATTR_REPL_IPV4_SRC, dst);
                nfct_set_attr(ct, ATTR_REPL_IPV4_DST, src);
        } else {
                nfct_set_attr(ct, ATTR_ORIG_IPV6_SRC, src);
                nfct_set_attr(ct, ATTR_ORIG_IPV6_DST, dst);
                nfct_set_attr(ct, ATTR_REPL_IPV6_SRC, dst);
                nfct_set_attr(ct, ATTR_REPL_IPV6_DST, src);
        }
        sport = htons(kd->egress ? vps_port : peer_port);
        dport = htons(kd->egress ? peer_port : vps_port);
        nfct_set_attr_u8(ct, ATTR_L4PROTO, IPPROTO_TCP);
        nfct_set_attr_u8(ct, ATTR_REPL_L4PROTO, IPPROTO_TCP);
        nfct_set_attr_u16(ct, ATTR_ORIG_PORT_SRC, sport);
        nfct_set_attr_u16(ct, ATTR_ORIG_PORT_DST, dport);
        nfct_set_attr_u16(ct, ATTR_REPL_PORT_SRC, dport);
        nfct_set_attr_u16(ct, ATTR_REPL_PORT_DST, sport);
        nfct_set_attr_u8(ct, ATTR_TCP_STATE, TCP_CONNTRACK_ESTABLISHED);
        nfct_set_attr_u32(ct, ATTR_STATUS, IPS_SEEN_REPLY | IPS_ASSURED);
        nfct_set_attr_u32(ct, ATTR_TIMEOUT, 3600);
        nfct_set_attr_u32(ct, ATTR_MARK, (uint32_t)v + 1); /* for the mark baseline only */
}

/* Creates the entries j = <first>, first + <step>... below <n> (all of
 * them, or only the doomed ones if <doomed_only>).  0 or a negative errno. */
static int create(struct nfct_handle *h, size_t first, size_t step, size_t n, bool doomed_only)
{
        struct nf_conntrack *ct = nfct_new();

        if (ct == NULL)
                return -ENOMEM;
        for (size_t j = first; j < n; j += step) {
                if (doomed_only && !kind_of(j)->doomed)
                        continue;
                make_entry(j, ct);
                if (nfct_query(h, NFCT_Q_CREATE, ct) == -1) {
                        int r = -errno;

                        fprintf(stderr, "bench_conntrack: creating entry %zu: %s\n", j, strerror(errno));
                        nfct_destroy(ct);
                        return r;
                }
        }
        nfct_destroy(ct);
        return 0;
}

/* Entries j = <first>, first + <step>... below <n> that must go. */
static size_t expected(size_t first, size_t step, size_t n)
{
        size_t e = 0;

        for (size_t j = first; j < n; j += step)
                e += kind_of(j)->doomed;
        return e;
}

static int count_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *data)
{
        (void)type;
        (void)ct;
        ++*(size_t *)data;
        return NFCT_CB_CONTINUE;
}

/* Dumps the table (filtered by mark if <mark> is not 0) and counts the
 * entries received; the time it takes in ms, or -1. */
static double dump(struct nfct_handle *h, uint32_t mark, size_t *ret_count)
{
        uint32_t family = AF_UNSPEC;
        struct nfct_filter_dump *f = NULL;
        double t0;
        int r;

        *ret_count = 0;
        nfct_callback_register(h, NFCT_T_ALL, count_cb, ret_count);
        if (mark != 0) {
                f = nfct_filter_dump_create();
                if (f == NULL)
                        return -1;
                nfct_filter_dump_set_attr(f, NFCT_FILTER_DUMP_MARK,
                                          &(struct nfct_filter_dump_mark){ .val = mark, .mask = 0xffffffff });
        }
        t0 = now_ms();
        r = mark != 0 ? nfct_query(h, NFCT_Q_DUMP_FILTER, f) : nfct_query(h, NFCT_Q_DUMP, &family);
        t0 = now_ms() - t0;
        nfct_callback_unregister(h);
        if (f != NULL)
                nfct_filter_dump_destroy(f);
        return r == -1 ? -1 : t0;
}

static long read_long(const char *path)
{
        long v = -1;
        FILE *f = fopen(path, "re");

        if (f != NULL) {
                if (fscanf(f, "%ld", &v) != 1)
                        v = -1;
                fclose(f);
        }
        return v;
}

static void pct(const char *label, double *lat, size_t n, const char *tail)
{
        qsort(lat, n, sizeof(*lat), cmp_double);
        printf("%-44s p50 %8.2f ms  p99 %8.2f ms  max %8.2f ms%s\n", label, lat[n / 2], lat[n * 99 / 100],
               lat[n - 1], tail);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' }, { "entries", required_argument, NULL, 'n' },
                { "vps", required_argument, NULL, 'v' },    { "calls", required_argument, NULL, 'k' },
                { NULL, 0, NULL, 0 },
        };
        const char *config = "etc/portcullis.yaml";
        size_t n_entries = 10000, n_calls = 20, bad = 0;
        struct pc_config *cfg = NULL;
        struct pc_model *m = NULL;
        const struct pc_site *site = NULL;
        struct nfct_handle *h;
        struct pc_ct_purge pg;
        double t0, t_create, t_model, *lat, *lat_dump, *lat_mark;
        long ct_max, ct_count;
        char err[1024];
        int opt;

        n_vps = 100;
        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (opt) {
                case 'c': config = optarg; break;
                case 'n': n_entries = strtoul(optarg, NULL, 10); break;
                case 'v': n_vps = strtoul(optarg, NULL, 10); break;
                case 'k': n_calls = strtoul(optarg, NULL, 10); break;
                default: return 2;
                }
        }
        if (n_vps == 0 || n_vps > MAX_VPS || n_calls == 0 || n_entries < n_vps * 2 * N_KINDS) {
                fprintf(stderr, "bench_conntrack: need 1 <= --vps <= %d, --calls >= 1, --entries >= 20 per VPS\n",
                        MAX_VPS);
                return 2;
        }
        if (unshare(CLONE_NEWNET) == -1) {
                perror("bench_conntrack: unshare(CLONE_NEWNET) (run as root)");
                return 2;
        }
        /* Each namespace counts its own entries against nf_conntrack_max,
         * which a child namespace can read but not raise. */
        ct_max = read_long("/proc/sys/net/netfilter/nf_conntrack_max");
        if (ct_max < 0) {
                fprintf(stderr, "bench_conntrack: no conntrack in this kernel (nf_conntrack_max unreadable)\n");
                return 2;
        }
        if (ct_max > 0 && (size_t)ct_max < n_entries) {
                fprintf(stderr, "bench_conntrack: nf_conntrack_max is %ld in the new namespace, below --entries %zu "
                                "(raise it in the initial namespace)\n", ct_max, n_entries);
                return 2;
        }
        if (pc_config_load(config, &cfg, err, sizeof(err)) < 0) {
                fprintf(stderr, "%s\n", err);
                return 2;
        }
        for (size_t i = 0; i < cfg->n_sites; i++)
                if (strcmp(cfg->sites[i].name, "milano") == 0)
                        site = &cfg->sites[i];
        if (site == NULL || pc_model_new(cfg, &m) < 0) {
                fprintf(stderr, "bench_conntrack: no site 'milano' in %s\n", config);
                return 2;
        }
        for (size_t i = 0; i < n_vps; i++) {
                struct pc_vps *v;
                struct pc_prefix p4 = { .family = AF_INET, .len = 32 };
                struct pc_prefix p6 = { .family = AF_INET6, .len = 64 };

                vps_addr(i, AF_INET, p4.bytes);
                vps_addr(i, AF_INET6, p6.bytes);
                p6.bytes[15] = 0;
                if (pc_vps_new(&v) < 0)
                        return 2;
                snprintf(v->id, sizeof(v->id), "vps-%zu", i);
                snprintf(v->iface, sizeof(v->iface), "tap%zu", i);
                v->site = site;
                if (pc_vps_add_addr(v, &p4) < 0 || pc_vps_add_addr(v, &p6) < 0 || pc_model_add(m, v) < 0)
                        return 2;
        }

        h = nfct_open(CONNTRACK, 0);
        if (h == NULL) {
                perror("bench_conntrack: nfct_open");
                return 2;
        }
        t0 = now_ms();
        if (create(h, 0, 1, n_entries, false) < 0)
                return 1;
        t_create = now_ms() - t0;
        ct_count = read_long("/proc/sys/net/netfilter/nf_conntrack_count");
        printf("entries=%zu vps=%zu calls=%zu; in this namespace nf_conntrack_max=%ld (read-only here), "
               "buckets=%ld (shared by all namespaces)\n",
               n_entries, n_vps, n_calls, ct_max, read_long("/proc/sys/net/netfilter/nf_conntrack_buckets"));
        printf("created %zu entries in %.0f ms (%.1f us each); nf_conntrack_count %ld\n", n_entries, t_create,
               t_create * 1e3 / n_entries, ct_count);
        if (ct_count != (long)n_entries) {
                fprintf(stderr, "bench_conntrack: the namespace holds %ld entries, not %zu\n", ct_count, n_entries);
                return 1;
        }

        lat = calloc(n_calls, sizeof(*lat));
        lat_dump = calloc(n_calls, sizeof(*lat_dump));
        lat_mark = calloc(n_calls, sizeof(*lat_mark));
        if (lat == NULL || lat_dump == NULL || lat_mark == NULL)
                return 2;
        for (size_t c = 0; c < n_calls; c++) {
                size_t v = c % n_vps, want = expected(v, n_vps, n_entries), all = 0, mine = 0;
                size_t in_vps = (n_entries - v + n_vps - 1) / n_vps;

                lat_dump[c] = dump(h, 0, &all);
                lat_mark[c] = dump(h, (uint32_t)v + 1, &mine);
                if (lat_dump[c] < 0 || lat_mark[c] < 0 || all != n_entries || mine != in_vps) {
                        fprintf(stderr, "bench_conntrack: dump: %zu entries (want %zu), by mark %zu (want %zu)\n",
                                all, n_entries, mine, in_vps);
                        return 1;
                }
                t0 = now_ms();
                if (pc_ct_purge_vps(pc_model_at(m, v), pc_now(), &pg, err, sizeof(err)) < 0) {
                        fprintf(stderr, "bench_conntrack: %s\n", err);
                        return 1;
                }
                lat[c] = now_ms() - t0;
                if (pg.deleted != want || pg.examined != in_vps) {
                        fprintf(stderr, "bench_conntrack: purge of vps-%zu examined %zu (want %zu), deleted %zu (want %zu)\n",
                                v, pg.examined, in_vps, pg.deleted, want);
                        bad++;
                }
                if (create(h, v, n_vps, n_entries, true) < 0)
                        return 1;
        }
        pct("pc_ct_purge_vps (one VPS, whole table read)", lat, n_calls, "");
        printf("%44s (the last examined %zu, deleted %zu: %s)\n", "", pg.examined, pg.deleted,
               bad == 0 ? "every call as expected" : "MISMATCH");
        pct("baseline: dump only, nothing decided", lat_dump, n_calls, "");
        pct("baseline: dump the kernel filters by mark", lat_mark, n_calls, "");
        printf("ratio purge_vps / dump only: %.2fx; dump by mark / dump only: %.2fx\n",
               lat[n_calls / 2] / lat_dump[n_calls / 2], lat_mark[n_calls / 2] / lat_dump[n_calls / 2]);

        t0 = now_ms();
        if (pc_ct_purge_model(m, pc_now(), &pg, err, sizeof(err)) < 0) {
                fprintf(stderr, "bench_conntrack: %s\n", err);
                return 1;
        }
        t_model = now_ms() - t0;
        {
                size_t want = expected(0, 1, n_entries);

                ct_count = read_long("/proc/sys/net/netfilter/nf_conntrack_count");
                printf("pc_ct_purge_model (all VPSes, one pass)      %8.2f ms  examined %zu, deleted %zu "
                       "(expected %zu); %ld entries left (expected %zu)\n",
                       t_model, pg.examined, pg.deleted, want, ct_count, n_entries - want);
                if (pg.examined != n_entries || pg.deleted != want || ct_count != (long)(n_entries - want))
                        bad++;
        }
        free(lat);
        free(lat_dump);
        free(lat_mark);
        nfct_close(h);
        pc_model_free(m);
        pc_config_free(cfg);
        if (bad > 0) {
                fprintf(stderr, "bench_conntrack: %zu mismatch(es) between what was deleted and what should have been\n",
                        bad);
                return 1;
        }
        printf("bench_conntrack: ok\n");
        return 0;
}
