/* portcullis init: the one command that creates the database. */
#include <stdio.h>

#include "cli/cli.h"

int cmd_init(struct cli *c, int argc, char **argv);

/* Creates the database the config (or --db) names, or migrates the one
 * that is there; says which. */
int cmd_init(struct cli *c, int argc, char **argv)
{
        char err[1024];
        const char *db;
        bool created = false;
        int r, version = 0;

        if (argc != 1)
                return cli_usage_error("init", "init takes no arguments");
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
        if (c->json)
                return cli_print_json(json_pack("{s:s, s:b, s:i}", "database", db, "created",
                                                created, "schema_version", version));
        if (created)
                printf("database %s created at schema version %d\n", db, version);
        else
                printf("database %s exists, at schema version %d: nothing created\n", db, version);
        return CLI_OK;
}
