/* Benchmark: registering one VPS into a fleet of N (two addresses each),
 * the way `vps add` does it, against the way it did before the
 * operations layer: load the whole model and compare the new addresses
 * with every VPS's.  Both are timed per registration (open the store,
 * check, write), R registrations each, in the same database.
 *
 * Usage: bench_vps_add [--config FILE] [--vps N] [--runs R]
 * The database is built in a temporary folder (setup, not timed) and
 * removed at the end.  Exits 1 if an overlap goes unnoticed. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ops/ops.h"

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Binds address <text> of <id> to <a> (vps_id, family, prefix, len, net)
 * and inserts it. */
static int insert_addr(sqlite3_stmt *a, const char *id, const char *text)
{
        struct pc_prefix p;

        if (pc_parse_prefix(text, false, &p) < 0)
                return -1;
        sqlite3_bind_text(a, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(a, 2, p.family == AF_INET ? 4 : 6);
        sqlite3_bind_text(a, 3, text, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(a, 4, p.len);
        sqlite3_bind_blob(a, 5, p.bytes, p.family == AF_INET ? 4 : 16, SQLITE_TRANSIENT);
        if (sqlite3_step(a) != SQLITE_DONE)
                return -1;
        sqlite3_reset(a);
        return 0;
}

/* Bulk-writes the fleet with plain SQL in one transaction: setup only. */
static int populate(const char *path, const struct pc_config *cfg, size_t n_vps)
{
        sqlite3 *db;
        sqlite3_stmt *v = NULL, *a = NULL;
        int r = -1;

        if (sqlite3_open(path, &db) != SQLITE_OK || sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
                goto out;
        sqlite3_prepare_v2(db, "INSERT INTO vps (id, owner, lang, site, iface, mac, created) VALUES (?, ?, 'en', ?, ?, NULL, 0)", -1, &v, NULL);
        sqlite3_prepare_v2(db, "INSERT INTO vps_address (vps_id, family, prefix, len, net) VALUES (?, ?, ?, ?, ?)", -1, &a, NULL);
        for (size_t i = 0; i < n_vps; i++) {
                char id[32], owner[64], iface[16], v4[32], v6[64];

                snprintf(id, sizeof(id), "vps-%zu", i);
                snprintf(owner, sizeof(owner), "owner%zu@example.net", i);
                snprintf(iface, sizeof(iface), "tap%zu", i);
                snprintf(v4, sizeof(v4), "10.%zu.%zu.%zu/32", (i >> 16) & 255, (i >> 8) & 255, i & 255);
                snprintf(v6, sizeof(v6), "2001:db8:%zx:%zx::/64", (i >> 16) & 0xffff, i & 0xffff);
                sqlite3_bind_text(v, 1, id, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(v, 2, owner, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(v, 3, cfg->sites[i % cfg->n_sites].name, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(v, 4, iface, -1, SQLITE_TRANSIENT);
                if (sqlite3_step(v) != SQLITE_DONE)
                        goto out;
                sqlite3_reset(v);
                if (insert_addr(a, id, v4) < 0 || insert_addr(a, id, v6) < 0)
                        goto out;
        }
        r = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
out:
        if (r < 0)
                fprintf(stderr, "bench_vps_add: populate: %s\n", sqlite3_errmsg(db));
        sqlite3_finalize(v);
        sqlite3_finalize(a);
        sqlite3_close(db);
        return r;
}

/* The check `vps add` made before: the whole model, every VPS compared. */
static int whole_model_overlap(struct pc_store *s, const struct pc_config *cfg, const struct pc_prefix *p)
{
        struct pc_model *m = NULL;
        int found = 0;

        if (pc_model_new(cfg, &m) < 0 || pc_store_load(s, m) < 0) {
                pc_model_free(m);
                return -1;
        }
        for (size_t i = 0; i < pc_model_count(m) && !found; i++) {
                const struct pc_vps *o = pc_model_at(m, i);

                for (size_t b = 0; b < o->n_addrs && !found; b++)
                        found = pc_prefix_overlaps(p, &o->addrs[b]);
        }
        pc_model_free(m);
        return found;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

/* Times <runs> registrations of new VPSes ("<tag>-K", 192.0.2.K or
 * 198.51.100.K) through ops, or with the old whole-model check first;
 * prints p50 and the worst. */
static int time_adds(const char *url, const struct pc_config *cfg, size_t runs, bool old, double *ret_p50)
{
        static const struct pc_ops_actor who = { .principal = "bench", .role = PC_ROLE_ADMIN };
        double *t = calloc(runs, sizeof(*t));
        char err[1024];

        for (size_t k = 0; k < runs; k++) {
                char id[32], iface[16], addr[32];
                struct pc_prefix p;
                struct pc_vps_spec spec = { .id = id, .owner = "bench@example.net", .iface = iface, .addrs = &p,
                                            .n_addrs = 1 };
                struct pc_store *s = NULL;
                struct pc_ops_error e;
                double t0 = now_s();

                snprintf(id, sizeof(id), "%s-%zu", old ? "old" : "new", k);
                snprintf(iface, sizeof(iface), "%s%zu", old ? "old" : "new", k);
                snprintf(addr, sizeof(addr), "%s.%zu", old ? "192.0.2" : "198.51.100", k + 1);
                pc_parse_prefix(addr, false, &p);
                if (pc_store_open(url, &s, err, sizeof(err)) < 0) {
                        fprintf(stderr, "bench_vps_add: %s\n", err);
                        return -1;
                }
                if (old && whole_model_overlap(s, cfg, &p) != 0) {
                        fprintf(stderr, "bench_vps_add: the whole-model check failed\n");
                        return -1;
                }
                if (pc_ops_vps_register(&(struct pc_ops){ .cfg = cfg, .store = s }, &who, &spec, NULL, NULL, &e) < 0) {
                        fprintf(stderr, "bench_vps_add: %s: %s\n", id, e.message);
                        return -1;
                }
                pc_store_close(s);
                t[k] = now_s() - t0;
        }
        qsort(t, runs, sizeof(*t), cmp_double);
        printf("  %-34s p50 %8.3f ms   max %8.3f ms\n",
               old ? "whole model + scan (before)" : "pc_ops_vps_register (indexed)", t[runs / 2] * 1e3,
               t[runs - 1] * 1e3);
        *ret_p50 = t[runs / 2];
        free(t);
        return 0;
}

/* An overlap deep in the fleet is found by the indexed check. */
static int overlap_found(const char *url, const struct pc_config *cfg, size_t n_vps)
{
        static const struct pc_ops_actor who = { .principal = "bench", .role = PC_ROLE_ADMIN };
        char addr[64], err[1024];
        size_t i = n_vps - 1;
        struct pc_prefix p;
        struct pc_vps_spec spec = { .id = "overlap", .owner = "bench@example.net", .iface = "overlap0", .addrs = &p,
                                    .n_addrs = 1 };
        struct pc_store *s = NULL;
        struct pc_ops_error e;
        int r;

        snprintf(addr, sizeof(addr), "2001:db8:%zx:%zx::1", (i >> 16) & 0xffff, i & 0xffff);
        pc_parse_prefix(addr, false, &p);
        if (pc_store_open(url, &s, err, sizeof(err)) < 0)
                return -1;
        r = pc_ops_vps_register(&(struct pc_ops){ .cfg = cfg, .store = s }, &who, &spec, NULL, NULL, &e);
        pc_store_close(s);
        if (r >= 0 || e.code != PC_OPS_ECONFLICT) {
                fprintf(stderr, "bench_vps_add: %s inside vps-%zu's /64 was not refused\n", addr, i);
                return -1;
        }
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "vps", required_argument, NULL, 'v' },
                { "runs", required_argument, NULL, 'r' },
                { NULL, 0, NULL, 0 },
        };
        const char *config = "etc/portcullis.yaml";
        size_t n_vps = 100000, runs = 20;
        char dir[] = "/tmp/portcullis-bench.XXXXXX", path[128], url[160], err[1024], cmd[200];
        struct pc_config *cfg = NULL;
        struct pc_store *store = NULL;
        double before, after;
        int opt, status = 0;

        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (opt) {
                case 'c': config = optarg; break;
                case 'v': n_vps = strtoul(optarg, NULL, 10); break;
                case 'r': runs = strtoul(optarg, NULL, 10); break;
                default: return 2;
                }
        }
        if (n_vps == 0 || runs == 0 || runs > 250)
                return 2;
        if (pc_config_load(config, &cfg, err, sizeof(err)) < 0) {
                fprintf(stderr, "%s\n", err);
                return 2;
        }
        if (mkdtemp(dir) == NULL)
                return 2;
        snprintf(path, sizeof(path), "%s/bench.db", dir);
        snprintf(url, sizeof(url), "sqlite:%s", path);
        if (pc_store_init(url, NULL, &store, err, sizeof(err)) < 0) { /* creates the schema */
                fprintf(stderr, "bench_vps_add: %s\n", err);
                return 2;
        }
        store = pc_store_close(store);
        if (populate(path, cfg, n_vps) < 0)
                return 2;
        printf("vps add into %zu VPSes (%zu addresses), %zu registrations each (open, check, write):\n", n_vps,
               2 * n_vps, runs);
        if (time_adds(url, cfg, runs, true, &before) < 0 || time_adds(url, cfg, runs, false, &after) < 0 ||
            overlap_found(url, cfg, n_vps) < 0)
                status = 1;
        else
                printf("  %.0fx faster\n", before / after);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
                status = 1;
        pc_config_free(cfg);
        return status;
}
