#!/usr/bin/env python3
"""What agent_host_oracle.py's fix leaves (open): a bound agent's pull that
names an interface its own host already gives another VPS.  The store
looks the VPS up first (404 if missing), then the interface on H (409
"interface X on hv1 is already vps-h1's"), so hv1's token still tells an
id of another host from a missing one without writing anything: the
interface check has to come before the lookup (or be answered alike).
Exits 1 while the two answers differ."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

h = harness.Apid(extra_args=["--rate", "1000", "--burst", "1000"])
h.pc("vps", "add", "vps-h2", "--owner", "bob@example.org", "--iface", "tap-h2", "--addr", "203.0.113.22",
     "--host", "hv2", "--by", "t")
h.pc("vps", "add", "vps-h1", "--owner", "ann@example.org", "--iface", "tap-h1", "--addr", "203.0.113.11",
     "--host", "hv1", "--by", "t")
hv1 = h.pc("token", "create", "t-hv1", "--role", "agent", "--host", "hv1", "--by", "t").strip()
answers = {}
for what, vid in (("hv2's", "vps-h2"), ("a missing", "vps-none")):
    st, j, text = h.call("POST", "/v1/vps/%s/move" % vid, {"host": "hv1", "iface": "tap-h1", "reason": "probe"},
                         token=hv1)
    e = (j or {}).get("error") or {}
    print("hv1 pulls %s VPS %s onto its own tap-h1: %d %s" % (what, vid, st, e.get("message")))
    answers[what] = (st, (e.get("message") or "").replace(vid, "ID"))
st, j, _ = h.call("GET", "/v1/vps/vps-h2", token=h.tok["admin"])
if j.get("host") != "hv2":
    h.fail("vps-h2 moved")
if len(set(answers.values())) != 1:
    h.fail("a pull onto a taken interface tells which ids exist: %r" % answers)
print("ok")
