/* Benchmark: programming the kernel and changing it, at N VPSes.
 *
 * Runs in a network namespace of its own (unshare), so it touches nothing
 * else.  Builds N VPSes at the provider-B site (each with an interface name,
 * an IPv4 and an IPv6 address), then measures:
 *   - the initial atomic programming of all of them, and the kernel memory
 *     it took (Slab + Percpu from /proc/meminfo, before and after);
 *   - --changes incremental changes (an exception granted or revoked on a
 *     random VPS, as `portcullis exception grant` causes): p50, p99, max;
 *   - the baseline in the same run: reprogramming everything for one change,
 *     which is what tools that recompile the whole ruleset do.
 * Usage: bench_nft [--config FILE] [--vps N] [--changes K]
 *                  [--site NAME] [--max-vps N] [--here [--extra-iface IF --extra-addr CIDR...]]
 * --max-vps sets agent.max-vps (the per-VPS sets' size) over the config's.
 * --here programs the current namespace and leaves the table in place (for
 * the forwarding benchmark), with one more VPS behind IF if given. */
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <time.h>

#include "dataplane/dataplane.h"

static double now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* CPU time of this process so far, user and system (the kernel's work on
 * a netlink batch is the sender's), in ms. */
static void cpu_ms(double *user, double *sys)
{
        struct rusage ru;

        getrusage(RUSAGE_SELF, &ru);
        *user = ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3;
        *sys = ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3;
}

static long meminfo_kb(const char *key)
{
        char line[256];
        long v = 0, sum = 0;
        FILE *f = fopen("/proc/meminfo", "re");

        if (f == NULL)
                return 0;
        while (fgets(line, sizeof(line), f) != NULL)
                if (strncmp(line, key, strlen(key)) == 0 && sscanf(line + strlen(key), " %ld", &v) == 1)
                        sum += v;
        fclose(f);
        return sum;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' }, { "vps", required_argument, NULL, 'v' },
                { "changes", required_argument, NULL, 'k' }, { "here", no_argument, NULL, 'H' },
                { "extra-iface", required_argument, NULL, 'x' }, { "extra-addr", required_argument, NULL, 'a' },
                { "site", required_argument, NULL, 's' }, { "extra-mac", required_argument, NULL, 'm' },
                { "max-vps", required_argument, NULL, 'M' },
                { NULL, 0, NULL, 0 },
        };
        const char *config = "etc/portcullis.yaml", *extra = NULL, *site_name = NULL;
        struct pc_prefix extra_addrs[8];
        uint8_t extra_mac[6];
        bool has_extra_mac = false;
        size_t n_extra_addrs = 0;
        bool here = false;
        size_t n_vps = 10000, n_changes = 200;
        long max_vps = -1;
        struct pc_config *cfg = NULL;
        struct pc_model *m = NULL;
        struct pc_dataplane *dp = NULL;
        struct pc_dp_repair rep;
        const struct pc_site *site = NULL;
        double t0, t_program, t_full, *lat, u0, s0, u1, s1;
        long mem0, mem1;
        char err[1024];
        int opt;

        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (opt) {
                case 'c': config = optarg; break;
                case 'v': n_vps = strtoul(optarg, NULL, 10); break;
                case 'k': n_changes = strtoul(optarg, NULL, 10); break;
                case 'H': here = true; break;
                case 'x': extra = optarg; break;
                case 's': site_name = optarg; break;
                case 'M': max_vps = strtol(optarg, NULL, 10); break;
                case 'm':
                        if (pc_parse_mac(optarg, extra_mac) < 0)
                                return 2;
                        has_extra_mac = true;
                        break;
                case 'a':
                        if (n_extra_addrs == 8 || pc_parse_prefix(optarg, false, &extra_addrs[n_extra_addrs++]) < 0) {
                                fprintf(stderr, "bench_nft: bad --extra-addr %s\n", optarg);
                                return 2;
                        }
                        break;
                default: return 2;
                }
        }
        if (!here && unshare(CLONE_NEWNET) == -1) {
                perror("bench_nft: unshare(CLONE_NEWNET) (run as root)");
                return 2;
        }
        if (pc_config_load(config, &cfg, err, sizeof(err)) < 0) {
                fprintf(stderr, "%s\n", err);
                return 2;
        }
        if (max_vps >= 0)
                cfg->agent.max_vps = (unsigned)max_vps;
        for (size_t i = 0; i < cfg->n_sites; i++)
                if (site_name != NULL ? strcmp(cfg->sites[i].name, site_name) == 0 : cfg->sites[i].policy->n_rules > 1)
                        site = &cfg->sites[i];
        if (site == NULL || pc_model_new(cfg, &m) < 0 || pc_dp_open(cfg, &dp) < 0)
                return 2;
        for (size_t i = 0; i < n_vps + (extra != NULL); i++) {
                struct pc_vps *v;
                /* Addresses are set elements only: no traffic uses them. */
                struct pc_prefix p4 = { .family = AF_INET, .len = 32, .bytes = { 192, 0, 2, (uint8_t)i } };
                struct pc_prefix p6 = { .family = AF_INET6, .len = 64,
                                        .bytes = { 0x20, 0x01, 0x0d, 0xb8, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i } };

                pc_vps_new(&v);
                snprintf(v->id, sizeof(v->id), "vps-%zu", i);
                snprintf(v->iface, sizeof(v->iface), "tap%zu", i);
                if (i == n_vps)
                        snprintf(v->iface, sizeof(v->iface), "%s", extra);
                v->site = site;
                if (i < n_vps) {
                        pc_vps_add_addr(v, &p4);
                        pc_vps_add_addr(v, &p6);
                        /* a MAC each, as bridged VPSes need (locally administered) */
                        v->mac[0] = 0x02;
                        v->mac[3] = (uint8_t)(i >> 16);
                        v->mac[4] = (uint8_t)(i >> 8);
                        v->mac[5] = (uint8_t)i;
                        v->has_mac = true;
                } else {
                        for (size_t k = 0; k < n_extra_addrs; k++)
                                pc_vps_add_addr(v, &extra_addrs[k]);
                        if (has_extra_mac) {
                                memcpy(v->mac, extra_mac, 6);
                                v->has_mac = true;
                        }
                }
                if (pc_model_add(m, v) < 0)
                        return 2;
        }

        mem0 = meminfo_kb("Slab:") + meminfo_kb("Percpu:");
        cpu_ms(&u0, &s0);
        t0 = now_ms();
        if (pc_dp_sync_all(dp, m, pc_now(), &rep) < 0) {
                fprintf(stderr, "bench_nft: %s\n", pc_dp_errmsg(dp));
                return 1;
        }
        t_program = now_ms() - t0;
        cpu_ms(&u1, &s1);
        mem1 = meminfo_kb("Slab:") + meminfo_kb("Percpu:");
        if (here) {
                printf("programmed %zu VPSes (%zu elements) in %.1f ms; table left in place\n",
                       pc_model_count(m), rep.elements, t_program);
                pc_dp_close(dp);
                pc_model_free(m);
                pc_config_free(cfg);
                return 0;
        }

        lat = calloc(n_changes, sizeof(*lat));
        srand(42);
        for (size_t k = 0; k < n_changes; k++) {
                struct pc_vps *v = pc_model_at(m, (size_t)rand() % n_vps);
                struct pc_vps before = *v;
                struct pc_exception e = { .id = (int64_t)k + 1 };
                int r;

                snprintf(e.service, sizeof(e.service), "smtp");
                /* Toggle: grant if absent, revoke if present. */
                before.exceptions = NULL;
                before.n_exceptions = 0;
                if (v->n_exceptions > 0) {
                        before.exceptions = v->exceptions;
                        before.n_exceptions = v->n_exceptions;
                        v->exceptions = NULL;
                        v->n_exceptions = 0;
                        t0 = now_ms();
                        r = pc_dp_vps_change(dp, &before, v, pc_now(), NULL);
                        lat[k] = now_ms() - t0;
                        free(before.exceptions);
                } else {
                        pc_vps_add_exception(v, &e);
                        t0 = now_ms();
                        r = pc_dp_vps_change(dp, &before, v, pc_now(), NULL);
                        lat[k] = now_ms() - t0;
                }
                pc_vps_reindex(v);
                if (r < 0) {
                        fprintf(stderr, "bench_nft: change %zu: %s\n", k, pc_dp_errmsg(dp));
                        return 1;
                }
        }
        qsort(lat, n_changes, sizeof(*lat), cmp_double);

        /* Baseline: one change done by rewriting everything. */
        t0 = now_ms();
        if (pc_dp_destroy(dp) < 0 || pc_dp_sync_all(dp, m, pc_now(), &rep) < 0) {
                fprintf(stderr, "bench_nft: %s\n", pc_dp_errmsg(dp));
                return 1;
        }
        t_full = now_ms() - t0;

        printf("vps=%zu elements=%zu changes=%zu\n", n_vps, rep.elements, n_changes);
        printf("initial atomic programming     %10.1f ms, kernel memory +%ld KiB (%.0f B per VPS)\n", t_program,
               mem1 - mem0, n_vps ? (mem1 - mem0) * 1024.0 / n_vps : 0);
        printf("  its CPU time: user %.0f ms, system %.0f ms (the kernel's work on the batch; not its workers')\n",
               u1 - u0, s1 - s0);
        printf("incremental change             p50 %.3f ms  p99 %.3f ms  max %.3f ms\n", lat[n_changes / 2],
               lat[n_changes * 99 / 100], lat[n_changes - 1]);
        printf("baseline: full rewrite per change %.1f ms (ratio to p50 change: %.0fx)\n", t_full,
               t_full / lat[n_changes / 2]);
        free(lat);
        pc_dp_close(dp);
        pc_model_free(m);
        pc_config_free(cfg);
        return 0;
}
