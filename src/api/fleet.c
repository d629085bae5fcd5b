/* /v1/fleet: every hypervisor's agent as the shared database last heard
 * of it, judged as `portcullis fleet status` judges it (pc_fleet_judge). */
#include <errno.h>

#include "api/api.h"
#include "base/util.h"
#include "ops/ops_json.h"

static int agent_cb(const struct pc_fleet_agent *a, void *userdata)
{
        return json_array_append_new(userdata, pc_json_fleet_agent(a)) == 0 ? 0 : -ENOMEM;
}

/* One object per agent, not paged: a fleet has as many as it has
 * hypervisors, and only an agent's own heartbeat adds one. */
void api_fleet_status(struct api_request *req, struct api_reply *rep)
{
        struct pc_fleet_view view;
        struct pc_ops_error err;
        json_t *agents = json_array();

        if (pc_ops_fleet_status(req->ops, &req->who, pc_now(), agent_cb, agents, &view, &err) < 0) {
                json_decref(agents);
                api_reply_error(rep, &err);
                return;
        }
        api_reply_json(rep, 200, pc_json_fleet(agents, &view));
}
