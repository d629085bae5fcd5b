/* The SMTP relay state machine (see relay.h for its contract). */
#include "smtp/relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"

/* What the client's bytes are: command lines, DATA, a BDAT chunk to relay
 * or one to drop (refused locally). */
enum { MODE_COMMANDS, MODE_DATA, MODE_BDAT, MODE_BDAT_DROP };

/* Refused locally this often in one session, a client is cut off, as an
 * MTA does (Postfix's smtpd_hard_error_limit is 20). */
#define LOCAL_ERRORS_MAX 20

static void push(struct smtp_relay *r, enum smtp_stage stage, uint32_t arg);
static void pop(struct smtp_relay *r);
static void flush_locals(struct smtp_relay *r);
static void reply_local(struct smtp_relay *r, const char *line);
static void protocol_error(struct smtp_relay *r, const char *why);
static void txn_end(struct smtp_relay *r, struct smtp_txn *t);
static size_t client_data(struct smtp_relay *r, const char *buf, size_t len);
static int client_line(struct smtp_relay *r, const char *line, size_t len);
static void upstream_line(struct smtp_relay *r, const char *line, size_t len);
static void reply_done(struct smtp_relay *r, enum smtp_stage stage, uint32_t arg, const char *line,
                       size_t len);

/* The pending entry awaiting the end of the message owns <fin>. */
#define ARG_OWNS_FIN 1u

void smtp_relay_init(struct smtp_relay *r, const struct smtp_relay_ops *ops, void *ctx)
{
        memset(r, 0, sizeof(*r));
        r->ops = ops;
        r->ctx = ctx;
        push(r, SMTP_STAGE_GREETING, 0);
}

void smtp_relay_release(struct smtp_relay *r)
{
        if (r->fin.active)
                txn_end(r, &r->fin);
        if (r->txn.active)
                txn_end(r, &r->txn);
        strbuf_free(&r->reply);
        strbuf_free(&r->ehlo);
        strbuf_free(&r->ehlo_cmd);
        strbuf_free(&r->locals);
}

bool smtp_relay_waiting(const struct smtp_relay *r)
{
        return r->hold || r->qlen >= SMTP_PENDING_MAX - 1;
}

bool smtp_relay_in_data(const struct smtp_relay *r)
{
        return r->mode != MODE_COMMANDS;
}

uint32_t smtp_domain_hash(const char *domain, size_t len)
{
        uint32_t h = 2166136261u;

        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)domain[i];

                if (c >= 'A' && c <= 'Z')
                        c += 'a' - 'A';
                h = (h ^ c) * 16777619u;
        }
        return h;
}

static void to_client(struct smtp_relay *r, const char *buf, size_t len)
{
        r->ops->to_client(r->ctx, buf, len);
}

static void to_upstream(struct smtp_relay *r, const char *buf, size_t len)
{
        r->ops->to_upstream(r->ctx, buf, len);
}

/* Queues a reply to await; the caller made sure there is room. */
static void push(struct smtp_relay *r, enum smtp_stage stage, uint32_t arg)
{
        unsigned i = (r->qhead + r->qlen) % SMTP_PENDING_MAX;

        r->q[i] = (uint8_t)stage;
        r->qarg[i] = arg;
        r->qlen++;
}

static void pop(struct smtp_relay *r)
{
        r->qhead = (r->qhead + 1) % SMTP_PENDING_MAX;
        r->qlen--;
        if (r->fin_pending > 0)
                r->fin_pending--;
}

/* Writes the local replies that have reached the head of the queue. */
static void flush_locals(struct smtp_relay *r)
{
        while (r->qlen > 0 && r->q[r->qhead] == SMTP_STAGE_LOCAL) {
                const char *s = r->locals.s + r->locals_off;
                const char *eol = strstr(s, "\r\n");
                size_t n = (size_t)(eol - s) + 2;

                to_client(r, s, n);
                r->locals_off += n;
                pop(r);
        }
        if (r->locals.s != NULL && r->locals_off == r->locals.len) {
                /* Idle sessions keep no buffers. */
                strbuf_free(&r->locals);
                r->locals_off = 0;
        }
}

/* Answers the current client command locally, in pipeline order. */
static void reply_local(struct smtp_relay *r, const char *line)
{
        strbuf_printf(&r->locals, "%s\r\n", line);
        if (r->locals.oom) {
                protocol_error(r, "421 4.3.0 Out of memory");
                return;
        }
        push(r, SMTP_STAGE_LOCAL, 0);
        flush_locals(r);
        if (line[0] == '5' && ++r->local_errors >= LOCAL_ERRORS_MAX)
                smtp_relay_abort(r, "421 4.7.0 Too many errors, closing the connection");
}

void smtp_relay_abort(struct smtp_relay *r, const char *line)
{
        if (r->closing)
                return;
        to_client(r, line, strlen(line));
        to_client(r, "\r\n", 2);
        r->closing = true;
}

static void protocol_error(struct smtp_relay *r, const char *line)
{
        r->failed = true;
        smtp_relay_abort(r, line);
}

void smtp_relay_upstream_gone(struct smtp_relay *r, const char *why)
{
        char line[160];

        if (r->closing)
                return;
        flush_locals(r);
        if (r->quit_sent && r->qlen > 0 && r->q[r->qhead] == SMTP_STAGE_QUIT) {
                /* The server hung up on QUIT without a reply: harmless. */
                to_client(r, "221 2.0.0 Bye\r\n", 15);
                r->closing = true;
                return;
        }
        snprintf(line, sizeof(line), "421 4.4.2 The receiving mail server %s; try again later", why);
        smtp_relay_abort(r, line);
}

/* Reports the end of transaction <t> and clears it. */
static void txn_end(struct smtp_relay *r, struct smtp_txn *t)
{
        if (t->active && r->ops->message != NULL)
                r->ops->message(r->ctx, t);
        t->active = false;
}

/* A new transaction: keeps the HELO name, clears the rest. */
static void txn_begin(struct smtp_txn *t)
{
        char helo[sizeof(t->helo)];

        memcpy(helo, t->helo, sizeof(helo));
        memset(t, 0, sizeof(*t));
        memcpy(t->helo, helo, sizeof(helo));
        t->active = true;
}

/* ---- client side ---- */

size_t smtp_relay_client(struct smtp_relay *r, const char *buf, size_t len)
{
        size_t used = 0;

        while (used < len && !r->closing) {
                const char *p = buf + used;
                size_t left = len - used;
                const char *nl;

                if (r->quit_sent)
                        return len; /* nothing after QUIT is read */
                if (r->mode == MODE_DATA) {
                        used += client_data(r, p, left);
                        continue;
                }
                if (r->mode == MODE_BDAT || r->mode == MODE_BDAT_DROP) {
                        size_t n = left < r->bdat_left ? left : (size_t)r->bdat_left;

                        if (r->mode == MODE_BDAT)
                                to_upstream(r, p, n);
                        r->bdat_left -= n;
                        used += n;
                        if (r->bdat_left == 0)
                                r->mode = MODE_COMMANDS;
                        continue;
                }
                if (r->hold || r->qlen >= SMTP_PENDING_MAX - 2)
                        break;
                nl = memchr(p, '\n', left);
                if (r->discarding) {
                        if (nl == NULL)
                                return len;
                        used += (size_t)(nl - p) + 1;
                        r->discarding = false;
                        reply_local(r, "500 5.5.2 Line too long");
                        continue;
                }
                if (nl == NULL) {
                        if (left >= SMTP_LINE_MAX) {
                                r->discarding = true;
                                return len;
                        }
                        break; /* wait for the rest of the line */
                }
                {
                        size_t n = (size_t)(nl - p);
                        size_t line_len = n > 0 && p[n - 1] == '\r' ? n - 1 : n;

                        if (n + 1 > SMTP_LINE_MAX) {
                                used += n + 1;
                                reply_local(r, "500 5.5.2 Line too long");
                                continue;
                        }
                        if (client_line(r, p, line_len) < 0)
                                break; /* must wait: the line stays unread */
                        used += n + 1;
                }
        }
        return used;
}

/* The verbs the relay knows.  Only those without a <refusal> go upstream.
 * VRFY and EXPN probe mailboxes without any limit counting them, and
 * nothing needs them to deliver mail; AUTH would send a password in clear
 * text (the client's leg has no TLS), and its exchange is not made of
 * commands the relay could read. */
enum verb {
        VERB_EHLO, VERB_HELO, VERB_MAIL, VERB_RCPT, VERB_DATA, VERB_BDAT, VERB_RSET,
        VERB_NOOP, VERB_HELP, VERB_QUIT, VERB_STARTTLS, VERB_VRFY, VERB_EXPN, VERB_AUTH,
};

static const struct verb_def {
        const char *name;
        enum verb verb;
        const char *no_args;    /* local reply if it has arguments, NULL: may have */
        const char *refusal;    /* local reply: never forwarded */
} verb_defs[] = {
        { "EHLO", VERB_EHLO, NULL, NULL },
        { "HELO", VERB_HELO, NULL, NULL },
        { "MAIL", VERB_MAIL, NULL, NULL },
        { "RCPT", VERB_RCPT, NULL, NULL },
        { "DATA", VERB_DATA, "501 5.5.4 Syntax: DATA", NULL },
        { "BDAT", VERB_BDAT, NULL, NULL },
        { "RSET", VERB_RSET, "501 5.5.4 Syntax: RSET", NULL },
        { "NOOP", VERB_NOOP, NULL, NULL },
        { "HELP", VERB_HELP, NULL, NULL },
        { "QUIT", VERB_QUIT, "501 5.5.4 Syntax: QUIT", NULL },
        { "STARTTLS", VERB_STARTTLS, NULL,
          "502 5.5.1 STARTTLS is not available: outbound port 25 goes through this provider's "
          "SMTP proxy, which has no TLS; use port 587 (submission) or a relay service for TLS" },
        { "VRFY", VERB_VRFY, NULL, "502 5.5.1 VRFY is not available through this provider's SMTP proxy" },
        { "EXPN", VERB_EXPN, NULL, "502 5.5.1 EXPN is not available through this provider's SMTP proxy" },
        { "AUTH", VERB_AUTH, NULL,
          "502 5.5.1 AUTH is not available on port 25 through this provider's SMTP proxy; "
          "use port 587 (submission)" },
};

/* A command line, parsed. */
struct command {
        const struct verb_def *def;
        const char *arg;        /* after the verb and its SP; trailing SPs dropped */
        size_t arg_len;
};

/* Parses <line> (no line end) strictly: a verb of ASCII letters at column 0,
 * then the end of the line or exactly one SP and the arguments.  Postfix
 * and others split a command on any white space and skip leading blanks,
 * so a line the relay would read otherwise ("  MAIL", "RCPT<TAB>TO:") is
 * refused here rather than forwarded.  Returns NULL and fills <cmd>, or
 * the local reply. */
static const char *command_parse(const char *line, size_t len, struct command *cmd)
{
        size_t n = 0;

        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)line[i];

                /* A NUL, TAB or other control byte could be read differently
                 * upstream (a TAB is white space to Postfix). */
                if (c < 0x20 || c == 0x7f)
                        return "500 5.5.2 Syntax error: control characters in command";
        }
        while (n < len && ((line[n] >= 'A' && line[n] <= 'Z') || (line[n] >= 'a' && line[n] <= 'z')))
                n++;
        if (n == 0 || (n < len && line[n] != ' ') || (n + 1 < len && line[n + 1] == ' '))
                return "500 5.5.2 Syntax error: a command is a verb at the start of the line, "
                       "then one space and its arguments";
        cmd->arg = n < len ? line + n + 1 : line + len;
        cmd->arg_len = n < len ? len - n - 1 : 0;
        while (cmd->arg_len > 0 && cmd->arg[cmd->arg_len - 1] == ' ')
                cmd->arg_len--;
        for (size_t i = 0; i < sizeof(verb_defs) / sizeof(verb_defs[0]); i++) {
                const struct verb_def *d = &verb_defs[i];

                if (strlen(d->name) != n || strncasecmp(line, d->name, n) != 0)
                        continue;
                if (d->refusal != NULL)
                        return d->refusal;
                if (d->no_args != NULL && cmd->arg_len > 0)
                        return d->no_args;
                if (d->verb == VERB_EHLO && cmd->arg_len == 0)
                        return "501 5.5.4 Syntax: EHLO hostname";
                if (d->verb == VERB_HELO && cmd->arg_len == 0)
                        return "501 5.5.4 Syntax: HELO hostname";
                cmd->def = d;
                return NULL;
        }
        return "502 5.5.2 Error: command not recognized";
}

static bool ascii_alnum(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* An esmtp-param (RFC 5321 4.1.2): keyword ["=" value]; the value may also
 * hold UTF-8 (RFC 6531). */
static bool esmtp_param(const char *p, size_t len)
{
        size_t i = 0;

        while (i < len && (ascii_alnum(p[i]) || (i > 0 && p[i] == '-')))
                i++;
        if (i == 0)
                return false;
        if (i == len)
                return true;
        if (p[i] != '=' || i + 1 == len)
                return false;
        for (i++; i < len; i++) {
                unsigned char c = (unsigned char)p[i];

                if (c <= ' ' || c == '=' || c == 0x7f)
                        return false;
        }
        return true;
}

/* Parses the argument of MAIL or RCPT: <prefix> ("FROM:" or "TO:"), at most
 * one SP (legacy clients send "MAIL FROM: <a>"), the path in angle
 * brackets with no SP or bracket inside, then SP-separated parameters.
 * <ret_params> starts with its SP ("" if none). */
static bool path_parse(const struct command *cmd, const char *prefix, const char **ret_path,
                       size_t *ret_path_len, const char **ret_params, size_t *ret_params_len)
{
        const char *a = cmd->arg;
        size_t len = cmd->arg_len, n = strlen(prefix), i, start;

        if (len < n || strncasecmp(a, prefix, n) != 0)
                return false;
        i = n;
        if (i < len && a[i] == ' ')
                i++;
        if (i >= len || a[i] != '<')
                return false;
        start = ++i;
        while (i < len && a[i] != '>' && a[i] != '<' && a[i] != ' ')
                i++;
        if (i >= len || a[i] != '>')
                return false;
        *ret_path = a + start;
        *ret_path_len = i - start;
        i++;
        *ret_params = a + i;
        *ret_params_len = len - i;
        while (i < len) {
                const char *sp;
                size_t end;

                if (a[i] != ' ')
                        return false;
                i++;
                sp = memchr(a + i, ' ', len - i);
                end = sp != NULL ? (size_t)(sp - a) : len;
                if (!esmtp_param(a + i, end - i))
                        return false;
                i = end;
        }
        return true;
}

static void copy_trunc(char *dst, size_t size, const char *src, size_t len)
{
        if (len >= size)
                len = size - 1;
        memcpy(dst, src, len);
        dst[len] = '\0';
}

/* Parses BDAT's argument "<size> [LAST]" strictly: the relay and the
 * upstream must agree on the chunk's length. */
static bool bdat_parse(const struct command *cmd, uint64_t *ret_size, bool *ret_last)
{
        const char *a = cmd->arg;
        size_t i = 0, len = cmd->arg_len;
        uint64_t size = 0;

        while (i < len && a[i] >= '0' && a[i] <= '9') {
                size = size * 10 + (uint64_t)(a[i] - '0');
                if (++i > 10)
                        return false;
        }
        if (i == 0 || size > UINT32_MAX)
                return false;
        *ret_last = false;
        if (i < len) {
                if (len - i != 5 || strncasecmp(a + i, " LAST", 5) != 0)
                        return false;
                *ret_last = true;
        }
        *ret_size = size;
        return true;
}

/* Sends <cmd> upstream in its canonical form: the verb in capitals, then
 * one SP and the arguments if any. */
static void forward_command(struct smtp_relay *r, const struct command *cmd)
{
        char line[SMTP_LINE_MAX + 16];
        int n = snprintf(line, sizeof(line), "%s%s%.*s\r\n", cmd->def->name, cmd->arg_len > 0 ? " " : "",
                         (int)cmd->arg_len, cmd->arg);

        to_upstream(r, line, (size_t)n);
}

/* Sends "<verb_prefix><path><params>" upstream, e.g. "MAIL FROM:<a@b> SIZE=9". */
static void forward_path(struct smtp_relay *r, const char *verb_prefix, const char *path, size_t path_len,
                         const char *params, size_t params_len)
{
        char line[SMTP_LINE_MAX + 16];
        int n = snprintf(line, sizeof(line), "%s<%.*s>%.*s\r\n", verb_prefix, (int)path_len, path,
                         (int)params_len, params);

        to_upstream(r, line, (size_t)n);
}

/* Asks the caller about MAIL, RCPT, DATA or BDAT; true if the command may
 * go upstream. */
static bool checked(struct smtp_relay *r, enum smtp_stage stage, const char *domain)
{
        char reply[256];
        enum smtp_check c;

        if (r->ops->check == NULL)
                return true;
        reply[0] = '\0';
        c = r->ops->check(r->ctx, stage, &r->txn, domain, reply, sizeof(reply));
        if (c == SMTP_CHECK_PASS)
                return true;
        if (reply[0] < '4' || reply[0] > '5')
                snprintf(reply, sizeof(reply), "451 4.7.1 Refused by local policy");
        if (c == SMTP_CHECK_CLOSE) {
                flush_locals(r);
                smtp_relay_abort(r, reply);
        } else {
                reply_local(r, reply);
        }
        return false;
}

/* Moves the transaction to <fin>, where it awaits the end-of-data reply;
 * returns the queue argument for that reply. */
static uint32_t txn_finish(struct smtp_relay *r)
{
        if (!r->txn.active)
                return 0;
        r->txn.data_done = true;
        r->fin = r->txn;
        r->txn.active = false;
        r->fin_pending = r->qlen + 1;
        return ARG_OWNS_FIN;
}

static int client_ehlo(struct smtp_relay *r, const struct command *cmd)
{
        bool ehlo = cmd->def->verb == VERB_EHLO;

        txn_end(r, &r->txn);
        copy_trunc(r->txn.helo, sizeof(r->txn.helo), cmd->arg, cmd->arg_len);
        forward_command(r, cmd);
        push(r, ehlo ? SMTP_STAGE_EHLO : SMTP_STAGE_HELO, 0);
        if (ehlo && r->ops->start_tls != NULL && r->tls == SMTP_TLS_NONE) {
                /* Nothing more goes upstream until TLS is settled, and the
                 * EHLO is said again inside it. */
                strbuf_reset(&r->ehlo_cmd);
                strbuf_printf(&r->ehlo_cmd, "EHLO %.*s\r\n", (int)cmd->arg_len, cmd->arg);
                r->hold = r->ehlo_hold = true;
        }
        return 0;
}

static int client_mail(struct smtp_relay *r, const struct command *cmd)
{
        const char *path, *params;
        size_t path_len, params_len;

        if (!path_parse(cmd, "FROM:", &path, &path_len, &params, &params_len)) {
                reply_local(r, "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]");
                return 0;
        }
        /* Forwarded, the server's 503 would end the relay's transaction
         * while the server's own went on, and its message go uncounted. */
        if (r->txn.active) {
                reply_local(r, "503 5.5.1 Error: nested MAIL command");
                return 0;
        }
        if (r->fin.active && r->fin_pending > 0)
                return -1; /* the previous message still awaits its reply */
        if (!checked(r, SMTP_STAGE_MAIL, NULL))
                return 0;
        txn_begin(&r->txn);
        copy_trunc(r->txn.mail_from, sizeof(r->txn.mail_from), path, path_len);
        forward_path(r, "MAIL FROM:", path, path_len, params, params_len);
        push(r, SMTP_STAGE_MAIL, 0);
        return 0;
}

static int client_rcpt(struct smtp_relay *r, const struct command *cmd)
{
        const char *path, *params, *at;
        size_t path_len, params_len;
        char domain[256] = "";

        if (!path_parse(cmd, "TO:", &path, &path_len, &params, &params_len)) {
                reply_local(r, "501 5.5.4 Syntax: RCPT TO:<address> [parameters]");
                return 0;
        }
        at = memrchr(path, '@', path_len);
        if (at != NULL)
                copy_trunc(domain, sizeof(domain), at + 1, path_len - (size_t)(at + 1 - path));
        if (!checked(r, SMTP_STAGE_RCPT, domain)) {
                r->txn.rcpt_local++;
                return 0;
        }
        r->txn.rcpt_sent++;
        forward_path(r, "RCPT TO:", path, path_len, params, params_len);
        push(r, SMTP_STAGE_RCPT, smtp_domain_hash(domain, strlen(domain)));
        return 0;
}

/* Refuses a BDAT locally; its chunk is read and dropped (RFC 3030: the
 * server reads a refused chunk too), so that no byte of it is taken for a
 * command. */
static void bdat_refuse(struct smtp_relay *r, const char *reply, uint64_t size)
{
        reply_local(r, reply);
        if (size > 0 && !r->closing) {
                r->mode = MODE_BDAT_DROP;
                r->bdat_left = size;
        }
}

static int client_bdat(struct smtp_relay *r, const struct command *cmd)
{
        uint64_t size;
        bool last;
        char line[64];
        int n;

        if (!bdat_parse(cmd, &size, &last)) {
                reply_local(r, "501 5.5.4 Syntax: BDAT <size> [LAST]");
                return 0;
        }
        if (!r->chunking) {
                bdat_refuse(r, "502 5.5.1 BDAT is not available: CHUNKING was not offered", size);
                return 0;
        }
        /* The server's SIZE holds for the whole message: past it, this
         * chunk and the rest of the message are refused (RFC 1870, 3030);
         * the client is to RSET. */
        if (r->size_max > 0 &&
            ((r->txn.active && r->txn.oversize) || (r->txn.active ? r->txn.size : 0) + size > r->size_max)) {
                if (r->txn.active)
                        r->txn.oversize = true;
                bdat_refuse(r, "552 5.3.4 Message size exceeds fixed maximum message size", size);
                return 0;
        }
        if (last && r->fin.active && r->fin_pending > 0)
                return -1;
        /* A filter placed since MAIL stops the message here. */
        if (!checked(r, SMTP_STAGE_BDAT, "")) {
                if (size > 0 && !r->closing) {
                        r->mode = MODE_BDAT_DROP;
                        r->bdat_left = size;
                }
                return 0;
        }
        n = snprintf(line, sizeof(line), "BDAT %llu%s\r\n", (unsigned long long)size, last ? " LAST" : "");
        to_upstream(r, line, (size_t)n);
        r->txn.size += size;
        push(r, last ? SMTP_STAGE_BDAT_LAST : SMTP_STAGE_BDAT, last ? txn_finish(r) : 0);
        if (size > 0) {
                r->mode = MODE_BDAT;
                r->bdat_left = size;
        }
        return 0;
}

/* One command line (without its line end).  Returns -1 if it cannot be
 * taken yet (it stays unread), else 0. */
static int client_line(struct smtp_relay *r, const char *line, size_t len)
{
        struct command cmd;
        const char *refusal = command_parse(line, len, &cmd);

        if (refusal != NULL) {
                reply_local(r, refusal);
                return 0;
        }
        switch (cmd.def->verb) {
        case VERB_EHLO:
        case VERB_HELO:
                return client_ehlo(r, &cmd);
        case VERB_MAIL:
                return client_mail(r, &cmd);
        case VERB_RCPT:
                return client_rcpt(r, &cmd);
        case VERB_BDAT:
                return client_bdat(r, &cmd);
        case VERB_DATA:
                if (r->txn.active && r->txn.oversize) {
                        reply_local(r, "552 5.3.4 Message size exceeds fixed maximum message size");
                        return 0;
                }
                if (!checked(r, SMTP_STAGE_DATA, ""))
                        return 0;
                forward_command(r, &cmd);
                push(r, SMTP_STAGE_DATA, 0);
                r->hold = true; /* no data before the upstream's 354 */
                return 0;
        case VERB_RSET:
                txn_end(r, &r->txn);
                forward_command(r, &cmd);
                push(r, SMTP_STAGE_RSET, 0);
                return 0;
        case VERB_QUIT:
                txn_end(r, &r->txn);
                forward_command(r, &cmd);
                push(r, SMTP_STAGE_QUIT, 0);
                r->quit_sent = true;
                return 0;
        default: /* NOOP, HELP: the upstream answers, as it would directly */
                forward_command(r, &cmd);
                push(r, SMTP_STAGE_OTHER, 0);
                return 0;
        }
}

/* The end of a DATA line: "." alone ends the message. */
static bool data_line_end(struct smtp_relay *r)
{
        bool end = r->data_line_dot && r->data_line_len == 1;

        r->data_line_len = 0;
        r->data_line_dot = false;
        return end;
}

static void data_end(struct smtp_relay *r)
{
        r->mode = MODE_COMMANDS;
        push(r, SMTP_STAGE_DOT, txn_finish(r));
}

/* The index of the first <c> in buf[from..len), or <len>. */
static size_t find_byte(const char *buf, size_t len, size_t from, char c)
{
        const char *p = memchr(buf + from, c, len - from);

        return p != NULL ? (size_t)(p - buf) : len;
}

/* The index of the first CR or LF in buf[i..len), or <len>.  <next_cr>
 * and <next_lf> hold where the next of each was found (<len>: none); one
 * below <i> has been passed and is looked for again from <i>, so that each
 * byte is searched once whatever the mix of line ends (a buffer of bare
 * CRs costs no more than one of proper lines). */
static size_t next_eol(const char *buf, size_t len, size_t i, size_t *next_cr, size_t *next_lf)
{
        if (*next_cr < i)
                *next_cr = find_byte(buf, len, i, '\r');
        if (*next_lf < i)
                *next_lf = find_byte(buf, len, i, '\n');
        return *next_cr < *next_lf ? *next_cr : *next_lf;
}

/* Message data: relayed with every line ending made CRLF, so that the
 * upstream sees the end of the data exactly where the relay does. */
static size_t client_data(struct smtp_relay *r, const char *buf, size_t len)
{
        size_t i = 0, run = 0; /* buf[run..i) is relayed as it is */
        size_t next_cr, next_lf; /* for next_eol() */

        if (r->pending_cr) {
                r->pending_cr = false;
                to_upstream(r, "\r\n", 2);
                r->txn.size += 2;
                if (buf[0] == '\n')
                        i = run = 1;
                if (data_line_end(r)) {
                        data_end(r);
                        return i;
                }
        }
        next_cr = find_byte(buf, len, i, '\r');
        next_lf = find_byte(buf, len, i, '\n');
        while (i < len) {
                size_t eol;
                char c;

                /* The bytes up to the next line end, at memchr's speed. */
                eol = next_eol(buf, len, i, &next_cr, &next_lf);
                if (eol > i) {
                        if (r->data_line_len == 0 && buf[i] == '.')
                                r->data_line_dot = true;
                        r->data_line_len = eol - i >= (size_t)(UINT16_MAX - r->data_line_len)
                                                   ? UINT16_MAX
                                                   : (uint16_t)(r->data_line_len + (eol - i));
                        i = eol;
                        if (i == len)
                                break;
                }
                c = buf[i];
                if (c == '\r' && i + 1 < len && buf[i + 1] == '\n') {
                        i += 2; /* a proper CRLF stays in the run */
                } else if (c == '\r' && i + 1 == len) {
                        /* Is it CRLF?  The next chunk will tell. */
                        to_upstream(r, buf + run, i - run);
                        r->txn.size += i - run;
                        r->pending_cr = true;
                        return len;
                } else {
                        /* A bare CR or LF: relayed as CRLF. */
                        to_upstream(r, buf + run, i - run);
                        to_upstream(r, "\r\n", 2);
                        r->txn.size += i - run + 2;
                        i++;
                        run = i;
                        if (data_line_end(r)) {
                                data_end(r);
                                return i;
                        }
                        continue;
                }
                if (data_line_end(r)) {
                        to_upstream(r, buf + run, i - run);
                        r->txn.size += i - run;
                        data_end(r);
                        return i;
                }
        }
        to_upstream(r, buf + run, i - run);
        r->txn.size += i - run;
        return i;
}

/* ---- upstream side ---- */

size_t smtp_relay_upstream(struct smtp_relay *r, const char *buf, size_t len)
{
        size_t used = 0;

        if (r->tls == SMTP_TLS_HANDSHAKE && len > 0)
                protocol_error(r, "421 4.4.2 The receiving mail server sent data after its reply to STARTTLS");
        /* Nothing after the 220 to the relay's STARTTLS is read as a reply. */
        while (used < len && !r->closing && !r->tls_due) {
                const char *p = buf + used;
                const char *nl = memchr(p, '\n', len - used);
                size_t n;

                if (nl == NULL) {
                        if (len - used >= SMTP_LINE_MAX)
                                protocol_error(r, "421 4.4.2 The receiving mail server sent a "
                                                  "reply line that is too long");
                        break;
                }
                n = (size_t)(nl - p);
                used += n + 1;
                if (n + 1 > SMTP_LINE_MAX) {
                        protocol_error(r, "421 4.4.2 The receiving mail server sent a reply "
                                          "line that is too long");
                        break;
                }
                upstream_line(r, p, n > 0 && p[n - 1] == '\r' ? n - 1 : n);
        }
        if (r->tls_due && !r->closing) {
                r->tls_due = false;
                /* Bytes after the 220 were sent before TLS: read after the
                 * handshake they would pass for the server's (CVE-2011-0411). */
                if (used < len)
                        protocol_error(r, "421 4.4.2 The receiving mail server sent data after its "
                                          "reply to STARTTLS");
                else
                        r->ops->start_tls(r->ctx);
        }
        return r->closing ? len : used;
}

/* True if the EHLO keyword <kw> (<kwlen> bytes) is <name>, alone or with
 * parameters (AUTH also in its old "AUTH=" form). */
static bool ehlo_keyword(const char *kw, size_t kwlen, const char *name)
{
        size_t n = strlen(name);

        return kwlen >= n && strncasecmp(kw, name, n) == 0 &&
               (kwlen == n || kw[n] == ' ' || (strcmp(name, "AUTH") == 0 && kw[n] == '='));
}

/* SIZE's parameter (RFC 1870): 0 if none, or no fixed limit. */
static uint64_t ehlo_size(const char *kw, size_t kwlen)
{
        uint64_t size = 0;

        for (size_t i = 5; i < kwlen; i++) {
                if (kw[i] < '0' || kw[i] > '9' || size > UINT64_MAX / 10 - 1)
                        return 0;
                size = size * 10 + (uint64_t)(kw[i] - '0');
        }
        return size;
}

/* Gives the client the collected EHLO reply less STARTTLS and AUTH, with
 * its continuation marks made again; notes CHUNKING and SIZE. */
static void ehlo_rewrite(struct smtp_relay *r)
{
        const char *s = r->ehlo.s, *prev = NULL;
        size_t prev_len = 0;
        struct strbuf out = { 0 };

        r->chunking = false;
        r->size_max = 0;
        while (s != NULL && *s != '\0') {
                const char *eol = strstr(s, "\r\n");
                size_t n = (size_t)(eol - s);
                const char *kw = s + 4; /* the first line is the server's name */
                size_t kwlen = n > 4 ? n - 4 : 0;

                if (prev != NULL) {
                        if (ehlo_keyword(kw, kwlen, "STARTTLS") || ehlo_keyword(kw, kwlen, "AUTH")) {
                                s = eol + 2;
                                continue;
                        }
                        if (ehlo_keyword(kw, kwlen, "CHUNKING"))
                                r->chunking = true;
                        if (ehlo_keyword(kw, kwlen, "SIZE"))
                                r->size_max = ehlo_size(kw, kwlen);
                }
                if (prev != NULL)
                        strbuf_printf(&out, "250-%.*s\r\n", prev_len > 4 ? (int)(prev_len - 4) : 0,
                                      prev_len > 4 ? prev + 4 : "");
                prev = s;
                prev_len = n;
                s = eol + 2;
        }
        /* The last line: "250 text", or a bare "250" when it has none. */
        if (prev_len > 4)
                strbuf_printf(&out, "250 %.*s\r\n", (int)(prev_len - 4), prev + 4);
        else
                strbuf_printf(&out, "250\r\n");
        if (out.oom || prev == NULL) {
                strbuf_free(&out);
                protocol_error(r, "421 4.3.0 Out of memory");
                return;
        }
        to_client(r, out.s, out.len);
        strbuf_free(&out);
}

/* True if the collected EHLO reply offers STARTTLS. */
static bool ehlo_offers_tls(const struct smtp_relay *r)
{
        for (const char *s = r->ehlo.s; s != NULL && *s != '\0';) {
                const char *eol = strstr(s, "\r\n");

                if (s != r->ehlo.s && eol - s >= 4 && ehlo_keyword(s + 4, (size_t)(eol - s) - 4, "STARTTLS"))
                        return true;
                s = eol + 2;
        }
        return false;
}

/* The EHLO reply is complete: upgrade the upstream first if we may;
 * returns true if the reply is held back for that. */
static bool ehlo_maybe_tls(struct smtp_relay *r, int code)
{
        if (r->ops->start_tls == NULL || r->tls != SMTP_TLS_NONE)
                return false;
        if (code != 250 || !ehlo_offers_tls(r)) {
                r->tls = SMTP_TLS_DECLINED;
                return false;
        }
        to_upstream(r, "STARTTLS\r\n", 10);
        r->q[r->qhead] = SMTP_STAGE_TLS;
        r->tls = SMTP_TLS_ASKED;
        return true;
}

void smtp_relay_tls_ready(struct smtp_relay *r)
{
        if (r->tls != SMTP_TLS_HANDSHAKE || r->closing)
                return;
        r->tls = SMTP_TLS_ON;
        strbuf_free(&r->ehlo); /* the plain-text reply is void now */
        to_upstream(r, r->ehlo_cmd.s, r->ehlo_cmd.len);
        strbuf_free(&r->ehlo_cmd);
        r->q[r->qhead] = SMTP_STAGE_EHLO;
}

/* The upstream's reply to the relay's own STARTTLS. */
static void tls_reply(struct smtp_relay *r, int code)
{
        if (code == 220) {
                r->tls = SMTP_TLS_HANDSHAKE;
                r->tls_due = true; /* once the input is known to end here */
                return;
        }
        /* Declined (454...): carry on in plain text with the first reply. */
        r->tls = SMTP_TLS_DECLINED;
        r->q[r->qhead] = SMTP_STAGE_EHLO;
        ehlo_rewrite(r);
        strbuf_free(&r->ehlo);
        strbuf_free(&r->ehlo_cmd);
        r->hold = r->ehlo_hold = false;
        pop(r);
        flush_locals(r);
}

/* Applies the final reply line's <code> to the command it answers. */
static void reply_done(struct smtp_relay *r, enum smtp_stage stage, uint32_t arg, const char *line,
                       size_t len)
{
        /* Replies to commands sent before the last message ended belong to it. */
        struct smtp_txn *t = r->fin_pending > 0 ? &r->fin : &r->txn;
        int code = r->reply_code;

        switch (stage) {
        case SMTP_STAGE_EHLO:
                if (r->ehlo.s != NULL)
                        ehlo_rewrite(r);
                strbuf_free(&r->ehlo);
                strbuf_free(&r->ehlo_cmd);
                if (r->ehlo_hold)
                        r->hold = r->ehlo_hold = false;
                break;
        case SMTP_STAGE_MAIL:
                t->mail_reply = code;
                if (code / 100 != 2)
                        txn_end(r, t);
                break;
        case SMTP_STAGE_RCPT:
                if (code / 100 == 2)
                        t->rcpt_accepted++;
                else
                        t->rcpt_refused++;
                if (r->ops->recipient != NULL)
                        r->ops->recipient(r->ctx, arg, code);
                break;
        case SMTP_STAGE_DATA:
                r->hold = false;
                t->data_reply = code;
                if (code == 354) {
                        r->mode = MODE_DATA;
                        r->data_line_len = 0;
                        r->data_line_dot = false;
                        r->pending_cr = false;
                }
                break;
        case SMTP_STAGE_DOT:
        case SMTP_STAGE_BDAT_LAST:
                if (arg & ARG_OWNS_FIN) {
                        r->fin.final_reply = code;
                        copy_trunc(r->fin.final_text, sizeof(r->fin.final_text), line, len);
                        txn_end(r, &r->fin);
                }
                break;
        case SMTP_STAGE_BDAT:
                if (code / 100 != 2)
                        t->final_reply = code;
                break;
        case SMTP_STAGE_QUIT:
                r->closing = true;
                break;
        default:
                break;
        }
}

/* The last line of a reply has come: the whole reply is <r->reply> then
 * <line>.  Gives it to the client, or to the relay's own STARTTLS. */
static void reply_complete(struct smtp_relay *r, int code, const char *line, size_t len)
{
        enum smtp_stage stage;
        uint32_t arg;

        if (r->qlen == 0) {
                /* Unasked: a 421, the server closing the session. */
                to_client(r, strbuf_str(&r->reply), r->reply.len);
                to_client(r, line, len);
                to_client(r, "\r\n", 2);
                r->closing = true;
                return;
        }
        stage = (enum smtp_stage)r->q[r->qhead];
        if (stage == SMTP_STAGE_TLS) {
                tls_reply(r, code); /* the client never asked: it does not see this */
                return;
        }
        if (stage == SMTP_STAGE_EHLO && code == 250) {
                strbuf_free(&r->ehlo);
                r->ehlo = r->reply;
                r->reply = (struct strbuf){ 0 };
                strbuf_printf(&r->ehlo, "%.*s\r\n", (int)len, line);
                if (r->ehlo.oom) {
                        protocol_error(r, "421 4.3.0 Out of memory");
                        return;
                }
                if (ehlo_maybe_tls(r, code))
                        return;
        } else {
                to_client(r, strbuf_str(&r->reply), r->reply.len);
                to_client(r, line, len);
                to_client(r, "\r\n", 2);
        }
        arg = r->qarg[r->qhead];
        reply_done(r, stage, arg, line, len);
        pop(r);
        flush_locals(r);
}

/* One reply line (without its line end).  The lines before the last are
 * held, within SMTP_REPLY_LINES_MAX and SMTP_REPLY_MAX. */
static void upstream_line(struct smtp_relay *r, const char *line, size_t len)
{
        int code;
        bool last;

        if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
            line[2] < '0' || line[2] > '9' || (len > 3 && line[3] != ' ' && line[3] != '-')) {
                protocol_error(r, "421 4.4.2 The receiving mail server sent a malformed reply");
                return;
        }
        code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        last = len == 3 || line[3] == ' ';
        if (r->in_reply && code != r->reply_code) {
                protocol_error(r, "421 4.4.2 The receiving mail server sent a malformed reply");
                return;
        }
        if (r->qlen == 0 && code != 421) {
                /* Only a server closing the session may speak unasked. */
                protocol_error(r, "421 4.4.2 The receiving mail server sent a reply nobody asked for");
                return;
        }
        if (code == 354 && (r->qlen == 0 || r->q[r->qhead] != SMTP_STAGE_DATA)) {
                protocol_error(r, "421 4.4.2 The receiving mail server and this proxy disagree "
                                  "on the session's state");
                return;
        }
        if (++r->reply_lines > SMTP_REPLY_LINES_MAX || r->reply.len + len + 2 > SMTP_REPLY_MAX) {
                protocol_error(r, "421 4.4.2 The receiving mail server sent a reply that is too long");
                return;
        }
        r->reply_code = code;
        r->in_reply = !last;
        if (!last) {
                strbuf_printf(&r->reply, "%.*s\r\n", (int)len, line);
                if (r->reply.oom)
                        protocol_error(r, "421 4.3.0 Out of memory");
                return;
        }
        r->reply_lines = 0;
        reply_complete(r, code, line, len);
        strbuf_free(&r->reply);
}
