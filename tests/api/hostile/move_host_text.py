#!/usr/bin/env python3
"""POST /v1/vps/{id}/move and GET /v1/fleet (issue 14) as a customer, and
a host name that is not one, as a compromised VM hook (an agent token)
would send it.

A customer may not move a VPS, not even their own, nor read the fleet's
agents (host names, versions): 403 before the body is read, the same
answer for their own VPS, another customer's and one that does not exist
(no oracle of which ids exist), and nothing written.

The operations layer refuses a host that is not a name (1-63 of a-z 0-9 .
_ -), and its message quotes the value, cut at 63 bytes ("%.63s"):
  - a host of 62 ASCII letters and an "é" is cut inside the "é": the
    message is not UTF-8, jansson refuses to build the error, and the
    answer was a bare 400 "{}" -- the client learnt neither the code nor
    the field;
  - a U+202E (right-to-left override) or an ESC in the host went back raw
    into the message, for a panel or a terminal that shows it to reorder
    or steer what a person reads.
Exits 1 while any of these holds; 0 once every refusal is a 400 naming
the field host, with a message of valid UTF-8 free of control characters,
and nothing was written."""
import os
import sys
import unicodedata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

h = harness.Apid(extra_args=["--rate", "1000", "--burst", "1000"])
tok = h.tok
holes = []


def audit_count():
    st, j, _ = h.call("GET", "/v1/audit?limit=100", token=tok["admin"])
    return len(j["audit"]), j["audit"][-1]["id"] if j["audit"] else 0


def clean(message):
    """No C0, C1 or bidirectional control, nothing that is not text."""
    return all(unicodedata.category(ch) not in ("Cc", "Cf", "Cs") for ch in message)


before = audit_count()
# ---- a customer ---------------------------------------------------------------
answers = {}
for what, vid in (("own", "vps-a1"), ("other's", "vps-b1"), ("missing", "vps-none")):
    st, j, text = h.call("POST", "/v1/vps/%s/move" % vid, {"host": "hv2"}, token=tok["ann"])
    answers[what] = (st, text)
    print("ann moves %s VPS %s: %d" % (what, vid, st))
    if st != 403:
        holes.append("a customer's move of %s VPS %s answered %d" % (what, vid, st))
if len({t for _, t in answers.values()}) != 1:
    holes.append("a customer's refused moves differ between own, other's and missing VPSes: %r" % answers)
st, j, text = h.call("GET", "/v1/fleet", token=tok["ann"])
print("ann reads the fleet: %d" % st)
if st != 403 or "agents" in (j or {}):
    holes.append("a customer read the fleet: %d %s" % (st, text[:200]))
st, j, text = h.call("POST", "/v1/vps", {"id": "vps-c9", "owner": "ann@example.org", "iface": "tapc9",
                                         "addresses": ["192.0.2.99"], "host": "hv9"}, token=tok["ann"])
if st != 403:
    holes.append("a customer registered a VPS on a host: %d" % st)

# ---- a host that is not a name, as a VM hook (agent token) sends it -------------
hosts = ["a" * 62 + "\u00e9", "hv\u202e2", "hv\u2066x", "hv\u001b[2J", "hv\u0085x", "hv\n2", "hv\u200f2",
         "x" * 200 + "\u00e9" * 40]
for host in hosts:
    for what, method, path, body in (
            ("move", "POST", "/v1/vps/vps-a1/move", {"host": host}),
            ("register", "POST", "/v1/vps", {"id": "vps-h9", "owner": "ann@example.org", "iface": "taph9",
                                            "addresses": ["192.0.2.98"], "host": host})):
        st, j, text = h.call(method, path, body, token=tok["agent"])
        e = (j or {}).get("error") or {}
        msg = e.get("message") or ""
        print("%s host %r: %d field=%r message=%r" % (what, host[:70], st, e.get("field"), msg[:90]))
        if st != 400 or e.get("field") != "host" or e.get("code") != "invalid" or not msg:
            holes.append("%s with host %r: %d %s" % (what, host[:70], st, text[:160]))
        elif not clean(msg):
            holes.append("%s with host %r: the message carries the client's control characters raw: %r"
                         % (what, host[:70], msg[:160]))
if audit_count() != before:
    holes.append("a refused request wrote the audit log: %r -> %r" % (before, audit_count()))
st, j, _ = h.call("GET", "/v1/vps/vps-a1", token=tok["admin"])
if "host" in j or "moving_from" in j:
    holes.append("vps-a1 moved: %r" % {k: j.get(k) for k in ("host", "moving_from")})
if holes:
    h.fail("; ".join(holes))
print("ok")
