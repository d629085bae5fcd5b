/* The model: VPSes by id, each with what is in force on it. */
#include "policy/model.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct pc_model {
        const struct pc_config *cfg;
        struct pc_vps **list; /* dense, for iteration */
        size_t n, cap;
        struct pc_vps **index; /* open addressing, linear probing */
        size_t index_cap;      /* power of two, > 2 * n */
        struct pc_vps **by_iface; /* VPSes with an interface, the same way; */
        size_t by_iface_cap;      /* keyed by iface; pointers are unique */
};

/* FNV-1a: short ids, no adversary can choose them faster than the CLI. */
static size_t hash_id(const char *s)
{
        uint64_t h = 1469598103934665603ull;

        for (; *s != '\0'; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ull;
        return (size_t)(h ^ (h >> 32));
}

static int index_grow(struct pc_model *m)
{
        size_t cap = m->index_cap == 0 ? 64 : m->index_cap * 2;
        struct pc_vps **idx = calloc(cap, sizeof(*idx));

        if (idx == NULL)
                return -ENOMEM;
        for (size_t i = 0; i < m->n; i++) {
                size_t j = hash_id(m->list[i]->id) & (cap - 1);

                while (idx[j] != NULL)
                        j = (j + 1) & (cap - 1);
                idx[j] = m->list[i];
        }
        free(m->index);
        m->index = idx;
        m->index_cap = cap;
        return 0;
}

static size_t index_slot(const struct pc_model *m, const char *id)
{
        size_t j = hash_id(id) & (m->index_cap - 1);

        while (m->index[j] != NULL && strcmp(m->index[j]->id, id) != 0)
                j = (j + 1) & (m->index_cap - 1);
        return j;
}

/* Puts <vps> into the interface table <tab> of <cap> slots (not full). */
static void iface_put(struct pc_vps **tab, size_t cap, struct pc_vps *vps)
{
        size_t j = hash_id(vps->iface) & (cap - 1);

        while (tab[j] != NULL)
                j = (j + 1) & (cap - 1);
        tab[j] = vps;
}

/* Doubles the interface table: it always has room for every VPS, so that
 * adding one never fails on it after the id index took it. */
static int iface_grow(struct pc_model *m)
{
        size_t cap = m->by_iface_cap == 0 ? 64 : m->by_iface_cap * 2;
        struct pc_vps **tab = calloc(cap, sizeof(*tab));

        if (tab == NULL)
                return -ENOMEM;
        for (size_t i = 0; i < m->by_iface_cap; i++)
                if (m->by_iface[i] != NULL)
                        iface_put(tab, cap, m->by_iface[i]);
        free(m->by_iface);
        m->by_iface = tab;
        m->by_iface_cap = cap;
        return 0;
}

/* Indexes <vps> by its interface, if it has one. */
static void iface_insert(struct pc_model *m, struct pc_vps *vps)
{
        if (vps->iface[0] != '\0')
                iface_put(m->by_iface, m->by_iface_cap, vps);
}

/* Takes <vps> (this very VPS, not another with the same interface) out of
 * the interface table; backward-shift deletion as in pc_model_take(). */
static void iface_delete(struct pc_model *m, const struct pc_vps *vps)
{
        size_t cap = m->by_iface_cap, i, j;

        if (vps->iface[0] == '\0')
                return;
        for (i = hash_id(vps->iface) & (cap - 1); m->by_iface[i] != vps; i = (i + 1) & (cap - 1))
                if (m->by_iface[i] == NULL)
                        return; /* not indexed: cannot happen */
        m->by_iface[i] = NULL;
        for (j = (i + 1) & (cap - 1); m->by_iface[j] != NULL; j = (j + 1) & (cap - 1)) {
                size_t home = hash_id(m->by_iface[j]->iface) & (cap - 1);
                bool movable = (j > i) ? (home <= i || home > j) : (home <= i && home > j);

                if (movable) {
                        m->by_iface[i] = m->by_iface[j];
                        m->by_iface[j] = NULL;
                        i = j;
                }
        }
}

int pc_model_new(const struct pc_config *cfg, struct pc_model **ret)
{
        struct pc_model *m = calloc(1, sizeof(*m));

        if (m == NULL)
                return -ENOMEM;
        m->cfg = cfg;
        if (index_grow(m) < 0 || iface_grow(m) < 0) {
                free(m->index);
                free(m);
                return -ENOMEM;
        }
        *ret = m;
        return 0;
}

struct pc_model *pc_model_free(struct pc_model *m)
{
        if (m == NULL)
                return NULL;
        for (size_t i = 0; i < m->n; i++)
                pc_vps_free(m->list[i]);
        free(m->list);
        free(m->index);
        free(m->by_iface);
        free(m);
        return NULL;
}

int pc_vps_new(struct pc_vps **ret)
{
        struct pc_vps *v = calloc(1, sizeof(*v));

        if (v == NULL)
                return -ENOMEM;
        *ret = v;
        return 0;
}

struct pc_vps *pc_vps_free(struct pc_vps *vps)
{
        if (vps == NULL)
                return NULL;
        free(vps->addrs);
        free(vps->exceptions);
        free(vps->filters);
        free(vps);
        return NULL;
}

int pc_model_add(struct pc_model *m, struct pc_vps *vps)
{
        size_t slot;

        if (vps->site == NULL || !pc_name_valid(vps->id))
                return -EINVAL;
        if (2 * (m->n + 1) >= m->index_cap && index_grow(m) < 0)
                return -ENOMEM;
        if (2 * (m->n + 1) >= m->by_iface_cap && iface_grow(m) < 0)
                return -ENOMEM;
        slot = index_slot(m, vps->id);
        if (m->index[slot] != NULL)
                return -EEXIST;
        if (m->n == m->cap) {
                size_t cap = m->cap == 0 ? 64 : m->cap * 2;
                struct pc_vps **l = realloc(m->list, cap * sizeof(*l));

                if (l == NULL)
                        return -ENOMEM;
                m->list = l;
                m->cap = cap;
        }
        pc_vps_reindex(vps);
        vps->model_slot = m->n;
        m->list[m->n++] = vps;
        m->index[slot] = vps;
        iface_insert(m, vps);
        return 0;
}

int pc_model_remove(struct pc_model *m, const char *id)
{
        struct pc_vps *vps;
        int r = pc_model_take(m, id, &vps);

        if (r < 0)
                return r;
        pc_vps_free(vps);
        return 0;
}

int pc_model_take(struct pc_model *m, const char *id, struct pc_vps **ret)
{
        size_t i = index_slot(m, id), j;
        struct pc_vps *vps = m->index[i];

        if (vps == NULL)
                return -ENOENT;
        /* Backward-shift deletion keeps probe chains intact without tombstones. */
        m->index[i] = NULL;
        for (j = (i + 1) & (m->index_cap - 1); m->index[j] != NULL;
             j = (j + 1) & (m->index_cap - 1)) {
                size_t home = hash_id(m->index[j]->id) & (m->index_cap - 1);
                bool movable = (j > i) ? (home <= i || home > j) : (home <= i && home > j);

                if (movable) {
                        m->index[i] = m->index[j];
                        m->index[j] = NULL;
                        i = j;
                }
        }
        iface_delete(m, vps);
        m->list[vps->model_slot] = m->list[--m->n];
        m->list[vps->model_slot]->model_slot = vps->model_slot;
        *ret = vps;
        return 0;
}

struct pc_vps *pc_model_find(const struct pc_model *m, const char *id)
{
        return m->index[index_slot(m, id)];
}

struct pc_vps *pc_model_find_iface(const struct pc_model *m, const char *iface)
{
        size_t cap = m->by_iface_cap, j;

        if (iface == NULL || iface[0] == '\0')
                return NULL;
        for (j = hash_id(iface) & (cap - 1); m->by_iface[j] != NULL; j = (j + 1) & (cap - 1))
                if (strcmp(m->by_iface[j]->iface, iface) == 0)
                        return m->by_iface[j];
        return NULL;
}

int pc_model_set_iface(struct pc_model *m, struct pc_vps *vps, const char *iface)
{
        if (iface == NULL || strlen(iface) >= sizeof(vps->iface))
                return -EINVAL;
        if (pc_model_find(m, vps->id) != vps)
                return -ENOENT;
        iface_delete(m, vps);
        snprintf(vps->iface, sizeof(vps->iface), "%s", iface);
        iface_insert(m, vps);
        return 0;
}

size_t pc_model_count(const struct pc_model *m)
{
        return m->n;
}

struct pc_vps *pc_model_at(const struct pc_model *m, size_t i)
{
        return i < m->n ? m->list[i] : NULL;
}

const struct pc_config *pc_model_config(const struct pc_model *m)
{
        return m->cfg;
}

/* Appends <item> of <size> bytes to the heap array *<arr> holding *<n>. */
static int array_append(void *arr, size_t *n, size_t max, const void *item, size_t size)
{
        void **p = arr;
        char *grown;

        if (*n >= max)
                return -ENOSPC;
        grown = realloc(*p, (*n + 1) * size);
        if (grown == NULL)
                return -ENOMEM;
        memcpy(grown + *n * size, item, size);
        *p = grown;
        (*n)++;
        return 0;
}

int pc_vps_add_addr(struct pc_vps *vps, const struct pc_prefix *p)
{
        return array_append(&vps->addrs, &vps->n_addrs, PC_VPS_ADDRS_MAX, p, sizeof(*p));
}

int pc_vps_add_exception(struct pc_vps *vps, const struct pc_exception *e)
{
        int r;

        if (pc_vps_exception_for(vps, e->service) != NULL)
                return -EEXIST;
        r = array_append(&vps->exceptions, &vps->n_exceptions, PC_VPS_EXCEPTIONS_MAX, e,
                         sizeof(*e));
        if (r < 0)
                return r;
        pc_vps_reindex(vps);
        return 0;
}

int pc_vps_add_filter(struct pc_vps *vps, const struct pc_filter *f)
{
        return array_append(&vps->filters, &vps->n_filters, PC_VPS_FILTERS_MAX, f, sizeof(*f));
}

void pc_vps_reindex(struct pc_vps *vps)
{
        const struct pc_policy *pol = vps->site != NULL ? vps->site->policy : NULL;

        vps->exempt_mask = 0;
        if (pol == NULL)
                return;
        for (size_t i = 0; i < pol->n_rules; i++)
                if (pc_vps_exception_for(vps, pol->rules[i].service->name) != NULL)
                        vps->exempt_mask |= UINT64_C(1) << i;
}

const struct pc_exception *pc_vps_exception_for(const struct pc_vps *vps, const char *service)
{
        for (size_t i = 0; i < vps->n_exceptions; i++)
                if (strcmp(vps->exceptions[i].service, service) == 0)
                        return &vps->exceptions[i];
        return NULL;
}

bool pc_exception_source_prefix(const char *service, struct pc_prefix *ret)
{
        struct pc_prefix p;

        if (strncmp(service, PC_SOURCE_PREFIX, strlen(PC_SOURCE_PREFIX)) != 0 ||
            pc_parse_prefix(service + strlen(PC_SOURCE_PREFIX), false, &p) < 0)
                return false;
        if (ret != NULL)
                *ret = p;
        return true;
}

bool pc_exception_subject_valid(const char *service)
{
        return pc_name_valid(service) || pc_exception_source_prefix(service, NULL);
}
