/* portcullis fleet status: every hypervisor's agent as the shared
 * database last heard of it. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "ops/ops.h"
#include "ops/ops_json.h"

int cmd_fleet(struct cli *c, int argc, char **argv);

struct fleet {
        struct cli *c;
        int64_t now, last_change, stale_after;
        json_t *agents;
        struct cli_table *table;
        size_t n, unwell;
};

static int agent_cb(const struct pc_agent_beat *b, void *userdata)
{
        struct fleet *f = userdata;
        int64_t age = f->now - b->heartbeat, lag = f->last_change - b->change_seen;
        bool stale = age > f->stale_after;
        const char *state = stale ? "stale" : !b->in_sync ? "out-of-sync" : "ok";
        char beat[32], seen[48], vpses[24], changes[24], started[32];

        if (lag < 0)
                lag = 0;
        f->n++;
        f->unwell += strcmp(state, "ok") != 0;
        json_array_append_new(f->agents,
                              json_pack("{s:s, s:s, s:o, s:o, s:I, s:I, s:I, s:I, s:b, s:s}", "host", b->host,
                                        "state", state, "started", pc_json_time(b->started), "heartbeat",
                                        pc_json_time(b->heartbeat), "heartbeat_age_s", (json_int_t)age,
                                        "change_seen", (json_int_t)b->change_seen, "lag", (json_int_t)lag, "vpses",
                                        (json_int_t)b->vpses, "in_sync", b->in_sync, "version", b->version));
        snprintf(beat, sizeof(beat), "%" PRId64 "s ago", age);
        snprintf(seen, sizeof(seen), "%" PRId64 " (%" PRId64 " behind)", b->change_seen, lag);
        snprintf(vpses, sizeof(vpses), "%" PRIu64, b->vpses);
        snprintf(changes, sizeof(changes), "%" PRIu64, b->changes);
        pc_format_time(b->started, started, sizeof(started));
        cli_table_add(f->table, b->host, state, beat, vpses, seen, changes, started, b->version);
        return 0;
}

int cmd_fleet(struct cli *c, int argc, char **argv)
{
        static const char *const headers[] = { "HOST", "STATE", "HEARTBEAT", "VPSES", "CHANGE SEEN", "APPLIED",
                                               "STARTED", "VERSION" };
        struct fleet f = { .c = c };
        struct pc_ops_error err;
        struct pc_ops_actor who;
        struct pc_ops o;
        int r;

        if (argc != 2 || strcmp(argv[1], "status") != 0)
                return cli_usage_error("fleet", "fleet takes one subcommand: status");
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        f.now = pc_now();
        /* Three periodic passes without a beat: the agent is not working. */
        f.stale_after = 3 * c->cfg->agent.attempts_interval;
        if (pc_store_change_last(c->store, &f.last_change) < 0) {
                cli_error("Failed to read the change feed: %s", pc_store_errmsg(c->store));
                return CLI_ERROR;
        }
        f.agents = json_array();
        f.table = cli_table_new(PC_ARRAY_SIZE(headers), headers);
        o = cli_ops(c);
        who = cli_ops_actor("portcullis");
        r = pc_ops_fleet_agents(&o, &who, agent_cb, &f, &err);
        if (r < 0) {
                json_decref(f.agents);
                cli_table_free(f.table);
                return cli_ops_error("fleet", &err, "Failed to read the fleet");
        }
        if (c->json) {
                cli_table_free(f.table);
                r = f.unwell == 0 ? CLI_OK : CLI_NO;
                cli_print_json(json_pack("{s:o, s:I, s:I}", "agents", f.agents, "last_change",
                                         (json_int_t)f.last_change, "stale_after_s", (json_int_t)f.stale_after));
                return r;
        }
        json_decref(f.agents);
        if (f.n == 0) {
                cli_table_free(f.table);
                printf("no agent has reported: agents report once they run with a host (agent.host or "
                       "portcullisd --host)\n");
                return CLI_NO;
        }
        cli_table_print(f.table);
        cli_table_free(f.table);
        printf("newest change %" PRId64 "; an agent is stale without a heartbeat for %" PRId64 " s\n",
               f.last_change, f.stale_after);
        return f.unwell == 0 ? CLI_OK : CLI_NO;
}
