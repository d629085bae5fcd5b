/* UTF-8 validation, shared by every parser of text from outside. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The length of the UTF-8 sequence at <p> (<left> bytes available, at
 * least 1), or 0 if it is not a valid, shortest-form encoding of a Unicode
 * scalar value (no overlongs, no surrogates, nothing beyond U+10FFFF). */
size_t pc_utf8_len(const unsigned char *p, size_t left);

/* True if the <n> bytes at <s> are entirely valid UTF-8. */
bool pc_utf8_valid(const char *s, size_t n);
