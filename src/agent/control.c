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
 * gets CONTROL_DEADLINE_MS to send its line; it cannot hold the agent. */
#include <errno.h>
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

/* Reads one line within the deadline.  -ETIMEDOUT, -EMSGSIZE, -EPROTO. */
static int read_line(int fd, char *buf, size_t size)
{
        long deadline = pc_mono_ms() + CONTROL_DEADLINE_MS;
        size_t n = 0;

        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                long left = deadline - pc_mono_ms();
                ssize_t got;

                if (left <= 0)
                        return -ETIMEDOUT;
                if (poll(&p, 1, (int)left) <= 0)
                        continue;
                got = read(fd, buf + n, size - 1 - n);
                if (got == 0)
                        return -EPROTO;
                if (got == -1) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return -errno;
                }
                n += (size_t)got;
                buf[n] = '\0';
                char *nl = memchr(buf, '\n', n);

                if (nl != NULL) {
                        *nl = '\0';
                        /* A NUL inside would cut the request short unseen. */
                        return memchr(buf, '\0', (size_t)(nl - buf)) != NULL ? -EBADMSG : 0;
                }
                if (n == size - 1)
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
        else if (strcmp(line, "reload") == 0 && arg == NULL)
                r = agent_reload(a, reply);
        else if (strcmp(line, "mail") == 0 && (arg == NULL || pc_name_valid(arg))) {
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

void control_serve(struct agent *a, int listen_fd)
{
        char line[CONTROL_LINE_MAX];
        json_t *reply;
        int fd, r, uid = -1;

        fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd == -1)
                return;
        reply = json_object();
        if (!pc_unix_peer_trusted(fd, &uid)) {
                agent_log("Refused a control client with uid %d: only root may change the policy", uid);
                json_object_set_new(reply, "ok", json_false());
                json_object_set_new(reply, "error", json_string("permission denied"));
        } else if ((r = read_line(fd, line, sizeof(line))) < 0) {
                json_object_set_new(reply, "ok", json_false());
                json_object_set_new(reply, "error",
                                    json_string(r == -ETIMEDOUT   ? "no request line within 1 s"
                                                : r == -EMSGSIZE ? "request line too long"
                                                : r == -EBADMSG  ? "request line holds a NUL byte"
                                                                 : "connection closed before a request line"));
        } else if (dispatch(a, fd, line, reply) == 1) {
                json_decref(reply);
                return; /* answered once applied (synced_reply) */
        }
        reply_send(fd, reply);
        json_decref(reply);
        close(fd);
}
