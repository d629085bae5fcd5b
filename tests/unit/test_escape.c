/* The one escaping helper: reasons and replies from outside must not
 * inject an SMTP reply line, a fake log field, a fake table row or a
 * terminal escape sequence. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "base/escape.h"

static void test_reply_keeps_plain_text(void **state)
{
        char buf[128];

        assert_int_equal(pc_escape(buf, sizeof(buf), "filter #3 (abuse-desk): lab: spam", PC_ESCAPE_REPLY), 33);
        assert_string_equal(buf, "filter #3 (abuse-desk): lab: spam");
}

/* A reason stored with CR LF would have become a second reply line. */
static void test_reply_cannot_inject_a_line(void **state)
{
        char buf[128];

        pc_escape(buf, sizeof(buf), "spam\r\n250 2.0.0 Ok\r\n", PC_ESCAPE_REPLY);
        assert_string_equal(buf, "spam\\x0d\\x0a250 2.0.0 Ok\\x0d\\x0a");
        assert_null(strchr(buf, '\r'));
        assert_null(strchr(buf, '\n'));
        pc_escape(buf, sizeof(buf), "a\tb\x7f\x01 \\ \xc3\xa8", PC_ESCAPE_REPLY);
        assert_string_equal(buf, "a\\x09b\\x7f\\x01 \\\\ \\xc3\\xa8");
}

static void test_log_bare_and_quoted(void **state)
{
        char buf[128];

        pc_escape(buf, sizeof(buf), "vps-101", PC_ESCAPE_LOG);
        assert_string_equal(buf, "vps-101");
        pc_escape(buf, sizeof(buf), "", PC_ESCAPE_LOG);
        assert_string_equal(buf, "\"\"");
        pc_escape(buf, sizeof(buf), "250 2.0.0 Ok: queued", PC_ESCAPE_LOG);
        assert_string_equal(buf, "\"250 2.0.0 Ok: queued\"");
}

/* A quote would have closed reply="..." and started a fake field; a
 * newline a fake log line. */
static void test_log_cannot_fake_a_field_or_line(void **state)
{
        char buf[128];

        pc_escape(buf, sizeof(buf), "x\" result=sent \"", PC_ESCAPE_LOG);
        assert_string_equal(buf, "\"x\\\" result=sent \\\"\"");
        pc_escape(buf, sizeof(buf), "a=b", PC_ESCAPE_LOG);
        assert_string_equal(buf, "\"a=b\"");
        pc_escape(buf, sizeof(buf), "ok\nportcullis-smtpd: message vps=other", PC_ESCAPE_LOG);
        assert_string_equal(buf, "\"ok\\x0aportcullis-smtpd: message vps=other\"");
}

/* Truncation stops between escapes and keeps the closing quote. */
static void test_truncation(void **state)
{
        char buf[8];

        assert_int_equal(pc_escape(buf, sizeof(buf), "abc\r\ndef", PC_ESCAPE_REPLY), 7);
        assert_string_equal(buf, "abc\\x0d");
        assert_int_equal(pc_escape(buf, sizeof(buf), "abcd\r\n", PC_ESCAPE_REPLY), 4);
        assert_string_equal(buf, "abcd");
        assert_int_equal(pc_escape(buf, sizeof(buf), "a b c d e", PC_ESCAPE_LOG), 7);
        assert_string_equal(buf, "\"a b c\"");
        assert_int_equal(pc_escape(buf, 2, "a b", PC_ESCAPE_LOG), 0);
        assert_string_equal(buf, "");
        assert_int_equal(pc_escape(buf, 1, "abc", PC_ESCAPE_REPLY), 0);
        assert_string_equal(buf, "");
}

/* For a terminal: UTF-8 stays readable, every control character is
 * shown, none is written. */
static void test_text_keeps_utf8(void **state)
{
        char buf[128];

        assert_int_equal(pc_escape(buf, sizeof(buf), "fatture, perch\xc3\xa8 \xe2\x82\xac", PC_ESCAPE_TEXT), 20);
        assert_string_equal(buf, "fatture, perch\xc3\xa8 \xe2\x82\xac");
}

static void test_text_shows_controls(void **state)
{
        char buf[128];

        pc_escape(buf, sizeof(buf), "ok\n2026-01-01 alice vps.add", PC_ESCAPE_TEXT);
        assert_string_equal(buf, "ok\\n2026-01-01 alice vps.add");
        pc_escape(buf, sizeof(buf), "\x1b[2J\r\t\x7f\x01", PC_ESCAPE_TEXT);
        assert_string_equal(buf, "\\x1b[2J\\r\\t\\x7f\\x01");
        /* C1: CSI (U+009B) as UTF-8, and the bare byte 0x9b (not UTF-8). */
        pc_escape(buf, sizeof(buf), "a\xc2\x9b" "31m b\x9b c\xff \\n", PC_ESCAPE_TEXT);
        assert_string_equal(buf, "a\\u009b31m b\\x9b c\\xff \\\\n");
        /* bidirectional controls are escaped, other characters kept */
        pc_escape(buf, sizeof(buf), "ok \xe2\x80\xae" "devorppa \xe2\x81\xa9 \xc3\xa8", PC_ESCAPE_TEXT);
        assert_string_equal(buf, "ok \\u202edevorppa \\u2069 \xc3\xa8");
        /* A character cut short by the end of the text is bytes, not UTF-8. */
        pc_escape(buf, sizeof(buf), "x\xc3", PC_ESCAPE_TEXT);
        assert_string_equal(buf, "x\\xc3");
}

/* Truncation keeps whole characters and whole escapes. */
static void test_text_truncation(void **state)
{
        char buf[6];

        assert_int_equal(pc_escape(buf, sizeof(buf), "abc\xc3\xa8", PC_ESCAPE_TEXT), 5);
        assert_string_equal(buf, "abc\xc3\xa8");
        assert_int_equal(pc_escape(buf, sizeof(buf), "abcd\xc3\xa8", PC_ESCAPE_TEXT), 4);
        assert_string_equal(buf, "abcd");
        assert_int_equal(pc_escape(buf, sizeof(buf), "ab\n\n", PC_ESCAPE_TEXT), 4);
        assert_string_equal(buf, "ab\\n");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_reply_keeps_plain_text),
                cmocka_unit_test(test_reply_cannot_inject_a_line),
                cmocka_unit_test(test_log_bare_and_quoted),
                cmocka_unit_test(test_log_cannot_fake_a_field_or_line),
                cmocka_unit_test(test_truncation),
                cmocka_unit_test(test_text_keeps_utf8),
                cmocka_unit_test(test_text_shows_controls),
                cmocka_unit_test(test_text_truncation),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
