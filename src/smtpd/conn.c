/* One side of a proxied session: socket or TLS, own buffers (see conn.h). */
#include "smtpd/conn.h"

#include <errno.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void in_free(struct conn *c);

/* Where every conn reads: the kept input first, then what the socket has.
 * One loop, one thread: what it holds is used before the next read. */
static char scratch[CONN_INPUT_MAX];

int conn_init(struct conn *c, struct event_base *base, int fd, void (*cb)(int, short, void *), void *arg)
{
        memset(c, 0, sizeof(*c));
        c->fd = fd;
        c->ev_read = event_new(base, fd, EV_READ | EV_PERSIST, cb, arg);
        c->ev_write = event_new(base, fd, EV_WRITE | EV_PERSIST, cb, arg);
        if (c->ev_read == NULL || c->ev_write == NULL) {
                conn_close(c);
                return -ENOMEM;
        }
        return 0;
}

void conn_close(struct conn *c)
{
        if (c->ev_read != NULL)
                event_free(c->ev_read);
        if (c->ev_write != NULL)
                event_free(c->ev_write);
        c->ev_read = c->ev_write = NULL;
        c->reading = c->writing = false;
        if (c->ssl != NULL)
                SSL_free(c->ssl);
        c->ssl = NULL;
        if (c->fd != -1)
                close(c->fd);
        c->fd = -1;
        in_free(c);
        free(c->out);
        c->out = NULL;
        c->out_off = c->out_len = c->out_cap = 0;
}

/* Adds or deletes <ev> so that it is pending exactly when <want>. */
static void event_set_wanted(struct event *ev, bool *on, bool want)
{
        if (want == *on || ev == NULL)
                return;
        if (want)
                event_add(ev, NULL);
        else
                event_del(ev);
        *on = want;
}

void conn_arm(struct conn *c, bool read, bool write)
{
        if (c->ssl != NULL) {
                /* What TLS wants is for the handshake, or for the operation
                 * that asked for it: an SSL_write that must read first is
                 * retried only while the caller still writes, an SSL_read
                 * that must write first only while it still reads.  Left
                 * armed otherwise, a readable (or writable) socket that
                 * nobody services fires on every pass of the loop. */
                bool handshake = !SSL_is_init_finished(c->ssl);
                bool r = read || (c->tls_wants_read && (write || handshake));
                bool w = write || (c->tls_wants_write && (read || handshake));

                read = r;
                write = w;
        }
        event_set_wanted(c->ev_read, &c->reading, read);
        event_set_wanted(c->ev_write, &c->writing, write);
}

void conn_stop(struct conn *c)
{
        c->tls_wants_read = c->tls_wants_write = false;
        event_set_wanted(c->ev_read, &c->reading, false);
        event_set_wanted(c->ev_write, &c->writing, false);
}

bool conn_has_buffered(const struct conn *c)
{
        return c->ssl != NULL && SSL_pending(c->ssl) > 0;
}

/* One SSL_read into <buf>: bytes (> 0), 0 at the end, or a negative errno. */
static ssize_t tls_read(struct conn *c, char *buf, size_t room)
{
        int n, err;

        ERR_clear_error();
        n = SSL_read(c->ssl, buf, room > INT32_MAX ? INT32_MAX : (int)room);
        c->tls_wants_write = false;
        if (n > 0)
                return n;
        err = SSL_get_error(c->ssl, n);
        switch (err) {
        case SSL_ERROR_WANT_READ:
                return -EAGAIN;
        case SSL_ERROR_WANT_WRITE:
                c->tls_wants_write = true;
                return -EAGAIN;
        case SSL_ERROR_ZERO_RETURN:
                return 0;
        case SSL_ERROR_SYSCALL:
                /* errno 0: the connection ended without close_notify. */
                return errno != 0 ? -errno : 0;
        default:
                return -EPROTO;
        }
}

/* Makes room in c->in for <len> bytes (its capacity doubles). */
static int in_reserve(struct conn *c, size_t len)
{
        size_t cap = c->in_cap < 256 ? 256 : c->in_cap;
        char *p;

        if (len <= c->in_cap)
                return 0;
        while (cap < len)
                cap *= 2;
        p = realloc(c->in, cap);
        if (p == NULL)
                return -ENOMEM;
        c->in = p;
        c->in_cap = cap;
        return 0;
}

static void in_free(struct conn *c)
{
        free(c->in);
        c->in = NULL;
        c->in_len = c->in_cap = 0;
}

ssize_t conn_read(struct conn *c, const char **ret_buf, size_t *ret_len)
{
        size_t room = CONN_INPUT_MAX - c->in_len, got = 0;
        ssize_t n;

        if (room == 0)
                return -ENOBUFS;
        if (c->ssl == NULL) {
                do
                        n = recv(c->fd, scratch, room, 0);
                while (n == -1 && errno == EINTR);
                if (n == -1)
                        return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
                got = (size_t)n;
        } else {
                /* A record at a time; what a record leaves in OpenSSL no
                 * socket event announces, so it is taken while there is room. */
                do {
                        n = tls_read(c, scratch + got, room - got);
                        if (n > 0)
                                got += (size_t)n;
                } while (n > 0 && got < room && SSL_pending(c->ssl) > 0);
                if (got == 0 && n < 0)
                        return n;
        }
        if (got == 0) {
                c->eof = true;
                return 0;
        }
        if (c->in_len == 0) {
                /* The usual case: used from the shared buffer, no copy. */
                *ret_buf = scratch;
                *ret_len = got;
                return (ssize_t)got;
        }
        /* After input kept from before: only the new bytes are copied. */
        if (in_reserve(c, c->in_len + got) < 0) {
                in_free(c);
                return -ENOMEM;
        }
        memcpy(c->in + c->in_len, scratch, got);
        c->in_len += got;
        *ret_buf = c->in;
        *ret_len = c->in_len;
        return (ssize_t)got;
}

int conn_keep(struct conn *c, const char *buf, size_t len, size_t used)
{
        size_t rest = len - used;

        if (rest == 0) {
                in_free(c); /* an idle side holds no buffer */
                return 0;
        }
        if (buf == c->in) {
                if (used > 0)
                        memmove(c->in, c->in + used, rest);
                c->in_len = rest;
                return 0;
        }
        /* <buf> is the shared buffer and c->in is empty. */
        if (in_reserve(c, rest) < 0) {
                in_free(c);
                return -ENOMEM;
        }
        memcpy(c->in, buf + used, rest);
        c->in_len = rest;
        return 0;
}

void conn_append(struct conn *c, const char *buf, size_t len)
{
        if (len == 0 || c->out_oom)
                return;
        if (c->out_off + c->out_len + len > c->out_cap) {
                size_t need = c->out_len + len, cap = c->out_cap;
                char *p;

                if (c->out_off > 0 && need <= cap) {
                        memmove(c->out, c->out + c->out_off, c->out_len);
                        c->out_off = 0;
                } else {
                        if (cap < 256)
                                cap = 256;
                        while (cap < need)
                                cap *= 2;
                        if (c->out_off > 0) {
                                memmove(c->out, c->out + c->out_off, c->out_len);
                                c->out_off = 0;
                        }
                        p = realloc(c->out, cap);
                        if (p == NULL) {
                                c->out_oom = true;
                                return;
                        }
                        c->out = p;
                        c->out_cap = cap;
                }
        }
        memcpy(c->out + c->out_off + c->out_len, buf, len);
        c->out_len += len;
}

void conn_discard(struct conn *c)
{
        free(c->out);
        c->out = NULL;
        c->out_off = c->out_len = c->out_cap = 0;
}

/* One SSL_write of what waits: bytes sent (> 0), -EAGAIN, or an errno. */
static ssize_t tls_write(struct conn *c)
{
        int n, err;

        ERR_clear_error();
        n = SSL_write(c->ssl, c->out + c->out_off, c->out_len > INT32_MAX ? INT32_MAX : (int)c->out_len);
        c->tls_wants_read = false;
        if (n > 0)
                return n;
        err = SSL_get_error(c->ssl, n);
        if (err == SSL_ERROR_WANT_WRITE)
                return -EAGAIN;
        if (err == SSL_ERROR_WANT_READ) {
                c->tls_wants_read = true;
                return -EAGAIN;
        }
        if (err == SSL_ERROR_SYSCALL && errno != 0)
                return -errno;
        return -EPIPE;
}

ssize_t conn_flush(struct conn *c)
{
        size_t sent = 0;
        ssize_t n;

        while (c->out_len > 0) {
                if (c->ssl != NULL) {
                        n = tls_write(c);
                } else {
                        n = send(c->fd, c->out + c->out_off, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (n == -1)
                                n = errno == EINTR ? 0 : errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
                }
                if (n == -EAGAIN)
                        break;
                if (n < 0)
                        return n;
                c->out_off += (size_t)n;
                c->out_len -= (size_t)n;
                sent += (size_t)n;
                /* A plain socket that took less is full: no second try. */
                if (c->ssl == NULL && c->out_len > 0 && n > 0)
                        break;
        }
        if (c->out_len == 0 && c->out != NULL)
                conn_discard(c); /* an idle side holds no buffer */
        return (ssize_t)sent;
}

int conn_tls_start(struct conn *c, struct ssl_ctx_st *ctx)
{
        SSL *ssl = SSL_new(ctx);

        if (ssl == NULL || SSL_set_fd(ssl, c->fd) != 1) {
                SSL_free(ssl);
                return -ENOMEM;
        }
        SSL_set_connect_state(ssl);
        /* SSL_write takes what fits and may be given the rest again from
         * a buffer that moved (conn_append reallocates). */
        SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        c->ssl = ssl;
        return 0;
}

int conn_handshake(struct conn *c, char *why, size_t size)
{
        int r, err;
        unsigned long e;

        ERR_clear_error();
        r = SSL_do_handshake(c->ssl);
        c->tls_wants_read = c->tls_wants_write = false;
        if (r == 1)
                return 1;
        err = SSL_get_error(c->ssl, r);
        if (err == SSL_ERROR_WANT_READ) {
                c->tls_wants_read = true;
                return 0;
        }
        if (err == SSL_ERROR_WANT_WRITE) {
                c->tls_wants_write = true;
                return 0;
        }
        e = ERR_get_error();
        snprintf(why, size, "%s", e != 0 ? ERR_reason_error_string(e) : "connection closed");
        return -EPROTO;
}
