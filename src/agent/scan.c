/* Port scans: the kernel's conntrack events of the flows VPSes open feed
 * the detector (detect/scan.h); its findings become incidents and the
 * policy's response, and its releases let a VPS the kernel held back go on
 * (docs/DETECTION.md).  The kernel holds back a VPS's unproven first
 * contacts by itself (nft_ruleset.c, scan_contain); this only decides. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "dataplane/nft_ruleset.h"
#include "detect/scan.h"
#include "events/ct_events.h"
#include "policy/addr_index.h"

#define SCAN_EPISODE_GAP 3600 /* scans an hour apart are separate incidents */
#define TCP_SYN_RECV 2        /* TCP_CONNTRACK_* */
#define TCP_ESTABLISHED 3
#define TCP_CLOSE 8

static int64_t now_ms(void)
{
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

/* The detector's parameters from the config. */
static void scan_params(const struct pc_detectors *d, struct pc_scan_params *p)
{
        pc_scan_params_default(p);
        p->false_positive_rate = d->scan_false_positive_rate;
        p->detection_rate = d->scan_detection_rate;
        p->pending_timeout_ms = d->scan_pending_timeout * 1000;
        p->contact_memory_ms = d->scan_contact_memory * 1000;
        p->hold_budget = d->scan_hold_after;
        p->slow_window_ms = d->scan_slow_window * 1000;
        p->slow_threshold = d->scan_slow_threshold;
        p->confirm_probes = d->scan_confirm_probes;
        p->confirm_window_ms = d->scan_hold_timeout * 1000;
}

/* Says so if detectors.scan.exclude covers a VPS (`portcullis check`
 * refuses it): the kernel does not hold back scans of it, the detector
 * still finds them. */
static void exclude_warn(struct agent *a)
{
        char why[512];

        if (pc_scan_exclude_covers_vps(a->cfg, a->model, why, sizeof(why)) != NULL)
                agent_log("Warning: %s; the detector still counts contacts to VPSes there", why);
}

int agent_scan_open(struct agent *a)
{
        struct pc_scan_params p;
        int r;

        exclude_warn(a);
        if (!a->cfg->detectors.scan_enabled) {
                agent_log("Port-scan detection is off (detectors.scan.enabled is false in %s)", a->config_path);
        } else {
                scan_params(&a->cfg->detectors, &p);
                r = pc_scan_new(&p, &a->scan);
                if (r < 0) {
                        agent_log("Failed to start port-scan detection: %s", strerror(-r));
                        return r;
                }
        }
        /* Conntrack's events feed the scan detector and, where a VPS
         * sends mail past the proxy (an smtp exception at a site without
         * one), the spam detector's count of its direct connections. */
        if (!a->cfg->detectors.scan_enabled && !a->cfg->detectors.spam_enabled)
                return 0;
        r = pc_ct_events_open(PC_CT_EV_NEW | PC_CT_EV_UPDATE | PC_CT_EV_DESTROY, &a->ct);
        if (r < 0) {
                agent_log("Failed to read conntrack events: %s; port scans are not detected (scanners are "
                          "still held back by the kernel for %" PRId64 " s at a time), nor mail sent past the "
                          "proxy", strerror(-r), a->cfg->detectors.scan_hold_timeout);
                a->scan = pc_scan_free(a->scan);
                return r;
        }
        return 0;
}

void agent_scan_reconfigure(struct agent *a)
{
        struct pc_scan_params p;
        struct pc_scan *fresh = NULL;

        exclude_warn(a);
        if (!a->cfg->detectors.scan_enabled) {
                if (a->scan != NULL)
                        agent_log("Port-scan detection is now off (detectors.scan.enabled is false)");
                a->scan = pc_scan_free(a->scan);
                return; /* the conntrack socket stays (the spam detector's) */
        }
        if (a->ct == NULL) {
                agent_log("Port-scan detection is on after the reload, but the agent reads conntrack events "
                          "only from its start: restart it to detect scans");
                return;
        }
        scan_params(&a->cfg->detectors, &p);
        if (pc_scan_new(&p, &fresh) < 0) {
                agent_log("Failed to restart port-scan detection with the new parameters; keeping the old ones");
                return;
        }
        pc_scan_free(a->scan);
        a->scan = fresh;
        a->n_scan_forget = 0;
        a->n_scan_refill = 0;
}

int agent_scan_fd(const struct agent *a)
{
        return a->ct != NULL ? pc_ct_events_fd(a->ct) : -1;
}

void agent_scan_close(struct agent *a)
{
        a->ct = pc_ct_events_close(a->ct);
        a->scan = pc_scan_free(a->scan);
        a->addr_ix = addr_index_free(a->addr_ix);
}

/* The VPS whose address opened a flow from <ev>'s source, or NULL.  The
 * index follows the model: rebuilt after a change, at the first event. */
/* The VPS that has address <addr> (4 or 16 bytes of <family>), or NULL. */
static struct pc_vps *vps_at(struct agent *a, int family, const uint8_t *addr)
{
        struct sockaddr_storage ss = { 0 };
        const char *id;

        if (a->addr_ix == NULL || a->addr_ix_gen != a->changes) {
                struct addr_index *ix = NULL;

                if (addr_index_build(a->model, &ix) < 0)
                        return NULL; /* the old one, if any, stays */
                addr_index_free(a->addr_ix);
                a->addr_ix = ix;
                a->addr_ix_gen = a->changes;
        }
        if (family == AF_INET) {
                struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

                sin->sin_family = AF_INET;
                memcpy(&sin->sin_addr, addr, 4);
        } else {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

                sin6->sin6_family = AF_INET6;
                memcpy(&sin6->sin6_addr, addr, 16);
        }
        id = addr_index_lookup(a->addr_ix, (struct sockaddr *)&ss);
        return id != NULL ? pc_model_find(a->model, id) : NULL;
}

/* The VPS whose flow <ev> is (its source), or NULL. */
static struct pc_vps *flow_vps(struct agent *a, const struct pc_ct_event *ev)
{
        return vps_at(a, ev->family, ev->src);
}

static const char *proto_name(uint8_t proto)
{
        switch (proto) {
        case IPPROTO_TCP: return "tcp";
        case IPPROTO_UDP: return "udp";
        case IPPROTO_SCTP: return "sctp";
        case IPPROTO_DCCP: return "dccp";
        case IPPROTO_UDPLITE: return "udplite";
        case IPPROTO_ICMP: return "icmp";
        case IPPROTO_ICMPV6: return "ipv6-icmp";
        default: return "other";
        }
}

/* The evidence of finding <f>, as JSON text (caller frees), or NULL. */
static char *evidence_of(const struct pc_scan_finding *f)
{
        json_t *o = json_object(), *samples = json_array();
        char *text;

        json_object_set_new(o, "detector", json_string(f->kind == PC_SCAN_SLOW ? "slow-scan" : "fast-scan"));
        json_object_set_new(o, "score", json_real(f->score));
        json_object_set_new(o, "failed_first_contacts", json_integer((json_int_t)f->failures));
        json_object_set_new(o, "answered_first_contacts", json_integer((json_int_t)f->successes));
        json_object_set_new(o, "pending_first_contacts", json_integer((json_int_t)f->pending));
        json_object_set_new(o, "distinct_hosts", json_integer((json_int_t)f->distinct_hosts));
        json_object_set_new(o, "distinct_ports", json_integer((json_int_t)f->distinct_ports));
        if (f->confirmed_by > 0)
                json_object_set_new(o, "confirming_first_contacts", json_integer((json_int_t)f->confirmed_by));
        json_object_set_new(o, "shape", json_string(f->shape != NULL ? f->shape : "mixed"));
        json_object_set_new(o, "first_to_last_ms", json_integer(f->last_ms - f->first_ms));
        for (size_t i = 0; i < f->n_sample; i++) {
                char addr[INET6_ADDRSTRLEN] = "?", one[96];

                inet_ntop(f->sample[i].family, f->sample[i].addr, addr, sizeof(addr));
                snprintf(one, sizeof(one), f->sample[i].family == AF_INET6 ? "[%s]:%u/%s" : "%s:%u/%s", addr,
                         f->sample[i].port, proto_name(f->sample[i].proto));
                json_array_append_new(samples, json_string(one));
        }
        json_object_set_new(o, "sample", samples);
        text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return text;
}

/* The fast test finds <vps> a suspect: held back (where the policy
 * contains scans) until it confirms itself a scanner by going on; or it
 * did not, and is released with no incident.  Contacts a stranger makes
 * a VPS open (a URL fetcher, a resolver) stop there. */
static void suspect_found(struct agent *a, const struct pc_vps *vps, const struct pc_scan_finding *f)
{
        bool contained = pc_vps_scans_contained(a->cfg, vps, pc_now());
        int r = 0;

        if (f->kind == PC_SCAN_SUSPECT) {
                if (contained)
                        r = pc_dp_scan_hold(a->dp, vps);
                agent_log("%s: %" PRIu64 " first contacts failed, %" PRIu64 " answered: a suspected port scan; "
                          "an incident if it makes %u more within %" PRId64 " s%s",
                          vps->id, f->failures, f->successes, a->cfg->detectors.scan_confirm_probes,
                          a->cfg->detectors.scan_hold_timeout,
                          !contained ? "" : r < 0 ? " (failed to hold it back)" : ", its new destinations held back meanwhile");
                if (r < 0)
                        agent_log("Failed to hold back %s: %s", vps->id, pc_dp_errmsg(a->dp));
                return;
        }
        if (contained)
                r = pc_dp_scan_release(a->dp, vps);
        agent_log("%s: made %.0f more first contacts within %" PRId64 " s, under %u: not a port scan, no incident%s",
                  vps->id, f->score, a->cfg->detectors.scan_hold_timeout, a->cfg->detectors.scan_confirm_probes,
                  !contained ? "" : r < 0 ? " (failed to release it; the kernel does)" : "; released");
}

/* A scanner's response is in the kernel: the hold is redundant, and it
 * would outlive a filter lifted within hold-timeout, hiding the VPS's next
 * scan from the detector (its probes dropped before conntrack). */
static void scan_answered(struct agent *a, const char *vps_id)
{
        struct pc_vps *vps = pc_model_find(a->model, vps_id);

        if (vps != NULL && pc_dp_scan_release(a->dp, vps) < 0)
                agent_log("Failed to release %s from scan containment: %s", vps_id, pc_dp_errmsg(a->dp));
}

/* A finding of the detector: an incident and the policy's response, or
 * the release of a VPS the kernel held back. */
static void found(void *userdata, const struct pc_scan_finding *f)
{
        struct agent *a = userdata;
        struct pc_vps *vps = pc_model_find(a->model, f->vps);
        char *evidence, what[256];
        bool contained;
        int r;

        if (vps == NULL)
                return;
        if (f->kind == PC_SCAN_SUSPECT || f->kind == PC_SCAN_UNCONFIRMED) {
                suspect_found(a, vps, f);
                return;
        }
        if (f->kind == PC_SCAN_RELEASE) {
                if (!pc_vps_scans_contained(a->cfg, vps, pc_now()))
                        return;
                r = pc_dp_scan_release(a->dp, vps);
                if (r < 0)
                        agent_log("Failed to release %s from scan containment (the kernel does after %" PRId64
                                  " s): %s", vps->id, a->cfg->detectors.scan_hold_timeout, pc_dp_errmsg(a->dp));
                else
                        agent_log("%s: first contacts answered: released from scan containment (%.0f of its first "
                                  "contacts unanswered, under the budget of %u; %" PRIu64 " pending)",
                                  vps->id, f->score, a->cfg->detectors.scan_hold_after, f->pending);
                return;
        }
        /* Not from inside the callback: the detector forgets the
         * scanner, whose episode is answered, at the next dispatch. */
        if (a->n_scan_forget < PC_ARRAY_SIZE(a->scan_forget))
                snprintf(a->scan_forget[a->n_scan_forget++], sizeof(a->scan_forget[0]), "%s", f->vps);
        evidence = evidence_of(f);
        snprintf(what, sizeof(what), "port scanning (%s, %s): %" PRIu64 " first contacts failed, %" PRIu64
                 " answered, to %" PRIu64 " hosts and %" PRIu64 " ports%s",
                 f->kind == PC_SCAN_SLOW ? "slow" : "fast", f->shape != NULL ? f->shape : "mixed", f->failures,
                 f->successes, f->distinct_hosts, f->distinct_ports,
                 f->confirmed_by > 0 ? ", and it went on while held back" : "");
        /* (what the response needs of <vps> is copied first: responding
         * changes the model, which may replace it) */
        contained = pc_vps_scans_contained(a->cfg, vps, pc_now());
        agent_abuse(a, vps, "scan", f->failures, evidence, SCAN_EPISODE_GAP, what, NULL,
                    contained ? scan_answered : NULL);
        free(evidence);
}

/* Weaver's containment counts a VPS's unanswered first contacts; the
 * kernel's budget only counts first contacts.  A VPS whose contacts are
 * being answered (its count C well under the budget) gets its budget
 * refilled before it runs out, so that a legitimate burst to many new
 * hosts is not held back wave after wave: at most once per dispatch,
 * in refill_flush(). */
static void refill_maybe(struct agent *a, const struct pc_vps *vps)
{
        struct pc_scan_vps st;

        if (!pc_vps_scans_contained(a->cfg, vps, pc_now()) || a->n_scan_refill >= PC_ARRAY_SIZE(a->scan_refill) ||
            pc_scan_stats(a->scan, vps->id, &st) < 0 || st.held || st.scanner ||
            st.budget_count * 2 >= a->cfg->detectors.scan_hold_after)
                return;
        for (size_t i = 0; i < a->n_scan_refill; i++)
                if (strcmp(a->scan_refill[i], vps->iface) == 0)
                        return;
        snprintf(a->scan_refill[a->n_scan_refill++], sizeof(a->scan_refill[0]), "%s", vps->iface);
}

static void refill_flush(struct agent *a)
{
        for (size_t i = 0; i < a->n_scan_refill; i++) {
                const struct pc_vps *vps = pc_model_find_iface(a->model, a->scan_refill[i]);

                if (vps != NULL && pc_dp_scan_release(a->dp, vps) < 0)
                        agent_log("Failed to refill %s's budget of first contacts: %s", a->scan_refill[i],
                                  pc_dp_errmsg(a->dp));
        }
        a->n_scan_refill = 0;
}

/* One conntrack event: a VPS's flow opened, answered, refused or gone. */
static void ct_event(const struct pc_ct_event *ev, void *userdata)
{
        struct agent *a = userdata;
        struct pc_contact c = { .family = ev->family, .proto = ev->proto,
                                .port = pc_scan_contact_port(ev->proto, ev->dport) };
        enum pc_contact_outcome o;
        struct pc_vps *vps;

        /* Only flows the kernel saw a VPS open: a forged packet with a
         * VPS's address from the uplink is nobody's first contact. */
        if (ev->mark != PC_CT_MARK_VPS)
                return;
        /* A connection to an MX that the proxy does not carry. */
        if (ev->type == PC_CT_NEW && ev->proto == IPPROTO_TCP && ev->dport == 25 && a->spam != NULL &&
            !pc_ct_event_redirected(ev) && (vps = flow_vps(a, ev)) != NULL)
                agent_spam_direct(a, vps, ev);
        /* every protocol: those with ports by port, ICMP requests and the
         * others (GRE, IPIP, ESP...) by host, as the kernel holds them */
        if (a->scan == NULL)
                return;
        if (ev->type == PC_CT_NEW)
                o = PC_CONTACT_OPENED;
        else if (ev->type == PC_CT_DESTROY)
                o = PC_CONTACT_CLOSED;
        else if (ev->proto == IPPROTO_TCP && (ev->tcp_state == TCP_SYN_RECV || ev->tcp_state == TCP_ESTABLISHED))
                o = PC_CONTACT_ANSWERED;
        else if (ev->proto == IPPROTO_TCP && ev->tcp_state == TCP_CLOSE)
                o = PC_CONTACT_REFUSED; /* after an answer, the detector knows it as answered */
        else if (ev->proto != IPPROTO_TCP && ev->seen_reply)
                o = PC_CONTACT_ANSWERED; /* a datagram's, an SCTP INIT's or an echo's reply */
        else
                return;
        vps = flow_vps(a, ev);
        if (vps == NULL)
                return; /* not a VPS's flow (or one to a VPS: inbound) */
        /* An approved audit, or a destination that never leaves the
         * provider: not the detectors' business. */
        if (pc_vps_may_scan(vps, pc_now()))
                return;
        /* An excluded range that holds customers' VPSes (the provider's
         * own) excludes its services, never its VPSes: probing neighbours
         * is scanning (the kernel does not hold it back there; this finds
         * it). */
        if (pc_scan_excluded(a->cfg, ev->family, ev->dst) && vps_at(a, ev->family, ev->dst) == NULL)
                return;
        /* DHCP, mDNS, SSDP... forwarded at a bridged site: nobody answers */
        if (pc_scan_link_service(ev->family, ev->dst, ev->proto, ev->dport))
                return;
        c.vps = vps->id;
        memcpy(c.addr, ev->dst, ev->family == AF_INET ? 4 : 16);
        pc_scan_event(a->scan, &c, o, now_ms(), found, a);
        if (o == PC_CONTACT_ANSWERED)
                refill_maybe(a, vps);
}


/* Forgets the scanners whose findings were just answered (found()): when
 * their filter ends they start afresh.  One not forgotten (more than 16 at
 * once) stays a scanner to the detector, held back until hold-timeout
 * each time, until the detector evicts it. */
static void forget_answered(struct agent *a)
{
        for (size_t i = 0; i < a->n_scan_forget && a->scan != NULL; i++)
                pc_scan_forget(a->scan, a->scan_forget[i]);
        a->n_scan_forget = 0;
}

void agent_scan_dispatch(struct agent *a)
{
        int r;

        if (a->ct == NULL)
                return;
        r = pc_ct_events_dispatch(a->ct, ct_event, a);
        forget_answered(a);
        refill_flush(a);
        if (r < 0)
                agent_log("Failed to read conntrack events: %s", strerror(-r));
        if (pc_ct_events_dropped(a->ct) != a->ct_lost_told) {
                a->ct_lost_told = pc_ct_events_dropped(a->ct);
                agent_log("Lost %" PRIu64 " conntrack events so far (the kernel's queue overflowed): scans may "
                          "be seen late; the kernel's containment does not depend on them",
                          a->ct_lost_told);
        }
}

void agent_scan_tick(struct agent *a)
{
        if (a->scan != NULL)
                pc_scan_tick(a->scan, now_ms(), found, a);
        forget_answered(a);
}

/* The transport protocol and destination port of the packet <p> logged:
 * false if the port is not within the bytes logged (pc_nflog_transport
 * walks IPv6 extension headers: a probe behind an empty
 * destination-options header logged as protocol 60, port 0, every held
 * probe to a host was one destination, and a scanner was never
 * confirmed). */
static bool logged_dest(const struct pc_nflog_packet *p, uint8_t *proto, uint16_t *port)
{
        size_t off;

        *port = 0;
        if (!pc_nflog_transport(p, proto, &off))
                return false;
        switch (*proto) {
        case IPPROTO_TCP: case IPPROTO_UDP: case IPPROTO_SCTP: case IPPROTO_DCCP: case IPPROTO_UDPLITE:
                break;
        default:
                return true; /* counted by host */
        }
        if (p->head_len < off + 4)
                return false;
        *port = (uint16_t)(p->head[off + 2] << 8 | p->head[off + 3]);
        return true;
}

void agent_scan_held_contact(struct agent *a, const struct pc_nflog_packet *p)
{
        struct pc_vps *vps = pc_model_find_iface(a->model, p->iface);
        struct pc_contact c = { .family = p->family, .proto = p->l4proto };
        uint16_t port;

        if (vps == NULL || a->scan == NULL || (p->family != AF_INET && p->family != AF_INET6))
                return;
        c.vps = vps->id;
        /* a port hidden past the bytes logged: each such packet is a new
         * destination (no client pads its headers so; a scanner would, to
         * make its probes one) */
        if (!logged_dest(p, &c.proto, &port)) {
                c.proto = IPPROTO_UDP;
                port = (uint16_t)++a->held_unread;
        }
        c.port = pc_scan_contact_port(c.proto, port);
        memcpy(c.addr, p->dst, p->family == AF_INET ? 4 : 16);
        pc_scan_held_contact(a->scan, &c, now_ms(), found, a);
        forget_answered(a);
}

void agent_scan_hold(struct agent *a, const char *iface)
{
        struct pc_vps *vps = pc_model_find_iface(a->model, iface);

        if (vps == NULL)
                return;
        agent_log("%s: more than %u unanswered first contacts: the kernel holds back its new destinations",
                  vps->id, a->cfg->detectors.scan_hold_after);
        /* The events that made the kernel hold it first, or the release
         * would come before they were counted. */
        agent_scan_dispatch(a);
        if (a->scan != NULL)
                pc_scan_held(a->scan, vps->id, now_ms(), found, a);
        forget_answered(a);
}
