/* Spam: the SMTP proxy's per-VPS figures, read every attempts-interval
 * (smtpd_link.c), feed the detector (detect/spam.h); its findings become
 * incidents and the policy's response (provider A: an outbound filter,
 * the ladder's step), docs/DETECTION.md. */
#include <errno.h>
#include <sys/socket.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "detect/spam.h"
#include "events/ct_events.h"
#include "smtpd/account.h"

#define SPAM_EPISODE_GAP 3600 /* findings an hour apart are separate incidents */
#define SPAM_WINDOW_MS (3600 * 1000LL) /* the detector's "per hour" (pc_spam_params_default) */

/* The detector's parameters from the config. */
static void spam_params(const struct pc_detectors *d, struct pc_spam_params *p)
{
        pc_spam_params_default(p);
        p->messages_per_hour = d->spam_messages_per_hour;
        p->recipients_per_message = d->spam_recipients_per_message;
        p->domains_per_hour = d->spam_domains_per_hour;
        p->upstream_reject_ratio = d->spam_upstream_reject_ratio;
        p->min_recipients = d->spam_min_recipients;
        p->limit_hits_per_hour = d->spam_limit_hits_per_hour;
}

int agent_spam_open(struct agent *a)
{
        struct pc_spam_params p;
        int r;

        if (!a->cfg->detectors.spam_enabled) {
                agent_log("Spam detection is off (detectors.spam.enabled is false in %s)", a->config_path);
                return 0;
        }
        spam_params(&a->cfg->detectors, &p);
        r = pc_spam_new(&p, &a->spam);
        if (r < 0)
                agent_log("Failed to start spam detection: %s", strerror(-r));
        return r;
}

void agent_spam_close(struct agent *a)
{
        a->spam = pc_spam_free(a->spam);
}

/* The evidence of finding <f>, as JSON text (caller frees), or NULL. */
static char *evidence_of(const struct pc_spam_finding *f)
{
        json_t *o = json_object(), *rules = json_array();
        char *text;

        for (unsigned r = 0; r < PC_SPAM_RULES; r++)
                if (f->rules & (1u << r))
                        json_array_append_new(rules, json_string(pc_spam_rule_name((enum pc_spam_rule)r)));
        json_object_set_new(o, "detector", json_string("spam"));
        json_object_set_new(o, "rule", json_string(pc_spam_rule_name(f->rule)));
        json_object_set_new(o, "rules", rules);
        json_object_set_new(o, "threshold", json_real(f->threshold));
        json_object_set_new(o, "messages", json_integer((json_int_t)f->w.messages));
        json_object_set_new(o, "recipients", json_integer((json_int_t)f->w.recipients));
        json_object_set_new(o, "recipients_refused", json_integer((json_int_t)f->w.refused));
        json_object_set_new(o, "reject_ratio", json_real(f->w.reject_ratio));
        json_object_set_new(o, "domains", json_integer((json_int_t)f->w.domains));
        json_object_set_new(o, "limit_hits", json_integer((json_int_t)f->w.limited));
        json_object_set_new(o, "window_s", json_integer(3600));
        json_object_set_new(o, "proxy_restarts", json_integer(f->restarts));
        text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return text;
}

/* A finding: an incident and, if it opened one, the policy's response. */
static void found(void *userdata, const struct pc_spam_finding *f)
{
        struct agent *a = userdata;
        struct pc_vps *vps = pc_model_find(a->model, f->vps);
        char *evidence, what[256];

        if (vps == NULL)
                return;
        evidence = evidence_of(f);
        snprintf(what, sizeof(what), "sending spam (%s over %g): %" PRIu64 " messages, %" PRIu64 " of %" PRIu64
                 " recipients refused by the remote servers (%.0f%%), %" PRIu64 " domains, %" PRIu64
                 " limit hits in the last hour", pc_spam_rule_name(f->rule), f->threshold, f->w.messages,
                 f->w.refused, f->w.recipients, f->w.reject_ratio * 100, f->w.domains, f->w.limited);
        agent_abuse(a, vps, "spam", f->w.messages > 0 ? f->w.messages : 1, evidence, SPAM_EPISODE_GAP, what, NULL,
                    NULL);
        free(evidence);
}

/* The counter <key> of <o>, 0 if absent or not a whole number >= 0. */
static uint64_t count_of(const json_t *o, const char *key)
{
        json_int_t v = json_integer_value(json_object_get(o, key));

        return v > 0 ? (uint64_t)v : 0;
}

/* True if <prev> (the proxy's figures read before, an array) has <id>. */
static bool listed(const json_t *prev, const char *id)
{
        const json_t *v;
        size_t i;

        json_array_foreach(prev, i, v) {
                const char *key = json_string_value(json_object_get(v, "vps"));

                if (key != NULL && strcmp(key, id) == 0)
                        return true;
        }
        return false;
}

/* Feeds the detector the figures <stats> (an array, as the proxy's
 * "stats" reply gives them) read at <now> (monotonic ms); <prev>, the
 * reading before (or NULL), tells which VPSes began sending since. */
static void feed(struct agent *a, const json_t *stats, const json_t *prev, int64_t now)
{
        const json_t *v;
        size_t i;

        json_array_foreach(stats, i, v) {
                struct pc_spam_figures f = {
                        .vps = json_string_value(json_object_get(v, "vps")),
                        .messages = count_of(v, "messages"),
                        .messages_failed = count_of(v, "messages_failed"),
                        .recipients = count_of(v, "recipients"),
                        .recipients_refused = count_of(v, "recipients_refused"),
                        .limited = count_of(v, "limited"),
                        .window_domains = count_of(json_object_get(v, "window"), "domains"),
                };
                int r;

                /* Only the model's VPSes: the proxy may still count one
                 * removed since. */
                if (f.vps == NULL || pc_model_find(a->model, f.vps) == NULL)
                        continue;
                /* A VPS not listed at the previous reading began sending
                 * since: all it counted is new.  At the first reading (the
                 * agent just started) it is a baseline. */
                f.from_zero = json_is_array(prev) && !listed(prev, f.vps);
                r = pc_spam_feed(a->spam, &f, now, found, a);
                if (r < 0)
                        agent_log("Failed to judge %s's mail: %s", f.vps, strerror(-r));
        }
}

static int64_t mono_ms(void)
{
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

void agent_spam_pass(struct agent *a, const json_t *prev)
{
        if (a->spam != NULL && json_is_array(a->mail_stats))
                feed(a, a->mail_stats, prev, mono_ms());
}

/* Where no proxy carries a VPS's mail (a site that blocks port 25 but
 * granted it an exception, or lets it through), conntrack still sees each
 * connection it makes to an MX: counted here as the proxy counts its
 * messages and domains (smtpd/account.h: a connection is a message, a
 * destination host a domain), and judged by the same rules (the ratio
 * rules need recipients, which only the proxy sees). */
void agent_spam_direct(struct agent *a, const struct pc_vps *vps, const struct pc_ct_event *ev)
{
        struct account_vps *v;
        int64_t now = pc_now() * 1000;
        uint32_t h = 2166136261u;

        if (a->spam == NULL || (a->direct_mail == NULL && account_new(&a->direct_mail) < 0))
                return;
        v = account_get(a->direct_mail, vps->id);
        if (v == NULL)
                return;
        for (size_t i = 0; i < (ev->family == AF_INET ? 4u : 16u); i++)
                h = (h ^ ev->dst[i]) * 16777619u;
        v->window_ms = SPAM_WINDOW_MS;
        v->sessions++;
        v->messages++;
        window_add(&v->win_messages, 1, v->window_ms, now);
        account_domain(v, h, now);
        v->last_ms = now;
}

void agent_spam_direct_pass(struct agent *a)
{
        json_t *stats;

        if (a->spam == NULL || a->direct_mail == NULL)
                return;
        stats = account_json(a->direct_mail, pc_now() * 1000);
        if (stats == NULL)
                return;
        /* Every VPS here began counting with its first connection: none is
         * a baseline (an empty reading before the first). */
        if (a->direct_prev == NULL)
                a->direct_prev = json_array();
        feed(a, stats, a->direct_prev, mono_ms());
        json_decref(a->direct_prev);
        a->direct_prev = stats;
}

void agent_spam_direct_close(struct agent *a)
{
        a->direct_mail = account_free(a->direct_mail);
        json_decref(a->direct_prev);
        a->direct_prev = NULL;
}
