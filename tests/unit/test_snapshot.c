/* The host's policy snapshot (policy/snapshot.h): a round trip keeps what
 * the kernel is programmed from; a torn file, another version, a checksum
 * mismatch and malformed lines are refused whole; what ended is left out. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/snapshot.h"

#include "fixture.h"

#define NOW 1764590000

/* A model of three VPSes: one with every kind of thing, one suspended,
 * one bare (no interface, odd characters in its owner and reason). */
static struct pc_model *sample(void)
{
        struct pc_model *m;
        struct pc_vps *v;
        struct pc_prefix p;

        assert_int_equal(pc_model_new(cfg, &m), 0);

        assert_int_equal(pc_vps_new(&v), 0);
        snprintf(v->id, sizeof(v->id), "vps-101");
        v->site = pc_config_site(cfg, "milano");
        snprintf(v->iface, sizeof(v->iface), "vnet101");
        snprintf(v->owner, sizeof(v->owner), "max@example.org");
        snprintf(v->lang, sizeof(v->lang), "it");
        snprintf(v->host, sizeof(v->host), "hv1");
        assert_int_equal(pc_parse_mac("52:54:00:12:34:56", v->mac), 0);
        v->has_mac = true;
        v->created = NOW - 1000;
        assert_int_equal(pc_parse_prefix("198.51.100.14", false, &p), 0);
        assert_int_equal(pc_vps_add_addr(v, &p), 0);
        assert_int_equal(pc_parse_prefix("2001:db8:1::/64", false, &p), 0);
        assert_int_equal(pc_vps_add_addr(v, &p), 0);
        {
                struct pc_exception e = { .id = 7, .service = "smtp", .ticket_id = 3, .by = "sam",
                                          .reason = "newsletter, ticket #3", .created = NOW - 500 };
                char perr[64];

                assert_int_equal(pc_ports_parse("tcp/587,tcp/465", e.ports, &e.n_ports, perr, sizeof(perr)), 0);
                assert_int_equal(pc_vps_add_exception(v, &e), 0);
        }
        {
                struct pc_exception e = { .id = 8, .service = "vpn", .by = "sam", .reason = "ends",
                                          .created = NOW - 500, .until = NOW + 3600 };

                assert_int_equal(pc_vps_add_exception(v, &e), 0);
        }
        {
                struct pc_filter f = { .id = 11, .direction = PC_DIR_EGRESS, .scope = PC_SCOPE_PORTS,
                                       .ports = { PC_PROTO_TCP, 8080, 8080 }, .by = "sam",
                                       .reason = "abuse report", .created = NOW - 100 };

                assert_int_equal(pc_vps_add_filter(v, &f), 0);
                f = (struct pc_filter){ .id = 12, .direction = PC_DIR_BOTH, .scope = PC_SCOPE_SERVICE,
                                        .service = pc_config_service(cfg, "irc"), .incident_id = 5,
                                        .by = "portcullisd", .reason = "scan", .created = NOW - 50,
                                        .until = NOW + 600 };
                assert_int_equal(pc_vps_add_filter(v, &f), 0);
                /* one the journal placed: no id yet */
                f = (struct pc_filter){ .id = 0, .direction = PC_DIR_INGRESS, .scope = PC_SCOPE_ALL,
                                        .by = "portcullisd", .reason = "x (database unreachable: journal)",
                                        .created = NOW - 10, .until = NOW + 60 };
                assert_int_equal(pc_vps_add_filter(v, &f), 0);
        }
        assert_int_equal(pc_model_add(m, v), 0);

        assert_int_equal(pc_vps_new(&v), 0);
        snprintf(v->id, sizeof(v->id), "vps-102");
        v->site = pc_config_site(cfg, "lenoir");
        snprintf(v->iface, sizeof(v->iface), "vnet102");
        snprintf(v->host, sizeof(v->host), "hv2");
        snprintf(v->moving_from, sizeof(v->moving_from), "hv1");
        snprintf(v->moving_iface, sizeof(v->moving_iface), "vnet9");
        v->stopped = true;
        v->run_since = NOW - 7;
        v->suspended = true;
        v->suspension = (struct pc_suspension){ .id = 21, .incident_id = 9, .by = "portcullisd",
                                                .reason = "spoofing 203.0.113.9", .created = NOW - 20,
                                                .terminated = true };
        assert_int_equal(pc_model_add(m, v), 0);

        assert_int_equal(pc_vps_new(&v), 0);
        snprintf(v->id, sizeof(v->id), "vps-103");
        v->site = pc_config_site(cfg, "milano");
        snprintf(v->owner, sizeof(v->owner), "-");
        assert_int_equal(pc_model_add(m, v), 0);
        {
                struct pc_filter f = { .id = 13, .direction = PC_DIR_EGRESS, .scope = PC_SCOPE_ALL,
                                       .by = "a b", .reason = "100% spaces\tand\nnewlines, \xc3\xa8", .created = 1 };

                assert_int_equal(pc_vps_add_filter(pc_model_find(m, "vps-103"), &f), 0);
        }
        return m;
}

/* <m> as a sealed snapshot, in a string the caller frees. */
static char *written(const struct pc_model *m, size_t *ret_len)
{
        struct pc_snapshot_head h = { .host = "hv1", .written = NOW, .loaded = NOW - 60, .fingerprint = 0x0123456789abcdefULL };
        struct strbuf b = { 0 };
        size_t n = 0;

        assert_int_equal(pc_snapshot_format(m, &h, &b, &n), 0);
        assert_int_equal(n, pc_model_count(m));
        pc_snapshot_seal(&b, n);
        assert_false(b.oom);
        *ret_len = b.len;
        return b.s;
}

/* Parses <text> at <now>: its return, and the model in *<ret_m> (freed
 * by the caller) whatever it is. */
static int parsed(const char *text, size_t len, int64_t now, struct pc_model **ret_m, struct pc_snapshot_head *h,
                  struct pc_snapshot_stats *st, char *err, size_t errsz)
{
        assert_int_equal(pc_model_new(cfg, ret_m), 0);
        return pc_snapshot_parse(text, len, *ret_m, now, h, st, err, errsz);
}

static void same_filter(const struct pc_filter *a, const struct pc_filter *b)
{
        assert_int_equal(a->id, b->id);
        assert_int_equal(a->direction, b->direction);
        assert_int_equal(a->scope, b->scope);
        assert_ptr_equal(a->service, b->service);
        assert_memory_equal(&a->ports, &b->ports, sizeof(a->ports));
        assert_int_equal(a->incident_id, b->incident_id);
        assert_string_equal(a->by, b->by);
        assert_string_equal(a->reason, b->reason);
        assert_int_equal(a->created, b->created);
        assert_int_equal(a->until, b->until);
        assert_int_equal(a->exception_id, b->exception_id);
}

static void same_vps(const struct pc_vps *a, const struct pc_vps *b)
{
        assert_string_equal(a->id, b->id);
        assert_ptr_equal(a->site, b->site);
        assert_string_equal(a->iface, b->iface);
        assert_int_equal(a->has_mac, b->has_mac);
        assert_memory_equal(a->mac, b->mac, 6);
        assert_string_equal(a->owner, b->owner);
        assert_string_equal(a->lang, b->lang);
        assert_int_equal(a->created, b->created);
        assert_int_equal(a->stopped, b->stopped);
        assert_int_equal(a->run_since, b->run_since);
        assert_string_equal(a->host, b->host);
        assert_string_equal(a->moving_from, b->moving_from);
        assert_string_equal(a->moving_iface, b->moving_iface);
        assert_int_equal(a->n_addrs, b->n_addrs);
        assert_memory_equal(a->addrs, b->addrs, a->n_addrs * sizeof(*a->addrs));
        assert_int_equal(a->n_exceptions, b->n_exceptions);
        for (size_t i = 0; i < a->n_exceptions; i++) {
                const struct pc_exception *x = &a->exceptions[i], *y = &b->exceptions[i];

                assert_int_equal(x->id, y->id);
                assert_string_equal(x->service, y->service);
                assert_int_equal(x->n_ports, y->n_ports);
                assert_memory_equal(x->ports, y->ports, x->n_ports * sizeof(*x->ports));
                assert_int_equal(x->ticket_id, y->ticket_id);
                assert_string_equal(x->by, y->by);
                assert_string_equal(x->reason, y->reason);
                assert_int_equal(x->created, y->created);
                assert_int_equal(x->until, y->until);
        }
        assert_int_equal(a->exempt_mask, b->exempt_mask);
        assert_int_equal(a->n_filters, b->n_filters);
        for (size_t i = 0; i < a->n_filters; i++)
                same_filter(&a->filters[i], &b->filters[i]);
        assert_int_equal(a->suspended, b->suspended);
        if (a->suspended) {
                assert_int_equal(a->suspension.id, b->suspension.id);
                assert_int_equal(a->suspension.incident_id, b->suspension.incident_id);
                assert_string_equal(a->suspension.by, b->suspension.by);
                assert_string_equal(a->suspension.reason, b->suspension.reason);
                assert_int_equal(a->suspension.created, b->suspension.created);
                assert_int_equal(a->suspension.terminated, b->suspension.terminated);
        }
}

static void test_round_trip(void **state)
{
        struct pc_model *m = sample(), *back = NULL;
        struct pc_snapshot_head h;
        struct pc_snapshot_stats st;
        char err[256];
        size_t len;
        char *text = written(m, &len);

        assert_int_equal(parsed(text, len, NOW, &back, &h, &st, err, sizeof(err)), 0);
        assert_int_equal(h.version, PC_SNAPSHOT_VERSION);
        assert_string_equal(h.host, "hv1");
        assert_int_equal(h.written, NOW);
        assert_int_equal(h.loaded, NOW - 60);
        assert_true(h.fingerprint == 0x0123456789abcdefULL);
        assert_int_equal(st.vpses, 3);
        assert_int_equal(st.loaded, 3);
        assert_int_equal(st.ended + st.no_site + st.unresolved, 0);
        assert_int_equal(pc_model_count(back), 3);
        for (size_t i = 0; i < pc_model_count(m); i++) {
                const struct pc_vps *v = pc_model_at(m, i);

                same_vps(v, pc_model_find(back, v->id));
        }
        /* the port-subset exception's kept-closed filters are derived again */
        assert_true(pc_model_find(back, "vps-101")->n_filters > 3);
        assert_non_null(pc_model_find_iface(back, "vnet102"));
        /* written again, the same bytes */
        {
                size_t len2;
                char *again = written(back, &len2);

                assert_int_equal(len, len2);
                assert_memory_equal(text, again, len);
                free(again);
        }
        pc_model_free(back);
        pc_model_free(m);
        free(text);
}

static void test_empty_model(void **state)
{
        struct pc_model *m, *back = NULL;
        struct pc_snapshot_head h;
        char err[256];
        size_t len;
        char *text;

        assert_int_equal(pc_model_new(cfg, &m), 0);
        text = written(m, &len);
        assert_int_equal(parsed(text, len, NOW, &back, &h, NULL, err, sizeof(err)), 0);
        assert_int_equal(pc_model_count(back), 0);
        pc_model_free(back);
        pc_model_free(m);
        free(text);
}

/* Every cut of the file short of its end is refused, and leaves the model
 * empty. */
static void test_torn(void **state)
{
        struct pc_model *m = sample();
        size_t len;
        char *text = written(m, &len);

        for (size_t cut = 0; cut < len; cut++) {
                struct pc_model *back = NULL;
                struct pc_snapshot_head h;
                char err[256];
                int r = parsed(text, cut, NOW, &back, &h, NULL, err, sizeof(err));

                assert_int_not_equal(r, 0);
                assert_int_equal(pc_model_count(back), 0);
                assert_true(err[0] != '\0');
                pc_model_free(back);
        }
        {
                struct pc_model *back = NULL;
                struct pc_snapshot_head h;
                char err[256];

                assert_int_equal(parsed(text, len - 1, NOW, &back, &h, NULL, err, sizeof(err)), -EINVAL);
                assert_non_null(strstr(err, "torn"));
                pc_model_free(back);
        }
        pc_model_free(m);
        free(text);
}

static void test_checksum_mismatch(void **state)
{
        struct pc_model *m = sample(), *back = NULL;
        struct pc_snapshot_head h;
        char err[256];
        size_t len;
        char *text = written(m, &len);
        char *p = strstr(text, "tcp/8080");

        assert_non_null(p);
        p[4] = '9'; /* tcp/9080: still a well-formed line */
        assert_int_equal(parsed(text, len, NOW, &back, &h, NULL, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "checksum mismatch"));
        assert_int_equal(pc_model_count(back), 0);
        pc_model_free(back);
        pc_model_free(m);
        free(text);
}

static void test_wrong_version(void **state)
{
        struct pc_model *m = sample(), *back = NULL;
        struct pc_snapshot_head h;
        char err[256];
        size_t len;
        char *text = written(m, &len);

        text[strlen(PC_SNAPSHOT_MAGIC) + 1] = '2';
        assert_int_equal(parsed(text, len, NOW, &back, &h, NULL, err, sizeof(err)), -EPROTONOSUPPORT);
        assert_non_null(strstr(err, "version 2"));
        pc_model_free(back);
        assert_int_equal(parsed("hello\n", 6, NOW, &back, &h, NULL, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "not a Portcullis snapshot"));
        pc_model_free(back);
        pc_model_free(m);
        free(text);
}

/* What ended by the time it is read is not applied; a suspension stays. */
static void test_expired(void **state)
{
        struct pc_model *m = sample(), *back = NULL;
        struct pc_snapshot_head h;
        struct pc_snapshot_stats st;
        char err[256];
        size_t len;
        char *text = written(m, &len);
        const struct pc_vps *v;

        /* an hour later: the irc filter (10 min), the journal's (1 min)
         * and the vpn exception (1 h) are over */
        assert_int_equal(parsed(text, len, NOW + 3600, &back, &h, &st, err, sizeof(err)), 0);
        assert_int_equal(st.ended, 3);
        v = pc_model_find(back, "vps-101");
        assert_non_null(v);
        assert_null(pc_vps_exception_for(v, "vpn"));
        assert_non_null(pc_vps_exception_for(v, "smtp"));
        for (size_t i = 0; i < v->n_filters; i++)
                assert_true(v->filters[i].id == 11 || v->filters[i].exception_id != 0);
        assert_true(pc_model_find(back, "vps-102")->suspended);
        pc_model_free(back);
        pc_model_free(m);
        free(text);
}

/* Sealed (a valid checksum) yet wrong: each refused with its line. */
static void test_malformed(void **state)
{
        static const char *const bodies[] = {
                "vps vps-1 milano - - - en 0 0 0 - - -\n",                  /* 13 fields: the one good line */
                "vps vps-1 milano - - - en 0 0 0 - -\n",                    /* 12 fields */
                "vps vps-1 milano - - - en 0 2 0 - - -\n",                  /* stopped 2 */
                "vps vps/1 milano - - - en 0 0 0 - - -\n",                  /* bad id */
                "vps vps-1 milano - zz - en 0 0 0 - - -\n",                 /* bad MAC */
                "vps vps-1 milano - - - en 0x1 0 0 - - -\n",                /* bad number */
                "vps vps-1 milano - - - en 99999999999999999999 0 0 - - -\n", /* overflow */
                "vps vps-1 milano - - - en 9223372036854775808 0 0 - - -\n", /* INT64_MAX + 1 */
                "vps vps-1 milano - - - en -9223372036854775809 0 0 - - -\n", /* INT64_MIN - 1 */
                "vps vps-1 milano - - - en +1 0 0 - - -\n",                /* a sign put_int never writes */
                "vps vps-1 milano - - - en --1 0 0 - - -\n",
                "vps vps-1 milano - - - en 1- 0 0 - - -\n",
                "vps vps-1 milano - - - en 0 0 %2D - - -\n",               /* a lone "-" as a number */
                "vps vps-1 milano %4 - - en 0 0 0 - - -\n",                 /* bad escape */
                "vps vps-1 milano %00 - - en 0 0 0 - - -\n",                /* NUL */
                "vps vps-1 milano 0123456789abcdef - - en 0 0 0 - - -\n",   /* interface too long */
                "vps vps-1 milano - - - en 0 0 0 - - -\naddr 300.1.1.1\n",  /* bad address */
                "vps vps-1 milano - - - en 0 0 0 - - -\nfilter 1 up all 0 0 0 - -\n",
                "vps vps-1 milano - - - en 0 0 0 - - -\nfilter 1 egress tcp/70000 0 0 0 - -\n",
                "vps vps-1 milano - - - en 0 0 0 - - -\nexception 1 smtp tcp/x 0 0 0 - -\n",
                "vps vps-1 milano - - - en 0 0 0 - - -\nexception 1 smtp - 0 0 0 - -\nexception 2 smtp - 0 0 0 - -\n",
                "vps vps-1 milano - - - en 0 0 0 - - -\nsuspension 1 0 0 0 - -\nsuspension 2 0 0 0 - -\n",
                "vps vps-1 milano - - - en 0 0 0 - - -\nvps vps-1 milano - - - en 0 0 0 - - -\n",
                "vps vps-1 milano - - - en 0 0 0 - - -\nwhatever\n",
                "vps vps-1 milano - - - en 0 0 0 - - -\n\n",                /* empty line */
                "vps vps-1 milano - - - en 0 0 0 - - - \n",                 /* trailing space */
                "addr 192.0.2.1\n",                                         /* before any vps */
        };

        for (size_t i = 0; i < PC_ARRAY_SIZE(bodies); i++) {
                struct strbuf b = { 0 };
                struct pc_model *back = NULL;
                struct pc_snapshot_head h;
                char err[256];
                int r;

                strbuf_printf(&b, PC_SNAPSHOT_MAGIC " 1\nhost -\nwritten %d\nloaded 0\nfingerprint 0000000000000000\n%s", NOW,
                              bodies[i]);
                pc_snapshot_seal(&b, 1 + (strstr(bodies[i], "\nvps ") != NULL));
                r = parsed(b.s, b.len, NOW, &back, &h, NULL, err, sizeof(err));
                if (i == 0) {
                        assert_int_equal(r, 0);
                        assert_string_equal(h.host, "");
                } else {
                        if (r == 0)
                                fail_msg("body %zu was accepted", i);
                        assert_int_equal(pc_model_count(back), 0);
                        assert_non_null(strstr(err, "line "));
                }
                pc_model_free(back);
                strbuf_free(&b);
        }
}

/* Numbers at the ends of int64_t read back as written. */
static void test_int_bounds(void **state)
{
        struct strbuf b = { 0 };
        struct pc_model *back = NULL;
        struct pc_snapshot_head h;
        char err[256];

        (void)state;
        strbuf_printf(&b, PC_SNAPSHOT_MAGIC " 1\nhost -\nwritten %d\nloaded -1\nfingerprint 0000000000000000\n"
                      "vps vps-1 milano - - - en -9223372036854775808 0 9223372036854775807 - - -\n", NOW);
        pc_snapshot_seal(&b, 1);
        assert_int_equal(parsed(b.s, b.len, NOW, &back, &h, NULL, err, sizeof(err)), 0);
        assert_int_equal(h.loaded, -1);
        assert_true(pc_model_find(back, "vps-1")->created == INT64_MIN);
        assert_true(pc_model_find(back, "vps-1")->run_since == INT64_MAX);
        pc_model_free(back);
        strbuf_free(&b);
}

/* A VPS of a site, or a filter of a service, the configuration no longer
 * has is left out and counted; the rest is enforced. */
static void test_unknown_names(void **state)
{
        struct strbuf b = { 0 };
        struct pc_model *back = NULL;
        struct pc_snapshot_head h;
        struct pc_snapshot_stats st;
        char err[256];

        strbuf_printf(&b, PC_SNAPSHOT_MAGIC " 1\nhost hv1\nwritten 1\nloaded 1\nfingerprint 0000000000000000\n"
                          "vps vps-1 gone - - - en 0 0 0 hv1 - -\naddr 192.0.2.1\nfilter 1 egress all 0 0 0 - -\n"
                          "vps vps-2 milano v2 - - en 0 0 0 hv1 - -\nfilter 2 egress service:gopher 0 0 0 - -\n"
                          "filter 3 egress tcp/25 0 0 0 - -\n");
        pc_snapshot_seal(&b, 2);
        assert_int_equal(parsed(b.s, b.len, NOW, &back, &h, &st, err, sizeof(err)), 0);
        assert_int_equal(st.vpses, 2);
        assert_int_equal(st.loaded, 1);
        assert_int_equal(st.no_site, 1);
        assert_int_equal(st.unresolved, 1);
        assert_non_null(strstr(st.example, "vps-1"));
        assert_null(pc_model_find(back, "vps-1"));
        assert_int_equal(pc_model_find(back, "vps-2")->n_filters, 1);
        pc_model_free(back);
        strbuf_free(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),      cmocka_unit_test(test_empty_model),
                cmocka_unit_test(test_torn),            cmocka_unit_test(test_checksum_mismatch),
                cmocka_unit_test(test_wrong_version),   cmocka_unit_test(test_expired),
                cmocka_unit_test(test_malformed),       cmocka_unit_test(test_int_bounds),
                cmocka_unit_test(test_unknown_names),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
