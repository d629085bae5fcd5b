#!/usr/bin/env python3
"""Slowloris again, from 16 addresses: the per-address limit is per whole
address, and the slots are still held for as long as a client drips.

The fix of slowloris.py caps a client at --per-client (16) connections
(MHD_OPTION_PER_IP_CONNECTION_LIMIT) out of --connections (256), and MHD
still drops a connection only after 10 s *without a byte*.  16 addresses
x 16 connections hold all 256 slots with one header line every 2 s, and
no request is ever complete (the rate limiter never sees them).  16
addresses are one IPv6 host (MHD counts each of the 2^64 addresses of its
/64 on its own, while the rate limiter, rightly, keys the /64) or a /28 of
IPv4; here 127.0.0.0/8 stands in.

Exits 1 while a 17th client (another address, a valid token) gets no
answer within 5 s on two tries while the attack runs; 0 once it does (a
deadline for a request's headers however slowly they drip, e.g. a
per-connection timer that is not reset by each byte; per-client limits
keyed as the rate limiter keys them, IPv6 on /64; slots kept for clients
that have completed requests)."""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

h = harness.Apid()  # the defaults: --connections 256, 16 per address
socks = []
for a in range(16):
    for i in range(16):
        try:
            s = socket.create_connection(("127.0.0.1", h.port), timeout=2,
                                         source_address=("127.3.0.%d" % (a + 1), 0))
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
print("attacker connections opened: %d from 16 addresses" % len(socks))
if not answered:
    h.fail("16 addresses x 16 slow connections locked out every other client (2 x 5 s timeouts)")
print("ok: the other client was answered (%s)" % ", ".join(answered))
