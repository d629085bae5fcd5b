/* UTF-8 validation, shared by every parser of text from outside, and the
 * one rule for free text a person gives (a reason, a ticket's text): one
 * line of valid UTF-8 without control characters. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The length of the UTF-8 sequence at <p> (<left> bytes available, at
 * least 1), or 0 if it is not a valid, shortest-form encoding of a Unicode
 * scalar value (no overlongs, no surrogates, nothing beyond U+10FFFF). */
size_t pc_utf8_len(const unsigned char *p, size_t left);

/* True if the <n> bytes at <s> are entirely valid UTF-8. */
bool pc_utf8_valid(const char *s, size_t n);

/* True if the valid sequence of <n> bytes at <p> (n from pc_utf8_len) is a
 * control character: C0 (U+0000-U+001F, newline and tab among them), DEL
 * (U+007F), C1 (U+0080-U+009F, which some terminals obey as ESC [ ...), or
 * a bidirectional control (U+061C, U+200E-U+200F, U+202A-U+202E,
 * U+2066-U+2069), which reorders what a terminal shows after it ("Trojan
 * Source"): text that reads one way and says another. */
bool pc_utf8_control(const unsigned char *p, size_t n);

/* The code point of the valid sequence of <n> bytes at <p>. */
unsigned pc_utf8_decode(const unsigned char *p, size_t n);

/* Checks that <s> is free text fit to store and print: valid UTF-8 with
 * no control character.  Returns NULL if it is; else writes what is wrong
 * into <buf> ("holds the control character U+001B at byte 5", "is not
 * valid UTF-8 at byte 3") and returns <buf>, for the caller to put after
 * the field's name. */
const char *pc_text_invalid(const char *s, char *buf, size_t size);
