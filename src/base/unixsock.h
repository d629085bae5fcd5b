/* Unix stream sockets for local control channels. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

/* Listens on a Unix stream socket at <path> (mode 0660, its folder made
 * 0750 if missing), replacing a socket a killed process left behind.
 * On success *<ret_fd> is the listening socket (non-blocking, CLOEXEC). */
int pc_unix_listen(const char *path, int *ret_fd);

/* True if the peer of connected socket <fd> runs as root or as our uid. */
bool pc_unix_peer_trusted(int fd, int *ret_uid);

/* Sends one request line to the control socket at <path> and reads its
 * one-line JSON reply within <timeout_ms>.  *<ret> is the reply object.
 * -ENOENT/-ECONNREFUSED if nothing listens, -ETIMEDOUT, -EPROTO. */
int pc_unix_request(const char *path, const char *request, int timeout_ms, json_t **ret);
