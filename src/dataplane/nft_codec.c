/* Per-VPS elements between their text and nf_tables' bytes.  See
 * nft_codec.h.
 *
 * A key is its fields one after the other, each in whole 4-byte words when
 * there are several (nft's concatenations): an interface name in 16 bytes,
 * NUL-padded; addresses, ports and raw header fields in network order; a
 * protocol in one byte.  A range of a concatenation is two keys, first and
 * last (pipapo); a range of one field is two elements, its first key and,
 * flagged as an interval end, the key after its last (rbtree). */
#include "dataplane/nft_codec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/catalog.h"

static size_t field_len(enum nft_field f);
static size_t field_at(const struct nft_set_layout *l, unsigned i);

/* The bytes field <f> takes, unpadded. */
static size_t field_len(enum nft_field f)
{
        switch (f) {
        case NFT_F_IFNAME: return 16;
        case NFT_F_IPV4: return 4;
        case NFT_F_IPV6: return 16;
        case NFT_F_PROTO: return 1;
        case NFT_F_PORT: return 2;
        case NFT_F_ETHER: return 6;
        case NFT_F_INT48: return 6;
        case NFT_F_INT128: return 16;
        }
        return 0;
}

/* Where field <i> of a key of layout <l> starts. */
static size_t field_at(const struct nft_set_layout *l, unsigned i)
{
        size_t at = 0;

        for (unsigned k = 0; k < i; k++)
                at += (field_len(l->fields[k]) + 3) & ~(size_t)3;
        return at;
}

size_t nft_layout_key_len(const struct nft_set_layout *l)
{
        return l->n_fields == 1 ? field_len(l->fields[0]) : field_at(l, l->n_fields);
}

/* Parses <len> hex digits or fewer ("0x" already skipped) of <s> into the
 * big-endian number of <n> bytes at <b>. */
static int parse_hex(const char *s, size_t len, uint8_t *b, size_t n)
{
        if (len == 0 || len > 2 * n)
                return -EINVAL;
        memset(b, 0, n);
        for (size_t i = 0; i < len; i++) {
                char c = s[len - 1 - i];
                unsigned v = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                             : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                                                    : 16;

                if (v == 16)
                        return -EINVAL;
                b[n - 1 - i / 2] |= (uint8_t)(i % 2 == 0 ? v : v << 4);
        }
        return 0;
}

/* Parses a decimal number of at most <max>, all of <s>'s <len> characters. */
static int parse_dec(const char *s, size_t len, uint64_t max, uint64_t *ret)
{
        uint64_t v = 0;

        if (len == 0 || len > 20)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9' || v > (max - (uint64_t)(s[i] - '0')) / 10)
                        return -EINVAL;
                v = v * 10 + (uint64_t)(s[i] - '0');
        }
        *ret = v;
        return 0;
}

/* Parses the text <s> (<len> characters) of field <f> into its first value
 * <lo> and its last <hi> (the same, but for a range or a prefix). */
static int field_parse(enum nft_field f, const char *s, size_t len, uint8_t *lo, uint8_t *hi)
{
        size_t n = field_len(f);
        const char *dash = memchr(s, '-', len);
        char text[64];
        uint64_t v, w;

        memset(lo, 0, n);
        switch (f) {
        case NFT_F_IFNAME:
                if (len < 2 || len - 2 >= n || s[0] != '"' || s[len - 1] != '"' || memchr(s + 1, '"', len - 2) != NULL)
                        return -EINVAL;
                memcpy(lo, s + 1, len - 2);
                break;
        case NFT_F_IPV4:
        case NFT_F_IPV6: {
                struct pc_prefix p;

                if (len >= sizeof(text))
                        return -EINVAL;
                memcpy(text, s, len);
                text[len] = '\0';
                if (pc_parse_prefix(text, false, &p) < 0 || p.family != (f == NFT_F_IPV4 ? AF_INET : AF_INET6))
                        return -EINVAL;
                memcpy(lo, p.bytes, n);
                memcpy(hi, p.bytes, n);
                for (unsigned bit = p.len; bit < 8 * n; bit++)
                        hi[bit / 8] |= (uint8_t)(0x80 >> (bit % 8));
                return 0;
        }
        case NFT_F_PROTO: {
                uint8_t proto;

                if (len >= sizeof(text))
                        return -EINVAL;
                memcpy(text, s, len);
                text[len] = '\0';
                if (pc_proto_parse(text, &proto) == 0)
                        lo[0] = proto;
                else if (parse_dec(s, len, 255, &v) == 0)
                        lo[0] = (uint8_t)v;
                else
                        return -EINVAL;
                break;
        }
        case NFT_F_PORT:
                if (parse_dec(s, dash != NULL ? (size_t)(dash - s) : len, 65535, &v) < 0)
                        return -EINVAL;
                w = v;
                if (dash != NULL && (parse_dec(dash + 1, len - (size_t)(dash - s) - 1, 65535, &w) < 0 || w < v))
                        return -EINVAL;
                lo[0] = (uint8_t)(v >> 8);
                lo[1] = (uint8_t)v;
                hi[0] = (uint8_t)(w >> 8);
                hi[1] = (uint8_t)w;
                return 0;
        case NFT_F_ETHER:
                if (len != 17)
                        return -EINVAL;
                for (int i = 0; i < 6; i++)
                        if ((i < 5 && s[3 * i + 2] != ':') || parse_hex(s + 3 * i, 2, &lo[i], 1) < 0)
                                return -EINVAL;
                break;
        case NFT_F_INT48:
                if (parse_dec(s, len, (1ull << 48) - 1, &v) < 0)
                        return -EINVAL;
                for (int i = 5; i >= 0; i--, v >>= 8)
                        lo[i] = (uint8_t)v;
                break;
        case NFT_F_INT128: {
                size_t first = dash != NULL ? (size_t)(dash - s) : len;

                if (first < 3 || s[0] != '0' || s[1] != 'x' || parse_hex(s + 2, first - 2, lo, n) < 0)
                        return -EINVAL;
                memcpy(hi, lo, n);
                if (dash != NULL && (len - first < 4 || dash[1] != '0' || dash[2] != 'x' ||
                                     parse_hex(dash + 3, len - first - 3, hi, n) < 0 || memcmp(hi, lo, n) < 0))
                        return -EINVAL;
                return 0;
        }
        }
        memcpy(hi, lo, n);
        return 0;
}

int nft_raw_encode(const struct nft_set_layout *l, const struct nft_elem *x, int64_t now,
                   struct nft_raw_elem out[2], size_t *ret_n)
{
        const char *s = x->key, *end = x->key + strlen(x->key);
        size_t klen = nft_layout_key_len(l);
        bool range = false;
        int r;

        memset(out, 0, 2 * sizeof(*out));
        out[0].len = (uint8_t)klen;
        for (unsigned i = 0; i < l->n_fields; i++) {
                const char *sep = i + 1 < l->n_fields ? strstr(s, " . ") : NULL;
                const char *stop = sep != NULL ? sep : end;
                size_t at = field_at(l, i), n = field_len(l->fields[i]);

                if (i + 1 < l->n_fields && sep == NULL)
                        return -EINVAL;
                r = field_parse(l->fields[i], s, (size_t)(stop - s), out[0].key + at, out[0].key_end + at);
                if (r < 0)
                        return r;
                range = range || memcmp(out[0].key + at, out[0].key_end + at, n) != 0;
                s = sep != NULL ? sep + 3 : end;
        }
        if (s != end || (range && !l->interval))
                return -EINVAL;
        if (l->map) {
                if (strncmp(x->value, "jump ", 5) != 0 || strlen(x->value + 5) >= sizeof(out[0].chain) ||
                    x->value[5] == '\0')
                        return -EINVAL;
                snprintf(out[0].chain, sizeof(out[0].chain), "%s", x->value + 5);
        } else if (x->value[0] != '\0')
                return -EINVAL;
        if (x->until != 0) {
                if (!l->timeout)
                        return -EINVAL;
                out[0].timeout_ms = (uint64_t)(x->until > now ? x->until - now : 1) * 1000;
        }
        *ret_n = 1;
        if (l->interval && l->n_fields > 1) {
                out[0].has_end = true;
                return 0;
        }
        if (l->interval) {
                /* the key after the range, if there is one */
                int i = (int)klen - 1;

                memcpy(out[1].key, out[0].key_end, klen);
                while (i >= 0 && ++out[1].key[i] == 0)
                        i--;
                if (i >= 0) {
                        out[1].len = (uint8_t)klen;
                        out[1].interval_end = true;
                        *ret_n = 2;
                }
        }
        memset(out[0].key_end, 0, sizeof(out[0].key_end));
        return 0;
}

/* Appends <s> to <buf> (<*n> used of <size>). */
static void put(char *buf, size_t size, size_t *n, const char *s)
{
        size_t len = strlen(s);

        if (*n + len >= size)
                len = *n < size ? size - 1 - *n : 0;
        memcpy(buf + *n, s, len);
        *n += len;
        buf[*n] = '\0';
}

/* The hex text "0x" and 32 digits of 16 bytes <b> into <t>. */
static void hex128(const uint8_t *b, char t[35])
{
        t[0] = '0';
        t[1] = 'x';
        for (int i = 0; i < 16; i++) {
                t[2 + 2 * i] = "0123456789abcdef"[b[i] >> 4];
                t[3 + 2 * i] = "0123456789abcdef"[b[i] & 15];
        }
        t[34] = '\0';
}

/* The prefix length of the range <lo>-<hi> of <n> bytes, or -1 if it is
 * none. */
static int prefix_len(const uint8_t *lo, const uint8_t *hi, size_t n)
{
        int len = 0;

        while ((size_t)len < 8 * n && ((lo[len / 8] ^ hi[len / 8]) & (0x80 >> (len % 8))) == 0)
                len++;
        for (size_t bit = (size_t)len; bit < 8 * n; bit++)
                if ((lo[bit / 8] & (0x80 >> (bit % 8))) != 0 || (hi[bit / 8] & (0x80 >> (bit % 8))) == 0)
                        return -1;
        return len;
}

/* Appends the text of field <f> with first value <lo> and last <hi> to
 * <buf>, as nft_vps_elements() writes it. */
static void field_text(enum nft_field f, const uint8_t *lo, const uint8_t *hi, char *buf, size_t size, size_t *n)
{
        size_t len = field_len(f);
        bool single = memcmp(lo, hi, len) == 0;
        char t[96];

        switch (f) {
        case NFT_F_IFNAME: { /* by hand: one per element */
                size_t name = strnlen((const char *)lo, 16);

                t[0] = '"';
                memcpy(t + 1, lo, name);
                t[name + 1] = '"';
                t[name + 2] = '\0';
                break;
        }
        case NFT_F_IPV4:
        case NFT_F_IPV6: {
                struct pc_prefix p = { .family = f == NFT_F_IPV4 ? AF_INET : AF_INET6 };
                int plen = prefix_len(lo, hi, len);
                char *slash;

                memcpy(p.bytes, lo, len);
                p.len = (uint8_t)(single || plen < 0 ? 8 * len : (size_t)plen);
                pc_format_prefix(&p, t, sizeof(t));
                slash = strchr(t, '/');
                if (single && slash != NULL)
                        *slash = '\0'; /* an address */
                else if (plen < 0 && slash != NULL) { /* a range that is no prefix */
                        memcpy(p.bytes, hi, len);
                        *slash = '-';
                        pc_format_prefix(&p, slash + 1, sizeof(t) - (size_t)(slash + 1 - t));
                        *strchr(slash + 1, '/') = '\0';
                }
                break;
        }
        case NFT_F_PROTO: {
                const char *name = pc_proto_name(lo[0]);

                if (name != NULL)
                        snprintf(t, sizeof(t), "%s", name);
                else
                        snprintf(t, sizeof(t), "%u", lo[0]);
                break;
        }
        case NFT_F_PORT:
                if (single)
                        snprintf(t, sizeof(t), "%u", (unsigned)lo[0] << 8 | lo[1]);
                else
                        snprintf(t, sizeof(t), "%u-%u", (unsigned)lo[0] << 8 | lo[1], (unsigned)hi[0] << 8 | hi[1]);
                break;
        case NFT_F_ETHER:
                snprintf(t, sizeof(t), "%02x:%02x:%02x:%02x:%02x:%02x", lo[0], lo[1], lo[2], lo[3], lo[4], lo[5]);
                break;
        case NFT_F_INT48: {
                uint64_t v = 0;

                for (int i = 0; i < 6; i++)
                        v = v << 8 | lo[i];
                snprintf(t, sizeof(t), "%" PRIu64, v);
                break;
        }
        case NFT_F_INT128:
                hex128(lo, t);
                if (!single) {
                        t[34] = '-';
                        hex128(hi, t + 35);
                }
                break;
        }
        put(buf, size, n, t);
}

static int raw_cmp(const void *a, const void *b)
{
        const struct nft_raw_elem *x = a, *y = b;
        int c = memcmp(x->key, y->key, NFT_KEY_MAX);

        /* an interval's end sorts before a start at the same key */
        return c != 0 ? c : (int)y->interval_end - (int)x->interval_end;
}

int nft_raw_decode(const char *family, const char *set, const struct nft_set_layout *l, struct nft_raw_elem *v,
                   size_t n, int64_t now, struct nft_elems *out, size_t *ret_bad)
{
        size_t klen = nft_layout_key_len(l), bad = 0;
        bool pairs = l->interval && l->n_fields == 1;
        struct nft_elem proto = { 0 };

        snprintf(proto.family, sizeof(proto.family), "%s", family);
        snprintf(proto.set, sizeof(proto.set), "%s", set);
        if (pairs)
                qsort(v, n, sizeof(*v), raw_cmp);
        for (size_t i = 0; i < n; i++) {
                struct nft_elem x;
                uint8_t last[NFT_KEY_MAX];
                size_t len = 0;

                if (v[i].len != klen || (pairs && v[i].interval_end) || (l->map && v[i].chain[0] == '\0')) {
                        bad += !(pairs && v[i].interval_end); /* an end: read with its start */
                        continue;
                }
                memcpy(last, v[i].has_end ? v[i].key_end : v[i].key, NFT_KEY_MAX);
                if (pairs) {
                        /* up to the key before the next end, or to the last key */
                        if (i + 1 < n && v[i + 1].interval_end) {
                                int k = (int)klen - 1;

                                memcpy(last, v[i + 1].key, NFT_KEY_MAX);
                                while (k >= 0 && last[k]-- == 0)
                                        k--;
                        } else
                                memset(last, 0xff, klen);
                }
                memcpy(x.family, proto.family, sizeof(x.family));
                memcpy(x.set, proto.set, sizeof(x.set));
                x.key[0] = x.value[0] = '\0';
                for (unsigned f = 0; f < l->n_fields; f++) {
                        size_t at = field_at(l, f);

                        if (f > 0)
                                put(x.key, sizeof(x.key), &len, " . ");
                        field_text(l->fields[f], v[i].key + at, last + at, x.key, sizeof(x.key), &len);
                }
                if (l->map)
                        snprintf(x.value, sizeof(x.value), "jump %s", v[i].chain);
                /* as libnftables counts it: whole seconds left */
                x.until = v[i].timeout_ms != 0 ? now + (int64_t)(v[i].expires_ms / 1000) : 0;
                if (nft_elems_push(out, &x) < 0)
                        return -ENOMEM;
        }
        *ret_bad = bad;
        return 0;
}
