/* The store front: parses the database URL, picks the backend that serves
 * its scheme and dispatches every pc_store_*() call through the backend's
 * operations.  Nothing here knows SQL. */
#include "store/store-internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"

/* A backend and, if it has one, its open function that explains failures
 * and can create the database. */
struct backend {
        const char *scheme;     /* of the URL: "sqlite", "postgresql" */
        bool whole_url;         /* the backend's library reads the whole URL (libpq) */
        const struct pc_store_ops *ops;
        int (*open)(const char *location, bool create, bool *ret_created, struct pc_store **ret,
                    char *err, size_t errsz);
        int (*open_readonly)(const char *location, struct pc_store **ret, char *err, size_t errsz);
};

/* How store_open() opens. */
enum open_mode {
        OPEN_EXISTING,
        OPEN_CREATE,
        OPEN_READONLY,
};

/* One set of operations (store_sql.c) over either engine's driver. */
static const struct backend backends[] = {
        { "sqlite", false, &pc_store_sqlite_ops, pc_store_sqlite_open, pc_store_sqlite_open_readonly },
        { "postgresql", true, &pc_store_sqlite_ops, pc_store_pg_open, pc_store_pg_open_readonly },
        { "postgres", true, &pc_store_sqlite_ops, pc_store_pg_open, pc_store_pg_open_readonly },
};

/* Returns the part of "<scheme>:<rest>" that names the database for a
 * file-based backend: "/p" from "/p" or "///p", "rel/p" from "rel/p". */
static int parse_location(const char *url, const char *rest, const char **ret_location,
                          char *err, size_t errsz)
{
        if (strncmp(rest, "//", 2) == 0) {
                if (rest[2] != '/') {
                        snprintf(err, errsz,
                                 "database URL '%s': a SQLite database is a local file, not a "
                                 "host (use sqlite:/PATH or sqlite:///PATH)",
                                 url);
                        return -EINVAL;
                }
                rest += 2;
        }
        if (*rest == '\0') {
                snprintf(err, errsz, "database URL '%s' names no file (use sqlite:PATH)", url);
                return -EINVAL;
        }
        *ret_location = rest;
        return 0;
}

static int store_open(const char *url, enum open_mode mode, bool *ret_created,
                      struct pc_store **ret, char *err, size_t errsz);

/* Opens the existing store named by <url>: see store.h. */
int pc_store_open(const char *url, struct pc_store **ret, char *err, size_t errsz)
{
        return store_open(url, OPEN_EXISTING, NULL, ret, err, errsz);
}

/* Opens the store named by <url>, creating it if missing: see store.h. */
int pc_store_init(const char *url, bool *ret_created, struct pc_store **ret, char *err,
                  size_t errsz)
{
        return store_open(url, OPEN_CREATE, ret_created, ret, err, errsz);
}

/* Opens the store named by <url> for reading only: see store.h. */
int pc_store_open_readonly(const char *url, struct pc_store **ret, char *err, size_t errsz)
{
        return store_open(url, OPEN_READONLY, NULL, ret, err, errsz);
}

static int store_open(const char *url, enum open_mode mode, bool *ret_created,
                      struct pc_store **ret, char *err, size_t errsz)
{
        const char *colon, *location;
        size_t scheme_len;
        struct pc_store *s = NULL;
        int r;

        if (errsz > 0)
                err[0] = '\0';
        if (url == NULL || ret == NULL) {
                snprintf(err, errsz, "no database URL given");
                return -EINVAL;
        }
        colon = strchr(url, ':');
        scheme_len = colon != NULL ? (size_t)(colon - url) : 0;
        for (size_t i = 0; colon != NULL && i < PC_ARRAY_SIZE(backends); i++) {
                const struct backend *b = &backends[i];

                if (strlen(b->scheme) != scheme_len || strncmp(url, b->scheme, scheme_len) != 0)
                        continue;
                if (b->whole_url)
                        location = url;
                else if ((r = parse_location(url, colon + 1, &location, err, errsz)) < 0)
                        return r;
                if (mode == OPEN_READONLY) {
                        if (b->open_readonly == NULL) {
                                snprintf(err, errsz, "database URL '%s': no read-only mode", url);
                                return -EPROTONOSUPPORT;
                        }
                        r = b->open_readonly(location, &s, err, errsz);
                } else if (b->open != NULL) {
                        r = b->open(location, mode == OPEN_CREATE, ret_created, &s, err, errsz);
                } else if (mode == OPEN_CREATE) {
                        snprintf(err, errsz, "database URL '%s': cannot be created here", url);
                        return -EPROTONOSUPPORT;
                } else {
                        r = b->ops->open(location, &s);
                        if (r < 0)
                                snprintf(err, errsz, "cannot open database '%s': %s", url,
                                         strerror(-r));
                }
                if (r < 0)
                        return r;
                *ret = s;
                return 0;
        }
        snprintf(err, errsz, "unknown database URL scheme in '%s' (expected sqlite:PATH or postgresql://...)",
                 url);
        return -EPROTONOSUPPORT;
}

/* Closes <s> through its backend; accepts NULL. */
struct pc_store *pc_store_close(struct pc_store *s)
{
        if (s != NULL)
                s->ops->close(s);
        return NULL;
}

/* The backend's last error message. */
const char *pc_store_errmsg(const struct pc_store *s)
{
        if (s == NULL)
                return "no store";
        return s->ops->errmsg(s);
}

/* The schema version this build writes: the SQLite migrations' newest. */
int pc_store_schema_latest(void)
{
        return pc_sqlite_schema_latest();
}

/* The schema version <s> is at. */
int pc_store_schema_version(struct pc_store *s, int *ret_version)
{
        if (s == NULL || ret_version == NULL)
                return -EINVAL;
        return s->ops->schema_version(s, ret_version);
}

/* Loads <s> into the empty model <m>. */
int pc_store_load(struct pc_store *s, struct pc_model *m)
{
        return pc_store_load_host(s, m, NULL);
}

int pc_store_load_host(struct pc_store *s, struct pc_model *m, const char *host)
{
        if (s == NULL || m == NULL)
                return -EINVAL;
        return s->ops->load(s, m, host);
}

/* Registers <vps>. */
int pc_store_vps_add(struct pc_store *s, const struct pc_vps *vps, const struct pc_actor *who)
{
        if (s == NULL || vps == NULL || who == NULL)
                return -EINVAL;
        return s->ops->vps_add(s, vps, who);
}

/* Deletes the VPS <id>. */
int pc_store_vps_remove(struct pc_store *s, const char *id, const struct pc_actor *who)
{
        if (s == NULL || id == NULL || who == NULL)
                return -EINVAL;
        return s->ops->vps_remove(s, id, who);
}

/* Changes the interface, MAC and addresses of VPS <vps>->id. */
int pc_store_vps_update(struct pc_store *s, const struct pc_vps *vps, const struct pc_actor *who,
                        bool *ret_changed)
{
        if (s == NULL || vps == NULL || who == NULL)
                return -EINVAL;
        return s->ops->vps_update(s, vps, who, ret_changed);
}

/* Records that VPS <id> runs or is stopped. */
int pc_store_vps_set_state(struct pc_store *s, const char *id, bool running, const struct pc_actor *who,
                           bool *ret_changed)
{
        if (s == NULL || id == NULL || who == NULL)
                return -EINVAL;
        return s->ops->vps_set_state(s, id, running, who, ret_changed);
}

/* Finds who else holds an address overlapping <p>. */
int pc_store_addr_holder(struct pc_store *s, const struct pc_prefix *p, const char *except_vps, unsigned what,
                         int64_t now, struct pc_addr_holder *ret)
{
        if (s == NULL || p == NULL || ret == NULL)
                return -EINVAL;
        return s->ops->addr_holder(s, p, except_vps, what, now, ret);
}

/* Finds who else has MAC <mac>. */
int pc_store_mac_holder(struct pc_store *s, const uint8_t mac[6], const char *except_vps, char *ret_vps,
                        size_t size)
{
        if (s == NULL || mac == NULL || ret_vps == NULL || size == 0)
                return -EINVAL;
        return s->ops->mac_holder(s, mac, except_vps, ret_vps, size);
}

/* Grants exception <e> to <vps_id>. */
int pc_store_exception_grant(struct pc_store *s, const char *vps_id, const struct pc_exception *e,
                             const struct pc_actor *who, int64_t *ret_id)
{
        if (s == NULL || vps_id == NULL || e == NULL || who == NULL)
                return -EINVAL;
        return s->ops->exception_grant(s, vps_id, e, who, ret_id);
}

/* Revokes <vps_id>'s exception for <service>. */
int pc_store_exception_revoke(struct pc_store *s, const char *vps_id, const char *service,
                              const struct pc_actor *who)
{
        if (s == NULL || vps_id == NULL || service == NULL || who == NULL)
                return -EINVAL;
        return s->ops->exception_revoke(s, vps_id, service, who);
}

/* Reads <vps_id>'s newest exception for <service> that ended by <now>. */
int pc_store_exception_ended(struct pc_store *s, const char *vps_id, const char *service, int64_t now,
                             struct pc_exception *ret)
{
        if (s == NULL || vps_id == NULL || service == NULL || ret == NULL)
                return -EINVAL;
        return s->ops->exception_ended(s, vps_id, service, now, ret);
}

/* Places filter <f> on <vps_id>. */
int pc_store_filter_place(struct pc_store *s, const char *vps_id, const struct pc_filter *f,
                          const struct pc_actor *who, int64_t *ret_id)
{
        if (s == NULL || vps_id == NULL || f == NULL || who == NULL)
                return -EINVAL;
        return s->ops->filter_place(s, vps_id, f, who, ret_id);
}

/* Lifts filter <filter_id> of <vps_id>. */
int pc_store_filter_lift(struct pc_store *s, const char *vps_id, int64_t filter_id,
                         const struct pc_actor *who)
{
        if (s == NULL || vps_id == NULL || who == NULL)
                return -EINVAL;
        return s->ops->filter_lift(s, vps_id, filter_id, who);
}

/* Suspends <vps_id>. */
int pc_store_suspend(struct pc_store *s, const char *vps_id, int64_t incident_id,
                     const struct pc_actor *who, int64_t *ret_id)
{
        if (s == NULL || vps_id == NULL || who == NULL)
                return -EINVAL;
        return s->ops->suspend(s, vps_id, incident_id, who, ret_id);
}

/* Ends the suspension of <vps_id>. */
int pc_store_unsuspend(struct pc_store *s, const char *vps_id, const struct pc_actor *who)
{
        if (s == NULL || vps_id == NULL || who == NULL)
                return -EINVAL;
        return s->ops->unsuspend(s, vps_id, who);
}

/* Terminates <vps_id>. */
int pc_store_terminate(struct pc_store *s, const char *vps_id, int64_t incident_id, const char *why,
                       const char *webhook_url, const struct pc_actor *who, int64_t *ret_id)
{
        if (s == NULL || vps_id == NULL || who == NULL)
                return -EINVAL;
        return s->ops->terminate(s, vps_id, incident_id, why, webhook_url, who, ret_id);
}

/* Opens ticket <t>. */
int pc_store_ticket_open(struct pc_store *s, const struct pc_ticket *t, const struct pc_actor *who,
                         int64_t *ret_id)
{
        if (s == NULL || t == NULL || who == NULL)
                return -EINVAL;
        return s->ops->ticket_open(s, t, who, ret_id);
}

/* Lists <vps_id>'s tickets, newest first. */
int pc_store_ticket_list(struct pc_store *s, const char *vps_id, pc_ticket_cb cb, void *userdata)
{
        struct pc_ticket_query q = { .vps_id = vps_id, .state = -1 };

        if (s == NULL || cb == NULL)
                return -EINVAL;
        return s->ops->ticket_query(s, &q, pc_now(), cb, userdata);
}

int pc_store_ticket_query(struct pc_store *s, const struct pc_ticket_query *q, int64_t now, pc_ticket_cb cb,
                          void *userdata)
{
        if (s == NULL || q == NULL || cb == NULL)
                return -EINVAL;
        return s->ops->ticket_query(s, q, now, cb, userdata);
}

int pc_store_ticket_get(struct pc_store *s, int64_t id, int64_t now, struct pc_ticket *ret)
{
        if (s == NULL || ret == NULL)
                return -EINVAL;
        return s->ops->ticket_get(s, id, now, ret);
}

int pc_store_ticket_events(struct pc_store *s, int64_t id, pc_ticket_event_cb cb, void *userdata)
{
        if (s == NULL || cb == NULL)
                return -EINVAL;
        return s->ops->ticket_events(s, id, cb, userdata);
}

int pc_store_ticket_transition(struct pc_store *s, int64_t id, enum pc_ticket_state from,
                               enum pc_ticket_state to, const struct pc_exception *grant,
                               const struct pc_actor *who, int64_t *ret_exception_id)
{
        if (s == NULL || who == NULL || (to == PC_TICKET_APPROVED && grant == NULL))
                return -EINVAL;
        return s->ops->ticket_transition(s, id, from, to, grant, who, ret_exception_id);
}

int pc_store_ticket_expire_due(struct pc_store *s, int64_t now, const char *host, const struct pc_actor *who,
                               size_t *ret_n)
{
        if (s == NULL || who == NULL)
                return -EINVAL;
        return s->ops->ticket_expire_due(s, now, host != NULL && host[0] != '\0' ? host : NULL, who, ret_n);
}

/* Lists the newest <limit> audit entries, oldest first. */
int pc_store_audit_list(struct pc_store *s, const char *vps_id, size_t limit, pc_audit_cb cb,
                        void *userdata)
{
        if (s == NULL || cb == NULL)
                return -EINVAL;
        return s->ops->audit_list(s, vps_id, limit, cb, userdata);
}

static const char *const ticket_states[PC_TICKET_STATE_COUNT_] = {
        [PC_TICKET_OPEN] = "open",         [PC_TICKET_INVESTIGATING] = "investigating",
        [PC_TICKET_APPROVED] = "approved", [PC_TICKET_DENIED] = "denied",
        [PC_TICKET_REVOKED] = "revoked",   [PC_TICKET_EXPIRED] = "expired",
        [PC_TICKET_CLOSED] = "closed",
};

const char *pc_ticket_state_name(enum pc_ticket_state st)
{
        return (unsigned)st < PC_TICKET_STATE_COUNT_ ? ticket_states[st] : NULL;
}

int pc_ticket_state_parse(const char *name, enum pc_ticket_state *ret)
{
        for (unsigned i = 0; name != NULL && i < PC_TICKET_STATE_COUNT_; i++)
                if (strcmp(name, ticket_states[i]) == 0) {
                        *ret = (enum pc_ticket_state)i;
                        return 0;
                }
        return -EINVAL;
}

int pc_store_vps_fetch(struct pc_store *s, const struct pc_config *cfg, const char *id,
                       struct pc_vps **ret)
{
        return s->ops->vps_fetch(s, cfg, id, ret);
}

int pc_store_incident_note(struct pc_store *s, const char *vps_id, const char *kind, uint64_t count,
                           int64_t at, const char *evidence, int64_t gap, int64_t *ret_id,
                           bool *ret_opened, unsigned flags)
{
        return s->ops->incident_note(s, vps_id, kind, count, at, evidence, gap, ret_id, ret_opened, flags);
}

int pc_store_incident_times(struct pc_store *s, const char *vps_id, const char *kind, int64_t since,
                            int64_t before_id, int64_t *ret_times, size_t max, size_t *ret_n)
{
        return s->ops->incident_times(s, vps_id, kind, since, before_id, ret_times, max, ret_n);
}

/* Frees <n>'s payload; accepts NULL. */
void pc_notification_clear(struct pc_notification *n)
{
        if (n == NULL)
                return;
        free(n->payload);
        n->payload = NULL;
}

/* Lists the due pending notifications, oldest first. */
int pc_store_notification_due(struct pc_store *s, int64_t now, size_t limit, pc_notification_cb cb,
                              void *userdata)
{
        if (s == NULL || cb == NULL || limit == 0 || limit > PC_NOTIFICATION_BATCH_MAX)
                return -EINVAL;
        return s->ops->notification_due(s, now, limit, cb, userdata);
}

/* Lists notifications, newest first. */
int pc_store_notification_list(struct pc_store *s, const char *vps_id, const char *state,
                               size_t limit, int64_t before, pc_notification_cb cb, void *userdata)
{
        if (s == NULL || cb == NULL || before < 0)
                return -EINVAL;
        return s->ops->notification_list(s, vps_id, state, limit, before, cb, userdata);
}

/* Reads notification <id>. */
int pc_store_notification_get(struct pc_store *s, int64_t id, struct pc_notification *ret)
{
        if (s == NULL || ret == NULL)
                return -EINVAL;
        return s->ops->notification_get(s, id, ret);
}

/* Begins a send attempt of notification <id>. */
int pc_store_notification_sending(struct pc_store *s, int64_t id, const char *message_id,
                                  int64_t now, char *ret_message_id)
{
        if (s == NULL || message_id == NULL)
                return -EINVAL;
        return s->ops->notification_sending(s, id, message_id, now, ret_message_id);
}

/* Marks notification <id> sent. */
int pc_store_notification_sent(struct pc_store *s, int64_t id, int64_t now)
{
        if (s == NULL)
                return -EINVAL;
        return s->ops->notification_sent(s, id, now);
}

/* Leaves notification <id> pending until <next_attempt>. */
int pc_store_notification_retry_later(struct pc_store *s, int64_t id, const char *error,
                                      int64_t next_attempt)
{
        if (s == NULL || error == NULL)
                return -EINVAL;
        return s->ops->notification_retry_later(s, id, error, next_attempt);
}

/* Gives up on notification <id>. */
int pc_store_notification_failed(struct pc_store *s, int64_t id, const char *error)
{
        if (s == NULL || error == NULL)
                return -EINVAL;
        return s->ops->notification_failed(s, id, error);
}

/* Queues notification <id> again. */
int pc_store_notification_retry(struct pc_store *s, int64_t id, const struct pc_actor *who)
{
        if (s == NULL || who == NULL)
                return -EINVAL;
        return s->ops->notification_retry(s, id, who);
}

/* Queues notification <kind> to <vps_id>'s owner. */
int pc_store_exception_expiry_notices(struct pc_store *s, int64_t now, int64_t within, const char *host,
                                      size_t *ret_count)
{
        return s->ops->exception_expiry_notices(s, now, within, host != NULL && host[0] != '\0' ? host : NULL,
                                                ret_count);
}

int pc_store_notification_queue(struct pc_store *s, const char *vps_id, const char *kind,
                                const char *facts, int64_t now, int64_t *ret_id)
{
        if (s == NULL || vps_id == NULL || kind == NULL)
                return -EINVAL;
        return s->ops->notification_queue(s, vps_id, kind, facts, now, ret_id);
}

int pc_store_incident_list(struct pc_store *s, const char *vps_id, const char *kind, bool open_only,
                           int64_t before, pc_incident_cb cb, void *userdata)
{
        if (s == NULL || cb == NULL || before < 0)
                return -EINVAL;
        return s->ops->incident_list(s, vps_id, kind, open_only, before, cb, userdata);
}

int pc_store_incident_get(struct pc_store *s, int64_t id, pc_incident_cb cb, void *userdata)
{
        if (s == NULL || cb == NULL)
                return -EINVAL;
        return s->ops->incident_get(s, id, cb, userdata);
}

int pc_store_incident_close(struct pc_store *s, int64_t id, bool lift_actions,
                            const struct pc_actor *who, size_t *ret_lifted)
{
        if (s == NULL || who == NULL)
                return -EINVAL;
        return s->ops->incident_close(s, id, lift_actions, who, ret_lifted);
}

int pc_store_action_list(struct pc_store *s, const char *vps_id, int64_t incident_id,
                         bool active_only, int64_t now, int64_t before, pc_store_action_cb cb, void *userdata)
{
        if (s == NULL || cb == NULL || before < 0)
                return -EINVAL;
        return s->ops->action_list(s, vps_id, incident_id, active_only, now, before, cb, userdata);
}

int pc_store_action_get(struct pc_store *s, int64_t id, struct pc_store_action *ret)
{
        if (s == NULL || ret == NULL)
                return -EINVAL;
        return s->ops->action_get(s, id, ret);
}

int pc_store_action_lift(struct pc_store *s, int64_t id, const struct pc_actor *who)
{
        if (s == NULL || who == NULL)
                return -EINVAL;
        return s->ops->action_lift(s, id, who);
}

int pc_store_action_set_until(struct pc_store *s, int64_t id, int64_t until,
                              const struct pc_actor *who)
{
        if (s == NULL || who == NULL || until < 0)
                return -EINVAL;
        return s->ops->action_set_until(s, id, until, who);
}

/* "active", "expired" or "lifted". */
const char *pc_store_action_state(const struct pc_store_action *a, int64_t now)
{
        if (a->lifted_at != 0)
                return "lifted";
        if (a->until != 0 && a->until <= now)
                return "expired";
        return "active";
}

int pc_store_token_add(struct pc_store *s, const struct pc_api_token *t, const uint8_t hash[PC_TOKEN_HASH_SIZE],
                       int64_t now, const struct pc_actor *who, int64_t *ret_id)
{
        if (s == NULL || t == NULL || hash == NULL || who == NULL)
                return -EINVAL;
        return s->ops->token_add(s, t, hash, now, who, ret_id);
}

int pc_store_token_find(struct pc_store *s, const uint8_t hash[PC_TOKEN_HASH_SIZE], struct pc_api_token *ret)
{
        if (s == NULL || hash == NULL || ret == NULL)
                return -EINVAL;
        return s->ops->token_find(s, hash, ret);
}

int pc_store_token_list(struct pc_store *s, bool all, pc_api_token_cb cb, void *userdata)
{
        if (s == NULL || cb == NULL)
                return -EINVAL;
        return s->ops->token_list(s, all, cb, userdata);
}

int pc_store_token_revoke(struct pc_store *s, const char *name, int64_t now, const struct pc_actor *who)
{
        if (s == NULL || name == NULL || who == NULL)
                return -EINVAL;
        return s->ops->token_revoke(s, name, now, who);
}

int pc_store_token_used(struct pc_store *s, int64_t id, int64_t now)
{
        if (s == NULL)
                return -EINVAL;
        return s->ops->token_used(s, id, now);
}

int pc_store_changes(struct pc_store *s, int64_t after, size_t limit, pc_change_cb cb, void *userdata)
{
        if (s == NULL || cb == NULL)
                return -EINVAL;
        return s->ops->changes(s, after, limit, cb, userdata);
}

int pc_store_change_last(struct pc_store *s, int64_t *ret_id)
{
        if (s == NULL || ret_id == NULL)
                return -EINVAL;
        return s->ops->change_last(s, ret_id);
}

int pc_store_vps_move(struct pc_store *s, const char *id, const char *host, const char *iface,
                      const struct pc_actor *who, bool *ret_changed)
{
        if (s == NULL || id == NULL || who == NULL)
                return -EINVAL;
        return s->ops->vps_move(s, id, host, iface, who, ret_changed);
}

int pc_store_vps_departed(struct pc_store *s, const char *id, const char *host, const struct pc_actor *who,
                          bool *ret_recorded)
{
        if (ret_recorded != NULL)
                *ret_recorded = false;
        if (s == NULL || id == NULL || host == NULL || who == NULL)
                return -EINVAL;
        return s->ops->vps_departed(s, id, host, who, ret_recorded);
}

int pc_store_vps_departing(struct pc_store *s, const char *host, const char *after, size_t limit,
                           pc_departing_cb cb, void *userdata)
{
        if (s == NULL || host == NULL || host[0] == '\0' || cb == NULL)
                return -EINVAL;
        return s->ops->vps_departing(s, host, after != NULL ? after : "", limit, cb, userdata);
}

int pc_store_vps_arrived(struct pc_store *s, const char *id, const char *host, const struct pc_actor *who)
{
        if (s == NULL || id == NULL || host == NULL || who == NULL)
                return -EINVAL;
        return s->ops->vps_arrived(s, id, host, who);
}

int pc_store_agent_beat(struct pc_store *s, const struct pc_agent_beat *b)
{
        if (s == NULL || b == NULL)
                return -EINVAL;
        return s->ops->agent_beat(s, b);
}

int pc_store_agent_role(struct pc_store *s, const char *host, const char *role)
{
        if (s == NULL || host == NULL || role == NULL)
                return -EINVAL;
        return s->ops->agent_role(s, host, role);
}

int pc_store_agent_list(struct pc_store *s, pc_agent_beat_cb cb, void *userdata)
{
        if (s == NULL || cb == NULL)
                return -EINVAL;
        return s->ops->agent_list(s, cb, userdata);
}

int pc_store_watch_open(struct pc_store *s, const char *host, struct pc_store_watch **ret)
{
        if (s == NULL || ret == NULL)
                return -EINVAL;
        return s->ops->watch_open(s, host, ret);
}

int pc_store_vps_ids(struct pc_store *s, const char *owner, const char *host, const char *after, size_t limit,
                     int (*cb)(const char *id, void *userdata), void *userdata)
{
        if (s == NULL || cb == NULL)
                return -EINVAL;
        return s->ops->vps_ids(s, owner, host, after, limit, cb, userdata);
}

void pc_store_on_commit(struct pc_store *s, void (*cb)(void *userdata), void *userdata)
{
        if (s == NULL)
                return;
        s->on_commit = cb;
        s->on_commit_data = userdata;
}

void pc_store_committed(struct pc_store *s)
{
        if (s->on_commit != NULL)
                s->on_commit(s->on_commit_data);
}

int pc_store_attempt_note(struct pc_store *s, const struct pc_attempt_count *a)
{
        if (s == NULL || a == NULL || a->vps_id == NULL)
                return -EINVAL;
        return s->ops->attempt_note(s, a);
}

int pc_store_attempt_list(struct pc_store *s, const char *vps_id, uint8_t proto, uint16_t lo, uint16_t hi,
                          size_t limit, pc_attempt_count_cb cb, void *userdata)
{
        if (s == NULL || vps_id == NULL || cb == NULL || lo > hi)
                return -EINVAL;
        return s->ops->attempt_list(s, vps_id, proto, lo, hi, limit, cb, userdata);
}

int pc_store_tx_begin(struct pc_store *s)
{
        if (s == NULL)
                return -EINVAL;
        return s->ops->tx_begin(s);
}

int pc_store_tx_end(struct pc_store *s, int r)
{
        if (s == NULL)
                return -EINVAL;
        return s->ops->tx_end(s, r);
}
