/* The model: VPSes and what is in force on each (exceptions, filters,
 * suspension), indexed for constant-time evaluation.  The store fills it;
 * the evaluator reads it. */
#pragma once

#include "base/util.h"
#include "policy/config.h"

#define PC_VPS_ADDRS_MAX 64    /* addresses/prefixes on one VPS */
#define PC_VPS_EXCEPTIONS_MAX 64
#define PC_VPS_FILTERS_MAX 64

#define PC_EXCEPTION_PORTS_MAX 16 /* port ranges of a port-subset exception */
#define PC_PORTS_TEXT_MAX 128     /* "tcp/465,tcp/587": such a subset as text, with its NUL */
/* ... as pc_ports_format writes it: every range "udp/65535-65535" and a
 * comma, with its NUL.  Longer than what is asked for (a bare port is
 * written "tcp/PORT"): 16 bare ports of 4 digits are 79 bytes asked, 143
 * written. */
#define PC_PORTS_CANON_MAX (PC_EXCEPTION_PORTS_MAX * 16)

struct pc_exception {
        int64_t id;
        char service[PC_NAME_MAX];
        /* Only these ports of the service's rule are lifted (a ticket that
         * asked for 587 and 465 but not 25); n_ports 0: all of them. */
        struct pc_port_range ports[PC_EXCEPTION_PORTS_MAX];
        size_t n_ports;
        int64_t ticket_id; /* 0: granted without a ticket */
        char by[PC_NAME_MAX];
        char reason[256];
        int64_t created;
        int64_t until; /* 0: no end */
};

/* What a filter covers within its direction. */
enum pc_scope_kind {
        PC_SCOPE_ALL,     /* all traffic */
        PC_SCOPE_SERVICE, /* one service's ports */
        PC_SCOPE_PORTS,   /* one protocol/port range */
};

struct pc_filter {
        int64_t id;
        unsigned direction; /* enum pc_dir bits */
        enum pc_scope_kind scope;
        const struct pc_service *service; /* PC_SCOPE_SERVICE */
        struct pc_port_range ports;       /* PC_SCOPE_PORTS */
        int64_t incident_id;              /* 0: placed by hand */
        char by[PC_NAME_MAX];
        char reason[256];
        int64_t created;
        int64_t until; /* 0: no end */
        /* Not 0: no filter of support's but the rest of a port-subset
         * exception's service, kept closed while the exception lifts the
         * rule (pc_vps_add_exception adds these; the store never has them).
         * The kernel programs it as any filter; evaluation and listings
         * skip it (pc_evaluate judges the subset itself). */
        int64_t exception_id;
};

struct pc_suspension {
        int64_t id;
        int64_t incident_id; /* 0: by hand */
        char by[PC_NAME_MAX];
        char reason[256];
        int64_t created;
        bool terminated;     /* a termination: only an admin lifts it */
};

/* (A field added here, or to the structures above, is compared in
 * pc_vps_equal() too.) */
struct pc_vps {
        /* What evaluation reads comes first, in one cache line: with 100,000
         * VPSes a verdict costs one miss on the VPS, not several. */
        const struct pc_site *site;
        uint64_t exempt_mask; /* derived by pc_vps_reindex(): bit i set if an
                               * exception names rule i's service */
        struct pc_exception *exceptions; /* heap arrays owned by the VPS, */
        size_t n_exceptions;             /* grown by pc_vps_add_*() */
        struct pc_filter *filters;
        size_t n_filters;
        bool suspended;

        char id[PC_NAME_MAX];
        char owner[256]; /* email */
        char lang[8];    /* "en", "it" */
        char iface[16]; /* "": none; set before pc_model_add(), then only
                         * through pc_model_set_iface() (it is indexed) */
        uint8_t mac[6];
        bool has_mac;
        struct pc_prefix *addrs;
        size_t n_addrs;
        struct pc_suspension suspension; /* valid if suspended */
        int64_t created;
        /* What its VM manager last said (vps start/stop): informational, a
         * stopped VPS keeps its whole policy in force.  0/false: running. */
        bool stopped;
        int64_t run_since; /* when it last started or stopped; 0: since registered */
        /* The hypervisor it runs on ("": a single-host installation, where
         * the one agent enforces every VPS) and, while it moves, the one
         * that enforced it before and keeps it until <host>'s agent says
         * it enforces it (pc_store_vps_arrived). */
        char host[PC_NAME_MAX];
        char moving_from[PC_NAME_MAX];
        char moving_iface[16]; /* its interface on <moving_from> */
        /* The host it moved from between hosts (and its interface there)
         * until that host's agent says the VM left it
         * (pc_store_vps_departed): the move is unconfirmed until then,
         * through <host>'s arrival.  "": none. */
        char departing_from[PC_NAME_MAX];
        char departing_iface[16];
        size_t model_slot; /* private to model.c: position in the model */
};

struct pc_model; /* opaque: VPSes by id and by interface */

/* Creates an empty model over <cfg>, which must outlive it. */
int pc_model_new(const struct pc_config *cfg, struct pc_model **ret);

/* A copy of <vps> that is in no model, into *<ret> (pc_vps_free).  -ENOMEM. */
int pc_vps_clone(const struct pc_vps *vps, struct pc_vps **ret);

/* Whether <a> and <b> hold the same in every field but their place in
 * their models: the same site (the same load of the configuration), the
 * same strings, arrays in the same order.  A field added to struct pc_vps
 * (or to what it holds) must be compared here too: a caller skips the work
 * a VPS that is equal would cost (dataplane_nft.c, sync_from_prev). */
bool pc_vps_equal(const struct pc_vps *a, const struct pc_vps *b);

/* A copy of <vps> (of another load of the configuration) in no model,
 * pointed at <cfg>: its site and its filters' services by name, and the
 * filters its exceptions keep closed derived again from <cfg>'s policy;
 * into *<ret> (pc_vps_free).  -ENOENT if <cfg> has not its site or a
 * service of its filters, -ENOMEM. */
int pc_vps_rebase(const struct pc_vps *vps, const struct pc_config *cfg, struct pc_vps **ret);

/* Frees <m> and its VPSes; accepts NULL; returns NULL. */
struct pc_model *pc_model_free(struct pc_model *m);

/* Allocates an empty VPS (all fields zero).  -ENOMEM. */
int pc_vps_new(struct pc_vps **ret);

/* Frees <vps> and its arrays; accepts NULL; returns NULL. */
struct pc_vps *pc_vps_free(struct pc_vps *vps);

/* Adds <vps> (from pc_vps_new, its site set) to <m>, which takes ownership
 * on success only.  -EEXIST if the id is taken, -ENOMEM. */
int pc_model_add(struct pc_model *m, struct pc_vps *vps);

/* Removes the VPS <id> from <m> and hands it to the caller; -ENOENT. */
int pc_model_take(struct pc_model *m, const char *id, struct pc_vps **ret);

/* Removes the VPS <id>; -ENOENT if absent. */
int pc_model_remove(struct pc_model *m, const char *id);

/* Returns the VPS <id> or NULL.  Constant time. */
struct pc_vps *pc_model_find(const struct pc_model *m, const char *id);

/* Returns the VPS behind interface <iface> or NULL (NULL for "": a VPS
 * without an interface is not found by it).  Constant time.  The store
 * keeps interfaces unique; should two VPSes of <m> share one anyway,
 * either may be returned. */
struct pc_vps *pc_model_find_iface(const struct pc_model *m, const char *iface);

/* Gives <vps>, a VPS of <m>, the interface <iface> ("" for none) and
 * re-indexes it.  -EINVAL if <iface> does not fit, -ENOENT if <vps> is
 * not <m>'s. */
int pc_model_set_iface(struct pc_model *m, struct pc_vps *vps, const char *iface);

/* Makes room in <m> for <n> VPSes in all, so that adding up to that many
 * neither grows nor rehashes its indexes (a caller that knows the count:
 * a snapshot's read).  0, or -ENOMEM with <m> usable as it was. */
int pc_model_reserve(struct pc_model *m, size_t n);

/* Number of VPSes, and the <i>-th (i < count; order changes on removal). */
size_t pc_model_count(const struct pc_model *m);
struct pc_vps *pc_model_at(const struct pc_model *m, size_t i);

const struct pc_config *pc_model_config(const struct pc_model *m);

/* Append a copy of an address/exception/filter to <vps>.  -ENOSPC past
 * the PC_VPS_*_MAX limits, -ENOMEM; pc_vps_add_exception gives -EEXIST if
 * an exception for the same service exists.  Exceptions reindex.  An
 * exception for some ports of a service (n_ports > 0) whose rule at the
 * VPS's site is exemptable also adds, for the kernel, a filter (its
 * exception_id set) for each of the rule's other ports and protocols,
 * ending with it: the kernel lifts a rule for a VPS as a whole, so the
 * ports not approved stay closed by those (the VPS's site must be set). */
int pc_vps_add_addr(struct pc_vps *vps, const struct pc_prefix *p);
int pc_vps_add_exception(struct pc_vps *vps, const struct pc_exception *e);
int pc_vps_add_filter(struct pc_vps *vps, const struct pc_filter *f);

/* Recomputes <vps>'s derived fields after its exceptions or site changed. */
void pc_vps_reindex(struct pc_vps *vps);

/* Exceptions to anti-spoofing name an extra prefix the VPS may send from:
 * "source-prefix:198.51.100.64/29".  True (and the prefix in *<ret>, if
 * not NULL) if <service> is such a name with a valid prefix. */
#define PC_SOURCE_PREFIX "source-prefix:"
bool pc_exception_source_prefix(const char *service, struct pc_prefix *ret);

/* True if <service> can be the subject of an exception: a service name,
 * or a source prefix as above. */
bool pc_exception_subject_valid(const char *service);

/* Parses a ports subset "tcp/587,tcp/465" (a bare port is tcp; ranges as
 * "udp/6881-6889") into <ret> (at most PC_EXCEPTION_PORTS_MAX), sorted by
 * protocol and first port, overlaps refused.  0, or -EINVAL with why in
 * <err>. */
int pc_ports_parse(const char *s, struct pc_port_range *ret, size_t *ret_n, char *err, size_t errsz);

/* Formats <n> ranges as "tcp/465,tcp/587" into <buf> ("" for none). */
void pc_ports_format(const struct pc_port_range *p, size_t n, char *buf, size_t size);

/* True if every port of <sub> is one of <rule>'s ports. */
bool pc_ports_within(const struct pc_port_range *sub, size_t n_sub, const struct pc_port_range *of, size_t n_of);

/* True if exception <e> lifts the block of <proto>/<port>: it has no ports
 * subset, or the subset has the port. */
bool pc_exception_covers(const struct pc_exception *e, uint8_t proto, uint16_t port);

/* The number of <vps>'s filters that are support's (not kept closed for a
 * port-subset exception). */
size_t pc_vps_real_filters(const struct pc_vps *vps);

/* True if going from <old> to <fresh> can take away something a connection
 * may rely on: only then are connections worth ending (reading the conntrack
 * table costs about 3.5 us per entry).  A grant, a lift or
 * an unsuspension only adds. */
bool pc_vps_change_tightens(const struct pc_vps *old, const struct pc_vps *fresh, int64_t now);

/* True if going from <old> to <fresh> (NULL: removed) lets the VPS do
 * something <old> did not at <now>: another site, a source address more,
 * another MAC, a suspension or a filter lifted or ending sooner, an
 * exception granted or ending later.  What a VPS leaving this host may
 * not be given here on its way out (docs/FLEET.md). */
bool pc_vps_change_loosens(const struct pc_vps *old, const struct pc_vps *fresh, int64_t now);

/* Returns the exception of <vps> for <service> or NULL. */
const struct pc_exception *pc_vps_exception_for(const struct pc_vps *vps, const char *service);

/* An exception for port scanning (an approved security audit): the VPS's
 * scans are neither held back nor detected while it is in force. */
#define PC_EXCEPTION_SCANNING "scanning"

/* True if <vps>'s port scans are contained in the kernel and answered at
 * <now>: a VPS whose policy contains scans (pc_policy_contains_scans),
 * without an exception for scanning in force.  On its interface: at a
 * routed site in the inet table, at a bridged one in the bridge table
 * (which sees the port). */
bool pc_vps_scans_contained(const struct pc_config *cfg, const struct pc_vps *vps, int64_t now);

/* detectors.scan.exclude is for the provider's services (resolvers,
 * mirrors), never its customers: the first VPS of <m> with an address an
 * excluded prefix of <cfg> covers (and why, in <why>), or NULL. */
const struct pc_vps *pc_scan_exclude_covers_vps(const struct pc_config *cfg, const struct pc_model *m, char *why,
                                                size_t size);

/* True if <vps> has an exception for scanning in force at <now>. */
bool pc_vps_may_scan(const struct pc_vps *vps, int64_t now);
