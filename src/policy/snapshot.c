/* A host's policy as text, and back: the format is drawn in snapshot.h.
 * Writing is a straight walk of the model; reading trusts nothing (the
 * file is local, but a torn write, a full disk or an editor must never
 * crash the agent or half-apply a policy): the checksum first, then every
 * line by its exact number of fields, every field bounded. */
#include "policy/snapshot.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIELDS_MAX 14      /* the most of any line (vps: 13) plus one to catch extras */
#define FIELD_MAX 512      /* decoded; the longest field a model holds is 256 */
#define VPS_LINE_MIN 28    /* "vps" and 12 one-byte fields, spaces and newline */

/* ---- writing ---- */

static void put_raw(struct strbuf *b, const char *s)
{
        strbuf_append(b, s, strlen(s));
}

/* Appends " " and <s> encoded as a field. */
static void put_str(struct strbuf *b, const char *s)
{
        static const char hex[] = "0123456789ABCDEF";
        size_t n = strlen(s);
        char *o;

        if (!strbuf_reserve(b, 1 + 3 * n + 3))
                return;
        o = b->s + b->len;
        *o++ = ' ';
        if (n == 0) {
                *o++ = '-';
        } else if (n == 1 && s[0] == '-') {
                memcpy(o, "%2D", 3);
                o += 3;
        } else {
                for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
                        if (*p > ' ' && *p < 0x7f && *p != '%') {
                                *o++ = (char)*p;
                        } else {
                                *o++ = '%';
                                *o++ = hex[*p >> 4];
                                *o++ = hex[*p & 15];
                        }
                }
        }
        *o = '\0';
        b->len = (size_t)(o - b->s);
}

/* Appends " " and <v> in decimal. */
static void put_int(struct strbuf *b, int64_t v)
{
        char buf[24], *p = buf + sizeof(buf);
        uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

        do {
                *--p = (char)('0' + u % 10);
                u /= 10;
        } while (u != 0);
        if (v < 0)
                *--p = '-';
        *--p = ' ';
        strbuf_append(b, p, (size_t)(buf + sizeof(buf) - p));
}

static void put_scope(struct strbuf *b, const struct pc_filter *f)
{
        char buf[PC_NAME_MAX + 16];

        switch (f->scope) {
        case PC_SCOPE_ALL:
                snprintf(buf, sizeof(buf), "all");
                break;
        case PC_SCOPE_SERVICE:
                snprintf(buf, sizeof(buf), "service:%s", f->service != NULL ? f->service->name : "");
                break;
        default:
                pc_port_range_format(&f->ports, buf, sizeof(buf));
                break;
        }
        put_str(b, buf);
}

static void put_vps(struct strbuf *b, const struct pc_vps *v)
{
        char buf[PC_PORTS_CANON_MAX]; /* a MAC, a prefix or a port subset */

        put_raw(b, "vps");
        put_str(b, v->id);
        put_str(b, v->site->name);
        put_str(b, v->iface);
        buf[0] = '\0';
        if (v->has_mac)
                pc_format_mac(v->mac, buf, sizeof(buf));
        put_str(b, buf);
        put_str(b, v->owner);
        put_str(b, v->lang);
        put_int(b, v->created);
        put_int(b, v->stopped ? 1 : 0);
        put_int(b, v->run_since);
        put_str(b, v->host);
        put_str(b, v->moving_from);
        put_str(b, v->moving_iface);
        put_raw(b, "\n");
        for (size_t i = 0; i < v->n_addrs; i++) {
                pc_format_prefix(&v->addrs[i], buf, sizeof(buf));
                put_raw(b, "addr");
                put_str(b, buf);
                put_raw(b, "\n");
        }
        for (size_t i = 0; i < v->n_exceptions; i++) {
                const struct pc_exception *e = &v->exceptions[i];

                pc_ports_format(e->ports, e->n_ports, buf, sizeof(buf));
                put_raw(b, "exception");
                put_int(b, e->id);
                put_str(b, e->service);
                put_str(b, buf);
                put_int(b, e->ticket_id);
                put_int(b, e->created);
                put_int(b, e->until);
                put_str(b, e->by);
                put_str(b, e->reason);
                put_raw(b, "\n");
        }
        for (size_t i = 0; i < v->n_filters; i++) {
                const struct pc_filter *f = &v->filters[i];

                if (f->exception_id != 0)
                        continue; /* its exception derives it again */
                put_raw(b, "filter");
                put_int(b, f->id);
                put_str(b, pc_dir_name(f->direction));
                put_scope(b, f);
                put_int(b, f->incident_id);
                put_int(b, f->created);
                put_int(b, f->until);
                put_str(b, f->by);
                put_str(b, f->reason);
                put_raw(b, "\n");
        }
        if (v->suspended) {
                const struct pc_suspension *s = &v->suspension;

                put_raw(b, "suspension");
                put_int(b, s->id);
                put_int(b, s->incident_id);
                put_int(b, s->created);
                put_int(b, s->terminated ? 1 : 0);
                put_str(b, s->by);
                put_str(b, s->reason);
                put_raw(b, "\n");
        }
}

int pc_snapshot_format(const struct pc_model *m, const struct pc_snapshot_head *head, struct strbuf *out,
                       size_t *ret_vpses)
{
        char fp[20];
        size_t n = 0;

        put_raw(out, PC_SNAPSHOT_MAGIC);
        put_int(out, PC_SNAPSHOT_VERSION);
        put_raw(out, "\nhost");
        put_str(out, head->host);
        put_raw(out, "\nwritten");
        put_int(out, head->written);
        put_raw(out, "\nloaded");
        put_int(out, head->loaded);
        snprintf(fp, sizeof(fp), " %016" PRIx64 "\n", head->fingerprint);
        put_raw(out, "\nfingerprint");
        put_raw(out, fp);
        for (size_t i = 0; i < pc_model_count(m) && !out->oom; i++) {
                const struct pc_vps *v = pc_model_at(m, i);

                if (v->site == NULL)
                        continue;
                put_vps(out, v);
                n++;
        }
        if (out->oom)
                return -ENOMEM;
        if (ret_vpses != NULL)
                *ret_vpses = n;
        return 0;
}

uint64_t pc_snapshot_checksum(const void *p, size_t len)
{
        const unsigned char *b = p;
        uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)len;
        size_t i = 0;

        /* Eight bytes a step (a 10 MB file in a few ms), every bit of each
         * spread over the state before the next. */
        for (; i + 8 <= len; i += 8) {
                uint64_t w;

                memcpy(&w, b + i, 8);
                h = (h ^ le64toh(w)) * 0x9e3779b97f4a7c15ULL;
                h ^= h >> 29;
        }
        for (; i < len; i++) {
                h = (h ^ b[i]) * 0x100000001b3ULL;
                h ^= h >> 29;
        }
        return h;
}

void pc_snapshot_seal(struct strbuf *out, size_t vpses)
{
        uint64_t sum = pc_snapshot_checksum(strbuf_str(out), out->len);

        strbuf_printf(out, "end %zu %016" PRIx64 "\n", vpses, sum);
}

/* ---- reading ---- */

struct reader {
        struct pc_model *m;
        int64_t now;
        struct pc_snapshot_stats *st;
        struct pc_vps *vps;  /* being read; NULL: none, or one left out */
        bool skipping;       /* the lines of a VPS left out */
        size_t line;
        char *err;
        size_t errsz;
};

static int fail(struct reader *rd, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(struct reader *rd, int r, const char *fmt, ...)
{
        va_list ap;
        int n = 0;

        if (rd->errsz == 0)
                return r;
        if (rd->line > 0)
                n = snprintf(rd->err, rd->errsz, "line %zu: ", rd->line);
        if (n < 0 || (size_t)n >= rd->errsz)
                return r;
        va_start(ap, fmt);
        vsnprintf(rd->err + n, rd->errsz - (size_t)n, fmt, ap);
        va_end(ap);
        return r;
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* Decodes field <f> (<n> bytes) into <buf> of <size>: -EINVAL if it is
 * malformed, holds a NUL or does not fit. */
static int decode(const char *f, size_t n, char *buf, size_t size)
{
        size_t o = 0;

        if (n == 1 && f[0] == '-') {
                buf[0] = '\0';
                return 0;
        }
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)f[i];

                if (c == '%') {
                        int hi = i + 2 < n ? hexval(f[i + 1]) : -1, lo = i + 2 < n ? hexval(f[i + 2]) : -1;

                        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                                return -EINVAL;
                        c = (unsigned char)(hi << 4 | lo);
                        i += 2;
                } else if (c <= ' ' || c >= 0x7f) {
                        return -EINVAL;
                }
                if (o + 1 >= size)
                        return -EINVAL;
                buf[o++] = (char)c;
        }
        if (n == 0)
                return -EINVAL;
        buf[o] = '\0';
        return 0;
}

/* A line split into its fields (pointers into the text, not terminated). */
struct line {
        const char *f[FIELDS_MAX];
        size_t n[FIELDS_MAX];
        size_t count;
};

/* Splits <p> (<len> bytes, no newline) at single spaces: -EINVAL for an
 * empty field (two spaces, a space at either end) or too many. */
static int split(const char *p, size_t len, struct line *l)
{
        size_t start = 0;

        l->count = 0;
        for (size_t i = 0; i <= len; i++) {
                if (i < len && p[i] != ' ')
                        continue;
                if (i == start || l->count == FIELDS_MAX)
                        return -EINVAL;
                l->f[l->count] = p + start;
                l->n[l->count] = i - start;
                l->count++;
                start = i + 1;
        }
        return 0;
}

static bool is(const struct line *l, size_t i, const char *word)
{
        return l->n[i] == strlen(word) && memcmp(l->f[i], word, l->n[i]) == 0;
}

static int field_str(struct reader *rd, const struct line *l, size_t i, const char *what, char *buf, size_t size)
{
        if (decode(l->f[i], l->n[i], buf, size) < 0)
                return fail(rd, -EINVAL, "bad %s", what);
        return 0;
}

/* Field <i> as what put_int writes: an optional '-', then decimal digits
 * only, within int64_t; by hand, without a copy for strtoll (a read at
 * 100,000 VPSes takes some 270,000 numbers). */
static int field_int(struct reader *rd, const struct line *l, size_t i, const char *what, int64_t *ret)
{
        const char *p = l->f[i], *end = p + l->n[i];
        bool neg = *p == '-';
        uint64_t u = 0, max = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;

        p += neg;
        if (l->n[i] >= 24 || p == end)
                return fail(rd, -EINVAL, "bad %s", what);
        for (; p < end; p++) {
                unsigned d = (unsigned)(unsigned char)*p - '0';

                if (d > 9 || u > (max - d) / 10)
                        return fail(rd, -EINVAL, "bad %s", what);
                u = u * 10 + d;
        }
        *ret = !neg ? (int64_t)u : u == max ? INT64_MIN : -(int64_t)u;
        return 0;
}

static int field_bool(struct reader *rd, const struct line *l, size_t i, const char *what, bool *ret)
{
        if (is(l, i, "0") || is(l, i, "1")) {
                *ret = l->f[i][0] == '1';
                return 0;
        }
        return fail(rd, -EINVAL, "bad %s", what);
}

/* The VPS being read, into the model. */
static int vps_done(struct reader *rd)
{
        struct pc_vps *v = rd->vps;
        int r;

        rd->vps = NULL;
        if (v == NULL)
                return 0;
        r = pc_model_add(rd->m, v);
        if (r < 0) {
                fail(rd, r, r == -EEXIST ? "VPS %s twice" : "VPS %s: cannot add it", v->id);
                pc_vps_free(v);
                return r;
        }
        rd->st->loaded++;
        return 0;
}

static void left_out(struct reader *rd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void left_out(struct reader *rd, const char *fmt, ...)
{
        va_list ap;

        if (rd->st->example[0] != '\0')
                return;
        va_start(ap, fmt);
        vsnprintf(rd->st->example, sizeof(rd->st->example), fmt, ap);
        va_end(ap);
}

static int read_vps(struct reader *rd, const struct line *l)
{
        const struct pc_config *cfg = pc_model_config(rd->m);
        char site[PC_NAME_MAX], mac[32];
        struct pc_vps *v = NULL;
        bool stopped;
        int r;

        if (l->count != 13)
                return fail(rd, -EINVAL, "a vps line has 13 fields, not %zu", l->count);
        r = vps_done(rd);
        if (r < 0)
                return r;
        rd->st->vpses++;
        r = pc_vps_new(&v);
        if (r < 0)
                return fail(rd, r, "out of memory");
        if ((r = field_str(rd, l, 1, "VPS id", v->id, sizeof(v->id))) < 0 ||
            (r = field_str(rd, l, 2, "site", site, sizeof(site))) < 0 ||
            (r = field_str(rd, l, 3, "interface", v->iface, sizeof(v->iface))) < 0 ||
            (r = field_str(rd, l, 4, "MAC", mac, sizeof(mac))) < 0 ||
            (r = field_str(rd, l, 5, "owner", v->owner, sizeof(v->owner))) < 0 ||
            (r = field_str(rd, l, 6, "language", v->lang, sizeof(v->lang))) < 0 ||
            (r = field_int(rd, l, 7, "created", &v->created)) < 0 ||
            (r = field_bool(rd, l, 8, "stopped", &stopped)) < 0 ||
            (r = field_int(rd, l, 9, "run-since", &v->run_since)) < 0 ||
            (r = field_str(rd, l, 10, "host", v->host, sizeof(v->host))) < 0 ||
            (r = field_str(rd, l, 11, "moving-from", v->moving_from, sizeof(v->moving_from))) < 0 ||
            (r = field_str(rd, l, 12, "moving-iface", v->moving_iface, sizeof(v->moving_iface))) < 0)
                goto out;
        v->stopped = stopped;
        if (!pc_name_valid(v->id)) {
                r = fail(rd, -EINVAL, "bad VPS id");
                goto out;
        }
        if (mac[0] != '\0') {
                if (pc_parse_mac(mac, v->mac) < 0) {
                        r = fail(rd, -EINVAL, "%s: bad MAC", v->id);
                        goto out;
                }
                v->has_mac = true;
        }
        v->site = pc_config_site(cfg, site);
        rd->skipping = v->site == NULL;
        if (v->site == NULL) {
                rd->st->no_site++;
                left_out(rd, "%s: site %s is not in the configuration", v->id, site);
                goto out; /* r is 0: its lines are read and left out */
        }
        rd->vps = v;
        return 0;
out:
        pc_vps_free(v);
        return r;
}

static int read_addr(struct reader *rd, const struct line *l)
{
        char buf[64];
        struct pc_prefix p;
        int r;

        if (l->count != 2)
                return fail(rd, -EINVAL, "an addr line has 2 fields, not %zu", l->count);
        if ((r = field_str(rd, l, 1, "address", buf, sizeof(buf))) < 0)
                return r;
        if (pc_parse_prefix(buf, false, &p) < 0)
                return fail(rd, -EINVAL, "bad address");
        if (rd->vps == NULL)
                return 0;
        r = pc_vps_add_addr(rd->vps, &p);
        return r < 0 ? fail(rd, r, "%s: cannot add address %s", rd->vps->id, buf) : 0;
}

static int read_exception(struct reader *rd, const struct line *l)
{
        struct pc_exception e = { 0 };
        char ports[PC_PORTS_CANON_MAX], perr[128];
        int r;

        if (l->count != 9)
                return fail(rd, -EINVAL, "an exception line has 9 fields, not %zu", l->count);
        if ((r = field_int(rd, l, 1, "exception id", &e.id)) < 0 ||
            (r = field_str(rd, l, 2, "service", e.service, sizeof(e.service))) < 0 ||
            (r = field_str(rd, l, 3, "ports", ports, sizeof(ports))) < 0 ||
            (r = field_int(rd, l, 4, "ticket", &e.ticket_id)) < 0 ||
            (r = field_int(rd, l, 5, "created", &e.created)) < 0 ||
            (r = field_int(rd, l, 6, "until", &e.until)) < 0 ||
            (r = field_str(rd, l, 7, "by", e.by, sizeof(e.by))) < 0 ||
            (r = field_str(rd, l, 8, "reason", e.reason, sizeof(e.reason))) < 0)
                return r;
        if (!pc_exception_subject_valid(e.service))
                return fail(rd, -EINVAL, "bad service");
        if (ports[0] != '\0' && pc_ports_parse(ports, e.ports, &e.n_ports, perr, sizeof(perr)) < 0)
                return fail(rd, -EINVAL, "bad ports: %s", perr);
        if (rd->vps == NULL)
                return 0;
        if (e.until != 0 && e.until <= rd->now) {
                rd->st->ended++;
                return 0;
        }
        r = pc_vps_add_exception(rd->vps, &e);
        return r < 0 ? fail(rd, r, "%s: cannot add exception #%" PRId64, rd->vps->id, e.id) : 0;
}

static int read_filter(struct reader *rd, const struct line *l)
{
        struct pc_filter f = { 0 };
        char dir[16], scope[PC_NAME_MAX + 16], perr[128];
        int r;

        if (l->count != 9)
                return fail(rd, -EINVAL, "a filter line has 9 fields, not %zu", l->count);
        if ((r = field_int(rd, l, 1, "filter id", &f.id)) < 0 ||
            (r = field_str(rd, l, 2, "direction", dir, sizeof(dir))) < 0 ||
            (r = field_str(rd, l, 3, "scope", scope, sizeof(scope))) < 0 ||
            (r = field_int(rd, l, 4, "incident", &f.incident_id)) < 0 ||
            (r = field_int(rd, l, 5, "created", &f.created)) < 0 ||
            (r = field_int(rd, l, 6, "until", &f.until)) < 0 ||
            (r = field_str(rd, l, 7, "by", f.by, sizeof(f.by))) < 0 ||
            (r = field_str(rd, l, 8, "reason", f.reason, sizeof(f.reason))) < 0)
                return r;
        if (pc_dir_parse(dir, &f.direction) < 0 || f.direction == 0)
                return fail(rd, -EINVAL, "bad direction");
        if (strcmp(scope, "all") == 0) {
                f.scope = PC_SCOPE_ALL;
        } else if (strncmp(scope, "service:", 8) == 0) {
                f.scope = PC_SCOPE_SERVICE;
                if (!pc_name_valid(scope + 8))
                        return fail(rd, -EINVAL, "bad scope");
                f.service = pc_config_service(pc_model_config(rd->m), scope + 8);
        } else {
                f.scope = PC_SCOPE_PORTS;
                if (pc_port_range_parse(scope, &f.ports, perr, sizeof(perr)) < 0)
                        return fail(rd, -EINVAL, "bad scope: %s", perr);
        }
        if (rd->vps == NULL)
                return 0;
        if (f.until != 0 && f.until <= rd->now) {
                rd->st->ended++;
                return 0;
        }
        if (f.scope == PC_SCOPE_SERVICE && f.service == NULL) {
                rd->st->unresolved++;
                left_out(rd, "%s: filter #%" PRId64 " of service %s, which the configuration no longer has",
                         rd->vps->id, f.id, scope + 8);
                return 0;
        }
        r = pc_vps_add_filter(rd->vps, &f);
        return r < 0 ? fail(rd, r, "%s: cannot add filter #%" PRId64, rd->vps->id, f.id) : 0;
}

static int read_suspension(struct reader *rd, const struct line *l)
{
        struct pc_suspension s = { 0 };
        int r;

        if (l->count != 7)
                return fail(rd, -EINVAL, "a suspension line has 7 fields, not %zu", l->count);
        if ((r = field_int(rd, l, 1, "suspension id", &s.id)) < 0 ||
            (r = field_int(rd, l, 2, "incident", &s.incident_id)) < 0 ||
            (r = field_int(rd, l, 3, "created", &s.created)) < 0 ||
            (r = field_bool(rd, l, 4, "terminated", &s.terminated)) < 0 ||
            (r = field_str(rd, l, 5, "by", s.by, sizeof(s.by))) < 0 ||
            (r = field_str(rd, l, 6, "reason", s.reason, sizeof(s.reason))) < 0)
                return r;
        if (rd->vps == NULL)
                return 0;
        if (rd->vps->suspended)
                return fail(rd, -EINVAL, "%s: suspended twice", rd->vps->id);
        rd->vps->suspended = true;
        rd->vps->suspension = s;
        return 0;
}

/* One line of the body (after the head). */
static int read_line(struct reader *rd, const struct line *l)
{
        if (is(l, 0, "vps"))
                return read_vps(rd, l);
        if (rd->vps == NULL && !rd->skipping)
                return fail(rd, -EINVAL, "a line before the first vps");
        if (is(l, 0, "addr"))
                return read_addr(rd, l);
        if (is(l, 0, "exception"))
                return read_exception(rd, l);
        if (is(l, 0, "filter"))
                return read_filter(rd, l);
        if (is(l, 0, "suspension"))
                return read_suspension(rd, l);
        return fail(rd, -EINVAL, "unknown record");
}

/* The head's lines: <i> 0 magic and version, 1 host, 2 written, 3
 * loaded, 4 fingerprint. */
static int read_head(struct reader *rd, const struct line *l, size_t i, struct pc_snapshot_head *h)
{
        static const char *const word[] = { PC_SNAPSHOT_MAGIC, "host", "written", "loaded", "fingerprint" };
        char buf[24], *end;
        int64_t v;

        if (l->count != 2 || !is(l, 0, word[i]))
                return fail(rd, -EINVAL, "expected '%s'", word[i]);
        switch (i) {
        case 0:
                if (field_int(rd, l, 1, "version", &v) < 0)
                        return -EINVAL;
                if (v != PC_SNAPSHOT_VERSION)
                        return fail(rd, -EPROTONOSUPPORT, "format version %" PRId64 ", this build reads %d", v,
                                    PC_SNAPSHOT_VERSION);
                h->version = (int)v;
                return 0;
        case 1:
                if (field_str(rd, l, 1, "host", h->host, sizeof(h->host)) < 0)
                        return -EINVAL;
                if (h->host[0] != '\0' && !pc_name_valid(h->host))
                        return fail(rd, -EINVAL, "bad host");
                return 0;
        case 2:
                return field_int(rd, l, 1, "time", &h->written);
        case 3:
                return field_int(rd, l, 1, "time", &h->loaded);
        default:
                if (l->n[1] != 16)
                        return fail(rd, -EINVAL, "bad fingerprint");
                memcpy(buf, l->f[1], 16);
                buf[16] = '\0';
                for (size_t k = 0; k < 16; k++)
                        if (hexval(buf[k]) < 0)
                                return fail(rd, -EINVAL, "bad fingerprint");
                h->fingerprint = strtoull(buf, &end, 16);
                return 0;
        }
}

/* Checks the "end" line, the last, against the rest: *<ret_body> the
 * length before it, *<ret_vpses> the count it gives. */
static int check_end(struct reader *rd, const char *text, size_t len, size_t *ret_body, int64_t *ret_vpses)
{
        size_t start;
        struct line l;
        uint64_t want;
        char hex[17], *end;

        if (len == 0 || text[len - 1] != '\n')
                return fail(rd, -EINVAL, "torn: it does not end with a complete line");
        start = len - 1;
        while (start > 0 && text[start - 1] != '\n')
                start--;
        if (split(text + start, len - 1 - start, &l) < 0 || l.count != 3 || !is(&l, 0, "end"))
                return fail(rd, -EINVAL, "torn: its last line is not the 'end' line");
        if (field_int(rd, &l, 1, "VPS count", ret_vpses) < 0 || *ret_vpses < 0)
                return fail(rd, -EINVAL, "torn: a bad 'end' line");
        if (l.n[2] != 16)
                return fail(rd, -EINVAL, "torn: a bad checksum");
        memcpy(hex, l.f[2], 16);
        hex[16] = '\0';
        for (size_t k = 0; k < 16; k++)
                if (hexval(hex[k]) < 0)
                        return fail(rd, -EINVAL, "torn: a bad checksum");
        want = strtoull(hex, &end, 16);
        if (pc_snapshot_checksum(text, start) != want)
                return fail(rd, -EINVAL, "checksum mismatch: the file was cut short or changed");
        *ret_body = start;
        return 0;
}

/* Empties <m> again. */
static void model_clear(struct pc_model *m)
{
        while (pc_model_count(m) > 0) {
                char id[PC_NAME_MAX];

                snprintf(id, sizeof(id), "%s", pc_model_at(m, 0)->id);
                if (pc_model_remove(m, id) < 0)
                        break;
        }
}

int pc_snapshot_parse(const char *text, size_t len, struct pc_model *m, int64_t now, struct pc_snapshot_head *ret_head,
                      struct pc_snapshot_stats *ret_stats, char *err, size_t errsz)
{
        struct pc_snapshot_stats st = { 0 };
        struct pc_snapshot_head h = { 0 };
        struct reader rd = { .m = m, .now = now, .st = &st, .err = err, .errsz = errsz };
        size_t body = 0, pos = 0, magic = strlen(PC_SNAPSHOT_MAGIC);
        int64_t vpses = 0;
        int r = 0;

        if (errsz > 0)
                err[0] = '\0';
        if (pc_model_count(m) != 0)
                return fail(&rd, -EINVAL, "the model is not empty");
        if (len < magic + 1 || memcmp(text, PC_SNAPSHOT_MAGIC " ", magic + 1) != 0)
                return fail(&rd, -EINVAL, "not a Portcullis snapshot");
        if (memchr(text, '\0', len) != NULL)
                return fail(&rd, -EINVAL, "not a Portcullis snapshot (a NUL byte)");
        /* The version first: another version's file is refused as such. */
        {
                const char *nl = memchr(text, '\n', len);
                struct line l;

                if (nl == NULL)
                        return fail(&rd, -EINVAL, "torn: it does not end with a complete line");
                rd.line = 1;
                if (split(text, (size_t)(nl - text), &l) < 0)
                        return fail(&rd, -EINVAL, "malformed line");
                r = read_head(&rd, &l, 0, &h);
                if (r < 0)
                        return r;
                rd.line = 0;
        }
        r = check_end(&rd, text, len, &body, &vpses);
        if (r < 0)
                return r;
        /* Room for the count the "end" line gives, as far as the file can
         * hold that many: no index rehashed as the model grows.  A hint
         * only (the count is checked at the end; a failure is the add's). */
        (void)pc_model_reserve(m, (uint64_t)vpses < body / VPS_LINE_MIN ? (size_t)vpses : body / VPS_LINE_MIN);
        for (size_t i = 0; pos < body && r >= 0; i++) {
                const char *nl = memchr(text + pos, '\n', body - pos);
                struct line l;

                rd.line = i + 1;
                if (nl == NULL) /* the checksum held: written so, not torn */
                        r = fail(&rd, -EINVAL, "malformed line");
                else if (split(text + pos, (size_t)(nl - (text + pos)), &l) < 0)
                        r = fail(&rd, -EINVAL, "malformed line");
                else if (i < 5)
                        r = read_head(&rd, &l, i, &h);
                else
                        r = read_line(&rd, &l);
                if (nl != NULL)
                        pos = (size_t)(nl - text) + 1;
        }
        if (r >= 0 && rd.line < 5)
                r = fail(&rd, -EINVAL, "torn: no head");
        if (r >= 0)
                r = vps_done(&rd);
        rd.line = 0;
        if (r >= 0 && (int64_t)st.vpses != vpses)
                r = fail(&rd, -EINVAL, "%zu VPSes, the 'end' line says %" PRId64, st.vpses, vpses);
        pc_vps_free(rd.vps);
        if (r < 0) {
                model_clear(m);
                return r;
        }
        *ret_head = h;
        if (ret_stats != NULL)
                *ret_stats = st;
        return 0;
}
