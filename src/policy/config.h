/* The configuration: catalog, policies (profiles), sites, detectors,
 * escalation, notifications, database, agent, SMTP proxy.  Loaded whole or
 * not at all. */
#pragma once

#include "base/util.h"
#include "policy/catalog.h"

#define PC_RULES_MAX 64 /* rules in one policy: exceptions are a 64-bit mask */
#define PC_SCAN_EXCLUDE_MAX 64 /* prefixes in detectors.scan.exclude */

enum pc_action {
        PC_ACTION_BLOCK,    /* egress: reject; ingress: drop */
        PC_ACTION_REDIRECT, /* to the site's SMTP proxy */
};

/* What a policy does in response to a kind of abuse; a bit set. */
enum pc_response {
        PC_RESP_NOTIFY = 1u << 0,
        PC_RESP_SUSPEND = 1u << 1,
        PC_RESP_OUTBOUND_FILTER = 1u << 2,
        PC_RESP_INBOUND_FILTER = 1u << 3,
        /* Circumventing the other responses (respond/response.h) terminates:
         * a suspension only an admin lifts. */
        PC_RESP_TERMINATE = 1u << 4,
};

/* The kinds of abuse a policy answers (its `responses:`), each also an
 * incident kind. */
enum pc_abuse {
        PC_ABUSE_SPOOFING,   /* forged sources, MACs, ARP, RA, DHCP (step 3) */
        PC_ABUSE_SCANNING,   /* port scans, fast or slow */
        PC_ABUSE_SPAM,       /* mail through the proxy or past it */
        PC_ABUSE_FLOODING,   /* the VPS floods a destination */
        PC_ABUSE_REFLECTION, /* its service is abused as a reflector */
        PC_ABUSE_ATTACKED,   /* the VPS is flooded */
        PC_ABUSE_KINDS
};

/* The config's name of <k> ("spoofing", "scanning"...), or NULL. */
const char *pc_abuse_key(enum pc_abuse k);
/* The incident kind of <k> ("spoof", "scan", "spam", "flood",
 * "reflection", "attacked"), or NULL. */
const char *pc_abuse_incident(enum pc_abuse k);
/* The abuse whose incident kind is <kind>: 0 and *<ret>, or -ENOENT. */
int pc_abuse_from_incident(const char *kind, enum pc_abuse *ret);

/* One rule of a policy: a service, restricted in a direction. */
struct pc_rule {
        unsigned index;                   /* 0-based position in the policy */
        const struct pc_service *service; /* points into pc_config.services */
        enum pc_action action;
        unsigned direction; /* enum pc_dir bits */
        struct pc_port_range ports[PC_SERVICE_PORTS_MAX]; /* resolved */
        size_t n_ports;
        uint8_t ip_protos[PC_IPPROTO_MAX]; /* selected from the service's */
        size_t n_ip_protos;
        bool exemptable;
        bool tos_event; /* use without approval is a terms-of-service event */
        char why[256];  /* the provider's reason, shown to support/customers */
        struct pc_srcpos pos;
};

/* The compiled lookup of a policy: rule index + 1 per (dir, proto, port),
 * 0 where no rule applies.  Built by pc_policy_compile(). */
struct pc_policy_table {
        uint8_t port[2][2][65536]; /* [egress=0/ingress=1][tcp=0/udp=1][port] */
        uint8_t ipproto[2][256];   /* [dir][protocol] for port-less protocols */
};

enum pc_exception_mode {
        PC_EXCEPTIONS_NONE,   /* nothing can be exempted */
        PC_EXCEPTIONS_TICKET, /* support grants per VPS after a ticket */
};

/* Whose address portcullis-smtpd connects to the MX from. */
enum pc_smtp_source {
        PC_SMTP_SOURCE_VPS,        /* the VPS's own: the MX sees the sender */
        PC_SMTP_SOURCE_HYPERVISOR, /* the hypervisor's */
};

/* What portcullis-smtpd allows each VPS of a policy.  The per-hour limits
 * count over <window> (an hour, shorter in tests); times are in seconds. */
struct pc_smtp_proxy_limits {
        enum pc_smtp_source source;
        bool upstream_tls;         /* STARTTLS to the MX when it offers it */
        unsigned messages_per_hour;
        unsigned recipients_per_message;
        unsigned recipients_per_hour;
        unsigned sessions_per_vps; /* open at once */
        int64_t window;
        int64_t command_timeout;  /* for the VPS's next command */
        int64_t data_timeout;     /* while the VPS sends a message (DATA, BDAT) */
        int64_t upstream_timeout; /* for each reply of the MX */
        int64_t connect_timeout;  /* for the TCP connection to the MX */
        int64_t client_write_timeout; /* for the VPS to read what it is sent */
        int64_t lifetime;         /* of a whole session, however busy */
};

struct pc_policy {
        char name[PC_NAME_MAX];
        char description[256];
        struct pc_rule rules[PC_RULES_MAX];
        size_t n_rules;
        enum pc_exception_mode exceptions;
        bool anti_spoofing;
        unsigned responses[PC_ABUSE_KINDS]; /* enum pc_response bits, by enum pc_abuse */
        bool has_smtp_proxy;
        char smtp_proxy_listen[64];
        bool smtp_proxy_tls; /* always false: 'tls: true' is refused */
        struct pc_smtp_proxy_limits smtp_limits; /* defaults if no smtp-proxy */
        struct pc_policy_table *table; /* owned */
        struct pc_srcpos pos;
};

/* How VPSes are attached to the hypervisor at a site. */
enum pc_topology {
        PC_TOPOLOGY_ROUTED,  /* each VPS behind its own host-side interface */
        PC_TOPOLOGY_BRIDGED, /* VPS interfaces are ports of a bridge with the uplink */
};

struct pc_site {
        char name[PC_NAME_MAX];
        char description[256];
        const struct pc_policy *policy; /* points into pc_config.policies */
        enum pc_topology topology;
        struct pc_srcpos pos;
};

struct pc_detectors {
        bool scan_enabled;
        double scan_false_positive_rate;
        double scan_detection_rate;
        int64_t scan_slow_window; /* seconds */
        unsigned scan_slow_threshold;
        /* Containment in the kernel (docs/DETECTION.md): a VPS whose policy
         * filters scanners may make <scan_hold_after> first contacts in a
         * burst (then one a second); past that its first contacts are held
         * back (dropped) until the agent releases it, or for
         * <scan_hold_timeout> seconds if the agent says nothing. */
        unsigned scan_hold_after;
        int64_t scan_hold_timeout;
        /* A VPS the fast test finds is a suspect, held back for
         * <scan_hold_timeout>; a scanner (an incident) only once it makes
         * <scan_confirm_probes> more first contacts meanwhile (0: at once). */
        unsigned scan_confirm_probes;
        int64_t scan_pending_timeout; /* an unanswered first contact is a failure after this */
        int64_t scan_contact_memory;  /* a destination contacted within this is no first contact */
        /* Destinations that never count (the provider's resolvers, its own
         * ranges): no first contact, never held back, never a failure. */
        struct pc_prefix scan_exclude[PC_SCAN_EXCLUDE_MAX];
        size_t n_scan_exclude;
        bool spam_enabled;
        unsigned spam_messages_per_hour;
        unsigned spam_recipients_per_message;
        double spam_upstream_reject_ratio;
        unsigned spam_domains_per_hour;     /* distinct recipient domains */
        unsigned spam_min_recipients;       /* the ratios judge no fewer */
        unsigned spam_limit_hits_per_hour;  /* commands refused by the proxy's limits */
        bool spoof_enabled;
        int64_t spoof_episode_gap; /* seconds */
        /* Floods, counted in the kernel on one packet in <flood_sample>:
         * out, a VPS to one destination; in, everything to one VPS. */
        bool flood_enabled;
        unsigned flood_packets_per_second;
        unsigned flood_megabits_per_second;
        unsigned flood_sample;
        /* A VPS's UDP service answering (reflecting) at more than this. */
        bool reflection_enabled;
        struct pc_port_range reflection_ports[PC_SERVICE_PORTS_MAX];
        size_t n_reflection_ports;
        unsigned reflection_megabits_per_second;
};

#define PC_ESCALATION_STEPS_MAX 8
#define PC_ESCALATION_SUSPEND (-1) /* a step that suspends instead of filtering */
#define PC_ESCALATION_TERMINATE (-2) /* a step that terminates (only an admin lifts it) */

struct pc_escalation {
        int64_t memory; /* seconds an incident counts towards repeats */
        int64_t steps[PC_ESCALATION_STEPS_MAX]; /* filter seconds, or SUSPEND */
        size_t n_steps;
};

enum pc_starttls {
        PC_STARTTLS_OPPORTUNISTIC, /* when the relay offers it */
        PC_STARTTLS_REQUIRED,
        PC_STARTTLS_OFF,
};

struct pc_notify_config {
        char relay[256];
        char from[256];
        char abuse_copy[256];
        char default_language[8];
        unsigned max_attempts;
        char templates[512];      /* folder of <lang>/<kind>.txt|.html, resolved */
        enum pc_starttls starttls; /* smtp:// only; smtps:// is TLS from the start */
        bool tls_verify;          /* check the relay's certificate */
        char username[128];       /* AUTH, with the password read from */
        char password_file[512];  /* ... this file (not the config) */
        int64_t timeout;          /* seconds for one whole send */
        int64_t retry_base;       /* first retry delay; doubles, at most 6h */
        int64_t notice_gap;       /* incident notices per VPS and kind at most this often */
        /* The provider's billing/CRM webhook for terminations ("" : none):
         * an HTTPS (or HTTP) URL, the HMAC key in a file of its own. */
        char webhook_url[512];
        char webhook_secret_file[512];
        int64_t webhook_timeout;  /* seconds for one whole POST */
};

/* The hypervisor agent, portcullisd. */
struct pc_agent_config {
        char control_socket[108]; /* sun_path of the control socket */
        char nft_table[32];       /* the agent's nftables tables: inet <name> */
        int64_t attempts_interval; /* seconds between reads of blocked-attempt counters */
        /* This hypervisor's name in a fleet ("": a single host, whose agent
         * enforces every VPS); portcullisd --host overrides it. */
        char host[PC_NAME_MAX];
        /* The snapshot of the host's policy the agent keeps to start from
         * when the database cannot be read: a path, "none", or "" (not
         * set: /var/lib/portcullis/snapshot-HOST in a fleet, none on a
         * single host). */
        char snapshot[256];
        /* agent.max-vps: the most VPSes this host will hold (0: not set).
         * The per-VPS sets that hold one element per VPS are then declared
         * with that size: a fixed hash table the kernel fills about three
         * times as fast as a resizable one, whose size is a hard limit and
         * whose buckets are allocated at once (docs/DATAPLANE.md). */
        unsigned max_vps;
};

#define PC_SMTPD_INTERNAL_MAX 256

/* The SMTP proxy, portcullis-smtpd. */
struct pc_smtpd_config {
        char control_socket[108]; /* sun_path of its control socket */
        unsigned max_sessions;    /* open at once, all VPSes together */
        char user[32];            /* the account it drops to after setup */
        /* Destinations it never connects to, besides the host's own
         * addresses, loopback, link-local, multicast... (internal networks). */
        struct pc_prefix internal[PC_SMTPD_INTERNAL_MAX];
        size_t n_internal;
};

struct pc_config {
        char *path;     /* the main file as given */
        char **files;   /* every file read; pc_srcpos.file points here */
        size_t n_files;
        char database[512];
        struct pc_service *services; /* built-ins first, then the config's */
        size_t n_services;
        struct pc_policy *policies;
        size_t n_policies;
        struct pc_site *sites;
        size_t n_sites;
        const struct pc_site *default_site; /* NULL if none configured */
        struct pc_detectors detectors;
        struct pc_escalation escalation;
        struct pc_notify_config notify;
        struct pc_agent_config agent;
        struct pc_smtpd_config smtpd;
};

/* True if the scan detectors leave <addr> (4 or 16 bytes of <family>)
 * alone: it is in detectors.scan.exclude. */
bool pc_scan_excluded(const struct pc_config *cfg, int family, const uint8_t *addr);

/* True if the kernel holds back the first contacts of a VPS under policy
 * <p> of <cfg> (docs/DETECTION.md): scan detection is on and <p> answers
 * scanning with a filter or a suspension.  A policy that only records or
 * notifies is not held back: holding is an action. */
bool pc_policy_contains_scans(const struct pc_config *cfg, const struct pc_policy *p);

/* Loads the config at <path> and every profile it names.  On success
 * *<ret> owns a complete, validated, compiled config.  On failure returns
 * -EINVAL (or -ENOENT, -ENOMEM...) and writes one line into <err> (size
 * <errsz>) of the form "FILE:LINE:COL: message naming the key"; nothing is
 * allocated. */
int pc_config_load(const char *path, struct pc_config **ret, char *err, size_t errsz);

/* Same, from a string in memory named <name> (used by the fuzzer and tests;
 * `profiles:` are resolved relative to the current directory). */
int pc_config_load_string(const char *name, const char *text, size_t len,
                          struct pc_config **ret, char *err, size_t errsz);

/* Frees <cfg> and everything it owns; accepts NULL; returns NULL. */
struct pc_config *pc_config_free(struct pc_config *cfg);

/* Builds <policy>'s lookup table.  Returns -ENOMEM. */
int pc_policy_compile(struct pc_policy *policy);

/* Lookups by name; NULL if absent. */
const struct pc_service *pc_config_service(const struct pc_config *cfg, const char *name);
const struct pc_policy *pc_config_policy(const struct pc_config *cfg, const char *name);
const struct pc_site *pc_config_site(const struct pc_config *cfg, const char *name);

/* True if <p> redirects a port to an SMTP proxy that connects from the
 * VPS's own address (smtp-proxy source: vps). */
bool pc_policy_proxy_from_vps(const struct pc_policy *p);

/* True if some site's VPSes are ports of a bridge. */
bool pc_config_has_bridged(const struct pc_config *cfg);

/* Returns the rule of <policy> for service <name>, or NULL. */
const struct pc_rule *pc_policy_rule_for(const struct pc_policy *policy, const char *service);

/* True if an exception can lift <rule> of <policy>: the rule is
 * exemptable and the policy grants exceptions at all (not `exceptions:
 * none`).  What evaluation, the ruleset, explain, services and grants all
 * ask; <rule>->exemptable alone is only what the rule says. */
bool pc_rule_exemptable(const struct pc_policy *policy, const struct pc_rule *rule);

/* Writes <cfg> in canonical form (the golden tests compare it): every
 * default made explicit, every service's ports resolved, stable order,
 * no comments.  <out> is a FILE*. */
#include <stdio.h>
void pc_config_print(const struct pc_config *cfg, FILE *out);

/* <cfg> in the same canonical form as a JSON object, key for key in the
 * order pc_config_print() writes them; the caller owns it (json_decref).
 * Numbers and booleans are JSON's, durations their config text ("30d"),
 * ports "tcp/25".  NULL if out of memory. */
struct json_t;
struct json_t *pc_config_json(const struct pc_config *cfg);
