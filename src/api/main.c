/* portcullis-apid: the HTTP+JSON API.  Thin: options, privileges, then the
 * server (server.c) until SIGTERM. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "base/privdrop.h"
#include "base/unixsock.h"
#include "base/util.h"
#include "policy/config.h"
#include "store/store.h"

#define DEFAULT_CONFIG "/etc/portcullis/portcullis.yaml"
#define DEFAULT_USER "portcullis-api"
#define PEM_MAX (64 * 1024)

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: portcullis-apid [-c FILE] [--db URL] [--listen ADDR] [--port N]\n"
                "                       [--tls-cert FILE --tls-key FILE] [--rate N] [--burst N]\n"
                "                       [--user NAME] [--routes]\n"
                "\n"
                "The Portcullis HTTP+JSON API, for control panels, support tools and the VM\n"
                "manager's hooks (docs/API.md; the routes in docs/openapi.yaml).  Every request\n"
                "carries a bearer token (`portcullis token create`); its role says what it may\n"
                "do, and a customer's token sees only that customer's VPSes and tickets.\n"
                "Changes go through the same operations as the `portcullis` command, into the\n"
                "database; portcullisd applies them to the kernel within milliseconds (it is\n"
                "woken on its changes.sock and follows the database's change feed).\n"
                "\n"
                "  -c, --config FILE   configuration (default $PORTCULLIS_CONFIG, then\n"
                "                      " DEFAULT_CONFIG ")\n"
                "      --db URL        database instead of the config's `database`\n"
                "      --listen ADDR   address to listen on (default 127.0.0.1; :: or 0.0.0.0\n"
                "                      for every address: then use TLS)\n"
                "      --port N        TCP port (default 8470; 0: any free port, printed)\n"
                "      --tls-cert FILE PEM certificate (chain); with --tls-key, HTTPS only\n"
                "      --tls-key FILE  PEM private key\n"
                "      --rate N        requests a second per client address (default 20),\n"
                "      --burst N       and in one burst (default 40); over it: 429\n"
                "      --connections N open connections at once (default 256; when all are\n"
                "                      taken, the one waiting longest for its headers goes),\n"
                "      --per-client N  and from one client: an IPv4 address, an IPv6 /64\n"
                "                      (default 16)\n"
                "      --user NAME     when started as root, become NAME after reading the\n"
                "                      configuration and the TLS files (default " DEFAULT_USER ")\n"
                "      --agent-metrics FILE\n"
                "                      portcullisd's figures appended to /metrics (default:\n"
                "                      agent.prom beside the agent's control socket,\n"
                "                      /run/portcullis/agent.prom; \"\": none)\n"
                "      --routes        print the routes served (METHOD PATH) and exit\n"
                "  -h, --help          this help\n"
                "\n"
                "Errors are JSON: {\"error\": {\"code\", \"message\", \"field\"}} with 400 (a bad\n"
                "value: field names it), 401, 403, 404 (also for another customer's object),\n"
                "405, 409 (an illegal transition, a conflict), 413 (a body over 64 KiB), 429\n"
                "and 500.  Logs go to stderr, one line per request.\n");
}

/* Reads PEM file <path> whole into a new string, or NULL with <err>. */
static char *read_pem(const char *path, char *err, size_t errsz)
{
        FILE *f = fopen(path, "re");
        char *buf;
        size_t n;

        if (f == NULL) {
                snprintf(err, errsz, "%s: %s", path, strerror(errno));
                return NULL;
        }
        buf = calloc(1, PEM_MAX + 1);
        n = buf != NULL ? fread(buf, 1, PEM_MAX + 1, f) : 0;
        fclose(f);
        if (buf == NULL || n == 0 || n > PEM_MAX) {
                snprintf(err, errsz, "%s: %s", path, buf == NULL ? "out of memory" : n == 0 ? "empty" : "larger than 64 KiB");
                free(buf);
                return NULL;
        }
        return buf;
}

static int parse_uint(const char *s, unsigned max, unsigned *ret)
{
        char *end;
        unsigned long v = strtoul(s, &end, 10);

        if (*s == '\0' || *end != '\0' || v > max)
                return -EINVAL;
        *ret = (unsigned)v;
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },    { "db", required_argument, NULL, 'd' },
                { "listen", required_argument, NULL, 'l' },    { "port", required_argument, NULL, 'p' },
                { "tls-cert", required_argument, NULL, 'C' },  { "tls-key", required_argument, NULL, 'K' },
                { "rate", required_argument, NULL, 'r' },      { "burst", required_argument, NULL, 'b' },
                { "connections", required_argument, NULL, 'n' }, { "user", required_argument, NULL, 'u' },
                { "agent-metrics", required_argument, NULL, 'm' }, { "routes", no_argument, NULL, 'R' },
                { "per-client", required_argument, NULL, 'P' },
                { "help", no_argument, NULL, 'h' },            { NULL, 0, NULL, 0 },
        };
        struct api_settings set = { .address = "127.0.0.1", .port = 8470, .rate = 20, .burst = 40,
                                    .connections = 256, .per_client = 16 };
        const char *config = getenv("PORTCULLIS_CONFIG"), *db = NULL, *user = DEFAULT_USER;
        const char *cert_path = NULL, *key_path = NULL;
        char *cert = NULL, *key = NULL, err[1024], wake[108] = "", metrics[108] = "";
        bool metrics_given = false;
        struct pc_config *cfg = NULL;
        struct pc_store *store = NULL;
        struct api_server *server = NULL;
        struct pc_ops ops;
        unsigned port = 8470;
        sigset_t mask;
        int opt, sig, r = 1;

        while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
                switch (opt) {
                case 'c': config = optarg; break;
                case 'd': db = optarg; break;
                case 'l': set.address = optarg; break;
                case 'p':
                        if (parse_uint(optarg, 65535, &port) < 0) {
                                fprintf(stderr, "portcullis-apid: --port '%s' is not a port (0-65535)\n", optarg);
                                return 2;
                        }
                        set.port = (uint16_t)port;
                        break;
                case 'C': cert_path = optarg; break;
                case 'K': key_path = optarg; break;
                case 'r':
                case 'b':
                case 'n':
                case 'P': {
                        unsigned v;

                        if (parse_uint(optarg, 1000000, &v) < 0 || v == 0) {
                                fprintf(stderr, "portcullis-apid: --%s '%s' is not a number from 1 to 1000000\n",
                                        opt == 'r'   ? "rate"
                                        : opt == 'b' ? "burst"
                                        : opt == 'n' ? "connections"
                                                     : "per-client",
                                        optarg);
                                return 2;
                        }
                        *(opt == 'r' ? &set.rate : opt == 'b' ? &set.burst : opt == 'n' ? &set.connections
                                                                                        : &set.per_client) = v;
                        break;
                }
                case 'u': user = optarg; break;
                case 'm':
                        set.agent_metrics = optarg[0] != '\0' ? optarg : NULL;
                        metrics_given = true;
                        break;
                case 'R':
                        for (size_t i = 0; i < api_n_routes; i++)
                                printf("%s %s\n", api_routes[i].method, api_routes[i].pattern);
                        return 0;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind != argc) {
                usage(stderr);
                return 2;
        }
        if ((cert_path == NULL) != (key_path == NULL)) {
                fprintf(stderr, "portcullis-apid: --tls-cert and --tls-key go together\n");
                return 2;
        }
        if (set.burst < set.rate)
                set.burst = set.rate;
        if (config == NULL || config[0] == '\0')
                config = DEFAULT_CONFIG;

        /* What root may read: the configuration and the TLS key.  Then no
         * root, before a byte from the network is parsed. */
        if (pc_config_load(config, &cfg, err, sizeof(err)) < 0) {
                fprintf(stderr, "portcullis-apid: %s\n", err);
                return 1;
        }
        if (cert_path != NULL && ((cert = read_pem(cert_path, err, sizeof(err))) == NULL ||
                                  (key = read_pem(key_path, err, sizeof(err))) == NULL)) {
                fprintf(stderr, "portcullis-apid: %s\n", err);
                goto out;
        }
        set.tls_cert = cert;
        set.tls_key = key;
        if (privdrop(user, false, err, sizeof(err)) < 0) {
                fprintf(stderr, "portcullis-apid: %s: it must not run as root (create the user: useradd --system "
                                "%s; give it the database's folder; or pass --user)\n",
                        err, user);
                goto out;
        }
        db = db != NULL ? db : cfg->database;
        if (pc_store_open(db, &store, err, sizeof(err)) < 0) {
                fprintf(stderr, "portcullis-apid: %s\n", err);
                goto out;
        }
        if (pc_unix_wake_path(cfg->agent.control_socket, wake, sizeof(wake)) == 0)
                set.wake_path = wake;
        if (!metrics_given && pc_unix_sibling_path(cfg->agent.control_socket, "agent.prom", metrics, sizeof(metrics)) == 0)
                set.agent_metrics = metrics;
        ops = (struct pc_ops){ .cfg = cfg, .store = store };

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &mask, NULL); /* before the server's thread inherits the mask */
        signal(SIGPIPE, SIG_IGN);
        if (api_server_start(&set, &ops, &server, err, sizeof(err)) < 0) {
                fprintf(stderr, "portcullis-apid: %s\n", err);
                goto out;
        }
        fprintf(stderr, "portcullis-apid: listening on %s port %u (%s), database %s, as uid %u\n", set.address,
                api_server_port(server), cert != NULL ? "https" : "http", db, (unsigned)geteuid());
        for (;;) {
                if (sigwait(&mask, &sig) != 0 || sig != SIGHUP)
                        break;
                fprintf(stderr, "portcullis-apid: SIGHUP ignored: restart to read the configuration again\n");
        }
        fprintf(stderr, "portcullis-apid: stopping on signal %d\n", sig);
        r = 0;
out:
        api_server_stop(server);
        pc_store_close(store);
        pc_config_free(cfg);
        free(cert);
        free(key);
        return r;
}
