/* The API's connection slots, against clients that hold connections
 * without ever finishing a request (slowloris): libmicrohttpd drops a
 * connection only after CONNECTION_TIMEOUT without a byte, so one header
 * line every few seconds holds a slot for ever, and from enough addresses
 * all of them.
 *
 * - A client -- an IPv4 address, an IPv6 /64, as the rate limiter keys
 *   them -- holds at most per_client connections.
 * - When every slot is taken, a newcomer takes the slot of the connection
 *   that has waited longest for a request's headers (a dripping client, or
 *   an idle keep-alive): one that is inside a request is never taken, and
 *   a complete request takes milliseconds.  So slow clients cost each
 *   other their slots, never an honest client its answer.
 *
 * - A request whose body has not arrived REQUEST_DEADLINE_MS after its
 *   headers (one byte every few seconds keeps MHD's idle timeout away for
 *   ever) is as good as waiting: its slot may be taken too.  Strangers
 *   never get that far: a request without a valid token is answered 401
 *   from its headers, its body unread (server.c).
 *
 * Every call is on MHD's one thread: no locking. */
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "api/slots.h"
#include "base/util.h"

#define REQUEST_DEADLINE_MS 30000 /* headers to the body's end: the API's bodies are 64 KiB at most */

/* One open connection, oldest wait first in the slots' list. */
struct api_conn {
        struct MHD_Connection *conn;
        uint8_t key[16];
        bool in_request; /* its headers are in: not to be taken (until the deadline) */
        int64_t request_ms; /* when they came */
        bool evicted;    /* shut down, MHD has yet to close it */
        struct api_conn *prev, *next;
};

static void unlink_conn(struct api_slots *sl, struct api_conn *c)
{
        if (c->prev != NULL)
                c->prev->next = c->next;
        else
                sl->head = c->next;
        if (c->next != NULL)
                c->next->prev = c->prev;
        else
                sl->tail = c->prev;
        c->prev = c->next = NULL;
}

static void append_conn(struct api_slots *sl, struct api_conn *c)
{
        c->prev = sl->tail;
        c->next = NULL;
        if (sl->tail != NULL)
                sl->tail->next = c;
        else
                sl->head = c;
        sl->tail = c;
}

void api_client_key(const struct sockaddr *sa, uint8_t out[16])
{
        memset(out, 0, 16);
        if (sa != NULL && sa->sa_family == AF_INET6) {
                memcpy(out, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
                if (!IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(const void *)out))
                        memset(out + 8, 0, 8);
        } else if (sa != NULL && sa->sa_family == AF_INET) {
                out[10] = out[11] = 0xff;
                memcpy(out + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        }
}

/* Takes the slot of the connection waiting longest for its headers (or a
 * request past its deadline): false if every connection is inside a
 * request in time. */
static bool evict_oldest_waiting(struct api_slots *sl)
{
        int64_t now = pc_mono_ms();

        for (struct api_conn *c = sl->head; c != NULL; c = c->next) {
                const union MHD_ConnectionInfo *ci;

                if (c->evicted || (c->in_request && now - c->request_ms < REQUEST_DEADLINE_MS))
                        continue;
                ci = MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
                if (ci == NULL)
                        continue;
                /* MHD sees the end at its next turn and closes it. */
                shutdown(ci->connect_fd, SHUT_RDWR);
                c->evicted = true;
                sl->open--;
                sl->evicted++;
                return true;
        }
        return false;
}

enum MHD_Result api_slots_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
        struct api_slots *sl = cls;
        uint8_t key[16];
        unsigned mine = 0;

        (void)addrlen;
        api_client_key(addr, key);
        for (struct api_conn *c = sl->head; c != NULL && mine < sl->per_client; c = c->next)
                mine += !c->evicted && memcmp(c->key, key, sizeof(key)) == 0;
        if (mine >= sl->per_client) {
                sl->refused++;
                return MHD_NO;
        }
        if (sl->open >= sl->limit && !evict_oldest_waiting(sl)) {
                sl->refused++;
                return MHD_NO;
        }
        return MHD_YES;
}

void api_slots_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                      enum MHD_ConnectionNotificationCode code)
{
        struct api_slots *sl = cls;
        struct api_conn *c = *socket_context;

        if (code == MHD_CONNECTION_NOTIFY_STARTED) {
                const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn,
                                                                             MHD_CONNECTION_INFO_CLIENT_ADDRESS);

                c = calloc(1, sizeof(*c));
                if (c == NULL)
                        return; /* not counted: MHD's own limit still holds */
                c->conn = conn;
                api_client_key(ci != NULL ? ci->client_addr : NULL, c->key);
                append_conn(sl, c);
                sl->open++;
                *socket_context = c;
        } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && c != NULL) {
                if (!c->evicted)
                        sl->open--;
                unlink_conn(sl, c);
                free(c);
                *socket_context = NULL;
        }
}

static struct api_conn *conn_of(struct MHD_Connection *conn)
{
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

        return ci != NULL ? ci->socket_context : NULL;
}

void api_slots_request(struct api_slots *sl, struct MHD_Connection *conn, bool started)
{
        struct api_conn *c = conn_of(conn);

        if (c == NULL)
                return;
        c->in_request = started;
        c->request_ms = pc_mono_ms();
        if (!started) { /* waiting again: the newest wait */
                unlink_conn(sl, c);
                append_conn(sl, c);
        }
}
