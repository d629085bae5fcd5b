/* portcullis ticket open | list: exception requests, the minimum that
 * `exception grant --ticket N` and `explain` need.  Review, deny and the
 * customer-facing side are the ticket workflow's own step. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "policy/grant.h"

int cmd_ticket(struct cli *c, int argc, char **argv);

static int ticket_open(struct cli *c, int argc, char **argv)
{
        static const struct option opts[] = {
                { "by", required_argument, NULL, 'b' },
                { "text", required_argument, NULL, 't' },
                { NULL, 0, NULL, 0 },
        };
        struct pc_ticket t = { 0 };
        const struct pc_vps *vps;
        const char *by = NULL, *text = NULL;
        char why[512];
        int64_t id;
        int opt, r;

        optind = 0;
        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                if (opt == 'b')
                        by = optarg;
                else if (opt == 't')
                        text = optarg;
                else
                        return cli_usage_error("ticket", "bad option for ticket open");
        }
        if (optind + 3 != argc)
                return cli_usage_error("ticket", "ticket open takes a VPS id and a service");
        if (!cli_actor_valid("ticket", by))
                return CLI_ERROR;
        if (text == NULL || text[0] == '\0')
                return cli_usage_error("ticket", "--text TEXT is required: the customer's use case and evidence");
        if (!cli_text_valid("ticket", "--text", text, sizeof(t.text)))
                return CLI_ERROR;
        r = cli_model(c);
        if (r != CLI_OK)
                return r;
        vps = pc_model_find(c->model, argv[optind + 1]);
        if (vps == NULL) {
                cli_error("vps %s does not exist", argv[optind + 1]);
                return CLI_ERROR;
        }
        /* A request that no grant could answer is refused now, with why,
         * not left pending for support to find out. */
        if (pc_grant_check(c->cfg, vps->site, argv[optind + 2], NULL, why, sizeof(why)) < 0) {
                cli_error("Failed to open a ticket for %s: %s", vps->id, why);
                return CLI_ERROR;
        }
        snprintf(t.vps_id, sizeof(t.vps_id), "%s", argv[optind + 1]);
        snprintf(t.service, sizeof(t.service), "%s", argv[optind + 2]);
        snprintf(t.text, sizeof(t.text), "%s", text);
        if (pc_store_ticket_open(c->store, &t, &(struct pc_actor){ .by = by }, &id) < 0) {
                cli_error("Failed to open a ticket for %s: %s", t.vps_id, pc_store_errmsg(c->store));
                return CLI_ERROR;
        }
        if (c->json)
                return cli_print_json(json_pack("{s:I, s:s, s:s}", "ticket", (json_int_t)id, "vps", t.vps_id,
                                                "service", t.service));
        printf("ticket #%" PRId64 " opened: %s asks for %s\n", id, t.vps_id, t.service);
        return CLI_OK;
}

struct list_ctx {
        json_t *list;
        struct cli_table *table;
};

static int list_cb(const struct pc_ticket *t, void *userdata)
{
        struct list_ctx *ctx = userdata;
        char id[24], when[32];

        snprintf(id, sizeof(id), "%" PRId64, t->id);
        pc_format_time(t->opened, when, sizeof(when));
        cli_table_add(ctx->table, id, t->vps_id, t->service, pc_ticket_state_name(t->state), t->opened_by, when,
                      t->text);
        json_array_append_new(ctx->list, json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s}", "id", (json_int_t)t->id,
                                                   "vps", t->vps_id, "service", t->service, "state",
                                                   pc_ticket_state_name(t->state), "opened_by", t->opened_by,
                                                   "opened", when, "text", t->text));
        return 0;
}

static int ticket_list(struct cli *c, int argc, char **argv)
{
        static const char *const headers[] = { "#", "VPS", "SERVICE", "STATE", "BY", "OPENED", "TEXT" };
        struct list_ctx ctx;
        int r;

        if (argc > 3)
                return cli_usage_error("ticket", "ticket list takes at most one VPS id");
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        ctx.list = json_array();
        ctx.table = cli_table_new(7, headers);
        r = pc_store_ticket_list(c->store, argc == 3 ? argv[2] : NULL, list_cb, &ctx);
        if (r < 0)
                cli_error("Failed to list tickets: %s", pc_store_errmsg(c->store));
        else if (c->json) {
                cli_print_json(json_pack("{s:O}", "tickets", ctx.list));
        } else
                cli_table_print(ctx.table);
        json_decref(ctx.list);
        cli_table_free(ctx.table);
        return r < 0 ? CLI_ERROR : CLI_OK;
}

int cmd_ticket(struct cli *c, int argc, char **argv)
{
        if (argc < 2)
                return cli_usage_error("ticket", "ticket needs a subcommand: open or list");
        if (strcmp(argv[1], "open") == 0)
                return ticket_open(c, argc, argv);
        if (strcmp(argv[1], "list") == 0)
                return ticket_list(c, argc, argv);
        return cli_usage_error("ticket", "unknown ticket subcommand '%s' (open, list)", argv[1]);
}
