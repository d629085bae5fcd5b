#!/usr/bin/env python3
"""One customer within the rate limit stalls apid and inflates its memory
through GET /v1/tickets.

apid answers every request on one thread.  GET /v1/tickets?limit=1000
builds up to 1000 tickets (text 1 KiB, evidence 2 KiB each: ~3.5 MB of
indented JSON, ~0.1 s) in memory, and the "before" cursor is applied in
memory over the store's whole query (api_ticket_list / pc_store_ticket_query
with no LIMIT), so every page costs all of the caller's tickets.  At the
default --rate 20 one customer keeps the thread busy for more than the
second each second: everybody else waits.  A client that reads its answers
slowly makes MHD hold each ~3.5 MB answer until the 10 s timeout.

The customer's 1000 past tickets are written into the database directly
(a history, as a busy customer accumulates; ticket_flood.py shows a
customer can also open them).  Exits 1 while, under the attack, another
client's median latency exceeds 0.25 s or apid's RSS exceeds 150 MB; 0 once
pages are bounded (a smaller API_PAGE_MAX, a keyset query with LIMIT) or
the cost is charged to the caller's rate."""
import os
import re
import socket
import sqlite3
import statistics
import sys
import threading
import time
import http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

h = harness.Apid()
h.stop_apid()
con = sqlite3.connect(h.dbpath)
now = int(time.time())
con.executemany("INSERT INTO ticket (vps_id, service, state, opened_by, opened, text, evidence) "
                "VALUES ('vps-a1', 'smtp', 'denied', 'ann', ?, ?, ?)",
                [(now - 86400 + i, "T" * 1023, "E" * 2047) for i in range(1000)])
con.commit()
con.close()
h.start()  # the defaults: --rate 20 --burst 40, one thread
A = h.tok["ann"]

# The largest page the server allows ("limit must be 1 to N" says N).
page = "/v1/tickets?limit=1000"
st, j, text = h.call("GET", page, token=A)
if st == 400:
    page = "/v1/tickets?limit=" + re.search(r"1 to (\d+)", j["error"]["message"]).group(1)
t = time.time()
st, j, text = h.call("GET", page, token=A)
print("one page (%s): %d, %d tickets, %d bytes in %.3fs" % (page, st, len(j["tickets"]), len(text),
                                                             time.time() - t))


def victim(seconds):
    lat = []
    end = time.time() + seconds
    while time.time() < end:
        t = time.time()
        try:
            h.call("GET", "/v1/whoami", token=h.tok["bob"], timeout=30, src="127.0.0.2")
        except OSError:
            pass
        lat.append(time.time() - t)
        time.sleep(0.1)
    return lat


base = statistics.median(victim(1))
stop = threading.Event()


def attacker():
    c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=60)
    while not stop.is_set():
        try:
            c.request("GET", page, headers={"Authorization": "Bearer " + A})
            r = c.getresponse()
            r.read()
            if r.status == 429:
                time.sleep(0.05)
        except (OSError, http.client.HTTPException):
            c.close()
            c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=60)


threads = [threading.Thread(target=attacker, daemon=True) for _ in range(20)]
for th in threads:
    th.start()
time.sleep(1)
lat = victim(6)
stop.set()
for th in threads:
    th.join(60)
p50 = statistics.median(lat)
print("other client: median %.3fs before, %.3fs (max %.3fs) during the attack" % (base, p50, max(lat)))

# Slow readers: each connection asks for a page and reads one byte now and then.
time.sleep(3)  # the bucket refills
rss0 = h.rss_kib()
socks, peak = [], rss0
req = b"GET " + page.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + A.encode() + b"\r\n\r\n"
t0 = time.time()
while len(socks) < 100 and time.time() - t0 < 15:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", h.port))
    s.sendall(req)
    socks.append(s)
    time.sleep(0.06)  # within 20/s
    peak = max(peak, h.rss_kib())
time.sleep(0.5)
peak = max(peak, h.rss_kib())
for s in socks:
    s.close()
print("slow readers: %d connections, apid RSS %d -> %d KiB" % (len(socks), rss0, peak))
holes = []
if p50 > 0.25:
    holes.append("one customer at the default rate raised another client's median latency from %.3fs to %.2fs"
                 % (base, p50))
if peak > 150 * 1024:
    holes.append("100 slow-reading connections of one customer grew apid's RSS to %d MB" % (peak // 1024))
if holes:
    h.fail("; ".join(holes))
print("ok")
