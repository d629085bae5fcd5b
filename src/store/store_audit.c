/* The audit log: its rows, written with every change, read by support,
 * and the change feed that agents follow (its ids). */
#include "store/store-sql.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends the audit row of a change.  <before> and <after> (JSON, either
 * may be NULL) are borrowed. */
int sql_audit(struct sql_store *s, int64_t now, const struct pc_actor *who,
              const char *action, const char *object, const char *vps_id, json_t *before,
              json_t *after)
{
        _cleanup_free_ char *b = NULL, *a = NULL;

        if (before != NULL && (b = json_dumps(before, JSON_FLAGS)) == NULL)
                return sql_err(s, -ENOMEM, "%s: cannot write the audit record", object);
        if (after != NULL && (a = json_dumps(after, JSON_FLAGS)) == NULL)
                return sql_err(s, -ENOMEM, "%s: cannot write the audit record", object);
        return sql_exec(s,
                        "INSERT INTO audit (at, \"by\", action, object, vps_id, reason, \"before\", "
                        "\"after\") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        "ittttttt", now, who->by, action, object, vps_id, who->reason, b, a);
}

#define AUDIT_COLUMNS "id, at, \"by\", action, object, vps_id, reason, \"before\", \"after\""

int store_audit_list(struct pc_store *ps, const char *vps_id, size_t limit, pc_audit_cb cb,
                     void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        struct pc_audit_entry *e = NULL;
        int64_t lim = sql_limit(limit);
        int r;

        /* The newest <limit>, then turned oldest first. */
        if (vps_id != NULL)
                r = sql_query(s, &st,
                              "SELECT * FROM (SELECT " AUDIT_COLUMNS " FROM audit WHERE vps_id = ? "
                              "ORDER BY id DESC LIMIT ?) AS newest ORDER BY id",
                              "ti", vps_id, lim);
        else
                r = sql_query(s, &st,
                              "SELECT * FROM (SELECT " AUDIT_COLUMNS " FROM audit "
                              "ORDER BY id DESC LIMIT ?) AS newest ORDER BY id",
                              "i", lim);
        if (r < 0)
                return r;
        e = malloc(sizeof(*e));
        if (e == NULL)
                return sql_err(s, -ENOMEM, "out of memory");
        while ((r = sql_step(s, st)) > 0) {
                memset(e, 0, sizeof(*e));
                e->id = db_column_int64(st, 0);
                e->at = db_column_int64(st, 1);
                copy_trunc(e->by, sizeof(e->by), col_text(st, 2));
                copy_trunc(e->action, sizeof(e->action), col_text(st, 3));
                copy_trunc(e->object, sizeof(e->object), col_text(st, 4));
                copy_trunc(e->vps_id, sizeof(e->vps_id), col_text(st, 5));
                copy_trunc(e->reason, sizeof(e->reason), col_text(st, 6));
                e->before = col_text_or_null(st, 7);
                e->after = col_text_or_null(st, 8);
                r = cb(e, userdata);
                if (r < 0)
                        break;
        }
        free(e);
        return r < 0 ? r : 0;
}

/* ---- the change feed ------------------------------------------------ */

int store_changes(struct pc_store *ps, int64_t after, size_t limit, pc_change_cb cb, void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        struct pc_change c;
        int r;

        r = sql_query(s, &st,
                      "SELECT a.id, a.vps_id, a.action, v.host, v.moving_from FROM audit a "
                      "LEFT JOIN vps v ON v.id = a.vps_id WHERE a.id > ? ORDER BY a.id LIMIT ?",
                      "ii", after, sql_limit(limit));
        if (r < 0)
                return r;
        while ((r = sql_step(s, st)) > 0) {
                memset(&c, 0, sizeof(c));
                c.id = db_column_int64(st, 0);
                copy_trunc(c.vps_id, sizeof(c.vps_id), col_text(st, 1));
                copy_trunc(c.action, sizeof(c.action), col_text(st, 2));
                copy_trunc(c.host, sizeof(c.host), col_text(st, 3));
                copy_trunc(c.moving_from, sizeof(c.moving_from), col_text(st, 4));
                r = cb(&c, userdata);
                if (r < 0)
                        return r;
        }
        return r;
}

int store_change_last(struct pc_store *ps, int64_t *ret_id)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        r = sql_query(s, &st, "SELECT coalesce(max(id), 0) FROM audit", "");
        if (r < 0)
                return r;
        r = sql_step(s, st);
        if (r < 0)
                return r;
        *ret_id = r > 0 ? db_column_int64(st, 0) : 0;
        return 0;
}
