/* API tokens: adding (their hash only), finding, listing, revoking. */
#include "store/store-sql.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_COLUMNS "id, name, role, customer, created, created_by, expires, revoked, last_used, host"

static void token_read(struct db_stmt *st, struct pc_api_token *t)
{
        memset(t, 0, sizeof(*t));
        t->id = db_column_int64(st, 0);
        copy_trunc(t->name, sizeof(t->name), col_text(st, 1));
        copy_trunc(t->role, sizeof(t->role), col_text(st, 2));
        copy_trunc(t->customer, sizeof(t->customer), col_text(st, 3));
        t->created = db_column_int64(st, 4);
        copy_trunc(t->created_by, sizeof(t->created_by), col_text(st, 5));
        t->expires = db_column_int64(st, 6);
        t->revoked = db_column_int64(st, 7);
        t->last_used = db_column_int64(st, 8);
        copy_trunc(t->host, sizeof(t->host), col_text(st, 9));
}

/* A token as the audit log shows it: everything but its hash. */
static json_t *token_json(const struct pc_api_token *t, int64_t id)
{
        return json_pack("{s:I, s:s, s:s, s:o, s:o, s:o}", "id", (json_int_t)id, "name", t->name, "role", t->role,
                         "customer", t->customer[0] != '\0' ? json_string(t->customer) : json_null(), "host",
                         t->host[0] != '\0' ? json_string(t->host) : json_null(), "expires",
                         t->expires != 0 ? json_integer(t->expires) : json_null());
}

static int token_add_tx(struct sql_store *s, const struct pc_api_token *t, const uint8_t *hash, int64_t now,
                        const struct pc_actor *who, int64_t *ret_id)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        _cleanup_json_ json_t *after = NULL;
        char object[48];
        int64_t id;
        int r;

        r = sql_query(s, &st, "SELECT 1 FROM api_token WHERE name = ? AND revoked IS NULL", "t", t->name);
        if (r < 0)
                return r;
        r = sql_step(s, st);
        if (r < 0)
                return r;
        if (r > 0)
                return sql_err(s, -EEXIST, "a token named %s is in force already: revoke it first", t->name);
        r = sql_insert(s, &id,
                       "INSERT INTO api_token (name, hash, role, customer, created, created_by, expires, host) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                       "tbttitnt", t->name, (const void *)hash, (size_t)PC_TOKEN_HASH_SIZE, t->role,
                       t->customer[0] != '\0' ? t->customer : NULL, now, who->by, t->expires,
                       t->host[0] != '\0' ? t->host : NULL);
        if (r < 0)
                return r;
        after = token_json(t, id);
        if (after == NULL)
                return sql_err(s, -ENOMEM, "out of memory");
        snprintf(object, sizeof(object), "token/%lld", (long long)id);
        r = sql_audit(s, now, who, "token.create", object, NULL, NULL, after);
        if (r < 0)
                return r;
        *ret_id = id;
        return 0;
}

int store_token_add(struct pc_store *ps, const struct pc_api_token *t, const uint8_t *hash, int64_t now,
                    const struct pc_actor *who, int64_t *ret_id)
{
        struct sql_store *s = to_sql(ps);
        int64_t id = 0;
        int r;

        r = sql_check_actor(s, who);
        if (r < 0)
                return r;
        r = sql_tx_begin(s);
        if (r < 0)
                return r;
        r = sql_tx_end(s, token_add_tx(s, t, hash, now, who, &id));
        if (r >= 0 && ret_id != NULL)
                *ret_id = id;
        return r;
}

int store_token_find(struct pc_store *ps, const uint8_t *hash, struct pc_api_token *ret)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        int r;

        r = sql_query(s, &st, "SELECT " TOKEN_COLUMNS " FROM api_token WHERE hash = ?", "b", (const void *)hash,
                      (size_t)PC_TOKEN_HASH_SIZE);
        if (r < 0)
                return r;
        r = sql_step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return sql_err(s, -ENOENT, "no such token");
        token_read(st, ret);
        return 0;
}

int store_token_list(struct pc_store *ps, bool all, pc_api_token_cb cb, void *userdata)
{
        struct sql_store *s = to_sql(ps);
        _cleanup_stmt_ struct db_stmt *st = NULL;
        struct pc_api_token t;
        int r;

        r = sql_query(s, &st,
                      all ? "SELECT " TOKEN_COLUMNS " FROM api_token ORDER BY name, id"
                      : "SELECT " TOKEN_COLUMNS " FROM api_token WHERE revoked IS NULL ORDER BY name, id",
                  "");
        if (r < 0)
                return r;
        while ((r = sql_step(s, st)) > 0) {
                token_read(st, &t);
                r = cb(&t, userdata);
                if (r < 0)
                        return r;
        }
        return r;
}

static int token_revoke_tx(struct sql_store *s, const char *name, int64_t now, const struct pc_actor *who)
{
        _cleanup_stmt_ struct db_stmt *st = NULL;
        _cleanup_json_ json_t *before = NULL, *after = NULL;
        struct pc_api_token t;
        char object[48];
        int r;

        r = sql_query(s, &st, "SELECT " TOKEN_COLUMNS " FROM api_token WHERE name = ? AND revoked IS NULL", "t",
                      name);
        if (r < 0)
                return r;
        r = sql_step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return sql_err(s, -ENOENT, "no token named %s is in force", name);
        token_read(st, &t);
        r = sql_exec(s, "UPDATE api_token SET revoked = ? WHERE id = ?", "ii", now, t.id);
        if (r < 0)
                return r;
        before = token_json(&t, t.id);
        after = json_pack("{s:I}", "revoked", (json_int_t)now);
        if (before == NULL || after == NULL)
                return sql_err(s, -ENOMEM, "out of memory");
        snprintf(object, sizeof(object), "token/%lld", (long long)t.id);
        return sql_audit(s, now, who, "token.revoke", object, NULL, before, after);
}

int store_token_revoke(struct pc_store *ps, const char *name, int64_t now, const struct pc_actor *who)
{
        struct sql_store *s = to_sql(ps);
        int r;

        r = sql_check_actor(s, who);
        if (r < 0)
                return r;
        r = sql_tx_begin(s);
        if (r < 0)
                return r;
        return sql_tx_end(s, token_revoke_tx(s, name, now, who));
}

int store_token_used(struct pc_store *ps, int64_t id, int64_t now)
{
        return sql_exec(to_sql(ps), "UPDATE api_token SET last_used = ? WHERE id = ?", "ii", now, id);
}
