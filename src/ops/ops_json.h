/* The JSON form of each object the operations read or write
 * (docs/JSON.md): one form, shared by `portcullis --json` and the HTTP API,
 * so that a script can move from one to the other unchanged.  Each returns
 * a new reference, or NULL out of memory. */
#pragma once

#include <jansson.h>

#include "policy/model.h"
#include "store/store.h"

/* Unix time <t> as "2026-12-31T18:00:00Z", or null for 0 (none). */
json_t *pc_json_time(int64_t t);

/* Text <s> as a string, or null if empty. */
json_t *pc_json_text(const char *s);

/* A VPS with what is in force on it: its site's rules (and which an
 * exception lifts), exceptions, filters, suspension and state. */
json_t *pc_json_vps(const struct pc_vps *v);
/* "active", "filtered", "suspended" or "terminated". */
const char *pc_vps_state_name(const struct pc_vps *v);
/* "running" or "stopped": what its VM manager last said. */
const char *pc_vps_run_state_name(const struct pc_vps *v);

/* Every service, with what each site does with it. */
json_t *pc_json_services(const struct pc_config *cfg);

json_t *pc_json_ticket(const struct pc_ticket *t);
json_t *pc_json_ticket_event(const struct pc_ticket_event *e);
json_t *pc_json_incident(const struct pc_incident *i);
/* A blocked-attempt count: proto, port, direction, packets, last_seen. */
json_t *pc_json_attempt(const struct pc_attempt_count *a);
/* <a> as it stands at <now> (active, expired or lifted). */
json_t *pc_json_action(const struct pc_store_action *a, int64_t now);
/* When the notifier will next try <n>: only a pending one has a time (0: none). */
int64_t pc_notification_next_attempt(const struct pc_notification *n);
/* Without the payload. */
json_t *pc_json_notification(const struct pc_notification *n);
/* An audit entry (one change of the feed), its before and after parsed. */
json_t *pc_json_audit(const struct pc_audit_entry *e);
/* Never the token itself: the store does not have it. */
json_t *pc_json_token(const struct pc_api_token *t);

struct pc_fleet_agent;
struct pc_fleet_view;
/* An agent as `portcullis fleet status` and GET /v1/fleet show it: host,
 * state, started, heartbeat, heartbeat_age_s, change_seen, lag, vpses,
 * in_sync, version. */
json_t *pc_json_fleet_agent(const struct pc_fleet_agent *a);
/* {"agents": <agents> (taken), "last_change", "stale_after_s"} of <view>. */
json_t *pc_json_fleet(json_t *agents, const struct pc_fleet_view *view);
