#!/bin/bash
# Hole: a reload (SIGHUP, `reload` on the control socket) read the
# configuration and the database's policy on the agent's loop: with the
# database server hung (SIGSTOP: connections accepted, nothing answered),
# the loop waited for the new connection's bound (5 s) and nothing else
# ran meanwhile: the control socket dead, the kernel's events unread.
# Exits 1 while the hole is open: `status` does not answer within 1 s
# while the reload waits, or the reload never ends.
. "$(dirname "$0")/lib.sh"
fh_one_vps
sleep 1
fh_pg_freeze
kill -HUP "${AGENT[1]}"
sleep 0.3 # the reload is loading
t0=$(lab_now_ms)
st="does not answer"
timeout 3 ip netns exec "$(ns hv1)" "$PC_BIN" -c "$LAB_DIR/hv1.yaml" status >/dev/null 2>&1 && st=answers
took=$(($(lab_now_ms) - t0))
echo "a reload waiting for a hung database: the control socket $st (in $took ms)"
fh_pg_thaw
wait_for 15 grep -q "Reload\(ed\| refused\)" "$LAB_DIR/log/portcullisd-hv1.log" || { echo "HOLE: the reload never ended"; exit 1; }
grep "Reload\(ed\| refused\)" "$LAB_DIR/log/portcullisd-hv1.log" | tail -1
if [ "$st" != answers ] || [ "$took" -gt 1000 ]; then
        echo "HOLE: a reload waiting for a hung database held the agent's loop"
        exit 1
fi
echo "HELD: the agent answered in $took ms while its reload waited for the database"
exit 0
