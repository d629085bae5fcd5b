/* Small helpers shared by every subsystem: strings, time, addresses.
 * Functions return 0 or a negative errno and write ret_ only on success. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define PC_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Frees *<p> (a pointer to a heap pointer); for __attribute__((cleanup)). */
static inline void pc_freep(void *p) { free(*(void **)p); }
#define _cleanup_free_ __attribute__((cleanup(pc_freep)))

/* Murmur3's 64-bit finaliser: every bit of <h> moves every bit of the
 * result, so a table can index by its low bits whatever keys it is given. */
static inline uint64_t pc_mix64(uint64_t h)
{
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 33;
        h *= 0xc4ceb9fe1a85ec53ull;
        h ^= h >> 33;
        return h;
}

/* Copies <src> into <dst> of <size> bytes; returns -ENAMETOOLONG (and
 * leaves <dst> an empty string) if it does not fit. */
int pc_strlcpy(char *dst, const char *src, size_t size);

/* Parses a duration such as "90s", "5m", "1h", "30d", "2w" or a bare
 * number of seconds.  Returns -EINVAL on anything else or on overflow. */
int pc_parse_duration(const char *s, int64_t *ret_seconds);

/* Formats <seconds> as the shortest exact duration ("1h", "90m", "45s"). */
void pc_format_duration(int64_t seconds, char *buf, size_t size);

/* The last second RFC 3339 can write: 9999-12-31T23:59:59Z. */
#define PC_TIME_MAX INT64_C(253402300799)

/* Parses a point in time: RFC 3339 UTC ("2026-12-01T00:00:00Z"), a date
 * ("2026-12-01", midnight UTC), or "+DURATION" relative to <now>.
 * -EINVAL if it is none of these, -ERANGE if it is after PC_TIME_MAX. */
int pc_parse_time(const char *s, int64_t now, int64_t *ret_time);

/* Formats unix time <t> as RFC 3339 UTC into <buf> (at least 21 bytes). */
void pc_format_time(int64_t t, char *buf, size_t size);

/* Current unix time in seconds. */
int64_t pc_now(void);

/* Milliseconds on the monotonic clock (for timeouts and rates). */
int64_t pc_mono_ms(void);

/* Microseconds on the monotonic clock since <t0> (taken with
 * clock_gettime(CLOCK_MONOTONIC)): what a step took, for logs. */
long pc_elapsed_us(const struct timespec *t0);

/* <n> with a comma every three digits ("12,345") into <buf>. */
void pc_format_count(uint64_t n, char *buf, size_t size);

/* An IPv4 or IPv6 prefix: bytes in network order, family AF_INET/AF_INET6. */
struct pc_prefix {
        int family;
        uint8_t len;
        uint8_t bytes[16];
};

/* Parses "ADDR" (a host prefix) or "ADDR/LEN".  Host bits beyond LEN must
 * be zero unless <allow_host_bits>.  Returns -EINVAL on bad input. */
int pc_parse_prefix(const char *s, bool allow_host_bits, struct pc_prefix *ret);

/* True if <a> and <b> (same family) share any address. */
bool pc_prefix_overlaps(const struct pc_prefix *a, const struct pc_prefix *b);
/* Whether <a> and <b> are the same prefix: family, length and bytes. */
bool pc_prefix_equal(const struct pc_prefix *a, const struct pc_prefix *b);

/* Why <p> can be no VPS's address -- a range so large it is a network,
 * loopback, link-local, multicast, broadcast, unspecified, reserved or
 * IPv4-mapped -- as a phrase ("a loopback address"); NULL if it can.  An
 * anti-spoofed VPS may send from what it owns: none of these. */
const char *pc_prefix_unassignable(const struct pc_prefix *p);

/* Formats <p> as "ADDR/LEN" into <buf> (at least 50 bytes). */
void pc_format_prefix(const struct pc_prefix *p, char *buf, size_t size);

/* Parses a MAC "aa:bb:cc:dd:ee:ff" (case-insensitive); rejects multicast. */
int pc_parse_mac(const char *s, uint8_t ret[6]);

/* Formats <mac> as lower-case "aa:bb:cc:dd:ee:ff" (buf >= 18 bytes). */
void pc_format_mac(const uint8_t mac[6], char *buf, size_t size);

/* True if <s> is a valid object name: 1-63 of [a-z0-9._-], starting with
 * a letter or digit.  VPS ids, service, site and policy names use it. */
bool pc_name_valid(const char *s);

/* True if <s> looks like a deliverable address: local@domain, no spaces or
 * control characters, at most 254 bytes. */
bool pc_email_valid(const char *s);

/* Writes into <buf> the address of mailbox <mailbox>: what is inside the
 * last "<...>" when that ends the text ("Name <noc@example.net>"), else the
 * whole text.  -EINVAL for a '<' without its closing '>' at the end,
 * -ENOBUFS if it does not fit.  The address itself is not checked. */
int pc_mailbox_address(const char *mailbox, char *buf, size_t size);

/* True if <s> is an interface name Portcullis accepts: 1-15 of letters,
 * digits, '.', '_', '-' (safe to write into nftables commands). */
bool pc_ifname_valid(const char *s);
