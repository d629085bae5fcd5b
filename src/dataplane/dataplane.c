/* The data plane front: dispatch to the backend. */
#include "dataplane/dataplane.h"

#include "dataplane/dataplane-internal.h"

int pc_dp_open(const struct pc_config *cfg, struct pc_dataplane **ret)
{
        return pc_dp_nft_ops.open(cfg, ret);
}

struct pc_dataplane *pc_dp_close(struct pc_dataplane *dp)
{
        if (dp != NULL)
                dp->ops->close(dp);
        return NULL;
}

const char *pc_dp_errmsg(const struct pc_dataplane *dp)
{
        return dp->ops->errmsg(dp);
}

int pc_dp_sync_all(struct pc_dataplane *dp, const struct pc_model *m, int64_t now,
                   struct pc_dp_repair *ret)
{
        return dp->ops->sync_all(dp, m, now, ret);
}

int pc_dp_sync_start(struct pc_dataplane *dp, const struct pc_model *m, int64_t now, int notify_fd,
                     pc_dp_prev_fn prev, void *prev_arg, struct pc_dp_repair *ret)
{
        return dp->ops->sync_start(dp, m, now, notify_fd, prev, prev_arg, ret);
}

int pc_dp_sync_finish(struct pc_dataplane *dp, const struct pc_model *m, int64_t now, int notify_fd,
                      struct pc_dp_repair *ret)
{
        return dp->ops->sync_finish(dp, m, now, notify_fd, ret);
}

int pc_dp_vps_change(struct pc_dataplane *dp, const struct pc_vps *before,
                     const struct pc_vps *after, int64_t now, size_t *ret_changes)
{
        return dp->ops->vps_change(dp, before, after, now, ret_changes);
}

int pc_dp_attempts(struct pc_dataplane *dp, pc_dp_attempt_cb cb, void *userdata)
{
        return dp->ops->attempts(dp, cb, userdata);
}

int pc_dp_spoofed(struct pc_dataplane *dp, pc_dp_spoofed_cb cb, void *userdata)
{
        return dp->ops->spoofed(dp, cb, userdata);
}

int pc_dp_verdicts(struct pc_dataplane *dp, pc_dp_verdict_cb cb, void *userdata)
{
        return dp->ops->verdicts(dp, cb, userdata);
}

int pc_dp_held(struct pc_dataplane *dp, size_t *ret)
{
        return dp->ops->held(dp, ret);
}

int pc_dp_scan_release(struct pc_dataplane *dp, const struct pc_vps *vps)
{
        return dp->ops->scan_release(dp, vps);
}

int pc_dp_scan_hold(struct pc_dataplane *dp, const struct pc_vps *vps)
{
        return dp->ops->scan_hold(dp, vps);
}

int pc_dp_destroy(struct pc_dataplane *dp)
{
        return dp->ops->destroy(dp);
}

uint64_t pc_dp_fingerprint(const struct pc_dataplane *dp)
{
        return dp->ops->fingerprint(dp);
}

bool pc_dp_enforces(struct pc_dataplane *dp, uint64_t fp)
{
        return dp->ops->enforces(dp, fp);
}
