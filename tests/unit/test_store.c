/* The store, on both engines: schema and opening, every change with its
 * audit and outbox rows, atomicity of failed changes, load into the
 * model, URL parsing.
 *
 * Without PC_TEST_PG_URL (the unit suite) every test runs on SQLite,
 * against a database file in a temporary folder.  With it (pg/store:
 * tests/pg/store_test.sh, a throwaway cluster), the tests that are not
 * SQLite's own run on that PostgreSQL database instead, each on an empty
 * one: the schema public is dropped and made again before every test, so
 * the URL must name a database the tests own.  A URL that does not work
 * fails the run; nothing is skipped.  SQLite's own tests: migrations from
 * its old schema versions, its file deleted or replaced under the store,
 * its query plans, and URL parsing (no engine at all); a test of both
 * engines checks what only SQLite has (file modes, WAL) on SQLite only.
 *
 * Checks read what the store's API shows.  A row it does not show, or a
 * change it refuses to make (an exception ended early, a schema rule's
 * refusal), goes through the store's driver (db.h) on a connection of the
 * test's own, so that the same check runs on both engines. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "store/db.h"
#include "store/store-internal.h" /* the migrations, for the upgrade tests */

#define INJECTION "x'); DROP TABLE vps;--"

/* The engine the current test runs on. */
enum engine {
        ENGINE_SQLITE,
        ENGINE_PG,
};

static struct pc_config *cfg;
static enum engine engine;
static char dir[64];      /* the temporary folder */
static char dbpath[128];  /* SQLite: dir/state/portcullis.db: "state" does not exist yet */
static char url[512];     /* the store's: sqlite:dbpath, or PostgreSQL's */
static const char *pg_url; /* PC_TEST_PG_URL */
static PGconn *pg_admin;  /* empties the PostgreSQL database before each test */

static const struct pc_actor alice = { .by = "alice", .reason = "customer ticket" };
static const struct pc_actor bob = { .by = "bob" };

static int group_setup(void **state)
{
        char err[1024];

        if (pc_config_load(PC_SOURCE_ROOT "/etc/portcullis.yaml", &cfg, err, sizeof(err)) < 0) {
                fprintf(stderr, "%s\n", err);
                return -1;
        }
        return 0;
}

static int group_teardown(void **state)
{
        cfg = pc_config_free(cfg);
        return 0;
}

/* Each test: a temporary folder, and the SQLite database's name in it. */
static int setup(void **state)
{
        engine = ENGINE_SQLITE;
        snprintf(dir, sizeof(dir), "/tmp/pc-test-store-XXXXXX");
        if (mkdtemp(dir) == NULL)
                return -1;
        snprintf(dbpath, sizeof(dbpath), "%s/state/portcullis.db", dir);
        snprintf(url, sizeof(url), "sqlite:%s", dbpath);
        return 0;
}

/* Each test on PostgreSQL: a temporary folder too, and an empty database.
 * The connections a failed test left open (its stores) are ended first,
 * so that none holds a lock the DROP would wait for. */
static int setup_pg(void **state)
{
        PGresult *res;
        int r = setup(state);

        if (r < 0)
                return r;
        engine = ENGINE_PG;
        snprintf(url, sizeof(url), "%s", pg_url);
        res = PQexec(pg_admin, "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND usename = current_user "
                               "AND pid <> pg_backend_pid();"
                               "DROP SCHEMA public CASCADE;"
                               "CREATE SCHEMA public");
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                fprintf(stderr, "emptying the database %s: %s", pg_url, PQresultErrorMessage(res));
                r = -1;
        }
        PQclear(res);
        return r;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
        return remove(path);
}

static int teardown(void **state)
{
        return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- helpers ---------------------------------------------------------- */

static struct pc_store *open_store(void)
{
        struct pc_store *s = NULL;
        char err[512];
        int r = pc_store_init(url, NULL, &s, err, sizeof(err));

        if (r < 0)
                fail_msg("pc_store_init(%s): %s", url, err);
        return s;
}

/* A driver connection of the test's own to the test's database. */
static struct db *raw_open(void)
{
        struct db *db = NULL;
        char err[512];
        int r = engine == ENGINE_PG ? db_pg_open(pg_url, false, NULL, &db, err, sizeof(err))
                                    : db_sqlite_open(dbpath, false, NULL, &db, err, sizeof(err));

        if (r < 0)
                fail_msg("opening %s: %s", url, err);
        return db;
}

/* Prepares <sql> (a string literal, in the dialect both engines share:
 * db.h) on <db> and binds the arguments in <ap> as <fmt> says: 'i' an
 * int64_t, 't' a const char *. */
static struct db_stmt *raw_prepare(struct db *db, const char *sql, const char *fmt, va_list ap)
{
        struct db_stmt *st = NULL;

        if (db_prepare(db, sql, &st) < 0)
                fail_msg("preparing %s: %s", sql, db_errmsg(db));
        for (int i = 0; fmt[i] != '\0'; i++) {
                int r = fmt[i] == 'i' ? db_bind_int64(st, i + 1, va_arg(ap, int64_t))
                                      : db_bind_text(st, i + 1, va_arg(ap, const char *));

                if (r < 0)
                        fail_msg("binding parameter %d of %s: %s", i + 1, sql, db_errmsg(db));
        }
        return st;
}

/* Runs the query <sql> with parameters as raw_prepare() on a connection
 * of our own and returns the first column of the first row as an
 * integer (-1 if no row). */
static int64_t raw_int(const char *sql, const char *fmt, ...)
{
        struct db *db = raw_open();
        struct db_stmt *st;
        int64_t v = -1;
        va_list ap;
        int r;

        va_start(ap, fmt);
        st = raw_prepare(db, sql, fmt, ap);
        va_end(ap);
        r = db_step(st);
        if (r < 0)
                fail_msg("%s: %s", sql, db_errmsg(db));
        if (r > 0)
                v = db_column_int64(st, 0);
        db_stmt_release(st);
        db_close(db);
        return v;
}

/* Runs <sql>, a change, with the parameters in <ap> as raw_prepare() on
 * <db>: 0, or the driver's negative errno with the engine's words in
 * <msg> (<size> bytes; may be NULL). */
static int raw_exec_va(struct db *db, char *msg, size_t size, const char *sql, const char *fmt, va_list ap)
{
        struct db_stmt *st = raw_prepare(db, sql, fmt, ap);
        int r = db_step(st);

        if (msg != NULL)
                snprintf(msg, size, "%s", r < 0 ? db_errmsg(db) : "");
        db_stmt_release(st);
        return r < 0 ? r : 0;
}

/* The same on <db>, a connection of the test's (raw_open). */
static int raw_exec_on(struct db *db, char *msg, size_t size, const char *sql, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = raw_exec_va(db, msg, size, sql, fmt, ap);
        va_end(ap);
        return r;
}

/* The same on a connection of its own. */
static int raw_exec(char *msg, size_t size, const char *sql, const char *fmt, ...)
{
        struct db *db = raw_open();
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = raw_exec_va(db, msg, size, sql, fmt, ap);
        va_end(ap);
        db_close(db);
        return r;
}

/* Rows of <table>, a word (a literal). */
#define count_rows(table) raw_int("SELECT count(*) FROM " table, "")

/* SQLite's own tests: the first column of <sql>'s first row, as an
 * integer (-1 if no row) or as text into <buf> ("" for no row or NULL),
 * read with SQLite itself (PRAGMAs, a database the store would refuse). */
static int64_t sq_int(const char *sql)
{
        sqlite3 *db;
        sqlite3_stmt *st;
        int64_t v = -1;

        assert_int_equal(engine, ENGINE_SQLITE);
        assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        if (sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return v;
}

static char *sq_text(const char *sql, char *buf, size_t size)
{
        sqlite3 *db;
        sqlite3_stmt *st;

        assert_int_equal(engine, ENGINE_SQLITE);
        buf[0] = '\0';
        assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
                snprintf(buf, size, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        sqlite3_close(db);
        return buf;
}

/* A VPS on <site> with the given addresses (NULL-terminated). */
static struct pc_vps *make_vps(const char *id, const char *site, ...)
{
        struct pc_vps *v;
        va_list ap;
        const char *a;

        assert_int_equal(pc_vps_new(&v), 0);
        snprintf(v->id, sizeof(v->id), "%s", id);
        snprintf(v->owner, sizeof(v->owner), "owner-%s@example.net", id);
        snprintf(v->lang, sizeof(v->lang), "en");
        v->site = pc_config_site(cfg, site);
        assert_non_null(v->site);
        va_start(ap, site);
        while ((a = va_arg(ap, const char *)) != NULL) {
                struct pc_prefix p;

                assert_int_equal(pc_parse_prefix(a, false, &p), 0);
                assert_int_equal(pc_vps_add_addr(v, &p), 0);
        }
        va_end(ap);
        return v;
}

static void add_vps(struct pc_store *s, const char *id, const char *site, const char *addr)
{
        struct pc_vps *v = make_vps(id, site, addr, NULL);
        int r = pc_store_vps_add(s, v, &alice);

        if (r < 0)
                fail_msg("vps_add %s: %s", id, pc_store_errmsg(s));
        pc_vps_free(v);
}

static struct pc_model *load(struct pc_store *s)
{
        struct pc_model *m;
        int r;

        assert_int_equal(pc_model_new(cfg, &m), 0);
        r = pc_store_load(s, m);
        if (r < 0)
                fail_msg("load: %s", pc_store_errmsg(s));
        return m;
}

static struct pc_exception exception_for(const char *service, int64_t until, int64_t ticket)
{
        struct pc_exception e = { 0 };

        snprintf(e.service, sizeof(e.service), "%s", service);
        snprintf(e.reason, sizeof(e.reason), "runs a mail server");
        e.until = until;
        e.ticket_id = ticket;
        return e;
}

/* Collects audit entries. */
struct audit_rows {
        size_t n;
        struct pc_audit_entry e[64];
        char before[64][2048];
        char after[64][2048];
};

static int collect_audit(const struct pc_audit_entry *e, void *userdata)
{
        struct audit_rows *rows = userdata;

        if (rows->n == PC_ARRAY_SIZE(rows->e))
                return -ENOSPC;
        rows->e[rows->n] = *e;
        snprintf(rows->before[rows->n], sizeof(rows->before[0]), "%s",
                 e->before != NULL ? e->before : "(null)");
        snprintf(rows->after[rows->n], sizeof(rows->after[0]), "%s",
                 e->after != NULL ? e->after : "(null)");
        rows->e[rows->n].before = rows->e[rows->n].after = NULL;
        rows->n++;
        return 0;
}

static struct audit_rows *audit_of(struct pc_store *s, const char *vps_id, size_t limit)
{
        struct audit_rows *rows = calloc(1, sizeof(*rows));

        assert_non_null(rows);
        assert_int_equal(pc_store_audit_list(s, vps_id, limit, collect_audit, rows), 0);
        return rows;
}

/* The value of <key> in the JSON object <text>, as text ("null" for null). */
static const char *json_field(const char *text, const char *key, char *buf, size_t size)
{
        json_t *o = json_loads(text, 0, NULL), *v;

        assert_non_null(o);
        v = json_object_get(o, key);
        if (v == NULL)
                snprintf(buf, size, "(missing)");
        else if (json_is_string(v))
                snprintf(buf, size, "%s", json_string_value(v));
        else if (json_is_integer(v))
                snprintf(buf, size, "%lld", (long long)json_integer_value(v));
        else {
                char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

                snprintf(buf, size, "%s", d);
                free(d);
        }
        json_decref(o);
        return buf;
}

/* ---- what the API shows, counted -------------------------------------- */

static int count_vps_cb(const char *id, void *userdata)
{
        (*(size_t *)userdata)++;
        return 0;
}

/* The VPSes registered. */
static size_t n_vps(struct pc_store *s)
{
        size_t n = 0;

        assert_int_equal(pc_store_vps_ids(s, NULL, NULL, NULL, 0, count_vps_cb, &n), 0);
        return n;
}

struct audit_match {
        const char *action, *by; /* NULL: any */
        size_t n;
};

static int audit_match_cb(const struct pc_audit_entry *e, void *userdata)
{
        struct audit_match *m = userdata;

        if ((m->action == NULL || strcmp(e->action, m->action) == 0) && (m->by == NULL || strcmp(e->by, m->by) == 0))
                m->n++;
        return 0;
}

/* The audit entries of <vps_id> (NULL: all) whose action is <action>
 * (NULL: any), by <by> (NULL: anyone). */
static size_t n_audit_by(struct pc_store *s, const char *vps_id, const char *action, const char *by)
{
        struct audit_match m = { .action = action, .by = by };

        if (pc_store_audit_list(s, vps_id, 0, audit_match_cb, &m) < 0)
                fail_msg("audit_list: %s", pc_store_errmsg(s));
        return m.n;
}

static size_t n_audit(struct pc_store *s, const char *vps_id, const char *action)
{
        return n_audit_by(s, vps_id, action, NULL);
}

struct notif_match {
        const char *kind, *channel, *recipient; /* NULL: any */
        size_t n;
        char *payload; /* the newest match's, if not NULL */
        size_t size;
};

static int notif_match_cb(const struct pc_notification *n, void *userdata)
{
        struct notif_match *m = userdata;

        if ((m->kind != NULL && strcmp(n->kind, m->kind) != 0) ||
            (m->channel != NULL && strcmp(n->channel, m->channel) != 0) ||
            (m->recipient != NULL && strcmp(n->recipient, m->recipient) != 0))
                return 0;
        if (m->n++ == 0 && m->payload != NULL) /* newest first */
                snprintf(m->payload, m->size, "%s", n->payload);
        return 0;
}

/* The notifications in the outbox (of every VPS, removed ones included) of
 * <kind>, on <channel>, to <recipient> (each NULL: any); the newest one's
 * payload into <payload> (<size> bytes, "" if none; may be NULL). */
static size_t n_notifications(struct pc_store *s, const char *kind, const char *channel, const char *recipient,
                              char *payload, size_t size)
{
        struct notif_match m = { kind, channel, recipient, 0, payload, size };

        if (payload != NULL)
                payload[0] = '\0';
        if (pc_store_notification_list(s, NULL, NULL, 0, 0, notif_match_cb, &m) < 0)
                fail_msg("notification_list: %s", pc_store_errmsg(s));
        return m.n;
}

static int count_action_cb(const struct pc_store_action *a, void *userdata)
{
        (*(size_t *)userdata)++;
        return 0;
}

/* The actions (filters, suspensions) of every VPS, lifted and ended ones
 * too. */
static size_t n_actions(struct pc_store *s)
{
        size_t n = 0;

        assert_int_equal(pc_store_action_list(s, NULL, 0, false, pc_now(), 0, count_action_cb, &n), 0);
        return n;
}

static int count_incident_cb(const struct pc_incident *i, void *userdata)
{
        (*(size_t *)userdata)++;
        return 0;
}

/* The open incidents of every VPS. */
static size_t n_open_incidents(struct pc_store *s)
{
        size_t n = 0;

        assert_int_equal(pc_store_incident_list(s, NULL, NULL, true, 0, count_incident_cb, &n), 0);
        return n;
}

/* <text> parsed, for the lookups below. */
static struct pc_prefix pfx(const char *text)
{
        struct pc_prefix p;

        assert_int_equal(pc_parse_prefix(text, false, &p), 0);
        return p;
}

/* Who holds <text> among <what>, except <except>: "vps-id what", or "". */
static const char *holder(struct pc_store *s, const char *text, const char *except, unsigned what)
{
        static char buf[128];
        struct pc_prefix p = pfx(text);
        struct pc_addr_holder h;
        int r = pc_store_addr_holder(s, &p, except, what, pc_now(), &h);

        if (r < 0)
                fail_msg("addr_holder %s: %s", text, pc_store_errmsg(s));
        if (r == 0)
                return "";
        snprintf(buf, sizeof(buf), "%s %s%s", h.vps_id, h.what, h.exception ? " (granted)" : "");
        return buf;
}

#define ALL (PC_ADDR_REGISTERED | PC_ADDR_GRANTED)

/* ---- schema and opening ------------------------------------------------ */

static void test_open_creates_schema(void **state)
{
        static const char *const tables[] = {
                "SELECT count(*) FROM vps",          "SELECT count(*) FROM vps_address",
                "SELECT count(*) FROM ticket",       "SELECT count(*) FROM ticket_event",
                "SELECT count(*) FROM exception",    "SELECT count(*) FROM incident",
                "SELECT count(*) FROM action",       "SELECT count(*) FROM notification",
                "SELECT count(*) FROM audit",        "SELECT count(*) FROM api_token",
                "SELECT count(*) FROM vps_attempt",
        };
        struct pc_store *s = open_store();
        struct stat sb;
        char buf[64], parent[128];
        int v = -1;

        assert_int_equal(pc_store_schema_latest(), 16);
        assert_int_equal(pc_store_schema_version(s, &v), 0);
        assert_int_equal(v, pc_store_schema_latest());
        for (size_t i = 0; i < PC_ARRAY_SIZE(tables); i++)
                assert_int_equal(raw_int(tables[i], ""), 0);

        if (engine == ENGINE_SQLITE) {
                assert_int_equal(sq_int("PRAGMA user_version"), pc_store_schema_latest());
                assert_string_equal(sq_text("PRAGMA journal_mode", buf, sizeof(buf)), "wal");
                /* The parent folder was created 0750, the file is 0640. */
                snprintf(parent, sizeof(parent), "%s/state", dir);
                assert_int_equal(stat(parent, &sb), 0);
                assert_int_equal(sb.st_mode & 07777, 0750);
                assert_int_equal(stat(dbpath, &sb), 0);
                assert_int_equal(sb.st_mode & 07777, 0640);
        }

        /* Reopening is idempotent and keeps the data. */
        add_vps(s, "vps-101", "milano", "192.0.2.10");
        s = pc_store_close(s);
        assert_null(s);
        s = open_store();
        assert_int_equal(pc_store_schema_version(s, &v), 0);
        assert_int_equal(v, pc_store_schema_latest());
        assert_int_equal(n_vps(s), 1);
        pc_store_close(s);
        assert_null(pc_store_close(NULL));
}

/* A database written by a newer Portcullis is refused, saying so, and
 * left as it is. */
static void test_newer_schema_refused(void **state)
{
        struct pc_store *s = NULL;
        char err[512], buf[64], parent[128];

        if (engine == ENGINE_SQLITE) {
                sqlite3 *db;

                snprintf(parent, sizeof(parent), "%s/state", dir);
                assert_int_equal(mkdir(parent, 0750), 0);
                assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
                assert_int_equal(sqlite3_exec(db, "CREATE TABLE future (x); PRAGMA user_version = 99",
                                              NULL, NULL, NULL),
                                 SQLITE_OK);
                sqlite3_close(db);
        } else {
                pc_store_close(open_store());
                assert_int_equal(raw_exec(NULL, 0, "UPDATE schema_version SET version = 99", ""), 0);
        }
        assert_int_equal(pc_store_open(url, &s, err, sizeof(err)), -EPROTONOSUPPORT);
        assert_null(s);
        assert_non_null(strstr(err, "is at schema version 99"));
        if (engine == ENGINE_SQLITE) {
                snprintf(buf, sizeof(buf), "up to %d; upgrade portcullis", pc_store_schema_latest());
                assert_non_null(strstr(err, "is at schema version 99 but this portcullis knows versions "));
                assert_non_null(strstr(err, buf));
                assert_non_null(strstr(err, dbpath));
                /* Untouched: same version, no tables of ours, journal mode as it was. */
                assert_int_equal(sq_int("PRAGMA user_version"), 99);
                assert_int_equal(sq_int("SELECT count(*) FROM sqlite_master WHERE name = 'vps'"), 0);
                assert_string_equal(sq_text("PRAGMA journal_mode", buf, sizeof(buf)), "delete");
        } else {
                snprintf(buf, sizeof(buf), "this build reads %d", pc_store_schema_latest());
                assert_non_null(strstr(err, buf));
        }
        /* Nor does an initialisation touch it. */
        assert_int_equal(pc_store_init(url, NULL, &s, err, sizeof(err)), -EPROTONOSUPPORT);
        assert_non_null(strstr(err, "is at schema version 99"));
        assert_int_equal(pc_store_open_readonly(url, &s, err, sizeof(err)), -EPROTONOSUPPORT);
        assert_null(s);
        if (engine == ENGINE_SQLITE)
                assert_int_equal(sq_int("PRAGMA user_version"), 99);
}

static void test_urls(void **state)
{
        struct pc_store *s = NULL;
        char err[512], u[256], cwd[4096];

        /* PostgreSQL: a server that is not there (a Unix socket's folder
         * that does not exist: no network), its password never shown. */
        assert_int_equal(pc_store_open("postgresql://u:s3cret@/portcullis?host=/nonexistent/pg", &s, err,
                                       sizeof(err)),
                         -EIO);
        assert_non_null(strstr(err, "cannot connect"));
        assert_non_null(strstr(err, "host=/nonexistent/pg"));
        assert_null(strstr(err, "s3cret"));
        assert_int_equal(pc_store_open("postgres:///y?host=/nonexistent/pg", &s, err, sizeof(err)), -EIO);
        assert_int_equal(pc_store_open("foo://bar", &s, err, sizeof(err)), -EPROTONOSUPPORT);
        assert_string_equal(err, "unknown database URL scheme in 'foo://bar' (expected sqlite:PATH or "
                                 "postgresql://...)");
        assert_int_equal(pc_store_open("/var/lib/x.db", &s, err, sizeof(err)), -EPROTONOSUPPORT);
        assert_int_equal(pc_store_open("sqlite:", &s, err, sizeof(err)), -EINVAL);
        assert_int_equal(pc_store_open("sqlite://host/x.db", &s, err, sizeof(err)), -EINVAL);
        assert_null(s);

        /* sqlite:///abs */
        snprintf(u, sizeof(u), "sqlite://%s", dbpath);
        assert_int_equal(pc_store_init(u, NULL, &s, err, sizeof(err)), 0);
        s = pc_store_close(s);
        assert_int_equal(access(dbpath, F_OK), 0);
        assert_int_equal(pc_store_open(u, &s, err, sizeof(err)), 0);
        s = pc_store_close(s);

        /* sqlite:relative */
        assert_non_null(getcwd(cwd, sizeof(cwd)));
        assert_int_equal(chdir(dir), 0);
        assert_int_equal(pc_store_init("sqlite:rel/r.db", NULL, &s, err, sizeof(err)), 0);
        s = pc_store_close(s);
        assert_int_equal(access("rel/r.db", F_OK), 0);
        assert_int_equal(chdir(cwd), 0);
}

/* Only pc_store_init() creates a database: pc_store_open() and the
 * read-only open say there is none and leave nothing behind (SQLite: no
 * file or folder; PostgreSQL: no schema). */
static void test_open_never_creates(void **state)
{
        struct pc_store *s = NULL;
        char err[512], want[256], parent[128];
        bool created = false;
        int fd;

        snprintf(want, sizeof(want), "no database at %s", engine == ENGINE_SQLITE ? dbpath : "");
        snprintf(parent, sizeof(parent), "%s/state", dir);
        assert_int_equal(pc_store_open(url, &s, err, sizeof(err)), -ENOENT);
        assert_non_null(strstr(err, want));
        assert_null(s);
        assert_int_equal(pc_store_open_readonly(url, &s, err, sizeof(err)), -ENOENT);
        assert_non_null(strstr(err, want));
        assert_null(s);
        assert_int_equal(pc_store_open(url, &s, err, sizeof(err)), -ENOENT); /* still none */
        if (engine == ENGINE_SQLITE) {
                assert_string_equal(err, want);
                assert_int_equal(access(parent, F_OK), -1);

                /* An empty file (an initialisation that died before its
                 * schema) is no database either, and stays empty. */
                assert_int_equal(mkdir(parent, 0750), 0);
                fd = open(dbpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
                assert_true(fd >= 0);
                close(fd);
                assert_int_equal(pc_store_open(url, &s, err, sizeof(err)), -ENOENT);
                assert_non_null(strstr(err, want));
                assert_int_equal(sq_int("PRAGMA user_version"), 0);
                /* init gives it the schema, then finds it there. */
                assert_int_equal(pc_store_init(url, &created, &s, err, sizeof(err)), 0);
                assert_false(created);
                s = pc_store_close(s);
                assert_int_equal(unlink(dbpath), 0);
        }

        /* init creates it, then finds it there. */
        assert_int_equal(pc_store_init(url, &created, &s, err, sizeof(err)), 0);
        assert_true(created);
        s = pc_store_close(s);
        assert_int_equal(pc_store_init(url, &created, &s, err, sizeof(err)), 0);
        assert_false(created);
        s = pc_store_close(s);
        assert_int_equal(pc_store_open(url, &s, err, sizeof(err)), 0);
        pc_store_close(s);
}

/* An operation's transaction: its checks and writes see one state; a
 * change inside that fails is rolled back alone (a savepoint), and the
 * operation's failure discards everything it wrote. */
static void test_operation_transaction(void **state)
{
        struct pc_store *s = open_store();
        struct pc_vps *v = make_vps("vps-101", "milano", "192.0.2.10", NULL);
        struct pc_model *m;

        assert_int_equal(pc_store_tx_begin(s), 0);
        assert_int_equal(pc_store_vps_add(s, v, &alice), 0);
        assert_int_equal(pc_store_vps_add(s, v, &alice), -EEXIST); /* rolled back alone */
        add_vps(s, "vps-102", "milano", "192.0.2.11");
        assert_int_equal(pc_store_tx_end(s, -EBUSY), -EBUSY); /* the operation refused: nothing stays */
        assert_int_equal(n_vps(s), 0);
        assert_int_equal(n_audit(s, NULL, NULL), 0);

        assert_int_equal(pc_store_tx_begin(s), 0);
        assert_int_equal(pc_store_vps_add(s, v, &alice), 0);
        assert_int_equal(pc_store_vps_add(s, v, &alice), -EEXIST);
        assert_int_equal(pc_store_tx_begin(s), 0); /* nests */
        add_vps(s, "vps-102", "milano", "192.0.2.11");
        assert_int_equal(pc_store_tx_end(s, 0), 0);
        assert_int_equal(pc_store_tx_end(s, 0), 0);
        assert_int_equal(n_vps(s), 2);
        assert_int_equal(n_audit(s, NULL, NULL), 2);
        m = load(s);
        assert_int_equal(pc_model_count(m), 2);
        pc_model_free(m);
        pc_vps_free(v);
        pc_store_close(s);
}

/* A statement that fails inside a transaction: SQLite undoes it alone,
 * PostgreSQL aborts the transaction.  Either way a commit never says it
 * wrote what it did not (PostgreSQL answers COMMIT with a rollback there:
 * the driver reports it), and the connection goes on. */
static void test_failed_statement_in_tx(void **state)
{
        struct db *db;
        char msg[256];
        int r;

        pc_store_close(open_store());
        db = raw_open();
        assert_int_equal(db_begin(db), 0);
        assert_int_equal(raw_exec_on(db, msg, sizeof(msg), "INSERT INTO vps (id, owner, lang, site, created) "
                                                          "VALUES (?, 'o@example.net', 'en', 'milano', 1)",
                                     "t", "vps-101"),
                         0);
        assert_int_equal(raw_exec_on(db, msg, sizeof(msg), "INSERT INTO exception (vps_id, service, \"by\", created) "
                                                          "VALUES (?, 'smtp', 'alice', 1)",
                                     "t", "vps-999"),
                         -ENOENT);
        r = db_commit(db);
        assert_false(db_in_tx(db));
        if (engine == ENGINE_PG) {
                assert_int_equal(r, -EIO);
                assert_non_null(strstr(db_errmsg(db), "rolled back"));
        } else
                assert_int_equal(r, 0);
        assert_int_equal(raw_int("SELECT count(*) FROM vps", ""), r == 0 ? 1 : 0);
        /* and the connection takes the next transaction */
        assert_int_equal(db_begin(db), 0);
        assert_int_equal(raw_exec_on(db, msg, sizeof(msg), "INSERT INTO vps (id, owner, lang, site, created) "
                                                          "VALUES (?, 'o@example.net', 'en', 'milano', 1)",
                                     "t", "vps-102"),
                         0);
        assert_int_equal(db_commit(db), 0);
        assert_int_equal(raw_int("SELECT count(*) FROM vps WHERE id = ?", "t", "vps-102"), 1);
        db_close(db);
}

/* A change written to a database file deleted, or replaced, under the
 * open store fails: SQLite alone would write it to the unlinked file and
 * report success. */
static void test_write_after_delete(void **state)
{
        struct pc_store *s = open_store();
        struct pc_vps *v = make_vps("vps-102", "milano", "192.0.2.11", NULL);
        char path[160];

        add_vps(s, "vps-101", "milano", "192.0.2.10");
        assert_int_equal(unlink(dbpath), 0);
        assert_int_equal(pc_store_vps_add(s, v, &alice), -ESTALE);
        assert_non_null(strstr(pc_store_errmsg(s), "was deleted or replaced while open"));
        assert_non_null(strstr(pc_store_errmsg(s), dbpath));
        s = pc_store_close(s);

        /* Replaced: a new database renamed over the path. */
        s = open_store();
        add_vps(s, "vps-101", "milano", "192.0.2.10");
        {
                struct pc_store *other = NULL;
                char err[512], u[200];

                snprintf(path, sizeof(path), "%s/state/other.db", dir);
                snprintf(u, sizeof(u), "sqlite:%s", path);
                assert_int_equal(pc_store_init(u, NULL, &other, err, sizeof(err)), 0);
                pc_store_close(other);
        }
        assert_int_equal(rename(path, dbpath), 0);
        assert_int_equal(pc_store_vps_add(s, v, &alice), -ESTALE);
        pc_store_close(s);
        pc_vps_free(v);
}

/* Whether each of this process's descriptors is open, into <open_fds>. */
static void fds_open(bool *open_fds, size_t n)
{
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;

        assert_non_null(d);
        memset(open_fds, 0, n * sizeof(*open_fds));
        while ((de = readdir(d)) != NULL) {
                int fd = atoi(de->d_name);

                if (de->d_name[0] != '.' && fd != dirfd(d) && fd >= 0 && (size_t)fd < n)
                        open_fds[fd] = true;
        }
        closedir(d);
}

/* Every descriptor the store opens (SQLite: the database, its -wal and
 * -shm; PostgreSQL: the server's socket) is close-on-exec. */
static void test_fds_cloexec(void **state)
{
        bool before[1024], after[1024];
        struct pc_store *s;
        int checked = 0;

        fds_open(before, PC_ARRAY_SIZE(before));
        s = open_store();
        add_vps(s, "vps-101", "milano", "192.0.2.10"); /* opens the -wal and -shm files */
        fds_open(after, PC_ARRAY_SIZE(after));
        for (size_t fd = 3; fd < PC_ARRAY_SIZE(after); fd++) {
                char link[64], target[512];
                ssize_t n;

                if (!after[fd] || before[fd])
                        continue;
                snprintf(link, sizeof(link), "/proc/self/fd/%zu", fd);
                n = readlink(link, target, sizeof(target) - 1);
                target[n > 0 ? n : 0] = '\0';
                if (!(fcntl((int)fd, F_GETFD) & FD_CLOEXEC))
                        fail_msg("fd %zu (%s) is not close-on-exec", fd, target);
                checked++;
        }
        assert_true(checked >= 1);
        pc_store_close(s);
}

/* ---- VPSes ------------------------------------------------------------- */

static void test_vps_roundtrip(void **state)
{
        struct pc_store *s = open_store();
        struct pc_vps *v = make_vps("vps-101", "lenoir", "192.0.2.10/32", "2001:db8:0:1::/64",
                                    "2001:db8::10", NULL);
        struct pc_model *m;
        const struct pc_vps *got;
        char buf[64];

        snprintf(v->lang, sizeof(v->lang), "it");
        snprintf(v->iface, sizeof(v->iface), "tap101");
        assert_int_equal(pc_parse_mac("52:54:00:12:34:56", v->mac), 0);
        v->has_mac = true;
        assert_int_equal(pc_store_vps_add(s, v, &alice), 0);
        pc_vps_free(v);
        add_vps(s, "vps-102", "milano", "198.51.100.7");

        m = load(s);
        assert_int_equal(pc_model_count(m), 2);
        got = pc_model_find(m, "vps-101");
        assert_non_null(got);
        assert_string_equal(got->owner, "owner-vps-101@example.net");
        assert_string_equal(got->lang, "it");
        assert_ptr_equal(got->site, pc_config_site(cfg, "lenoir"));
        assert_string_equal(got->iface, "tap101");
        assert_true(got->has_mac);
        pc_format_mac(got->mac, buf, sizeof(buf));
        assert_string_equal(buf, "52:54:00:12:34:56");
        assert_int_equal(got->n_addrs, 3);
        pc_format_prefix(&got->addrs[0], buf, sizeof(buf));
        assert_string_equal(buf, "192.0.2.10/32");
        assert_int_equal(got->addrs[0].family, AF_INET);
        pc_format_prefix(&got->addrs[1], buf, sizeof(buf));
        assert_string_equal(buf, "2001:db8:0:1::/64");
        assert_int_equal(got->addrs[1].family, AF_INET6);
        pc_format_prefix(&got->addrs[2], buf, sizeof(buf));
        assert_string_equal(buf, "2001:db8::10/128");
        assert_true(got->created > 0);
        assert_false(got->suspended);
        assert_int_equal(got->n_exceptions, 0);
        assert_int_equal(got->n_filters, 0);
        got = pc_model_find(m, "vps-102");
        assert_non_null(got);
        assert_false(got->has_mac);
        assert_int_equal(got->n_addrs, 1);
        m = pc_model_free(m);

        /* Remove: gone from the load, and its addresses with it. */
        assert_int_equal(pc_store_vps_remove(s, "vps-101", &bob), 0);
        assert_int_equal(pc_store_vps_remove(s, "vps-101", &bob), -ENOENT);
        assert_string_equal(pc_store_errmsg(s), "vps vps-101 does not exist");
        assert_int_equal(raw_int("SELECT count(*) FROM vps_address WHERE vps_id = ?", "t", "vps-101"), 0);
        assert_string_equal(holder(s, "192.0.2.10", NULL, ALL), "");
        assert_string_equal(holder(s, "2001:db8:0:1::/64", NULL, ALL), "");
        m = load(s);
        assert_int_equal(pc_model_count(m), 1);
        assert_null(pc_model_find(m, "vps-101"));
        assert_non_null(pc_model_find(m, "vps-102"));

        /* load() wants an empty model. */
        assert_int_equal(pc_store_load(s, m), -EINVAL);
        pc_model_free(m);
        pc_store_close(s);
}

static void test_vps_duplicates(void **state)
{
        struct pc_store *s = open_store();
        struct pc_vps *v;

        add_vps(s, "vps-101", "milano", "192.0.2.10");
        v = make_vps("vps-101", "milano", "192.0.2.99", NULL);
        assert_int_equal(pc_store_vps_add(s, v, &alice), -EEXIST);
        assert_string_equal(pc_store_errmsg(s), "vps vps-101 already exists");
        pc_vps_free(v);

        /* The duplicate is the second address: nothing of vps-102 stays. */
        v = make_vps("vps-102", "milano", "198.51.100.1", "192.0.2.10/32", NULL);
        assert_int_equal(pc_store_vps_add(s, v, &alice), -EEXIST);
        assert_string_equal(pc_store_errmsg(s),
                            "address 192.0.2.10/32 is already assigned to vps-101");
        pc_vps_free(v);
        assert_int_equal(pc_store_vps_fetch(s, cfg, "vps-102", &v), -ENOENT);
        assert_string_equal(holder(s, "198.51.100.1", NULL, ALL), "");

        v = make_vps("vps-103", "milano", "203.0.113.5", "203.0.113.5", NULL);
        assert_int_equal(pc_store_vps_add(s, v, &alice), -EEXIST);
        assert_string_equal(pc_store_errmsg(s), "address 203.0.113.5/32 is listed twice for vps-103");
        pc_vps_free(v);

        /* Only the one successful add was audited. */
        assert_int_equal(n_audit(s, NULL, NULL), 1);
        assert_int_equal(n_vps(s), 1);

        /* Bad input. */
        v = make_vps("VPS 104", "milano", NULL);
        assert_int_equal(pc_store_vps_add(s, v, &alice), -EINVAL);
        pc_vps_free(v);
        v = make_vps("vps-104", "milano", NULL);
        snprintf(v->owner, sizeof(v->owner), "not an email");
        assert_int_equal(pc_store_vps_add(s, v, &alice), -EINVAL);
        v->site = NULL;
        assert_int_equal(pc_store_vps_add(s, v, &alice), -EINVAL);
        pc_vps_free(v);
        {
                struct pc_actor nobody = { .by = NULL };

                v = make_vps("vps-104", "milano", NULL);
                assert_int_equal(pc_store_vps_add(s, v, &nobody), -EINVAL);
                pc_vps_free(v);
        }
        assert_int_equal(n_vps(s), 1);
        pc_store_close(s);
}

/* ---- exceptions and tickets ------------------------------------------- */

static void test_exceptions(void **state)
{
        struct pc_store *s = open_store();
        struct pc_exception e;
        struct pc_model *m;
        const struct pc_vps *got;
        int64_t id = 0, id2 = 0, now = pc_now();

        add_vps(s, "vps-101", "milano", "192.0.2.10");

        e = exception_for("smtp", 0, 0);
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &alice, &id), 0);
        assert_true(id > 0);
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &alice, &id2), -EEXIST);
        assert_int_equal(id2, 0); /* not written on failure */
        assert_string_equal(pc_store_errmsg(s),
                            "vps-101 already has an exception for service smtp (exception #1)");

        e = exception_for("vpn", now + 3600, 0);
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &bob, &id2), 0);

        m = load(s);
        got = pc_model_find(m, "vps-101");
        assert_int_equal(got->n_exceptions, 2);
        assert_int_equal(got->exceptions[0].id, id);
        assert_string_equal(got->exceptions[0].service, "smtp");
        assert_string_equal(got->exceptions[0].by, "alice");
        assert_string_equal(got->exceptions[0].reason, "runs a mail server");
        assert_int_equal(got->exceptions[0].until, 0);
        assert_int_equal(got->exceptions[0].ticket_id, 0);
        assert_true(got->exceptions[0].created >= now);
        assert_string_equal(got->exceptions[1].service, "vpn");
        assert_int_equal(got->exceptions[1].until, now + 3600);
        assert_non_null(pc_vps_exception_for(got, "smtp"));
        m = pc_model_free(m);

        /* Revoked: not loaded; revoking twice says what is missing. */
        assert_int_equal(pc_store_exception_revoke(s, "vps-101", "smtp", &bob), 0);
        assert_int_equal(pc_store_exception_revoke(s, "vps-101", "smtp", &bob), -ENOENT);
        assert_string_equal(pc_store_errmsg(s), "vps-101 has no exception for service smtp");
        assert_int_equal(pc_store_exception_revoke(s, "vps-999", "smtp", &bob), -ENOENT);
        assert_string_equal(pc_store_errmsg(s), "vps vps-999 does not exist");

        /* Over by its end time: not loaded, and a new grant may replace it. */
        assert_int_equal(raw_exec(NULL, 0, "UPDATE exception SET until = ? WHERE service = 'vpn'", "i", pc_now() - 10),
                         0);
        m = load(s);
        got = pc_model_find(m, "vps-101");
        assert_int_equal(got->n_exceptions, 0);
        m = pc_model_free(m);
        assert_int_equal(pc_store_exception_revoke(s, "vps-101", "vpn", &bob), -ENOENT);
        e = exception_for("vpn", 0, 0);
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &bob, NULL), 0);
        m = load(s);
        assert_int_equal(pc_model_find(m, "vps-101")->n_exceptions, 1);
        m = pc_model_free(m);

        /* A grant that ended already, a bad service name, an unknown VPS. */
        e = exception_for("bittorrent", now - 60, 0);
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &bob, NULL), -EINVAL);
        e = exception_for("No Such", 0, 0);
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &bob, NULL), -EINVAL);
        e = exception_for("smtp", 0, 0);
        assert_int_equal(pc_store_exception_grant(s, "vps-999", &e, &bob, NULL), -ENOENT);
        assert_string_equal(pc_store_errmsg(s), "vps vps-999 does not exist");

        /* A tenant cannot grow a VPS past the model's limit. */
        for (int i = 0; i < PC_VPS_EXCEPTIONS_MAX - 1; i++) {
                char svc[32];

                snprintf(svc, sizeof(svc), "svc-%d", i);
                e = exception_for(svc, 0, 0);
                assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &bob, NULL), 0);
        }
        e = exception_for("one-too-many", 0, 0);
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &bob, NULL), -ENOSPC);
        m = load(s);
        assert_int_equal(pc_model_find(m, "vps-101")->n_exceptions, PC_VPS_EXCEPTIONS_MAX);
        pc_model_free(m);
        pc_store_close(s);
}

/* Two handles on one database (two processes in real life) see each
 * other's changes; WAL lets one read while the other writes. */
static void test_two_handles(void **state)
{
        struct pc_store *s1 = open_store(), *s2 = open_store();
        struct pc_exception e = exception_for("smtp", 0, 0);
        struct pc_model *m;

        add_vps(s1, "vps-101", "milano", "192.0.2.10");
        assert_int_equal(pc_store_exception_grant(s2, "vps-101", &e, &bob, NULL), 0);
        assert_int_equal(pc_store_exception_grant(s1, "vps-101", &e, &bob, NULL), -EEXIST);
        m = load(s1);
        assert_int_equal(pc_model_find(m, "vps-101")->n_exceptions, 1);
        pc_model_free(m);
        pc_store_close(s1);
        pc_store_close(s2);
}

struct ticket_rows {
        size_t n;
        struct pc_ticket t[8];
};

static int collect_ticket(const struct pc_ticket *t, void *userdata)
{
        struct ticket_rows *rows = userdata;

        if (rows->n == PC_ARRAY_SIZE(rows->t))
                return -ENOSPC;
        rows->t[rows->n++] = *t;
        return 0;
}

static int count_ticket_event_cb(const struct pc_ticket_event *e, void *userdata)
{
        (*(size_t *)userdata)++;
        return 0;
}

/* The transitions of ticket <id>, its opening included. */
static size_t n_ticket_events(struct pc_store *s, int64_t id)
{
        size_t n = 0;

        assert_int_equal(pc_store_ticket_events(s, id, count_ticket_event_cb, &n), 0);
        return n;
}

static void test_tickets(void **state)
{
        struct pc_store *s = open_store();
        struct pc_ticket t = { 0 };
        struct pc_exception e;
        struct ticket_rows *rows = calloc(1, sizeof(*rows));
        int64_t t1 = 0, t2 = 0, t3 = 0;

        assert_non_null(rows);
        add_vps(s, "vps-101", "milano", "192.0.2.10");
        add_vps(s, "vps-102", "milano", "192.0.2.11");
        snprintf(t.vps_id, sizeof(t.vps_id), "vps-101");
        snprintf(t.service, sizeof(t.service), "smtp");
        snprintf(t.text, sizeof(t.text), "I run a mail server for my company");
        assert_int_equal(pc_store_ticket_open(s, &t, &alice, &t1), 0);
        snprintf(t.service, sizeof(t.service), "vpn");
        snprintf(t.text, sizeof(t.text), "%s", INJECTION);
        assert_int_equal(pc_store_ticket_open(s, &t, &alice, &t2), 0);
        snprintf(t.vps_id, sizeof(t.vps_id), "vps-102");
        assert_int_equal(pc_store_ticket_open(s, &t, &alice, &t3), 0);
        snprintf(t.vps_id, sizeof(t.vps_id), "vps-999");
        assert_int_equal(pc_store_ticket_open(s, &t, &alice, NULL), -ENOENT);
        assert_true(t1 < t2 && t2 < t3);
        /* Control characters are refused whoever writes: a fake row, an ESC. */
        snprintf(t.vps_id, sizeof(t.vps_id), "vps-101");
        snprintf(t.text, sizeof(t.text), "ok\n2026-01-01 alice exception.grant");
        assert_int_equal(pc_store_ticket_open(s, &t, &alice, NULL), -EINVAL);
        assert_string_equal(pc_store_errmsg(s),
                            "the ticket's text holds the control character U+000A at byte 3");
        snprintf(t.text, sizeof(t.text), "fine");
        assert_int_equal(pc_store_ticket_open(s, &t, &(struct pc_actor){ .by = "alice", .reason = "\x1b[2J" }, NULL), -EINVAL);
        assert_string_equal(pc_store_errmsg(s), "reason holds the control character U+001B at byte 1");

        /* Granting against a ticket approves it; a ticket of another VPS is refused. */
        e = exception_for("smtp", 0, t1);
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &bob, NULL), 0);
        e = exception_for("vpn", 0, t3);
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &bob, NULL), -EINVAL);
        assert_string_equal(pc_store_errmsg(s), "ticket #3 is for vps-102, not vps-101");
        e = exception_for("vpn", 0, 4242);
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &bob, NULL), -ENOENT);
        assert_string_equal(pc_store_errmsg(s), "ticket #4242 does not exist");
        /* ... and so are a ticket for another service, and one already answered. */
        e = exception_for("bittorrent", 0, t2);
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &bob, NULL), -EINVAL);
        assert_string_equal(pc_store_errmsg(s), "ticket #2 asks for vpn, not bittorrent");
        e = exception_for("smtp", 0, t1);
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &bob, NULL), -EEXIST);
        /* revoking the exception revokes the ticket it answered */
        assert_int_equal(pc_store_exception_revoke(s, "vps-101", "smtp", &bob), 0);
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &bob, NULL), -EALREADY);
        assert_string_equal(pc_store_errmsg(s),
                            "ticket #1 is revoked: only an open or investigating ticket can be approved (the "
                            "customer opens a new one)");

        assert_int_equal(pc_store_ticket_list(s, "vps-101", collect_ticket, rows), 0);
        assert_int_equal(rows->n, 2);
        assert_int_equal(rows->t[0].id, t2); /* newest first */
        assert_string_equal(rows->t[0].text, INJECTION);
        assert_int_equal(rows->t[0].state, PC_TICKET_OPEN);
        assert_int_equal(rows->t[1].id, t1);
        assert_int_equal(rows->t[1].state, PC_TICKET_REVOKED);
        assert_string_equal(rows->t[1].updated_by, "bob");
        assert_true(rows->t[1].exception_id > 0);
        assert_string_equal(rows->t[1].owner, "owner-vps-101@example.net");
        assert_string_equal(rows->t[1].service, "smtp");
        assert_string_equal(rows->t[1].opened_by, "alice");
        assert_string_equal(rows->t[1].vps_id, "vps-101");
        assert_true(rows->t[1].opened > 0);
        rows->n = 0;
        assert_int_equal(pc_store_ticket_list(s, NULL, collect_ticket, rows), 0);
        assert_int_equal(rows->n, 3);
        assert_int_equal(pc_store_ticket_list(s, "vps-999", collect_ticket, rows), -ENOENT);
        assert_int_equal(n_ticket_events(s, t1) + n_ticket_events(s, t2) + n_ticket_events(s, t3),
                         5); /* 3 opened, approved, revoked */

        assert_string_equal(pc_ticket_state_name(PC_TICKET_DENIED), "denied");
        assert_string_equal(pc_ticket_state_name(PC_TICKET_CLOSED), "closed");
        free(rows);
        pc_store_close(s);
}

/* explain's last exception: the newest one that ran to its end, not one
 * revoked early, nor one still in force. */
static void test_exception_ended(void **state)
{
        struct pc_store *s = open_store();
        struct pc_exception e, got;
        int64_t now = pc_now(), a = 0, b = 0;

        add_vps(s, "vps-101", "milano", "192.0.2.10");
        assert_int_equal(pc_store_exception_ended(s, "vps-101", "smtp", now, &got), -ENOENT);
        e = exception_for("smtp", now + 3600, 0);
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &alice, &a), 0);
        assert_int_equal(pc_store_exception_ended(s, "vps-101", "smtp", now, &got), -ENOENT);
        assert_int_equal(raw_exec(NULL, 0, "UPDATE exception SET until = ? WHERE id = ?", "ii", now - 60, a), 0);
        assert_int_equal(pc_store_exception_ended(s, "vps-101", "smtp", now, &got), 0);
        assert_int_equal(got.id, a);
        assert_int_equal(got.until, now - 60);
        assert_string_equal(got.by, "alice");
        assert_string_equal(got.service, "smtp");
        /* A new grant closes the ended one; revoking the new one early
         * leaves the ended one the last to have run its course. */
        e = exception_for("smtp", now + 3600, 0);
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &alice, &b), 0);
        assert_int_equal(pc_store_exception_revoke(s, "vps-101", "smtp", &alice), 0);
        assert_int_equal(pc_store_exception_ended(s, "vps-101", "smtp", now + 7200, &got), 0);
        assert_int_equal(got.id, a);
        assert_int_equal(pc_store_exception_ended(s, "vps-101", "vpn", now, &got), -ENOENT);
        pc_store_close(s);
}

/* ---- suspensions and filters ------------------------------------------ */

static void test_suspend(void **state)
{
        struct pc_store *s = open_store();
        struct pc_store_action act;
        struct pc_model *m;
        const struct pc_vps *got;
        int64_t id = 0, id2 = 0;
        char want[256], since[32];

        add_vps(s, "vps-101", "lenoir", "192.0.2.10");
        assert_int_equal(pc_store_suspend(s, "vps-101", 0, &alice, &id), 0);
        assert_true(id > 0);
        assert_int_equal(pc_store_suspend(s, "vps-101", 0, &alice, &id2), -EALREADY);
        assert_int_equal(id2, 0);
        assert_int_equal(pc_store_action_get(s, id, &act), 0);
        assert_true(act.created > 0);
        pc_format_time(act.created, since, sizeof(since));
        snprintf(want, sizeof(want), "vps-101 is already suspended (suspension #%lld since %s)",
                 (long long)id, since);
        assert_string_equal(pc_store_errmsg(s), want);
        assert_int_equal(pc_store_suspend(s, "vps-101", 77, &alice, &id2), -EALREADY);
        assert_int_equal(pc_store_suspend(s, "vps-999", 0, &alice, &id2), -ENOENT);

        m = load(s);
        got = pc_model_find(m, "vps-101");
        assert_true(got->suspended);
        assert_int_equal(got->suspension.id, id);
        assert_string_equal(got->suspension.by, "alice");
        assert_string_equal(got->suspension.reason, "customer ticket");
        assert_int_equal(got->suspension.incident_id, 0);
        assert_int_equal(got->n_filters, 0);
        m = pc_model_free(m);

        assert_int_equal(pc_store_unsuspend(s, "vps-101", &bob), 0);
        assert_int_equal(pc_store_unsuspend(s, "vps-101", &bob), -EALREADY);
        assert_string_equal(pc_store_errmsg(s), "vps-101 is not suspended");
        m = load(s);
        assert_false(pc_model_find(m, "vps-101")->suspended);
        m = pc_model_free(m);

        /* Suspending again after an unsuspend is a new suspension. */
        assert_int_equal(pc_store_suspend(s, "vps-101", 0, &alice, &id2), 0);
        assert_true(id2 > id);
        /* An unknown incident. */
        assert_int_equal(pc_store_unsuspend(s, "vps-101", &bob), 0);
        assert_int_equal(pc_store_suspend(s, "vps-101", 31337, &alice, NULL), -ENOENT);
        assert_string_equal(pc_store_errmsg(s), "incident #31337 does not exist");
        pc_store_close(s);
}

/* A termination: a suspension that stays until an admin overrides it,
 * queued with the owner's email and the provider's webhook event. */
static void test_terminate(void **state)
{
        struct pc_store *s = open_store();
        struct pc_actor admin = { .by = "carol", .reason = "billing settled it", .admin_override = true };
        struct pc_store_action act;
        struct pc_model *m;
        int64_t id = 0, id2 = 0, incident = 0;
        bool opened;
        char buf[256];

        add_vps(s, "vps-101", "lenoir", "192.0.2.10");
        assert_int_equal(pc_store_incident_note(s, "vps-101", "spoof", 1, 1000,
                                                "{\"kind\":\"ipv4-source\",\"claimed_source\":\"203.0.113.9\"}", 60,
                                                &incident, &opened, 0),
                         0);
        /* suspended first: the suspension becomes the termination */
        assert_int_equal(pc_store_suspend(s, "vps-101", incident, &alice, &id), 0);
        assert_int_equal(pc_store_terminate(s, "vps-101", incident, "an attempt to circumvent",
                                            "http://crm.example.net/hook", &alice, &id2),
                         0);
        assert_int_equal(id2, id);
        assert_int_equal(pc_store_terminate(s, "vps-101", incident, "again", NULL, &alice, NULL), -EALREADY);
        assert_int_equal(pc_store_action_get(s, id, &act), 0);
        assert_true(act.terminated);
        m = load(s);
        assert_true(pc_model_find(m, "vps-101")->suspension.terminated);
        m = pc_model_free(m);
        /* the owner's email, with the evidence, and the webhook event */
        assert_int_equal(n_notifications(s, "vps.terminated", "email", "owner-vps-101@example.net", buf, sizeof(buf)),
                         1);
        assert_non_null(strstr(buf, "203.0.113.9"));
        assert_int_equal(n_notifications(s, "vps.terminated", "webhook", "http://crm.example.net/hook", NULL, 0), 1);
        assert_int_equal(n_notifications(s, NULL, "webhook", NULL, buf, sizeof(buf)), 1);
        assert_non_null(strstr(buf, "203.0.113.9"));
        assert_int_equal(n_audit(s, NULL, "vps.terminate"), 1);
        /* support cannot lift it, by either path; an admin's override can */
        assert_int_equal(pc_store_unsuspend(s, "vps-101", &bob), -EPERM);
        assert_non_null(strstr(pc_store_errmsg(s), "vps-101 is terminated"));
        assert_int_equal(pc_store_action_lift(s, id, &bob), -EPERM);
        assert_int_equal(pc_store_incident_close(s, incident, true, &alice, NULL), -EPERM);
        assert_int_equal(pc_store_unsuspend(s, "vps-101", &admin), 0);
        assert_int_equal(n_audit_by(s, NULL, "vps.unterminate", "carol"), 1);
        /* not suspended: a new termination, no webhook without a URL */
        assert_int_equal(pc_store_terminate(s, "vps-101", 0, "by hand", "", &alice, &id2), 0);
        assert_true(id2 > id);
        assert_int_equal(n_notifications(s, NULL, "webhook", NULL, NULL, 0), 1);
        /* the schema keeps it against anyone */
        assert_int_equal(raw_exec(buf, sizeof(buf), "UPDATE action SET terminated = 0", ""), -EIO);
        assert_non_null(strstr(buf, "a termination stays a termination"));
        assert_int_equal(pc_store_action_get(s, id2, &act), 0);
        assert_true(act.terminated);
        pc_store_close(s);
}

/* Lifting a termination, by any path an admin's override opens, is
 * "vps.unterminated": the owner's email instead of vps.unsuspended, and
 * the webhook event for billing, which heard of the termination. */
static void test_unterminate(void **state)
{
        struct pc_store *s = open_store();
        struct pc_actor admin = { .by = "carol", .reason = "reviewed: not spoofing", .admin_override = true,
                                  .webhook_url = "http://crm.example.net/hook" };
        int64_t id = 0, incident = 0;
        bool opened;
        char buf[512];

        add_vps(s, "vps-101", "lenoir", "192.0.2.10");
        /* unsuspend --admin-override */
        assert_int_equal(pc_store_terminate(s, "vps-101", 0, "by hand", "", &alice, &id), 0);
        assert_int_equal(pc_store_unsuspend(s, "vps-101", &admin), 0);
        assert_int_equal(n_notifications(s, "vps.unterminated", "email", "owner-vps-101@example.net", NULL, 0), 1);
        assert_int_equal(n_notifications(s, "vps.unsuspended", NULL, NULL, NULL, 0), 0);
        assert_int_equal(n_notifications(s, "vps.unterminated", "webhook", "http://crm.example.net/hook", NULL, 0), 1);
        n_notifications(s, "vps.unterminated", "webhook", NULL, buf, sizeof(buf));
        assert_non_null(strstr(buf, "\"event\":\"vps.unterminated\""));
        assert_non_null(strstr(buf, "\"by\":\"carol\""));
        assert_non_null(strstr(buf, "\"reason\":\"reviewed: not spoofing\""));
        assert_non_null(strstr(buf, "\"owner\":\"owner-vps-101@example.net\""));
        assert_non_null(strstr(buf, "\"delivery\":\""));
        assert_non_null(strstr(buf, "\"terminated\":true"));
        /* action lift --admin-override, and incident close --lift-actions */
        assert_int_equal(pc_store_terminate(s, "vps-101", 0, "by hand", "", &alice, &id), 0);
        assert_int_equal(pc_store_action_lift(s, id, &admin), 0);
        assert_int_equal(n_notifications(s, "vps.unterminated", "webhook", NULL, NULL, 0), 2);
        assert_int_equal(pc_store_incident_note(s, "vps-101", "spoof", 1, 1000, "{\"kind\":\"ipv4-source\"}", 60,
                                                &incident, &opened, 0),
                         0);
        assert_int_equal(pc_store_terminate(s, "vps-101", incident, "again", "", &alice, &id), 0);
        assert_int_equal(pc_store_incident_close(s, incident, true, &admin, NULL), 0);
        assert_int_equal(n_notifications(s, "vps.unterminated", "webhook", NULL, NULL, 0), 3);
        /* a suspension that is no termination: vps.unsuspended, no event */
        assert_int_equal(pc_store_suspend(s, "vps-101", 0, &alice, &id), 0);
        assert_int_equal(pc_store_unsuspend(s, "vps-101", &admin), 0);
        assert_int_equal(n_notifications(s, "vps.unsuspended", NULL, NULL, NULL, 0), 1);
        assert_int_equal(n_notifications(s, NULL, "webhook", NULL, NULL, 0), 3);
        /* no webhook configured: the owner's email only */
        admin.webhook_url = "";
        assert_int_equal(pc_store_terminate(s, "vps-101", 0, "by hand", "", &alice, &id), 0);
        assert_int_equal(pc_store_unsuspend(s, "vps-101", &admin), 0);
        assert_int_equal(n_notifications(s, "vps.unterminated", "email", NULL, NULL, 0), 4);
        assert_int_equal(n_notifications(s, NULL, "webhook", NULL, NULL, 0), 3);
        /* vps remove --admin-override of a terminated VPS: the event, marked
         * removed, and no email (the VPS is gone) */
        admin.webhook_url = "http://crm.example.net/hook";
        assert_int_equal(pc_store_terminate(s, "vps-101", 0, "by hand", "", &alice, &id), 0);
        assert_int_equal(pc_store_vps_remove(s, "vps-101", &admin), 0);
        assert_int_equal(n_notifications(s, "vps.unterminated", "webhook", NULL, NULL, 0), 4);
        assert_int_equal(n_notifications(s, "vps.unterminated", "email", NULL, NULL, 0), 4);
        n_notifications(s, "vps.unterminated", "webhook", NULL, buf, sizeof(buf)); /* the newest */
        assert_non_null(strstr(buf, "\"removed\":true"));
        assert_non_null(strstr(buf, "\"vps\":\"vps-101\""));
        /* a VPS that is not terminated: removed without an event */
        add_vps(s, "vps-102", "lenoir", "192.0.2.11");
        assert_int_equal(pc_store_vps_remove(s, "vps-102", &admin), 0);
        assert_int_equal(n_notifications(s, NULL, "webhook", NULL, NULL, 0), 4);
        pc_store_close(s);
}

static void test_filters(void **state)
{
        struct pc_store *s = open_store();
        struct pc_filter f = { 0 };
        struct pc_model *m;
        const struct pc_vps *got;
        int64_t f1 = 0, f2 = 0, f3 = 0, now = pc_now();
        char err[256];

        add_vps(s, "vps-101", "milano", "192.0.2.10");
        f.direction = PC_DIR_EGRESS;
        f.scope = PC_SCOPE_PORTS;
        assert_int_equal(pc_port_range_parse("tcp/25", &f.ports, err, sizeof(err)), 0);
        f.until = now + 3600;
        assert_int_equal(pc_store_filter_place(s, "vps-101", &f, &alice, &f1), 0);
        memset(&f, 0, sizeof(f));
        f.direction = PC_DIR_BOTH;
        f.scope = PC_SCOPE_SERVICE;
        f.service = pc_config_service(cfg, "irc");
        snprintf(f.reason, sizeof(f.reason), "botnet C&C");
        assert_int_equal(pc_store_filter_place(s, "vps-101", &f, &alice, &f2), 0);
        memset(&f, 0, sizeof(f));
        f.direction = PC_DIR_INGRESS;
        f.scope = PC_SCOPE_ALL;
        assert_int_equal(pc_store_filter_place(s, "vps-101", &f, &bob, &f3), 0);
        f.direction = 0;
        assert_int_equal(pc_store_filter_place(s, "vps-101", &f, &bob, NULL), -EINVAL);
        f.direction = PC_DIR_EGRESS;
        f.until = now - 1;
        assert_int_equal(pc_store_filter_place(s, "vps-101", &f, &bob, NULL), -EINVAL);
        f.until = 0;
        assert_int_equal(pc_store_filter_place(s, "vps-999", &f, &bob, NULL), -ENOENT);

        m = load(s);
        got = pc_model_find(m, "vps-101");
        assert_int_equal(got->n_filters, 3);
        assert_int_equal(got->filters[0].id, f1);
        assert_int_equal(got->filters[0].direction, PC_DIR_EGRESS);
        assert_int_equal(got->filters[0].scope, PC_SCOPE_PORTS);
        assert_int_equal(got->filters[0].ports.proto, PC_PROTO_TCP);
        assert_int_equal(got->filters[0].ports.lo, 25);
        assert_int_equal(got->filters[0].ports.hi, 25);
        assert_int_equal(got->filters[0].until, now + 3600);
        assert_string_equal(got->filters[0].reason, "customer ticket"); /* the actor's */
        assert_int_equal(got->filters[1].scope, PC_SCOPE_SERVICE);
        assert_ptr_equal(got->filters[1].service, pc_config_service(cfg, "irc"));
        assert_int_equal(got->filters[1].direction, PC_DIR_BOTH);
        assert_string_equal(got->filters[1].reason, "botnet C&C");
        assert_int_equal(got->filters[2].scope, PC_SCOPE_ALL);
        assert_string_equal(got->filters[2].by, "bob");
        m = pc_model_free(m);

        assert_int_equal(pc_store_filter_lift(s, "vps-101", f2, &bob), 0);
        assert_int_equal(pc_store_filter_lift(s, "vps-101", f2, &bob), -ENOENT);
        assert_int_equal(pc_store_filter_lift(s, "vps-102", f1, &bob), -ENOENT);

        /* Expired filters are over. */
        assert_int_equal(raw_exec(NULL, 0, "UPDATE action SET until = ? WHERE scope = 'tcp/25'", "i", pc_now() - 1), 0);
        m = load(s);
        got = pc_model_find(m, "vps-101");
        assert_int_equal(got->n_filters, 1);
        assert_int_equal(got->filters[0].id, f3);
        m = pc_model_free(m);

        /* A filter on a service the configuration no longer has fails the
         * load, naming it, and leaves the model empty. */
        assert_int_equal(f3, 3);
        assert_int_equal(raw_exec(NULL, 0, "UPDATE action SET scope = 'service:gopher' WHERE id = ?", "i", f3), 0);
        assert_int_equal(pc_model_new(cfg, &m), 0);
        assert_int_equal(pc_store_load(s, m), -ENOENT);
        assert_string_equal(pc_store_errmsg(s),
                            "vps-101: filter #3: service 'gopher' is not in the configuration");
        assert_int_equal(pc_model_count(m), 0);
        pc_model_free(m);
        pc_store_close(s);
}

static void test_unknown_site(void **state)
{
        struct pc_store *s = open_store();
        struct pc_model *m;

        add_vps(s, "vps-100", "milano", "192.0.2.9");
        add_vps(s, "vps-101", "milano", "192.0.2.10");
        assert_int_equal(raw_exec(NULL, 0, "UPDATE vps SET site = 'foo' WHERE id = ?", "t", "vps-101"), 0);
        assert_int_equal(pc_model_new(cfg, &m), 0);
        assert_int_equal(pc_store_load(s, m), -ENOENT);
        assert_string_equal(pc_store_errmsg(s), "vps-101: site 'foo' is not in the configuration");
        assert_int_equal(pc_model_count(m), 0);
        pc_model_free(m);
        pc_store_close(s);
}

/* ---- audit, outbox, atomicity ------------------------------------------ */

static void test_audit(void **state)
{
        struct pc_store *s = open_store();
        struct pc_exception e = exception_for("smtp", 0, 0);
        struct pc_filter f = { .direction = PC_DIR_EGRESS, .scope = PC_SCOPE_ALL };
        struct audit_rows *rows;
        struct pc_ticket t = { 0 };
        int64_t fid = 0, now = pc_now();
        char buf[512], msg[256];
        static const char *const actions[] = {
                "vps.add",     "ticket.open", "exception.grant", "exception.revoke",
                "filter.place", "filter.lift", "vps.suspend",    "vps.unsuspend",
                "vps.remove",
        };

        add_vps(s, "vps-101", "milano", "192.0.2.10");
        add_vps(s, "vps-102", "milano", "192.0.2.11");
        snprintf(t.vps_id, sizeof(t.vps_id), "vps-101");
        snprintf(t.service, sizeof(t.service), "smtp");
        snprintf(t.text, sizeof(t.text), "please");
        assert_int_equal(pc_store_ticket_open(s, &t, &alice, NULL), 0);
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &alice, NULL), 0);
        assert_int_equal(pc_store_exception_revoke(s, "vps-101", "smtp", &bob), 0);
        assert_int_equal(pc_store_filter_place(s, "vps-101", &f, &alice, &fid), 0);
        assert_int_equal(pc_store_filter_lift(s, "vps-101", fid, &bob), 0);
        assert_int_equal(pc_store_suspend(s, "vps-101", 0, &alice, NULL), 0);
        assert_int_equal(pc_store_unsuspend(s, "vps-101", &bob), 0);
        assert_int_equal(pc_store_vps_remove(s, "vps-101", &bob), 0);

        /* Everything of vps-101, kept after its removal, oldest first. */
        rows = audit_of(s, "vps-101", 0);
        assert_int_equal(rows->n, PC_ARRAY_SIZE(actions));
        for (size_t i = 0; i < rows->n; i++) {
                assert_string_equal(rows->e[i].action, actions[i]);
                assert_string_equal(rows->e[i].vps_id, "vps-101");
                assert_true(rows->e[i].at >= now);
                if (i > 0)
                        assert_true(rows->e[i].id > rows->e[i - 1].id);
        }
        assert_string_equal(rows->e[0].object, "vps/vps-101");
        assert_string_equal(rows->e[0].by, "alice");
        assert_string_equal(rows->e[0].reason, "customer ticket");
        assert_string_equal(rows->before[0], "(null)");
        assert_string_equal(json_field(rows->after[0], "owner", buf, sizeof(buf)),
                            "owner-vps-101@example.net");
        assert_string_equal(json_field(rows->after[0], "addresses", buf, sizeof(buf)),
                            "[\"192.0.2.10/32\"]");
        assert_string_equal(rows->e[1].object, "ticket/1");
        assert_string_equal(json_field(rows->after[1], "text", buf, sizeof(buf)), "please");
        assert_string_equal(rows->e[2].object, "exception/1");
        assert_string_equal(rows->before[2], "(null)");
        assert_string_equal(json_field(rows->after[2], "service", buf, sizeof(buf)), "smtp");
        assert_string_equal(json_field(rows->after[2], "until", buf, sizeof(buf)), "null");
        assert_string_equal(rows->e[3].object, "exception/1");
        assert_string_equal(rows->e[3].by, "bob");
        assert_string_equal(rows->e[3].reason, "");
        assert_string_equal(json_field(rows->before[3], "by", buf, sizeof(buf)), "alice");
        assert_string_equal(rows->after[3], "(null)");
        assert_string_equal(rows->e[4].object, "filter/1");
        assert_string_equal(json_field(rows->after[4], "scope", buf, sizeof(buf)), "all");
        assert_string_equal(json_field(rows->after[4], "direction", buf, sizeof(buf)), "egress");
        assert_string_equal(rows->e[5].object, "filter/1");
        assert_string_equal(json_field(rows->before[5], "id", buf, sizeof(buf)), "1");
        assert_string_equal(rows->e[6].object, "suspension/2");
        assert_string_equal(rows->before[6], "(null)");
        assert_string_equal(rows->e[7].object, "suspension/2");
        assert_string_equal(rows->after[7], "(null)");
        assert_string_equal(rows->e[8].object, "vps/vps-101");
        assert_string_equal(json_field(rows->before[8], "id", buf, sizeof(buf)), "vps-101");
        assert_string_equal(rows->after[8], "(null)");
        /* Sorted keys, compact. */
        assert_int_equal(strncmp(rows->after[0], "{\"addresses\":", 13), 0);
        free(rows);

        /* The newest 3 of everything, oldest first. */
        rows = audit_of(s, NULL, 3);
        assert_int_equal(rows->n, 3);
        assert_string_equal(rows->e[0].action, "vps.suspend");
        assert_string_equal(rows->e[2].action, "vps.remove");
        free(rows);
        rows = audit_of(s, "vps-102", 0);
        assert_int_equal(rows->n, 1);
        free(rows);
        assert_int_equal(n_audit(s, NULL, NULL), 10);

        /* Append-only, against anyone. */
        assert_int_equal(raw_exec(msg, sizeof(msg), "UPDATE audit SET \"by\" = 'mallory'", ""), -EIO);
        assert_non_null(strstr(msg, "audit log is append-only"));
        assert_int_equal(raw_exec(msg, sizeof(msg), "DELETE FROM audit WHERE id = 1", ""), -EIO);
        assert_non_null(strstr(msg, "audit log is append-only"));
        assert_int_equal(n_audit(s, NULL, NULL), 10);
        assert_int_equal(n_audit_by(s, NULL, NULL, "mallory"), 0);
        pc_store_close(s);
}

static void test_atomicity(void **state)
{
        struct pc_store *s = open_store();
        struct pc_exception e = exception_for("smtp", 0, 0);
        struct pc_filter f = { .direction = PC_DIR_EGRESS, .scope = PC_SCOPE_ALL };
        int64_t audits, notes;

        add_vps(s, "vps-101", "milano", "192.0.2.10");
        audits = n_audit(s, NULL, NULL);
        notes = n_notifications(s, NULL, NULL, NULL, NULL, 0);

        assert_int_equal(pc_store_exception_grant(s, "vps-999", &e, &alice, NULL), -ENOENT);
        assert_string_equal(pc_store_errmsg(s), "vps vps-999 does not exist");
        assert_int_equal(pc_store_exception_revoke(s, "vps-101", "smtp", &alice), -ENOENT);
        assert_int_equal(pc_store_suspend(s, "vps-999", 0, &alice, NULL), -ENOENT);
        assert_int_equal(pc_store_unsuspend(s, "vps-101", &alice), -EALREADY);
        assert_int_equal(pc_store_filter_place(s, "vps-999", &f, &alice, NULL), -ENOENT);
        assert_int_equal(pc_store_filter_lift(s, "vps-101", 1, &alice), -ENOENT);
        assert_int_equal(pc_store_vps_remove(s, "vps-999", &alice), -ENOENT);
        /* Fails late, after the exception row was checked: nothing stays. */
        e.ticket_id = 99;
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &alice, NULL), -ENOENT);

        assert_int_equal(n_audit(s, NULL, NULL), audits);
        assert_int_equal(n_notifications(s, NULL, NULL, NULL, NULL, 0), notes);
        assert_int_equal(count_rows("exception"), 0);
        assert_int_equal(n_actions(s), 0);

        /* And the store is usable afterwards: no transaction was left open. */
        e.ticket_id = 0;
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &alice, NULL), 0);
        assert_int_equal(n_audit(s, NULL, NULL), audits + 1);
        assert_int_equal(n_notifications(s, NULL, NULL, NULL, NULL, 0), notes + 1);
        pc_store_close(s);
}

static void test_outbox(void **state)
{
        struct pc_store *s = open_store();
        struct pc_vps *v = make_vps("vps-101", "lenoir", "192.0.2.10", "2001:db8::10", NULL);
        struct pc_ticket t = { 0 };
        struct pc_exception e;
        struct pc_filter f = { .direction = PC_DIR_EGRESS, .scope = PC_SCOPE_ALL };
        int64_t tid = 0, fid = 0, until = pc_now() + 86400;
        static const char *const kinds[] = {
                "ticket.received", "exception.granted", "exception.revoked", "filter.placed",
                "filter.lifted",     "vps.suspended",     "vps.unsuspended",
        };
        struct pc_notification n = { 0 };
        char payloads[PC_ARRAY_SIZE(kinds)][2048], buf[512];

        snprintf(v->lang, sizeof(v->lang), "it");
        assert_int_equal(pc_store_vps_add(s, v, &alice), 0);
        pc_vps_free(v);
        snprintf(t.vps_id, sizeof(t.vps_id), "vps-101");
        snprintf(t.service, sizeof(t.service), "smtp");
        snprintf(t.text, sizeof(t.text), "please");
        assert_int_equal(pc_store_ticket_open(s, &t, &alice, &tid), 0);
        assert_int_equal(n_notifications(s, NULL, NULL, NULL, NULL, 0), 1); /* adds: none; a ticket: received */

        e = exception_for("smtp", until, tid);
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &alice, NULL), 0);
        assert_int_equal(pc_store_exception_revoke(s, "vps-101", "smtp", &bob), 0);
        assert_int_equal(pc_store_filter_place(s, "vps-101", &f, &alice, &fid), 0);
        assert_int_equal(pc_store_filter_lift(s, "vps-101", fid, &bob), 0);
        assert_int_equal(pc_store_suspend(s, "vps-101", 0, &alice, NULL), 0);
        assert_int_equal(pc_store_unsuspend(s, "vps-101", &bob), 0);

        assert_int_equal(n_notifications(s, NULL, NULL, NULL, NULL, 0), PC_ARRAY_SIZE(kinds));
        for (size_t i = 0; i < PC_ARRAY_SIZE(kinds); i++) {
                assert_int_equal(pc_store_notification_get(s, (int64_t)i + 1, &n), 0);
                assert_string_equal(n.kind, kinds[i]);
                assert_string_equal(n.recipient, "owner-vps-101@example.net");
                assert_string_equal(n.language, "it");
                assert_string_equal(n.vps_id, "vps-101");
                assert_string_equal(n.state, "pending");
                assert_string_equal(n.channel, "email");
                assert_int_equal(n.attempts, 0);
                assert_true(n.created > 0 && n.next_attempt >= n.created);
                assert_string_equal(n.last_error, "");
                assert_string_equal(n.message_id, "");
                assert_int_equal(n.sent_at, 0);
                snprintf(payloads[i], sizeof(payloads[i]), "%s", n.payload);
                pc_notification_clear(&n);
        }

        /* exception.granted */
        assert_string_equal(json_field(payloads[1], "vps", buf, sizeof(buf)), "vps-101");
        assert_string_equal(json_field(payloads[1], "addresses", buf, sizeof(buf)),
                            "[\"192.0.2.10/32\",\"2001:db8::10/128\"]");
        assert_string_equal(json_field(payloads[1], "service", buf, sizeof(buf)), "smtp");
        assert_string_equal(json_field(payloads[1], "reason", buf, sizeof(buf)), "runs a mail server");
        assert_string_equal(json_field(payloads[1], "by", buf, sizeof(buf)), "alice");
        assert_string_equal(json_field(payloads[1], "site", buf, sizeof(buf)), "lenoir");
        assert_int_equal(atoll(json_field(payloads[1], "until", buf, sizeof(buf))), until);
        assert_int_equal(atoll(json_field(payloads[1], "ticket", buf, sizeof(buf))), tid);
        assert_string_equal(json_field(payloads[1], "event", buf, sizeof(buf)), "exception.granted");

        /* exception.revoked */
        assert_string_equal(json_field(payloads[2], "by", buf, sizeof(buf)), "bob");
        assert_string_equal(json_field(payloads[2], "reason", buf, sizeof(buf)), "null");
        assert_string_equal(json_field(payloads[2], "service", buf, sizeof(buf)), "smtp");

        /* vps.suspended */
        assert_string_equal(json_field(payloads[5], "reason", buf, sizeof(buf)), "customer ticket");
        assert_string_equal(json_field(payloads[5], "incident", buf, sizeof(buf)), "null");
        assert_string_equal(json_field(payloads[5], "addresses", buf, sizeof(buf)),
                            "[\"192.0.2.10/32\",\"2001:db8::10/128\"]");

        /* vps.unsuspended */
        assert_string_equal(json_field(payloads[6], "by", buf, sizeof(buf)), "bob");

        /* Removal keeps the outbox and the audit trail. */
        assert_int_equal(pc_store_vps_remove(s, "vps-101", &bob), 0);
        assert_int_equal(n_notifications(s, NULL, NULL, NULL, NULL, 0), PC_ARRAY_SIZE(kinds));
        assert_int_equal(n_audit(s, "vps-101", NULL), 9);
        assert_int_equal(n_actions(s), 0);
        assert_int_equal(count_rows("exception"), 0);
        assert_int_equal(count_rows("action"), 0);
        assert_int_equal(count_rows("ticket"), 0);
        pc_store_close(s);
}

static void test_injection(void **state)
{
        struct pc_store *s = open_store();
        struct pc_actor evil = { .by = "mallory", .reason = INJECTION };
        struct pc_exception e = exception_for("smtp", 0, 0);
        struct pc_vps *v;
        struct audit_rows *rows;
        struct pc_model *m;
        char buf[256];

        add_vps(s, "vps-101", "milano", "192.0.2.10");
        snprintf(e.reason, sizeof(e.reason), "%s", INJECTION);
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &evil, NULL), 0);
        assert_int_equal(pc_store_suspend(s, "vps-101", 0, &evil, NULL), 0);

        /* Ids and names are only ever looked up, never run. */
        v = make_vps(INJECTION, "milano", NULL);
        assert_int_equal(pc_store_vps_add(s, v, &evil), -EINVAL);
        pc_vps_free(v);
        assert_int_equal(pc_store_vps_remove(s, INJECTION, &evil), -ENOENT);
        assert_string_equal(pc_store_errmsg(s), "vps " INJECTION " does not exist");
        assert_int_equal(pc_store_exception_revoke(s, "vps-101", INJECTION, &evil), -ENOENT);
        assert_int_equal(pc_store_unsuspend(s, INJECTION, &evil), -ENOENT);

        assert_int_equal(n_vps(s), 1);
        assert_int_equal(count_rows("vps"), 1);
        assert_int_equal(raw_int("SELECT count(*) FROM exception WHERE reason = ?", "t", INJECTION), 1);
        assert_int_equal(raw_int("SELECT count(*) FROM action WHERE reason = ?", "t", INJECTION), 1);
        rows = audit_of(s, "vps-101", 0);
        assert_int_equal(rows->n, 3);
        assert_string_equal(rows->e[1].reason, INJECTION);
        assert_string_equal(json_field(rows->after[1], "reason", buf, sizeof(buf)), INJECTION);
        free(rows);
        m = load(s);
        assert_string_equal(pc_model_find(m, "vps-101")->exceptions[0].reason, INJECTION);
        assert_string_equal(pc_model_find(m, "vps-101")->suspension.reason, INJECTION);
        pc_model_free(m);
        pc_store_close(s);
}

/* ---- the notification outbox's delivery state machine ------------------ */

/* Collects notifications (ids, states, message ids, payloads). */
struct notif_rows {
        size_t n;
        struct pc_notification e[32];
        char payload[32][2048];
        struct pc_store *s;      /* if set, the callback begins a send attempt */
        int64_t now;             /* at this time */
};

static int collect_notif(const struct pc_notification *n, void *userdata)
{
        struct notif_rows *rows = userdata;
        char mid[64];

        if (rows->n == PC_ARRAY_SIZE(rows->e))
                return -ENOSPC;
        rows->e[rows->n] = *n;
        rows->e[rows->n].payload = NULL;
        snprintf(rows->payload[rows->n], sizeof(rows->payload[0]), "%s", n->payload);
        rows->n++;
        if (rows->s != NULL) {
                snprintf(mid, sizeof(mid), "<cb.%lld@test>", (long long)n->id);
                return pc_store_notification_sending(rows->s, n->id, mid, rows->now, NULL);
        }
        return 0;
}

static struct notif_rows *due_of(struct pc_store *s, int64_t now, size_t limit)
{
        struct notif_rows *rows = calloc(1, sizeof(*rows));
        int r;

        assert_non_null(rows);
        r = pc_store_notification_due(s, now, limit, collect_notif, rows);
        if (r < 0)
                fail_msg("notification_due: %s", pc_store_errmsg(s));
        return rows;
}

static struct notif_rows *list_of(struct pc_store *s, const char *vps_id, const char *st,
                                  size_t limit)
{
        struct notif_rows *rows = calloc(1, sizeof(*rows));
        int r;

        assert_non_null(rows);
        r = pc_store_notification_list(s, vps_id, st, limit, 0, collect_notif, rows);
        if (r < 0)
                fail_msg("notification_list: %s", pc_store_errmsg(s));
        return rows;
}

/* Queues <kind> for <vps_id> at <now> with facts {"n": <n>}; returns its id. */
static int64_t queue(struct pc_store *s, const char *vps_id, const char *kind, int n, int64_t now)
{
        char facts[64];
        int64_t id = 0;

        snprintf(facts, sizeof(facts), "{\"n\": %d}", n);
        if (pc_store_notification_queue(s, vps_id, kind, facts, now, &id) < 0)
                fail_msg("notification_queue: %s", pc_store_errmsg(s));
        assert_true(id > 0);
        return id;
}

static void test_notification_due(void **state)
{
        struct pc_store *s = open_store();
        struct notif_rows *rows;
        int64_t now = pc_now(), id[5], dummy = 0;
        char buf[64];

        add_vps(s, "vps-101", "milano", "192.0.2.10");
        add_vps(s, "vps-102", "lenoir", "192.0.2.11");
        id[0] = queue(s, "vps-101", "incident.opened", 0, now - 50);
        id[1] = queue(s, "vps-102", "incident.opened", 1, now - 100); /* due earlier, newer */
        id[2] = queue(s, "vps-101", "incident.opened", 2, now + 60);  /* not yet due */
        id[3] = queue(s, "vps-101", "incident.opened", 3, now);
        id[4] = queue(s, "vps-102", "incident.opened", 4, now - 10);

        /* Pending and due, oldest first (the order they were queued in). */
        rows = due_of(s, now, 100);
        assert_int_equal(rows->n, 4);
        assert_int_equal(rows->e[0].id, id[0]);
        assert_int_equal(rows->e[1].id, id[1]);
        assert_int_equal(rows->e[2].id, id[3]);
        assert_int_equal(rows->e[3].id, id[4]);
        assert_string_equal(json_field(rows->payload[1], "n", buf, sizeof(buf)), "1");
        assert_string_equal(rows->e[1].recipient, "owner-vps-102@example.net");
        assert_string_equal(rows->e[1].state, "pending");
        assert_string_equal(rows->e[1].message_id, "");
        assert_int_equal(rows->e[1].attempts, 0);
        free(rows);

        /* At most <limit>; bounded. */
        rows = due_of(s, now, 2);
        assert_int_equal(rows->n, 2);
        assert_int_equal(rows->e[1].id, id[1]);
        free(rows);
        assert_int_equal(pc_store_notification_due(s, now, 0, collect_notif, &dummy), -EINVAL);
        assert_int_equal(pc_store_notification_due(s, now, PC_NOTIFICATION_BATCH_MAX + 1,
                                                   collect_notif, &dummy),
                         -EINVAL);

        /* Sent and failed ones are never due; later ones become due. */
        assert_int_equal(pc_store_notification_sending(s, id[0], "<a@test>", now, NULL), 0);
        assert_int_equal(pc_store_notification_sent(s, id[0], now), 0);
        assert_int_equal(pc_store_notification_failed(s, id[1], "550 no such user"), 0);
        rows = due_of(s, now + 60, 100);
        assert_int_equal(rows->n, 3);
        assert_int_equal(rows->e[0].id, id[2]);
        assert_int_equal(rows->e[1].id, id[3]);
        assert_int_equal(rows->e[2].id, id[4]);
        free(rows);

        /* The callback may write to the store: the rows are read first.
         * Each attempt claims its row for the lease. */
        rows = calloc(1, sizeof(*rows));
        assert_non_null(rows);
        rows->s = s;
        rows->now = now + 60;
        assert_int_equal(pc_store_notification_due(s, now + 60, 100, collect_notif, rows), 0);
        assert_int_equal(rows->n, 3);
        free(rows);
        rows = due_of(s, now + 60 + PC_NOTIFICATION_LEASE - 1, 100);
        assert_int_equal(rows->n, 0);
        free(rows);
        rows = due_of(s, now + 60 + PC_NOTIFICATION_LEASE, 100);
        assert_int_equal(rows->n, 3);
        assert_int_equal(rows->e[0].attempts, 1);
        snprintf(buf, sizeof(buf), "<cb.%lld@test>", (long long)id[2]);
        assert_string_equal(rows->e[0].message_id, buf);
        free(rows);
        pc_store_close(s);
}

static void test_notification_sending(void **state)
{
        struct pc_store *s = open_store();
        struct pc_notification n = { 0 };
        char mid[PC_NOTIFICATION_MESSAGE_ID_MAX], msg[256];
        int64_t now = pc_now(), a, b;

        add_vps(s, "vps-101", "milano", "192.0.2.10");
        a = queue(s, "vps-101", "incident.opened", 0, now);
        b = queue(s, "vps-101", "incident.opened", 1, now);

        /* The first attempt fixes the Message-ID... */
        assert_int_equal(pc_store_notification_sending(s, a, "<first@test>", now, mid), 0);
        assert_string_equal(mid, "<first@test>");
        /* ...and a retry (after a crash: the worker forgot it) keeps it. */
        memset(mid, 0, sizeof(mid));
        assert_int_equal(pc_store_notification_sending(s, a, "<second@test>", now + 700, mid), 0);
        assert_string_equal(mid, "<first@test>");
        assert_int_equal(pc_store_notification_get(s, a, &n), 0);
        assert_string_equal(n.message_id, "<first@test>");
        assert_int_equal(n.attempts, 2);
        assert_int_equal(n.next_attempt, now + 700 + PC_NOTIFICATION_LEASE);
        assert_string_equal(n.state, "pending");
        assert_int_equal(n.sent_at, 0);
        pc_notification_clear(&n);
        assert_null(n.payload);
        pc_notification_clear(NULL);

        /* Header-safe, unique Message-IDs only. */
        assert_int_equal(pc_store_notification_sending(s, b, "", now, NULL), -EINVAL);
        assert_int_equal(pc_store_notification_sending(s, b, "<a b@test>", now, NULL), -EINVAL);
        assert_int_equal(pc_store_notification_sending(s, b, "<x@test>\r\nBcc: x@evil", now, NULL),
                         -EINVAL);
        assert_non_null(strstr(pc_store_errmsg(s), "printable ASCII"));
        assert_int_equal(pc_store_notification_sending(s, b, "<first@test>", now, NULL), -EEXIST);
        assert_non_null(strstr(pc_store_errmsg(s), "already another notification's"));
        assert_int_equal(pc_store_notification_get(s, b, &n), 0);
        assert_int_equal(n.attempts, 0);
        assert_string_equal(n.message_id, "");
        pc_notification_clear(&n);
        assert_int_equal(pc_store_notification_sending(s, 99, "<z@test>", now, NULL), -ENOENT);
        assert_string_equal(pc_store_errmsg(s), "notification #99 does not exist");

        /* sent needs a begun attempt; then it is final. */
        assert_int_equal(pc_store_notification_sent(s, b, now), -EINVAL);
        assert_int_equal(pc_store_notification_sent(s, a, now + 701), 0);
        assert_int_equal(pc_store_notification_get(s, a, &n), 0);
        assert_string_equal(n.state, "sent");
        assert_int_equal(n.sent_at, now + 701);
        assert_int_equal(n.attempts, 2);
        pc_notification_clear(&n);
        assert_int_equal(pc_store_notification_sending(s, a, "<first@test>", now, NULL), -EALREADY);
        assert_non_null(strstr(pc_store_errmsg(s), "was already sent at"));
        assert_int_equal(pc_store_notification_sent(s, a, now), -EALREADY);
        assert_int_equal(pc_store_notification_retry_later(s, a, "x", now), -EALREADY);
        assert_int_equal(pc_store_notification_failed(s, a, "x"), -EALREADY);

        /* The schema keeps both rules against anyone. */
        assert_int_equal(raw_exec(msg, sizeof(msg), "UPDATE notification SET message_id = '<other@test>' WHERE id = ?",
                                  "i", a),
                         -EIO);
        assert_non_null(strstr(msg, "a notification's message_id never changes once set"));
        assert_int_equal(raw_exec(msg, sizeof(msg), "UPDATE notification SET state = 'pending' WHERE id = ?", "i", a),
                         -EIO);
        assert_non_null(strstr(msg, "a sent notification stays sent"));
        assert_int_equal(pc_store_notification_get(s, a, &n), 0);
        assert_string_equal(n.state, "sent");
        assert_string_equal(n.message_id, "<first@test>");
        pc_notification_clear(&n);
        assert_int_equal(raw_exec(msg, sizeof(msg), "UPDATE notification SET message_id = '<b@test>' WHERE id = ?", "i",
                                  b),
                         0);
        assert_int_equal(pc_store_notification_get(s, b, &n), 0);
        assert_string_equal(n.message_id, "<b@test>");
        pc_notification_clear(&n);
        pc_store_close(s);
}

static void test_notification_retry_later(void **state)
{
        struct pc_store *s = open_store();
        struct pc_notification n = { 0 };
        struct notif_rows *rows;
        char long_error[2000], want[PC_NOTIFICATION_ERROR_MAX];
        int64_t now = pc_now(), a;

        add_vps(s, "vps-101", "milano", "192.0.2.10");
        a = queue(s, "vps-101", "incident.opened", 0, now);
        assert_int_equal(pc_store_notification_sending(s, a, "<a@test>", now, NULL), 0);
        assert_int_equal(pc_store_notification_retry_later(s, a, "421 4.7.0 try again later\r\n",
                                                           now + 300),
                         0);
        assert_int_equal(pc_store_notification_get(s, a, &n), 0);
        assert_string_equal(n.state, "pending");
        assert_string_equal(n.last_error, "421 4.7.0 try again later");
        assert_int_equal(n.next_attempt, now + 300);
        assert_int_equal(n.attempts, 1);
        assert_string_equal(n.message_id, "<a@test>");
        pc_notification_clear(&n);
        rows = due_of(s, now + 299, 10);
        assert_int_equal(rows->n, 0);
        free(rows);
        rows = due_of(s, now + 300, 10);
        assert_int_equal(rows->n, 1);
        free(rows);

        /* A remote server's text: one line, valid UTF-8, cut to fit. */
        assert_int_equal(pc_store_notification_retry_later(
                                 s, a, "451 caf\xc3\xa9\r\n451 \xff\xfe bad\x1b[31m \xc2\x85!", now),
                         0);
        assert_int_equal(pc_store_notification_get(s, a, &n), 0);
        assert_string_equal(n.last_error, "451 caf\xc3\xa9  451 ?? bad [31m  !");
        pc_notification_clear(&n);
        /* 1 byte then 2-byte characters: the cut falls between two. */
        long_error[0] = 'x';
        for (size_t i = 1; i + 2 < sizeof(long_error); i += 2)
                memcpy(long_error + i, "\xc3\xa9", 2);
        long_error[sizeof(long_error) - 1] = '\0';
        assert_int_equal(pc_store_notification_retry_later(s, a, long_error, now), 0);
        assert_int_equal(pc_store_notification_get(s, a, &n), 0);
        assert_int_equal(strlen(n.last_error), PC_NOTIFICATION_ERROR_MAX - 1);
        memcpy(want, long_error, PC_NOTIFICATION_ERROR_MAX - 1);
        want[PC_NOTIFICATION_ERROR_MAX - 1] = '\0';
        assert_string_equal(n.last_error, want);
        pc_notification_clear(&n);
        /* 2 bytes then 2-byte characters: the cut falls inside one. */
        long_error[1] = 'y';
        for (size_t i = 2; i + 2 < sizeof(long_error); i += 2)
                memcpy(long_error + i, "\xc3\xa9", 2);
        assert_int_equal(pc_store_notification_retry_later(s, a, long_error, now), 0);
        assert_int_equal(pc_store_notification_get(s, a, &n), 0);
        assert_int_equal(strlen(n.last_error), PC_NOTIFICATION_ERROR_MAX - 2);
        assert_int_equal(memcmp(n.last_error, long_error, PC_NOTIFICATION_ERROR_MAX - 2), 0);
        pc_notification_clear(&n);
        assert_int_equal(pc_store_notification_retry_later(s, 99, "x", now), -ENOENT);
        pc_store_close(s);
}

static void test_notification_failed(void **state)
{
        struct pc_store *s = open_store();
        struct pc_notification n = { 0 };
        struct audit_rows *rows;
        struct notif_rows *due;
        int64_t now = pc_now(), a;
        char buf[512];

        add_vps(s, "vps-101", "milano", "192.0.2.10");
        a = queue(s, "vps-101", "incident.opened", 0, now);
        assert_int_equal(pc_store_notification_sending(s, a, "<a@test>", now, NULL), 0);
        assert_int_equal(pc_store_notification_failed(s, a, "550 5.1.1 <owner-vps-101@example.net>: "
                                                            "user unknown\r\n"),
                         0);
        assert_int_equal(pc_store_notification_get(s, a, &n), 0);
        assert_string_equal(n.state, "failed");
        assert_string_equal(n.last_error, "550 5.1.1 <owner-vps-101@example.net>: user unknown");
        pc_notification_clear(&n);
        due = due_of(s, now + 86400, 10);
        assert_int_equal(due->n, 0);
        free(due);

        /* Support sees it in the audit log. */
        rows = audit_of(s, "vps-101", 0);
        assert_int_equal(rows->n, 2); /* vps.add, notification.fail */
        assert_string_equal(rows->e[1].action, "notification.fail");
        assert_string_equal(rows->e[1].by, "portcullisd");
        assert_string_equal(rows->e[1].object, "notification/1");
        assert_string_equal(rows->e[1].vps_id, "vps-101");
        assert_string_equal(rows->e[1].reason, "550 5.1.1 <owner-vps-101@example.net>: user unknown");
        assert_string_equal(json_field(rows->before[1], "state", buf, sizeof(buf)), "pending");
        assert_string_equal(json_field(rows->after[1], "state", buf, sizeof(buf)), "failed");
        assert_string_equal(json_field(rows->after[1], "message_id", buf, sizeof(buf)), "<a@test>");
        assert_string_equal(json_field(rows->after[1], "attempts", buf, sizeof(buf)), "1");
        free(rows);

        /* A dead letter is not sent, nor failed again. */
        assert_int_equal(pc_store_notification_sending(s, a, "<a@test>", now, NULL), -EALREADY);
        assert_non_null(strstr(pc_store_errmsg(s), "is failed, not pending"));
        assert_int_equal(pc_store_notification_failed(s, a, "again"), -EALREADY);
        assert_int_equal(n_audit(s, NULL, NULL), 2);
        assert_int_equal(pc_store_notification_failed(s, 99, "x"), -ENOENT);
        pc_store_close(s);
}

static void test_notification_retry(void **state)
{
        struct pc_store *s = open_store();
        struct pc_notification n = { 0 };
        struct pc_actor nobody = { .by = NULL, .reason = "x" };
        struct audit_rows *rows;
        struct notif_rows *due;
        int64_t now = pc_now(), a, b, c;
        char buf[512];

        add_vps(s, "vps-101", "milano", "192.0.2.10");
        a = queue(s, "vps-101", "incident.opened", 0, now - 3600);
        b = queue(s, "vps-101", "incident.opened", 1, now - 3600);
        c = queue(s, "vps-101", "incident.opened", 2, now + 3600);
        for (int i = 0; i < 3; i++)
                assert_int_equal(pc_store_notification_sending(s, a, "<a@test>", now - 3600 + i * PC_NOTIFICATION_LEASE, NULL), 0);
        assert_int_equal(pc_store_notification_failed(s, a, "550 mailbox full"), 0);
        assert_int_equal(pc_store_notification_sending(s, b, "<b@test>", now - 3600, NULL), 0);
        assert_int_equal(pc_store_notification_sent(s, b, now - 3500), 0);

        /* A dead letter goes back to the queue, due now, from attempt 0. */
        assert_int_equal(pc_store_notification_retry(s, a, &alice), 0);
        assert_int_equal(pc_store_notification_get(s, a, &n), 0);
        assert_string_equal(n.state, "pending");
        assert_int_equal(n.attempts, 0);
        assert_true(n.next_attempt >= now && n.next_attempt <= pc_now());
        assert_string_equal(n.message_id, "<a@test>");        /* the same message */
        assert_string_equal(n.last_error, "550 mailbox full"); /* what happened before */
        pc_notification_clear(&n);
        due = due_of(s, pc_now(), 10);
        assert_int_equal(due->n, 1);
        assert_int_equal(due->e[0].id, a);
        free(due);

        rows = audit_of(s, "vps-101", 0);
        assert_int_equal(rows->n, 3); /* vps.add, notification.fail, notification.retry */
        assert_string_equal(rows->e[2].action, "notification.retry");
        assert_string_equal(rows->e[2].by, "alice");
        assert_string_equal(rows->e[2].reason, "customer ticket");
        assert_string_equal(rows->e[2].object, "notification/1");
        assert_string_equal(json_field(rows->before[2], "state", buf, sizeof(buf)), "failed");
        assert_string_equal(json_field(rows->before[2], "attempts", buf, sizeof(buf)), "3");
        assert_string_equal(json_field(rows->after[2], "state", buf, sizeof(buf)), "pending");
        assert_string_equal(json_field(rows->after[2], "attempts", buf, sizeof(buf)), "0");
        free(rows);

        /* A pending one not yet due can be hurried. */
        assert_int_equal(pc_store_notification_retry(s, c, &bob), 0);
        assert_int_equal(pc_store_notification_get(s, c, &n), 0);
        assert_true(n.next_attempt <= pc_now());
        pc_notification_clear(&n);

        /* A sent one is refused: the customer would get it twice. */
        assert_int_equal(pc_store_notification_retry(s, b, &alice), -EINVAL);
        assert_non_null(strstr(pc_store_errmsg(s), "notification #2 was sent at"));
        assert_non_null(strstr(pc_store_errmsg(s), "(Message-ID <b@test>); it is not sent twice"));
        assert_int_equal(pc_store_notification_get(s, b, &n), 0);
        assert_string_equal(n.state, "sent");
        pc_notification_clear(&n);
        assert_int_equal(pc_store_notification_retry(s, 99, &alice), -ENOENT);
        assert_int_equal(pc_store_notification_retry(s, a, &nobody), -EINVAL);
        assert_int_equal(n_audit(s, NULL, NULL), 4);
        pc_store_close(s);
}

/* An exception ending within the window is announced once, in the
 * outbox; one without an end, one ending later, and a revoked one are not. */
static void test_exception_expiry_notices(void **state)
{
        struct pc_store *s = open_store();
        struct pc_exception e;
        int64_t now = pc_now(), id = 0;
        size_t n = 99;
        char buf[2048], field[256];

        add_vps(s, "vps-101", "milano", "192.0.2.10");
        add_vps(s, "vps-102", "milano", "192.0.2.11");
        e = exception_for("smtp", now + 2 * 86400, 0);
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &alice, &id), 0);
        e = exception_for("vpn", now + 30 * 86400, 0);
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &alice, &id), 0);
        e = exception_for("smtp", 0, 0);
        assert_int_equal(pc_store_exception_grant(s, "vps-102", &e, &alice, &id), 0);
        e = exception_for("vpn", now + 86400, 0);
        assert_int_equal(pc_store_exception_grant(s, "vps-102", &e, &alice, &id), 0);
        assert_int_equal(pc_store_exception_revoke(s, "vps-102", "vpn", &alice), 0);

        /* Another host's agent leaves them to theirs. */
        assert_int_equal(pc_store_exception_expiry_notices(s, now, 3 * 86400, "hv9", &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(pc_store_exception_expiry_notices(s, now, 3 * 86400, NULL, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(n_notifications(s, "exception.expiring", "email", "owner-vps-101@example.net", buf,
                                         sizeof(buf)),
                         1);
        assert_string_equal(json_field(buf, "vps", field, sizeof(field)), "vps-101");
        assert_string_equal(json_field(buf, "service", field, sizeof(field)), "smtp");
        /* Once only. */
        assert_int_equal(pc_store_exception_expiry_notices(s, now + 60, 3 * 86400, NULL, &n), 0);
        assert_int_equal(n, 0);
        /* The 30-day one, when its time comes. */
        /* vps-101 runs on hv1 now: hv2's pass leaves it, hv1's takes it. */
        assert_int_equal(pc_store_vps_move(s, "vps-101", "hv1", "tap101", &alice, NULL), 0);
        assert_int_equal(pc_store_exception_expiry_notices(s, now + 28 * 86400, 3 * 86400, "hv2", &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(pc_store_exception_expiry_notices(s, now + 28 * 86400, 3 * 86400, "hv1", &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(n_notifications(s, "exception.expiring", NULL, NULL, buf, sizeof(buf)), 2);
        assert_string_equal(json_field(buf, "service", field, sizeof(field)), "vpn");
        pc_store_close(s);
}

/* The host a VPS moved from and its interface there, "FROM/IFACE" ("/":
 * none), as <s> has it, into <buf>. */
static const char *departing(struct pc_store *s, const char *id, char *buf, size_t size)
{
        struct pc_vps *v = NULL;

        if (pc_store_vps_fetch(s, cfg, id, &v) < 0)
                fail_msg("fetch %s: %s", id, pc_store_errmsg(s));
        snprintf(buf, size, "%s/%s", v->departing_from, v->departing_iface);
        pc_vps_free(v);
        return buf;
}

/* A move between hosts is the host it left to confirm (vps.depart): kept
 * through the arrival and another pull onto the new host, recorded by
 * that host only, and gone with a move back there, which needs no
 * interface (a claim undone). */
static void test_vps_departed(void **state)
{
        struct pc_store *s = open_store();
        struct pc_actor agent = { .by = "portcullisd", .reason = "left" };
        bool recorded = true;
        char buf[64];

        add_vps(s, "vps-101", "milano", "192.0.2.10");
        assert_int_equal(pc_store_vps_move(s, "vps-101", "hv2", "vb", &alice, NULL), 0);
        assert_string_equal(departing(s, "vps-101", buf, sizeof(buf)), "/"); /* from no host */
        assert_int_equal(pc_store_vps_move(s, "vps-101", "hv1", "vx", &alice, NULL), 0);
        assert_string_equal(departing(s, "vps-101", buf, sizeof(buf)), "hv2/vb");
        assert_int_equal(pc_store_vps_arrived(s, "vps-101", "hv1", &agent), 0);
        assert_string_equal(departing(s, "vps-101", buf, sizeof(buf)), "hv2/vb");
        assert_int_equal(pc_store_vps_move(s, "vps-101", "hv1", "vy", &alice, NULL), 0);
        assert_string_equal(departing(s, "vps-101", buf, sizeof(buf)), "hv2/vb");
        /* Only hv2 confirms it. */
        assert_int_equal(pc_store_vps_departed(s, "vps-101", "hv1", &agent, &recorded), 0);
        assert_false(recorded);
        assert_int_equal(pc_store_vps_departed(s, "vps-101", "hv3", &agent, &recorded), 0);
        assert_false(recorded);
        assert_int_equal(n_audit(s, "vps-101", "vps.depart"), 0);
        /* Undone: back to hv2, on vb, without naming it. */
        assert_int_equal(pc_store_vps_move(s, "vps-101", "hv2", NULL, &alice, NULL), 0);
        assert_string_equal(departing(s, "vps-101", buf, sizeof(buf)), "/");
        assert_int_equal(n_audit(s, "vps-101", "vps.move"), 4);
        /* Moved again, and confirmed by hv2 once. */
        assert_int_equal(pc_store_vps_arrived(s, "vps-101", "hv2", &agent), 0);
        assert_int_equal(pc_store_vps_move(s, "vps-101", "hv1", "vx", &alice, NULL), 0);
        assert_int_equal(pc_store_vps_departed(s, "vps-101", "hv2", &agent, &recorded), 0);
        assert_true(recorded);
        assert_string_equal(departing(s, "vps-101", buf, sizeof(buf)), "/");
        assert_int_equal(n_audit_by(s, "vps-101", "vps.depart", "portcullisd"), 1);
        assert_int_equal(pc_store_vps_departed(s, "vps-101", "hv2", &agent, &recorded), 0);
        assert_false(recorded);
        assert_int_equal(n_audit(s, "vps-101", "vps.depart"), 1);
        /* A VPS removed meanwhile: nothing to confirm. */
        assert_int_equal(pc_store_vps_departed(s, "vps-999", "hv2", &agent, &recorded), 0);
        assert_false(recorded);
        pc_store_close(s);
}

/* The moves away from a host not confirmed yet, as its agent's periodic
 * pass reads them: that host's only, with the interface there, by id,
 * after a cursor, at most <limit>; a confirmed one is gone from it. */
static int departing_collect(const char *id, const char *iface, void *arg)
{
        char *buf = arg;
        size_t len = strlen(buf);

        snprintf(buf + len, 256 - len, "%s%s/%s", len > 0 ? " " : "", id, iface);
        return 0;
}

static void test_vps_departing(void **state)
{
        struct pc_store *s = open_store();
        struct pc_actor agent = { .by = "portcullisd", .reason = "left" };
        char buf[256];

        add_vps(s, "vps-101", "milano", "192.0.2.10");
        add_vps(s, "vps-102", "milano", "192.0.2.11");
        add_vps(s, "vps-103", "milano", "192.0.2.12");
        assert_int_equal(pc_store_vps_move(s, "vps-101", "hv2", "va", &alice, NULL), 0);
        assert_int_equal(pc_store_vps_move(s, "vps-102", "hv2", "vb", &alice, NULL), 0);
        assert_int_equal(pc_store_vps_move(s, "vps-103", "hv3", "vc", &alice, NULL), 0);
        buf[0] = '\0';
        assert_int_equal(pc_store_vps_departing(s, "hv2", NULL, 0, departing_collect, buf), 0);
        assert_string_equal(buf, ""); /* from no host: none to confirm */
        assert_int_equal(pc_store_vps_move(s, "vps-102", "hv1", "vx", &alice, NULL), 0);
        assert_int_equal(pc_store_vps_move(s, "vps-101", "hv1", "vy", &alice, NULL), 0);
        assert_int_equal(pc_store_vps_move(s, "vps-103", "hv1", "vz", &alice, NULL), 0);
        assert_int_equal(pc_store_vps_departing(s, "hv2", NULL, 0, departing_collect, buf), 0);
        assert_string_equal(buf, "vps-101/va vps-102/vb");
        buf[0] = '\0';
        assert_int_equal(pc_store_vps_departing(s, "hv2", NULL, 1, departing_collect, buf), 0);
        assert_string_equal(buf, "vps-101/va");
        buf[0] = '\0';
        assert_int_equal(pc_store_vps_departing(s, "hv2", "vps-101", 1, departing_collect, buf), 0);
        assert_string_equal(buf, "vps-102/vb");
        buf[0] = '\0';
        assert_int_equal(pc_store_vps_departing(s, "hv2", "vps-102", 1, departing_collect, buf), 0);
        assert_string_equal(buf, "");
        assert_int_equal(pc_store_vps_departed(s, "vps-101", "hv2", &agent, NULL), 0);
        buf[0] = '\0';
        assert_int_equal(pc_store_vps_departing(s, "hv2", NULL, 0, departing_collect, buf), 0);
        assert_string_equal(buf, "vps-102/vb");
        buf[0] = '\0';
        assert_int_equal(pc_store_vps_departing(s, "hv3", NULL, 0, departing_collect, buf), 0);
        assert_string_equal(buf, "vps-103/vc");
        buf[0] = '\0';
        assert_int_equal(pc_store_vps_departing(s, "hv9", NULL, 0, departing_collect, buf), 0);
        assert_string_equal(buf, "");
        assert_int_equal(pc_store_vps_departing(s, "", NULL, 0, departing_collect, buf), -EINVAL);
        pc_store_close(s);
}

/* PC_INCIDENT_NOTICE: the owner's notice is queued with a new incident,
 * in the same transaction; a continuing episode queues nothing. */
static void test_incident_notice(void **state)
{
        struct pc_store *s = open_store();
        int64_t now = pc_now(), id = 0, id2 = 0;
        bool opened = false;
        char buf[2048], field[256];

        add_vps(s, "vps-101", "milano", "192.0.2.10");
        assert_int_equal(pc_store_incident_note(s, "vps-101", "scan", 3, now, "{\"port\": 22}", 300, &id,
                                                &opened, PC_INCIDENT_NOTICE),
                         0);
        assert_true(opened);
        assert_int_equal(pc_store_incident_note(s, "vps-101", "scan", 5, now + 10, NULL, 300, &id2, &opened,
                                                PC_INCIDENT_NOTICE),
                         0);
        assert_false(opened);
        assert_int_equal(id, id2);
        assert_int_equal(n_notifications(s, "incident.opened", NULL, NULL, buf, sizeof(buf)), 1);
        assert_string_equal(json_field(buf, "evidence", field, sizeof(field)), "{\"port\":22}");
        /* Without the flag, a new episode is recorded and nobody is told. */
        assert_int_equal(pc_store_incident_note(s, "vps-101", "scan", 1, now + 1000, NULL, 300, &id2, &opened, 0),
                         0);
        assert_true(opened);
        assert_int_equal(n_notifications(s, "incident.opened", NULL, NULL, NULL, 0), 1);
        pc_store_close(s);
}

/* An unsuspension closes the VPS's open episodes: spoofing again right
 * after it is a new incident, which the policy answers again. */
static void test_unsuspend_closes_episode(void **state)
{
        struct pc_store *s = open_store();
        int64_t now = pc_now(), id = 0, id2 = 0;
        bool opened = false;

        add_vps(s, "vps-101", "lenoir", "192.0.2.10");
        assert_int_equal(pc_store_incident_note(s, "vps-101", "spoof", 1, now, NULL, 300, &id, &opened, 0), 0);
        assert_true(opened);
        assert_int_equal(pc_store_suspend(s, "vps-101", id, &alice, NULL), 0);
        assert_int_equal(pc_store_unsuspend(s, "vps-101", &bob), 0);
        assert_int_equal(n_open_incidents(s), 0);
        assert_int_equal(n_audit(s, "vps-101", "incident.close"), 1);
        assert_int_equal(pc_store_incident_note(s, "vps-101", "spoof", 1, now + 5, NULL, 300, &id2, &opened, 0), 0);
        assert_true(opened);
        assert_true(id2 > id);
        pc_store_close(s);
}

/* The ladder's memory: a VPS's earlier incidents of one kind since a time,
 * newest first, bounded, closed ones included, the new one left out. */
static void test_incident_times(void **state)
{
        struct pc_store *s = open_store();
        int64_t now = pc_now(), id[4] = { 0 }, t[8] = { 0 }, other = 0;
        size_t n = 99;
        bool opened = false;

        add_vps(s, "vps-101", "lenoir", "192.0.2.10");
        add_vps(s, "vps-102", "lenoir", "192.0.2.20");
        assert_int_equal(pc_store_incident_times(s, "vps-101", "spoof", 0, 0, t, 8, &n), 0);
        assert_int_equal(n, 0);
        for (int i = 0; i < 4; i++) {
                assert_int_equal(pc_store_incident_note(s, "vps-101", "spoof", 1, now + 100 * i, NULL, 10, &id[i],
                                                        &opened, 0),
                                 0);
                assert_true(opened);
        }
        /* another kind, another VPS: not counted */
        assert_int_equal(pc_store_incident_note(s, "vps-101", "scan", 1, now + 300, NULL, 10, &other, &opened, 0), 0);
        assert_int_equal(pc_store_incident_note(s, "vps-102", "spoof", 1, now + 300, NULL, 10, &other, &opened, 0),
                         0);
        /* support closing them does not make the ladder forget */
        assert_int_equal(pc_store_incident_close(s, id[0], false, &alice, NULL), 0);
        assert_int_equal(pc_store_incident_times(s, "vps-101", "spoof", 0, 0, t, 8, &n), 0);
        assert_int_equal(n, 4);
        assert_int_equal(t[0], now + 300);
        assert_int_equal(t[3], now);
        /* before the newest: the three earlier ones */
        assert_int_equal(pc_store_incident_times(s, "vps-101", "spoof", 0, id[3], t, 8, &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(t[0], now + 200);
        /* since a time, boundary included */
        assert_int_equal(pc_store_incident_times(s, "vps-101", "spoof", now + 100, id[3], t, 8, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(t[0], now + 200);
        assert_int_equal(t[1], now + 100);
        assert_int_equal(pc_store_incident_times(s, "vps-101", "spoof", now + 101, id[3], t, 8, &n), 0);
        assert_int_equal(n, 1);
        /* bounded: the newest <max> */
        assert_int_equal(pc_store_incident_times(s, "vps-101", "spoof", 0, 0, t, 2, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(t[0], now + 300);
        assert_int_equal(t[1], now + 200);
        assert_int_equal(pc_store_incident_times(s, "vps-101", "spoof", 0, 0, t, 0, &n), 0);
        assert_int_equal(n, 0);
        /* an unknown VPS, a hostile kind: none */
        assert_int_equal(pc_store_incident_times(s, "vps-999", "spoof", 0, 0, t, 8, &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(pc_store_incident_times(s, "vps-101", "spoof' OR '1'='1", 0, 0, t, 8, &n), 0);
        assert_int_equal(n, 0);
        pc_store_close(s);
}

static void test_notification_queue(void **state)
{
        struct pc_store *s = open_store();
        struct pc_vps *v = make_vps("vps-101", "lenoir", "192.0.2.10", "2001:db8::10", NULL);
        struct pc_notification n = { 0 };
        int64_t now = pc_now(), id = 0;
        char buf[512], big[PC_NOTIFICATION_FACTS_MAX + 16];

        snprintf(v->lang, sizeof(v->lang), "it");
        assert_int_equal(pc_store_vps_add(s, v, &alice), 0);
        pc_vps_free(v);

        assert_int_equal(pc_store_notification_queue(
                                 s, "vps-101", "incident.opened",
                                 "{\"incident\": 7, \"kind\": \"spoof\", \"vps\": \"forged\", "
                                 "\"count\": 12}",
                                 now, &id),
                         0);
        assert_int_equal(id, 1);
        assert_int_equal(pc_store_notification_get(s, id, &n), 0);
        assert_int_equal(n.created, now);
        assert_int_equal(n.next_attempt, now);
        assert_string_equal(n.vps_id, "vps-101");
        assert_string_equal(n.kind, "incident.opened");
        assert_string_equal(n.recipient, "owner-vps-101@example.net");
        assert_string_equal(n.language, "it");
        assert_string_equal(n.state, "pending");
        /* The same shape as the notifications of changes. */
        assert_string_equal(json_field(n.payload, "event", buf, sizeof(buf)), "incident.opened");
        assert_string_equal(json_field(n.payload, "vps", buf, sizeof(buf)), "vps-101");
        assert_string_equal(json_field(n.payload, "site", buf, sizeof(buf)), "lenoir");
        assert_string_equal(json_field(n.payload, "addresses", buf, sizeof(buf)),
                            "[\"192.0.2.10/32\",\"2001:db8::10/128\"]");
        assert_string_equal(json_field(n.payload, "incident", buf, sizeof(buf)), "7");
        assert_string_equal(json_field(n.payload, "kind", buf, sizeof(buf)), "spoof");
        assert_string_equal(json_field(n.payload, "count", buf, sizeof(buf)), "12");
        pc_notification_clear(&n);

        /* No facts: just the VPS and the event. */
        assert_int_equal(pc_store_notification_queue(s, "vps-101", "incident.opened", NULL, now, NULL), 0);
        assert_int_equal(pc_store_notification_get(s, 2, &n), 0);
        assert_string_equal(json_field(n.payload, "event", buf, sizeof(buf)), "incident.opened");
        pc_notification_clear(&n);

        /* Refused, nothing queued. */
        assert_int_equal(pc_store_notification_queue(s, "vps-999", "incident.opened", NULL, now, NULL),
                         -ENOENT);
        assert_string_equal(pc_store_errmsg(s), "vps vps-999 does not exist");
        assert_int_equal(pc_store_notification_queue(s, "vps-101", "incident.opened", "{\"a\": ", now,
                                                     NULL),
                         -EINVAL);
        assert_non_null(strstr(pc_store_errmsg(s), "the facts are not JSON"));
        assert_int_equal(pc_store_notification_queue(s, "vps-101", "incident.opened", "[1, 2]", now,
                                                     NULL),
                         -EINVAL);
        assert_int_equal(pc_store_notification_queue(s, "vps-101", "incident.opened",
                                                     "{\"a\": 1, \"a\": 2}", now, NULL),
                         -EINVAL);
        assert_int_equal(pc_store_notification_queue(s, "vps-101", "Incident Opened", NULL, now, NULL),
                         -EINVAL);
        assert_int_equal(pc_store_notification_queue(s, "vps-101", "", NULL, now, NULL), -EINVAL);
        memset(big, ' ', sizeof(big) - 1);
        big[0] = '{';
        big[sizeof(big) - 2] = '}';
        big[sizeof(big) - 1] = '\0';
        assert_int_equal(pc_store_notification_queue(s, "vps-101", "incident.opened", big, now, NULL),
                         -EINVAL);
        assert_int_equal(pc_store_notification_get(s, 3, &n), -ENOENT);
        assert_string_equal(pc_store_errmsg(s), "notification #3 does not exist");
        assert_int_equal(n_notifications(s, NULL, NULL, NULL, NULL, 0), 2);
        /* Not a change: the outbox row is its record. */
        assert_int_equal(n_audit(s, NULL, NULL), 1);
        pc_store_close(s);
}

static void test_notification_list(void **state)
{
        struct pc_store *s = open_store();
        struct notif_rows *rows;
        struct notif_rows dummy = { 0 };
        int64_t now = pc_now();

        add_vps(s, "vps-101", "milano", "192.0.2.10");
        add_vps(s, "vps-102", "milano", "192.0.2.11");
        assert_int_equal(pc_store_suspend(s, "vps-101", 0, &alice, NULL), 0); /* #1 */
        queue(s, "vps-102", "incident.opened", 0, now);                       /* #2 */
        queue(s, "vps-101", "incident.opened", 1, now);                       /* #3 */
        assert_int_equal(pc_store_notification_failed(s, 3, "550"), 0);
        assert_int_equal(pc_store_vps_remove(s, "vps-101", &bob), 0);

        rows = list_of(s, NULL, NULL, 0);
        assert_int_equal(rows->n, 3);
        assert_int_equal(rows->e[0].id, 3); /* newest first */
        assert_int_equal(rows->e[2].id, 1);
        assert_string_equal(rows->e[2].kind, "vps.suspended");
        free(rows);
        rows = list_of(s, NULL, NULL, 2);
        assert_int_equal(rows->n, 2);
        assert_int_equal(rows->e[1].id, 2);
        free(rows);
        /* Removed VPSes keep their history. */
        rows = list_of(s, "vps-101", NULL, 0);
        assert_int_equal(rows->n, 2);
        assert_int_equal(rows->e[0].id, 3);
        assert_int_equal(rows->e[1].id, 1);
        free(rows);
        rows = list_of(s, "vps-101", "failed", 0);
        assert_int_equal(rows->n, 1);
        assert_int_equal(rows->e[0].id, 3);
        assert_string_equal(rows->e[0].last_error, "550");
        free(rows);
        rows = list_of(s, NULL, "pending", 0);
        assert_int_equal(rows->n, 2);
        free(rows);
        rows = list_of(s, NULL, "sent", 0);
        assert_int_equal(rows->n, 0);
        free(rows);
        rows = list_of(s, "vps-999", NULL, 0);
        assert_int_equal(rows->n, 0);
        free(rows);
        assert_int_equal(pc_store_notification_list(s, NULL, "lost", 0, 0, collect_notif, &dummy),
                         -EINVAL);
        assert_string_equal(pc_store_errmsg(s),
                            "'lost' is not a notification state (pending, sent, failed)");
        assert_int_equal(pc_store_notification_list(s, NULL, INJECTION, 0, 0, collect_notif, &dummy),
                         -EINVAL);
        rows = list_of(s, INJECTION, NULL, 0);
        assert_int_equal(rows->n, 0);
        free(rows);
        assert_int_equal(n_vps(s), 1);
        pc_store_close(s);
}

/* A database written by the first release (schema 1) with a queued
 * notification is brought to the current schema, keeping its rows, and
 * the state machine works on them. */
static void test_notification_migrate_v1(void **state)
{
        struct pc_store *s;
        struct pc_notification n = { 0 };
        char parent[128], mid[PC_NOTIFICATION_MESSAGE_ID_MAX];
        sqlite3 *db;
        int v = -1;

        snprintf(parent, sizeof(parent), "%s/state", dir);
        assert_int_equal(mkdir(parent, 0750), 0);
        assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
        assert_int_equal(pc_sqlite_migrations[0].version, 1);
        assert_int_equal(sqlite3_exec(db, pc_sqlite_migrations[0].sql, NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db,
                                      "PRAGMA user_version = 1;"
                                      "INSERT INTO vps (id, owner, lang, site, created) "
                                      "VALUES ('vps-101', 'ada@example.net', 'en', 'milano', 1000);"
                                      "INSERT INTO notification (created, vps_id, kind, recipient, "
                                      "language, payload, next_attempt) VALUES (1000, 'vps-101', "
                                      "'vps.suspended', 'ada@example.net', 'en', "
                                      "'{\"event\":\"vps.suspended\"}', 1000);",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);

        s = open_store();
        assert_int_equal(pc_store_schema_version(s, &v), 0);
        assert_int_equal(v, pc_store_schema_latest());
        assert_int_equal(sq_int("SELECT count(*) FROM pragma_table_info('exception') "
                                 "WHERE name = 'warned_at'"),
                         1);
        assert_int_equal(sq_int("SELECT count(*) FROM pragma_table_info('notification') "
                                 "WHERE name = 'sent_at'"),
                         1);
        assert_int_equal(pc_store_notification_get(s, 1, &n), 0);
        assert_string_equal(n.state, "pending");
        assert_string_equal(n.message_id, "");
        assert_int_equal(n.sent_at, 0);
        assert_string_equal(n.payload, "{\"event\":\"vps.suspended\"}");
        pc_notification_clear(&n);
        assert_int_equal(pc_store_notification_sending(s, 1, "<old@test>", 2000, mid), 0);
        assert_int_equal(pc_store_notification_sent(s, 1, 2001), 0);
        assert_int_equal(pc_store_notification_get(s, 1, &n), 0);
        assert_string_equal(n.state, "sent");
        assert_int_equal(n.sent_at, 2001);
        pc_notification_clear(&n);
        pc_store_close(s);

        /* Reopening a migrated database changes nothing. */
        s = open_store();
        assert_int_equal(pc_store_schema_version(s, &v), 0);
        assert_int_equal(v, pc_store_schema_latest());
        assert_int_equal(count_rows("notification"), 1);
        pc_store_close(s);
}

/* vps_update replaces interface, MAC and addresses in one audited
 * transaction; what is stored already is no change and writes nothing;
 * another VPS's interface or address is refused with nothing written. */
static void test_vps_update(void **state)
{
        struct pc_store *s = open_store();
        struct pc_vps *v = make_vps("vps-101", "milano", "192.0.2.10", "2001:db8:101::/64", NULL), *got;
        struct audit_rows *rows;
        struct pc_model *m;
        bool changed = true;
        char buf[256];

        snprintf(v->iface, sizeof(v->iface), "tap101");
        assert_int_equal(pc_store_vps_add(s, v, &alice), 0);
        pc_vps_free(v);
        v = make_vps("vps-102", "milano", "192.0.2.20", NULL);
        snprintf(v->iface, sizeof(v->iface), "tap102");
        assert_int_equal(pc_store_vps_add(s, v, &alice), 0);
        pc_vps_free(v);
        v = make_vps("vps-101", "milano", "192.0.2.10", "2001:db8:101::/64", NULL);
        snprintf(v->iface, sizeof(v->iface), "tap101");

        /* the same values: no change, no audit row */
        assert_int_equal(pc_store_vps_update(s, v, &bob, &changed), 0);
        assert_false(changed);
        assert_int_equal(n_audit(s, NULL, "vps.update"), 0);

        pc_vps_free(v);
        v = make_vps("vps-101", "milano", "192.0.2.11", NULL);
        snprintf(v->iface, sizeof(v->iface), "tap101b");
        assert_int_equal(pc_parse_mac("52:54:00:00:01:01", v->mac), 0);
        v->has_mac = true;
        assert_int_equal(pc_store_vps_update(s, v, &bob, &changed), 0);
        assert_true(changed);
        m = load(s);
        got = pc_model_find(m, "vps-101");
        assert_non_null(got);
        assert_string_equal(got->iface, "tap101b");
        assert_true(got->has_mac);
        assert_int_equal(got->n_addrs, 1);
        assert_string_equal(got->owner, "owner-vps-101@example.net"); /* kept */
        pc_model_free(m);
        rows = audit_of(s, "vps-101", 0);
        assert_int_equal(rows->n, 2);
        assert_string_equal(rows->e[1].action, "vps.update");
        assert_string_equal(rows->e[1].by, "bob");
        assert_string_equal(json_field(rows->before[1], "iface", buf, sizeof(buf)), "tap101");
        assert_string_equal(json_field(rows->before[1], "addresses", buf, sizeof(buf)),
                            "[\"192.0.2.10/32\",\"2001:db8:101::/64\"]");
        assert_string_equal(json_field(rows->after[1], "addresses", buf, sizeof(buf)), "[\"192.0.2.11/32\"]");
        assert_string_equal(json_field(rows->after[1], "mac", buf, sizeof(buf)), "52:54:00:00:01:01");
        free(rows);

        /* another VPS's interface, address: refused, nothing written */
        snprintf(v->iface, sizeof(v->iface), "tap102");
        assert_int_equal(pc_store_vps_update(s, v, &bob, NULL), -EEXIST);
        assert_non_null(strstr(pc_store_errmsg(s), "interface tap102 is already vps-102's"));
        pc_vps_free(v);
        v = make_vps("vps-101", "milano", "192.0.2.20", NULL);
        snprintf(v->iface, sizeof(v->iface), "tap101b");
        assert_int_equal(pc_store_vps_update(s, v, &bob, NULL), -EEXIST);
        assert_non_null(strstr(pc_store_errmsg(s), "192.0.2.20/32 is already assigned to vps-102"));
        assert_string_equal(holder(s, "192.0.2.11", NULL, ALL), "vps-101 192.0.2.11/32");
        m = load(s);
        assert_string_equal(pc_model_find(m, "vps-101")->iface, "tap101b");
        assert_int_equal(pc_model_find(m, "vps-101")->n_addrs, 1);
        pc_model_free(m);
        assert_int_equal(n_audit(s, NULL, "vps.update"), 1);
        pc_vps_free(v);
        v = make_vps("vps-999", "milano", "192.0.2.99", NULL);
        assert_int_equal(pc_store_vps_update(s, v, &bob, NULL), -ENOENT);
        pc_vps_free(v);
        pc_store_close(s);
}

/* vps_set_state: running <-> stopped, audited, idempotent; the VPS keeps
 * what is in force (its filter here). */
static void test_vps_set_state(void **state)
{
        struct pc_store *s = open_store();
        struct pc_filter f = { .direction = PC_DIR_EGRESS, .scope = PC_SCOPE_ALL };
        struct audit_rows *rows;
        struct pc_model *m;
        const struct pc_vps *v;
        bool changed = false;
        int64_t now = pc_now();
        char buf[64];

        add_vps(s, "vps-101", "milano", "192.0.2.10");
        assert_int_equal(pc_store_filter_place(s, "vps-101", &f, &alice, NULL), 0);
        m = load(s);
        v = pc_model_find(m, "vps-101");
        assert_false(v->stopped); /* a new VPS runs */
        assert_int_equal(v->run_since, 0);
        pc_model_free(m);

        assert_int_equal(pc_store_vps_set_state(s, "vps-101", true, &bob, &changed), 0);
        assert_false(changed);
        assert_int_equal(pc_store_vps_set_state(s, "vps-101", false, &bob, &changed), 0);
        assert_true(changed);
        assert_int_equal(pc_store_vps_set_state(s, "vps-101", false, &bob, &changed), 0);
        assert_false(changed);
        m = load(s);
        v = pc_model_find(m, "vps-101");
        assert_true(v->stopped);
        assert_true(v->run_since >= now);
        assert_int_equal(v->n_filters, 1);
        pc_model_free(m);
        assert_int_equal(pc_store_vps_set_state(s, "vps-101", true, &alice, &changed), 0);
        assert_true(changed);

        rows = audit_of(s, "vps-101", 0);
        assert_int_equal(rows->n, 4); /* add, filter, stop, start */
        assert_string_equal(rows->e[2].action, "vps.stop");
        assert_string_equal(json_field(rows->before[2], "run_state", buf, sizeof(buf)), "running");
        assert_string_equal(json_field(rows->after[2], "run_state", buf, sizeof(buf)), "stopped");
        assert_string_equal(rows->e[3].action, "vps.start");
        assert_string_equal(rows->e[3].reason, "customer ticket");
        free(rows);
        assert_int_equal(pc_store_vps_set_state(s, "vps-999", false, &bob, NULL), -ENOENT);
        assert_non_null(strstr(pc_store_errmsg(s), "vps vps-999 does not exist"));
        /* the schema holds the two states only */
        assert_int_equal(raw_exec(NULL, 0, "UPDATE vps SET run_state = 'paused'", ""), -EIO);
        m = load(s);
        assert_false(pc_model_find(m, "vps-101")->stopped);
        pc_model_free(m);
        pc_store_close(s);
}

/* A version-7 database's VPSes are running after the upgrade. */
static void test_run_state_migrate_v7(void **state)
{
        struct pc_store *s;
        struct pc_model *m;
        char parent[128];
        sqlite3 *db;
        size_t n7 = 0;

        while (pc_sqlite_migrations[n7].version <= 7)
                n7++;
        snprintf(parent, sizeof(parent), "%s/state", dir);
        assert_int_equal(mkdir(parent, 0750), 0);
        assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
        for (size_t i = 0; i < n7; i++) {
                assert_int_equal(sqlite3_exec(db, pc_sqlite_migrations[i].sql, NULL, NULL, NULL), SQLITE_OK);
                if (pc_sqlite_migrations[i].fill != NULL)
                        assert_int_equal(pc_sqlite_migrations[i].fill(db), SQLITE_OK);
        }
        assert_int_equal(sqlite3_exec(db,
                                      "PRAGMA user_version = 7;"
                                      "INSERT INTO vps (id, owner, lang, site, iface, created) "
                                      "VALUES ('vps-101', 'ada@example.net', 'en', 'milano', 'tap101', 1000);",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);

        s = open_store();
        m = load(s);
        assert_false(pc_model_find(m, "vps-101")->stopped);
        assert_int_equal(pc_model_find(m, "vps-101")->run_since, 0);
        pc_model_free(m);
        assert_int_equal(pc_store_vps_set_state(s, "vps-101", false, &bob, NULL), 0);
        pc_store_close(s);
}

/* Ids are never used twice: after the newest VPS is removed (and with it
 * its tickets, exceptions, filters and incidents), a new VPS's objects get
 * new numbers, so that the audit log never names two objects with one. */
static void test_ids_never_reused(void **state)
{
        struct pc_store *s = open_store();
        struct pc_ticket t = { 0 };
        struct pc_exception e = { 0 };
        struct pc_filter f = { .direction = PC_DIR_EGRESS, .scope = PC_SCOPE_ALL };
        int64_t ids[2][4];
        bool opened;

        for (int round = 0; round < 2; round++) {
                add_vps(s, "vps-101", "milano", "192.0.2.10");
                snprintf(t.vps_id, sizeof(t.vps_id), "vps-101");
                snprintf(t.service, sizeof(t.service), "smtp");
                snprintf(t.text, sizeof(t.text), "invoices");
                assert_int_equal(pc_store_ticket_open(s, &t, &alice, &ids[round][0]), 0);
                snprintf(e.service, sizeof(e.service), "smtp");
                assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &alice, &ids[round][1]), 0);
                assert_int_equal(pc_store_filter_place(s, "vps-101", &f, &alice, &ids[round][2]), 0);
                assert_int_equal(pc_store_incident_note(s, "vps-101", "scan", 1, pc_now(), NULL, 300,
                                                        &ids[round][3], &opened, 0),
                                 0);
                assert_int_equal(pc_store_vps_remove(s, "vps-101", &alice), 0);
        }
        for (int k = 0; k < 4; k++)
                assert_true(ids[1][k] > ids[0][k]);
        pc_store_close(s);
}

/* A version-3 database keeps its rows and numbers when it is upgraded,
 * and from then on never gives an id twice. */
static void test_ids_migrate_v3(void **state)
{
        struct pc_store *s;
        char parent[128];
        sqlite3 *db;
        int v = -1;

        snprintf(parent, sizeof(parent), "%s/state", dir);
        assert_int_equal(mkdir(parent, 0750), 0);
        assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
        for (int i = 0; i < 3; i++)
                assert_int_equal(sqlite3_exec(db, pc_sqlite_migrations[i].sql, NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db,
                                      "PRAGMA user_version = 3;"
                                      "INSERT INTO vps (id, owner, lang, site, created) "
                                      "VALUES ('vps-101', 'ada@example.net', 'en', 'milano', 1000);"
                                      "INSERT INTO ticket (id, vps_id, service, opened_by, opened, text) "
                                      "VALUES (7, 'vps-101', 'smtp', 'ada', 1000, 'please');"
                                      "INSERT INTO exception (id, vps_id, service, ticket_id, \"by\", created) "
                                      "VALUES (5, 'vps-101', 'smtp', 7, 'alice', 1000);"
                                      /* ticket #9 existed once: the audit log names it */
                                      "INSERT INTO audit (at, \"by\", action, object) "
                                      "VALUES (900, 'alice', 'ticket.open', 'ticket/9');",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);

        s = open_store();
        assert_int_equal(pc_store_schema_version(s, &v), 0);
        assert_int_equal(v, pc_store_schema_latest());
        assert_int_equal(sq_int("SELECT ticket_id FROM exception WHERE id = 5"), 7);
        assert_int_equal(sq_int("SELECT count(*) FROM ticket WHERE id = 7"), 1);
        assert_int_equal(sq_int("SELECT count(*) FROM pragma_foreign_key_check"), 0);
        {
                struct pc_ticket t = { 0 };
                int64_t id = 0;

                snprintf(t.vps_id, sizeof(t.vps_id), "vps-101");
                snprintf(t.service, sizeof(t.service), "vpn");
                snprintf(t.text, sizeof(t.text), "a tunnel");
                assert_int_equal(pc_store_ticket_open(s, &t, &alice, &id), 0);
                assert_true(id > 9); /* past every id the audit log names */
        }
        /* Foreign keys are on again: removing the VPS cascades. */
        assert_int_equal(pc_store_vps_remove(s, "vps-101", &alice), 0);
        assert_int_equal(count_rows("exception"), 0);
        pc_store_close(s);
}

/* ---- who holds an address, a MAC -------------------------------------- */

/* Overlap both ways, at every length, in both families; the VPS asking
 * is left out; only source prefixes in force count. */
static void test_addr_holder(void **state)
{
        struct pc_store *s = open_store();
        struct pc_vps *v = make_vps("vps-101", "lenoir", "198.51.100.24/29", "2001:db8:101::/64", "203.0.113.7", NULL);
        struct pc_exception e = exception_for("source-prefix:192.0.2.64/29", 0, 0);
        struct pc_exception old = exception_for("source-prefix:192.0.2.128/29", 0, 0);

        assert_int_equal(pc_store_vps_add(s, v, &alice), 0);
        pc_vps_free(v);
        add_vps(s, "vps-102", "lenoir", "198.51.100.40");
        /* inside a registered prefix, equal to it, around it */
        assert_string_equal(holder(s, "198.51.100.26", NULL, ALL), "vps-101 198.51.100.24/29");
        assert_string_equal(holder(s, "198.51.100.24/29", NULL, ALL), "vps-101 198.51.100.24/29");
        assert_string_equal(holder(s, "198.51.100.24/30", NULL, ALL), "vps-101 198.51.100.24/29");
        assert_string_equal(holder(s, "198.51.100.0/24", NULL, ALL), "vps-101 198.51.100.24/29");
        assert_string_equal(holder(s, "0.0.0.0/0", NULL, ALL), "vps-101 198.51.100.24/29");
        assert_string_equal(holder(s, "203.0.113.7", NULL, ALL), "vps-101 203.0.113.7/32");
        assert_string_equal(holder(s, "203.0.113.0/24", NULL, ALL), "vps-101 203.0.113.7/32");
        assert_string_equal(holder(s, "2001:db8:101::1", NULL, ALL), "vps-101 2001:db8:101::/64");
        assert_string_equal(holder(s, "2001:db8::/32", NULL, ALL), "vps-101 2001:db8:101::/64");
        /* next to it, and the other family's bytes, are not it */
        assert_string_equal(holder(s, "198.51.100.32/29", NULL, ALL), "");
        assert_string_equal(holder(s, "198.51.100.16/29", NULL, ALL), "");
        assert_string_equal(holder(s, "203.0.113.8", NULL, ALL), "");
        assert_string_equal(holder(s, "2001:db8:102::/64", NULL, ALL), "");
        assert_string_equal(holder(s, "c633:6418::/32", NULL, ALL), ""); /* 198.51.100.24 as IPv6 bytes */
        /* the asker's own addresses do not count; another's do */
        assert_string_equal(holder(s, "198.51.100.0/24", "vps-101", ALL), "vps-102 198.51.100.40/32");
        assert_string_equal(holder(s, "198.51.100.26", "vps-101", ALL), "");

        /* source prefixes granted: only when asked, only while in force */
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &alice, NULL), 0);
        assert_int_equal(pc_store_exception_grant(s, "vps-102", &old, &alice, NULL), 0);
        assert_string_equal(holder(s, "192.0.2.66", NULL, ALL), "vps-101 source-prefix:192.0.2.64/29 (granted)");
        assert_string_equal(holder(s, "192.0.2.0/24", NULL, ALL), "vps-101 source-prefix:192.0.2.64/29 (granted)");
        assert_string_equal(holder(s, "192.0.2.66", NULL, PC_ADDR_REGISTERED), "");
        assert_string_equal(holder(s, "192.0.2.66", "vps-101", ALL), "");
        assert_string_equal(holder(s, "192.0.2.130", NULL, ALL), "vps-102 source-prefix:192.0.2.128/29 (granted)");
        assert_int_equal(pc_store_exception_revoke(s, "vps-102", "source-prefix:192.0.2.128/29", &alice), 0);
        assert_string_equal(holder(s, "192.0.2.130", NULL, ALL), "");
        assert_int_equal(raw_exec(NULL, 0, "UPDATE exception SET until = 1000 WHERE service = ?", "t",
                                  "source-prefix:192.0.2.64/29"),
                         0);
        assert_string_equal(holder(s, "192.0.2.66", NULL, ALL), "");
        /* removed, nobody holds it */
        assert_int_equal(pc_store_vps_remove(s, "vps-101", &alice), 0);
        assert_string_equal(holder(s, "198.51.100.26", NULL, ALL), "");
        pc_store_close(s);
}

static void test_mac_holder(void **state)
{
        struct pc_store *s = open_store();
        struct pc_vps *v = make_vps("vps-101", "lenoir", "198.51.100.10", NULL);
        uint8_t mac[6], other[6];
        char who[PC_NAME_MAX] = "";

        assert_int_equal(pc_parse_mac("52:54:00:00:01:01", mac), 0);
        assert_int_equal(pc_parse_mac("52:54:00:00:01:02", other), 0);
        memcpy(v->mac, mac, 6);
        v->has_mac = true;
        assert_int_equal(pc_store_vps_add(s, v, &alice), 0);
        pc_vps_free(v);
        assert_int_equal(pc_store_mac_holder(s, mac, NULL, who, sizeof(who)), 1);
        assert_string_equal(who, "vps-101");
        assert_int_equal(pc_store_mac_holder(s, mac, "vps-101", who, sizeof(who)), 0);
        assert_int_equal(pc_store_mac_holder(s, other, NULL, who, sizeof(who)), 0);
        pc_store_close(s);
}

/* Tickets of schema 6 keep working in 7: pending ones are open (and can
 * be approved), an approved one whose exception was revoked early is
 * revoked, one whose exception ran out is expired, the rest as they were;
 * ids go on past the highest. */
static void test_ticket_migrate_v6(void **state)
{
        struct pc_store *s;
        struct pc_ticket t;
        struct pc_exception e = exception_for("", 0, 0);
        char parent[128];
        sqlite3 *db;
        int64_t id = 0;
        int v = -1;

        snprintf(parent, sizeof(parent), "%s/state", dir);
        assert_int_equal(mkdir(parent, 0750), 0);
        assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
        for (int i = 0; i < 6; i++)
                assert_int_equal(sqlite3_exec(db, pc_sqlite_migrations[i].sql, NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db,
                                      "PRAGMA user_version = 6;"
                                      "INSERT INTO vps (id, owner, lang, site, created) "
                                      "VALUES ('vps-101', 'ada@example.net', 'en', 'milano', 1000);"
                                      "INSERT INTO ticket (id, vps_id, service, state, opened_by, opened, text) VALUES "
                                      "(1, 'vps-101', 'smtp', 'pending', 'ada', 1000, 'mail'),"
                                      "(2, 'vps-101', 'vpn', 'approved', 'ada', 1000, 'vpn'),"
                                      "(3, 'vps-101', 'bittorrent', 'approved', 'ada', 1000, 'isos'),"
                                      "(4, 'vps-101', 'smtp', 'approved', 'ada', 1000, 'old mail'),"
                                      "(5, 'vps-101', 'smtp', 'denied', 'ada', 1000, 'no'),"
                                      "(6, 'vps-101', 'smtp', 'closed', 'ada', 1000, 'withdrawn');"
                                      "INSERT INTO exception (vps_id, service, ticket_id, \"by\", created, until) VALUES "
                                      "('vps-101', 'vpn', 2, 'bob', 1000, NULL),"
                                      "('vps-101', 'bittorrent', 3, 'bob', 1000, 2000);"
                                      "INSERT INTO exception (vps_id, service, ticket_id, \"by\", created, revoked_at, revoked_by) "
                                      "VALUES ('vps-101', 'smtp', 4, 'bob', 1000, 1500, 'bob');",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);

        s = open_store();
        assert_int_equal(pc_store_schema_version(s, &v), 0);
        assert_int_equal(v, pc_store_schema_latest());
        assert_int_equal(pc_store_ticket_get(s, 1, pc_now(), &t), 0);
        assert_int_equal(t.state, PC_TICKET_OPEN);
        assert_string_equal(t.text, "mail");
        assert_int_equal(pc_store_ticket_get(s, 2, pc_now(), &t), 0);
        assert_int_equal(t.state, PC_TICKET_APPROVED);
        assert_int_equal(t.exception_id, 1);
        assert_int_equal(pc_store_ticket_get(s, 3, pc_now(), &t), 0);
        assert_int_equal(t.state, PC_TICKET_EXPIRED);
        assert_int_equal(pc_store_ticket_get(s, 4, pc_now(), &t), 0);
        assert_int_equal(t.state, PC_TICKET_REVOKED);
        assert_int_equal(pc_store_ticket_get(s, 5, pc_now(), &t), 0);
        assert_int_equal(t.state, PC_TICKET_DENIED);
        assert_int_equal(pc_store_ticket_get(s, 6, pc_now(), &t), 0);
        assert_int_equal(t.state, PC_TICKET_CLOSED);
        /* the open one goes on through the process */
        assert_int_equal(pc_store_ticket_transition(s, 1, PC_TICKET_OPEN, PC_TICKET_APPROVED, &e, &bob, &id), 0);
        assert_true(id > 3);
        assert_int_equal(pc_store_ticket_get(s, 1, pc_now(), &t), 0);
        assert_int_equal(t.state, PC_TICKET_APPROVED);
        assert_int_equal(t.exception_id, id);
        snprintf(t.vps_id, sizeof(t.vps_id), "vps-101");
        snprintf(t.service, sizeof(t.service), "vpn");
        t.ports[0] = t.evidence[0] = '\0';
        assert_int_equal(pc_store_ticket_open(s, &t, &alice, &id), 0);
        assert_int_equal(id, 7);
        pc_store_close(s);
}

/* A database of schema 5 gets its addresses' networks and lengths, and
 * the lookups find what was there before the upgrade. */
static void test_addr_migrate_v5(void **state)
{
        struct pc_store *s;
        char parent[128];
        sqlite3 *db;
        int v = -1;

        snprintf(parent, sizeof(parent), "%s/state", dir);
        assert_int_equal(mkdir(parent, 0750), 0);
        assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
        for (int i = 0; i < 5; i++)
                assert_int_equal(sqlite3_exec(db, pc_sqlite_migrations[i].sql, NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db,
                                      "PRAGMA user_version = 5;"
                                      "INSERT INTO vps (id, owner, lang, site, mac, created) "
                                      "VALUES ('vps-101', 'ada@example.net', 'en', 'milano', '52:54:00:00:01:01', 1000);"
                                      "INSERT INTO vps_address (vps_id, family, prefix) VALUES "
                                      "('vps-101', 4, '198.51.100.24/29'), ('vps-101', 6, '2001:db8:101::/64');",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);

        s = open_store();
        assert_int_equal(pc_store_schema_version(s, &v), 0);
        assert_int_equal(v, pc_store_schema_latest());
        assert_int_equal(sq_int("SELECT count(*) FROM vps_address WHERE net IS NULL OR len IS NULL"), 0);
        assert_int_equal(sq_int("SELECT len FROM vps_address WHERE family = 4"), 29);
        assert_int_equal(sq_int("SELECT length(net) FROM vps_address WHERE family = 6"), 16);
        /* v11: each row's id is its rowid, the order it was given in. */
        assert_int_equal(sq_int("SELECT id FROM vps_address WHERE family = 4"), 1);
        assert_int_equal(sq_int("SELECT id FROM vps_address WHERE family = 6"), 2);
        assert_string_equal(holder(s, "198.51.100.30", NULL, ALL), "vps-101 198.51.100.24/29");
        assert_string_equal(holder(s, "2001:db8:101::9", NULL, ALL), "vps-101 2001:db8:101::/64");
        pc_store_close(s);
}

/* The plan SQLite makes for <sql>, its steps' details joined. */
static const char *plan_of(const char *sql)
{
        static char plan[512];
        char q[512];
        sqlite3 *db;
        sqlite3_stmt *st;
        size_t len = 0;

        plan[0] = '\0';
        snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
        assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW && len < sizeof(plan))
                len += snprintf(plan + len, sizeof(plan) - len, "%s; ", (const char *)sqlite3_column_text(st, 3));
        sqlite3_finalize(st);
        sqlite3_close(db);
        return plan;
}

/* The lookups use their indexes: a fleet's size costs them nothing. */
static void test_addr_holder_indexed(void **state)
{
        pc_store_close(open_store());
        assert_non_null(strstr(plan_of("SELECT vps_id, prefix FROM vps_address WHERE family = 4 AND net >= x'0a000000' "
                                       "AND net <= x'0a0000ff' AND vps_id IS DISTINCT FROM 'vps-1' LIMIT 1"),
                               "USING INDEX vps_address_net (family=? AND net>? AND net<?)"));
        assert_non_null(strstr(plan_of("SELECT vps_id, prefix FROM vps_address WHERE family = 4 AND net = x'0a000000' "
                                       "AND len = 8 AND vps_id IS DISTINCT FROM 'vps-1' LIMIT 1"),
                               "USING INDEX vps_address_net (family=? AND net=?)"));
        assert_non_null(strstr(plan_of("SELECT vps_id, service FROM exception WHERE service >= 'source-prefix:' "
                                       "AND service < 'source-prefix;' AND revoked_at IS NULL "
                                       "AND (until IS NULL OR until > 0) AND vps_id IS NOT NULL ORDER BY id"),
                               "exception_live_service"));
        assert_non_null(strstr(plan_of("SELECT id FROM vps WHERE mac = 'x' AND id IS NOT NULL LIMIT 1"), "vps_mac"));
}

/* ---- scale ------------------------------------------------------------ */

/* Runs <st> to its end with what is bound, and makes it ready for the
 * next values. */
static void raw_run(struct db *db, struct db_stmt *st)
{
        if (db_step(st) < 0)
                fail_msg("%s", db_errmsg(db));
        db_stmt_reset(st);
}

static void test_load_many(void **state)
{
        struct pc_store *s = open_store();
        const int n = 2000;
        struct pc_model *m;
        struct db *db;
        struct db_stmt *vst = NULL, *ast = NULL, *est = NULL;
        int64_t now = pc_now();

        /* Fill it the fast way, in one transaction of our own; the store's
         * own adds are covered above. */
        db = raw_open();
        assert_int_equal(db_begin(db), 0);
        assert_int_equal(db_prepare(db, "INSERT INTO vps (id, owner, lang, site, created) "
                                        "VALUES (?, 'o@example.net', 'en', ?, ?)", &vst),
                         0);
        assert_int_equal(db_prepare(db, "INSERT INTO vps_address (vps_id, family, prefix) VALUES (?, ?, ?)", &ast),
                         0);
        assert_int_equal(db_prepare(db, "INSERT INTO exception (vps_id, service, \"by\", created) "
                                        "VALUES (?, 'smtp', 'bench', ?)", &est),
                         0);
        for (int i = 0; i < n; i++) {
                char id[32], a4[32], a6[64];

                snprintf(id, sizeof(id), "vps-%05d", i);
                snprintf(a4, sizeof(a4), "10.%d.%d.1/32", i / 256, i % 256);
                snprintf(a6, sizeof(a6), "2001:db8:%x::/64", i);
                assert_int_equal(db_bind_text(vst, 1, id), 0);
                assert_int_equal(db_bind_text(vst, 2, i % 2 ? "lenoir" : "milano"), 0);
                assert_int_equal(db_bind_int64(vst, 3, now), 0);
                raw_run(db, vst);
                for (int k = 0; k < 2; k++) {
                        assert_int_equal(db_bind_text(ast, 1, id), 0);
                        assert_int_equal(db_bind_int64(ast, 2, k == 0 ? 4 : 6), 0);
                        assert_int_equal(db_bind_text(ast, 3, k == 0 ? a4 : a6), 0);
                        raw_run(db, ast);
                }
                if (i % 10 == 0) {
                        assert_int_equal(db_bind_text(est, 1, id), 0);
                        assert_int_equal(db_bind_int64(est, 2, now), 0);
                        raw_run(db, est);
                }
        }
        db_stmt_release(vst);
        db_stmt_release(ast);
        db_stmt_release(est);
        assert_int_equal(db_commit(db), 0);
        db_close(db);

        m = load(s);
        assert_int_equal(pc_model_count(m), n);
        for (int i = 0; i < n; i++) {
                char id[32];
                const struct pc_vps *v;

                snprintf(id, sizeof(id), "vps-%05d", i);
                v = pc_model_find(m, id);
                assert_non_null(v);
                assert_int_equal(v->n_addrs, 2);
                assert_int_equal(v->addrs[0].family, AF_INET);
                assert_int_equal(v->addrs[1].family, AF_INET6);
                assert_int_equal(v->n_exceptions, i % 10 == 0 ? 1 : 0);
                assert_ptr_equal(v->site, pc_config_site(cfg, i % 2 ? "lenoir" : "milano"));
        }
        pc_model_free(m);
        pc_store_close(s);
}

/* ---- incidents and actions, for support ------------------------------- */

struct seen {
        int64_t ids[8];
        size_t n;
        char evidence[128];
};

static int incident_seen(const struct pc_incident *i, void *userdata)
{
        struct seen *sn = userdata;

        if (sn->n < 8)
                sn->ids[sn->n++] = i->id;
        snprintf(sn->evidence, sizeof(sn->evidence), "%s", i->evidence != NULL ? i->evidence : "");
        return 0;
}

static int action_seen(const struct pc_store_action *a, void *userdata)
{
        struct seen *sn = userdata;

        if (sn->n < 8)
                sn->ids[sn->n++] = a->id;
        return 0;
}

/* Places a filter on <vps> for incident <incident> ending at <until>. */
static int64_t place_filter(struct pc_store *s, const char *vps, int64_t incident, int64_t until)
{
        struct pc_filter f = { .direction = PC_DIR_EGRESS, .scope = PC_SCOPE_ALL, .incident_id = incident,
                               .until = until };
        int64_t id = 0;

        assert_int_equal(pc_store_filter_place(s, vps, &f, &alice, &id), 0);
        return id;
}

struct attempts_seen {
        size_t n;
        char vps[PC_NAME_MAX];
        struct pc_attempt_count a[8];
};

static int attempt_seen(const struct pc_attempt_count *a, void *userdata)
{
        struct attempts_seen *x = userdata;

        if (x->n == PC_ARRAY_SIZE(x->a))
                return -ENOBUFS;
        snprintf(x->vps, sizeof(x->vps), "%s", a->vps_id);
        x->a[x->n] = *a;
        x->a[x->n++].vps_id = NULL; /* it pointed into the row */
        return 0;
}

/* The kernel's counts as portcullisd writes them: set (not added) per VPS,
 * direction, protocol and port; read back by range, by port, bounded; a
 * removed VPS's go with it. */
static void test_attempts(void **state)
{
        struct pc_store *s = open_store();
        struct attempts_seen x = { 0 };
        struct pc_attempt_count a = { "vps-101", PC_DIR_EGRESS, IPPROTO_TCP, 587, 3, 1000 };

        add_vps(s, "vps-101", "milano", "192.0.2.10");
        add_vps(s, "vps-102", "milano", "192.0.2.11");
        assert_int_equal(pc_store_tx_begin(s), 0);
        assert_int_equal(pc_store_attempt_note(s, &a), 0);
        a.packets = 7; /* the kernel's new count replaces the old */
        a.last_seen = 1200;
        assert_int_equal(pc_store_attempt_note(s, &a), 0);
        a.last_seen = 900; /* never back in time */
        assert_int_equal(pc_store_attempt_note(s, &a), 0);
        a.port = 25;
        a.packets = 2;
        assert_int_equal(pc_store_attempt_note(s, &a), 0);
        a.dir = PC_DIR_INGRESS;
        a.packets = 4;
        assert_int_equal(pc_store_attempt_note(s, &a), 0);
        a = (struct pc_attempt_count){ "vps-102", PC_DIR_EGRESS, IPPROTO_TCP, 587, 50, 1000 };
        assert_int_equal(pc_store_attempt_note(s, &a), 0);
        a.vps_id = "vps-999"; /* not registered: nothing written, the rest stands */
        assert_int_equal(pc_store_attempt_note(s, &a), -ENOENT);
        a = (struct pc_attempt_count){ "vps-101", PC_DIR_BOTH, IPPROTO_TCP, 80, 1, 1000 };
        assert_int_equal(pc_store_attempt_note(s, &a), -EINVAL);
        a = (struct pc_attempt_count){ "vps-101", PC_DIR_EGRESS, 47 /* gre */, 0, 1, 1000 };
        assert_int_equal(pc_store_attempt_note(s, &a), -EINVAL);
        assert_int_equal(pc_store_tx_end(s, 0), 0);
        assert_int_equal(count_rows("vps_attempt"), 4);
        assert_int_equal(n_audit(s, NULL, NULL), 2); /* the adds: a count is no change */

        assert_int_equal(pc_store_attempt_list(s, "vps-101", IPPROTO_TCP, 0, 65535, 0, attempt_seen, &x), 0);
        assert_int_equal(x.n, 3);
        assert_string_equal(x.vps, "vps-101");
        assert_int_equal(x.a[0].port, 25);
        assert_int_equal(x.a[0].dir, PC_DIR_EGRESS);
        assert_int_equal(x.a[0].packets, 2);
        assert_int_equal(x.a[1].port, 25);
        assert_int_equal(x.a[1].dir, PC_DIR_INGRESS);
        assert_int_equal(x.a[2].port, 587);
        assert_int_equal(x.a[2].proto, IPPROTO_TCP);
        assert_int_equal(x.a[2].packets, 7);
        assert_int_equal(x.a[2].last_seen, 1200);
        x.n = 0;
        assert_int_equal(pc_store_attempt_list(s, "vps-101", IPPROTO_TCP, 500, 600, 0, attempt_seen, &x), 0);
        assert_int_equal(x.n, 1);
        x.n = 0;
        assert_int_equal(pc_store_attempt_list(s, "vps-101", IPPROTO_UDP, 0, 65535, 0, attempt_seen, &x), 0);
        assert_int_equal(x.n, 0);
        assert_int_equal(pc_store_attempt_list(s, "vps-101", IPPROTO_TCP, 0, 65535, 1, attempt_seen, &x), 0);
        assert_int_equal(x.n, 1);

        /* A transaction that fails writes none of its counts. */
        a = (struct pc_attempt_count){ "vps-101", PC_DIR_EGRESS, IPPROTO_UDP, 53, 9, 1000 };
        assert_int_equal(pc_store_tx_begin(s), 0);
        assert_int_equal(pc_store_attempt_note(s, &a), 0);
        assert_int_equal(pc_store_tx_end(s, -EIO), -EIO);
        x.n = 0;
        assert_int_equal(pc_store_attempt_list(s, "vps-101", IPPROTO_UDP, 0, 65535, 0, attempt_seen, &x), 0);
        assert_int_equal(x.n, 0);

        assert_int_equal(pc_store_vps_remove(s, "vps-101", &bob), 0);
        assert_int_equal(pc_store_attempt_list(s, "vps-101", IPPROTO_TCP, 0, 65535, 0, attempt_seen, &x), 0);
        assert_int_equal(x.n, 0);
        assert_int_equal(pc_store_attempt_list(s, "vps-102", IPPROTO_TCP, 0, 65535, 0, attempt_seen, &x), 0);
        assert_int_equal(x.n, 1);
        assert_int_equal(x.a[0].packets, 50);
        assert_int_equal(count_rows("vps_attempt"), 1);
        pc_store_close(s);
}

/* Listing and reading incidents: newest first, filtered by VPS, kind and
 * state, with evidence and the number of actions. */
static void test_incident_list(void **state)
{
        struct pc_store *s = open_store();
        int64_t now = pc_now(), a = 0, b = 0, c = 0;
        struct seen sn = { 0 };
        bool opened;

        add_vps(s, "vps-101", "milano", "192.0.2.10");
        add_vps(s, "vps-102", "milano", "192.0.2.11");
        assert_int_equal(pc_store_incident_note(s, "vps-101", "scan", 5, now, "{\"ports\":5}", 300, &a, &opened, 0), 0);
        assert_int_equal(pc_store_incident_note(s, "vps-101", "spam", 1, now, NULL, 300, &b, &opened, 0), 0);
        assert_int_equal(pc_store_incident_note(s, "vps-102", "scan", 1, now, NULL, 300, &c, &opened, 0), 0);
        place_filter(s, "vps-101", a, now + 3600);
        assert_int_equal(pc_store_incident_list(s, NULL, NULL, false, 0, incident_seen, &sn), 0);
        assert_int_equal(sn.n, 3);
        assert_int_equal(sn.ids[0], c);
        assert_int_equal(sn.ids[2], a);
        /* a page's keyset: only ids below <before> */
        sn.n = 0;
        assert_int_equal(pc_store_incident_list(s, NULL, NULL, false, c, incident_seen, &sn), 0);
        assert_int_equal(sn.n, 2);
        assert_int_equal(sn.ids[0], b);
        sn.n = 0;
        assert_int_equal(pc_store_incident_list(s, NULL, NULL, false, -1, incident_seen, &sn), -EINVAL);
        sn.n = 0;
        assert_int_equal(pc_store_incident_list(s, "vps-101", "scan", false, 0, incident_seen, &sn), 0);
        assert_int_equal(sn.n, 1);
        assert_string_equal(sn.evidence, "{\"ports\":5}");
        sn.n = 0;
        assert_int_equal(pc_store_incident_list(s, "vps-999", NULL, false, 0, incident_seen, &sn), 0);
        assert_int_equal(sn.n, 0);
        assert_int_equal(pc_store_incident_get(s, 999, incident_seen, &sn), -ENOENT);
        assert_non_null(strstr(pc_store_errmsg(s), "incident #999 does not exist"));
        assert_int_equal(pc_store_incident_close(s, b, false, &alice, NULL), 0);
        sn.n = 0;
        assert_int_equal(pc_store_incident_list(s, "vps-101", NULL, true, 0, incident_seen, &sn), 0);
        assert_int_equal(sn.n, 1);
        assert_int_equal(sn.ids[0], a);
        pc_store_close(s);
}

/* Closing an incident: audited, needs a reason, once; its actions stay
 * unless asked, then each is lifted with its audit row and email. */
static void test_incident_close(void **state)
{
        struct pc_store *s = open_store();
        int64_t now = pc_now(), a = 0, b = 0, f1, f2;
        struct pc_store_action act;
        struct audit_rows *rows;
        size_t lifted = 99;
        bool opened;
        char buf[64];

        add_vps(s, "vps-101", "milano", "192.0.2.10");
        assert_int_equal(pc_store_incident_note(s, "vps-101", "scan", 5, now, NULL, 300, &a, &opened, 0), 0);
        assert_int_equal(pc_store_incident_note(s, "vps-101", "spam", 5, now, NULL, 300, &b, &opened, 0), 0);
        f1 = place_filter(s, "vps-101", a, now + 3600);
        f2 = place_filter(s, "vps-101", b, 0);
        assert_int_equal(pc_store_incident_close(s, a, false, &bob, NULL), -EINVAL); /* no reason */
        assert_int_equal(pc_store_incident_close(s, 999, false, &alice, NULL), -ENOENT);
        assert_int_equal(pc_store_incident_close(s, a, false, &alice, &lifted), 0);
        assert_int_equal(lifted, 0);
        assert_int_equal(pc_store_action_get(s, f1, &act), 0);
        assert_int_equal(act.lifted_at, 0);
        assert_int_equal(pc_store_action_get(s, f2, &act), 0);
        assert_int_equal(act.lifted_at, 0);
        assert_int_equal(n_audit(s, NULL, "incident.close"), 1);
        rows = audit_of(s, NULL, 1); /* the newest */
        assert_int_equal(rows->n, 1);
        assert_string_equal(rows->e[0].action, "incident.close");
        assert_string_equal(rows->e[0].object, "incident/1");
        assert_string_equal(json_field(rows->before[0], "state", buf, sizeof(buf)), "open");
        assert_string_equal(json_field(rows->after[0], "state", buf, sizeof(buf)), "closed");
        free(rows);
        assert_int_equal(pc_store_incident_close(s, a, true, &alice, &lifted), -EALREADY);
        assert_non_null(strstr(pc_store_errmsg(s), "closed already"));
        assert_int_equal(pc_store_incident_close(s, b, true, &alice, &lifted), 0);
        assert_int_equal(lifted, 1);
        assert_int_equal(pc_store_action_get(s, f1, &act), 0);
        assert_int_equal(act.lifted_at, 0);
        assert_int_equal(pc_store_action_get(s, f2, &act), 0);
        assert_true(act.lifted_at >= now);
        assert_string_equal(act.lifted_by, "alice");
        assert_int_equal(n_notifications(s, "filter.lifted", NULL, NULL, NULL, 0), 1);
        pc_store_close(s);
}

/* Actions: list (active only), lift a filter or a suspension once, extend
 * and make permanent a filter; every refusal leaves everything as it was. */
static void test_actions(void **state)
{
        struct pc_store *s = open_store();
        int64_t now = pc_now(), inc = 0, f1, f2, su = 0, audits;
        struct pc_store_action a;
        struct seen sn = { 0 };
        bool opened;

        add_vps(s, "vps-101", "milano", "192.0.2.10");
        assert_int_equal(pc_store_incident_note(s, "vps-101", "spoof", 1, now, NULL, 300, &inc, &opened, 0), 0);
        assert_int_equal(pc_store_incident_note(s, "vps-101", "scan", 1, now, NULL, 300, &inc, &opened, 0), 0);
        f1 = place_filter(s, "vps-101", inc, now + 3600);
        f2 = place_filter(s, "vps-101", 0, 0);
        assert_int_equal(pc_store_suspend(s, "vps-101", 0, &alice, &su), 0);
        assert_int_equal(pc_store_action_list(s, "vps-101", 0, true, now, 0, action_seen, &sn), 0);
        assert_int_equal(sn.n, 3);
        assert_int_equal(sn.ids[0], su);
        sn.n = 0;
        assert_int_equal(pc_store_action_list(s, NULL, inc, false, now, 0, action_seen, &sn), 0);
        assert_int_equal(sn.n, 1);
        assert_int_equal(sn.ids[0], f1);

        assert_int_equal(pc_store_action_get(s, f1, &a), 0);
        assert_string_equal(a.kind, "filter");
        assert_int_equal(a.incident_id, inc);
        assert_int_equal(a.until, now + 3600);
        assert_string_equal(pc_store_action_state(&a, now), "active");
        assert_string_equal(pc_store_action_state(&a, now + 3600), "expired");
        assert_int_equal(pc_store_action_get(s, 999, &a), -ENOENT);

        audits = (int64_t)n_audit(s, NULL, NULL);
        /* extend: later only, a filter only, a future time only */
        assert_int_equal(pc_store_action_set_until(s, f1, now + 1800, &alice), -EINVAL);
        assert_non_null(strstr(pc_store_errmsg(s), "the new end must be later"));
        assert_int_equal(pc_store_action_set_until(s, f1, now - 10, &alice), -EINVAL);
        assert_int_equal(pc_store_action_set_until(s, su, now + 7200, &alice), -EINVAL);
        assert_non_null(strstr(pc_store_errmsg(s), "is a suspension"));
        assert_int_equal(pc_store_action_set_until(s, f2, now + 7200, &alice), -EINVAL);
        assert_int_equal(pc_store_action_set_until(s, f2, 0, &alice), -EALREADY);
        assert_int_equal(pc_store_action_set_until(s, 999, 0, &alice), -ENOENT);
        assert_int_equal(n_audit(s, NULL, NULL), audits);
        assert_int_equal(pc_store_action_set_until(s, f1, now + 7200, &alice), 0);
        assert_int_equal(pc_store_action_get(s, f1, &a), 0);
        assert_int_equal(a.until, now + 7200);
        assert_int_equal(n_audit(s, NULL, "filter.extend"), 1);
        assert_int_equal(pc_store_action_set_until(s, f1, 0, &alice), 0);
        assert_int_equal(pc_store_action_get(s, f1, &a), 0);
        assert_int_equal(a.until, 0);
        assert_int_equal(raw_int("SELECT count(*) FROM action WHERE id = ? AND until IS NULL", "i", f1), 1);
        assert_int_equal(n_audit(s, NULL, "filter.make-permanent"), 1);

        /* lift: once; a suspension as unsuspend does (closes the episodes) */
        assert_int_equal(pc_store_action_lift(s, f1, &bob), 0);
        assert_int_equal(pc_store_action_lift(s, f1, &bob), -EALREADY);
        assert_non_null(strstr(pc_store_errmsg(s), "was lifted already (by bob"));
        assert_int_equal(pc_store_action_set_until(s, f1, 0, &bob), -EALREADY);
        assert_int_equal(pc_store_action_lift(s, su, &bob), 0);
        assert_int_equal(n_audit(s, NULL, "vps.unsuspend"), 1);
        assert_int_equal(n_open_incidents(s), 0);
        assert_int_equal(n_notifications(s, "filter.lifted", NULL, NULL, NULL, 0), 1);
        assert_int_equal(n_notifications(s, "vps.unsuspended", NULL, NULL, NULL, 0), 1);
        assert_int_equal(pc_store_action_lift(s, 999, &bob), -ENOENT);
        sn.n = 0;
        assert_int_equal(pc_store_action_list(s, "vps-101", 0, true, now, 0, action_seen, &sn), 0);
        assert_int_equal(sn.n, 1);
        assert_int_equal(sn.ids[0], f2);
        /* an expired filter cannot be lifted or extended */
        assert_int_equal(raw_exec(NULL, 0, "UPDATE action SET until = 1000 WHERE id = ?", "i", f2), 0);
        assert_int_equal(pc_store_action_lift(s, f2, &bob), -EALREADY);
        assert_non_null(strstr(pc_store_errmsg(s), "ended already"));
        pc_store_close(s);
}

/* The tests of every engine. */
#define ENGINE_TESTS(X) \
        X(test_open_creates_schema) \
        X(test_newer_schema_refused) \
        X(test_open_never_creates) \
        X(test_operation_transaction) \
        X(test_failed_statement_in_tx) \
        X(test_fds_cloexec) \
        X(test_vps_roundtrip) \
        X(test_vps_duplicates) \
        X(test_exceptions) \
        X(test_two_handles) \
        X(test_tickets) \
        X(test_exception_ended) \
        X(test_suspend) \
        X(test_terminate) \
        X(test_unterminate) \
        X(test_filters) \
        X(test_unknown_site) \
        X(test_audit) \
        X(test_atomicity) \
        X(test_outbox) \
        X(test_notification_due) \
        X(test_notification_sending) \
        X(test_notification_retry_later) \
        X(test_notification_failed) \
        X(test_notification_retry) \
        X(test_notification_queue) \
        X(test_exception_expiry_notices) \
        X(test_unsuspend_closes_episode) \
        X(test_incident_notice) \
        X(test_vps_departed) \
        X(test_vps_departing) \
        X(test_incident_times) \
        X(test_incident_list) \
        X(test_attempts) \
        X(test_incident_close) \
        X(test_actions) \
        X(test_notification_list) \
        X(test_ids_never_reused) \
        X(test_injection) \
        X(test_load_many) \
        X(test_addr_holder) \
        X(test_mac_holder) \
        X(test_vps_update) \
        X(test_vps_set_state)

/* SQLite's own: migrations from its old schema versions, its file
 * deleted under the store, its query plans; URL parsing (no engine: once
 * is enough). */
#define SQLITE_TESTS(X) \
        X(test_urls) \
        X(test_write_after_delete) \
        X(test_notification_migrate_v1) \
        X(test_ids_migrate_v3) \
        X(test_addr_migrate_v5) \
        X(test_ticket_migrate_v6) \
        X(test_addr_holder_indexed) \
        X(test_run_state_migrate_v7)

#define ON_SQLITE(f) cmocka_unit_test_setup_teardown(f, setup, teardown),
#define ON_PG(f) cmocka_unit_test_setup_teardown(f, setup_pg, teardown),

/* The tests of every engine on the PostgreSQL database of <url_pg>,
 * which they empty.  1 if it does not answer. */
static int run_pg(const char *url_pg)
{
        static const struct CMUnitTest pg_tests[] = { ENGINE_TESTS(ON_PG) };
        int r;

        pg_url = url_pg;
        if (strlen(pg_url) >= sizeof(url)) {
                fprintf(stderr, "PC_TEST_PG_URL is too long\n");
                return 1;
        }
        pg_admin = PQconnectdb(pg_url);
        if (PQstatus(pg_admin) != CONNECTION_OK) {
                fprintf(stderr, "PC_TEST_PG_URL %s: cannot connect: %s", pg_url, PQerrorMessage(pg_admin));
                PQfinish(pg_admin);
                return 1;
        }
        PQclear(PQexec(pg_admin, "SET client_min_messages = error")); /* DROP ... CASCADE's notices */
        r = cmocka_run_group_tests_name("store on PostgreSQL", pg_tests, group_setup, group_teardown);
        PQfinish(pg_admin);
        return r;
}

/* Without PC_TEST_PG_URL: every test on SQLite.  With it: the tests of
 * every engine on PostgreSQL, which must answer (tests/pg/store_test.sh). */
int main(void)
{
        static const struct CMUnitTest sqlite_tests[] = { ENGINE_TESTS(ON_SQLITE) SQLITE_TESTS(ON_SQLITE) };
        const char *u = getenv("PC_TEST_PG_URL");

        if (u != NULL && u[0] != '\0')
                return run_pg(u);
        return cmocka_run_group_tests_name("store on SQLite", sqlite_tests, group_setup, group_teardown);
}
