/* The PostgreSQL driver of the store (db.h), over libpq: prepared
 * statements, parameters as text (a blob as binary), results as text.
 *
 * - SQL: the store's `?` and `?N` become `$N` once, when a text is first
 *   prepared on a connection (outside quotes and identifiers); the named
 *   server-side statement is kept for the next call with the same text,
 *   found by the text's address as the SQLite driver does.
 * - Writers: SQLite's BEGIN IMMEDIATE gives the store one writer at a
 *   time, which its read-check-write rules rely on ("at most N exceptions",
 *   "one pending ticket per service").  Here a write transaction takes a
 *   transaction-scoped advisory lock first: the same guarantee across every
 *   host of the fleet, without a rule to forget.  Reads never wait for it.
 * - Errors: SQLSTATE 23505 -> -EEXIST, 23503 -> -ENOENT, 23000 (the
 *   schema's triggers) and other constraint failures -> -EIO as SQLite's
 *   RAISE(ABORT) is; the server's message in db_errmsg().
 *
 * Calls wait for the server's answer.  In the background (the agent's
 * loop: db_pg_background_reconnect) a server silent for ANSWER_TIMEOUT_MS
 * is given up, whether it is hung, partitioned away or crashed without a
 * word: the connection is made again in steps, and the database counts
 * as away meanwhile. */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "store/db.h"
#include "store/pq_lazy.h"

#define STMT_CACHE 128     /* prepared statements kept per connection */
#define PARAMS_MAX 16      /* the store's statements have fewer */
#define PG_SCHEMA_VERSION 16 /* schema_pg.sql's */

#define VARIANTS 6 /* server statements of one text, by its parameters' types */

/* A server-side statement of a text for one signature of parameter types
 * ('i' int8, 't' text, 'b' bytea, 'n' a NULL: the server infers it). */
struct pg_variant {
        char sig[PARAMS_MAX + 1];
        char name[16];
};

struct pg_stmt {
        struct db_stmt head; /* first: db.h's */
        const char *sql;     /* the store's text: the cache's key */
        char *text;          /* with $N parameters */
        struct pg_variant variants[VARIANTS];
        size_t n_variants;
        unsigned conn_gen;   /* the connection its variants were prepared on */
        char kinds[PARAMS_MAX]; /* of the bound values, as a signature */
        int n_params;
        bool is_null_test[PARAMS_MAX]; /* rewrite_params */
        bool busy;           /* handed out */
        char *values[PARAMS_MAX];
        int lengths[PARAMS_MAX];
        int formats[PARAMS_MAX];
        PGresult *res;
        int row;             /* the current row; -1 before the first */
        unsigned char *blob; /* the last column_blob's bytes */
};

struct pg_db {
        struct db head; /* first: db.h's */
        PGconn *conn;
        char *url;       /* as given, for a listener's connection */
        char name[256];  /* the URL without a password */
        char errmsg[1024];
        int64_t changes;
        struct pg_stmt *cache[STMT_CACHE];
        size_t n_cache;
        unsigned prepared; /* statements named so far */
        unsigned conn_gen; /* reconnections so far: a new session knows no statement */
        /* Reconnecting without blocking (db_pg_background_reconnect): */
        bool background;   /* a lost connection is made again in steps */
        bool stalled;      /* a writer waited past lock_timeout: writes wait for */
        int64_t stall_retry_at; /* ... this (CLOCK_MONOTONIC ms) before trying again */
        bool resetting;    /* PQresetStart begun, PQresetPoll goes on */
        bool hung;         /* the server did not answer: the session is given up */
        bool tx_open;      /* BEGIN done, COMMIT or ROLLBACK not yet */
        int64_t reset_began, retry_at; /* CLOCK_MONOTONIC ms */
        char lost[256];    /* why the last attempt failed */
};

static const struct db_driver pg_driver;

static struct pg_db *pg_of(struct db *db)
{
        return (struct pg_db *)db;
}

static struct pg_stmt *stmt_of(struct db_stmt *st)
{
        return (struct pg_stmt *)st;
}

#define RECONNECT_TIMEOUT_MS 5000 /* connect_timeout's, for the steps */
#define RECONNECT_PAUSE_MS 1000   /* between failed attempts, in the background */
#define RECONNECT_STEP_MS 20      /* the longest a step waits for the server */
/* In the background (the agent): a writer that holds the writers' lock
 * (a stuck session, a hostile one) makes the database count as away
 * after this, not stop the loop. */
#define LOCK_TIMEOUT "SET lock_timeout = '1s'"
/* In the background: the longest the server may stay silent on a
 * statement (not a whole answer: bytes arriving restart it).  Above
 * lock_timeout, so that a lock waited for is reported as such; far above
 * any statement of the agent's (its load of 10,000 VPSes: under 0.2 s). */
#define ANSWER_TIMEOUT_MS 3000

static int set_err(struct pg_db *d, int r, const char *msg)
{
        size_t n;

        snprintf(d->errmsg, sizeof(d->errmsg), "%s", msg != NULL && msg[0] != '\0' ? msg : "unknown error");
        n = strlen(d->errmsg);
        while (n > 0 && (d->errmsg[n - 1] == '\n' || d->errmsg[n - 1] == ' '))
                d->errmsg[--n] = '\0';
        return r;
}

/* Maps a failed result's SQLSTATE (see the head comment). */
static int result_err(struct pg_db *d, const PGresult *res)
{
        const char *state = res != NULL ? pq.PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        int r = -EIO;

        /* lock_not_available: another session holds the writers' lock
         * (db_pg_background_reconnect); the database counts as away. */
        if (state != NULL && strcmp(state, "55P03") == 0) {
                d->stalled = true;
                d->stall_retry_at = pc_mono_ms() + RECONNECT_PAUSE_MS;
        }

        if (state != NULL && strcmp(state, "23505") == 0)
                r = -EEXIST;
        else if (state != NULL && strcmp(state, "23503") == 0)
                r = -ENOENT;
        else if (res == NULL || pq.PQresultStatus(res) == PGRES_FATAL_ERROR)
                r = pq.PQstatus(d->conn) == CONNECTION_BAD ? -EIO : r;
        if (res == NULL && d->hung)
                return set_err(d, -EIO, d->lost);
        return set_err(d, r, res != NULL ? pq.PQresultErrorMessage(res) : pq.PQerrorMessage(d->conn));
}

/* The session answers statements: not lost, not being made again, not
 * given up. */
static bool usable(struct pg_db *d)
{
        return pq.PQstatus(d->conn) == CONNECTION_OK && !d->resetting && !d->hung;
}

/* After a PQsend* that returned <sent>: the statement's result, as
 * PQexec would give it (the last one), or NULL.  By default waiting as
 * long as it takes; in the background at most ANSWER_TIMEOUT_MS of
 * silence, after which the session is given up (d->hung, d->lost). */
static PGresult *answer(struct pg_db *d, int sent)
{
        PGresult *last = NULL, *res;
        int64_t heard = pc_mono_ms();

        if (!sent)
                return NULL;
        for (;;) {
                int flushed = pq.PQflush(d->conn); /* 0: all sent, 1: more to send */
                struct pollfd p = { .fd = pq.PQsocket(d->conn), .events = POLLIN };
                int64_t left;
                int n;

                if (flushed < 0)
                        break;
                if (flushed == 0 && !pq.PQisBusy(d->conn)) {
                        res = pq.PQgetResult(d->conn);
                        if (res == NULL)
                                return last;
                        pq.PQclear(last);
                        last = res;
                        continue;
                }
                if (flushed == 1)
                        p.events |= POLLOUT;
                left = d->background ? ANSWER_TIMEOUT_MS - (pc_mono_ms() - heard) : -1;
                if (d->background && left <= 0) {
                        snprintf(d->lost, sizeof(d->lost), "the database did not answer within %d s",
                                 ANSWER_TIMEOUT_MS / 1000);
                        d->hung = true; /* the next statement makes the session again */
                        d->retry_at = 0;
                        break;
                }
                n = poll(&p, 1, (int)left);
                if (n < 0 && errno != EINTR)
                        break;
                if (n > 0 && (p.revents & (POLLIN | POLLERR | POLLHUP))) {
                        if (!pq.PQconsumeInput(d->conn))
                                break;
                        heard = pc_mono_ms();
                }
        }
        pq.PQclear(last);
        return NULL;
}

/* PQexec, bounded as answer() says. */
static PGresult *run(struct pg_db *d, const char *sql)
{
        if (!d->background)
                return pq.PQexec(d->conn, sql);
        return d->hung ? NULL : answer(d, pq.PQsendQuery(d->conn, sql));
}

/* Runs <sql> (no parameters, no rows wanted). */
static int exec_simple(struct pg_db *d, const char *sql)
{
        PGresult *res = run(d, sql);
        int r = 0;

        if (pq.PQresultStatus(res) != PGRES_COMMAND_OK && pq.PQresultStatus(res) != PGRES_TUPLES_OK)
                r = result_err(d, res);
        pq.PQclear(res);
        return r;
}

/* <sql> with `?` and `?N` as `$N` into a new string; the number of
 * parameters into *<ret_n>, and in <is_null_test> those that the text
 * tests with IS NULL somewhere (a NULL bound to one is then text: the
 * store's are all texts, "(?1 IS NULL OR vps_id = ?1)").  Quotes ('...',
 * "...") are copied as they are. */
static char *rewrite_params(const char *sql, int *ret_n, bool is_null_test[PARAMS_MAX])
{
        size_t len = strlen(sql);
        char *out = malloc(len * 3 + 1), *o = out, quote = 0;
        int next = 0, max = 0;

        if (out == NULL)
                return NULL;
        for (const char *p = sql; *p != '\0'; p++) {
                if (quote != 0) {
                        if (*p == quote)
                                quote = 0;
                        *o++ = *p;
                } else if (*p == '\'' || *p == '"') {
                        quote = *p;
                        *o++ = *p;
                } else if (*p == '?') {
                        int n;

                        if (p[1] >= '1' && p[1] <= '9') {
                                n = 0;
                                while (p[1] >= '0' && p[1] <= '9')
                                        n = n * 10 + (*++p - '0');
                        } else
                                n = ++next;
                        if (n > max)
                                max = n;
                        if (n <= PARAMS_MAX && strncmp(p + 1, " IS NULL", 8) == 0)
                                is_null_test[n - 1] = true;
                        o += sprintf(o, "$%d", n);
                } else
                        *o++ = *p;
        }
        *o = '\0';
        *ret_n = max;
        return out;
}

static void stmt_clear_result(struct pg_stmt *s)
{
        pq.PQclear(s->res);
        s->res = NULL;
        s->row = -1;
        free(s->blob);
        s->blob = NULL;
}

static void stmt_clear_params(struct pg_stmt *s)
{
        for (int i = 0; i < PARAMS_MAX; i++) {
                free(s->values[i]);
                s->values[i] = NULL;
                s->lengths[i] = 0;
                s->formats[i] = 0;
                s->kinds[i] = 'n';
        }
}

static void stmt_free(struct pg_stmt *s)
{
        if (s == NULL)
                return;
        stmt_clear_result(s);
        stmt_clear_params(s);
        free(s->text);
        free(s);
}

/* A new statement of <sql>: prepared on the server at its first run,
 * when the types of its parameters are known (variant_of). */
static int stmt_new(struct pg_db *d, const char *sql, struct pg_stmt **ret)
{
        struct pg_stmt *s = calloc(1, sizeof(*s));

        if (s == NULL)
                return set_err(d, -ENOMEM, "out of memory");
        s->text = rewrite_params(sql, &s->n_params, s->is_null_test);
        if (s->text == NULL || s->n_params > PARAMS_MAX) {
                int r = set_err(d, s->text == NULL ? -ENOMEM : -EINVAL, "a statement with too many parameters");

                free(s->text);
                free(s);
                return r;
        }
        s->head.db = &d->head;
        s->sql = sql;
        s->row = -1;
        memset(s->kinds, 'n', sizeof(s->kinds));
        *ret = s;
        return 0;
}

/* Prepares <s>'s text on the server for the types of <sig>: a NULL is
 * the server's to infer from where it goes ("VALUES (?)"), but text where
 * the text tests the parameter with IS NULL (nothing else to infer from). */
static int prepare_variant(struct pg_db *d, struct pg_stmt *s, const char *sig, struct pg_variant *v)
{
        Oid types[PARAMS_MAX];
        PGresult *res;
        int r = 0;

        snprintf(v->name, sizeof(v->name), "s%u", d->prepared++);
        snprintf(v->sig, sizeof(v->sig), "%s", sig);
        for (int i = 0; i < s->n_params; i++)
                types[i] = sig[i] == 'i' ? 20 : sig[i] == 't' ? 25 : sig[i] == 'b' ? 17 : s->is_null_test[i] ? 25 : 0;
        if (!d->background)
                res = pq.PQprepare(d->conn, v->name, s->text, s->n_params, types);
        else
                res = answer(d, pq.PQsendPrepare(d->conn, v->name, s->text, s->n_params, types));
        if (pq.PQresultStatus(res) != PGRES_COMMAND_OK)
                r = result_err(d, res);
        pq.PQclear(res);
        return r;
}

/* The server statement of <s> for the types now bound. */
static int variant_of(struct pg_db *d, struct pg_stmt *s, const char **ret_name)
{
        char sig[PARAMS_MAX + 1];
        struct pg_variant *v;
        int r;

        if (s->conn_gen != d->conn_gen) { /* prepared on a session that is gone */
                s->n_variants = 0;
                s->conn_gen = d->conn_gen;
        }
        memcpy(sig, s->kinds, (size_t)s->n_params);
        sig[s->n_params] = '\0';
        for (size_t i = 0; i < s->n_variants; i++)
                if (strcmp(s->variants[i].sig, sig) == 0) {
                        *ret_name = s->variants[i].name;
                        return 0;
                }
        if (s->n_variants == VARIANTS) { /* the oldest goes */
                char sql[40];

                snprintf(sql, sizeof(sql), "DEALLOCATE %s", s->variants[0].name);
                pq.PQclear(run(d, sql));
                memmove(&s->variants[0], &s->variants[1], (VARIANTS - 1) * sizeof(s->variants[0]));
                s->n_variants--;
        }
        v = &s->variants[s->n_variants];
        r = prepare_variant(d, s, sig, v);
        if (r < 0)
                return r;
        s->n_variants++;
        *ret_name = v->name;
        return 0;
}

static int pg_prepare(struct db *db, const char *sql, struct db_stmt **ret)
{
        struct pg_db *d = pg_of(db);
        struct pg_stmt *s = NULL;
        int r;

        for (size_t i = 0; i < d->n_cache; i++)
                if (d->cache[i]->sql == sql && !d->cache[i]->busy) {
                        s = d->cache[i];
                        break;
                }
        if (s == NULL) {
                r = stmt_new(d, sql, &s);
                if (r < 0)
                        return r;
                if (d->n_cache < STMT_CACHE)
                        d->cache[d->n_cache++] = s;
        }
        s->busy = true;
        *ret = &s->head;
        return 0;
}

static int bind_value(struct db_stmt *st, int i, char *value, int length, int format, char kind)
{
        struct pg_stmt *s = stmt_of(st);

        if (i < 1 || i > s->n_params) {
                free(value);
                return set_err(pg_of(st->db), -EINVAL, "binding a parameter the statement does not have");
        }
        free(s->values[i - 1]);
        s->values[i - 1] = value;
        s->lengths[i - 1] = length;
        s->formats[i - 1] = format;
        s->kinds[i - 1] = kind;
        return 0;
}

static int pg_bind_null(struct db_stmt *st, int i)
{
        return bind_value(st, i, NULL, 0, 0, 'n');
}

static int pg_bind_int64(struct db_stmt *st, int i, int64_t v)
{
        char *t = malloc(24);

        if (t == NULL)
                return set_err(pg_of(st->db), -ENOMEM, "out of memory");
        snprintf(t, 24, "%" PRId64, v);
        return bind_value(st, i, t, 0, 0, 'i');
}

static int pg_bind_text(struct db_stmt *st, int i, const char *text)
{
        char *t;

        if (text == NULL)
                return pg_bind_null(st, i);
        t = strdup(text);
        if (t == NULL)
                return set_err(pg_of(st->db), -ENOMEM, "out of memory");
        return bind_value(st, i, t, 0, 0, 't');
}

static int pg_bind_blob(struct db_stmt *st, int i, const void *p, size_t n)
{
        char *b = malloc(n > 0 ? n : 1);

        if (b == NULL)
                return set_err(pg_of(st->db), -ENOMEM, "out of memory");
        if (n > 0)
                memcpy(b, p, n);
        return bind_value(st, i, b, (int)n, 1, 'b'); /* binary: bytea as it is */
}

/* A statement within a transaction runs on the session that began it or
 * fails: made again, a session would run it outside the transaction (and
 * COMMIT would then succeed with what was before it lost). */
static int tx_session(struct pg_db *d)
{
        if (usable(d))
                return 0;
        return set_err(d, -EIO, d->hung ? d->lost : "the connection to the database was lost in a transaction");
}



/* The session is new: what was prepared on the old one is prepared again
 * on first use. */
static int session_new(struct pg_db *d)
{
        int r;

        d->conn_gen++;
        d->resetting = false;
        d->hung = false;
        r = exec_simple(d, "SET client_min_messages = warning");
        if (r == 0 && d->background && pq.PQsetnonblocking(d->conn, 1) < 0)
                r = set_err(d, -EIO, pq.PQerrorMessage(d->conn));
        if (r == 0 && d->background)
                r = exec_simple(d, LOCK_TIMEOUT);
        return r;
}

/* One step of a reconnection in the background: -EIO until it is made,
 * never waiting (a caller's loop goes on; the next call takes the next
 * step).  A failed attempt is tried again after RECONNECT_PAUSE_MS. */
static int reconnect_step(struct pg_db *d)
{
        int64_t now = pc_mono_ms();

        if (!d->resetting) {
                if (now < d->retry_at)
                        return set_err(d, -EIO, d->lost);
                d->hung = false; /* PQresetStart closes that session */
                if (!pq.PQresetStart(d->conn))
                        goto failed;
                d->resetting = true;
                d->reset_began = now;
        }
        /* Each step that the server answers at once (a local one, most
         * of the time: the whole reconnection in one call), then no more. */
        for (;;) {
                PostgresPollingStatusType st = pq.PQresetPoll(d->conn);
                struct pollfd p = { .fd = pq.PQsocket(d->conn) };

                if (st == PGRES_POLLING_OK)
                        return session_new(d);
                if (st == PGRES_POLLING_FAILED)
                        goto failed;
                p.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
                if (p.fd < 0 || poll(&p, 1, RECONNECT_STEP_MS) != 1)
                        break;
        }
        if (now - d->reset_began <= RECONNECT_TIMEOUT_MS)
                return set_err(d, -EIO, "reconnecting to the database");
        snprintf(d->lost, sizeof(d->lost), "the database is unreachable: no answer within %d s",
                 RECONNECT_TIMEOUT_MS / 1000);
        d->resetting = false;
        d->retry_at = now + RECONNECT_PAUSE_MS;
        return set_err(d, -EIO, d->lost);
failed:
        snprintf(d->lost, sizeof(d->lost), "the database is unreachable: %s", pq.PQerrorMessage(d->conn));
        d->lost[strcspn(d->lost, "\n")] = '\0';
        d->resetting = false;
        d->retry_at = now + RECONNECT_PAUSE_MS;
        return set_err(d, -EIO, d->lost);
}

/* Before a transaction or a statement outside one: a connection the
 * server or the network ended is made again (with a multi-host URL and
 * target_session_attrs=read-write, to whichever server is the primary
 * now: a failover needs no configuration change).  In the background
 * (the agent's loop) or, by default, waiting for it. */
static int ensure_conn(struct pg_db *d)
{
        if (usable(d))
                return 0;
        if (d->background)
                return reconnect_step(d);
        pq.PQreset(d->conn);
        if (pq.PQstatus(d->conn) != CONNECTION_OK)
                return set_err(d, -EIO, pq.PQerrorMessage(d->conn));
        return session_new(d);
}

void db_pg_background_reconnect(struct db *db)
{
        if (db->driver != &pg_driver)
                return;
        pg_of(db)->background = true;
        pq.PQsetnonblocking(pg_of(db)->conn, 1); /* answer() flushes; kept across resets */
        exec_simple(pg_of(db), LOCK_TIMEOUT); /* a failure: the next session sets it */
}

static int pg_step(struct db_stmt *st)
{
        struct pg_stmt *s = stmt_of(st);
        struct pg_db *d = pg_of(st->db);

        if (s->res == NULL) {
                ExecStatusType status;
                const char *name = NULL;
                int r = d->tx_open ? tx_session(d) : ensure_conn(d);

                if (r == 0)
                        r = variant_of(d, s, &name);
                if (r < 0)
                        return r;
                /* PQexecPrepared waits for ever, nonblocking or not: in
                 * the background the answer is bounded as every other. */
                if (!d->background)
                        s->res = pq.PQexecPrepared(d->conn, name, s->n_params, (const char *const *)s->values,
                                                s->lengths, s->formats, 0);
                else
                        s->res = answer(d, pq.PQsendQueryPrepared(d->conn, name, s->n_params,
                                                               (const char *const *)s->values, s->lengths,
                                                               s->formats, 0));
                status = pq.PQresultStatus(s->res);
                if (status == PGRES_COMMAND_OK) {
                        const char *n = pq.PQcmdTuples(s->res);

                        d->changes = n[0] != '\0' ? strtoll(n, NULL, 10) : 0;
                        return 0;
                }
                if (status != PGRES_TUPLES_OK) {
                        r = result_err(d, s->res);
                        stmt_clear_result(s);
                        return r;
                }
                /* INSERT ... RETURNING and UPDATE ... RETURNING count too */
                if (pq.PQcmdTuples(s->res)[0] != '\0')
                        d->changes = strtoll(pq.PQcmdTuples(s->res), NULL, 10);
        }
        free(s->blob);
        s->blob = NULL;
        if (s->row + 1 >= pq.PQntuples(s->res))
                return 0;
        s->row++;
        return 1;
}

static void pg_reset(struct db_stmt *st)
{
        stmt_clear_result(stmt_of(st));
}

static void pg_release(struct db_stmt *st)
{
        struct pg_stmt *s = stmt_of(st);
        struct pg_db *d = pg_of(st->db);

        stmt_clear_result(s);
        stmt_clear_params(s);
        for (size_t i = 0; i < d->n_cache; i++)
                if (d->cache[i] == s) {
                        s->busy = false;
                        return;
                }
        /* Not kept: the server forgets its statements. */
        for (size_t k = 0; k < s->n_variants; k++) {
                char sql[40];

                snprintf(sql, sizeof(sql), "DEALLOCATE %s", s->variants[k].name);
                if (usable(d))
                        pq.PQclear(run(d, sql));
        }
        stmt_free(s);
}

static bool pg_column_is_null(struct db_stmt *st, int i)
{
        struct pg_stmt *s = stmt_of(st);

        return s->res == NULL || s->row < 0 || pq.PQgetisnull(s->res, s->row, i);
}

static int64_t pg_column_int64(struct db_stmt *st, int i)
{
        struct pg_stmt *s = stmt_of(st);

        if (pg_column_is_null(st, i))
                return 0;
        return strtoll(pq.PQgetvalue(s->res, s->row, i), NULL, 10);
}

static const char *pg_column_text(struct db_stmt *st, int i)
{
        struct pg_stmt *s = stmt_of(st);

        return pg_column_is_null(st, i) ? "" : pq.PQgetvalue(s->res, s->row, i);
}

static const void *pg_column_blob(struct db_stmt *st, int i, size_t *ret_n)
{
        struct pg_stmt *s = stmt_of(st);
        size_t n = 0;

        *ret_n = 0;
        if (pg_column_is_null(st, i))
                return NULL;
        free(s->blob);
        /* bytea in text results is hex ("\x0a0b..."): back to bytes */
        s->blob = pq.PQunescapeBytea((const unsigned char *)pq.PQgetvalue(s->res, s->row, i), &n);
        *ret_n = s->blob != NULL ? n : 0;
        return s->blob;
}

static int64_t pg_changes(struct db *db)
{
        return pg_of(db)->changes;
}

static int pg_tx(struct db *db, enum db_tx op)
{
        struct pg_db *d = pg_of(db);
        int r;

        if ((op == DB_BEGIN || op == DB_BEGIN_READ) && (r = ensure_conn(d)) < 0)
                return r;
        if (op != DB_BEGIN && op != DB_BEGIN_READ && (r = tx_session(d)) < 0) {
                if (op == DB_COMMIT || op == DB_ROLLBACK)
                        d->tx_open = false;
                return r;
        }
        switch (op) {
        case DB_BEGIN:
                if (d->stalled && pc_mono_ms() < d->stall_retry_at) /* not a second wait right away */
                        return set_err(d, -EIO, "another session holds the database's writers' lock");
                r = exec_simple(d, "BEGIN");
                if (r == 0) /* one writer at a time, fleet-wide (see the head comment) */
                        r = exec_simple(d, "SELECT pg_advisory_xact_lock(1346568193)"); /* "PC\0\1" */
                if (r == 0)
                        d->stalled = false;
                if (r < 0 && usable(d) && pq.PQtransactionStatus(d->conn) != PQTRANS_IDLE)
                        pq.PQclear(run(d, "ROLLBACK"));
                d->tx_open = r == 0;
                return r;
        case DB_BEGIN_READ:
                r = exec_simple(d, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
                d->tx_open = r == 0;
                return r;
        case DB_COMMIT:
                d->tx_open = false;
                /* A statement that failed inside the transaction aborted
                 * it (SQLite would undo that statement alone): the server
                 * answers COMMIT with a rollback, which is no success. */
                if (pq.PQtransactionStatus(d->conn) == PQTRANS_INERROR) {
                        pq.PQclear(run(d, "ROLLBACK"));
                        return set_err(d, -EIO, "the transaction was rolled back: a statement in it had failed");
                }
                return exec_simple(d, "COMMIT");
        case DB_ROLLBACK:
                d->tx_open = false;
                return exec_simple(d, "ROLLBACK");
        case DB_SAVEPOINT:
                return exec_simple(d, "SAVEPOINT nested");
        case DB_RELEASE:
                return exec_simple(d, "RELEASE SAVEPOINT nested");
        case DB_ROLLBACK_TO:
                return exec_simple(d, "ROLLBACK TO SAVEPOINT nested");
        }
        return set_err(d, -EINVAL, "an unknown transaction step");
}

static bool pg_connected(struct db *db)
{
        struct pg_db *d = pg_of(db);

        return usable(d) && !d->stalled;
}

static bool pg_in_tx(struct db *db)
{
        return pg_of(db)->tx_open;
}

static int pg_lock(struct db *db, const char *table, const char *key)
{
        /* The writers' lock of DB_BEGIN already holds every row. */
        (void)db;
        (void)table;
        (void)key;
        return 0;
}

static int pg_schema_version(struct db *db, int *ret_version)
{
        struct pg_db *d = pg_of(db);
        PGresult *res = run(d, "SELECT version FROM schema_version");
        int r = 0;

        if (pq.PQresultStatus(res) == PGRES_TUPLES_OK && pq.PQntuples(res) == 1)
                *ret_version = (int)strtol(pq.PQgetvalue(res, 0, 0), NULL, 10);
        else if (pq.PQresultStatus(res) == PGRES_FATAL_ERROR &&
                 strcmp(pq.PQresultErrorField(res, PG_DIAG_SQLSTATE) != NULL ? pq.PQresultErrorField(res, PG_DIAG_SQLSTATE)
                                                                           : "",
                        "42P01") == 0)
                *ret_version = 0; /* no schema yet */
        else
                r = result_err(d, res);
        pq.PQclear(res);
        return r;
}

static const char *pg_errmsg(struct db *db)
{
        return pg_of(db)->errmsg;
}

static void pg_close(struct db *db)
{
        struct pg_db *d = pg_of(db);

        for (size_t i = 0; i < d->n_cache; i++)
                stmt_free(d->cache[i]);
        pq.PQfinish(d->conn);
        free(d->url);
        free(d);
}

/* Connects to <url>, with defaults it may override (it comes last): a
 * dead server or network is noticed within seconds, not the kernel's
 * minutes.  <nonblocking>: only starts (PQconnectPoll goes on). */
static PGconn *connect_to(const char *url, bool nonblocking)
{
        static const char *const keys[] = { "connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
                                            "keepalives_count", "tcp_user_timeout", "dbname", NULL };
        const char *const values[] = { "5", "1", "10", "3", "3", "15000", url, NULL };

        return nonblocking ? pq.PQconnectStartParams(keys, values, 1) : pq.PQconnectdbParams(keys, values, 1);
}

/* ---- LISTEN, on a connection of its own, without blocking ---- */

struct pg_listener {
        struct db_listener head; /* first: db.h's */
        PGconn *conn;
        enum { L_CONNECTING, L_LISTEN_SENT, L_LISTENING } state;
        bool wants_write;
        char listen[96];   /* the LISTEN command */
        char key[64];      /* notices for it only ("": all) */
        char why[512];
};

/* Whether a notice with <payload> (space-separated names; "" everyone's)
 * is for <key> ("": takes all). */
static bool notice_for(const char *payload, const char *key)
{
        size_t n = strlen(key);

        if (key[0] == '\0' || payload[0] == '\0')
                return true;
        for (const char *p = payload; (p = strstr(p, key)) != NULL; p += n)
                if ((p == payload || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
                        return true;
        return false;
}

static struct pg_listener *listener_of(struct db_listener *l)
{
        return (struct pg_listener *)l;
}

static int listener_fd(struct db_listener *l)
{
        return pq.PQsocket(listener_of(l)->conn);
}

static bool listener_wants_write(struct db_listener *l)
{
        return listener_of(l)->wants_write;
}

static int listener_lost(struct pg_listener *p, const char **ret_why)
{
        snprintf(p->why, sizeof(p->why), "%s", pq.PQerrorMessage(p->conn));
        p->why[strcspn(p->why, "\n")] = '\0';
        *ret_why = p->why;
        return -EIO;
}

static int listener_ready(struct db_listener *l, bool *ret_notified, const char **ret_why)
{
        struct pg_listener *p = listener_of(l);
        PGnotify *n;

        *ret_notified = false;
        if (p->state == L_CONNECTING) {
                switch (pq.PQconnectPoll(p->conn)) {
                case PGRES_POLLING_READING:
                        p->wants_write = false;
                        return 0;
                case PGRES_POLLING_WRITING:
                        p->wants_write = true;
                        return 0;
                case PGRES_POLLING_OK:
                        break;
                default:
                        return listener_lost(p, ret_why);
                }
                if (pq.PQsetnonblocking(p->conn, 1) < 0 || !pq.PQsendQuery(p->conn, p->listen))
                        return listener_lost(p, ret_why);
                p->state = L_LISTEN_SENT;
        }
        p->wants_write = pq.PQflush(p->conn) == 1;
        if (!pq.PQconsumeInput(p->conn))
                return listener_lost(p, ret_why);
        while (p->state == L_LISTEN_SENT && !pq.PQisBusy(p->conn)) {
                PGresult *res = pq.PQgetResult(p->conn);

                if (res == NULL) {
                        p->state = L_LISTENING;
                        *ret_notified = true; /* listening now: what came before is in the feed */
                        break;
                }
                if (pq.PQresultStatus(res) != PGRES_COMMAND_OK) {
                        snprintf(p->why, sizeof(p->why), "%s", pq.PQresultErrorMessage(res));
                        p->why[strcspn(p->why, "\n")] = '\0';
                        *ret_why = p->why;
                        pq.PQclear(res);
                        return -EIO;
                }
                pq.PQclear(res);
        }
        while ((n = pq.PQnotifies(p->conn)) != NULL) {
                if (notice_for(n->extra != NULL ? n->extra : "", p->key))
                        *ret_notified = true;
                pq.PQfreemem(n);
        }
        if (pq.PQstatus(p->conn) == CONNECTION_BAD)
                return listener_lost(p, ret_why);
        return 0;
}

static void listener_close(struct db_listener *l)
{
        struct pg_listener *p = listener_of(l);

        pq.PQfinish(p->conn);
        free(p);
}

static const struct db_listener_ops pg_listener_ops = {
        .fd = listener_fd,
        .wants_write = listener_wants_write,
        .ready = listener_ready,
        .close = listener_close,
};

static int pg_listen(struct db *db, const char *channel, const char *key, struct db_listener **ret)
{
        struct pg_db *d = pg_of(db);
        struct pg_listener *p;

        if (d->url == NULL)
                return set_err(d, -ENOMEM, "out of memory");
        p = calloc(1, sizeof(*p));
        if (p == NULL)
                return set_err(d, -ENOMEM, "out of memory");
        p->head.ops = &pg_listener_ops;
        snprintf(p->listen, sizeof(p->listen), "LISTEN %s", channel); /* ours, never input */
        snprintf(p->key, sizeof(p->key), "%s", key != NULL ? key : "");
        p->conn = connect_to(d->url, true);
        if (p->conn == NULL || pq.PQstatus(p->conn) == CONNECTION_BAD) {
                int r = set_err(d, -EIO, p->conn != NULL ? pq.PQerrorMessage(p->conn) : "out of memory");

                pq.PQfinish(p->conn);
                free(p);
                return r;
        }
        p->wants_write = true; /* PQconnectStart: wait for writable first */
        *ret = &p->head;
        return 0;
}

static const struct db_driver pg_driver = {
        .name = "postgresql",
        .close = pg_close,
        .prepare = pg_prepare,
        .bind_null = pg_bind_null,
        .bind_int64 = pg_bind_int64,
        .bind_text = pg_bind_text,
        .bind_blob = pg_bind_blob,
        .step = pg_step,
        .reset = pg_reset,
        .release = pg_release,
        .column_is_null = pg_column_is_null,
        .column_int64 = pg_column_int64,
        .column_text = pg_column_text,
        .column_blob = pg_column_blob,
        .changes = pg_changes,
        .tx = pg_tx,
        .in_tx = pg_in_tx,
        .lock = pg_lock,
        .schema_version = pg_schema_version,
        .errmsg = pg_errmsg,
        .listen = pg_listen,
        .connected = pg_connected,
};

/* The grants of every role mapped before, made again: a step that changes
 * what a host's role may do (or adds columns it updates: it updates
 * columns, not tables) ends with it. */
#define REGRANT_MAPPED_ROLES                                                                    \
        "DO $$\n"                                                                              \
        "DECLARE\n"                                                                            \
        "        m RECORD;\n"                                                                  \
        "BEGIN\n"                                                                              \
        "        FOR m IN SELECT role, host FROM agent_role LOOP\n"                            \
        "                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = m.role) THEN\n"     \
        "                        PERFORM portcullis_agent_role(m.role, m.host);\n"             \
        "                END IF;\n"                                                            \
        "        END LOOP;\n"                                                                  \
        "END $$;\n"

/* The steps from an older PostgreSQL schema to schema_pg.sql's, each one
 * transaction that also sets its version.  (A database created by
 * schema_pg.sql starts at its version and needs none.) */
static const struct {
        int version;
        const char *sql;
} pg_migrations[] = {
        { 12, "BEGIN;"
              "ALTER TABLE vps ADD COLUMN host TEXT COLLATE \"C\";"
              "ALTER TABLE vps ADD COLUMN moving_from TEXT COLLATE \"C\";"
              "ALTER TABLE vps ADD COLUMN moving_iface TEXT COLLATE \"C\";"
              "CREATE INDEX vps_host ON vps(host) WHERE host IS NOT NULL;"
              "CREATE INDEX vps_moving_from ON vps(moving_from) WHERE moving_from IS NOT NULL;"
              "CREATE TABLE agent (host TEXT COLLATE \"C\" PRIMARY KEY NOT NULL, started BIGINT NOT NULL,"
              " heartbeat BIGINT NOT NULL, change_seen BIGINT NOT NULL DEFAULT 0, changes BIGINT NOT NULL DEFAULT 0,"
              " vpses INTEGER NOT NULL DEFAULT 0, in_sync INTEGER NOT NULL DEFAULT 0,"
              " version TEXT COLLATE \"C\" NOT NULL DEFAULT '');"
              "CREATE TABLE agent_journal (op TEXT COLLATE \"C\" PRIMARY KEY NOT NULL, at BIGINT NOT NULL);"
              "CREATE FUNCTION portcullis_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$"
              " DECLARE hosts TEXT; BEGIN"
              " SELECT coalesce(host, '') || ' ' || coalesce(moving_from, '') INTO hosts FROM vps WHERE id = NEW.vps_id;"
              " PERFORM pg_notify('portcullis_change', coalesce(trim(hosts), '')); RETURN NULL; END; $$;"
              "CREATE TRIGGER audit_notify AFTER INSERT ON audit"
              " FOR EACH ROW EXECUTE FUNCTION portcullis_notify_change();"
              "DO $$ BEGIN EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());"
              " END $$;"
              "UPDATE schema_version SET version = 12;"
              "COMMIT;" },
        /* An agent token's host (migrations.c's v13). */
        { 13, "BEGIN;"
              "ALTER TABLE api_token ADD COLUMN host TEXT COLLATE \"C\","
              " ADD CHECK (host IS NULL OR role = 'agent');"
              "UPDATE schema_version SET version = 13;"
              "COMMIT;" },
        /* Per-host roles and row-level security: schema_pg.sql's block of
         * schema 14, as it is there (pg/schema compares the two). */
        { 14, "BEGIN;\n"
              "CREATE TABLE agent_role (\n"
              "        role TEXT COLLATE \"C\" PRIMARY KEY NOT NULL,\n"
              "        host TEXT COLLATE \"C\" NOT NULL\n"
              ");\n"
              "REVOKE ALL ON agent_role FROM PUBLIC;\n"
              "CREATE FUNCTION portcullis_host() RETURNS TEXT LANGUAGE sql STABLE SECURITY DEFINER\n"
              "        SET search_path = pg_catalog, public\n"
              "        AS $$ SELECT host FROM public.agent_role WHERE role = session_user $$;\n"
              "CREATE FUNCTION portcullis_mine(v TEXT) RETURNS BOOLEAN LANGUAGE sql STABLE SECURITY DEFINER\n"
              "        SET search_path = pg_catalog, public\n"
              "        AS $$ SELECT EXISTS (SELECT 1 FROM public.vps WHERE id = v\n"
              "                             AND (host = public.portcullis_host() OR moving_from = public.portcullis_host())) $$;\n"
              "CREATE FUNCTION portcullis_gone(v TEXT) RETURNS BOOLEAN LANGUAGE sql STABLE SECURITY DEFINER\n"
              "        SET search_path = pg_catalog, public\n"
              "        AS $$ SELECT NOT EXISTS (SELECT 1 FROM public.vps WHERE id = v) $$;\n"
              "DO $$\n"
              "DECLARE\n"
              "        t TEXT;\n"
              "BEGIN\n"
              "        FOREACH t IN ARRAY ARRAY['vps', 'vps_address', 'ticket', 'ticket_event', 'exception', 'incident', 'action',\n"
              "                                 'notification', 'audit', 'agent', 'agent_journal', 'vps_attempt'] LOOP\n"
              "                EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);\n"
              "                EXECUTE format('CREATE POLICY readers ON %I FOR SELECT USING (true)', t);\n"
              "        END LOOP;\n"
              "        FOREACH t IN ARRAY ARRAY['vps_address', 'ticket', 'exception', 'incident', 'action', 'vps_attempt'] LOOP\n"
              "                EXECUTE format('CREATE POLICY host_rows ON %I USING (portcullis_mine(vps_id))'\n"
              "                               ' WITH CHECK (portcullis_mine(vps_id))', t);\n"
              "        END LOOP;\n"
              "END $$;\n"
              "CREATE POLICY host_add ON vps FOR INSERT WITH CHECK (host = portcullis_host());\n"
              "CREATE POLICY host_change ON vps FOR UPDATE USING (host = portcullis_host()) WITH CHECK (host = portcullis_host());\n"
              "CREATE POLICY host_remove ON vps FOR DELETE USING (host = portcullis_host());\n"
              "CREATE POLICY host_rows ON ticket_event\n"
              "        USING (EXISTS (SELECT 1 FROM ticket WHERE ticket.id = ticket_id AND portcullis_mine(ticket.vps_id)))\n"
              "        WITH CHECK (EXISTS (SELECT 1 FROM ticket WHERE ticket.id = ticket_id AND portcullis_mine(ticket.vps_id)));\n"
              "CREATE POLICY host_rows ON notification USING (portcullis_mine(vps_id) OR portcullis_gone(vps_id))\n"
              "        WITH CHECK (portcullis_mine(vps_id) OR portcullis_gone(vps_id));\n"
              "CREATE POLICY host_rows ON audit FOR INSERT\n"
              "        WITH CHECK (vps_id IS NOT NULL AND (portcullis_mine(vps_id) OR portcullis_gone(vps_id)));\n"
              "CREATE POLICY host_rows ON agent USING (host = portcullis_host()) WITH CHECK (host = portcullis_host());\n"
              "CREATE POLICY host_rows ON agent_journal USING (split_part(op, ':', 1) = portcullis_host())\n"
              "        WITH CHECK (split_part(op, ':', 1) = portcullis_host());\n"
              "CREATE FUNCTION portcullis_agent_role(r TEXT, h TEXT) RETURNS VOID LANGUAGE plpgsql\n"
              "        SET search_path = pg_catalog, public AS $$\n"
              "BEGIN\n"
              "        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN\n"
              "                RAISE EXCEPTION 'role % does not exist: create it first (createuser %)', r, r\n"
              "                        USING ERRCODE = 'undefined_object';\n"
              "        END IF;\n"
              "        INSERT INTO agent_role (role, host) VALUES (r, h) ON CONFLICT (role) DO UPDATE SET host = EXCLUDED.host;\n"
              "        EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), r);\n"
              "        EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', r);\n"
              "        EXECUTE format('GRANT SELECT ON schema_version, vps, vps_address, ticket, ticket_event, exception, incident,'\n"
              "                       ' action, notification, audit, agent, agent_journal, vps_attempt TO %I', r);\n"
              "        EXECUTE format('GRANT INSERT, UPDATE, DELETE ON vps, vps_address, ticket, ticket_event, exception, incident,'\n"
              "                       ' action, notification, agent, agent_journal, vps_attempt TO %I', r);\n"
              "        EXECUTE format('GRANT INSERT ON audit TO %I', r);\n"
              "        EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO %I', r);\n"
              "END $$;\n"
              "REVOKE EXECUTE ON FUNCTION portcullis_agent_role(TEXT, TEXT) FROM PUBLIC;\n"
              "UPDATE schema_version SET version = 14;\n"
              "COMMIT;" },
        /* The audit log's "by" of a host's role, no table-wide UPDATE or
         * DELETE for it (LOCK TABLE), sessions idle in a transaction ended
         * after 30 s: schema_pg.sql's blocks of schema 15, as they are
         * there (pg/schema compares the two), and the grants of every role
         * mapped before made again. */
        { 15, "BEGIN;\n"
              "CREATE OR REPLACE FUNCTION portcullis_agent_role(r TEXT, h TEXT) RETURNS VOID LANGUAGE plpgsql\n"
              "        SET search_path = pg_catalog, public AS $$\n"
              "DECLARE\n"
              "        t TEXT;\n"
              "        cols TEXT;\n"
              "BEGIN\n"
              "        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN\n"
              "                RAISE EXCEPTION 'role % does not exist: create it first (createuser %)', r, r\n"
              "                        USING ERRCODE = 'undefined_object';\n"
              "        END IF;\n"
              "        INSERT INTO agent_role (role, host) VALUES (r, h) ON CONFLICT (role) DO UPDATE SET host = EXCLUDED.host;\n"
              "        EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), r);\n"
              "        EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', r);\n"
              "        EXECUTE format('GRANT SELECT ON schema_version, vps, vps_address, ticket, ticket_event, exception, incident,'\n"
              "                       ' action, notification, audit, agent, agent_journal, vps_attempt TO %I', r);\n"
              "        EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON vps, vps_address, ticket, ticket_event, exception, incident,'\n"
              "                       ' action, notification, audit, agent, agent_journal, vps_attempt FROM %I', r);\n"
              "        EXECUTE format('GRANT INSERT ON vps, vps_address, ticket, ticket_event, exception, incident,'\n"
              "                       ' action, notification, audit, agent, agent_journal, vps_attempt TO %I', r);\n"
              "        FOREACH t IN ARRAY ARRAY['vps', 'vps_address', 'ticket', 'ticket_event', 'exception', 'incident', 'action',\n"
              "                                 'notification', 'agent', 'agent_journal', 'vps_attempt'] LOOP\n"
              "                SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols FROM pg_attribute\n"
              "                        WHERE attrelid = t::regclass AND attnum > 0 AND NOT attisdropped;\n"
              "                EXECUTE format('GRANT UPDATE (%s) ON %I TO %I', cols, t, r);\n"
              "        END LOOP;\n"
              "        EXECUTE format('GRANT DELETE ON vps_address TO %I', r);\n"
              "        EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO %I', r);\n"
              "END $$;\n"
              "CREATE FUNCTION portcullis_audit_by() RETURNS trigger LANGUAGE plpgsql\n"
              "        SET search_path = pg_catalog, public AS $$\n"
              "DECLARE\n"
              "        h TEXT := portcullis_host();\n"
              "BEGIN\n"
              "        IF h IS NULL OR NEW.\"by\" = 'portcullisd' OR right(NEW.\"by\", length(h) + 1) = '@' || h THEN\n"
              "                RETURN NEW;\n"
              "        END IF;\n"
              "        IF strpos(NEW.\"by\", '@') > 0 THEN\n"
              "                RAISE EXCEPTION 'permission denied: host %''s role writes the audit log as portcullisd or NAME@%, not as %',\n"
              "                        h, h, NEW.\"by\" USING ERRCODE = 'insufficient_privilege';\n"
              "        END IF;\n"
              "        NEW.\"by\" := NEW.\"by\" || '@' || h;\n"
              "        RETURN NEW;\n"
              "END $$;\n"
              "CREATE TRIGGER audit_by_host BEFORE INSERT ON audit\n"
              "        FOR EACH ROW EXECUTE FUNCTION portcullis_audit_by();\n"
              "DO $$ BEGIN\n"
              "        EXECUTE format('ALTER DATABASE %I SET idle_in_transaction_session_timeout = ''30s''', current_database());\n"
              "END $$;\n"
              REGRANT_MAPPED_ROLES
              "UPDATE schema_version SET version = 15;\n"
              "COMMIT;" },
        /* A move's confirmation by the host the VPS left: schema_pg.sql's
         * block of schema 16, as it is there (pg/schema compares the two),
         * and the grants of every role mapped before made again (its
         * columns are new: a host's role updates columns, not tables). */
        { 16, "BEGIN;\n"
              "ALTER TABLE vps ADD COLUMN departing_from TEXT COLLATE \"C\";\n"
              "ALTER TABLE vps ADD COLUMN departing_iface TEXT COLLATE \"C\";\n"
              "CREATE INDEX vps_departing_from ON vps(departing_from) WHERE departing_from IS NOT NULL;\n"
              "CREATE FUNCTION portcullis_departure_guard() RETURNS trigger LANGUAGE plpgsql\n"
              "        SET search_path = pg_catalog, public AS $$\n"
              "DECLARE\n"
              "        me TEXT := public.portcullis_host();\n"
              "BEGIN\n"
              "        IF me IS NULL THEN\n"
              "                RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;\n"
              "        END IF;\n"
              "        IF TG_OP = 'DELETE' THEN\n"
              "                IF OLD.departing_from IS NOT NULL AND OLD.departing_from <> me THEN\n"
              "                        RAISE EXCEPTION 'permission denied for vps %: its move from % is not confirmed by %, host % may not remove it',\n"
              "                                OLD.id, OLD.departing_from, OLD.departing_from, me\n"
              "                                USING ERRCODE = 'insufficient_privilege';\n"
              "                END IF;\n"
              "                RETURN OLD;\n"
              "        END IF;\n"
              "        IF TG_OP = 'INSERT' THEN\n"
              "                IF NEW.departing_from IS NOT NULL OR NEW.departing_iface IS NOT NULL THEN\n"
              "                        RAISE EXCEPTION 'permission denied for vps %: host % may not name the host it departs from', NEW.id, me\n"
              "                                USING ERRCODE = 'insufficient_privilege';\n"
              "                END IF;\n"
              "                RETURN NEW;\n"
              "        END IF;\n"
              "        IF (NEW.departing_from IS DISTINCT FROM OLD.departing_from\n"
              "            OR NEW.departing_iface IS DISTINCT FROM OLD.departing_iface)\n"
              "           AND NOT (OLD.departing_from = me AND NEW.departing_from IS NULL AND NEW.departing_iface IS NULL) THEN\n"
              "                RAISE EXCEPTION 'permission denied for vps %: host % may not change the host it departs from (%)',\n"
              "                        NEW.id, me, coalesce(OLD.departing_from, 'none')\n"
              "                        USING ERRCODE = 'insufficient_privilege';\n"
              "        END IF;\n"
              "        -- (host_depart's check passes a row that leaves the role's host:\n"
              "        -- refused here, as host_change's refuses it.)\n"
              "        IF OLD.host = me AND NEW.host IS DISTINCT FROM me THEN\n"
              "                RAISE EXCEPTION 'permission denied for vps %: host % may not move it to another host', NEW.id, me\n"
              "                        USING ERRCODE = 'insufficient_privilege';\n"
              "        END IF;\n"
              "        IF OLD.host IS DISTINCT FROM me\n"
              "           AND (to_jsonb(NEW) - 'departing_from' - 'departing_iface')\n"
              "               IS DISTINCT FROM (to_jsonb(OLD) - 'departing_from' - 'departing_iface') THEN\n"
              "                RAISE EXCEPTION 'permission denied for vps %: host % only records that the VPS left it', NEW.id, me\n"
              "                        USING ERRCODE = 'insufficient_privilege';\n"
              "        END IF;\n"
              "        RETURN NEW;\n"
              "END $$;\n"
              "CREATE TRIGGER vps_departure_guard BEFORE INSERT OR UPDATE OR DELETE ON vps\n"
              "        FOR EACH ROW EXECUTE FUNCTION portcullis_departure_guard();\n"
              "CREATE POLICY host_depart ON vps FOR UPDATE USING (departing_from = portcullis_host())\n"
              "        WITH CHECK (departing_from IS NULL);\n"
              "CREATE POLICY host_depart ON audit FOR INSERT\n"
              "        WITH CHECK (action = 'vps.depart' AND EXISTS (SELECT 1 FROM vps WHERE vps.id = vps_id\n"
              "                                                      AND vps.departing_from = portcullis_host()));\n"
              REGRANT_MAPPED_ROLES
              "UPDATE schema_version SET version = 16;\n"
              "COMMIT;" },
};

/* Brings a database at an older <*version> to this build's, one step at
 * a time; another agent may be doing the same, so a step re-checks the
 * version under a lock. */
static int pg_migrate(struct pg_db *d, int *version)
{
        for (size_t i = 0; i < sizeof(pg_migrations) / sizeof(pg_migrations[0]); i++) {
                int r;

                if (pg_migrations[i].version <= *version)
                        continue;
                r = exec_simple(d, "SELECT pg_advisory_lock(1346568194)");
                if (r == 0)
                        r = pg_schema_version(&d->head, version);
                if (r == 0 && *version < pg_migrations[i].version) {
                        r = exec_simple(d, pg_migrations[i].sql);
                        if (r < 0 && pq.PQtransactionStatus(d->conn) != PQTRANS_IDLE)
                                pq.PQclear(pq.PQexec(d->conn, "ROLLBACK"));
                        if (r == 0)
                                *version = pg_migrations[i].version;
                }
                pq.PQclear(pq.PQexec(d->conn, "SELECT pg_advisory_unlock(1346568194)"));
                if (r < 0)
                        return r;
        }
        return 0;
}

/* <url> with any password left out, for messages. */
static void url_shown(const char *url, char *buf, size_t size)
{
        PQconninfoOption *opts = pq.PQconninfoParse(url, NULL);
        size_t o = 0;

        buf[0] = '\0';
        if (opts == NULL) {
                snprintf(buf, size, "(a PostgreSQL URL that does not parse)");
                return;
        }
        for (PQconninfoOption *p = opts; p->keyword != NULL && o < size; p++)
                if (p->val != NULL && p->val[0] != '\0' && strcmp(p->keyword, "password") != 0)
                        o += (size_t)snprintf(buf + o, size - o, "%s%s=%s", o > 0 ? " " : "", p->keyword, p->val);
        pq.PQconninfoFree(opts);
}

int db_pg_open(const char *url, bool create, bool *ret_created, struct db **ret, char *err, size_t errsz)
{
        struct pg_db *d = calloc(1, sizeof(*d));
        int version = 0, r;

        if (ret_created != NULL)
                *ret_created = false;
        if (d == NULL) {
                snprintf(err, errsz, "out of memory");
                return -ENOMEM;
        }
        r = pq_load(err, errsz);
        if (r < 0) {
                free(d);
                return r;
        }
        d->head.driver = &pg_driver;
        url_shown(url, d->name, sizeof(d->name));
        d->head.name = d->name;
        d->url = strdup(url);
        d->conn = connect_to(url, false);
        if (pq.PQstatus(d->conn) != CONNECTION_OK) {
                snprintf(err, errsz, "database %s: cannot connect: %s", d->name, pq.PQerrorMessage(d->conn));
                err[strcspn(err, "\n")] = '\0';
                pg_close(&d->head);
                return -EIO;
        }
        /* Quiet: the server's NOTICEs are not the store's to print. */
        r = exec_simple(d, "SET client_min_messages = warning");
        if (r == 0)
                r = pg_schema_version(&d->head, &version);
        if (r == 0 && version == 0 && !create) {
                snprintf(err, errsz, "no database at %s (it has no Portcullis schema)", d->name);
                pg_close(&d->head);
                return -ENOENT;
        }
        if (r == 0 && version == 0) {
                r = exec_simple(d, pc_schema_pg); /* BEGIN ... COMMIT: all of it or nothing */
                if (r == 0 && ret_created != NULL)
                        *ret_created = true;
                if (r == 0)
                        r = pg_schema_version(&d->head, &version);
        }
        if (r == 0 && version > 0 && version < PG_SCHEMA_VERSION)
                r = pg_migrate(d, &version);
        if (r == 0 && version != PG_SCHEMA_VERSION) {
                snprintf(err, errsz, "database %s is at schema version %d, this build reads %d", d->name, version,
                         PG_SCHEMA_VERSION);
                pg_close(&d->head);
                return -EPROTONOSUPPORT;
        }
        if (r < 0) {
                snprintf(err, errsz, "database %s: %s", d->name, d->errmsg);
                pg_close(&d->head);
                return r;
        }
        *ret = &d->head;
        return 0;
}
