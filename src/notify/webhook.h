/* The provider's webhook: what a termination (or any event in the outbox's
 * "webhook" channel) looks like on the wire, and its signature.
 *
 * Pure: no sockets, no clock (the timestamp is passed in), no logging; the
 * agent's notifier (src/agent/notifier.c) POSTs what this builds.  The
 * contract, once (docs/NOTIFICATIONS.md says it for receivers):
 *   - the body is a JSON object {"delivery", "event", "created", "data"}:
 *     <delivery> is the id the store gave the event when it queued it (128
 *     random bits in hex; "portcullis-<notification id>" for rows queued
 *     before it had one), the same on every retry: receivers deduplicate
 *     on it; <data> the event's payload;
 *   - the header X-Portcullis-Signature is "t=<unix seconds>,v1=<hex>",
 *     <hex> the lowercase HMAC-SHA256, keyed with the shared secret, of
 *     "<unix seconds>.<body>" (the decimal timestamp, a full stop, the body
 *     bytes exactly as sent).  A receiver recomputes it, compares in
 *     constant time and refuses a timestamp too far from its clock. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "t=" + 20 digits + ",v1=" + 64 hex + NUL, rounded up. */
#define PC_WEBHOOK_SIGNATURE_MAX 128

/* A delivery id with its NUL (longer ones are cut). */
#define PC_WEBHOOK_DELIVERY_MAX 48

/* The body for notification <id> of <event>, queued at <created>, with
 * <payload_json> (a JSON object as text) as its data: compact JSON into
 * *<ret> (the caller frees it), and its delivery id into <delivery> (for
 * the X-Portcullis-Delivery header).  -EINVAL if <payload_json> is not a
 * JSON object, -ENOMEM. */
int pc_webhook_body(int64_t id, const char *event, int64_t created, const char *payload_json,
                    char delivery[PC_WEBHOOK_DELIVERY_MAX], char **ret);

/* The X-Portcullis-Signature value of <body> (<body_len> bytes) at
 * <timestamp> under <secret> (<secret_len> bytes, at least 1) into <out>
 * (PC_WEBHOOK_SIGNATURE_MAX bytes).  0, or -EINVAL (no secret), -EIO
 * (OpenSSL failed). */
int pc_webhook_sign(const void *secret, size_t secret_len, int64_t timestamp, const char *body, size_t body_len,
                    char out[PC_WEBHOOK_SIGNATURE_MAX]);

/* True if <header> (an X-Portcullis-Signature value) signs <body> under
 * <secret> and its timestamp is within <tolerance> seconds of <now>: what
 * a receiver does, for tests and for C receivers. */
bool pc_webhook_verify(const void *secret, size_t secret_len, const char *header, const char *body,
                       size_t body_len, int64_t now, int64_t tolerance);
