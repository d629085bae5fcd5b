/* The nftables backend, through libnftables: one transaction per change. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dataplane/dataplane-internal.h"
#include "dataplane/nft_netlink.h"
#include "dataplane/nft_ruleset.h"

#define ATTEMPTS_TIMEOUT (7 * 86400) /* the attempts set's element lifetime */

struct nft_dp {
        struct pc_dataplane base;
        const struct pc_config *cfg;
        struct nft_ctx *ctx;
        /* What our last transaction recorded in set `state` (nft_ruleset.h);
         * genid 0 until a sync: a record that never matches. */
        struct nft_state st;
        struct nft_elems scratch; /* for fingerprints */
        char err[1024];
};

static struct nft_dp *dp_of(struct pc_dataplane *dp)
{
        return (struct nft_dp *)dp;
}

/* Keeps the kernel's complaint on one line: "Error: ...: <the command>". */
static void set_error(struct nft_dp *d, const char *what, const char *nft_err)
{
        char msg[768];
        size_t n = 0;

        for (const char *p = nft_err; *p != '\0' && n + 1 < sizeof(msg); p++) {
                if (*p == '^' || (*p == ' ' && n > 0 && msg[n - 1] == ' '))
                        continue;
                msg[n++] = (*p == '\n' || *p == '\t') ? ' ' : *p;
        }
        while (n > 0 && msg[n - 1] == ' ')
                n--;
        msg[n] = '\0';
        snprintf(d->err, sizeof(d->err), "%s: %s", what, n > 0 ? msg : "the kernel refused it");
}

/* Runs <cmds> as one transaction.  -EIO with the kernel's reason. */
static int run(struct nft_dp *d, const char *what, const char *cmds)
{
        int rc = nft_run_cmd_from_buffer(d->ctx, cmds);
        const char *e = nft_ctx_get_error_buffer(d->ctx);

        nft_ctx_get_output_buffer(d->ctx); /* drop any output */
        if (rc != 0) {
                set_error(d, what, e != NULL ? e : "");
                return -EIO;
        }
        return 0;
}

/* Runs <b>'s commands and the record of <fp> as one transaction, which is
 * then ours: the ruleset's generation after it is one more than after our
 * previous one (if anyone else commits in between, the record is wrong,
 * which is what it is for).  -ENOMEM, or run()'s errors. */
static int commit(struct nft_dp *d, const char *what, struct strbuf *b, uint64_t fp)
{
        struct nft_state st = { d->st.genid != 0 ? d->st.genid + 1 : 0, fp };
        int r;

        nft_state_commands(d->cfg->agent.nft_table, &st, b);
        r = b->oom ? -ENOMEM : run(d, what, strbuf_str(b));
        if (r == 0)
                d->st = st;
        return r;
}

/* commit() of <cmds>, which leave the model's fingerprint as it is. */
static int commit_text(struct nft_dp *d, const char *what, const char *cmds)
{
        struct strbuf b = { 0 };
        int r;

        strbuf_printf(&b, "%s", cmds);
        r = commit(d, what, &b, d->st.fp);
        strbuf_free(&b);
        return r;
}

/* Runs a list command and parses its JSON output.  -ENOENT if the object
 * does not exist. */
static int list_json(struct nft_dp *d, const char *cmd, json_t **ret)
{
        unsigned flags = nft_ctx_output_get_flags(d->ctx);
        const char *out, *e;
        json_error_t jerr;
        json_t *j;
        int rc;

        nft_ctx_output_set_flags(d->ctx, flags | NFT_CTX_OUTPUT_JSON);
        rc = nft_run_cmd_from_buffer(d->ctx, cmd);
        nft_ctx_output_set_flags(d->ctx, flags);
        out = nft_ctx_get_output_buffer(d->ctx);
        e = nft_ctx_get_error_buffer(d->ctx);
        if (rc != 0) {
                set_error(d, cmd, e != NULL ? e : "");
                return e != NULL && strstr(e, "No such file or directory") != NULL ? -ENOENT : -EIO;
        }
        j = json_loads(out != NULL ? out : "", 0, &jerr);
        if (j == NULL) {
                snprintf(d->err, sizeof(d->err), "%s: unreadable JSON from libnftables: %s", cmd, jerr.text);
                return -EIO;
        }
        *ret = j;
        return 0;
}

static int nft_open(const struct pc_config *cfg, struct pc_dataplane **ret)
{
        struct nft_dp *d = calloc(1, sizeof(*d));

        if (d == NULL)
                return -ENOMEM;
        d->ctx = nft_ctx_new(NFT_CTX_DEFAULT);
        if (d->ctx == NULL) {
                free(d);
                return -ENOMEM;
        }
        if (nft_ctx_buffer_output(d->ctx) != 0 || nft_ctx_buffer_error(d->ctx) != 0) {
                nft_ctx_free(d->ctx);
                free(d);
                return -ENOMEM;
        }
        d->base.ops = &pc_dp_nft_ops;
        d->cfg = cfg;
        *ret = &d->base;
        return 0;
}

static void nft_close(struct pc_dataplane *dp)
{
        struct nft_dp *d = dp_of(dp);

        nft_elems_free(&d->scratch);
        nft_ctx_free(d->ctx);
        free(d);
}

static const char *nft_errmsg(const struct pc_dataplane *dp)
{
        return ((const struct nft_dp *)dp)->err;
}

/* The desired per-VPS elements of every VPS of <m>, normalised.  A VPS
 * that cannot be programmed (an unsafe interface name from the database)
 * is left out and counted in <rep>, so that it cannot stop the others. */
static int desired_elements(struct nft_dp *d, const struct pc_model *m, int64_t now, struct nft_elems *out,
                            struct pc_dp_repair *rep)
{
        for (size_t i = 0; i < pc_model_count(m); i++) {
                const struct pc_vps *v = pc_model_at(m, i);
                size_t before = out->n;
                int r = nft_vps_elements(d->cfg, v, now, out);

                if (r == -EINVAL) {
                        out->n = before;
                        if (rep->skipped++ == 0)
                                snprintf(rep->skipped_example, sizeof(rep->skipped_example),
                                         "%s: interface name '%s' is not safe to program", v->id, v->iface);
                        continue;
                }
                if (r < 0)
                        return r;
        }
        nft_elems_normalise(out);
        return 0;
}

/* Writes the whole table, replacing any old one, in one transaction, with
 * the record of <fp>. */
static int program_all(struct nft_dp *d, const struct nft_elems *want, int64_t now, uint64_t fp)
{
        const char *t = d->cfg->agent.nft_table;
        struct strbuf b = { 0 };
        int r;

        /* "add" first so that "delete" cannot fail on a missing table. */
        strbuf_printf(&b, "add table inet %s\ndelete table inet %s\n", t, t);
        strbuf_printf(&b, "add table bridge %s\ndelete table bridge %s\n", t, t);
        nft_skeleton(d->cfg, &b);
        nft_elems_commands(t, want, true, now, &b);
        r = commit(d, "programming the ruleset", &b, fp);
        strbuf_free(&b);
        return r;
}

/* The fingerprint of <m> for the kernel (nft_ruleset.h) in *<ret_fp>, and in
 * *<ret_n> how many per-VPS elements it has at <now>; the VPSes that cannot
 * be programmed are counted in <rep>, as desired_elements() does.  -ENOMEM. */
static int model_fingerprint(struct nft_dp *d, const struct pc_model *m, int64_t now, uint64_t *ret_fp,
                             size_t *ret_n, struct pc_dp_repair *rep)
{
        uint64_t fp = nft_fingerprint_base(d->cfg);
        size_t n = 0;

        for (size_t i = 0; i < pc_model_count(m); i++) {
                const struct pc_vps *v = pc_model_at(m, i);
                uint64_t h;
                size_t k;
                int r = nft_vps_fingerprint(d->cfg, v, now, &d->scratch, &h, &k);

                if (r == -EINVAL) {
                        if (rep->skipped++ == 0)
                                snprintf(rep->skipped_example, sizeof(rep->skipped_example),
                                         "%s: interface name '%s' is not safe to program", v->id, v->iface);
                        continue;
                }
                if (r < 0)
                        return r;
                fp += h;
                n += k;
        }
        *ret_fp = fp;
        *ret_n = n;
        return 0;
}

static int state_cb(const void *key, size_t len, void *userdata)
{
        struct nft_state *st = userdata;
        uint32_t w[3];

        if (len != sizeof(w))
                return -EIO;
        memcpy(w, key, sizeof(w)); /* marks: host byte order */
        st->genid = w[0];
        st->fp = (uint64_t)w[1] << 32 | w[2];
        return 0;
}

/* True if the kernel's ruleset is as our record of fingerprint <fp> says
 * it was left: the record is there, with the generation the ruleset has
 * now.  *<ret_genid>: that generation (0 if unknown). */
static bool kernel_unchanged(struct nft_dp *d, uint64_t fp, uint32_t *ret_genid)
{
        struct nft_state st = { 0 };
        uint32_t gen = 0;

        *ret_genid = 0;
        if (nft_nl_genid(&gen) < 0)
                return false;
        *ret_genid = gen;
        return nft_nl_set_keys("inet", d->cfg->agent.nft_table, "state", state_cb, &st) == 0 &&
               st.genid == gen && st.fp == fp;
}

/* True for the sets that hold per-VPS elements. */
static bool per_vps_set(const char *family, const char *name)
{
        static const char *const bridge[] = { "suspended",     "vps",         "mac",          "src4",
                                              "src6",          "src6_64",     "src4_net",     "src6_net",
                                              "any_link_local", "na_target",  "na_target_addr", "na_target_64",
                                              "nd_lladdr",     "spoof_report", "any_mac",
                                              "vps_out",       "vps_in",      "vps_nat",      "vps_proxied",
                                              "filter_out",    "filter_in",   "filter_ports_out",
                                              "filter_ports_in", "filtered" };
        unsigned a, b;
        char tail[16];

        if (strcmp(family, "bridge") == 0) {
                for (size_t i = 0; i < PC_ARRAY_SIZE(bridge); i++)
                        if (strcmp(name, bridge[i]) == 0)
                                return true;
                return sscanf(name, "p%u_r%u_%15s", &a, &b, tail) == 3 && strcmp(tail, "exempt") == 0;
        }
        static const char *const fixed[] = { "vps_out",          "vps_in",          "vps_nat",   "suspended",
                                             "filter_out",       "filter_in",       "filter_ports_out",
                                             "filter_ports_in",  "antispoof",       "src4",      "src6",
                                             "src6_64",          "src4_net",        "src6_net",  "any_link_local",
                                             "vps",              "vps_proxied",     "spoof_report",
                                             "bridged4",         "bridged6",        "bridged6_64",
                                             "bridged4_net",     "bridged6_net",    "scan_contain",
                                             "scan_excepted" };

        for (size_t i = 0; i < PC_ARRAY_SIZE(fixed); i++)
                if (strcmp(name, fixed[i]) == 0)
                        return true;
        return sscanf(name, "p%u_r%u_%15s", &a, &b, tail) == 3 && strcmp(tail, "exempt") == 0;
}

/* One component of a key as our text form writes it. */
static void key_part(json_t *v, bool quote, char *buf, size_t size)
{
        if (json_is_string(v))
                snprintf(buf, size, quote ? "\"%s\"" : "%s", json_string_value(v));
        else if (json_is_integer(v))
                snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        else if (json_is_object(v) && json_is_object(json_object_get(v, "prefix")))
                snprintf(buf, size, "%s/%" JSON_INTEGER_FORMAT,
                         json_string_value(json_object_get(json_object_get(v, "prefix"), "addr")),
                         json_integer_value(json_object_get(json_object_get(v, "prefix"), "len")));
        else if (json_is_object(v) && json_is_string(json_array_get(json_object_get(v, "range"), 0)))
                snprintf(buf, size, "%s-%s", json_string_value(json_array_get(json_object_get(v, "range"), 0)),
                         json_string_value(json_array_get(json_object_get(v, "range"), 1)));
        else if (json_is_object(v) && json_is_array(json_object_get(v, "range")))
                snprintf(buf, size, "%" JSON_INTEGER_FORMAT "-%" JSON_INTEGER_FORMAT,
                         json_integer_value(json_array_get(json_object_get(v, "range"), 0)),
                         json_integer_value(json_array_get(json_object_get(v, "range"), 1)));
        else
                snprintf(buf, size, "?");
}

/* A JSON key (string, number or concat) in our text form: a string is an
 * interface name, quoted, unless the set holds addresses (<addr>). */
static void key_text(json_t *v, bool addr, char *buf, size_t size)
{
        json_t *concat = json_is_object(v) ? json_object_get(v, "concat") : NULL;
        size_t n = 0, i;
        json_t *part;

        if (concat == NULL) {
                key_part(v, !addr, buf, size);
                return;
        }
        buf[0] = '\0';
        json_array_foreach(concat, i, part) {
                char p[96]; /* a range of two 128-bit numbers: 69 characters */

                key_part(part, i == 0, p, sizeof(p));
                n += snprintf(buf + n, n < size ? size - n : 0, "%s%s", i > 0 ? " . " : "", p);
        }
}

/* Parses one JSON set element into <x> (set name already filled). */
static void elem_from_json(json_t *e, bool addr, int64_t now, struct nft_elem *x)
{
        json_t *val = e, *data = NULL, *wrap;

        if (json_is_array(e)) { /* map: [key, value] */
                val = json_array_get(e, 0);
                data = json_array_get(e, 1);
        }
        wrap = json_is_object(val) ? json_object_get(val, "elem") : NULL;
        x->until = 0;
        if (wrap != NULL) {
                json_t *exp = json_object_get(wrap, "expires");

                if (json_is_integer(exp))
                        x->until = now + json_integer_value(exp);
                val = json_object_get(wrap, "val");
        }
        key_text(val, addr, x->key, sizeof(x->key));
        x->value[0] = '\0';
        if (data != NULL) {
                json_t *jump = json_object_get(data, "jump");
                json_t *target = jump != NULL ? json_object_get(jump, "target") : NULL;

                if (json_is_string(target))
                        snprintf(x->value, sizeof(x->value), "jump %s", json_string_value(target));
        }
}

/* Reads one of the agent's tables (<family> inet or bridge): its skeleton
 * id if it holds one, and its per-VPS elements, appended to <out>. */
static int read_table(struct nft_dp *d, const char *family, int64_t now, uint32_t *ret_id,
                      struct nft_elems *out)
{
        char cmd[96];
        json_t *root, *items, *item;
        size_t i;
        int r;

        snprintf(cmd, sizeof(cmd), "list table %s %s", family, d->cfg->agent.nft_table);
        r = list_json(d, cmd, &root);
        if (r < 0)
                return r;
        items = json_object_get(root, "nftables");
        json_array_foreach(items, i, item) {
                json_t *set = json_object_get(item, "set");
                const char *name;
                json_t *elems, *e;
                size_t k;

                if (set == NULL)
                        set = json_object_get(item, "map");
                if (set == NULL)
                        continue;
                name = json_string_value(json_object_get(set, "name"));
                elems = json_object_get(set, "elem");
                if (name == NULL)
                        continue;
                if (strcmp(name, "skeleton") == 0 && json_is_integer(json_array_get(elems, 0))) {
                        *ret_id = (uint32_t)json_integer_value(json_array_get(elems, 0));
                        continue;
                }
                if (!per_vps_set(family, name))
                        continue;
                const char *type = json_string_value(json_object_get(set, "type"));
                bool addr = type != NULL && (strcmp(type, "ipv4_addr") == 0 || strcmp(type, "ipv6_addr") == 0);

                json_array_foreach(elems, k, e) {
                        struct nft_elem x = { 0 };

                        snprintf(x.family, sizeof(x.family), "%s", family);
                        snprintf(x.set, sizeof(x.set), "%s", name);
                        elem_from_json(e, addr, now, &x);
                        r = nft_elems_push(out, &x);
                        if (r < 0)
                                goto out;
                }
        }
        r = 0;
out:
        json_decref(root);
        return r;
}

/* Reads the kernel's tables: the skeleton id (kept in the inet table) and
 * the per-VPS elements of both.  -ENOENT if either table is missing. */
static int read_kernel(struct nft_dp *d, int64_t now, uint32_t *ret_id, struct nft_elems *out)
{
        uint32_t unused = 0;
        int r;

        *ret_id = 0;
        r = read_table(d, "inet", now, ret_id, out);
        if (r == 0)
                r = read_table(d, "bridge", now, &unused, out);
        if (r == 0)
                nft_elems_normalise(out);
        return r;
}

/* A lifetime the kernel holds is as good as ours within 2 s of counting. */
static bool same_lifetime(int64_t a, int64_t b)
{
        return (a == 0) == (b == 0) && (a == 0 || llabs(a - b) <= 2);
}

/* Bridged frames reach the inet hooks (conntrack, reject, NAT) only through
 * br_netfilter, with these switches on (nft_ruleset.h).  A kernel without
 * it cannot enforce a bridged site's policy: refuse rather than pretend. */
static int bridge_netfilter_on(struct nft_dp *d)
{
        static const char *const knobs[] = { "/proc/sys/net/bridge/bridge-nf-call-iptables",
                                             "/proc/sys/net/bridge/bridge-nf-call-ip6tables" };

        if (!pc_config_has_bridged(d->cfg))
                return 0;
        for (size_t i = 0; i < PC_ARRAY_SIZE(knobs); i++) {
                FILE *f = fopen(knobs[i], "w");
                int r = f != NULL && fputs("1\n", f) >= 0 ? 0 : -errno;

                if (f != NULL && fclose(f) != 0 && r == 0)
                        r = -errno;
                if (r < 0) {
                        snprintf(d->err, sizeof(d->err),
                                 "bridged sites need br_netfilter, and %s cannot be set to 1: %s%s", knobs[i],
                                 strerror(-r), r == -ENOENT ? " (load it: modprobe br_netfilter)" : "");
                        return r;
                }
        }
        return 0;
}

static int nft_sync_all(struct pc_dataplane *dp, const struct pc_model *m, int64_t now,
                        struct pc_dp_repair *ret)
{
        struct nft_dp *d = dp_of(dp);
        struct nft_elems want = { 0 }, have = { 0 }, del = { 0 }, add = { 0 };
        struct pc_dp_repair rep = { 0 };
        struct strbuf b = { 0 };
        uint32_t id = 0, want_id = nft_skeleton_id(d->cfg), gen;
        uint64_t fp;
        size_t n;
        int r;

        r = bridge_netfilter_on(d);
        if (r < 0)
                return r;
        r = model_fingerprint(d, m, now, &fp, &n, &rep);
        if (r < 0)
                return r;
        if (kernel_unchanged(d, fp, &gen)) {
                rep.unchanged = true;
                rep.elements = n;
                d->st = (struct nft_state){ gen, fp };
                goto out;
        }
        /* Our next transaction is the one after this generation. */
        d->st = (struct nft_state){ gen, fp };
        rep.skipped = 0;
        r = desired_elements(d, m, now, &want, &rep);
        if (r < 0)
                goto out;
        rep.elements = want.n;
        r = read_kernel(d, now, &id, &have);
        if (r == -ENOENT || (r == 0 && id != want_id)) {
                rep.reprogrammed = true;
                if (r == -ENOENT)
                        snprintf(rep.why, sizeof(rep.why), "table inet or bridge %s is missing", d->cfg->agent.nft_table);
                else
                        snprintf(rep.why, sizeof(rep.why),
                                 "table inet %s was built from another config (skeleton 0x%08" PRIx32
                                 ", want 0x%08" PRIx32 ")", d->cfg->agent.nft_table, id, want_id);
                rep.missing = want.n;
                r = program_all(d, &want, now, fp);
                goto out;
        }
        if (r < 0)
                goto out;
        /* Same skeleton: repair only the elements that drifted. */
        for (size_t i = 0, j = 0; i < have.n || j < want.n;) {
                int c = i == have.n ? 1 : j == want.n ? -1 : nft_elem_cmp(&have.v[i], &want.v[j]);

                if (c < 0) {
                        r = nft_elems_push(&del, &have.v[i++]);
                        rep.extra++;
                } else if (c > 0) {
                        r = nft_elems_push(&add, &want.v[j++]);
                        rep.missing++;
                } else {
                        if (!same_lifetime(have.v[i].until, want.v[j].until) ||
                            strcmp(have.v[i].value, want.v[j].value) != 0) {
                                r = nft_elems_push(&del, &have.v[i]);
                                if (r == 0)
                                        r = nft_elems_push(&add, &want.v[j]);
                                rep.missing++;
                                rep.extra++;
                        }
                        i++;
                        j++;
                }
                if (r < 0)
                        goto out;
        }
        if (del.n + add.n > 0) {
                const struct nft_elem *x = add.n > 0 ? &add.v[0] : &del.v[0];

                snprintf(rep.example, sizeof(rep.example), "%s %s in %s%s%s%s", add.n > 0 ? "missing" : "extra",
                         x->key, strcmp(x->family, "bridge") == 0 ? "bridge " : "", x->set,
                         x->value[0] != '\0' ? " : " : "", x->value);
                nft_elems_commands(d->cfg->agent.nft_table, &del, false, now, &b);
                nft_elems_commands(d->cfg->agent.nft_table, &add, true, now, &b);
        }
        /* With nothing to repair, the record alone (a stranger's transaction,
         * or ours without one, since) */
        r = commit(d, del.n + add.n > 0 ? "repairing drifted elements" : "recording the kernel's state", &b, fp);
out:
        if (r == 0 && ret != NULL)
                *ret = rep;
        strbuf_free(&b);
        nft_elems_free(&want);
        nft_elems_free(&have);
        nft_elems_free(&del);
        nft_elems_free(&add);
        return r;
}

static int nft_vps_change(struct pc_dataplane *dp, const struct pc_vps *before, const struct pc_vps *after,
                          int64_t now, size_t *ret_changes)
{
        struct nft_dp *d = dp_of(dp);
        struct nft_elems old = { 0 }, new = { 0 }, del = { 0 }, add = { 0 };
        struct strbuf b = { 0 };
        uint64_t fp = d->st.fp, h;
        size_t n;
        int r = 0;

        if (before != NULL)
                r = nft_vps_elements(d->cfg, before, now, &old);
        if (r == 0 && after != NULL)
                r = nft_vps_elements(d->cfg, after, now, &new);
        /* the fingerprint of the model after the change (nft_ruleset.h) */
        if (r == 0 && before != NULL && (r = nft_vps_fingerprint(d->cfg, before, now, &d->scratch, &h, &n)) == 0)
                fp -= h;
        if (r == 0 && after != NULL && (r = nft_vps_fingerprint(d->cfg, after, now, &d->scratch, &h, &n)) == 0)
                fp += h;
        if (r == -EINVAL) {
                const struct pc_vps *v = after != NULL ? after : before;

                snprintf(d->err, sizeof(d->err),
                         "%s: interface name '%s' is not safe to program (letters, digits, '.', '_', '-')",
                         v->id, v->iface);
                goto out;
        }
        if (r < 0)
                goto out;
        nft_elems_normalise(&old);
        nft_elems_normalise(&new);
        r = nft_elems_diff(&old, &new, &del, &add);
        /* Nothing for the kernel, and nothing to record either (the record
         * changes when what ended leaves the model: agent_expiry_pass) */
        if (r < 0 || (del.n + add.n == 0 && fp == d->st.fp))
                goto out;
        nft_elems_commands(d->cfg->agent.nft_table, &del, false, now, &b);
        nft_elems_commands(d->cfg->agent.nft_table, &add, true, now, &b);
        {
                char what[96];

                snprintf(what, sizeof(what), "changing %s", after != NULL ? after->id : before->id);
                r = commit(d, what, &b, fp);
        }
out:
        if (r == 0 && ret_changes != NULL)
                *ret_changes = del.n + add.n;
        strbuf_free(&b);
        nft_elems_free(&old);
        nft_elems_free(&new);
        nft_elems_free(&del);
        nft_elems_free(&add);
        return r;
}

/* Reads one attempts set (<dir>'s, in the table of <family>) and calls <cb>
 * for each element. */
static int attempts_set(struct nft_dp *d, const char *family, unsigned dir, int64_t now, pc_dp_attempt_cb cb,
                        void *userdata)
{
        json_t *root, *item, *e;
        char cmd[96];
        size_t i, k;
        int r;

        snprintf(cmd, sizeof(cmd), "list set %s %s attempts_%s", family, d->cfg->agent.nft_table,
                 dir == PC_DIR_EGRESS ? "out" : "in");
        r = list_json(d, cmd, &root);
        if (r < 0)
                return r;
        json_array_foreach(json_object_get(root, "nftables"), i, item) {
                json_t *set = json_object_get(item, "set");

                if (set == NULL)
                        continue;
                json_array_foreach(json_object_get(set, "elem"), k, e) {
                        json_t *w = json_object_get(e, "elem");
                        json_t *parts = json_object_get(json_object_get(w, "val"), "concat");
                        json_t *exp = json_object_get(w, "expires");
                        const char *proto = json_string_value(json_array_get(parts, 1));
                        struct pc_dp_attempt a = { .dir = dir };

                        if (json_array_size(parts) != 3 || proto == NULL || pc_proto_parse(proto, &a.proto) < 0)
                                continue;
                        snprintf(a.iface, sizeof(a.iface), "%s", json_string_value(json_array_get(parts, 0)));
                        a.port = (uint16_t)json_integer_value(json_array_get(parts, 2));
                        a.packets = (uint64_t)json_integer_value(
                                json_object_get(json_object_get(w, "counter"), "packets"));
                        a.last_seen = json_is_integer(exp) ? now - (ATTEMPTS_TIMEOUT - json_integer_value(exp)) : now;
                        r = cb(&a, userdata);
                        if (r < 0)
                                goto out;
                }
        }
        r = 0;
out:
        json_decref(root);
        return r;
}

static int nft_attempts(struct pc_dataplane *dp, pc_dp_attempt_cb cb, void *userdata)
{
        struct nft_dp *d = dp_of(dp);
        int64_t now = pc_now();
        int r = 0;

        /* The bridge table counts for bridged sites (nft_ruleset.h). */
        for (int f = 0; f < (pc_config_has_bridged(d->cfg) ? 2 : 1) && r == 0; f++) {
                const char *family = f == 0 ? "inet" : "bridge";

                r = attempts_set(d, family, PC_DIR_EGRESS, now, cb, userdata);
                if (r == 0)
                        r = attempts_set(d, family, PC_DIR_INGRESS, now, cb, userdata);
        }
        return r;
}

static int nft_spoofed(struct pc_dataplane *dp, pc_dp_spoofed_cb cb, void *userdata)
{
        struct nft_dp *d = dp_of(dp);
        int64_t now = pc_now();
        int r = 0;

        for (int f = 0; f < 2 && r == 0; f++) {
                json_t *root, *item, *e;
                char cmd[96];
                size_t i, k;

                snprintf(cmd, sizeof(cmd), "list set inet %s spoof%d", d->cfg->agent.nft_table, f == 0 ? 4 : 6);
                r = list_json(d, cmd, &root);
                if (r < 0)
                        return r;
                json_array_foreach(json_object_get(root, "nftables"), i, item) {
                        json_array_foreach(json_object_get(json_object_get(item, "set"), "elem"), k, e) {
                                json_t *w = json_object_get(e, "elem");
                                json_t *exp = json_object_get(w, "expires");
                                struct pc_dp_spoofed x = { .family = f == 0 ? AF_INET : AF_INET6 };

                                if (!json_is_string(json_object_get(w, "val")))
                                        continue;
                                snprintf(x.iface, sizeof(x.iface), "%s", json_string_value(json_object_get(w, "val")));
                                x.packets = (uint64_t)json_integer_value(
                                        json_object_get(json_object_get(w, "counter"), "packets"));
                                x.last_seen = json_is_integer(exp) ? now - (ATTEMPTS_TIMEOUT - json_integer_value(exp))
                                                                   : now;
                                r = cb(&x, userdata);
                                if (r < 0)
                                        break;
                        }
                }
                json_decref(root);
        }
        return r;
}

static int nft_held(struct pc_dataplane *dp, size_t *ret)
{
        struct nft_elems have = { 0 };
        uint32_t id;
        int r = read_kernel(dp_of(dp), pc_now(), &id, &have);

        *ret = r == 0 ? have.n : 0;
        nft_elems_free(&have);
        return r == -ENOENT ? 0 : r;
}

static int nft_scan_release(struct pc_dataplane *dp, const char *iface)
{
        struct nft_dp *d = dp_of(dp);
        const char *t = d->cfg->agent.nft_table;
        char cmd[512];

        if (!pc_ifname_valid(iface))
                return -EINVAL;
        /* Added first, so that deleting never fails on an element the
         * kernel did not make (this nft has no 'destroy element'). */
        snprintf(cmd, sizeof(cmd),
                 "add element inet %s scan_hold { \"%s\" }\ndelete element inet %s scan_hold { \"%s\" }\n"
                 "add element inet %s scan_budget { \"%s\" }\ndelete element inet %s scan_budget { \"%s\" }\n",
                 t, iface, t, iface, t, iface, t, iface);
        return commit_text(d, "releasing a VPS from scan containment", cmd);
}

static int nft_scan_hold(struct pc_dataplane *dp, const char *iface)
{
        struct nft_dp *d = dp_of(dp);
        const char *t = d->cfg->agent.nft_table;
        char cmd[256];

        if (!pc_ifname_valid(iface))
                return -EINVAL;
        /* deleted first: an element the kernel added has less time left */
        snprintf(cmd, sizeof(cmd),
                 "add element inet %s scan_hold { \"%s\" }\ndelete element inet %s scan_hold { \"%s\" }\n"
                 "add element inet %s scan_hold { \"%s\" }\n",
                 t, iface, t, iface, t, iface);
        return commit_text(d, "holding back a suspected scanner's new destinations", cmd);
}

static int nft_destroy(struct pc_dataplane *dp)
{
        struct nft_dp *d = dp_of(dp);
        char cmd[256];

        d->st.genid = 0; /* nothing of ours left to trust */
        snprintf(cmd, sizeof(cmd), "add table inet %s\ndelete table inet %s\nadd table bridge %s\ndelete table bridge %s\n",
                 d->cfg->agent.nft_table, d->cfg->agent.nft_table, d->cfg->agent.nft_table, d->cfg->agent.nft_table);
        return run(d, "deleting the table", cmd);
}

const struct pc_dataplane_ops pc_dp_nft_ops = {
        .name = "nftables",
        .open = nft_open,
        .close = nft_close,
        .errmsg = nft_errmsg,
        .sync_all = nft_sync_all,
        .vps_change = nft_vps_change,
        .attempts = nft_attempts,
        .spoofed = nft_spoofed,
        .destroy = nft_destroy,
        .held = nft_held,
        .scan_release = nft_scan_release,
        .scan_hold = nft_scan_hold,
};
