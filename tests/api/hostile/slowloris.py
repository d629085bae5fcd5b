#!/usr/bin/env python3
"""Slowloris: one unauthenticated client holds every connection slot.

apid caps connections at --connections (256) for all clients together and
drops one only after 10 s without a byte (MHD's inactivity timeout), with
no limit per address.  A client that opens 256 connections and sends one
header line every 2 s never completes a request -- so the rate limiter,
which counts requests, never sees it -- and another client's request waits
in the listen backlog until it gives up.

Exits 1 while a second client (another address, a valid token) cannot get
an answer within 5 s on two tries while the attack runs; 0 once it can
(e.g. MHD_OPTION_PER_IP_CONNECTION_LIMIT)."""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

h = harness.Apid()  # the defaults: --connections 256, --rate 20, --burst 40
socks = []
for i in range(256):
    try:
        s = socket.create_connection(("127.0.0.1", h.port), timeout=2)
        s.sendall(b"GET /v1/whoami HTTP/1.1\r\n")
        socks.append(s)
    except OSError:
        break
stop = threading.Event()


def drip():
    while not stop.is_set():
        for s in socks:
            try:
                s.sendall(b"X-a: b\r\n")
            except OSError:
                pass
        stop.wait(2)


threading.Thread(target=drip, daemon=True).start()
time.sleep(0.5)
answered = []
for attempt in range(2):
    t = time.time()
    try:
        st, _, _ = h.call("GET", "/v1/whoami", token=h.tok["bob"], timeout=5, src="127.0.0.2")
        answered.append("%d in %.2fs" % (st, time.time() - t))
    except OSError as e:
        print("victim attempt %d: no answer after %.1fs (%s)" % (attempt + 1, time.time() - t, e))
stop.set()
print("attacker connections opened: %d; apid RSS %d KiB" % (len(socks), h.rss_kib()))
if not answered:
    h.fail("256 slow connections from 127.0.0.1 locked out every other client (2 x 5 s timeouts)")
print("ok: the other client was answered (%s)" % ", ".join(answered))
