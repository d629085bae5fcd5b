/* Explain: a verdict's reasons in words for support, and as JSON. */
#pragma once

#include <jansson.h>

#include "policy/evaluate.h"

/* Writes one sentence explaining <r> (a reason of the verdict for <flow>
 * on <vps>) into <buf>: which rule, exception, filter or suspension, with
 * its id, who, until when and why. */
void pc_explain_reason(const struct pc_reason *r, const struct pc_vps *vps,
                       const struct pc_flow *flow, char *buf, size_t size);

/* Formats <flow> as "tcp/465 egress" into <buf>. */
void pc_flow_format(const struct pc_flow *flow, char *buf, size_t size);

/* Returns a new JSON object for the verdict <v> (caller owns it; NULL on
 * ENOMEM):
 *   {"vps": ID, "site": S, "policy": P, "flow": {"proto", "port", "direction"},
 *    "verdict": "reject", "reasons": [{"kind", "decisive", "text", and the
 *    ids: "rule", "service", "exception", "ticket", "filter", "incident",
 *    "suspension", "until"}]} */
json_t *pc_explain_json(const struct pc_verdict *v, const struct pc_vps *vps,
                        const struct pc_flow *flow);
