/* What libnftables does not give, asked of nf_tables' netlink directly: the
 * ruleset's generation, and the keys of a small set.  Both in the current
 * network namespace; both negative errno on failure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/nft_codec.h"

/* The generation of the namespace's nftables ruleset in *<ret>.  It goes up
 * by exactly one with every committed transaction, whoever commits it, and
 * with nothing else: not with a failed or checked (nft -c) transaction, not
 * with elements that rules add or that time out.  Equal generations
 * therefore mean an unchanged ruleset. */
int nft_nl_genid(uint32_t *ret);

typedef int (*nft_nl_elem_cb)(const struct nft_raw_elem *e, void *userdata);

/* Calls <cb> with every element of set <set> of table <family> <table>
 * (family "inet" or "bridge") as the kernel holds it (nft_codec.h).
 * -ENOENT if the table or the set does not exist; a negative return of
 * <cb> stops the walk and is returned. */
int nft_nl_set_dump(const char *family, const char *table, const char *set, nft_nl_elem_cb cb, void *userdata);

/* One named counter object, as nft_nl_counters() reads it. */
struct nft_nl_counter {
        char name[64];
        uint64_t packets, bytes;
};

typedef int (*nft_nl_counter_cb)(const struct nft_nl_counter *c, void *userdata);

/* Calls <cb> with every named counter of table <family> <table> (family
 * "inet" or "bridge"): one dump of the table's counter objects, which
 * reads no set, whatever their size (`nft list counters` reads them all).
 * Nothing if the table does not exist; a negative return of <cb> stops
 * the walk and is returned. */
int nft_nl_counters(const char *family, const char *table, nft_nl_counter_cb cb, void *userdata);

/* A transaction of element additions and deletions, built in memory. */
struct nft_nl_batch;

int nft_nl_batch_new(struct nft_nl_batch **ret);

/* Frees <b>; accepts NULL; returns NULL. */
struct nft_nl_batch *nft_nl_batch_free(struct nft_nl_batch *b);

/* Adds to <b> the addition (<add>) or deletion of the <n> elements <v> of
 * set <set> of table <family> <table>; with <n> 0 and not <add>, the
 * deletion of all of the set's elements.  -ENOMEM, -EINVAL. */
int nft_nl_batch_elems(struct nft_nl_batch *b, const char *family, const char *table, const char *set, bool add,
                       const struct nft_raw_elem *v, size_t n);

/* Commits <b> as one transaction, and only if the ruleset's generation is
 * still <genid> (0: whatever it is; nft_nl_genid()): -ERESTART if it is
 * not, and nothing changed.  Another error: the kernel's first, with its
 * message and the set it was about in <err>; nothing changed either. */
int nft_nl_batch_commit(struct nft_nl_batch *b, uint32_t genid, char *err, size_t size);
