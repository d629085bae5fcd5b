/* The CLI's side of the control socket (see src/agent/control.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/unixsock.h"
#include "cli/cli.h"

#define AGENT_TIMEOUT_MS 10000 /* a full reconcile of a large fleet takes seconds */

int cli_agent_request(struct cli *c, const char *request, json_t **ret)
{
        if (cli_config(c) != CLI_OK)
                return -EINVAL;
        return pc_unix_request(c->cfg->agent.control_socket, request, AGENT_TIMEOUT_MS, ret);
}

int cli_agent_sync(struct cli *c, const char *id, json_t *out)
{
        char request[128];
        json_t *reply = NULL;
        int r;

        snprintf(request, sizeof(request), "sync %s", id);
        r = cli_agent_request(c, request, &reply);
        if (r == -ENOENT || r == -ECONNREFUSED) {
                if (out != NULL)
                        json_object_set_new(out, "agent", json_pack("{s:s}", "state", "not running"));
                else
                        fprintf(stderr,
                                "portcullis: note: portcullisd is not running (%s): the change is stored and "
                                "will be enforced when it starts\n",
                                c->cfg->agent.control_socket);
                return CLI_OK;
        }
        if (r < 0) {
                cli_error("The change of %s is stored, but telling portcullisd failed: %s", id, strerror(-r));
                return CLI_ERROR;
        }
        if (!json_is_true(json_object_get(reply, "ok")) && json_is_string(json_object_get(reply, "pending"))) {
                /* Stored; the agent applies it from the database's feed. */
                fprintf(stderr,
                        "portcullis: note: the change of %s is stored; portcullisd could not read it back yet (%s) "
                        "and applies it as soon as it can\n",
                        id, json_string_value(json_object_get(reply, "error")));
                if (out != NULL)
                        json_object_set(out, "agent", reply);
                json_decref(reply);
                return CLI_OK;
        }
        if (!json_is_true(json_object_get(reply, "ok"))) {
                cli_error("The change of %s is stored, but the kernel did not take it: %s", id,
                          json_string_value(json_object_get(reply, "error")));
                json_decref(reply);
                return CLI_ERROR;
        }
        if (out != NULL)
                json_object_set(out, "agent", reply);
        else if (json_is_string(json_object_get(reply, "host")) &&
                 strcmp(json_string_value(json_object_get(reply, "state")), "elsewhere") == 0)
                printf("enforced by host %s's portcullisd (this host's follows the database too)\n",
                       json_string_value(json_object_get(reply, "host")));
        else if (strcmp(json_string_value(json_object_get(reply, "state")) ?: "", "departing") == 0)
                printf("enforced here until its interface is gone (it runs on another host now)\n");
        else
                printf("enforced by portcullisd in %.2f ms (%" JSON_INTEGER_FORMAT " kernel elements changed)\n",
                       json_integer_value(json_object_get(reply, "latency_us")) / 1000.0,
                       json_integer_value(json_object_get(reply, "elements_changed")));
        json_decref(reply);
        return CLI_OK;
}

int cli_change_done(struct cli *c, const char *id, json_t *out, const char *text)
{
        int r;

        if (!c->json) {
                json_decref(out);
                printf("%s\n", text);
                return cli_agent_sync(c, id, NULL);
        }
        r = cli_agent_sync(c, id, out);
        cli_print_json(out); /* takes <out> */
        return r;
}
