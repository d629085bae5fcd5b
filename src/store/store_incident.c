/* Incidents: noting what a detector saw (one open incident per VPS and
 * kind, counted), listing, closing. */
#include "store/store-sql.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Checks that incident <incident_id> (0: none) exists and is <vps_id>'s. */
int sql_incident_check(struct sql_store *s, const char *vps_id, int64_t incident_id)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        if (incident_id == 0)
                return 0;
        r = sql_query(s, &st, "SELECT vps_id FROM incident WHERE id = ?", "i", incident_id);
        if (r < 0)
                return r;
        r = sql_step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return sql_err(s, -ENOENT, "incident #%lld does not exist",
                               (long long)incident_id);
        if (strcmp(col_text(st, 0), vps_id) != 0)
                return sql_err(s, -EINVAL, "incident #%lld is about %s, not %s",
                               (long long)incident_id, col_text(st, 0), vps_id);
        return 0;
}

/* Closes the open incidents of <vps_id>: support has looked at the VPS
 * (it lifted the suspension), so abuse after this is a new episode, and
 * the policy answers it again. */
int sql_incidents_close(struct sql_store *s, const char *vps_id, const struct pc_actor *who, int64_t now)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r = sql_query(s, &st, "SELECT id FROM incident WHERE vps_id = ? AND state = 'open'", "t", vps_id);

        while (r >= 0 && (r = sql_step(s, st)) > 0) {
                int64_t id = db_column_int64(st, 0);
                char object[48];

                snprintf(object, sizeof(object), "incident/%lld", (long long)id);
                r = sql_exec(s, "UPDATE incident SET state = 'closed' WHERE id = ?", "i", id);
                if (r >= 0) {
                        _cleanup_json_ json_t *after = json_pack("{s:I, s:s}", "id", (json_int_t)id, "state",
                                                                 "closed");

                        r = sql_audit(s, now, who, "incident.close", object, vps_id, NULL, after);
                }
        }
        return r < 0 ? r : 0;
}

static int incident_note_tx(struct sql_store *s, const char *vps_id, const char *kind,
                            uint64_t count, int64_t at, const char *evidence, int64_t gap,
                            unsigned flags, int64_t *ret_id, bool *ret_opened)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        char object[48];
        int64_t id;
        int r;

        r = sql_lock(s, "vps", vps_id); /* one open incident per kind */
        if (r < 0)
                return r;
        r = sql_query(s, &st,
                      "SELECT id FROM incident WHERE vps_id = ? AND kind = ? AND state = 'open' "
                      "AND last_seen >= ? ORDER BY id DESC LIMIT 1",
                      "tti", vps_id, kind, at - gap);
        if (r < 0)
                return r;
        r = sql_step(s, st);
        if (r < 0)
                return r;
        if (r > 0) {
                id = db_column_int64(st, 0);
                r = sql_exec(s,
                             "UPDATE incident SET last_seen = CASE WHEN ?1 > last_seen THEN ?1 ELSE last_seen END, "
                             "count = count + ?2, evidence = coalesce(?3, evidence) WHERE id = ?4",
                             "iiti", at, (int64_t)count, evidence, id);
                if (r < 0)
                        return r;
                *ret_id = id;
                *ret_opened = false;
                return 0;
        }
        r = sql_insert(s, &id,
                       "INSERT INTO incident (vps_id, kind, first_seen, last_seen, count, evidence) "
                       "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                       "ttiiit", vps_id, kind, at, at, (int64_t)count, evidence);
        if (r < 0)
                return r;
        snprintf(object, sizeof(object), "incident/%lld", (long long)id);
        {
                _cleanup_json_ json_t *after = json_pack("{s:I, s:s, s:s, s:I, s:s?}", "id", (json_int_t)id,
                                                         "vps", vps_id, "kind", kind, "count",
                                                         (json_int_t)count, "evidence", evidence);
                struct pc_actor who = { .by = "portcullisd", .reason = "detected" };

                r = sql_audit(s, at, &who, "incident.open", object, vps_id, NULL, after);
        }
        if (r < 0)
                return r;
        if (flags & PC_INCIDENT_NOTICE) {
                /* In this transaction: no incident without its notice. */
                _cleanup_json_ json_t *vps = NULL, *facts = NULL;
                json_t *ev = evidence != NULL ? json_loads(evidence, 0, NULL) : NULL;

                facts = json_pack("{s:I, s:s, s:I, s:I, s:I, s:o}", "id", (json_int_t)id, "kind", kind,
                                  "first_seen", (json_int_t)at, "last_seen", (json_int_t)at, "count",
                                  (json_int_t)count, "evidence", ev != NULL ? ev : json_object());
                if (facts == NULL)
                        return sql_err(s, -ENOMEM, "incident #%lld: cannot describe it in JSON", (long long)id);
                r = sql_vps_fetch(s, vps_id, &vps);
                if (r >= 0)
                        r = sql_notify(s, at, "incident.opened", vps, facts);
                if (r < 0)
                        return r;
        }
        *ret_id = id;
        *ret_opened = true;
        return 0;
}

int store_incident_note(struct pc_store *ps, const char *vps_id, const char *kind, uint64_t count,
                        int64_t at, const char *evidence, int64_t gap, int64_t *ret_id,
                        bool *ret_opened, unsigned flags)
{
        struct sql_store *s = to_sql(ps);
        int64_t id = 0;
        bool opened = false;
        int r = sql_tx_begin(s);

        if (r < 0)
                return r;
        r = sql_tx_end(s, incident_note_tx(s, vps_id, kind, count, at, evidence, gap, flags, &id, &opened));
        if (r < 0)
                return r;
        if (ret_id != NULL)
                *ret_id = id;
        if (ret_opened != NULL)
                *ret_opened = opened;
        return 0;
}

int store_incident_times(struct pc_store *ps, const char *vps_id, const char *kind, int64_t since,
                         int64_t before_id, int64_t *ret_times, size_t max, size_t *ret_n)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        size_t n = 0;
        int r;

        if (max > INT64_MAX)
                max = INT64_MAX;
        r = sql_query(s, &st,
                      "SELECT first_seen FROM incident WHERE vps_id = ? AND kind = ? AND first_seen >= ? "
                      "AND (? = 0 OR id < ?) ORDER BY id DESC LIMIT ?",
                      "ttiiii", vps_id, kind, since, before_id, before_id, (int64_t)max);
        if (r < 0)
                return r;
        while (n < max && (r = sql_step(s, st)) > 0)
                ret_times[n++] = db_column_int64(st, 0);
        if (r < 0)
                return r;
        *ret_n = n;
        return 0;
}

/* ---- incidents, for support ---------------------------------------- */

#define INCIDENT_COLUMNS \
        "id, vps_id, kind, first_seen, last_seen, count, evidence, state, " \
        "(SELECT count(*) FROM action WHERE action.incident_id = incident.id)"

/* Fills <i> from the current row of <st> (INCIDENT_COLUMNS); its evidence
 * points into the row. */
static void incident_read(struct db_stmt *st, struct pc_incident *i)
{
        memset(i, 0, sizeof(*i));
        i->id = db_column_int64(st, 0);
        copy_trunc(i->vps_id, sizeof(i->vps_id), col_text(st, 1));
        copy_trunc(i->kind, sizeof(i->kind), col_text(st, 2));
        i->first_seen = db_column_int64(st, 3);
        i->last_seen = db_column_int64(st, 4);
        i->count = (uint64_t)db_column_int64(st, 5);
        i->evidence = col_text_or_null(st, 6);
        i->open = strcmp(col_text(st, 7), "open") == 0;
        i->actions = (size_t)db_column_int64(st, 8);
}

/* Calls <cb> for each row of <st> (INCIDENT_COLUMNS). */
static int incident_each(struct sql_store *s, struct db_stmt *st, pc_incident_cb cb, void *userdata)
{
        struct pc_incident i;
        int r;

        while ((r = sql_step(s, st)) > 0) {
                incident_read(st, &i);
                r = cb(&i, userdata);
                if (r < 0)
                        return r;
        }
        return r;
}

int store_incident_list(struct pc_store *ps, const char *vps_id, const char *kind, bool open_only,
                        int64_t before, pc_incident_cb cb, void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        r = sql_query(s, &st,
                      "SELECT " INCIDENT_COLUMNS " FROM incident WHERE (?1 IS NULL OR vps_id = ?1) "
                      "AND (?2 IS NULL OR kind = ?2) AND (?3 = 0 OR state = 'open') AND id < ?4 "
                      "ORDER BY id DESC",
                      "ttii", vps_id, kind, (int64_t)open_only, before > 0 ? before : INT64_MAX);
        if (r < 0)
                return r;
        return incident_each(s, st, cb, userdata);
}

int store_incident_get(struct pc_store *ps, int64_t id, pc_incident_cb cb, void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        struct pc_incident i;
        int r;

        r = sql_query(s, &st, "SELECT " INCIDENT_COLUMNS " FROM incident WHERE id = ?", "i", id);
        if (r < 0)
                return r;
        r = sql_step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return sql_err(s, -ENOENT, "incident #%lld does not exist", (long long)id);
        incident_read(st, &i);
        return cb(&i, userdata);
}

/* The incident at the current row of <st> (INCIDENT_COLUMNS) as JSON for
 * the audit log. */
static json_t *incident_json(struct db_stmt *st)
{
        return json_pack("{s:I, s:s, s:s, s:I, s:I, s:I, s:s}", "id", (json_int_t)db_column_int64(st, 0),
                         "vps", col_text(st, 1), "kind", col_text(st, 2), "first_seen",
                         (json_int_t)db_column_int64(st, 3), "last_seen",
                         (json_int_t)db_column_int64(st, 4), "count", (json_int_t)db_column_int64(st, 5),
                         "state", col_text(st, 7));
}

int sql_incident_close_tx(struct sql_store *s, int64_t id, bool lift_actions, const struct pc_actor *who,
                          int64_t now, size_t *ret_lifted)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        _cleanup_json_ json_t *before = NULL, *after = NULL;
        char object[48], vps_id[PC_NAME_MAX];
        size_t lifted = 0;
        int r;

        r = sql_query(s, &st, "SELECT " INCIDENT_COLUMNS " FROM incident WHERE id = ?", "i", id);
        if (r < 0 || (r = sql_step(s, st)) < 0)
                return r;
        if (r == 0)
                return sql_err(s, -ENOENT, "incident #%lld does not exist", (long long)id);
        copy_trunc(vps_id, sizeof(vps_id), col_text(st, 1));
        if (strcmp(col_text(st, 7), "open") != 0)
                return sql_err(s, -EALREADY, "incident #%lld of %s is closed already", (long long)id, vps_id);
        before = incident_json(st);
        after = json_deep_copy(before);
        if (after == NULL || json_object_set_new(after, "state", json_string("closed")) < 0)
                return sql_err(s, -ENOMEM, "incident #%lld: cannot describe it in JSON", (long long)id);
        r = sql_exec(s, "UPDATE incident SET state = 'closed' WHERE id = ?", "i", id);
        if (r < 0)
                return r;
        snprintf(object, sizeof(object), "incident/%lld", (long long)id);
        r = sql_audit(s, now, who, "incident.close", object, vps_id, before, after);
        /* One at a time: lifting a suspension closes other incidents too. */
        while (r >= 0 && lift_actions) {
                _cleanup_stmt_ struct db_stmt *ast = NULL;

                r = sql_query(s, &ast,
                              "SELECT " ACTION_COLUMNS " FROM action WHERE incident_id = ? AND lifted_at IS NULL "
                              "AND (until IS NULL OR until > ?) ORDER BY id LIMIT 1",
                              "ii", id, now);
                if (r < 0 || (r = sql_step(s, ast)) <= 0)
                        break;
                r = sql_action_lift_row(s, ast, who, now);
                lifted++;
        }
        if (r < 0)
                return r;
        if (ret_lifted != NULL)
                *ret_lifted = lifted;
        return 0;
}

int store_incident_close(struct pc_store *ps, int64_t id, bool lift_actions, const struct pc_actor *who,
                         size_t *ret_lifted)
{
        struct sql_store *s = to_sql(ps);
        int r;

        r = sql_check_actor(s, who);
        if (r >= 0 && (who->reason == NULL || who->reason[0] == '\0'))
                r = sql_err(s, -EINVAL, "closing incident #%lld needs a reason", (long long)id);
        if (r >= 0)
                r = sql_tx_begin(s);
        if (r < 0)
                return r;
        return sql_tx_end(s, sql_incident_close_tx(s, id, lift_actions, who, pc_now(), ret_lifted));
}
