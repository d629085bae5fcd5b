/* Evaluation: a verdict for one flow of one VPS, with the chain of reasons.
 *
 * Cost per call is constant: one table lookup in the site policy's compiled
 * table, a bit test for exceptions, and a scan of the VPS's own filters
 * (usually none).  Nothing depends on how many VPSes or exceptions exist. */
#include "policy/evaluate.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int pc_policy_compile(struct pc_policy *policy)
{
        struct pc_policy_table *t = calloc(1, sizeof(*t));

        if (t == NULL)
                return -ENOMEM;
        for (size_t i = 0; i < policy->n_rules; i++) {
                const struct pc_rule *r = &policy->rules[i];

                for (int d = 0; d < 2; d++) {
                        if (!(r->direction & (d == 0 ? PC_DIR_EGRESS : PC_DIR_INGRESS)))
                                continue;
                        for (size_t k = 0; k < r->n_ports; k++) {
                                const struct pc_port_range *pr = &r->ports[k];
                                int l4 = pr->proto == PC_PROTO_UDP;

                                for (uint32_t p = pr->lo; p <= pr->hi; p++)
                                        if (t->port[d][l4][p] == 0)
                                                t->port[d][l4][p] = (uint8_t)(i + 1);
                        }
                        for (size_t k = 0; k < r->n_ip_protos; k++)
                                if (t->ipproto[d][r->ip_protos[k]] == 0)
                                        t->ipproto[d][r->ip_protos[k]] = (uint8_t)(i + 1);
                }
        }
        free(policy->table);
        policy->table = t;
        return 0;
}

/* Returns the rule of <pol> that covers <flow>, or NULL. */
static const struct pc_rule *rule_lookup(const struct pc_policy *pol, const struct pc_flow *flow)
{
        int d = flow->dir == PC_DIR_INGRESS;
        unsigned idx;

        if (pol == NULL || pol->table == NULL)
                return NULL;
        if (flow->proto == PC_PROTO_TCP || flow->proto == PC_PROTO_UDP)
                idx = pol->table->port[d][flow->proto == PC_PROTO_UDP][flow->port];
        else
                idx = pol->table->ipproto[d][flow->proto];
        return idx == 0 ? NULL : &pol->rules[idx - 1];
}

static bool active(int64_t until, int64_t now)
{
        return until == 0 || until > now;
}

static bool filter_covers(const struct pc_filter *f, const struct pc_flow *flow, int64_t now)
{
        if (!(f->direction & flow->dir) || !active(f->until, now))
                return false;
        switch (f->scope) {
        case PC_SCOPE_ALL:
                return true;
        case PC_SCOPE_SERVICE:
                return f->service != NULL && pc_service_has_port(f->service, flow->proto, flow->port);
        case PC_SCOPE_PORTS:
                return f->ports.proto == flow->proto && flow->port >= f->ports.lo &&
                       flow->port <= f->ports.hi;
        }
        return false;
}

static const struct pc_filter *filter_lookup(const struct pc_vps *vps, const struct pc_flow *flow,
                                             int64_t now)
{
        /* Filters kept for a port-subset exception are the kernel's way of
         * saying what pc_exception_covers says here. */
        for (size_t i = 0; i < vps->n_filters; i++)
                if (vps->filters[i].exception_id == 0 && filter_covers(&vps->filters[i], flow, now))
                        return &vps->filters[i];
        return NULL;
}

/* The verdict a site rule gives when nothing lifts it. */
static enum pc_verdict_kind rule_verdict(const struct pc_rule *r, const struct pc_flow *flow)
{
        if (r->action == PC_ACTION_REDIRECT)
                return PC_VERDICT_REDIRECT;
        return flow->dir == PC_DIR_EGRESS ? PC_VERDICT_REJECT : PC_VERDICT_DROP;
}

static struct pc_reason *reason_add(struct pc_verdict *v, enum pc_reason_kind kind)
{
        struct pc_reason *r = &v->reasons[v->n_reasons++];

        memset(r, 0, sizeof(*r));
        r->kind = kind;
        return r;
}

void pc_evaluate(const struct pc_vps *vps, const struct pc_flow *flow, int64_t now,
                 struct pc_verdict *ret)
{
        const struct pc_policy *pol = vps->site->policy;
        const struct pc_rule *rule = rule_lookup(pol, flow);
        const struct pc_filter *filter = filter_lookup(vps, flow, now);
        bool decided = false;
        struct pc_reason *r;

        ret->n_reasons = 0;
        ret->verdict = PC_VERDICT_ALLOW;

        if (vps->suspended) {
                r = reason_add(ret, PC_REASON_SUSPENSION);
                r->suspension = &vps->suspension;
                r->decisive = true;
                ret->verdict = PC_VERDICT_DROP;
                decided = true;
        }
        if (filter != NULL) {
                r = reason_add(ret, PC_REASON_FILTER);
                r->filter = filter;
                if (!decided) {
                        r->decisive = decided = true;
                        ret->verdict = PC_VERDICT_DROP;
                }
        }
        if (rule != NULL) {
                const struct pc_exception *e = NULL;
                struct pc_reason *rr = reason_add(ret, PC_REASON_SITE_RULE);
                bool lifted = false;

                rr->rule = rule;
                if (vps->exempt_mask & (UINT64_C(1) << rule->index))
                        e = pc_vps_exception_for(vps, rule->service->name);
                /* An exception for other ports of the service lifts nothing here. */
                if (e != NULL && !pc_exception_covers(e, flow->proto, flow->port))
                        e = NULL;
                if (e != NULL) {
                        enum pc_reason_kind k = !active(e->until, now)         ? PC_REASON_EXCEPTION_EXPIRED
                                                : !pc_rule_exemptable(pol, rule) ? PC_REASON_NOT_EXEMPTABLE
                                                                                 : PC_REASON_EXCEPTION;

                        r = reason_add(ret, k);
                        r->rule = rule;
                        r->exception = e;
                        lifted = k == PC_REASON_EXCEPTION;
                        if (lifted && !decided) {
                                r->decisive = decided = true;
                                ret->verdict = PC_VERDICT_ALLOW;
                        }
                }
                if (!decided) {
                        rr->decisive = decided = true;
                        ret->verdict = rule_verdict(rule, flow);
                }
        }
        if (!decided) {
                r = reason_add(ret, PC_REASON_DEFAULT);
                r->decisive = true;
        }
}

enum pc_verdict_kind pc_evaluate_fast(const struct pc_vps *vps, const struct pc_flow *flow,
                                      int64_t now)
{
        const struct pc_rule *rule;

        if (vps->suspended)
                return PC_VERDICT_DROP;
        if (vps->n_filters != 0 && filter_lookup(vps, flow, now) != NULL)
                return PC_VERDICT_DROP;
        rule = rule_lookup(vps->site->policy, flow);
        if (rule == NULL)
                return PC_VERDICT_ALLOW;
        if ((vps->exempt_mask & (UINT64_C(1) << rule->index)) && pc_rule_exemptable(vps->site->policy, rule)) {
                const struct pc_exception *e = pc_vps_exception_for(vps, rule->service->name);

                if (e != NULL && active(e->until, now) && pc_exception_covers(e, flow->proto, flow->port))
                        return PC_VERDICT_ALLOW;
        }
        return rule_verdict(rule, flow);
}

/* How many VPSes ahead pc_evaluate_batch() prefetches: enough to cover a
 * DRAM miss (~100 ns) at ~5 ns per verdict. */
#define BATCH_PREFETCH 16

void pc_evaluate_batch(const struct pc_vps *const *vps, const struct pc_flow *flows, size_t n,
                       int64_t now, enum pc_verdict_kind *out)
{
        for (size_t i = 0; i < n; i++) {
                if (i + BATCH_PREFETCH < n)
                        __builtin_prefetch(vps[i + BATCH_PREFETCH]);
                out[i] = pc_evaluate_fast(vps[i], &flows[i], now);
        }
}

const char *pc_verdict_name(enum pc_verdict_kind v)
{
        switch (v) {
        case PC_VERDICT_ALLOW:
                return "allow";
        case PC_VERDICT_REJECT:
                return "reject";
        case PC_VERDICT_REDIRECT:
                return "redirect";
        case PC_VERDICT_DROP:
                return "drop";
        }
        return "?";
}

const char *pc_reason_kind_name(enum pc_reason_kind k)
{
        switch (k) {
        case PC_REASON_DEFAULT:
                return "default";
        case PC_REASON_SITE_RULE:
                return "site-rule";
        case PC_REASON_EXCEPTION:
                return "exception";
        case PC_REASON_EXCEPTION_EXPIRED:
                return "exception-expired";
        case PC_REASON_NOT_EXEMPTABLE:
                return "not-exemptable";
        case PC_REASON_FILTER:
                return "filter";
        case PC_REASON_SUSPENSION:
                return "suspension";
        }
        return "?";
}

int pc_flow_parse(const char *s, struct pc_flow *ret)
{
        char proto[16];
        const char *slash = strchr(s, '/');
        size_t n = slash != NULL ? (size_t)(slash - s) : strlen(s);
        uint8_t p;
        long port = 0;

        if (n == 0 || n >= sizeof(proto))
                return -EINVAL;
        memcpy(proto, s, n);
        proto[n] = '\0';
        if (pc_proto_parse(proto, &p) < 0)
                return -EINVAL;
        if (p == PC_PROTO_TCP || p == PC_PROTO_UDP) {
                char *end;

                if (slash == NULL || slash[1] < '0' || slash[1] > '9')
                        return -EINVAL;
                port = strtol(slash + 1, &end, 10);
                if (*end != '\0' || port < 0 || port > 65535)
                        return -EINVAL;
        } else if (slash != NULL)
                return -EINVAL;
        ret->proto = p;
        ret->port = (uint16_t)port;
        return 0;
}
