/* The webhook's body and signature (see webhook.h for the contract). */
#include "notify/webhook.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pc_webhook_body(int64_t id, const char *event, int64_t created, const char *payload_json,
                    char delivery[PC_WEBHOOK_DELIVERY_MAX], char **ret)
{
        json_t *data = json_loads(payload_json != NULL ? payload_json : "", 0, NULL), *o;
        char *text;

        if (data == NULL || !json_is_object(data)) {
                json_decref(data);
                return -EINVAL;
        }
        /* the id the store gave the event when it queued it, moved out of
         * its data (rows queued before it had one: by row number) */
        if (json_is_string(json_object_get(data, "delivery")))
                snprintf(delivery, PC_WEBHOOK_DELIVERY_MAX, "%s", json_string_value(json_object_get(data, "delivery")));
        else
                snprintf(delivery, PC_WEBHOOK_DELIVERY_MAX, "portcullis-%" PRId64, id);
        json_object_del(data, "delivery");
        o = json_pack("{s:s, s:s, s:I, s:o}", "delivery", delivery, "event", event != NULL ? event : "",
                      "created", (json_int_t)created, "data", data);
        if (o == NULL)
                return -ENOMEM;
        text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(o);
        if (text == NULL)
                return -ENOMEM;
        *ret = text;
        return 0;
}

/* The lowercase hex HMAC-SHA256 of "<timestamp>.<body>" into <hex> (65 bytes). */
static int mac_hex(const void *secret, size_t secret_len, int64_t timestamp, const char *body, size_t body_len,
                   char hex[65])
{
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int mac_len = 0;
        char ts[24];
        int n = snprintf(ts, sizeof(ts), "%" PRId64 ".", timestamp);
        unsigned char *msg;
        bool ok;

        if (secret == NULL || secret_len == 0 || secret_len > INT32_MAX || body_len > SIZE_MAX - sizeof(ts))
                return -EINVAL;
        msg = malloc((size_t)n + body_len + 1);
        if (msg == NULL)
                return -ENOMEM;
        memcpy(msg, ts, (size_t)n);
        memcpy(msg + n, body, body_len);
        ok = HMAC(EVP_sha256(), secret, (int)secret_len, msg, (size_t)n + body_len, mac, &mac_len) != NULL &&
             mac_len == 32;
        free(msg);
        if (!ok)
                return -EIO;
        for (unsigned i = 0; i < mac_len; i++)
                snprintf(hex + 2 * i, 3, "%02x", mac[i]);
        return 0;
}

int pc_webhook_sign(const void *secret, size_t secret_len, int64_t timestamp, const char *body, size_t body_len,
                    char out[PC_WEBHOOK_SIGNATURE_MAX])
{
        char hex[65];
        int r = mac_hex(secret, secret_len, timestamp, body, body_len, hex);

        if (r < 0)
                return r;
        snprintf(out, PC_WEBHOOK_SIGNATURE_MAX, "t=%" PRId64 ",v1=%s", timestamp, hex);
        return 0;
}

bool pc_webhook_verify(const void *secret, size_t secret_len, const char *header, const char *body,
                       size_t body_len, int64_t now, int64_t tolerance)
{
        char hex[65];
        long long t;
        int used = 0;

        if (header == NULL || sscanf(header, "t=%lld,v1=%n", &t, &used) != 1 || used == 0 ||
            strlen(header + used) != 64)
                return false;
        if (t > now + tolerance || t < now - tolerance)
                return false;
        if (mac_hex(secret, secret_len, (int64_t)t, body, body_len, hex) < 0)
                return false;
        return CRYPTO_memcmp(hex, header + used, 64) == 0;
}
