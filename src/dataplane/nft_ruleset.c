/* The nftables ruleset as text.  See nft_ruleset.h.
 *
 * Shape of table inet <T> (one per agent):
 *
 *   forward (hook forward, priority filter):
 *     iifname/oifname @suspended drop          both directions, whole VPS,
 *                                              even established flows
 *     numgen random mod N 0 jump sampled       one packet in N (detectors.flood.
 *                                              sample), established or not:
 *                                              rates per VPS and destination
 *                                              over the flood and reflection
 *                                              thresholds are logged
 *     ct state established,related accept      decided at the first packet
 *     @filter_out/@filter_in, @filter_ports_*   abuse filters (new flows),
 *                                              with timeouts
 *     iifname vmap @vps_out                     jump pN_out: the VPS's policy
 *     oifname vmap @vps_in                      jump pN_in
 *   pN_out:  meta l4proto . th dport vmap @pN_out_ports   -> pN_rM_out
 *   pN_rM_out: iifname @pN_rM_exempt return; count in @attempts_out; reject
 *   pN_in / pN_rM_in: the same with oifname, and drop
 *     iifname @scan_contain jump scan_contain   a new flow that got this far
 *                                              from a VPS whose policy filters
 *                                              scanners: first contacts are
 *                                              budgeted, then held back
 *   raw_prerouting (prerouting, raw): iifname vmap @antispoof -> antispoof
 *     (BCP 38, before conntrack) or, for a suspended VPS, suspended_out:
 *     one lookup of the interface of every packet in
 *     then, only with a proxy that connects from the VPS, the MX's
 *     replies to the proxy's transparent sockets are marked, to be routed
 *     locally, and those connections get their own conntrack zone (here
 *     and in proxy_out, hook output, raw)
 *   prerouting (nat): iifname vmap @vps_nat -> pN_nat: redirect to the proxy;
 *     only when some policy redirects (NAT's hooks cost every packet)
 *   The bridge table (bridge_body, bridge_policies) holds a bridged site's
 *   policy per port, its flood meters (sampled) included: the inet hooks
 *   see a bridged frame on the bridge, not on the VPS's port.
 *   bridged_established (prerouting, mangle), only with a bridged site: a
 *     frame from a bridge of an established flow is marked, for the bridge
 *     table's enforce (PC_BR_MARK_ESTABLISHED)
 *
 * A VPS is therefore a handful of set elements, never a chain or a rule. */
#include "dataplane/nft_ruleset.h"
#include "dataplane/proxy_route.h"
#include "detect/scan.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Which chains policy <p> needs. */
static bool policy_has(const struct pc_policy *p, enum pc_action action, unsigned dir)
{
        for (size_t i = 0; i < p->n_rules; i++)
                if (p->rules[i].action == action && (p->rules[i].direction & dir))
                        return true;
        return false;
}

/* The port of "host:port" or "[v6]:port". */
static unsigned listen_port(const char *listen)
{
        const char *colon = strrchr(listen, ':');

        return colon != NULL ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
}

/* "tcp . 25", "udp . 6881-6889", "gre . 0-65535" */
static void range_key(uint8_t proto, uint16_t lo, uint16_t hi, char *buf, size_t size)
{
        const char *name = pc_proto_name(proto);
        char p[16];

        if (name == NULL) {
                snprintf(p, sizeof(p), "%u", proto);
                name = p;
        }
        if (lo == hi)
                snprintf(buf, size, "%s . %u", name, lo);
        else
                snprintf(buf, size, "%s . %u-%u", name, lo, hi);
}

/* The port map of policy <pi>'s block rules in direction <dir>: "out"
 * (egress, reject) or "in" (ingress, drop).  <rev> is the same map read
 * from the other side: the rules of <dir> seen in a new flow that starts
 * the other way, the blocked flow in disguise ("rout" / "rin"). */
static void port_map(const struct pc_policy *p, size_t pi, unsigned dir, bool rev, struct strbuf *out)
{
        const char *d = dir == PC_DIR_EGRESS ? "out" : "in";
        bool first = true;

        strbuf_printf(out, "\tmap p%zu_%s%s_ports {\n\t\ttype inet_proto . inet_service : verdict\n"
                           "\t\tflags interval\n\t\telements = { ", pi, rev ? "r" : "", d);
        for (size_t r = 0; r < p->n_rules; r++) {
                const struct pc_rule *rule = &p->rules[r];
                char key[48];

                if (rule->action != PC_ACTION_BLOCK || !(rule->direction & dir))
                        continue;
                for (size_t k = 0; k < rule->n_ports; k++) {
                        range_key(rule->ports[k].proto, rule->ports[k].lo, rule->ports[k].hi, key, sizeof(key));
                        strbuf_printf(out, "%s%s : jump p%zu_r%zu_%s%s", first ? "" : ",\n\t\t\t", key, pi, r,
                                      rev ? "r" : "", d);
                        first = false;
                }
                for (size_t k = 0; k < rule->n_ip_protos; k++) {
                        range_key(rule->ip_protos[k], 0, 65535, key, sizeof(key));
                        strbuf_printf(out, "%s%s : jump p%zu_r%zu_%s%s", first ? "" : ",\n\t\t\t", key, pi, r,
                                      rev ? "r" : "", d);
                        first = false;
                }
        }
        strbuf_printf(out, " }\n\t}\n");
}

/* How a chain ends a blocked flow: in the inet table by rejecting or
 * dropping it; in the bridge table by marking the frame with that verdict
 * for the inet table (PC_BR_MARK_*), which carries it out unless the flow
 * is established. */
#define BR_VERDICT(mark) "meta mark set " mark " accept"

/* The named counter of a verdict's reason (NFT_VERDICT_PREFIX), in the rule
 * that decides it, where an anonymous counter would be: the same per-cpu
 * addition, readable without listing the ruleset.  VERDICT_FMT takes the
 * reason in two strings ("filter_", "out"). */
#define VERDICT(reason) "counter name \"" NFT_VERDICT_PREFIX reason "\""
#define VERDICT_FMT "counter name \"" NFT_VERDICT_PREFIX "%s%s\""

/* The reasons each table counts, declared first in it: a fixed set, so
 * that a reason the config does not use reads 0 rather than missing (but
 * bridged_routed, only with a bridged site, as its chains). */
static const char *const inet_verdicts[] = {
        "suspended_out", "suspended_in", "spoof",     "invalid",      "filter_out",   "filter_in",
        "blocked_service_out", "blocked_service_in", "scan_hold", "proxy_bypass", "smtp_proxied",
};
static const char *const bridge_verdicts[] = {
        "suspended_out", "suspended_in", "spoof", "spoof_answer", "ethertype",
        "filter_out", "filter_in", "blocked_service_out", "blocked_service_in", "proxy_bypass", "scan_hold",
};

/* The declarations of the <n> counters <reasons>. */
static void verdict_counters(const char *const *reasons, size_t n, struct strbuf *out)
{
        for (size_t i = 0; i < n; i++)
                strbuf_printf(out, "\tcounter " NFT_VERDICT_PREFIX "%s {\n\t}\n", reasons[i]);
}

/* An IPv6 address's /64, the key of the _64 sets: a VPS's prefix is a /64
 * as a rule, and a hash set of 100,000 of them builds in a fraction of the
 * time an interval set takes (BENCHMARKS.md, "Programming and restart"). */
#define MASK64 "& ffff:ffff:ffff:ffff::"

/* Whether some site of <cfg> gives every VPS an element in set <set> of
 * table <family>: tried on a VPS of each site as most are (a MAC, an IPv4
 * address, an IPv6 /64, no exception, not suspended).  Only those sets
 * are sized with agent.max-vps: a fixed-size hash's buckets are allocated
 * whole when the set is made (2 MiB a set at max-vps 131,072, 8 MiB a
 * source set), and a config's sets that hold few elements (suspended,
 * any_mac) or none (the bridge table's at a routed site) took 80 MiB
 * of them and about 0.4 s of every skeleton at that size (BENCHMARKS.md). */
static bool set_dense(const struct pc_config *cfg, const char *family, const char *set)
{
        struct pc_prefix addrs[2] = { { .family = AF_INET, .len = 32, .bytes = { 192, 0, 2, 1 } },
                                      { .family = AF_INET6, .len = 64, .bytes = { 0x20, 0x01, 0x0d, 0xb8 } } };
        struct nft_elems e = { 0 };
        bool dense = false;

        for (size_t i = 0; i < cfg->n_sites && !dense; i++) {
                struct pc_vps v = { .site = &cfg->sites[i], .has_mac = true, .mac = { 2, 0, 0, 0, 0, 1 },
                                    .addrs = addrs, .n_addrs = PC_ARRAY_SIZE(addrs) };

                snprintf(v.iface, sizeof(v.iface), "pc0");
                e.n = 0;
                /* out of memory: sized, as every such set was before, so
                 * that the skeleton (and its id) cannot turn on a failed
                 * malloc of a few elements */
                if (nft_vps_elements(cfg, &v, 0, &e) < 0) {
                        dense = true;
                        break;
                }
                for (size_t k = 0; k < e.n && !dense; k++)
                        dense = strcmp(e.v[k].set, set) == 0 &&
                                strcmp(e.v[k].family[0] != '\0' ? e.v[k].family : "inet", family) == 0;
        }
        nft_elems_free(&e);
        return dense;
}

/* "\t\tsize N\n" for set <set> of table <family> if agent.max-vps sizes it
 * (nft_set_limit), "" otherwise: the kernel then gives it its fixed-size
 * hash, which it fills about three times as fast as the resizable one
 * (inserting into resizable sets was 1.7 s of the 2.7 s that programming
 * 100,000 VPSes took; BENCHMARKS.md, "Programming and restart at scale").
 * The size is a hard limit (DATAPLANE.md).  Two buffers, one per size
 * (N and 4N are the only two), so that one printf can take several. */
static const char *vps_size(const struct pc_config *cfg, const char *family, const char *set)
{
        static _Thread_local char buf[2][32];
        unsigned n = nft_set_limit(cfg, family, set);
        char *b = buf[n > cfg->agent.max_vps];

        if (n == 0)
                return "";
        snprintf(b, sizeof(buf[0]), "\t\tsize %u\n", n);
        return b;
}

/* The hash sets of the VPSes' sources (src4, src6, src6_64), with
 * agent.max-vps: sized if dense (vps_size), and no timeouts either way
 * (the fixed-size hash has none): what ends in time goes to the _net sets
 * (addr_set).  Without it, resizable and with timeouts, as before. */
static const char *addr_set_opts(const struct pc_config *cfg, const char *family, const char *set)
{
        if (cfg->agent.max_vps == 0)
                return "\t\tflags timeout\n";
        return vps_size(cfg, family, set);
}

unsigned nft_set_limit(const struct pc_config *cfg, const char *family, const char *set)
{
        static const char *const per_vps[] = {
                "vps",     "suspended", "antispoof", "spoof_report", "any_link_local", "scan_contain", "any_mac",
                "mac",     "nd_lladdr", "vps_out",   "vps_in",       "vps_nat",        "vps_proxied",
        };
        bool src = strcmp(set, "src4") == 0 || strcmp(set, "src6") == 0 || strcmp(set, "src6_64") == 0;
        bool one = false;

        if (cfg->agent.max_vps == 0)
                return 0;
        for (size_t i = 0; i < PC_ARRAY_SIZE(per_vps) && !one; i++)
                one = strcmp(set, per_vps[i]) == 0;
        if (!(one || src) || !set_dense(cfg, family[0] != '\0' ? family : "inet", set))
                return 0;
        return src ? NFT_ADDRS_PER_VPS * cfg->agent.max_vps : cfg->agent.max_vps;
}

/* The target of a neighbour solicitation or advertisement is none of the
 * bridge port's own: its whole addresses, its /64s, its other prefixes. */
#define NA_TARGET_NOT_OWN                                                                   \
        "iifname . @th,64,128 != @na_target_addr "                                          \
        "iifname . @th,64,128 & 0xffffffffffffffff0000000000000000 != @na_target_64 " \
        "iifname . @th,64,128 != @na_target"

/* The per-rule chains of policy <pi>'s block rules in direction <dir>, for
 * the inet table or (<bridged>) the bridge table. */
static void rule_chains(const struct pc_policy *p, size_t pi, unsigned dir, bool bridged, struct strbuf *out)
{
        const char *d = dir == PC_DIR_EGRESS ? "out" : "in";
        const char *ifkey = dir == PC_DIR_EGRESS ? "iifname" : "oifname";
        const char *revkey = dir == PC_DIR_EGRESS ? "oifname" : "iifname";

        for (size_t r = 0; r < p->n_rules; r++) {
                const struct pc_rule *rule = &p->rules[r];

                if (rule->action != PC_ACTION_BLOCK || !(rule->direction & dir))
                        continue;
                strbuf_printf(out, "\tchain p%zu_r%zu_%s {\n", pi, r, d);
                strbuf_printf(out, "\t\tcomment \"policy %s rule %zu: %s %s\"\n", p->name, r + 1,
                              rule->service->name, pc_dir_name(dir));
                if (rule->exemptable)
                        strbuf_printf(out, "\t\t%s @p%zu_r%zu_exempt return\n", ifkey, pi, r);
                /* one rule: the named counter adds no lookup */
                strbuf_printf(out, "\t\tupdate @attempts_%s { %s . meta l4proto . th dport counter } " VERDICT_FMT "\n",
                              d, ifkey, "blocked_service_", d);
                if (bridged)
                        strbuf_printf(out, "\t\t%s\n\t}\n",
                                      dir == PC_DIR_EGRESS ? BR_VERDICT(PC_BR_MARK_REJECT) : BR_VERDICT(PC_BR_MARK_DROP));
                else if (dir == PC_DIR_EGRESS)
                        strbuf_printf(out, "\t\tmeta l4proto tcp reject with tcp reset\n"
                                           "\t\treject with icmpx admin-prohibited\n\t}\n");
                else
                        strbuf_printf(out, "\t\tdrop\n\t}\n");
                /* The same flow in disguise: its first packet went the other
                 * way, so that the blocked one would pass as its reply. */
                strbuf_printf(out, "\tchain p%zu_r%zu_r%s {\n", pi, r, d);
                strbuf_printf(out, "\t\tcomment \"policy %s rule %zu: %s %s, first packet the other way\"\n",
                              p->name, r + 1, rule->service->name, pc_dir_name(dir));
                if (rule->exemptable)
                        strbuf_printf(out, "\t\t%s @p%zu_r%zu_exempt return\n", revkey, pi, r);
                strbuf_printf(out, "\t\t" VERDICT_FMT " %s\n\t}\n", "blocked_service_", d,
                              bridged ? BR_VERDICT(PC_BR_MARK_DROP) : "drop");
        }
}

/* The chains a VPS of policy <pi> jumps to for a new flow: pN_out for what
 * it sends, pN_in for what it receives.  Each checks the flow's tuple both
 * ways: by destination port against the rules of its own direction, and by
 * source port against the rules of the other direction. */
static void policy_chains(const struct pc_policy *p, size_t pi, bool bridged, struct strbuf *out)
{
        bool out_rules = policy_has(p, PC_ACTION_BLOCK, PC_DIR_EGRESS);
        bool in_rules = policy_has(p, PC_ACTION_BLOCK, PC_DIR_INGRESS);

        if (!out_rules && !in_rules)
                return;
        if (out_rules) {
                port_map(p, pi, PC_DIR_EGRESS, false, out);
                port_map(p, pi, PC_DIR_EGRESS, true, out);
                rule_chains(p, pi, PC_DIR_EGRESS, bridged, out);
        }
        if (in_rules) {
                port_map(p, pi, PC_DIR_INGRESS, false, out);
                port_map(p, pi, PC_DIR_INGRESS, true, out);
                rule_chains(p, pi, PC_DIR_INGRESS, bridged, out);
        }
        strbuf_printf(out, "\tchain p%zu_out {\n", pi);
        if (out_rules)
                strbuf_printf(out, "\t\tmeta l4proto . th dport vmap @p%zu_out_ports\n", pi);
        if (in_rules)
                strbuf_printf(out, "\t\tmeta l4proto . th sport vmap @p%zu_rin_ports\n", pi);
        strbuf_printf(out, "\t}\n\tchain p%zu_in {\n", pi);
        if (in_rules)
                strbuf_printf(out, "\t\tmeta l4proto . th dport vmap @p%zu_in_ports\n", pi);
        if (out_rules)
                strbuf_printf(out, "\t\tmeta l4proto . th sport vmap @p%zu_rout_ports\n", pi);
        strbuf_printf(out, "\t}\n");
}

/* True if some policy redirects a port to an SMTP proxy. */
static bool proxy_needed(const struct pc_config *cfg)
{
        for (size_t pi = 0; pi < cfg->n_policies; pi++)
                if (policy_has(&cfg->policies[pi], PC_ACTION_REDIRECT, PC_DIR_EGRESS))
                        return true;
        return false;
}

/* The ports policies redirect to an SMTP proxy (only those whose proxy
 * connects from the VPS if <route_only>: the MX's ports, for the proxy's
 * return path), merged: "25" or "{ 25, 465-587 }". */
static void redirect_ports(const struct pc_config *cfg, bool route_only, struct strbuf *out)
{
        uint8_t on[65536 / 8] = { 0 };
        unsigned n = 0;

        for (size_t pi = 0; pi < cfg->n_policies; pi++) {
                const struct pc_policy *p = &cfg->policies[pi];

                if (route_only && !pc_policy_proxy_from_vps(p))
                        continue;
                for (size_t r = 0; r < p->n_rules; r++)
                        for (size_t k = 0; p->rules[r].action == PC_ACTION_REDIRECT && k < p->rules[r].n_ports; k++)
                                for (unsigned port = p->rules[r].ports[k].lo; port <= p->rules[r].ports[k].hi; port++)
                                        on[port / 8] |= (uint8_t)(1u << (port % 8));
        }
        /* Twice: count the ranges (braces for more than one), then write. */
        for (int pass = 0; pass < 2; pass++) {
                unsigned i = 0, lo = 0;

                if (pass == 1 && n > 1)
                        strbuf_printf(out, "{ ");
                for (unsigned port = 0; port <= 65536; port++) {
                        bool set = port < 65536 && (on[port / 8] & (1u << (port % 8)));
                        bool prev = port > 0 && (on[(port - 1) / 8] & (1u << ((port - 1) % 8)));

                        if (set && !prev)
                                lo = port;
                        if (set || !prev)
                                continue;
                        if (pass == 0) {
                                n++;
                                continue;
                        }
                        strbuf_printf(out, "%s%u", i++ == 0 ? "" : ", ", lo);
                        if (port - 1 != lo)
                                strbuf_printf(out, "-%u", port - 1);
                }
                if (pass == 1 && n > 1)
                        strbuf_printf(out, " }");
        }
}

/* The SMTP proxy connects to the MX from the VPS's address, so the MX's
 * replies, addressed to the VPS, belong to a local transparent socket:
 * marked in raw_prerouting (proxy_return_rule), an ip rule routes them to
 * the local table instead of to the VPS (proxy_route.h).  Both directions
 * of those connections are tracked in their own conntrack zone, where they
 * cannot be mistaken for the VPS's redirected connection to the same MX:
 * proxy_out sets it for the proxy's own packets.  Priority raw: the zone
 * must be set before conntrack (the mark only matters at the routing
 * decision, later).  Only when a policy needs it, so that a config without
 * such a proxy keeps its table; and only for the MX's ports, so that other
 * forwarded traffic costs no socket lookup. */
static void proxy_chains(const struct pc_config *cfg, struct strbuf *out)
{
        if (!pc_proxy_route_needed(cfg))
                return;
        strbuf_printf(out, "\tchain proxy_out {\n"
                           "\t\ttype filter hook output priority raw; policy accept;\n"
                           "\t\ttcp dport ");
        redirect_ports(cfg, true, out);
        strbuf_printf(out, " socket transparent 1 ct zone set " PC_PROXY_CT_ZONE_STR "\n"
                           "\t}\n");
}

/* The MX's replies to the proxy's transparent sockets (proxy_chains), in
 * raw_prerouting after the sender's check rather than in a base chain of
 * their own at the same hook: a second base chain there cost every packet
 * in ~30-50 ns (docs/BENCHMARKS.md, step 12).  A VPS's packet reaches it
 * only once anti-spoofing let it through. */
static void proxy_return_rule(const struct pc_config *cfg, struct strbuf *out)
{
        if (!pc_proxy_route_needed(cfg))
                return;
        strbuf_printf(out, "\t\ttcp sport ");
        redirect_ports(cfg, true, out);
        strbuf_printf(out, " socket transparent 1 ct zone set " PC_PROXY_CT_ZONE_STR
                           " meta mark set " PC_PROXY_FWMARK_STR "\n");
}

/* "tcp dport 25 iifname vmap @vps_proxied": a packet of a proxied port
 * (<port> "dport" or "sport") to or from the VPS behind <ifkey> goes to its
 * policy's pN_proxied chain.  Nothing if no policy has a proxy. */
static void proxied_guard_vmap(const struct pc_config *cfg, const char *port, const char *ifkey, const char *map,
                               struct strbuf *out)
{
        if (!proxy_needed(cfg))
                return;
        strbuf_printf(out, "\t\ttcp %s ", port);
        redirect_ports(cfg, false, out);
        strbuf_printf(out, " %s vmap @%s\n", ifkey, map);
}

static void proxied_guard(const struct pc_config *cfg, const char *port, const char *ifkey, struct strbuf *out)
{
        proxied_guard_vmap(cfg, port, ifkey, "vps_proxied", out);
}

/* Established flows pass on conntrack's word; only ICMP errors may be
 * "related" (no conntrack helper is assigned). */
#define CT_DECIDED                                \
        "\t\tct state established accept\n" \
        "\t\tct state related meta l4proto { icmp, ipv6-icmp } accept\n"

/* pN_proxied: a packet of a proxied port between a VPS of policy <pi> and
 * anyone, in the forward path -- never the proxy's: its connections are
 * local.  It can only be a way around the proxy (a connection opened before
 * the VPS was registered, a "reply" to a forged packet, or one conntrack
 * calls invalid and NAT therefore skips), unless the VPS is exempted. */
static void proxied_chain(const struct pc_policy *p, size_t pi, struct strbuf *out)
{
        strbuf_printf(out, "\tchain p%zu_proxied {\n", pi);
        for (size_t r = 0; r < p->n_rules; r++) {
                const struct pc_rule *rule = &p->rules[r];

                if (rule->action != PC_ACTION_REDIRECT)
                        continue;
                for (size_t k = 0; k < rule->n_ports; k++) {
                        char ports[16];

                        snprintf(ports, sizeof(ports), "%u", rule->ports[k].lo);
                        if (rule->ports[k].hi != rule->ports[k].lo)
                                snprintf(ports, sizeof(ports), "%u-%u", rule->ports[k].lo, rule->ports[k].hi);
                        for (int side = 0; side < 2; side++) {
                                const char *ifkey = side == 0 ? "iifname" : "oifname";

                                strbuf_printf(out, "\t\ttcp %s %s", side == 0 ? "dport" : "sport", ports);
                                if (rule->exemptable)
                                        strbuf_printf(out, " %s != @p%zu_r%zu_exempt", ifkey, pi, r);
                                strbuf_printf(out, " " VERDICT("proxy_bypass") " drop\n");
                        }
                }
        }
        strbuf_printf(out, "\t}\n");
}

/* The abuse filters of a new flow, checked both ways round: one that
 * starts towards the VPS from a filtered port is the VPS's own filtered
 * flow in disguise, and the reverse.  In the bridge table (<bridged>) they
 * mark the frame for the inet table. */
static void filter_checks(bool bridged, struct strbuf *out)
{
        /* each counted as the filter's direction (its verdict counter) */
        static const struct {
                const char *match;
                const char *dir;
        } checks[] = {
                { "iifname @filter_out", "out" },
                { "oifname @filter_in", "in" },
                /* A whole-VPS outbound filter: a new flow towards the VPS
                 * could be its own in disguise, and for datagrams nothing
                 * tells the two apart (TCP's handshake does, and ICMP
                 * errors and echo replies carry nothing worth sending). */
                { "meta l4proto != { tcp, icmp, ipv6-icmp } oifname @filter_out", "out" },
                { "iifname . meta l4proto . th dport @filter_ports_out", "out" },
                { "oifname . meta l4proto . th sport @filter_ports_out", "out" },
                { "oifname . meta l4proto . th dport @filter_ports_in", "in" },
                { "iifname . meta l4proto . th sport @filter_ports_in", "in" },
        };

        for (size_t i = 0; i < PC_ARRAY_SIZE(checks); i++)
                strbuf_printf(out, "\t\t%s " VERDICT_FMT " %s\n", checks[i].match, "filter_", checks[i].dir,
                              bridged ? BR_VERDICT(PC_BR_MARK_DROP) : "drop");
}

/* The inet side of bridged enforcement, first in the forward and input
 * chains: a frame the bridge table marked was decided there (none of the
 * routed rules below can match it: its interfaces are the bridge's). */
#define BRIDGED_FIRST(chain) "\t\tmeta mark & 0xffffff00 == " PC_BR_MARK_VPS " jump " chain "\n"

/* ... and what it does: the bridge table's verdict for a frame that is not
 * part of an established flow (see PC_BR_MARK_*). */
static void bridged_chains(struct strbuf *out)
{
        strbuf_printf(out, "\tchain bridged {\n" CT_DECIDED
                           "\t\tmeta mark vmap { " PC_BR_MARK_VPS " : jump bridged_vps, " PC_BR_MARK_HOST
                           " : jump bridged_vps, " PC_BR_MARK_REJECT " : jump bridged_reject, " PC_BR_MARK_DROP
                           " : drop }\n"
                           "\t\taccept\n\t}\n"
                           /* The forward hook's: what a VPS port sent up to the
                            * hypervisor is for the hypervisor, never for it to
                            * route.  A VPS that made it its next hop (a route
                            * via its address) passed no filter and no scan
                            * containment, which only judge what the bridge
                            * forwards (lab/hostile/bridged_via_hypervisor). */
                           "\tchain bridged_forward {\n" CT_DECIDED
                           "\t\tmeta mark vmap { " PC_BR_MARK_VPS " : jump bridged_vps, " PC_BR_MARK_HOST
                           " : jump bridged_host_routed, " PC_BR_MARK_REJECT " : jump bridged_reject, " PC_BR_MARK_DROP
                           " : drop }\n"
                           "\t\taccept\n\t}\n"
                           "\tchain bridged_host_routed {\n\t\t" VERDICT("bridged_routed") " drop\n\t}\n"
                           /* A flow a VPS port's frame opened is marked for
                            * good: when the provider's router brings its
                            * packets back to the hypervisor (the VPS talking to
                            * the hypervisor's own address through its gateway)
                            * they are not forgeries (BRIDGED_ROUTED). */
                           "\tchain bridged_vps {\n\t\tct state invalid " VERDICT("invalid") " drop\n"
                           "\t\tct state new ct mark set " PC_BR_MARK_VPS "\n\t}\n"
                           "\tchain bridged_reject {\n"
                           "\t\tmeta l4proto tcp reject with tcp reset\n"
                           "\t\treject with icmpx admin-prohibited\n\t}\n"
                           "\tchain bridged_routed {\n"
                           "\t\tip daddr @bridged4 " VERDICT("bridged_routed") " drop\n"
                           "\t\tip daddr @bridged4_net " VERDICT("bridged_routed") " drop\n"
                           "\t\tip6 daddr @bridged6 " VERDICT("bridged_routed") " drop\n"
                           "\t\tip6 daddr " MASK64 " @bridged6_64 " VERDICT("bridged_routed") " drop\n"
                           "\t\tip6 daddr @bridged6_net " VERDICT("bridged_routed") " drop\n"
                           "\t\tjump bridged_forged\n\t}\n"
                           "\tchain bridged_forged {\n"
                           "\t\tip saddr @bridged4 " VERDICT("bridged_routed") " drop\n"
                           "\t\tip saddr @bridged4_net " VERDICT("bridged_routed") " drop\n"
                           "\t\tip6 saddr @bridged6 " VERDICT("bridged_routed") " drop\n"
                           "\t\tip6 saddr " MASK64 " @bridged6_64 " VERDICT("bridged_routed") " drop\n"
                           "\t\tip6 saddr @bridged6_net " VERDICT("bridged_routed") " drop\n\t}\n");
}

/* The bridge table judges only what the bridge forwards, and what a VPS port
 * sends up to the hypervisor (marked PC_BR_MARK_HOST).  A frame sent to the
 * hypervisor's own MAC from anywhere else is routed (or delivered locally)
 * unjudged: if that packet is to a bridged VPS's address (routed back onto
 * the bridge through its output hook, never its forward hook) or from one (a
 * forgery), it would plant conntrack state that the VPS's frames then ride
 * as "established".  A new flow of that kind is dropped, after the
 * established shortcut.  Routed VPSes (checked against spoofing, and under
 * their own policy) may still reach a bridged VPS through the hypervisor. */
#define BRIDGED_ROUTED(chain) "\t\tiifname != @vps ct mark != " PC_BR_MARK_VPS " jump " chain "\n"

/* The per-VPS maps and sets of the site policies, in the inet table for
 * routed VPSes and in the bridge table for bridged ones: keyed by interface
 * (bridge port). */
static void policy_sets(const struct pc_config *cfg, const char *family, struct strbuf *out)
{
        strbuf_printf(out,
                      "\tmap vps_out {\n\t\ttype ifname : verdict\n%s\t}\n"
                      "\tmap vps_in {\n\t\ttype ifname : verdict\n%s\t}\n"
                      "\tmap vps_nat {\n\t\ttype ifname : verdict\n%s\t}\n"
                      "\tmap vps_proxied {\n\t\ttype ifname : verdict\n%s\t}\n"
                      "\tset filter_out {\n\t\ttype ifname\n\t\tflags timeout\n\t}\n"
                      "\tset filter_in {\n\t\ttype ifname\n\t\tflags timeout\n\t}\n"
                      "\tset filter_ports_out {\n\t\ttype ifname . inet_proto . inet_service\n"
                      "\t\tflags interval,timeout\n\t}\n"
                      "\tset filter_ports_in {\n\t\ttype ifname . inet_proto . inet_service\n"
                      "\t\tflags interval,timeout\n\t}\n"
                      /* blocked attempts per VPS interface, protocol and port */
                      "\tset attempts_out {\n\t\ttype ifname . inet_proto . inet_service\n\t\tsize 1048576\n"
                      "\t\tflags dynamic,timeout\n\t\ttimeout 7d\n\t}\n"
                      "\tset attempts_in {\n\t\ttype ifname . inet_proto . inet_service\n\t\tsize 1048576\n"
                      "\t\tflags dynamic,timeout\n\t\ttimeout 7d\n\t}\n",
                      vps_size(cfg, family, "vps_out"), vps_size(cfg, family, "vps_in"),
                      vps_size(cfg, family, "vps_nat"), vps_size(cfg, family, "vps_proxied"));
}

/* Policy <pi>'s exemption sets and chains, but its nat chain, which the
 * two tables write differently. */
static void policy_part(const struct pc_policy *p, size_t pi, bool bridged, struct strbuf *out)
{
        for (size_t r = 0; r < p->n_rules; r++)
                if (p->rules[r].exemptable)
                        strbuf_printf(out, "\tset p%zu_r%zu_exempt {\n\t\ttype ifname\n\t\tflags timeout\n\t}\n", pi, r);
        policy_chains(p, pi, bridged, out);
        if (policy_has(p, PC_ACTION_REDIRECT, PC_DIR_EGRESS))
                proxied_chain(p, pi, out);
}

/* True if the kernel contains the scanners of policy <p>, or of some
 * policy if NULL (pc_policy_contains_scans). */
static bool scan_contained(const struct pc_config *cfg, const struct pc_policy *p)
{
        for (size_t pi = 0; p == NULL && pi < cfg->n_policies; pi++)
                if (pc_policy_contains_scans(cfg, &cfg->policies[pi]))
                        return true;
        return p != NULL && pc_policy_contains_scans(cfg, p);
}

/* Scan containment (docs/DETECTION.md): a new flow of a VPS in
 * @scan_contain to a (destination, protocol, port) it did not reach within
 * contact-memory is a first contact.  The VPS may make hold-after of them
 * in a burst, then one a second; past that it goes on hold, logged once:
 * its first contacts are dropped (TCP retries them) until the agent,
 * seeing its contacts answered, releases it -- or finds it a scanner and
 * filters it -- or hold-timeout passes.  The agent also refills the
 * budget of a VPS whose first contacts are answered, before it runs out.
 * (Held packets are dropped, not queued to the agent: this kernel, like
 * others, has no nft_queue, and a queue would put the agent in the data
 * path.)  Echo and other ICMP requests, and protocols without ports,
 * count by destination host.  A VPS with an exception for scanning (@scan_excepted, until
 * the exception ends) and the destinations of detectors.scan.exclude are
 * left alone.  Repeat contacts are never held.  Protocols with ports are
 * counted by (destination, protocol, port); echo requests (a ping sweep)
 * and traceroute's UDP probes (PC_TRACEROUTE_PORT_FIRST..LAST, see
 * detect/scan.h) by destination. */
/* detectors.scan.exclude, by family: destinations that never count. */
static void exclude_sets(const struct pc_detectors *d, struct strbuf *out)
{
        for (int v6 = 0; v6 <= 1; v6++) {
                const char *sep = "";

                strbuf_printf(out, "\tset scan_exclude%c {\n\t\ttype %s\n\t\tflags interval\n", v6 ? '6' : '4',
                              v6 ? "ipv6_addr" : "ipv4_addr");
                for (size_t i = 0; i < d->n_scan_exclude; i++) {
                        char text[64];

                        if ((d->scan_exclude[i].family == AF_INET6) != v6)
                                continue;
                        pc_format_prefix(&d->scan_exclude[i], text, sizeof(text));
                        strbuf_printf(out, "%s%s", *sep ? sep : "\t\telements = { ", text);
                        sep = ", ";
                }
                strbuf_printf(out, "%s\t}\n", *sep ? " }\n" : "");
        }
}

static void scan_part(const struct pc_config *cfg, bool bridged, struct strbuf *out)
{
        const struct pc_detectors *d = &cfg->detectors;
        int64_t mem = d->scan_contact_memory;
        const char *v4 = bridged ? "ether type ip" : "meta nfproto ipv4"; /* as sampled_part's */
        const char *v6 = bridged ? "ether type ip6" : "meta nfproto ipv6";
        static const uint16_t ports[] = { PC_LINK_SERVICE_PORTS };
        char link[320], list[128] = "";
        size_t n = 0;

        for (size_t i = 0; i < PC_ARRAY_SIZE(ports); i++)
                n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%u", i > 0 ? ", " : "", ports[i]);
        snprintf(link, sizeof(link),
                 "\t\tip daddr { 224.0.0.0/4, 255.255.255.255 } udp dport { %s } return\n"
                 "\t\tip daddr 224.0.0.0/4 ip protocol igmp return\n"
                 "\t\tip6 daddr ff00::/8 udp dport { %s } return\n",
                 list, list);

        strbuf_printf(out,
                      "\tset scan_contain {\n\t\ttype ifname\n%s\t}\n"
                      /* exceptions for scanning, ending in the kernel on time */
                      "\tset scan_excepted {\n\t\ttype ifname\n\t\tflags timeout\n\t}\n"
                      "\tset scan_hold {\n\t\ttype ifname\n\t\tsize 1048576\n\t\tflags dynamic,timeout\n"
                      "\t\ttimeout %" PRId64 "s\n\t}\n"
                      "\tset scan_budget {\n\t\ttype ifname\n\t\tsize 1048576\n\t\tflags dynamic,timeout\n"
                      "\t\ttimeout 1m\n\t}\n"
                      "\tset scan_held_log {\n\t\ttype ifname\n\t\tsize 1048576\n\t\tflags dynamic,timeout\n"
                      "\t\ttimeout 1m\n\t}\n",
                      vps_size(cfg, bridged ? "bridge" : "inet", "scan_contain"), d->scan_hold_timeout);
        strbuf_printf(out,
                      "\tset contacts4 {\n\t\ttype ifname . ipv4_addr . inet_proto . inet_service\n"
                      "\t\tsize 1048576\n\t\tflags dynamic,timeout\n\t\ttimeout %" PRId64 "s\n\t}\n"
                      "\tset contacts6 {\n\t\ttype ifname . ipv6_addr . inet_proto . inet_service\n"
                      "\t\tsize 1048576\n\t\tflags dynamic,timeout\n\t\ttimeout %" PRId64 "s\n\t}\n"
                      "\tset hosts4 {\n\t\ttype ifname . ipv4_addr\n"
                      "\t\tsize 1048576\n\t\tflags dynamic,timeout\n\t\ttimeout %" PRId64 "s\n\t}\n"
                      "\tset hosts6 {\n\t\ttype ifname . ipv6_addr\n"
                      "\t\tsize 1048576\n\t\tflags dynamic,timeout\n\t\ttimeout %" PRId64 "s\n\t}\n",
                      mem, mem, mem, mem);
        exclude_sets(d, out);
        strbuf_printf(out,
                      "\tchain scan_contain {\n"
                      "\t\tiifname @scan_excepted return\n%s"
                      "\t\tip daddr @scan_exclude4 return\n"
                      "\t\tip6 daddr @scan_exclude6 return\n"
                      /* a traceroute: one contact of its host */
                      "\t\tudp dport %u-%u goto scan_hosts\n"
                      "\t\tmeta l4proto { tcp, udp, sctp, dccp, udplite } goto scan_ports\n"
                      /* a ping sweep: requests (echo, timestamp, information,
                       * address mask, node information), by host; the
                       * protocols without ports (GRE, IPIP, ESP...) too */
                      "\t\ticmp type { echo-request, timestamp-request, info-request, address-mask-request } "
                      "goto scan_hosts\n"
                      "\t\ticmpv6 type { echo-request, 139 } goto scan_hosts\n"
                      "\t\tmeta l4proto != { icmp, ipv6-icmp } goto scan_hosts\n"
                      "\t}\n"
                      /* a repeat contact refreshes its element: contact-memory
                       * runs from the last use, as the detector's does */
                      "\tchain scan_ports {\n"
                      "\t\t%s iifname . ip daddr . meta l4proto . th dport @contacts4 "
                      "update @contacts4 { iifname . ip daddr . meta l4proto . th dport } return\n"
                      "\t\t%s iifname . ip6 daddr . meta l4proto . th dport @contacts6 "
                      "update @contacts6 { iifname . ip6 daddr . meta l4proto . th dport } return\n"
                      "\t\tjump scan_first\n"
                      "\t\t%s add @contacts4 { iifname . ip daddr . meta l4proto . th dport }\n"
                      "\t\t%s add @contacts6 { iifname . ip6 daddr . meta l4proto . th dport }\n"
                      "\t}\n"
                      "\tchain scan_hosts {\n"
                      "\t\t%s iifname . ip daddr @hosts4 update @hosts4 { iifname . ip daddr } return\n"
                      "\t\t%s iifname . ip6 daddr @hosts6 update @hosts6 { iifname . ip6 daddr } return\n"
                      "\t\tjump scan_first\n"
                      "\t\t%s add @hosts4 { iifname . ip daddr }\n"
                      "\t\t%s add @hosts6 { iifname . ip6 daddr }\n"
                      "\t}\n"
                      "\tchain scan_first {\n"
                      /* what a held VPS still tries confirms it a scanner */
                      "\t\tiifname @scan_hold update @scan_held_log { iifname limit rate %u/second burst %u packets } "
                      "log group " PC_NFLOG_GROUP_STR " prefix \"" PC_SCAN_HELD_PREFIX "\" " VERDICT("scan_hold") " drop\n"
                      "\t\tiifname @scan_hold " VERDICT("scan_hold") " drop\n"
                      "\t\tupdate @scan_budget { iifname limit rate over 1/second burst %u packets } "
                      "add @scan_hold { iifname } log group " PC_NFLOG_GROUP_STR " prefix \"" PC_SCAN_HOLD_PREFIX
                      "\" " VERDICT("scan_hold") " drop\n"
                      "\t}\n",
                      /* A bridge also carries what a router never forwards:
                       * DHCP, mDNS, SSDP... (pc_scan_link_service) */
                      bridged ? link : "",
                      PC_TRACEROUTE_PORT_FIRST, PC_TRACEROUTE_PORT_LAST, v4, v6, v4, v6, v4, v6, v4, v6,
                      PC_SCAN_HELD_LOG_RATE, PC_SCAN_HELD_LOG_RATE / 2, d->scan_hold_after);
}

/* True if the kernel samples packets for the flood and reflection detectors. */
static bool sampling(const struct pc_config *cfg)
{
        return cfg->detectors.flood_enabled || cfg->detectors.reflection_enabled;
}

/* Floods and reflection (docs/DETECTION.md): counted in the kernel, on one
 * packet in <sample>, whatever the flow's state, so that the thresholds
 * (divided by <sample>) hold on averages over a second: a VPS sending too
 * fast to one destination (by packets or by bytes), a VPS receiving too
 * fast from everywhere, a VPS's reflection port answering too much.  Each
 * is logged at most twice a second per VPS; the agent decides. */
static void sampled_part(const struct pc_config *cfg, bool bridged, struct strbuf *out)
{
        const struct pc_detectors *d = &cfg->detectors;
        /* The bridge family's nfproto is the bridge's: there the frame's
         * ethertype says IPv4 or IPv6 (untagged only, as everywhere). */
        const char *v4 = bridged ? "ether type ip" : "meta nfproto ipv4";
        const char *v6 = bridged ? "ether type ip6" : "meta nfproto ipv6";
        uint64_t pps = d->flood_packets_per_second / d->flood_sample;
        uint64_t bps = (uint64_t)d->flood_megabits_per_second * 125000u / d->flood_sample;
        uint64_t rps = (uint64_t)d->reflection_megabits_per_second * 125000u / d->flood_sample;
        static const struct {
                const char *name;
                char family; /* the key's address: ipv4_addr or ipv6_addr */
        } meters[] = { { "flood_out4", '4' }, { "flood_out4b", '4' }, { "flood_out6", '6' }, { "flood_out6b", '6' } };

        if (pps == 0)
                pps = 1;
        for (size_t i = 0; i < PC_ARRAY_SIZE(meters); i++)
                strbuf_printf(out, "\tset %s {\n\t\ttype ifname . ipv%c_addr\n\t\tsize 1048576\n"
                                   "\t\tflags dynamic,timeout\n\t\ttimeout 10s\n\t}\n",
                              meters[i].name, meters[i].family);
        strbuf_printf(out, "\tset flood_all {\n\t\ttype ifname\n\t\tsize 1048576\n\t\tflags dynamic,timeout\n"
                           "\t\ttimeout 10s\n\t}\n"
                           "\tset flood_allb {\n\t\ttype ifname\n\t\tsize 1048576\n\t\tflags dynamic,timeout\n"
                           "\t\ttimeout 10s\n\t}\n"
                           "\tset flood_in {\n\t\ttype ifname\n\t\tsize 1048576\n\t\tflags dynamic,timeout\n"
                           "\t\ttimeout 10s\n\t}\n"
                           "\tset flood_inb {\n\t\ttype ifname\n\t\tsize 1048576\n\t\tflags dynamic,timeout\n"
                           "\t\ttimeout 10s\n\t}\n"
                           "\tset reflect {\n\t\ttype ifname . inet_service\n\t\tsize 1048576\n"
                           "\t\tflags dynamic,timeout\n\t\ttimeout 10s\n\t}\n"
                           "\tset sample_log_out {\n\t\ttype ifname\n\t\tsize 1048576\n\t\tflags dynamic,timeout\n"
                           "\t\ttimeout 10s\n\t}\n"
                           "\tset sample_log_in {\n\t\ttype ifname\n\t\tsize 1048576\n\t\tflags dynamic,timeout\n"
                           "\t\ttimeout 10s\n\t}\n"
                           "\tset sample_log_reflect {\n\t\ttype ifname\n\t\tsize 1048576\n"
                           "\t\tflags dynamic,timeout\n\t\ttimeout 10s\n\t}\n");
        strbuf_printf(out, "\tchain sampled {\n"
                           "\t\tiifname @vps jump sampled_out\n"
                           "\t\toifname @vps jump sampled_in\n\t}\n"
                           "\tchain sampled_out {\n");
        if (d->flood_enabled)
                strbuf_printf(out,
                              "\t\t%s update @flood_out4 { iifname . ip daddr limit rate over %" PRIu64
                              "/second burst %" PRIu64 " packets } goto flood_out\n"
                              "\t\t%s update @flood_out4b { iifname . ip daddr limit rate over %" PRIu64
                              " bytes/second burst %" PRIu64 " bytes } goto flood_out\n"
                              "\t\t%s update @flood_out6 { iifname . ip6 daddr limit rate over %" PRIu64
                              "/second burst %" PRIu64 " packets } goto flood_out\n"
                              "\t\t%s update @flood_out6b { iifname . ip6 daddr limit rate over %" PRIu64
                              " bytes/second burst %" PRIu64 " bytes } goto flood_out\n",
                              v4, pps, pps, v4, bps, bps, v6, pps, pps, v6, bps, bps);
        /* ... and to every destination together, at PC_FLOOD_SPREAD times
         * the line: a flood spread over many destinations (a VPS serving
         * many clients sends more in all than to any one of them) */
        if (d->flood_enabled)
                strbuf_printf(out,
                              "\t\tupdate @flood_all { iifname limit rate over %" PRIu64 "/second burst %" PRIu64
                              " packets } goto flood_spread\n"
                              "\t\tupdate @flood_allb { iifname limit rate over %" PRIu64 " bytes/second burst %" PRIu64
                              " bytes } goto flood_spread\n",
                              pps * PC_FLOOD_SPREAD, pps * PC_FLOOD_SPREAD, bps * PC_FLOOD_SPREAD, bps * PC_FLOOD_SPREAD);
        if (d->reflection_enabled && d->n_reflection_ports > 0) {
                strbuf_printf(out, "\t\tudp sport { ");
                for (size_t i = 0; i < d->n_reflection_ports; i++) {
                        const struct pc_port_range *p = &d->reflection_ports[i];

                        strbuf_printf(out, i > 0 ? ", %u" : "%u", p->lo);
                        if (p->hi != p->lo)
                                strbuf_printf(out, "-%u", p->hi);
                }
                strbuf_printf(out, " } update @reflect { iifname . udp sport limit rate over %" PRIu64
                                   " bytes/second burst %" PRIu64 " bytes } goto reflecting\n", rps, rps);
        }
        strbuf_printf(out, "\t}\n\tchain sampled_in {\n");
        if (d->flood_enabled)
                strbuf_printf(out, "\t\tupdate @flood_in { oifname limit rate over %" PRIu64 "/second burst %" PRIu64
                                   " packets } goto flooded\n"
                                   "\t\tupdate @flood_inb { oifname limit rate over %" PRIu64 " bytes/second burst %" PRIu64
                                   " bytes } goto flooded\n",
                              pps, pps, bps, bps);
        strbuf_printf(out, "\t}\n"
                           "\tchain flood_out {\n\t\tupdate @sample_log_out { iifname limit rate 2/second burst 1 packets } "
                           "log group " PC_NFLOG_GROUP_STR " prefix \"" PC_FLOOD_OUT_PREFIX "\"\n\t}\n"
                           "\tchain flood_spread {\n\t\tupdate @sample_log_out { iifname limit rate 2/second burst 1 packets } "
                           "log group " PC_NFLOG_GROUP_STR " prefix \"" PC_FLOOD_SPREAD_PREFIX "\"\n\t}\n"
                           "\tchain flooded {\n\t\tupdate @sample_log_in { oifname limit rate 2/second burst 1 packets } "
                           "log group " PC_NFLOG_GROUP_STR " prefix \"" PC_FLOOD_IN_PREFIX "\"\n\t}\n"
                           "\tchain reflecting {\n\t\tupdate @sample_log_reflect { iifname limit rate 2/second burst 1 packets } "
                           "log group " PC_NFLOG_GROUP_STR " prefix \"" PC_REFLECT_PREFIX "\"\n\t}\n");
}

/* BCP 38 for a routed VPS (raw_prerouting jumps here by @antispoof): the
 * chain `antispoof` for a VPS whose policy counts, samples and answers
 * spoofing (<report>), `antispoof_quiet` for one whose policy only drops
 * it.  Which of the two is the value of the VPS's one element in
 * @antispoof: a set of the VPSes that report (once @spoof_report) would be
 * one more element per VPS for the kernel to insert (BENCHMARKS.md,
 * "Programming and restart at scale"), and it was looked up only on the
 * spoofed path, as the two chains differ only there. */
static void antispoof_chain(bool report, struct strbuf *out)
{
        const char *name = report ? "antispoof" : "antispoof_quiet";
        const char *ra = report ? "jump rogue_ra" : VERDICT("spoof") " drop";
        const char *dhcp = report ? "jump rogue_dhcp" : VERDICT("spoof") " drop";

        strbuf_printf(out,
                      "\tchain %s {\n"
                      /* The kernel loops the hypervisor's own multicast and broadcast
                       * (its router advertisements, broadcast DHCP offers) back in as
                       * if received on the VPS's interface.  Those copies already
                       * carry conntrack state; a packet really received from a VPS
                       * has none yet at raw priority (veth scrubs it between
                       * namespaces), so only the copies are let through here. */
                      "\t\tct state untracked,new,established,related return\n"
                      /* One chain per family: an IPv4 packet meets no IPv6
                       * check, and each family's DHCP ports are compared, not
                       * looked up in a set of both families' (docs/BENCHMARKS.md,
                       * step 12: the generic checks cost ~70 ns a packet). */
                      "\t\tmeta nfproto ipv6 goto %s6\n"
                      /* A VPS is never a router or a DHCP server for its neighbours,
                       * whatever source it uses: a DHCP reply (from a server's port,
                       * or to a client's whatever its source port) to where a
                       * client listens for one -- broadcast, multicast, link-local,
                       * the hypervisor -- is a claim.  Routed to a unicast address
                       * it is not: `nmap -sU` probes port 68 of internet hosts, and
                       * the VPS was suspended for it (a unicast reply to another
                       * VPS's client would need its transaction id; BCP 38 below
                       * still holds its source).  DHCP is 67/68 over IPv4, 547/546
                       * over IPv6. */
                      "\t\tudp sport 67 fib daddr type { local, broadcast, multicast } %s\n"
                      "\t\tudp dport 68 fib daddr type { local, broadcast, multicast } %s\n"
                      "\t\tiifname . ip saddr @src4 return\n"
                      "\t\tiifname . ip saddr @src4_net return\n"
                      /* a DHCP client has no address yet */
                      "\t\tip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 return\n",
                      name, name, dhcp, dhcp);
        /* BCP 38 everywhere; counted and answered where the policy says */
        if (report)
                strbuf_printf(out, "\t\tupdate @spoof4 { iifname counter }\n"
                                   "\t\tlimit rate " PC_SPOOF_LOG_RATE " log group " PC_NFLOG_GROUP_STR
                                   " prefix \"" PC_SPOOF_PREFIX_V4 "\"\n");
        strbuf_printf(out, "\t\t" VERDICT("spoof") " drop\n\t}\n");
        strbuf_printf(out,
                      "\tchain %s6 {\n"
                      "\t\ticmpv6 type nd-router-advert %s\n"
                      "\t\tudp sport 547 fib daddr type { local, broadcast, multicast } %s\n"
                      "\t\tudp dport 546 fib daddr type { local, broadcast, multicast } %s\n"
                      "\t\tip6 daddr fe80::/10 udp dport 546 %s\n"
                      "\t\tiifname . ip6 saddr @src6 return\n"
                      "\t\tiifname . ip6 saddr " MASK64 " @src6_64 return\n"
                      "\t\tiifname . ip6 saddr @src6_net return\n"
                      "\t\tip6 saddr fe80::/64 iifname @any_link_local return\n"
                      /* duplicate address detection and its MLD report come from :: */
                      "\t\tip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld2-listener-report } return\n",
                      name, ra, dhcp, dhcp, dhcp);
        if (report)
                strbuf_printf(out, "\t\tupdate @spoof6 { iifname counter }\n"
                                   "\t\tlimit rate " PC_SPOOF_LOG_RATE " log group " PC_NFLOG_GROUP_STR
                                   " prefix \"" PC_SPOOF_PREFIX_V6 "\"\n");
        strbuf_printf(out, "\t\t" VERDICT("spoof") " drop\n\t}\n");
}

/* Everything after the table's opening line and comment. */
static void skeleton_body(const struct pc_config *cfg, struct strbuf *out)
{
        bool bridged = pc_config_has_bridged(cfg);

        verdict_counters(inet_verdicts, PC_ARRAY_SIZE(inet_verdicts), out);
        if (bridged)
                strbuf_printf(out, "\tcounter " NFT_VERDICT_PREFIX "bridged_routed {\n\t}\n");
        policy_sets(cfg, "inet", out);
        strbuf_printf(out,
                      /* the agent's record of its last transaction (nft_state) */
                      "\tset state {\n\t\ttype mark . mark . mark\n\t}\n"
                      /* every VPS interface: conntrack's invalid packets are dropped */
                      "\tset vps {\n\t\ttype ifname\n%s\t}\n"
                      "\tset suspended {\n\t\ttype ifname\n%s\t}\n"
                      /* anti-spoofing: the interfaces checked (jump antispoof where
                       * the policy answers spoofing, antispoof_quiet elsewhere, or
                       * jump suspended_out for a suspended VPS: one lookup for
                       * all three), and what each may send from */
                      "\tmap antispoof {\n\t\ttype ifname : verdict\n%s\t}\n"
                      /* whole addresses and IPv6 /64s in hash sets; only other
                       * prefixes need the (slower to build) interval sets */
                      "\tset src4 {\n\t\ttype ifname . ipv4_addr\n%s\t}\n"
                      "\tset src6 {\n\t\ttype ifname . ipv6_addr\n%s\t}\n"
                      "\tset src6_64 {\n\t\ttype ifname . ipv6_addr\n%s\t}\n"
                      "\tset src4_net {\n\t\ttype ifname . ipv4_addr\n\t\tflags interval,timeout\n\t}\n"
                      "\tset src6_net {\n\t\ttype ifname . ipv6_addr\n\t\tflags interval,timeout\n\t}\n"
                      /* VPSes whose MAC is not registered: any link-local source */
                      "\tset any_link_local {\n\t\ttype ifname\n%s\t}\n"
                      /* spoofed packets per interface */
                      "\tset spoof4 {\n\t\ttype ifname\n\t\tsize 1048576\n\t\tflags dynamic,timeout\n\t\ttimeout 7d\n\t}\n"
                      "\tset spoof6 {\n\t\ttype ifname\n\t\tsize 1048576\n\t\tflags dynamic,timeout\n\t\ttimeout 7d\n\t}\n"
                      "\tset spoof_ra {\n\t\ttype ifname\n\t\tsize 1048576\n\t\tflags dynamic,timeout\n\t\ttimeout 7d\n\t}\n"
                      "\tset spoof_dhcp {\n\t\ttype ifname\n\t\tsize 1048576\n\t\tflags dynamic,timeout\n\t\ttimeout 7d\n\t}\n",
                      vps_size(cfg, "inet", "vps"), vps_size(cfg, "inet", "suspended"),
                      vps_size(cfg, "inet", "antispoof"), addr_set_opts(cfg, "inet", "src4"),
                      addr_set_opts(cfg, "inet", "src6"), addr_set_opts(cfg, "inet", "src6_64"),
                      vps_size(cfg, "inet", "any_link_local"));
        /* every bridged VPS's addresses (BRIDGED_ROUTED) */
        if (bridged)
                strbuf_printf(out, "\tset bridged4 {\n\t\ttype ipv4_addr\n\t}\n"
                                   "\tset bridged6 {\n\t\ttype ipv6_addr\n\t}\n"
                                   "\tset bridged6_64 {\n\t\ttype ipv6_addr\n\t}\n"
                                   "\tset bridged4_net {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t}\n"
                                   "\tset bridged6_net {\n\t\ttype ipv6_addr\n\t\tflags interval\n\t}\n");
        for (size_t pi = 0; pi < cfg->n_policies; pi++) {
                const struct pc_policy *p = &cfg->policies[pi];

                policy_part(p, pi, false, out);
                if (policy_has(p, PC_ACTION_REDIRECT, PC_DIR_EGRESS)) {
                        strbuf_printf(out, "\tchain p%zu_nat {\n", pi);
                        /* Never to the hypervisor itself (loopback included):
                         * the proxy would connect there from inside. */
                        strbuf_printf(out, "\t\tfib daddr type { local, broadcast, multicast } return\n"
                                           "\t\tip6 daddr { ::, ::ffff:0.0.0.0/96 } return\n");
                        for (size_t r = 0; r < p->n_rules; r++) {
                                const struct pc_rule *rule = &p->rules[r];

                                if (rule->action != PC_ACTION_REDIRECT)
                                        continue;
                                for (size_t k = 0; k < rule->n_ports; k++) {
                                        if (rule->exemptable)
                                                strbuf_printf(out, "\t\tiifname != @p%zu_r%zu_exempt", pi, r);
                                        strbuf_printf(out, "\t\tmeta l4proto tcp th dport %u", rule->ports[k].lo);
                                        if (rule->ports[k].hi != rule->ports[k].lo)
                                                strbuf_printf(out, "-%u", rule->ports[k].hi);
                                        strbuf_printf(out, " " VERDICT("smtp_proxied") " redirect to :%u\n",
                                                      listen_port(p->smtp_proxy_listen));
                                }
                        }
                        strbuf_printf(out, "\t}\n");
                }
        }
        /* What a suspended VPS sends never gets here: raw_prerouting drops
         * it, on the same interface name, before conntrack (at a bridged
         * site the bridge table does, and this chain sees the bridge, not
         * the port).  Checking it again cost every forwarded packet a
         * lookup: 170 ns of the rules' 1,150 per packet of an established
         * flow (bench/packet_cost.sh, docs/BENCHMARKS.md). */
        strbuf_printf(out,
                      "\tchain forward {\n"
                      "\t\ttype filter hook forward priority filter; policy accept;\n%s"
                      "\t\toifname @suspended " VERDICT("suspended_in") " drop\n",
                      bridged ? BRIDGED_FIRST("bridged_forward") : "");
        if (sampling(cfg))
                strbuf_printf(out, "\t\tnumgen random mod %u 0 jump sampled\n", cfg->detectors.flood_sample);
        /* A proxied port is never forwarded for a VPS, whatever conntrack
         * thinks of the packet: only the proxy speaks to the MX for it. */
        proxied_guard(cfg, "dport", "iifname", out);
        proxied_guard(cfg, "sport", "oifname", out);
        strbuf_printf(out,
                      /* Everything below decides a connection at its first
                       * packet: the rest of it costs one conntrack lookup. */
                      CT_DECIDED
                      "\t\tct state invalid iifname @vps " VERDICT("invalid") " drop\n"
                      "\t\tct state invalid oifname @vps " VERDICT("invalid") " drop\n%s",
                      bridged ? BRIDGED_ROUTED("bridged_routed") : "");
        filter_checks(false, out);
        strbuf_printf(out,
                      /* the detectors' evidence: flows a VPS opened */
                      "\t\tiifname @vps ct mark set " PC_BR_MARK_VPS "\n"
                      "\t\tiifname vmap @vps_out\n"
                      "\t\toifname vmap @vps_in\n%s"
                      "\t}\n",
                      scan_contained(cfg, NULL) ? "\t\tiifname @scan_contain jump scan_contain\n" : "");
        if (scan_contained(cfg, NULL))
                scan_part(cfg, false, out);
        if (sampling(cfg))
                sampled_part(cfg, false, out);
        /* The nat chain does not redirect a destination of the hypervisor's
         * own: nothing else may answer a proxied port there either. */
        strbuf_printf(out, "\tchain input {\n"
                           "\t\ttype filter hook input priority filter; policy accept;\n%s",
                      bridged ? BRIDGED_FIRST("bridged") : "");
        proxied_guard(cfg, "dport", "iifname", out);
        /* The hypervisor is a destination like any other: a VPS reaches its
         * own services (a local MTA, say) under the same site rules and port
         * filters.  Not whole-VPS filters: those would cut DHCP and
         * neighbour discovery to the gateway, and with them the inbound
         * sessions a filtered VPS keeps. */
        strbuf_printf(out, CT_DECIDED "%s"
                           "\t\tiifname . meta l4proto . th dport @filter_ports_out " VERDICT("filter_out") " drop\n"
                           "\t\tiifname vmap @vps_out\n"
                           "\t}\n",
                      bridged ? BRIDGED_ROUTED("bridged_forged") : "");
        if (bridged)
                bridged_chains(out);
        /* Only where some policy redirects: a nat chain registers NAT's
         * hooks, which every packet then crosses and every new connection
         * sets up (~80 ns per established packet, 11 % of the new
         * connections/s; docs/BENCHMARKS.md).  A config that gains or loses
         * a redirect has another skeleton id: the table is rebuilt whole. */
        if (proxy_needed(cfg)) {
                strbuf_printf(out,
                              "\tchain prerouting {\n"
                              "\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
                              "\t\tiifname vmap @vps_nat\n");
                /* a bridged VPS's frame, marked by the bridge table (bridge_body) */
                for (size_t pi = 0; bridged && pi < cfg->n_policies; pi++)
                        if (policy_has(&cfg->policies[pi], PC_ACTION_REDIRECT, PC_DIR_EGRESS))
                                strbuf_printf(out, "\t\tmeta mark 0x%08x jump p%zu_nat\n",
                                              PC_BR_MARK_PROXY + (unsigned)pi, pi);
                strbuf_printf(out, "\t}\n");
        }
        strbuf_printf(out,
                      /* Before conntrack: spoofed packets never create state, and a
                       * suspended VPS cannot reach the hypervisor either. */
                      "\tchain raw_prerouting {\n"
                      "\t\ttype filter hook prerouting priority raw; policy accept;\n"
                      /* One lookup on the interface for every packet in: a
                       * second (@suspended, then @antispoof) cost ~70 ns of
                       * each (docs/BENCHMARKS.md).  Every routed VPS is in
                       * the map, so a suspended one is too, to its drop. */
                      "\t\tiifname vmap @antispoof\n");
        proxy_return_rule(cfg, out);
        strbuf_printf(out, "\t}\n");
        /* After conntrack, which the bridge table has not: a bridged frame
         * of an established flow is marked, and the bridge table's enforce
         * lets it through without the policy's lookups (3.4 -> 2.2 us of
         * rules a frame, docs/BENCHMARKS.md).  Only frames that came in
         * through a bridge, and only unmarked ones (the proxy's replies
         * keep theirs). */
        if (bridged)
                strbuf_printf(out, "\tchain bridged_established {\n"
                                   "\t\ttype filter hook prerouting priority mangle; policy accept;\n"
                                   "\t\tmeta iifkind \"bridge\" meta mark 0 ct state established meta mark set "
                                   PC_BR_MARK_ESTABLISHED "\n"
                                   "\t}\n");
        strbuf_printf(out,
                      "\tchain suspended_out {\n"
                      "\t\t" VERDICT("suspended_out") " drop\n"
                      "\t}\n");
        antispoof_chain(true, out);
        antispoof_chain(false, out);
        strbuf_printf(out,
                      "\tchain rogue_ra {\n"
                      "\t\tupdate @spoof_ra { iifname counter }\n"
                      "\t\tlimit rate " PC_SPOOF_LOG_RATE " log group " PC_NFLOG_GROUP_STR " prefix \"" PC_SPOOF_PREFIX_RA "\"\n"
                      "\t\t" VERDICT("spoof") " drop\n"
                      "\t}\n"
                      "\tchain rogue_dhcp {\n"
                      "\t\tupdate @spoof_dhcp { iifname counter }\n"
                      "\t\tlimit rate " PC_SPOOF_LOG_RATE " log group " PC_NFLOG_GROUP_STR " prefix \"" PC_SPOOF_PREFIX_DHCP "\"\n"
                      "\t\t" VERDICT("spoof") " drop\n"
                      "\t}\n");
        proxy_chains(cfg, out);
}

/* One chain that counts, samples and drops a kind of forged frame. */
static void bridge_bad_chain(const char *kind, struct strbuf *out)
{
        strbuf_printf(out,
                      "\tset spoof_%s {\n\t\ttype ifname\n\t\tsize 1048576\n\t\tflags dynamic,timeout\n\t\ttimeout 7d\n\t}\n"
                      "\tchain bad_%s {\n\t\tiifname != @spoof_report " VERDICT("spoof") " drop\n"
                      "\t\tupdate @spoof_%s { iifname counter }\n"
                      "\t\tlimit rate " PC_SPOOF_LOG_RATE " log group " PC_NFLOG_GROUP_STR " prefix \"" PC_SPOOF_PREFIX
                      "%s\"\n\t\t" VERDICT("spoof") " drop\n\t}\n",
                      kind, kind, kind, kind);
}

/* A host answers for every address it has, on any interface (the weak
 * host model): a VPS with Docker's docker0, a WireGuard or libvirt address
 * answers a neighbour's "who-has" for it, and an echo request, a TCP SYN
 * or a datagram sent to it at the VPS's MAC, from that address.  Those
 * frames are still dropped (no VPS ever claims a foreign address on the
 * segment), but a neighbour's ordinary frames must not make spoofing
 * incidents of them, which suspend the VPS that answered.  So the table
 * remembers, briefly, what each port was sent for an address it does not
 * own: "who-has" requests (asked address . asker's address and MAC, one
 * element for a broadcast), and unicast IP (port . address . sender).
 * A frame from the port that answers one of them -- an ARP reply to the
 * asker, an ARP request from that address resolving the next hop (Linux
 * asks from the source of the packet it is sending), an IP packet
 * back to the sender that is not itself an opening (no bare SYN, no ICMP
 * request) -- is dropped and counted in @spoof_answer, unlogged: no
 * finding.  Conntrack cannot tell this here: the bridge family has none
 * without CONFIG_NF_CONNTRACK_BRIDGE, and asking the inet hooks' conntrack
 * would let a forged packet touch state (a reply-direction packet marks
 * the neighbour's flow answered) before it is dropped; ARP has no
 * conntrack anyway.  A spoofer whose accomplice asks first only gets its
 * forged answers dropped without an incident (DETECTION.md, "Answers"). */
static void bridge_answers(struct strbuf *out)
{
        strbuf_printf(out,
                      "\tset arp_asked {\n\t\ttype ipv4_addr . ipv4_addr . ether_addr\n\t\tsize 1048576\n"
                      "\t\tflags dynamic,timeout\n\t\ttimeout " PC_ARP_ASKED_TIMEOUT "\n\t}\n"
                      "\tset asked4 {\n\t\ttype ifname . ipv4_addr . ipv4_addr\n\t\tsize 1048576\n"
                      "\t\tflags dynamic,timeout\n\t\ttimeout " PC_IP_ASKED_TIMEOUT "\n\t}\n"
                      "\tset asked4_at {\n\t\ttype ifname . ipv4_addr\n\t\tsize 1048576\n"
                      "\t\tflags dynamic,timeout\n\t\ttimeout " PC_IP_ASKED_TIMEOUT "\n\t}\n"
                      "\tset asked6 {\n\t\ttype ifname . ipv6_addr . ipv6_addr\n\t\tsize 1048576\n"
                      "\t\tflags dynamic,timeout\n\t\ttimeout " PC_IP_ASKED_TIMEOUT "\n\t}\n"
                      "\tset spoof_answer {\n\t\ttype ifname\n\t\tsize 1048576\n\t\tflags dynamic,timeout\n"
                      "\t\ttimeout 7d\n\t}\n"
                      /* what a port is sent for an address it does not own; its
                       * own addresses are answered from them, and never stored */
                      "\tchain asked {\n"
                      "\t\tarp operation request oifname . arp daddr ip != @src4 oifname . arp daddr ip != @src4_net "
                      "update @arp_asked { arp daddr ip . arp saddr ip . arp saddr ether }\n"
                      /* broadcast and multicast IP is answered from own addresses */
                      "\t\tether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 return\n"
                      "\t\tether type ip oifname . ip daddr != @src4 oifname . ip daddr != @src4_net "
                      "update @asked4 { oifname . ip daddr . ip saddr } update @asked4_at { oifname . ip daddr }\n"
                      "\t\tether type ip6 oifname . ip6 daddr != @src6 oifname . ip6 daddr " MASK64 " != @src6_64 "
                      "oifname . ip6 daddr != @src6_net "
                      "update @asked6 { oifname . ip6 daddr . ip6 saddr }\n"
                      "\t}\n"
                      /* an answer opens nothing: a SYN without ACK and ICMP
                       * requests are claims, whatever was received before */
                      "\tchain answer_ipv4 {\n"
                      "\t\ttcp flags & (syn | ack) == syn jump bad_ipv4\n"
                      "\t\tmeta l4proto { tcp, udp } jump answer\n"
                      "\t\ticmp type { echo-reply, destination-unreachable, time-exceeded, parameter-problem, "
                      "timestamp-reply, info-reply, address-mask-reply } jump answer\n"
                      "\t\tjump bad_ipv4\n"
                      "\t}\n"
                      "\tchain answer_ipv6 {\n"
                      "\t\ttcp flags & (syn | ack) == syn jump bad_ipv6\n"
                      "\t\tmeta l4proto { tcp, udp } jump answer\n"
                      "\t\ticmpv6 type { echo-reply, destination-unreachable, packet-too-big, time-exceeded, "
                      "parameter-problem } jump answer\n"
                      "\t\tjump bad_ipv6\n"
                      "\t}\n"
                      /* dropped and counted, never logged: no finding */
                      "\tchain answer {\n"
                      "\t\tupdate @spoof_answer { iifname counter }\n"
                      "\t\t" VERDICT("spoof_answer") " drop\n"
                      "\t}\n");
}

/* The sets and chains of the site policies in the bridge table: the same
 * per-VPS maps and sets as the inet table's, keyed by bridge port, and the
 * same policy chains, which mark instead of rejecting (BR_VERDICT). */
/* Frames per second a bridged port filtered whole outbound may still send
 * (DHCP, neighbour discovery, ARP: a lease renewed and its neighbours
 * resolved take a few). */
#define FILTERED_RATE 20u

/* True if some bridged site's policy contains scanners: the bridge table
 * then has the containment, keyed on the port. */
static bool bridged_scans_contained(const struct pc_config *cfg)
{
        for (size_t i = 0; i < cfg->n_sites; i++)
                if (cfg->sites[i].topology == PC_TOPOLOGY_BRIDGED && scan_contained(cfg, cfg->sites[i].policy))
                        return true;
        return false;
}

static void bridge_policies(const struct pc_config *cfg, struct strbuf *out)
{
        bool contain = bridged_scans_contained(cfg);

        policy_sets(cfg, "bridge", out);
        /* the ports with any filter; what a port filtered whole may still
         * send to each port, per second */
        strbuf_printf(out, "\tset filtered {\n\t\ttype ifname\n\t\tflags timeout\n\t}\n"
                           "\tset filtered_rate {\n\t\ttype ifname . ifname\n\t\tsize 1048576\n"
                           "\t\tflags dynamic,timeout\n\t\ttimeout 10s\n\t}\n");
        for (size_t pi = 0; pi < cfg->n_policies; pi++) {
                const struct pc_policy *p = &cfg->policies[pi];

                policy_part(p, pi, true, out);
                if (!policy_has(p, PC_ACTION_REDIRECT, PC_DIR_EGRESS))
                        continue;
                /* The redirect itself is NAT, in the inet table: here only
                 * the mark that asks for it (its exemptions checked). */
                strbuf_printf(out, "\tchain p%zu_nat {\n", pi);
                for (size_t r = 0; r < p->n_rules; r++) {
                        const struct pc_rule *rule = &p->rules[r];

                        for (size_t k = 0; rule->action == PC_ACTION_REDIRECT && k < rule->n_ports; k++) {
                                strbuf_printf(out, "\t\t");
                                if (rule->exemptable)
                                        strbuf_printf(out, "iifname != @p%zu_r%zu_exempt ", pi, r);
                                strbuf_printf(out, "meta l4proto tcp th dport %u", rule->ports[k].lo);
                                if (rule->ports[k].hi != rule->ports[k].lo)
                                        strbuf_printf(out, "-%u", rule->ports[k].hi);
                                strbuf_printf(out, " meta mark set 0x%08x\n", PC_BR_MARK_PROXY + (unsigned)pi);
                        }
                }
                strbuf_printf(out, "\t}\n");
        }
        /* Empty without a redirect: not registered then (a hook for nothing). */
        if (proxy_needed(cfg)) {
                strbuf_printf(out, "\tchain nat_mark {\n\t\ttype filter hook prerouting priority -300; policy accept;\n");
                proxied_guard_vmap(cfg, "dport", "iifname", "vps_nat", out);
                strbuf_printf(out, "\t}\n");
        }
        if (contain)
                scan_part(cfg, true, out);
        /* The inet table sees a bridged frame on the bridge, not on its
         * port: the flood and reflection meters, keyed on the port, are
         * this table's, sampled as there (every frame, established or not;
         * lab/flood_bridged).  A frame the bridge floods (a broadcast)
         * counts once per port it goes out of: the load it puts on the
         * hypervisor and the neighbours.  One sample here costs a frame
         * less than one in prerouting for the sender and one here for
         * the receiver (BENCHMARKS.md). */
        if (sampling(cfg))
                sampled_part(cfg, true, out);
        strbuf_printf(out, "\tchain enforce {\n"
                           "\t\ttype filter hook forward priority filter; policy accept;\n");
        if (sampling(cfg))
                strbuf_printf(out, "\t\tnumgen random mod %u 0 jump sampled\n", cfg->detectors.flood_sample);
        proxied_guard(cfg, "dport", "iifname", out);
        proxied_guard(cfg, "sport", "oifname", out);
        strbuf_printf(out,
                      /* established (the inet table's conntrack says so,
                       * skeleton_body): the policy decided its first packet;
                       * the port-25 guards above still see every frame.
                       * Untagged IP only: br_netfilter may hand the inet hooks
                       * VLAN-tagged frames too (bridge-nf-filter-vlan-tagged),
                       * and conntrack ignores the tag; those meet the
                       * ethertype drop below (lab/hostile/bridged_vlan_established).
                       * Unicast only: a filtered VPS sent the frames of a flow an
                       * accomplice kept established to the broadcast MAC, and
                       * the bridge flooded them to every port past its filter
                       * (lab/hostile/bridged_established_group_mac) */
                      "\t\tmeta mark " PC_BR_MARK_ESTABLISHED " ether type { ip, ip6 } meta pkttype != { broadcast, multicast } "
                      "accept\n"
                      /* A VPS port only ever receives what the inet hooks can
                       * see: no VLAN tags, no other protocols around them. */
                      "\t\toifname @vps ether type != { ip, ip6, arp } " VERDICT("ethertype") " drop\n"
                      "\t\tiifname @vps meta mark set " PC_BR_MARK_VPS "\n"
                      "\t\toifname @vps meta mark set " PC_BR_MARK_VPS "\n"
                      /* every frame comes here: the filters cost one lookup
                       * each way for a port without any */
                      "\t\tiifname @filtered jump filters\n"
                      "\t\toifname @filtered jump filters\n"
                      "\t\tiifname vmap @vps_out\n"
                      "\t\toifname vmap @vps_in\n"
                      /* as the inet table's forward, for the frames of flows
                       * that are not established (the shortcut above): their
                       * first packets, and a UDP flow's until it is answered */
                      "%s"
                      "\t}\n"
                      "\tchain filters {\n"
                      /* A port filtered whole keeps only a trickle: on a bridge
                       * its DHCP, neighbour discovery and ARP (which the
                       * inet hooks never see, so a mark cannot drop it) go out
                       * of every port, and a VPS filtered for a flood went on
                       * flooding every neighbour with them at 57,000 frames/s
                       * (lab/hostile/bridged_filter_exempt_flood).  Per port
                       * it goes out of: this hook sees a broadcast once per
                       * port, and one budget for all let the first 40 ports
                       * walked have it, never the uplink, walked last
                       * (lab/hostile/bridged_filtered_rate_clones). */
                      "\t\tiifname @filter_out update @filtered_rate { iifname . oifname limit rate over %u/second "
                      "burst %u packets } "
                      VERDICT("filter_out") " drop\n"
                      /* Whole-VPS filters never cut neighbour discovery or DHCP
                       * (at routed sites those go to the hypervisor, unfiltered). */
                      "\t\ticmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, "
                      "mld-listener-report, mld2-listener-report } return\n"
                      "\t\tip daddr 255.255.255.255 udp dport 67 return\n"
                      "\t\tip6 daddr ff02::1:2 udp dport 547 return\n",
                      contain ? "\t\tether type { ip, ip6 } iifname @scan_contain jump scan_contain\n" : "",
                      FILTERED_RATE, FILTERED_RATE * 2);
        filter_checks(true, out);
        strbuf_printf(out,
                      "\t}\n"
                      /* the hypervisor's own services, as at routed sites */
                      "\tchain enforce_input {\n"
                      "\t\ttype filter hook input priority filter; policy accept;\n");
        proxied_guard(cfg, "dport", "iifname", out);
        /* what a VPS port sends up to the hypervisor (BRIDGED_ROUTED) */
        strbuf_printf(out, "\t\tiifname @vps meta mark set " PC_BR_MARK_HOST "\n");
        strbuf_printf(out, "\t\tiifname . meta l4proto . th dport @filter_ports_out " VERDICT("filter_out") " "
                           BR_VERDICT(PC_BR_MARK_DROP) "\n"
                           "\t\tiifname vmap @vps_out\n"
                           "\t}\n");
}

/* The bridge-family table: at bridged sites the VPS's frames enter a bridge
 * port, so the checks run at bridge prerouting on the port's name. */
static void bridge_body(const struct pc_config *cfg, struct strbuf *out)
{
        static const char *const kinds[] = { "mac", "arp", "nd", "ra", "dhcp", "ipv4", "ipv6" };

        verdict_counters(bridge_verdicts, PC_ARRAY_SIZE(bridge_verdicts), out);
        strbuf_printf(out,
                      "\tset suspended {\n\t\ttype ifname\n%s\t}\n"
                      "\tset vps {\n\t\ttype ifname\n%s\t}\n"
                      "\tset spoof_report {\n\t\ttype ifname\n%s\t}\n"
                      "\tset any_mac {\n\t\ttype ifname\n%s\t}\n"
                      "\tset mac {\n\t\ttype ifname . ether_addr\n%s\t}\n"
                      "\tset src4 {\n\t\ttype ifname . ipv4_addr\n%s\t}\n"
                      "\tset src6 {\n\t\ttype ifname . ipv6_addr\n%s\t}\n"
                      "\tset src6_64 {\n\t\ttype ifname . ipv6_addr\n%s\t}\n"
                      "\tset src4_net {\n\t\ttype ifname . ipv4_addr\n\t\tflags interval,timeout\n\t}\n"
                      "\tset src6_net {\n\t\ttype ifname . ipv6_addr\n\t\tflags interval,timeout\n\t}\n"
                      "\tset any_link_local {\n\t\ttype ifname\n%s\t}\n"
                      /* nft 1.0.6 has no `icmpv6 taddr`: the target of a neighbour
                       * advertisement is bits 64-191 of the ICMPv6 header; whole
                       * addresses and /64s hashed, as the sources are */
                      "\tset na_target_addr {\n\t\ttypeof iifname . @th,64,128\n\t\tflags timeout\n\t}\n"
                      "\tset na_target_64 {\n\t\ttypeof iifname . @th,64,128\n\t\tflags timeout\n\t}\n"
                      "\tset na_target {\n\t\ttypeof iifname . @th,64,128\n\t\tflags interval,timeout\n\t}\n"
                      /* its MAC as a 48-bit number, for the link-layer address
                       * options of neighbour discovery */
                      "\tset nd_lladdr {\n\t\ttypeof iifname . @th,208,48\n%s\t}\n",
                      vps_size(cfg, "bridge", "suspended"), vps_size(cfg, "bridge", "vps"),
                      vps_size(cfg, "bridge", "spoof_report"), vps_size(cfg, "bridge", "any_mac"),
                      vps_size(cfg, "bridge", "mac"), addr_set_opts(cfg, "bridge", "src4"),
                      addr_set_opts(cfg, "bridge", "src6"), addr_set_opts(cfg, "bridge", "src6_64"),
                      vps_size(cfg, "bridge", "any_link_local"), vps_size(cfg, "bridge", "nd_lladdr"));
        for (size_t i = 0; i < PC_ARRAY_SIZE(kinds); i++)
                bridge_bad_chain(kinds[i], out);
        bridge_answers(out);
        strbuf_printf(out,
                      "\tchain prerouting {\n"
                      "\t\ttype filter hook prerouting priority -300; policy accept;\n"
                      "\t\tiifname @suspended " VERDICT("suspended_out") " drop\n"
                      "\t\tiifname @vps jump check_vps\n"
                      "\t}\n"
                      /* a suspended VPS receives nothing either */
                      "\tchain forward {\n"
                      "\t\ttype filter hook forward priority filter; policy accept;\n"
                      "\t\toifname @suspended " VERDICT("suspended_in") " drop\n"
                      "\t\toifname @vps jump asked\n"
                      "\t}\n"
                      "\tchain output {\n"
                      "\t\ttype filter hook output priority filter; policy accept;\n"
                      "\t\toifname @suspended " VERDICT("suspended_in") " drop\n"
                      "\t\toifname @vps jump asked\n"
                      "\t}\n"
                      "\tchain check_vps {\n"
                      "\t\tiifname != @any_mac iifname . ether saddr != @mac jump bad_mac\n"
                      "\t\tether type arp jump check_arp\n"
                      "\t\tether type ip jump check_ipv4\n"
                      "\t\tether type ip6 jump check_ipv6\n"
                      /* anything else (VLAN tags, other protocols) */
                      "\t\tjump bad_mac\n"
                      "\t}\n"
                      "\tchain check_arp {\n"
                      "\t\tiifname != @any_mac iifname . arp saddr ether != @mac jump bad_arp\n"
                      "\t\tarp saddr ip 0.0.0.0 accept\n"
                      "\t\tiifname . arp saddr ip @src4 accept\n"
                      "\t\tiifname . arp saddr ip @src4_net accept\n"
                      /* answering a neighbour's request, or resolving the next hop
                       * (the sender or the router) to answer what it was sent at
                       * that address (bridge_answers) */
                      "\t\tarp operation reply arp saddr ip . arp daddr ip . arp daddr ether @arp_asked jump answer\n"
                      "\t\tarp operation request iifname . arp saddr ip @asked4_at jump answer\n"
                      "\t\tjump bad_arp\n"
                      "\t}\n"
                      "\tchain check_ipv4 {\n"
                      "\t\tudp sport 67 jump bad_dhcp\n"
                      "\t\tudp dport 68 jump bad_dhcp\n"
                      "\t\tip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept\n"
                      "\t\tiifname . ip saddr @src4 accept\n"
                      "\t\tiifname . ip saddr @src4_net accept\n"
                      "\t\tiifname . ip saddr . ip daddr @asked4 jump answer_ipv4\n"
                      "\t\tjump bad_ipv4\n"
                      "\t}\n"
                      "\tchain check_ipv6 {\n"
                      "\t\ticmpv6 type nd-router-advert jump bad_ra\n"
                      "\t\tudp sport 547 jump bad_dhcp\n"
                      "\t\tudp dport 546 jump bad_dhcp\n"
                      "\t\ticmpv6 type nd-neighbor-advert " NA_TARGET_NOT_OWN " jump bad_nd\n"
                      /* a source/target link-layer address option (the first one)
                       * must name its own MAC, as ARP's sender address must */
                      "\t\ticmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } @th,192,8 { 1, 2 } "
                      "iifname != @any_mac iifname . @th,208,48 != @nd_lladdr jump bad_nd\n"
                      "\t\ticmpv6 type nd-router-solicit @th,64,8 1 iifname != @any_mac "
                      "iifname . @th,80,48 != @nd_lladdr jump bad_nd\n"
                      /* duplicate address detection only for its own addresses */
                      "\t\tip6 saddr :: icmpv6 type nd-neighbor-solicit " NA_TARGET_NOT_OWN " jump bad_nd\n"
                      "\t\tip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld2-listener-report } accept\n"
                      "\t\tiifname . ip6 saddr @src6 accept\n"
                      "\t\tiifname . ip6 saddr " MASK64 " @src6_64 accept\n"
                      "\t\tiifname . ip6 saddr @src6_net accept\n"
                      "\t\tip6 saddr fe80::/64 iifname @any_link_local accept\n"
                      "\t\tiifname . ip6 saddr . ip6 daddr @asked6 jump answer_ipv6\n"
                      "\t\tjump bad_ipv6\n"
                      "\t}\n");
        if (pc_config_has_bridged(cfg))
                bridge_policies(cfg, out);
}

/* FNV-1a 64 over the skeleton body: changes whenever the config changes
 * anything the kernel holds outside per-VPS elements. */
static uint64_t body_hash(const struct pc_config *cfg)
{
        struct strbuf b = { 0 };
        uint64_t h = 1469598103934665603ull;

        skeleton_body(cfg, &b);
        bridge_body(cfg, &b);
        for (const char *s = strbuf_str(&b); *s != '\0'; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ull;
        strbuf_free(&b);
        return h;
}

uint32_t nft_skeleton_id(const struct pc_config *cfg)
{
        uint64_t h = body_hash(cfg);

        return (uint32_t)(h ^ (h >> 32));
}

void nft_skeleton(const struct pc_config *cfg, struct strbuf *out)
{
        uint32_t id = nft_skeleton_id(cfg);

        strbuf_printf(out, "table inet %s {\n\tcomment \"portcullis skeleton 0x%08" PRIx32 "\"\n",
                      cfg->agent.nft_table, id);
        /* The id again where `nft -j` shows it (1.0.6's JSON omits comments). */
        strbuf_printf(out, "\tset skeleton {\n\t\ttype mark\n\t\telements = { 0x%08" PRIx32 " }\n\t}\n", id);
        skeleton_body(cfg, out);
        strbuf_printf(out, "}\ntable bridge %s {\n", cfg->agent.nft_table);
        bridge_body(cfg, out);
        strbuf_printf(out, "}\n");
}

int nft_elems_reserve(struct nft_elems *e, size_t n)
{
        struct nft_elem *v;

        if (n <= e->cap)
                return 0;
        if (n > SIZE_MAX / sizeof(*v) || (v = realloc(e->v, n * sizeof(*v))) == NULL)
                return -ENOMEM;
        e->v = v;
        e->cap = n;
        return 0;
}

/* Whether <a> and <b> are elements of one set of one table. */
static bool same_set(const struct nft_elem *a, const struct nft_elem *b)
{
        return strcmp(a->set, b->set) == 0 && strcmp(a->family, b->family) == 0;
}

/* Room in <e> for one more element.  -ENOMEM. */
static int reserve(struct nft_elems *e)
{
        if (e->n == e->cap)
                return nft_elems_reserve(e, e->cap == 0 ? 16 : e->cap * 2);
        return 0;
}

int nft_elems_push(struct nft_elems *e, const struct nft_elem *x)
{
        if (reserve(e) < 0)
                return -ENOMEM;
        e->v[e->n++] = *x;
        return 0;
}

void nft_elems_free(struct nft_elems *e)
{
        free(e->v);
        e->v = NULL;
        e->n = e->cap = 0;
}

/* Appends <s> to the string of <*len> characters in <buf> of <size>
 * bytes, cut short if it does not fit: snprintf() without its formats,
 * for what is built for every VPS at every start (100,000 VPSes' elements,
 * BENCHMARKS.md, "Programming and restart at scale"). */
static void cat(char *buf, size_t size, size_t *len, const char *s)
{
        size_t n = strlen(s);

        if (*len + n >= size)
                n = size - 1 - *len;
        memcpy(buf + *len, s, n);
        *len += n;
        buf[*len] = '\0';
}

static void copy(char *buf, size_t size, const char *s)
{
        size_t len = 0;

        cat(buf, size, &len, s);
}

/* `"v201"`, or `"v201" . <rest>` */
static void iface_key(const char *iface, const char *rest, char *buf, size_t size)
{
        size_t len = 0;

        cat(buf, size, &len, "\"");
        cat(buf, size, &len, iface);
        cat(buf, size, &len, "\"");
        if (rest != NULL) {
                cat(buf, size, &len, " . ");
                cat(buf, size, &len, rest);
        }
}

static int push_in(struct nft_elems *out, const char *family, const char *set, const char *key, const char *value,
                   int64_t until)
{
        struct nft_elem *x;

        if (reserve(out) < 0)
                return -ENOMEM;
        x = &out->v[out->n++];
        copy(x->family, sizeof(x->family), family);
        copy(x->set, sizeof(x->set), set);
        copy(x->key, sizeof(x->key), key);
        copy(x->value, sizeof(x->value), value);
        x->until = until;
        return 0;
}

static int push(struct nft_elems *out, const char *set, const char *key, const char *value, int64_t until)
{
        return push_in(out, "inet", set, key, value, until);
}

static bool ended(int64_t until, int64_t now)
{
        return until != 0 && until <= now;
}

static int filter_elements(const char *fam, const struct pc_vps *vps, const struct pc_filter *f,
                           struct nft_elems *out)
{
        static const unsigned dirs[] = { PC_DIR_EGRESS, PC_DIR_INGRESS };
        char key[96], rk[48];
        int r = 0;

        if (strcmp(fam, "bridge") == 0) {
                iface_key(vps->iface, NULL, key, sizeof(key));
                r = push_in(out, fam, "filtered", key, "", f->until);
        }
        for (size_t d = 0; d < 2 && r == 0; d++) {
                const char *dn = dirs[d] == PC_DIR_EGRESS ? "out" : "in";
                char set[40];

                if (!(f->direction & dirs[d]))
                        continue;
                if (f->scope == PC_SCOPE_ALL) {
                        snprintf(set, sizeof(set), "filter_%s", dn);
                        iface_key(vps->iface, NULL, key, sizeof(key));
                        r = push_in(out, fam, set, key, "", f->until);
                        continue;
                }
                snprintf(set, sizeof(set), "filter_ports_%s", dn);
                if (f->scope == PC_SCOPE_PORTS) {
                        range_key(f->ports.proto, f->ports.lo, f->ports.hi, rk, sizeof(rk));
                        iface_key(vps->iface, rk, key, sizeof(key));
                        r = push_in(out, fam, set, key, "", f->until);
                } else if (f->service != NULL) {
                        for (size_t k = 0; k < f->service->n_ports && r == 0; k++) {
                                const struct pc_port_range *p = &f->service->ports[k];

                                range_key(p->proto, p->lo, p->hi, rk, sizeof(rk));
                                iface_key(vps->iface, rk, key, sizeof(key));
                                r = push_in(out, fam, set, key, "", f->until);
                        }
                }
        }
        return r;
}

/* `"b301" . 0x2001...0031` or a range: the targets a bridged VPS may
 * advertise in neighbour advertisements (its IPv6 addresses).  Whole
 * addresses and /64s go to hash sets (NA_TARGET_NOT_OWN). */
static int na_target_element(const struct pc_vps *vps, const struct pc_prefix *p, int64_t until,
                             struct nft_elems *out)
{
        char lo[40], hi[40], key[96];
        uint8_t last[16];

        memcpy(last, p->bytes, 16);
        for (unsigned bit = p->len; bit < 128; bit++)
                last[bit / 8] |= (uint8_t)(0x80 >> (bit % 8));
        lo[0] = hi[0] = '0';
        lo[1] = hi[1] = 'x';
        for (int i = 0; i < 16; i++) {
                lo[2 + 2 * i] = "0123456789abcdef"[p->bytes[i] >> 4];
                lo[3 + 2 * i] = "0123456789abcdef"[p->bytes[i] & 15];
                hi[2 + 2 * i] = "0123456789abcdef"[last[i] >> 4];
                hi[3 + 2 * i] = "0123456789abcdef"[last[i] & 15];
        }
        lo[34] = hi[34] = '\0';
        if (p->len == 128 || p->len == 64) {
                iface_key(vps->iface, lo, key, sizeof(key));
                return push_in(out, "bridge", p->len == 128 ? "na_target_addr" : "na_target_64", key, "", until);
        }
        snprintf(key, sizeof(key), "\"%s\" . %s-%s", vps->iface, lo, hi);
        return push_in(out, "bridge", "na_target", key, "", until);
}

/* The set of address or prefix <p> (<base> "src", "bridged"), and its
 * text in <addr>: whole addresses and IPv6 /64s without their length, in
 * the hash sets <base>4, <base>6 and <base>6_64; other prefixes, and
 * (<net>) any prefix, in the interval sets <base>4_net and <base>6_net, a
 * whole address there as the kernel gives it back (without its length). */
static void addr_set(const char *base, const struct pc_prefix *p, bool net, char *set, size_t set_size, char *addr,
                     size_t addr_size)
{
        bool whole = p->len == (p->family == AF_INET ? 32 : 128);
        bool is64 = p->family == AF_INET6 && p->len == 64 && !net;

        pc_format_prefix(p, addr, addr_size);
        if (whole || is64)
                *strchr(addr, '/') = '\0';
        whole = whole && !net;
        copy(set, set_size, base);
        copy(set + strlen(set), set_size - strlen(set),
             p->family == AF_INET ? (whole ? "4" : "4_net") : whole ? "6" : is64 ? "6_64" : "6_net");
}

/* `"v201" . 198.51.100.10` or `"v201" . 198.51.100.64/29` into src4/src6.
 * With agent.max-vps (<sized>) the hash sets have no timeouts: a source
 * that ends in time (<until>) goes to the interval sets. */
static int source_element(const char *family, const struct pc_vps *vps, const struct pc_prefix *p,
                          int64_t until, bool sized, struct nft_elems *out)
{
        char addr[64], key[96], set[16];
        int r;

        addr_set("src", p, sized && until != 0, set, sizeof(set), addr, sizeof(addr));
        iface_key(vps->iface, addr, key, sizeof(key));
        r = push_in(out, family, set, key, "", until);
        if (r == 0 && strcmp(family, "bridge") == 0 && p->family == AF_INET6)
                r = na_target_element(vps, p, until, out);
        return r;
}

/* What an anti-spoofed VPS may send from: its addresses and prefixes, the
 * IPv6 link-local address its MAC gives (any link-local if the MAC is not
 * registered), and prefixes granted as exceptions. */
static int antispoof_elements(const struct pc_config *cfg, const struct pc_vps *vps, int64_t now,
                              struct nft_elems *out)
{
        bool sized = cfg->agent.max_vps != 0;
        bool bridged = vps->site->topology == PC_TOPOLOGY_BRIDGED;
        const char *fam = nft_vps_family(vps);
        struct pc_prefix ll = { .family = AF_INET6, .len = 128, .bytes = { 0xfe, 0x80 } };
        char key[96], mac[24];
        int r;

        iface_key(vps->iface, NULL, key, sizeof(key));
        /* routed: what it sends is checked, or dropped if it is suspended;
         * counted and answered (antispoof) where the policy says */
        r = push_in(out, fam, bridged ? "vps" : "antispoof", key,
                    bridged                               ? ""
                    : vps->suspended                      ? "jump suspended_out"
                    : vps->site->policy->anti_spoofing ? "jump antispoof"
                                                          : "jump antispoof_quiet",
                    0);
        if (r == 0 && bridged && vps->site->policy->anti_spoofing)
                r = push_in(out, fam, "spoof_report", key, "", 0);
        /* Without a registered MAC (only where the policy does not answer
         * spoofing: the CLI requires one there) the frames' MACs are not
         * checked, their addresses are. */
        if (r == 0 && bridged && !vps->has_mac)
                r = push_in(out, fam, "any_mac", key, "", 0);
        if (r == 0 && bridged && vps->has_mac) {
                char mkey[96];

                pc_format_mac(vps->mac, mac, sizeof(mac));
                iface_key(vps->iface, mac, mkey, sizeof(mkey));
                r = push_in(out, fam, "mac", mkey, "", 0);
                if (r == 0) {
                        uint64_t n = 0;

                        /* in decimal, as the kernel gives it back */
                        for (int i = 0; i < 6; i++)
                                n = n << 8 | vps->mac[i];
                        snprintf(mkey, sizeof(mkey), "\"%s\" . %" PRIu64, vps->iface, n);
                        r = push_in(out, fam, "nd_lladdr", mkey, "", 0);
                }
        }
        for (size_t i = 0; i < vps->n_addrs && r == 0; i++)
                r = source_element(fam, vps, &vps->addrs[i], 0, sized, out);
        if (r == 0 && vps->has_mac) {
                /* EUI-64: the MAC split by ff:fe, universal/local bit flipped */
                ll.bytes[8] = vps->mac[0] ^ 0x02;
                ll.bytes[9] = vps->mac[1];
                ll.bytes[10] = vps->mac[2];
                ll.bytes[11] = 0xff;
                ll.bytes[12] = 0xfe;
                ll.bytes[13] = vps->mac[3];
                ll.bytes[14] = vps->mac[4];
                ll.bytes[15] = vps->mac[5];
                r = source_element(fam, vps, &ll, 0, sized, out);
        } else if (r == 0) {
                r = push_in(out, fam, "any_link_local", key, "", 0);
                if (r == 0 && bridged) {
                        ll.len = 64;
                        r = na_target_element(vps, &ll, 0, out);
                }
        }
        for (size_t i = 0; i < vps->n_exceptions && r == 0; i++) {
                struct pc_prefix p;

                if (pc_exception_source_prefix(vps->exceptions[i].service, &p) &&
                    !ended(vps->exceptions[i].until, now))
                        r = source_element(fam, vps, &p, vps->exceptions[i].until, sized, out);
        }
        return r;
}

const char *nft_vps_family(const struct pc_vps *vps)
{
        return vps->site->topology == PC_TOPOLOGY_BRIDGED ? "bridge" : "inet";
}

int nft_vps_elements(const struct pc_config *cfg, const struct pc_vps *vps, int64_t now,
                     struct nft_elems *out)
{
        const struct pc_policy *p = vps->site->policy;
        size_t pi = (size_t)(p - cfg->policies);
        /* At a bridged site the policy's sets are the bridge table's. */
        const char *fam = nft_vps_family(vps);
        char key[96], value[40], set[40];
        int r = 0;

        /* The name goes into nftables commands: never trust it unchecked. */
        if (!pc_ifname_valid(vps->iface))
                return -EINVAL;

        iface_key(vps->iface, NULL, key, sizeof(key));
        r = push(out, "vps", key, "", 0);
        /* Both chains whichever way the rules go: each also checks the
         * other direction's rules in disguise. */
        if (policy_has(p, PC_ACTION_BLOCK, PC_DIR_EGRESS | PC_DIR_INGRESS)) {
                snprintf(value, sizeof(value), "jump p%zu_out", pi);
                r = r < 0 ? r : push_in(out, fam, "vps_out", key, value, 0);
                snprintf(value, sizeof(value), "jump p%zu_in", pi);
                r = r < 0 ? r : push_in(out, fam, "vps_in", key, value, 0);
        }
        if (policy_has(p, PC_ACTION_REDIRECT, PC_DIR_EGRESS)) {
                snprintf(value, sizeof(value), "jump p%zu_nat", pi);
                r = r < 0 ? r : push_in(out, fam, "vps_nat", key, value, 0);
                snprintf(value, sizeof(value), "jump p%zu_proxied", pi);
                r = r < 0 ? r : push_in(out, fam, "vps_proxied", key, value, 0);
        }
        /* at a bridged site in the bridge table, which sees the port */
        if (scan_contained(cfg, p)) {
                const struct pc_exception *e = pc_vps_exception_for(vps, PC_EXCEPTION_SCANNING);

                r = r < 0 ? r : push_in(out, fam, "scan_contain", key, "", 0);
                if (e != NULL && !ended(e->until, now))
                        r = r < 0 ? r : push_in(out, fam, "scan_excepted", key, "", e->until);
        }
        if (vps->suspended) {
                r = r < 0 ? r : push(out, "suspended", key, "", 0);
                if (vps->site->topology == PC_TOPOLOGY_BRIDGED)
                        r = r < 0 ? r : push_in(out, "bridge", "suspended", key, "", 0);
        }
        /* BCP 38 at every site; the policy only says whether spoofing is
         * counted, sampled and answered. */
        if (r == 0)
                r = antispoof_elements(cfg, vps, now, out);
        /* A bridged VPS's addresses are reached through the bridge, never
         * routed to or from it by the hypervisor (BRIDGED_ROUTED). */
        for (size_t i = 0; i < vps->n_addrs && r == 0 && vps->site->topology == PC_TOPOLOGY_BRIDGED; i++) {
                char addr[64];

                addr_set("bridged", &vps->addrs[i], false, set, sizeof(set), addr, sizeof(addr));
                r = push(out, set, addr, "", 0);
        }
        for (size_t i = 0; i < vps->n_exceptions && r == 0; i++) {
                const struct pc_exception *e = &vps->exceptions[i];
                const struct pc_rule *rule = pc_policy_rule_for(p, e->service);

                if (rule == NULL || !pc_rule_exemptable(p, rule) || ended(e->until, now))
                        continue;
                snprintf(set, sizeof(set), "p%zu_r%u_exempt", pi, rule->index);
                r = push_in(out, fam, set, key, "", e->until);
        }
        for (size_t i = 0; i < vps->n_filters && r == 0; i++)
                if (!ended(vps->filters[i].until, now))
                        r = filter_elements(fam, vps, &vps->filters[i], out);
        return r;
}

int nft_elem_cmp(const struct nft_elem *x, const struct nft_elem *y)
{
        int c = strcmp(x->family, y->family);

        if (c != 0)
                return c;
        c = strcmp(x->set, y->set);
        return c != 0 ? c : strcmp(x->key, y->key);
}

static int elem_cmp(const void *a, const void *b)
{
        return nft_elem_cmp(a, b);
}

/* "\"v201\" . tcp . 20-23" -> interface, protocol and range, for overlap
 * checks in the interval sets. */
static bool parse_port_key(const char *key, char *ifpart, size_t size, char *proto, unsigned *lo,
                           unsigned *hi)
{
        const char *dot = strstr(key, " . ");
        size_t n;

        if (dot == NULL)
                return false;
        n = (size_t)(dot - key);
        if (n >= size)
                return false;
        memcpy(ifpart, key, n);
        ifpart[n] = '\0';
        if (sscanf(dot + 3, "%15s . %u-%u", proto, lo, hi) == 3)
                return true;
        if (sscanf(dot + 3, "%15s . %u", proto, lo) == 2) {
                *hi = *lo;
                return true;
        }
        return false;
}

/* True if until <a> outlives <b> (0 is forever). */
static bool outlives(int64_t a, int64_t b)
{
        return a == 0 || (b != 0 && a > b);
}

/* A range of ports of a filter_ports_ element, and when it ends. */
struct port_span {
        unsigned lo, hi;
        int64_t until;
};

static int span_cmp(const void *a, const void *b)
{
        const struct port_span *x = a, *y = b;

        return x->lo < y->lo ? -1 : x->lo > y->lo ? 1 : 0;
}

/* The pieces of the overlapping <spans> (sorted by start): cut wherever
 * one starts or ends, each lasting as long as the longest-lived span over
 * it, neighbours of the same lifetime joined.  Into <out> (room for
 * 2 x <n>); their count. */
static size_t span_pieces(const struct port_span *spans, size_t n, struct port_span *out)
{
        size_t n_out = 0;
        unsigned at = spans[0].lo;

        for (;;) {
                bool covered = false;
                int64_t until = 0;
                unsigned end = UINT_MAX; /* where the next cut is, less one */

                for (size_t i = 0; i < n; i++) {
                        if (spans[i].lo > at) {
                                end = spans[i].lo - 1 < end ? spans[i].lo - 1 : end;
                                continue;
                        }
                        if (spans[i].hi < at)
                                continue;
                        until = !covered || outlives(spans[i].until, until) ? spans[i].until : until;
                        covered = true;
                        end = spans[i].hi < end ? spans[i].hi : end;
                }
                if (covered && n_out > 0 && out[n_out - 1].hi + 1 == at && out[n_out - 1].until == until)
                        out[n_out - 1].hi = end;
                else if (covered)
                        out[n_out++] = (struct port_span){ at, end, until };
                if (end == UINT_MAX || end >= 65535)
                        return n_out;
                at = end + 1;
        }
}

/* Overlapping ranges cannot both be in an interval set (the kernel
 * refuses them).  The run of <e> from <at> of <n> elements (one set, one
 * interface, one protocol, sorted) is replaced by its pieces
 * (span_pieces) if any two overlap, or touch with one lifetime: none of
 * their ports is left open when a shorter-lived one times out in the
 * kernel.  The pieces past the run's
 * room are appended; emptied slots have no set.  1 if it changed <e>, 0
 * if not, -ENOMEM. */
static int split_overlaps(struct nft_elems *e, size_t at, size_t n, const char *ifpart, const char *proto)
{
        struct port_span *spans = malloc(3 * n * sizeof(*spans)), *pieces = spans + n;
        char ifx[40], px[16];
        bool overlap = false;
        size_t n_pieces;
        int r = 1;

        if (spans == NULL)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                parse_port_key(e->v[at + i].key, ifx, sizeof(ifx), px, &spans[i].lo, &spans[i].hi);
                spans[i].until = e->v[at + i].until;
        }
        qsort(spans, n, sizeof(*spans), span_cmp);
        /* Neighbours of one lifetime are joined too, overlapping or not:
         * the pieces are then the same whichever filters of the run have
         * ended (the kernel's, those timed out left out, are the model's
         * at any time), not joined only while a third one overlapped. */
        for (size_t i = 1, hi = spans[0].hi; i < n && !overlap; i++) {
                overlap = spans[i].lo <= hi || (spans[i].lo == hi + 1 && spans[i].until == spans[i - 1].until);
                hi = spans[i].hi > hi ? spans[i].hi : hi;
        }
        if (!overlap) {
                free(spans);
                return 0;
        }
        n_pieces = span_pieces(spans, n, pieces);
        for (size_t i = 0; i < n_pieces || i < n; i++) {
                struct nft_elem x = e->v[at];
                char rk[48];

                if (i >= n_pieces) {
                        e->v[at + i].set[0] = '\0';
                        continue;
                }
                if (pieces[i].lo == pieces[i].hi)
                        snprintf(rk, sizeof(rk), "%u", pieces[i].lo);
                else
                        snprintf(rk, sizeof(rk), "%u-%u", pieces[i].lo, pieces[i].hi);
                snprintf(x.key, sizeof(x.key), "%s . %s . %s", ifpart, proto, rk);
                x.until = pieces[i].until;
                if (i < n)
                        e->v[at + i] = x;
                else if (nft_elems_push(e, &x) < 0) {
                        r = -ENOMEM;
                        break;
                }
        }
        free(spans);
        return r;
}

/* The elements of <e> from <from> on: sorted, exact duplicates joined
 * (the longest lifetime kept), overlapping port ranges cut
 * (split_overlaps).  -ENOMEM. */
static int normalise(struct nft_elems *e, size_t from)
{
        size_t out = from + 1, end; /* the first element always stays */
        bool changed = false;

        if (e->n <= from)
                return 0;
        qsort(e->v + from, e->n - from, sizeof(*e->v), elem_cmp);
        for (size_t i = from + 1; i < e->n; i++) {
                struct nft_elem *last = &e->v[out - 1];

                if (elem_cmp(last, &e->v[i]) != 0)
                        e->v[out++] = e->v[i];
                else if (outlives(e->v[i].until, last->until))
                        last->until = e->v[i].until;
        }
        e->n = end = out;
        /* Runs of one set, interface and protocol are adjacent once sorted
         * (their keys share the start "\"v201\" . tcp . "). */
        for (size_t i = from, j; i < end; i = j) {
                char ifx[40], px[16], ify[40], py[16];
                unsigned lo, hi;
                int r;

                j = i + 1;
                if (strncmp(e->v[i].set, "filter_ports_", 13) != 0 ||
                    !parse_port_key(e->v[i].key, ifx, sizeof(ifx), px, &lo, &hi))
                        continue;
                while (j < end && same_set(&e->v[j], &e->v[i]) &&
                       parse_port_key(e->v[j].key, ify, sizeof(ify), py, &lo, &hi) && strcmp(ifx, ify) == 0 &&
                       strcmp(px, py) == 0)
                        j++;
                if (j - i > 1 && (r = split_overlaps(e, i, j - i, ifx, px)) != 0) {
                        if (r < 0)
                                return r;
                        changed = true;
                }
        }
        if (changed) {
                out = from;
                for (size_t i = from; i < e->n; i++)
                        if (e->v[i].set[0] != '\0')
                                e->v[out++] = e->v[i];
                e->n = out;
                qsort(e->v + from, e->n - from, sizeof(*e->v), elem_cmp);
        }
        return 0;
}

int nft_elems_normalise(struct nft_elems *e)
{
        return normalise(e, 0);
}

int nft_elems_normalise_from(struct nft_elems *e, size_t from)
{
        return normalise(e, from);
}

int nft_elems_diff(const struct nft_elems *before, const struct nft_elems *after,
                   struct nft_elems *del, struct nft_elems *add)
{
        size_t i = 0, j = 0;
        int r = 0;

        while (r == 0 && (i < before->n || j < after->n)) {
                int c = i == before->n ? 1 : j == after->n ? -1 : elem_cmp(&before->v[i], &after->v[j]);

                if (c < 0)
                        r = nft_elems_push(del, &before->v[i++]);
                else if (c > 0)
                        r = nft_elems_push(add, &after->v[j++]);
                else {
                        if (before->v[i].until != after->v[j].until ||
                            strcmp(before->v[i].value, after->v[j].value) != 0) {
                                r = nft_elems_push(del, &before->v[i]);
                                if (r == 0)
                                        r = nft_elems_push(add, &after->v[j]);
                        }
                        i++;
                        j++;
                }
        }
        return r;
}

void nft_elems_commands(const char *table, const struct nft_elems *e, bool add, int64_t now,
                        struct strbuf *out)
{
        for (size_t i = 0; i < e->n; i++) {
                const struct nft_elem *x = &e->v[i];
                const char *fam = x->family[0] != '\0' ? x->family : "inet";
                bool first = i == 0 || !same_set(&e->v[i - 1], x);
                bool last = i + 1 == e->n || !same_set(&e->v[i + 1], x);

                if (first)
                        strbuf_printf(out, "%s element %s %s %s { ", add ? "add" : "delete", fam, table, x->set);
                else
                        strbuf_printf(out, ", ");
                strbuf_printf(out, "%s", x->key);
                if (add && x->until != 0)
                        strbuf_printf(out, " timeout %" PRId64 "s", x->until > now ? x->until - now : 1);
                if (x->value[0] != '\0')
                        strbuf_printf(out, " : %s", x->value);
                if (last)
                        strbuf_printf(out, " }\n");
        }
}

/* FNV-1a 64 over <len> bytes at <p>, from <h>. */
static uint64_t fnv(uint64_t h, const void *p, size_t len)
{
        for (size_t i = 0; i < len; i++)
                h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ull;
        return h;
}

/* The strings of <x> with their NULs, and its lifetime, hashed and mixed
 * (splitmix64's finaliser), so that sums of them stay well spread. */
static uint64_t elem_hash(const struct nft_elem *x)
{
        uint64_t h = 1469598103934665603ull;

        h = fnv(h, x->family, strlen(x->family) + 1);
        h = fnv(h, x->set, strlen(x->set) + 1);
        h = fnv(h, x->key, strlen(x->key) + 1);
        h = fnv(h, x->value, strlen(x->value) + 1);
        h = fnv(h, &x->until, sizeof(x->until));
        h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
        h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
        return h ^ (h >> 31);
}

int nft_vps_fingerprint(const struct pc_config *cfg, const struct pc_vps *vps, int64_t now,
                        struct nft_elems *scratch, uint64_t *ret_fp, size_t *ret_n)
{
        uint64_t fp = 0;
        size_t n = 0;
        int r;

        scratch->n = 0;
        /* At time 0: every exception and filter of the model, ended or not
         * (the kernel times them out by itself). */
        r = nft_vps_elements(cfg, vps, 0, scratch);
        if (r < 0)
                return r;
        /* Only exceptions and filters can give an element twice (or an
         * overlap); a sum does not depend on the order. */
        if (vps->n_exceptions + vps->n_filters > 0 && (r = nft_elems_normalise(scratch)) < 0)
                return r;
        for (size_t i = 0; i < scratch->n; i++) {
                fp += elem_hash(&scratch->v[i]);
                n += !ended(scratch->v[i].until, now);
        }
        *ret_fp = fp;
        *ret_n = n;
        return 0;
}

uint64_t nft_elems_hash_sum(const struct nft_elems *e, size_t from)
{
        uint64_t fp = 0;

        for (size_t i = from; i < e->n; i++)
                fp += elem_hash(&e->v[i]);
        return fp;
}

uint64_t nft_fingerprint_base(const struct pc_config *cfg)
{
        uint64_t h = body_hash(cfg);

        h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
        return h ^ (h >> 31);
}

void nft_state_commands(const char *table, const struct nft_state *st, struct strbuf *out)
{
        strbuf_printf(out, "flush set inet %s state\nadd element inet %s state { 0x%08" PRIx32 " . 0x%08" PRIx32
                           " . 0x%08" PRIx32 " }\n",
                      table, table, st->genid, (uint32_t)(st->fp >> 32), (uint32_t)st->fp);
}

bool nft_set_layout(const char *family, const char *set, struct nft_set_layout *ret)
{
        /* As skeleton_body() and bridge_body() declare them. */
        static const struct {
                const char *name;
                char where; /* 'i' inet only, 'b' bridge only, '*' both */
                struct nft_set_layout l;
        } sets[] = {
#define IF { NFT_F_IFNAME }, 1
                { "vps", '*', { IF, false, false, false } },
                { "suspended", '*', { IF, false, false, false } },
                { "spoof_report", 'b', { IF, false, false, false } },
                { "any_link_local", '*', { IF, false, false, false } },
                { "antispoof", 'i', { IF, false, false, true } },
                { "scan_contain", '*', { IF, false, false, false } },
                { "scan_excepted", '*', { IF, false, true, false } },
                { "any_mac", 'b', { IF, false, false, false } },
                { "filter_out", '*', { IF, false, true, false } },
                { "filter_in", '*', { IF, false, true, false } },
                { "filtered", 'b', { IF, false, true, false } },
                { "vps_out", '*', { IF, false, false, true } },
                { "vps_in", '*', { IF, false, false, true } },
                { "vps_nat", '*', { IF, false, false, true } },
                { "vps_proxied", '*', { IF, false, false, true } },
#undef IF
                { "filter_ports_out", '*', { { NFT_F_IFNAME, NFT_F_PROTO, NFT_F_PORT }, 3, true, true, false } },
                { "filter_ports_in", '*', { { NFT_F_IFNAME, NFT_F_PROTO, NFT_F_PORT }, 3, true, true, false } },
                { "src4", '*', { { NFT_F_IFNAME, NFT_F_IPV4 }, 2, false, true, false } },
                { "src6", '*', { { NFT_F_IFNAME, NFT_F_IPV6 }, 2, false, true, false } },
                { "src6_64", '*', { { NFT_F_IFNAME, NFT_F_IPV6 }, 2, false, true, false } },
                { "src4_net", '*', { { NFT_F_IFNAME, NFT_F_IPV4 }, 2, true, true, false } },
                { "src6_net", '*', { { NFT_F_IFNAME, NFT_F_IPV6 }, 2, true, true, false } },
                { "mac", 'b', { { NFT_F_IFNAME, NFT_F_ETHER }, 2, false, false, false } },
                { "nd_lladdr", 'b', { { NFT_F_IFNAME, NFT_F_INT48 }, 2, false, false, false } },
                { "na_target_addr", 'b', { { NFT_F_IFNAME, NFT_F_INT128 }, 2, false, true, false } },
                { "na_target_64", 'b', { { NFT_F_IFNAME, NFT_F_INT128 }, 2, false, true, false } },
                { "na_target", 'b', { { NFT_F_IFNAME, NFT_F_INT128 }, 2, true, true, false } },
                { "bridged4", 'i', { { NFT_F_IPV4 }, 1, false, false, false } },
                { "bridged6", 'i', { { NFT_F_IPV6 }, 1, false, false, false } },
                { "bridged6_64", 'i', { { NFT_F_IPV6 }, 1, false, false, false } },
                { "bridged4_net", 'i', { { NFT_F_IPV4 }, 1, true, false, false } },
                { "bridged6_net", 'i', { { NFT_F_IPV6 }, 1, true, false, false } },
        };
        bool bridge = strcmp(family, "bridge") == 0;
        unsigned a, b;
        char tail[16];

        if (!bridge && strcmp(family, "inet") != 0)
                return false;
        for (size_t i = 0; i < PC_ARRAY_SIZE(sets); i++)
                if (strcmp(set, sets[i].name) == 0 && (sets[i].where == '*' || sets[i].where == (bridge ? 'b' : 'i'))) {
                        *ret = sets[i].l;
                        return true;
                }
        if (sscanf(set, "p%u_r%u_%15s", &a, &b, tail) == 3 && strcmp(tail, "exempt") == 0) {
                *ret = (struct nft_set_layout){ { NFT_F_IFNAME }, 1, false, true, false };
                return true;
        }
        return false;
}

int nft_per_vps_sets(const struct pc_config *cfg, nft_set_cb cb, void *userdata)
{
        struct strbuf b = { 0 };
        const char *family = "inet";
        int r = 0;

        /* what the skeleton declares, read from its text: one truth */
        nft_skeleton(cfg, &b);
        if (b.oom)
                r = -ENOMEM;
        for (const char *line = strbuf_str(&b); r == 0 && line != NULL && *line != '\0';) {
                const char *end = strchr(line, '\n');
                struct nft_set_layout l;
                char name[64];

                if (strncmp(line, "table bridge ", 13) == 0)
                        family = "bridge";
                if ((strncmp(line, "\tset ", 5) == 0 || strncmp(line, "\tmap ", 5) == 0) &&
                    sscanf(line + 5, "%63s", name) == 1 && nft_set_layout(family, name, &l))
                        r = cb(family, name, &l, userdata);
                line = end != NULL ? end + 1 : NULL;
        }
        strbuf_free(&b);
        return r;
}

/* FNV-1a 64 of the NUL-terminated <s>, from <h>. */
static uint64_t fnv_str(uint64_t h, const char *s)
{
        for (; *s != '\0'; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ull;
        return (h ^ 0xff) * 1099511628211ull; /* the end of a string */
}

size_t nft_elems_set_end(const struct nft_elems *e, size_t i)
{
        size_t j = i;

        while (j < e->n && same_set(&e->v[j], &e->v[i]))
                j++;
        return j;
}

int nft_elems_group(struct nft_elems *e)
{
        enum { SLOTS = 256 }; /* far more than the skeleton's sets */
        struct {
                const struct nft_elem *first;
                size_t count, at;
        } slot[SLOTS] = { { 0 } };
        unsigned order[SLOTS], n_sets = 0, *which;

        which = malloc(e->n * sizeof(*which) + 1);
        if (which == NULL)
                return -ENOMEM;
        for (size_t i = 0; i < e->n; i++) {
                unsigned j = (unsigned)fnv_str(fnv_str(1469598103934665603ull, e->v[i].family), e->v[i].set) % SLOTS;

                while (slot[j].first != NULL && !same_set(slot[j].first, &e->v[i]))
                        j = (j + 1) % SLOTS;
                if (slot[j].first == NULL) {
                        if (n_sets == SLOTS - 1) {
                                free(which);
                                return nft_elems_normalise(e); /* cannot happen: sorted instead */
                        }
                        slot[j].first = &e->v[i];
                        order[n_sets++] = j;
                }
                slot[j].count++;
                which[i] = j;
        }
        for (unsigned k = 0, at = 0; k < n_sets; k++) {
                slot[order[k]].at = at;
                at += (unsigned)slot[order[k]].count;
        }
        /* each element's place, then the elements moved there in place,
         * cycle by cycle: a copy into a second array, as large (150 MB at
         * 100,000 VPSes), cost more in fresh pages than the moves do in
         * cache misses (BENCHMARKS.md, "Cold programming: only the dense
         * sets sized") */
        for (size_t i = 0; i < e->n; i++)
                which[i] = (unsigned)slot[which[i]].at++;
        for (size_t i = 0; i < e->n; i++)
                while (which[i] != i) {
                        unsigned to = which[i];
                        struct nft_elem x = e->v[to];

                        e->v[to] = e->v[i];
                        e->v[i] = x;
                        which[i] = which[to];
                        which[to] = to;
                }
        free(which);
        return 0;
}

/* The hash of an element's identity: its table, set and key. */
static uint64_t elem_id(const struct nft_elem *x)
{
        return fnv_str(fnv_str(fnv_str(1469598103934665603ull, x->family), x->set), x->key);
}

int nft_elems_reconcile(const struct nft_elems *have, const struct nft_elems *want, int64_t slack,
                        struct nft_elems *del, struct nft_elems *add)
{
        size_t cap = 16, *slot;
        bool *seen;
        int r = 0;

        while (cap < 2 * have->n)
                cap *= 2;
        slot = malloc(cap * sizeof(*slot));
        seen = calloc(have->n + 1, sizeof(*seen));
        if (slot == NULL || seen == NULL) {
                free(slot);
                free(seen);
                return -ENOMEM;
        }
        /* an index of <have>: slot -> element + 1, 0 empty */
        memset(slot, 0, cap * sizeof(*slot));
        for (size_t i = 0; i < have->n; i++) {
                size_t j = (size_t)elem_id(&have->v[i]) & (cap - 1);

                while (slot[j] != 0)
                        j = (j + 1) & (cap - 1);
                slot[j] = i + 1;
        }
        for (size_t i = 0; i < want->n && r == 0; i++) {
                const struct nft_elem *w = &want->v[i], *h = NULL;
                size_t j = (size_t)elem_id(w) & (cap - 1);

                for (; slot[j] != 0; j = (j + 1) & (cap - 1))
                        if (nft_elem_cmp(&have->v[slot[j] - 1], w) == 0) {
                                h = &have->v[slot[j] - 1];
                                break;
                        }
                if (h == NULL) {
                        r = nft_elems_push(add, w);
                        continue;
                }
                seen[slot[j] - 1] = true;
                if (strcmp(h->value, w->value) != 0 || (h->until == 0) != (w->until == 0) ||
                    llabs(h->until - w->until) > slack) {
                        r = nft_elems_push(del, h);
                        if (r == 0)
                                r = nft_elems_push(add, w);
                }
        }
        for (size_t i = 0; i < have->n && r == 0; i++)
                if (!seen[i])
                        r = nft_elems_push(del, &have->v[i]);
        free(slot);
        free(seen);
        if (r == 0)
                r = nft_elems_group(del);
        if (r == 0)
                r = nft_elems_group(add);
        return r;
}
