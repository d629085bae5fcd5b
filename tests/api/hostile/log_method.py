#!/usr/bin/env python3
"""An unauthenticated client writes terminal escapes into apid's log.

on_request (src/api/server.c) escapes the path (pc_escape, PC_ESCAPE_LOG)
but prints the method as sent: libmicrohttpd takes any bytes but space and
CR/LF as a method, so a method of "ESC[2K CR POST ESC[C/v1/tokens ESC[C201 ESC[Cby=t-admin
ESC[8m" shows, on the terminal of whoever tails the log (a file, or the
journal's raw output), as "POST /v1/tokens 201 by=t-admin" -- a token
minted by the admin -- over the real line.

Exits 1 while a raw ESC byte from a request line reaches the log; 0 once
the method is escaped (or refused) like the path."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

h = harness.Apid()
s = socket.create_connection(("127.0.0.1", h.port), timeout=5)
# ESC[2K CR: the line is cleared; ESC[C (cursor right) looks like a space;
# ESC[8m hides the rest of the line.
s.sendall(b"\x1b[2K\rPOST\x1b[C/v1/tokens\x1b[C201\x1b[Cby=t-admin\x1b[8m /v1/whoami HTTP/1.1\r\n"
          b"Host: x\r\nConnection: close\r\n\r\n")
print("answer: %r" % s.recv(100))
s.close()
time.sleep(0.3)
log = open(h.log, "rb").read()
line = [ln for ln in log.split(b"\n") if b"whoami" in ln]
print("log line: %r" % (line[-1] if line else None))
if b"\x1b" in log:
    h.fail("a client's ESC bytes reached apid's log unescaped")
print("ok")
