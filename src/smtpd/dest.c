/* Destinations the proxy refuses (see dest.h). */
#include "smtpd/dest.h"

#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* An address in one comparable form: IPv4 as ::ffff:a.b.c.d. */
struct addr {
        uint8_t b[16];
};

struct dest_guard {
        struct pc_prefix *internal;
        size_t n_internal;
        struct addr *host; /* sorted, unique */
        size_t n_host, cap_host;
};

static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* <sa> as an addr; false for other families. */
static bool to_addr(const struct sockaddr *sa, struct addr *ret)
{
        if (sa->sa_family == AF_INET) {
                memcpy(ret->b, v4mapped, 12);
                memcpy(ret->b + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
                return true;
        }
        if (sa->sa_family == AF_INET6) {
                memcpy(ret->b, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
                return true;
        }
        return false;
}

static bool is_v4(const struct addr *a)
{
        return memcmp(a->b, v4mapped, 12) == 0;
}

static bool in_prefix(const struct addr *a, const struct pc_prefix *p)
{
        struct pc_prefix host = { .family = AF_INET6, .len = 128 };

        if (is_v4(a)) {
                /* An IPv4 prefix holds the address; an IPv6 one may hold
                 * its IPv4-mapped form. */
                struct pc_prefix v4 = { .family = AF_INET, .len = 32 };

                memcpy(v4.bytes, a->b + 12, 4);
                if (pc_prefix_overlaps(p, &v4))
                        return true;
        }
        memcpy(host.bytes, a->b, 16);
        return pc_prefix_overlaps(p, &host);
}

static int addr_cmp(const void *x, const void *y)
{
        return memcmp(x, y, sizeof(struct addr));
}

int dest_guard_new(const struct pc_prefix *internal, size_t n_internal, struct dest_guard **ret)
{
        struct dest_guard *g = calloc(1, sizeof(*g));

        if (g == NULL)
                return -ENOMEM;
        if (n_internal > 0) {
                g->internal = calloc(n_internal, sizeof(*internal));
                if (g->internal == NULL) {
                        free(g);
                        return -ENOMEM;
                }
                memcpy(g->internal, internal, n_internal * sizeof(*internal));
                g->n_internal = n_internal;
        }
        *ret = g;
        return 0;
}

struct dest_guard *dest_guard_free(struct dest_guard *g)
{
        if (g != NULL) {
                free(g->internal);
                free(g->host);
        }
        free(g);
        return NULL;
}

int dest_guard_add_host(struct dest_guard *g, const struct sockaddr *sa)
{
        struct addr a;
        size_t lo = 0, hi;

        if (!to_addr(sa, &a))
                return -EAFNOSUPPORT;
        /* Insert in order (binary search for the place), skipping duplicates:
         * every VPS interface may carry the same gateway address. */
        hi = g->n_host;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                int c = addr_cmp(&g->host[mid], &a);

                if (c == 0)
                        return 0;
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (g->n_host == DEST_HOST_MAX)
                return -E2BIG;
        if (g->n_host == g->cap_host) {
                size_t cap = g->cap_host != 0 ? g->cap_host * 2 : 16;
                struct addr *h = realloc(g->host, cap * sizeof(*h));

                if (h == NULL)
                        return -ENOMEM;
                g->host = h;
                g->cap_host = cap;
        }
        memmove(&g->host[lo + 1], &g->host[lo], (g->n_host - lo) * sizeof(*g->host));
        g->host[lo] = a;
        g->n_host++;
        return 0;
}

int dest_guard_load_host(struct dest_guard *g)
{
        struct ifaddrs *list;
        int r = 0;

        if (getifaddrs(&list) == -1)
                return -errno;
        for (struct ifaddrs *i = list; i != NULL && r == 0; i = i->ifa_next) {
                if (i->ifa_addr == NULL ||
                    (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
                        continue;
                r = dest_guard_add_host(g, i->ifa_addr);
                if (r == 0 && i->ifa_addr->sa_family == AF_INET && (i->ifa_flags & IFF_BROADCAST) &&
                    i->ifa_broadaddr != NULL && i->ifa_broadaddr->sa_family == AF_INET)
                        r = dest_guard_add_host(g, i->ifa_broadaddr);
        }
        freeifaddrs(list);
        return r;
}

size_t dest_guard_hosts(const struct dest_guard *g)
{
        return g->n_host;
}

/* The fixed classes of IPv4 address <b> (4 bytes). */
static const char *check_v4(const uint8_t *b)
{
        if (b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0)
                return "the unspecified address";
        if (b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] == 255)
                return "a broadcast address";
        if (b[0] == 127)
                return "a loopback address";
        if (b[0] == 169 && b[1] == 254)
                return "a link-local address";
        if (b[0] >= 224 && b[0] <= 239)
                return "a multicast address";
        if (b[0] == 0 || b[0] >= 240)
                return "a reserved address";
        return NULL;
}

/* The fixed classes of IPv6 address <b> (16 bytes, not IPv4-mapped). */
static const char *check_v6(const uint8_t *b)
{
        static const uint8_t zero[16] = { 0 };

        if (memcmp(b, zero, 16) == 0)
                return "the unspecified address";
        if (memcmp(b, zero, 15) == 0 && b[15] == 1)
                return "a loopback address";
        if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
                return "a link-local address";
        if (b[0] == 0xff)
                return "a multicast address";
        /* IPv4-compatible (::a.b.c.d, deprecated) and site-local (fec0::/10,
         * deprecated): nothing an MX may use. */
        if (memcmp(b, zero, 12) == 0 || (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0))
                return "a reserved address";
        return NULL;
}

const char *dest_guard_check(const struct dest_guard *g, const struct sockaddr *sa)
{
        struct addr a;
        const char *why;

        if (!to_addr(sa, &a))
                return "not an IP address";
        why = is_v4(&a) ? check_v4(a.b + 12) : check_v6(a.b);
        if (why != NULL)
                return why;
        if (g->n_host > 0 && bsearch(&a, g->host, g->n_host, sizeof(*g->host), addr_cmp) != NULL)
                return "an address of this hypervisor";
        for (size_t i = 0; i < g->n_internal; i++)
                if (in_prefix(&a, &g->internal[i]))
                        return "an internal address";
        return NULL;
}
