#!/usr/bin/env python3
"""Content-Length and Transfer-Encoding together: a second request hidden
in the body is served on the same connection.

libmicrohttpd 0.9.75 lets chunked win and keeps the connection open, so
the bytes after the empty chunk are read as the next request.  RFC 9112
6.3: a server that receives both MUST close the connection after
answering (or refuse the request).  Harmless to a direct client (it
smuggles to itself), but docs/API.md suggests a reverse proxy: one that
frames by Content-Length would pass the hidden request through unseen
(its path checks, its logs) and mix up answers between clients.

Exits 1 while the hidden request is answered; 0 once such a request is
refused with 400 and the connection closed (on_request's first call,
src/api/server.c)."""
import os
import re
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

h = harness.Apid()
A = h.tok["ann"].encode()
hidden = b"GET /v1/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + A + b"\r\n\r\n"
body = b"0\r\n\r\n" + hidden
s = socket.create_connection(("127.0.0.1", h.port), timeout=3)
s.sendall(b"POST /v1/tickets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + A + b"\r\n"
          b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(body) + body)
out = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
except socket.timeout:
    pass
s.close()
answers = out.count(b"HTTP/1.1 ")
print("%d answers: %s" % (answers, [m.decode() for m in re.findall(rb"HTTP/1\.1 \d+ [^\r]*", out)]))
if answers > 1 and b'"role": "customer"' in out:
    h.fail("the request hidden after the chunked body was served on the same connection")
print("ok")
