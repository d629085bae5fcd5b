/* portcullis-smtpd: the transparent SMTP proxy.  Thin: options, setup,
 * privilege drop, the event loop. */
#include <event2/event.h>
#include <openssl/ssl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "smtpd/account.h"
#include "policy/addr_index.h"
#include "smtpd/dest.h"
#include "smtpd/lograte.h"
#include "base/privdrop.h"
#include "smtpd/smtpd.h"

#define DEFAULT_CONFIG "/etc/portcullis/portcullis.yaml"

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: portcullis-smtpd [-c FILE] [--db URL] [--check]\n"
                "\n"
                "The Portcullis SMTP proxy.  The agent (portcullisd) redirects outbound TCP\n"
                "port 25 of every VPS whose policy has an `smtp-proxy` to this daemon, which\n"
                "recovers the original destination (SO_ORIGINAL_DST), connects to that MX\n"
                "from the VPS's own address (`source: vps`, IP_TRANSPARENT) and relays the\n"
                "SMTP dialogue exactly: replies in order under pipelining, CHUNKING/BDAT by\n"
                "length, 8BITMIME, SMTPUTF8, SIZE and DSN untouched.  STARTTLS is removed\n"
                "from the EHLO reply and refused with a reply that names port 587.\n"
                "\n"
                "Per VPS it counts sessions, messages, recipients, bytes, recipient domains\n"
                "and the MX's refusals, and enforces the policy's limits (messages and\n"
                "recipients per window, recipients per message, concurrent sessions) with\n"
                "4xx replies naming the limit.  A VPS with a filter or suspension covering\n"
                "port 25 is refused with 421 and the reason.  One log line per message:\n"
                "  message session= vps= src= mx= helo= from= rcpts= accepted= refused=\n"
                "          limited= size= mail= data= result= final= reply= duration_ms=\n"
                "\n"
                "  -c, --config FILE  configuration (default $PORTCULLIS_CONFIG, then\n"
                "                     " DEFAULT_CONFIG ")\n"
                "      --db URL       database instead of the config's `database`\n"
                "      --check        load the configuration and the VPSes, then exit\n"
                "  -h, --help         this help\n"
                "\n"
                "It starts as root, opens the database read-only and its sockets, then\n"
                "becomes `smtpd: user` (default portcullis-smtpd, its own system user)\n"
                "keeping only CAP_NET_RAW (for IP_TRANSPARENT).  It never connects to this\n"
                "host's own addresses, `smtpd: internal-prefixes`, loopback, link-local,\n"
                "multicast or broadcast (421 4.3.2).  The control socket\n"
                "(`smtpd: control-socket`) answers stats, status, sync ID and reload\n"
                "(docs/CONTROL.md); the agent forwards every change to it.\n"
                "\n"
                "Signals: SIGHUP reloads (keeping the old configuration if the new one\n"
                "fails); SIGTERM and SIGINT stop the proxy (open sessions are cut).\n");
}

static void on_signal(evutil_socket_t sig, short what, void *ctx)
{
        struct smtpd *d = ctx;
        char err[512];

        if (sig == SIGHUP) {
                if (smtpd_load(d, err, sizeof(err)) < 0)
                        smtpd_log("reload failed, keeping the previous configuration: %s", err);
                else
                        smtpd_log("reloaded: %zu VPSes", pc_model_count(d->model));
                return;
        }
        smtpd_log("stopping on signal %d with %u open sessions", (int)sig, d->sessions);
        event_base_loopbreak(d->base);
}

/* Each session holds two sockets: raises the soft limit on open files to
 * what max-sessions needs (up to the hard limit), and says if it is short. */
static void raise_fd_limit(unsigned max_sessions)
{
        rlim_t want = (rlim_t)max_sessions * 2 + 64;
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
                return;
        if (rl.rlim_cur < want) {
                rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
        }
        if (rl.rlim_cur < want)
                smtpd_log("open files are limited to %llu: at most about %llu sessions, not max-sessions %u "
                          "(raise LimitNOFILE)",
                          (unsigned long long)rl.rlim_cur, (unsigned long long)(rl.rlim_cur - 64) / 2,
                          max_sessions);
}

/* True if some policy connects from the VPS's address (needs CAP_NET_RAW). */
static bool needs_transparent(const struct pc_config *cfg)
{
        for (size_t i = 0; i < cfg->n_policies; i++)
                if (cfg->policies[i].has_smtp_proxy &&
                    cfg->policies[i].smtp_limits.source == PC_SMTP_SOURCE_VPS)
                        return true;
        return false;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' }, { "db", required_argument, NULL, 'd' },
                { "check", no_argument, NULL, 'k' },         { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        static const int sigs[] = { SIGHUP, SIGTERM, SIGINT };
        struct smtpd d = { .control_fd = -1 };
        bool check = false;
        char err[512];
        int opt, r;

        d.config_path = getenv("PORTCULLIS_CONFIG");
        while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
                switch (opt) {
                case 'c': d.config_path = optarg; break;
                case 'd': d.db_url = optarg; break;
                case 'k': check = true; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind != argc) {
                usage(stderr);
                return 2;
        }
        if (d.config_path == NULL)
                d.config_path = DEFAULT_CONFIG;
        signal(SIGPIPE, SIG_IGN);
        /* One write per log line, not one per fragment. */
        setvbuf(stderr, NULL, _IOLBF, 0);
        d.started = pc_now();
        if (smtpd_load(&d, err, sizeof(err)) < 0 || account_new(&d.account) < 0) {
                smtpd_log("%s", err);
                return 1;
        }
        if (check) {
                printf("ok: %zu VPSes\n", pc_model_count(d.model));
                return 0;
        }
        raise_fd_limit(d.cfg->smtpd.max_sessions);
        d.base = event_base_new();
        if (d.base == NULL) {
                smtpd_log("cannot create the event loop");
                return 1;
        }
        if ((r = smtpd_tick_start(&d, err, sizeof(err))) < 0 ||
            (r = proxy_tls_init(&d, err, sizeof(err))) < 0 || (r = proxy_listen(&d, err, sizeof(err))) < 0 ||
            (r = smtpd_control_start(&d, err, sizeof(err))) < 0 ||
            (r = privdrop(d.cfg->smtpd.user, needs_transparent(d.cfg), err, sizeof(err))) < 0) {
                smtpd_log("%s", err);
                return 1;
        }
        for (size_t i = 0; i < 3; i++) {
                d.signals[i] = evsignal_new(d.base, sigs[i], on_signal, &d);
                event_add(d.signals[i], NULL);
        }
        smtpd_log("ready: %zu VPSes, at most %u sessions, user %s", pc_model_count(d.model),
                  d.cfg->smtpd.max_sessions, d.cfg->smtpd.user);
        event_base_dispatch(d.base);

        proxy_close_listeners(&d);
        smtpd_control_stop(&d);
        for (size_t i = 0; i < 3; i++)
                event_free(d.signals[i]);
        event_free(d.tick);
        event_base_free(d.base);
        lograte_free(d.log_refused);
        lograte_free(d.log_sessions);
        dest_guard_free(d.guard);
        account_free(d.account);
        SSL_CTX_free(d.tls);
        addr_index_free(d.index);
        pc_model_free(d.model);
        pc_store_close(d.store);
        pc_config_free(d.cfg);
        return 0;
}
