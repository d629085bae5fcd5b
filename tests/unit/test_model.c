/* The model: the VPS index under insertions and removals. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "policy/model.h"

#include "fixture.h"

static struct pc_vps *vps_named(const char *fmt, int i)
{
        struct pc_vps *v;

        assert_int_equal(pc_vps_new(&v), 0);
        snprintf(v->id, sizeof(v->id), fmt, i);
        v->site = pc_config_site(cfg, "milano");
        return v;
}

static void test_add_find_remove(void **state)
{
        struct pc_model *m;
        const int n = 20000;

        assert_int_equal(pc_model_new(cfg, &m), 0);
        for (int i = 0; i < n; i++)
                assert_int_equal(pc_model_add(m, vps_named("vps-%d", i)), 0);
        assert_int_equal(pc_model_count(m), n);
        {
                struct pc_vps *dup = vps_named("vps-%d", 42);

                assert_int_equal(pc_model_add(m, dup), -EEXIST);
                pc_vps_free(dup);
        }
        /* Remove every third, then every id must be found iff kept. */
        for (int i = 0; i < n; i += 3) {
                char id[32];

                snprintf(id, sizeof(id), "vps-%d", i);
                assert_int_equal(pc_model_remove(m, id), 0);
                assert_int_equal(pc_model_remove(m, id), -ENOENT);
        }
        for (int i = 0; i < n; i++) {
                char id[32];
                struct pc_vps *v;

                snprintf(id, sizeof(id), "vps-%d", i);
                v = pc_model_find(m, id);
                if (i % 3 == 0)
                        assert_null(v);
                else {
                        assert_non_null(v);
                        assert_string_equal(v->id, id);
                        assert_ptr_equal(pc_model_at(m, v->model_slot), v);
                }
        }
        assert_int_equal(pc_model_count(m), n - (n + 2) / 3);
        assert_null(pc_model_find(m, "nope"));
        pc_model_free(m);
}

static void test_invalid_vps_refused(void **state)
{
        struct pc_model *m;
        struct pc_vps *v = vps_named("Bad Id %d", 1);

        assert_int_equal(pc_model_new(cfg, &m), 0);
        assert_int_equal(pc_model_add(m, v), -EINVAL);
        v->site = NULL;
        snprintf(v->id, sizeof(v->id), "ok");
        assert_int_equal(pc_model_add(m, v), -EINVAL);
        pc_vps_free(v);
        pc_model_free(m);
}

static void test_exceptions_index(void **state)
{
        struct pc_vps *v = vps_named("vps-%d", 1);
        struct pc_exception e = { .id = 1 };
        const struct pc_rule *smtp = pc_policy_rule_for(v->site->policy, "smtp");

        assert_non_null(smtp);
        pc_vps_reindex(v);
        assert_int_equal(v->exempt_mask, 0);
        snprintf(e.service, sizeof(e.service), "smtp");
        assert_int_equal(pc_vps_add_exception(v, &e), 0);
        assert_int_equal(v->exempt_mask, UINT64_C(1) << smtp->index);
        assert_int_equal(pc_vps_add_exception(v, &e), -EEXIST);
        assert_non_null(pc_vps_exception_for(v, "smtp"));
        assert_null(pc_vps_exception_for(v, "vpn"));
        /* An exception for a service the site does not restrict sets no bit. */
        snprintf(e.service, sizeof(e.service), "irc");
        assert_int_equal(pc_vps_add_exception(v, &e), 0);
        assert_int_equal(v->exempt_mask, UINT64_C(1) << smtp->index);
        pc_vps_free(v);
}

static void test_limits(void **state)
{
        struct pc_vps *v = vps_named("vps-%d", 1);
        struct pc_prefix p = { 0 };

        for (int i = 0; i < PC_VPS_ADDRS_MAX; i++)
                assert_int_equal(pc_vps_add_addr(v, &p), 0);
        assert_int_equal(pc_vps_add_addr(v, &p), -ENOSPC);
        pc_vps_free(v);
        assert_null(pc_vps_free(NULL));
        assert_null(pc_model_free(NULL));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_add_find_remove),
                cmocka_unit_test(test_invalid_vps_refused),
                cmocka_unit_test(test_exceptions_index),
                cmocka_unit_test(test_limits),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
