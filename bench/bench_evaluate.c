/* Benchmark: verdicts per second with many VPSes and exceptions loaded,
 * against a naive linear scan over every rule and exception (what a chain
 * of rules per service and per exception costs), in the same run.
 *
 * Usage: bench_evaluate [--config FILE] [--vps N] [--exceptions N]
 *                       [--flows N] [--seconds S]
 * Prints one line per evaluator and the ratio; exits 1 if the two
 * evaluators ever disagree on a verdict. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "policy/evaluate.h"

struct job {
        const struct pc_vps *vps;
        struct pc_flow flow;
};

#define BATCH 256

/* The naive baseline: every (site, rule, port range) as one flat list, and
 * every exception in one list, scanned front to back for each packet. */
struct naive_rule {
        const struct pc_site *site;
        const struct pc_rule *rule;
        struct pc_port_range ports;
        unsigned dir;
};

struct naive_exception {
        const struct pc_vps *vps;
        const char *service;
        int64_t until;
};

struct naive {
        struct naive_rule *rules;
        size_t n_rules;
        struct naive_exception *exc;
        size_t n_exc;
};

static enum pc_verdict_kind naive_evaluate(const struct naive *nv, const struct pc_vps *vps,
                                           const struct pc_flow *f, int64_t now)
{
        for (size_t i = 0; i < nv->n_rules; i++) {
                const struct naive_rule *r = &nv->rules[i];

                if (r->site != vps->site || !(r->dir & f->dir) || r->ports.proto != f->proto ||
                    f->port < r->ports.lo || f->port > r->ports.hi)
                        continue;
                if (r->rule->exemptable)
                        for (size_t k = 0; k < nv->n_exc; k++)
                                if (nv->exc[k].vps == vps && strcmp(nv->exc[k].service, r->rule->service->name) == 0 &&
                                    (nv->exc[k].until == 0 || nv->exc[k].until > now))
                                        return PC_VERDICT_ALLOW;
                if (r->rule->action == PC_ACTION_REDIRECT)
                        return PC_VERDICT_REDIRECT;
                return f->dir == PC_DIR_EGRESS ? PC_VERDICT_REJECT : PC_VERDICT_DROP;
        }
        return PC_VERDICT_ALLOW;
}

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

/* Ports real traffic uses, plus the restricted ones, plus noise. */
static uint16_t pick_port(void)
{
        static const uint16_t hot[] = { 25, 26, 53, 80, 123, 443, 465, 500, 587, 993, 1701, 1723, 1728,
                                        2525, 4500, 6667, 6881, 6969, 8080, 22 };

        return (rnd() % 4 == 0) ? (uint16_t)rnd() : hot[rnd() % PC_ARRAY_SIZE(hot)];
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' }, { "vps", required_argument, NULL, 'v' },
                { "exceptions", required_argument, NULL, 'e' }, { "flows", required_argument, NULL, 'f' },
                { "seconds", required_argument, NULL, 's' }, { NULL, 0, NULL, 0 },
        };
        const char *config = "etc/portcullis.yaml";
        size_t n_vps = 100000, n_exc = 10000, n_flows = 1 << 20;
        double seconds = 2.0;
        struct pc_config *cfg = NULL;
        struct pc_model *m = NULL;
        struct naive nv = { 0 };
        struct job *jobs;
        char err[1024];
        int opt, status = 0;
        int64_t now = pc_now();

        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (opt) {
                case 'c': config = optarg; break;
                case 'v': n_vps = strtoul(optarg, NULL, 10); break;
                case 'e': n_exc = strtoul(optarg, NULL, 10); break;
                case 'f': n_flows = strtoul(optarg, NULL, 10); break;
                case 's': seconds = strtod(optarg, NULL); break;
                default: return 2;
                }
        }
        if (n_vps == 0 || n_flows == 0 || n_exc > n_vps) {
                fprintf(stderr, "bench_evaluate: need --vps > 0, --flows > 0, --exceptions <= --vps\n");
                return 2;
        }
        if (pc_config_load(config, &cfg, err, sizeof(err)) < 0) {
                fprintf(stderr, "%s\n", err);
                return 2;
        }
        if (pc_model_new(cfg, &m) < 0)
                return 2;

        /* VPSes spread over the sites; exceptions on the restricted ones. */
        nv.exc = calloc(n_exc + 1, sizeof(*nv.exc));
        for (size_t i = 0, given = 0; i < n_vps; i++) {
                struct pc_vps *v;

                if (pc_vps_new(&v) < 0)
                        return 2;
                snprintf(v->id, sizeof(v->id), "vps-%zu", i);
                v->site = &cfg->sites[i % cfg->n_sites];
                if (given < n_exc && v->site->policy->n_rules > 0) {
                        const struct pc_rule *r = &v->site->policy->rules[given % v->site->policy->n_rules];
                        struct pc_exception e = { .id = (int64_t)given + 1 };

                        if (r->exemptable) {
                                snprintf(e.service, sizeof(e.service), "%s", r->service->name);
                                pc_vps_add_exception(v, &e);
                                nv.exc[nv.n_exc++] = (struct naive_exception){ v, r->service->name, 0 };
                                given++;
                        }
                }
                if (pc_model_add(m, v) < 0)
                        return 2;
        }
        for (size_t s = 0; s < cfg->n_sites; s++) {
                const struct pc_policy *p = cfg->sites[s].policy;

                for (size_t r = 0; r < p->n_rules; r++)
                        for (size_t k = 0; k < p->rules[r].n_ports; k++) {
                                nv.rules = realloc(nv.rules, (nv.n_rules + 1) * sizeof(*nv.rules));
                                nv.rules[nv.n_rules++] = (struct naive_rule){ &cfg->sites[s], &p->rules[r],
                                                                              p->rules[r].ports[k], p->rules[r].direction };
                        }
        }
        jobs = calloc(n_flows, sizeof(*jobs));
        for (size_t i = 0; i < n_flows; i++) {
                jobs[i].vps = pc_model_at(m, rnd() % n_vps);
                jobs[i].flow.proto = rnd() % 2 ? PC_PROTO_TCP : PC_PROTO_UDP;
                jobs[i].flow.port = pick_port();
                jobs[i].flow.dir = rnd() % 3 ? PC_DIR_EGRESS : PC_DIR_INGRESS;
        }
        /* Both evaluators must agree on every job before either is timed. */
        for (size_t i = 0; i < n_flows && i < 200000; i++) {
                enum pc_verdict_kind a = pc_evaluate_fast(jobs[i].vps, &jobs[i].flow, now);
                enum pc_verdict_kind b = naive_evaluate(&nv, jobs[i].vps, &jobs[i].flow, now);

                if (a != b) {
                        fprintf(stderr, "MISMATCH %s %s/%u %s: model %s, naive %s\n", jobs[i].vps->id,
                                pc_proto_name(jobs[i].flow.proto), jobs[i].flow.port, pc_dir_name(jobs[i].flow.dir),
                                pc_verdict_name(a), pc_verdict_name(b));
                        status = 1;
                        break;
                }
        }

        printf("vps=%zu exceptions=%zu naive_rules=%zu flows=%zu seconds=%.1f\n", n_vps, nv.n_exc, nv.n_rules,
               n_flows, seconds);
        {
                const char *names[] = { "pc_evaluate_fast", "pc_evaluate (with reasons)", "naive linear scan",
                                        "pc_evaluate_batch" };
                double rate[4];
                const struct pc_vps **bv = calloc(n_flows, sizeof(*bv));
                struct pc_flow *bf = calloc(n_flows, sizeof(*bf));
                enum pc_verdict_kind out[BATCH];

                for (size_t i = 0; i < n_flows; i++) {
                        bv[i] = jobs[i].vps;
                        bf[i] = jobs[i].flow;
                }
                for (int e = 0; e < 4; e++) {
                        double t0 = now_s(), t;
                        uint64_t n = 0, sink = 0;

                        do {
                                if (e == 3) {
                                        for (size_t i = 0; i + BATCH <= n_flows; i += BATCH) {
                                                pc_evaluate_batch(bv + i, bf + i, BATCH, now, out);
                                                sink += out[0] + out[BATCH - 1];
                                                n += BATCH;
                                        }
                                        t = now_s() - t0;
                                        continue;
                                }
                                for (size_t i = 0; i < n_flows && i < (e == 2 ? 4096 : n_flows); i++) {
                                        struct pc_verdict v;

                                        if (e == 0)
                                                sink += pc_evaluate_fast(jobs[i].vps, &jobs[i].flow, now);
                                        else if (e == 1) {
                                                pc_evaluate(jobs[i].vps, &jobs[i].flow, now, &v);
                                                sink += v.verdict;
                                        } else
                                                sink += naive_evaluate(&nv, jobs[i].vps, &jobs[i].flow, now);
                                        n++;
                                }
                                t = now_s() - t0;
                        } while (t < seconds);
                        rate[e] = n / t;
                        printf("%-28s %12.0f verdicts/s  (%.1f ns each; checksum %llu)\n", names[e], rate[e],
                               1e9 / rate[e], (unsigned long long)(sink % 1000));
                }
                printf("ratio fast/naive: %.1fx, batch/naive: %.1fx\n", rate[0] / rate[2], rate[3] / rate[2]);
                free(bv);
                free(bf);
        }
        free(jobs);
        free(nv.rules);
        free(nv.exc);
        pc_model_free(m);
        pc_config_free(cfg);
        return status;
}
