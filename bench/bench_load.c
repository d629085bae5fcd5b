/* Benchmark: loading N VPSes (two addresses each) and M exceptions from
 * SQLite into the model, against a baseline in the same run: the bare
 * SQLite scan of the same rows without building anything.
 *
 * Usage: bench_load [--config FILE] [--vps N] [--exceptions M] [--runs R]
 * The database is built in a temporary folder (setup, not timed) and
 * removed at the end.  Exits 1 if the model does not hold what was
 * written. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/store.h"

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int exec(sqlite3 *db, const char *sql)
{
        char *msg = NULL;

        if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
                fprintf(stderr, "bench_load: %s: %s\n", sql, msg);
                sqlite3_free(msg);
                return -1;
        }
        return 0;
}

/* Bulk-writes the rows with plain SQL in one transaction: setup only. */
static int populate(const char *path, const struct pc_config *cfg, size_t n_vps, size_t n_exc,
                    size_t *ret_given)
{
        sqlite3 *db;
        sqlite3_stmt *v, *a, *e;
        int r = -1;

        if (sqlite3_open(path, &db) != SQLITE_OK)
                return -1;
        if (exec(db, "BEGIN") < 0)
                goto out;
        sqlite3_prepare_v2(db, "INSERT INTO vps (id, owner, lang, site, iface, mac, created) VALUES (?, ?, 'en', ?, ?, NULL, 0)", -1, &v, NULL);
        sqlite3_prepare_v2(db, "INSERT INTO vps_address (vps_id, family, prefix) VALUES (?, ?, ?)", -1, &a, NULL);
        sqlite3_prepare_v2(db, "INSERT INTO exception (vps_id, service, \"by\", reason, created) VALUES (?, ?, 'bench', 'bench', 0)", -1, &e, NULL);
        size_t given = 0;

        for (size_t i = 0; i < n_vps; i++) {
                const struct pc_site *site = &cfg->sites[i % cfg->n_sites];
                char id[32], owner[64], iface[16], v4[32], v6[64];

                snprintf(id, sizeof(id), "vps-%zu", i);
                snprintf(owner, sizeof(owner), "owner%zu@example.net", i);
                snprintf(iface, sizeof(iface), "tap%zu", i);
                snprintf(v4, sizeof(v4), "10.%zu.%zu.%zu/32", (i >> 16) & 255, (i >> 8) & 255, i & 255);
                snprintf(v6, sizeof(v6), "2001:db8:%zx:%zx::/64", (i >> 16) & 0xffff, i & 0xffff);
                sqlite3_bind_text(v, 1, id, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(v, 2, owner, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(v, 3, site->name, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(v, 4, iface, -1, SQLITE_TRANSIENT);
                if (sqlite3_step(v) != SQLITE_DONE)
                        goto fail;
                sqlite3_reset(v);
                for (int k = 0; k < 2; k++) {
                        sqlite3_bind_text(a, 1, id, -1, SQLITE_TRANSIENT);
                        sqlite3_bind_int(a, 2, k == 0 ? 4 : 6);
                        sqlite3_bind_text(a, 3, k == 0 ? v4 : v6, -1, SQLITE_TRANSIENT);
                        if (sqlite3_step(a) != SQLITE_DONE)
                                goto fail;
                        sqlite3_reset(a);
                }
                if (given < n_exc && site->policy->n_rules > 0 && site->policy->rules[0].exemptable) {
                        sqlite3_bind_text(e, 1, id, -1, SQLITE_TRANSIENT);
                        sqlite3_bind_text(e, 2, site->policy->rules[0].service->name, -1, SQLITE_TRANSIENT);
                        if (sqlite3_step(e) != SQLITE_DONE)
                                goto fail;
                        sqlite3_reset(e);
                        given++;
                }
        }
        r = exec(db, "COMMIT");
        *ret_given = given;
fail:
        if (r < 0)
                fprintf(stderr, "bench_load: insert failed: %s\n", sqlite3_errmsg(db));
        sqlite3_finalize(v);
        sqlite3_finalize(a);
        sqlite3_finalize(e);
out:
        sqlite3_close(db);
        return r;
}

/* The baseline: step through the same rows, touching each column once. */
static double raw_scan(const char *path, size_t *ret_rows)
{
        static const char *const queries[] = {
                "SELECT id, owner, lang, site, iface, mac, created FROM vps ORDER BY id",
                "SELECT vps_id, family, prefix FROM vps_address ORDER BY vps_id",
                ("SELECT vps_id, id, service, ticket_id, \"by\", reason, created, until FROM exception "
                 "WHERE revoked_at IS NULL ORDER BY vps_id"),
        };
        double t0 = now_s();
        size_t rows = 0, bytes = 0;
        sqlite3 *db;

        sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
        for (size_t q = 0; q < 3; q++) {
                sqlite3_stmt *st;

                sqlite3_prepare_v2(db, queries[q], -1, &st, NULL);
                while (sqlite3_step(st) == SQLITE_ROW) {
                        for (int c = 0; c < sqlite3_column_count(st); c++)
                                bytes += sqlite3_column_bytes(st, c);
                        rows++;
                }
                sqlite3_finalize(st);
        }
        sqlite3_close(db);
        *ret_rows = rows + (bytes == 0);
        return now_s() - t0;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' }, { "vps", required_argument, NULL, 'v' },
                { "exceptions", required_argument, NULL, 'e' }, { "runs", required_argument, NULL, 'r' },
                { NULL, 0, NULL, 0 },
        };
        const char *config = "etc/portcullis.yaml";
        size_t n_vps = 100000, n_exc = 10000, runs = 3;
        char dir[] = "/tmp/portcullis-bench.XXXXXX", path[128], url[160], err[1024];
        struct pc_config *cfg = NULL;
        struct pc_store *store = NULL;
        double best_load = 1e9, best_raw = 1e9;
        int opt, status = 0;

        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (opt) {
                case 'c': config = optarg; break;
                case 'v': n_vps = strtoul(optarg, NULL, 10); break;
                case 'e': n_exc = strtoul(optarg, NULL, 10); break;
                case 'r': runs = strtoul(optarg, NULL, 10); break;
                default: return 2;
                }
        }
        if (pc_config_load(config, &cfg, err, sizeof(err)) < 0) {
                fprintf(stderr, "%s\n", err);
                return 2;
        }
        if (mkdtemp(dir) == NULL)
                return 2;
        snprintf(path, sizeof(path), "%s/bench.db", dir);
        snprintf(url, sizeof(url), "sqlite:%s", path);
        if (pc_store_init(url, NULL, &store, err, sizeof(err)) < 0) { /* creates the schema */
                fprintf(stderr, "bench_load: %s\n", err);
                return 2;
        }
        store = pc_store_close(store);
        if (populate(path, cfg, n_vps, n_exc, &n_exc) < 0)
                return 2;

        for (size_t run = 0; run < runs; run++) {
                struct pc_model *m = NULL;
                size_t rows, exc = 0;
                double t0 = now_s(), t;

                if (pc_store_open(url, &store, err, sizeof(err)) < 0 || pc_model_new(cfg, &m) < 0 ||
                    pc_store_load(store, m) < 0) {
                        fprintf(stderr, "bench_load: load failed: %s\n", store != NULL ? pc_store_errmsg(store) : err);
                        return 2;
                }
                t = now_s() - t0;
                for (size_t i = 0; i < pc_model_count(m); i++)
                        exc += pc_model_at(m, i)->n_exceptions;
                if (pc_model_count(m) != n_vps || exc != n_exc ||
                    pc_model_find(m, "vps-0") == NULL || pc_model_find(m, "vps-0")->n_addrs != 2) {
                        fprintf(stderr, "bench_load: model holds %zu VPSes and %zu exceptions, wrote %zu and %zu\n",
                                pc_model_count(m), exc, n_vps, n_exc);
                        status = 1;
                }
                if (t < best_load)
                        best_load = t;
                pc_model_free(m);
                store = pc_store_close(store);
                t = raw_scan(path, &rows);
                if (t < best_raw)
                        best_raw = t;
        }
        printf("vps=%zu addresses=%zu exceptions=%zu runs=%zu (best of)\n", n_vps, 2 * n_vps, n_exc, runs);
        printf("%-32s %8.3f s\n", "open + load into the model", best_load);
        printf("%-32s %8.3f s\n", "raw SQLite scan (baseline)", best_raw);
        printf("ratio load/raw scan: %.2fx\n", best_load / best_raw);
        unlink(path);
        snprintf(path, sizeof(path), "%s/bench.db-wal", dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/bench.db-shm", dir);
        unlink(path);
        rmdir(dir);
        pc_config_free(cfg);
        return status;
}
