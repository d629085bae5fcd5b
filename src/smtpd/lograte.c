/* Per-key log rate limiting with summaries (see lograte.h). */
#include "smtpd/lograte.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
        char key[LOGRATE_KEY_MAX];
        char reason[LOGRATE_REASON_MAX];
        int64_t start;    /* the period began with the key's first event */
        uint64_t total;
        uint64_t logged;
};

struct lograte {
        unsigned burst;
        int64_t period_ms;
        lograte_emit_fn emit;
        void *ctx;
        struct entry *e;  /* <n> used of <max> */
        size_t n, max;
        uint32_t *slots;  /* index + 1 into <e>, 0 = free; a power of two */
        size_t n_slots;
        struct entry other; /* events of keys beyond <max> */
};

static uint64_t hash(const char *s)
{
        uint64_t h = 1469598103934665603ull;

        while (*s != '\0')
                h = (h ^ (unsigned char)*s++) * 1099511628211ull;
        return h;
}

/* The slot of <key>: the one holding it or the free one where it goes. */
static uint32_t *slot_of(const struct lograte *lr, const char *key)
{
        size_t i = hash(key) & (lr->n_slots - 1);

        while (lr->slots[i] != 0 && strcmp(lr->e[lr->slots[i] - 1].key, key) != 0)
                i = (i + 1) & (lr->n_slots - 1);
        return &lr->slots[i];
}

int lograte_new(unsigned burst, int64_t period_ms, size_t max_keys, lograte_emit_fn emit, void *ctx,
                struct lograte **ret)
{
        struct lograte *lr;

        if (period_ms <= 0 || max_keys == 0 || max_keys > UINT32_MAX / 4 || emit == NULL)
                return -EINVAL;
        lr = calloc(1, sizeof(*lr));
        if (lr == NULL)
                return -ENOMEM;
        lr->burst = burst;
        lr->period_ms = period_ms;
        lr->emit = emit;
        lr->ctx = ctx;
        lr->max = max_keys;
        lr->n_slots = 16;
        while (lr->n_slots < max_keys * 2)
                lr->n_slots *= 2;
        lr->e = calloc(max_keys, sizeof(*lr->e));
        lr->slots = calloc(lr->n_slots, sizeof(*lr->slots));
        if (lr->e == NULL || lr->slots == NULL)
                return lograte_free(lr), -ENOMEM;
        snprintf(lr->other.key, sizeof(lr->other.key), "other");
        *ret = lr;
        return 0;
}

struct lograte *lograte_free(struct lograte *lr)
{
        if (lr != NULL) {
                free(lr->e);
                free(lr->slots);
        }
        free(lr);
        return NULL;
}

/* Ends the period of <x>: a summary if something was not logged. */
static void end_period(struct lograte *lr, struct entry *x)
{
        if (x->total > x->logged) {
                struct lograte_summary s = {
                        .key = x->key,
                        .total = x->total,
                        .suppressed = x->total - x->logged,
                        .period_ms = lr->period_ms,
                        .reason = x->reason,
                };

                lr->emit(lr->ctx, &s);
        }
        x->total = x->logged = 0;
}

bool lograte_event(struct lograte *lr, const char *key, const char *reason, int64_t now_ms)
{
        char k[LOGRATE_KEY_MAX];
        struct entry *x;
        uint32_t *slot;

        snprintf(k, sizeof(k), "%s", key);
        slot = slot_of(lr, k);
        if (*slot != 0) {
                x = &lr->e[*slot - 1];
        } else if (lr->n < lr->max) {
                x = &lr->e[lr->n++];
                memset(x, 0, sizeof(*x));
                memcpy(x->key, k, sizeof(k));
                x->start = now_ms;
                *slot = (uint32_t)lr->n;
        } else {
                x = &lr->other;
        }
        if (x->total > 0 && now_ms - x->start >= lr->period_ms)
                end_period(lr, x);
        if (x->total == 0)
                x->start = now_ms;
        x->total++;
        if (x->logged < lr->burst) {
                x->logged++;
                return true;
        }
        snprintf(x->reason, sizeof(x->reason), "%s", reason != NULL ? reason : "");
        return false;
}

void lograte_flush(struct lograte *lr, int64_t now_ms)
{
        size_t kept = 0;

        for (size_t i = 0; i < lr->n; i++) {
                struct entry *x = &lr->e[i];

                if (now_ms - x->start >= lr->period_ms) {
                        end_period(lr, x);
                        continue; /* forgotten */
                }
                if (kept != i)
                        lr->e[kept] = *x;
                kept++;
        }
        if (lr->other.total > 0 && now_ms - lr->other.start >= lr->period_ms)
                end_period(lr, &lr->other);
        if (kept == lr->n)
                return;
        lr->n = kept;
        memset(lr->slots, 0, lr->n_slots * sizeof(*lr->slots));
        for (size_t i = 0; i < lr->n; i++)
                *slot_of(lr, lr->e[i].key) = (uint32_t)(i + 1);
}

size_t lograte_keys(const struct lograte *lr)
{
        return lr->n;
}
