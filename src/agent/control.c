/* The control socket: `portcullis` tells the agent what changed.
 *
 * A Unix stream socket (mode 0660).  A client sends one request line of at
 * most CONTROL_LINE_MAX bytes, "VERB [ARG]\n", and gets one line of JSON
 * back: {"ok": true, ...} or {"ok": false, "error": "..."}.  Verbs:
 *   sync ID     re-read VPS ID from the store and apply it to the kernel
 *   status      the agent's health
 *   reconcile   compare the kernel with the model and repair drift
 *   reload      re-read the configuration (as SIGHUP)
 *   mail [ID]   the SMTP proxy's per-VPS mail figures, as last read
 * Only root or the agent's own user may talk to it (SO_PEERCRED).  A client
 * gets CONTROL_DEADLINE_MS to send its line, waited for on the loop, not
 * by it: a client that sends nothing holds neither the agent nor others. */
#include <errno.h>
#include <event2/event.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "base/unixsock.h"

#define CONTROL_LINE_MAX 256
#define CONTROL_DEADLINE_MS 1000
#define CONTROL_CLIENTS_MAX 64 /* waiting for their line at once */

/* A client whose request line has not all arrived: it waits on the loop
 * for its bytes, as many at once as CONTROL_CLIENTS_MAX, and never holds
 * the loop (a read is never waited for). */
struct control_client {
        struct agent *a;
        int fd;
        struct event *ev;
        long deadline; /* pc_mono_ms() */
        size_t n;
        char line[CONTROL_LINE_MAX];
        struct control_client *next;
};

/* Reads what <c> sent so far: 0 a whole line (NUL-terminated in c->line),
 * -EAGAIN not yet, -EMSGSIZE, -EPROTO, -EBADMSG. */
static int read_line(struct control_client *c)
{
        for (;;) {
                ssize_t got = read(c->fd, c->line + c->n, sizeof(c->line) - 1 - c->n);

                if (got == 0)
                        return -EPROTO;
                if (got == -1) {
                        if (errno == EINTR)
                                continue;
                        return errno == EAGAIN ? -EAGAIN : -errno;
                }
                c->n += (size_t)got;
                c->line[c->n] = '\0';
                char *nl = memchr(c->line, '\n', c->n);

                if (nl != NULL) {
                        *nl = '\0';
                        /* A NUL inside would cut the request short unseen. */
                        return memchr(c->line, '\0', (size_t)(nl - c->line)) != NULL ? -EBADMSG : 0;
                }
                if (c->n == sizeof(c->line) - 1)
                        return -EMSGSIZE;
        }
}

static void reply_send(int fd, json_t *reply)
{
        char *text = json_dumps(reply, JSON_COMPACT);
        long deadline = pc_mono_ms() + CONTROL_DEADLINE_MS;
        size_t len, off = 0;

        if (text == NULL)
                return;
        len = strlen(text);
        text[len] = '\0';
        while (off < len && pc_mono_ms() < deadline) {
                struct pollfd p = { .fd = fd, .events = POLLOUT };
                ssize_t w;

                if (poll(&p, 1, 100) <= 0)
                        continue;
                w = send(fd, text + off, len - off, MSG_NOSIGNAL);
                if (w == -1 && errno != EAGAIN && errno != EINTR)
                        break;
                if (w > 0)
                        off += (size_t)w;
        }
        if (off == len)
                send(fd, "\n", 1, MSG_NOSIGNAL);
        free(text);
}

/* A `sync ID` is answered once the database thread read the VPS and the
 * loop applied it: the client waits, the loop does not. */
static void synced_reply(struct agent *a, void *arg, json_t *reply, bool pending)
{
        int fd = (int)(intptr_t)arg;

        (void)a, (void)pending;
        json_object_set_new(reply, "ok", json_boolean(json_object_get(reply, "error") == NULL));
        reply_send(fd, reply);
        close(fd);
}

/* Runs request <line> of client <fd>; fills <reply>.  1 if the reply is
 * sent later, by then the fd's owner. */
static int dispatch(struct agent *a, int fd, char *line, json_t *reply)
{
        char *arg = strchr(line, ' ');
        int r;

        if (arg != NULL)
                *arg++ = '\0';
        if (strcmp(line, "sync") == 0 && arg != NULL && pc_name_valid(arg)) {
                char id[1][PC_NAME_MAX];

                snprintf(id[0], sizeof(id[0]), "%s", arg);
                r = agent_sync_vpses(a, (const char (*)[PC_NAME_MAX])id, 1, false, synced_reply, (void *)(intptr_t)fd);
                if (r == 0)
                        return 1;
                json_object_set_new(reply, "error", json_string(r == -ENOBUFS ? "the database thread is full: try again"
                                                                              : strerror(-r)));
        } else if (strcmp(line, "status") == 0 && arg == NULL) {
                agent_status(a, reply);
                r = 0;
        } else if (strcmp(line, "reconcile") == 0 && arg == NULL)
                r = agent_reconcile(a, reply);
        else if (strcmp(line, "reload") == 0 && arg == NULL) {
                agent_reload(a, synced_reply, (void *)(intptr_t)fd);
                return 1;
        } else if (strcmp(line, "mail") == 0 && (arg == NULL || pc_name_valid(arg))) {
                agent_mail_stats(a, arg, reply);
                r = 0;
        } else {
                json_object_set_new(reply, "error",
                                    json_string("unknown request (sync ID, status, reconcile, reload, mail [ID])"));
                r = -EINVAL;
        }
        json_object_set_new(reply, "ok", json_boolean(r >= 0));
        return 0;
}

static void client_free(struct control_client *c)
{
        for (struct control_client **p = &c->a->control_clients; *p != NULL; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
        c->a->n_control_clients--;
        event_free(c->ev);
        free(c);
}

static void answer(struct agent *a, int fd, json_t *reply)
{
        reply_send(fd, reply);
        json_decref(reply);
        close(fd);
}

static void on_client(evutil_socket_t fd, short what, void *arg)
{
        struct control_client *c = arg;
        struct agent *a = c->a;
        json_t *reply;
        long left;
        int r;

        r = (what & EV_READ) ? read_line(c) : -EAGAIN;
        left = c->deadline - pc_mono_ms();
        if (r == -EAGAIN && left > 0) {
                event_add(c->ev, &(struct timeval){ .tv_sec = left / 1000, .tv_usec = left % 1000 * 1000 });
                return;
        }
        reply = json_object();
        if (r < 0) {
                json_object_set_new(reply, "ok", json_false());
                json_object_set_new(reply, "error",
                                    json_string(r == -EAGAIN     ? "no request line within 1 s"
                                                : r == -EMSGSIZE ? "request line too long"
                                                : r == -EBADMSG  ? "request line holds a NUL byte"
                                                                 : "connection closed before a request line"));
        } else if (dispatch(a, fd, c->line, reply) == 1) {
                json_decref(reply);
                client_free(c); /* answered once applied (synced_reply) */
                return;
        }
        client_free(c);
        answer(a, fd, reply);
}

void control_serve(struct agent *a, int listen_fd)
{
        struct control_client *c;
        json_t *reply;
        int fd, uid = -1;

        fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd == -1)
                return;
        reply = json_object();
        if (!pc_unix_peer_trusted(fd, &uid)) {
                agent_log("Refused a control client with uid %d: only root may change the policy", uid);
                json_object_set_new(reply, "ok", json_false());
                json_object_set_new(reply, "error", json_string("permission denied"));
                answer(a, fd, reply);
                return;
        }
        if (a->n_control_clients >= CONTROL_CLIENTS_MAX || (c = calloc(1, sizeof(*c))) == NULL) {
                json_object_set_new(reply, "ok", json_false());
                json_object_set_new(reply, "error", json_string("too many control clients at once: try again"));
                answer(a, fd, reply);
                return;
        }
        json_decref(reply);
        *c = (struct control_client){ .a = a, .fd = fd, .deadline = pc_mono_ms() + CONTROL_DEADLINE_MS };
        c->ev = event_new(a->base, fd, EV_READ, on_client, c);
        if (c->ev == NULL) {
                free(c);
                close(fd);
                return;
        }
        c->next = a->control_clients;
        a->control_clients = c;
        a->n_control_clients++;
        /* (most clients' line is there already: read it now) */
        on_client(fd, EV_READ, c);
}

void control_close(struct agent *a)
{
        while (a->control_clients != NULL) {
                int fd = a->control_clients->fd;

                client_free(a->control_clients);
                close(fd);
        }
}
