/* The operations layer's common part: roles, typed errors and the one
 * table of who may do what (ops.h). */
#include "ops/ops.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/utf8.h"
#include "base/util.h"

static const char *const role_names[] = {
        [PC_ROLE_ADMIN] = "admin",
        [PC_ROLE_SUPPORT] = "support",
        [PC_ROLE_CUSTOMER] = "customer",
        [PC_ROLE_AGENT] = "agent",
};

const char *pc_role_name(enum pc_role role)
{
        return (unsigned)role < PC_ARRAY_SIZE(role_names) ? role_names[role] : NULL;
}

int pc_role_parse(const char *name, enum pc_role *ret)
{
        for (size_t i = 0; name != NULL && i < PC_ARRAY_SIZE(role_names); i++)
                if (strcmp(name, role_names[i]) == 0) {
                        *ret = (enum pc_role)i;
                        return 0;
                }
        return -EINVAL;
}

static const struct {
        const char *name;
        int http;
        int errno_;
} codes[] = {
        [PC_OPS_OK] = { "ok", 200, 0 },
        [PC_OPS_EINVAL] = { "invalid", 400, EINVAL },
        [PC_OPS_ENOENT] = { "not_found", 404, ENOENT },
        [PC_OPS_EEXIST] = { "exists", 409, EEXIST },
        [PC_OPS_EPERM] = { "forbidden", 403, EPERM },
        [PC_OPS_ECONFLICT] = { "conflict", 409, EBUSY },
        [PC_OPS_ELIMIT] = { "limit", 409, ENOSPC },
        [PC_OPS_EIO] = { "internal", 500, EIO },
        [PC_OPS_EAUTH] = { "unauthenticated", 401, EACCES },
};

int pc_ops_http_status(enum pc_ops_code code)
{
        return (unsigned)code < PC_ARRAY_SIZE(codes) ? codes[code].http : 500;
}

const char *pc_ops_code_name(enum pc_ops_code code)
{
        return (unsigned)code < PC_ARRAY_SIZE(codes) ? codes[code].name : "internal";
}

int pc_ops_fail(struct pc_ops_error *err, enum pc_ops_code code, const char *field, const char *fmt, ...)
{
        va_list ap;

        err->code = code;
        snprintf(err->field, sizeof(err->field), "%s", field != NULL ? field : "");
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
        return -codes[(unsigned)code < PC_ARRAY_SIZE(codes) ? code : PC_OPS_EIO].errno_;
}

int pc_ops_store_fail(struct pc_ops *o, int r, const char *field, struct pc_ops_error *err)
{
        enum pc_ops_code code;

        switch (r) {
        case -ENOENT: code = PC_OPS_ENOENT; break;
        case -EEXIST: code = PC_OPS_EEXIST; break;
        /* The store's -EPERM is a state (a termination), not a role. */
        case -EPERM:
        case -EALREADY: code = PC_OPS_ECONFLICT; break;
        case -EINVAL: code = PC_OPS_EINVAL; break;
        case -ENOSPC: code = PC_OPS_ELIMIT; break;
        default: code = PC_OPS_EIO; break;
        }
        pc_ops_fail(err, code, field, "%s", pc_store_errmsg(o->store));
        return r;
}

struct pc_actor pc_ops_store_actor(const struct pc_ops_actor *who, const char *reason)
{
        return (struct pc_actor){ .by = who->principal, .reason = reason };
}

/* Who may do what: one bit per role.  Customers ask (tickets), they never change the registry or grant; support decides on
 * exceptions but does not register machines; the agent (and the VM
 * manager's hooks) keeps the registry in step with the hypervisor. */
#define ROLE(r) (1u << (r))
static const unsigned allowed[PC_OP_COUNT_] = {
        [PC_OP_VPS_REGISTER] = ROLE(PC_ROLE_ADMIN) | ROLE(PC_ROLE_AGENT),
        [PC_OP_VPS_UPDATE_ADDRESSES] = ROLE(PC_ROLE_ADMIN) | ROLE(PC_ROLE_AGENT),
        [PC_OP_VPS_SET_STATE] = ROLE(PC_ROLE_ADMIN) | ROLE(PC_ROLE_AGENT),
        [PC_OP_VPS_REMOVE] = ROLE(PC_ROLE_ADMIN) | ROLE(PC_ROLE_AGENT),
        [PC_OP_EXCEPTION_GRANT] = ROLE(PC_ROLE_ADMIN) | ROLE(PC_ROLE_SUPPORT),
        [PC_OP_EXCEPTION_REVOKE] = ROLE(PC_ROLE_ADMIN) | ROLE(PC_ROLE_SUPPORT),
        /* A customer asks and reads (their own: ENOENT otherwise); only the
         * team decides, and never the customer, not even on their own. */
        [PC_OP_TICKET_OPEN] = ROLE(PC_ROLE_ADMIN) | ROLE(PC_ROLE_SUPPORT) | ROLE(PC_ROLE_CUSTOMER),
        [PC_OP_TICKET_READ] = ROLE(PC_ROLE_ADMIN) | ROLE(PC_ROLE_SUPPORT) | ROLE(PC_ROLE_CUSTOMER),
        [PC_OP_TICKET_INVESTIGATE] = ROLE(PC_ROLE_ADMIN) | ROLE(PC_ROLE_SUPPORT),
        [PC_OP_TICKET_APPROVE] = ROLE(PC_ROLE_ADMIN) | ROLE(PC_ROLE_SUPPORT),
        [PC_OP_TICKET_DENY] = ROLE(PC_ROLE_ADMIN) | ROLE(PC_ROLE_SUPPORT),
        [PC_OP_TICKET_REVOKE] = ROLE(PC_ROLE_ADMIN) | ROLE(PC_ROLE_SUPPORT),
        [PC_OP_TICKET_EXPIRE] = ROLE(PC_ROLE_ADMIN) | ROLE(PC_ROLE_AGENT),
        /* Every role reads VPSes; a customer only their own (ENOENT). */
        [PC_OP_VPS_READ] = ROLE(PC_ROLE_ADMIN) | ROLE(PC_ROLE_SUPPORT) | ROLE(PC_ROLE_CUSTOMER) | ROLE(PC_ROLE_AGENT),
        /* A token is a key to everything its role may do: only an admin mints them. */
        [PC_OP_TOKEN_MANAGE] = ROLE(PC_ROLE_ADMIN),
        /* Fleet-wide figures: not a customer's to see. */
        [PC_OP_METRICS_READ] = ROLE(PC_ROLE_ADMIN) | ROLE(PC_ROLE_SUPPORT) | ROLE(PC_ROLE_AGENT),
        /* A customer sees what happened to their own VPSes, and why. */
        [PC_OP_INCIDENT_READ] = ROLE(PC_ROLE_ADMIN) | ROLE(PC_ROLE_SUPPORT) | ROLE(PC_ROLE_CUSTOMER),
        [PC_OP_INCIDENT_CLOSE] = ROLE(PC_ROLE_ADMIN) | ROLE(PC_ROLE_SUPPORT),
        [PC_OP_ACTION_LIFT] = ROLE(PC_ROLE_ADMIN) | ROLE(PC_ROLE_SUPPORT),
        [PC_OP_AUDIT_READ] = ROLE(PC_ROLE_ADMIN) | ROLE(PC_ROLE_SUPPORT),
        /* Support filters and suspends by hand, the response engine on evidence. */
        [PC_OP_ACTION_PLACE] = ROLE(PC_ROLE_ADMIN) | ROLE(PC_ROLE_SUPPORT) | ROLE(PC_ROLE_AGENT),
        /* It ends a contract: the site policy's engine, or an admin. */
        [PC_OP_TERMINATE] = ROLE(PC_ROLE_ADMIN) | ROLE(PC_ROLE_AGENT),
        [PC_OP_NOTIFICATION_RETRY] = ROLE(PC_ROLE_ADMIN) | ROLE(PC_ROLE_SUPPORT),
        /* The evidence beside a ticket is the team's: a customer reads the
         * ticket and its history. */
        [PC_OP_TICKET_FINDINGS] = ROLE(PC_ROLE_ADMIN) | ROLE(PC_ROLE_SUPPORT),
        [PC_OP_VPS_MOVE] = ROLE(PC_ROLE_ADMIN) | ROLE(PC_ROLE_AGENT),
        [PC_OP_FLEET_READ] = ROLE(PC_ROLE_ADMIN) | ROLE(PC_ROLE_SUPPORT),
        /* Only the host a VM left can see that it did: for a host that
         * cannot say so (dead, or started without the VM), the fleet's
         * admin -- never an agent, whose token may be the claimer's. */
        [PC_OP_VPS_DEPART] = ROLE(PC_ROLE_ADMIN),
};

static const char *const op_names[PC_OP_COUNT_] = {
        [PC_OP_VPS_REGISTER] = "register VPSes",
        [PC_OP_VPS_UPDATE_ADDRESSES] = "change a VPS's addresses",
        [PC_OP_VPS_SET_STATE] = "start or stop VPSes",
        [PC_OP_VPS_REMOVE] = "remove VPSes",
        [PC_OP_EXCEPTION_GRANT] = "grant exceptions",
        [PC_OP_EXCEPTION_REVOKE] = "revoke exceptions",
        [PC_OP_TICKET_OPEN] = "open tickets",
        [PC_OP_TICKET_READ] = "read tickets",
        [PC_OP_TICKET_INVESTIGATE] = "investigate tickets",
        [PC_OP_TICKET_APPROVE] = "approve tickets",
        [PC_OP_TICKET_DENY] = "deny tickets",
        [PC_OP_TICKET_REVOKE] = "revoke tickets",
        [PC_OP_TICKET_EXPIRE] = "expire tickets",
        [PC_OP_VPS_READ] = "read VPSes",
        [PC_OP_TOKEN_MANAGE] = "manage API tokens",
        [PC_OP_METRICS_READ] = "read the fleet's metrics",
        [PC_OP_INCIDENT_READ] = "read incidents, actions and notifications",
        [PC_OP_INCIDENT_CLOSE] = "close incidents",
        [PC_OP_ACTION_LIFT] = "lift or extend actions",
        [PC_OP_AUDIT_READ] = "read the audit log",
        [PC_OP_ACTION_PLACE] = "filter or suspend VPSes",
        [PC_OP_TERMINATE] = "terminate VPSes",
        [PC_OP_NOTIFICATION_RETRY] = "send notifications again",
        [PC_OP_TICKET_FINDINGS] = "read a ticket's findings",
        [PC_OP_VPS_MOVE] = "move VPSes between hypervisors",
        [PC_OP_FLEET_READ] = "read the fleet's agents",
        [PC_OP_VPS_DEPART] = "confirm for a host that a VM left it",
};

/* "admin or agent": the roles in <mask>, for the refusal. */
static void roles_text(unsigned mask, char *buf, size_t size)
{
        size_t len = 0, n = 0, total = 0;

        for (size_t i = 0; i < PC_ARRAY_SIZE(role_names); i++)
                total += (mask & ROLE(i)) != 0;
        buf[0] = '\0';
        for (size_t i = 0; i < PC_ARRAY_SIZE(role_names) && len < size; i++) {
                if (!(mask & ROLE(i)))
                        continue;
                n++;
                len += snprintf(buf + len, size - len, "%s%s", n == 1 ? "" : n == total ? " or " : ", ",
                                role_names[i]);
        }
}

int pc_ops_authorize(const struct pc_ops_actor *who, enum pc_op op, struct pc_ops_error *err)
{
        char roles[64];

        if (who == NULL || who->principal == NULL || who->principal[0] == '\0')
                return pc_ops_fail(err, PC_OPS_EINVAL, "by", "is required: every change is audited with who made it");
        if ((unsigned)op >= PC_OP_COUNT_ || pc_role_name(who->role) == NULL)
                return pc_ops_fail(err, PC_OPS_EPERM, NULL, "%s may not do that", who->principal);
        if (allowed[op] & ROLE(who->role))
                return 0;
        roles_text(allowed[op], roles, sizeof(roles));
        return pc_ops_fail(err, PC_OPS_EPERM, NULL, "%s (role %s) may not %s: only %s may", who->principal,
                           role_names[who->role], op_names[op], roles);
}

const char *pc_ops_actor_host(const struct pc_ops_actor *who)
{
        return who->role == PC_ROLE_AGENT && who->host != NULL && who->host[0] != '\0' ? who->host : NULL;
}

int pc_ops_authorize_vps(const struct pc_ops_actor *who, const struct pc_vps *vps, struct pc_ops_error *err)
{
        const char *host = pc_ops_actor_host(who);

        /* Another customer's VPS does not exist, as far as they can tell;
         * nor, to a hypervisor's hooks, does another hypervisor's: one
         * compromised host must not reach into the rest of the fleet. */
        if ((who->role == PC_ROLE_CUSTOMER && (who->customer == NULL || strcmp(vps->owner, who->customer) != 0)) ||
            (host != NULL && strcmp(vps->host, host) != 0))
                return pc_ops_fail(err, PC_OPS_ENOENT, "vps", "vps %s does not exist", vps->id);
        return 0;
}

int pc_ops_text_check(const char *field, const char *value, size_t size, struct pc_ops_error *err)
{
        char why[80];

        if (value == NULL)
                return 0;
        if (strlen(value) >= size)
                return pc_ops_fail(err, PC_OPS_EINVAL, field, "is longer than %zu bytes", size - 1);
        /* A newline would fake a row of `audit`, an ESC steer the terminal
         * of whoever reads it. */
        if (pc_text_invalid(value, why, sizeof(why)) != NULL)
                return pc_ops_fail(err, PC_OPS_EINVAL, field,
                                   "%s: it is stored and shown to people, so it must be one line of text "
                                   "without control characters", why);
        return 0;
}

int pc_ops_begin(struct pc_ops *o, struct pc_ops_error *err)
{
        int r = pc_store_tx_begin(o->store);

        return r < 0 ? pc_ops_store_fail(o, r, NULL, err) : 0;
}

int pc_ops_end(struct pc_ops *o, int r, struct pc_ops_error *err)
{
        int e = pc_store_tx_end(o->store, r);

        /* The operation's own error stands; a failed commit is the store's. */
        if (r < 0)
                return r;
        return e < 0 ? pc_ops_store_fail(o, e, NULL, err) : 0;
}
