/* libFuzzer harness: the relay's reading of a client command line against
 * Postfix's.
 *
 * The input is a series of client lines (split on LF).  Each is fed to a
 * relay in the command phase, and the upstream is answered at once, so the
 * pipeline is always empty.  For each line the oracle reads both the line
 * and what the relay forwarded with a Postfix-style tokenizer (the first
 * word, after any white space, case-insensitive; <...> and "..." quote,
 * a backslash escapes, "from:"/"to:" end a word) and aborts when:
 *   - the relay forwarded a MAIL or RCPT (as the upstream reads it) without
 *     asking check() about that same stage: a limit was bypassed;
 *   - the client's line is a MAIL or RCPT for Postfix and the relay
 *     forwarded something else, or nothing without a local 4xx/5xx;
 *   - what was forwarded is not exactly one CRLF-terminated line whose verb
 *     is on the relay's allow-list.
 * Commands the relay reads among message bytes (after a BDAT chunk) are
 * answered with 250 before the next line.  The last input byte picks a
 * check() that refuses every other call. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/strbuf.h"
#include "smtp/relay.h"

struct fuzz {
        struct smtp_relay r;
        struct strbuf client;   /* bytes the client got, for this line */
        struct strbuf upstream; /* bytes the upstream got, for this line */
        int checked;            /* stage of the last check() for MAIL or RCPT, -1 for none */
        bool data_checked;      /* check() was asked about DATA or BDAT */
        bool refuse_odd;        /* check() refuses every other call */
        unsigned checks;
};

static void to_client(void *ctx, const char *buf, size_t len)
{
        struct fuzz *f = ctx;

        strbuf_printf(&f->client, "%.*s", (int)len, buf);
}

static void to_upstream(void *ctx, const char *buf, size_t len)
{
        struct fuzz *f = ctx;

        /* %.*s would stop at a NUL: append byte by byte */
        for (size_t i = 0; i < len; i++)
                strbuf_printf(&f->upstream, "%c", buf[i] != '\0' ? buf[i] : '\x01');
}

static enum smtp_check check(void *ctx, enum smtp_stage stage, const struct smtp_txn *txn,
                             const char *domain, char *reply, size_t size)
{
        struct fuzz *f = ctx;

        (void)txn;
        (void)domain;
        /* DATA and BDAT are asked too (the policy only, nothing counted) */
        if (stage == SMTP_STAGE_DATA || stage == SMTP_STAGE_BDAT)
                f->data_checked = true;
        else
                f->checked = (int)stage;
        if (f->refuse_odd && f->checks++ % 2 == 1) {
                strncpy(reply, "451 4.7.1 Too many messages", size - 1);
                reply[size - 1] = '\0';
                return SMTP_CHECK_REFUSE;
        }
        return SMTP_CHECK_PASS;
}

static const struct smtp_relay_ops ops = {
        .to_client = to_client,
        .to_upstream = to_upstream,
        .check = check,
};

/* Postfix's ISSPACE: ASCII white space. */
static bool pf_space(unsigned char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Skips a quoted section opened just before <i> and closed by <last>, the
 * way Postfix's smtp_quoted() does (quotes nest inside <...>). */
static size_t pf_quoted(const char *s, size_t len, size_t i, char last)
{
        char stack[64];
        size_t depth = 0;

        stack[depth++] = last;
        while (i < len && s[i] != '\0') {
                char c = s[i++];

                if (c == '\\') {
                        if (i >= len || s[i] == '\0')
                                break;
                        i++;
                } else if (c == stack[depth - 1]) {
                        if (--depth == 0)
                                return i;
                } else if (c == '"' && depth < sizeof(stack)) {
                        stack[depth++] = '"';
                } else if (c == '<' && stack[depth - 1] == '>' && depth < sizeof(stack)) {
                        stack[depth++] = '>';
                }
        }
        return i;
}

/* The first word of <s> as Postfix's smtpd_token() cuts it, compared with
 * the verbs of interest; returns the verb's index in <verbs>, or -1. */
static const char *const verbs[] = { "MAIL", "RCPT", "EHLO", "HELO", "DATA", "BDAT",
                                     "RSET", "NOOP", "QUIT", "HELP" };
#define VERB_MAIL 0
#define VERB_RCPT 1
#define VERB_DATA 4
#define VERB_BDAT 5

static int pf_verb(const char *s, size_t len)
{
        size_t i = 0, start;

        while (i < len && s[i] != '\0' && pf_space((unsigned char)s[i]))
                i++;
        start = i;
        while (i < len && s[i] != '\0' && !pf_space((unsigned char)s[i])) {
                char c = s[i++];

                if (c == '<')
                        i = pf_quoted(s, len, i, '>');
                else if (c == '"')
                        i = pf_quoted(s, len, i, '"');
                else if (c == ':' && ((i - start == 3 && strncasecmp(s + start, "to:", 3) == 0) ||
                                      (i - start == 5 && strncasecmp(s + start, "from:", 5) == 0)))
                        break;
                else if (c == '\\' && i < len && s[i] != '\0')
                        i++;
        }
        for (size_t v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++) {
                if (i - start == strlen(verbs[v]) && strncasecmp(s + start, verbs[v], i - start) == 0)
                        return (int)v;
        }
        return -1;
}

/* Answers what was forwarded, so that nothing stays pending. */
static void answer(struct fuzz *f, int verb)
{
        static const char *const replies[] = {
                [0] = "250 2.1.0 Ok\r\n",
                [1] = "250 2.1.5 Ok\r\n",
                [2] = "250-mx\r\n250-SIZE 1000\r\n250 CHUNKING\r\n",
                [3] = "250 mx\r\n",
                [4] = "554 5.5.1 Error: no valid recipients\r\n",
                [5] = "250 2.0.0 Ok\r\n",
                [6] = "250 2.0.0 Ok\r\n",
                [7] = "250 2.0.0 Ok\r\n",
                [8] = "221 2.0.0 Bye\r\n",
                [9] = "214 2.0.0 See RFC 5321\r\n",
        };
        const char *reply = replies[verb];

        smtp_relay_upstream(&f->r, reply, strlen(reply));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fuzz *f = calloc(1, sizeof(*f));
        const char *in = (const char *)data;
        size_t pos = 0;

        if (f == NULL)
                return 0;
        f->refuse_odd = size > 0 && (data[size - 1] & 0x80);
        smtp_relay_init(&f->r, &ops, f);
        smtp_relay_upstream(&f->r, "220 mx ESMTP\r\n", 14);
        smtp_relay_client(&f->r, "EHLO vps.example\r\n", 18);
        answer(f, 2);
        for (unsigned n = 0; n < 64 && pos < size && !smtp_relay_closing(&f->r); n++) {
                const char *nl = memchr(in + pos, '\n', size - pos);
                size_t len = nl != NULL ? (size_t)(nl - (in + pos)) + 1 : size - pos;
                const char *line = in + pos;
                bool data_phase = smtp_relay_in_data(&f->r);
                size_t used, ll;
                int verb, fwd;

                pos += len;
                /* Commands the relay read among message bytes get replies. */
                for (unsigned k = 0; k < SMTP_PENDING_MAX && smtp_relay_busy(&f->r) &&
                                     !smtp_relay_closing(&f->r); k++)
                        smtp_relay_upstream(&f->r, "250 2.0.0 Ok\r\n", 14);
                data_phase = smtp_relay_in_data(&f->r);
                strbuf_reset(&f->client);
                strbuf_reset(&f->upstream);
                f->checked = -1;
                f->data_checked = false;
                used = smtp_relay_client(&f->r, line, len);
                if (data_phase || used != len || nl == NULL || smtp_relay_closing(&f->r))
                        continue; /* message bytes, or a line the relay did not take */
                ll = len - 1;
                if (ll > 0 && line[ll - 1] == '\r')
                        ll--; /* Postfix strips CRLF or LF */
                verb = pf_verb(line, ll);
                if (f->upstream.len == 0) {
                        /* Not forwarded: a MAIL/RCPT must have been refused. */
                        if ((verb == VERB_MAIL || verb == VERB_RCPT) &&
                            (f->client.len == 0 || (f->client.s[0] != '4' && f->client.s[0] != '5')))
                                abort();
                        continue;
                }
                /* Exactly one line, CRLF-terminated, no other CR or LF. */
                if (f->upstream.len < 2 || memcmp(f->upstream.s + f->upstream.len - 2, "\r\n", 2) != 0 ||
                    memchr(f->upstream.s, '\n', f->upstream.len - 1) != NULL ||
                    memchr(f->upstream.s, '\r', f->upstream.len - 2) != NULL)
                        abort();
                fwd = pf_verb(f->upstream.s, f->upstream.len - 2);
                if (fwd < 0)
                        abort(); /* not on the allow-list */
                if (fwd == VERB_MAIL && f->checked != SMTP_STAGE_MAIL)
                        abort(); /* a MAIL nobody counted */
                if (fwd == VERB_RCPT && f->checked != SMTP_STAGE_RCPT)
                        abort(); /* a RCPT nobody counted */
                if (f->checked >= 0 && fwd != VERB_MAIL && fwd != VERB_RCPT)
                        abort(); /* counted as MAIL/RCPT, sent as something else */
                if ((fwd == VERB_DATA || fwd == VERB_BDAT) && !f->data_checked)
                        abort(); /* data the policy was not asked about (a filter placed since MAIL) */
                if ((verb == VERB_MAIL || verb == VERB_RCPT) && fwd != verb)
                        abort(); /* Postfix's MAIL/RCPT went out as another verb */
                answer(f, fwd);
        }
        smtp_relay_release(&f->r);
        strbuf_free(&f->client);
        strbuf_free(&f->upstream);
        free(f);
        return 0;
}
