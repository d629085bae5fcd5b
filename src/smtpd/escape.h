/* Text from outside (a filter's reason from the database, an MX's reply,
 * a client's HELO) made safe for an SMTP reply line or a log line. */
#pragma once

#include <stddef.h>

enum escape_mode {
        ESCAPE_REPLY, /* inside an SMTP reply line: never quoted */
        ESCAPE_LOG,   /* a key=value log value: bare if safe, else "quoted" */
};

/* Writes <text> into <buf> of <size> bytes, always NUL-terminated (if
 * <size> > 0) and truncated between escapes, never inside one.  Every byte
 * outside printable ASCII (0x20-0x7e: CR, LF, NUL, other controls, DEL,
 * UTF-8) becomes "\xNN" and a backslash "\\", so that no text can end a
 * reply or log line, or start another.  With ESCAPE_LOG a value that is
 * empty or holds a space, '"', '\', '=' or an escaped byte is quoted, with
 * '"' written "\"": it cannot fake another key=value field.  Returns the
 * length written. */
size_t smtpd_escape(char *buf, size_t size, const char *text, enum escape_mode mode);
