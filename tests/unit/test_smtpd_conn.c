/* One side of a proxied session (src/smtpd/conn.c): what it keeps of its
 * input, the bound on it, its output, and that an idle side holds no
 * buffer.  Over a socketpair, no TLS. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "smtpd/conn.h"

struct pair {
        struct event_base *base;
        struct conn c;
        int peer;
};

static void on_event(int fd, short what, void *arg)
{
}

static int setup(void **state)
{
        struct pair *p = calloc(1, sizeof(*p));
        int sv[2];

        assert_non_null(p);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        p->base = event_base_new();
        assert_non_null(p->base);
        assert_int_equal(conn_init(&p->c, p->base, sv[0], on_event, p), 0);
        p->peer = sv[1];
        *state = p;
        return 0;
}

static int teardown(void **state)
{
        struct pair *p = *state;

        conn_close(&p->c);
        conn_close(&p->c); /* twice: a closed conn is closed again safely */
        if (p->peer != -1)
                close(p->peer);
        event_base_free(p->base);
        free(p);
        return 0;
}

static void peer_send(struct pair *p, const char *text)
{
        assert_int_equal(write(p->peer, text, strlen(text)), (ssize_t)strlen(text));
}

/* What the caller leaves unused is kept, and comes first next time. */
static void test_keep(void **state)
{
        struct pair *p = *state;
        const char *buf;
        size_t len;

        assert_int_equal(conn_read(&p->c, &buf, &len), -EAGAIN);
        peer_send(p, "HELO a\r\nMAI");
        assert_int_equal(conn_read(&p->c, &buf, &len), 11);
        assert_int_equal(len, 11);
        assert_memory_equal(buf, "HELO a\r\nMAI", 11);
        assert_int_equal(conn_keep(&p->c, buf, len, 8), 0);
        assert_int_equal(p->c.in_len, 3);
        peer_send(p, "L FROM:<>\r\n");
        assert_int_equal(conn_read(&p->c, &buf, &len), 11);
        assert_ptr_equal(buf, p->c.in);
        assert_int_equal(len, 14);
        assert_memory_equal(buf, "MAIL FROM:<>\r\n", 14);
        /* nothing used: all of it stays, in order */
        assert_int_equal(conn_keep(&p->c, buf, len, 0), 0);
        assert_int_equal(p->c.in_len, 14);
        assert_memory_equal(p->c.in, "MAIL FROM:<>\r\n", 14);
        assert_int_equal(conn_keep(&p->c, p->c.in, p->c.in_len, 14), 0);
        assert_null(p->c.in); /* an idle side holds no buffer */
        assert_int_equal(p->c.in_len, 0);
}

/* Input kept and new never passes CONN_INPUT_MAX. */
static void test_bound(void **state)
{
        struct pair *p = *state;
        static char block[4096];
        const char *buf;
        size_t len, sent = 0;
        ssize_t n;

        memset(block, 'x', sizeof(block));
        while (sent < 2 * CONN_INPUT_MAX) {
                n = write(p->peer, block, sizeof(block));
                if (n <= 0)
                        break;
                sent += (size_t)n;
        }
        assert_true(sent > CONN_INPUT_MAX);
        for (;;) {
                n = conn_read(&p->c, &buf, &len);
                if (n == -ENOBUFS)
                        break;
                assert_true(n > 0);
                assert_true(len <= CONN_INPUT_MAX);
                assert_int_equal(conn_keep(&p->c, buf, len, 0), 0);
        }
        assert_int_equal(p->c.in_len, CONN_INPUT_MAX);
        /* using some makes room again */
        assert_int_equal(conn_keep(&p->c, p->c.in, p->c.in_len, 100), 0);
        assert_int_equal(conn_read(&p->c, &buf, &len), 100);
        assert_int_equal(len, CONN_INPUT_MAX);
}

static void test_eof(void **state)
{
        struct pair *p = *state;
        const char *buf;
        size_t len;

        peer_send(p, "QUIT\r\n");
        close(p->peer);
        p->peer = -1;
        assert_int_equal(conn_read(&p->c, &buf, &len), 6);
        assert_int_equal(conn_keep(&p->c, buf, len, len), 0);
        assert_int_equal(conn_read(&p->c, &buf, &len), 0);
        assert_true(p->c.eof);
}

/* Appended pieces leave in order, in as few writes as the socket allows;
 * what it does not take waits; a drained side holds no buffer. */
static void test_output(void **state)
{
        struct pair *p = *state;
        static char got[512 * 1024], block[1000];
        size_t total = 0, read_back = 0;
        ssize_t n;

        conn_append(&p->c, "250-a\r\n", 7);
        conn_append(&p->c, "250 b\r\n", 7);
        assert_int_equal(conn_pending(&p->c), 14);
        assert_int_equal(conn_flush(&p->c), 14);
        assert_int_equal(conn_pending(&p->c), 0);
        assert_null(p->c.out);
        assert_int_equal(read(p->peer, got, sizeof(got)), 14);
        assert_memory_equal(got, "250-a\r\n250 b\r\n", 14);

        /* more than the socket takes */
        for (size_t i = 0; i < 400; i++) {
                memset(block, 'a' + (int)(i % 26), sizeof(block));
                conn_append(&p->c, block, sizeof(block));
                total += sizeof(block);
        }
        assert_false(p->c.out_oom);
        n = conn_flush(&p->c);
        assert_true(n >= 0);
        while (conn_pending(&p->c) > 0) {
                ssize_t r = read(p->peer, got + read_back, sizeof(got) - read_back);

                if (r > 0)
                        read_back += (size_t)r;
                assert_true(conn_flush(&p->c) >= 0);
        }
        assert_null(p->c.out);
        while (read_back < total) {
                ssize_t r = read(p->peer, got + read_back, sizeof(got) - read_back);

                assert_true(r > 0);
                read_back += (size_t)r;
        }
        assert_int_equal(read_back, total);
        for (size_t i = 0; i < 400; i++)
                assert_int_equal(got[i * sizeof(block) + 999], 'a' + (int)(i % 26));
}

/* A peer gone: the write fails, with an errno. */
static void test_write_error(void **state)
{
        struct pair *p = *state;

        close(p->peer);
        p->peer = -1;
        conn_append(&p->c, "DATA\r\n", 6);
        assert_true(conn_flush(&p->c) < 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_keep, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bound, setup, teardown),
                cmocka_unit_test_setup_teardown(test_eof, setup, teardown),
                cmocka_unit_test_setup_teardown(test_output, setup, teardown),
                cmocka_unit_test_setup_teardown(test_write_error, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
