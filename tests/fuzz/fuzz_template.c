/* libFuzzer harness for notification templates: the parser, the renderer
 * and the MIME composer behind them.
 *
 * The first byte picks the kind (low 3 bits: the seven kinds and "abuse")
 * and the format (bit 3: HTML); the rest is the template, rendered with a
 * fixed payload that has every key of every kind.  Besides memory errors,
 * it checks the promises: checking and rendering agree on what is valid;
 * the output is valid UTF-8; a subject is one line; in HTML no value's
 * markup survives; the composed message has CRLF line ends only, header
 * lines of at most 78 characters, quoted-printable lines of at most 76
 * and the boundary only as delimiters. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "notify/mime.h"
#include "notify/template.h"

static const char *const kinds[] = {
        "exception.granted", "exception.revoked", "filter.placed", "filter.lifted",
        "vps.suspended",     "vps.unsuspended",   "incident.opened", "abuse",
};

/* Every value that could carry markup carries <evil>. */
static const char payload[] =
        "{\"vps\": \"vps-1<evil>\", \"site\": \"s&<evil>\", \"event\": \"filter.placed\", "
        "\"addresses\": [\"203.0.113.10/32\", \"2001:db8::/64\", \"<evil>\"], \"id\": 7, "
        "\"service\": \"source-prefix:192.0.2.0/24<evil>\", \"ticket\": 3, \"by\": \"alice\\t\", "
        "\"reason\": \"Verifica dell'attività — àèìòù\\r\\nBcc: x@y <evil> \\\"q\\\" \\u0001\", "
        "\"created\": 1773482700, \"until\": null, \"direction\": \"both\", "
        "\"scope\": \"tcp/25-26\", \"incident\": 0, \"kind\": \"<evil>\", "
        "\"first_seen\": -62167219201, \"last_seen\": 253402300800, \"count\": -9223372036854775808, "
        "\"evidence\": {\"proto\": \"tcp\", \"port\": 22, \"connections\": 1187, "
        "\"targets\": \"<evil>\", \"kind\": \"ipv4-source\", \"claimed_source\": \"<evil>\", "
        "\"packets\": 1.5, \"messages\": true, \"recipients\": [1, \"<evil>\", null]}}";

static void check_utf8(const char *s)
{
        const unsigned char *u = (const unsigned char *)s;

        for (size_t i = 0; u[i] != '\0';) {
                size_t n = u[i] < 0x80 ? 1 : u[i] < 0xe0 ? 2 : u[i] < 0xf0 ? 3 : 4;

                if (u[i] >= 0x80 && (u[i] < 0xc2 || u[i] > 0xf4))
                        abort();
                for (size_t k = 1; k < n; k++)
                        if ((u[i + k] & 0xc0) != 0x80)
                                abort();
                i += n;
        }
}

static void check_message(const char *m, bool multipart)
{
        const char *body = strstr(m, "\r\n\r\n"), *line, *b;
        char delim[96];
        size_t n = 0, bl;

        if (body == NULL)
                abort();
        for (size_t i = 0; m[i] != '\0'; i++)
                if ((m[i] == '\n' && (i == 0 || m[i - 1] != '\r')) ||
                    (m[i] == '\r' && m[i + 1] != '\n'))
                        abort();
        for (line = m; line < body; line = strstr(line, "\r\n") + 2)
                if (strstr(line, "\r\n") - line > PC_MIME_LINE_MAX)
                        abort();
        for (line = body + 4; *line != '\0'; line = strstr(line, "\r\n") + 2)
                if (strstr(line, "\r\n") - line > PC_MIME_QP_LINE_MAX)
                        abort();
        if (!multipart)
                return;
        /* The boundary of the Content-Type header, not a Subject's text. */
        b = strstr(m, "\r\nContent-Type: multipart/alternative;");
        if (b == NULL || b > body || (b = strstr(b, "boundary=\"")) == NULL || b > body)
                abort();
        b += strlen("boundary=\"");
        bl = strcspn(b, "\"");
        if (bl == 0 || bl + 5 > sizeof(delim))
                abort();
        memcpy(delim, "\r\n--", 4);
        memcpy(delim + 4, b, bl);
        delim[4 + bl] = '\0';
        for (const char *p = strstr(body, delim); p != NULL; p = strstr(p + 1, delim))
                n++;
        if (n != 3)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        enum pc_template_format fmt;
        const char *kind, *text;
        char *subject = NULL, *body = NULL, err[512];
        struct strbuf out = { 0 };
        int checked, rendered;

        if (size == 0)
                return 0;
        kind = kinds[data[0] & 7];
        fmt = data[0] & 8 ? PC_TEMPLATE_HTML : PC_TEMPLATE_TEXT;
        text = (const char *)data + 1;
        size--;
        checked = pc_template_expand("fuzz", text, size, kind, fmt, data[0] & 16 ? "it" : "en",
                                     NULL, 0, 0, NULL, NULL, err, sizeof(err));
        rendered = pc_template_expand("fuzz", text, size, kind, fmt, data[0] & 16 ? "it" : "en",
                                      payload, 123, 1773482700,
                                      fmt == PC_TEMPLATE_TEXT ? &subject : NULL, &body, err,
                                      sizeof(err));
        if (checked < 0 && rendered != checked)
                abort(); /* rendering accepted what checking refused */
        if (checked == 0 && rendered < 0 && rendered != -E2BIG && rendered != -EINVAL)
                abort();
        if (rendered < 0) {
                if (strncmp(err, "fuzz:", 5) != 0 || strchr(err, '\n') != NULL)
                        abort(); /* every error names the file, on one line */
                return 0;
        }
        check_utf8(body);
        if (fmt == PC_TEMPLATE_HTML && strstr(body, "<evil>") != NULL &&
            memmem(text, size, "<evil>", 6) == NULL)
                abort(); /* a value's markup got through unescaped */
        if (subject != NULL) {
                check_utf8(subject);
                for (const char *c = subject; *c != '\0'; c++)
                        if (*c == '\r' || *c == '\n')
                                abort();
        }
        if (pc_mime_compose("Support <noc@example.net>", "owner@example.org", NULL,
                            subject != NULL ? subject : "s", fmt == PC_TEMPLATE_TEXT ? body : "t",
                            fmt == PC_TEMPLATE_HTML ? body : (data[0] & 32 ? NULL : "<p>h</p>"),
                            "<portcullis.N123.1773482700@example.net>", 1773482700, &out) != 0)
                abort(); /* a rendered template always composes */
        check_message(strbuf_str(&out), fmt == PC_TEMPLATE_HTML || !(data[0] & 32));
        strbuf_free(&out);
        free(subject);
        free(body);
        return 0;
}
