/* The operations layer against a real store in a temporary folder and the
 * shipped configuration: who may do what, the rules each operation
 * enforces (the field it names, the code a caller maps to a status), and
 * that a refused operation writes nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <netinet/in.h>
#include <sqlite3.h>

#include "fixture.h"
#include "ops/ops.h"
#include "policy/evaluate.h"

static char dir[64];
static struct pc_store *store;
static struct pc_ops ops;

static const struct pc_ops_actor admin = { .principal = "alice", .role = PC_ROLE_ADMIN };
static const struct pc_ops_actor support = { .principal = "sam", .role = PC_ROLE_SUPPORT };
static const struct pc_ops_actor agent = { .principal = "portcullisd", .role = PC_ROLE_AGENT };
static const struct pc_ops_actor customer = { .principal = "bruno", .role = PC_ROLE_CUSTOMER,
                                              .customer = "bruno@example.it" };

static int open_store(void **state)
{
        char url[128], err[512];

        snprintf(dir, sizeof(dir), "/tmp/pc-test-ops-XXXXXX");
        if (mkdtemp(dir) == NULL)
                return -1;
        snprintf(url, sizeof(url), "sqlite:%s/portcullis.db", dir);
        if (pc_store_init(url, NULL, &store, err, sizeof(err)) < 0) {
                fprintf(stderr, "%s\n", err);
                return -1;
        }
        ops = (struct pc_ops){ .cfg = cfg, .store = store };
        return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
        return remove(path);
}

static int close_store(void **state)
{
        store = pc_store_close(store);
        return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- helpers ---------------------------------------------------------- */

struct spec_buf {
        struct pc_vps_spec spec;
        struct pc_prefix addrs[4];
        uint8_t mac[6];
};

/* A VPS <id> at <site> (NULL: the default) with the addresses given, up to
 * NULL. */
static struct pc_vps_spec *spec_of(struct spec_buf *b, const char *id, const char *site, ...)
{
        const char *a;
        va_list ap;

        memset(b, 0, sizeof(*b));
        b->spec = (struct pc_vps_spec){ .id = id, .site = site, .owner = "bruno@example.it", .addrs = b->addrs };
        b->spec.iface = id; /* "vps-201": a valid interface name, one per VPS */
        va_start(ap, site);
        while ((a = va_arg(ap, const char *)) != NULL)
                assert_int_equal(pc_parse_prefix(a, false, &b->addrs[b->spec.n_addrs++]), 0);
        va_end(ap);
        return &b->spec;
}

static void register_ok(const struct pc_vps_spec *spec)
{
        struct pc_ops_error err;

        if (pc_ops_vps_register(&ops, &admin, spec, "new customer", NULL, &err) < 0)
                fail_msg("register %s: %s", spec->id, err.message);
}

/* The number of VPSes the store has (the model, loaded: tests only). */
static size_t fleet(void)
{
        struct pc_model *m;
        size_t n;

        assert_int_equal(pc_model_new(cfg, &m), 0);
        assert_int_equal(pc_store_load(store, m), 0);
        n = pc_model_count(m);
        pc_model_free(m);
        return n;
}

static int count_ticket(const struct pc_ticket *t, void *userdata)
{
        (*(int64_t *)userdata)++;
        return 0;
}

static int64_t audit_rows;

static int count_audit(const struct pc_audit_entry *e, void *userdata)
{
        audit_rows++;
        return 0;
}

static int64_t audit_count(void)
{
        audit_rows = 0;
        assert_int_equal(pc_store_audit_list(store, NULL, 0, count_audit, NULL), 0);
        return audit_rows;
}

/* Asserts that <r>, <err> are the refusal <code> naming <field> with
 * <text> in its message. */
static void assert_refused(int r, const struct pc_ops_error *err, enum pc_ops_code code, const char *field,
                           const char *text)
{
        if (r >= 0)
                fail_msg("succeeded; expected %s", pc_ops_code_name(code));
        if (err->code != code || strcmp(err->field, field) != 0 || strstr(err->message, text) == NULL)
                fail_msg("got %s field '%s' \"%s\"; expected %s field '%s' \"%s\"", pc_ops_code_name(err->code),
                         err->field, err->message, pc_ops_code_name(code), field, text);
}

/* ---- roles ------------------------------------------------------------ */

static void test_codes(void **state)
{
        assert_int_equal(pc_ops_http_status(PC_OPS_OK), 200);
        assert_int_equal(pc_ops_http_status(PC_OPS_EINVAL), 400);
        assert_int_equal(pc_ops_http_status(PC_OPS_EPERM), 403);
        assert_int_equal(pc_ops_http_status(PC_OPS_ENOENT), 404);
        assert_int_equal(pc_ops_http_status(PC_OPS_EEXIST), 409);
        assert_int_equal(pc_ops_http_status(PC_OPS_ECONFLICT), 409);
        assert_int_equal(pc_ops_http_status(PC_OPS_ELIMIT), 409);
        assert_int_equal(pc_ops_http_status(PC_OPS_EIO), 500);
        assert_string_equal(pc_ops_code_name(PC_OPS_EPERM), "forbidden");
        for (enum pc_role r = PC_ROLE_ADMIN; r <= PC_ROLE_AGENT; r++) {
                enum pc_role back;

                assert_int_equal(pc_role_parse(pc_role_name(r), &back), 0);
                assert_int_equal(back, r);
        }
        assert_int_equal(pc_role_parse("root", &(enum pc_role){ 0 }), -EINVAL);
}

/* The fleet's judgement of a heartbeat: stale past the bound (whatever
 * it says of itself), out of sync if it says so, the lag never negative. */
static void test_fleet_judge(void **state)
{
        const struct pc_fleet_view view = { .now = 1000, .last_change = 50, .stale_after = 30 };
        struct pc_agent_beat b = { .heartbeat = 990, .change_seen = 48, .in_sync = true };
        struct pc_fleet_agent x;

        pc_fleet_judge(&b, &view, &x);
        assert_int_equal(x.state, PC_AGENT_OK);
        assert_int_equal(x.age, 10);
        assert_int_equal(x.lag, 2);
        b.heartbeat = 970; /* exactly the bound: still ok */
        pc_fleet_judge(&b, &view, &x);
        assert_int_equal(x.state, PC_AGENT_OK);
        b.heartbeat = 969;
        pc_fleet_judge(&b, &view, &x);
        assert_int_equal(x.state, PC_AGENT_STALE);
        b.heartbeat = 995;
        b.in_sync = false;
        pc_fleet_judge(&b, &view, &x);
        assert_int_equal(x.state, PC_AGENT_OUT_OF_SYNC);
        b.in_sync = true;
        b.change_seen = 60; /* ahead of a view read before its beat */
        pc_fleet_judge(&b, &view, &x);
        assert_int_equal(x.lag, 0);
        (void)state;
}

/* The one table: every role against every operation. */
static void test_authorize_matrix(void **state)
{
        static const struct {
                const struct pc_ops_actor *who;
                bool may[PC_OP_COUNT_];
        } rows[] = {
                /* register, update, start/stop, remove, grant, revoke; ticket
                 * open, read, investigate, approve, deny, revoke, expire; vps
                 * read, tokens, metrics; incident read, close; action lift; audit;
                 * action place; terminate; notification retry; ticket findings;
                 * vps move; fleet read; vps depart (an admin's only) */
                { &admin,
                  { true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true,
                    true, true, true, true, true, true, true, true, true, true, true } },
                { &support,
                  { false, false, false, false, true, true, true, true, true, true, true, true, false, true, false,
                    true, true, true, true, true, true, false, true, true, false, true, false } },
                { &customer,
                  { false, false, false, false, false, false, true, true, false, false, false, false, false, true,
                    false, false, true, false, false, false, false, false, false, false, false, false, false } },
                { &agent,
                  { true, true, true, true, false, false, false, false, false, false, false, false, true, true, false,
                    true, false, false, false, false, true, true, false, false, true, false, false } },
        };
        struct pc_ops_error err;

        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
                for (enum pc_op op = 0; op < PC_OP_COUNT_; op++) {
                        int r = pc_ops_authorize(rows[i].who, op, &err);

                        if (rows[i].may[op] ? r != 0 : (r != -EPERM || err.code != PC_OPS_EPERM))
                                fail_msg("%s, operation %d: %d %s", pc_role_name(rows[i].who->role), op, r,
                                         err.message);
                }
        assert_refused(pc_ops_authorize(&customer, PC_OP_EXCEPTION_GRANT, &err), &err, PC_OPS_EPERM, "",
                       "bruno (role customer) may not grant exceptions: only admin or support may");
        assert_refused(pc_ops_authorize(&agent, PC_OP_VPS_DEPART, &err), &err, PC_OPS_EPERM, "",
                       "portcullisd (role agent) may not confirm for a host that a VM left it: only admin may");
        assert_refused(pc_ops_authorize(&(struct pc_ops_actor){ .role = PC_ROLE_ADMIN }, PC_OP_VPS_REGISTER, &err),
                       &err, PC_OPS_EINVAL, "by", "is required");
}

/* ---- API tokens ------------------------------------------------------- */

static void test_tokens(void **state)
{
        struct pc_token_spec sup = { .name = "desk", .role = "support" };
        struct pc_token_spec cust = { .name = "bruno", .role = "customer", .customer = "bruno@example.it" };
        char text[PC_TOKEN_TEXT_SIZE], ctext[PC_TOKEN_TEXT_SIZE], bad[PC_TOKEN_TEXT_SIZE];
        struct pc_api_token t;
        struct pc_ops_actor who;
        struct pc_ops_error err;

        /* Only an admin mints, lists and revokes. */
        assert_refused(pc_ops_token_create(&ops, &support, &sup, text, NULL, &err), &err, PC_OPS_EPERM, "",
                       "only admin may");
        assert_refused(pc_ops_token_create(&ops, &customer, &cust, text, NULL, &err), &err, PC_OPS_EPERM, "",
                       "only admin may");
        assert_refused(pc_ops_token_create(&ops, &admin, &(struct pc_token_spec){ .name = "x", .role = "root" }, text,
                                           NULL, &err),
                       &err, PC_OPS_EINVAL, "role", "'root' is not a role");
        assert_refused(pc_ops_token_create(&ops, &admin, &(struct pc_token_spec){ .name = "x", .role = "customer" },
                                           text, NULL, &err),
                       &err, PC_OPS_EINVAL, "customer", "is required");
        assert_refused(pc_ops_token_create(&ops, &admin,
                                           &(struct pc_token_spec){ .name = "x", .role = "agent", .any_host = true,
                                                                    .expires = 1000 },
                                           text, NULL, &err),
                       &err, PC_OPS_EINVAL, "expires", "in the past");

        assert_int_equal(pc_ops_token_create(&ops, &admin, &sup, text, &t, &err), 0);
        assert_int_equal(strlen(text), PC_TOKEN_TEXT_SIZE - 1);
        assert_int_equal(strncmp(text, "pct_", 4), 0);
        assert_refused(pc_ops_token_create(&ops, &admin, &sup, bad, NULL, &err), &err, PC_OPS_EEXIST, "name",
                       "in force already");
        assert_int_equal(pc_ops_token_create(&ops, &admin, &cust, ctext, NULL, &err), 0);
        assert_string_not_equal(text, ctext);

        /* The token names its actor: principal, role, customer. */
        assert_int_equal(pc_ops_token_authenticate(&ops, text, pc_now(), &t, &who, &err), 0);
        assert_string_equal(who.principal, "desk");
        assert_int_equal(who.role, PC_ROLE_SUPPORT);
        assert_null(who.customer);
        assert_true(t.last_used != 0);
        assert_int_equal(pc_ops_token_authenticate(&ops, ctext, pc_now(), &t, &who, &err), 0);
        assert_int_equal(who.role, PC_ROLE_CUSTOMER);
        assert_string_equal(who.customer, "bruno@example.it");

        /* One message, whatever is wrong with it. */
        memcpy(bad, text, sizeof(bad));
        bad[10] = bad[10] == 'A' ? 'B' : 'A';
        assert_refused(pc_ops_token_authenticate(&ops, bad, pc_now(), &t, &who, &err), &err, PC_OPS_EAUTH, "",
                       "a valid bearer token is required");
        assert_refused(pc_ops_token_authenticate(&ops, "pct_short", pc_now(), &t, &who, &err), &err, PC_OPS_EAUTH,
                       "", "a valid bearer token is required");
        assert_refused(pc_ops_token_authenticate(&ops, NULL, pc_now(), &t, &who, &err), &err, PC_OPS_EAUTH, "",
                       "a valid bearer token is required");
        assert_int_equal(pc_ops_http_status(PC_OPS_EAUTH), 401);

        /* Revoked: refused from the next request on; expired likewise. */
        assert_int_equal(pc_ops_token_revoke(&ops, &admin, "desk", &err), 0);
        assert_refused(pc_ops_token_authenticate(&ops, text, pc_now(), &t, &who, &err), &err, PC_OPS_EAUTH, "",
                       "a valid bearer token is required");
        assert_refused(pc_ops_token_revoke(&ops, &admin, "desk", &err), &err, PC_OPS_ENOENT, "", "no token named desk");
        assert_int_equal(pc_ops_token_create(&ops, &admin,
                                             &(struct pc_token_spec){ .name = "soon", .role = "agent",
                                                                      .any_host = true, .expires = pc_now() + 60 },
                                             text, NULL, &err),
                         0);
        assert_int_equal(pc_ops_token_authenticate(&ops, text, pc_now(), &t, &who, &err), 0);
        assert_refused(pc_ops_token_authenticate(&ops, text, pc_now() + 61, &t, &who, &err), &err, PC_OPS_EAUTH, "",
                       "a valid bearer token is required");
}

/* An agent token is bound to a host unless said otherwise, and names it. */
static void test_token_host(void **state)
{
        char text[PC_TOKEN_TEXT_SIZE];
        struct pc_api_token t;
        struct pc_ops_actor who;
        struct pc_ops_error err;

        assert_refused(pc_ops_token_create(&ops, &admin, &(struct pc_token_spec){ .name = "h", .role = "agent" }, text,
                                           NULL, &err),
                       &err, PC_OPS_EINVAL, "host", "an agent token needs a host");
        assert_refused(pc_ops_token_create(&ops, &admin,
                                           &(struct pc_token_spec){ .name = "h", .role = "agent", .host = "hv1",
                                                                    .any_host = true },
                                           text, NULL, &err),
                       &err, PC_OPS_EINVAL, "host", "not both");
        assert_refused(pc_ops_token_create(&ops, &admin,
                                           &(struct pc_token_spec){ .name = "h", .role = "agent", .host = "HV 1" },
                                           text, NULL, &err),
                       &err, PC_OPS_EINVAL, "host", "is not a name");
        assert_refused(pc_ops_token_create(&ops, &admin,
                                           &(struct pc_token_spec){ .name = "h", .role = "agent", .host = "" }, text,
                                           NULL, &err),
                       &err, PC_OPS_EINVAL, "host", "is not a name");
        assert_refused(pc_ops_token_create(&ops, &admin,
                                           &(struct pc_token_spec){ .name = "h", .role = "support", .host = "hv1" },
                                           text, NULL, &err),
                       &err, PC_OPS_EINVAL, "host", "only for an agent token");
        assert_refused(pc_ops_token_create(&ops, &admin,
                                           &(struct pc_token_spec){ .name = "h", .role = "admin", .any_host = true },
                                           text, NULL, &err),
                       &err, PC_OPS_EINVAL, "host", "only for an agent token");

        assert_int_equal(pc_ops_token_create(&ops, &admin,
                                             &(struct pc_token_spec){ .name = "hv1-hooks", .role = "agent",
                                                                      .host = "hv1" },
                                             text, &t, &err),
                         0);
        assert_string_equal(t.host, "hv1");
        assert_int_equal(pc_ops_token_authenticate(&ops, text, pc_now(), &t, &who, &err), 0);
        assert_int_equal(who.role, PC_ROLE_AGENT);
        assert_string_equal(who.host, "hv1");
        assert_string_equal(pc_ops_actor_host(&who), "hv1");
        assert_int_equal(pc_ops_token_create(&ops, &admin,
                                             &(struct pc_token_spec){ .name = "all-hooks", .role = "agent",
                                                                      .any_host = true },
                                             text, &t, &err),
                         0);
        assert_string_equal(t.host, "");
        assert_int_equal(pc_ops_token_authenticate(&ops, text, pc_now(), &t, &who, &err), 0);
        assert_null(who.host);
        assert_null(pc_ops_actor_host(&who));
}

/* ---- VPSes ------------------------------------------------------------ */

static void test_register(void **state)
{
        struct spec_buf b;
        const struct pc_site *site = NULL;
        struct pc_ops_error err;
        struct pc_vps *v;

        assert_int_equal(pc_ops_vps_register(&ops, &agent, spec_of(&b, "vps-201", NULL, "198.51.100.10",
                                                                   "2001:db8:201::/64", NULL),
                                             "VM started", &site, &err),
                         0);
        assert_non_null(site);
        assert_string_equal(site->name, "milano"); /* the default site */
        assert_int_equal(pc_store_vps_fetch(store, cfg, "vps-201", &v), 0);
        assert_string_equal(v->lang, "en");
        assert_int_equal(v->n_addrs, 2);
        pc_vps_free(v);
}

/* Customers and support do not register machines; nothing is written. */
static void test_register_refused_roles(void **state)
{
        struct spec_buf b;
        struct pc_ops_error err;
        int64_t before = audit_count();

        spec_of(&b, "vps-201", NULL, "198.51.100.10", NULL);
        assert_refused(pc_ops_vps_register(&ops, &customer, &b.spec, NULL, NULL, &err), &err, PC_OPS_EPERM, "",
                       "may not register VPSes");
        assert_int_equal(pc_ops_http_status(err.code), 403);
        assert_refused(pc_ops_vps_register(&ops, &support, &b.spec, NULL, NULL, &err), &err, PC_OPS_EPERM, "",
                       "only admin or agent may");
        assert_int_equal(fleet(), 0);
        assert_int_equal(audit_count(), before);
}

/* Bad values, each naming its field. */
static void test_register_invalid(void **state)
{
        struct spec_buf b;
        struct pc_ops_error err;

        spec_of(&b, "vps-301", NULL, "198.51.100.10", NULL);
        b.spec.lang = "fr";
        assert_refused(pc_ops_vps_register(&ops, &admin, &b.spec, NULL, NULL, &err), &err, PC_OPS_EINVAL, "lang",
                       "'fr' is not supported");
        spec_of(&b, "vps-301", "mars", "198.51.100.10", NULL);
        assert_refused(pc_ops_vps_register(&ops, &admin, &b.spec, NULL, NULL, &err), &err, PC_OPS_EINVAL, "site",
                       "'mars' is not in");
        spec_of(&b, "vps-301", NULL, "127.0.0.1", NULL);
        assert_refused(pc_ops_vps_register(&ops, &admin, &b.spec, NULL, NULL, &err), &err, PC_OPS_EINVAL,
                       "addresses", "127.0.0.1 cannot be a VPS's");
        spec_of(&b, "vps-301", NULL, "198.51.100.8/29", "198.51.100.10", NULL);
        assert_refused(pc_ops_vps_register(&ops, &admin, &b.spec, NULL, NULL, &err), &err, PC_OPS_EINVAL,
                       "addresses", "values 198.51.100.8/29 and 198.51.100.10 overlap each other");
        spec_of(&b, "vps-301", NULL, NULL);
        assert_refused(pc_ops_vps_register(&ops, &admin, &b.spec, NULL, NULL, &err), &err, PC_OPS_EINVAL,
                       "addresses", "is required");
        spec_of(&b, "vps-301", NULL, "198.51.100.10", NULL);
        b.spec.owner = "nobody";
        assert_refused(pc_ops_vps_register(&ops, &admin, &b.spec, NULL, NULL, &err), &err, PC_OPS_EINVAL, "owner",
                       "'nobody' is not a valid email address");
        spec_of(&b, "vps-301", NULL, "198.51.100.10", NULL);
        b.spec.iface = "lo";
        assert_refused(pc_ops_vps_register(&ops, &admin, &b.spec, NULL, NULL, &err), &err, PC_OPS_EINVAL, "iface",
                       "loopback");
        spec_of(&b, "x'); DROP TABLE vps;--", NULL, "198.51.100.10", NULL);
        b.spec.iface = "tap301";
        assert_refused(pc_ops_vps_register(&ops, &admin, &b.spec, NULL, NULL, &err), &err, PC_OPS_EINVAL, "id",
                       "is not a valid VPS id");
        spec_of(&b, "vps-301", NULL, "198.51.100.10", NULL);
        assert_refused(pc_ops_vps_register(&ops, &admin, &b.spec, "two\nlines", NULL, &err), &err, PC_OPS_EINVAL,
                       "reason", "one line of text");
        assert_int_equal(fleet(), 0);
}

/* Another VPS's addresses, MAC or granted source prefix: a conflict,
 * naming the field and who holds it. */
static void test_register_overlap(void **state)
{
        struct spec_buf b;
        struct pc_ops_error err;

        register_ok(spec_of(&b, "vps-202", NULL, "198.51.100.24/29", NULL));
        spec_of(&b, "vps-101", "lenoir", "203.0.113.10", NULL);
        assert_int_equal(pc_parse_mac("52:54:00:00:01:01", b.mac), 0);
        b.spec.mac = b.mac;
        register_ok(&b.spec);

        assert_refused(pc_ops_vps_register(&ops, &admin, spec_of(&b, "vps-301", NULL, "198.51.100.26", NULL), NULL,
                                           NULL, &err),
                       &err, PC_OPS_ECONFLICT, "addresses", "address 198.51.100.26/32 overlaps 198.51.100.24/29 of vps-202");
        assert_int_equal(pc_ops_http_status(err.code), 409);
        assert_refused(pc_ops_vps_register(&ops, &admin, spec_of(&b, "vps-301", NULL, "198.51.100.0/24", NULL), NULL,
                                           NULL, &err),
                       &err, PC_OPS_ECONFLICT, "addresses", "overlaps 198.51.100.24/29 of vps-202");
        spec_of(&b, "vps-301", "lenoir", "203.0.113.77", NULL);
        assert_int_equal(pc_parse_mac("52:54:00:00:01:01", b.mac), 0);
        b.spec.mac = b.mac;
        assert_refused(pc_ops_vps_register(&ops, &admin, &b.spec, NULL, NULL, &err), &err, PC_OPS_ECONFLICT, "mac",
                       "MAC 52:54:00:00:01:01 is already vps-101's");
        /* the same id, the same interface: the store's, as EEXIST */
        assert_refused(pc_ops_vps_register(&ops, &admin, spec_of(&b, "vps-202", NULL, "198.51.100.99", NULL), NULL,
                                           NULL, &err),
                       &err, PC_OPS_EEXIST, "", "vps vps-202 already exists");
        assert_int_equal(fleet(), 2);
}

static void test_remove(void **state)
{
        struct spec_buf b;
        struct pc_ops_error err;

        register_ok(spec_of(&b, "vps-201", NULL, "198.51.100.10", NULL));
        assert_refused(pc_ops_vps_remove(&ops, &customer, "vps-201", NULL, false, &err), &err, PC_OPS_EPERM, "",
                       "may not remove VPSes");
        assert_refused(pc_ops_vps_remove(&ops, &support, "vps-201", NULL, false, &err), &err, PC_OPS_EPERM, "",
                       "may not remove VPSes");
        /* overriding a termination is the admin's alone */
        assert_refused(pc_ops_vps_remove(&ops, &agent, "vps-201", NULL, true, &err), &err, PC_OPS_EPERM,
                       "admin_override", "only an admin may");
        assert_int_equal(fleet(), 1);
        assert_int_equal(pc_ops_vps_remove(&ops, &agent, "vps-201", "VM deleted", false, &err), 0);
        assert_int_equal(fleet(), 0);
        assert_refused(pc_ops_vps_remove(&ops, &agent, "vps-201", NULL, false, &err), &err, PC_OPS_ENOENT, "",
                       "vps vps-201 does not exist");
        assert_int_equal(pc_ops_http_status(err.code), 404);
}

/* A VM manager's update goes through the registration's checks: the
 * VPS's own addresses and MAC are no conflict, anybody else's are. */
static void test_update(void **state)
{
        struct spec_buf b, other;
        struct pc_vps_change c = { .id = "vps-101" };
        struct pc_ops_error err;
        struct pc_prefix addrs[3];
        uint8_t mac[6];
        bool changed = false;
        struct pc_vps *v;
        int64_t rows;

        spec_of(&b, "vps-101", "lenoir", "203.0.113.10", "2001:db8:101::/64", NULL);
        assert_int_equal(pc_parse_mac("52:54:00:00:01:01", b.mac), 0);
        b.spec.mac = b.mac;
        register_ok(&b.spec);
        register_ok(spec_of(&other, "vps-202", NULL, "198.51.100.24/29", NULL));
        assert_int_equal(pc_ops_exception_grant(&ops, &admin,
                                                &(struct pc_exception_spec){ .vps_id = "vps-101",
                                                                             .service = "source-prefix:192.0.2.64/29",
                                                                             .reason = "VPN gateway" },
                                                NULL, &err),
                         0);

        /* what it has already: no change */
        c.addrs = b.addrs;
        c.n_addrs = 2;
        rows = audit_count();
        if (pc_ops_vps_update(&ops, &agent, &c, "VM started", &changed, &err) < 0)
                fail_msg("update: %s %s", err.field, err.message);
        assert_false(changed);
        assert_int_equal(audit_count(), rows);

        /* a new address list (its own granted source prefix is no conflict) */
        assert_int_equal(pc_parse_prefix("203.0.113.11", false, &addrs[0]), 0);
        assert_int_equal(pc_parse_prefix("2001:db8:101::/64", false, &addrs[1]), 0);
        c.addrs = addrs;
        c.n_addrs = 2;
        assert_int_equal(pc_ops_vps_update(&ops, &agent, &c, "VM started", &changed, &err), 0);
        assert_true(changed);
        assert_int_equal(audit_count(), rows + 1);
        assert_int_equal(pc_store_vps_fetch(store, cfg, "vps-101", &v), 0);
        assert_int_equal(v->n_addrs, 2);
        assert_true(v->has_mac); /* kept: not given */
        assert_string_equal(v->owner, "bruno@example.it");
        pc_vps_free(v);

        /* refusals: the registration's, each with its field */
        assert_int_equal(pc_parse_prefix("198.51.100.26", false, &addrs[0]), 0);
        assert_refused(pc_ops_vps_update(&ops, &agent, &c, NULL, NULL, &err), &err, PC_OPS_ECONFLICT, "addresses",
                       "address 198.51.100.26/32 overlaps 198.51.100.24/29 of vps-202");
        assert_int_equal(pc_parse_prefix("203.0.113.8/29", false, &addrs[0]), 0);
        assert_int_equal(pc_parse_prefix("203.0.113.11", false, &addrs[1]), 0);
        assert_refused(pc_ops_vps_update(&ops, &agent, &c, NULL, NULL, &err), &err, PC_OPS_EINVAL, "addresses",
                       "overlap each other");
        assert_int_equal(pc_parse_prefix("127.0.0.1", false, &addrs[0]), 0);
        c.n_addrs = 1;
        assert_refused(pc_ops_vps_update(&ops, &agent, &c, NULL, NULL, &err), &err, PC_OPS_EINVAL, "addresses",
                       "127.0.0.1 cannot be a VPS's");
        c.n_addrs = 0;
        assert_refused(pc_ops_vps_update(&ops, &agent, &c, NULL, NULL, &err), &err, PC_OPS_EINVAL, "addresses",
                       "is required");
        c.addrs = NULL;
        c.iface = "vps-202";
        assert_refused(pc_ops_vps_update(&ops, &agent, &c, NULL, NULL, &err), &err, PC_OPS_EEXIST, "",
                       "interface vps-202 is already vps-202's");
        c.iface = "lo";
        assert_refused(pc_ops_vps_update(&ops, &agent, &c, NULL, NULL, &err), &err, PC_OPS_EINVAL, "iface",
                       "loopback");
        c.iface = NULL;
        memcpy(mac, (uint8_t[6]){ 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 }, 6); /* multicast */
        c.mac = mac;
        assert_refused(pc_ops_vps_update(&ops, &agent, &c, NULL, NULL, &err), &err, PC_OPS_EINVAL, "mac",
                       "is not a unicast MAC");
        c.mac = NULL;
        assert_refused(pc_ops_vps_update(&ops, &agent, &c, "two\nlines", NULL, &err), &err, PC_OPS_EINVAL,
                       "reason", "one line of text");
        c.id = "vps-999";
        assert_refused(pc_ops_vps_update(&ops, &agent, &c, NULL, NULL, &err), &err, PC_OPS_ENOENT, "vps",
                       "vps vps-999 does not exist");
        assert_int_equal(pc_ops_http_status(err.code), 404);
        c.id = "vps-101";
        assert_refused(pc_ops_vps_update(&ops, &support, &c, NULL, NULL, &err), &err, PC_OPS_EPERM, "",
                       "may not change a VPS's addresses");
        assert_refused(pc_ops_vps_update(&ops, &customer, &c, NULL, NULL, &err), &err, PC_OPS_EPERM, "",
                       "only admin or agent may");
        assert_int_equal(audit_count(), rows + 1);

        /* another VPS's MAC */
        register_ok(spec_of(&other, "vps-102", "lenoir", "203.0.113.20", NULL));
        assert_int_equal(pc_parse_mac("52:54:00:00:01:01", mac), 0);
        c = (struct pc_vps_change){ .id = "vps-102", .mac = mac };
        assert_refused(pc_ops_vps_update(&ops, &agent, &c, NULL, NULL, &err), &err, PC_OPS_ECONFLICT, "mac",
                       "MAC 52:54:00:00:01:01 is already vps-101's");
}

/* Start and stop: informational, audited, idempotent; the policy stays. */
static void test_set_state(void **state)
{
        struct spec_buf b;
        struct pc_ops_error err;
        bool changed = false;
        struct pc_vps *v;
        int64_t rows;

        register_ok(spec_of(&b, "vps-201", NULL, "198.51.100.10", NULL));
        assert_int_equal(pc_ops_exception_grant(&ops, &admin, &(struct pc_exception_spec){ .vps_id = "vps-201",
                                                                                            .service = "smtp",
                                                                                            .reason = "mail" },
                                                NULL, &err),
                         0);
        rows = audit_count();
        assert_int_equal(pc_ops_vps_set_state(&ops, &agent, "vps-201", false, "VM stopped", &changed, &err), 0);
        assert_true(changed);
        assert_int_equal(pc_ops_vps_set_state(&ops, &agent, "vps-201", false, NULL, &changed, &err), 0);
        assert_false(changed);
        assert_int_equal(audit_count(), rows + 1);
        assert_int_equal(pc_store_vps_fetch(store, cfg, "vps-201", &v), 0);
        assert_true(v->stopped);
        assert_int_equal(v->n_exceptions, 1);
        pc_vps_free(v);
        assert_int_equal(pc_ops_vps_set_state(&ops, &admin, "vps-201", true, NULL, &changed, &err), 0);
        assert_true(changed);

        assert_refused(pc_ops_vps_set_state(&ops, &support, "vps-201", false, NULL, NULL, &err), &err, PC_OPS_EPERM,
                       "", "may not start or stop VPSes");
        assert_refused(pc_ops_vps_set_state(&ops, &customer, "vps-201", false, NULL, NULL, &err), &err,
                       PC_OPS_EPERM, "", "only admin or agent may");
        assert_refused(pc_ops_vps_set_state(&ops, &agent, "vps-999", false, NULL, NULL, &err), &err, PC_OPS_ENOENT,
                       "", "vps vps-999 does not exist");
        assert_refused(pc_ops_vps_set_state(&ops, &agent, "x y", false, NULL, NULL, &err), &err, PC_OPS_EINVAL, "id",
                       "is not a valid VPS id");
        assert_refused(pc_ops_vps_set_state(&ops, &agent, "vps-201", false, "a\x1b[2J", NULL, &err), &err,
                       PC_OPS_EINVAL, "reason", "control character");
        assert_int_equal(audit_count(), rows + 2);
}

/* A move its old host cannot confirm: the admin's (vps.depart, with a
 * reason), never an agent's -- the claimer's token least of all; a VPS
 * with no move to confirm is ECONFLICT, nothing written. */
static void test_vps_depart(void **state)
{
        static const struct pc_ops_actor hv1 = { .principal = "hv1-hooks", .role = PC_ROLE_AGENT, .host = "hv1" };
        char from[PC_NAME_MAX] = "";
        struct pc_ops_error err;
        struct spec_buf b;
        struct pc_vps *v;
        int64_t rows;

        spec_of(&b, "vps-b", NULL, "198.51.100.12", NULL)->host = "hv2";
        register_ok(&b.spec);
        assert_refused(pc_ops_vps_depart(&ops, &admin, "vps-b", "hv2 is dead", from, &err), &err, PC_OPS_ECONFLICT,
                       "vps", "vps vps-b has no move to confirm");
        assert_int_equal(pc_ops_vps_move(&ops, &hv1, "vps-b", "hv1", "vnet9", "migrate begin", NULL, &err), 0);
        rows = audit_count();
        assert_refused(pc_ops_vps_depart(&ops, &hv1, "vps-b", "hv2 is dead", from, &err), &err, PC_OPS_EPERM, "",
                       "only admin may");
        assert_refused(pc_ops_vps_depart(&ops, &agent, "vps-b", "hv2 is dead", from, &err), &err, PC_OPS_EPERM, "",
                       "only admin may");
        assert_refused(pc_ops_vps_depart(&ops, &support, "vps-b", "hv2 is dead", from, &err), &err, PC_OPS_EPERM,
                       "", "only admin may");
        assert_refused(pc_ops_vps_depart(&ops, &admin, "vps-b", NULL, from, &err), &err, PC_OPS_EINVAL, "reason",
                       "is required");
        assert_refused(pc_ops_vps_depart(&ops, &admin, "vps-b", "", from, &err), &err, PC_OPS_EINVAL, "reason",
                       "is required");
        assert_refused(pc_ops_vps_depart(&ops, &admin, "vps-x", "gone", from, &err), &err, PC_OPS_ENOENT, "vps",
                       "does not exist");
        assert_int_equal(audit_count(), rows);
        assert_string_equal(from, "");
        assert_int_equal(pc_ops_vps_depart(&ops, &admin, "vps-b", "hv2 is dead", from, &err), 0);
        assert_string_equal(from, "hv2");
        assert_int_equal(audit_count(), rows + 1);
        assert_int_equal(pc_ops_vps_get(&ops, &admin, "vps-b", &v, &err), 0);
        assert_string_equal(v->departing_from, "");
        assert_string_equal(v->host, "hv1");
        pc_vps_free(v);
        assert_refused(pc_ops_vps_depart(&ops, &admin, "vps-b", "again", from, &err), &err, PC_OPS_ECONFLICT, "vps",
                       "has no move to confirm");
        assert_int_equal(audit_count(), rows + 1);
        (void)state;
}

/* An agent bound to hv1 (its hooks' token) acts on hv1's VPSes only: it
 * registers onto hv1, sees, changes, filters, suspends and terminates
 * hv1's, and moves a VPS only onto hv1.  Another host's VPS, or a single
 * host's, does not exist to it; a refusal writes nothing. */
static void test_agent_bound_to_host(void **state)
{
        static const struct pc_ops_actor hv1 = { .principal = "hv1-hooks", .role = PC_ROLE_AGENT, .host = "hv1" };
        struct pc_filter f = { .scope = PC_SCOPE_ALL, .direction = PC_DIR_EGRESS };
        struct pc_prefix addr;
        struct pc_vps_change ch = { .id = "vps-b", .addrs = &addr, .n_addrs = 1 };
        const char *theirs[] = { "vps-b", "vps-s" };
        struct spec_buf b;
        struct pc_ops_error err;
        struct pc_vps *v;
        int64_t rows, id;
        bool changed;

        assert_int_equal(pc_parse_prefix("198.51.100.99", false, &addr), 0);
        /* hv2's vps-b and a single host's vps-s, by the admin. */
        spec_of(&b, "vps-b", NULL, "198.51.100.12", NULL)->host = "hv2";
        register_ok(&b.spec);
        register_ok(spec_of(&b, "vps-s", NULL, "198.51.100.13", NULL));

        /* Registration: onto hv1, said or not; elsewhere refused. */
        assert_int_equal(pc_ops_vps_register(&ops, &hv1, spec_of(&b, "vps-a", NULL, "198.51.100.11", NULL), NULL, NULL,
                                             &err),
                         0);
        assert_int_equal(pc_ops_vps_get(&ops, &hv1, "vps-a", &v, &err), 0);
        assert_string_equal(v->host, "hv1");
        pc_vps_free(v);
        rows = audit_count();
        spec_of(&b, "vps-c", NULL, "198.51.100.14", NULL)->host = "hv2";
        assert_refused(pc_ops_vps_register(&ops, &hv1, &b.spec, NULL, NULL, &err), &err, PC_OPS_EPERM, "host",
                       "may not register a VPS on host hv2: only on hv1");

        /* Another host's VPS, and a single host's: as if they did not exist. */
        for (size_t i = 0; i < PC_ARRAY_SIZE(theirs); i++) {
                const char *id_ = theirs[i];

                ch.id = id_;
                assert_refused(pc_ops_vps_get(&ops, &hv1, id_, &v, &err), &err, PC_OPS_ENOENT, "vps", "does not exist");
                assert_refused(pc_ops_vps_update(&ops, &hv1, &ch, NULL, NULL, &err), &err, PC_OPS_ENOENT, "vps",
                               "does not exist");
                assert_refused(pc_ops_vps_set_state(&ops, &hv1, id_, false, NULL, NULL, &err), &err, PC_OPS_ENOENT,
                               "vps", "does not exist");
                assert_refused(pc_ops_vps_remove(&ops, &hv1, id_, "VM destroyed", false, &err), &err, PC_OPS_ENOENT,
                               "vps", "does not exist");
                assert_refused(pc_ops_filter_place(&ops, &hv1, id_, &f, "abuse", &id, &err), &err, PC_OPS_ENOENT,
                               "vps", "does not exist");
                assert_refused(pc_ops_suspend(&ops, &hv1, id_, 0, "abuse", &id, &err), &err, PC_OPS_ENOENT, "vps",
                               "does not exist");
                assert_refused(pc_ops_terminate(&ops, &hv1, id_, 0, "fraud", "fraud", &id, &err), &err,
                               PC_OPS_ENOENT, "vps", "does not exist");
        }
        /* The move of issue 14's repro: hv2's VPS re-pointed at a dead
         * interface of hv2.  A bound agent moves onto its own host only. */
        assert_refused(pc_ops_vps_move(&ops, &hv1, "vps-b", "hv2", "vnet999", NULL, NULL, &err), &err, PC_OPS_EPERM,
                       "host", "may move a VPS only onto hv1, not to hv2");
        assert_refused(pc_ops_vps_move(&ops, &hv1, "vps-a", "hv2", "vnet7", NULL, NULL, &err), &err, PC_OPS_EPERM,
                       "host", "only onto hv1");
        assert_refused(pc_ops_vps_move(&ops, &hv1, "vps-a", "", NULL, NULL, NULL, &err), &err, PC_OPS_EPERM, "host",
                       "not to no host");
        assert_int_equal(audit_count(), rows);
        assert_int_equal(pc_store_vps_fetch(store, cfg, "vps-b", &v), 0);
        assert_string_equal(v->host, "hv2");
        assert_string_equal(v->iface, "vps-b");
        pc_vps_free(v);

        /* Its own host's VPS: everything the agent role may do. */
        ch.id = "vps-a";
        assert_int_equal(pc_ops_vps_update(&ops, &hv1, &ch, "VM reconfigured", &changed, &err), 0);
        assert_true(changed);
        assert_int_equal(pc_ops_vps_set_state(&ops, &hv1, "vps-a", false, NULL, &changed, &err), 0);
        assert_int_equal(pc_ops_filter_place(&ops, &hv1, "vps-a", &f, "abuse", &id, &err), 0);
        assert_int_equal(pc_ops_suspend(&ops, &hv1, "vps-a", 0, "abuse", &id, &err), 0);
        assert_int_equal(pc_ops_vps_move(&ops, &hv1, "vps-a", "hv1", "vnet3", NULL, &changed, &err), 0);
        assert_true(changed);

        /* A live migration's destination pulls the VPS onto its host. */
        assert_int_equal(pc_ops_vps_move(&ops, &hv1, "vps-b", "hv1", "vnet9", "migrated here", &changed, &err), 0);
        assert_int_equal(pc_ops_vps_get(&ops, &hv1, "vps-b", &v, &err), 0);
        assert_string_equal(v->host, "hv1");
        assert_string_equal(v->moving_from, "hv2");
        pc_vps_free(v);
        assert_int_equal(pc_ops_vps_remove(&ops, &hv1, "vps-a", "VM destroyed", false, &err), 0);

        /* An unbound agent (portcullisd's engine, an --any-host token)
         * acts on every host's. */
        assert_int_equal(pc_ops_vps_set_state(&ops, &agent, "vps-s", false, NULL, &changed, &err), 0);
        assert_true(changed);
}

static int collect_id(const char *id, void *userdata)
{
        char *buf = userdata;

        strcat(buf, id);
        strcat(buf, " ");
        return 0;
}

/* A bound agent's list is its host's VPSes. */
static void test_agent_host_list(void **state)
{
        static const struct pc_ops_actor hv1 = { .principal = "hv1-hooks", .role = PC_ROLE_AGENT, .host = "hv1" };
        struct spec_buf b;
        struct pc_ops_error err;
        char ids[256] = "";

        spec_of(&b, "vps-1", NULL, "198.51.100.11", NULL)->host = "hv1";
        register_ok(&b.spec);
        spec_of(&b, "vps-2", NULL, "198.51.100.12", NULL)->host = "hv2";
        register_ok(&b.spec);
        register_ok(spec_of(&b, "vps-3", NULL, "198.51.100.13", NULL));
        spec_of(&b, "vps-4", NULL, "198.51.100.14", NULL)->host = "hv1";
        register_ok(&b.spec);
        assert_int_equal(pc_ops_vps_list(&ops, &hv1, NULL, 0, collect_id, ids, &err), 0);
        assert_string_equal(ids, "vps-1 vps-4 ");
        ids[0] = '\0';
        assert_int_equal(pc_ops_vps_list(&ops, &hv1, "vps-1", 1, collect_id, ids, &err), 0);
        assert_string_equal(ids, "vps-4 ");
        ids[0] = '\0';
        assert_int_equal(pc_ops_vps_list(&ops, &agent, NULL, 0, collect_id, ids, &err), 0);
        assert_string_equal(ids, "vps-1 vps-2 vps-3 vps-4 ");
}

/* ---- exceptions ------------------------------------------------------- */

static struct pc_exception_spec grant_of(const char *vps, const char *service)
{
        return (struct pc_exception_spec){ .vps_id = vps, .service = service, .reason = "transactional mail" };
}

static void test_grant(void **state)
{
        struct spec_buf b;
        struct pc_exception_spec g = grant_of("vps-201", "smtp");
        struct pc_grant_result res;
        struct pc_ops_error err;
        struct pc_vps *v;

        register_ok(spec_of(&b, "vps-201", "milano", "198.51.100.10", NULL));
        assert_int_equal(pc_ops_exception_grant(&ops, &support, &g, &res, &err), 0);
        assert_true(res.id > 0);
        assert_non_null(res.rule);
        assert_string_equal(res.rule->service->name, "smtp");
        assert_string_equal(res.site->name, "milano");
        assert_int_equal(pc_store_vps_fetch(store, cfg, "vps-201", &v), 0);
        assert_non_null(pc_vps_exception_for(v, "smtp"));
        assert_string_equal(pc_vps_exception_for(v, "smtp")->by, "sam");
        pc_vps_free(v);
        /* once only */
        assert_refused(pc_ops_exception_grant(&ops, &admin, &g, &res, &err), &err, PC_OPS_EEXIST, "",
                       "already has an exception for service smtp");
        /* revoke: support may, a customer may not; then there is none */
        assert_refused(pc_ops_exception_revoke(&ops, &customer, "vps-201", "smtp", "done", &err), &err, PC_OPS_EPERM,
                       "", "may not revoke exceptions");
        assert_refused(pc_ops_exception_revoke(&ops, &support, "vps-201", "smtp", NULL, &err), &err, PC_OPS_EINVAL,
                       "reason", "is required");
        assert_int_equal(pc_ops_exception_revoke(&ops, &support, "vps-201", "smtp", "abuse report", &err), 0);
        assert_refused(pc_ops_exception_revoke(&ops, &support, "vps-201", "smtp", "again", &err), &err, PC_OPS_ENOENT,
                       "", "no exception for service smtp");
}

/* A customer (or the agent) never grants, even on their own VPS. */
static void test_grant_refused_roles(void **state)
{
        struct spec_buf b;
        struct pc_exception_spec g = grant_of("vps-201", "smtp");
        struct pc_ops_error err;
        int64_t before;

        register_ok(spec_of(&b, "vps-201", "milano", "198.51.100.10", NULL));
        before = audit_count();
        assert_refused(pc_ops_exception_grant(&ops, &customer, &g, NULL, &err), &err, PC_OPS_EPERM, "",
                       "may not grant exceptions");
        assert_refused(pc_ops_exception_grant(&ops, &agent, &g, NULL, &err), &err, PC_OPS_EPERM, "",
                       "may not grant exceptions");
        assert_int_equal(audit_count(), before);
}

/* What the site policy does not let support lift, with why. */
static void test_grant_not_exemptable(void **state)
{
        struct spec_buf b;
        struct pc_exception_spec g;
        struct pc_ops_error err;

        register_ok(spec_of(&b, "vps-101", "lenoir", "203.0.113.10", NULL));
        g = grant_of("vps-101", "smtp");
        assert_refused(pc_ops_exception_grant(&ops, &admin, &g, NULL, &err), &err, PC_OPS_ECONFLICT, "service",
                       "is not exemptable");
        g = grant_of("vps-101", "vpn");
        assert_refused(pc_ops_exception_grant(&ops, &admin, &g, NULL, &err), &err, PC_OPS_ECONFLICT, "service",
                       "does not restrict vpn; there is nothing to exempt");
        g = grant_of("vps-101", "gopher");
        assert_refused(pc_ops_exception_grant(&ops, &admin, &g, NULL, &err), &err, PC_OPS_EINVAL, "service",
                       "unknown service 'gopher'");
        g = grant_of("vps-999", "smtp");
        assert_refused(pc_ops_exception_grant(&ops, &admin, &g, NULL, &err), &err, PC_OPS_ENOENT, "vps",
                       "vps vps-999 does not exist");
        g = grant_of("vps-101", "smtp");
        g.reason = "";
        assert_refused(pc_ops_exception_grant(&ops, &admin, &g, NULL, &err), &err, PC_OPS_EINVAL, "reason",
                       "is required");
        g = grant_of("vps-101", "smtp");
        g.until = pc_now() - 10;
        assert_refused(pc_ops_exception_grant(&ops, &admin, &g, NULL, &err), &err, PC_OPS_EINVAL, "until",
                       "is not in the future");
}

/* Source prefixes: never another VPS's address, only where anti-spoofing
 * applies; once granted, no new VPS takes an address inside. */
static void test_grant_source_prefix(void **state)
{
        struct spec_buf b;
        struct pc_exception_spec g;
        struct pc_grant_result res;
        struct pc_ops_error err;

        register_ok(spec_of(&b, "vps-101", "lenoir", "203.0.113.10", NULL));
        register_ok(spec_of(&b, "vps-201", "milano", "198.51.100.10", NULL));
        g = grant_of("vps-101", "source-prefix:198.51.100.0/24");
        assert_refused(pc_ops_exception_grant(&ops, &admin, &g, NULL, &err), &err, PC_OPS_ECONFLICT, "service",
                       "it overlaps 198.51.100.10/32 of vps-201");
        g = grant_of("vps-101", "source-prefix:203.0.113.0/24"); /* its own address: fine */
        assert_int_equal(pc_ops_exception_grant(&ops, &admin, &g, NULL, &err), 0);
        g = grant_of("vps-201", "source-prefix:192.0.2.64/29");
        assert_refused(pc_ops_exception_grant(&ops, &admin, &g, NULL, &err), &err, PC_OPS_ECONFLICT, "service",
                       "has no anti-spoofing policy to except from");
        g = grant_of("vps-101", "source-prefix:127.0.0.0/8");
        assert_refused(pc_ops_exception_grant(&ops, &admin, &g, NULL, &err), &err, PC_OPS_EINVAL, "service",
                       "127.0.0.0/8 cannot be a VPS's");
        g = grant_of("vps-101", "source-prefix:198.51.100.999/29");
        assert_refused(pc_ops_exception_grant(&ops, &admin, &g, NULL, &err), &err, PC_OPS_EINVAL, "service",
                       "is not source-prefix:CIDR");
        g = grant_of("vps-101", "source-prefix:192.0.2.64/29");
        assert_int_equal(pc_ops_exception_grant(&ops, &admin, &g, &res, &err), 0);
        assert_null(res.rule);
        assert_refused(pc_ops_vps_register(&ops, &admin, spec_of(&b, "vps-399", NULL, "192.0.2.66", NULL), NULL,
                                           NULL, &err),
                       &err, PC_OPS_ECONFLICT, "addresses",
                       "address 192.0.2.66/32 overlaps source-prefix:192.0.2.64/29 granted to vps-101");
        /* A failover address: shared by another VPS of the same owner, not
         * by another owner's. */
        register_ok(spec_of(&b, "vps-102", "lenoir", "198.51.100.20", NULL));
        g = grant_of("vps-102", "source-prefix:192.0.2.66/32");
        assert_int_equal(pc_ops_exception_grant(&ops, &admin, &g, NULL, &err), 0);
        spec_of(&b, "vps-103", "lenoir", "198.51.100.30", NULL)->owner = "carla@example.org";
        register_ok(&b.spec);
        g = grant_of("vps-103", "source-prefix:192.0.2.64/30");
        assert_refused(pc_ops_exception_grant(&ops, &admin, &g, NULL, &err), &err, PC_OPS_ECONFLICT, "service",
                       "it overlaps source-prefix:192.0.2.64/29 of vps-101");
}

/* ---- tickets ---------------------------------------------------------- */

static const struct pc_ops_actor other = { .principal = "carla", .role = PC_ROLE_CUSTOMER,
                                           .customer = "carla@example.org" };

static int64_t open_ok(const char *vps, const char *service, const char *ports)
{
        struct pc_ticket_spec t = { .vps_id = vps, .service = service, .ports = ports, .text = "invoices",
                                    .duration = 30 * 86400 };
        struct pc_ops_error err;
        int64_t id = 0;

        if (pc_ops_ticket_open(&ops, &customer, &t, &id, &err) < 0)
                fail_msg("open %s %s: %s", vps, service, err.message);
        return id;
}

static enum pc_ticket_state state_of(int64_t id)
{
        struct pc_ticket t;

        assert_int_equal(pc_store_ticket_get(store, id, pc_now(), &t), 0);
        return t.state;
}

static int64_t rows_of(const char *sql)
{
        char path[128];
        sqlite3 *db;
        sqlite3_stmt *st;
        int64_t n = -1;

        snprintf(path, sizeof(path), "%s/portcullis.db", dir);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        if (sqlite3_step(st) == SQLITE_ROW)
                n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return n;
}

/* Every legal transition, each with its history and audit rows. */
static void test_ticket_transitions(void **state)
{
        struct spec_buf b;
        struct pc_ticket_approval a = { .note = "SPF and DKIM checked" };
        struct pc_grant_result res;
        struct pc_ops_error err;
        struct pc_vps *v;
        struct pc_ticket t;
        int64_t t1, t2, t3, before;

        register_ok(spec_of(&b, "vps-201", "milano", "198.51.100.10", NULL));
        t1 = open_ok("vps-201", "smtp", NULL);
        assert_int_equal(state_of(t1), PC_TICKET_OPEN);
        before = audit_count();
        assert_int_equal(pc_ops_ticket_investigate(&ops, &support, t1, "asked for the mail logs", &err), 0);
        assert_int_equal(state_of(t1), PC_TICKET_INVESTIGATING);
        assert_int_equal(pc_ops_ticket_approve(&ops, &support, t1, &a, &res, &err), 0);
        assert_int_equal(state_of(t1), PC_TICKET_APPROVED);
        assert_int_equal(pc_store_ticket_get(store, t1, pc_now(), &t), 0);
        assert_int_equal(t.exception_id, res.id);
        assert_string_equal(t.updated_by, "sam");
        assert_string_equal(t.note, "SPF and DKIM checked");
        /* the duration asked: 30 days from now */
        assert_true(t.until > pc_now() + 30 * 86400 - 60 && t.until <= pc_now() + 30 * 86400);
        assert_int_equal(pc_store_vps_fetch(store, cfg, "vps-201", &v), 0);
        assert_non_null(pc_vps_exception_for(v, "smtp"));
        assert_int_equal(pc_vps_exception_for(v, "smtp")->ticket_id, t1);
        assert_int_equal(pc_vps_exception_for(v, "smtp")->n_ports, 0);
        pc_vps_free(v);
        assert_int_equal(pc_ops_ticket_revoke(&ops, &support, t1, "spam complaints", &err), 0);
        assert_int_equal(state_of(t1), PC_TICKET_REVOKED);
        assert_int_equal(pc_store_vps_fetch(store, cfg, "vps-201", &v), 0);
        assert_null(pc_vps_exception_for(v, "smtp"));
        pc_vps_free(v);
        /* investigate, approve (+exception.grant), revoke (+exception.revoke) */
        assert_int_equal(audit_count(), before + 5);
        assert_int_equal(rows_of("SELECT count(*) FROM ticket_event WHERE ticket_id = 1"), 4);

        /* open -> approved directly; open -> denied; investigating -> denied */
        t2 = open_ok("vps-201", "vpn", NULL);
        assert_int_equal(pc_ops_ticket_approve(&ops, &admin, t2, &(struct pc_ticket_approval){ 0 }, NULL, &err), 0);
        assert_int_equal(state_of(t2), PC_TICKET_APPROVED);
        t3 = open_ok("vps-201", "bittorrent", NULL);
        assert_int_equal(pc_ops_ticket_deny(&ops, &support, t3, "we cannot verify the files are yours", &err), 0);
        assert_int_equal(state_of(t3), PC_TICKET_DENIED);
        t3 = open_ok("vps-201", "bittorrent", NULL);
        assert_int_equal(pc_ops_ticket_investigate(&ops, &support, t3, NULL, &err), 0);
        assert_int_equal(pc_ops_ticket_deny(&ops, &support, t3, "no", &err), 0);
        assert_int_equal(state_of(t3), PC_TICKET_DENIED);
}

/* A customer asks once per service and VPS, a few questions at a time,
 * for at most a year: each ticket is an email and the team's work. */
static void test_ticket_pending_limits(void **state)
{
        struct spec_buf b;
        struct pc_ticket_spec t = { .vps_id = "vps-201", .service = "smtp", .text = "invoices" };
        struct pc_ops_error err;
        int64_t first, id;

        register_ok(spec_of(&b, "vps-201", "milano", "198.51.100.10", NULL));
        first = open_ok("vps-201", "smtp", NULL);
        assert_refused(pc_ops_ticket_open(&ops, &customer, &t, &id, &err), &err, PC_OPS_EEXIST, "service",
                       "is waiting for a decision already");
        assert_int_equal(pc_ops_http_status(err.code), 409);
        assert_int_equal(pc_ops_ticket_deny(&ops, &support, first, "no", &err), 0);
        open_ok("vps-201", "smtp", NULL); /* decided: the customer may ask again */
        /* Source prefixes are as many subjects as there are prefixes. */
        register_ok(spec_of(&b, "vps-101", "lenoir", "203.0.113.10", NULL));
        for (int i = 0; i < PC_TICKETS_PENDING_MAX; i++) {
                char subject[64];

                snprintf(subject, sizeof(subject), "source-prefix:192.0.2.%d/29", 64 + 8 * i);
                open_ok("vps-101", subject, NULL);
        }
        t.vps_id = "vps-101";
        t.service = "source-prefix:192.0.2.128/29";
        assert_refused(pc_ops_ticket_open(&ops, &customer, &t, &id, &err), &err, PC_OPS_ELIMIT, "",
                       "has 5 tickets waiting for a decision (at most 5)");
        t.service = "smtp";
        t.vps_id = "vps-201";
        t.duration = PC_TICKET_DURATION_MAX + 1;
        assert_refused(pc_ops_ticket_open(&ops, &customer, &t, &id, &err), &err, PC_OPS_EINVAL, "duration",
                       "to 31622400 seconds");
        t.duration = INT64_MAX;
        assert_refused(pc_ops_ticket_open(&ops, &customer, &t, &id, &err), &err, PC_OPS_EINVAL, "duration", "a year");
}

/* Every illegal transition: ECONFLICT naming the state, nothing written. */
static void test_ticket_illegal(void **state)
{
        struct spec_buf b;
        struct pc_ticket_approval a = { 0 };
        struct pc_ops_error err;
        int64_t open_, inv, appr, den, rev, before;

        register_ok(spec_of(&b, "vps-201", "milano", "198.51.100.10", NULL));
        register_ok(spec_of(&b, "vps-202", "milano", "198.51.100.11", NULL));
        open_ = open_ok("vps-201", "smtp", NULL);
        inv = open_ok("vps-202", "smtp", NULL); /* one pending ticket per service and VPS */
        assert_int_equal(pc_ops_ticket_investigate(&ops, &support, inv, NULL, &err), 0);
        appr = open_ok("vps-201", "vpn", NULL);
        assert_int_equal(pc_ops_ticket_approve(&ops, &support, appr, &a, NULL, &err), 0);
        den = open_ok("vps-201", "bittorrent", NULL);
        assert_int_equal(pc_ops_ticket_deny(&ops, &support, den, "no", &err), 0);
        rev = open_ok("vps-201", "bittorrent", NULL);
        assert_int_equal(pc_ops_ticket_approve(&ops, &support, rev, &a, NULL, &err), 0);
        assert_int_equal(pc_ops_ticket_revoke(&ops, &support, rev, "abuse", &err), 0);
        before = audit_count();

        assert_refused(pc_ops_ticket_revoke(&ops, &support, open_, "x", &err), &err, PC_OPS_ECONFLICT, "",
                       "is open: only an approved ticket can be revoked");
        assert_int_equal(pc_ops_http_status(err.code), 409);
        assert_refused(pc_ops_ticket_investigate(&ops, &support, inv, NULL, &err), &err, PC_OPS_ECONFLICT, "",
                       "is investigating: only an open ticket can be investigated");
        assert_refused(pc_ops_ticket_revoke(&ops, &support, inv, "x", &err), &err, PC_OPS_ECONFLICT, "",
                       "is investigating: only an approved ticket can be revoked");
        assert_refused(pc_ops_ticket_approve(&ops, &support, appr, &a, NULL, &err), &err, PC_OPS_ECONFLICT, "",
                       "is approved: only an open or investigating ticket can be approved");
        assert_refused(pc_ops_ticket_deny(&ops, &support, appr, "x", &err), &err, PC_OPS_ECONFLICT, "",
                       "is approved: only an open or investigating ticket can be denied");
        assert_refused(pc_ops_ticket_investigate(&ops, &support, appr, NULL, &err), &err, PC_OPS_ECONFLICT, "",
                       "is approved: only an open ticket can be investigated");
        for (int i = 0; i < 2; i++) {
                int64_t id = i == 0 ? den : rev;
                const char *st = i == 0 ? "denied" : "revoked";
                char want[128];

                snprintf(want, sizeof(want), "is %s: only an open or investigating ticket can be approved", st);
                assert_refused(pc_ops_ticket_approve(&ops, &support, id, &a, NULL, &err), &err, PC_OPS_ECONFLICT, "",
                               want);
                snprintf(want, sizeof(want), "is %s: only an open or investigating ticket can be denied", st);
                assert_refused(pc_ops_ticket_deny(&ops, &support, id, "x", &err), &err, PC_OPS_ECONFLICT, "", want);
                snprintf(want, sizeof(want), "is %s: only an approved ticket can be revoked", st);
                assert_refused(pc_ops_ticket_revoke(&ops, &support, id, "x", &err), &err, PC_OPS_ECONFLICT, "", want);
                snprintf(want, sizeof(want), "is %s: only an open ticket can be investigated", st);
                assert_refused(pc_ops_ticket_investigate(&ops, &support, id, NULL, &err), &err, PC_OPS_ECONFLICT, "",
                               want);
        }
        /* reasons a customer reads are required; a missing ticket */
        assert_refused(pc_ops_ticket_deny(&ops, &support, open_, NULL, &err), &err, PC_OPS_EINVAL, "reason",
                       "is required");
        assert_refused(pc_ops_ticket_revoke(&ops, &support, appr, "", &err), &err, PC_OPS_EINVAL, "reason",
                       "is required");
        assert_refused(pc_ops_ticket_deny(&ops, &support, 999, "x", &err), &err, PC_OPS_ENOENT, "",
                       "ticket #999 does not exist");
        assert_int_equal(audit_count(), before);
}

/* A customer opens and reads their own; never decides, not even their
 * own; another customer's ticket or VPS does not exist for them. */
static void test_ticket_authorisation(void **state)
{
        struct spec_buf b;
        struct pc_ticket_approval a = { 0 };
        struct pc_ticket_spec ts = { .vps_id = "vps-202", .service = "smtp", .text = "mail" };
        struct pc_ticket_query q = { .state = -1 };
        struct pc_ops_error err;
        struct pc_ticket t;
        int64_t mine, before, n = 0;

        register_ok(spec_of(&b, "vps-201", "milano", "198.51.100.10", NULL));
        spec_of(&b, "vps-202", "milano", "198.51.100.20", NULL);
        b.spec.owner = "carla@example.org";
        register_ok(&b.spec);
        mine = open_ok("vps-201", "smtp", NULL);
        before = audit_count();
        assert_refused(pc_ops_ticket_approve(&ops, &customer, mine, &a, NULL, &err), &err, PC_OPS_EPERM, "",
                       "bruno (role customer) may not approve tickets: only admin or support may");
        assert_int_equal(pc_ops_http_status(err.code), 403);
        assert_refused(pc_ops_ticket_deny(&ops, &customer, mine, "x", &err), &err, PC_OPS_EPERM, "", "may not deny");
        assert_refused(pc_ops_ticket_investigate(&ops, &customer, mine, NULL, &err), &err, PC_OPS_EPERM, "",
                       "may not investigate");
        assert_refused(pc_ops_ticket_revoke(&ops, &customer, mine, "x", &err), &err, PC_OPS_EPERM, "", "may not revoke");
        assert_refused(pc_ops_ticket_approve(&ops, &agent, mine, &a, NULL, &err), &err, PC_OPS_EPERM, "",
                       "may not approve");
        assert_int_equal(audit_count(), before);
        assert_int_equal(state_of(mine), PC_TICKET_OPEN);

        /* their own: readable; another customer's: not found, not forbidden */
        assert_int_equal(pc_ops_ticket_get(&ops, &customer, mine, &t, &err), 0);
        assert_refused(pc_ops_ticket_get(&ops, &other, mine, &t, &err), &err, PC_OPS_ENOENT, "",
                       "ticket #1 does not exist");
        assert_int_equal(pc_ops_http_status(err.code), 404);
        assert_refused(pc_ops_ticket_open(&ops, &customer, &ts, NULL, &err), &err, PC_OPS_ENOENT, "vps",
                       "vps vps-202 does not exist");
        assert_int_equal(pc_ops_ticket_open(&ops, &other, &ts, NULL, &err), 0);
        /* lists: a customer's are theirs only, whatever they ask */
        assert_int_equal(pc_ops_ticket_list(&ops, &other, &q, count_ticket, &n, &err), 0);
        assert_int_equal(n, 1);
        q.vps_id = "vps-201";
        assert_refused(pc_ops_ticket_list(&ops, &other, &q, count_ticket, &n, &err), &err, PC_OPS_ENOENT, "vps",
                       "vps vps-201 does not exist");
        q.vps_id = NULL;
        n = 0;
        assert_int_equal(pc_ops_ticket_list(&ops, &support, &q, count_ticket, &n, &err), 0);
        assert_int_equal(n, 2);
}

/* A ticket's findings: support sees the VPS's blocked attempts on the
 * service's ports (from the store, as portcullisd writes them), its
 * incidents and actions and the customer's other tickets; a customer, even
 * on their own ticket, and the agent get none. */
static void test_ticket_findings(void **state)
{
        struct pc_attempt_count seed[] = {
                { "vps-201", PC_DIR_EGRESS, IPPROTO_TCP, 587, 5, 1000 },
                { "vps-201", PC_DIR_EGRESS, IPPROTO_TCP, 6881, 9, 1000 }, /* bittorrent's, not smtp's */
                { "vps-202", PC_DIR_EGRESS, IPPROTO_TCP, 25, 7, 1000 },   /* another VPS */
        };
        struct spec_buf b;
        struct pc_ops_error err;
        json_t *f = NULL, *a;
        int64_t id, vpn, incident;
        bool opened;

        register_ok(spec_of(&b, "vps-201", "milano", "198.51.100.10", NULL));
        register_ok(spec_of(&b, "vps-202", "milano", "198.51.100.20", NULL));
        vpn = open_ok("vps-201", "vpn", NULL);
        id = open_ok("vps-201", "smtp", NULL);
        for (size_t i = 0; i < PC_ARRAY_SIZE(seed); i++)
                assert_int_equal(pc_store_attempt_note(store, &seed[i]), 0);
        assert_int_equal(pc_store_incident_note(store, "vps-201", "blocked-use", 5, 1000, NULL, 3600, &incident,
                                                &opened, 0), 0);

        assert_refused(pc_ops_ticket_findings(&ops, &customer, id, &f, &err), &err, PC_OPS_EPERM, "",
                       "bruno (role customer) may not read a ticket's findings: only admin or support may");
        assert_null(f);
        assert_refused(pc_ops_ticket_findings(&ops, &agent, id, &f, &err), &err, PC_OPS_EPERM, "", "may not");
        assert_null(f);
        assert_refused(pc_ops_ticket_findings(&ops, &support, 999, &f, &err), &err, PC_OPS_ENOENT, "",
                       "ticket #999 does not exist");

        assert_int_equal(pc_ops_ticket_findings(&ops, &support, id, &f, &err), 0);
        a = json_object_get(f, "blocked_attempts");
        assert_int_equal(json_array_size(a), 1);
        a = json_array_get(a, 0);
        assert_string_equal(json_string_value(json_object_get(a, "proto")), "tcp");
        assert_int_equal(json_integer_value(json_object_get(a, "port")), 587);
        assert_string_equal(json_string_value(json_object_get(a, "direction")), "egress");
        assert_int_equal(json_integer_value(json_object_get(a, "packets")), 5);
        assert_string_equal(json_string_value(json_object_get(a, "last_seen")), "1970-01-01T00:16:40Z");
        assert_int_equal(json_array_size(json_object_get(f, "incidents")), 1);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(f, "incidents"), 0), "id")),
                         incident);
        assert_int_equal(json_array_size(json_object_get(f, "actions")), 0);
        assert_int_equal(json_array_size(json_object_get(f, "earlier_tickets")), 1);
        assert_int_equal(json_integer_value(
                                 json_object_get(json_array_get(json_object_get(f, "earlier_tickets"), 0), "id")),
                         vpn);
        json_decref(f);

        /* vpn's rule has other ports: none of the counts seeded */
        assert_int_equal(pc_ops_ticket_findings(&ops, &admin, vpn, &f, &err), 0);
        assert_int_equal(json_array_size(json_object_get(f, "blocked_attempts")), 0);
        json_decref(f);
}

/* Refused at creation, with why, writing nothing. */
static void test_ticket_open_refused(void **state)
{
        struct spec_buf b;
        struct pc_ticket_spec t = { .vps_id = "vps-101", .service = "smtp", .text = "direct mail" };
        struct pc_ops_error err;
        int64_t before;

        register_ok(spec_of(&b, "vps-101", "lenoir", "203.0.113.10", NULL));
        register_ok(spec_of(&b, "vps-201", "milano", "198.51.100.10", NULL));
        before = audit_count();
        /* provider A's port-25 proxy */
        assert_refused(pc_ops_ticket_open(&ops, &customer, &t, NULL, &err), &err, PC_OPS_ECONFLICT, "service",
                       "rule 1 of policy lenoir");
        assert_non_null(strstr(err.message, "is not exemptable"));
        t.service = "vpn";
        assert_refused(pc_ops_ticket_open(&ops, &customer, &t, NULL, &err), &err, PC_OPS_ECONFLICT, "service",
                       "does not restrict vpn; there is nothing to exempt");
        t.service = "gopher";
        assert_refused(pc_ops_ticket_open(&ops, &customer, &t, NULL, &err), &err, PC_OPS_EINVAL, "service",
                       "unknown service 'gopher'");
        t = (struct pc_ticket_spec){ .vps_id = "vps-201", .service = "smtp", .text = "mail", .ports = "tcp/80" };
        assert_refused(pc_ops_ticket_open(&ops, &customer, &t, NULL, &err), &err, PC_OPS_EINVAL, "ports",
                       "'tcp/80' is not within the ports the site blocks for the service");
        t.ports = "tcp/587,587";
        assert_refused(pc_ops_ticket_open(&ops, &customer, &t, NULL, &err), &err, PC_OPS_EINVAL, "ports", "overlap");
        t.ports = NULL;
        t.text = "";
        assert_refused(pc_ops_ticket_open(&ops, &customer, &t, NULL, &err), &err, PC_OPS_EINVAL, "text",
                       "is required");
        t.text = "two\nlines";
        assert_refused(pc_ops_ticket_open(&ops, &customer, &t, NULL, &err), &err, PC_OPS_EINVAL, "text",
                       "one line of text");
        t = (struct pc_ticket_spec){ .vps_id = "vps-201", .service = "scanning", .text = "audit", .ports = "22" };
        assert_refused(pc_ops_ticket_open(&ops, &admin, &t, NULL, &err), &err, PC_OPS_EINVAL, "ports",
                       "are a service's: scanning has none");
        assert_int_equal(audit_count(), before);
        assert_int_equal(rows_of("SELECT count(*) FROM ticket"), 0);
        assert_int_equal(rows_of("SELECT count(*) FROM notification"), 0);
}

/* A port subset: exactly those ports open, the rest of the rule stays
 * closed (in evaluation and in the kernel's filters); revoke closes all. */
static void test_ticket_ports(void **state)
{
        struct spec_buf b;
        struct pc_ticket_approval a = { 0 };
        struct pc_grant_result res;
        struct pc_ops_error err;
        struct pc_verdict verdict;
        struct pc_vps *v;
        const struct pc_exception *e;
        int64_t id;
        size_t kept = 0;

        register_ok(spec_of(&b, "vps-201", "milano", "198.51.100.10", NULL));
        id = open_ok("vps-201", "smtp", "tcp/587,tcp/465");
        /* support opens fewer than asked, never more */
        a.ports = "tcp/25";
        assert_refused(pc_ops_ticket_approve(&ops, &support, id, &a, NULL, &err), &err, PC_OPS_EINVAL, "ports",
                       "'tcp/25' is not within the ports the ticket asks for (tcp/465,tcp/587)");
        a.ports = "587";
        assert_int_equal(pc_ops_ticket_approve(&ops, &support, id, &a, &res, &err), 0);
        assert_int_equal(pc_store_vps_fetch(store, cfg, "vps-201", &v), 0);
        e = pc_vps_exception_for(v, "smtp");
        assert_non_null(e);
        assert_int_equal(e->n_ports, 1);
        assert_int_equal(e->ports[0].lo, 587);
        static const uint16_t ports[] = { 25, 26, 465, 587, 2525, 80, 443 };

        for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
                uint16_t port = ports[i];
                struct pc_flow f = { .dir = PC_DIR_EGRESS, .proto = PC_PROTO_TCP, .port = port };
                bool smtp = port == 25 || port == 26 || port == 465 || port == 587 || port == 2525;
                enum pc_verdict_kind want = !smtp || port == 587 ? PC_VERDICT_ALLOW : PC_VERDICT_REJECT;

                pc_evaluate(v, &f, pc_now(), &verdict);
                if (verdict.verdict != want || pc_evaluate_fast(v, &f, pc_now()) != want)
                        fail_msg("tcp/%u: %s", port, pc_verdict_name(verdict.verdict));
        }
        /* the kernel's view: the rule lifted, its other ports filtered */
        for (size_t i = 0; i < v->n_filters; i++) {
                const struct pc_filter *f = &v->filters[i];

                assert_int_equal(f->exception_id, e->id);
                assert_int_equal(f->until, e->until);
                assert_false(f->ports.lo <= 587 && 587 <= f->ports.hi);
                kept++;
        }
        assert_int_equal(kept, 4); /* 25, 26, 465, 2525 */
        assert_int_equal(pc_vps_real_filters(v), 0);
        pc_vps_free(v);
        assert_int_equal(rows_of("SELECT count(*) FROM exception WHERE ports = 'tcp/587'"), 1);

        assert_int_equal(pc_ops_ticket_revoke(&ops, &support, id, "spam", &err), 0);
        assert_int_equal(pc_store_vps_fetch(store, cfg, "vps-201", &v), 0);
        assert_null(pc_vps_exception_for(v, "smtp"));
        assert_int_equal(v->n_filters, 0);
        pc_vps_free(v);
}

/* The owner hears of each step in the same transaction, in their
 * language; an investigation is internal. */
static void test_ticket_notifications(void **state)
{
        struct spec_buf b;
        struct pc_ops_error err;
        int64_t t1, t2;

        register_ok(spec_of(&b, "vps-201", "milano", "198.51.100.10", NULL));
        t1 = open_ok("vps-201", "smtp", "587");
        assert_int_equal(rows_of("SELECT count(*) FROM notification WHERE kind = 'ticket.received'"), 1);
        assert_int_equal(pc_ops_ticket_investigate(&ops, &support, t1, NULL, &err), 0);
        assert_int_equal(rows_of("SELECT count(*) FROM notification"), 1);
        assert_int_equal(pc_ops_ticket_approve(&ops, &support, t1, &(struct pc_ticket_approval){ 0 }, NULL, &err), 0);
        assert_int_equal(rows_of("SELECT count(*) FROM notification WHERE kind = 'ticket.approved' AND "
                                 "json_extract(payload, '$.ports') = 'tcp/587' AND "
                                 "json_extract(payload, '$.until') > 0 AND json_extract(payload, '$.ticket') = 1"),
                         1);
        /* the approval says what opened: no second email */
        assert_int_equal(rows_of("SELECT count(*) FROM notification WHERE kind = 'exception.granted'"), 0);
        t2 = open_ok("vps-201", "vpn", NULL);
        assert_int_equal(pc_ops_ticket_deny(&ops, &support, t2, "VPNs need a contract", &err), 0);
        assert_int_equal(rows_of("SELECT count(*) FROM notification WHERE kind = 'ticket.denied' AND "
                                 "json_extract(payload, '$.reason') = 'VPNs need a contract' AND "
                                 "recipient = 'bruno@example.it'"),
                         1);
        assert_int_equal(pc_ops_ticket_revoke(&ops, &support, t1, "abuse", &err), 0);
        assert_int_equal(rows_of("SELECT count(*) FROM notification WHERE kind = 'exception.revoked'"), 1);
}

/* exception grant --ticket N is ticket_approve: the ticket's VPS and
 * service are checked (the bug: the service was not). */
static void test_grant_with_ticket(void **state)
{
        struct spec_buf b;
        struct pc_exception_spec g = grant_of("vps-201", "vpn");
        struct pc_grant_result res;
        struct pc_ops_error err;
        int64_t id;

        register_ok(spec_of(&b, "vps-201", "milano", "198.51.100.10", NULL));
        register_ok(spec_of(&b, "vps-202", "milano", "198.51.100.20", NULL));
        id = open_ok("vps-201", "smtp", NULL);
        g.ticket_id = id;
        assert_refused(pc_ops_exception_grant(&ops, &support, &g, &res, &err), &err, PC_OPS_ECONFLICT, "ticket",
                       "ticket #1 asks for smtp, not vpn");
        g = grant_of("vps-202", "smtp");
        g.ticket_id = id;
        assert_refused(pc_ops_exception_grant(&ops, &support, &g, &res, &err), &err, PC_OPS_ECONFLICT, "ticket",
                       "ticket #1 is for vps-201, not vps-202");
        g.ticket_id = 99;
        assert_refused(pc_ops_exception_grant(&ops, &support, &g, &res, &err), &err, PC_OPS_ENOENT, "ticket",
                       "ticket #99 does not exist");
        assert_int_equal(state_of(id), PC_TICKET_OPEN);
        g = grant_of("vps-201", "smtp");
        g.ticket_id = id;
        assert_int_equal(pc_ops_exception_grant(&ops, &support, &g, &res, &err), 0);
        assert_int_equal(state_of(id), PC_TICKET_APPROVED);
        assert_string_equal(res.rule->service->name, "smtp");
}

/* An approved ticket whose exception ran out is expired: read so at
 * once, recorded by the agent's pass; it can no longer be revoked. */
static void test_ticket_expiry(void **state)
{
        struct spec_buf b;
        struct pc_ticket_approval a = { .until = pc_now() + 2 };
        struct pc_ops_error err;
        size_t n = 0;
        int64_t id;

        register_ok(spec_of(&b, "vps-201", "milano", "198.51.100.10", NULL));
        id = open_ok("vps-201", "smtp", NULL);
        assert_int_equal(pc_ops_ticket_approve(&ops, &support, id, &a, NULL, &err), 0);
        assert_int_equal(state_of(id), PC_TICKET_APPROVED);
        sleep(3);
        assert_int_equal(state_of(id), PC_TICKET_EXPIRED);
        assert_refused(pc_ops_ticket_revoke(&ops, &support, id, "x", &err), &err, PC_OPS_ECONFLICT, "",
                       "is expired: only an approved ticket can be revoked");
        assert_refused(pc_ops_ticket_expire_due(&ops, &support, NULL, &n, &err), &err, PC_OPS_EPERM, "",
                       "may not expire tickets");
        /* Another host's agent leaves it to its own (vps-201 has none: every). */
        assert_int_equal(pc_ops_ticket_expire_due(&ops, &agent, "hv9", &n, &err), 0);
        assert_int_equal(n, 0);
        assert_int_equal(rows_of("SELECT count(*) FROM ticket WHERE state = 'expired'"), 0);
        assert_int_equal(pc_ops_ticket_expire_due(&ops, &agent, NULL, &n, &err), 0);
        assert_int_equal(n, 1);
        assert_int_equal(rows_of("SELECT count(*) FROM ticket WHERE state = 'expired'"), 1);
        assert_int_equal(rows_of("SELECT count(*) FROM audit WHERE action = 'ticket.expire'"), 1);
        assert_int_equal(pc_ops_ticket_expire_due(&ops, &agent, NULL, &n, &err), 0);
        assert_int_equal(n, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_codes),
                cmocka_unit_test(test_authorize_matrix),
                cmocka_unit_test(test_fleet_judge),
                cmocka_unit_test_setup_teardown(test_tokens, open_store, close_store),
                cmocka_unit_test_setup_teardown(test_token_host, open_store, close_store),
                cmocka_unit_test_setup_teardown(test_agent_bound_to_host, open_store, close_store),
                cmocka_unit_test_setup_teardown(test_vps_depart, open_store, close_store),
                cmocka_unit_test_setup_teardown(test_agent_host_list, open_store, close_store),
                cmocka_unit_test_setup_teardown(test_register, open_store, close_store),
                cmocka_unit_test_setup_teardown(test_register_refused_roles, open_store, close_store),
                cmocka_unit_test_setup_teardown(test_register_invalid, open_store, close_store),
                cmocka_unit_test_setup_teardown(test_register_overlap, open_store, close_store),
                cmocka_unit_test_setup_teardown(test_remove, open_store, close_store),
                cmocka_unit_test_setup_teardown(test_update, open_store, close_store),
                cmocka_unit_test_setup_teardown(test_set_state, open_store, close_store),
                cmocka_unit_test_setup_teardown(test_grant, open_store, close_store),
                cmocka_unit_test_setup_teardown(test_grant_refused_roles, open_store, close_store),
                cmocka_unit_test_setup_teardown(test_grant_not_exemptable, open_store, close_store),
                cmocka_unit_test_setup_teardown(test_grant_source_prefix, open_store, close_store),
                cmocka_unit_test_setup_teardown(test_ticket_transitions, open_store, close_store),
                cmocka_unit_test_setup_teardown(test_ticket_illegal, open_store, close_store),
                cmocka_unit_test_setup_teardown(test_ticket_pending_limits, open_store, close_store),
                cmocka_unit_test_setup_teardown(test_ticket_authorisation, open_store, close_store),
                cmocka_unit_test_setup_teardown(test_ticket_findings, open_store, close_store),
                cmocka_unit_test_setup_teardown(test_ticket_open_refused, open_store, close_store),
                cmocka_unit_test_setup_teardown(test_ticket_ports, open_store, close_store),
                cmocka_unit_test_setup_teardown(test_ticket_notifications, open_store, close_store),
                cmocka_unit_test_setup_teardown(test_grant_with_ticket, open_store, close_store),
                cmocka_unit_test_setup_teardown(test_ticket_expiry, open_store, close_store),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
