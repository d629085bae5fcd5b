/* The model: the VPS index under insertions and removals. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
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

/* A VPS with interface <iface> named "<fmt>" % <i>. */
static struct pc_vps *vps_on(const char *fmt, int i, const char *iface)
{
        struct pc_vps *v = vps_named(fmt, i);

        snprintf(v->iface, sizeof(v->iface), "%s", iface);
        return v;
}

/* Room made before and between adds changes nothing that can be found. */
static void test_reserve(void **state)
{
        struct pc_model *m;
        const int n = 5000;

        assert_int_equal(pc_model_new(cfg, &m), 0);
        assert_int_equal(pc_model_reserve(m, n), 0);
        for (int i = 0; i < n; i++) {
                char ifname[16];

                if (i == n / 2) { /* smaller: nothing; larger, with VPSes in it: rehashed */
                        assert_int_equal(pc_model_reserve(m, 10), 0);
                        assert_int_equal(pc_model_reserve(m, 4 * n), 0);
                }
                snprintf(ifname, sizeof(ifname), "tap%d", i);
                assert_int_equal(pc_model_add(m, vps_on("vps-%d", i, ifname)), 0);
        }
        assert_int_equal(pc_model_count(m), n);
        for (int i = 0; i < n; i++) {
                char id[32], ifname[16];

                snprintf(id, sizeof(id), "vps-%d", i);
                snprintf(ifname, sizeof(ifname), "tap%d", i);
                assert_non_null(pc_model_find(m, id));
                assert_ptr_equal(pc_model_find_iface(m, ifname), pc_model_find(m, id));
        }
        assert_int_equal(pc_model_reserve(m, SIZE_MAX), -ENOMEM);
        assert_non_null(pc_model_find(m, "vps-1"));
        pc_model_free(m);
}

static void test_find_iface(void **state)
{
        struct pc_model *m;
        struct pc_vps *a, *b, *c;

        assert_int_equal(pc_model_new(cfg, &m), 0);
        assert_null(pc_model_find_iface(m, "tap1"));
        a = vps_on("vps-%d", 1, "tap1");
        b = vps_on("vps-%d", 2, "tap2");
        c = vps_on("vps-%d", 3, ""); /* no interface */
        assert_int_equal(pc_model_add(m, a), 0);
        assert_ptr_equal(pc_model_find_iface(m, "tap1"), a);
        assert_null(pc_model_find_iface(m, "tap2"));
        assert_int_equal(pc_model_add(m, b), 0);
        assert_int_equal(pc_model_add(m, c), 0);
        assert_ptr_equal(pc_model_find_iface(m, "tap1"), a);
        assert_ptr_equal(pc_model_find_iface(m, "tap2"), b);
        assert_null(pc_model_find_iface(m, ""));
        assert_null(pc_model_find_iface(m, "tap"));
        assert_null(pc_model_find_iface(m, "tap10"));

        /* Removal: gone by interface too, the other one kept. */
        assert_int_equal(pc_model_remove(m, "vps-1"), 0);
        assert_null(pc_model_find_iface(m, "tap1"));
        assert_ptr_equal(pc_model_find_iface(m, "tap2"), b);

        /* Replacement, as the agent's sync does: take, add the fresh copy. */
        {
                struct pc_vps *old, *fresh = vps_on("vps-%d", 2, "tap2");

                assert_int_equal(pc_model_take(m, "vps-2", &old), 0);
                assert_ptr_equal(old, b);
                assert_null(pc_model_find_iface(m, "tap2"));
                pc_vps_free(old);
                assert_int_equal(pc_model_add(m, fresh), 0);
                assert_ptr_equal(pc_model_find_iface(m, "tap2"), fresh);
                b = fresh;
        }

        /* A VPS whose interface changes, and one that gets its first. */
        assert_int_equal(pc_model_set_iface(m, b, "tap7"), 0);
        assert_null(pc_model_find_iface(m, "tap2"));
        assert_ptr_equal(pc_model_find_iface(m, "tap7"), b);
        assert_string_equal(b->iface, "tap7");
        assert_int_equal(pc_model_set_iface(m, c, "tap3"), 0);
        assert_ptr_equal(pc_model_find_iface(m, "tap3"), c);
        assert_int_equal(pc_model_set_iface(m, c, ""), 0);
        assert_null(pc_model_find_iface(m, "tap3"));
        assert_int_equal(pc_model_set_iface(m, c, "an-interface-name-too-long"), -EINVAL);
        {
                struct pc_vps *stranger = vps_on("vps-%d", 9, "tap9");

                assert_int_equal(pc_model_set_iface(m, stranger, "tap8"), -ENOENT);
                assert_null(pc_model_find_iface(m, "tap8"));
                pc_vps_free(stranger);
        }
        pc_model_free(m);
}

/* Many VPSes through growth and removals: every interface found iff its
 * VPS is kept, and two VPSes sharing one (the store forbids it) are each
 * taken out by pointer, not by name. */
static void test_find_iface_many(void **state)
{
        struct pc_model *m;
        const int n = 20000;
        char ifname[16];

        assert_int_equal(pc_model_new(cfg, &m), 0);
        for (int i = 0; i < n; i++) {
                snprintf(ifname, sizeof(ifname), "tap%d", i);
                assert_int_equal(pc_model_add(m, vps_on("vps-%d", i, i % 5 == 4 ? "" : ifname)), 0);
        }
        for (int i = 0; i < n; i += 3) {
                char id[32];

                snprintf(id, sizeof(id), "vps-%d", i);
                assert_int_equal(pc_model_remove(m, id), 0);
        }
        for (int i = 0; i < n; i++) {
                struct pc_vps *v;

                snprintf(ifname, sizeof(ifname), "tap%d", i);
                v = pc_model_find_iface(m, ifname);
                if (i % 3 == 0 || i % 5 == 4)
                        assert_null(v);
                else {
                        char id[32];

                        snprintf(id, sizeof(id), "vps-%d", i);
                        assert_non_null(v);
                        assert_string_equal(v->id, id);
                }
        }
        {
                struct pc_vps *twin = vps_on("twin-%d", 1, "tap1");

                assert_int_equal(pc_model_add(m, twin), 0);
                assert_int_equal(pc_model_remove(m, "vps-1"), 0);
                assert_ptr_equal(pc_model_find_iface(m, "tap1"), twin);
                assert_int_equal(pc_model_remove(m, "twin-1"), 0);
                assert_null(pc_model_find_iface(m, "tap1"));
        }
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

/* pc_vps_equal: a clone is equal; a change to any field the kernel's
 * elements come from (or any other) makes it differ. */
static void test_vps_equal(void **state)
{
        struct pc_vps *v = vps_named("vps-%d", 1), *c;
        struct pc_prefix p;
        struct pc_exception e = { .id = 1, .until = 2000 };
        struct pc_filter f = { .id = 7, .direction = PC_DIR_EGRESS, .scope = PC_SCOPE_ALL, .until = 3000 };

        (void)state;
        assert_int_equal(pc_parse_prefix("192.0.2.7/32", false, &p), 0);
        assert_int_equal(pc_vps_add_addr(v, &p), 0);
        snprintf(e.service, sizeof(e.service), "smtp");
        assert_int_equal(pc_vps_add_exception(v, &e), 0);
        assert_int_equal(pc_vps_add_filter(v, &f), 0);
        snprintf(v->iface, sizeof(v->iface), "tap1");
        assert_int_equal(pc_vps_clone(v, &c), 0);
        assert_true(pc_vps_equal(v, c));
        /* each of these alone makes them differ */
        c->addrs[0].bytes[3] ^= 1;
        assert_false(pc_vps_equal(v, c));
        c->addrs[0].bytes[3] ^= 1;
        c->exceptions[0].until++;
        assert_false(pc_vps_equal(v, c));
        c->exceptions[0].until--;
        c->filters[0].direction = PC_DIR_INGRESS;
        assert_false(pc_vps_equal(v, c));
        c->filters[0].direction = PC_DIR_EGRESS;
        c->suspended = true;
        assert_false(pc_vps_equal(v, c));
        c->suspended = false;
        c->mac[5] = 1;
        assert_false(pc_vps_equal(v, c));
        c->mac[5] = 0;
        c->site = pc_config_site(cfg, "lenoir");
        assert_false(pc_vps_equal(v, c));
        c->site = v->site;
        snprintf(c->iface, sizeof(c->iface), "tap2");
        assert_false(pc_vps_equal(v, c));
        snprintf(c->iface, sizeof(c->iface), "tap1");
        assert_true(pc_vps_equal(v, c));
        assert_int_equal(pc_parse_prefix("2001:db8::/64", false, &p), 0);
        assert_int_equal(pc_vps_add_addr(c, &p), 0);
        assert_false(pc_vps_equal(v, c));
        pc_vps_free(c);
        pc_vps_free(v);
}

/* Whose scans the kernel contains: VPSes of a policy that filters
 * scanners, routed or bridged, unless an exception for scanning is in
 * force. */
static void test_scans_contained(void **state)
{
        struct pc_vps *v = vps_named("vps-%d", 1);
        struct pc_exception e = { .id = 1, .until = 2000 };
        const struct pc_site *lenoir = pc_config_site(cfg, "lenoir");

        (void)state;
        assert_non_null(lenoir);
        /* milano (provider B) only records scans: nothing held back */
        assert_false(pc_vps_scans_contained(cfg, v, 1000));
        v->site = lenoir;
        assert_true(pc_vps_scans_contained(cfg, v, 1000));
        /* the same policy at a bridged site: the bridge table holds it back */
        {
                struct pc_site bridged = *lenoir;

                bridged.topology = PC_TOPOLOGY_BRIDGED;
                v->site = &bridged;
                assert_true(pc_vps_scans_contained(cfg, v, 1000));
                v->site = lenoir;
        }
        assert_false(pc_vps_may_scan(v, 1000));
        snprintf(e.service, sizeof(e.service), PC_EXCEPTION_SCANNING);
        assert_int_equal(pc_vps_add_exception(v, &e), 0);
        assert_true(pc_vps_may_scan(v, 1999));
        assert_false(pc_vps_scans_contained(cfg, v, 1999));
        /* ended: contained again */
        assert_false(pc_vps_may_scan(v, 2000));
        assert_true(pc_vps_scans_contained(cfg, v, 2000));
        pc_vps_free(v);
}

/* Which changes end connections: only those that take something away.  A
 * port-subset exception adds filters of its own (the rest of the service,
 * kept closed), which close nothing that was open. */
static void test_change_tightens(void **state)
{
        struct pc_vps *old = vps_named("vps-%d", 1), *fresh = vps_named("vps-%d", 1);
        struct pc_exception e = { .id = 7, .n_ports = 1, .until = 5000 };
        struct pc_filter f = { .id = 3, .direction = PC_DIR_EGRESS, .scope = PC_SCOPE_ALL };

        (void)state;
        snprintf(e.service, sizeof(e.service), "smtp");
        e.ports[0] = (struct pc_port_range){ .proto = IPPROTO_TCP, .lo = 587, .hi = 587 };
        assert_false(pc_vps_change_tightens(old, fresh, 1000));
        /* granting 587 alone: its kept-closed filters are no new filter */
        assert_int_equal(pc_vps_add_exception(fresh, &e), 0);
        assert_true(fresh->n_filters > 0);
        assert_false(pc_vps_change_tightens(old, fresh, 1000));
        /* revoking it takes 587 away */
        assert_true(pc_vps_change_tightens(fresh, old, 1000));
        /* shortening it too; extending it does not */
        e.until = 4000;
        assert_int_equal(pc_vps_add_exception(old, &e), 0);
        assert_false(pc_vps_change_tightens(old, fresh, 1000));
        assert_true(pc_vps_change_tightens(fresh, old, 1000));
        /* a filter of support's, or a suspension, does */
        assert_int_equal(pc_vps_add_filter(fresh, &f), 0);
        assert_true(pc_vps_change_tightens(old, fresh, 1000));
        fresh->n_filters--;
        fresh->suspended = true;
        assert_true(pc_vps_change_tightens(old, fresh, 1000));
        pc_vps_free(old);
        pc_vps_free(fresh);
}

/* What a VPS leaving this host may not be given on its way out (the host
 * it goes to may have given it): anything that lets its VM do more. */
static void test_change_loosens(void **state)
{
        struct pc_vps *old = vps_named("vps-%d", 1), *fresh = vps_named("vps-%d", 1);
        struct pc_exception e = { .id = 7, .until = 5000 };
        struct pc_filter f = { .id = 3, .direction = PC_DIR_EGRESS, .scope = PC_SCOPE_ALL, .until = 4000 };
        struct pc_prefix a, b;

        (void)state;
        snprintf(e.service, sizeof(e.service), "smtp");
        assert_int_equal(pc_parse_prefix("198.51.100.1", false, &a), 0);
        assert_int_equal(pc_parse_prefix("198.51.100.2", false, &b), 0);
        assert_int_equal(pc_vps_add_addr(old, &a), 0);
        assert_int_equal(pc_vps_add_addr(fresh, &a), 0);
        assert_false(pc_vps_change_loosens(old, fresh, 1000));
        assert_true(pc_vps_change_loosens(old, NULL, 1000)); /* removed: nothing enforced */
        /* a source more: it may send from it */
        assert_int_equal(pc_vps_add_addr(fresh, &b), 0);
        assert_true(pc_vps_change_loosens(old, fresh, 1000));
        assert_false(pc_vps_change_loosens(fresh, old, 1000)); /* one less */
        fresh->n_addrs--;
        /* an exception granted, or extended */
        assert_int_equal(pc_vps_add_exception(fresh, &e), 0);
        assert_true(pc_vps_change_loosens(old, fresh, 1000));
        assert_false(pc_vps_change_loosens(fresh, old, 1000));
        assert_int_equal(pc_vps_add_exception(old, &e), 0);
        assert_false(pc_vps_change_loosens(old, fresh, 1000));
        fresh->exceptions[0].until = 6000;
        assert_true(pc_vps_change_loosens(old, fresh, 1000));
        fresh->exceptions[0].until = 5000;
        /* a filter lifted or shortened (an ended one is no loss) */
        assert_int_equal(pc_vps_add_filter(old, &f), 0);
        assert_true(pc_vps_change_loosens(old, fresh, 1000));
        assert_false(pc_vps_change_loosens(old, fresh, 4000));
        f.until = 3000;
        assert_int_equal(pc_vps_add_filter(fresh, &f), 0);
        assert_true(pc_vps_change_loosens(old, fresh, 1000));
        fresh->filters[fresh->n_filters - 1].until = 0;
        assert_false(pc_vps_change_loosens(old, fresh, 1000));
        /* unsuspended; another MAC */
        old->suspended = true;
        assert_true(pc_vps_change_loosens(old, fresh, 1000));
        fresh->suspended = true;
        assert_false(pc_vps_change_loosens(old, fresh, 1000));
        fresh->has_mac = true;
        assert_true(pc_vps_change_loosens(old, fresh, 1000));
        pc_vps_free(old);
        pc_vps_free(fresh);
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
                cmocka_unit_test(test_find_iface),
                cmocka_unit_test(test_find_iface_many),
                cmocka_unit_test(test_reserve),
                cmocka_unit_test(test_invalid_vps_refused),
                cmocka_unit_test(test_exceptions_index),
                cmocka_unit_test(test_vps_equal),
                cmocka_unit_test(test_scans_contained),
                cmocka_unit_test(test_change_loosens),
                cmocka_unit_test(test_change_tightens),
                cmocka_unit_test(test_limits),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
