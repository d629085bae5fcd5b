/* Escaping untrusted text for replies, logs and terminals (see escape.h). */
#include "base/escape.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "base/utf8.h"

static bool printable(unsigned char c)
{
        return c >= 0x20 && c <= 0x7e;
}

/* True if <text> can stand as a log value without quotes. */
static bool bare(const char *text)
{
        if (text[0] == '\0')
                return false;
        for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++)
                if (!printable(*p) || *p == ' ' || *p == '"' || *p == '\\' || *p == '=')
                        return false;
        return true;
}

/* Writes into <out> (8 bytes) what stands for the character or byte at
 * <p> (<left> bytes remain) in <mode>; sets *<used> to the bytes it
 * stands for and returns the length written. */
static size_t escape_one(const unsigned char *p, size_t left, enum pc_escape_mode mode, bool quote,
                         char *out, size_t *used)
{
        size_t n = mode == PC_ESCAPE_TEXT ? pc_utf8_len(p, left) : 1;

        *used = n == 0 ? 1 : n;
        if (*p == '\\')
                return (size_t)snprintf(out, 8, "\\\\");
        if (quote && *p == '"')
                return (size_t)snprintf(out, 8, "\\\"");
        if (mode == PC_ESCAPE_TEXT && n > 0) {
                if (!pc_utf8_control(p, n)) {
                        memcpy(out, p, n);
                        return n;
                }
                if (n > 1) /* C1, bidirectional controls */
                        return (size_t)snprintf(out, 8, "\\u%04x", pc_utf8_decode(p, n));
                if (*p == '\n')
                        return (size_t)snprintf(out, 8, "\\n");
                if (*p == '\r')
                        return (size_t)snprintf(out, 8, "\\r");
                if (*p == '\t')
                        return (size_t)snprintf(out, 8, "\\t");
        } else if (mode != PC_ESCAPE_TEXT && printable(*p)) {
                out[0] = (char)*p;
                return 1;
        }
        return (size_t)snprintf(out, 8, "\\x%02x", *p);
}

size_t pc_escape(char *buf, size_t size, const char *text, enum pc_escape_mode mode)
{
        bool quote = mode == PC_ESCAPE_LOG && !bare(text);
        const unsigned char *p = (const unsigned char *)text;
        size_t left = strlen(text), n = 0, room;

        if (size == 0)
                return 0;
        /* Room for the content: the NUL and, when quoting, both quotes. */
        room = size - 1 - (quote ? 2 : 0);
        if (size < 3 && quote) {
                buf[0] = '\0';
                return 0;
        }
        if (quote)
                buf[n++] = '"';
        while (left > 0) {
                char esc[8];
                size_t used, len = escape_one(p, left, mode, quote, esc, &used);

                if (n - (quote ? 1 : 0) + len > room)
                        break;
                memcpy(buf + n, esc, len);
                n += len;
                p += used;
                left -= used;
        }
        if (quote)
                buf[n++] = '"';
        buf[n] = '\0';
        return n;
}
