/* The store: durable state behind one interface.  SQLite is the embedded
 * default (store_sqlite.c); PostgreSQL can be added as another
 * pc_store_ops without touching callers, who only use pc_store_*().
 *
 * Every change runs in one transaction together with its audit-log row and,
 * where the customer must be told, its notification-outbox row: either all
 * of it is written or none.  Functions return 0 or a negative errno;
 * on failure pc_store_errmsg() says what went wrong, naming the object. */
#pragma once

#include "policy/model.h"

struct pc_store;

/* Who does a change and why; recorded in the audit log. */
struct pc_actor {
        const char *by;     /* "alice", "portcullisd", "orchestrator" */
        const char *reason; /* free text; may be NULL */
};

struct pc_audit_entry {
        int64_t id;
        int64_t at;
        char by[PC_NAME_MAX];
        char action[32];      /* "vps.add", "exception.grant", ... */
        char object[128];     /* "vps/vps-101", "exception/7" */
        char vps_id[PC_NAME_MAX];
        char reason[256];
        const char *before;   /* JSON or NULL; valid during the callback */
        const char *after;    /* JSON or NULL */
};

enum pc_ticket_state {
        PC_TICKET_PENDING,
        PC_TICKET_APPROVED,
        PC_TICKET_DENIED,
        PC_TICKET_CLOSED,
};

struct pc_ticket {
        int64_t id;
        char vps_id[PC_NAME_MAX];
        char service[PC_NAME_MAX];
        enum pc_ticket_state state;
        char opened_by[PC_NAME_MAX];
        int64_t opened;
        char text[1024];
};

/* Callbacks return 0 to go on, or a negative errno to stop (returned). */
typedef int (*pc_audit_cb)(const struct pc_audit_entry *e, void *userdata);
typedef int (*pc_ticket_cb)(const struct pc_ticket *t, void *userdata);

/* A backend.  Callers never use this directly. */
struct pc_store_ops {
        const char *scheme; /* URL scheme it serves: "sqlite" */
        int (*open)(const char *location, struct pc_store **ret);
        void (*close)(struct pc_store *s);
        const char *(*errmsg)(const struct pc_store *s);
        int (*schema_version)(struct pc_store *s, int *ret_version);
        int (*load)(struct pc_store *s, struct pc_model *m);
        int (*vps_add)(struct pc_store *s, const struct pc_vps *vps, const struct pc_actor *who);
        int (*vps_remove)(struct pc_store *s, const char *id, const struct pc_actor *who);
        int (*exception_grant)(struct pc_store *s, const char *vps_id, const struct pc_exception *e,
                               const struct pc_actor *who, int64_t *ret_id);
        int (*exception_revoke)(struct pc_store *s, const char *vps_id, const char *service,
                                const struct pc_actor *who);
        int (*filter_place)(struct pc_store *s, const char *vps_id, const struct pc_filter *f,
                            const struct pc_actor *who, int64_t *ret_id);
        int (*filter_lift)(struct pc_store *s, const char *vps_id, int64_t filter_id,
                           const struct pc_actor *who);
        int (*suspend)(struct pc_store *s, const char *vps_id, int64_t incident_id,
                       const struct pc_actor *who, int64_t *ret_id);
        int (*unsuspend)(struct pc_store *s, const char *vps_id, const struct pc_actor *who);
        int (*ticket_open)(struct pc_store *s, const struct pc_ticket *t, const struct pc_actor *who,
                           int64_t *ret_id);
        int (*ticket_list)(struct pc_store *s, const char *vps_id, pc_ticket_cb cb, void *userdata);
        int (*audit_list)(struct pc_store *s, const char *vps_id, size_t limit, pc_audit_cb cb,
                          void *userdata);
        int (*vps_fetch)(struct pc_store *s, const struct pc_config *cfg, const char *id,
                         struct pc_vps **ret);
        int (*incident_note)(struct pc_store *s, const char *vps_id, const char *kind, uint64_t count,
                             int64_t at, const char *evidence, int64_t gap, int64_t *ret_id,
                             bool *ret_opened);
};

/* Opens the store named by <url> ("sqlite:/path/db", "sqlite:///path/db"),
 * creating it if needed and applying schema migrations.  A database written
 * by a newer Portcullis is refused (-EPROTONOSUPPORT) with a message saying
 * which versions.  Unknown schemes give -EPROTONOSUPPORT.  On failure a
 * message is written to <err>. */
int pc_store_open(const char *url, struct pc_store **ret, char *err, size_t errsz);

/* Closes <s>; accepts NULL; returns NULL. */
struct pc_store *pc_store_close(struct pc_store *s);

/* The last error's message, naming the object and the cause. */
const char *pc_store_errmsg(const struct pc_store *s);

/* The schema version this build writes, and the one <s> is at. */
int pc_store_schema_latest(void);
int pc_store_schema_version(struct pc_store *s, int *ret_version);

/* Loads every VPS with its addresses, active exceptions, active filters and
 * suspension into <m> (which must be empty).  A VPS whose site is not in
 * the model's config fails the load with -ENOENT naming VPS and site. */
int pc_store_load(struct pc_store *s, struct pc_model *m);

/* Loads the one VPS <id> as pc_store_load would, into a new VPS that the
 * caller owns (free with pc_vps_free).  -ENOENT if it does not exist. */
int pc_store_vps_fetch(struct pc_store *s, const struct pc_config *cfg, const char *id,
                       struct pc_vps **ret);

/* Records <count> more observations of abuse <kind> ("blocked-use",
 * "spoof", "scan", ...) by <vps_id> at <at>, with <evidence> (JSON text or
 * NULL).  One incident per episode: observations less than <gap> seconds
 * after the open incident's last one extend it; otherwise a new incident
 * is opened (and audited).  Sets *<ret_opened> accordingly. */
int pc_store_incident_note(struct pc_store *s, const char *vps_id, const char *kind, uint64_t count,
                           int64_t at, const char *evidence, int64_t gap, int64_t *ret_id,
                           bool *ret_opened);

/* Registers <vps> (id, owner, lang, site, iface, mac, addrs).  -EEXIST if
 * the id, or one of its addresses, is already registered. */
int pc_store_vps_add(struct pc_store *s, const struct pc_vps *vps, const struct pc_actor *who);

/* Deletes the VPS <id> and everything hanging off it (the audit log keeps
 * the history).  -ENOENT if absent. */
int pc_store_vps_remove(struct pc_store *s, const char *id, const struct pc_actor *who);

/* Grants <e> (service, ticket_id, until, reason) to <vps_id>; queues the
 * owner's notification.  -ENOENT for an unknown VPS, -EEXIST if an
 * exception for that service is already in force. */
int pc_store_exception_grant(struct pc_store *s, const char *vps_id, const struct pc_exception *e,
                             const struct pc_actor *who, int64_t *ret_id);

/* Revokes the exception for <service> on <vps_id>; queues the owner's
 * notification.  -ENOENT if there is none. */
int pc_store_exception_revoke(struct pc_store *s, const char *vps_id, const char *service,
                              const struct pc_actor *who);

/* Places filter <f> on <vps_id> / lifts filter <filter_id>; both queue the
 * owner's notification. */
int pc_store_filter_place(struct pc_store *s, const char *vps_id, const struct pc_filter *f,
                          const struct pc_actor *who, int64_t *ret_id);
int pc_store_filter_lift(struct pc_store *s, const char *vps_id, int64_t filter_id,
                         const struct pc_actor *who);

/* Suspends / unsuspends <vps_id>; both queue the owner's notification.
 * -EALREADY if already suspended / not suspended. */
int pc_store_suspend(struct pc_store *s, const char *vps_id, int64_t incident_id,
                     const struct pc_actor *who, int64_t *ret_id);
int pc_store_unsuspend(struct pc_store *s, const char *vps_id, const struct pc_actor *who);

/* Opens an exception-request ticket (vps_id, service, text). */
int pc_store_ticket_open(struct pc_store *s, const struct pc_ticket *t, const struct pc_actor *who,
                         int64_t *ret_id);

/* Calls <cb> for each ticket of <vps_id>, newest first. */
int pc_store_ticket_list(struct pc_store *s, const char *vps_id, pc_ticket_cb cb, void *userdata);

/* Calls <cb> for the newest <limit> audit entries (0: all), oldest first,
 * of <vps_id> or of everything if <vps_id> is NULL. */
int pc_store_audit_list(struct pc_store *s, const char *vps_id, size_t limit, pc_audit_cb cb,
                        void *userdata);

const char *pc_ticket_state_name(enum pc_ticket_state st);

/* The SQLite backend. */
extern const struct pc_store_ops pc_store_sqlite_ops;
