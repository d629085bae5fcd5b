/* Per-VPS elements to nf_tables' bytes and back: every element that
 * nft_vps_elements() writes, for VPSes of every kind in both tables, comes
 * back as the same text; the bytes are those nft puts in the kernel. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dataplane/nft_codec.h"

#define NOW 1795000000

#include "fixture.h"

/* Encodes every element of <in> set by set, decodes each set's raw
 * elements (in reverse order, as a dump may give them) and checks that the
 * text comes back. */
static void round_trip(const struct nft_elems *in)
{
        struct nft_elems back = { 0 };

        for (size_t i = 0; i < in->n;) {
                const struct nft_elem *x = &in->v[i];
                struct nft_set_layout l;
                struct nft_raw_elem *raw = calloc(2 * in->n, sizeof(*raw));
                size_t n_raw = 0, j = i, bad = 99;

                assert_true(nft_set_layout(x->family, x->set, &l));
                for (; j < in->n && strcmp(in->v[j].set, x->set) == 0 && strcmp(in->v[j].family, x->family) == 0; j++) {
                        size_t n;

                        assert_int_equal(nft_raw_encode(&l, &in->v[j], NOW, &raw[n_raw], &n), 0);
                        for (size_t k = 0; k < n; k++)
                                raw[n_raw + k].expires_ms = raw[n_raw + k].timeout_ms;
                        n_raw += n;
                }
                for (size_t a = 0, b = n_raw - 1; a < b; a++, b--) {
                        struct nft_raw_elem t = raw[a];

                        raw[a] = raw[b];
                        raw[b] = t;
                }
                assert_int_equal(nft_raw_decode(x->family, x->set, &l, raw, n_raw, NOW, &back, &bad), 0);
                assert_int_equal(bad, 0);
                free(raw);
                i = j;
        }
        nft_elems_normalise(&back);
        assert_int_equal(back.n, in->n);
        for (size_t i = 0; i < in->n; i++) {
                assert_string_equal(back.v[i].family, in->v[i].family);
                assert_string_equal(back.v[i].set, in->v[i].set);
                assert_string_equal(back.v[i].key, in->v[i].key);
                assert_string_equal(back.v[i].value, in->v[i].value);
                assert_true(back.v[i].until == in->v[i].until);
        }
        nft_elems_free(&back);
}

/* A VPS of <site> with everything that makes elements: addresses and
 * prefixes of every kind, a MAC or not, exceptions (with lifetimes,
 * source prefixes), filters of every scope, a suspension. */
static struct pc_vps *full_vps(const struct pc_config *c, const char *site, const char *iface, int k, bool mac)
{
        static const char *const addrs[] = { "198.51.100.10", "198.51.100.64/29", "2001:db8:7::/64",
                                             "2001:db8:8::/56", "2001:db8:9::5", "2001:db8:a::/100" };
        static const char *const exceptions[] = { "smtp", "vpn", "bittorrent", "scanning",
                                                  "source-prefix:203.0.113.0/28", "source-prefix:2001:db8:ff::/64",
                                                  "source-prefix:2001:db8:fe::/48" };
        struct pc_filter fa = { .id = 1, .direction = PC_DIR_EGRESS, .scope = PC_SCOPE_ALL, .until = NOW + 3600 };
        struct pc_filter fp = { .id = 2, .direction = PC_DIR_EGRESS | PC_DIR_INGRESS, .scope = PC_SCOPE_PORTS,
                                .ports = { PC_PROTO_TCP, 6660, 6669 } };
        struct pc_filter fq = { .id = 3, .direction = PC_DIR_INGRESS, .scope = PC_SCOPE_PORTS,
                                .ports = { 47, 0, 65535 }, .until = NOW + 60 };
        struct pc_vps *v;

        assert_int_equal(pc_vps_new(&v), 0);
        snprintf(v->id, sizeof(v->id), "vps-%s", iface);
        snprintf(v->iface, sizeof(v->iface), "%s", iface);
        v->site = pc_config_site(c, site);
        assert_non_null(v->site);
        for (size_t i = 0; i < PC_ARRAY_SIZE(addrs); i++) {
                struct pc_prefix p;

                assert_int_equal(pc_parse_prefix(addrs[i], false, &p), 0);
                p.bytes[p.family == AF_INET ? 2 : 3] = (uint8_t)(p.bytes[p.family == AF_INET ? 2 : 3] + k);
                assert_int_equal(pc_vps_add_addr(v, &p), 0);
        }
        for (size_t i = 0; i < PC_ARRAY_SIZE(exceptions); i++) {
                struct pc_exception e = { .id = (int64_t)i + 1, .until = i % 2 ? NOW + 86400 : 0 };

                snprintf(e.service, sizeof(e.service), "%s", exceptions[i]);
                assert_int_equal(pc_vps_add_exception(v, &e), 0);
        }
        assert_int_equal(pc_vps_add_filter(v, &fa), 0);
        assert_int_equal(pc_vps_add_filter(v, &fp), 0);
        assert_int_equal(pc_vps_add_filter(v, &fq), 0);
        if (mac) {
                assert_int_equal(pc_parse_mac("52:54:00:ab:cd:ef", v->mac), 0);
                v->mac[5] = (uint8_t)k;
                v->has_mac = true;
        }
        v->suspended = k % 2 == 1;
        pc_vps_reindex(v);
        return v;
}

static void test_round_trip(void **state)
{
        struct pc_config *bc;
        char err[1024];
        struct nft_elems all = { 0 };

        assert_int_equal(pc_config_load(PC_SOURCE_ROOT "/tests/golden/ok/bridged.yaml", &bc, err, sizeof(err)), 0);
        for (int k = 0; k < 8; k++) {
                const struct pc_config *c = k < 4 ? cfg : bc;
                static const char *const sites[] = { "lenoir", "milano", "lenoir", "milano",
                                                     "lenoir-bridged", "milano-bridged", "lenoir", "milano-bridged" };
                char iface[16];
                struct pc_vps *v;
                struct nft_elems out = { 0 };

                snprintf(iface, sizeof(iface), k == 3 ? "tap-%d.0_x" : "tap%d", k);
                v = full_vps(c, sites[k], iface, k, k % 3 != 0);
                assert_int_equal(nft_vps_elements(c, v, NOW, &out), 0);
                for (size_t i = 0; i < out.n; i++)
                        assert_int_equal(nft_elems_push(&all, &out.v[i]), 0);
                nft_elems_free(&out);
                pc_vps_free(v);
        }
        nft_elems_normalise(&all);
        assert_true(all.n > 150);
        round_trip(&all);
        nft_elems_free(&all);
        pc_config_free(bc);
}

/* The bytes: what nft writes for the same elements (nft --debug=netlink). */
static void test_bytes(void **state)
{
        struct nft_set_layout l;
        struct nft_elem x = { .family = "inet", .set = "src6_64", .key = "\"v101\" . 2001:db8:101::" };
        struct nft_raw_elem raw[2];
        size_t n;
        static const uint8_t src6_64[32] = { 'v', '1', '0', '1', [16] = 0x20, 0x01, 0x0d, 0xb8, 0x01, 0x01 };
        static const uint8_t ports_lo[24] = { 'v', '2', '0', '1', [16] = 6, 0, 0, 0, 0, 20 };
        static const uint8_t ports_hi[24] = { 'v', '2', '0', '1', [16] = 6, 0, 0, 0, 0, 23 };

        assert_true(nft_set_layout("inet", "src6_64", &l));
        assert_int_equal(nft_layout_key_len(&l), 32);
        assert_int_equal(nft_raw_encode(&l, &x, NOW, raw, &n), 0);
        assert_int_equal(n, 1);
        assert_memory_equal(raw[0].key, src6_64, 32);
        assert_false(raw[0].has_end);

        assert_true(nft_set_layout("inet", "filter_ports_out", &l));
        snprintf(x.set, sizeof(x.set), "filter_ports_out");
        snprintf(x.key, sizeof(x.key), "\"v201\" . tcp . 20-23");
        x.until = NOW + 90;
        assert_int_equal(nft_raw_encode(&l, &x, NOW, raw, &n), 0);
        assert_int_equal(raw[0].len, 24);
        assert_memory_equal(raw[0].key, ports_lo, 24);
        assert_true(raw[0].has_end);
        assert_memory_equal(raw[0].key_end, ports_hi, 24);
        assert_int_equal(raw[0].timeout_ms, 90000);

        /* a range of one field: its start, and the key after it */
        assert_true(nft_set_layout("inet", "bridged4_net", &l));
        snprintf(x.set, sizeof(x.set), "bridged4_net");
        snprintf(x.key, sizeof(x.key), "198.51.100.64/29");
        x.until = 0;
        assert_int_equal(nft_raw_encode(&l, &x, NOW, raw, &n), 0);
        assert_int_equal(n, 2);
        assert_memory_equal(raw[0].key, ((uint8_t[]){ 198, 51, 100, 64 }), 4);
        assert_false(raw[0].interval_end);
        assert_memory_equal(raw[1].key, ((uint8_t[]){ 198, 51, 100, 72 }), 4);
        assert_true(raw[1].interval_end);
        snprintf(x.key, sizeof(x.key), "255.255.255.0/24"); /* to the end: no end element */
        assert_int_equal(nft_raw_encode(&l, &x, NOW, raw, &n), 0);
        assert_int_equal(n, 1);

        /* a map's verdict */
        assert_true(nft_set_layout("bridge", "vps_out", &l));
        x = (struct nft_elem){ .family = "bridge", .set = "vps_out", .key = "\"b301\"", .value = "jump p1_out" };
        assert_int_equal(nft_raw_encode(&l, &x, NOW, raw, &n), 0);
        assert_string_equal(raw[0].chain, "p1_out");
        assert_int_equal(raw[0].len, 16);

        /* what nft_vps_elements() never writes is refused */
        snprintf(x.value, sizeof(x.value), "drop");
        assert_int_equal(nft_raw_encode(&l, &x, NOW, raw, &n), -EINVAL);
        assert_true(nft_set_layout("inet", "src4", &l));
        x = (struct nft_elem){ .family = "inet", .set = "src4", .key = "\"v1\" . 198.51.100.0/24" };
        assert_int_equal(nft_raw_encode(&l, &x, NOW, raw, &n), -EINVAL); /* a range in a hash set */
        snprintf(x.key, sizeof(x.key), "\"v1\"");
        assert_int_equal(nft_raw_encode(&l, &x, NOW, raw, &n), -EINVAL);
        snprintf(x.key, sizeof(x.key), "\"a-very-long-name-indeed\" . 198.51.100.1");
        assert_int_equal(nft_raw_encode(&l, &x, NOW, raw, &n), -EINVAL);
        assert_true(nft_set_layout("inet", "vps", &l));
        x = (struct nft_elem){ .family = "inet", .set = "vps", .key = "\"v1\"", .until = NOW + 5 };
        assert_int_equal(nft_raw_encode(&l, &x, NOW, raw, &n), -EINVAL); /* no timeouts there */
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_bytes),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
