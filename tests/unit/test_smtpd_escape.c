/* The proxy's one escaping helper: reasons and replies from outside must
 * not inject an SMTP reply line or a fake log field. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "smtpd/escape.h"

static void test_reply_keeps_plain_text(void **state)
{
        char buf[128];

        assert_int_equal(smtpd_escape(buf, sizeof(buf), "filter #3 (abuse-desk): lab: spam", ESCAPE_REPLY), 33);
        assert_string_equal(buf, "filter #3 (abuse-desk): lab: spam");
}

/* A reason stored with CR LF would have become a second reply line. */
static void test_reply_cannot_inject_a_line(void **state)
{
        char buf[128];

        smtpd_escape(buf, sizeof(buf), "spam\r\n250 2.0.0 Ok\r\n", ESCAPE_REPLY);
        assert_string_equal(buf, "spam\\x0d\\x0a250 2.0.0 Ok\\x0d\\x0a");
        assert_null(strchr(buf, '\r'));
        assert_null(strchr(buf, '\n'));
        smtpd_escape(buf, sizeof(buf), "a\tb\x7f\x01 \\ \xc3\xa8", ESCAPE_REPLY);
        assert_string_equal(buf, "a\\x09b\\x7f\\x01 \\\\ \\xc3\\xa8");
}

static void test_log_bare_and_quoted(void **state)
{
        char buf[128];

        smtpd_escape(buf, sizeof(buf), "vps-101", ESCAPE_LOG);
        assert_string_equal(buf, "vps-101");
        smtpd_escape(buf, sizeof(buf), "", ESCAPE_LOG);
        assert_string_equal(buf, "\"\"");
        smtpd_escape(buf, sizeof(buf), "250 2.0.0 Ok: queued", ESCAPE_LOG);
        assert_string_equal(buf, "\"250 2.0.0 Ok: queued\"");
}

/* A quote would have closed reply="..." and started a fake field; a
 * newline a fake log line. */
static void test_log_cannot_fake_a_field_or_line(void **state)
{
        char buf[128];

        smtpd_escape(buf, sizeof(buf), "x\" result=sent \"", ESCAPE_LOG);
        assert_string_equal(buf, "\"x\\\" result=sent \\\"\"");
        smtpd_escape(buf, sizeof(buf), "a=b", ESCAPE_LOG);
        assert_string_equal(buf, "\"a=b\"");
        smtpd_escape(buf, sizeof(buf), "ok\nportcullis-smtpd: message vps=other", ESCAPE_LOG);
        assert_string_equal(buf, "\"ok\\x0aportcullis-smtpd: message vps=other\"");
}

/* Truncation stops between escapes and keeps the closing quote. */
static void test_truncation(void **state)
{
        char buf[8];

        assert_int_equal(smtpd_escape(buf, sizeof(buf), "abc\r\ndef", ESCAPE_REPLY), 7);
        assert_string_equal(buf, "abc\\x0d");
        assert_int_equal(smtpd_escape(buf, sizeof(buf), "abcd\r\n", ESCAPE_REPLY), 4);
        assert_string_equal(buf, "abcd");
        assert_int_equal(smtpd_escape(buf, sizeof(buf), "a b c d e", ESCAPE_LOG), 7);
        assert_string_equal(buf, "\"a b c\"");
        assert_int_equal(smtpd_escape(buf, 2, "a b", ESCAPE_LOG), 0);
        assert_string_equal(buf, "");
        assert_int_equal(smtpd_escape(buf, 1, "abc", ESCAPE_REPLY), 0);
        assert_string_equal(buf, "");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_reply_keeps_plain_text),
                cmocka_unit_test(test_reply_cannot_inject_a_line),
                cmocka_unit_test(test_log_bare_and_quoted),
                cmocka_unit_test(test_log_cannot_fake_a_field_or_line),
                cmocka_unit_test(test_truncation),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
