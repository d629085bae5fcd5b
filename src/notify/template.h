/* Customer-notification templates: a tiny, safe template language for
 * operator-editable files (docs/NOTIFICATIONS.md).
 *
 * A notification kind ("filter.placed", ...) has two files per language,
 * <dir>/<lang>/<kind>.txt (first line "Subject: ...", a blank line, then
 * the plain-text body) and <dir>/<lang>/<kind>.html (the HTML body).  The
 * abuse team's copy is <dir>/en/abuse.txt, for every kind.
 *
 * Templates hold text, placeholders {{name}} (a payload key, a dotted path
 * into it such as {{evidence.port}}, or a built-in such as {{reference}})
 * and sections {{#name}}...{{/name}}, shown only if <name> is present,
 * non-null, non-empty and not false.  Every kind declares the names its
 * templates may use (pc_template_key()); anything else is an error found
 * when the templates are checked, not when a customer's mail is due.
 *
 * Errors are one line "FILE:LINE:COL: message" in the caller's buffer
 * (LINE and COL count from 1; COL counts characters, not bytes).  All
 * functions return 0 or a negative errno and write ret_ outputs only on
 * success.  Nothing here logs. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define PC_TEMPLATE_FILE_MAX (64 * 1024)      /* bytes in one template file */
#define PC_TEMPLATE_DEPTH_MAX 8               /* sections inside sections */
#define PC_TEMPLATE_NAME_MAX 64               /* bytes in a placeholder's name */
#define PC_TEMPLATE_OUTPUT_MAX (1024 * 1024)  /* bytes in one rendered body */

/* The syntax of a template: .txt files (Subject line, values as they are)
 * or .html files (no Subject line, values HTML-escaped). */
enum pc_template_format {
        PC_TEMPLATE_TEXT,
        PC_TEMPLATE_HTML,
};

/* The notification kinds that have templates, NULL-terminated:
 * "exception.granted", "exception.revoked", "filter.placed",
 * "filter.lifted", "vps.suspended", "vps.unsuspended", "incident.opened". */
extern const char *const pc_template_kinds[];

/* The languages Portcullis ships templates for, NULL-terminated: "en",
 * "it". */
extern const char *const pc_template_languages[];

/* The <i>-th name (from 0) that templates of <kind> may use, or NULL past
 * the last one or for an unknown kind.  <kind> may also be "abuse" (the
 * names of the abuse team's copy).  The strings are static. */
const char *pc_template_key(const char *kind, size_t i);

/* Loads and checks every template under <dir>: <kind>.txt and <kind>.html
 * of every kind in pc_template_kinds, for every language in <langs>
 * (NULL-terminated; NULL means pc_template_languages), and en/abuse.txt.
 * Returns 0 if all are present and valid; otherwise -ENOENT (a missing
 * file), -EFBIG (a file over PC_TEMPLATE_FILE_MAX) or -EINVAL (unknown
 * placeholder, unbalanced section, missing Subject line, invalid UTF-8,
 * ...), other negative errnos for I/O errors, and the first error found
 * in <err> as "FILE:LINE:COL: message".  A missing file is reported at
 * line 1, column 1. */
int pc_template_check(const char *dir, const char *const *langs, char *err, size_t errsz);

/* Renders the notification <notification_id> of <kind>, created at unix
 * time <created> (the event's {{date}}), with <payload_json> (the outbox
 * row's payload, a JSON object), from the templates of language <lang>
 * under <dir>; if <lang> is NULL, not a plausible language tag, or has no
 * <kind>.txt, from those of <default_lang> instead.  On success
 * *<ret_subject> (one line, UTF-8), *<ret_text> and *<ret_html> are new
 * strings the caller frees.  -EINVAL for a bad payload, kind or template,
 * -ENOENT for missing templates, -E2BIG if a body would exceed
 * PC_TEMPLATE_OUTPUT_MAX, -ENOMEM; <err> says which and where. */
int pc_template_render(const char *dir, const char *lang, const char *default_lang,
                       const char *kind, const char *payload_json, int64_t notification_id,
                       int64_t created, char **ret_subject, char **ret_text, char **ret_html,
                       char *err, size_t errsz);

/* Renders the abuse team's copy of a notification from <dir>/en/abuse.txt:
 * like pc_template_render(), with the kind taken from the payload's
 * "event", and a text body only. */
int pc_template_render_abuse(const char *dir, const char *payload_json, int64_t notification_id,
                             int64_t created, char **ret_subject, char **ret_text, char *err,
                             size_t errsz);

/* Parses the template <text> of <len> bytes (need not be NUL-terminated;
 * <name> is the FILE of error messages) as a <format> template of <kind>
 * (or "abuse") and, if <payload_json> is not NULL, renders it with that
 * payload in language <lang> (built-in words such as "no end" and digit
 * grouping; unknown languages get English).  With a NULL <payload_json>
 * only checks <text>, and the outputs are not written.  On success
 * *<ret_subject> (PC_TEMPLATE_TEXT only; pass NULL for HTML) and
 * *<ret_body> are new strings the caller frees.  The building block of the
 * functions above, exposed for tests and the fuzzer. */
int pc_template_expand(const char *name, const char *text, size_t len, const char *kind,
                       enum pc_template_format format, const char *lang, const char *payload_json,
                       int64_t notification_id, int64_t created, char **ret_subject,
                       char **ret_body, char *err, size_t errsz);
