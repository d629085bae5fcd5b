/* Destinations the proxy refuses to connect to: whatever would make it
 * reach the hypervisor itself or its internal networks on a VPS's behalf,
 * from the hypervisor's OUTPUT path (with `source: hypervisor`, from a
 * trusted local address).  Checked on the original destination of every
 * redirected connection, before any connection is made. */
#pragma once

#include <stddef.h>
#include <sys/socket.h>

#include "base/util.h"

#define DEST_HOST_MAX 65536 /* the host's own addresses kept (deduplicated) */

struct dest_guard;

/* A guard refusing, besides the fixed classes (loopback, link-local,
 * multicast, broadcast, unspecified, reserved), the <n_internal> prefixes
 * of <internal> (copied).  -ENOMEM on failure. */
int dest_guard_new(const struct pc_prefix *internal, size_t n_internal, struct dest_guard **ret);

struct dest_guard *dest_guard_free(struct dest_guard *g);

/* Adds <sa> (AF_INET or AF_INET6) to the host's own addresses.  -E2BIG
 * past DEST_HOST_MAX, -EAFNOSUPPORT for another family. */
int dest_guard_add_host(struct dest_guard *g, const struct sockaddr *sa);

/* Adds every address of every interface of this host (getifaddrs), and
 * the IPv4 broadcast addresses.  Negative errno on failure. */
int dest_guard_load_host(struct dest_guard *g);

/* NULL if the proxy may connect to <sa>; else why not, as text for a
 * reply ("a loopback address", "an address of this hypervisor", ...).
 * IPv4-mapped IPv6 addresses are judged as the IPv4 address they map. */
const char *dest_guard_check(const struct dest_guard *g, const struct sockaddr *sa);

/* How many host addresses are known (for logs and tests). */
size_t dest_guard_hosts(const struct dest_guard *g);
