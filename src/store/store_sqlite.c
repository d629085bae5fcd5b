/* The store over the database driver (db.h): every change in one write
 * transaction together with its audit row and, where the owner must be
 * told, its notification-outbox row.
 *
 * All SQL below is constant text; every value travels as a bound
 * parameter.  Statements are prepared per call and always released (the
 * _cleanup_stmt_ attribute), so no call leaves one behind. */
#include "store/store-internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <jansson.h>

#include "base/utf8.h"
#include "base/util.h"
#include "store/db.h"

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

/* A statement stepped in step with others while merging (see load). */
struct cursor {
        struct db_stmt *st;
        bool row; /* a row is current */
};

/* jansson.h provides json_decrefp(). */
#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))

static struct sql_store *to_sql(struct pc_store *s)
{
        return (struct sql_store *)s;
}

/* Sets the store's message from <fmt> and returns <r>. */
static int set_err(struct sql_store *s, int r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
        va_end(ap);
        return r;
}

/* Sets the message of the driver's error <r> (a negative errno, db.h)
 * while doing <what>, with the engine's words, and returns <r>. */
static int db_fail(struct sql_store *s, int r, const char *what)
{
        return set_err(s, r, "database %s: %s: %s", s->db->name, what, db_errmsg(s->db));
}

/* Prepares <sql>, a string literal (the driver's cache keeps its
 * address), and binds the arguments in <ap> to its parameters 1, 2... as
 * <fmt> says: 't' a const char * (NULL binds NULL), 'i' an int64_t, 'n'
 * an int64_t bound as NULL when 0, '?' nothing (the caller binds it). */
static int prepare_va(struct sql_store *s, struct db_stmt **ret, const char *sql, const char *fmt,
                      va_list ap)
{
        struct db_stmt *st = NULL;
        int r, i = 1;

        r = db_prepare(s->db, sql, &st);
        if (r < 0)
                return db_fail(s, r, "preparing a statement");
        for (const char *f = fmt; *f != '\0' && r >= 0; f++, i++) {
                const char *t;
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
                case '?': /* bound by the caller (a blob) */
                        break;
                default:
                        r = -EIO;
                        break;
                }
        }
        if (r < 0) {
                r = db_fail(s, r, "binding a parameter");
                db_stmt_release(st);
                return r;
        }
        *ret = st;
        return 0;
}

/* Prepares <sql> with parameters bound per <fmt> (see prepare_va). */
static int query(struct sql_store *s, struct db_stmt **ret, const char *sql, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = prepare_va(s, ret, sql, fmt, ap);
        va_end(ap);
        return r;
}

/* Steps <st>: 1 for a row, 0 when done, or a negative errno. */
static int step(struct sql_store *s, struct db_stmt *st)
{
        int r = db_step(st);

        return r >= 0 ? r : db_fail(s, r, "executing a statement");
}

/* Runs the statement <sql>, which returns no rows, with parameters bound
 * per <fmt> (see prepare_va). */
static int exec(struct sql_store *s, const char *sql, const char *fmt, ...)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = prepare_va(s, &st, sql, fmt, ap);
        va_end(ap);
        if (r < 0)
                return r;
        r = step(s, st);
        return r < 0 ? r : 0;
}

/* Column <i> of the current row as text; "" for NULL. */
static const char *col_text(struct db_stmt *st, int i)
{
        return db_column_text(st, i);
}

/* Column <i> as text, or NULL for NULL. */
static const char *col_text_or_null(struct db_stmt *st, int i)
{
        return db_column_is_null(st, i) ? NULL : db_column_text(st, i);
}

/* Column <i> as a JSON string or null. */
static json_t *col_json_text(struct db_stmt *st, int i)
{
        if (db_column_is_null(st, i))
                return json_null();
        return json_string(col_text(st, i));
}

/* Column <i> as a JSON integer or null. */
static json_t *col_json_int(struct db_stmt *st, int i)
{
        if (db_column_is_null(st, i))
                return json_null();
        return json_integer(db_column_int64(st, i));
}

/* Copies <src> into <dst> of <size> bytes, cutting it if longer. */
static void copy_trunc(char *dst, size_t size, const char *src)
{
        size_t n = src != NULL ? strnlen(src, size - 1) : 0;

        if (n > 0)
                memcpy(dst, src, n);
        dst[n] = '\0';
}

/* Begins a write transaction, or a savepoint within the operation's.
 * -ESTALE if the database is no longer the one opened (a file deleted or
 * replaced under us), with nothing written. */
static int tx_begin(struct sql_store *s)
{
        int r;

        if (s->tx_depth > 0) { /* within an operation's transaction */
                r = db_savepoint(s->db);
                if (r < 0)
                        return db_fail(s, r, "executing a statement");
                s->tx_depth++;
                return 0;
        }
        r = db_begin(s->db);
        if (r == -ESTALE)
                return set_err(s, -ESTALE,
                               "database %s was deleted or replaced while open: nothing was "
                               "written",
                               s->db->name);
        if (r < 0)
                return db_fail(s, r, "executing a statement");
        s->tx_depth = 1;
        return 0;
}

/* Ends the transaction: commits if <r> >= 0, else (or if the commit
 * fails) rolls back keeping the first error's message.  Returns 0 or the
 * error. */
static int tx_end(struct sql_store *s, int r)
{
        if (s->tx_depth > 1) { /* the outer transaction commits, or not */
                s->tx_depth--;
                if (r >= 0) {
                        r = db_savepoint_release(s->db);
                        return r < 0 ? db_fail(s, r, "executing a statement") : 0;
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
                r = db_fail(s, r, "executing a statement");
        }
        if (db_in_tx(s->db))
                db_rollback(s->db); /* keeps <r>'s message */
        return r;
}

/* Checks that free text <text> (may be NULL), called <what> in messages,
 * is shorter than <max> bytes and is text (pc_text_invalid: valid UTF-8,
 * no control character), whoever the writer: a newline or an ESC stored
 * here would fake a row or steer a terminal wherever it is shown. */
static int check_text(struct sql_store *s, const char *what, const char *text, size_t max)
{
        char why[80];

        if (text == NULL)
                return 0;
        if (strnlen(text, max) >= max)
                return set_err(s, -EINVAL, "%s is longer than %zu bytes", what, max - 1);
        if (pc_text_invalid(text, why, sizeof(why)) != NULL)
                return set_err(s, -EINVAL, "%s %s", what, why);
        return 0;
}

/* Checks that <who> names someone and gives a reason that fits. */
static int check_actor(struct sql_store *s, const struct pc_actor *who)
{
        if (who->by == NULL || who->by[0] == '\0')
                return set_err(s, -EINVAL, "no actor given: say who makes the change");
        if (check_text(s, "actor name", who->by, PC_NAME_MAX) < 0)
                return -EINVAL;
        return check_text(s, "reason", who->reason, REASON_MAX);
}

/* Checks that an end time <until> (0: none) of <what> is in the future. */
static int check_until(struct sql_store *s, const char *what, int64_t until, int64_t now)
{
        char buf[32];

        if (until == 0 || until > now)
                return 0;
        pc_format_time(until, buf, sizeof(buf));
        return set_err(s, -EINVAL, "%s: end time %s is not in the future", what, buf);
}

/* Reads the VPS <id> as a JSON object (id, owner, lang, site, iface, mac,
 * addresses, created) into *<ret>, owned by the caller.  -ENOENT if it does
 * not exist. */
static int vps_fetch(struct sql_store *s, const char *id, json_t **ret)
{
        _cleanup_stmt_ struct db_stmt *st = NULL, *ast = NULL;
        _cleanup_json_ json_t *addrs = NULL;
        json_t *v;
        int r;

        r = query(s, &st, "SELECT id, owner, lang, site, iface, mac, created FROM vps WHERE id = ?",
                  "t", id);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return set_err(s, -ENOENT, "vps %s does not exist", id);
        r = query(s, &ast, "SELECT prefix FROM vps_address WHERE vps_id = ? ORDER BY rowid", "t",
                  id);
        if (r < 0)
                return r;
        addrs = json_array();
        if (addrs == NULL)
                return set_err(s, -ENOMEM, "out of memory");
        while ((r = step(s, ast)) > 0)
                if (json_array_append_new(addrs, json_string(col_text(ast, 0))) < 0)
                        return set_err(s, -ENOMEM, "out of memory");
        if (r < 0)
                return r;
        v = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:O, s:I}", "id", col_text(st, 0), "owner",
                      col_text(st, 1), "lang", col_text(st, 2), "site", col_text(st, 3), "iface",
                      col_text(st, 4), "mac", col_json_text(st, 5), "addresses", addrs,
                      "created", (json_int_t)db_column_int64(st, 6));
        if (v == NULL)
                return set_err(s, -ENOMEM, "vps %s: cannot describe it in JSON", id);
        *ret = v;
        return 0;
}

/* Appends the audit row of a change.  <before> and <after> (JSON, either
 * may be NULL) are borrowed. */
static int audit(struct sql_store *s, int64_t now, const struct pc_actor *who,
                 const char *action, const char *object, const char *vps_id, json_t *before,
                 json_t *after)
{
        _cleanup_free_ char *b = NULL, *a = NULL;

        if (before != NULL && (b = json_dumps(before, JSON_FLAGS)) == NULL)
                return set_err(s, -ENOMEM, "%s: cannot write the audit record", object);
        if (after != NULL && (a = json_dumps(after, JSON_FLAGS)) == NULL)
                return set_err(s, -ENOMEM, "%s: cannot write the audit record", object);
        return exec(s,
                    "INSERT INTO audit (at, \"by\", action, object, vps_id, reason, \"before\", "
                    "\"after\") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    "ittttttt", now, who->by, action, object, vps_id, who->reason, b, a);
}

/* Queues the notification <kind> to the owner of <vps> (from vps_fetch).
 * Its payload is <facts> (borrowed) plus the VPS's id, site and
 * addresses. */
/* Queues outbox row <kind> on <channel> to <recipient> (<lang>: the
 * email's language, "" for a webhook): <facts> (borrowed) plus the VPS, its
 * site and addresses -- and its owner, if <owner> -- in the same
 * transaction as what it tells of, so that nothing is lost. */
static int outbox_queue(struct sql_store *s, int64_t now, const char *kind, json_t *vps, json_t *facts,
                        const char *channel, const char *recipient, const char *lang, bool owner)
{
        _cleanup_json_ json_t *payload = json_deep_copy(facts);
        _cleanup_free_ char *text = NULL;
        const char *id = json_string_value(json_object_get(vps, "id"));

        if (payload == NULL || json_object_set(payload, "vps", json_object_get(vps, "id")) < 0 ||
            (owner && json_object_set(payload, "owner", json_object_get(vps, "owner")) < 0) ||
            json_object_set(payload, "site", json_object_get(vps, "site")) < 0 ||
            json_object_set(payload, "addresses", json_object_get(vps, "addresses")) < 0 ||
            json_object_set_new(payload, "event", json_string(kind)) < 0 ||
            (text = json_dumps(payload, JSON_FLAGS)) == NULL)
                return set_err(s, -ENOMEM, "%s: cannot write the %s", id,
                               strcmp(channel, "email") == 0 ? "notification" : "webhook event");
        return exec(s,
                    "INSERT INTO notification (created, vps_id, kind, recipient, language, "
                    "payload, state, attempts, next_attempt, channel) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
                    "itttttit", now, id, kind, recipient, lang, text, now, channel);
}

/* Queues the owner's email <kind>. */
static int notify(struct sql_store *s, int64_t now, const char *kind, json_t *vps, json_t *facts)
{
        return outbox_queue(s, now, kind, vps, facts, "email", json_string_value(json_object_get(vps, "owner")),
                            json_string_value(json_object_get(vps, "lang")), false);
}

/* Queues the webhook event <kind> to <url>: <facts> (borrowed) plus the
 * VPS, its owner, site and addresses, in the notification outbox. */
static int webhook_queue(struct sql_store *s, int64_t now, const char *kind, const char *url, json_t *vps,
                         json_t *facts)
{
        _cleanup_json_ json_t *with_id = json_copy(facts);
        uint8_t rnd[16];
        char hex[2 * sizeof(rnd) + 1];

        /* Its delivery id, the same on every attempt and unique across
         * hypervisors (each has its own database and row numbers), which
         * receivers drop duplicates by. */
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
                return set_err(s, -EIO, "no random bytes for a webhook delivery id");
        for (size_t i = 0; i < sizeof(rnd); i++)
                snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
        if (with_id == NULL || json_object_set_new(with_id, "delivery", json_string(hex)) < 0)
                return set_err(s, -ENOMEM, "cannot write the webhook event");
        return outbox_queue(s, now, kind, vps, with_id, "webhook", url, "", true);
}

/* Checks that incident <incident_id> (0: none) exists and is <vps_id>'s. */
static int incident_check(struct sql_store *s, const char *vps_id, int64_t incident_id)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        if (incident_id == 0)
                return 0;
        r = query(s, &st, "SELECT vps_id FROM incident WHERE id = ?", "i", incident_id);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return set_err(s, -ENOENT, "incident #%lld does not exist",
                               (long long)incident_id);
        if (strcmp(col_text(st, 0), vps_id) != 0)
                return set_err(s, -EINVAL, "incident #%lld is about %s, not %s",
                               (long long)incident_id, col_text(st, 0), vps_id);
        return 0;
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

static int sq_open(const char *location, struct pc_store **ret)
{
        return pc_store_sqlite_open(location, false, NULL, ret, NULL, 0);
}

static void sq_close(struct pc_store *ps)
{
        struct sql_store *s = to_sql(ps);

        db_close(s->db);
        free(s);
}

static const char *sq_errmsg(const struct pc_store *ps)
{
        return ((const struct sql_store *)ps)->errmsg;
}

static int sq_schema_version(struct pc_store *ps, int *ret_version)
{
        struct sql_store *s = to_sql(ps);
        int r = db_schema_version(s->db, ret_version);

        return r < 0 ? db_fail(s, r, "reading the schema version") : 0;
}

/* ---- load ------------------------------------------------------------ */

static int cursor_next(struct sql_store *s, struct cursor *c)
{
        int r = step(s, c->st);

        if (r < 0)
                return r;
        c->row = r > 0;
        return 0;
}

/* Moves <c> (ordered by vps_id in column 0) past rows of VPSes before
 * <id>, which cannot exist with foreign keys on, but cost nothing to skip. */
static int cursor_seek(struct sql_store *s, struct cursor *c, const char *id)
{
        int r = 0;

        while (r >= 0 && c->row && strcmp(col_text(c->st, 0), id) < 0)
                r = cursor_next(s, c);
        return r;
}

static bool cursor_at(const struct cursor *c, const char *id)
{
        return c->row && strcmp(col_text(c->st, 0), id) == 0;
}

/* Adds the address rows (vps_id, prefix) of <vps> at <c> to it. */
static int load_addrs(struct sql_store *s, struct cursor *c, struct pc_vps *vps)
{
        int r = cursor_seek(s, c, vps->id);

        for (; r >= 0 && cursor_at(c, vps->id); r = cursor_next(s, c)) {
                struct pc_prefix p;

                if (pc_parse_prefix(col_text(c->st, 1), false, &p) < 0)
                        return set_err(s, -EINVAL, "%s: bad address '%s' in the database",
                                       vps->id, col_text(c->st, 1));
                r = pc_vps_add_addr(vps, &p);
                if (r < 0)
                        return set_err(s, r, "%s: cannot add address %s: %s", vps->id,
                                       col_text(c->st, 1), strerror(-r));
        }
        return r;
}

/* Reads the exception of the row at <st> whose columns 1-8 are id,
 * service, ticket_id, by, reason, created, until, ports. */
static void exception_read(struct db_stmt *st, struct pc_exception *e)
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

/* Adds the exception rows (vps_id, id, service, ticket_id, by, reason,
 * created, until) of <vps> at <c> to it. */
static int load_exceptions(struct sql_store *s, struct cursor *c, struct pc_vps *vps)
{
        int r = cursor_seek(s, c, vps->id);

        for (; r >= 0 && cursor_at(c, vps->id); r = cursor_next(s, c)) {
                struct pc_exception e;

                exception_read(c->st, &e);
                r = pc_vps_add_exception(vps, &e);
                if (r < 0)
                        return set_err(s, r, "%s: cannot add exception #%lld for %s: %s",
                                       vps->id, (long long)e.id, e.service, strerror(-r));
        }
        return r;
}

/* Parses a filter's stored <scope> into <f>. */
static int parse_scope(struct sql_store *s, const struct pc_config *cfg, const char *vps_id,
                       const char *scope, struct pc_filter *f)
{
        char perr[128];

        if (strcmp(scope, "all") == 0) {
                f->scope = PC_SCOPE_ALL;
        } else if (strncmp(scope, "service:", 8) == 0) {
                f->scope = PC_SCOPE_SERVICE;
                f->service = pc_config_service(cfg, scope + 8);
                if (f->service == NULL)
                        return set_err(s, -ENOENT,
                                       "%s: filter #%lld: service '%s' is not in the "
                                       "configuration",
                                       vps_id, (long long)f->id, scope + 8);
        } else {
                f->scope = PC_SCOPE_PORTS;
                if (pc_port_range_parse(scope, &f->ports, perr, sizeof(perr)) < 0)
                        return set_err(s, -EINVAL, "%s: filter #%lld: bad scope '%s': %s",
                                       vps_id, (long long)f->id, scope, perr);
        }
        return 0;
}

/* Adds the action rows (vps_id, id, kind, direction, scope, incident_id,
 * by, reason, created, until) of <vps> at <c> to it: filters and the
 * suspension. */
static int load_actions(struct sql_store *s, const struct pc_config *cfg, struct cursor *c,
                        struct pc_vps *vps)
{
        int r = cursor_seek(s, c, vps->id);

        for (; r >= 0 && cursor_at(c, vps->id); r = cursor_next(s, c)) {
                int64_t id = db_column_int64(c->st, 1);
                const char *kind = col_text(c->st, 2);

                if (strcmp(kind, "suspension") == 0) {
                        struct pc_suspension *su = &vps->suspension;

                        vps->suspended = true;
                        su->id = id;
                        su->incident_id = db_column_int64(c->st, 5);
                        copy_trunc(su->by, sizeof(su->by), col_text(c->st, 6));
                        copy_trunc(su->reason, sizeof(su->reason), col_text(c->st, 7));
                        su->created = db_column_int64(c->st, 8);
                        su->terminated = db_column_int64(c->st, 10) != 0;
                } else {
                        struct pc_filter f = { 0 };

                        f.id = id;
                        if (pc_dir_parse(col_text(c->st, 3), &f.direction) < 0)
                                return set_err(s, -EINVAL,
                                               "%s: filter #%lld: bad direction '%s'", vps->id,
                                               (long long)id, col_text(c->st, 3));
                        r = parse_scope(s, cfg, vps->id, col_text(c->st, 4), &f);
                        if (r < 0)
                                return r;
                        f.incident_id = db_column_int64(c->st, 5);
                        copy_trunc(f.by, sizeof(f.by), col_text(c->st, 6));
                        copy_trunc(f.reason, sizeof(f.reason), col_text(c->st, 7));
                        f.created = db_column_int64(c->st, 8);
                        f.until = db_column_int64(c->st, 9);
                        r = pc_vps_add_filter(vps, &f);
                        if (r < 0)
                                return set_err(s, r, "%s: cannot add filter #%lld: %s",
                                               vps->id, (long long)id, strerror(-r));
                }
        }
        return r;
}

/* Builds the VPS of the current row of <v> (id, owner, lang, site, iface,
 * mac, created, run_state, run_since) with what the other cursors hold for
 * it, and adds it to <m>. */
static int load_one(struct sql_store *s, struct pc_model *m, struct cursor *v,
                    struct cursor *a, struct cursor *e, struct cursor *f)
{
        const struct pc_config *cfg = pc_model_config(m);
        struct pc_vps *vps = NULL;
        const char *site = col_text(v->st, 3);
        int r;

        r = pc_vps_new(&vps);
        if (r < 0)
                return set_err(s, r, "out of memory");
        copy_trunc(vps->id, sizeof(vps->id), col_text(v->st, 0));
        copy_trunc(vps->owner, sizeof(vps->owner), col_text(v->st, 1));
        copy_trunc(vps->lang, sizeof(vps->lang), col_text(v->st, 2));
        vps->site = pc_config_site(cfg, site);
        if (vps->site == NULL) {
                r = set_err(s, -ENOENT, "%s: site '%s' is not in the configuration", vps->id,
                            site);
                goto out;
        }
        copy_trunc(vps->iface, sizeof(vps->iface), col_text(v->st, 4));
        if (!db_column_is_null(v->st, 5)) {
                if (pc_parse_mac(col_text(v->st, 5), vps->mac) < 0) {
                        r = set_err(s, -EINVAL, "%s: bad MAC '%s' in the database", vps->id,
                                    col_text(v->st, 5));
                        goto out;
                }
                vps->has_mac = true;
        }
        vps->created = db_column_int64(v->st, 6);
        vps->stopped = strcmp(col_text(v->st, 7), "stopped") == 0;
        vps->run_since = db_column_int64(v->st, 8);

        r = load_addrs(s, a, vps);
        if (r >= 0)
                r = load_exceptions(s, e, vps);
        if (r >= 0)
                r = load_actions(s, cfg, f, vps);
        if (r < 0)
                goto out;
        pc_vps_reindex(vps);
        r = pc_model_add(m, vps);
        if (r < 0) {
                set_err(s, r, "%s: cannot add it to the model: %s", vps->id, strerror(-r));
                goto out;
        }
        vps = NULL; /* the model owns it */
out:
        pc_vps_free(vps);
        return r;
}

/* Empties <m> again after a failed load. */
static void model_clear(struct pc_model *m)
{
        while (pc_model_count(m) > 0) {
                char id[PC_NAME_MAX];

                copy_trunc(id, sizeof(id), pc_model_at(m, 0)->id);
                if (pc_model_remove(m, id) < 0)
                        break;
        }
}

/* Loads everything in force, in one read transaction: four ordered
 * SELECTs (VPSes, addresses, exceptions, actions) merged by VPS id in one
 * pass, so the cost is one scan of each table whatever the fleet's size. */
static int load_into(struct sql_store *s, struct pc_model *m, const char *only)
{
        _cleanup_stmt_ struct db_stmt *vst = NULL, *ast = NULL, *est = NULL, *fst = NULL;
        struct cursor v, a, e, f;
        int64_t now = pc_now();
        int r;

        /* Within an operation's transaction, that one is the snapshot. */
        bool own_tx = s->tx_depth == 0;

        if (pc_model_count(m) != 0)
                return set_err(s, -EINVAL, "cannot load into a model that is not empty");
        r = own_tx ? db_begin_read(s->db) : 0;
        if (r < 0)
                r = db_fail(s, r, "executing a statement");
        if (r < 0)
                return r;
        /* Every VPS, or just <only>: separate texts so that the single
         * fetch is an index lookup, not a scan. */
        static const char *const sql[2][4] = {
                { "SELECT id, owner, lang, site, iface, mac, created, run_state, run_since FROM vps WHERE ?1 IS NULL "
                  "ORDER BY id",
                  "SELECT vps_id, prefix FROM vps_address WHERE ?1 IS NULL ORDER BY vps_id, rowid",
                  "SELECT vps_id, id, service, ticket_id, \"by\", reason, created, until, ports FROM exception "
                  "WHERE ?1 IS NULL AND revoked_at IS NULL AND (until IS NULL OR until > ?2) "
                  "ORDER BY vps_id, id",
                  "SELECT vps_id, id, kind, direction, scope, incident_id, \"by\", reason, created, until, "
                  "terminated FROM action WHERE ?1 IS NULL AND lifted_at IS NULL AND (until IS NULL OR until > ?2) "
                  "ORDER BY vps_id, id" },
                { "SELECT id, owner, lang, site, iface, mac, created, run_state, run_since FROM vps WHERE id = ?1",
                  "SELECT vps_id, prefix FROM vps_address WHERE vps_id = ?1 ORDER BY rowid",
                  "SELECT vps_id, id, service, ticket_id, \"by\", reason, created, until, ports FROM exception "
                  "WHERE vps_id = ?1 AND revoked_at IS NULL AND (until IS NULL OR until > ?2) ORDER BY id",
                  "SELECT vps_id, id, kind, direction, scope, incident_id, \"by\", reason, created, until, "
                  "terminated FROM action WHERE vps_id = ?1 AND lifted_at IS NULL AND (until IS NULL OR until > ?2) "
                  "ORDER BY id" },
        };
        const char *const *q = sql[only != NULL];

        r = query(s, &vst, q[0], "t", only);
        if (r >= 0)
                r = query(s, &ast, q[1], "t", only);
        if (r >= 0)
                r = query(s, &est, q[2], "ti", only, now);
        if (r >= 0)
                r = query(s, &fst, q[3], "ti", only, now);
        if (r < 0)
                goto out;
        v = (struct cursor){ vst, false };
        a = (struct cursor){ ast, false };
        e = (struct cursor){ est, false };
        f = (struct cursor){ fst, false };
        r = cursor_next(s, &a);
        if (r >= 0)
                r = cursor_next(s, &e);
        if (r >= 0)
                r = cursor_next(s, &f);
        if (r >= 0)
                r = cursor_next(s, &v);
        while (r >= 0 && v.row) {
                r = load_one(s, m, &v, &a, &e, &f);
                if (r >= 0)
                        r = cursor_next(s, &v);
        }
out:
        /* Finalize before ending the read transaction, which cannot lose
         * anything. */
        db_stmt_release(vst);
        db_stmt_release(ast);
        db_stmt_release(est);
        db_stmt_release(fst);
        vst = ast = est = fst = NULL;
        if (own_tx)
                tx_end(s, -1);
        if (r < 0) {
                model_clear(m);
                return r;
        }
        return 0;
}

static int sq_load(struct pc_store *ps, struct pc_model *m)
{
        return load_into(to_sql(ps), m, NULL);
}

/* Loads the one VPS <id> through the same path as sq_load, into a model
 * of its own, and hands it over. */
static int sq_vps_fetch(struct pc_store *ps, const struct pc_config *cfg, const char *id,
                        struct pc_vps **ret)
{
        struct sql_store *s = to_sql(ps);
        struct pc_model *m = NULL;
        int r = pc_model_new(cfg, &m);

        if (r < 0)
                return set_err(s, r, "out of memory");
        r = load_into(s, m, id);
        if (r >= 0 && pc_model_count(m) == 0)
                r = set_err(s, -ENOENT, "vps %s does not exist", id);
        if (r >= 0)
                r = pc_model_take(m, id, ret);
        pc_model_free(m);
        return r < 0 ? r : 0;
}

/* ---- VPSes ----------------------------------------------------------- */

/* Checks the fields of <vps> that the store keeps. */
static int check_vps(struct sql_store *s, const struct pc_vps *vps)
{
        if (strnlen(vps->id, sizeof(vps->id)) >= sizeof(vps->id) || !pc_name_valid(vps->id))
                return set_err(s, -EINVAL,
                               "invalid vps id '%.63s': use 1-63 of a-z 0-9 . _ - starting "
                               "with a letter or digit",
                               vps->id);
        if (vps->site == NULL)
                return set_err(s, -EINVAL, "vps %s has no site", vps->id);
        if (strnlen(vps->owner, sizeof(vps->owner)) >= sizeof(vps->owner) ||
            !pc_email_valid(vps->owner))
                return set_err(s, -EINVAL, "vps %s: owner '%.255s' is not an email address",
                               vps->id, vps->owner);
        if (strnlen(vps->lang, sizeof(vps->lang)) >= sizeof(vps->lang) ||
            check_text(s, "language", vps->lang, sizeof(vps->lang)) < 0)
                return set_err(s, -EINVAL, "vps %s: bad language", vps->id);
        if (strnlen(vps->iface, sizeof(vps->iface)) >= sizeof(vps->iface) ||
            (vps->iface[0] != '\0' && !pc_ifname_valid(vps->iface)))
                return set_err(s, -EINVAL, "vps %s: bad interface name '%.15s'", vps->id,
                               vps->iface);
        if (vps->n_addrs > PC_VPS_ADDRS_MAX)
                return set_err(s, -ENOSPC, "vps %s has %zu addresses; the limit is %d", vps->id,
                               vps->n_addrs, PC_VPS_ADDRS_MAX);
        for (size_t i = 0; i < vps->n_addrs; i++) {
                const struct pc_prefix *p = &vps->addrs[i];

                if (!(p->family == AF_INET && p->len <= 32) &&
                    !(p->family == AF_INET6 && p->len <= 128))
                        return set_err(s, -EINVAL, "vps %s: address %zu is not IPv4 or IPv6",
                                       vps->id, i + 1);
        }
        return 0;
}

/* Binds prefix <p>'s network (4 or 16 bytes, network order: byte order
 * is address order) to parameter <i> of <st>. */
static int bind_net(struct sql_store *s, struct db_stmt *st, int i, const struct pc_prefix *p)
{
        int r = db_bind_blob(st, i, p->bytes, p->family == AF_INET ? 4 : 16);

        return r >= 0 ? 0 : db_fail(s, r, "binding an address");
}

/* Writes address <p> (formatted <prefix>) of <vps_id>, with the network
 * and length that pc_store_addr_holder's index looks up. */
static int addr_insert(struct sql_store *s, const char *vps_id, const struct pc_prefix *p, const char *prefix)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        r = query(s, &st, "INSERT INTO vps_address (vps_id, family, prefix, len, net) VALUES (?, ?, ?, ?, ?)",
                  "titi", vps_id, (int64_t)(p->family == AF_INET ? 4 : 6), prefix, (int64_t)p->len);
        if (r >= 0)
                r = bind_net(s, st, 5, p);
        if (r >= 0)
                r = step(s, st);
        return r < 0 ? r : 0;
}

/* Checks that no VPS but <vps> is on <vps>'s interface: the kernel knows
 * a VPS by its interface, and two VPSes on one would get each other's
 * policy.  -EEXIST naming the other. */
static int iface_free(struct sql_store *s, const struct pc_vps *vps)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        r = query(s, &st, "SELECT id FROM vps WHERE iface = ? AND iface != '' AND id != ?", "tt", vps->iface, vps->id);
        if (r >= 0)
                r = step(s, st);
        if (r < 0)
                return r;
        if (r > 0)
                return set_err(s, -EEXIST, "interface %s is already %s's", vps->iface, col_text(st, 0));
        return 0;
}

/* Writes the addresses of <vps>, each one nobody holds already (the
 * operations layer checked overlaps; this is the exact-match backstop). */
static int addrs_insert(struct sql_store *s, const struct pc_vps *vps)
{
        int r;

        for (size_t i = 0; i < vps->n_addrs; i++) {
                _cleanup_stmt_ struct db_stmt *st = NULL;
                char prefix[64];

                pc_format_prefix(&vps->addrs[i], prefix, sizeof(prefix));
                r = query(s, &st, "SELECT vps_id FROM vps_address WHERE prefix = ?", "t", prefix);
                if (r < 0)
                        return r;
                r = step(s, st);
                if (r < 0)
                        return r;
                if (r > 0) {
                        if (strcmp(col_text(st, 0), vps->id) == 0)
                                return set_err(s, -EEXIST, "address %s is listed twice for %s",
                                               prefix, vps->id);
                        return set_err(s, -EEXIST, "address %s is already assigned to %s",
                                       prefix, col_text(st, 0));
                }
                r = addr_insert(s, vps->id, &vps->addrs[i], prefix);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int vps_add_tx(struct sql_store *s, const struct pc_vps *vps,
                      const struct pc_actor *who, int64_t now)
{
        _cleanup_json_ json_t *after = NULL;
        char object[128], mac[18];
        int r;

        if (vps->has_mac)
                pc_format_mac(vps->mac, mac, sizeof(mac));
        r = iface_free(s, vps);
        if (r < 0)
                return r;
        r = exec(s,
                 "INSERT INTO vps (id, owner, lang, site, iface, mac, created) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                 "tttttti", vps->id, vps->owner, vps->lang, vps->site->name, vps->iface,
                 vps->has_mac ? mac : NULL, now);
        if (r < 0)
                return r;
        if (db_changes(s->db) == 0)
                return set_err(s, -EEXIST, "vps %s already exists", vps->id);
        r = addrs_insert(s, vps);
        if (r < 0)
                return r;
        r = vps_fetch(s, vps->id, &after);
        if (r < 0)
                return r;
        snprintf(object, sizeof(object), "vps/%s", vps->id);
        return audit(s, now, who, "vps.add", object, vps->id, NULL, after);
}

static int sq_vps_add(struct pc_store *ps, const struct pc_vps *vps, const struct pc_actor *who)
{
        struct sql_store *s = to_sql(ps);
        int r;

        r = check_actor(s, who);
        if (r >= 0)
                r = check_vps(s, vps);
        if (r >= 0)
                r = tx_begin(s);
        if (r < 0)
                return r;
        return tx_end(s, vps_add_tx(s, vps, who, pc_now()));
}

/* Writes <vps>'s interface, MAC and addresses over those of the VPS of
 * that id, and audits the change; *<ret_changed> says whether there was
 * one (the caller rolls back if not). */
static int vps_update_tx(struct sql_store *s, const struct pc_vps *vps, const struct pc_actor *who,
                         int64_t now, bool *ret_changed)
{
        _cleanup_json_ json_t *before = NULL, *after = NULL;
        char object[128], mac[18];
        int r;

        r = vps_fetch(s, vps->id, &before);
        if (r < 0)
                return r;
        r = iface_free(s, vps);
        if (r < 0)
                return r;
        if (vps->has_mac)
                pc_format_mac(vps->mac, mac, sizeof(mac));
        r = exec(s, "UPDATE vps SET iface = ?, mac = ? WHERE id = ?", "ttt", vps->iface, vps->has_mac ? mac : NULL,
                 vps->id);
        if (r >= 0)
                r = exec(s, "DELETE FROM vps_address WHERE vps_id = ?", "t", vps->id);
        if (r >= 0)
                r = addrs_insert(s, vps);
        if (r >= 0)
                r = vps_fetch(s, vps->id, &after);
        if (r < 0)
                return r;
        *ret_changed = !json_equal(before, after);
        if (!*ret_changed)
                return 0;
        snprintf(object, sizeof(object), "vps/%s", vps->id);
        return audit(s, now, who, "vps.update", object, vps->id, before, after);
}

static int sq_vps_update(struct pc_store *ps, const struct pc_vps *vps, const struct pc_actor *who,
                         bool *ret_changed)
{
        struct sql_store *s = to_sql(ps);
        bool changed = false;
        int r;

        r = check_actor(s, who);
        if (r >= 0)
                r = check_vps(s, vps);
        if (r >= 0)
                r = tx_begin(s);
        if (r < 0)
                return r;
        r = vps_update_tx(s, vps, who, pc_now(), &changed);
        /* Nothing to change: rolled back, so that a VM manager's hook
         * telling the same thing at every start leaves no trace. */
        r = tx_end(s, r >= 0 && !changed ? -ECANCELED : r);
        if (r < 0 && r != -ECANCELED)
                return r;
        if (ret_changed != NULL)
                *ret_changed = changed;
        return 0;
}

static int vps_set_state_tx(struct sql_store *s, const char *id, bool running, const struct pc_actor *who,
                            int64_t now, bool *ret_changed)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        _cleanup_json_ json_t *before = NULL, *after = NULL;
        const char *want = running ? "running" : "stopped";
        char object[128];
        int r;

        r = query(s, &st, "SELECT run_state FROM vps WHERE id = ?", "t", id);
        if (r >= 0)
                r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return set_err(s, -ENOENT, "vps %s does not exist", id);
        *ret_changed = strcmp(col_text(st, 0), want) != 0;
        if (!*ret_changed)
                return 0;
        before = json_pack("{s:s}", "run_state", col_text(st, 0));
        after = json_pack("{s:s}", "run_state", want);
        if (before == NULL || after == NULL)
                return set_err(s, -ENOMEM, "vps %s: cannot describe its state in JSON", id);
        r = exec(s, "UPDATE vps SET run_state = ?, run_since = ? WHERE id = ?", "tit", want, now, id);
        if (r < 0)
                return r;
        snprintf(object, sizeof(object), "vps/%s", id);
        return audit(s, now, who, running ? "vps.start" : "vps.stop", object, id, before, after);
}

static int sq_vps_set_state(struct pc_store *ps, const char *id, bool running, const struct pc_actor *who,
                            bool *ret_changed)
{
        struct sql_store *s = to_sql(ps);
        bool changed = false;
        int r;

        r = check_actor(s, who);
        if (r >= 0)
                r = tx_begin(s);
        if (r < 0)
                return r;
        r = tx_end(s, vps_set_state_tx(s, id, running, who, pc_now(), &changed));
        if (r < 0)
                return r;
        if (ret_changed != NULL)
                *ret_changed = changed;
        return 0;
}

static int action_fetch(struct sql_store *s, int64_t id, json_t **ret);

/* *<ret>: the termination of <vps_id> in force as JSON (action_json), or
 * NULL if there is none. */
static int termination_of(struct sql_store *s, const char *vps_id, json_t **ret)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        *ret = NULL;
        r = query(s, &st, "SELECT id FROM action WHERE vps_id = ? AND terminated != 0 AND lifted_at IS NULL", "t",
                  vps_id);
        if (r < 0 || (r = step(s, st)) <= 0)
                return r;
        return action_fetch(s, db_column_int64(st, 0), ret);
}

static int vps_remove_tx(struct sql_store *s, const char *id, const struct pc_actor *who,
                         int64_t now)
{
        _cleanup_json_ json_t *before = NULL, *termination = NULL;
        char object[128];
        int r;

        r = vps_fetch(s, id, &before);
        if (r < 0)
                return r;
        /* Removing it would take its termination (and its history) with
         * it, and a `vps add` would bring it back unterminated. */
        r = termination_of(s, id, &termination);
        if (r < 0)
                return r;
        if (termination != NULL && !who->admin_override)
                return set_err(s, -EPERM,
                               "%s is terminated (suspension #%lld): only an admin removes it "
                               "(--admin-override, audited)",
                               id, (long long)json_integer_value(json_object_get(termination, "id")));
        r = exec(s, "DELETE FROM vps WHERE id = ?", "t", id);
        if (r < 0)
                return r;
        snprintf(object, sizeof(object), "vps/%s", id);
        r = audit(s, now, who, "vps.remove", object, id, before, NULL);
        if (r < 0 || termination == NULL || who->webhook_url == NULL || who->webhook_url[0] == '\0')
                return r;
        /* Billing heard of the termination: its end, with the VPS gone (the
         * owner is not emailed of a removal). */
        if (json_object_set_new(termination, "by", json_string(who->by)) < 0 ||
            json_object_set_new(termination, "reason", who->reason != NULL ? json_string(who->reason) : json_null()) < 0 ||
            json_object_set_new(termination, "removed", json_true()) < 0)
                return set_err(s, -ENOMEM, "%s: cannot describe its termination in JSON", id);
        return webhook_queue(s, now, "vps.unterminated", who->webhook_url, before, termination);
}

static int sq_vps_remove(struct pc_store *ps, const char *id, const struct pc_actor *who)
{
        struct sql_store *s = to_sql(ps);
        int r;

        r = check_actor(s, who);
        if (r >= 0)
                r = tx_begin(s);
        if (r < 0)
                return r;
        return tx_end(s, vps_remove_tx(s, id, who, pc_now()));
}

/* ---- who holds an address, a MAC ------------------------------------ */

/* <p> with every bit from <len> on cleared into <ret>. */
static void prefix_truncate(const struct pc_prefix *p, unsigned len, struct pc_prefix *ret)
{
        *ret = *p;
        ret->len = (uint8_t)len;
        for (unsigned bit = len; bit < sizeof(ret->bytes) * 8; bit++)
                ret->bytes[bit / 8] &= (uint8_t) ~(0x80 >> (bit % 8));
}

/* Copies the holder at the current row of <st> (vps_id, what) to *<ret>. */
static int holder_found(struct db_stmt *st, bool exception, struct pc_addr_holder *ret)
{
        copy_trunc(ret->vps_id, sizeof(ret->vps_id), col_text(st, 0));
        copy_trunc(ret->what, sizeof(ret->what), col_text(st, 1));
        ret->exception = exception;
        return 1;
}

/* A registered address overlapping <p>.  Addresses are aligned prefixes,
 * so one overlaps <p> if it starts inside <p> (one range of the index on
 * (family, net)) or contains <p>: then it is <p> cut to a shorter length,
 * one point of the index per length.  At most 129 lookups, whatever the
 * fleet's size. */
static int registered_holder(struct sql_store *s, const struct pc_prefix *p, const char *except_vps,
                             struct pc_addr_holder *ret)
{
        _cleanup_stmt_ struct db_stmt *in = NULL, *around = NULL;
        int64_t family = p->family == AF_INET ? 4 : 6;
        struct pc_prefix last, cut;
        int r;

        prefix_truncate(p, p->len, &cut);
        last = cut;
        for (unsigned bit = p->len; bit < (p->family == AF_INET ? 32u : 128u); bit++)
                last.bytes[bit / 8] |= (uint8_t)(0x80 >> (bit % 8));
        r = query(s, &in,
                  "SELECT vps_id, prefix FROM vps_address WHERE family = ? AND net >= ? AND net <= ? "
                  "AND vps_id IS NOT ? LIMIT 1",
                  "i??t", family, except_vps);
        if (r < 0)
                return r;
        if ((r = bind_net(s, in, 2, &cut)) < 0 || (r = bind_net(s, in, 3, &last)) < 0 || (r = step(s, in)) != 0)
                return r < 0 ? r : holder_found(in, false, ret);
        r = query(s, &around,
                  "SELECT vps_id, prefix FROM vps_address WHERE family = ? AND net = ? AND len = ? "
                  "AND vps_id IS NOT ? LIMIT 1",
                  "i?it", family, (int64_t)0, except_vps);
        if (r < 0)
                return r;
        for (unsigned len = 0; len < p->len; len++) {
                prefix_truncate(p, len, &cut);
                db_stmt_reset(around);
                r = db_bind_int64(around, 3, len);
                if (r < 0)
                        return db_fail(s, r, "binding a length");
                r = bind_net(s, around, 2, &cut);
                if (r >= 0)
                        r = step(s, around);
                if (r != 0)
                        return r < 0 ? r : holder_found(around, false, ret);
        }
        return 0;
}

/* A source-prefix exception in force at <now> overlapping <p>.  They are
 * few (anti-spoofing exceptions for gateways): the partial index on live
 * exceptions' services gives them without touching the others. */
static int exception_holder(struct sql_store *s, const struct pc_prefix *p, const char *except_vps, int64_t now,
                            bool other_owner, struct pc_addr_holder *ret)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        if (other_owner)
                r = query(s, &st,
                          "SELECT e.vps_id, e.service FROM exception e JOIN vps v ON v.id = e.vps_id "
                          "WHERE e.service >= '" PC_SOURCE_PREFIX "' AND e.service < 'source-prefix;' "
                          "AND e.revoked_at IS NULL AND (e.until IS NULL OR e.until > ?) AND e.vps_id IS NOT ? "
                          "AND v.owner IS NOT (SELECT owner FROM vps WHERE id = ?) ORDER BY e.id",
                          "itt", now, except_vps, except_vps);
        else
                r = query(s, &st,
                          "SELECT vps_id, service FROM exception WHERE service >= '" PC_SOURCE_PREFIX "' "
                          "AND service < 'source-prefix;' AND revoked_at IS NULL AND (until IS NULL OR until > ?) "
                          "AND vps_id IS NOT ? ORDER BY id",
                          "it", now, except_vps);
        if (r < 0)
                return r;
        while ((r = step(s, st)) > 0) {
                struct pc_prefix g;

                if (pc_exception_source_prefix(col_text(st, 1), &g) && pc_prefix_overlaps(p, &g))
                        return holder_found(st, true, ret);
        }
        return r;
}

static int sq_addr_holder(struct pc_store *ps, const struct pc_prefix *p, const char *except_vps, unsigned what,
                          int64_t now, struct pc_addr_holder *ret)
{
        struct sql_store *s = to_sql(ps);
        int r = 0;

        if (p->family != AF_INET && p->family != AF_INET6)
                return set_err(s, -EINVAL, "an address that is neither IPv4 nor IPv6");
        memset(ret, 0, sizeof(*ret));
        if (what & PC_ADDR_REGISTERED)
                r = registered_holder(s, p, except_vps, ret);
        if (r == 0 && (what & PC_ADDR_GRANTED))
                r = exception_holder(s, p, except_vps, now, (what & PC_ADDR_OTHER_OWNER) != 0, ret);
        return r;
}

static int sq_mac_holder(struct pc_store *ps, const uint8_t mac[6], const char *except_vps, char *ret_vps,
                         size_t size)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        char m[18];
        int r;

        pc_format_mac(mac, m, sizeof(m));
        r = query(s, &st, "SELECT id FROM vps WHERE mac = ? AND id IS NOT ? LIMIT 1", "tt", m, except_vps);
        if (r < 0 || (r = step(s, st)) <= 0)
                return r;
        copy_trunc(ret_vps, size, col_text(st, 0));
        return 1;
}

/* ---- exceptions ------------------------------------------------------ */

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

/* Runs <sql> for the row <id> and turns it into JSON with <to_json>, into
 * *<ret>; <what> ("exception", "action") names it in messages. */
static int row_fetch(struct sql_store *s, const char *what, const char *sql, json_t *(*to_json)(struct db_stmt *),
                     int64_t id, json_t **ret)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        json_t *j;
        int r;

        r = query(s, &st, sql, "i", id);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return set_err(s, -ENOENT, "%s #%lld does not exist", what, (long long)id);
        j = to_json(st);
        if (j == NULL)
                return set_err(s, -ENOMEM, "%s #%lld: cannot describe it in JSON", what, (long long)id);
        *ret = j;
        return 0;
}

/* Reads exception <id> as JSON into *<ret>. */
static int exception_fetch(struct sql_store *s, int64_t id, json_t **ret)
{
        return row_fetch(s, "exception", "SELECT " EXCEPTION_COLUMNS " FROM exception WHERE id = ?",
                         exception_json, id, ret);
}

/* Writes the audit row and queues the owner's notification for the new
 * <kind>/<id> (exception, filter, suspension) described by <after>. */
static int record_created(struct sql_store *s, int64_t now, const struct pc_actor *who,
                          const char *vps_id, json_t *vps, const char *kind, int64_t id,
                          json_t *after, const char *audit_action, const char *notification)
{
        char object[48];
        int r;

        snprintf(object, sizeof(object), "%s/%lld", kind, (long long)id);
        r = audit(s, now, who, audit_action, object, vps_id, NULL, after);
        return r < 0 ? r : notify(s, now, notification, vps, after);
}

/* An action's audit record <after>, and its notification: the same with,
 * when it answers incident <incident_id> (0: none), the incident's kind
 * ("incident_kind") and evidence, which the owner's email puts in words. */
static int record_action(struct sql_store *s, int64_t now, const struct pc_actor *who, const char *vps_id,
                         json_t *vps, const char *kind, int64_t id, json_t *after, int64_t incident_id,
                         const char *audit_action, const char *notification)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        _cleanup_json_ json_t *facts = json_copy(after);
        json_t *ev = NULL;
        char object[48];
        int r;

        if (facts == NULL)
                return set_err(s, -ENOMEM, "%s #%lld: cannot describe it in JSON", kind, (long long)id);
        if (incident_id != 0) {
                r = query(s, &st, "SELECT kind, evidence FROM incident WHERE id = ?", "i", incident_id);
                if (r < 0 || (r = step(s, st)) < 0)
                        return r;
                if (r > 0) {
                        if (!db_column_is_null(st, 1))
                                ev = json_loads(col_text(st, 1), 0, NULL);
                        if (json_object_set_new(facts, "incident_kind", json_string(col_text(st, 0))) < 0 ||
                            json_object_set_new(facts, "evidence", json_is_object(ev) ? ev : json_object()) < 0)
                                return set_err(s, -ENOMEM, "%s #%lld: cannot describe it in JSON", kind,
                                               (long long)id);
                        if (!json_is_object(ev))
                                json_decref(ev);
                }
        }
        snprintf(object, sizeof(object), "%s/%lld", kind, (long long)id);
        r = audit(s, now, who, audit_action, object, vps_id, NULL, after);
        return r < 0 ? r : notify(s, now, notification, vps, facts);
}

/* Checks that ticket <ticket_id> (0: none) asks for the grant of
 * <service> to <vps_id> and is still undecided (open or investigating) --
 * an approved ticket was answered by a grant already, a denied, revoked,
 * expired or closed one was refused or is over.  The operations layer
 * judges a ticket before it asks for the grant; this keeps the store's
 * own callers (and a racing writer) from approving one twice. */
static int ticket_grantable(struct sql_store *s, const char *vps_id, const char *service, int64_t ticket_id)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        if (ticket_id == 0)
                return 0;
        r = query(s, &st, "SELECT vps_id, service, state FROM ticket WHERE id = ?", "i", ticket_id);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return set_err(s, -ENOENT, "ticket #%lld does not exist", (long long)ticket_id);
        if (strcmp(col_text(st, 0), vps_id) != 0)
                return set_err(s, -EINVAL, "ticket #%lld is for %s, not %s",
                               (long long)ticket_id, col_text(st, 0), vps_id);
        if (strcmp(col_text(st, 1), service) != 0)
                return set_err(s, -EINVAL, "ticket #%lld asks for %s, not %s", (long long)ticket_id,
                               col_text(st, 1), service);
        if (strcmp(col_text(st, 2), "open") != 0 && strcmp(col_text(st, 2), "investigating") != 0)
                return set_err(s, -EALREADY,
                               "ticket #%lld is %s: only an open or investigating ticket can be "
                               "approved (the customer opens a new one)",
                               (long long)ticket_id, col_text(st, 2));
        return 0;
}

/* Records that ticket <id> is now <state> by <who> (note: its reason),
 * with its history row; <exception_id> (0: unchanged) is the exception an
 * approval made. */
static int ticket_mark(struct sql_store *s, int64_t id, const char *state, int64_t exception_id,
                       const struct pc_actor *who, int64_t now)
{
        int r = exec(s,
                     "UPDATE ticket SET state = ?, updated = ?, updated_by = ?, note = ?, "
                     "exception_id = coalesce(?, exception_id) WHERE id = ?",
                     "tittni", state, now, who->by, who->reason, exception_id, id);

        if (r < 0)
                return r;
        return exec(s, "INSERT INTO ticket_event (ticket_id, at, \"by\", kind, text) VALUES (?, ?, ?, ?, ?)",
                    "iittt", id, now, who->by, state, who->reason);
}

/* Grants <e> to <vps_id>, queuing the owner's <notification>. */
static int exception_grant_tx(struct sql_store *s, const char *vps_id,
                              const struct pc_exception *e, const struct pc_actor *who,
                              int64_t now, const char *notification, int64_t *ret_id)
{
        char ports[PC_PORTS_TEXT_MAX];
        _cleanup_stmt_ struct db_stmt *st = NULL, *cst = NULL;
        _cleanup_json_ json_t *vps = NULL, *after = NULL;
        const char *reason = e->reason[0] != '\0' ? e->reason : who->reason;
        int64_t id;
        int r;

        r = vps_fetch(s, vps_id, &vps);
        if (r < 0)
                return r;
        r = query(s, &st,
                  "SELECT id, until FROM exception "
                  "WHERE vps_id = ? AND service = ? AND revoked_at IS NULL",
                  "tt", vps_id, e->service);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r > 0) {
                int64_t old = db_column_int64(st, 0);

                if (db_column_is_null(st, 1) || db_column_int64(st, 1) > now)
                        return set_err(s, -EEXIST,
                                       "%s already has an exception for service %s "
                                       "(exception #%lld)",
                                       vps_id, e->service, (long long)old);
                /* Over by its end time: close it so that the new one can be
                 * the one in force. */
                r = exec(s,
                         "UPDATE exception SET revoked_at = until, revoked_by = ? WHERE id = ?",
                         "ti", EXPIRED_BY, old);
                if (r < 0)
                        return r;
        }
        r = query(s, &cst,
                  "SELECT count(*) FROM exception WHERE vps_id = ? AND revoked_at IS NULL "
                  "AND (until IS NULL OR until > ?)",
                  "ti", vps_id, now);
        if (r < 0 || (r = step(s, cst)) < 0)
                return r;
        if (db_column_int64(cst, 0) >= PC_VPS_EXCEPTIONS_MAX)
                return set_err(s, -ENOSPC, "%s already has %d exceptions, the limit", vps_id,
                               PC_VPS_EXCEPTIONS_MAX);
        r = ticket_grantable(s, vps_id, e->service, e->ticket_id);
        if (r < 0)
                return r;
        pc_ports_format(e->ports, e->n_ports, ports, sizeof(ports));
        r = exec(s,
                 "INSERT INTO exception (vps_id, service, ticket_id, \"by\", reason, created, "
                 "until, ports) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 "ttnttint", vps_id, e->service, e->ticket_id, who->by, reason, now, e->until,
                 e->n_ports > 0 ? ports : NULL);
        if (r < 0)
                return r;
        id = db_last_insert_id(s->db);
        if (e->ticket_id != 0 && (r = ticket_mark(s, e->ticket_id, "approved", id, who, now)) < 0)
                return r;
        r = exception_fetch(s, id, &after);
        if (r < 0)
                return r;
        r = record_created(s, now, who, vps_id, vps, "exception", id, after, "exception.grant", notification);
        if (r < 0)
                return r;
        if (ret_id != NULL)
                *ret_id = id;
        return 0;
}

static int sq_exception_grant(struct pc_store *ps, const char *vps_id,
                              const struct pc_exception *e, const struct pc_actor *who,
                              int64_t *ret_id)
{
        struct sql_store *s = to_sql(ps);
        int64_t now = pc_now(), id = 0;
        char what[160];
        int r;

        r = check_actor(s, who);
        if (r < 0)
                return r;
        if (strnlen(e->service, sizeof(e->service)) >= sizeof(e->service) ||
            !pc_exception_subject_valid(e->service))
                return set_err(s, -EINVAL, "invalid service name '%.63s'", e->service);
        if (strnlen(e->reason, sizeof(e->reason)) >= sizeof(e->reason))
                return set_err(s, -EINVAL, "the exception's reason is not terminated");
        r = check_text(s, "the exception's reason", e->reason, sizeof(e->reason));
        if (r < 0)
                return r;
        snprintf(what, sizeof(what), "exception for %s on %.63s", e->service, vps_id);
        r = check_until(s, what, e->until, now);
        if (r >= 0)
                r = tx_begin(s);
        if (r < 0)
                return r;
        r = tx_end(s, exception_grant_tx(s, vps_id, e, who, now, "exception.granted", &id));
        if (r < 0)
                return r;
        if (ret_id != NULL)
                *ret_id = id;
        return 0;
}

/* The newest exception for <service> on <vps_id> that ran to its end by
 * <now>: revoked ones ended early and are not "expired"; one closed when
 * a new grant replaced it (revoked_at = until) ran its course. */
static int sq_exception_ended(struct pc_store *ps, const char *vps_id, const char *service, int64_t now,
                              struct pc_exception *ret)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        r = query(s, &st,
                  "SELECT vps_id, id, service, ticket_id, \"by\", reason, created, until, ports FROM exception "
                  "WHERE vps_id = ? AND service = ? AND until IS NOT NULL AND until <= ? "
                  "AND (revoked_at IS NULL OR revoked_at >= until) ORDER BY until DESC, id DESC LIMIT 1",
                  "tti", vps_id, service, now);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return set_err(s, -ENOENT, "%s has no exception for %s that ended", vps_id, service);
        exception_read(st, ret);
        return 0;
}

/* Revokes <vps_id>'s exception for <service>; the approved ticket it
 * answered, if any, becomes revoked unless <from_ticket> (the ticket's
 * own revocation records that itself). */
static int exception_revoke_tx(struct sql_store *s, const char *vps_id, const char *service,
                               const struct pc_actor *who, int64_t now, bool from_ticket)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        _cleanup_json_ json_t *vps = NULL, *before = NULL, *facts = NULL;
        char object[64];
        int64_t id, tid;
        int r;

        r = vps_fetch(s, vps_id, &vps);
        if (r < 0)
                return r;
        r = query(s, &st,
                  "SELECT " EXCEPTION_COLUMNS " FROM exception "
                  "WHERE vps_id = ? AND service = ? AND revoked_at IS NULL "
                  "AND (until IS NULL OR until > ?)",
                  "tti", vps_id, service, now);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return set_err(s, -ENOENT, "%s has no exception for service %s", vps_id, service);
        id = db_column_int64(st, 0);
        tid = db_column_int64(st, 3);
        before = exception_json(st);
        if (before == NULL)
                return set_err(s, -ENOMEM, "exception #%lld: cannot describe it in JSON",
                               (long long)id);
        r = exec(s, "UPDATE exception SET revoked_at = ?, revoked_by = ? WHERE id = ?", "iti",
                 now, who->by, id);
        if (r < 0)
                return r;
        snprintf(object, sizeof(object), "exception/%lld", (long long)id);
        r = audit(s, now, who, "exception.revoke", object, vps_id, before, NULL);
        if (r < 0)
                return r;
        if (!from_ticket && tid != 0) {
                _cleanup_stmt_ struct db_stmt *tst = NULL;

                r = query(s, &tst, "SELECT state FROM ticket WHERE id = ?", "i", tid);
                if (r < 0 || (r = step(s, tst)) < 0)
                        return r;
                if (r > 0 && strcmp(col_text(tst, 0), "approved") == 0 &&
                    (r = ticket_mark(s, tid, "revoked", 0, who, now)) < 0)
                        return r;
        }
        /* The owner is told who revoked it and why, not who granted it. */
        facts = json_deep_copy(before);
        if (facts == NULL || json_object_set_new(facts, "by", json_string(who->by)) < 0 ||
            json_object_set_new(facts, "reason",
                                who->reason != NULL ? json_string(who->reason) : json_null()) < 0)
                return set_err(s, -ENOMEM, "exception #%lld: cannot describe it in JSON",
                               (long long)id);
        return notify(s, now, "exception.revoked", vps, facts);
}

static int sq_exception_revoke(struct pc_store *ps, const char *vps_id, const char *service,
                               const struct pc_actor *who)
{
        struct sql_store *s = to_sql(ps);
        int r;

        r = check_actor(s, who);
        if (r >= 0)
                r = tx_begin(s);
        if (r < 0)
                return r;
        return tx_end(s, exception_revoke_tx(s, vps_id, service, who, pc_now(), false));
}

/* ---- filters and suspensions ----------------------------------------- */

#define ACTION_COLUMNS \
        "id, vps_id, kind, direction, scope, incident_id, \"by\", reason, created, until, terminated"

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
static int action_fetch(struct sql_store *s, int64_t id, json_t **ret)
{
        return row_fetch(s, "action", "SELECT " ACTION_COLUMNS " FROM action WHERE id = ?", action_json, id, ret);
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
                        return set_err(s, -EINVAL, "a service filter needs a valid service");
                snprintf(buf, size, "service:%s", f->service->name);
                return 0;
        case PC_SCOPE_PORTS:
                if ((f->ports.proto != PC_PROTO_TCP && f->ports.proto != PC_PROTO_UDP) ||
                    f->ports.lo > f->ports.hi)
                        return set_err(s, -EINVAL,
                                       "a port filter needs tcp or udp and a range low-high");
                pc_port_range_format(&f->ports, buf, size);
                return 0;
        }
        return set_err(s, -EINVAL, "unknown filter scope %d", (int)f->scope);
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

        r = vps_fetch(s, vps_id, &vps);
        if (r < 0)
                return r;
        r = incident_check(s, vps_id, f->incident_id);
        if (r < 0)
                return r;
        r = query(s, &cst,
                  "SELECT count(*) FROM action WHERE vps_id = ? AND kind = 'filter' "
                  "AND lifted_at IS NULL AND (until IS NULL OR until > ?)",
                  "ti", vps_id, now);
        if (r < 0 || (r = step(s, cst)) < 0)
                return r;
        if (db_column_int64(cst, 0) >= PC_VPS_FILTERS_MAX)
                return set_err(s, -ENOSPC, "%s already has %d filters, the limit", vps_id,
                               PC_VPS_FILTERS_MAX);
        r = exec(s,
                 "INSERT INTO action (vps_id, kind, direction, scope, incident_id, \"by\", "
                 "reason, created, until) VALUES (?, 'filter', ?, ?, ?, ?, ?, ?, ?)",
                 "tttnttin", vps_id, pc_dir_name(f->direction), scope, f->incident_id, who->by,
                 reason, now, f->until);
        if (r < 0)
                return r;
        id = db_last_insert_id(s->db);
        r = action_fetch(s, id, &after);
        if (r < 0)
                return r;
        r = record_action(s, now, who, vps_id, vps, "filter", id, after, f->incident_id, "filter.place",
                          "filter.placed");
        if (r < 0)
                return r;
        *ret_id = id;
        return 0;
}

static int sq_filter_place(struct pc_store *ps, const char *vps_id, const struct pc_filter *f,
                           const struct pc_actor *who, int64_t *ret_id)
{
        struct sql_store *s = to_sql(ps);
        int64_t now = pc_now(), id = 0;
        char scope[PC_NAME_MAX + 16], what[128];
        int r;

        r = check_actor(s, who);
        if (r < 0)
                return r;
        if (f->direction != PC_DIR_EGRESS && f->direction != PC_DIR_INGRESS &&
            f->direction != PC_DIR_BOTH)
                return set_err(s, -EINVAL, "a filter needs a direction: egress, ingress or both");
        r = format_scope(s, f, scope, sizeof(scope));
        if (r < 0)
                return r;
        if (strnlen(f->reason, sizeof(f->reason)) >= sizeof(f->reason))
                return set_err(s, -EINVAL, "the filter's reason is not terminated");
        r = check_text(s, "the filter's reason", f->reason, sizeof(f->reason));
        if (r < 0)
                return r;
        snprintf(what, sizeof(what), "filter on %.63s", vps_id);
        r = check_until(s, what, f->until, now);
        if (r >= 0)
                r = tx_begin(s);
        if (r < 0)
                return r;
        r = tx_end(s, filter_place_tx(s, vps_id, f, scope, who, now, &id));
        if (r < 0)
                return r;
        if (ret_id != NULL)
                *ret_id = id;
        return 0;
}

/* Marks the action at the current row of <st> (ACTION_COLUMNS) lifted,
 * with its audit row and notification. */
static int incident_close_tx(struct sql_store *s, int64_t id, bool lift_actions, const struct pc_actor *who,
                             int64_t now, size_t *ret_lifted);

/* Lifting a filter ends the episode it answered: its incident, if still
 * open, is closed (audited), so that abuse after this is a new incident
 * and the policy answers it again -- as an unsuspension does. */
static int filter_episode_end(struct sql_store *s, int64_t filter_id, const struct pc_actor *who, int64_t now)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        size_t lifted = 0;
        int64_t incident;
        int r = query(s, &st,
                      "SELECT i.id FROM action a JOIN incident i ON i.id = a.incident_id "
                      "WHERE a.id = ? AND i.state = 'open'",
                      "i", filter_id);

        if (r < 0 || (r = step(s, st)) <= 0)
                return r;
        incident = db_column_int64(st, 0);
        return incident_close_tx(s, incident, false, who, now, &lifted);
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
                return set_err(s, -ENOMEM, "%s/%lld: cannot describe it in JSON", object_kind,
                               (long long)id);
        r = exec(s, "UPDATE action SET lifted_at = ?, lifted_by = ? WHERE id = ?", "iti", now,
                 who->by, id);
        if (r < 0)
                return r;
        snprintf(object, sizeof(object), "%s/%lld", object_kind, (long long)id);
        r = audit(s, now, who, action, object, vps_id, before, NULL);
        if (r >= 0 && strcmp(object_kind, "filter") == 0)
                r = filter_episode_end(s, id, who, now);
        if (r < 0)
                return r;
        facts = json_deep_copy(before);
        if (facts == NULL || json_object_set_new(facts, "by", json_string(who->by)) < 0 ||
            json_object_set_new(facts, "reason",
                                who->reason != NULL ? json_string(who->reason) : json_null()) < 0)
                return set_err(s, -ENOMEM, "%s: cannot describe it in JSON", object);
        r = notify(s, now, notification, vps, facts);
        if (r >= 0 && webhook_url != NULL && webhook_url[0] != '\0')
                r = webhook_queue(s, now, notification, webhook_url, vps, facts);
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

        r = vps_fetch(s, vps_id, &vps);
        if (r < 0)
                return r;
        r = query(s, &st,
                  "SELECT " ACTION_COLUMNS " FROM action WHERE id = ? AND vps_id = ? "
                  "AND kind = 'filter' AND lifted_at IS NULL AND (until IS NULL OR until > ?)",
                  "iti", filter_id, vps_id, now);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return set_err(s, -ENOENT, "%s has no filter #%lld in force", vps_id,
                               (long long)filter_id);
        return action_lift(s, st, vps, "filter.lift", "filter", "filter.lifted", NULL, who, now);
}

static int sq_filter_lift(struct pc_store *ps, const char *vps_id, int64_t filter_id,
                          const struct pc_actor *who)
{
        struct sql_store *s = to_sql(ps);
        int r;

        r = check_actor(s, who);
        if (r >= 0)
                r = tx_begin(s);
        if (r < 0)
                return r;
        return tx_end(s, filter_lift_tx(s, vps_id, filter_id, who, pc_now()));
}

/* Prepares into *<ret> the query for <vps_id>'s suspension in force. */
static int suspension_query(struct sql_store *s, const char *vps_id, struct db_stmt **ret)
{
        return query(s, ret,
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

        r = vps_fetch(s, vps_id, &vps);
        if (r < 0)
                return r;
        r = suspension_query(s, vps_id, &st);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r > 0) {
                pc_format_time(db_column_int64(st, 8), since, sizeof(since));
                return set_err(s, -EALREADY, "%s is already suspended (suspension #%lld since %s)",
                               vps_id, (long long)db_column_int64(st, 0), since);
        }
        r = incident_check(s, vps_id, incident_id);
        if (r < 0)
                return r;
        r = exec(s,
                 "INSERT INTO action (vps_id, kind, direction, scope, incident_id, \"by\", "
                 "reason, created) VALUES (?, 'suspension', 'both', 'all', ?, ?, ?, ?)",
                 "tntti", vps_id, incident_id, who->by, who->reason, now);
        if (r < 0)
                return r;
        id = db_last_insert_id(s->db);
        r = action_fetch(s, id, &after);
        if (r < 0)
                return r;
        r = record_action(s, now, who, vps_id, vps, "suspension", id, after, incident_id, "vps.suspend",
                          "vps.suspended");
        if (r < 0)
                return r;
        *ret_id = id;
        return 0;
}

static int sq_suspend(struct pc_store *ps, const char *vps_id, int64_t incident_id,
                      const struct pc_actor *who, int64_t *ret_id)
{
        struct sql_store *s = to_sql(ps);
        int64_t id = 0;
        int r;

        r = check_actor(s, who);
        if (r >= 0)
                r = tx_begin(s);
        if (r < 0)
                return r;
        r = tx_end(s, suspend_tx(s, vps_id, incident_id, who, pc_now(), &id));
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
                return set_err(s, -ENOMEM, "termination: out of memory");
        if (incident_id != 0) {
                r = query(s, &st, "SELECT kind, evidence, first_seen, last_seen, count FROM incident WHERE id = ?",
                          "i", incident_id);
                if (r < 0)
                        return r;
                r = step(s, st);
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
                                return set_err(s, -ENOMEM, "termination: out of memory");
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

        r = vps_fetch(s, vps_id, &vps);
        if (r < 0)
                return r;
        r = incident_check(s, vps_id, incident_id);
        if (r < 0)
                return r;
        r = suspension_query(s, vps_id, &st);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r > 0 && db_column_int64(st, 10) != 0)
                return set_err(s, -EALREADY, "%s is terminated already (suspension #%lld)", vps_id,
                               (long long)db_column_int64(st, 0));
        if (r > 0) {
                /* Suspended already: the suspension becomes the termination. */
                id = db_column_int64(st, 0);
                before = action_json(st);
                if (before == NULL)
                        return set_err(s, -ENOMEM, "suspension/%lld: cannot describe it in JSON", (long long)id);
                r = exec(s, "UPDATE action SET terminated = 1, incident_id = coalesce(?, incident_id), "
                            "reason = ? WHERE id = ?",
                         "nti", incident_id, who->reason, id);
        } else {
                r = exec(s,
                         "INSERT INTO action (vps_id, kind, direction, scope, incident_id, \"by\", "
                         "reason, created, terminated) VALUES (?, 'suspension', 'both', 'all', ?, ?, ?, ?, 1)",
                         "tntti", vps_id, incident_id, who->by, who->reason, now);
                id = db_last_insert_id(s->db);
        }
        if (r < 0)
                return r;
        r = action_fetch(s, id, &after);
        if (r < 0)
                return r;
        snprintf(object, sizeof(object), "suspension/%lld", (long long)id);
        r = audit(s, now, who, "vps.terminate", object, vps_id, before, after);
        if (r >= 0)
                r = termination_facts(s, after, incident_id, why, &facts);
        if (r >= 0)
                r = notify(s, now, "vps.terminated", vps, facts);
        if (r >= 0 && webhook_url != NULL && webhook_url[0] != '\0')
                r = webhook_queue(s, now, "vps.terminated", webhook_url, vps, facts);
        if (r < 0)
                return r;
        *ret_id = id;
        return 0;
}

static int sq_terminate(struct pc_store *ps, const char *vps_id, int64_t incident_id, const char *why,
                        const char *webhook_url, const struct pc_actor *who, int64_t *ret_id)
{
        struct sql_store *s = to_sql(ps);
        int64_t id = 0;
        int r;

        r = check_actor(s, who);
        if (r >= 0)
                r = tx_begin(s);
        if (r < 0)
                return r;
        r = tx_end(s, terminate_tx(s, vps_id, incident_id, why, webhook_url, who, pc_now(), &id));
        if (r < 0)
                return r;
        if (ret_id != NULL)
                *ret_id = id;
        return 0;
}

/* Closes the open incidents of <vps_id>: support has looked at the VPS
 * (it lifted the suspension), so abuse after this is a new episode, and
 * the policy answers it again. */
static int incidents_close(struct sql_store *s, const char *vps_id, const struct pc_actor *who, int64_t now)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r = query(s, &st, "SELECT id FROM incident WHERE vps_id = ? AND state = 'open'", "t", vps_id);

        while (r >= 0 && (r = step(s, st)) > 0) {
                int64_t id = db_column_int64(st, 0);
                char object[48];

                snprintf(object, sizeof(object), "incident/%lld", (long long)id);
                r = exec(s, "UPDATE incident SET state = 'closed' WHERE id = ?", "i", id);
                if (r >= 0) {
                        _cleanup_json_ json_t *after = json_pack("{s:I, s:s}", "id", (json_int_t)id, "state",
                                                                 "closed");

                        r = audit(s, now, who, "incident.close", object, vps_id, NULL, after);
                }
        }
        return r < 0 ? r : 0;
}

/* Refuses, unless <who> is an admin's override, to lift the suspension at
 * the current row of <st> (ACTION_COLUMNS) if it is a termination. */
static int termination_check(struct sql_store *s, struct db_stmt *st, const struct pc_actor *who)
{
        if (db_column_int64(st, 10) == 0 || who->admin_override)
                return 0;
        return set_err(s, -EPERM,
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

        r = vps_fetch(s, vps_id, &vps);
        if (r < 0)
                return r;
        r = suspension_query(s, vps_id, &st);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return set_err(s, -EALREADY, "%s is not suspended", vps_id);
        r = termination_check(s, st, who);
        if (r < 0)
                return r;
        r = suspension_lift(s, st, vps, who, now);
        return r < 0 ? r : incidents_close(s, vps_id, who, now);
}

static int sq_unsuspend(struct pc_store *ps, const char *vps_id, const struct pc_actor *who)
{
        struct sql_store *s = to_sql(ps);
        int r;

        r = check_actor(s, who);
        if (r >= 0)
                r = tx_begin(s);
        if (r < 0)
                return r;
        return tx_end(s, unsuspend_tx(s, vps_id, who, pc_now()));
}

/* ---- incidents ------------------------------------------------------- */

static int incident_note_tx(struct sql_store *s, const char *vps_id, const char *kind,
                            uint64_t count, int64_t at, const char *evidence, int64_t gap,
                            unsigned flags, int64_t *ret_id, bool *ret_opened)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        char object[48];
        int64_t id;
        int r;

        r = query(s, &st,
                  "SELECT id FROM incident WHERE vps_id = ? AND kind = ? AND state = 'open' "
                  "AND last_seen >= ? ORDER BY id DESC LIMIT 1",
                  "tti", vps_id, kind, at - gap);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r > 0) {
                id = db_column_int64(st, 0);
                r = exec(s,
                         "UPDATE incident SET last_seen = max(last_seen, ?), count = count + ?, "
                         "evidence = coalesce(?, evidence) WHERE id = ?",
                         "iiti", at, (int64_t)count, evidence, id);
                if (r < 0)
                        return r;
                *ret_id = id;
                *ret_opened = false;
                return 0;
        }
        r = exec(s,
                 "INSERT INTO incident (vps_id, kind, first_seen, last_seen, count, evidence) "
                 "VALUES (?, ?, ?, ?, ?, ?)",
                 "ttiiit", vps_id, kind, at, at, (int64_t)count, evidence);
        if (r < 0)
                return r;
        id = db_last_insert_id(s->db);
        snprintf(object, sizeof(object), "incident/%lld", (long long)id);
        {
                _cleanup_json_ json_t *after = json_pack("{s:I, s:s, s:s, s:I, s:s?}", "id", (json_int_t)id,
                                                         "vps", vps_id, "kind", kind, "count",
                                                         (json_int_t)count, "evidence", evidence);
                struct pc_actor who = { .by = "portcullisd", .reason = "detected" };

                r = audit(s, at, &who, "incident.open", object, vps_id, NULL, after);
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
                        return set_err(s, -ENOMEM, "incident #%lld: cannot describe it in JSON", (long long)id);
                r = vps_fetch(s, vps_id, &vps);
                if (r >= 0)
                        r = notify(s, at, "incident.opened", vps, facts);
                if (r < 0)
                        return r;
        }
        *ret_id = id;
        *ret_opened = true;
        return 0;
}

static int sq_incident_note(struct pc_store *ps, const char *vps_id, const char *kind, uint64_t count,
                            int64_t at, const char *evidence, int64_t gap, int64_t *ret_id,
                            bool *ret_opened, unsigned flags)
{
        struct sql_store *s = to_sql(ps);
        int64_t id = 0;
        bool opened = false;
        int r = tx_begin(s);

        if (r < 0)
                return r;
        r = tx_end(s, incident_note_tx(s, vps_id, kind, count, at, evidence, gap, flags, &id, &opened));
        if (r < 0)
                return r;
        if (ret_id != NULL)
                *ret_id = id;
        if (ret_opened != NULL)
                *ret_opened = opened;
        return 0;
}

static int sq_incident_times(struct pc_store *ps, const char *vps_id, const char *kind, int64_t since,
                             int64_t before_id, int64_t *ret_times, size_t max, size_t *ret_n)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        size_t n = 0;
        int r;

        if (max > INT64_MAX)
                max = INT64_MAX;
        r = query(s, &st,
                  "SELECT first_seen FROM incident WHERE vps_id = ? AND kind = ? AND first_seen >= ? "
                  "AND (? = 0 OR id < ?) ORDER BY id DESC LIMIT ?",
                  "ttiiii", vps_id, kind, since, before_id, before_id, (int64_t)max);
        if (r < 0)
                return r;
        while (n < max && (r = step(s, st)) > 0)
                ret_times[n++] = db_column_int64(st, 0);
        if (r < 0)
                return r;
        *ret_n = n;
        return 0;
}

/* ---- incidents and actions, for support ------------------------------ */

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

        while ((r = step(s, st)) > 0) {
                incident_read(st, &i);
                r = cb(&i, userdata);
                if (r < 0)
                        return r;
        }
        return r;
}

static int sq_incident_list(struct pc_store *ps, const char *vps_id, const char *kind, bool open_only,
                            pc_incident_cb cb, void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        r = query(s, &st,
                  "SELECT " INCIDENT_COLUMNS " FROM incident WHERE (?1 IS NULL OR vps_id = ?1) "
                  "AND (?2 IS NULL OR kind = ?2) AND (?3 = 0 OR state = 'open') ORDER BY id DESC",
                  "tti", vps_id, kind, (int64_t)open_only);
        if (r < 0)
                return r;
        return incident_each(s, st, cb, userdata);
}

static int sq_incident_get(struct pc_store *ps, int64_t id, pc_incident_cb cb, void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        struct pc_incident i;
        int r;

        r = query(s, &st, "SELECT " INCIDENT_COLUMNS " FROM incident WHERE id = ?", "i", id);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return set_err(s, -ENOENT, "incident #%lld does not exist", (long long)id);
        incident_read(st, &i);
        return cb(&i, userdata);
}

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

static int sq_action_list(struct pc_store *ps, const char *vps_id, int64_t incident_id, bool active_only,
                          int64_t now, pc_store_action_cb cb, void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        struct pc_store_action a;
        int r;

        r = query(s, &st,
                  "SELECT " ACTION_ROW_COLUMNS " FROM action WHERE (?1 IS NULL OR vps_id = ?1) "
                  "AND (?2 = 0 OR incident_id = ?2) AND (?3 = 0 OR (lifted_at IS NULL "
                  "AND (until IS NULL OR until > ?4))) ORDER BY id DESC",
                  "tiii", vps_id, incident_id, (int64_t)active_only, now);
        if (r < 0)
                return r;
        while ((r = step(s, st)) > 0) {
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

        r = query(s, &st, "SELECT " ACTION_ROW_COLUMNS " FROM action WHERE id = ?", "i", id);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r <= 0) {
                db_stmt_release(st);
                return r < 0 ? r : set_err(s, -ENOENT, "action #%lld does not exist", (long long)id);
        }
        *ret = st;
        return 0;
}

static int sq_action_get(struct pc_store *ps, int64_t id, struct pc_store_action *ret)
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
                return set_err(s, -EALREADY, "%s #%lld of %s was lifted already (by %s at %s)", a.kind,
                               (long long)a.id, a.vps_id, a.lifted_by, when);
        }
        if (a.until != 0 && a.until <= now) {
                pc_format_time(a.until, when, sizeof(when));
                return set_err(s, -EALREADY, "%s #%lld of %s ended already (at %s)", a.kind, (long long)a.id,
                               a.vps_id, when);
        }
        return 0;
}

/* Lifts the active action at the current row of <st> (ACTION_COLUMNS
 * first): a filter as filter_lift does, a suspension as unsuspend does. */
static int action_lift_row(struct sql_store *s, struct db_stmt *st, const struct pc_actor *who, int64_t now)
{
        _cleanup_json_ json_t *vps = NULL;
        char vps_id[PC_NAME_MAX];
        int r;

        copy_trunc(vps_id, sizeof(vps_id), col_text(st, 1));
        r = vps_fetch(s, vps_id, &vps);
        if (r < 0)
                return r;
        if (strcmp(col_text(st, 2), "suspension") != 0)
                return action_lift(s, st, vps, "filter.lift", "filter", "filter.lifted", NULL, who, now);
        r = termination_check(s, st, who);
        if (r < 0)
                return r;
        r = suspension_lift(s, st, vps, who, now);
        return r < 0 ? r : incidents_close(s, vps_id, who, now);
}

static int action_lift_tx(struct sql_store *s, int64_t id, const struct pc_actor *who, int64_t now)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r = action_row(s, id, &st);

        if (r >= 0)
                r = action_active(s, st, now);
        return r < 0 ? r : action_lift_row(s, st, who, now);
}

static int sq_action_lift(struct pc_store *ps, int64_t id, const struct pc_actor *who)
{
        struct sql_store *s = to_sql(ps);
        int r;

        r = check_actor(s, who);
        if (r >= 0)
                r = tx_begin(s);
        if (r < 0)
                return r;
        return tx_end(s, action_lift_tx(s, id, who, pc_now()));
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
                return set_err(s, -EINVAL, "action #%lld of %s is a %s: it has no end to change (lift it instead)",
                               (long long)id, a.vps_id, a.kind);
        if (until == 0 && a.until == 0)
                return set_err(s, -EALREADY, "filter #%lld of %s is permanent already", (long long)id, a.vps_id);
        if (until != 0 && a.until == 0)
                return set_err(s, -EINVAL, "filter #%lld of %s is permanent: an end would shorten it",
                               (long long)id, a.vps_id);
        if (until != 0 && until <= a.until) {
                pc_format_time(a.until, when, sizeof(when));
                return set_err(s, -EINVAL, "filter #%lld of %s ends at %s already: the new end must be later",
                               (long long)id, a.vps_id, when);
        }
        before = action_json(st);
        if (before == NULL)
                return set_err(s, -ENOMEM, "filter #%lld: cannot describe it in JSON", (long long)id);
        r = exec(s, "UPDATE action SET until = ? WHERE id = ?", "ni", until, id);
        if (r < 0)
                return r;
        r = action_fetch(s, id, &after);
        if (r < 0)
                return r;
        snprintf(object, sizeof(object), "filter/%lld", (long long)id);
        return audit(s, now, who, until == 0 ? "filter.make-permanent" : "filter.extend", object, a.vps_id,
                     before, after);
}

static int sq_action_set_until(struct pc_store *ps, int64_t id, int64_t until, const struct pc_actor *who)
{
        struct sql_store *s = to_sql(ps);
        int64_t now = pc_now();
        int r;

        r = check_actor(s, who);
        if (r >= 0)
                r = check_until(s, "the filter's new end", until, now);
        if (r >= 0)
                r = tx_begin(s);
        if (r < 0)
                return r;
        return tx_end(s, action_set_until_tx(s, id, until, who, now));
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

static int incident_close_tx(struct sql_store *s, int64_t id, bool lift_actions, const struct pc_actor *who,
                             int64_t now, size_t *ret_lifted)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        _cleanup_json_ json_t *before = NULL, *after = NULL;
        char object[48], vps_id[PC_NAME_MAX];
        size_t lifted = 0;
        int r;

        r = query(s, &st, "SELECT " INCIDENT_COLUMNS " FROM incident WHERE id = ?", "i", id);
        if (r < 0 || (r = step(s, st)) < 0)
                return r;
        if (r == 0)
                return set_err(s, -ENOENT, "incident #%lld does not exist", (long long)id);
        copy_trunc(vps_id, sizeof(vps_id), col_text(st, 1));
        if (strcmp(col_text(st, 7), "open") != 0)
                return set_err(s, -EALREADY, "incident #%lld of %s is closed already", (long long)id, vps_id);
        before = incident_json(st);
        after = json_deep_copy(before);
        if (after == NULL || json_object_set_new(after, "state", json_string("closed")) < 0)
                return set_err(s, -ENOMEM, "incident #%lld: cannot describe it in JSON", (long long)id);
        r = exec(s, "UPDATE incident SET state = 'closed' WHERE id = ?", "i", id);
        if (r < 0)
                return r;
        snprintf(object, sizeof(object), "incident/%lld", (long long)id);
        r = audit(s, now, who, "incident.close", object, vps_id, before, after);
        /* One at a time: lifting a suspension closes other incidents too. */
        while (r >= 0 && lift_actions) {
                _cleanup_stmt_ struct db_stmt *ast = NULL;

                r = query(s, &ast,
                          "SELECT " ACTION_COLUMNS " FROM action WHERE incident_id = ? AND lifted_at IS NULL "
                          "AND (until IS NULL OR until > ?) ORDER BY id LIMIT 1",
                          "ii", id, now);
                if (r < 0 || (r = step(s, ast)) <= 0)
                        break;
                r = action_lift_row(s, ast, who, now);
                lifted++;
        }
        if (r < 0)
                return r;
        if (ret_lifted != NULL)
                *ret_lifted = lifted;
        return 0;
}

static int sq_incident_close(struct pc_store *ps, int64_t id, bool lift_actions, const struct pc_actor *who,
                             size_t *ret_lifted)
{
        struct sql_store *s = to_sql(ps);
        int r;

        r = check_actor(s, who);
        if (r >= 0 && (who->reason == NULL || who->reason[0] == '\0'))
                r = set_err(s, -EINVAL, "closing incident #%lld needs a reason", (long long)id);
        if (r >= 0)
                r = tx_begin(s);
        if (r < 0)
                return r;
        return tx_end(s, incident_close_tx(s, id, lift_actions, who, pc_now(), ret_lifted));
}

/* ---- tickets --------------------------------------------------------- */

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
                return set_err(s, -EINVAL, "ticket #%lld has an unknown state '%s'", (long long)t->id,
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
        int r = query(s, &st, TICKET_SELECT "WHERE t.id = ?2", "ii", now, id);

        if (r < 0 || (r = step(s, st)) < 0)
                return r;
        if (r == 0)
                return set_err(s, -ENOENT, "ticket #%lld does not exist", (long long)id);
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
                return set_err(s, -ENOMEM, "out of memory");
        r = vps_fetch(s, t->vps_id, &vps);
        if (r < 0)
                return r;
        r = exec(s,
                 "INSERT INTO ticket (vps_id, service, ports, duration, state, opened_by, opened, text, evidence) "
                 "VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?)",
                 "tttntitt", t->vps_id, t->service, t->ports[0] != '\0' ? t->ports : NULL, t->duration, who->by,
                 now, t->text, t->evidence[0] != '\0' ? t->evidence : NULL);
        if (r < 0)
                return r;
        id = db_last_insert_id(s->db);
        r = exec(s,
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
                return set_err(s, -ENOMEM, "ticket #%lld: cannot describe it in JSON",
                               (long long)id);
        snprintf(object, sizeof(object), "ticket/%lld", (long long)id);
        r = audit(s, now, who, "ticket.open", object, t->vps_id, NULL, after);
        if (r < 0)
                return r;
        /* The owner hears that the request arrived, whoever opened it. */
        facts = json_deep_copy(after);
        if (facts == NULL || json_object_set_new(facts, "ticket", json_integer(id)) < 0 ||
            json_object_set_new(facts, "by", json_string(who->by)) < 0 ||
            json_object_set_new(facts, "created", json_integer(now)) < 0)
                return set_err(s, -ENOMEM, "ticket #%lld: cannot describe it in JSON", (long long)id);
        r = notify(s, now, "ticket.received", vps, facts);
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
                return set_err(s, -EINVAL, "the ticket's vps id is not terminated");
        if (strnlen(t->service, sizeof(t->service)) >= sizeof(t->service) ||
            !pc_exception_subject_valid(t->service))
                return set_err(s, -EINVAL, "invalid service name '%.63s'", t->service);
        if (strnlen(t->ports, sizeof(t->ports)) >= sizeof(t->ports))
                return set_err(s, -EINVAL, "the ticket's ports are not terminated");
        if (t->ports[0] != '\0') {
                struct pc_port_range p[PC_EXCEPTION_PORTS_MAX];
                char err[128];
                size_t n;

                if (pc_ports_parse(t->ports, p, &n, err, sizeof(err)) < 0)
                        return set_err(s, -EINVAL, "the ticket's ports %s", err);
        }
        if (t->duration < 0)
                return set_err(s, -EINVAL, "the ticket's duration is negative");
        if (strnlen(t->text, sizeof(t->text)) >= sizeof(t->text))
                return set_err(s, -EINVAL, "the ticket's text is not terminated");
        if (strnlen(t->evidence, sizeof(t->evidence)) >= sizeof(t->evidence))
                return set_err(s, -EINVAL, "the ticket's evidence is not terminated");
        r = check_text(s, "the ticket's text", t->text, sizeof(t->text));
        return r < 0 ? r : check_text(s, "the ticket's evidence", t->evidence, sizeof(t->evidence));
}

static int sq_ticket_open(struct pc_store *ps, const struct pc_ticket *t,
                          const struct pc_actor *who, int64_t *ret_id)
{
        struct sql_store *s = to_sql(ps);
        int64_t id = 0;
        int r;

        r = check_actor(s, who);
        if (r >= 0)
                r = ticket_check(s, t);
        if (r >= 0)
                r = tx_begin(s);
        if (r < 0)
                return r;
        r = tx_end(s, ticket_open_tx(s, t, who, pc_now(), &id));
        if (r < 0)
                return r;
        if (ret_id != NULL)
                *ret_id = id;
        return 0;
}

static int sq_ticket_query(struct pc_store *ps, const struct pc_ticket_query *q, int64_t now, pc_ticket_cb cb,
                           void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        _cleanup_free_ struct pc_ticket *t = NULL;
        int64_t lim = q->limit == 0 || q->limit > (size_t)INT64_MAX ? -1 : (int64_t)q->limit;
        const char *state = q->state < 0 ? NULL : pc_ticket_state_name((enum pc_ticket_state)q->state);
        int r;

        if (q->state >= 0 && state == NULL)
                return set_err(s, -EINVAL, "no ticket state %d", q->state);
        if (q->vps_id != NULL) {
                _cleanup_json_ json_t *vps = NULL;

                r = vps_fetch(s, q->vps_id, &vps);
                if (r < 0)
                        return r;
        }
        /* One VPS's tickets through its index; a customer's through the
         * VPSes' owner. */
        r = query(s, &st,
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
                return set_err(s, -ENOMEM, "out of memory");
        while ((r = step(s, st)) > 0) {
                r = ticket_read(s, st, t);
                if (r < 0)
                        break;
                r = cb(t, userdata);
                if (r < 0)
                        break;
        }
        return r < 0 ? r : 0;
}

static int sq_ticket_get(struct pc_store *ps, int64_t id, int64_t now, struct pc_ticket *ret)
{
        return ticket_fetch(to_sql(ps), id, now, ret);
}

static int sq_ticket_events(struct pc_store *ps, int64_t id, pc_ticket_event_cb cb, void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        _cleanup_free_ struct pc_ticket_event *e = malloc(sizeof(*e));
        int r;

        if (e == NULL)
                return set_err(s, -ENOMEM, "out of memory");
        r = query(s, &st, "SELECT at, \"by\", kind, text FROM ticket_event WHERE ticket_id = ? ORDER BY id", "i", id);
        if (r < 0)
                return r;
        while ((r = step(s, st)) > 0) {
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
                return set_err(s, -ENOMEM, "out of memory");
        if (verb == NULL)
                return set_err(s, -EINVAL, "no ticket becomes %s by a transition",
                               pc_ticket_state_name(to) != NULL ? pc_ticket_state_name(to) : "that");
        r = ticket_fetch(s, id, now, t);
        if (r < 0)
                return r;
        if (t->state != from)
                return set_err(s, -EALREADY, "ticket #%lld is %s, no longer %s", (long long)id,
                               pc_ticket_state_name(t->state), pc_ticket_state_name(from));
        before = ticket_json(t);
        r = vps_fetch(s, t->vps_id, &vps);
        if (r < 0)
                return r;
        switch (to) {
        case PC_TICKET_APPROVED: {
                struct pc_exception e = *grant;

                e.ticket_id = id;
                snprintf(e.service, sizeof(e.service), "%s", t->service);
                r = exception_grant_tx(s, t->vps_id, &e, who, now, "ticket.approved", &eid);
                break;
        }
        case PC_TICKET_REVOKED: {
                _cleanup_stmt_ struct db_stmt *st = NULL;

                /* Its exception, if still in force: revoked as `exception
                 * revoke` does (the owner is told). */
                r = query(s, &st,
                          "SELECT id FROM exception WHERE id = ? AND revoked_at IS NULL "
                          "AND (until IS NULL OR until > ?)",
                          "ii", t->exception_id, now);
                if (r < 0 || (r = step(s, st)) < 0)
                        return r;
                if (r > 0 && (r = exception_revoke_tx(s, t->vps_id, t->service, who, now, true)) < 0)
                        return r;
                r = ticket_mark(s, id, "revoked", 0, who, now);
                break;
        }
        case PC_TICKET_DENIED:
                r = ticket_mark(s, id, "denied", 0, who, now);
                facts = json_deep_copy(before);
                if (r >= 0 && (facts == NULL || json_object_set_new(facts, "ticket", json_integer(id)) < 0 ||
                               json_object_set_new(facts, "by", json_string(who->by)) < 0 ||
                               json_object_set_new(facts, "reason", json_string(who->reason != NULL ? who->reason
                                                                                                   : "")) < 0 ||
                               json_object_set_new(facts, "created", json_integer(now)) < 0))
                        r = set_err(s, -ENOMEM, "ticket #%lld: cannot describe it in JSON", (long long)id);
                if (r >= 0)
                        r = notify(s, now, "ticket.denied", vps, facts);
                break;
        default:
                r = ticket_mark(s, id, pc_ticket_state_name(to), 0, who, now);
                break;
        }
        if (r < 0)
                return r;
        r = ticket_fetch(s, id, now, t);
        if (r < 0)
                return r;
        after = ticket_json(t);
        if (before == NULL || after == NULL)
                return set_err(s, -ENOMEM, "ticket #%lld: cannot describe it in JSON", (long long)id);
        snprintf(object, sizeof(object), "ticket/%lld", (long long)id);
        r = audit(s, now, who, verb, object, t->vps_id, before, after);
        if (r < 0)
                return r;
        if (ret_exception_id != NULL)
                *ret_exception_id = eid;
        return 0;
}

static int sq_ticket_transition(struct pc_store *ps, int64_t id, enum pc_ticket_state from,
                                enum pc_ticket_state to, const struct pc_exception *grant,
                                const struct pc_actor *who, int64_t *ret_exception_id)
{
        struct sql_store *s = to_sql(ps);
        int64_t now = pc_now();
        int r;

        r = check_actor(s, who);
        if (r >= 0 && grant != NULL) {
                if (strnlen(grant->reason, sizeof(grant->reason)) >= sizeof(grant->reason))
                        return set_err(s, -EINVAL, "the exception's reason is not terminated");
                r = check_text(s, "the exception's reason", grant->reason, sizeof(grant->reason));
                if (r >= 0)
                        r = check_until(s, "the exception", grant->until, now);
        }
        if (r >= 0)
                r = tx_begin(s);
        if (r < 0)
                return r;
        return tx_end(s, ticket_transition_tx(s, id, from, to, grant, who, now, ret_exception_id));
}

static int ticket_expire_tx(struct sql_store *s, int64_t now, const struct pc_actor *who, size_t *ret_n)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int64_t ids[256];
        size_t n = 0;
        int r;

        r = query(s, &st,
                  "SELECT t.id FROM ticket t JOIN exception e ON e.id = t.exception_id "
                  "WHERE t.state = 'approved' AND e.until IS NOT NULL AND e.until <= ? ORDER BY t.id LIMIT 256",
                  "i", now);
        if (r < 0)
                return r;
        while (n < PC_ARRAY_SIZE(ids) && (r = step(s, st)) > 0)
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

static int sq_ticket_expire_due(struct pc_store *ps, int64_t now, const struct pc_actor *who, size_t *ret_n)
{
        struct sql_store *s = to_sql(ps);
        size_t n = 0;
        int r;

        r = check_actor(s, who);
        if (r >= 0)
                r = tx_begin(s);
        if (r < 0)
                return r;
        r = tx_end(s, ticket_expire_tx(s, now, who, &n));
        if (r >= 0 && ret_n != NULL)
                *ret_n = n;
        return r;
}

/* ---- audit ----------------------------------------------------------- */

#define AUDIT_COLUMNS "id, at, \"by\", action, object, vps_id, reason, \"before\", \"after\""

static int sq_audit_list(struct pc_store *ps, const char *vps_id, size_t limit, pc_audit_cb cb,
                         void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        struct pc_audit_entry *e = NULL;
        /* LIMIT -1: no limit. */
        int64_t lim = limit == 0 || limit > (size_t)INT64_MAX ? -1 : (int64_t)limit;
        int r;

        /* The newest <limit>, then turned oldest first. */
        if (vps_id != NULL)
                r = query(s, &st,
                          "SELECT * FROM (SELECT " AUDIT_COLUMNS " FROM audit WHERE vps_id = ? "
                          "ORDER BY id DESC LIMIT ?) ORDER BY id",
                          "ti", vps_id, lim);
        else
                r = query(s, &st,
                          "SELECT * FROM (SELECT " AUDIT_COLUMNS " FROM audit "
                          "ORDER BY id DESC LIMIT ?) ORDER BY id",
                          "i", lim);
        if (r < 0)
                return r;
        e = malloc(sizeof(*e));
        if (e == NULL)
                return set_err(s, -ENOMEM, "out of memory");
        while ((r = step(s, st)) > 0) {
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

/* ---- the notification outbox ----------------------------------------- */

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
                return set_err(s, -ENOMEM, "notification #%lld: out of memory", (long long)n->id);
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

        r = query(s, &st, "SELECT " NOTIFICATION_COLUMNS " FROM notification WHERE id = ?", "i",
                  id);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r <= 0) {
                db_stmt_release(st);
                return r < 0 ? r : set_err(s, -ENOENT, "notification #%lld does not exist",
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
                r = set_err(s, -EALREADY, "notification #%lld was already sent at %s",
                            (long long)id, when);
        } else
                r = set_err(s, -EALREADY,
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
                return set_err(s, -ENOMEM, "out of memory");
        while ((r = step(s, st)) > 0) {
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

static int sq_notification_due(struct pc_store *ps, int64_t now, size_t limit,
                               pc_notification_cb cb, void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        struct pc_notification *rows = NULL;
        size_t n = 0;
        int r;

        if (limit == 0 || limit > PC_NOTIFICATION_BATCH_MAX)
                return set_err(s, -EINVAL, "ask for 1 to %d due notifications, not %zu",
                               PC_NOTIFICATION_BATCH_MAX, limit);
        r = query(s, &st,
                  "SELECT " NOTIFICATION_COLUMNS " FROM notification "
                  "WHERE state = 'pending' AND next_attempt <= ? ORDER BY id LIMIT ?",
                  "ii", now, (int64_t)limit);
        if (r < 0)
                return r;
        rows = calloc(limit, sizeof(*rows));
        if (rows == NULL)
                return set_err(s, -ENOMEM, "out of memory");
        /* All rows first, the statement closed, then the callbacks: they
         * may write to the store. */
        while (n < limit && (r = step(s, st)) > 0) {
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

static int sq_notification_list(struct pc_store *ps, const char *vps_id, const char *state,
                                size_t limit, pc_notification_cb cb, void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        /* LIMIT -1: no limit. */
        int64_t lim = limit == 0 || limit > (size_t)INT64_MAX ? -1 : (int64_t)limit;
        int r;

        if (state != NULL && strcmp(state, "pending") != 0 && strcmp(state, "sent") != 0 &&
            strcmp(state, "failed") != 0)
                return set_err(s, -EINVAL,
                               "'%.32s' is not a notification state (pending, sent, failed)",
                               state);
        if (vps_id != NULL)
                r = query(s, &st,
                          "SELECT " NOTIFICATION_COLUMNS " FROM notification "
                          "WHERE vps_id = ?1 AND (?2 IS NULL OR state = ?2) "
                          "ORDER BY id DESC LIMIT ?3",
                          "tti", vps_id, state, lim);
        else
                r = query(s, &st,
                          "SELECT " NOTIFICATION_COLUMNS " FROM notification "
                          "WHERE ?1 IS NULL OR state = ?1 ORDER BY id DESC LIMIT ?2",
                          "ti", state, lim);
        if (r < 0)
                return r;
        return notification_each(s, st, cb, userdata);
}

static int sq_notification_get(struct pc_store *ps, int64_t id, struct pc_notification *ret)
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
                return set_err(s, -EINVAL, "a Message-ID has 1 to %d characters",
                               PC_NOTIFICATION_MESSAGE_ID_MAX - 1);
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)mid[i] <= 0x20 || (unsigned char)mid[i] >= 0x7f)
                        return set_err(s, -EINVAL,
                                       "a Message-ID is printable ASCII without spaces; "
                                       "byte %zu is 0x%02x",
                                       i + 1, (unsigned char)mid[i]);
        return 0;
}

static int notification_sending_tx(struct sql_store *s, int64_t id, const char *message_id,
                                   int64_t now, char *ret_message_id)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        char mid[PC_NOTIFICATION_MESSAGE_ID_MAX];
        int r;

        r = notification_pending_row(s, id, &st);
        if (r < 0)
                return r;
        /* The first attempt's Message-ID wins, whatever this one proposes. */
        copy_trunc(mid, sizeof(mid),
                   !db_column_is_null(st, 11) ? col_text(st, 11) : message_id);
        r = exec(s,
                 "UPDATE notification SET attempts = attempts + 1, next_attempt = ?, "
                 "message_id = coalesce(message_id, ?) WHERE id = ?",
                 "iti", now + PC_NOTIFICATION_LEASE, message_id, id);
        if (r == -EEXIST)
                return set_err(s, -EEXIST,
                               "notification #%lld: Message-ID %s is already another "
                               "notification's",
                               (long long)id, message_id);
        if (r < 0)
                return r;
        if (ret_message_id != NULL)
                memcpy(ret_message_id, mid, strlen(mid) + 1);
        return 0;
}

static int sq_notification_sending(struct pc_store *ps, int64_t id, const char *message_id,
                                   int64_t now, char *ret_message_id)
{
        struct sql_store *s = to_sql(ps);
        int r;

        r = check_message_id(s, message_id);
        if (r >= 0)
                r = tx_begin(s);
        if (r < 0)
                return r;
        return tx_end(s, notification_sending_tx(s, id, message_id, now, ret_message_id));
}

static int notification_sent_tx(struct sql_store *s, int64_t id, int64_t now)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        r = notification_pending_row(s, id, &st);
        if (r < 0)
                return r;
        if (db_column_is_null(st, 11))
                return set_err(s, -EINVAL,
                               "notification #%lld: no send attempt was begun "
                               "(notification_sending records its Message-ID first)",
                               (long long)id);
        return exec(s, "UPDATE notification SET state = 'sent', sent_at = ? WHERE id = ?", "ii",
                    now, id);
}

static int sq_notification_sent(struct pc_store *ps, int64_t id, int64_t now)
{
        struct sql_store *s = to_sql(ps);
        int r = tx_begin(s);

        if (r < 0)
                return r;
        return tx_end(s, notification_sent_tx(s, id, now));
}

static int notification_retry_later_tx(struct sql_store *s, int64_t id, const char *error,
                                       int64_t next_attempt)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        r = notification_pending_row(s, id, &st);
        if (r < 0)
                return r;
        return exec(s, "UPDATE notification SET next_attempt = ?, last_error = ? WHERE id = ?",
                    "iti", next_attempt, error, id);
}

static int sq_notification_retry_later(struct pc_store *ps, int64_t id, const char *error,
                                       int64_t next_attempt)
{
        struct sql_store *s = to_sql(ps);
        char clean[PC_NOTIFICATION_ERROR_MAX];
        int r;

        clean_text(clean, sizeof(clean), error);
        r = tx_begin(s);
        if (r < 0)
                return r;
        return tx_end(s, notification_retry_later_tx(s, id, clean, next_attempt));
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
                return set_err(s, -ENOMEM, "notification #%lld: cannot describe it in JSON",
                               (long long)id);
        snprintf(object, sizeof(object), "notification/%lld", (long long)id);
        return audit(s, now, who, action, object, col_text(st, 2), before, after);
}

/* The current row of <st> as notification_json, before it changes. */
static int notification_before(struct sql_store *s, int64_t id, struct db_stmt *st,
                               json_t **ret)
{
        json_t *j = notification_json(st);

        if (j == NULL)
                return set_err(s, -ENOMEM, "notification #%lld: cannot describe it in JSON",
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
        r = exec(s, "UPDATE notification SET state = 'failed', last_error = ? WHERE id = ?", "ti",
                 error, id);
        if (r < 0)
                return r;
        /* The audit log's reason is shorter: cut at a character. */
        clean_text(reason, sizeof(reason), error);
        who.reason = reason;
        return notification_audit(s, now, &who, "notification.fail", id, before);
}

static int sq_notification_failed(struct pc_store *ps, int64_t id, const char *error)
{
        struct sql_store *s = to_sql(ps);
        char clean[PC_NOTIFICATION_ERROR_MAX];
        int r;

        clean_text(clean, sizeof(clean), error);
        r = tx_begin(s);
        if (r < 0)
                return r;
        return tx_end(s, notification_failed_tx(s, id, clean, pc_now()));
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
                return set_err(s, -EINVAL,
                               "notification #%lld was sent at %s (Message-ID %s); it is not "
                               "sent twice",
                               (long long)id, when, col_text(st, 11));
        }
        r = notification_before(s, id, st, &before);
        if (r < 0)
                return r;
        r = exec(s,
                 "UPDATE notification SET state = 'pending', next_attempt = ?, attempts = 0 "
                 "WHERE id = ?",
                 "ii", now, id);
        if (r < 0)
                return r;
        return notification_audit(s, now, who, "notification.retry", id, before);
}

static int sq_notification_retry(struct pc_store *ps, int64_t id, const struct pc_actor *who)
{
        struct sql_store *s = to_sql(ps);
        int r;

        r = check_actor(s, who);
        if (r >= 0)
                r = tx_begin(s);
        if (r < 0)
                return r;
        return tx_end(s, notification_retry_tx(s, id, who, pc_now()));
}

#define EXPIRY_BATCH 100

static int expiry_notices_tx(struct sql_store *s, int64_t now, int64_t within, size_t *ret_count)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        json_t *due[EXPIRY_BATCH];
        size_t n = 0, i;
        int r;

        r = query(s, &st,
                  "SELECT " EXCEPTION_COLUMNS " FROM exception WHERE revoked_at IS NULL "
                  "AND warned_at IS NULL AND until IS NOT NULL AND until > ? AND until <= ? "
                  "ORDER BY until LIMIT ?",
                  "iii", now, now + within, (int64_t)EXPIRY_BATCH);
        if (r < 0)
                return r;
        /* Read them all first: the loop below writes to the same table. */
        while (n < EXPIRY_BATCH && (r = step(s, st)) > 0) {
                due[n] = exception_json(st);
                if (due[n] == NULL) {
                        r = set_err(s, -ENOMEM, "cannot describe an exception in JSON");
                        break;
                }
                n++;
        }
        for (i = 0; r >= 0 && i < n; i++) {
                _cleanup_json_ json_t *vps = NULL;
                const char *vps_id = json_string_value(json_object_get(due[i], "vps"));

                r = vps_fetch(s, vps_id, &vps);
                if (r >= 0)
                        r = notify(s, now, "exception.expiring", vps, due[i]);
                if (r >= 0)
                        r = exec(s, "UPDATE exception SET warned_at = ? WHERE id = ?", "ii", now,
                                 (int64_t)json_integer_value(json_object_get(due[i], "id")));
        }
        for (i = 0; i < n; i++)
                json_decref(due[i]);
        if (r < 0)
                return r;
        *ret_count = n;
        return 0;
}

static int sq_exception_expiry_notices(struct pc_store *ps, int64_t now, int64_t within, size_t *ret_count)
{
        struct sql_store *s = to_sql(ps);
        size_t n = 0;
        int r;

        r = tx_begin(s);
        if (r < 0)
                return r;
        r = tx_end(s, expiry_notices_tx(s, now, within, &n));
        if (r < 0)
                return r;
        *ret_count = n;
        return 0;
}

static int notification_queue_tx(struct sql_store *s, const char *vps_id, const char *kind,
                                  json_t *facts, int64_t now, int64_t *ret_id)
{
        _cleanup_json_ json_t *vps = NULL;
        int r;

        r = vps_fetch(s, vps_id, &vps);
        if (r < 0)
                return r;
        r = notify(s, now, kind, vps, facts);
        if (r < 0)
                return r;
        *ret_id = db_last_insert_id(s->db);
        return 0;
}

static int sq_notification_queue(struct pc_store *ps, const char *vps_id, const char *kind,
                                 const char *facts, int64_t now, int64_t *ret_id)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_json_ json_t *f = NULL;
        json_error_t jerr;
        int64_t id = 0;
        int r;

        if (strnlen(kind, PC_NOTIFICATION_KIND_MAX) >= PC_NOTIFICATION_KIND_MAX ||
            !pc_name_valid(kind))
                return set_err(s, -EINVAL,
                               "invalid notification kind '%.63s': use 1-63 of a-z 0-9 . _ - "
                               "starting with a letter or digit",
                               kind);
        if (facts == NULL)
                f = json_object();
        else if (strnlen(facts, PC_NOTIFICATION_FACTS_MAX + 1) > PC_NOTIFICATION_FACTS_MAX)
                return set_err(s, -EINVAL, "%s for %.63s: the facts are longer than %d bytes",
                               kind, vps_id, PC_NOTIFICATION_FACTS_MAX);
        else {
                f = json_loads(facts, JSON_REJECT_DUPLICATES, &jerr);
                if (f == NULL)
                        return set_err(s, -EINVAL, "%s for %.63s: the facts are not JSON: %s",
                                       kind, vps_id, jerr.text);
                if (!json_is_object(f))
                        return set_err(s, -EINVAL,
                                       "%s for %.63s: the facts are not a JSON object", kind,
                                       vps_id);
        }
        if (f == NULL)
                return set_err(s, -ENOMEM, "out of memory");
        r = tx_begin(s);
        if (r < 0)
                return r;
        r = tx_end(s, notification_queue_tx(s, vps_id, kind, f, now, &id));
        if (r < 0)
                return r;
        if (ret_id != NULL)
                *ret_id = id;
        return 0;
}

/* ---- blocked attempts -------------------------------------------------- */

static int sq_attempt_note(struct pc_store *ps, const struct pc_attempt_count *a)
{
        struct sql_store *s = to_sql(ps);
        const char *proto = a->proto == IPPROTO_TCP ? "tcp" : a->proto == IPPROTO_UDP ? "udp" : NULL;
        const char *dir = a->dir == PC_DIR_EGRESS ? "egress" : a->dir == PC_DIR_INGRESS ? "ingress" : NULL;
        int r;

        if (proto == NULL || dir == NULL)
                return set_err(s, -EINVAL, "blocked attempts of %s: protocol %u or direction %u is not counted",
                               a->vps_id, a->proto, a->dir);
        r = exec(s,
                 "INSERT INTO vps_attempt (vps_id, direction, proto, port, packets, last_seen) "
                 "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (vps_id, proto, port, direction) DO UPDATE "
                 "SET packets = excluded.packets, last_seen = max(last_seen, excluded.last_seen)",
                 "tttiii", a->vps_id, dir, proto, (int64_t)a->port,
                 a->packets > INT64_MAX ? INT64_MAX : (int64_t)a->packets, a->last_seen);
        if (r == -ENOENT)
                return set_err(s, r, "blocked attempts of %s: vps %s does not exist", a->vps_id, a->vps_id);
        return r;
}

static int sq_attempt_list(struct pc_store *ps, const char *vps_id, uint8_t proto, uint16_t lo, uint16_t hi,
                           size_t limit, pc_attempt_count_cb cb, void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
                return 0; /* the kernel counts no other */
        r = query(s, &st,
                  "SELECT vps_id, direction, port, packets, last_seen FROM vps_attempt "
                  "WHERE vps_id = ? AND proto = ? AND port BETWEEN ? AND ? ORDER BY port, direction LIMIT ?",
                  "ttiii", vps_id, proto == IPPROTO_TCP ? "tcp" : "udp", (int64_t)lo, (int64_t)hi,
                  limit == 0 || limit > INT64_MAX ? (int64_t)-1 : (int64_t)limit);
        if (r < 0)
                return r;
        while ((r = step(s, st)) > 0) {
                struct pc_attempt_count a = {
                        .vps_id = col_text(st, 0),
                        .dir = strcmp(col_text(st, 1), "egress") == 0 ? PC_DIR_EGRESS : PC_DIR_INGRESS,
                        .proto = proto,
                        .port = (uint16_t)db_column_int64(st, 2),
                        .packets = (uint64_t)db_column_int64(st, 3),
                        .last_seen = db_column_int64(st, 4),
                };

                r = cb(&a, userdata);
                if (r < 0)
                        return r;
        }
        return r;
}

/* ---- an operation's transaction --------------------------------------- */

static int sq_tx_begin(struct pc_store *ps)
{
        return tx_begin(to_sql(ps));
}

static int sq_tx_end(struct pc_store *ps, int r)
{
        return tx_end(to_sql(ps), r);
}

/* ---- API tokens ----------------------------------------------------- */

#define TOKEN_COLUMNS "id, name, role, customer, created, created_by, expires, revoked, last_used"

static void token_read(struct db_stmt *st, struct pc_api_token *t)
{
        memset(t, 0, sizeof(*t));
        t->id = db_column_int64(st, 0);
        copy_trunc(t->name, sizeof(t->name), col_text(st, 1));
        copy_trunc(t->role, sizeof(t->role), col_text(st, 2));
        copy_trunc(t->customer, sizeof(t->customer), col_text(st, 3));
        t->created = db_column_int64(st, 4);
        copy_trunc(t->created_by, sizeof(t->created_by), col_text(st, 5));
        t->expires = db_column_int64(st, 6);
        t->revoked = db_column_int64(st, 7);
        t->last_used = db_column_int64(st, 8);
}

/* A token as the audit log shows it: everything but its hash. */
static json_t *token_json(const struct pc_api_token *t, int64_t id)
{
        return json_pack("{s:I, s:s, s:s, s:o, s:o}", "id", (json_int_t)id, "name", t->name, "role", t->role,
                         "customer", t->customer[0] != '\0' ? json_string(t->customer) : json_null(), "expires",
                         t->expires != 0 ? json_integer(t->expires) : json_null());
}

static int token_add_tx(struct sql_store *s, const struct pc_api_token *t, const uint8_t *hash, int64_t now,
                        const struct pc_actor *who, int64_t *ret_id)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        _cleanup_json_ json_t *after = NULL;
        char object[48];
        int64_t id;
        int r;

        r = query(s, &st, "SELECT 1 FROM api_token WHERE name = ? AND revoked IS NULL", "t", t->name);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r > 0)
                return set_err(s, -EEXIST, "a token named %s is in force already: revoke it first", t->name);
        db_stmt_release(st);
        st = NULL;
        r = query(s, &st,
                  "INSERT INTO api_token (name, hash, role, customer, created, created_by, expires) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)",
                  "t?ttitn", t->name, t->role, t->customer[0] != '\0' ? t->customer : NULL, now, who->by,
                  t->expires);
        if (r < 0)
                return r;
        if (db_bind_blob(st, 2, hash, PC_TOKEN_HASH_SIZE) < 0)
                return db_fail(s, -EIO, "binding a parameter");
        r = step(s, st);
        if (r < 0)
                return r;
        id = db_last_insert_id(s->db);
        after = token_json(t, id);
        if (after == NULL)
                return set_err(s, -ENOMEM, "out of memory");
        snprintf(object, sizeof(object), "token/%lld", (long long)id);
        r = audit(s, now, who, "token.create", object, NULL, NULL, after);
        if (r < 0)
                return r;
        *ret_id = id;
        return 0;
}

static int sq_token_add(struct pc_store *ps, const struct pc_api_token *t, const uint8_t *hash, int64_t now,
                        const struct pc_actor *who, int64_t *ret_id)
{
        struct sql_store *s = to_sql(ps);
        int64_t id = 0;
        int r;

        r = check_actor(s, who);
        if (r < 0)
                return r;
        r = tx_begin(s);
        if (r < 0)
                return r;
        r = tx_end(s, token_add_tx(s, t, hash, now, who, &id));
        if (r >= 0 && ret_id != NULL)
                *ret_id = id;
        return r;
}

static int sq_token_find(struct pc_store *ps, const uint8_t *hash, struct pc_api_token *ret)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        r = query(s, &st, "SELECT " TOKEN_COLUMNS " FROM api_token WHERE hash = ?", "?");
        if (r < 0)
                return r;
        if (db_bind_blob(st, 1, hash, PC_TOKEN_HASH_SIZE) < 0)
                return db_fail(s, -EIO, "binding a parameter");
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return set_err(s, -ENOENT, "no such token");
        token_read(st, ret);
        return 0;
}

static int sq_token_list(struct pc_store *ps, bool all, pc_api_token_cb cb, void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        struct pc_api_token t;
        int r;

        r = query(s, &st,
                  all ? "SELECT " TOKEN_COLUMNS " FROM api_token ORDER BY name, id"
                      : "SELECT " TOKEN_COLUMNS " FROM api_token WHERE revoked IS NULL ORDER BY name, id",
                  "");
        if (r < 0)
                return r;
        while ((r = step(s, st)) > 0) {
                token_read(st, &t);
                r = cb(&t, userdata);
                if (r < 0)
                        return r;
        }
        return r;
}

static int token_revoke_tx(struct sql_store *s, const char *name, int64_t now, const struct pc_actor *who)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        _cleanup_json_ json_t *before = NULL, *after = NULL;
        struct pc_api_token t;
        char object[48];
        int r;

        r = query(s, &st, "SELECT " TOKEN_COLUMNS " FROM api_token WHERE name = ? AND revoked IS NULL", "t",
                  name);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return set_err(s, -ENOENT, "no token named %s is in force", name);
        token_read(st, &t);
        r = exec(s, "UPDATE api_token SET revoked = ? WHERE id = ?", "ii", now, t.id);
        if (r < 0)
                return r;
        before = token_json(&t, t.id);
        after = json_pack("{s:I}", "revoked", (json_int_t)now);
        if (before == NULL || after == NULL)
                return set_err(s, -ENOMEM, "out of memory");
        snprintf(object, sizeof(object), "token/%lld", (long long)t.id);
        return audit(s, now, who, "token.revoke", object, NULL, before, after);
}

static int sq_token_revoke(struct pc_store *ps, const char *name, int64_t now, const struct pc_actor *who)
{
        struct sql_store *s = to_sql(ps);
        int r;

        r = check_actor(s, who);
        if (r < 0)
                return r;
        r = tx_begin(s);
        if (r < 0)
                return r;
        return tx_end(s, token_revoke_tx(s, name, now, who));
}

static int sq_token_used(struct pc_store *ps, int64_t id, int64_t now)
{
        return exec(to_sql(ps), "UPDATE api_token SET last_used = ? WHERE id = ?", "ii", now, id);
}

static int sq_vps_ids(struct pc_store *ps, const char *owner, const char *after, size_t limit,
                      int (*cb)(const char *id, void *userdata), void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int64_t lim = limit == 0 || limit > (size_t)INT64_MAX ? -1 : (int64_t)limit;
        int r;

        r = query(s, &st,
                  "SELECT id FROM vps WHERE (?1 IS NULL OR owner = ?1) AND id > ?2 ORDER BY id LIMIT ?3", "tti",
                  owner, after != NULL ? after : "", lim);
        if (r < 0)
                return r;
        while ((r = step(s, st)) > 0) {
                r = cb(col_text(st, 0), userdata);
                if (r < 0)
                        return r;
        }
        return r;
}

/* ---- the change feed ------------------------------------------------ */

static int sq_changes(struct pc_store *ps, int64_t after, size_t limit, pc_change_cb cb, void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int64_t lim = limit == 0 || limit > (size_t)INT64_MAX ? -1 : (int64_t)limit;
        struct pc_change c;
        int r;

        r = query(s, &st, "SELECT id, vps_id, action FROM audit WHERE id > ? ORDER BY id LIMIT ?", "ii", after,
                  lim);
        if (r < 0)
                return r;
        while ((r = step(s, st)) > 0) {
                memset(&c, 0, sizeof(c));
                c.id = db_column_int64(st, 0);
                copy_trunc(c.vps_id, sizeof(c.vps_id), col_text(st, 1));
                copy_trunc(c.action, sizeof(c.action), col_text(st, 2));
                r = cb(&c, userdata);
                if (r < 0)
                        return r;
        }
        return r;
}

static int sq_change_last(struct pc_store *ps, int64_t *ret_id)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        r = query(s, &st, "SELECT coalesce(max(id), 0) FROM audit", "");
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        *ret_id = r > 0 ? db_column_int64(st, 0) : 0;
        return 0;
}

const struct pc_store_ops pc_store_sqlite_ops = {
        .scheme = "sqlite",
        .open = sq_open,
        .close = sq_close,
        .errmsg = sq_errmsg,
        .schema_version = sq_schema_version,
        .load = sq_load,
        .vps_add = sq_vps_add,
        .vps_remove = sq_vps_remove,
        .vps_update = sq_vps_update,
        .vps_set_state = sq_vps_set_state,
        .addr_holder = sq_addr_holder,
        .mac_holder = sq_mac_holder,
        .exception_grant = sq_exception_grant,
        .exception_revoke = sq_exception_revoke,
        .filter_place = sq_filter_place,
        .filter_lift = sq_filter_lift,
        .suspend = sq_suspend,
        .unsuspend = sq_unsuspend,
        .terminate = sq_terminate,
        .exception_ended = sq_exception_ended,
        .ticket_open = sq_ticket_open,
        .vps_fetch = sq_vps_fetch,
        .incident_note = sq_incident_note,
        .incident_times = sq_incident_times,
        .incident_list = sq_incident_list,
        .incident_get = sq_incident_get,
        .incident_close = sq_incident_close,
        .action_list = sq_action_list,
        .action_get = sq_action_get,
        .action_lift = sq_action_lift,
        .action_set_until = sq_action_set_until,
        .ticket_query = sq_ticket_query,
        .ticket_get = sq_ticket_get,
        .ticket_events = sq_ticket_events,
        .ticket_transition = sq_ticket_transition,
        .ticket_expire_due = sq_ticket_expire_due,
        .audit_list = sq_audit_list,
        .notification_due = sq_notification_due,
        .notification_list = sq_notification_list,
        .notification_get = sq_notification_get,
        .notification_sending = sq_notification_sending,
        .notification_sent = sq_notification_sent,
        .notification_retry_later = sq_notification_retry_later,
        .notification_failed = sq_notification_failed,
        .notification_retry = sq_notification_retry,
        .notification_queue = sq_notification_queue,
        .exception_expiry_notices = sq_exception_expiry_notices,
        .token_add = sq_token_add,
        .token_find = sq_token_find,
        .token_list = sq_token_list,
        .token_revoke = sq_token_revoke,
        .token_used = sq_token_used,
        .changes = sq_changes,
        .change_last = sq_change_last,
        .vps_ids = sq_vps_ids,
        .attempt_note = sq_attempt_note,
        .attempt_list = sq_attempt_list,
        .tx_begin = sq_tx_begin,
        .tx_end = sq_tx_end,
};
