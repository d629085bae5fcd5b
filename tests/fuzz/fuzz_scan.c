/* libFuzzer harness for the port-scan detector (detect/scan).
 *
 * The input is a series of 3-byte records driving a detector with tiny
 * limits (4 VPSes, 8 destinations each, 20 in all, budget 3, short
 * times): byte 0, bits 0-2: the operation (0-3 an outcome of
 * enum pc_contact_outcome, 4 held, 5 a held-back contact, 6 forget, 7 a
 * clock jump and tick), confirmation after 3 more contacts within 200 ms,
 * bits 3-5: the VPS (of 6 ids, so that some are evicted), bit 6: IPv6,
 * bit 7: UDP; byte 1: the address (its low 3 bits) and port (the rest,
 * 5 values); byte 2: milliseconds to advance the clock (x 16 for a jump).
 * Only the first 1500 records are read.  Besides memory errors, it
 * aborts on any broken invariant: pc_scan_check after every 8th record
 * and the last; after every record, memory within pc_scan_memory_max, at
 * most max_vps VPSes and max_contacts destinations, each VPS's pending
 * within its destinations within its limit, its walk's successes within
 * PC_SCAN_HOSTS (one a host), its scanner flag as its findings say, a
 * held VPS that is not a scanner at or over the budget; a FAST
 * finding's Λ equal to its counts' and over the threshold, its samples
 * and distinct counts no more than its failures, its successes no more
 * than the hosts (16) and PC_SCAN_HOSTS; a SLOW one over
 * its threshold; a RELEASE only below the budget and never for a VPS
 * found a scanner since it was last forgotten. */
#include <math.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "detect/scan.h"

#define N_IDS 6
#define N_HOSTS 16 /* 8 addresses, IPv4 or IPv6 */

static const char *ids[N_IDS] = { "vps-a", "vps-b", "vps-c", "vps-d", "vps-e", "vps-f" };

struct fuzz {
        struct pc_scan_params p;
        bool scanner[N_IDS]; /* a FAST or SLOW finding since last forgotten */
        bool suspect[N_IDS]; /* a SUSPECT finding since, neither confirmed nor not */
};

static int id_of(const char *vps)
{
        for (int i = 0; i < N_IDS; i++)
                if (strcmp(ids[i], vps) == 0)
                        return i;
        abort();
}

static void on_finding(void *ud, const struct pc_scan_finding *f)
{
        struct fuzz *z = ud;
        int id = id_of(f->vps);
        double ln_s = log(z->p.scanner_success / z->p.benign_success);
        double ln_f = log((1 - z->p.scanner_success) / (1 - z->p.benign_success));

        if (f->shape == NULL || f->n_sample > PC_SCAN_SAMPLE)
                abort();
        switch (f->kind) {
        case PC_SCAN_FAST:
                if (fabs(f->score - (f->failures * ln_f + f->successes * ln_s)) > 1e-9 ||
                    (f->score < log(z->p.detection_rate / z->p.false_positive_rate) && !z->suspect[id]) ||
                    f->n_sample > f->failures ||
                    f->distinct_hosts > f->failures || f->distinct_ports > f->failures || f->first_ms > f->last_ms ||
                    f->successes > N_HOSTS || f->successes > PC_SCAN_HOSTS ||
                    (f->failures > 0 && (f->distinct_hosts == 0) != (f->n_sample == 0)))
                        abort();
                z->scanner[id] = true;
                z->suspect[id] = false;
                break;
        case PC_SCAN_SLOW:
                if (f->score < z->p.slow_threshold || f->failures == 0 || f->first_ms > f->last_ms)
                        abort();
                z->scanner[id] = true;
                z->suspect[id] = false;
                break;
        case PC_SCAN_RELEASE:
                if (z->scanner[id] || f->score >= z->p.hold_budget || f->n_sample != 0)
                        abort();
                break;
        case PC_SCAN_SUSPECT:
                if (z->scanner[id] || z->suspect[id] ||
                    f->score < log(z->p.detection_rate / z->p.false_positive_rate))
                        abort();
                z->suspect[id] = true;
                break;
        case PC_SCAN_UNCONFIRMED:
                if (z->scanner[id] || !z->suspect[id] || f->score >= z->p.confirm_probes)
                        abort();
                z->suspect[id] = false;
                break;
        default:
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fuzz z = { 0 };
        struct pc_scan *s;
        int64_t now = 0;

        pc_scan_params_default(&z.p);
        z.p.pending_timeout_ms = 50;
        z.p.contact_memory_ms = 400;
        z.p.hold_budget = 3;
        z.p.max_contacts_per_vps = 8;
        z.p.max_contacts = 20;
        z.p.max_vps = 4;
        z.p.slow_window_ms = 600;
        z.p.slow_threshold = 6;
        z.p.confirm_probes = 3;
        z.p.confirm_window_ms = 200;
        z.p.seed = 1;
        if (pc_scan_new(&z.p, &s) < 0)
                abort();
        /* Long inputs add little but time: the first 1500 records. */
        for (size_t i = 0; i + 3 <= size && i < 3 * 1500; i += 3) {
                uint8_t op = data[i] & 7, id = (data[i] >> 3) & 7, a = data[i + 1];
                const char *vps = ids[id % N_IDS];
                struct pc_contact c = {
                        .vps = vps,
                        .family = data[i] & 0x40 ? AF_INET6 : AF_INET,
                        .proto = data[i] & 0x80 ? IPPROTO_UDP : IPPROTO_TCP,
                        .port = (uint16_t)(20 + (a >> 3) % 5),
                };
                struct pc_scan_vps st;

                c.addr[0] = 10;
                c.addr[3] = a & 7;
                now += op == 7 ? 16 * data[i + 2] : data[i + 2];
                switch (op) {
                case 0: case 1: case 2: case 3:
                        if (pc_scan_event(s, &c, (enum pc_contact_outcome)op, now, on_finding, &z) < 0)
                                abort();
                        break;
                case 4:
                        if (pc_scan_held(s, vps, now, on_finding, &z) < 0)
                                abort();
                        break;
                case 5:
                        if (pc_scan_held_contact(s, &c, now, on_finding, &z) < 0)
                                abort();
                        break;
                case 7:
                        pc_scan_tick(s, now, on_finding, &z);
                        break;
                case 6:
                        pc_scan_forget(s, vps);
                        z.scanner[id % N_IDS] = false;
                        z.suspect[id % N_IDS] = false;
                        break;
                }
                for (int k = 0; k < N_IDS; k++) {
                        if (pc_scan_stats(s, ids[k], &st) < 0) {
                                z.scanner[k] = z.suspect[k] = false; /* forgotten: a fresh start */
                                continue;
                        }
                        if (st.pending > st.contacts || st.contacts > z.p.max_contacts_per_vps ||
                            st.successes > N_HOSTS || st.successes > PC_SCAN_HOSTS ||
                            st.scanner != z.scanner[k] || st.suspect != z.suspect[k] || (st.suspect && st.scanner) ||
                            (st.held && st.budget_count < z.p.hold_budget && !st.scanner && !st.suspect))
                                abort();
                }
                /* The full check walks every register: every 8th record. */
                if ((i / 3 % 8 == 0 && pc_scan_check(s) != 0) || pc_scan_memory(s) > pc_scan_memory_max(&z.p) ||
                    pc_scan_vps_count(s) > z.p.max_vps || pc_scan_contact_count(s) > z.p.max_contacts)
                        abort();
        }
        if (pc_scan_check(s) != 0)
                abort();
        pc_scan_free(s);
        return 0;
}
