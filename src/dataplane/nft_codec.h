/* The per-VPS elements' text (nft_ruleset.h) as nf_tables stores them, and
 * back: the agent writes and reads its 100,000 VPSes' elements through
 * netlink itself (nft_netlink.h), where libnftables would parse and print
 * text for each (BENCHMARKS.md, "Programming and restart at scale").  Pure:
 * unit-tested by round trips, and by the kernel in the labs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/nft_ruleset.h"

#define NFT_KEY_MAX 64 /* the longest key: ifname . ipv6_addr, 32 bytes */

/* An element as nf_tables holds it. */
struct nft_raw_elem {
        uint8_t key[NFT_KEY_MAX];
        uint8_t key_end[NFT_KEY_MAX]; /* a range of a concatenation: its last key */
        uint8_t len;                  /* of key and key_end */
        bool has_end;
        bool interval_end; /* in a set of ranges of one field: the key after a range */
        char chain[32];    /* maps: the verdict's jump target */
        uint64_t timeout_ms; /* 0: none */
        uint64_t expires_ms; /* as read: the time left */
};

/* The length of the keys of a set of layout <l>: each field of a
 * concatenation takes whole 4-byte words. */
size_t nft_layout_key_len(const struct nft_set_layout *l);

/* Encodes <x>, an element of a set of layout <l>, into <out>: one raw
 * element, or two for a range in a set of ranges of one field (its first
 * key, and the key after its last unless that is the last there is), in
 * *<ret_n>; its lifetime counted from <now>.  -EINVAL if its text is not
 * what nft_vps_elements() writes for such a set. */
int nft_raw_encode(const struct nft_set_layout *l, const struct nft_elem *x, int64_t now,
                   struct nft_raw_elem out[2], size_t *ret_n);

/* Appends to <out> the text of the <n> raw elements <v> read from set <set>
 * of table <family> (layout <l>), as nft_vps_elements() writes it;
 * lifetimes counted from <now>.  <v> is sorted in place.  Elements it
 * cannot decode are left out and counted in *<ret_bad>.  -ENOMEM. */
int nft_raw_decode(const char *family, const char *set, const struct nft_set_layout *l, struct nft_raw_elem *v,
                   size_t n, int64_t now, struct nft_elems *out, size_t *ret_bad);
