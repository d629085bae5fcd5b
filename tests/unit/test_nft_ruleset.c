/* The nftables ruleset text: skeleton, per-VPS elements, diffs.  (The lab
 * loads the same text into a real kernel.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "dataplane/nft_ruleset.h"
#include "dataplane/proxy_route.h"

#define NOW 1795000000

#include "fixture.h"

static size_t policy_index(const char *name)
{
        return (size_t)(pc_config_policy(cfg, name) - cfg->policies);
}

static struct pc_vps *make_vps(const char *site, const char *iface)
{
        struct pc_vps *v;

        assert_int_equal(pc_vps_new(&v), 0);
        snprintf(v->id, sizeof(v->id), "vps-%s", iface);
        snprintf(v->iface, sizeof(v->iface), "%s", iface);
        v->site = pc_config_site(cfg, site);
        assert_non_null(v->site);
        return v;
}

static bool has_elem(const struct nft_elems *e, const char *set, const char *key, const char *value, int64_t until)
{
        for (size_t i = 0; i < e->n; i++)
                if (strcmp(e->v[i].set, set) == 0 && strcmp(e->v[i].key, key) == 0 &&
                    strcmp(e->v[i].value, value) == 0 && e->v[i].until == until)
                        return true;
        return false;
}

static void test_skeleton(void **state)
{
        struct strbuf b = { 0 };
        char want[128];
        size_t b_idx = policy_index("blocked-services"), a_idx = policy_index("lenoir");
        const char *s;

        nft_skeleton(cfg, &b);
        s = strbuf_str(&b);
        assert_false(b.oom);
        assert_non_null(strstr(s, "table inet portcullis {"));
        assert_non_null(strstr(s, "type filter hook forward priority filter; policy accept;"));
        assert_non_null(strstr(s, "ct state established accept"));
        /* a suspended VPS: what it sends is dropped once, before conntrack
         * (raw_prerouting); what is sent to it, in forward */
        assert_non_null(strstr(s, "type filter hook forward priority filter; policy accept;\n"
                                  "\t\toifname @suspended counter name \"verdict_suspended_in\" drop\n"));
        /* ... by the one lookup of the interface that every packet in
         * makes (a routed VPS's element there: jump suspended_out) */
        assert_non_null(strstr(s, "\tchain raw_prerouting {\n\t\ttype filter hook prerouting priority raw; "
                                  "policy accept;\n\t\tiifname vmap @antispoof\n"));
        assert_non_null(strstr(s, "\tmap antispoof {\n\t\ttype ifname : verdict\n\t}\n"));
        assert_non_null(strstr(s, "\tchain suspended_out {\n\t\tcounter name \"verdict_suspended_out\" drop\n\t}\n"));
        {
                /* ... and no other lookup of the sender in the inet table */
                const char *bridge = strstr(s, "table bridge"), *first = strstr(s, "iifname @suspended");

                assert_true(first == NULL || (bridge != NULL && first > bridge));
                assert_null(strstr(s, "iifname @antispoof"));
        }
        /* related only for ICMP errors; invalid packets of a VPS dropped */
        assert_non_null(strstr(s, "ct state related meta l4proto { icmp, ipv6-icmp } accept"));
        assert_non_null(strstr(s, "ct state invalid iifname @vps counter name \"verdict_invalid\" drop"));
        assert_non_null(strstr(s, "ct state invalid oifname @vps counter name \"verdict_invalid\" drop"));
        /* the proxied port is never forwarded, whatever conntrack says,
         * and is checked before the established shortcut */
        assert_non_null(strstr(s, "tcp dport 25 iifname vmap @vps_proxied"));
        assert_non_null(strstr(s, "tcp sport 25 oifname vmap @vps_proxied"));
        /* ... nor answered by the hypervisor itself (not redirected there) */
        assert_non_null(strstr(s, "chain input {\n\t\ttype filter hook input priority filter; policy accept;\n"
                                  "\t\ttcp dport 25 iifname vmap @vps_proxied\n"
                                  "\t\tct state established accept\n"));
        /* the hypervisor as a destination: the same site rules */
        assert_non_null(strstr(s, "@filter_ports_out counter name \"verdict_filter_out\" drop\n"
                                  "\t\tiifname vmap @vps_out\n\t}\n"));
        /* a whole-VPS outbound filter also refuses datagram flows towards it */
        assert_non_null(strstr(s, "meta l4proto != { tcp, icmp, ipv6-icmp } oifname @filter_out "
                                  "counter name \"verdict_filter_out\" drop"));
        assert_true(strstr(s, "tcp dport 25 iifname vmap @vps_proxied") <
                    strstr(s, "ct state established accept"));
        snprintf(want, sizeof(want), "chain p%zu_proxied {\n\t\ttcp dport 25 counter name \"verdict_proxy_bypass\" drop\n"
                                     "\t\ttcp sport 25 counter name \"verdict_proxy_bypass\" drop\n", a_idx);
        assert_non_null(strstr(s, want));
        /* a new flow's tuple is checked both ways round */
        snprintf(want, sizeof(want), "chain p%zu_in {\n\t\tmeta l4proto . th dport vmap @p%zu_in_ports\n"
                                     "\t\tmeta l4proto . th sport vmap @p%zu_rout_ports\n", b_idx, b_idx, b_idx);
        assert_non_null(strstr(s, want));
        snprintf(want, sizeof(want), "chain p%zu_out {\n\t\tmeta l4proto . th dport vmap @p%zu_out_ports\n"
                                     "\t\tmeta l4proto . th sport vmap @p%zu_rin_ports\n", b_idx, b_idx, b_idx);
        assert_non_null(strstr(s, want));
        snprintf(want, sizeof(want), "tcp . 587 : jump p%zu_r0_rout", b_idx);
        assert_non_null(strstr(s, want));
        snprintf(want, sizeof(want), "chain p%zu_r0_rout {", b_idx);
        assert_non_null(strstr(s, want));
        snprintf(want, sizeof(want), "oifname @p%zu_r0_exempt return\n\t\tcounter name \"verdict_blocked_service_out\" drop", b_idx);
        assert_non_null(strstr(s, want));
        assert_non_null(strstr(s, "oifname . meta l4proto . th sport @filter_ports_out counter name \"verdict_filter_out\" drop"));
        assert_non_null(strstr(s, "iifname . meta l4proto . th sport @filter_ports_in counter name \"verdict_filter_in\" drop"));
        /* BCP 38 everywhere, answered only where the policy says */
        assert_non_null(strstr(s, "chain antispoof_quiet {"));
        assert_null(strstr(s, "set spoof_report {\n\t\ttype ifname\n\t}\n\tset src4")); /* inet: in @antispoof */
        /* Provider B: smtp egress only, vpn and bittorrent both ways, published ports. */
        snprintf(want, sizeof(want), "tcp . 25 : jump p%zu_r0_out", b_idx);
        assert_non_null(strstr(s, want));
        snprintf(want, sizeof(want), "tcp . 1728 : jump p%zu_r1_out", b_idx);
        assert_non_null(strstr(s, want));
        snprintf(want, sizeof(want), "udp . 6881-6889 : jump p%zu_r2_in", b_idx);
        assert_non_null(strstr(s, want));
        snprintf(want, sizeof(want), "tcp . 25 : jump p%zu_r0_in", b_idx);
        assert_null(strstr(s, want));
        assert_non_null(strstr(s, "meta l4proto tcp reject with tcp reset"));
        /* Provider A: only the port 25 redirect, to the proxy's port, not exemptable. */
        snprintf(want, sizeof(want),
                 "chain p%zu_nat {\n\t\tfib daddr type { local, broadcast, multicast } return\n"
                 "\t\tip6 daddr { ::, ::ffff:0.0.0.0/96 } return\n"
                 "\t\tmeta l4proto tcp th dport 25 counter name \"verdict_smtp_proxied\" redirect to :10025", a_idx);
        assert_non_null(strstr(s, want));
        snprintf(want, sizeof(want), "chain p%zu_out", a_idx);
        assert_null(strstr(s, want));
        snprintf(want, sizeof(want), "set p%zu_r0_exempt", a_idx);
        assert_null(strstr(s, want));
        /* No rule or chain names a VPS. */
        assert_null(strstr(s, "vps-"));
        strbuf_free(&b);
}

static void test_skeleton_id_tracks_config(void **state)
{
        uint32_t id = nft_skeleton_id(cfg);
        struct pc_policy *p = (struct pc_policy *)pc_config_policy(cfg, "blocked-services");

        assert_int_equal(nft_skeleton_id(cfg), id);
        p->rules[0].ports[0].lo = p->rules[0].ports[0].hi = 24;
        assert_int_not_equal(nft_skeleton_id(cfg), id);
        p->rules[0].ports[0].lo = p->rules[0].ports[0].hi = 25;
        assert_int_equal(nft_skeleton_id(cfg), id);
}

static void test_vps_elements(void **state)
{
        struct pc_vps *v = make_vps("milano", "v201"), *a = make_vps("lenoir", "v101");
        struct pc_exception e = { .id = 1, .until = NOW + 3600 }, old = { .id = 2, .until = NOW - 1 };
        struct pc_filter f = { .id = 3, .direction = PC_DIR_EGRESS, .scope = PC_SCOPE_PORTS,
                               .ports = { PC_PROTO_TCP, 20, 23 }, .until = NOW + 60 };
        struct nft_elems out = { 0 };
        size_t b = policy_index("blocked-services"), l = policy_index("lenoir");
        char set[40], value[40];

        snprintf(e.service, sizeof(e.service), "smtp");
        snprintf(old.service, sizeof(old.service), "vpn");
        assert_int_equal(pc_vps_add_exception(v, &e), 0);
        assert_int_equal(pc_vps_add_exception(v, &old), 0);
        assert_int_equal(pc_vps_add_filter(v, &f), 0);
        assert_int_equal(nft_vps_elements(cfg, v, NOW, &out), 0);
        snprintf(value, sizeof(value), "jump p%zu_out", b);
        assert_true(has_elem(&out, "vps_out", "\"v201\"", value, 0));
        snprintf(value, sizeof(value), "jump p%zu_in", b);
        assert_true(has_elem(&out, "vps_in", "\"v201\"", value, 0));
        snprintf(set, sizeof(set), "p%zu_r0_exempt", b);
        assert_true(has_elem(&out, set, "\"v201\"", "", NOW + 3600));
        snprintf(set, sizeof(set), "p%zu_r1_exempt", b); /* the ended vpn exception */
        assert_false(has_elem(&out, set, "\"v201\"", "", NOW - 1));
        assert_true(has_elem(&out, "filter_ports_out", "\"v201\" . tcp . 20-23", "", NOW + 60));
        /* BCP 38 at provider B's site too, silently */
        assert_true(has_elem(&out, "vps", "\"v201\"", "", 0));
        assert_true(has_elem(&out, "antispoof", "\"v201\"", "jump antispoof_quiet", 0));
        assert_true(has_elem(&out, "any_link_local", "\"v201\"", "", 0));
        assert_false(has_elem(&out, "spoof_report", "\"v201\"", "", 0));
        /* milano only records scans: nothing held back */
        assert_false(has_elem(&out, "scan_contain", "\"v201\"", "", 0));
        assert_int_equal(out.n, 7);
        nft_elems_free(&out);

        assert_int_equal(nft_vps_elements(cfg, a, NOW, &out), 0);
        snprintf(value, sizeof(value), "jump p%zu_nat", l);
        assert_true(has_elem(&out, "vps_nat", "\"v101\"", value, 0));
        /* lenoir checks sources: no MAC registered, so any link-local */
        assert_true(has_elem(&out, "antispoof", "\"v101\"", "jump antispoof", 0));
        assert_true(has_elem(&out, "any_link_local", "\"v101\"", "", 0));
        /* ... and answers spoofing: the value of its one element in @antispoof */
        assert_false(has_elem(&out, "spoof_report", "\"v101\"", "", 0));
        assert_true(has_elem(&out, "vps", "\"v101\"", "", 0));
        snprintf(value, sizeof(value), "jump p%zu_proxied", l);
        assert_true(has_elem(&out, "vps_proxied", "\"v101\"", value, 0));
        /* lenoir filters scanners: the kernel holds back its first contacts */
        assert_true(has_elem(&out, "scan_contain", "\"v101\"", "", 0));
        assert_int_equal(out.n, 6);
        nft_elems_free(&out);
        {
                struct pc_prefix p4, p6;
                struct pc_exception x = { .id = 9, .until = NOW + 60 }, y = { .id = 10 };

                assert_int_equal(pc_parse_prefix("203.0.113.10", false, &p4), 0);
                assert_int_equal(pc_parse_prefix("2001:db8:101::/64", false, &p6), 0);
                assert_int_equal(pc_vps_add_addr(a, &p4), 0);
                assert_int_equal(pc_vps_add_addr(a, &p6), 0);
                assert_int_equal(pc_parse_mac("52:54:00:00:01:01", a->mac), 0);
                a->has_mac = true;
                snprintf(x.service, sizeof(x.service), "source-prefix:198.51.100.64/29");
                assert_int_equal(pc_vps_add_exception(a, &x), 0);
                snprintf(y.service, sizeof(y.service), "source-prefix:2001:db8:ff00::/56");
                assert_int_equal(pc_vps_add_exception(a, &y), 0);
        }
        assert_int_equal(nft_vps_elements(cfg, a, NOW, &out), 0);
        assert_true(has_elem(&out, "src4", "\"v101\" . 203.0.113.10", "", 0));
        /* a /64 in the hash set, matched on the source's /64; other
         * prefixes in the interval set */
        assert_true(has_elem(&out, "src6_64", "\"v101\" . 2001:db8:101::", "", 0));
        assert_false(has_elem(&out, "src6_net", "\"v101\" . 2001:db8:101::/64", "", 0));
        assert_true(has_elem(&out, "src6_net", "\"v101\" . 2001:db8:ff00::/56", "", 0));
        assert_true(has_elem(&out, "src6", "\"v101\" . fe80::5054:ff:fe00:101", "", 0));
        assert_true(has_elem(&out, "src4_net", "\"v101\" . 198.51.100.64/29", "", NOW + 60));
        assert_false(has_elem(&out, "any_link_local", "\"v101\"", "", 0));
        nft_elems_free(&out);
        {
                /* agent.max-vps: the source hash sets have no timeouts, so a
                 * source that ends in time goes to the interval sets, a whole
                 * address there as the kernel gives it back */
                struct pc_exception z = { .id = 11, .until = NOW + 60 };
                struct strbuf sk = { 0 };
                char *inet;

                snprintf(z.service, sizeof(z.service), "source-prefix:198.51.100.7/32");
                assert_int_equal(pc_vps_add_exception(a, &z), 0);
                cfg->agent.max_vps = 1000;
                assert_int_equal(nft_vps_elements(cfg, a, NOW, &out), 0);
                assert_true(has_elem(&out, "src4", "\"v101\" . 203.0.113.10", "", 0));
                assert_true(has_elem(&out, "src4_net", "\"v101\" . 198.51.100.7", "", NOW + 60));
                assert_false(has_elem(&out, "src4", "\"v101\" . 198.51.100.7", "", NOW + 60));
                assert_true(has_elem(&out, "src4_net", "\"v101\" . 198.51.100.64/29", "", NOW + 60));
                assert_true(has_elem(&out, "src6_64", "\"v101\" . 2001:db8:101::", "", 0));
                assert_int_equal(nft_set_limit(cfg, "inet", "vps"), 1000);
                assert_int_equal(nft_set_limit(cfg, "", "vps"), 1000);
                assert_int_equal(nft_set_limit(cfg, "inet", "src6_64"), NFT_ADDRS_PER_VPS * 1000);
                assert_int_equal(nft_set_limit(cfg, "inet", "src4_net"), 0);
                /* only the sets every VPS of some site has an element in:
                 * few are suspended, and this config bridges no site */
                assert_int_equal(nft_set_limit(cfg, "inet", "suspended"), 0);
                assert_int_equal(nft_set_limit(cfg, "inet", "any_link_local"), 0);
                assert_int_equal(nft_set_limit(cfg, "bridge", "vps"), 0);
                assert_int_equal(nft_set_limit(cfg, "bridge", "src4"), 0);
                nft_skeleton(cfg, &sk);
                /* the inet table's part only: the bridge table's sets of
                 * the same names are unsized here (no bridged site) */
                inet = strdup(strbuf_str(&sk));
                assert_non_null(inet);
                assert_non_null(strstr(inet, "table bridge "));
                *strstr(inet, "table bridge ") = '\0';
                assert_non_null(strstr(inet, "\tset src4 {\n\t\ttype ifname . ipv4_addr\n\t\tsize 4000\n\t}\n"));
                assert_non_null(strstr(inet, "\tset vps {\n\t\ttype ifname\n\t\tsize 1000\n\t}\n"));
                assert_non_null(strstr(inet, "\tmap antispoof {\n\t\ttype ifname : verdict\n\t\tsize 1000\n\t}\n"));
                assert_non_null(strstr(inet, "\tset suspended {\n\t\ttype ifname\n\t}\n"));
                free(inet);
                strbuf_free(&sk);
                cfg->agent.max_vps = 0;
                assert_int_equal(nft_set_limit(cfg, "inet", "vps"), 0);
                nft_elems_free(&out);
                assert_int_equal(nft_vps_elements(cfg, a, NOW, &out), 0);
                assert_true(has_elem(&out, "src4", "\"v101\" . 198.51.100.7", "", NOW + 60));
                nft_elems_free(&out);
        }
        a->suspended = true;
        assert_int_equal(nft_vps_elements(cfg, a, NOW, &out), 0);
        assert_true(has_elem(&out, "suspended", "\"v101\"", "", 0));
        /* what it sends: dropped at the same single lookup, never checked */
        assert_true(has_elem(&out, "antispoof", "\"v101\"", "jump suspended_out", 0));
        assert_false(has_elem(&out, "antispoof", "\"v101\"", "jump antispoof", 0));
        nft_elems_free(&out);
        pc_vps_free(v);
        pc_vps_free(a);
}

static void test_normalise_and_diff(void **state)
{
        struct nft_elems before = { 0 }, after = { 0 }, del = { 0 }, add = { 0 };
        struct nft_elem x = { .set = "filter_ports_out", .key = "\"v1\" . tcp . 20-30", .until = 10 };
        struct strbuf b = { 0 };

        nft_elems_push(&before, &x);
        snprintf(x.key, sizeof(x.key), "\"v1\" . tcp . 25"); /* inside 20-30: dropped */
        nft_elems_push(&before, &x);
        snprintf(x.key, sizeof(x.key), "\"v2\" . tcp . 25"); /* another VPS: kept */
        nft_elems_push(&before, &x);
        snprintf(x.set, sizeof(x.set), "suspended");
        snprintf(x.key, sizeof(x.key), "\"v1\"");
        x.until = 0;
        nft_elems_push(&before, &x);
        nft_elems_push(&before, &x); /* exact duplicate */
        nft_elems_normalise(&before);
        assert_int_equal(before.n, 3);

        snprintf(x.set, sizeof(x.set), "filter_ports_out");
        snprintf(x.key, sizeof(x.key), "\"v1\" . tcp . 20-30");
        x.until = 20; /* extended: delete and add */
        nft_elems_push(&after, &x);
        snprintf(x.key, sizeof(x.key), "\"v2\" . tcp . 25");
        x.until = 10; /* unchanged */
        nft_elems_push(&after, &x);
        nft_elems_normalise(&after);
        assert_int_equal(nft_elems_diff(&before, &after, &del, &add), 0);
        assert_int_equal(del.n, 2); /* the old v1 range, the suspension */
        assert_int_equal(add.n, 1);
        nft_elems_commands("portcullis", &del, false, 5, &b);
        nft_elems_commands("portcullis", &add, true, 5, &b);
        assert_string_equal(strbuf_str(&b),
                            "delete element inet portcullis filter_ports_out { \"v1\" . tcp . 20-30 }\n"
                            "delete element inet portcullis suspended { \"v1\" }\n"
                            "add element inet portcullis filter_ports_out { \"v1\" . tcp . 20-30 timeout 15s }\n");
        strbuf_free(&b);
        nft_elems_free(&before);
        nft_elems_free(&after);
        nft_elems_free(&del);
        nft_elems_free(&add);
}

/* Filters whose ports overlap cannot both be in an interval set: each
 * port is filtered as long as the longest-lived filter over it, so that
 * none is left open when a shorter one times out in the kernel. */
static void test_normalise_overlaps(void **state)
{
        static const struct {
                const char *in[4];
                int64_t until[4];
                const char *out[4];
                int64_t out_until[4];
        } cases[] = {
                /* the earlier range ends first: the later one's ports stay */
                { { "tcp . 1-100", "tcp . 50-200" }, { 100, 0 }, { "tcp . 1-49", "tcp . 50-200" }, { 100, 0 } },
                /* a longer-lived one inside: cut out of the shorter one */
                { { "tcp . 1-100", "tcp . 50-60" }, { 100, 0 },
                  { "tcp . 1-49", "tcp . 50-60", "tcp . 61-100" }, { 100, 0, 100 } },
                /* inside one that lasts longer: nothing of it is left */
                { { "tcp . 1-100", "tcp . 50-60" }, { 0, 100 }, { "tcp . 1-100" }, { 0 } },
                /* a chain of equal lifetimes: one range */
                { { "tcp . 1-10", "tcp . 10-20", "tcp . 20-30" }, { 7, 7, 7 }, { "tcp . 1-30" }, { 7 } },
                /* 100-200 sorts before 25 as text: no overlap, both kept */
                { { "tcp . 100-200", "tcp . 25" }, { 0, 0 }, { "tcp . 100-200", "tcp . 25" }, { 0, 0 } },
                /* adjacent, not overlapping: kept as they are */
                { { "tcp . 1-10", "tcp . 11-20" }, { 0, 5 }, { "tcp . 1-10", "tcp . 11-20" }, { 0, 5 } },
                /* another protocol: no overlap */
                { { "tcp . 25", "udp . 25" }, { 0, 9 }, { "tcp . 25", "udp . 25" }, { 0, 9 } },
                /* a single port cut out of a range at its end */
                { { "tcp . 20-25", "tcp . 25" }, { 3, 0 }, { "tcp . 20-24", "tcp . 25" }, { 3, 0 } },
        };

        (void)state;
        for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
                struct nft_elems e = { 0 };
                struct nft_elem x = { .set = "filter_ports_in" };
                size_t n_out = 0;

                /* another VPS's element between them, which no range touches */
                snprintf(x.key, sizeof(x.key), "\"v10\" . tcp . 1-65535");
                nft_elems_push(&e, &x);
                for (size_t i = 0; i < 4 && cases[c].in[i] != NULL; i++) {
                        snprintf(x.key, sizeof(x.key), "\"v1\" . %s", cases[c].in[i]);
                        x.until = cases[c].until[i];
                        nft_elems_push(&e, &x);
                }
                assert_int_equal(nft_elems_normalise(&e), 0);
                while (n_out < 4 && cases[c].out[n_out] != NULL)
                        n_out++;
                assert_int_equal(e.n, n_out + 1);
                for (size_t i = 0; i < n_out; i++) {
                        char key[96];

                        snprintf(key, sizeof(key), "\"v1\" . %s", cases[c].out[i]);
                        assert_string_equal(e.v[i].key, key);
                        assert_int_equal(e.v[i].until, cases[c].out_until[i]);
                }
                assert_string_equal(e.v[n_out].key, "\"v10\" . tcp . 1-65535");
                nft_elems_free(&e);
        }
}

/* The pieces of "tcp . LO-HI" ranges of "v1" with their ends, normalised,
 * into <e>; those ended at <t> left out first (<t> 0: none). */
static void pieces_at(const char *const *keys, const int64_t *until, size_t n, int64_t t, struct nft_elems *e)
{
        for (size_t i = 0; i < n; i++) {
                struct nft_elem x = { .family = "inet", .set = "filter_ports_out" };

                if (t != 0 && until[i] != 0 && until[i] <= t)
                        continue;
                snprintf(x.key, sizeof(x.key), "\"v1\" . tcp . %s", keys[i]);
                x.until = until[i];
                assert_int_equal(nft_elems_push(e, &x), 0);
        }
        assert_int_equal(nft_elems_normalise(e), 0);
}

/* What the kernel holds once some filters timed out (the pieces placed
 * while all held, less those ended) is what the model's filters still in
 * force give: or a later change of the VPS deletes an element the kernel
 * does not hold (refused: the change is lost), and a read-back repairs
 * what is right.  Ranges 0-65535 included; the random rounds seeded. */
static void test_normalise_after_expiry(void **state)
{
        /* the one that joined the other two ends first: they are adjacent */
        static const char *const keys[] = { "7000-7012", "7000-7009", "7010-7015" };
        static const int64_t until[] = { 4, 3600, 3600 };
        unsigned seed = 1;

        (void)state;
        for (size_t round = 0; round < 300; round++) {
                char buf[64][24];
                const char *k[64];
                int64_t u[64];
                size_t n = round == 0 ? 3 : 2 + (seed = seed * 1103515245u + 12345u) % 8;

                for (size_t i = 0; i < n; i++) {
                        unsigned lo, len;

                        if (round == 0) {
                                k[i] = keys[i];
                                u[i] = until[i];
                                continue;
                        }
                        seed = seed * 1103515245u + 12345u;
                        lo = (seed >> 8) % 24;
                        len = (seed >> 16) % 8;
                        if (i % 3 == 1)
                                lo = 65535 - len - lo % 4; /* up to the last port */
                        else if (i % 3 == 2)
                                lo %= 3; /* from port 0 */
                        if (len == 0)
                                snprintf(buf[i], sizeof(buf[i]), "%u", lo);
                        else
                                snprintf(buf[i], sizeof(buf[i]), "%u-%u", lo, lo + len);
                        k[i] = buf[i];
                        u[i] = (seed >> 24) % 4 == 0 ? 0 : 1 + (seed >> 26) % 4;
                }
                for (size_t ti = 0; ti < 6; ti++) {
                        static const int64_t times[] = { 1, 2, 3, 4, 5, 3600 };
                        int64_t t = times[ti];
                        struct nft_elems all = { 0 }, now = { 0 }, kernel = { 0 };

                        pieces_at(k, u, n, 0, &all);
                        pieces_at(k, u, n, t, &now);
                        for (size_t i = 0; i < all.n; i++)
                                if (all.v[i].until == 0 || all.v[i].until > t)
                                        assert_int_equal(nft_elems_push(&kernel, &all.v[i]), 0);
                        if (kernel.n != now.n)
                                fail_msg("round %zu, at %lld: the kernel holds %zu elements, the model gives %zu (first: %s)",
                                         round, (long long)t, kernel.n, now.n, now.n > 0 ? now.v[0].key : "");
                        for (size_t i = 0; i < now.n; i++) {
                                assert_string_equal(kernel.v[i].key, now.v[i].key);
                                assert_int_equal(kernel.v[i].until, now.v[i].until);
                        }
                        nft_elems_free(&all);
                        nft_elems_free(&now);
                        nft_elems_free(&kernel);
                }
        }
}

/* The proxy's return rule (in raw_prerouting, after the sender's check:
 * no base chain of its own) and the proxy_out chain exist exactly when a
 * policy redirects to an SMTP proxy that connects from the VPS's address;
 * without them the table is what it always was. */
static void test_proxy_return_chains(void **state)
{
        static const char ret[] =
                "\tchain raw_prerouting {\n"
                "\t\ttype filter hook prerouting priority raw; policy accept;\n"
                "\t\tiifname vmap @antispoof\n"
                "\t\ttcp sport 25 socket transparent 1 ct zone set 2525 meta mark set 0x50430019\n"
                "\t}\n";
        static const char chains[] =
                "\tchain proxy_out {\n"
                "\t\ttype filter hook output priority raw; policy accept;\n"
                "\t\ttcp dport 25 socket transparent 1 ct zone set 2525\n"
                "\t}\n";
        struct pc_policy *l = (struct pc_policy *)pc_config_policy(cfg, "lenoir");
        struct pc_rule *redirect = NULL;
        struct strbuf b = { 0 };
        uint32_t with_id = nft_skeleton_id(cfg);
        struct pc_port_range port25;
        bool had[64];

        assert_int_equal(PC_PROXY_FWMARK, 0x50430019u);
        assert_int_equal(PC_PROXY_ROUTE_TABLE, 2525);
        assert_int_equal(PC_PROXY_CT_ZONE, 2525);
        /* Provider A (lenoir) redirects port 25 to a proxy that connects
         * from the VPS. */
        assert_true(l->has_smtp_proxy);
        assert_true(pc_policy_proxy_from_vps(l));
        assert_false(pc_policy_proxy_from_vps(pc_config_policy(cfg, "blocked-services")));
        assert_true(pc_proxy_route_needed(cfg));
        nft_skeleton(cfg, &b);
        assert_false(b.oom);
        assert_non_null(strstr(strbuf_str(&b), chains));
        assert_non_null(strstr(strbuf_str(&b), ret));
        assert_null(strstr(strbuf_str(&b), "proxy_return"));
        /* In the inet table, not the bridge one. */
        assert_true(strstr(strbuf_str(&b), chains) < strstr(strbuf_str(&b), "table bridge"));
        assert_true(strstr(strbuf_str(&b), ret) < strstr(strbuf_str(&b), "table bridge"));
        strbuf_free(&b);

        /* More ports, overlapping: merged, in a set. */
        for (size_t r = 0; r < l->n_rules; r++)
                if (l->rules[r].action == PC_ACTION_REDIRECT)
                        redirect = &l->rules[r];
        assert_non_null(redirect);
        assert_int_equal(redirect->n_ports, 1);
        port25 = redirect->ports[0];
        redirect->ports[1] = (struct pc_port_range){ PC_PROTO_TCP, 465, 587 };
        redirect->ports[2] = (struct pc_port_range){ PC_PROTO_TCP, 500, 600 };
        redirect->ports[3] = (struct pc_port_range){ PC_PROTO_TCP, 26, 26 };
        redirect->n_ports = 4;
        nft_skeleton(cfg, &b);
        assert_non_null(strstr(strbuf_str(&b), "\t\ttcp sport { 25-26, 465-600 } socket transparent 1 ct zone set 2525 "
                                               "meta mark set 0x50430019\n"));
        assert_non_null(strstr(strbuf_str(&b), "\t\ttcp dport { 25-26, 465-600 } socket transparent 1 ct zone set 2525\n"));
        strbuf_free(&b);
        redirect->n_ports = 1;
        redirect->ports[0] = port25;
        assert_int_equal(nft_skeleton_id(cfg), with_id);

        /* From the hypervisor's address: no transparent socket, no chains. */
        l->smtp_limits.source = PC_SMTP_SOURCE_HYPERVISOR;
        assert_false(pc_proxy_route_needed(cfg));
        nft_skeleton(cfg, &b);
        assert_null(strstr(strbuf_str(&b), "socket transparent"));
        assert_null(strstr(strbuf_str(&b), "proxy_out"));
        assert_int_not_equal(nft_skeleton_id(cfg), with_id);
        strbuf_free(&b);
        l->smtp_limits.source = PC_SMTP_SOURCE_VPS;

        /* A proxy but no rule redirecting to it: nothing to return. */
        redirect->action = PC_ACTION_BLOCK;
        assert_false(pc_policy_proxy_from_vps(l));
        redirect->action = PC_ACTION_REDIRECT;

        /* No proxy at all. */
        assert_true(cfg->n_policies <= PC_ARRAY_SIZE(had));
        for (size_t i = 0; i < cfg->n_policies; i++) {
                had[i] = cfg->policies[i].has_smtp_proxy;
                cfg->policies[i].has_smtp_proxy = false;
        }
        assert_false(pc_proxy_route_needed(cfg));
        nft_skeleton(cfg, &b);
        assert_null(strstr(strbuf_str(&b), "chain proxy_"));
        assert_null(strstr(strbuf_str(&b), "socket transparent"));
        assert_null(strstr(strbuf_str(&b), "meta mark set"));
        assert_null(strstr(strbuf_str(&b), "ct zone"));
        assert_null(strstr(strbuf_str(&b), "hook output priority raw"));
        strbuf_free(&b);
        for (size_t i = 0; i < cfg->n_policies; i++)
                cfg->policies[i].has_smtp_proxy = had[i];
        assert_int_equal(nft_skeleton_id(cfg), with_id);
}

/* Every redirect of <c> turned into a block, remembered in <was> (room
 * for <size>); returns how many. */
static size_t no_redirects(struct pc_config *c, struct pc_rule **was, size_t size)
{
        size_t n = 0;

        for (size_t pi = 0; pi < c->n_policies; pi++)
                for (size_t r = 0; r < c->policies[pi].n_rules; r++)
                        if (c->policies[pi].rules[r].action == PC_ACTION_REDIRECT) {
                                assert_true(n < size);
                                was[n] = &c->policies[pi].rules[r];
                                was[n++]->action = PC_ACTION_BLOCK;
                        }
        return n;
}

/* NAT's hooks only where some policy redirects: a nat chain costs every
 * packet (and every new connection) whether it redirects or not. */
static void test_nat_only_with_redirect(void **state)
{
        struct pc_config *bc;
        struct strbuf b = { 0 };
        struct pc_rule *was[8];
        char err[1024];
        uint32_t with_id = nft_skeleton_id(cfg);
        size_t n;

        nft_skeleton(cfg, &b);
        assert_non_null(strstr(strbuf_str(&b), "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; "
                                               "policy accept;\n\t\tiifname vmap @vps_nat\n\t}\n"));
        strbuf_free(&b);
        n = no_redirects(cfg, was, PC_ARRAY_SIZE(was));
        assert_true(n > 0);
        nft_skeleton(cfg, &b);
        assert_false(b.oom);
        assert_null(strstr(strbuf_str(&b), "type nat hook"));
        assert_null(strstr(strbuf_str(&b), "vmap @vps_proxied"));
        /* the rest of the table as before */
        assert_non_null(strstr(strbuf_str(&b), "\tchain raw_prerouting {\n"));
        assert_non_null(strstr(strbuf_str(&b), "\tmap vps_nat {\n"));
        strbuf_free(&b);
        /* another skeleton: the agent rebuilds the table whole, both ways */
        assert_int_not_equal(nft_skeleton_id(cfg), with_id);
        while (n > 0)
                was[--n]->action = PC_ACTION_REDIRECT;
        assert_int_equal(nft_skeleton_id(cfg), with_id);

        /* a bridged site: the bridge table's nat_mark hook likewise */
        assert_int_equal(pc_config_load(PC_SOURCE_ROOT "/tests/golden/ok/bridged.yaml", &bc, err, sizeof(err)), 0);
        nft_skeleton(bc, &b);
        assert_non_null(strstr(strbuf_str(&b), "\tchain nat_mark {\n"));
        assert_non_null(strstr(strbuf_str(&b), "type nat hook prerouting"));
        strbuf_free(&b);
        assert_true(no_redirects(bc, was, PC_ARRAY_SIZE(was)) > 0);
        nft_skeleton(bc, &b);
        assert_null(strstr(strbuf_str(&b), "chain nat_mark"));
        assert_null(strstr(strbuf_str(&b), "type nat hook"));
        assert_non_null(strstr(strbuf_str(&b), "\tchain enforce {\n"));
        strbuf_free(&b);
        pc_config_free(bc);
}

/* The element of <set> in the table of <family> with <key>, or NULL. */
static const struct nft_elem *find_in(const struct nft_elems *e, const char *family, const char *set,
                                      const char *key)
{
        for (size_t i = 0; i < e->n; i++)
                if (strcmp(e->v[i].family, family) == 0 && strcmp(e->v[i].set, set) == 0 &&
                    strcmp(e->v[i].key, key) == 0)
                        return &e->v[i];
        return NULL;
}

/* Bridged sites: the bridge table holds the site policy's per-VPS sets
 * (keyed by bridge port) and marks; the inet table acts on the marks; a
 * config without a bridged site keeps its ruleset unchanged. */
static void test_bridged(void **state)
{
        struct pc_config *bc;
        struct strbuf b = { 0 };
        struct nft_elems out = { 0 };
        char err[1024], value[40], set[40];
        const char *s;
        size_t mi, li;

        assert_int_equal(pc_config_load(PC_SOURCE_ROOT "/tests/golden/ok/bridged.yaml", &bc, err, sizeof(err)), 0);
        mi = (size_t)(pc_config_policy(bc, "blocked-services") - bc->policies);
        li = (size_t)(pc_config_policy(bc, "lenoir-hv") - bc->policies);
        nft_skeleton(bc, &b);
        s = strbuf_str(&b);
        /* the inet side: the bridge table's verdicts, unless established */
        assert_non_null(strstr(s, "type filter hook forward priority filter; policy accept;\n"
                                  "\t\tmeta mark & 0xffffff00 == " PC_BR_MARK_VPS " jump bridged_forward\n"
                                  "\t\toifname @suspended counter name \"verdict_suspended_in\" drop\n"));
        assert_non_null(strstr(s, "type filter hook input priority filter; policy accept;\n"
                                  "\t\tmeta mark & 0xffffff00 == " PC_BR_MARK_VPS " jump bridged\n"));
        assert_non_null(strstr(s, "\tchain bridged {\n\t\tct state established accept\n"));
        assert_non_null(strstr(s, "meta mark vmap { " PC_BR_MARK_VPS " : jump bridged_vps, " PC_BR_MARK_HOST
                                  " : jump bridged_vps, " PC_BR_MARK_REJECT " : jump bridged_reject, " PC_BR_MARK_DROP
                                  " : drop }"));
        /* what a VPS port sent up to the hypervisor is never routed on */
        assert_non_null(strstr(s, "\tchain bridged_forward {\n\t\tct state established accept\n"));
        assert_non_null(strstr(s, "meta mark vmap { " PC_BR_MARK_VPS " : jump bridged_vps, " PC_BR_MARK_HOST
                                  " : jump bridged_host_routed, " PC_BR_MARK_REJECT " : jump bridged_reject, "
                                  PC_BR_MARK_DROP " : drop }"));
        assert_non_null(strstr(s, "\tchain bridged_host_routed {\n\t\tcounter name \"verdict_bridged_routed\" drop\n"));
        /* nothing routed by the hypervisor to or from a bridged VPS's address
         * but a routed VPS's, or the VPS's own frames sent up to it */
        assert_non_null(strstr(s, "\t\tiifname != @vps ct mark != " PC_BR_MARK_VPS " jump bridged_routed\n"));
        assert_non_null(strstr(s, "\t\tiifname != @vps ct mark != " PC_BR_MARK_VPS " jump bridged_forged\n"));
        assert_non_null(strstr(s, "\tchain bridged_routed {\n\t\tip daddr @bridged4 counter name \"verdict_bridged_routed\" drop\n"));
        assert_non_null(strstr(s, "\tchain bridged_forged {\n\t\tip saddr @bridged4 counter name \"verdict_bridged_routed\" drop\n"));
        assert_non_null(strstr(s, "\t\tiifname @vps meta mark set " PC_BR_MARK_HOST "\n"));
        assert_non_null(strstr(s, "chain bridged_reject {\n\t\tmeta l4proto tcp reject with tcp reset\n"
                                  "\t\treject with icmpx admin-prohibited\n"));
        snprintf(value, sizeof(value), "meta mark 0x%08x jump p%zu_nat", PC_BR_MARK_PROXY + (unsigned)li, li);
        assert_non_null(strstr(s, value));
        /* the bridge side: per port, marking instead of rejecting */
        assert_non_null(strstr(s, "table bridge portcullis {"));
        assert_non_null(strstr(s, "\tchain enforce {\n\t\ttype filter hook forward priority filter;"));
        assert_non_null(strstr(s, "oifname @vps ether type != { ip, ip6, arp } counter name \"verdict_ethertype\" drop"));
        assert_non_null(strstr(s, "iifname @filter_out counter name \"verdict_filter_out\" meta mark set " PC_BR_MARK_DROP " accept"));
        snprintf(value, sizeof(value), "\tchain p%zu_r0_out {", mi);
        assert_non_null(strstr(s, value));
        assert_non_null(strstr(s, "meta mark set " PC_BR_MARK_REJECT " accept"));
        strbuf_free(&b);

        {
                struct pc_vps *v;

                assert_int_equal(pc_vps_new(&v), 0);
                snprintf(v->id, sizeof(v->id), "vps-301");
                snprintf(v->iface, sizeof(v->iface), "b301");
                v->site = pc_config_site(bc, "milano-bridged");
                {
                        struct pc_prefix a4 = { .family = AF_INET, .len = 32, .bytes = { 198, 51, 100, 31 } };
                        struct pc_prefix a6 = { .family = AF_INET6, .len = 64,
                                                .bytes = { 0x20, 0x01, 0x0d, 0xb8, 0x03, 0x01 } };

                        assert_int_equal(pc_vps_add_addr(v, &a4), 0);
                        assert_int_equal(pc_vps_add_addr(v, &a6), 0);
                }
                assert_int_equal(nft_vps_elements(bc, v, NOW, &out), 0);
                assert_non_null(find_in(&out, "inet", "bridged4", "198.51.100.31"));
                assert_non_null(find_in(&out, "inet", "bridged6_64", "2001:db8:301::"));
                assert_null(find_in(&out, "inet", "bridged6_net", "2001:db8:301::/64"));
                /* the targets it may advertise: its /64, and (no MAC) any
                 * link-local, both hashed */
                assert_non_null(find_in(&out, "bridge", "na_target_64", "\"b301\" . 0x20010db8030100000000000000000000"));
                assert_non_null(find_in(&out, "bridge", "na_target_64", "\"b301\" . 0xfe800000000000000000000000000000"));
                assert_null(find_in(&out, "bridge", "na_target", "\"b301\" . 0x20010db8030100000000000000000000-"
                                                                 "0x20010db803010000ffffffffffffffff"));
                snprintf(value, sizeof(value), "jump p%zu_out", mi);
                assert_non_null(find_in(&out, "bridge", "vps_out", "\"b301\""));
                assert_string_equal(find_in(&out, "bridge", "vps_out", "\"b301\"")->value, value);
                assert_non_null(find_in(&out, "bridge", "vps_in", "\"b301\""));
                assert_null(find_in(&out, "inet", "vps_out", "\"b301\""));
                {
                        struct pc_exception e = { .id = 1, .until = NOW + 60 };
                        struct pc_filter f = { .id = 2, .direction = PC_DIR_INGRESS, .scope = PC_SCOPE_ALL,
                                               .until = NOW + 60 };

                        snprintf(e.service, sizeof(e.service), "smtp");
                        assert_int_equal(pc_vps_add_exception(v, &e), 0);
                        assert_int_equal(pc_vps_add_filter(v, &f), 0);
                }
                nft_elems_free(&out);
                assert_int_equal(nft_vps_elements(bc, v, NOW, &out), 0);
                snprintf(set, sizeof(set), "p%zu_r0_exempt", mi);
                assert_non_null(find_in(&out, "bridge", set, "\"b301\""));
                assert_null(find_in(&out, "inet", set, "\"b301\""));
                assert_non_null(find_in(&out, "bridge", "filter_in", "\"b301\""));
                assert_int_equal(find_in(&out, "bridge", "filtered", "\"b301\"")->until, NOW + 60);
                nft_elems_free(&out);
                v->site = pc_config_site(bc, "lenoir-bridged");
                assert_int_equal(nft_vps_elements(bc, v, NOW, &out), 0);
                snprintf(value, sizeof(value), "jump p%zu_nat", li);
                assert_string_equal(find_in(&out, "bridge", "vps_nat", "\"b301\"")->value, value);
                assert_non_null(find_in(&out, "bridge", "vps_proxied", "\"b301\""));
                nft_elems_free(&out);
                pc_vps_free(v);
        }
        /* agent.max-vps with bridged sites: the bridge table's sets that
         * every bridged VPS has an element in are sized, the others not */
        bc->agent.max_vps = 1000;
        assert_int_equal(nft_set_limit(bc, "bridge", "vps"), 1000);
        assert_int_equal(nft_set_limit(bc, "bridge", "mac"), 1000);
        assert_int_equal(nft_set_limit(bc, "bridge", "vps_proxied"), 1000);
        assert_int_equal(nft_set_limit(bc, "bridge", "src6_64"), NFT_ADDRS_PER_VPS * 1000);
        assert_int_equal(nft_set_limit(bc, "bridge", "any_mac"), 0);
        assert_int_equal(nft_set_limit(bc, "bridge", "suspended"), 0);
        pc_config_free(bc);

        /* routed only: none of it */
        nft_skeleton(cfg, &b);
        assert_null(strstr(strbuf_str(&b), "bridged_"));
        assert_null(strstr(strbuf_str(&b), "chain enforce"));
        assert_null(strstr(strbuf_str(&b), "meta mark & 0xffffff00"));
        assert_null(strstr(strbuf_str(&b), "0x50430101"));
        /* ... but flows a VPS opens are marked, for the detectors */
        assert_non_null(strstr(strbuf_str(&b), "iifname @vps ct mark set 0x50430100"));
        strbuf_free(&b);
}

/* The body of chain <name> of the text <s> (up to its closing brace), in
 * <buf>; fails the test if there is none. */
static const char *chain_body(const char *s, const char *name, char *buf, size_t size)
{
        char head[64];
        const char *b, *e;

        snprintf(head, sizeof(head), "\tchain %s {\n", name);
        b = strstr(s, head);
        assert_non_null(b);
        b += strlen(head);
        e = strstr(b, "\t}\n");
        assert_non_null(e);
        assert_true((size_t)(e - b) < size);
        snprintf(buf, size, "%.*s", (int)(e - b), b);
        return buf;
}

/* <first> comes before <second> in <s>, both present. */
static void assert_before(const char *s, const char *first, const char *second)
{
        const char *a = strstr(s, first), *b = strstr(s, second);

        assert_non_null(a);
        assert_non_null(b);
        assert_true(a < b);
}

/* A bridged VPS's answers from an address it does not own (a neighbour
 * asked its docker0 address) are dropped without a finding; claims are
 * still findings.  The decision is the kernel's: these are its rules. */
static void test_bridged_answers(void **state)
{
        struct pc_config *bc;
        struct strbuf b = { 0 };
        char err[1024], c[2048];
        const char *s;

        assert_int_equal(pc_config_load(PC_SOURCE_ROOT "/tests/golden/ok/bridged.yaml", &bc, err, sizeof(err)), 0);
        nft_skeleton(bc, &b);
        s = strstr(strbuf_str(&b), "table bridge portcullis {");
        assert_non_null(s);
        /* what a port is sent, from anyone (forwarded, or the hypervisor's),
         * for an address that is not the port's own */
        assert_non_null(strstr(chain_body(s, "forward", c, sizeof(c)), "oifname @vps jump asked\n"));
        assert_non_null(strstr(chain_body(s, "output", c, sizeof(c)), "oifname @vps jump asked\n"));
        chain_body(s, "asked", c, sizeof(c));
        assert_non_null(strstr(c, "arp operation request oifname . arp daddr ip != @src4 oifname . arp daddr ip != "
                                  "@src4_net update @arp_asked { arp daddr ip . arp saddr ip . arp saddr ether }"));
        assert_before(c, "arp operation request", "ether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 return");
        assert_before(c, "return", "oifname . ip daddr != @src4 oifname . ip daddr != @src4_net update @asked4");
        assert_non_null(strstr(c, "oifname . ip6 daddr != @src6 oifname . ip6 daddr & ffff:ffff:ffff:ffff:: != @src6_64 "
                                  "oifname . ip6 daddr != @src6_net update @asked6"));
        /* ARP: the MAC first (a forged MAC is never an answer), own
         * addresses, then an answer, then a claim */
        chain_body(s, "check_arp", c, sizeof(c));
        assert_before(c, "arp saddr ether != @mac jump bad_arp", "iifname . arp saddr ip @src4 accept");
        assert_before(c, "@src4_net accept", "arp operation reply arp saddr ip . arp daddr ip . arp daddr ether "
                                             "@arp_asked jump answer\n");
        assert_before(c, "arp operation request iifname . arp saddr ip @asked4_at jump answer\n", "\t\tjump bad_arp\n");
        assert_before(c, "@arp_asked jump answer", "\t\tjump bad_arp\n");
        /* IP: a DHCP server reply is never an answer */
        chain_body(s, "check_ipv4", c, sizeof(c));
        assert_before(c, "udp sport 67 jump bad_dhcp", "iifname . ip saddr . ip daddr @asked4 jump answer_ipv4");
        assert_before(c, "@asked4 jump answer_ipv4", "\t\tjump bad_ipv4\n");
        chain_body(s, "check_ipv6", c, sizeof(c));
        assert_before(c, "nd-router-advert jump bad_ra", "iifname . ip6 saddr . ip6 daddr @asked6 jump answer_ipv6");
        assert_before(c, "nd-neighbor-advert iifname . @th,64,128 != @na_target_addr iifname . @th,64,128 & "
                         "0xffffffffffffffff0000000000000000 != @na_target_64 iifname . @th,64,128 != @na_target "
                         "jump bad_nd", "@asked6 jump answer_ipv6");
        assert_before(c, "iifname . ip6 saddr @src6 accept", "iifname . ip6 saddr & ffff:ffff:ffff:ffff:: @src6_64 accept");
        assert_before(c, "@src6_64 accept", "iifname . ip6 saddr @src6_net accept");
        /* an answer opens nothing: a bare SYN or an ICMP request is a claim */
        chain_body(s, "answer_ipv4", c, sizeof(c));
        assert_before(c, "tcp flags & (syn | ack) == syn jump bad_ipv4", "meta l4proto { tcp, udp } jump answer");
        assert_non_null(strstr(c, "icmp type { echo-reply, destination-unreachable, time-exceeded, "));
        assert_null(strstr(c, "echo-request"));
        assert_true(strlen(c) > strlen("\t\tjump bad_ipv4\n"));
        assert_string_equal(c + strlen(c) - strlen("\t\tjump bad_ipv4\n"), "\t\tjump bad_ipv4\n");
        chain_body(s, "answer_ipv6", c, sizeof(c));
        assert_before(c, "tcp flags & (syn | ack) == syn jump bad_ipv6", "meta l4proto { tcp, udp } jump answer");
        assert_non_null(strstr(c, "icmpv6 type { echo-reply, destination-unreachable, packet-too-big, "));
        assert_null(strstr(c, "echo-request"));
        assert_null(strstr(c, "nd-"));
        assert_string_equal(c + strlen(c) - strlen("\t\tjump bad_ipv6\n"), "\t\tjump bad_ipv6\n");
        /* dropped and counted, never logged: the agent sees no finding */
        assert_string_equal(chain_body(s, "answer", c, sizeof(c)),
                            "\t\tupdate @spoof_answer { iifname counter }\n"
                            "\t\tcounter name \"verdict_spoof_answer\" drop\n");
        assert_non_null(strstr(s, "\tset arp_asked {\n\t\ttype ipv4_addr . ipv4_addr . ether_addr\n"
                                  "\t\tsize 1048576\n\t\tflags dynamic,timeout\n\t\ttimeout "
                                  PC_ARP_ASKED_TIMEOUT "\n"));
        strbuf_free(&b);
        pc_config_free(bc);
}

/* A VPS's fingerprint does not change with the time (the kernel times out
 * what ends by itself), nor with the order of its exceptions, and changes
 * with anything the kernel holds for it; the record of it replaces the
 * only element of set `state`. */
static void test_fingerprint(void **state)
{
        struct pc_vps *v = make_vps("milano", "v201"), *w = make_vps("milano", "v201"), *x = make_vps("milano", "v202");
        struct pc_exception e = { .id = 1, .until = NOW + 3600 }, f = { .id = 2 };
        struct nft_elems scratch = { 0 };
        struct nft_state st = { 0x12345678, 0x0123456789abcdefull };
        struct strbuf b = { 0 };
        uint64_t fv, fw, fx, later;
        size_t n, n_later;

        snprintf(e.service, sizeof(e.service), "smtp");
        snprintf(f.service, sizeof(f.service), "vpn");
        assert_int_equal(pc_vps_add_exception(v, &e), 0);
        assert_int_equal(pc_vps_add_exception(v, &f), 0);
        assert_int_equal(pc_vps_add_exception(w, &f), 0);
        assert_int_equal(pc_vps_add_exception(w, &e), 0);
        assert_int_equal(nft_vps_fingerprint(cfg, v, NOW, &scratch, &fv, &n), 0);
        assert_int_equal(n, 7); /* both maps, vps, antispoof, any_link_local, two exemptions */
        assert_int_equal(nft_vps_fingerprint(cfg, v, NOW + 7200, &scratch, &later, &n_later), 0);
        assert_true(later == fv);
        assert_int_equal(n_later, 6); /* the smtp exemption ended */
        assert_int_equal(nft_vps_fingerprint(cfg, w, NOW, &scratch, &fw, &n), 0);
        assert_true(fw == fv);
        assert_int_equal(nft_vps_fingerprint(cfg, x, NOW, &scratch, &fx, &n), 0);
        assert_true(fx != fv);
        {
                /* without exceptions or filters, the sum of its elements'
                 * hashes at any time, which a cold start takes as it builds
                 * them (desired_elements) */
                struct nft_elems els = { 0 };

                assert_int_equal(nft_vps_elements(cfg, x, NOW, &els), 0);
                assert_int_equal(els.n, n);
                assert_true(nft_elems_hash_sum(&els, 0) == fx);
                /* with an exception ended, not: those are taken at time 0 */
                assert_int_equal(nft_vps_elements(cfg, v, NOW + 7200, &els), 0);
                assert_true(nft_elems_hash_sum(&els, n) != fv);
                nft_elems_free(&els);
        }
        w->exceptions[0].until = NOW + 60; /* another lifetime */
        assert_int_equal(nft_vps_fingerprint(cfg, w, NOW, &scratch, &fw, &n), 0);
        assert_true(fw != fv);
        snprintf(x->iface, sizeof(x->iface), "v 1");
        assert_int_equal(nft_vps_fingerprint(cfg, x, NOW, &scratch, &fx, &n), -EINVAL);
        assert_true(nft_fingerprint_base(cfg) != 0);

        nft_state_commands("portcullis", &st, &b);
        assert_string_equal(strbuf_str(&b), "flush set inet portcullis state\n"
                                            "add element inet portcullis state { 0x12345678 . 0x01234567 . 0x89abcdef }\n");
        strbuf_free(&b);
        nft_elems_free(&scratch);
        pc_vps_free(v);
        pc_vps_free(w);
        pc_vps_free(x);
}

/* Grouping in place (cycles of a permutation) over many elements and
 * sets: each set's elements together, sets in the order they first came,
 * each set's elements in their order, none lost. */
static void test_group_many(void **state)
{
        enum { N = 20000, SETS = 7 };
        struct nft_elems e = { 0 };
        struct nft_elem x = { .family = "inet" };
        unsigned seed = 12345, first[SETS], n_first = 0, count[SETS] = { 0 };

        for (size_t i = 0; i < N; i++) {
                unsigned k;

                seed = seed * 1103515245u + 12345u;
                k = (seed >> 16) % SETS;
                snprintf(x.set, sizeof(x.set), "set%u", k);
                snprintf(x.key, sizeof(x.key), "%zu", i);
                snprintf(x.family, sizeof(x.family), "%s", k == 3 ? "bridge" : "inet");
                if (count[k]++ == 0)
                        first[n_first++] = k;
                assert_int_equal(nft_elems_push(&e, &x), 0);
        }
        assert_int_equal(nft_elems_group(&e), 0);
        assert_int_equal(e.n, N);
        for (size_t i = 0, at = 0; i < n_first; i++) {
                char want[16];

                snprintf(want, sizeof(want), "set%u", first[i]);
                for (size_t j = 0; j < count[first[i]]; j++, at++) {
                        assert_string_equal(e.v[at].set, want);
                        if (j > 0)
                                assert_true(strtoul(e.v[at - 1].key, NULL, 10) < strtoul(e.v[at].key, NULL, 10));
                }
        }
        nft_elems_free(&e);
}

/* Grouping keeps each set's elements in their order; reconciling the
 * kernel's elements with the wanted ones, neither sorted, finds what
 * nft_elems_diff() finds on sorted lists, lifetimes within the slack kept. */
static void test_group_and_reconcile(void **state)
{
        struct nft_elems have = { 0 }, want = { 0 }, del = { 0 }, add = { 0 };
        static const char *const sets[] = { "vps", "src4", "vps", "vps_out", "src4", "vps" };
        struct nft_elem x = { .family = "inet" };

        for (size_t i = 0; i < PC_ARRAY_SIZE(sets); i++) {
                snprintf(x.set, sizeof(x.set), "%s", sets[i]);
                snprintf(x.key, sizeof(x.key), "\"v%zu\"", i);
                assert_int_equal(nft_elems_push(&want, &x), 0);
        }
        assert_int_equal(nft_elems_group(&want), 0);
        assert_int_equal(want.n, 6);
        assert_string_equal(want.v[0].key, "\"v0\"");
        assert_string_equal(want.v[1].key, "\"v2\"");
        assert_string_equal(want.v[2].key, "\"v5\"");
        assert_string_equal(want.v[3].set, "src4");
        assert_string_equal(want.v[4].key, "\"v4\"");
        assert_string_equal(want.v[5].set, "vps_out");

        /* the kernel: v0 as wanted, v2 with a lifetime 1 s off (kept), v5
         * missing, v4 with another value, v9 extra, in another order */
        for (size_t i = 0; i < want.n; i++) {
                x = want.v[want.n - 1 - i];
                if (strcmp(x.key, "\"v5\"") == 0)
                        continue;
                if (strcmp(x.key, "\"v2\"") == 0)
                        x.until = 1;
                if (strcmp(x.key, "\"v4\"") == 0)
                        snprintf(x.value, sizeof(x.value), "jump p0_out");
                assert_int_equal(nft_elems_push(&have, &x), 0);
        }
        snprintf(x.key, sizeof(x.key), "\"v9\"");
        assert_int_equal(nft_elems_push(&have, &x), 0);
        want.v[1].until = 2;
        assert_int_equal(nft_elems_reconcile(&have, &want, 2, &del, &add), 0);
        assert_int_equal(add.n, 2); /* v5; v4 with its value */
        assert_int_equal(del.n, 2); /* v4 with the wrong value; v9 */
        assert_string_equal(add.v[0].key, "\"v5\"");
        assert_string_equal(add.v[1].key, "\"v4\"");
        assert_string_equal(add.v[1].value, "");
        assert_string_equal(del.v[0].key, "\"v4\"");
        assert_string_equal(del.v[1].key, "\"v9\"");
        nft_elems_free(&del);
        nft_elems_free(&add);
        want.v[1].until = 5; /* 4 s off: replaced */
        assert_int_equal(nft_elems_reconcile(&have, &want, 2, &del, &add), 0);
        assert_int_equal(add.n, 3);
        nft_elems_free(&have);
        nft_elems_free(&want);
        nft_elems_free(&del);
        nft_elems_free(&add);
}

/* The field a key's type or typeof names. */
static int field_of(const char *word)
{
        static const char *const names[] = { "ifname", "ipv4_addr", "ipv6_addr", "inet_proto", "inet_service",
                                             "ether_addr", "@th,208,48", "@th,64,128" };

        if (strcmp(word, "iifname") == 0)
                return NFT_F_IFNAME;
        for (size_t i = 0; i < PC_ARRAY_SIZE(names); i++)
                if (strcmp(word, names[i]) == 0)
                        return (int)i;
        return -1;
}

/* Every set of the skeleton (the bridged config: both tables, every
 * per-VPS set) that nft_set_layout() knows is declared as it says, and
 * every set it holds elements in (nft_vps_elements) is one it knows. */
static void test_set_layouts(void **state)
{
        struct pc_config *bc;
        struct strbuf b = { 0 };
        char err[1024];
        const char *family = "inet";
        size_t known = 0;

        assert_int_equal(pc_config_load(PC_SOURCE_ROOT "/tests/golden/ok/bridged.yaml", &bc, err, sizeof(err)), 0);
        nft_skeleton(bc, &b);
        for (const char *line = strbuf_str(&b); line != NULL && *line != '\0';) {
                const char *end = strchr(line, '\n');
                char name[64], decl[256] = "", flags[128] = "";
                struct nft_set_layout l;
                bool map;

                if (strncmp(line, "table bridge", 12) == 0)
                        family = "bridge";
                map = strncmp(line, "\tmap ", 5) == 0;
                if ((map || strncmp(line, "\tset ", 5) == 0) && sscanf(line + 5, "%63s", name) == 1 &&
                    nft_set_layout(family, name, &l)) {
                        /* the declaration's next lines: type/typeof, flags */
                        for (const char *n = end + 1; strncmp(n, "\t\t", 2) == 0; n = strchr(n, '\n') + 1) {
                                if (sscanf(n, "\t\ttypeof %255[^\n]", decl) == 1 || sscanf(n, "\t\ttype %255[^\n]", decl) == 1)
                                        continue;
                                sscanf(n, "\t\tflags %127[^\n]", flags);
                        }
                        assert_int_equal(map, l.map);
                        assert_int_equal(strstr(flags, "interval") != NULL, l.interval);
                        assert_int_equal(strstr(flags, "timeout") != NULL, l.timeout);
                        if (map)
                                *strstr(decl, " : verdict") = '\0';
                        {
                                unsigned k = 0;
                                char *save = NULL;

                                for (char *w = strtok_r(decl, " .", &save); w != NULL; w = strtok_r(NULL, " .", &save)) {
                                        assert_true(k < l.n_fields);
                                        assert_int_equal(field_of(w), l.fields[k++]);
                                }
                                assert_int_equal(k, l.n_fields);
                        }
                        known++;
                }
                line = end != NULL ? end + 1 : NULL;
        }
        assert_true(known > 40);
        strbuf_free(&b);
        {
                struct pc_vps *v;
                struct nft_elems out = { 0 };
                struct pc_prefix a4 = { .family = AF_INET, .len = 29, .bytes = { 198, 51, 100, 8 } };
                struct pc_prefix a6 = { .family = AF_INET6, .len = 56, .bytes = { 0x20, 0x01, 0x0d, 0xb8, 3 } };
                struct pc_filter f = { .id = 2, .direction = PC_DIR_EGRESS | PC_DIR_INGRESS, .scope = PC_SCOPE_PORTS,
                                       .ports = { PC_PROTO_UDP, 53, 53 } };
                struct pc_exception e = { .id = 1 };

                for (int bridged = 0; bridged < 2; bridged++) {
                        assert_int_equal(pc_vps_new(&v), 0);
                        snprintf(v->id, sizeof(v->id), "vps-301");
                        snprintf(v->iface, sizeof(v->iface), "b301");
                        v->site = pc_config_site(bc, bridged ? "lenoir-bridged" : "lenoir");
                        assert_non_null(v->site);
                        assert_int_equal(pc_vps_add_addr(v, &a4), 0);
                        assert_int_equal(pc_vps_add_addr(v, &a6), 0);
                        assert_int_equal(pc_vps_add_filter(v, &f), 0);
                        snprintf(e.service, sizeof(e.service), "smtp");
                        assert_int_equal(pc_vps_add_exception(v, &e), 0);
                        v->mac[0] = 2;
                        v->has_mac = bridged;
                        v->suspended = true;
                        assert_int_equal(nft_vps_elements(bc, v, NOW, &out), 0);
                        for (size_t i = 0; i < out.n; i++)
                                assert_true(nft_set_layout(out.v[i].family, out.v[i].set, &(struct nft_set_layout){ 0 }));
                        nft_elems_free(&out);
                        pc_vps_free(v);
                }
        }
        pc_config_free(bc);
}

/* The verdict counters of <text>, the whole ruleset: in each table, every
 * counter a rule names is declared there and documented in docs/API.md;
 * every rule that drops is counted by one; no anonymous counter is left. */
static void check_verdicts(const char *text, const char *api)
{
        const char *bridge = strstr(text, "\ntable bridge ");
        size_t declared = 0;

        assert_non_null(bridge);
        for (const char *p = text; (p = strstr(p, "counter name \"verdict_")) != NULL; p++) {
                char name[64], decl[80];
                bool in_bridge = p > bridge;
                const char *table = in_bridge ? bridge : text, *end = in_bridge ? text + strlen(text) : bridge;
                const char *d;

                assert_int_equal(sscanf(p, "counter name \"%63[a-z_]\"", name), 1);
                snprintf(decl, sizeof(decl), "\tcounter %s {\n", name);
                d = strstr(table, decl);
                assert_true(d != NULL && d < end);
        }
        for (const char *p = text; (p = strstr(p, "\tcounter verdict_")) != NULL; p++) {
                char reason[64], doc[80];

                assert_int_equal(sscanf(p, "\tcounter verdict_%63[a-z_]", reason), 1);
                snprintf(doc, sizeof(doc), "`%s`", reason);
                if (strstr(api, doc) == NULL)
                        fail_msg("verdict reason %s is not in docs/API.md", reason);
                declared++;
        }
        assert_true(declared >= 20);
        for (const char *line = text, *prev = ""; *line != '\0';) {
                const char *nl = strchr(line, '\n');
                size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);
                char l[1024];

                snprintf(l, sizeof(l), "%.*s", (int)len, line);
                /* the bridge table's marks are counted there, not where the
                 * inet table carries them out; a blocked service is counted
                 * with its attempt, the rule before its verdict */
                if (len >= 4 && strcmp(l + len - 4, "drop") == 0 && strstr(l, "vmap") == NULL &&
                    strstr(l, "counter name \"verdict_") == NULL &&
                    strncmp(prev, "\t\tupdate @attempts_", strlen("\t\tupdate @attempts_")) != 0)
                        fail_msg("a drop without its verdict counter: %s", l);
                assert_null(strstr(l, "counter drop"));
                assert_null(strstr(l, "counter meta mark"));
                prev = line;
                line += len + (nl != NULL);
        }
}

static void test_verdict_counters(void **state)
{
        static char api[256 * 1024];
        struct pc_config *bc;
        struct strbuf b = { 0 };
        char err[1024];
        FILE *f = fopen(PC_SOURCE_ROOT "/docs/API.md", "r");
        size_t n;

        assert_non_null(f);
        n = fread(api, 1, sizeof(api) - 1, f);
        api[n] = '\0';
        fclose(f);
        nft_skeleton(cfg, &b);
        check_verdicts(strbuf_str(&b), api);
        /* the reasons a hosting engineer asked for, where they are decided */
        assert_non_null(strstr(strbuf_str(&b), "update @attempts_out { iifname . meta l4proto . th dport counter } "
                                               "counter name \"verdict_blocked_service_out\"\n"));
        assert_non_null(strstr(strbuf_str(&b), "update @attempts_in { oifname . meta l4proto . th dport counter } "
                                               "counter name \"verdict_blocked_service_in\"\n"));
        assert_non_null(strstr(strbuf_str(&b), "iifname @scan_hold counter name \"verdict_scan_hold\" drop\n"));
        assert_null(strstr(strbuf_str(&b), "verdict_bridged_routed"));
        strbuf_free(&b);
        assert_int_equal(pc_config_load(PC_SOURCE_ROOT "/tests/golden/ok/bridged.yaml", &bc, err, sizeof(err)), 0);
        nft_skeleton(bc, &b);
        check_verdicts(strbuf_str(&b), api);
        assert_non_null(strstr(strbuf_str(&b), "\tcounter verdict_bridged_routed {\n"));
        strbuf_free(&b);
        pc_config_free(bc);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_skeleton),
                cmocka_unit_test(test_skeleton_id_tracks_config),
                cmocka_unit_test(test_vps_elements),
                cmocka_unit_test(test_normalise_and_diff),
                cmocka_unit_test(test_normalise_overlaps),
                cmocka_unit_test(test_normalise_after_expiry),
                cmocka_unit_test(test_proxy_return_chains),
                cmocka_unit_test(test_nat_only_with_redirect),
                cmocka_unit_test(test_bridged),
                cmocka_unit_test(test_bridged_answers),
                cmocka_unit_test(test_fingerprint),
                cmocka_unit_test(test_set_layouts),
                cmocka_unit_test(test_group_many),
                cmocka_unit_test(test_group_and_reconcile),
                cmocka_unit_test(test_verdict_counters),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
