/* Benchmark: the snapshot of a host's policy (policy/snapshot.h) for N
 * VPSes (two addresses each; an exception on one in 10, a filter on one
 * in 20, a suspension on one in 100): the agent's part in its loop
 * (formatting the model), its writer thread's (sealing, writing, fsync,
 * rename) and a start's (reading and parsing it back into a model).
 *
 * Usage: bench_snapshot [--config FILE] [--vps N] [--runs R] [--out PATH] [--host NAME]
 * The file goes to a temporary folder (removed at the end) or to PATH
 * (kept: a snapshot to start an agent from, tests/fleet_hostile).  Exits 1
 * if the model read back does not hold what was written. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "policy/snapshot.h"

static double now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int build(const struct pc_config *cfg, size_t n, struct pc_model **ret)
{
        struct pc_model *m;

        if (pc_model_new(cfg, &m) < 0)
                return -1;
        for (size_t i = 0; i < n; i++) {
                struct pc_vps *v;
                struct pc_prefix p;
                char a[64];

                if (pc_vps_new(&v) < 0)
                        return -1;
                snprintf(v->id, sizeof(v->id), "vps-%06zu", i);
                v->site = &cfg->sites[i % cfg->n_sites];
                snprintf(v->iface, sizeof(v->iface), "v%zu", i);
                snprintf(v->owner, sizeof(v->owner), "customer%zu@example.org", i);
                snprintf(v->lang, sizeof(v->lang), "en");
                snprintf(v->host, sizeof(v->host), "hv1");
                v->created = 1764500000 + (int64_t)i;
                snprintf(a, sizeof(a), "198.%zu.%zu.%zu", 18 + i / 65536 % 2, i / 256 % 256, i % 256);
                if (pc_parse_prefix(a, false, &p) == 0)
                        pc_vps_add_addr(v, &p);
                snprintf(a, sizeof(a), "2001:db8:%zx:%zx::/64", i / 65536, i % 65536);
                if (pc_parse_prefix(a, false, &p) == 0)
                        pc_vps_add_addr(v, &p);
                if (i % 10 == 0) {
                        struct pc_exception e = { .id = (int64_t)i, .service = "smtp", .by = "support",
                                                  .reason = "ticket: newsletter to its own customers",
                                                  .created = 1764500000 };

                        pc_vps_add_exception(v, &e);
                }
                if (i % 20 == 0) {
                        struct pc_filter f = { .id = (int64_t)i, .direction = PC_DIR_EGRESS, .scope = PC_SCOPE_PORTS,
                                               .ports = { PC_PROTO_TCP, 8080, 8080 }, .by = "support",
                                               .reason = "abuse report #1234", .created = 1764500000,
                                               .until = 1764500000 + 86400 * 365 };

                        pc_vps_add_filter(v, &f);
                }
                if (i % 100 == 0) {
                        v->suspended = true;
                        v->suspension = (struct pc_suspension){ .id = (int64_t)i, .by = "portcullisd",
                                                                .reason = "spoofing 203.0.113.9", .created = 1 };
                }
                if (pc_model_add(m, v) < 0)
                        return -1;
        }
        *ret = m;
        return 0;
}

static int write_file(const char *path, const struct strbuf *b)
{
        char tmp[4200];
        int fd;

        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd == -1 || write(fd, b->s, b->len) != (ssize_t)b->len || fsync(fd) == -1 || close(fd) == -1 ||
            rename(tmp, path) == -1)
                return -1;
        return 0;
}

static char *read_file(const char *path, size_t *ret_len)
{
        struct stat sb;
        char *text;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd == -1 || fstat(fd, &sb) == -1 || (text = malloc((size_t)sb.st_size + 1)) == NULL)
                return NULL;
        if (read(fd, text, (size_t)sb.st_size) != sb.st_size) {
                free(text);
                close(fd);
                return NULL;
        }
        close(fd);
        *ret_len = (size_t)sb.st_size;
        return text;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' }, { "vps", required_argument, NULL, 'n' },
                { "runs", required_argument, NULL, 'r' },   { "out", required_argument, NULL, 'o' },
                { "host", required_argument, NULL, 'H' },   { NULL, 0, NULL, 0 },
        };
        const char *config = "etc/portcullis.yaml", *out = NULL, *host = "hv1";
        size_t n = 10000, runs = 3;
        char dir[] = "/tmp/bench_snapshot.XXXXXX", path[4096], err[1024];
        struct pc_config *cfg = NULL;
        struct pc_model *m = NULL;
        double fmt = 1e9, seal_write = 1e9, parse = 1e9;
        size_t bytes = 0;
        int opt;

        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (opt) {
                case 'c': config = optarg; break;
                case 'n': n = strtoul(optarg, NULL, 10); break;
                case 'r': runs = strtoul(optarg, NULL, 10); break;
                case 'o': out = optarg; break;
                case 'H': host = optarg; break;
                default: return 2;
                }
        }
        if (pc_config_load(config, &cfg, err, sizeof(err)) < 0 || build(cfg, n, &m) < 0) {
                fprintf(stderr, "bench_snapshot: %s\n", err);
                return 1;
        }
        if (out != NULL)
                snprintf(path, sizeof(path), "%s", out);
        else if (mkdtemp(dir) == NULL)
                return 1;
        else
                snprintf(path, sizeof(path), "%s/snapshot", dir);
        for (size_t r = 0; r < runs; r++) {
                struct pc_snapshot_head h = { .written = 1764590000, .loaded = 1764590000, .fingerprint = 1 };
                struct pc_snapshot_stats st;
                struct strbuf b = { 0 };
                struct pc_model *back = NULL;
                size_t vpses = 0, len = 0;
                double t0, t1, t2, t3;
                char *text;

                snprintf(h.host, sizeof(h.host), "%s", host);
                t0 = now_ms();
                if (pc_snapshot_format(m, &h, &b, &vpses) < 0)
                        return 1;
                t1 = now_ms();
                pc_snapshot_seal(&b, vpses);
                if (write_file(path, &b) < 0) {
                        fprintf(stderr, "bench_snapshot: %s: %s\n", path, strerror(errno));
                        return 1;
                }
                t2 = now_ms();
                bytes = b.len;
                strbuf_free(&b);
                text = read_file(path, &len);
                if (text == NULL || pc_model_new(cfg, &back) < 0 ||
                    pc_snapshot_parse(text, len, back, 1764590000, &h, &st, err, sizeof(err)) < 0 ||
                    pc_model_count(back) != n) {
                        fprintf(stderr, "bench_snapshot: read back: %s\n", err);
                        return 1;
                }
                t3 = now_ms();
                free(text);
                pc_model_free(back);
                fmt = t1 - t0 < fmt ? t1 - t0 : fmt;
                seal_write = t2 - t1 < seal_write ? t2 - t1 : seal_write;
                parse = t3 - t2 < parse ? t3 - t2 : parse;
        }
        printf("snapshot of %zu VPSes: %zu bytes (%.1f MB); format (the loop) %.1f ms, seal+write+fsync+rename "
               "(its thread) %.1f ms, read+parse (a start) %.1f ms  [best of %zu]\n",
               n, bytes, bytes / 1e6, fmt, seal_write, parse, runs);
        if (out == NULL) {
                unlink(path);
                rmdir(dir);
        }
        pc_model_free(m);
        pc_config_free(cfg);
        return 0;
}
