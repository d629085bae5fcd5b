/* Floods and reflection: the kernel samples one packet in
 * detectors.flood.sample and logs a VPS whose sampled rate went over a
 * threshold (nft_ruleset.c, sampled); each such message is an observation
 * of the incident of its episode, and a new incident gets the policy's
 * response (respond.c): provider A filters a flooding VPS outbound, a
 * flooded one inbound, a reflecting service inbound on its port. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "dataplane/nft_ruleset.h"

#define SAMPLED_EPISODE_GAP 300 /* rates over the line 5 minutes apart: separate incidents */

/* The UDP source port of the logged IPv4/IPv6 packet <p>, or 0. */
static uint16_t udp_sport(const struct pc_nflog_packet *p)
{
        size_t off;

        if (p->l4proto != IPPROTO_UDP)
                return 0;
        off = p->family == AF_INET ? (size_t)(p->head[0] & 0x0f) * 4 : 40;
        if (p->head_len < off + 2)
                return 0;
        return (uint16_t)(p->head[off] << 8 | p->head[off + 1]);
}

void agent_sampled_event(struct agent *a, const struct pc_nflog_packet *p)
{
        const struct pc_detectors *d = &a->cfg->detectors;
        bool in = strcmp(p->prefix, PC_FLOOD_IN_PREFIX) == 0;
        bool reflect = strcmp(p->prefix, PC_REFLECT_PREFIX) == 0;
        bool spread = strcmp(p->prefix, PC_FLOOD_SPREAD_PREFIX) == 0;
        const char *kind = in ? "attacked" : reflect ? "reflection" : "flood";
        struct pc_vps *vps = pc_model_find_iface(a->model, in ? p->oface : p->iface);
        char src[INET6_ADDRSTRLEN] = "?", dst[INET6_ADDRSTRLEN] = "?", evidence[512], what[256];
        struct pc_port_range port = { .proto = PC_PROTO_UDP };

        if (vps == NULL || (p->family != AF_INET && p->family != AF_INET6))
                return;
        inet_ntop(p->family, p->src, src, sizeof(src));
        inet_ntop(p->family, p->dst, dst, sizeof(dst));
        port.lo = port.hi = udp_sport(p);
        if (reflect && port.lo == 0)
                return;
        if (reflect)
                snprintf(evidence, sizeof(evidence),
                         "{\"detector\":\"reflection\",\"port\":\"udp/%u\",\"sample_destination\":\"%s\","
                         "\"threshold_mbps\":%u,\"sample\":%u,\"length\":%zu}",
                         port.lo, dst, d->reflection_megabits_per_second, d->flood_sample, p->len);
        else
                snprintf(evidence, sizeof(evidence),
                         "{\"detector\":\"%s\",\"%s\":\"%s\",\"protocol\":%u,\"threshold_pps\":%u,"
                         "\"threshold_mbps\":%u,\"sample\":%u,\"length\":%zu}",
                         in ? "flood-in" : spread ? "flood-out-spread" : "flood-out",
                         in ? "sample_source" : spread ? "sample_destination" : "destination", in ? src : dst,
                         p->l4proto, spread ? d->flood_packets_per_second * PC_FLOOD_SPREAD : d->flood_packets_per_second,
                         spread ? d->flood_megabits_per_second * PC_FLOOD_SPREAD : d->flood_megabits_per_second,
                         d->flood_sample, p->len);
        if (reflect)
                snprintf(what, sizeof(what), "its UDP service on port %u is abused as a reflector: replies over %u "
                         "Mbit/s (e.g. to %s)", port.lo, d->reflection_megabits_per_second, dst);
        else if (in)
                snprintf(what, sizeof(what), "it is flooded: over %u packets/s or %u Mbit/s (e.g. from %s)",
                         d->flood_packets_per_second, d->flood_megabits_per_second, src);
        else if (spread)
                snprintf(what, sizeof(what), "flooding many destinations (e.g. %s): over %u packets/s or %u Mbit/s "
                         "in all", dst, d->flood_packets_per_second * PC_FLOOD_SPREAD,
                         d->flood_megabits_per_second * PC_FLOOD_SPREAD);
        else
                snprintf(what, sizeof(what), "flooding %s: over %u packets/s or %u Mbit/s", dst,
                         d->flood_packets_per_second, d->flood_megabits_per_second);
        agent_abuse(a, vps, kind, 1, evidence, SAMPLED_EPISODE_GAP, what, reflect ? &port : NULL, NULL);
}
