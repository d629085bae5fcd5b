/* One side of a proxied session: a nonblocking TCP socket, or TLS over it,
 * with the proxy's own input and output buffers and its two events on the
 * session's libevent loop.
 *
 * Why not a bufferevent: libevent 2.1 reads a socket 4 KiB at a time and
 * asks FIONREAD first, so a 10 kB message was three reads, three ioctls and
 * three writes to the MX where a plain relay needs one of each; each write
 * is a packet and a wake-up of the receiver, the largest cost a relay has
 * (docs/BENCHMARKS.md, "SMTP proxy").  Here a read takes what the socket
 * has, up to the room left (CONN_INPUT_MAX in all), into one buffer that
 * every session shares: only what the relay leaves unused (a partial line,
 * data held for a reply) is copied into the side's own memory, and an idle
 * side holds no buffer at all.
 *
 * The caller decides what each side may do (conn_arm) and calls conn_read,
 * conn_keep and conn_flush from its event callback; a conn never calls the
 * caller back and never frees itself. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct event;
struct event_base;
struct ssl_st;
struct ssl_ctx_st;

/* Bytes a side may have read and not yet had used, at most. */
#define CONN_INPUT_MAX (64 * 1024)

struct conn {
        int fd;                 /* -1 once closed */
        struct ssl_st *ssl;     /* TLS over <fd>, or NULL */
        struct event *ev_read, *ev_write;
        bool reading, writing;  /* the events are added */
        bool eof;               /* the peer ended its stream (or TLS) */
        /* TLS needs the socket readable (the handshake, or an SSL_write
         * that must read first) or writable (the handshake, or an SSL_read
         * that must write first), whatever the caller asked for. */
        bool tls_wants_read, tls_wants_write;
        char *in;               /* input not used yet (heap), NULL when none */
        size_t in_len, in_cap;
        char *out;              /* output not sent yet (heap), NULL when none */
        size_t out_off, out_len, out_cap;
        bool out_oom;           /* an append failed: the side is broken */
};

/* Sets up <c> on the nonblocking socket <fd> (which it owns from now on,
 * even on failure), with <cb>(fd, what, <arg>) for both its events.
 * Returns 0 or -ENOMEM. */
int conn_init(struct conn *c, struct event_base *base, int fd,
              void (*cb)(int, short, void *), void *arg);

/* Deletes the events, frees the TLS state and the buffers, closes the
 * socket.  Accepts a conn never initialised (zeroed, fd -1) or closed. */
void conn_close(struct conn *c);

/* Asks for the events that let <c> read (if <read>) and write what waits
 * (if <write>); with TLS, also those its last operation needs. */
void conn_arm(struct conn *c, bool read, bool write);

/* No more I/O on <c>: both events deleted, and what TLS last wanted (a
 * handshake given up, a write or read left half done) forgotten, so that
 * a later conn_arm(c, false, false) keeps them deleted. */
void conn_stop(struct conn *c);

/* True if TLS holds decrypted input that no socket event will announce. */
bool conn_has_buffered(const struct conn *c);

/* Reads once (TLS: while a record has more and there is room), at most
 * the room CONN_INPUT_MAX leaves beside the input kept by conn_keep, and
 * sets <ret_buf> and <ret_len> to all the input, kept and new: a buffer
 * shared by every conn if nothing was kept (valid until the next
 * conn_read of any conn), else c->in with the new bytes appended.  Returns
 * the bytes read (> 0), 0 at the end of the stream (c->eof), -EAGAIN if
 * there was nothing (nothing set), -ENOBUFS if the room is used up, or
 * another negative errno (-ENOMEM: the kept input is lost). */
ssize_t conn_read(struct conn *c, const char **ret_buf, size_t *ret_len);

/* After the caller used <used> bytes of the <len> bytes at <buf> (what
 * conn_read returned, or c->in itself), keeps the rest as <c>'s input.
 * Returns 0 or -ENOMEM (the input is then dropped). */
int conn_keep(struct conn *c, const char *buf, size_t len, size_t used);

/* Appends <len> bytes to the output (no I/O).  On failure sets out_oom. */
void conn_append(struct conn *c, const char *buf, size_t len);

/* Bytes waiting to be sent. */
static inline size_t conn_pending(const struct conn *c) { return c->out_len; }

/* Drops the output not sent yet. */
void conn_discard(struct conn *c);

/* Sends what it can of the output.  Returns the bytes sent (>= 0, fewer
 * than were waiting if the socket is full), or a negative errno. */
ssize_t conn_flush(struct conn *c);

/* Puts TLS (client side, context <ctx>) over <c>'s connection; the
 * handshake runs in conn_handshake.  Returns 0 or -ENOMEM. */
int conn_tls_start(struct conn *c, struct ssl_ctx_st *ctx);

/* Takes the handshake on: 1 done, 0 not yet (conn_arm asks for what it
 * needs), or a negative errno with the reason in <why>. */
int conn_handshake(struct conn *c, char *why, size_t size);
