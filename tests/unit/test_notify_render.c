/* Customer notifications: every kind in every shipped language rendered
 * from the shipped templates and composed into a full message, compared
 * with tests/notify/golden/ (UPDATE_GOLDEN=1 rewrites them); template
 * errors with their FILE:LINE:COL; the MIME rules (header injection,
 * RFC 2047 subjects, quoted-printable line lengths, the boundary). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "notify/mime.h"
#include "notify/template.h"

#define TEMPLATES PC_SOURCE_ROOT "/etc/templates"
#define GOLDEN PC_SOURCE_ROOT "/tests/notify/golden"
#define FROM "Example Hosting Support <noc@example.net>"
#define TO "ada@example.org"
#define ABUSE_TO "abuse@example.net"
#define T 1773482700 /* Sat, 14 Mar 2026 10:05:00 +0000 */
#define DAY 86400
#define STR_(x) #x
#define STR(x) STR_(x)

#define COMMON(kind) "\"vps\": \"vps-201\", \"site\": \"milano\", \"event\": \"" kind "\", " \
        "\"addresses\": [\"198.51.100.10/32\", \"2001:db8:201::/64\"]"

struct fixture {
        const char *name; /* golden file stem */
        const char *kind;
        int64_t id;       /* the notification's */
        const char *payload;
};

static const struct fixture fixtures[] = {
        { "exception.granted", "exception.granted", 101,
          "{" COMMON("exception.granted") ", \"id\": 7, \"service\": \"smtp\", \"ticket\": 1, "
          "\"by\": \"alice\", \"reason\": \"Verifica dell'attività sospetta — àèìòù\", "
          "\"created\": " STR(T) ", \"until\": 1776074700}" },
        { "exception.revoked", "exception.revoked", 102,
          "{" COMMON("exception.revoked") ", \"id\": 8, "
          "\"service\": \"source-prefix:192.0.2.64/29\", \"ticket\": null, \"by\": \"alice\", "
          "\"reason\": \"abuse report <#7> & \\\"spam\\\" from 'them'\", \"created\": 1773309900, "
          "\"until\": null}" },
        { "filter.placed", "filter.placed", 103,
          "{" COMMON("filter.placed") ", \"id\": 12, \"direction\": \"egress\", \"scope\": \"tcp/25\", "
          "\"incident\": 42, \"by\": \"portcullisd\", "
          "\"reason\": \"Verifica dell'attività sospetta — àèìòù\", \"created\": " STR(T) ", "
          "\"until\": 1773569100}" },
        { "filter.placed-all", "filter.placed", 104,
          "{" COMMON("filter.placed") ", \"id\": 13, \"direction\": \"ingress\", \"scope\": \"all\", "
          "\"incident\": null, \"by\": \"alice\", \"reason\": null, \"created\": " STR(T) ", "
          "\"until\": null}" },
        { "filter.lifted", "filter.lifted", 105,
          "{" COMMON("filter.lifted") ", \"id\": 11, \"direction\": \"both\", "
          "\"scope\": \"service:smtp\", \"incident\": null, \"by\": \"alice\", "
          "\"reason\": \"the customer fixed the mail server\", \"created\": 1773396300, "
          "\"until\": 1774001100}" },
        { "vps.suspended", "vps.suspended", 106,
          "{" COMMON("vps.suspended") ", \"id\": 14, \"incident\": 42, \"by\": \"alice\", "
          "\"reason\": \"Attacco DDoS in corso — verificato dal NOC\", \"created\": " STR(T) "}" },
        { "vps.unsuspended", "vps.unsuspended", 107,
          "{" COMMON("vps.unsuspended") ", \"id\": 14, \"incident\": null, \"by\": \"alice\", "
          "\"reason\": null, \"created\": 1773223500}" },
        { "incident.opened", "incident.opened", 108,
          "{" COMMON("incident.opened") ", \"id\": 42, \"kind\": \"scan\", "
          "\"first_seen\": 1773482520, \"last_seen\": 1773482620, \"count\": 1187, "
          "\"evidence\": {\"detector\": \"fast-scan\", \"score\": 6.9, \"failed_first_contacts\": 1187, "
          "\"answered_first_contacts\": 2, \"pending_first_contacts\": 3, \"distinct_hosts\": 254, "
          "\"distinct_ports\": 1, \"shape\": \"horizontal\", \"first_to_last_ms\": 1200, "
          "\"sample\": [\"192.0.2.131:22/tcp\", \"192.0.2.130:22/tcp\"]}}" },
        { "incident.opened-spoof", "incident.opened", 109,
          "{" COMMON("incident.opened") ", \"id\": 43, \"kind\": \"spoof\", "
          "\"first_seen\": 1773482520, \"last_seen\": 1773482640, \"count\": 3, "
          "\"evidence\": {\"kind\": \"ipv4-source\", \"claimed_source\": \"192.0.2.99\", "
          "\"destination\": \"203.0.113.77\", \"interface\": \"tap201\", \"protocol\": 6, "
          "\"length\": 60, \"headers\": \"4500003c\"}}" },
        { "incident.opened-blocked-use", "incident.opened", 110,
          "{" COMMON("incident.opened") ", \"id\": 44, \"kind\": \"blocked-use\", "
          "\"first_seen\": 1773482520, \"last_seen\": 1773482640, \"count\": 37, "
          "\"evidence\": {\"service\": \"smtp\", \"proto\": \"tcp\", \"port\": 25, "
          "\"direction\": \"egress\", \"packets\": 1500}}" },
        { "exception.expiring", "exception.expiring", 109,
          "{" COMMON("exception.expiring") ", \"id\": 7, \"service\": \"smtp\", \"ticket\": 1, "
          "\"by\": \"alice\", \"reason\": \"transactional mail\", "
          "\"created\": " STR(T) ", \"until\": 1776074700}" },
        { "incident.digest", "incident.digest", 110,
          "{" COMMON("incident.digest") ", \"kind\": \"scan\", \"episodes\": 1187, "
          "\"first_seen\": " STR(T) ", \"last_seen\": 1773486300}" },
        /* the detectors of step 9, as src/agent/abuse.c writes them */
        { "incident.opened-flood", "incident.opened", 111,
          "{" COMMON("incident.opened") ", \"id\": 45, \"kind\": \"flood\", "
          "\"first_seen\": 1773482520, \"last_seen\": 1773482520, \"count\": 1, "
          "\"evidence\": {\"detector\": \"flood-out\", \"destination\": \"192.0.2.77\", \"protocol\": 17, "
          "\"threshold_pps\": 20000, \"threshold_mbps\": 1000, \"sample\": 16, \"length\": 1470}}" },
        { "incident.opened-reflection", "incident.opened", 112,
          "{" COMMON("incident.opened") ", \"id\": 46, \"kind\": \"reflection\", "
          "\"first_seen\": 1773482520, \"last_seen\": 1773482520, \"count\": 1, "
          "\"evidence\": {\"detector\": \"reflection\", \"port\": \"udp/53\", "
          "\"sample_destination\": \"192.0.2.99\", \"threshold_mbps\": 8, \"sample\": 16, \"length\": 1200}}" },
        { "incident.opened-attacked", "incident.opened", 113,
          "{" COMMON("incident.opened") ", \"id\": 47, \"kind\": \"attacked\", "
          "\"first_seen\": 1773482520, \"last_seen\": 1773482520, \"count\": 1, "
          "\"evidence\": {\"detector\": \"flood-in\", \"sample_source\": \"203.0.113.66\", \"protocol\": 6, "
          "\"threshold_pps\": 20000, \"threshold_mbps\": 1000, \"sample\": 16, \"length\": 60}}" },
        /* a detector's filter: the incident it answers, in words */
        { "filter.placed-scan", "filter.placed", 114,
          "{" COMMON("filter.placed") ", \"id\": 15, \"direction\": \"egress\", \"scope\": \"all\", "
          "\"incident\": 42, \"by\": \"portcullisd\", \"reason\": \"port scanning (fast, horizontal) "
          "(incident #42, first step of the ladder)\", \"created\": " STR(T) ", \"until\": 1773486300, "
          "\"incident_kind\": \"scan\", \"evidence\": {\"detector\": \"fast-scan\", "
          "\"failed_first_contacts\": 5, \"answered_first_contacts\": 0, \"distinct_hosts\": 5, "
          "\"distinct_ports\": 1, \"shape\": \"horizontal\", \"confirming_first_contacts\": 20, "
          "\"sample\": [\"192.0.2.131:80/tcp\", \"[2001:db8::1]:80/tcp\"]}}" },
        { "vps.suspended-flood", "vps.suspended", 115,
          "{" COMMON("vps.suspended") ", \"id\": 16, \"incident\": 45, \"by\": \"portcullisd\", "
          "\"reason\": \"flooding many destinations\", \"created\": " STR(T) ", "
          "\"incident_kind\": \"flood\", \"evidence\": {\"detector\": \"flood-out-spread\", "
          "\"sample_destination\": \"198.51.100.200\", \"threshold_pps\": 100000, \"threshold_mbps\": 5000}}" },
        { "vps.terminated", "vps.terminated", 116,
          "{" COMMON("vps.terminated") ", \"id\": 15, \"incident\": 43, \"by\": \"portcullisd\", "
          "\"reason\": \"IP spoofing: sent packets with source 203.0.113.9 (incident #43)\", "
          "\"created\": " STR(T) ", \"terminated\": true, "
          "\"why\": \"an attempt to circumvent: again after a suspension for it was lifted\", "
          "\"kind\": \"spoof\", \"first_seen\": 1773482520, \"last_seen\": 1773482520, \"count\": 3, "
          "\"evidence\": {\"kind\": \"ipv4-source\", \"claimed_source\": \"203.0.113.9\", "
          "\"destination\": \"198.51.100.7\", \"interface\": \"vps102\", \"protocol\": 17, "
          "\"length\": 40, \"headers\": \"4500\"}}" },
        { "vps.unterminated", "vps.unterminated", 117,
          "{" COMMON("vps.unterminated") ", \"id\": 15, \"incident\": 43, \"by\": \"carol\", "
          "\"reason\": \"reviewed: a neighbour's ARP request, not spoofing (ticket 812)\", "
          "\"created\": 1773223500, \"terminated\": true}" },
        { "ticket.received", "ticket.received", 121,
          "{" COMMON("ticket.received") ", \"id\": 3, \"ticket\": 3, \"service\": \"smtp\", "
          "\"ports\": \"tcp/465,tcp/587\", \"duration\": 7776000, \"state\": \"open\", "
          "\"text\": \"Fatture ai clienti dal gestionale — SPF e DKIM configurati\", "
          "\"evidence\": \"https://example.org/spf\", \"by\": \"ada\", \"opened_by\": \"ada\", "
          "\"opened\": " STR(T) ", \"created\": " STR(T) ", \"exception\": null}" },
        { "ticket.approved", "ticket.approved", 122,
          "{" COMMON("ticket.approved") ", \"id\": 9, \"service\": \"smtp\", \"ports\": \"tcp/587\", "
          "\"ticket\": 3, \"by\": \"sam\", \"reason\": \"invoices; SPF and DKIM checked\", "
          "\"created\": " STR(T) ", \"until\": 1781258700}" },
        { "ticket.approved-whole", "ticket.approved", 123,
          "{" COMMON("ticket.approved") ", \"id\": 10, \"service\": \"vpn\", \"ticket\": 4, "
          "\"by\": \"sam\", \"reason\": \"ticket #4 approved\", \"created\": " STR(T) ", \"until\": null}" },
        { "ticket.denied", "ticket.denied", 124,
          "{" COMMON("ticket.denied") ", \"id\": 5, \"ticket\": 5, \"service\": \"bittorrent\", "
          "\"ports\": null, \"state\": \"open\", \"text\": \"linux ISOs\", \"by\": \"sam\", "
          "\"reason\": \"we cannot verify that the files are yours to share <a href=x>\", "
          "\"created\": " STR(T) "}" },
};

static const char *const langs[] = { "en", "it" };

/* ---- helpers ----------------------------------------------------------- */

static char *slurp(const char *path)
{
        FILE *f = fopen(path, "rb");
        char *s;
        long n;

        if (f == NULL)
                return NULL;
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        s = malloc((size_t)n + 1);
        assert_non_null(s);
        assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
        s[n] = '\0';
        fclose(f);
        return s;
}

static void spit(const char *path, const char *text, size_t len)
{
        FILE *f = fopen(path, "wb");

        assert_non_null(f);
        assert_int_equal(fwrite(text, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
}

static void spits(const char *path, const char *text)
{
        spit(path, text, strlen(text));
}

/* Compares <got> with the golden file <name>, or rewrites it. */
static void golden(const char *name, const char *got)
{
        char path[512];
        char *want;

        snprintf(path, sizeof(path), "%s/%s", GOLDEN, name);
        if (getenv("UPDATE_GOLDEN") != NULL && strcmp(getenv("UPDATE_GOLDEN"), "1") == 0) {
                mkdir(PC_SOURCE_ROOT "/tests/notify", 0755);
                mkdir(GOLDEN, 0755);
                spit(path, got, strlen(got));
                return;
        }
        want = slurp(path);
        if (want == NULL)
                fail_msg("%s is missing (run with UPDATE_GOLDEN=1)", path);
        if (strcmp(want, got) != 0) {
                size_t i = 0;

                while (want[i] == got[i])
                        i++;
                fail_msg("%s differs at byte %zu: want \"%.60s\", got \"%.60s\"", path, i,
                         want + i, got + i);
        }
        free(want);
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Decodes quoted-printable <s> (<n> bytes) into a new string. */
static char *qp_decode(const char *s, size_t n)
{
        char *out = malloc(n + 1);
        size_t w = 0;

        assert_non_null(out);
        for (size_t i = 0; i < n; i++) {
                if (s[i] != '=') {
                        out[w++] = s[i];
                        continue;
                }
                if (i + 2 < n + 1 && s[i + 1] == '\r' && s[i + 2] == '\n') {
                        i += 2;
                        continue;
                }
                assert_true(i + 2 < n);
                assert_true(hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0);
                out[w++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
                i += 2;
        }
        out[w] = '\0';
        return out;
}

static int b64val(char c)
{
        static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *p = strchr(a, c);

        return c != '\0' && p != NULL ? (int)(p - a) : -1;
}

/* Decodes one encoded-word "=?utf-8?X?...?=" of <n> bytes, appending to
 * <out>; false if it is not one. */
static bool word_decode(const char *w, size_t n, char *out, size_t *len)
{
        const char *text;
        size_t tn;

        if (n < 12 || strncasecmp(w, "=?utf-8?", 8) != 0 || w[9] != '?' ||
            memcmp(w + n - 2, "?=", 2) != 0)
                return false;
        text = w + 10;
        tn = n - 12;
        if (w[8] == 'Q' || w[8] == 'q') {
                for (size_t i = 0; i < tn; i++) {
                        if (text[i] == '_') {
                                out[(*len)++] = ' ';
                        } else if (text[i] == '=') {
                                assert_true(i + 2 < tn);
                                out[(*len)++] = (char)(hexval(text[i + 1]) * 16 + hexval(text[i + 2]));
                                i += 2;
                        } else {
                                out[(*len)++] = text[i];
                        }
                }
                return true;
        }
        assert_true(w[8] == 'B' || w[8] == 'b');
        assert_int_equal(tn % 4, 0);
        for (size_t i = 0; i < tn; i += 4) {
                int v[4];

                for (int j = 0; j < 4; j++)
                        v[j] = text[i + j] == '=' ? 0 : b64val(text[i + j]);
                for (int j = 0; j < 4; j++)
                        assert_true(v[j] >= 0);
                out[(*len)++] = (char)(v[0] << 2 | v[1] >> 4);
                if (text[i + 2] != '=')
                        out[(*len)++] = (char)((v[1] & 15) << 4 | v[2] >> 2);
                if (text[i + 3] != '=')
                        out[(*len)++] = (char)((v[2] & 3) << 6 | v[3]);
        }
        return true;
}

/* The unfolded, decoded value of header <name> in message <m>, or NULL:
 * encoded-words decoded, the whitespace between two of them dropped. */
static char *header_decode(const char *m, const char *name)
{
        size_t nl = strlen(name), u = 0, len = 0;
        const char *p = m, *end, *s;
        bool prev_word = false;
        char *unf, *out;

        while (!(strncmp(p, name, nl) == 0 && p[nl] == ':')) {
                p = strstr(p, "\r\n");
                if (p == NULL || (p[2] == '\r' && p[3] == '\n'))
                        return NULL;
                p += 2;
        }
        p += nl + 1;
        for (end = p; !(end[0] == '\r' && end[1] == '\n' && end[2] != ' ' && end[2] != '\t');
             end++)
                ;
        unf = malloc((size_t)(end - p) + 1);
        out = malloc((size_t)(end - p) + 1);
        assert_non_null(unf);
        assert_non_null(out);
        for (const char *c = p; c < end; c++) {
                if (c[0] == '\r' && c[1] == '\n') {
                        c++;
                        continue;
                }
                unf[u++] = *c;
        }
        unf[u] = '\0';
        s = unf[0] == ' ' ? unf + 1 : unf;
        while (*s != '\0') {
                size_t ws = strspn(s, " \t"), n;
                const char *tok = s + ws;
                bool word;

                n = strcspn(tok, " \t");
                word = n >= 12 && strncmp(tok, "=?", 2) == 0 && strncmp(tok + n - 2, "?=", 2) == 0;
                if (!(word && prev_word)) {
                        memcpy(out + len, s, ws);
                        len += ws;
                }
                if (n == 0)
                        break;
                if (word) {
                        assert_true(word_decode(tok, n, out, &len));
                } else {
                        memcpy(out + len, tok, n);
                        len += n;
                }
                prev_word = word;
                s = tok + n;
        }
        out[len] = '\0';
        free(unf);
        return out;
}

/* Converts LF line ends of <s> to CRLF, in a new string. */
static char *crlf(const char *s)
{
        char *out = malloc(2 * strlen(s) + 1);
        size_t w = 0;

        assert_non_null(out);
        for (size_t i = 0; s[i] != '\0'; i++) {
                if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
                        out[w++] = '\r';
                out[w++] = s[i];
        }
        out[w] = '\0';
        return out;
}

/* Checks what every composed message must be: CRLF only, header lines of
 * at most 78 characters, quoted-printable lines of at most 76, the
 * boundary only where it belongs, parts that decode back to <text> and
 * <html>, and a Subject that decodes back to <subject>. */
static void check_message(const char *m, const char *subject, const char *text, const char *html)
{
        const char *body = strstr(m, "\r\n\r\n"), *b, *line;
        char boundary[128], delim[140], *got;
        size_t n;

        assert_non_null(body);
        for (size_t i = 0; m[i] != '\0'; i++) {
                if (m[i] == '\n')
                        assert_true(i > 0 && m[i - 1] == '\r');
                if (m[i] == '\r')
                        assert_int_equal(m[i + 1], '\n');
        }
        for (line = m; line < body; line = strstr(line, "\r\n") + 2)
                assert_true(strstr(line, "\r\n") - line <= PC_MIME_LINE_MAX);
        for (line = body + 4; *line != '\0'; line = strstr(line, "\r\n") + 2)
                assert_true(strstr(line, "\r\n") - line <= PC_MIME_QP_LINE_MAX);
        got = header_decode(m, "Subject");
        assert_non_null(got);
        assert_string_equal(got, subject);
        free(got);
        if (html == NULL) {
                char *want = crlf(text), *dec;

                dec = qp_decode(body + 4, strlen(body + 4) - 2);
                assert_string_equal(dec, want);
                free(dec);
                free(want);
                return;
        }
        b = strstr(m, "boundary=\"");
        assert_non_null(b);
        b += strlen("boundary=\"");
        n = strcspn(b, "\"");
        assert_true(n > 0 && n < sizeof(boundary));
        memcpy(boundary, b, n);
        boundary[n] = '\0';
        snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
        /* Exactly three delimiters: two part openers and the closer. */
        n = 0;
        for (const char *p = strstr(body, delim); p != NULL; p = strstr(p + 1, delim))
                n++;
        assert_int_equal(n, 3);
        assert_non_null(strstr(m, delim));
        for (int part = 0; part < 2; part++) {
                const char *start = strstr(body, delim), *hdr_end, *stop;
                char *dec, *want;

                for (int k = 0; k < part; k++)
                        start = strstr(start + 1, delim);
                hdr_end = strstr(start, "\r\n\r\n") + 4;
                stop = strstr(hdr_end, delim);
                assert_non_null(strstr(start, part == 0 ? "Content-Type: text/plain; charset=utf-8"
                                                        : "Content-Type: text/html; charset=utf-8"));
                /* The boundary is not in the part, with or without dashes. */
                assert_null(memmem(hdr_end, (size_t)(stop - hdr_end), boundary, strlen(boundary)));
                dec = qp_decode(hdr_end, (size_t)(stop - hdr_end));
                want = crlf(part == 0 ? text : html);
                assert_string_equal(dec, want);
                free(dec);
                free(want);
        }
        assert_non_null(strstr(m, "MIME-Version: 1.0\r\n"));
}

/* Renders and composes fixture <f> in <lang> into <out>. */
static void compose(const struct fixture *f, const char *lang, struct strbuf *out,
                    char **ret_subject, char **ret_text, char **ret_html)
{
        char *subject = NULL, *text = NULL, *html = NULL, err[512] = "", domain[64], msgid[128];
        int r;

        r = pc_template_render(TEMPLATES, lang, "en", f->kind, f->payload, f->id, T, &subject,
                               &text, &html, err, sizeof(err));
        if (r < 0)
                fail_msg("%s.%s: %s", f->name, lang, err);
        assert_int_equal(pc_mime_domain(FROM, domain, sizeof(domain)), 0);
        assert_int_equal(pc_mime_message_id(f->id, T, domain, msgid, sizeof(msgid)), 0);
        assert_int_equal(pc_mime_compose(FROM, TO, NULL, subject, text, html, msgid, T, out), 0);
        *ret_subject = subject;
        *ret_text = text;
        *ret_html = html;
}

/* ---- the shipped templates -------------------------------------------- */

static void test_shipped_check(void **state)
{
        static const char *const en[] = { "en", NULL };
        char err[512] = "";

        (void)state;
        if (pc_template_check(TEMPLATES, NULL, err, sizeof(err)) < 0)
                fail_msg("%s", err);
        assert_int_equal(pc_template_check(TEMPLATES, en, err, sizeof(err)), 0);
}

static void test_golden_all(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++)
                for (size_t l = 0; l < sizeof(langs) / sizeof(langs[0]); l++) {
                        struct strbuf out = { 0 };
                        char *subject, *text, *html, name[128];

                        compose(&fixtures[i], langs[l], &out, &subject, &text, &html);
                        check_message(strbuf_str(&out), subject, text, html);
                        snprintf(name, sizeof(name), "%s.%s.eml", fixtures[i].name, langs[l]);
                        golden(name, strbuf_str(&out));
                        /* Every template leaves no placeholder behind. */
                        assert_null(strstr(text, "{{"));
                        assert_null(strstr(html, "{{"));
                        free(subject);
                        free(text);
                        free(html);
                        strbuf_free(&out);
                }
}

static void test_golden_abuse(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
                struct strbuf out = { 0 };
                char *subject = NULL, *text = NULL, err[512] = "", msgid[128], name[128];

                if (strchr(fixtures[i].name, '-') != NULL)
                        continue; /* one per kind */
                if (pc_template_render_abuse(TEMPLATES, fixtures[i].payload, fixtures[i].id, T,
                                             &subject, &text, err, sizeof(err)) < 0)
                        fail_msg("abuse %s: %s", fixtures[i].name, err);
                assert_int_equal(pc_mime_message_id(fixtures[i].id, T, "example.net", msgid,
                                                    sizeof(msgid)), 0);
                assert_int_equal(pc_mime_compose(FROM, ABUSE_TO, NULL, subject, text, NULL,
                                                 msgid, T, &out), 0);
                check_message(strbuf_str(&out), subject, text, NULL);
                assert_non_null(strstr(text, "\"event\": \""));
                snprintf(name, sizeof(name), "abuse.%s.eml", fixtures[i].name);
                golden(name, strbuf_str(&out));
                free(subject);
                free(text);
                strbuf_free(&out);
        }
}

/* The facts a customer needs are in both languages' texts. */
/* Renders fixture <name> in <lang> and checks that its text part says
 * <want> (and its HTML part too, if <html_want>). */
static void says(const char *name, const char *lang, const char *want, const char *html_want)
{
        struct strbuf out = { 0 };
        char *subject, *text, *html;
        const struct fixture *f = NULL;

        for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++)
                if (strcmp(fixtures[i].name, name) == 0)
                        f = &fixtures[i];
        assert_non_null(f);
        compose(f, lang, &out, &subject, &text, &html);
        if (strstr(text, want) == NULL)
                fail_msg("%s (%s) does not say \"%s\":\n%s", name, lang, want, text);
        if (html_want != NULL && strstr(html, html_want) == NULL)
                fail_msg("%s (%s) HTML does not say \"%s\":\n%s", name, lang, html_want, html);
        free(subject);
        free(text);
        free(html);
        strbuf_free(&out);
}

/* Step 9's evidence in words: each detector's, in the notice of its
 * incident and in the action that answers it. */
static void test_evidence_words(void **state)
{
        (void)state;
        says("incident.opened-flood", "en",
             "Your VPS 198.51.100.10 sent traffic to 192.0.2.77 faster than 20,000 packets per second or 1,000 "
             "Mbit/s. Traffic like this is a denial-of-service attack", NULL);
        says("incident.opened-flood", "it", "verso 192.0.2.77 oltre 20.000 pacchetti al secondo", NULL);
        says("incident.opened-reflection", "en",
             "A service of your VPS 198.51.100.10 on udp/53 sent replies at more than 8 Mbit/s (for example to "
             "192.0.2.99).", NULL);
        says("incident.opened-reflection", "it", "sulla porta udp/53 ha inviato risposte oltre 8 Mbit/s", NULL);
        says("incident.opened-attacked", "en", "(for example from 203.0.113.66): it is the target of a "
             "denial-of-service attack.", "You have done nothing wrong.");
        says("incident.opened-attacked", "it", "Lei non ha fatto nulla di sbagliato.", NULL);
        says("filter.placed-scan", "en",
             "What we saw: a network scan from the VPS: 5 connection attempts that nobody answered, to 5 "
             "different addresses on the same few ports (for example 192.0.2.131:80/tcp, [2001:db8::1]:80/tcp).",
             "What we saw: a network scan from the VPS: 5 connection attempts");
        says("filter.placed-scan", "it", "Cosa abbiamo rilevato: una scansione della rete dal VPS: 5 tentativi",
             NULL);
        says("vps.suspended-flood", "en",
             "What we saw: traffic from the VPS to many destinations (for example 198.51.100.200) faster than "
             "100,000 packets per second or 5,000 Mbit/s in all: a denial-of-service attack.", NULL);
        says("vps.suspended-flood", "it", "oltre 100.000 pacchetti al secondo o 5.000 Mbit/s in totale", NULL);
}

static void test_facts(void **state)
{
        struct strbuf out = { 0 };
        char *subject, *text, *html;

        (void)state;
        compose(&fixtures[7], "en", &out, &subject, &text, &html); /* the scan */
        assert_non_null(strstr(text, "On 2026-03-14 at 10:02 UTC, your VPS 198.51.100.10 had made 1,187 "
                                     "connection attempts that nobody answered, to 254 different addresses "
                                     "on the same few ports, for example 192.0.2.131:22/tcp, 192.0.2.130:22/tcp."));
        assert_non_null(strstr(subject, "PC-N000108"));
        assert_non_null(strstr(text, "198.51.100.10, 2001:db8:201::/64"));
        free(subject);
        free(text);
        free(html);
        strbuf_free(&out);
        compose(&fixtures[7], "it", &out, &subject, &text, &html);
        assert_non_null(strstr(text, "aveva effettuato 1.187 tentativi di connessione senza risposta, verso 254 "
                                     "indirizzi diversi sulle stesse poche porte"));
        free(subject);
        free(text);
        free(html);
        strbuf_free(&out);
        compose(&fixtures[2], "it", &out, &subject, &text, &html); /* filter.placed */
        assert_non_null(strstr(text, "Il filtro blocca il traffico in uscita sulla porta TCP 25."));
        assert_non_null(strstr(text, "fino al 2026-03-15 10:05 UTC"));
        assert_non_null(strstr(text, "Verifica dell'attività sospetta — àèìòù"));
        assert_non_null(strstr(html, "Verifica dell&#39;attività sospetta — àèìòù"));
        free(subject);
        free(text);
        free(html);
        strbuf_free(&out);
        compose(&fixtures[3], "en", &out, &subject, &text, &html); /* filter.placed, all */
        assert_non_null(strstr(text, "The filter blocks all incoming traffic."));
        assert_non_null(strstr(text, "Duration:    no end"));
        assert_null(strstr(text, "Reason:"));
        free(subject);
        free(text);
        free(html);
        strbuf_free(&out);
        compose(&fixtures[3], "it", &out, &subject, &text, &html);
        assert_non_null(strstr(text, "Durata:         senza scadenza"));
        free(subject);
        free(text);
        free(html);
        strbuf_free(&out);
        compose(&fixtures[1], "en", &out, &subject, &text, &html); /* revoked, escaping */
        assert_non_null(strstr(text, "abuse report <#7> & \"spam\" from 'them'"));
        assert_non_null(strstr(html, "abuse report &lt;#7&gt; &amp; &quot;spam&quot; from "
                                     "&#39;them&#39;"));
        assert_non_null(strstr(text, "from the addresses 192.0.2.64/29"));
        free(subject);
        free(text);
        free(html);
        strbuf_free(&out);
}

/* ---- the template language ------------------------------------------- */

#define PAYLOAD \
        "{\"vps\": \"vps-1\", \"site\": \"s\", \"event\": \"filter.placed\", " \
        "\"addresses\": [\"203.0.113.10/32\", \"2001:db8::1/128\", \"2001:db8:1::/64\"], " \
        "\"id\": 5, \"direction\": \"egress\", \"scope\": \"tcp/8000-8100\", " \
        "\"incident\": 0, \"by\": \"a\", \"reason\": \"x <y>\\nBcc: z\", \"created\": 0, " \
        "\"until\": null}"

/* Expands <tpl> as a filter.placed template and returns the body (and the
 * subject into <subject> if not NULL). */
static char *expand(const char *tpl, enum pc_template_format fmt, const char *lang,
                    const char *payload, char **subject)
{
        char *body = NULL, *s = NULL, err[512] = "";

        if (pc_template_expand("t", tpl, strlen(tpl), "filter.placed", fmt, lang, payload, 123,
                               T, fmt == PC_TEMPLATE_TEXT ? &s : NULL, &body, err,
                               sizeof(err)) < 0)
                fail_msg("%s", err);
        if (subject != NULL)
                *subject = s;
        else
                free(s);
        return body;
}

static void test_language(void **state)
{
        char *b, *s;

        (void)state;
        b = expand("Subject: {{vps}} {{reason}}\n\n{{reason}}|{{addresses_text}}|{{address}}|"
                   "{{reference}}|{{date}}|{{until_text}}|{{created_text}}|"
                   "{{scope_proto}} {{scope_port}}|{{ scope_ports }}|{{#incident}}inc "
                   "{{incident}}{{/incident}}|{{#until}}U{{/until}}|{{#scope_all}}A{{/scope_all}}"
                   "|{{direction_egress}}",
                   PC_TEMPLATE_TEXT, "en", PAYLOAD, &s);
        assert_string_equal(s, "vps-1 x <y> Bcc: z");
        assert_string_equal(b, "x <y>\nBcc: z|203.0.113.10, 2001:db8::1, 2001:db8:1::/64|"
                               "203.0.113.10|PC-N000123|Sat, 14 Mar 2026 10:05:00 +0000|no end|"
                               "1970-01-01 00:00 UTC|TCP 8000-8100|tcp/8000-8100|inc 0|||egress");
        free(b);
        free(s);
        b = expand("<p>{{reason}}</p>{{until_text}}", PC_TEMPLATE_HTML, "it", PAYLOAD, NULL);
        assert_string_equal(b, "<p>x &lt;y&gt;\nBcc: z</p>senza scadenza");
        free(b);
        /* CRLF templates render with LF; unknown languages get English words. */
        b = expand("Subject: x\r\n\r\na\r\n{{until_text}}\r\n", PC_TEMPLATE_TEXT, "fr", PAYLOAD,
                   NULL);
        assert_string_equal(b, "a\nno end\n");
        free(b);
}

static void test_sections(void **state)
{
        const char *tpl = "<{{#reason}}R{{/reason}}{{#scope}}S{{/scope}}{{#until}}U{{/until}}"
                          "{{#incident}}I{{#by}}B{{/by}}{{/incident}}>";
        char *b;

        (void)state;
        b = expand(tpl, PC_TEMPLATE_HTML, "en",
                   "{\"reason\": \"\", \"until\": false, \"incident\": 0, \"by\": [1]}", NULL);
        assert_string_equal(b, "<IB>");
        free(b);
        b = expand(tpl, PC_TEMPLATE_HTML, "en",
                   "{\"reason\": \"r\", \"until\": 5, \"incident\": null, \"by\": []}", NULL);
        assert_string_equal(b, "<RU>");
        free(b);
        b = expand("{{created_text}}{{scope_port}}", PC_TEMPLATE_HTML, "en", "{}", NULL);
        assert_string_equal(b, "");
        free(b);
}

static void test_counts(void **state)
{
        char err[256], *b = NULL;
        const char *tpl = "{{count_text}} {{evidence.failed_first_contacts_text}} {{first_seen_text}} "
                          "{{last_seen_day}} {{#kind_other}}{{kind_other}}{{/kind_other}}";

        (void)state;
        assert_int_equal(pc_template_expand("t", tpl, strlen(tpl), "incident.opened",
                                            PC_TEMPLATE_HTML, "it",
                                            "{\"count\": 1234567, \"evidence\": "
                                            "{\"failed_first_contacts\": 999}, \"first_seen\": 1773482520, "
                                            "\"last_seen\": 1773482620, \"kind\": \"odd\"}",
                                            1, T, NULL, &b, err, sizeof(err)), 0);
        assert_string_equal(b, "1.234.567 999 10:02 UTC 2026-03-14 odd");
        free(b);
        assert_int_equal(pc_template_expand("t", tpl, strlen(tpl), "incident.opened",
                                            PC_TEMPLATE_HTML, "en",
                                            "{\"count\": -1000, \"evidence\": "
                                            "{\"failed_first_contacts\": 100}, \"kind\": \"scan\"}",
                                            1, T, NULL, &b, err, sizeof(err)), 0);
        assert_string_equal(b, "-1,000 100   ");
        free(b);
}

static void test_fallback(void **state)
{
        const struct fixture *f = &fixtures[5];
        char *s1, *t1, *h1, *s2, *t2, *h2, err[256];

        (void)state;
        assert_int_equal(pc_template_render(TEMPLATES, "fr", "en", f->kind, f->payload, 1, T,
                                            &s1, &t1, &h1, err, sizeof(err)), 0);
        assert_int_equal(pc_template_render(TEMPLATES, "../it", "it", f->kind, f->payload, 1, T,
                                            &s2, &t2, &h2, err, sizeof(err)), 0);
        assert_non_null(strstr(s1, "has been suspended"));
        assert_non_null(strstr(s2, "è stato sospeso"));
        free(s1);
        free(t1);
        free(h1);
        free(s2);
        free(t2);
        free(h2);
        assert_int_equal(pc_template_render(TEMPLATES, "it", "en", "filter.frobbed", f->payload,
                                            1, T, &s1, &t1, &h1, err, sizeof(err)), -EINVAL);
        assert_int_equal(pc_template_render(TEMPLATES, "it", "en", f->kind, "[1]", 1, T, &s1,
                                            &t1, &h1, err, sizeof(err)), -EINVAL);
        assert_string_equal(err, "the payload is not a JSON object");
        assert_int_equal(pc_template_render(TEMPLATES, "it", "en", f->kind, "{\"a\":", 1, T, &s1,
                                            &t1, &h1, err, sizeof(err)), -EINVAL);
        assert_int_equal(strncmp(err, "payload:1:", 10), 0);
        assert_int_equal(pc_template_render("/nonexistent", "it", "en", f->kind, f->payload, 1,
                                            T, &s1, &t1, &h1, err, sizeof(err)), -ENOENT);
        assert_string_equal(err, "/nonexistent/en/vps.suspended.txt:1:1: cannot open the "
                                 "template: No such file or directory");
}

static void test_keys(void **state)
{
        size_t n = 0;

        (void)state;
        assert_string_equal(pc_template_key("filter.placed", 0), "vps");
        assert_null(pc_template_key("filter.frobbed", 0));
        while (pc_template_key("incident.opened", n) != NULL)
                n++;
        assert_true(n > 30);
        for (n = 0; pc_template_key("abuse", n) != NULL; n++)
                if (strcmp(pc_template_key("abuse", n), "payload_json") == 0)
                        break;
        assert_non_null(pc_template_key("abuse", n));
}

/* ---- template errors -------------------------------------------------- */

struct bad {
        const char *kind;
        enum pc_template_format fmt;
        const char *text;
        int error;
        const char *message; /* after "t:" */
};

static const struct bad bads[] = {
        { "filter.placed", PC_TEMPLATE_TEXT, "Subject: hi\n\nHello {{vsp}}\n", -EINVAL,
          "3:7: unknown placeholder '{{vsp}}' for filter.placed (did you mean 'vps'?)" },
        { "filter.placed", PC_TEMPLATE_TEXT, "Subject: hi\n\nàè {{service}}\n", -EINVAL,
          "3:4: unknown placeholder '{{service}}' for filter.placed" },
        { "vps.suspended", PC_TEMPLATE_HTML, "<p>\n  {{#reason}}x\n", -EINVAL,
          "2:3: '{{#reason}}' is never closed" },
        { "vps.suspended", PC_TEMPLATE_HTML, "{{#reason}}{{#by}}x{{/reason}}{{/by}}", -EINVAL,
          "1:20: '{{/reason}}' does not close '{{#by}}' opened at 1:12" },
        { "vps.suspended", PC_TEMPLATE_HTML, "a\nb {{/reason}}", -EINVAL,
          "2:3: '{{/reason}}' closes no section" },
        { "vps.suspended", PC_TEMPLATE_TEXT, "Hello\n\nbody", -EINVAL,
          "1:1: the first line must be the 'Subject: ...' line" },
        { "vps.suspended", PC_TEMPLATE_TEXT, "Subject:   \n\nbody", -EINVAL,
          "1:12: the Subject line is empty" },
        { "vps.suspended", PC_TEMPLATE_TEXT, "Subject: x\nbody", -EINVAL,
          "2:1: expected a blank line after the Subject line, then the body" },
        { "vps.suspended", PC_TEMPLATE_TEXT, "Subject: x", -EINVAL,
          "2:1: expected a blank line after the Subject line, then the body" },
        { "vps.suspended", PC_TEMPLATE_TEXT, "Subject: {{#reason}}x\n\n{{/reason}}", -EINVAL,
          "1:10: '{{#reason}}' is never closed on the Subject line" },
        { "vps.suspended", PC_TEMPLATE_TEXT, "Subject: x\n\nàè\xff", -EINVAL,
          "3:3: invalid UTF-8 (byte 0xff)" },
        { "vps.suspended", PC_TEMPLATE_TEXT, "Subject: x\n\n\xc3\xa0\xe0\x80\xaf", -EINVAL,
          "3:2: invalid UTF-8 (byte 0xe0)" },
        { "vps.suspended", PC_TEMPLATE_TEXT, "Subject: x\n\n\xed\xa0\x80", -EINVAL,
          "3:1: invalid UTF-8 (byte 0xed)" },
        { "vps.suspended", PC_TEMPLATE_TEXT, "Subject: x\n\nab\x01", -EINVAL,
          "3:3: control character U+0001 is not allowed" },
        { "vps.suspended", PC_TEMPLATE_TEXT, "Subject: x\n\nab\rc", -EINVAL,
          "3:3: control character U+000D is not allowed" },
        { "vps.suspended", PC_TEMPLATE_TEXT, "Subject: x\n\nab\xc2\x85", -EINVAL,
          "3:3: control character U+0085 is not allowed" },
        { "vps.suspended", PC_TEMPLATE_HTML, "a {{vps\n}}", -EINVAL,
          "1:3: '{{' is not closed by '}}' on the same line" },
        { "vps.suspended", PC_TEMPLATE_HTML, "a {{ }}", -EINVAL, "1:3: empty placeholder '{{ }}'" },
        { "vps.suspended", PC_TEMPLATE_HTML, "a {{v ps}}", -EINVAL,
          "1:7: unexpected 'p' in a placeholder" },
        { "vps.suspended", PC_TEMPLATE_HTML, "a {{{vps}}}", -EINVAL,
          "1:5: unexpected '{' in a placeholder" },
        { "vps.suspended", PC_TEMPLATE_HTML, "{{a..b}}", -EINVAL,
          "1:1: invalid placeholder name 'a..b'" },
        { "incident.opened", PC_TEMPLATE_HTML, "x {{evidence}}", -EINVAL,
          "1:3: 'evidence' is an object: use it as a section '{{#evidence}}...{{/evidence}}' "
          "or name one of its fields" },
        { "incident.opened", PC_TEMPLATE_HTML, "{{evidence.prot}}", -EINVAL,
          "1:1: unknown placeholder '{{evidence.prot}}' for incident.opened (did you mean "
          "'evidence.proto'?)" },
        { "abuse", PC_TEMPLATE_TEXT, "Subject: x\n\n{{until_text}}", -EINVAL,
          "3:1: unknown placeholder '{{until_text}}' for abuse" },
        { "vps.suspended", PC_TEMPLATE_HTML,
          "{{#vps}}{{#vps}}{{#vps}}{{#vps}}{{#vps}}{{#vps}}{{#vps}}{{#vps}}\n  {{#vps}}", -EINVAL,
          "2:3: sections nested deeper than 8" },
};

static void test_errors(void **state)
{
        char err[512], want[600];

        (void)state;
        for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
                const struct bad *b = &bads[i];
                int r;

                err[0] = '\0';
                r = pc_template_expand("t", b->text, strlen(b->text), b->kind, b->fmt, "en", NULL,
                                       0, 0, NULL, NULL, err, sizeof(err));
                snprintf(want, sizeof(want), "t:%s", b->message);
                if (r != b->error || strcmp(err, want) != 0)
                        fail_msg("bad template %zu: got %d \"%s\", want %d \"%s\"", i, r, err,
                                 b->error, want);
                /* A payload does not change the verdict. */
                r = pc_template_expand("t", b->text, strlen(b->text), b->kind, b->fmt, "en", "{}",
                                       0, 0, NULL, NULL, err, sizeof(err));
                assert_int_equal(r, b->error);
        }
}

/* Writes a complete, minimal, valid template tree for "en" under <dir>. */
static void tree_write(const char *dir)
{
        char path[512];

        snprintf(path, sizeof(path), "%s/en", dir);
        assert_int_equal(mkdir(path, 0755), 0);
        for (size_t k = 0; pc_template_kinds[k] != NULL; k++) {
                snprintf(path, sizeof(path), "%s/en/%s.txt", dir, pc_template_kinds[k]);
                spits(path, "Subject: {{vps}}\n\n{{reference}}\n");
                snprintf(path, sizeof(path), "%s/en/%s.html", dir, pc_template_kinds[k]);
                spits(path, "<p>{{vps}}</p>\n");
        }
        snprintf(path, sizeof(path), "%s/en/abuse.txt", dir);
        spits(path, "Subject: {{event}}\n\n{{payload_json}}\n");
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static void test_check_files(void **state)
{
        static const char *const en[] = { "en", NULL };
        static const char *const bad_lang[] = { "en", "../etc", NULL };
        char dir[] = "/tmp/pc-templates-XXXXXX", path[600], want[700], err[512];
        char *big;

        (void)state;
        assert_non_null(mkdtemp(dir));
        tree_write(dir);
        assert_int_equal(pc_template_check(dir, en, err, sizeof(err)), 0);

        /* "it" is checked by default, and missing. */
        assert_int_equal(pc_template_check(dir, NULL, err, sizeof(err)), -ENOENT);
        snprintf(want, sizeof(want), "%s/it/exception.granted.txt:1:1: cannot open the template: "
                 "No such file or directory", dir);
        assert_string_equal(err, want);
        assert_int_equal(pc_template_check(dir, bad_lang, err, sizeof(err)), -EINVAL);

        /* An error in one file names that file. */
        snprintf(path, sizeof(path), "%s/en/filter.lifted.html", dir);
        spits(path, "<p>\n<b>{{#until}}</b>\n");
        assert_int_equal(pc_template_check(dir, en, err, sizeof(err)), -EINVAL);
        snprintf(want, sizeof(want), "%s:2:4: '{{#until}}' is never closed", path);
        assert_string_equal(err, want);
        spits(path, "<p>ok</p>\n");

        /* Too big. */
        big = malloc(PC_TEMPLATE_FILE_MAX + 10);
        assert_non_null(big);
        memcpy(big, "Subject: x\n\n", 12);
        memset(big + 12, 'a', PC_TEMPLATE_FILE_MAX - 2);
        snprintf(path, sizeof(path), "%s/en/vps.unsuspended.txt", dir);
        spit(path, big, PC_TEMPLATE_FILE_MAX + 10);
        free(big);
        assert_int_equal(pc_template_check(dir, en, err, sizeof(err)), -EFBIG);
        snprintf(want, sizeof(want), "%s:1:1: the template is %d bytes, more than the limit of %d",
                 path, PC_TEMPLATE_FILE_MAX + 10, PC_TEMPLATE_FILE_MAX);
        assert_string_equal(err, want);

        /* Missing abuse copy; a directory where a file should be. */
        assert_int_equal(remove(path), 0);
        assert_int_equal(mkdir(path, 0755), 0);
        assert_int_equal(pc_template_check(dir, en, err, sizeof(err)), -EINVAL);
        snprintf(want, sizeof(want), "%s:1:1: the template is not a regular file", path);
        assert_string_equal(err, want);
        assert_int_equal(rmdir(path), 0);
        spits(path, "Subject: x\n\n");
        snprintf(path, sizeof(path), "%s/en/abuse.txt", dir);
        assert_int_equal(remove(path), 0);
        assert_int_equal(pc_template_check(dir, en, err, sizeof(err)), -ENOENT);
        snprintf(want, sizeof(want), "%s:1:1: cannot open the template: No such file or directory",
                 path);
        assert_string_equal(err, want);
        assert_int_equal(nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS), 0);
}

/* ---- MIME ------------------------------------------------------------- */

static void test_injection(void **state)
{
        static const char *const bad_headers[][4] = {
                /* from, to, cc, subject */
                { "a@example.net", "b@example.org", NULL, "hi\r\nBcc: evil@example.com" },
                { "a@example.net", "b@example.org", NULL, "hi\nBcc: evil@example.com" },
                { "a@example.net", "b@example.org", NULL, "hi\rthere" },
                { "a@example.net", "b@example.org\r\nBcc: evil@example.com", NULL, "hi" },
                { "a@example.net\n", "b@example.org", NULL, "hi" },
                { "a@example.net", "b@example.org", "c@example.org\r\nBcc: x@y.z", "hi" },
                { "Eve\r\n <a@example.net>", "b@example.org", NULL, "hi" },
                { "a@example.net", "b@example.org", NULL, "nul\x01" },
                { "a@example.net", "b@example.org", NULL, "bad \xff utf-8" },
                { "a@example.net", "not an address", NULL, "hi" },
                { "a@example.net", "<b@example.org", NULL, "hi" },
                { "a@example.net", "b@example.org>", NULL, "hi" },
                { "a@example.net", "", NULL, "hi" },
                { "a@example.net", "b@exa mple.org", NULL, "hi" },
                { "\"unterminated <a@example.net>", "b@example.org", NULL, "hi" },
        };
        struct strbuf out = { 0 };

        (void)state;
        strbuf_printf(&out, "kept");
        for (size_t i = 0; i < sizeof(bad_headers) / sizeof(bad_headers[0]); i++) {
                int r = pc_mime_compose(bad_headers[i][0], bad_headers[i][1], bad_headers[i][2],
                                        bad_headers[i][3], "text", "<p>html</p>",
                                        "<portcullis.N1.2@example.net>", T, &out);

                if (r != -EINVAL)
                        fail_msg("case %zu: got %d", i, r);
                assert_string_equal(strbuf_str(&out), "kept");
        }
        assert_int_equal(pc_mime_compose("a@example.net", "b@example.org", NULL, "hi", "t", NULL,
                                         "<x@y>\r\nBcc: evil@example.com", T, &out), -EINVAL);
        assert_int_equal(pc_mime_compose("a@example.net", "b@example.org", NULL, "hi", "t", NULL,
                                         "no-brackets@example.net", T, &out), -EINVAL);
        assert_int_equal(pc_mime_compose("a@example.net", "b@example.org", NULL, "hi", "\xc3",
                                         NULL, "<x@y>", T, &out), -EINVAL);
        assert_string_equal(strbuf_str(&out), "kept");
        strbuf_free(&out);
}

static void test_headers(void **state)
{
        struct strbuf out = { 0 };
        const char *m;
        char *v;

        (void)state;
        assert_int_equal(pc_mime_compose("\"Rossi, Mario\" <m@example.it>",
                                         "Società Rete <rete@example.it>, plain@example.org",
                                         "  ", "è", "t", NULL, "<x@y.example>", T, &out), 0);
        m = strbuf_str(&out);
        assert_string_equal(m, "Date: Sat, 14 Mar 2026 10:05:00 +0000\r\n"
                                    "From: \"Rossi, Mario\" <m@example.it>\r\n"
                                    "To: =?utf-8?Q?Societ=C3=A0_Rete?= <rete@example.it>, "
                                    "plain@example.org\r\n"
                                    "Subject: =?utf-8?B?w6g=?=\r\n"
                                    "Message-ID: <x@y.example>\r\n"
                                    "Auto-Submitted: auto-generated\r\n"
                                    "MIME-Version: 1.0\r\n"
                                    "Content-Type: text/plain; charset=utf-8\r\n"
                                    "Content-Transfer-Encoding: quoted-printable\r\n"
                                    "\r\n"
                                    "t\r\n");
        assert_null(strstr(m, "Cc:"));
        strbuf_free(&out);

        /* A long ASCII subject folds at spaces; "=?" forces encoding. */
        assert_int_equal(pc_mime_compose("a@example.net", "b@example.org", "c@example.org",
                                         "[PC-N000001] one two three four five six seven eight "
                                         "nine ten eleven twelve thirteen fourteen", "t", NULL,
                                         "<x@y>", T, &out), 0);
        m = strbuf_str(&out);
        assert_non_null(strstr(m, "Cc: c@example.org\r\n"));
        assert_non_null(strstr(m, "Subject: [PC-N000001] one two three four five six seven "
                                  "eight nine ten eleven\r\n twelve thirteen fourteen\r\n"));
        check_message(m, "[PC-N000001] one two three four five six seven eight nine ten eleven "
                         "twelve thirteen fourteen", "t", NULL);
        strbuf_free(&out);
        assert_int_equal(pc_mime_compose("a@example.net", "b@example.org", NULL, "a =?x?= b",
                                         "t", NULL, "<x@y>", T, &out), 0);
        v = header_decode(strbuf_str(&out), "Subject");
        assert_string_equal(v, "a =?x?= b");
        assert_non_null(strstr(strbuf_str(&out), "Subject: =?utf-8?"));
        free(v);
        strbuf_free(&out);
}

static void test_rfc2047(void **state)
{
        static const char *const subjects[] = {
                "[PC-N000123] Verifica dell'attività sospetta — àèìòù",
                "[PC-N000123] Il Suo VPS vps-201 è stato sospeso: Verifica dell'attività sospetta "
                "— àèìòù àèìòù àèìòù àèìòù àèìòù àèìòù àèìòù àèìòù",
                "日本語の件名はBエンコーディングを使います。日本語の件名はBエンコーディングを使います。",
                "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀",
                "  leading and trailing spaces  ",
                "tab\there",
                "averyveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryverylongword",
                "under_score = equals ? question",
        };
        struct strbuf out = { 0 };

        (void)state;
        for (size_t i = 0; i < sizeof(subjects) / sizeof(subjects[0]); i++) {
                assert_int_equal(pc_mime_compose("a@example.net", "b@example.org", NULL,
                                                 subjects[i], "t", "<p>h</p>", "<x@y>", T, &out),
                                 0);
                check_message(strbuf_str(&out), subjects[i], "t", "<p>h</p>");
                strbuf_reset(&out);
        }
        /* The CJK subject is shorter in B; Italian in Q. */
        assert_int_equal(pc_mime_compose("a@example.net", "b@example.org", NULL, subjects[2], "t",
                                         NULL, "<x@y>", T, &out), 0);
        assert_non_null(strstr(strbuf_str(&out), "Subject: =?utf-8?B?"));
        strbuf_reset(&out);
        assert_int_equal(pc_mime_compose("a@example.net", "b@example.org", NULL, subjects[0], "t",
                                         NULL, "<x@y>", T, &out), 0);
        assert_non_null(strstr(strbuf_str(&out), "Subject: =?utf-8?"));
        strbuf_free(&out);
}

static void test_qp(void **state)
{
        static const char *const texts[] = {
                "short\n",
                "trailing space \nand tab\t\nend with space ",
                "a=b, c==d, =_ and =20 literal\r\nCRLF kept\n\n\nblank lines\n",
                "a lone \r carriage return\n",
                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                "àèìòùàèìòùàèìòùàèìòùàèìòùàèìòùàèìòùàèìòùàèìòùàèìòùàèìòùàèìòùàèìòùàèìòùàèìòù",
                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx \n"
                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=\n"
                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"
                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                "--=_portcullis_0000000000000000\n--=_portcullis_\n.\n.. dots\nFrom me\n",
                "",
        };
        struct strbuf out = { 0 };

        (void)state;
        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
                assert_int_equal(pc_mime_compose("a@example.net", "b@example.org", NULL, "s",
                                                 texts[i], texts[(i + 1) % 9], "<x@y>", T, &out),
                                 0);
                check_message(strbuf_str(&out), "s", texts[i], texts[(i + 1) % 9]);
                strbuf_reset(&out);
        }
        /* Exactly 76 characters stay on one line; 77 get a soft break. */
        assert_int_equal(pc_mime_compose("a@example.net", "b@example.org", NULL, "s",
                                         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                                         "xxxxxxxxxxxxxxxxxxxx", NULL, "<x@y>", T, &out), 0);
        assert_non_null(strstr(strbuf_str(&out), "\r\n\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                                                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"));
        strbuf_free(&out);
}

static void test_ids(void **state)
{
        char buf[128];

        (void)state;
        assert_int_equal(pc_mime_domain("Support <noc@Example.net>", buf, sizeof(buf)), 0);
        assert_string_equal(buf, "Example.net");
        assert_int_equal(pc_mime_domain("noc@example.net ", buf, sizeof(buf)), 0);
        assert_string_equal(buf, "example.net");
        assert_int_equal(pc_mime_domain("noc", buf, sizeof(buf)), -EINVAL);
        assert_int_equal(pc_mime_domain("noc@ex ample.net", buf, sizeof(buf)), -EINVAL);
        assert_int_equal(pc_mime_domain("<noc@example.net", buf, sizeof(buf)), -EINVAL);
        assert_int_equal(pc_mime_domain("noc@example.net", buf, 5), -ENOBUFS);
        assert_int_equal(pc_mime_message_id(123, T, "example.net", buf, sizeof(buf)), 0);
        assert_string_equal(buf, "<portcullis.N123.1773482700@example.net>");
        assert_int_equal(pc_mime_message_id(123, T, "example.net>\r\nX: y", buf, sizeof(buf)),
                         -EINVAL);
        assert_int_equal(pc_mime_message_id(123, T, "example.net", buf, 10), -ENOBUFS);
        assert_int_equal(pc_mime_date(0, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_int_equal(pc_mime_date(1798761599, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "Thu, 31 Dec 2026 23:59:59 +0000");
        assert_int_equal(pc_mime_date(T, buf, 10), -ENOBUFS);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_shipped_check),
                cmocka_unit_test(test_golden_all),
                cmocka_unit_test(test_golden_abuse),
                cmocka_unit_test(test_facts),
                cmocka_unit_test(test_evidence_words),
                cmocka_unit_test(test_language),
                cmocka_unit_test(test_sections),
                cmocka_unit_test(test_counts),
                cmocka_unit_test(test_fallback),
                cmocka_unit_test(test_keys),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_check_files),
                cmocka_unit_test(test_injection),
                cmocka_unit_test(test_headers),
                cmocka_unit_test(test_rfc2047),
                cmocka_unit_test(test_qp),
                cmocka_unit_test(test_ids),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
