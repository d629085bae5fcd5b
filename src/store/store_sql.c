/* The SQL store's common ground: its object and messages, statements
 * with bound parameters, nested transactions, the checks every change
 * makes of its actor and text, the audit-and-notify record of a change,
 * opening, and the operations table that store.c dispatches through. */
#include "store/store-sql.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>

#include "base/utf8.h"

/* Sets the store's message from <fmt> and returns <r>. */
int sql_err(struct sql_store *s, int r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
        va_end(ap);
        return r;
}

/* Sets the message of the driver's error <r> (a negative errno, db.h)
 * while doing <what>, with the engine's words, and returns <r>. */
int sql_fail(struct sql_store *s, int r, const char *what)
{
        return sql_err(s, r, "database %s: %s: %s", s->db->name, what, db_errmsg(s->db));
}

/* Prepares <sql>, a string literal (the driver's cache keeps its
 * address), and binds the arguments in <ap> to its parameters 1, 2... as
 * <fmt> says: 't' a const char * (NULL binds NULL), 'i' an int64_t, 'n'
 * an int64_t bound as NULL when 0, 'b' a const void * and a size_t (a
 * blob and its length), '?' nothing (the caller binds it). */
static int prepare_va(struct sql_store *s, struct db_stmt **ret, const char *sql, const char *fmt,
                      va_list ap)
{
        struct db_stmt *st = NULL;
        int r, i = 1;

        r = db_prepare(s->db, sql, &st);
        if (r < 0)
                return sql_fail(s, r, "preparing a statement");
        for (const char *f = fmt; *f != '\0' && r >= 0; f++, i++) {
                const char *t;
                const void *b;
                int64_t v;

                switch (*f) {
                case 't':
                        t = va_arg(ap, const char *);
                        r = t == NULL ? db_bind_null(st, i) : db_bind_text(st, i, t);
                        break;
                case 'i':
                        r = db_bind_int64(st, i, va_arg(ap, int64_t));
                        break;
                case 'n':
                        v = va_arg(ap, int64_t);
                        r = v == 0 ? db_bind_null(st, i) : db_bind_int64(st, i, v);
                        break;
                case 'b':
                        b = va_arg(ap, const void *);
                        r = db_bind_blob(st, i, b, va_arg(ap, size_t));
                        break;
                case '?': /* bound by the caller (a blob) */
                        break;
                default:
                        r = -EIO;
                        break;
                }
        }
        if (r < 0) {
                r = sql_fail(s, r, "binding a parameter");
                db_stmt_release(st);
                return r;
        }
        *ret = st;
        return 0;
}

/* Prepares <sql> with parameters bound per <fmt> (see prepare_va). */
int sql_query(struct sql_store *s, struct db_stmt **ret, const char *sql, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = prepare_va(s, ret, sql, fmt, ap);
        va_end(ap);
        return r;
}

/* Steps <st>: 1 for a row, 0 when done, or a negative errno. */
int sql_step(struct sql_store *s, struct db_stmt *st)
{
        int r = db_step(st);

        return r >= 0 ? r : sql_fail(s, r, "executing a statement");
}

/* Runs the statement <sql>, which returns no rows, with parameters bound
 * per <fmt> (see prepare_va). */
int sql_exec(struct sql_store *s, const char *sql, const char *fmt, ...)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = prepare_va(s, &st, sql, fmt, ap);
        va_end(ap);
        if (r < 0)
                return r;
        r = sql_step(s, st);
        return r < 0 ? r : 0;
}

/* Runs the INSERT ... RETURNING id <sql> with parameters bound per <fmt>
 * (see prepare_va), to its end, and reads the new row's id. */
int sql_insert(struct sql_store *s, int64_t *ret_id, const char *sql, const char *fmt, ...)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        va_list ap;
        int64_t id;
        int r;

        va_start(ap, fmt);
        r = prepare_va(s, &st, sql, fmt, ap);
        va_end(ap);
        if (r < 0)
                return r;
        r = sql_step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return sql_err(s, -EIO, "database %s: an insert returned no id", s->db->name);
        id = db_column_int64(st, 0);
        r = sql_step(s, st);
        if (r < 0)
                return r;
        *ret_id = id;
        return 0;
}

/* Holds row <key> of <table> until the transaction ends (db_lock). */
int sql_lock(struct sql_store *s, const char *table, const char *key)
{
        int r = db_lock(s->db, table, key);

        return r < 0 ? sql_fail(s, r, "locking a row") : 0;
}

/* Begins a write transaction, or a savepoint within the operation's.
 * -ESTALE if the database is no longer the one opened (a file deleted or
 * replaced under us), with nothing written. */
int sql_tx_begin(struct sql_store *s)
{
        int r;

        if (s->tx_depth > 0) { /* within an operation's transaction */
                r = db_savepoint(s->db);
                if (r < 0)
                        return sql_fail(s, r, "executing a statement");
                s->tx_depth++;
                return 0;
        }
        r = db_begin(s->db);
        if (r == -ESTALE)
                return sql_err(s, -ESTALE,
                               "database %s was deleted or replaced while open: nothing was "
                               "written",
                               s->db->name);
        if (r < 0)
                return sql_fail(s, r, "executing a statement");
        s->tx_depth = 1;
        return 0;
}

/* Ends the transaction: commits if <r> >= 0, else (or if the commit
 * fails) rolls back keeping the first error's message.  Returns 0 or the
 * error. */
int sql_tx_end(struct sql_store *s, int r)
{
        if (s->tx_depth > 1) { /* the outer transaction commits, or not */
                s->tx_depth--;
                if (r >= 0) {
                        r = db_savepoint_release(s->db);
                        return r < 0 ? sql_fail(s, r, "executing a statement") : 0;
                }
                /* Failures ignored: the message that matters is <r>'s. */
                db_savepoint_rollback(s->db);
                db_savepoint_release(s->db);
                return r;
        }
        s->tx_depth = 0;
        if (r >= 0) {
                r = db_commit(s->db);
                if (r >= 0) {
                        pc_store_committed(&s->base);
                        return 0;
                }
                r = sql_fail(s, r, "executing a statement");
        }
        if (db_in_tx(s->db))
                db_rollback(s->db); /* keeps <r>'s message */
        return r;
}

/* Checks that free text <text> (may be NULL), called <what> in messages,
 * is shorter than <max> bytes and is text (pc_text_invalid: valid UTF-8,
 * no control character), whoever the writer: a newline or an ESC stored
 * here would fake a row or steer a terminal wherever it is shown. */
int sql_check_text(struct sql_store *s, const char *what, const char *text, size_t max)
{
        char why[80];

        if (text == NULL)
                return 0;
        if (strnlen(text, max) >= max)
                return sql_err(s, -EINVAL, "%s is longer than %zu bytes", what, max - 1);
        if (pc_text_invalid(text, why, sizeof(why)) != NULL)
                return sql_err(s, -EINVAL, "%s %s", what, why);
        return 0;
}

/* Checks that <who> names someone and gives a reason that fits. */
int sql_check_actor(struct sql_store *s, const struct pc_actor *who)
{
        if (who->by == NULL || who->by[0] == '\0')
                return sql_err(s, -EINVAL, "no actor given: say who makes the change");
        if (sql_check_text(s, "actor name", who->by, PC_NAME_MAX) < 0)
                return -EINVAL;
        return sql_check_text(s, "reason", who->reason, REASON_MAX);
}

int sql_write_begin(struct sql_store *s, const struct pc_actor *who)
{
        int r = sql_check_actor(s, who);

        return r < 0 ? r : sql_tx_begin(s);
}

/* Checks that an end time <until> (0: none) of <what> is in the future. */
int sql_check_until(struct sql_store *s, const char *what, int64_t until, int64_t now)
{
        char buf[32];

        if (until == 0 || until > now)
                return 0;
        pc_format_time(until, buf, sizeof(buf));
        return sql_err(s, -EINVAL, "%s: end time %s is not in the future", what, buf);
}

/* ---- open / close ---------------------------------------------------- */

/* The store over the open connection <db>, which it then owns. */
static int store_wrap(struct db *db, struct pc_store **ret, char *err, size_t errsz)
{
        struct sql_store *s = calloc(1, sizeof(*s));

        if (s == NULL) {
                snprintf(err, errsz, "database %s: out of memory", db->name);
                db_close(db);
                return -ENOMEM;
        }
        s->base.ops = &pc_store_sqlite_ops;
        s->db = db;
        *ret = &s->base;
        return 0;
}

int pc_store_sqlite_open(const char *path, bool create, bool *ret_created, struct pc_store **ret,
                         char *err, size_t errsz)
{
        struct db *db = NULL;
        int r;

        r = db_sqlite_open(path, create, ret_created, &db, err, errsz);
        return r < 0 ? r : store_wrap(db, ret, err, errsz);
}

int pc_store_sqlite_open_readonly(const char *path, struct pc_store **ret, char *err, size_t errsz)
{
        struct db *db = NULL;
        int r;

        r = db_sqlite_open_readonly(path, &db, err, errsz);
        return r < 0 ? r : store_wrap(db, ret, err, errsz);
}

int pc_store_pg_open(const char *url, bool create, bool *ret_created, struct pc_store **ret, char *err,
                     size_t errsz)
{
        struct db *db = NULL;
        int r;

        r = db_pg_open(url, create, ret_created, &db, err, errsz);
        return r < 0 ? r : store_wrap(db, ret, err, errsz);
}

/* PostgreSQL has no read-only opening of its own: what the role may do
 * is the server's to say (grant a reader SELECT only). */
int pc_store_pg_open_readonly(const char *url, struct pc_store **ret, char *err, size_t errsz)
{
        return pc_store_pg_open(url, false, NULL, ret, err, errsz);
}

static int sqlite_open(const char *location, struct pc_store **ret)
{
        return pc_store_sqlite_open(location, false, NULL, ret, NULL, 0);
}

static void store_close(struct pc_store *ps)
{
        struct sql_store *s = to_sql(ps);

        db_close(s->db);
        free(s);
}

static const char *store_errmsg(const struct pc_store *ps)
{
        return ((const struct sql_store *)ps)->errmsg;
}

static int store_schema_version(struct pc_store *ps, int *ret_version)
{
        struct sql_store *s = to_sql(ps);
        int r = db_schema_version(s->db, ret_version);

        return r < 0 ? sql_fail(s, r, "reading the schema version") : 0;
}

/* Runs <sql> for the row <id> and turns it into JSON with <to_json>, into
 * *<ret>; <what> ("exception", "action") names it in messages. */
int sql_row_fetch(struct sql_store *s, const char *what, const char *sql, json_t *(*to_json)(struct db_stmt *),
                  int64_t id, json_t **ret)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        json_t *j;
        int r;

        r = sql_query(s, &st, sql, "i", id);
        if (r < 0)
                return r;
        r = sql_step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return sql_err(s, -ENOENT, "%s #%lld does not exist", what, (long long)id);
        j = to_json(st);
        if (j == NULL)
                return sql_err(s, -ENOMEM, "%s #%lld: cannot describe it in JSON", what, (long long)id);
        *ret = j;
        return 0;
}

/* Writes the audit row and queues the owner's notification for the new
 * <kind>/<id> (exception, filter, suspension) described by <after>. */
int sql_record_created(struct sql_store *s, int64_t now, const struct pc_actor *who,
                       const char *vps_id, json_t *vps, const char *kind, int64_t id,
                       json_t *after, const char *audit_action, const char *notification)
{
        char object[48];
        int r;

        snprintf(object, sizeof(object), "%s/%lld", kind, (long long)id);
        r = sql_audit(s, now, who, audit_action, object, vps_id, NULL, after);
        return r < 0 ? r : sql_notify(s, now, notification, vps, after);
}

/* An action's audit record <after>, and its notification: the same with,
 * when it answers incident <incident_id> (0: none), the incident's kind
 * ("incident_kind") and evidence, which the owner's email puts in words. */
int sql_record_action(struct sql_store *s, int64_t now, const struct pc_actor *who, const char *vps_id,
                      json_t *vps, const char *kind, int64_t id, json_t *after, int64_t incident_id,
                      const char *audit_action, const char *notification)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        _cleanup_json_ json_t *facts = json_copy(after);
        json_t *ev = NULL;
        char object[48];
        int r;

        if (facts == NULL)
                return sql_err(s, -ENOMEM, "%s #%lld: cannot describe it in JSON", kind, (long long)id);
        if (incident_id != 0) {
                r = sql_query(s, &st, "SELECT kind, evidence FROM incident WHERE id = ?", "i", incident_id);
                if (r < 0 || (r = sql_step(s, st)) < 0)
                        return r;
                if (r > 0) {
                        if (!db_column_is_null(st, 1))
                                ev = json_loads(col_text(st, 1), 0, NULL);
                        if (json_object_set_new(facts, "incident_kind", json_string(col_text(st, 0))) < 0 ||
                            json_object_set_new(facts, "evidence", json_is_object(ev) ? ev : json_object()) < 0)
                                return sql_err(s, -ENOMEM, "%s #%lld: cannot describe it in JSON", kind,
                                               (long long)id);
                        if (!json_is_object(ev))
                                json_decref(ev);
                }
        }
        snprintf(object, sizeof(object), "%s/%lld", kind, (long long)id);
        r = sql_audit(s, now, who, audit_action, object, vps_id, NULL, after);
        return r < 0 ? r : sql_notify(s, now, notification, vps, facts);
}

/* ---- an operation's transaction --------------------------------------- */

static int store_tx_begin(struct pc_store *ps)
{
        return sql_tx_begin(to_sql(ps));
}

static int store_tx_end(struct pc_store *ps, int r)
{
        return sql_tx_end(to_sql(ps), r);
}

const struct pc_store_ops pc_store_sqlite_ops = {
        .scheme = "sqlite",
        .open = sqlite_open,
        .close = store_close,
        .errmsg = store_errmsg,
        .schema_version = store_schema_version,
        .load = store_load,
        .vps_add = store_vps_add,
        .vps_remove = store_vps_remove,
        .vps_update = store_vps_update,
        .vps_set_state = store_vps_set_state,
        .addr_holder = store_addr_holder,
        .mac_holder = store_mac_holder,
        .exception_grant = store_exception_grant,
        .exception_revoke = store_exception_revoke,
        .filter_place = store_filter_place,
        .filter_lift = store_filter_lift,
        .suspend = store_suspend,
        .unsuspend = store_unsuspend,
        .terminate = store_terminate,
        .exception_ended = store_exception_ended,
        .ticket_open = store_ticket_open,
        .vps_fetch = store_vps_fetch,
        .incident_note = store_incident_note,
        .incident_times = store_incident_times,
        .incident_list = store_incident_list,
        .incident_get = store_incident_get,
        .incident_close = store_incident_close,
        .action_list = store_action_list,
        .action_get = store_action_get,
        .action_lift = store_action_lift,
        .action_set_until = store_action_set_until,
        .ticket_query = store_ticket_query,
        .ticket_get = store_ticket_get,
        .ticket_events = store_ticket_events,
        .ticket_transition = store_ticket_transition,
        .ticket_expire_due = store_ticket_expire_due,
        .audit_list = store_audit_list,
        .notification_due = store_notification_due,
        .notification_list = store_notification_list,
        .notification_get = store_notification_get,
        .notification_sending = store_notification_sending,
        .notification_sent = store_notification_sent,
        .notification_retry_later = store_notification_retry_later,
        .notification_failed = store_notification_failed,
        .notification_retry = store_notification_retry,
        .notification_queue = store_notification_queue,
        .exception_expiry_notices = store_exception_expiry_notices,
        .token_add = store_token_add,
        .token_find = store_token_find,
        .token_list = store_token_list,
        .token_revoke = store_token_revoke,
        .token_used = store_token_used,
        .changes = store_changes,
        .change_last = store_change_last,
        .vps_ids = store_vps_ids,
        .attempt_note = store_attempt_note,
        .attempt_list = store_attempt_list,
        .tx_begin = store_tx_begin,
        .tx_end = store_tx_end,
        .vps_move = store_vps_move,
        .vps_arrived = store_vps_arrived,
        .vps_departed = store_vps_departed,
        .vps_departing = store_vps_departing,
        .agent_beat = store_agent_beat,
        .agent_role = store_agent_role,
        .agent_list = store_agent_list,
        .watch_open = store_watch_open,
};
