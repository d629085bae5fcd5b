/* Loading the policy in force into the model: every VPS, a host's, or one, with its
 * addresses, exceptions and actions, in one read transaction of four
 * ordered SELECTs merged by VPS id. */
#include "store/store-sql.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* A statement stepped in step with others while merging (see load). */
struct cursor {
        struct db_stmt *st;
        bool row;       /* a row is current */
        const char *id; /* its VPS id (column 0), read once per row */
};

static int cursor_next(struct sql_store *s, struct cursor *c)
{
        int r = sql_step(s, c->st);

        if (r < 0)
                return r;
        c->row = r > 0;
        c->id = c->row ? col_text(c->st, 0) : NULL;
        return 0;
}

/* Moves <c> (ordered by vps_id in column 0) past rows of VPSes before
 * <id>, which cannot exist with foreign keys on, but cost nothing to skip. */
static int cursor_seek(struct sql_store *s, struct cursor *c, const char *id)
{
        int r = 0;

        while (r >= 0 && c->row && strcmp(c->id, id) < 0)
                r = cursor_next(s, c);
        return r;
}

static bool cursor_at(const struct cursor *c, const char *id)
{
        return c->row && strcmp(c->id, id) == 0;
}

/* Adds the address rows (vps_id, prefix) of <vps> at <c> to it. */
static int load_addrs(struct sql_store *s, struct cursor *c, struct pc_vps *vps)
{
        int r = cursor_seek(s, c, vps->id);

        for (; r >= 0 && cursor_at(c, vps->id); r = cursor_next(s, c)) {
                struct pc_prefix p;

                if (pc_parse_prefix(col_text(c->st, 1), false, &p) < 0)
                        return sql_err(s, -EINVAL, "%s: bad address '%s' in the database",
                                       vps->id, col_text(c->st, 1));
                r = pc_vps_add_addr(vps, &p);
                if (r < 0)
                        return sql_err(s, r, "%s: cannot add address %s: %s", vps->id,
                                       col_text(c->st, 1), strerror(-r));
        }
        return r;
}

/* Adds the exception rows (vps_id, id, service, ticket_id, by, reason,
 * created, until) of <vps> at <c> to it. */
static int load_exceptions(struct sql_store *s, struct cursor *c, struct pc_vps *vps)
{
        int r = cursor_seek(s, c, vps->id);

        for (; r >= 0 && cursor_at(c, vps->id); r = cursor_next(s, c)) {
                struct pc_exception e;

                sql_exception_read(c->st, &e);
                r = pc_vps_add_exception(vps, &e);
                if (r < 0)
                        return sql_err(s, r, "%s: cannot add exception #%lld for %s: %s",
                                       vps->id, (long long)e.id, e.service, strerror(-r));
        }
        return r;
}

/* Parses a filter's stored <scope> into <f>. */
static int parse_scope(struct sql_store *s, const struct pc_config *cfg, const char *vps_id,
                       const char *scope, struct pc_filter *f)
{
        char perr[128];

        if (strcmp(scope, "all") == 0) {
                f->scope = PC_SCOPE_ALL;
        } else if (strncmp(scope, "service:", 8) == 0) {
                f->scope = PC_SCOPE_SERVICE;
                f->service = pc_config_service(cfg, scope + 8);
                if (f->service == NULL)
                        return sql_err(s, -ENOENT,
                                       "%s: filter #%lld: service '%s' is not in the "
                                       "configuration",
                                       vps_id, (long long)f->id, scope + 8);
        } else {
                f->scope = PC_SCOPE_PORTS;
                if (pc_port_range_parse(scope, &f->ports, perr, sizeof(perr)) < 0)
                        return sql_err(s, -EINVAL, "%s: filter #%lld: bad scope '%s': %s",
                                       vps_id, (long long)f->id, scope, perr);
        }
        return 0;
}

/* Adds the action rows (vps_id, id, kind, direction, scope, incident_id,
 * by, reason, created, until) of <vps> at <c> to it: filters and the
 * suspension. */
static int load_actions(struct sql_store *s, const struct pc_config *cfg, struct cursor *c,
                        struct pc_vps *vps)
{
        int r = cursor_seek(s, c, vps->id);

        for (; r >= 0 && cursor_at(c, vps->id); r = cursor_next(s, c)) {
                int64_t id = db_column_int64(c->st, 1);
                const char *kind = col_text(c->st, 2);

                if (strcmp(kind, "suspension") == 0) {
                        struct pc_suspension *su = &vps->suspension;

                        vps->suspended = true;
                        su->id = id;
                        su->incident_id = db_column_int64(c->st, 5);
                        copy_trunc(su->by, sizeof(su->by), col_text(c->st, 6));
                        copy_trunc(su->reason, sizeof(su->reason), col_text(c->st, 7));
                        su->created = db_column_int64(c->st, 8);
                        su->terminated = db_column_int64(c->st, 10) != 0;
                } else {
                        struct pc_filter f = { 0 };

                        f.id = id;
                        if (pc_dir_parse(col_text(c->st, 3), &f.direction) < 0)
                                return sql_err(s, -EINVAL,
                                               "%s: filter #%lld: bad direction '%s'", vps->id,
                                               (long long)id, col_text(c->st, 3));
                        r = parse_scope(s, cfg, vps->id, col_text(c->st, 4), &f);
                        if (r < 0)
                                return r;
                        f.incident_id = db_column_int64(c->st, 5);
                        copy_trunc(f.by, sizeof(f.by), col_text(c->st, 6));
                        copy_trunc(f.reason, sizeof(f.reason), col_text(c->st, 7));
                        f.created = db_column_int64(c->st, 8);
                        f.until = db_column_int64(c->st, 9);
                        r = pc_vps_add_filter(vps, &f);
                        if (r < 0)
                                return sql_err(s, r, "%s: cannot add filter #%lld: %s",
                                               vps->id, (long long)id, strerror(-r));
                }
        }
        return r;
}

/* Builds the VPS of the current row of <v> (id, owner, lang, site, iface,
 * mac, created, run_state, run_since, host, moving_from, moving_iface,
 * departing_from, departing_iface) with what the other cursors hold for
 * it, and adds it to <m>. */
static int load_one(struct sql_store *s, struct pc_model *m, struct cursor *v,
                    struct cursor *a, struct cursor *e, struct cursor *f)
{
        const struct pc_config *cfg = pc_model_config(m);
        struct pc_vps *vps = NULL;
        const char *site = col_text(v->st, 3);
        int r;

        r = pc_vps_new(&vps);
        if (r < 0)
                return sql_err(s, r, "out of memory");
        copy_trunc(vps->id, sizeof(vps->id), col_text(v->st, 0));
        copy_trunc(vps->owner, sizeof(vps->owner), col_text(v->st, 1));
        copy_trunc(vps->lang, sizeof(vps->lang), col_text(v->st, 2));
        vps->site = pc_config_site(cfg, site);
        if (vps->site == NULL) {
                r = sql_err(s, -ENOENT, "%s: site '%s' is not in the configuration", vps->id,
                            site);
                goto out;
        }
        copy_trunc(vps->iface, sizeof(vps->iface), col_text(v->st, 4));
        if (!db_column_is_null(v->st, 5)) {
                if (pc_parse_mac(col_text(v->st, 5), vps->mac) < 0) {
                        r = sql_err(s, -EINVAL, "%s: bad MAC '%s' in the database", vps->id,
                                    col_text(v->st, 5));
                        goto out;
                }
                vps->has_mac = true;
        }
        vps->created = db_column_int64(v->st, 6);
        vps->stopped = strcmp(col_text(v->st, 7), "stopped") == 0;
        vps->run_since = db_column_int64(v->st, 8);
        copy_trunc(vps->host, sizeof(vps->host), col_text(v->st, 9));
        copy_trunc(vps->moving_from, sizeof(vps->moving_from), col_text(v->st, 10));
        copy_trunc(vps->moving_iface, sizeof(vps->moving_iface), col_text(v->st, 11));
        copy_trunc(vps->departing_from, sizeof(vps->departing_from), col_text(v->st, 12));
        copy_trunc(vps->departing_iface, sizeof(vps->departing_iface), col_text(v->st, 13));

        r = load_addrs(s, a, vps);
        if (r >= 0)
                r = load_exceptions(s, e, vps);
        if (r >= 0)
                r = load_actions(s, cfg, f, vps);
        if (r < 0)
                goto out;
        pc_vps_reindex(vps);
        r = pc_model_add(m, vps);
        if (r < 0) {
                sql_err(s, r, "%s: cannot add it to the model: %s", vps->id, strerror(-r));
                goto out;
        }
        vps = NULL; /* the model owns it */
out:
        pc_vps_free(vps);
        return r;
}

/* Empties <m> again after a failed load. */
static void model_clear(struct pc_model *m)
{
        while (pc_model_count(m) > 0) {
                char id[PC_NAME_MAX];

                copy_trunc(id, sizeof(id), pc_model_at(m, 0)->id);
                if (pc_model_remove(m, id) < 0)
                        break;
        }
}

/* What a load reads: every VPS, one (<only>), or those a host's agent
 * enforces (<host>: those on it, and those moving away from it). */
enum load_scope { LOAD_ALL, LOAD_ONE, LOAD_HOST };

/* Loads everything in force, in one read transaction: four ordered
 * SELECTs (VPSes, addresses, exceptions, actions) merged by VPS id in one
 * pass, so the cost is one scan of each table whatever the fleet's size. */
static int load_into(struct sql_store *s, struct pc_model *m, enum load_scope scope, const char *key)
{
        _cleanup_stmt_ struct db_stmt *vst = NULL, *ast = NULL, *est = NULL, *fst = NULL;
        struct cursor v, a, e, f;
        int64_t now = pc_now();
        int r;

        /* Within an operation's transaction, that one is the snapshot. */
        bool own_tx = s->tx_depth == 0;

        if (pc_model_count(m) != 0)
                return sql_err(s, -EINVAL, "cannot load into a model that is not empty");
        r = own_tx ? db_begin_read(s->db) : 0;
        if (r < 0)
                r = sql_fail(s, r, "executing a statement");
        if (r < 0)
                return r;
        /* Every VPS, one, or a host's: separate texts so that the single
         * fetch is an index lookup, not a scan. */
#define LOAD_VPS_COLUMNS "id, owner, lang, site, iface, mac, created, run_state, run_since, host, moving_from, moving_iface, " \
        "departing_from, departing_iface"
#define LOAD_EXCEPTION_COLUMNS "vps_id, id, service, ticket_id, \"by\", reason, created, until, ports"
#define LOAD_ACTION_COLUMNS "vps_id, id, kind, direction, scope, incident_id, \"by\", reason, created, until, terminated"
#define OF_HOST "vps_id IN (SELECT id FROM vps WHERE host = ?1 OR moving_from = ?1)"
        static const char *const sql[3][4] = {
                [LOAD_ALL] = {
                        "SELECT " LOAD_VPS_COLUMNS " FROM vps WHERE ?1 IS NULL ORDER BY id",
                        "SELECT vps_id, prefix FROM vps_address WHERE ?1 IS NULL ORDER BY vps_id, id",
                        "SELECT " LOAD_EXCEPTION_COLUMNS " FROM exception WHERE ?1 IS NULL AND revoked_at IS NULL "
                        "AND (until IS NULL OR until > ?2) ORDER BY vps_id, id",
                        "SELECT " LOAD_ACTION_COLUMNS " FROM action WHERE ?1 IS NULL AND lifted_at IS NULL "
                        "AND (until IS NULL OR until > ?2) ORDER BY vps_id, id" },
                [LOAD_ONE] = {
                        "SELECT " LOAD_VPS_COLUMNS " FROM vps WHERE id = ?1",
                        "SELECT vps_id, prefix FROM vps_address WHERE vps_id = ?1 ORDER BY id",
                        "SELECT " LOAD_EXCEPTION_COLUMNS " FROM exception WHERE vps_id = ?1 AND revoked_at IS NULL "
                        "AND (until IS NULL OR until > ?2) ORDER BY id",
                        "SELECT " LOAD_ACTION_COLUMNS " FROM action WHERE vps_id = ?1 AND lifted_at IS NULL "
                        "AND (until IS NULL OR until > ?2) ORDER BY id" },
                [LOAD_HOST] = {
                        "SELECT " LOAD_VPS_COLUMNS " FROM vps WHERE host = ?1 OR moving_from = ?1 ORDER BY id",
                        "SELECT vps_id, prefix FROM vps_address WHERE " OF_HOST " ORDER BY vps_id, id",
                        "SELECT " LOAD_EXCEPTION_COLUMNS " FROM exception WHERE " OF_HOST " AND revoked_at IS NULL "
                        "AND (until IS NULL OR until > ?2) ORDER BY vps_id, id",
                        "SELECT " LOAD_ACTION_COLUMNS " FROM action WHERE " OF_HOST " AND lifted_at IS NULL "
                        "AND (until IS NULL OR until > ?2) ORDER BY vps_id, id" },
        };
#undef LOAD_VPS_COLUMNS
#undef LOAD_EXCEPTION_COLUMNS
#undef LOAD_ACTION_COLUMNS
#undef OF_HOST
        const char *const *q = sql[scope];
        const char *only = key;

        r = sql_query(s, &vst, q[0], "t", only);
        if (r >= 0)
                r = sql_query(s, &ast, q[1], "t", only);
        if (r >= 0)
                r = sql_query(s, &est, q[2], "ti", only, now);
        if (r >= 0)
                r = sql_query(s, &fst, q[3], "ti", only, now);
        if (r < 0)
                goto out;
        v = (struct cursor){ vst, false, NULL };
        a = (struct cursor){ ast, false, NULL };
        e = (struct cursor){ est, false, NULL };
        f = (struct cursor){ fst, false, NULL };
        r = cursor_next(s, &a);
        if (r >= 0)
                r = cursor_next(s, &e);
        if (r >= 0)
                r = cursor_next(s, &f);
        if (r >= 0)
                r = cursor_next(s, &v);
        while (r >= 0 && v.row) {
                r = load_one(s, m, &v, &a, &e, &f);
                if (r >= 0)
                        r = cursor_next(s, &v);
        }
out:
        /* Finalize before ending the read transaction, which cannot lose
         * anything. */
        db_stmt_release(vst);
        db_stmt_release(ast);
        db_stmt_release(est);
        db_stmt_release(fst);
        vst = ast = est = fst = NULL;
        if (own_tx)
                sql_tx_end(s, -1);
        if (r < 0) {
                model_clear(m);
                return r;
        }
        return 0;
}

int store_load(struct pc_store *ps, struct pc_model *m, const char *host)
{
        return load_into(to_sql(ps), m, host != NULL ? LOAD_HOST : LOAD_ALL, host);
}

/* Loads the one VPS <id> through the same path as store_load, into a model
 * of its own, and hands it over. */
int store_vps_fetch(struct pc_store *ps, const struct pc_config *cfg, const char *id,
                    struct pc_vps **ret)
{
        struct sql_store *s = to_sql(ps);
        struct pc_model *m = NULL;
        int r = pc_model_new(cfg, &m);

        if (r < 0)
                return sql_err(s, r, "out of memory");
        r = load_into(s, m, LOAD_ONE, id);
        if (r >= 0 && pc_model_count(m) == 0)
                r = sql_err(s, -ENOENT, "vps %s does not exist", id);
        if (r >= 0)
                r = pc_model_take(m, id, ret);
        pc_model_free(m);
        return r < 0 ? r : 0;
}
