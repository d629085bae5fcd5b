/* What libnftables does not give, asked of nf_tables' netlink directly: the
 * ruleset's generation, and the keys of a small set.  Both in the current
 * network namespace; both negative errno on failure. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The generation of the namespace's nftables ruleset in *<ret>.  It goes up
 * by exactly one with every committed transaction, whoever commits it, and
 * with nothing else: not with a failed or checked (nft -c) transaction, not
 * with elements that rules add or that time out.  Equal generations
 * therefore mean an unchanged ruleset. */
int nft_nl_genid(uint32_t *ret);

typedef int (*nft_nl_key_cb)(const void *key, size_t len, void *userdata);

/* Calls <cb> with the key of every element of set <set> of table <family>
 * <table> (family "inet" or "bridge"), as the kernel stores
 * it (each field of a concatenation in 4-byte words, in the field's own
 * byte order).  -ENOENT if the table or the set does not exist; a negative
 * return of <cb> stops the walk and is returned. */
int nft_nl_set_keys(const char *family, const char *table, const char *set, nft_nl_key_cb cb, void *userdata);
