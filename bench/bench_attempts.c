/* Benchmark: the agent's blocked-attempts pass, the kernel's counters
 * replayed from memory: for every counter element, what is new since the
 * last pass (detect/attempts) and, when something is, the VPS behind its
 * interface (pc_model_find_iface), as attempt_cb does before it evaluates
 * and writes.  Against the linear version it replaced, in the same run:
 * a scan of every element seen so far per element (seen_find) and a scan
 * of every VPS per interface (vps_by_iface).  The linear pass is quadratic,
 * so it runs on at most --linear-elements elements (the first ones); its
 * unchanged pass (seen_find alone, E^2/2 compares) is extrapolated to the
 * full size, and said so.
 *
 * Usage (from the source root): bench_attempts [--vps N] [--elements E] [--linear-elements L]
 * E elements spread evenly over the N VPSes' interfaces (distinct ports,
 * both directions, tcp and udp).  Exits 1 if the two versions disagree. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "detect/attempts.h"
#include "policy/model.h"

struct elem {
        char iface[16];
        unsigned dir;
        uint8_t proto;
        uint16_t port;
        uint64_t packets;
};

struct seen { /* the old agent_attempt_seen */
        char iface[16];
        unsigned dir;
        uint8_t proto;
        uint16_t port;
        uint64_t packets;
};

struct linear {
        struct seen *v;
        size_t n, cap;
};

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The old seen_find, verbatim but for the container. */
static struct seen *seen_find(struct linear *l, const struct elem *x)
{
        for (size_t i = 0; i < l->n; i++) {
                struct seen *s = &l->v[i];

                if (s->dir == x->dir && s->proto == x->proto && s->port == x->port && strcmp(s->iface, x->iface) == 0)
                        return s;
        }
        if (l->n == l->cap) {
                size_t cap = l->cap == 0 ? 64 : l->cap * 2;
                struct seen *v = realloc(l->v, cap * sizeof(*v));

                if (v == NULL)
                        return NULL;
                l->v = v;
                l->cap = cap;
        }
        l->v[l->n] = (struct seen){ .dir = x->dir, .proto = x->proto, .port = x->port };
        snprintf(l->v[l->n].iface, sizeof(l->v[l->n].iface), "%s", x->iface);
        return &l->v[l->n++];
}

/* The old vps_by_iface. */
static const struct pc_vps *vps_by_iface(const struct pc_model *m, const char *iface)
{
        for (size_t i = 0; i < pc_model_count(m); i++)
                if (strcmp(pc_model_at(m, i)->iface, iface) == 0)
                        return pc_model_at(m, i);
        return NULL;
}

/* One pass the new way; returns the number of elements with something new
 * (each resolved to its VPS), adding the VPSes' slots to *<sum>. */
static size_t pass_new(struct pc_attempts *t, const struct pc_model *m, const struct elem *e, size_t n, size_t *sum)
{
        size_t hits = 0;

        pc_attempts_begin(t);
        for (size_t i = 0; i < n; i++) {
                uint64_t delta;
                const struct pc_vps *v;

                if (pc_attempts_note(t, e[i].iface, e[i].dir, e[i].proto, e[i].port, e[i].packets, &delta) < 0 ||
                    delta == 0)
                        continue;
                v = pc_model_find_iface(m, e[i].iface);
                if (v != NULL) {
                        hits++;
                        *sum += v->model_slot;
                }
        }
        pc_attempts_end(t);
        return hits;
}

/* One pass the old way, the same results. */
static size_t pass_old(struct linear *l, const struct pc_model *m, const struct elem *e, size_t n, size_t *sum)
{
        size_t hits = 0;

        for (size_t i = 0; i < n; i++) {
                struct seen *s = seen_find(l, &e[i]);
                const struct pc_vps *v;

                if (s == NULL || e[i].packets <= s->packets) {
                        if (s != NULL)
                                s->packets = e[i].packets;
                        continue;
                }
                s->packets = e[i].packets;
                v = vps_by_iface(m, e[i].iface);
                if (v != NULL) {
                        hits++;
                        *sum += v->model_slot;
                }
        }
        return hits;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "vps", required_argument, NULL, 'v' },
                { "elements", required_argument, NULL, 'e' },
                { "linear-elements", required_argument, NULL, 'l' },
                { NULL, 0, NULL, 0 },
        };
        size_t n_vps = 100000, n_el = 1000000, n_lin = 20000, hits[3], sum_new = 0, sum_old = 0;
        const char *label[3] = { "first pass (all new)", "unchanged pass", "1% grew" };
        struct pc_config *cfg = NULL;
        struct pc_model *m = NULL;
        struct pc_attempts *t = NULL;
        struct linear lin = { 0 };
        struct elem *e;
        double t0, dt[3], lt[3], lookup_new, lookup_old;
        char err[1024];
        int opt, fail = 0;

        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (opt) {
                case 'v': n_vps = strtoul(optarg, NULL, 10); break;
                case 'e': n_el = strtoul(optarg, NULL, 10); break;
                case 'l': n_lin = strtoul(optarg, NULL, 10); break;
                default:
                        fprintf(stderr, "usage: bench_attempts [--vps N] [--elements E] [--linear-elements L]\n");
                        return 2;
                }
        }
        if (n_vps == 0 || n_el == 0)
                return 2;
        if (n_lin > n_el)
                n_lin = n_el;
        if (pc_config_load("etc/portcullis.yaml", &cfg, err, sizeof(err)) < 0 ||
            pc_model_new(cfg, &m) < 0 || pc_attempts_new(&t) < 0) {
                fprintf(stderr, "bench_attempts: setup failed: %s\n", err);
                return 1;
        }
        for (size_t i = 0; i < n_vps; i++) {
                struct pc_vps *v;

                if (pc_vps_new(&v) < 0)
                        return 1;
                snprintf(v->id, sizeof(v->id), "vps-%zu", i);
                snprintf(v->iface, sizeof(v->iface), "tap%zu", i);
                v->site = &cfg->sites[0];
                if (pc_model_add(m, v) < 0)
                        return 1;
        }
        e = calloc(n_el, sizeof(*e));
        if (e == NULL)
                return 1;
        for (size_t i = 0; i < n_el; i++) { /* element i of VPS i % n_vps */
                size_t k = i / n_vps;

                snprintf(e[i].iface, sizeof(e[i].iface), "tap%zu", i % n_vps);
                e[i].dir = k & 1 ? PC_DIR_INGRESS : PC_DIR_EGRESS;
                e[i].proto = k & 2 ? 17 : 6;
                e[i].port = (uint16_t)(1 + k / 4);
                e[i].packets = 1 + i % 7;
        }

        for (int p = 0; p < 3; p++) {
                if (p == 2)
                        for (size_t i = 0; i < n_el; i += 100)
                                e[i].packets++;
                t0 = now_s();
                hits[p] = pass_new(t, m, e, n_el, &sum_new);
                dt[p] = now_s() - t0;
        }
        for (size_t i = 0; i < n_el; i += 100) /* back to the first pass's counts */
                e[i].packets--;
        for (int p = 0; p < 3; p++) {
                size_t h;

                if (p == 2)
                        for (size_t i = 0; i < n_el; i += 100)
                                e[i].packets++;
                t0 = now_s();
                h = pass_old(&lin, m, e, n_lin, &sum_old);
                lt[p] = now_s() - t0;
                /* The same prefix of the new pass must give the same hits. */
                if (n_lin == n_el && h != hits[p]) {
                        fprintf(stderr, "bench_attempts: %s: %zu vs %zu elements with news\n", label[p], h, hits[p]);
                        fail = 1;
                }
        }
        if (n_lin == n_el && sum_new != sum_old) {
                fprintf(stderr, "bench_attempts: the two versions found different VPSes\n");
                fail = 1;
        }

        /* Interface → VPS alone, every VPS once, in a scattered order. */
        {
                size_t n_look = n_vps < 1000 ? n_vps : 1000, found = 0;

                t0 = now_s();
                for (size_t r = 0; r < 1000; r++)
                        for (size_t i = 0; i < n_vps; i += 1 + n_vps / 1000)
                                found += pc_model_find_iface(m, e[(i * 7919) % n_vps].iface) != NULL;
                lookup_new = (now_s() - t0) / found;
                found = 0;
                t0 = now_s();
                for (size_t i = 0; i < n_look; i++)
                        found += vps_by_iface(m, e[(i * 7919) % n_vps].iface) != NULL;
                lookup_old = (now_s() - t0) / (found > 0 ? found : 1);
        }

        printf("attempts pass, %zu VPSes, %zu counter elements (%.0f MB held):\n", n_vps, n_el,
               pc_attempts_count(t) * 64.0 / 1e6);
        for (int p = 0; p < 3; p++) {
                double scale = (double)n_el / n_lin;

                printf("  %-22s hash %8.1f ms (%5.0f ns/element, %zu with news)   linear %9.1f ms on %zu elements",
                       label[p], dt[p] * 1e3, dt[p] * 1e9 / n_el, hits[p], lt[p] * 1e3, n_lin);
                /* Unchanged, the old pass is seen_find alone: E^2/2 compares. */
                if (n_lin < n_el && p == 1)
                        printf(", ~%.0f s at %zu (extrapolated: quadratic)", lt[p] * scale * scale, n_el);
                printf("\n");
        }
        printf("interface -> VPS: index %.0f ns/lookup, linear scan %.0f ns/lookup (%zu VPSes)\n", lookup_new * 1e9,
               lookup_old * 1e9, n_vps);
        free(e);
        free(lin.v);
        pc_attempts_free(t);
        pc_model_free(m);
        pc_config_free(cfg);
        return fail;
}
