/* Actions on a VPS: filters and suspensions placed, lifted, ended;
 * terminations; and actions as support lists and changes them. */
#include "store/store-sql.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The filter or suspension at the current row of <st> (ACTION_COLUMNS). */
static json_t *action_json(struct db_stmt *st)
{
        if (strcmp(col_text(st, 2), "suspension") == 0 && db_column_int64(st, 10) != 0)
                return json_pack("{s:I, s:s, s:o, s:s, s:o, s:I, s:b}", "id",
                                 (json_int_t)db_column_int64(st, 0), "vps", col_text(st, 1),
                                 "incident", col_json_int(st, 5), "by", col_text(st, 6),
                                 "reason", col_json_text(st, 7), "created",
                                 (json_int_t)db_column_int64(st, 8), "terminated", 1);
        if (strcmp(col_text(st, 2), "suspension") == 0)
                return json_pack("{s:I, s:s, s:o, s:s, s:o, s:I}", "id",
                                 (json_int_t)db_column_int64(st, 0), "vps", col_text(st, 1),
                                 "incident", col_json_int(st, 5), "by", col_text(st, 6),
                                 "reason", col_json_text(st, 7), "created",
                                 (json_int_t)db_column_int64(st, 8));
        return json_pack("{s:I, s:s, s:s, s:s, s:o, s:s, s:o, s:I, s:o}", "id",
                         (json_int_t)db_column_int64(st, 0), "vps", col_text(st, 1),
                         "direction", col_text(st, 3), "scope", col_text(st, 4), "incident",
                         col_json_int(st, 5), "by", col_text(st, 6), "reason",
                         col_json_text(st, 7), "created", (json_int_t)db_column_int64(st, 8),
                         "until", col_json_int(st, 9));
}

/* Reads the action (filter or suspension) <id> as JSON into *<ret>. */
int sql_action_fetch(struct sql_store *s, int64_t id, json_t **ret)
{
        return sql_row_fetch(s, "action", "SELECT " ACTION_COLUMNS " FROM action WHERE id = ?", action_json, id, ret);
}

/* Writes the scope of <f> as stored: "all", "service:NAME", "tcp/25". */
static int format_scope(struct sql_store *s, const struct pc_filter *f, char *buf,
                        size_t size)
{
        switch (f->scope) {
        case PC_SCOPE_ALL:
                snprintf(buf, size, "all");
                return 0;
        case PC_SCOPE_SERVICE:
                if (f->service == NULL || !pc_name_valid(f->service->name))
                        return sql_err(s, -EINVAL, "a service filter needs a valid service");
                snprintf(buf, size, "service:%s", f->service->name);
                return 0;
        case PC_SCOPE_PORTS:
                if ((f->ports.proto != PC_PROTO_TCP && f->ports.proto != PC_PROTO_UDP) ||
                    f->ports.lo > f->ports.hi)
                        return sql_err(s, -EINVAL,
                                       "a port filter needs tcp or udp and a range low-high");
                pc_port_range_format(&f->ports, buf, size);
                return 0;
        }
        return sql_err(s, -EINVAL, "unknown filter scope %d", (int)f->scope);
}

static int filter_place_tx(struct sql_store *s, const char *vps_id, const struct pc_filter *f,
                           const char *scope, const struct pc_actor *who, int64_t now,
                           int64_t *ret_id)
{
        _cleanup_stmt_ struct db_stmt *cst = NULL;
        _cleanup_json_ json_t *vps = NULL, *after = NULL;
        const char *reason = f->reason[0] != '\0' ? f->reason : who->reason;
        int64_t id;
        int r;

        r = sql_vps_hold(s, vps_id, &vps);
        if (r < 0)
                return r;
        r = sql_incident_check(s, vps_id, f->incident_id);
        if (r < 0)
                return r;
        r = sql_query(s, &cst,
                      "SELECT count(*) FROM action WHERE vps_id = ? AND kind = 'filter' "
                      "AND lifted_at IS NULL AND (until IS NULL OR until > ?)",
                      "ti", vps_id, now);
        if (r < 0 || (r = sql_step(s, cst)) < 0)
                return r;
        if (db_column_int64(cst, 0) >= PC_VPS_FILTERS_MAX)
                return sql_err(s, -ENOSPC, "%s already has %d filters, the limit", vps_id,
                               PC_VPS_FILTERS_MAX);
        r = sql_insert(s, &id,
                       "INSERT INTO action (vps_id, kind, direction, scope, incident_id, \"by\", "
                       "reason, created, until) VALUES (?, 'filter', ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                       "tttnttin", vps_id, pc_dir_name(f->direction), scope, f->incident_id, who->by,
                       reason, now, f->until);
        if (r < 0)
                return r;
        r = sql_action_fetch(s, id, &after);
        if (r < 0)
                return r;
        r = sql_record_action(s, now, who, vps_id, vps, "filter", id, after, f->incident_id, "filter.place",
                              "filter.placed");
        if (r < 0)
                return r;
        *ret_id = id;
        return 0;
}

int store_filter_place(struct pc_store *ps, const char *vps_id, const struct pc_filter *f,
                       const struct pc_actor *who, int64_t *ret_id)
{
        struct sql_store *s = to_sql(ps);
        int64_t now = pc_now(), id = 0;
        char scope[PC_NAME_MAX + 16], what[128];
        int r;

        r = sql_check_actor(s, who);
        if (r < 0)
                return r;
        if (f->direction != PC_DIR_EGRESS && f->direction != PC_DIR_INGRESS &&
            f->direction != PC_DIR_BOTH)
                return sql_err(s, -EINVAL, "a filter needs a direction: egress, ingress or both");
        r = format_scope(s, f, scope, sizeof(scope));
        if (r < 0)
                return r;
        if (strnlen(f->reason, sizeof(f->reason)) >= sizeof(f->reason))
                return sql_err(s, -EINVAL, "the filter's reason is not terminated");
        r = sql_check_text(s, "the filter's reason", f->reason, sizeof(f->reason));
        if (r < 0)
                return r;
        snprintf(what, sizeof(what), "filter on %.63s", vps_id);
        r = sql_check_until(s, what, f->until, now);
        if (r >= 0)
                r = sql_tx_begin(s);
        if (r < 0)
                return r;
        r = sql_tx_end(s, filter_place_tx(s, vps_id, f, scope, who, now, &id));
        if (r < 0)
                return r;
        if (ret_id != NULL)
                *ret_id = id;
        return 0;
}

/* Lifting a filter ends the episode it answered: its incident, if still
 * open, is closed (audited), so that abuse after this is a new incident
 * and the policy answers it again -- as an unsuspension does. */
static int filter_episode_end(struct sql_store *s, int64_t filter_id, const struct pc_actor *who, int64_t now)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        size_t lifted = 0;
        int64_t incident;
        int r = sql_query(s, &st,
                          "SELECT i.id FROM action a JOIN incident i ON i.id = a.incident_id "
                          "WHERE a.id = ? AND i.state = 'open'",
                          "i", filter_id);

        if (r < 0 || (r = sql_step(s, st)) <= 0)
                return r;
        incident = db_column_int64(st, 0);
        return sql_incident_close_tx(s, incident, false, who, now, &lifted);
}

/* Lifts the action at the current row of <st>: audited as <action>, the
 * owner's <notification> queued and, unless <webhook_url> is NULL or "",
 * the same event to the webhook. */
static int action_lift(struct sql_store *s, struct db_stmt *st, json_t *vps, const char *action,
                       const char *object_kind, const char *notification, const char *webhook_url,
                       const struct pc_actor *who, int64_t now)
{
        _cleanup_json_ json_t *before = NULL, *facts = NULL;
        int64_t id = db_column_int64(st, 0);
        const char *vps_id = json_string_value(json_object_get(vps, "id"));
        char object[64];
        int r;

        before = action_json(st);
        if (before == NULL)
                return sql_err(s, -ENOMEM, "%s/%lld: cannot describe it in JSON", object_kind,
                               (long long)id);
        r = sql_exec(s, "UPDATE action SET lifted_at = ?, lifted_by = ? WHERE id = ?", "iti", now,
                     who->by, id);
        if (r < 0)
                return r;
        snprintf(object, sizeof(object), "%s/%lld", object_kind, (long long)id);
        r = sql_audit(s, now, who, action, object, vps_id, before, NULL);
        if (r >= 0 && strcmp(object_kind, "filter") == 0)
                r = filter_episode_end(s, id, who, now);
        if (r < 0)
                return r;
        facts = json_deep_copy(before);
        if (facts == NULL || json_object_set_new(facts, "by", json_string(who->by)) < 0 ||
            json_object_set_new(facts, "reason",
                                who->reason != NULL ? json_string(who->reason) : json_null()) < 0)
                return sql_err(s, -ENOMEM, "%s: cannot describe it in JSON", object);
        r = sql_notify(s, now, notification, vps, facts);
        if (r >= 0 && webhook_url != NULL && webhook_url[0] != '\0')
                r = sql_webhook_queue(s, now, notification, webhook_url, vps, facts);
        return r;
}

/* Lifts the suspension at the current row of <st> (ACTION_COLUMNS), which
 * termination_check allowed.  A termination's end is vps.unterminate in
 * the audit log and "vps.unterminated" to the owner and, with
 * <who>->webhook_url, to billing, which was told of the termination. */
static int suspension_lift(struct sql_store *s, struct db_stmt *st, json_t *vps, const struct pc_actor *who,
                           int64_t now)
{
        if (db_column_int64(st, 10) == 0)
                return action_lift(s, st, vps, "vps.unsuspend", "suspension", "vps.unsuspended", NULL, who, now);
        return action_lift(s, st, vps, "vps.unterminate", "suspension", "vps.unterminated", who->webhook_url, who,
                           now);
}

static int filter_lift_tx(struct sql_store *s, const char *vps_id, int64_t filter_id,
                          const struct pc_actor *who, int64_t now)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        _cleanup_json_ json_t *vps = NULL;
        int r;

        r = sql_vps_hold(s, vps_id, &vps);
        if (r < 0)
                return r;
        r = sql_query(s, &st,
                      "SELECT " ACTION_COLUMNS " FROM action WHERE id = ? AND vps_id = ? "
                      "AND kind = 'filter' AND lifted_at IS NULL AND (until IS NULL OR until > ?)",
                      "iti", filter_id, vps_id, now);
        if (r < 0)
                return r;
        r = sql_step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return sql_err(s, -ENOENT, "%s has no filter #%lld in force", vps_id,
                               (long long)filter_id);
        return action_lift(s, st, vps, "filter.lift", "filter", "filter.lifted", NULL, who, now);
}

int store_filter_lift(struct pc_store *ps, const char *vps_id, int64_t filter_id,
                      const struct pc_actor *who)
{
        struct sql_store *s = to_sql(ps);
        int r;

        r = sql_write_begin(s, who);
        if (r < 0)
                return r;
        return sql_tx_end(s, filter_lift_tx(s, vps_id, filter_id, who, pc_now()));
}

/* Prepares into *<ret> the query for <vps_id>'s suspension in force. */
static int suspension_query(struct sql_store *s, const char *vps_id, struct db_stmt **ret)
{
        return sql_query(s, ret,
                         "SELECT " ACTION_COLUMNS " FROM action "
                         "WHERE vps_id = ? AND kind = 'suspension' AND lifted_at IS NULL",
                         "t", vps_id);
}

static int suspend_tx(struct sql_store *s, const char *vps_id, int64_t incident_id,
                      const struct pc_actor *who, int64_t now, int64_t *ret_id)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        _cleanup_json_ json_t *vps = NULL, *after = NULL;
        char since[32];
        int64_t id;
        int r;

        r = sql_vps_hold(s, vps_id, &vps);
        if (r < 0)
                return r;
        r = suspension_query(s, vps_id, &st);
        if (r < 0)
                return r;
        r = sql_step(s, st);
        if (r < 0)
                return r;
        if (r > 0) {
                pc_format_time(db_column_int64(st, 8), since, sizeof(since));
                return sql_err(s, -EALREADY, "%s is already suspended (suspension #%lld since %s)",
                               vps_id, (long long)db_column_int64(st, 0), since);
        }
        r = sql_incident_check(s, vps_id, incident_id);
        if (r < 0)
                return r;
        r = sql_insert(s, &id,
                       "INSERT INTO action (vps_id, kind, direction, scope, incident_id, \"by\", "
                       "reason, created) VALUES (?, 'suspension', 'both', 'all', ?, ?, ?, ?) RETURNING id",
                       "tntti", vps_id, incident_id, who->by, who->reason, now);
        if (r < 0)
                return r;
        r = sql_action_fetch(s, id, &after);
        if (r < 0)
                return r;
        r = sql_record_action(s, now, who, vps_id, vps, "suspension", id, after, incident_id, "vps.suspend",
                              "vps.suspended");
        if (r < 0)
                return r;
        *ret_id = id;
        return 0;
}

int store_suspend(struct pc_store *ps, const char *vps_id, int64_t incident_id,
                  const struct pc_actor *who, int64_t *ret_id)
{
        struct sql_store *s = to_sql(ps);
        int64_t id = 0;
        int r;

        r = sql_write_begin(s, who);
        if (r < 0)
                return r;
        r = sql_tx_end(s, suspend_tx(s, vps_id, incident_id, who, pc_now(), &id));
        if (r < 0)
                return r;
        if (ret_id != NULL)
                *ret_id = id;
        return 0;
}

/* The facts of a termination for incident <incident_id> (0: none): the
 * suspension <after>, what made it one <why>, the incident's kind and
 * evidence (the abuse team's copy shows them). */
static int termination_facts(struct sql_store *s, json_t *after, int64_t incident_id, const char *why,
                             json_t **ret)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        _cleanup_json_ json_t *facts = json_deep_copy(after);
        int r;

        if (facts == NULL || json_object_set_new(facts, "terminated", json_true()) < 0 ||
            json_object_set_new(facts, "why", json_string(why != NULL ? why : "")) < 0)
                return sql_err(s, -ENOMEM, "termination: out of memory");
        if (incident_id != 0) {
                r = sql_query(s, &st, "SELECT kind, evidence, first_seen, last_seen, count FROM incident WHERE id = ?",
                              "i", incident_id);
                if (r < 0)
                        return r;
                r = sql_step(s, st);
                if (r < 0)
                        return r;
                if (r > 0) {
                        json_t *ev = db_column_is_null(st, 1)
                                             ? json_null()
                                             : json_loads(col_text(st, 1), 0, NULL);

                        if (json_object_set_new(facts, "kind", json_string(col_text(st, 0))) < 0 ||
                            json_object_set_new(facts, "evidence", ev != NULL ? ev : json_string(col_text(st, 1))) < 0 ||
                            json_object_set_new(facts, "first_seen", json_integer(db_column_int64(st, 2))) < 0 ||
                            json_object_set_new(facts, "last_seen", json_integer(db_column_int64(st, 3))) < 0 ||
                            json_object_set_new(facts, "count", json_integer(db_column_int64(st, 4))) < 0)
                                return sql_err(s, -ENOMEM, "termination: out of memory");
                }
        }
        *ret = facts;
        facts = NULL;
        return 0;
}

static int terminate_tx(struct sql_store *s, const char *vps_id, int64_t incident_id, const char *why,
                        const char *webhook_url, const struct pc_actor *who, int64_t now, int64_t *ret_id)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        _cleanup_json_ json_t *vps = NULL, *before = NULL, *after = NULL, *facts = NULL;
        char object[48];
        int64_t id;
        int r;

        r = sql_vps_hold(s, vps_id, &vps);
        if (r < 0)
                return r;
        r = sql_incident_check(s, vps_id, incident_id);
        if (r < 0)
                return r;
        r = suspension_query(s, vps_id, &st);
        if (r < 0)
                return r;
        r = sql_step(s, st);
        if (r < 0)
                return r;
        if (r > 0 && db_column_int64(st, 10) != 0)
                return sql_err(s, -EALREADY, "%s is terminated already (suspension #%lld)", vps_id,
                               (long long)db_column_int64(st, 0));
        if (r > 0) {
                /* Suspended already: the suspension becomes the termination. */
                id = db_column_int64(st, 0);
                before = action_json(st);
                if (before == NULL)
                        return sql_err(s, -ENOMEM, "suspension/%lld: cannot describe it in JSON", (long long)id);
                r = sql_exec(s, "UPDATE action SET terminated = 1, incident_id = coalesce(?, incident_id), "
                             "reason = ? WHERE id = ?",
                         "nti", incident_id, who->reason, id);
        } else {
                r = sql_insert(s, &id,
                               "INSERT INTO action (vps_id, kind, direction, scope, incident_id, \"by\", "
                               "reason, created, terminated) VALUES (?, 'suspension', 'both', 'all', ?, ?, ?, ?, 1) "
                               "RETURNING id",
                               "tntti", vps_id, incident_id, who->by, who->reason, now);
        }
        if (r < 0)
                return r;
        r = sql_action_fetch(s, id, &after);
        if (r < 0)
                return r;
        snprintf(object, sizeof(object), "suspension/%lld", (long long)id);
        r = sql_audit(s, now, who, "vps.terminate", object, vps_id, before, after);
        if (r >= 0)
                r = termination_facts(s, after, incident_id, why, &facts);
        if (r >= 0)
                r = sql_notify(s, now, "vps.terminated", vps, facts);
        if (r >= 0 && webhook_url != NULL && webhook_url[0] != '\0')
                r = sql_webhook_queue(s, now, "vps.terminated", webhook_url, vps, facts);
        if (r < 0)
                return r;
        *ret_id = id;
        return 0;
}

int store_terminate(struct pc_store *ps, const char *vps_id, int64_t incident_id, const char *why,
                    const char *webhook_url, const struct pc_actor *who, int64_t *ret_id)
{
        struct sql_store *s = to_sql(ps);
        int64_t id = 0;
        int r;

        r = sql_write_begin(s, who);
        if (r < 0)
                return r;
        r = sql_tx_end(s, terminate_tx(s, vps_id, incident_id, why, webhook_url, who, pc_now(), &id));
        if (r < 0)
                return r;
        if (ret_id != NULL)
                *ret_id = id;
        return 0;
}

/* Refuses, unless <who> is an admin's override, to lift the suspension at
 * the current row of <st> (ACTION_COLUMNS) if it is a termination. */
static int termination_check(struct sql_store *s, struct db_stmt *st, const struct pc_actor *who)
{
        if (db_column_int64(st, 10) == 0 || who->admin_override)
                return 0;
        return sql_err(s, -EPERM,
                       "%s is terminated (suspension #%lld: %s); only an admin lifts a termination "
                       "(--admin-override, audited as vps.unterminate)",
                       col_text(st, 1), (long long)db_column_int64(st, 0),
                       col_text(st, 7)[0] != '\0' ? col_text(st, 7) : "no reason recorded");
}

static int unsuspend_tx(struct sql_store *s, const char *vps_id, const struct pc_actor *who,
                        int64_t now)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        _cleanup_json_ json_t *vps = NULL;
        int r;

        r = sql_vps_hold(s, vps_id, &vps);
        if (r < 0)
                return r;
        r = suspension_query(s, vps_id, &st);
        if (r < 0)
                return r;
        r = sql_step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return sql_err(s, -EALREADY, "%s is not suspended", vps_id);
        r = termination_check(s, st, who);
        if (r < 0)
                return r;
        r = suspension_lift(s, st, vps, who, now);
        return r < 0 ? r : sql_incidents_close(s, vps_id, who, now);
}

int store_unsuspend(struct pc_store *ps, const char *vps_id, const struct pc_actor *who)
{
        struct sql_store *s = to_sql(ps);
        int r;

        r = sql_write_begin(s, who);
        if (r < 0)
                return r;
        return sql_tx_end(s, unsuspend_tx(s, vps_id, who, pc_now()));
}

/* ---- actions, for support ------------------------------------------- */

#define ACTION_ROW_COLUMNS ACTION_COLUMNS ", lifted_at, lifted_by"

/* Fills <a> from the current row of <st> (ACTION_ROW_COLUMNS). */
static void action_read(struct db_stmt *st, struct pc_store_action *a)
{
        memset(a, 0, sizeof(*a));
        a->id = db_column_int64(st, 0);
        copy_trunc(a->vps_id, sizeof(a->vps_id), col_text(st, 1));
        copy_trunc(a->kind, sizeof(a->kind), col_text(st, 2));
        copy_trunc(a->direction, sizeof(a->direction), col_text(st, 3));
        copy_trunc(a->scope, sizeof(a->scope), col_text(st, 4));
        a->incident_id = db_column_int64(st, 5);
        copy_trunc(a->by, sizeof(a->by), col_text(st, 6));
        copy_trunc(a->reason, sizeof(a->reason), col_text(st, 7));
        a->created = db_column_int64(st, 8);
        a->until = db_column_int64(st, 9);
        a->terminated = db_column_int64(st, 10) != 0;
        a->lifted_at = db_column_int64(st, 11);
        copy_trunc(a->lifted_by, sizeof(a->lifted_by), col_text(st, 12));
}

int store_action_list(struct pc_store *ps, const char *vps_id, int64_t incident_id, bool active_only,
                      int64_t now, int64_t before, pc_store_action_cb cb, void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        struct pc_store_action a;
        int r;

        r = sql_query(s, &st,
                      "SELECT " ACTION_ROW_COLUMNS " FROM action WHERE (?1 IS NULL OR vps_id = ?1) "
                      "AND (?2 = 0 OR incident_id = ?2) AND (?3 = 0 OR (lifted_at IS NULL "
                      "AND (until IS NULL OR until > ?4))) AND id < ?5 ORDER BY id DESC",
                      "tiiii", vps_id, incident_id, (int64_t)active_only, now, before > 0 ? before : INT64_MAX);
        if (r < 0)
                return r;
        while ((r = sql_step(s, st)) > 0) {
                action_read(st, &a);
                r = cb(&a, userdata);
                if (r < 0)
                        return r;
        }
        return r;
}

/* Prepares into *<ret> the row of action <id> (ACTION_ROW_COLUMNS) and
 * steps to it.  -ENOENT if there is none. */
static int action_row(struct sql_store *s, int64_t id, struct db_stmt **ret)
{
        struct db_stmt *st = NULL;
        int r;

        r = sql_query(s, &st, "SELECT " ACTION_ROW_COLUMNS " FROM action WHERE id = ?", "i", id);
        if (r < 0)
                return r;
        r = sql_step(s, st);
        if (r <= 0) {
                db_stmt_release(st);
                return r < 0 ? r : sql_err(s, -ENOENT, "action #%lld does not exist", (long long)id);
        }
        *ret = st;
        return 0;
}

int store_action_get(struct pc_store *ps, int64_t id, struct pc_store_action *ret)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r = action_row(s, id, &st);

        if (r < 0)
                return r;
        action_read(st, ret);
        return 0;
}

/* Checks that the action at the current row of <st> (ACTION_ROW_COLUMNS)
 * is active at <now>: -EALREADY saying when it ended, if not. */
static int action_active(struct sql_store *s, struct db_stmt *st, int64_t now)
{
        struct pc_store_action a;
        char when[32];

        action_read(st, &a);
        if (a.lifted_at != 0) {
                pc_format_time(a.lifted_at, when, sizeof(when));
                return sql_err(s, -EALREADY, "%s #%lld of %s was lifted already (by %s at %s)", a.kind,
                               (long long)a.id, a.vps_id, a.lifted_by, when);
        }
        if (a.until != 0 && a.until <= now) {
                pc_format_time(a.until, when, sizeof(when));
                return sql_err(s, -EALREADY, "%s #%lld of %s ended already (at %s)", a.kind, (long long)a.id,
                               a.vps_id, when);
        }
        return 0;
}

/* Lifts the active action at the current row of <st> (ACTION_COLUMNS
 * first): a filter as filter_lift does, a suspension as unsuspend does. */
int sql_action_lift_row(struct sql_store *s, struct db_stmt *st, const struct pc_actor *who, int64_t now)
{
        _cleanup_json_ json_t *vps = NULL;
        char vps_id[PC_NAME_MAX];
        int r;

        copy_trunc(vps_id, sizeof(vps_id), col_text(st, 1));
        r = sql_vps_hold(s, vps_id, &vps);
        if (r < 0)
                return r;
        if (strcmp(col_text(st, 2), "suspension") != 0)
                return action_lift(s, st, vps, "filter.lift", "filter", "filter.lifted", NULL, who, now);
        r = termination_check(s, st, who);
        if (r < 0)
                return r;
        r = suspension_lift(s, st, vps, who, now);
        return r < 0 ? r : sql_incidents_close(s, vps_id, who, now);
}

static int action_lift_tx(struct sql_store *s, int64_t id, const struct pc_actor *who, int64_t now)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r = action_row(s, id, &st);

        if (r >= 0)
                r = action_active(s, st, now);
        return r < 0 ? r : sql_action_lift_row(s, st, who, now);
}

int store_action_lift(struct pc_store *ps, int64_t id, const struct pc_actor *who)
{
        struct sql_store *s = to_sql(ps);
        int r;

        r = sql_write_begin(s, who);
        if (r < 0)
                return r;
        return sql_tx_end(s, action_lift_tx(s, id, who, pc_now()));
}

static int action_set_until_tx(struct sql_store *s, int64_t id, int64_t until, const struct pc_actor *who,
                               int64_t now)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        _cleanup_json_ json_t *before = NULL, *after = NULL;
        struct pc_store_action a;
        char object[48], when[32];
        int r = action_row(s, id, &st);

        if (r >= 0)
                r = action_active(s, st, now);
        if (r < 0)
                return r;
        action_read(st, &a);
        if (strcmp(a.kind, "filter") != 0)
                return sql_err(s, -EINVAL, "action #%lld of %s is a %s: it has no end to change (lift it instead)",
                               (long long)id, a.vps_id, a.kind);
        if (until == 0 && a.until == 0)
                return sql_err(s, -EALREADY, "filter #%lld of %s is permanent already", (long long)id, a.vps_id);
        if (until != 0 && a.until == 0)
                return sql_err(s, -EINVAL, "filter #%lld of %s is permanent: an end would shorten it",
                               (long long)id, a.vps_id);
        if (until != 0 && until <= a.until) {
                pc_format_time(a.until, when, sizeof(when));
                return sql_err(s, -EINVAL, "filter #%lld of %s ends at %s already: the new end must be later",
                               (long long)id, a.vps_id, when);
        }
        before = action_json(st);
        if (before == NULL)
                return sql_err(s, -ENOMEM, "filter #%lld: cannot describe it in JSON", (long long)id);
        r = sql_exec(s, "UPDATE action SET until = ? WHERE id = ?", "ni", until, id);
        if (r < 0)
                return r;
        r = sql_action_fetch(s, id, &after);
        if (r < 0)
                return r;
        snprintf(object, sizeof(object), "filter/%lld", (long long)id);
        return sql_audit(s, now, who, until == 0 ? "filter.make-permanent" : "filter.extend", object, a.vps_id,
                         before, after);
}

int store_action_set_until(struct pc_store *ps, int64_t id, int64_t until, const struct pc_actor *who)
{
        struct sql_store *s = to_sql(ps);
        int64_t now = pc_now();
        int r;

        r = sql_check_actor(s, who);
        if (r >= 0)
                r = sql_check_until(s, "the filter's new end", until, now);
        if (r >= 0)
                r = sql_tx_begin(s);
        if (r < 0)
                return r;
        return sql_tx_end(s, action_set_until_tx(s, id, until, who, now));
}
