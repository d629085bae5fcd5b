/* Small helpers shared by every subsystem. */
#include "base/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "base/utf8.h"

int pc_strlcpy(char *dst, const char *src, size_t size)
{
        size_t n = strlen(src);

        if (size == 0)
                return -ENAMETOOLONG;
        if (n >= size) {
                dst[0] = '\0';
                return -ENAMETOOLONG;
        }
        memcpy(dst, src, n + 1);
        return 0;
}

static const struct {
        char suffix;
        int64_t seconds;
} duration_units[] = {
        { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 604800 },
};

int pc_parse_duration(const char *s, int64_t *ret_seconds)
{
        int64_t value = 0, unit = 1;
        const char *p = s;

        if (s == NULL || !isdigit((unsigned char)*p))
                return -EINVAL;
        for (; isdigit((unsigned char)*p); p++) {
                if (value > (INT64_MAX - 9) / 10)
                        return -EINVAL;
                value = value * 10 + (*p - '0');
        }
        if (*p != '\0') {
                size_t i;

                for (i = 0; i < PC_ARRAY_SIZE(duration_units); i++)
                        if (duration_units[i].suffix == *p)
                                break;
                if (i == PC_ARRAY_SIZE(duration_units) || p[1] != '\0')
                        return -EINVAL;
                unit = duration_units[i].seconds;
        }
        if (value > INT64_MAX / unit)
                return -EINVAL;
        *ret_seconds = value * unit;
        return 0;
}

void pc_format_duration(int64_t seconds, char *buf, size_t size)
{
        for (size_t i = PC_ARRAY_SIZE(duration_units); i-- > 1;) {
                if (seconds != 0 && seconds % duration_units[i].seconds == 0) {
                        snprintf(buf, size, "%" PRId64 "%c", seconds / duration_units[i].seconds,
                                 duration_units[i].suffix);
                        return;
                }
        }
        snprintf(buf, size, "%" PRId64 "s", seconds);
}

int64_t pc_now(void)
{
        return (int64_t)time(NULL);
}

int64_t pc_mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long pc_elapsed_us(const struct timespec *t0)
{
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return (long)((t.tv_sec - t0->tv_sec) * 1000000L + (t.tv_nsec - t0->tv_nsec) / 1000);
}

void pc_format_count(uint64_t n, char *buf, size_t size)
{
        char raw[32];
        size_t len, o = 0;

        if (size == 0)
                return;
        snprintf(raw, sizeof(raw), "%llu", (unsigned long long)n);
        len = strlen(raw);
        for (size_t i = 0; i < len && o + 2 < size; i++) {
                if (i > 0 && (len - i) % 3 == 0)
                        buf[o++] = ',';
                buf[o++] = raw[i];
        }
        buf[o] = '\0';
}

int pc_parse_time(const char *s, int64_t now, int64_t *ret_time)
{
        struct tm tm = { 0 };
        const char *end;
        int64_t d;

        if (s == NULL)
                return -EINVAL;
        if (s[0] == '+') {
                if (pc_parse_duration(s + 1, &d) < 0)
                        return -EINVAL;
                if (d > PC_TIME_MAX - now)
                        return -ERANGE;
                *ret_time = now + d;
                return 0;
        }
        end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (end == NULL || *end != '\0') {
                memset(&tm, 0, sizeof(tm));
                end = strptime(s, "%Y-%m-%d", &tm);
                if (end == NULL || *end != '\0')
                        return -EINVAL;
        }
        /* strptime takes more than four digits of year */
        if (tm.tm_year > 9999 - 1900)
                return -ERANGE;
        *ret_time = (int64_t)timegm(&tm);
        return 0;
}

void pc_format_time(int64_t t, char *buf, size_t size)
{
        time_t tt = (time_t)t;
        struct tm tm;

        if (gmtime_r(&tt, &tm) == NULL || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, size, "@%" PRId64, t);
}

int pc_parse_prefix(const char *s, bool allow_host_bits, struct pc_prefix *ret)
{
        char addr[INET6_ADDRSTRLEN];
        const char *slash;
        struct pc_prefix p = { 0 };
        size_t alen;
        unsigned maxlen;
        long len;

        if (s == NULL)
                return -EINVAL;
        slash = strchr(s, '/');
        alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
        if (alen == 0 || alen >= sizeof(addr))
                return -EINVAL;
        memcpy(addr, s, alen);
        addr[alen] = '\0';
        if (inet_pton(AF_INET, addr, p.bytes) == 1) {
                p.family = AF_INET;
                maxlen = 32;
        } else if (inet_pton(AF_INET6, addr, p.bytes) == 1) {
                p.family = AF_INET6;
                maxlen = 128;
        } else
                return -EINVAL;
        len = maxlen;
        if (slash != NULL) {
                char *end;

                if (!isdigit((unsigned char)slash[1]))
                        return -EINVAL;
                errno = 0;
                len = strtol(slash + 1, &end, 10);
                if (errno != 0 || *end != '\0' || len < 0 || len > (long)maxlen)
                        return -EINVAL;
        }
        p.len = (uint8_t)len;
        for (unsigned bit = p.len; bit < maxlen; bit++) {
                if (p.bytes[bit / 8] & (0x80 >> (bit % 8))) {
                        if (!allow_host_bits)
                                return -EINVAL;
                        p.bytes[bit / 8] &= (uint8_t) ~(0x80 >> (bit % 8));
                }
        }
        *ret = p;
        return 0;
}

bool pc_prefix_equal(const struct pc_prefix *a, const struct pc_prefix *b)
{
        return a->family == b->family && a->len == b->len && memcmp(a->bytes, b->bytes, sizeof(a->bytes)) == 0;
}

bool pc_prefix_overlaps(const struct pc_prefix *a, const struct pc_prefix *b)
{
        unsigned len = a->len < b->len ? a->len : b->len;

        if (a->family != b->family)
                return false;
        for (unsigned bit = 0; bit < len; bit++) {
                uint8_t m = (uint8_t)(0x80 >> (bit % 8));

                if ((a->bytes[bit / 8] & m) != (b->bytes[bit / 8] & m))
                        return false;
        }
        return true;
}

const char *pc_prefix_unassignable(const struct pc_prefix *p)
{
        static const struct {
                const char *prefix, *why;
        } special[] = {
                { "0.0.0.0/8", "in 0.0.0.0/8 (\"this network\", never a source)" },
                { "127.0.0.0/8", "a loopback address" },
                { "169.254.0.0/16", "a link-local address" },
                { "224.0.0.0/4", "a multicast address" },
                { "240.0.0.0/4", "reserved (240.0.0.0/4, with the broadcast address)" },
                { "::/128", "the unspecified address" },
                { "::1/128", "the loopback address" },
                { "::ffff:0:0/96", "an IPv4-mapped address (give the IPv4 address itself)" },
                { "fe80::/10", "a link-local address (a VPS's own follows from its MAC)" },
                { "ff00::/8", "a multicast address" },
        };

        if (p->len < (p->family == AF_INET ? 16 : 32))
                return p->family == AF_INET ? "larger than a /16: a network, not one VPS's addresses"
                                            : "larger than a /32: a network, not one VPS's addresses";
        for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++) {
                struct pc_prefix x;

                if (pc_parse_prefix(special[i].prefix, false, &x) == 0 && pc_prefix_overlaps(p, &x))
                        return special[i].why;
        }
        return NULL;
}

/* Writes <v> in decimal (<hex>: in lower-case hexadecimal) at <t>; returns
 * the end. */
static char *put_num(char *t, unsigned v, bool hex)
{
        char d[8];
        int n = 0;

        do {
                d[n++] = "0123456789abcdef"[hex ? v % 16 : v % 10];
                v = hex ? v / 16 : v / 10;
        } while (v != 0);
        while (n > 0)
                *t++ = d[--n];
        return t;
}

/* inet_ntop() of <family>'s address <b> into <t>, which has room for
 * INET6_ADDRSTRLEN, without its sprintf()s (the agent formats 100,000
 * VPSes' addresses at every start); the same text, RFC 5952's: the longest
 * run of two or more zero groups (the first of equals) as "::", and an
 * IPv4-mapped or -compatible address's last 32 bits as IPv4.  Returns the
 * end. */
static char *put_addr(char *t, int family, const uint8_t *b)
{
        unsigned w[8];
        int best = -1, best_len = 0, cur = -1;

        if (family == AF_INET) {
                for (int i = 0; i < 4; i++) {
                        if (i > 0)
                                *t++ = '.';
                        t = put_num(t, b[i], false);
                }
                return t;
        }
        for (int i = 0; i < 8; i++)
                w[i] = (unsigned)b[2 * i] << 8 | b[2 * i + 1];
        for (int i = 0; i <= 8; i++) {
                if (i < 8 && w[i] == 0) {
                        if (cur == -1)
                                cur = i;
                        continue;
                }
                if (cur != -1 && i - cur > best_len) {
                        best = cur;
                        best_len = i - cur;
                }
                cur = -1;
        }
        if (best_len < 2)
                best = -1;
        for (int i = 0; i < 8; i++) {
                if (best != -1 && i >= best && i < best + best_len) {
                        if (i == best)
                                *t++ = ':';
                        continue;
                }
                if (i != 0)
                        *t++ = ':';
                if (i == 6 && best == 0 && (best_len == 6 || (best_len == 5 && w[5] == 0xffff)))
                        return put_addr(t, AF_INET, b + 12);
                t = put_num(t, w[i], true);
        }
        if (best != -1 && best + best_len == 8)
                *t++ = ':';
        return t;
}

void pc_format_prefix(const struct pc_prefix *p, char *buf, size_t size)
{
        char text[INET6_ADDRSTRLEN + 4], *t = text;
        size_t n;

        if (p->family == AF_INET || p->family == AF_INET6)
                t = put_addr(t, p->family, p->bytes);
        else
                *t++ = '?';
        *t++ = '/';
        t = put_num(t, p->len, false);
        n = (size_t)(t - text);
        if (size == 0)
                return;
        if (n >= size)
                n = size - 1; /* cut short, as snprintf() would */
        memcpy(buf, text, n);
        buf[n] = '\0';
}

int pc_parse_mac(const char *s, uint8_t ret[6])
{
        unsigned v[6];

        if (s == NULL || strlen(s) != 17)
                return -EINVAL;
        /* by hand, not sscanf(): the store reads 100,000 of them at a start */
        for (int i = 0; i < 17; i++)
                if ((i % 3 == 2) ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
                        return -EINVAL;
        for (int i = 0; i < 6; i++) {
                char hex[3] = { s[3 * i], s[3 * i + 1], '\0' };

                v[i] = (unsigned)strtoul(hex, NULL, 16);
        }
        if (v[0] & 1) /* multicast/broadcast can't be a VPS's own MAC */
                return -EINVAL;
        if ((v[0] | v[1] | v[2] | v[3] | v[4] | v[5]) == 0)
                return -EINVAL;
        for (int i = 0; i < 6; i++)
                ret[i] = (uint8_t)v[i];
        return 0;
}

void pc_format_mac(const uint8_t mac[6], char *buf, size_t size)
{
        snprintf(buf, size, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                 mac[4], mac[5]);
}

bool pc_name_valid(const char *s)
{
        size_t n;

        if (s == NULL)
                return false;
        n = strlen(s);
        if (n == 0 || n > 63 || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
                return false;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];

                if (!(islower(c) || isdigit(c) || c == '.' || c == '_' || c == '-'))
                        return false;
        }
        return true;
}

bool pc_email_valid(const char *s)
{
        const char *at;
        size_t n;

        if (s == NULL)
                return false;
        n = strlen(s);
        if (n < 3 || n > 254)
                return false;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];

                if (c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == ',' || c == ';' ||
                    c == '"' || c == '\\' || c == '(' || c == ')')
                        return false;
        }
        if (pc_text_invalid(s, (char[80]){ 0 }, 80) != NULL)
                return false; /* C1 controls, bytes that are not UTF-8 */
        at = strrchr(s, '@');
        if (at == NULL || at == s || at[1] == '\0' || strchr(s, '@') != at)
                return false;
        if (at - s > 64 || strchr(at + 1, '.') == NULL || at[1] == '.' || s[n - 1] == '.')
                return false;
        return true;
}

bool pc_ifname_valid(const char *s)
{
        size_t n;

        if (s == NULL)
                return false;
        n = strlen(s);
        if (n == 0 || n > 15 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
                return false;
        /* Linux allows more, but these names are written into nftables
         * commands: letters, digits, '.', '_' and '-' cannot break out of
         * the quotes, and every hypervisor's naming fits. */
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];

                if (!(isalnum(c) || c == '.' || c == '_' || c == '-'))
                        return false;
        }
        return true;
}

int pc_mailbox_address(const char *mailbox, char *buf, size_t size)
{
        const char *lt = strrchr(mailbox, '<');
        size_t n;

        if (lt == NULL)
                return (size_t)snprintf(buf, size, "%s", mailbox) < size ? 0 : -ENOBUFS;
        n = strlen(lt + 1);
        if (n == 0 || lt[n] != '>')
                return -EINVAL;
        if (n - 1 >= size)
                return -ENOBUFS;
        memcpy(buf, lt + 1, n - 1);
        buf[n - 1] = '\0';
        return 0;
}
