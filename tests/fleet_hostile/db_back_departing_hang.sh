#!/bin/bash
# Hole (issue 14, "libpq calls never block the enforcement loop"): while
# the agent runs on its snapshot, a thread waits for the database and
# loads it; the loop then takes the load (agent_db_back), and read there,
# one statement each, the VPSes it keeps for a VM that has not left yet
# (moved to another host, its interface still here).  A server that hangs
# at that moment held the loop for the statement's bound (3 s) per such
# VPS: the control socket dead, the kernel's events unread.  Here vps-m
# moved to hv2, its VM still on hv1; hv1's agent restarts during an outage
# (on its snapshot, vps-m kept), the database comes back, gdb stops the
# agent at the read of vps-m (pc_store_vps_fetch), the server is frozen
# (SIGSTOP) and the agent let go on; `status` is asked 12 times over 4 s.
# Exits 1 while the hole is open: an answer over 500 ms, or vps-m (its
# VM still on hv1) not kept on vm1, filtered, once the database answers
# again (the loop's read, given up, let it go).  Before the fix: 3,095 ms,
# and let go; after: 45-48 ms, kept.
. "$(dirname "$0")/lib.sh"
command -v gdb >/dev/null || { echo "SETUP no gdb"; exit 2; }
fh_migrated_vps
sleep 2.5 # the snapshot is written at most every 2 s
blocked m 8080 || { echo "SETUP vps-m reaches 8080 while its VM is on hv1"; exit 2; }
# The database goes away; hv1's agent restarts and runs on its snapshot.
"$FH_SRC/tests/pg/cluster.sh" halt "$LAB_DIR/pg" >/dev/null || { echo "SETUP halt"; exit 2; }
kill "${AGENT[1]}"; wait_for 5 sh -c "! kill -0 ${AGENT[1]}"
agent_up 1 || { echo "SETUP the agent does not start on its snapshot"; exit 2; }
policy() { pc_on 1 --json status 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("policy"))'; }
policy_is() { [ "$(policy)" = "$1" ]; }
[ "$(policy)" = snapshot ] || { echo "SETUP hv1 does not run on its snapshot ($(policy))"; exit 2; }
blocked m 8080 || { echo "SETUP the snapshot let vps-m out"; exit 2; }
# gdb stops the agent at the read of vps-m and holds it until the server
# is frozen; then lets it go on, detached.
cat >"$LAB_DIR/gdb.cmds" <<EOF
set pagination off
set confirm off
$(fh_hold_at_fetch_cmds)
continue
EOF
timeout 40 gdb -q -nx -batch -p "${AGENT[1]}" -x "$LAB_DIR/gdb.cmds" >"$LAB_DIR/gdb.log" 2>&1 &
gdbpid=$!
# (A gdb still attached lets go of the agent, or is ended: the set-up failed.)
trap 'touch "$LAB_DIR/frozen"; sleep 0.3; kill $gdbpid 2>/dev/null; fh_pg_thaw; fh_cleanup' EXIT
wait_for 10 grep -q "Breakpoint 1 at" "$LAB_DIR/gdb.log" || { echo "SETUP gdb"; cat "$LAB_DIR/gdb.log"; exit 2; }
sleep 0.5
"$FH_SRC/tests/pg/cluster.sh" resume "$LAB_DIR/pg" >/dev/null || { echo "SETUP resume"; exit 2; }
wait_for 15 test -e "$LAB_DIR/fetch-hit" || { echo "SETUP the agent never read vps-m"; cat "$LAB_DIR/gdb.log"; exit 2; }
for p in $(fh_pg_pids); do kill -STOP "$p"; done
touch "$LAB_DIR/frozen"
fh_status_probe 12 0.3
worst=$FH_WORST slow=$FH_SLOW
echo "the server hung as the agent read vps-m to keep it: the control socket's slowest answer of 12 took $worst ms ($slow over 500 ms)"
fh_pg_thaw
wait_for 15 policy_is database || { echo "HOLE: hv1 does not take the database back ($(policy))"; exit 1; }
sleep 0.5
grep "The database answers" "$LAB_DIR/log/portcullisd-hv1.log" | tail -1
kept=held
blocked m 8080 && in_table 1 vm1 || kept=out
echo "the database answers again: vps-m on hv1 $([ $kept = held ] && echo "still kept on vm1, filtered" || echo "NOT KEPT on vm1 (or let out of its filter)")"
if [ "$slow" != 0 ]; then
        echo "HOLE: the agent's loop waited for the hung database while it read a departing VPS ($worst ms)"
        exit 1
fi
[ $kept = held ] || { echo "HOLE: vps-m, its VM still on hv1, is not kept there after the database's return"; exit 1; }
echo "HELD: the loop answered within $worst ms while the server hung at the read; vps-m kept filtered"
exit 0
