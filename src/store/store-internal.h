/* What the store front (store.c) and its backends share, and nobody else:
 * the common head of every backend's store object, the backends' open
 * functions that can explain a failure, and the SQLite schema migrations. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "store/store.h"

/* The head of every backend's store object: a backend embeds it as the
 * first member of its own struct, so that store.c can dispatch through
 * <ops> without knowing the rest. */
struct pc_store {
        const struct pc_store_ops *ops;
        void (*on_commit)(void *userdata); /* pc_store_on_commit */
        void *on_commit_data;
};

/* Called by a backend once a transaction of its own has committed (not a
 * nested one, not a rollback): runs the hook of pc_store_on_commit. */
void pc_store_committed(struct pc_store *s);

/* Opens the SQLite database at the file path <path> (already stripped of
 * its "sqlite:" scheme) and migrates its schema.  With <create> a missing
 * file (and its parent folders) is created and *<ret_created> (may be
 * NULL) says whether it was; without, a missing file, or one without
 * Portcullis's schema, is -ENOENT "no database at PATH".  On failure
 * writes a message naming the database and the cause into <err> (size
 * <errsz>, may be 0). */
int pc_store_sqlite_open(const char *path, bool create, bool *ret_created, struct pc_store **ret,
                         char *err, size_t errsz);

/* Opens the existing SQLite database at <path> for reading only: every
 * file of it (the database, its -wal and -shm) through a read-only
 * descriptor, whatever the caller's privileges; nothing is created or
 * migrated.  A WAL database needs its -wal and -shm to exist (a writer,
 * the agent, keeps them).  A schema other than this build's is refused. */
int pc_store_sqlite_open_readonly(const char *path, struct pc_store **ret, char *err, size_t errsz);

/* Opens the PostgreSQL database of <url> (the whole "postgresql://..."
 * URL, or a libpq keyword string), as pc_store_sqlite_open: with <create>
 * a database without the schema gets it. */
int pc_store_pg_open(const char *url, bool create, bool *ret_created, struct pc_store **ret, char *err,
                     size_t errsz);
/* The same, never creating: the server's grants say what the role reads. */
int pc_store_pg_open_readonly(const char *url, struct pc_store **ret, char *err, size_t errsz);

struct sqlite3;

/* One step of the SQLite schema: the script that takes a database from
 * version <version> - 1 to <version> and, if the step derives new columns
 * from old ones (which SQL alone cannot), <fill> run after it in the same
 * transaction (returns a SQLite result code). */
struct pc_migration {
        int version;
        const char *sql;
        int (*fill)(struct sqlite3 *db);
};

/* The SQLite schema's steps, ordered, versions 1..n without gaps. */
extern const struct pc_migration pc_sqlite_migrations[];
extern const size_t pc_sqlite_n_migrations;

/* The newest schema version this build knows (the last migration's). */
int pc_sqlite_schema_latest(void);

/* Brings the open SQLite database <db> (the file <path>, named in
 * messages) to pc_sqlite_schema_latest(), each step in its own IMMEDIATE
 * transaction that also sets PRAGMA user_version.  A database at a newer
 * version than this build knows is refused with -EPROTONOSUPPORT and left
 * untouched; a failed step is rolled back and gives -EIO.  On failure a
 * message goes to <err> (size <errsz>). */
int pc_sqlite_migrate(struct sqlite3 *db, const char *path, char *err, size_t errsz);

/* Reads PRAGMA user_version of <db> into *<ret_version>.  -EIO. */
int pc_sqlite_user_version(struct sqlite3 *db, int *ret_version);
