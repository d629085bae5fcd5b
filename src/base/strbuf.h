/* A growable string for building command texts. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct strbuf {
        char *s;     /* NUL-terminated; NULL until something is added */
        size_t len;
        size_t cap;
        bool oom;    /* an allocation failed: the text is incomplete */
};

/* Appends printf-style text; on ENOMEM sets <b>->oom and leaves the text as
 * it was, so callers check once at the end. */
void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Empties <b> without freeing its memory. */
void strbuf_reset(struct strbuf *b);

/* Frees the text; <b> is empty and reusable afterwards. */
void strbuf_free(struct strbuf *b);

/* The text so far ("" if none). */
const char *strbuf_str(const struct strbuf *b);
