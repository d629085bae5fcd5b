/* portcullis filter place | lift: support filters a VPS's traffic in one
 * direction (the response engine does it through the same operation). */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"

int cmd_filter(struct cli *c, int argc, char **argv);

static int filter_place(struct cli *c, int argc, char **argv)
{
        static const struct option opts[] = {
                { "by", required_argument, NULL, 'b' },      { "reason", required_argument, NULL, 'r' },
                { "direction", required_argument, NULL, 'd' }, { "service", required_argument, NULL, 's' },
                { "ports", required_argument, NULL, 'p' },   { "all", no_argument, NULL, 'a' },
                { "until", required_argument, NULL, 'u' },   { NULL, 0, NULL, 0 },
        };
        struct pc_filter f = { .direction = PC_DIR_EGRESS, .scope = PC_SCOPE_ALL };
        struct pc_actor who = { 0 };
        struct pc_ops_error oerr;
        struct pc_ops_actor actor;
        struct pc_ops o;
        const char *service = NULL, *ports = NULL, *until = NULL;
        bool all = false;
        char err[256], text[256];
        int64_t id = 0, now = pc_now();
        int opt, r;

        optind = 0;
        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (opt) {
                case 'b': who.by = optarg; break;
                case 'r': who.reason = optarg; break;
                case 's': service = optarg; break;
                case 'p': ports = optarg; break;
                case 'a': all = true; break;
                case 'u': until = optarg; break;
                case 'd':
                        if (strcmp(optarg, "out") == 0 || strcmp(optarg, "egress") == 0)
                                f.direction = PC_DIR_EGRESS;
                        else if (strcmp(optarg, "in") == 0 || strcmp(optarg, "ingress") == 0)
                                f.direction = PC_DIR_INGRESS;
                        else if (strcmp(optarg, "both") == 0)
                                f.direction = PC_DIR_BOTH;
                        else
                                return cli_usage_error("filter", "--direction is out, in or both, not '%s'", optarg);
                        break;
                default: return cli_usage_error("filter", "bad option for filter place");
                }
        }
        if (optind + 1 != argc)
                return cli_usage_error("filter", "filter place takes exactly one VPS id");
        if ((service != NULL) + (ports != NULL) + all != 1)
                return cli_usage_error("filter", "say what to filter: one of --service NAME, --ports PROTO/PORT[-PORT], --all");
        if (!cli_actor_valid("filter", who.by))
                return CLI_ERROR;
        if (who.reason == NULL || who.reason[0] == '\0')
                return cli_usage_error("filter", "--reason TEXT is required: the owner's email and the audit log say why");
        if (!cli_text_valid("filter", "--reason", who.reason, CLI_REASON_SIZE))
                return CLI_ERROR;
        if (until != NULL && !cli_until_valid("filter", until, now, &f.until))
                return CLI_ERROR;
        r = cli_config(c);
        if (r != CLI_OK)
                return r;
        if (service != NULL) {
                f.scope = PC_SCOPE_SERVICE;
                f.service = pc_config_service(c->cfg, service);
                if (f.service == NULL)
                        return cli_usage_error("filter", "no service '%s' (see `portcullis services`)", service);
        } else if (ports != NULL) {
                f.scope = PC_SCOPE_PORTS;
                if (pc_port_range_parse(ports, &f.ports, err, sizeof(err)) < 0)
                        return cli_usage_error("filter", "--ports: %s", err);
        }
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        o = cli_ops(c);
        actor = cli_ops_actor(who.by);
        if (pc_ops_filter_place(&o, &actor, argv[optind], &f, who.reason, &id, &oerr) < 0)
                return cli_ops_error("filter", &oerr, "Failed to place a filter on %s", argv[optind]);
        snprintf(text, sizeof(text), "placed filter #%" PRId64 " on %s; the owner will be emailed", id,
                 argv[optind]);
        return cli_change_done(c, argv[optind],
                               json_pack("{s:s, s:I}", "vps", argv[optind], "filter", (json_int_t)id), text);
}

static int filter_lift(struct cli *c, int argc, char **argv)
{
        static const struct option opts[] = {
                { "by", required_argument, NULL, 'b' },
                { "reason", required_argument, NULL, 'r' },
                { NULL, 0, NULL, 0 },
        };
        struct pc_actor who = { 0 };
        struct pc_ops_error oerr;
        struct pc_ops_actor actor;
        struct pc_ops o;
        int64_t id;
        char *end, text[256];
        int opt, r;

        optind = 0;
        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (opt) {
                case 'b': who.by = optarg; break;
                case 'r': who.reason = optarg; break;
                default: return cli_usage_error("filter", "bad option for filter lift");
                }
        }
        if (optind + 2 != argc)
                return cli_usage_error("filter", "filter lift takes a VPS id and a filter number");
        id = strtoll(argv[optind + 1], &end, 10);
        if (*end != '\0' || id <= 0)
                return cli_usage_error("filter", "'%s' is not a filter number", argv[optind + 1]);
        if (!cli_actor_valid("filter", who.by))
                return CLI_ERROR;
        if (who.reason == NULL || who.reason[0] == '\0')
                return cli_usage_error("filter", "--reason TEXT is required: the owner's email and the audit log say why");
        if (!cli_text_valid("filter", "--reason", who.reason, CLI_REASON_SIZE))
                return CLI_ERROR;
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        o = cli_ops(c);
        actor = cli_ops_actor(who.by);
        if (pc_ops_filter_lift(&o, &actor, argv[optind], id, who.reason, &oerr) < 0)
                return cli_ops_error("filter", &oerr, "Failed to lift filter #%" PRId64 " of %s", id, argv[optind]);
        snprintf(text, sizeof(text), "lifted filter #%" PRId64 " of %s; the owner will be emailed", id,
                 argv[optind]);
        return cli_change_done(c, argv[optind],
                               json_pack("{s:s, s:I}", "vps", argv[optind], "lifted", (json_int_t)id), text);
}

int cmd_filter(struct cli *c, int argc, char **argv)
{
        if (argc >= 2 && strcmp(argv[1], "place") == 0)
                return filter_place(c, argc - 1, argv + 1);
        if (argc >= 2 && strcmp(argv[1], "lift") == 0)
                return filter_lift(c, argc - 1, argv + 1);
        return cli_usage_error("filter", "expected `filter place ...` or `filter lift ...`");
}
