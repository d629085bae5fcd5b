#!/usr/bin/env python3
"""A customer gets approved to send from another customer's failover prefix.

source_prefix_check (src/ops/ops_exception.c) asks pc_store_addr_holder for
registered addresses only: "Another VPS's granted source prefix is no
obstacle: two VPSes may share a failover address".  Nothing asks whose the
other VPS is.  Bob's VPS holds the granted source prefix 203.0.113.8/29
(his failover address).  Ann opens a ticket for
source-prefix:203.0.113.12/32 -- accepted, where a registered address of
bob's would be "not available" -- and support's plain approve grants it
with no word of bob (the ticket's findings say nothing; approve checks the
same way).  Ann's VPS may then send from bob's failover address: spoofing
him past the site's anti-spoofing (BCP 38), the replies going to bob.

Exits 1 while ann's ticket for a prefix inside bob's granted source prefix
is opened and approved without a conflict; 0 once a source prefix granted
to another owner's VPS is refused like a registered address (sharing a
failover address only between VPSes of one owner), or the approval at
least fails unless support says it knows."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

h = harness.Apid(["--rate", "1000", "--burst", "1000"], vpses=False)
# Site lenoir: its policy has anti-spoofing (source prefixes are granted there).
h.pc("vps", "add", "vps-a1", "--owner", "ann@example.org", "--iface", "tapa1", "--addr", "198.51.100.11",
     "--site", "lenoir", "--by", "t")
h.pc("vps", "add", "vps-b1", "--owner", "bob@example.org", "--iface", "tapb1", "--addr", "198.51.100.21",
     "--site", "lenoir", "--by", "t")
A, S = h.tok["ann"], h.tok["support"]
st, j, text = h.call("POST", "/v1/vps/vps-b1/exceptions",
                     {"service": "source-prefix:203.0.113.8/29", "reason": "bob's failover address"}, S)
if st != 201:
    h.fail("set-up: bob's source prefix %d %s" % (st, text))
st, j, text = h.call("POST", "/v1/tickets", {"vps": "vps-a1", "service": "source-prefix:203.0.113.12/32",
                                             "text": "my failover address"}, A)
print("ann opens source-prefix:203.0.113.12/32 -> %d %s" % (st, (j or {}).get("error", {}).get("message", "")))
if st != 201:
    print("ok: refused")
    sys.exit(0)
st, j, text = h.call("POST", "/v1/tickets/%d/approve" % j["id"], {}, S)
print("support approves -> %d %s" % (st, (j or {}).get("error", {}).get("message", (j or {}).get("state"))))
st2, v, _ = h.call("GET", "/v1/vps/vps-a1", token=A)
granted = [e["service"] for e in (v or {}).get("exceptions", [])]
print("ann's exceptions: %s" % granted)
if st == 200 and "source-prefix:203.0.113.12/32" in granted:
    h.fail("ann may send from 203.0.113.12, inside bob's granted source prefix 203.0.113.8/29")
print("ok")
