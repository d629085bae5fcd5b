#!/usr/bin/env python3
"""A customer learns other customers' VPS ids and addresses.

POST /v1/tickets with "service": "source-prefix:CIDR" on the customer's
own VPS runs pc_ops_grant_check -> source_prefix_check
(src/ops/ops_exception.c), whose conflict names the other VPS and its
address: "it overlaps 198.51.100.21/32 of vps-b1".  Prefixes up to a /16
are accepted, so a customer maps a /16 with a few dozen requests, while
GET /v1/vps/vps-b1 answers 404 "does not exist".

Exits 1 while ann's ticket answer names bob's VPS or an address ann did
not give; 0 once a customer is told only that the prefix is not available."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

h = harness.Apid()
A = h.tok["ann"]
st, j, text = h.call("GET", "/v1/vps/vps-b1", token=A)
print("GET /v1/vps/vps-b1 as ann: %d %s" % (st, j["error"]["message"]))
leaks = []
for svc in ("source-prefix:198.51.0.0/16", "source-prefix:198.51.100.21/32"):
    st, j, text = h.call("POST", "/v1/tickets", {"vps": "vps-a1", "service": svc, "text": "failover"}, A)
    msg = (j or {}).get("error", {}).get("message", text)
    print("ticket for %s: %d %s" % (svc, st, msg))
    # The VPS's id, or an address the customer did not give, is a leak; the
    # prefix they asked for, echoed, is not (that it is taken by someone is
    # what "not available" must say).
    if "vps-b1" in text or ("198.51.100.21" in text and "198.51.100.21" not in svc):
        leaks.append("%s -> %r" % (svc, msg))
if leaks:
    h.fail("another customer's VPS id and address told to a customer: " + "; ".join(leaks))
print("ok")
