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

/* Appends the <n> bytes at <p> (no NUL among them); on ENOMEM as
 * strbuf_printf. */
void strbuf_append(struct strbuf *b, const char *p, size_t n);

/* Makes room for <n> more bytes (and the NUL): true, or false with
 * <b>->oom set. */
bool strbuf_reserve(struct strbuf *b, size_t n);

/* Empties <b> without freeing its memory. */
void strbuf_reset(struct strbuf *b);

/* Frees the text; <b> is empty and reusable afterwards. */
void strbuf_free(struct strbuf *b);

/* The text so far ("" if none). */
const char *strbuf_str(const struct strbuf *b);
