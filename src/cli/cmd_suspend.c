/* portcullis suspend | unsuspend | terminate: support acts on a VPS by
 * hand. */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int cmd_suspend(struct cli *c, int argc, char **argv);
int cmd_unsuspend(struct cli *c, int argc, char **argv);
int cmd_terminate(struct cli *c, int argc, char **argv);

enum change { SUSPEND, UNSUSPEND, TERMINATE };

/* suspend, unsuspend and terminate: ID --by WHO --reason TEXT, with
 * --incident N (suspend, terminate) or --admin-override (unsuspend). */
static int suspension_change(struct cli *c, int argc, char **argv, enum change what)
{
        static const struct option opts[] = {
                { "by", required_argument, NULL, 'b' },
                { "reason", required_argument, NULL, 'r' },
                { "incident", required_argument, NULL, 'i' },
                { "admin-override", no_argument, NULL, 'A' },
                { NULL, 0, NULL, 0 },
        };
        static const char *const names[] = { "suspend", "unsuspend", "terminate" };
        const char *cmd = names[what], *url;
        struct pc_actor who = { 0 };
        struct pc_ops_error err;
        struct pc_ops_actor actor;
        struct pc_ops o;
        int64_t incident = 0, id = 0;
        char text[256];
        json_t *out;
        int opt, r;

        optind = 0;
        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                char *end;

                switch (opt) {
                case 'b': who.by = optarg; break;
                case 'r': who.reason = optarg; break;
                case 'i':
                        incident = strtoll(optarg, &end, 10);
                        if (what == UNSUSPEND || *end != '\0' || incident <= 0)
                                return cli_usage_error(cmd, "--incident takes an incident number (suspend and "
                                                            "terminate only)");
                        break;
                case 'A':
                        /* There is no role model: an admin lifting a termination says so,
                         * and the audit log records who (vps.unterminate). */
                        if (what != UNSUSPEND)
                                return cli_usage_error(cmd, "--admin-override is for unsuspend only");
                        who.admin_override = true;
                        break;
                default: return cli_usage_error(cmd, "bad option for %s", cmd);
                }
        }
        if (optind + 1 != argc)
                return cli_usage_error(cmd, "%s takes exactly one VPS id", cmd);
        if (!cli_actor_valid(cmd, who.by))
                return CLI_ERROR;
        if (who.reason == NULL || who.reason[0] == '\0')
                return cli_usage_error(cmd, "--reason TEXT is required: the owner's email and the audit log say why");
        if (!cli_text_valid(cmd, "--reason", who.reason, CLI_REASON_SIZE))
                return CLI_ERROR;
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        url = c->cfg->notify.webhook_url; /* the config is loaded with the store */
        o = cli_ops(c);
        actor = cli_ops_actor(who.by);
        r = what == SUSPEND ? pc_ops_suspend(&o, &actor, argv[optind], incident, who.reason, &id, &err)
            : what == UNSUSPEND
                    ? pc_ops_unsuspend(&o, &actor, argv[optind], who.reason, who.admin_override, &err)
                    : pc_ops_terminate(&o, &actor, argv[optind], incident, "terminated by hand", who.reason, &id, &err);
        if (r < 0)
                return cli_ops_error(cmd, &err, "Failed to %s %s", cmd, argv[optind]);
        switch (what) {
        case SUSPEND:
                snprintf(text, sizeof(text), "suspended %s (suspension #%" PRId64 "); the owner will be emailed",
                         argv[optind], id);
                out = json_pack("{s:s, s:I}", "suspended", argv[optind], "suspension", (json_int_t)id);
                break;
        case UNSUSPEND:
                snprintf(text, sizeof(text), "unsuspended %s; the owner will be emailed", argv[optind]);
                out = json_pack("{s:s}", "unsuspended", argv[optind]);
                break;
        default:
                snprintf(text, sizeof(text), "terminated %s (suspension #%" PRId64 "); the owner will be emailed%s",
                         argv[optind], id, url[0] != '\0' ? ", the webhook told" : "");
                out = json_pack("{s:s, s:I}", "terminated", argv[optind], "suspension", (json_int_t)id);
                break;
        }
        return cli_change_done(c, argv[optind], out, text);
}

int cmd_suspend(struct cli *c, int argc, char **argv)
{
        return suspension_change(c, argc, argv, SUSPEND);
}

int cmd_unsuspend(struct cli *c, int argc, char **argv)
{
        return suspension_change(c, argc, argv, UNSUSPEND);
}

/* A termination by hand, as the response engine places one (store:
 * pc_store_terminate). */
int cmd_terminate(struct cli *c, int argc, char **argv)
{
        return suspension_change(c, argc, argv, TERMINATE);
}
