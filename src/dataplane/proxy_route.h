/* The return path of the SMTP proxy's transparent connections.
 *
 * portcullis-smtpd connects to the real MX from the VPS's own address
 * (IP_TRANSPARENT / IPV6_TRANSPARENT).  The MX answers to that address,
 * which the hypervisor would route to the VPS's interface.  As in the
 * kernel's TPROXY documentation, three things bring the replies home:
 *
 *   nft  a rule in chain raw_prerouting (prerouting, priority raw) of the
 *        agent's inet table: a TCP packet from the MX's port that belongs to a
 *        local transparent socket gets mark PC_PROXY_FWMARK, and both
 *        directions of such connections conntrack zone PC_PROXY_CT_ZONE
 *        (proxy_out, output)                         (nft_ruleset.c)
 *   ip rule   priority PC_PROXY_RULE_PRIORITY:
 *             fwmark PC_PROXY_FWMARK lookup PC_PROXY_ROUTE_TABLE
 *   ip route  local 0.0.0.0/0 dev lo table PC_PROXY_ROUTE_TABLE (and ::/0)
 *
 * so that a marked packet is delivered locally, to the socket.  The rules
 * and routes are kept here through rtnetlink (libmnl); only rules with this
 * exact mark, priority and table and the two default routes of this table
 * are ever added or removed.  Both IPv4 and IPv6. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "policy/config.h"

/* The mark of replies to the proxy's transparent sockets: "PC" and 25 in
 * hex, a whole 32-bit mark unlikely to clash with marks other software
 * sets. */
#define PC_PROXY_FWMARK 0x50430019u
#define PC_PROXY_FWMARK_STR "0x50430019"
/* The routing table that holds only the two local default routes. */
#define PC_PROXY_ROUTE_TABLE 2525u
#define PC_PROXY_ROUTE_TABLE_STR "2525"
/* Where the fwmark rule sits: after "local" (0), before "main" (32766). */
#define PC_PROXY_RULE_PRIORITY 2525u
/* The conntrack zone of the proxy's connections to the MX.  In the default
 * zone the proxy's VPS:port -> MX:25 could be the very tuple of the VPS's
 * own redirected connection (the kernel picks the proxy's port without
 * looking at conntrack): the proxy's SYN would then be taken for the VPS's
 * connection and redirected back to the proxy. */
#define PC_PROXY_CT_ZONE 2525u
#define PC_PROXY_CT_ZONE_STR "2525"

/* True if any policy of <cfg> redirects to an SMTP proxy that connects from
 * the VPS's own address (pc_policy_proxy_from_vps()), i.e. the kernel needs
 * the return path above. */
bool pc_proxy_route_needed(const struct pc_config *cfg);

/* Makes the running network namespace hold the rules and routes above, for
 * IPv4 and IPv6 (IPv6 is skipped if the kernel has none).  Safe to call
 * repeatedly: what is already there is kept.  Returns 0, or a negative
 * errno and one line in <err> (size <errsz>) naming the step and the cause;
 * on failure it takes back what this call added.  Needs CAP_NET_ADMIN. */
int pc_proxy_route_ensure(char *err, size_t errsz);

/* Removes the rules and routes above (all copies; absent ones are fine).
 * Returns 0, or the first negative errno with one line in <err>, after
 * trying every step.  Needs CAP_NET_ADMIN. */
int pc_proxy_route_remove(char *err, size_t errsz);
