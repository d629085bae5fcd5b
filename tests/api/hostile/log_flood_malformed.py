#!/usr/bin/env python3
"""A stranger writes apid's log at any rate with malformed requests.

on_request (src/api/server.c) writes one line per answered request and
none for one refused over the rate ("a flood would flood the log").  But a
request that libmicrohttpd cannot parse (a bad Content-Length, a bad
chunk, an unknown HTTP version, a header over the memory limit) never
reaches on_request, so neither the rate limiter nor the log's rule sees
it: MHD_USE_ERROR_LOG prints MHD's own ~200-byte "Error processing
request ..." line for each, to apid's stderr (the journal).  One client
writes thousands of lines a second, unauthenticated: disk, and journald's
per-service rate limit (RateLimitBurst, 10000 per 30 s by default), which
then drops apid's own lines -- the access log of what the attacker does
next.

Exits 1 while 2000 malformed requests from one address, sent in at most a
few seconds at the default --rate 20, write more than 200 lines to the
log; 0 once such refusals are counted against the client's rate (or
logged at most once a second, summarised)."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

h = harness.Apid()  # --rate 20 --burst 40
before = open(h.log, "rb").read().count(b"\n")
t = time.time()
sent = 0
while sent < 2000 and time.time() - t < 5:
    s = socket.create_connection(("127.0.0.1", h.port), timeout=2)
    try:
        # Keep-alive is ended by the 400: one connection a request.
        s.sendall(b"GET /v1/whoami HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n")
        s.recv(100)
        sent += 1
    except OSError:
        pass
    s.close()
el = time.time() - t
time.sleep(0.3)
log = open(h.log, "rb").read()
lines = log.count(b"\n") - before
print("%d malformed requests in %.2fs; %d log lines (%d bytes), e.g. %r" % (
    sent, el, lines, len(log), log.split(b"\n")[-2][:90]))
if lines > 200:
    h.fail("%d unauthenticated requests over the rate wrote %d lines to apid's log" % (sent, lines))
print("ok")
