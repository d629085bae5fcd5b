/* UTF-8 validation and the rule for free text: one line of valid UTF-8
 * without control characters. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "base/utf8.h"

static void test_control(void **state)
{
        assert_true(pc_utf8_control((const unsigned char *)"\n", 1));
        assert_true(pc_utf8_control((const unsigned char *)"\x1b", 1));
        assert_true(pc_utf8_control((const unsigned char *)"\x7f", 1));
        assert_true(pc_utf8_control((const unsigned char *)"\xc2\x80", 2));
        assert_true(pc_utf8_control((const unsigned char *)"\xc2\x9f", 2));
        assert_false(pc_utf8_control((const unsigned char *)" ", 1));
        assert_false(pc_utf8_control((const unsigned char *)"~", 1));
        assert_false(pc_utf8_control((const unsigned char *)"\xc2\xa0", 2)); /* no-break space */
        assert_false(pc_utf8_control((const unsigned char *)"\xc3\xa8", 2));
}

static void test_text_invalid(void **state)
{
        char why[80];

        assert_null(pc_text_invalid("invoices; SPF+DKIM ok, perch\xc3\xa8 \xe2\x82\xac", why, sizeof(why)));
        assert_null(pc_text_invalid("", why, sizeof(why)));
        assert_string_equal(pc_text_invalid("ok\nfake row", why, sizeof(why)),
                            "holds the control character U+000A at byte 3");
        assert_string_equal(pc_text_invalid("\x1b[2J", why, sizeof(why)),
                            "holds the control character U+001B at byte 1");
        assert_string_equal(pc_text_invalid("a\tb", why, sizeof(why)),
                            "holds the control character U+0009 at byte 2");
        assert_string_equal(pc_text_invalid("del\x7f", why, sizeof(why)),
                            "holds the control character U+007F at byte 4");
        assert_string_equal(pc_text_invalid("csi\xc2\x9b" "31m", why, sizeof(why)),
                            "holds the control character U+009B at byte 4");
        /* bidirectional controls: "approved" that a terminal shows reversed */
        assert_string_equal(pc_text_invalid("ok \xe2\x80\xae" "devorppa", why, sizeof(why)),
                            "holds the control character U+202E at byte 4");
        assert_string_equal(pc_text_invalid("\xe2\x81\xa6x", why, sizeof(why)),
                            "holds the control character U+2066 at byte 1");
        assert_string_equal(pc_text_invalid("\xd8\x9c", why, sizeof(why)),
                            "holds the control character U+061C at byte 1");
        assert_null(pc_text_invalid("\xe2\x80\xa9" "\xe2\x80\x8d", why, sizeof(why))); /* U+2029, U+200D: not bidi */
        assert_string_equal(pc_text_invalid("bad \xff", why, sizeof(why)), "is not valid UTF-8 at byte 5");
        assert_string_equal(pc_text_invalid("overlong \xc0\xaf", why, sizeof(why)),
                            "is not valid UTF-8 at byte 10");
        assert_string_equal(pc_text_invalid("cut \xe2\x82", why, sizeof(why)), "is not valid UTF-8 at byte 5");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_control),
                cmocka_unit_test(test_text_invalid),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
