/* Dropping root after setup. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* If running as root, becomes <user> (its uid and gid, no supplementary
 * groups) and keeps no capability but, if <keep_net_raw>, CAP_NET_RAW.
 * Does nothing when not root.  Negative errno and <err> on failure. */
int privdrop(const char *user, bool keep_net_raw, char *err, size_t errsz);
