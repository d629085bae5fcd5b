/* relay_floor: the least any TCP relay can cost, for bench/smtp.sh.
 *
 * Usage: relay_floor [--splice] LISTEN_ADDR:PORT UPSTREAM_ADDR:PORT  (IPv4)
 *
 * One thread, one epoll set (level-triggered), nonblocking accept4(); for
 * each accepted connection one nonblocking connect() to UPSTREAM, and the
 * bytes moved both ways as they come, with no parsing, no logging, no
 * timers, no limits.  What a transparent SMTP proxy cannot do without --
 * two connections per session, every byte received and sent twice -- and
 * nothing else: its CPU per message is the floor portcullis-smtpd is
 * measured against.
 *
 * Bytes move with read()/write() through one 16 kB buffer per direction
 * (the default), or with --splice through a pipe per direction (kept in a
 * free list for the next connection): two splice() calls replace the read
 * and the write, and the pipes cost descriptors and set-up.  The bench
 * measures both and uses the cheaper (see docs/BENCHMARKS.md).
 *
 * A bench tool, not a server: it relays whatever connects, to one fixed
 * upstream; a full buffer stops its source being read; an end of stream
 * is passed on as a shutdown(SHUT_WR); an error ends the pair. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 16384
#define PIPES_KEPT 4096

struct pair;

/* One direction: bytes read from <from> wait here until <to> takes them. */
struct dir {
        int from, to;
        char *buf;      /* read/write mode */
        int pipe[2];    /* splice mode */
        size_t off, len; /* buf: unsent bytes; pipe: len bytes in the pipe */
        bool eof;       /* <from> ended: shut <to> down once drained */
        bool shut;
};

/* One side's epoll registration; <p> is the pair, <side> 0 client, 1 upstream. */
struct end {
        struct pair *p;
        int side;
        unsigned events; /* what epoll is asked for now */
};

struct pair {
        int fd[2];
        bool connecting;
        bool dead;          /* closed; freed after this epoll batch */
        struct pair *next_dead;
        struct dir d[2]; /* d[0]: client -> upstream, d[1]: upstream -> client */
        struct end e[2];
};

static int ep;
static bool use_splice;
static int pipes[PIPES_KEPT][2];
static int n_pipes;
static struct pair *graveyard; /* pairs closed during this batch */

static int parse(const char *text, struct sockaddr_in *ret)
{
        char host[64];
        const char *colon = strrchr(text, ':');

        if (colon == NULL || (size_t)(colon - text) >= sizeof(host))
                return -1;
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
        memset(ret, 0, sizeof(*ret));
        ret->sin_family = AF_INET;
        ret->sin_port = htons((uint16_t)atoi(colon + 1));
        return inet_pton(AF_INET, host, &ret->sin_addr) == 1 ? 0 : -1;
}

static int pipe_get(int ret[2])
{
        if (n_pipes > 0) {
                n_pipes--;
                ret[0] = pipes[n_pipes][0];
                ret[1] = pipes[n_pipes][1];
                return 0;
        }
        return pipe2(ret, O_NONBLOCK | O_CLOEXEC);
}

/* A pipe goes back to the free list only empty. */
static void pipe_put(int p[2], size_t len)
{
        if (p[0] == -1)
                return;
        if (len == 0 && n_pipes < PIPES_KEPT) {
                pipes[n_pipes][0] = p[0];
                pipes[n_pipes][1] = p[1];
                n_pipes++;
        } else {
                close(p[0]);
                close(p[1]);
        }
        p[0] = p[1] = -1;
}

/* Closes <p>; its memory goes after the batch, which may still hold an
 * event for its other side. */
static void pair_free(struct pair *p)
{
        for (int i = 0; i < 2; i++) {
                if (p->fd[i] != -1)
                        close(p->fd[i]); /* also leaves the epoll set */
                free(p->d[i].buf);
                p->d[i].buf = NULL;
                pipe_put(p->d[i].pipe, p->d[i].len);
        }
        p->dead = true;
        p->next_dead = graveyard;
        graveyard = p;
}

/* Asks epoll for what side <i> can do now: read when its direction's
 * buffer is empty, write when the other direction has bytes for it. */
static int pair_arm(struct pair *p, int i)
{
        struct dir *out = &p->d[i], *in = &p->d[1 - i];
        unsigned want = 0;
        struct epoll_event ev;

        if (out->len == 0 && !out->eof && !(i == 1 && p->connecting))
                want |= EPOLLIN;
        if (in->len > 0 || (i == 1 && p->connecting))
                want |= EPOLLOUT;
        if (want == p->e[i].events)
                return 0;
        ev.events = want;
        ev.data.ptr = &p->e[i];
        p->e[i].events = want;
        return epoll_ctl(ep, EPOLL_CTL_MOD, p->fd[i], &ev);
}

/* Moves what it can in direction <d>: reads if empty, writes if not. */
static int dir_move(struct dir *d, bool can_read, bool can_write)
{
        ssize_t n;

        if (can_read && d->len == 0 && !d->eof) {
                if (use_splice)
                        n = splice(d->from, NULL, d->pipe[1], NULL, BUF_SIZE, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                else
                        n = read(d->from, d->buf, BUF_SIZE);
                if (n == -1 && errno != EAGAIN && errno != EINTR)
                        return -1;
                if (n == 0)
                        d->eof = true;
                if (n > 0) {
                        d->off = 0;
                        d->len = (size_t)n;
                        can_write = true; /* try at once: it is usually writable */
                }
        }
        if (can_write && d->len > 0) {
                if (use_splice)
                        n = splice(d->pipe[0], NULL, d->to, NULL, d->len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                else
                        n = write(d->to, d->buf + d->off, d->len);
                if (n == -1 && errno != EAGAIN && errno != EINTR)
                        return -1;
                if (n > 0) {
                        d->off += (size_t)n;
                        d->len -= (size_t)n;
                }
        }
        if (d->eof && d->len == 0 && !d->shut) {
                shutdown(d->to, SHUT_WR);
                d->shut = true;
        }
        return 0;
}

static void on_event(struct end *e, unsigned events)
{
        struct pair *p = e->p;
        int i = e->side;

        if (p->dead)
                return;
        if (i == 1 && p->connecting) {
                int err = 0;
                socklen_t len = sizeof(err);

                if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
                        return;
                if (getsockopt(p->fd[1], SOL_SOCKET, SO_ERROR, &err, &len) == -1 || err != 0) {
                        pair_free(p);
                        return;
                }
                p->connecting = false;
                events |= EPOLLOUT;
        }
        /* d[i] reads from side i; d[1 - i] writes to it. */
        if (dir_move(&p->d[i], events & (EPOLLIN | EPOLLHUP | EPOLLERR), false) < 0 ||
            dir_move(&p->d[1 - i], false, events & EPOLLOUT) < 0 ||
            (p->d[0].shut && p->d[1].shut)) {
                pair_free(p);
                return;
        }
        if (pair_arm(p, 0) == -1 || pair_arm(p, 1) == -1)
                pair_free(p);
}

static void on_accept(int lfd, const struct sockaddr_in *up)
{
        for (;;) {
                int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), u, one = 1;
                struct pair *p;
                struct epoll_event ev;

                if (c == -1)
                        return;
                u = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                p = calloc(1, sizeof(*p));
                if (u == -1 || p == NULL) {
                        close(c);
                        if (u != -1)
                                close(u);
                        free(p);
                        continue;
                }
                /* Both sides of an SMTP dialogue are short writes that wait
                 * for an answer: Nagle would hold them (as in the proxy). */
                setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                p->fd[0] = c;
                p->fd[1] = u;
                p->connecting = true;
                p->d[0].pipe[0] = p->d[0].pipe[1] = p->d[1].pipe[0] = p->d[1].pipe[1] = -1;
                for (int i = 0; i < 2; i++) {
                        p->d[i].from = p->fd[i];
                        p->d[i].to = p->fd[1 - i];
                        p->e[i].p = p;
                        p->e[i].side = i;
                        if (use_splice ? pipe_get(p->d[i].pipe) == -1 : (p->d[i].buf = malloc(BUF_SIZE)) == NULL) {
                                pair_free(p);
                                p = NULL;
                                break;
                        }
                }
                if (p == NULL)
                        continue;
                if (connect(u, (const struct sockaddr *)up, sizeof(*up)) == -1 && errno != EINPROGRESS) {
                        pair_free(p);
                        continue;
                }
                p->e[0].events = EPOLLIN;
                ev.events = EPOLLIN;
                ev.data.ptr = &p->e[0];
                if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) == -1) {
                        pair_free(p);
                        continue;
                }
                p->e[1].events = EPOLLOUT;
                ev.events = EPOLLOUT;
                ev.data.ptr = &p->e[1];
                if (epoll_ctl(ep, EPOLL_CTL_ADD, u, &ev) == -1)
                        pair_free(p);
        }
}

int main(int argc, char **argv)
{
        struct sockaddr_in here, up;
        struct epoll_event ev, evs[256];
        int lfd, one = 1, listen_tag = 0;

        if (argc > 1 && strcmp(argv[1], "--splice") == 0) {
                use_splice = true;
                argv++;
                argc--;
        }
        if (argc != 3 || parse(argv[1], &here) < 0 || parse(argv[2], &up) < 0) {
                fprintf(stderr, "usage: relay_floor [--splice] LISTEN_ADDR:PORT UPSTREAM_ADDR:PORT (IPv4)\n");
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (lfd == -1 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
            bind(lfd, (struct sockaddr *)&here, sizeof(here)) == -1 || listen(lfd, 4096) == -1) {
                perror("relay_floor: listen");
                return 1;
        }
        ep = epoll_create1(EPOLL_CLOEXEC);
        ev.events = EPOLLIN;
        ev.data.ptr = &listen_tag;
        if (ep == -1 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) == -1) {
                perror("relay_floor: epoll");
                return 1;
        }
        fprintf(stderr, "relay_floor: %s, listening on %s\n", use_splice ? "splice" : "read/write", argv[1]);
        for (;;) {
                int n = epoll_wait(ep, evs, 256, -1);

                if (n == -1 && errno != EINTR) {
                        perror("relay_floor: epoll_wait");
                        return 1;
                }
                for (int k = 0; k < n; k++) {
                        if (evs[k].data.ptr == &listen_tag)
                                on_accept(lfd, &up);
                        else
                                on_event(evs[k].data.ptr, evs[k].events);
                }
                while (graveyard != NULL) {
                        struct pair *p = graveyard;

                        graveyard = p->next_dead;
                        free(p);
                }
        }
}
