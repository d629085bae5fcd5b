/* portcullisd: the hypervisor agent.  Thin: options, signals, then the
 * event loop (loop.c). */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "agent/agent.h"
#include "base/unixsock.h"

#define DEFAULT_CONFIG "/etc/portcullis/portcullis.yaml"

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: portcullisd [-c FILE] [--db URL] [--host NAME] [--once]\n"
                "\n"
                "The Portcullis agent: runs on a hypervisor as root and makes the kernel\n"
                "enforce the policy of every VPS registered in the database, in its own\n"
                "nftables table (table inet portcullis by default; nothing else is touched).\n"
                "\n"
                "At start it checks the table's record of its last transaction: if nothing\n"
                "has changed the ruleset since, and the database holds what it enforced then,\n"
                "there is nothing to do.  Otherwise it reads what the kernel holds (in the\n"
                "background, taking changes meanwhile, if its table is in place) and repairs\n"
                "any drift: the whole table in one atomic transaction if it was built from\n"
                "another configuration, otherwise just the elements that are missing or extra.\n"
                "Changes made with `portcullis` arrive through the control socket and are\n"
                "applied as element changes, one transaction each.  Stopping or killing the\n"
                "agent leaves enforcement in place (fail closed); time-limited exceptions and\n"
                "filters expire in the kernel on time even while it is down.\n"
                "\n"
                "If the database cannot be read at start, the agent enforces the snapshot of\n"
                "its host's policy it keeps on disk (agent.snapshot): an empty kernel (a\n"
                "reboot) is programmed from it, a table already there stays as it is, and the\n"
                "database's policy replaces it when it answers.\n"
                "\n"
                "  -c, --config FILE  configuration (default $PORTCULLIS_CONFIG, then\n"
                "                     " DEFAULT_CONFIG ")\n"
                "      --db URL       database instead of the config's `database`\n"
                "      --host NAME    this hypervisor's name in a fleet sharing one PostgreSQL\n"
                "                     database (instead of the config's agent.host): only the\n"
                "                     VPSes registered on NAME are enforced here, changes are\n"
                "                     followed as the database commits them (LISTEN), and a\n"
                "                     heartbeat is recorded for `portcullis fleet status`.\n"
                "                     Without a host, every VPS in the database is enforced.\n"
                "      --once         reconcile the kernel and exit (0 if in sync, or enforcing\n"
                "                     the snapshot while the database cannot be read)\n"
                "  -h, --help         this help\n"
                "\n"
                "Signals: SIGHUP reloads the configuration (or keeps the old one and logs\n"
                "why); SIGTERM and SIGINT stop the agent, leaving the rules in force.\n");
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' }, { "db", required_argument, NULL, 'd' },
                { "once", no_argument, NULL, 'o' },          { "help", no_argument, NULL, 'h' },
                { "host", required_argument, NULL, 'H' },
                { NULL, 0, NULL, 0 },
        };
        struct agent a = { .wake_fd = -1, .sync_fd = -1 };
        bool once = false;
        int opt, listen_fd = -1, sig_fd, r;
        sigset_t mask;

        a.config_path = getenv("PORTCULLIS_CONFIG");
        while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
                switch (opt) {
                case 'c': a.config_path = optarg; break;
                case 'd': a.db_url = optarg; break;
                case 'H': a.host_arg = optarg; break;
                case 'o': once = true; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind != argc) {
                usage(stderr);
                return 2;
        }
        if (a.config_path == NULL || a.config_path[0] == '\0')
                a.config_path = DEFAULT_CONFIG;

        sigemptyset(&mask);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sig_fd == -1) {
                agent_log("Failed to set up signals: %s", strerror(errno));
                return 1;
        }
        curl_global_init(CURL_GLOBAL_DEFAULT); /* before any thread */
        a.once = once;
        if (agent_start(&a) < 0) {
                agent_stop(&a);
                return 1;
        }
        if (once) {
                agent_start_purge(&a);
                agent_stop(&a);
                return 0;
        }
        r = pc_unix_listen(a.cfg->agent.control_socket, &listen_fd);
        if (r < 0) {
                agent_log("Failed to listen on %s: %s", a.cfg->agent.control_socket, strerror(-r));
                agent_stop(&a);
                return 1;
        }
        agent_log("Listening on %s%s%s", a.cfg->agent.control_socket, agent_host(&a)[0] != '\0' ? " as host " : "",
                  agent_host(&a));
        agent_changes_open(&a);
        agent_heartbeat(&a);
        agent_metrics_write(&a);
        agent_smtpd_started(&a);
        agent_events_open(&a);
        agent_scan_open(&a);
        agent_spam_open(&a);
        r = agent_run(&a, listen_fd, sig_fd);
        if (r < 0)
                agent_log("The event loop failed: %s", strerror(-r));
        close(listen_fd);
        unlink(a.cfg->agent.control_socket);
        agent_changes_close(&a);
        agent_metrics_remove(&a); /* stale figures would say "in sync" */
        close(sig_fd);
        agent_stop(&a);
        return r < 0 ? 1 : 0;
}
