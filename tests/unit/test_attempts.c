/* Blocked attempts: the increase of each kernel counter since the last
 * pass, elements forgotten when the kernel lets them expire. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>

#include "detect/attempts.h"
#include "policy/config.h"

/* The delta of noting <packets> for (<iface>, egress, tcp, <port>). */
static uint64_t note(struct pc_attempts *t, const char *iface, uint16_t port, uint64_t packets)
{
        uint64_t d = UINT64_MAX;

        assert_int_equal(pc_attempts_note(t, iface, PC_DIR_EGRESS, 6, port, packets, &d), 0);
        return d;
}

static void test_deltas(void **state)
{
        struct pc_attempts *t;
        uint64_t d = 0;

        assert_int_equal(pc_attempts_new(&t), 0);
        pc_attempts_begin(t);
        assert_int_equal(note(t, "tap1", 25, 3), 3); /* first seen: all of it */
        assert_int_equal(note(t, "tap1", 465, 0), 0);
        assert_int_equal(note(t, "tap2", 25, 1), 1);
        /* Every part of the key tells elements apart. */
        assert_int_equal(pc_attempts_note(t, "tap1", PC_DIR_INGRESS, 6, 25, 2, &d), 0);
        assert_int_equal(d, 2);
        assert_int_equal(pc_attempts_note(t, "tap1", PC_DIR_EGRESS, 17, 25, 5, &d), 0);
        assert_int_equal(d, 5);
        pc_attempts_end(t);
        assert_int_equal(pc_attempts_count(t), 5);

        pc_attempts_begin(t);
        assert_int_equal(note(t, "tap1", 25, 3), 0);  /* nothing new */
        assert_int_equal(note(t, "tap1", 465, 4), 4);
        assert_int_equal(note(t, "tap2", 25, 1), 0);
        assert_int_equal(pc_attempts_note(t, "tap1", PC_DIR_INGRESS, 6, 25, 7, &d), 0);
        assert_int_equal(d, 5);
        assert_int_equal(pc_attempts_note(t, "tap1", PC_DIR_EGRESS, 17, 25, 5, &d), 0);
        assert_int_equal(d, 0);
        pc_attempts_end(t);

        /* A count that went down (the element was made again within a
         * pass) gives nothing, and counts on from the new value. */
        pc_attempts_begin(t);
        assert_int_equal(note(t, "tap1", 25, 1), 0);
        pc_attempts_end(t);
        pc_attempts_begin(t);
        assert_int_equal(note(t, "tap1", 25, 4), 3);
        pc_attempts_end(t);
        pc_attempts_free(t);
}

static void test_expired_forgotten(void **state)
{
        struct pc_attempts *t;

        assert_int_equal(pc_attempts_new(&t), 0);
        pc_attempts_begin(t);
        assert_int_equal(note(t, "tap1", 25, 9), 9);
        assert_int_equal(note(t, "tap2", 25, 9), 9);
        pc_attempts_end(t);
        /* tap1's element expired in the kernel: the pass did not see it. */
        pc_attempts_begin(t);
        assert_int_equal(note(t, "tap2", 25, 9), 0);
        pc_attempts_end(t);
        assert_int_equal(pc_attempts_count(t), 1);
        /* Made again, it counts from zero. */
        pc_attempts_begin(t);
        assert_int_equal(note(t, "tap1", 25, 2), 2);
        assert_int_equal(note(t, "tap2", 25, 10), 1);
        pc_attempts_end(t);

        /* A pass that failed part way is not ended: nothing forgotten. */
        pc_attempts_begin(t);
        assert_int_equal(note(t, "tap2", 25, 10), 0);
        pc_attempts_begin(t);
        assert_int_equal(note(t, "tap1", 25, 2), 0);
        assert_int_equal(note(t, "tap2", 25, 10), 0);
        pc_attempts_end(t);
        assert_int_equal(pc_attempts_count(t), 2);
        pc_attempts_free(t);
}

/* Many elements through growth and a sweep of half of them. */
static void test_many(void **state)
{
        struct pc_attempts *t;
        const int n = 100000;
        char ifname[16];

        assert_int_equal(pc_attempts_new(&t), 0);
        pc_attempts_begin(t);
        for (int i = 0; i < n; i++) {
                snprintf(ifname, sizeof(ifname), "tap%d", i / 100);
                assert_int_equal(note(t, ifname, (uint16_t)(i % 100), (uint64_t)i + 1), (uint64_t)i + 1);
        }
        pc_attempts_end(t);
        assert_int_equal(pc_attempts_count(t), n);
        pc_attempts_begin(t);
        for (int i = 0; i < n; i += 2) {
                snprintf(ifname, sizeof(ifname), "tap%d", i / 100);
                assert_int_equal(note(t, ifname, (uint16_t)(i % 100), (uint64_t)i + 3), 2);
        }
        pc_attempts_end(t);
        assert_int_equal(pc_attempts_count(t), n / 2);
        pc_attempts_begin(t);
        for (int i = 0; i < n; i++) {
                snprintf(ifname, sizeof(ifname), "tap%d", i / 100);
                assert_int_equal(note(t, ifname, (uint16_t)(i % 100), (uint64_t)i + 3),
                                 i % 2 == 0 ? 0 : (uint64_t)i + 3);
        }
        pc_attempts_end(t);
        assert_int_equal(pc_attempts_count(t), n);
        pc_attempts_free(t);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_deltas),
                cmocka_unit_test(test_expired_forgotten),
                cmocka_unit_test(test_many),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
