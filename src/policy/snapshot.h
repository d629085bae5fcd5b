/* A host's policy as text: what its agent enforces, kept on its disk so
 * that a hypervisor that boots while the database is away enforces the
 * last policy it knew instead of nothing (docs/FLEET.md, "When the
 * database is away").  Pure: no files, no clock (the caller passes <now>),
 * no logging; the agent writes and reads the file (src/agent/snapshot.c).
 *
 * The text, one record a line, fields separated by one space, each field
 * percent-encoded (every byte outside '!'..'~', and '%', as %XX; the empty
 * string as "-", a lone "-" as %2D):
 *
 *   portcullis-snapshot 1                    format and version
 *   host hv17                                "-": a single host
 *   written 1764590000                       unix time
 *   loaded 1764589000                        when its policy was last read from the database
 *   fingerprint 0123456789abcdef             the kernel's record of it (dataplane)
 *   vps ID SITE IFACE MAC OWNER LANG CREATED STOPPED RUN_SINCE HOST MOVING_FROM MOVING_IFACE
 *   addr PREFIX                              ... of the VPS above
 *   exception ID SERVICE PORTS TICKET CREATED UNTIL BY REASON
 *   filter ID DIRECTION SCOPE INCIDENT CREATED UNTIL BY REASON
 *   suspension ID INCIDENT CREATED TERMINATED BY REASON
 *   end VPSES CHECKSUM                       the last line, then nothing
 *
 * CHECKSUM (16 hex digits) is a 64-bit hash of every byte before the
 * "end" line: a file cut short, or changed by accident, is refused whole
 * rather than half applied.  It is no signature: whoever can write the
 * file can write a matching one (it is root's, mode 0600). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "base/strbuf.h"
#include "policy/model.h"

#define PC_SNAPSHOT_VERSION 1
#define PC_SNAPSHOT_MAGIC "portcullis-snapshot"

/* The head of a snapshot. */
struct pc_snapshot_head {
        int version;
        char host[PC_NAME_MAX]; /* "": a single host */
        int64_t written;        /* unix time */
        int64_t loaded;         /* when the policy was last read from the database */
        uint64_t fingerprint;   /* the kernel's fingerprint of the model (0: unknown) */
};

/* What a parse left out of the model, for the log. */
struct pc_snapshot_stats {
        size_t vpses;       /* VPSes in the file */
        size_t loaded;      /* ... added to the model */
        size_t no_site;     /* VPSes whose site the configuration no longer has */
        size_t ended;       /* exceptions and filters that ended by <now> */
        size_t unresolved;  /* filters of a service the configuration no longer has */
        char example[160];  /* one VPS or filter left out, and why */
};

/* Appends <m>'s VPSes under <head> to <out> (the file without its "end"
 * line: pc_snapshot_seal adds it).  Filters that a port-subset exception
 * derives are not written (the exception derives them again).  0, or
 * -ENOMEM (<out>->oom). *<ret_vpses>: the VPSes written. */
int pc_snapshot_format(const struct pc_model *m, const struct pc_snapshot_head *head, struct strbuf *out,
                       size_t *ret_vpses);

/* Appends the "end" line to <out>, which pc_snapshot_format filled with
 * <vpses> VPSes: the checksum of everything before it. */
void pc_snapshot_seal(struct strbuf *out, size_t vpses);

/* The checksum of <len> bytes at <p>. */
uint64_t pc_snapshot_checksum(const void *p, size_t len);

/* Reads the snapshot <text> (<len> bytes, any bytes) into the empty model
 * <m>, whose configuration resolves sites and services.  What ended by
 * <now> is left out; so is a VPS whose site the configuration lacks, and
 * a filter of a service it lacks (*<ret_stats> counts them: the rest is
 * enforced).  0 and *<ret_head>; or -EINVAL (not a snapshot, torn,
 * checksum mismatch, a malformed line), -EPROTONOSUPPORT (another
 * version), -ENOMEM, with the reason in <err> and <m> left empty. */
int pc_snapshot_parse(const char *text, size_t len, struct pc_model *m, int64_t now, struct pc_snapshot_head *ret_head,
                      struct pc_snapshot_stats *ret_stats, char *err, size_t errsz);
