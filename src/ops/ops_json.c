/* The JSON form of each object (ops_json.h). */
#include "ops/ops_json.h"

#include <stdio.h>
#include <string.h>

#include "ops/ops.h"
#include "policy/catalog.h"

json_t *pc_json_time(int64_t t)
{
        char buf[32];

        if (t == 0)
                return json_null();
        pc_format_time(t, buf, sizeof(buf));
        return json_string(buf);
}

json_t *pc_json_text(const char *s)
{
        return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

const char *pc_vps_state_name(const struct pc_vps *v)
{
        return v->suspended && v->suspension.terminated ? "terminated"
               : v->suspended                           ? "suspended"
               : pc_vps_real_filters(v) > 0             ? "filtered"
                                                        : "active";
}

static json_t *rules_json(const struct pc_vps *v)
{
        const struct pc_policy *pol = v->site->policy;
        json_t *rules = json_array();
        char buf[64];

        for (size_t i = 0; i < pol->n_rules; i++) {
                const struct pc_rule *rule = &pol->rules[i];
                const struct pc_exception *e = pc_vps_exception_for(v, rule->service->name);
                json_t *ports = json_array();

                for (size_t k = 0; k < rule->n_ports; k++) {
                        pc_port_range_format(&rule->ports[k], buf, sizeof(buf));
                        json_array_append_new(ports, json_string(buf));
                }
                json_array_append_new(rules, json_pack("{s:i, s:s, s:s, s:s, s:o, s:b, s:o}", "rule", (int)i + 1,
                                                       "service", rule->service->name, "action",
                                                       rule->action == PC_ACTION_BLOCK ? "block" : "redirect",
                                                       "direction", pc_dir_name(rule->direction), "ports", ports,
                                                       "exemptable", pc_rule_exemptable(pol, rule), "exception",
                                                       e != NULL ? json_integer(e->id) : json_null()));
        }
        return rules;
}

static json_t *exceptions_json(const struct pc_vps *v)
{
        json_t *exc = json_array();

        for (size_t i = 0; i < v->n_exceptions; i++) {
                const struct pc_exception *e = &v->exceptions[i];
                char ports[PC_PORTS_CANON_MAX];

                pc_ports_format(e->ports, e->n_ports, ports, sizeof(ports));
                json_array_append_new(exc, json_pack("{s:I, s:s, s:o, s:o, s:s, s:s, s:o, s:o}", "id",
                                                     (json_int_t)e->id, "service", e->service, "ports",
                                                     e->n_ports != 0 ? json_string(ports) : json_null(), "ticket",
                                                     e->ticket_id != 0 ? json_integer(e->ticket_id) : json_null(),
                                                     "by", e->by, "reason", e->reason, "created",
                                                     pc_json_time(e->created), "until", pc_json_time(e->until)));
        }
        return exc;
}

static json_t *filters_json(const struct pc_vps *v)
{
        json_t *filt = json_array();

        for (size_t i = 0; i < v->n_filters; i++) {
                const struct pc_filter *f = &v->filters[i];
                char scope[80];

                if (f->exception_id != 0)
                        continue; /* a port-subset exception's, listed with it */
                if (f->scope == PC_SCOPE_ALL)
                        snprintf(scope, sizeof(scope), "all");
                else if (f->scope == PC_SCOPE_SERVICE)
                        snprintf(scope, sizeof(scope), "service:%s", f->service->name);
                else
                        pc_port_range_format(&f->ports, scope, sizeof(scope));
                json_array_append_new(filt, json_pack("{s:I, s:s, s:s, s:o, s:s, s:s, s:o, s:o}", "id",
                                                      (json_int_t)f->id, "direction", pc_dir_name(f->direction),
                                                      "scope", scope, "incident",
                                                      f->incident_id != 0 ? json_integer(f->incident_id) : json_null(),
                                                      "by", f->by, "reason", f->reason, "created",
                                                      pc_json_time(f->created), "until", pc_json_time(f->until)));
        }
        return filt;
}

const char *pc_vps_run_state_name(const struct pc_vps *v)
{
        return v->stopped ? "stopped" : "running";
}

json_t *pc_json_vps(const struct pc_vps *v)
{
        json_t *addrs = json_array();
        char buf[64], mac[24] = "";

        for (size_t i = 0; i < v->n_addrs; i++) {
                pc_format_prefix(&v->addrs[i], buf, sizeof(buf));
                json_array_append_new(addrs, json_string(buf));
        }
        json_t *o;

        if (v->has_mac)
                pc_format_mac(v->mac, mac, sizeof(mac));
        o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:o, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
                         v->id, "site", v->site->name, "policy", v->site->policy->name, "owner", v->owner, "lang",
                         v->lang, "iface", v->iface, "mac", v->has_mac ? mac : NULL, "addresses", addrs, "state",
                         pc_vps_state_name(v), "run_state", pc_vps_run_state_name(v), "run_since",
                         pc_json_time(v->run_since), "suspension",
                         v->suspended ? json_pack("{s:I, s:b, s:s, s:s, s:o, s:o}", "id", (json_int_t)v->suspension.id,
                                                  "terminated", v->suspension.terminated, "by", v->suspension.by,
                                                  "reason", v->suspension.reason, "since",
                                                  pc_json_time(v->suspension.created), "incident",
                                                  v->suspension.incident_id != 0
                                                          ? json_integer(v->suspension.incident_id)
                                                          : json_null())
                                      : json_null(),
                         "rules", rules_json(v), "exceptions", exceptions_json(v), "filters", filters_json(v),
                         "created", pc_json_time(v->created));
        /* Only in a fleet: a single host's VPSes read as before. */
        if (o != NULL && v->host[0] != '\0')
                json_object_set_new(o, "host", json_string(v->host));
        if (o != NULL && v->moving_from[0] != '\0')
                json_object_set_new(o, "moving_from", json_string(v->moving_from));
        /* A move the host it left has not confirmed (its VM may be there). */
        if (o != NULL && v->departing_from[0] != '\0')
                json_object_set_new(o, "departing_from", json_string(v->departing_from));
        return o;
}

static json_t *ports_json(const struct pc_port_range *pr, size_t n)
{
        json_t *a = json_array();
        char buf[32];

        for (size_t i = 0; i < n; i++) {
                pc_port_range_format(&pr[i], buf, sizeof(buf));
                json_array_append_new(a, json_string(buf));
        }
        return a;
}

static json_t *ipprotos_json(const uint8_t *p, size_t n)
{
        json_t *a = json_array();

        for (size_t i = 0; i < n; i++)
                json_array_append_new(a, json_string(pc_proto_name(p[i])));
        return a;
}

json_t *pc_json_services(const struct pc_config *cfg)
{
        json_t *list = json_array();

        for (size_t i = 0; i < cfg->n_services; i++) {
                const struct pc_service *s = &cfg->services[i];
                json_t *sites = json_object();

                for (size_t k = 0; k < cfg->n_sites; k++) {
                        const struct pc_rule *rule = pc_policy_rule_for(cfg->sites[k].policy, s->name);

                        json_object_set_new(
                                sites, cfg->sites[k].name,
                                rule == NULL ? json_pack("{s:s}", "action", "allow")
                                             : json_pack("{s:s, s:s, s:o, s:o, s:b, s:b}", "action",
                                                         rule->action == PC_ACTION_BLOCK ? "block" : "redirect",
                                                         "direction", pc_dir_name(rule->direction), "ports",
                                                         ports_json(rule->ports, rule->n_ports), "ip_protocols",
                                                         ipprotos_json(rule->ip_protos, rule->n_ip_protos),
                                                         "exemptable", pc_rule_exemptable(cfg->sites[k].policy, rule),
                                                         "tos_event", rule->tos_event));
                }
                json_array_append_new(list, json_pack("{s:s, s:s, s:b, s:s, s:o, s:o, s:o}", "name", s->name,
                                                      "description", s->description, "builtin", s->builtin,
                                                      "direction", pc_dir_name(s->direction), "ports",
                                                      ports_json(s->ports, s->n_ports), "ip_protocols",
                                                      ipprotos_json(s->ip_protos, s->n_ip_protos), "sites", sites));
        }
        return list;
}

json_t *pc_json_ticket(const struct pc_ticket *t)
{
        return json_pack("{s:I, s:s, s:s, s:o, s:o, s:s, s:s, s:s, s:o, s:s, s:o, s:o, s:s, s:o, s:o, s:o}", "id",
                         (json_int_t)t->id, "vps", t->vps_id, "service", t->service, "ports", pc_json_text(t->ports),
                         "duration", t->duration != 0 ? json_integer(t->duration) : json_null(), "state",
                         pc_ticket_state_name(t->state), "owner", t->owner, "opened_by", t->opened_by, "opened",
                         pc_json_time(t->opened), "text", t->text, "evidence", pc_json_text(t->evidence), "updated",
                         pc_json_time(t->updated), "updated_by", t->updated_by, "note", pc_json_text(t->note),
                         "exception", t->exception_id != 0 ? json_integer(t->exception_id) : json_null(), "until",
                         pc_json_time(t->until));
}

json_t *pc_json_ticket_event(const struct pc_ticket_event *e)
{
        return json_pack("{s:o, s:s, s:s, s:o}", "at", pc_json_time(e->at), "by", e->by, "kind", e->kind, "note",
                         pc_json_text(e->text));
}

/* Evidence JSON text <e> (may be NULL) as JSON: the object, or the text
 * as a string if a writer stored something that is not JSON. */
static json_t *evidence_json(const char *e)
{
        json_t *j;

        if (e == NULL)
                return json_null();
        j = json_loads(e, JSON_DECODE_ANY, NULL);
        return j != NULL ? j : json_string(e);
}

json_t *pc_json_incident(const struct pc_incident *i)
{
        return json_pack("{s:I, s:s, s:s, s:s, s:o, s:o, s:I, s:I, s:o}", "id", (json_int_t)i->id, "vps",
                         i->vps_id, "kind", i->kind, "state", i->open ? "open" : "closed", "first_seen",
                         pc_json_time(i->first_seen), "last_seen", pc_json_time(i->last_seen), "count",
                         (json_int_t)i->count, "actions", (json_int_t)i->actions, "evidence",
                         evidence_json(i->evidence));
}

json_t *pc_json_action(const struct pc_store_action *a, int64_t now)
{
        return json_pack("{s:I, s:s, s:s, s:b, s:s, s:s, s:o, s:s, s:s, s:s?, s:o, s:o, s:o, s:s?}", "id",
                         (json_int_t)a->id, "vps", a->vps_id, "kind", a->kind, "terminated", a->terminated, "state",
                         pc_store_action_state(a, now), "direction", a->direction, "incident",
                         a->incident_id != 0 ? json_integer(a->incident_id) : json_null(), "scope", a->scope,
                         "by", a->by, "reason", a->reason[0] != '\0' ? a->reason : NULL, "created",
                         pc_json_time(a->created), "until", pc_json_time(a->until), "lifted_at",
                         pc_json_time(a->lifted_at), "lifted_by", a->lifted_by[0] != '\0' ? a->lifted_by : NULL);
}

int64_t pc_notification_next_attempt(const struct pc_notification *n)
{
        return strcmp(n->state, "pending") == 0 ? n->next_attempt : 0;
}

json_t *pc_json_notification(const struct pc_notification *n)
{
        return json_pack("{s:I, s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:o, s:o}", "id",
                         (json_int_t)n->id, "created", pc_json_time(n->created), "vps", n->vps_id, "kind", n->kind,
                         "channel", n->channel[0] != '\0' ? n->channel : "email", "recipient", n->recipient,
                         "language", n->language, "state", n->state, "attempts", (json_int_t)n->attempts,
                         "next_attempt", pc_json_time(pc_notification_next_attempt(n)), "sent_at", pc_json_time(n->sent_at),
                         "last_error", pc_json_text(n->last_error), "message_id", pc_json_text(n->message_id));
}

json_t *pc_json_token(const struct pc_api_token *t)
{
        return json_pack("{s:I, s:s, s:s, s:o, s:o, s:o, s:s, s:o, s:o, s:o}", "id", (json_int_t)t->id, "name",
                         t->name, "role", t->role, "customer", pc_json_text(t->customer), "host",
                         pc_json_text(t->host), "created", pc_json_time(t->created),
                         "created_by", t->created_by, "expires", pc_json_time(t->expires), "revoked",
                         pc_json_time(t->revoked), "last_used", pc_json_time(t->last_used));
}

json_t *pc_json_audit(const struct pc_audit_entry *e)
{
        json_t *before = e->before != NULL ? json_loads(e->before, 0, NULL) : NULL;
        json_t *after = e->after != NULL ? json_loads(e->after, 0, NULL) : NULL;

        return json_pack("{s:I, s:o, s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "id", (json_int_t)e->id, "at",
                         pc_json_time(e->at), "by", e->by, "action", e->action, "object", e->object, "vps",
                         pc_json_text(e->vps_id), "reason", pc_json_text(e->reason), "before",
                         before != NULL ? before : json_null(), "after", after != NULL ? after : json_null());
}

json_t *pc_json_attempt(const struct pc_attempt_count *a)
{
        return json_pack("{s:s?, s:i, s:s, s:I, s:o}", "proto", pc_proto_name(a->proto), "port", (int)a->port,
                         "direction", pc_dir_name(a->dir), "packets",
                         (json_int_t)(a->packets > INT64_MAX ? INT64_MAX : a->packets), "last_seen",
                         pc_json_time(a->last_seen));
}

json_t *pc_json_fleet_agent(const struct pc_fleet_agent *a)
{
        const struct pc_agent_beat *b = a->beat;

        return json_pack("{s:s, s:s, s:o, s:o, s:I, s:I, s:I, s:I, s:b, s:s, s:I}", "host", b->host, "state",
                         pc_agent_state_name(a->state), "started", pc_json_time(b->started), "heartbeat",
                         pc_json_time(b->heartbeat), "heartbeat_age_s", (json_int_t)a->age, "change_seen",
                         (json_int_t)b->change_seen, "lag", (json_int_t)a->lag, "vpses", (json_int_t)b->vpses,
                         "in_sync", b->in_sync, "version", b->version, "unconfirmed_departures",
                         (json_int_t)b->unconfirmed);
}

json_t *pc_json_fleet(json_t *agents, const struct pc_fleet_view *view)
{
        return json_pack("{s:o, s:I, s:I}", "agents", agents, "last_change", (json_int_t)view->last_change,
                         "stale_after_s", (json_int_t)view->stale_after);
}
