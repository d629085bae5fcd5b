/* The port-scan detector (see scan.h for the rule).
 *
 * Two pools of fixed-size records, linked by 32-bit indices so that
 * growing a pool (realloc) breaks no link:
 *   - vps[]: one per VPS, in one of two lists by last activity: <idle>
 *     (evicted first, forgotten after idle_ms) or <kept> (held or a
 *     scanner: evicted only when every VPS is kept);
 *   - con[]: one per (VPS, destination), in three lists: its VPS's and
 *     the global one, both by last contact (the heads are evicted first;
 *     the global head is the next to be forgotten), and while unanswered
 *     the pending queue, by opening time (the head times out first: the
 *     clock given is made monotonic, and the timeout is the same for
 *     all).
 * Each pool has an index: open addressing with linear probing over
 * (hash, ref) slots, at most half full, backward-shift deletion.  Keys
 * are hashed with a per-detector seed, since a tenant chooses the
 * addresses and ports it is tracked by.  So an event costs O(1), and a
 * tick what expired. */
#include "detect/scan.h"

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "base/util.h"

#define NIL UINT32_MAX
#define SUBS PC_SCAN_SUBWINDOWS
#define P_PAIRS 8                      /* 256 registers: pairs */
#define P_SIDES 8                      /* 256 registers: hosts, ports */
#define M_PAIRS (1u << P_PAIRS)
#define M_SIDES (1u << P_SIDES)
#define REGS (M_PAIRS + 2 * M_SIDES)   /* one sub-window's three sketches */
#define ID_MAX 64
#define HELD_SEEN 16                   /* held-back destinations told apart */

/* A destination's state. */
enum { C_PENDING = 1, C_TIMEDOUT, C_FAILED, C_ANSWERED };

/* What a first contact's outcome does to the walk, once it is counted:
 * nothing yet (undecided), a success, a failure, or neither. */
enum { O_NONE = 0, O_SUCCESS, O_FAIL, O_NEITHER };

struct link {
        uint32_t prev, next;
};

struct list {
        uint32_t head, tail;
        size_t n;
};

/* Compared as bytes: no padding, unused address bytes zero.  <proto> is
 * key_proto()'s: a host's port is one destination whatever the transport
 * (a peer's TCP and UDP, a server's TCP and SCTP). */
struct ckey {
        uint32_t vps;    /* pool index of the VPS */
        uint8_t family;  /* 4 or 6 */
        uint8_t proto;
        uint16_t port;
        uint8_t addr[16];
};

struct contact {
        struct ckey k;
        struct link by_vps, by_all, pending, order;
        int64_t opened_ms, last_ms;
        uint32_t walk;   /* the walk its outcome counted in */
        uint32_t hold;   /* the VPS's release count when it was made */
        uint8_t state;   /* 0: a free slot */
        uint8_t proto;   /* the protocol it was first made over, for the evidence */
        uint8_t outcome; /* O_*, while <queued> */
        bool queued;     /* in its VPS's <order>: not counted in a walk yet */
};

/* The slow test's sketches of one VPS. */
struct slow {
        int64_t epoch[SUBS];      /* the sub-window each slot counts */
        bool used[SUBS];          /* <epoch> and the counts are set */
        uint8_t *reg[SUBS];       /* its REGS registers; NULL: no failure */
        uint32_t fails[SUBS], succs[SUBS];
        int64_t first_ms[SUBS], last_ms[SUBS]; /* of its failures */
        uint8_t merged[REGS];     /* max over the live slots' registers */
        double sum[3];            /* per sketch: sum of 2^-merged */
        uint32_t zeros[3];        /* per sketch: merged registers at 0 */
};

struct vps {
        char id[ID_MAX];
        struct link lru;          /* in s->idle or s->kept */
        struct list contacts;     /* by last contact, oldest first */
        struct list order;        /* first contacts not counted yet, by opening */
        uint32_t pending;         /* its contacts awaiting an outcome */
        uint32_t failures, successes; /* of the walk */
        /* The hosts whose answers offset a failure, within contact
         * memory: a ring of <n_credits>, oldest overwritten first. */
        uint32_t credit_host[PC_SCAN_CREDITS];
        int64_t credit_ms[PC_SCAN_CREDITS];
        uint32_t credit_next, n_credits;
        uint32_t walk;            /* walks restarted */
        uint32_t hold;            /* releases */
        uint32_t budget;          /* C */
        int64_t active_ms;
        int64_t first_ms, last_ms; /* the walk's first contacts' openings */
        int64_t suspect_ms;       /* when it became a suspect */
        uint32_t confirm;         /* first contacts towards confirmation */
        uint32_t held_seen[HELD_SEEN]; /* hashed, the last held-back destinations */
        uint32_t held_next;
        bool used, held, scanner, suspect, kept;
        struct slow *slow;
};

struct islot {
        uint32_t hash;
        uint32_t ref;             /* pool index + 1; 0: empty */
};

struct index {
        struct islot *slots;
        size_t cap;               /* a power of two, at least twice n */
        size_t n;
};

struct pc_scan {
        struct pc_scan_params p;
        double ln_fail, ln_succ, upper, lower;
        int64_t sub_ms, idle_ms;
        uint64_t seed;
        int64_t now;
        bool started;

        struct vps *vps;
        size_t vps_cap, n_vps;
        uint32_t vps_free;        /* free list through lru.next */
        struct contact *con;
        size_t con_cap, n_con;
        size_t con_max;           /* max_contacts, or fewer if the VPSes cannot hold it */
        uint32_t con_free;        /* free list through by_all.next */
        struct index vidx, cidx;
        struct list idle, kept;   /* VPSes by last activity */
        size_t n_suspect;
        int64_t suspect_due;      /* no suspect's window ends before */
        struct list all, pending; /* destinations */
        size_t slow_bytes;
        struct pc_scan_dest *scratch; /* max_contacts_per_vps, for a finding */
};

static void resolve(struct pc_scan *s, uint32_t ci, uint8_t state, pc_scan_cb cb, void *ud);

/* ---- lists of pool records ---- */

#define VL(s) (s)->vps, sizeof(struct vps), offsetof(struct vps, lru)
#define CL(s, f) (s)->con, sizeof(struct contact), offsetof(struct contact, f)

static struct link *lk(void *base, size_t size, size_t off, uint32_t i)
{
        return (struct link *)((char *)base + (size_t)i * size + off);
}

static void list_init(struct list *l)
{
        l->head = l->tail = NIL;
        l->n = 0;
}

/* Appends record <i> of the pool at <base> (records of <size> bytes,
 * the link at <off>) to <l>. */
static void list_push(struct list *l, void *base, size_t size, size_t off, uint32_t i)
{
        struct link *x = lk(base, size, off, i);

        x->prev = l->tail;
        x->next = NIL;
        if (l->tail != NIL)
                lk(base, size, off, l->tail)->next = i;
        else
                l->head = i;
        l->tail = i;
        l->n++;
}

static void list_del(struct list *l, void *base, size_t size, size_t off, uint32_t i)
{
        struct link *x = lk(base, size, off, i);

        if (x->prev != NIL)
                lk(base, size, off, x->prev)->next = x->next;
        else
                l->head = x->next;
        if (x->next != NIL)
                lk(base, size, off, x->next)->prev = x->prev;
        else
                l->tail = x->prev;
        x->prev = x->next = NIL;
        l->n--;
}

/* ---- hashing ---- */

/* <len> bytes of <key>, a multiple of 8, mixed word by word into <seed>. */
static uint64_t hash_words(uint64_t seed, const void *key, size_t len)
{
        uint64_t h = seed, w;

        for (size_t i = 0; i < len; i += 8) {
                memcpy(&w, (const char *)key + i, sizeof(w));
                h = pc_mix64(h ^ w) + 0x9e3779b97f4a7c15ull;
        }
        return pc_mix64(h);
}

static uint32_t hash_id(const struct pc_scan *s, const char *id)
{
        uint64_t h = 1469598103934665603ull ^ s->seed;

        for (const unsigned char *p = (const unsigned char *)id; *p != '\0'; p++)
                h = (h ^ *p) * 1099511628211ull;
        return (uint32_t)pc_mix64(h);
}

static uint32_t hash_key(const struct pc_scan *s, const struct ckey *k)
{
        return (uint32_t)hash_words(s->seed, k, sizeof(*k));
}

/* ---- indexes ---- */

static size_t index_cap_for(size_t n)
{
        size_t cap = 16;

        while (cap < 2 * n)
                cap *= 2;
        return cap;
}

static int index_init(struct index *x)
{
        x->cap = 16;
        x->n = 0;
        x->slots = calloc(x->cap, sizeof(*x->slots));
        return x->slots == NULL ? -ENOMEM : 0;
}

/* Makes room for one more entry: positions found before are stale. */
static int index_reserve(struct index *x)
{
        struct islot *slots;
        size_t cap = x->cap * 2;

        if (2 * (x->n + 1) <= x->cap)
                return 0;
        slots = calloc(cap, sizeof(*slots));
        if (slots == NULL)
                return -ENOMEM;
        for (size_t i = 0; i < x->cap; i++) {
                size_t j;

                if (x->slots[i].ref == 0)
                        continue;
                for (j = x->slots[i].hash & (cap - 1); slots[j].ref != 0; j = (j + 1) & (cap - 1))
                        ;
                slots[j] = x->slots[i];
        }
        free(x->slots);
        x->slots = slots;
        x->cap = cap;
        return 0;
}

/* Empties slot <i>, shifting back the entries that probed past it. */
static void index_del(struct index *x, size_t i)
{
        size_t mask = x->cap - 1, j = i;

        for (;;) {
                size_t k;

                j = (j + 1) & mask;
                if (x->slots[j].ref == 0)
                        break;
                k = x->slots[j].hash & mask;
                /* Entry j may move to i unless its home lies in (i, j]. */
                if (i <= j ? (k <= i || k > j) : (k <= i && k > j)) {
                        x->slots[i] = x->slots[j];
                        i = j;
                }
        }
        x->slots[i].ref = 0;
        x->slots[i].hash = 0;
        x->n--;
}

/* The slot of the VPS <id> (hash <h>), or the empty one where it goes. */
static size_t vps_slot(const struct pc_scan *s, const char *id, uint32_t h)
{
        size_t mask = s->vidx.cap - 1, i = h & mask;

        for (;;) {
                const struct islot *e = &s->vidx.slots[i];

                if (e->ref == 0 || (e->hash == h && strcmp(s->vps[e->ref - 1].id, id) == 0))
                        return i;
                i = (i + 1) & mask;
        }
}

static size_t con_slot(const struct pc_scan *s, const struct ckey *k, uint32_t h)
{
        size_t mask = s->cidx.cap - 1, i = h & mask;

        for (;;) {
                const struct islot *e = &s->cidx.slots[i];

                if (e->ref == 0 || (e->hash == h && memcmp(&s->con[e->ref - 1].k, k, sizeof(*k)) == 0))
                        return i;
                i = (i + 1) & mask;
        }
}

static uint32_t vps_find(const struct pc_scan *s, const char *id)
{
        const struct islot *e = &s->vidx.slots[vps_slot(s, id, hash_id(s, id))];

        return e->ref == 0 ? NIL : e->ref - 1;
}

/* ---- time ---- */

/* <now> - <then> for <now> >= <then>, without overflow. */
static uint64_t since(int64_t now, int64_t then)
{
        return (uint64_t)now - (uint64_t)then;
}

static void clock_to(struct pc_scan *s, int64_t now)
{
        if (!s->started || now > s->now)
                s->now = now;
        s->started = true;
}

static int64_t epoch_of(const struct pc_scan *s, int64_t t)
{
        int64_t q = t / s->sub_ms;

        return t % s->sub_ms < 0 ? q - 1 : q;
}

static size_t epoch_slot(int64_t ep)
{
        return (size_t)(((ep % SUBS) + SUBS) % SUBS);
}

/* ---- findings ---- */

static double lambda(const struct pc_scan *s, const struct vps *v)
{
        return v->failures * s->ln_fail + v->successes * s->ln_succ;
}

/* True if <c> is few beside <other>: at most 3, or at most 1/8 of it. */
static bool few(uint64_t c, uint64_t other)
{
        return c <= 3 || c * 8 <= other;
}

static const char *shape(uint64_t hosts, uint64_t ports)
{
        bool fh = few(hosts, ports), fp = few(ports, hosts);

        if (fh && fp)
                return "mixed";
        if (fh)
                return "vertical";
        if (fp)
                return "horizontal";
        return "block";
}

/* The protocol a destination is keyed under: the transports with ports
 * as one (0), others (ICMP echo) as themselves. */
static uint8_t key_proto(uint8_t proto)
{
        switch (proto) {
        case IPPROTO_TCP:
        case IPPROTO_UDP:
        case IPPROTO_SCTP:
        case IPPROTO_DCCP:
        case IPPROTO_UDPLITE:
                return 0;
        default:
                return proto;
        }
}

static void dest_of(const struct contact *c, struct pc_scan_dest *d)
{
        memset(d, 0, sizeof(*d));
        d->family = c->k.family == 4 ? AF_INET : AF_INET6;
        d->proto = c->proto;
        d->port = c->k.port;
        memcpy(d->addr, c->k.addr, sizeof(d->addr));
}

static int cmp_host(const void *a, const void *b)
{
        const struct pc_scan_dest *x = a, *y = b;

        if (x->family != y->family)
                return x->family < y->family ? -1 : 1;
        return memcmp(x->addr, y->addr, sizeof(x->addr));
}

static int cmp_port(const void *a, const void *b)
{
        const struct pc_scan_dest *x = a, *y = b;

        if (x->proto != y->proto)
                return x->proto < y->proto ? -1 : 1;
        return x->port < y->port ? -1 : x->port > y->port;
}

static uint64_t distinct(struct pc_scan_dest *d, size_t n, int (*cmp)(const void *, const void *))
{
        uint64_t k = n > 0;

        qsort(d, n, sizeof(*d), cmp);
        for (size_t i = 1; i < n; i++)
                k += cmp(&d[i - 1], &d[i]) != 0;
        return k;
}

/* Fills <f>'s sample with <v>'s failed contacts, newest first: those of
 * its current walk (<walk_only>) or all; returns how many there are in
 * all, copied into s->scratch. */
static size_t failed_contacts(struct pc_scan *s, const struct vps *v, bool walk_only, struct pc_scan_finding *f)
{
        size_t n = 0;

        for (uint32_t i = v->contacts.tail; i != NIL; i = s->con[i].by_vps.prev) {
                const struct contact *c = &s->con[i];

                if ((c->state != C_TIMEDOUT && c->state != C_FAILED) || (walk_only && (c->queued || c->walk != v->walk)))
                        continue;
                if (f->n_sample < PC_SCAN_SAMPLE)
                        dest_of(c, &f->sample[f->n_sample++]);
                dest_of(c, &s->scratch[n++]);
        }
        return n;
}

/* Puts <vi> at the tail of the list its flags call for. */
static void relist(struct pc_scan *s, uint32_t vi)
{
        struct vps *v = &s->vps[vi];

        list_del(v->kept ? &s->kept : &s->idle, VL(s), vi);
        v->kept = v->held || v->scanner || v->suspect;
        list_push(v->kept ? &s->kept : &s->idle, VL(s), vi);
}

/* Resets the walk of <v> (its successes' hosts with its counts). */
static void walk_restart(struct vps *v)
{
        v->failures = v->successes = 0;
        v->first_ms = v->last_ms = 0;
        v->walk++;
}

/* <v> is no suspect any more (found, or not confirmed). */
static void suspicion_end(struct pc_scan *s, struct vps *v)
{
        if (v->suspect) {
                s->n_suspect--;
                walk_restart(v);
        }
        v->suspect = false;
        v->confirm = 0;
}

/* The finding of kind <kind> about <v>'s walk, without its sample. */
static struct pc_scan_finding walk_finding(const struct pc_scan *s, const struct vps *v,
                                           enum pc_scan_finding_kind kind)
{
        return (struct pc_scan_finding){
                .kind = kind,
                .vps = v->id,
                .score = lambda(s, v),
                .failures = v->failures,
                .successes = v->successes,
                .pending = v->pending,
                .first_ms = v->first_ms,
                .last_ms = v->last_ms,
                .shape = "",
        };
}

static void fast_found(struct pc_scan *s, uint32_t vi, pc_scan_cb cb, void *ud)
{
        struct vps *v = &s->vps[vi];
        struct pc_scan_finding f = walk_finding(s, v, PC_SCAN_FAST);
        size_t n = failed_contacts(s, v, true, &f);

        f.confirmed_by = v->suspect ? v->confirm : 0;
        f.distinct_hosts = distinct(s->scratch, n, cmp_host);
        f.distinct_ports = distinct(s->scratch, n, cmp_port);
        f.shape = shape(f.distinct_hosts, f.distinct_ports);
        walk_restart(v);
        v->scanner = true;
        suspicion_end(s, v);
        relist(s, vi);
        if (cb != NULL)
                cb(ud, &f);
}

/* One more first contact of suspect <vi> failed or was held back: a
 * FAST finding once there are confirm_probes. */
static void confirm_add(struct pc_scan *s, uint32_t vi, pc_scan_cb cb, void *ud)
{
        struct vps *v = &s->vps[vi];

        if (v->confirm < UINT32_MAX)
                v->confirm++;
        if (v->suspect && v->confirm >= s->p.confirm_probes)
                fast_found(s, vi, cb, ud);
}

/* The hash of <k>'s host for credits: its address, an IPv6 one's /64
 * (a server with a whole /64 answers as any number of addresses). */
static uint32_t host_hash(const struct pc_scan *s, const struct ckey *k)
{
        struct {
                uint8_t family;
                uint8_t pad[7];
                uint8_t addr[16];
        } key;

        memset(&key, 0, sizeof(key));
        key.family = k->family;
        memcpy(key.addr, k->addr, k->family == 6 ? 8 : sizeof(key.addr));
        return (uint32_t)hash_words(s->seed ^ 0x2545f4914f6cdd1dull, &key, sizeof(key));
}

/* True if credit slot <i> of <v> still remembers its host. */
static bool credit_live(const struct pc_scan *s, const struct vps *v, uint32_t i)
{
        return i < v->n_credits && since(s->now, v->credit_ms[i]) <= (uint64_t)s->p.contact_memory_ms;
}

/* True if an answer from <c>'s host is a success of <v>'s walk: its host
 * has offset no failure within contact memory -- in this walk or an
 * earlier one, so that restarting the walk does not let the same hosts
 * pay again -- and fewer than PC_SCAN_HOSTS hosts have in this walk.  A
 * collision of hashes only denies a success. */
static bool host_credited(const struct pc_scan *s, const struct vps *v, const struct contact *c)
{
        uint32_t h = host_hash(s, &c->k);

        if (v->successes >= PC_SCAN_HOSTS)
                return false;
        for (uint32_t i = 0; i < PC_SCAN_CREDITS; i++)
                if (v->credit_host[i] == h && credit_live(s, v, i))
                        return false;
        return true;
}

/* Remembers that <c>'s host offset a failure now.  Over PC_SCAN_CREDITS
 * hosts within contact memory the oldest is forgotten (and may pay
 * again): a busy client's credits must not run out. */
static void credit(struct pc_scan *s, struct vps *v, const struct contact *c)
{
        uint32_t i = v->credit_next;

        v->credit_host[i] = host_hash(s, &c->k);
        v->credit_ms[i] = s->now;
        v->credit_next = (i + 1) % PC_SCAN_CREDITS;
        if (v->n_credits < PC_SCAN_CREDITS)
                v->n_credits++;
}


/* The walk of <vi> reached the threshold: a FAST finding, or with
 * confirmation a SUSPECT one (the held-back contacts since its hold
 * count towards it already). */
static void suspect(struct pc_scan *s, uint32_t vi, pc_scan_cb cb, void *ud)
{
        struct vps *v = &s->vps[vi];
        struct pc_scan_finding f;

        if (s->p.confirm_probes == 0 || v->scanner) { /* (a scanner is confirmed) */
                fast_found(s, vi, cb, ud);
                return;
        }
        v->suspect = true;
        v->suspect_ms = s->now;
        if (s->n_suspect++ == 0 || v->suspect_ms + s->p.confirm_window_ms < s->suspect_due)
                s->suspect_due = v->suspect_ms + s->p.confirm_window_ms;
        relist(s, vi);
        f = walk_finding(s, v, PC_SCAN_SUSPECT);
        if (cb != NULL)
                cb(ud, &f);
        if (v->confirm >= s->p.confirm_probes)
                fast_found(s, vi, cb, ud);
}

/* Suspect <vi> made too few first contacts within the window: no
 * finding; its walk restarts and it is released (UNCONFIRMED). */
static void unconfirm(struct pc_scan *s, uint32_t vi, pc_scan_cb cb, void *ud)
{
        struct vps *v = &s->vps[vi];
        struct pc_scan_finding f = walk_finding(s, v, PC_SCAN_UNCONFIRMED);

        f.score = v->confirm;
        suspicion_end(s, v);
        if (v->held) {
                v->held = false;
                v->budget = 0;
                v->hold++;
        }
        relist(s, vi);
        if (cb != NULL)
                cb(ud, &f);
}

/* Ends the suspicions whose window is over. */
static void suspects_expire(struct pc_scan *s, pc_scan_cb cb, void *ud)
{
        int64_t due = INT64_MAX;
        uint32_t vi, next;

        if (s->n_suspect == 0 || s->now < s->suspect_due)
                return;
        for (vi = s->kept.head; vi != NIL; vi = next) {
                struct vps *v = &s->vps[vi];

                next = v->lru.next;
                if (!v->suspect)
                        continue;
                if (since(s->now, v->suspect_ms) >= (uint64_t)s->p.confirm_window_ms)
                        unconfirm(s, vi, cb, ud);
                else if (v->suspect_ms + s->p.confirm_window_ms < due)
                        due = v->suspect_ms + s->p.confirm_window_ms;
        }
        s->suspect_due = due;
}

/* Counts the outcome of contact <c> in its VPS's walk (a success: one
 * host_credited() allowed and credit() remembered). */
static void walk_count(struct pc_scan *s, uint32_t vi, struct contact *c, bool success, pc_scan_cb cb, void *ud)
{
        struct vps *v = &s->vps[vi];
        double l;

        if (v->failures + v->successes == 0) {
                v->first_ms = v->last_ms = c->opened_ms;
        } else {
                if (c->opened_ms < v->first_ms)
                        v->first_ms = c->opened_ms;
                if (c->opened_ms > v->last_ms)
                        v->last_ms = c->opened_ms;
        }
        if (success)
                v->successes++;
        else
                v->failures++;
        c->walk = v->walk;
        l = lambda(s, v);
        if (v->suspect) {
                /* the walk goes on until the suspicion is decided */
                if (!success)
                        confirm_add(s, vi, cb, ud);
        } else if (l >= s->upper) {
                suspect(s, vi, cb, ud);
        } else if (l <= s->lower) {
                walk_restart(v);
        }
}

static void release_check(struct pc_scan *s, uint32_t vi, pc_scan_cb cb, void *ud)
{
        struct vps *v = &s->vps[vi];
        struct pc_scan_finding f;

        if (!v->held || v->scanner || v->suspect || v->budget >= s->p.hold_budget)
                return;
        f = (struct pc_scan_finding){
                .kind = PC_SCAN_RELEASE,
                .vps = v->id,
                .score = v->budget,
                .failures = v->failures,
                .successes = v->successes,
                .pending = v->pending,
                .shape = "",
        };
        v->held = false;
        v->budget = 0;
        v->hold++;
        v->confirm = 0;
        relist(s, vi);
        if (cb != NULL)
                cb(ud, &f);
}

/* Contact <c>, pending or failed, was answered: a success (<credited>)
 * takes C down by 2, an answer that is no success by 1 (it is neither
 * pending nor failed any more). */
static void budget_answer(struct pc_scan *s, uint32_t vi, const struct contact *c, bool credited, pc_scan_cb cb,
                          void *ud)
{
        struct vps *v = &s->vps[vi];
        uint32_t d = credited ? 2 : 1;

        if (c->hold != v->hold)
                return;
        v->budget = v->budget > d ? v->budget - d : 0;
        release_check(s, vi, cb, ud);
}

/* ---- the slow test ---- */

static size_t sketch_off(int t)
{
        return t == 0 ? 0 : M_PAIRS + (size_t)(t - 1) * M_SIDES;
}

static unsigned sketch_m(int t)
{
        return t == 0 ? M_PAIRS : M_SIDES;
}

static double hll_estimate(const struct slow *w, int t)
{
        double m = sketch_m(t);
        double e = 0.7213 / (1 + 1.079 / m) * m * m / w->sum[t];

        if (e <= 2.5 * m && w->zeros[t] > 0)
                e = m * log(m / w->zeros[t]);
        return e;
}

static void merge_all(struct slow *w)
{
        memset(w->merged, 0, sizeof(w->merged));
        for (size_t i = 0; i < SUBS; i++)
                for (size_t j = 0; w->reg[i] != NULL && j < REGS; j++)
                        if (w->reg[i][j] > w->merged[j])
                                w->merged[j] = w->reg[i][j];
        for (int t = 0; t < 3; t++) {
                w->sum[t] = 0;
                w->zeros[t] = 0;
                for (size_t j = 0; j < sketch_m(t); j++) {
                        uint8_t r = w->merged[sketch_off(t) + j];

                        w->sum[t] += ldexp(1, -r);
                        w->zeros[t] += r == 0;
                }
        }
}

static void slow_free(struct pc_scan *s, struct vps *v)
{
        if (v->slow == NULL)
                return;
        for (size_t i = 0; i < SUBS; i++)
                if (v->slow->reg[i] != NULL) {
                        free(v->slow->reg[i]);
                        s->slow_bytes -= REGS;
                }
        free(v->slow);
        s->slow_bytes -= sizeof(struct slow);
        v->slow = NULL;
}

static bool live(const struct slow *w, size_t i, int64_t ep)
{
        return w->used[i] && since(ep, w->epoch[i]) < SUBS;
}

/* Drops the sub-windows of <w> that slid out of the window at <ep>,
 * then makes the current sub-window's slot count <ep>; returns it. */
static size_t slow_slide(struct pc_scan *s, struct slow *w, int64_t ep)
{
        bool dropped = false;
        size_t cur = epoch_slot(ep);

        for (size_t i = 0; i < SUBS; i++) {
                if (!w->used[i] || live(w, i, ep))
                        continue;
                w->used[i] = false;
                if (w->reg[i] != NULL) {
                        free(w->reg[i]);
                        w->reg[i] = NULL;
                        s->slow_bytes -= REGS;
                        dropped = true;
                }
        }
        if (dropped)
                merge_all(w);
        if (!w->used[cur]) {
                w->used[cur] = true;
                w->epoch[cur] = ep;
                w->fails[cur] = w->succs[cur] = 0;
        }
        return cur;
}

/* True if no failure is left in <w>'s window (it can be freed). */
static bool slow_empty(const struct slow *w)
{
        for (size_t i = 0; i < SUBS; i++)
                if (w->reg[i] != NULL)
                        return false;
        return true;
}

static void hll_add(struct slow *w, uint8_t *reg, int t, uint64_t h)
{
        unsigned p = t == 0 ? P_PAIRS : P_SIDES;
        size_t j = sketch_off(t) + (size_t)(h >> (64 - p));
        uint8_t r = (uint8_t)(__builtin_clzll((h << p) | (1ull << (p - 1))) + 1);

        if (reg[j] < r)
                reg[j] = r;
        if (w->merged[j] < r) {
                w->sum[t] += ldexp(1, -r) - ldexp(1, -w->merged[j]);
                w->zeros[t] -= w->merged[j] == 0;
                w->merged[j] = r;
        }
}

static void slow_found(struct pc_scan *s, uint32_t vi, pc_scan_cb cb, void *ud)
{
        struct vps *v = &s->vps[vi];
        struct slow *w = v->slow;
        struct pc_scan_finding f = {
                .kind = PC_SCAN_SLOW,
                .vps = v->id,
                .score = hll_estimate(w, 0),
                .pending = v->pending,
        };
        bool first = true;

        f.distinct_hosts = (uint64_t)llround(hll_estimate(w, 1));
        f.distinct_ports = (uint64_t)llround(hll_estimate(w, 2));
        for (size_t i = 0; i < SUBS; i++) {
                if (!w->used[i])
                        continue;
                f.failures += w->fails[i];
                f.successes += w->succs[i];
                if (w->fails[i] == 0)
                        continue;
                if (first || w->first_ms[i] < f.first_ms)
                        f.first_ms = w->first_ms[i];
                if (first || w->last_ms[i] > f.last_ms)
                        f.last_ms = w->last_ms[i];
                first = false;
        }
        f.shape = shape(f.distinct_hosts, f.distinct_ports);
        (void)failed_contacts(s, v, false, &f);
        slow_free(s, v);
        v->scanner = true;
        suspicion_end(s, v);
        relist(s, vi);
        if (cb != NULL)
                cb(ud, &f);
}

/* Hashes of a destination for the three sketches. */
static void slow_hashes(const struct pc_scan *s, const struct ckey *k, uint64_t h[3])
{
        struct {
                uint8_t family, proto;
                uint16_t port;
                uint8_t pad[4];
                uint8_t addr[16];
        } key;

        memset(&key, 0, sizeof(key));
        key.proto = k->proto;
        key.port = k->port;
        h[2] = hash_words(s->seed ^ 0x27d4eb2f165667c5ull, &key, sizeof(key));
        key.family = k->family;
        memcpy(key.addr, k->addr, sizeof(key.addr));
        h[0] = hash_words(s->seed ^ 0x5bd1e9955bd1e995ull, &key, sizeof(key));
        key.proto = 0;
        key.port = 0;
        h[1] = hash_words(s->seed ^ 0x94d049bb133111ebull, &key, sizeof(key));
}

/* Contact <c> failed (refused, closed unanswered or timed out): into the
 * sketches, once. */
static void slow_fail(struct pc_scan *s, uint32_t vi, const struct contact *c, pc_scan_cb cb, void *ud)
{
        struct vps *v = &s->vps[vi];
        struct slow *w = v->slow;
        uint64_t h[3];
        size_t i;

        if (w == NULL) {
                w = calloc(1, sizeof(*w));
                if (w == NULL)
                        return; /* -ENOMEM: this failure is not counted */
                s->slow_bytes += sizeof(*w);
                for (int t = 0; t < 3; t++) {
                        w->sum[t] = sketch_m(t);
                        w->zeros[t] = sketch_m(t);
                }
                v->slow = w;
        }
        i = slow_slide(s, w, epoch_of(s, s->now));
        if (w->reg[i] == NULL) {
                w->reg[i] = calloc(1, REGS);
                if (w->reg[i] == NULL) {
                        if (slow_empty(w))
                                slow_free(s, v);
                        return;
                }
                s->slow_bytes += REGS;
        }
        if (w->fails[i]++ == 0 || c->opened_ms < w->first_ms[i])
                w->first_ms[i] = c->opened_ms;
        if (w->fails[i] == 1 || c->opened_ms > w->last_ms[i])
                w->last_ms[i] = c->opened_ms;
        slow_hashes(s, &c->k, h);
        for (int t = 0; t < 3; t++)
                hll_add(w, w->reg[i], t, h[t]);
        if (hll_estimate(w, 0) >= s->p.slow_threshold)
                slow_found(s, vi, cb, ud);
}

/* A success of <v>: counted in the window, if a failure is in it. */
static void slow_success(struct pc_scan *s, struct vps *v)
{
        size_t i;

        if (v->slow == NULL)
                return;
        i = slow_slide(s, v->slow, epoch_of(s, s->now));
        if (slow_empty(v->slow))
                slow_free(s, v);
        else
                v->slow->succs[i]++;
}

/* ---- destinations ---- */

/* Counts queued contact <ci>'s outcome in its VPS's walk, now. */
static void apply(struct pc_scan *s, uint32_t ci, pc_scan_cb cb, void *ud)
{
        struct contact *c = &s->con[ci];
        uint32_t vi = c->k.vps;
        struct vps *v = &s->vps[vi];

        list_del(&v->order, CL(s, order), ci);
        c->queued = false;
        if (c->outcome == O_FAIL || (c->outcome == O_SUCCESS && v->successes < PC_SCAN_HOSTS))
                walk_count(s, vi, c, c->outcome == O_SUCCESS, cb, ud);
        else
                c->walk = v->walk;
        if (c->outcome == O_FAIL)
                slow_fail(s, vi, c, cb, ud);
}

/* Counts the outcomes of VPS <vi>'s first contacts in the order they were
 * opened, as the walk assumes: an answer waits for the contacts opened
 * before it to be decided (pending_timeout_ms at most).  Otherwise the
 * answers of a burst, quick, restart the walk before its failures, slow,
 * are counted: a client with one host in six dead (a P2P swarm, a
 * dual-stack client whose IPv6 is broken) met them in a fresh walk. */
static void drain(struct pc_scan *s, uint32_t vi, pc_scan_cb cb, void *ud)
{
        struct vps *v = &s->vps[vi];

        while (v->order.head != NIL && s->con[v->order.head].outcome != O_NONE)
                apply(s, v->order.head, cb, ud);
}

/* An answer from queued or pending contact <c>: a success if its host
 * has not paid within contact memory (it pays now), else neither. */
static bool answer_credit(struct pc_scan *s, struct vps *v, const struct contact *c)
{
        if (!host_credited(s, v, c))
                return false;
        credit(s, v, c);
        slow_success(s, v);
        return true;
}

/* Settles contact <ci> (see scan.h for which outcome counts how). */
static void resolve(struct pc_scan *s, uint32_t ci, uint8_t state, pc_scan_cb cb, void *ud)
{
        struct contact *c = &s->con[ci];
        uint32_t vi = c->k.vps;
        struct vps *v = &s->vps[vi];
        uint8_t was = c->state;
        bool credited;

        if (was == C_PENDING) {
                list_del(&s->pending, CL(s, pending), ci);
                v->pending--;
                c->state = state;
                if (state == C_ANSWERED) {
                        credited = answer_credit(s, v, c);
                        c->outcome = credited ? O_SUCCESS : O_NEITHER;
                        drain(s, vi, cb, ud);
                        budget_answer(s, vi, c, credited, cb, ud);
                } else {
                        c->outcome = O_FAIL;
                        drain(s, vi, cb, ud);
                }
        } else if (was == C_TIMEDOUT && state == C_ANSWERED && c->queued) {
                /* Its failure was not counted yet: an answer instead. */
                c->state = C_ANSWERED;
                credited = answer_credit(s, v, c);
                c->outcome = credited ? O_SUCCESS : O_NEITHER;
                budget_answer(s, vi, c, credited, cb, ud);
        } else if (was == C_TIMEDOUT && state == C_ANSWERED) {
                /* Its failure is undone in the walk it counted in, not in
                 * the sketches. */
                c->state = C_ANSWERED;
                credited = c->walk == v->walk && v->failures > 0;
                if (credited) {
                        v->failures--;
                        credited = answer_credit(s, v, c);
                        if (credited)
                                walk_count(s, vi, c, true, cb, ud);
                        else if (lambda(s, v) <= s->lower)
                                walk_restart(v);
                }
                budget_answer(s, vi, c, credited, cb, ud);
        } else if (was == C_TIMEDOUT && state == C_FAILED) {
                c->state = C_FAILED; /* in the sketches since it timed out */
        }
}

/* Frees contact <ci> as it is, its VPS's pending count kept right. */
static void con_free(struct pc_scan *s, uint32_t ci)
{
        struct contact *c = &s->con[ci];
        struct vps *v = &s->vps[c->k.vps];

        if (c->state == C_PENDING) {
                list_del(&s->pending, CL(s, pending), ci);
                v->pending--;
        }
        if (c->queued)
                list_del(&v->order, CL(s, order), ci);
        list_del(&v->contacts, CL(s, by_vps), ci);
        list_del(&s->all, CL(s, by_all), ci);
        index_del(&s->cidx, con_slot(s, &c->k, hash_key(s, &c->k)));
        c->state = 0;
        c->by_all.next = s->con_free;
        s->con_free = ci;
        s->n_con--;
}

/* Forgets contact <ci>: a pending one fails first, a timed-out one's
 * failure becomes final, and one still queued counts at once. */
static void con_drop(struct pc_scan *s, uint32_t ci, pc_scan_cb cb, void *ud)
{
        if (s->con[ci].state == C_PENDING)
                resolve(s, ci, C_TIMEDOUT, cb, ud);
        if (s->con[ci].state == C_TIMEDOUT)
                resolve(s, ci, C_FAILED, cb, ud);
        if (s->con[ci].queued)
                apply(s, ci, cb, ud);
        con_free(s, ci);
}

/* Grows the pool of <n> records of <size> at *<base> to hold one more
 * (capacity *<cap>, at most <max>), the new slots put on the free list
 * <*free>, linked through the uint32_t at <off>. */
static int pool_grow(void **base, size_t *cap, size_t max, size_t size, size_t off, uint32_t *free_list)
{
        size_t ncap = *cap < 8 ? 16 : *cap * 2;
        char *b;

        if (ncap > max)
                ncap = max;
        if (ncap <= *cap)
                return -ENOSPC;
        b = realloc(*base, ncap * size);
        if (b == NULL)
                return -ENOMEM;
        memset(b + *cap * size, 0, (ncap - *cap) * size);
        for (size_t i = ncap; i-- > *cap;) {
                memcpy(b + i * size + off, free_list, sizeof(*free_list));
                *free_list = (uint32_t)i;
        }
        *base = b;
        *cap = ncap;
        return 0;
}

static void vps_free(struct pc_scan *s, uint32_t vi)
{
        struct vps *v = &s->vps[vi];

        while (v->contacts.head != NIL)
                con_free(s, v->contacts.head);
        if (v->suspect)
                s->n_suspect--;
        slow_free(s, v);
        list_del(v->kept ? &s->kept : &s->idle, VL(s), vi);
        index_del(&s->vidx, vps_slot(s, v->id, hash_id(s, v->id)));
        memset(v, 0, sizeof(*v));
        v->lru.next = s->vps_free;
        s->vps_free = vi;
        s->n_vps--;
}

static void touch(struct pc_scan *s, uint32_t vi)
{
        struct vps *v = &s->vps[vi];

        v->active_ms = s->now;
        list_del(v->kept ? &s->kept : &s->idle, VL(s), vi);
        list_push(v->kept ? &s->kept : &s->idle, VL(s), vi);
}

/* Finds the VPS <id>, making it if need be; sets *<ret> to its index. */
static int vps_get(struct pc_scan *s, const char *id, uint32_t *ret)
{
        uint32_t h = hash_id(s, id), vi;
        size_t pos = vps_slot(s, id, h);
        struct vps *v;
        int r;

        if (s->vidx.slots[pos].ref != 0) {
                *ret = s->vidx.slots[pos].ref - 1;
                return 0;
        }
        if (s->n_vps >= s->p.max_vps)
                vps_free(s, s->idle.head != NIL ? s->idle.head : s->kept.head);
        if (s->vps_free == NIL) {
                r = pool_grow((void **)&s->vps, &s->vps_cap, s->p.max_vps, sizeof(struct vps),
                              offsetof(struct vps, lru.next), &s->vps_free);
                if (r < 0)
                        return r == -ENOSPC ? -ENOMEM : r;
        }
        r = index_reserve(&s->vidx);
        if (r < 0)
                return r;
        vi = s->vps_free;
        v = &s->vps[vi];
        s->vps_free = v->lru.next;
        memset(v, 0, sizeof(*v));
        strcpy(v->id, id);
        list_init(&v->contacts);
        list_init(&v->order);
        v->used = true;
        v->active_ms = s->now;
        list_push(&s->idle, VL(s), vi);
        pos = vps_slot(s, id, h);
        s->vidx.slots[pos] = (struct islot){ .hash = h, .ref = vi + 1 };
        s->vidx.n++;
        s->n_vps++;
        *ret = vi;
        return 0;
}

/* A first contact <k> of VPS <vi>, over <proto>. */
static int con_new(struct pc_scan *s, uint32_t vi, const struct ckey *k, uint8_t proto, uint32_t h, pc_scan_cb cb,
                   void *ud)
{
        struct contact *c;
        struct vps *v;
        uint32_t ci;
        int r;

        if (s->vps[vi].contacts.n >= s->p.max_contacts_per_vps)
                con_drop(s, s->vps[vi].contacts.head, cb, ud);
        if (s->n_con >= s->p.max_contacts)
                con_drop(s, s->all.head, cb, ud);
        if (s->con_free == NIL) {
                r = pool_grow((void **)&s->con, &s->con_cap, s->con_max, sizeof(struct contact),
                              offsetof(struct contact, by_all.next), &s->con_free);
                if (r < 0)
                        return r == -ENOSPC ? -ENOMEM : r;
        }
        r = index_reserve(&s->cidx);
        if (r < 0)
                return r;
        v = &s->vps[vi];
        ci = s->con_free;
        c = &s->con[ci];
        s->con_free = c->by_all.next;
        memset(c, 0, sizeof(*c));
        c->k = *k;
        c->proto = proto;
        c->opened_ms = c->last_ms = s->now;
        c->state = C_PENDING;
        c->hold = v->hold;
        c->walk = v->walk;
        list_push(&v->contacts, CL(s, by_vps), ci);
        list_push(&s->all, CL(s, by_all), ci);
        list_push(&s->pending, CL(s, pending), ci);
        list_push(&v->order, CL(s, order), ci);
        c->queued = true;
        s->cidx.slots[con_slot(s, k, h)] = (struct islot){ .hash = h, .ref = ci + 1 };
        s->cidx.n++;
        s->n_con++;
        v->pending++;
        if (v->budget < UINT32_MAX)
                v->budget++;
        return 0;
}

static void expire(struct pc_scan *s, pc_scan_cb cb, void *ud)
{
        while (s->pending.head != NIL && since(s->now, s->con[s->pending.head].opened_ms) >=
                                                 (uint64_t)s->p.pending_timeout_ms)
                resolve(s, s->pending.head, C_TIMEDOUT, cb, ud);
        suspects_expire(s, cb, ud);
        while (s->all.head != NIL && since(s->now, s->con[s->all.head].last_ms) > (uint64_t)s->p.contact_memory_ms)
                con_drop(s, s->all.head, cb, ud);
        while (s->idle.head != NIL && since(s->now, s->vps[s->idle.head].active_ms) >= (uint64_t)s->idle_ms)
                vps_free(s, s->idle.head);
}

/* ---- the interface ---- */

void pc_scan_params_default(struct pc_scan_params *p)
{
        *p = (struct pc_scan_params){
                .false_positive_rate = 0.001,
                .detection_rate = 0.99,
                .benign_success = 0.8,
                .scanner_success = 0.2,
                .pending_timeout_ms = 2000,
                .hold_budget = 5,
                .contact_memory_ms = 600000,
                .max_contacts_per_vps = 512,
                .max_contacts = 1048576,
                .max_vps = 65536,
                .slow_window_ms = 3600000,
                .slow_threshold = 100,
                .confirm_probes = 20,
                .confirm_window_ms = 60000,
        };
}

/* The most destinations <p> lets the detector remember. */
static size_t contacts_max(const struct pc_scan_params *p)
{
        return p->max_vps * p->max_contacts_per_vps < p->max_contacts ? p->max_vps * p->max_contacts_per_vps
                                                                         : p->max_contacts;
}

static bool params_valid(const struct pc_scan_params *p)
{
        return p->false_positive_rate > 0 && p->detection_rate < 1 &&
               p->false_positive_rate < p->detection_rate && p->scanner_success > 0 && p->benign_success < 1 &&
               p->scanner_success < p->benign_success && p->pending_timeout_ms > 0 &&
               p->contact_memory_ms >= p->pending_timeout_ms && p->contact_memory_ms <= PC_SCAN_TIME_MAX &&
               p->hold_budget > 0 && p->max_contacts_per_vps >= 1 &&
               p->max_contacts_per_vps <= PC_SCAN_CONTACTS_PER_VPS_MAX && p->max_contacts >= 1 &&
               p->max_contacts <= PC_SCAN_CONTACTS_MAX && p->max_vps >= 1 && p->max_vps <= PC_SCAN_VPS_MAX &&
               p->slow_window_ms >= SUBS && p->slow_window_ms <= PC_SCAN_TIME_MAX && p->slow_threshold >= 1 &&
               p->confirm_probes <= PC_SCAN_CONFIRM_MAX && p->confirm_window_ms > 0 &&
               p->confirm_window_ms <= PC_SCAN_TIME_MAX;
}

int pc_scan_new(const struct pc_scan_params *p, struct pc_scan **ret)
{
        struct pc_scan *s;

        if (p == NULL || !params_valid(p))
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (s == NULL)
                return -ENOMEM;
        s->p = *p;
        s->ln_succ = log(p->scanner_success / p->benign_success);
        s->ln_fail = log((1 - p->scanner_success) / (1 - p->benign_success));
        s->upper = log(p->detection_rate / p->false_positive_rate);
        s->lower = log((1 - p->detection_rate) / (1 - p->false_positive_rate));
        s->sub_ms = p->slow_window_ms / SUBS;
        s->idle_ms = (p->contact_memory_ms > p->slow_window_ms ? p->contact_memory_ms : p->slow_window_ms) + 1;
        s->seed = p->seed;
        if (s->seed == 0 && getrandom(&s->seed, sizeof(s->seed), GRND_NONBLOCK) != (ssize_t)sizeof(s->seed))
                s->seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)s;
        s->vps_free = s->con_free = NIL;
        list_init(&s->idle);
        list_init(&s->kept);
        list_init(&s->all);
        list_init(&s->pending);
        s->con_max = contacts_max(p);
        s->scratch = calloc(p->max_contacts_per_vps, sizeof(*s->scratch));
        if (s->scratch == NULL || index_init(&s->vidx) < 0 || index_init(&s->cidx) < 0) {
                pc_scan_free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

struct pc_scan *pc_scan_free(struct pc_scan *s)
{
        if (s == NULL)
                return NULL;
        for (size_t i = 0; i < s->vps_cap; i++)
                if (s->vps[i].used)
                        slow_free(s, &s->vps[i]);
        free(s->vps);
        free(s->con);
        free(s->vidx.slots);
        free(s->cidx.slots);
        free(s->scratch);
        free(s);
        return NULL;
}

static bool id_valid(const char *id)
{
        return id != NULL && strnlen(id, ID_MAX) < ID_MAX;
}

int pc_scan_event(struct pc_scan *s, const struct pc_contact *c, enum pc_contact_outcome o, int64_t now_ms,
                  pc_scan_cb cb, void *userdata)
{
        struct ckey k;
        uint32_t vi, h;
        size_t pos;
        int r;

        if (c == NULL || !id_valid(c->vps) || (c->family != AF_INET && c->family != AF_INET6) ||
            (unsigned)o > PC_CONTACT_CLOSED)
                return -EINVAL;
        memset(&k, 0, sizeof(k));
        k.family = c->family == AF_INET ? 4 : 6;
        k.proto = key_proto(c->proto);
        k.port = c->port;
        memcpy(k.addr, c->addr, c->family == AF_INET ? 4 : 16);
        clock_to(s, now_ms);
        expire(s, cb, userdata);
        if (o == PC_CONTACT_OPENED) {
                r = vps_get(s, c->vps, &vi);
                if (r < 0)
                        return r;
        } else {
                vi = vps_find(s, c->vps);
                if (vi == NIL)
                        return 0;
        }
        touch(s, vi);
        k.vps = vi;
        h = hash_key(s, &k);
        pos = con_slot(s, &k, h);
        if (s->cidx.slots[pos].ref == 0)
                return o == PC_CONTACT_OPENED ? con_new(s, vi, &k, c->proto, h, cb, userdata) : 0;
        switch (o) {
        case PC_CONTACT_OPENED: {
                uint32_t ci = s->cidx.slots[pos].ref - 1;

                /* A repeat (expire() forgot those older than the memory). */
                s->con[ci].last_ms = s->now;
                list_del(&s->vps[vi].contacts, CL(s, by_vps), ci);
                list_push(&s->vps[vi].contacts, CL(s, by_vps), ci);
                list_del(&s->all, CL(s, by_all), ci);
                list_push(&s->all, CL(s, by_all), ci);
                break;
        }
        case PC_CONTACT_ANSWERED:
                resolve(s, s->cidx.slots[pos].ref - 1, C_ANSWERED, cb, userdata);
                break;
        case PC_CONTACT_REFUSED:
        case PC_CONTACT_CLOSED:
                resolve(s, s->cidx.slots[pos].ref - 1, C_FAILED, cb, userdata);
                break;
        }
        return 0;
}

int pc_scan_held(struct pc_scan *s, const char *vps, int64_t now_ms, pc_scan_cb cb, void *userdata)
{
        uint32_t vi;
        int r;

        if (!id_valid(vps))
                return -EINVAL;
        clock_to(s, now_ms);
        expire(s, cb, userdata);
        r = vps_get(s, vps, &vi);
        if (r < 0)
                return r;
        s->vps[vi].active_ms = s->now;
        s->vps[vi].held = true;
        /* Held, it can make no more first contacts than the budget: a walk
         * with answers banked (Λ < 0) would need more failures than it
         * can make, and stay held without a finding.  It restarts. */
        if (lambda(s, &s->vps[vi]) < 0)
                walk_restart(&s->vps[vi]);
        relist(s, vi);
        release_check(s, vi, cb, userdata);
        return 0;
}

int pc_scan_held_contact(struct pc_scan *s, const struct pc_contact *c, int64_t now_ms, pc_scan_cb cb,
                         void *userdata)
{
        struct ckey k;
        struct vps *v;
        uint32_t vi, h;

        if (c == NULL || !id_valid(c->vps) || (c->family != AF_INET && c->family != AF_INET6))
                return -EINVAL;
        clock_to(s, now_ms);
        expire(s, cb, userdata);
        vi = vps_find(s, c->vps);
        if (vi == NIL)
                return 0;
        v = &s->vps[vi];
        if (!v->held && !v->suspect)
                return 0;
        memset(&k, 0, sizeof(k));
        k.vps = vi;
        k.family = c->family == AF_INET ? 4 : 6;
        k.proto = key_proto(c->proto);
        k.port = c->port;
        memcpy(k.addr, c->addr, c->family == AF_INET ? 4 : 16);
        h = hash_key(s, &k);
        touch(s, vi);
        /* a retransmission (TCP's SYN after 1 s, 3 s...) is no new contact */
        for (uint32_t i = 0; i < HELD_SEEN; i++)
                if (v->held_seen[i] == h)
                        return 0;
        v->held_seen[v->held_next] = h;
        v->held_next = (v->held_next + 1) % HELD_SEEN;
        confirm_add(s, vi, cb, userdata);
        return 0;
}

void pc_scan_tick(struct pc_scan *s, int64_t now_ms, pc_scan_cb cb, void *userdata)
{
        clock_to(s, now_ms);
        expire(s, cb, userdata);
}

void pc_scan_forget(struct pc_scan *s, const char *vps)
{
        uint32_t vi;

        if (!id_valid(vps))
                return;
        vi = vps_find(s, vps);
        if (vi != NIL)
                vps_free(s, vi);
}

int pc_scan_stats(const struct pc_scan *s, const char *vps, struct pc_scan_vps *ret)
{
        const struct vps *v;
        uint32_t vi;

        if (!id_valid(vps))
                return -ENOENT;
        vi = vps_find(s, vps);
        if (vi == NIL)
                return -ENOENT;
        v = &s->vps[vi];
        *ret = (struct pc_scan_vps){
                .score = lambda(s, v),
                .failures = v->failures,
                .successes = v->successes,
                .pending = v->pending,
                .contacts = v->contacts.n,
                .budget_count = v->budget,
                .slow_estimate = v->slow != NULL ? hll_estimate(v->slow, 0) : 0,
                .confirm_count = v->confirm,
                .held = v->held,
                .scanner = v->scanner,
                .suspect = v->suspect,
        };
        return 0;
}

size_t pc_scan_vps_count(const struct pc_scan *s)
{
        return s->n_vps;
}

size_t pc_scan_contact_count(const struct pc_scan *s)
{
        return s->n_con;
}

size_t pc_scan_memory(const struct pc_scan *s)
{
        return sizeof(*s) + s->vps_cap * sizeof(struct vps) + s->con_cap * sizeof(struct contact) +
               (s->vidx.cap + s->cidx.cap) * sizeof(struct islot) +
               s->p.max_contacts_per_vps * sizeof(struct pc_scan_dest) + s->slow_bytes;
}

size_t pc_scan_memory_max(const struct pc_scan_params *p)
{
        size_t con = contacts_max(p);

        return sizeof(struct pc_scan) + p->max_vps * sizeof(struct vps) + con * sizeof(struct contact) +
               (index_cap_for(p->max_vps) + index_cap_for(con)) * sizeof(struct islot) +
               p->max_contacts_per_vps * sizeof(struct pc_scan_dest) +
               p->max_vps * (sizeof(struct slow) + SUBS * REGS);
}

/* Counts the records of <l> and checks its links both ways. */
static bool list_ok(const struct list *l, void *base, size_t size, size_t off, size_t cap)
{
        uint32_t prev = NIL;
        size_t n = 0;

        for (uint32_t i = l->head; i != NIL; i = lk(base, size, off, i)->next) {
                if (i >= cap || lk(base, size, off, i)->prev != prev || ++n > l->n)
                        return false;
                prev = i;
        }
        return prev == l->tail && n == l->n;
}

int pc_scan_check(const struct pc_scan *s)
{
        size_t n_vps = 0, n_con = 0, n_pending = 0, n_slow = 0, n_suspect = 0;

        if (!list_ok(&s->idle, VL(s), s->vps_cap) || !list_ok(&s->kept, VL(s), s->vps_cap) ||
            !list_ok(&s->all, CL(s, by_all), s->con_cap) || !list_ok(&s->pending, CL(s, pending), s->con_cap) ||
            s->idle.n + s->kept.n != s->n_vps || s->all.n != s->n_con || s->n_vps > s->p.max_vps ||
            s->n_con > s->p.max_contacts || s->vidx.n != s->n_vps || s->cidx.n != s->n_con ||
            2 * s->vidx.n > s->vidx.cap || 2 * s->cidx.n > s->cidx.cap)
                return -EUCLEAN;
        for (uint32_t vi = 0; vi < s->vps_cap; vi++) {
                const struct vps *v = &s->vps[vi];
                size_t pending = 0;
                ptrdiff_t queued = 0;
                double l;

                if (!v->used)
                        continue;
                n_vps++;
                l = lambda(s, v);
                n_suspect += v->suspect;
                if (vps_find(s, v->id) != vi || v->kept != (v->held || v->scanner || v->suspect) ||
                    (v->suspect && v->suspect_ms + s->p.confirm_window_ms < s->suspect_due) ||
                    !list_ok(&v->contacts, CL(s, by_vps), s->con_cap) || v->contacts.n > s->p.max_contacts_per_vps ||
                    !(v->suspect || (l < s->upper && l > s->lower)) || v->successes > PC_SCAN_HOSTS)
                        return -EUCLEAN;
                for (uint32_t i = 0; i < PC_SCAN_CREDITS; i++)
                        for (uint32_t j = 0; j < i; j++)
                                if (credit_live(s, v, i) && credit_live(s, v, j) &&
                                    v->credit_host[i] == v->credit_host[j])
                                        return -EUCLEAN;
                for (uint32_t ci = v->contacts.head; ci != NIL; ci = s->con[ci].by_vps.next) {
                        const struct contact *c = &s->con[ci];
                        const struct islot *e = &s->cidx.slots[con_slot(s, &c->k, hash_key(s, &c->k))];

                        if (c->k.vps != vi || c->state == 0 || e->ref != ci + 1 || since(s->now, c->last_ms) >
                                                                                        (uint64_t)s->p.contact_memory_ms)
                                return -EUCLEAN;
                        pending += c->state == C_PENDING;
                        queued -= c->queued;
                        if (c->queued && c->outcome == O_NONE && c->state != C_PENDING)
                                return -EUCLEAN;
                        if (c->state == C_PENDING && since(s->now, c->opened_ms) >= (uint64_t)s->p.pending_timeout_ms)
                                return -EUCLEAN;
                }
                if (pending != v->pending || !list_ok(&v->order, CL(s, order), s->con_cap) ||
                    (v->order.head != NIL && s->con[v->order.head].outcome != O_NONE))
                        return -EUCLEAN;
                for (uint32_t ci = v->order.head; ci != NIL; ci = s->con[ci].order.next, queued++) {
                        uint32_t next = s->con[ci].order.next;

                        if (!s->con[ci].queued || s->con[ci].k.vps != vi ||
                            (next != NIL && s->con[next].opened_ms < s->con[ci].opened_ms))
                                return -EUCLEAN;
                }
                if (queued != 0)
                        return -EUCLEAN;
                n_con += v->contacts.n;
                n_pending += pending;
                if (v->slow != NULL) {
                        n_slow += sizeof(struct slow);
                        for (size_t i = 0; i < SUBS; i++) {
                                if (v->slow->reg[i] == NULL)
                                        continue;
                                n_slow += REGS;
                                for (size_t j = 0; j < REGS; j++)
                                        if (v->slow->reg[i][j] > v->slow->merged[j])
                                                return -EUCLEAN;
                        }
                        if (hll_estimate(v->slow, 0) >= s->p.slow_threshold)
                                return -EUCLEAN;
                }
        }
        if (n_vps != s->n_vps || n_con != s->n_con || n_pending != s->pending.n || n_slow != s->slow_bytes ||
            n_suspect != s->n_suspect)
                return -EUCLEAN;
        return 0;
}
