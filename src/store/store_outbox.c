/* The notification outbox: emails and webhook events queued in the
 * transaction of what they tell, then claimed, sent, retried, failed. */
#include "store/store-sql.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/utf8.h"

/* Queues outbox row <kind> on <channel> to <recipient> (<lang>: the
 * email's language, "" for a webhook): <facts> (borrowed) plus the VPS, its
 * site and addresses -- and its owner, if <owner> -- in the same
 * transaction as what it tells of, so that nothing is lost.  Its id goes
 * to *<ret_id> (may be NULL). */
static int outbox_queue(struct sql_store *s, int64_t now, const char *kind, json_t *vps, json_t *facts,
                         const char *channel, const char *recipient, const char *lang, bool owner, int64_t *ret_id)
{
        int64_t row;
        int r;

        _cleanup_json_ json_t *payload = json_deep_copy(facts);
        _cleanup_free_ char *text = NULL;
        const char *id = json_string_value(json_object_get(vps, "id"));

        if (payload == NULL || json_object_set(payload, "vps", json_object_get(vps, "id")) < 0 ||
            (owner && json_object_set(payload, "owner", json_object_get(vps, "owner")) < 0) ||
            json_object_set(payload, "site", json_object_get(vps, "site")) < 0 ||
            json_object_set(payload, "addresses", json_object_get(vps, "addresses")) < 0 ||
            json_object_set_new(payload, "event", json_string(kind)) < 0 ||
            (text = json_dumps(payload, JSON_FLAGS)) == NULL)
                return sql_err(s, -ENOMEM, "%s: cannot write the %s", id,
                               strcmp(channel, "email") == 0 ? "notification" : "webhook event");
        r = sql_insert(s, &row,
                       "INSERT INTO notification (created, vps_id, kind, recipient, language, "
                       "payload, state, attempts, next_attempt, channel) "
                       "VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?) RETURNING id",
                       "itttttit", now, id, kind, recipient, lang, text, now, channel);
        if (r >= 0 && ret_id != NULL)
                *ret_id = row;
        return r;
}

/* Queues the owner's email <kind>; its id to *<ret_id> (may be NULL). */
static int email_queue(struct sql_store *s, int64_t now, const char *kind, json_t *vps, json_t *facts,
                       int64_t *ret_id)
{
        return outbox_queue(s, now, kind, vps, facts, "email", json_string_value(json_object_get(vps, "owner")),
                            json_string_value(json_object_get(vps, "lang")), false, ret_id);
}

int sql_notify(struct sql_store *s, int64_t now, const char *kind, json_t *vps, json_t *facts)
{
        return email_queue(s, now, kind, vps, facts, NULL);
}

/* Queues the webhook event <kind> to <url>: <facts> (borrowed) plus the
 * VPS, its owner, site and addresses, in the notification outbox. */
int sql_webhook_queue(struct sql_store *s, int64_t now, const char *kind, const char *url, json_t *vps,
                      json_t *facts)
{
        _cleanup_json_ json_t *with_id = json_copy(facts);
        uint8_t rnd[16];
        char hex[2 * sizeof(rnd) + 1];

        /* Its delivery id, the same on every attempt and unique across
         * hypervisors (each has its own database and row numbers), which
         * receivers drop duplicates by. */
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
                return sql_err(s, -EIO, "no random bytes for a webhook delivery id");
        for (size_t i = 0; i < sizeof(rnd); i++)
                snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
        if (with_id == NULL || json_object_set_new(with_id, "delivery", json_string(hex)) < 0)
                return sql_err(s, -ENOMEM, "cannot write the webhook event");
        return outbox_queue(s, now, kind, vps, with_id, "webhook", url, "", true, NULL);
}

#define NOTIFICATION_COLUMNS                                                                   \
        "id, created, vps_id, kind, recipient, language, payload, state, attempts, "           \
        "next_attempt, last_error, message_id, sent_at, channel"

static const struct pc_actor notifier = { .by = "portcullisd", .reason = NULL };

/* Fills <n> from the current row of <st> (NOTIFICATION_COLUMNS), the
 * payload copied onto the heap. */
static int notification_read(struct sql_store *s, struct db_stmt *st, struct pc_notification *n)
{
        memset(n, 0, sizeof(*n));
        n->id = db_column_int64(st, 0);
        n->created = db_column_int64(st, 1);
        copy_trunc(n->vps_id, sizeof(n->vps_id), col_text(st, 2));
        copy_trunc(n->kind, sizeof(n->kind), col_text(st, 3));
        copy_trunc(n->recipient, sizeof(n->recipient), col_text(st, 4));
        copy_trunc(n->language, sizeof(n->language), col_text(st, 5));
        copy_trunc(n->state, sizeof(n->state), col_text(st, 7));
        n->attempts = (unsigned)db_column_int64(st, 8);
        n->next_attempt = db_column_int64(st, 9);
        copy_trunc(n->last_error, sizeof(n->last_error), col_text(st, 10));
        copy_trunc(n->message_id, sizeof(n->message_id), col_text(st, 11));
        n->sent_at = db_column_int64(st, 12);
        copy_trunc(n->channel, sizeof(n->channel), col_text(st, 13));
        n->payload = strdup(col_text(st, 6));
        if (n->payload == NULL)
                return sql_err(s, -ENOMEM, "notification #%lld: out of memory", (long long)n->id);
        return 0;
}

/* The notification at the current row of <st> (NOTIFICATION_COLUMNS) as
 * JSON for the audit log: its delivery state, not its payload. */
static json_t *notification_json(struct db_stmt *st)
{
        return json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:o, s:o}", "id",
                         (json_int_t)db_column_int64(st, 0), "vps", col_text(st, 2), "kind",
                         col_text(st, 3), "recipient", col_text(st, 4), "state", col_text(st, 7),
                         "attempts", (json_int_t)db_column_int64(st, 8), "next_attempt",
                         (json_int_t)db_column_int64(st, 9), "last_error",
                         col_json_text(st, 10), "message_id", col_json_text(st, 11), "sent_at",
                         col_json_int(st, 12));
}

/* Prepares into *<ret> the row of notification <id>, positioned on it.
 * -ENOENT if there is none. */
static int notification_row(struct sql_store *s, int64_t id, struct db_stmt **ret)
{
        struct db_stmt *st = NULL;
        int r;

        r = sql_query(s, &st, "SELECT " NOTIFICATION_COLUMNS " FROM notification WHERE id = ?", "i",
                      id);
        if (r < 0)
                return r;
        r = sql_step(s, st);
        if (r <= 0) {
                db_stmt_release(st);
                return r < 0 ? r : sql_err(s, -ENOENT, "notification #%lld does not exist",
                                           (long long)id);
        }
        *ret = st;
        return 0;
}

/* Like notification_row, for a transition of the delivery worker: the
 * notification must be pending, else -EALREADY saying what it is. */
static int notification_pending_row(struct sql_store *s, int64_t id, struct db_stmt **ret)
{
        struct db_stmt *st = NULL;
        char when[32];
        int r;

        r = notification_row(s, id, &st);
        if (r < 0)
                return r;
        if (strcmp(col_text(st, 7), "pending") == 0) {
                *ret = st;
                return 0;
        }
        if (strcmp(col_text(st, 7), "sent") == 0) {
                pc_format_time(db_column_int64(st, 12), when, sizeof(when));
                r = sql_err(s, -EALREADY, "notification #%lld was already sent at %s",
                            (long long)id, when);
        } else
                r = sql_err(s, -EALREADY,
                            "notification #%lld is %s, not pending: it is not to be sent "
                            "unless support retries it",
                            (long long)id, col_text(st, 7));
        db_stmt_release(st);
        return r;
}


/* Copies the untrusted text <src> (an error from a remote server) into
 * <dst> of <size> bytes as valid UTF-8 on one line: control characters
 * (C0, DEL, C1) become spaces, bytes that are not UTF-8 become '?', the
 * end is cut at a character boundary and trailing spaces are dropped. */
static void clean_text(char *dst, size_t size, const char *src)
{
        const unsigned char *p = (const unsigned char *)src;
        size_t left = strlen(src), out = 0;

        while (left > 0) {
                size_t n = pc_utf8_len(p, left);

                if (n == 0) {
                        if (out + 1 >= size)
                                break;
                        dst[out++] = '?';
                        n = 1;
                } else if (pc_utf8_control(p, n) || n == 1) {
                        if (out + 1 >= size)
                                break;
                        dst[out++] = pc_utf8_control(p, n) ? ' ' : (char)p[0];
                } else {
                        if (out + n >= size)
                                break;
                        memcpy(dst + out, p, n);
                        out += n;
                }
                p += n;
                left -= n;
        }
        while (out > 0 && dst[out - 1] == ' ')
                out--;
        dst[out] = '\0';
}

/* Reads the rows of <st> (NOTIFICATION_COLUMNS) and calls <cb> for each. */
static int notification_each(struct sql_store *s, struct db_stmt *st, pc_notification_cb cb,
                             void *userdata)
{
        struct pc_notification *n = malloc(sizeof(*n));
        int r;

        if (n == NULL)
                return sql_err(s, -ENOMEM, "out of memory");
        while ((r = sql_step(s, st)) > 0) {
                r = notification_read(s, st, n);
                if (r >= 0)
                        r = cb(n, userdata);
                pc_notification_clear(n);
                if (r < 0)
                        break;
        }
        free(n);
        return r < 0 ? r : 0;
}

int store_notification_due(struct pc_store *ps, int64_t now, size_t limit,
                           pc_notification_cb cb, void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        struct pc_notification *rows = NULL;
        size_t n = 0;
        int r;

        if (limit == 0 || limit > PC_NOTIFICATION_BATCH_MAX)
                return sql_err(s, -EINVAL, "ask for 1 to %d due notifications, not %zu",
                               PC_NOTIFICATION_BATCH_MAX, limit);
        r = sql_query(s, &st,
                      "SELECT " NOTIFICATION_COLUMNS " FROM notification "
                      "WHERE state = 'pending' AND next_attempt <= ? ORDER BY id LIMIT ?",
                      "ii", now, (int64_t)limit);
        if (r < 0)
                return r;
        rows = calloc(limit, sizeof(*rows));
        if (rows == NULL)
                return sql_err(s, -ENOMEM, "out of memory");
        /* All rows first, the statement closed, then the callbacks: they
         * may write to the store. */
        while (n < limit && (r = sql_step(s, st)) > 0) {
                r = notification_read(s, st, &rows[n]);
                if (r < 0)
                        break;
                n++;
        }
        db_stmt_release(st);
        st = NULL;
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = cb(&rows[i], userdata);
        for (size_t i = 0; i < n; i++)
                pc_notification_clear(&rows[i]);
        free(rows);
        return r < 0 ? r : 0;
}

int store_notification_list(struct pc_store *ps, const char *vps_id, const char *state,
                            size_t limit, int64_t before, pc_notification_cb cb, void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        /* LIMIT -1: no limit. */
        int64_t lim = sql_limit(limit);
        int r;

        if (state != NULL && strcmp(state, "pending") != 0 && strcmp(state, "sent") != 0 &&
            strcmp(state, "failed") != 0)
                return sql_err(s, -EINVAL,
                               "'%.32s' is not a notification state (pending, sent, failed)",
                               state);
        if (vps_id != NULL)
                r = sql_query(s, &st,
                              "SELECT " NOTIFICATION_COLUMNS " FROM notification "
                              "WHERE vps_id = ?1 AND (?2 IS NULL OR state = ?2) AND id < ?4 "
                              "ORDER BY id DESC LIMIT ?3",
                              "ttii", vps_id, state, lim, before > 0 ? before : INT64_MAX);
        else
                r = sql_query(s, &st,
                              "SELECT " NOTIFICATION_COLUMNS " FROM notification "
                              "WHERE (?1 IS NULL OR state = ?1) AND id < ?3 ORDER BY id DESC LIMIT ?2",
                              "tii", state, lim, before > 0 ? before : INT64_MAX);
        if (r < 0)
                return r;
        return notification_each(s, st, cb, userdata);
}

int store_notification_get(struct pc_store *ps, int64_t id, struct pc_notification *ret)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        struct pc_notification n;
        int r;

        r = notification_row(s, id, &st);
        if (r < 0)
                return r;
        r = notification_read(s, st, &n);
        if (r < 0)
                return r;
        *ret = n;
        return 0;
}

/* Checks that <mid> can go in a Message-ID header as it is. */
static int check_message_id(struct sql_store *s, const char *mid)
{
        size_t len = strnlen(mid, PC_NOTIFICATION_MESSAGE_ID_MAX);

        if (len == 0 || len >= PC_NOTIFICATION_MESSAGE_ID_MAX)
                return sql_err(s, -EINVAL, "a Message-ID has 1 to %d characters",
                               PC_NOTIFICATION_MESSAGE_ID_MAX - 1);
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)mid[i] <= 0x20 || (unsigned char)mid[i] >= 0x7f)
                        return sql_err(s, -EINVAL,
                                       "a Message-ID is printable ASCII without spaces; "
                                       "byte %zu is 0x%02x",
                                       i + 1, (unsigned char)mid[i]);
        return 0;
}

/* Says why notification <id> could not be claimed: -ENOENT,
 * -EALREADY (not pending), or -EBUSY (pending, not due: another attempt's
 * lease, or a retry_later time, runs until next_attempt). */
static int notification_unclaimed(struct sql_store *s, int64_t id)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        char when[32];
        int r;

        r = notification_pending_row(s, id, &st);
        if (r < 0)
                return r;
        pc_format_time(db_column_int64(st, 9), when, sizeof(when));
        return sql_err(s, -EBUSY,
                       "notification #%lld is not due before %s: another attempt holds it, or it "
                       "waits for its retry",
                       (long long)id, when);
}

/* The claim is one conditional UPDATE: the row changes only if it is
 * still pending and due when the write happens, whichever worker read it
 * due and whatever the engine locks (SQLite: the database; PostgreSQL: the
 * row, its WHERE evaluated again once a concurrent writer's change is
 * committed -- and the driver's writers' lock besides).  Of several
 * workers that read one due row, exactly one claims it. */
static int notification_sending_tx(struct sql_store *s, int64_t id, const char *message_id,
                                   int64_t now, char *ret_message_id)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        /* The first attempt's Message-ID wins, whatever this one proposes. */
        r = sql_query(s, &st,
                      "UPDATE notification SET attempts = attempts + 1, next_attempt = ?1, "
                      "message_id = coalesce(message_id, ?2) "
                      "WHERE id = ?3 AND state = 'pending' AND next_attempt <= ?4 "
                      "RETURNING message_id",
                      "itii", now + PC_NOTIFICATION_LEASE, message_id, id, now);
        if (r < 0)
                return r;
        r = sql_step(s, st);
        if (r == -EEXIST)
                return sql_err(s, -EEXIST,
                               "notification #%lld: Message-ID %s is already another "
                               "notification's",
                               (long long)id, message_id);
        if (r < 0)
                return r;
        if (r == 0)
                return notification_unclaimed(s, id);
        if (ret_message_id != NULL)
                copy_trunc(ret_message_id, PC_NOTIFICATION_MESSAGE_ID_MAX, col_text(st, 0));
        return 0;
}

int store_notification_sending(struct pc_store *ps, int64_t id, const char *message_id,
                               int64_t now, char *ret_message_id)
{
        struct sql_store *s = to_sql(ps);
        int r;

        r = check_message_id(s, message_id);
        if (r >= 0)
                r = sql_tx_begin(s);
        if (r < 0)
                return r;
        return sql_tx_end(s, notification_sending_tx(s, id, message_id, now, ret_message_id));
}

static int notification_sent_tx(struct sql_store *s, int64_t id, int64_t now)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        r = notification_pending_row(s, id, &st);
        if (r < 0)
                return r;
        if (db_column_is_null(st, 11))
                return sql_err(s, -EINVAL,
                               "notification #%lld: no send attempt was begun "
                               "(notification_sending records its Message-ID first)",
                               (long long)id);
        return sql_exec(s, "UPDATE notification SET state = 'sent', sent_at = ? WHERE id = ?", "ii",
                        now, id);
}

int store_notification_sent(struct pc_store *ps, int64_t id, int64_t now)
{
        struct sql_store *s = to_sql(ps);
        int r = sql_tx_begin(s);

        if (r < 0)
                return r;
        return sql_tx_end(s, notification_sent_tx(s, id, now));
}

static int notification_retry_later_tx(struct sql_store *s, int64_t id, const char *error,
                                       int64_t next_attempt)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        r = notification_pending_row(s, id, &st);
        if (r < 0)
                return r;
        return sql_exec(s, "UPDATE notification SET next_attempt = ?, last_error = ? WHERE id = ?",
                        "iti", next_attempt, error, id);
}

int store_notification_retry_later(struct pc_store *ps, int64_t id, const char *error,
                                   int64_t next_attempt)
{
        struct sql_store *s = to_sql(ps);
        char clean[PC_NOTIFICATION_ERROR_MAX];
        int r;

        clean_text(clean, sizeof(clean), error);
        r = sql_tx_begin(s);
        if (r < 0)
                return r;
        return sql_tx_end(s, notification_retry_later_tx(s, id, clean, next_attempt));
}

/* Writes the audit row of a change of notification <id>; <before> (JSON
 * from notification_json, taken before the change) is borrowed. */
static int notification_audit(struct sql_store *s, int64_t now, const struct pc_actor *who,
                              const char *action, int64_t id, json_t *before)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        _cleanup_json_ json_t *after = NULL;
        char object[48];
        int r;

        r = notification_row(s, id, &st);
        if (r < 0)
                return r;
        after = notification_json(st);
        if (after == NULL)
                return sql_err(s, -ENOMEM, "notification #%lld: cannot describe it in JSON",
                               (long long)id);
        snprintf(object, sizeof(object), "notification/%lld", (long long)id);
        return sql_audit(s, now, who, action, object, col_text(st, 2), before, after);
}

/* The current row of <st> as notification_json, before it changes. */
static int notification_before(struct sql_store *s, int64_t id, struct db_stmt *st,
                               json_t **ret)
{
        json_t *j = notification_json(st);

        if (j == NULL)
                return sql_err(s, -ENOMEM, "notification #%lld: cannot describe it in JSON",
                               (long long)id);
        *ret = j;
        return 0;
}

static int notification_failed_tx(struct sql_store *s, int64_t id, const char *error,
                                  int64_t now)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        _cleanup_json_ json_t *before = NULL;
        struct pc_actor who = notifier;
        char reason[REASON_MAX];
        int r;

        r = notification_pending_row(s, id, &st);
        if (r >= 0)
                r = notification_before(s, id, st, &before);
        if (r < 0)
                return r;
        r = sql_exec(s, "UPDATE notification SET state = 'failed', last_error = ? WHERE id = ?", "ti",
                     error, id);
        if (r < 0)
                return r;
        /* The audit log's reason is shorter: cut at a character. */
        clean_text(reason, sizeof(reason), error);
        who.reason = reason;
        return notification_audit(s, now, &who, "notification.fail", id, before);
}

int store_notification_failed(struct pc_store *ps, int64_t id, const char *error)
{
        struct sql_store *s = to_sql(ps);
        char clean[PC_NOTIFICATION_ERROR_MAX];
        int r;

        clean_text(clean, sizeof(clean), error);
        r = sql_tx_begin(s);
        if (r < 0)
                return r;
        return sql_tx_end(s, notification_failed_tx(s, id, clean, pc_now()));
}

static int notification_retry_tx(struct sql_store *s, int64_t id, const struct pc_actor *who,
                                 int64_t now)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        _cleanup_json_ json_t *before = NULL;
        char when[32];
        int r;

        r = notification_row(s, id, &st);
        if (r < 0)
                return r;
        if (strcmp(col_text(st, 7), "sent") == 0) {
                pc_format_time(db_column_int64(st, 12), when, sizeof(when));
                return sql_err(s, -EINVAL,
                               "notification #%lld was sent at %s (Message-ID %s); it is not "
                               "sent twice",
                               (long long)id, when, col_text(st, 11));
        }
        r = notification_before(s, id, st, &before);
        if (r < 0)
                return r;
        r = sql_exec(s,
                     "UPDATE notification SET state = 'pending', next_attempt = ?, attempts = 0 "
                     "WHERE id = ?",
                     "ii", now, id);
        if (r < 0)
                return r;
        return notification_audit(s, now, who, "notification.retry", id, before);
}

int store_notification_retry(struct pc_store *ps, int64_t id, const struct pc_actor *who)
{
        struct sql_store *s = to_sql(ps);
        int r;

        r = sql_write_begin(s, who);
        if (r < 0)
                return r;
        return sql_tx_end(s, notification_retry_tx(s, id, who, pc_now()));
}

static int notification_queue_tx(struct sql_store *s, const char *vps_id, const char *kind,
                                 json_t *facts, int64_t now, int64_t *ret_id)
{
        _cleanup_json_ json_t *vps = NULL;
        int r;

        r = sql_vps_fetch(s, vps_id, &vps);
        if (r < 0)
                return r;
        return email_queue(s, now, kind, vps, facts, ret_id);
}

int store_notification_queue(struct pc_store *ps, const char *vps_id, const char *kind,
                             const char *facts, int64_t now, int64_t *ret_id)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_json_ json_t *f = NULL;
        json_error_t jerr;
        int64_t id = 0;
        int r;

        if (strnlen(kind, PC_NOTIFICATION_KIND_MAX) >= PC_NOTIFICATION_KIND_MAX ||
            !pc_name_valid(kind))
                return sql_err(s, -EINVAL,
                               "invalid notification kind '%.63s': use 1-63 of a-z 0-9 . _ - "
                               "starting with a letter or digit",
                               kind);
        if (facts == NULL)
                f = json_object();
        else if (strnlen(facts, PC_NOTIFICATION_FACTS_MAX + 1) > PC_NOTIFICATION_FACTS_MAX)
                return sql_err(s, -EINVAL, "%s for %.63s: the facts are longer than %d bytes",
                               kind, vps_id, PC_NOTIFICATION_FACTS_MAX);
        else {
                f = json_loads(facts, JSON_REJECT_DUPLICATES, &jerr);
                if (f == NULL)
                        return sql_err(s, -EINVAL, "%s for %.63s: the facts are not JSON: %s",
                                       kind, vps_id, jerr.text);
                if (!json_is_object(f))
                        return sql_err(s, -EINVAL,
                                       "%s for %.63s: the facts are not a JSON object", kind,
                                       vps_id);
        }
        if (f == NULL)
                return sql_err(s, -ENOMEM, "out of memory");
        r = sql_tx_begin(s);
        if (r < 0)
                return r;
        r = sql_tx_end(s, notification_queue_tx(s, vps_id, kind, f, now, &id));
        if (r < 0)
                return r;
        if (ret_id != NULL)
                *ret_id = id;
        return 0;
}
