/* portcullis ticket open | list | show | investigate | approve | deny |
 * revoke: the exception process (docs/OPERATIONS.md), through the
 * operations layer.  This file parses and prints; src/ops/ops_ticket.c
 * decides. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "ops/ops_json.h"

int cmd_ticket(struct cli *c, int argc, char **argv);

#define EVIDENCE_MAX 8 /* --evidence given more than once: joined */

/* Every option of every subcommand; each takes the ones it documents. */
struct ticket_opts {
        const char *by, *role, *customer;
        const char *text, *ports, *duration, *until, *note, *reason, *state;
        const char *evidence[EVIDENCE_MAX];
        size_t n_evidence;
};

enum { O_BY = 'b', O_TEXT = 't', O_PORTS = 'p', O_DURATION = 'd', O_UNTIL = 'u', O_NOTE = 'n', O_REASON = 'r',
       O_STATE = 's', O_EVIDENCE = 'e', O_ROLE = 'R', O_CUSTOMER = 'C' };

/* Parses argv's options that <allowed> (option letters) lists; leaves the
 * positionals at optind. */
static int parse_opts(int argc, char **argv, const char *allowed, struct ticket_opts *o)
{
        static const struct option opts[] = {
                { "by", required_argument, NULL, O_BY },
                { "text", required_argument, NULL, O_TEXT },
                { "ports", required_argument, NULL, O_PORTS },
                { "duration", required_argument, NULL, O_DURATION },
                { "until", required_argument, NULL, O_UNTIL },
                { "note", required_argument, NULL, O_NOTE },
                { "reason", required_argument, NULL, O_REASON },
                { "state", required_argument, NULL, O_STATE },
                { "evidence", required_argument, NULL, O_EVIDENCE },
                { "role", required_argument, NULL, O_ROLE },
                { "customer", required_argument, NULL, O_CUSTOMER },
                { NULL, 0, NULL, 0 },
        };
        const char *sub = argv[1]; /* getopt_long permutes argv */
        int opt, li = -1;

        memset(o, 0, sizeof(*o));
        optind = 0;
        opterr = 0;
        while ((opt = getopt_long(argc, argv, "", opts, &li)) != -1) {
                if (opt == '?')
                        return cli_usage_error("ticket", "%s is not an option of ticket %s (see portcullis ticket --help)",
                                               argv[optind - 1], sub);
                if (strchr(allowed, opt) == NULL)
                        return cli_usage_error("ticket", "--%s is not an option of ticket %s (see portcullis ticket --help)",
                                               opts[li].name, sub);
                switch (opt) {
                case O_BY: o->by = optarg; break;
                case O_TEXT: o->text = optarg; break;
                case O_PORTS: o->ports = optarg; break;
                case O_DURATION: o->duration = optarg; break;
                case O_UNTIL: o->until = optarg; break;
                case O_NOTE: o->note = optarg; break;
                case O_REASON: o->reason = optarg; break;
                case O_STATE: o->state = optarg; break;
                case O_ROLE: o->role = optarg; break;
                case O_CUSTOMER: o->customer = optarg; break;
                case O_EVIDENCE:
                        if (o->n_evidence == EVIDENCE_MAX)
                                return cli_usage_error("ticket", "--evidence is given more than %d times",
                                                       EVIDENCE_MAX);
                        o->evidence[o->n_evidence++] = optarg;
                        break;
                }
        }
        return CLI_OK;
}

/* The actor: --by (required for a change; "cli" for a read), in --role
 * (default admin: whoever can run the CLI against the database can write
 * it anyway), bound to --customer for the customer role. */
static int actor_of(const struct ticket_opts *o, bool change, struct pc_ops_actor *who)
{
        if (change && !cli_actor_valid("ticket", o->by))
                return CLI_ERROR;
        *who = cli_ops_actor(o->by != NULL ? o->by : "cli");
        if (o->role != NULL && pc_role_parse(o->role, &who->role) < 0)
                return cli_usage_error("ticket", "--role '%s' is not a role (admin, support, customer, agent)", o->role);
        if (who->role == PC_ROLE_CUSTOMER && (o->customer == NULL || o->customer[0] == '\0'))
                return cli_usage_error("ticket", "--role customer needs --customer EMAIL: the owner the customer is");
        if (who->role != PC_ROLE_CUSTOMER && o->customer != NULL)
                return cli_usage_error("ticket", "--customer is for --role customer");
        who->customer = o->customer;
        return CLI_OK;
}

/* The ticket number of argv[optind + 1]: 0 and a usage error if bad. */
static int64_t ticket_arg(int argc, char **argv)
{
        char *end;
        long long id;

        if (optind + 2 != argc) {
                cli_usage_error("ticket", "ticket %s takes one ticket number", argv[1]);
                return 0;
        }
        id = strtoll(argv[optind + 1], &end, 10);
        if (*end != '\0' || id <= 0 || argv[optind + 1][0] == '\0') {
                cli_usage_error("ticket", "'%s' is not a ticket number", argv[optind + 1]);
                return 0;
        }
        return id;
}

/* "30d", "12h", "90m", "3600s", "2w" (a bare number: seconds). */
static bool duration_parse(const char *s, int64_t *ret)
{
        static const struct {
                char unit;
                int64_t seconds;
        } units[] = { { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 7 * 86400 } };
        char *end;
        long long n;

        if (s[0] < '0' || s[0] > '9')
                return false;
        n = strtoll(s, &end, 10);
        if (n <= 0 || n > 10LL * 366 * 86400)
                return false;
        if (*end == '\0') {
                *ret = n;
                return true;
        }
        for (size_t i = 0; i < PC_ARRAY_SIZE(units); i++)
                if (end[0] == units[i].unit && end[1] == '\0' && n <= 10LL * 366 * 86400 / units[i].seconds) {
                        *ret = n * units[i].seconds;
                        return true;
                }
        return false;
}

/* "30d 0h" style, for a duration asked. */
static void duration_text(int64_t d, char *buf, size_t size)
{
        if (d == 0)
                snprintf(buf, size, "none said");
        else if (d % 86400 == 0)
                snprintf(buf, size, "%" PRId64 " day%s", d / 86400, d == 86400 ? "" : "s");
        else if (d % 3600 == 0)
                snprintf(buf, size, "%" PRId64 " hour%s", d / 3600, d == 3600 ? "" : "s");
        else
                snprintf(buf, size, "%" PRId64 " seconds", d);
}


/* ---- open ------------------------------------------------------------- */

static int ticket_open(struct cli *c, int argc, char **argv)
{
        struct ticket_opts opt;
        struct pc_ticket_spec spec = { 0 };
        struct pc_ops_actor who;
        struct pc_ops_error err;
        struct pc_ops o;
        char evidence[PC_TICKET_EVIDENCE_MAX] = "";
        int64_t id;
        int r = parse_opts(argc, argv, "btpdeRC", &opt);

        if (r != CLI_OK)
                return r;
        if (optind + 3 != argc)
                return cli_usage_error("ticket", "ticket open takes a VPS id and a service");
        if ((r = actor_of(&opt, true, &who)) != CLI_OK)
                return r;
        if (opt.text == NULL || opt.text[0] == '\0')
                return cli_usage_error("ticket", "--text TEXT is required: the customer's use case");
        if (opt.duration != NULL && !duration_parse(opt.duration, &spec.duration))
                return cli_usage_error("ticket", "--duration '%s' is not a duration (30d, 12h, 2w; at most 10 years)",
                                       opt.duration);
        /* Each --evidence is one piece (a sentence, a link): one line. */
        for (size_t i = 0, len = 0; i < opt.n_evidence; i++) {
                if (len + strlen(opt.evidence[i]) + 3 >= sizeof(evidence))
                        return cli_usage_error("ticket", "--evidence is longer than %zu bytes in all",
                                               sizeof(evidence) - 1);
                len += (size_t)snprintf(evidence + len, sizeof(evidence) - len, "%s%s", i == 0 ? "" : " | ",
                                        opt.evidence[i]);
        }
        spec.vps_id = argv[optind + 1];
        spec.service = argv[optind + 2];
        spec.ports = opt.ports;
        spec.text = opt.text;
        spec.evidence = opt.n_evidence > 0 ? evidence : NULL;
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        o = cli_ops(c);
        if (pc_ops_ticket_open(&o, &who, &spec, &id, &err) < 0)
                return cli_ops_error("ticket", &err, "Failed to open a ticket for %s", spec.vps_id);
        if (c->json)
                return cli_print_json(json_pack("{s:I, s:s, s:s, s:o, s:s}", "ticket", (json_int_t)id, "vps",
                                                spec.vps_id, "service", spec.service, "ports",
                                                spec.ports != NULL ? json_string(spec.ports) : json_null(), "state",
                                                "open"));
        printf("ticket #%" PRId64 " opened: %s asks for %s%s%s\n", id, spec.vps_id, spec.service,
               spec.ports != NULL ? " ports " : "", spec.ports != NULL ? spec.ports : "");
        return CLI_OK;
}

/* ---- list ------------------------------------------------------------- */

struct list_ctx {
        json_t *list;
        struct cli_table *table;
};

static int list_cb(const struct pc_ticket *t, void *userdata)
{
        struct list_ctx *ctx = userdata;
        char id[24], when[32], what[PC_NAME_MAX + PC_PORTS_CANON_MAX + 4];

        snprintf(id, sizeof(id), "%" PRId64, t->id);
        snprintf(what, sizeof(what), "%s%s%s", t->service, t->ports[0] != '\0' ? " " : "", t->ports);
        pc_format_time(t->opened, when, sizeof(when));
        if (ctx->table != NULL)
                cli_table_add(ctx->table, id, t->vps_id, what, pc_ticket_state_name(t->state), t->opened_by, when,
                              t->text);
        json_array_append_new(ctx->list, pc_json_ticket(t));
        return 0;
}

static int ticket_list(struct cli *c, int argc, char **argv)
{
        static const char *const headers[] = { "#", "VPS", "ASKS FOR", "STATE", "BY", "OPENED", "TEXT" };
        struct pc_ticket_query q = { .state = -1 };
        struct ticket_opts opt;
        struct pc_ops_actor who;
        struct pc_ops_error err;
        struct pc_ops o;
        struct list_ctx ctx;
        int r = parse_opts(argc, argv, "bsRC", &opt);

        if (r != CLI_OK)
                return r;
        if (optind + 2 < argc)
                return cli_usage_error("ticket", "ticket list takes at most one VPS id");
        if ((r = actor_of(&opt, false, &who)) != CLI_OK)
                return r;
        if (opt.state != NULL) {
                enum pc_ticket_state st;

                if (pc_ticket_state_parse(opt.state, &st) < 0)
                        return cli_usage_error("ticket",
                                               "--state '%s' is not a state (open, investigating, approved, denied, "
                                               "revoked, expired, closed)", opt.state);
                q.state = (int)st;
        }
        q.vps_id = optind + 1 < argc ? argv[optind + 1] : NULL;
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        o = cli_ops(c);
        ctx = (struct list_ctx){ json_array(), cli_table_new(7, headers) };
        r = pc_ops_ticket_list(&o, &who, &q, list_cb, &ctx, &err);
        if (r < 0)
                r = cli_ops_error("ticket", &err, "Failed to list tickets");
        else if (c->json)
                r = cli_print_json(json_pack("{s:O}", "tickets", ctx.list));
        else {
                cli_table_print(ctx.table);
                r = CLI_OK;
        }
        json_decref(ctx.list);
        cli_table_free(ctx.table);
        return r;
}

/* ---- show ------------------------------------------------------------- */

static int event_cb(const struct pc_ticket_event *e, void *userdata)
{
        json_array_append_new(userdata, pc_json_ticket_event(e));
        return 0;
}

/* Prints <t>, with its history and, for support, its findings from <j>
 * (the ticket's JSON). */
static void print_ticket(const struct pc_ticket *t, json_t *j)
{
        char buf[PC_TICKET_EVIDENCE_MAX * 4], d[48];
        json_t *x, *f = json_object_get(j, "findings");
        size_t i;

        duration_text(t->duration, d, sizeof(d));
        printf("Ticket #%" PRId64 ": %s asks for %s%s%s -- %s\n", t->id, t->vps_id, t->service,
               t->ports[0] != '\0' ? " ports " : "", t->ports, pc_ticket_state_name(t->state));
        printf("  owner:     %s\n", cli_text(t->owner, buf, sizeof(buf)));
        printf("  opened:    %s by %s\n", json_string_value(json_object_get(j, "opened")),
               cli_text(t->opened_by, buf, sizeof(buf)));
        printf("  duration:  %s\n", d);
        printf("  text:      %s\n", cli_text(t->text, buf, sizeof(buf)));
        printf("  evidence:  %s\n", t->evidence[0] != '\0' ? cli_text(t->evidence, buf, sizeof(buf)) : "none");
        if (t->exception_id != 0)
                printf("  exception: #%" PRId64 ", until %s\n", t->exception_id,
                       t->until != 0 ? json_string_value(json_object_get(j, "until")) : "no end");
        printf("\nHistory:\n");
        json_array_foreach(json_object_get(j, "history"), i, x) {
                const char *note = json_string_value(json_object_get(x, "note"));

                printf("  %s  %-13s by %s%s%s\n", json_string_value(json_object_get(x, "at")),
                       json_string_value(json_object_get(x, "kind")),
                       cli_text(json_string_value(json_object_get(x, "by")), d, sizeof(d)), note != NULL ? ": " : "",
                       note != NULL ? cli_text(note, buf, sizeof(buf)) : "");
        }
        if (f == NULL)
                return;
        printf("\nBlocked attempts for %s (the kernel's counters, as portcullisd last read them):\n", t->service);
        x = json_object_get(f, "blocked_attempts");
        if (json_array_size(x) == 0)
                printf("  none\n");
        else {
                json_t *a;

                json_array_foreach(x, i, a)
                        printf("  %s/%" JSON_INTEGER_FORMAT " %s: %" JSON_INTEGER_FORMAT " packets, last %s\n",
                               json_string_value(json_object_get(a, "proto")),
                               json_integer_value(json_object_get(a, "port")),
                               json_string_value(json_object_get(a, "direction")),
                               json_integer_value(json_object_get(a, "packets")),
                               json_string_value(json_object_get(a, "last_seen")));
        }
        printf("\nIncidents of %s (blocked-use: terms-of-service events):\n", t->vps_id);
        if (json_array_size(json_object_get(f, "incidents")) == 0)
                printf("  none\n");
        json_array_foreach(json_object_get(f, "incidents"), i, x)
                printf("  #%" JSON_INTEGER_FORMAT " %s, %s, %" JSON_INTEGER_FORMAT " seen, %s to %s\n",
                       json_integer_value(json_object_get(x, "id")), json_string_value(json_object_get(x, "kind")),
                       json_string_value(json_object_get(x, "state")), json_integer_value(json_object_get(x, "count")),
                       json_string_value(json_object_get(x, "first_seen")),
                       json_string_value(json_object_get(x, "last_seen")));
        printf("\nActions on %s (filters, suspensions):\n", t->vps_id);
        if (json_array_size(json_object_get(f, "actions")) == 0)
                printf("  none\n");
        json_array_foreach(json_object_get(f, "actions"), i, x)
                printf("  #%" JSON_INTEGER_FORMAT " %s %s %s, %s, by %s: %s\n",
                       json_integer_value(json_object_get(x, "id")), json_string_value(json_object_get(x, "kind")),
                       json_string_value(json_object_get(x, "direction")),
                       json_string_value(json_object_get(x, "scope")), json_string_value(json_object_get(x, "state")),
                       cli_text(json_string_value(json_object_get(x, "by")), d, sizeof(d)),
                       cli_text(json_string_value(json_object_get(x, "reason")), buf, sizeof(buf)));
        printf("\nThe customer's earlier tickets:\n");
        if (json_array_size(json_object_get(f, "earlier_tickets")) == 0)
                printf("  none\n");
        json_array_foreach(json_object_get(f, "earlier_tickets"), i, x)
                printf("  #%" JSON_INTEGER_FORMAT " %s %s: %s\n", json_integer_value(json_object_get(x, "id")),
                       json_string_value(json_object_get(x, "vps")), json_string_value(json_object_get(x, "service")),
                       json_string_value(json_object_get(x, "state")));
}

static int ticket_show(struct cli *c, int argc, char **argv)
{
        struct ticket_opts opt;
        struct pc_ops_actor who;
        struct pc_ops_error err;
        struct pc_ops o;
        struct pc_ticket *t;
        json_t *j, *history, *findings;
        int64_t id;
        int r = parse_opts(argc, argv, "bRC", &opt);

        if (r != CLI_OK)
                return r;
        if ((id = ticket_arg(argc, argv)) == 0)
                return CLI_ERROR;
        if ((r = actor_of(&opt, false, &who)) != CLI_OK)
                return r;
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        t = malloc(sizeof(*t));
        if (t == NULL) {
                cli_error("Out of memory");
                return CLI_ERROR;
        }
        o = cli_ops(c);
        if (pc_ops_ticket_get(&o, &who, id, t, &err) < 0) {
                free(t);
                return cli_ops_error("ticket", &err, "Failed to show ticket #%" PRId64, id);
        }
        j = pc_json_ticket(t);
        history = json_array();
        json_object_set_new(j, "history", history);
        if (pc_ops_ticket_history(&o, &who, id, event_cb, history, &err) < 0) {
                json_decref(j);
                free(t);
                return cli_ops_error("ticket", &err, "Failed to read the history of ticket #%" PRId64, id);
        }
        /* A customer sees the ticket and its history only (EPERM). */
        if (pc_ops_ticket_findings(&o, &who, id, &findings, &err) == 0)
                json_object_set_new(j, "findings", findings);
        else if (err.code != PC_OPS_EPERM) {
                json_decref(j);
                free(t);
                return cli_ops_error("ticket", &err, "Failed to read the findings of ticket #%" PRId64, id);
        }
        if (c->json)
                r = cli_print_json(j);
        else {
                print_ticket(t, j);
                json_decref(j);
                r = CLI_OK;
        }
        free(t);
        return r;
}

/* ---- transitions ------------------------------------------------------ */

/* Reads back ticket <id> after a change, for --json. */
static json_t *ticket_after(struct cli *c, const struct pc_ops_actor *who, int64_t id)
{
        struct pc_ticket *t = malloc(sizeof(*t));
        struct pc_ops_error err;
        struct pc_ops o = cli_ops(c);
        json_t *j = NULL;

        if (t != NULL && pc_ops_ticket_get(&o, who, id, t, &err) >= 0)
                j = pc_json_ticket(t);
        free(t);
        return j;
}

/* The VPS of ticket <id>, to tell the agent after a change. */
static void ticket_vps(struct cli *c, const struct pc_ops_actor *who, int64_t id, char *buf, size_t size)
{
        struct pc_ticket *t = malloc(sizeof(*t));
        struct pc_ops_error err;
        struct pc_ops o = cli_ops(c);

        buf[0] = '\0';
        if (t != NULL && pc_ops_ticket_get(&o, who, id, t, &err) >= 0)
                snprintf(buf, size, "%s", t->vps_id);
        free(t);
}

static int ticket_change(struct cli *c, int argc, char **argv)
{
        const char *sub = argv[1];
        bool approve = strcmp(sub, "approve") == 0, investigate = strcmp(sub, "investigate") == 0;
        struct pc_ticket_approval a = { 0 };
        struct pc_grant_result res = { 0 };
        struct ticket_opts opt;
        struct pc_ops_actor who;
        struct pc_ops_error err;
        struct pc_ops o;
        char vps[PC_NAME_MAX], text[512];
        int64_t id;
        int r = parse_opts(argc, argv, approve ? "bpunRC" : investigate ? "bnRC" : "brRC", &opt);

        if (r != CLI_OK)
                return r;
        if ((id = ticket_arg(argc, argv)) == 0)
                return CLI_ERROR;
        if ((r = actor_of(&opt, true, &who)) != CLI_OK)
                return r;
        if (approve && opt.until != NULL && !cli_until_valid("ticket", opt.until, pc_now(), &a.until))
                return CLI_ERROR;
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        o = cli_ops(c);
        if (approve) {
                a.ports = opt.ports;
                a.note = opt.note;
                r = pc_ops_ticket_approve(&o, &who, id, &a, &res, &err);
        } else if (investigate)
                r = pc_ops_ticket_investigate(&o, &who, id, opt.note, &err);
        else if (strcmp(sub, "deny") == 0)
                r = pc_ops_ticket_deny(&o, &who, id, opt.reason, &err);
        else
                r = pc_ops_ticket_revoke(&o, &who, id, opt.reason, &err);
        if (r < 0)
                return cli_ops_error("ticket", &err, "Failed to %s ticket #%" PRId64, sub, id);
        ticket_vps(c, &who, id, vps, sizeof(vps));
        if (approve)
                snprintf(text, sizeof(text), "ticket #%" PRId64 " approved: exception #%" PRId64 " for %s", id,
                         res.id, vps);
        else
                snprintf(text, sizeof(text), "ticket #%" PRId64 " %s", id,
                         investigate ? "under investigation" : strcmp(sub, "deny") == 0 ? "denied" : "revoked");
        /* Only an approval and a revocation change what the kernel does. */
        if (!approve && strcmp(sub, "revoke") != 0) {
                if (c->json)
                        return cli_print_json(ticket_after(c, &who, id));
                printf("%s\n", text);
                return CLI_OK;
        }
        return cli_change_done(c, vps, c->json ? ticket_after(c, &who, id) : NULL, text);
}

int cmd_ticket(struct cli *c, int argc, char **argv)
{
        static const char *const subs[] = { "investigate", "approve", "deny", "revoke" };

        if (argc < 2)
                return cli_usage_error("ticket", "ticket needs a subcommand: open, list, show, investigate, approve, "
                                                 "deny or revoke");
        if (strcmp(argv[1], "open") == 0)
                return ticket_open(c, argc, argv);
        if (strcmp(argv[1], "list") == 0)
                return ticket_list(c, argc, argv);
        if (strcmp(argv[1], "show") == 0)
                return ticket_show(c, argc, argv);
        for (size_t i = 0; i < PC_ARRAY_SIZE(subs); i++)
                if (strcmp(argv[1], subs[i]) == 0)
                        return ticket_change(c, argc, argv);
        return cli_usage_error("ticket",
                               "unknown ticket subcommand '%s' (open, list, show, investigate, approve, deny, revoke)",
                               argv[1]);
}
