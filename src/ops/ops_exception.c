/* Exceptions: granting and revoking what a site policy lets support lift
 * for one VPS (ops.h). */
#include "ops/ops.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "policy/grant.h"

#define REASON_SIZE 256 /* bytes of a stored reason, with its NUL */

/* <service> names something an exception can be for: a source prefix, an
 * approved port-scanning audit or a service of the catalog. */
static int check_subject(struct pc_ops *o, const char *service, struct pc_ops_error *err)
{
        if (service == NULL || service[0] == '\0')
                return pc_ops_fail(err, PC_OPS_EINVAL, "service", "is required");
        if (strncmp(service, PC_SOURCE_PREFIX, strlen(PC_SOURCE_PREFIX)) == 0) {
                if (strlen(service) >= PC_NAME_MAX || !pc_exception_source_prefix(service, NULL))
                        return pc_ops_fail(err, PC_OPS_EINVAL, "service",
                                           "'%s' is not source-prefix:CIDR with a valid prefix (e.g. "
                                           "source-prefix:198.51.100.64/29)", service);
                return 0;
        }
        if (strcmp(service, PC_EXCEPTION_SCANNING) != 0 && pc_config_service(o->cfg, service) == NULL)
                return pc_ops_fail(err, PC_OPS_EINVAL, "service", "unknown service '%s' (see portcullis services)",
                                   service);
        return 0;
}

/* The reason an exception's change gives: required, as the audit log and
 * the owner's email say why. */
static int check_reason(const char *reason, struct pc_ops_error *err)
{
        if (reason == NULL || reason[0] == '\0')
                return pc_ops_fail(err, PC_OPS_EINVAL, "reason",
                                   "is required: the audit log and the customer's email say why");
        return pc_ops_text_check("reason", reason, REASON_SIZE, err);
}

/* The VPS <id>, as the store has it (one VPS, not the fleet). */
int pc_ops_vps_fetch(struct pc_ops *o, const struct pc_ops_actor *who, const char *id, struct pc_vps **ret,
                     struct pc_ops_error *err)
{
        int r;

        if (id == NULL || id[0] == '\0')
                return pc_ops_fail(err, PC_OPS_EINVAL, "vps", "is required");
        r = pc_store_vps_fetch(o->store, o->cfg, id, ret);
        if (r < 0)
                return pc_ops_store_fail(o, r, "vps", err);
        r = pc_ops_authorize_vps(who, *ret, err);
        if (r < 0)
                *ret = pc_vps_free(*ret);
        return r;
}

int pc_ops_vps_check(struct pc_ops *o, const struct pc_ops_actor *who, const char *id, struct pc_ops_error *err)
{
        struct pc_vps *vps = NULL;
        int r;

        if (who->role != PC_ROLE_CUSTOMER && pc_ops_actor_host(who) == NULL)
                return 0;
        r = pc_ops_vps_fetch(o, who, id, &vps, err);
        pc_vps_free(vps);
        return r;
}

/* A source prefix may become <vps>'s: an address a VPS can have, no other
 * VPS's (it would speak as that one), at a site whose anti-spoofing it is
 * an exception to.  Another VPS of the same owner may hold it too (a
 * failover address moves between them). */
static int source_prefix_check(struct pc_ops *o, const struct pc_ops_actor *who, const struct pc_vps *vps,
                               const char *service, struct pc_ops_error *err)
{
        struct pc_addr_holder h;
        struct pc_prefix p;
        char pe[64];
        int r;

        pc_exception_source_prefix(service, &p);
        pc_format_prefix(&p, pe, sizeof(pe));
        if (pc_prefix_unassignable(&p) != NULL)
                return pc_ops_fail(err, PC_OPS_EINVAL, "service", "%s cannot be a VPS's: it is %s", pe,
                                   pc_prefix_unassignable(&p));
        /* Shared between the VPSes of one owner, never across owners. */
        r = pc_store_addr_holder(o->store, &p, vps->id, PC_ADDR_REGISTERED, pc_now(), &h);
        if (r == 0)
                r = pc_store_addr_holder(o->store, &p, vps->id, PC_ADDR_GRANTED | PC_ADDR_OTHER_OWNER, pc_now(), &h);
        if (r < 0)
                return pc_ops_store_fail(o, r, NULL, err);
        /* Whose address it is, is not a customer's to learn: it would map
         * the other customers' VPSes, which are "not found" to them. */
        if (r > 0 && who->role == PC_ROLE_CUSTOMER)
                return pc_ops_fail(err, PC_OPS_ECONFLICT, "service", "%s is not available to %s", pe, vps->id);
        if (r > 0)
                return pc_ops_fail(err, PC_OPS_ECONFLICT, "service", "it overlaps %s of %s", h.what, h.vps_id);
        if (!vps->site->policy->anti_spoofing)
                return pc_ops_fail(err, PC_OPS_ECONFLICT, "service",
                                   "site %s (policy %s) has no anti-spoofing policy to except from (its VPSes may "
                                   "send from their registered addresses only, BCP 38); register the prefix as an "
                                   "address of the VPS instead", vps->site->name, vps->site->policy->name);
        return 0;
}

/* May <spec> be granted to <vps> under its site's policy?  Sets *<rule>
 * to the rule it lifts (NULL: none, a source prefix or scanning). */
int pc_ops_grant_check(struct pc_ops *o, const struct pc_ops_actor *who, const struct pc_vps *vps,
                       const char *service, const struct pc_rule **rule, struct pc_ops_error *err)
{
        char why[512];
        int r;

        *rule = NULL;
        if (strncmp(service, PC_SOURCE_PREFIX, strlen(PC_SOURCE_PREFIX)) == 0)
                return source_prefix_check(o, who, vps, service, err);
        r = pc_grant_check(o->cfg, vps->site, service, rule, why, sizeof(why));
        if (r == -ENOENT)
                return pc_ops_fail(err, PC_OPS_EINVAL, "service", "%s", why);
        if (r < 0)
                return pc_ops_fail(err, PC_OPS_ECONFLICT, "service", "%s", why);
        return 0;
}

static int check_grant_spec(struct pc_ops *o, const struct pc_exception_spec *spec, struct pc_ops_error *err)
{
        int r;

        if ((r = check_subject(o, spec->service, err)) < 0 || (r = check_reason(spec->reason, err)) < 0)
                return r;
        if (spec->until != 0 && spec->until <= pc_now())
                return pc_ops_fail(err, PC_OPS_EINVAL, "until", "is not in the future");
        if (spec->ticket_id < 0)
                return pc_ops_fail(err, PC_OPS_EINVAL, "ticket", "is not a ticket number");
        return 0;
}

/* `exception grant --ticket N`: the approval of ticket N, which must be
 * the VPS's and ask for the service. */
static int grant_ticket(struct pc_ops *o, const struct pc_ops_actor *who, const struct pc_exception_spec *spec,
                        struct pc_grant_result *ret, struct pc_ops_error *err)
{
        struct pc_ticket_approval a = { .until = spec->until, .note = spec->reason };
        struct pc_ticket *t = malloc(sizeof(*t));
        int r;

        if (t == NULL)
                return pc_ops_fail(err, PC_OPS_EIO, NULL, "out of memory");
        r = pc_ops_ticket_get(o, who, spec->ticket_id, t, err);
        if (r >= 0 && (spec->vps_id == NULL || strcmp(t->vps_id, spec->vps_id) != 0))
                r = pc_ops_fail(err, PC_OPS_ECONFLICT, "ticket", "ticket #%lld is for %s, not %s",
                                (long long)t->id, t->vps_id, spec->vps_id != NULL ? spec->vps_id : "");
        else if (r >= 0 && strcmp(t->service, spec->service) != 0)
                r = pc_ops_fail(err, PC_OPS_ECONFLICT, "ticket", "ticket #%lld asks for %s, not %s",
                                (long long)t->id, t->service, spec->service);
        free(t);
        if (r < 0) {
                if (err->code == PC_OPS_ENOENT)
                        snprintf(err->field, sizeof(err->field), "ticket");
                return r;
        }
        return pc_ops_ticket_approve(o, who, spec->ticket_id, &a, ret, err);
}

static int exception_grant_checked(struct pc_ops *o, const struct pc_ops_actor *who, const struct pc_exception_spec *spec,
                           struct pc_grant_result *ret, struct pc_ops_error *err)
{
        struct pc_exception e = { .until = spec->until, .ticket_id = spec->ticket_id, .created = pc_now() };
        struct pc_vps *vps = NULL;
        const struct pc_rule *rule;
        struct pc_actor actor;
        int64_t id;
        int r;

        if ((r = pc_ops_authorize(who, PC_OP_EXCEPTION_GRANT, err)) < 0 || (r = check_grant_spec(o, spec, err)) < 0)
                return r;
        if (spec->ticket_id != 0)
                return grant_ticket(o, who, spec, ret, err);
        if ((r = pc_ops_vps_fetch(o, who, spec->vps_id, &vps, err)) < 0)
                return r;
        r = pc_ops_grant_check(o, who, vps, spec->service, &rule, err);
        if (r < 0)
                goto out;
        snprintf(e.service, sizeof(e.service), "%s", spec->service);
        snprintf(e.by, sizeof(e.by), "%s", who->principal);
        snprintf(e.reason, sizeof(e.reason), "%s", spec->reason);
        actor = pc_ops_store_actor(who, spec->reason);
        r = pc_store_exception_grant(o->store, vps->id, &e, &actor, &id);
        if (r < 0) {
                pc_ops_store_fail(o, r, NULL, err);
                goto out;
        }
        if (ret != NULL)
                *ret = (struct pc_grant_result){ .id = id, .site = vps->site, .rule = rule };
out:
        pc_vps_free(vps);
        return r;
}

/* One transaction: the source prefix's owner and the VPS's policy are
 * the ones the grant is written against. */
int pc_ops_exception_grant(struct pc_ops *o, const struct pc_ops_actor *who, const struct pc_exception_spec *spec,
                           struct pc_grant_result *ret, struct pc_ops_error *err)
{
        int r = pc_ops_begin(o, err);

        return r < 0 ? r : pc_ops_end(o, exception_grant_checked(o, who, spec, ret, err), err);
}

int pc_ops_exception_revoke(struct pc_ops *o, const struct pc_ops_actor *who, const char *vps_id,
                            const char *service, const char *reason, struct pc_ops_error *err)
{
        struct pc_actor actor;
        int r;

        if ((r = pc_ops_authorize(who, PC_OP_EXCEPTION_REVOKE, err)) < 0 || (r = check_subject(o, service, err)) < 0 ||
            (r = check_reason(reason, err)) < 0)
                return r;
        if (vps_id == NULL || vps_id[0] == '\0')
                return pc_ops_fail(err, PC_OPS_EINVAL, "vps", "is required");
        actor = pc_ops_store_actor(who, reason);
        r = pc_store_exception_revoke(o->store, vps_id, service, &actor);
        return r < 0 ? pc_ops_store_fail(o, r, NULL, err) : 0;
}
