/* The nftables backend: libnftables for the skeleton and for each change,
 * one transaction each; nf_tables netlink itself (nft_netlink.h) for reading
 * and writing the elements of a whole fleet. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <nftables/libnftables.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dataplane/dataplane-internal.h"
#include "dataplane/nft_netlink.h"
#include "dataplane/nft_ruleset.h"

#define ATTEMPTS_TIMEOUT (7 * 86400) /* the attempts set's element lifetime */

/* A read of the kernel in a thread of its own (pc_dp_sync_start): it uses
 * only the config, which outlives it, and its own netlink sockets. */
struct bg_read {
        const struct pc_config *cfg;
        int notify_fd;       /* written to once it is done */
        pthread_t thread;
        uint32_t genid;      /* the ruleset's generation before it read */
        uint32_t id;         /* the skeleton's */
        struct nft_elems have;
        int r;
        char err[512];
};

struct nft_dp {
        struct pc_dataplane base;
        const struct pc_config *cfg;
        struct nft_ctx *ctx;
        struct bg_read *bg;  /* a read in the background, or NULL */
        unsigned bg_tries;   /* reads since pc_dp_sync_start() */
        /* What our last transaction recorded in set `state` (nft_ruleset.h);
         * genid 0 until a sync: a record that never matches. */
        struct nft_state st;
        struct nft_elems scratch; /* for fingerprints */
        char err[1024];
};

static struct bg_read *bg_join(struct nft_dp *d);
static void bg_free(struct bg_read *bg);

static struct nft_dp *dp_of(struct pc_dataplane *dp)
{
        return (struct nft_dp *)dp;
}

/* What the kernel's ENFILE means here: a set declared with a size from
 * agent.max-vps is full (nft_set_limit). */
static const char *full_hint(struct nft_dp *d)
{
        static _Thread_local char buf[192];

        snprintf(buf, sizeof(buf),
                 " (a per-VPS set is full: this host holds more VPSes, or addresses, than agent.max-vps %u allows)",
                 d->cfg->agent.max_vps);
        return buf;
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
        snprintf(d->err, sizeof(d->err), "%s: %s%s", what, n > 0 ? msg : "the kernel refused it",
                 d->cfg->agent.max_vps != 0 && strstr(msg, strerror(ENFILE)) != NULL ? full_hint(d) : "");
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

        bg_free(bg_join(d));
        nft_elems_free(&d->scratch);
        nft_ctx_free(d->ctx);
        free(d);
}

static const char *nft_errmsg(const struct pc_dataplane *dp)
{
        return ((const struct nft_dp *)dp)->err;
}

/* Appends <v>'s elements at <now> under <cfg> to <out>, normalised (only
 * one VPS's can repeat or overlap): 0, or 1 and none if it cannot be
 * programmed (an unsafe interface name from the database), or -ENOMEM. */
static int vps_append(const struct pc_config *cfg, const struct pc_vps *v, int64_t now, struct nft_elems *out)
{
        size_t before = out->n;
        int r = nft_vps_elements(cfg, v, now, out);

        if (r == -EINVAL) {
                out->n = before;
                return 1;
        }
        if (r == 0 && v->n_exceptions + v->n_filters > 0)
                r = nft_elems_normalise_from(out, before);
        return r;
}

/* The desired per-VPS elements of every VPS of <m> (vps_append), grouped
 * by set.  A VPS that cannot be programmed is left out and counted in
 * <rep>, so that it cannot stop the others. */
static int desired_elements(struct nft_dp *d, const struct pc_model *m, int64_t now, struct nft_elems *out,
                            struct pc_dp_repair *rep, uint64_t *ret_fp)
{
        uint64_t fp = nft_fingerprint_base(d->cfg), h;
        size_t k, appended = 0;

        for (size_t i = 0; i < pc_model_count(m); i++) {
                const struct pc_vps *v = pc_model_at(m, i);
                size_t before = out->n;
                int r = vps_append(d->cfg, v, now, out);

                if (r == 1) {
                        if (rep->skipped++ == 0)
                                snprintf(rep->skipped_example, sizeof(rep->skipped_example),
                                         "%s: interface name '%s' is not safe to program", v->id, v->iface);
                        continue;
                }
                if (r < 0)
                        return r;
                /* room for the rest at the first 256 VPSes' rate (at most
                 * 32 elements each), at once; only a saving: if it cannot
                 * be had, the list grows as it goes */
                if (++appended == 256 && pc_model_count(m) > 256) {
                        size_t per = out->n / 256 + 1;

                        (void)nft_elems_reserve(out, (per < 32 ? per : 32) * pc_model_count(m) * 9 / 8);
                }
                if (ret_fp == NULL)
                        continue;
                /* <m>'s fingerprint (model_fingerprint) as it goes: a VPS
                 * without exceptions or filters has the same elements at
                 * <now> as at time 0, which the fingerprint takes */
                if (v->n_exceptions + v->n_filters == 0)
                        fp += nft_elems_hash_sum(out, before);
                else if ((r = nft_vps_fingerprint(d->cfg, v, now, &d->scratch, &h, &k)) < 0)
                        return r;
                else
                        fp += h;
        }
        if (ret_fp != NULL)
                *ret_fp = fp;
        return nft_elems_group(out);
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
static int model_fingerprint_each(struct nft_dp *d, const struct pc_model *m, int64_t now, uint64_t *ret_fp,
                                  size_t *ret_n, struct pc_dp_repair *rep, uint64_t *each)
{
        uint64_t fp = nft_fingerprint_base(d->cfg);
        size_t n = 0;

        for (size_t i = 0; i < pc_model_count(m); i++) {
                const struct pc_vps *v = pc_model_at(m, i);
                uint64_t h;
                size_t k;
                int r = nft_vps_fingerprint(d->cfg, v, now, &d->scratch, &h, &k);

                if (each != NULL)
                        each[i] = r == 0 ? h : 0;
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

static int model_fingerprint(struct nft_dp *d, const struct pc_model *m, int64_t now, uint64_t *ret_fp,
                             size_t *ret_n, struct pc_dp_repair *rep)
{
        return model_fingerprint_each(d, m, now, ret_fp, ret_n, rep, NULL);
}

static int state_cb(const struct nft_raw_elem *e, void *userdata)
{
        struct nft_state *st = userdata;
        uint32_t w[3];

        if (e->len != sizeof(w))
                return -EIO;
        memcpy(w, e->key, sizeof(w)); /* marks: host byte order */
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
        return nft_nl_set_dump("inet", d->cfg->agent.nft_table, "state", state_cb, &st) == 0 &&
               st.genid == gen && st.fp == fp;
}

/* Whether nothing but the agent has written the ruleset since its last
 * transaction (whatever model that left enforced). */
static bool record_current(struct nft_dp *d)
{
        struct nft_state st = { 0 };
        uint32_t gen = 0;

        return nft_nl_genid(&gen) == 0 &&
               nft_nl_set_dump("inet", d->cfg->agent.nft_table, "state", state_cb, &st) == 0 && st.genid == gen;
}

/* The raw elements of one set, as dumped. */
struct raw_list {
        struct nft_raw_elem *v;
        size_t n, cap;
};

static int raw_push(const struct nft_raw_elem *e, void *userdata)
{
        struct raw_list *l = userdata;

        if (l->n == l->cap) {
                size_t cap = l->cap == 0 ? 1024 : 2 * l->cap;
                struct nft_raw_elem *v = realloc(l->v, cap * sizeof(*v));

                if (v == NULL)
                        return -ENOMEM;
                l->v = v;
                l->cap = cap;
        }
        l->v[l->n++] = *e;
        return 0;
}

/* A read of the kernel: it uses nothing of the handle's but the config
 * (which outlives it), so that it can run in a thread (pc_dp_sync_start). */
struct reader {
        const struct pc_config *cfg;
        struct nft_elems *out;
        struct raw_list raw;
        char *err;
        size_t err_size;
};

/* Reads per-VPS set <set> of table <family> into the reader's elements. */
static int read_set(const char *family, const char *set, const struct nft_set_layout *l, void *userdata)
{
        struct reader *c = userdata;
        size_t bad;
        int r;

        c->raw.n = 0;
        r = nft_nl_set_dump(family, c->cfg->agent.nft_table, set, raw_push, &c->raw);
        /* lifetimes counted from when they were read: a whole read takes
         * seconds at 100,000 VPSes */
        if (r == 0)
                r = nft_raw_decode(family, set, l, c->raw.v, c->raw.n, pc_now(), c->out, &bad);
        if (r < 0)
                snprintf(c->err, c->err_size, "reading set %s of table %s %s: %s", set, family, c->cfg->agent.nft_table,
                         strerror(-r));
        return r;
}

static int skeleton_cb(const struct nft_raw_elem *e, void *userdata)
{
        if (e->len == sizeof(uint32_t))
                memcpy(userdata, e->key, sizeof(uint32_t)); /* a mark: host byte order */
        return 0;
}

static int ignore_cb(const struct nft_raw_elem *e, void *userdata)
{
        return 0;
}

/* True if our table of <family> exists (one of its sets does). */
static bool table_exists(struct nft_dp *d, const char *family)
{
        return nft_nl_set_dump(family, d->cfg->agent.nft_table, strcmp(family, "inet") == 0 ? "skeleton" : "vps",
                               ignore_cb, NULL) == 0;
}

/* True if neither of our tables exists: a cold start, with no record to
 * compare a fingerprint with. */
static bool no_tables(struct nft_dp *d)
{
        return !table_exists(d, "inet") && !table_exists(d, "bridge");
}

/* Reads the kernel's tables of <cfg> through netlink (nft_codec.h): the
 * skeleton id (kept in the inet table) in *<ret_id>, and, if it is that
 * config's, the per-VPS elements of both tables, set by set, into <out>.
 * -ENOENT if either table is missing; other errors explained in <err>. */
static int read_kernel(const struct pc_config *cfg, uint32_t *ret_id, struct nft_elems *out, char *err,
                       size_t err_size)
{
        struct reader c = { cfg, out, { 0 }, err, err_size };
        int r;

        *ret_id = 0;
        r = nft_nl_set_dump("inet", cfg->agent.nft_table, "skeleton", skeleton_cb, ret_id);
        if (r == 0 && *ret_id == nft_skeleton_id(cfg))
                r = nft_per_vps_sets(cfg, read_set, &c);
        free(c.raw.v);
        return r;
}

/* Adds to <b> the addition (<add>) or deletion of the elements of <e>
 * (grouped by set, as normalised lists are), lifetimes counted from <now>.
 * -EINVAL with the reason in d->err for one that cannot be encoded. */
static int batch_elems(struct nft_dp *d, struct nft_nl_batch *b, const struct nft_elems *e, bool add, int64_t now)
{
        struct nft_raw_elem *raw = NULL;
        size_t most = 0;
        int r = 0;

        /* one array for the largest set's (two raw elements for a range
         * of one field), not one grown set after set */
        for (size_t i = 0, j; i < e->n; i = j) {
                j = nft_elems_set_end(e, i);
                most = j - i > most ? j - i : most;
        }
        if (most > 0 && (raw = malloc(2 * most * sizeof(*raw))) == NULL)
                return -ENOMEM;
        for (size_t i = 0, j; i < e->n && r == 0; i = j) {
                const struct nft_elem *x = &e->v[i];
                struct nft_set_layout l;
                size_t n = 0, k;

                j = nft_elems_set_end(e, i);
                if (!nft_set_layout(x->family, x->set, &l))
                        r = -EINVAL;
                for (size_t m = i; m < j && r == 0; m++, n += k)
                        r = nft_raw_encode(&l, &e->v[m], now, &raw[n], &k);
                if (r == -EINVAL)
                        snprintf(d->err, sizeof(d->err), "cannot write element %s of set %s %s", e->v[i].key,
                                 x->family, x->set);
                if (r == 0)
                        r = nft_nl_batch_elems(b, x->family[0] != '\0' ? x->family : "inet", d->cfg->agent.nft_table,
                                               x->set, add, raw, n);
        }
        free(raw);
        return r;
}

/* Commits <b> and the record of <fp> as one transaction through netlink,
 * only if the ruleset's generation is still <genid> (0: unknown, and the
 * record one that never matches): ours is then the one after it.
 * -ERESTART if another transaction came first; nothing changed then. */
static int commit_raw(struct nft_dp *d, const char *what, struct nft_nl_batch *b, uint32_t genid, uint64_t fp)
{
        struct nft_state st = { genid != 0 ? genid + 1 : 0, fp };
        struct nft_raw_elem rec = { .len = 12 };
        uint32_t w[3] = { st.genid, (uint32_t)(fp >> 32), (uint32_t)fp };
        char err[512] = "";
        int r;

        memcpy(rec.key, w, sizeof(w)); /* mark . mark . mark: host byte order */
        r = nft_nl_batch_elems(b, "inet", d->cfg->agent.nft_table, "state", false, NULL, 0);
        if (r == 0)
                r = nft_nl_batch_elems(b, "inet", d->cfg->agent.nft_table, "state", true, &rec, 1);
        if (r == 0)
                r = nft_nl_batch_commit(b, genid, err, sizeof(err));
        if (r == 0)
                d->st = st;
        else if (r != -ERESTART)
                snprintf(d->err, sizeof(d->err), "%s: %s%s", what, err[0] != '\0' ? err : strerror(-r),
                         r == -ENFILE && d->cfg->agent.max_vps != 0 ? full_hint(d) : "");
        return r;
}

/* Programs the whole ruleset where neither table exists: the skeleton,
 * whose sets are empty and so hold nobody to anything (no VPS was held
 * before it either), then every element and the record, through netlink,
 * in a transaction of its own: libnftables would parse 100,000 VPSes'
 * elements as text (BENCHMARKS.md).  <genid>: the ruleset's generation
 * before; -ERESTART if another transaction came in between. */
static int program_fresh(struct nft_dp *d, const struct nft_elems *want, int64_t now, uint32_t genid, uint64_t fp)
{
        struct nft_nl_batch *b = NULL;
        struct strbuf s = { 0 };
        int r;

        nft_skeleton(d->cfg, &s);
        r = s.oom ? -ENOMEM : run(d, "programming the ruleset's skeleton", strbuf_str(&s));
        strbuf_free(&s);
        if (r == 0)
                r = nft_nl_batch_new(&b);
        if (r == 0)
                r = batch_elems(d, b, want, true, now);
        if (r == 0)
                r = commit_raw(d, "programming the elements", b, genid != 0 ? genid + 1 : 0, fp);
        nft_nl_batch_free(b);
        return r;
}

/* A model of more VPSes than agent.max-vps does not fit the sets declared
 * with that size: refused before anything is written, so that the kernel
 * keeps whatever it enforces (a fresh skeleton would hold nobody).
 * -ENFILE. */
static int model_fits(struct nft_dp *d, const struct pc_model *m)
{
        if (d->cfg->agent.max_vps == 0 || pc_model_count(m) <= d->cfg->agent.max_vps)
                return 0;
        snprintf(d->err, sizeof(d->err), "%zu VPSes on this host, more than agent.max-vps (%u): nothing written",
                 pc_model_count(m), d->cfg->agent.max_vps);
        return -ENFILE;
}

/* The same for the elements <want> of each set (grouped by set, as
 * desired_elements() leaves them): a host's addresses may outgrow the
 * source sets' size (nft_set_limit) before its VPSes do.  -ENFILE. */
static int elements_fit(struct nft_dp *d, const struct nft_elems *want)
{
        for (size_t i = 0, j; i < want->n; i = j) {
                unsigned limit = nft_set_limit(d->cfg, want->v[i].family, want->v[i].set);

                j = nft_elems_set_end(want, i);
                if (limit != 0 && j - i > limit) {
                        snprintf(d->err, sizeof(d->err),
                                 "%zu elements for set %s %s, more than its size %u (agent.max-vps %u): nothing written",
                                 j - i, want->v[i].family[0] != '\0' ? want->v[i].family : "inet", want->v[i].set,
                                 limit, d->cfg->agent.max_vps);
                        return -ENFILE;
                }
        }
        return 0;
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

/* Makes the kernel, whose elements <have> were read at ruleset generation
 * <gen>, hold <want> and the record of <fp>: one transaction through
 * netlink, and only onto that generation.  *<rep> says what it repaired.
 * -ERESTART if another transaction came after <gen>: nothing written. */
static int repair(struct nft_dp *d, const struct nft_elems *have, const struct nft_elems *want, int64_t now,
                  uint32_t gen, uint64_t fp, struct pc_dp_repair *rep)
{
        struct nft_elems del = { 0 }, add = { 0 };
        struct nft_nl_batch *b = NULL;
        int r;

        /* Only what drifted (a lifetime the kernel holds is as good as
         * ours within 2 s of counting). */
        r = nft_elems_reconcile(have, want, 2, &del, &add);
        if (r < 0)
                goto out;
        rep->missing = add.n;
        rep->extra = del.n;
        if (del.n + add.n > 0) {
                const struct nft_elem *x = add.n > 0 ? &add.v[0] : &del.v[0];

                snprintf(rep->example, sizeof(rep->example), "%s %s in %s%s%s%s", add.n > 0 ? "missing" : "extra",
                         x->key, strcmp(x->family, "bridge") == 0 ? "bridge " : "", x->set,
                         x->value[0] != '\0' ? " : " : "", x->value);
        }
        /* With nothing to repair, the record alone (another program's
         * transaction, or ours without one, since). */
        r = nft_nl_batch_new(&b);
        if (r == 0)
                r = batch_elems(d, b, &del, false, now);
        if (r == 0)
                r = batch_elems(d, b, &add, true, now);
        if (r == 0)
                r = commit_raw(d, del.n + add.n > 0 ? "repairing drifted elements" : "recording the kernel's state", b,
                               gen, fp);
out:
        nft_nl_batch_free(b);
        nft_elems_free(&del);
        nft_elems_free(&add);
        return r;
}

/* One attempt of nft_sync_all() for <m> of fingerprint <fp> (<n> elements
 * at <now>), or (!<fp_known>, no table there to hold a record) of the
 * fingerprint desired_elements() takes as it goes.  -ERESTART if another
 * transaction came between what it read and what it wrote: nothing was
 * written then. */
static int sync_once(struct nft_dp *d, const struct pc_model *m, int64_t now, uint64_t fp, size_t n,
                     bool fp_known, struct pc_dp_repair *rep)
{
        struct nft_elems want = { 0 }, have = { 0 };
        uint32_t id = 0, want_id = nft_skeleton_id(d->cfg), gen = 0;
        int r;

        if (fp_known && kernel_unchanged(d, fp, &gen)) {
                rep->unchanged = true;
                rep->elements = n;
                d->st = (struct nft_state){ gen, fp };
                return 0;
        }
        if (!fp_known && nft_nl_genid(&gen) < 0)
                gen = 0;
        /* Until this sync's transaction, the kernel is not known to hold
         * the model: a transaction meanwhile records so (genid 0). */
        d->st = (struct nft_state){ 0, fp };
        rep->skipped = 0;
        r = desired_elements(d, m, now, &want, rep, fp_known ? NULL : &fp);
        d->st.fp = fp;
        if (r == 0)
                r = elements_fit(d, &want);
        if (r < 0)
                goto out;
        rep->elements = want.n;
        r = read_kernel(d->cfg, &id, &have, d->err, sizeof(d->err));
        if (r == -ENOENT || (r == 0 && id != want_id)) {
                rep->reprogrammed = true;
                rep->missing = want.n;
                if (r == -ENOENT && !table_exists(d, "inet") && !table_exists(d, "bridge")) {
                        snprintf(rep->why, sizeof(rep->why), "tables inet and bridge %s are missing",
                                 d->cfg->agent.nft_table);
                        r = program_fresh(d, &want, now, gen, fp);
                        goto out;
                }
                if (r == -ENOENT)
                        snprintf(rep->why, sizeof(rep->why), "table inet or bridge %s is missing", d->cfg->agent.nft_table);
                else
                        snprintf(rep->why, sizeof(rep->why),
                                 "table inet %s was built from another config (skeleton 0x%08" PRIx32
                                 ", want 0x%08" PRIx32 ")", d->cfg->agent.nft_table, id, want_id);
                /* Replacing a table that enforces: one transaction, whatever
                 * it costs (libnftables), so that no moment is unenforced. */
                d->st.genid = gen;
                r = program_all(d, &want, now, fp);
                goto out;
        }
        if (r < 0)
                goto out;
        r = repair(d, &have, &want, now, gen, fp, rep);
out:
        nft_elems_free(&want);
        nft_elems_free(&have);
        return r;
}

/* nft_sync_all() once <m>'s fingerprint <fp> and count <n> are known (and
 * the VPSes that cannot be programmed counted in <rep>), as
 * nft_sync_start() knows them: at 100,000 VPSes computing them again cost
 * about 0.2 s of a cold start.  Not <fp_known>: where neither table exists
 * (no record to compare it with), the fingerprint is taken from the
 * elements as they are built (no_tables()). */
static int sync_all_fp(struct nft_dp *d, const struct pc_model *m, int64_t now, uint64_t fp, size_t n,
                       bool fp_known, const struct pc_dp_repair *rep, struct pc_dp_repair *ret)
{
        int r = 0;

        for (int attempt = 0; attempt < 5; attempt++) {
                struct pc_dp_repair one = { .skipped = rep->skipped };

                memcpy(one.skipped_example, rep->skipped_example, sizeof(one.skipped_example));
                r = sync_once(d, m, now, fp, n, fp_known, &one);
                if (r == -ERESTART) {
                        r = 0;
                        continue;
                }
                if (r == 0 && ret != NULL)
                        *ret = one;
                return r;
        }
        snprintf(d->err, sizeof(d->err), "other programs kept changing the ruleset while the agent read it "
                                         "(5 times); nothing written");
        return -EAGAIN;
}

static int nft_sync_all(struct pc_dataplane *dp, const struct pc_model *m, int64_t now,
                        struct pc_dp_repair *ret)
{
        struct nft_dp *d = dp_of(dp);
        struct pc_dp_repair rep = { 0 };
        uint64_t fp;
        size_t n;
        int r;

        bg_free(bg_join(d)); /* what it read may be stale by now */
        r = bridge_netfilter_on(d);
        if (r == 0)
                r = model_fits(d, m);
        if (r < 0)
                return r;
        if (no_tables(d))
                return sync_all_fp(d, m, now, 0, 0, false, &rep, ret);
        r = model_fingerprint(d, m, now, &fp, &n, &rep);
        return r < 0 ? r : sync_all_fp(d, m, now, fp, n, true, &rep, ret);
}

static void *bg_run(void *arg)
{
        struct bg_read *bg = arg;
        uint64_t one = 1;

        bg->r = nft_nl_genid(&bg->genid);
        if (bg->r < 0)
                snprintf(bg->err, sizeof(bg->err), "reading the ruleset's generation: %s", strerror(-bg->r));
        else
                bg->r = read_kernel(bg->cfg, &bg->id, &bg->have, bg->err, sizeof(bg->err));
        /* an eventfd takes 8 bytes, a pipe as many */
        while (write(bg->notify_fd, &one, sizeof(one)) == -1 && errno == EINTR)
                ;
        return NULL;
}

/* Starts reading the kernel in the background; <notify_fd> is written to
 * when it is done.  -ENOMEM, or pthread_create's error. */
static int bg_start(struct nft_dp *d, int notify_fd)
{
        struct bg_read *bg = calloc(1, sizeof(*bg));
        int r;

        if (bg == NULL)
                return -ENOMEM;
        bg->cfg = d->cfg;
        bg->notify_fd = notify_fd;
        r = -pthread_create(&bg->thread, NULL, bg_run, bg);
        if (r < 0) {
                free(bg);
                return r;
        }
        d->bg = bg;
        d->bg_tries++;
        return 0;
}

/* Waits for the background read, if any, and returns it (the caller
 * frees it), or NULL. */
static struct bg_read *bg_join(struct nft_dp *d)
{
        struct bg_read *bg = d->bg;

        if (bg != NULL)
                pthread_join(bg->thread, NULL);
        d->bg = NULL;
        return bg;
}

static void bg_free(struct bg_read *bg)
{
        if (bg != NULL)
                nft_elems_free(&bg->have);
        free(bg);
}

/* A VPS of <m> or <prev> whose elements differ between the two
 * (sync_from_prev): either may be NULL (added, removed). */
struct vps_pair {
        const struct pc_vps *before, *after;
};

/* <v>'s hash in a fleet's fingerprint under <cfg>, the configuration its
 * model points into (0: it cannot be programmed, and adds nothing).
 * -ENOMEM. */
static int vps_hash(struct nft_dp *d, const struct pc_config *cfg, const struct pc_vps *v, int64_t now,
                    uint64_t *ret)
{
        size_t k;
        int r = nft_vps_fingerprint(cfg, v, now, &d->scratch, ret, &k);

        if (r == -EINVAL)
                *ret = 0;
        return r == -EINVAL ? 0 : r;
}


static int pairs_push(struct vps_pair **v, size_t *n, size_t *cap, const struct pc_vps *before,
                      const struct pc_vps *after)
{
        if (*n == *cap) {
                size_t c = *cap == 0 ? 64 : 2 * *cap;
                struct vps_pair *p = realloc(*v, c * sizeof(*p));

                if (p == NULL)
                        return -ENOMEM;
                *v = p;
                *cap = c;
        }
        (*v)[(*n)++] = (struct vps_pair){ before, after };
        return 0;
}

/* nft_sync_start() where the kernel's record does not vouch for <m> (of
 * fingerprint <fp>) but may for <prev>, the model the agent enforced last:
 * if it does (nothing but the agent has written the ruleset since), the
 * kernel holds exactly <prev>'s elements, and those of the VPSes whose
 * hashes differ are changed in one transaction, with the record of <fp>;
 * nothing is read back (at 100,000 VPSes a read takes seconds).  -ESTALE
 * if the record does not vouch for <prev>. */
static int sync_from_prev(struct nft_dp *d, const struct pc_model *m, const uint64_t *m_hashes,
                          const struct pc_model *prev, int64_t now, uint64_t fp, struct pc_dp_repair *rep)
{
        /* <prev> may be of another load of the configuration (a reload):
         * its elements are its own configuration's, and the two must build
         * the same table around them. */
        const struct pc_config *pcfg = pc_model_config(prev);
        struct nft_elems have = { 0 }, want = { 0 };
        struct vps_pair *changed = NULL;
        size_t n = 0, cap = 0;
        uint64_t fp_prev = nft_fingerprint_base(pcfg);
        uint32_t gen;
        int r = 0;

        if (fp_prev != nft_fingerprint_base(d->cfg))
                return -ESTALE;
        /* Each VPS's hash once: <m>'s are known (<m_hashes>, by position). */
        for (size_t i = 0; i < pc_model_count(m) && r == 0; i++) {
                const struct pc_vps *v = pc_model_at(m, i), *p = pc_model_find(prev, v->id);
                uint64_t hp = 0;

                /* equal under the same configuration: the same elements,
                 * and its hash known (at 100,000 VPSes the hashes of the
                 * model before took 180 ms of a start, BENCHMARKS.md) */
                if (p != NULL && pcfg == d->cfg && pc_vps_equal(p, v))
                        hp = m_hashes[i];
                else if (p != NULL)
                        r = vps_hash(d, pcfg, p, now, &hp);
                fp_prev += hp;
                if (r == 0 && (p == NULL || hp != m_hashes[i]))
                        r = pairs_push(&changed, &n, &cap, p, v);
        }
        for (size_t i = 0; i < pc_model_count(prev) && r == 0; i++) {
                const struct pc_vps *p = pc_model_at(prev, i);
                uint64_t hp;

                if (pc_model_find(m, p->id) != NULL)
                        continue;
                r = vps_hash(d, pcfg, p, now, &hp);
                fp_prev += hp;
                if (r == 0)
                        r = pairs_push(&changed, &n, &cap, p, NULL);
        }
        if (r == 0 && !kernel_unchanged(d, fp_prev, &gen))
                r = -ESTALE;
        for (size_t i = 0; i < n && r >= 0; i++) { /* (1: a VPS left out) */
                if (changed[i].before != NULL)
                        r = vps_append(pcfg, changed[i].before, now, &have);
                if (r >= 0 && changed[i].after != NULL)
                        r = vps_append(d->cfg, changed[i].after, now, &want);
        }
        r = r > 0 ? 0 : r;
        if (r == 0)
                r = nft_elems_group(&have);
        if (r == 0)
                r = nft_elems_group(&want);
        if (r == 0)
                r = repair(d, &have, &want, now, gen, fp, rep);
        if (r == 0) {
                rep->from_prev = true;
                rep->changed = n;
        }
        free(changed);
        nft_elems_free(&have);
        nft_elems_free(&want);
        return r;
}

static int nft_sync_start(struct pc_dataplane *dp, const struct pc_model *m, int64_t now, int notify_fd,
                          pc_dp_prev_fn prev, void *prev_arg, struct pc_dp_repair *ret)
{
        struct nft_dp *d = dp_of(dp);
        struct pc_dp_repair rep = { 0 };
        uint64_t *hashes = NULL;
        uint32_t gen, id = 0;
        uint64_t fp;
        size_t n;
        int r;

        bg_free(bg_join(d));
        r = bridge_netfilter_on(d);
        if (r == 0)
                r = model_fits(d, m);
        if (r < 0)
                return r;
        if (no_tables(d))
                return sync_all_fp(d, m, now, 0, 0, false, &rep, ret);
        /* each VPS's hash kept for sync_from_prev() */
        if (prev != NULL && (hashes = calloc(pc_model_count(m) + 1, sizeof(*hashes))) == NULL)
                return -ENOMEM;
        r = model_fingerprint_each(d, m, now, &fp, &n, &rep, hashes);
        if (r < 0)
                goto out;
        if (kernel_unchanged(d, fp, &gen)) {
                rep.unchanged = true;
                rep.elements = n;
                d->st = (struct nft_state){ gen, fp };
                goto done;
        }
        /* (the model before is read only if the record may vouch for it) */
        if (prev != NULL && record_current(d)) {
                const struct pc_model *before = prev(prev_arg);

                r = before != NULL ? sync_from_prev(d, m, hashes, before, now, fp, &rep) : -ESTALE;
                if (r == 0) {
                        rep.elements = n;
                        goto done;
                }
                /* Otherwise nothing was written (-ESTALE: the record does
                 * not vouch for it; -ERESTART: another program's
                 * transaction meanwhile; or it failed): as without it. */
                rep.missing = rep.extra = 0;
        }
        /* In the background only where our tables of this config are in
         * place, and enforce what they hold meanwhile; the rest (the
         * tables to write) cannot wait. */
        if (nft_nl_set_dump("inet", d->cfg->agent.nft_table, "skeleton", skeleton_cb, &id) == 0 &&
            id == nft_skeleton_id(d->cfg) && table_exists(d, "bridge")) {
                /* until it is repaired, no record of ours is trusted */
                d->st = (struct nft_state){ 0, fp };
                d->bg_tries = 0;
                if (bg_start(d, notify_fd) == 0) {
                        r = -EINPROGRESS;
                        goto out;
                }
        }
        r = sync_all_fp(d, m, now, fp, n, true, &rep, ret);
        goto out;
done:
        r = 0;
        if (ret != NULL)
                *ret = rep;
out:
        free(hashes);
        return r;
}

static int nft_sync_finish(struct pc_dataplane *dp, const struct pc_model *m, int64_t now, int notify_fd,
                           struct pc_dp_repair *ret)
{
        struct nft_dp *d = dp_of(dp);
        struct bg_read *bg = bg_join(d);
        struct pc_dp_repair rep = { 0 };
        struct nft_elems want = { 0 };
        uint64_t fp;
        size_t n;
        int r;

        if (bg == NULL)
                return -EALREADY;
        if (bg->r < 0 || bg->id != nft_skeleton_id(d->cfg)) {
                /* it could not be read, or our table was replaced meanwhile */
                bg_free(bg);
                return nft_sync_all(dp, m, now, ret);
        }
        r = model_fingerprint(d, m, now, &fp, &n, &rep);
        rep.skipped = 0;
        if (r == 0)
                r = desired_elements(d, m, now, &want, &rep, NULL);
        rep.elements = want.n;
        if (r == 0)
                r = repair(d, &bg->have, &want, now, bg->genid, fp, &rep);
        bg_free(bg);
        nft_elems_free(&want);
        /* A transaction since it read (a change applied meanwhile): read
         * again, twice; then read and write without taking changes. */
        if (r == -ERESTART && d->bg_tries < 3 && bg_start(d, notify_fd) == 0)
                return -EINPROGRESS;
        if (r == -ERESTART)
                return nft_sync_all(dp, m, now, ret);
        if (r == 0 && ret != NULL)
                *ret = rep;
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
        if ((r = nft_elems_normalise(&old)) == 0 && (r = nft_elems_normalise(&new)) == 0)
                r = nft_elems_diff(&old, &new, &del, &add);
        old.n = 0; /* reused below */
        /* Nothing for the kernel, and nothing to record either (the record
         * changes when what ended leaves the model: agent_expiry_pass) */
        if (r < 0 || (del.n + add.n == 0 && fp == d->st.fp))
                goto out;
        /* Each deletion after an addition of the same element, so that it
         * cannot fail on one that is missing: the kernel may not hold the
         * model yet (pc_dp_sync_start), or may have drifted. */
        for (size_t i = 0; i < del.n && r == 0; i++) {
                struct nft_elem x = del.v[i];

                x.until = 0;
                r = nft_elems_push(&old, &x);
        }
        if (r < 0)
                goto out;
        nft_elems_commands(d->cfg->agent.nft_table, &old, true, now, &b);
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

struct verdicts_ctx {
        const char *family;
        pc_dp_verdict_cb cb;
        void *userdata;
};

/* A counter of the table: a verdict's to the callback, others ignored. */
static int verdict_cb(const struct nft_nl_counter *c, void *userdata)
{
        const size_t len = strlen(NFT_VERDICT_PREFIX);
        struct verdicts_ctx *v = userdata;
        struct pc_dp_verdict x = { .family = v->family, .packets = c->packets, .bytes = c->bytes };

        if (strncmp(c->name, NFT_VERDICT_PREFIX, len) != 0 || c->name[len] == '\0')
                return 0;
        snprintf(x.reason, sizeof(x.reason), "%s", c->name + len);
        return v->cb(&x, v->userdata);
}

static int nft_verdicts(struct pc_dataplane *dp, pc_dp_verdict_cb cb, void *userdata)
{
        struct nft_dp *d = dp_of(dp);
        static const char *const families[] = { "inet", "bridge" };
        int r = 0;

        /* The bridge table counts for bridged sites only (nft_ruleset.h). */
        for (size_t i = 0; i < (pc_config_has_bridged(d->cfg) ? 2 : 1) && r == 0; i++) {
                struct verdicts_ctx v = { families[i], cb, userdata };

                r = nft_nl_counters(families[i], d->cfg->agent.nft_table, verdict_cb, &v);
                if (r == -ENOENT) /* no such table: nothing counted there */
                        r = 0;
                else if (r < 0)
                        snprintf(d->err, sizeof(d->err), "reading the verdict counters of table %s %s: %s",
                                 families[i], d->cfg->agent.nft_table, strerror(-r));
        }
        return r;
}

static int nft_held(struct pc_dataplane *dp, size_t *ret)
{
        struct nft_elems have = { 0 };
        uint32_t id;
        int r = read_kernel(dp_of(dp)->cfg, &id, &have, dp_of(dp)->err, sizeof(dp_of(dp)->err));

        *ret = r == 0 ? have.n : 0;
        nft_elems_free(&have);
        return r == -ENOENT ? 0 : r;
}

static uint64_t nft_fingerprint(const struct pc_dataplane *dp)
{
        return ((const struct nft_dp *)dp)->st.fp;
}

static bool nft_enforces(struct pc_dataplane *dp, uint64_t fp)
{
        uint32_t gen;

        return kernel_unchanged(dp_of(dp), fp, &gen);
}

static int nft_scan_release(struct pc_dataplane *dp, const struct pc_vps *vps)
{
        struct nft_dp *d = dp_of(dp);
        const char *t = d->cfg->agent.nft_table, *f = nft_vps_family(vps), *i = vps->iface;
        char cmd[512];

        if (!pc_ifname_valid(i))
                return -EINVAL;
        /* Added first, so that deleting never fails on an element the
         * kernel did not make (this nft has no 'destroy element'). */
        snprintf(cmd, sizeof(cmd),
                 "add element %s %s scan_hold { \"%s\" }\ndelete element %s %s scan_hold { \"%s\" }\n"
                 "add element %s %s scan_budget { \"%s\" }\ndelete element %s %s scan_budget { \"%s\" }\n",
                 f, t, i, f, t, i, f, t, i, f, t, i);
        return commit_text(d, "releasing a VPS from scan containment", cmd);
}

static int nft_scan_hold(struct pc_dataplane *dp, const struct pc_vps *vps)
{
        struct nft_dp *d = dp_of(dp);
        const char *t = d->cfg->agent.nft_table, *f = nft_vps_family(vps), *i = vps->iface;
        char cmd[384];

        if (!pc_ifname_valid(i))
                return -EINVAL;
        /* deleted first: an element the kernel added has less time left */
        snprintf(cmd, sizeof(cmd),
                 "add element %s %s scan_hold { \"%s\" }\ndelete element %s %s scan_hold { \"%s\" }\n"
                 "add element %s %s scan_hold { \"%s\" }\n",
                 f, t, i, f, t, i, f, t, i);
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
        .sync_start = nft_sync_start,
        .sync_finish = nft_sync_finish,
        .vps_change = nft_vps_change,
        .attempts = nft_attempts,
        .spoofed = nft_spoofed,
        .verdicts = nft_verdicts,
        .destroy = nft_destroy,
        .held = nft_held,
        .scan_release = nft_scan_release,
        .scan_hold = nft_scan_hold,
        .fingerprint = nft_fingerprint,
        .enforces = nft_enforces,
};
