/* Tickets: opening, querying, their events, the transitions of their
 * life (approve grants the exception), expiry. */
#include "store/store-sql.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Checks that ticket <ticket_id> (0: none) asks for the grant of
 * <service> to <vps_id> and is still undecided (open or investigating) --
 * an approved ticket was answered by a grant already, a denied, revoked,
 * expired or closed one was refused or is over.  The operations layer
 * judges a ticket before it asks for the grant; this keeps the store's
 * own callers (and a racing writer) from approving one twice. */
int sql_ticket_grantable(struct sql_store *s, const char *vps_id, const char *service, int64_t ticket_id)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        if (ticket_id == 0)
                return 0;
        r = sql_query(s, &st, "SELECT vps_id, service, state FROM ticket WHERE id = ?", "i", ticket_id);
        if (r < 0)
                return r;
        r = sql_step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return sql_err(s, -ENOENT, "ticket #%lld does not exist", (long long)ticket_id);
        if (strcmp(col_text(st, 0), vps_id) != 0)
                return sql_err(s, -EINVAL, "ticket #%lld is for %s, not %s",
                               (long long)ticket_id, col_text(st, 0), vps_id);
        if (strcmp(col_text(st, 1), service) != 0)
                return sql_err(s, -EINVAL, "ticket #%lld asks for %s, not %s", (long long)ticket_id,
                               col_text(st, 1), service);
        if (strcmp(col_text(st, 2), "open") != 0 && strcmp(col_text(st, 2), "investigating") != 0)
                return sql_err(s, -EALREADY,
                               "ticket #%lld is %s: only an open or investigating ticket can be "
                               "approved (the customer opens a new one)",
                               (long long)ticket_id, col_text(st, 2));
        return 0;
}

/* Records that ticket <id> is now <state> by <who> (note: its reason),
 * with its history row; <exception_id> (0: unchanged) is the exception an
 * approval made. */
int sql_ticket_mark(struct sql_store *s, int64_t id, const char *state, int64_t exception_id,
                    const struct pc_actor *who, int64_t now)
{
        int r = sql_exec(s,
                         "UPDATE ticket SET state = ?, updated = ?, updated_by = ?, note = ?, "
                         "exception_id = coalesce(?, exception_id) WHERE id = ?",
                         "tittni", state, now, who->by, who->reason, exception_id, id);

        if (r < 0)
                return r;
        return sql_exec(s, "INSERT INTO ticket_event (ticket_id, at, \"by\", kind, text) VALUES (?, ?, ?, ?, ?)",
                        "iittt", id, now, who->by, state, who->reason);
}

/* A ticket as it stands at ?1: an approved one whose exception ran out is
 * expired even before pc_store_ticket_expire_due records it. */
#define TICKET_STATE_AT "CASE WHEN t.state = 'approved' AND e.until IS NOT NULL AND e.until <= ?1 " \
        "THEN 'expired' ELSE t.state END"
#define TICKET_SELECT \
        "SELECT t.id, t.vps_id, t.service, t.ports, t.duration, " TICKET_STATE_AT ", t.opened_by, t.opened, " \
        "t.text, t.evidence, v.owner, coalesce(t.updated, t.opened), coalesce(t.updated_by, t.opened_by), " \
        "t.note, t.exception_id, e.until FROM ticket t JOIN vps v ON v.id = t.vps_id " \
        "LEFT JOIN exception e ON e.id = t.exception_id "

/* Reads the ticket at the current row of <st> (TICKET_SELECT). */
static int ticket_read(struct sql_store *s, struct db_stmt *st, struct pc_ticket *t)
{
        memset(t, 0, sizeof(*t));
        t->id = db_column_int64(st, 0);
        copy_trunc(t->vps_id, sizeof(t->vps_id), col_text(st, 1));
        copy_trunc(t->service, sizeof(t->service), col_text(st, 2));
        copy_trunc(t->ports, sizeof(t->ports), col_text(st, 3));
        t->duration = db_column_int64(st, 4);
        if (pc_ticket_state_parse(col_text(st, 5), &t->state) < 0)
                return sql_err(s, -EINVAL, "ticket #%lld has an unknown state '%s'", (long long)t->id,
                               col_text(st, 5));
        copy_trunc(t->opened_by, sizeof(t->opened_by), col_text(st, 6));
        t->opened = db_column_int64(st, 7);
        copy_trunc(t->text, sizeof(t->text), col_text(st, 8));
        copy_trunc(t->evidence, sizeof(t->evidence), col_text(st, 9));
        copy_trunc(t->owner, sizeof(t->owner), col_text(st, 10));
        t->updated = db_column_int64(st, 11);
        copy_trunc(t->updated_by, sizeof(t->updated_by), col_text(st, 12));
        copy_trunc(t->note, sizeof(t->note), col_text(st, 13));
        t->exception_id = db_column_int64(st, 14);
        t->until = db_column_int64(st, 15);
        return 0;
}

/* <t> as the audit log and notifications describe it. */
static json_t *ticket_json(const struct pc_ticket *t)
{
        return json_pack("{s:I, s:s, s:s, s:o, s:o, s:s, s:s, s:I, s:s, s:o, s:o}", "id", (json_int_t)t->id, "vps",
                         t->vps_id, "service", t->service, "ports",
                         t->ports[0] != '\0' ? json_string(t->ports) : json_null(), "duration",
                         t->duration != 0 ? json_integer(t->duration) : json_null(), "state",
                         pc_ticket_state_name(t->state), "opened_by", t->opened_by, "opened", (json_int_t)t->opened,
                         "text", t->text, "evidence", t->evidence[0] != '\0' ? json_string(t->evidence) : json_null(),
                         "exception", t->exception_id != 0 ? json_integer(t->exception_id) : json_null());
}

/* Reads ticket <id> at <now> into *<t>: 0, or -ENOENT. */
static int ticket_fetch(struct sql_store *s, int64_t id, int64_t now, struct pc_ticket *t)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r = sql_query(s, &st, TICKET_SELECT "WHERE t.id = ?2", "ii", now, id);

        if (r < 0 || (r = sql_step(s, st)) < 0)
                return r;
        if (r == 0)
                return sql_err(s, -ENOENT, "ticket #%lld does not exist", (long long)id);
        return ticket_read(s, st, t);
}

static int ticket_open_tx(struct sql_store *s, const struct pc_ticket *t,
                          const struct pc_actor *who, int64_t now, int64_t *ret_id)
{
        _cleanup_json_ json_t *vps = NULL, *after = NULL, *facts = NULL;
        _cleanup_free_ struct pc_ticket *saved = malloc(sizeof(*saved));
        char object[64];
        int64_t id;
        int r;

        if (saved == NULL)
                return sql_err(s, -ENOMEM, "out of memory");
        r = sql_vps_fetch(s, t->vps_id, &vps);
        if (r < 0)
                return r;
        r = sql_insert(s, &id,
                       "INSERT INTO ticket (vps_id, service, ports, duration, state, opened_by, opened, text, "
                       "evidence) VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?) RETURNING id",
                       "tttntitt", t->vps_id, t->service, t->ports[0] != '\0' ? t->ports : NULL, t->duration,
                       who->by, now, t->text, t->evidence[0] != '\0' ? t->evidence : NULL);
        if (r < 0)
                return r;
        r = sql_exec(s,
                     "INSERT INTO ticket_event (ticket_id, at, \"by\", kind, text) "
                     "VALUES (?, ?, ?, 'opened', ?)",
                     "iitt", id, now, who->by, t->text);
        if (r < 0)
                return r;
        r = ticket_fetch(s, id, now, saved);
        if (r < 0)
                return r;
        after = ticket_json(saved);
        if (after == NULL)
                return sql_err(s, -ENOMEM, "ticket #%lld: cannot describe it in JSON",
                               (long long)id);
        snprintf(object, sizeof(object), "ticket/%lld", (long long)id);
        r = sql_audit(s, now, who, "ticket.open", object, t->vps_id, NULL, after);
        if (r < 0)
                return r;
        /* The owner hears that the request arrived, whoever opened it. */
        facts = json_deep_copy(after);
        if (facts == NULL || json_object_set_new(facts, "ticket", json_integer(id)) < 0 ||
            json_object_set_new(facts, "by", json_string(who->by)) < 0 ||
            json_object_set_new(facts, "created", json_integer(now)) < 0)
                return sql_err(s, -ENOMEM, "ticket #%lld: cannot describe it in JSON", (long long)id);
        r = sql_notify(s, now, "ticket.received", vps, facts);
        if (r < 0)
                return r;
        *ret_id = id;
        return 0;
}

/* Checks the shape of what a ticket carries: the store is the last line
 * whoever calls it. */
static int ticket_check(struct sql_store *s, const struct pc_ticket *t)
{
        int r;

        if (strnlen(t->vps_id, sizeof(t->vps_id)) >= sizeof(t->vps_id))
                return sql_err(s, -EINVAL, "the ticket's vps id is not terminated");
        if (strnlen(t->service, sizeof(t->service)) >= sizeof(t->service) ||
            !pc_exception_subject_valid(t->service))
                return sql_err(s, -EINVAL, "invalid service name '%.63s'", t->service);
        if (strnlen(t->ports, sizeof(t->ports)) >= sizeof(t->ports))
                return sql_err(s, -EINVAL, "the ticket's ports are not terminated");
        if (t->ports[0] != '\0') {
                struct pc_port_range p[PC_EXCEPTION_PORTS_MAX];
                char err[128];
                size_t n;

                if (pc_ports_parse(t->ports, p, &n, err, sizeof(err)) < 0)
                        return sql_err(s, -EINVAL, "the ticket's ports %s", err);
        }
        if (t->duration < 0)
                return sql_err(s, -EINVAL, "the ticket's duration is negative");
        if (strnlen(t->text, sizeof(t->text)) >= sizeof(t->text))
                return sql_err(s, -EINVAL, "the ticket's text is not terminated");
        if (strnlen(t->evidence, sizeof(t->evidence)) >= sizeof(t->evidence))
                return sql_err(s, -EINVAL, "the ticket's evidence is not terminated");
        r = sql_check_text(s, "the ticket's text", t->text, sizeof(t->text));
        return r < 0 ? r : sql_check_text(s, "the ticket's evidence", t->evidence, sizeof(t->evidence));
}

int store_ticket_open(struct pc_store *ps, const struct pc_ticket *t,
                      const struct pc_actor *who, int64_t *ret_id)
{
        struct sql_store *s = to_sql(ps);
        int64_t id = 0;
        int r;

        r = sql_check_actor(s, who);
        if (r >= 0)
                r = ticket_check(s, t);
        if (r >= 0)
                r = sql_tx_begin(s);
        if (r < 0)
                return r;
        r = sql_tx_end(s, ticket_open_tx(s, t, who, pc_now(), &id));
        if (r < 0)
                return r;
        if (ret_id != NULL)
                *ret_id = id;
        return 0;
}

int store_ticket_query(struct pc_store *ps, const struct pc_ticket_query *q, int64_t now, pc_ticket_cb cb,
                       void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        _cleanup_free_ struct pc_ticket *t = NULL;
        int64_t lim = sql_limit(q->limit);
        const char *state = q->state < 0 ? NULL : pc_ticket_state_name((enum pc_ticket_state)q->state);
        int r;

        if (q->state >= 0 && state == NULL)
                return sql_err(s, -EINVAL, "no ticket state %d", q->state);
        if (q->vps_id != NULL) {
                _cleanup_json_ json_t *vps = NULL;

                r = sql_vps_fetch(s, q->vps_id, &vps);
                if (r < 0)
                        return r;
        }
        /* One VPS's tickets through its index; a customer's through the
         * VPSes' owner. */
        r = sql_query(s, &st,
                      q->vps_id != NULL
                          ? TICKET_SELECT "WHERE t.vps_id = ?2 AND (?3 IS NULL OR v.owner = ?3) "
                                          "AND (?4 IS NULL OR " TICKET_STATE_AT " = ?4) AND t.id < ?6 "
                                          "ORDER BY t.id DESC LIMIT ?5"
                          : TICKET_SELECT "WHERE ?2 IS NULL AND (?3 IS NULL OR v.owner = ?3) "
                                          "AND (?4 IS NULL OR " TICKET_STATE_AT " = ?4) AND t.id < ?6 "
                                          "ORDER BY t.id DESC LIMIT ?5",
                  "ittti" "i", now, q->vps_id, q->owner, state, lim, q->before > 0 ? q->before : INT64_MAX);
        if (r < 0)
                return r;
        t = malloc(sizeof(*t));
        if (t == NULL)
                return sql_err(s, -ENOMEM, "out of memory");
        while ((r = sql_step(s, st)) > 0) {
                r = ticket_read(s, st, t);
                if (r < 0)
                        break;
                r = cb(t, userdata);
                if (r < 0)
                        break;
        }
        return r < 0 ? r : 0;
}

int store_ticket_get(struct pc_store *ps, int64_t id, int64_t now, struct pc_ticket *ret)
{
        return ticket_fetch(to_sql(ps), id, now, ret);
}

int store_ticket_events(struct pc_store *ps, int64_t id, pc_ticket_event_cb cb, void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        _cleanup_free_ struct pc_ticket_event *e = malloc(sizeof(*e));
        int r;

        if (e == NULL)
                return sql_err(s, -ENOMEM, "out of memory");
        r = sql_query(s, &st, "SELECT at, \"by\", kind, text FROM ticket_event WHERE ticket_id = ? ORDER BY id", "i",
                      id);
        if (r < 0)
                return r;
        while ((r = sql_step(s, st)) > 0) {
                memset(e, 0, sizeof(*e));
                e->at = db_column_int64(st, 0);
                copy_trunc(e->by, sizeof(e->by), col_text(st, 1));
                copy_trunc(e->kind, sizeof(e->kind), col_text(st, 2));
                copy_trunc(e->text, sizeof(e->text), col_text(st, 3));
                r = cb(e, userdata);
                if (r < 0)
                        break;
        }
        return r < 0 ? r : 0;
}

static const char *const ticket_verbs[PC_TICKET_STATE_COUNT_] = {
        [PC_TICKET_INVESTIGATING] = "ticket.investigate", [PC_TICKET_APPROVED] = "ticket.approve",
        [PC_TICKET_DENIED] = "ticket.deny",               [PC_TICKET_REVOKED] = "ticket.revoke",
        [PC_TICKET_EXPIRED] = "ticket.expire",
};

static int ticket_transition_tx(struct sql_store *s, int64_t id, enum pc_ticket_state from,
                                enum pc_ticket_state to, const struct pc_exception *grant,
                                const struct pc_actor *who, int64_t now, int64_t *ret_exception_id)
{
        _cleanup_free_ struct pc_ticket *t = malloc(sizeof(*t));
        _cleanup_json_ json_t *before = NULL, *after = NULL, *vps = NULL, *facts = NULL;
        const char *verb = (unsigned)to < PC_TICKET_STATE_COUNT_ ? ticket_verbs[to] : NULL;
        char object[64];
        int64_t eid = 0;
        int r;

        if (t == NULL)
                return sql_err(s, -ENOMEM, "out of memory");
        if (verb == NULL)
                return sql_err(s, -EINVAL, "no ticket becomes %s by a transition",
                               pc_ticket_state_name(to) != NULL ? pc_ticket_state_name(to) : "that");
        r = ticket_fetch(s, id, now, t);
        if (r < 0)
                return r;
        if (t->state != from)
                return sql_err(s, -EALREADY, "ticket #%lld is %s, no longer %s", (long long)id,
                               pc_ticket_state_name(t->state), pc_ticket_state_name(from));
        before = ticket_json(t);
        r = sql_vps_fetch(s, t->vps_id, &vps);
        if (r < 0)
                return r;
        switch (to) {
        case PC_TICKET_APPROVED: {
                struct pc_exception e = *grant;

                e.ticket_id = id;
                snprintf(e.service, sizeof(e.service), "%s", t->service);
                r = sql_exception_grant_tx(s, t->vps_id, &e, who, now, "ticket.approved", &eid);
                break;
        }
        case PC_TICKET_REVOKED: {
                _cleanup_stmt_ struct db_stmt *st = NULL;

                /* Its exception, if still in force: revoked as `exception
                 * revoke` does (the owner is told). */
                r = sql_query(s, &st,
                              "SELECT id FROM exception WHERE id = ? AND revoked_at IS NULL "
                              "AND (until IS NULL OR until > ?)",
                              "ii", t->exception_id, now);
                if (r < 0 || (r = sql_step(s, st)) < 0)
                        return r;
                if (r > 0 && (r = sql_exception_revoke_tx(s, t->vps_id, t->service, who, now, true)) < 0)
                        return r;
                r = sql_ticket_mark(s, id, "revoked", 0, who, now);
                break;
        }
        case PC_TICKET_DENIED:
                r = sql_ticket_mark(s, id, "denied", 0, who, now);
                facts = json_deep_copy(before);
                if (r >= 0 && (facts == NULL || json_object_set_new(facts, "ticket", json_integer(id)) < 0 ||
                               json_object_set_new(facts, "by", json_string(who->by)) < 0 ||
                               json_object_set_new(facts, "reason", json_string(who->reason != NULL ? who->reason
                                                                                                   : "")) < 0 ||
                               json_object_set_new(facts, "created", json_integer(now)) < 0))
                        r = sql_err(s, -ENOMEM, "ticket #%lld: cannot describe it in JSON", (long long)id);
                if (r >= 0)
                        r = sql_notify(s, now, "ticket.denied", vps, facts);
                break;
        default:
                r = sql_ticket_mark(s, id, pc_ticket_state_name(to), 0, who, now);
                break;
        }
        if (r < 0)
                return r;
        r = ticket_fetch(s, id, now, t);
        if (r < 0)
                return r;
        after = ticket_json(t);
        if (before == NULL || after == NULL)
                return sql_err(s, -ENOMEM, "ticket #%lld: cannot describe it in JSON", (long long)id);
        snprintf(object, sizeof(object), "ticket/%lld", (long long)id);
        r = sql_audit(s, now, who, verb, object, t->vps_id, before, after);
        if (r < 0)
                return r;
        if (ret_exception_id != NULL)
                *ret_exception_id = eid;
        return 0;
}

int store_ticket_transition(struct pc_store *ps, int64_t id, enum pc_ticket_state from,
                            enum pc_ticket_state to, const struct pc_exception *grant,
                            const struct pc_actor *who, int64_t *ret_exception_id)
{
        struct sql_store *s = to_sql(ps);
        int64_t now = pc_now();
        int r;

        r = sql_check_actor(s, who);
        if (r >= 0 && grant != NULL) {
                if (strnlen(grant->reason, sizeof(grant->reason)) >= sizeof(grant->reason))
                        return sql_err(s, -EINVAL, "the exception's reason is not terminated");
                r = sql_check_text(s, "the exception's reason", grant->reason, sizeof(grant->reason));
                if (r >= 0)
                        r = sql_check_until(s, "the exception", grant->until, now);
        }
        if (r >= 0)
                r = sql_tx_begin(s);
        if (r < 0)
                return r;
        return sql_tx_end(s, ticket_transition_tx(s, id, from, to, grant, who, now, ret_exception_id));
}

static int ticket_expire_tx(struct sql_store *s, int64_t now, const char *host, const struct pc_actor *who,
                            size_t *ret_n)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int64_t ids[256];
        size_t n = 0;
        int r;

        r = sql_query(s, &st,
                      "SELECT t.id FROM ticket t JOIN exception e ON e.id = t.exception_id "
                      "WHERE t.state = 'approved' AND e.until IS NOT NULL AND e.until <= ?1 "
                      "AND (?2 IS NULL OR t.vps_id IN (SELECT id FROM vps WHERE host = ?2 OR moving_from = ?2)) "
                      "ORDER BY t.id LIMIT 256",
                      "it", now, host);
        if (r < 0)
                return r;
        while (n < PC_ARRAY_SIZE(ids) && (r = sql_step(s, st)) > 0)
                ids[n++] = db_column_int64(st, 0);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                r = ticket_transition_tx(s, ids[i], PC_TICKET_EXPIRED, PC_TICKET_EXPIRED, NULL, who, now, NULL);
                if (r < 0)
                        return r;
        }
        *ret_n = n;
        return 0;
}

int store_ticket_expire_due(struct pc_store *ps, int64_t now, const char *host, const struct pc_actor *who,
                            size_t *ret_n)
{
        struct sql_store *s = to_sql(ps);
        size_t n = 0;
        int r;

        r = sql_write_begin(s, who);
        if (r < 0)
                return r;
        r = sql_tx_end(s, ticket_expire_tx(s, now, host, who, &n));
        if (r >= 0 && ret_n != NULL)
                *ret_n = n;
        return r;
}
