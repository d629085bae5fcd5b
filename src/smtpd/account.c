/* Per-VPS mail figures and rate windows (see account.h). */
#include "smtpd/account.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct account {
        struct account_vps **slots;
        size_t cap, n;
};

static uint64_t key_hash(const char *s)
{
        uint64_t h = 1469598103934665603ull;

        while (*s != '\0')
                h = (h ^ (unsigned char)*s++) * 1099511628211ull;
        return h;
}

int account_new(struct account **ret)
{
        struct account *a = calloc(1, sizeof(*a));

        if (a == NULL)
                return -ENOMEM;
        a->cap = 64;
        a->slots = calloc(a->cap, sizeof(*a->slots));
        if (a->slots == NULL) {
                free(a);
                return -ENOMEM;
        }
        *ret = a;
        return 0;
}

struct account *account_free(struct account *a)
{
        if (a == NULL)
                return NULL;
        for (size_t i = 0; i < a->cap; i++)
                free(a->slots[i]);
        free(a->slots);
        free(a);
        return NULL;
}

static struct account_vps **slot_of(struct account_vps **slots, size_t cap, const char *key)
{
        size_t i = key_hash(key) & (cap - 1);

        while (slots[i] != NULL && strcmp(slots[i]->key, key) != 0)
                i = (i + 1) & (cap - 1);
        return &slots[i];
}

static int grow(struct account *a)
{
        size_t cap = a->cap * 2;
        struct account_vps **slots = calloc(cap, sizeof(*slots));

        if (slots == NULL)
                return -ENOMEM;
        for (size_t i = 0; i < a->cap; i++)
                if (a->slots[i] != NULL)
                        *slot_of(slots, cap, a->slots[i]->key) = a->slots[i];
        free(a->slots);
        a->slots = slots;
        a->cap = cap;
        return 0;
}

struct account_vps *account_get(struct account *a, const char *key)
{
        struct account_vps **s = slot_of(a->slots, a->cap, key);

        if (*s != NULL)
                return *s;
        if ((a->n + 1) * 2 > a->cap) {
                if (grow(a) < 0)
                        return NULL;
                s = slot_of(a->slots, a->cap, key);
        }
        *s = calloc(1, sizeof(**s));
        if (*s == NULL)
                return NULL;
        snprintf((*s)->key, sizeof((*s)->key), "%s", key);
        a->n++;
        return *s;
}

static int64_t slice_of(int64_t window_ms, int64_t now_ms)
{
        int64_t width = window_ms / ACCOUNT_BUCKETS;

        return now_ms / (width > 0 ? width : 1);
}

uint64_t window_sum(const struct window *w, int64_t window_ms, int64_t now_ms)
{
        int64_t now = slice_of(window_ms, now_ms);
        uint64_t sum = 0;

        for (size_t i = 0; i < ACCOUNT_BUCKETS; i++)
                if (w->slice[i] > now - ACCOUNT_BUCKETS && w->slice[i] <= now)
                        sum += w->count[i];
        return sum;
}

uint64_t window_add(struct window *w, uint64_t n, int64_t window_ms, int64_t now_ms)
{
        int64_t now = slice_of(window_ms, now_ms);
        size_t i = (size_t)(now % ACCOUNT_BUCKETS);

        if (w->slice[i] != now) {
                w->slice[i] = now;
                w->count[i] = 0;
        }
        w->count[i] += (uint32_t)n;
        return window_sum(w, window_ms, now_ms);
}

/* The domain bitmap covers one window, then starts again. */
static void domains_roll(struct account_vps *v, int64_t now_ms)
{
        if (now_ms - v->domains_since >= v->window_ms) {
                memset(v->domains, 0, sizeof(v->domains));
                v->domains_since = now_ms;
        }
}

_Static_assert(sizeof(((struct account_vps *)0)->domains) % 8 == 0, "the domain bitmap is counted by 64-bit words");

unsigned account_domains(const struct account_vps *v, int64_t now_ms)
{
        const double m = sizeof(v->domains) * 8;
        unsigned zero = 0;

        if (now_ms - v->domains_since >= v->window_ms)
                return 0;
        /* By 64-bit words: the bitmap is counted after every recipient. */
        for (size_t i = 0; i < sizeof(v->domains); i += 8) {
                uint64_t w;

                memcpy(&w, v->domains + i, 8);
                zero += 64 - (unsigned)__builtin_popcountll(w);
        }
        if (zero == 0)
                zero = 1;
        /* Linear counting: n ~ -m ln(zero / m). */
        return (unsigned)lround(-m * log(zero / m));
}

unsigned account_domain(struct account_vps *v, uint32_t hash, int64_t now_ms)
{
        unsigned bit = hash % (sizeof(v->domains) * 8);

        domains_roll(v, now_ms);
        v->domains[bit / 8] |= (uint8_t)(1u << (bit % 8));
        return account_domains(v, now_ms);
}

bool account_may_accept(unsigned open, unsigned max_sessions)
{
        return open < max_sessions;
}

bool account_may_connect(const struct account_vps *v, const struct pc_smtp_proxy_limits *l)
{
        return v->active < l->sessions_per_vps;
}

bool account_may_mail(const struct account_vps *v, const struct pc_smtp_proxy_limits *l, int64_t now_ms)
{
        /* Messages of other sessions still under way count already:
         * twenty sessions at once get one slot, not twenty. */
        return window_sum(&v->win_messages, l->window * 1000, now_ms) + v->messages_pending <
               l->messages_per_hour;
}

bool account_may_rcpt(unsigned rcpt_sent, const struct pc_smtp_proxy_limits *l)
{
        return rcpt_sent < l->recipients_per_message;
}

bool account_may_recipient(const struct account_vps *v, const struct pc_smtp_proxy_limits *l, int64_t now_ms)
{
        return window_sum(&v->win_recipients, l->window * 1000, now_ms) < l->recipients_per_hour;
}

static json_t *stages_json(const uint64_t *counts)
{
        static const char *const names[ACCOUNT_STAGES] = { "connect", "mail", "rcpt", "data" };
        json_t *o = json_object();

        for (size_t i = 0; i < ACCOUNT_STAGES; i++)
                json_object_set_new(o, names[i], json_integer((json_int_t)counts[i]));
        return o;
}

json_t *account_json(const struct account *a, int64_t now_ms)
{
        json_t *arr = json_array();

        for (size_t i = 0; i < a->cap; i++) {
                const struct account_vps *v = a->slots[i];
                json_t *o;

                if (v == NULL)
                        continue;
                o = json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                              "vps", v->key, "active_sessions", v->active,
                              "sessions", (json_int_t)v->sessions,
                              "messages", (json_int_t)v->messages,
                              "messages_failed", (json_int_t)v->messages_failed,
                              "recipients", (json_int_t)v->recipients,
                              "recipients_refused", (json_int_t)v->recipients_refused,
                              "bytes", (json_int_t)v->bytes,
                              "limited", (json_int_t)v->limited);
                json_object_set_new(o, "upstream_4xx", stages_json(v->upstream_4xx));
                json_object_set_new(o, "upstream_5xx", stages_json(v->upstream_5xx));
                json_object_set_new(o, "window", json_pack("{s:I, s:I, s:I, s:i}",
                        "seconds", (json_int_t)(v->window_ms / 1000),
                        "messages", (json_int_t)window_sum(&v->win_messages, v->window_ms, now_ms),
                        "recipients", (json_int_t)window_sum(&v->win_recipients, v->window_ms, now_ms),
                        "domains", (int)account_domains(v, now_ms)));
                json_object_set_new(o, "last_activity", json_integer(v->last_ms / 1000));
                json_array_append_new(arr, o);
        }
        return arr;
}
