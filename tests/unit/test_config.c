/* Unit tests of the configuration loader: the shipped config and its two
 * providers' policies, defaults, and one test per error class with the
 * exact "FILE:LINE:COL: message" line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "policy/config.h"

#ifndef PC_SOURCE_ROOT
#error "PC_SOURCE_ROOT must be defined"
#endif

static struct pc_config *load_ok(const char *text)
{
        struct pc_config *cfg = NULL;
        char err[1024] = "";
        int r = pc_config_load_string("t.yaml", text, strlen(text), &cfg, err, sizeof(err));

        if (r < 0)
                fail_msg("unexpected error %d: %s", r, err);
        assert_non_null(cfg);
        return cfg;
}

/* Loading <text> fails with exactly <msg>, and *ret is untouched. */
static void load_bad(const char *text, const char *msg)
{
        struct pc_config *sentinel = (struct pc_config *)&sentinel, *cfg = sentinel;
        char err[1024] = "";
        int r = pc_config_load_string("t.yaml", text, strlen(text), &cfg, err, sizeof(err));

        assert_int_equal(r, -EINVAL);
        assert_ptr_equal(cfg, sentinel);
        assert_string_equal(err, msg);
        assert_null(strchr(err, '\n'));
}

/* A temporary folder with a main file and profiles. */
struct tmpdir {
        char path[64];
};

static void tmp_make(struct tmpdir *t)
{
        snprintf(t->path, sizeof(t->path), "/tmp/pc-test-config-XXXXXX");
        assert_non_null(mkdtemp(t->path));
}

static void tmp_write(const struct tmpdir *t, const char *name, const char *text)
{
        char path[256];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", t->path, name);
        f = fopen(path, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

static void tmp_remove(struct tmpdir *t)
{
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->path);
        assert_int_equal(system(cmd), 0);
}

/* Loads <main> with the profile <profile> (named p.yaml) from a temporary
 * folder, expecting the error <msg> in which "@" stands for the folder. */
static void load_profile_bad(const char *main_text, const char *profile, const char *msg)
{
        struct pc_config *cfg = NULL;
        struct tmpdir t;
        char err[1024] = "", path[256], want[1024];
        const char *at;
        int r;

        tmp_make(&t);
        tmp_write(&t, "main.yaml", main_text != NULL ? main_text : "profiles: [p.yaml]\n");
        if (profile != NULL)
                tmp_write(&t, "p.yaml", profile);
        snprintf(path, sizeof(path), "%s/main.yaml", t.path);
        r = pc_config_load(path, &cfg, err, sizeof(err));
        want[0] = '\0';
        for (size_t off = 0; *msg != '\0'; msg = at + 1) {
                at = strchr(msg, '@');
                if (at == NULL) {
                        snprintf(want + off, sizeof(want) - off, "%s", msg);
                        break;
                }
                off += (size_t)snprintf(want + off, sizeof(want) - off, "%.*s%s",
                                        (int)(at - msg), msg, t.path);
        }
        tmp_remove(&t);
        assert_int_equal(r, -EINVAL);
        assert_null(cfg);
        assert_string_equal(err, want);
}

/* Loads "profiles: [p.yaml]" with the profile <profile> from a temporary folder. */
static struct pc_config *load_profile_ok(const char *profile)
{
        struct pc_config *cfg = NULL;
        struct tmpdir t;
        char err[1024] = "", path[256];
        int r;

        tmp_make(&t);
        tmp_write(&t, "main.yaml", "profiles: [p.yaml]\n");
        tmp_write(&t, "p.yaml", profile);
        snprintf(path, sizeof(path), "%s/main.yaml", t.path);
        r = pc_config_load(path, &cfg, err, sizeof(err));
        tmp_remove(&t);
        if (r < 0)
                fail_msg("unexpected error %d: %s", r, err);
        assert_non_null(cfg);
        return cfg;
}

static bool blocked(const struct pc_policy *p, int dir, int udp, unsigned port)
{
        return p->table->port[dir][udp][port] != 0;
}

static bool in(unsigned port, const unsigned *list, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (list[i] == port)
                        return true;
        return false;
}

static void test_shipped(void **state)
{
        struct pc_config *cfg = NULL;
        const struct pc_policy *b, *l;
        const struct pc_rule *r;
        char err[1024] = "";
        static const unsigned smtp[] = { 25, 26, 465, 587, 2525 };
        static const unsigned vpn_tcp[] = { 1723, 1728 };
        static const unsigned vpn_udp[] = { 500, 1701, 4500 };

        (void)state;
        assert_int_equal(pc_config_load(PC_SOURCE_ROOT "/etc/portcullis.yaml", &cfg, err,
                                        sizeof(err)), 0);
        assert_string_equal(cfg->database, "sqlite:/var/lib/portcullis/portcullis.db");
        assert_int_equal(cfg->n_services, 4);
        assert_non_null(pc_config_service(cfg, "irc"));
        assert_false(pc_config_service(cfg, "irc")->builtin);
        assert_int_equal(cfg->n_policies, 2);
        assert_int_equal(cfg->n_files, 3);
        assert_int_equal(cfg->n_sites, 2);
        assert_non_null(cfg->default_site);
        assert_string_equal(cfg->default_site->name, "milano");
        assert_ptr_equal(pc_config_site(cfg, "milano")->policy,
                         pc_config_policy(cfg, "blocked-services"));
        assert_ptr_equal(pc_config_site(cfg, "lenoir")->policy, pc_config_policy(cfg, "lenoir"));
        assert_null(pc_config_site(cfg, "rome"));

        /* Provider B blocks exactly the published ports (plus 1723/tcp). */
        b = pc_config_policy(cfg, "blocked-services");
        assert_non_null(b);
        assert_non_null(b->table);
        assert_int_equal(b->n_rules, 3);
        assert_int_equal(b->exceptions, PC_EXCEPTIONS_TICKET);
        for (unsigned port = 0; port < 65536; port++) {
                bool bt = (port >= 6881 && port <= 6889) || port == 6969 ||
                          (port >= 6660 && port <= 6669);

                assert_int_equal(blocked(b, 0, 0, port), in(port, smtp, 5) || bt ||
                                                                 in(port, vpn_tcp, 2));
                assert_int_equal(blocked(b, 1, 0, port), bt || in(port, vpn_tcp, 2));
                assert_int_equal(blocked(b, 0, 1, port), bt || in(port, vpn_udp, 3));
                assert_int_equal(blocked(b, 1, 1, port), bt || in(port, vpn_udp, 3));
        }
        for (unsigned proto = 0; proto < 256; proto++) {
                assert_int_equal(b->table->ipproto[0][proto], 0);
                assert_int_equal(b->table->ipproto[1][proto], 0);
        }
        for (size_t i = 0; i < b->n_rules; i++) {
                assert_int_equal(b->rules[i].action, PC_ACTION_BLOCK);
                assert_true(b->rules[i].exemptable);
                assert_true(b->rules[i].tos_event);
                assert_int_equal(b->rules[i].index, i);
                assert_ptr_equal(b->rules[i].pos.file, cfg->files[2]);
        }
        r = pc_policy_rule_for(b, "smtp");
        assert_non_null(r);
        assert_int_equal(r->direction, PC_DIR_EGRESS);
        assert_int_equal(pc_policy_rule_for(b, "vpn")->direction, PC_DIR_BOTH);
        assert_int_equal(pc_policy_rule_for(b, "bittorrent")->direction, PC_DIR_BOTH);
        assert_null(pc_policy_rule_for(b, "irc"));

        /* Provider A redirects only tcp/25 egress, and cannot exempt it. */
        l = pc_config_policy(cfg, "lenoir");
        assert_non_null(l);
        assert_int_equal(l->n_rules, 1);
        r = &l->rules[0];
        assert_string_equal(r->service->name, "smtp");
        assert_int_equal(r->action, PC_ACTION_REDIRECT);
        assert_int_equal(r->direction, PC_DIR_EGRESS);
        assert_int_equal(r->n_ports, 1);
        assert_int_equal(r->ports[0].proto, PC_PROTO_TCP);
        assert_int_equal(r->ports[0].lo, 25);
        assert_int_equal(r->ports[0].hi, 25);
        assert_false(r->exemptable);
        assert_false(r->tos_event);
        assert_true(l->anti_spoofing);
        assert_int_equal(l->responses[PC_ABUSE_SPOOFING], PC_RESP_SUSPEND | PC_RESP_NOTIFY | PC_RESP_TERMINATE);
        assert_int_equal(l->responses[PC_ABUSE_SCANNING], PC_RESP_OUTBOUND_FILTER | PC_RESP_NOTIFY);
        assert_true(l->has_smtp_proxy);
        assert_string_equal(l->smtp_proxy_listen, "[::]:10025");
        assert_false(l->smtp_proxy_tls);
        assert_int_equal(l->smtp_limits.source, PC_SMTP_SOURCE_VPS);
        assert_int_equal(l->smtp_limits.messages_per_hour, 500);
        assert_int_equal(l->smtp_limits.window, 3600);
        assert_int_equal(l->smtp_limits.connect_timeout, 30);
        assert_int_equal(l->smtp_limits.client_write_timeout, 300);
        assert_int_equal(l->smtp_limits.lifetime, 3600);
        assert_false(b->has_smtp_proxy);
        assert_int_equal(b->smtp_limits.recipients_per_hour, 2000); /* defaults all the same */
        assert_string_equal(cfg->smtpd.control_socket, "/run/portcullis/smtpd.sock");
        assert_int_equal(cfg->smtpd.max_sessions, 10000);
        assert_string_equal(cfg->smtpd.user, "portcullis-smtpd");
        assert_int_equal(cfg->smtpd.n_internal, 0);
        assert_int_equal(l->smtp_limits.client_write_timeout, 300);
        assert_int_equal(l->smtp_limits.lifetime, 3600);
        assert_ptr_equal(l->pos.file, cfg->files[1]);
        assert_int_equal(l->pos.line, 7);
        assert_int_equal(l->pos.col, 10);
        for (unsigned port = 0; port < 65536; port++) {
                assert_int_equal(blocked(l, 0, 0, port), port == 25);
                assert_false(blocked(l, 1, 0, port));
                assert_false(blocked(l, 0, 1, port));
        }

        assert_int_equal(cfg->escalation.n_steps, 3);
        assert_int_equal(cfg->escalation.steps[2], PC_ESCALATION_SUSPEND);
        assert_int_equal(cfg->escalation.memory, 30 * 86400);
        assert_int_equal(cfg->detectors.scan_slow_window, 3600);
        assert_int_equal(cfg->detectors.spoof_episode_gap, 300);
        assert_string_equal(cfg->notify.abuse_copy, "abuse@example.net");
        assert_int_equal(cfg->notify.max_attempts, 8);
        cfg = pc_config_free(cfg);
        assert_null(cfg);
        assert_null(pc_config_free(NULL));
}

static void test_defaults_and_print(void **state)
{
        struct pc_config *cfg = load_ok("{}\n");
        char *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        FILE *f;

        (void)state;
        assert_string_equal(cfg->database, "sqlite:/var/lib/portcullis/portcullis.db");
        assert_int_equal(cfg->n_services, 3);
        assert_int_equal(cfg->n_policies, 0);
        assert_null(cfg->default_site);
        assert_true(cfg->detectors.scan_enabled);
        assert_int_equal(cfg->escalation.n_steps, 3);
        assert_string_equal(cfg->notify.default_language, "en");

        f = open_memstream(&a, &na);
        pc_config_print(cfg, f);
        fclose(f);
        f = open_memstream(&b, &nb);
        pc_config_print(cfg, f);
        fclose(f);
        assert_string_equal(a, b);
        assert_non_null(strstr(a, "  smtp:\n    builtin: true\n"));
        assert_non_null(strstr(a, "escalation:\n  memory: 30d\n  steps: [1h, 1d, suspend]\n"));
        assert_non_null(strstr(a, "\nsmtpd:\n  control-socket: \"/run/portcullis/smtpd.sock\"\n"
                                  "  max-sessions: 10000\n  user: portcullis-smtpd\n  internal-prefixes: []\n"));
        free(a);
        free(b);
        pc_config_free(cfg);
}

/* detectors.scan.exclude: the destinations the scan detectors leave alone. */
static void test_scan_exclude(void **state)
{
        struct pc_config *cfg;
        uint8_t a4[4] = { 192, 0, 2, 53 }, b4[4] = { 192, 0, 2, 54 }, c4[4] = { 198, 51, 100, 7 };
        uint8_t a6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, [15] = 0x53 };
        uint8_t b6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0xff, 0xfe, [15] = 0x53 };

        (void)state;
        cfg = load_ok("detectors:\n  scan:\n    exclude: [192.0.2.53, 198.51.100.0/24, 2001:db8:ffff::/48]\n");
        assert_int_equal(cfg->detectors.n_scan_exclude, 3);
        assert_true(pc_scan_excluded(cfg, AF_INET, a4));
        assert_false(pc_scan_excluded(cfg, AF_INET, b4));
        assert_true(pc_scan_excluded(cfg, AF_INET, c4));
        assert_true(pc_scan_excluded(cfg, AF_INET6, a6));
        assert_false(pc_scan_excluded(cfg, AF_INET6, b6));
        pc_config_free(cfg);
        cfg = load_ok("detectors:\n  scan:\n    enabled: true\n");
        assert_int_equal(cfg->detectors.n_scan_exclude, 0);
        assert_false(pc_scan_excluded(cfg, AF_INET, a4));
        pc_config_free(cfg);
}

static void test_main_errors(void **state)
{
        (void)state;
        /* YAML syntax */
        load_bad("services:\n  irc:\n    ports: [tcp/6667\n",
                 "t.yaml:4:1: flow sequence without a closing bracket");
        load_bad("a: \"unterminated\n", "t.yaml:1:5: double-quoted scalar without closing quote");
        /* empty and multi-document files */
        load_bad("", "t.yaml:1:1: empty document");
        load_bad("# nothing\n", "t.yaml:1:1: empty document");
        load_bad("database: sqlite:a\n---\ndatabase: sqlite:b\n",
                 "t.yaml:2:1: more than one YAML document in the file (remove the '---' or "
                 "split the file)");
        load_bad("- a\n", "t.yaml:1:1: the top level must be a mapping of keys to values, not "
                          "a list");
        /* unknown and duplicate keys */
        load_bad("databse: sqlite:x\n",
                 "t.yaml:1:1: unknown key 'databse' in the main file (expected: database, "
                 "services, profiles, sites, default-site, detectors, escalation, notifications, "
                 "agent, smtpd)");
        load_bad("database: sqlite:a\ndatabase: sqlite:b\n",
                 "t.yaml:2:1: duplicate key 'database' in the main file (first at line 1)");
        load_bad("detectors:\n  scan:\n    enable: true\n",
                 "t.yaml:3:5: unknown key 'enable' in 'scan' (expected: enabled, "
                 "false-positive-rate, detection-rate, slow-window, slow-threshold, hold-after, hold-timeout, confirm-probes, pending-timeout, contact-memory, exclude)");
        load_bad("detectors:\n  scan:\n    exclude: [192.0.2.1/24]\n",
                 "t.yaml:3:15: '192.0.2.1/24' in 'exclude' has bits set beyond its length");
        load_bad("detectors:\n  scan:\n    exclude: [192.0.2.53, 192.0.2.53]\n",
                 "t.yaml:3:27: 'exclude' lists '192.0.2.53' twice");
        /* aliases, complex keys */
        load_bad("detectors:\n  scan: &s\n    enabled: true\n  spam: *s\n",
                 "t.yaml:4:9: aliases (*name) are not supported");
        load_bad("? [a]\n: b\n", "t.yaml:1:3: mapping keys must be plain strings, not lists");
        /* types */
        load_bad("services: [irc]\n", "t.yaml:1:11: 'services' must be a mapping, not a list");
        load_bad("detectors:\n  spoof:\n    enabled: yes\n",
                 "t.yaml:3:14: 'enabled' must be true or false, not 'yes'");
        load_bad("database:\n", "t.yaml:1:1: 'database' must be a string, not empty");
        /* services */
        load_bad("services:\n  irc:\n    ports: [tcp/70000]\n",
                 "t.yaml:3:13: bad port range 'tcp/70000' in 'ports': port 70000 out of range "
                 "0-65535");
        load_bad("services:\n  irc:\n    ports: [tcp/20-10]\n",
                 "t.yaml:3:13: bad port range 'tcp/20-10' in 'ports': range 20-10 is reversed");
        load_bad("services:\n  irc:\n    ports: [sctp/1]\n",
                 "t.yaml:3:13: bad port range 'sctp/1' in 'ports': unknown protocol 'sctp' (tcp "
                 "or udp)");
        load_bad("services:\n  irc:\n    ports: [tcp/1-9, tcp/5]\n",
                 "t.yaml:3:22: port range tcp/5 overlaps tcp/1-9 earlier in 'ports'");
        load_bad("services:\n  smtp:\n    ports: [tcp/25]\n",
                 "t.yaml:2:3: service 'smtp' is built in and cannot be redefined (choose another "
                 "name)");
        load_bad("services:\n  irc:\n    ports: [tcp/1]\n  irc:\n    ports: [tcp/2]\n",
                 "t.yaml:4:3: service 'irc' is defined twice (first at line 2)");
        load_bad("services:\n  IRC:\n    ports: [tcp/1]\n",
                 "t.yaml:2:3: invalid service name 'IRC' (1-63 of a-z, 0-9, '.', '_', '-', "
                 "starting with a letter or digit)");
        load_bad("services:\n  irc:\n    description: chat\n",
                 "t.yaml:2:3: service 'irc' has no 'ports' and no 'ip-protocols'");
        load_bad("services:\n  x:\n    ip-protocols: [tcp]\n",
                 "t.yaml:3:20: 'ip-protocols' lists 'tcp', which has ports: put its port ranges "
                 "in 'ports'");
        load_bad("services:\n  x:\n    ports: [tcp/1]\n    direction: up\n",
                 "t.yaml:4:16: 'direction' must be egress, ingress or both, not 'up'");
        /* sites */
        load_bad("sites:\n  milano:\n    policy: nope\n",
                 "t.yaml:3:13: unknown policy 'nope' for site 'milano' (known: none)");
        load_bad("sites:\n  milano:\n    description: x\n",
                 "t.yaml:3:5: site 'milano' is missing required key 'policy'");
        load_bad("default-site: milano\n",
                 "t.yaml:1:15: unknown site 'milano' in 'default-site' (known: none)");
        /* durations, numbers, emails */
        load_bad("detectors:\n  scan:\n    slow-window: soon\n",
                 "t.yaml:3:18: 'slow-window' must be a positive duration such as 90s, 5m, 1h, "
                 "30d, not 'soon'");
        load_bad("escalation:\n  memory: 0s\n",
                 "t.yaml:2:11: 'memory' must be a positive duration such as 90s, 5m, 1h, 30d, "
                 "not '0s'");
        load_bad("escalation:\n  steps: []\n", "t.yaml:2:10: 'steps' must have 1 to 8 items, not 0");
        load_bad("escalation:\n  steps: [suspend, 1h]\n",
                 "t.yaml:2:20: 'suspend' must be the last step, or come just before 'terminate'");
        load_bad("notifications:\n  max-attempts: 0\n",
                 "t.yaml:2:17: 'max-attempts' must be a whole number from 1 to 100, not '0'");
        load_bad("notifications:\n  max-attempts: 99999999999\n",
                 "t.yaml:2:17: 'max-attempts' must be a whole number from 1 to 100, not "
                 "'99999999999'");
        load_bad("detectors:\n  scan:\n    detection-rate: 0.001\n",
                 "t.yaml:3:21: 'detection-rate' must be greater than 'false-positive-rate'");
        load_bad("detectors:\n  spam:\n    upstream-reject-ratio: nan\n",
                 "t.yaml:3:28: 'upstream-reject-ratio' must be a number greater than 0 and at "
                 "most 1, not 'nan'");
        load_bad("detectors:\n  spam:\n    min-recipients: 0\n",
                 "t.yaml:3:21: 'min-recipients' must be a whole number from 1 to 1000000, not '0'");
        load_bad("detectors:\n  spam:\n    domains-per-hour: -1\n",
                 "t.yaml:3:23: 'domains-per-hour' must be a whole number from 1 to 1000000, not '-1'");
        load_bad("detectors:\n  spam:\n    limit-hits-per-hour: 0\n",
                 "t.yaml:3:26: 'limit-hits-per-hour' must be a whole number from 1 to 1000000, not '0'");
        load_bad("notifications:\n  abuse-copy: abuse\n",
                 "t.yaml:2:15: 'abuse-copy' must be an email address, not 'abuse'");
        load_bad("notifications:\n  from: Portcullis <noc>\n",
                 "t.yaml:2:9: 'from' must be an email address, optionally with a name (Name "
                 "<noc@example.net>), not 'Portcullis <noc>'");
        load_bad("notifications:\n  relay: mail.example.net\n",
                 "t.yaml:2:10: 'relay' must be an smtp:// or smtps:// URL, not "
                 "'mail.example.net'");
        load_bad("notifications:\n  default-language: fr\n",
                 "t.yaml:2:21: 'default-language' must be en or it, not 'fr'");
        /* strings too long, NUL bytes, control characters never reach the line */
        {
                char text[1200];

                snprintf(text, sizeof(text), "database: sqlite:%0600d\n", 0);
                load_bad(text, "t.yaml:1:11: 'database' is too long (607 bytes, at most 511)");
        }
        load_bad("database: \"sqlite:\\0x\"\n", "t.yaml:1:11: 'database' contains a NUL character");
        load_bad("\"a\\nb\": 1\n",
                 "t.yaml:1:1: unknown key 'a?b' in the main file (expected: database, services, "
                 "profiles, sites, default-site, detectors, escalation, notifications, agent, "
                 "smtpd)");
        /* missing files */
        load_bad("profiles: [/nonexistent/p.yaml]\n",
                 "t.yaml:1:12: cannot read profile '/nonexistent/p.yaml': No such file or "
                 "directory");
        load_bad("profiles: [/dev/null]\n",
                 "t.yaml:1:12: cannot read profile '/dev/null': not a regular file");
}

static void test_profile_errors(void **state)
{
        (void)state;
        load_profile_bad(NULL, "profile: p\nrules:\n  - service: smtp\n    action: block\n"
                               "    direcion: egress\n",
                         "@/p.yaml:5:5: unknown key 'direcion' in rule (expected: service, "
                         "action, direction, ports, ip-protocols, exemptable, tos-event, why)");
        load_profile_bad(NULL, "profile: p\nrules:\n  - service: smtp\n    action: block\n"
                               "    exemptable: maybe\n",
                         "@/p.yaml:5:17: 'exemptable' must be true or false, not 'maybe'");
        load_profile_bad(NULL, "profile: p\nrules: smtp\n",
                         "@/p.yaml:2:8: 'rules' must be a list, not 'smtp'");
        load_profile_bad("services:\n  irc:\n    ports: [tcp/6667]\nprofiles: [p.yaml]\n",
                         "profile: p\nrules:\n  - service: smtpp\n    action: block\n",
                         "@/p.yaml:3:14: unknown service 'smtpp' in rule (known: smtp, vpn, "
                         "bittorrent, irc)");
        load_profile_bad(NULL, "profile: p\nrules:\n  - action: block\n",
                         "@/p.yaml:3:5: rule is missing required key 'service'");
        load_profile_bad(NULL, "profile: p\nrules:\n  - service: smtp\n",
                         "@/p.yaml:3:5: rule is missing required key 'action'");
        load_profile_bad(NULL, "rules: []\n",
                         "@/p.yaml:1:1: profile is missing required key 'profile' (the "
                         "policy's name)");
        load_profile_bad("services:\n  irc:\n    ports: [tcp/6660-6669]\n    direction: egress\n"
                         "profiles: [p.yaml]\n",
                         "profile: p\nrules:\n  - service: bittorrent\n    action: block\n"
                         "  - service: irc\n    action: block\n",
                         "@/p.yaml:5:5: rule for 'irc' overlaps rule for 'bittorrent' (line 3) "
                         "on tcp/6660-6669 egress");
        load_profile_bad("services:\n  x:\n    ports: [tcp/25]\n    direction: egress\n"
                         "profiles: [p.yaml]\n",
                         "profile: p\nrules:\n  - service: smtp\n    action: block\n"
                         "  - service: x\n    action: block\n",
                         "@/p.yaml:5:5: rule for 'x' overlaps rule for 'smtp' (line 3) on "
                         "tcp/25 egress");
        load_profile_bad("services:\n  x:\n    ports: [tcp/25]\n    direction: ingress\n"
                         "  y:\n    ip-protocols: [gre]\nprofiles: [p.yaml]\n",
                         "profile: p\nrules:\n  - service: smtp\n    action: block\n"
                         "  - service: x\n    action: block\n"
                         "  - service: vpn\n    action: block\n    ip-protocols: [gre]\n"
                         "  - service: y\n    action: block\n    direction: in\n"
                         "    ip-protocols: [gre]\n",
                         "@/p.yaml:10:5: rule for 'y' overlaps rule for 'vpn' (line 7) on gre "
                         "ingress");
        load_profile_bad(NULL, "profile: p\nrules:\n  - service: smtp\n    action: block\n"
                               "  - service: smtp\n    action: block\n",
                         "@/p.yaml:5:14: policy 'p' already has a rule for 'smtp' (line 3)");
        load_profile_bad(NULL, "profile: p\nsmtp-proxy:\n  listen: 127.0.0.1:25\nrules:\n"
                               "  - service: vpn\n    action: redirect\n    direction: egress\n",
                         "@/p.yaml:5:5: redirect rule for 'vpn' covers udp/500; only tcp can be "
                         "redirected (set 'ports')");
        load_profile_bad(NULL, "profile: p\nsmtp-proxy:\n  listen: 127.0.0.1:25\nrules:\n"
                               "  - service: smtp\n    action: redirect\n    direction: both\n",
                         "@/p.yaml:7:16: redirect rule for 'smtp' must be egress only, not "
                         "'both'");
        load_profile_bad(NULL, "profile: p\nrules:\n  - service: smtp\n    action: redirect\n",
                         "@/p.yaml:3:5: redirect rule for 'smtp' needs an 'smtp-proxy' in "
                         "profile 'p'");
        load_profile_bad(NULL, "profile: p\nrules:\n  - service: smtp\n    action: block\n"
                               "    ip-protocols: [gre]\n",
                         "@/p.yaml:5:20: ip-protocol 'gre' is not selectable for service 'smtp' "
                         "(selectable: none)");
        load_profile_bad(NULL, "profile: p\nrules:\n  - service: smtp\n    action: block\n"
                               "    ports: []\n",
                         "@/p.yaml:3:5: rule for 'smtp' covers no ports and no ip-protocols");
        load_profile_bad(NULL, "profile: p\nsmtp-proxy:\n  listen: localhost\n",
                         "@/p.yaml:3:11: 'listen' must be HOST:PORT or [IPV6]:PORT with a port "
                         "from 1 to 65535, not 'localhost'");
        load_profile_bad(NULL, "profile: p\nresponses:\n  spam: [notify, notify]\n",
                         "@/p.yaml:3:18: 'spam' lists 'notify' twice");
        load_profile_bad(NULL, "profile: p\nexceptions: sometimes\n",
                         "@/p.yaml:2:13: 'exceptions' must be ticket or none, not 'sometimes'");
        load_profile_bad(NULL, "", "@/p.yaml:1:1: empty document");
        load_profile_bad(NULL, "profile: p\n---\nprofile: q\n",
                         "@/p.yaml:2:1: more than one YAML document in the file (remove the "
                         "'---' or split the file)");
        load_profile_bad("profiles: [p.yaml, p.yaml]\n", "profile: p\n",
                         "@/p.yaml:1:10: profile 'p' is already defined at @/p.yaml:1:10");
        load_profile_bad(NULL, "profile: p\nwhy: x\n",
                         "@/p.yaml:2:1: unknown key 'why' in profile (expected: profile, "
                         "description, rules, exceptions, anti-spoofing, responses, smtp-proxy)");
        load_profile_bad(NULL, "profile: p\nrules:\n  - service: smtp\n    action: block\n"
                               "    ports: [udp/53]\n    ports: [udp/54]\n",
                         "@/p.yaml:6:5: duplicate key 'ports' in rule (first at line 5)");
        {
                char why[2048];

                snprintf(why, sizeof(why), "profile: p\nrules:\n  - service: smtp\n"
                                           "    action: block\n    why: %0256d\n", 0);
                load_profile_bad(NULL, why,
                                 "@/p.yaml:5:10: 'why' is too long (256 bytes, at most 255)");
        }
        {
                /* 65 rules for 65 services */
                size_t size = 65 * 64 + 64;
                char *main_text = malloc(size), *prof = malloc(size);
                size_t a = 0, b = 0;

                assert_non_null(main_text);
                assert_non_null(prof);
                a += (size_t)snprintf(main_text + a, size - a, "profiles: [p.yaml]\nservices:\n");
                b += (size_t)snprintf(prof + b, size - b, "profile: p\nrules:\n");
                for (int i = 0; i < 65; i++) {
                        a += (size_t)snprintf(main_text + a, size - a,
                                              "  s%d: {ports: [tcp/%d]}\n", i, 1000 + i);
                        b += (size_t)snprintf(prof + b, size - b,
                                              "  - {service: s%d, action: block}\n", i);
                }
                load_profile_bad(main_text, prof,
                                 "@/p.yaml:3:3: 'rules' has 65 rules, at most 64 are allowed");
                free(main_text);
                free(prof);
        }
}

/* The SMTP proxy: a profile's smtp-proxy limits and the main file's smtpd. */
static void test_smtp_proxy(void **state)
{
        const struct pc_smtp_proxy_limits *l;
        struct pc_config *cfg;

        (void)state;
        /* no limits or timeouts: every default */
        cfg = load_profile_ok("profile: p\nsmtp-proxy:\n  listen: \"[::]:10025\"\n");
        assert_true(cfg->policies[0].has_smtp_proxy);
        l = &cfg->policies[0].smtp_limits;
        assert_int_equal(l->source, PC_SMTP_SOURCE_VPS);
        assert_int_equal(l->messages_per_hour, 500);
        assert_int_equal(l->recipients_per_message, 100);
        assert_int_equal(l->recipients_per_hour, 2000);
        assert_int_equal(l->sessions_per_vps, 20);
        assert_int_equal(l->window, 3600);
        assert_int_equal(l->command_timeout, 300);
        assert_int_equal(l->data_timeout, 600);
        assert_int_equal(l->upstream_timeout, 600);
        assert_int_equal(l->connect_timeout, 30);
        cfg = pc_config_free(cfg);
        /* every key, the bounds included; the rest keep their defaults */
        cfg = load_profile_ok("profile: p\nsmtp-proxy:\n  listen: 127.0.0.1:2525\n"
                              "  tls: false\n  source: hypervisor\n"
                              "  limits:\n    messages-per-hour: 10000000\n"
                              "    recipients-per-message: 1\n    window: 1s\n"
                              "  timeouts:\n    data: 1h\n    connect: 1\n");
        l = &cfg->policies[0].smtp_limits;
        assert_false(cfg->policies[0].smtp_proxy_tls);
        assert_int_equal(l->source, PC_SMTP_SOURCE_HYPERVISOR);
        assert_int_equal(l->messages_per_hour, 10000000);
        assert_int_equal(l->recipients_per_message, 1);
        assert_int_equal(l->recipients_per_hour, 2000);
        assert_int_equal(l->sessions_per_vps, 20);
        assert_int_equal(l->window, 1);
        assert_int_equal(l->command_timeout, 300);
        assert_int_equal(l->data_timeout, 3600);
        assert_int_equal(l->upstream_timeout, 600);
        assert_int_equal(l->connect_timeout, 1);
        cfg = pc_config_free(cfg);

        cfg = load_ok("smtpd:\n  control-socket: /run/smtpd/c.sock\n  max-sessions: 1000000\n"
                      "  user: _smtp-proxy0\n");
        assert_string_equal(cfg->smtpd.control_socket, "/run/smtpd/c.sock");
        assert_int_equal(cfg->smtpd.max_sessions, 1000000);
        assert_string_equal(cfg->smtpd.user, "_smtp-proxy0");
        cfg = pc_config_free(cfg);
        /* an empty section keeps every default */
        cfg = load_ok("smtpd: {}\n");
        assert_string_equal(cfg->smtpd.control_socket, "/run/portcullis/smtpd.sock");
        assert_string_equal(cfg->smtpd.user, "portcullis-smtpd");
        assert_int_equal(cfg->smtpd.n_internal, 0);
        cfg = pc_config_free(cfg);

        load_bad("smtpd:\n  control-socket: smtpd.sock\n",
                 "t.yaml:2:19: 'control-socket' must be an absolute path, not 'smtpd.sock'");
        load_bad("smtpd:\n  max-sessions: 1000001\n",
                 "t.yaml:2:17: 'max-sessions' must be a whole number from 1 to 1000000, not "
                 "'1000001'");
        load_bad("smtpd:\n  user: 1mail\n",
                 "t.yaml:2:9: 'user' must be a user name: a lower-case letter or '_', then "
                 "lower-case letters, digits, '_' or '-', not '1mail'");
        load_bad("smtpd:\n  user: \"\"\n", "t.yaml:2:9: 'user' must not be empty");
        load_bad("smtpd:\n  user: abcdefghijklmnopqrstuvwxyz0123456\n",
                 "t.yaml:2:9: 'user' is too long (33 bytes, at most 31)");
        load_bad("smtpd:\n  users: nobody\n",
                 "t.yaml:2:3: unknown key 'users' in 'smtpd' (expected: control-socket, "
                 "max-sessions, user, internal-prefixes)");
        load_bad("smtpd: []\n", "t.yaml:1:8: 'smtpd' must be a mapping, not a list");

#define PROXY "profile: p\nsmtp-proxy:\n  listen: \"[::]:10025\"\n"
        load_profile_bad(NULL, PROXY "  tls: true\n",
                         "@/p.yaml:4:8: 'tls: true' is not supported: the SMTP proxy offers no "
                         "TLS to the VPS (use port 587 or a relay for TLS)");
        load_profile_bad(NULL, PROXY "  source: mx\n",
                         "@/p.yaml:4:11: 'source' must be vps or hypervisor, not 'mx'");
        load_profile_bad(NULL, PROXY "  limits: 500\n",
                         "@/p.yaml:4:11: 'limits' must be a mapping, not '500'");
        load_profile_bad(NULL, PROXY "  limits:\n    messages-per-hour: 0\n",
                         "@/p.yaml:5:24: 'messages-per-hour' must be a whole number from 1 to "
                         "10000000, not '0'");
        load_profile_bad(NULL, PROXY "  limits:\n    recipients-per-message: 100001\n",
                         "@/p.yaml:5:29: 'recipients-per-message' must be a whole number from "
                         "1 to 100000, not '100001'");
        load_profile_bad(NULL, PROXY "  limits:\n    recipients-per-hour: -1\n",
                         "@/p.yaml:5:26: 'recipients-per-hour' must be a whole number from 1 "
                         "to 10000000, not '-1'");
        load_profile_bad(NULL, PROXY "  limits:\n    sessions-per-vps: 0\n",
                         "@/p.yaml:5:23: 'sessions-per-vps' must be a whole number from 1 to "
                         "100000, not '0'");
        load_profile_bad(NULL, PROXY "  limits:\n    window: 0s\n",
                         "@/p.yaml:5:13: 'window' must be a duration from 1s to 1d, not '0s'");
        load_profile_bad(NULL, PROXY "  limits:\n    window: 25h\n",
                         "@/p.yaml:5:13: 'window' must be a duration from 1s to 1d, not '25h'");
        load_profile_bad(NULL, PROXY "  limits:\n    messages: 5\n",
                         "@/p.yaml:5:5: unknown key 'messages' in 'limits' (expected: "
                         "messages-per-hour, recipients-per-message, recipients-per-hour, "
                         "sessions-per-vps, window)");
        load_profile_bad(NULL, PROXY "  timeouts:\n    command: 61m\n",
                         "@/p.yaml:5:14: 'command' must be a duration from 1s to 1h, not '61m'");
        load_profile_bad(NULL, PROXY "  timeouts:\n    data: soon\n",
                         "@/p.yaml:5:11: 'data' must be a duration from 1s to 1h, not 'soon'");
        load_profile_bad(NULL, PROXY "  timeouts:\n    upstream: 0\n",
                         "@/p.yaml:5:15: 'upstream' must be a duration from 1s to 1h, not '0'");
        load_profile_bad(NULL, PROXY "  timeouts:\n    connect: [1s]\n",
                         "@/p.yaml:5:14: 'connect' must be a duration from 1s to 1h, not a list");
        load_profile_bad(NULL, PROXY "  timeouts:\n    idle: 1m\n",
                         "@/p.yaml:5:5: unknown key 'idle' in 'timeouts' (expected: command, "
                         "data, upstream, connect, client-write, lifetime)");
        load_profile_bad(NULL, PROXY "  limit: {}\n",
                         "@/p.yaml:4:3: unknown key 'limit' in 'smtp-proxy' (expected: listen, "
                         "tls, upstream-tls, source, limits, timeouts)");
#undef PROXY
}

static void test_hostile(void **state)
{
        struct pc_config *cfg = NULL;
        char err[256];
        size_t n = 200000;
        char *deep = malloc(n + 1);

        (void)state;
        assert_non_null(deep);
        /* deep nesting */
        for (size_t i = 0; i < n; i++)
                deep[i] = i < n / 2 ? '[' : ']';
        deep[n] = '\0';
        assert_int_equal(pc_config_load_string("t.yaml", deep, n, &cfg, err, sizeof(err)),
                         -EINVAL);
        assert_null(cfg);
        /* too large */
        free(deep);
        n = 1024 * 1024 + 1;
        deep = malloc(n);
        assert_non_null(deep);
        memset(deep, ' ', n);
        assert_int_equal(pc_config_load_string("t.yaml", deep, n, &cfg, err, sizeof(err)),
                         -EINVAL);
        assert_string_equal(err, "t.yaml:1:1: file is larger than 1048576 bytes");
        assert_null(cfg);
        free(deep);
        /* embedded NUL bytes and binary junk */
        assert_int_equal(pc_config_load_string("t.yaml", "a\0b: c\n", 7, &cfg, err, sizeof(err)),
                         -EINVAL);
        assert_string_equal(err, "t.yaml:1:2: NUL byte in file");
        /* invalid UTF-8; libfyaml 0.7.12 hangs on this one (found by fuzzing) */
        assert_int_equal(pc_config_load_string("t.yaml", "%a{\x83", 4, &cfg, err, sizeof(err)),
                         -EINVAL);
        assert_string_equal(err, "t.yaml:1:4: invalid UTF-8 (byte 0x83)");
        assert_int_equal(pc_config_load_string("t.yaml", "a: \xe0\x80\xaf\n", 7, &cfg, err,
                                               sizeof(err)), -EINVAL);
        assert_string_equal(err, "t.yaml:1:4: invalid UTF-8 (code point U+002F)");
        assert_int_equal(pc_config_load_string("t.yaml", "a: b\nc: \xe2\x82", 10, &cfg, err,
                                               sizeof(err)), -EINVAL);
        assert_string_equal(err, "t.yaml:2:4: invalid UTF-8 (truncated sequence)");
        /* valid UTF-8 passes through to the value */
        cfg = load_ok("sites: {}\nnotifications:\n  from: \"Portcullis \xc3\xa8 <noc@example.net>\"\n");
        assert_string_equal(cfg->notify.from, "Portcullis \xc3\xa8 <noc@example.net>");
        cfg = pc_config_free(cfg);
        /* single-quoted scalars are decoded by us: libfyaml 0.7.12 leaks its
         * copy of runs of '' (found by fuzzing; ASan checks it here) */
        cfg = load_ok("database: 'sqlite:xy'\n");
        assert_string_equal(cfg->database, "sqlite:xy");
        cfg = pc_config_free(cfg);
        cfg = load_ok("database: 'sqlite:a\n  b\n\n  c'\n");
        assert_string_equal(cfg->database, "sqlite:a b\nc");
        cfg = pc_config_free(cfg);
        load_bad("database: ''\n", "t.yaml:1:11: 'database' must be sqlite:PATH or "
                                   "postgresql://..., not ''");
        /* NULL error buffer is fine */
        assert_int_equal(pc_config_load_string("t.yaml", "x: y\n", 5, &cfg, NULL, 0), -EINVAL);
        assert_null(cfg);
}

/* A relative sqlite:PATH is relative to the main file's folder (made
 * absolute), as profiles and templates are; an absolute one is kept. */
static void test_database_relative(void **state)
{
        struct pc_config *cfg = NULL;
        struct tmpdir t;
        char err[1024] = "", path[256], want[256], cwd[4096];

        tmp_make(&t);
        tmp_write(&t, "main.yaml", "database: sqlite:state/p.db\n");
        snprintf(path, sizeof(path), "%s/main.yaml", t.path);
        assert_int_equal(pc_config_load(path, &cfg, err, sizeof(err)), 0);
        snprintf(want, sizeof(want), "sqlite:%s/state/p.db", t.path);
        assert_string_equal(cfg->database, want);
        cfg = pc_config_free(cfg);

        /* A relative config path, from another folder: still absolute. */
        assert_non_null(getcwd(cwd, sizeof(cwd)));
        assert_int_equal(chdir("/tmp"), 0);
        assert_int_equal(pc_config_load(path + strlen("/tmp/"), &cfg, err, sizeof(err)), 0);
        assert_int_equal(chdir(cwd), 0);
        assert_string_equal(cfg->database, want);
        cfg = pc_config_free(cfg);

        tmp_write(&t, "main.yaml", "database: sqlite:/var/lib/p.db\n");
        assert_int_equal(pc_config_load(path, &cfg, err, sizeof(err)), 0);
        assert_string_equal(cfg->database, "sqlite:/var/lib/p.db");
        cfg = pc_config_free(cfg);
        tmp_remove(&t);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_shipped),
                cmocka_unit_test(test_defaults_and_print),
                cmocka_unit_test(test_main_errors),
                cmocka_unit_test(test_scan_exclude),
                cmocka_unit_test(test_profile_errors),
                cmocka_unit_test(test_smtp_proxy),
                cmocka_unit_test(test_hostile),
                cmocka_unit_test(test_database_relative),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
