#!/usr/bin/env python3
"""A VPS id given again hands the previous owner's emails to the new one.

The notification table (the outbox) keys a row on vps_id alone, with no
foreign key: removing a VPS keeps its emails (rightly, they are the
record of what was sent).  pc_ops_notification_list (src/ops/ops_incident.c)
gives a customer every email row whose vps_id is one of their VPSes'
(scope_of -> pc_store_notification_list), whoever it was sent to.  When
the id is registered again for another customer -- VM managers reuse ids
(a Proxmox VMID, "vps-101" made from it) -- GET /v1/notifications shows the
new owner the old owner's mailbox (recipient), what was written to them
(kind: ticket.received/denied, incident.opened, vps.suspended...), when,
and the mail relay's last_error.  docs/API.md: a customer reads "the emails
sent to them".

Exits 1 while bob, new owner of the id vps-a1, lists an email whose
recipient is ann; 0 once a customer sees only the emails addressed to
them (filter on recipient == the token's customer, or on created >= the
VPS's registration)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

h = harness.Apid(["--rate", "1000", "--burst", "1000"])
A, B = h.tok["ann"], h.tok["bob"]
st, j, text = h.call("POST", "/v1/tickets", {"vps": "vps-a1", "service": "smtp", "text": "newsletter for my shop"}, A)
if st != 201:
    h.fail("set-up: ann's ticket %d %s" % (st, text))
h.call("POST", "/v1/tickets/%d/deny" % j["id"], {"reason": "use a relay"}, h.tok["support"])
# ann leaves; the VM manager later gives the same id to bob's new VM.
st, _, text = h.call("DELETE", "/v1/vps/vps-a1", {"reason": "contract ended"}, h.tok["agent"])
st2, _, text2 = h.call("POST", "/v1/vps", {"id": "vps-a1", "owner": "bob@example.org", "iface": "tapa1",
                                           "addresses": ["198.51.100.12"]}, h.tok["agent"])
if st != 200 or st2 != 201:
    h.fail("set-up: remove %d %s / register %d %s" % (st, text, st2, text2))
leaked = []
for path in ("/v1/notifications", "/v1/notifications?vps=vps-a1"):
    st, j, text = h.call("GET", path, token=B)
    mine = [n for n in (j or {}).get("notifications", []) if n.get("recipient") != "bob@example.org"]
    print("bob: GET %s -> %d, %d email(s) not addressed to bob: %s" % (
        path, st, len(mine), ", ".join("#%s %s to %s" % (n["id"], n["kind"], n["recipient"]) for n in mine)))
    leaked += mine
if leaked:
    h.fail("the new owner of a reused VPS id reads the previous owner's emails")
print("ok")
