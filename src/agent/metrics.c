/* The agent's figures for Prometheus: what only root can see (the kernel's
 * blocked attempts and verdict counters, how fast changes reach the
 * kernel), written as a text
 * file in the exposition format beside the control socket (agent.prom,
 * mode 0644, replaced atomically every periodic pass).  portcullis-apid,
 * unprivileged, appends it to its /metrics; node_exporter's textfile
 * collector can read it as well. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "base/unixsock.h"
#include "policy/catalog.h"

/* Upper bounds of the change latency histogram, in microseconds. */
static const long buckets_us[AGENT_LATENCY_BUCKETS] = { 1000, 5000, 10000, 25000, 50000, 100000, 250000, 1000000 };

void agent_metrics_change(struct agent *a, long us)
{
        for (size_t i = 0; i < AGENT_LATENCY_BUCKETS; i++)
                if (us <= buckets_us[i])
                        a->metrics.latency[i]++;
        a->metrics.latency_count++;
        a->metrics.latency_sum_us += (uint64_t)(us > 0 ? us : 0);
}

void agent_metrics_blocked(struct agent *a, unsigned dir, uint8_t proto, uint16_t port, uint64_t packets)
{
        struct agent_blocked *b = NULL;

        for (size_t i = 0; i < a->metrics.n_blocked; i++)
                if (a->metrics.blocked[i].dir == dir && a->metrics.blocked[i].proto == proto &&
                    a->metrics.blocked[i].port == port) {
                        b = &a->metrics.blocked[i];
                        break;
                }
        if (b == NULL) {
                if (a->metrics.n_blocked == AGENT_BLOCKED_KEYS) {
                        a->metrics.blocked_other += packets;
                        return;
                }
                b = &a->metrics.blocked[a->metrics.n_blocked++];
                *b = (struct agent_blocked){ .dir = dir, .proto = proto, .port = port };
        }
        b->packets += packets;
}

/* The kernel's verdict counters, as read for one agent.prom (far more
 * room than the two tables' reasons need). */
struct verdicts {
        struct pc_dp_verdict v[64];
        size_t n;
};

static int verdict_add(const struct pc_dp_verdict *v, void *userdata)
{
        struct verdicts *all = userdata;

        if (all->n < PC_ARRAY_SIZE(all->v))
                all->v[all->n++] = *v;
        return 0;
}

/* The packets and bytes each reason's counter holds, by table; nothing
 * (and a line in the log, once) if they cannot be read.  Read here, once a
 * periodic pass: the kernel's counters are cumulative, as Prometheus's. */
static void write_verdicts(struct agent *a, FILE *f)
{
        struct verdicts all = { .n = 0 };
        int r = a->dp != NULL ? pc_dp_verdicts(a->dp, verdict_add, &all) : -ENODEV;

        if (r < 0) {
                if (!a->metrics.verdicts_failed)
                        agent_log("Failed to read the verdict counters for agent.prom: %s",
                                  a->dp != NULL ? pc_dp_errmsg(a->dp) : "no data plane");
                a->metrics.verdicts_failed = true;
                return;
        }
        a->metrics.verdicts_failed = false;
        fprintf(f, "# HELP portcullis_verdict_packets_total Packets the ruleset dropped, rejected or redirected, "
                   "by reason and table family (docs/API.md).\n"
                   "# TYPE portcullis_verdict_packets_total counter\n");
        for (size_t i = 0; i < all.n; i++)
                fprintf(f, "portcullis_verdict_packets_total{reason=\"%s\",family=\"%s\"} %llu\n", all.v[i].reason,
                        all.v[i].family, (unsigned long long)all.v[i].packets);
        fprintf(f, "# HELP portcullis_verdict_bytes_total Bytes of those packets.\n"
                   "# TYPE portcullis_verdict_bytes_total counter\n");
        for (size_t i = 0; i < all.n; i++)
                fprintf(f, "portcullis_verdict_bytes_total{reason=\"%s\",family=\"%s\"} %llu\n", all.v[i].reason,
                        all.v[i].family, (unsigned long long)all.v[i].bytes);
}

void agent_metrics_write(struct agent *a)
{
        char path[108], tmp[128];
        FILE *f;
        int fd;

        if (pc_unix_sibling_path(a->cfg->agent.control_socket, "agent.prom", path, sizeof(path)) < 0)
                return;
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
                if (fd >= 0)
                        close(fd);
                return;
        }
        fchmod(fd, 0644);
        fprintf(f,
                "# HELP portcullis_agent_in_sync 1 if the kernel holds what the database says.\n"
                "# TYPE portcullis_agent_in_sync gauge\nportcullis_agent_in_sync %d\n"
                "# HELP portcullis_agent_vps VPSes the agent enforces.\n"
                "# TYPE portcullis_agent_vps gauge\nportcullis_agent_vps %zu\n"
                "# HELP portcullis_agent_elements Per-VPS elements in the kernel's sets.\n"
                "# TYPE portcullis_agent_elements gauge\nportcullis_agent_elements %zu\n"
                "# HELP portcullis_agent_change_seconds From a change read from the database to the kernel's commit.\n"
                "# TYPE portcullis_agent_change_seconds histogram\n",
                a->in_sync ? 1 : 0, pc_model_count(a->model), a->elements);
        for (size_t i = 0; i < AGENT_LATENCY_BUCKETS; i++)
                fprintf(f, "portcullis_agent_change_seconds_bucket{le=\"%g\"} %llu\n", buckets_us[i] / 1e6,
                        (unsigned long long)a->metrics.latency[i]);
        fprintf(f,
                "portcullis_agent_change_seconds_bucket{le=\"+Inf\"} %llu\n"
                "portcullis_agent_change_seconds_sum %.6f\nportcullis_agent_change_seconds_count %llu\n"
                "# HELP portcullis_blocked_attempts_total Packets the policy blocked that the kernel counted "
                "(blocked-attempt elements), by direction and port.\n"
                "# TYPE portcullis_blocked_attempts_total counter\n",
                (unsigned long long)a->metrics.latency_count, a->metrics.latency_sum_us / 1e6,
                (unsigned long long)a->metrics.latency_count);
        for (size_t i = 0; i < a->metrics.n_blocked; i++) {
                const struct agent_blocked *b = &a->metrics.blocked[i];

                fprintf(f, "portcullis_blocked_attempts_total{direction=\"%s\",proto=\"%s\",port=\"%u\"} %llu\n",
                        pc_dir_name(b->dir), pc_proto_name(b->proto), b->port, (unsigned long long)b->packets);
        }
        if (a->metrics.blocked_other > 0)
                fprintf(f, "portcullis_blocked_attempts_total{direction=\"other\",proto=\"other\",port=\"other\"} %llu\n",
                        (unsigned long long)a->metrics.blocked_other);
        write_verdicts(a, f);
        if (fclose(f) != 0 || rename(tmp, path) < 0)
                unlink(tmp);
}

void agent_metrics_remove(struct agent *a)
{
        char path[108];

        if (pc_unix_sibling_path(a->cfg->agent.control_socket, "agent.prom", path, sizeof(path)) == 0)
                unlink(path);
}
