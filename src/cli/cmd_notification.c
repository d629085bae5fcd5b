/* portcullis notification list | show | retry: the customer-notification
 * outbox as support sees it.  Changes queue the owner's email in the
 * store; portcullisd's notifier delivers it.  Here support finds what was
 * sent, what is waiting and why, and queues a dead letter again. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"
#include "ops/ops_json.h"

int cmd_notification(struct cli *c, int argc, char **argv);

#define ERROR_COLUMN_MAX 60 /* characters of last_error in the list table */

/* Parses a notification number into *<ret>; false if it is not one. */
static bool parse_id(const char *s, int64_t *ret)
{
        char *end;
        long long v;

        if (s[0] < '0' || s[0] > '9')
                return false;
        v = strtoll(s, &end, 10);
        if (*end != '\0' || v <= 0)
                return false;
        *ret = v;
        return true;
}

/* Formats time <t> into <buf>, or "-" for 0. */
static const char *time_or_dash(int64_t t, char *buf, size_t size)
{
        if (t == 0)
                snprintf(buf, size, "-");
        else
                pc_format_time(t, buf, size);
        return buf;
}




/* Copies <s> into <buf>, cut to <max> characters (not bytes) with "...". */
static const char *cut_text(const char *s, size_t max, char *buf, size_t size)
{
        size_t chars = 0, i;

        for (i = 0; s[i] != '\0'; i++)
                if (((unsigned char)s[i] & 0xc0) != 0x80 && chars++ == max)
                        break;
        if (s[i] == '\0' || i + 4 > size)
                snprintf(buf, size, "%s", s);
        else
                snprintf(buf, size, "%.*s...", (int)i, s);
        return buf;
}

struct list_ctx {
        json_t *list;
        struct cli_table *table;
};

static int list_cb(const struct pc_notification *n, void *userdata)
{
        struct list_ctx *ctx = userdata;
        char id[24], attempts[16], created[32], when[32], error[PC_NOTIFICATION_ERROR_MAX + 4];

        if (ctx->list != NULL) {
                json_t *j = pc_json_notification(n);

                if (j == NULL || json_array_append_new(ctx->list, j) < 0)
                        return -ENOMEM;
                return 0;
        }
        snprintf(id, sizeof(id), "%" PRId64, n->id);
        snprintf(attempts, sizeof(attempts), "%u", n->attempts);
        pc_format_time(n->created, created, sizeof(created));
        if (strcmp(n->state, "sent") == 0)
                time_or_dash(n->sent_at, when, sizeof(when));
        else
                time_or_dash(pc_notification_next_attempt(n), when, sizeof(when));
        cut_text(n->last_error[0] != '\0' ? n->last_error : "-", ERROR_COLUMN_MAX, error,
                 sizeof(error));
        /* A webhook event has no language: the column says what it is. */
        cli_table_add(ctx->table, id, created, n->vps_id, n->kind, n->recipient,
                      strcmp(n->channel, "webhook") == 0 ? "webhook" : n->language, n->state, attempts, when, error);
        return 0;
}

static int notification_list(struct cli *c, int argc, char **argv)
{
        static const struct option opts[] = {
                { "state", required_argument, NULL, 's' },
                { "limit", required_argument, NULL, 'l' },
                { NULL, 0, NULL, 0 },
        };
        static const char *const headers[] = { "#",     "CREATED", "VPS",      "KIND",      "RECIPIENT",
                                               "LANG",  "STATE",   "ATTEMPTS", "NEXT/SENT", "LAST ERROR" };
        struct list_ctx ctx = { 0 };
        const char *state = NULL, *vps = NULL;
        long limit = 50;
        int opt, r;

        optind = 0;
        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                char *end;

                switch (opt) {
                case 's':
                        state = optarg;
                        if (strcmp(state, "pending") != 0 && strcmp(state, "sent") != 0 &&
                            strcmp(state, "failed") != 0)
                                return cli_usage_error("notification",
                                                       "--state is pending, sent or failed, not '%s'",
                                                       state);
                        break;
                case 'l':
                        limit = strtol(optarg, &end, 10);
                        if (optarg[0] == '\0' || *end != '\0' || limit < 0)
                                return cli_usage_error("notification",
                                                       "--limit '%s' is not a number >= 0", optarg);
                        break;
                default:
                        return cli_usage_error("notification", "bad option for notification list");
                }
        }
        if (argc - optind > 1)
                return cli_usage_error("notification", "notification list takes at most one VPS id");
        if (argc - optind == 1)
                vps = argv[optind];
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        if (c->json)
                ctx.list = json_array();
        else
                ctx.table = cli_table_new(PC_ARRAY_SIZE(headers), headers);
        r = pc_store_notification_list(c->store, vps, state, (size_t)limit, 0, list_cb, &ctx);
        if (r < 0) {
                if (r == -ENOMEM)
                        cli_error("Failed to list notifications: out of memory");
                else
                        cli_error("Failed to list notifications: %s", pc_store_errmsg(c->store));
                json_decref(ctx.list);
                cli_table_free(ctx.table);
                return CLI_ERROR;
        }
        if (c->json) {
                r = cli_print_json(json_pack("{s:o}", "notifications", ctx.list));
        } else {
                cli_table_print(ctx.table);
                r = CLI_OK;
        }
        cli_table_free(ctx.table);
        return r;
}

/* Prints the JSON text <text> line by line, each escaped (jansson leaves
 * DEL and C1 controls raw in strings). */
static void print_lines(const char *text)
{
        while (*text != '\0') {
                size_t n = strcspn(text, "\n");
                char *line = strndup(text, n), *safe = malloc(PC_ESCAPED_SIZE(n));

                if (line == NULL || safe == NULL)
                        abort(); /* a CLI out of memory has nothing better to do */
                printf("%s\n", cli_text(line, safe, PC_ESCAPED_SIZE(n)));
                free(line);
                free(safe);
                text += n + (text[n] == '\n');
        }
}

/* Prints notification <n> for a person: its fields, then its payload;
 * stored text escaped (cli_text). */
static void show_text(const struct pc_notification *n)
{
        char buf[32], t1[PC_ESCAPED_SIZE(256)], t2[PC_ESCAPED_SIZE(PC_NOTIFICATION_ERROR_MAX)];
        json_t *payload = json_loads(n->payload, 0, NULL);

        printf("notification #%" PRId64 ": %s to %s (%s)\n", n->id, cli_text(n->kind, t2, sizeof(t2)),
               cli_text(n->recipient, t1, sizeof(t1)),
               strcmp(n->channel, "webhook") == 0 ? "webhook" : cli_text(n->language, buf, sizeof(buf)));
        printf("  vps:           %s\n", cli_text(n->vps_id, t1, sizeof(t1)));
        printf("  created:       %s\n", time_or_dash(n->created, buf, sizeof(buf)));
        printf("  state:         %s\n", cli_text(n->state, t1, sizeof(t1)));
        printf("  attempts:      %u\n", n->attempts);
        printf("  next attempt:  %s\n", time_or_dash(pc_notification_next_attempt(n), buf, sizeof(buf)));
        printf("  sent at:       %s\n", time_or_dash(n->sent_at, buf, sizeof(buf)));
        printf("  message-id:    %s\n", cli_text(n->message_id[0] != '\0' ? n->message_id : "-", t2, sizeof(t2)));
        printf("  last error:    %s\n", cli_text(n->last_error[0] != '\0' ? n->last_error : "-", t2, sizeof(t2)));
        printf("payload:\n");
        if (payload != NULL) {
                char *text = json_dumps(payload, JSON_INDENT(2) | JSON_SORT_KEYS);

                print_lines(text != NULL ? text : "");
                free(text);
                json_decref(payload);
        } else
                print_lines(n->payload); /* not JSON: as stored */
}

static int notification_show(struct cli *c, int argc, char **argv)
{
        struct pc_notification n = { 0 };
        json_t *j, *payload;
        int64_t id;
        int r;

        if (argc != 2)
                return cli_usage_error("notification", "notification show takes one notification number");
        if (!parse_id(argv[1], &id))
                return cli_usage_error("notification", "'%s' is not a notification number", argv[1]);
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        if (pc_store_notification_get(c->store, id, &n) < 0) {
                cli_error("Failed to show notification #%" PRId64 ": %s", id, pc_store_errmsg(c->store));
                return CLI_ERROR;
        }
        if (!c->json) {
                show_text(&n);
                pc_notification_clear(&n);
                return CLI_OK;
        }
        j = pc_json_notification(&n);
        payload = json_loads(n.payload, 0, NULL);
        if (payload == NULL)
                payload = json_string(n.payload);
        if (j != NULL && json_object_set_new(j, "payload", payload != NULL ? payload : json_null()) < 0) {
                json_decref(j);
                j = NULL;
        }
        pc_notification_clear(&n);
        return cli_print_json(j);
}

static int notification_retry(struct cli *c, int argc, char **argv)
{
        static const struct option opts[] = {
                { "by", required_argument, NULL, 'b' },
                { "reason", required_argument, NULL, 'r' },
                { NULL, 0, NULL, 0 },
        };
        struct pc_notification n = { 0 };
        struct pc_actor who = { 0 };
        struct pc_ops_error err;
        struct pc_ops_actor actor;
        struct pc_ops o;
        int64_t id;
        int opt, r;

        optind = 0;
        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (opt) {
                case 'b': who.by = optarg; break;
                case 'r': who.reason = optarg; break;
                default: return cli_usage_error("notification", "bad option for notification retry");
                }
        }
        if (optind + 1 != argc)
                return cli_usage_error("notification", "notification retry takes one notification number");
        if (!parse_id(argv[optind], &id))
                return cli_usage_error("notification", "'%s' is not a notification number", argv[optind]);
        if (!cli_actor_valid("notification", who.by))
                return CLI_ERROR;
        if (who.reason == NULL || who.reason[0] == '\0')
                return cli_usage_error("notification",
                                       "--reason TEXT is required: the audit log says why it is sent again");
        if (!cli_text_valid("notification", "--reason", who.reason, CLI_REASON_SIZE))
                return CLI_ERROR;
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        o = cli_ops(c);
        actor = cli_ops_actor(who.by);
        if (pc_ops_notification_retry(&o, &actor, id, who.reason, &err) < 0)
                return cli_ops_error("notification", &err, "Failed to retry notification #%" PRId64, id);
        if (pc_store_notification_get(c->store, id, &n) < 0) {
                cli_error("Notification #%" PRId64 " was queued again, but reading it back failed: %s", id,
                          pc_store_errmsg(c->store));
                return CLI_ERROR;
        }
        if (c->json)
                r = cli_print_json(json_pack("{s:I, s:s, s:s, s:s, s:s}", "retried", (json_int_t)id, "vps",
                                             n.vps_id, "kind", n.kind, "recipient", n.recipient, "state",
                                             n.state));
        else {
                char t1[PC_ESCAPED_SIZE(256)], t2[PC_ESCAPED_SIZE(256)], t3[PC_ESCAPED_SIZE(256)];

                printf("notification #%" PRId64 " (%s for %s) queued again for %s, due now\n", id,
                       cli_text(n.kind, t1, sizeof(t1)), cli_text(n.vps_id, t2, sizeof(t2)),
                       cli_text(n.recipient, t3, sizeof(t3)));
                r = CLI_OK;
        }
        pc_notification_clear(&n);
        return r;
}

int cmd_notification(struct cli *c, int argc, char **argv)
{
        if (argc >= 2 && strcmp(argv[1], "list") == 0)
                return notification_list(c, argc - 1, argv + 1);
        if (argc >= 2 && strcmp(argv[1], "show") == 0)
                return notification_show(c, argc - 1, argv + 1);
        if (argc >= 2 && strcmp(argv[1], "retry") == 0)
                return notification_retry(c, argc - 1, argv + 1);
        if (argc < 2)
                return cli_usage_error("notification", "notification needs a subcommand: list, show or retry");
        return cli_usage_error("notification", "unknown notification subcommand '%s' (list, show, retry)",
                               argv[1]);
}
