#!/bin/bash
# Hole: a reload's take waited on the loop for the database thread's
# queue to empty (its jobs ran under the config the take replaces): with
# the server hung after the reload had loaded, each queued statement held
# the loop up to the store's bound (3 s), the control socket dead and the
# kernel's events unread meanwhile.  gdb (non-stop) holds the reload
# thread after its load; the server is frozen and three `sync` requests
# queue statements; the load is let go.  Exits 1 while the hole is open:
# `status` does not answer within 500 ms during the take, or the reload
# never ends.
. "$(dirname "$0")/lib.sh"
fh_one_vps 10
sleep 2
fh_hold_reload
fh_pg_freeze
for _ in 1 2 3; do
        echo "sync vps-s" | timeout 20 ip netns exec "$(ns hv1)" socat -t 20 - "UNIX-CONNECT:$LAB_DIR/hv1.sock" \
                >/dev/null 2>&1 &
done
sleep 0.5
q=$(echo status | timeout 3 ip netns exec "$(ns hv1)" socat -t 3 - "UNIX-CONNECT:$LAB_DIR/hv1.sock" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["database_thread"]["queued"])' 2>/dev/null)
echo "the reload thread is held after its load; the server frozen; ${q:-?} statements queued"
[ "${q:-0}" -ge 3 ] || { echo "SETUP the syncs did not queue"; exit 2; }
fh_release_reload
fh_status_probe 30 0.05
worst=$FH_WORST slow=$FH_SLOW
echo "status asked 30 times through the take: the slowest answer in $worst ms ($slow over 500 ms)"
fh_pg_thaw
wait_for 20 grep -q "Reload\(ed\| refused\)" "$LAB_DIR/log/portcullisd-hv1.log" || { echo "HOLE: the reload never ended"; exit 1; }
grep "Reload\(ed\| refused\)" "$LAB_DIR/log/portcullisd-hv1.log" | tail -1
if [ "$slow" != 0 ]; then
        echo "HOLE: the take waited on the loop for statements queued before it"
        exit 1
fi
grep -q "Reloaded" "$LAB_DIR/log/portcullisd-hv1.log" || { echo "HOLE: the reload was refused"; exit 1; }
echo "HELD: the agent answered within $worst ms while its reload's take waited for the database thread"
exit 0
