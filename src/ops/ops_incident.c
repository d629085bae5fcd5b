/* Incidents and actions, the outbox and the audit log, as support and
 * customers read them, and support's verdicts on them (ops.h).  The
 * response engine's own writes are the agent's (respond.c). */
#include "ops/ops.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* The VPS ids a read covers: <vps_id> itself (checked to be the
 * customer's), or every VPS of the customer, or NULL (all) for the team. */
struct scope {
        char (*ids)[PC_NAME_MAX];
        size_t n, cap;
        bool all;
};

static int scope_add(const char *id, void *userdata)
{
        struct scope *sc = userdata;

        if (sc->n == sc->cap) {
                size_t cap = sc->cap != 0 ? sc->cap * 2 : 16;
                void *p = realloc(sc->ids, cap * sizeof(*sc->ids));

                if (p == NULL)
                        return -ENOMEM;
                sc->ids = p;
                sc->cap = cap;
        }
        snprintf(sc->ids[sc->n++], PC_NAME_MAX, "%s", id);
        return 0;
}

static int scope_of(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id, struct scope *sc,
                    struct pc_ops_error *err)
{
        struct pc_vps *v = NULL;
        int r;

        memset(sc, 0, sizeof(*sc));
        if (vps_id != NULL) {
                r = pc_ops_vps_fetch(o, who, vps_id, &v, err);
                pc_vps_free(v);
                return r < 0 ? r : scope_add(vps_id, sc);
        }
        if (who->role != PC_ROLE_CUSTOMER) {
                sc->all = true;
                return 0;
        }
        if (who->customer == NULL || who->customer[0] == '\0')
                return pc_ops_fail(err, PC_OPS_EINVAL, "customer", "is required for a customer");
        /* Collected first: a store callback must not call the store. */
        r = pc_store_vps_ids(o->store, who->customer, NULL, NULL, 0, scope_add, sc);
        return r < 0 ? pc_ops_store_fail(o, r, NULL, err) : 0;
}

/* How many reads <sc> takes, and the VPS id of the <i>-th (NULL: all). */
static size_t scope_count(const struct scope *sc)
{
        return sc->all ? 1 : sc->n;
}

static const char *scope_id(const struct scope *sc, size_t i)
{
        return sc->all ? NULL : sc->ids[i];
}

/* A callback's "stop here" that is not a failure (the page is full). */
static bool stopped(int r)
{
        return r == -ENOBUFS;
}

/* What a list returns after a read that returned <r>: 0, -ENOBUFS (a
 * callback stopped it), or a failure of the store in <err>, an EINVAL of
 * the store naming <field>. */
static int list_end(struct pc_ops *o, int r, const char *field, struct pc_ops_error *err)
{
        if (r < 0 && !stopped(r))
                return pc_ops_store_fail(o, r, field, err);
        return r < 0 ? r : 0;
}

/* One list's read of the store for VPS <vps_id> (NULL: every VPS), with
 * the list's own arguments in <ctx>. */
typedef int (*scoped_read_fn)(struct pc_ops *o, const char *vps_id, void *ctx);

/* Incidents, actions and notifications as <who> may read them: authorised
 * (PC_OP_INCIDENT_READ), then <read> once for each VPS in <who>'s scope of
 * <vps_id> (scope_of: a customer reads only their own VPSes), until a
 * read fails.  A callback's stop ends its VPS's read only: the next VPS
 * may still have newer items (a page keeps the newest of all).  Returns
 * as list_end, -ENOBUFS if any read was stopped. */
static int scoped_list(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id, const char *field,
                       scoped_read_fn read, void *ctx, struct pc_ops_error *err)
{
        bool cut = false;
        struct scope sc;
        int r;

        if ((r = pc_ops_authorize(who, PC_OP_INCIDENT_READ, err)) < 0 || (r = scope_of(o, who, vps_id, &sc, err)) < 0)
                return r;
        for (size_t i = 0; i < scope_count(&sc) && r >= 0; i++) {
                r = read(o, scope_id(&sc, i), ctx);
                if (stopped(r)) {
                        cut = true;
                        r = 0;
                }
        }
        free(sc.ids);
        return list_end(o, r < 0 ? r : cut ? -ENOBUFS : 0, field, err);
}

struct incident_read {
        const char *kind;
        bool open_only;
        int64_t before;
        pc_incident_cb cb;
        void *userdata;
};

static int incident_read(struct pc_ops *o, const char *vps_id, void *ctx)
{
        struct incident_read *q = ctx;

        return pc_store_incident_list(o->store, vps_id, q->kind, q->open_only, q->before, q->cb, q->userdata);
}

int pc_ops_incident_list(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id, const char *kind,
                         bool open_only, int64_t before, pc_incident_cb cb, void *userdata,
                         struct pc_ops_error *err)
{
        struct incident_read q = { kind, open_only, before, cb, userdata };

        return scoped_list(o, who, vps_id, NULL, incident_read, &q, err);
}

struct owner_of {
        char vps_id[PC_NAME_MAX];
};

static int incident_vps_cb(const struct pc_incident *i, void *userdata)
{
        snprintf(((struct owner_of *)userdata)->vps_id, PC_NAME_MAX, "%s", i->vps_id);
        return 0;
}

/* May <who> see the object of VPS <vps_id>?  Another customer's: ENOENT
 * naming <what> (as if it did not exist). */
static int visible(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id, const char *what, int64_t id,
                   struct pc_ops_error *err)
{
        struct pc_vps *v = NULL;
        int r;

        if (who->role != PC_ROLE_CUSTOMER)
                return 0;
        r = pc_ops_vps_fetch(o, who, vps_id, &v, err);
        pc_vps_free(v);
        return r < 0 ? pc_ops_fail(err, PC_OPS_ENOENT, NULL, "%s #%lld does not exist", what, (long long)id) : 0;
}

int pc_ops_incident_get(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id, pc_incident_cb cb,
                        void *userdata, struct pc_ops_error *err)
{
        struct owner_of ow = { "" };
        int r;

        if ((r = pc_ops_authorize(who, PC_OP_INCIDENT_READ, err)) < 0)
                return r;
        r = pc_store_incident_get(o->store, id, incident_vps_cb, &ow);
        if (r < 0)
                return pc_ops_store_fail(o, r, NULL, err);
        if ((r = visible(o, who, ow.vps_id, "incident", id, err)) < 0)
                return r;
        r = pc_store_incident_get(o->store, id, cb, userdata);
        return r < 0 ? pc_ops_store_fail(o, r, NULL, err) : 0;
}

/* The store's actor for a change that may lift a termination: only an
 * admin overrides one, and billing hears of it (notifications.webhook). */
static int lifting_actor(struct pc_ops *o, const struct pc_ops_actor *who, const char *reason, bool admin_override,
                         struct pc_actor *by, struct pc_ops_error *err)
{
        *by = pc_ops_store_actor(who, reason);
        if (admin_override && who->role != PC_ROLE_ADMIN)
                return pc_ops_fail(err, PC_OPS_EPERM, "admin_override",
                                   "%s (role %s) may not override a termination: only an admin may", who->principal,
                                   pc_role_name(who->role));
        by->admin_override = admin_override;
        by->webhook_url = o->cfg->notify.webhook_url;
        return 0;
}

int pc_ops_incident_close(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id, bool lift_actions,
                          const char *reason, bool admin_override, size_t *ret_lifted, struct pc_ops_error *err)
{
        struct pc_actor by;
        int r;

        if ((r = pc_ops_authorize(who, PC_OP_INCIDENT_CLOSE, err)) < 0 ||
            (r = lifting_actor(o, who, reason, admin_override, &by, err)) < 0)
                return r;
        if (reason == NULL || reason[0] == '\0')
                return pc_ops_fail(err, PC_OPS_EINVAL, "reason", "is required: the audit log says why");
        if (pc_ops_text_check("reason", reason, 256, err) < 0)
                return -EINVAL;
        r = pc_store_incident_close(o->store, id, lift_actions, &by, ret_lifted);
        return r < 0 ? pc_ops_store_fail(o, r, NULL, err) : 0;
}

struct action_read {
        int64_t incident_id;
        bool active_only;
        int64_t before;
        pc_store_action_cb cb;
        void *userdata;
};

static int action_read(struct pc_ops *o, const char *vps_id, void *ctx)
{
        struct action_read *q = ctx;

        return pc_store_action_list(o->store, vps_id, q->incident_id, q->active_only, pc_now(), q->before, q->cb,
                                    q->userdata);
}

int pc_ops_action_list(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id, int64_t incident_id,
                       bool active_only, int64_t before, pc_store_action_cb cb, void *userdata,
                       struct pc_ops_error *err)
{
        struct action_read q = { incident_id, active_only, before, cb, userdata };

        return scoped_list(o, who, vps_id, NULL, action_read, &q, err);
}

/* Action <id> for a change by <who>: it exists (ENOENT otherwise). */
static int action_of(struct pc_ops *o, int64_t id, struct pc_store_action *a, struct pc_ops_error *err)
{
        int r = pc_store_action_get(o->store, id, a);

        return r < 0 ? pc_ops_store_fail(o, r, NULL, err) : 0;
}

int pc_ops_action_lift(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id, const char *reason,
                       bool admin_override, char ret_vps[PC_NAME_MAX], struct pc_ops_error *err)
{
        struct pc_actor by;
        struct pc_store_action a;
        int r;

        if ((r = pc_ops_authorize(who, PC_OP_ACTION_LIFT, err)) < 0 ||
            (r = lifting_actor(o, who, reason, admin_override, &by, err)) < 0)
                return r;
        if (reason == NULL || reason[0] == '\0')
                return pc_ops_fail(err, PC_OPS_EINVAL, "reason", "is required: the audit log and the owner's email say why");
        if (pc_ops_text_check("reason", reason, 256, err) < 0 || (r = action_of(o, id, &a, err)) < 0)
                return r < 0 ? r : -EINVAL;
        r = pc_store_action_lift(o->store, id, &by);
        if (r < 0)
                return pc_ops_store_fail(o, r, NULL, err);
        if (ret_vps != NULL)
                snprintf(ret_vps, PC_NAME_MAX, "%s", a.vps_id);
        return 0;
}

int pc_ops_action_set_until(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id, int64_t until,
                            const char *reason, char ret_vps[PC_NAME_MAX], struct pc_ops_error *err)
{
        struct pc_actor by = pc_ops_store_actor(who, reason);
        struct pc_store_action a;
        int r;

        if ((r = pc_ops_authorize(who, PC_OP_ACTION_LIFT, err)) < 0)
                return r;
        if (pc_ops_text_check("reason", reason, 256, err) < 0 || (r = action_of(o, id, &a, err)) < 0)
                return r < 0 ? r : -EINVAL;
        r = pc_store_action_set_until(o->store, id, until, &by);
        if (r < 0)
                return pc_ops_store_fail(o, r, r == -EINVAL ? "until" : NULL, err);
        if (ret_vps != NULL)
                snprintf(ret_vps, PC_NAME_MAX, "%s", a.vps_id);
        return 0;
}

/* A customer reads the emails to them: not the provider's webhooks, nor
 * the emails to an earlier owner of a VPS id a VM manager reused (the
 * outbox outlives its VPS), nor why the provider's relay failed. */
struct notif_filter {
        const char *customer;
        pc_notification_cb cb;
        void *userdata;
};

static int notif_email_cb(const struct pc_notification *n, void *userdata)
{
        struct notif_filter *f = userdata;
        struct pc_notification shown;

        if ((n->channel[0] != '\0' && strcmp(n->channel, "email") != 0) || strcmp(n->recipient, f->customer) != 0)
                return 0;
        shown = *n;
        shown.last_error[0] = '\0';
        return f->cb(&shown, f->userdata);
}

struct notif_read {
        const char *state;
        size_t limit;
        int64_t before;
        pc_notification_cb cb;
        void *userdata;
};

static int notif_read(struct pc_ops *o, const char *vps_id, void *ctx)
{
        struct notif_read *q = ctx;

        return pc_store_notification_list(o->store, vps_id, q->state, q->limit, q->before, q->cb, q->userdata);
}

int pc_ops_notification_list(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id, const char *state,
                             size_t limit, int64_t before, pc_notification_cb cb, void *userdata,
                             struct pc_ops_error *err)
{
        struct notif_filter f = { who->customer != NULL ? who->customer : "", cb, userdata };
        struct notif_read q = { state, limit, before, cb, userdata };

        if (who->role == PC_ROLE_CUSTOMER) {
                q.cb = notif_email_cb;
                q.userdata = &f;
        }
        /* The store rejects an unknown state: name the argument. */
        return scoped_list(o, who, vps_id, "state", notif_read, &q, err);
}

int pc_ops_notification_retry(struct pc_ops *o, const struct pc_ops_actor *who, int64_t id, const char *reason,
                              struct pc_ops_error *err)
{
        struct pc_actor by = pc_ops_store_actor(who, reason);
        int r;

        if ((r = pc_ops_authorize(who, PC_OP_NOTIFICATION_RETRY, err)) < 0)
                return r;
        if (reason == NULL || reason[0] == '\0')
                return pc_ops_fail(err, PC_OPS_EINVAL, "reason", "is required: the audit log says why it is sent again");
        if ((r = pc_ops_text_check("reason", reason, 256, err)) < 0)
                return r;
        r = pc_store_notification_retry(o->store, id, &by);
        return r < 0 ? pc_ops_store_fail(o, r, NULL, err) : 0;
}

int pc_ops_audit_list(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id, size_t limit,
                      pc_audit_cb cb, void *userdata, struct pc_ops_error *err)
{
        int r;

        if ((r = pc_ops_authorize(who, PC_OP_AUDIT_READ, err)) < 0)
                return r;
        /* Not scoped: the audit of a VPS outlives it, and no customer reads it. */
        r = pc_store_audit_list(o->store, vps_id, limit, cb, userdata);
        return list_end(o, r, NULL, err);
}

/* ---- actions placed by hand or by the response engine ------------------ */

static int reason_required(const char *reason, struct pc_ops_error *err)
{
        if (reason == NULL || reason[0] == '\0')
                return pc_ops_fail(err, PC_OPS_EINVAL, "reason",
                                   "is required: the owner's email and the audit log say why");
        return pc_ops_text_check("reason", reason, 256, err);
}

/* A filter, a suspension or a termination of <vps_id> by <who>, checked
 * (PC_OP_ACTION_PLACE or PC_OP_TERMINATE, the reason, pc_ops_vps_check)
 * and stored by <place> in one transaction: the VPS is where the check
 * saw it when it is written. */
struct placing {
        int64_t incident_id;
        const struct pc_filter *filter;
        const char *why;
        int64_t *ret_id;
};

typedef int (*place_fn)(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id, const char *reason,
                        const struct placing *p, struct pc_ops_error *err);

static int place_checked(struct pc_ops *o, const struct pc_ops_actor *who, enum pc_op op, const char *vps_id,
                         const char *reason, const struct placing *p, place_fn place, struct pc_ops_error *err)
{
        int r;

        if ((r = pc_ops_authorize(who, op, err)) < 0 || (r = reason_required(reason, err)) < 0 ||
            (r = pc_ops_vps_check(o, who, vps_id, err)) < 0)
                return r;
        return place(o, who, vps_id, reason, p, err);
}

static int place_tx(struct pc_ops *o, const struct pc_ops_actor *who, enum pc_op op, const char *vps_id,
                    const char *reason, const struct placing *p, place_fn place, struct pc_ops_error *err)
{
        int r = pc_ops_begin(o, err);

        return r < 0 ? r : pc_ops_end(o, place_checked(o, who, op, vps_id, reason, p, place, err), err);
}

static int filter_place(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id, const char *reason,
                        const struct placing *p, struct pc_ops_error *err)
{
        struct pc_actor by = pc_ops_store_actor(who, reason);
        struct pc_filter f = *p->filter;
        int64_t now = pc_now();
        int r;

        if (f.until != 0 && f.until <= now)
                return pc_ops_fail(err, PC_OPS_EINVAL, "until", "is in the past");
        if (f.direction == 0)
                f.direction = PC_DIR_EGRESS;
        snprintf(f.by, sizeof(f.by), "%s", who->principal);
        snprintf(f.reason, sizeof(f.reason), "%s", reason);
        f.created = now;
        r = pc_store_filter_place(o->store, vps_id, &f, &by, p->ret_id);
        return r < 0 ? pc_ops_store_fail(o, r, r == -ENOENT ? "vps" : NULL, err) : 0;
}

int pc_ops_filter_place(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id,
                        const struct pc_filter *spec, const char *reason, int64_t *ret_id, struct pc_ops_error *err)
{
        const struct placing p = { .filter = spec, .ret_id = ret_id };

        return place_tx(o, who, PC_OP_ACTION_PLACE, vps_id, reason, &p, filter_place, err);
}

static int suspend(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id, const char *reason,
                   const struct placing *p, struct pc_ops_error *err)
{
        struct pc_actor by = pc_ops_store_actor(who, reason);
        int r = pc_store_suspend(o->store, vps_id, p->incident_id, &by, p->ret_id);

        return r < 0 ? pc_ops_store_fail(o, r, r == -ENOENT ? "vps" : NULL, err) : 0;
}

int pc_ops_suspend(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id, int64_t incident_id,
                   const char *reason, int64_t *ret_id, struct pc_ops_error *err)
{
        const struct placing p = { .incident_id = incident_id, .ret_id = ret_id };

        return place_tx(o, who, PC_OP_ACTION_PLACE, vps_id, reason, &p, suspend, err);
}

static int terminate(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id, const char *reason,
                     const struct placing *p, struct pc_ops_error *err)
{
        struct pc_actor by = pc_ops_store_actor(who, reason);
        int r = pc_store_terminate(o->store, vps_id, p->incident_id, p->why, o->cfg->notify.webhook_url, &by,
                                   p->ret_id);

        return r < 0 ? pc_ops_store_fail(o, r, r == -ENOENT ? "vps" : NULL, err) : 0;
}

int pc_ops_terminate(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id, int64_t incident_id,
                     const char *why, const char *reason, int64_t *ret_id, struct pc_ops_error *err)
{
        const struct placing p = { .incident_id = incident_id, .why = why, .ret_id = ret_id };

        return place_tx(o, who, PC_OP_TERMINATE, vps_id, reason, &p, terminate, err);
}

int pc_ops_filter_lift(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id, int64_t filter_id,
                       const char *reason, struct pc_ops_error *err)
{
        struct pc_actor by = pc_ops_store_actor(who, reason);
        int r;

        if ((r = pc_ops_authorize(who, PC_OP_ACTION_LIFT, err)) < 0 || (r = reason_required(reason, err)) < 0)
                return r;
        r = pc_store_filter_lift(o->store, vps_id, filter_id, &by);
        return r < 0 ? pc_ops_store_fail(o, r, NULL, err) : 0;
}

int pc_ops_unsuspend(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id, const char *reason,
                     bool admin_override, struct pc_ops_error *err)
{
        struct pc_actor by;
        int r;

        if ((r = pc_ops_authorize(who, PC_OP_ACTION_LIFT, err)) < 0 ||
            (r = lifting_actor(o, who, reason, admin_override, &by, err)) < 0 || (r = reason_required(reason, err)) < 0)
                return r;
        r = pc_store_unsuspend(o->store, vps_id, &by);
        return r < 0 ? pc_ops_store_fail(o, r, r == -ENOENT ? "vps" : NULL, err) : 0;
}
