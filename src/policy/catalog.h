/* The service catalog: named sets of ports per protocol. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PC_NAME_MAX 64          /* names incl. NUL: VPS ids, services, sites */
#define PC_SERVICE_PORTS_MAX 64 /* port ranges in one service or rule */
#define PC_IPPROTO_MAX 8        /* selectable IP protocols in one service */

/* IP protocol numbers (IANA) used by the catalog. */
enum {
        PC_PROTO_TCP = 6,
        PC_PROTO_UDP = 17,
        PC_PROTO_GRE = 47,
        PC_PROTO_ESP = 50,
};

/* Directions, from the VPS's point of view; a bit set. */
enum pc_dir {
        PC_DIR_EGRESS = 1u << 0,  /* the VPS connects out */
        PC_DIR_INGRESS = 1u << 1, /* someone connects to the VPS */
        PC_DIR_BOTH = PC_DIR_EGRESS | PC_DIR_INGRESS,
};

/* Where something was written in a config file, for error messages. */
struct pc_srcpos {
        const char *file; /* owned by the config; NULL for built-ins */
        int line;         /* 1-based */
        int col;          /* 1-based */
};

/* A protocol and an inclusive port range, e.g. tcp/6881-6889. */
struct pc_port_range {
        uint8_t proto; /* PC_PROTO_TCP or PC_PROTO_UDP */
        uint16_t lo;
        uint16_t hi;
};

struct pc_service {
        char name[PC_NAME_MAX];
        char description[128];
        struct pc_port_range ports[PC_SERVICE_PORTS_MAX];
        size_t n_ports;
        uint8_t ip_protos[PC_IPPROTO_MAX]; /* selectable, e.g. GRE, ESP */
        size_t n_ip_protos;
        unsigned direction; /* enum pc_dir bits a block applies to by default */
        bool builtin;
        struct pc_srcpos pos;
};

/* Returns the built-in services (smtp, vpn, bittorrent) and their count. */
const struct pc_service *pc_catalog_builtin(size_t *ret_n);

/* Parses "tcp/25", "udp/6881-6889" or "tcp/0-65535" into <ret>.  Returns
 * -EINVAL with a message in <err> (size <errsz>) naming what is wrong:
 * "unknown protocol 'sctp' (tcp or udp)", "port 70000 out of range 0-65535",
 * "range 20-10 is reversed", "unable to parse empty port". */
int pc_port_range_parse(const char *s, struct pc_port_range *ret, char *err, size_t errsz);

/* Formats <r> as "tcp/25" or "udp/6881-6889" into <buf>. */
void pc_port_range_format(const struct pc_port_range *r, char *buf, size_t size);

/* Protocol name <-> number: "tcp", "udp", "gre", "esp", "icmp", "ipv6-icmp".
 * pc_proto_parse returns -EINVAL for unknown names; pc_proto_name returns
 * NULL for numbers without a name. */
int pc_proto_parse(const char *name, uint8_t *ret);
const char *pc_proto_name(uint8_t proto);

/* Direction name <-> bits: "egress"/"out", "ingress"/"in", "both". */
int pc_dir_parse(const char *name, unsigned *ret);
const char *pc_dir_name(unsigned dir); /* "egress", "ingress", "both" */

/* True if <svc> covers (<proto>, <port>) in any of its port ranges. */
bool pc_service_has_port(const struct pc_service *svc, uint8_t proto, uint16_t port);
