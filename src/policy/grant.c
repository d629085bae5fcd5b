/* Whether an exception for a service can be granted at a site (see
 * grant.h). */
#include "policy/grant.h"

#include "policy/model.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int pc_grant_check(const struct pc_config *cfg, const struct pc_site *site, const char *service,
                   const struct pc_rule **ret_rule, char *why, size_t size)
{
        const struct pc_policy *pol = site->policy;
        const struct pc_rule *rule;

        if (strcmp(service, PC_EXCEPTION_SCANNING) == 0) {
                if (pol->exceptions == PC_EXCEPTIONS_NONE) {
                        snprintf(why, size, "policy %s of site %s (%s:%d) has exceptions: none", pol->name,
                                 site->name, pol->pos.file != NULL ? pol->pos.file : "built-in", pol->pos.line);
                        return -EPERM;
                }
                if (pol->responses[PC_ABUSE_SCANNING] == 0) {
                        snprintf(why, size, "site %s (policy %s) does not answer port scans; there is nothing to exempt",
                                 site->name, pol->name);
                        return -EPERM;
                }
                if (ret_rule != NULL)
                        *ret_rule = NULL;
                return 0;
        }
        if (pc_config_service(cfg, service) == NULL) {
                snprintf(why, size, "unknown service '%s' (see portcullis services)", service);
                return -ENOENT;
        }
        rule = pc_policy_rule_for(pol, service);
        if (rule == NULL) {
                snprintf(why, size, "site %s (policy %s) does not restrict %s; there is nothing to exempt",
                         site->name, pol->name, service);
                return -EPERM;
        }
        if (pol->exceptions == PC_EXCEPTIONS_NONE) {
                snprintf(why, size, "policy %s of site %s (%s:%d) has exceptions: none; no rule of it is exemptable",
                         pol->name, site->name, pol->pos.file != NULL ? pol->pos.file : "built-in", pol->pos.line);
                return -EPERM;
        }
        if (!pc_rule_exemptable(pol, rule)) {
                snprintf(why, size, "rule %u of policy %s (%s:%d) is not exemptable", rule->index + 1, pol->name,
                         rule->pos.file != NULL ? rule->pos.file : "built-in", rule->pos.line);
                return -EPERM;
        }
        if (ret_rule != NULL)
                *ret_rule = rule;
        return 0;
}
