/* portcullis audit [ID] [--limit N] */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "ops/ops_json.h"

int cmd_audit(struct cli *c, int argc, char **argv);

struct audit_ctx {
        bool json;
        json_t *list;
        struct cli_table *table;
};

static int audit_cb(const struct pc_audit_entry *e, void *userdata)
{
        struct audit_ctx *ctx = userdata;
        char when[32];

        pc_format_time(e->at, when, sizeof(when));
        if (ctx->json)
                json_array_append_new(ctx->list, pc_json_audit(e));
        else {
                char id[24];

                snprintf(id, sizeof(id), "%" PRId64, e->id);
                cli_table_add(ctx->table, id, when, e->by, e->action, e->object, e->reason);
        }
        return 0;
}

int cmd_audit(struct cli *c, int argc, char **argv)
{
        static const struct option opts[] = { { "limit", required_argument, NULL, 'l' }, { NULL, 0, NULL, 0 } };
        static const char *const headers[] = { "#", "WHEN", "BY", "ACTION", "OBJECT", "REASON" };
        struct audit_ctx ctx = { .json = c->json };
        const char *vps = NULL;
        long limit = 50;
        int opt, r;

        optind = 0;
        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                char *end;

                if (opt != 'l')
                        return cli_usage_error("audit", "bad option for audit");
                limit = strtol(optarg, &end, 10);
                if (*end != '\0' || limit < 0)
                        return cli_usage_error("audit", "--limit '%s' is not a number >= 0", optarg);
        }
        if (argc - optind > 1)
                return cli_usage_error("audit", "audit takes at most one VPS id");
        if (argc - optind == 1)
                vps = argv[optind];
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        ctx.list = json_array();
        ctx.table = cli_table_new(6, headers);
        r = pc_store_audit_list(c->store, vps, (size_t)limit, audit_cb, &ctx);
        if (r < 0) {
                cli_error("Failed to read the audit log: %s", pc_store_errmsg(c->store));
                json_decref(ctx.list);
                cli_table_free(ctx.table);
                return CLI_ERROR;
        }
        if (c->json)
                cli_print_json(json_pack("{s:o}", "audit", ctx.list));
        else {
                cli_table_print(ctx.table);
                json_decref(ctx.list);
        }
        cli_table_free(ctx.table);
        return CLI_OK;
}
