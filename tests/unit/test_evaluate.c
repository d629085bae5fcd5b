/* Evaluation: the exhaustive sweep of every port x tcp/udp x direction for
 * both shipped profiles, with and without exceptions, filters, suspension.
 * The expected verdicts come from the providers' published lists written
 * out here, independently of the config files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <errno.h>
#include <string.h>

#include "policy/evaluate.h"
#include "policy/explain.h"

#define NOW 1795000000 /* 2026-11-18 */

#include "fixture.h"

static struct pc_vps *make_vps(const char *site)
{
        struct pc_vps *v;
        struct pc_prefix p;

        assert_int_equal(pc_vps_new(&v), 0);
        snprintf(v->id, sizeof(v->id), "vps-%s", site);
        v->site = pc_config_site(cfg, site);
        assert_non_null(v->site);
        assert_int_equal(pc_parse_prefix("203.0.113.10", false, &p), 0);
        assert_int_equal(pc_vps_add_addr(v, &p), 0);
        pc_vps_reindex(v);
        return v;
}

static void add_exception(struct pc_vps *v, const char *service, int64_t until)
{
        struct pc_exception e = { .id = 7, .ticket_id = 12, .created = NOW - 60, .until = until };

        snprintf(e.service, sizeof(e.service), "%s", service);
        snprintf(e.by, sizeof(e.by), "alice");
        snprintf(e.reason, sizeof(e.reason), "reviewed");
        assert_int_equal(pc_vps_add_exception(v, &e), 0);
}

/* Provider B as published (plus 1723/tcp, PPTP's real port). */
static bool b_smtp(uint8_t proto, unsigned port)
{
        return proto == PC_PROTO_TCP &&
               (port == 25 || port == 26 || port == 465 || port == 587 || port == 2525);
}

static bool b_vpn(uint8_t proto, unsigned port)
{
        return (proto == PC_PROTO_TCP && (port == 1728 || port == 1723)) ||
               (proto == PC_PROTO_UDP && (port == 1701 || port == 500 || port == 4500));
}

static bool b_bittorrent(uint8_t proto, unsigned port)
{
        return (port >= 6881 && port <= 6889) || port == 6969 || (port >= 6660 && port <= 6669);
}

struct expect {
        bool smtp_exempt, vpn_exempt;
};

static enum pc_verdict_kind expect_b(uint8_t proto, unsigned port, unsigned dir, const struct expect *x)
{
        bool blocked = (dir == PC_DIR_EGRESS && b_smtp(proto, port) && !x->smtp_exempt) ||
                       (b_vpn(proto, port) && !x->vpn_exempt) || b_bittorrent(proto, port);

        if (!blocked)
                return PC_VERDICT_ALLOW;
        return dir == PC_DIR_EGRESS ? PC_VERDICT_REJECT : PC_VERDICT_DROP;
}

static enum pc_verdict_kind expect_lenoir(uint8_t proto, unsigned port, unsigned dir)
{
        return proto == PC_PROTO_TCP && port == 25 && dir == PC_DIR_EGRESS ? PC_VERDICT_REDIRECT
                                                                             : PC_VERDICT_ALLOW;
}

static const uint8_t protos[] = { PC_PROTO_TCP, PC_PROTO_UDP };
static const unsigned dirs[] = { PC_DIR_EGRESS, PC_DIR_INGRESS };

/* Sweeps every flow; checks the verdict, that pc_evaluate_fast agrees, and
 * that exactly one reason is decisive and its kind fits the verdict. */
static void sweep(const struct pc_vps *v, enum pc_verdict_kind (*expect)(uint8_t, unsigned, unsigned, const void *),
                  const void *x)
{
        size_t counts[4] = { 0 };

        for (size_t pi = 0; pi < 2; pi++)
                for (size_t di = 0; di < 2; di++)
                        for (unsigned port = 0; port <= 65535; port++) {
                                struct pc_flow f = { protos[pi], (uint16_t)port, dirs[di] };
                                enum pc_verdict_kind want = expect(protos[pi], port, dirs[di], x);
                                struct pc_verdict got;
                                unsigned decisive = 0;

                                pc_evaluate(v, &f, NOW, &got);
                                if (got.verdict != want)
                                        fail_msg("%s %s/%u %s: got %s, want %s", v->id, pc_proto_name(f.proto),
                                                 port, pc_dir_name(f.dir), pc_verdict_name(got.verdict),
                                                 pc_verdict_name(want));
                                assert_int_equal(pc_evaluate_fast(v, &f, NOW), want);
                                assert_true(got.n_reasons >= 1 && got.n_reasons <= PC_REASONS_MAX);
                                for (unsigned i = 0; i < got.n_reasons; i++)
                                        decisive += got.reasons[i].decisive;
                                assert_int_equal(decisive, 1);
                                counts[want]++;
                        }
        /* The sweep really covered 2 x 2 x 65536 flows. */
        assert_int_equal(counts[0] + counts[1] + counts[2] + counts[3], 4 * 65536);
}

static enum pc_verdict_kind wrap_b(uint8_t p, unsigned port, unsigned d, const void *x)
{
        return expect_b(p, port, d, x);
}

static enum pc_verdict_kind wrap_lenoir(uint8_t p, unsigned port, unsigned d, const void *x)
{
        return expect_lenoir(p, port, d);
}

static void test_sweep_blocked_services(void **state)
{
        struct pc_vps *v = make_vps("milano");
        struct expect none = { 0 };

        sweep(v, wrap_b, &none);
        pc_vps_free(v);
}

static void test_sweep_blocked_services_with_exceptions(void **state)
{
        struct pc_vps *v = make_vps("milano");
        struct expect smtp = { .smtp_exempt = true }, both = { .smtp_exempt = true, .vpn_exempt = true };

        add_exception(v, "smtp", 0);
        sweep(v, wrap_b, &smtp);
        add_exception(v, "vpn", NOW + 3600);
        sweep(v, wrap_b, &both);
        pc_vps_free(v);
}

static void test_sweep_expired_exception_blocks_again(void **state)
{
        struct pc_vps *v = make_vps("milano");
        struct expect none = { 0 };
        struct pc_flow f = { PC_PROTO_TCP, 465, PC_DIR_EGRESS };
        struct pc_verdict got;

        add_exception(v, "smtp", NOW); /* ended exactly now */
        sweep(v, wrap_b, &none);
        pc_evaluate(v, &f, NOW, &got);
        assert_int_equal(got.n_reasons, 2);
        assert_int_equal(got.reasons[0].kind, PC_REASON_SITE_RULE);
        assert_true(got.reasons[0].decisive);
        assert_int_equal(got.reasons[1].kind, PC_REASON_EXCEPTION_EXPIRED);
        pc_evaluate(v, &f, NOW - 1, &got); /* a second earlier it still applied */
        assert_int_equal(got.verdict, PC_VERDICT_ALLOW);
        pc_vps_free(v);
}

static void test_sweep_lenoir(void **state)
{
        struct pc_vps *v = make_vps("lenoir");

        sweep(v, wrap_lenoir, NULL);
        pc_vps_free(v);
}

static void test_lenoir_proxy_not_exemptable(void **state)
{
        struct pc_vps *v = make_vps("lenoir");
        struct pc_flow f = { PC_PROTO_TCP, 25, PC_DIR_EGRESS };
        struct pc_verdict got;

        /* Even an exception in the store cannot lift the proxy redirect. */
        add_exception(v, "smtp", 0);
        sweep(v, wrap_lenoir, NULL);
        pc_evaluate(v, &f, NOW, &got);
        assert_int_equal(got.verdict, PC_VERDICT_REDIRECT);
        assert_int_equal(got.reasons[1].kind, PC_REASON_NOT_EXEMPTABLE);
        assert_false(got.reasons[1].decisive);
        pc_vps_free(v);
}

static enum pc_verdict_kind all_drop(uint8_t p, unsigned port, unsigned d, const void *x)
{
        return PC_VERDICT_DROP;
}

static void test_suspension_drops_everything(void **state)
{
        const char *sites[] = { "milano", "lenoir" };

        for (size_t i = 0; i < 2; i++) {
                struct pc_vps *v = make_vps(sites[i]);
                struct pc_flow f = { PC_PROTO_TCP, 465, PC_DIR_EGRESS };
                struct pc_verdict got;

                add_exception(v, "smtp", 0);
                v->suspended = true;
                v->suspension.id = 3;
                snprintf(v->suspension.reason, sizeof(v->suspension.reason), "spoofing");
                sweep(v, all_drop, NULL);
                pc_evaluate(v, &f, NOW, &got);
                assert_int_equal(got.reasons[0].kind, PC_REASON_SUSPENSION);
                assert_true(got.reasons[0].decisive);
                assert_ptr_equal(got.reasons[0].suspension, &v->suspension);
                pc_vps_free(v);
        }
}

struct filter_expect {
        const struct pc_filter *f;
};

static enum pc_verdict_kind expect_filtered_b(uint8_t p, unsigned port, unsigned d, const void *x)
{
        const struct pc_filter *f = ((const struct filter_expect *)x)->f;
        struct expect none = { 0 };
        bool covered = (f->direction & d) &&
                       (f->scope == PC_SCOPE_ALL ||
                        (f->scope == PC_SCOPE_PORTS && p == f->ports.proto && port >= f->ports.lo &&
                         port <= f->ports.hi) ||
                        (f->scope == PC_SCOPE_SERVICE && b_smtp(p, port)));

        return covered ? PC_VERDICT_DROP : expect_b(p, port, d, &none);
}

static void test_filters(void **state)
{
        struct pc_filter filters[] = {
                { .id = 1, .direction = PC_DIR_EGRESS, .scope = PC_SCOPE_ALL },
                { .id = 2, .direction = PC_DIR_INGRESS, .scope = PC_SCOPE_PORTS,
                  .ports = { PC_PROTO_TCP, 20, 23 } },
                { .id = 3, .direction = PC_DIR_BOTH, .scope = PC_SCOPE_SERVICE },
        };

        filters[2].service = pc_config_service(cfg, "smtp");
        for (size_t i = 0; i < PC_ARRAY_SIZE(filters); i++) {
                struct pc_vps *v = make_vps("milano");
                struct filter_expect x = { &filters[i] };

                filters[i].until = NOW + 60;
                assert_int_equal(pc_vps_add_filter(v, &filters[i]), 0);
                sweep(v, expect_filtered_b, &x);
                /* Expired: the site policy alone decides again. */
                v->filters[0].until = NOW;
                {
                        struct expect none = { 0 };

                        sweep(v, wrap_b, &none);
                }
                pc_vps_free(v);
        }
}

static void test_ip_protocols(void **state)
{
        struct pc_vps *v = make_vps("milano");
        struct pc_flow gre = { PC_PROTO_GRE, 0, PC_DIR_EGRESS }, esp = { PC_PROTO_ESP, 0, PC_DIR_INGRESS };

        /* Provider B's published list has no GRE or ESP. */
        assert_int_equal(pc_evaluate_fast(v, &gre, NOW), PC_VERDICT_ALLOW);
        assert_int_equal(pc_evaluate_fast(v, &esp, NOW), PC_VERDICT_ALLOW);
        pc_vps_free(v);
}

static void test_explain_text(void **state)
{
        struct pc_vps *v = make_vps("milano");
        struct pc_flow f = { PC_PROTO_TCP, 465, PC_DIR_EGRESS };
        struct pc_verdict got;
        char buf[1024];
        json_t *j;

        pc_evaluate(v, &f, NOW, &got);
        assert_int_equal(got.verdict, PC_VERDICT_REJECT);
        pc_explain_reason(&got.reasons[0], v, &f, buf, sizeof(buf));
        assert_non_null(strstr(buf, "service smtp blocked by site policy blocked-services, rule 1"));
        assert_non_null(strstr(buf, "exemptable by ticket"));
        j = pc_explain_json(&got, v, &f);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "verdict")), "reject");
        assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "reasons"), 0), "service")),
                            "smtp");
        json_decref(j);

        add_exception(v, "smtp", 0);
        pc_evaluate(v, &f, NOW, &got);
        assert_int_equal(got.verdict, PC_VERDICT_ALLOW);
        pc_explain_reason(&got.reasons[1], v, &f, buf, sizeof(buf));
        assert_non_null(strstr(buf, "exception #7 for smtp granted by alice"));
        assert_non_null(strstr(buf, "ticket #12"));
        pc_vps_free(v);
}

static void test_flow_parse(void **state)
{
        struct pc_flow f;

        assert_int_equal(pc_flow_parse("tcp/465", &f), 0);
        assert_int_equal(f.proto, PC_PROTO_TCP);
        assert_int_equal(f.port, 465);
        assert_int_equal(pc_flow_parse("udp/0", &f), 0);
        assert_int_equal(pc_flow_parse("udp/65535", &f), 0);
        assert_int_equal(f.port, 65535);
        assert_int_equal(pc_flow_parse("gre", &f), 0);
        assert_int_equal(f.proto, PC_PROTO_GRE);
        assert_int_equal(pc_flow_parse("udp/65536", &f), -EINVAL);
        assert_int_equal(pc_flow_parse("tcp", &f), -EINVAL);
        assert_int_equal(pc_flow_parse("tcp/", &f), -EINVAL);
        assert_int_equal(pc_flow_parse("tcp/-1", &f), -EINVAL);
        assert_int_equal(pc_flow_parse("tcp/25x", &f), -EINVAL);
        assert_int_equal(pc_flow_parse("sctp/25", &f), -EINVAL);
        assert_int_equal(pc_flow_parse("gre/1", &f), -EINVAL);
        assert_int_equal(pc_flow_parse("", &f), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sweep_blocked_services),
                cmocka_unit_test(test_sweep_blocked_services_with_exceptions),
                cmocka_unit_test(test_sweep_expired_exception_blocks_again),
                cmocka_unit_test(test_sweep_lenoir),
                cmocka_unit_test(test_lenoir_proxy_not_exemptable),
                cmocka_unit_test(test_suspension_drops_everything),
                cmocka_unit_test(test_filters),
                cmocka_unit_test(test_ip_protocols),
                cmocka_unit_test(test_explain_text),
                cmocka_unit_test(test_flow_parse),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
