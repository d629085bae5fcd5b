/* Conntrack entries that the policy no longer allows.
 *
 * The forward chain decides a flow at its first packet and lets the rest
 * of it through on conntrack's word.  So when a VPS's verdicts tighten
 * (registration, a site change, an exception revoked, a filter or a
 * suspension placed), the flows it already has must go too, or an open
 * connection outlives the rule that forbids it.  The purge reads the
 * kernel's conntrack table (libnetfilter_conntrack), decides each entry of
 * the VPS with pc_evaluate() exactly as the ruleset would decide its first
 * packet -- both ways round, see DATAPLANE.md -- and deletes what would not
 * pass now.  Entries that pass are kept: an SSH session survives a filter on
 * port 25.  Redirected entries (to the SMTP proxy) and the proxy's own
 * connections (their own conntrack zone) are the proxy's to end. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "policy/model.h"

struct pc_ct_purge {
        size_t examined; /* entries of the VPSes looked at */
        size_t deleted;
        char example[160]; /* one deleted entry, for the log */
};

/* Deletes the entries of <vps> (those with one of its addresses) that its
 * verdicts at <now> do not allow.  0 or a negative errno with <err> set. */
int pc_ct_purge_vps(const struct pc_vps *vps, int64_t now, struct pc_ct_purge *ret, char *err, size_t errsize);

/* The same for every VPS of <m>, in one pass over the table. */
int pc_ct_purge_model(const struct pc_model *m, int64_t now, struct pc_ct_purge *ret, char *err,
                      size_t errsize);
