/* The port-scan detector: which VPSes probe destinations that do not
 * answer.  A pure state machine: no sockets, no store, no clock of its
 * own (every call is given <now_ms>, milliseconds on any clock that does
 * not go back: a time earlier than one already given is taken as that
 * one), no logging.  The agent feeds it what conntrack says of the
 * connections a VPS opened and acts on the findings it reports.
 *
 * What it decides, once:
 *   - a first contact is a destination (family, address, port, and the
 *     protocol only as "one with ports" or not: a peer's TCP and UDP on
 *     one port are one destination, an echo request another) the VPS did
 *     not contact within contact_memory_ms, boundary
 *     included (contacted exactly contact_memory_ms ago: a repeat; a
 *     millisecond more: a first contact again).  Only first contacts are
 *     judged; a repeat OPENED refreshes the destination's time, nothing
 *     else.  Outcomes are per destination: the first outcome of a first
 *     contact settles it, later ones are ignored (but see the timeout);
 *   - a first contact fails when REFUSED or CLOSED before an answer,
 *     and when still unanswered pending_timeout_ms after it was opened
 *     (at exactly that age).  ANSWERED, it is a success only if its
 *     host (family and address; an IPv6 one's /64) has not paid within
 *     contact_memory_ms -- in this walk or an earlier one -- and it pays
 *     now; otherwise it is neither a success nor a failure.  So one host
 *     answering on any number of ports offsets one failure per contact
 *     memory, and restarting the walk does not let it pay again.  The
 *     VPS remembers the last PC_SCAN_CREDITS hosts that paid (one
 *     forgotten sooner may pay again: a busy client's credits must not
 *     run out), and a walk counts at most PC_SCAN_HOSTS successes.  A
 *     timed-out contact answered before its failure was counted (below)
 *     is answered; answered after, its failure is undone if the walk did
 *     not restart between the two (and is then a success by the same
 *     rule); otherwise the late answer counts for nothing in the walk;
 *   - outcomes count in the walk (and failures in the slow test) in the
 *     order the contacts were opened: an outcome waits for those of the
 *     VPS's contacts opened before it (pending_timeout_ms at most);
 *   - the fast test is Jung et al.'s Threshold Random Walk: each outcome
 *     adds ln(θ1/θ0) (success) or ln((1-θ1)/(1-θ0)) (failure) to the
 *     VPS's Λ, computed as failures * the one + successes * the other, so
 *     that Λ and the counts always agree.  Λ >= ln(β/α): a FAST finding;
 *     Λ <= ln((1-β)/(1-α)): benign.  Either way the walk restarts from 0
 *     (counts and hosts cleared; contacts still pending carry over and
 *     count in the new walk when they resolve).  With the defaults, 5
 *     net failures (failures minus successes) make a FAST finding, 4 net
 *     successes restart the walk.  A walk with answers banked (Λ < 0)
 *     restarts when the kernel holds the VPS (pc_scan_held): held, it
 *     can make no more than the budget's first contacts, too few to
 *     outweigh them;
 *   - confirmation (confirm_probes > 0): Λ reaching the threshold
 *     makes the VPS a SUSPECT finding, not a FAST one; its walk goes on
 *     (no restart) and each further failure, and each destination
 *     pc_scan_held_contact() says the kernel held back (while held or a
 *     suspect; since the VPS's hold, so a burst held before the walk's
 *     verdict counts), counts towards confirm_probes: reached, a FAST
 *     finding; not within confirm_window_ms of the suspicion, an
 *     UNCONFIRMED one (score: the count), the walk restarts, and the VPS
 *     is released.  A suspect is never released by answers, and a VPS
 *     already a scanner is found at once;
 *   - the slow test counts distinct failed destinations (REFUSED, CLOSED
 *     unanswered, or timed out), each entered once, when it fails: a
 *     sketch cannot take one out, so a destination answered after its
 *     timeout still counts once towards the threshold.  Over a sliding
 *     window: PC_SCAN_SUBWINDOWS sub-windows of slow_window_ms /
 *     PC_SCAN_SUBWINDOWS, the current one and the ones before it (so
 *     between 5/6 and all of slow_window_ms back), each three
 *     HyperLogLog sketches of 256 one-byte registers (768 bytes,
 *     allocated with the sub-window's first failure): of the (family,
 *     protocol, address, port) pairs, of the hosts (family, address) and
 *     of the ports (protocol, port).  Estimates are within about 5% up
 *     to a few hundred (linear counting), 6.5% above; a handful is exact
 *     but for the odd collision (5 in 256: 4%).  Memory per VPS is
 *     bounded whatever the number of destinations.  Estimate >=
 *     slow_threshold: a SLOW finding, and the sketches are cleared;
 *   - shape, from the distinct hosts H and ports P among the failures:
 *     H is few if H <= 3 or 8 H <= P, P is few if P <= 3 or 8 P <= H;
 *     "vertical" if H is few and P not (1 host x 5 ports, 3 x 100),
 *     "horizontal" if P is few and H not (5 x 1, 100 x 5), "block" if
 *     neither is (5 x 5, 20 x 10), "mixed" if both are (too little to
 *     tell: 2 x 2);
 *   - hold budget (Weaver, Staniford and Paxson): C = pending + failed -
 *     succeeded over the first contacts the VPS made since its last
 *     release (or since the detector first saw it), each change applied
 *     as it happens and C kept >= 0, so that successes bank no credit.
 *     Succeeded is as in the walk: an answer that is no success there
 *     (or a late one after the walk restarted) only takes the contact
 *     out of pending or failed, so a host answers for C once a walk too.
 *     Once told the kernel holds a VPS (pc_scan_held), the detector
 *     reports RELEASE as soon as C < hold_budget (at once, if it already
 *     is), then C restarts at 0 (the kernel's budget refills).  A VPS
 *     with a FAST or SLOW finding is a scanner and is never released,
 *     until pc_scan_forget();
 *   - limits: at most max_contacts_per_vps destinations per VPS and
 *     max_contacts in all (each time the least recently contacted one
 *     of the VPS, or of all, is evicted) and max_vps VPSes.  An evicted
 *     destination still pending counts as a failure first (a flood of
 *     first contacts cannot push its own failures out); its late answer
 *     is then ignored.  The VPS evicted is the least recently active one
 *     neither held nor a scanner (one of those only when all are), and
 *     everything about it is forgotten: its walk, budget and sketches
 *     restart from nothing when it comes back.  A VPS is also forgotten after
 *     max(contact_memory_ms, slow_window_ms) without any event, unless
 *     held or a scanner: its partial walk is dropped, so a scanner that
 *     pauses that long between probes is left to the slow test.
 *
 * Findings are reported through a callback, synchronously, from the call
 * whose event or time caused them (pc_scan_event and pc_scan_held also
 * run the timeouts due at <now_ms> first, so results do not depend on
 * how often pc_scan_tick is called).  The finding and the strings it
 * points to are valid only during the callback, which must not call
 * the detector.  After a FAST or SLOW finding that test restarts for the
 * VPS, so each is reported once per episode. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PC_SCAN_SAMPLE 8             /* failed contacts a finding lists */
#define PC_SCAN_HOSTS 64             /* most successes (hosts) in one walk */
#define PC_SCAN_CREDITS 64           /* hosts remembered as having paid, per VPS */
#define PC_SCAN_CONFIRM_MAX 10000    /* largest confirm_probes */
#define PC_SCAN_SUBWINDOWS 6         /* sub-windows of the slow test */
#define PC_SCAN_VPS_MAX (1u << 20)   /* largest max_vps */
#define PC_SCAN_CONTACTS_MAX (1u << 26)     /* largest max_contacts */
#define PC_SCAN_CONTACTS_PER_VPS_MAX 65536u /* largest max_contacts_per_vps */
#define PC_SCAN_TIME_MAX (366LL * 86400 * 1000) /* longest time parameter, ms */

enum pc_contact_outcome {
        PC_CONTACT_OPENED,   /* the VPS opened a connection/flow (conntrack NEW) */
        PC_CONTACT_ANSWERED, /* the destination answered: TCP SYN-ACK seen / UDP reply seen */
        PC_CONTACT_REFUSED,  /* the destination refused: TCP RST without ever answering, or ICMP unreachable */
        PC_CONTACT_CLOSED,   /* conntrack forgot the flow (DESTROY); if never answered it is a failure */
};

struct pc_contact {
        const char *vps;     /* the VPS's id (<= 63 bytes, copied if kept) */
        int family;          /* AF_INET or AF_INET6 */
        uint8_t proto;       /* IPPROTO_TCP, IPPROTO_UDP, ... */
        uint8_t addr[16];    /* destination address (4 or 16 bytes used) */
        uint16_t port;       /* destination port, host order (0 for protocols without ports) */
};

/* traceroute (UDP, the default on Linux and BSD) sends each probe to the
 * next port of this range of one host, with a growing TTL: the routers on
 * the way answer with ICMP time-exceeded, which conntrack files as related
 * and never as an answer, so each probe would be a failed first contact
 * and one traceroute a port scan.  A host's ports in this range are one
 * destination instead (the kernel's containment counts them as one too),
 * so a traceroute is one first contact of its host.  Nothing listens
 * there: a scan of this range learns nothing, and a horizontal one still
 * counts one contact per host. */
#define PC_TRACEROUTE_PORT_FIRST 33434
#define PC_TRACEROUTE_PORT_LAST 33534

/* The port a first contact to <port> over <proto> counts under:
 * PC_TRACEROUTE_PORT_FIRST for UDP in the traceroute range, else <port>. */
static inline uint16_t pc_scan_contact_port(uint8_t proto, uint16_t port)
{
        return proto == 17 /* UDP */ && port >= PC_TRACEROUTE_PORT_FIRST && port <= PC_TRACEROUTE_PORT_LAST
                       ? PC_TRACEROUTE_PORT_FIRST
                       : port;
}

/* What a host says to its link rather than to anyone: DHCP, NetBIOS,
 * SSDP, WS-Discovery, mDNS and LLMNR datagrams to a multicast or
 * broadcast address, and IGMP.  A router never forwards them; a bridge
 * floods them to every port, so at a bridged site they would be first
 * contacts that nobody answers, and a booting VPS a suspect.  Only these:
 * a datagram to the all-hosts group (224.0.0.1, ff02::1) reaches every
 * service of every neighbour bound to the wildcard address, and a sweep of
 * its ports is a scan (lab/hostile/bridged_multicast_sweep).  The kernel's
 * containment has the same list (nft_ruleset.c, scan_part). */
#define PC_LINK_SERVICE_PORTS 67, 137, 138, 547, 1900, 3702, 5353, 5355

/* True if a first packet over <proto> to <dst> (4 or 16 bytes of
 * <family>), port <dport>, is one of those. */
static inline bool pc_scan_link_service(int family, const uint8_t *dst, uint8_t proto, uint16_t dport)
{
        static const uint16_t ports[] = { PC_LINK_SERVICE_PORTS };
        bool group = family == AF_INET ? (dst[0] & 0xf0) == 0xe0 || (dst[0] & dst[1] & dst[2] & dst[3]) == 255
                                       : dst[0] == 0xff;

        if (!group)
                return false;
        if (family == AF_INET && proto == 2 /* IGMP */)
                return true;
        for (size_t i = 0; proto == 17 /* UDP */ && i < sizeof(ports) / sizeof(ports[0]); i++)
                if (ports[i] == dport)
                        return true;
        return false;
}

struct pc_scan_params {
        double false_positive_rate; /* α, 0 < α < β */
        double detection_rate;      /* β, < 1 */
        double benign_success;      /* θ0, a benign VPS's first contacts that succeed, < 1 */
        double scanner_success;     /* θ1, a scanner's, 0 < θ1 < θ0 */
        int64_t pending_timeout_ms; /* > 0: unanswered this long is a failure */
        unsigned hold_budget;       /* B >= 1 */
        int64_t contact_memory_ms;  /* >= pending_timeout_ms */
        size_t max_contacts_per_vps;
        size_t max_contacts;        /* destinations remembered in all */
        size_t max_vps;
        int64_t slow_window_ms;     /* >= PC_SCAN_SUBWINDOWS */
        unsigned slow_threshold;    /* >= 1 distinct failed destinations */
        /* The fast test's confirmation: 0, a FAST finding when Λ reaches
         * the threshold; else a SUSPECT finding then, and the FAST one
         * when the VPS has made confirm_probes more first contacts --
         * failed, or held back by the kernel (pc_scan_held_contact) --
         * within confirm_window_ms (> 0) of it; none: UNCONFIRMED. */
        unsigned confirm_probes;    /* <= PC_SCAN_CONFIRM_MAX */
        int64_t confirm_window_ms;
        uint64_t seed;              /* of the hashes; 0: a random one (tests set it) */
};

enum pc_scan_finding_kind {
        PC_SCAN_FAST,        /* a scanner (confirmed, if confirmation is on) */
        PC_SCAN_SLOW,        /* a slow scanner */
        PC_SCAN_RELEASE,     /* held, and its first contacts are answered: release it */
        PC_SCAN_SUSPECT,     /* the walk says scanner: hold it until confirmed */
        PC_SCAN_UNCONFIRMED, /* a suspect that stopped: release it, no finding */
};
#define PC_SCAN_KINDS 5

struct pc_scan_dest {
        int family;
        uint8_t proto;
        uint8_t addr[16];
        uint16_t port;
};

struct pc_scan_finding {
        enum pc_scan_finding_kind kind;
        const char *vps;
        /* FAST: Λ; SLOW: the distinct failed destinations estimated;
         * RELEASE: C when released. */
        double score;
        /* FAST and RELEASE: the walk's outcomes (RELEASE: those since the
         * walk last restarted).  SLOW: the outcomes in the window since
         * its first failure.  <pending>: first contacts awaiting an
         * outcome now. */
        uint64_t failures, successes, pending;
        /* Among the failures: FAST, exact over those still remembered;
         * SLOW, estimated; RELEASE, 0. */
        uint64_t distinct_hosts, distinct_ports;
        /* FAST: the first contacts, failed or held back, that confirmed
         * the suspicion (0 without confirmation); others: 0. */
        uint64_t confirmed_by;
        const char *shape;          /* "vertical", "horizontal", "block" or "mixed"; RELEASE: "" */
        /* FAST: the earliest and latest opening of the walk's first
         * contacts; SLOW: of the window's failures; RELEASE: 0. */
        int64_t first_ms, last_ms;
        /* Failed contacts, newest first: FAST, the walk's still
         * remembered; SLOW, all still remembered. */
        struct pc_scan_dest sample[PC_SCAN_SAMPLE];
        size_t n_sample;
};

/* Receives a finding; <f> and what it points to are valid only during
 * the call, which must not call the detector. */
typedef void (*pc_scan_cb)(void *userdata, const struct pc_scan_finding *f);

/* What the detector holds about one VPS now (pc_scan_stats). */
struct pc_scan_vps {
        double score;               /* Λ of the current walk */
        uint64_t failures, successes; /* of the current walk */
        uint64_t pending;           /* first contacts awaiting an outcome */
        uint64_t contacts;          /* destinations remembered */
        uint64_t budget_count;      /* C */
        double slow_estimate;       /* distinct failures in the window */
        uint64_t confirm_count;     /* a suspect's first contacts towards confirmation */
        bool held, scanner, suspect;
};

struct pc_scan;

/* Fills <p> with the defaults: α 0.001, β 0.99, θ0 0.8, θ1 0.2, timeout
 * 2 s, budget 5, memory 10 min, 512 destinations per VPS, 1,048,576 in
 * all, 65,536 VPSes, window 1 h, threshold 100, a random seed. */
void pc_scan_params_default(struct pc_scan_params *p);

/* Creates a detector with a copy of <p>.  -EINVAL when <p> is out of
 * the ranges its fields state (α >= β, θ1 >= θ0, a zero budget, a
 * memory shorter than the timeout, a limit of 0 or over its maximum, a
 * NaN...); -ENOMEM. */
int pc_scan_new(const struct pc_scan_params *p, struct pc_scan **ret);

/* Frees <s>; accepts NULL; returns NULL. */
struct pc_scan *pc_scan_free(struct pc_scan *s);

/* Feeds the outcome <o> of a contact <c> of the VPS <c>->vps at
 * <now_ms>, after running the timeouts due then.  Findings go to <cb>
 * (may be NULL: they are dropped, the state changes all the same).
 * OPENED makes the VPS known; the other outcomes of a VPS or
 * destination not remembered are ignored (0).  -EINVAL: no VPS id, one
 * of 64 bytes or more, a family other than AF_INET or AF_INET6, an
 * unknown outcome; -ENOMEM: the contact is not remembered. */
int pc_scan_event(struct pc_scan *s, const struct pc_contact *c, enum pc_contact_outcome o, int64_t now_ms,
                  pc_scan_cb cb, void *userdata);

/* The kernel has held back the VPS <vps>'s first contacts at <now_ms>:
 * RELEASE goes to <cb> as soon as its C is below the budget (at once if
 * it is now) unless it is a scanner.  Makes the VPS known.  Call it
 * after feeding the conntrack events read so far, or the OPENED events
 * that made the kernel hold it may not have been counted yet and the
 * release comes too early.  -EINVAL: <vps> NULL or too long; -ENOMEM. */
int pc_scan_held(struct pc_scan *s, const char *vps, int64_t now_ms, pc_scan_cb cb, void *userdata);

/* The kernel held back (dropped) a first contact <c> of its VPS at
 * <now_ms> (c->proto and c->port as for pc_scan_event).  While the VPS is
 * held or a suspect, each destination not among the last 16 held back
 * counts towards confirming it (a FAST finding to <cb> when it is
 * confirmed); otherwise, or for a VPS not known, nothing (0).  -EINVAL as
 * pc_scan_event's. */
int pc_scan_held_contact(struct pc_scan *s, const struct pc_contact *c, int64_t now_ms, pc_scan_cb cb,
                         void *userdata);

/* Runs what is due at <now_ms>: pending contacts time out, destinations
 * and idle VPSes are forgotten.  Costs what expired, not what is held;
 * call it every 100 ms to 1 s, so that timeouts are reported even when
 * no event comes. */
void pc_scan_tick(struct pc_scan *s, int64_t now_ms, pc_scan_cb cb, void *userdata);

/* Forgets everything about the VPS <vps> (removed, or its finding acted
 * upon: a scanner starts afresh, and is no longer held); a VPS not
 * known is ignored. */
void pc_scan_forget(struct pc_scan *s, const char *vps);

/* Fills *<ret> with what <s> holds about <vps>; -ENOENT if nothing. */
int pc_scan_stats(const struct pc_scan *s, const char *vps, struct pc_scan_vps *ret);

/* Number of VPSes known to <s>. */
size_t pc_scan_vps_count(const struct pc_scan *s);

/* Number of destinations remembered by <s>, all VPSes together. */
size_t pc_scan_contact_count(const struct pc_scan *s);

/* Bytes <s> holds (its tables, pools and sketches, not the allocator's
 * overhead). */
size_t pc_scan_memory(const struct pc_scan *s);

/* The most pc_scan_memory() can reach with the valid parameters <p>. */
size_t pc_scan_memory_max(const struct pc_scan_params *p);

/* Checks <s>'s internal invariants (lists, indexes, counts, Λ within
 * its thresholds, the walk's hosts distinct), in time linear in what it
 * holds: 0, or -EUCLEAN at the first one broken.  For tests and
 * fuzzing. */
int pc_scan_check(const struct pc_scan *s);
