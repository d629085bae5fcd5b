/* portcullis vps add | update | move | depart | start | stop | remove | list | show */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cli.h"
#include "dataplane/dataplane.h"
#include "ops/ops_json.h"

int cmd_vps(struct cli *c, int argc, char **argv);

/* The login name of the user running the command, for the audit log. */
static const char *default_actor(void)
{
        const char *sudo = getenv("SUDO_USER");
        struct passwd *pw;

        if (sudo != NULL && pc_name_valid(sudo))
                return sudo;
        pw = getpwuid(getuid());
        if (pw != NULL && pc_name_valid(pw->pw_name))
                return pw->pw_name;
        return "unknown";
}

/* Parses one --addr: an address or a prefix without host bits. */
static int parse_addr(const char *arg, struct pc_prefix *ret)
{
        char buf[64];

        if (pc_parse_prefix(arg, false, ret) == 0)
                return CLI_OK;
        if (pc_parse_prefix(arg, true, ret) == 0) {
                pc_format_prefix(ret, buf, sizeof(buf));
                return cli_usage_error("vps", "--addr %s has host bits set beyond the prefix length (the network is %s)",
                                       arg, buf);
        }
        return cli_usage_error("vps", "--addr '%s' is not an IPv4 or IPv6 address or prefix (e.g. 203.0.113.10, 2001:db8:1::/64)",
                               arg);
}

/* Parses the options of `vps add` or, without the registration-only
 * --owner, --site and --lang, of `vps update` (<sub>) into <spec>; the
 * rules are the operation's. */
static int vps_parse(const char *sub, int argc, char **argv, struct pc_vps_spec *spec, struct pc_prefix *addrs,
                     uint8_t *mac, const char **by, const char **reason)
{
        static const struct option opts[] = {
                { "owner", required_argument, NULL, 'o' }, { "iface", required_argument, NULL, 'i' },
                { "addr", required_argument, NULL, 'a' },  { "address", required_argument, NULL, 'a' },
                { "mac", required_argument, NULL, 'm' },   { "site", required_argument, NULL, 's' },
                { "lang", required_argument, NULL, 'l' },  { "by", required_argument, NULL, 'b' },
                { "reason", required_argument, NULL, 'r' }, { "host", required_argument, NULL, 'H' },
                { NULL, 0, NULL, 0 },
        };
        bool update = strcmp(sub, "update") == 0;
        int opt, index;

        optind = 0;
        while ((opt = getopt_long(argc, argv, "", opts, &index)) != -1) {
                /* Who owns it and where it is stay as registered: a change
                 * of either is a removal and a new registration. */
                if (update && (opt == 'o' || opt == 's' || opt == 'l'))
                        return cli_usage_error("vps",
                                               "--%s is not an option of vps update: the owner, site and language "
                                               "stay as registered (vps remove, then vps add)",
                                               opts[index].name);
                if (update && opt == 'H')
                        return cli_usage_error("vps", "--host is not an option of vps update: vps move ID --host H "
                                                      "moves a VPS to another hypervisor");
                switch (opt) {
                case 'H': spec->host = optarg; break;
                case 'o': spec->owner = optarg; break;
                case 'i': spec->iface = optarg; break;
                case 's': spec->site = optarg; break;
                case 'l': spec->lang = optarg; break;
                case 'b': *by = optarg; break;
                case 'r': *reason = optarg; break;
                case 'm':
                        if (pc_parse_mac(optarg, mac) < 0)
                                return cli_usage_error("vps", "--mac '%s' is not a unicast MAC address (aa:bb:cc:dd:ee:ff)",
                                                       optarg);
                        spec->mac = mac;
                        break;
                case 'a':
                        if (spec->n_addrs == PC_VPS_ADDRS_MAX)
                                return cli_usage_error("vps", "too many --addr (at most %d)", PC_VPS_ADDRS_MAX);
                        if (parse_addr(optarg, &addrs[spec->n_addrs]) != CLI_OK)
                                return CLI_ERROR;
                        spec->n_addrs++;
                        break;
                default:
                        return cli_usage_error("vps", "bad option for vps %s", sub);
                }
        }
        if (optind + 2 != argc)
                return cli_usage_error("vps", "vps %s takes exactly one ID", sub);
        spec->id = argv[optind + 1];
        if (!pc_name_valid(*by))
                return cli_usage_error("vps", "--by '%s' is not a valid name", *by);
        return CLI_OK;
}

static int vps_add(struct cli *c, int argc, char **argv)
{
        struct pc_prefix addrs[PC_VPS_ADDRS_MAX];
        struct pc_vps_spec spec = { .addrs = addrs };
        const char *by = default_actor(), *reason = NULL;
        const struct pc_site *site;
        struct pc_ops_error err;
        struct pc_ops_actor who;
        struct pc_ops o;
        uint8_t mac[6];
        int r;

        r = vps_parse("add", argc, argv, &spec, addrs, mac, &by, &reason);
        if (r == CLI_OK)
                r = cli_store(c);
        if (r != CLI_OK)
                return r;
        /* On a hypervisor of a fleet, a new VPS is this host's. */
        if (spec.host == NULL && c->cfg != NULL && c->cfg->agent.host[0] != '\0')
                spec.host = c->cfg->agent.host;
        o = cli_ops(c);
        who = cli_ops_actor(by);
        if (pc_ops_vps_register(&o, &who, &spec, reason, &site, &err) < 0)
                return cli_ops_error("vps", &err, "Failed to add %s", spec.id);
        if (c->json) {
                json_t *out = json_pack("{s:s, s:s, s:s}", "added", spec.id, "site", site->name, "policy",
                                        site->policy->name);

                r = cli_agent_sync(c, spec.id, out);
                cli_print_json(out);
                return r;
        }
        printf("added %s at site %s (policy %s)\n", spec.id, site->name, site->policy->name);
        return cli_agent_sync(c, spec.id, NULL);
}

static int vps_remove(struct cli *c, int argc, char **argv)
{
        static const struct option opts[] = {
                { "by", required_argument, NULL, 'b' },
                { "reason", required_argument, NULL, 'r' },
                { "admin-override", no_argument, NULL, 'A' },
                { NULL, 0, NULL, 0 },
        };
        const char *by = default_actor(), *reason = NULL;
        bool admin_override = false;
        struct pc_ops_error err;
        struct pc_ops_actor who;
        struct pc_ops o;
        int opt, r;

        optind = 0;
        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                if (opt == 'b')
                        by = optarg;
                else if (opt == 'r')
                        reason = optarg;
                else if (opt == 'A')
                        admin_override = true; /* a terminated VPS: audited as vps.remove by who */
                else
                        return cli_usage_error("vps", "bad option for vps remove");
        }
        if (optind + 2 != argc)
                return cli_usage_error("vps", "vps remove takes exactly one ID");
        if (!pc_name_valid(by))
                return cli_usage_error("vps", "--by '%s' is not a valid name", by);
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        o = cli_ops(c);
        who = cli_ops_actor(by);
        if (pc_ops_vps_remove(&o, &who, argv[optind + 1], reason, admin_override, &err) < 0)
                return cli_ops_error("vps", &err, "Failed to remove %s", argv[optind + 1]);
        if (c->json) {
                json_t *out = json_pack("{s:s}", "removed", argv[optind + 1]);

                r = cli_agent_sync(c, argv[optind + 1], out);
                cli_print_json(out);
                return r;
        }
        printf("removed %s\n", argv[optind + 1]);
        return cli_agent_sync(c, argv[optind + 1], NULL);
}

static json_t *addrs_json(const struct pc_vps *v)
{
        json_t *a = json_array();
        char buf[64];

        for (size_t i = 0; i < v->n_addrs; i++) {
                pc_format_prefix(&v->addrs[i], buf, sizeof(buf));
                json_array_append_new(a, json_string(buf));
        }
        return a;
}

static void addrs_text(const struct pc_vps *v, char *out, size_t size)
{
        size_t len = 0;
        char buf[64];

        out[0] = '\0';
        for (size_t i = 0; i < v->n_addrs && len < size; i++) {
                pc_format_prefix(&v->addrs[i], buf, sizeof(buf));
                len += snprintf(out + len, size - len, "%s%s", i > 0 ? " " : "", buf);
        }
}

/* `vps update`: what the VM manager changed (addresses, interface, MAC). */
static int vps_update(struct cli *c, int argc, char **argv)
{
        struct pc_prefix addrs[PC_VPS_ADDRS_MAX];
        struct pc_vps_spec spec = { .addrs = addrs };
        struct pc_vps_change change;
        const char *by = default_actor(), *reason = NULL;
        char text[1024], buf[768], mac[24] = "";
        struct pc_ops_error err;
        struct pc_ops_actor who;
        struct pc_vps *v = NULL;
        bool changed = false;
        struct pc_ops o;
        uint8_t newmac[6];
        json_t *out;
        int r;

        r = vps_parse("update", argc, argv, &spec, addrs, newmac, &by, &reason);
        if (r != CLI_OK)
                return r;
        if (spec.iface == NULL && spec.mac == NULL && spec.n_addrs == 0)
                return cli_usage_error("vps", "vps update needs what changes: --addr (every address, replacing "
                                              "the list), --iface or --mac");
        change = (struct pc_vps_change){ .id = spec.id, .iface = spec.iface, .mac = spec.mac,
                                         .addrs = spec.n_addrs > 0 ? addrs : NULL, .n_addrs = spec.n_addrs };
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        o = cli_ops(c);
        who = cli_ops_actor(by);
        if (pc_ops_vps_update(&o, &who, &change, reason, &changed, &err) < 0)
                return cli_ops_error("vps", &err, "Failed to update %s", spec.id);
        if (pc_ops_vps_fetch(&o, &who, spec.id, &v, &err) < 0) {
                cli_error("%s is updated, but reading it back failed: %s", spec.id, err.message);
                return CLI_ERROR;
        }
        if (v->has_mac)
                pc_format_mac(v->mac, mac, sizeof(mac));
        addrs_text(v, buf, sizeof(buf));
        out = json_pack("{s:s, s:b, s:s, s:s, s:s, s:s, s:s?, s:o, s:s}", "updated", v->id, "changed", changed,
                        "site", v->site->name, "owner", v->owner, "lang", v->lang, "iface", v->iface, "mac",
                        v->has_mac ? mac : NULL, "addresses", addrs_json(v), "run_state", pc_vps_run_state_name(v));
        snprintf(text, sizeof(text), "%s %s: interface %s%s%s, addresses %s", changed ? "updated" : "unchanged",
                 v->id, v->iface, v->has_mac ? ", MAC " : "", mac, buf);
        pc_vps_free(v);
        /* Nothing changed, nothing to enforce: a hook's every start. */
        if (!changed) {
                if (c->json)
                        return cli_print_json(out);
                json_decref(out);
                printf("%s\n", text);
                return CLI_OK;
        }
        return cli_change_done(c, spec.id, out, text);
}

/* `vps move ID --host H [--iface IF]`: to another hypervisor. */
static int vps_move(struct cli *c, int argc, char **argv)
{
        static const struct option opts[] = {
                { "host", required_argument, NULL, 'H' }, { "iface", required_argument, NULL, 'i' },
                { "by", required_argument, NULL, 'b' },   { "reason", required_argument, NULL, 'r' },
                { NULL, 0, NULL, 0 },
        };
        const char *by = default_actor(), *reason = NULL, *host = NULL, *iface = NULL, *id;
        struct pc_ops_error err;
        struct pc_ops_actor who;
        struct pc_vps *v = NULL;
        bool changed = false;
        char text[512];
        struct pc_ops o;
        json_t *out;
        int opt, r;

        optind = 0;
        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (opt) {
                case 'H': host = optarg; break;
                case 'i': iface = optarg; break;
                case 'b': by = optarg; break;
                case 'r': reason = optarg; break;
                default: return cli_usage_error("vps", "bad option for vps move");
                }
        }
        if (optind + 2 != argc)
                return cli_usage_error("vps", "vps move takes exactly one ID");
        if (host == NULL)
                return cli_usage_error("vps", "vps move needs --host H: the hypervisor the VPS now runs on");
        if (!pc_name_valid(by))
                return cli_usage_error("vps", "--by '%s' is not a valid name", by);
        id = argv[optind + 1];
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        o = cli_ops(c);
        who = cli_ops_actor(by);
        if (pc_ops_vps_move(&o, &who, id, host, iface, reason, &changed, &err) < 0)
                return cli_ops_error("vps", &err, "Failed to move %s", id);
        if (pc_ops_vps_fetch(&o, &who, id, &v, &err) < 0) {
                cli_error("%s is moved, but reading it back failed: %s", id, err.message);
                return CLI_ERROR;
        }
        out = json_pack("{s:s, s:b, s:s?, s:s?, s:s?, s:s}", "moved", v->id, "changed", changed, "host",
                        v->host[0] != '\0' ? v->host : NULL, "moving_from",
                        v->moving_from[0] != '\0' ? v->moving_from : NULL, "departing_from",
                        v->departing_from[0] != '\0' ? v->departing_from : NULL, "iface", v->iface);
        if (!changed)
                snprintf(text, sizeof(text), "unchanged %s: it is on %s, interface %s", v->id,
                         v->host[0] != '\0' ? v->host : "(no host)", v->iface);
        else if (v->departing_from[0] != '\0' && strcmp(v->departing_from, v->moving_from) == 0)
                snprintf(text, sizeof(text), "moved %s to %s, interface %s (%s enforces it until %s does, and "
                         "confirms the move once the VM has left it)", v->id,
                         v->host[0] != '\0' ? v->host : "(no host)", v->iface, v->departing_from,
                         v->host[0] != '\0' ? v->host : "the new host");
        else if (v->moving_from[0] != '\0')
                snprintf(text, sizeof(text), "moved %s to %s, interface %s (%s enforces it until %s does)", v->id,
                         v->host[0] != '\0' ? v->host : "(no host)", v->iface, v->moving_from,
                         v->host[0] != '\0' ? v->host : "the new host");
        else
                snprintf(text, sizeof(text), "moved %s to %s, interface %s", v->id,
                         v->host[0] != '\0' ? v->host : "(no host)", v->iface);
        pc_vps_free(v);
        if (!changed) {
                if (c->json)
                        return cli_print_json(out);
                json_decref(out);
                printf("%s\n", text);
                return CLI_OK;
        }
        return cli_change_done(c, id, out, text);
}

/* `vps VERB ID [--by WHO] [--reason TEXT]`: the options and the one ID
 * (*id), or the usage error's exit status. */
static int by_reason_args(int argc, char **argv, const char *verb, const char **by, const char **reason,
                          const char **id)
{
        static const struct option opts[] = {
                { "by", required_argument, NULL, 'b' },
                { "reason", required_argument, NULL, 'r' },
                { NULL, 0, NULL, 0 },
        };
        int opt;

        optind = 0;
        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                if (opt == 'b')
                        *by = optarg;
                else if (opt == 'r')
                        *reason = optarg;
                else
                        return cli_usage_error("vps", "bad option for vps %s", verb);
        }
        if (optind + 2 != argc)
                return cli_usage_error("vps", "vps %s takes exactly one ID", verb);
        if (!pc_name_valid(*by))
                return cli_usage_error("vps", "--by '%s' is not a valid name", *by);
        *id = argv[optind + 1];
        return CLI_OK;
}

/* `vps depart ID --reason TEXT`: the admin confirms a move away from a
 * host whose agent cannot (dead, or started without the VM).  Exits 1 if
 * there is no move to confirm, 2 on any other error. */
static int vps_depart(struct cli *c, int argc, char **argv)
{
        const char *by = default_actor(), *reason = NULL, *id;
        char from[PC_NAME_MAX], text[512];
        struct pc_ops_error err;
        struct pc_ops_actor who;
        struct pc_vps *v = NULL;
        struct pc_ops o;
        json_t *out;
        int r;

        r = by_reason_args(argc, argv, "depart", &by, &reason, &id);
        if (r != CLI_OK)
                return r;
        if (reason == NULL)
                return cli_usage_error("vps", "vps depart needs --reason TEXT: how you know that the VM left the "
                                              "host it departs from (its agent would have seen it)");
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        o = cli_ops(c);
        who = cli_ops_actor(by);
        if (pc_ops_vps_depart(&o, &who, id, reason, from, &err) < 0) {
                r = cli_ops_error("vps", &err, "Failed to confirm that %s left its old host", id);
                /* Nothing to confirm is an answer, not a failure. */
                return err.code == PC_OPS_ECONFLICT ? CLI_NO : r;
        }
        if (pc_ops_vps_fetch(&o, &who, id, &v, &err) < 0) {
                cli_error("%s's departure from %s is confirmed, but reading it back failed: %s", id, from,
                          err.message);
                return CLI_ERROR;
        }
        out = json_pack("{s:s, s:s, s:s?, s:s?}", "departed", v->id, "from", from, "host",
                        v->host[0] != '\0' ? v->host : NULL, "moving_from",
                        v->moving_from[0] != '\0' ? v->moving_from : NULL);
        snprintf(text, sizeof(text), "confirmed that %s left %s (vps.depart by %s): it runs on %s%s%s", v->id, from,
                 by, v->host[0] != '\0' ? v->host : "(no host)",
                 v->moving_from[0] != '\0' ? ", which does not enforce it yet; still enforced by " : "",
                 v->moving_from);
        pc_vps_free(v);
        return cli_change_done(c, id, out, text);
}

/* `vps start` and `vps stop`: what the VM manager says of the VM. */
static int vps_run(struct cli *c, int argc, char **argv)
{
        /* The verb before getopt_long moves the options ahead of it. */
        const char *by = default_actor(), *reason = NULL, *id, *verb = argv[1];
        bool running = strcmp(verb, "start") == 0, changed = false;
        struct pc_ops_error err;
        struct pc_ops_actor who;
        struct pc_ops o;
        char text[256];
        json_t *out;
        int r;

        r = by_reason_args(argc, argv, verb, &by, &reason, &id);
        if (r != CLI_OK)
                return r;
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        o = cli_ops(c);
        who = cli_ops_actor(by);
        if (pc_ops_vps_set_state(&o, &who, id, running, reason, &changed, &err) < 0)
                return cli_ops_error("vps", &err, "Failed to %s %s", verb, id);
        out = json_pack("{s:s, s:s, s:b}", "vps", id, "run_state", running ? "running" : "stopped", "changed",
                        changed);
        if (!changed) {
                if (c->json)
                        return cli_print_json(out);
                json_decref(out);
                printf("%s was %s already\n", id, running ? "running" : "stopped");
                return CLI_OK;
        }
        snprintf(text, sizeof(text), running ? "%s is running" : "%s is stopped; its policy stays in force", id);
        return cli_change_done(c, id, out, text);
}

static const char *vps_state(const struct pc_vps *v)
{
        return v->suspended && v->suspension.terminated ? "terminated"
               : v->suspended                           ? "suspended"
               : pc_vps_real_filters(v) > 0             ? "filtered"
                                                        : "active";
}

static int cmp_vps(const void *a, const void *b)
{
        return strcmp((*(const struct pc_vps *const *)a)->id, (*(const struct pc_vps *const *)b)->id);
}

static int vps_list(struct cli *c, int argc, char **argv)
{
        const struct pc_vps **sorted;
        size_t n;
        int r;

        if (argc != 2)
                return cli_usage_error("vps", "vps list takes no arguments");
        r = cli_model(c);
        if (r != CLI_OK)
                return r;
        n = pc_model_count(c->model);
        sorted = calloc(n + 1, sizeof(*sorted));
        if (sorted == NULL)
                return CLI_ERROR;
        for (size_t i = 0; i < n; i++)
                sorted[i] = pc_model_at(c->model, i);
        qsort(sorted, n, sizeof(*sorted), cmp_vps);
        if (c->json) {
                json_t *list = json_array();

                for (size_t i = 0; i < n; i++) {
                        const struct pc_vps *v = sorted[i];
                        json_t *o;

                        o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:i, s:i}", "id", v->id, "site",
                                      v->site->name, "owner", v->owner, "lang", v->lang, "iface", v->iface,
                                      "addresses", addrs_json(v), "state", vps_state(v), "run_state",
                                      pc_vps_run_state_name(v), "exceptions", (int)v->n_exceptions, "filters",
                                      (int)pc_vps_real_filters(v));
                        /* Only in a fleet, as the VPS's object has them. */
                        if (o != NULL && v->host[0] != '\0')
                                json_object_set_new(o, "host", json_string(v->host));
                        if (o != NULL && v->moving_from[0] != '\0')
                                json_object_set_new(o, "moving_from", json_string(v->moving_from));
                        if (o != NULL && v->departing_from[0] != '\0')
                                json_object_set_new(o, "departing_from", json_string(v->departing_from));
                        json_array_append_new(list, o);
                }
                free(sorted);
                return cli_print_json(json_pack("{s:o}", "vps", list));
        } else {
                static const char *const headers[] = { "ID", "SITE", "IFACE", "STATE", "RUN", "EXC", "FILT",
                                                       "OWNER", "ADDRESSES" };
                struct cli_table *t = cli_table_new(9, headers);

                for (size_t i = 0; i < n; i++) {
                        const struct pc_vps *v = sorted[i];
                        char addrs[1024], ne[16], nf[16], state[160];

                        addrs_text(v, addrs, sizeof(addrs));
                        /* A move its old host has not confirmed: a pull may be a claim. */
                        if (v->departing_from[0] != '\0')
                                snprintf(state, sizeof(state), "%s, moved from %s, not confirmed by %s", vps_state(v),
                                         v->departing_from, v->departing_from);
                        else
                                snprintf(state, sizeof(state), "%s", vps_state(v));
                        snprintf(ne, sizeof(ne), "%zu", v->n_exceptions);
                        snprintf(nf, sizeof(nf), "%zu", pc_vps_real_filters(v));
                        cli_table_add(t, v->id, v->site->name, v->iface, state, pc_vps_run_state_name(v), ne, nf,
                                      v->owner, addrs);
                }
                cli_table_print(t);
                cli_table_free(t);
        }
        free(sorted);
        return CLI_OK;
}

static int ticket_json_cb(const struct pc_ticket *t, void *userdata)
{
        json_array_append_new(userdata, json_pack("{s:I, s:s, s:s, s:s, s:o, s:s}", "id", (json_int_t)t->id,
                                                  "service", t->service, "state",
                                                  pc_ticket_state_name(t->state), "opened_by", t->opened_by,
                                                  "opened", cli_time_json(t->opened), "text", t->text));
        return 0;
}

struct attempts_ctx {
        const char *iface;
        json_t *list;
};

static int attempts_cb(const struct pc_dp_attempt *a, void *userdata)
{
        struct attempts_ctx *ctx = userdata;
        char t[32];

        if (strcmp(a->iface, ctx->iface) != 0)
                return 0;
        pc_format_time(a->last_seen, t, sizeof(t));
        json_array_append_new(ctx->list, json_pack("{s:s, s:i, s:s, s:I, s:s, s:I}", "proto", pc_proto_name(a->proto),
                                                   "port", (int)a->port, "direction", pc_dir_name(a->dir), "packets",
                                                   (json_int_t)a->packets, "last_seen", t, "last_seen_unix",
                                                   (json_int_t)a->last_seen));
        return 0;
}

static int spoofed_cb(const struct pc_dp_spoofed *x, void *userdata)
{
        struct attempts_ctx *ctx = userdata;
        char t[32];

        if (strcmp(x->iface, ctx->iface) != 0)
                return 0;
        pc_format_time(x->last_seen, t, sizeof(t));
        json_array_append_new(ctx->list, json_pack("{s:s, s:s, s:I, s:s, s:I}", "kind", "spoofing", "family",
                                                   x->family == AF_INET ? "ipv4" : "ipv6", "packets",
                                                   (json_int_t)x->packets, "last_seen", t, "last_seen_unix",
                                                   (json_int_t)x->last_seen));
        return 0;
}

/* The SMTP proxy's figures for <v>, as the agent last read them; NULL if
 * the agent does not answer or the proxy has seen no mail from <v>. */
static json_t *vps_mail(struct cli *c, const struct pc_vps *v)
{
        char request[96];
        json_t *reply = NULL, *mail = NULL;

        snprintf(request, sizeof(request), "mail %s", v->id);
        if (cli_agent_request(c, request, &reply) < 0)
                return NULL;
        mail = json_array_get(json_object_get(reply, "vps"), 0);
        json_incref(mail);
        json_decref(reply);
        return mail;
}

/* The kernel's blocked-attempt counters of <v>, or NULL (not root, no
 * agent table yet) with the reason in <why>. */
static json_t *vps_attempts(struct cli *c, const struct pc_vps *v, char *why, size_t size)
{
        struct attempts_ctx ctx = { v->iface, json_array() };
        struct pc_dataplane *dp = NULL;
        int r = pc_dp_open(c->cfg, &dp);

        if (r >= 0)
                r = pc_dp_attempts(dp, attempts_cb, &ctx);
        if (r >= 0)
                r = pc_dp_spoofed(dp, spoofed_cb, &ctx);
        if (r < 0) {
                if (r == -ENOENT)
                        snprintf(why, size, "no table inet %s on this host (portcullisd has not run here)",
                                 c->cfg->agent.nft_table);
                else
                        snprintf(why, size, "%s", dp != NULL ? pc_dp_errmsg(dp) : strerror(-r));
                json_decref(ctx.list);
                ctx.list = NULL;
        }
        pc_dp_close(dp);
        return ctx.list;
}

/* "3 min ago" */
static void ago(int64_t t, char *buf, size_t size)
{
        int64_t d = pc_now() - t;

        if (d < 60)
                snprintf(buf, size, "%llds ago", (long long)(d < 0 ? 0 : d));
        else if (d < 3600)
                snprintf(buf, size, "%lld min ago", (long long)(d / 60));
        else if (d < 86400)
                snprintf(buf, size, "%lld h ago", (long long)(d / 3600));
        else
                snprintf(buf, size, "%lld days ago", (long long)(d / 86400));
}

static int show(struct cli *c, const struct pc_vps *v)
{
        const struct pc_policy *pol;
        json_t *rules, *filt, *tickets, *root, *attempts, *mail;
        char buf[1024], mac[24] = "", why[512] = "";
        /* Stored text is escaped for the terminal (cli_text): t1 and t2. */
        char t1[PC_ESCAPED_SIZE(256)], t2[PC_ESCAPED_SIZE(1024)];

        pol = v->site->policy;
        if (v->has_mac)
                pc_format_mac(v->mac, mac, sizeof(mac));

        /* The one JSON form of a VPS (the API's too), and what the CLI adds. */
        root = pc_json_vps(v);
        tickets = json_array();
        if (root == NULL || pc_store_ticket_list(c->store, v->id, ticket_json_cb, tickets) < 0) {
                json_decref(root);
                json_decref(tickets);
                cli_error("Failed to read tickets of %s: %s", v->id, pc_store_errmsg(c->store));
                return CLI_ERROR;
        }
        rules = json_object_get(root, "rules"); /* borrowed, for the text below */
        filt = json_object_get(root, "filters");
        attempts = vps_attempts(c, v, why, sizeof(why));
        mail = vps_mail(c, v);
        json_object_set_new(root, "tickets", tickets);
        json_object_set(root, "attempts", attempts != NULL ? attempts : json_null());
        json_object_set(root, "mail", mail != NULL ? mail : json_null());
        if (c->json) {
                json_decref(attempts);
                json_decref(mail);
                return cli_print_json(root);
        }

        addrs_text(v, buf, sizeof(buf));
        printf("VPS %s\n", v->id);
        printf("  site        %s (policy %s)\n", v->site->name, pol->name);
        printf("  owner       %s (language %s)\n", cli_text(v->owner, t1, sizeof(t1)), v->lang);
        if (v->host[0] != '\0' && v->moving_from[0] != '\0')
                printf("  host        %s (moving from %s, which enforces it until %s does)\n", v->host,
                       v->moving_from, v->host);
        else if (v->host[0] != '\0' && v->departing_from[0] != '\0')
                printf("  host        %s (moved from %s, not confirmed by %s: its VM may still be there)\n",
                       v->host, v->departing_from, v->departing_from);
        else if (v->host[0] != '\0')
                printf("  host        %s\n", v->host);
        if (v->moving_from[0] != '\0' && v->departing_from[0] != '\0')
                printf("  move        not confirmed by %s: its VM may still be there\n", v->departing_from);
        printf("  interface   %s%s%s\n", v->iface, v->has_mac ? ", MAC " : "", mac);
        printf("  addresses   %s\n", buf);
        printf("  state       %s\n", vps_state(v));
        if (v->run_since != 0) {
                char since[32];

                pc_format_time(v->run_since, since, sizeof(since));
                printf("  run state   %s since %s%s\n", pc_vps_run_state_name(v), since,
                       v->stopped ? " (its policy stays in force)" : "");
        } else
                printf("  run state   %s\n", pc_vps_run_state_name(v));
        if (v->suspended) {
                pc_format_time(v->suspension.created, buf, sizeof(buf));
                printf("  %s #%" PRId64 " since %s by %s: %s\n",
                       v->suspension.terminated ? "terminated  suspension" : "suspension ", v->suspension.id, buf,
                       cli_text(v->suspension.by, t1, sizeof(t1)), cli_text(v->suspension.reason, t2, sizeof(t2)));
                if (v->suspension.terminated)
                        printf("              only an admin lifts a termination (unsuspend --admin-override)\n");
        }
        printf("\nRestrictions of the site policy:\n");
        if (pol->n_rules == 0)
                printf("  none: policy %s blocks nothing\n", pol->name);
        for (size_t i = 0; i < pol->n_rules; i++) {
                json_t *jr = json_array_get(rules, i);
                const struct pc_rule *rule = &pol->rules[i];
                const struct pc_exception *e = pc_vps_exception_for(v, rule->service->name);
                size_t len = 0, k;
                json_t *p;

                buf[0] = '\0';
                json_array_foreach(json_object_get(jr, "ports"), k, p)
                        len += snprintf(buf + len, len < sizeof(buf) ? sizeof(buf) - len : 0, "%s%s",
                                        k > 0 ? "," : "", json_string_value(p));
                printf("  %-11s %s %s %s%s\n", rule->service->name,
                       rule->action == PC_ACTION_BLOCK ? "blocked" : "redirected to the SMTP proxy",
                       pc_dir_name(rule->direction), buf,
                       e != NULL && pc_rule_exemptable(pol, rule) ? " -- lifted by an exception"
                       : pc_rule_exemptable(pol, rule)          ? ""
                                                                : " (not exemptable)");
        }
        printf("\nExceptions:\n");
        if (v->n_exceptions == 0)
                printf("  none\n");
        for (size_t i = 0; i < v->n_exceptions; i++) {
                const struct pc_exception *e = &v->exceptions[i];
                char when[32], until[32] = "no end";

                pc_format_time(e->created, when, sizeof(when));
                if (e->until != 0)
                        pc_format_time(e->until, until, sizeof(until));
                printf("  #%" PRId64 " %s granted by %s at %s, until %s", e->id, cli_text(e->service, t2, sizeof(t2)),
                       cli_text(e->by, t1, sizeof(t1)), when, until);
                if (e->n_ports != 0) {
                        char ports[PC_PORTS_CANON_MAX];

                        pc_ports_format(e->ports, e->n_ports, ports, sizeof(ports));
                        printf(", only %s", ports);
                }
                if (e->ticket_id != 0)
                        printf(", ticket #%" PRId64, e->ticket_id);
                printf(": %s\n", cli_text(e->reason, t2, sizeof(t2)));
        }
        printf("\nFilters:\n");
        if (pc_vps_real_filters(v) == 0)
                printf("  none\n");
        for (size_t i = 0, k = 0; i < v->n_filters; i++) {
                json_t *jf;

                if (v->filters[i].exception_id != 0)
                        continue;
                jf = json_array_get(filt, k++);

                printf("  #%" PRId64 " %s %s until %s by %s: %s\n", v->filters[i].id,
                       json_string_value(json_object_get(jf, "direction")),
                       json_string_value(json_object_get(jf, "scope")),
                       v->filters[i].until != 0 ? json_string_value(json_object_get(jf, "until")) : "no end",
                       cli_text(v->filters[i].by, t1, sizeof(t1)), cli_text(v->filters[i].reason, t2, sizeof(t2)));
        }
        printf("\nBlocked attempts (kernel counters, last 7 days):\n");
        if (attempts == NULL)
                printf("  unavailable: %s\n", why);
        else if (json_array_size(attempts) == 0)
                printf("  none\n");
        else {
                size_t k;
                json_t *x;

                json_array_foreach(attempts, k, x) {
                        char n[32], when[32];

                        if (json_object_get(x, "kind") != NULL) {
                                pc_format_count((uint64_t)json_integer_value(json_object_get(x, "packets")), n, sizeof(n));
                                ago(json_integer_value(json_object_get(x, "last_seen_unix")), when, sizeof(when));
                                printf("  %s source spoofing: %s packets dropped, last %s\n",
                                       json_string_value(json_object_get(x, "family")), n, when);
                                continue;
                        }
                        pc_format_count((uint64_t)json_integer_value(json_object_get(x, "packets")), n, sizeof(n));
                        ago(json_integer_value(json_object_get(x, "last_seen_unix")), when, sizeof(when));
                        printf("  %s/%" JSON_INTEGER_FORMAT " %s: %s blocked attempt%s, last %s\n",
                               json_string_value(json_object_get(x, "proto")),
                               json_integer_value(json_object_get(x, "port")),
                               json_string_value(json_object_get(x, "direction")), n,
                               json_integer_value(json_object_get(x, "packets")) == 1 ? "" : "s", when);
                }
        }
        json_decref(attempts);
        if (mail != NULL) {
                json_t *w = json_object_get(mail, "window");
#define MAILN(o, k) ((uint64_t)json_integer_value(json_object_get((o), (k))))
                printf("\nMail through the SMTP proxy (since it started):\n");
                printf("  %" PRIu64 " sessions (%" PRIu64 " open), %" PRIu64 " messages sent, %" PRIu64
                       " refused or abandoned, %" PRIu64 " recipients accepted, %" PRIu64 " refused, %" PRIu64
                       " bytes, %" PRIu64 " commands refused by limits\n",
                       MAILN(mail, "sessions"), MAILN(mail, "active_sessions"), MAILN(mail, "messages"),
                       MAILN(mail, "messages_failed"), MAILN(mail, "recipients"), MAILN(mail, "recipients_refused"),
                       MAILN(mail, "bytes"), MAILN(mail, "limited"));
                printf("  last %" PRIu64 " s: %" PRIu64 " messages, %" PRIu64 " recipients, about %" PRIu64
                       " recipient domains\n",
                       MAILN(w, "seconds"), MAILN(w, "messages"), MAILN(w, "recipients"), MAILN(w, "domains"));
#undef MAILN
                json_decref(mail);
        }
        if (json_array_size(tickets) > 0) {
                size_t k;
                json_t *t;

                printf("\nTickets:\n");
                json_array_foreach(tickets, k, t)
                        printf("  #%" JSON_INTEGER_FORMAT " %s %s: %s\n",
                               json_integer_value(json_object_get(t, "id")),
                               cli_text(json_string_value(json_object_get(t, "service")), t1, sizeof(t1)),
                               json_string_value(json_object_get(t, "state")),
                               cli_text(json_string_value(json_object_get(t, "text")), t2, sizeof(t2)));
        }
        json_decref(root);
        return CLI_OK;
}

/* One VPS, read alone (not the whole fleet). */
static int vps_show(struct cli *c, int argc, char **argv)
{
        struct pc_vps *v = NULL;
        int r;

        if (argc != 3)
                return cli_usage_error("vps", "vps show takes exactly one ID");
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        r = pc_store_vps_fetch(c->store, c->cfg, argv[2], &v);
        if (r == -ENOENT) {
                cli_error("vps %s does not exist", argv[2]);
                return CLI_ERROR;
        }
        if (r < 0) {
                cli_error("Failed to read vps %s: %s", argv[2], pc_store_errmsg(c->store));
                return CLI_ERROR;
        }
        r = show(c, v);
        pc_vps_free(v);
        return r;
}

int cmd_vps(struct cli *c, int argc, char **argv)
{
        if (argc < 2)
                return cli_usage_error("vps", "vps needs a subcommand: add, update, move, depart, start, stop, remove, "
                                              "list or show");
        if (strcmp(argv[1], "add") == 0)
                return vps_add(c, argc, argv);
        if (strcmp(argv[1], "update") == 0)
                return vps_update(c, argc, argv);
        if (strcmp(argv[1], "start") == 0 || strcmp(argv[1], "stop") == 0)
                return vps_run(c, argc, argv);
        if (strcmp(argv[1], "remove") == 0)
                return vps_remove(c, argc, argv);
        if (strcmp(argv[1], "move") == 0)
                return vps_move(c, argc, argv);
        if (strcmp(argv[1], "depart") == 0)
                return vps_depart(c, argc, argv);
        if (strcmp(argv[1], "list") == 0)
                return vps_list(c, argc, argv);
        if (strcmp(argv[1], "show") == 0)
                return vps_show(c, argc, argv);
        return cli_usage_error("vps", "unknown vps subcommand '%s' (add, update, move, depart, start, stop, remove, list, "
                               "show)",
                               argv[1]);
}
