/* Loading the configuration: the main file and the profiles it names are
 * parsed with libfyaml's event parser into a small tree of our own (which
 * carries 1-based positions for every node and lets us refuse aliases,
 * duplicate keys, extra documents and deep nesting), then checked key by
 * key into a fresh struct pc_config.  Any error frees everything and
 * leaves one line "FILE:LINE:COL: message" in the caller's buffer. */
#include <errno.h>
#include <fcntl.h>
#include <libfyaml.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "detect/scan.h"
#include "policy/config.h"

/* Limits on what a config file can make us allocate. */
#define FILE_SIZE_MAX (1024 * 1024)
#define TREE_DEPTH_MAX 16
#define TREE_NODES_MAX 100000
#define PROFILES_MAX 64
#define SERVICES_MAX 256 /* defined in the main file, beyond the built-ins */
#define SITES_MAX 1024
#define KNOWN_LIST_MAX 400 /* bytes of "(known: ...)" in a message */
#define SMTP_WINDOW_MIN 1        /* seconds; short windows are for tests */
#define SMTP_WINDOW_MAX 86400
#define SMTP_TIMEOUT_MIN 1
#define SMTP_TIMEOUT_MAX 3600
#define SMTP_LIFETIME_MAX 86400 /* a whole session: at most a day */

/* ---- Defaults: every optional key's value when it is absent. ---- */

#define DEFAULT_DATABASE "sqlite:/var/lib/portcullis/portcullis.db"
#define DEFAULT_SERVICE_DIRECTION PC_DIR_BOTH
#define DEFAULT_EXCEPTIONS PC_EXCEPTIONS_TICKET
#define DEFAULT_ANTI_SPOOFING false
#define DEFAULT_RESPONSE PC_RESP_NOTIFY
#define DEFAULT_SMTP_PROXY_TLS false
#define DEFAULT_TOS_EVENT false
/* exemptable: true for block rules, false for redirect rules */

static const struct pc_detectors default_detectors = {
        .scan_enabled = true,
        .scan_false_positive_rate = 0.001,
        .scan_detection_rate = 0.99,
        .scan_slow_window = 3600,
        .scan_slow_threshold = 100,
        .scan_hold_after = 5,
        .scan_hold_timeout = 60,
        .scan_confirm_probes = 20,
        .scan_pending_timeout = 2,
        .scan_contact_memory = 600,
        .spam_enabled = true,
        .spam_messages_per_hour = 200,
        .spam_recipients_per_message = 50,
        .spam_upstream_reject_ratio = 0.5,
        .spam_domains_per_hour = 50,
        .spam_min_recipients = 20,
        .spam_limit_hits_per_hour = 10,
        .spoof_enabled = true,
        .spoof_episode_gap = 300,
        /* FastNetMon's defaults: 20k pps, 1,000 Mbit/s */
        .flood_enabled = true,
        .flood_packets_per_second = 20000,
        .flood_megabits_per_second = 1000,
        .flood_sample = 16,
        /* chargen, DNS, NTP, SNMP, CLDAP, SSDP, memcached */
        .reflection_enabled = true,
        .reflection_ports = { { PC_PROTO_UDP, 19, 19 }, { PC_PROTO_UDP, 53, 53 }, { PC_PROTO_UDP, 123, 123 },
                              { PC_PROTO_UDP, 161, 161 }, { PC_PROTO_UDP, 389, 389 }, { PC_PROTO_UDP, 1900, 1900 },
                              { PC_PROTO_UDP, 11211, 11211 } },
        .n_reflection_ports = 7,
        .reflection_megabits_per_second = 8,
};

static const struct pc_escalation default_escalation = {
        .memory = 30 * 86400,
        .steps = { 3600, 86400, PC_ESCALATION_SUSPEND },
        .n_steps = 3,
};

static const struct pc_notify_config default_notify = {
        .relay = "smtp://localhost:25",
        .from = "Portcullis <portcullis@localhost.localdomain>",
        .abuse_copy = "", /* none */
        .default_language = "en",
        .max_attempts = 8,
        .templates = "templates",
        .starttls = PC_STARTTLS_OPPORTUNISTIC,
        .tls_verify = true,
        .timeout = 30,
        .retry_base = 60,
        .notice_gap = 3600,
        .webhook_timeout = 10,
};

static const struct pc_agent_config default_agent = {
        .control_socket = "/run/portcullis/control.sock",
        .nft_table = "portcullis",
        .attempts_interval = 10,
};

/* command: RFC 5321's server timeout (4.5.3.2.7); upstream: its longest
 * client wait, for the reply to the final '.' (4.5.3.2.6). */
static const struct pc_smtp_proxy_limits default_smtp_limits = {
        .source = PC_SMTP_SOURCE_VPS,
        .messages_per_hour = 500,
        .recipients_per_message = 100,
        .recipients_per_hour = 2000,
        .sessions_per_vps = 20,
        .window = 3600,
        .command_timeout = 300,
        .data_timeout = 600,
        .upstream_timeout = 600,
        .connect_timeout = 30,
        .client_write_timeout = 300,
        .lifetime = 3600,
};

static const struct pc_smtpd_config default_smtpd = {
        .control_socket = "/run/portcullis/smtpd.sock",
        .max_sessions = 10000,
        .user = "portcullis-smtpd",
};

/* ---- The tree ---- */

enum node_kind {
        NODE_SCALAR,
        NODE_MAP,
        NODE_SEQ,
};

struct node {
        enum node_kind kind;
        int line, col; /* 1-based */
        bool null;     /* a missing value, or a plain ~ / null */
        char *text;    /* scalars: NUL-terminated copy */
        size_t len;
        struct node **kids; /* sequence items; mapping key, value, key, value... */
        size_t n_kids;
        size_t cap;
};

/* Loading state shared by all the steps. */
struct ctx {
        struct pc_config *cfg;
        const char *file; /* the file being read, owned by cfg->files */
        char *err;
        size_t errsz;
        size_t n_nodes;
        int last_line, last_col;
};

static const char *const main_keys[] = {
        "database", "services", "profiles", "sites", "default-site",
        "detectors", "escalation", "notifications", "agent", "smtpd",
};
static const char *const service_keys[] = { "description", "ports", "ip-protocols", "direction" };
static const char *const profile_keys[] = {
        "profile", "description", "rules", "exceptions", "anti-spoofing", "responses", "smtp-proxy",
};
static const char *const rule_keys[] = {
        "service", "action", "direction", "ports", "ip-protocols", "exemptable", "tos-event", "why",
};
/* The incident kinds of enum pc_abuse, and (below) their config keys. */
static const char *const abuse_incidents[PC_ABUSE_KINDS] = {
        "spoof", "scan", "spam", "flood", "reflection", "attacked",
};
static const char *const responses_keys[PC_ABUSE_KINDS] = {
        "spoofing", "scanning", "spam", "flooding", "reflection", "attacked",
};
static const char *const proxy_keys[] = { "listen", "tls", "upstream-tls", "source", "limits", "timeouts" };
static const char *const proxy_limits_keys[] = {
        "messages-per-hour", "recipients-per-message", "recipients-per-hour", "sessions-per-vps",
        "window",
};
static const char *const proxy_timeouts_keys[] = { "command", "data", "upstream", "connect",
                                                   "client-write", "lifetime" };
static const char *const site_keys[] = { "policy", "description", "topology" };
static const char *const detectors_keys[] = { "scan", "spam", "spoof", "flood", "reflection" };
static const char *const flood_keys[] = { "enabled", "packets-per-second", "megabits-per-second", "sample" };
static const char *const reflection_keys[] = { "enabled", "ports", "megabits-per-second" };
static const char *const scan_keys[] = {
        "enabled", "false-positive-rate", "detection-rate", "slow-window", "slow-threshold",
        "hold-after", "hold-timeout", "confirm-probes", "pending-timeout", "contact-memory", "exclude",
};
static const char *const spam_keys[] = {
        "enabled", "messages-per-hour", "recipients-per-message", "upstream-reject-ratio",
        "domains-per-hour", "min-recipients", "limit-hits-per-hour",
};
static const char *const spoof_keys[] = { "enabled", "episode-gap" };
static const char *const escalation_keys[] = { "memory", "steps" };
static const char *const agent_keys[] = {
        "control-socket", "nft-table", "attempts-interval", "host", "snapshot", "max-vps",
};
static const char *const smtpd_keys[] = { "control-socket", "max-sessions", "user", "internal-prefixes" };
static const char *const notify_keys[] = {
        "relay", "from", "abuse-copy", "default-language", "max-attempts", "templates",
        "starttls", "tls-verify", "username", "password-file", "timeout", "retry-base", "notice-gap",
        "webhook",
};
static const char *const webhook_keys[] = { "url", "secret-file", "timeout" };

static struct node *node_free(struct node *n);
static int fail(struct ctx *c, const struct node *n, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int fail_at(struct ctx *c, const char *file, int line, int col, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
static const char *show(const struct node *n, char *buf, size_t size);
static int read_file(const char *path, char **ret_text, size_t *ret_len);
static void diag_discard(struct fy_diag *diag, void *user, const char *buf, size_t len);
static int tree_attach(struct ctx *c, struct node **stack, size_t depth, struct node **root,
                       struct node *n);
static int check_text(struct ctx *c, const char *text, size_t len);
static char *single_quoted(const char *text, size_t len, struct fy_token *tok, size_t *ret_len);
static int tree_parse(struct ctx *c, const char *text, size_t len, struct node **ret);
static int check_keys(struct ctx *c, const struct node *map, const char *what,
                      const char *const *keys, size_t n_keys);
static const struct node *map_get(const struct node *map, const char *key);
static const struct node *map_key(const struct node *map, const char *key);
static int want_map(struct ctx *c, const struct node *n, const char *key);
static int want_seq(struct ctx *c, const struct node *n, const char *key);
static int want_scalar(struct ctx *c, const struct node *n, const char *key, const char *what);
static int get_string(struct ctx *c, const struct node *n, const char *key, char *dst, size_t size);
static int get_name(struct ctx *c, const struct node *n, const char *what, char *dst);
static int get_bool(struct ctx *c, const struct node *n, const char *key, bool *ret);
static int get_uint(struct ctx *c, const struct node *n, const char *key, unsigned lo,
                    unsigned hi, unsigned *ret);
static int get_fraction(struct ctx *c, const struct node *n, const char *key, bool hi_closed,
                        double *ret);
static int get_duration(struct ctx *c, const struct node *n, const char *key, int64_t *ret);
static int get_duration_in(struct ctx *c, const struct node *n, const char *key, int64_t lo,
                           int64_t hi, int64_t *ret);
static int get_dir(struct ctx *c, const struct node *n, const char *key, unsigned *ret);
static int get_ports(struct ctx *c, const struct node *n, const char *key,
                     struct pc_port_range *out, size_t *ret_n);
static int get_ip_protos(struct ctx *c, const struct node *n, const char *key, uint8_t *out,
                         size_t *ret_n);
static int get_responses(struct ctx *c, const struct node *n, const char *key, unsigned *ret);
static int get_listen(struct ctx *c, const struct node *n, char *dst, size_t size);
static int get_prefixes(struct ctx *c, const struct node *n, const char *key, struct pc_prefix *out,
                        size_t max, size_t *ret_n);
static bool ranges_overlap(const struct pc_port_range *a, const struct pc_port_range *b);
static int range_cmp(const void *x, const void *y);
static void known_list(char *buf, size_t size, const char *(*name_at)(const void *, size_t),
                       const void *arr, size_t n);
static const char *service_name_at(const void *arr, size_t i);
static const char *policy_name_at(const void *arr, size_t i);
static const char *site_name_at(const void *arr, size_t i);
static void known_services(const struct pc_config *cfg, char *buf, size_t size);
static void known_policies(const struct pc_config *cfg, char *buf, size_t size);
static void known_sites(const struct pc_config *cfg, char *buf, size_t size);
static int add_file(struct pc_config *cfg, const char *path, const char **ret);
static int load_services(struct ctx *c, const struct node *n);
static int load_rule(struct ctx *c, const struct node *n, struct pc_policy *p, size_t index);
static int check_rule_pair(struct ctx *c, const struct node *n, const struct pc_rule *a,
                           const struct pc_rule *b);
static int load_smtp_proxy(struct ctx *c, const struct node *n, struct pc_policy *p);
static int load_policy(struct ctx *c, const struct node *root, struct pc_policy *p);
static int load_profiles(struct ctx *c, const struct node *n, const char *base_dir);
static int load_sites(struct ctx *c, const struct node *n);
static int load_default_site(struct ctx *c, const struct node *n);
static int load_detectors(struct ctx *c, const struct node *n);
static int load_escalation(struct ctx *c, const struct node *n);
static int load_notifications(struct ctx *c, const struct node *n);
static int load_database(struct ctx *c, const struct node *n);
static int resolve_database(struct ctx *c, const struct node *root, const char *base_dir);
static int load_agent(struct ctx *c, const struct node *n);
static int load_smtpd(struct ctx *c, const struct node *n);
static int load_main(struct ctx *c, const char *text, size_t len, const char *base_dir);
static int load(const char *name, const char *text, size_t len, const char *base_dir,
                struct pc_config **ret, char *err, size_t errsz);

/* ---- Errors ---- */

/* Writes "FILE:LINE:COL: message" into the error buffer, on one line. */
static int fail_at(struct ctx *c, const char *file, int line, int col, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;

        if (c->err == NULL || c->errsz == 0)
                return -EINVAL;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (line > 0)
                snprintf(c->err, c->errsz, "%s:%d:%d: %s", file, line, col, msg);
        else
                snprintf(c->err, c->errsz, "%s: %s", file, msg);
        for (char *p = c->err; *p != '\0'; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        *p = '?';
        return -EINVAL;
}

/* Fails at node <n> (at the last position seen if <n> is NULL). */
static int fail(struct ctx *c, const struct node *n, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (n != NULL)
                return fail_at(c, c->file, n->line, n->col, "%s", msg);
        return fail_at(c, c->file, c->last_line > 0 ? c->last_line : 1,
                       c->last_col > 0 ? c->last_col : 1, "%s", msg);
}

/* Describes <n> for a message: 'text' (shortened) or what it is instead. */
static const char *show(const struct node *n, char *buf, size_t size)
{
        if (n == NULL || (n->kind == NODE_SCALAR && n->null))
                return "empty";
        if (n->kind == NODE_MAP)
                return "a mapping";
        if (n->kind == NODE_SEQ)
                return "a list";
        if (n->len > 40)
                snprintf(buf, size, "'%.37s...'", n->text);
        else
                snprintf(buf, size, "'%s'", n->text);
        return buf;
}

/* ---- Reading and parsing ---- */

/* Reads the regular file <path> (at most FILE_SIZE_MAX bytes). */
static int read_file(const char *path, char **ret_text, size_t *ret_len)
{
        struct stat st;
        char *text = NULL;
        size_t len = 0;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd == -1)
                return -errno;
        if (fstat(fd, &st) == -1) {
                r = -errno;
                goto out;
        }
        if (S_ISDIR(st.st_mode)) {
                r = -EISDIR;
                goto out;
        }
        if (!S_ISREG(st.st_mode)) {
                r = -EINVAL;
                goto out;
        }
        if (st.st_size > FILE_SIZE_MAX) {
                r = -EFBIG;
                goto out;
        }
        text = malloc(FILE_SIZE_MAX + 1);
        if (text == NULL) {
                r = -ENOMEM;
                goto out;
        }
        for (;;) {
                ssize_t k = read(fd, text + len, FILE_SIZE_MAX + 1 - len);

                if (k == -1) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto out;
                }
                if (k == 0)
                        break;
                len += (size_t)k;
                if (len > FILE_SIZE_MAX) {
                        r = -EFBIG;
                        goto out;
                }
        }
        text[len] = '\0';
        *ret_text = text;
        *ret_len = len;
        text = NULL;
        r = 0;
out:
        free(text);
        close(fd);
        return r;
}

/* libfyaml's diagnostics are collected, never printed. */
static void diag_discard(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
        (void)diag;
        (void)user;
        (void)buf;
        (void)len;
}

/* Frees a tree; depth is bounded by TREE_DEPTH_MAX.  Returns NULL. */
static struct node *node_free(struct node *n)
{
        if (n == NULL)
                return NULL;
        for (size_t i = 0; i < n->n_kids; i++)
                node_free(n->kids[i]);
        free(n->kids);
        free(n->text);
        free(n);
        return NULL;
}

/* Adds <n> to the collection on top of <stack>, or makes it the root.
 * Takes ownership of <n> in all cases. */
static int tree_attach(struct ctx *c, struct node **stack, size_t depth, struct node **root,
                       struct node *n)
{
        struct node *parent;

        if (depth == 0) {
                if (*root != NULL) { /* cannot happen within one document */
                        node_free(n);
                        return fail(c, NULL, "unexpected second root node");
                }
                *root = n;
                return 0;
        }
        parent = stack[depth - 1];
        if (parent->kind == NODE_MAP && parent->n_kids % 2 == 0 && n->kind != NODE_SCALAR) {
                int r = fail(c, n, "mapping keys must be plain strings, not %s",
                             n->kind == NODE_MAP ? "mappings" : "lists");
                node_free(n);
                return r;
        }
        if (parent->n_kids == parent->cap) {
                size_t cap = parent->cap == 0 ? 8 : parent->cap * 2;
                struct node **kids = realloc(parent->kids, cap * sizeof(*kids));

                if (kids == NULL) {
                        node_free(n);
                        return -ENOMEM;
                }
                parent->kids = kids;
                parent->cap = cap;
        }
        parent->kids[parent->n_kids++] = n;
        return 0;
}

/* Refuses NUL bytes and invalid UTF-8 before libfyaml sees them (0.7.12
 * loops forever on some invalid UTF-8 inside a directive). */
static int check_text(struct ctx *c, const char *text, size_t len)
{
        const unsigned char *s = (const unsigned char *)text;
        int line = 1, col = 1;

        for (size_t i = 0; i < len;) {
                unsigned char b = s[i];
                size_t n;
                uint32_t cp, min;

                if (b == '\0')
                        return fail_at(c, c->file, line, col, "NUL byte in file");
                if (b < 0x80) {
                        i++;
                        if (b == '\n') {
                                line++;
                                col = 1;
                        } else
                                col++;
                        continue;
                }
                if (b >= 0xc2 && b <= 0xdf)
                        n = 2, cp = b & 0x1f, min = 0x80;
                else if (b >= 0xe0 && b <= 0xef)
                        n = 3, cp = b & 0x0f, min = 0x800;
                else if (b >= 0xf0 && b <= 0xf4)
                        n = 4, cp = b & 0x07, min = 0x10000;
                else
                        return fail_at(c, c->file, line, col, "invalid UTF-8 (byte 0x%02x)", b);
                if (len - i < n)
                        return fail_at(c, c->file, line, col, "invalid UTF-8 (truncated sequence)");
                for (size_t k = 1; k < n; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return fail_at(c, c->file, line, col,
                                               "invalid UTF-8 (byte 0x%02x)", s[i + k]);
                        cp = (cp << 6) | (s[i + k] & 0x3f);
                }
                if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return fail_at(c, c->file, line, col, "invalid UTF-8 (code point U+%04X)",
                                       (unsigned)cp);
                i += n;
                col++;
        }
        return 0;
}

/* Decodes the single-quoted scalar <tok> from the source <text> ('' is a
 * quote; line breaks fold as in YAML 1.2).  libfyaml 0.7.12's
 * fy_token_get_text() leaks its buffer for runs of five or more '' (found
 * by fuzzing), so these scalars never go through it.  Returns a malloc'd
 * string, or NULL if out of memory or if the marks do not fit the text
 * (the caller then falls back to libfyaml's copy). */
static char *single_quoted(const char *text, size_t len, struct fy_token *tok, size_t *ret_len)
{
        const struct fy_mark *sm = fy_token_start_mark(tok), *em = fy_token_end_mark(tok);
        size_t a, b, o = 0;
        char *out;

        if (sm == NULL || em == NULL)
                return NULL;
        a = sm->input_pos;
        b = em->input_pos;
        /* the marks span the content, inside the quotes */
        if (a == 0 || a > b || b >= len || text[a - 1] != '\'' || text[b] != '\'')
                return NULL;
        out = malloc(b - a + 1);
        if (out == NULL)
                return NULL;
        for (size_t i = a; i < b;) {
                if (text[i] == '\'' && i + 1 < b && text[i + 1] == '\'') {
                        out[o++] = '\'';
                        i += 2;
                } else if (text[i] == '\n' || text[i] == '\r') {
                        size_t breaks = 0;

                        while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
                                o--; /* trailing blanks of the line */
                        while (i < b && (text[i] == '\n' || text[i] == '\r' || text[i] == ' ' ||
                                         text[i] == '\t')) {
                                if (text[i] == '\n' || (text[i] == '\r' &&
                                                        (i + 1 >= b || text[i + 1] != '\n')))
                                        breaks++;
                                i++;
                        }
                        if (breaks == 1)
                                out[o++] = ' ';
                        else
                                for (size_t k = 1; k < breaks; k++)
                                        out[o++] = '\n';
                } else
                        out[o++] = text[i++];
        }
        out[o] = '\0';
        *ret_len = o;
        return out;
}

/* Parses one YAML document in <text> into a tree of our nodes. */
static int tree_parse(struct ctx *c, const char *text, size_t len, struct node **ret)
{
        struct node *stack[TREE_DEPTH_MAX];
        struct node *root = NULL;
        struct fy_diag_cfg dcfg;
        struct fy_diag *diag = NULL;
        struct fy_parser *parser = NULL;
        struct fy_parse_cfg pcfg;
        struct fy_event *ev;
        size_t depth = 0;
        unsigned n_docs = 0;
        int r = 0;

        c->last_line = 1;
        c->last_col = 1;
        if (len > FILE_SIZE_MAX)
                return fail(c, NULL, "file is larger than %d bytes", FILE_SIZE_MAX);
        r = check_text(c, text, len);
        if (r < 0)
                return r;

        fy_diag_cfg_default(&dcfg);
        dcfg.fp = NULL;
        dcfg.output_fn = diag_discard;
        dcfg.colorize = false;
        diag = fy_diag_create(&dcfg);
        if (diag == NULL)
                return -ENOMEM;
        fy_diag_set_collect_errors(diag, true);

        memset(&pcfg, 0, sizeof(pcfg));
        pcfg.flags = FYPCF_QUIET | FYPCF_COLLECT_DIAG | FYPCF_DISABLE_RECYCLING;
        pcfg.diag = diag;
        parser = fy_parser_create(&pcfg);
        if (parser == NULL) {
                r = -ENOMEM;
                goto out;
        }
        if (fy_parser_set_string(parser, text, len) != 0) {
                r = -ENOMEM;
                goto out;
        }

        while ((ev = fy_parser_parse(parser)) != NULL) {
                const struct fy_mark *m = fy_event_start_mark(ev);
                enum fy_event_type type = ev->type;
                struct node *n = NULL;

                if (m != NULL) {
                        c->last_line = m->line + 1;
                        c->last_col = m->column + 1;
                }
                switch (type) {
                case FYET_DOCUMENT_START:
                        if (++n_docs > 1)
                                r = fail(c, NULL, "more than one YAML document in the file "
                                                  "(remove the '---' or split the file)");
                        break;
                case FYET_ALIAS:
                        /* the mark is the anchor name's, after the '*' */
                        if (c->last_col > 1)
                                c->last_col--;
                        r = fail(c, NULL, "aliases (*name) are not supported");
                        break;
                case FYET_SCALAR:
                case FYET_MAPPING_START:
                case FYET_SEQUENCE_START:
                        if (++c->n_nodes > TREE_NODES_MAX) {
                                r = fail(c, NULL, "too many nodes (more than %d)",
                                         TREE_NODES_MAX);
                                break;
                        }
                        n = calloc(1, sizeof(*n));
                        if (n == NULL) {
                                r = -ENOMEM;
                                break;
                        }
                        n->line = c->last_line;
                        n->col = c->last_col;
                        if (type == FYET_SCALAR) {
                                enum fy_scalar_style st;
                                const char *t = "";
                                size_t tl = 0;
                                bool plain;

                                n->kind = NODE_SCALAR;
                                st = ev->scalar.value != NULL
                                             ? fy_token_scalar_style(ev->scalar.value)
                                             : FYSS_PLAIN;
                                plain = st == FYSS_PLAIN;
                                /* quoted: point at the quote, not inside */
                                if ((st == FYSS_SINGLE_QUOTED || st == FYSS_DOUBLE_QUOTED) &&
                                    n->col > 1)
                                        n->col--;
                                if (st == FYSS_SINGLE_QUOTED)
                                        n->text = single_quoted(text, len, ev->scalar.value,
                                                                &n->len);
                                if (ev->scalar.value != NULL && n->text == NULL) {
                                        t = fy_token_get_text(ev->scalar.value, &tl);
                                        if (t == NULL) {
                                                free(n);
                                                r = -ENOMEM;
                                                break;
                                        }
                                }
                                if (n->text == NULL) {
                                        n->text = malloc(tl + 1);
                                        if (n->text == NULL) {
                                                free(n);
                                                r = -ENOMEM;
                                                break;
                                        }
                                        memcpy(n->text, t, tl);
                                        n->text[tl] = '\0';
                                        n->len = tl;
                                }
                                n->null = plain && (tl == 0 || strcmp(n->text, "~") == 0 ||
                                                    strcmp(n->text, "null") == 0 ||
                                                    strcmp(n->text, "Null") == 0 ||
                                                    strcmp(n->text, "NULL") == 0);
                        } else {
                                n->kind = type == FYET_MAPPING_START ? NODE_MAP : NODE_SEQ;
                                if (depth >= TREE_DEPTH_MAX) {
                                        free(n);
                                        r = fail(c, NULL, "nested deeper than %d levels",
                                                 TREE_DEPTH_MAX);
                                        break;
                                }
                        }
                        r = tree_attach(c, stack, depth, &root, n);
                        if (r >= 0 && n->kind != NODE_SCALAR)
                                stack[depth++] = n;
                        break;
                case FYET_MAPPING_END:
                case FYET_SEQUENCE_END:
                        if (depth > 0)
                                depth--;
                        break;
                default:
                        break;
                }
                fy_parser_event_free(parser, ev);
                if (r < 0)
                        goto out;
        }

        if (fy_parser_get_stream_error(parser)) {
                struct fy_diag_error *de;
                void *it = NULL;

                de = fy_diag_errors_iterate(diag, &it);
                if (de != NULL && de->msg != NULL)
                        r = fail_at(c, c->file, de->line > 0 ? de->line : 1,
                                    de->column > 0 ? de->column : 1, "%s", de->msg);
                else
                        r = fail(c, NULL, "invalid YAML");
                goto out;
        }
        if (root == NULL) {
                r = fail_at(c, c->file, 1, 1, "empty document");
                goto out;
        }
        if (root->kind != NODE_MAP) {
                r = fail(c, root, "the top level must be a mapping of keys to values, not %s",
                         root->kind == NODE_SEQ ? "a list" : "a string");
                goto out;
        }
        *ret = root;
        root = NULL;
        r = 0;
out:
        node_free(root);
        fy_parser_destroy(parser);
        fy_diag_destroy(diag);
        return r;
}

/* ---- Typed access to the tree ---- */

/* Checks that every key of <map> is one of <keys> and appears once. */
static int check_keys(struct ctx *c, const struct node *map, const char *what,
                      const char *const *keys, size_t n_keys)
{
        for (size_t i = 0; i + 1 < map->n_kids; i += 2) {
                const struct node *k = map->kids[i];
                char buf[64], expected[512];
                size_t j, off = 0;

                for (j = 0; j < n_keys; j++)
                        if (strcmp(k->text, keys[j]) == 0)
                                break;
                if (j == n_keys) {
                        expected[0] = '\0';
                        for (j = 0; j < n_keys && off < sizeof(expected); j++)
                                off += (size_t)snprintf(expected + off, sizeof(expected) - off,
                                                        "%s%s", j == 0 ? "" : ", ", keys[j]);
                        return fail(c, k, "unknown key %s in %s (expected: %s)",
                                    show(k, buf, sizeof(buf)), what, expected);
                }
                for (j = 0; j < i; j += 2)
                        if (strcmp(map->kids[j]->text, k->text) == 0)
                                return fail(c, k, "duplicate key '%s' in %s (first at line %d)",
                                            k->text, what, map->kids[j]->line);
        }
        return 0;
}

/* Returns the value of <key> in <map>, or NULL. */
static const struct node *map_get(const struct node *map, const char *key)
{
        for (size_t i = 0; i + 1 < map->n_kids; i += 2)
                if (strcmp(map->kids[i]->text, key) == 0)
                        return map->kids[i + 1];
        return NULL;
}

/* Returns the key node <key> in <map>, or NULL. */
static const struct node *map_key(const struct node *map, const char *key)
{
        for (size_t i = 0; i + 1 < map->n_kids; i += 2)
                if (strcmp(map->kids[i]->text, key) == 0)
                        return map->kids[i];
        return NULL;
}

static int want_map(struct ctx *c, const struct node *n, const char *key)
{
        char buf[64];

        if (n->kind != NODE_MAP)
                return fail(c, n, "'%s' must be a mapping, not %s", key, show(n, buf, sizeof(buf)));
        return 0;
}

static int want_seq(struct ctx *c, const struct node *n, const char *key)
{
        char buf[64];

        if (n->kind != NODE_SEQ)
                return fail(c, n, "'%s' must be a list, not %s", key, show(n, buf, sizeof(buf)));
        return 0;
}

/* Checks that <n> is a non-empty scalar without NUL bytes. */
static int want_scalar(struct ctx *c, const struct node *n, const char *key, const char *what)
{
        char buf[64];

        if (n->kind != NODE_SCALAR || n->null)
                return fail(c, n, "'%s' must be %s, not %s", key, what, show(n, buf, sizeof(buf)));
        if (strlen(n->text) != n->len)
                return fail(c, n, "'%s' contains a NUL character", key);
        return 0;
}

/* Copies the string value <n> of <key> into <dst> of <size> bytes. */
static int get_string(struct ctx *c, const struct node *n, const char *key, char *dst, size_t size)
{
        int r = want_scalar(c, n, key, "a string");

        if (r < 0)
                return r;
        if (n->len >= size)
                return fail(c, n, "'%s' is too long (%zu bytes, at most %zu)", key, n->len,
                            size - 1);
        memcpy(dst, n->text, n->len + 1);
        return 0;
}

/* Copies the object name <n> (a service, policy or site) into <dst>. */
static int get_name(struct ctx *c, const struct node *n, const char *what, char *dst)
{
        char buf[64];
        int r = want_scalar(c, n, what, "a name");

        if (r < 0)
                return r;
        if (!pc_name_valid(n->text))
                return fail(c, n, "invalid %s name %s (1-63 of a-z, 0-9, '.', '_', '-', "
                                  "starting with a letter or digit)",
                            what, show(n, buf, sizeof(buf)));
        return pc_strlcpy(dst, n->text, PC_NAME_MAX);
}

static int get_bool(struct ctx *c, const struct node *n, const char *key, bool *ret)
{
        char buf[64];

        if (n->kind == NODE_SCALAR && strcmp(n->text, "true") == 0)
                *ret = true;
        else if (n->kind == NODE_SCALAR && strcmp(n->text, "false") == 0)
                *ret = false;
        else
                return fail(c, n, "'%s' must be true or false, not %s", key,
                            show(n, buf, sizeof(buf)));
        return 0;
}

static int get_uint(struct ctx *c, const struct node *n, const char *key, unsigned lo,
                    unsigned hi, unsigned *ret)
{
        char buf[64];
        unsigned long long v = 0;
        bool ok = n->kind == NODE_SCALAR && n->len > 0 && n->len <= 10;

        for (size_t i = 0; ok && i < n->len; i++) {
                if (n->text[i] < '0' || n->text[i] > '9')
                        ok = false;
                else
                        v = v * 10 + (unsigned)(n->text[i] - '0');
        }
        if (!ok || v < lo || v > hi)
                return fail(c, n, "'%s' must be a whole number from %u to %u, not %s", key, lo, hi,
                            show(n, buf, sizeof(buf)));
        *ret = (unsigned)v;
        return 0;
}

/* A fraction in (0, 1), or (0, 1] if <hi_closed>. */
static int get_fraction(struct ctx *c, const struct node *n, const char *key, bool hi_closed,
                        double *ret)
{
        char buf[64];
        char *end = NULL;
        double v = 0;
        bool ok = n->kind == NODE_SCALAR && n->len > 0 && n->len < 32 &&
                  strlen(n->text) == n->len && (n->text[0] == '.' ||
                                                (n->text[0] >= '0' && n->text[0] <= '9'));

        if (ok) {
                errno = 0;
                v = strtod(n->text, &end);
                ok = errno == 0 && end != NULL && *end == '\0' && isfinite(v) && v > 0 &&
                     (hi_closed ? v <= 1 : v < 1);
        }
        if (!ok)
                return fail(c, n, "'%s' must be a number greater than 0 and %s 1, not %s", key,
                            hi_closed ? "at most" : "less than", show(n, buf, sizeof(buf)));
        *ret = v;
        return 0;
}

static int get_duration(struct ctx *c, const struct node *n, const char *key, int64_t *ret)
{
        char buf[64];
        int64_t v;

        if (n->kind != NODE_SCALAR || strlen(n->text) != n->len ||
            pc_parse_duration(n->text, &v) < 0 || v <= 0)
                return fail(c, n, "'%s' must be a positive duration such as 90s, 5m, 1h, 30d, "
                                  "not %s", key, show(n, buf, sizeof(buf)));
        *ret = v;
        return 0;
}

/* A duration from <lo> to <hi> seconds. */
static int get_duration_in(struct ctx *c, const struct node *n, const char *key, int64_t lo,
                           int64_t hi, int64_t *ret)
{
        char buf[64], a[32], b[32];
        int64_t v;

        if (n->kind != NODE_SCALAR || strlen(n->text) != n->len ||
            pc_parse_duration(n->text, &v) < 0 || v < lo || v > hi) {
                pc_format_duration(lo, a, sizeof(a));
                pc_format_duration(hi, b, sizeof(b));
                return fail(c, n, "'%s' must be a duration from %s to %s, not %s", key, a, b,
                            show(n, buf, sizeof(buf)));
        }
        *ret = v;
        return 0;
}

static int get_dir(struct ctx *c, const struct node *n, const char *key, unsigned *ret)
{
        char buf[64];

        if (n->kind != NODE_SCALAR || pc_dir_parse(n->text, ret) < 0)
                return fail(c, n, "'%s' must be egress, ingress or both, not %s", key,
                            show(n, buf, sizeof(buf)));
        return 0;
}

static bool ranges_overlap(const struct pc_port_range *a, const struct pc_port_range *b)
{
        return a->proto == b->proto && a->lo <= b->hi && b->lo <= a->hi;
}

static int range_cmp(const void *x, const void *y)
{
        const struct pc_port_range *a = x, *b = y;

        if (a->proto != b->proto)
                return a->proto < b->proto ? -1 : 1;
        if (a->lo != b->lo)
                return a->lo < b->lo ? -1 : 1;
        return 0;
}

/* A list of port ranges, none overlapping another; stored sorted. */
static int get_ports(struct ctx *c, const struct node *n, const char *key,
                     struct pc_port_range *out, size_t *ret_n)
{
        struct pc_port_range tmp[PC_SERVICE_PORTS_MAX];
        int r = want_seq(c, n, key);

        if (r < 0)
                return r;
        if (n->n_kids > PC_SERVICE_PORTS_MAX)
                return fail(c, n, "'%s' has %zu port ranges, at most %d are allowed", key,
                            n->n_kids, PC_SERVICE_PORTS_MAX);
        for (size_t i = 0; i < n->n_kids; i++) {
                const struct node *item = n->kids[i];
                char msg[256], buf[64], a[32], b[32];

                r = want_scalar(c, item, key, "a list of port ranges such as tcp/25");
                if (r < 0)
                        return r;
                if (pc_port_range_parse(item->text, &tmp[i], msg, sizeof(msg)) < 0)
                        return fail(c, item, "bad port range %s in '%s': %s",
                                    show(item, buf, sizeof(buf)), key, msg);
                for (size_t j = 0; j < i; j++)
                        if (ranges_overlap(&tmp[i], &tmp[j])) {
                                pc_port_range_format(&tmp[i], a, sizeof(a));
                                pc_port_range_format(&tmp[j], b, sizeof(b));
                                return fail(c, item, "port range %s overlaps %s earlier in '%s'",
                                            a, b, key);
                        }
        }
        qsort(tmp, n->n_kids, sizeof(tmp[0]), range_cmp);
        memcpy(out, tmp, n->n_kids * sizeof(tmp[0]));
        *ret_n = n->n_kids;
        return 0;
}

/* A list of port-less IP protocols (gre, esp, icmp, ipv6-icmp). */
static int get_ip_protos(struct ctx *c, const struct node *n, const char *key, uint8_t *out,
                         size_t *ret_n)
{
        uint8_t tmp[PC_IPPROTO_MAX];
        int r = want_seq(c, n, key);

        if (r < 0)
                return r;
        if (n->n_kids > PC_IPPROTO_MAX)
                return fail(c, n, "'%s' has %zu protocols, at most %d are allowed", key,
                            n->n_kids, PC_IPPROTO_MAX);
        for (size_t i = 0; i < n->n_kids; i++) {
                const struct node *item = n->kids[i];
                char buf[64];

                r = want_scalar(c, item, key, "a list of protocols such as gre");
                if (r < 0)
                        return r;
                if (pc_proto_parse(item->text, &tmp[i]) < 0)
                        return fail(c, item, "unknown protocol %s in '%s' (expected: gre, esp, "
                                             "icmp, ipv6-icmp)", show(item, buf, sizeof(buf)), key);
                if (tmp[i] == PC_PROTO_TCP || tmp[i] == PC_PROTO_UDP)
                        return fail(c, item, "'%s' lists '%s', which has ports: put its port "
                                             "ranges in 'ports'", key, item->text);
                for (size_t j = 0; j < i; j++)
                        if (tmp[j] == tmp[i])
                                return fail(c, item, "'%s' lists '%s' twice", key, item->text);
        }
        for (size_t i = 1; i < n->n_kids; i++) /* canonical order: by number */
                for (size_t j = i; j > 0 && tmp[j - 1] > tmp[j]; j--) {
                        uint8_t t = tmp[j];

                        tmp[j] = tmp[j - 1];
                        tmp[j - 1] = t;
                }
        memcpy(out, tmp, n->n_kids);
        *ret_n = n->n_kids;
        return 0;
}

/* A list of notify, suspend, outbound-filter, inbound-filter. */
static int get_responses(struct ctx *c, const struct node *n, const char *key, unsigned *ret)
{
        static const struct {
                const char *name;
                unsigned bit;
        } names[] = {
                { "notify", PC_RESP_NOTIFY },
                { "suspend", PC_RESP_SUSPEND },
                { "outbound-filter", PC_RESP_OUTBOUND_FILTER },
                { "inbound-filter", PC_RESP_INBOUND_FILTER },
                { "terminate", PC_RESP_TERMINATE },
        };
        unsigned bits = 0;
        int r = want_seq(c, n, key);

        if (r < 0)
                return r;
        for (size_t i = 0; i < n->n_kids; i++) {
                const struct node *item = n->kids[i];
                char buf[64];
                size_t j;

                for (j = 0; j < PC_ARRAY_SIZE(names); j++)
                        if (item->kind == NODE_SCALAR && strcmp(item->text, names[j].name) == 0)
                                break;
                if (j == PC_ARRAY_SIZE(names))
                        return fail(c, item, "unknown response %s in '%s' (expected: notify, "
                                             "suspend, outbound-filter, inbound-filter, terminate)",
                                    show(item, buf, sizeof(buf)), key);
                if (bits & names[j].bit)
                        return fail(c, item, "'%s' lists '%s' twice", key, item->text);
                bits |= names[j].bit;
        }
        /* terminate answers the circumvention of another response. */
        if ((bits & PC_RESP_TERMINATE) &&
            !(bits & (PC_RESP_SUSPEND | PC_RESP_OUTBOUND_FILTER | PC_RESP_INBOUND_FILTER)))
                return fail(c, n, "'%s' lists 'terminate' without suspend or a filter: terminate answers an "
                                  "attempt to circumvent one of them (docs/DETECTION.md)", key);
        if ((bits & PC_RESP_TERMINATE) && strcmp(key, "attacked") == 0)
                return fail(c, n, "'attacked' cannot list 'terminate': a VPS under attack is a victim, "
                                  "never terminated");
        *ret = bits;
        return 0;
}

/* A list of at most <max> address prefixes ("10.0.0.0/8", "fd00::/8", or
 * one address), without host bits and without duplicates. */
static int get_prefixes(struct ctx *c, const struct node *n, const char *key, struct pc_prefix *out,
                        size_t max, size_t *ret_n)
{
        char buf[64];
        int r = want_seq(c, n, key);

        if (r < 0)
                return r;
        if (n->n_kids > max)
                return fail(c, n, "'%s' has %zu prefixes, at most %zu are allowed", key, n->n_kids, max);
        for (size_t i = 0; i < n->n_kids; i++) {
                const struct node *item = n->kids[i];
                struct pc_prefix p;

                r = want_scalar(c, item, key, "a list of prefixes such as 10.0.0.0/8");
                if (r < 0)
                        return r;
                if (pc_parse_prefix(item->text, true, &p) < 0)
                        return fail(c, item, "'%s' must list prefixes such as 10.0.0.0/8 or fd00::/8, "
                                             "not %s", key, show(item, buf, sizeof(buf)));
                if (pc_parse_prefix(item->text, false, &p) < 0)
                        return fail(c, item, "%s in '%s' has bits set beyond its length",
                                    show(item, buf, sizeof(buf)), key);
                for (size_t j = 0; j < i; j++)
                        if (pc_prefix_equal(&out[j], &p))
                                return fail(c, item, "'%s' lists %s twice", key,
                                            show(item, buf, sizeof(buf)));
                out[i] = p;
        }
        *ret_n = n->n_kids;
        return 0;
}

/* "host:port" or "[v6addr]:port", port 1-65535. */
static int get_listen(struct ctx *c, const struct node *n, char *dst, size_t size)
{
        char buf[64];
        const char *s, *port, *colon;
        bool ok = true;
        unsigned long v = 0;
        int r = get_string(c, n, "listen", dst, size);

        if (r < 0)
                return r;
        s = dst;
        if (s[0] == '[') {
                const char *close = strchr(s, ']');

                ok = close != NULL && close > s + 1 && close[1] == ':';
                for (const char *p = s + 1; ok && p < close; p++)
                        if (!(strchr("0123456789abcdefABCDEF:.", *p) != NULL))
                                ok = false;
                port = ok ? close + 2 : "";
        } else {
                colon = strchr(s, ':');
                ok = colon != NULL && colon > s && strchr(colon + 1, ':') == NULL;
                for (const char *p = s; ok && p < colon; p++)
                        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                              (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
                                ok = false;
                port = ok ? colon + 1 : "";
        }
        ok = ok && port[0] != '\0' && strlen(port) <= 5;
        for (const char *p = port; ok && *p != '\0'; p++) {
                if (*p < '0' || *p > '9')
                        ok = false;
                else
                        v = v * 10 + (unsigned long)(*p - '0');
        }
        if (!ok || v < 1 || v > 65535) {
                dst[0] = '\0';
                return fail(c, n, "'listen' must be HOST:PORT or [IPV6]:PORT with a port from "
                                  "1 to 65535, not %s", show(n, buf, sizeof(buf)));
        }
        return 0;
}

/* "a, b, c" (shortened to fit), or "none". */
static void known_list(char *buf, size_t size, const char *(*name_at)(const void *, size_t),
                       const void *arr, size_t n)
{
        size_t off = 0;

        if (size == 0)
                return;
        buf[0] = '\0';
        if (n == 0) {
                snprintf(buf, size, "none");
                return;
        }
        for (size_t i = 0; i < n; i++) {
                const char *name = name_at(arr, i);

                if (off + strlen(name) + 8 >= size || off + strlen(name) > KNOWN_LIST_MAX) {
                        snprintf(buf + off, size - off, ", ...");
                        return;
                }
                off += (size_t)snprintf(buf + off, size - off, "%s%s", i == 0 ? "" : ", ", name);
        }
}

static const char *service_name_at(const void *arr, size_t i)
{
        return ((const struct pc_service *)arr)[i].name;
}

static const char *policy_name_at(const void *arr, size_t i)
{
        return ((const struct pc_policy *)arr)[i].name;
}

static const char *site_name_at(const void *arr, size_t i)
{
        return ((const struct pc_site *)arr)[i].name;
}

static void known_services(const struct pc_config *cfg, char *buf, size_t size)
{
        known_list(buf, size, service_name_at, cfg->services, cfg->n_services);
}

static void known_policies(const struct pc_config *cfg, char *buf, size_t size)
{
        known_list(buf, size, policy_name_at, cfg->policies, cfg->n_policies);
}

static void known_sites(const struct pc_config *cfg, char *buf, size_t size)
{
        known_list(buf, size, site_name_at, cfg->sites, cfg->n_sites);
}

/* ---- The sections ---- */

/* Records <path> in cfg->files; *<ret> is the stored copy. */
static int add_file(struct pc_config *cfg, const char *path, const char **ret)
{
        char **files = realloc(cfg->files, (cfg->n_files + 1) * sizeof(*files));
        char *copy;

        if (files == NULL)
                return -ENOMEM;
        cfg->files = files;
        copy = strdup(path);
        if (copy == NULL)
                return -ENOMEM;
        cfg->files[cfg->n_files++] = copy;
        *ret = copy;
        return 0;
}

/* `services:` — the built-ins first, then the file's, in file order. */
static int load_services(struct ctx *c, const struct node *n)
{
        struct pc_config *cfg = c->cfg;
        const struct pc_service *builtin;
        size_t n_builtin, n_extra = 0;
        int r;

        builtin = pc_catalog_builtin(&n_builtin);
        if (n != NULL) {
                r = want_map(c, n, "services");
                if (r < 0)
                        return r;
                n_extra = n->n_kids / 2;
                if (n_extra > SERVICES_MAX)
                        return fail(c, n, "'services' defines %zu services, at most %d are "
                                          "allowed", n_extra, SERVICES_MAX);
        }
        cfg->services = calloc(n_builtin + n_extra, sizeof(*cfg->services));
        if (cfg->services == NULL)
                return -ENOMEM;
        memcpy(cfg->services, builtin, n_builtin * sizeof(*builtin));
        cfg->n_services = n_builtin;

        for (size_t i = 0; i < n_extra; i++) {
                const struct node *k = n->kids[2 * i], *v = n->kids[2 * i + 1], *x;
                struct pc_service *svc = &cfg->services[cfg->n_services];
                char what[96];

                r = get_name(c, k, "service", svc->name);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < cfg->n_services; j++) {
                        if (strcmp(cfg->services[j].name, svc->name) != 0)
                                continue;
                        if (cfg->services[j].builtin)
                                return fail(c, k, "service '%s' is built in and cannot be "
                                                  "redefined (choose another name)", svc->name);
                        return fail(c, k, "service '%s' is defined twice (first at line %d)",
                                    svc->name, cfg->services[j].pos.line);
                }
                svc->pos = (struct pc_srcpos){ c->file, k->line, k->col };
                r = want_map(c, v, svc->name);
                if (r < 0)
                        return r;
                snprintf(what, sizeof(what), "service '%s'", svc->name);
                r = check_keys(c, v, what, service_keys, PC_ARRAY_SIZE(service_keys));
                if (r < 0)
                        return r;
                svc->direction = DEFAULT_SERVICE_DIRECTION;
                if ((x = map_get(v, "description")) != NULL &&
                    (r = get_string(c, x, "description", svc->description,
                                    sizeof(svc->description))) < 0)
                        return r;
                if ((x = map_get(v, "ports")) != NULL &&
                    (r = get_ports(c, x, "ports", svc->ports, &svc->n_ports)) < 0)
                        return r;
                if ((x = map_get(v, "ip-protocols")) != NULL &&
                    (r = get_ip_protos(c, x, "ip-protocols", svc->ip_protos,
                                       &svc->n_ip_protos)) < 0)
                        return r;
                if ((x = map_get(v, "direction")) != NULL &&
                    (r = get_dir(c, x, "direction", &svc->direction)) < 0)
                        return r;
                if (svc->n_ports == 0 && svc->n_ip_protos == 0)
                        return fail(c, k, "service '%s' has no 'ports' and no 'ip-protocols'",
                                    svc->name);
                cfg->n_services++;
        }
        return 0;
}

/* One entry of `rules:`, into p->rules[index]. */
static int load_rule(struct ctx *c, const struct node *n, struct pc_policy *p, size_t index)
{
        struct pc_rule *rule = &p->rules[index];
        const struct node *x, *svc_node, *dir_node;
        const struct pc_service *svc = NULL;
        char buf[64], known[512];
        int r;

        if (n->kind != NODE_MAP)
                return fail(c, n, "each rule must be a mapping with 'service' and 'action', "
                                  "not %s", show(n, buf, sizeof(buf)));
        r = check_keys(c, n, "rule", rule_keys, PC_ARRAY_SIZE(rule_keys));
        if (r < 0)
                return r;
        rule->index = (unsigned)index;
        rule->pos = (struct pc_srcpos){ c->file, n->line, n->col };

        svc_node = map_get(n, "service");
        if (svc_node == NULL)
                return fail(c, n, "rule is missing required key 'service'");
        r = want_scalar(c, svc_node, "service", "a service name");
        if (r < 0)
                return r;
        for (size_t i = 0; i < c->cfg->n_services; i++)
                if (strcmp(c->cfg->services[i].name, svc_node->text) == 0)
                        svc = &c->cfg->services[i];
        if (svc == NULL) {
                known_services(c->cfg, known, sizeof(known));
                return fail(c, svc_node, "unknown service %s in rule (known: %s)",
                            show(svc_node, buf, sizeof(buf)), known);
        }
        rule->service = svc;
        for (size_t i = 0; i < index; i++)
                if (p->rules[i].service == svc)
                        return fail(c, svc_node, "policy '%s' already has a rule for '%s' "
                                                 "(line %d)",
                                    p->name, svc->name, p->rules[i].pos.line);

        x = map_get(n, "action");
        if (x == NULL)
                return fail(c, n, "rule is missing required key 'action'");
        if (x->kind == NODE_SCALAR && strcmp(x->text, "block") == 0)
                rule->action = PC_ACTION_BLOCK;
        else if (x->kind == NODE_SCALAR && strcmp(x->text, "redirect") == 0)
                rule->action = PC_ACTION_REDIRECT;
        else
                return fail(c, x, "'action' must be block or redirect, not %s",
                            show(x, buf, sizeof(buf)));

        rule->direction = svc->direction;
        dir_node = map_get(n, "direction");
        if (dir_node != NULL && (r = get_dir(c, dir_node, "direction", &rule->direction)) < 0)
                return r;

        memcpy(rule->ports, svc->ports, sizeof(rule->ports));
        rule->n_ports = svc->n_ports;
        if ((x = map_get(n, "ports")) != NULL &&
            (r = get_ports(c, x, "ports", rule->ports, &rule->n_ports)) < 0)
                return r;

        rule->n_ip_protos = 0;
        if ((x = map_get(n, "ip-protocols")) != NULL) {
                r = get_ip_protos(c, x, "ip-protocols", rule->ip_protos, &rule->n_ip_protos);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < rule->n_ip_protos; i++) {
                        bool found = false;

                        for (size_t j = 0; j < svc->n_ip_protos; j++)
                                found = found || svc->ip_protos[j] == rule->ip_protos[i];
                        if (!found) {
                                size_t off = 0;

                                known[0] = '\0';
                                for (size_t j = 0; j < svc->n_ip_protos; j++) {
                                        const char *nm = pc_proto_name(svc->ip_protos[j]);

                                        off += (size_t)snprintf(known + off,
                                                                sizeof(known) - off, "%s%s",
                                                                j == 0 ? "" : ", ",
                                                                nm != NULL ? nm : "?");
                                }
                                return fail(c, x->kids[i], "ip-protocol '%s' is not selectable "
                                                           "for service '%s' (selectable: %s)",
                                            x->kids[i]->text, svc->name,
                                            svc->n_ip_protos == 0 ? "none" : known);
                        }
                }
        }

        rule->exemptable = rule->action == PC_ACTION_BLOCK;
        if ((x = map_get(n, "exemptable")) != NULL &&
            (r = get_bool(c, x, "exemptable", &rule->exemptable)) < 0)
                return r;
        rule->tos_event = DEFAULT_TOS_EVENT;
        if ((x = map_get(n, "tos-event")) != NULL &&
            (r = get_bool(c, x, "tos-event", &rule->tos_event)) < 0)
                return r;
        if ((x = map_get(n, "why")) != NULL &&
            (r = get_string(c, x, "why", rule->why, sizeof(rule->why))) < 0)
                return r;

        if (rule->n_ports == 0 && rule->n_ip_protos == 0)
                return fail(c, n, "rule for '%s' covers no ports and no ip-protocols",
                            svc->name);
        if (rule->action == PC_ACTION_REDIRECT) {
                if (rule->direction != PC_DIR_EGRESS)
                        return fail(c, dir_node != NULL ? dir_node : n,
                                    "redirect rule for '%s' must be egress only, not '%s'",
                                    svc->name, pc_dir_name(rule->direction));
                for (size_t i = 0; i < rule->n_ports; i++)
                        if (rule->ports[i].proto != PC_PROTO_TCP) {
                                pc_port_range_format(&rule->ports[i], buf, sizeof(buf));
                                return fail(c, n, "redirect rule for '%s' covers %s; only tcp "
                                                  "can be redirected (set 'ports')",
                                            svc->name, buf);
                        }
                if (rule->n_ip_protos > 0)
                        return fail(c, n, "redirect rule for '%s' covers ip-protocol '%s'; only "
                                          "tcp can be redirected",
                                    svc->name, pc_proto_name(rule->ip_protos[0]));
                if (!p->has_smtp_proxy)
                        return fail(c, n, "redirect rule for '%s' needs an 'smtp-proxy' in "
                                          "profile '%s'", svc->name, p->name);
        }
        return 0;
}

/* Fails if rules <a> (earlier) and <b> (at node <n>) cover a common flow. */
static int check_rule_pair(struct ctx *c, const struct node *n, const struct pc_rule *a,
                           const struct pc_rule *b)
{
        unsigned dir = a->direction & b->direction;
        char what[48];

        if (dir == 0)
                return 0;
        for (size_t i = 0; i < b->n_ports; i++)
                for (size_t j = 0; j < a->n_ports; j++)
                        if (ranges_overlap(&b->ports[i], &a->ports[j])) {
                                struct pc_port_range o = b->ports[i];

                                o.lo = o.lo > a->ports[j].lo ? o.lo : a->ports[j].lo;
                                o.hi = o.hi < a->ports[j].hi ? o.hi : a->ports[j].hi;
                                pc_port_range_format(&o, what, sizeof(what));
                                return fail(c, n, "rule for '%s' overlaps rule for '%s' "
                                                  "(line %d) on %s %s",
                                            b->service->name, a->service->name, a->pos.line,
                                            what, pc_dir_name(dir));
                        }
        for (size_t i = 0; i < b->n_ip_protos; i++)
                for (size_t j = 0; j < a->n_ip_protos; j++)
                        if (b->ip_protos[i] == a->ip_protos[j])
                                return fail(c, n, "rule for '%s' overlaps rule for '%s' "
                                                  "(line %d) on %s %s",
                                            b->service->name, a->service->name, a->pos.line,
                                            pc_proto_name(b->ip_protos[i]), pc_dir_name(dir));
        return 0;
}

/* `smtp-proxy:` of a profile: where portcullis-smtpd listens and what it
 * allows each VPS. */
static int load_smtp_proxy(struct ctx *c, const struct node *n, struct pc_policy *p)
{
        struct pc_smtp_proxy_limits *l = &p->smtp_limits;
        const struct node *x, *sec;
        char buf[64];
        int r;

        if ((r = want_map(c, n, "smtp-proxy")) < 0 ||
            (r = check_keys(c, n, "'smtp-proxy'", proxy_keys, PC_ARRAY_SIZE(proxy_keys))) < 0)
                return r;
        x = map_get(n, "listen");
        if (x == NULL)
                return fail(c, n, "'smtp-proxy' is missing required key 'listen'");
        r = get_listen(c, x, p->smtp_proxy_listen, sizeof(p->smtp_proxy_listen));
        if (r < 0)
                return r;
        if ((x = map_get(n, "tls")) != NULL) {
                r = get_bool(c, x, "tls", &p->smtp_proxy_tls);
                if (r < 0)
                        return r;
                /* the proxy has no TLS on the VPS's leg: refuse to claim it */
                if (p->smtp_proxy_tls) {
                        p->smtp_proxy_tls = false;
                        return fail(c, x, "'tls: true' is not supported: the SMTP proxy offers "
                                          "no TLS to the VPS (use port 587 or a relay for TLS)");
                }
        }
        if ((x = map_get(n, "upstream-tls")) != NULL) {
                if (x->kind == NODE_SCALAR && strcmp(x->text, "off") == 0)
                        l->upstream_tls = false;
                else if (x->kind == NODE_SCALAR && strcmp(x->text, "opportunistic") == 0)
                        l->upstream_tls = true;
                else
                        return fail(c, x, "'upstream-tls' must be off or opportunistic, not %s",
                                    show(x, buf, sizeof(buf)));
        }
        if ((x = map_get(n, "source")) != NULL) {
                if (x->kind == NODE_SCALAR && strcmp(x->text, "vps") == 0)
                        l->source = PC_SMTP_SOURCE_VPS;
                else if (x->kind == NODE_SCALAR && strcmp(x->text, "hypervisor") == 0)
                        l->source = PC_SMTP_SOURCE_HYPERVISOR;
                else
                        return fail(c, x, "'source' must be vps or hypervisor, not %s",
                                    show(x, buf, sizeof(buf)));
        }
        if ((sec = map_get(n, "limits")) != NULL) {
                if ((r = want_map(c, sec, "limits")) < 0 ||
                    (r = check_keys(c, sec, "'limits'", proxy_limits_keys,
                                    PC_ARRAY_SIZE(proxy_limits_keys))) < 0)
                        return r;
                if ((x = map_get(sec, "messages-per-hour")) != NULL &&
                    (r = get_uint(c, x, "messages-per-hour", 1, 10000000,
                                  &l->messages_per_hour)) < 0)
                        return r;
                if ((x = map_get(sec, "recipients-per-message")) != NULL &&
                    (r = get_uint(c, x, "recipients-per-message", 1, 100000,
                                  &l->recipients_per_message)) < 0)
                        return r;
                if ((x = map_get(sec, "recipients-per-hour")) != NULL &&
                    (r = get_uint(c, x, "recipients-per-hour", 1, 10000000,
                                  &l->recipients_per_hour)) < 0)
                        return r;
                if ((x = map_get(sec, "sessions-per-vps")) != NULL &&
                    (r = get_uint(c, x, "sessions-per-vps", 1, 100000,
                                  &l->sessions_per_vps)) < 0)
                        return r;
                if ((x = map_get(sec, "window")) != NULL &&
                    (r = get_duration_in(c, x, "window", SMTP_WINDOW_MIN, SMTP_WINDOW_MAX,
                                         &l->window)) < 0)
                        return r;
        }
        if ((sec = map_get(n, "timeouts")) != NULL) {
                if ((r = want_map(c, sec, "timeouts")) < 0 ||
                    (r = check_keys(c, sec, "'timeouts'", proxy_timeouts_keys,
                                    PC_ARRAY_SIZE(proxy_timeouts_keys))) < 0)
                        return r;
                if ((x = map_get(sec, "command")) != NULL &&
                    (r = get_duration_in(c, x, "command", SMTP_TIMEOUT_MIN, SMTP_TIMEOUT_MAX,
                                         &l->command_timeout)) < 0)
                        return r;
                if ((x = map_get(sec, "data")) != NULL &&
                    (r = get_duration_in(c, x, "data", SMTP_TIMEOUT_MIN, SMTP_TIMEOUT_MAX,
                                         &l->data_timeout)) < 0)
                        return r;
                if ((x = map_get(sec, "upstream")) != NULL &&
                    (r = get_duration_in(c, x, "upstream", SMTP_TIMEOUT_MIN, SMTP_TIMEOUT_MAX,
                                         &l->upstream_timeout)) < 0)
                        return r;
                if ((x = map_get(sec, "connect")) != NULL &&
                    (r = get_duration_in(c, x, "connect", SMTP_TIMEOUT_MIN, SMTP_TIMEOUT_MAX,
                                         &l->connect_timeout)) < 0)
                        return r;
                if ((x = map_get(sec, "client-write")) != NULL &&
                    (r = get_duration_in(c, x, "client-write", SMTP_TIMEOUT_MIN, SMTP_TIMEOUT_MAX,
                                         &l->client_write_timeout)) < 0)
                        return r;
                if ((x = map_get(sec, "lifetime")) != NULL &&
                    (r = get_duration_in(c, x, "lifetime", SMTP_TIMEOUT_MIN, SMTP_LIFETIME_MAX,
                                         &l->lifetime)) < 0)
                        return r;
        }
        p->has_smtp_proxy = true;
        return 0;
}

/* One profile file (tree <root>) into policy <p>. */
static int load_policy(struct ctx *c, const struct node *root, struct pc_policy *p)
{
        const struct node *x, *rules, *resp, *proxy;
        char buf[64];
        int r;

        r = check_keys(c, root, "profile", profile_keys, PC_ARRAY_SIZE(profile_keys));
        if (r < 0)
                return r;
        x = map_get(root, "profile");
        if (x == NULL)
                return fail(c, root, "profile is missing required key 'profile' (the policy's "
                                     "name)");
        r = get_name(c, x, "profile", p->name);
        if (r < 0)
                return r;
        p->pos = (struct pc_srcpos){ c->file, x->line, x->col };
        for (size_t i = 0; i < c->cfg->n_policies; i++)
                if (strcmp(c->cfg->policies[i].name, p->name) == 0)
                        return fail(c, x, "profile '%s' is already defined at %s:%d:%d",
                                    p->name, c->cfg->policies[i].pos.file,
                                    c->cfg->policies[i].pos.line, c->cfg->policies[i].pos.col);

        if ((x = map_get(root, "description")) != NULL &&
            (r = get_string(c, x, "description", p->description, sizeof(p->description))) < 0)
                return r;

        p->exceptions = DEFAULT_EXCEPTIONS;
        if ((x = map_get(root, "exceptions")) != NULL) {
                if (x->kind == NODE_SCALAR && strcmp(x->text, "ticket") == 0)
                        p->exceptions = PC_EXCEPTIONS_TICKET;
                else if (x->kind == NODE_SCALAR && strcmp(x->text, "none") == 0)
                        p->exceptions = PC_EXCEPTIONS_NONE;
                else
                        return fail(c, x, "'exceptions' must be ticket or none, not %s",
                                    show(x, buf, sizeof(buf)));
        }
        p->anti_spoofing = DEFAULT_ANTI_SPOOFING;
        if ((x = map_get(root, "anti-spoofing")) != NULL &&
            (r = get_bool(c, x, "anti-spoofing", &p->anti_spoofing)) < 0)
                return r;

        for (size_t k = 0; k < PC_ABUSE_KINDS; k++)
                p->responses[k] = DEFAULT_RESPONSE;
        if ((resp = map_get(root, "responses")) != NULL) {
                if ((r = want_map(c, resp, "responses")) < 0 ||
                    (r = check_keys(c, resp, "'responses'", responses_keys,
                                    PC_ARRAY_SIZE(responses_keys))) < 0)
                        return r;
                for (size_t k = 0; k < PC_ABUSE_KINDS; k++)
                        if ((x = map_get(resp, responses_keys[k])) != NULL &&
                            (r = get_responses(c, x, responses_keys[k], &p->responses[k])) < 0)
                                return r;
        }

        p->smtp_proxy_tls = DEFAULT_SMTP_PROXY_TLS;
        p->smtp_limits = default_smtp_limits;
        if ((proxy = map_get(root, "smtp-proxy")) != NULL &&
            (r = load_smtp_proxy(c, proxy, p)) < 0)
                return r;

        rules = map_get(root, "rules");
        if (rules != NULL) {
                r = want_seq(c, rules, "rules");
                if (r < 0)
                        return r;
                if (rules->n_kids > PC_RULES_MAX)
                        return fail(c, rules, "'rules' has %zu rules, at most %d are allowed",
                                    rules->n_kids, PC_RULES_MAX);
                for (size_t i = 0; i < rules->n_kids; i++) {
                        r = load_rule(c, rules->kids[i], p, i);
                        if (r < 0)
                                return r;
                        p->n_rules = i + 1;
                        for (size_t j = 0; j < i; j++) {
                                r = check_rule_pair(c, rules->kids[i], &p->rules[j],
                                                    &p->rules[i]);
                                if (r < 0)
                                        return r;
                        }
                }
        }
        return 0;
}

/* `profiles:` — each file defines one policy. */
static int load_profiles(struct ctx *c, const struct node *n, const char *base_dir)
{
        struct pc_config *cfg = c->cfg;
        const char *main_file = c->file;
        int r;

        r = want_seq(c, n, "profiles");
        if (r < 0)
                return r;
        if (n->n_kids > PROFILES_MAX)
                return fail(c, n, "'profiles' lists %zu files, at most %d are allowed",
                            n->n_kids, PROFILES_MAX);
        cfg->policies = calloc(n->n_kids > 0 ? n->n_kids : 1, sizeof(*cfg->policies));
        if (cfg->policies == NULL)
                return -ENOMEM;

        for (size_t i = 0; i < n->n_kids; i++) {
                const struct node *item = n->kids[i];
                struct node *root = NULL;
                _cleanup_free_ char *path = NULL;
                _cleanup_free_ char *text = NULL;
                const char *stored;
                size_t len;

                c->file = main_file;
                r = want_scalar(c, item, "profiles", "a list of file names");
                if (r < 0)
                        return r;
                if (item->text[0] == '/' || base_dir == NULL)
                        path = strdup(item->text);
                else if (asprintf(&path, "%s/%s", base_dir, item->text) < 0)
                        path = NULL;
                if (path == NULL)
                        return -ENOMEM;
                r = read_file(path, &text, &len);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return fail(c, item, "cannot read profile '%s': %s", path,
                                    r == -EFBIG ? "larger than 1 MiB" :
                                    r == -EINVAL ? "not a regular file" : strerror(-r));
                r = add_file(cfg, path, &stored);
                if (r < 0)
                        return r;
                c->file = stored;
                r = tree_parse(c, text, len, &root);
                if (r < 0)
                        return r;
                r = load_policy(c, root, &cfg->policies[cfg->n_policies]);
                node_free(root);
                if (r < 0)
                        return r;
                cfg->n_policies++;
        }
        c->file = main_file;
        return 0;
}

/* `sites:` — name -> {policy, description}. */
static int load_sites(struct ctx *c, const struct node *n)
{
        struct pc_config *cfg = c->cfg;
        int r = want_map(c, n, "sites");

        if (r < 0)
                return r;
        if (n->n_kids / 2 > SITES_MAX)
                return fail(c, n, "'sites' defines %zu sites, at most %d are allowed",
                            n->n_kids / 2, SITES_MAX);
        cfg->sites = calloc(n->n_kids / 2 + 1, sizeof(*cfg->sites));
        if (cfg->sites == NULL)
                return -ENOMEM;
        for (size_t i = 0; i + 1 < n->n_kids; i += 2) {
                const struct node *k = n->kids[i], *v = n->kids[i + 1], *x;
                struct pc_site *site = &cfg->sites[cfg->n_sites];
                char what[96], buf[64], known[512];

                r = get_name(c, k, "site", site->name);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < cfg->n_sites; j++)
                        if (strcmp(cfg->sites[j].name, site->name) == 0)
                                return fail(c, k, "site '%s' is defined twice (first at line %d)",
                                            site->name, cfg->sites[j].pos.line);
                site->pos = (struct pc_srcpos){ c->file, k->line, k->col };
                r = want_map(c, v, site->name);
                if (r < 0)
                        return r;
                snprintf(what, sizeof(what), "site '%s'", site->name);
                r = check_keys(c, v, what, site_keys, PC_ARRAY_SIZE(site_keys));
                if (r < 0)
                        return r;
                x = map_get(v, "policy");
                if (x == NULL)
                        return fail(c, v, "site '%s' is missing required key 'policy'",
                                    site->name);
                r = want_scalar(c, x, "policy", "a policy name");
                if (r < 0)
                        return r;
                for (size_t j = 0; j < cfg->n_policies; j++)
                        if (strcmp(cfg->policies[j].name, x->text) == 0)
                                site->policy = &cfg->policies[j];
                if (site->policy == NULL) {
                        known_policies(cfg, known, sizeof(known));
                        return fail(c, x, "unknown policy %s for site '%s' (known: %s)",
                                    show(x, buf, sizeof(buf)), site->name, known);
                }
                if ((x = map_get(v, "description")) != NULL &&
                    (r = get_string(c, x, "description", site->description,
                                    sizeof(site->description))) < 0)
                        return r;
                if ((x = map_get(v, "topology")) != NULL) {
                        if (x->kind != NODE_SCALAR ||
                            (strcmp(x->text, "routed") != 0 && strcmp(x->text, "bridged") != 0))
                                return fail(c, x, "'topology' must be routed or bridged, not %s",
                                            show(x, buf, sizeof(buf)));
                        site->topology = strcmp(x->text, "bridged") == 0 ? PC_TOPOLOGY_BRIDGED
                                                                          : PC_TOPOLOGY_ROUTED;
                        if (site->topology == PC_TOPOLOGY_BRIDGED && pc_policy_proxy_from_vps(site->policy))
                                return fail(c, x,
                                            "site '%s' is bridged, and policy '%s' has its SMTP proxy connect from "
                                            "the VPS's address (smtp-proxy source: vps), which a bridged site "
                                            "cannot enforce yet: the MX's replies to that address are bridged to "
                                            "the VPS, never to the proxy (use smtp-proxy source: hypervisor)",
                                            site->name, site->policy->name);
                }
                cfg->n_sites++;
        }
        return 0;
}

static int load_default_site(struct ctx *c, const struct node *n)
{
        char buf[64], known[512];
        int r = want_scalar(c, n, "default-site", "a site name");

        if (r < 0)
                return r;
        c->cfg->default_site = pc_config_site(c->cfg, n->text);
        if (c->cfg->default_site == NULL) {
                known_sites(c->cfg, known, sizeof(known));
                return fail(c, n, "unknown site %s in 'default-site' (known: %s)",
                            show(n, buf, sizeof(buf)), known);
        }
        return 0;
}

static int load_detectors(struct ctx *c, const struct node *n)
{
        struct pc_detectors *d = &c->cfg->detectors;
        const struct node *sec, *x;
        int r;

        if ((r = want_map(c, n, "detectors")) < 0 ||
            (r = check_keys(c, n, "'detectors'", detectors_keys,
                            PC_ARRAY_SIZE(detectors_keys))) < 0)
                return r;
        if ((sec = map_get(n, "scan")) != NULL) {
                if ((r = want_map(c, sec, "scan")) < 0 ||
                    (r = check_keys(c, sec, "'scan'", scan_keys, PC_ARRAY_SIZE(scan_keys))) < 0)
                        return r;
                if ((x = map_get(sec, "enabled")) != NULL &&
                    (r = get_bool(c, x, "enabled", &d->scan_enabled)) < 0)
                        return r;
                if ((x = map_get(sec, "false-positive-rate")) != NULL &&
                    (r = get_fraction(c, x, "false-positive-rate", false,
                                      &d->scan_false_positive_rate)) < 0)
                        return r;
                if ((x = map_get(sec, "detection-rate")) != NULL &&
                    (r = get_fraction(c, x, "detection-rate", false,
                                      &d->scan_detection_rate)) < 0)
                        return r;
                if ((x = map_get(sec, "slow-window")) != NULL &&
                    (r = get_duration(c, x, "slow-window", &d->scan_slow_window)) < 0)
                        return r;
                if ((x = map_get(sec, "slow-threshold")) != NULL &&
                    (r = get_uint(c, x, "slow-threshold", 1, 1000000,
                                  &d->scan_slow_threshold)) < 0)
                        return r;
                if ((x = map_get(sec, "hold-after")) != NULL &&
                    (r = get_uint(c, x, "hold-after", 1, 1000, &d->scan_hold_after)) < 0)
                        return r;
                if ((x = map_get(sec, "hold-timeout")) != NULL &&
                    (r = get_duration_in(c, x, "hold-timeout", 1, 3600, &d->scan_hold_timeout)) < 0)
                        return r;
                if ((x = map_get(sec, "confirm-probes")) != NULL &&
                    (r = get_uint(c, x, "confirm-probes", 0, PC_SCAN_CONFIRM_MAX, &d->scan_confirm_probes)) < 0)
                        return r;
                if ((x = map_get(sec, "pending-timeout")) != NULL &&
                    (r = get_duration_in(c, x, "pending-timeout", 1, 60, &d->scan_pending_timeout)) < 0)
                        return r;
                if ((x = map_get(sec, "contact-memory")) != NULL &&
                    (r = get_duration_in(c, x, "contact-memory", 1, 86400, &d->scan_contact_memory)) < 0)
                        return r;
                if ((x = map_get(sec, "exclude")) != NULL &&
                    (r = get_prefixes(c, x, "exclude", d->scan_exclude, PC_SCAN_EXCLUDE_MAX, &d->n_scan_exclude)) < 0)
                        return r;
                if (d->scan_detection_rate <= d->scan_false_positive_rate) {
                        x = map_get(sec, "detection-rate");
                        return fail(c, x != NULL ? x : map_key(sec, "false-positive-rate"),
                                    "'detection-rate' must be greater than "
                                    "'false-positive-rate'");
                }
        }
        if ((sec = map_get(n, "spam")) != NULL) {
                if ((r = want_map(c, sec, "spam")) < 0 ||
                    (r = check_keys(c, sec, "'spam'", spam_keys, PC_ARRAY_SIZE(spam_keys))) < 0)
                        return r;
                if ((x = map_get(sec, "enabled")) != NULL &&
                    (r = get_bool(c, x, "enabled", &d->spam_enabled)) < 0)
                        return r;
                if ((x = map_get(sec, "messages-per-hour")) != NULL &&
                    (r = get_uint(c, x, "messages-per-hour", 1, 1000000,
                                  &d->spam_messages_per_hour)) < 0)
                        return r;
                if ((x = map_get(sec, "recipients-per-message")) != NULL &&
                    (r = get_uint(c, x, "recipients-per-message", 1, 100000,
                                  &d->spam_recipients_per_message)) < 0)
                        return r;
                if ((x = map_get(sec, "upstream-reject-ratio")) != NULL &&
                    (r = get_fraction(c, x, "upstream-reject-ratio", true,
                                      &d->spam_upstream_reject_ratio)) < 0)
                        return r;
                if ((x = map_get(sec, "domains-per-hour")) != NULL &&
                    (r = get_uint(c, x, "domains-per-hour", 1, 1000000, &d->spam_domains_per_hour)) < 0)
                        return r;
                if ((x = map_get(sec, "min-recipients")) != NULL &&
                    (r = get_uint(c, x, "min-recipients", 1, 1000000, &d->spam_min_recipients)) < 0)
                        return r;
                if ((x = map_get(sec, "limit-hits-per-hour")) != NULL &&
                    (r = get_uint(c, x, "limit-hits-per-hour", 1, 1000000, &d->spam_limit_hits_per_hour)) < 0)
                        return r;
        }
        if ((sec = map_get(n, "spoof")) != NULL) {
                if ((r = want_map(c, sec, "spoof")) < 0 ||
                    (r = check_keys(c, sec, "'spoof'", spoof_keys, PC_ARRAY_SIZE(spoof_keys))) < 0)
                        return r;
                if ((x = map_get(sec, "enabled")) != NULL &&
                    (r = get_bool(c, x, "enabled", &d->spoof_enabled)) < 0)
                        return r;
                if ((x = map_get(sec, "episode-gap")) != NULL &&
                    (r = get_duration(c, x, "episode-gap", &d->spoof_episode_gap)) < 0)
                        return r;
        }
        if ((sec = map_get(n, "flood")) != NULL) {
                if ((r = want_map(c, sec, "flood")) < 0 ||
                    (r = check_keys(c, sec, "'flood'", flood_keys, PC_ARRAY_SIZE(flood_keys))) < 0)
                        return r;
                if ((x = map_get(sec, "enabled")) != NULL && (r = get_bool(c, x, "enabled", &d->flood_enabled)) < 0)
                        return r;
                if ((x = map_get(sec, "packets-per-second")) != NULL &&
                    (r = get_uint(c, x, "packets-per-second", 100, 100000000, &d->flood_packets_per_second)) < 0)
                        return r;
                if ((x = map_get(sec, "megabits-per-second")) != NULL &&
                    (r = get_uint(c, x, "megabits-per-second", 1, 1000000, &d->flood_megabits_per_second)) < 0)
                        return r;
                if ((x = map_get(sec, "sample")) != NULL &&
                    (r = get_uint(c, x, "sample", 1, 1024, &d->flood_sample)) < 0)
                        return r;
        }
        if ((sec = map_get(n, "reflection")) != NULL) {
                if ((r = want_map(c, sec, "reflection")) < 0 ||
                    (r = check_keys(c, sec, "'reflection'", reflection_keys, PC_ARRAY_SIZE(reflection_keys))) < 0)
                        return r;
                if ((x = map_get(sec, "enabled")) != NULL &&
                    (r = get_bool(c, x, "enabled", &d->reflection_enabled)) < 0)
                        return r;
                if ((x = map_get(sec, "ports")) != NULL &&
                    (r = get_ports(c, x, "ports", d->reflection_ports, &d->n_reflection_ports)) < 0)
                        return r;
                for (size_t i = 0; i < d->n_reflection_ports; i++)
                        if (d->reflection_ports[i].proto != PC_PROTO_UDP)
                                return fail(c, x->kids[i], "'ports' of 'reflection' are UDP ports (udp/53): a "
                                                           "reflector answers datagrams from forged sources");
                if ((x = map_get(sec, "megabits-per-second")) != NULL &&
                    (r = get_uint(c, x, "megabits-per-second", 1, 1000000,
                                  &d->reflection_megabits_per_second)) < 0)
                        return r;
        }
        return 0;
}

static int load_escalation(struct ctx *c, const struct node *n)
{
        struct pc_escalation *e = &c->cfg->escalation;
        const struct node *x;
        int r;

        if ((r = want_map(c, n, "escalation")) < 0 ||
            (r = check_keys(c, n, "'escalation'", escalation_keys,
                            PC_ARRAY_SIZE(escalation_keys))) < 0)
                return r;
        if ((x = map_get(n, "memory")) != NULL &&
            (r = get_duration(c, x, "memory", &e->memory)) < 0)
                return r;
        if ((x = map_get(n, "steps")) != NULL) {
                r = want_seq(c, x, "steps");
                if (r < 0)
                        return r;
                if (x->n_kids < 1 || x->n_kids > PC_ESCALATION_STEPS_MAX)
                        return fail(c, x, "'steps' must have 1 to %d items, not %zu",
                                    PC_ESCALATION_STEPS_MAX, x->n_kids);
                for (size_t i = 0; i < x->n_kids; i++) {
                        const struct node *item = x->kids[i];
                        char buf[64];

                        if (i > 0 && e->steps[i - 1] == PC_ESCALATION_TERMINATE)
                                return fail(c, item, "'terminate' must be the last step");
                        if (i > 0 && e->steps[i - 1] == PC_ESCALATION_SUSPEND &&
                            !(item->kind == NODE_SCALAR && strcmp(item->text, "terminate") == 0))
                                return fail(c, item, "'suspend' must be the last step, or come just "
                                                     "before 'terminate'");
                        if (item->kind == NODE_SCALAR && strcmp(item->text, "suspend") == 0)
                                e->steps[i] = PC_ESCALATION_SUSPEND;
                        else if (item->kind == NODE_SCALAR && strcmp(item->text, "terminate") == 0)
                                e->steps[i] = PC_ESCALATION_TERMINATE;
                        else if (item->kind != NODE_SCALAR ||
                                 strlen(item->text) != item->len ||
                                 pc_parse_duration(item->text, &e->steps[i]) < 0 ||
                                 e->steps[i] <= 0)
                                return fail(c, item, "each of 'steps' must be a positive "
                                                     "duration such as 1h or the word 'suspend' "
                                                     "or 'terminate', not %s", show(item, buf, sizeof(buf)));
                }
                e->n_steps = x->n_kids;
        }
        return 0;
}

/* notifications.webhook: {url, secret-file, timeout}; the secret itself
 * stays in its file (read by the agent, never printed). */
static int load_webhook(struct ctx *c, const struct node *n)
{
        struct pc_notify_config *nc = &c->cfg->notify;
        const struct node *x;
        char buf[64];
        int r;

        if ((r = want_map(c, n, "webhook")) < 0 ||
            (r = check_keys(c, n, "'webhook'", webhook_keys, PC_ARRAY_SIZE(webhook_keys))) < 0)
                return r;
        if ((x = map_get(n, "url")) == NULL)
                return fail(c, n, "'webhook' needs a 'url'");
        r = get_string(c, x, "url", nc->webhook_url, sizeof(nc->webhook_url));
        if (r < 0)
                return r;
        if (!((strncmp(nc->webhook_url, "https://", 8) == 0 && nc->webhook_url[8] != '\0') ||
              (strncmp(nc->webhook_url, "http://", 7) == 0 && nc->webhook_url[7] != '\0')) ||
            strpbrk(nc->webhook_url, " \t") != NULL)
                return fail(c, x, "'url' must be an https:// or http:// URL, not %s", show(x, buf, sizeof(buf)));
        if ((x = map_get(n, "secret-file")) == NULL)
                return fail(c, n, "'webhook' needs a 'secret-file' (the HMAC key, in a file of its own)");
        r = get_string(c, x, "secret-file", nc->webhook_secret_file, sizeof(nc->webhook_secret_file));
        if (r < 0)
                return r;
        if (nc->webhook_secret_file[0] != '/')
                return fail(c, x, "'secret-file' must be an absolute path, not %s", show(x, buf, sizeof(buf)));
        if ((x = map_get(n, "timeout")) != NULL &&
            (r = get_duration_in(c, x, "timeout", 1, 300, &nc->webhook_timeout)) < 0)
                return r;
        return 0;
}

static int load_notifications(struct ctx *c, const struct node *n)
{
        struct pc_notify_config *nc = &c->cfg->notify;
        const struct node *x;
        char buf[64];
        int r;

        if ((r = want_map(c, n, "notifications")) < 0 ||
            (r = check_keys(c, n, "'notifications'", notify_keys,
                            PC_ARRAY_SIZE(notify_keys))) < 0)
                return r;
        if ((x = map_get(n, "relay")) != NULL) {
                r = get_string(c, x, "relay", nc->relay, sizeof(nc->relay));
                if (r < 0)
                        return r;
                if (!((strncmp(nc->relay, "smtp://", 7) == 0 && nc->relay[7] != '\0') ||
                      (strncmp(nc->relay, "smtps://", 8) == 0 && nc->relay[8] != '\0')) ||
                    strpbrk(nc->relay, " \t") != NULL)
                        return fail(c, x, "'relay' must be an smtp:// or smtps:// URL, not %s",
                                    show(x, buf, sizeof(buf)));
        }
        if ((x = map_get(n, "from")) != NULL) {
                char addr[256];

                r = get_string(c, x, "from", nc->from, sizeof(nc->from));
                if (r < 0)
                        return r;
                if (pc_mailbox_address(nc->from, addr, sizeof(addr)) < 0 || !pc_email_valid(addr))
                        return fail(c, x, "'from' must be an email address, optionally with a "
                                          "name (Name <noc@example.net>), not %s",
                                    show(x, buf, sizeof(buf)));
        }
        if ((x = map_get(n, "abuse-copy")) != NULL) {
                if (x->kind == NODE_SCALAR && x->len == 0 && !x->null)
                        nc->abuse_copy[0] = '\0'; /* "" : no copy */
                else {
                        r = get_string(c, x, "abuse-copy", nc->abuse_copy,
                                       sizeof(nc->abuse_copy));
                        if (r < 0)
                                return r;
                        if (!pc_email_valid(nc->abuse_copy))
                                return fail(c, x, "'abuse-copy' must be an email address, "
                                                  "not %s", show(x, buf, sizeof(buf)));
                }
        }
        if ((x = map_get(n, "default-language")) != NULL) {
                if (x->kind != NODE_SCALAR ||
                    (strcmp(x->text, "en") != 0 && strcmp(x->text, "it") != 0))
                        return fail(c, x, "'default-language' must be en or it, not %s",
                                    show(x, buf, sizeof(buf)));
                snprintf(nc->default_language, sizeof(nc->default_language), "%s", x->text);
        }
        if ((x = map_get(n, "max-attempts")) != NULL &&
            (r = get_uint(c, x, "max-attempts", 1, 100, &nc->max_attempts)) < 0)
                return r;
        if ((x = map_get(n, "templates")) != NULL) {
                char dir[sizeof(nc->templates)];

                r = get_string(c, x, "templates", dir, sizeof(dir));
                if (r < 0)
                        return r;
                if (dir[0] == '\0')
                        return fail(c, x, "'templates' must name a folder");
                snprintf(nc->templates, sizeof(nc->templates), "%s", dir);
        }
        if ((x = map_get(n, "starttls")) != NULL) {
                if (x->kind == NODE_SCALAR && strcmp(x->text, "opportunistic") == 0)
                        nc->starttls = PC_STARTTLS_OPPORTUNISTIC;
                else if (x->kind == NODE_SCALAR && strcmp(x->text, "required") == 0)
                        nc->starttls = PC_STARTTLS_REQUIRED;
                else if (x->kind == NODE_SCALAR && strcmp(x->text, "off") == 0)
                        nc->starttls = PC_STARTTLS_OFF;
                else
                        return fail(c, x, "'starttls' must be opportunistic, required or off, not %s",
                                    show(x, buf, sizeof(buf)));
        }
        if ((x = map_get(n, "tls-verify")) != NULL && (r = get_bool(c, x, "tls-verify", &nc->tls_verify)) < 0)
                return r;
        if ((x = map_get(n, "username")) != NULL &&
            (r = get_string(c, x, "username", nc->username, sizeof(nc->username))) < 0)
                return r;
        if ((x = map_get(n, "password-file")) != NULL) {
                r = get_string(c, x, "password-file", nc->password_file, sizeof(nc->password_file));
                if (r < 0)
                        return r;
                if (nc->password_file[0] != '/')
                        return fail(c, x, "'password-file' must be an absolute path, not %s",
                                    show(x, buf, sizeof(buf)));
        }
        if ((nc->username[0] != '\0') != (nc->password_file[0] != '\0'))
                return fail(c, n, "'username' and 'password-file' go together (AUTH needs both)");
        if ((x = map_get(n, "timeout")) != NULL &&
            (r = get_duration_in(c, x, "timeout", 1, 300, &nc->timeout)) < 0)
                return r;
        if ((x = map_get(n, "retry-base")) != NULL &&
            (r = get_duration_in(c, x, "retry-base", 1, 3600, &nc->retry_base)) < 0)
                return r;
        if ((x = map_get(n, "notice-gap")) != NULL &&
            (r = get_duration_in(c, x, "notice-gap", 1, 7 * 86400, &nc->notice_gap)) < 0)
                return r;
        if ((x = map_get(n, "webhook")) != NULL && (r = load_webhook(c, x)) < 0)
                return r;
        return 0;
}

static int load_agent(struct ctx *c, const struct node *n)
{
        struct pc_agent_config *ac = &c->cfg->agent;
        const struct node *x;
        char buf[64];
        int r;

        if ((r = want_map(c, n, "agent")) < 0 ||
            (r = check_keys(c, n, "'agent'", agent_keys, PC_ARRAY_SIZE(agent_keys))) < 0)
                return r;
        if ((x = map_get(n, "control-socket")) != NULL) {
                r = get_string(c, x, "control-socket", ac->control_socket, sizeof(ac->control_socket));
                if (r < 0)
                        return r;
                if (ac->control_socket[0] != '/')
                        return fail(c, x, "'control-socket' must be an absolute path, not %s",
                                    show(x, buf, sizeof(buf)));
        }
        if ((x = map_get(n, "nft-table")) != NULL) {
                r = get_string(c, x, "nft-table", ac->nft_table, sizeof(ac->nft_table));
                if (r < 0)
                        return r;
                /* nftables identifiers: a letter, then letters, digits, '_'. */
                for (const char *p = ac->nft_table; *p != '\0'; p++)
                        if (!((*p >= 'a' && *p <= 'z') || *p == '_' ||
                              (p != ac->nft_table && *p >= '0' && *p <= '9')))
                                return fail(c, x, "'nft-table' must be a lower-case letter then "
                                                  "letters, digits or '_', not %s",
                                            show(x, buf, sizeof(buf)));
                if (ac->nft_table[0] == '\0')
                        return fail(c, x, "'nft-table' must not be empty");
        }
        if ((x = map_get(n, "attempts-interval")) != NULL &&
            (r = get_duration(c, x, "attempts-interval", &ac->attempts_interval)) < 0)
                return r;
        if ((x = map_get(n, "host")) != NULL) {
                r = get_string(c, x, "host", ac->host, sizeof(ac->host));
                if (r < 0)
                        return r;
                if (!pc_name_valid(ac->host))
                        return fail(c, x, "'host' must be 1-63 of a-z 0-9 . _ - starting with a letter or digit, "
                                          "not %s",
                                    show(x, buf, sizeof(buf)));
        }
        if ((x = map_get(n, "snapshot")) != NULL) {
                r = get_string(c, x, "snapshot", ac->snapshot, sizeof(ac->snapshot));
                if (r < 0)
                        return r;
                /* a temporary file beside it takes 4 more bytes */
                if ((ac->snapshot[0] != '/' && strcmp(ac->snapshot, "none") != 0) ||
                    strlen(ac->snapshot) + 4 >= sizeof(ac->snapshot))
                        return fail(c, x, "'snapshot' must be an absolute path of at most %zu bytes, or none, not %s",
                                    sizeof(ac->snapshot) - 5, show(x, buf, sizeof(buf)));
        }
        /* 2^24: 32 MiB of buckets per set, far past any hypervisor */
        if ((x = map_get(n, "max-vps")) != NULL &&
            (r = get_uint(c, x, "max-vps", 1, 1u << 24, &ac->max_vps)) < 0)
                return r;
        return 0;
}

static int load_smtpd(struct ctx *c, const struct node *n)
{
        struct pc_smtpd_config *sc = &c->cfg->smtpd;
        const struct node *x;
        char buf[64];
        int r;

        if ((r = want_map(c, n, "smtpd")) < 0 ||
            (r = check_keys(c, n, "'smtpd'", smtpd_keys, PC_ARRAY_SIZE(smtpd_keys))) < 0)
                return r;
        if ((x = map_get(n, "control-socket")) != NULL) {
                r = get_string(c, x, "control-socket", sc->control_socket,
                               sizeof(sc->control_socket));
                if (r < 0)
                        return r;
                if (sc->control_socket[0] != '/')
                        return fail(c, x, "'control-socket' must be an absolute path, not %s",
                                    show(x, buf, sizeof(buf)));
        }
        if ((x = map_get(n, "max-sessions")) != NULL &&
            (r = get_uint(c, x, "max-sessions", 1, 1000000, &sc->max_sessions)) < 0)
                return r;
        if ((x = map_get(n, "user")) != NULL) {
                r = get_string(c, x, "user", sc->user, sizeof(sc->user));
                if (r < 0)
                        return r;
                /* [a-z_][a-z0-9_-]*: what useradd accepts by default, less the '$' */
                for (const char *p = sc->user; *p != '\0'; p++)
                        if (!((*p >= 'a' && *p <= 'z') || *p == '_' ||
                              (p != sc->user && ((*p >= '0' && *p <= '9') || *p == '-'))))
                                return fail(c, x, "'user' must be a user name: a lower-case "
                                                  "letter or '_', then lower-case letters, "
                                                  "digits, '_' or '-', not %s",
                                            show(x, buf, sizeof(buf)));
                if (sc->user[0] == '\0')
                        return fail(c, x, "'user' must not be empty");
        }
        if ((x = map_get(n, "internal-prefixes")) != NULL &&
            (r = get_prefixes(c, x, "internal-prefixes", sc->internal, PC_SMTPD_INTERNAL_MAX,
                              &sc->n_internal)) < 0)
                return r;
        return 0;
}

static int load_database(struct ctx *c, const struct node *n)
{
        char *db = c->cfg->database;
        char buf[64];
        int r = get_string(c, n, "database", db, sizeof(c->cfg->database));

        if (r < 0)
                return r;
        if (!((strncmp(db, "sqlite:", 7) == 0 && db[7] != '\0') ||
              (strncmp(db, "postgresql://", 13) == 0 && db[13] != '\0') ||
              (strncmp(db, "postgres://", 11) == 0 && db[11] != '\0')))
                return fail(c, n, "'database' must be sqlite:PATH or postgresql://..., not %s",
                            show(n, buf, sizeof(buf)));
        return 0;
}

/* Makes a relative sqlite:PATH relative to the main file's folder
 * <base_dir> (made absolute, so that a program that changes its working
 * directory still finds it), as profiles and templates are.  Without a
 * folder (a config from memory) it stays relative to the working directory. */
static int resolve_database(struct ctx *c, const struct node *root, const char *base_dir)
{
        char *db = c->cfg->database;
        _cleanup_free_ char *dir = NULL;
        char buf[sizeof(c->cfg->database)];

        if (strncmp(db, "sqlite:", 7) != 0 || db[7] == '/' || base_dir == NULL)
                return 0;
        dir = realpath(base_dir, NULL);
        if (snprintf(buf, sizeof(buf), "sqlite:%s%s%s", dir != NULL ? dir : base_dir,
                     strcmp(dir != NULL ? dir : base_dir, "/") == 0 ? "" : "/",
                     db + 7) >= (int)sizeof(buf))
                return fail(c, map_get(root, "database"),
                            "'database' is too long once made relative to %s", base_dir);
        snprintf(db, sizeof(c->cfg->database), "%s", buf);
        return 0;
}

/* The main file: its sections in dependency order. */
static int load_main(struct ctx *c, const char *text, size_t len, const char *base_dir)
{
        struct node *root = NULL;
        const struct node *x;
        int r;

        r = tree_parse(c, text, len, &root);
        if (r < 0)
                return r;
        r = check_keys(c, root, "the main file", main_keys, PC_ARRAY_SIZE(main_keys));
        if (r < 0)
                goto out;
        if ((x = map_get(root, "database")) != NULL && (r = load_database(c, x)) < 0)
                goto out;
        if ((r = load_services(c, map_get(root, "services"))) < 0)
                goto out;
        if ((x = map_get(root, "profiles")) != NULL && (r = load_profiles(c, x, base_dir)) < 0)
                goto out;
        if ((x = map_get(root, "sites")) != NULL && (r = load_sites(c, x)) < 0)
                goto out;
        if ((x = map_get(root, "default-site")) != NULL && (r = load_default_site(c, x)) < 0)
                goto out;
        if ((x = map_get(root, "detectors")) != NULL && (r = load_detectors(c, x)) < 0)
                goto out;
        if ((x = map_get(root, "escalation")) != NULL && (r = load_escalation(c, x)) < 0)
                goto out;
        if ((x = map_get(root, "notifications")) != NULL && (r = load_notifications(c, x)) < 0)
                goto out;
        if ((x = map_get(root, "agent")) != NULL && (r = load_agent(c, x)) < 0)
                goto out;
        if ((x = map_get(root, "smtpd")) != NULL && (r = load_smtpd(c, x)) < 0)
                goto out;
        if ((r = resolve_database(c, root, base_dir)) < 0)
                goto out;
        /* Templates are relative to the main file's folder, like profiles. */
        if (c->cfg->notify.templates[0] != '/' && base_dir != NULL) {
                char dir[sizeof(c->cfg->notify.templates)];

                if (snprintf(dir, sizeof(dir), "%s/%s", base_dir, c->cfg->notify.templates) >= (int)sizeof(dir)) {
                        r = fail(c, root, "'templates' path is too long");
                        goto out;
                }
                snprintf(c->cfg->notify.templates, sizeof(c->cfg->notify.templates), "%s", dir);
        }
        r = 0;
out:
        node_free(root);
        return r;
}

/* Builds a config from the main file <name> with contents <text>. */
static int load(const char *name, const char *text, size_t len, const char *base_dir,
                struct pc_config **ret, char *err, size_t errsz)
{
        struct pc_config *cfg;
        struct ctx c = { .err = err, .errsz = errsz };
        char dummy[1];
        int r;

        if (err == NULL || errsz == 0) {
                c.err = dummy;
                c.errsz = sizeof(dummy);
        }
        cfg = calloc(1, sizeof(*cfg));
        if (cfg == NULL) {
                r = -ENOMEM;
                goto out;
        }
        c.cfg = cfg;
        cfg->path = strdup(name);
        if (cfg->path == NULL) {
                r = -ENOMEM;
                goto out;
        }
        r = add_file(cfg, name, &c.file);
        if (r < 0)
                goto out;
        snprintf(cfg->database, sizeof(cfg->database), "%s", DEFAULT_DATABASE);
        cfg->detectors = default_detectors;
        cfg->escalation = default_escalation;
        cfg->notify = default_notify;
        cfg->agent = default_agent;
        cfg->smtpd = default_smtpd;

        r = load_main(&c, text, len, base_dir);
        if (r < 0)
                goto out;
        for (size_t i = 0; i < cfg->n_policies; i++) {
                r = pc_policy_compile(&cfg->policies[i]);
                if (r < 0)
                        goto out;
        }
        *ret = cfg;
        cfg = NULL;
        r = 0;
out:
        if (r == -ENOMEM)
                snprintf(c.err, c.errsz, "%s: out of memory", name);
        pc_config_free(cfg);
        return r;
}

/* Loads the file <path> and the profiles it names (relative to its folder). */
int pc_config_load(const char *path, struct pc_config **ret, char *err, size_t errsz)
{
        _cleanup_free_ char *text = NULL;
        _cleanup_free_ char *dir = NULL;
        const char *slash;
        size_t len;
        int r;

        if (path == NULL || ret == NULL)
                return -EINVAL;
        r = read_file(path, &text, &len);
        if (r < 0) {
                if (err != NULL && errsz > 0)
                        snprintf(err, errsz, "%s: cannot read: %s", path,
                                 r == -EFBIG ? "larger than 1 MiB" :
                                 r == -EINVAL ? "not a regular file" : strerror(-r));
                return r;
        }
        slash = strrchr(path, '/');
        if (slash == path)
                dir = strdup("/");
        else if (slash != NULL)
                dir = strndup(path, (size_t)(slash - path));
        if (slash != NULL && dir == NULL)
                return -ENOMEM;
        return load(path, text, len, dir, ret, err, errsz);
}

/* Loads a main file from memory; profiles are relative to the current directory. */
int pc_config_load_string(const char *name, const char *text, size_t len,
                          struct pc_config **ret, char *err, size_t errsz)
{
        if (name == NULL || (text == NULL && len > 0) || ret == NULL)
                return -EINVAL;
        return load(name, text != NULL ? text : "", len, NULL, ret, err, errsz);
}

/* Frees <cfg>, its policies' tables and its file names. */
struct pc_config *pc_config_free(struct pc_config *cfg)
{
        if (cfg == NULL)
                return NULL;
        for (size_t i = 0; cfg->policies != NULL && i < cfg->n_policies; i++)
                free(cfg->policies[i].table);
        /* a policy that failed mid-load has no table; n_policies excludes it */
        free(cfg->policies);
        free(cfg->sites);
        free(cfg->services);
        for (size_t i = 0; i < cfg->n_files; i++)
                free(cfg->files[i]);
        free(cfg->files);
        free(cfg->path);
        free(cfg);
        return NULL;
}

/* Returns the service <name> of <cfg>, or NULL. */
const struct pc_service *pc_config_service(const struct pc_config *cfg, const char *name)
{
        if (cfg == NULL || name == NULL)
                return NULL;
        for (size_t i = 0; i < cfg->n_services; i++)
                if (strcmp(cfg->services[i].name, name) == 0)
                        return &cfg->services[i];
        return NULL;
}

/* Returns the policy <name> of <cfg>, or NULL. */
const struct pc_policy *pc_config_policy(const struct pc_config *cfg, const char *name)
{
        if (cfg == NULL || name == NULL)
                return NULL;
        for (size_t i = 0; i < cfg->n_policies; i++)
                if (strcmp(cfg->policies[i].name, name) == 0)
                        return &cfg->policies[i];
        return NULL;
}

/* Returns the site <name> of <cfg>, or NULL. */
const struct pc_site *pc_config_site(const struct pc_config *cfg, const char *name)
{
        if (cfg == NULL || name == NULL)
                return NULL;
        for (size_t i = 0; i < cfg->n_sites; i++)
                if (strcmp(cfg->sites[i].name, name) == 0)
                        return &cfg->sites[i];
        return NULL;
}

bool pc_policy_proxy_from_vps(const struct pc_policy *p)
{
        for (size_t r = 0; p->has_smtp_proxy && p->smtp_limits.source == PC_SMTP_SOURCE_VPS && r < p->n_rules; r++)
                if (p->rules[r].action == PC_ACTION_REDIRECT)
                        return true;
        return false;
}

bool pc_config_has_bridged(const struct pc_config *cfg)
{
        for (size_t i = 0; i < cfg->n_sites; i++)
                if (cfg->sites[i].topology == PC_TOPOLOGY_BRIDGED)
                        return true;
        return false;
}

/* Returns the rule of <policy> for the service <service>, or NULL. */
bool pc_rule_exemptable(const struct pc_policy *policy, const struct pc_rule *rule)
{
        return rule->exemptable && policy->exceptions != PC_EXCEPTIONS_NONE;
}

const struct pc_rule *pc_policy_rule_for(const struct pc_policy *policy, const char *service)
{
        if (policy == NULL || service == NULL)
                return NULL;
        for (size_t i = 0; i < policy->n_rules; i++)
                if (policy->rules[i].service != NULL &&
                    strcmp(policy->rules[i].service->name, service) == 0)
                        return &policy->rules[i];
        return NULL;
}

const char *pc_abuse_key(enum pc_abuse k)
{
        return (unsigned)k < PC_ABUSE_KINDS ? responses_keys[k] : NULL;
}

const char *pc_abuse_incident(enum pc_abuse k)
{
        return (unsigned)k < PC_ABUSE_KINDS ? abuse_incidents[k] : NULL;
}

int pc_abuse_from_incident(const char *kind, enum pc_abuse *ret)
{
        for (size_t k = 0; k < PC_ABUSE_KINDS; k++)
                if (strcmp(kind, abuse_incidents[k]) == 0) {
                        *ret = (enum pc_abuse)k;
                        return 0;
                }
        return -ENOENT;
}

bool pc_scan_excluded(const struct pc_config *cfg, int family, const uint8_t *addr)
{
        struct pc_prefix host = { .family = family, .len = family == AF_INET ? 32 : 128 };

        memcpy(host.bytes, addr, family == AF_INET ? 4 : 16);
        for (size_t i = 0; i < cfg->detectors.n_scan_exclude; i++)
                if (pc_prefix_overlaps(&cfg->detectors.scan_exclude[i], &host))
                        return true;
        return false;
}

bool pc_policy_contains_scans(const struct pc_config *cfg, const struct pc_policy *p)
{
        unsigned acting = PC_RESP_OUTBOUND_FILTER | PC_RESP_INBOUND_FILTER | PC_RESP_SUSPEND;

        return cfg->detectors.scan_enabled && (p->responses[PC_ABUSE_SCANNING] & acting) != 0;
}
