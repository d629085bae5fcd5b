/* Customer-notification templates.  A template is parsed into a flat list
 * of nodes (text, value, section open, section close) in one pass that
 * also validates it: UTF-8, control characters, tag syntax, names against
 * the kind's declared keys, section balance and depth.  Rendering walks the
 * list; a section whose condition is false jumps to its close.  Names are
 * always resolved from the payload's root (no context stack), so what a
 * placeholder means never depends on where it stands. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/strbuf.h"
#include "base/util.h"
#include "notify/mime.h"
#include "notify/template.h"

#include "base/utf8.h"

#define PAYLOAD_MAX (1024 * 1024) /* bytes of payload JSON we accept */
#define SUGGEST_DISTANCE 2        /* "did you mean" up to this many edits */

/* ---- What templates may name ----------------------------------------- */

/* How a name's value is computed. */
enum how {
        H_RAW,          /* the payload value at <path> */
        H_OBJECT,       /* an object at <path>: sections only */
        H_COUNT_TEXT,   /* integer at <path> with digit grouping */
        H_TIME_TEXT,    /* unix time at <path>: "2026-12-31 18:00 UTC" */
        H_CLOCK_TEXT,   /* unix time at <path>: "10:02 UTC" */
        H_DAY_TEXT,     /* unix time at <path>: "2026-03-14" */
        H_UNTIL_TEXT,   /* like H_TIME_TEXT, or the language's "no end" */
        H_ADDRESSES,    /* array of prefixes at <path>, comma-joined, hosts bare */
        H_ADDRESS,      /* the first of those */
        H_EQUALS,       /* the string at <path> if it equals <arg> */
        H_PREFIX,       /* what follows <arg> in the string at <path> */
        H_NOT_PREFIX,   /* the string at <path> unless it starts with <arg> */
        H_PORTS,        /* the string at <path> if it is "PROTO/PORTS" */
        H_PORTS_PROTO,  /* "TCP" of such a string */
        H_PORTS_PORT,   /* "25" or "8000-8100" of such a string */
        H_NOT_ONE_OF,   /* the string at <path> unless it is in <arg> (';'-separated) */
        H_REFERENCE,    /* "PC-N000123" */
        H_DATE,         /* RFC 5322 date of the notification */
        H_DATE_TEXT,    /* the same as "2026-12-31 18:00 UTC" */
        H_PAYLOAD_JSON, /* the whole payload, pretty-printed */
};

struct key {
        const char *name;
        enum how how;
        const char *path; /* payload path (dotted); NULL: same as name */
        const char *arg;
};

#define KEYS_END { NULL, H_RAW, NULL, NULL }

static const struct key common_keys[] = {
        { "vps", H_RAW, NULL, NULL },
        { "site", H_RAW, NULL, NULL },
        { "addresses", H_RAW, NULL, NULL },
        { "addresses_text", H_ADDRESSES, "addresses", NULL },
        { "address", H_ADDRESS, "addresses", NULL },
        { "event", H_RAW, NULL, NULL },
        { "id", H_RAW, NULL, NULL },
        { "reference", H_REFERENCE, NULL, NULL },
        { "date", H_DATE, NULL, NULL },
        { "date_text", H_DATE_TEXT, NULL, NULL },
        KEYS_END,
};

/* Who acted and why: every filter, suspension and exception. */
static const struct key actor_keys[] = {
        { "by", H_RAW, NULL, NULL },
        { "reason", H_RAW, NULL, NULL },
        { "created", H_RAW, NULL, NULL },
        { "created_text", H_TIME_TEXT, "created", NULL },
        KEYS_END,
};

static const struct key until_keys[] = {
        { "until", H_RAW, NULL, NULL },
        { "until_text", H_UNTIL_TEXT, "until", NULL },
        KEYS_END,
};

static const struct key exception_keys[] = {
        { "service", H_RAW, NULL, NULL },
        { "service_name", H_NOT_PREFIX, "service", "source-prefix:" },
        { "source_prefix", H_PREFIX, "service", "source-prefix:" },
        { "ticket", H_RAW, NULL, NULL },
        KEYS_END,
};

/* A ticket: what is asked, and the customer's words.  An approval's
 * payload is the exception it made (exception_keys, ports, until). */
static const struct key ticket_keys[] = {
        { "ticket", H_RAW, NULL, NULL },
        { "service", H_RAW, NULL, NULL },
        { "service_name", H_NOT_PREFIX, "service", "source-prefix:" },
        { "source_prefix", H_PREFIX, "service", "source-prefix:" },
        { "ports", H_RAW, NULL, NULL },
        { "text", H_RAW, NULL, NULL },
        KEYS_END,
};

static const struct key filter_keys[] = {
        { "direction", H_RAW, NULL, NULL },
        { "direction_egress", H_EQUALS, "direction", "egress" },
        { "direction_ingress", H_EQUALS, "direction", "ingress" },
        { "direction_both", H_EQUALS, "direction", "both" },
        { "scope", H_RAW, NULL, NULL },
        { "scope_all", H_EQUALS, "scope", "all" },
        { "scope_service", H_PREFIX, "scope", "service:" },
        { "scope_ports", H_PORTS, "scope", NULL },
        { "scope_proto", H_PORTS_PROTO, "scope", NULL },
        { "scope_port", H_PORTS_PORT, "scope", NULL },
        { "incident", H_RAW, NULL, NULL },
        KEYS_END,
};

static const struct key suspension_keys[] = {
        { "incident", H_RAW, NULL, NULL },
        KEYS_END,
};

static const struct key incident_keys[] = {
        { "kind", H_RAW, NULL, NULL },
        { "kind_scan", H_EQUALS, "kind", "scan" },
        { "kind_spoof", H_EQUALS, "kind", "spoof" },
        { "kind_blocked_use", H_EQUALS, "kind", "blocked-use" },
        { "kind_spam", H_EQUALS, "kind", "spam" },
        { "kind_flood", H_EQUALS, "kind", "flood" },
        { "kind_reflection", H_EQUALS, "kind", "reflection" },
        { "kind_attacked", H_EQUALS, "kind", "attacked" },
        { "kind_other", H_NOT_ONE_OF, "kind", "scan;spoof;blocked-use;spam;flood;reflection;attacked" },
        { "first_seen", H_RAW, NULL, NULL },
        { "first_seen_text", H_CLOCK_TEXT, "first_seen", NULL },
        { "first_seen_day", H_DAY_TEXT, "first_seen", NULL },
        { "last_seen", H_RAW, NULL, NULL },
        { "last_seen_text", H_CLOCK_TEXT, "last_seen", NULL },
        { "last_seen_day", H_DAY_TEXT, "last_seen", NULL },
        { "count", H_RAW, NULL, NULL },
        { "count_text", H_COUNT_TEXT, "count", NULL },
        KEYS_END,
};

/* The incident an action answers, in a filter's or a suspension's
 * notification: its kind, and its evidence (evidence_keys). */
static const struct key answered_keys[] = {
        { "incident_kind", H_RAW, NULL, NULL },
        { "incident_scan", H_EQUALS, "incident_kind", "scan" },
        { "incident_spoof", H_EQUALS, "incident_kind", "spoof" },
        { "incident_spam", H_EQUALS, "incident_kind", "spam" },
        { "incident_flood", H_EQUALS, "incident_kind", "flood" },
        { "incident_reflection", H_EQUALS, "incident_kind", "reflection" },
        { "incident_attacked", H_EQUALS, "incident_kind", "attacked" },
        KEYS_END,
};

/* What a detector saw, as each writes it (src/agent/): one group for the
 * incident's own notice and for the actions that answer it. */
static const struct key evidence_keys[] = {
        { "evidence", H_OBJECT, NULL, NULL },
        /* scan (src/agent/scan.c) */
        { "evidence.detector", H_RAW, NULL, NULL },
        { "evidence.slow", H_EQUALS, "evidence.detector", "slow-scan" },
        { "evidence.shape", H_RAW, NULL, NULL },
        { "evidence.shape_horizontal", H_EQUALS, "evidence.shape", "horizontal" },
        { "evidence.shape_vertical", H_EQUALS, "evidence.shape", "vertical" },
        { "evidence.shape_block", H_EQUALS, "evidence.shape", "block" },
        { "evidence.shape_mixed", H_EQUALS, "evidence.shape", "mixed" },
        { "evidence.failed_first_contacts", H_RAW, NULL, NULL },
        { "evidence.failed_first_contacts_text", H_COUNT_TEXT, "evidence.failed_first_contacts", NULL },
        { "evidence.answered_first_contacts", H_RAW, NULL, NULL },
        { "evidence.answered_first_contacts_text", H_COUNT_TEXT, "evidence.answered_first_contacts", NULL },
        { "evidence.distinct_hosts", H_RAW, NULL, NULL },
        { "evidence.distinct_hosts_text", H_COUNT_TEXT, "evidence.distinct_hosts", NULL },
        { "evidence.distinct_ports", H_RAW, NULL, NULL },
        { "evidence.distinct_ports_text", H_COUNT_TEXT, "evidence.distinct_ports", NULL },
        { "evidence.confirming_first_contacts", H_RAW, NULL, NULL },
        { "evidence.confirming_first_contacts_text", H_COUNT_TEXT, "evidence.confirming_first_contacts", NULL },
        { "evidence.sample", H_ADDRESSES, NULL, NULL },
        { "evidence.sample_text", H_ADDRESSES, "evidence.sample", NULL },
        /* spoof (src/agent/spoof.c) */
        { "evidence.kind", H_RAW, NULL, NULL },
        { "evidence.claimed_source", H_RAW, NULL, NULL },
        { "evidence.destination", H_RAW, NULL, NULL },
        { "evidence.interface", H_RAW, NULL, NULL },
        { "evidence.protocol", H_RAW, NULL, NULL },
        { "evidence.length", H_RAW, NULL, NULL },
        { "evidence.headers", H_RAW, NULL, NULL },
        /* blocked-use (src/agent/agent.c) */
        { "evidence.service", H_RAW, NULL, NULL },
        { "evidence.proto", H_RAW, NULL, NULL },
        { "evidence.port", H_RAW, NULL, NULL },
        { "evidence.direction", H_RAW, NULL, NULL },
        { "evidence.packets", H_RAW, NULL, NULL },
        { "evidence.packets_text", H_COUNT_TEXT, "evidence.packets", NULL },
        /* spam (src/agent/spam.c) */
        { "evidence.rule", H_RAW, NULL, NULL },
        { "evidence.messages", H_RAW, NULL, NULL },
        { "evidence.messages_text", H_COUNT_TEXT, "evidence.messages", NULL },
        { "evidence.recipients", H_RAW, NULL, NULL },
        { "evidence.recipients_text", H_COUNT_TEXT, "evidence.recipients", NULL },
        { "evidence.recipients_refused", H_RAW, NULL, NULL },
        { "evidence.recipients_refused_text", H_COUNT_TEXT, "evidence.recipients_refused", NULL },
        { "evidence.domains", H_RAW, NULL, NULL },
        { "evidence.domains_text", H_COUNT_TEXT, "evidence.domains", NULL },
        { "evidence.limit_hits", H_RAW, NULL, NULL },
        { "evidence.limit_hits_text", H_COUNT_TEXT, "evidence.limit_hits", NULL },
        /* flood, reflection, attacked (src/agent/abuse.c; port also) */
        { "evidence.spread", H_EQUALS, "evidence.detector", "flood-out-spread" },
        { "evidence.sample_destination", H_RAW, NULL, NULL },
        { "evidence.sample_source", H_RAW, NULL, NULL },
        { "evidence.threshold_pps", H_RAW, NULL, NULL },
        { "evidence.threshold_pps_text", H_COUNT_TEXT, "evidence.threshold_pps", NULL },
        { "evidence.threshold_mbps", H_RAW, NULL, NULL },
        { "evidence.threshold_mbps_text", H_COUNT_TEXT, "evidence.threshold_mbps", NULL },
        KEYS_END,
};

static const struct key digest_keys[] = {
        { "episodes", H_RAW, NULL, NULL },
        { "episodes_text", H_COUNT_TEXT, "episodes", NULL },
        KEYS_END,
};

/* A termination (store: pc_store_terminate): what made it one. */
static const struct key termination_keys[] = {
        { "why", H_RAW, NULL, NULL },
        KEYS_END,
};

static const struct key abuse_keys[] = {
        { "by", H_RAW, NULL, NULL },
        { "reason", H_RAW, NULL, NULL },
        { "payload_json", H_PAYLOAD_JSON, NULL, NULL },
        KEYS_END,
};

#define GROUPS_MAX 7

struct kind {
        const char *name;
        const struct key *groups[GROUPS_MAX]; /* NULL-terminated if short */
};

static const struct kind kinds[] = {
        { "exception.granted", { common_keys, exception_keys, actor_keys, until_keys } },
        { "exception.revoked", { common_keys, exception_keys, actor_keys, until_keys } },
        { "exception.expiring", { common_keys, exception_keys, actor_keys, until_keys } },
        { "filter.placed", { common_keys, filter_keys, actor_keys, until_keys, answered_keys, evidence_keys } },
        { "filter.lifted", { common_keys, filter_keys, actor_keys, until_keys } },
        { "vps.suspended", { common_keys, suspension_keys, actor_keys, answered_keys, evidence_keys } },
        { "vps.unsuspended", { common_keys, suspension_keys, actor_keys } },
        { "vps.terminated", { common_keys, suspension_keys, actor_keys, termination_keys, incident_keys, evidence_keys } },
        { "vps.unterminated", { common_keys, suspension_keys, actor_keys } },
        { "incident.opened", { common_keys, incident_keys, evidence_keys } },
        { "incident.digest", { common_keys, incident_keys, digest_keys } },
        { "ticket.received", { common_keys, ticket_keys, actor_keys } },
        { "ticket.approved", { common_keys, ticket_keys, actor_keys, until_keys } },
        { "ticket.denied", { common_keys, ticket_keys, actor_keys } },
        { "abuse", { common_keys, abuse_keys } },
};

const char *const pc_template_kinds[] = {
        "exception.granted", "exception.revoked", "exception.expiring", "filter.placed",
        "filter.lifted",     "vps.suspended",     "vps.unsuspended",    "incident.opened",
        "incident.digest",   "vps.terminated",    "vps.unterminated", "ticket.received",
        "ticket.approved",   "ticket.denied",     NULL,
};

const char *const pc_template_languages[] = { "en", "it", NULL };

/* The words built-ins need, per language. */
struct words {
        const char *lang;
        const char *no_end;
        char group_sep; /* thousands */
};

static const struct words all_words[] = {
        { "en", "no end", ',' },
        { "it", "senza scadenza", '.' },
};

/* ---- Parsing ----------------------------------------------------------- */

enum node_type {
        N_TEXT,
        N_VALUE,
        N_OPEN,
        N_CLOSE,
};

struct node {
        enum node_type type;
        uint32_t off, len;      /* N_TEXT: the span of the source */
        const struct key *key;  /* the others */
        uint32_t match;         /* N_OPEN: the index of its N_CLOSE */
};

struct nodes {
        struct node *v;
        size_t n, cap;
};

/* A position in the source. */
struct cursor {
        size_t pos;
        unsigned line, col;
};

struct parser {
        const char *name;       /* FILE of messages */
        const char *text;
        size_t len;
        const struct kind *kind;
        enum pc_template_format format;
        char *err;
        size_t errsz;
};

struct open_section {
        size_t node;
        struct cursor at;
        const struct key *key;
};

static int tfail(const struct parser *p, int error, const struct cursor *at, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static int fail_plain(char *err, size_t errsz, int error, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* Writes "FILE:LINE:COL: message" into the parser's error buffer and
 * returns <error>. */
static int tfail(const struct parser *p, int error, const struct cursor *at, const char *fmt, ...)
{
        char msg[512];
        va_list ap;

        if (p->err == NULL || p->errsz == 0)
                return error;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        snprintf(p->err, p->errsz, "%s:%u:%u: %s", p->name, at != NULL ? at->line : 1,
                 at != NULL ? at->col : 1, msg);
        for (char *s = p->err; *s != '\0'; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        *s = '?';
        return error;
}

/* Moves <c> over <n> bytes of <text>: columns count characters. */
static void cursor_advance(struct cursor *c, const char *text, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                unsigned char b = (unsigned char)text[c->pos + i];

                if (b == '\n') {
                        c->line++;
                        c->col = 1;
                } else if ((b & 0xc0) != 0x80 && b != '\r') {
                        c->col++;
                }
        }
        c->pos += n;
}


/* Checks the source from <start>: valid UTF-8, no control characters but
 * tab and line ends (CR only before LF), no C1 controls. */
static int check_encoding(const struct parser *p, size_t start)
{
        struct cursor c = { 0, 1, 1 };
        const unsigned char *s = (const unsigned char *)p->text;

        cursor_advance(&c, p->text, start);
        while (c.pos < p->len) {
                size_t n = pc_utf8_len(s + c.pos, p->len - c.pos);
                unsigned char b = s[c.pos];

                if (n == 0)
                        return tfail(p, -EINVAL, &c, "invalid UTF-8 (byte 0x%02x)", b);
                if ((b < 0x20 && b != '\t' && b != '\n' && b != '\r') || b == 0x7f ||
                    (b == '\r' && (c.pos + 1 >= p->len || s[c.pos + 1] != '\n')) ||
                    (b == 0xc2 && s[c.pos + 1] < 0xa0))
                        return tfail(p, -EINVAL, &c, "control character U+%04X is not allowed",
                                     b == 0xc2 ? s[c.pos + 1] : b);
                cursor_advance(&c, p->text, n);
        }
        return 0;
}

/* Appends a node to <ns>; -ENOMEM. */
static int nodes_add(struct nodes *ns, enum node_type type, size_t off, size_t len,
                     const struct key *key)
{
        if (ns->n == ns->cap) {
                size_t cap = ns->cap == 0 ? 32 : 2 * ns->cap;
                struct node *v = reallocarray(ns->v, cap, sizeof(*v));

                if (v == NULL)
                        return -ENOMEM;
                ns->v = v;
                ns->cap = cap;
        }
        ns->v[ns->n++] = (struct node){ .type = type, .off = (uint32_t)off, .len = (uint32_t)len,
                                        .key = key };
        return 0;
}

/* The kind named <name> (or "abuse"), or NULL. */
static const struct kind *kind_find(const char *name)
{
        if (name == NULL)
                return NULL;
        for (size_t i = 0; i < PC_ARRAY_SIZE(kinds); i++)
                if (strcmp(kinds[i].name, name) == 0)
                        return &kinds[i];
        return NULL;
}

/* The key of <k> named by the <len> bytes at <name>, or NULL. */
static const struct key *key_find(const struct kind *k, const char *name, size_t len)
{
        for (size_t g = 0; g < GROUPS_MAX && k->groups[g] != NULL; g++)
                for (const struct key *key = k->groups[g]; key->name != NULL; key++)
                        if (strlen(key->name) == len && memcmp(key->name, name, len) == 0)
                                return key;
        return NULL;
}

/* Edit distance between two short strings (at most PC_TEMPLATE_NAME_MAX). */
static size_t distance(const char *a, size_t la, const char *b, size_t lb)
{
        size_t row[PC_TEMPLATE_NAME_MAX + 1];

        if (la > PC_TEMPLATE_NAME_MAX || lb > PC_TEMPLATE_NAME_MAX)
                return SIZE_MAX;
        for (size_t j = 0; j <= lb; j++)
                row[j] = j;
        for (size_t i = 1; i <= la; i++) {
                size_t diag = row[0];

                row[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);

                        if (up + 1 < best)
                                best = up + 1;
                        if (row[j - 1] + 1 < best)
                                best = row[j - 1] + 1;
                        diag = up;
                        row[j] = best;
                }
        }
        return row[lb];
}

/* The key of <k> closest to the unknown <name>, if close enough. */
static const struct key *key_suggest(const struct kind *k, const char *name, size_t len)
{
        const struct key *best = NULL;
        size_t best_d = SUGGEST_DISTANCE + 1;

        for (size_t g = 0; g < GROUPS_MAX && k->groups[g] != NULL; g++)
                for (const struct key *key = k->groups[g]; key->name != NULL; key++) {
                        size_t d = distance(name, len, key->name, strlen(key->name));

                        if (d < best_d) {
                                best_d = d;
                                best = key;
                        }
                }
        return best;
}

/* True if <ch> may be in a placeholder name. */
static bool name_char(char ch)
{
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               ch == '_' || ch == '-' || ch == '.';
}

/* Parses the tag at <c> ("{{", known to be there) up to <end>, adding its
 * node to <ns> and keeping the stack of open sections. */
static int parse_tag(const struct parser *p, struct cursor *c, size_t end, struct nodes *ns,
                     struct open_section *stack, size_t *depth)
{
        const char *t = p->text;
        struct cursor at = *c, k;
        size_t i = c->pos + 2, name, name_len, close;
        char sigil = '\0';
        const struct key *key;
        int r;

        for (close = i; close + 1 < end && t[close] != '\n'; close++)
                if (t[close] == '}' && t[close + 1] == '}')
                        break;
        if (close + 1 >= end || t[close] != '}' || t[close + 1] != '}')
                return tfail(p, -EINVAL, &at, "'{{' is not closed by '}}' on the same line");
        while (i < close && t[i] == ' ')
                i++;
        if (i < close && (t[i] == '#' || t[i] == '/')) {
                sigil = t[i++];
                while (i < close && t[i] == ' ')
                        i++;
        }
        name = i;
        while (i < close && name_char(t[i]))
                i++;
        name_len = i - name;
        while (i < close && t[i] == ' ')
                i++;
        if (i < close) {
                unsigned char b = (unsigned char)t[i];

                k = *c;
                cursor_advance(&k, t, i - c->pos);
                if (b >= 0x21 && b < 0x7f)
                        return tfail(p, -EINVAL, &k, "unexpected '%c' in a placeholder", b);
                return tfail(p, -EINVAL, &k, "unexpected character in a placeholder "
                             "(names are letters, digits, '_', '-' and '.')");
        }
        if (name_len == 0)
                return tfail(p, -EINVAL, &at, "empty placeholder '%.*s'",
                             (int)(close + 2 - c->pos), t + c->pos);
        if (name_len > PC_TEMPLATE_NAME_MAX)
                return tfail(p, -EINVAL, &at, "placeholder name longer than %d bytes",
                             PC_TEMPLATE_NAME_MAX);
        if (t[name] == '.' || t[name + name_len - 1] == '.' ||
            memmem(t + name, name_len, "..", 2) != NULL)
                return tfail(p, -EINVAL, &at, "invalid placeholder name '%.*s'", (int)name_len,
                             t + name);
        key = key_find(p->kind, t + name, name_len);
        if (key == NULL) {
                const struct key *near = key_suggest(p->kind, t + name, name_len);

                if (near != NULL)
                        return tfail(p, -EINVAL, &at,
                                     "unknown placeholder '{{%s%.*s}}' for %s "
                                     "(did you mean '%s'?)",
                                     sigil == '\0' ? "" : (sigil == '#' ? "#" : "/"),
                                     (int)name_len, t + name, p->kind->name, near->name);
                return tfail(p, -EINVAL, &at, "unknown placeholder '{{%s%.*s}}' for %s",
                             sigil == '\0' ? "" : (sigil == '#' ? "#" : "/"), (int)name_len,
                             t + name, p->kind->name);
        }
        if (sigil == '\0') {
                if (key->how == H_OBJECT)
                        return tfail(p, -EINVAL, &at,
                                     "'%s' is an object: use it as a section "
                                     "'{{#%s}}...{{/%s}}' or name one of its fields",
                                     key->name, key->name, key->name);
                r = nodes_add(ns, N_VALUE, 0, 0, key);
        } else if (sigil == '#') {
                if (*depth == PC_TEMPLATE_DEPTH_MAX)
                        return tfail(p, -EINVAL, &at, "sections nested deeper than %d",
                                     PC_TEMPLATE_DEPTH_MAX);
                stack[*depth] = (struct open_section){ .node = ns->n, .at = at, .key = key };
                (*depth)++;
                r = nodes_add(ns, N_OPEN, 0, 0, key);
        } else {
                if (*depth == 0)
                        return tfail(p, -EINVAL, &at, "'{{/%s}}' closes no section", key->name);
                if (stack[*depth - 1].key != key)
                        return tfail(p, -EINVAL, &at,
                                     "'{{/%s}}' does not close '{{#%s}}' opened at %u:%u",
                                     key->name, stack[*depth - 1].key->name,
                                     stack[*depth - 1].at.line, stack[*depth - 1].at.col);
                (*depth)--;
                ns->v[stack[*depth].node].match = (uint32_t)ns->n;
                r = nodes_add(ns, N_CLOSE, 0, 0, key);
        }
        if (r < 0)
                return tfail(p, r, &at, "out of memory");
        cursor_advance(c, t, close + 2 - c->pos);
        return 0;
}

/* Parses the source from <c> to <end> into <ns>; <where> names the part
 * in messages ("" or " on the Subject line"). */
static int parse_span(const struct parser *p, struct cursor *c, size_t end, struct nodes *ns,
                      const char *where)
{
        struct open_section stack[PC_TEMPLATE_DEPTH_MAX];
        size_t depth = 0;
        int r;

        while (c->pos < end) {
                const char *tag = memmem(p->text + c->pos, end - c->pos, "{{", 2);
                size_t stop = tag != NULL ? (size_t)(tag - p->text) : end;

                if (stop > c->pos) {
                        r = nodes_add(ns, N_TEXT, c->pos, stop - c->pos, NULL);
                        if (r < 0)
                                return tfail(p, r, c, "out of memory");
                        cursor_advance(c, p->text, stop - c->pos);
                }
                if (tag == NULL)
                        break;
                r = parse_tag(p, c, end, ns, stack, &depth);
                if (r < 0)
                        return r;
        }
        if (depth > 0)
                return tfail(p, -EINVAL, &stack[depth - 1].at, "'{{#%s}}' is never closed%s",
                             stack[depth - 1].key->name, where);
        return 0;
}

/* True if the <n> bytes at <s> start with <prefix>, in any case. */
static bool prefix_icase(const char *s, size_t n, const char *prefix)
{
        size_t lp = strlen(prefix);

        return n >= lp && strncasecmp(s, prefix, lp) == 0;
}

/* Parses the whole source: for PC_TEMPLATE_TEXT the Subject line into
 * <subject> and the body after the blank line into <body>. */
static int parse(const struct parser *p, struct nodes *subject, struct nodes *body)
{
        struct cursor c = { 0, 1, 1 };
        size_t start = 0;
        int r;

        if (p->len > PC_TEMPLATE_FILE_MAX)
                return tfail(p, -EFBIG, NULL, "the template is %zu bytes, more than the limit of %d",
                             p->len, PC_TEMPLATE_FILE_MAX);
        if (p->len >= 3 && memcmp(p->text, "\xef\xbb\xbf", 3) == 0)
                start = 3; /* a byte-order mark some editors write */
        r = check_encoding(p, start);
        if (r < 0)
                return r;
        cursor_advance(&c, p->text, start);
        c.col = 1;
        if (p->format == PC_TEMPLATE_TEXT) {
                const char *nl = memchr(p->text + c.pos, '\n', p->len - c.pos);
                size_t eol = nl != NULL ? (size_t)(nl - p->text) : p->len;
                size_t line_end = eol > c.pos && p->text[eol - 1] == '\r' ? eol - 1 : eol;

                if (!prefix_icase(p->text + c.pos, line_end - c.pos, "Subject:"))
                        return tfail(p, -EINVAL, &c,
                                     "the first line must be the 'Subject: ...' line");
                cursor_advance(&c, p->text, strlen("Subject:"));
                while (c.pos < line_end && (p->text[c.pos] == ' ' || p->text[c.pos] == '\t'))
                        cursor_advance(&c, p->text, 1);
                if (c.pos == line_end)
                        return tfail(p, -EINVAL, &c, "the Subject line is empty");
                r = parse_span(p, &c, line_end, subject, " on the Subject line");
                if (r < 0)
                        return r;
                if (nl == NULL) {
                        c.line++;
                        c.col = 1;
                        return tfail(p, -EINVAL, &c,
                                     "expected a blank line after the Subject line, then the body");
                }
                cursor_advance(&c, p->text, eol + 1 - c.pos);
                if (c.pos < p->len && p->text[c.pos] == '\r')
                        cursor_advance(&c, p->text, 1);
                if (c.pos >= p->len || p->text[c.pos] != '\n')
                        return tfail(p, -EINVAL, &c,
                                     "expected a blank line after the Subject line, then the body");
                cursor_advance(&c, p->text, 1);
        }
        return parse_span(p, &c, p->len, body, "");
}

/* ---- Values ------------------------------------------------------------ */

struct render {
        const struct words *words;
        json_t *payload;
        int64_t id, created;
        struct strbuf scratch;
        char *payload_text; /* {{payload_json}}, made once */
        size_t work;        /* bytes of values computed so far */
};

/* Values computed in one rendering, shown or not: bounds the work a
 * template with many sections over a large payload can cause. */
#define WORK_MAX (8 * PC_TEMPLATE_OUTPUT_MAX)

/* The payload value at the dotted <path>, or NULL. */
static json_t *payload_get(json_t *root, const char *path)
{
        json_t *v = root;

        while (v != NULL && *path != '\0') {
                const char *dot = strchr(path, '.');
                size_t n = dot != NULL ? (size_t)(dot - path) : strlen(path);

                if (!json_is_object(v))
                        return NULL;
                v = json_object_getn(v, path, n);
                path += n + (dot != NULL);
        }
        return v;
}

/* True if <v> shows a section: present, not null, false, "", [] or {}. */
static bool json_truthy(const json_t *v)
{
        if (v == NULL || json_is_null(v) || json_is_false(v))
                return false;
        if (json_is_string(v))
                return json_string_length(v) > 0;
        if (json_is_array(v))
                return json_array_size(v) > 0;
        if (json_is_object(v))
                return json_object_size(v) > 0;
        return true;
}

/* Appends scalar <v> as text ("" for null, objects and arrays). */
static void scalar_text(struct strbuf *b, const json_t *v)
{
        if (json_is_string(v))
                strbuf_printf(b, "%.*s", (int)json_string_length(v), json_string_value(v));
        else if (json_is_integer(v))
                strbuf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        else if (json_is_real(v))
                strbuf_printf(b, "%g", json_real_value(v));
        else if (json_is_true(v))
                strbuf_printf(b, "true");
        else if (json_is_false(v))
                strbuf_printf(b, "false");
}

/* Appends <v> as text: scalars as they are, arrays of scalars joined with
 * ", ". */
static void value_text(struct strbuf *b, const json_t *v)
{
        size_t i;
        json_t *e;

        if (!json_is_array(v)) {
                scalar_text(b, v);
                return;
        }
        json_array_foreach(v, i, e) {
                if (i > 0)
                        strbuf_printf(b, ", ");
                scalar_text(b, e);
        }
}

/* Appends integer <n> with the language's digit grouping. */
static void count_text(struct strbuf *b, json_int_t n, char sep)
{
        char digits[32];
        int len, first;

        if (n < 0) {
                strbuf_printf(b, "-");
                n = n == INT64_MIN ? INT64_MAX : -n; /* off by one at the edge, never seen */
        }
        len = snprintf(digits, sizeof(digits), "%" JSON_INTEGER_FORMAT, n);
        first = len % 3 == 0 ? 3 : len % 3;
        strbuf_printf(b, "%.*s", first, digits);
        for (int i = first; i < len; i += 3)
                strbuf_printf(b, "%c%.3s", sep, digits + i);
}

/* Appends unix time <v> (an integer) in <fmt>; other values as they are. */
static void time_text(struct strbuf *b, const json_t *v, const char *fmt)
{
        struct tm tm;
        time_t t;
        char buf[64];

        if (!json_is_integer(v)) {
                value_text(b, v);
                return;
        }
        t = (time_t)json_integer_value(v);
        if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0 ||
            strftime(buf, sizeof(buf), fmt, &tm) == 0) {
                value_text(b, v);
                return;
        }
        strbuf_printf(b, "%s", buf);
}

/* Appends the prefixes in array <v> comma-joined, host prefixes without
 * their length ("203.0.113.10", "2001:db8::/64"); only the first if
 * <first>. */
static void addresses_text(struct strbuf *b, const json_t *v, bool first)
{
        size_t i;
        json_t *e;

        if (!json_is_array(v)) {
                value_text(b, v);
                return;
        }
        json_array_foreach(v, i, e) {
                const char *a = json_string_value(e);
                size_t n = json_string_length(e);

                if (i > 0)
                        strbuf_printf(b, ", ");
                if (a == NULL)
                        scalar_text(b, e);
                else if (n > 3 && strcmp(a + n - 3, "/32") == 0 && strchr(a, ':') == NULL)
                        strbuf_printf(b, "%.*s", (int)(n - 3), a);
                else if (n > 4 && strcmp(a + n - 4, "/128") == 0 && strchr(a, ':') != NULL)
                        strbuf_printf(b, "%.*s", (int)(n - 4), a);
                else
                        strbuf_printf(b, "%.*s", (int)n, a);
                if (first)
                        break;
        }
}

/* The "PROTO/PORTS" string at <v> split at the slash, or false. */
static bool ports_split(const json_t *v, const char **ret_slash)
{
        const char *s = json_string_value(v), *slash;

        if (s == NULL || (slash = strchr(s, '/')) == NULL || slash == s || slash[1] == '\0' ||
            strncmp(s, "service:", strlen("service:")) == 0)
                return false;
        *ret_slash = slash;
        return true;
}

/* Appends the value of <key> to <b> and returns whether it counts as
 * present for a section. */
static bool key_value(struct render *r, const struct key *key, struct strbuf *b)
{
        json_t *v = payload_get(r->payload, key->path != NULL ? key->path : key->name);
        const char *s = json_string_value(v), *slash;
        size_t before = b->len;
        char buf[64];

        switch (key->how) {
        case H_RAW:
                value_text(b, v);
                return json_truthy(v);
        case H_OBJECT:
                return json_truthy(v);
        case H_COUNT_TEXT:
                if (json_is_integer(v))
                        count_text(b, json_integer_value(v), r->words->group_sep);
                else
                        value_text(b, v);
                break;
        case H_TIME_TEXT:
                time_text(b, v, "%Y-%m-%d %H:%M UTC");
                break;
        case H_CLOCK_TEXT:
                time_text(b, v, "%H:%M UTC");
                break;
        case H_DAY_TEXT:
                time_text(b, v, "%Y-%m-%d");
                break;
        case H_UNTIL_TEXT:
                if (v == NULL || json_is_null(v))
                        strbuf_printf(b, "%s", r->words->no_end);
                else
                        time_text(b, v, "%Y-%m-%d %H:%M UTC");
                break;
        case H_ADDRESSES:
        case H_ADDRESS:
                addresses_text(b, v, key->how == H_ADDRESS);
                break;
        case H_NOT_PREFIX:
                if (s != NULL && strncmp(s, key->arg, strlen(key->arg)) != 0)
                        strbuf_printf(b, "%s", s);
                break;
        case H_EQUALS:
                if (s != NULL && strcmp(s, key->arg) == 0)
                        strbuf_printf(b, "%s", s);
                break;
        case H_PREFIX:
                if (s != NULL && strncmp(s, key->arg, strlen(key->arg)) == 0)
                        strbuf_printf(b, "%s", s + strlen(key->arg));
                break;
        case H_PORTS:
                if (ports_split(v, &slash))
                        strbuf_printf(b, "%s", s);
                break;
        case H_PORTS_PROTO:
                if (ports_split(v, &slash))
                        for (const char *c = s; c < slash; c++)
                                strbuf_printf(b, "%c", *c >= 'a' && *c <= 'z' ? *c - 'a' + 'A' : *c);
                break;
        case H_PORTS_PORT:
                if (ports_split(v, &slash))
                        strbuf_printf(b, "%s", slash + 1);
                break;
        case H_NOT_ONE_OF:
                if (s != NULL && *s != '\0') {
                        const char *a = key->arg;
                        size_t n = strlen(s);
                        bool listed = false;

                        while (*a != '\0' && !listed) {
                                size_t m = strcspn(a, ";");

                                listed = m == n && memcmp(a, s, n) == 0;
                                a += m + (a[m] == ';');
                        }
                        if (!listed)
                                strbuf_printf(b, "%s", s);
                }
                break;
        case H_REFERENCE:
                strbuf_printf(b, "PC-N%06" PRId64, r->id);
                break;
        case H_DATE:
                if (pc_mime_date(r->created, buf, sizeof(buf)) == 0)
                        strbuf_printf(b, "%s", buf);
                break;
        case H_DATE_TEXT: {
                json_t *t = json_integer(r->created);

                if (t == NULL)
                        b->oom = true;
                time_text(b, t, "%Y-%m-%d %H:%M UTC");
                json_decref(t);
                break;
        }
        case H_PAYLOAD_JSON:
                if (r->payload_text == NULL)
                        r->payload_text = json_dumps(r->payload, JSON_INDENT(2) | JSON_SORT_KEYS);
                if (r->payload_text == NULL)
                        b->oom = true;
                else
                        strbuf_printf(b, "%s", r->payload_text);
                break;
        }
        return b->len > before;
}

/* Appends the <len> bytes at <s> to <b>: HTML-escaped in an HTML body,
 * as one line in a subject (control characters, tabs and line ends become
 * spaces); in a text body, other control characters become '?' and CR is
 * dropped. */
static void append_value(struct strbuf *b, const char *s, size_t len, bool html, bool subject)
{
        size_t run = 0;

        for (size_t i = 0; i < len; i++) {
                unsigned char ch = (unsigned char)s[i];
                const char *rep = NULL;

                if (html && ch == '&')
                        rep = "&amp;";
                else if (html && ch == '<')
                        rep = "&lt;";
                else if (html && ch == '>')
                        rep = "&gt;";
                else if (html && ch == '"')
                        rep = "&quot;";
                else if (html && ch == '\'')
                        rep = "&#39;";
                else if (subject && (ch < 0x20 || ch == 0x7f))
                        rep = " ";
                else if (ch == '\r')
                        rep = "";
                else if ((ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f)
                        rep = "?";
                if (rep == NULL)
                        continue;
                strbuf_printf(b, "%.*s%s", (int)(i - run), s + run, rep);
                run = i + 1;
        }
        strbuf_printf(b, "%.*s", (int)(len - run), s + run);
}

/* Whether <key> is present for a section, without computing the text of
 * values that can be large. */
static bool key_present(struct render *r, const struct key *key)
{
        json_t *v;

        switch (key->how) {
        case H_RAW:
        case H_OBJECT:
        case H_ADDRESSES:
                v = payload_get(r->payload, key->path != NULL ? key->path : key->name);
                return json_truthy(v);
        case H_PAYLOAD_JSON:
                return true;
        default:
                strbuf_reset(&r->scratch);
                return key_value(r, key, &r->scratch);
        }
}

/* Renders the nodes <ns> of <p>'s source into <out>. */
static int render_nodes(const struct parser *p, struct render *r, const struct nodes *ns,
                        bool subject, struct strbuf *out)
{
        bool html = p->format == PC_TEMPLATE_HTML;

        for (size_t i = 0; i < ns->n; i++) {
                const struct node *n = &ns->v[i];

                switch (n->type) {
                case N_TEXT:
                        /* The template is trusted text: only CRs go. */
                        for (size_t j = n->off, run = n->off; j <= n->off + n->len; j++)
                                if (j == n->off + n->len || p->text[j] == '\r') {
                                        strbuf_printf(out, "%.*s", (int)(j - run), p->text + run);
                                        run = j + 1;
                                }
                        break;
                case N_VALUE:
                        strbuf_reset(&r->scratch);
                        key_value(r, n->key, &r->scratch);
                        append_value(out, strbuf_str(&r->scratch), r->scratch.len, html, subject);
                        break;
                case N_OPEN:
                        strbuf_reset(&r->scratch);
                        if (!key_present(r, n->key))
                                i = n->match;
                        break;
                case N_CLOSE:
                        break;
                }
                if (out->oom || r->scratch.oom)
                        return -ENOMEM;
                r->work += r->scratch.len;
                if (out->len > PC_TEMPLATE_OUTPUT_MAX || r->work > WORK_MAX)
                        return -E2BIG;
        }
        return 0;
}

/* Trims spaces at both ends of <s> in place. */
static void trim(char *s)
{
        size_t n = strlen(s), lead = strspn(s, " ");

        while (n > lead && s[n - 1] == ' ')
                n--;
        memmove(s, s + lead, n - lead);
        s[n - lead] = '\0';
}

/* The built-in words of <lang>; English for languages we do not know. */
static const struct words *words_find(const char *lang)
{
        for (size_t i = 0; lang != NULL && i < PC_ARRAY_SIZE(all_words); i++)
                if (strcmp(all_words[i].lang, lang) == 0)
                        return &all_words[i];
        return &all_words[0];
}

/* Writes a message without a position into <err>; returns <error>. */
static int fail_plain(char *err, size_t errsz, int error, const char *fmt, ...)
{
        va_list ap;

        if (err == NULL || errsz == 0)
                return error;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
        for (char *s = err; *s != '\0'; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        *s = '?';
        return error;
}

/* pc_template_expand() with the payload already parsed (NULL: check only). */
static int expand(const char *name, const char *text, size_t len, const struct kind *kind,
                  enum pc_template_format format, const char *lang, json_t *payload,
                  int64_t id, int64_t created, char **ret_subject, char **ret_body, char *err,
                  size_t errsz)
{
        struct parser p = { .name = name, .text = text, .len = len, .kind = kind,
                            .format = format, .err = err, .errsz = errsz };
        struct nodes subject = { 0 }, body = { 0 };
        struct render r = { .words = words_find(lang), .payload = payload, .id = id,
                            .created = created };
        struct strbuf sb = { 0 }, bb = { 0 };
        struct cursor start = { 0, 1, 1 };
        int ret;

        ret = parse(&p, &subject, &body);
        if (ret < 0 || payload == NULL)
                goto out;
        if (format == PC_TEMPLATE_TEXT) {
                ret = render_nodes(&p, &r, &subject, true, &sb);
                if (ret == 0 && sb.len == 0)
                        strbuf_printf(&sb, "%s", "");
        }
        if (ret == 0)
                ret = render_nodes(&p, &r, &body, false, &bb);
        if (ret == 0 && bb.len == 0)
                strbuf_printf(&bb, "%s", "");
        if (ret == 0 && (sb.oom || bb.oom))
                ret = -ENOMEM;
        if (ret == -E2BIG) {
                tfail(&p, ret, &start, "the rendered text exceeds %d bytes, or its values %d",
                      PC_TEMPLATE_OUTPUT_MAX, WORK_MAX);
                goto out;
        }
        if (ret < 0) {
                tfail(&p, ret, &start, "out of memory");
                goto out;
        }
        if (format == PC_TEMPLATE_TEXT) {
                trim(sb.s);
                if (sb.s[0] == '\0') {
                        ret = tfail(&p, -EINVAL, &start, "the Subject is empty for this notification");
                        goto out;
                }
                if (ret_subject != NULL) {
                        *ret_subject = sb.s;
                        sb.s = NULL;
                }
        }
        *ret_body = bb.s;
        bb.s = NULL;
out:
        strbuf_free(&sb);
        strbuf_free(&bb);
        strbuf_free(&r.scratch);
        free(r.payload_text);
        free(subject.v);
        free(body.v);
        return ret;
}

/* ---- Files and the public functions ------------------------------------ */

/* True if <lang> can be a directory name of ours: a letter, then up to 14
 * letters, digits or '-' ("en", "pt-BR"). */
static bool lang_valid(const char *lang)
{
        size_t n;

        if (lang == NULL || !((lang[0] >= 'a' && lang[0] <= 'z') ||
                              (lang[0] >= 'A' && lang[0] <= 'Z')))
                return false;
        n = strspn(lang, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-");
        return lang[n] == '\0' && n <= 15;
}

/* Reads the template <path> into *<ret_text> (NUL-terminated, to free)
 * and *<ret_len>; refuses anything but a regular file of at most
 * PC_TEMPLATE_FILE_MAX bytes. */
static int file_load(const char *path, char **ret_text, size_t *ret_len, char *err, size_t errsz)
{
        struct parser p = { .name = path, .err = err, .errsz = errsz };
        _cleanup_free_ char *text = NULL;
        struct stat st;
        size_t len = 0;
        int fd, r = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd == -1)
                return tfail(&p, -errno, NULL, "cannot open the template: %s", strerror(errno));
        if (fstat(fd, &st) == -1) {
                r = tfail(&p, -errno, NULL, "cannot read the template: %s", strerror(errno));
                goto out;
        }
        if (!S_ISREG(st.st_mode)) {
                r = tfail(&p, -EINVAL, NULL, "the template is not a regular file");
                goto out;
        }
        if (st.st_size > PC_TEMPLATE_FILE_MAX) {
                r = tfail(&p, -EFBIG, NULL, "the template is %lld bytes, more than the limit of %d",
                          (long long)st.st_size, PC_TEMPLATE_FILE_MAX);
                goto out;
        }
        /* One byte more than the limit tells a file that grew meanwhile. */
        text = malloc(PC_TEMPLATE_FILE_MAX + 2);
        if (text == NULL) {
                r = tfail(&p, -ENOMEM, NULL, "out of memory");
                goto out;
        }
        while (len <= PC_TEMPLATE_FILE_MAX) {
                ssize_t n = read(fd, text + len, PC_TEMPLATE_FILE_MAX + 1 - len);

                if (n == -1 && errno == EINTR)
                        continue;
                if (n == -1) {
                        r = tfail(&p, -errno, NULL, "cannot read the template: %s",
                                  strerror(errno));
                        goto out;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        if (len > PC_TEMPLATE_FILE_MAX) {
                r = tfail(&p, -EFBIG, NULL, "the template is more than %d bytes",
                          PC_TEMPLATE_FILE_MAX);
                goto out;
        }
        text[len] = '\0';
        *ret_text = text;
        text = NULL;
        *ret_len = len;
out:
        close(fd);
        return r;
}

/* Writes "<dir>/<lang>/<kind>.<ext>" into <buf>. */
static int template_path(const char *dir, const char *lang, const char *kind, const char *ext,
                         char *buf, size_t size, char *err, size_t errsz)
{
        int n = snprintf(buf, size, "%s/%s/%s.%s", dir, lang, kind, ext);

        if (n < 0 || (size_t)n >= size)
                return fail_plain(err, errsz, -ENAMETOOLONG, "%s: the template path is too long",
                                  dir);
        return 0;
}

/* Loads and expands the template file <path>. */
static int file_expand(const char *path, const struct kind *kind, enum pc_template_format format,
                       const char *lang, json_t *payload, int64_t id, int64_t created,
                       char **ret_subject, char **ret_body, char *err, size_t errsz)
{
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r;

        r = file_load(path, &text, &len, err, errsz);
        if (r < 0)
                return r;
        return expand(path, text, len, kind, format, lang, payload, id, created, ret_subject,
                      ret_body, err, errsz);
}

/* Parses <payload_json> into *<ret>: a JSON object of bounded size. */
static int payload_parse(const char *payload_json, json_t **ret, char *err, size_t errsz)
{
        json_error_t jerr;
        json_t *v;

        if (payload_json == NULL)
                return fail_plain(err, errsz, -EINVAL, "the notification has no payload");
        if (strnlen(payload_json, PAYLOAD_MAX + 1) > PAYLOAD_MAX)
                return fail_plain(err, errsz, -E2BIG, "the payload is more than %d bytes",
                                  PAYLOAD_MAX);
        v = json_loads(payload_json, JSON_REJECT_DUPLICATES, &jerr);
        if (v == NULL)
                return fail_plain(err, errsz, -EINVAL, "payload:%d:%d: %s", jerr.line,
                                  jerr.column, jerr.text);
        if (!json_is_object(v)) {
                json_decref(v);
                return fail_plain(err, errsz, -EINVAL, "the payload is not a JSON object");
        }
        *ret = v;
        return 0;
}

const char *pc_template_key(const char *kind, size_t i)
{
        const struct kind *k = kind_find(kind);

        if (k == NULL)
                return NULL;
        for (size_t g = 0; g < GROUPS_MAX && k->groups[g] != NULL; g++)
                for (const struct key *key = k->groups[g]; key->name != NULL; key++) {
                        /* A name in two groups is listed once: the first. */
                        if (key_find(k, key->name, strlen(key->name)) != key)
                                continue;
                        if (i-- == 0)
                                return key->name;
                }
        return NULL;
}

int pc_template_expand(const char *name, const char *text, size_t len, const char *kind,
                       enum pc_template_format format, const char *lang, const char *payload_json,
                       int64_t notification_id, int64_t created, char **ret_subject,
                       char **ret_body, char *err, size_t errsz)
{
        const struct kind *k = kind_find(kind);
        json_t *payload = NULL;
        int r;

        if (k == NULL)
                return fail_plain(err, errsz, -EINVAL, "%s: unknown notification kind '%.64s'",
                                  name, kind != NULL ? kind : "(null)");
        if (format != PC_TEMPLATE_TEXT && format != PC_TEMPLATE_HTML)
                return fail_plain(err, errsz, -EINVAL, "%s: unknown template format", name);
        if (payload_json != NULL && ret_body == NULL)
                return fail_plain(err, errsz, -EINVAL, "%s: nowhere to put the text", name);
        if (payload_json != NULL) {
                r = payload_parse(payload_json, &payload, err, errsz);
                if (r < 0)
                        return r;
        }
        r = expand(name, text, len, k, format, lang, payload, notification_id, created,
                   ret_subject, ret_body, err, errsz);
        json_decref(payload);
        return r;
}

int pc_template_check(const char *dir, const char *const *langs, char *err, size_t errsz)
{
        static const char *const exts[] = { "txt", "html" };
        char path[4096];
        int r;

        if (langs == NULL)
                langs = pc_template_languages;
        for (size_t l = 0; langs[l] != NULL; l++) {
                if (!lang_valid(langs[l]))
                        return fail_plain(err, errsz, -EINVAL, "%s: '%.32s' is not a language tag",
                                          dir, langs[l]);
                for (size_t k = 0; pc_template_kinds[k] != NULL; k++)
                        for (size_t e = 0; e < PC_ARRAY_SIZE(exts); e++) {
                                r = template_path(dir, langs[l], pc_template_kinds[k], exts[e],
                                                  path, sizeof(path), err, errsz);
                                if (r < 0)
                                        return r;
                                r = file_expand(path, kind_find(pc_template_kinds[k]),
                                                e == 0 ? PC_TEMPLATE_TEXT : PC_TEMPLATE_HTML,
                                                langs[l], NULL, 0, 0, NULL, NULL, err, errsz);
                                if (r < 0)
                                        return r;
                        }
        }
        r = template_path(dir, "en", "abuse", "txt", path, sizeof(path), err, errsz);
        if (r < 0)
                return r;
        return file_expand(path, kind_find("abuse"), PC_TEMPLATE_TEXT, "en", NULL, 0, 0, NULL,
                           NULL, err, errsz);
}

int pc_template_render(const char *dir, const char *lang, const char *default_lang,
                       const char *kind, const char *payload_json, int64_t notification_id,
                       int64_t created, char **ret_subject, char **ret_text, char **ret_html,
                       char *err, size_t errsz)
{
        const struct kind *k = kind_find(kind);
        _cleanup_free_ char *subject = NULL, *text = NULL, *html = NULL;
        json_t *payload = NULL;
        const char *use = lang;
        char path[4096];
        int r;

        if (k == NULL || strcmp(k->name, "abuse") == 0)
                return fail_plain(err, errsz, -EINVAL, "unknown notification kind '%.64s'",
                                  kind != NULL ? kind : "(null)");
        if (!lang_valid(default_lang))
                return fail_plain(err, errsz, -EINVAL, "'%.32s' is not a language tag",
                                  default_lang != NULL ? default_lang : "(null)");
        if (!lang_valid(use))
                use = default_lang;
        r = payload_parse(payload_json, &payload, err, errsz);
        if (r < 0)
                return r;
        r = template_path(dir, use, kind, "txt", path, sizeof(path), err, errsz);
        if (r < 0)
                goto out;
        r = file_expand(path, k, PC_TEMPLATE_TEXT, use, payload, notification_id, created,
                        &subject, &text, err, errsz);
        if (r == -ENOENT && strcmp(use, default_lang) != 0) {
                use = default_lang;
                r = template_path(dir, use, kind, "txt", path, sizeof(path), err, errsz);
                if (r < 0)
                        goto out;
                r = file_expand(path, k, PC_TEMPLATE_TEXT, use, payload, notification_id,
                                created, &subject, &text, err, errsz);
        }
        if (r < 0)
                goto out;
        r = template_path(dir, use, kind, "html", path, sizeof(path), err, errsz);
        if (r < 0)
                goto out;
        r = file_expand(path, k, PC_TEMPLATE_HTML, use, payload, notification_id, created, NULL,
                        &html, err, errsz);
        if (r < 0)
                goto out;
        *ret_subject = subject;
        *ret_text = text;
        *ret_html = html;
        subject = text = html = NULL;
out:
        json_decref(payload);
        return r;
}

int pc_template_render_abuse(const char *dir, const char *payload_json, int64_t notification_id,
                             int64_t created, char **ret_subject, char **ret_text, char *err,
                             size_t errsz)
{
        _cleanup_free_ char *subject = NULL, *text = NULL;
        json_t *payload = NULL;
        char path[4096];
        int r;

        r = payload_parse(payload_json, &payload, err, errsz);
        if (r < 0)
                return r;
        r = template_path(dir, "en", "abuse", "txt", path, sizeof(path), err, errsz);
        if (r >= 0)
                r = file_expand(path, kind_find("abuse"), PC_TEMPLATE_TEXT, "en", payload,
                                notification_id, created, &subject, &text, err, errsz);
        json_decref(payload);
        if (r < 0)
                return r;
        *ret_subject = subject;
        *ret_text = text;
        subject = text = NULL;
        return 0;
}
