#!/usr/bin/env python3
"""One customer within the rate limit stalls apid through ?before= on the
lists that are still not keyed in the store: notifications (and
incidents, actions: the same path).

api_page_take (src/api/page.c) applies ?before= in memory: the store's
read of each of the customer's VPSes (pc_store_notification_list with
limit 0, pc_store_incident_list, pc_store_action_list: no "id < ?" and no
LIMIT) returns every row, newest first, each one built into JSON
(pc_json_notification) and dropped while its id >= before.  So
GET /v1/notifications?limit=1&before=2 costs every notification the
customer ever had, for one item of answer.  The fix of ticket_list_cost
(a keyset "t.id < ?6 ... LIMIT" in pc_store_ticket_query) was not carried
to these lists.

A customer's 50,000 past notifications are written into the database
directly (a history: one per ticket event, exception, incident, none
pruned).  Exits 1 while, with that customer asking for that page at 20 a
second (the default --rate), another client's median latency exceeds
0.25 s; 0 once the store narrows by before and limit (id < before ...
ORDER BY id DESC LIMIT limit+1, per VPS) or the cost is charged."""
import json
import os
import sqlite3
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

h = harness.Apid()
h.stop_apid()
db = sqlite3.connect(h.dbpath)
payload = json.dumps({"ticket": 1, "text": "x" * 500})
db.executemany("INSERT INTO notification (created, vps_id, kind, recipient, language, payload, state, "
               "next_attempt) VALUES (?, 'vps-a1', 'ticket.opened', 'ann@example.org', 'en', ?, 'sent', 0)",
               [(1700000000 + i, payload) for i in range(50000)])
db.commit()
db.close()
h.start()

t = time.time()
st, j, _ = h.call("GET", "/v1/notifications?limit=1&before=2", token=h.tok["ann"], timeout=60)
one = time.time() - t
print("GET /v1/notifications?limit=1&before=2: %d, %d item(s) in %.3f s" % (st, len((j or {}).get("notifications", [])), one))

stop = threading.Event()


def attack():
    while not stop.is_set():
        t0 = time.time()
        try:
            h.call("GET", "/v1/notifications?limit=1&before=2", token=h.tok["ann"], timeout=60)
        except OSError:
            pass
        stop.wait(max(0, 0.05 - (time.time() - t0)))  # 20 a second at most


threads = [threading.Thread(target=attack, daemon=True) for _ in range(4)]
for th in threads:
    th.start()
time.sleep(0.5)
lat = []
end = time.time() + 4
while time.time() < end:
    t0 = time.time()
    try:
        h.call("GET", "/v1/whoami", token=h.tok["bob"], timeout=10, src="127.0.0.2")
        lat.append(time.time() - t0)
    except OSError:
        lat.append(10)
    time.sleep(0.1)
stop.set()
med = statistics.median(lat)
print("victim: %d requests, median %.3f s, max %.3f s" % (len(lat), med, max(lat)))
if med > 0.25:
    h.fail("one customer's ?before=2&limit=1 on 50,000 notifications (%.2f s each) makes another client wait "
           "%.2f s (median)" % (one, med))
print("ok: the other client's median latency is %.3f s" % med)
