/* The change feed: how portcullisd learns of changes that writers without
 * its control socket made -- portcullis-apid, which runs unprivileged and
 * must not hold root's socket.  Every change is a row of the audit log,
 * written in the change's own transaction, so the log is the feed: the
 * agent applies the VPSes named by the rows after the last it saw.
 *
 * A writer wakes the agent with an empty datagram on the wake socket
 * (base/unixsock.h); the periodic pass follows the feed too, so a lost
 * wake delays a change by one period at most, never loses it.  A wake
 * carries nothing: the worst a local flood can do is make the agent read
 * an indexed, empty tail of the log. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/agent.h"
#include "base/unixsock.h"

#define FEED_BATCH 1000  /* rows per read; the rest on the next turn */
#define FEED_VPSES 64    /* distinct VPSes applied per turn, in the order changed */

void agent_changes_open(struct agent *a)
{
        int r;

        a->wake_fd = -1;
        r = pc_unix_wake_path(a->cfg->agent.control_socket, a->wake_path, sizeof(a->wake_path));
        if (r == 0)
                r = pc_unix_wake_listen(a->wake_path, &a->wake_fd);
        if (r < 0) {
                agent_log("Failed to listen on the wake socket %s: %s; changes made through the API are "
                          "applied within %lld s",
                          a->wake_path, strerror(-r), (long long)a->cfg->agent.attempts_interval);
                a->wake_path[0] = '\0';
        }
}

void agent_changes_close(struct agent *a)
{
        if (a->wake_fd >= 0) {
                close(a->wake_fd);
                unlink(a->wake_path);
        }
        a->wake_fd = -1;
}

struct feed {
        char ids[FEED_VPSES][PC_NAME_MAX];
        size_t n;
        int64_t last;     /* the last row taken */
};

static int feed_cb(const struct pc_change *c, void *userdata)
{
        struct feed *f = userdata;

        if (c->vps_id[0] != '\0') {
                for (size_t i = 0; i < f->n; i++)
                        if (strcmp(f->ids[i], c->vps_id) == 0)
                                goto seen;
                if (f->n == FEED_VPSES)
                        return -ENOBUFS; /* this row waits for the next turn */
                snprintf(f->ids[f->n++], PC_NAME_MAX, "%s", c->vps_id);
        }
seen:
        f->last = c->id;
        return 0;
}

void agent_changes_follow(struct agent *a)
{
        struct feed f;
        int r;

        /* Until a read finds nothing new. */
        for (;;) {
                memset(&f, 0, sizeof(f));
                f.last = a->change_seen;
                r = pc_store_changes(a->store, a->change_seen, FEED_BATCH, feed_cb, &f);
                if (r < 0 && r != -ENOBUFS) {
                        agent_log("Failed to read the change feed: %s", pc_store_errmsg(a->store));
                        return;
                }
                for (size_t i = 0; i < f.n; i++) {
                        json_t *reply = json_object();

                        /* A failure is logged and left to the reconcile:
                         * the kernel keeps its previous state meanwhile. */
                        agent_sync_vps_from(a, f.ids[i], true, reply);
                        json_decref(reply);
                }
                if (f.last == a->change_seen)
                        return;
                a->change_seen = f.last;
        }
}

void agent_changes_wake(struct agent *a)
{
        char buf[16];

        while (recv(a->wake_fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
                ;
        agent_changes_follow(a);
}
