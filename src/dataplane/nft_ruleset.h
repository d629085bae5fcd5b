/* The nftables ruleset as text: the skeleton (tables, chains, sets and the
 * policies' port maps, all fixed by the config) and the elements each VPS
 * adds to the per-VPS sets.  Pure functions: nothing here talks to the
 * kernel, so all of it is unit-tested.
 *
 * Per-packet cost never depends on the number of VPSes or exceptions: every
 * lookup is a set or verdict map keyed by interface (and protocol/port). */
#pragma once

#include "base/strbuf.h"
#include "policy/model.h"

/* Spoofed packets go, rate-limited in the kernel, to this NFLOG group with
 * these prefixes; the agent reads them (src/events/nflog.c). */
#define PC_NFLOG_GROUP 7
#define PC_NFLOG_GROUP_STR "7"
#define PC_SPOOF_PREFIX_V4 "pc-spoof-ipv4"
#define PC_SPOOF_PREFIX_V6 "pc-spoof-ipv6"
#define PC_SPOOF_PREFIX_RA "pc-spoof-ra"     /* a router advertisement from a VPS */
#define PC_SPOOF_PREFIX_DHCP "pc-spoof-dhcp" /* a DHCP/DHCPv6 server reply from a VPS */
#define PC_SPOOF_PREFIX "pc-spoof-"         /* what every kind starts with */
#define PC_SPOOF_LOG_RATE "20/second"
/* How long a bridged VPS's answer from an address it does not own counts
 * as one (dropped without a finding, nft_ruleset.c, bridge_answers): to a
 * "who-has" (Linux answers at once; proxy ARP within 0.8 s), and to IP
 * (each packet received refreshes it, so a TCP exchange's retransmissions
 * stay answers). */
#define PC_ARP_ASKED_TIMEOUT "3s"
#define PC_IP_ASKED_TIMEOUT "10s"
/* A VPS's first contacts went past the kernel's budget: it is held back
 * (nft_ruleset.c, scan_contain), logged once per hold to PC_NFLOG_GROUP. */
#define PC_SCAN_HOLD_PREFIX "pc-scan-hold"
/* A first contact the hold dropped: at most PC_SCAN_HELD_LOG_RATE a
 * second per VPS are logged, to confirm a suspect (detect/scan.h). */
#define PC_SCAN_HELD_PREFIX "pc-scan-held"
#define PC_SCAN_HELD_LOG_RATE 50
/* Sampled rates over the detectors' thresholds (nft_ruleset.c, sampled):
 * a VPS flooding one destination, a VPS flooded, a VPS's UDP service
 * reflecting.  At most twice a second per VPS and kind. */
#define PC_FLOOD_OUT_PREFIX "pc-flood-out"
#define PC_FLOOD_SPREAD_PREFIX "pc-flood-spread" /* to all destinations together */
#define PC_FLOOD_SPREAD 5 /* all destinations of a VPS together: 5 times one's line */
#define PC_FLOOD_IN_PREFIX "pc-flood-in"
#define PC_REFLECT_PREFIX "pc-reflect"

/* At bridged sites the bridge table (which sees the ports) decides, and
 * the inet table (which has conntrack and can reject) carries it out: the
 * bridge table marks a VPS's frame with what it decided, br_netfilter hands
 * the frame to the inet hooks, and those act on the mark unless conntrack
 * has the flow as established.  Distinct from PC_PROXY_FWMARK. */
#define PC_BR_MARK_VPS "0x50430100"    /* a frame from or to a VPS port */
/* The conntrack mark of a flow a VPS opened (either topology): whose
 * conntrack events the detectors read.  A flow opened from anywhere else,
 * even with a VPS's address as its source, is not the VPS's doing. */
#define PC_CT_MARK_VPS 0x50430100u
#define PC_BR_MARK_REJECT "0x50430101" /* a blocked service, egress: reject */
#define PC_BR_MARK_DROP "0x50430102"   /* blocked ingress, a filter: drop */
#define PC_BR_MARK_HOST "0x50430103"   /* from a VPS port up to the hypervisor */
#define PC_BR_MARK_PROXY 0x50430200u   /* + policy index: redirect to its proxy */
/* A bridged frame of a flow conntrack has as established, marked by the
 * inet table after conntrack (chain bridged_established) so that the bridge
 * table, which has no conntrack here, need not judge it again: the port's
 * policy decides a flow's first packet only, as the inet table carries it
 * out.  Outside 0x504301NN: the inet table's forward takes it for no
 * verdict of the bridge table's. */
#define PC_BR_MARK_ESTABLISHED "0x50430300"

/* Why a packet was dropped, rejected or redirected: each table has a named
 * counter "verdict_<reason>" per reason, which the deciding rules update
 * (docs/API.md, /metrics, lists the reasons).  At a bridged site the bridge
 * table's count what it marked for the inet table to carry out. */
#define NFT_VERDICT_PREFIX "verdict_"

/* One element of a named set or map. */
struct nft_elem {
        char family[8]; /* the table's family: "inet" (default when empty) or "bridge" */
        char set[40];   /* "vps_out", "p1_r0_exempt", "filter_ports_in" */
        char key[96];   /* nft syntax: "\"v201\"" or "\"v201\" . tcp . 20-23" */
        char value[40]; /* maps: "jump p1_out"; sets: "" */
        int64_t until;  /* unix time the kernel drops it; 0: never */
};

struct nft_elems {
        struct nft_elem *v;
        size_t n, cap;
};

/* The kinds of field in the keys of the per-VPS sets. */
enum nft_field {
        NFT_F_IFNAME, /* "v201": 16 bytes, NUL-padded */
        NFT_F_IPV4,
        NFT_F_IPV6,
        NFT_F_PROTO,  /* tcp, or a number: 1 byte */
        NFT_F_PORT,   /* 2 bytes, network order */
        NFT_F_ETHER,  /* 6 bytes */
        NFT_F_INT48,  /* a raw 48-bit field (a MAC in an ND option), in decimal */
        NFT_F_INT128, /* a raw 128-bit field (an ND target), 0x and 32 hex digits */
};

/* What the skeleton declares a per-VPS set as. */
struct nft_set_layout {
        enum nft_field fields[3];
        unsigned n_fields; /* more than one: a concatenation */
        bool interval;     /* its elements are ranges (or prefixes) */
        bool timeout;      /* its elements may have lifetimes */
        bool map;          /* ifname : verdict */
};

/* The layout of set <set> of table <family> ("inet", "bridge") if it is one
 * that nft_vps_elements() fills (policy exemption sets included); false for
 * every other set of the skeleton. */
bool nft_set_layout(const char *family, const char *set, struct nft_set_layout *ret);

typedef int (*nft_set_cb)(const char *family, const char *set, const struct nft_set_layout *l, void *userdata);

/* Calls <cb> for every per-VPS set (nft_set_layout) that the skeleton of
 * <cfg> declares, table by table.  A negative return of <cb> stops the
 * walk and is returned; -ENOMEM. */
int nft_per_vps_sets(const struct pc_config *cfg, nft_set_cb cb, void *userdata);

/* Writes the skeleton of table inet <cfg->agent.nft_table> and of table
 * bridge <cfg->agent.nft_table> (anti-spoofing at bridged sites) into <out>.
 * Its set `skeleton` holds nft_skeleton_id(), so that a running table can
 * be recognised as current. */
void nft_skeleton(const struct pc_config *cfg, struct strbuf *out);

/* A 32-bit hash of everything in the skeleton: it changes whenever the
 * config changes anything the kernel holds outside per-VPS elements. */
uint32_t nft_skeleton_id(const struct pc_config *cfg);

/* With agent.max-vps, the hash sets of sources (src4, src6, src6_64) hold
 * up to this many times as many elements: a VPS's IPv4 addresses, its
 * whole IPv6 addresses (its link-local one included), its /64s. */
#define NFT_ADDRS_PER_VPS 4

/* How many elements per-VPS set <set> of table <family> ("inet" or
 * "bridge"; "" is inet) may hold: its declared size, agent.max-vps or
 * NFT_ADDRS_PER_VPS times it, for the sets where some site of <cfg> gives
 * every VPS an element (0: not declared, no limit). */
unsigned nft_set_limit(const struct pc_config *cfg, const char *family, const char *set);

/* The table family that holds <vps>'s policy, filters and scan
 * containment: "bridge" at a bridged site (the inet hooks see the bridge
 * there, not the port), "inet" otherwise. */
const char *nft_vps_family(const struct pc_vps *vps);

/* Appends the elements <vps> needs at time <now> to <out> (exceptions and
 * filters that have ended are left out).  -ENOMEM. */
int nft_vps_elements(const struct pc_config *cfg, const struct pc_vps *vps, int64_t now,
                     struct nft_elems *out);

/* Sorts by (set, key) and joins exact duplicates (keeping the longest
 * lifetime).  In interval sets, ranges of one interface that overlap (the
 * kernel refuses overlaps) are cut into pieces, each lasting as long as
 * the longest-lived range over it, so that no port is left open when a
 * shorter one times out.  -ENOMEM. */
int nft_elems_normalise(struct nft_elems *e);

/* nft_elems_normalise() of the elements from index <from> on only (a
 * VPS's, appended after others').  -ENOMEM. */
int nft_elems_normalise_from(struct nft_elems *e, size_t from);

/* Puts the elements of each set together, sets in the order they first
 * appear, elements in their order: what nft_elems_commands() and a
 * netlink batch want, at a fraction of a sort's cost.  -ENOMEM. */
int nft_elems_group(struct nft_elems *e);

/* Where the elements of <e>'s set at <i> end (grouped lists): the first
 * after <i> of another set or table, or e->n. */
size_t nft_elems_set_end(const struct nft_elems *e, size_t i);

/* Matches <have> (the kernel's) against <want>, neither sorted: an element
 * of <want> not in <have>, or there with another value or a lifetime more
 * than <slack> seconds off (0 is forever), goes to <add> (and the old one
 * to <del>); an element of <have> not in <want> goes to <del>.  -ENOMEM. */
int nft_elems_reconcile(const struct nft_elems *have, const struct nft_elems *want, int64_t slack,
                        struct nft_elems *del, struct nft_elems *add);

/* Elements in <before> and not in <after> go to <del>; in <after> and not
 * in <before>, or with another lifetime or value, to <add> (and the old one
 * to <del>).  Both inputs must be normalised.  -ENOMEM. */
int nft_elems_diff(const struct nft_elems *before, const struct nft_elems *after,
                   struct nft_elems *del, struct nft_elems *add);

/* Appends "add element" (or "delete element") commands for <e>, grouped by
 * set, to <out>; timeouts are computed against <now>. */
void nft_elems_commands(const char *table, const struct nft_elems *e, bool add, int64_t now,
                        struct strbuf *out);

/* Orders elements by family, set and key (the order of normalised lists). */
int nft_elem_cmp(const struct nft_elem *x, const struct nft_elem *y);

/* What an agent's last transaction left in the kernel, recorded by that
 * transaction itself in set `state` (one element, mark . mark . mark):
 * the generation of the namespace's ruleset right after it (nft_netlink.h:
 * any later transaction, by anyone, changes it) and the fingerprint of the
 * model it made the kernel enforce.  If both still hold at the agent's
 * next start, the kernel is known to enforce that model without reading
 * its elements back. */
struct nft_state {
        uint32_t genid;
        uint64_t fp;
};

/* The fingerprint of what the kernel holds for <vps>: the sum of a 64-bit
 * hash of each of its normalised elements, taken at time 0 (every
 * exception and filter of <vps>, ended or not), so that it does not change
 * with the time, and a fleet's is the sum of its VPSes' (plus
 * nft_fingerprint_base()) however it was built.  *<ret_n>: how many of
 * those elements are in force at <now>.  <scratch> is working space, kept
 * between calls.  -EINVAL for a VPS that cannot be programmed (it adds
 * nothing to a fleet's fingerprint), -ENOMEM. */
int nft_vps_fingerprint(const struct pc_config *cfg, const struct pc_vps *vps, int64_t now,
                        struct nft_elems *scratch, uint64_t *ret_fp, size_t *ret_n);

/* The sum of the hashes nft_vps_fingerprint() adds up, of the elements of
 * <e> from index <from>: a VPS's fingerprint, if they are its elements at a
 * time when none of its exceptions and filters (it has none) has ended. */
uint64_t nft_elems_hash_sum(const struct nft_elems *e, size_t from);

/* The fingerprint of the skeleton: the part of a fleet's that <cfg> gives. */
uint64_t nft_fingerprint_base(const struct pc_config *cfg);

/* Appends the commands that make <st> the only element of set `state` of
 * table inet <table>. */
void nft_state_commands(const char *table, const struct nft_state *st, struct strbuf *out);

int nft_elems_push(struct nft_elems *e, const struct nft_elem *x);
/* Room in <e> for <n> elements in all, allocated at once: a list grown
 * from 16 by doubling is copied at each step below glibc's mmap threshold
 * (up to 32 MB), each time into fresh pages.  -ENOMEM. */
int nft_elems_reserve(struct nft_elems *e, size_t n);
void nft_elems_free(struct nft_elems *e);
