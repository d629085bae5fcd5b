/* portcullis exception grant | revoke | list */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "policy/grant.h"

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
        int opt;

        memset(o, 0, sizeof(*o));
        optind = 0;
        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (opt) {
                case 'b': o->by = optarg; break;
                case 'r': o->reason = optarg; break;
                case 'u': o->until = optarg; break;
                case 't': o->ticket = optarg; break;
                default: return cli_usage_error("exception", "bad option for exception %s", argv[1]);
                }
                if (!grant && (opt == 'u' || opt == 't'))
                        return cli_usage_error("exception", "exception %s takes no --until or --ticket", argv[1]);
        }
        if (optind + 3 != argc)
                return cli_usage_error("exception", "exception %s takes a VPS id and a service", argv[1]);
        if (!cli_actor_valid("exception", o->by))
                return CLI_ERROR;
        if (o->reason == NULL || o->reason[0] == '\0')
                return cli_usage_error("exception", "--reason TEXT is required: the audit log and the customer's email say why");
        if (!cli_text_valid("exception", "--reason", o->reason, CLI_REASON_SIZE))
                return CLI_ERROR;
        return CLI_OK;
}

/* Looks up the VPS and the site rule an exception for <service> lifts. */
static int resolve(struct cli *c, const char *id, const char *service, const struct pc_vps **ret_vps,
                   const struct pc_rule **ret_rule)
{
        const struct pc_vps *vps;
        const struct pc_rule *rule;
        const struct pc_policy *pol;
        int r = cli_model(c);

        if (r != CLI_OK)
                return r;
        if (strncmp(service, PC_SOURCE_PREFIX, strlen(PC_SOURCE_PREFIX)) == 0) {
                if (!pc_exception_source_prefix(service, NULL)) {
                        cli_error("'%s' is not source-prefix:CIDR with a valid prefix (e.g. source-prefix:198.51.100.64/29)",
                                  service);
                        return CLI_ERROR;
                }
        } else if (strcmp(service, PC_EXCEPTION_SCANNING) != 0 && pc_config_service(c->cfg, service) == NULL) {
                cli_error("unknown service '%s' (see portcullis services)", service);
                return CLI_ERROR;
        }
        vps = pc_model_find(c->model, id);
        if (vps == NULL) {
                cli_error("vps %s does not exist", id);
                return CLI_ERROR;
        }
        pol = vps->site->policy;
        rule = pc_policy_rule_for(pol, service);
        *ret_vps = vps;
        *ret_rule = rule;
        return CLI_OK;
}

static int exception_grant(struct cli *c, int argc, char **argv)
{
        struct change_opts o;
        const struct pc_vps *vps;
        const struct pc_rule *rule;
        struct pc_exception e = { 0 };
        struct pc_prefix extra;
        char why[512];
        int64_t now = pc_now(), id;
        const char *vps_id, *service;
        int r = parse_change_opts(argc, argv, true, &o);

        if (r != CLI_OK)
                return r;
        vps_id = argv[optind + 1];
        service = argv[optind + 2];
        if (o.until != NULL && !cli_until_valid("exception", o.until, now, &e.until))
                return CLI_ERROR;
        if (o.ticket != NULL) {
                char *end;

                e.ticket_id = strtoll(o.ticket, &end, 10);
                if (*end != '\0' || e.ticket_id <= 0)
                        return cli_usage_error("exception", "--ticket '%s' is not a ticket number", o.ticket);
        }
        r = resolve(c, vps_id, service, &vps, &rule);
        if (r != CLI_OK)
                return r;
        if (pc_exception_source_prefix(service, &extra)) {
                char pe[64];

                pc_format_prefix(&extra, pe, sizeof(pe));
                if (pc_prefix_unassignable(&extra) != NULL) {
                        cli_error("Failed to grant %s to %s: %s cannot be a VPS's: it is %s", service, vps_id, pe,
                                  pc_prefix_unassignable(&extra));
                        return CLI_ERROR;
                }
                /* Another VPS's addresses can never become this one's. */
                for (size_t i = 0; i < pc_model_count(c->model); i++) {
                        const struct pc_vps *other = pc_model_at(c->model, i);

                        for (size_t k = 0; other != vps && k < other->n_addrs; k++)
                                if (pc_prefix_overlaps(&extra, &other->addrs[k])) {
                                        char pb[64];

                                        pc_format_prefix(&other->addrs[k], pb, sizeof(pb));
                                        cli_error("Failed to grant %s to %s: it overlaps %s of %s", service, vps_id,
                                                  pb, other->id);
                                        return CLI_ERROR;
                                }
                }
                if (!vps->site->policy->anti_spoofing) {
                        cli_error("Failed to grant %s to %s: site %s (policy %s) has no anti-spoofing policy to "
                                  "except from (its VPSes may send from their registered addresses only, BCP 38); "
                                  "register the prefix as an address of the VPS instead", service, vps_id,
                                  vps->site->name, vps->site->policy->name);
                        return CLI_ERROR;
                }
        } else if (pc_grant_check(c->cfg, vps->site, service, &rule, why, sizeof(why)) < 0) {
                cli_error("Failed to grant %s to %s: %s", service, vps_id, why);
                return CLI_ERROR;
        }
        snprintf(e.service, sizeof(e.service), "%s", service);
        snprintf(e.by, sizeof(e.by), "%s", o.by);
        snprintf(e.reason, sizeof(e.reason), "%s", o.reason);
        e.created = now;
        if (pc_store_exception_grant(c->store, vps_id, &e, &(struct pc_actor){ .by = o.by, .reason = o.reason }, &id) < 0) {
                cli_error("Failed to grant %s to %s: %s", service, vps_id, pc_store_errmsg(c->store));
                return CLI_ERROR;
        }
        if (c->json) {
                json_t *out = json_pack("{s:I, s:s, s:s}", "exception", (json_int_t)id, "vps", vps_id, "service",
                                        service);

                r = cli_agent_sync(c, vps_id, out);
                cli_print_json(out);
                return r;
        }
        if (rule != NULL)
                printf("exception #%" PRId64 ": %s may use %s (rule %u of policy %s lifted)\n", id, vps_id, service,
                       rule->index + 1, vps->site->policy->name);
        else if (strcmp(service, PC_EXCEPTION_SCANNING) == 0)
                printf("exception #%" PRId64 ": %s may port-scan (neither held back nor detected)\n", id, vps_id);
        else
                printf("exception #%" PRId64 ": %s may also send from %s\n", id, vps_id,
                       service + strlen(PC_SOURCE_PREFIX));
        return cli_agent_sync(c, vps_id, NULL);
}

static int exception_revoke(struct cli *c, int argc, char **argv)
{
        struct change_opts o;
        const struct pc_vps *vps;
        const struct pc_rule *rule;
        int r = parse_change_opts(argc, argv, false, &o);

        if (r != CLI_OK)
                return r;
        r = resolve(c, argv[optind + 1], argv[optind + 2], &vps, &rule);
        if (r != CLI_OK)
                return r;
        if (pc_store_exception_revoke(c->store, vps->id, argv[optind + 2],
                                      &(struct pc_actor){ .by = o.by, .reason = o.reason }) < 0) {
                cli_error("Failed to revoke %s from %s: %s", argv[optind + 2], vps->id,
                          pc_store_errmsg(c->store));
                return CLI_ERROR;
        }
        if (c->json) {
                json_t *out = json_pack("{s:s, s:s}", "revoked", argv[optind + 2], "vps", vps->id);

                r = cli_agent_sync(c, vps->id, out);
                cli_print_json(out);
                return r;
        }
        printf("revoked: %s may no longer use %s\n", vps->id, argv[optind + 2]);
        return cli_agent_sync(c, vps->id, NULL);
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
