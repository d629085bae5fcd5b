/* The SQLite driver of the store (db.h): one database file in WAL mode,
 * foreign keys on, a write transaction being BEGIN IMMEDIATE.  The only
 * code of the store, with the schema's migrations (migrations.c), that
 * calls SQLite.
 *
 * Statements are kept prepared per connection for the next use of the
 * same SQL text (parsing it again was half of an API request's CPU). */
#include "store/db.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/util.h"
#include "store/store-internal.h"

#define BUSY_TIMEOUT_MS 5000
#define STMT_CACHE 128 /* prepared statements kept per connection */
#define DIR_MODE 0750
#define FILE_MODE 0640

/* A statement: SQLite's, and where it is kept. */
struct sq_stmt {
        struct db_stmt base; /* first: db.h sees only this */
        sqlite3_stmt *st;
        const char *sql; /* the caller's text, the cache's key; NULL: not cached */
        bool busy;       /* handed out, not yet released */
};

struct sq_db {
        struct db base; /* first: db.h sees only this */
        sqlite3 *db;
        char *path;
        /* The statement cache.  A slot is found by the address of its SQL
         * text, which is always a string literal (db.h): one text, one
         * address, for the life of the process.  Should the compiler keep
         * two copies of the same literal, each takes a slot of its own;
         * the text is never compared. */
        struct sq_stmt cache[STMT_CACHE];
        size_t n_cache;
};

static const struct db_driver sq_driver;

static struct sq_db *to_sq(struct db *db)
{
        return (struct sq_db *)db;
}

static struct sq_stmt *to_sq_stmt(struct db_stmt *st)
{
        return (struct sq_stmt *)st;
}

/* SQLite result <rc> as a negative errno (db.h's map). */
static int sq_errno(int rc)
{
        switch (rc) {
        case SQLITE_CONSTRAINT_UNIQUE:
        case SQLITE_CONSTRAINT_PRIMARYKEY:
                return -EEXIST;
        case SQLITE_CONSTRAINT_FOREIGNKEY:
                return -ENOENT;
        case SQLITE_NOMEM:
                return -ENOMEM;
        default:
                return -EIO;
        }
}

static int sq_prepare(struct db *d, const char *sql, struct db_stmt **ret)
{
        struct sq_db *db = to_sq(d);
        struct sq_stmt *s = NULL;
        int rc;

        for (size_t k = 0; k < db->n_cache; k++)
                if (db->cache[k].sql == sql && !db->cache[k].busy) {
                        s = &db->cache[k];
                        s->busy = true;
                        *ret = &s->base;
                        return 0;
                }
        if (db->n_cache < STMT_CACHE) {
                s = &db->cache[db->n_cache];
                rc = sqlite3_prepare_v3(db->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->st, NULL);
                if (rc != SQLITE_OK)
                        return sq_errno(rc);
                s->base.db = d;
                s->sql = sql;
                s->busy = true;
                db->n_cache++;
                *ret = &s->base;
                return 0;
        }
        s = calloc(1, sizeof(*s));
        if (s == NULL)
                return -ENOMEM;
        rc = sqlite3_prepare_v2(db->db, sql, -1, &s->st, NULL);
        if (rc != SQLITE_OK) {
                free(s);
                return sq_errno(rc);
        }
        s->base.db = d;
        *ret = &s->base;
        return 0;
}

static int sq_bind_null(struct db_stmt *st, int i)
{
        int rc = sqlite3_bind_null(to_sq_stmt(st)->st, i);

        return rc == SQLITE_OK ? 0 : sq_errno(rc);
}

static int sq_bind_int64(struct db_stmt *st, int i, int64_t v)
{
        int rc = sqlite3_bind_int64(to_sq_stmt(st)->st, i, v);

        return rc == SQLITE_OK ? 0 : sq_errno(rc);
}

static int sq_bind_text(struct db_stmt *st, int i, const char *text)
{
        int rc = sqlite3_bind_text(to_sq_stmt(st)->st, i, text, -1, SQLITE_TRANSIENT);

        return rc == SQLITE_OK ? 0 : sq_errno(rc);
}

static int sq_bind_blob(struct db_stmt *st, int i, const void *p, size_t n)
{
        int rc = sqlite3_bind_blob64(to_sq_stmt(st)->st, i, p, n, SQLITE_TRANSIENT);

        return rc == SQLITE_OK ? 0 : sq_errno(rc);
}

static int sq_step(struct db_stmt *st)
{
        int rc = sqlite3_step(to_sq_stmt(st)->st);

        if (rc == SQLITE_ROW)
                return 1;
        if (rc == SQLITE_DONE)
                return 0;
        return sq_errno(rc);
}

static void sq_reset(struct db_stmt *st)
{
        sqlite3_reset(to_sq_stmt(st)->st);
}

/* A cached statement is reset for its next use (which also ends the read
 * it holds), any other finalized. */
static void sq_release(struct db_stmt *st)
{
        struct sq_stmt *s = to_sq_stmt(st);

        if (s->sql != NULL) {
                sqlite3_reset(s->st);
                sqlite3_clear_bindings(s->st);
                s->busy = false;
                return;
        }
        sqlite3_finalize(s->st);
        free(s);
}

static bool sq_column_is_null(struct db_stmt *st, int i)
{
        return sqlite3_column_type(to_sq_stmt(st)->st, i) == SQLITE_NULL;
}

static int64_t sq_column_int64(struct db_stmt *st, int i)
{
        return sqlite3_column_int64(to_sq_stmt(st)->st, i);
}

static const char *sq_column_text(struct db_stmt *st, int i)
{
        const unsigned char *t = sqlite3_column_text(to_sq_stmt(st)->st, i);

        return t != NULL ? (const char *)t : "";
}

static const void *sq_column_blob(struct db_stmt *st, int i, size_t *ret_n)
{
        sqlite3_stmt *s = to_sq_stmt(st)->st;
        const void *p = sqlite3_column_blob(s, i);

        *ret_n = p != NULL ? (size_t)sqlite3_column_bytes(s, i) : 0;
        return p;
}

static int64_t sq_changes(struct db *db)
{
        return sqlite3_changes64(to_sq(db)->db);
}

/* Runs the statement <sql> (a literal, so cached), which returns no rows. */
static int sq_exec(struct db *db, const char *sql)
{
        struct db_stmt *st = NULL;
        int r;

        r = sq_prepare(db, sql, &st);
        if (r < 0)
                return r;
        r = sq_step(st);
        sq_release(st);
        return r < 0 ? r : 0;
}

/* In WAL mode SQLite goes on writing to a file deleted (or replaced)
 * under an open connection and reports success: every change would be
 * lost.  So a write transaction begins with a check that the file is
 * still where it was opened: -ESTALE, rolled back, if not. */
static int sq_tx(struct db *d, enum db_tx op)
{
        struct sq_db *db = to_sq(d);
        int moved = 0;
        int r;

        switch (op) {
        case DB_BEGIN:
                r = sq_exec(d, "BEGIN IMMEDIATE");
                if (r < 0)
                        return r;
                if (sqlite3_file_control(db->db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) != SQLITE_OK ||
                    moved) {
                        sq_exec(d, "ROLLBACK");
                        return -ESTALE;
                }
                return 0;
        case DB_BEGIN_READ:
                return sq_exec(d, "BEGIN");
        case DB_COMMIT:
                return sq_exec(d, "COMMIT");
        case DB_ROLLBACK:
                return sq_exec(d, "ROLLBACK");
        case DB_SAVEPOINT:
                return sq_exec(d, "SAVEPOINT nested");
        case DB_RELEASE:
                return sq_exec(d, "RELEASE nested");
        case DB_ROLLBACK_TO:
                return sq_exec(d, "ROLLBACK TO nested");
        }
        return -EINVAL;
}

static bool sq_in_tx(struct db *db)
{
        return !sqlite3_get_autocommit(to_sq(db)->db);
}

/* BEGIN IMMEDIATE holds the database's write lock already. */
static int sq_lock(struct db *db, const char *table, const char *key)
{
        (void)db;
        (void)table;
        (void)key;
        return 0;
}

static int sq_schema_version(struct db *d, int *ret_version)
{
        struct sq_db *db = to_sq(d);

        if (pc_sqlite_user_version(db->db, ret_version) < 0)
                return sq_errno(sqlite3_errcode(db->db));
        return 0;
}

static const char *sq_errmsg(struct db *db)
{
        return sqlite3_errmsg(to_sq(db)->db);
}

static void sq_close(struct db *d)
{
        struct sq_db *db = to_sq(d);

        for (size_t i = 0; i < db->n_cache; i++)
                sqlite3_finalize(db->cache[i].st);
        sqlite3_close_v2(db->db);
        free(db->path);
        free(db);
}

static const struct db_driver sq_driver = {
        .name = "sqlite",
        .close = sq_close,
        .prepare = sq_prepare,
        .bind_null = sq_bind_null,
        .bind_int64 = sq_bind_int64,
        .bind_text = sq_bind_text,
        .bind_blob = sq_bind_blob,
        .step = sq_step,
        .reset = sq_reset,
        .release = sq_release,
        .column_is_null = sq_column_is_null,
        .column_int64 = sq_column_int64,
        .column_text = sq_column_text,
        .column_blob = sq_column_blob,
        .changes = sq_changes,
        .tx = sq_tx,
        .in_tx = sq_in_tx,
        .lock = sq_lock,
        .schema_version = sq_schema_version,
        .errmsg = sq_errmsg,
};

/* ---- opening --------------------------------------------------------- */

/* Creates the missing folders above the file <path>, mode DIR_MODE. */
static int make_parents(const char *path, char *err, size_t errsz)
{
        _cleanup_free_ char *p = strdup(path);

        if (p == NULL) {
                snprintf(err, errsz, "database %s: out of memory", path);
                return -ENOMEM;
        }
        for (char *slash = strchr(p + 1, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
                struct stat sb;

                *slash = '\0';
                if (stat(p, &sb) == -1) {
                        if (errno != ENOENT || (mkdir(p, DIR_MODE) == -1 && errno != EEXIST)) {
                                int e = errno;

                                snprintf(err, errsz, "database %s: cannot create folder %s: %s",
                                         path, p, strerror(e));
                                return -e;
                        }
                } else if (!S_ISDIR(sb.st_mode)) {
                        snprintf(err, errsz, "database %s: %s is not a folder", path, p);
                        return -ENOTDIR;
                }
                *slash = '/';
        }
        return 0;
}

/* The driver's connection around an open SQLite connection <db>, which
 * it then owns. */
static int sq_wrap(sqlite3 *db, const char *path, struct db **ret, char *err, size_t errsz)
{
        struct sq_db *s = calloc(1, sizeof(*s));

        if (s == NULL || (s->path = strdup(path)) == NULL) {
                free(s);
                snprintf(err, errsz, "database %s: out of memory", path);
                return -ENOMEM;
        }
        s->base.driver = &sq_driver;
        s->base.name = s->path;
        s->db = db;
        *ret = &s->base;
        return 0;
}

/* Creates the database file <path> and the folders above it, unless it
 * exists.  Sets *<ret_created>. */
static int create_file(const char *path, bool *ret_created, char *err, size_t errsz)
{
        int fd, r;

        r = make_parents(path, err, errsz);
        if (r < 0)
                return r;
        /* Create the file ourselves so that it gets FILE_MODE, not SQLite's
         * 0644; SQLite gives its -wal and -shm files the same mode. */
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, FILE_MODE);
        if (fd == -1) {
                if (errno == EEXIST) {
                        *ret_created = false;
                        return 0;
                }
                r = -errno;
                snprintf(err, errsz, "database %s: cannot create it: %s", path, strerror(-r));
                return r;
        }
        if (fchmod(fd, FILE_MODE) == -1) {
                r = -errno;
                close(fd);
                unlink(path);
                snprintf(err, errsz, "database %s: cannot set its mode: %s", path, strerror(-r));
                return r;
        }
        close(fd);
        *ret_created = true;
        return 0;
}

/* Waits for another writer's lock: 100 us at a time for the first 2 ms
 * (a change is a millisecond's transaction: SQLite's own handler would
 * sleep a whole millisecond, then 2, 5, 10... on the first conflict),
 * then 1 ms, then 10 ms at a time, BUSY_TIMEOUT_MS in all. */
static int busy_wait(void *arg, int count)
{
        long us = count < 20 ? 100 : count < 100 ? 1000 : 10000;
        long waited_ms = count < 20 ? count / 10 : count < 100 ? 2 + (count - 20) : 82 + (count - 100) * 10;

        (void)arg;
        if (waited_ms >= BUSY_TIMEOUT_MS)
                return 0;
        usleep((useconds_t)us);
        return 1;
}

/* Checks that the database file <path> exists: -ENOENT "no database at
 * PATH" if it does not. */
static int check_exists(const char *path, char *err, size_t errsz)
{
        struct stat sb;

        if (stat(path, &sb) == -1) {
                int r = -errno;

                if (r == -ENOENT || r == -ENOTDIR)
                        snprintf(err, errsz, "no database at %s", path);
                else
                        snprintf(err, errsz, "database %s: %s", path, strerror(-r));
                return r == -ENOTDIR ? -ENOENT : r;
        }
        if (!S_ISREG(sb.st_mode)) {
                snprintf(err, errsz, "database %s is not a regular file", path);
                return -EINVAL;
        }
        return 0;
}

int db_sqlite_open(const char *path, bool create, bool *ret_created, struct db **ret, char *err,
                   size_t errsz)
{
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        bool created = false;
        int version, rc, r;

        if (path == NULL || path[0] == '\0') {
                snprintf(err, errsz, "no database file given");
                return -EINVAL;
        }
        r = create ? create_file(path, &created, err, errsz) : check_exists(path, err, errsz);
        if (r < 0)
                return r;

        /* Never SQLITE_OPEN_CREATE: a file deleted since is not made again. */
        rc = sqlite3_open_v2(path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_EXRESCODE,
                             NULL);
        if (rc != SQLITE_OK) {
                snprintf(err, errsz, "database %s: cannot open it: %s", path,
                         db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
                r = rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
                goto fail;
        }
        sqlite3_extended_result_codes(db, 1);
        sqlite3_busy_handler(db, busy_wait, NULL);

        /* Only an initialisation gives an empty file its schema: anything
         * else is told there is no database yet. */
        if (!create) {
                r = pc_sqlite_user_version(db, &version);
                if (r < 0) {
                        snprintf(err, errsz, "database %s: cannot read it: %s", path,
                                 sqlite3_errmsg(db));
                        goto fail;
                }
                if (version == 0) {
                        snprintf(err, errsz, "no database at %s (the file is there, but empty "
                                 "of Portcullis's schema)", path);
                        r = -ENOENT;
                        goto fail;
                }
        }

        /* Refuses a newer database before anything below can touch it.
         * Foreign keys are still off (a connection's default): a migration
         * that rebuilds a parent table must not cascade. */
        r = pc_sqlite_migrate(db, path, err, errsz);
        if (r < 0)
                goto fail;

        /* Per connection; must be outside a transaction.  Check it took:
         * a SQLite built without foreign keys would silently ignore it. */
        r = -EIO;
        if (sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(db, "PRAGMA foreign_keys", -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 0) != 1) {
                snprintf(err, errsz, "database %s: cannot enable foreign keys: %s", path,
                         sqlite3_errmsg(db));
                goto fail;
        }
        sqlite3_finalize(st);
        st = NULL;

        r = -EIO;
        if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW || sqlite3_column_text(st, 0) == NULL ||
            strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
                snprintf(err, errsz, "database %s: cannot switch it to WAL mode: %s", path,
                         sqlite3_errmsg(db));
                goto fail;
        }
        sqlite3_finalize(st);
        st = NULL;

        r = sq_wrap(db, path, ret, err, errsz);
        if (r < 0)
                goto fail;
        if (ret_created != NULL)
                *ret_created = created;
        return 0;
fail:
        sqlite3_finalize(st);
        sqlite3_close_v2(db);
        return r;
}

/* ---- read-only opening ---------------------------------------------- */

/* SQLite opens a read-only database's -wal (and -shm) for writing when it
 * can: as root, always.  This VFS, a thin layer over the default one,
 * asks for every file of the database read-only and never creates one;
 * "readonly_shm=1" does the same for the -shm.  Temporary files (sorting)
 * are left alone: they go to memory (temp_store). */
static sqlite3_vfs ro_vfs;

static int ro_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags)
{
        sqlite3_vfs *real = vfs->pAppData;

        if (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL |
                     SQLITE_OPEN_SUPER_JOURNAL)) {
                flags &= ~(SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_DELETEONCLOSE);
                flags |= SQLITE_OPEN_READONLY;
        }
        return real->xOpen(real, name, file, flags, out_flags);
}

/* Registers the read-only VFS once (the proxy is single-threaded). */
static int ro_vfs_register(void)
{
        sqlite3_vfs *real;

        if (ro_vfs.zName != NULL)
                return SQLITE_OK;
        real = sqlite3_vfs_find(NULL);
        if (real == NULL)
                return SQLITE_ERROR;
        ro_vfs = *real;
        ro_vfs.pNext = NULL;
        ro_vfs.zName = "portcullis-readonly";
        ro_vfs.pAppData = real;
        ro_vfs.xOpen = ro_open;
        return sqlite3_vfs_register(&ro_vfs, 0);
}

/* "file:" URI of <path> with readonly_shm=1, %-escaping what URIs reserve. */
static char *ro_uri(const char *path)
{
        size_t len = strlen(path);
        char *uri = malloc(len * 3 + 32), *o;

        if (uri == NULL)
                return NULL;
        o = uri + sprintf(uri, "file:");
        for (const unsigned char *p = (const unsigned char *)path; *p != '\0'; p++) {
                if (*p == '?' || *p == '#' || *p == '%' || *p <= ' ' || *p >= 0x7f)
                        o += sprintf(o, "%%%02X", *p);
                else
                        *o++ = (char)*p;
        }
        strcpy(o, "?readonly_shm=1");
        return uri;
}

int db_sqlite_open_readonly(const char *path, struct db **ret, char *err, size_t errsz)
{
        sqlite3 *db = NULL;
        _cleanup_free_ char *uri = NULL;
        int version, rc, r;

        if (path == NULL || path[0] == '\0') {
                snprintf(err, errsz, "no database file given");
                return -EINVAL;
        }
        r = check_exists(path, err, errsz);
        if (r < 0)
                return r;
        uri = ro_uri(path);
        if (uri == NULL || ro_vfs_register() != SQLITE_OK) {
                snprintf(err, errsz, "database %s: out of memory", path);
                return -ENOMEM;
        }
        rc = sqlite3_open_v2(uri, &db,
                             SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOFOLLOW |
                                     SQLITE_OPEN_EXRESCODE,
                             ro_vfs.zName);
        if (rc != SQLITE_OK) {
                snprintf(err, errsz, "database %s: cannot open it read-only: %s", path,
                         db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
                r = rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
                goto fail;
        }
        sqlite3_extended_result_codes(db, 1);
        sqlite3_busy_handler(db, busy_wait, NULL);
        if (sqlite3_exec(db, "PRAGMA temp_store = MEMORY", NULL, NULL, NULL) != SQLITE_OK ||
            pc_sqlite_user_version(db, &version) < 0) {
                snprintf(err, errsz, "database %s: cannot read it: %s (a WAL database needs its "
                         "-wal and -shm, which the agent keeps)", path, sqlite3_errmsg(db));
                r = -EIO;
                goto fail;
        }
        if (version != pc_sqlite_schema_latest()) {
                snprintf(err, errsz, "database %s is at schema version %d, this build reads %d "
                         "(run the agent or `portcullis init` of this build first)", path, version,
                         pc_sqlite_schema_latest());
                r = -EPROTONOSUPPORT;
                goto fail;
        }
        r = sq_wrap(db, path, ret, err, errsz);
        if (r < 0)
                goto fail;
        return 0;
fail:
        sqlite3_close_v2(db);
        return r;
}
