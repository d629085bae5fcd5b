/* Composing notification mail: an RFC 5322 message with a UTF-8
 * multipart/alternative body (text/plain and text/html, both
 * quoted-printable), CRLF line ends throughout.  SMTP dot-stuffing is the
 * transport's job (libcurl), not ours.  Functions return 0 or a negative
 * errno and write ret_ outputs only on success.  Nothing here logs. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "base/strbuf.h"

#define PC_MIME_LINE_MAX 78    /* header lines we write, without CRLF */
#define PC_MIME_QP_LINE_MAX 76 /* quoted-printable body lines, without CRLF */

/* Formats unix time <t> as an RFC 5322 date in UTC, "Sat, 14 Mar 2026
 * 10:02:00 +0000", into <buf> of <size> bytes (32 are always enough).
 * -ENOBUFS if it does not fit, -EINVAL if <t> is not representable. */
int pc_mime_date(int64_t t, char *buf, size_t size);

/* Writes into <buf> of <size> bytes the domain of the mail address in
 * <address> ("support@example.net" or "Support <support@example.net>"),
 * e.g. "example.net".  -EINVAL if there is no plausible domain (letters,
 * digits, '-' and '.' only), -ENOBUFS if it does not fit. */
int pc_mime_domain(const char *address, char *buf, size_t size);

/* Writes into <buf> of <size> bytes the Message-ID of notification
 * <notification_id> created at <created_unix>, stable across retries:
 * "<portcullis.N123.1773482520@example.net>" for <domain> "example.net".
 * -EINVAL for a bad domain or negative id, -ENOBUFS if it does not fit. */
int pc_mime_message_id(int64_t notification_id, int64_t created_unix, const char *domain,
                       char *buf, size_t size);

/* Appends to <out> the complete message: Date (<date_unix>), From <from>,
 * To <to>, Cc <cc> (NULL or "": none), Subject <subject> (UTF-8; encoded
 * as RFC 2047 encoded-words and folded to PC_MIME_LINE_MAX when it is not
 * plain short ASCII), Message-ID <message_id> ("<left@right>"),
 * MIME-Version, and the body: multipart/alternative of <text> and <html>
 * (UTF-8, LF or CRLF line ends), or text/plain alone if <html> is NULL.
 * <from>, <to> and <cc> are mailbox lists ("a@b", "Name <a@b>", comma-
 * separated); non-ASCII display names are encoded, addresses must be
 * ASCII.  Returns -EINVAL (and appends nothing) if a header value holds
 * CR, LF or another control character, if an address or the Message-ID is
 * malformed, or if a text is not valid UTF-8; -ENOMEM if <out> ran out of
 * memory (out->oom). */
int pc_mime_compose(const char *from, const char *to, const char *cc, const char *subject,
                    const char *text, const char *html, const char *message_id,
                    int64_t date_unix, struct strbuf *out);
