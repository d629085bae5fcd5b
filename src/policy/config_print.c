/* The canonical form of a loaded configuration: YAML in the config's own
 * vocabulary, every default explicit, ports resolved and sorted, stable
 * order, free text double-quoted.  The golden tests compare it byte for
 * byte, so any change here is a change of format.
 *
 * pc_config_json() at the end is the same form as JSON, key for key in the
 * same order: a change to one is a change to the other (the CLI tests
 * compare them). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "policy/config.h"

static void print_quoted(FILE *out, const char *s);
static void print_double(FILE *out, double v);
static void print_duration(FILE *out, int64_t seconds);
static void print_ports(FILE *out, const struct pc_port_range *ports, size_t n);
static void print_ip_protos(FILE *out, const uint8_t *protos, size_t n);
static void print_responses(FILE *out, unsigned bits);
static void print_service(FILE *out, const struct pc_service *svc);
static void print_rule(FILE *out, const struct pc_rule *rule);
static void print_smtp_proxy(FILE *out, const struct pc_policy *p);
static void print_policy(FILE *out, const struct pc_policy *p);

/* A YAML double-quoted scalar; control bytes escaped, UTF-8 kept. */
static void print_quoted(FILE *out, const char *s)
{
        fputc('"', out);
        for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
                if (*p == '"' || *p == '\\')
                        fprintf(out, "\\%c", *p);
                else if (*p == '\n')
                        fputs("\\n", out);
                else if (*p == '\t')
                        fputs("\\t", out);
                else if (*p < 0x20 || *p == 0x7f)
                        fprintf(out, "\\x%02x", *p);
                else
                        fputc(*p, out);
        }
        fputc('"', out);
}

/* The shortest decimal that reads back as <v>. */
static void print_double(FILE *out, double v)
{
        char buf[64];

        for (int prec = 1; prec <= 17; prec++) {
                snprintf(buf, sizeof(buf), "%.*g", prec, v);
                if (strtod(buf, NULL) == v)
                        break;
        }
        fputs(buf, out);
}

static void print_duration(FILE *out, int64_t seconds)
{
        char buf[32];

        pc_format_duration(seconds, buf, sizeof(buf));
        fputs(buf, out);
}

static void print_ports(FILE *out, const struct pc_port_range *ports, size_t n)
{
        fputc('[', out);
        for (size_t i = 0; i < n; i++) {
                char buf[32];

                pc_port_range_format(&ports[i], buf, sizeof(buf));
                fprintf(out, "%s%s", i == 0 ? "" : ", ", buf);
        }
        fputc(']', out);
}

static void print_ip_protos(FILE *out, const uint8_t *protos, size_t n)
{
        fputc('[', out);
        for (size_t i = 0; i < n; i++) {
                const char *name = pc_proto_name(protos[i]);

                if (name != NULL)
                        fprintf(out, "%s%s", i == 0 ? "" : ", ", name);
                else
                        fprintf(out, "%s%u", i == 0 ? "" : ", ", protos[i]);
        }
        fputc(']', out);
}

static void print_responses(FILE *out, unsigned bits)
{
        static const char *const names[] = { "notify", "suspend", "outbound-filter",
                                             "inbound-filter", "terminate" };
        bool first = true;

        fputc('[', out);
        for (size_t i = 0; i < PC_ARRAY_SIZE(names); i++)
                if (bits & (1u << i)) {
                        fprintf(out, "%s%s", first ? "" : ", ", names[i]);
                        first = false;
                }
        fputc(']', out);
}

static void print_service(FILE *out, const struct pc_service *svc)
{
        fprintf(out, "  %s:\n", svc->name);
        fprintf(out, "    builtin: %s\n", svc->builtin ? "true" : "false");
        fputs("    description: ", out);
        print_quoted(out, svc->description);
        fprintf(out, "\n    direction: %s\n", pc_dir_name(svc->direction));
        fputs("    ports: ", out);
        print_ports(out, svc->ports, svc->n_ports);
        fputs("\n    ip-protocols: ", out);
        print_ip_protos(out, svc->ip_protos, svc->n_ip_protos);
        fputc('\n', out);
}

static void print_rule(FILE *out, const struct pc_rule *rule)
{
        fprintf(out, "      - service: %s\n", rule->service != NULL ? rule->service->name : "?");
        fprintf(out, "        action: %s\n",
                rule->action == PC_ACTION_REDIRECT ? "redirect" : "block");
        fprintf(out, "        direction: %s\n", pc_dir_name(rule->direction));
        fputs("        ports: ", out);
        print_ports(out, rule->ports, rule->n_ports);
        fputs("\n        ip-protocols: ", out);
        print_ip_protos(out, rule->ip_protos, rule->n_ip_protos);
        fprintf(out, "\n        exemptable: %s\n", rule->exemptable ? "true" : "false");
        fprintf(out, "        tos-event: %s\n", rule->tos_event ? "true" : "false");
        fputs("        why: ", out);
        print_quoted(out, rule->why);
        fputc('\n', out);
}

static void print_smtp_proxy(FILE *out, const struct pc_policy *p)
{
        const struct pc_smtp_proxy_limits *l = &p->smtp_limits;

        fputs("    smtp-proxy:\n      listen: ", out);
        print_quoted(out, p->smtp_proxy_listen);
        fprintf(out, "\n      tls: %s\n", p->smtp_proxy_tls ? "true" : "false");
        fprintf(out, "      upstream-tls: %s\n", l->upstream_tls ? "opportunistic" : "off");
        fprintf(out, "      source: %s\n",
                l->source == PC_SMTP_SOURCE_HYPERVISOR ? "hypervisor" : "vps");
        fprintf(out, "      limits:\n        messages-per-hour: %u\n", l->messages_per_hour);
        fprintf(out, "        recipients-per-message: %u\n", l->recipients_per_message);
        fprintf(out, "        recipients-per-hour: %u\n", l->recipients_per_hour);
        fprintf(out, "        sessions-per-vps: %u\n", l->sessions_per_vps);
        fputs("        window: ", out);
        print_duration(out, l->window);
        fputs("\n      timeouts:\n        command: ", out);
        print_duration(out, l->command_timeout);
        fputs("\n        data: ", out);
        print_duration(out, l->data_timeout);
        fputs("\n        upstream: ", out);
        print_duration(out, l->upstream_timeout);
        fputs("\n        connect: ", out);
        print_duration(out, l->connect_timeout);
        fputs("\n        client-write: ", out);
        print_duration(out, l->client_write_timeout);
        fputs("\n        lifetime: ", out);
        print_duration(out, l->lifetime);
        fputc('\n', out);
}

static void print_policy(FILE *out, const struct pc_policy *p)
{
        fprintf(out, "  %s:\n", p->name);
        fputs("    description: ", out);
        print_quoted(out, p->description);
        fprintf(out, "\n    exceptions: %s\n",
                p->exceptions == PC_EXCEPTIONS_NONE ? "none" : "ticket");
        fprintf(out, "    anti-spoofing: %s\n", p->anti_spoofing ? "true" : "false");
        fputs("    responses:\n", out);
        for (size_t k = 0; k < PC_ABUSE_KINDS; k++) {
                fprintf(out, "      %s: ", pc_abuse_key(k));
                print_responses(out, p->responses[k]);
                fputc('\n', out);
        }
        if (p->has_smtp_proxy)
                print_smtp_proxy(out, p);
        if (p->n_rules == 0) {
                fputs("    rules: []\n", out);
                return;
        }
        fputs("    rules:\n", out);
        for (size_t i = 0; i < p->n_rules; i++)
                print_rule(out, &p->rules[i]);
}

/* Prints <cfg> in canonical form to <out>; see config.h. */
void pc_config_print(const struct pc_config *cfg, FILE *out)
{
        const struct pc_detectors *d;
        const struct pc_escalation *e;
        const struct pc_notify_config *n;

        if (cfg == NULL || out == NULL)
                return;
        d = &cfg->detectors;
        e = &cfg->escalation;
        n = &cfg->notify;

        fputs("database: ", out);
        print_quoted(out, cfg->database);
        fputs("\n\n", out);

        fputs(cfg->n_services == 0 ? "services: {}\n" : "services:\n", out);
        for (size_t i = 0; i < cfg->n_services; i++)
                print_service(out, &cfg->services[i]);
        fputc('\n', out);

        fputs(cfg->n_policies == 0 ? "policies: {}\n" : "policies:\n", out);
        for (size_t i = 0; i < cfg->n_policies; i++) {
                if (i > 0)
                        fputc('\n', out);
                print_policy(out, &cfg->policies[i]);
        }
        fputc('\n', out);

        fputs(cfg->n_sites == 0 ? "sites: {}\n" : "sites:\n", out);
        for (size_t i = 0; i < cfg->n_sites; i++) {
                const struct pc_site *s = &cfg->sites[i];

                fprintf(out, "  %s:\n    policy: %s\n    description: ", s->name,
                        s->policy != NULL ? s->policy->name : "?");
                print_quoted(out, s->description);
                fprintf(out, "\n    topology: %s\n", s->topology == PC_TOPOLOGY_BRIDGED ? "bridged" : "routed");
        }
        if (cfg->default_site != NULL)
                fprintf(out, "\ndefault-site: %s\n", cfg->default_site->name);
        fputc('\n', out);

        fprintf(out, "detectors:\n  scan:\n    enabled: %s\n",
                d->scan_enabled ? "true" : "false");
        fputs("    false-positive-rate: ", out);
        print_double(out, d->scan_false_positive_rate);
        fputs("\n    detection-rate: ", out);
        print_double(out, d->scan_detection_rate);
        fputs("\n    slow-window: ", out);
        print_duration(out, d->scan_slow_window);
        fprintf(out, "\n    slow-threshold: %u\n", d->scan_slow_threshold);
        fprintf(out, "    hold-after: %u\n    hold-timeout: ", d->scan_hold_after);
        print_duration(out, d->scan_hold_timeout);
        fprintf(out, "\n    confirm-probes: %u", d->scan_confirm_probes);
        fputs("\n    pending-timeout: ", out);
        print_duration(out, d->scan_pending_timeout);
        fputs("\n    contact-memory: ", out);
        print_duration(out, d->scan_contact_memory);
        fputs("\n    exclude:", out);
        if (d->n_scan_exclude == 0)
                fputs(" []", out);
        fputc('\n', out);
        for (size_t i = 0; i < d->n_scan_exclude; i++) {
                char text[64];

                pc_format_prefix(&d->scan_exclude[i], text, sizeof(text));
                fprintf(out, "      - %s\n", text);
        }
        fprintf(out, "  spam:\n    enabled: %s\n", d->spam_enabled ? "true" : "false");
        fprintf(out, "    messages-per-hour: %u\n", d->spam_messages_per_hour);
        fprintf(out, "    recipients-per-message: %u\n", d->spam_recipients_per_message);
        fputs("    upstream-reject-ratio: ", out);
        print_double(out, d->spam_upstream_reject_ratio);
        fprintf(out, "\n    domains-per-hour: %u\n", d->spam_domains_per_hour);
        fprintf(out, "    min-recipients: %u\n", d->spam_min_recipients);
        fprintf(out, "    limit-hits-per-hour: %u", d->spam_limit_hits_per_hour);
        fprintf(out, "\n  spoof:\n    enabled: %s\n", d->spoof_enabled ? "true" : "false");
        fputs("    episode-gap: ", out);
        print_duration(out, d->spoof_episode_gap);
        fprintf(out, "\n  flood:\n    enabled: %s\n    packets-per-second: %u\n    megabits-per-second: %u\n"
                     "    sample: %u\n",
                d->flood_enabled ? "true" : "false", d->flood_packets_per_second, d->flood_megabits_per_second,
                d->flood_sample);
        fprintf(out, "  reflection:\n    enabled: %s\n    ports: [", d->reflection_enabled ? "true" : "false");
        for (size_t i = 0; i < d->n_reflection_ports; i++) {
                char port[32];

                pc_port_range_format(&d->reflection_ports[i], port, sizeof(port));
                fprintf(out, "%s%s", i > 0 ? ", " : "", port);
        }
        fprintf(out, "]\n    megabits-per-second: %u\n\n", d->reflection_megabits_per_second);

        fputs("escalation:\n  memory: ", out);
        print_duration(out, e->memory);
        fputs("\n  steps: [", out);
        for (size_t i = 0; i < e->n_steps && i < PC_ESCALATION_STEPS_MAX; i++) {
                if (i > 0)
                        fputs(", ", out);
                if (e->steps[i] == PC_ESCALATION_SUSPEND)
                        fputs("suspend", out);
                else if (e->steps[i] == PC_ESCALATION_TERMINATE)
                        fputs("terminate", out);
                else
                        print_duration(out, e->steps[i]);
        }
        fputs("]\n\n", out);

        fputs("notifications:\n  relay: ", out);
        print_quoted(out, n->relay);
        fputs("\n  from: ", out);
        print_quoted(out, n->from);
        fputs("\n  abuse-copy: ", out);
        print_quoted(out, n->abuse_copy);
        fprintf(out, "\n  default-language: %s\n", n->default_language);
        fprintf(out, "  max-attempts: %u\n  templates: ", n->max_attempts);
        print_quoted(out, n->templates);
        fprintf(out, "\n  starttls: %s\n  tls-verify: %s\n",
                n->starttls == PC_STARTTLS_REQUIRED ? "required"
                : n->starttls == PC_STARTTLS_OFF    ? "off"
                                                    : "opportunistic",
                n->tls_verify ? "true" : "false");
        if (n->username[0] != '\0') {
                fputs("  username: ", out);
                print_quoted(out, n->username);
                fputs("\n  password-file: ", out);
                print_quoted(out, n->password_file);
                fputc('\n', out);
        }
        fputs("  timeout: ", out);
        print_duration(out, n->timeout);
        fputs("\n  retry-base: ", out);
        print_duration(out, n->retry_base);
        fputs("\n  notice-gap: ", out);
        print_duration(out, n->notice_gap);
        if (n->webhook_url[0] != '\0') {
                fputs("\n  webhook:\n    url: ", out);
                print_quoted(out, n->webhook_url);
                fputs("\n    secret-file: ", out);
                print_quoted(out, n->webhook_secret_file);
                fputs("\n    timeout: ", out);
                print_duration(out, n->webhook_timeout);
        }
        fputs("\n\n", out);

        fputs("agent:\n  control-socket: ", out);
        print_quoted(out, cfg->agent.control_socket);
        fprintf(out, "\n  nft-table: %s\n  attempts-interval: ", cfg->agent.nft_table);
        print_duration(out, cfg->agent.attempts_interval);
        if (cfg->agent.host[0] != '\0') /* only in a fleet */
                fprintf(out, "\n  host: %s", cfg->agent.host);
        if (cfg->agent.snapshot[0] != '\0') { /* only if set */
                fputs("\n  snapshot: ", out);
                print_quoted(out, cfg->agent.snapshot);
        }
        if (cfg->agent.max_vps != 0) /* only if set */
                fprintf(out, "\n  max-vps: %u", cfg->agent.max_vps);
        fputs("\n\nsmtpd:\n  control-socket: ", out);
        print_quoted(out, cfg->smtpd.control_socket);
        fprintf(out, "\n  max-sessions: %u\n  user: %s\n", cfg->smtpd.max_sessions,
                cfg->smtpd.user);
        fputs("  internal-prefixes:", out);
        if (cfg->smtpd.n_internal == 0)
                fputs(" []", out);
        fputc('\n', out);
        for (size_t i = 0; i < cfg->smtpd.n_internal; i++) {
                char text[64];

                pc_format_prefix(&cfg->smtpd.internal[i], text, sizeof(text));
                fprintf(out, "    - %s\n", text);
        }
}

/* ---- the same as JSON ------------------------------------------------ */

/* A JSON build that remembers whether anything failed (out of memory), so
 * that the builders below need no check after every call. */
struct jb {
        bool failed;
};

static json_t *jb_duration(int64_t seconds)
{
        char buf[32];

        pc_format_duration(seconds, buf, sizeof(buf));
        return json_string(buf);
}

/* Sets <key> of <o> to <v> (which it takes), noting a failure in <b>. */
static void put(struct jb *b, json_t *o, const char *key, json_t *v)
{
        if (o == NULL || v == NULL || json_object_set_new(o, key, v) < 0) {
                json_decref(v);
                b->failed = true;
        }
}

/* Appends <v> (which it takes) to the array <a>, noting a failure. */
static void add(struct jb *b, json_t *a, json_t *v)
{
        if (a == NULL || v == NULL || json_array_append_new(a, v) < 0) {
                json_decref(v);
                b->failed = true;
        }
}

static json_t *jb_ports(struct jb *b, const struct pc_port_range *ports, size_t n)
{
        json_t *a = json_array();

        for (size_t i = 0; i < n; i++) {
                char buf[32];

                pc_port_range_format(&ports[i], buf, sizeof(buf));
                add(b, a, json_string(buf));
        }
        return a;
}

static json_t *jb_ip_protos(struct jb *b, const uint8_t *protos, size_t n)
{
        json_t *a = json_array();

        for (size_t i = 0; i < n; i++) {
                const char *name = pc_proto_name(protos[i]);

                add(b, a, name != NULL ? json_string(name) : json_integer(protos[i]));
        }
        return a;
}

static json_t *jb_responses(struct jb *b, unsigned bits)
{
        static const char *const names[] = { "notify", "suspend", "outbound-filter",
                                             "inbound-filter", "terminate" };
        json_t *a = json_array();

        for (size_t i = 0; i < PC_ARRAY_SIZE(names); i++)
                if (bits & (1u << i))
                        add(b, a, json_string(names[i]));
        return a;
}

static json_t *jb_service(struct jb *b, const struct pc_service *svc)
{
        json_t *o = json_object();

        put(b, o, "builtin", json_boolean(svc->builtin));
        put(b, o, "description", json_string(svc->description));
        put(b, o, "direction", json_string(pc_dir_name(svc->direction)));
        put(b, o, "ports", jb_ports(b, svc->ports, svc->n_ports));
        put(b, o, "ip-protocols", jb_ip_protos(b, svc->ip_protos, svc->n_ip_protos));
        return o;
}

static json_t *jb_rule(struct jb *b, const struct pc_rule *rule)
{
        json_t *o = json_object();

        put(b, o, "service", json_string(rule->service != NULL ? rule->service->name : "?"));
        put(b, o, "action", json_string(rule->action == PC_ACTION_REDIRECT ? "redirect" : "block"));
        put(b, o, "direction", json_string(pc_dir_name(rule->direction)));
        put(b, o, "ports", jb_ports(b, rule->ports, rule->n_ports));
        put(b, o, "ip-protocols", jb_ip_protos(b, rule->ip_protos, rule->n_ip_protos));
        put(b, o, "exemptable", json_boolean(rule->exemptable));
        put(b, o, "tos-event", json_boolean(rule->tos_event));
        put(b, o, "why", json_string(rule->why));
        return o;
}

static json_t *jb_smtp_proxy(struct jb *b, const struct pc_policy *p)
{
        const struct pc_smtp_proxy_limits *l = &p->smtp_limits;
        json_t *o = json_object(), *lim = json_object(), *t = json_object();

        put(b, o, "listen", json_string(p->smtp_proxy_listen));
        put(b, o, "tls", json_boolean(p->smtp_proxy_tls));
        put(b, o, "upstream-tls", json_string(l->upstream_tls ? "opportunistic" : "off"));
        put(b, o, "source", json_string(l->source == PC_SMTP_SOURCE_HYPERVISOR ? "hypervisor" : "vps"));
        put(b, lim, "messages-per-hour", json_integer(l->messages_per_hour));
        put(b, lim, "recipients-per-message", json_integer(l->recipients_per_message));
        put(b, lim, "recipients-per-hour", json_integer(l->recipients_per_hour));
        put(b, lim, "sessions-per-vps", json_integer(l->sessions_per_vps));
        put(b, lim, "window", jb_duration(l->window));
        put(b, o, "limits", lim);
        put(b, t, "command", jb_duration(l->command_timeout));
        put(b, t, "data", jb_duration(l->data_timeout));
        put(b, t, "upstream", jb_duration(l->upstream_timeout));
        put(b, t, "connect", jb_duration(l->connect_timeout));
        put(b, t, "client-write", jb_duration(l->client_write_timeout));
        put(b, t, "lifetime", jb_duration(l->lifetime));
        put(b, o, "timeouts", t);
        return o;
}

static json_t *jb_policy(struct jb *b, const struct pc_policy *p)
{
        json_t *o = json_object(), *resp = json_object(), *rules = json_array();

        put(b, o, "description", json_string(p->description));
        put(b, o, "exceptions", json_string(p->exceptions == PC_EXCEPTIONS_NONE ? "none" : "ticket"));
        put(b, o, "anti-spoofing", json_boolean(p->anti_spoofing));
        for (size_t k = 0; k < PC_ABUSE_KINDS; k++)
                put(b, resp, pc_abuse_key(k), jb_responses(b, p->responses[k]));
        put(b, o, "responses", resp);
        if (p->has_smtp_proxy)
                put(b, o, "smtp-proxy", jb_smtp_proxy(b, p));
        for (size_t i = 0; i < p->n_rules; i++)
                add(b, rules, jb_rule(b, &p->rules[i]));
        put(b, o, "rules", rules);
        return o;
}

static json_t *jb_detectors(struct jb *b, const struct pc_detectors *d)
{
        json_t *o = json_object(), *scan = json_object(), *spam = json_object(), *spoof = json_object(),
               *flood = json_object(), *refl = json_object(), *ports = json_array();

        put(b, scan, "enabled", json_boolean(d->scan_enabled));
        put(b, scan, "false-positive-rate", json_real(d->scan_false_positive_rate));
        put(b, scan, "detection-rate", json_real(d->scan_detection_rate));
        put(b, scan, "slow-window", jb_duration(d->scan_slow_window));
        put(b, scan, "slow-threshold", json_integer(d->scan_slow_threshold));
        put(b, scan, "hold-after", json_integer(d->scan_hold_after));
        put(b, scan, "hold-timeout", jb_duration(d->scan_hold_timeout));
        put(b, scan, "confirm-probes", json_integer(d->scan_confirm_probes));
        put(b, scan, "pending-timeout", jb_duration(d->scan_pending_timeout));
        put(b, scan, "contact-memory", jb_duration(d->scan_contact_memory));
        {
                json_t *pfx = json_array();

                for (size_t i = 0; i < d->n_scan_exclude; i++) {
                        char text[64];

                        pc_format_prefix(&d->scan_exclude[i], text, sizeof(text));
                        add(b, pfx, json_string(text));
                }
                put(b, scan, "exclude", pfx);
        }
        put(b, o, "scan", scan);
        put(b, spam, "enabled", json_boolean(d->spam_enabled));
        put(b, spam, "messages-per-hour", json_integer(d->spam_messages_per_hour));
        put(b, spam, "recipients-per-message", json_integer(d->spam_recipients_per_message));
        put(b, spam, "upstream-reject-ratio", json_real(d->spam_upstream_reject_ratio));
        put(b, spam, "domains-per-hour", json_integer(d->spam_domains_per_hour));
        put(b, spam, "min-recipients", json_integer(d->spam_min_recipients));
        put(b, spam, "limit-hits-per-hour", json_integer(d->spam_limit_hits_per_hour));
        put(b, o, "spam", spam);
        put(b, spoof, "enabled", json_boolean(d->spoof_enabled));
        put(b, spoof, "episode-gap", jb_duration(d->spoof_episode_gap));
        put(b, o, "spoof", spoof);
        put(b, flood, "enabled", json_boolean(d->flood_enabled));
        put(b, flood, "packets-per-second", json_integer(d->flood_packets_per_second));
        put(b, flood, "megabits-per-second", json_integer(d->flood_megabits_per_second));
        put(b, flood, "sample", json_integer(d->flood_sample));
        put(b, o, "flood", flood);
        put(b, refl, "enabled", json_boolean(d->reflection_enabled));
        for (size_t i = 0; i < d->n_reflection_ports; i++) {
                char port[32];

                pc_port_range_format(&d->reflection_ports[i], port, sizeof(port));
                add(b, ports, json_string(port));
        }
        put(b, refl, "ports", ports);
        put(b, refl, "megabits-per-second", json_integer(d->reflection_megabits_per_second));
        put(b, o, "reflection", refl);
        return o;
}

static json_t *jb_notifications(struct jb *b, const struct pc_notify_config *n)
{
        json_t *o = json_object();

        put(b, o, "relay", json_string(n->relay));
        put(b, o, "from", json_string(n->from));
        put(b, o, "abuse-copy", json_string(n->abuse_copy));
        put(b, o, "default-language", json_string(n->default_language));
        put(b, o, "max-attempts", json_integer(n->max_attempts));
        put(b, o, "templates", json_string(n->templates));
        put(b, o, "starttls", json_string(n->starttls == PC_STARTTLS_REQUIRED ? "required"
                                          : n->starttls == PC_STARTTLS_OFF    ? "off"
                                                                              : "opportunistic"));
        put(b, o, "tls-verify", json_boolean(n->tls_verify));
        if (n->username[0] != '\0') {
                put(b, o, "username", json_string(n->username));
                put(b, o, "password-file", json_string(n->password_file));
        }
        put(b, o, "timeout", jb_duration(n->timeout));
        put(b, o, "retry-base", jb_duration(n->retry_base));
        put(b, o, "notice-gap", jb_duration(n->notice_gap));
        if (n->webhook_url[0] != '\0') {
                json_t *w = json_object();

                put(b, w, "url", json_string(n->webhook_url));
                put(b, w, "secret-file", json_string(n->webhook_secret_file));
                put(b, w, "timeout", jb_duration(n->webhook_timeout));
                put(b, o, "webhook", w);
        }
        return o;
}

/* <cfg> in canonical form as JSON; see config.h. */
json_t *pc_config_json(const struct pc_config *cfg)
{
        struct jb b = { .failed = false };
        json_t *o, *x;

        if (cfg == NULL)
                return NULL;
        o = json_object();
        put(&b, o, "database", json_string(cfg->database));
        x = json_object();
        for (size_t i = 0; i < cfg->n_services; i++)
                put(&b, x, cfg->services[i].name, jb_service(&b, &cfg->services[i]));
        put(&b, o, "services", x);
        x = json_object();
        for (size_t i = 0; i < cfg->n_policies; i++)
                put(&b, x, cfg->policies[i].name, jb_policy(&b, &cfg->policies[i]));
        put(&b, o, "policies", x);
        x = json_object();
        for (size_t i = 0; i < cfg->n_sites; i++) {
                const struct pc_site *s = &cfg->sites[i];
                json_t *site = json_object();

                put(&b, site, "policy", json_string(s->policy != NULL ? s->policy->name : "?"));
                put(&b, site, "description", json_string(s->description));
                put(&b, site, "topology",
                    json_string(s->topology == PC_TOPOLOGY_BRIDGED ? "bridged" : "routed"));
                put(&b, x, s->name, site);
        }
        put(&b, o, "sites", x);
        if (cfg->default_site != NULL)
                put(&b, o, "default-site", json_string(cfg->default_site->name));
        put(&b, o, "detectors", jb_detectors(&b, &cfg->detectors));

        x = json_object();
        put(&b, x, "memory", jb_duration(cfg->escalation.memory));
        {
                json_t *steps = json_array();

                for (size_t i = 0; i < cfg->escalation.n_steps && i < PC_ESCALATION_STEPS_MAX; i++)
                        add(&b, steps, cfg->escalation.steps[i] == PC_ESCALATION_SUSPEND
                                               ? json_string("suspend")
                                       : cfg->escalation.steps[i] == PC_ESCALATION_TERMINATE
                                               ? json_string("terminate")
                                               : jb_duration(cfg->escalation.steps[i]));
                put(&b, x, "steps", steps);
        }
        put(&b, o, "escalation", x);
        put(&b, o, "notifications", jb_notifications(&b, &cfg->notify));

        x = json_object();
        put(&b, x, "control-socket", json_string(cfg->agent.control_socket));
        put(&b, x, "nft-table", json_string(cfg->agent.nft_table));
        put(&b, x, "attempts-interval", jb_duration(cfg->agent.attempts_interval));
        if (cfg->agent.host[0] != '\0')
                put(&b, x, "host", json_string(cfg->agent.host));
        if (cfg->agent.snapshot[0] != '\0')
                put(&b, x, "snapshot", json_string(cfg->agent.snapshot));
        if (cfg->agent.max_vps != 0)
                put(&b, x, "max-vps", json_integer(cfg->agent.max_vps));
        put(&b, o, "agent", x);

        x = json_object();
        put(&b, x, "control-socket", json_string(cfg->smtpd.control_socket));
        put(&b, x, "max-sessions", json_integer(cfg->smtpd.max_sessions));
        put(&b, x, "user", json_string(cfg->smtpd.user));
        {
                json_t *pfx = json_array();

                for (size_t i = 0; i < cfg->smtpd.n_internal; i++) {
                        char text[64];

                        pc_format_prefix(&cfg->smtpd.internal[i], text, sizeof(text));
                        add(&b, pfx, json_string(text));
                }
                put(&b, x, "internal-prefixes", pfx);
        }
        put(&b, o, "smtpd", x);
        if (b.failed) {
                json_decref(o);
                return NULL;
        }
        return o;
}
