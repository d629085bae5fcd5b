/* The store: durable state behind one interface.  The SQL store
 * (store_*.c, store-sql.h) is written once over a database driver (db.h):
 * SQLite, the embedded default, is db_sqlite.c; PostgreSQL can be added as
 * another driver without touching callers, who only use pc_store_*().
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
        /* An admin overrides a termination (lifts it): without it, lifting a
         * terminated VPS's suspension is refused with -EPERM.  Audited. */
        bool admin_override;
        /* With admin_override: where lifting a termination is announced
         * (notifications.webhook, as pc_store_terminate's), a
         * "vps.unterminated" event queued in the same transaction, so that
         * billing, which heard of the termination, hears of its end.  NULL
         * or "": no webhook. */
        const char *webhook_url;
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

/* A ticket's states (docs/OPERATIONS.md):
 *
 *     open -> investigating -> approved | denied
 *     open -> approved | denied
 *     approved -> revoked | expired
 *
 * CLOSED is a ticket closed before the process existed (schema < 7): no
 * transition leaves or reaches it. */
enum pc_ticket_state {
        PC_TICKET_OPEN,
        PC_TICKET_INVESTIGATING,
        PC_TICKET_APPROVED,
        PC_TICKET_DENIED,
        PC_TICKET_REVOKED,
        PC_TICKET_EXPIRED,
        PC_TICKET_CLOSED,
        PC_TICKET_STATE_COUNT_,
};

#define PC_TICKET_TEXT_MAX 1024     /* bytes of the justification, with its NUL */
#define PC_TICKET_EVIDENCE_MAX 2048 /* bytes of the evidence (text and links) */

struct pc_ticket {
        int64_t id;
        char vps_id[PC_NAME_MAX];
        /* What is asked: a service, "scanning" or "source-prefix:CIDR". */
        char service[PC_NAME_MAX];
        /* Only these ports of the service ("tcp/465,tcp/587"); "": all. */
        char ports[PC_PORTS_CANON_MAX];
        int64_t duration;            /* seconds asked; 0: none said */
        enum pc_ticket_state state;
        char opened_by[PC_NAME_MAX]; /* the requester */
        int64_t opened;
        char text[PC_TICKET_TEXT_MAX];         /* the justification */
        char evidence[PC_TICKET_EVIDENCE_MAX]; /* documentation, links; "" none */
        /* Filled by reads: */
        char owner[256];             /* the VPS's owner (customer) */
        int64_t updated;             /* the last transition: when, */
        char updated_by[PC_NAME_MAX]; /* who */
        char note[256];              /* and its note ("" none) */
        int64_t exception_id;        /* the exception an approval made; 0: none */
        int64_t until;               /* that exception's end; 0: none */
};

/* One transition of a ticket, for its history. */
struct pc_ticket_event {
        int64_t at;
        char by[PC_NAME_MAX];
        char kind[32];   /* "opened", "investigating", "approved", ... */
        char text[PC_TICKET_TEXT_MAX]; /* the note ("" none) */
};

/* What pc_store_ticket_query lists. */
struct pc_ticket_query {
        const char *vps_id; /* NULL: every VPS */
        const char *owner;  /* NULL: every owner; else only that customer's VPSes */
        int state;          /* -1: any; else an enum pc_ticket_state */
        size_t limit;       /* 0: all */
        int64_t before;     /* 0: from the newest; else only ids below it (the next page) */
};

#define PC_NOTIFICATION_KIND_MAX 64
#define PC_NOTIFICATION_ERROR_MAX 512      /* bytes of last_error incl. NUL */
#define PC_NOTIFICATION_MESSAGE_ID_MAX 256 /* bytes of message_id incl. NUL */
#define PC_NOTIFICATION_FACTS_MAX 16384    /* bytes of queued facts JSON */
#define PC_NOTIFICATION_BATCH_MAX 1000     /* rows per notification_due call */
/* How long a notification stays claimed by notification_sending: it is not
 * due again before now + PC_NOTIFICATION_LEASE unless the worker says when
 * (retry_later) or finishes it (sent, failed).  The worker's whole send
 * attempt (connect, SMTP dialogue, timeouts) must end well within it. */
#define PC_NOTIFICATION_LEASE 600

/* A customer notification in the outbox.  <state> is "pending" (to be sent
 * at or after <next_attempt>), "sent" (at <sent_at>) or "failed" (a dead
 * letter: given up, <last_error> says why; support can retry it).  Times
 * are unix seconds; 0 means none.  <payload> is JSON text owned by the
 * struct: pc_notification_clear() frees it. */
struct pc_notification {
        int64_t id;
        int64_t created;
        char vps_id[PC_NAME_MAX];
        char kind[PC_NOTIFICATION_KIND_MAX];    /* "exception.granted", "incident.opened" */
        char recipient[256];
        char language[8];
        char *payload;
        char state[16];
        unsigned attempts;                      /* send attempts begun */
        int64_t next_attempt;
        char last_error[PC_NOTIFICATION_ERROR_MAX];         /* "" if none */
        char message_id[PC_NOTIFICATION_MESSAGE_ID_MAX];    /* "" until the first attempt */
        int64_t sent_at;
        char channel[16];                       /* "email", or "webhook" (<recipient> is the URL) */
};

/* An incident: one episode of abuse of one kind by one VPS.  <evidence>
 * (JSON text or NULL) is valid during the callback only. */
struct pc_incident {
        int64_t id;
        char vps_id[PC_NAME_MAX];
        char kind[PC_NAME_MAX];   /* "scan", "spam", "spoof", "blocked-use" */
        int64_t first_seen;
        int64_t last_seen;
        uint64_t count;
        const char *evidence;
        bool open;                /* else closed */
        size_t actions;           /* filters and suspensions placed for it */
};

/* A filter or a suspension, as stored (in force, expired or lifted). */
struct pc_store_action {
        int64_t id;
        char vps_id[PC_NAME_MAX];
        char kind[16];            /* "filter", "suspension" */
        char direction[8];        /* "egress", "ingress", "both" */
        char scope[PC_NAME_MAX + 16]; /* "all", "service:NAME", "tcp/25" */
        int64_t incident_id;      /* 0: none */
        char by[PC_NAME_MAX];
        char reason[256];
        int64_t created;
        int64_t until;            /* 0: no end */
        int64_t lifted_at;        /* 0: not lifted */
        char lifted_by[PC_NAME_MAX];
        bool terminated;          /* a suspension that is a termination */
};

/* Who holds an address (pc_store_addr_holder). */
struct pc_addr_holder {
        char vps_id[PC_NAME_MAX];
        /* The address as registered ("198.51.100.24/29") or, for an
         * exception, its subject ("source-prefix:192.0.2.64/29"). */
        char what[PC_NAME_MAX + 16];
        bool exception; /* a source-prefix exception, not a registered address */
};

/* Callbacks return 0 to go on, or a negative errno to stop (returned). */
typedef int (*pc_audit_cb)(const struct pc_audit_entry *e, void *userdata);
typedef int (*pc_ticket_cb)(const struct pc_ticket *t, void *userdata);
typedef int (*pc_ticket_event_cb)(const struct pc_ticket_event *e, void *userdata);
typedef int (*pc_incident_cb)(const struct pc_incident *i, void *userdata);
typedef int (*pc_store_action_cb)(const struct pc_store_action *a, void *userdata);
/* <n> and its payload are valid during the call only: copy what you keep. */
typedef int (*pc_notification_cb)(const struct pc_notification *n, void *userdata);

/* The kernel's count of blocked attempts of one VPS on one direction,
 * protocol and port, as portcullisd last read it (pc_store_attempt_note).
 * Read back, <vps_id> points into the row: valid during the callback. */
struct pc_attempt_count {
        const char *vps_id;
        unsigned dir;      /* PC_DIR_EGRESS or PC_DIR_INGRESS */
        uint8_t proto;     /* IPPROTO_TCP or IPPROTO_UDP */
        uint16_t port;
        uint64_t packets;  /* the kernel's count of the element */
        int64_t last_seen; /* unix time of the latest attempt */
};

typedef int (*pc_attempt_count_cb)(const struct pc_attempt_count *a, void *userdata);

struct pc_api_token;
struct pc_change;
struct pc_agent_beat;
struct pc_store_watch;
typedef int (*pc_agent_beat_cb)(const struct pc_agent_beat *b, void *userdata);
typedef int (*pc_api_token_cb)(const struct pc_api_token *t, void *userdata);
typedef int (*pc_change_cb)(const struct pc_change *c, void *userdata);
typedef int (*pc_departing_cb)(const char *id, const char *iface, void *userdata);

/* A backend.  Callers never use this directly. */
struct pc_store_ops {
        const char *scheme; /* URL scheme it serves: "sqlite" */
        int (*open)(const char *location, struct pc_store **ret);
        void (*close)(struct pc_store *s);
        const char *(*errmsg)(const struct pc_store *s);
        int (*schema_version)(struct pc_store *s, int *ret_version);
        int (*load)(struct pc_store *s, struct pc_model *m, const char *host);
        int (*vps_add)(struct pc_store *s, const struct pc_vps *vps, const struct pc_actor *who);
        int (*vps_remove)(struct pc_store *s, const char *id, const struct pc_actor *who);
        int (*vps_update)(struct pc_store *s, const struct pc_vps *vps, const struct pc_actor *who,
                          bool *ret_changed);
        int (*vps_set_state)(struct pc_store *s, const char *id, bool running, const struct pc_actor *who,
                             bool *ret_changed);
        int (*addr_holder)(struct pc_store *s, const struct pc_prefix *p, const char *except_vps, unsigned what,
                           int64_t now, struct pc_addr_holder *ret);
        int (*mac_holder)(struct pc_store *s, const uint8_t mac[6], const char *except_vps, char *ret_vps,
                          size_t size);
        int (*exception_grant)(struct pc_store *s, const char *vps_id, const struct pc_exception *e,
                               const struct pc_actor *who, int64_t *ret_id);
        int (*exception_revoke)(struct pc_store *s, const char *vps_id, const char *service,
                                const struct pc_actor *who);
        int (*exception_ended)(struct pc_store *s, const char *vps_id, const char *service, int64_t now,
                               struct pc_exception *ret);
        int (*filter_place)(struct pc_store *s, const char *vps_id, const struct pc_filter *f,
                            const struct pc_actor *who, int64_t *ret_id);
        int (*filter_lift)(struct pc_store *s, const char *vps_id, int64_t filter_id,
                           const struct pc_actor *who);
        int (*suspend)(struct pc_store *s, const char *vps_id, int64_t incident_id,
                       const struct pc_actor *who, int64_t *ret_id);
        int (*unsuspend)(struct pc_store *s, const char *vps_id, const struct pc_actor *who);
        int (*terminate)(struct pc_store *s, const char *vps_id, int64_t incident_id, const char *why,
                         const char *webhook_url, const struct pc_actor *who, int64_t *ret_id);
        int (*ticket_open)(struct pc_store *s, const struct pc_ticket *t, const struct pc_actor *who,
                           int64_t *ret_id);
        int (*ticket_query)(struct pc_store *s, const struct pc_ticket_query *q, int64_t now, pc_ticket_cb cb,
                            void *userdata);
        int (*ticket_get)(struct pc_store *s, int64_t id, int64_t now, struct pc_ticket *ret);
        int (*ticket_events)(struct pc_store *s, int64_t id, pc_ticket_event_cb cb, void *userdata);
        int (*ticket_transition)(struct pc_store *s, int64_t id, enum pc_ticket_state from,
                                 enum pc_ticket_state to, const struct pc_exception *grant,
                                 const struct pc_actor *who, int64_t *ret_exception_id);
        int (*ticket_expire_due)(struct pc_store *s, int64_t now, const char *host, const struct pc_actor *who,
                                 size_t *ret_n);
        int (*audit_list)(struct pc_store *s, const char *vps_id, size_t limit, pc_audit_cb cb,
                          void *userdata);
        int (*vps_fetch)(struct pc_store *s, const struct pc_config *cfg, const char *id,
                         struct pc_vps **ret);
        int (*incident_note)(struct pc_store *s, const char *vps_id, const char *kind, uint64_t count,
                             int64_t at, const char *evidence, int64_t gap, int64_t *ret_id,
                             bool *ret_opened, unsigned flags);
        int (*incident_times)(struct pc_store *s, const char *vps_id, const char *kind, int64_t since,
                              int64_t before_id, int64_t *ret_times, size_t max, size_t *ret_n);
        int (*incident_list)(struct pc_store *s, const char *vps_id, const char *kind, bool open_only,
                             int64_t before, pc_incident_cb cb, void *userdata);
        int (*incident_get)(struct pc_store *s, int64_t id, pc_incident_cb cb, void *userdata);
        int (*incident_close)(struct pc_store *s, int64_t id, bool lift_actions,
                              const struct pc_actor *who, size_t *ret_lifted);
        int (*action_list)(struct pc_store *s, const char *vps_id, int64_t incident_id,
                           bool active_only, int64_t now, int64_t before, pc_store_action_cb cb, void *userdata);
        int (*action_get)(struct pc_store *s, int64_t id, struct pc_store_action *ret);
        int (*action_lift)(struct pc_store *s, int64_t id, const struct pc_actor *who);
        int (*action_set_until)(struct pc_store *s, int64_t id, int64_t until,
                                const struct pc_actor *who);
        int (*notification_due)(struct pc_store *s, int64_t now, size_t limit, pc_notification_cb cb,
                                void *userdata);
        int (*notification_list)(struct pc_store *s, const char *vps_id, const char *state,
                                 size_t limit, int64_t before, pc_notification_cb cb, void *userdata);
        int (*notification_get)(struct pc_store *s, int64_t id, struct pc_notification *ret);
        int (*notification_sending)(struct pc_store *s, int64_t id, const char *message_id,
                                    int64_t now, char *ret_message_id);
        int (*notification_sent)(struct pc_store *s, int64_t id, int64_t now);
        int (*notification_retry_later)(struct pc_store *s, int64_t id, const char *error,
                                        int64_t next_attempt);
        int (*notification_failed)(struct pc_store *s, int64_t id, const char *error);
        int (*notification_retry)(struct pc_store *s, int64_t id, const struct pc_actor *who);
        int (*exception_expiry_notices)(struct pc_store *s, int64_t now, int64_t within, const char *host,
                                        size_t *ret_count);
        int (*notification_queue)(struct pc_store *s, const char *vps_id, const char *kind,
                                  const char *facts, int64_t now, int64_t *ret_id);
        int (*token_add)(struct pc_store *s, const struct pc_api_token *t, const uint8_t *hash, int64_t now,
                         const struct pc_actor *who, int64_t *ret_id);
        int (*token_find)(struct pc_store *s, const uint8_t *hash, struct pc_api_token *ret);
        int (*token_list)(struct pc_store *s, bool all, pc_api_token_cb cb, void *userdata);
        int (*token_revoke)(struct pc_store *s, const char *name, int64_t now, const struct pc_actor *who);
        int (*token_used)(struct pc_store *s, int64_t id, int64_t now);
        int (*changes)(struct pc_store *s, int64_t after, size_t limit, pc_change_cb cb, void *userdata);
        int (*change_last)(struct pc_store *s, int64_t *ret_id);
        int (*vps_ids)(struct pc_store *s, const char *owner, const char *host, const char *after, size_t limit,
                       int (*cb)(const char *id, void *userdata), void *userdata);
        int (*attempt_note)(struct pc_store *s, const struct pc_attempt_count *a);
        int (*attempt_list)(struct pc_store *s, const char *vps_id, uint8_t proto, uint16_t lo, uint16_t hi,
                            size_t limit, pc_attempt_count_cb cb, void *userdata);
        int (*tx_begin)(struct pc_store *s);
        int (*tx_end)(struct pc_store *s, int r);
        int (*vps_move)(struct pc_store *s, const char *id, const char *host, const char *iface,
                        const struct pc_actor *who, bool *ret_changed);
        int (*vps_arrived)(struct pc_store *s, const char *id, const char *host, const struct pc_actor *who);
        int (*vps_departed)(struct pc_store *s, const char *id, const char *host, const struct pc_actor *who,
                            bool *ret_recorded);
        int (*vps_departing)(struct pc_store *s, const char *host, const char *after, size_t limit,
                             pc_departing_cb cb, void *userdata);
        int (*agent_beat)(struct pc_store *s, const struct pc_agent_beat *b);
        int (*agent_list)(struct pc_store *s, pc_agent_beat_cb cb, void *userdata);
        int (*agent_role)(struct pc_store *s, const char *host, const char *role);
        int (*watch_open)(struct pc_store *s, const char *host, struct pc_store_watch **ret);
};

/* Opens the existing store named by <url> ("sqlite:/path/db",
 * "sqlite:///path/db"; a relative "sqlite:path/db" is relative to the
 * working directory) and applies schema migrations.  Nothing is created: a
 * missing database is -ENOENT with the message "no database at PATH"
 * (pc_store_init() creates one).  A database written by a newer Portcullis
 * is refused (-EPROTONOSUPPORT) with a message saying which versions.
 * Unknown schemes give -EPROTONOSUPPORT.  On failure a message is written
 * to <err>.  A write to a database file deleted or replaced since it was
 * opened fails with -ESTALE and writes nothing. */
int pc_store_open(const char *url, struct pc_store **ret, char *err, size_t errsz);

/* As pc_store_open(), but creates the database (and the folders above it)
 * if it does not exist: only an explicit initialisation (`portcullis
 * init`) and the agent's start call this.  *<ret_created> (may be NULL)
 * says whether it was created. */
int pc_store_init(const char *url, bool *ret_created, struct pc_store **ret, char *err,
                  size_t errsz);

/* Opens the existing store named by <url> for reading only (the SMTP
 * proxy): no file of it is created, migrated or opened for writing, even
 * by root, so that a compromised reader cannot change it.  Writes through
 * the returned store fail.  Errors as pc_store_open(); -EPROTONOSUPPORT
 * for a backend without a read-only mode, or a schema of another build. */
int pc_store_open_readonly(const char *url, struct pc_store **ret, char *err, size_t errsz);

/* Closes <s>; accepts NULL; returns NULL. */
struct pc_store *pc_store_close(struct pc_store *s);

/* Calls <cb>(<userdata>) after every write transaction of <s> commits
 * (each one writes the change feed: pc_store_changes), before the writer
 * goes on: portcullis-apid wakes the agent there, before it builds its
 * answer.  NULL removes it. */
void pc_store_on_commit(struct pc_store *s, void (*cb)(void *userdata), void *userdata);

/* The last error's message, naming the object and the cause. */
const char *pc_store_errmsg(const struct pc_store *s);

/* The schema version this build writes, and the one <s> is at. */
int pc_store_schema_latest(void);
int pc_store_schema_version(struct pc_store *s, int *ret_version);

/* Loads every VPS with its addresses, active exceptions, active filters and
 * suspension into <m> (which must be empty).  A VPS whose site is not in
 * the model's config fails the load with -ENOENT naming VPS and site. */
int pc_store_load(struct pc_store *s, struct pc_model *m);

/* As pc_store_load, the VPSes the agent of hypervisor <host> enforces:
 * those on it, and those moving away from it that the new host does not
 * enforce yet (pc_store_vps_arrived).  <host> NULL: every VPS. */
int pc_store_load_host(struct pc_store *s, struct pc_model *m, const char *host);

/* Loads the one VPS <id> as pc_store_load would, into a new VPS that the
 * caller owns (free with pc_vps_free).  -ENOENT if it does not exist. */
int pc_store_vps_fetch(struct pc_store *s, const struct pc_config *cfg, const char *id,
                       struct pc_vps **ret);

/* pc_store_incident_note() flags. */
#define PC_INCIDENT_NOTICE 1u /* a new incident queues the owner's "incident.opened"
                               * notice in the same transaction */

/* Records <count> more observations of abuse <kind> ("blocked-use",
 * "spoof", "scan", ...) by <vps_id> at <at>, with <evidence> (JSON text or
 * NULL).  One incident per episode: observations less than <gap> seconds
 * after the open incident's last one extend it; otherwise a new incident
 * is opened (and audited).  Sets *<ret_opened> accordingly. */
int pc_store_incident_note(struct pc_store *s, const char *vps_id, const char *kind, uint64_t count,
                           int64_t at, const char *evidence, int64_t gap, int64_t *ret_id,
                           bool *ret_opened, unsigned flags);

/* Lists the start times of <vps_id>'s incidents of <kind> that began at or
 * after <since> and, unless <before_id> is 0, were opened before incident
 * <before_id> (ids only grow): newest first, at most <max> of them into
 * <ret_times>, their number in *<ret_n>.  Every state counts (an incident
 * support closed is still one the ladder remembers).  For the escalation
 * ladder (respond/ladder.h), which needs no more than its number of steps.
 * An unknown VPS has none. */
int pc_store_incident_times(struct pc_store *s, const char *vps_id, const char *kind, int64_t since,
                            int64_t before_id, int64_t *ret_times, size_t max, size_t *ret_n);

/* Registers <vps> (id, owner, lang, site, iface, mac, addrs).  -EEXIST if
 * the id, or one of its addresses, is already registered. */
int pc_store_vps_add(struct pc_store *s, const struct pc_vps *vps, const struct pc_actor *who);

/* Deletes the VPS <id> and everything hanging off it (the audit log keeps
 * the history).  -ENOENT if absent. */
int pc_store_vps_remove(struct pc_store *s, const char *id, const struct pc_actor *who);

/* Gives the registered VPS <vps>->id the interface, MAC (none unless
 * <vps>->has_mac) and addresses of <vps>; its owner, language, site and
 * everything hanging off it stay.  Audited as vps.update with before and
 * after, in one transaction.  If they are what is stored already nothing
 * is written (no audit row) and *<ret_changed> (may be NULL) is false.
 * -ENOENT for an unknown VPS; -EEXIST if the interface, or one of the
 * addresses, is another VPS's. */
int pc_store_vps_update(struct pc_store *s, const struct pc_vps *vps, const struct pc_actor *who,
                        bool *ret_changed);

/* Records that VPS <id> is running (<running>) or stopped, as its VM
 * manager says, and since now: audited as vps.start or vps.stop.  It
 * changes nothing that is in force.  In that state already: nothing is
 * written and *<ret_changed> (may be NULL) is false.  -ENOENT for an
 * unknown VPS. */
int pc_store_vps_set_state(struct pc_store *s, const char *id, bool running, const struct pc_actor *who,
                           bool *ret_changed);

/* pc_store_addr_holder()'s <what>: the holdings it looks at. */
#define PC_ADDR_REGISTERED 1u /* the VPSes' registered addresses */
#define PC_ADDR_GRANTED 2u    /* source-prefix exceptions in force */
#define PC_ADDR_OTHER_OWNER 4u /* only VPSes whose owner is not <except_vps>'s */

/* Finds a VPS other than <except_vps> (NULL: any) that holds an address
 * overlapping <p>, among <what> (PC_ADDR_*): registered addresses first,
 * then source-prefix exceptions in force at <now>.  Returns 1 and fills
 * *<ret> (the first found), 0 if none does.  Answered from indexes in
 * time independent of the fleet's size: what `vps add` and
 * `exception grant ID source-prefix:...` ask before writing. */
int pc_store_addr_holder(struct pc_store *s, const struct pc_prefix *p, const char *except_vps, unsigned what,
                         int64_t now, struct pc_addr_holder *ret);

/* Finds a VPS other than <except_vps> (NULL: any) registered with MAC
 * <mac>: returns 1 and its id in <ret_vps> (<size> bytes), 0 if none. */
int pc_store_mac_holder(struct pc_store *s, const uint8_t mac[6], const char *except_vps, char *ret_vps,
                        size_t size);

/* Grants <e> (service, ticket_id, until, reason) to <vps_id>; queues the
 * owner's notification.  With a ticket, the ticket must be <vps_id>'s, ask
 * for that service and be pending (it becomes approved): else -EINVAL
 * naming the difference.  -ENOENT for an unknown VPS or ticket, -EEXIST if
 * an exception for that service is already in force. */
int pc_store_exception_grant(struct pc_store *s, const char *vps_id, const struct pc_exception *e,
                             const struct pc_actor *who, int64_t *ret_id);

/* Revokes the exception for <service> on <vps_id>; queues the owner's
 * notification.  -ENOENT if there is none. */
int pc_store_exception_revoke(struct pc_store *s, const char *vps_id, const char *service,
                              const struct pc_actor *who);

/* Reads into *<ret> the newest exception for <service> on <vps_id> that
 * ran to its end (its until) by <now>, for explain: pc_store_load leaves
 * ended exceptions out.  One revoked before its end does not count.
 * -ENOENT if there is none. */
int pc_store_exception_ended(struct pc_store *s, const char *vps_id, const char *service, int64_t now,
                             struct pc_exception *ret);

/* Places filter <f> on <vps_id> / lifts filter <filter_id>; both queue the
 * owner's notification. */
int pc_store_filter_place(struct pc_store *s, const char *vps_id, const struct pc_filter *f,
                          const struct pc_actor *who, int64_t *ret_id);
int pc_store_filter_lift(struct pc_store *s, const char *vps_id, int64_t filter_id,
                         const struct pc_actor *who);

/* Suspends / unsuspends <vps_id>; both queue the owner's notification.
 * -EALREADY if already suspended / not suspended; unsuspend: -EPERM if
 * the suspension is a termination and <who> is no admin_override. */
int pc_store_suspend(struct pc_store *s, const char *vps_id, int64_t incident_id,
                     const struct pc_actor *who, int64_t *ret_id);
int pc_store_unsuspend(struct pc_store *s, const char *vps_id, const struct pc_actor *who);

/* Terminates <vps_id> for incident <incident_id> (0: by hand), <why>
 * saying what made it a termination ("an attempt to circumvent: ..."):
 * its suspension in force becomes a termination, or a new one is placed.
 * A termination is lifted only with <who>->admin_override (unsuspend,
 * action_lift refuse it with -EPERM otherwise).  In the same transaction:
 * audited as vps.terminate; the owner's "vps.terminated" email queued (its
 * payload with the incident's kind and evidence, which the abuse team's
 * copy shows); and, unless <webhook_url> is NULL or "", a "vps.terminated"
 * webhook event to it (channel "webhook", the same payload plus the
 * owner).  -EALREADY if it is terminated already (nothing changed). */
int pc_store_terminate(struct pc_store *s, const char *vps_id, int64_t incident_id, const char *why,
                       const char *webhook_url, const struct pc_actor *who, int64_t *ret_id);

/* Opens ticket <t> (vps_id, service, ports, duration, text, evidence),
 * state open, requested by <who>: audited as ticket.open, and the owner's
 * "ticket.received" email queued, in one transaction.  The caller (the
 * operations layer) has judged what is asked; the store checks the
 * values' shape only.  -ENOENT for an unknown VPS. */
int pc_store_ticket_open(struct pc_store *s, const struct pc_ticket *t, const struct pc_actor *who,
                         int64_t *ret_id);

/* Calls <cb> for each ticket of <vps_id> (NULL: all), newest first.
 * -ENOENT for an unknown VPS. */
int pc_store_ticket_list(struct pc_store *s, const char *vps_id, pc_ticket_cb cb, void *userdata);

/* Calls <cb> for the tickets <q> selects, newest first, as they stand at
 * <now>: an approved ticket whose exception ran out by <now> reads as
 * expired even before pc_store_ticket_expire_due records it.  <cb> must
 * not call the store. */
int pc_store_ticket_query(struct pc_store *s, const struct pc_ticket_query *q, int64_t now, pc_ticket_cb cb,
                          void *userdata);

/* Reads ticket <id> as it stands at <now> into *<ret>.  -ENOENT. */
int pc_store_ticket_get(struct pc_store *s, int64_t id, int64_t now, struct pc_ticket *ret);

/* Calls <cb> for each transition of ticket <id>, oldest first. */
int pc_store_ticket_events(struct pc_store *s, int64_t id, pc_ticket_event_cb cb, void *userdata);

/* Moves ticket <id> from <from> to <to>, by <who> with the note
 * <who>->reason, in one transaction with its history row and its audit
 * row (ticket.investigate, ticket.approve, ticket.deny, ticket.revoke,
 * ticket.expire; before and after).  The operations layer judges whether
 * the transition is allowed; the store only refuses, with -EALREADY
 * naming the state, a ticket that is no longer <from> (another writer got
 * there first).  Per <to>:
 *   APPROVED: grants <grant> (service, ports, until, reason) to the
 *     ticket's VPS as pc_store_exception_grant does, linked to the ticket
 *     (*<ret_exception_id>), and queues "ticket.approved" (what opened and
 *     until when) instead of "exception.granted";
 *   DENIED: queues "ticket.denied" with the note, the team's reason;
 *   REVOKED: revokes the ticket's exception if it is in force (queuing
 *     "exception.revoked");
 *   INVESTIGATING, EXPIRED: the state only.
 * -ENOENT for an unknown ticket. */
int pc_store_ticket_transition(struct pc_store *s, int64_t id, enum pc_ticket_state from,
                               enum pc_ticket_state to, const struct pc_exception *grant,
                               const struct pc_actor *who, int64_t *ret_exception_id);

/* Records as expired, audited (ticket.expire by <who>), every approved
 * ticket whose exception ran out by <now>, of the VPSes of <host> and
 * those moving away from it (NULL: of every VPS); their number in
 * *<ret_n>. */
int pc_store_ticket_expire_due(struct pc_store *s, int64_t now, const char *host, const struct pc_actor *who,
                               size_t *ret_n);

/* Calls <cb> for the newest <limit> audit entries (0: all), oldest first,
 * of <vps_id> or of everything if <vps_id> is NULL. */
int pc_store_audit_list(struct pc_store *s, const char *vps_id, size_t limit, pc_audit_cb cb,
                        void *userdata);

/* "open", "investigating", ...; NULL for another value. */
const char *pc_ticket_state_name(enum pc_ticket_state st);
/* Parses a state's name: 0, or -EINVAL. */
int pc_ticket_state_parse(const char *name, enum pc_ticket_state *ret);

/* ---- incidents and actions (`portcullis incident`, `action`) ---------
 *
 * An action is a filter or a suspension, whoever placed it (support by
 * hand, the response engine for an incident).  At <now> it is active (not
 * lifted, no end or an end after <now>), expired (its end passed) or
 * lifted.  Closing an incident is support's verdict that the episode is
 * over; it lifts nothing unless asked to (the actions run to their end). */

/* Calls <cb> for the incidents, newest first, of <vps_id> (NULL: every
 * VPS), of <kind> (NULL: any), only the open ones if <open_only>, with an
 * id below <before> (0: any; a page's keyset).  A negative return of <cb>
 * stops the read and is returned.  <cb> must not call the store. */
int pc_store_incident_list(struct pc_store *s, const char *vps_id, const char *kind, bool open_only,
                           int64_t before, pc_incident_cb cb, void *userdata);

/* Calls <cb> once for incident <id>.  -ENOENT if there is none. */
int pc_store_incident_get(struct pc_store *s, int64_t id, pc_incident_cb cb, void *userdata);

/* Closes the open incident <id>, audited as incident.close by <who> (a
 * reason is required).  With <lift_actions>, also lifts in the same
 * transaction every action of it still active, each as action_lift does
 * (audited, owner notified); their number goes to *<ret_lifted> (may be
 * NULL).  -ENOENT if there is no such incident, -EALREADY if it is closed
 * (nothing changed). */
int pc_store_incident_close(struct pc_store *s, int64_t id, bool lift_actions,
                            const struct pc_actor *who, size_t *ret_lifted);

/* Calls <cb> for the actions, newest first, of <vps_id> (NULL: every VPS)
 * and of incident <incident_id> (0: any), only those active at <now> if
 * <active_only>, with an id below <before> (0: any).  <cb> must not call
 * the store. */
int pc_store_action_list(struct pc_store *s, const char *vps_id, int64_t incident_id,
                         bool active_only, int64_t now, int64_t before, pc_store_action_cb cb, void *userdata);

/* Reads action <id> into *<ret>.  -ENOENT if there is none. */
int pc_store_action_get(struct pc_store *s, int64_t id, struct pc_store_action *ret);

/* Lifts the active action <id>: a filter as filter_lift, a suspension as
 * unsuspend (which also closes the VPS's open incidents); audited and
 * the owner notified the same way.  -ENOENT if there is none, -EALREADY
 * if it was lifted or has expired (nothing changed). */
int pc_store_action_lift(struct pc_store *s, int64_t id, const struct pc_actor *who);

/* Gives the active filter <id> a new end <until> (later than its end now
 * and than the present), or none with <until> 0 (permanent); audited as
 * filter.extend or filter.make-permanent with before and after.  -ENOENT
 * if there is none, -EALREADY if it was lifted or has expired, or is
 * permanent already; -EINVAL for a suspension (it has no end), a filter
 * without an end given one (it would shorten it), or an end not later
 * than the current one. */
int pc_store_action_set_until(struct pc_store *s, int64_t id, int64_t until,
                              const struct pc_actor *who);

/* "active", "expired" or "lifted": the state of <a> at <now>. */
const char *pc_store_action_state(const struct pc_store_action *a, int64_t now);

/* ---- blocked attempts (the kernel's counters, for support) --------------
 *
 * portcullisd reads the kernel's blocked-attempt counters every
 * attempts-interval and writes here those that grew, one transaction per
 * pass (pc_store_tx_begin); the unprivileged readers (portcullis-apid,
 * `portcullis ticket show`) read them here.  Not audited: a count is an
 * observation, not a change.  A VPS's rows go with it. */

/* Sets the count of (<a>->vps_id, dir, proto, port) to <a>->packets and
 * its latest attempt to <a>->last_seen, creating the row if need be.  One
 * statement, no transaction of its own: call it inside one.  -EINVAL for
 * a direction other than egress or ingress or a protocol other than tcp
 * or udp; -ENOENT if the VPS is not registered (nothing written). */
int pc_store_attempt_note(struct pc_store *s, const struct pc_attempt_count *a);

/* Calls <cb> for <vps_id>'s counts of <proto> on ports <lo> to <hi>, by
 * port then direction, at most <limit> (0: all).  <cb> must not call the
 * store; it may return -ENOBUFS to stop, which is returned as it is. */
int pc_store_attempt_list(struct pc_store *s, const char *vps_id, uint8_t proto, uint16_t lo, uint16_t hi,
                          size_t limit, pc_attempt_count_cb cb, void *userdata);

/* ---- the notification outbox ------------------------------------------
 *
 * Changes queue their owner's notification in the same transaction (so a
 * change is never made without its email, nor an email queued for a change
 * that was rolled back); the delivery worker drains the outbox:
 *
 *     notification_due()                      pending rows that are due
 *       notification_sending(id, mid, now)    claim, fix the Message-ID
 *       ... hand the message to the relay ...
 *       notification_sent(id, now)            relay accepted it
 *       notification_retry_later(id, error, when)  temporary failure
 *       notification_failed(id, error)        permanent: dead letter
 *
 * Delivery is at least once, never at most once.  notification_sending()
 * commits the Message-ID and the attempt *before* the message leaves.  If
 * the worker dies after the relay accepted the message but before
 * notification_sent() commits, the row is still pending and is sent again
 * once its lease (PC_NOTIFICATION_LEASE) runs out -- with the same
 * Message-ID, so that the recipient's mail system (and a human) can tell
 * it is the same message.  No crash can send a notification under two
 * Message-IDs, and none can lose one.  <attempts> counts attempts begun,
 * crashed ones included, so a message that kills the worker every time is
 * still given up on (notification_failed) after the worker's maximum.
 *
 * Several workers (the agents of a fleet sharing one PostgreSQL) may drain
 * one outbox: each reads the due rows, and notification_sending() is the
 * claim that decides between them -- it takes a row only if the row is
 * still pending and due when it writes, so of the workers that read a row
 * due exactly one claims it, and the others get -EBUSY and leave it to
 * that one (neither sent, failed nor retried by them).  The lease is what
 * keeps it claimed, so a worker's send attempt ends well within
 * PC_NOTIFICATION_LEASE, and the hosts' clocks agree to well within it.
 *
 * Support sees dead letters in the audit log (notification.fail, by
 * "portcullisd") and in `portcullis notification list --state failed`, and
 * can queue one again with notification_retry (audited). */

/* Frees <n>'s payload and sets it to NULL; accepts NULL. */
void pc_notification_clear(struct pc_notification *n);

/* Calls <cb> for the pending notifications with next_attempt <= <now>,
 * oldest (lowest id) first, at most <limit> (1..PC_NOTIFICATION_BATCH_MAX,
 * else -EINVAL) of them.  The rows are read before the first call, so <cb>
 * may call the store (notification_sending, ...).  Reading claims nothing:
 * another worker may claim a row before <cb> does (notification_sending
 * then says -EBUSY or -EALREADY). */
int pc_store_notification_due(struct pc_store *s, int64_t now, size_t limit, pc_notification_cb cb,
                              void *userdata);

/* Calls <cb> for the newest <limit> (0: all) notifications, newest first,
 * of <vps_id> (NULL: every VPS, removed ones included) in <state>
 * ("pending", "sent", "failed"; NULL: any; else -EINVAL), with an id below
 * <before> (0: any).  <cb> must not call the store. */
int pc_store_notification_list(struct pc_store *s, const char *vps_id, const char *state,
                               size_t limit, int64_t before, pc_notification_cb cb, void *userdata);

/* Reads notification <id> into *<ret>, whose payload the caller then owns
 * (pc_notification_clear).  -ENOENT if there is none. */
int pc_store_notification_get(struct pc_store *s, int64_t id, struct pc_notification *ret);

/* Claims notification <id> for a send attempt at <now>, if it is pending
 * and due (next_attempt <= <now>), checked and written in one statement of
 * one write transaction: attempts + 1, not due again before <now> +
 * PC_NOTIFICATION_LEASE, and <message_id> recorded as its Message-ID
 * unless it has one already -- a Message-ID, once set, never changes (the
 * schema refuses it too).  Call it, and let it commit, before handing the
 * message to the relay; see the at-least-once note above.  <message_id>
 * is 1-255 printable ASCII characters without spaces (what goes in the
 * header, "<...@...>").  <ret_message_id> (NULL, or
 * PC_NOTIFICATION_MESSAGE_ID_MAX bytes) gets the Message-ID to send with:
 * the one recorded by the first attempt.  -ENOENT if there is no such
 * notification, -EALREADY if it is not pending (sent or failed: do not
 * send it), -EBUSY if it is pending but not due at <now> (another
 * worker's attempt holds it, or it waits for its retry_later time: do not
 * send it, nor settle it; it is not an error), -EEXIST if <message_id> is
 * already another notification's.  Nothing is written unless it returns
 * 0. */
int pc_store_notification_sending(struct pc_store *s, int64_t id, const char *message_id,
                                  int64_t now, char *ret_message_id);

/* Marks the pending notification <id> sent at <now>: the relay accepted it.
 * -ENOENT, -EALREADY if it is not pending, -EINVAL if no attempt was begun
 * (notification_sending) so that it has no Message-ID. */
int pc_store_notification_sent(struct pc_store *s, int64_t id, int64_t now);

/* Leaves the pending notification <id> pending, due again at
 * <next_attempt>, with <error> as its last error.  <error> may come from a
 * remote server: it is stored cut to PC_NOTIFICATION_ERROR_MAX - 1 bytes,
 * control characters as spaces and invalid UTF-8 as '?'.  -ENOENT,
 * -EALREADY if it is not pending. */
int pc_store_notification_retry_later(struct pc_store *s, int64_t id, const char *error,
                                      int64_t next_attempt);

/* Gives up on the pending notification <id>: state failed (a dead letter)
 * with <error> (cleaned as for retry_later) as its last error, audited as
 * notification.fail by "portcullisd" so that support sees it.  -ENOENT,
 * -EALREADY if it is not pending. */
int pc_store_notification_failed(struct pc_store *s, int64_t id, const char *error);

/* Support queues notification <id> (failed, or pending) again: pending, due
 * now, attempts back to 0; its Message-ID and last error are kept.
 * Audited as notification.retry by <who>.  A sent notification is refused
 * with -EINVAL (it was delivered; sending it again would email the customer
 * twice).  -ENOENT if there is none. */
int pc_store_notification_retry(struct pc_store *s, int64_t id, const struct pc_actor *who);

/* Queues notification <kind> (a name: 1-63 of a-z 0-9 . _ -, such as
 * "incident.opened") to the owner of <vps_id>, due at <now>, for an event
 * that is not a store change.  <facts> is a JSON object as text (NULL:
 * none; at most PC_NOTIFICATION_FACTS_MAX bytes); the payload is <facts>
 * plus "vps", "site", "addresses" and "event" (<kind>), which override
 * keys of the same name in <facts> -- the same shape as the notifications
 * of changes.  Not audited: the outbox row is the record (the incident
 * behind it is audited by incident_note).  -ENOENT for an unknown VPS,
 * -EINVAL for a bad kind or facts.  Sets *<ret_id> (may be NULL). */
/* Queues "exception.expiring" to the owner of every live exception that
 * ends within <within> seconds of <now> and has not been announced yet, of
 * the VPSes of <host> and those moving away from it (NULL or "": every
 * VPS), and marks each announced, in one transaction.  *<ret_count> says
 * how many. */
int pc_store_exception_expiry_notices(struct pc_store *s, int64_t now, int64_t within, const char *host,
                                      size_t *ret_count);

int pc_store_notification_queue(struct pc_store *s, const char *vps_id, const char *kind,
                                const char *facts, int64_t now, int64_t *ret_id);

/* ---- API tokens (portcullis-apid, docs/API.md) ------------------------ */

#define PC_TOKEN_HASH_SIZE 32 /* SHA-256 */

/* A bearer token of the HTTP API, as stored: never the token itself, only
 * its hash.  Times are unix seconds, 0 none. */
struct pc_api_token {
        int64_t id;
        char name[PC_NAME_MAX];       /* the principal its changes are audited as */
        char role[16];                /* "admin", "support", "customer", "agent" */
        char customer[256];           /* role customer: the owner email it acts for; else "" */
        int64_t created;
        char created_by[PC_NAME_MAX];
        int64_t expires;              /* 0: never */
        int64_t revoked;              /* 0: in force */
        int64_t last_used;            /* to the minute (pc_store_token_used) */
        char host[PC_NAME_MAX];       /* role agent: the hypervisor it is bound to; "" none (any
                                       * host: --any-host, or minted before schema 13) */
};

/* Stores token <t> (name, role, customer, host, expires) with <hash>, created by
 * <who> at <now>: audited token.create, without the hash.  -EEXIST if a
 * token in force has that name. */
int pc_store_token_add(struct pc_store *s, const struct pc_api_token *t, const uint8_t hash[PC_TOKEN_HASH_SIZE],
                       int64_t now, const struct pc_actor *who, int64_t *ret_id);

/* Reads the token whose hash is <hash>, revoked or not, into *<ret>.
 * -ENOENT if there is none. */
int pc_store_token_find(struct pc_store *s, const uint8_t hash[PC_TOKEN_HASH_SIZE], struct pc_api_token *ret);

/* Calls <cb> for each token (<all>: revoked ones too), by name. */
int pc_store_token_list(struct pc_store *s, bool all, pc_api_token_cb cb, void *userdata);

/* Revokes the token in force named <name> at <now>, audited token.revoke.
 * -ENOENT if none is. */
int pc_store_token_revoke(struct pc_store *s, const char *name, int64_t now, const struct pc_actor *who);

/* Records that token <id> was used at <now> (not audited). */
int pc_store_token_used(struct pc_store *s, int64_t id, int64_t now);

/* Calls <cb> with the id of each VPS, by id, after <after> ("" or NULL:
 * from the first), at most <limit> (0: all); of <owner>'s only unless
 * NULL, and of those on hypervisor <host> only unless NULL.  Indexed: a
 * page of a customer's VPSes reads that page. */
int pc_store_vps_ids(struct pc_store *s, const char *owner, const char *host, const char *after, size_t limit,
                     int (*cb)(const char *id, void *userdata), void *userdata);

/* ---- an operation's transaction ---------------------------------------- */

/* Begins a write transaction that holds the changes made until
 * pc_store_tx_end: an operation's checks (who holds an address, is the
 * ticket still open) and its writes see one state of the database, and a
 * writer elsewhere waits.  Changes made inside join it (each a savepoint:
 * one that fails is rolled back alone, and the caller decides).  Nests.
 * 0, or a negative errno. */
int pc_store_tx_begin(struct pc_store *s);

/* Ends it: commits if <r> >= 0, else rolls back.  Returns 0, or the
 * error (<r>, or the commit's). */
int pc_store_tx_end(struct pc_store *s, int r);

/* ---- the change feed -------------------------------------------------- */

/* One change, as the audit log recorded it: what portcullisd follows to
 * learn of changes made by writers without its control socket
 * (portcullis-apid).  <vps_id> is "" for a change of no one VPS. */
struct pc_change {
        int64_t id;
        char vps_id[PC_NAME_MAX];
        char action[32];
        /* Where that VPS is now (""), none or removed): an agent skips the
         * changes of VPSes it neither holds nor is to hold. */
        char host[PC_NAME_MAX];
        char moving_from[PC_NAME_MAX];
};

/* Calls <cb> for the changes after <after> (an audit id), oldest first, at
 * most <limit> (0: all). */
int pc_store_changes(struct pc_store *s, int64_t after, size_t limit, pc_change_cb cb, void *userdata);

/* The newest change's id into *<ret_id> (0: none yet). */
int pc_store_change_last(struct pc_store *s, int64_t *ret_id);

/* ---- the fleet ---------------------------------------------------------
 *
 * Several hypervisors share one database (PostgreSQL).  Each VPS records
 * the host it runs on, and each host's agent enforces only its own
 * (pc_store_load_host).  A VPS moves without a moment unenforced: the old
 * host keeps it until the new host's agent has it in its kernel and says
 * so (pc_store_vps_arrived); that change reaches the old host through the
 * feed like any other, and it lets the VPS go. */

/* Moves VPS <id> to hypervisor <host> (1-63 of a-z 0-9 . _ -; NULL or "":
 * none, a single-host installation's), on interface <iface> there (NULL:
 * on its host, the same name; back to the host still holding it, its
 * interface there -- or back to the host it departs from, not confirmed
 * yet: its interface there; to another host, -EINVAL: a name is the host's).  The host that enforced it (its host before, or the one
 * still holding it from an earlier move) keeps it until <host> arrives.
 * Its exceptions, filters (with their remaining time), suspension and
 * history are the VPS's and stay.  Between hosts, the host it leaves (or
 * the one that has not confirmed an earlier move yet) is recorded as the
 * one it departs from until that host's agent says the VM left it
 * (pc_store_vps_departed); moved back there, none.  Audited as vps.move
 * (before, after).
 * -ENOENT, -EINVAL (a bad name), -EEXIST (the interface is another VPS's
 * on that host).  Moving it where it is changes nothing: *<ret_changed>
 * (may be NULL) false. */
int pc_store_vps_move(struct pc_store *s, const char *id, const char *host, const char *iface,
                      const struct pc_actor *who, bool *ret_changed);

/* <host>'s agent enforces VPS <id>, which moved there: the host it moved
 * from lets it go.  Audited as vps.arrive by <who>, only if <id> was
 * moving to <host> (otherwise nothing: 0). */
int pc_store_vps_arrived(struct pc_store *s, const char *id, const char *host, const struct pc_actor *who);

/* <host>'s agent let VPS <id> go: the VM's interface is gone from <host>,
 * which it moved away from.  That confirms the move (until then it shows
 * as unconfirmed: a bound agent token may pull any host's VPS, and only
 * the host it leaves knows that the VM really left).  Audited as
 * vps.depart by <who>, only if <id> names <host> as the host it departs
 * from (otherwise nothing, a VPS removed too: 0, *<ret_recorded> false).
 * *<ret_recorded> (may be NULL): whether it was recorded. */
int pc_store_vps_departed(struct pc_store *s, const char *id, const char *host, const struct pc_actor *who,
                          bool *ret_recorded);

/* Calls <cb> with the id of each VPS that names <host> as the host it
 * departs from (a move away from <host> not confirmed yet), and with its
 * interface there ("" if none), by id, after <after> (NULL or "": from
 * the first), at most <limit> (0: all).  One indexed query, whatever the
 * size of the fleet: what <host>'s agent checks on its periodic pass, to
 * record the departures it missed (a write that failed, a start without
 * the VM). */
int pc_store_vps_departing(struct pc_store *s, const char *host, const char *after, size_t limit,
                           pc_departing_cb cb, void *userdata);

/* An agent's heartbeat: who it is, since when, how far it has followed
 * the feed and what it holds. */
struct pc_agent_beat {
        char host[PC_NAME_MAX];
        int64_t started;      /* unix time */
        int64_t heartbeat;    /* unix time of this beat */
        int64_t change_seen;  /* the last change of the feed it applied */
        uint64_t changes;     /* changes it applied to its kernel since it started */
        uint64_t vpses;       /* VPSes it enforces */
        bool in_sync;         /* its kernel holds what its model says */
        char version[32];
        /* Read back only (pc_store_agent_list): the VPSes that moved away
         * from this host whose departure it has not recorded yet
         * (pc_store_vps_departed): a live migration's, for seconds, or a
         * claim by the host they moved to. */
        uint64_t unconfirmed;
};

/* Records <b> (one row per host, replaced).  Not audited: a heartbeat is
 * no change. */
int pc_store_agent_beat(struct pc_store *s, const struct pc_agent_beat *b);

/* Calls <cb> for every agent's last heartbeat, by host. */
int pc_store_agent_list(struct pc_store *s, pc_agent_beat_cb cb, void *userdata);

/* Makes PostgreSQL role <role>, which must exist, hypervisor <host>'s
 * (schema 14's agent_role, docs/FLEET.md): it may log in, read the
 * database and change, as row-level security lets it, only <host>'s VPSes
 * and what hangs off them, its agent's heartbeat and journal.  Again for a
 * role that is mapped already: its host is <host> now.  The owner's to
 * call.  -ENOENT: no such role; -EOPNOTSUPP: not a PostgreSQL database
 * (SQLite has one hypervisor and no roles). */
int pc_store_agent_role(struct pc_store *s, const char *host, const char *role);

/* A lost connection to the database is made again without making a
 * caller wait: calls fail at once (-EIO, "the database is unreachable")
 * until it is back.  For the agent's loop. */
void pc_store_background_reconnect(struct pc_store *s);

/* Whether the database was there at the last call (a server that went
 * away: false until a call finds it back; NULL: none opened, false). */
bool pc_store_connected(struct pc_store *s);

/* Within pc_store_tx_begin's transaction: records that operation <op>
 * (an agent's journal entry, "HOST:EPOCH:SEQ") is applied, so that it
 * commits with what it did.  -EEXIST if it already was (replayed before:
 * roll back, it is done). */
int pc_store_journal_mark(struct pc_store *s, const char *op, int64_t at);

/* Following changes as they commit, where the engine can tell
 * (PostgreSQL's LISTEN/NOTIFY on a connection of its own, connected
 * without blocking): those of the VPSes of <host> (on it, or moving from
 * it) and those of no host or no VPS (<host> NULL or "": every change).  -EOPNOTSUPP where it cannot (SQLite: writers wake
 * the agent through its wake socket instead). */
int pc_store_watch_open(struct pc_store *s, const char *host, struct pc_store_watch **ret);
/* The descriptor to wait on, and whether for writing too: both may change
 * after each pc_store_watch_ready(). */
int pc_store_watch_fd(struct pc_store_watch *w);
bool pc_store_watch_wants_write(struct pc_store_watch *w);
/* Advances <w> once its descriptor is ready: *<ret_changed> if the feed
 * may have grown (a notification, or a connection just made: what was
 * missed meanwhile is in the feed).  -EIO: the connection is lost (the
 * message in *<ret_why>, static until the next call): close and open again
 * later. */
int pc_store_watch_ready(struct pc_store_watch *w, bool *ret_changed, const char **ret_why);
void pc_store_watch_close(struct pc_store_watch *w);

/* The SQLite backend. */
extern const struct pc_store_ops pc_store_sqlite_ops;
