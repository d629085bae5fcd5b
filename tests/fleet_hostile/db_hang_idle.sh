#!/bin/bash
# Variant of db_hang.sh (hole 10, closed by d82cf64 for the statements that
# go through answer()): the statements the store prepares -- nearly all of
# them, once each has run -- are executed with PQexecPrepared(), which
# waits for the server without bound whatever PQsetnonblocking says.
# db_hang.sh spoofs at once after freezing the server, so the first
# statement is the response's BEGIN (bounded: the session is given up after
# 3 s).  Here the server is frozen and the agent left alone for 2.5 s:
# its periodic pass (attempts-interval 1 s) reads the change feed with a
# prepared SELECT that was prepared long ago, and waits there for ever.
# The VPS then spoofs: never suspended, the control socket dead, as before
# the fix.  Exits 1 while the hole is open.
. "$(dirname "$0")/lib.sh"
fh_one_vps
sleep 2 # a few periodic passes: their statements are prepared on the session
fh_pg_freeze
sleep 2.5 # the agent's periodic pass meets the frozen server first
fh_spoof_timed
took=$FH_TOOK st=$FH_CONTROL
echo "database hung before the spoofing: vps-s suspended ${took:+after $took ms}$([ -n "$took" ] || echo "never (8 s)"); the control socket $st"
fh_pg_thaw
if [ -z "$took" ] || [ "$st" != answers ]; then
        echo "HOLE: a hung database server froze the agent in a prepared statement"
        exit 1
fi
echo "HELD: suspended in $took ms while the server hung"
exit 0
