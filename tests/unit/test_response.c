/* The response to a new incident: the policy's response bits, stepped up
 * by the escalation ladder where the policy filters. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "respond/response.h"

#define NOW 1795000000
#define DAY 86400

static const struct pc_escalation shipped = {
        .memory = 30 * DAY,
        .steps = { 3600, DAY, PC_ESCALATION_SUSPEND },
        .n_steps = 3,
};

static void test_notify_only_records_a_notice(void **state)
{
        struct pc_response_plan p = pc_response_decide(PC_RESP_NOTIFY, &shipped, NULL, 0, NOW, false);

        (void)state;
        assert_int_equal(p.kind, PC_RESPONSE_NOTICE);
        assert_int_equal(p.step.kind, PC_LADDER_NONE);
        assert_false(pc_response_uses_ladder(PC_RESP_NOTIFY));
        p = pc_response_decide(0, &shipped, NULL, 0, NOW, false);
        assert_int_equal(p.kind, PC_RESPONSE_RECORD);
}

static void test_suspend_ignores_the_ladder(void **state)
{
        unsigned resp = PC_RESP_SUSPEND | PC_RESP_NOTIFY | PC_RESP_OUTBOUND_FILTER;
        struct pc_response_plan p = pc_response_decide(resp, &shipped, NULL, 0, NOW, false);

        (void)state;
        assert_int_equal(p.kind, PC_RESPONSE_SUSPEND);
        assert_false(pc_response_uses_ladder(resp));
}

static void test_filter_climbs_the_ladder(void **state)
{
        unsigned resp = PC_RESP_OUTBOUND_FILTER | PC_RESP_NOTIFY;
        int64_t one[] = { NOW - DAY }, two[] = { NOW - 2 * DAY, NOW - DAY }, old[] = { NOW - 31 * DAY };
        struct pc_response_plan p;
        char text[128];

        (void)state;
        assert_true(pc_response_uses_ladder(resp));
        p = pc_response_decide(resp, &shipped, NULL, 0, NOW, false);
        assert_int_equal(p.kind, PC_RESPONSE_FILTER);
        assert_int_equal(p.direction, PC_DIR_EGRESS);
        assert_int_equal(p.until, NOW + 3600);
        assert_string_equal(pc_response_step_text(&p, &shipped, text, sizeof(text)),
                            "; the 1st within 30d: step 1 of 3, 1h");
        p = pc_response_decide(resp, &shipped, one, 1, NOW, false);
        assert_int_equal(p.kind, PC_RESPONSE_FILTER);
        assert_int_equal(p.until, NOW + DAY);
        p = pc_response_decide(resp, &shipped, two, 2, NOW, false);
        assert_int_equal(p.kind, PC_RESPONSE_SUSPEND);
        assert_string_equal(pc_response_step_text(&p, &shipped, text, sizeof(text)),
                            "; the 3rd within 30d: step 3 of 3, suspend");
        /* outside the memory: a first incident again */
        p = pc_response_decide(resp, &shipped, old, 1, NOW, false);
        assert_int_equal(p.until, NOW + 3600);
}

static void test_both_directions_and_no_ladder(void **state)
{
        struct pc_escalation none = { .memory = DAY };
        unsigned resp = PC_RESP_OUTBOUND_FILTER | PC_RESP_INBOUND_FILTER;
        struct pc_response_plan p = pc_response_decide(resp, &none, NULL, 0, NOW, false);
        char text[64];

        (void)state;
        assert_int_equal(p.kind, PC_RESPONSE_FILTER);
        assert_int_equal(p.direction, PC_DIR_EGRESS | PC_DIR_INGRESS);
        assert_int_equal(p.until, 0); /* until an admin lifts it */
        assert_string_equal(pc_response_step_text(&p, &none, text, sizeof(text)), "");
}

static void test_a_victim_never_climbs(void **state)
{
        unsigned resp = PC_RESP_INBOUND_FILTER | PC_RESP_NOTIFY;
        int64_t two[] = { NOW - 2 * DAY, NOW - DAY };
        struct pc_escalation suspend_first = { .memory = DAY, .steps = { PC_ESCALATION_SUSPEND }, .n_steps = 1 };
        struct pc_response_plan p;

        (void)state;
        p = pc_response_decide(resp, &shipped, two, 2, NOW, true);
        assert_int_equal(p.kind, PC_RESPONSE_FILTER);
        assert_int_equal(p.direction, PC_DIR_INGRESS);
        assert_int_equal(p.until, NOW + 3600);
        /* the same history for an abuser suspends */
        p = pc_response_decide(resp, &shipped, two, 2, NOW, false);
        assert_int_equal(p.kind, PC_RESPONSE_SUSPEND);
        p = pc_response_decide(resp, &suspend_first, NULL, 0, NOW, true);
        assert_int_equal(p.kind, PC_RESPONSE_FILTER);
        assert_int_equal(p.until, NOW + PC_RESPONSE_VICTIM_FILTER);
}

/* Provider A: "Attempting to circumvent our IP spoofing protections will
 * result in immediate termination of your account." */
static void test_spoofing_again_after_a_lift_terminates(void **state)
{
        unsigned resp = PC_RESP_SUSPEND | PC_RESP_NOTIFY | PC_RESP_TERMINATE;
        struct pc_response_history first = { 0 }, again = { .lifted_suspensions = 1, .episode_kinds = 1 };
        struct pc_response_plan p;

        (void)state;
        p = pc_response_circumvent(pc_response_decide(resp, &shipped, NULL, 0, NOW, false), resp, &first, false);
        assert_int_equal(p.kind, PC_RESPONSE_SUSPEND);
        assert_int_equal(p.why, PC_CIRCUMVENT_NONE);
        p = pc_response_circumvent(pc_response_decide(resp, &shipped, NULL, 0, NOW, false), resp, &again, false);
        assert_int_equal(p.kind, PC_RESPONSE_TERMINATE);
        assert_int_equal(p.why, PC_CIRCUMVENT_AFTER_LIFT);
        assert_string_not_equal(pc_circumvention_text(p.why), "");
        /* without 'terminate' in the policy, it is suspended again */
        resp &= ~PC_RESP_TERMINATE;
        p = pc_response_circumvent(pc_response_decide(resp, &shipped, NULL, 0, NOW, false), resp, &again, false);
        assert_int_equal(p.kind, PC_RESPONSE_SUSPEND);
}

static void test_several_kinds_in_one_episode_terminate(void **state)
{
        unsigned resp = PC_RESP_SUSPEND | PC_RESP_NOTIFY | PC_RESP_TERMINATE;
        struct pc_response_history one = { .episode_kinds = 1 },
                                   two = { .episode_kinds = PC_RESPONSE_CIRCUMVENT_KINDS };
        struct pc_response_plan p = pc_response_decide(resp, &shipped, NULL, 0, NOW, false);

        (void)state;
        assert_int_equal(pc_response_circumvent(p, resp, &one, false).kind, PC_RESPONSE_SUSPEND);
        assert_int_equal(pc_response_circumvent(p, resp, NULL, false).kind, PC_RESPONSE_SUSPEND);
        p = pc_response_circumvent(p, resp, &two, false);
        assert_int_equal(p.kind, PC_RESPONSE_TERMINATE);
        assert_int_equal(p.why, PC_CIRCUMVENT_KINDS);
        /* a filtering policy's filter becomes a termination too, with no end */
        resp = PC_RESP_OUTBOUND_FILTER | PC_RESP_TERMINATE;
        p = pc_response_circumvent(pc_response_decide(resp, &shipped, NULL, 0, NOW, false), resp, &two, false);
        assert_int_equal(p.kind, PC_RESPONSE_TERMINATE);
        assert_int_equal(p.until, 0);
}

static void test_no_circumvention_without_an_action(void **state)
{
        struct pc_response_history h = { .lifted_suspensions = 3, .episode_kinds = 4 };
        unsigned resp = PC_RESP_INBOUND_FILTER | PC_RESP_TERMINATE;
        struct pc_response_plan p;

        (void)state;
        /* a policy that only notifies has nothing to circumvent */
        p = pc_response_decide(PC_RESP_NOTIFY | PC_RESP_TERMINATE, &shipped, NULL, 0, NOW, false);
        assert_int_equal(pc_response_circumvent(p, PC_RESP_NOTIFY | PC_RESP_TERMINATE, &h, false).kind,
                         PC_RESPONSE_NOTICE);
        /* a victim is never terminated */
        p = pc_response_decide(resp, &shipped, NULL, 0, NOW, true);
        assert_int_equal(pc_response_circumvent(p, resp, &h, true).kind, PC_RESPONSE_FILTER);
}

static void test_ladder_terminate_step(void **state)
{
        const struct pc_escalation e = { .memory = 30 * DAY,
                                         .steps = { 3600, PC_ESCALATION_SUSPEND, PC_ESCALATION_TERMINATE },
                                         .n_steps = 3 };
        unsigned resp = PC_RESP_OUTBOUND_FILTER | PC_RESP_NOTIFY;
        int64_t two[] = { NOW - 2 * DAY, NOW - DAY };
        struct pc_response_plan p;
        char buf[128];

        (void)state;
        p = pc_response_decide(resp, &e, two, 2, NOW, false);
        assert_int_equal(p.kind, PC_RESPONSE_TERMINATE);
        assert_int_equal(p.why, PC_CIRCUMVENT_LADDER);
        assert_non_null(strstr(pc_response_step_text(&p, &e, buf, sizeof(buf)), "step 3 of 3, terminate"));
        /* a victim's first step stays a filter */
        p = pc_response_decide(resp, &e, two, 2, NOW, true);
        assert_int_equal(p.kind, PC_RESPONSE_FILTER);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_notify_only_records_a_notice),
                cmocka_unit_test(test_suspend_ignores_the_ladder),
                cmocka_unit_test(test_filter_climbs_the_ladder),
                cmocka_unit_test(test_both_directions_and_no_ladder),
                cmocka_unit_test(test_a_victim_never_climbs),
                cmocka_unit_test(test_spoofing_again_after_a_lift_terminates),
                cmocka_unit_test(test_several_kinds_in_one_episode_terminate),
                cmocka_unit_test(test_no_circumvention_without_an_action),
                cmocka_unit_test(test_ladder_terminate_step),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
