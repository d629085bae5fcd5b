/* A ticket's findings (issue 13, docs/OPERATIONS.md): the evidence
 * Portcullis has beside a ticket, for support to weigh -- the VPS's blocked
 * attempts on the ports of the service asked (the kernel's counters, as
 * portcullisd last wrote them to the store), its incidents (the
 * terms-of-service ones, "blocked-use", among them) and actions, and the
 * customer's earlier tickets.  Written once, for the HTTP API (GET
 * /v1/tickets/{id}) and `portcullis ticket show`: neither reads the
 * kernel, so neither needs root. */
#include "ops/ops.h"

#include <errno.h>
#include <stdlib.h>

#include <jansson.h>

#include "base/util.h"
#include "ops/ops_json.h"

static int attempt_cb(const struct pc_attempt_count *a, void *userdata)
{
        return json_array_size(userdata) < PC_FINDINGS_MAX ? json_array_append_new(userdata, pc_json_attempt(a))
                                                           : -ENOBUFS;
}

static int incident_cb(const struct pc_incident *i, void *userdata)
{
        return json_array_size(userdata) < PC_FINDINGS_MAX ? json_array_append_new(userdata, pc_json_incident(i))
                                                           : -ENOBUFS;
}

struct actions_of {
        json_t *list;
        int64_t now;
};

static int action_cb(const struct pc_store_action *a, void *userdata)
{
        struct actions_of *x = userdata;

        return json_array_size(x->list) < PC_FINDINGS_MAX ? json_array_append_new(x->list, pc_json_action(a, x->now))
                                                          : -ENOBUFS;
}

struct earlier {
        json_t *list;
        int64_t self;
};

static int ticket_cb(const struct pc_ticket *t, void *userdata)
{
        struct earlier *e = userdata;

        if (t->id == e->self)
                return 0;
        return json_array_size(e->list) < PC_FINDINGS_MAX ? json_array_append_new(e->list, pc_json_ticket(t))
                                                          : -ENOBUFS;
}

/* Appends to <list> <t>'s VPS's counts on the ports of the rule of its
 * site's policy for the service asked, by port; none if the site has no
 * rule for it (scanning, a source prefix, a service it does not block). */
static int attempts_of(struct pc_ops *o, const struct pc_ops_actor *who, const struct pc_ticket *t, json_t *list,
                       struct pc_ops_error *err)
{
        const struct pc_rule *rule;
        struct pc_vps *vps = NULL;
        int r = pc_ops_vps_fetch(o, who, t->vps_id, &vps, err);

        if (r < 0)
                return r;
        rule = pc_policy_rule_for(vps->site->policy, t->service);
        for (size_t k = 0; rule != NULL && k < rule->n_ports && r >= 0; k++)
                r = pc_store_attempt_list(o->store, vps->id, rule->ports[k].proto, rule->ports[k].lo,
                                          rule->ports[k].hi, PC_FINDINGS_MAX, attempt_cb, list);
        pc_vps_free(vps);
        if (r < 0 && r != -ENOBUFS)
                return pc_ops_store_fail(o, r, NULL, err);
        return 0;
}

int pc_ops_ticket_findings(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id, json_t **ret,
                           struct pc_ops_error *err)
{
        _cleanup_free_ struct pc_ticket *t = NULL;
        struct pc_ticket_query q = { .state = -1, .limit = PC_FINDINGS_MAX + 1 };
        struct actions_of acts = { NULL, pc_now() };
        struct earlier earlier = { NULL, id };
        json_t *attempts = NULL, *incidents = NULL;
        int r;

        if ((r = pc_ops_authorize(who, PC_OP_TICKET_FINDINGS, err)) < 0)
                return r;
        t = malloc(sizeof(*t));
        if (t == NULL)
                return pc_ops_fail(err, PC_OPS_EIO, NULL, "out of memory");
        if ((r = pc_ops_ticket_get(o, who, id, t, err)) < 0)
                return r;
        q.owner = t->owner;
        attempts = json_array();
        incidents = json_array();
        acts.list = json_array();
        earlier.list = json_array();
        if (attempts == NULL || incidents == NULL || acts.list == NULL || earlier.list == NULL)
                r = pc_ops_fail(err, PC_OPS_EIO, NULL, "out of memory");
        if (r >= 0)
                r = attempts_of(o, who, t, attempts, err);
        if (r >= 0)
                r = pc_ops_incident_list(o, who, t->vps_id, NULL, false, 0, incident_cb, incidents, err);
        if (r >= 0 || r == -ENOBUFS)
                r = pc_ops_action_list(o, who, t->vps_id, 0, false, 0, action_cb, &acts, err);
        if (r >= 0 || r == -ENOBUFS)
                r = pc_ops_ticket_list(o, who, &q, ticket_cb, &earlier, err);
        if (r >= 0 || r == -ENOBUFS)
                *ret = json_pack("{s:o, s:o, s:o, s:o}", "blocked_attempts", attempts, "incidents", incidents,
                                 "actions", acts.list, "earlier_tickets", earlier.list);
        else {
                json_decref(attempts);
                json_decref(incidents);
                json_decref(acts.list);
                json_decref(earlier.list);
                return r;
        }
        return *ret != NULL ? 0 : pc_ops_fail(err, PC_OPS_EIO, NULL, "out of memory");
}
