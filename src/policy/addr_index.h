/* Which VPS owns a source address: a hash per prefix length present. */
#pragma once

#include <sys/socket.h>

#include "policy/model.h"

struct addr_index;

/* Indexes every address prefix of every VPS in <m>.  -ENOMEM on failure. */
int addr_index_build(const struct pc_model *m, struct addr_index **ret);

struct addr_index *addr_index_free(struct addr_index *ix);

/* The id of the VPS whose prefix holds <sa> (longest match), or NULL.
 * IPv4-mapped IPv6 addresses are looked up as IPv4. */
const char *addr_index_lookup(const struct addr_index *ix, const struct sockaddr *sa);
