/* Text from outside (a reason from the database, an MX's reply, a
 * client's HELO, a row another writer put in the audit log) made safe for
 * an SMTP reply line, a log line or a terminal. */
#pragma once

#include <stddef.h>

enum pc_escape_mode {
        PC_ESCAPE_REPLY, /* inside an SMTP reply line: ASCII, never quoted */
        PC_ESCAPE_LOG,   /* a key=value log value: bare if safe, else "quoted" */
        PC_ESCAPE_TEXT,  /* text for a person's terminal: UTF-8 kept */
};

/* Writes <text> into <buf> of <size> bytes, always NUL-terminated (if
 * <size> > 0) and truncated between escapes, never inside one, so that no
 * text can end a reply, log line or table row, or start another, or steer
 * a terminal.  A backslash becomes "\\".
 *
 * PC_ESCAPE_REPLY and PC_ESCAPE_LOG: every byte outside printable ASCII
 * (0x20-0x7e: CR, LF, NUL, other controls, DEL, UTF-8) becomes "\xNN".
 * With PC_ESCAPE_LOG a value that is empty or holds a space, '"', '\', '='
 * or an escaped byte is quoted, with '"' written "\"": it cannot fake
 * another key=value field.
 *
 * PC_ESCAPE_TEXT: valid UTF-8 characters stay as they are, except control
 * characters: newline, CR and tab become "\n", "\r", "\t", other C0 and
 * DEL "\xNN", C1 (U+0080-U+009F) "\u00NN"; a byte that is not UTF-8
 * becomes "\xNN".
 *
 * Returns the length written. */
size_t pc_escape(char *buf, size_t size, const char *text, enum pc_escape_mode mode);

/* The size of a buffer that holds <len> bytes of text escaped in any
 * mode, whole: each byte becomes at most 4 ("\xNN"), plus quotes and NUL. */
#define PC_ESCAPED_SIZE(len) ((len) * 4 + 3)
