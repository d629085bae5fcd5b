/* Evaluation: the verdict for one flow of one VPS, and why. */
#pragma once

#include "policy/model.h"

enum pc_verdict_kind {
        PC_VERDICT_ALLOW,
        PC_VERDICT_REJECT,   /* TCP reset / ICMP administratively prohibited */
        PC_VERDICT_REDIRECT, /* to the site's SMTP proxy */
        PC_VERDICT_DROP,
};

enum pc_reason_kind {
        PC_REASON_DEFAULT,           /* no rule applies: the site allows */
        PC_REASON_SITE_RULE,         /* .rule matches the flow */
        PC_REASON_EXCEPTION,         /* .exception lifts .rule */
        PC_REASON_EXCEPTION_EXPIRED, /* .exception existed but has ended */
        PC_REASON_NOT_EXEMPTABLE,    /* .exception exists but .rule is not exemptable */
        PC_REASON_FILTER,            /* .filter covers the flow */
        PC_REASON_SUSPENSION,        /* .suspension drops everything */
};

struct pc_reason {
        enum pc_reason_kind kind;
        bool decisive; /* this reason decided the verdict */
        const struct pc_rule *rule;
        const struct pc_exception *exception;
        const struct pc_filter *filter;
        const struct pc_suspension *suspension;
};

#define PC_REASONS_MAX 6

struct pc_verdict {
        enum pc_verdict_kind verdict;
        unsigned n_reasons;
        struct pc_reason reasons[PC_REASONS_MAX];
};

/* A flow as the VPS sees it: protocol, the service port (destination port
 * for egress, the VPS's listening port for ingress), and direction (exactly
 * one of PC_DIR_EGRESS, PC_DIR_INGRESS).  <port> is ignored for protocols
 * without ports. */
struct pc_flow {
        uint8_t proto;
        uint16_t port;
        unsigned dir;
};

/* Decides <flow> for <vps> at time <now>.  Precedence: suspension, then
 * filters, then the site rule (lifted by an active exception if the rule is
 * exemptable), then allow.  Reasons are listed in that order, decisive one
 * marked.  Pointers in <ret> point into <vps> and its config.  Never fails,
 * never allocates; constant time in the number of VPSes and exceptions. */
void pc_evaluate(const struct pc_vps *vps, const struct pc_flow *flow, int64_t now,
                 struct pc_verdict *ret);

/* Only the verdict, for hot paths that do not need reasons. */
enum pc_verdict_kind pc_evaluate_fast(const struct pc_vps *vps, const struct pc_flow *flow,
                                      int64_t now);

/* Verdicts for <n> flows at once: <out>[i] for (<vps>[i], <flows>[i]).
 * Same answers as pc_evaluate_fast; faster on many VPSes because it
 * fetches the next VPSes from memory while deciding the current one. */
void pc_evaluate_batch(const struct pc_vps *const *vps, const struct pc_flow *flows, size_t n,
                       int64_t now, enum pc_verdict_kind *out);

const char *pc_verdict_name(enum pc_verdict_kind v); /* "allow", "reject"... */
const char *pc_reason_kind_name(enum pc_reason_kind k); /* "site-rule"... */

/* Parses "tcp/465", "udp/500", "gre" into <ret> (dir untouched). */
int pc_flow_parse(const char *s, struct pc_flow *ret);
