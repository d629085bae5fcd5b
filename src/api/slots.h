/* The API's connection slots (slots.c): a limit per client, and a full
 * server taking the slot of the connection waiting longest for its
 * request's headers. */
#pragma once

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct api_conn;

struct api_slots {
        unsigned limit;      /* connections at once */
        unsigned per_client; /* from one client */
        unsigned open;       /* counted now (not the evicted ones) */
        uint64_t evicted;    /* slots taken from a waiting connection */
        uint64_t refused;    /* connections refused: over a client's share, or all inside requests */
        struct api_conn *head, *tail; /* oldest wait first */
};

/* The client of <sa> as 16 bytes (IPv4 mapped); an IPv6 client is its
 * /64, as one host has a whole /64 to send from. */
void api_client_key(const struct sockaddr *sa, uint8_t out[16]);

/* MHD's accept policy (MHD_start_daemon's apc, its cls an api_slots). */
enum MHD_Result api_slots_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen);

/* MHD_OPTION_NOTIFY_CONNECTION's callback (its cls an api_slots). */
void api_slots_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                      enum MHD_ConnectionNotificationCode code);

/* A request of <conn> has its headers (<started>), or its answer is sent
 * and the connection waits again. */
void api_slots_request(struct api_slots *sl, struct MHD_Connection *conn, bool started);
