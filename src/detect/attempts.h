/* Blocked attempts: what is new in the kernel's counters since the last
 * pass.  The kernel counts blocked attempts per (interface, protocol, port)
 * in one set per direction and family (nft_ruleset.c: attempts_out,
 * attempts_in, each up to 1,048,576 elements); the agent reads them all on
 * every pass and records only the increase.  This table remembers each
 * element's last count: a hash, so that a pass over a million elements
 * costs a million constant-time steps, not a million scans.
 *
 * Pure: no kernel, no store, no clock.  A pass is begin, note for every
 * element, end; end forgets the elements the pass did not see (the kernel
 * let them expire), so the table never holds more than the kernel does,
 * and never more than PC_ATTEMPTS_MAX elements. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Two families (inet, bridge) times two directions of 1,048,576. */
#define PC_ATTEMPTS_MAX (4u * 1048576u)

struct pc_attempts;

/* Creates an empty table.  -ENOMEM. */
int pc_attempts_new(struct pc_attempts **ret);

/* Frees <t>; accepts NULL; returns NULL. */
struct pc_attempts *pc_attempts_free(struct pc_attempts *t);

/* Starts a pass over the kernel's counters. */
void pc_attempts_begin(struct pc_attempts *t);

/* Notes that the element (<iface>, <dir>, <proto>, <port>) counts
 * <packets>, and sets *<ret_delta> to the attempts since it was last noted:
 * all of <packets> for an element not seen before, 0 if the count did not
 * grow (or went down: the kernel dropped the element and made it again,
 * and the new count is the one remembered).  -ENOSPC with PC_ATTEMPTS_MAX
 * elements held, -ENOMEM: the element is not remembered and *<ret_delta>
 * not written. */
int pc_attempts_note(struct pc_attempts *t, const char *iface, unsigned dir, uint8_t proto, uint16_t port,
                     uint64_t packets, uint64_t *ret_delta);

/* Ends a pass that noted every element the kernel holds: forgets the
 * elements the pass did not note.  After a pass that failed part way, do
 * not call it (the elements not read would be counted again in full). */
void pc_attempts_end(struct pc_attempts *t);

/* Number of elements remembered. */
size_t pc_attempts_count(const struct pc_attempts *t);
