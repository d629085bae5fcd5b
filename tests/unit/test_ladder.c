/* The escalation ladder: the n-th incident of a kind within the memory
 * gets the n-th step, the last one repeating. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "respond/ladder.h"

#define NOW 1795000000
#define DAY 86400

/* The shipped ladder: memory 30d, steps [1h, 24h, suspend]. */
static const struct pc_escalation shipped = {
        .memory = 30 * DAY,
        .steps = { 3600, DAY, PC_ESCALATION_SUSPEND },
        .n_steps = 3,
};

static void test_first_incident(void **state)
{
        struct pc_ladder_step st = pc_ladder_step(&shipped, NULL, 0, NOW);

        (void)state;
        assert_int_equal(st.kind, PC_LADDER_FILTER);
        assert_int_equal(st.repeat, 1);
        assert_int_equal(st.index, 0);
        assert_int_equal(st.seconds, 3600);
}

static void test_nth_gets_nth_step(void **state)
{
        int64_t t[] = { NOW - 2 * DAY, NOW - DAY };
        struct pc_ladder_step st;

        (void)state;
        st = pc_ladder_step(&shipped, t, 1, NOW);
        assert_int_equal(st.kind, PC_LADDER_FILTER);
        assert_int_equal(st.repeat, 2);
        assert_int_equal(st.index, 1);
        assert_int_equal(st.seconds, DAY);
        st = pc_ladder_step(&shipped, t, 2, NOW);
        assert_int_equal(st.kind, PC_LADDER_SUSPEND);
        assert_int_equal(st.repeat, 3);
        assert_int_equal(st.index, 2);
        assert_int_equal(st.seconds, 0);
}

/* Past the last step, the last step repeats (a filter here). */
static void test_last_step_repeats(void **state)
{
        const struct pc_escalation e = { .memory = 3600, .steps = { 2, 3600 }, .n_steps = 2 };
        int64_t t[6] = { NOW - 60, NOW - 50, NOW - 40, NOW - 30, NOW - 20, NOW - 10 };
        struct pc_ladder_step st;

        (void)state;
        for (size_t n = 1; n <= 6; n++) {
                st = pc_ladder_step(&e, t, n, NOW);
                assert_int_equal(st.kind, PC_LADDER_FILTER);
                assert_int_equal(st.repeat, n + 1);
                assert_int_equal(st.index, 1);
                assert_int_equal(st.seconds, 3600);
        }
        /* ... and a suspend as last step repeats too */
        st = pc_ladder_step(&shipped, t, 6, NOW);
        assert_int_equal(st.kind, PC_LADDER_SUSPEND);
        assert_int_equal(st.index, 2);
}

/* An incident exactly <memory> seconds old counts; a second older does
 * not; the order of <earlier> does not matter. */
static void test_memory_boundary(void **state)
{
        int64_t at[] = { NOW - 30 * DAY };
        int64_t past[] = { NOW - 30 * DAY - 1 };
        int64_t mixed[] = { NOW - 31 * DAY, NOW - 10, NOW - 30 * DAY - 1, NOW - 30 * DAY };
        struct pc_ladder_step st;

        (void)state;
        st = pc_ladder_step(&shipped, at, 1, NOW);
        assert_int_equal(st.repeat, 2);
        assert_int_equal(st.seconds, DAY);
        st = pc_ladder_step(&shipped, past, 1, NOW);
        assert_int_equal(st.repeat, 1);
        assert_int_equal(st.seconds, 3600);
        st = pc_ladder_step(&shipped, mixed, 4, NOW);
        assert_int_equal(st.repeat, 3);
        assert_int_equal(st.kind, PC_LADDER_SUSPEND);
}

/* A clock set back: an earlier incident stamped after <now> counts. */
static void test_clock_set_back(void **state)
{
        int64_t t[] = { NOW + 5 };
        struct pc_ladder_step st = pc_ladder_step(&shipped, t, 1, NOW);

        (void)state;
        assert_int_equal(st.repeat, 2);
}

static void test_no_steps(void **state)
{
        const struct pc_escalation e = { .memory = 3600, .n_steps = 0 };
        int64_t t[] = { NOW - 1 };
        struct pc_ladder_step st;

        (void)state;
        st = pc_ladder_step(&e, NULL, 0, NOW);
        assert_int_equal(st.kind, PC_LADDER_NONE);
        assert_int_equal(st.index, 0);
        assert_int_equal(st.seconds, 0);
        st = pc_ladder_step(&e, t, 1, NOW);
        assert_int_equal(st.kind, PC_LADDER_NONE);
        assert_int_equal(st.repeat, 2);
}

/* A ladder of one suspend step: every incident suspends. */
static void test_suspend_only(void **state)
{
        const struct pc_escalation e = { .memory = 60, .steps = { PC_ESCALATION_SUSPEND }, .n_steps = 1 };
        int64_t t[] = { NOW - 1 };

        (void)state;
        assert_int_equal(pc_ladder_step(&e, NULL, 0, NOW).kind, PC_LADDER_SUSPEND);
        assert_int_equal(pc_ladder_step(&e, t, 1, NOW).kind, PC_LADDER_SUSPEND);
}

/* More earlier incidents than steps, or than any array could hold. */
static void test_many(void **state)
{
        int64_t t[1000];
        struct pc_ladder_step st;

        (void)state;
        for (size_t i = 0; i < 1000; i++)
                t[i] = NOW - (int64_t)i;
        st = pc_ladder_step(&shipped, t, 1000, NOW);
        assert_int_equal(st.repeat, 1001);
        assert_int_equal(st.index, 2);
        assert_int_equal(st.kind, PC_LADDER_SUSPEND);
}

static void test_ordinal(void **state)
{
        char b[16];

        (void)state;
        assert_string_equal(pc_ladder_ordinal(1, b, sizeof(b)), "1st");
        assert_string_equal(pc_ladder_ordinal(2, b, sizeof(b)), "2nd");
        assert_string_equal(pc_ladder_ordinal(3, b, sizeof(b)), "3rd");
        assert_string_equal(pc_ladder_ordinal(4, b, sizeof(b)), "4th");
        assert_string_equal(pc_ladder_ordinal(11, b, sizeof(b)), "11th");
        assert_string_equal(pc_ladder_ordinal(12, b, sizeof(b)), "12th");
        assert_string_equal(pc_ladder_ordinal(13, b, sizeof(b)), "13th");
        assert_string_equal(pc_ladder_ordinal(21, b, sizeof(b)), "21st");
        assert_string_equal(pc_ladder_ordinal(112, b, sizeof(b)), "112th");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_first_incident),
                cmocka_unit_test(test_nth_gets_nth_step),
                cmocka_unit_test(test_last_step_repeats),
                cmocka_unit_test(test_memory_boundary),
                cmocka_unit_test(test_clock_set_back),
                cmocka_unit_test(test_no_steps),
                cmocka_unit_test(test_suspend_only),
                cmocka_unit_test(test_many),
                cmocka_unit_test(test_ordinal),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
