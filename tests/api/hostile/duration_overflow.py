#!/usr/bin/env python3
"""A ticket's "duration" has no upper bound: signed overflow at approval.

api_body_int accepts any integer >= 0 up to 2^63-1 and
pc_ops_ticket_open only refuses negatives.  pc_ops_ticket_approve then
computes `now + t->duration` (int64: undefined behaviour on overflow):
with 2^63-1 the sum wraps negative and the approval fails with "end time
@-9223372035... is not in the future"; with 2^63-1 - 2^31 it stays positive
and support's plain "approve" grants an exception until the year 292
billion, shown as "@9223372036...".

Exits 1 while a customer may open a ticket asking for more than 10 years,
or an approval yields an end that is not a date; 0 once "duration" is
bounded (e.g. at most a year) when the ticket is opened."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

h = harness.Apid(["--rate", "1000", "--burst", "1000"])
holes = []
for d in (2**63 - 1, 2**63 - 1 - 2**31, 10 * 366 * 86400 + 1):
    st, j, text = h.call("POST", "/v1/tickets", {"vps": "vps-a1", "service": "smtp", "text": "mail",
                                                 "duration": d}, h.tok["ann"])
    if st != 201:
        print("duration %d refused: %d" % (d, st))
        continue
    st, j, text = h.call("POST", "/v1/tickets/%d/approve" % j["id"], {}, h.tok["support"])
    until = (j or {}).get("until")
    msg = (j or {}).get("error", {}).get("message") if st != 200 else until
    print("duration %d accepted; approve -> %d %s" % (d, st, msg))
    holes.append("duration %d accepted" % d)
    if st != 200 or until is None or str(until).startswith("@"):
        holes.append("its approval gave %d %s" % (st, msg))
    h.call("DELETE", "/v1/vps/vps-a1/exceptions/smtp", {"reason": "next"}, h.tok["support"])
if holes:
    h.fail("; ".join(holes))
print("ok")
