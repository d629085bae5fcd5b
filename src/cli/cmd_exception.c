/* portcullis exception grant | revoke | list */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int cmd_exception(struct cli *c, int argc, char **argv);

struct change_opts {
        const char *by, *reason, *until, *ticket;
};

/* Parses --by --reason [--until --ticket]; leaves positionals at optind. */
static int parse_change_opts(int argc, char **argv, bool grant, struct change_opts *o)
{
        static const struct option opts[] = {
                { "by", required_argument, NULL, 'b' },    { "reason", required_argument, NULL, 'r' },
                { "until", required_argument, NULL, 'u' }, { "ticket", required_argument, NULL, 't' },
                { NULL, 0, NULL, 0 },
        };
        /* (getopt_long moves the options before the operands: argv[1] is
         * not the verb by then.) */
        const char *verb = grant ? "grant" : "revoke";
        int opt;

        memset(o, 0, sizeof(*o));
        optind = 0;
        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (opt) {
                case 'b': o->by = optarg; break;
                case 'r': o->reason = optarg; break;
                case 'u': o->until = optarg; break;
                case 't': o->ticket = optarg; break;
                default: return cli_usage_error("exception", "bad option for exception %s", verb);
                }
                if (!grant && (opt == 'u' || opt == 't'))
                        return cli_usage_error("exception", "exception %s takes no --until or --ticket", verb);
        }
        if (optind + 3 != argc)
                return cli_usage_error("exception", "exception %s takes a VPS id and a service", verb);
        if (!cli_actor_valid("exception", o->by))
                return CLI_ERROR;
        return CLI_OK;
}

static int exception_grant(struct cli *c, int argc, char **argv)
{
        struct change_opts opt;
        struct pc_exception_spec spec = { 0 };
        struct pc_grant_result res;
        struct pc_ops_error err;
        struct pc_ops_actor who;
        struct pc_ops o;
        int r = parse_change_opts(argc, argv, true, &opt);

        if (r != CLI_OK)
                return r;
        spec.vps_id = argv[optind + 1];
        spec.service = argv[optind + 2];
        spec.reason = opt.reason;
        if (opt.until != NULL && !cli_until_valid("exception", opt.until, pc_now(), &spec.until))
                return CLI_ERROR;
        if (opt.ticket != NULL) {
                char *end;

                spec.ticket_id = strtoll(opt.ticket, &end, 10);
                if (*end != '\0' || spec.ticket_id <= 0)
                        return cli_usage_error("exception", "--ticket '%s' is not a ticket number", opt.ticket);
        }
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        o = cli_ops(c);
        who = cli_ops_actor(opt.by);
        if (pc_ops_exception_grant(&o, &who, &spec, &res, &err) < 0)
                return cli_ops_error("exception", &err, "Failed to grant %s to %s", spec.service, spec.vps_id);
        if (c->json) {
                json_t *out = json_pack("{s:I, s:s, s:s}", "exception", (json_int_t)res.id, "vps", spec.vps_id,
                                        "service", spec.service);

                r = cli_agent_sync(c, spec.vps_id, out);
                cli_print_json(out);
                return r;
        }
        if (res.rule != NULL)
                printf("exception #%" PRId64 ": %s may use %s (rule %u of policy %s lifted)\n", res.id, spec.vps_id,
                       spec.service, res.rule->index + 1, res.site->policy->name);
        else if (strcmp(spec.service, PC_EXCEPTION_SCANNING) == 0)
                printf("exception #%" PRId64 ": %s may port-scan (neither held back nor detected)\n", res.id,
                       spec.vps_id);
        else
                printf("exception #%" PRId64 ": %s may also send from %s\n", res.id, spec.vps_id,
                       spec.service + strlen(PC_SOURCE_PREFIX));
        return cli_agent_sync(c, spec.vps_id, NULL);
}

static int exception_revoke(struct cli *c, int argc, char **argv)
{
        struct change_opts opt;
        struct pc_ops_error err;
        struct pc_ops_actor who;
        struct pc_ops o;
        const char *vps_id, *service;
        int r = parse_change_opts(argc, argv, false, &opt);

        if (r != CLI_OK)
                return r;
        vps_id = argv[optind + 1];
        service = argv[optind + 2];
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        o = cli_ops(c);
        who = cli_ops_actor(opt.by);
        if (pc_ops_exception_revoke(&o, &who, vps_id, service, opt.reason, &err) < 0)
                return cli_ops_error("exception", &err, "Failed to revoke %s from %s", service, vps_id);
        if (c->json) {
                json_t *out = json_pack("{s:s, s:s}", "revoked", service, "vps", vps_id);

                r = cli_agent_sync(c, vps_id, out);
                cli_print_json(out);
                return r;
        }
        printf("revoked: %s may no longer use %s\n", vps_id, service);
        return cli_agent_sync(c, vps_id, NULL);
}

static int exception_list(struct cli *c, int argc, char **argv)
{
        static const char *const headers[] = { "VPS", "SERVICE", "ID", "TICKET", "BY", "UNTIL", "REASON" };
        struct cli_table *t;
        json_t *list;
        int r;

        if (argc > 3)
                return cli_usage_error("exception", "exception list takes at most one VPS id");
        r = cli_model(c);
        if (r != CLI_OK)
                return r;
        if (argc == 3 && pc_model_find(c->model, argv[2]) == NULL) {
                cli_error("vps %s does not exist", argv[2]);
                return CLI_ERROR;
        }
        list = json_array();
        t = cli_table_new(7, headers);
        for (size_t i = 0; i < pc_model_count(c->model); i++) {
                const struct pc_vps *v = pc_model_at(c->model, i);

                if (argc == 3 && strcmp(v->id, argv[2]) != 0)
                        continue;
                for (size_t k = 0; k < v->n_exceptions; k++) {
                        const struct pc_exception *e = &v->exceptions[k];
                        char id[24], ticket[24] = "-", until[32] = "-";

                        snprintf(id, sizeof(id), "%" PRId64, e->id);
                        if (e->ticket_id != 0)
                                snprintf(ticket, sizeof(ticket), "%" PRId64, e->ticket_id);
                        if (e->until != 0)
                                pc_format_time(e->until, until, sizeof(until));
                        cli_table_add(t, v->id, e->service, id, ticket, e->by, until, e->reason);
                        json_array_append_new(list, json_pack("{s:s, s:s, s:I, s:o, s:s, s:o, s:s}", "vps", v->id,
                                                              "service", e->service, "id", (json_int_t)e->id,
                                                              "ticket", e->ticket_id != 0 ? json_integer(e->ticket_id) : json_null(),
                                                              "by", e->by, "until",
                                                              e->until != 0 ? json_string(until) : json_null(),
                                                              "reason", e->reason));
                }
        }
        if (c->json)
                cli_print_json(json_pack("{s:o}", "exceptions", list));
        else {
                cli_table_print(t);
                json_decref(list);
        }
        cli_table_free(t);
        return CLI_OK;
}

int cmd_exception(struct cli *c, int argc, char **argv)
{
        if (argc < 2)
                return cli_usage_error("exception", "exception needs a subcommand: grant, revoke or list");
        if (strcmp(argv[1], "grant") == 0)
                return exception_grant(c, argc, argv);
        if (strcmp(argv[1], "revoke") == 0)
                return exception_revoke(c, argc, argv);
        if (strcmp(argv[1], "list") == 0)
                return exception_list(c, argc, argv);
        return cli_usage_error("exception", "unknown exception subcommand '%s' (grant, revoke, list)", argv[1]);
}
