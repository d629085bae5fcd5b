/* The spam detector: which VPSes send mail like spammers, judged from the
 * SMTP proxy's per-VPS figures.  A pure state machine: no sockets, no
 * store, no clock of its own (every call is given <now_ms>, milliseconds
 * on any clock that does not go back: a time earlier than one already
 * given is taken as that one), no logging.  The agent feeds it the
 * figures it reads from portcullis-smtpd every attempts-interval and acts
 * on the findings it reports.
 *
 * What it decides, once:
 *   - its input is a snapshot of one VPS's figures: the proxy's cumulative
 *     counters (transactions sent and failed, recipients accepted and
 *     refused by the remote servers, commands refused by the proxy's own
 *     limits) and the distinct recipient domains the proxy counted in its
 *     own window (an estimate it keeps; the detector takes it as is);
 *   - the first snapshot of a VPS is a baseline: what it counted before
 *     is not judged (the agent may start long after the proxy); unless
 *     the caller says the proxy began counting the VPS since its own
 *     previous reading (<from_zero>: the VPS was absent from it), when
 *     the whole of its counters is the increase.  Each
 *     later snapshot adds its increase over the one before to the current
 *     slice of the window: PC_SPAM_SLICES slices of window_ms /
 *     PC_SPAM_SLICES each; the figures "within the hour" are the sums over
 *     the current slice and the ones before it (between 11/12 and all of
 *     window_ms back).  If any counter went down the proxy restarted: the
 *     new values are all counted, as a fresh start (they were counted
 *     since the restart), never a negative increase;
 *   - the rules, over the window (messages = transactions sent or failed,
 *     recipients = accepted + refused):
 *       MESSAGES     messages > messages_per_hour;
 *       DOMAINS      the proxy's distinct domains > domains_per_hour;
 *       REJECTS      refused >= upstream_reject_ratio * recipients, with
 *                    recipients >= min_recipients (1 refused of 1 is no
 *                    spam); the comparison allows for floating rounding;
 *       RECIPIENTS   recipients > recipients_per_message * messages, with
 *                    recipients >= min_recipients (many recipients per
 *                    message on average);
 *       LIMITED      limit hits >= limit_hits_per_hour;
 *   - one finding per episode: a VPS over any line is reported once, then
 *     stays quiet until its figures have been under every line for
 *     window_ms (measured from the first snapshot under them), or until
 *     pc_spam_forget();
 *   - limits: at most max_vps VPSes (the least recently fed is forgotten
 *     for a new one), each forgotten after 2 * window_ms without a
 *     snapshot.  Memory per VPS is fixed: sizeof of its record,
 *     pc_spam_vps_bytes() (648 bytes on x86-64), whatever it sends.
 *
 * Findings are reported through a callback, synchronously, from the
 * pc_spam_feed() that caused them.  The finding and the strings it points
 * to are valid only during the callback, which must not call the
 * detector. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PC_SPAM_SLICES 12                   /* slices of the window */
#define PC_SPAM_VPS_MAX (1u << 20)          /* largest max_vps */
#define PC_SPAM_COUNT_MAX 100000000u        /* largest threshold */
#define PC_SPAM_TIME_MAX (366LL * 86400 * 1000) /* longest window, ms */

struct pc_spam_params {
        unsigned messages_per_hour;      /* >= 1: more is a finding */
        unsigned recipients_per_message; /* >= 1: more on average is a finding */
        unsigned domains_per_hour;       /* >= 1: more is a finding */
        double upstream_reject_ratio;    /* 0 < r <= 1: refused/recipients this or more is a finding */
        unsigned min_recipients;         /* >= 1: the ratio rules need this many recipients */
        unsigned limit_hits_per_hour;    /* >= 1: this many or more is a finding */
        int64_t window_ms;               /* >= PC_SPAM_SLICES, <= PC_SPAM_TIME_MAX: "per hour" */
        size_t max_vps;                  /* 1 .. PC_SPAM_VPS_MAX */
};

/* A snapshot of the proxy's figures for one VPS. */
struct pc_spam_figures {
        const char *vps;                 /* the VPS's id (<= 63 bytes, copied) */
        uint64_t messages;               /* cumulative: transactions sent */
        uint64_t messages_failed;        /* cumulative: transactions refused or failed upstream */
        uint64_t recipients;             /* cumulative: recipients accepted upstream */
        uint64_t recipients_refused;     /* cumulative: recipients refused upstream */
        uint64_t limited;                /* cumulative: commands refused by the proxy's limits */
        uint64_t window_domains;         /* distinct recipient domains in the proxy's window now */
        bool from_zero;                  /* the proxy's counting of it began since the caller last read */
};

enum pc_spam_rule {
        PC_SPAM_MESSAGES,
        PC_SPAM_DOMAINS,
        PC_SPAM_REJECTS,
        PC_SPAM_RECIPIENTS,
        PC_SPAM_LIMITED,
        PC_SPAM_RULES,
};

/* The figures over the window (a finding's evidence, pc_spam_stats). */
struct pc_spam_window {
        uint64_t messages;               /* sent + failed */
        uint64_t recipients;             /* accepted + refused */
        uint64_t refused;
        uint64_t limited;
        uint64_t domains;                /* the proxy's figure, last given */
        double reject_ratio;             /* refused / recipients; 0 without recipients */
};

struct pc_spam_finding {
        const char *vps;
        enum pc_spam_rule rule;          /* the first rule over, in the enum's order */
        unsigned rules;                  /* every rule over: bit (1 << rule) */
        double threshold;                /* <rule>'s line, as configured */
        struct pc_spam_window w;
        unsigned restarts;               /* proxy restarts seen within the VPS's record */
};

/* Receives a finding; <f> and what it points to are valid only during the
 * call, which must not call the detector. */
typedef void (*pc_spam_cb)(void *userdata, const struct pc_spam_finding *f);

/* What the detector holds about one VPS now (pc_spam_stats). */
struct pc_spam_vps {
        struct pc_spam_window w;
        bool reported;                   /* in an episode already reported */
};

struct pc_spam;

/* Fills <p> with the defaults: 200 messages, 50 recipients per message,
 * 50 domains, ratio 0.5 over at least 20 recipients, 10 limit hits, per
 * hour; 65,536 VPSes. */
void pc_spam_params_default(struct pc_spam_params *p);

/* Creates a detector with a copy of <p>.  -EINVAL when <p> is out of the
 * ranges its fields state (a zero threshold, a ratio of 0, over 1 or NaN,
 * a window too short or too long, max_vps 0 or too large); -ENOMEM. */
int pc_spam_new(const struct pc_spam_params *p, struct pc_spam **ret);

/* Frees <s>; accepts NULL; returns NULL. */
struct pc_spam *pc_spam_free(struct pc_spam *s);

/* Feeds the snapshot <f> of VPS <f>->vps taken at <now_ms>; a finding
 * goes to <cb> (may be NULL: dropped, the state changes all the same).
 * Makes the VPS known.  -EINVAL: no VPS id or one of 64 bytes or more;
 * -ENOMEM: a new VPS could not be remembered. */
int pc_spam_feed(struct pc_spam *s, const struct pc_spam_figures *f, int64_t now_ms, pc_spam_cb cb,
                 void *userdata);

/* Forgets everything about the VPS <vps> (removed, or to start afresh: its
 * next snapshot is a baseline); a VPS not known is ignored. */
void pc_spam_forget(struct pc_spam *s, const char *vps);

/* Fills *<ret> with what <s> holds about <vps>, its window as of the
 * latest time given; -ENOENT if nothing. */
int pc_spam_stats(const struct pc_spam *s, const char *vps, struct pc_spam_vps *ret);

/* Number of VPSes known to <s>. */
size_t pc_spam_vps_count(const struct pc_spam *s);

/* Bytes one VPS costs <s> (its record; the index adds two pointers). */
size_t pc_spam_vps_bytes(void);

/* The rule <r>'s name ("messages", "domains", "rejects", "recipients",
 * "limited"); "?" for another value. */
const char *pc_spam_rule_name(enum pc_spam_rule r);

/* Checks <s>'s internal invariants (index, list, counts, slices), in time
 * linear in what it holds: 0, or -EUCLEAN at the first one broken.  For
 * tests and fuzzing. */
int pc_spam_check(const struct pc_spam *s);
