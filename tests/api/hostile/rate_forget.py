#!/usr/bin/env python3
"""The rate limiter forgets a drained client after 1024 other addresses.

rate_take (src/api/server.c) keys a bucket on the whole client address
(IPv6: all 128 bits) in a table of 1024, and a client it does not know
takes the slot of the one seen longest ago -- with a FULL bucket.  A
client that has spent its burst touches 1024 other addresses (an IPv6
host has 2^64 in its /64; here 127.0.0.0/8 stands in) and comes back with
a full burst: the limit, and the 401 limit on guessing tokens with it, no
longer holds.

--rate 1 --burst 5.  Exits 1 while the drained client gets 4 or more of 5
requests through right after 1100 other addresses sent one each (a
remembered bucket refills ~1 a second); 0 once it stays limited (evict only
full buckets, which hold no state, or put newcomers in a shared overflow
bucket when none is full; key IPv6 on its /64)."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

h = harness.Apid(["--rate", "1", "--burst", "5"])
X = "127.1.0.1"
tok = "pct_" + "A" * 43  # guessing: every answer a 401 unless limited


def burst(n, src):
    return [h.call("GET", "/v1/whoami", token=tok, src=src)[0] for _ in range(n)]


first = burst(7, X)
print("client %s, 7 at once: %s" % (X, first))
if first.count(429) < 1:
    h.fail("the limiter did not limit at all")
t = time.time()
for i in range(1100):
    h.call("GET", "/v1/whoami", token=tok, src="127.2.%d.%d" % (i // 250, 1 + i % 250))
el = time.time() - t
again = burst(5, X)
print("1100 other addresses in %.2fs; then %s, 5 at once: %s" % (el, X, again))
passed = sum(1 for s in again if s != 429)
if el < 3 and passed >= 4:
    h.fail("a drained client got %d of 5 requests through after 1100 other addresses reset its bucket" % passed)
print("ok: %d of 5 through" % passed)
