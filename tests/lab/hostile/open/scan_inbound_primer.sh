#!/bin/bash
# Hostile review (scan containment): a VPS's probe is contained only when it
# opens a new flow (forward chain: `ct state established accept` comes first,
# and scan_contain is jumped to for `iifname @scan_contain` only).  An
# accomplice on the internet forges one datagram "TARGET:161 -> VPS:40000"
# per target (it needs no answer: a spoofing host anywhere).  Conntrack now
# holds a flow whose *reply* direction is the VPS's probe "VPS:40000 ->
# TARGET:161": the probe is "established", never a first contact, never
# held, and the agent ignores the flow (its original source is not a VPS).
# The VPS sweeps 50 hosts' SNMP port with every probe delivered, and the
# targets' answers come back too.  (Control: the same sweep unprimed from
# vps-202 is cut after the budget.)
# Usage: scan_inbound_primer.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/../..
export LAB_PREFIX=${LAB_PREFIX:-pch9} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
. "$here/../scanlab.sh"
sl_up "$1" "$2"
sweep() { # NS SPORT FIRST LAST: one datagram from SPORT to 192.0.2.FIRST..LAST:161
        lab_exec "$1" "$PY" -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
time.sleep(float(sys.argv[4]))
for i in range(int(sys.argv[2]), int(sys.argv[3]) + 1):
    s.sendto(b"\x30\x26probe", ("192.0.2.%d" % i, 161))
    time.sleep(0.02)
' "$2" "$3" "$4" "${5:-0}"
}

echo "# control: vps-202 sweeps 50 hosts' udp/161, unprimed"
cap=$(lab_capture inet eth0 control "src host $VPS202_V4 and udp") || exit 1
sweep vps202 40001 200 249
capture_stop "$cap" 1
c=$(distinct "$LAB_DIR/control.pcap" "src host $VPS202_V4")
echo "     $c distinct probes reached the internet"
check "(control: the unprimed sweep is contained: $c <= 10)" test "$c" -le 10

echo "# vps-101 sweeps 50 hosts' udp/161 after its accomplice primed each flow"
cap=$(lab_capture inet eth0 primed "src host $VPS101_V4 and udp") || exit 1
sweep vps101 40000 128 177 3 &
sp=$!
sleep 1
lab_exec inet "$PY" -c '
import sys
from scapy.all import IP, UDP, Raw, send
pk = [IP(src="192.0.2.%d" % i, dst=sys.argv[1]) / UDP(sport=161, dport=40000) / Raw(b"primer") for i in range(128, 178)]
send(pk, verbose=False)
' "$VPS101_V4"
wait "$sp"
capture_stop "$cap" 1.5
p=$(distinct "$LAB_DIR/primed.pcap" "src host $VPS101_V4")
echo "     $p distinct probes reached the internet"
check "primed sweep: at most 10 distinct probes reached the internet ($p)" test "$p" -le 10
check "primed sweep: vps-101's scan is an incident" test "$(incidents vps-101 scan)" -ge 1
lab_summary
