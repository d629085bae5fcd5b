#!/usr/bin/env python3
"""The HTTP API's authorisation matrix and error statuses (run.sh starts
the server).  Every check prints "ok" or "FAIL"; exits 1 on any FAIL."""
import http.client
import json
import os
import re
import sqlite3
import subprocess
import sys

import yaml

port, slow_port, tmp, openapi_path, routes_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
tok = {r: open(os.path.join(tmp, "tok-" + r)).read().strip()
       for r in ("admin", "support", "agent", "hv1", "ann", "bob", "gone")}
failures = 0
checks = 0


def call(method, path, body=None, token=None, raw=None, p=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", p or port, timeout=10)
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = "Bearer " + token
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    if data is not None:
        h["Content-Type"] = "application/json"
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    text = r.read().decode()
    c.close()
    try:
        j = json.loads(text)
    except ValueError:
        j = None
    return r.status, j, text, r


def check(name, cond, detail=""):
    global failures, checks
    checks += 1
    if cond:
        print("ok   " + name)
    else:
        failures += 1
        print("FAIL " + name + (": " + str(detail)[:400] if detail else ""))


def expect(name, want, method, path, body=None, token=None, **kw):
    st, j, text, _ = call(method, path, body, token, **kw)
    check("%s -> %d" % (name, want), st == want, "got %d %s" % (st, text))
    if st >= 400 and st != 405:
        e = (j or {}).get("error", {})
        check("%s: error body {code, message, field}" % name,
              set(e) == {"code", "message", "field"} and e["message"], text)
    return st, j


# ---- authentication --------------------------------------------------------
expect("no token", 401, "GET", "/v1/whoami")
expect("not a bearer token", 401, "GET", "/v1/whoami", headers={"Authorization": "Basic YTpi"})
expect("unknown token", 401, "GET", "/v1/whoami", token="pct_" + "A" * 43)
expect("revoked token", 401, "GET", "/v1/whoami", token=tok["gone"])
expect("unknown route, no token: 401 (existence not told)", 401, "GET", "/v1/nothing")
st, j, _, r = call("GET", "/v1/whoami")
check("401 says WWW-Authenticate: Bearer", (r.getheader("WWW-Authenticate") or "").startswith("Bearer"))
for role, name in (("admin", "t-admin"), ("support", "t-support"), ("agent", "t-agent"), ("ann", "ann")):
    st, j = expect("whoami " + role, 200, "GET", "/v1/whoami", token=tok[role])
    check("whoami %s names the token" % role, j and j["name"] == name, j)
check("a customer's whoami says its customer", call("GET", "/v1/whoami", token=tok["ann"])[1]["customer"] == "ann@example.org")

# ---- the matrix ------------------------------------------------------------
ROLES = ("admin", "support", "agent", "ann")
A = {"admin": "t-admin", "support": "t-support", "agent": "t-agent", "ann": "ann"}
seq = [0]


def fresh_vps(owner="ann@example.org"):
    """A new VPS registered by the admin, for a route that consumes one."""
    seq[0] += 1
    vid = "vps-m%d" % seq[0]
    st, j = expect("(setup) register " + vid, 201, "POST", "/v1/vps",
                   {"id": vid, "owner": owner, "iface": "tapm%d" % seq[0], "addresses": ["203.0.113.%d" % seq[0]]},
                   tok["admin"])
    return vid


OWNER = {"vps-a1": "ann@example.org", "vps-b1": "bob@example.org"}


def fresh_ticket(vid, state="open"):
    """A ticket on a new VPS of <vid>'s owner: one VPS has few pending."""
    vid = fresh_vps(OWNER[vid])
    st, j = expect("(setup) ticket on " + vid, 201, "POST", "/v1/tickets",
                   {"vps": vid, "service": "smtp", "text": "newsletter"}, tok["admin"])
    tid = j["id"]
    if state == "approved":
        expect("(setup) approve #%d" % tid, 200, "POST", "/v1/tickets/%d/approve" % tid, {}, tok["admin"])
    return tid


for role in ROLES:
    t = tok[role]
    cust = role == "ann"
    # reads
    expect("%s GET /v1/services" % role, 200, "GET", "/v1/services", token=t)
    expect("%s GET /metrics" % role, 403 if cust else 200, "GET", "/metrics", token=t)
    st, j = expect("%s GET /v1/vps" % role, 200, "GET", "/v1/vps", token=t)
    ids = [v["id"] for v in (j or {}).get("vps", [])]
    if cust:
        check("customer lists only their own VPSes", ids and all(v["owner"] == "ann@example.org" for v in j["vps"])
              and "vps-b1" not in ids, ids)
    else:
        check("%s lists every VPS" % role, "vps-a1" in ids and "vps-b1" in ids, ids)
    expect("%s GET own vps" % role, 200, "GET", "/v1/vps/vps-a1", token=t)
    expect("%s GET other's vps" % role, 404 if cust else 200, "GET", "/v1/vps/vps-b1", token=t)
    expect("%s GET missing vps" % role, 404, "GET", "/v1/vps/vps-none", token=t)
    # the registry
    seq[0] += 1
    expect("%s POST /v1/vps" % role, 201 if role in ("admin", "agent") else 403, "POST", "/v1/vps",
           {"id": "vps-r%d" % seq[0], "owner": "ann@example.org", "iface": "tapr%d" % seq[0],
            "addresses": ["192.0.2.%d" % seq[0]]}, t)
    for whose, owner in (("own", "ann@example.org"), ("other's", "bob@example.org")):
        vid = fresh_vps(owner)
        may = role in ("admin", "agent")
        st, j = expect("%s PATCH %s vps" % (role, whose), 200 if may else 403, "PATCH", "/v1/vps/" + vid,
                       {"addresses": ["203.0.113.%d" % (100 + seq[0])], "reason": "VM reconfigured"}, t)
        if may:
            check("PATCH replaced the addresses", j["addresses"] == ["203.0.113.%d/32" % (100 + seq[0])], j)
        for verb in ("stop", "start"):
            st, j = expect("%s %s %s vps" % (role, verb, whose), 200 if may else 403, "POST",
                           "/v1/vps/%s/%s" % (vid, verb), {}, t)
            if may:
                check("%s: run state %s" % (verb, verb), j["run_state"] == ("stopped" if verb == "stop" else "running"), j)
        expect("%s DELETE %s vps" % (role, whose), 200 if role in ("admin", "agent") else 403, "DELETE",
               "/v1/vps/" + vid, {"reason": "VM destroyed"}, t)
    # exceptions
    for whose, vid in (("own", "vps-a1"), ("other's", "vps-b1")):
        may = role in ("admin", "support")
        expect("%s grant on %s vps" % (role, whose), 201 if may else 403, "POST", "/v1/vps/%s/exceptions" % vid,
               {"service": "vpn", "reason": "site-to-site link", "until": "+1d"}, t)
        if not may:
            expect("(setup) admin grants on %s" % vid, 201, "POST", "/v1/vps/%s/exceptions" % vid,
                   {"service": "vpn", "reason": "x"}, tok["admin"])
        expect("%s revoke on %s vps" % (role, whose), 200 if may else 403, "DELETE",
               "/v1/vps/%s/exceptions/vpn" % vid, {"reason": "done"}, t)
        if not may:
            expect("(setup) admin revokes on %s" % vid, 200, "DELETE", "/v1/vps/%s/exceptions/vpn" % vid,
                   {"reason": "x"}, tok["admin"])
    # tickets
    st, j = expect("%s GET /v1/tickets" % role, 403 if role == "agent" else 200, "GET", "/v1/tickets", token=t)
    if cust:
        check("customer lists only their own tickets", all(x["owner"] == "ann@example.org" for x in j["tickets"]),
              j)
    for whose, vid in (("own", "vps-a1"), ("other's", "vps-b1")):
        want = 403 if role == "agent" else (404 if cust and whose == "other's" else 201)
        expect("%s opens a ticket on %s vps" % (role, whose), want, "POST", "/v1/tickets",
               {"vps": fresh_vps(OWNER[vid]), "service": "bittorrent", "text": "linux ISOs"}, t)
        tid = fresh_ticket(vid)
        want = 403 if role == "agent" else (404 if cust and whose == "other's" else 200)
        expect("%s reads %s ticket" % (role, whose), want, "GET", "/v1/tickets/%d" % tid, token=t)
        decide = 200 if role in ("admin", "support") else 403
        expect("%s investigates %s ticket" % (role, whose), decide, "POST", "/v1/tickets/%d/investigate" % tid,
               {"note": "looking"}, t)
        expect("%s approves %s ticket" % (role, whose), decide, "POST", "/v1/tickets/%d/approve" % tid, {}, t)
        if decide != 200:
            expect("(setup) admin approves #%d" % tid, 200, "POST", "/v1/tickets/%d/approve" % tid, {}, tok["admin"])
        expect("%s revokes %s ticket" % (role, whose), decide, "POST", "/v1/tickets/%d/revoke" % tid,
               {"reason": "complaints"}, t)
        if decide != 200:
            expect("(setup) admin revokes #%d" % tid, 200, "POST", "/v1/tickets/%d/revoke" % tid,
                   {"reason": "x"}, tok["admin"])
        tid = fresh_ticket(vid)
        expect("%s denies %s ticket" % (role, whose), decide, "POST", "/v1/tickets/%d/deny" % tid,
               {"reason": "no"}, t)
    # tokens: an admin's only
    adm = role == "admin"
    expect("%s GET /v1/tokens" % role, 200 if adm else 403, "GET", "/v1/tokens", token=t)
    st, j = expect("%s POST /v1/tokens" % role, 201 if adm else 403, "POST", "/v1/tokens",
                   {"name": "minted-" + role, "role": "admin"}, t)
    if adm:
        check("a minted token is shown once and works", j["token"].startswith("pct_") and
              call("GET", "/v1/whoami", token=j["token"])[0] == 200, j)
        check("the token list never shows a token", "pct_" not in call("GET", "/v1/tokens", token=t)[2])
    expect("%s DELETE /v1/tokens/bob" % role, 403, "DELETE", "/v1/tokens/bob", token=t) if not adm else None

# ---- incidents, actions, notifications, audit ---------------------------------


def incident(vid, kind="scan"):
    """An open incident of <vid>, as the agent would have recorded it."""
    db = sqlite3.connect(os.environ["PC_DB_FILE"], timeout=10)
    cur = db.execute("INSERT INTO incident (vps_id, kind, first_seen, last_seen, count, evidence) "
                     "VALUES (?, ?, 1000, 1000, 5, '{\"probes\": 5}')", (vid, kind))
    db.commit()
    iid = cur.lastrowid
    db.close()
    return iid


def filter_on(vid):
    """A filter placed on <vid> by support (through the CLI); its action id."""
    out = subprocess.run([os.environ["PC_CLI"], "-c", "etc/portcullis.yaml", "--db", os.environ["PC_DB"], "--json",
                          "filter", "place", vid, "--service", "smtp", "--by", "t", "--reason", "spam complaint"],
                         capture_output=True, text=True)
    return json.loads(out.stdout)["filter"]


ia, ib = incident("vps-a1"), incident("vps-b1", "spam")
for role in ROLES:
    t = tok[role]
    cust = role == "ann"
    reads = 403 if role == "agent" else 200
    st, j = expect("%s GET /v1/incidents" % role, reads, "GET", "/v1/incidents", token=t)
    if st == 200:
        vpses = {x["vps"] for x in j["incidents"]}
        check("%s sees %s incidents" % (role, "only their own" if cust else "every VPS's"),
              vpses == {"vps-a1"} if cust else {"vps-a1", "vps-b1"} <= vpses, vpses)
    expect("%s GET own incident" % role, reads, "GET", "/v1/incidents/%d" % ia, token=t)
    expect("%s GET other's incident" % role, 403 if role == "agent" else 404 if cust else 200, "GET",
           "/v1/incidents/%d" % ib, token=t)
    expect("%s GET other's VPS's incidents" % role, 403 if role == "agent" else 404 if cust else 200, "GET",
           "/v1/incidents?vps=vps-b1", token=t)
    st, j = expect("%s GET /v1/actions" % role, reads, "GET", "/v1/actions", token=t)
    st, j = expect("%s GET /v1/notifications" % role, reads, "GET", "/v1/notifications?limit=100", token=t)
    if st == 200 and cust:
        check("a customer sees only their own emails, no webhook",
              all(n["vps"].startswith("vps-") and n["channel"] == "email" and n["recipient"] == "ann@example.org"
                  for n in j["notifications"]) and j["notifications"], j["notifications"][:3])
    expect("%s GET other's notifications" % role, 403 if role == "agent" else 404 if cust else 200, "GET",
           "/v1/notifications?vps=vps-b1", token=t)
    expect("%s retries a notification" % role, 200 if role in ("admin", "support") else 403, "POST",
           "/v1/notifications/1/retry", {"reason": "relay fixed"}, t)
    expect("%s GET /v1/audit" % role, 200 if role in ("admin", "support") else 403, "GET", "/v1/audit", token=t)
    decide = 200 if role in ("admin", "support") else 403
    for whose, vid in (("own", "vps-a1"), ("other's", "vps-b1")):
        iid = incident(vid)
        expect("%s closes %s incident" % (role, whose), decide, "POST", "/v1/incidents/%d/close" % iid,
               {"reason": "handled"}, t)
        aid = filter_on(vid)
        expect("%s lifts %s action" % (role, whose), decide, "POST", "/v1/actions/%d/lift" % aid,
               {"reason": "customer fixed it"}, t)
        if decide != 200:
            expect("(setup) admin lifts #%d" % aid, 200, "POST", "/v1/actions/%d/lift" % aid, {"reason": "x"}, tok["admin"])
    expect("%s overrides a termination" % role, 200 if role == "admin" else 403, "POST",
           "/v1/incidents/%d/close" % incident("vps-a1"), {"reason": "x", "admin_override": True}, t)

for role in ROLES:
    t = tok[role]
    # The agent role is portcullisd's: it places actions and terminates as the
    # site policy says; it never lifts them.
    place = 201 if role in ("admin", "support", "agent") else 403
    lift = 200 if role in ("admin", "support") else 403
    for whose, owner in (("own", "ann@example.org"), ("other's", "bob@example.org")):
        vid = fresh_vps(owner)
        st, j = expect("%s filters %s vps" % (role, whose), place, "POST", "/v1/vps/%s/filters" % vid,
                       {"service": "smtp", "direction": "out", "until": "+1h", "reason": "spam complaint"}, t)
        expect("%s suspends %s vps" % (role, whose), place, "POST", "/v1/vps/%s/suspend" % vid, {"reason": "abuse"}, t)
        if place != 201:
            expect("(setup) admin suspends", 201, "POST", "/v1/vps/%s/suspend" % vid, {"reason": "x"}, tok["admin"])
        expect("%s unsuspends %s vps" % (role, whose), lift, "POST", "/v1/vps/%s/unsuspend" % vid, {"reason": "fixed"}, t)
        if lift != 200:
            expect("(setup) admin unsuspends", 200, "POST", "/v1/vps/%s/unsuspend" % vid, {"reason": "x"}, tok["admin"])
        terminate = 201 if role in ("admin", "agent") else 403
        expect("%s terminates %s vps" % (role, whose), terminate, "POST",
               "/v1/vps/%s/terminate" % vid, {"reason": "fraud"}, t)
        if terminate != 201:
            expect("(setup) admin terminates", 201, "POST", "/v1/vps/%s/terminate" % vid, {"reason": "x"}, tok["admin"])
        # Without the override a termination stays (409 for who may unsuspend at all).
        expect("%s lifts %s termination without the override" % (role, whose),
               409 if role in ("admin", "support") else 403, "POST", "/v1/vps/%s/unsuspend" % vid, {"reason": "x"}, t)
        expect("%s lifts %s termination with the override" % (role, whose), 200 if role == "admin" else 403,
               "POST", "/v1/vps/%s/unsuspend" % vid, {"reason": "paid", "admin_override": True}, t)
st, j = expect("filter: two scopes", 400, "POST", "/v1/vps/vps-a1/filters", {"service": "smtp", "all": True,
                                                                          "reason": "x"}, tok["admin"])
st, j = expect("filter: bad ports", 400, "POST", "/v1/vps/vps-a1/filters", {"ports": "tcp/99999", "reason": "x"},
               tok["admin"])
check("filter: the ports field", j["error"]["field"] == "ports", j)
expect("filter: an unknown VPS", 404, "POST", "/v1/vps/vps-none/filters", {"all": True, "reason": "x"}, tok["admin"])

expect("close it", 200, "POST", "/v1/incidents/%d/close" % ia, {"reason": "x"}, tok["admin"])
expect("close it again: 409", 409, "POST", "/v1/incidents/%d/close" % ia, {"reason": "x"}, tok["admin"])
st, j = expect("the incident shows its actions", 200, "GET", "/v1/incidents/%d" % ia, token=tok["admin"])
check("incident JSON: kind, state, evidence, actions", j["kind"] == "scan" and j["state"] == "closed" and
      j["evidence"] == {"probes": 5} and isinstance(j["actions"], list), j)


def attempts(vid, *rows):
    """Blocked-attempt counts of <vid> as portcullisd records them: (direction, proto, port, packets)."""
    db = sqlite3.connect(os.environ["PC_DB_FILE"], timeout=10)
    db.executemany("INSERT INTO vps_attempt (vps_id, direction, proto, port, packets, last_seen) "
                   "VALUES (?, ?, ?, ?, ?, 1767225600)", [(vid,) + r for r in rows])
    db.commit()
    db.close()


tid = fresh_ticket("vps-a1")
vid = call("GET", "/v1/tickets/%d" % tid, token=tok["admin"])[1]["vps"]
# smtp's 587 and 25 are the findings; bittorrent's 6881 and another VPS's 587 are not.
attempts(vid, ("egress", "tcp", 587, 42), ("ingress", "tcp", 25, 2), ("egress", "tcp", 6881, 3))
attempts("vps-b1", ("egress", "tcp", 587, 99))
st, j = expect("support reads a ticket with its evidence", 200, "GET", "/v1/tickets/%d" % tid, token=tok["support"])
check("findings: blocked attempts, incidents, actions, earlier tickets",
      set(j.get("findings", {})) == {"blocked_attempts", "incidents", "actions", "earlier_tickets"}, j)
check("findings: the VPS's blocked attempts on smtp's ports, by port, as recorded",
      j["findings"]["blocked_attempts"] == [
          {"proto": "tcp", "port": 25, "direction": "ingress", "packets": 2, "last_seen": "2026-01-01T00:00:00Z"},
          {"proto": "tcp", "port": 587, "direction": "egress", "packets": 42, "last_seen": "2026-01-01T00:00:00Z"}],
      j.get("findings"))
st, j = expect("the customer reads it without", 200, "GET", "/v1/tickets/%d" % j["id"], token=tok["ann"])
check("no findings for the customer", "findings" not in j, j)
st, j = expect("audit of vps-a1", 200, "GET", "/v1/audit?vps=vps-a1&limit=5", token=tok["support"])
check("audit: the newest 5, with by and action", len(j["audit"]) == 5 and all(e["by"] and e["action"] for e in j["audit"]),
      j)
st, j = expect("incidents paged: limit=1", 200, "GET", "/v1/incidents?limit=1", token=tok["admin"])
st, j2 = expect("the next page", 200, "GET", "/v1/incidents?limit=1&before=%d" % j["next"], token=tok["admin"])
check("paging goes to older incidents", j2["incidents"][0]["id"] < j["incidents"][0]["id"], (j, j2))

expect("a customer cannot approve even their own ticket", 403, "POST",
       "/v1/tickets/%d/approve" % fresh_ticket("vps-a1"), {}, tok["ann"])
expect("bob cannot read ann's VPS", 404, "GET", "/v1/vps/vps-a1", token=tok["bob"])
st, j = expect("bob lists his tickets", 200, "GET", "/v1/tickets", token=tok["bob"])
check("bob sees none of ann's tickets", all(x["owner"] == "bob@example.org" for x in j["tickets"]) and j["tickets"], j)
expect("bob cannot list ann's VPS's tickets", 404, "GET", "/v1/tickets?vps=vps-a1", token=tok["bob"])
expect("the admin revokes bob's token", 200, "DELETE", "/v1/tokens/bob", token=tok["admin"])
expect("bob's token is refused from the next request on", 401, "GET", "/v1/whoami", token=tok["bob"])

# ---- errors ----------------------------------------------------------------
adm = tok["admin"]


def audit_rows():
    db = sqlite3.connect(os.environ["PC_DB_FILE"], timeout=10)
    n = db.execute("SELECT count(*), coalesce(max(id), 0) FROM audit").fetchone()
    db.close()
    return n


audit_before = audit_rows()
st, j = expect("a newline in a ticket's text", 400, "POST", "/v1/tickets",
               {"vps": "vps-a1", "service": "smtp", "text": "fake\n2026-01-01 audit row"}, adm)
check("the text's field", j["error"]["field"] == "text", j)
st, j = expect("an ESC in a reason", 400, "POST", "/v1/vps/vps-a1/exceptions",
               {"service": "vpn", "reason": "\u001b[2Jcleared"}, adm)
check("the reason's field", j["error"]["field"] == "reason", j)
expect("a C1 control in the evidence", 400, "POST", "/v1/tickets",
       {"vps": "vps-a1", "service": "smtp", "text": "x", "evidence": "a\u0085b"}, adm)
expect("a text over its size", 400, "POST", "/v1/tickets", {"vps": "vps-a1", "service": "smtp", "text": "x" * 5000}, adm)
st, j = expect("bad JSON", 400, "POST", "/v1/tickets", raw=b"{\"vps\": ", token=adm)
check("bad JSON names the body", j["error"]["field"] == "body", j)
st, j = expect("a JSON array body", 400, "POST", "/v1/tickets", raw=b"[1]", token=adm)
st, j = expect("a misspelt member", 400, "POST", "/v1/tickets",
               {"vps": "vps-a1", "service": "smtp", "txt": "x"}, adm)
check("the misspelt member is named", j["error"]["field"] == "txt", j)
st, j = expect("a wrong type", 400, "POST", "/v1/tickets", {"vps": "vps-a1", "service": 25, "text": "x"}, adm)
check("the wrong type's field", j["error"]["field"] == "service", j)
st, j = expect("a missing member", 400, "POST", "/v1/tickets", {"vps": "vps-a1", "service": "smtp"}, adm)
check("the missing member's field", j["error"]["field"] == "text", j)
st, j = expect("an operation's bad value", 400, "POST", "/v1/vps",
               {"id": "vps-x", "owner": "not-an-email", "iface": "tapx", "addresses": ["192.0.2.200"]}, adm)
check("the operation's field", j["error"]["field"] == "owner" and j["error"]["code"] == "invalid", j)
st, j = expect("a bad address", 400, "POST", "/v1/vps",
               {"id": "vps-x", "owner": "x@example.org", "iface": "tapx", "addresses": ["192.0.2.300"]}, adm)
check("the address's field", j["error"]["field"] == "addresses", j)
st, j = expect("a NUL inside a string", 400, "POST", "/v1/tickets", raw=b'{"vps": "vps-a1\\u0000x", "service": "smtp", "text": "x"}', token=adm)
expect("an address another VPS holds", 409, "POST", "/v1/vps",
       {"id": "vps-x", "owner": "x@example.org", "iface": "tapx", "addresses": ["198.51.100.11"]}, adm)
expect("a VPS id registered already", 409, "POST", "/v1/vps",
       {"id": "vps-a1", "owner": "x@example.org", "iface": "tapx2", "addresses": ["192.0.2.201"]}, adm)
check("no refused request wrote anything (the audit log is unchanged)", audit_rows() == audit_before,
      (audit_before, audit_rows()))
tid = fresh_ticket("vps-a1")
expect("deny", 200, "POST", "/v1/tickets/%d/deny" % tid, {"reason": "no"}, adm)
audit_before = audit_rows()
st, j = expect("an illegal transition: approve a denied ticket", 409, "POST", "/v1/tickets/%d/approve" % tid, {}, adm)
check("it names the state", "denied" in j["error"]["message"], j)
st, j = expect("a service the site does not restrict: ticket refused", 409, "POST", "/v1/tickets",
               {"vps": "vps-a1", "service": "irc", "text": "x"}, adm)
check("it says there is nothing to exempt", "nothing to exempt" in j["error"]["message"], j)
expect("an unknown service", 400, "POST", "/v1/tickets", {"vps": "vps-a1", "service": "dns", "text": "x"}, adm)
expect("a ticket id that is no number", 404, "GET", "/v1/tickets/abc", token=adm)
expect("a ticket that does not exist", 404, "GET", "/v1/tickets/999999", token=adm)
expect("an unknown route", 404, "GET", "/v1/nothing", token=adm)
expect("a method the path does not have", 405, "PUT", "/v1/tickets", {}, adm)
expect("limit out of range", 400, "GET", "/v1/vps?limit=0", token=adm)
expect("a body over 64 KiB", 413, "POST", "/v1/tickets", raw=b"{\"text\": \"" + b"x" * 70000 + b"\"}", token=adm)
check("no refused request wrote anything (the audit log is unchanged)", audit_rows() == audit_before,
      (audit_before, audit_rows()))
# A body announced too large is refused before it is read, at once.
import socket as _socket
sk = _socket.create_connection(("127.0.0.1", port), timeout=5)
sk.sendall(("POST /v1/tickets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
            "Content-Length: 10000000000\r\n\r\n{" % adm).encode())
head = sk.recv(4096).decode(errors="replace")
sk.close()
check("a body announced at 10 GB: 413 before it is sent", head.startswith("HTTP/1.1 413"), head[:200])
st, j = expect("paging: limit=1", 200, "GET", "/v1/vps?limit=1", token=adm)
check("paging gives the next cursor", j["next"] == j["vps"][0]["id"], j)
st, j2 = expect("paging: the next page", 200, "GET", "/v1/vps?limit=1&after=" + j["next"], token=adm)
check("the next page starts after it", j2["vps"][0]["id"] > j["next"], j2)
st, _, text, r = call("GET", "/metrics", token=adm)
check("metrics are Prometheus text", st == 200 and "text/plain" in r.getheader("Content-Type") and
      re.search(r"^portcullis_api_requests_total\{class=\"4xx\"\} [1-9]", text, re.M) and
      re.search(r"^portcullis_tickets\{state=\"denied\"\} [1-9]", text, re.M) and
      re.search(r"^portcullis_api_refused_total\{reason=\"auth\"\} [1-9]", text, re.M), text[:600])

# ---- pages across a customer's VPSes -----------------------------------------
# A customer's list is read one VPS at a time; pages must still run newest
# first over all of them, ?before= skipping none.
pv = [fresh_vps("pager@example.org") for _ in range(3)]
seeded = [incident(pv[i % 3]) for i in range(10)]
ptok = call("POST", "/v1/tokens", {"name": "pager", "role": "customer", "customer": "pager@example.org"},
            token=tok["admin"])[1].get("token")
for size in (1, 3, 4):
    got, before, pages = [], None, 0
    while pages < 20:
        st, j = call("GET", "/v1/incidents?limit=%d%s" % (size, "&before=%d" % before if before else ""),
                     token=ptok)[:2]
        if st != 200:
            break
        got += [i["id"] for i in j["incidents"]]
        pages += 1
        before = j["next"]
        if before is None:
            break
    check("a customer's incidents in pages of %d: all of them, newest first, none skipped" % size,
          got == sorted(seeded, reverse=True), (got, seeded))

# ---- the rate limit ----------------------------------------------------------
codes = [call("GET", "/v1/whoami", token=adm, p=slow_port)[0] for _ in range(8)]
check("over the rate: 429 after the burst (3)", codes[:3] == [200] * 3 and 429 in codes[3:], codes)
st, j, _, r = call("GET", "/v1/whoami", token=adm, p=slow_port)
check("429 says Retry-After and code rate_limited", st != 429 or (r.getheader("Retry-After") and
                                                               j["error"]["code"] == "rate_limited"), j)
codes = [call("GET", "/v1/whoami", token="pct_" + "B" * 43, p=slow_port)[0] for _ in range(6)]
check("unauthenticated guesses are rate limited too", 429 in codes, codes)

# ---- the fleet: a VPS's host, moves between hosts, the agents ----------------
import signal as _signal
import time as _time


def cli_json(*args, cfg="etc/portcullis.yaml"):
    """`portcullis --json ARGS` on the test's database: (exit status, document)."""
    p = subprocess.run([os.environ["PC_CLI"], "-c", cfg, "--db", os.environ["PC_DB"], "--json"] + list(args),
                       capture_output=True, text=True)
    try:
        return p.returncode, json.loads(p.stdout)
    except ValueError:
        return p.returncode, p.stdout + p.stderr


def metric(text, name):
    """The value of the sample <name> (with its labels) in a /metrics text, or None."""
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def register(vid, iface, addr, host=None, token=None, p=None):
    body = {"id": vid, "owner": "ann@example.org", "iface": iface, "addresses": [addr]}
    if host is not None:
        body["host"] = host
    return expect("(setup) register %s%s" % (vid, " on " + host if host else ""), 201, "POST", "/v1/vps", body,
                  token or tok["agent"], p=p)


st, j = register("vps-f1", "tapf1", "192.0.2.150", "hv1")
check("registration with a host: the VPS says it, and moves nowhere", j.get("host") == "hv1" and
      "moving_from" not in j, j)
st, j = expect("a VPS registered without a host", 200, "GET", "/v1/vps/vps-a1", token=adm)
check("a single host's VPS has no host member", "host" not in j and "moving_from" not in j, j)
for name, host in (("capitals", "HV1"), ("a space", "hv 1"), ("a leading dash", "-hv1"), ("64 characters", "h" * 64),
                   ("a bidi override", "hv\u202e1"), ("an ESC", "hv\u001b[2J"), ("a number", 7)):
    st, j = expect("register on a host with %s" % name, 400, "POST", "/v1/vps",
                   {"id": "vps-f9", "owner": "ann@example.org", "iface": "tapf9", "addresses": ["192.0.2.159"],
                    "host": host}, tok["agent"])
    check("  its field is host", (j or {}).get("error", {}).get("field") == "host", j)
expect("the refused registrations registered nothing", 404, "GET", "/v1/vps/vps-f9", token=adm)

# Moves: the role before anything else, then the operation's refusals.
audit_before = audit_rows()
for role in ("support", "ann"):
    for whose, vid in (("own", "vps-f1"), ("other's", "vps-b1"), ("a missing", "vps-none")):
        expect("%s moves %s VPS" % (role, whose), 403, "POST", "/v1/vps/%s/move" % vid, {"host": "hv2"}, tok[role])
expect("admin moves a missing VPS", 404, "POST", "/v1/vps/vps-none/move", {"host": "hv2"}, adm)
for name, body, field in (("no host", {"iface": "vnet7"}, "host"),
                          ("a host that is a number", {"host": 2}, "host"),
                          ("a host that is no name", {"host": "hv_2!"}, "host"),
                          ("a bidi host", {"host": "hv\u202e2"}, "host"),
                          ("a control character in the host", {"host": "hv\u00852"}, "host"),
                          ("an interface name too long", {"host": "hv2", "iface": "vnet" + "7" * 16}, "iface"),
                          ("an interface with a slash", {"host": "hv2", "iface": "vnet/7"}, "iface"),
                          ("the loopback", {"host": "hv2", "iface": "lo"}, "iface"),
                          ("a newline in the reason", {"host": "hv2", "reason": "a\nb"}, "reason"),
                          ("a misspelt member", {"host": "hv2", "ifcae": "vnet7"}, "ifcae")):
    st, j = expect("move with %s" % name, 400, "POST", "/v1/vps/vps-f1/move", body, adm)
    check("  names the field %s" % field, (j or {}).get("error", {}).get("field") == field, j)
check("no refused move wrote anything (the audit log is unchanged)", audit_rows() == audit_before,
      (audit_before, audit_rows()))

st, j = expect("admin moves vps-f1 to hv2 on vnet7", 200, "POST", "/v1/vps/vps-f1/move",
               {"host": "hv2", "iface": "vnet7", "reason": "hv1 maintenance"}, adm)
check("moved: changed, on hv2's vnet7, hv1 keeps it until hv2 has it",
      j.get("changed") is True and j.get("host") == "hv2" and j.get("iface") == "vnet7" and
      j.get("moving_from") == "hv1", j)
st, g = expect("GET the moved VPS", 200, "GET", "/v1/vps/vps-f1", token=adm)
check("the move answers the VPS as GET does, plus changed", {k: v for k, v in j.items() if k != "changed"} == g,
      (j, g))
audit_before = audit_rows()
st, j = expect("the same move again", 200, "POST", "/v1/vps/vps-f1/move", {"host": "hv2", "iface": "vnet7"}, adm)
check("  changed is false", j.get("changed") is False and j.get("host") == "hv2", j)
check("  and nothing was written", audit_rows() == audit_before, (audit_before, audit_rows()))
st, j = expect("a move to another host without its interface there", 400, "POST", "/v1/vps/vps-f1/move",
               {"host": "hv3"}, tok["agent"])
check("  field iface", (j or {}).get("error", {}).get("field") == "iface", j)
st, j = expect("agent moves it on to hv3 (same interface name)", 200, "POST", "/v1/vps/vps-f1/move",
               {"host": "hv3", "iface": "vnet7"}, tok["agent"])
check("  on hv3's vnet7; hv1 still holds it (hv2 never had it)",
      j.get("changed") is True and j.get("host") == "hv3" and j.get("iface") == "vnet7" and
      j.get("moving_from") == "hv1", j)
register("vps-f2", "vnet9", "192.0.2.151", "hv4")
audit_before = audit_rows()
st, j = expect("a move onto an interface another VPS has on that host", 409, "POST", "/v1/vps/vps-f1/move",
               {"host": "hv4", "iface": "vnet9"}, adm)
check("  code exists", (j or {}).get("error", {}).get("code") == "exists", j)
check("  and nothing was written", audit_rows() == audit_before, (audit_before, audit_rows()))
st, j = expect("the same interface name on another host", 200, "POST", "/v1/vps/vps-f1/move",
               {"host": "hv5", "iface": "vnet9"}, adm)
st, j = expect("the owner reads their moved VPS", 200, "GET", "/v1/vps/vps-f1", token=tok["ann"])
check("  host hv5, interface vnet9", j.get("host") == "hv5" and j.get("iface") == "vnet9", j)
st, j = expect("audit of vps-f1", 200, "GET", "/v1/audit?vps=vps-f1&limit=10", token=adm)
moves = [(e["by"], e["reason"]) for e in sorted(j["audit"], key=lambda e: e["id"]) if e["action"] == "vps.move"]
check("the moves are audited, by the tokens' names", moves == [("t-admin", "hv1 maintenance"), ("t-agent", None),
                                                              ("t-admin", None)], moves)

# ---- an agent token bound to a host (issue 14, hostile #6) -------------------
# hv1's hooks hold hv1-hooks: every agent route on hv1's VPS is theirs, on
# another host's VPS or a single host's (vps-a1) as on one that does not
# exist (404, as a customer's on another customer's); a VPS goes onto hv1
# only (403, field host).  Nothing refused is written.
hv1 = tok["hv1"]
st, j = expect("whoami of a bound agent token", 200, "GET", "/v1/whoami", token=hv1)
check("  names its host", j.get("role") == "agent" and j.get("host") == "hv1", j)
check("an unbound agent token's whoami: host null", call("GET", "/v1/whoami", token=tok["agent"])[1].get("host") is None)
expect("hv1-hooks reads /metrics", 200, "GET", "/metrics", token=hv1)
st, j = expect("hv1-hooks registers without a host", 201, "POST", "/v1/vps",
               {"id": "vps-h1", "owner": "ann@example.org", "iface": "taph1", "addresses": ["192.0.2.171"]}, hv1)
check("  onto hv1", (j or {}).get("host") == "hv1", j)
st, j = expect("hv1-hooks registers on hv1", 201, "POST", "/v1/vps",
               {"id": "vps-h2", "owner": "bob@example.org", "iface": "taph2", "addresses": ["192.0.2.172"],
                "host": "hv1"}, hv1)
register("vps-o1", "vnet1", "192.0.2.173", "hv2", token=adm)
register("vps-o2", "vnet2", "192.0.2.174", "hv2", token=adm)
audit_before = audit_rows()
st, j = expect("hv1-hooks registers on hv2", 403, "POST", "/v1/vps",
               {"id": "vps-h9", "owner": "ann@example.org", "iface": "taph9", "addresses": ["192.0.2.179"],
                "host": "hv2"}, hv1)
check("  field host, says which host it may", (j or {}).get("error", {}).get("field") == "host" and
      "only on hv1" in j["error"]["message"], j)
st, j = expect("hv1-hooks lists VPSes", 200, "GET", "/v1/vps?limit=100", token=hv1)
check("  hv1's only", sorted(v["id"] for v in (j or {}).get("vps", [])) == ["vps-h1", "vps-h2"], j)
st, j = expect("hv1-hooks pages its list", 200, "GET", "/v1/vps?limit=1", token=hv1)
check("  by id, hv1's", [v["id"] for v in j["vps"]] == ["vps-h1"] and j["next"] == "vps-h1", j)
st, j = expect("  the next page", 200, "GET", "/v1/vps?limit=1&after=vps-h1", token=hv1)
check("  is hv1's too", [v["id"] for v in j["vps"]] == ["vps-h2"], j)
for whose, vid in (("hv2's", "vps-o1"), ("a single host's", "vps-a1")):
    for name, method, path, body in (
            ("GET", "GET", "", None),
            ("PATCH", "PATCH", "", {"addresses": ["192.0.2.178"], "reason": "VM reconfigured"}),
            ("stop", "POST", "/stop", {}),
            ("start", "POST", "/start", {}),
            ("filters", "POST", "/filters", {"all": True, "reason": "abuse"}),
            ("suspend", "POST", "/suspend", {"reason": "abuse"}),
            ("terminate", "POST", "/terminate", {"reason": "fraud"}),
            ("DELETE", "DELETE", "", {"reason": "VM destroyed"})):
        st, j = expect("hv1-hooks %s %s VPS" % (name, whose), 404, method, "/v1/vps/" + vid + path, body, hv1)
        check("  as one that does not exist", (j or {}).get("error", {}).get("message") == "vps %s does not exist" % vid,
              j)
# The hole's own request (tests/fleet_hostile/agent_token_cross_host.sh):
# hv2's VPS re-pointed at a dead interface of hv2; and pushes elsewhere.
for name, vid, body in (("hv2's VPS to a dead interface of hv2", "vps-o1", {"host": "hv2", "iface": "vnet999"}),
                        ("hv2's VPS to hv3", "vps-o1", {"host": "hv3", "iface": "vnet9"}),
                        ("its own VPS to hv2", "vps-h1", {"host": "hv2", "iface": "vnet9"}),
                        ("its own VPS to no host", "vps-h1", {"host": ""})):
    st, j = expect("hv1-hooks moves %s" % name, 403, "POST", "/v1/vps/%s/move" % vid, body, hv1)
    check("  field host: onto hv1 only", (j or {}).get("error", {}).get("field") == "host" and
          "only onto hv1" in j["error"]["message"], j)
check("nothing refused was written (the audit log is unchanged)", audit_rows() == audit_before,
      (audit_before, audit_rows()))
st, j = expect("admin: hv2's VPS is untouched", 200, "GET", "/v1/vps/vps-o1", token=adm)
check("  on hv2's vnet1, running, no filter", j.get("host") == "hv2" and j.get("iface") == "vnet1" and
      j.get("run_state") == "running" and not j.get("filters") and "moving_from" not in j, j)
# Its own host's VPS: every agent route.
for name, method, path, body, want in (
        ("GET", "GET", "", None, 200),
        ("PATCH", "PATCH", "", {"addresses": ["192.0.2.175"], "reason": "VM reconfigured"}, 200),
        ("stop", "POST", "/stop", {}, 200),
        ("start", "POST", "/start", {}, 200),
        ("filters", "POST", "/filters", {"all": True, "until": "+1h", "reason": "abuse"}, 201),
        ("suspend", "POST", "/suspend", {"reason": "abuse"}, 201),
        ("moves on hv1", "POST", "/move", {"host": "hv1", "iface": "taph7", "reason": "nic renamed"}, 200),
        ("terminate", "POST", "/terminate", {"reason": "fraud"}, 201)):
    expect("hv1-hooks %s hv1's VPS" % name, want, method, "/v1/vps/vps-h1" + path, body, hv1)
expect("hv1-hooks DELETE hv1's VPS", 200, "DELETE", "/v1/vps/vps-h2", {"reason": "VM destroyed"}, hv1)
# A live migration: the destination's hooks pull the VPS onto their host.
st, j = expect("hv1-hooks pulls hv2's VPS onto hv1 (a migration's destination)", 200, "POST",
               "/v1/vps/vps-o2/move", {"host": "hv1", "iface": "taph8", "reason": "migrate begin"}, hv1)
check("  hv1's now; hv2 keeps enforcing it until hv1 has it", j.get("host") == "hv1" and
      j.get("moving_from") == "hv2" and j.get("iface") == "taph8", j)
expect("  and hv1-hooks reads it", 200, "GET", "/v1/vps/vps-o2", token=hv1)
# /metrics to a bound agent token: its host's figures only (issue 14:
# the counts were the fleet's -- other hosts' incidents, actions, tickets
# and agents).  An open incident and an agent on hv1 and on hv2 each.
incident("vps-o2", "spoof")
incident("vps-o1", "flood")
db = sqlite3.connect(os.environ["PC_DB_FILE"], timeout=10)
db.executemany("INSERT INTO agent (host, started, heartbeat) VALUES (?, strftime('%s', 'now'), strftime('%s', 'now'))",
               [("hv1",), ("hv2",)])
db.commit()


def host_counts(sql):
    """{label: count} of hv1's VPSes' rows, as the store has them."""
    d = sqlite3.connect(os.environ["PC_DB_FILE"], timeout=10)
    rows = dict(d.execute(sql).fetchall())
    d.close()
    return rows


def samples(text, name):
    """{label value: count} of the samples of <name> in a /metrics text (0s left out)."""
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^%s\{\w+=\"([^\"]*)\"\} (\S+)$" % name, text, re.M)
            if float(m.group(2)) != 0}


st, _, text, r = call("GET", "/metrics", token=hv1)
mine = "(SELECT id FROM vps WHERE host = 'hv1')"
want_inc = host_counts("SELECT kind, count(*) FROM incident WHERE state = 'open' AND vps_id IN %s GROUP BY kind" % mine)
want_act = host_counts("SELECT kind, count(*) FROM action WHERE lifted_at IS NULL AND (until IS NULL OR "
                       "until > strftime('%%s', 'now')) AND vps_id IN %s GROUP BY kind" % mine)
want_tik = host_counts("SELECT state, count(*) FROM ticket WHERE vps_id IN %s GROUP BY state" % mine)
check("hv1-hooks's /metrics: VPSes, hv1's", metric(text, "portcullis_vps") ==
      len(call("GET", "/v1/vps?limit=100", token=hv1)[1]["vps"]), metric(text, "portcullis_vps"))
check("  open incidents, hv1's VPSes' (spoof), not hv2's (flood)",
      samples(text, "portcullis_incidents_open") == {k: float(v) for k, v in want_inc.items()} and "spoof" in want_inc,
      (samples(text, "portcullis_incidents_open"), want_inc))
check("  actions in force, hv1's VPSes'", samples(text, "portcullis_actions_active") ==
      {k: float(v) for k, v in want_act.items()}, (samples(text, "portcullis_actions_active"), want_act))
check("  tickets, hv1's VPSes'", samples(text, "portcullis_tickets") == {k: float(v) for k, v in want_tik.items()},
      (samples(text, "portcullis_tickets"), want_tik))
check("  agents: hv1's alone", metric(text, 'portcullis_fleet_heartbeat_age_seconds{host="hv2"}') is None and
      metric(text, 'portcullis_fleet_heartbeat_age_seconds{host="hv1"}') is not None and
      sum(metric(text, 'portcullis_fleet_agents{state="%s"}' % x) or 0 for x in ("ok", "out-of-sync", "stale")) == 1,
      text[text.find("portcullis_fleet"):])
text = call("GET", "/metrics", token=adm)[2]
check("  (the admin's: the fleet's -- hv2's flood, both agents)",
      (metric(text, 'portcullis_incidents_open{kind="flood"}') or 0) >= 1 and
      metric(text, 'portcullis_fleet_heartbeat_age_seconds{host="hv2"}') is not None, text[:400])
db.execute("DELETE FROM agent")
db.commit()
db.close()
# Not confirmed by hv2 until its agent says the VM left it (vps.depart): a
# pull may be a claim, which hv1 cannot make final and the admin undoes.
check("  not confirmed by hv2: departing_from", j.get("departing_from") == "hv2", j)
expect("  hv1-hooks pulls it again (another interface)", 200, "POST", "/v1/vps/vps-o2/move",
       {"host": "hv1", "iface": "taph9"}, hv1)
audit_before = audit_rows()
st, j = expect("  hv1-hooks removes it before hv2 confirmed", 409, "DELETE", "/v1/vps/vps-o2",
               {"reason": "VM destroyed"}, hv1)
check("    conflict, field vps, says who has to confirm", (j or {}).get("error", {}).get("code") == "conflict" and
      j["error"].get("field") == "vps" and "not confirmed" in j["error"]["message"] and "hv2" in j["error"]["message"],
      j)
check("    nothing was written", audit_rows() == audit_before, (audit_before, audit_rows()))
st, j = expect("  hv1-hooks gives it another address before hv2 confirmed", 409, "PATCH", "/v1/vps/vps-o2",
               {"addresses": ["192.0.2.174", "192.0.2.176"], "reason": "VM reconfigured"}, hv1)
check("    conflict, field vps", (j or {}).get("error", {}).get("field") == "vps", j)
st, j = expect("  hv1-hooks gives it another MAC", 409, "PATCH", "/v1/vps/vps-o2", {"mac": "52:54:00:00:00:99"}, hv1)
expect("  hv1-hooks names its interface on hv1 (its own)", 200, "PATCH", "/v1/vps/vps-o2", {"iface": "taph10"}, hv1)
expect("  hv1-hooks gives it the addresses it has", 200, "PATCH", "/v1/vps/vps-o2", {"addresses": ["192.0.2.174"]},
       hv1)
check("    nothing but the interface was written", audit_rows()[0] == audit_before[0] + 1, (audit_before, audit_rows()))
st, j = expect("  admin undoes the pull: back to hv2 without its interface there", 200, "POST", "/v1/vps/vps-o2/move",
               {"host": "hv2", "reason": "claim undone"}, adm)
check("    on hv2's vnet2 again, nothing to confirm", j.get("host") == "hv2" and j.get("iface") == "vnet2" and
      "departing_from" not in j, j)
# hv2 is dead for good (or its agent started without the VM): only an
# admin confirms the move for it (POST /v1/vps/{id}/depart, vps.depart).
expect("  hv1-hooks pulls it once more", 200, "POST", "/v1/vps/vps-o2/move", {"host": "hv1", "iface": "taph8"}, hv1)
audit_before = audit_rows()
for who, t in (("hv1-hooks (the claimer)", hv1), ("an agent token of any host", tok["agent"]),
               ("support", tok["support"]), ("the owner", tok["ann"])):
    st, j = expect("  %s confirms hv2's departure" % who, 403, "POST", "/v1/vps/vps-o2/depart",
                   {"reason": "hv2 is dead"}, t)
    check("    only an admin may", "only admin may" in (j or {}).get("error", {}).get("message", ""), j)
st, j = expect("  admin confirms without a reason", 400, "POST", "/v1/vps/vps-o2/depart", {}, adm)
check("    field reason", (j or {}).get("error", {}).get("field") == "reason", j)
expect("  admin confirms with an empty reason", 400, "POST", "/v1/vps/vps-o2/depart", {"reason": ""}, adm)
expect("  admin confirms with another field", 400, "POST", "/v1/vps/vps-o2/depart", {"reason": "x", "host": "hv2"},
       adm)
expect("  admin confirms a missing VPS's", 404, "POST", "/v1/vps/vps-none/depart", {"reason": "x"}, adm)
check("    nothing refused was written", audit_rows() == audit_before, (audit_before, audit_rows()))
st, j = expect("  admin confirms it for hv2", 200, "POST", "/v1/vps/vps-o2/depart",
               {"reason": "hv2 is dead: its disks are gone"}, adm)
check("    the VPS as GET gives it, confirmed", j.get("host") == "hv1" and "departing_from" not in j, j)
st, a = expect("  its audit log", 200, "GET", "/v1/audit?vps=vps-o2&limit=50", token=adm)
dep = [(e["by"], e["reason"], e["before"].get("departing_from")) for e in a.get("audit", [])
       if e["action"] == "vps.depart"]
check("    vps.depart by the admin, with the reason", dep == [("t-admin", "hv2 is dead: its disks are gone", "hv2")], dep)
st, j = expect("  admin confirms it again", 409, "POST", "/v1/vps/vps-o2/depart", {"reason": "again"}, adm)
check("    conflict, field vps: no move to confirm", (j or {}).get("error", {}).get("field") == "vps" and
      "no move to confirm" in j["error"]["message"], j)
expect("  confirmed, hv1-hooks gives it another address", 200, "PATCH", "/v1/vps/vps-o2",
       {"addresses": ["192.0.2.174", "192.0.2.176"], "reason": "VM reconfigured"}, hv1)
# Minting one through the API.
st, j = expect("POST /v1/tokens: an agent token bound to hv3", 201, "POST", "/v1/tokens",
               {"name": "hv3-hooks", "role": "agent", "host": "hv3"}, adm)
check("  says its host", j.get("host") == "hv3" and j["token"].startswith("pct_"), j)
check("  and acts as hv3's", call("GET", "/v1/whoami", token=j["token"])[1].get("host") == "hv3")
text = call("GET", "/metrics", token=j["token"])[2]
check("  its /metrics: a host of no VPS counts none", metric(text, "portcullis_vps") == 0 and
      not any(samples(text, n) for n in ("portcullis_incidents_open", "portcullis_actions_active",
                                           "portcullis_tickets")), text[:600])
st, j = expect("POST /v1/tokens: an agent token of any host, said", 201, "POST", "/v1/tokens",
               {"name": "every-hooks", "role": "agent", "any_host": True}, adm)
check("  host null", "host" in j and j["host"] is None, j)
for name, body, field in (("an agent token without a host", {"name": "x1", "role": "agent"}, "host"),
                          ("both a host and any host", {"name": "x1", "role": "agent", "host": "hv1",
                                                        "any_host": True}, "host"),
                          ("a host that is no name", {"name": "x1", "role": "agent", "host": "hv 1"}, "host"),
                          ("a host on a support token", {"name": "x1", "role": "support", "host": "hv1"}, "host"),
                          ("any_host a string", {"name": "x1", "role": "agent", "any_host": "yes"}, "any_host")):
    st, j = expect("POST /v1/tokens with %s" % name, 400, "POST", "/v1/tokens", body, adm)
    check("  field %s" % field, (j or {}).get("error", {}).get("field") == field, j)
st, j = expect("GET /v1/tokens", 200, "GET", "/v1/tokens", token=adm)
hosts = {t["name"]: t["host"] for t in j["tokens"]}
check("the token list says each token's host", hosts.get("hv1-hooks") == "hv1" and hosts.get("hv3-hooks") == "hv3"
      and hosts.get("t-agent") is None and hosts.get("every-hooks") is None and hosts.get("t-admin") is None, hosts)

# The fleet as its operators read it.
for role in ("admin", "support", "agent", "ann"):
    st, j = expect("%s GET /v1/fleet" % role, 200 if role in ("admin", "support") else 403, "GET", "/v1/fleet",
                   token=tok[role])
rc, cj = cli_json("fleet", "status")
st, j = call("GET", "/v1/fleet", token=adm)[:2]
check("no agent yet: /v1/fleet is what `portcullis --json fleet status` prints",
      j == cj and j["agents"] == [] and j["stale_after_s"] == 30 and j["last_change"] > 0, (j, cj))
st, _, text, r = call("GET", "/metrics", token=tok["support"])
check("metrics: no agent in any state", all(metric(text, 'portcullis_fleet_agents{state="%s"}' % s) == 0
                                            for s in ("ok", "out-of-sync", "stale")), text[text.find("portcullis_fleet"):])

# A real agent: portcullisd --host hv1 in a network namespace of its own,
# beside an apid with the same configuration (its wake socket, 2 s passes).
fport, fcfg = int(os.environ["PC_FLEET_PORT"]), os.environ["PC_FLEET_CFG"]
wake_sock = os.path.join(os.path.dirname(fcfg), "run", "changes.sock")


def wakes_failed():
    text = call("GET", "/metrics", token=adm, p=fport)[2]
    return metric(text, "portcullis_api_agent_wakes_failed_total")


def wait_for(cond, seconds):
    """<cond>() once it is true, or its last value after <seconds>."""
    end = _time.time() + seconds
    while True:
        v = cond()
        if v or _time.time() > end:
            return v
        _time.sleep(0.2)


w0 = wakes_failed()
register("vps-g1", "tapg1", "192.0.2.160", "hv0", p=fport)
check("a registration wakes the agent at commit (no agent yet: the wake fails, counted)", wakes_failed() == w0 + 1,
      (w0, wakes_failed()))
st, j = expect("move vps-g1 to hv9", 200, "POST", "/v1/vps/vps-g1/move", {"host": "hv9", "iface": "tapg1"}, adm,
               p=fport)
check("a move wakes the agent at commit", wakes_failed() == w0 + 2, (w0, wakes_failed()))
expect("the same move again", 200, "POST", "/v1/vps/vps-g1/move", {"host": "hv9", "iface": "tapg1"}, adm, p=fport)
expect("a refused move", 400, "POST", "/v1/vps/vps-g1/move", {"host": "HV9"}, adm, p=fport)
check("a move that changed nothing, or was refused, wakes nobody", wakes_failed() == w0 + 2, (w0, wakes_failed()))

agent_log = open(os.path.join(tmp, "agent.log"), "w")
unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
agent = subprocess.Popen(unshare + [os.environ["PC_AGENT"], "-c", fcfg, "--db", os.environ["PC_DB"], "--host", "hv1"],
                         stdout=agent_log, stderr=agent_log)


def agent_stop():
    if agent.poll() is None:
        agent.send_signal(_signal.SIGTERM)
        try:
            agent.wait(10)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()


import atexit as _atexit
_atexit.register(agent_stop)


def hv1():
    st, j = call("GET", "/v1/fleet", token=adm, p=fport)[:2]
    return next((a for a in (j or {}).get("agents", []) if a["host"] == "hv1"), None)


def g1_arrived():
    g = call("GET", "/v1/vps/vps-g1", token=adm, p=fport)[1]
    return g if "moving_from" not in g else None


def hv1_stale():
    x = hv1()
    return x if x and x["state"] == "stale" else None


a = wait_for(hv1, 20)
if a is None and agent.poll() is not None and "unshare" in open(os.path.join(tmp, "agent.log")).read():
    # a skipped check is a failed one
    check("a network namespace for the agent's checks", False, open(os.path.join(tmp, "agent.log")).read()[:200])
else:
    check("portcullisd --host hv1 beats: its row appears in /v1/fleet", a is not None,
          open(os.path.join(tmp, "agent.log")).read()[-600:])
    a = a or {}
    check("  as `fleet status --json` shows an agent: host, state, started, heartbeat, heartbeat_age_s, "
          "change_seen, lag, vpses, in_sync, version, unconfirmed_departures",
          set(a) == {"host", "state", "started", "heartbeat", "heartbeat_age_s", "change_seen", "lag", "vpses",
                     "in_sync", "version", "unconfirmed_departures"}, a)
    check("  ok: in sync, a version, just heard of", a.get("state") == "ok" and a.get("in_sync") is True and
          a.get("version") and 0 <= a.get("heartbeat_age_s", -1) <= 6 and a.get("lag", -1) >= 0, a)
    moving = ("heartbeat", "heartbeat_age_s")  # a beat may fall between the two reads
    for _ in range(3):
        rc, cj = cli_json("fleet", "status", cfg=fcfg)
        j = call("GET", "/v1/fleet", token=tok["support"], p=fport)[1]
        same = [{k: v for k, v in x.items() if k not in moving} for x in j["agents"]] == \
               [{k: v for k, v in x.items() if k not in moving} for x in cj["agents"]] and \
               (j["last_change"], j["stale_after_s"]) == (cj["last_change"], cj["stale_after_s"])
        if same:
            break
    check("  /v1/fleet and `portcullis --json fleet status` agree (exit 0: every agent ok)",
          same and rc == 0 and j["stale_after_s"] == 6, (j, cj, rc))
    st, j = expect("move vps-g1 to hv1, whose agent runs", 200, "POST", "/v1/vps/vps-g1/move",
                   {"host": "hv1", "iface": "tapg1", "reason": "to the running agent"}, tok["agent"], p=fport)
    check("  hv0 keeps it until hv1 has it", j.get("moving_from") == "hv0" and j.get("changed") is True, j)
    check("  the wake reached the agent's socket (none failed)", wakes_failed() == w0 + 2 and
          os.path.exists(wake_sock), (w0, wakes_failed()))
    j = wait_for(g1_arrived, 10)
    check("hv1's agent took vps-g1 over: moving_from is gone", j is not None and j.get("host") == "hv1", j)
    st, j = expect("audit of vps-g1", 200, "GET", "/v1/audit?vps=vps-g1&limit=10", token=adm, p=fport)
    acts = [e["action"] for e in sorted(j["audit"], key=lambda e: e["id"])]
    check("  audited as vps.arrive, after the moves", acts[-1:] == ["vps.arrive"], acts)
    st, _, text, r = call("GET", "/metrics", token=tok["agent"], p=fport)
    age = metric(text, 'portcullis_fleet_heartbeat_age_seconds{host="hv1"}')
    check("metrics: one agent ok, none out of sync or stale, hv1's heartbeat age",
          metric(text, 'portcullis_fleet_agents{state="ok"}') == 1 and
          metric(text, 'portcullis_fleet_agents{state="out-of-sync"}') == 0 and
          metric(text, 'portcullis_fleet_agents{state="stale"}') == 0 and age is not None and 0 <= age <= 6,
          text[text.find("portcullis_fleet"):])
    agent_stop()
    a = wait_for(hv1_stale, 15)
    check("the agent stopped: stale after 3 passes without a heartbeat", a is not None and a["heartbeat_age_s"] > 6, a)
    rc, cj = cli_json("fleet", "status", cfg=fcfg)
    check("  `fleet status` says so too (exit 1)", rc == 1 and [x["state"] for x in cj["agents"]] == ["stale"],
          (rc, cj))
    text = call("GET", "/metrics", token=adm, p=fport)[2]
    check("  metrics: one agent stale", metric(text, 'portcullis_fleet_agents{state="stale"}') == 1 and
          metric(text, 'portcullis_fleet_agents{state="ok"}') == 0, text[text.find("portcullis_fleet"):])

# ---- OpenAPI: the document and the server agree -------------------------------
doc = yaml.safe_load(open(openapi_path))
served = set()
for line in open(routes_path):
    method, path = line.split()
    served.add((method.lower(), path.replace("+}", "}")))
documented = set()
for path, ops in doc["paths"].items():
    for method, op in ops.items():
        if method in ("get", "post", "put", "delete", "patch"):
            documented.add((method, path))
            check("openapi %s %s documents 401" % (method, path), "401" in op.get("responses", {}), op)
check("openapi: version 3", str(doc.get("openapi", "")).startswith("3."))
check("openapi documents every route served", served <= documented, sorted(served - documented))
check("openapi documents no route the server lacks", documented <= served, sorted(documented - served))

print("%d checks, %d failures" % (checks, failures))
sys.exit(1 if failures else 0)
