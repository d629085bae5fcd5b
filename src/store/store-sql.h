/* What the SQL store's files (store_*.c) share, and nobody else: the
 * store object over a database driver (db.h), its messages, statements
 * with bound parameters, nested transactions, the checks of every change,
 * the records every change writes (audit row, owner's notification), and
 * the operations that store.c dispatches to through pc_store_sqlite_ops.
 *
 * Each concept has its file: store_vps.c, store_holder.c (who holds an
 * address), store_exception.c, store_action.c (filters, suspensions,
 * terminations), store_incident.c, store_ticket.c, store_outbox.c
 * (notifications, webhooks), store_audit.c (audit log, change feed),
 * store_load.c (the policy in force, into the model), store_token.c,
 * store_attempt.c; store_sql.c holds what they share.  None calls a
 * database library: SQL goes through db.h, in the dialect SQLite and
 * PostgreSQL share. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "base/util.h"
#include "store/db.h"
#include "store/store-internal.h"

#define JSON_FLAGS (JSON_COMPACT | JSON_SORT_KEYS)
#define REASON_MAX 256     /* bytes incl. NUL, as in the model's structs */
#define EXPIRED_BY "(expired)" /* revoked_by of an exception closed by its end */

struct sql_store {
        struct pc_store base; /* first: store.c sees only this */
        struct db *db;
        char errmsg[1024];
        /* Transactions nest: an operation's (pc_store_tx_begin) holds the
         * changes made inside it, each a savepoint that a failure rolls
         * back alone; they commit with the operation, or not at all. */
        unsigned tx_depth;
};

/* jansson.h provides json_decrefp(). */
#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))

static inline struct sql_store *to_sql(struct pc_store *s)
{
        return (struct sql_store *)s;
}

/* Column <i> of the current row as text; "" for NULL. */
static inline const char *col_text(struct db_stmt *st, int i)
{
        return db_column_text(st, i);
}

/* Column <i> as text, or NULL for NULL. */
static inline const char *col_text_or_null(struct db_stmt *st, int i)
{
        return db_column_is_null(st, i) ? NULL : db_column_text(st, i);
}

/* Column <i> as a JSON string or null. */
static inline json_t *col_json_text(struct db_stmt *st, int i)
{
        if (db_column_is_null(st, i))
                return json_null();
        return json_string(col_text(st, i));
}

/* Column <i> as a JSON integer or null. */
static inline json_t *col_json_int(struct db_stmt *st, int i)
{
        if (db_column_is_null(st, i))
                return json_null();
        return json_integer(db_column_int64(st, i));
}

/* Copies <src> into <dst> of <size> bytes, cutting it if longer. */
static inline void copy_trunc(char *dst, size_t size, const char *src)
{
        size_t n = src != NULL ? strnlen(src, size - 1) : 0;

        if (n > 0)
                memcpy(dst, src, n);
        dst[n] = '\0';
}

/* The columns of an action row (a filter, suspension or termination),
 * which store_action.c reads. */
#define ACTION_COLUMNS \
        "id, vps_id, kind, direction, scope, incident_id, \"by\", reason, created, until, terminated"

/* ---- store_sql.c: messages, statements, transactions, checks ------- */

/* Sets the store's message (pc_store_errmsg) from <fmt> and returns <r>. */
int sql_err(struct sql_store *s, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Sets the message of the driver's error <r> (a negative errno, db.h)
 * met while doing <what> ("executing a statement"), with the database's
 * name and the engine's words, and returns <r>. */
int sql_fail(struct sql_store *s, int r, const char *what);

/* Prepares <sql>, a string literal (the driver keeps the statement by its
 * address), into *<ret>, owned by the caller (_cleanup_stmt_), and binds
 * the arguments that follow to its parameters 1, 2... as <fmt> says: 't'
 * a const char * (NULL binds NULL), 'i' an int64_t, 'n' an int64_t bound
 * as NULL when 0, 'b' a const void * and a size_t (a blob and its
 * length), '?' nothing (the caller binds it). */
int sql_query(struct sql_store *s, struct db_stmt **ret, const char *sql, const char *fmt, ...);

/* Steps <st>: 1 for a row, 0 when done, or a negative errno with the
 * store's message set. */
int sql_step(struct sql_store *s, struct db_stmt *st);

/* Runs <sql>, which returns no rows, with parameters as sql_query(). */
int sql_exec(struct sql_store *s, const char *sql, const char *fmt, ...);

/* Begins a write transaction or, within one (an operation's:
 * pc_store_tx_begin), a savepoint.  -ESTALE if the database is no longer
 * the one opened, with nothing written. */
int sql_tx_begin(struct sql_store *s);

/* Ends what sql_tx_begin() began: commits (or releases the savepoint) if
 * <r> >= 0, else rolls back keeping <r>'s message.  Returns 0 or the
 * error; an outermost commit runs pc_store_on_commit's hook. */
int sql_tx_end(struct sql_store *s, int r);

/* Holds row <key> (its primary key, as text) of <table> against other
 * writers until the transaction ends, before a read-check-write rule
 * reads what it checks (db_lock: nothing to do for SQLite, whose write
 * transaction holds the database). */
int sql_lock(struct sql_store *s, const char *table, const char *key);

/* Checks that free text <text> (may be NULL), called <what> in messages,
 * is shorter than <max> bytes and is text (pc_text_invalid).  -EINVAL. */
int sql_check_text(struct sql_store *s, const char *what, const char *text, size_t max);

/* Checks that <who> names someone and gives a reason that fits. */
int sql_check_actor(struct sql_store *s, const struct pc_actor *who);
/* sql_check_actor, then sql_tx_begin: a write on behalf of <who>. */
int sql_write_begin(struct sql_store *s, const struct pc_actor *who);

/* Checks that an end time <until> (0: none) of <what> is in the future. */
int sql_check_until(struct sql_store *s, const char *what, int64_t until, int64_t now);

/* Runs <sql> (one parameter: <id>) and turns its row into JSON with
 * <to_json>, into *<ret> (the caller's); <what> ("exception", "action")
 * names it in messages: -ENOENT "what #id does not exist". */
int sql_row_fetch(struct sql_store *s, const char *what, const char *sql, json_t *(*to_json)(struct db_stmt *),
                  int64_t id, json_t **ret);

/* Runs <sql>, an INSERT ... RETURNING id, with parameters as sql_query(),
 * and puts the new row's id into *<ret_id>. */
int sql_insert(struct sql_store *s, int64_t *ret_id, const char *sql, const char *fmt, ...);

/* <limit> as a LIMIT's value: 0 (none) or beyond int64_t is the largest
 * (both engines take it; SQLite's -1 and PostgreSQL's NULL or ALL are
 * not shared). */
static inline int64_t sql_limit(size_t limit)
{
        return limit == 0 || limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit;
}

/* Writes the audit row <audit_action> and queues the owner's
 * <notification> for the new <kind>/<id> (exception, filter, suspension)
 * of <vps_id> (<vps>: sql_vps_fetch's) described by <after>. */
int sql_record_created(struct sql_store *s, int64_t now, const struct pc_actor *who, const char *vps_id,
                       json_t *vps, const char *kind, int64_t id, json_t *after, const char *audit_action,
                       const char *notification);

/* As sql_record_created() for an action, whose notification also tells,
 * when it answers incident <incident_id> (0: none), the incident's kind
 * and evidence. */
int sql_record_action(struct sql_store *s, int64_t now, const struct pc_actor *who, const char *vps_id,
                      json_t *vps, const char *kind, int64_t id, json_t *after, int64_t incident_id,
                      const char *audit_action, const char *notification);

/* ---- records that concepts share ------------------------------------ */

/* store_vps.c: the VPS <id> as JSON (id, owner, lang, site, iface, mac,
 * addresses, created) into *<ret>, the caller's.  -ENOENT. */
int sql_vps_fetch(struct sql_store *s, const char *id, json_t **ret);
/* -EEXIST (with a message naming it) if a VPS other than <id> is on
 * interface <iface> of <host> ("": none) (store_vps.c). */
int sql_iface_free(struct sql_store *s, const char *id, const char *iface, const char *host);

/* store_vps.c: holds the VPS <id> for a change to it or its policy
 * (sql_lock: the rules "at most N exceptions", "one suspension" are read
 * then written) and reads it as sql_vps_fetch(). */
int sql_vps_hold(struct sql_store *s, const char *id, json_t **ret);

/* store_audit.c: appends the audit row of a change.  <before> and <after>
 * (JSON, either may be NULL) are borrowed. */
int sql_audit(struct sql_store *s, int64_t now, const struct pc_actor *who, const char *action,
              const char *object, const char *vps_id, json_t *before, json_t *after);

/* store_outbox.c: queues the owner's email <kind> about <vps>
 * (sql_vps_fetch's): <facts> (borrowed) plus the VPS's id, site and
 * addresses, in the transaction of what it tells, so that nothing is
 * lost. */
int sql_notify(struct sql_store *s, int64_t now, const char *kind, json_t *vps, json_t *facts);

/* store_outbox.c: queues the webhook event <kind> to <url>, with a
 * delivery id of its own that receivers drop duplicates by. */
int sql_webhook_queue(struct sql_store *s, int64_t now, const char *kind, const char *url, json_t *vps,
                      json_t *facts);

/* store_incident.c: checks that incident <incident_id> (0: none) exists
 * (-ENOENT) and is <vps_id>'s (-EINVAL). */
int sql_incident_check(struct sql_store *s, const char *vps_id, int64_t incident_id);

/* store_vps.c: binds prefix <p>'s network (4 or 16 bytes, network order:
 * byte order is address order) to parameter <i> of <st>. */
int sql_bind_net(struct sql_store *s, struct db_stmt *st, int i, const struct pc_prefix *p);

/* store_exception.c: reads the exception of the row at <st> whose columns
 * 1-8 are id, service, ticket_id, by, reason, created, until, ports. */
void sql_exception_read(struct db_stmt *st, struct pc_exception *e);

/* store_exception.c: grants <e> to <vps_id> (the ticket it answers, if
 * any, must be grantable), queuing the owner's <notification>; its id
 * into *<ret_id>. */
int sql_exception_grant_tx(struct sql_store *s, const char *vps_id, const struct pc_exception *e,
                           const struct pc_actor *who, int64_t now, const char *notification, int64_t *ret_id);

/* store_exception.c: revokes <vps_id>'s exception for <service>; the
 * approved ticket it answered, if any, becomes revoked unless
 * <from_ticket> (the ticket's own revocation records that itself). */
int sql_exception_revoke_tx(struct sql_store *s, const char *vps_id, const char *service,
                            const struct pc_actor *who, int64_t now, bool from_ticket);

/* store_ticket.c: checks that ticket <ticket_id> (0: none) asks for the
 * grant of <service> to <vps_id> and is still undecided (open or
 * investigating), so that no ticket is approved twice. */
int sql_ticket_grantable(struct sql_store *s, const char *vps_id, const char *service, int64_t ticket_id);

/* store_ticket.c: records that ticket <id> is now <state> by <who> (note:
 * its reason), with its history row; <exception_id> (0: unchanged) is the
 * exception an approval made. */
int sql_ticket_mark(struct sql_store *s, int64_t id, const char *state, int64_t exception_id,
                    const struct pc_actor *who, int64_t now);

/* store_action.c: the action (filter or suspension) <id> as JSON into
 * *<ret>, the caller's.  -ENOENT. */
int sql_action_fetch(struct sql_store *s, int64_t id, json_t **ret);

/* store_action.c: lifts the active action at the current row of <st>
 * (ACTION_COLUMNS first): a filter as filter_lift does, a suspension as
 * unsuspend does. */
int sql_action_lift_row(struct sql_store *s, struct db_stmt *st, const struct pc_actor *who, int64_t now);

/* store_incident.c: closes incident <id> (audited) and, if
 * <lift_actions>, lifts the actions in force that answered it, counted in
 * *<ret_lifted> (may be NULL). */
int sql_incident_close_tx(struct sql_store *s, int64_t id, bool lift_actions, const struct pc_actor *who,
                          int64_t now, size_t *ret_lifted);

/* store_incident.c: closes the open incidents of <vps_id>: support has
 * looked at the VPS (it lifted the suspension), so abuse after this is a
 * new episode, and the policy answers it again. */
int sql_incidents_close(struct sql_store *s, const char *vps_id, const struct pc_actor *who, int64_t now);

/* ---- the operations ------------------------------------------------- */

/* Each implements the pc_store_<name> function of store.h, whose comment
 * is its contract, for pc_store_sqlite_ops (store_sql.c). */
/* store_vps.c */
int store_vps_add(struct pc_store *ps, const struct pc_vps *vps, const struct pc_actor *who);
int store_vps_remove(struct pc_store *ps, const char *id, const struct pc_actor *who);
int store_vps_update(struct pc_store *ps, const struct pc_vps *vps, const struct pc_actor *who,
        bool *ret_changed);
int store_vps_set_state(struct pc_store *ps, const char *id, bool running, const struct pc_actor *who,
        bool *ret_changed);
int store_vps_ids(struct pc_store *ps, const char *owner, const char *host, const char *after, size_t limit,
        int (*cb)(const char *id, void *userdata), void *userdata);
/* store_audit.c */
int store_audit_list(struct pc_store *ps, const char *vps_id, size_t limit, pc_audit_cb cb, void *userdata);
int store_changes(struct pc_store *ps, int64_t after, size_t limit, pc_change_cb cb, void *userdata);
/* store_fleet.c */
int store_vps_move(struct pc_store *ps, const char *id, const char *host, const char *iface,
                   const struct pc_actor *who, bool *ret_changed);
int store_vps_arrived(struct pc_store *ps, const char *id, const char *host, const struct pc_actor *who);
int store_vps_departed(struct pc_store *ps, const char *id, const char *host, const struct pc_actor *who,
                       bool *ret_recorded);
int store_vps_departing(struct pc_store *ps, const char *host, const char *after, size_t limit,
                        pc_departing_cb cb, void *userdata);
int store_agent_beat(struct pc_store *ps, const struct pc_agent_beat *b);
int store_agent_list(struct pc_store *ps, pc_agent_beat_cb cb, void *userdata);
int store_agent_role(struct pc_store *ps, const char *host, const char *role);
int store_watch_open(struct pc_store *ps, const char *host, struct pc_store_watch **ret);
int store_change_last(struct pc_store *ps, int64_t *ret_id);
/* store_outbox.c */
int store_notification_due(struct pc_store *ps, int64_t now, size_t limit, pc_notification_cb cb,
        void *userdata);
int store_notification_list(struct pc_store *ps, const char *vps_id, const char *state, size_t limit,
                            int64_t before, pc_notification_cb cb, void *userdata);
int store_notification_get(struct pc_store *ps, int64_t id, struct pc_notification *ret);
int store_notification_sending(struct pc_store *ps, int64_t id, const char *message_id, int64_t now,
        char *ret_message_id);
int store_notification_sent(struct pc_store *ps, int64_t id, int64_t now);
int store_notification_retry_later(struct pc_store *ps, int64_t id, const char *error, int64_t next_attempt);
int store_notification_failed(struct pc_store *ps, int64_t id, const char *error);
int store_notification_retry(struct pc_store *ps, int64_t id, const struct pc_actor *who);
int store_notification_queue(struct pc_store *ps, const char *vps_id, const char *kind, const char *facts,
        int64_t now, int64_t *ret_id);
/* store_incident.c */
int store_incident_note(struct pc_store *ps, const char *vps_id, const char *kind, uint64_t count, int64_t at,
        const char *evidence, int64_t gap, int64_t *ret_id, bool *ret_opened, unsigned flags);
int store_incident_times(struct pc_store *ps, const char *vps_id, const char *kind, int64_t since,
        int64_t before_id, int64_t *ret_times, size_t max, size_t *ret_n);
int store_incident_list(struct pc_store *ps, const char *vps_id, const char *kind, bool open_only,
                        int64_t before, pc_incident_cb cb, void *userdata);
int store_incident_get(struct pc_store *ps, int64_t id, pc_incident_cb cb, void *userdata);
int store_incident_close(struct pc_store *ps, int64_t id, bool lift_actions, const struct pc_actor *who,
        size_t *ret_lifted);
/* store_load.c */
int store_load(struct pc_store *ps, struct pc_model *m, const char *host);
int store_vps_fetch(struct pc_store *ps, const struct pc_config *cfg, const char *id, struct pc_vps **ret);
/* store_holder.c */
int store_addr_holder(struct pc_store *ps, const struct pc_prefix *p, const char *except_vps, unsigned what,
        int64_t now, struct pc_addr_holder *ret);
int store_mac_holder(struct pc_store *ps, const uint8_t mac[6], const char *except_vps, char *ret_vps,
        size_t size);
/* store_exception.c */
int store_exception_grant(struct pc_store *ps, const char *vps_id, const struct pc_exception *e,
        const struct pc_actor *who, int64_t *ret_id);
int store_exception_revoke(struct pc_store *ps, const char *vps_id, const char *service,
        const struct pc_actor *who);
int store_exception_ended(struct pc_store *ps, const char *vps_id, const char *service, int64_t now,
        struct pc_exception *ret);
int store_exception_expiry_notices(struct pc_store *ps, int64_t now, int64_t within, const char *host,
                                   size_t *ret_count);
/* store_action.c */
int store_filter_place(struct pc_store *ps, const char *vps_id, const struct pc_filter *f,
        const struct pc_actor *who, int64_t *ret_id);
int store_filter_lift(struct pc_store *ps, const char *vps_id, int64_t filter_id, const struct pc_actor *who);
int store_suspend(struct pc_store *ps, const char *vps_id, int64_t incident_id, const struct pc_actor *who,
        int64_t *ret_id);
int store_unsuspend(struct pc_store *ps, const char *vps_id, const struct pc_actor *who);
int store_terminate(struct pc_store *ps, const char *vps_id, int64_t incident_id, const char *why,
        const char *webhook_url, const struct pc_actor *who, int64_t *ret_id);
int store_action_list(struct pc_store *ps, const char *vps_id, int64_t incident_id, bool active_only,
                      int64_t now, int64_t before, pc_store_action_cb cb, void *userdata);
int store_action_get(struct pc_store *ps, int64_t id, struct pc_store_action *ret);
int store_action_lift(struct pc_store *ps, int64_t id, const struct pc_actor *who);
int store_action_set_until(struct pc_store *ps, int64_t id, int64_t until, const struct pc_actor *who);
/* store_ticket.c */
int store_ticket_open(struct pc_store *ps, const struct pc_ticket *t, const struct pc_actor *who,
        int64_t *ret_id);
int store_ticket_query(struct pc_store *ps, const struct pc_ticket_query *q, int64_t now, pc_ticket_cb cb,
        void *userdata);
int store_ticket_get(struct pc_store *ps, int64_t id, int64_t now, struct pc_ticket *ret);
int store_ticket_events(struct pc_store *ps, int64_t id, pc_ticket_event_cb cb, void *userdata);
int store_ticket_transition(struct pc_store *ps, int64_t id, enum pc_ticket_state from,
        enum pc_ticket_state to, const struct pc_exception *grant, const struct pc_actor *who,
        int64_t *ret_exception_id);
int store_ticket_expire_due(struct pc_store *ps, int64_t now, const char *host, const struct pc_actor *who,
                            size_t *ret_n);
/* store_token.c */
int store_token_add(struct pc_store *ps, const struct pc_api_token *t, const uint8_t *hash, int64_t now,
        const struct pc_actor *who, int64_t *ret_id);
int store_token_find(struct pc_store *ps, const uint8_t *hash, struct pc_api_token *ret);
int store_token_list(struct pc_store *ps, bool all, pc_api_token_cb cb, void *userdata);
int store_token_revoke(struct pc_store *ps, const char *name, int64_t now, const struct pc_actor *who);
int store_token_used(struct pc_store *ps, int64_t id, int64_t now);
/* store_attempt.c */
int store_attempt_note(struct pc_store *ps, const struct pc_attempt_count *a);
int store_attempt_list(struct pc_store *ps, const char *vps_id, uint8_t proto, uint16_t lo, uint16_t hi,
        size_t limit, pc_attempt_count_cb cb, void *userdata);
