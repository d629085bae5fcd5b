/* portcullis init: the one command that creates the database (and, in a
 * fleet, maps a hypervisor's own PostgreSQL role to it). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"

int cmd_init(struct cli *c, int argc, char **argv);

/* A PostgreSQL role's name as `init --db-role` takes it: 1-63 of a-z 0-9
 * _ . -, starting with a letter (so never a quoting surprise in a URL). */
static bool db_role_valid(const char *role)
{
        size_t n = strlen(role);

        if (n == 0 || n > 63 || role[0] < 'a' || role[0] > 'z')
                return false;
        return strspn(role, "abcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* init --agent-role HOST [--db-role ROLE]: the database exists (made or
 * migrated just now); ROLE becomes HOST's. */
static int agent_role(struct cli *c, const char *db, const char *host, const char *role, int version)
{
        if (pc_store_agent_role(c->store, host, role) < 0) {
                cli_error("Failed to make role %s host %s's: %s", role, host, pc_store_errmsg(c->store));
                return CLI_ERROR;
        }
        if (c->json)
                return cli_print_json(json_pack("{s:s, s:i, s:{s:s, s:s}}", "database", db, "schema_version", version,
                                                "agent_role", "role", role, "host", host));
        printf("role %s is host %s's: it reads the database and changes %s's VPSes only; give %s\n"
               "  database: \"...?user=%s\" (its password in ~/.pgpass) and nothing else\n",
               role, host, host, host, role);
        return CLI_OK;
}
/* Creates the database the config (or --db) names, or migrates the one
 * that is there; says which. */
int cmd_init(struct cli *c, int argc, char **argv)
{
        static const struct option opts[] = {
                { "agent-role", required_argument, NULL, 'a' },
                { "db-role", required_argument, NULL, 'r' },
                { NULL, 0, NULL, 0 },
        };
        char err[1024], role_buf[80];
        const char *db, *host = NULL, *role = NULL;
        bool created = false;
        int opt, r, version = 0;

        optind = 0;
        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (opt) {
                case 'a': host = optarg; break;
                case 'r': role = optarg; break;
                default: return cli_usage_error("init", "bad option for init (--agent-role HOST, --db-role ROLE)");
                }
        }
        if (optind != argc)
                return cli_usage_error("init", "init takes no arguments but --agent-role HOST [--db-role ROLE]");
        if (role != NULL && host == NULL)
                return cli_usage_error("init", "--db-role goes with --agent-role HOST");
        if (host != NULL && (strlen(host) >= PC_NAME_MAX || !pc_name_valid(host)))
                return cli_usage_error("init",
                                       "--agent-role '%.63s' is not a host name: use 1-63 of a-z 0-9 . _ - starting "
                                       "with a letter or digit",
                                       host);
        if (host != NULL && role == NULL) {
                snprintf(role_buf, sizeof(role_buf), "portcullis_%s", host);
                role = role_buf;
        }
        if (role != NULL && !db_role_valid(role))
                return cli_usage_error("init",
                                       "--db-role '%.63s' is not a role name here: use 1-63 of a-z 0-9 _ . - "
                                       "starting with a letter",
                                       role);
        r = cli_config(c);
        if (r != CLI_OK)
                return r;
        db = cli_db(c);
        r = pc_store_init(db, &created, &c->store, err, sizeof(err));
        if (r < 0) {
                cli_error("%s", err);
                return CLI_ERROR;
        }
        r = pc_store_schema_version(c->store, &version);
        if (r < 0) {
                cli_error("%s", pc_store_errmsg(c->store));
                return CLI_ERROR;
        }
        if (host != NULL)
                return agent_role(c, db, host, role, version);
        if (c->json)
                return cli_print_json(json_pack("{s:s, s:b, s:i}", "database", db, "created",
                                                created, "schema_version", version));
        if (created)
                printf("database %s created at schema version %d\n", db, version);
        else
                printf("database %s exists, at schema version %d: nothing created\n", db, version);
        return CLI_OK;
}
