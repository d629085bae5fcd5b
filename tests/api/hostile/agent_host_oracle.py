#!/usr/bin/env python3
"""An agent token bound to hv1 (schema 13, docs/API.md "An agent token is
bound to a hypervisor") must find another host's VPS, or a single host's,
indistinguishable from one that does not exist (404, field vps) -- and
learn nothing of them without leaving a trace.

Three answers tell them apart, each without writing anything:
  - POST /v1/vps/{id}/move {"host": "hv1"} without an iface: a VPS that
    exists elsewhere gets 400 "moving ID to hv1 needs its interface there"
    (the store looked it up), a missing one 404: every id of the fleet can
    be probed, silently;
  - POST /v1/vps (register onto hv1) with an address or MAC another host's
    VPS holds: the 409 names that VPS ("address A overlaps A of vps-h2");
  - PATCH of hv1's own VPS with such an address: the same.
(A pull with an iface reveals the VPS too, by moving it: that one is the
design, audited, and agent_token_pull.sh's.)
Exits 1 while any of these holds; 0 once each is answered as for a VPS
that does not exist, or without naming the holder."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

h = harness.Apid(extra_args=["--rate", "1000", "--burst", "1000"])
h.pc("vps", "add", "vps-h2", "--owner", "bob@example.org", "--iface", "tap-h2", "--addr", "203.0.113.22",
     "--mac", "02:00:00:00:00:22", "--host", "hv2", "--by", "t")
h.pc("vps", "add", "vps-h1", "--owner", "ann@example.org", "--iface", "tap-h1", "--addr", "203.0.113.11",
     "--host", "hv1", "--by", "t")
hv1 = h.pc("token", "create", "t-hv1", "--role", "agent", "--host", "hv1", "--by", "t").strip()
holes = []


def audit_count():
    st, j, _ = h.call("GET", "/v1/audit?limit=100", token=h.tok["admin"])
    return len(j["audit"])


before = audit_count()
answers = {}
for what, vid in (("hv2's", "vps-h2"), ("a single host's", "vps-b1"), ("a missing", "vps-none")):
    st, j, text = h.call("POST", "/v1/vps/%s/move" % vid, {"host": "hv1", "reason": "probe"}, token=hv1)
    e = (j or {}).get("error") or {}
    print("hv1 pulls %s VPS %s without an iface: %d %s" % (what, vid, st, e.get("message")))
    answers[what] = (st, e.get("field"), (e.get("message") or "").replace(vid, "ID"))
if len(set(answers.values())) != 1:
    holes.append("a bound agent's pull without an iface tells which ids exist: %r" % answers)

for what, body in (
        ("an address", {"id": "vps-x9", "owner": "eve@example.org", "iface": "tap-x9",
                        "addresses": ["203.0.113.22"]}),
        ("a MAC", {"id": "vps-x9", "owner": "eve@example.org", "iface": "tap-x9", "mac": "02:00:00:00:00:22",
                   "addresses": ["203.0.113.99"]})):
    st, j, text = h.call("POST", "/v1/vps", body, token=hv1)
    print("hv1 registers a VPS with %s of vps-h2: %d %s" % (what, st, text[:160]))
    if "vps-h2" in text:
        holes.append("a bound agent's registration with %s of hv2's VPS names it: %d %s" % (what, st, text[:160]))
st, j, text = h.call("PATCH", "/v1/vps/vps-h1", {"addresses": ["203.0.113.22"], "reason": "probe"}, token=hv1)
print("hv1 gives its own VPS an address of vps-h2: %d %s" % (st, text[:160]))
if "vps-h2" in text:
    holes.append("a bound agent's PATCH with an address of hv2's VPS names it: %d %s" % (st, text[:160]))

if audit_count() != before:
    holes.append("a refused request wrote the audit log")
st, j, _ = h.call("GET", "/v1/vps/vps-h2", token=h.tok["admin"])
if j.get("host") != "hv2" or j.get("moving_from"):
    holes.append("vps-h2 moved: %r" % {k: j.get(k) for k in ("host", "moving_from")})
if holes:
    h.fail("; ".join(holes))
print("ok")
