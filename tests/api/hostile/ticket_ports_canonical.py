#!/usr/bin/env python3
"""A customer asks for a port subset of a blocked service: at most 16 ports
or ranges, within 127 bytes as they write it -- and a bare port is tcp's.
The subset is kept as its canonical text ("tcp/6660,tcp/6661,...") in
buffers of 128 bytes (PC_PORTS_TEXT_MAX): 16 bare 4-digit ports, 79 bytes
asked, are 143 canonical, cut to "...,tcp/6884,t"; the ticket is refused
with "the ticket's ports 'tcp/t' is not PROTO/PORT" (a request within
every stated limit, and a message about something the customer never
wrote).  The snapshot writes exception ports through a 128-byte buffer
too (tests/fuzz/corpus/snapshot/body-bare-ports: read, written, not read
back).  Exits 1 while such a request is refused or not kept as asked."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

h = harness.Apid(extra_args=["--rate", "1000", "--burst", "1000"])
tok = h.tok
ports = [str(p) for p in list(range(6660, 6670)) + list(range(6881, 6887))]
asked = ",".join(ports)
want = ",".join("tcp/" + p for p in ports)
st, j, text = h.call("POST", "/v1/tickets", {"vps": "vps-a1", "service": "bittorrent", "ports": asked,
                                             "text": "p2p client"}, token=tok["ann"])
print("ann asks for %d bittorrent ports (%d bytes): %d" % (len(ports), len(asked), st))
if st != 201:
    h.fail("a request of %d ports within the service, %d bytes, refused: %s" % (len(ports), len(asked), text[:200]))
tid = j["id"]
st, j, text = h.call("POST", "/v1/tickets/%d/approve" % tid, {}, token=tok["support"])
print("support approves: %d" % st)
if st != 200:
    h.fail("the approval was refused: " + text[:200])
st, j, text = h.call("GET", "/v1/vps/vps-a1", token=tok["admin"])
got = [e.get("ports") for e in j.get("exceptions", []) if e.get("service") == "bittorrent"]
print("the VPS's bittorrent exception: %r" % got)
if got != [want]:
    h.fail("approved %s, holds %r" % (want, got))
print("ok")
