/* Spoofing: packets the kernel dropped for a forged source become one
 * incident per episode, and the site's policy answers (provider A: suspend
 * the VPS and email its owner; a policy that filters takes the escalation
 * ladder's step).  With detectors.spoof.enabled false the kernel still
 * drops and counts, and nothing more happens. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "agent/agent.h"
#include "dataplane/nft_ruleset.h"
#include "respond/ladder.h"

int agent_events_open(struct agent *a)
{
        int r = pc_nflog_open(PC_NFLOG_GROUP, &a->nflog);

        if (r < 0)
                agent_log("Failed to read spoofing events (NFLOG group %d): %s; spoofed packets are still "
                          "dropped, but no incident or response follows", PC_NFLOG_GROUP, strerror(-r));
        return r;
}

/* The ladder's step for spoofing incident <incident> of <vps_id> at <now>:
 * the earlier spoofing incidents within escalation.memory decide it
 * (respond/ladder.h).  If the store cannot say, the first step, logged. */
static struct pc_ladder_step ladder_step(struct agent *a, const char *vps_id, int64_t incident, int64_t now)
{
        const struct pc_escalation *e = &a->cfg->escalation;
        int64_t earlier[PC_ESCALATION_STEPS_MAX];
        size_t n = 0;

        if (pc_store_incident_times(a->store, vps_id, "spoof", now - e->memory, incident, earlier,
                                    PC_ARRAY_SIZE(earlier), &n) < 0) {
                agent_log("Failed to read %s's earlier spoofing incidents, taking the ladder's first step: %s",
                          vps_id, pc_store_errmsg(a->store));
                n = 0;
        }
        return pc_ladder_step(e, earlier, n, now);
}

/* Carries out the policy's response to a new spoofing incident: a policy
 * that suspends suspends; one that filters takes the escalation ladder's
 * step (a filter of the step's length, or a suspension at a 'suspend'
 * step); one that only notifies has queued its notice with the incident. */
static void respond(struct agent *a, struct pc_vps *vps, int64_t incident, const char *what,
                    int64_t first_ns)
{
        unsigned resp = vps->site->policy->on_spoofing;
        bool filters = resp & (PC_RESP_OUTBOUND_FILTER | PC_RESP_INBOUND_FILTER), suspend;
        char reason[256], id[PC_NAME_MAX], step[128] = "", len[32] = "", nth[16], mem[32];
        struct pc_actor who = { .by = "portcullisd", .reason = reason };
        struct pc_ladder_step st = { .kind = PC_LADDER_NONE, .repeat = 1 };
        int64_t action = 0, now = pc_now();
        json_t *reply;
        int r = 0;

        snprintf(id, sizeof(id), "%s", vps->id); /* vps is replaced by the sync below */
        if (filters && !(resp & PC_RESP_SUSPEND)) {
                st = ladder_step(a, id, incident, now);
                pc_format_duration(a->cfg->escalation.memory, mem, sizeof(mem));
                if (st.kind == PC_LADDER_FILTER)
                        pc_format_duration(st.seconds, len, sizeof(len));
                if (st.kind != PC_LADDER_NONE)
                        snprintf(step, sizeof(step), "; the %s within %s: step %zu of %zu, %s",
                                 pc_ladder_ordinal(st.repeat, nth, sizeof(nth)), mem, st.index + 1,
                                 a->cfg->escalation.n_steps, st.kind == PC_LADDER_SUSPEND ? "suspend" : len);
        }
        suspend = (resp & PC_RESP_SUSPEND) || (filters && st.kind == PC_LADDER_SUSPEND);
        snprintf(reason, sizeof(reason), "%s (incident #%" PRId64 "%s)", what, incident, step);
        if (suspend && vps->suspended) {
                agent_log("%s: incident #%" PRId64 " recorded; already suspended", id, incident);
                return;
        } else if (suspend)
                r = pc_store_suspend(a->store, id, incident, &who, &action);
        else if (filters) {
                struct pc_filter f = { .scope = PC_SCOPE_ALL, .incident_id = incident };

                f.direction = (resp & PC_RESP_OUTBOUND_FILTER ? PC_DIR_EGRESS : 0) |
                              (resp & PC_RESP_INBOUND_FILTER ? PC_DIR_INGRESS : 0);
                /* No ladder at all: a filter until an admin lifts it. */
                f.until = st.kind == PC_LADDER_FILTER ? now + st.seconds : 0;
                r = pc_store_filter_place(a->store, id, &f, &who, &action);
        } else {
                agent_log("%s: incident #%" PRId64 " recorded; policy %s answers spoofing with %s", id, incident,
                          vps->site->policy->name, resp & PC_RESP_NOTIFY ? "a notice to the owner" : "no action");
                return; /* the notice, if any, was queued with the incident */
        }
        if (r < 0) {
                agent_log("Failed to act on %s's spoofing (incident #%" PRId64 "): %s", id, incident,
                          pc_store_errmsg(a->store));
                return;
        }
        reply = json_object();
        r = agent_sync_vps(a, id, reply);
        json_decref(reply);
        if (r == 0) {
                struct timespec t;

                clock_gettime(CLOCK_MONOTONIC, &t);
                agent_log("%s %s%s%s%s for spoofing (incident #%" PRId64 ", %s #%" PRId64 "%s), %.1f ms after the "
                          "first spoofed packet reached the agent; the owner's email is queued",
                          suspend ? "Suspended" : "Filtered", id, suspend || len[0] == '\0' ? "" : " (",
                          suspend ? "" : len, suspend || len[0] == '\0' ? "" : ")", incident, suspend ? "suspension" : "filter", action, step,
                          (t.tv_sec * 1e9 + t.tv_nsec - first_ns) / 1e6);
        }
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

static void spoof_cb(const struct pc_nflog_packet *p, void *userdata)
{
        struct agent *a = userdata;
        const char *kind = p->prefix + strlen(PC_SPOOF_PREFIX);
        char claimed[INET6_ADDRSTRLEN] = "?", dst[INET6_ADDRSTRLEN] = "?", sample[2 * 64 + 1];
        char evidence[768];
        struct pc_vps *vps;
        struct timespec t;
        int64_t id;
        bool opened, notice, wanted;
        unsigned resp;

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
        /* A suspension or filter tells the owner itself; a notify-only
         * response is a notice, queued with the incident. */
        resp = vps->site->policy->on_spoofing;
        wanted = (resp & PC_RESP_NOTIFY) &&
                 !(resp & (PC_RESP_SUSPEND | PC_RESP_OUTBOUND_FILTER | PC_RESP_INBOUND_FILTER));
        notice = wanted && notifier_incident_notice_due(a, vps->id, "spoof");
        if (pc_store_incident_note(a->store, vps->id, "spoof", 1, pc_now(), evidence,
                                   a->cfg->detectors.spoof_episode_gap, &id, &opened,
                                   notice ? PC_INCIDENT_NOTICE : 0) < 0) {
                agent_log("Failed to record spoofing by %s: %s", vps->id, pc_store_errmsg(a->store));
                return;
        }
        if (!opened)
                return;
        if (wanted)
                notifier_incident_opened(a, vps->id, "spoof", notice, pc_now());
        agent_log("%s on %s: %s (%s): incident #%" PRId64, vps->id, p->iface, kind_name(kind), claimed, id);
        {
                char what[192];

                snprintf(what, sizeof(what), "spoofing (%s): %s", kind_name(kind), claimed);
                if (strcmp(kind, "ipv4") == 0 || strcmp(kind, "ipv6") == 0)
                        snprintf(what, sizeof(what), "IP spoofing: sent packets with source %s, which is not assigned to it",
                                 claimed);
                respond(a, vps, id, what, t.tv_sec * 1000000000LL + t.tv_nsec);
        }
}

void agent_events_dispatch(struct agent *a)
{
        int r = pc_nflog_dispatch(a->nflog, spoof_cb, a);

        if (r < 0)
                agent_log("Failed to read spoofing events: %s", strerror(-r));
}
