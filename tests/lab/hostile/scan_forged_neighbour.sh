#!/bin/bash
# Hostile review (false positive on a neighbour): the agent attributes a
# conntrack flow to the VPS owning the flow's *original source address*
# (flow_vps), wherever the packet came from.  A host on the internet forges
# TCP SYNs "from" vps-202's address to closed ports of the attacker's own
# vps-101 (which answer RST; absent hosts behind the uplink do as well); the hypervisor forwards them
# (no reverse-path filter on its uplink, as here: rp_filter=0, asymmetric
# routing) and conntrack reports flows "opened by vps-202" that fail.  Six
# forged packets make innocent vps-202 a FAST scanner: provider A filters it
# outbound for an hour, and again with a longer step each time.
# Usage: scan_forged_neighbour.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_PREFIX=${LAB_PREFIX:-pch9} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
. "$here/scanlab.sh"
sl_up "$1" "$2"
check "(control: vps-202 reaches the web)" lab_exec vps202 curl -sf --max-time 3 "http://$LAB_INET_V4/"
lab_exec inet "$PY" -c '
import sys
from scapy.all import IP, TCP, send
send([IP(src=sys.argv[1], dst=sys.argv[2]) / TCP(sport=41000 + i, dport=1000 + i, flags="S") for i in range(12)], verbose=False)
' "$VPS202_V4" "$VPS101_V4"
wait_for 5 filtered "$VPS202_IF"
sleep 1
echo "     vps-202 incidents: $(sql "SELECT kind || ' ' || evidence FROM incident WHERE vps_id='vps-202'")"
check "forged packets from the internet make no incident for vps-202" test "$(incidents vps-202 scan)" = 0
check_not "... and vps-202 is not filtered" filtered "$VPS202_IF"
check "vps-202 still reaches a new host" lab_exec vps202 curl -sf --max-time 3 "http://192.0.2.11/"
lab_summary
