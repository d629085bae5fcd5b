#!/bin/bash
# Hostile review (scan containment): with the agent stopped (SIGTERM leaves
# the rules in force; the same after a crash, or while it is starved of
# conntrack events), the kernel alone contains scans: hold-after (5) first
# contacts, then a hold of hold-timeout (10 s) whose end refills the budget
# (scan_budget's limit earns 1/s meanwhile, up to its burst of 5).  So an
# unattended scanner gets about 5 probes out every 10 s, forever: no bound.
# Measured: a 127-host connect scan at 4 probes/s for about 32 s.
# Usage: scan_agent_stopped.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_PREFIX=${LAB_PREFIX:-pch9} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
. "$here/scanlab.sh"
sl_up "$1" "$2"
kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null
check "(the agent stopped, its ruleset stays)" nft_hv list set inet portcullis scan_contain
cap=$(lab_capture inet eth0 stopped "src host $VPS101_V4 and tcp[tcpflags] & tcp-syn != 0") || exit 1
t0=$(lab_now_ms)
lab_exec vps101 timeout 90 "$PY" -c '
import socket, time
keep = []
for i in range(128, 255):
    s = socket.socket(); s.setblocking(False)
    s.connect_ex(("192.0.2.%d" % i, 80)); keep.append(s)
    time.sleep(0.25)
' >"$LAB_DIR/log/scanner.log" 2>&1
t1=$(lab_now_ms)
capture_stop "$cap" 0.5
p=$(distinct "$LAB_DIR/stopped.pcap" "src host $VPS101_V4")
echo "     agent stopped: $p distinct probes reached the internet in $((t1 - t0)) ms"
check "agent stopped: at most 10 distinct probes reached the internet ($p)" test "$p" -le 10
lab_summary
