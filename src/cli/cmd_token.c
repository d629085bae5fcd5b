/* portcullis token create | list | revoke: the HTTP API's bearer tokens. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "ops/ops_json.h"

int cmd_token(struct cli *c, int argc, char **argv);


static int token_create(struct cli *c, int argc, char **argv)
{
        static const struct option opts[] = {
                { "role", required_argument, NULL, 'r' },     { "customer", required_argument, NULL, 'c' },
                { "expires", required_argument, NULL, 'e' }, { "by", required_argument, NULL, 'b' },
                { "host", required_argument, NULL, 'H' },     { "any-host", no_argument, NULL, 'A' },
                { NULL, 0, NULL, 0 },
        };
        struct pc_token_spec spec = { 0 };
        char text[PC_TOKEN_TEXT_SIZE];
        struct pc_api_token t;
        struct pc_ops_error err;
        struct pc_ops_actor who;
        struct pc_ops o;
        const char *by = NULL, *expires = NULL;
        int opt, r;

        optind = 0;
        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (opt) {
                case 'r': spec.role = optarg; break;
                case 'c': spec.customer = optarg; break;
                case 'e': expires = optarg; break;
                case 'b': by = optarg; break;
                case 'H': spec.host = optarg; break;
                case 'A': spec.any_host = true; break;
                default: return cli_usage_error("token", "bad option for token create");
                }
        }
        if (optind + 2 != argc)
                return cli_usage_error("token", "token create takes one NAME");
        spec.name = argv[optind + 1];
        if (spec.role == NULL)
                return cli_usage_error("token", "--role ROLE is required (admin, support, customer, agent)");
        if (!cli_actor_valid("token", by))
                return CLI_ERROR;
        if (expires != NULL && !cli_until_valid("token", expires, pc_now(), &spec.expires))
                return CLI_ERROR;
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        /* On a hypervisor of a fleet, its hooks' token is bound to it. */
        if (spec.role != NULL && strcmp(spec.role, "agent") == 0 && spec.host == NULL && !spec.any_host &&
            c->cfg != NULL && c->cfg->agent.host[0] != '\0')
                spec.host = c->cfg->agent.host;
        if (spec.role != NULL && strcmp(spec.role, "agent") == 0 && spec.host == NULL && !spec.any_host)
                return cli_usage_error("token",
                                       "--host H is required for an agent token: the hypervisor whose hooks hold "
                                       "it, whose VPSes alone it acts on (the config's agent.host by default); "
                                       "--any-host for a token of every host, on a single host");
        o = cli_ops(c);
        who = cli_ops_actor(by);
        if (pc_ops_token_create(&o, &who, &spec, text, &t, &err) < 0)
                return cli_ops_error("token", &err, "Failed to create token %s", spec.name);
        if (c->json) {
                json_t *out = pc_json_token(&t);

                json_object_set_new(out, "token", json_string(text));
                return cli_print_json(out);
        }
        /* The token alone on stdout, for `TOKEN=$(portcullis token create ...)`. */
        printf("%s\n", text);
        fprintf(stderr,
                "portcullis: token %s (role %s%s%s%s%s) created: it is shown this once and stored only as a hash\n",
                t.name, t.role, t.customer[0] != '\0' ? ", customer " : "", t.customer,
                t.host[0] != '\0'                ? ", host "
                : strcmp(t.role, "agent") == 0 ? ", any host"
                                                : "",
                t.host);
        return CLI_OK;
}

struct list_ctx {
        json_t *list;
        struct cli_table *table;
};

static int list_cb(const struct pc_api_token *t, void *userdata)
{
        struct list_ctx *ctx = userdata;
        char created[32], expires[32], used[32];

        json_array_append_new(ctx->list, pc_json_token(t));
        pc_format_time(t->created, created, sizeof(created));
        pc_format_time(t->expires, expires, sizeof(expires));
        pc_format_time(t->last_used, used, sizeof(used));
        cli_table_add(ctx->table, t->name, t->role, t->customer[0] != '\0' ? t->customer : "-",
                      t->host[0] != '\0' ? t->host : strcmp(t->role, "agent") == 0 ? "any" : "-", created,
                      t->expires != 0 ? expires : "never", t->last_used != 0 ? used : "never",
                      t->revoked != 0 ? "revoked" : "in force");
        return 0;
}

static int token_list(struct cli *c, int argc, char **argv)
{
        static const char *const headers[] = { "NAME",    "ROLE",      "CUSTOMER", "HOST",
                                               "CREATED", "EXPIRES", "LAST USED", "STATE" };
        struct list_ctx ctx;
        struct pc_ops_error err;
        struct pc_ops_actor who = cli_ops_actor("portcullis");
        struct pc_ops o;
        bool all = false;
        int r;

        for (int i = 2; i < argc; i++) {
                if (strcmp(argv[i], "--all") == 0)
                        all = true;
                else
                        return cli_usage_error("token", "token list takes only --all");
        }
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        o = cli_ops(c);
        ctx.list = json_array();
        ctx.table = cli_table_new(8, headers);
        r = pc_ops_token_list(&o, &who, all, list_cb, &ctx, &err);
        if (r < 0) {
                json_decref(ctx.list);
                cli_table_free(ctx.table);
                return cli_ops_error("token", &err, "Failed to list the tokens");
        }
        if (c->json)
                cli_print_json(json_pack("{s:o}", "tokens", ctx.list));
        else {
                cli_table_print(ctx.table);
                json_decref(ctx.list);
        }
        cli_table_free(ctx.table);
        return CLI_OK;
}

static int token_revoke(struct cli *c, int argc, char **argv)
{
        static const struct option opts[] = { { "by", required_argument, NULL, 'b' }, { NULL, 0, NULL, 0 } };
        struct pc_ops_error err;
        struct pc_ops_actor who;
        struct pc_ops o;
        const char *by = NULL;
        int opt, r;

        optind = 0;
        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                if (opt != 'b')
                        return cli_usage_error("token", "bad option for token revoke");
                by = optarg;
        }
        if (optind + 2 != argc)
                return cli_usage_error("token", "token revoke takes one NAME");
        if (!cli_actor_valid("token", by))
                return CLI_ERROR;
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        o = cli_ops(c);
        who = cli_ops_actor(by);
        if (pc_ops_token_revoke(&o, &who, argv[optind + 1], &err) < 0)
                return cli_ops_error("token", &err, "Failed to revoke token %s", argv[optind + 1]);
        if (c->json)
                return cli_print_json(json_pack("{s:s}", "revoked", argv[optind + 1]));
        printf("token %s revoked: the API refuses it from now on\n", argv[optind + 1]);
        return CLI_OK;
}

int cmd_token(struct cli *c, int argc, char **argv)
{
        if (argc < 2)
                return cli_usage_error("token", "token needs a subcommand: create, list or revoke");
        if (strcmp(argv[1], "create") == 0)
                return token_create(c, argc, argv);
        if (strcmp(argv[1], "list") == 0)
                return token_list(c, argc, argv);
        if (strcmp(argv[1], "revoke") == 0)
                return token_revoke(c, argc, argv);
        return cli_usage_error("token", "unknown subcommand '%s' (create, list, revoke)", argv[1]);
}
