/* The model: VPSes by id, each with what is in force on it. */
#include "policy/model.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* VPS pointers in open addressing keyed by a string member of the VPS (its
 * id, or its interface): linear probing, a power-of-two size kept above
 * twice the entries, backward-shift deletion (no tombstones).  Each slot
 * keeps its key's hash: a probe past another VPS, a resize and a deletion
 * read no VPS (at 100,000 VPSes each such read is a cache miss). */
struct vps_slot {
        struct pc_vps *vps; /* NULL: empty */
        size_t hash;        /* hash_id() of its key */
};

struct vps_table {
        struct vps_slot *slots;
        size_t cap;
        size_t key; /* offsetof the key in struct pc_vps */
};

struct pc_model {
        const struct pc_config *cfg;
        struct pc_vps **list; /* dense, for iteration */
        size_t n, cap;
        struct vps_table by_id;
        struct vps_table by_iface; /* VPSes with an interface; pointers are unique */
};

/* FNV-1a: short ids, no adversary can choose them faster than the CLI. */
static size_t hash_id(const char *s)
{
        uint64_t h = 1469598103934665603ull;

        for (; *s != '\0'; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ull;
        return (size_t)(h ^ (h >> 32));
}

static const char *table_key(const struct vps_table *t, const struct pc_vps *vps)
{
        return (const char *)vps + t->key;
}

/* The slot holding the VPS keyed <key> (whose hash_id() is <h>), or the
 * empty slot where it would go. */
static size_t table_slot(const struct vps_table *t, const char *key, size_t h)
{
        size_t j = h & (t->cap - 1);

        while (t->slots[j].vps != NULL &&
               (t->slots[j].hash != h || strcmp(table_key(t, t->slots[j].vps), key) != 0))
                j = (j + 1) & (t->cap - 1);
        return j;
}

/* Puts <vps>, whose key hashes to <h>, into <t> (not full), after any VPS
 * with the same key. */
static void table_put(struct vps_table *t, struct pc_vps *vps, size_t h)
{
        size_t j = h & (t->cap - 1);

        while (t->slots[j].vps != NULL)
                j = (j + 1) & (t->cap - 1);
        t->slots[j] = (struct vps_slot){ .vps = vps, .hash = h };
}

/* Moves <t> to <cap> slots (a power of two, above twice its entries). */
static int table_resize(struct vps_table *t, size_t cap)
{
        struct vps_table bigger = { .cap = cap, .key = t->key };

        bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
        if (bigger.slots == NULL)
                return -ENOMEM;
        for (size_t i = 0; i < t->cap; i++)
                if (t->slots[i].vps != NULL)
                        table_put(&bigger, t->slots[i].vps, t->slots[i].hash);
        free(t->slots);
        *t = bigger;
        return 0;
}

/* Doubles <t>: it always has room for every VPS, so that adding one never
 * fails on a table after another took it. */
static int table_grow(struct vps_table *t)
{
        return table_resize(t, t->cap == 0 ? 64 : t->cap * 2);
}

/* Takes <vps> (this very VPS, not another with the same key) out of <t>. */
static void table_delete(struct vps_table *t, const struct pc_vps *vps)
{
        size_t cap = t->cap, i, j;

        for (i = hash_id(table_key(t, vps)) & (cap - 1); t->slots[i].vps != vps; i = (i + 1) & (cap - 1))
                if (t->slots[i].vps == NULL)
                        return; /* not in the table: cannot happen */
        t->slots[i].vps = NULL;
        for (j = (i + 1) & (cap - 1); t->slots[j].vps != NULL; j = (j + 1) & (cap - 1)) {
                size_t home = t->slots[j].hash & (cap - 1);
                bool movable = (j > i) ? (home <= i || home > j) : (home <= i && home > j);

                if (movable) {
                        t->slots[i] = t->slots[j];
                        t->slots[j].vps = NULL;
                        i = j;
                }
        }
}

/* Indexes <vps> by its interface, if it has one. */
static void iface_insert(struct pc_model *m, struct pc_vps *vps)
{
        if (vps->iface[0] != '\0')
                table_put(&m->by_iface, vps, hash_id(vps->iface));
}

static void iface_delete(struct pc_model *m, const struct pc_vps *vps)
{
        if (vps->iface[0] != '\0')
                table_delete(&m->by_iface, vps);
}

int pc_model_new(const struct pc_config *cfg, struct pc_model **ret)
{
        struct pc_model *m = calloc(1, sizeof(*m));

        if (m == NULL)
                return -ENOMEM;
        m->cfg = cfg;
        m->by_id.key = offsetof(struct pc_vps, id);
        m->by_iface.key = offsetof(struct pc_vps, iface);
        if (table_grow(&m->by_id) < 0 || table_grow(&m->by_iface) < 0) {
                free(m->by_id.slots);
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
        free(m->by_id.slots);
        free(m->by_iface.slots);
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

/* A copy of <vps> in no model, on <site>, whose services are <cfg>'s
 * (NULL: <vps>'s own configuration).  The filters its exceptions keep
 * closed are derived again (pc_vps_add_exception), not copied. */
static int vps_copy(const struct pc_vps *vps, const struct pc_site *site, const struct pc_config *cfg,
                    struct pc_vps **ret)
{
        struct pc_vps *c;
        int r = pc_vps_new(&c);

        if (r < 0)
                return r;
        *c = *vps;
        c->site = site;
        c->exceptions = NULL, c->n_exceptions = 0;
        c->filters = NULL, c->n_filters = 0;
        c->addrs = NULL, c->n_addrs = 0;
        c->model_slot = 0;
        for (size_t i = 0; r >= 0 && i < vps->n_addrs; i++)
                r = pc_vps_add_addr(c, &vps->addrs[i]);
        for (size_t i = 0; r >= 0 && i < vps->n_exceptions; i++)
                r = pc_vps_add_exception(c, &vps->exceptions[i]);
        for (size_t i = 0; r >= 0 && i < vps->n_filters; i++) {
                struct pc_filter f = vps->filters[i];

                if (f.exception_id != 0)
                        continue;
                if (cfg != NULL && f.scope == PC_SCOPE_SERVICE && f.service != NULL)
                        f.service = pc_config_service(cfg, f.service->name);
                r = pc_vps_add_filter(c, &f);
        }
        if (r < 0) {
                pc_vps_free(c);
                return r;
        }
        pc_vps_reindex(c);
        *ret = c;
        return 0;
}

int pc_vps_clone(const struct pc_vps *vps, struct pc_vps **ret)
{
        return vps_copy(vps, vps->site, NULL, ret);
}

static bool ranges_equal(const struct pc_port_range *a, const struct pc_port_range *b, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (a[i].proto != b[i].proto || a[i].lo != b[i].lo || a[i].hi != b[i].hi)
                        return false;
        return true;
}

static bool exception_equal(const struct pc_exception *a, const struct pc_exception *b)
{
        return a->id == b->id && strcmp(a->service, b->service) == 0 && a->n_ports == b->n_ports &&
               a->n_ports <= PC_EXCEPTION_PORTS_MAX && ranges_equal(a->ports, b->ports, a->n_ports) &&
               a->ticket_id == b->ticket_id && strcmp(a->by, b->by) == 0 && strcmp(a->reason, b->reason) == 0 &&
               a->created == b->created && a->until == b->until;
}

static bool filter_equal(const struct pc_filter *a, const struct pc_filter *b)
{
        return a->id == b->id && a->direction == b->direction && a->scope == b->scope && a->service == b->service &&
               ranges_equal(&a->ports, &b->ports, 1) && a->incident_id == b->incident_id &&
               strcmp(a->by, b->by) == 0 && strcmp(a->reason, b->reason) == 0 && a->created == b->created &&
               a->until == b->until && a->exception_id == b->exception_id;
}

bool pc_vps_equal(const struct pc_vps *a, const struct pc_vps *b)
{
        const struct pc_suspension *x = &a->suspension, *y = &b->suspension;

        if (a->site != b->site || a->exempt_mask != b->exempt_mask || a->suspended != b->suspended ||
            strcmp(a->id, b->id) != 0 || strcmp(a->owner, b->owner) != 0 || strcmp(a->lang, b->lang) != 0 ||
            strcmp(a->iface, b->iface) != 0 || a->has_mac != b->has_mac || memcmp(a->mac, b->mac, 6) != 0 ||
            a->created != b->created || a->stopped != b->stopped || a->run_since != b->run_since ||
            strcmp(a->host, b->host) != 0 || strcmp(a->moving_from, b->moving_from) != 0 ||
            strcmp(a->moving_iface, b->moving_iface) != 0 || strcmp(a->departing_from, b->departing_from) != 0 ||
            strcmp(a->departing_iface, b->departing_iface) != 0 || a->n_addrs != b->n_addrs ||
            a->n_exceptions != b->n_exceptions || a->n_filters != b->n_filters)
                return false;
        if (a->suspended && (x->id != y->id || x->incident_id != y->incident_id || strcmp(x->by, y->by) != 0 ||
                             strcmp(x->reason, y->reason) != 0 || x->created != y->created ||
                             x->terminated != y->terminated))
                return false;
        for (size_t i = 0; i < a->n_addrs; i++)
                if (!pc_prefix_equal(&a->addrs[i], &b->addrs[i]))
                        return false;
        for (size_t i = 0; i < a->n_exceptions; i++)
                if (!exception_equal(&a->exceptions[i], &b->exceptions[i]))
                        return false;
        for (size_t i = 0; i < a->n_filters; i++)
                if (!filter_equal(&a->filters[i], &b->filters[i]))
                        return false;
        return true;
}

int pc_vps_rebase(const struct pc_vps *vps, const struct pc_config *cfg, struct pc_vps **ret)
{
        const struct pc_site *site = pc_config_site(cfg, vps->site->name);

        if (site == NULL)
                return -ENOENT;
        for (size_t i = 0; i < vps->n_filters; i++)
                if (vps->filters[i].exception_id == 0 && vps->filters[i].scope == PC_SCOPE_SERVICE &&
                    vps->filters[i].service != NULL && pc_config_service(cfg, vps->filters[i].service->name) == NULL)
                        return -ENOENT;
        return vps_copy(vps, site, cfg, ret);
}

int pc_model_add(struct pc_model *m, struct pc_vps *vps)
{
        size_t slot, h;

        if (vps->site == NULL || !pc_name_valid(vps->id))
                return -EINVAL;
        if (2 * (m->n + 1) >= m->by_id.cap && table_grow(&m->by_id) < 0)
                return -ENOMEM;
        if (2 * (m->n + 1) >= m->by_iface.cap && table_grow(&m->by_iface) < 0)
                return -ENOMEM;
        h = hash_id(vps->id);
        slot = table_slot(&m->by_id, vps->id, h);
        if (m->by_id.slots[slot].vps != NULL)
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
        m->by_id.slots[slot] = (struct vps_slot){ .vps = vps, .hash = h };
        iface_insert(m, vps);
        return 0;
}

int pc_model_reserve(struct pc_model *m, size_t n)
{
        size_t cap = m->by_id.cap;

        if (n > SIZE_MAX / 4 / sizeof(struct vps_slot))
                return -ENOMEM;
        /* One resize to the size n adds would double to, not one per doubling. */
        while (2 * (n + 1) >= cap)
                cap *= 2;
        if (cap > m->by_id.cap && table_resize(&m->by_id, cap) < 0)
                return -ENOMEM;
        if (cap > m->by_iface.cap && table_resize(&m->by_iface, cap) < 0)
                return -ENOMEM;
        if (n > m->cap) {
                struct pc_vps **l = realloc(m->list, n * sizeof(*l));

                if (l == NULL)
                        return -ENOMEM;
                m->list = l;
                m->cap = n;
        }
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
        struct pc_vps *vps = pc_model_find(m, id);

        if (vps == NULL)
                return -ENOENT;
        table_delete(&m->by_id, vps);
        iface_delete(m, vps);
        m->list[vps->model_slot] = m->list[--m->n];
        m->list[vps->model_slot]->model_slot = vps->model_slot;
        *ret = vps;
        return 0;
}

struct pc_vps *pc_model_find(const struct pc_model *m, const char *id)
{
        return m->by_id.slots[table_slot(&m->by_id, id, hash_id(id))].vps;
}

struct pc_vps *pc_model_find_iface(const struct pc_model *m, const char *iface)
{
        if (iface == NULL || iface[0] == '\0')
                return NULL;
        return m->by_iface.slots[table_slot(&m->by_iface, iface, hash_id(iface))].vps;
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

/* Adds a kernel filter for <proto> <lo>-<hi> of <rule>, kept closed
 * while port-subset exception <e> lifts the rule. */
static int add_kept_closed(struct pc_vps *vps, const struct pc_exception *e, const struct pc_rule *rule, uint8_t proto,
                           uint16_t lo, uint16_t hi)
{
        struct pc_filter f = { .direction = rule->direction, .scope = PC_SCOPE_PORTS, .until = e->until,
                               .created = e->created, .exception_id = e->id != 0 ? e->id : -1 };

        f.ports = (struct pc_port_range){ .proto = proto, .lo = lo, .hi = hi };
        snprintf(f.by, sizeof(f.by), "%s", e->by);
        snprintf(f.reason, sizeof(f.reason), "not among the ports exception #%lld opens", (long long)e->id);
        return pc_vps_add_filter(vps, &f);
}

/* The rest of <e>'s rule, for the kernel (see pc_vps_add_exception). */
static int add_subset_filters(struct pc_vps *vps, const struct pc_exception *e)
{
        const struct pc_policy *pol = vps->site != NULL ? vps->site->policy : NULL;
        const struct pc_rule *rule = pol != NULL ? pc_policy_rule_for(pol, e->service) : NULL;
        int r = 0;

        if (e->n_ports == 0 || rule == NULL || !pc_rule_exemptable(pol, rule))
                return 0;
        for (size_t i = 0; i < rule->n_ports && r == 0; i++) {
                const struct pc_port_range *rr = &rule->ports[i];
                uint32_t from = rr->lo;

                /* e->ports are sorted and do not overlap. */
                for (size_t k = 0; k < e->n_ports && r == 0; k++) {
                        const struct pc_port_range *p = &e->ports[k];

                        if (p->proto != rr->proto || p->hi < from || p->lo > rr->hi)
                                continue;
                        if (p->lo > from)
                                r = add_kept_closed(vps, e, rule, rr->proto, (uint16_t)from, (uint16_t)(p->lo - 1));
                        from = (uint32_t)p->hi + 1;
                }
                if (r == 0 && from <= rr->hi)
                        r = add_kept_closed(vps, e, rule, rr->proto, (uint16_t)from, rr->hi);
        }
        for (size_t i = 0; i < rule->n_ip_protos && r == 0; i++)
                r = add_kept_closed(vps, e, rule, rule->ip_protos[i], 0, 65535);
        return r;
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
        r = add_subset_filters(vps, e);
        if (r < 0) {
                /* Not lifted at all rather than lifted whole. */
                vps->n_exceptions--;
                return r;
        }
        pc_vps_reindex(vps);
        return 0;
}

size_t pc_vps_real_filters(const struct pc_vps *vps)
{
        size_t n = 0;

        for (size_t i = 0; i < vps->n_filters; i++)
                n += vps->filters[i].exception_id == 0;
        return n;
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

static int range_cmp(const void *a, const void *b)
{
        const struct pc_port_range *x = a, *y = b;

        if (x->proto != y->proto)
                return x->proto < y->proto ? -1 : 1;
        return x->lo < y->lo ? -1 : x->lo > y->lo;
}

int pc_ports_parse(const char *s, struct pc_port_range *ret, size_t *ret_n, char *err, size_t errsz)
{
        size_t n = 0;

        if (s == NULL || *s == '\0') {
                snprintf(err, errsz, "is empty");
                return -EINVAL;
        }
        while (*s != '\0') {
                size_t len = strcspn(s, ", ");
                char item[40], perr[128];

                if (len == 0) {
                        s++;
                        continue;
                }
                if (len >= sizeof(item) - 4) {
                        snprintf(err, errsz, "'%.*s' is not PROTO/PORT", (int)(len > 32 ? 32 : len), s);
                        return -EINVAL;
                }
                /* a bare port is tcp's */
                snprintf(item, sizeof(item), "%s%.*s", memchr(s, '/', len) != NULL ? "" : "tcp/", (int)len, s);
                if (n >= PC_EXCEPTION_PORTS_MAX) {
                        snprintf(err, errsz, "has more than %d ports or ranges", PC_EXCEPTION_PORTS_MAX);
                        return -EINVAL;
                }
                if (pc_port_range_parse(item, &ret[n], perr, sizeof(perr)) < 0 ||
                    (ret[n].proto != PC_PROTO_TCP && ret[n].proto != PC_PROTO_UDP)) {
                        snprintf(err, errsz, "'%s' is not PROTO/PORT or PROTO/PORT-PORT with tcp or udp", item);
                        return -EINVAL;
                }
                n++;
                s += len;
        }
        if (n == 0) {
                snprintf(err, errsz, "is empty");
                return -EINVAL;
        }
        qsort(ret, n, sizeof(*ret), range_cmp);
        for (size_t i = 1; i < n; i++)
                if (ret[i].proto == ret[i - 1].proto && ret[i].lo <= ret[i - 1].hi) {
                        char a[32], b[32];

                        pc_port_range_format(&ret[i - 1], a, sizeof(a));
                        pc_port_range_format(&ret[i], b, sizeof(b));
                        snprintf(err, errsz, "%s and %s overlap", a, b);
                        return -EINVAL;
                }
        *ret_n = n;
        return 0;
}

void pc_ports_format(const struct pc_port_range *p, size_t n, char *buf, size_t size)
{
        size_t len = 0;

        if (size == 0)
                return;
        buf[0] = '\0';
        for (size_t i = 0; i < n && len < size; i++) {
                char one[32];

                pc_port_range_format(&p[i], one, sizeof(one));
                len += (size_t)snprintf(buf + len, size - len, "%s%s", i == 0 ? "" : ",", one);
        }
}

bool pc_ports_within(const struct pc_port_range *sub, size_t n_sub, const struct pc_port_range *of, size_t n_of)
{
        for (size_t i = 0; i < n_sub; i++) {
                bool in = false;

                for (size_t k = 0; k < n_of && !in; k++)
                        in = of[k].proto == sub[i].proto && of[k].lo <= sub[i].lo && sub[i].hi <= of[k].hi;
                if (!in)
                        return false;
        }
        return true;
}

bool pc_exception_covers(const struct pc_exception *e, uint8_t proto, uint16_t port)
{
        if (e->n_ports == 0)
                return true;
        for (size_t i = 0; i < e->n_ports; i++)
                if (e->ports[i].proto == proto && e->ports[i].lo <= port && port <= e->ports[i].hi)
                        return true;
        return false;
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

const struct pc_vps *pc_scan_exclude_covers_vps(const struct pc_config *cfg, const struct pc_model *m, char *why,
                                                size_t size)
{
        for (size_t i = 0; i < pc_model_count(m); i++) {
                const struct pc_vps *v = pc_model_at(m, i);

                for (size_t k = 0; k < v->n_addrs; k++)
                        for (size_t e = 0; e < cfg->detectors.n_scan_exclude; e++) {
                                const struct pc_prefix *x = &cfg->detectors.scan_exclude[e];
                                char px[64], pa[64];

                                if (x->family != v->addrs[k].family || !pc_prefix_overlaps(x, &v->addrs[k]))
                                        continue;
                                pc_format_prefix(x, px, sizeof(px));
                                pc_format_prefix(&v->addrs[k], pa, sizeof(pa));
                                snprintf(why, size,
                                         "detectors.scan.exclude: %s covers %s of %s; exclude the provider's "
                                         "services (resolvers, mirrors), never its customers' VPSes (scans of them "
                                         "would not be held back)",
                                         px, pa, v->id);
                                return v;
                        }
        }
        return NULL;
}

bool pc_vps_may_scan(const struct pc_vps *vps, int64_t now)
{
        const struct pc_exception *e = pc_vps_exception_for(vps, PC_EXCEPTION_SCANNING);

        return e != NULL && (e->until == 0 || e->until > now);
}

bool pc_vps_scans_contained(const struct pc_config *cfg, const struct pc_vps *vps, int64_t now)
{
        return vps->site != NULL && pc_policy_contains_scans(cfg, vps->site->policy) && !pc_vps_may_scan(vps, now);
}

bool pc_exception_subject_valid(const char *service)
{
        return pc_name_valid(service) || pc_exception_source_prefix(service, NULL);
}

static bool ends_before(int64_t a, int64_t b) /* until a ends before until b; 0 is never */
{
        return a != 0 && (b == 0 || a < b);
}

bool pc_vps_change_loosens(const struct pc_vps *old, const struct pc_vps *fresh, int64_t now)
{
        if (fresh == NULL || old->site != fresh->site || (old->suspended && !fresh->suspended) ||
            old->has_mac != fresh->has_mac || (old->has_mac && memcmp(old->mac, fresh->mac, sizeof(old->mac)) != 0))
                return true;
        for (size_t i = 0; i < fresh->n_addrs; i++) {
                bool known = false;

                for (size_t k = 0; k < old->n_addrs && !known; k++)
                        known = memcmp(&old->addrs[k], &fresh->addrs[i], sizeof(fresh->addrs[i])) == 0;
                if (!known)
                        return true;
        }
        for (size_t i = 0; i < old->n_filters; i++) {
                const struct pc_filter *f = &old->filters[i];
                bool kept = false;

                if (f->until != 0 && f->until <= now)
                        continue;
                for (size_t k = 0; k < fresh->n_filters && !kept; k++)
                        kept = fresh->filters[k].id == f->id && !ends_before(fresh->filters[k].until, f->until);
                if (!kept)
                        return true;
        }
        for (size_t i = 0; i < fresh->n_exceptions; i++) {
                const struct pc_exception *e = &fresh->exceptions[i];
                bool known = false;

                if (e->until != 0 && e->until <= now)
                        continue;
                for (size_t k = 0; k < old->n_exceptions && !known; k++)
                        known = old->exceptions[k].id == e->id && !ends_before(old->exceptions[k].until, e->until);
                if (!known)
                        return true;
        }
        return false;
}

bool pc_vps_change_tightens(const struct pc_vps *old, const struct pc_vps *fresh, int64_t now)
{
        if (old == NULL || old->site != fresh->site || old->n_addrs != fresh->n_addrs ||
            (fresh->suspended && !old->suspended))
                return true;
        for (size_t i = 0; i < fresh->n_addrs; i++)
                if (memcmp(&old->addrs[i], &fresh->addrs[i], sizeof(fresh->addrs[i])) != 0)
                        return true;
        for (size_t i = 0; i < fresh->n_filters; i++) {
                const struct pc_filter *f = &fresh->filters[i];
                bool known = false;

                /* The rest of a port-subset exception's service: closed
                 * before the exception as well (its exception is judged
                 * below). */
                if (f->exception_id != 0)
                        continue;
                for (size_t k = 0; k < old->n_filters && !known; k++)
                        known = old->filters[k].id == f->id && !ends_before(old->filters[k].until, f->until);
                if (!known && (f->until == 0 || f->until > now))
                        return true;
        }
        for (size_t i = 0; i < old->n_exceptions; i++) {
                const struct pc_exception *e = &old->exceptions[i];
                bool kept = false;

                if (e->until != 0 && e->until <= now)
                        continue;
                for (size_t k = 0; k < fresh->n_exceptions && !kept; k++)
                        kept = fresh->exceptions[k].id == e->id && !ends_before(fresh->exceptions[k].until, e->until);
                if (!kept)
                        return true;
        }
        return false;
}
