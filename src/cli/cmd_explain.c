/* portcullis explain ID PROTO/PORT [out|in] ... */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "policy/explain.h"

int cmd_explain(struct cli *c, int argc, char **argv);

#define FLOWS_MAX 64

struct ticket_ctx {
        const char *service;
        json_t *list; /* of {"id", "state"} */
};

static int ticket_cb(const struct pc_ticket *t, void *userdata)
{
        struct ticket_ctx *ctx = userdata;

        if (strcmp(t->service, ctx->service) == 0 && (t->state == PC_TICKET_OPEN || t->state == PC_TICKET_INVESTIGATING))
                json_array_append_new(ctx->list, json_pack("{s:I, s:s}", "id", (json_int_t)t->id, "state",
                                                           pc_ticket_state_name(t->state)));
        return 0;
}

/* The rule behind <v>, if a site rule is among its reasons. */
static const struct pc_rule *verdict_rule(const struct pc_verdict *v)
{
        for (unsigned i = 0; i < v->n_reasons; i++)
                if (v->reasons[i].kind == PC_REASON_SITE_RULE)
                        return v->reasons[i].rule;
        return NULL;
}

/* Adds to <vps> the exception for the service of <v>'s site rule that ran
 * to its end, if none is in force: the model holds live exceptions only,
 * and support must see that one ran out (exception-expired), not "no
 * exception".  Sets *<ret_added>.  Prints the error and returns -1. */
static int add_ended_exception(struct cli *c, struct pc_vps *vps, const struct pc_verdict *v, int64_t now,
                               bool *ret_added)
{
        const struct pc_rule *rule = verdict_rule(v);
        struct pc_exception e;
        int r;

        *ret_added = false;
        if (rule == NULL || pc_vps_exception_for(vps, rule->service->name) != NULL)
                return 0;
        r = pc_store_exception_ended(c->store, vps->id, rule->service->name, now, &e);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                cli_error("Failed to read the exceptions of %s: %s", vps->id, pc_store_errmsg(c->store));
                return -1;
        }
        /* A VPS at its limit of live exceptions is explained without it. */
        *ret_added = pc_vps_add_exception(vps, &e) == 0;
        return 0;
}

/* Adds what support needs beside the reasons: "no exception", tickets. */
static int add_context(struct cli *c, const struct pc_vps *vps, const struct pc_verdict *v, json_t *j)
{
        const struct pc_rule *rule = verdict_rule(v);
        struct ticket_ctx ctx;
        json_t *notes = json_array();
        char buf[256];
        size_t i;
        json_t *t;

        json_object_set_new(j, "notes", notes);
        if (rule == NULL)
                return 0;
        if (pc_rule_exemptable(vps->site->policy, rule) && pc_vps_exception_for(vps, rule->service->name) == NULL) {
                snprintf(buf, sizeof(buf), "no exception for %s on %s", rule->service->name, vps->id);
                json_array_append_new(notes, json_string(buf));
        }
        ctx.service = rule->service->name;
        ctx.list = json_array();
        if (pc_store_ticket_list(c->store, vps->id, ticket_cb, &ctx) < 0) {
                json_decref(ctx.list);
                cli_error("Failed to read tickets of %s: %s", vps->id, pc_store_errmsg(c->store));
                return -1;
        }
        json_array_foreach(ctx.list, i, t) {
                snprintf(buf, sizeof(buf), "ticket #%" JSON_INTEGER_FORMAT " pending (%s): asks for an exception for %s",
                         json_integer_value(json_object_get(t, "id")),
                         json_string_value(json_object_get(t, "state")), rule->service->name);
                json_array_append_new(notes, json_string(buf));
        }
        json_object_set_new(j, "pending_tickets", ctx.list);
        return 0;
}

static const char *decisive_text(json_t *j)
{
        size_t i;
        json_t *r;

        json_array_foreach(json_object_get(j, "reasons"), i, r)
                if (json_is_true(json_object_get(r, "decisive")))
                        return json_string_value(json_object_get(r, "text"));
        return "";
}

int cmd_explain(struct cli *c, int argc, char **argv)
{
        struct pc_flow flows[FLOWS_MAX];
        struct pc_vps *vps;
        json_t *results;
        size_t n = 0;
        int64_t now = pc_now();
        bool blocked = false;
        int r;

        if (argc < 3)
                return cli_usage_error("explain", "explain needs a VPS id and a flow, e.g. vps-101 tcp/465 out");
        for (int i = 2; i < argc; i++) {
                if (n == FLOWS_MAX)
                        return cli_usage_error("explain", "at most %d flows at once", FLOWS_MAX);
                if (pc_flow_parse(argv[i], &flows[n]) < 0)
                        return cli_usage_error("explain", "'%s' is not a flow: expected PROTO/PORT (tcp/465, udp/500, port 0-65535) or gre, esp",
                                               argv[i]);
                flows[n].dir = PC_DIR_EGRESS;
                if (i + 1 < argc && pc_flow_parse(argv[i + 1], &(struct pc_flow){ 0 }) < 0) {
                        unsigned d;

                        if (pc_dir_parse(argv[i + 1], &d) < 0 || d == PC_DIR_BOTH)
                                return cli_usage_error("explain", "'%s' is not a direction: out (egress) or in (ingress)",
                                                       argv[i + 1]);
                        flows[n].dir = d;
                        i++;
                }
                n++;
        }
        r = cli_model(c);
        if (r != CLI_OK)
                return r;
        vps = pc_model_find(c->model, argv[1]);
        if (vps == NULL) {
                cli_error("vps %s does not exist", argv[1]);
                return CLI_ERROR;
        }

        results = json_array();
        for (size_t i = 0; i < n; i++) {
                struct pc_verdict v;
                bool added;
                json_t *j;

                pc_evaluate(vps, &flows[i], now, &v);
                if (add_ended_exception(c, vps, &v, now, &added) < 0) {
                        json_decref(results);
                        return CLI_ERROR;
                }
                if (added)
                        pc_evaluate(vps, &flows[i], now, &v);
                blocked |= v.verdict != PC_VERDICT_ALLOW;
                j = pc_explain_json(&v, vps, &flows[i]);
                if (j == NULL || add_context(c, vps, &v, j) < 0) {
                        json_decref(j);
                        json_decref(results);
                        return CLI_ERROR;
                }
                json_array_append_new(results, j);
        }

        if (c->json) {
                if (n == 1) {
                        json_t *one = json_incref(json_array_get(results, 0));

                        json_decref(results);
                        cli_print_json(one);
                } else
                        cli_print_json(json_pack("{s:s, s:o}", "vps", vps->id, "results", results));
        } else if (n == 1) {
                json_t *j = json_array_get(results, 0), *x;
                char fl[48], safe[PC_ESCAPED_SIZE(1024)];
                size_t k;

                pc_flow_format(&flows[0], fl, sizeof(fl));
                printf("%s: %s %s\n", json_string_value(json_object_get(j, "verdict")), vps->id, fl);
                json_array_foreach(json_object_get(j, "reasons"), k, x)
                        printf("  %s %s\n", json_is_true(json_object_get(x, "decisive")) ? "because" : "    and",
                               cli_text(json_string_value(json_object_get(x, "text")), safe, sizeof(safe)));
                json_array_foreach(json_object_get(j, "notes"), k, x)
                        printf("   note %s\n", cli_text(json_string_value(x), safe, sizeof(safe)));
                json_decref(results);
        } else {
                static const char *const headers[] = { "FLOW", "VERDICT", "WHY" };
                struct cli_table *t = cli_table_new(3, headers);
                json_t *j;
                size_t k;

                json_array_foreach(results, k, j) {
                        char fl[48];

                        pc_flow_format(&flows[k], fl, sizeof(fl));
                        cli_table_add(t, fl, json_string_value(json_object_get(j, "verdict")), decisive_text(j));
                }
                cli_table_print(t);
                cli_table_free(t);
                json_decref(results);
        }
        return blocked ? CLI_NO : CLI_OK;
}
