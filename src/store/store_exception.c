/* Exceptions: granting (from a ticket or directly), revoking, ending at
 * their time, and the owner's notices before they end. */
#include "store/store-sql.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads the exception of the row at <st> whose columns 1-8 are id,
 * service, ticket_id, by, reason, created, until, ports. */
void sql_exception_read(struct db_stmt *st, struct pc_exception *e)
{
        memset(e, 0, sizeof(*e));
        e->id = db_column_int64(st, 1);
        copy_trunc(e->service, sizeof(e->service), col_text(st, 2));
        e->ticket_id = db_column_int64(st, 3);
        copy_trunc(e->by, sizeof(e->by), col_text(st, 4));
        copy_trunc(e->reason, sizeof(e->reason), col_text(st, 5));
        e->created = db_column_int64(st, 6);
        e->until = db_column_int64(st, 7);
        /* Written canonical by exception_grant: a subset that no longer
         * parses lifts nothing rather than everything. */
        if (!db_column_is_null(st, 8)) {
                char err[128];

                if (pc_ports_parse(col_text(st, 8), e->ports, &e->n_ports, err, sizeof(err)) < 0) {
                        e->n_ports = 1;
                        e->ports[0] = (struct pc_port_range){ .proto = PC_PROTO_TCP, .lo = 0, .hi = 0 };
                }
        }
}

#define EXCEPTION_COLUMNS "id, vps_id, service, ticket_id, \"by\", reason, created, until, ports"

/* The exception at the current row of <st> (EXCEPTION_COLUMNS) as JSON. */
static json_t *exception_json(struct db_stmt *st)
{
        json_t *j = json_pack("{s:I, s:s, s:s, s:o, s:s, s:o, s:I, s:o}", "id",
                              (json_int_t)db_column_int64(st, 0), "vps", col_text(st, 1),
                              "service", col_text(st, 2), "ticket", col_json_int(st, 3), "by",
                              col_text(st, 4), "reason", col_json_text(st, 5), "created",
                              (json_int_t)db_column_int64(st, 6), "until", col_json_int(st, 7));

        /* Only a port subset says "ports": the whole service as before. */
        if (j != NULL && !db_column_is_null(st, 8) &&
            json_object_set_new(j, "ports", json_string(col_text(st, 8))) < 0) {
                json_decref(j);
                return NULL;
        }
        return j;
}

/* Reads exception <id> as JSON into *<ret>. */
static int exception_fetch(struct sql_store *s, int64_t id, json_t **ret)
{
        return sql_row_fetch(s, "exception", "SELECT " EXCEPTION_COLUMNS " FROM exception WHERE id = ?",
                             exception_json, id, ret);
}

/* Grants <e> to <vps_id>, queuing the owner's <notification>. */
int sql_exception_grant_tx(struct sql_store *s, const char *vps_id,
                           const struct pc_exception *e, const struct pc_actor *who,
                           int64_t now, const char *notification, int64_t *ret_id)
{
        char ports[PC_PORTS_CANON_MAX];
        _cleanup_stmt_ struct db_stmt *st = NULL, *cst = NULL;
        _cleanup_json_ json_t *vps = NULL, *after = NULL;
        const char *reason = e->reason[0] != '\0' ? e->reason : who->reason;
        int64_t id;
        int r;

        r = sql_vps_hold(s, vps_id, &vps);
        if (r < 0)
                return r;
        r = sql_query(s, &st,
                      "SELECT id, until FROM exception "
                      "WHERE vps_id = ? AND service = ? AND revoked_at IS NULL",
                      "tt", vps_id, e->service);
        if (r < 0)
                return r;
        r = sql_step(s, st);
        if (r < 0)
                return r;
        if (r > 0) {
                int64_t old = db_column_int64(st, 0);

                if (db_column_is_null(st, 1) || db_column_int64(st, 1) > now)
                        return sql_err(s, -EEXIST,
                                       "%s already has an exception for service %s "
                                       "(exception #%lld)",
                                       vps_id, e->service, (long long)old);
                /* Over by its end time: close it so that the new one can be
                 * the one in force. */
                r = sql_exec(s,
                             "UPDATE exception SET revoked_at = until, revoked_by = ? WHERE id = ?",
                             "ti", EXPIRED_BY, old);
                if (r < 0)
                        return r;
        }
        r = sql_query(s, &cst,
                      "SELECT count(*) FROM exception WHERE vps_id = ? AND revoked_at IS NULL "
                      "AND (until IS NULL OR until > ?)",
                      "ti", vps_id, now);
        if (r < 0 || (r = sql_step(s, cst)) < 0)
                return r;
        if (db_column_int64(cst, 0) >= PC_VPS_EXCEPTIONS_MAX)
                return sql_err(s, -ENOSPC, "%s already has %d exceptions, the limit", vps_id,
                               PC_VPS_EXCEPTIONS_MAX);
        r = sql_ticket_grantable(s, vps_id, e->service, e->ticket_id);
        if (r < 0)
                return r;
        pc_ports_format(e->ports, e->n_ports, ports, sizeof(ports));
        r = sql_insert(s, &id,
                       "INSERT INTO exception (vps_id, service, ticket_id, \"by\", reason, created, "
                       "until, ports) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                       "ttnttint", vps_id, e->service, e->ticket_id, who->by, reason, now, e->until,
                       e->n_ports > 0 ? ports : NULL);
        if (r < 0)
                return r;
        if (e->ticket_id != 0 && (r = sql_ticket_mark(s, e->ticket_id, "approved", id, who, now)) < 0)
                return r;
        r = exception_fetch(s, id, &after);
        if (r < 0)
                return r;
        r = sql_record_created(s, now, who, vps_id, vps, "exception", id, after, "exception.grant", notification);
        if (r < 0)
                return r;
        if (ret_id != NULL)
                *ret_id = id;
        return 0;
}

int store_exception_grant(struct pc_store *ps, const char *vps_id,
                          const struct pc_exception *e, const struct pc_actor *who,
                          int64_t *ret_id)
{
        struct sql_store *s = to_sql(ps);
        int64_t now = pc_now(), id = 0;
        char what[160];
        int r;

        r = sql_check_actor(s, who);
        if (r < 0)
                return r;
        if (strnlen(e->service, sizeof(e->service)) >= sizeof(e->service) ||
            !pc_exception_subject_valid(e->service))
                return sql_err(s, -EINVAL, "invalid service name '%.63s'", e->service);
        if (strnlen(e->reason, sizeof(e->reason)) >= sizeof(e->reason))
                return sql_err(s, -EINVAL, "the exception's reason is not terminated");
        r = sql_check_text(s, "the exception's reason", e->reason, sizeof(e->reason));
        if (r < 0)
                return r;
        snprintf(what, sizeof(what), "exception for %s on %.63s", e->service, vps_id);
        r = sql_check_until(s, what, e->until, now);
        if (r >= 0)
                r = sql_tx_begin(s);
        if (r < 0)
                return r;
        r = sql_tx_end(s, sql_exception_grant_tx(s, vps_id, e, who, now, "exception.granted", &id));
        if (r < 0)
                return r;
        if (ret_id != NULL)
                *ret_id = id;
        return 0;
}

/* The newest exception for <service> on <vps_id> that ran to its end by
 * <now>: revoked ones ended early and are not "expired"; one closed when
 * a new grant replaced it (revoked_at = until) ran its course. */
int store_exception_ended(struct pc_store *ps, const char *vps_id, const char *service, int64_t now,
                          struct pc_exception *ret)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        r = sql_query(s, &st,
                      "SELECT vps_id, id, service, ticket_id, \"by\", reason, created, until, ports FROM exception "
                      "WHERE vps_id = ? AND service = ? AND until IS NOT NULL AND until <= ? "
                      "AND (revoked_at IS NULL OR revoked_at >= until) ORDER BY until DESC, id DESC LIMIT 1",
                      "tti", vps_id, service, now);
        if (r < 0)
                return r;
        r = sql_step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return sql_err(s, -ENOENT, "%s has no exception for %s that ended", vps_id, service);
        sql_exception_read(st, ret);
        return 0;
}

/* Revokes <vps_id>'s exception for <service>; the approved ticket it
 * answered, if any, becomes revoked unless <from_ticket> (the ticket's
 * own revocation records that itself). */
int sql_exception_revoke_tx(struct sql_store *s, const char *vps_id, const char *service,
                            const struct pc_actor *who, int64_t now, bool from_ticket)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        _cleanup_json_ json_t *vps = NULL, *before = NULL, *facts = NULL;
        char object[64];
        int64_t id, tid;
        int r;

        r = sql_vps_hold(s, vps_id, &vps);
        if (r < 0)
                return r;
        r = sql_query(s, &st,
                      "SELECT " EXCEPTION_COLUMNS " FROM exception "
                      "WHERE vps_id = ? AND service = ? AND revoked_at IS NULL "
                      "AND (until IS NULL OR until > ?)",
                      "tti", vps_id, service, now);
        if (r < 0)
                return r;
        r = sql_step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return sql_err(s, -ENOENT, "%s has no exception for service %s", vps_id, service);
        id = db_column_int64(st, 0);
        tid = db_column_int64(st, 3);
        before = exception_json(st);
        if (before == NULL)
                return sql_err(s, -ENOMEM, "exception #%lld: cannot describe it in JSON",
                               (long long)id);
        r = sql_exec(s, "UPDATE exception SET revoked_at = ?, revoked_by = ? WHERE id = ?", "iti",
                     now, who->by, id);
        if (r < 0)
                return r;
        snprintf(object, sizeof(object), "exception/%lld", (long long)id);
        r = sql_audit(s, now, who, "exception.revoke", object, vps_id, before, NULL);
        if (r < 0)
                return r;
        if (!from_ticket && tid != 0) {
                _cleanup_stmt_ struct db_stmt *tst = NULL;

                r = sql_query(s, &tst, "SELECT state FROM ticket WHERE id = ?", "i", tid);
                if (r < 0 || (r = sql_step(s, tst)) < 0)
                        return r;
                if (r > 0 && strcmp(col_text(tst, 0), "approved") == 0 &&
                    (r = sql_ticket_mark(s, tid, "revoked", 0, who, now)) < 0)
                        return r;
        }
        /* The owner is told who revoked it and why, not who granted it. */
        facts = json_deep_copy(before);
        if (facts == NULL || json_object_set_new(facts, "by", json_string(who->by)) < 0 ||
            json_object_set_new(facts, "reason",
                                who->reason != NULL ? json_string(who->reason) : json_null()) < 0)
                return sql_err(s, -ENOMEM, "exception #%lld: cannot describe it in JSON",
                               (long long)id);
        return sql_notify(s, now, "exception.revoked", vps, facts);
}

int store_exception_revoke(struct pc_store *ps, const char *vps_id, const char *service,
                           const struct pc_actor *who)
{
        struct sql_store *s = to_sql(ps);
        int r;

        r = sql_write_begin(s, who);
        if (r < 0)
                return r;
        return sql_tx_end(s, sql_exception_revoke_tx(s, vps_id, service, who, pc_now(), false));
}

#define EXPIRY_BATCH 100

static int expiry_notices_tx(struct sql_store *s, int64_t now, int64_t within, const char *host,
                             size_t *ret_count)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        json_t *due[EXPIRY_BATCH];
        size_t n = 0, i;
        int r;

        r = sql_query(s, &st,
                      "SELECT " EXCEPTION_COLUMNS " FROM exception WHERE revoked_at IS NULL "
                      "AND warned_at IS NULL AND until IS NOT NULL AND until > ?1 AND until <= ?2 "
                      "AND (?4 IS NULL OR vps_id IN (SELECT id FROM vps WHERE host = ?4 OR moving_from = ?4)) "
                      "ORDER BY until LIMIT ?3",
                      "iiit", now, now + within, (int64_t)EXPIRY_BATCH, host);
        if (r < 0)
                return r;
        /* Read them all first: the loop below writes to the same table. */
        while (n < EXPIRY_BATCH && (r = sql_step(s, st)) > 0) {
                due[n] = exception_json(st);
                if (due[n] == NULL) {
                        r = sql_err(s, -ENOMEM, "cannot describe an exception in JSON");
                        break;
                }
                n++;
        }
        for (i = 0; r >= 0 && i < n; i++) {
                _cleanup_json_ json_t *vps = NULL;
                const char *vps_id = json_string_value(json_object_get(due[i], "vps"));

                r = sql_vps_fetch(s, vps_id, &vps);
                if (r >= 0)
                        r = sql_notify(s, now, "exception.expiring", vps, due[i]);
                if (r >= 0)
                        r = sql_exec(s, "UPDATE exception SET warned_at = ? WHERE id = ?", "ii", now,
                                     (int64_t)json_integer_value(json_object_get(due[i], "id")));
        }
        for (i = 0; i < n; i++)
                json_decref(due[i]);
        if (r < 0)
                return r;
        *ret_count = n;
        return 0;
}

int store_exception_expiry_notices(struct pc_store *ps, int64_t now, int64_t within, const char *host,
                                   size_t *ret_count)
{
        struct sql_store *s = to_sql(ps);
        size_t n = 0;
        int r;

        r = sql_tx_begin(s);
        if (r < 0)
                return r;
        r = sql_tx_end(s, expiry_notices_tx(s, now, within, host, &n));
        if (r < 0)
                return r;
        *ret_count = n;
        return 0;
}
