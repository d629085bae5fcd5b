/* portcullis services */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "ops/ops_json.h"

int cmd_services(struct cli *c, int argc, char **argv);

/* "tcp 25,26,465 udp 500" from a list of ranges, grouped by protocol. */
static void ports_text(const struct pc_port_range *pr, size_t n, const uint8_t *ipp, size_t nipp,
                       char *buf, size_t size)
{
        static const uint8_t protos[] = { PC_PROTO_TCP, PC_PROTO_UDP };
        size_t len = 0;

        buf[0] = '\0';
        for (size_t p = 0; p < PC_ARRAY_SIZE(protos); p++) {
                bool first = true;

                for (size_t i = 0; i < n && len < size; i++) {
                        if (pr[i].proto != protos[p])
                                continue;
                        if (first)
                                len += snprintf(buf + len, size - len, "%s%s ", len > 0 ? " " : "",
                                                pc_proto_name(protos[p]));
                        if (len >= size)
                                break;
                        if (pr[i].lo == pr[i].hi)
                                len += snprintf(buf + len, size - len, "%s%u", first ? "" : ",",
                                                pr[i].lo);
                        else
                                len += snprintf(buf + len, size - len, "%s%u-%u", first ? "" : ",",
                                                pr[i].lo, pr[i].hi);
                        first = false;
                }
        }
        for (size_t i = 0; i < nipp && len < size; i++)
                len += snprintf(buf + len, size - len, "%s%s", len > 0 ? " " : "",
                                pc_proto_name(ipp[i]));
}

/* What <site> does with <svc>, in words: "block both, exemptable". */
static void site_text(const struct pc_site *site, const struct pc_service *svc, char *buf,
                      size_t size)
{
        const struct pc_rule *r = pc_policy_rule_for(site->policy, svc->name);
        char ports[256];

        if (r == NULL) {
                snprintf(buf, size, "allow");
                return;
        }
        ports_text(r->ports, r->n_ports, r->ip_protos, r->n_ip_protos, ports, sizeof(ports));
        snprintf(buf, size, "%s %s %s%s", r->action == PC_ACTION_BLOCK ? "block" : "redirect",
                 pc_dir_name(r->direction), ports,
                 pc_rule_exemptable(site->policy, r) ? " (exemptable)" : " (not exemptable)");
}

int cmd_services(struct cli *c, int argc, char **argv)
{
        const struct pc_config *cfg;
        int r;

        if (argc != 1)
                return cli_usage_error("services", "services takes no arguments");
        r = cli_config(c);
        if (r != CLI_OK)
                return r;
        cfg = c->cfg;
        if (c->json)
                return cli_print_json(json_pack("{s:o}", "services", pc_json_services(cfg)));

        /* One column per site after the service's own description. */
        {
                const char *headers[2 + 8] = { "SERVICE", "PORTS" };
                size_t nsites = cfg->n_sites < 8 ? cfg->n_sites : 8;
                char head[8][PC_NAME_MAX + 8];
                struct cli_table *t;

                for (size_t k = 0; k < nsites; k++) {
                        snprintf(head[k], sizeof(head[k]), "SITE %s", cfg->sites[k].name);
                        headers[2 + k] = head[k];
                }
                t = cli_table_new(2 + nsites, headers);
                for (size_t i = 0; i < cfg->n_services; i++) {
                        const struct pc_service *s = &cfg->services[i];
                        char ports[512], cells[8][512];

                        ports_text(s->ports, s->n_ports, s->ip_protos, s->n_ip_protos, ports,
                                   sizeof(ports));
                        for (size_t k = 0; k < nsites; k++)
                                site_text(&cfg->sites[k], s, cells[k], sizeof(cells[k]));
                        /* cli_table_add takes exactly ncols cells; pad with unused ones. */
                        cli_table_add(t, s->name, ports, cells[0], cells[1], cells[2], cells[3],
                                      cells[4], cells[5], cells[6], cells[7]);
                }
                cli_table_print(t);
                cli_table_free(t);
        }
        return CLI_OK;
}
