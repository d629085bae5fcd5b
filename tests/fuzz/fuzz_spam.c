/* libFuzzer harness for the spam detector (detect/spam).
 *
 * The input is a series of 3-byte records driving a detector with tiny
 * thresholds (5 messages, 3 recipients per message, 4 domains, ratio 0.5
 * over 4 recipients, 3 limit hits, a window of 1.2 s) and 4 VPSes at most:
 * byte 0, bits 0-2: the VPS (of 6 ids, so that some are evicted), bits
 * 3-5: the operation (0-4 add byte 1's low 4 bits to one counter:
 * messages, failed, recipients, refused, limited; 5 the proxy restarts:
 * every counter of the VPS goes back to byte 1's low 4 bits; 6 forget;
 * 7 set the window's domains to byte 1), then the snapshot is fed (but
 * after a forget), marked from_zero if byte 1's bit 4 is set; byte 2: milliseconds to advance the clock (x 16 if
 * byte 0's bit 6 is set; bit 7 makes it go back instead, which the
 * detector must take as no change).  Only the first 2000 records are
 * read.  Besides memory errors, it aborts on any broken invariant:
 * pc_spam_check after every record; at most max_vps VPSes; a finding for
 * a VPS only when it was not in a reported episode, with its rule the
 * first of its rules, each rule it names over its line and each line it
 * does not name not crossed, refused within recipients, its ratio theirs;
 * the window's figures never more than what the harness fed since the
 * VPS's baseline (restarts counted as the detector's contract says). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "detect/spam.h"

#define N_IDS 6

static const char *ids[N_IDS] = { "vps-a", "vps-b", "vps-c", "vps-d", "vps-e", "vps-f" };

struct shadow {
        struct pc_spam_figures f;  /* the proxy's counters now */
        uint64_t messages, recipients, refused, limited; /* fed since the baseline */
        int64_t fed;               /* when it was last fed (the detector's clock) */
        bool known;
};

struct fuzz {
        struct pc_spam_params p;
        int id;
        bool found;
};

static void on_finding(void *ud, const struct pc_spam_finding *f)
{
        struct fuzz *z = ud;
        const struct pc_spam_params *p = &z->p;
        const struct pc_spam_window *w = &f->w;
        unsigned want = 0;

        if (strcmp(f->vps, ids[z->id]) != 0 || z->found || f->rules == 0 || f->rules >= 1u << PC_SPAM_RULES ||
            (f->rules & (1u << f->rule)) == 0 || (f->rules & ((1u << f->rule) - 1)) != 0 ||
            w->refused > w->recipients || w->reject_ratio < 0 || w->reject_ratio > 1)
                abort();
        if (w->recipients > 0 && w->reject_ratio != (double)w->refused / (double)w->recipients)
                abort();
        if (w->messages > p->messages_per_hour)
                want |= 1u << PC_SPAM_MESSAGES;
        if (w->domains > p->domains_per_hour)
                want |= 1u << PC_SPAM_DOMAINS;
        if (w->recipients >= p->min_recipients && 2 * w->refused >= w->recipients)
                want |= 1u << PC_SPAM_REJECTS;
        if (w->recipients >= p->min_recipients &&
            w->recipients > (uint64_t)p->recipients_per_message * (w->messages > 0 ? w->messages : 1))
                want |= 1u << PC_SPAM_RECIPIENTS;
        if (w->limited >= p->limit_hits_per_hour)
                want |= 1u << PC_SPAM_LIMITED;
        if (want != f->rules)
                abort();
        z->found = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fuzz z = { 0 };
        struct shadow sh[N_IDS] = { 0 };
        struct pc_spam *s = NULL;
        int64_t now = 0, clock = 0; /* given; the detector's (fed, never back) */
        size_t n = size / 3;

        pc_spam_params_default(&z.p);
        z.p.messages_per_hour = 5;
        z.p.recipients_per_message = 3;
        z.p.domains_per_hour = 4;
        z.p.upstream_reject_ratio = 0.5;
        z.p.min_recipients = 4;
        z.p.limit_hits_per_hour = 3;
        z.p.window_ms = 1200;
        z.p.max_vps = 4;
        if (pc_spam_new(&z.p, &s) < 0)
                abort();
        for (int i = 0; i < N_IDS; i++)
                sh[i].f.vps = ids[i];
        if (n > 2000)
                n = 2000;
        for (size_t i = 0; i < n; i++) {
                const uint8_t *r = data + 3 * i;
                int id = r[0] & 7, op = (r[0] >> 3) & 7;
                int64_t step = (r[0] & 0x40) ? 16 * r[2] : r[2];
                struct shadow *v;
                struct pc_spam_vps st;
                uint64_t add = r[1] & 15, before[5];
                bool restart = false;

                if (id >= N_IDS)
                        id -= N_IDS;
                v = &sh[id];
                now += (r[0] & 0x80) ? -step : step;
                before[0] = v->f.messages, before[1] = v->f.messages_failed, before[2] = v->f.recipients;
                before[3] = v->f.recipients_refused, before[4] = v->f.limited;
                switch (op) {
                case 0: v->f.messages += add; break;
                case 1: v->f.messages_failed += add; break;
                case 2: v->f.recipients += add; break;
                case 3: v->f.recipients_refused += add; break;
                case 4: v->f.limited += add; break;
                case 5:
                        v->f.messages = v->f.messages_failed = v->f.recipients = v->f.recipients_refused =
                                v->f.limited = add;
                        break;
                case 6:
                        pc_spam_forget(s, ids[id]);
                        if (pc_spam_stats(s, ids[id], &st) != -ENOENT)
                                abort();
                        break;
                default: v->f.window_domains = r[1]; break;
                }
                if (op != 6) {
                        if (now > clock) /* a forget does not move the detector's clock */
                                clock = now;
                        /* Idle two windows: forgotten by this feed. */
                        bool known = pc_spam_stats(s, ids[id], &st) == 0 && clock - v->fed <= 2 * z.p.window_ms;

                        restart = v->f.messages < before[0] || v->f.messages_failed < before[1] ||
                                  v->f.recipients < before[2] || v->f.recipients_refused < before[3] ||
                                  v->f.limited < before[4];
                        /* Known to the detector (not evicted nor idle):
                         * this snapshot's increase counts. */
                        v->f.from_zero = (r[1] >> 4) & 1;
                        if ((!known || !v->known) && v->f.from_zero) {
                                v->messages = v->f.messages + v->f.messages_failed;
                                v->recipients = v->f.recipients + v->f.recipients_refused;
                                v->refused = v->f.recipients_refused;
                                v->limited = v->f.limited;
                        } else if (!known || !v->known) {
                                v->messages = v->recipients = v->refused = v->limited = 0;
                        } else if (restart) {
                                v->messages += v->f.messages + v->f.messages_failed;
                                v->recipients += v->f.recipients + v->f.recipients_refused;
                                v->refused += v->f.recipients_refused;
                                v->limited += v->f.limited;
                        } else {
                                v->messages += v->f.messages + v->f.messages_failed - before[0] - before[1];
                                v->recipients += v->f.recipients + v->f.recipients_refused - before[2] - before[3];
                                v->refused += v->f.recipients_refused - before[3];
                                v->limited += v->f.limited - before[4];
                        }
                        v->fed = clock;
                        z.id = id;
                        z.found = known && st.reported;
                        if (pc_spam_feed(s, &v->f, now, on_finding, &z) < 0)
                                abort();
                        if (pc_spam_stats(s, ids[id], &st) < 0 ||
                            st.w.messages > v->messages || st.w.recipients > v->recipients ||
                            st.w.refused > v->refused || st.w.limited > v->limited ||
                            st.w.domains != v->f.window_domains)
                                abort();
                }
                v->known = op != 6;
                if (pc_spam_check(s) < 0 || pc_spam_vps_count(s) > z.p.max_vps)
                        abort();
        }
        pc_spam_free(s);
        return 0;
}
