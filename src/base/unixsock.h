/* Unix stream sockets for local control channels. */
#pragma once

#include <stdbool.h>

/* Listens on a Unix stream socket at <path> (mode 0660, its folder made
 * 0750 if missing), replacing a socket a killed process left behind.
 * On success *<ret_fd> is the listening socket (non-blocking, CLOEXEC). */
int pc_unix_listen(const char *path, int *ret_fd);

/* True if the peer of connected socket <fd> runs as root or as our uid. */
bool pc_unix_peer_trusted(int fd, int *ret_uid);
