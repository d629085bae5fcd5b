/* The data plane: where the policy meets packets.  One interface, backends
 * as operations structs (nftables now; eBPF could be another).  Callers use
 * pc_dp_*() only.  Functions return 0 or a negative errno; on failure
 * pc_dp_errmsg() says what the kernel refused and why. */
#pragma once

#include "policy/model.h"

struct pc_dataplane;

/* Blocked attempts the kernel counted for one interface, protocol, port. */
struct pc_dp_attempt {
        char iface[16];
        unsigned dir; /* PC_DIR_EGRESS or PC_DIR_INGRESS */
        uint8_t proto;
        uint16_t port;
        uint64_t packets;
        int64_t last_seen; /* unix time of the latest attempt */
};

typedef int (*pc_dp_attempt_cb)(const struct pc_dp_attempt *a, void *userdata);

/* Spoofed packets the kernel dropped for one interface and family. */
struct pc_dp_spoofed {
        char iface[16];
        int family; /* AF_INET or AF_INET6 */
        uint64_t packets;
        int64_t last_seen;
};

typedef int (*pc_dp_spoofed_cb)(const struct pc_dp_spoofed *s, void *userdata);

/* What the kernel counted for one reason of its verdicts in one table. */
struct pc_dp_verdict {
        char reason[48];    /* "spoof", "blocked_service_out" (docs/API.md, /metrics) */
        const char *family; /* the table: "inet", or "bridge" (bridged sites) */
        uint64_t packets, bytes;
};

typedef int (*pc_dp_verdict_cb)(const struct pc_dp_verdict *v, void *userdata);

/* What pc_dp_sync_all() found and did. */
struct pc_dp_repair {
        bool unchanged;      /* nothing has touched the kernel's ruleset since this
                              * model's last transaction: not read back */
        bool reprogrammed;   /* the whole table was (re)written atomically */
        char why[128];       /* ...because: "table missing", "config changed" */
        size_t missing;      /* elements that should have been there */
        size_t extra;        /* elements that should not have been */
        size_t elements;     /* per-VPS elements now in the kernel */
        char example[160];   /* one repaired element, for the log */
        size_t skipped;      /* VPSes that could not be programmed */
        char skipped_example[160];
        bool from_prev;      /* the kernel's record vouched for the model before
                              * (pc_dp_sync_start's <prev>): only <changed> VPSes'
                              * elements were written, nothing read back */
        size_t changed;
};

/* The model the kernel may hold instead of the one to enforce (an agent's
 * snapshot of what it enforced last), or NULL; the caller's, freed after
 * the call that asked for it returns.  Asked for only when needed. */
typedef struct pc_model *(*pc_dp_prev_fn)(void *arg);

struct pc_dataplane_ops {
        const char *name;
        int (*open)(const struct pc_config *cfg, struct pc_dataplane **ret);
        void (*close)(struct pc_dataplane *dp);
        const char *(*errmsg)(const struct pc_dataplane *dp);
        int (*sync_all)(struct pc_dataplane *dp, const struct pc_model *m, int64_t now,
                        struct pc_dp_repair *ret);
        int (*sync_start)(struct pc_dataplane *dp, const struct pc_model *m, int64_t now, int notify_fd,
                          pc_dp_prev_fn prev, void *prev_arg, struct pc_dp_repair *ret);
        int (*sync_finish)(struct pc_dataplane *dp, const struct pc_model *m, int64_t now, int notify_fd,
                           struct pc_dp_repair *ret);
        int (*vps_change)(struct pc_dataplane *dp, const struct pc_vps *before,
                          const struct pc_vps *after, int64_t now, size_t *ret_changes);
        int (*attempts)(struct pc_dataplane *dp, pc_dp_attempt_cb cb, void *userdata);
        int (*spoofed)(struct pc_dataplane *dp, pc_dp_spoofed_cb cb, void *userdata);
        int (*verdicts)(struct pc_dataplane *dp, pc_dp_verdict_cb cb, void *userdata);
        int (*destroy)(struct pc_dataplane *dp);
        int (*held)(struct pc_dataplane *dp, size_t *ret);
        int (*scan_release)(struct pc_dataplane *dp, const struct pc_vps *vps);
        int (*scan_hold)(struct pc_dataplane *dp, const struct pc_vps *vps);
        uint64_t (*fingerprint)(const struct pc_dataplane *dp);
        bool (*enforces)(struct pc_dataplane *dp, uint64_t fp);
};

/* Opens the nftables backend for <cfg> (which must outlive it). */
int pc_dp_open(const struct pc_config *cfg, struct pc_dataplane **ret);

/* Closes <dp>; the kernel keeps enforcing (fail closed).  Accepts NULL. */
struct pc_dataplane *pc_dp_close(struct pc_dataplane *dp);

const char *pc_dp_errmsg(const struct pc_dataplane *dp);

/* Makes the kernel enforce exactly <m> at <now>.  If the kernel's ruleset
 * is as the last transaction for the same model left it (every transaction
 * records the ruleset's generation and the model's fingerprint in the
 * table, and no one has committed since), there is nothing to do and
 * nothing is read back.  Otherwise reads what the kernel holds: if the
 * table is missing or was built from another config, writes the whole
 * table in one atomic transaction; otherwise adds and deletes just the
 * elements that drifted, in one transaction.  <ret> says what it did. */
int pc_dp_sync_all(struct pc_dataplane *dp, const struct pc_model *m, int64_t now,
                   struct pc_dp_repair *ret);

/* pc_dp_sync_all() that need not keep the caller waiting while the kernel
 * is read back: 0 when it is done (*<ret> says what it did, as
 * pc_dp_sync_all()'s), or -EINPROGRESS if the kernel is being read in the
 * background.  Only a table of this config that is in place is read so: it
 * enforces what it holds meanwhile, and pc_dp_vps_change() may be called
 * (its transactions record the kernel as unverified).  <notify_fd> (an
 * eventfd or a pipe, the caller's) is written to when the read is done;
 * then call pc_dp_sync_finish() with the model as it is by then.  Other
 * pc_dp_*() calls that read or rewrite the whole kernel wait for the read
 * and discard it.  <prev> (may be NULL) is asked for the model the kernel
 * held last when the record does not vouch for <m>: if it vouches for
 * that one (nothing but the agent wrote the ruleset since), only the
 * VPSes whose elements differ are written, and nothing is read back (a
 * change made while the agent was down). */
int pc_dp_sync_start(struct pc_dataplane *dp, const struct pc_model *m, int64_t now, int notify_fd,
                     pc_dp_prev_fn prev, void *prev_arg, struct pc_dp_repair *ret);

/* Repairs what the background read of pc_dp_sync_start() found against
 * <m> at <now>, in one transaction, and only if no other came since the
 * read began: 0 and *<ret> when done; -EINPROGRESS if one did (a change
 * meanwhile) and the kernel is being read again (<notify_fd> again; after
 * three reads it reads and writes without letting the caller go on);
 * -EALREADY if no read was pending. */
int pc_dp_sync_finish(struct pc_dataplane *dp, const struct pc_model *m, int64_t now, int notify_fd,
                      struct pc_dp_repair *ret);

/* Applies the change of one VPS from <before> to <after> (NULL: it did not
 * exist / no longer exists) as element additions and deletions in one
 * transaction; cost independent of the number of VPSes.  If the kernel
 * refuses, nothing changes and -EIO is returned with the reason. */
int pc_dp_vps_change(struct pc_dataplane *dp, const struct pc_vps *before,
                     const struct pc_vps *after, int64_t now, size_t *ret_changes);

/* Calls <cb> for every (interface, protocol, port) with blocked attempts. */
int pc_dp_attempts(struct pc_dataplane *dp, pc_dp_attempt_cb cb, void *userdata);

/* Calls <cb> for every interface whose spoofed packets were counted. */
int pc_dp_spoofed(struct pc_dataplane *dp, pc_dp_spoofed_cb cb, void *userdata);

/* Calls <cb> for every reason the kernel counts its drops, rejections and
 * redirections by, in each table, with the packets and bytes counted since
 * the table was last written whole (a reprogramming starts them at 0).
 * Reads those counters alone, never a set: cheap at any number of VPSes.
 * Nothing for a table that is not there. */
int pc_dp_verdicts(struct pc_dataplane *dp, pc_dp_verdict_cb cb, void *userdata);

/* How many per-VPS elements the kernel holds now (0 without the agent's
 * tables): what it enforces for someone. */
int pc_dp_held(struct pc_dataplane *dp, size_t *ret);

/* The fingerprint of the model <dp> last made the kernel enforce (a sync,
 * then each change; 0 before any): it changes with every change of what
 * the kernel holds for a VPS, and not with the time (what ends by itself
 * leaves it as it is).  Constant time. */
uint64_t pc_dp_fingerprint(const struct pc_dataplane *dp);

/* True if the kernel's table records that the last transaction on the
 * ruleset was one that left it enforcing a model of fingerprint <fp>:
 * nothing, and no one, has changed it since. */
bool pc_dp_enforces(struct pc_dataplane *dp, uint64_t fp);

/* Releases <vps> from scan containment: it leaves the hold and its budget
 * of first contacts is full again (docs/DETECTION.md).  Done whether or
 * not it was held, in the table that contains it (its site's topology). */
int pc_dp_scan_release(struct pc_dataplane *dp, const struct pc_vps *vps);

/* Puts <vps> on scan hold now, for hold-timeout: its new destinations are
 * dropped (a suspect, until confirmed or not). */
int pc_dp_scan_hold(struct pc_dataplane *dp, const struct pc_vps *vps);

/* Deletes the agent's table (uninstall; tests). */
int pc_dp_destroy(struct pc_dataplane *dp);

extern const struct pc_dataplane_ops pc_dp_nft_ops;
