#!/bin/bash
# Probe: the agent dies during an outage while its journal holds a
# kernel-only suspension; it starts again once the database is back.  Its
# start programs the kernel from the database (which does not have the
# suspension yet) before the first feed follow replays the journal: is the
# VPS let out meanwhile?  Exits 1 if vps-s is unsuspended at any moment
# after the restart (polled every ~20 ms), 0 if not.
. "$(dirname "$0")/lib.sh"
fh_one_vps 10s
"$FH_SRC/tests/pg/cluster.sh" halt "$LAB_DIR/pg" >/dev/null || exit 2
ip -n "$(ns s)" addr add 198.51.100.99/32 dev eth0
ip netns exec "$(ns s)" ping -c 2 -i 0.3 -W 1 -I 198.51.100.99 192.0.2.2 >/dev/null 2>&1
susp() { ip netns exec "$(ns hv1)" nft list set inet portcullis suspended 2>/dev/null | grep -q '"vs"'; }
wait_for 5 susp || { echo "SETUP not suspended"; exit 2; }
kill -9 "${AGENT[1]}"; wait_for 5 sh -c "! kill -0 ${AGENT[1]}"
"$FH_SRC/tests/pg/cluster.sh" resume "$LAB_DIR/pg" >/dev/null || exit 2
rm -f "$LAB_DIR/hv1.sock"
AGENT[1]=$(lab_bg "portcullisd-hv1b" hv1 "$PC_AGENT" -c "$LAB_DIR/hv1.yaml" --host hv1)
out=0; t0=$(lab_now_ms)
while [ $(( $(lab_now_ms) - t0 )) -lt 8000 ]; do
        susp || { out=$((out + 1)); [ $out = 1 ] && echo "vps-s unsuspended $(( $(lab_now_ms) - t0 )) ms after the start"; }
        sleep 0.01
done
susp && echo "suspended at the end" || echo "NOT suspended at the end"
[ $out = 0 ] && susp && { echo "HELD: never let out"; exit 0; }
echo "HOLE: vps-s, suspended by the journal, was let out after the restart ($out polls)"
exit 1
