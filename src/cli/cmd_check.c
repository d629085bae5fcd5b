/* portcullis check | config */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "notify/template.h"

int cmd_check(struct cli *c, int argc, char **argv);
int cmd_config(struct cli *c, int argc, char **argv);

/* Validates the config and the database schema. */
int cmd_check(struct cli *c, int argc, char **argv)
{
        char err[1024];
        const char *db;
        int r, version = 0;

        if (argc != 1)
                return cli_usage_error("check", "check takes no arguments");
        r = pc_config_load(c->config_path, &c->cfg, err, sizeof(err));
        if (r < 0) {
                if (c->json)
                        cli_print_json(json_pack("{s:s, s:b, s:[s]}", "config", c->config_path,
                                                 "ok", 0, "errors", err));
                else
                        fprintf(stderr, "%s\n", err);
                return CLI_NO;
        }
        /* A broken email template is refused here, not at send time. */
        r = pc_template_check(c->cfg->notify.templates, pc_template_languages, err, sizeof(err));
        if (r < 0) {
                if (c->json)
                        cli_print_json(json_pack("{s:s, s:b, s:[s]}", "config", c->config_path,
                                                 "ok", 0, "errors", err));
                else
                        fprintf(stderr, "%s\n", err);
                return CLI_NO;
        }
        db = cli_db(c);
        r = pc_store_open(db, &c->store, err, sizeof(err));
        if (r < 0)
                cli_store_hint(c, r, err, sizeof(err));
        if (r >= 0 && (r = pc_store_schema_version(c->store, &version)) < 0)
                snprintf(err, sizeof(err), "%s", pc_store_errmsg(c->store));
        if (r < 0) {
                if (c->json)
                        cli_print_json(json_pack("{s:s, s:b, s:[s]}", "config", c->config_path,
                                                 "ok", 0, "errors", err));
                else
                        fprintf(stderr, "%s: %s\n", c->config_path, err);
                return CLI_NO;
        }
        if (c->cfg->detectors.n_scan_exclude > 0 && (r = cli_model(c)) != CLI_OK)
                return r;
        if (c->model != NULL && pc_scan_exclude_covers_vps(c->cfg, c->model, err, sizeof(err)) != NULL) {
                if (c->json)
                        cli_print_json(json_pack("{s:s, s:b, s:[s]}", "config", c->config_path,
                                                 "ok", 0, "errors", err));
                else
                        fprintf(stderr, "%s: %s\n", c->config_path, err);
                return CLI_NO;
        }
        if (c->json)
                return cli_print_json(json_pack("{s:s, s:b, s:[], s:s, s:i, s:i, s:i, s:i}", "config",
                                                c->config_path, "ok", 1, "errors", "database", db,
                                                "schema_version", version, "services",
                                                (int)c->cfg->n_services, "policies",
                                                (int)c->cfg->n_policies, "sites",
                                                (int)c->cfg->n_sites));
        printf("%s: ok (%zu services, %zu policies, %zu sites; database %s at schema version %d)\n",
               c->config_path, c->cfg->n_services, c->cfg->n_policies, c->cfg->n_sites, db, version);
        return CLI_OK;
}

/* Prints the config in canonical form: YAML, or JSON with --json. */
int cmd_config(struct cli *c, int argc, char **argv)
{
        int r;

        if (argc != 1)
                return cli_usage_error("config", "config takes no arguments");
        r = cli_config(c);
        if (r != CLI_OK)
                return r;
        if (c->json)
                return cli_print_json(pc_config_json(c->cfg));
        pc_config_print(c->cfg, stdout);
        return CLI_OK;
}
