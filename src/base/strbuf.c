/* A growable string for building command texts. */
#include "base/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (b->oom)
                return;
        va_start(ap, fmt);
        n = vsnprintf(b->s != NULL ? b->s + b->len : NULL, b->s != NULL ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
                b->oom = true;
                return;
        }
        if (b->s == NULL || b->len + (size_t)n >= b->cap) {
                size_t cap = b->cap == 0 ? 256 : b->cap;
                char *s;

                while (cap <= b->len + (size_t)n)
                        cap *= 2;
                s = realloc(b->s, cap);
                if (s == NULL) {
                        b->oom = true;
                        if (b->s != NULL)
                                b->s[b->len] = '\0';
                        return;
                }
                b->s = s;
                b->cap = cap;
                va_start(ap, fmt);
                vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
                va_end(ap);
        }
        b->len += (size_t)n;
}

bool strbuf_reserve(struct strbuf *b, size_t n)
{
        size_t cap;
        char *s;

        if (b->oom)
                return false;
        if (b->s != NULL && b->len + n < b->cap)
                return true;
        cap = b->cap == 0 ? 256 : b->cap;
        while (cap <= b->len + n)
                cap *= 2;
        s = realloc(b->s, cap);
        if (s == NULL) {
                b->oom = true;
                return false;
        }
        if (b->s == NULL)
                s[0] = '\0';
        b->s = s;
        b->cap = cap;
        return true;
}

void strbuf_append(struct strbuf *b, const char *p, size_t n)
{
        if (!strbuf_reserve(b, n))
                return;
        memcpy(b->s + b->len, p, n);
        b->len += n;
        b->s[b->len] = '\0';
}

void strbuf_reset(struct strbuf *b)
{
        b->len = 0;
        b->oom = false;
        if (b->s != NULL)
                b->s[0] = '\0';
}

void strbuf_free(struct strbuf *b)
{
        free(b->s);
        b->s = NULL;
        b->len = b->cap = 0;
        b->oom = false;
}

const char *strbuf_str(const struct strbuf *b)
{
        return b->s != NULL ? b->s : "";
}
