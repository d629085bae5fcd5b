/* Blocked attempts: per VPS, protocol and port, counted for the owner. */
#include "store/store-sql.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

int store_attempt_note(struct pc_store *ps, const struct pc_attempt_count *a)
{
        struct sql_store *s = to_sql(ps);
        const char *proto = a->proto == IPPROTO_TCP ? "tcp" : a->proto == IPPROTO_UDP ? "udp" : NULL;
        const char *dir = a->dir == PC_DIR_EGRESS ? "egress" : a->dir == PC_DIR_INGRESS ? "ingress" : NULL;
        int r;

        if (proto == NULL || dir == NULL)
                return sql_err(s, -EINVAL, "blocked attempts of %s: protocol %u or direction %u is not counted",
                               a->vps_id, a->proto, a->dir);
        /* A VPS that is not registered writes nothing rather than fail on
         * the foreign key: a failed statement would abort a PostgreSQL
         * caller's whole transaction (the pass's other counts), where
         * SQLite undoes that statement alone. */
        r = sql_exec(s,
                     "INSERT INTO vps_attempt (vps_id, direction, proto, port, packets, last_seen) "
                     "SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM vps WHERE id = ?1) "
                     "ON CONFLICT (vps_id, proto, port, direction) DO UPDATE "
                     "SET packets = excluded.packets, last_seen = CASE WHEN excluded.last_seen > vps_attempt.last_seen "
                     "THEN excluded.last_seen ELSE vps_attempt.last_seen END",
                     "tttiii", a->vps_id, dir, proto, (int64_t)a->port,
                     a->packets > INT64_MAX ? INT64_MAX : (int64_t)a->packets, a->last_seen);
        if (r == 0 && db_changes(s->db) == 0)
                r = -ENOENT;
        if (r == -ENOENT)
                return sql_err(s, r, "blocked attempts of %s: vps %s does not exist", a->vps_id, a->vps_id);
        return r;
}

int store_attempt_list(struct pc_store *ps, const char *vps_id, uint8_t proto, uint16_t lo, uint16_t hi,
                       size_t limit, pc_attempt_count_cb cb, void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
                return 0; /* the kernel counts no other */
        r = sql_query(s, &st,
                      "SELECT vps_id, direction, port, packets, last_seen FROM vps_attempt "
                      "WHERE vps_id = ? AND proto = ? AND port BETWEEN ? AND ? ORDER BY port, direction LIMIT ?",
                      "ttiii", vps_id, proto == IPPROTO_TCP ? "tcp" : "udp", (int64_t)lo, (int64_t)hi,
                      sql_limit(limit));
        if (r < 0)
                return r;
        while ((r = sql_step(s, st)) > 0) {
                struct pc_attempt_count a = {
                        .vps_id = col_text(st, 0),
                        .dir = strcmp(col_text(st, 1), "egress") == 0 ? PC_DIR_EGRESS : PC_DIR_INGRESS,
                        .proto = proto,
                        .port = (uint16_t)db_column_int64(st, 2),
                        .packets = (uint64_t)db_column_int64(st, 3),
                        .last_seen = db_column_int64(st, 4),
                };

                r = cb(&a, userdata);
                if (r < 0)
                        return r;
        }
        return r;
}
