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
        json_t *agents;
        struct cli_table *table;
        size_t n, unwell, unconfirmed;
};

/* One agent, judged by the operations layer (pc_fleet_judge): a row of
 * the table and an object of --json. */
static int agent_cb(const struct pc_fleet_agent *a, void *userdata)
{
        const struct pc_agent_beat *b = a->beat;
        struct fleet *f = userdata;
        char beat[32], seen[48], vpses[24], changes[24], started[32];

        f->n++;
        f->unwell += a->state != PC_AGENT_OK;
        f->unconfirmed += b->unconfirmed != 0;
        json_array_append_new(f->agents, pc_json_fleet_agent(a));
        snprintf(beat, sizeof(beat), "%" PRId64 "s ago", a->age);
        snprintf(seen, sizeof(seen), "%" PRId64 " (%" PRId64 " behind)", b->change_seen, a->lag);
        snprintf(vpses, sizeof(vpses), "%" PRIu64, b->vpses);
        snprintf(changes, sizeof(changes), "%" PRIu64, b->changes);
        pc_format_time(b->started, started, sizeof(started));
        cli_table_add(f->table, b->host, pc_agent_state_name(a->state), beat, vpses, seen, changes, started,
                      b->version);
        return 0;
}

int cmd_fleet(struct cli *c, int argc, char **argv)
{
        static const char *const headers[] = { "HOST", "STATE", "HEARTBEAT", "VPSES", "CHANGE SEEN", "APPLIED",
                                               "STARTED", "VERSION" };
        struct fleet f = { 0 };
        struct pc_fleet_view view;
        struct pc_ops_error err;
        struct pc_ops_actor who;
        struct pc_ops o;
        int r;

        if (argc != 2 || strcmp(argv[1], "status") != 0)
                return cli_usage_error("fleet", "fleet takes one subcommand: status");
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        f.agents = json_array();
        f.table = cli_table_new(PC_ARRAY_SIZE(headers), headers);
        o = cli_ops(c);
        who = cli_ops_actor("portcullis");
        r = pc_ops_fleet_status(&o, &who, pc_now(), agent_cb, &f, &view, &err);
        if (r < 0) {
                json_decref(f.agents);
                cli_table_free(f.table);
                return cli_ops_error("fleet", &err, "Failed to read the fleet");
        }
        if (c->json) {
                cli_table_free(f.table);
                r = f.unwell == 0 ? CLI_OK : CLI_NO;
                cli_print_json(pc_json_fleet(f.agents, &view));
                return r;
        }
        if (f.n == 0) {
                json_decref(f.agents);
                cli_table_free(f.table);
                printf("no agent has reported: agents report once they run with a host (agent.host or "
                       "portcullisd --host)\n");
                return CLI_NO;
        }
        cli_table_print(f.table);
        cli_table_free(f.table);
        /* Moves away from a host it has not confirmed: a migration's VM
         * still there, or a claim (vps list says which). */
        for (size_t i = 0; f.unconfirmed > 0 && i < json_array_size(f.agents); i++) {
                json_t *a = json_array_get(f.agents, i);
                json_int_t n = json_integer_value(json_object_get(a, "unconfirmed_departures"));

                if (n > 0)
                        printf("%s has not confirmed that %" JSON_INTEGER_FORMAT " VPS%s moved away from it left "
                               "it (vps list: \"not confirmed by %s\")\n",
                               json_string_value(json_object_get(a, "host")), n, n == 1 ? "" : "es",
                               json_string_value(json_object_get(a, "host")));
        }
        json_decref(f.agents);
        printf("newest change %" PRId64 "; an agent is stale without a heartbeat for %" PRId64 " s\n",
               view.last_change, view.stale_after);
        return f.unwell == 0 ? CLI_OK : CLI_NO;
}
