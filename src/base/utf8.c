/* UTF-8 validation (see utf8.h). */
#include "base/utf8.h"

#include <stdio.h>
#include <string.h>

size_t pc_utf8_len(const unsigned char *p, size_t left)
{
        size_t n;
        unsigned char lo = 0x80, hi = 0xbf;

        if (p[0] < 0x80)
                return 1;
        if (p[0] >= 0xc2 && p[0] <= 0xdf)
                n = 2;
        else if (p[0] >= 0xe0 && p[0] <= 0xef)
                n = 3;
        else if (p[0] >= 0xf0 && p[0] <= 0xf4)
                n = 4;
        else
                return 0;
        if (p[0] == 0xe0)
                lo = 0xa0; /* overlong */
        else if (p[0] == 0xed)
                hi = 0x9f; /* surrogates */
        else if (p[0] == 0xf0)
                lo = 0x90; /* overlong */
        else if (p[0] == 0xf4)
                hi = 0x8f; /* beyond U+10FFFF */
        if (left < n || p[1] < lo || p[1] > hi)
                return 0;
        for (size_t i = 2; i < n; i++)
                if (p[i] < 0x80 || p[i] > 0xbf)
                        return 0;
        return n;
}

bool pc_utf8_valid(const char *s, size_t n)
{
        for (size_t i = 0; i < n;) {
                size_t l = pc_utf8_len((const unsigned char *)s + i, n - i);

                if (l == 0)
                        return false;
                i += l;
        }
        return true;
}

unsigned pc_utf8_decode(const unsigned char *p, size_t n)
{
        static const unsigned char lead_mask[] = { 0, 0x7f, 0x1f, 0x0f, 0x07 };
        unsigned c = p[0] & lead_mask[n < 5 ? n : 0];

        for (size_t i = 1; i < n; i++)
                c = c << 6 | (p[i] & 0x3f);
        return c;
}

bool pc_utf8_control(const unsigned char *p, size_t n)
{
        unsigned c = pc_utf8_decode(p, n);

        return c < 0x20 || (c >= 0x7f && c < 0xa0) || c == 0x61c || c == 0x200e || c == 0x200f ||
               (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

const char *pc_text_invalid(const char *s, char *buf, size_t size)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t left = strlen(s);

        for (size_t i = 0; i < left;) {
                size_t n = pc_utf8_len(p + i, left - i);

                if (n == 0) {
                        snprintf(buf, size, "is not valid UTF-8 at byte %zu", i + 1);
                        return buf;
                }
                if (pc_utf8_control(p + i, n)) {
                        snprintf(buf, size, "holds the control character U+%04X at byte %zu",
                                 pc_utf8_decode(p + i, n), i + 1);
                        return buf;
                }
                i += n;
        }
        return NULL;
}
