/* The SMTP relay state machine, driven from both sides by hand. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/relay.h"

struct harness {
        struct smtp_relay r;
        struct strbuf client;   /* what the client received */
        struct strbuf upstream; /* what the upstream received */
        struct smtp_txn last;   /* the last transaction reported */
        unsigned messages;
        unsigned recipients_ok;
        unsigned rcpt_limit;    /* refuse RCPTs beyond this many (0: none) */
        unsigned tls_started;
        unsigned mail_checks;   /* check() calls for MAIL */
        unsigned rcpt_checks;   /* ... and for RCPT */
        unsigned data_checks;   /* ... and for DATA and BDAT */
        bool filtered;          /* DATA and BDAT: a filter was placed */
        char pending[16384];     /* client bytes not yet taken */
        size_t pending_len;
};

static void h_client(void *ctx, const char *buf, size_t len)
{
        struct harness *h = ctx;

        strbuf_printf(&h->client, "%.*s", (int)len, buf);
}

static void h_upstream(void *ctx, const char *buf, size_t len)
{
        struct harness *h = ctx;

        strbuf_printf(&h->upstream, "%.*s", (int)len, buf);
}

static enum smtp_check h_check(void *ctx, enum smtp_stage stage, const struct smtp_txn *txn,
                               const char *domain, char *reply, size_t size)
{
        struct harness *h = ctx;

        if (stage == SMTP_STAGE_MAIL)
                h->mail_checks++;
        else if (stage == SMTP_STAGE_RCPT)
                h->rcpt_checks++;
        else
                h->data_checks++;
        if ((stage == SMTP_STAGE_DATA || stage == SMTP_STAGE_BDAT) && h->filtered) {
                snprintf(reply, size, "421 4.7.0 filtered");
                return SMTP_CHECK_CLOSE;
        }
        if (stage == SMTP_STAGE_RCPT && h->rcpt_limit > 0 && txn->rcpt_sent >= h->rcpt_limit) {
                snprintf(reply, size, "452 4.5.3 Too many recipients (at most %u)", h->rcpt_limit);
                return SMTP_CHECK_REFUSE;
        }
        if (stage == SMTP_STAGE_RCPT && strcmp(domain, "closeme.example") == 0) {
                snprintf(reply, size, "421 4.7.0 refused");
                return SMTP_CHECK_CLOSE;
        }
        return SMTP_CHECK_PASS;
}

static void h_recipient(void *ctx, uint32_t domain_hash, int code)
{
        struct harness *h = ctx;

        if (code / 100 == 2)
                h->recipients_ok++;
}

static void h_message(void *ctx, const struct smtp_txn *txn)
{
        struct harness *h = ctx;

        h->last = *txn;
        h->messages++;
}

static void h_start_tls(void *ctx)
{
        struct harness *h = ctx;

        h->tls_started++;
}

static const struct smtp_relay_ops h_ops_tls = {
        .to_client = h_client,
        .to_upstream = h_upstream,
        .check = h_check,
        .recipient = h_recipient,
        .message = h_message,
        .start_tls = h_start_tls,
};

static const struct smtp_relay_ops h_ops = {
        .to_client = h_client,
        .to_upstream = h_upstream,
        .check = h_check,
        .recipient = h_recipient,
        .message = h_message,
};

/* Client sends <s> (appended to what it could not send before). */
static void c(struct harness *h, const char *s)
{
        size_t n = strlen(s), used;

        assert_true(h->pending_len + n <= sizeof(h->pending));
        memcpy(h->pending + h->pending_len, s, n);
        h->pending_len += n;
        used = smtp_relay_client(&h->r, h->pending, h->pending_len);
        memmove(h->pending, h->pending + used, h->pending_len - used);
        h->pending_len -= used;
}

/* Upstream sends <s>; the client's held bytes are offered again. */
static void u(struct harness *h, const char *s)
{
        assert_int_equal(smtp_relay_upstream(&h->r, s, strlen(s)), strlen(s));
        c(h, "");
}

static void expect_client(struct harness *h, const char *want)
{
        assert_string_equal(strbuf_str(&h->client), want);
        strbuf_reset(&h->client);
}

static void expect_upstream(struct harness *h, const char *want)
{
        assert_string_equal(strbuf_str(&h->upstream), want);
        strbuf_reset(&h->upstream);
}

static int setup(void **state)
{
        struct harness *h = calloc(1, sizeof(*h));

        smtp_relay_init(&h->r, &h_ops, h);
        *state = h;
        return 0;
}

static int teardown(void **state)
{
        struct harness *h = *state;

        smtp_relay_release(&h->r);
        strbuf_free(&h->client);
        strbuf_free(&h->upstream);
        free(h);
        return 0;
}

/* Greets and says EHLO; the upstream offers <ext> (lines without "250-"). */
static void ehlo(struct harness *h, const char *ext)
{
        char reply[1024];

        u(h, "220 mx.example ESMTP\r\n");
        expect_client(h, "220 mx.example ESMTP\r\n");
        c(h, "EHLO vps.example\r\n");
        expect_upstream(h, "EHLO vps.example\r\n");
        snprintf(reply, sizeof(reply), "250-mx.example\r\n%s", ext);
        u(h, reply);
}

static void test_ehlo_loses_starttls(void **state)
{
        struct harness *h = *state;

        ehlo(h, "250-PIPELINING\r\n250-STARTTLS\r\n250-SIZE 10240000\r\n250 CHUNKING\r\n");
        expect_client(h, "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 CHUNKING\r\n");
        assert_true(h->r.chunking);
        assert_string_equal(h->r.txn.helo, "vps.example");
}

static void test_ehlo_starttls_last(void **state)
{
        struct harness *h = *state;

        ehlo(h, "250-8BITMIME\r\n250-SMTPUTF8\r\n250 STARTTLS\r\n");
        expect_client(h, "250-mx.example\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n");
        assert_false(h->r.chunking);
}

static void test_starttls_refused_in_order(void **state)
{
        struct harness *h = *state;

        u(h, "220 mx\r\n");
        expect_client(h, "220 mx\r\n");
        /* Pipelined: the local reply must wait for the EHLO reply. */
        c(h, "EHLO a\r\nSTARTTLS\r\n");
        expect_upstream(h, "EHLO a\r\n");
        expect_client(h, "");
        u(h, "250-mx\r\n250 STARTTLS\r\n");
        assert_non_null(strstr(strbuf_str(&h->client), "250 mx\r\n502 5.5.1 STARTTLS is not available"));
        assert_non_null(strstr(strbuf_str(&h->client), "port 587"));
}

static void test_pipelined_message(void **state)
{
        struct harness *h = *state;

        ehlo(h, "250 PIPELINING\r\n");
        strbuf_reset(&h->client);
        /* A client that does not wait for 354 gets its data held back. */
        c(h, "MAIL FROM:<a@vps.example>\r\nRCPT TO:<b@one.example>\r\nRCPT TO:<c@Two.Example>\r\n"
             "DATA\r\nSubject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n");
        expect_upstream(h, "MAIL FROM:<a@vps.example>\r\nRCPT TO:<b@one.example>\r\n"
                           "RCPT TO:<c@Two.Example>\r\nDATA\r\n");
        assert_true(smtp_relay_waiting(&h->r));
        u(h, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 no such user\r\n");
        expect_upstream(h, "");
        expect_client(h, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 no such user\r\n");
        u(h, "354 End data with <CR><LF>.<CR><LF>\r\n");
        expect_upstream(h, "Subject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n");
        assert_int_equal(h->messages, 0);
        u(h, "250 2.0.0 Ok: queued as 123\r\n221 2.0.0 Bye\r\n");
        expect_client(h, "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as 123\r\n"
                         "221 2.0.0 Bye\r\n");
        assert_int_equal(h->messages, 1);
        assert_int_equal(h->last.final_reply, 250);
        assert_string_equal(h->last.final_text, "250 2.0.0 Ok: queued as 123");
        assert_string_equal(h->last.mail_from, "a@vps.example");
        assert_int_equal(h->last.rcpt_sent, 2);
        assert_int_equal(h->last.rcpt_accepted, 1);
        assert_int_equal(h->last.rcpt_refused, 1);
        assert_int_equal(h->last.size, strlen("Subject: hi\r\n\r\nbody\r\n.\r\n"));
        assert_int_equal(h->recipients_ok, 1);
        assert_true(smtp_relay_closing(&h->r));
}

static void test_data_refused_keeps_commands(void **state)
{
        struct harness *h = *state;

        ehlo(h, "250 PIPELINING\r\n");
        strbuf_reset(&h->client);
        c(h, "MAIL FROM:<>\r\nRCPT TO:<x@y>\r\nDATA\r\nRSET\r\n");
        expect_upstream(h, "MAIL FROM:<>\r\nRCPT TO:<x@y>\r\nDATA\r\n");
        u(h, "250 ok\r\n550 no\r\n554 5.5.1 Error: no valid recipients\r\n");
        /* No 354: what followed DATA is a command again. */
        expect_upstream(h, "RSET\r\n");
        u(h, "250 2.0.0 Ok\r\n");
        expect_client(h, "250 ok\r\n550 no\r\n554 5.5.1 Error: no valid recipients\r\n250 2.0.0 Ok\r\n");
        assert_int_equal(h->messages, 1);
        assert_int_equal(h->last.final_reply, 0);
        assert_int_equal(h->last.data_reply, 554);
}

/* "\n.\n" would end the data for some servers: relayed as CRLF, the
 * upstream and the relay agree that the message ended there. */
static void test_bare_lf_normalised(void **state)
{
        struct harness *h = *state;

        ehlo(h, "250 PIPELINING\r\n");
        c(h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
        u(h, "250 ok\r\n250 ok\r\n354 go\r\n");
        strbuf_reset(&h->client);
        expect_upstream(h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
        c(h, "one\ntwo\rthree\r\n.\nMAIL FROM:<evil@b>\r\n");
        expect_upstream(h, "one\r\ntwo\r\nthree\r\n.\r\n");
        /* The next MAIL waits for the message's final reply. */
        u(h, "250 queued\r\n");
        expect_upstream(h, "MAIL FROM:<evil@b>\r\n");
        expect_client(h, "250 queued\r\n");
        assert_int_equal(h->messages, 1);
}

static void test_cr_split_across_reads(void **state)
{
        struct harness *h = *state;

        ehlo(h, "250 PIPELINING\r\n");
        c(h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
        u(h, "250 ok\r\n250 ok\r\n354 go\r\n");
        strbuf_reset(&h->upstream);
        c(h, "x\r");
        c(h, "\n.");
        c(h, "\r");
        c(h, "\n");
        expect_upstream(h, "x\r\n.\r\n");
        assert_false(smtp_relay_in_data(&h->r));
}

static void test_dot_stuffing_kept(void **state)
{
        struct harness *h = *state;

        ehlo(h, "250 PIPELINING\r\n");
        c(h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
        u(h, "250 ok\r\n250 ok\r\n354 go\r\n");
        strbuf_reset(&h->upstream);
        c(h, "..\r\n.x\r\n");
        assert_true(smtp_relay_in_data(&h->r));
        c(h, ".\r\n");
        expect_upstream(h, "..\r\n.x\r\n.\r\n");
}

static void test_bdat(void **state)
{
        struct harness *h = *state;

        ehlo(h, "250-PIPELINING\r\n250 CHUNKING\r\n");
        strbuf_reset(&h->client);
        c(h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 5\r\nab\n\rcBDAT 3 LAST\r\nxyz");
        expect_upstream(h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 5\r\nab\n\rcBDAT 3 LAST\r\nxyz");
        u(h, "250 ok\r\n250 ok\r\n250 2.0.0 5 octets\r\n250 2.0.0 queued\r\n");
        assert_int_equal(h->messages, 1);
        assert_int_equal(h->last.size, 8);
        assert_int_equal(h->last.final_reply, 250);
        assert_int_equal(h->last.mail_reply, 250);
        assert_int_equal(h->last.rcpt_accepted, 1);
}

static void test_bdat_refused_without_chunking(void **state)
{
        struct harness *h = *state;

        ehlo(h, "250 PIPELINING\r\n");
        strbuf_reset(&h->client);
        /* The chunk's bytes are dropped, not read as commands. */
        c(h, "BDAT 6 LAST\r\nRSET\r\nNOOP\r\n");
        expect_upstream(h, "NOOP\r\n");
        expect_client(h, "502 5.5.1 BDAT is not available: CHUNKING was not offered\r\n");
}

static void test_bdat_bad_size(void **state)
{
        struct harness *h = *state;

        ehlo(h, "250 CHUNKING\r\n");
        strbuf_reset(&h->client);
        c(h, "BDAT +3\r\nBDAT 3 LAST x\r\nBDAT 99999999999\r\n");
        expect_upstream(h, "");
        expect_client(h, "501 5.5.4 Syntax: BDAT <size> [LAST]\r\n501 5.5.4 Syntax: BDAT <size> [LAST]\r\n"
                         "501 5.5.4 Syntax: BDAT <size> [LAST]\r\n");
}

static void test_long_line_and_controls(void **state)
{
        struct harness *h = *state;
        char big[3000];

        ehlo(h, "250 PIPELINING\r\n");
        strbuf_reset(&h->client);
        memset(big, 'A', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        c(h, big);
        c(h, "\r\nNOOP\r\n");
        expect_client(h, "500 5.5.2 Line too long\r\n");
        expect_upstream(h, "NOOP\r\n");
        c(h, "DA\001TA\r\n");
        u(h, "250 ok\r\n");
        expect_client(h, "250 ok\r\n500 5.5.2 Syntax error: control characters in command\r\n");
        expect_upstream(h, "");
}

static void test_recipient_limit(void **state)
{
        struct harness *h = *state;

        h->rcpt_limit = 1;
        ehlo(h, "250 PIPELINING\r\n");
        strbuf_reset(&h->client);
        c(h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\nNOOP\r\n");
        expect_upstream(h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nNOOP\r\n");
        u(h, "250 ok\r\n250 ok\r\n250 noop\r\n");
        expect_client(h, "250 ok\r\n250 ok\r\n452 4.5.3 Too many recipients (at most 1)\r\n250 noop\r\n");
}

static void test_check_close(void **state)
{
        struct harness *h = *state;

        ehlo(h, "250 PIPELINING\r\n");
        strbuf_reset(&h->client);
        c(h, "MAIL FROM:<a@b>\r\nRCPT TO:<x@closeme.example>\r\n");
        assert_true(smtp_relay_closing(&h->r));
        expect_client(h, "421 4.7.0 refused\r\n");
}

static void test_upstream_errors(void **state)
{
        struct harness *h = *state;

        u(h, "220 mx\r\n");
        u(h, "250 nobody asked\r\n");
        assert_true(smtp_relay_closing(&h->r));
        assert_true(h->r.failed);
        assert_non_null(strstr(strbuf_str(&h->client), "421 4.4.2"));
}

static void test_upstream_354_out_of_place(void **state)
{
        struct harness *h = *state;

        u(h, "220 mx\r\n");
        c(h, "NOOP\r\n");
        u(h, "354 go ahead\r\n");
        assert_true(smtp_relay_closing(&h->r));
        assert_null(strstr(strbuf_str(&h->client), "354"));
}

static void test_upstream_malformed(void **state)
{
        struct harness *h = *state;

        u(h, "22x hello\r\n");
        assert_true(smtp_relay_closing(&h->r));
        expect_client(h, "421 4.4.2 The receiving mail server sent a malformed reply\r\n");
}

static void test_upstream_gone_mid_data(void **state)
{
        struct harness *h = *state;

        ehlo(h, "250 PIPELINING\r\n");
        c(h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
        u(h, "250 ok\r\n250 ok\r\n354 go\r\n");
        c(h, "partial\r\n.\r\n");
        strbuf_reset(&h->client);
        smtp_relay_upstream_gone(&h->r, "closed the connection");
        expect_client(h, "421 4.4.2 The receiving mail server closed the connection; try again later\r\n");
        assert_true(smtp_relay_closing(&h->r));
}

/* A filter placed between RCPT and DATA: the DATA never goes upstream. */
static void test_policy_at_data(void **state)
{
        struct harness *h = *state;

        ehlo(h, "250 PIPELINING\r\n");
        c(h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
        u(h, "250 ok\r\n250 ok\r\n");
        strbuf_reset(&h->client);
        strbuf_reset(&h->upstream);
        h->filtered = true;
        c(h, "DATA\r\n");
        expect_upstream(h, "");
        expect_client(h, "421 4.7.0 filtered\r\n");
        assert_true(smtp_relay_closing(&h->r));
        assert_int_equal(h->data_checks, 1);
}

/* ... nor a BDAT chunk, whose bytes are not read as commands. */
static void test_policy_at_bdat(void **state)
{
        struct harness *h = *state;

        ehlo(h, "250-PIPELINING\r\n250 CHUNKING\r\n");
        c(h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
        u(h, "250 ok\r\n250 ok\r\n");
        strbuf_reset(&h->client);
        strbuf_reset(&h->upstream);
        h->filtered = true;
        c(h, "BDAT 14 LAST\r\nQUIT\r\nRSET\r\n");
        expect_upstream(h, "");
        expect_client(h, "421 4.7.0 filtered\r\n");
        assert_true(smtp_relay_closing(&h->r));
}

/* A client that hangs up after its end of data, before the final reply:
 * the message is reported with data_done, so that it is counted. */
static void test_data_done_without_reply(void **state)
{
        struct harness *h = *state;

        ehlo(h, "250 PIPELINING\r\n");
        c(h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
        u(h, "250 ok\r\n250 ok\r\n354 go\r\n");
        c(h, "hello\r\n.\r\n");
        assert_int_equal(h->messages, 0);
        smtp_relay_release(&h->r);
        smtp_relay_init(&h->r, &h_ops, h); /* (teardown releases again) */
        assert_int_equal(h->messages, 1);
        assert_int_equal(h->last.final_reply, 0);
        assert_true(h->last.data_done);
}

static void test_unsolicited_421(void **state)
{
        struct harness *h = *state;

        u(h, "220 mx\r\n");
        strbuf_reset(&h->client);
        u(h, "421 4.4.2 mx timeout\r\n");
        expect_client(h, "421 4.4.2 mx timeout\r\n");
        assert_true(smtp_relay_closing(&h->r));
        assert_false(h->r.failed);
}

static void test_multiline_reply_relayed(void **state)
{
        struct harness *h = *state;

        u(h, "220-mx\r\n220-second\r\n220 third\r\n");
        expect_client(h, "220-mx\r\n220-second\r\n220 third\r\n");
        c(h, "HELP\r\n");
        /* A reply is given whole, once its last line has come. */
        u(h, "214-a\r\n");
        expect_client(h, "");
        u(h, "214 b\n");
        expect_client(h, "214-a\r\n214 b\r\n");
}

/* Finding 1: the relay and the upstream must agree on which command a line
 * is.  Postfix splits a command on any white space, takes the verb in any
 * case and skips leading blanks: every spelling it would take as MAIL or
 * RCPT is either counted (check() runs, the line goes out canonical) or
 * refused locally, never forwarded as something else. */
static void test_verb_spellings(void **state)
{
        struct harness *h = *state;
        static const struct {
                const char *line;  /* what the client sends */
                const char *up;    /* what the upstream gets ("": nothing) */
                const char *reply; /* the local reply's start, or NULL */
        } cases[] = {
                { " MAIL FROM:<a@vps.example>", "", "500 5.5.2 " },
                { "\tMAIL FROM:<a@vps.example>", "", "500 5.5.2 " },
                { "MAIL\tFROM:<a@vps.example>", "", "500 5.5.2 " },
                { "MAIL  FROM:<a@vps.example>", "", "500 5.5.2 " },
                { "MAIL FROM :<a@vps.example>", "", "501 5.5.4 " },
                { "MAIL FROM:  <a@vps.example>", "", "501 5.5.4 " },
                { "MAIL FROM:a@vps.example", "", "501 5.5.4 " },
                { "MAIL FROM:<a@vps.example>x", "", "501 5.5.4 " },
                { "MAIL FROM:<a@vps.example>  SIZE=10", "", "501 5.5.4 " },
                { "MAIL FROM:<a@vps.example> SIZE=10 =x", "", "501 5.5.4 " },
                { "MAIL FROM:<a b@vps.example>", "", "501 5.5.4 " },
                { "MAIL", "", "501 5.5.4 " },
                { "RCPT TO :<b@one.example>", "", "501 5.5.4 " },
                { "RCPT\tTO:<b@one.example>", "", "500 5.5.2 " },
                { " RCPT TO:<b@one.example>", "", "500 5.5.2 " },
                { "RCPT  TO:<b@one.example>", "", "500 5.5.2 " },
                { "MAIL: FROM:<a@vps.example>", "", "500 5.5.2 " },
                { "XYZZY frobnicate", "", "502 5.5.2 " },
                { "VRFY postmaster", "", "502 5.5.1 " },
                { "EXPN staff", "", "502 5.5.1 " },
                { "AUTH PLAIN AGFkYQBzZWNyZXQ=", "", "502 5.5.1 " },
                { "dXNlcg==", "", "500 5.5.2 " },
                { "QUIT now", "", "501 5.5.4 " },
                { "\x01", "", "500 5.5.2 " },
                { "", "", "500 5.5.2 " },
        };

        ehlo(h, "250-PIPELINING\r\n250 CHUNKING\r\n");
        strbuf_reset(&h->client);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char line[256];

                snprintf(line, sizeof(line), "%s\r\n", cases[i].line);
                h->r.local_errors = 0; /* more cases than the relay's error limit */
                c(h, line);
                if (strcmp(strbuf_str(&h->upstream), cases[i].up) != 0 ||
                    strncmp(strbuf_str(&h->client), cases[i].reply, strlen(cases[i].reply)) != 0)
                        fail_msg("%zu: %s: upstream got '%s', client got '%s'", i, cases[i].line,
                                 strbuf_str(&h->upstream), strbuf_str(&h->client));
                strbuf_reset(&h->upstream);
                strbuf_reset(&h->client);
        }
        assert_int_equal(h->mail_checks, 0);
        assert_int_equal(h->rcpt_checks, 0);
        assert_false(smtp_relay_closing(&h->r));
}

/* The legal spellings are recognised, counted, and re-serialised. */
static void test_verb_canonical(void **state)
{
        struct harness *h = *state;

        ehlo(h, "250-PIPELINING\r\n250 CHUNKING\r\n");
        strbuf_reset(&h->client);
        c(h, "mail from:<a@vps.example> size=10 BODY=8BITMIME \r\n");
        expect_upstream(h, "MAIL FROM:<a@vps.example> size=10 BODY=8BITMIME\r\n");
        assert_int_equal(h->mail_checks, 1);
        u(h, "250 ok\r\n");
        c(h, "rcpt to: <b@One.Example>\r\nRcPt To:<c@two.example> NOTIFY=NEVER\r\n");
        expect_upstream(h, "RCPT TO:<b@One.Example>\r\nRCPT TO:<c@two.example> NOTIFY=NEVER\r\n");
        assert_int_equal(h->rcpt_checks, 2);
        u(h, "250 ok\r\n250 ok\r\n");
        c(h, "noop hello there\r\nhelp\r\nrset\r\n");
        expect_upstream(h, "NOOP hello there\r\nHELP\r\nRSET\r\n");
        u(h, "250 ok\r\n214 see RFC 5321\r\n250 ok\r\n");
        c(h, "ehlo vps.example\r\n");
        expect_upstream(h, "EHLO vps.example\r\n");
        u(h, "250 mx\r\n");
        c(h, "MAIL FROM:<>\r\n");
        expect_upstream(h, "MAIL FROM:<>\r\n");
        assert_int_equal(h->mail_checks, 2);
        expect_client(h, "250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n214 see RFC 5321\r\n250 ok\r\n250 mx\r\n");
}

/* A second MAIL in an open transaction is refused locally: forwarded, the
 * upstream's 503 would end the relay's transaction while the upstream's
 * own goes on, and the message that follows would not be counted. */
static void test_nested_mail(void **state)
{
        struct harness *h = *state;

        ehlo(h, "250 PIPELINING\r\n");
        strbuf_reset(&h->client);
        c(h, "MAIL FROM:<a@b>\r\nMAIL FROM:<c@d>\r\nRCPT TO:<e@f>\r\nDATA\r\n");
        expect_upstream(h, "MAIL FROM:<a@b>\r\nRCPT TO:<e@f>\r\nDATA\r\n");
        u(h, "250 ok\r\n250 ok\r\n354 go\r\n");
        expect_client(h, "250 ok\r\n503 5.5.1 Error: nested MAIL command\r\n250 ok\r\n354 go\r\n");
        c(h, "x\r\n.\r\n");
        u(h, "250 queued\r\n");
        assert_int_equal(h->messages, 1);
        assert_int_equal(h->last.final_reply, 250);
        assert_string_equal(h->last.mail_from, "a@b");
}

/* Finding 2: a reply is capped in lines and bytes; past the cap the client
 * gets one 421 and none of the reply. */
static void test_reply_cap_lines(void **state)
{
        struct harness *h = *state;

        u(h, "220 mx\r\n");
        c(h, "NOOP\r\n");
        strbuf_reset(&h->client);
        for (int i = 0; i < 1000 && !smtp_relay_closing(&h->r); i++)
                smtp_relay_upstream(&h->r, "250-again\r\n", 11);
        assert_true(smtp_relay_closing(&h->r));
        expect_client(h, "421 4.4.2 The receiving mail server sent a reply that is too long\r\n");
}

static void test_reply_cap_bytes(void **state)
{
        struct harness *h = *state;
        char line[2000];

        u(h, "220 mx\r\n");
        c(h, "NOOP\r\n");
        strbuf_reset(&h->client);
        memset(line, 'x', sizeof(line));
        memcpy(line, "250-", 4);
        memcpy(line + sizeof(line) - 2, "\r\n", 2);
        for (int i = 0; i < 20 && !smtp_relay_closing(&h->r); i++)
                smtp_relay_upstream(&h->r, line, sizeof(line));
        assert_true(smtp_relay_closing(&h->r));
        expect_client(h, "421 4.4.2 The receiving mail server sent a reply that is too long\r\n");
}

/* A multi-line reply reaches the client whole, or not at all. */
static void test_reply_code_change(void **state)
{
        struct harness *h = *state;

        u(h, "220 mx\r\n");
        c(h, "NOOP\r\n");
        strbuf_reset(&h->client);
        u(h, "250-fine\r\n550 not fine\r\n");
        assert_true(smtp_relay_closing(&h->r));
        expect_client(h, "421 4.4.2 The receiving mail server sent a malformed reply\r\n");
}

/* Finding 3: a bare code as the last EHLO line stays a well-formed line. */
static void test_ehlo_bare_last_line(void **state)
{
        struct harness *h = *state;

        ehlo(h, "250-PIPELINING\r\n250\r\n");
        expect_client(h, "250-mx.example\r\n250-PIPELINING\r\n250\r\n");
}

static void test_ehlo_empty_line_before_starttls(void **state)
{
        struct harness *h = *state;

        ehlo(h, "250-PIPELINING\r\n250-\r\n250 STARTTLS\r\n");
        expect_client(h, "250-mx.example\r\n250-PIPELINING\r\n250\r\n");
}

/* Finding 4: bytes after the upstream's 220 to STARTTLS were sent before
 * TLS: read after the handshake, they would be taken as said inside it
 * (CVE-2011-0411).  A protocol error: 421, and no TLS. */
static void test_upstream_tls_pipelined_after_220(void **state)
{
        struct harness *h = *state;

        u(h, "220 mx ESMTP\r\n");
        c(h, "EHLO vps.example\r\n");
        u(h, "250-mx\r\n250 STARTTLS\r\n");
        strbuf_reset(&h->upstream);
        strbuf_reset(&h->client);
        u(h, "220 2.0.0 Ready to start TLS\r\n250-mx\r\n250 PIPELINING\r\n");
        assert_int_equal(h->tls_started, 0);
        assert_true(smtp_relay_closing(&h->r));
        assert_true(h->r.failed);
        expect_client(h, "421 4.4.2 The receiving mail server sent data after its reply to STARTTLS\r\n");
        expect_upstream(h, "");
}

static void test_upstream_tls_partial_after_220(void **state)
{
        struct harness *h = *state;

        u(h, "220 mx ESMTP\r\n");
        c(h, "EHLO vps.example\r\n");
        u(h, "250-mx\r\n250 STARTTLS\r\n");
        strbuf_reset(&h->client);
        u(h, "220 go\r\n2");
        assert_int_equal(h->tls_started, 0);
        assert_true(smtp_relay_closing(&h->r));
        expect_client(h, "421 4.4.2 The receiving mail server sent data after its reply to STARTTLS\r\n");
}

/* After a clean 220 the caller owns the connection: plain bytes fed before
 * smtp_relay_tls_ready() are a protocol error too. */
static void test_upstream_tls_bytes_before_ready(void **state)
{
        struct harness *h = *state;

        u(h, "220 mx ESMTP\r\n");
        c(h, "EHLO vps.example\r\n");
        u(h, "250-mx\r\n250 STARTTLS\r\n");
        strbuf_reset(&h->client);
        u(h, "220 go\r\n");
        assert_int_equal(h->tls_started, 1);
        u(h, "250 late\r\n");
        assert_true(smtp_relay_closing(&h->r));
        expect_client(h, "421 4.4.2 The receiving mail server sent data after its reply to STARTTLS\r\n");
}

/* Finding 5: a BDAT chunk over the upstream's SIZE is refused locally and
 * its bytes are read and dropped, never taken as commands (RFC 3030). */
static void test_bdat_over_size(void **state)
{
        struct harness *h = *state;
        char chunk[300];

        ehlo(h, "250-PIPELINING\r\n250-SIZE 100\r\n250 CHUNKING\r\n");
        strbuf_reset(&h->client);
        c(h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
        expect_upstream(h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
        /* 150 bytes that look like commands */
        snprintf(chunk, sizeof(chunk), "BDAT 150 LAST\r\n%s",
                 "RSET\r\nMAIL FROM:<x@y>\r\nRCPT TO:<z@w>\r\nQUIT\r\n"
                 "................................................................................"
                 "..........................");
        assert_int_equal(strlen(chunk) - strlen("BDAT 150 LAST\r\n"), 150);
        c(h, chunk);
        expect_upstream(h, "");
        c(h, "RSET\r\n");
        expect_upstream(h, "RSET\r\n");
        u(h, "250 ok\r\n250 ok\r\n250 reset\r\n");
        expect_client(h, "250 ok\r\n250 ok\r\n552 5.3.4 Message size exceeds fixed maximum message size\r\n"
                         "250 reset\r\n");
        assert_int_equal(h->mail_checks, 1);
        assert_int_equal(h->rcpt_checks, 1);
}

/* The sum of the chunks counts: a later one over the limit is refused, and
 * so is every chunk after it in that transaction. */
static void test_bdat_cumulative_size(void **state)
{
        struct harness *h = *state;
        char in[512], sixty[61], fifty[51];

        memset(sixty, 'a', 60);
        sixty[60] = '\0';
        memset(fifty, 'b', 50);
        fifty[50] = '\0';
        ehlo(h, "250-PIPELINING\r\n250-SIZE 100\r\n250 CHUNKING\r\n");
        strbuf_reset(&h->client);
        snprintf(in, sizeof(in), "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 60\r\n%sBDAT 50\r\n%s"
                 "BDAT 10 LAST\r\nRSET\r\nQUITRSET\r\n", sixty, fifty);
        c(h, in);
        snprintf(in, sizeof(in), "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 60\r\n%sRSET\r\n", sixty);
        expect_upstream(h, in);
        u(h, "250 ok\r\n250 ok\r\n250 60 octets\r\n250 reset\r\n");
        expect_client(h, "250 ok\r\n250 ok\r\n250 60 octets\r\n"
                         "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
                         "552 5.3.4 Message size exceeds fixed maximum message size\r\n250 reset\r\n");
        assert_int_equal(h->messages, 1);
        assert_int_equal(h->last.final_reply, 0);
        assert_int_equal(h->last.size, 60);
}

/* Without SIZE (or SIZE 0: no fixed limit) any chunk size goes. */
static void test_bdat_no_size(void **state)
{
        struct harness *h = *state;

        ehlo(h, "250-SIZE 0\r\n250 CHUNKING\r\n");
        strbuf_reset(&h->client);
        c(h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 3 LAST\r\nabc");
        expect_upstream(h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 3 LAST\r\nabc");
}

/* ---- every limit of the relay at its edge: N passes, N+1 does not ---- */

/* "<verb> xxx...\r\n" of exactly <total> bytes into <buf>. */
static const char *line_of(char *buf, size_t total, const char *verb)
{
        size_t v = strlen(verb);

        assert_true(total > v + 3);
        memcpy(buf, verb, v);
        buf[v] = ' ';
        memset(buf + v + 1, 'x', total - v - 3);
        memcpy(buf + total - 2, "\r\n", 3);
        assert_int_equal(strlen(buf), total);
        return buf;
}

/* A command line of SMTP_LINE_MAX bytes (CRLF included) goes upstream; one
 * byte more is refused locally, whether it comes whole or in two reads. */
static void test_command_line_max_edge(void **state)
{
        struct harness *h = *state;
        char line[SMTP_LINE_MAX + 8], head[SMTP_LINE_MAX + 8];

        ehlo(h, "250 PIPELINING\r\n");
        strbuf_reset(&h->client);
        c(h, line_of(line, SMTP_LINE_MAX, "NOOP"));
        expect_upstream(h, line);
        u(h, "250 ok\r\n");
        expect_client(h, "250 ok\r\n");
        c(h, line_of(line, SMTP_LINE_MAX + 1, "NOOP"));
        expect_upstream(h, "");
        expect_client(h, "500 5.5.2 Line too long\r\n");
        /* The same two lines, their LF in a later read. */
        line_of(line, SMTP_LINE_MAX, "NOOP");
        snprintf(head, sizeof(head), "%.*s", SMTP_LINE_MAX - 1, line);
        c(h, head);
        expect_upstream(h, "");
        assert_int_equal(h->pending_len, SMTP_LINE_MAX - 1); /* held: it may still end in time */
        c(h, "\n");
        expect_upstream(h, line);
        u(h, "250 ok\r\n");
        expect_client(h, "250 ok\r\n");
        line_of(line, SMTP_LINE_MAX + 1, "NOOP");
        snprintf(head, sizeof(head), "%.*s", SMTP_LINE_MAX, line);
        c(h, head);
        /* Too long already: read and dropped, not held for the caller. */
        assert_int_equal(h->pending_len, 0);
        c(h, "\n");
        expect_upstream(h, "");
        expect_client(h, "500 5.5.2 Line too long\r\n");
        assert_false(smtp_relay_closing(&h->r));
}

/* A reply line of SMTP_LINE_MAX bytes reaches the client; one byte more
 * ends the session, whole or in two reads. */
static void test_reply_line_max_edge(void **state)
{
        struct harness *h = *state;
        char line[SMTP_LINE_MAX + 8];

        u(h, "220 mx\r\n");
        c(h, "NOOP\r\n");
        strbuf_reset(&h->client);
        u(h, line_of(line, SMTP_LINE_MAX, "250"));
        expect_client(h, line);
        /* SMTP_LINE_MAX - 1 bytes without their LF: the relay waits. */
        c(h, "NOOP\r\n");
        line_of(line, SMTP_LINE_MAX, "250");
        assert_int_equal(smtp_relay_upstream(&h->r, line, SMTP_LINE_MAX - 1), 0);
        assert_false(smtp_relay_closing(&h->r));
        u(h, line);
        expect_client(h, line);
        c(h, "NOOP\r\n");
        u(h, line_of(line, SMTP_LINE_MAX + 1, "250"));
        assert_true(smtp_relay_closing(&h->r));
        expect_client(h, "421 4.4.2 The receiving mail server sent a reply line that is too long\r\n");
}

static void test_reply_line_max_edge_split(void **state)
{
        struct harness *h = *state;
        char line[SMTP_LINE_MAX + 8];

        u(h, "220 mx\r\n");
        c(h, "NOOP\r\n");
        strbuf_reset(&h->client);
        /* SMTP_LINE_MAX bytes and still no LF: too long already. */
        line_of(line, SMTP_LINE_MAX + 1, "250");
        smtp_relay_upstream(&h->r, line, SMTP_LINE_MAX);
        assert_true(smtp_relay_closing(&h->r));
        expect_client(h, "421 4.4.2 The receiving mail server sent a reply line that is too long\r\n");
}

/* The upstream answers NOOP with a reply of <lines> lines of <len> bytes
 * each (CRLF included) but the last, which makes it <total> bytes. */
static void multiline_reply(struct harness *h, unsigned lines, size_t len, size_t total)
{
        struct strbuf reply = { 0 };
        char line[SMTP_LINE_MAX + 8];

        c(h, "NOOP\r\n");
        strbuf_reset(&h->client);
        for (unsigned i = 0; i + 1 < lines; i++) {
                line_of(line, len, "250");
                line[3] = '-';
                strbuf_printf(&reply, "%s", line);
        }
        assert_true(total - reply.len <= SMTP_LINE_MAX);
        strbuf_printf(&reply, "%s", line_of(line, total - reply.len, "250"));
        assert_int_equal(reply.len, total);
        u(h, strbuf_str(&reply));
        strbuf_free(&reply);
}

/* SMTP_REPLY_LINES_MAX lines in one reply reach the client; one more ends
 * the session. */
static void test_reply_lines_max_edge(void **state)
{
        struct harness *h = *state;

        u(h, "220 mx\r\n");
        multiline_reply(h, SMTP_REPLY_LINES_MAX, 8, SMTP_REPLY_LINES_MAX * 8);
        assert_false(smtp_relay_closing(&h->r));
        assert_int_equal(h->client.len, SMTP_REPLY_LINES_MAX * 8);
        multiline_reply(h, SMTP_REPLY_LINES_MAX + 1, 8, (SMTP_REPLY_LINES_MAX + 1) * 8);
        assert_true(smtp_relay_closing(&h->r));
        expect_client(h, "421 4.4.2 The receiving mail server sent a reply that is too long\r\n");
}

/* A reply of SMTP_REPLY_MAX bytes (every line and CRLF) reaches the
 * client; one byte more ends the session. */
static void test_reply_bytes_max_edge(void **state)
{
        struct harness *h = *state;

        u(h, "220 mx\r\n");
        multiline_reply(h, 5, 2000, SMTP_REPLY_MAX);
        assert_false(smtp_relay_closing(&h->r));
        assert_int_equal(h->client.len, SMTP_REPLY_MAX);
        multiline_reply(h, 5, 2000, SMTP_REPLY_MAX + 1);
        assert_true(smtp_relay_closing(&h->r));
        expect_client(h, "421 4.4.2 The receiving mail server sent a reply that is too long\r\n");
}

/* Local 5xx replies: the session survives 19, the 20th ends it. */
static void test_local_errors_edge(void **state)
{
        struct harness *h = *state;

        ehlo(h, "250 PIPELINING\r\n");
        strbuf_reset(&h->client);
        for (int i = 0; i < 19; i++)
                c(h, "VRFY root\r\n");
        assert_false(smtp_relay_closing(&h->r));
        c(h, "NOOP\r\n");
        expect_upstream(h, "NOOP\r\n");
        u(h, "250 ok\r\n");
        assert_false(smtp_relay_closing(&h->r));
        strbuf_reset(&h->client);
        c(h, "EXPN staff\r\n");
        assert_true(smtp_relay_closing(&h->r));
        expect_client(h, "502 5.5.1 EXPN is not available through this provider's SMTP proxy\r\n"
                         "421 4.7.0 Too many errors, closing the connection\r\n");
}

/* Pipelining: SMTP_PENDING_MAX - 2 commands await their replies at most;
 * the next is read only once a reply came. */
static void test_pipeline_edge(void **state)
{
        struct harness *h = *state;
        struct strbuf want = { 0 };
        const unsigned most = SMTP_PENDING_MAX - 2;

        ehlo(h, "250 PIPELINING\r\n");
        strbuf_reset(&h->client);
        for (unsigned i = 0; i < most + 5; i++)
                c(h, "NOOP\r\n");
        for (unsigned i = 0; i < most; i++)
                strbuf_printf(&want, "NOOP\r\n");
        expect_upstream(h, strbuf_str(&want));
        assert_int_equal(h->pending_len, 5 * 6);
        u(h, "250 ok\r\n");
        expect_upstream(h, "NOOP\r\n");
        assert_int_equal(h->pending_len, 4 * 6);
        strbuf_free(&want);
}

/* BDAT under the upstream's SIZE: a message of exactly SIZE bytes (in one
 * chunk or two) goes; SIZE + 1 is refused. */
static void test_bdat_size_edge(void **state)
{
        struct harness *h = *state;
        char in[512], hundred[101], sixty[61], forty[41], one01[102];

        memset(hundred, 'a', 100);
        hundred[100] = '\0';
        memset(sixty, 'b', 60);
        sixty[60] = '\0';
        memset(forty, 'c', 40);
        forty[40] = '\0';
        memset(one01, 'd', 101);
        one01[101] = '\0';
        ehlo(h, "250-PIPELINING\r\n250-SIZE 100\r\n250 CHUNKING\r\n");
        strbuf_reset(&h->client);
        snprintf(in, sizeof(in), "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 100 LAST\r\n%s", hundred);
        c(h, in);
        expect_upstream(h, in);
        u(h, "250 ok\r\n250 ok\r\n250 sent\r\n");
        expect_client(h, "250 ok\r\n250 ok\r\n250 sent\r\n");
        snprintf(in, sizeof(in), "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 60\r\n%sBDAT 40 LAST\r\n%s",
                 sixty, forty);
        c(h, in);
        expect_upstream(h, in);
        u(h, "250 ok\r\n250 ok\r\n250 60\r\n250 sent\r\n");
        expect_client(h, "250 ok\r\n250 ok\r\n250 60\r\n250 sent\r\n");
        snprintf(in, sizeof(in), "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 101 LAST\r\n%sRSET\r\n", one01);
        c(h, in);
        expect_upstream(h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRSET\r\n");
        u(h, "250 ok\r\n250 ok\r\n250 reset\r\n");
        expect_client(h, "250 ok\r\n250 ok\r\n552 5.3.4 Message size exceeds fixed maximum message size\r\n"
                         "250 reset\r\n");
}

static int setup_tls(void **state)
{
        struct harness *h = calloc(1, sizeof(*h));

        smtp_relay_init(&h->r, &h_ops_tls, h);
        *state = h;
        return 0;
}

/* Opportunistic TLS upstream: the client's EHLO reply is the one given
 * inside TLS; the client never sees the relay's STARTTLS or its 220. */
static void test_upstream_tls(void **state)
{
        struct harness *h = *state;

        u(h, "220 mx ESMTP\r\n");
        expect_client(h, "220 mx ESMTP\r\n");
        c(h, "EHLO vps.example\r\nMAIL FROM:<a@b>\r\n");
        /* The MAIL waits: nothing more goes out before TLS is settled. */
        expect_upstream(h, "EHLO vps.example\r\n");
        u(h, "250-mx\r\n250-STARTTLS\r\n250 PIPELINING\r\n");
        expect_upstream(h, "STARTTLS\r\n");
        expect_client(h, "");
        u(h, "220 2.0.0 Ready to start TLS\r\n");
        assert_int_equal(h->tls_started, 1);
        expect_client(h, "");
        smtp_relay_tls_ready(&h->r);
        expect_upstream(h, "EHLO vps.example\r\n");
        u(h, "250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n");
        expect_client(h, "250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n");
        expect_upstream(h, "MAIL FROM:<a@b>\r\n");
        assert_int_equal(h->r.tls, SMTP_TLS_ON);
}

static void test_upstream_tls_declined(void **state)
{
        struct harness *h = *state;

        u(h, "220 mx\r\n");
        c(h, "EHLO v\r\nNOOP\r\n");
        u(h, "250-mx\r\n250 STARTTLS\r\n");
        expect_upstream(h, "EHLO v\r\nSTARTTLS\r\n");
        u(h, "454 4.7.0 TLS not available due to local problem\r\n");
        assert_int_equal(h->tls_started, 0);
        /* The first EHLO reply, less STARTTLS, then the held NOOP. */
        assert_non_null(strstr(strbuf_str(&h->client), "250 mx\r\n"));
        assert_null(strstr(strbuf_str(&h->client), "454"));
        expect_upstream(h, "NOOP\r\n");
        assert_int_equal(h->r.tls, SMTP_TLS_DECLINED);
}

static void test_upstream_tls_not_offered(void **state)
{
        struct harness *h = *state;

        u(h, "220 mx\r\n");
        c(h, "EHLO v\r\n");
        u(h, "250-mx\r\n250 PIPELINING\r\n");
        expect_upstream(h, "EHLO v\r\n");
        assert_int_equal(h->r.tls, SMTP_TLS_DECLINED);
        assert_false(smtp_relay_waiting(&h->r));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_ehlo_loses_starttls, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ehlo_starttls_last, setup, teardown),
                cmocka_unit_test_setup_teardown(test_starttls_refused_in_order, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pipelined_message, setup, teardown),
                cmocka_unit_test_setup_teardown(test_data_refused_keeps_commands, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bare_lf_normalised, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cr_split_across_reads, setup, teardown),
                cmocka_unit_test_setup_teardown(test_dot_stuffing_kept, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bdat, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bdat_refused_without_chunking, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bdat_bad_size, setup, teardown),
                cmocka_unit_test_setup_teardown(test_long_line_and_controls, setup, teardown),
                cmocka_unit_test_setup_teardown(test_recipient_limit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_check_close, setup, teardown),
                cmocka_unit_test_setup_teardown(test_upstream_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_upstream_354_out_of_place, setup, teardown),
                cmocka_unit_test_setup_teardown(test_upstream_malformed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_upstream_gone_mid_data, setup, teardown),
                cmocka_unit_test_setup_teardown(test_policy_at_data, setup, teardown),
                cmocka_unit_test_setup_teardown(test_policy_at_bdat, setup, teardown),
                cmocka_unit_test_setup_teardown(test_data_done_without_reply, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unsolicited_421, setup, teardown),
                cmocka_unit_test_setup_teardown(test_multiline_reply_relayed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_upstream_tls, setup_tls, teardown),
                cmocka_unit_test_setup_teardown(test_upstream_tls_declined, setup_tls, teardown),
                cmocka_unit_test_setup_teardown(test_upstream_tls_not_offered, setup_tls, teardown),
                cmocka_unit_test_setup_teardown(test_verb_spellings, setup, teardown),
                cmocka_unit_test_setup_teardown(test_verb_canonical, setup, teardown),
                cmocka_unit_test_setup_teardown(test_nested_mail, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reply_cap_lines, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reply_cap_bytes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reply_code_change, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ehlo_bare_last_line, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ehlo_empty_line_before_starttls, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bdat_over_size, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bdat_cumulative_size, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bdat_no_size, setup, teardown),
                cmocka_unit_test_setup_teardown(test_command_line_max_edge, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reply_line_max_edge, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reply_line_max_edge_split, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reply_lines_max_edge, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reply_bytes_max_edge, setup, teardown),
                cmocka_unit_test_setup_teardown(test_local_errors_edge, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pipeline_edge, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bdat_size_edge, setup, teardown),
                cmocka_unit_test_setup_teardown(test_upstream_tls_pipelined_after_220, setup_tls, teardown),
                cmocka_unit_test_setup_teardown(test_upstream_tls_partial_after_220, setup_tls, teardown),
                cmocka_unit_test_setup_teardown(test_upstream_tls_bytes_before_ready, setup_tls, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
