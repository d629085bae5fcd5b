/* The HTTP API's bearer tokens (ops.h): minted by an admin, shown once,
 * stored as their SHA-256 only.  256 random bits need no slow hash: no
 * dictionary holds them, so a stolen database reveals nothing usable. */
#include "ops/ops.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "base/util.h"

#define TOKEN_PREFIX "pct_"
#define TOKEN_RANDOM 32 /* bytes */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* <n> bytes as unpadded base64url into <out> (4n/3 rounded up, + NUL). */
static void base64url(const uint8_t *in, size_t n, char *out)
{
        size_t o = 0;
        uint32_t acc = 0;
        int bits = 0;

        for (size_t i = 0; i < n; i++) {
                acc = acc << 8 | in[i];
                bits += 8;
                while (bits >= 6) {
                        bits -= 6;
                        out[o++] = b64url[(acc >> bits) & 63];
                }
        }
        if (bits > 0)
                out[o++] = b64url[(acc << (6 - bits)) & 63];
        out[o] = '\0';
}

static int token_hash(const char *text, uint8_t hash[PC_TOKEN_HASH_SIZE])
{
        unsigned len = 0;

        if (EVP_Digest(text, strlen(text), hash, &len, EVP_sha256(), NULL) != 1 || len != PC_TOKEN_HASH_SIZE)
                return -EIO;
        return 0;
}

int pc_ops_token_create(struct pc_ops *o, const struct pc_ops_actor *who, const struct pc_token_spec *spec,
                        char text[PC_TOKEN_TEXT_SIZE], struct pc_api_token *ret, struct pc_ops_error *err)
{
        struct pc_actor by = pc_ops_store_actor(who, NULL);
        uint8_t rnd[TOKEN_RANDOM], hash[PC_TOKEN_HASH_SIZE];
        struct pc_api_token t = { 0 };
        enum pc_role role;
        int64_t now = pc_now();
        int r;

        if ((r = pc_ops_authorize(who, PC_OP_TOKEN_MANAGE, err)) < 0)
                return r;
        if (spec->name == NULL || strlen(spec->name) >= sizeof(t.name) || !pc_name_valid(spec->name))
                return pc_ops_fail(err, PC_OPS_EINVAL, "name",
                                   "'%s' is not a valid token name (1-63 of a-z 0-9 . _ -, starting with a "
                                   "letter or digit)",
                                   spec->name != NULL ? spec->name : "");
        if (pc_role_parse(spec->role, &role) < 0)
                return pc_ops_fail(err, PC_OPS_EINVAL, "role", "'%s' is not a role (admin, support, customer, agent)",
                                   spec->role != NULL ? spec->role : "");
        if (role == PC_ROLE_CUSTOMER) {
                if (spec->customer == NULL)
                        return pc_ops_fail(err, PC_OPS_EINVAL, "customer",
                                           "is required for a customer token: the owner email of their VPSes");
                if (pc_ops_text_check("customer", spec->customer, sizeof(t.customer), err) < 0)
                        return -EINVAL;
                if (!pc_email_valid(spec->customer))
                        return pc_ops_fail(err, PC_OPS_EINVAL, "customer", "'%s' is not a valid email address",
                                           spec->customer);
                snprintf(t.customer, sizeof(t.customer), "%s", spec->customer);
        } else if (spec->customer != NULL)
                return pc_ops_fail(err, PC_OPS_EINVAL, "customer", "is only for a customer token (role %s has none)",
                                   pc_role_name(role));
        if (role == PC_ROLE_AGENT) {
                /* A hypervisor's hooks hold an agent token: bound to that
                 * host, a compromised one reaches no other host's VPSes.
                 * Unbound only when the admin says so. */
                if (spec->host != NULL && spec->any_host)
                        return pc_ops_fail(err, PC_OPS_EINVAL, "host",
                                           "an agent token is bound to one host or to any host, not both (host "
                                           "%.63s given, and any host)",
                                           spec->host);
                if (spec->host == NULL && !spec->any_host)
                        return pc_ops_fail(err, PC_OPS_EINVAL, "host",
                                           "an agent token needs a host: the hypervisor whose hooks hold it, "
                                           "whose VPSes alone it acts on (or any host, said explicitly, on a "
                                           "single host)");
                if (spec->host != NULL && (spec->host[0] == '\0' || strlen(spec->host) >= sizeof(t.host) ||
                                           !pc_name_valid(spec->host)))
                        return pc_ops_fail(err, PC_OPS_EINVAL, "host",
                                           "host '%.63s' is not a name: use 1-63 of a-z 0-9 . _ - starting with a "
                                           "letter or digit",
                                           spec->host);
                if (spec->host != NULL)
                        snprintf(t.host, sizeof(t.host), "%s", spec->host);
        } else if (spec->host != NULL || spec->any_host)
                return pc_ops_fail(err, PC_OPS_EINVAL, "host", "a host is only for an agent token (role %s has none)",
                                   pc_role_name(role));
        if (spec->expires != 0 && spec->expires <= now)
                return pc_ops_fail(err, PC_OPS_EINVAL, "expires", "is in the past");
        snprintf(t.name, sizeof(t.name), "%s", spec->name);
        snprintf(t.role, sizeof(t.role), "%s", pc_role_name(role));
        t.expires = spec->expires;

        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
                return pc_ops_fail(err, PC_OPS_EIO, NULL, "cannot read random bytes for the token: %s",
                                   strerror(errno));
        memcpy(text, TOKEN_PREFIX, strlen(TOKEN_PREFIX));
        base64url(rnd, sizeof(rnd), text + strlen(TOKEN_PREFIX));
        if (token_hash(text, hash) < 0)
                return pc_ops_fail(err, PC_OPS_EIO, NULL, "cannot hash the token");
        r = pc_store_token_add(o->store, &t, hash, now, &by, &t.id);
        if (r < 0)
                return pc_ops_store_fail(o, r, r == -EEXIST ? "name" : NULL, err);
        t.created = now;
        snprintf(t.created_by, sizeof(t.created_by), "%s", who->principal);
        if (ret != NULL)
                *ret = t;
        return 0;
}

int pc_ops_token_revoke(struct pc_ops *o, const struct pc_ops_actor *who, const char *name,
                        struct pc_ops_error *err)
{
        struct pc_actor by = pc_ops_store_actor(who, NULL);
        int r;

        if ((r = pc_ops_authorize(who, PC_OP_TOKEN_MANAGE, err)) < 0)
                return r;
        if (name == NULL || !pc_name_valid(name))
                return pc_ops_fail(err, PC_OPS_EINVAL, "name", "'%s' is not a valid token name",
                                   name != NULL ? name : "");
        r = pc_store_token_revoke(o->store, name, pc_now(), &by);
        return r < 0 ? pc_ops_store_fail(o, r, NULL, err) : 0;
}

int pc_ops_token_list(struct pc_ops *o, const struct pc_ops_actor *who, bool all, pc_api_token_cb cb,
                      void *userdata, struct pc_ops_error *err)
{
        int r;

        if ((r = pc_ops_authorize(who, PC_OP_TOKEN_MANAGE, err)) < 0)
                return r;
        r = pc_store_token_list(o->store, all, cb, userdata);
        return r < 0 ? pc_ops_store_fail(o, r, NULL, err) : 0;
}

int pc_ops_token_authenticate(struct pc_ops *o, const char *text, int64_t now, struct pc_api_token *ret,
                              struct pc_ops_actor *actor, struct pc_ops_error *err)
{
        uint8_t hash[PC_TOKEN_HASH_SIZE];
        enum pc_role role;
        size_t len;
        int r;

        /* One message for every cause: a prober learns nothing of which
         * tokens exist, were revoked or ran out. */
        len = text != NULL ? strnlen(text, PC_TOKEN_TEXT_SIZE) : 0;
        if (len != PC_TOKEN_TEXT_SIZE - 1 || strncmp(text, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) != 0)
                return pc_ops_fail(err, PC_OPS_EAUTH, NULL, "a valid bearer token is required");
        if (token_hash(text, hash) < 0)
                return pc_ops_fail(err, PC_OPS_EIO, NULL, "cannot hash the token");
        r = pc_store_token_find(o->store, hash, ret);
        if (r == -ENOENT || (r == 0 && (ret->revoked != 0 || (ret->expires != 0 && ret->expires <= now))))
                return pc_ops_fail(err, PC_OPS_EAUTH, NULL, "a valid bearer token is required");
        if (r < 0)
                return pc_ops_store_fail(o, r, NULL, err);
        if (pc_role_parse(ret->role, &role) < 0)
                return pc_ops_fail(err, PC_OPS_EIO, NULL, "token %s has an unknown role", ret->name);
        *actor = (struct pc_ops_actor){
                .principal = ret->name,
                .role = role,
                .customer = ret->customer[0] != '\0' ? ret->customer : NULL,
                .host = ret->host[0] != '\0' ? ret->host : NULL,
        };
        /* To the minute: a write per request would serialise readers. */
        if (now - ret->last_used >= 60 && pc_store_token_used(o->store, ret->id, now) == 0)
                ret->last_used = now;
        return 0;
}
