/* portcullis incident list|show|close and action list|lift|extend|
 * make-permanent: support reviews the detectors' incidents and the filters
 * and suspensions placed for them (or by hand), and ends or changes them.
 *
 * Every rule (what may be lifted, extended, closed) lives in the store
 * (store.h); this file parses, prints and tells the agent. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"
#include "ops/ops_json.h"

int cmd_incident(struct cli *c, int argc, char **argv);
int cmd_action(struct cli *c, int argc, char **argv);

/* Options of the commands that change something. */
struct change {
        struct pc_actor who;
        const char *until;  /* action extend */
        bool lift_actions;  /* incident close */
};

/* Parses <s>, given as the <what> ("incident number") of <cmd>, into a
 * positive id; prints why not and returns false. */
static bool id_valid(const char *cmd, const char *what, const char *s, int64_t *ret)
{
        char *end;
        long long v = strtoll(s, &end, 10);

        if (s[0] == '\0' || *end != '\0' || v <= 0) {
                cli_usage_error(cmd, "'%s' is not an %s", s, what);
                return false;
        }
        *ret = v;
        return true;
}

/* Parses "SUB N --by WHO --reason TEXT" plus the options <sub> takes
 * (--until for extend, --lift-actions for close) into <ch> and <ret_id>. */
static int change_parse(const char *cmd, const char *sub, const char *what, int argc, char **argv,
                        struct change *ch, int64_t *ret_id)
{
        static const struct option opts[] = {
                { "by", required_argument, NULL, 'b' },    { "reason", required_argument, NULL, 'r' },
                { "until", required_argument, NULL, 'u' }, { "lift-actions", no_argument, NULL, 'l' },
                { "admin-override", no_argument, NULL, 'A' }, { NULL, 0, NULL, 0 },
        };
        bool extend = strcmp(sub, "extend") == 0, close = strcmp(sub, "close") == 0;
        int opt;

        memset(ch, 0, sizeof(*ch));
        optind = 0;
        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (opt) {
                case 'b': ch->who.by = optarg; break;
                case 'r': ch->who.reason = optarg; break;
                case 'u':
                        if (!extend)
                                return cli_usage_error(cmd, "--until is for `action extend` only");
                        ch->until = optarg;
                        break;
                case 'l':
                        if (!close)
                                return cli_usage_error(cmd, "--lift-actions is for `incident close` only");
                        ch->lift_actions = true;
                        break;
                case 'A':
                        /* No role model: an admin says so, and the audit log keeps who
                         * (vps.unterminate) -- see docs/DETECTION.md. */
                        if (strcmp(sub, "lift") != 0 && !close)
                                return cli_usage_error(cmd, "--admin-override is for `action lift` and `incident "
                                                            "close --lift-actions` only");
                        ch->who.admin_override = true;
                        break;
                default: return cli_usage_error(cmd, "bad option for %s %s", cmd, sub);
                }
        }
        if (optind + 1 != argc)
                return cli_usage_error(cmd, "%s %s takes exactly one %s", cmd, sub, what);
        if (!id_valid(cmd, what, argv[optind], ret_id))
                return CLI_ERROR;
        if (extend && ch->until == NULL)
                return cli_usage_error(cmd, "--until TIME is required: the filter's new end");
        if (!cli_actor_valid(cmd, ch->who.by))
                return CLI_ERROR;
        if (ch->who.reason == NULL || ch->who.reason[0] == '\0')
                return cli_usage_error(cmd, "--reason TEXT is required: the audit log says why");
        if (!cli_text_valid(cmd, "--reason", ch->who.reason, CLI_REASON_SIZE))
                return CLI_ERROR;
        return CLI_OK;
}

/* Checks that the VPS <id> named on the command line of <cmd> exists. */
static int vps_exists(struct cli *c, const char *cmd, const char *id)
{
        struct pc_vps *v = NULL;
        int r = pc_store_vps_fetch(c->store, c->cfg, id, &v);

        pc_vps_free(v);
        if (r == -ENOENT) {
                cli_error("%s: no VPS '%s' (see `portcullis vps list`)", cmd, id);
                return CLI_ERROR;
        }
        if (r < 0) {
                cli_error("Failed to read %s: %s", id, pc_store_errmsg(c->store));
                return CLI_ERROR;
        }
        return CLI_OK;
}

/* ---- incidents ------------------------------------------------------- */



struct incident_out {
        json_t *list;          /* --json */
        struct cli_table *t;   /* text */
};

static int incident_row(const struct pc_incident *i, void *userdata)
{
        struct incident_out *o = userdata;
        char id[24], first[32], last[32], count[24], actions[24];

        if (o->list != NULL)
                return json_array_append_new(o->list, pc_json_incident(i)) < 0 ? -ENOMEM : 0;
        snprintf(id, sizeof(id), "%" PRId64, i->id);
        pc_format_time(i->first_seen, first, sizeof(first));
        pc_format_time(i->last_seen, last, sizeof(last));
        snprintf(count, sizeof(count), "%" PRIu64, i->count);
        snprintf(actions, sizeof(actions), "%zu", i->actions);
        cli_table_add(o->t, id, i->vps_id, i->kind, i->open ? "open" : "closed", first, last, count, actions);
        return 0;
}

static int incident_list(struct cli *c, int argc, char **argv)
{
        static const struct option opts[] = {
                { "open", no_argument, NULL, 'o' }, { "all", no_argument, NULL, 'a' },
                { "kind", required_argument, NULL, 'k' }, { NULL, 0, NULL, 0 },
        };
        static const char *const headers[] = { "ID", "VPS", "KIND", "STATE", "FIRST SEEN", "LAST SEEN", "COUNT",
                                               "ACTIONS" };
        struct incident_out o = { 0 };
        const char *kind = NULL, *vps = NULL;
        bool all = false, open = false;
        int opt, r;

        optind = 0;
        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (opt) {
                case 'o': open = true; break;
                case 'a': all = true; break;
                case 'k': kind = optarg; break;
                default: return cli_usage_error("incident", "bad option for incident list");
                }
        }
        if (open && all)
                return cli_usage_error("incident", "--open and --all exclude each other");
        if (optind + 1 < argc)
                return cli_usage_error("incident", "incident list takes at most one VPS id");
        if (optind < argc)
                vps = argv[optind];
        if (kind != NULL && !pc_name_valid(kind))
                return cli_usage_error("incident", "--kind '%s' is not a kind (scan, spam, spoof, ...)", kind);
        r = cli_store(c);
        if (r == CLI_OK && vps != NULL)
                r = vps_exists(c, "incident list", vps);
        if (r != CLI_OK)
                return r;
        if (c->json)
                o.list = json_array();
        else
                o.t = cli_table_new(8, headers);
        r = pc_store_incident_list(c->store, vps, kind, !all, 0, incident_row, &o);
        if (r < 0) {
                json_decref(o.list);
                cli_table_free(o.t);
                cli_error("Failed to list incidents: %s", r == -ENOMEM ? "out of memory" : pc_store_errmsg(c->store));
                return CLI_ERROR;
        }
        if (c->json)
                return cli_print_json(json_pack("{s:o}", "incidents", o.list));
        cli_table_print(o.t);
        cli_table_free(o.t);
        return CLI_OK;
}

/* ---- actions --------------------------------------------------------- */


struct action_out {
        json_t *list;
        struct cli_table *t;
        int64_t now;
};

static const char *const action_headers[] = { "ID", "VPS", "KIND", "DIRECTION", "SCOPE", "INCIDENT",
                                              "STATE", "UNTIL", "BY", "REASON" };

static int action_row(const struct pc_store_action *a, void *userdata)
{
        struct action_out *o = userdata;
        char id[24], incident[24] = "-", until[32] = "no end";

        if (o->list != NULL)
                return json_array_append_new(o->list, pc_json_action(a, o->now)) < 0 ? -ENOMEM : 0;
        snprintf(id, sizeof(id), "%" PRId64, a->id);
        if (a->incident_id != 0)
                snprintf(incident, sizeof(incident), "%" PRId64, a->incident_id);
        if (a->until != 0)
                pc_format_time(a->until, until, sizeof(until));
        cli_table_add(o->t, id, a->vps_id, a->terminated ? "termination" : a->kind, a->direction, a->scope, incident,
                      pc_store_action_state(a, o->now), until, a->by, a->reason);
        return 0;
}

/* Lists the actions of <vps> (NULL: all) and <incident> (0: any) into a
 * new JSON array (--json) or prints them as a table. */
static int actions_out(struct cli *c, const char *vps, int64_t incident, bool active, json_t **ret_list)
{
        struct action_out o = { .now = pc_now() };
        int r;

        if (ret_list != NULL)
                o.list = json_array();
        else
                o.t = cli_table_new(10, action_headers);
        r = pc_store_action_list(c->store, vps, incident, active, o.now, 0, action_row, &o);
        if (r < 0) {
                json_decref(o.list);
                cli_table_free(o.t);
                cli_error("Failed to list actions: %s", r == -ENOMEM ? "out of memory" : pc_store_errmsg(c->store));
                return CLI_ERROR;
        }
        if (ret_list != NULL) {
                *ret_list = o.list;
                return CLI_OK;
        }
        cli_table_print(o.t);
        cli_table_free(o.t);
        return CLI_OK;
}

static int incident_copy(const struct pc_incident *i, void *userdata)
{
        json_t **ret = userdata;

        *ret = pc_json_incident(i);
        return *ret != NULL ? 0 : -ENOMEM;
}

/* Reads incident <id> as JSON (incident_json) into *<ret>, or prints why
 * not. */
static int incident_fetch(struct cli *c, const char *cmd, int64_t id, json_t **ret)
{
        int r = pc_store_incident_get(c->store, id, incident_copy, ret);

        if (r < 0) {
                cli_error("%s: %s", cmd, r == -ENOMEM ? "out of memory" : pc_store_errmsg(c->store));
                return CLI_ERROR;
        }
        return CLI_OK;
}

static int incident_show(struct cli *c, int argc, char **argv)
{
        json_t *inc = NULL, *acts = NULL;
        char buf[4096];
        int64_t id;
        int r;

        if (argc != 2)
                return cli_usage_error("incident", "incident show takes exactly one incident number");
        if (!id_valid("incident", "incident number", argv[1], &id))
                return CLI_ERROR;
        r = cli_store(c);
        if (r == CLI_OK)
                r = incident_fetch(c, "incident show", id, &inc);
        if (r != CLI_OK)
                return r;
        if (c->json) {
                r = actions_out(c, NULL, id, false, &acts);
                if (r != CLI_OK) {
                        json_decref(inc);
                        return r;
                }
                json_object_set_new(inc, "actions", acts);
                return cli_print_json(inc);
        }
        printf("incident #%" PRId64 ": %s by %s (%s)\n", id,
               cli_text(json_string_value(json_object_get(inc, "kind")), buf, sizeof(buf)),
               json_string_value(json_object_get(inc, "vps")), json_string_value(json_object_get(inc, "state")));
        printf("  first seen  %s\n", json_string_value(json_object_get(inc, "first_seen")));
        printf("  last seen   %s\n", json_string_value(json_object_get(inc, "last_seen")));
        printf("  count       %" JSON_INTEGER_FORMAT "\n", json_integer_value(json_object_get(inc, "count")));
        {
                json_t *ev = json_object_get(inc, "evidence");
                char *text = json_is_null(ev) ? NULL : json_dumps(ev, JSON_COMPACT | JSON_ENCODE_ANY);

                printf("  evidence    %s\n", text != NULL ? cli_text(text, buf, sizeof(buf)) : "none");
                free(text);
        }
        json_decref(inc);
        printf("actions:\n");
        return actions_out(c, NULL, id, false, NULL);
}

static int incident_close(struct cli *c, int argc, char **argv)
{
        struct change ch;
        json_t *inc = NULL, *out;
        char vps[PC_NAME_MAX], text[256];
        struct pc_ops_error err;
        struct pc_ops_actor who;
        struct pc_ops o;
        size_t lifted = 0;
        int64_t id;
        int r = change_parse("incident", "close", "incident number", argc, argv, &ch, &id);

        if (r == CLI_OK)
                r = cli_store(c);
        if (r == CLI_OK)
                r = incident_fetch(c, "incident close", id, &inc);
        if (r != CLI_OK)
                return r;
        snprintf(vps, sizeof(vps), "%s", json_string_value(json_object_get(inc, "vps")));
        json_decref(inc);
        o = cli_ops(c);
        who = cli_ops_actor(ch.who.by);
        if (pc_ops_incident_close(&o, &who, id, ch.lift_actions, ch.who.reason, ch.who.admin_override, &lifted,
                                  &err) < 0)
                return cli_ops_error("incident", &err, "Failed to close incident #%" PRId64, id);
        out = json_pack("{s:I, s:s, s:I}", "closed", (json_int_t)id, "vps", vps, "lifted", (json_int_t)lifted);
        if (lifted == 0) {
                /* Nothing the kernel enforces changed: no agent to tell. */
                if (c->json)
                        return cli_print_json(out);
                json_decref(out);
                printf("closed incident #%" PRId64 " of %s; its actions stay in force%s\n", id, vps,
                       ch.lift_actions ? " (none was active)" : "");
                return CLI_OK;
        }
        snprintf(text, sizeof(text), "closed incident #%" PRId64 " of %s and lifted %zu action%s; the owner will be emailed",
                 id, vps, lifted, lifted == 1 ? "" : "s");
        return cli_change_done(c, vps, out, text);
}

int cmd_incident(struct cli *c, int argc, char **argv)
{
        if (argc < 2)
                return cli_usage_error("incident", "incident needs a subcommand: list, show or close");
        if (strcmp(argv[1], "list") == 0)
                return incident_list(c, argc - 1, argv + 1);
        if (strcmp(argv[1], "show") == 0)
                return incident_show(c, argc - 1, argv + 1);
        if (strcmp(argv[1], "close") == 0)
                return incident_close(c, argc - 1, argv + 1);
        return cli_usage_error("incident", "unknown incident subcommand '%s'", argv[1]);
}

static int action_list(struct cli *c, int argc, char **argv)
{
        static const struct option opts[] = {
                { "active", no_argument, NULL, 'a' },
                { NULL, 0, NULL, 0 },
        };
        const char *vps = NULL;
        bool active = false;
        json_t *list = NULL;
        int opt, r;

        optind = 0;
        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (opt) {
                case 'a': active = true; break;
                default: return cli_usage_error("action", "bad option for action list");
                }
        }
        if (optind + 1 < argc)
                return cli_usage_error("action", "action list takes at most one VPS id");
        if (optind < argc)
                vps = argv[optind];
        r = cli_store(c);
        if (r == CLI_OK && vps != NULL)
                r = vps_exists(c, "action list", vps);
        if (r != CLI_OK)
                return r;
        r = actions_out(c, vps, 0, active, c->json ? &list : NULL);
        if (r != CLI_OK || !c->json)
                return r;
        return cli_print_json(json_pack("{s:o}", "actions", list));
}

/* action lift | extend | make-permanent N. */
static int action_change(struct cli *c, int argc, char **argv)
{
        const char *sub = argv[0];
        struct pc_store_action a;
        struct pc_ops_error err;
        struct pc_ops_actor who;
        struct pc_ops o;
        struct change ch;
        char text[256], until_s[32];
        int64_t id, until = 0, now = pc_now();
        json_t *out;
        int r = change_parse("action", sub, "action number", argc, argv, &ch, &id);

        if (r != CLI_OK)
                return r;
        if (ch.until != NULL && !cli_until_valid("action", ch.until, now, &until))
                return CLI_ERROR;
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        if (pc_store_action_get(c->store, id, &a) < 0) {
                cli_error("action %s: %s", sub, pc_store_errmsg(c->store));
                return CLI_ERROR;
        }
        o = cli_ops(c);
        who = cli_ops_actor(ch.who.by);
        r = strcmp(sub, "lift") == 0
                    ? pc_ops_action_lift(&o, &who, id, ch.who.reason, ch.who.admin_override, NULL, &err)
                    : pc_ops_action_set_until(&o, &who, id, until, ch.who.reason, NULL, &err);
        if (r < 0)
                return cli_ops_error("action", &err, "Failed to %s action #%" PRId64 " of %s", sub, id, a.vps_id);
        if (strcmp(sub, "lift") == 0) {
                snprintf(text, sizeof(text), "lifted %s #%" PRId64 " of %s; the owner will be emailed", a.kind, id,
                         a.vps_id);
                out = json_pack("{s:I, s:s, s:s}", "lifted", (json_int_t)id, "vps", a.vps_id, "kind", a.kind);
        } else if (until != 0) {
                pc_format_time(until, until_s, sizeof(until_s));
                snprintf(text, sizeof(text), "filter #%" PRId64 " of %s now ends at %s", id, a.vps_id, until_s);
                out = json_pack("{s:I, s:s, s:s}", "extended", (json_int_t)id, "vps", a.vps_id, "until", until_s);
        } else {
                snprintf(text, sizeof(text), "filter #%" PRId64 " of %s is now permanent (no end)", id, a.vps_id);
                out = json_pack("{s:I, s:s, s:n}", "permanent", (json_int_t)id, "vps", a.vps_id, "until");
        }
        return cli_change_done(c, a.vps_id, out, text);
}

int cmd_action(struct cli *c, int argc, char **argv)
{
        if (argc < 2)
                return cli_usage_error("action", "action needs a subcommand: list, lift, extend or make-permanent");
        if (strcmp(argv[1], "list") == 0)
                return action_list(c, argc - 1, argv + 1);
        if (strcmp(argv[1], "lift") == 0 || strcmp(argv[1], "extend") == 0 ||
            strcmp(argv[1], "make-permanent") == 0)
                return action_change(c, argc - 1, argv + 1);
        return cli_usage_error("action", "unknown action subcommand '%s'", argv[1]);
}
