/* The fleet: where each VPS runs, how it moves from one hypervisor to
 * another without a moment unenforced, each agent's heartbeat, and the
 * feed's wake-up where the engine has one (store.h, "the fleet"). */
#include "store/store-sql.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* <name> of the JSON object <o>, or "" if it has none. */
static const char *member_or_empty(const json_t *o, const char *name)
{
        const char *v = json_string_value(json_object_get(o, name));

        return v != NULL ? v : "";
}

static int check_host(struct sql_store *s, const char *what, const char *host)
{
        if (host[0] != '\0' && (strlen(host) >= PC_NAME_MAX || !pc_name_valid(host)))
                return sql_err(s, -EINVAL, "%s: bad host name '%.63s': use 1-63 of a-z 0-9 . _ - starting with a "
                               "letter or digit", what, host);
        return 0;
}

/* Who keeps enforcing a VPS on <cur_host>, still held by <cur_moving>
 * ("": none) from an earlier move, while it moves to <host>: the last host
 * known to enforce it, unless that is <host> itself. */
static const char *keeper(const char *cur_host, const char *cur_moving, const char *host)
{
        const char *k = cur_moving[0] != '\0' ? cur_moving : cur_host;

        return strcmp(k, host) == 0 ? "" : k;
}

/* The interface on <k> ("": none), the keeper of a VPS held as <before>
 * (its host, or the host it is moving or departing from; never both one
 * of those and its host): its interface there. */
static const char *keeper_iface(const json_t *before, const char *k)
{
        if (k[0] == '\0')
                return "";
        if (strcmp(k, member_or_empty(before, "moving_from")) == 0)
                return member_or_empty(before, "moving_iface");
        if (strcmp(k, member_or_empty(before, "departing_from")) == 0)
                return member_or_empty(before, "departing_iface");
        return member_or_empty(before, "iface"); /* its host's */
}

static int vps_move_tx(struct sql_store *s, const char *id, const char *host, const char *iface,
                       const struct pc_actor *who, int64_t now, bool *ret_changed)
{
        _cleanup_json_ json_t *before = NULL, *after = NULL;
        const char *cur_host, *moving, *moving_iface, *new_iface, *departing;
        char object[128];
        int r;

        /* An interface named on the destination that another VPS has
         * there is refused before the VPS is looked up: answered after,
         * it told a VPS that exists (409) from one that does not (404) to
         * a bound agent, to which another host's VPS does not exist. */
        if (iface != NULL && host[0] != '\0') {
                r = sql_iface_free(s, id, iface, host);
                if (r < 0)
                        return r;
        }
        r = sql_vps_hold(s, id, &before);
        if (r < 0)
                return r;
        cur_host = member_or_empty(before, "host");
        new_iface = iface != NULL ? iface : member_or_empty(before, "iface");
        /* Back to the host that still holds it (a migration called off):
         * where its VM still is, on its interface there.  To any other
         * host, the name there must be said: an interface's name is the
         * host's (a VM that never left keeps its own, whatever the
         * database last said). */
        if (iface == NULL && host[0] != '\0' &&
            (strcmp(host, member_or_empty(before, "moving_from")) == 0 ||
             strcmp(host, member_or_empty(before, "departing_from")) == 0))
                new_iface = keeper_iface(before, host);
        else if (iface == NULL && strcmp(host, cur_host) != 0 && host[0] != '\0')
                return sql_err(s, -EINVAL, "moving %s to %s needs its interface there (--iface)", id, host);
        *ret_changed = strcmp(cur_host, host) != 0 || strcmp(new_iface, member_or_empty(before, "iface")) != 0;
        if (!*ret_changed)
                return 0;
        /* Between hosts (on one, only its interface changes); the keeper
         * keeps its interface there too. */
        moving = strcmp(cur_host, host) != 0 ? keeper(cur_host, member_or_empty(before, "moving_from"), host)
                                              : member_or_empty(before, "moving_from");
        moving_iface = keeper_iface(before, moving);
        /* The host whose word that the VM left it confirms the move: the
         * one it left, or the one that has still to say so from an earlier
         * move, through the arrival; none back there (a move undone).  The
         * host it is on cannot wipe it by moving it again. */
        departing = strcmp(cur_host, host) != 0 ? keeper(cur_host, member_or_empty(before, "departing_from"), host)
                                                 : member_or_empty(before, "departing_from");
        r = sql_iface_free(s, id, new_iface, host);
        if (r < 0)
                return r;
        r = sql_exec(s,
                     "UPDATE vps SET host = ?, moving_from = ?, moving_iface = ?, iface = ?, departing_from = ?, "
                     "departing_iface = ? WHERE id = ?",
                     "ttttttt", host[0] != '\0' ? host : NULL, moving[0] != '\0' ? moving : NULL,
                     moving[0] != '\0' ? moving_iface : NULL, new_iface, departing[0] != '\0' ? departing : NULL,
                     departing[0] != '\0' ? keeper_iface(before, departing) : NULL, id);
        if (r >= 0)
                r = sql_vps_fetch(s, id, &after);
        if (r < 0)
                return r;
        snprintf(object, sizeof(object), "vps/%s", id);
        return sql_audit(s, now, who, "vps.move", object, id, before, after);
}

int store_vps_move(struct pc_store *ps, const char *id, const char *host, const char *iface,
                   const struct pc_actor *who, bool *ret_changed)
{
        struct sql_store *s = to_sql(ps);
        bool changed = false;
        int r;

        host = host != NULL ? host : "";
        r = sql_check_actor(s, who);
        if (r >= 0)
                r = check_host(s, id, host);
        if (r >= 0 && iface != NULL && (strlen(iface) >= 16 || !pc_ifname_valid(iface)))
                r = sql_err(s, -EINVAL, "vps %s: bad interface name '%.15s'", id, iface);
        if (r >= 0)
                r = sql_tx_begin(s);
        if (r < 0)
                return r;
        r = vps_move_tx(s, id, host, iface, who, pc_now(), &changed);
        r = sql_tx_end(s, r >= 0 && !changed ? -ECANCELED : r);
        if (r < 0 && r != -ECANCELED)
                return r;
        if (ret_changed != NULL)
                *ret_changed = changed;
        return 0;
}

static int vps_arrived_tx(struct sql_store *s, const char *id, const char *host, const struct pc_actor *who,
                          int64_t now, bool *ret_changed)
{
        _cleanup_json_ json_t *before = NULL, *after = NULL;
        char object[128];
        int r;

        r = sql_vps_hold(s, id, &before);
        if (r < 0)
                return r;
        *ret_changed = strcmp(member_or_empty(before, "host"), host) == 0 &&
                       member_or_empty(before, "moving_from")[0] != '\0';
        if (!*ret_changed)
                return 0;
        r = sql_exec(s, "UPDATE vps SET moving_from = NULL, moving_iface = NULL WHERE id = ?", "t", id);
        if (r >= 0)
                r = sql_vps_fetch(s, id, &after);
        if (r < 0)
                return r;
        snprintf(object, sizeof(object), "vps/%s", id);
        return sql_audit(s, now, who, "vps.arrive", object, id, before, after);
}

int store_vps_arrived(struct pc_store *ps, const char *id, const char *host, const struct pc_actor *who)
{
        struct sql_store *s = to_sql(ps);
        bool changed = false;
        int r;

        r = sql_write_begin(s, who);
        if (r < 0)
                return r;
        r = vps_arrived_tx(s, id, host, who, pc_now(), &changed);
        r = sql_tx_end(s, r >= 0 && !changed ? -ECANCELED : r);
        return r == -ECANCELED ? 0 : r;
}

static int vps_departed_tx(struct sql_store *s, const char *id, const char *host, const struct pc_actor *who,
                           int64_t now, bool *ret_changed)
{
        _cleanup_json_ json_t *before = NULL, *after = NULL;
        char object[128];
        int r;

        r = sql_vps_hold(s, id, &before);
        if (r == -ENOENT) { /* removed meanwhile: nobody to tell */
                *ret_changed = false;
                return 0;
        }
        if (r < 0)
                return r;
        *ret_changed = host[0] != '\0' && strcmp(member_or_empty(before, "departing_from"), host) == 0;
        if (!*ret_changed)
                return 0;
        /* The audit row first: with a host's own database role (schema 16)
         * it may write it while the VPS still names it. */
        after = json_deep_copy(before);
        if (after == NULL || json_object_del(after, "departing_from") < 0 ||
            json_object_del(after, "departing_iface") < 0)
                return sql_err(s, -ENOMEM, "out of memory");
        snprintf(object, sizeof(object), "vps/%s", id);
        r = sql_audit(s, now, who, "vps.depart", object, id, before, after);
        if (r >= 0)
                r = sql_exec(s, "UPDATE vps SET departing_from = NULL, departing_iface = NULL WHERE id = ?", "t", id);
        return r;
}

int store_vps_departed(struct pc_store *ps, const char *id, const char *host, const struct pc_actor *who,
                       bool *ret_recorded)
{
        struct sql_store *s = to_sql(ps);
        bool changed = false;
        int r;

        r = sql_write_begin(s, who);
        if (r < 0)
                return r;
        r = vps_departed_tx(s, id, host, who, pc_now(), &changed);
        r = sql_tx_end(s, r >= 0 && !changed ? -ECANCELED : r);
        if (r < 0 && r != -ECANCELED)
                return r;
        if (ret_recorded != NULL)
                *ret_recorded = changed;
        return 0;
}

int store_vps_departing(struct pc_store *ps, const char *host, const char *after, size_t limit,
                        pc_departing_cb cb, void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        /* (vps_departing_from, a partial index: the rows of moves not
         * confirmed, not the fleet's.) */
        r = sql_query(s, &st,
                      "SELECT id, departing_iface FROM vps WHERE departing_from = ? AND id > ? ORDER BY id LIMIT ?",
                      "tti", host, after, limit == 0 || limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
        if (r < 0)
                return r;
        while ((r = sql_step(s, st)) > 0) {
                r = cb(col_text(st, 0), col_text(st, 1), userdata);
                if (r < 0)
                        return r;
        }
        return r;
}

int store_agent_beat(struct pc_store *ps, const struct pc_agent_beat *b)
{
        struct sql_store *s = to_sql(ps);
        int r;

        r = check_host(s, "agent", b->host);
        if (r >= 0 && b->host[0] == '\0')
                r = sql_err(s, -EINVAL, "an agent's heartbeat needs its host");
        if (r < 0)
                return r;
        return sql_exec(s,
                        "INSERT INTO agent (host, started, heartbeat, change_seen, changes, vpses, in_sync, version) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (host) DO UPDATE SET started = excluded.started, "
                        "heartbeat = excluded.heartbeat, change_seen = excluded.change_seen, "
                        "changes = excluded.changes, vpses = excluded.vpses, in_sync = excluded.in_sync, "
                        "version = excluded.version",
                        "tiiiiiit", b->host, b->started, b->heartbeat, b->change_seen,
                        b->changes > INT64_MAX ? INT64_MAX : (int64_t)b->changes,
                        b->vpses > INT64_MAX ? INT64_MAX : (int64_t)b->vpses, (int64_t)b->in_sync, b->version);
}

int store_agent_list(struct pc_store *ps, pc_agent_beat_cb cb, void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        struct pc_agent_beat b;
        int r;

        r = sql_query(s, &st,
                      "SELECT host, started, heartbeat, change_seen, changes, vpses, in_sync, version, "
                      "(SELECT count(*) FROM vps WHERE vps.departing_from = agent.host) FROM agent ORDER BY host",
                      "");
        if (r < 0)
                return r;
        while ((r = sql_step(s, st)) > 0) {
                memset(&b, 0, sizeof(b));
                copy_trunc(b.host, sizeof(b.host), col_text(st, 0));
                b.started = db_column_int64(st, 1);
                b.heartbeat = db_column_int64(st, 2);
                b.change_seen = db_column_int64(st, 3);
                b.changes = (uint64_t)db_column_int64(st, 4);
                b.vpses = (uint64_t)db_column_int64(st, 5);
                b.in_sync = db_column_int64(st, 6) != 0;
                copy_trunc(b.version, sizeof(b.version), col_text(st, 7));
                b.unconfirmed = (uint64_t)db_column_int64(st, 8);
                r = cb(&b, userdata);
                if (r < 0)
                        return r;
        }
        return r;
}

void pc_store_background_reconnect(struct pc_store *ps)
{
        db_pg_background_reconnect(to_sql(ps)->db);
}

bool pc_store_connected(struct pc_store *ps)
{
        struct db *db;

        if (ps == NULL)
                return false; /* none opened: away */
        db = to_sql(ps)->db;

        return db->driver->connected == NULL || db->driver->connected(db);
}

int pc_store_journal_mark(struct pc_store *ps, const char *op, int64_t at)
{
        struct sql_store *s = to_sql(ps);
        int r = sql_exec(s, "INSERT INTO agent_journal (op, at) VALUES (?, ?)", "ti", op, at);

        if (r == -EEXIST)
                return sql_err(s, r, "journal entry %s is applied already", op);
        return r;
}

/* ---- the feed's wake-up ---------------------------------------------- */

/* A store watch is the driver's listener. */
struct pc_store_watch {
        struct db_listener *l;
};

static int agent_role_tx(struct sql_store *s, const char *host, const char *role)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        r = sql_query(s, &st, "SELECT 1 FROM pg_roles WHERE rolname = ?", "t", role);
        if (r >= 0)
                r = sql_step(s, st);
        if (r == 0)
                return sql_err(s, -ENOENT,
                               "database %s has no role %s: create it first, with its password (createuser "
                               "--pwprompt %s), as a role that may create roles",
                               s->db->name, role, role);
        if (r < 0)
                return r;
        /* The mapping and the grants, in schema_pg.sql's function. */
        return sql_exec(s, "SELECT portcullis_agent_role(?, ?)", "tt", role, host);
}

int store_agent_role(struct pc_store *ps, const char *host, const char *role)
{
        struct sql_store *s = to_sql(ps);
        int r;

        if (strcmp(s->db->driver->name, "postgresql") != 0)
                return sql_err(s, -EOPNOTSUPP,
                               "database %s: per-host roles are PostgreSQL's (a %s database has one hypervisor "
                               "and no roles)",
                               s->db->name, s->db->driver->name);
        r = sql_tx_begin(s);
        if (r < 0)
                return r;
        return sql_tx_end(s, agent_role_tx(s, host, role));
}

int store_watch_open(struct pc_store *ps, const char *host, struct pc_store_watch **ret)
{
        struct sql_store *s = to_sql(ps);
        struct pc_store_watch *w;
        int r;

        if (s->db->driver->listen == NULL)
                return sql_err(s, -EOPNOTSUPP, "database %s: a %s database does not announce its changes",
                               s->db->name, s->db->driver->name);
        w = calloc(1, sizeof(*w));
        if (w == NULL)
                return sql_err(s, -ENOMEM, "out of memory");
        r = s->db->driver->listen(s->db, "portcullis_change", host, &w->l);
        if (r < 0) {
                free(w);
                return sql_fail(s, r, "listening for changes");
        }
        *ret = w;
        return 0;
}

int pc_store_watch_fd(struct pc_store_watch *w)
{
        return w->l->ops->fd(w->l);
}

bool pc_store_watch_wants_write(struct pc_store_watch *w)
{
        return w->l->ops->wants_write(w->l);
}

int pc_store_watch_ready(struct pc_store_watch *w, bool *ret_changed, const char **ret_why)
{
        return w->l->ops->ready(w->l, ret_changed, ret_why);
}

void pc_store_watch_close(struct pc_store_watch *w)
{
        if (w == NULL)
                return;
        w->l->ops->close(w->l);
        free(w);
}
