/* Log lines per key (a VPS, an unknown source address) held to a rate, so
 * that a customer cannot fill the disk or drown the logs: at most <burst>
 * lines per key per <period>; what is over is counted and summed up in one
 * line when the period ends ("vps-101: 12,345 connections refused in the
 * last 10 s, 12,335 not logged one by one: <reason>").
 *
 * Pure, like src/smtp/relay.c: no clock, no I/O; the caller passes the time
 * and gets summaries through a callback.  Bounded: at most <max_keys> keys
 * at once; events of further keys share one overflow key ("other"). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOGRATE_KEY_MAX 64
#define LOGRATE_REASON_MAX 320

/* The end of a period in which some events of <key> were not logged. */
struct lograte_summary {
        const char *key;
        uint64_t total;      /* events in the period */
        uint64_t suppressed; /* ... of which not logged one by one */
        int64_t period_ms;
        const char *reason;  /* the last suppressed event's */
};

typedef void (*lograte_emit_fn)(void *ctx, const struct lograte_summary *s);

struct lograte;

/* A limiter of <burst> lines per key per <period_ms>, for at most
 * <max_keys> keys; <emit> (called with <ctx>) writes summaries.
 * -EINVAL or -ENOMEM on failure. */
int lograte_new(unsigned burst, int64_t period_ms, size_t max_keys, lograte_emit_fn emit, void *ctx,
                struct lograte **ret);

/* Frees <lr> (accepts NULL) without emitting anything; returns NULL. */
struct lograte *lograte_free(struct lograte *lr);

/* Counts one event of <key> (truncated to LOGRATE_KEY_MAX - 1 bytes) at
 * <now_ms>, with <reason> kept for a summary.  Returns true if the caller
 * should log the event's own line.  A period of <key> that had ended is
 * summed up first (through emit). */
bool lograte_event(struct lograte *lr, const char *key, const char *reason, int64_t now_ms);

/* Sums up and forgets every key whose period ended by <now_ms>; call it
 * every second or so.  Keys with nothing suppressed are forgotten quietly. */
void lograte_flush(struct lograte *lr, int64_t now_ms);

/* Keys tracked now (for tests). */
size_t lograte_keys(const struct lograte *lr);
