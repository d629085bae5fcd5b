/* The SQLite store, against a real database file in a temporary folder:
 * schema and migrations, every change with its audit and outbox rows,
 * atomicity of failed changes, load into the model, URL parsing. */
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
#include <sqlite3.h>

#include "store/store-internal.h" /* the migrations, for the upgrade test */

#define INJECTION "x'); DROP TABLE vps;--"

static struct pc_config *cfg;
static char dir[64];      /* the temporary folder */
static char dbpath[128];  /* dir/state/portcullis.db: "state" does not exist yet */
static char url[160];     /* sqlite:dbpath */

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

static int setup(void **state)
{
        snprintf(dir, sizeof(dir), "/tmp/pc-test-store-XXXXXX");
        if (mkdtemp(dir) == NULL)
                return -1;
        snprintf(dbpath, sizeof(dbpath), "%s/state/portcullis.db", dir);
        snprintf(url, sizeof(url), "sqlite:%s", dbpath);
        return 0;
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

/* Runs <sql> on a connection of our own and returns the first column of
 * the first row as an integer (-1 if no row). */
static int64_t raw_int(const char *sql)
{
        sqlite3 *db;
        sqlite3_stmt *st;
        int64_t v = -1;

        assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        if (sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return v;
}

/* Same, the first column as text into <buf> ("" for no row or NULL). */
static char *raw_text(const char *sql, char *buf, size_t size)
{
        sqlite3 *db;
        sqlite3_stmt *st;

        buf[0] = '\0';
        assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
                snprintf(buf, size, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        sqlite3_close(db);
        return buf;
}

/* Runs <sql> on our own connection; returns the SQLite result and the
 * message in <msg>. */
static int raw_exec(const char *sql, char *msg, size_t size)
{
        sqlite3 *db;
        char *m = NULL;
        int rc;

        assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        rc = sqlite3_exec(db, sql, NULL, NULL, &m);
        if (msg != NULL)
                snprintf(msg, size, "%s", m != NULL ? m : "");
        sqlite3_free(m);
        sqlite3_close(db);
        return rc;
}

static int64_t count_rows(const char *table)
{
        char sql[128];

        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
        return raw_int(sql);
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

/* ---- schema and opening ------------------------------------------------ */

static void test_open_creates_schema(void **state)
{
        struct pc_store *s = open_store();
        struct stat sb;
        char buf[64], parent[128];
        int v = -1;

        assert_int_equal(pc_store_schema_latest(), 12);
        assert_int_equal(pc_store_schema_version(s, &v), 0);
        assert_int_equal(v, pc_store_schema_latest());
        assert_int_equal(raw_int("PRAGMA user_version"), pc_store_schema_latest());
        assert_string_equal(raw_text("PRAGMA journal_mode", buf, sizeof(buf)), "wal");
        assert_int_equal(raw_int("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                                 "name IN ('vps', 'vps_address', 'ticket', 'ticket_event', "
                                 "'exception', 'incident', 'action', 'notification', 'audit')"),
                         9);

        /* The parent folder was created 0750, the file is 0640. */
        snprintf(parent, sizeof(parent), "%s/state", dir);
        assert_int_equal(stat(parent, &sb), 0);
        assert_int_equal(sb.st_mode & 07777, 0750);
        assert_int_equal(stat(dbpath, &sb), 0);
        assert_int_equal(sb.st_mode & 07777, 0640);

        /* Reopening is idempotent and keeps the data. */
        add_vps(s, "vps-101", "milano", "192.0.2.10");
        s = pc_store_close(s);
        assert_null(s);
        s = open_store();
        assert_int_equal(pc_store_schema_version(s, &v), 0);
        assert_int_equal(v, pc_store_schema_latest());
        assert_int_equal(count_rows("vps"), 1);
        pc_store_close(s);
        assert_null(pc_store_close(NULL));
}

static void test_newer_schema_refused(void **state)
{
        struct pc_store *s = NULL;
        char err[512], buf[64], parent[128];

        snprintf(parent, sizeof(parent), "%s/state", dir);
        assert_int_equal(mkdir(parent, 0750), 0);
        {
                sqlite3 *db;

                assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
                assert_int_equal(sqlite3_exec(db, "CREATE TABLE future (x); PRAGMA user_version = 99",
                                              NULL, NULL, NULL),
                                 SQLITE_OK);
                sqlite3_close(db);
        }
        assert_int_equal(pc_store_open(url, &s, err, sizeof(err)), -EPROTONOSUPPORT);
        assert_null(s);
        snprintf(buf, sizeof(buf), "up to %d; upgrade portcullis", pc_store_schema_latest());
        assert_non_null(strstr(err, "is at schema version 99 but this portcullis knows versions "));
        assert_non_null(strstr(err, buf));
        assert_non_null(strstr(err, dbpath));
        /* Untouched: same version, no tables of ours, journal mode as it was. */
        assert_int_equal(raw_int("PRAGMA user_version"), 99);
        assert_int_equal(raw_int("SELECT count(*) FROM sqlite_master WHERE name = 'vps'"), 0);
        assert_string_equal(raw_text("PRAGMA journal_mode", buf, sizeof(buf)), "delete");
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
 * read-only open say there is none and leave no file or folder behind. */
static void test_open_never_creates(void **state)
{
        struct pc_store *s = NULL;
        char err[512], want[256], parent[128];
        bool created = false;
        int fd;

        snprintf(want, sizeof(want), "no database at %s", dbpath);
        snprintf(parent, sizeof(parent), "%s/state", dir);
        assert_int_equal(pc_store_open(url, &s, err, sizeof(err)), -ENOENT);
        assert_string_equal(err, want);
        assert_null(s);
        assert_int_equal(pc_store_open_readonly(url, &s, err, sizeof(err)), -ENOENT);
        assert_string_equal(err, want);
        assert_int_equal(access(parent, F_OK), -1);

        /* An empty file (an initialisation that died before its schema) is
         * no database either, and stays empty. */
        assert_int_equal(mkdir(parent, 0750), 0);
        fd = open(dbpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(pc_store_open(url, &s, err, sizeof(err)), -ENOENT);
        assert_non_null(strstr(err, want));
        assert_int_equal(raw_int("PRAGMA user_version"), 0);

        /* init gives it the schema, then finds it there. */
        assert_int_equal(pc_store_init(url, &created, &s, err, sizeof(err)), 0);
        assert_false(created);
        s = pc_store_close(s);
        assert_int_equal(unlink(dbpath), 0);
        assert_int_equal(pc_store_init(url, &created, &s, err, sizeof(err)), 0);
        assert_true(created);
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
        assert_int_equal(count_rows("vps"), 0);
        assert_int_equal(count_rows("audit"), 0);

        assert_int_equal(pc_store_tx_begin(s), 0);
        assert_int_equal(pc_store_vps_add(s, v, &alice), 0);
        assert_int_equal(pc_store_vps_add(s, v, &alice), -EEXIST);
        assert_int_equal(pc_store_tx_begin(s), 0); /* nests */
        add_vps(s, "vps-102", "milano", "192.0.2.11");
        assert_int_equal(pc_store_tx_end(s, 0), 0);
        assert_int_equal(pc_store_tx_end(s, 0), 0);
        assert_int_equal(count_rows("vps"), 2);
        assert_int_equal(count_rows("audit"), 2);
        m = load(s);
        assert_int_equal(pc_model_count(m), 2);
        pc_model_free(m);
        pc_vps_free(v);
        pc_store_close(s);
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

static void test_fds_cloexec(void **state)
{
        struct pc_store *s = open_store();
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        int checked = 0;

        add_vps(s, "vps-101", "milano", "192.0.2.10"); /* opens the -wal and -shm files */
        assert_non_null(d);
        while ((de = readdir(d)) != NULL) {
                int fd = atoi(de->d_name);
                char link[64], target[512];
                ssize_t n;

                if (de->d_name[0] == '.' || fd <= 2 || fd == dirfd(d))
                        continue;
                snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
                n = readlink(link, target, sizeof(target) - 1);
                if (n < 0)
                        continue;
                target[n] = '\0';
                if (strncmp(target, dir, strlen(dir)) != 0)
                        continue;
                if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
                        fail_msg("fd %d (%s) is not close-on-exec", fd, target);
                checked++;
        }
        closedir(d);
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
        assert_int_equal(raw_int("SELECT count(*) FROM vps_address WHERE vps_id = 'vps-101'"), 0);
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
        assert_int_equal(raw_int("SELECT count(*) FROM vps WHERE id = 'vps-102'"), 0);
        assert_int_equal(raw_int("SELECT count(*) FROM vps_address WHERE prefix = "
                                 "'198.51.100.1/32'"),
                         0);

        v = make_vps("vps-103", "milano", "203.0.113.5", "203.0.113.5", NULL);
        assert_int_equal(pc_store_vps_add(s, v, &alice), -EEXIST);
        assert_string_equal(pc_store_errmsg(s), "address 203.0.113.5/32 is listed twice for vps-103");
        pc_vps_free(v);

        /* Only the one successful add was audited. */
        assert_int_equal(count_rows("audit"), 1);
        assert_int_equal(count_rows("vps"), 1);

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
        assert_int_equal(count_rows("vps"), 1);
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
        assert_int_equal(raw_exec("UPDATE exception SET until = strftime('%s', 'now') - 10 "
                                  "WHERE service = 'vpn'",
                                  NULL, 0),
                         SQLITE_OK);
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
        assert_int_equal(raw_int("SELECT count(*) FROM ticket_event"), 5); /* 3 opened, approved, revoked */

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
        char sql[256];

        add_vps(s, "vps-101", "milano", "192.0.2.10");
        assert_int_equal(pc_store_exception_ended(s, "vps-101", "smtp", now, &got), -ENOENT);
        e = exception_for("smtp", now + 3600, 0);
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &alice, &a), 0);
        assert_int_equal(pc_store_exception_ended(s, "vps-101", "smtp", now, &got), -ENOENT);
        snprintf(sql, sizeof(sql), "UPDATE exception SET until = %lld WHERE id = %lld", (long long)now - 60,
                 (long long)a);
        assert_int_equal(raw_exec(sql, NULL, 0), SQLITE_OK);
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
        struct pc_model *m;
        const struct pc_vps *got;
        int64_t id = 0, id2 = 0;
        char want[256], since[32];

        add_vps(s, "vps-101", "lenoir", "192.0.2.10");
        assert_int_equal(pc_store_suspend(s, "vps-101", 0, &alice, &id), 0);
        assert_true(id > 0);
        assert_int_equal(pc_store_suspend(s, "vps-101", 0, &alice, &id2), -EALREADY);
        assert_int_equal(id2, 0);
        pc_format_time(raw_int("SELECT created FROM action"), since, sizeof(since));
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
        assert_int_equal(raw_int("SELECT count(*) FROM notification WHERE kind = 'vps.terminated' "
                                 "AND channel = 'email'"), 1);
        assert_int_equal(raw_int("SELECT count(*) FROM notification WHERE kind = 'vps.terminated' "
                                 "AND channel = 'webhook' AND recipient = 'http://crm.example.net/hook'"), 1);
        raw_text("SELECT payload FROM notification WHERE channel = 'webhook'", buf, sizeof(buf));
        assert_non_null(strstr(buf, "203.0.113.9"));
        assert_int_equal(raw_int("SELECT count(*) FROM audit WHERE action = 'vps.terminate'"), 1);
        /* support cannot lift it, by either path; an admin's override can */
        assert_int_equal(pc_store_unsuspend(s, "vps-101", &bob), -EPERM);
        assert_non_null(strstr(pc_store_errmsg(s), "vps-101 is terminated"));
        assert_int_equal(pc_store_action_lift(s, id, &bob), -EPERM);
        assert_int_equal(pc_store_incident_close(s, incident, true, &alice, NULL), -EPERM);
        assert_int_equal(pc_store_unsuspend(s, "vps-101", &admin), 0);
        assert_int_equal(raw_int("SELECT count(*) FROM audit WHERE action = 'vps.unterminate' AND \"by\" = 'carol'"),
                         1);
        /* not suspended: a new termination, no webhook without a URL */
        assert_int_equal(pc_store_terminate(s, "vps-101", 0, "by hand", "", &alice, &id2), 0);
        assert_true(id2 > id);
        assert_int_equal(raw_int("SELECT count(*) FROM notification WHERE channel = 'webhook'"), 1);
        assert_int_not_equal(raw_exec("UPDATE action SET terminated = 0", buf, sizeof(buf)), SQLITE_OK);
        assert_non_null(strstr(buf, "a termination stays a termination"));
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
        assert_int_equal(raw_int("SELECT count(*) FROM notification WHERE kind = 'vps.unterminated' "
                                 "AND channel = 'email' AND recipient = 'owner-vps-101@example.net'"), 1);
        assert_int_equal(raw_int("SELECT count(*) FROM notification WHERE kind = 'vps.unsuspended'"), 0);
        assert_int_equal(raw_int("SELECT count(*) FROM notification WHERE kind = 'vps.unterminated' "
                                 "AND channel = 'webhook' AND recipient = 'http://crm.example.net/hook'"), 1);
        raw_text("SELECT payload FROM notification WHERE kind = 'vps.unterminated' AND channel = 'webhook'", buf,
                 sizeof(buf));
        assert_non_null(strstr(buf, "\"event\":\"vps.unterminated\""));
        assert_non_null(strstr(buf, "\"by\":\"carol\""));
        assert_non_null(strstr(buf, "\"reason\":\"reviewed: not spoofing\""));
        assert_non_null(strstr(buf, "\"owner\":\"owner-vps-101@example.net\""));
        assert_non_null(strstr(buf, "\"delivery\":\""));
        assert_non_null(strstr(buf, "\"terminated\":true"));
        /* action lift --admin-override, and incident close --lift-actions */
        assert_int_equal(pc_store_terminate(s, "vps-101", 0, "by hand", "", &alice, &id), 0);
        assert_int_equal(pc_store_action_lift(s, id, &admin), 0);
        assert_int_equal(raw_int("SELECT count(*) FROM notification WHERE kind = 'vps.unterminated' "
                                 "AND channel = 'webhook'"), 2);
        assert_int_equal(pc_store_incident_note(s, "vps-101", "spoof", 1, 1000, "{\"kind\":\"ipv4-source\"}", 60,
                                                &incident, &opened, 0),
                         0);
        assert_int_equal(pc_store_terminate(s, "vps-101", incident, "again", "", &alice, &id), 0);
        assert_int_equal(pc_store_incident_close(s, incident, true, &admin, NULL), 0);
        assert_int_equal(raw_int("SELECT count(*) FROM notification WHERE kind = 'vps.unterminated' "
                                 "AND channel = 'webhook'"), 3);
        /* a suspension that is no termination: vps.unsuspended, no event */
        assert_int_equal(pc_store_suspend(s, "vps-101", 0, &alice, &id), 0);
        assert_int_equal(pc_store_unsuspend(s, "vps-101", &admin), 0);
        assert_int_equal(raw_int("SELECT count(*) FROM notification WHERE kind = 'vps.unsuspended'"), 1);
        assert_int_equal(raw_int("SELECT count(*) FROM notification WHERE channel = 'webhook'"), 3);
        /* no webhook configured: the owner's email only */
        admin.webhook_url = "";
        assert_int_equal(pc_store_terminate(s, "vps-101", 0, "by hand", "", &alice, &id), 0);
        assert_int_equal(pc_store_unsuspend(s, "vps-101", &admin), 0);
        assert_int_equal(raw_int("SELECT count(*) FROM notification WHERE kind = 'vps.unterminated' "
                                 "AND channel = 'email'"), 4);
        assert_int_equal(raw_int("SELECT count(*) FROM notification WHERE channel = 'webhook'"), 3);
        /* vps remove --admin-override of a terminated VPS: the event, marked
         * removed, and no email (the VPS is gone) */
        admin.webhook_url = "http://crm.example.net/hook";
        assert_int_equal(pc_store_terminate(s, "vps-101", 0, "by hand", "", &alice, &id), 0);
        assert_int_equal(pc_store_vps_remove(s, "vps-101", &admin), 0);
        assert_int_equal(raw_int("SELECT count(*) FROM notification WHERE kind = 'vps.unterminated' "
                                 "AND channel = 'webhook'"), 4);
        assert_int_equal(raw_int("SELECT count(*) FROM notification WHERE kind = 'vps.unterminated' "
                                 "AND channel = 'email'"), 4);
        raw_text("SELECT payload FROM notification WHERE kind = 'vps.unterminated' AND channel = 'webhook' "
                 "ORDER BY id DESC LIMIT 1", buf, sizeof(buf));
        assert_non_null(strstr(buf, "\"removed\":true"));
        assert_non_null(strstr(buf, "\"vps\":\"vps-101\""));
        /* a VPS that is not terminated: removed without an event */
        add_vps(s, "vps-102", "lenoir", "192.0.2.11");
        assert_int_equal(pc_store_vps_remove(s, "vps-102", &admin), 0);
        assert_int_equal(raw_int("SELECT count(*) FROM notification WHERE channel = 'webhook'"), 4);
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
        assert_int_equal(raw_exec("UPDATE action SET until = strftime('%s', 'now') - 1 "
                                  "WHERE scope = 'tcp/25'",
                                  NULL, 0),
                         SQLITE_OK);
        m = load(s);
        got = pc_model_find(m, "vps-101");
        assert_int_equal(got->n_filters, 1);
        assert_int_equal(got->filters[0].id, f3);
        m = pc_model_free(m);

        /* A filter on a service the configuration no longer has fails the
         * load, naming it, and leaves the model empty. */
        assert_int_equal(raw_exec("UPDATE action SET scope = 'service:gopher' WHERE id = 3",
                                  NULL, 0),
                         SQLITE_OK);
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
        assert_int_equal(raw_exec("UPDATE vps SET site = 'foo' WHERE id = 'vps-101'", NULL, 0),
                         SQLITE_OK);
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
        assert_int_equal(count_rows("audit"), 10);

        /* Append-only. */
        assert_int_equal(raw_exec("UPDATE audit SET \"by\" = 'mallory'", msg, sizeof(msg)),
                         SQLITE_CONSTRAINT);
        assert_string_equal(msg, "audit log is append-only");
        assert_int_equal(raw_exec("DELETE FROM audit WHERE id = 1", msg, sizeof(msg)),
                         SQLITE_CONSTRAINT);
        assert_string_equal(msg, "audit log is append-only");
        assert_int_equal(count_rows("audit"), 10);
        assert_int_equal(raw_int("SELECT count(*) FROM audit WHERE \"by\" = 'mallory'"), 0);
        pc_store_close(s);
}

static void test_atomicity(void **state)
{
        struct pc_store *s = open_store();
        struct pc_exception e = exception_for("smtp", 0, 0);
        struct pc_filter f = { .direction = PC_DIR_EGRESS, .scope = PC_SCOPE_ALL };
        int64_t audits, notes;

        add_vps(s, "vps-101", "milano", "192.0.2.10");
        audits = count_rows("audit");
        notes = count_rows("notification");

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

        assert_int_equal(count_rows("audit"), audits);
        assert_int_equal(count_rows("notification"), notes);
        assert_int_equal(count_rows("exception"), 0);
        assert_int_equal(count_rows("action"), 0);

        /* And the store is usable afterwards: no transaction was left open. */
        e.ticket_id = 0;
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &alice, NULL), 0);
        assert_int_equal(count_rows("audit"), audits + 1);
        assert_int_equal(count_rows("notification"), notes + 1);
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
        char payload[2048], buf[512], sql[256];
        static const char *const kinds[] = {
                "ticket.received", "exception.granted", "exception.revoked", "filter.placed",
                "filter.lifted",     "vps.suspended",     "vps.unsuspended",
        };

        snprintf(v->lang, sizeof(v->lang), "it");
        assert_int_equal(pc_store_vps_add(s, v, &alice), 0);
        pc_vps_free(v);
        snprintf(t.vps_id, sizeof(t.vps_id), "vps-101");
        snprintf(t.service, sizeof(t.service), "smtp");
        snprintf(t.text, sizeof(t.text), "please");
        assert_int_equal(pc_store_ticket_open(s, &t, &alice, &tid), 0);
        assert_int_equal(count_rows("notification"), 1); /* adds: none; a ticket: received */

        e = exception_for("smtp", until, tid);
        assert_int_equal(pc_store_exception_grant(s, "vps-101", &e, &alice, NULL), 0);
        assert_int_equal(pc_store_exception_revoke(s, "vps-101", "smtp", &bob), 0);
        assert_int_equal(pc_store_filter_place(s, "vps-101", &f, &alice, &fid), 0);
        assert_int_equal(pc_store_filter_lift(s, "vps-101", fid, &bob), 0);
        assert_int_equal(pc_store_suspend(s, "vps-101", 0, &alice, NULL), 0);
        assert_int_equal(pc_store_unsuspend(s, "vps-101", &bob), 0);

        assert_int_equal(count_rows("notification"), PC_ARRAY_SIZE(kinds));
        for (size_t i = 0; i < PC_ARRAY_SIZE(kinds); i++) {
                snprintf(sql, sizeof(sql), "SELECT kind FROM notification WHERE id = %zu", i + 1);
                assert_string_equal(raw_text(sql, buf, sizeof(buf)), kinds[i]);
        }
        assert_int_equal(raw_int("SELECT count(*) FROM notification WHERE "
                                 "recipient = 'owner-vps-101@example.net' AND language = 'it' AND "
                                 "vps_id = 'vps-101' AND state = 'pending' AND attempts = 0 AND "
                                 "next_attempt >= created AND last_error IS NULL AND "
                                 "message_id IS NULL"),
                         PC_ARRAY_SIZE(kinds));

        raw_text("SELECT payload FROM notification WHERE kind = 'exception.granted'", payload,
                 sizeof(payload));
        assert_string_equal(json_field(payload, "vps", buf, sizeof(buf)), "vps-101");
        assert_string_equal(json_field(payload, "addresses", buf, sizeof(buf)),
                            "[\"192.0.2.10/32\",\"2001:db8::10/128\"]");
        assert_string_equal(json_field(payload, "service", buf, sizeof(buf)), "smtp");
        assert_string_equal(json_field(payload, "reason", buf, sizeof(buf)), "runs a mail server");
        assert_string_equal(json_field(payload, "by", buf, sizeof(buf)), "alice");
        assert_string_equal(json_field(payload, "site", buf, sizeof(buf)), "lenoir");
        assert_int_equal(atoll(json_field(payload, "until", buf, sizeof(buf))), until);
        assert_int_equal(atoll(json_field(payload, "ticket", buf, sizeof(buf))), tid);
        assert_string_equal(json_field(payload, "event", buf, sizeof(buf)), "exception.granted");

        raw_text("SELECT payload FROM notification WHERE kind = 'exception.revoked'", payload,
                 sizeof(payload));
        assert_string_equal(json_field(payload, "by", buf, sizeof(buf)), "bob");
        assert_string_equal(json_field(payload, "reason", buf, sizeof(buf)), "null");
        assert_string_equal(json_field(payload, "service", buf, sizeof(buf)), "smtp");

        raw_text("SELECT payload FROM notification WHERE kind = 'vps.suspended'", payload,
                 sizeof(payload));
        assert_string_equal(json_field(payload, "reason", buf, sizeof(buf)), "customer ticket");
        assert_string_equal(json_field(payload, "incident", buf, sizeof(buf)), "null");
        assert_string_equal(json_field(payload, "addresses", buf, sizeof(buf)),
                            "[\"192.0.2.10/32\",\"2001:db8::10/128\"]");

        raw_text("SELECT payload FROM notification WHERE kind = 'vps.unsuspended'", payload,
                 sizeof(payload));
        assert_string_equal(json_field(payload, "by", buf, sizeof(buf)), "bob");

        /* Removal keeps the outbox and the audit trail. */
        assert_int_equal(pc_store_vps_remove(s, "vps-101", &bob), 0);
        assert_int_equal(count_rows("notification"), PC_ARRAY_SIZE(kinds));
        assert_int_equal(raw_int("SELECT count(*) FROM audit WHERE vps_id = 'vps-101'"), 9);
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

        assert_int_equal(count_rows("vps"), 1);
        assert_string_equal(raw_text("SELECT reason FROM exception", buf, sizeof(buf)), INJECTION);
        assert_string_equal(raw_text("SELECT reason FROM action", buf, sizeof(buf)), INJECTION);
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
        assert_int_equal(raw_int("SELECT attempts FROM notification WHERE id = 2"), 0);
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
        assert_int_equal(raw_exec("UPDATE notification SET message_id = '<other@test>' WHERE id = 1",
                                  msg, sizeof(msg)),
                         SQLITE_CONSTRAINT);
        assert_string_equal(msg, "a notification's message_id never changes once set");
        assert_int_equal(raw_exec("UPDATE notification SET state = 'pending' WHERE id = 1", msg,
                                  sizeof(msg)),
                         SQLITE_CONSTRAINT);
        assert_string_equal(msg, "a sent notification stays sent");
        assert_int_equal(raw_exec("UPDATE notification SET message_id = '<b@test>' WHERE id = 2",
                                  msg, sizeof(msg)),
                         SQLITE_OK);
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
        assert_int_equal(count_rows("audit"), 2);
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
        assert_int_equal(count_rows("audit"), 4);
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

        assert_int_equal(pc_store_exception_expiry_notices(s, now, 3 * 86400, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(raw_int("SELECT count(*) FROM notification WHERE kind = 'exception.expiring' "
                                 "AND vps_id = 'vps-101' AND payload LIKE '%\"service\":\"smtp\"%'"),
                         1);
        /* Once only. */
        assert_int_equal(pc_store_exception_expiry_notices(s, now + 60, 3 * 86400, &n), 0);
        assert_int_equal(n, 0);
        /* The 30-day one, when its time comes. */
        assert_int_equal(pc_store_exception_expiry_notices(s, now + 28 * 86400, 3 * 86400, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(raw_int("SELECT count(*) FROM notification WHERE kind = 'exception.expiring'"), 2);
        pc_store_close(s);
}

/* PC_INCIDENT_NOTICE: the owner's notice is queued with a new incident,
 * in the same transaction; a continuing episode queues nothing. */
static void test_incident_notice(void **state)
{
        struct pc_store *s = open_store();
        int64_t now = pc_now(), id = 0, id2 = 0;
        bool opened = false;

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
        assert_int_equal(raw_int("SELECT count(*) FROM notification WHERE kind = 'incident.opened'"), 1);
        assert_int_equal(raw_int("SELECT count(*) FROM notification WHERE kind = 'incident.opened' "
                                 "AND payload LIKE '%\"evidence\":{\"port\":22}%'"),
                         1);
        /* Without the flag, a new episode is recorded and nobody is told. */
        assert_int_equal(pc_store_incident_note(s, "vps-101", "scan", 1, now + 1000, NULL, 300, &id2, &opened, 0),
                         0);
        assert_true(opened);
        assert_int_equal(raw_int("SELECT count(*) FROM notification WHERE kind = 'incident.opened'"), 1);
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
        assert_int_equal(raw_int("SELECT count(*) FROM incident WHERE state = 'open'"), 0);
        assert_int_equal(raw_int("SELECT count(*) FROM audit WHERE action = 'incident.close'"), 1);
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
        assert_int_equal(raw_exec("UPDATE incident SET state = 'closed' WHERE id = (SELECT min(id) FROM incident)",
                                  NULL, 0),
                         0);
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
        assert_int_equal(count_rows("notification"), 2);
        /* Not a change: the outbox row is its record. */
        assert_int_equal(count_rows("audit"), 1);
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
        assert_int_equal(count_rows("vps"), 1);
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
        assert_int_equal(raw_int("SELECT count(*) FROM pragma_table_info('exception') "
                                 "WHERE name = 'warned_at'"),
                         1);
        assert_int_equal(raw_int("SELECT count(*) FROM pragma_table_info('notification') "
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
        add_vps(s, "vps-102", "milano", "192.0.2.20");
        assert_int_equal(raw_exec("UPDATE vps SET iface = 'tap102' WHERE id = 'vps-102'", NULL, 0), SQLITE_OK);

        /* the same values: no change, no audit row */
        assert_int_equal(pc_store_vps_update(s, v, &bob, &changed), 0);
        assert_false(changed);
        assert_int_equal(raw_int("SELECT count(*) FROM audit WHERE action = 'vps.update'"), 0);

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
        assert_int_equal(raw_int("SELECT count(*) FROM vps_address WHERE vps_id = 'vps-101' AND prefix = '192.0.2.11/32'"),
                         1);
        assert_int_equal(raw_int("SELECT count(*) FROM audit WHERE action = 'vps.update'"), 1);
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
        assert_int_not_equal(raw_exec("UPDATE vps SET run_state = 'paused'", NULL, 0), SQLITE_OK);
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
        assert_int_equal(raw_int("SELECT ticket_id FROM exception WHERE id = 5"), 7);
        assert_int_equal(raw_int("SELECT count(*) FROM ticket WHERE id = 7"), 1);
        assert_int_equal(raw_int("SELECT count(*) FROM pragma_foreign_key_check"), 0);
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
        raw_exec("UPDATE exception SET until = 1000 WHERE service = 'source-prefix:192.0.2.64/29'", NULL, 0);
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
        assert_int_equal(raw_int("SELECT count(*) FROM vps_address WHERE net IS NULL OR len IS NULL"), 0);
        assert_int_equal(raw_int("SELECT len FROM vps_address WHERE family = 4"), 29);
        assert_int_equal(raw_int("SELECT length(net) FROM vps_address WHERE family = 6"), 16);
        /* v11: each row's id is its rowid, the order it was given in. */
        assert_int_equal(raw_int("SELECT id FROM vps_address WHERE family = 4"), 1);
        assert_int_equal(raw_int("SELECT id FROM vps_address WHERE family = 6"), 2);
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

static void test_load_many(void **state)
{
        struct pc_store *s = open_store();
        const int n = 2000;
        struct pc_model *m;
        sqlite3 *db;
        sqlite3_stmt *vst, *ast, *est;
        int64_t now = pc_now();

        /* Fill it the fast way, in one transaction of our own; the store's
         * own adds are covered above. */
        assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "INSERT INTO vps (id, owner, lang, site, created) "
                                            "VALUES (?, 'o@example.net', 'en', ?, ?)",
                                            -1, &vst, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "INSERT INTO vps_address (vps_id, family, prefix) "
                                            "VALUES (?, ?, ?)",
                                            -1, &ast, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "INSERT INTO exception (vps_id, service, \"by\", "
                                            "created) VALUES (?, 'smtp', 'bench', ?)",
                                            -1, &est, NULL),
                         SQLITE_OK);
        for (int i = 0; i < n; i++) {
                char id[32], a4[32], a6[64];

                snprintf(id, sizeof(id), "vps-%05d", i);
                snprintf(a4, sizeof(a4), "10.%d.%d.1/32", i / 256, i % 256);
                snprintf(a6, sizeof(a6), "2001:db8:%x::/64", i);
                sqlite3_bind_text(vst, 1, id, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(vst, 2, i % 2 ? "lenoir" : "milano", -1, SQLITE_STATIC);
                sqlite3_bind_int64(vst, 3, now);
                assert_int_equal(sqlite3_step(vst), SQLITE_DONE);
                sqlite3_reset(vst);
                for (int k = 0; k < 2; k++) {
                        sqlite3_bind_text(ast, 1, id, -1, SQLITE_TRANSIENT);
                        sqlite3_bind_int(ast, 2, k == 0 ? 4 : 6);
                        sqlite3_bind_text(ast, 3, k == 0 ? a4 : a6, -1, SQLITE_TRANSIENT);
                        assert_int_equal(sqlite3_step(ast), SQLITE_DONE);
                        sqlite3_reset(ast);
                }
                if (i % 10 == 0) {
                        sqlite3_bind_text(est, 1, id, -1, SQLITE_TRANSIENT);
                        sqlite3_bind_int64(est, 2, now);
                        assert_int_equal(sqlite3_step(est), SQLITE_DONE);
                        sqlite3_reset(est);
                }
        }
        sqlite3_finalize(vst);
        sqlite3_finalize(ast);
        sqlite3_finalize(est);
        assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);

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
        assert_int_equal(raw_int("SELECT count(*) FROM vps_attempt"), 4);
        assert_int_equal(raw_int("SELECT count(*) FROM audit WHERE action LIKE 'attempt%'"), 0);

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
        assert_int_equal(raw_int("SELECT count(*) FROM vps_attempt WHERE proto = 'udp'"), 0);

        assert_int_equal(pc_store_vps_remove(s, "vps-101", &bob), 0);
        assert_int_equal(raw_int("SELECT count(*) FROM vps_attempt WHERE vps_id = 'vps-101'"), 0);
        assert_int_equal(raw_int("SELECT count(*) FROM vps_attempt"), 1);
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
        size_t lifted = 99;
        bool opened;

        add_vps(s, "vps-101", "milano", "192.0.2.10");
        assert_int_equal(pc_store_incident_note(s, "vps-101", "scan", 5, now, NULL, 300, &a, &opened, 0), 0);
        assert_int_equal(pc_store_incident_note(s, "vps-101", "spam", 5, now, NULL, 300, &b, &opened, 0), 0);
        f1 = place_filter(s, "vps-101", a, now + 3600);
        f2 = place_filter(s, "vps-101", b, 0);
        assert_int_equal(pc_store_incident_close(s, a, false, &bob, NULL), -EINVAL); /* no reason */
        assert_int_equal(pc_store_incident_close(s, 999, false, &alice, NULL), -ENOENT);
        assert_int_equal(pc_store_incident_close(s, a, false, &alice, &lifted), 0);
        assert_int_equal(lifted, 0);
        assert_int_equal(raw_int("SELECT count(*) FROM action WHERE lifted_at IS NULL"), 2);
        assert_int_equal(raw_int("SELECT count(*) FROM audit WHERE action = 'incident.close' AND object = 'incident/1' "
                                 "AND \"before\" LIKE '%\"state\":\"open\"%' AND \"after\" LIKE '%\"state\":\"closed\"%'"),
                         1);
        assert_int_equal(pc_store_incident_close(s, a, true, &alice, &lifted), -EALREADY);
        assert_non_null(strstr(pc_store_errmsg(s), "closed already"));
        assert_int_equal(pc_store_incident_close(s, b, true, &alice, &lifted), 0);
        assert_int_equal(lifted, 1);
        assert_int_equal(raw_int("SELECT count(*) FROM action WHERE lifted_at IS NULL"), 1);
        assert_int_equal(raw_int("SELECT count(*) FROM action WHERE lifted_at IS NOT NULL AND lifted_by = 'alice'"), 1);
        assert_int_equal(raw_int("SELECT count(*) FROM notification WHERE kind = 'filter.lifted'"), 1);
        (void)f1;
        (void)f2;
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

        audits = count_rows("audit");
        /* extend: later only, a filter only, a future time only */
        assert_int_equal(pc_store_action_set_until(s, f1, now + 1800, &alice), -EINVAL);
        assert_non_null(strstr(pc_store_errmsg(s), "the new end must be later"));
        assert_int_equal(pc_store_action_set_until(s, f1, now - 10, &alice), -EINVAL);
        assert_int_equal(pc_store_action_set_until(s, su, now + 7200, &alice), -EINVAL);
        assert_non_null(strstr(pc_store_errmsg(s), "is a suspension"));
        assert_int_equal(pc_store_action_set_until(s, f2, now + 7200, &alice), -EINVAL);
        assert_int_equal(pc_store_action_set_until(s, f2, 0, &alice), -EALREADY);
        assert_int_equal(pc_store_action_set_until(s, 999, 0, &alice), -ENOENT);
        assert_int_equal(count_rows("audit"), audits);
        assert_int_equal(pc_store_action_set_until(s, f1, now + 7200, &alice), 0);
        assert_int_equal(raw_int("SELECT until FROM action WHERE id = 1"), now + 7200);
        assert_int_equal(raw_int("SELECT count(*) FROM audit WHERE action = 'filter.extend' AND object = 'filter/1'"), 1);
        assert_int_equal(pc_store_action_set_until(s, f1, 0, &alice), 0);
        assert_int_equal(raw_int("SELECT count(*) FROM action WHERE id = 1 AND until IS NULL"), 1);
        assert_int_equal(raw_int("SELECT count(*) FROM audit WHERE action = 'filter.make-permanent'"), 1);

        /* lift: once; a suspension as unsuspend does (closes the episodes) */
        assert_int_equal(pc_store_action_lift(s, f1, &bob), 0);
        assert_int_equal(pc_store_action_lift(s, f1, &bob), -EALREADY);
        assert_non_null(strstr(pc_store_errmsg(s), "was lifted already (by bob"));
        assert_int_equal(pc_store_action_set_until(s, f1, 0, &bob), -EALREADY);
        assert_int_equal(pc_store_action_lift(s, su, &bob), 0);
        assert_int_equal(raw_int("SELECT count(*) FROM audit WHERE action = 'vps.unsuspend'"), 1);
        assert_int_equal(raw_int("SELECT count(*) FROM incident WHERE state = 'open'"), 0);
        assert_int_equal(raw_int("SELECT count(*) FROM notification WHERE kind IN ('filter.lifted', 'vps.unsuspended')"), 2);
        assert_int_equal(pc_store_action_lift(s, 999, &bob), -ENOENT);
        sn.n = 0;
        assert_int_equal(pc_store_action_list(s, "vps-101", 0, true, now, 0, action_seen, &sn), 0);
        assert_int_equal(sn.n, 1);
        assert_int_equal(sn.ids[0], f2);
        /* an expired filter cannot be lifted or extended */
        raw_exec("UPDATE action SET until = 1000 WHERE id = 2", NULL, 0);
        assert_int_equal(pc_store_action_lift(s, f2, &bob), -EALREADY);
        assert_non_null(strstr(pc_store_errmsg(s), "ended already"));
        pc_store_close(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_open_creates_schema, setup, teardown),
                cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_urls, setup, teardown),
                cmocka_unit_test_setup_teardown(test_open_never_creates, setup, teardown),
                cmocka_unit_test_setup_teardown(test_operation_transaction, setup, teardown),
                cmocka_unit_test_setup_teardown(test_write_after_delete, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fds_cloexec, setup, teardown),
                cmocka_unit_test_setup_teardown(test_vps_roundtrip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_vps_duplicates, setup, teardown),
                cmocka_unit_test_setup_teardown(test_exceptions, setup, teardown),
                cmocka_unit_test_setup_teardown(test_two_handles, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tickets, setup, teardown),
                cmocka_unit_test_setup_teardown(test_exception_ended, setup, teardown),
                cmocka_unit_test_setup_teardown(test_suspend, setup, teardown),
                cmocka_unit_test_setup_teardown(test_terminate, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unterminate, setup, teardown),
                cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unknown_site, setup, teardown),
                cmocka_unit_test_setup_teardown(test_audit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_atomicity, setup, teardown),
                cmocka_unit_test_setup_teardown(test_outbox, setup, teardown),
                cmocka_unit_test_setup_teardown(test_notification_due, setup, teardown),
                cmocka_unit_test_setup_teardown(test_notification_sending, setup, teardown),
                cmocka_unit_test_setup_teardown(test_notification_retry_later, setup, teardown),
                cmocka_unit_test_setup_teardown(test_notification_failed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_notification_retry, setup, teardown),
                cmocka_unit_test_setup_teardown(test_notification_queue, setup, teardown),
                cmocka_unit_test_setup_teardown(test_exception_expiry_notices, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unsuspend_closes_episode, setup, teardown),
                cmocka_unit_test_setup_teardown(test_incident_notice, setup, teardown),
                cmocka_unit_test_setup_teardown(test_incident_times, setup, teardown),
                cmocka_unit_test_setup_teardown(test_incident_list, setup, teardown),
                cmocka_unit_test_setup_teardown(test_attempts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_incident_close, setup, teardown),
                cmocka_unit_test_setup_teardown(test_actions, setup, teardown),
                cmocka_unit_test_setup_teardown(test_notification_list, setup, teardown),
                cmocka_unit_test_setup_teardown(test_notification_migrate_v1, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ids_never_reused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ids_migrate_v3, setup, teardown),
                cmocka_unit_test_setup_teardown(test_injection, setup, teardown),
                cmocka_unit_test_setup_teardown(test_load_many, setup, teardown),
                cmocka_unit_test_setup_teardown(test_addr_holder, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mac_holder, setup, teardown),
                cmocka_unit_test_setup_teardown(test_addr_migrate_v5, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ticket_migrate_v6, setup, teardown),
                cmocka_unit_test_setup_teardown(test_addr_holder_indexed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_vps_update, setup, teardown),
                cmocka_unit_test_setup_teardown(test_vps_set_state, setup, teardown),
                cmocka_unit_test_setup_teardown(test_run_state_migrate_v7, setup, teardown),
        };

        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
