/* Blocked attempts: the last count of every kernel counter element (see
 * attempts.h).  Open addressing with linear probing over 32-byte slots,
 * at most half full; the key is hashed with a per-table random seed, since
 * a tenant chooses the ports (and so part of the key) it is counted on. */
#include "base/util.h"
#include "detect/attempts.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

struct key {
        char iface[16]; /* NUL-padded, so that keys compare as bytes */
        uint16_t port;
        uint8_t proto;
        uint8_t dir;
};

struct slot {
        struct key k;
        uint32_t pass; /* the last pass that noted it; 0: an empty slot */
        uint64_t packets;
};

struct pc_attempts {
        struct slot *slots;
        size_t cap; /* a power of two, more than twice n */
        size_t n;
        size_t n_noted; /* distinct elements noted in this pass */
        uint32_t pass;
        uint64_t seed;
};

static uint64_t hash(const struct pc_attempts *t, const struct key *k)
{
        const unsigned char *b = (const unsigned char *)k;
        uint64_t h = 1469598103934665603ull ^ t->seed;

        for (size_t i = 0; i < sizeof(*k); i++)
                h = (h ^ b[i]) * 1099511628211ull;
        /* Murmur3's finaliser: FNV alone clusters similar keys' low bits. */
        return pc_mix64(h);
}

/* The slot of <k> in <slots> of <cap>, or the empty slot where it goes. */
static struct slot *lookup(const struct pc_attempts *t, struct slot *slots, size_t cap, const struct key *k)
{
        size_t i = hash(t, k) & (cap - 1);

        while (slots[i].pass != 0 && memcmp(&slots[i].k, k, sizeof(*k)) != 0)
                i = (i + 1) & (cap - 1);
        return &slots[i];
}

/* Moves the slots noted in pass <keep> (every slot if 0) into a new array
 * of <cap> slots.  -ENOMEM leaves <t> as it was. */
static int rehash(struct pc_attempts *t, size_t cap, uint32_t keep)
{
        struct slot *slots = calloc(cap, sizeof(*slots));
        size_t n = 0;

        if (slots == NULL)
                return -ENOMEM;
        for (size_t i = 0; i < t->cap; i++) {
                const struct slot *s = &t->slots[i];

                if (s->pass == 0 || (keep != 0 && s->pass != keep))
                        continue;
                *lookup(t, slots, cap, &s->k) = *s;
                n++;
        }
        free(t->slots);
        t->slots = slots;
        t->cap = cap;
        t->n = n;
        return 0;
}

int pc_attempts_new(struct pc_attempts **ret)
{
        struct pc_attempts *t = calloc(1, sizeof(*t));

        if (t == NULL)
                return -ENOMEM;
        t->cap = 64;
        t->slots = calloc(t->cap, sizeof(*t->slots));
        if (t->slots == NULL) {
                free(t);
                return -ENOMEM;
        }
        if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != (ssize_t)sizeof(t->seed))
                t->seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)t;
        t->pass = 1;
        *ret = t;
        return 0;
}

struct pc_attempts *pc_attempts_free(struct pc_attempts *t)
{
        if (t != NULL)
                free(t->slots);
        free(t);
        return NULL;
}

void pc_attempts_begin(struct pc_attempts *t)
{
        t->pass = t->pass == UINT32_MAX ? 1 : t->pass + 1;
        t->n_noted = 0;
        if (t->pass == 1) {
                /* Wrapped (after 4 billion passes): renumber what is held. */
                for (size_t i = 0; i < t->cap; i++)
                        if (t->slots[i].pass != 0)
                                t->slots[i].pass = UINT32_MAX;
        }
}

int pc_attempts_note(struct pc_attempts *t, const char *iface, unsigned dir, uint8_t proto, uint16_t port,
                     uint64_t packets, uint64_t *ret_delta)
{
        struct key k;
        struct slot *s;

        memset(&k, 0, sizeof(k));
        strncpy(k.iface, iface, sizeof(k.iface) - 1);
        k.port = port;
        k.proto = proto;
        k.dir = (uint8_t)dir;
        s = lookup(t, t->slots, t->cap, &k);
        if (s->pass == 0) {
                if (t->n >= PC_ATTEMPTS_MAX)
                        return -ENOSPC;
                if (2 * (t->n + 1) > t->cap) {
                        if (rehash(t, t->cap * 2, 0) < 0)
                                return -ENOMEM;
                        s = lookup(t, t->slots, t->cap, &k);
                }
                s->k = k;
                s->packets = 0;
                t->n++;
        }
        if (s->pass != t->pass)
                t->n_noted++;
        s->pass = t->pass;
        *ret_delta = packets > s->packets ? packets - s->packets : 0;
        s->packets = packets;
        return 0;
}

void pc_attempts_end(struct pc_attempts *t)
{
        size_t cap = 64;

        if (t->n_noted == t->n)
                return; /* the usual pass: the kernel still holds every element */
        while (cap < 2 * t->n_noted + 1)
                cap *= 2;
        (void)rehash(t, cap, t->pass); /* -ENOMEM: forgotten on a later pass */
}

size_t pc_attempts_count(const struct pc_attempts *t)
{
        return t->n;
}
