/* The webhook's body and signature (notify/webhook.h): the HMAC a receiver
 * recomputes, checked against Python's hmac module's answer. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "notify/webhook.h"

#define SECRET "shhh-lab-secret"
#define NOW 1795000000

/* python3 -c 'import hmac,hashlib; print(hmac.new(b"shhh-lab-secret",
 *             b"1795000000.{\"a\":1}", hashlib.sha256).hexdigest())' */
#define WANT "t=1795000000,v1=867528118c8e70bf20fc783991a022a20f4c669ba3d1f499e2fc6ae69beb9ebd"

static void test_signature_is_hmac_sha256_of_timestamp_dot_body(void **state)
{
        const char *body = "{\"a\":1}";
        char sig[PC_WEBHOOK_SIGNATURE_MAX];

        (void)state;
        assert_int_equal(pc_webhook_sign(SECRET, strlen(SECRET), NOW, body, strlen(body), sig), 0);
        assert_string_equal(sig, WANT);
        assert_true(pc_webhook_verify(SECRET, strlen(SECRET), sig, body, strlen(body), NOW + 10, 300));
        /* another body, secret, or a stale or future timestamp is refused */
        assert_false(pc_webhook_verify(SECRET, strlen(SECRET), sig, "{\"a\":2}", 7, NOW, 300));
        assert_false(pc_webhook_verify("other", 5, sig, body, strlen(body), NOW, 300));
        assert_false(pc_webhook_verify(SECRET, strlen(SECRET), sig, body, strlen(body), NOW + 301, 300));
        assert_false(pc_webhook_verify(SECRET, strlen(SECRET), sig, body, strlen(body), NOW - 301, 300));
        assert_false(pc_webhook_verify(SECRET, strlen(SECRET), "t=1795000000,v1=00", body, strlen(body), NOW,
                                       300));
        assert_false(pc_webhook_verify(SECRET, strlen(SECRET), "v1=x", body, strlen(body), NOW, 300));
        /* the timestamp is signed too: moving it breaks the signature */
        assert_false(pc_webhook_verify(SECRET, strlen(SECRET),
                                       "t=1795000001,v1=867528118c8e70bf20fc783991a022a20f4c669ba3d1f499e2fc6ae69beb9ebd",
                                       body, strlen(body), NOW, 300));
        assert_int_equal(pc_webhook_sign("", 0, NOW, body, strlen(body), sig), -EINVAL);
}

static void test_body(void **state)
{
        char *body = NULL, delivery[PC_WEBHOOK_DELIVERY_MAX];

        (void)state;
        assert_int_equal(pc_webhook_body(7, "vps.terminated", NOW, "{\"vps\":\"vps-102\",\"owner\":\"eve@example.net\"}",
                                         delivery, &body),
                         0);
        assert_string_equal(body, "{\"created\":1795000000,\"data\":{\"owner\":\"eve@example.net\",\"vps\":\"vps-102\"},"
                                  "\"delivery\":\"portcullis-7\",\"event\":\"vps.terminated\"}");
        /* the header's id is the body's, without parsing it again */
        assert_string_equal(delivery, "portcullis-7");
        free(body);
        body = NULL;
        /* the id the store gave it, moved out of the data */
        assert_int_equal(pc_webhook_body(7, "vps.terminated", NOW,
                                         "{\"vps\":\"vps-102\",\"delivery\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\"}",
                                         delivery, &body),
                         0);
        assert_string_equal(body, "{\"created\":1795000000,\"data\":{\"vps\":\"vps-102\"},"
                                  "\"delivery\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"event\":\"vps.terminated\"}");
        assert_string_equal(delivery, "0f1e2d3c4b5a69788796a5b4c3d2e1f0");
        free(body);
        body = NULL;
        assert_int_equal(pc_webhook_body(7, "vps.terminated", NOW, "[1]", delivery, &body), -EINVAL);
        assert_int_equal(pc_webhook_body(7, "vps.terminated", NOW, "not json", delivery, &body), -EINVAL);
        assert_null(body);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_signature_is_hmac_sha256_of_timestamp_dot_body),
                cmocka_unit_test(test_body),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
