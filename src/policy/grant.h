/* May an exception for a service be granted to a VPS at a site?  The one
 * answer that `exception grant` gives before granting and `ticket open`
 * before recording a request that could never be granted. */
#pragma once

#include <stddef.h>

#include "policy/config.h"

/* Checks that an exception for service <service> can be granted at
 * <site>: the service is in <cfg>'s catalog, the site's policy has a rule
 * for it (else there is nothing to lift), the rule is exemptable and the
 * policy grants exceptions (pc_rule_exemptable).  Returns 0 and, if
 * <ret_rule> is not NULL, the rule an exception lifts; else -ENOENT
 * (unknown service) or -EPERM (cannot be granted here) with the reason in
 * <why> ("site lenoir (policy lenoir) does not restrict vpn; there is
 * nothing to exempt").  Source prefixes (anti-spoofing exceptions) are
 * not services: -ENOENT.  PC_EXCEPTION_SCANNING ("scanning", an approved
 * audit) can be granted where the policy answers port scans and grants
 * exceptions; *<ret_rule> is then NULL (no rule is lifted). */
int pc_grant_check(const struct pc_config *cfg, const struct pc_site *site, const char *service,
                   const struct pc_rule **ret_rule, char *why, size_t size);
