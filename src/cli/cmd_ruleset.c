/* portcullis ruleset: the nftables ruleset the agent programs, as text. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "dataplane/nft_ruleset.h"

int cmd_ruleset(struct cli *c, int argc, char **argv);

int cmd_ruleset(struct cli *c, int argc, char **argv)
{
        struct strbuf b = { 0 };
        struct nft_elems e = { 0 };
        bool elements = false;
        int64_t now = pc_now();
        int r;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--elements") == 0)
                        elements = true;
                else
                        return cli_usage_error("ruleset", "unknown argument '%s'", argv[i]);
        }
        r = elements ? cli_model(c) : cli_config(c);
        if (r != CLI_OK)
                return r;
        nft_skeleton(c->cfg, &b);
        for (size_t i = 0; elements && i < pc_model_count(c->model); i++) {
                /* A VPS the kernel cannot be given (an unsafe interface
                 * name) is left out, as the agent leaves it out. */
                if (nft_vps_elements(c->cfg, pc_model_at(c->model, i), now, &e) == -ENOMEM)
                        b.oom = true;
        }
        if (nft_elems_normalise(&e) < 0)
                b.oom = true;
        nft_elems_commands(c->cfg->agent.nft_table, &e, true, now, &b);
        nft_elems_free(&e);
        if (b.oom) {
                strbuf_free(&b);
                fprintf(stderr, "portcullis: out of memory\n");
                return CLI_ERROR;
        }
        fputs(strbuf_str(&b), stdout);
        strbuf_free(&b);
        return CLI_OK;
}
