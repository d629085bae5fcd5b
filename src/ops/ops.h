/* The operations layer: every change to the fleet's policy state, with its
 * business rules and its authorisation, written once.  The CLI's cmd_*.c
 * parse arguments and print; the HTTP API will parse JSON and answer; the
 * agent's response engine acts -- all of them through these operations,
 * none of them re-deciding what is allowed.  Below, the store keeps the
 * state (one transaction per change, with its audit and outbox rows).
 *
 * An operation reads only what it needs: the VPS it touches
 * (pc_store_vps_fetch) and indexed answers about the rest of the fleet
 * (pc_store_addr_holder, pc_store_mac_holder), never the whole model.
 *
 * Every operation takes the actor (who, in which role) and returns 0 or a
 * negative errno, filling a typed error (code, field, message) that the
 * caller shows as it likes.  See docs/OPERATIONS.md. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/config.h"
#include "policy/model.h"
#include "store/store.h"

/* ---- actors ---------------------------------------------------------- */

/* What an actor may do (pc_ops_authorize has the one table of it). */
enum pc_role {
        PC_ROLE_ADMIN,    /* everything, the VPS registry included */
        PC_ROLE_SUPPORT,  /* exceptions, tickets, incidents and actions; not the registry */
        PC_ROLE_CUSTOMER, /* their own VPSes (bound to <customer>); asks, never grants */
        PC_ROLE_AGENT,    /* portcullisd and orchestration (VM manager hooks): registry, actions */
};

/* Who does an operation: a principal in a role.  <principal> is what the
 * audit log records as "by" ("alice", "portcullisd", a token's name). */
struct pc_ops_actor {
        const char *principal;
        enum pc_role role;
        /* PC_ROLE_CUSTOMER: the customer the actor is bound to -- the owner
         * (email) of the VPSes they may see.  Ignored for other roles. */
        const char *customer;
        /* PC_ROLE_AGENT: the hypervisor the actor is bound to (an agent
         * token minted with a host): it acts on that host's VPSes only and
         * sees no other (pc_ops_authorize_vps).  NULL or "": any host -- an
         * agent token minted --any-host, portcullisd's own response engine,
         * the CLI.  Ignored for other roles. */
        const char *host;
};

/* <who>'s host if it is an agent bound to one, else NULL. */
const char *pc_ops_actor_host(const struct pc_ops_actor *who);

/* "admin", "support", "customer", "agent"; NULL for another value. */
const char *pc_role_name(enum pc_role role);
/* Parses a role's name: 0, or -EINVAL. */
int pc_role_parse(const char *name, enum pc_role *ret);

/* ---- errors ---------------------------------------------------------- */

/* What went wrong, as a caller can act on it.  The HTTP API maps each to
 * one status (pc_ops_http_status); the CLI exits 2 for all of them. */
enum pc_ops_code {
        PC_OPS_OK = 0,
        PC_OPS_EINVAL,    /* 400: a value is malformed, missing or out of range (<field> names it) */
        PC_OPS_ENOENT,    /* 404: the object does not exist -- or the actor may not see it */
        PC_OPS_EEXIST,    /* 409: the object exists already (a VPS id, an exception in force) */
        PC_OPS_EPERM,     /* 403: the actor's role may not do this */
        PC_OPS_ECONFLICT, /* 409: refused by the state of the fleet or the site policy (an address
                           * another VPS holds, a rule that is not exemptable, a termination) */
        PC_OPS_ELIMIT,    /* 409: a limit is reached (exceptions per VPS) */
        PC_OPS_EIO,       /* 500: the store failed (database error, out of memory) */
        PC_OPS_EAUTH,     /* 401: no credentials, or not valid ones (an unknown, revoked or expired token) */
};

#define PC_OPS_FIELD_MAX 32
#define PC_OPS_MESSAGE_MAX 1024

/* A typed error.  <field> names the input at fault in the API's words
 * ("addresses", "mac", "service"; "" when none is).  <message> says what
 * is wrong; for PC_OPS_EINVAL with a field it speaks of the value only
 * ("'fr' is not supported (en, it)") so that each front end names the
 * field its own way (the CLI: "--lang 'fr' ..."; the API: {"field":
 * "lang"}); otherwise it is a whole sentence ("address 198.51.100.26/32
 * overlaps 198.51.100.24/29 of vps-202"). */
struct pc_ops_error {
        enum pc_ops_code code;
        char field[PC_OPS_FIELD_MAX];
        char message[PC_OPS_MESSAGE_MAX];
};

/* The HTTP status an error of <code> maps to: 400, 404, 409, 403, 500
 * (200 for PC_OPS_OK).  A customer asking for another customer's object
 * gets PC_OPS_ENOENT, so 404, never 403: whether it exists is not theirs
 * to learn. */
int pc_ops_http_status(enum pc_ops_code code);

/* The code's name in the API's JSON: "invalid", "not_found", "exists",
 * "forbidden", "conflict", "limit", "internal" ("ok"). */
const char *pc_ops_code_name(enum pc_ops_code code);

/* ---- context --------------------------------------------------------- */

/* What operations work on: the loaded configuration (sites, policies,
 * services) and the open store.  Neither is owned. */
struct pc_ops {
        const struct pc_config *cfg;
        struct pc_store *store;
};

/* ---- authorisation --------------------------------------------------- */

/* The operations, for pc_ops_authorize. */
enum pc_op {
        PC_OP_VPS_REGISTER,
        PC_OP_VPS_UPDATE_ADDRESSES,
        PC_OP_VPS_SET_STATE,
        PC_OP_VPS_REMOVE,
        PC_OP_EXCEPTION_GRANT,
        PC_OP_EXCEPTION_REVOKE,
        PC_OP_TICKET_OPEN,
        PC_OP_TICKET_READ,
        PC_OP_TICKET_INVESTIGATE,
        PC_OP_TICKET_APPROVE,
        PC_OP_TICKET_DENY,
        PC_OP_TICKET_REVOKE,
        PC_OP_TICKET_EXPIRE,
        PC_OP_VPS_READ,
        PC_OP_TOKEN_MANAGE,
        PC_OP_METRICS_READ,
        PC_OP_INCIDENT_READ,
        PC_OP_INCIDENT_CLOSE,
        PC_OP_ACTION_LIFT,
        PC_OP_AUDIT_READ,
        PC_OP_ACTION_PLACE,
        PC_OP_TERMINATE,
        PC_OP_NOTIFICATION_RETRY,
        PC_OP_TICKET_FINDINGS,
        PC_OP_VPS_MOVE,
        PC_OP_FLEET_READ,
        PC_OP_VPS_DEPART,
        PC_OP_COUNT_,
};

/* May <who> do <op> at all?  The one table of roles and operations:
 * 0, or -EPERM with <err> saying which role may.  An operation on one VPS
 * also checks that a customer owns it, and that an agent bound to a host
 * acts on that host's (pc_ops_authorize_vps: -ENOENT otherwise, see
 * above). */
int pc_ops_authorize(const struct pc_ops_actor *who, enum pc_op op, struct pc_ops_error *err);

/* May <who> see and act on VPS <vps> at all, whatever the operation: a
 * customer their own only, an agent bound to host H the VPSes whose host
 * is H only.  0, or -ENOENT ("vps X does not exist", field vps): whether
 * another customer's or another host's VPS exists is not theirs to learn.
 * Pure: the caller has read <vps>. */
int pc_ops_authorize_vps(const struct pc_ops_actor *who, const struct pc_vps *vps, struct pc_ops_error *err);

/* ---- VPSes ----------------------------------------------------------- */

/* A VPS to register.  Strings as given (validated here); NULL for none. */
struct pc_vps_spec {
        const char *id;
        const char *owner;    /* the customer's email: notifications go there */
        const char *lang;     /* NULL: "en" */
        const char *site;     /* NULL: the configuration's default-site */
        const char *iface;    /* the host-side interface (tap, or bridge port) */
        const uint8_t *mac;   /* 6 bytes, or NULL */
        const struct pc_prefix *addrs;
        size_t n_addrs;
        const char *host;     /* the hypervisor it runs on; NULL: none (a single host) */
};

/* Registers <spec> for <who> (admin, agent), <reason> (may be NULL) in
 * the audit log.  An agent bound to host H registers onto H only: no host
 * in <spec> is H, another is EPERM (host).  Refused: a bad or missing
 * value (EINVAL, its field); a
 * site without the MAC a bridged anti-spoofed VPS needs (EINVAL, mac);
 * an address that overlaps another of the VPS's own (EINVAL, addresses),
 * another VPS's address or a source prefix granted to one (ECONFLICT,
 * addresses: one VPS could speak as another); a MAC another VPS has
 * (ECONFLICT, mac); an id or interface already registered (EEXIST).  On
 * success *<ret_site> (may be NULL) is the site it was placed at. */
int pc_ops_vps_register(struct pc_ops *o, const struct pc_ops_actor *who, const struct pc_vps_spec *spec,
                        const char *reason, const struct pc_site **ret_site, struct pc_ops_error *err);

/* What changes of a registered VPS (pc_ops_vps_update): NULL for what
 * stays.  Its owner, language and site are not the VM manager's to change. */
struct pc_vps_change {
        const char *id;
        const char *iface;            /* the new host-side interface */
        const uint8_t *mac;           /* 6 bytes: the new MAC */
        const struct pc_prefix *addrs; /* the new addresses: they replace every one */
        size_t n_addrs;
};

/* Changes VPS <change>->id's addresses, and its interface and MAC if given,
 * for <who> (admin, agent), <reason> (may be NULL) in the audit log
 * (vps.update, before and after).  The result is checked as
 * pc_ops_vps_register checks a registration -- bad values (EINVAL, their
 * field), addresses overlapping each other (EINVAL, addresses) or another
 * VPS's or a source prefix granted to another (ECONFLICT, addresses),
 * another VPS's MAC (ECONFLICT, mac) or interface (EEXIST) -- and an
 * unknown VPS is ENOENT.  What it already has is no change: nothing is
 * written and *<ret_changed> (may be NULL) is false. */
int pc_ops_vps_update(struct pc_ops *o, const struct pc_ops_actor *who, const struct pc_vps_change *change,
                      const char *reason, bool *ret_changed, struct pc_ops_error *err);

/* Moves VPS <id> to hypervisor <host> (NULL or "": none), on interface
 * <iface> there (NULL: on its host, the same name; back to the host still
 * holding it, or to the one it left that has not confirmed the move, its
 * interface there; to another host it is required), for <who> (admin, agent), <reason>
 * (may be NULL) in the audit log (vps.move).  An agent bound to host H
 * only pulls: it moves a VPS, from wherever it is, onto H and nowhere else
 * (EPERM, host) -- a live migration's destination says the VM arrives
 * (libvirt runs its migrate hook there only); the host the VPS leaves
 * keeps enforcing it while the VM's interface is there.  Its policy, filters with
 * their remaining time, suspension and history go with it; the host it
 * leaves keeps enforcing it until the new one does (pc_store_vps_move),
 * and confirms the move once the VM has left it (pc_store_vps_departed):
 * until then the VPS says so (departing_from), and a pull that was a
 * claim is undone by moving it back there.  Refused: a bad name (EINVAL, host or iface), an interface another VPS
 * has on that host (EEXIST), an unknown VPS (ENOENT).  Moving it where it
 * is: *<ret_changed> (may be NULL) false, nothing written. */
int pc_ops_vps_move(struct pc_ops *o, const struct pc_ops_actor *who, const char *id, const char *host,
                    const char *iface, const char *reason, bool *ret_changed, struct pc_ops_error *err);

/* Confirms for <who> (admin only: a token bound to a host, or any agent
 * token, may not say for a host what left it) that the VM of VPS <id> has
 * left the host it departs from -- the move the host's own agent has not
 * confirmed (departing_from): the host is dead for good, or its agent
 * started without the VM and a snapshot.  <reason> (required: how the
 * admin knows) goes to the audit log, vps.depart by <who>, as the host's
 * agent would have recorded it.  The host it departed from is copied into
 * <ret_from> (may be NULL; PC_NAME_MAX bytes).  Refused: no reason
 * (EINVAL, reason), an unknown VPS (ENOENT), a VPS with no move to
 * confirm -- never moved between hosts, moved back, or confirmed already,
 * by its old host's agent too (ECONFLICT, vps). */
int pc_ops_vps_depart(struct pc_ops *o, const struct pc_ops_actor *who, const char *id, const char *reason,
                      char *ret_from, struct pc_ops_error *err);

/* Calls <cb> with each agent's last heartbeat, for <who> (admin, support;
 * PC_OP_FLEET_READ). */
int pc_ops_fleet_agents(struct pc_ops *o, const struct pc_ops_actor *who, pc_agent_beat_cb cb, void *userdata,
                        struct pc_ops_error *err);

/* What an agent's last heartbeat says of it: ok; out-of-sync (its kernel
 * does not hold what its model says); stale (no heartbeat for
 * pc_fleet_stale_after seconds: stopped, hung or cut off -- its kernel
 * keeps what it last had), which outweighs what the last beat said. */
enum pc_agent_state {
        PC_AGENT_OK,
        PC_AGENT_OUT_OF_SYNC,
        PC_AGENT_STALE,
        PC_AGENT_STATE_COUNT_,
};

/* "ok", "out-of-sync", "stale"; NULL for another value. */
const char *pc_agent_state_name(enum pc_agent_state state);

/* An agent as the fleet's operators see it (`portcullis fleet status`,
 * GET /v1/fleet, /metrics). */
struct pc_fleet_agent {
        const struct pc_agent_beat *beat; /* borrowed: valid during the callback only */
        enum pc_agent_state state;
        int64_t age; /* seconds since its heartbeat */
        int64_t lag; /* changes of the feed newer than the last it applied, >= 0 */
};

/* The fleet as a whole, when it was judged. */
struct pc_fleet_view {
        int64_t now;
        int64_t last_change; /* the newest change of the feed (pc_store_change_last) */
        int64_t stale_after; /* seconds without a heartbeat before an agent is stale */
};

/* Seconds without a heartbeat before an agent is stale under <cfg>:
 * three periodic passes (3 x agent.attempts-interval). */
int64_t pc_fleet_stale_after(const struct pc_config *cfg);

/* Judges heartbeat <b> within <view>: fills *<ret> (whose beat is <b>).
 * Pure: no store, the clock in <view>. */
void pc_fleet_judge(const struct pc_agent_beat *b, const struct pc_fleet_view *view, struct pc_fleet_agent *ret);

typedef int (*pc_fleet_agent_cb)(const struct pc_fleet_agent *a, void *userdata);

/* The fleet at <now> for <who> (admin, support; PC_OP_FLEET_READ): calls
 * <cb> with each agent judged (pc_fleet_judge), by host, and on success
 * fills *<ret_view> (may be NULL).  A negative return of <cb> stops the
 * read: EIO. */
int pc_ops_fleet_status(struct pc_ops *o, const struct pc_ops_actor *who, int64_t now, pc_fleet_agent_cb cb,
                        void *userdata, struct pc_fleet_view *ret_view, struct pc_ops_error *err);

/* Records for <who> (admin, agent) that VPS <id> runs (<running>) or is
 * stopped, as its VM manager says: audited as vps.start or vps.stop with
 * <reason> (may be NULL).  Informational only: a stopped VPS keeps its
 * exceptions, filters and suspension, in the store and in the kernel.  In
 * that state already: nothing is written, *<ret_changed> (may be NULL) is
 * false.  ENOENT for an unknown VPS. */
int pc_ops_vps_set_state(struct pc_ops *o, const struct pc_ops_actor *who, const char *id, bool running,
                         const char *reason, bool *ret_changed, struct pc_ops_error *err);

/* Removes VPS <id> and what hangs off it for <who> (admin, agent).  A
 * terminated VPS only with <admin_override>, which only an admin may use
 * (EPERM); billing is told through notifications.webhook then.  An agent
 * bound to a host does not remove a VPS whose move there the host it left
 * has not confirmed (ECONFLICT, vps): a pull may be a claim, which the
 * admin undoes by moving it back. */
int pc_ops_vps_remove(struct pc_ops *o, const struct pc_ops_actor *who, const char *id, const char *reason,
                      bool admin_override, struct pc_ops_error *err);

/* Calls <cb> for the ids of the VPSes <who> may see (PC_OP_VPS_READ: a
 * customer their own, an agent bound to a host that host's), by id, after <after> (NULL: from the first), at
 * most <limit>. */
int pc_ops_vps_list(struct pc_ops *o, const struct pc_ops_actor *who, const char *after, size_t limit,
                    int (*cb)(const char *id, void *userdata), void *userdata, struct pc_ops_error *err);

/* Reads VPS <id> for <who> (PC_OP_VPS_READ; another customer's, or
 * another host's to a bound agent: ENOENT). */
int pc_ops_vps_get(struct pc_ops *o, const struct pc_ops_actor *who, const char *id, struct pc_vps **ret,
                   struct pc_ops_error *err);

/* ---- exceptions ------------------------------------------------------ */

/* An exception to grant. */
struct pc_exception_spec {
        const char *vps_id;
        const char *service;  /* a service, "scanning", or "source-prefix:CIDR" */
        const char *reason;   /* required: the audit log and the owner's email say why */
        int64_t until;        /* 0: no end; else in the future */
        int64_t ticket_id;    /* 0: none; else a pending ticket of the VPS for <service> */
};

/* What a grant lifted, for the caller to say so. */
struct pc_grant_result {
        int64_t id;                  /* the exception */
        const struct pc_site *site;  /* the VPS's site */
        const struct pc_rule *rule;  /* the rule of the site's policy lifted; NULL for scanning or a
                                      * source prefix */
};

/* Grants <spec> for <who> (admin, support).  With a ticket, the grant is
 * that ticket's approval (pc_ops_ticket_approve): the ticket must be the
 * VPS's and ask for <service> (ECONFLICT, ticket), and be open or
 * investigating (ECONFLICT).  Refused: an unknown VPS
 * (ENOENT, vps) or service (EINVAL, service); a rule that the site's
 * policy does not have, or that is not exemptable, or a policy without
 * exceptions (ECONFLICT, service); a source prefix that is unassignable
 * (EINVAL, service), overlaps another VPS's address (ECONFLICT, service)
 * or is granted where there is no anti-spoofing to except from
 * (ECONFLICT, service); an exception in force already (EEXIST); the
 * exception limit of the VPS (ELIMIT); a ticket that does not exist
 * (ENOENT), is another VPS's or service's or is not pending (EINVAL
 * without a field: the store checks the ticket until ticket_decide, the
 * next slice, takes it over). */
int pc_ops_exception_grant(struct pc_ops *o, const struct pc_ops_actor *who, const struct pc_exception_spec *spec,
                           struct pc_grant_result *ret, struct pc_ops_error *err);

/* Revokes <vps_id>'s exception for <service> for <who> (admin, support),
 * <reason> required.  ENOENT if there is none in force. */
int pc_ops_exception_revoke(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id,
                            const char *service, const char *reason, struct pc_ops_error *err);

/* ---- tickets --------------------------------------------------------- */

#define PC_TICKETS_PENDING_MAX 5           /* tickets of one VPS waiting for a decision */
#define PC_TICKET_DURATION_MAX (366 * 86400) /* seconds a ticket may ask for */

/* A customer's request for an exception. */
struct pc_ticket_spec {
        const char *vps_id;
        const char *service;  /* a service, "scanning", or "source-prefix:CIDR" */
        const char *ports;    /* NULL: the whole service; "tcp/587,tcp/465" (a bare port is tcp) */
        int64_t duration;     /* seconds asked; 0: none said */
        const char *text;     /* required: the use case */
        const char *evidence; /* NULL: none; documentation, links */
};

/* Opens a ticket for <who> (admin, support; a customer on their own VPS
 * only: another's is ENOENT, as if it did not exist).  Refused at once,
 * saying why, what no approval could answer: an unknown service (EINVAL,
 * service), a rule that is not exemptable or a policy without exceptions
 * (ECONFLICT, service: "rule 1 of policy lenoir ... is not exemptable"), a
 * service the site does not restrict (ECONFLICT, service: "nothing to
 * exempt"), ports that are not the service's at that site (EINVAL, ports),
 * a duration beyond a year (EINVAL, duration); a ticket for the same
 * service waiting for a decision already (EEXIST, service), or
 * PC_TICKETS_PENDING_MAX of the VPS waiting (ELIMIT).  Audited; the
 * owner's "ticket.received" queued. */
int pc_ops_ticket_open(struct pc_ops *o, const struct pc_ops_actor *who, const struct pc_ticket_spec *spec,
                       int64_t *ret_id, struct pc_ops_error *err);

/* Reads ticket <id> for <who> (admin, support; a customer: their own
 * VPSes' only, else ENOENT). */
int pc_ops_ticket_get(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id, struct pc_ticket *ret,
                      struct pc_ops_error *err);

/* Calls <cb> for each event of ticket <id>, oldest first, as <who> may
 * see it (admin, support; a customer: their own VPSes' only, else ENOENT,
 * and without what is internal: an investigation's note, and who of the
 * team acted -- "support"). */
int pc_ops_ticket_history(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id, pc_ticket_event_cb cb,
                          void *userdata, struct pc_ops_error *err);

/* Lists tickets for <who>: <q> as given for admin and support; a
 * customer's are always narrowed to their own VPSes (another customer's
 * VPS in <q> is ENOENT). */
int pc_ops_ticket_list(struct pc_ops *o, const struct pc_ops_actor *who, const struct pc_ticket_query *q,
                       pc_ticket_cb cb, void *userdata, struct pc_ops_error *err);

/* What support weighs beside ticket <id> (admin, support; a customer
 * sees the ticket and its history only: EPERM), as a new JSON object in
 * *<ret>: {"blocked_attempts": the VPS's blocked attempts on the ports of
 * its site's rule for the service asked (none without such a rule), by
 * port -- the kernel's counters as portcullisd last wrote them to the
 * store (pc_store_attempt_note), no kernel read here; "incidents" and
 * "actions" of the VPS, newest first; "earlier_tickets": the customer's
 * other tickets, newest first}, PC_FINDINGS_MAX of each at most.  An
 * unknown ticket is ENOENT. */
#define PC_FINDINGS_MAX 100
struct json_t;
int pc_ops_ticket_findings(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id, struct json_t **ret,
                           struct pc_ops_error *err);

/* How support approves. */
struct pc_ticket_approval {
        const char *ports; /* NULL: as asked; else a subset of what was asked */
        int64_t until;     /* 0: the duration asked from now (none asked: no end) */
        const char *note;  /* the exception's reason; NULL: "ticket #N approved" */
};

/* The transitions, for <who> (admin, support; never a customer, not even
 * on their own ticket: EPERM).  Each records who, when and the note in the
 * ticket's history and the audit log; a ticket not in a state the
 * transition leaves is ECONFLICT naming its state ("ticket #3 is denied:
 * only an open ticket can be investigated").
 *   investigate: open -> investigating
 *   approve:     open | investigating -> approved; creates exactly the
 *                exception asked (the whole service or the ports), checked
 *                again against the site's policy now, with the ticket's id;
 *                the owner's "ticket.approved" says what opened, until when
 *   deny:        open | investigating -> denied, <reason> required (the
 *                owner's "ticket.denied" gives it)
 *   revoke:      approved -> revoked, <reason> required; its exception is
 *                revoked (the owner's "exception.revoked") */
int pc_ops_ticket_investigate(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id, const char *note,
                              struct pc_ops_error *err);
int pc_ops_ticket_approve(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id,
                          const struct pc_ticket_approval *a, struct pc_grant_result *ret, struct pc_ops_error *err);
int pc_ops_ticket_deny(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id, const char *reason,
                       struct pc_ops_error *err);
int pc_ops_ticket_revoke(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id, const char *reason,
                         struct pc_ops_error *err);

/* Records as expired every approved ticket whose exception ran out (the
 * agent, admin), of <host>'s VPSes (NULL or "": every VPS); *<ret_n> says
 * how many. */
int pc_ops_ticket_expire_due(struct pc_ops *o, const struct pc_ops_actor *who, const char *host, size_t *ret_n,
                             struct pc_ops_error *err);

/* ---- incidents, actions, the outbox, the audit log (ops_incident.c) ---- */

/* The reads take the store's callbacks; a callback may return -ENOBUFS to
 * stop early (a full page), which the read returns as it is.  A customer
 * reads their own VPSes' only: with <vps_id> another customer's VPS is
 * ENOENT; without, every VPS of theirs (each VPS's newest first). */

/* Incidents (admin, support, customer), as pc_store_incident_list. */
int pc_ops_incident_list(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id, const char *kind,
                         bool open_only, int64_t before, pc_incident_cb cb, void *userdata,
                         struct pc_ops_error *err);
/* Incident <id>: another customer's is ENOENT. */
int pc_ops_incident_get(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id, pc_incident_cb cb,
                        void *userdata, struct pc_ops_error *err);
/* Support's verdict that the episode is over (admin, support), <reason>
 * required; <lift_actions>: its actions in force are lifted too (a
 * termination among them only with <admin_override>, an admin's: EPERM
 * for another role; billing is told through notifications.webhook). */
int pc_ops_incident_close(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id, bool lift_actions,
                          const char *reason, bool admin_override, size_t *ret_lifted, struct pc_ops_error *err);

/* Filters and suspensions (admin, support, customer), as pc_store_action_list. */
int pc_ops_action_list(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id, int64_t incident_id,
                       bool active_only, int64_t before, pc_store_action_cb cb, void *userdata,
                       struct pc_ops_error *err);
/* Lifts action <id> (admin, support), <reason> required; a termination
 * only with <admin_override>, as pc_ops_incident_close.  *<ret_vps> (may
 * be NULL): the VPS, for the agent. */
int pc_ops_action_lift(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id, const char *reason,
                       bool admin_override, char ret_vps[PC_NAME_MAX], struct pc_ops_error *err);
/* A filter's new end <until> (0: permanent), as pc_store_action_set_until
 * (admin, support). */
int pc_ops_action_set_until(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id, int64_t until,
                            const char *reason, char ret_vps[PC_NAME_MAX], struct pc_ops_error *err);

/* Filters and suspensions placed by support by hand or by the response
 * engine (admin, support, agent), <reason> required: audited, the owner
 * emailed.  A filter's <spec> says its scope, direction (0: egress),
 * incident and end (0: none; else in the future); its by, reason and
 * created are set here.  ENOENT (vps) for an unknown VPS; a suspension of
 * a suspended VPS is ECONFLICT. */
int pc_ops_filter_place(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id,
                        const struct pc_filter *spec, const char *reason, int64_t *ret_id, struct pc_ops_error *err);
int pc_ops_filter_lift(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id, int64_t filter_id,
                       const char *reason, struct pc_ops_error *err);
int pc_ops_suspend(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id, int64_t incident_id,
                   const char *reason, int64_t *ret_id, struct pc_ops_error *err);
/* Lifts the suspension (admin, support); a termination only with
 * <admin_override>, an admin's. */
int pc_ops_unsuspend(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id, const char *reason,
                     bool admin_override, struct pc_ops_error *err);
/* A suspension only an admin lifts, announced to billing by the webhook
 * (admin, agent -- not support: it ends a contract).  <why> is the
 * termination's cause for the webhook and the email. */
int pc_ops_terminate(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id, int64_t incident_id,
                     const char *why, const char *reason, int64_t *ret_id, struct pc_ops_error *err);

/* The outbox (admin, support; a customer: the emails to them, never the
 * provider's webhook events), as pc_store_notification_list. */
int pc_ops_notification_list(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id, const char *state,
                             size_t limit, int64_t before, pc_notification_cb cb, void *userdata,
                             struct pc_ops_error *err);

/* Queues notification <id> again (admin, support), <reason> required:
 * a dead letter once its cause is fixed.  As pc_store_notification_retry:
 * one already sent is ECONFLICT. */
int pc_ops_notification_retry(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id, const char *reason,
                              struct pc_ops_error *err);

/* The audit log (admin, support), as pc_store_audit_list. */
int pc_ops_audit_list(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id, size_t limit,
                      pc_audit_cb cb, void *userdata, struct pc_ops_error *err);

/* ---- API tokens (ops_token.c) ------------------------------------------ */

/* A token's text: "pct_" and 43 characters of base64url (256 random bits),
 * with its NUL. */
#define PC_TOKEN_TEXT_SIZE 48

/* A token to create. */
struct pc_token_spec {
        const char *name;     /* the principal it acts as: 1-63 of a-z 0-9 . _ - */
        const char *role;     /* "admin", "support", "customer", "agent" */
        const char *customer; /* role customer: the owner email it is bound to (required); else NULL */
        const char *host;     /* role agent: the hypervisor it is bound to; else NULL */
        bool any_host;        /* role agent: bound to no host, said explicitly (a single host) */
        int64_t expires;      /* 0: never; else in the future */
};

/* Creates a token for <who> (admin only): writes its text, shown this
 * once and stored only as its SHA-256, into <text>, and the stored token
 * into *<ret> (may be NULL).  An agent token is bound to a host (<host>)
 * unless <any_host> says it is not, explicitly: one of the two is
 * required, and only for an agent.  Refused: a bad name, role, customer,
 * host or expiry (EINVAL, the field); a name in force already (EEXIST). */
int pc_ops_token_create(struct pc_ops *o, const struct pc_ops_actor *who, const struct pc_token_spec *spec,
                        char text[PC_TOKEN_TEXT_SIZE], struct pc_api_token *ret, struct pc_ops_error *err);

/* Revokes the token in force named <name> for <who> (admin only).  ENOENT
 * if there is none. */
int pc_ops_token_revoke(struct pc_ops *o, const struct pc_ops_actor *who, const char *name,
                        struct pc_ops_error *err);

/* Lists the tokens for <who> (admin only); <all>: the revoked too. */
int pc_ops_token_list(struct pc_ops *o, const struct pc_ops_actor *who, bool all, pc_api_token_cb cb,
                      void *userdata, struct pc_ops_error *err);

/* Who presents the token <text>: fills *<ret> (whose strings <actor>
 * points into) and <actor>.  EAUTH, with the same message whatever the
 * cause, for a malformed, unknown, revoked or expired token.  Records its
 * use to the minute. */
int pc_ops_token_authenticate(struct pc_ops *o, const char *text, int64_t now, struct pc_api_token *ret,
                              struct pc_ops_actor *actor, struct pc_ops_error *err);

/* ---- for the operations' own files ----------------------------------- */

/* May <spec> (a service, scanning or a source prefix) be granted to <vps>
 * under its site's policy?  Sets *<rule> to the rule it lifts (NULL for
 * scanning or a source prefix).  Errors as pc_ops_exception_grant; to a
 * customer <who>, a source prefix another VPS holds is only "not
 * available", not whose it is. */
int pc_ops_grant_check(struct pc_ops *o, const struct pc_ops_actor *who, const struct pc_vps *vps,
                       const char *service, const struct pc_rule **rule, struct pc_ops_error *err);

/* The VPS <id> as the store has it, for <who>: a customer's own only,
 * a bound agent's host's only (pc_ops_authorize_vps: ENOENT otherwise,
 * field vps). */
int pc_ops_vps_fetch(struct pc_ops *o, const struct pc_ops_actor *who, const char *id, struct pc_vps **ret,
                     struct pc_ops_error *err);

/* ---- for the operations' own files (continued) ------------------------ */

/* Fills <err> with <code>, <field> (NULL: none) and the message from
 * <fmt>; returns the negative errno that goes with <code>. */
int pc_ops_fail(struct pc_ops_error *err, enum pc_ops_code code, const char *field, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* Turns the store's failure <r> into an error: its errno gives the code
 * (-ENOENT ENOENT, -EEXIST EEXIST, -EPERM or -EALREADY ECONFLICT, -EINVAL
 * EINVAL, -ENOSPC ELIMIT, else EIO), its message the message; <field>
 * (may be NULL) names the input the store judged.  Returns <r>. */
int pc_ops_store_fail(struct pc_ops *o, int r, const char *field, struct pc_ops_error *err);

/* Checks free text <value> (NULL passes) of input <field>: shorter than
 * <size> bytes, valid UTF-8 without control characters.  0, or -EINVAL. */
int pc_ops_text_check(const char *field, const char *value, size_t size, struct pc_ops_error *err);

/* An operation whose checks and writes must see one state of the
 * database (who holds an address, is the ticket still open): begin, then
 * end with the operation's result; commits only if it succeeded
 * (pc_store_tx_begin).  pc_ops_end returns <r>, or the commit's error. */
int pc_ops_begin(struct pc_ops *o, struct pc_ops_error *err);
int pc_ops_end(struct pc_ops *o, int r, struct pc_ops_error *err);

/* For an operation on VPS <id> that does not read it otherwise: to an
 * actor who may not see every VPS (a customer, a bound agent), <id> must
 * be one they may (pc_ops_vps_fetch's refusals); to the others, nothing is
 * read.  Inside the operation's transaction, so the VPS cannot move
 * between the check and the write. */
int pc_ops_vps_check(struct pc_ops *o, const struct pc_ops_actor *who, const char *id, struct pc_ops_error *err);

/* The store's actor for an operation: <who>'s principal, <reason>. */
struct pc_actor pc_ops_store_actor(const struct pc_ops_actor *who, const char *reason);
