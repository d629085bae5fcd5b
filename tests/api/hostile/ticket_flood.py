#!/usr/bin/env python3
"""Ticket flood: a customer opens tickets without any quota.

pc_ops_ticket_open (src/ops/ops_ticket.c) refuses nothing for number: the
same customer may open any number of tickets on the same VPS for the same
service, each one a ticket row, an event, an audit row and a queued
"ticket.received" email (about 14 KB of database with a full text and
evidence).  At the default --rate 20 that is 1.7 million tickets and
emails a day from one address, and every ticket list of that customer
and of the support desk grows with them.

Exits 1 while 60 tickets for the same VPS and service, opened one after
another at the default rate, are all accepted; 0 once a quota refuses some
(e.g. one open ticket per VPS and service, a few per customer)."""
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

h = harness.Apid()  # default --rate 20 --burst 40
body = {"vps": "vps-a1", "service": "smtp", "text": "T" * 1023, "evidence": "E" * 2047}
codes = {}
t0 = time.time()
opened = 0
while opened + codes.get(409, 0) + codes.get(400, 0) < 60 and time.time() - t0 < 30:
    st, j, text = h.call("POST", "/v1/tickets", body, h.tok["ann"])
    codes[st] = codes.get(st, 0) + 1
    if st == 429:
        time.sleep(0.06)
        continue
    if st == 201:
        opened += 1
    elif st not in (400, 409):
        h.fail("unexpected %d %s" % (st, text))
con = sqlite3.connect(h.dbpath)
mails = con.execute("SELECT count(*) FROM notification WHERE kind = 'ticket.received'").fetchone()[0]
open_same = con.execute("SELECT count(*) FROM ticket WHERE vps_id = 'vps-a1' AND service = 'smtp' "
                        "AND state = 'open'").fetchone()[0]
con.close()
size = sum(os.path.getsize(os.path.join(h.tmp, "db", f)) for f in os.listdir(os.path.join(h.tmp, "db")))
print("answers %s in %.1fs; open tickets for vps-a1/smtp: %d; emails queued: %d; database %d KB"
      % (codes, time.time() - t0, open_same, mails, size // 1024))
if opened >= 60:
    h.fail("a customer opened %d identical open tickets (and %d emails) with no quota" % (opened, mails))
print("ok: %d of 60 accepted" % opened)
