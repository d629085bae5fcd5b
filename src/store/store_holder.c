/* Who holds an address or a MAC: another VPS's registered address, or a
 * source-prefix exception in force. */
#include "store/store-sql.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* <p> with every bit from <len> on cleared into <ret>. */
static void prefix_truncate(const struct pc_prefix *p, unsigned len, struct pc_prefix *ret)
{
        *ret = *p;
        ret->len = (uint8_t)len;
        for (unsigned bit = len; bit < sizeof(ret->bytes) * 8; bit++)
                ret->bytes[bit / 8] &= (uint8_t) ~(0x80 >> (bit % 8));
}

/* Copies the holder at the current row of <st> (vps_id, what) to *<ret>. */
static int holder_found(struct db_stmt *st, bool exception, struct pc_addr_holder *ret)
{
        copy_trunc(ret->vps_id, sizeof(ret->vps_id), col_text(st, 0));
        copy_trunc(ret->what, sizeof(ret->what), col_text(st, 1));
        ret->exception = exception;
        return 1;
}

/* A registered address overlapping <p>.  Addresses are aligned prefixes,
 * so one overlaps <p> if it starts inside <p> (one range of the index on
 * (family, net)) or contains <p>: then it is <p> cut to a shorter length,
 * one point of the index per length.  At most 129 lookups, whatever the
 * fleet's size. */
static int registered_holder(struct sql_store *s, const struct pc_prefix *p, const char *except_vps,
                             struct pc_addr_holder *ret)
{
        _cleanup_stmt_ struct db_stmt *in = NULL, *around = NULL;
        int64_t family = p->family == AF_INET ? 4 : 6;
        struct pc_prefix last, cut;
        int r;

        prefix_truncate(p, p->len, &cut);
        last = cut;
        for (unsigned bit = p->len; bit < (p->family == AF_INET ? 32u : 128u); bit++)
                last.bytes[bit / 8] |= (uint8_t)(0x80 >> (bit % 8));
        r = sql_query(s, &in,
                      "SELECT vps_id, prefix FROM vps_address WHERE family = ? AND net >= ? AND net <= ? "
                      "AND vps_id IS DISTINCT FROM ? LIMIT 1",
                      "i??t", family, except_vps);
        if (r < 0)
                return r;
        if ((r = sql_bind_net(s, in, 2, &cut)) < 0 || (r = sql_bind_net(s, in, 3, &last)) < 0 ||
            (r = sql_step(s, in)) != 0)
                return r < 0 ? r : holder_found(in, false, ret);
        r = sql_query(s, &around,
                      "SELECT vps_id, prefix FROM vps_address WHERE family = ? AND net = ? AND len = ? "
                      "AND vps_id IS DISTINCT FROM ? LIMIT 1",
                      "i?it", family, (int64_t)0, except_vps);
        if (r < 0)
                return r;
        for (unsigned len = 0; len < p->len; len++) {
                prefix_truncate(p, len, &cut);
                db_stmt_reset(around);
                r = db_bind_int64(around, 3, len);
                if (r < 0)
                        return sql_fail(s, r, "binding a length");
                r = sql_bind_net(s, around, 2, &cut);
                if (r >= 0)
                        r = sql_step(s, around);
                if (r != 0)
                        return r < 0 ? r : holder_found(around, false, ret);
        }
        return 0;
}

/* A source-prefix exception in force at <now> overlapping <p>.  They are
 * few (anti-spoofing exceptions for gateways): the partial index on live
 * exceptions' services gives them without touching the others. */
static int exception_holder(struct sql_store *s, const struct pc_prefix *p, const char *except_vps, int64_t now,
                            bool other_owner, struct pc_addr_holder *ret)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        if (other_owner)
                r = sql_query(s, &st,
                              "SELECT e.vps_id, e.service FROM exception e JOIN vps v ON v.id = e.vps_id "
                              "WHERE e.service >= '" PC_SOURCE_PREFIX "' AND e.service < 'source-prefix;' "
                              "AND e.revoked_at IS NULL AND (e.until IS NULL OR e.until > ?) AND e.vps_id IS DISTINCT FROM ? "
                              "AND v.owner IS DISTINCT FROM (SELECT owner FROM vps WHERE id = ?) ORDER BY e.id",
                              "itt", now, except_vps, except_vps);
        else
                r = sql_query(s, &st,
                              "SELECT vps_id, service FROM exception WHERE service >= '" PC_SOURCE_PREFIX "' "
                              "AND service < 'source-prefix;' AND revoked_at IS NULL AND (until IS NULL OR until > ?) "
                              "AND vps_id IS DISTINCT FROM ? ORDER BY id",
                              "it", now, except_vps);
        if (r < 0)
                return r;
        while ((r = sql_step(s, st)) > 0) {
                struct pc_prefix g;

                if (pc_exception_source_prefix(col_text(st, 1), &g) && pc_prefix_overlaps(p, &g))
                        return holder_found(st, true, ret);
        }
        return r;
}

int store_addr_holder(struct pc_store *ps, const struct pc_prefix *p, const char *except_vps, unsigned what,
                      int64_t now, struct pc_addr_holder *ret)
{
        struct sql_store *s = to_sql(ps);
        int r = 0;

        if (p->family != AF_INET && p->family != AF_INET6)
                return sql_err(s, -EINVAL, "an address that is neither IPv4 nor IPv6");
        memset(ret, 0, sizeof(*ret));
        if (what & PC_ADDR_REGISTERED)
                r = registered_holder(s, p, except_vps, ret);
        if (r == 0 && (what & PC_ADDR_GRANTED))
                r = exception_holder(s, p, except_vps, now, (what & PC_ADDR_OTHER_OWNER) != 0, ret);
        return r;
}

int store_mac_holder(struct pc_store *ps, const uint8_t mac[6], const char *except_vps, char *ret_vps,
                     size_t size)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        char m[18];
        int r;

        pc_format_mac(mac, m, sizeof(m));
        r = sql_query(s, &st, "SELECT id FROM vps WHERE mac = ? AND id IS DISTINCT FROM ? LIMIT 1", "tt", m, except_vps);
        if (r < 0 || (r = sql_step(s, st)) <= 0)
                return r;
        copy_trunc(ret_vps, size, col_text(st, 0));
        return 1;
}
