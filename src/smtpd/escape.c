/* Escaping untrusted text for replies and logs (see escape.h). */
#include "smtpd/escape.h"

#include <stdbool.h>
#include <stdio.h>

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

size_t smtpd_escape(char *buf, size_t size, const char *text, enum escape_mode mode)
{
        bool quote = mode == ESCAPE_LOG && !bare(text);
        size_t n = 0, room;

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
        for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
                char esc[5];
                size_t len;

                if (*p == '\\')
                        len = (size_t)snprintf(esc, sizeof(esc), "\\\\");
                else if (quote && *p == '"')
                        len = (size_t)snprintf(esc, sizeof(esc), "\\\"");
                else if (!printable(*p))
                        len = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", *p);
                else
                        len = (size_t)snprintf(esc, sizeof(esc), "%c", *p);
                if (n - (quote ? 1 : 0) + len > room)
                        break;
                for (size_t i = 0; i < len; i++)
                        buf[n++] = esc[i];
        }
        if (quote)
                buf[n++] = '"';
        buf[n] = '\0';
        return n;
}
