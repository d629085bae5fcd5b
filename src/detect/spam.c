/* The spam detector (see spam.h for the rule).
 *
 * One fixed-size record per VPS, allocated when it is first fed, in a
 * chained hash index by id and in one list by the time it was last fed
 * (the clock given is made monotonic, so the head is always the least
 * recently fed: the one evicted for a newcomer, and the first to be
 * forgotten when idle).  A record holds the counters of the snapshot
 * before and PC_SPAM_SLICES slices of increases: a snapshot costs O(1)
 * plus what expired. */
#include "detect/spam.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX 64

/* The cumulative counters of a snapshot, in this order. */
enum { K_MESSAGES, K_FAILED, K_RECIPIENTS, K_REFUSED, K_LIMITED, K_N };
/* What a slice sums. */
enum { S_MESSAGES, S_RECIPIENTS, S_REFUSED, S_LIMITED, S_N };

struct vps {
        char id[ID_MAX];
        uint32_t hash;
        struct vps *hnext;             /* in its index chain */
        struct vps *prev, *next;       /* by last snapshot, oldest first */
        uint64_t last[K_N];            /* the counters of the snapshot before */
        int64_t slice[PC_SPAM_SLICES]; /* which slice each slot holds; -1: none */
        uint64_t count[PC_SPAM_SLICES][S_N];
        uint64_t domains;              /* the proxy's figure, last given */
        int64_t fed_ms;
        int64_t under_since;           /* reported: first time under every line since; -1 */
        unsigned restarts;
        bool reported;
};

struct pc_spam {
        struct pc_spam_params p;
        int64_t slice_ms;
        int64_t now;
        struct vps **index;
        size_t index_cap;              /* a power of two, at least n */
        size_t n;
        struct vps *oldest, *newest;
};

static uint32_t id_hash(const char *s)
{
        uint32_t h = 2166136261u;

        while (*s != '\0')
                h = (h ^ (unsigned char)*s++) * 16777619u;
        return h;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
        return a + b < a ? UINT64_MAX : a + b;
}

void pc_spam_params_default(struct pc_spam_params *p)
{
        *p = (struct pc_spam_params){
                .messages_per_hour = 200,
                .recipients_per_message = 50,
                .domains_per_hour = 50,
                .upstream_reject_ratio = 0.5,
                .min_recipients = 20,
                .limit_hits_per_hour = 10,
                .window_ms = 3600 * 1000,
                .max_vps = 65536,
        };
}

static bool count_ok(unsigned n)
{
        return n >= 1 && n <= PC_SPAM_COUNT_MAX;
}

int pc_spam_new(const struct pc_spam_params *p, struct pc_spam **ret)
{
        struct pc_spam *s;

        if (!count_ok(p->messages_per_hour) || !count_ok(p->recipients_per_message) ||
            !count_ok(p->domains_per_hour) || !count_ok(p->min_recipients) || !count_ok(p->limit_hits_per_hour) ||
            !(p->upstream_reject_ratio > 0 && p->upstream_reject_ratio <= 1) ||
            p->window_ms < PC_SPAM_SLICES || p->window_ms > PC_SPAM_TIME_MAX || p->max_vps == 0 ||
            p->max_vps > PC_SPAM_VPS_MAX)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (s == NULL)
                return -ENOMEM;
        s->p = *p;
        s->slice_ms = p->window_ms / PC_SPAM_SLICES;
        s->index_cap = 64;
        s->index = calloc(s->index_cap, sizeof(*s->index));
        if (s->index == NULL) {
                free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

struct pc_spam *pc_spam_free(struct pc_spam *s)
{
        struct vps *v, *next;

        if (s == NULL)
                return NULL;
        for (v = s->oldest; v != NULL; v = next) {
                next = v->next;
                free(v);
        }
        free(s->index);
        free(s);
        return NULL;
}

static struct vps *find(const struct pc_spam *s, const char *id, uint32_t h)
{
        struct vps *v;

        for (v = s->index[h & (s->index_cap - 1)]; v != NULL; v = v->hnext)
                if (v->hash == h && strcmp(v->id, id) == 0)
                        return v;
        return NULL;
}

static void list_unlink(struct pc_spam *s, struct vps *v)
{
        if (v->prev != NULL)
                v->prev->next = v->next;
        else
                s->oldest = v->next;
        if (v->next != NULL)
                v->next->prev = v->prev;
        else
                s->newest = v->prev;
        v->prev = v->next = NULL;
}

static void list_append(struct pc_spam *s, struct vps *v)
{
        v->prev = s->newest;
        v->next = NULL;
        if (s->newest != NULL)
                s->newest->next = v;
        else
                s->oldest = v;
        s->newest = v;
}

/* Removes <v> from the index and the list and frees it. */
static void drop(struct pc_spam *s, struct vps *v)
{
        struct vps **pp = &s->index[v->hash & (s->index_cap - 1)];

        while (*pp != v)
                pp = &(*pp)->hnext;
        *pp = v->hnext;
        list_unlink(s, v);
        s->n--;
        free(v);
}

/* Doubles the index; on failure the old one stays (chains just grow). */
static void index_grow(struct pc_spam *s)
{
        size_t cap = s->index_cap * 2;
        struct vps **index = calloc(cap, sizeof(*index));

        if (index == NULL)
                return;
        for (struct vps *v = s->oldest; v != NULL; v = v->next) {
                v->hnext = index[v->hash & (cap - 1)];
                index[v->hash & (cap - 1)] = v;
        }
        free(s->index);
        s->index = index;
        s->index_cap = cap;
}

/* Sums <v>'s live slices at s->now into <w>. */
static void window_of(const struct pc_spam *s, const struct vps *v, struct pc_spam_window *w)
{
        int64_t cur = s->now / s->slice_ms;
        uint64_t sum[S_N] = { 0 };

        for (size_t i = 0; i < PC_SPAM_SLICES; i++)
                if (v->slice[i] >= 0 && v->slice[i] > cur - PC_SPAM_SLICES && v->slice[i] <= cur)
                        for (size_t k = 0; k < S_N; k++)
                                sum[k] = sat_add(sum[k], v->count[i][k]);
        *w = (struct pc_spam_window){
                .messages = sum[S_MESSAGES],
                .recipients = sum[S_RECIPIENTS],
                .refused = sum[S_REFUSED],
                .limited = sum[S_LIMITED],
                .domains = v->domains,
                .reject_ratio = sum[S_RECIPIENTS] > 0 ? (double)sum[S_REFUSED] / (double)sum[S_RECIPIENTS] : 0,
        };
}

/* The rules <w> is over (bits), per spam.h. */
static unsigned rules_over(const struct pc_spam_params *p, const struct pc_spam_window *w)
{
        unsigned r = 0;
        unsigned __int128 many = (unsigned __int128)p->recipients_per_message * (w->messages > 0 ? w->messages : 1);

        if (w->messages > p->messages_per_hour)
                r |= 1u << PC_SPAM_MESSAGES;
        if (w->domains > p->domains_per_hour)
                r |= 1u << PC_SPAM_DOMAINS;
        /* 0.3 * 10 is 3.0000000000000004: a relative margin far under one
         * recipient in 2^40 keeps "refused >= ratio * recipients" exact. */
        if (w->recipients >= p->min_recipients &&
            (double)w->refused >= p->upstream_reject_ratio * (double)w->recipients * (1 - 1e-12))
                r |= 1u << PC_SPAM_REJECTS;
        if (w->recipients >= p->min_recipients && (unsigned __int128)w->recipients > many)
                r |= 1u << PC_SPAM_RECIPIENTS;
        if (w->limited >= p->limit_hits_per_hour)
                r |= 1u << PC_SPAM_LIMITED;
        return r;
}

static double threshold_of(const struct pc_spam_params *p, enum pc_spam_rule r)
{
        switch (r) {
        case PC_SPAM_MESSAGES: return p->messages_per_hour;
        case PC_SPAM_DOMAINS: return p->domains_per_hour;
        case PC_SPAM_REJECTS: return p->upstream_reject_ratio;
        case PC_SPAM_RECIPIENTS: return p->recipients_per_message;
        case PC_SPAM_LIMITED: return p->limit_hits_per_hour;
        default: return 0;
        }
}

const char *pc_spam_rule_name(enum pc_spam_rule r)
{
        static const char *const names[PC_SPAM_RULES] = { "messages", "domains", "rejects", "recipients",
                                                          "limited" };

        return (unsigned)r < PC_SPAM_RULES ? names[r] : "?";
}

/* Forgets the VPSes not fed within two windows of s->now. */
static void expire(struct pc_spam *s)
{
        while (s->oldest != NULL && s->now - s->oldest->fed_ms > 2 * s->p.window_ms)
                drop(s, s->oldest);
}

/* A new record for <id>, the least recently fed one evicted if full. */
static struct vps *add(struct pc_spam *s, const char *id, uint32_t h)
{
        struct vps *v;
        size_t b;

        if (s->n >= s->p.max_vps)
                drop(s, s->oldest);
        v = calloc(1, sizeof(*v));
        if (v == NULL)
                return NULL;
        memcpy(v->id, id, strlen(id) + 1);
        v->hash = h;
        for (size_t i = 0; i < PC_SPAM_SLICES; i++)
                v->slice[i] = -1;
        v->under_since = -1;
        if (s->n + 1 > s->index_cap)
                index_grow(s);
        b = h & (s->index_cap - 1);
        v->hnext = s->index[b];
        s->index[b] = v;
        list_append(s, v);
        s->n++;
        return v;
}

int pc_spam_feed(struct pc_spam *s, const struct pc_spam_figures *f, int64_t now_ms, pc_spam_cb cb,
                 void *userdata)
{
        const uint64_t cur[K_N] = { f->messages, f->messages_failed, f->recipients, f->recipients_refused,
                                    f->limited };
        uint64_t d[K_N];
        struct pc_spam_window w;
        struct vps *v;
        bool fresh = false, restart = false;
        unsigned over;
        int64_t slice;
        size_t i;
        uint32_t h;

        if (f->vps == NULL || f->vps[0] == '\0' || strnlen(f->vps, ID_MAX) >= ID_MAX)
                return -EINVAL;
        if (now_ms > s->now)
                s->now = now_ms;
        expire(s);
        h = id_hash(f->vps);
        v = find(s, f->vps, h);
        if (v == NULL) {
                v = add(s, f->vps, h);
                if (v == NULL)
                        return -ENOMEM;
                fresh = true;
        }
        for (size_t k = 0; k < K_N; k++)
                restart |= cur[k] < v->last[k];
        for (size_t k = 0; k < K_N; k++) {
                /* A baseline counts nothing; after a restart, or counted
                 * from zero since the caller last read, everything. */
                d[k] = fresh ? (f->from_zero ? cur[k] : 0) : restart ? cur[k] : cur[k] - v->last[k];
                v->last[k] = cur[k];
        }
        if (restart && !fresh)
                v->restarts++;
        slice = s->now / s->slice_ms;
        i = (size_t)(slice % PC_SPAM_SLICES);
        if (v->slice[i] != slice) {
                v->slice[i] = slice;
                memset(v->count[i], 0, sizeof(v->count[i]));
        }
        v->count[i][S_MESSAGES] = sat_add(v->count[i][S_MESSAGES], sat_add(d[K_MESSAGES], d[K_FAILED]));
        v->count[i][S_RECIPIENTS] = sat_add(v->count[i][S_RECIPIENTS], sat_add(d[K_RECIPIENTS], d[K_REFUSED]));
        v->count[i][S_REFUSED] = sat_add(v->count[i][S_REFUSED], d[K_REFUSED]);
        v->count[i][S_LIMITED] = sat_add(v->count[i][S_LIMITED], d[K_LIMITED]);
        v->domains = f->window_domains;
        v->fed_ms = s->now;
        list_unlink(s, v);
        list_append(s, v);

        window_of(s, v, &w);
        over = rules_over(&s->p, &w);
        if (v->reported) {
                if (over != 0)
                        v->under_since = -1;
                else if (v->under_since < 0)
                        v->under_since = s->now;
                else if (s->now - v->under_since >= s->p.window_ms) {
                        v->reported = false; /* the episode is over; this snapshot is under the lines */
                        v->under_since = -1;
                }
                return 0;
        }
        if (over == 0)
                return 0;
        v->reported = true;
        v->under_since = -1;
        if (cb != NULL) {
                struct pc_spam_finding fd = { .vps = v->id, .rules = over, .w = w, .restarts = v->restarts };

                fd.rule = (enum pc_spam_rule)__builtin_ctz(over);
                fd.threshold = threshold_of(&s->p, fd.rule);
                cb(userdata, &fd);
        }
        return 0;
}

void pc_spam_forget(struct pc_spam *s, const char *vps)
{
        struct vps *v;

        if (vps == NULL || strnlen(vps, ID_MAX) >= ID_MAX)
                return;
        v = find(s, vps, id_hash(vps));
        if (v != NULL)
                drop(s, v);
}

int pc_spam_stats(const struct pc_spam *s, const char *vps, struct pc_spam_vps *ret)
{
        const struct vps *v;

        if (vps == NULL || strnlen(vps, ID_MAX) >= ID_MAX)
                return -ENOENT;
        v = find(s, vps, id_hash(vps));
        if (v == NULL || s->now - v->fed_ms > 2 * s->p.window_ms)
                return -ENOENT;
        window_of(s, v, &ret->w);
        ret->reported = v->reported;
        return 0;
}

size_t pc_spam_vps_count(const struct pc_spam *s)
{
        return s->n;
}

size_t pc_spam_vps_bytes(void)
{
        return sizeof(struct vps);
}

int pc_spam_check(const struct pc_spam *s)
{
        const struct vps *v, *prev = NULL;
        int64_t cur = s->now / s->slice_ms;
        size_t n = 0, chained = 0;

        if (s->n > s->p.max_vps || (s->index_cap & (s->index_cap - 1)) != 0)
                return -EUCLEAN;
        for (v = s->oldest; v != NULL; prev = v, v = v->next) {
                if (v->prev != prev || (prev != NULL && prev->fed_ms > v->fed_ms) || v->fed_ms > s->now ||
                    strnlen(v->id, ID_MAX) >= ID_MAX || v->id[0] == '\0' || v->hash != id_hash(v->id) ||
                    find(s, v->id, v->hash) != v || (!v->reported && v->under_since >= 0) ||
                    v->under_since > s->now)
                        return -EUCLEAN;
                for (size_t i = 0; i < PC_SPAM_SLICES; i++)
                        if (v->slice[i] > cur || (v->slice[i] >= 0 && (size_t)(v->slice[i] % PC_SPAM_SLICES) != i))
                                return -EUCLEAN;
                n++;
        }
        if (prev != s->newest || n != s->n)
                return -EUCLEAN;
        for (size_t b = 0; b < s->index_cap; b++)
                for (v = s->index[b]; v != NULL; v = v->hnext) {
                        if ((v->hash & (s->index_cap - 1)) != b)
                                return -EUCLEAN;
                        chained++;
                }
        return chained == n ? 0 : -EUCLEAN;
}
