/* VPSes: registering, updating, running state, removing, listing ids. */
#include "store/store-sql.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* Reads the VPS <id> as a JSON object (id, owner, lang, site, iface, mac,
 * addresses, created; host, moving_from and moving_iface, departing_from
 * and departing_iface if it has them)
 * into *<ret>,
 * owned by the caller.  -ENOENT if it does
 * not exist. */
int sql_vps_fetch(struct sql_store *s, const char *id, json_t **ret)
{
        _cleanup_stmt_ struct db_stmt *st = NULL, *ast = NULL;
        _cleanup_json_ json_t *addrs = NULL;
        json_t *v;
        int r;

        r = sql_query(s, &st,
                      "SELECT id, owner, lang, site, iface, mac, created, host, moving_from, moving_iface, departing_from, "
                      "departing_iface FROM vps "
                      "WHERE id = ?",
                      "t", id);
        if (r < 0)
                return r;
        r = sql_step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return sql_err(s, -ENOENT, "vps %s does not exist", id);
        r = sql_query(s, &ast, "SELECT prefix FROM vps_address WHERE vps_id = ? ORDER BY id", "t",
                      id);
        if (r < 0)
                return r;
        addrs = json_array();
        if (addrs == NULL)
                return sql_err(s, -ENOMEM, "out of memory");
        while ((r = sql_step(s, ast)) > 0)
                if (json_array_append_new(addrs, json_string(col_text(ast, 0))) < 0)
                        return sql_err(s, -ENOMEM, "out of memory");
        if (r < 0)
                return r;
        v = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:O, s:I}", "id", col_text(st, 0), "owner",
                      col_text(st, 1), "lang", col_text(st, 2), "site", col_text(st, 3), "iface",
                      col_text(st, 4), "mac", col_json_text(st, 5), "addresses", addrs,
                      "created", (json_int_t)db_column_int64(st, 6));
        /* Only where there is a fleet: a single host's VPSes read as before. */
        if (v != NULL && !db_column_is_null(st, 7) && json_object_set_new(v, "host", col_json_text(st, 7)) < 0)
                json_decref(v), v = NULL;
        if (v != NULL && !db_column_is_null(st, 8) &&
            (json_object_set_new(v, "moving_from", col_json_text(st, 8)) < 0 ||
             json_object_set_new(v, "moving_iface", col_json_text(st, 9)) < 0))
                json_decref(v), v = NULL;
        if (v != NULL && !db_column_is_null(st, 10) &&
            (json_object_set_new(v, "departing_from", col_json_text(st, 10)) < 0 ||
             json_object_set_new(v, "departing_iface", col_json_text(st, 11)) < 0))
                json_decref(v), v = NULL;
        if (v == NULL)
                return sql_err(s, -ENOMEM, "vps %s: cannot describe it in JSON", id);
        *ret = v;
        return 0;
}

/* Checks the fields of <vps> that the store keeps. */
static int check_vps(struct sql_store *s, const struct pc_vps *vps)
{
        if (strnlen(vps->id, sizeof(vps->id)) >= sizeof(vps->id) || !pc_name_valid(vps->id))
                return sql_err(s, -EINVAL,
                               "invalid vps id '%.63s': use 1-63 of a-z 0-9 . _ - starting "
                               "with a letter or digit",
                               vps->id);
        if (vps->site == NULL)
                return sql_err(s, -EINVAL, "vps %s has no site", vps->id);
        if (strnlen(vps->owner, sizeof(vps->owner)) >= sizeof(vps->owner) ||
            !pc_email_valid(vps->owner))
                return sql_err(s, -EINVAL, "vps %s: owner '%.255s' is not an email address",
                               vps->id, vps->owner);
        if (strnlen(vps->lang, sizeof(vps->lang)) >= sizeof(vps->lang) ||
            sql_check_text(s, "language", vps->lang, sizeof(vps->lang)) < 0)
                return sql_err(s, -EINVAL, "vps %s: bad language", vps->id);
        if (strnlen(vps->host, sizeof(vps->host)) >= sizeof(vps->host) ||
            (vps->host[0] != '\0' && !pc_name_valid(vps->host)))
                return sql_err(s, -EINVAL, "vps %s: bad host name '%.63s': use 1-63 of a-z 0-9 . _ -", vps->id,
                               vps->host);
        if (strnlen(vps->iface, sizeof(vps->iface)) >= sizeof(vps->iface) ||
            (vps->iface[0] != '\0' && !pc_ifname_valid(vps->iface)))
                return sql_err(s, -EINVAL, "vps %s: bad interface name '%.15s'", vps->id,
                               vps->iface);
        if (vps->n_addrs > PC_VPS_ADDRS_MAX)
                return sql_err(s, -ENOSPC, "vps %s has %zu addresses; the limit is %d", vps->id,
                               vps->n_addrs, PC_VPS_ADDRS_MAX);
        for (size_t i = 0; i < vps->n_addrs; i++) {
                const struct pc_prefix *p = &vps->addrs[i];

                if (!(p->family == AF_INET && p->len <= 32) &&
                    !(p->family == AF_INET6 && p->len <= 128))
                        return sql_err(s, -EINVAL, "vps %s: address %zu is not IPv4 or IPv6",
                                       vps->id, i + 1);
        }
        return 0;
}

/* Holds the VPS <id> for a change (sql_lock) and reads it as
 * sql_vps_fetch() does. */
int sql_vps_hold(struct sql_store *s, const char *id, json_t **ret)
{
        int r = sql_lock(s, "vps", id);

        return r < 0 ? r : sql_vps_fetch(s, id, ret);
}

/* Binds prefix <p>'s network (4 or 16 bytes, network order: byte order
 * is address order) to parameter <i> of <st>. */
int sql_bind_net(struct sql_store *s, struct db_stmt *st, int i, const struct pc_prefix *p)
{
        int r = db_bind_blob(st, i, p->bytes, p->family == AF_INET ? 4 : 16);

        return r >= 0 ? 0 : sql_fail(s, r, "binding an address");
}

/* Writes address <p> (formatted <prefix>) of <vps_id>, with the network
 * and length that pc_store_addr_holder's index looks up. */
static int addr_insert(struct sql_store *s, const char *vps_id, const struct pc_prefix *p, const char *prefix)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        r = sql_query(s, &st, "INSERT INTO vps_address (vps_id, family, prefix, len, net) VALUES (?, ?, ?, ?, ?)",
                      "titi", vps_id, (int64_t)(p->family == AF_INET ? 4 : 6), prefix, (int64_t)p->len);
        if (r >= 0)
                r = sql_bind_net(s, st, 5, p);
        if (r >= 0)
                r = sql_step(s, st);
        return r < 0 ? r : 0;
}

/* Checks that no VPS but <id> is on interface <iface> of <host> ("": a
 * single host): the kernel knows a VPS by its interface, and two VPSes on
 * one would get each other's policy.  A VPS moving away from <host> still
 * holds its interface there.  -EEXIST naming the other. */
int sql_iface_free(struct sql_store *s, const char *id, const char *iface, const char *host)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        r = sql_query(s, &st,
                      "SELECT id FROM vps WHERE ?1 != '' AND id != ?2 "
                      "AND ((coalesce(host, '') = ?3 AND iface = ?1) OR (moving_from = ?3 AND moving_iface = ?1))",
                      "ttt", iface, id, host);
        if (r >= 0)
                r = sql_step(s, st);
        if (r < 0)
                return r;
        if (r > 0)
                return sql_err(s, -EEXIST, "interface %s%s%s is already %s's", iface, host[0] != '\0' ? " on " : "",
                               host, col_text(st, 0));
        return 0;
}

static int iface_free(struct sql_store *s, const struct pc_vps *vps)
{
        return sql_iface_free(s, vps->id, vps->iface, vps->host);
}

/* Writes the addresses of <vps>, each one nobody holds already (the
 * operations layer checked overlaps; this is the exact-match backstop). */
static int addrs_insert(struct sql_store *s, const struct pc_vps *vps)
{
        int r;

        for (size_t i = 0; i < vps->n_addrs; i++) {
                _cleanup_stmt_ struct db_stmt *st = NULL;
                char prefix[64];

                pc_format_prefix(&vps->addrs[i], prefix, sizeof(prefix));
                r = sql_query(s, &st, "SELECT vps_id FROM vps_address WHERE prefix = ?", "t", prefix);
                if (r < 0)
                        return r;
                r = sql_step(s, st);
                if (r < 0)
                        return r;
                if (r > 0) {
                        if (strcmp(col_text(st, 0), vps->id) == 0)
                                return sql_err(s, -EEXIST, "address %s is listed twice for %s",
                                               prefix, vps->id);
                        return sql_err(s, -EEXIST, "address %s is already assigned to %s",
                                       prefix, col_text(st, 0));
                }
                r = addr_insert(s, vps->id, &vps->addrs[i], prefix);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int vps_add_tx(struct sql_store *s, const struct pc_vps *vps,
                      const struct pc_actor *who, int64_t now)
{
        _cleanup_json_ json_t *after = NULL;
        char object[128], mac[18];
        int r;

        if (vps->has_mac)
                pc_format_mac(vps->mac, mac, sizeof(mac));
        r = iface_free(s, vps);
        if (r < 0)
                return r;
        r = sql_exec(s,
                     "INSERT INTO vps (id, owner, lang, site, iface, mac, created, host) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                     "ttttttit", vps->id, vps->owner, vps->lang, vps->site->name, vps->iface,
                     vps->has_mac ? mac : NULL, now, vps->host[0] != '\0' ? vps->host : NULL);
        if (r < 0)
                return r;
        if (db_changes(s->db) == 0)
                return sql_err(s, -EEXIST, "vps %s already exists", vps->id);
        r = addrs_insert(s, vps);
        if (r < 0)
                return r;
        r = sql_vps_fetch(s, vps->id, &after);
        if (r < 0)
                return r;
        snprintf(object, sizeof(object), "vps/%s", vps->id);
        return sql_audit(s, now, who, "vps.add", object, vps->id, NULL, after);
}

int store_vps_add(struct pc_store *ps, const struct pc_vps *vps, const struct pc_actor *who)
{
        struct sql_store *s = to_sql(ps);
        int r;

        r = sql_check_actor(s, who);
        if (r >= 0)
                r = check_vps(s, vps);
        if (r >= 0)
                r = sql_tx_begin(s);
        if (r < 0)
                return r;
        return sql_tx_end(s, vps_add_tx(s, vps, who, pc_now()));
}

/* Writes <vps>'s interface, MAC and addresses over those of the VPS of
 * that id, and audits the change; *<ret_changed> says whether there was
 * one (the caller rolls back if not). */
static int vps_update_tx(struct sql_store *s, const struct pc_vps *vps, const struct pc_actor *who,
                         int64_t now, bool *ret_changed)
{
        _cleanup_json_ json_t *before = NULL, *after = NULL;
        char object[128], mac[18];
        int r;

        r = sql_vps_hold(s, vps->id, &before);
        if (r < 0)
                return r;
        /* On the host it is on (an update does not move it). */
        r = sql_iface_free(s, vps->id, vps->iface,
                           json_object_get(before, "host") != NULL
                                   ? json_string_value(json_object_get(before, "host")) : "");
        if (r < 0)
                return r;
        if (vps->has_mac)
                pc_format_mac(vps->mac, mac, sizeof(mac));
        r = sql_exec(s, "UPDATE vps SET iface = ?, mac = ? WHERE id = ?", "ttt", vps->iface, vps->has_mac ? mac : NULL,
                     vps->id);
        if (r >= 0)
                r = sql_exec(s, "DELETE FROM vps_address WHERE vps_id = ?", "t", vps->id);
        if (r >= 0)
                r = addrs_insert(s, vps);
        if (r >= 0)
                r = sql_vps_fetch(s, vps->id, &after);
        if (r < 0)
                return r;
        *ret_changed = !json_equal(before, after);
        if (!*ret_changed)
                return 0;
        snprintf(object, sizeof(object), "vps/%s", vps->id);
        return sql_audit(s, now, who, "vps.update", object, vps->id, before, after);
}

int store_vps_update(struct pc_store *ps, const struct pc_vps *vps, const struct pc_actor *who,
                     bool *ret_changed)
{
        struct sql_store *s = to_sql(ps);
        bool changed = false;
        int r;

        r = sql_check_actor(s, who);
        if (r >= 0)
                r = check_vps(s, vps);
        if (r >= 0)
                r = sql_tx_begin(s);
        if (r < 0)
                return r;
        r = vps_update_tx(s, vps, who, pc_now(), &changed);
        /* Nothing to change: rolled back, so that a VM manager's hook
         * telling the same thing at every start leaves no trace. */
        r = sql_tx_end(s, r >= 0 && !changed ? -ECANCELED : r);
        if (r < 0 && r != -ECANCELED)
                return r;
        if (ret_changed != NULL)
                *ret_changed = changed;
        return 0;
}

static int vps_set_state_tx(struct sql_store *s, const char *id, bool running, const struct pc_actor *who,
                            int64_t now, bool *ret_changed)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        _cleanup_json_ json_t *before = NULL, *after = NULL;
        const char *want = running ? "running" : "stopped";
        char object[128];
        int r;

        r = sql_query(s, &st, "SELECT run_state FROM vps WHERE id = ?", "t", id);
        if (r >= 0)
                r = sql_step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return sql_err(s, -ENOENT, "vps %s does not exist", id);
        *ret_changed = strcmp(col_text(st, 0), want) != 0;
        if (!*ret_changed)
                return 0;
        before = json_pack("{s:s}", "run_state", col_text(st, 0));
        after = json_pack("{s:s}", "run_state", want);
        if (before == NULL || after == NULL)
                return sql_err(s, -ENOMEM, "vps %s: cannot describe its state in JSON", id);
        r = sql_exec(s, "UPDATE vps SET run_state = ?, run_since = ? WHERE id = ?", "tit", want, now, id);
        if (r < 0)
                return r;
        snprintf(object, sizeof(object), "vps/%s", id);
        return sql_audit(s, now, who, running ? "vps.start" : "vps.stop", object, id, before, after);
}

int store_vps_set_state(struct pc_store *ps, const char *id, bool running, const struct pc_actor *who,
                        bool *ret_changed)
{
        struct sql_store *s = to_sql(ps);
        bool changed = false;
        int r;

        r = sql_write_begin(s, who);
        if (r < 0)
                return r;
        r = sql_tx_end(s, vps_set_state_tx(s, id, running, who, pc_now(), &changed));
        if (r < 0)
                return r;
        if (ret_changed != NULL)
                *ret_changed = changed;
        return 0;
}

/* *<ret>: the termination of <vps_id> in force as JSON (action_json), or
 * NULL if there is none. */
static int termination_of(struct sql_store *s, const char *vps_id, json_t **ret)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        *ret = NULL;
        r = sql_query(s, &st, "SELECT id FROM action WHERE vps_id = ? AND terminated != 0 AND lifted_at IS NULL", "t",
                      vps_id);
        if (r < 0 || (r = sql_step(s, st)) <= 0)
                return r;
        return sql_action_fetch(s, db_column_int64(st, 0), ret);
}

static int vps_remove_tx(struct sql_store *s, const char *id, const struct pc_actor *who,
                         int64_t now)
{
        _cleanup_json_ json_t *before = NULL, *termination = NULL;
        char object[128];
        int r;

        r = sql_vps_hold(s, id, &before);
        if (r < 0)
                return r;
        /* Removing it would take its termination (and its history) with
         * it, and a `vps add` would bring it back unterminated. */
        r = termination_of(s, id, &termination);
        if (r < 0)
                return r;
        if (termination != NULL && !who->admin_override)
                return sql_err(s, -EPERM,
                               "%s is terminated (suspension #%lld): only an admin removes it "
                               "(--admin-override, audited)",
                               id, (long long)json_integer_value(json_object_get(termination, "id")));
        r = sql_exec(s, "DELETE FROM vps WHERE id = ?", "t", id);
        if (r < 0)
                return r;
        snprintf(object, sizeof(object), "vps/%s", id);
        r = sql_audit(s, now, who, "vps.remove", object, id, before, NULL);
        if (r < 0 || termination == NULL || who->webhook_url == NULL || who->webhook_url[0] == '\0')
                return r;
        /* Billing heard of the termination: its end, with the VPS gone (the
         * owner is not emailed of a removal). */
        if (json_object_set_new(termination, "by", json_string(who->by)) < 0 ||
            json_object_set_new(termination, "reason", who->reason != NULL ? json_string(who->reason) : json_null()) < 0 ||
            json_object_set_new(termination, "removed", json_true()) < 0)
                return sql_err(s, -ENOMEM, "%s: cannot describe its termination in JSON", id);
        return sql_webhook_queue(s, now, "vps.unterminated", who->webhook_url, before, termination);
}

int store_vps_remove(struct pc_store *ps, const char *id, const struct pc_actor *who)
{
        struct sql_store *s = to_sql(ps);
        int r;

        r = sql_write_begin(s, who);
        if (r < 0)
                return r;
        return sql_tx_end(s, vps_remove_tx(s, id, who, pc_now()));
}

int store_vps_ids(struct pc_store *ps, const char *owner, const char *host, const char *after, size_t limit,
                  int (*cb)(const char *id, void *userdata), void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int64_t lim = sql_limit(limit);
        int r;

        r = sql_query(s, &st,
                      "SELECT id FROM vps WHERE (?1 IS NULL OR owner = ?1) AND (?2 IS NULL OR host = ?2) AND id > ?3 "
                      "ORDER BY id LIMIT ?4",
                      "ttti", owner, host, after != NULL ? after : "", lim);
        if (r < 0)
                return r;
        while ((r = sql_step(s, st)) > 0) {
                r = cb(col_text(st, 0), userdata);
                if (r < 0)
                        return r;
        }
        return r;
}
