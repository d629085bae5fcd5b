/* portcullis-smtpd's control socket.
 *
 * Same protocol as the agent's (docs/CONTROL.md): one request line
 * "VERB [ARG]\n", one line of JSON back, then the connection closes.
 *   stats      every VPS's mail figures (the agent's spam detector reads them)
 *   status     the proxy's health: sessions, listeners, VPSes known
 *   sync ID    re-read VPS ID from the store (a filter, suspension, new address)
 *   reload     re-read the configuration and every VPS
 * Only root or the proxy's own user may connect (SO_PEERCRED); a client
 * has one second to send its line and cannot stall the proxy. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/unixsock.h"
#include "base/util.h"
#include "smtpd/account.h"
#include "smtpd/smtpd.h"

#define CONTROL_LINE_MAX 256

struct control_client {
        struct smtpd *d;
        struct bufferevent *bev;
        bool replied;
};

static void client_free(struct control_client *c)
{
        bufferevent_free(c->bev);
        free(c);
}

static void dispatch(struct smtpd *d, char *line, json_t *reply)
{
        char err[512];
        char *arg = strchr(line, ' ');
        int r;

        if (arg != NULL)
                *arg++ = '\0';
        if (strcmp(line, "stats") == 0) {
                json_object_set_new(reply, "vps", account_json(d->account, pc_now() * 1000));
        } else if (strcmp(line, "status") == 0) {
                json_object_set_new(reply, "sessions", json_integer(d->sessions));
                json_object_set_new(reply, "sessions_total", json_integer((json_int_t)d->sessions_total));
                json_object_set_new(reply, "refused_total", json_integer((json_int_t)d->refused_total));
                json_object_set_new(reply, "max_sessions", json_integer(d->cfg->smtpd.max_sessions));
                json_object_set_new(reply, "vpses", json_integer((json_int_t)pc_model_count(d->model)));
                json_object_set_new(reply, "listeners", json_integer((json_int_t)d->n_listeners));
                json_object_set_new(reply, "uptime", json_integer(pc_now() - d->started));
        } else if (strcmp(line, "sync") == 0 && arg != NULL && pc_name_valid(arg)) {
                r = smtpd_sync_vps(d, arg, err, sizeof(err));
                if (r < 0) {
                        json_object_set_new(reply, "ok", json_false());
                        json_object_set_new(reply, "error", json_string(err));
                        smtpd_log("sync %s failed: %s", arg, err);
                        return;
                }
                {
                        unsigned ended = proxy_end_refused(d, arg);

                        if (ended > 0)
                                smtpd_log("synced %s: ended %u open session(s) its policy no longer allows", arg,
                                          ended);
                        else
                                smtpd_log("synced %s", arg);
                }
        } else if (strcmp(line, "reload") == 0) {
                r = smtpd_load(d, err, sizeof(err));
                if (r == 0)
                        r = proxy_tls_init(d, err, sizeof(err));
                if (r < 0) {
                        json_object_set_new(reply, "ok", json_false());
                        json_object_set_new(reply, "error", json_string(err));
                        smtpd_log("reload failed, keeping the previous configuration: %s", err);
                        return;
                }
                smtpd_log("reloaded: %zu VPSes", pc_model_count(d->model));
        } else {
                json_object_set_new(reply, "ok", json_false());
                json_object_set_new(reply, "error",
                                    json_string("unknown request (expected stats, status, sync ID or reload)"));
                return;
        }
        json_object_set_new(reply, "ok", json_true());
}

static void send_reply(struct control_client *c, json_t *reply)
{
        char *text = json_dumps(reply, JSON_COMPACT);

        if (text != NULL) {
                bufferevent_write(c->bev, text, strlen(text));
                bufferevent_write(c->bev, "\n", 1);
                free(text);
        }
        c->replied = true;
        bufferevent_disable(c->bev, EV_READ);
}

static void error_reply(struct control_client *c, const char *why)
{
        json_t *reply = json_pack("{s:b, s:s}", "ok", 0, "error", why);

        send_reply(c, reply);
        json_decref(reply);
}

static void client_read(struct bufferevent *bev, void *ctx)
{
        struct control_client *c = ctx;
        struct evbuffer *in = bufferevent_get_input(bev);
        size_t len;
        char *line;
        json_t *reply;

        if (c->replied)
                return;
        line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
        if (line == NULL) {
                if (evbuffer_get_length(in) >= CONTROL_LINE_MAX)
                        error_reply(c, "request line too long");
                return;
        }
        reply = json_object();
        if (len >= CONTROL_LINE_MAX)
                json_object_set_new(reply, "error", json_string("request line too long"));
        else
                dispatch(c->d, line, reply);
        if (json_object_get(reply, "ok") == NULL)
                json_object_set_new(reply, "ok", json_false());
        send_reply(c, reply);
        json_decref(reply);
        free(line);
}

static void client_written(struct bufferevent *bev, void *ctx)
{
        struct control_client *c = ctx;

        if (c->replied)
                client_free(c);
}

static void client_event(struct bufferevent *bev, short what, void *ctx)
{
        struct control_client *c = ctx;

        if ((what & BEV_EVENT_TIMEOUT) && !c->replied) {
                error_reply(c, "no request line within 1 s");
                return;
        }
        client_free(c);
}

static void accept_control(evutil_socket_t lfd, short what, void *ctx)
{
        struct smtpd *d = ctx;
        struct control_client *c;
        struct timeval tv = { .tv_sec = 1 };
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        int uid = -1;

        if (fd == -1)
                return;
        if (!pc_unix_peer_trusted(fd, &uid)) {
                smtpd_log("refused a control client with uid %d", uid);
                send(fd, "{\"ok\":false,\"error\":\"permission denied\"}\n", 41, MSG_DONTWAIT | MSG_NOSIGNAL);
                close(fd);
                return;
        }
        c = calloc(1, sizeof(*c));
        if (c == NULL || (c->bev = bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
                free(c);
                close(fd);
                return;
        }
        c->d = d;
        bufferevent_setcb(c->bev, client_read, client_written, client_event, c);
        bufferevent_set_timeouts(c->bev, &tv, &tv);
        bufferevent_enable(c->bev, EV_READ);
}

int smtpd_control_start(struct smtpd *d, char *err, size_t errsz)
{
        int r = pc_unix_listen(d->cfg->smtpd.control_socket, &d->control_fd);

        if (r < 0) {
                snprintf(err, errsz, "cannot listen on %s: %s", d->cfg->smtpd.control_socket, strerror(-r));
                return r;
        }
        d->control_ev = event_new(d->base, d->control_fd, EV_READ | EV_PERSIST, accept_control, d);
        if (d->control_ev == NULL || event_add(d->control_ev, NULL) < 0) {
                snprintf(err, errsz, "cannot watch the control socket");
                return -ENOMEM;
        }
        return 0;
}

void smtpd_control_stop(struct smtpd *d)
{
        if (d->control_ev != NULL)
                event_free(d->control_ev);
        if (d->control_fd > 0) {
                close(d->control_fd);
                unlink(d->cfg->smtpd.control_socket);
        }
}
