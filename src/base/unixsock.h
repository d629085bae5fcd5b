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

/* The path of file <name> beside control socket <control>, in the same
 * folder, into <buf> of <size> bytes; -ENAMETOOLONG. */
int pc_unix_sibling_path(const char *control, const char *name, char *buf, size_t size);

/* The path of the wake socket beside control socket <control>:
 * "changes.sock" (pc_unix_sibling_path). */
int pc_unix_wake_path(const char *control, char *buf, size_t size);

/* Listens on the datagram wake socket at <path>: mode 0666, and its folder
 * made traversable by all (o+x, not readable), so that an unprivileged
 * writer (portcullis-apid) can reach it.  A datagram carries no data and
 * no authority: it only says "look at the change feed".  Non-blocking. */
int pc_unix_wake_listen(const char *path, int *ret_fd);

/* Sends one wake datagram to <path>, never blocking: 0, or -errno
 * (-ENOENT/-ECONNREFUSED when nothing listens; the listener follows the
 * feed on its own then). */
int pc_unix_wake(const char *path);
