/* The port-scan detector: the fast test (TRW), pending timeouts, the hold
 * budget's releases, the slow test's sketches and shapes, and the limits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "detect/scan.h"

#define REC_MAX 64

struct rec {
        size_t n;
        struct pc_scan_finding f[REC_MAX];
        char vps[REC_MAX][64];
        char shape[REC_MAX][16];
};

static void record(void *ud, const struct pc_scan_finding *f)
{
        struct rec *r = ud;

        assert_true(r->n < REC_MAX);
        r->f[r->n] = *f;
        snprintf(r->vps[r->n], sizeof(r->vps[0]), "%s", f->vps);
        snprintf(r->shape[r->n], sizeof(r->shape[0]), "%s", f->shape);
        r->n++;
}

static size_t count(const struct rec *r, enum pc_scan_finding_kind kind)
{
        size_t n = 0;

        for (size_t i = 0; i < r->n; i++)
                n += r->f[i].kind == kind;
        return n;
}

static struct pc_scan *make(struct pc_scan_params *p)
{
        struct pc_scan *s = NULL;

        if (p->seed == 0)
                p->seed = 42;
        assert_int_equal(pc_scan_new(p, &s), 0);
        return s;
}

/* The defaults, with the 1 s pending timeout these tests' times are
 * written for (the default is 2 s). */
static void params_1s(struct pc_scan_params *p)
{
        pc_scan_params_default(p);
        p->pending_timeout_ms = 1000;
        p->confirm_probes = 0; /* a finding at once; confirmation has its own tests */
}

static struct pc_scan *make_default(void)
{
        struct pc_scan_params p;

        params_1s(&p);
        return make(&p);
}

/* Outcome <o> of (<vps>, tcp, 10.<host>, <port>) at <t>. */
static void ev(struct pc_scan *s, struct rec *r, const char *vps, uint32_t host, uint16_t port,
               enum pc_contact_outcome o, int64_t t)
{
        struct pc_contact c = { .vps = vps, .family = AF_INET, .proto = IPPROTO_TCP, .port = port };

        c.addr[0] = 10;
        c.addr[1] = (uint8_t)(host >> 16);
        c.addr[2] = (uint8_t)(host >> 8);
        c.addr[3] = (uint8_t)host;
        assert_int_equal(pc_scan_event(s, &c, o, t, record, r), 0);
}

static struct pc_scan_vps stats(const struct pc_scan *s, const char *vps)
{
        struct pc_scan_vps st;

        assert_int_equal(pc_scan_stats(s, vps, &st), 0);
        return st;
}

static void test_fast_refused(void **state)
{
        struct pc_scan *s = make_default();
        struct rec r = { 0 };
        const struct pc_scan_finding *f;

        for (int i = 0; i < 5; i++) {
                assert_int_equal(r.n, 0);
                ev(s, &r, "vps-1", 1, (uint16_t)(100 + i), PC_CONTACT_OPENED, 10 * i);
                ev(s, &r, "vps-1", 1, (uint16_t)(100 + i), PC_CONTACT_REFUSED, 10 * i + 1);
        }
        assert_int_equal(r.n, 1);
        f = &r.f[0];
        assert_int_equal(f->kind, PC_SCAN_FAST);
        assert_string_equal(r.vps[0], "vps-1");
        assert_int_equal(f->failures, 5);
        assert_int_equal(f->successes, 0);
        assert_int_equal(f->pending, 0);
        assert_true(fabs(f->score - 5 * log(4)) < 1e-9);
        assert_int_equal(f->distinct_hosts, 1);
        assert_int_equal(f->distinct_ports, 5);
        assert_string_equal(r.shape[0], "vertical");
        assert_int_equal(f->first_ms, 0);
        assert_int_equal(f->last_ms, 40);
        assert_int_equal(f->n_sample, 5);
        assert_int_equal(f->sample[0].port, 104); /* newest first */
        assert_int_equal(f->sample[4].port, 100);
        assert_int_equal(f->sample[0].family, AF_INET);
        assert_int_equal(f->sample[0].proto, IPPROTO_TCP);
        assert_int_equal(f->sample[0].addr[0], 10);
        assert_int_equal(f->sample[0].addr[3], 1);
        assert_true(stats(s, "vps-1").scanner);
        assert_int_equal(stats(s, "vps-1").failures, 0); /* the walk restarted */

        /* Once per episode: four more failures make no second finding. */
        for (int i = 5; i < 9; i++) {
                ev(s, &r, "vps-1", 1, (uint16_t)(100 + i), PC_CONTACT_OPENED, 10 * i);
                ev(s, &r, "vps-1", 1, (uint16_t)(100 + i), PC_CONTACT_REFUSED, 10 * i + 1);
        }
        assert_int_equal(r.n, 1);

        /* One port on five hosts, CLOSED unanswered: horizontal. */
        for (int i = 0; i < 5; i++) {
                ev(s, &r, "vps-2", (uint32_t)(50 + i), 22, PC_CONTACT_OPENED, 100 + i);
                ev(s, &r, "vps-2", (uint32_t)(50 + i), 22, PC_CONTACT_CLOSED, 100 + i);
        }
        assert_int_equal(r.n, 2);
        assert_string_equal(r.vps[1], "vps-2");
        assert_int_equal(r.f[1].distinct_hosts, 5);
        assert_int_equal(r.f[1].distinct_ports, 1);
        assert_string_equal(r.shape[1], "horizontal");
        assert_int_equal(pc_scan_check(s), 0);
        pc_scan_free(s);
}

static void test_benign_mixed(void **state)
{
        struct pc_scan *s = make_default();
        struct rec r = { 0 };
        struct pc_scan_vps st;

        /* Four refused: Λ = 4 ln 4 < ln 990. */
        for (int i = 0; i < 4; i++) {
                ev(s, &r, "vps-1", 1, (uint16_t)(100 + i), PC_CONTACT_OPENED, i);
                ev(s, &r, "vps-1", 1, (uint16_t)(100 + i), PC_CONTACT_REFUSED, i);
        }
        assert_int_equal(r.n, 0);
        st = stats(s, "vps-1");
        assert_int_equal(st.failures, 4);
        assert_true(fabs(st.score - 4 * log(4)) < 1e-9);
        /* Answers: the 8th takes Λ to -4 ln 4 <= ln(0.01/0.999), and the
         * walk restarts; two more count in the new one. */
        for (int i = 0; i < 10; i++) {
                ev(s, &r, "vps-1", (uint32_t)(200 + i), 443, PC_CONTACT_OPENED, 10 + i);
                ev(s, &r, "vps-1", (uint32_t)(200 + i), 443, PC_CONTACT_ANSWERED, 10 + i);
        }
        st = stats(s, "vps-1");
        assert_int_equal(st.failures, 0);
        assert_int_equal(st.successes, 2);
        /* Four more refused: Λ = 2 ln 4 again, still nothing. */
        for (int i = 0; i < 4; i++) {
                ev(s, &r, "vps-1", 2, (uint16_t)(100 + i), PC_CONTACT_OPENED, 30 + i);
                ev(s, &r, "vps-1", 2, (uint16_t)(100 + i), PC_CONTACT_REFUSED, 30 + i);
        }
        assert_int_equal(r.n, 0);
        assert_false(stats(s, "vps-1").scanner);
        /* Outcomes of destinations or VPSes not known are ignored. */
        ev(s, &r, "vps-1", 99, 1, PC_CONTACT_REFUSED, 40);
        ev(s, &r, "vps-9", 99, 1, PC_CONTACT_REFUSED, 40);
        assert_int_equal(stats(s, "vps-1").failures, 4);
        assert_int_equal(pc_scan_vps_count(s), 1);
        pc_scan_free(s);
}

static void test_pending_timeout(void **state)
{
        struct pc_scan *s = make_default();
        struct rec r = { 0 };
        struct pc_scan_vps st;

        ev(s, &r, "vps-1", 1, 80, PC_CONTACT_OPENED, 5000);
        pc_scan_tick(s, 5999, record, &r);
        st = stats(s, "vps-1");
        assert_int_equal(st.pending, 1);
        assert_int_equal(st.failures, 0);
        pc_scan_tick(s, 6000, record, &r); /* exactly pending_timeout_ms */
        st = stats(s, "vps-1");
        assert_int_equal(st.pending, 0);
        assert_int_equal(st.failures, 1);
        /* Answered late: the failure becomes a success. */
        ev(s, &r, "vps-1", 1, 80, PC_CONTACT_ANSWERED, 6500);
        st = stats(s, "vps-1");
        assert_int_equal(st.failures, 0);
        assert_int_equal(st.successes, 1);
        /* A second answer changes nothing. */
        ev(s, &r, "vps-1", 1, 80, PC_CONTACT_ANSWERED, 6600);
        assert_int_equal(stats(s, "vps-1").successes, 1);

        /* An event runs the timeouts due, without a tick. */
        ev(s, &r, "vps-1", 2, 80, PC_CONTACT_OPENED, 7000);
        ev(s, &r, "vps-1", 3, 80, PC_CONTACT_OPENED, 8000);
        st = stats(s, "vps-1");
        assert_int_equal(st.failures, 1);
        assert_int_equal(st.pending, 1);

        /* .3 times out; answers restart the walk (benign); a refusal
         * counts in the new one; then .3's late answer counts for
         * nothing: its failure belonged to the walk that restarted. */
        pc_scan_tick(s, 9000, record, &r);
        assert_int_equal(stats(s, "vps-1").failures, 2);
        for (int i = 0; i < 6; i++) {
                ev(s, &r, "vps-1", (uint32_t)(100 + i), 443, PC_CONTACT_OPENED, 9100);
                ev(s, &r, "vps-1", (uint32_t)(100 + i), 443, PC_CONTACT_ANSWERED, 9100);
        }
        ev(s, &r, "vps-1", 4, 80, PC_CONTACT_OPENED, 9200);
        ev(s, &r, "vps-1", 4, 80, PC_CONTACT_REFUSED, 9200);
        st = stats(s, "vps-1");
        /* 2 failures, 1 success: the 5th answer made net -4 and the walk
         * restarted; one answer and one refusal since. */
        assert_int_equal(st.failures, 1);
        assert_int_equal(st.successes, 1);
        ev(s, &r, "vps-1", 3, 80, PC_CONTACT_ANSWERED, 9300);
        st = stats(s, "vps-1");
        assert_int_equal(st.failures, 1);
        assert_int_equal(st.successes, 1);
        assert_int_equal(r.n, 0);
        assert_int_equal(pc_scan_check(s), 0);
        pc_scan_free(s);
}

static void test_parallel_answered_release(void **state)
{
        struct pc_scan *s = make_default();
        struct rec r = { 0 };
        struct pc_scan_vps st;

        for (int i = 0; i < 20; i++)
                ev(s, &r, "vps-1", (uint32_t)(1 + i), 443, PC_CONTACT_OPENED, 1000);
        assert_int_equal(stats(s, "vps-1").budget_count, 20);
        assert_int_equal(pc_scan_held(s, "vps-1", 1001, record, &r), 0);
        assert_int_equal(r.n, 0); /* C = 20 >= 5 */
        for (int i = 0; i < 20; i++) {
                ev(s, &r, "vps-1", (uint32_t)(1 + i), 443, PC_CONTACT_ANSWERED, 1002 + 2 * i);
                /* Each answer takes C down by 2: below 5 after the 8th. */
                assert_int_equal(r.n, i < 7 ? 0 : 1);
        }
        assert_int_equal(r.f[0].kind, PC_SCAN_RELEASE);
        assert_string_equal(r.vps[0], "vps-1");
        assert_true(r.f[0].score < 5);
        st = stats(s, "vps-1");
        assert_false(st.held);
        assert_false(st.scanner);
        assert_int_equal(st.budget_count, 0);
        assert_int_equal(st.pending, 0);
        assert_int_equal(count(&r, PC_SCAN_FAST) + count(&r, PC_SCAN_SLOW), 0);

        /* Held with C already below the budget: released at once. */
        ev(s, &r, "vps-1", 100, 443, PC_CONTACT_OPENED, 2000);
        assert_int_equal(pc_scan_held(s, "vps-1", 2001, record, &r), 0);
        assert_int_equal(r.n, 2);
        assert_int_equal(r.f[1].kind, PC_SCAN_RELEASE);
        /* A contact made before the release does not count after it. */
        ev(s, &r, "vps-1", 101, 443, PC_CONTACT_OPENED, 2002);
        ev(s, &r, "vps-1", 102, 443, PC_CONTACT_OPENED, 2002);
        assert_int_equal(stats(s, "vps-1").budget_count, 2);
        ev(s, &r, "vps-1", 100, 443, PC_CONTACT_ANSWERED, 2003);
        assert_int_equal(stats(s, "vps-1").budget_count, 2);
        ev(s, &r, "vps-1", 101, 443, PC_CONTACT_ANSWERED, 2003);
        assert_int_equal(stats(s, "vps-1").budget_count, 0);
        assert_int_equal(pc_scan_check(s), 0);
        pc_scan_free(s);
}

static void test_scanner_not_released(void **state)
{
        struct pc_scan *s = make_default();
        struct rec r = { 0 };

        for (int i = 0; i < 5; i++) {
                ev(s, &r, "vps-1", 1, (uint16_t)(1 + i), PC_CONTACT_OPENED, i);
                ev(s, &r, "vps-1", 1, (uint16_t)(1 + i), PC_CONTACT_REFUSED, i);
        }
        assert_int_equal(count(&r, PC_SCAN_FAST), 1);
        assert_int_equal(pc_scan_held(s, "vps-1", 10, record, &r), 0);
        for (int i = 0; i < 30; i++) {
                ev(s, &r, "vps-1", (uint32_t)(100 + i), 443, PC_CONTACT_OPENED, 20 + i);
                ev(s, &r, "vps-1", (uint32_t)(100 + i), 443, PC_CONTACT_ANSWERED, 20 + i);
        }
        assert_int_equal(count(&r, PC_SCAN_RELEASE), 0);
        assert_true(stats(s, "vps-1").held);
        /* Forgotten (the agent acted), it starts afresh. */
        pc_scan_forget(s, "vps-1");
        assert_int_equal(pc_scan_stats(s, "vps-1", &(struct pc_scan_vps){ 0 }), -ENOENT);
        assert_int_equal(pc_scan_held(s, "vps-1", 100, record, &r), 0);
        assert_int_equal(count(&r, PC_SCAN_RELEASE), 1);
        pc_scan_free(s);
}

/* A VPS that banked answers (3 net successes: Λ just above the benign
 * line) and is then held makes only the budget's 5 first contacts, all
 * unanswered: the hold restarts its walk, so those 5 make a scanner
 * instead of leaving it held with no finding (the lab demo's vps-101). */
static void test_held_walk_drops_banked_answers(void **state)
{
        struct pc_scan *s = make_default();
        struct rec r = { 0 };

        (void)state;
        for (int i = 0; i < 3; i++) {
                ev(s, &r, "vps-1", (uint32_t)(200 + i), 80, PC_CONTACT_OPENED, i);
                ev(s, &r, "vps-1", (uint32_t)(200 + i), 80, PC_CONTACT_ANSWERED, i);
        }
        assert_true(stats(s, "vps-1").score < 0);
        for (int i = 0; i < 5; i++)
                ev(s, &r, "vps-1", (uint32_t)(300 + i), 80, PC_CONTACT_OPENED, 10);
        assert_int_equal(pc_scan_held(s, "vps-1", 11, record, &r), 0);
        assert_int_equal(count(&r, PC_SCAN_RELEASE), 0);
        pc_scan_tick(s, 1010, record, &r);
        assert_int_equal(count(&r, PC_SCAN_FAST), 1);
        assert_int_equal(r.f[r.n - 1].failures, 5);
        assert_int_equal(r.f[r.n - 1].successes, 0);
        pc_scan_free(s);
}

/* A scanner pads its probes to absent hosts with first contacts to its
 * own server, which answers on every port: one success a walk, so the
 * probes make a FAST finding within 10 (they made none in 300), and the
 * answers to that one host keep C up. */
static void test_padding_one_host(void **state)
{
        struct pc_scan *s = make_default();
        struct rec r = { 0 };
        int found = -1;

        for (int i = 0; i < 300 && found < 0; i++) {
                int64_t t = (int64_t)i * 50;

                ev(s, &r, "vps-1", (uint32_t)(1000 + i), 80, PC_CONTACT_OPENED, t);
                ev(s, &r, "vps-1", 7, (uint16_t)(2000 + i), PC_CONTACT_OPENED, t + 10);
                ev(s, &r, "vps-1", 7, (uint16_t)(2000 + i), PC_CONTACT_ANSWERED, t + 20);
                if (i == 4) {
                        /* Five probes pending, one success: C = 5 - 1;
                         * the walk counts the success after the probe
                         * opened before it is decided. */
                        assert_int_equal(stats(s, "vps-1").budget_count, 4);
                        assert_int_equal(stats(s, "vps-1").successes, 0);
                }
                pc_scan_tick(s, t + 49, record, &r);
                if (count(&r, PC_SCAN_FAST) > 0)
                        found = i;
        }
        assert_true(found >= 0 && found < 30); /* the 6th probe times out at 1250 ms */
        assert_int_equal(r.n, 1);
        assert_int_equal(r.f[0].kind, PC_SCAN_FAST);
        assert_int_equal(r.f[0].failures, 6);
        assert_int_equal(r.f[0].successes, 1);
        assert_int_equal(r.f[0].distinct_hosts, 6);
        assert_int_equal(r.f[0].distinct_ports, 1);
        assert_int_equal(r.f[0].first_ms, 0);
        assert_true(stats(s, "vps-1").scanner);
        assert_int_equal(pc_scan_check(s), 0);
        pc_scan_free(s);
}

/* The padding of tests/lab/hostile/scan_walk_restart_padding.sh: per
 * cycle, 8 hosts of the scanner's own answer on a new port (8 successes:
 * the walk restarts twice) and 4 probes time out.  A host pays once per
 * contact memory, not once per walk: the second cycle's padding offsets
 * nothing, and its probes make the finding. */
static void test_padding_across_walks(void **state)
{
        struct pc_scan *s = make_default();
        struct rec r = { 0 };
        int probes = 0;
        int64_t t = 0;

        for (int cyc = 0; cyc < 15 && count(&r, PC_SCAN_FAST) == 0; cyc++) {
                for (uint32_t h = 0; h < 8; h++) {
                        ev(s, &r, "vps-1", 10 + h, (uint16_t)(2000 + cyc), PC_CONTACT_OPENED, t);
                        ev(s, &r, "vps-1", 10 + h, (uint16_t)(2000 + cyc), PC_CONTACT_ANSWERED, t + 1);
                        t += 10;
                }
                for (int k = 0; k < 4; k++, probes++)
                        ev(s, &r, "vps-1", (uint32_t)(128 + probes), 80, PC_CONTACT_OPENED, t + k);
                t += 3000;
                pc_scan_tick(s, t, record, &r);
        }
        assert_int_equal(count(&r, PC_SCAN_FAST), 1);
        assert_true(probes <= 8);
        assert_int_equal(pc_scan_check(s), 0);

        /* Once contact memory has passed, the same hosts pay again. */
        pc_scan_forget(s, "vps-1");
        ev(s, &r, "vps-1", 10, 3000, PC_CONTACT_OPENED, t);
        ev(s, &r, "vps-1", 10, 3000, PC_CONTACT_ANSWERED, t + 1);
        ev(s, &r, "vps-1", 10, 3001, PC_CONTACT_OPENED, t + 2);
        ev(s, &r, "vps-1", 10, 3001, PC_CONTACT_ANSWERED, t + 3);
        assert_int_equal(stats(s, "vps-1").successes, 1);
        t += 600000 + 10;
        ev(s, &r, "vps-1", 10, 3002, PC_CONTACT_OPENED, t);
        ev(s, &r, "vps-1", 10, 3002, PC_CONTACT_ANSWERED, t + 1);
        assert_int_equal(stats(s, "vps-1").successes, 2);
        pc_scan_free(s);
}

/* An IPv6 server answers as any address of its /64: one host. */
static void test_padding_one_v6_prefix(void **state)
{
        struct pc_scan *s = make_default();
        struct rec r = { 0 };
        struct pc_contact c = { .vps = "vps-1", .family = AF_INET6, .proto = IPPROTO_TCP, .port = 443 };

        c.addr[0] = 0x20;
        c.addr[1] = 0x01;
        c.addr[2] = 0x0d;
        c.addr[3] = 0xb8;
        for (int i = 1; i <= 10; i++) {
                c.addr[15] = (uint8_t)i;
                assert_int_equal(pc_scan_event(s, &c, PC_CONTACT_OPENED, i * 10, record, &r), 0);
                assert_int_equal(pc_scan_event(s, &c, PC_CONTACT_ANSWERED, i * 10 + 1, record, &r), 0);
        }
        assert_int_equal(stats(s, "vps-1").successes, 1);
        c.addr[7] = 1; /* another /64 */
        assert_int_equal(pc_scan_event(s, &c, PC_CONTACT_OPENED, 200, record, &r), 0);
        assert_int_equal(pc_scan_event(s, &c, PC_CONTACT_ANSWERED, 201, record, &r), 0);
        assert_int_equal(stats(s, "vps-1").successes, 2);
        assert_int_equal(pc_scan_check(s), 0);
        pc_scan_free(s);
}

/* A dual-stack client whose IPv6 is broken opens 10 sites at once, each
 * over IPv6 (never answered) and 10 ms later over IPv4 (answered at
 * once).  Counted as they come, the 10 answers restart the walk twice
 * and the 10 failures, 2 s later, meet a fresh walk: a scanner.  Counted
 * in the order the contacts were opened, failure and answer alternate. */
static void test_outcomes_in_opening_order(void **state)
{
        struct pc_scan *s = make_default();
        struct rec r = { 0 };

        for (uint32_t i = 0; i < 10; i++) {
                ev(s, &r, "vps-1", 1000 + i, 80, PC_CONTACT_OPENED, (int64_t)i * 20);
                ev(s, &r, "vps-1", 2000 + i, 80, PC_CONTACT_OPENED, (int64_t)i * 20 + 10);
                ev(s, &r, "vps-1", 2000 + i, 80, PC_CONTACT_ANSWERED, (int64_t)i * 20 + 12);
        }
        assert_int_equal(stats(s, "vps-1").successes, 0); /* waiting for the first IPv6 one */
        pc_scan_tick(s, 5000, record, &r);
        assert_int_equal(count(&r, PC_SCAN_FAST), 0);
        assert_int_equal(pc_scan_check(s), 0);

        /* A refusal opened after a pending contact waits for it too, and
         * an answer counts as soon as the contacts before it are decided. */
        uint64_t f0 = stats(s, "vps-1").failures, s0 = stats(s, "vps-1").successes;

        ev(s, &r, "vps-1", 3000, 80, PC_CONTACT_OPENED, 6000);
        ev(s, &r, "vps-1", 3001, 80, PC_CONTACT_OPENED, 6001);
        ev(s, &r, "vps-1", 3001, 80, PC_CONTACT_REFUSED, 6002);
        assert_int_equal(stats(s, "vps-1").failures, f0);
        ev(s, &r, "vps-1", 3000, 80, PC_CONTACT_ANSWERED, 6500);
        assert_int_equal(stats(s, "vps-1").failures, f0 + 1);
        assert_int_equal(stats(s, "vps-1").successes, s0 + 1);
        assert_int_equal(pc_scan_check(s), 0);
        pc_scan_free(s);
}

/* Happy Eyeballs with IPv6 broken: a burst of 10 sites, each an IPv6
 * SYN never answered and 200 ms later an IPv4 one answered.  In opening
 * order the 10 failures come first: a suspect, which 10 failures do not
 * confirm (20): released, no finding.  A failed IPv6 contact is not
 * excused by an IPv4 answer (a scanner paired each IPv6 probe with an
 * answering IPv4 host and got every probe out, uncounted). */
static void test_happy_eyeballs(void **state)
{
        struct pc_scan_params p;
        struct pc_scan *s;
        struct rec r = { 0 };
        struct pc_contact c6 = { .vps = "vps-1", .family = AF_INET6, .proto = IPPROTO_TCP, .port = 80 };

        params_1s(&p);
        p.confirm_probes = 20;
        s = make(&p);
        c6.addr[0] = 0x20;
        c6.addr[1] = 0x01;
        for (uint32_t i = 0; i < 10; i++) {
                c6.addr[5] = (uint8_t)i; /* a /64 each */
                assert_int_equal(pc_scan_event(s, &c6, PC_CONTACT_OPENED, i, record, &r), 0);
        }
        for (uint32_t i = 0; i < 10; i++) {
                ev(s, &r, "vps-1", 2000 + i, 80, PC_CONTACT_OPENED, 200 + i);
                ev(s, &r, "vps-1", 2000 + i, 80, PC_CONTACT_ANSWERED, 210 + i);
        }
        pc_scan_tick(s, 5000, record, &r);
        assert_int_equal(r.n, 1);
        assert_int_equal(r.f[0].kind, PC_SCAN_SUSPECT);
        assert_int_equal(stats(s, "vps-1").failures, 10);
        assert_int_equal(stats(s, "vps-1").successes, 10);
        assert_int_equal(stats(s, "vps-1").confirm_count, 5);
        pc_scan_tick(s, 5000 + 60000, record, &r);
        assert_int_equal(r.n, 2);
        assert_int_equal(r.f[1].kind, PC_SCAN_UNCONFIRMED);
        assert_int_equal(count(&r, PC_SCAN_FAST), 0);
        assert_int_equal(pc_scan_check(s), 0);
        pc_scan_free(s);
}

/* Confirmation (the default: 20 more first contacts within a minute).
 * A stranger who makes a VPS's URL fetcher open 6 contacts to silent
 * hosts makes it a suspect, held back, never a scanner: the suspicion
 * ends after the window.  A scanner goes on: its held-back contacts (or,
 * where nothing holds it, its further failures) confirm it. */
static void test_confirm(void **state)
{
        struct pc_scan_params p;
        struct pc_scan *s;
        struct rec r = { 0 };
        struct pc_contact held = { .vps = "vps-1", .family = AF_INET, .proto = IPPROTO_TCP, .port = 80 };

        params_1s(&p);
        p.confirm_probes = 20;
        s = make(&p);
        for (uint32_t i = 0; i < 5; i++)
                ev(s, &r, "vps-1", 100 + i, 80, PC_CONTACT_OPENED, i);
        pc_scan_tick(s, 1500, record, &r);
        assert_int_equal(r.n, 1);
        assert_int_equal(r.f[0].kind, PC_SCAN_SUSPECT);
        assert_true(r.f[0].score >= log(99.0) + log(10.0) - 1e-9);
        assert_true(stats(s, "vps-1").suspect);
        assert_false(stats(s, "vps-1").scanner);
        assert_int_equal(pc_scan_held(s, "vps-1", 1500, record, &r), 0);
        assert_int_equal(r.n, 1); /* a suspect is not released */

        /* Held-back contacts: a retransmission counts once. */
        held.addr[0] = 10;
        for (int i = 0; i < 19; i++) {
                held.addr[3] = (uint8_t)(200 + i);
                assert_int_equal(pc_scan_held_contact(s, &held, 2000 + i, record, &r), 0);
                assert_int_equal(pc_scan_held_contact(s, &held, 2000 + i, record, &r), 0);
        }
        assert_int_equal(stats(s, "vps-1").confirm_count, 19);
        assert_int_equal(r.n, 1);
        held.addr[3] = 250;
        assert_int_equal(pc_scan_held_contact(s, &held, 2100, record, &r), 0);
        assert_int_equal(r.n, 2);
        assert_int_equal(r.f[1].kind, PC_SCAN_FAST);
        assert_int_equal(r.f[1].failures, 5);
        assert_int_equal(r.f[1].confirmed_by, 20);
        assert_true(stats(s, "vps-1").scanner);
        assert_false(stats(s, "vps-1").suspect);
        assert_int_equal(pc_scan_check(s), 0);

        /* Not confirmed within the window: released, no finding. */
        for (uint32_t i = 0; i < 6; i++)
                ev(s, &r, "vps-2", 100 + i, 80, PC_CONTACT_OPENED, 3000 + i);
        assert_int_equal(pc_scan_held(s, "vps-2", 3010, record, &r), 0);
        pc_scan_tick(s, 4500, record, &r);
        assert_int_equal(r.n, 3);
        assert_int_equal(r.f[2].kind, PC_SCAN_SUSPECT);
        pc_scan_tick(s, 4500 + 59999, record, &r);
        assert_int_equal(r.n, 3);
        assert_int_equal(pc_scan_check(s), 0);
        pc_scan_tick(s, 4500 + 60000, record, &r);
        assert_int_equal(r.n, 4);
        assert_int_equal(r.f[3].kind, PC_SCAN_UNCONFIRMED);
        assert_false(stats(s, "vps-2").suspect);
        assert_false(stats(s, "vps-2").held);
        assert_int_equal(stats(s, "vps-2").failures, 0);
        assert_int_equal(pc_scan_check(s), 0);

        /* Nothing holds vps-3 back: its further failures confirm it. */
        for (uint32_t i = 0; i < 26; i++)
                ev(s, &r, "vps-3", 100 + i, 80, PC_CONTACT_OPENED, 70000 + 10 * i);
        pc_scan_tick(s, 71000 + 10 * 23, record, &r); /* 24 failed: 5 to suspect it, 19 more */
        assert_int_equal(count(&r, PC_SCAN_FAST), 1);
        assert_true(stats(s, "vps-3").suspect);
        pc_scan_tick(s, 71000 + 10 * 24, record, &r);
        assert_int_equal(r.f[r.n - 1].kind, PC_SCAN_FAST);
        assert_string_equal(r.vps[r.n - 1], "vps-3");
        assert_int_equal(count(&r, PC_SCAN_FAST), 2);
        assert_int_equal(pc_scan_check(s), 0);
        pc_scan_free(s);
}

/* A legitimate burst: 50 hosts answer, 3 refuse; nothing found, and
 * released once C falls under the budget.  One host answering on 50
 * ports (passive FTP) is one success, and does not raise C. */
static void test_benign_burst(void **state)
{
        struct pc_scan *s = make_default();
        struct rec r = { 0 };
        struct pc_scan_vps st;

        for (int i = 0; i < 50; i++)
                ev(s, &r, "vps-1", (uint32_t)(1 + i), 443, PC_CONTACT_OPENED, i);
        for (int i = 0; i < 3; i++)
                ev(s, &r, "vps-1", (uint32_t)(500 + i), 443, PC_CONTACT_OPENED, 50 + i);
        assert_int_equal(pc_scan_held(s, "vps-1", 60, record, &r), 0);
        assert_int_equal(r.n, 0);
        for (int i = 0; i < 50; i++) {
                if (i % 10 == 5)
                        ev(s, &r, "vps-1", (uint32_t)(500 + i / 10), 443, PC_CONTACT_REFUSED, 100 + i);
                ev(s, &r, "vps-1", (uint32_t)(1 + i), 443, PC_CONTACT_ANSWERED, 100 + i);
        }
        assert_int_equal(count(&r, PC_SCAN_FAST) + count(&r, PC_SCAN_SLOW), 0);
        assert_int_equal(count(&r, PC_SCAN_RELEASE), 1);
        assert_false(stats(s, "vps-1").held);

        for (int i = 0; i < 50; i++) {
                ev(s, &r, "vps-2", 9, (uint16_t)(30000 + i), PC_CONTACT_OPENED, 200 + i);
                ev(s, &r, "vps-2", 9, (uint16_t)(30000 + i), PC_CONTACT_ANSWERED, 200 + i);
        }
        st = stats(s, "vps-2");
        assert_int_equal(st.successes, 1);
        assert_int_equal(st.failures, 0);
        assert_int_equal(st.budget_count, 0);
        assert_int_equal(st.pending, 0);
        assert_int_equal(r.n, 1);
        assert_int_equal(pc_scan_check(s), 0);
        pc_scan_free(s);
}

/* Unanswered probes enter the slow test when they time out, not when
 * conntrack forgets them minutes later: 100 probes 2 s apart, answers
 * from one host between them, make a SLOW finding a second after about
 * the 100th (the estimate's error allowed for). */
static void test_slow_timeout(void **state)
{
        struct pc_scan *s = make_default();
        struct rec r = { 0 };
        int64_t found_ms = -1;
        size_t k;

        for (int i = 0; i < 110 && found_ms < 0; i++) {
                int64_t t = (int64_t)i * 2000;

                ev(s, &r, "vps-1", (uint32_t)(1000 + i), 22, PC_CONTACT_OPENED, t);
                ev(s, &r, "vps-1", 7, (uint16_t)(3000 + i), PC_CONTACT_OPENED, t + 500);
                ev(s, &r, "vps-1", 7, (uint16_t)(3000 + i), PC_CONTACT_ANSWERED, t + 510);
                for (int64_t u = t + 600; u < t + 2000 && found_ms < 0; u += 100) {
                        pc_scan_tick(s, u, record, &r);
                        if (count(&r, PC_SCAN_SLOW) > 0)
                                found_ms = u;
                }
        }
        for (k = 0; k < r.n && r.f[k].kind != PC_SCAN_SLOW; k++)
                ;
        assert_true(k < r.n);
        /* At the tick that ran the timeout of probe n (at 2000 n + 1000). */
        assert_int_equal(found_ms % 2000, 1000);
        assert_true(found_ms / 2000 >= 90 && found_ms / 2000 < 110);
        assert_true(r.f[k].score >= 100);
        assert_int_equal(r.f[k].failures, found_ms / 2000 + 1);
        assert_int_equal(r.f[k].last_ms, found_ms - 1000);
        assert_string_equal(r.shape[k], "horizontal");
        assert_int_equal(r.f[k].distinct_ports, 1);
        assert_int_equal(pc_scan_check(s), 0);
        pc_scan_free(s);
}

/* A timed-out destination is in the sketch once: its late answer does
 * not take it out, its CLOSED does not add it again. */
static void test_slow_counted_once(void **state)
{
        struct pc_scan_params p;
        struct pc_scan *s;
        struct rec r = { 0 };
        double one;

        params_1s(&p);
        p.slow_threshold = 3;
        s = make(&p);
        ev(s, &r, "vps-1", 1, 80, PC_CONTACT_OPENED, 0);
        pc_scan_tick(s, 1000, record, &r);
        one = stats(s, "vps-1").slow_estimate;
        assert_true(fabs(one - 1) < 0.01);
        ev(s, &r, "vps-1", 1, 80, PC_CONTACT_ANSWERED, 1500);
        ev(s, &r, "vps-1", 1, 80, PC_CONTACT_CLOSED, 1600);
        assert_true(stats(s, "vps-1").slow_estimate == one);
        ev(s, &r, "vps-1", 2, 80, PC_CONTACT_OPENED, 2000);
        ev(s, &r, "vps-1", 2, 80, PC_CONTACT_REFUSED, 2001);
        assert_int_equal(r.n, 0);
        ev(s, &r, "vps-1", 3, 80, PC_CONTACT_OPENED, 3000);
        pc_scan_tick(s, 4000, record, &r);
        assert_int_equal(r.n, 1);
        assert_int_equal(r.f[0].kind, PC_SCAN_SLOW);
        assert_int_equal(r.f[0].failures, 3);
        assert_int_equal(r.f[0].first_ms, 0);
        assert_int_equal(r.f[0].last_ms, 3000);
        assert_int_equal(r.f[0].n_sample, 2); /* .1 was answered */
        assert_int_equal(pc_scan_check(s), 0);
        pc_scan_free(s);
}

static void test_repeat_contacts(void **state)
{
        struct pc_scan *s = make_default();
        struct rec r = { 0 };
        struct pc_scan_vps st;

        ev(s, &r, "vps-1", 1, 5432, PC_CONTACT_OPENED, 0);
        ev(s, &r, "vps-1", 1, 5432, PC_CONTACT_ANSWERED, 1);
        ev(s, &r, "vps-1", 1, 5432, PC_CONTACT_OPENED, 1000);
        st = stats(s, "vps-1");
        assert_int_equal(st.successes, 1);
        assert_int_equal(st.pending, 0);
        assert_int_equal(st.contacts, 1);
        /* Exactly contact_memory_ms after the last: still a repeat. */
        ev(s, &r, "vps-1", 1, 5432, PC_CONTACT_OPENED, 601000);
        assert_int_equal(stats(s, "vps-1").pending, 0);
        /* A millisecond more: a first contact again. */
        ev(s, &r, "vps-1", 1, 5432, PC_CONTACT_OPENED, 1201001);
        st = stats(s, "vps-1");
        assert_int_equal(st.pending, 1);
        assert_int_equal(st.contacts, 1);
        /* The same port over another transport (a peer's TCP and UDP):
         * the same destination. */
        {
                struct pc_contact c = { .vps = "vps-1", .family = AF_INET, .proto = IPPROTO_UDP, .port = 5432,
                                        .addr = { 10, 0, 0, 1 } };

                assert_int_equal(pc_scan_event(s, &c, PC_CONTACT_OPENED, 1201002, record, &r), 0);
                assert_int_equal(stats(s, "vps-1").contacts, 1);
                /* Another port, address or family, or an echo request:
                 * other destinations. */
                c.port = 5433;
                assert_int_equal(pc_scan_event(s, &c, PC_CONTACT_OPENED, 1201002, record, &r), 0);
                c.port = 5432;
                c.proto = IPPROTO_TCP;
                c.family = AF_INET6;
                assert_int_equal(pc_scan_event(s, &c, PC_CONTACT_OPENED, 1201002, record, &r), 0);
                c.family = AF_INET;
                c.addr[5] = 7; /* beyond an IPv4 address: ignored */
                assert_int_equal(pc_scan_event(s, &c, PC_CONTACT_OPENED, 1201002, record, &r), 0);
                c.proto = IPPROTO_ICMP;
                c.port = 0;
                assert_int_equal(pc_scan_event(s, &c, PC_CONTACT_OPENED, 1201002, record, &r), 0);
        }
        assert_int_equal(stats(s, "vps-1").contacts, 4);
        assert_int_equal(stats(s, "vps-1").pending, 4);
        pc_scan_free(s);
}

/* Slow probes, one every 10 s, each refused and followed by two answered
 * first contacts, so that the fast test keeps restarting: one host and
 * <n> ports (<mode> 0), <n> hosts on 5 ports, a new host each time (1), or
 * 10 ports by host (2).  Returns the findings. */
static void slow_scan(struct rec *r, int n, int mode)
{
        struct pc_scan *s = make_default();
        static const uint16_t ports[] = { 22, 23, 80, 443, 8080 };

        for (int i = 0; i < n; i++) {
                int64_t t = (int64_t)i * 10000;
                uint32_t host = mode == 0 ? 1 : mode == 1 ? (uint32_t)(1 + i) : (uint32_t)(1 + i / 10);
                uint16_t port = mode == 0 ? (uint16_t)(1 + i) : mode == 1 ? ports[i % 5] : (uint16_t)(1 + i % 10);

                ev(s, r, "vps-1", host, port, PC_CONTACT_OPENED, t);
                ev(s, r, "vps-1", host, port, PC_CONTACT_REFUSED, t + 5);
                for (int j = 0; j < 2; j++) {
                        uint32_t ok = (uint32_t)(100000 + 2 * i + j);

                        ev(s, r, "vps-1", ok, 443, PC_CONTACT_OPENED, t + 100);
                        ev(s, r, "vps-1", ok, 443, PC_CONTACT_ANSWERED, t + 120);
                }
        }
        assert_int_equal(pc_scan_check(s), 0);
        pc_scan_free(s);
}

static void test_slow_shapes(void **state)
{
        struct rec r = { 0 };

        slow_scan(&r, 200, 0);
        assert_int_equal(count(&r, PC_SCAN_FAST), 0);
        assert_true(count(&r, PC_SCAN_SLOW) >= 1);
        assert_int_equal(r.f[0].kind, PC_SCAN_SLOW);
        assert_string_equal(r.shape[0], "vertical");
        assert_true(r.f[0].score >= 100);
        assert_int_equal(r.f[0].distinct_hosts, 1);
        assert_true(r.f[0].distinct_ports >= 80 && r.f[0].distinct_ports <= 125);
        assert_true(r.f[0].failures >= 85 && r.f[0].failures <= 115);
        assert_int_equal(r.f[0].successes, 2 * r.f[0].failures - 2);
        assert_int_equal(r.f[0].n_sample, PC_SCAN_SAMPLE);
        assert_int_equal(r.f[0].sample[0].port, r.f[0].failures); /* the newest */
        assert_int_equal(r.f[0].first_ms, 0);
        assert_int_equal(r.f[0].last_ms, (int64_t)(r.f[0].failures - 1) * 10000);

        memset(&r, 0, sizeof(r));
        slow_scan(&r, 200, 1);
        assert_int_equal(count(&r, PC_SCAN_FAST), 0);
        assert_true(count(&r, PC_SCAN_SLOW) >= 1);
        assert_string_equal(r.shape[0], "horizontal");
        assert_int_equal(r.f[0].distinct_ports, 5);
        assert_true(r.f[0].distinct_hosts >= 80 && r.f[0].distinct_hosts <= 125);

        memset(&r, 0, sizeof(r));
        slow_scan(&r, 200, 2);
        assert_int_equal(count(&r, PC_SCAN_FAST), 0);
        assert_true(count(&r, PC_SCAN_SLOW) >= 1);
        assert_string_equal(r.shape[0], "block");
}

/* nmap -T1-like: one refused probe every 15 s for 2 h, a distinct port
 * each.  Every SLOW finding's estimate is within 15% of the distinct
 * failures since the last one (all of them in the window: they take
 * about 25 min).  Returns the number of SLOW findings. */
static size_t nmap_t1(unsigned threshold, uint64_t seed)
{
        struct pc_scan_params p;
        struct pc_scan *s;
        struct rec r = { 0 };
        size_t truth = 0, slow = 0;

        params_1s(&p);
        p.slow_window_ms = 3600000;
        p.slow_threshold = threshold;
        p.seed = seed;
        s = make(&p);
        for (int i = 0; i < 480; i++) {
                int64_t t = (int64_t)i * 15000;

                ev(s, &r, "vps-1", 1, (uint16_t)(1000 + i), PC_CONTACT_OPENED, t);
                ev(s, &r, "vps-1", 1, (uint16_t)(1000 + i), PC_CONTACT_REFUSED, t + 2);
                truth++;
                pc_scan_tick(s, t + 7500, record, &r);
                for (size_t k = 0; k < r.n; k++) {
                        if (r.f[k].kind != PC_SCAN_SLOW)
                                continue;
                        assert_true(fabs(r.f[k].score - (double)truth) <= 0.15 * truth);
                        assert_int_equal(r.f[k].failures, truth);
                        assert_string_equal(r.shape[k], "vertical");
                        truth = 0;
                        slow++;
                }
                r.n = 0;
        }
        if (threshold > 240) {
                /* At most 240 probes in any hour, between 200 and 240 in
                 * the window the sketches cover. */
                assert_true(stats(s, "vps-1").slow_estimate > 170);
                assert_true(stats(s, "vps-1").slow_estimate < 280);
        }
        assert_int_equal(pc_scan_check(s), 0);
        pc_scan_free(s);
        return slow;
}

static void test_slow_nmap_t1(void **state)
{
        /* About 100 a finding: 480 probes make 4 (5 if estimates run low). */
        for (uint64_t seed = 1; seed <= 5; seed++) {
                size_t n = nmap_t1(100, seed);

                assert_true(n >= 4 && n <= 5);
        }
        /* A threshold of 300 is never reached: the window forgets. */
        assert_int_equal(nmap_t1(300, 7), 0);
}

static void test_contact_limits(void **state)
{
        struct pc_scan_params p;
        struct pc_scan *s;
        struct rec r = { 0 };
        size_t mem;

        params_1s(&p);
        p.max_contacts_per_vps = 4;
        s = make(&p);
        for (int i = 0; i < 4; i++) {
                ev(s, &r, "vps-1", (uint32_t)(1 + i), 443, PC_CONTACT_OPENED, i);
                ev(s, &r, "vps-1", (uint32_t)(1 + i), 443, PC_CONTACT_ANSWERED, i);
        }
        ev(s, &r, "vps-1", 1, 443, PC_CONTACT_OPENED, 10); /* refreshes .1: .2 is the oldest now */
        ev(s, &r, "vps-1", 5, 443, PC_CONTACT_OPENED, 11);
        assert_int_equal(stats(s, "vps-1").contacts, 4);
        assert_int_equal(stats(s, "vps-1").pending, 1);
        ev(s, &r, "vps-1", 1, 443, PC_CONTACT_OPENED, 12); /* still known: a repeat */
        assert_int_equal(stats(s, "vps-1").pending, 1);
        ev(s, &r, "vps-1", 5, 443, PC_CONTACT_ANSWERED, 12);
        ev(s, &r, "vps-1", 2, 443, PC_CONTACT_OPENED, 13); /* evicted: a first contact again */
        assert_int_equal(stats(s, "vps-1").pending, 1);
        ev(s, &r, "vps-1", 2, 443, PC_CONTACT_ANSWERED, 13);

        /* Thousands of destinations: memory stays where four put it. */
        mem = pc_scan_memory(s);
        for (int i = 0; i < 5000; i++) {
                ev(s, &r, "vps-1", (uint32_t)(1000 + i), 443, PC_CONTACT_OPENED, 20 + i);
                ev(s, &r, "vps-1", (uint32_t)(1000 + i), 443, PC_CONTACT_ANSWERED, 20 + i);
        }
        assert_int_equal(pc_scan_memory(s), mem);
        assert_int_equal(pc_scan_contact_count(s), 4);
        assert_true(pc_scan_memory(s) <= pc_scan_memory_max(&p));

        /* Pending ones pushed out count as failures: a flood of first
         * contacts cannot evict its own. */
        assert_int_equal(r.n, 0);
        for (int i = 0; i < 9; i++)
                ev(s, &r, "vps-2", (uint32_t)(9000 + i), 443, PC_CONTACT_OPENED, 6000);
        assert_int_equal(count(&r, PC_SCAN_FAST), 1);
        assert_int_equal(r.f[0].failures, 5);
        assert_int_equal(pc_scan_check(s), 0);
        pc_scan_free(s);

        /* The global limit evicts the least recently contacted of all. */
        params_1s(&p);
        p.max_contacts = 3;
        s = make(&p);
        ev(s, &r, "vps-1", 1, 443, PC_CONTACT_OPENED, 0);
        ev(s, &r, "vps-2", 1, 443, PC_CONTACT_OPENED, 1);
        ev(s, &r, "vps-3", 1, 443, PC_CONTACT_OPENED, 2);
        ev(s, &r, "vps-1", 1, 443, PC_CONTACT_OPENED, 3);
        ev(s, &r, "vps-4", 1, 443, PC_CONTACT_OPENED, 4);
        assert_int_equal(pc_scan_contact_count(s), 3);
        assert_int_equal(stats(s, "vps-1").contacts, 1);
        assert_int_equal(stats(s, "vps-2").contacts, 0);
        assert_int_equal(stats(s, "vps-2").failures, 1); /* evicted pending */
        pc_scan_free(s);
}

static void test_vps_limits(void **state)
{
        struct pc_scan_params p;
        struct pc_scan *s;
        struct rec r = { 0 };
        char id[16];
        size_t mem = 0;

        params_1s(&p);
        p.max_vps = 4;
        s = make(&p);
        for (int i = 1; i <= 4; i++) {
                snprintf(id, sizeof(id), "vps-%d", i);
                ev(s, &r, id, 1, 443, PC_CONTACT_OPENED, i);
        }
        ev(s, &r, "vps-1", 1, 443, PC_CONTACT_ANSWERED, 5); /* vps-2 is the least recently active now */
        ev(s, &r, "vps-5", 1, 443, PC_CONTACT_OPENED, 6);
        assert_int_equal(pc_scan_vps_count(s), 4);
        assert_int_equal(pc_scan_stats(s, "vps-2", &(struct pc_scan_vps){ 0 }), -ENOENT);
        /* Held VPSes go last: vps-3 is held (C = 7), so vps-4 goes next. */
        for (int i = 0; i < 6; i++)
                ev(s, &r, "vps-3", (uint32_t)(10 + i), 443, PC_CONTACT_OPENED, 7);
        assert_int_equal(pc_scan_held(s, "vps-3", 7, record, &r), 0);
        assert_int_equal(r.n, 0);
        ev(s, &r, "vps-6", 1, 443, PC_CONTACT_OPENED, 8);
        assert_int_equal(pc_scan_stats(s, "vps-4", &(struct pc_scan_vps){ 0 }), -ENOENT);
        assert_int_equal(pc_scan_stats(s, "vps-3", &(struct pc_scan_vps){ 0 }), 0);
        for (int i = 0; i < 3000; i++) {
                snprintf(id, sizeof(id), "churn-%d", i);
                ev(s, &r, id, 1, 443, PC_CONTACT_OPENED, 2000 + i);
                ev(s, &r, id, 1, 443, PC_CONTACT_ANSWERED, 2000 + i);
                if (i == 10)
                        mem = pc_scan_memory(s);
        }
        assert_int_equal(pc_scan_vps_count(s), 4);
        assert_int_equal(pc_scan_memory(s), mem);
        assert_true(pc_scan_memory(s) <= pc_scan_memory_max(&p));
        assert_int_equal(pc_scan_stats(s, "vps-3", &(struct pc_scan_vps){ 0 }), 0); /* held: kept */
        assert_int_equal(pc_scan_check(s), 0);
        pc_scan_free(s);
}

static void test_idle_forgotten(void **state)
{
        struct pc_scan *s = make_default();
        struct rec r = { 0 };

        ev(s, &r, "vps-1", 1, 443, PC_CONTACT_OPENED, 0);
        for (int i = 0; i < 5; i++)
                ev(s, &r, "vps-2", (uint32_t)(1 + i), 443, PC_CONTACT_OPENED, 0);
        assert_int_equal(pc_scan_held(s, "vps-2", 0, record, &r), 0);
        assert_int_equal(r.n, 0);
        pc_scan_tick(s, 3600000, record, &r);
        assert_int_equal(pc_scan_vps_count(s), 2);
        assert_int_equal(pc_scan_contact_count(s), 0);
        pc_scan_tick(s, 3600001, record, &r);
        assert_int_equal(pc_scan_vps_count(s), 1); /* vps-2 is held */
        assert_int_equal(pc_scan_stats(s, "vps-2", &(struct pc_scan_vps){ 0 }), 0);
        assert_int_equal(pc_scan_check(s), 0);
        pc_scan_free(s);
}

static void test_params(void **state)
{
        struct pc_scan_params p;
        struct pc_scan *s = NULL;

        pc_scan_params_default(&p);
        assert_int_equal(p.pending_timeout_ms, 2000);
        assert_int_equal(p.hold_budget, 5);
        assert_int_equal(p.max_contacts_per_vps, 512);
        assert_int_equal(pc_scan_new(&p, &s), 0);
        s = pc_scan_free(s);
        assert_null(s);
        assert_null(pc_scan_free(NULL));
        assert_int_equal(pc_scan_new(NULL, &s), -EINVAL);
#define BAD(field, value)                                                                                \
        do {                                                                                             \
                params_1s(&p);                                                              \
                p.field = value;                                                                         \
                s = (struct pc_scan *)&p;                                                                \
                assert_int_equal(pc_scan_new(&p, &s), -EINVAL);                                          \
                assert_ptr_equal(s, (struct pc_scan *)&p); /* not written */                             \
        } while (0)
        BAD(false_positive_rate, 0.99);
        BAD(false_positive_rate, 0.995);
        BAD(false_positive_rate, 0);
        BAD(false_positive_rate, NAN);
        BAD(detection_rate, 1);
        BAD(scanner_success, 0.8);
        BAD(scanner_success, 0.9);
        BAD(scanner_success, 0);
        BAD(benign_success, 1);
        BAD(benign_success, NAN);
        BAD(hold_budget, 0);
        BAD(pending_timeout_ms, 0);
        BAD(pending_timeout_ms, -5);
        BAD(contact_memory_ms, 999);
        BAD(contact_memory_ms, PC_SCAN_TIME_MAX + 1);
        BAD(max_contacts_per_vps, 0);
        BAD(max_contacts_per_vps, PC_SCAN_CONTACTS_PER_VPS_MAX + 1);
        BAD(max_contacts, 0);
        BAD(max_vps, 0);
        BAD(max_vps, PC_SCAN_VPS_MAX + 1);
        BAD(slow_window_ms, 5);
        BAD(slow_threshold, 0);
#undef BAD
}

/* A host's traceroute ports are one destination; nothing else is folded. */
static void test_traceroute_port(void **state)
{
        (void)state;
        assert_int_equal(pc_scan_contact_port(IPPROTO_UDP, 33433), 33433);
        assert_int_equal(pc_scan_contact_port(IPPROTO_UDP, 33434), 33434);
        assert_int_equal(pc_scan_contact_port(IPPROTO_UDP, 33500), 33434);
        assert_int_equal(pc_scan_contact_port(IPPROTO_UDP, 33534), 33434);
        assert_int_equal(pc_scan_contact_port(IPPROTO_UDP, 33535), 33535);
        assert_int_equal(pc_scan_contact_port(IPPROTO_TCP, 33500), 33500);
        assert_int_equal(pc_scan_contact_port(IPPROTO_UDPLITE, 33500), 33500);
}

/* What a host says to its link is no contact; a sweep of a group's other
 * ports, or a unicast host's link ports, is. */
static void test_link_service(void **state)
{
        static const uint8_t mdns[4] = { 224, 0, 0, 251 }, all_hosts[4] = { 224, 0, 0, 1 },
                             bcast[4] = { 255, 255, 255, 255 }, host[4] = { 192, 0, 2, 10 },
                             ssdp6[16] = { 0xff, 0x02, [15] = 0x0c }, all6[16] = { 0xff, 0x02, [15] = 1 },
                             host6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };

        (void)state;
        assert_true(pc_scan_link_service(AF_INET, mdns, IPPROTO_UDP, 5353));
        assert_true(pc_scan_link_service(AF_INET, bcast, IPPROTO_UDP, 67));
        assert_true(pc_scan_link_service(AF_INET, bcast, IPPROTO_UDP, 137));
        assert_true(pc_scan_link_service(AF_INET, mdns, 2 /* IGMP */, 0));
        assert_true(pc_scan_link_service(AF_INET6, ssdp6, IPPROTO_UDP, 1900));
        assert_true(pc_scan_link_service(AF_INET6, all6, IPPROTO_UDP, 547));
        /* the sweep of every neighbour's services */
        assert_false(pc_scan_link_service(AF_INET, all_hosts, IPPROTO_UDP, 161));
        assert_false(pc_scan_link_service(AF_INET6, all6, IPPROTO_UDP, 53));
        assert_false(pc_scan_link_service(AF_INET, bcast, IPPROTO_UDP, 161));
        assert_false(pc_scan_link_service(AF_INET, mdns, IPPROTO_TCP, 5353));
        /* a unicast host is probed, whatever the port */
        assert_false(pc_scan_link_service(AF_INET, host, IPPROTO_UDP, 5353));
        assert_false(pc_scan_link_service(AF_INET, host, 2, 0));
        assert_false(pc_scan_link_service(AF_INET6, host6, IPPROTO_UDP, 1900));
}

static void test_event_errors(void **state)
{
        struct pc_scan *s = make_default();
        struct pc_contact c = { .vps = "vps-1", .family = AF_UNIX, .proto = IPPROTO_TCP, .port = 1 };
        char id[80];

        assert_int_equal(pc_scan_event(s, &c, PC_CONTACT_OPENED, 0, NULL, NULL), -EINVAL);
        c.family = AF_INET;
        assert_int_equal(pc_scan_event(s, &c, (enum pc_contact_outcome)9, 0, NULL, NULL), -EINVAL);
        memset(id, 'a', 64);
        id[64] = '\0';
        c.vps = id;
        assert_int_equal(pc_scan_event(s, &c, PC_CONTACT_OPENED, 0, NULL, NULL), -EINVAL);
        assert_int_equal(pc_scan_held(s, id, 0, NULL, NULL), -EINVAL);
        id[63] = '\0';
        assert_int_equal(pc_scan_event(s, &c, PC_CONTACT_OPENED, 0, NULL, NULL), 0);
        c.vps = NULL;
        assert_int_equal(pc_scan_event(s, &c, PC_CONTACT_OPENED, 0, NULL, NULL), -EINVAL);
        assert_int_equal(pc_scan_vps_count(s), 1);
        /* A clock set back is taken as the last time. */
        c.vps = "vps-2";
        assert_int_equal(pc_scan_event(s, &c, PC_CONTACT_OPENED, 5000, NULL, NULL), 0);
        assert_int_equal(pc_scan_event(s, &c, PC_CONTACT_REFUSED, -5000, NULL, NULL), 0);
        assert_int_equal(pc_scan_check(s), 0);
        pc_scan_free(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fast_refused),
                cmocka_unit_test(test_benign_mixed),
                cmocka_unit_test(test_pending_timeout),
                cmocka_unit_test(test_parallel_answered_release),
                cmocka_unit_test(test_scanner_not_released),
                cmocka_unit_test(test_held_walk_drops_banked_answers),
                cmocka_unit_test(test_padding_one_host),
                cmocka_unit_test(test_padding_across_walks),
                cmocka_unit_test(test_padding_one_v6_prefix),
                cmocka_unit_test(test_outcomes_in_opening_order),
                cmocka_unit_test(test_happy_eyeballs),
                cmocka_unit_test(test_confirm),
                cmocka_unit_test(test_benign_burst),
                cmocka_unit_test(test_slow_timeout),
                cmocka_unit_test(test_slow_counted_once),
                cmocka_unit_test(test_repeat_contacts),
                cmocka_unit_test(test_slow_shapes),
                cmocka_unit_test(test_slow_nmap_t1),
                cmocka_unit_test(test_contact_limits),
                cmocka_unit_test(test_vps_limits),
                cmocka_unit_test(test_idle_forgotten),
                cmocka_unit_test(test_params),
                cmocka_unit_test(test_event_errors),
                cmocka_unit_test(test_traceroute_port),
                cmocka_unit_test(test_link_service),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
