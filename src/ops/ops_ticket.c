/* Tickets: a customer's request for an exception, the team's
 * investigation and decision, and the exception an approval makes (ops.h,
 * docs/OPERATIONS.md).
 *
 *     open -> investigating -> approved | denied
 *     open -> approved | denied
 *     approved -> revoked | expired
 *
 * The transitions are one table here; the store records each with its
 * history row, audit row and the owner's email in one transaction. */
#include "ops/ops.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#define NOTE_SIZE 256 /* bytes of a stored note (a reason), with its NUL */

/* The states each transition leaves, as a mask of (1 << state). */
#define ST(s) (1u << (s))
static const struct {
        enum pc_op op;
        unsigned from;
        const char *verb;  /* "investigated", in "only an open ticket can be investigated" */
        const char *froms; /* the states of <from>, in words */
} transitions[PC_TICKET_STATE_COUNT_] = {
        [PC_TICKET_INVESTIGATING] = { PC_OP_TICKET_INVESTIGATE, ST(PC_TICKET_OPEN), "investigated", "an open" },
        [PC_TICKET_APPROVED] = { PC_OP_TICKET_APPROVE, ST(PC_TICKET_OPEN) | ST(PC_TICKET_INVESTIGATING), "approved",
                                 "an open or investigating" },
        [PC_TICKET_DENIED] = { PC_OP_TICKET_DENY, ST(PC_TICKET_OPEN) | ST(PC_TICKET_INVESTIGATING), "denied",
                               "an open or investigating" },
        [PC_TICKET_REVOKED] = { PC_OP_TICKET_REVOKE, ST(PC_TICKET_APPROVED), "revoked", "an approved" },
        [PC_TICKET_EXPIRED] = { PC_OP_TICKET_EXPIRE, ST(PC_TICKET_APPROVED), "expired", "an approved" },
};

/* May <who> see <t>?  A customer sees their own VPSes' tickets only. */
static bool visible(const struct pc_ops_actor *who, const struct pc_ticket *t)
{
        return who->role != PC_ROLE_CUSTOMER || (who->customer != NULL && strcmp(t->owner, who->customer) == 0);
}

/* What of the team's work a customer sees: who of the team acted is
 * "support", and an investigation's note is internal. */
static void redact_by(const struct pc_ops_actor *who, char *by, size_t size)
{
        if (strcmp(by, who->principal) != 0)
                snprintf(by, size, "support");
}

static void redact_ticket(const struct pc_ops_actor *who, struct pc_ticket *t)
{
        if (who->role != PC_ROLE_CUSTOMER)
                return;
        redact_by(who, t->updated_by, sizeof(t->updated_by));
        if (t->state == PC_TICKET_INVESTIGATING)
                t->note[0] = '\0';
}

/* Reads ticket <id> for <who> into *<t> (no authorisation: the caller's). */
static int ticket_fetch(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id, struct pc_ticket *t,
                        struct pc_ops_error *err)
{
        int r;

        if (id <= 0)
                return pc_ops_fail(err, PC_OPS_EINVAL, "ticket", "is not a ticket number");
        r = pc_store_ticket_get(o->store, id, pc_now(), t);
        if (r < 0)
                return pc_ops_store_fail(o, r, NULL, err);
        if (!visible(who, t))
                return pc_ops_fail(err, PC_OPS_ENOENT, NULL, "ticket #%lld does not exist", (long long)id);
        return 0;
}

int pc_ops_ticket_get(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id, struct pc_ticket *ret,
                      struct pc_ops_error *err)
{
        int r = pc_ops_authorize(who, PC_OP_TICKET_READ, err);

        if (r >= 0)
                r = ticket_fetch(o, who, id, ret, err);
        if (r >= 0)
                redact_ticket(who, ret);
        return r;
}

struct history {
        const struct pc_ops_actor *who;
        pc_ticket_event_cb cb;
        void *userdata;
};

static int history_cb(const struct pc_ticket_event *e, void *userdata)
{
        struct history *h = userdata;
        struct pc_ticket_event shown;

        if (h->who->role != PC_ROLE_CUSTOMER)
                return h->cb(e, h->userdata);
        shown = *e;
        redact_by(h->who, shown.by, sizeof(shown.by));
        if (strcmp(e->kind, pc_ticket_state_name(PC_TICKET_INVESTIGATING)) == 0)
                shown.text[0] = '\0';
        return h->cb(&shown, h->userdata);
}

int pc_ops_ticket_history(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id, pc_ticket_event_cb cb,
                          void *userdata, struct pc_ops_error *err)
{
        struct history h = { who, cb, userdata };
        struct pc_ticket *t = malloc(sizeof(*t));
        int r;

        if (t == NULL)
                return pc_ops_fail(err, PC_OPS_EIO, NULL, "out of memory");
        r = pc_ops_ticket_get(o, who, id, t, err); /* whose it is */
        free(t);
        if (r < 0)
                return r;
        r = pc_store_ticket_events(o->store, id, history_cb, &h);
        return r < 0 ? pc_ops_store_fail(o, r, NULL, err) : 0;
}

struct listing {
        const struct pc_ops_actor *who;
        pc_ticket_cb cb;
        void *userdata;
};

static int listing_cb(const struct pc_ticket *t, void *userdata)
{
        struct listing *l = userdata;
        struct pc_ticket *shown = malloc(sizeof(*shown));
        int r;

        if (shown == NULL)
                return -ENOMEM;
        *shown = *t;
        redact_ticket(l->who, shown);
        r = l->cb(shown, l->userdata);
        free(shown);
        return r;
}

int pc_ops_ticket_list(struct pc_ops *o, const struct pc_ops_actor *who, const struct pc_ticket_query *q,
                       pc_ticket_cb cb, void *userdata, struct pc_ops_error *err)
{
        struct pc_ticket_query mine = *q;
        int r = pc_ops_authorize(who, PC_OP_TICKET_READ, err);

        if (r < 0)
                return r;
        if (who->role == PC_ROLE_CUSTOMER) {
                if (who->customer == NULL || who->customer[0] == '\0')
                        return pc_ops_fail(err, PC_OPS_EINVAL, "customer", "is required for a customer");
                if (q->vps_id != NULL) {
                        struct pc_vps *v = NULL;

                        r = pc_ops_vps_fetch(o, who, q->vps_id, &v, err);
                        pc_vps_free(v);
                        if (r < 0)
                                return r;
                }
                mine.owner = who->customer;
        }
        if (who->role == PC_ROLE_CUSTOMER) {
                struct listing l = { who, cb, userdata };

                r = pc_store_ticket_query(o->store, &mine, pc_now(), listing_cb, &l);
        } else
                r = pc_store_ticket_query(o->store, &mine, pc_now(), cb, userdata);
        return r < 0 ? pc_ops_store_fail(o, r, q->vps_id != NULL ? "vps" : NULL, err) : 0;
}

/* Parses <text> (a ports subset) into <p>, which must lie within <of>
 * (the rule's ports, or what the ticket asked).  <what> says which. */
static int ports_check(const char *text, const struct pc_port_range *of, size_t n_of, const char *what,
                       struct pc_port_range *p, size_t *n, struct pc_ops_error *err)
{
        char why[160], have[PC_PORTS_TEXT_MAX];

        if (pc_ops_text_check("ports", text, PC_PORTS_TEXT_MAX, err) < 0)
                return -EINVAL;
        if (pc_ports_parse(text, p, n, why, sizeof(why)) < 0)
                return pc_ops_fail(err, PC_OPS_EINVAL, "ports", "'%s' %s", text, why);
        if (!pc_ports_within(p, *n, of, n_of)) {
                pc_ports_format(of, n_of, have, sizeof(have));
                return pc_ops_fail(err, PC_OPS_EINVAL, "ports", "'%s' is not within %s (%s)", text, what, have);
        }
        return 0;
}

/* The tickets of a VPS still waiting for a decision. */
struct pending {
        const char *service;
        size_t n;
        int64_t same; /* one for the same service; 0: none */
};

static int pending_cb(const struct pc_ticket *t, void *userdata)
{
        struct pending *p = userdata;

        if (t->state != PC_TICKET_OPEN && t->state != PC_TICKET_INVESTIGATING)
                return 0;
        p->n++;
        if (strcmp(t->service, p->service) == 0)
                p->same = t->id;
        return 0;
}

/* A customer asks once per service, and has a few questions pending per
 * VPS at most: each ticket is an email and work for the team. */
static int pending_check(struct pc_ops *o, const struct pc_vps *vps, const char *service, struct pc_ops_error *err)
{
        struct pc_ticket_query q = { .vps_id = vps->id, .state = -1 };
        struct pending p = { .service = service };
        int r = pc_store_ticket_query(o->store, &q, pc_now(), pending_cb, &p);

        if (r < 0)
                return pc_ops_store_fail(o, r, NULL, err);
        if (p.same != 0)
                return pc_ops_fail(err, PC_OPS_EEXIST, "service", "ticket #%lld for %s on %s is waiting for a decision already",
                                   (long long)p.same, service, vps->id);
        if (p.n >= PC_TICKETS_PENDING_MAX)
                return pc_ops_fail(err, PC_OPS_ELIMIT, NULL,
                                   "%s has %zu tickets waiting for a decision (at most %d): wait for them", vps->id, p.n,
                                   PC_TICKETS_PENDING_MAX);
        return 0;
}

static int ticket_open_checked(struct pc_ops *o, const struct pc_ops_actor *who, const struct pc_ticket_spec *spec,
                       int64_t *ret_id, struct pc_ops_error *err)
{
        struct pc_ticket *t = NULL;
        struct pc_vps *vps = NULL;
        const struct pc_rule *rule = NULL;
        struct pc_actor actor;
        int64_t id = 0;
        int r;

        if ((r = pc_ops_authorize(who, PC_OP_TICKET_OPEN, err)) < 0)
                return r;
        if (spec->service == NULL || spec->service[0] == '\0')
                return pc_ops_fail(err, PC_OPS_EINVAL, "service", "is required");
        if (strlen(spec->service) >= PC_NAME_MAX || !pc_exception_subject_valid(spec->service))
                return pc_ops_fail(err, PC_OPS_EINVAL, "service", "'%s' is not a service name", spec->service);
        if (spec->text == NULL || spec->text[0] == '\0')
                return pc_ops_fail(err, PC_OPS_EINVAL, "text", "is required: the use case, what the service is for");
        if ((r = pc_ops_text_check("text", spec->text, PC_TICKET_TEXT_MAX, err)) < 0 ||
            (r = pc_ops_text_check("evidence", spec->evidence, PC_TICKET_EVIDENCE_MAX, err)) < 0)
                return r;
        if (spec->duration < 0 || spec->duration > PC_TICKET_DURATION_MAX)
                return pc_ops_fail(err, PC_OPS_EINVAL, "duration", "must be 0 (none said) to %d seconds (a year)",
                                   PC_TICKET_DURATION_MAX);
        if ((r = pc_ops_vps_fetch(o, who, spec->vps_id, &vps, err)) < 0)
                return r;
        /* What no approval could answer is refused now, with why, not left
         * open for support to find out. */
        r = pc_ops_grant_check(o, who, vps, spec->service, &rule, err);
        if (r < 0)
                goto out;
        t = calloc(1, sizeof(*t));
        if (t == NULL) {
                r = pc_ops_fail(err, PC_OPS_EIO, NULL, "out of memory");
                goto out;
        }
        if (spec->ports != NULL) {
                struct pc_port_range p[PC_EXCEPTION_PORTS_MAX];
                size_t n;

                if (rule == NULL) {
                        r = pc_ops_fail(err, PC_OPS_EINVAL, "ports", "are a service's: %s has none",
                                        spec->service);
                        goto out;
                }
                r = ports_check(spec->ports, rule->ports, rule->n_ports, "the ports the site blocks for the service",
                                p, &n, err);
                if (r < 0)
                        goto out;
                pc_ports_format(p, n, t->ports, sizeof(t->ports));
        }
        r = pending_check(o, vps, spec->service, err);
        if (r < 0)
                goto out;
        snprintf(t->vps_id, sizeof(t->vps_id), "%s", vps->id);
        snprintf(t->service, sizeof(t->service), "%s", spec->service);
        snprintf(t->text, sizeof(t->text), "%s", spec->text);
        snprintf(t->evidence, sizeof(t->evidence), "%s", spec->evidence != NULL ? spec->evidence : "");
        t->duration = spec->duration;
        actor = pc_ops_store_actor(who, NULL);
        r = pc_store_ticket_open(o->store, t, &actor, &id);
        if (r < 0) {
                pc_ops_store_fail(o, r, NULL, err);
                goto out;
        }
        if (ret_id != NULL)
                *ret_id = id;
out:
        free(t);
        pc_vps_free(vps);
        return r;
}

/* One transaction: no second ticket for the service slips in between. */
int pc_ops_ticket_open(struct pc_ops *o, const struct pc_ops_actor *who, const struct pc_ticket_spec *spec,
                       int64_t *ret_id, struct pc_ops_error *err)
{
        int r = pc_ops_begin(o, err);

        return r < 0 ? r : pc_ops_end(o, ticket_open_checked(o, who, spec, ret_id, err), err);
}

/* Authorises <who> for the transition of ticket <id> to <to> and reads the
 * ticket into *<t>, refusing a state the transition does not leave. */
static int transition_begin(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id, enum pc_ticket_state to,
                            struct pc_ticket *t, struct pc_ops_error *err)
{
        int r = pc_ops_authorize(who, transitions[to].op, err);

        if (r < 0 || (r = ticket_fetch(o, who, id, t, err)) < 0)
                return r;
        if (!(transitions[to].from & ST(t->state)))
                return pc_ops_fail(err, PC_OPS_ECONFLICT, NULL, "ticket #%lld is %s: only %s ticket can be %s",
                                   (long long)id, pc_ticket_state_name(t->state), transitions[to].froms,
                                   transitions[to].verb);
        return 0;
}

/* A note (reason) of a transition: <required> or not. */
static int note_check(const char *field, const char *note, bool required, struct pc_ops_error *err)
{
        if (required && (note == NULL || note[0] == '\0'))
                return pc_ops_fail(err, PC_OPS_EINVAL, field, "is required: the customer's email gives it");
        return pc_ops_text_check(field, note, NOTE_SIZE, err);
}

/* The transitions that change the state only (and the owner's email). */
static int transition_simple(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id, enum pc_ticket_state to,
                             const char *note, bool note_required, struct pc_ops_error *err)
{
        struct pc_ticket *t = malloc(sizeof(*t));
        struct pc_actor actor;
        int r;

        if (t == NULL)
                return pc_ops_fail(err, PC_OPS_EIO, NULL, "out of memory");
        r = transition_begin(o, who, id, to, t, err);
        if (r >= 0)
                r = note_check(note_required ? "reason" : "note", note, note_required, err);
        if (r >= 0) {
                actor = pc_ops_store_actor(who, note != NULL && note[0] != '\0' ? note : NULL);
                r = pc_store_ticket_transition(o->store, id, t->state, to, NULL, &actor, NULL);
                if (r < 0)
                        pc_ops_store_fail(o, r, NULL, err);
        }
        free(t);
        return r;
}

int pc_ops_ticket_investigate(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id, const char *note,
                              struct pc_ops_error *err)
{
        return transition_simple(o, who, id, PC_TICKET_INVESTIGATING, note, false, err);
}

int pc_ops_ticket_deny(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id, const char *reason,
                       struct pc_ops_error *err)
{
        return transition_simple(o, who, id, PC_TICKET_DENIED, reason, true, err);
}

int pc_ops_ticket_revoke(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id, const char *reason,
                         struct pc_ops_error *err)
{
        return transition_simple(o, who, id, PC_TICKET_REVOKED, reason, true, err);
}

static int ticket_approve_checked(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id,
                          const struct pc_ticket_approval *a, struct pc_grant_result *ret, struct pc_ops_error *err)
{
        struct pc_exception e = { 0 };
        struct pc_ticket *t = malloc(sizeof(*t));
        struct pc_vps *vps = NULL;
        const struct pc_rule *rule = NULL;
        struct pc_actor actor;
        int64_t now = pc_now(), eid = 0;
        int r;

        if (t == NULL)
                return pc_ops_fail(err, PC_OPS_EIO, NULL, "out of memory");
        r = transition_begin(o, who, id, PC_TICKET_APPROVED, t, err);
        if (r >= 0)
                r = note_check("note", a->note, false, err);
        if (r >= 0 && a->until != 0 && a->until <= now)
                r = pc_ops_fail(err, PC_OPS_EINVAL, "until", "is not in the future");
        if (r >= 0)
                r = pc_ops_vps_fetch(o, who, t->vps_id, &vps, err);
        /* The site's policy now, not when the ticket was opened. */
        if (r >= 0)
                r = pc_ops_grant_check(o, who, vps, t->service, &rule, err);
        if (r < 0)
                goto out;
        if (t->ports[0] != '\0' || a->ports != NULL) {
                struct pc_port_range asked[PC_EXCEPTION_PORTS_MAX];
                size_t n_asked = 0;
                char why[160];

                if (rule == NULL) {
                        r = pc_ops_fail(err, PC_OPS_EINVAL, "ports", "are a service's: %s has none", t->service);
                        goto out;
                }
                if (t->ports[0] != '\0' && pc_ports_parse(t->ports, asked, &n_asked, why, sizeof(why)) < 0) {
                        r = pc_ops_fail(err, PC_OPS_EIO, NULL, "ticket #%lld's ports %s", (long long)id, why);
                        goto out;
                }
                /* Support may open fewer ports than asked, never more. */
                if (a->ports != NULL)
                        r = n_asked > 0 ? ports_check(a->ports, asked, n_asked, "the ports the ticket asks for",
                                                      e.ports, &e.n_ports, err)
                                        : ports_check(a->ports, rule->ports, rule->n_ports,
                                                      "the ports the site blocks for the service", e.ports,
                                                      &e.n_ports, err);
                else {
                        memcpy(e.ports, asked, n_asked * sizeof(asked[0]));
                        e.n_ports = n_asked;
                }
                /* Still within what the site blocks now. */
                if (r >= 0 && !pc_ports_within(e.ports, e.n_ports, rule->ports, rule->n_ports))
                        r = pc_ops_fail(err, PC_OPS_ECONFLICT, "ports",
                                        "site %s no longer blocks every port ticket #%lld asks for", vps->site->name,
                                        (long long)id);
                if (r < 0)
                        goto out;
        }
        snprintf(e.service, sizeof(e.service), "%s", t->service);
        /* A duration asked is at most a year (pc_ops_ticket_open): no overflow. */
        e.until = a->until != 0 ? a->until : t->duration > 0 && t->duration <= PC_TICKET_DURATION_MAX ? now + t->duration : 0;
        e.ticket_id = id;
        if (a->note != NULL && a->note[0] != '\0')
                snprintf(e.reason, sizeof(e.reason), "%s", a->note);
        else
                snprintf(e.reason, sizeof(e.reason), "ticket #%lld approved", (long long)id);
        actor = pc_ops_store_actor(who, e.reason);
        r = pc_store_ticket_transition(o->store, id, t->state, PC_TICKET_APPROVED, &e, &actor, &eid);
        if (r < 0) {
                pc_ops_store_fail(o, r, NULL, err);
                goto out;
        }
        if (ret != NULL)
                *ret = (struct pc_grant_result){ .id = eid, .site = vps->site, .rule = rule };
out:
        pc_vps_free(vps);
        free(t);
        return r;
}

/* One transaction: the ticket's state and the VPS's exceptions checked
 * are the ones the approval is written against. */
int pc_ops_ticket_approve(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id,
                          const struct pc_ticket_approval *a, struct pc_grant_result *ret, struct pc_ops_error *err)
{
        int r = pc_ops_begin(o, err);

        return r < 0 ? r : pc_ops_end(o, ticket_approve_checked(o, who, id, a, ret, err), err);
}

int pc_ops_ticket_expire_due(struct pc_ops *o, const struct pc_ops_actor *who, const char *host, size_t *ret_n,
                             struct pc_ops_error *err)
{
        struct pc_actor actor;
        int r = pc_ops_authorize(who, PC_OP_TICKET_EXPIRE, err);

        if (r < 0)
                return r;
        actor = pc_ops_store_actor(who, "its exception ran out");
        r = pc_store_ticket_expire_due(o->store, pc_now(), host, &actor, ret_n);
        return r < 0 ? pc_ops_store_fail(o, r, NULL, err) : 0;
}
