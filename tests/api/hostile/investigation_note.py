#!/usr/bin/env python3
"""Support's investigation note is shown to the customer.

docs/NOTIFICATIONS.md: "an investigation is internal (no email)".  But
GET /v1/tickets/{id} (ticket_reply, src/api/tickets.c) gives a customer the
ticket's whole history (pc_store_ticket_events) with each event's "note"
and "by": the note support wrote when it took the ticket in hand
(POST /v1/tickets/{id}/investigate {"note": ...}) -- "checking the
abuse history of 203.0.113.9", "looks like the spammer of #123" -- reaches
the customer it is about, with the support member's token name.

Exits 1 while ann's view of her ticket holds the text of support's
investigation note; 0 once a customer's history leaves internal notes out
(or investigate takes no note that a customer can read)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

NOTE = "internal: same operator as the spam wave of last week, check 203.0.113.9"
h = harness.Apid(["--rate", "1000", "--burst", "1000"])
A, S = h.tok["ann"], h.tok["support"]
st, j, text = h.call("POST", "/v1/tickets", {"vps": "vps-a1", "service": "smtp", "text": "transactional mail"}, A)
if st != 201:
    h.fail("set-up: ann's ticket %d %s" % (st, text))
tid = j["id"]
st, _, text = h.call("POST", "/v1/tickets/%d/investigate" % tid, {"note": NOTE}, S)
if st != 200:
    h.fail("set-up: investigate %d %s" % (st, text))
st, j, text = h.call("GET", "/v1/tickets/%d" % tid, token=A)
print("ann: GET /v1/tickets/%d -> %d; history: %s" % (
    tid, st, [(e.get("kind"), e.get("by"), e.get("note")) for e in (j or {}).get("history", [])]))
if NOTE in text:
    h.fail("support's internal investigation note is shown to the customer")
print("ok")
