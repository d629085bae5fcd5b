/* Spoofing: packets the kernel dropped for a forged source become one
 * incident per episode, and the site's policy answers (provider A: suspend
 * the VPS and email its owner; a policy that filters takes the escalation
 * ladder's step).  With detectors.spoof.enabled false the kernel still
 * drops and counts, and nothing more happens. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "agent/agent.h"
#include "dataplane/nft_ruleset.h"

int agent_events_open(struct agent *a)
{
        int r = pc_nflog_open(PC_NFLOG_GROUP, &a->nflog);

        if (r < 0)
                agent_log("Failed to read spoofing events (NFLOG group %d): %s; spoofed packets are still "
                          "dropped, but no incident or response follows", PC_NFLOG_GROUP, strerror(-r));
        return r;
}

/* The evidence's name for the kind a log prefix names. */
static const char *kind_name(const char *kind)
{
        static const struct {
                const char *kind, *name;
        } names[] = {
                { "ipv4", "ipv4-source" },
                { "ipv6", "ipv6-source" },
                { "ra", "rogue-router-advertisement" },
                { "dhcp", "rogue-dhcp-server" },
                { "mac", "forged-mac-or-frame" },
                { "arp", "arp-claims-foreign-address" },
                { "nd", "neighbour-advertisement-for-foreign-address" },
        };

        for (size_t i = 0; i < PC_ARRAY_SIZE(names); i++)
                if (strcmp(kind, names[i].kind) == 0)
                        return names[i].name;
        return "unknown";
}

/* Kinds of spoofing that a VPS shows within this of the episode's first
 * are one attempt: a host answering what it was sent (an ARP request and
 * an echo request for an address of its docker0, sent by a neighbour)
 * shows two kinds within milliseconds, before its suspension reaches the
 * kernel, and that is no "trying one protection after another". */
#define KINDS_SPREAD_S 10

/* Records that episode <incident> of <vps_id> showed spoofing <kind> at
 * <now> (monotonic seconds); returns how many different kinds it has
 * shown one after another (the first, and those first seen KINDS_SPREAD_S
 * or more after it), and sets *<ret_new> if <kind> is new to it and
 * counts.  Agent memory (a restart forgets): one episode per VPS is kept,
 * the newest. */
static size_t episode_kinds(struct agent *a, const char *vps_id, int64_t incident, const char *kind, int64_t now,
                            bool *ret_new)
{
        json_t *ep, *kinds, *t;
        const char *k;
        int64_t first;
        size_t n = 0;

        *ret_new = false;
        if (a->spoof_episodes == NULL && (a->spoof_episodes = json_object()) == NULL)
                return 1;
        ep = json_object_get(a->spoof_episodes, vps_id);
        if (ep == NULL || json_integer_value(json_object_get(ep, "incident")) != incident) {
                ep = json_pack("{s:I, s:I, s:{}}", "incident", (json_int_t)incident, "first", (json_int_t)now,
                               "kinds");
                if (ep == NULL || json_object_set_new(a->spoof_episodes, vps_id, ep) < 0)
                        return 1;
        }
        first = json_integer_value(json_object_get(ep, "first"));
        kinds = json_object_get(ep, "kinds");
        if (json_object_get(kinds, kind) == NULL) {
                json_object_set_new(kinds, kind, json_integer(now));
                *ret_new = json_object_size(kinds) == 1 || now - first >= KINDS_SPREAD_S;
        }
        json_object_foreach(kinds, k, t)
                if (n == 0 || json_integer_value(t) - first >= KINDS_SPREAD_S)
                        n++;
        return n;
}

/* A spoofed packet on its way to the store (spoof_cb), and what to
 * answer once its incident is noted (spoof_noted). */
struct spoofing {
        char vps[PC_NAME_MAX];
        char iface[16];
        char kind[16];                /* of the log prefix */
        char claimed[INET6_ADDRSTRLEN];
        struct timespec t;            /* CLOCK_MONOTONIC: it reached the agent */
};

static void spoof_noted(struct agent *a, int r, int64_t id, void *arg)
{
        struct spoofing *sp = arg;
        struct pc_vps *vps = pc_model_find(a->model, sp->vps);
        const char *kind = kind_name(sp->kind);
        char what[192];
        size_t kinds;
        bool new_kind;

        if (r < 0 || vps == NULL)
                goto out;
        kinds = episode_kinds(a, sp->vps, id, kind, sp->t.tv_sec, &new_kind);
        /* An open episode is answered again only when it shows a new kind:
         * trying one protection after another is an attempt to circumvent. */
        if (r == 0 && (!new_kind || kinds < 2 || !(agent_response_bits(vps, "spoof") & PC_RESP_TERMINATE)))
                goto out;
        if (r == 0)
                agent_log("%s on %s: %s (%s) in open incident #%" PRId64 ", its %zu%s kind of spoofing", sp->vps,
                          sp->iface, kind, sp->claimed, id, kinds, kinds == 2 ? "nd" : kinds == 3 ? "rd" : "th");
        else
                agent_log("%s on %s: %s (%s): incident #%" PRId64, sp->vps, sp->iface, kind, sp->claimed, id);
        snprintf(what, sizeof(what), "spoofing (%s): %s", kind, sp->claimed);
        if (strcmp(sp->kind, "ipv4") == 0 || strcmp(sp->kind, "ipv6") == 0)
                snprintf(what, sizeof(what), "IP spoofing: sent packets with source %s, which is not assigned to it",
                         sp->claimed);
        agent_respond_episode(a, vps, "spoof", id, what, NULL, sp->t.tv_sec * 1000000000LL + sp->t.tv_nsec, kinds,
                              NULL);
out:
        free(sp);
}

static void spoof_cb(const struct pc_nflog_packet *p, void *userdata)
{
        struct agent *a = userdata;
        const char *kind = p->prefix + strlen(PC_SPOOF_PREFIX);
        char claimed[INET6_ADDRSTRLEN] = "?", dst[INET6_ADDRSTRLEN] = "?", sample[2 * 64 + 1];
        char evidence[768];
        struct spoofing *sp;
        struct pc_vps *vps;
        struct timespec t;

        if (strncmp(p->prefix, PC_SPOOF_PREFIX, strlen(PC_SPOOF_PREFIX)) != 0)
                return;
        clock_gettime(CLOCK_MONOTONIC, &t);
        vps = pc_model_find_iface(a->model, p->iface);
        if (vps == NULL)
                return;
        if (!a->cfg->detectors.spoof_enabled) {
                if (!a->spoof_off_told)
                        agent_log("Spoofing by %s on %s not answered: detectors.spoof.enabled is false in %s; the "
                                  "kernel still drops and counts spoofed packets (vps show), but no incident is "
                                  "opened and no response follows (said once)", vps->id, p->iface, a->config_path);
                a->spoof_off_told = true;
                return;
        }
        a->spoof_off_told = false;
        if (p->family == AF_INET || p->family == AF_INET6) {
                inet_ntop(p->family, p->src, claimed, sizeof(claimed));
                inet_ntop(p->family, p->dst, dst, sizeof(dst));
        }
        if (strcmp(kind, "arp") == 0 && p->head_len >= 28)
                inet_ntop(AF_INET, p->head + 14, claimed, sizeof(claimed)); /* ARP sender IP */
        else if (strcmp(kind, "nd") == 0 && p->head_len >= 64)
                inet_ntop(AF_INET6, p->head + 48, claimed, sizeof(claimed)); /* the NA's target */
        else if (strcmp(kind, "mac") == 0 && p->has_hwsrc)
                snprintf(claimed, sizeof(claimed), "%02x:%02x:%02x:%02x:%02x:%02x", p->hwsrc[0], p->hwsrc[1],
                         p->hwsrc[2], p->hwsrc[3], p->hwsrc[4], p->hwsrc[5]);
        for (size_t i = 0; i < p->head_len && i < 64; i++)
                snprintf(sample + 2 * i, 3, "%02x", p->head[i]);
        sample[2 * (p->head_len < 64 ? p->head_len : 64)] = '\0';
        snprintf(evidence, sizeof(evidence),
                 "{\"kind\":\"%s\",\"claimed_source\":\"%s\",\"destination\":\"%s\",\"interface\":\"%s\","
                 "\"protocol\":%u,\"length\":%zu,\"headers\":\"%s\"}",
                 kind_name(kind),
                 claimed, dst, p->iface, p->l4proto, p->len, sample);
        sp = calloc(1, sizeof(*sp));
        if (sp == NULL) {
                agent_log("Failed to record spoofing by %s: out of memory", vps->id);
                return;
        }
        snprintf(sp->vps, sizeof(sp->vps), "%s", vps->id);
        snprintf(sp->iface, sizeof(sp->iface), "%s", p->iface);
        snprintf(sp->kind, sizeof(sp->kind), "%s", kind);
        snprintf(sp->claimed, sizeof(sp->claimed), "%s", claimed);
        sp->t = t;
        if (agent_incident(a, vps, "spoof", 1, evidence, a->cfg->detectors.spoof_episode_gap, spoof_noted, sp) < 0)
                free(sp);
}

/* One logged packet: spoofing, or a VPS the kernel put on scan hold. */
static void event_cb(const struct pc_nflog_packet *p, void *userdata)
{
        if (strcmp(p->prefix, PC_SCAN_HOLD_PREFIX) == 0)
                agent_scan_hold(userdata, p->iface);
        else if (strcmp(p->prefix, PC_SCAN_HELD_PREFIX) == 0)
                agent_scan_held_contact(userdata, p);
        else if (strcmp(p->prefix, PC_FLOOD_OUT_PREFIX) == 0 || strcmp(p->prefix, PC_FLOOD_IN_PREFIX) == 0 ||
                 strcmp(p->prefix, PC_FLOOD_SPREAD_PREFIX) == 0 ||
                 strcmp(p->prefix, PC_REFLECT_PREFIX) == 0)
                agent_sampled_event(userdata, p);
        else
                spoof_cb(p, userdata);
}

void agent_events_dispatch(struct agent *a)
{
        int r = pc_nflog_dispatch(a->nflog, event_cb, a);

        if (r < 0)
                agent_log("Failed to read spoofing events: %s", strerror(-r));
}
