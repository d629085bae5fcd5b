/* portcullis status: the agent's health. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int cmd_status(struct cli *c, int argc, char **argv);

int cmd_status(struct cli *c, int argc, char **argv)
{
        json_t *reply = NULL, *last, *snap;
        bool from_snapshot;
        json_t *dbt;
        int r;

        if (argc != 1)
                return cli_usage_error("status", "status takes no arguments");
        r = cli_agent_request(c, "status", &reply);
        if (r < 0) {
                if (c->json)
                        cli_print_json(json_pack("{s:b, s:s, s:s}", "ok", 0, "agent", "not running", "error",
                                                 strerror(-r)));
                else if (c->cfg != NULL)
                        cli_error("portcullisd is not answering on %s: %s", c->cfg->agent.control_socket,
                                  strerror(-r));
                return CLI_NO;
        }
        /* Enforcing the snapshot of the host's policy: the database is away. */
        snap = json_object_get(reply, "snapshot");
        from_snapshot = json_is_string(json_object_get(reply, "policy")) &&
                        strcmp(json_string_value(json_object_get(reply, "policy")), "snapshot") == 0;
        if (c->json) {
                bool ok = json_is_true(json_object_get(reply, "in_sync")) && !from_snapshot;

                cli_print_json(reply);
                return ok ? CLI_OK : CLI_NO;
        }
        printf("portcullisd   running since %s\n", json_string_value(json_object_get(reply, "started")));
        if (from_snapshot) {
                char safe[1024];

                printf("policy        the SNAPSHOT of %s (%" JSON_INTEGER_FORMAT " s old): the database cannot be read\n",
                       json_string_value(json_object_get(snap, "policy_of")),
                       json_integer_value(json_object_get(snap, "age_s")));
                printf("database      %s\n",
                       cli_text(json_string_value(json_object_get(snap, "database")) ?: "", safe, sizeof(safe)));
                printf("ruleset       %s, %s\n", json_string_value(json_object_get(reply, "table")),
                       json_is_true(json_object_get(reply, "in_sync")) ? "enforcing the snapshot"
                                                                         : "NOT what the snapshot says (kept as it is)");
        } else
                printf("ruleset       %s, %s\n", json_string_value(json_object_get(reply, "table")),
                       json_is_true(json_object_get(reply, "in_sync")) ? "in sync with the database" : "OUT OF SYNC");
        printf("VPSes         %" JSON_INTEGER_FORMAT " (%" JSON_INTEGER_FORMAT " kernel elements at the last full check)\n",
               json_integer_value(json_object_get(reply, "vps")), json_integer_value(json_object_get(reply, "elements")));
        printf("changes       %" JSON_INTEGER_FORMAT " since start\n", json_integer_value(json_object_get(reply, "changes")));
        dbt = json_object_get(reply, "database_thread");
        if (dbt != NULL && !from_snapshot)
                printf("database      %s; %" JSON_INTEGER_FORMAT " statement(s) waiting\n",
                       json_is_true(json_object_get(dbt, "answers"))
                               ? "answers"
                               : "DOES NOT ANSWER: findings go to the journal, the kernel keeps enforcing",
                       json_integer_value(json_object_get(dbt, "queued")));
        last = json_object_get(reply, "last_change");
        if (last != NULL)
                printf("last change   %s at %s, enforced in %.2f ms\n", json_string_value(json_object_get(last, "what")),
                       json_string_value(json_object_get(last, "at")),
                       json_integer_value(json_object_get(last, "latency_us")) / 1000.0);
        if (json_is_string(json_object_get(reply, "last_error"))) {
                /* it can quote the database (an interface name, say) */
                char safe[2048];

                printf("last error    %s\n",
                       cli_text(json_string_value(json_object_get(reply, "last_error")), safe, sizeof(safe)));
        }
        r = json_is_true(json_object_get(reply, "in_sync")) && !from_snapshot ? CLI_OK : CLI_NO;
        json_decref(reply);
        return r;
}
