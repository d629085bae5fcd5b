/* The API's routes: one table, matched in order.  docs/openapi.yaml
 * describes each; tests/api checks the two agree (`portcullis-apid
 * --routes` prints this table). */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "base/util.h"

const struct api_route api_routes[] = {
        { "GET", "/v1/whoami", api_whoami, -1 },
        { "GET", "/metrics", api_metrics, PC_OP_METRICS_READ },
        { "GET", "/v1/services", api_services, -1 },
        { "GET", "/v1/vps", api_vps_list, PC_OP_VPS_READ },
        { "POST", "/v1/vps", api_vps_register, PC_OP_VPS_REGISTER },
        { "GET", "/v1/vps/{id}", api_vps_get, PC_OP_VPS_READ },
        { "DELETE", "/v1/vps/{id}", api_vps_remove, PC_OP_VPS_REMOVE },
        { "PATCH", "/v1/vps/{id}", api_vps_update, PC_OP_VPS_UPDATE_ADDRESSES },
        { "POST", "/v1/vps/{id}/start", api_vps_start, PC_OP_VPS_SET_STATE },
        { "POST", "/v1/vps/{id}/stop", api_vps_stop, PC_OP_VPS_SET_STATE },
        { "POST", "/v1/vps/{id}/move", api_vps_move, PC_OP_VPS_MOVE },
        { "POST", "/v1/vps/{id}/depart", api_vps_depart, PC_OP_VPS_DEPART },
        { "POST", "/v1/vps/{id}/exceptions", api_exception_grant, PC_OP_EXCEPTION_GRANT },
        { "DELETE", "/v1/vps/{id}/exceptions/{service+}", api_exception_revoke, PC_OP_EXCEPTION_REVOKE },
        { "POST", "/v1/vps/{id}/filters", api_filter_place, PC_OP_ACTION_PLACE },
        { "POST", "/v1/vps/{id}/suspend", api_vps_suspend, PC_OP_ACTION_PLACE },
        { "POST", "/v1/vps/{id}/unsuspend", api_vps_unsuspend, PC_OP_ACTION_LIFT },
        { "POST", "/v1/vps/{id}/terminate", api_vps_terminate, PC_OP_TERMINATE },
        { "GET", "/v1/tickets", api_ticket_list, PC_OP_TICKET_READ },
        { "POST", "/v1/tickets", api_ticket_open, PC_OP_TICKET_OPEN },
        { "GET", "/v1/tickets/{id}", api_ticket_get, PC_OP_TICKET_READ },
        { "POST", "/v1/tickets/{id}/investigate", api_ticket_investigate, PC_OP_TICKET_INVESTIGATE },
        { "POST", "/v1/tickets/{id}/approve", api_ticket_approve, PC_OP_TICKET_APPROVE },
        { "POST", "/v1/tickets/{id}/deny", api_ticket_deny, PC_OP_TICKET_DENY },
        { "POST", "/v1/tickets/{id}/revoke", api_ticket_revoke, PC_OP_TICKET_REVOKE },
        { "GET", "/v1/incidents", api_incident_list, PC_OP_INCIDENT_READ },
        { "GET", "/v1/incidents/{id}", api_incident_get, PC_OP_INCIDENT_READ },
        { "POST", "/v1/incidents/{id}/close", api_incident_close, PC_OP_INCIDENT_CLOSE },
        { "GET", "/v1/actions", api_action_list, PC_OP_INCIDENT_READ },
        { "POST", "/v1/actions/{id}/lift", api_action_lift, PC_OP_ACTION_LIFT },
        { "GET", "/v1/notifications", api_notification_list, PC_OP_INCIDENT_READ },
        { "POST", "/v1/notifications/{id}/retry", api_notification_retry, PC_OP_NOTIFICATION_RETRY },
        { "GET", "/v1/audit", api_audit_list, PC_OP_AUDIT_READ },
        { "GET", "/v1/fleet", api_fleet_status, PC_OP_FLEET_READ },
        { "GET", "/v1/tokens", api_token_list, PC_OP_TOKEN_MANAGE },
        { "POST", "/v1/tokens", api_token_create, PC_OP_TOKEN_MANAGE },
        { "DELETE", "/v1/tokens/{name}", api_token_revoke, PC_OP_TOKEN_MANAGE },
};

const size_t api_n_routes = PC_ARRAY_SIZE(api_routes);

const struct api_route *api_route_find(const char *method, const char *path, char *buf, size_t size,
                                       const char **params, bool *ret_path_known)
{
        *ret_path_known = false;
        if (strlen(path) >= size)
                return NULL;
        for (size_t i = 0; i < api_n_routes; i++) {
                memcpy(buf, path, strlen(path) + 1);
                if (!api_path_match(api_routes[i].pattern, buf, params))
                        continue;
                if (strcmp(api_routes[i].method, method) == 0)
                        return &api_routes[i];
                *ret_path_known = true;
        }
        return NULL;
}
