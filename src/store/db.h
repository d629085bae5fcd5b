/* The store's database driver: what the store's SQL needs of an engine,
 * and nothing more.  The store (store_*.c) is written once over it; a
 * driver (db_sqlite.c; db_pg.c later) is the only code that calls an
 * engine's library.
 *
 * SQL.  Every SQL text given to db_prepare() is a string literal: a driver
 * may keep the statement prepared for the next call with the same text,
 * found by the text's address (never compared).  The text is in the
 * dialect SQLite and PostgreSQL share; parameters are written `?` (the
 * n-th `?` is parameter n) or `?N` (parameter N, which may appear more
 * than once), numbered from 1.  A PostgreSQL driver rewrites both to `$N`
 * once, when it prepares the text (outside quotes and identifiers).
 * A new row tells its id with `INSERT ... RETURNING id` (SQLite >= 3.35),
 * a row like any other.
 * What a PostgreSQL driver must add to that: the type of each parameter
 * at preparing, from its binding (a parameter that appears only in
 * `? IS NULL` gives PostgreSQL nothing to infer it from), so it prepares
 * at the first step; and text keys compared and sorted byte by byte
 * (COLLATE "C" in its schema), as SQLite does: the load merges rows
 * ordered by VPS id with strcmp(), and a prefix range such as
 * service >= 'source-prefix:' AND service < 'source-prefix;' counts on it.
 *
 * Errors.  Every function that can fail returns a negative errno, mapped
 * from the engine's code the same way by every driver:
 *   -EEXIST  a UNIQUE or PRIMARY KEY constraint (SQLite
 *            SQLITE_CONSTRAINT_UNIQUE/_PRIMARYKEY; PostgreSQL 23505)
 *   -ENOENT  a FOREIGN KEY constraint (SQLITE_CONSTRAINT_FOREIGNKEY; 23503)
 *   -ENOMEM  out of memory (SQLITE_NOMEM)
 *   -ESTALE  db_begin() only: the database is no longer the one opened
 *            (SQLite: its file was deleted or replaced); nothing written
 *   -EIO     anything else (a busy database after the driver's own wait
 *            included, as the store always reported it)
 * and leaves the engine's own words in db_errmsg(), which the store puts
 * in its message with what it was doing.
 *
 * Transactions.  db_begin() starts a write transaction that holds, until
 * it ends, every row the store reads to check a rule before it writes
 * (the read-check-write rules: "at most N exceptions", "one suspension at
 * a time"): SQLite's BEGIN IMMEDIATE takes the database's write lock at
 * once.  A driver whose engine locks rows instead (PostgreSQL) must give
 * the same guarantee: db_lock() below takes the lock such a rule needs.
 * Savepoints nest inside it, one level at a time (the store's nesting
 * counts them).  A statement that fails inside a transaction: SQLite
 * undoes that statement alone, PostgreSQL aborts the whole transaction
 * (every later statement fails, and db_commit() is then -EIO with nothing
 * written, never a silent rollback).  So a step whose failure the caller
 * may pass over runs in a savepoint, or is written not to fail.
 *
 * Threads.  A connection and its statements are used by one thread at a
 * time. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The parts of a transaction, for db_driver.tx. */
enum db_tx {
        DB_BEGIN,       /* a write transaction (SQLite: BEGIN IMMEDIATE) */
        DB_BEGIN_READ,  /* a read-only one: one snapshot (SQLite: BEGIN) */
        DB_COMMIT,
        DB_ROLLBACK,
        DB_SAVEPOINT,   /* a nested one, inside DB_BEGIN's */
        DB_RELEASE,     /* keeps the innermost savepoint's changes */
        DB_ROLLBACK_TO, /* undoes them (the savepoint then still needs DB_RELEASE) */
};

struct db;
struct db_stmt;
struct db_listener;

/* What a driver does; every member is required.  The store calls them
 * only through the db_* functions below, which say each one's contract. */
struct db_driver {
        const char *name; /* "sqlite" */
        void (*close)(struct db *db);
        int (*prepare)(struct db *db, const char *sql, struct db_stmt **ret);
        int (*bind_null)(struct db_stmt *st, int i);
        int (*bind_int64)(struct db_stmt *st, int i, int64_t v);
        int (*bind_text)(struct db_stmt *st, int i, const char *text);
        int (*bind_blob)(struct db_stmt *st, int i, const void *p, size_t n);
        int (*step)(struct db_stmt *st);
        void (*reset)(struct db_stmt *st);
        void (*release)(struct db_stmt *st);
        bool (*column_is_null)(struct db_stmt *st, int i);
        int64_t (*column_int64)(struct db_stmt *st, int i);
        const char *(*column_text)(struct db_stmt *st, int i);
        const void *(*column_blob)(struct db_stmt *st, int i, size_t *ret_n);
        int64_t (*changes)(struct db *db);
        int (*tx)(struct db *db, enum db_tx op);
        bool (*in_tx)(struct db *db);
        int (*lock)(struct db *db, const char *table, const char *key);
        int (*schema_version)(struct db *db, int *ret_version);
        const char *(*errmsg)(struct db *db);
        /* Optional (NULL: the engine cannot): a listener, on a connection
         * of its own, of the notifications sent on <channel> at commit
         * whose payload names <key> or is empty (<key> NULL or "": all). */
        int (*listen)(struct db *db, const char *channel, const char *key, struct db_listener **ret);
        /* Optional (NULL: always): whether the connection is up, as far as
         * the driver knows without asking the server. */
        bool (*connected)(struct db *db);
};

/* A listener (db_driver.listen): it connects and listens without
 * blocking; the caller waits on fd() (for writing too if wants_write())
 * and calls ready() then.  ready() sets *<ret_notified> when a
 * notification came or the connection was just made (whatever was sent
 * before is lost: read what it would have told); -EIO when the
 * connection is lost, *<ret_why> saying why (valid until the next call):
 * close it and listen again later. */
struct db_listener_ops {
        int (*fd)(struct db_listener *l);
        bool (*wants_write)(struct db_listener *l);
        int (*ready)(struct db_listener *l, bool *ret_notified, const char **ret_why);
        void (*close)(struct db_listener *l);
};

struct db_listener {
        const struct db_listener_ops *ops;
};

/* The head of a driver's connection: the driver's own struct embeds it
 * first.  The store reads <name> only (messages: "database NAME: ..."). */
struct db {
        const struct db_driver *driver;
        const char *name; /* the file, or the URL without its password */
};

/* The head of a driver's statement, first in the driver's own: a
 * statement knows its connection (so that a cleanup attribute, which
 * passes the statement only, can give it back). */
struct db_stmt {
        struct db *db;
};

/* Closes <db> (NULL: nothing) and frees it.  Every statement must have
 * been released. */
static inline void db_close(struct db *db)
{
        if (db != NULL)
                db->driver->close(db);
}

/* Prepares <sql> (a string literal: see above) into *<ret>, owned by the
 * caller until db_stmt_release().  A statement of the same text still
 * handed out is not shared: the driver prepares another. */
static inline int db_prepare(struct db *db, const char *sql, struct db_stmt **ret)
{
        return db->driver->prepare(db, sql, ret);
}

/* Bind parameter <i> (from 1) of <st>: NULL, an integer, a copy of the
 * NUL-terminated <text>, a copy of <n> bytes at <p>.  A binding stays
 * until the statement is released, across db_stmt_reset(). */
static inline int db_bind_null(struct db_stmt *st, int i)
{
        return st->db->driver->bind_null(st, i);
}

static inline int db_bind_int64(struct db_stmt *st, int i, int64_t v)
{
        return st->db->driver->bind_int64(st, i, v);
}

static inline int db_bind_text(struct db_stmt *st, int i, const char *text)
{
        return st->db->driver->bind_text(st, i, text);
}

static inline int db_bind_blob(struct db_stmt *st, int i, const void *p, size_t n)
{
        return st->db->driver->bind_blob(st, i, p, n);
}

/* Runs <st> to its next row: 1 a row is current, 0 done, or a negative
 * errno (see above). */
static inline int db_step(struct db_stmt *st)
{
        return st->db->driver->step(st);
}

/* Ends the run of <st>, keeping its bindings, so that it runs again from
 * the start with those changed by db_bind_*() (one statement, many
 * lookups). */
static inline void db_stmt_reset(struct db_stmt *st)
{
        st->db->driver->reset(st);
}

/* Gives back <st> (NULL: nothing): a driver keeps it for the next
 * db_prepare() of its text, reset and unbound, or frees it.  Ends the
 * read it holds. */
static inline void db_stmt_release(struct db_stmt *st)
{
        if (st != NULL)
                st->db->driver->release(st);
}

static inline void db_stmt_releasep(struct db_stmt **p)
{
        db_stmt_release(*p);
}
#define _cleanup_stmt_ __attribute__((cleanup(db_stmt_releasep)))

/* Columns <i> (from 0) of the current row of <st>.  Text is "" for NULL
 * and, like a blob (*<ret_n> its length, NULL for none or NULL), valid
 * until the next step, reset or release. */
static inline bool db_column_is_null(struct db_stmt *st, int i)
{
        return st->db->driver->column_is_null(st, i);
}

static inline int64_t db_column_int64(struct db_stmt *st, int i)
{
        return st->db->driver->column_int64(st, i);
}

static inline const char *db_column_text(struct db_stmt *st, int i)
{
        return st->db->driver->column_text(st, i);
}

static inline const void *db_column_blob(struct db_stmt *st, int i, size_t *ret_n)
{
        return st->db->driver->column_blob(st, i, ret_n);
}

/* The rows the last INSERT, UPDATE or DELETE run on <db> touched. */
static inline int64_t db_changes(struct db *db)
{
        return db->driver->changes(db);
}

/* Transaction control (see above): begin a write transaction (-ESTALE if
 * the database is no longer the one opened), commit, roll back, and the
 * nested savepoint's three.  A rollback's failure leaves db_errmsg()
 * alone only if the caller does not look: callers that keep an earlier
 * error's message ignore it. */
static inline int db_begin(struct db *db)
{
        return db->driver->tx(db, DB_BEGIN);
}

/* Begins a transaction that only reads: every statement in it sees the
 * same snapshot (the load).  Ends with db_rollback(). */
static inline int db_begin_read(struct db *db)
{
        return db->driver->tx(db, DB_BEGIN_READ);
}

static inline int db_commit(struct db *db)
{
        return db->driver->tx(db, DB_COMMIT);
}

static inline int db_rollback(struct db *db)
{
        return db->driver->tx(db, DB_ROLLBACK);
}

static inline int db_savepoint(struct db *db)
{
        return db->driver->tx(db, DB_SAVEPOINT);
}

static inline int db_savepoint_release(struct db *db)
{
        return db->driver->tx(db, DB_RELEASE);
}

static inline int db_savepoint_rollback(struct db *db)
{
        return db->driver->tx(db, DB_ROLLBACK_TO);
}

/* Whether a transaction is open on <db> (a failed COMMIT may leave one). */
static inline bool db_in_tx(struct db *db)
{
        return db->driver->in_tx(db);
}

/* Within db_begin()'s transaction, holds the row <key> of <table> (its
 * primary key, as text) until the transaction ends, against any other
 * writer's read-check-write of it, before the caller reads what its rule
 * checks.  SQLite: nothing to do (BEGIN IMMEDIATE holds the whole
 * database); PostgreSQL: SELECT ... FOR UPDATE of that row.  A missing row
 * is not an error (the caller's own read says so). */
static inline int db_lock(struct db *db, const char *table, const char *key)
{
        return db->driver->lock(db, table, key);
}

/* The schema version of <db> into *<ret_version> (SQLite: PRAGMA
 * user_version). */
static inline int db_schema_version(struct db *db, int *ret_version)
{
        return db->driver->schema_version(db, ret_version);
}

/* The engine's message about the last failure on <db>. */
static inline const char *db_errmsg(struct db *db)
{
        return db->driver->errmsg(db);
}

/* Opens the SQLite database file <path> (db_sqlite.c): creating it (and
 * its parent folders) with <create>, telling in *<ret_created> (may be
 * NULL) whether it did; migrating it; WAL mode and foreign keys on.
 * Without <create>, a missing file or one without Portcullis's schema is
 * -ENOENT "no database at PATH".  On failure a message naming the
 * database and the cause goes to <err> (size <errsz>). */
int db_sqlite_open(const char *path, bool create, bool *ret_created, struct db **ret, char *err,
                   size_t errsz);

/* Opens the existing SQLite database <path> for reading only, every file
 * of it through a read-only descriptor; a schema other than this build's
 * is refused (-EPROTONOSUPPORT).  Messages as db_sqlite_open(). */
int db_sqlite_open_readonly(const char *path, struct db **ret, char *err, size_t errsz);

/* Connects to the PostgreSQL database of the libpq URL or keyword string
 * <url> (db_pg.c).  With <create>, a database without Portcullis's schema
 * gets it (pc_schema_pg, one transaction) and *<ret_created> (may be
 * NULL) says so; without, it is -ENOENT "no database at URL".  A schema
 * newer than this build's is refused.  Messages as db_sqlite_open(), the
 * URL shown without its password. */
int db_pg_open(const char *url, bool create, bool *ret_created, struct db **ret, char *err, size_t errsz);

/* A PostgreSQL connection <db> (nothing for another engine) that the
 * server or the network ended is made again in steps, one per call that
 * needs it, without waiting: each fails with -EIO until it is made (the
 * agent's loop must not stop for a database that does not answer).  By
 * default a call waits for the reconnection (connect_timeout). */
void db_pg_background_reconnect(struct db *db);

/* schema_pg.sql, as the build embeds it. */
extern const char pc_schema_pg[];
