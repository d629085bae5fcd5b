/* Explain: a verdict's reasons in words for support, and as JSON. */
#include "policy/explain.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void pc_flow_format(const struct pc_flow *flow, char *buf, size_t size)
{
        const char *name = pc_proto_name(flow->proto);
        const char *dir = pc_dir_name(flow->dir);

        if (flow->proto == PC_PROTO_TCP || flow->proto == PC_PROTO_UDP)
                snprintf(buf, size, "%s/%u %s", name, flow->port, dir);
        else if (name != NULL)
                snprintf(buf, size, "%s %s", name, dir);
        else
                snprintf(buf, size, "proto-%u %s", flow->proto, dir);
}

/* " until 2026-12-01T00:00:00Z" or "" for no end. */
static void until_text(int64_t until, char *buf, size_t size)
{
        char t[32];

        if (until == 0) {
                snprintf(buf, size, "%s", "");
                return;
        }
        pc_format_time(until, t, sizeof(t));
        snprintf(buf, size, " until %s", t);
}

static void scope_text(const struct pc_filter *f, char *buf, size_t size)
{
        char pr[32];

        switch (f->scope) {
        case PC_SCOPE_ALL:
                snprintf(buf, size, "all");
                return;
        case PC_SCOPE_SERVICE:
                snprintf(buf, size, "service %s", f->service != NULL ? f->service->name : "?");
                return;
        case PC_SCOPE_PORTS:
                pc_port_range_format(&f->ports, pr, sizeof(pr));
                snprintf(buf, size, "%s", pr);
                return;
        }
        snprintf(buf, size, "?");
}

/* " (FILE:LINE)" where a rule was written, or "". */
static void rule_where(const struct pc_rule *rule, char *buf, size_t size)
{
        if (rule->pos.file != NULL)
                snprintf(buf, size, " (%s:%d)", rule->pos.file, rule->pos.line);
        else
                snprintf(buf, size, "%s", "");
}

void pc_explain_reason(const struct pc_reason *r, const struct pc_vps *vps,
                       const struct pc_flow *flow, char *buf, size_t size)
{
        const char *site = vps->site->name, *pol = vps->site->policy->name;
        char until[48], when[32], scope[48], where[300], fl[48], inc[32] = "", tk[32] = "";
        const char *exemptable = r->rule == NULL                                   ? ""
                                 : pc_rule_exemptable(vps->site->policy, r->rule) ? "exemptable by ticket"
                                 : r->rule->exemptable ? "not exemptable: the policy grants no exceptions"
                                                       : "not exemptable";

        pc_flow_format(flow, fl, sizeof(fl));
        switch (r->kind) {
        case PC_REASON_DEFAULT:
                snprintf(buf, size, "no rule of policy %s (site %s) covers %s; allowed by default",
                         pol, site, fl);
                return;
        case PC_REASON_SITE_RULE:
                rule_where(r->rule, where, sizeof(where));
                if (r->rule->action == PC_ACTION_REDIRECT)
                        snprintf(buf, size,
                                 "service %s: %s is redirected to the SMTP proxy (no TLS) by site policy %s, "
                                 "rule %u%s; %s; %s",
                                 r->rule->service->name, fl, pol, r->rule->index + 1, where,
                                 exemptable,
                                 r->rule->why[0] != '\0' ? r->rule->why : "no reason given");
                else
                        snprintf(buf, size,
                                 "service %s blocked by site policy %s, rule %u%s; %s; %s",
                                 r->rule->service->name, pol, r->rule->index + 1, where,
                                 exemptable,
                                 r->rule->why[0] != '\0' ? r->rule->why : "no reason given");
                return;
        case PC_REASON_EXCEPTION:
        case PC_REASON_EXCEPTION_EXPIRED:
        case PC_REASON_NOT_EXEMPTABLE:
                until_text(r->exception->until, until, sizeof(until));
                if (r->exception->ticket_id != 0)
                        snprintf(tk, sizeof(tk), ", ticket #%" PRId64, r->exception->ticket_id);
                pc_format_time(r->exception->created, when, sizeof(when));
                snprintf(buf, size, "exception #%" PRId64 " for %s granted by %s at %s%s%s%s: %s",
                         r->exception->id, r->exception->service, r->exception->by, when, tk,
                         until,
                         r->kind == PC_REASON_EXCEPTION           ? " lifts the block"
                         : r->kind == PC_REASON_EXCEPTION_EXPIRED ? " has ended"
                                                                  : " does not apply: the rule is not exemptable",
                         r->exception->reason);
                return;
        case PC_REASON_FILTER:
                until_text(r->filter->until, until, sizeof(until));
                scope_text(r->filter, scope, sizeof(scope));
                if (r->filter->incident_id != 0)
                        snprintf(inc, sizeof(inc), ", incident #%" PRId64, r->filter->incident_id);
                snprintf(buf, size, "filter #%" PRId64 " drops %s traffic (%s)%s, placed by %s%s: %s",
                         r->filter->id, pc_dir_name(r->filter->direction), scope,
                         until[0] != '\0' ? until : " with no end", r->filter->by, inc,
                         r->filter->reason);
                return;
        case PC_REASON_SUSPENSION:
                pc_format_time(r->suspension->created, when, sizeof(when));
                if (r->suspension->incident_id != 0)
                        snprintf(inc, sizeof(inc), ", incident #%" PRId64,
                                 r->suspension->incident_id);
                snprintf(buf, size, "%s is %s (suspension #%" PRId64 " by %s since %s%s): %s", vps->id,
                         r->suspension->terminated ? "terminated: suspended until an admin lifts it" : "suspended",
                         r->suspension->id, r->suspension->by, when, inc, r->suspension->reason);
                return;
        }
        snprintf(buf, size, "?");
}

json_t *pc_explain_json(const struct pc_verdict *v, const struct pc_vps *vps,
                        const struct pc_flow *flow)
{
        json_t *reasons = json_array(), *root;
        char text[1024], tbuf[32];

        if (reasons == NULL)
                return NULL;
        for (unsigned i = 0; i < v->n_reasons; i++) {
                const struct pc_reason *r = &v->reasons[i];
                json_t *o;

                pc_explain_reason(r, vps, flow, text, sizeof(text));
                o = json_pack("{s:s, s:b, s:s}", "kind", pc_reason_kind_name(r->kind), "decisive",
                              r->decisive, "text", text);
                if (o == NULL)
                        goto fail;
                if (r->rule != NULL) {
                        json_object_set_new(o, "rule", json_integer(r->rule->index + 1));
                        json_object_set_new(o, "service", json_string(r->rule->service->name));
                        json_object_set_new(o, "exemptable",
                                            json_boolean(pc_rule_exemptable(vps->site->policy, r->rule)));
                }
                if (r->exception != NULL) {
                        json_object_set_new(o, "exception", json_integer(r->exception->id));
                        if (r->exception->ticket_id != 0)
                                json_object_set_new(o, "ticket", json_integer(r->exception->ticket_id));
                        if (r->exception->until != 0) {
                                pc_format_time(r->exception->until, tbuf, sizeof(tbuf));
                                json_object_set_new(o, "until", json_string(tbuf));
                        }
                }
                if (r->filter != NULL) {
                        json_object_set_new(o, "filter", json_integer(r->filter->id));
                        if (r->filter->incident_id != 0)
                                json_object_set_new(o, "incident", json_integer(r->filter->incident_id));
                        if (r->filter->until != 0) {
                                pc_format_time(r->filter->until, tbuf, sizeof(tbuf));
                                json_object_set_new(o, "until", json_string(tbuf));
                        }
                }
                if (r->suspension != NULL) {
                        json_object_set_new(o, "suspension", json_integer(r->suspension->id));
                        if (r->suspension->incident_id != 0)
                                json_object_set_new(o, "incident",
                                                    json_integer(r->suspension->incident_id));
                }
                json_array_append_new(reasons, o);
        }
        root = json_pack("{s:s, s:s, s:s, s:{s:s?, s:i, s:s}, s:s, s:o}", "vps", vps->id, "site",
                         vps->site->name, "policy", vps->site->policy->name, "flow", "proto",
                         pc_proto_name(flow->proto), "port", (int)flow->port, "direction",
                         pc_dir_name(flow->dir), "verdict", pc_verdict_name(v->verdict), "reasons",
                         reasons);
        return root;
fail:
        json_decref(reasons);
        return NULL;
}
