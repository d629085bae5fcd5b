/* Composing notification mail (RFC 5322, RFC 2045-2047).  The message is
 * built in a private buffer and appended to the caller's only when every
 * input checked out, so a refused header leaves nothing half-written. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/util.h"
#include "notify/mime.h"

#include "base/utf8.h"

#define ENCODED_WORD_MAX 75 /* RFC 2047 section 2 */
#define ADDRESS_MAX 254
#define MESSAGE_ID_MAX 250
#define MAILBOXES_MAX 32

/* A header being written, folded at PC_MIME_LINE_MAX. */
struct header {
        struct strbuf *b;
        size_t line;  /* characters on the current line */
        size_t start; /* characters of "Name:" */
};

/* Starts header <name> in <b>. */
static void header_begin(struct header *h, struct strbuf *b, const char *name)
{
        h->b = b;
        strbuf_printf(b, "%s:", name);
        h->line = h->start = strlen(name) + 1;
}

/* Writes " <atom>", on a new line if it would not fit on this one. */
static void header_atom(struct header *h, const char *atom, size_t len)
{
        if (h->line > h->start && h->line + 1 + len > PC_MIME_LINE_MAX) {
                strbuf_printf(h->b, "\r\n");
                h->line = 0;
        }
        strbuf_printf(h->b, " %.*s", (int)len, atom);
        h->line += 1 + len;
}

/* Ends the header's last line. */
static void header_end(struct header *h)
{
        strbuf_printf(h->b, "\r\n");
}


/* True if the <n> bytes at <s> are valid UTF-8. */

/* True if the string <s> is valid UTF-8. */
static bool utf8_valid(const char *s)
{
        return pc_utf8_valid(s, strlen(s));
}

/* True if header value <s> has no control characters (a tab only if
 * <tab_ok>) and is valid UTF-8. */
static bool header_value_ok(const char *s, bool tab_ok)
{
        for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
                if ((*p < 0x20 && !(tab_ok && *p == '\t')) || *p == 0x7f)
                        return false;
        return utf8_valid(s);
}

/* True if the <n> bytes at <s> are all printable ASCII (space included). */
static bool is_ascii_printable(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
                        return false;
        return true;
}

/* Characters that stand for themselves in a Q encoded-word anywhere
 * (RFC 2047 section 5 (3), the strictest context). */
static bool q_literal(unsigned char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '!' || c == '*' || c == '+' || c == '-' || c == '/';
}

/* The length of byte <c> in a Q encoded-word. */
static size_t q_len(unsigned char c)
{
        return q_literal(c) || c == ' ' ? 1 : 3;
}

/* Writes <s> (<n> bytes of UTF-8) as encoded-words into <h>, each as long
 * as fits on the current line (at most ENCODED_WORD_MAX), never splitting a
 * character; Q or B, whichever is shorter. */
static void header_encoded(struct header *h, const char *s, size_t n)
{
        static const char b64[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const unsigned char *u = (const unsigned char *)s;
        size_t qlen = 0, i = 0;
        bool q;

        for (size_t j = 0; j < n; j++)
                qlen += q_len(u[j]);
        q = qlen <= (n + 2) / 3 * 4;
        while (i < n) {
                const size_t overhead = strlen("=?utf-8?Q?") + strlen("?" "=");
                size_t room = h->line + 1 < PC_MIME_LINE_MAX ? PC_MIME_LINE_MAX - h->line - 1 : 0;
                size_t take = 0, cost = 0;
                char word[ENCODED_WORD_MAX + 1];
                size_t w = 0;

                if (room > ENCODED_WORD_MAX)
                        room = ENCODED_WORD_MAX;
                /* Take whole characters while the word fits. */
                while (i + take < n) {
                        size_t cl = pc_utf8_len(u + i + take, n - i - take), c = 0;

                        if (cl == 0)
                                cl = 1; /* checked by the caller; be safe anyway */
                        if (q) {
                                for (size_t j = 0; j < cl; j++)
                                        c += q_len(u[i + take + j]);
                                c += cost;
                        } else {
                                c = (take + cl + 2) / 3 * 4;
                        }
                        if (overhead + c > room)
                                break;
                        take += cl;
                        cost = c;
                }
                if (take == 0) {
                        if (h->line > h->start && room < ENCODED_WORD_MAX) {
                                strbuf_printf(h->b, "\r\n");
                                h->line = 0;
                                continue;
                        }
                        take = pc_utf8_len(u + i, n - i); /* cannot happen: 4 bytes fit in any word */
                        if (take == 0)
                                take = 1;
                }
                w = (size_t)snprintf(word, sizeof(word), "=?utf-8?%c?", q ? 'Q' : 'B');
                if (q) {
                        for (size_t j = i; j < i + take && w + 4 < sizeof(word); j++) {
                                if (q_literal(u[j]))
                                        word[w++] = (char)u[j];
                                else if (u[j] == ' ')
                                        word[w++] = '_';
                                else
                                        w += (size_t)snprintf(word + w, sizeof(word) - w, "=%02X",
                                                              u[j]);
                        }
                } else {
                        for (size_t j = i; j < i + take && w + 5 < sizeof(word); j += 3) {
                                uint32_t v = (uint32_t)u[j] << 16;
                                size_t left = i + take - j;

                                if (left > 1)
                                        v |= (uint32_t)u[j + 1] << 8;
                                if (left > 2)
                                        v |= u[j + 2];
                                word[w++] = b64[v >> 18 & 63];
                                word[w++] = b64[v >> 12 & 63];
                                word[w++] = left > 1 ? b64[v >> 6 & 63] : '=';
                                word[w++] = left > 2 ? b64[v & 63] : '=';
                        }
                }
                if (w + 2 < sizeof(word)) {
                        word[w++] = '?';
                        word[w++] = '=';
                }
                header_atom(h, word, w);
                i += take;
        }
}

/* True if the subject <s> can go as it is: printable ASCII, single spaces
 * between words, none at the ends, nothing a reader could take for an
 * encoded-word, and every word short enough to fold. */
static bool subject_plain(const char *s)
{
        size_t n = strlen(s), word = 0;

        if (n == 0)
                return true;
        if (!is_ascii_printable(s, n) || strstr(s, "=?") != NULL || s[0] == ' ' ||
            s[n - 1] == ' ' || strstr(s, "  ") != NULL)
                return false;
        for (size_t i = 0; i <= n; i++) {
                if (i == n || s[i] == ' ') {
                        if (word > PC_MIME_LINE_MAX - strlen("Subject: "))
                                return false;
                        word = 0;
                } else {
                        word++;
                }
        }
        return true;
}

/* Writes the Subject header: as it is and folded at spaces if that is
 * safe, as encoded-words otherwise. */
static void write_subject(struct strbuf *b, const char *subject)
{
        struct header h;

        header_begin(&h, b, "Subject");
        if (subject_plain(subject)) {
                for (const char *s = subject; *s != '\0';) {
                        size_t n = strcspn(s, " ");

                        header_atom(&h, s, n);
                        s += n + (s[n] == ' ');
                }
        } else {
                header_encoded(&h, subject, strlen(subject));
        }
        header_end(&h);
}

/* True if <a> (<n> bytes) is an address we write: ASCII local@domain,
 * nothing that needs quoting, a plausible domain. */
static bool address_ok(const char *a, size_t n)
{
        const char *at;

        if (n == 0 || n > ADDRESS_MAX || !is_ascii_printable(a, n))
                return false;
        for (size_t i = 0; i < n; i++)
                if (strchr(" <>()[],;:\"\\", a[i]) != NULL)
                        return false;
        at = memrchr(a, '@', n);
        if (at == NULL || at == a || at == a + n - 1 || memchr(a, '@', (size_t)(at - a)) != NULL)
                return false;
        for (const char *d = at + 1; d < a + n; d++)
                if (!((*d >= 'a' && *d <= 'z') || (*d >= 'A' && *d <= 'Z') ||
                      (*d >= '0' && *d <= '9') || *d == '-' || *d == '.'))
                        return false;
        return at[1] != '.' && a[n - 1] != '.';
}

/* Writes the display name <d> (<n> bytes, unquoted) of a mailbox. */
static void write_phrase(struct header *h, const char *d, size_t n)
{
        bool special = false;

        if (!is_ascii_printable(d, n) || memmem(d, n, "=?", 2) != NULL) {
                header_encoded(h, d, n);
                return;
        }
        for (size_t i = 0; i < n; i++)
                if (strchr("()<>[]:;@\\,.\"", d[i]) != NULL)
                        special = true;
        if (special) {
                char q[2 * 256 + 3];
                size_t w = 0;

                q[w++] = '"';
                for (size_t i = 0; i < n && w + 3 < sizeof(q); i++) {
                        if (d[i] == '"' || d[i] == '\\')
                                q[w++] = '\\';
                        q[w++] = d[i];
                }
                q[w++] = '"';
                header_atom(h, q, w);
                return;
        }
        for (size_t i = 0; i < n;) {
                size_t k = i;

                while (k < n && d[k] != ' ')
                        k++;
                if (k > i)
                        header_atom(h, d + i, k - i);
                i = k + 1;
        }
}

/* Writes the header <name> with the mailbox list <list>; -EINVAL if a
 * mailbox is malformed. */
static int write_mailboxes(struct strbuf *b, const char *name, const char *list)
{
        struct header h;
        size_t count = 0;
        const char *s = list;

        header_begin(&h, b, name);
        while (*s != '\0') {
                const char *start, *end, *lt = NULL, *gt = NULL;
                char display[256], addr[ADDRESS_MAX + 3];
                size_t dn = 0;
                bool quoted = false, last;

                while (*s == ' ' || *s == '\t')
                        s++;
                start = s;
                /* The mailbox ends at a comma outside quotes and <>. */
                for (end = s; *end != '\0'; end++) {
                        if (*end == '\\' && quoted && end[1] != '\0')
                                end++;
                        else if (*end == '"' && lt == NULL)
                                quoted = !quoted;
                        else if (*end == '<' && !quoted && lt == NULL)
                                lt = end;
                        else if (*end == '>' && !quoted && lt != NULL && gt == NULL)
                                gt = end;
                        else if (*end == ',' && !quoted && (lt == NULL || gt != NULL))
                                break;
                }
                if (quoted || (lt != NULL) != (gt != NULL) || ++count > MAILBOXES_MAX)
                        return -EINVAL;
                last = *end == '\0';
                if (lt == NULL) {
                        const char *e = end;

                        while (e > start && (e[-1] == ' ' || e[-1] == '\t'))
                                e--;
                        if (!address_ok(start, (size_t)(e - start)))
                                return -EINVAL;
                        snprintf(addr, sizeof(addr), "%.*s%s", (int)(e - start), start,
                                 last ? "" : ",");
                } else {
                        const char *d = start, *de = lt;

                        for (const char *t = gt + 1; t < end; t++)
                                if (*t != ' ' && *t != '\t')
                                        return -EINVAL;
                        if (!address_ok(lt + 1, (size_t)(gt - lt - 1)))
                                return -EINVAL;
                        snprintf(addr, sizeof(addr), "<%.*s>%s", (int)(gt - lt - 1), lt + 1,
                                 last ? "" : ",");
                        while (de > d && (de[-1] == ' ' || de[-1] == '\t'))
                                de--;
                        if (de > d && *d == '"') {
                                if (de - d < 2 || de[-1] != '"')
                                        return -EINVAL;
                                for (const char *t = d + 1; t < de - 1; t++) {
                                        if (*t == '\\')
                                                t++;
                                        if (dn + 1 >= sizeof(display))
                                                return -EINVAL;
                                        display[dn++] = *t;
                                }
                        } else {
                                if ((size_t)(de - d) >= sizeof(display))
                                        return -EINVAL;
                                memcpy(display, d, (size_t)(de - d));
                                dn = (size_t)(de - d);
                        }
                        if (!pc_utf8_valid(display, dn))
                                return -EINVAL;
                        if (dn > 0)
                                write_phrase(&h, display, dn);
                }
                header_atom(&h, addr, strlen(addr));
                s = last ? end : end + 1;
        }
        if (count == 0)
                return -EINVAL;
        header_end(&h);
        return 0;
}

static const char *const day_names[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const month_names[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

int pc_mime_date(int64_t t, char *buf, size_t size)
{
        time_t tt = (time_t)t;
        struct tm tm;
        int n;

        if ((int64_t)tt != t || gmtime_r(&tt, &tm) == NULL || tm.tm_year + 1900 < 1900 ||
            tm.tm_year + 1900 > 9999)
                return -EINVAL;
        n = snprintf(buf, size, "%s, %d %s %04d %02d:%02d:%02d +0000", day_names[tm.tm_wday],
                     tm.tm_mday, month_names[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
                     tm.tm_min, tm.tm_sec);
        if (n < 0 || (size_t)n >= size)
                return -ENOBUFS;
        return 0;
}

/* True if <d> is a plausible domain: labels of letters, digits and '-'. */
static bool domain_ok(const char *d, size_t n)
{
        if (n == 0 || n > 253 || d[0] == '.' || d[n - 1] == '.' || memmem(d, n, "..", 2) != NULL)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((d[i] >= 'a' && d[i] <= 'z') || (d[i] >= 'A' && d[i] <= 'Z') ||
                      (d[i] >= '0' && d[i] <= '9') || d[i] == '-' || d[i] == '.'))
                        return false;
        return true;
}

int pc_mime_domain(const char *address, char *buf, size_t size)
{
        const char *s = address, *e, *at, *lt;

        if (address == NULL)
                return -EINVAL;
        lt = strrchr(address, '<');
        if (lt != NULL) {
                s = lt + 1;
                e = strchr(s, '>');
                if (e == NULL)
                        return -EINVAL;
        } else {
                e = s + strlen(s);
                while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
                        e--;
        }
        at = memrchr(s, '@', (size_t)(e - s));
        if (at == NULL || !domain_ok(at + 1, (size_t)(e - at - 1)))
                return -EINVAL;
        if ((size_t)(e - at - 1) >= size)
                return -ENOBUFS;
        memcpy(buf, at + 1, (size_t)(e - at - 1));
        buf[e - at - 1] = '\0';
        return 0;
}

int pc_mime_message_id(int64_t notification_id, int64_t created_unix, const char *domain,
                       char *buf, size_t size)
{
        int n;

        if (domain == NULL || !domain_ok(domain, strlen(domain)) || notification_id < 0)
                return -EINVAL;
        n = snprintf(buf, size, "<portcullis.N%" PRId64 ".%" PRId64 "@%s>", notification_id,
                     created_unix, domain);
        if (n < 0 || (size_t)n >= size)
                return -ENOBUFS;
        return 0;
}

/* True if <id> is "<left@right>" of visible ASCII. */
static bool message_id_ok(const char *id)
{
        size_t n = strlen(id);
        const char *at;

        if (n < 5 || n > MESSAGE_ID_MAX || id[0] != '<' || id[n - 1] != '>' ||
            !is_ascii_printable(id, n))
                return false;
        for (size_t i = 1; i + 1 < n; i++)
                if (strchr(" <>\"\\()[],;:", id[i]) != NULL)
                        return false;
        at = strchr(id, '@');
        return at != NULL && at > id + 1 && at < id + n - 2 && strchr(at + 1, '@') == NULL;
}

/* Appends <text> quoted-printable (RFC 2045 6.7): LF or CRLF become CRLF
 * hard breaks, lines stay within PC_MIME_QP_LINE_MAX, '=' and anything
 * beyond ASCII or trailing whitespace is encoded.  No CRLF after the last
 * line. */
static void qp_encode(struct strbuf *b, const char *text)
{
        const unsigned char *s = (const unsigned char *)text;
        char line[PC_MIME_QP_LINE_MAX + 8];
        size_t len = 0;

        for (size_t i = 0; s[i] != '\0'; i++) {
                char tok[4];
                size_t tl;
                bool eol_next;

                if (s[i] == '\n' || (s[i] == '\r' && s[i + 1] == '\n')) {
                        if (s[i] == '\r')
                                i++;
                        strbuf_printf(b, "%.*s\r\n", (int)len, line);
                        len = 0;
                        continue;
                }
                eol_next = s[i + 1] == '\0' || s[i + 1] == '\n' ||
                           (s[i + 1] == '\r' && s[i + 2] == '\n');
                if ((s[i] >= 33 && s[i] <= 126 && s[i] != '=') ||
                    ((s[i] == ' ' || s[i] == '\t') && !eol_next)) {
                        tok[0] = (char)s[i];
                        tl = 1;
                } else {
                        snprintf(tok, sizeof(tok), "=%02X", s[i]);
                        tl = 3;
                }
                /* The line's last token may reach the limit; others leave
                 * room for the soft break's '='. */
                if (len + tl > (eol_next ? PC_MIME_QP_LINE_MAX : PC_MIME_QP_LINE_MAX - 1)) {
                        strbuf_printf(b, "%.*s=\r\n", (int)len, line);
                        len = 0;
                }
                memcpy(line + len, tok, tl);
                len += tl;
        }
        strbuf_printf(b, "%.*s", (int)len, line);
}

/* A 64-bit FNV-1a hash, to derive a stable boundary. */
static uint64_t fnv1a(uint64_t h, const char *s)
{
        for (; *s != '\0'; s++) {
                h ^= (unsigned char)*s;
                h *= 0x100000001b3ULL;
        }
        return h;
}

/* Writes a body part of <type>: its headers, a blank line, <body> in
 * quoted-printable. */
static void write_part(struct strbuf *b, const char *type, const char *body)
{
        strbuf_printf(b,
                      "Content-Type: %s; charset=utf-8\r\n"
                      "Content-Transfer-Encoding: quoted-printable\r\n"
                      "\r\n",
                      type);
        qp_encode(b, body);
}

int pc_mime_compose(const char *from, const char *to, const char *cc, const char *subject,
                    const char *text, const char *html, const char *message_id,
                    int64_t date_unix, struct strbuf *out)
{
        struct strbuf m = { 0 }, plain = { 0 }, rich = { 0 };
        char date[40], boundary[64];
        uint64_t h;
        int r;

        if (from == NULL || to == NULL || subject == NULL || text == NULL ||
            message_id == NULL || !header_value_ok(from, true) || !header_value_ok(to, true) ||
            (cc != NULL && !header_value_ok(cc, true)) || !header_value_ok(subject, true) ||
            !message_id_ok(message_id) || !utf8_valid(text) || (html != NULL && !utf8_valid(html)))
                return -EINVAL;
        r = pc_mime_date(date_unix, date, sizeof(date));
        if (r < 0)
                return r;
        strbuf_printf(&m, "Date: %s\r\n", date);
        r = write_mailboxes(&m, "From", from);
        if (r == 0)
                r = write_mailboxes(&m, "To", to);
        if (r == 0 && cc != NULL && cc[strspn(cc, " \t")] != '\0')
                r = write_mailboxes(&m, "Cc", cc);
        if (r < 0)
                goto out;
        write_subject(&m, subject);
        strbuf_printf(&m,
                      "Message-ID: %s\r\n"
                      "Auto-Submitted: auto-generated\r\n"
                      "MIME-Version: 1.0\r\n",
                      message_id);
        if (html == NULL) {
                write_part(&m, "text/plain", text);
                strbuf_printf(&m, "\r\n");
                goto done;
        }
        write_part(&plain, "text/plain", text);
        write_part(&rich, "text/html", html);
        /* "=_" cannot occur in quoted-printable text ('=' is always "=XX"
         * or a soft break), so the boundary cannot occur in the parts; the
         * loop is a second belt. */
        h = fnv1a(fnv1a(fnv1a(0xcbf29ce484222325ULL, message_id), text), html);
        for (unsigned i = 0;; i++, h = fnv1a(h, "+")) {
                snprintf(boundary, sizeof(boundary), "=_portcullis_%016" PRIx64, h);
                if ((plain.s == NULL || strstr(plain.s, boundary) == NULL) &&
                    (rich.s == NULL || strstr(rich.s, boundary) == NULL))
                        break;
                if (i == 16) {
                        r = -EINVAL;
                        goto out;
                }
        }
        strbuf_printf(&m,
                      "Content-Type: multipart/alternative;\r\n"
                      " boundary=\"%s\"\r\n"
                      "\r\n"
                      "This is a message in MIME format: a plain text and an HTML version.\r\n"
                      "\r\n"
                      "--%s\r\n"
                      "%s\r\n"
                      "--%s\r\n"
                      "%s\r\n"
                      "--%s--\r\n",
                      boundary, boundary, strbuf_str(&plain), boundary, strbuf_str(&rich),
                      boundary);
done:
        if (m.oom || plain.oom || rich.oom) {
                r = -ENOMEM;
                goto out;
        }
        strbuf_printf(out, "%s", strbuf_str(&m));
        r = out->oom ? -ENOMEM : 0;
out:
        strbuf_free(&m);
        strbuf_free(&plain);
        strbuf_free(&rich);
        return r;
}
