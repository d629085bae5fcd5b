/* The service catalog: the built-in services, and the small parsers and
 * formatters for port ranges, protocols and directions that the config
 * loader, the CLI and the evaluator share. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "policy/catalog.h"

#define TCP(a, b) { .proto = PC_PROTO_TCP, .lo = (a), .hi = (b) }
#define UDP(a, b) { .proto = PC_PROTO_UDP, .lo = (a), .hi = (b) }

/* Ports are kept sorted by protocol, then by first port. */
static const struct pc_service builtin_services[] = {
        {
                .name = "smtp",
                .description = "Mail submission and relay",
                .ports = { TCP(25, 25), TCP(26, 26), TCP(465, 465), TCP(587, 587),
                           TCP(2525, 2525) },
                .n_ports = 5,
                .direction = PC_DIR_EGRESS,
                .builtin = true,
        },
        {
                .name = "vpn",
                .description = "PPTP, L2TP, IKE/IPsec",
                .ports = { TCP(1723, 1723), UDP(500, 500), UDP(1701, 1701), UDP(4500, 4500) },
                .n_ports = 4,
                .ip_protos = { PC_PROTO_GRE, PC_PROTO_ESP },
                .n_ip_protos = 2,
                .direction = PC_DIR_BOTH,
                .builtin = true,
        },
        {
                .name = "bittorrent",
                .description = "BitTorrent peer-to-peer file sharing",
                .ports = { TCP(6660, 6669), TCP(6881, 6889), TCP(6969, 6969),
                           UDP(6660, 6669), UDP(6881, 6889), UDP(6969, 6969) },
                .n_ports = 6,
                .direction = PC_DIR_BOTH,
                .builtin = true,
        },
};

static const struct {
        const char *name;
        uint8_t proto;
} proto_names[] = {
        { "tcp", PC_PROTO_TCP },  { "udp", PC_PROTO_UDP },  { "gre", PC_PROTO_GRE },
        { "esp", PC_PROTO_ESP },  { "icmp", 1 },            { "ipv6-icmp", 58 },
};

static int parse_port(const char *s, size_t len, uint16_t *ret, char *err, size_t errsz);

/* Returns the built-in services; the array is static and immutable. */
const struct pc_service *pc_catalog_builtin(size_t *ret_n)
{
        if (ret_n != NULL)
                *ret_n = PC_ARRAY_SIZE(builtin_services);
        return builtin_services;
}

/* Parses the decimal port in <s> (<len> bytes, not NUL-terminated). */
static int parse_port(const char *s, size_t len, uint16_t *ret, char *err, size_t errsz)
{
        unsigned long v = 0;

        if (len == 0) {
                snprintf(err, errsz, "unable to parse empty port");
                return -EINVAL;
        }
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9') {
                        snprintf(err, errsz, "unable to parse port '%.*s'",
                                 (int)(len > 32 ? 32 : len), s);
                        return -EINVAL;
                }
                if (v <= 65535)
                        v = v * 10 + (unsigned long)(s[i] - '0');
        }
        if (v > 65535) {
                snprintf(err, errsz, "port %.*s out of range 0-65535",
                         (int)(len > 32 ? 32 : len), s);
                return -EINVAL;
        }
        *ret = (uint16_t)v;
        return 0;
}

/* Parses "PROTO/PORT" or "PROTO/LO-HI"; see catalog.h for the messages. */
int pc_port_range_parse(const char *s, struct pc_port_range *ret, char *err, size_t errsz)
{
        char dummy[1];
        const char *slash, *port, *dash;
        uint8_t proto;
        uint16_t lo, hi;
        int r;

        if (err == NULL || errsz == 0) {
                err = dummy;
                errsz = sizeof(dummy);
        }
        if (s == NULL || s[0] == '\0') {
                snprintf(err, errsz, "unable to parse empty port");
                return -EINVAL;
        }
        slash = strchr(s, '/');
        if (slash == NULL) {
                snprintf(err, errsz, "missing protocol in '%.32s' (write tcp/PORT or udp/PORT)", s);
                return -EINVAL;
        }
        if ((size_t)(slash - s) == 3 && strncmp(s, "tcp", 3) == 0)
                proto = PC_PROTO_TCP;
        else if ((size_t)(slash - s) == 3 && strncmp(s, "udp", 3) == 0)
                proto = PC_PROTO_UDP;
        else {
                snprintf(err, errsz, "unknown protocol '%.*s' (tcp or udp)",
                         (int)((size_t)(slash - s) > 32 ? 32 : (size_t)(slash - s)), s);
                return -EINVAL;
        }
        port = slash + 1;
        dash = strchr(port, '-');
        if (dash == NULL) {
                r = parse_port(port, strlen(port), &lo, err, errsz);
                if (r < 0)
                        return r;
                hi = lo;
        } else {
                r = parse_port(port, (size_t)(dash - port), &lo, err, errsz);
                if (r < 0)
                        return r;
                r = parse_port(dash + 1, strlen(dash + 1), &hi, err, errsz);
                if (r < 0)
                        return r;
                if (hi < lo) {
                        snprintf(err, errsz, "range %u-%u is reversed", lo, hi);
                        return -EINVAL;
                }
        }
        ret->proto = proto;
        ret->lo = lo;
        ret->hi = hi;
        return 0;
}

/* Formats <r> as "tcp/25" or "udp/6881-6889". */
void pc_port_range_format(const struct pc_port_range *r, char *buf, size_t size)
{
        const char *name = pc_proto_name(r->proto);

        if (size == 0)
                return;
        if (name == NULL)
                name = "?";
        if (r->lo == r->hi)
                snprintf(buf, size, "%s/%u", name, r->lo);
        else
                snprintf(buf, size, "%s/%u-%u", name, r->lo, r->hi);
}

/* Parses a protocol name into its IANA number. */
int pc_proto_parse(const char *name, uint8_t *ret)
{
        if (name == NULL)
                return -EINVAL;
        for (size_t i = 0; i < PC_ARRAY_SIZE(proto_names); i++)
                if (strcmp(name, proto_names[i].name) == 0) {
                        *ret = proto_names[i].proto;
                        return 0;
                }
        return -EINVAL;
}

/* Returns the name of IANA protocol <proto>, or NULL if it has none here. */
const char *pc_proto_name(uint8_t proto)
{
        for (size_t i = 0; i < PC_ARRAY_SIZE(proto_names); i++)
                if (proto_names[i].proto == proto)
                        return proto_names[i].name;
        return NULL;
}

/* Parses "egress"/"out", "ingress"/"in" or "both" into direction bits. */
int pc_dir_parse(const char *name, unsigned *ret)
{
        if (name == NULL)
                return -EINVAL;
        if (strcmp(name, "egress") == 0 || strcmp(name, "out") == 0)
                *ret = PC_DIR_EGRESS;
        else if (strcmp(name, "ingress") == 0 || strcmp(name, "in") == 0)
                *ret = PC_DIR_INGRESS;
        else if (strcmp(name, "both") == 0)
                *ret = PC_DIR_BOTH;
        else
                return -EINVAL;
        return 0;
}

/* Returns "egress", "ingress", "both", or "none" for 0 and other bits. */
const char *pc_dir_name(unsigned dir)
{
        switch (dir) {
        case PC_DIR_EGRESS:
                return "egress";
        case PC_DIR_INGRESS:
                return "ingress";
        case PC_DIR_BOTH:
                return "both";
        default:
                return "none";
        }
}

/* True if one of <svc>'s port ranges covers <proto>/<port>. */
bool pc_service_has_port(const struct pc_service *svc, uint8_t proto, uint16_t port)
{
        if (svc == NULL)
                return false;
        for (size_t i = 0; i < svc->n_ports && i < PC_SERVICE_PORTS_MAX; i++)
                if (svc->ports[i].proto == proto && svc->ports[i].lo <= port &&
                    port <= svc->ports[i].hi)
                        return true;
        return false;
}
