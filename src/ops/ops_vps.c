/* The VPS registry's operations: register, update, move, start and stop, remove
 * (ops.h), and the fleet's agents as their heartbeats say. */
#include "ops/ops.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "base/util.h"

#define REASON_SIZE 256 /* bytes of a stored reason, with its NUL */

/* The languages the shipped templates are written in. */
static const char *const languages[] = { "en", "it" };

static int check_id(const char *id, struct pc_ops_error *err)
{
        if (id == NULL || strlen(id) >= PC_NAME_MAX || !pc_name_valid(id))
                return pc_ops_fail(err, PC_OPS_EINVAL, "id",
                                   "'%s' is not a valid VPS id (1-63 of a-z 0-9 . _ -, starting with a letter or digit)",
                                   id != NULL ? id : "");
        return 0;
}

static int check_owner(const char *owner, struct pc_ops_error *err)
{
        if (owner == NULL)
                return pc_ops_fail(err, PC_OPS_EINVAL, "owner", "EMAIL is required (notifications go there)");
        if (pc_ops_text_check("owner", owner, sizeof(((struct pc_vps *)0)->owner), err) < 0)
                return -EINVAL;
        if (!pc_email_valid(owner))
                return pc_ops_fail(err, PC_OPS_EINVAL, "owner", "'%s' is not a valid email address", owner);
        return 0;
}

static int check_iface(const char *iface, struct pc_ops_error *err)
{
        if (iface == NULL)
                return pc_ops_fail(err, PC_OPS_EINVAL, "iface", "IF is required (the VPS's host-side interface)");
        if (!pc_ifname_valid(iface))
                return pc_ops_fail(err, PC_OPS_EINVAL, "iface", "'%s' is not a valid interface name", iface);
        if (strcmp(iface, "lo") == 0)
                return pc_ops_fail(err, PC_OPS_EINVAL, "iface", "lo is the hypervisor's loopback, not a VPS's interface");
        return 0;
}

/* NULL or "": none (a single host). */
static int check_host(const char *host, struct pc_ops_error *err)
{
        if (host != NULL && host[0] != '\0' && (strlen(host) >= PC_NAME_MAX || !pc_name_valid(host)))
                return pc_ops_fail(err, PC_OPS_EINVAL, "host",
                                   "host '%.63s' is not a name: use 1-63 of a-z 0-9 . _ - starting with a letter "
                                   "or digit",
                                   host);
        return 0;
}

static int check_lang(const char *lang, struct pc_ops_error *err)
{
        for (size_t i = 0; i < PC_ARRAY_SIZE(languages); i++)
                if (strcmp(lang, languages[i]) == 0)
                        return 0;
        return pc_ops_fail(err, PC_OPS_EINVAL, "lang", "'%s' is not supported (en, it)", lang);
}

/* <p> as given: an address alone when it is one host ("127.0.0.1"). */
static void format_addr(const struct pc_prefix *p, char *buf, size_t size)
{
        pc_format_prefix(p, buf, size);
        if (p->len == (p->family == AF_INET ? 32 : 128) && strchr(buf, '/') != NULL)
                *strchr(buf, '/') = '\0';
}

/* Each address can be a VPS's, and no two of them overlap: the VPS would
 * own one address twice. */
static int check_addrs(const struct pc_prefix *addrs, size_t n, struct pc_ops_error *err)
{
        char pa[64], pb[64];

        if (n == 0)
                return pc_ops_fail(err, PC_OPS_EINVAL, "addresses",
                                   "is required: at least one address or prefix (e.g. 203.0.113.10, 2001:db8:1::/64)");
        if (n > PC_VPS_ADDRS_MAX)
                return pc_ops_fail(err, PC_OPS_EINVAL, "addresses", "has %zu values; at most %d", n, PC_VPS_ADDRS_MAX);
        for (size_t a = 0; a < n; a++) {
                format_addr(&addrs[a], pa, sizeof(pa));
                if (addrs[a].family != AF_INET && addrs[a].family != AF_INET6)
                        return pc_ops_fail(err, PC_OPS_EINVAL, "addresses", "value %zu is not IPv4 or IPv6", a + 1);
                if (pc_prefix_unassignable(&addrs[a]) != NULL)
                        return pc_ops_fail(err, PC_OPS_EINVAL, "addresses", "%s cannot be a VPS's: it is %s", pa,
                                           pc_prefix_unassignable(&addrs[a]));
                for (size_t b = 0; b < a; b++)
                        if (pc_prefix_overlaps(&addrs[a], &addrs[b])) {
                                format_addr(&addrs[b], pb, sizeof(pb));
                                return pc_ops_fail(err, PC_OPS_EINVAL, "addresses", "values %s and %s overlap each other",
                                                   pb, pa);
                        }
        }
        return 0;
}

/* The site a VPS goes to: the one named, else the default. */
static int resolve_site(struct pc_ops *o, const struct pc_vps_spec *spec, const struct pc_site **ret,
                        struct pc_ops_error *err)
{
        const struct pc_site *site;

        if (spec->site == NULL && o->cfg->default_site == NULL)
                return pc_ops_fail(err, PC_OPS_EINVAL, "site", "is required: the configuration has no default-site");
        site = spec->site != NULL ? pc_config_site(o->cfg, spec->site) : o->cfg->default_site;
        if (site == NULL)
                return pc_ops_fail(err, PC_OPS_EINVAL, "site", "'%s' is not in %s", spec->site,
                                   o->cfg->path != NULL ? o->cfg->path : "the configuration");
        /* A bridged VPS's frames are checked against its MAC: without one
         * anti-spoofing could not tell it from a neighbour. */
        if (site->topology == PC_TOPOLOGY_BRIDGED && site->policy->anti_spoofing && spec->mac == NULL)
                return pc_ops_fail(err, PC_OPS_EINVAL, "mac",
                                   "is required at site %s: it is bridged, and a bridged VPS may only send frames "
                                   "from its own MAC", site->name);
        *ret = site;
        return 0;
}

/* Each of the fields of <spec>, alone and together. */
static int check_spec(struct pc_ops *o, const struct pc_vps_spec *spec, const char *reason,
                      const struct pc_site **ret_site, struct pc_ops_error *err)
{
        int r;

        if ((r = check_id(spec->id, err)) < 0 || (r = check_owner(spec->owner, err)) < 0 ||
            (r = check_iface(spec->iface, err)) < 0 || (r = check_addrs(spec->addrs, spec->n_addrs, err)) < 0 ||
            (r = check_lang(spec->lang != NULL ? spec->lang : "en", err)) < 0 || (r = check_host(spec->host, err)) < 0 ||
            (r = pc_ops_text_check("reason", reason, REASON_SIZE, err)) < 0)
                return r;
        if (spec->mac != NULL && (spec->mac[0] & 1))
                return pc_ops_fail(err, PC_OPS_EINVAL, "mac", "is not a unicast MAC address");
        return resolve_site(o, spec, ret_site, err);
}

/* Nobody but <self> (NULL: nobody) holds the MAC or any address of
 * <spec>: overlapping addresses would let one VPS speak as another, and
 * so would a granted source prefix.  Indexed lookups, whatever the
 * fleet's size. */
static int check_fleet(struct pc_ops *o, const struct pc_ops_actor *who, const struct pc_vps_spec *spec,
                       const char *self, struct pc_ops_error *err)
{
        char other[PC_NAME_MAX], pa[64];
        struct pc_addr_holder h;
        /* To a bound agent another host's VPS does not exist: which VPS
         * holds an address or a MAC is not its to learn (it would map the
         * fleet through refused registrations, nothing written). */
        bool name_it = pc_ops_actor_host(who) == NULL;
        int r;

        if (spec->mac != NULL) {
                r = pc_store_mac_holder(o->store, spec->mac, self, other, sizeof(other));
                if (r < 0)
                        return pc_ops_store_fail(o, r, NULL, err);
                if (r > 0) {
                        pc_format_mac(spec->mac, pa, sizeof(pa));
                        return pc_ops_fail(err, PC_OPS_ECONFLICT, "mac", "MAC %s is already %s's", pa,
                                           name_it ? other : "another VPS");
                }
        }
        for (size_t a = 0; a < spec->n_addrs; a++) {
                r = pc_store_addr_holder(o->store, &spec->addrs[a], self, PC_ADDR_REGISTERED | PC_ADDR_GRANTED,
                                         pc_now(), &h);
                if (r < 0)
                        return pc_ops_store_fail(o, r, NULL, err);
                if (r == 0)
                        continue;
                pc_format_prefix(&spec->addrs[a], pa, sizeof(pa));
                if (!name_it)
                        return pc_ops_fail(err, PC_OPS_ECONFLICT, "addresses",
                                           "address %s overlaps an address of another VPS", pa);
                return pc_ops_fail(err, PC_OPS_ECONFLICT, "addresses",
                                   h.exception ? "address %s overlaps %s granted to %s" : "address %s overlaps %s of %s",
                                   pa, h.what, h.vps_id);
        }
        return 0;
}

/* <spec> as the store's VPS, at <site>. */
static int vps_build(const struct pc_vps_spec *spec, const struct pc_site *site, struct pc_vps **ret,
                     struct pc_ops_error *err)
{
        struct pc_vps *vps;

        if (pc_vps_new(&vps) < 0)
                return pc_ops_fail(err, PC_OPS_EIO, NULL, "out of memory");
        snprintf(vps->id, sizeof(vps->id), "%s", spec->id);
        snprintf(vps->owner, sizeof(vps->owner), "%s", spec->owner);
        snprintf(vps->lang, sizeof(vps->lang), "%s", spec->lang != NULL ? spec->lang : "en");
        snprintf(vps->iface, sizeof(vps->iface), "%s", spec->iface);
        snprintf(vps->host, sizeof(vps->host), "%s", spec->host != NULL ? spec->host : "");
        vps->site = site;
        if (spec->mac != NULL) {
                memcpy(vps->mac, spec->mac, sizeof(vps->mac));
                vps->has_mac = true;
        }
        for (size_t a = 0; a < spec->n_addrs; a++)
                if (pc_vps_add_addr(vps, &spec->addrs[a]) < 0) {
                        pc_vps_free(vps);
                        return pc_ops_fail(err, PC_OPS_EIO, NULL, "out of memory");
                }
        *ret = vps;
        return 0;
}

/* An agent bound to a host registers onto that host only: none said is
 * that host, another is refused.  *<spec> is <given>, its host filled. */
static int register_host(const struct pc_ops_actor *who, const struct pc_vps_spec *given, struct pc_vps_spec *spec,
                         struct pc_ops_error *err)
{
        const char *mine = pc_ops_actor_host(who);

        *spec = *given;
        if (mine == NULL)
                return 0;
        if (spec->host == NULL || spec->host[0] == '\0')
                spec->host = mine;
        else if (strcmp(spec->host, mine) != 0)
                return pc_ops_fail(err, PC_OPS_EPERM, "host",
                                   "%s (role agent, bound to host %s) may not register a VPS on host %.63s: only on %s",
                                   who->principal, mine, spec->host, mine);
        return 0;
}

static int vps_register_checked(struct pc_ops *o, const struct pc_ops_actor *who, const struct pc_vps_spec *given,
                        const char *reason, const struct pc_site **ret_site, struct pc_ops_error *err)
{
        const struct pc_site *site = NULL;
        struct pc_vps *vps = NULL;
        struct pc_vps_spec spec_, *spec = &spec_;
        struct pc_actor actor;
        int r;

        if ((r = pc_ops_authorize(who, PC_OP_VPS_REGISTER, err)) < 0 || (r = check_host(given->host, err)) < 0 ||
            (r = register_host(who, given, spec, err)) < 0 || (r = check_spec(o, spec, reason, &site, err)) < 0 ||
            (r = check_fleet(o, who, spec, NULL, err)) < 0 || (r = vps_build(spec, site, &vps, err)) < 0)
                return r;
        actor = pc_ops_store_actor(who, reason);
        r = pc_store_vps_add(o->store, vps, &actor);
        pc_vps_free(vps);
        if (r < 0)
                return pc_ops_store_fail(o, r, NULL, err);
        if (ret_site != NULL)
                *ret_site = site;
        return 0;
}

/* One transaction: no other writer can take an address or a MAC between
 * the checks and the insert. */
int pc_ops_vps_register(struct pc_ops *o, const struct pc_ops_actor *who, const struct pc_vps_spec *spec,
                        const char *reason, const struct pc_site **ret_site, struct pc_ops_error *err)
{
        int r = pc_ops_begin(o, err);

        return r < 0 ? r : pc_ops_end(o, vps_register_checked(o, who, spec, reason, ret_site, err), err);
}

/* <cur> with <change> made, as a registration: what pc_ops_vps_update
 * checks as pc_ops_vps_register would check it.  <spec> borrows <cur>'s
 * and <change>'s strings and arrays. */
static void spec_changed(const struct pc_vps *cur, const struct pc_vps_change *change, struct pc_vps_spec *spec)
{
        *spec = (struct pc_vps_spec){
                .id = cur->id,
                .owner = cur->owner,
                .lang = cur->lang,
                .site = cur->site->name,
                .iface = change->iface != NULL ? change->iface : cur->iface,
                .mac = change->mac != NULL ? change->mac : cur->has_mac ? cur->mac : NULL,
                .addrs = change->addrs != NULL ? change->addrs : cur->addrs,
                .n_addrs = change->addrs != NULL ? change->n_addrs : cur->n_addrs,
                .host = cur->host,
        };
}

/* A bound agent does not make final, or loosen, a VPS whose move onto its
 * host the host it left has not confirmed (pc_store_vps_departed): a
 * pull may be a claim.  It does not remove it -- which leaves nothing for
 * the admin to move back -- nor change its addresses or MAC (<what>),
 * which the undo would keep.  (Its old host keeps the VM enforced, and
 * tightened only, meanwhile either way.)  ECONFLICT, field vps. */
static int unconfirmed_refuse(const struct pc_ops_actor *who, const struct pc_vps *vps, const char *what,
                              struct pc_ops_error *err)
{
        if (pc_ops_actor_host(who) == NULL || vps->departing_from[0] == '\0')
                return 0;
        return pc_ops_fail(err, PC_OPS_ECONFLICT, "vps",
                           "vps %s moved here from %s, which has not confirmed that its VM left it: %s only once "
                           "it has, or by an admin",
                           vps->id, vps->departing_from, what);
}

/* Whether <change> gives <cur> other addresses or another MAC. */
static bool loosening_fields(const struct pc_vps *cur, const struct pc_vps_change *change)
{
        char a[64], b[64];

        if (change->mac != NULL && (!cur->has_mac || memcmp(cur->mac, change->mac, sizeof(cur->mac)) != 0))
                return true;
        if (change->addrs == NULL)
                return false;
        if (change->n_addrs != cur->n_addrs)
                return true;
        for (size_t i = 0; i < cur->n_addrs; i++) {
                pc_format_prefix(&cur->addrs[i], a, sizeof(a));
                pc_format_prefix(&change->addrs[i], b, sizeof(b));
                if (strcmp(a, b) != 0)
                        return true;
        }
        return false;
}

static int vps_update_checked(struct pc_ops *o, const struct pc_ops_actor *who, const struct pc_vps_change *change,
                      const char *reason, bool *ret_changed, struct pc_ops_error *err)
{
        const struct pc_site *site = NULL;
        struct pc_vps *cur = NULL, *vps = NULL;
        struct pc_vps_spec spec;
        struct pc_actor actor;
        bool changed = false;
        int r;

        if ((r = pc_ops_authorize(who, PC_OP_VPS_UPDATE_ADDRESSES, err)) < 0 || (r = check_id(change->id, err)) < 0 ||
            (r = pc_ops_vps_fetch(o, who, change->id, &cur, err)) < 0)
                return r;
        if (loosening_fields(cur, change) &&
            (r = unconfirmed_refuse(who, cur, "its addresses and MAC change", err)) < 0) {
                pc_vps_free(cur);
                return r;
        }
        /* The whole VPS as it would be, through the registration's checks:
         * its own addresses are no conflict, anybody else's are. */
        spec_changed(cur, change, &spec);
        if ((r = check_spec(o, &spec, reason, &site, err)) >= 0 && (r = check_fleet(o, who, &spec, cur->id, err)) >= 0 &&
            (r = vps_build(&spec, site, &vps, err)) >= 0) {
                actor = pc_ops_store_actor(who, reason);
                r = pc_store_vps_update(o->store, vps, &actor, &changed);
                if (r < 0)
                        pc_ops_store_fail(o, r, NULL, err);
        }
        pc_vps_free(vps);
        pc_vps_free(cur);
        if (r < 0)
                return r;
        if (ret_changed != NULL)
                *ret_changed = changed;
        return 0;
}

/* One transaction, as a registration. */
int pc_ops_vps_update(struct pc_ops *o, const struct pc_ops_actor *who, const struct pc_vps_change *change,
                      const char *reason, bool *ret_changed, struct pc_ops_error *err)
{
        int r = pc_ops_begin(o, err);

        return r < 0 ? r : pc_ops_end(o, vps_update_checked(o, who, change, reason, ret_changed, err), err);
}

int pc_ops_vps_move(struct pc_ops *o, const struct pc_ops_actor *who, const char *id, const char *host,
                    const char *iface, const char *reason, bool *ret_changed, struct pc_ops_error *err)
{
        const char *mine = pc_ops_actor_host(who);
        struct pc_actor actor;
        int r;

        if ((r = pc_ops_authorize(who, PC_OP_VPS_MOVE, err)) < 0 || (r = check_id(id, err)) < 0 ||
            (r = pc_ops_text_check("reason", reason, REASON_SIZE, err)) < 0)
                return r;
        if ((r = check_host(host, err)) < 0 || (iface != NULL && (r = check_iface(iface, err)) < 0))
                return r;
        /* A bound agent pulls, never pushes: its hooks say a VM arrives on
         * its own host (libvirt calls the migrate hook on the destination
         * only), and the host the VPS leaves keeps enforcing it while the
         * VM's interface is there.  Pointing a VPS at another host (at a
         * dead interface there) is the fleet's admin's alone. */
        if (mine != NULL && (host == NULL || strcmp(host, mine) != 0))
                return pc_ops_fail(err, PC_OPS_EPERM, "host",
                                   "%s (role agent, bound to host %s) may move a VPS only onto %s, not to %s",
                                   who->principal, mine, mine,
                                   host != NULL && host[0] != '\0' ? host : "no host");
        /* Without an interface a bound agent moves only a VPS of its own
         * host back (a migration called off, or a move it has not
         * confirmed: undone); another host's is refused by
         * the store for the missing interface, which told a VPS that
         * exists elsewhere from one that does not, with nothing written:
         * the same 404 for both. */
        if (mine != NULL && iface == NULL) {
                struct pc_vps *v = NULL;

                r = pc_store_vps_fetch(o->store, o->cfg, id, &v);
                if (r < 0 && r != -ENOENT)
                        return pc_ops_store_fail(o, r, NULL, err);
                r = v != NULL && (strcmp(v->host, mine) == 0 || strcmp(v->moving_from, mine) == 0 ||
                                  strcmp(v->departing_from, mine) == 0);
                pc_vps_free(v);
                if (!r)
                        return pc_ops_fail(err, PC_OPS_ENOENT, "vps", "vps %s does not exist", id);
        }
        actor = pc_ops_store_actor(who, reason);
        r = pc_store_vps_move(o->store, id, host, iface, &actor, ret_changed);
        /* (The store's one refusal of a valid name: the interface there.) */
        return r < 0 ? pc_ops_store_fail(o, r, r == -EINVAL ? "iface" : NULL, err) : 0;
}

int pc_ops_vps_depart(struct pc_ops *o, const struct pc_ops_actor *who, const char *id, const char *reason,
                      char *ret_from, struct pc_ops_error *err)
{
        char from[PC_NAME_MAX];
        struct pc_vps *v = NULL;
        struct pc_actor actor;
        bool recorded = false;
        int r;

        if ((r = pc_ops_authorize(who, PC_OP_VPS_DEPART, err)) < 0 || (r = check_id(id, err)) < 0 ||
            (r = pc_ops_text_check("reason", reason, REASON_SIZE, err)) < 0)
                return r;
        if (reason == NULL || reason[0] == '\0')
                return pc_ops_fail(err, PC_OPS_EINVAL, "reason",
                                   "is required: say how you know that the VM left the host it departs from "
                                   "(its agent would have seen it)");
        if ((r = pc_ops_vps_fetch(o, who, id, &v, err)) < 0)
                return r;
        snprintf(from, sizeof(from), "%s", v->departing_from);
        pc_vps_free(v);
        if (from[0] == '\0')
                return pc_ops_fail(err, PC_OPS_ECONFLICT, "vps",
                                   "vps %s has no move to confirm: no host it left is waiting to say that its VM "
                                   "is gone (never moved between hosts, moved back, or confirmed already)", id);
        actor = pc_ops_store_actor(who, reason);
        r = pc_store_vps_departed(o->store, id, from, &actor, &recorded);
        if (r < 0)
                return pc_ops_store_fail(o, r, NULL, err);
        if (!recorded) /* its host's agent, a move or a removal, between the two */
                return pc_ops_fail(err, PC_OPS_ECONFLICT, "vps",
                                   "vps %s has no move from %s to confirm any more: confirmed, moved or removed "
                                   "meanwhile", id, from);
        if (ret_from != NULL)
                snprintf(ret_from, PC_NAME_MAX, "%s", from);
        return 0;
}

int pc_ops_fleet_agents(struct pc_ops *o, const struct pc_ops_actor *who, pc_agent_beat_cb cb, void *userdata,
                        struct pc_ops_error *err)
{
        int r = pc_ops_authorize(who, PC_OP_FLEET_READ, err);

        if (r < 0)
                return r;
        r = pc_store_agent_list(o->store, cb, userdata);
        return r < 0 ? pc_ops_store_fail(o, r, NULL, err) : 0;
}

const char *pc_agent_state_name(enum pc_agent_state state)
{
        static const char *const names[PC_AGENT_STATE_COUNT_] = {
                [PC_AGENT_OK] = "ok",
                [PC_AGENT_OUT_OF_SYNC] = "out-of-sync",
                [PC_AGENT_STALE] = "stale",
        };

        return (unsigned)state < PC_AGENT_STATE_COUNT_ ? names[state] : NULL;
}

int64_t pc_fleet_stale_after(const struct pc_config *cfg)
{
        /* Three periodic passes without a beat: the agent is not working. */
        return 3 * cfg->agent.attempts_interval;
}

void pc_fleet_judge(const struct pc_agent_beat *b, const struct pc_fleet_view *view, struct pc_fleet_agent *ret)
{
        int64_t age = view->now - b->heartbeat, lag = view->last_change - b->change_seen;

        *ret = (struct pc_fleet_agent){
                .beat = b,
                .state = age > view->stale_after ? PC_AGENT_STALE
                         : !b->in_sync           ? PC_AGENT_OUT_OF_SYNC
                                                 : PC_AGENT_OK,
                .age = age,
                .lag = lag > 0 ? lag : 0,
        };
}

/* pc_ops_fleet_status's read: each beat judged, then the caller's <cb>. */
struct fleet_read {
        const struct pc_fleet_view *view;
        pc_fleet_agent_cb cb;
        void *userdata;
        int cb_failed; /* what <cb> returned when it stopped the read; 0: it did not */
};

static int fleet_read_cb(const struct pc_agent_beat *b, void *userdata)
{
        struct fleet_read *f = userdata;
        struct pc_fleet_agent a;

        pc_fleet_judge(b, f->view, &a);
        f->cb_failed = f->cb(&a, f->userdata);
        return f->cb_failed < 0 ? f->cb_failed : 0;
}

int pc_ops_fleet_status(struct pc_ops *o, const struct pc_ops_actor *who, int64_t now, pc_fleet_agent_cb cb,
                        void *userdata, struct pc_fleet_view *ret_view, struct pc_ops_error *err)
{
        struct pc_fleet_view view = { .now = now, .stale_after = pc_fleet_stale_after(o->cfg) };
        struct fleet_read f = { .view = &view, .cb = cb, .userdata = userdata };
        int r;

        if ((r = pc_ops_authorize(who, PC_OP_FLEET_READ, err)) < 0)
                return r;
        r = pc_store_change_last(o->store, &view.last_change);
        if (r < 0)
                return pc_ops_store_fail(o, r, NULL, err);
        r = pc_ops_fleet_agents(o, who, fleet_read_cb, &f, err);
        if (r < 0 && f.cb_failed < 0)
                return pc_ops_fail(err, PC_OPS_EIO, NULL, "reading the fleet failed: %s", strerror(-f.cb_failed));
        if (r < 0)
                return r;
        if (ret_view != NULL)
                *ret_view = view;
        return 0;
}

static int vps_set_state_checked(struct pc_ops *o, const struct pc_ops_actor *who, const char *id, bool running,
                                 const char *reason, bool *ret_changed, struct pc_ops_error *err)
{
        struct pc_actor actor;
        int r;

        if ((r = pc_ops_authorize(who, PC_OP_VPS_SET_STATE, err)) < 0 || (r = check_id(id, err)) < 0 ||
            (r = pc_ops_text_check("reason", reason, REASON_SIZE, err)) < 0 || (r = pc_ops_vps_check(o, who, id, err)) < 0)
                return r;
        actor = pc_ops_store_actor(who, reason);
        r = pc_store_vps_set_state(o->store, id, running, &actor, ret_changed);
        return r < 0 ? pc_ops_store_fail(o, r, NULL, err) : 0;
}

/* One transaction: the VPS is where the check saw it when it is written. */
int pc_ops_vps_set_state(struct pc_ops *o, const struct pc_ops_actor *who, const char *id, bool running,
                         const char *reason, bool *ret_changed, struct pc_ops_error *err)
{
        int r = pc_ops_begin(o, err);

        return r < 0 ? r : pc_ops_end(o, vps_set_state_checked(o, who, id, running, reason, ret_changed, err), err);
}

static int vps_remove_checked(struct pc_ops *o, const struct pc_ops_actor *who, const char *id, const char *reason,
                              bool admin_override, struct pc_ops_error *err)
{
        struct pc_actor actor;
        int r;

        if ((r = pc_ops_authorize(who, PC_OP_VPS_REMOVE, err)) < 0 ||
            (r = pc_ops_text_check("reason", reason, REASON_SIZE, err)) < 0)
                return r;
        if (id == NULL || id[0] == '\0')
                return pc_ops_fail(err, PC_OPS_EINVAL, "id", "is required");
        if (pc_ops_actor_host(who) == NULL) {
                r = pc_ops_vps_check(o, who, id, err);
        } else { /* a bound agent's check is this fetch */
                struct pc_vps *vps = NULL;

                r = pc_ops_vps_fetch(o, who, id, &vps, err);
                if (r >= 0)
                        r = unconfirmed_refuse(who, vps, "it is removed", err);
                pc_vps_free(vps);
        }
        if (r < 0)
                return r;
        /* Lifting a termination is the admin's alone, whoever else may
         * remove VPSes: the agent, a hook of the VM manager. */
        if (admin_override && who->role != PC_ROLE_ADMIN)
                return pc_ops_fail(err, PC_OPS_EPERM, "admin_override",
                                   "%s (role %s) may not override a termination: only an admin may", who->principal,
                                   pc_role_name(who->role));
        actor = pc_ops_store_actor(who, reason);
        actor.admin_override = admin_override;
        actor.webhook_url = o->cfg->notify.webhook_url; /* a termination removed: billing is told */
        r = pc_store_vps_remove(o->store, id, &actor);
        return r < 0 ? pc_ops_store_fail(o, r, NULL, err) : 0;
}

/* One transaction, as pc_ops_vps_set_state. */
int pc_ops_vps_remove(struct pc_ops *o, const struct pc_ops_actor *who, const char *id, const char *reason,
                      bool admin_override, struct pc_ops_error *err)
{
        int r = pc_ops_begin(o, err);

        return r < 0 ? r : pc_ops_end(o, vps_remove_checked(o, who, id, reason, admin_override, err), err);
}

int pc_ops_vps_list(struct pc_ops *o, const struct pc_ops_actor *who, const char *after, size_t limit,
                    int (*cb)(const char *id, void *userdata), void *userdata, struct pc_ops_error *err)
{
        const char *owner = NULL;
        int r;

        if ((r = pc_ops_authorize(who, PC_OP_VPS_READ, err)) < 0)
                return r;
        if (who->role == PC_ROLE_CUSTOMER) {
                if (who->customer == NULL || who->customer[0] == '\0')
                        return pc_ops_fail(err, PC_OPS_EINVAL, "customer", "is required for a customer");
                owner = who->customer;
        }
        /* A bound agent's hooks see their own host's VPSes only. */
        r = pc_store_vps_ids(o->store, owner, pc_ops_actor_host(who), after, limit, cb, userdata);
        return r < 0 ? pc_ops_store_fail(o, r, NULL, err) : 0;
}

int pc_ops_vps_get(struct pc_ops *o, const struct pc_ops_actor *who, const char *id, struct pc_vps **ret,
                   struct pc_ops_error *err)
{
        int r;

        if ((r = pc_ops_authorize(who, PC_OP_VPS_READ, err)) < 0)
                return r;
        return pc_ops_vps_fetch(o, who, id, ret, err);
}
