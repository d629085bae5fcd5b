/* Which VPS owns a source address (see addr_index.h). */
#include "policy/addr_index.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

struct slot {
        uint8_t family, len;
        uint8_t bytes[16]; /* masked to len */
        char id[PC_NAME_MAX];
        bool used;
};

struct addr_index {
        struct slot *slots;
        size_t cap; /* a power of two, at least twice the prefixes */
        uint16_t lens[2][129]; /* [v4=0/v6=1]: prefix lengths present, longest first */
        size_t n_lens[2];
};

static uint64_t hash(uint8_t family, uint8_t len, const uint8_t *b)
{
        uint64_t h = 1469598103934665603ull ^ ((uint64_t)family << 8 | len);

        for (size_t i = 0; i < 16; i++)
                h = (h ^ b[i]) * 1099511628211ull;
        return h;
}

static void mask(uint8_t *b, unsigned len)
{
        for (unsigned i = 0; i < 16; i++) {
                unsigned bits = len > i * 8 ? len - i * 8 : 0;

                b[i] &= bits >= 8 ? 0xff : (uint8_t)(0xff00 >> bits);
        }
}

static struct slot *find(const struct addr_index *ix, uint8_t family, uint8_t len, const uint8_t *b)
{
        size_t i = hash(family, len, b) & (ix->cap - 1);

        for (;;) {
                struct slot *s = &ix->slots[i];

                if (!s->used || (s->family == family && s->len == len && memcmp(s->bytes, b, 16) == 0))
                        return s;
                i = (i + 1) & (ix->cap - 1);
        }
}

int addr_index_build(const struct pc_model *m, struct addr_index **ret)
{
        struct addr_index *ix = calloc(1, sizeof(*ix));
        size_t n = 0;

        if (ix == NULL)
                return -ENOMEM;
        for (size_t i = 0; i < pc_model_count(m); i++)
                n += pc_model_at(m, i)->n_addrs;
        ix->cap = 16;
        while (ix->cap < n * 2 + 1)
                ix->cap *= 2;
        ix->slots = calloc(ix->cap, sizeof(*ix->slots));
        if (ix->slots == NULL) {
                free(ix);
                return -ENOMEM;
        }
        for (size_t i = 0; i < pc_model_count(m); i++) {
                const struct pc_vps *v = pc_model_at(m, i);

                for (size_t k = 0; k < v->n_addrs; k++) {
                        const struct pc_prefix *p = &v->addrs[k];
                        int f = p->family == AF_INET6;
                        uint8_t b[16] = { 0 };
                        struct slot *s;
                        size_t j;

                        memcpy(b, p->bytes, f ? 16 : 4);
                        mask(b, p->len);
                        s = find(ix, (uint8_t)p->family, p->len, b);
                        if (s->used)
                                continue; /* the store keeps prefixes unique */
                        s->used = true;
                        s->family = (uint8_t)p->family;
                        s->len = p->len;
                        memcpy(s->bytes, b, 16);
                        memcpy(s->id, v->id, sizeof(s->id));
                        for (j = 0; j < ix->n_lens[f] && ix->lens[f][j] != p->len; j++)
                                ;
                        if (j == ix->n_lens[f]) {
                                /* Insert, keeping the longest first. */
                                for (j = ix->n_lens[f]; j > 0 && ix->lens[f][j - 1] < p->len; j--)
                                        ix->lens[f][j] = ix->lens[f][j - 1];
                                ix->lens[f][j] = p->len;
                                ix->n_lens[f]++;
                        }
                }
        }
        *ret = ix;
        return 0;
}

struct addr_index *addr_index_free(struct addr_index *ix)
{
        if (ix != NULL)
                free(ix->slots);
        free(ix);
        return NULL;
}

const char *addr_index_lookup(const struct addr_index *ix, const struct sockaddr *sa)
{
        uint8_t addr[16] = { 0 };
        int family, f;

        if (sa->sa_family == AF_INET) {
                memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
                family = AF_INET;
        } else if (sa->sa_family == AF_INET6) {
                const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;

                if (IN6_IS_ADDR_V4MAPPED(a6)) {
                        memcpy(addr, a6->s6_addr + 12, 4);
                        family = AF_INET;
                } else {
                        memcpy(addr, a6->s6_addr, 16);
                        family = AF_INET6;
                }
        } else {
                return NULL;
        }
        f = family == AF_INET6;
        for (size_t j = 0; j < ix->n_lens[f]; j++) {
                uint8_t b[16];
                const struct slot *s;

                memcpy(b, addr, 16);
                mask(b, ix->lens[f][j]);
                s = find(ix, (uint8_t)family, (uint8_t)ix->lens[f][j], b);
                if (s->used)
                        return s->id;
        }
        return NULL;
}
