/* Listeners and sessions: a VPS's redirected connection spliced onto a
 * connection to the MX it was going to, through the SMTP relay.
 *
 * One libevent loop, two conns per session (conn.c: a socket, or TLS over
 * it, with the proxy's own buffers), no thread or process per connection.
 * Each side's input is bounded (CONN_INPUT_MAX); a slow upstream stops the
 * client being read, and a client that does not read stops the upstream
 * being read (CLIENT_BACKLOG), so a session's memory is bounded whatever
 * either peer sends.  A client that reads nothing for
 * `client-write` is cut off, and no session outlives `lifetime`.
 *
 * Before connecting anywhere, the original destination is checked against
 * this host's own addresses, internal prefixes and the addresses no MX has
 * (dest.c): a VPS cannot use the proxy to reach the hypervisor.  Text from
 * outside is escaped (src/base/escape.c) before it reaches a reply or a log line,
 * and connection and refusal lines are held to a rate per VPS (lograte.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "smtp/relay.h"
#include "smtpd/account.h"
#include "smtpd/conn.h"
#include "policy/addr_index.h"
#include "smtpd/dest.h"
#include "base/escape.h"
#include "smtpd/lograte.h"
#include "smtpd/smtpd.h"

#define UPSTREAM_BACKLOG (256 * 1024) /* unsent to the MX before the client waits */
#define CLIENT_BACKLOG (64 * 1024)    /* unsent to the client before the MX waits */

struct session {
        struct smtpd *d;
        uint64_t id;
        struct conn client, upstream;
        struct smtp_relay relay;
        struct account_vps *acct;
        /* A copy: a reload frees the configuration the session began with. */
        struct pc_smtp_proxy_limits limits;
        char vps_id[PC_NAME_MAX];
        char src[INET6_ADDRSTRLEN];
        char mx[INET6_ADDRSTRLEN + 8];
        struct event *timer;
        struct event *life;     /* the session's lifetime */
        struct event *up_timer; /* connect-timeout, then upstream-timeout */
        struct event *wr_timer; /* client-write (made when first needed) */
        int64_t started_ms, txn_started_ms;
        unsigned messages;
        bool connected;  /* to the upstream */
        bool upstream_dead; /* it closed or failed: no more I/O on it */
        bool ending;     /* flushing the client's last bytes */
        bool client_eof; /* the client half-closed; replies still owed */
        bool tls_wanted; /* the relay asked for TLS on the upstream leg */
        bool tls_on;
        bool relay_live; /* <relay> was initialised */
        bool upstream_paused; /* the client's output is over CLIENT_BACKLOG */
        bool upstream_stopped; /* nothing more may go upstream (proxy_end_refused) */
        bool logged;     /* its connect line was logged (lograte): so is its close */
        unsigned reserved; /* its transactions' share of acct->messages_pending */
        struct session *prev, *next; /* d->first: every open session */
};

static void session_free(struct session *s, const char *why);
static void after_io(struct session *s);

static int64_t wall_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const struct pc_smtp_proxy_limits *limits(const struct session *s)
{
        return &s->limits;
}

/* Writes <text> as a log value: bare if safe, else quoted and escaped. */
static void log_value(char *buf, size_t size, const char *text)
{
        pc_escape(buf, size, text, PC_ESCAPE_LOG);
}

static void format_addr(const struct sockaddr *sa, char *buf, size_t size, bool with_port)
{
        char host[INET6_ADDRSTRLEN] = "?";
        unsigned port = 0;

        if (sa->sa_family == AF_INET) {
                inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host, sizeof(host));
                port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
        } else if (sa->sa_family == AF_INET6) {
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof(host));
                port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
        }
        if (!with_port)
                snprintf(buf, size, "%s", host);
        else if (sa->sa_family == AF_INET6)
                snprintf(buf, size, "[%s]:%u", host, port);
        else
                snprintf(buf, size, "%s:%u", host, port);
}

/* ---- the relay's callbacks ---- */

/* Output waits in the conn until after_io() writes it: one write for all
 * that one input produced. */
static void to_client(void *ctx, const char *buf, size_t len)
{
        struct session *s = ctx;

        conn_append(&s->client, buf, len);
}

static void to_upstream(void *ctx, const char *buf, size_t len)
{
        struct session *s = ctx;

        if (!s->upstream_stopped && !s->upstream_dead)
                conn_append(&s->upstream, buf, len);
}

/* The 421 that refuses VPS <id>'s mail into <line>, or false if its policy
 * allows it (<vps> NULL: no longer a VPS of this hypervisor).  The reason
 * comes from the database: escaped, it cannot add a line. */
static bool mail_refused(const struct pc_vps *vps, const char *id, char *line, size_t size)
{
        char why[300], safe[400];

        if (vps != NULL && smtpd_vps_allowed(vps, why, sizeof(why)))
                return false;
        pc_escape(safe, sizeof(safe), vps == NULL ? "it is no longer a VPS of this hypervisor" : why,
                     PC_ESCAPE_REPLY);
        snprintf(line, size, "421 4.7.0 Mail from %s is refused: %s", id, safe);
        return true;
}

/* The per-VPS limits and the policy, before MAIL and each RCPT. */
static enum smtp_check check(void *ctx, enum smtp_stage stage, const struct smtp_txn *txn,
                             const char *domain, char *reply, size_t size)
{
        struct session *s = ctx;
        const struct pc_smtp_proxy_limits *l = limits(s);
        struct pc_vps *vps = pc_model_find(s->d->model, s->vps_id);
        int64_t now = wall_ms(), win = l->window * 1000;
        char span[32];

        /* A filter or suspension placed during the session ends it. */
        if (mail_refused(vps, s->vps_id, reply, size))
                return SMTP_CHECK_CLOSE;
        s->acct->window_ms = win;
        if (stage == SMTP_STAGE_DATA || stage == SMTP_STAGE_BDAT)
                return SMTP_CHECK_PASS; /* the policy is all they are asked */
        if (stage == SMTP_STAGE_MAIL) {
                if (!account_may_mail(s->acct, l, now)) {
                        s->acct->limited++;
                        pc_format_duration(l->window, span, sizeof(span));
                        snprintf(reply, size, "451 4.7.1 Too many messages from %s: the limit is %u per %s; "
                                 "try again later", s->vps_id, l->messages_per_hour, span);
                        return SMTP_CHECK_REFUSE;
                }
                s->reserved++; /* each MAIL that passes ends in one message() */
                s->acct->messages_pending++;
                s->txn_started_ms = pc_mono_ms();
                return SMTP_CHECK_PASS;
        }
        if (!account_may_rcpt(txn->rcpt_sent, l)) {
                s->acct->limited++;
                snprintf(reply, size, "452 4.5.3 Too many recipients for one message: the limit is %u",
                         l->recipients_per_message);
                return SMTP_CHECK_REFUSE;
        }
        if (!account_may_recipient(s->acct, l, now)) {
                s->acct->limited++;
                pc_format_duration(l->window, span, sizeof(span));
                snprintf(reply, size, "451 4.7.1 Too many recipients from %s: the limit is %u per %s; "
                         "try again later", s->vps_id, l->recipients_per_hour, span);
                return SMTP_CHECK_REFUSE;
        }
        window_add(&s->acct->win_recipients, 1, win, now);
        return SMTP_CHECK_PASS;
}

static void count_reply(struct session *s, enum account_stage stage, int code)
{
        if (code / 100 == 4)
                s->acct->upstream_4xx[stage]++;
        else if (code / 100 == 5)
                s->acct->upstream_5xx[stage]++;
}

static void recipient(void *ctx, uint32_t domain_hash, int code)
{
        struct session *s = ctx;

        if (code / 100 == 2) {
                s->acct->recipients++;
                account_domain(s->acct, domain_hash, wall_ms());
        } else {
                s->acct->recipients_refused++;
                count_reply(s, ACCOUNT_RCPT, code);
        }
}

/* One line per transaction, key=value, for people and for log tools. */
static void message(void *ctx, const struct smtp_txn *t)
{
        struct session *s = ctx;
        char helo[160], from[300], reply[220];
        /* A message whose end went upstream counts unless the MX was heard
         * refusing it: a client that stops reading (or hangs up) before the
         * final reply cannot send uncounted mail. */
        bool ok = t->final_reply / 100 == 2 || (t->final_reply == 0 && t->data_done);

        if (s->reserved > 0) {
                s->reserved--;
                s->acct->messages_pending--;
        }
        count_reply(s, ACCOUNT_MAIL, t->mail_reply);
        count_reply(s, ACCOUNT_DATA, t->final_reply != 0 ? t->final_reply : t->data_reply);
        s->acct->bytes += t->size;
        s->acct->last_ms = wall_ms();
        if (ok) {
                s->acct->messages++;
                s->messages++;
                window_add(&s->acct->win_messages, 1, s->acct->window_ms, wall_ms());
        } else {
                s->acct->messages_failed++;
        }
        log_value(helo, sizeof(helo), t->helo);
        log_value(from, sizeof(from), t->mail_from[0] != '\0' ? t->mail_from : "<>");
        log_value(reply, sizeof(reply), t->final_text[0] != '\0' ? t->final_text : "-");
        smtpd_log("message session=%llu vps=%s src=%s mx=%s helo=%s from=%s rcpts=%u accepted=%u refused=%u "
                  "limited=%u size=%llu mail=%d data=%d result=%s final=%d reply=%s tls=%s duration_ms=%lld",
                  (unsigned long long)s->id, s->vps_id, s->src, s->mx, helo, from, t->rcpt_sent,
                  t->rcpt_accepted, t->rcpt_refused, t->rcpt_local, (unsigned long long)t->size,
                  t->mail_reply, t->data_reply,
                  t->final_reply / 100 == 2 ? "sent"
                  : ok                      ? "unconfirmed"
                  : t->final_reply != 0     ? "refused"
                                            : "abandoned",
                  t->final_reply, reply,
                  s->tls_on ? "yes" : "no", (long long)(s->txn_started_ms != 0 ? pc_mono_ms() - s->txn_started_ms : 0));
}

/* The handshake starts after the current read returns (see upstream_read):
 * the upstream's input must be drained of the 220 first. */
static void start_tls(void *ctx)
{
        struct session *s = ctx;

        s->tls_wanted = true;
}

static const struct smtp_relay_ops relay_ops = {
        .to_client = to_client,
        .to_upstream = to_upstream,
        .check = check,
        .recipient = recipient,
        .message = message,
};

static const struct smtp_relay_ops relay_ops_tls = {
        .to_client = to_client,
        .to_upstream = to_upstream,
        .check = check,
        .recipient = recipient,
        .message = message,
        .start_tls = start_tls,
};

/* ---- I/O ---- */

static void arm_timer(struct session *s)
{
        const struct pc_smtp_proxy_limits *l = limits(s);
        struct timeval tv = {
                .tv_sec = smtp_relay_in_data(&s->relay) ? l->data_timeout : l->command_timeout,
        };

        evtimer_add(s->timer, &tv);
}

/* Offers the client's input to the relay: <buf> and <len> are what
 * conn_read() gave, or the input kept from before.  What the relay leaves
 * (an incomplete line, bytes held for a reply) is kept for the next offer. */
static void offer_client(struct session *s, const char *buf, size_t len)
{
        size_t used;

        if (len == 0)
                return;
        /* A session that is closing reads nothing more. */
        used = smtp_relay_closing(&s->relay) ? len : smtp_relay_client(&s->relay, buf, len);
        if (conn_keep(&s->client, buf, len, used) < 0)
                smtp_relay_abort(&s->relay, "421 4.3.0 Out of memory");
        /* The command timer restarts only on whole lines (or data): a
         * client trickling bytes of one line cannot hold the session. */
        if (used > 0 && !smtp_relay_closing(&s->relay))
                arm_timer(s);
}

static void pump_client(struct session *s)
{
        offer_client(s, s->client.in, s->client.in_len);
}

static void offer_upstream(struct session *s, const char *buf, size_t len)
{
        size_t used;

        if (len == 0)
                return;
        used = smtp_relay_upstream(&s->relay, buf, len);
        if (conn_keep(&s->upstream, buf, len, used) < 0)
                smtp_relay_upstream_gone(&s->relay, "sent more than this proxy could hold (out of memory)");
}

static void pump_upstream(struct session *s)
{
        offer_upstream(s, s->upstream.in, s->upstream.in_len);
}

/* The upstream closed or failed (<why>): no more I/O on it. */
static void upstream_lost(struct session *s, const char *why)
{
        s->upstream_dead = true;
        conn_discard(&s->upstream);
        conn_stop(&s->upstream);
        evtimer_del(s->up_timer);
        smtp_relay_upstream_gone(&s->relay, why);
}

/* Between the relay's 220 to STARTTLS and the end of the handshake. */
static bool handshaking(const struct session *s)
{
        return s->upstream.ssl != NULL && !s->tls_on;
}

/* Whether the upstream is read now: not while the client has too much
 * waiting for it, nor during the handshake, nor with its input full. */
static bool upstream_may_read(const struct session *s)
{
        return s->connected && !s->upstream_dead && !s->upstream_paused && !handshaking(s) &&
               s->upstream.in_len < CONN_INPUT_MAX;
}

static void client_write_timeout(evutil_socket_t fd, short what, void *ctx);

/* Writes what waits on both sides, then closes, or sets what each side
 * may do next.  Always the last thing a callback does with <s>: it may
 * free it. */
static void after_io(struct session *s)
{
        const struct pc_smtp_proxy_limits *l = limits(s);
        size_t client_out;
        ssize_t n;
        /* No message bytes while TLS is being set up: nothing is sent in
         * plain text once the server has said 220 to STARTTLS. */
        bool up_write = s->connected && !s->upstream_dead && !s->upstream_stopped && (!s->tls_wanted || s->tls_on);

        /* The upstream first: its failure gives the client a reply. */
        if (up_write && conn_pending(&s->upstream) > 0) {
                n = conn_flush(&s->upstream);
                if (n < 0)
                        upstream_lost(s, "reset the connection");
        }
        if (s->upstream.out_oom && !s->upstream_dead)
                upstream_lost(s, "could not be written to (out of memory)");
        if (s->client.out_oom) {
                session_free(s, "out of memory");
                return;
        }
        if (conn_pending(&s->client) > 0) {
                n = conn_flush(&s->client);
                if (n < 0) {
                        session_free(s, "client error");
                        return;
                }
                /* client-write: a client that takes nothing of what waits
                 * for it that long is cut off; any progress restarts it. */
                if (conn_pending(&s->client) == 0) {
                        if (s->wr_timer != NULL)
                                evtimer_del(s->wr_timer);
                } else if (n > 0 || s->wr_timer == NULL || !evtimer_pending(s->wr_timer, NULL)) {
                        struct timeval tv = { .tv_sec = l->client_write_timeout };

                        if (s->wr_timer == NULL)
                                s->wr_timer = evtimer_new(s->d->base, client_write_timeout, s);
                        if (s->wr_timer == NULL) {
                                session_free(s, "out of memory");
                                return;
                        }
                        evtimer_add(s->wr_timer, &tv);
                }
        }
        client_out = conn_pending(&s->client);
        if (smtp_relay_closing(&s->relay) || (s->client_eof && !smtp_relay_busy(&s->relay))) {
                /* Ending: the client's last bytes, then free. */
                if (client_out == 0) {
                        session_free(s, NULL);
                        return;
                }
                s->ending = true;
                conn_arm(&s->client, false, true);
                conn_stop(&s->upstream);
                evtimer_del(s->timer);
                evtimer_del(s->up_timer);
                return;
        }
        /* While the upstream owes replies, its timeout runs and the
         * client's does not: a client waiting for a slow MX is not idle. */
        if (smtp_relay_busy(&s->relay)) {
                struct timeval tv = { .tv_sec = l->upstream_timeout };

                if (s->connected && !s->upstream_dead)
                        evtimer_add(s->up_timer, &tv);
                evtimer_del(s->timer);
        } else {
                if (s->connected)
                        evtimer_del(s->up_timer);
                if (!evtimer_pending(s->timer, NULL))
                        arm_timer(s);
        }
        /* The other way round: an MX that talks on to a client that does not
         * read waits (the kernel's buffers, then its own) until the client
         * has taken half of it; client-write ends a client that never does. */
        if (!s->upstream_paused && client_out > CLIENT_BACKLOG)
                s->upstream_paused = true;
        else if (s->upstream_paused && client_out <= CLIENT_BACKLOG / 2)
                s->upstream_paused = false;
        /* Nor is a client read while its own replies pile up unread, local
         * ones included (a limit's 452s cost no MX time): its memory is
         * bounded by what it will take. */
        conn_arm(&s->client,
                 !s->client_eof && conn_pending(&s->upstream) <= UPSTREAM_BACKLOG && client_out <= CLIENT_BACKLOG &&
                         s->client.in_len < CONN_INPUT_MAX,
                 client_out > 0);
        if (s->upstream_dead) {
                conn_stop(&s->upstream);
        } else if (!s->connected) {
                conn_arm(&s->upstream, false, true); /* the connect's end */
        } else {
                bool up_read = upstream_may_read(s);

                conn_arm(&s->upstream, up_read, up_write && conn_pending(&s->upstream) > 0);
                /* TLS may hold a record's rest that no socket event announces. */
                if (up_read && conn_has_buffered(&s->upstream))
                        event_active(s->upstream.ev_read, EV_READ, 1);
        }
}

static void client_event(evutil_socket_t fd, short what, void *ctx)
{
        struct session *s = ctx;
        const char *buf;
        size_t len;
        ssize_t n;

        if ((what & EV_READ) && !s->ending) {
                n = conn_read(&s->client, &buf, &len);
                if (n > 0) {
                        offer_client(s, buf, len);
                } else if (n == 0) {
                        /* A client may send its last commands and half-close:
                         * what it sent still gets its replies, as from a real MTA. */
                        pump_client(s);
                        if (!smtp_relay_busy(&s->relay) || smtp_relay_closing(&s->relay)) {
                                session_free(s, "client closed");
                                return;
                        }
                        s->client_eof = true;
                } else if (n != -EAGAIN && n != -ENOBUFS) {
                        session_free(s, "client error");
                        return;
                }
        }
        after_io(s); /* writes, if that is what the event was for */
}

/* The connection to the upstream is made, or failed. */
static void upstream_connected(struct session *s)
{
        int err = 0;
        socklen_t len = sizeof(err);
        char line[200];

        if (getsockopt(s->upstream.fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
                err = errno;
        if (err != 0) {
                s->acct->upstream_4xx[ACCOUNT_CONNECT]++;
                snprintf(line, sizeof(line), "421 4.4.1 Could not connect to %s: %s", s->mx, strerror(err));
                s->upstream_dead = true;
                conn_arm(&s->upstream, false, false);
                smtp_relay_abort(&s->relay, line);
                return;
        }
        s->connected = true;
        evtimer_del(s->up_timer);
}

/* Starts TLS on the upstream after the server's 220 to the relay's STARTTLS. */
static void upstream_tls(struct session *s)
{
        char why[160], line[200];
        int r;

        if (conn_tls_start(&s->upstream, s->d->tls) < 0) {
                upstream_lost(s, "could not start TLS (out of memory)");
                return;
        }
        r = conn_handshake(&s->upstream, why, sizeof(why));
        if (r < 0) {
                snprintf(line, sizeof(line), "failed the TLS handshake (%s)", why);
                upstream_lost(s, line);
        } else if (r == 1) {
                s->tls_on = true;
                smtp_relay_tls_ready(&s->relay);
        }
}

static void upstream_event(evutil_socket_t fd, short what, void *ctx)
{
        struct session *s = ctx;
        const char *buf;
        size_t len;
        ssize_t n;

        if (s->ending || s->upstream_dead) {
                after_io(s);
                return;
        }
        if (!s->connected) {
                upstream_connected(s);
                after_io(s);
                return;
        }
        if (handshaking(s)) {
                char why[160], line[200];
                int r = conn_handshake(&s->upstream, why, sizeof(why));

                if (r < 0) {
                        snprintf(line, sizeof(line), "failed the TLS handshake (%s)", why);
                        upstream_lost(s, line);
                } else if (r == 1) {
                        s->tls_on = true;
                        smtp_relay_tls_ready(&s->relay);
                }
                after_io(s);
                return;
        }
        /* With TLS either event may be what the other direction waited for:
         * both are tried (after_io writes). */
        if (((what & EV_READ) || s->upstream.ssl != NULL) && upstream_may_read(s)) {
                n = conn_read(&s->upstream, &buf, &len);
                if (n > 0) {
                        offer_upstream(s, buf, len);
                        if (s->tls_wanted && !s->tls_on && s->upstream.ssl == NULL && !smtp_relay_closing(&s->relay))
                                upstream_tls(s);
                        pump_client(s); /* bytes held back for a reply may go now */
                } else if (n == 0) {
                        pump_upstream(s); /* a last reply may sit in the buffer */
                        upstream_lost(s, "closed the connection");
                } else if (n != -EAGAIN && n != -ENOBUFS) {
                        upstream_lost(s, "reset the connection");
                }
        }
        after_io(s);
}

/* connect-timeout before the connection is made, upstream-timeout after. */
static void upstream_timeout(evutil_socket_t fd, short what, void *ctx)
{
        struct session *s = ctx;
        const struct pc_smtp_proxy_limits *l = limits(s);
        char line[200];

        if (!s->connected) {
                s->acct->upstream_4xx[ACCOUNT_CONNECT]++;
                snprintf(line, sizeof(line), "421 4.4.1 Could not connect to %s: no answer", s->mx);
                s->upstream_dead = true;
                conn_arm(&s->upstream, false, false);
                smtp_relay_abort(&s->relay, line);
        } else if (handshaking(s)) {
                upstream_lost(s, "failed the TLS handshake (no answer)");
        } else {
                snprintf(line, sizeof(line), "did not answer within %lld s", (long long)l->upstream_timeout);
                upstream_lost(s, line);
        }
        after_io(s);
}

/* The client read nothing of what waited for it for client-write seconds. */
static void client_write_timeout(evutil_socket_t fd, short what, void *ctx)
{
        struct session *s = ctx;
        char why[80];

        snprintf(why, sizeof(why), "the client did not read for %lld s", (long long)limits(s)->client_write_timeout);
        session_free(s, why);
}

static void timer_fired(evutil_socket_t fd, short what, void *ctx)
{
        struct session *s = ctx;

        smtp_relay_abort(&s->relay, "421 4.4.2 Error: timeout exceeded, closing the connection");
        after_io(s);
}

/* The session's lifetime is over, however busy it is. */
static void life_over(evutil_socket_t fd, short what, void *ctx)
{
        struct session *s = ctx;
        char line[160], span[32];

        if (s->ending) {
                session_free(s, "lifetime over while flushing");
                return;
        }
        pc_format_duration(limits(s)->lifetime, span, sizeof(span));
        snprintf(line, sizeof(line), "421 4.4.2 This session reached its lifetime of %s; closing the connection",
                 span);
        smtp_relay_abort(&s->relay, line);
        after_io(s);
}

static void session_free(struct session *s, const char *why)
{
        if (s == NULL)
                return;
        if (s->relay_live) {
                char text[200];

                log_value(text, sizeof(text), why != NULL ? why : "");
                if (s->logged)
                        smtpd_log("session=%llu event=close vps=%s src=%s mx=%s messages=%u duration_ms=%lld%s%s",
                                  (unsigned long long)s->id, s->vps_id, s->src, s->mx, s->messages,
                                  (long long)(pc_mono_ms() - s->started_ms), why != NULL ? " why=" : "",
                                  why != NULL ? text : "");
                smtp_relay_release(&s->relay);
        }
        if (s->timer != NULL)
                event_free(s->timer);
        if (s->life != NULL)
                event_free(s->life);
        if (s->up_timer != NULL)
                event_free(s->up_timer);
        if (s->wr_timer != NULL)
                event_free(s->wr_timer);
        conn_close(&s->client);
        conn_close(&s->upstream);
        if (s->acct != NULL && s->acct->active > 0)
                s->acct->active--;
        if (s->prev != NULL)
                s->prev->next = s->next;
        else if (s->d->first == s)
                s->d->first = s->next;
        if (s->next != NULL)
                s->next->prev = s->prev;
        s->d->sessions--;
        s->d->trim_due = true;
        free(s);
}

unsigned proxy_end_refused(struct smtpd *d, const char *id)
{
        struct session *s, *next;
        char line[512];
        unsigned n = 0;

        if (!mail_refused(pc_model_find(d->model, id), id, line, sizeof(line)))
                return 0;
        for (s = d->first; s != NULL; s = next) {
                next = s->next;
                if (strcmp(s->vps_id, id) != 0 || !s->relay_live || s->ending)
                        continue;
                /* Nothing more goes upstream: an MX that loses the
                 * connection before the end of the data drops the message. */
                s->upstream_stopped = true;
                conn_discard(&s->upstream);
                smtp_relay_abort(&s->relay, line);
                after_io(s);
                n++;
        }
        return n;
}

/* The address the VPS was connecting to, before nft's redirect. */
static int original_dst(int fd, int family, struct sockaddr_storage *ret)
{
        socklen_t len = sizeof(*ret);

        memset(ret, 0, sizeof(*ret));
        if (family == AF_INET6) {
                if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, ret, &len) == -1)
                        return -errno;
        } else if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, ret, &len) == -1) {
                return -errno;
        }
        return 0;
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
        if (a->ss_family != b->ss_family)
                return false;
        if (a->ss_family == AF_INET) {
                const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

                return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
        }
        {
                const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

                return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
        }
}

/* A socket towards <dst>, from the VPS's own address when the policy says
 * so (IP_TRANSPARENT: the MX sees the VPS's address and its rDNS). */
static int upstream_socket(const struct session *s, const struct sockaddr_storage *src,
                           const struct sockaddr_storage *dst, int *ret_fd)
{
        int family = dst->ss_family;
        int fd, one = 1;

        for (int attempt = 0; attempt < 4; attempt++) {
                struct sockaddr_storage local = *src, bound;
                socklen_t len = sizeof(bound);
                uint16_t client_port;

                fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (fd == -1)
                        return -errno;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                if (s->limits.source == PC_SMTP_SOURCE_HYPERVISOR) {
                        *ret_fd = fd;
                        return 0;
                }
                if ((family == AF_INET6 ? setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one))
                                        : setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one))) == -1) {
                        int r = -errno;

                        close(fd);
                        return r;
                }
                if (family == AF_INET6) {
                        client_port = ((struct sockaddr_in6 *)&local)->sin6_port;
                        ((struct sockaddr_in6 *)&local)->sin6_port = 0;
                } else {
                        client_port = ((struct sockaddr_in *)&local)->sin_port;
                        ((struct sockaddr_in *)&local)->sin_port = 0;
                }
                if (bind(fd, (struct sockaddr *)&local, family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                                         : sizeof(struct sockaddr_in)) == -1 ||
                    getsockname(fd, (struct sockaddr *)&bound, &len) == -1) {
                        int r = -errno;

                        close(fd);
                        return r;
                }
                /* The VPS's own (redirected) connection holds its port in
                 * conntrack: the same tuple would be NATed back to us. */
                if ((family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                        : ((struct sockaddr_in *)&bound)->sin_port) != client_port) {
                        *ret_fd = fd;
                        return 0;
                }
                close(fd);
        }
        return -EADDRINUSE;
}

/* Refuses a connection before any session exists: one 421, then close.
 * <line> may hold text from outside: it is escaped for the client and the
 * log.  The line is logged at a rate per <vps> (or per <src> if NULL). */
static void refuse(struct smtpd *d, int fd, const char *vps, const char *src, const char *line)
{
        char safe[600], value[700], buf[620];
        int n;

        pc_escape(safe, sizeof(safe), line, PC_ESCAPE_REPLY);
        n = snprintf(buf, sizeof(buf), "%s\r\n", safe);
        d->refused_total++;
        if (lograte_event(d->log_refused, vps != NULL ? vps : src, safe, pc_mono_ms())) {
                log_value(value, sizeof(value), safe);
                smtpd_log("event=refuse%s%s src=%s reply=%s", vps != NULL ? " vps=" : "", vps != NULL ? vps : "",
                          src, value);
        }
        send(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
        close(fd);
}

/* IPv4-mapped IPv6 becomes plain IPv4, so that families match upstream. */
static void unmap(struct sockaddr_storage *ss)
{
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

        if (ss->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
                struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_port = s6->sin6_port };

                memcpy(&s4.sin_addr, s6->sin6_addr.s6_addr + 12, 4);
                memset(ss, 0, sizeof(*ss));
                memcpy(ss, &s4, sizeof(s4));
        }
}

static void accepted(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *ctx)
{
        struct smtpd *d = ctx;
        struct sockaddr_storage src = { 0 }, dst, here = { 0 };
        socklen_t here_len = sizeof(here);
        char src_text[INET6_ADDRSTRLEN], dst_text[INET6_ADDRSTRLEN], line[400], why[300];
        const char *id, *bad;
        struct pc_vps *vps;
        const struct pc_policy *policy;
        struct account_vps *acct;
        struct session *s;
        int up = -1, r;

        memcpy(&src, sa, (size_t)salen < sizeof(src) ? (size_t)salen : sizeof(src));
        unmap(&src);
        format_addr((struct sockaddr *)&src, src_text, sizeof(src_text), false);
        id = addr_index_lookup(d->index, (struct sockaddr *)&src);
        vps = id != NULL ? pc_model_find(d->model, id) : NULL;
        id = vps != NULL ? vps->id : NULL;
        if (!account_may_accept(d->sessions, d->cfg->smtpd.max_sessions)) {
                refuse(d, fd, id, src_text, "421 4.7.0 Too many connections to this SMTP proxy; try again later");
                return;
        }
        if (getsockname(fd, (struct sockaddr *)&here, &here_len) == -1 ||
            original_dst(fd, src.ss_family, &dst) < 0) {
                refuse(d, fd, id, src_text, "421 4.3.0 Cannot tell where this connection was going");
                return;
        }
        unmap(&here);
        unmap(&dst);
        if (same_addr(&dst, &here)) {
                refuse(d, fd, id, src_text, "421 4.3.2 This port only takes mail redirected from VPSes");
                return;
        }
        if (vps == NULL) {
                snprintf(line, sizeof(line), "421 4.7.0 %s is not an address of a VPS on this hypervisor",
                         src_text);
                refuse(d, fd, id, src_text, line);
                return;
        }
        /* Never on a VPS's behalf to this host, its internal networks, or
         * addresses no MX has: checked before any connection is made. */
        bad = dest_guard_check(d->guard, (struct sockaddr *)&dst);
        if (bad != NULL) {
                format_addr((struct sockaddr *)&dst, dst_text, sizeof(dst_text), false);
                snprintf(line, sizeof(line), "421 4.3.2 Not relaying to %s: %s", dst_text, bad);
                refuse(d, fd, id, src_text, line);
                return;
        }
        policy = smtpd_policy_of(vps);
        if (policy == NULL || !smtpd_vps_allowed(vps, why, sizeof(why))) {
                snprintf(line, sizeof(line), "421 4.7.0 Mail from %s is refused: %s", vps->id,
                         policy == NULL ? "its site has no SMTP proxy" : why);
                refuse(d, fd, id, src_text, line);
                return;
        }
        acct = account_get(d->account, vps->id);
        if (acct == NULL) {
                refuse(d, fd, id, src_text, "421 4.3.0 Out of memory");
                return;
        }
        if (!account_may_connect(acct, &policy->smtp_limits)) {
                acct->limited++;
                snprintf(line, sizeof(line), "421 4.7.0 Too many concurrent sessions from %s: the limit is %u",
                         vps->id, policy->smtp_limits.sessions_per_vps);
                refuse(d, fd, id, src_text, line);
                return;
        }
        s = calloc(1, sizeof(*s));
        if (s == NULL) {
                refuse(d, fd, id, src_text, "421 4.3.0 Out of memory");
                return;
        }
        s->client.fd = s->upstream.fd = -1; /* conn_close() of a conn not opened */
        s->d = d;
        s->id = ++d->next_session_id;
        s->acct = acct;
        s->limits = policy->smtp_limits;
        s->started_ms = pc_mono_ms();
        snprintf(s->vps_id, sizeof(s->vps_id), "%s", vps->id);
        snprintf(s->src, sizeof(s->src), "%s", src_text);
        format_addr((struct sockaddr *)&dst, s->mx, sizeof(s->mx), true);
        d->sessions++;
        d->sessions_total++;
        s->next = d->first;
        if (d->first != NULL)
                d->first->prev = s;
        d->first = s;
        acct->active++;
        acct->sessions++;
        acct->window_ms = policy->smtp_limits.window * 1000;
        acct->last_ms = wall_ms();

        s->logged = lograte_event(d->log_sessions, vps->id, "", pc_mono_ms());
        s->timer = evtimer_new(d->base, timer_fired, s);
        s->life = evtimer_new(d->base, life_over, s);
        s->up_timer = evtimer_new(d->base, upstream_timeout, s);
        r = conn_init(&s->client, d->base, fd, client_event, s);
        if (r == 0)
                r = upstream_socket(s, &src, &dst, &up);
        if (r == 0)
                r = conn_init(&s->upstream, d->base, up, upstream_event, s);
        if (s->timer == NULL || s->life == NULL || s->up_timer == NULL || r < 0) {
                smtpd_log("session=%llu event=error vps=%s src=%s mx=%s why=\"cannot open the upstream socket: %s\"",
                          (unsigned long long)s->id, s->vps_id, s->src, s->mx, strerror(r < 0 ? -r : ENOMEM));
                if (s->client.fd != -1)
                        send(fd, "421 4.3.0 Proxy error, try again later\r\n", 40, MSG_DONTWAIT | MSG_NOSIGNAL);
                session_free(s, NULL);
                return;
        }
        smtp_relay_init(&s->relay, policy->smtp_limits.upstream_tls && d->tls != NULL ? &relay_ops_tls : &relay_ops,
                        s);
        s->relay_live = true;
        {
                struct timeval tv = { .tv_sec = policy->smtp_limits.connect_timeout };
                struct timeval life = { .tv_sec = policy->smtp_limits.lifetime };

                evtimer_add(s->up_timer, &tv);
                evtimer_add(s->life, &life);
        }
        if (s->logged)
                smtpd_log("session=%llu event=connect vps=%s src=%s mx=%s", (unsigned long long)s->id, s->vps_id,
                          s->src, s->mx);
        arm_timer(s);
        if (connect(up, (struct sockaddr *)&dst,
                    dst.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)) == 0) {
                s->connected = true;
                evtimer_del(s->up_timer);
        } else if (errno != EINPROGRESS) {
                s->upstream_dead = true;
                s->acct->upstream_4xx[ACCOUNT_CONNECT]++;
                snprintf(line, sizeof(line), "421 4.4.1 Could not connect to %s: %s", s->mx, strerror(errno));
                smtp_relay_abort(&s->relay, line);
        }
        after_io(s); /* reads the client, waits for the connection */
}

static void listener_error(struct evconnlistener *l, void *ctx)
{
        int err = EVUTIL_SOCKET_ERROR();

        /* EMFILE and friends: log and keep listening; sessions end and free fds. */
        smtpd_log("accept failed: %s", strerror(err));
}

/* Parses "[ADDR]:PORT" or "ADDR:PORT" from the config. */
static int parse_listen(const char *text, struct sockaddr_storage *ret, socklen_t *ret_len)
{
        char host[64];
        const char *colon = strrchr(text, ':');
        unsigned long port;
        char *end;

        if (colon == NULL)
                return -EINVAL;
        port = strtoul(colon + 1, &end, 10);
        if (*end != '\0' || port == 0 || port > 65535)
                return -EINVAL;
        if (text[0] == '[')
                snprintf(host, sizeof(host), "%.*s", (int)(colon - text - 2), text + 1);
        else
                snprintf(host, sizeof(host), "%.*s", (int)(colon - text), text);
        memset(ret, 0, sizeof(*ret));
        if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ret)->sin6_addr) == 1) {
                ((struct sockaddr_in6 *)ret)->sin6_family = AF_INET6;
                ((struct sockaddr_in6 *)ret)->sin6_port = htons((uint16_t)port);
                *ret_len = sizeof(struct sockaddr_in6);
                return 0;
        }
        if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ret)->sin_addr) == 1) {
                ((struct sockaddr_in *)ret)->sin_family = AF_INET;
                ((struct sockaddr_in *)ret)->sin_port = htons((uint16_t)port);
                *ret_len = sizeof(struct sockaddr_in);
                return 0;
        }
        return -EINVAL;
}

static int listen_one(struct smtpd *d, const struct sockaddr_storage *sa, socklen_t len, char *err, size_t errsz)
{
        struct evconnlistener *l;
        int fd, one = 1;
        char text[80];

        format_addr((const struct sockaddr *)sa, text, sizeof(text), true);
        if (d->n_listeners == SMTPD_LISTENERS_MAX) {
                snprintf(err, errsz, "too many listen addresses (at most %d)", SMTPD_LISTENERS_MAX);
                return -E2BIG;
        }
        fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
            (sa->ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1) ||
            bind(fd, (const struct sockaddr *)sa, len) == -1) {
                int r = -errno;

                snprintf(err, errsz, "cannot listen on %s: %s", text, strerror(errno));
                if (fd != -1)
                        close(fd);
                return r;
        }
        l = evconnlistener_new(d->base, accepted, d, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 1024, fd);
        if (l == NULL) {
                snprintf(err, errsz, "cannot listen on %s: %s", text, strerror(errno));
                close(fd);
                return -EIO;
        }
        evconnlistener_set_error_cb(l, listener_error);
        d->listeners[d->n_listeners++] = l;
        smtpd_log("listening on %s", text);
        return 0;
}

int proxy_listen(struct smtpd *d, char *err, size_t errsz)
{
        const char *seen[SMTPD_LISTENERS_MAX];
        size_t n_seen = 0;

        for (size_t i = 0; i < d->cfg->n_policies; i++) {
                const struct pc_policy *p = &d->cfg->policies[i];
                struct sockaddr_storage sa;
                socklen_t len;
                bool dup = false;
                int r;

                if (!p->has_smtp_proxy)
                        continue;
                for (size_t k = 0; k < n_seen; k++)
                        dup = dup || strcmp(seen[k], p->smtp_proxy_listen) == 0;
                if (dup || n_seen == SMTPD_LISTENERS_MAX)
                        continue;
                seen[n_seen++] = p->smtp_proxy_listen;
                if (parse_listen(p->smtp_proxy_listen, &sa, &len) < 0) {
                        snprintf(err, errsz, "policy %s: cannot use listen address %s", p->name,
                                 p->smtp_proxy_listen);
                        return -EINVAL;
                }
                r = listen_one(d, &sa, len, err, errsz);
                if (r < 0)
                        return r;
                /* nft redirects IPv4 to the interface's IPv4 address: "[::]"
                 * also listens on 0.0.0.0 (IPv6-only sockets keep the
                 * families apart, so the original destination is exact). */
                if (sa.ss_family == AF_INET6 &&
                    IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&sa)->sin6_addr)) {
                        struct sockaddr_in v4 = { .sin_family = AF_INET,
                                                  .sin_port = ((struct sockaddr_in6 *)&sa)->sin6_port };
                        struct sockaddr_storage ss = { 0 };

                        memcpy(&ss, &v4, sizeof(v4));
                        r = listen_one(d, &ss, sizeof(v4), err, errsz);
                        if (r < 0)
                                return r;
                }
        }
        if (d->n_listeners == 0) {
                snprintf(err, errsz, "no policy in the configuration has an smtp-proxy: nothing to do");
                return -ENOENT;
        }
        return 0;
}

void proxy_close_listeners(struct smtpd *d)
{
        for (size_t i = 0; i < d->n_listeners; i++)
                evconnlistener_free(d->listeners[i]);
        d->n_listeners = 0;
}

int proxy_tls_init(struct smtpd *d, char *err, size_t errsz)
{
        bool wanted = false;

        for (size_t i = 0; i < d->cfg->n_policies; i++)
                wanted = wanted || (d->cfg->policies[i].has_smtp_proxy &&
                                    d->cfg->policies[i].smtp_limits.upstream_tls);
        if (!wanted || d->tls != NULL)
                return 0;
        d->tls = SSL_CTX_new(TLS_client_method());
        if (d->tls == NULL) {
                snprintf(err, errsz, "cannot create the TLS context: %s",
                         ERR_reason_error_string(ERR_get_error()));
                return -ENOMEM;
        }
        /* Opportunistic, as MTAs do between them: encrypt, verify nothing. */
        SSL_CTX_set_verify(d->tls, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_min_proto_version(d->tls, TLS1_2_VERSION);
        return 0;
}
