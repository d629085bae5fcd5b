#!/bin/bash
# Hostile review (scan containment): the kernel holds back only echo
# requests among ICMP (scan_contain: `icmp type echo-request goto
# scan_hosts`), and TCP, UDP, SCTP, DCCP, UDP-Lite among protocols.  But
# conntrack opens a NEW flow for ICMP timestamp (13), information (15) and
# address-mask (17) requests too, and a live host answers timestamp
# requests (Linux does by default): `nmap -sn -PP` is a ping sweep that
# learns the same as -PE.  Those flows pass scan_contain untouched; the
# agent's detector does count them (scanned_proto takes any ICMP), so the
# VPS is filtered after 5 failures -- pending-timeout (2 s) after the
# first, by which time a fast sweep has left whole.  And a sweep with an
# IP protocol without ports (nmap -PO: GRE 47, IPIP 4; a live host answers
# protocol-unreachable or, for GRE, often nothing) is neither held nor
# detected (scanned_proto ignores it): it is never filtered.
# Goal under test: at most 10 distinct probes of a host-discovery sweep of
# 127 absent hosts reach the internet, whatever ICMP request or IP
# protocol it uses.
# Seen on main (LAB_PREFIX=pchr): control echo sweep 5 out; timestamp
# sweep at ~50 packets/s (scapy) 67 and 80 of 127 out (two runs) before the filter (one scan
# incident; a faster sender gets all 127 out); GRE sweep 127 of 127 out
# from vps-201, no incident, never filtered.
# Closed: every ICMP request type and every protocol without ports goes
# to scan_hosts (by host), and the detector judges every protocol.
# Usage: scan_icmp_other_requests.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_PREFIX=${LAB_PREFIX:-pchr} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
. "$here/scanlab.sh"
sl_up "$1" "$2"
sweep() { # NS PROTO: one packet to each of 192.0.2.128-254, 200 a second
        lab_exec "$1" "$PY" -c '
import sys, time
from scapy.all import IP, ICMP, GRE, Raw, send, conf
conf.verb = 0
for i in range(128, 255):
    p = IP(dst="192.0.2.%d" % i)
    p = p / ICMP(type=13) if sys.argv[1] == "ts" else p / GRE() / Raw(b"x" * 8)
    send(p)
    time.sleep(0.005)
' "$2" 2>/dev/null
}
echo "# control: an echo-request sweep from vps-202 is held back"
cap=$(lab_capture inet eth0 echo "src host $VPS202_V4 and icmp") || exit 1
lab_exec vps202 "$PY" -c '
import time
from scapy.all import IP, ICMP, send, conf
conf.verb = 0
for i in range(128, 255):
    send(IP(dst="192.0.2.%d" % i) / ICMP(type=8)); time.sleep(0.005)
' 2>/dev/null
capture_stop "$cap" 1
e=$(distinct "$LAB_DIR/echo.pcap" "src host $VPS202_V4")
echo "     $e distinct echo requests reached the internet"
check "(control: the echo sweep is contained: $e <= 10)" test "$e" -le 10

echo "# vps-101: ICMP timestamp-request sweep (nmap -sn -PP) of 127 absent hosts"
cap=$(lab_capture inet eth0 ts "src host $VPS101_V4 and icmp") || exit 1
sweep vps101 ts
capture_stop "$cap" 3
t=$(distinct "$LAB_DIR/ts.pcap" "src host $VPS101_V4")
echo "     $t distinct timestamp requests reached the internet; scan incidents: $(incidents vps-101 scan)"
check "timestamp sweep: at most 10 distinct probes reached the internet ($t)" test "$t" -le 10

echo "# vps-201 (same policy): GRE sweep (nmap -sn -PO47) of 127 absent hosts"
# shellcheck disable=SC2046
pc vps add vps-201 --site lenoir --owner bo@example.net $(pc_vps_link VPS201) --by lab >/dev/null 2>&1
sleep 2 # the agent picks up the new VPS
cap=$(lab_capture inet eth0 gre "src host $VPS201_V4 and ip proto 47") || exit 1
sweep vps201 gre
capture_stop "$cap" 3
g=$(distinct "$LAB_DIR/gre.pcap" "src host $VPS201_V4")
echo "     $g distinct GRE probes reached the internet; incidents of vps-201: $(sql "SELECT count(*) FROM incident WHERE vps_id='vps-201'")"
check "GRE sweep: at most 10 distinct probes reached the internet ($g)" test "$g" -le 10
check "... and vps-201 is filtered" wait_for 5 filtered "$VPS201_IF"
lab_summary
