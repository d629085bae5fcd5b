#!/bin/bash
# Hostile review (bridged sites: scan containment and whole-VPS filters):
# the bridge table contains scans (scan_contain) and applies whole-VPS
# filters (filter_out, through `filtered`) only in `enforce`, its forward
# hook: frames the bridge forwards.  A frame the VPS addresses to the
# hypervisor's own MAC is not forwarded: it goes up to the hypervisor
# (`enforce_input`: mark 0x50430103, the port filters and the policy, but
# no filter_out and no scan_contain), which routes it (forwarding is on
# for its routed sites, docs/DATAPLANE.md "Frames to the hypervisor's own
# MAC") back onto the bridge towards the provider's router; the inet
# table's forward accepts it in `bridged` (mark 0x50430103, a new flow of
# the VPS's own port).  So a customer with root needs one route,
#   ip route add TARGETS via <hypervisor's address> dev eth0 onlink
# to scan without the kernel's hold, and to keep reaching the internet
# once the agent has filtered it for that scan (or for a flood: the same
# filter).  The agent does see the flows (ct mark 0x50430100) and opens
# the incident; only the kernel's answers miss them.
# Goal under test: at most 10 distinct probes of a scanner reach the
# internet whatever next hop on its segment it picks, and an outbound
# filter stops the VPS's new connections to the internet.
# Seen before the fix (the hostile review): control (vps-202, default
# route): 9 of 200 ports out; vps-101 through the hypervisor: 174 of 200
# out, never held; a scan incident and filter_out placed, and vps-101
# still fetched http://192.0.2.2/ through the hypervisor while filtered.
# Fixed: the inet forward hook drops what a VPS port sent up to the
# hypervisor (bridged_forward): the hypervisor is no router for its
# bridged VPSes, either way.
# Usage: bridged_via_hypervisor.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_PREFIX=${LAB_PREFIX:-pchrvh} LAB_QUIET=1 LAB_TOPOLOGY=bridged
. "$lab/lab.sh"
. "$lab/common.sh"
. "$here/scanlab.sh"
sl_up "$1" "$2"
syn_ports() { tcpdump -r "$1" -nn 2>/dev/null | awk '{ print $5 }' | sort -u | wc -l; }
fetch() { lab_exec "$1" curl -s -m 3 -o /dev/null -w '%{http_code}' "http://$2/" 2>/dev/null; }

echo "# vps-101 routes its probes through the hypervisor ($LAB_HV_UPLINK_V4, on br0)"
lab_exec vps101 ip route add "$LAB_INET_V4/32" via "$LAB_HV_UPLINK_V4" dev eth0 onlink
cap=$(lab_capture inet eth0 viahv "src host $VPS101_V4 and tcp[tcpflags] & tcp-syn != 0") || exit 1
lab_exec vps101 timeout 40 nmap -sS -T4 -Pn -n -p 1-200 --max-retries 0 "$LAB_INET_V4" >"$LAB_DIR/log/nmap-viahv.log" 2>&1
capture_stop "$cap" 1
p=$(syn_ports "$LAB_DIR/viahv.pcap")
echo "     $p distinct probes reached the internet; held: $(held "$VPS101_IF" && echo yes || echo no)"
check "through the hypervisor: at most 10 distinct probes reached the internet ($p)" test "$p" -le 10

echo "# the hypervisor routes nothing a bridged VPS's port sends up to it"
v=$(fetch vps101 "$LAB_INET_V4")
d=$(fetch vps101 192.0.2.10)
check "vps-101 fetches by its router (${d:-none})" test "${d:-000}" = 200
check "... but not through the hypervisor (${v:-none})" test "${v:-000}" != 200

echo "# filtered for a scan by its router, vps-101 tries the hypervisor again"
lab_exec vps101 timeout 40 nmap -sS -T4 -Pn -n -p 80 --max-retries 0 192.0.2.128-254 >"$LAB_DIR/log/nmap-scan.log" 2>&1
check "vps-101 is filtered for its scan" wait_for 20 filtered "$VPS101_IF"
d=$(fetch vps101 192.0.2.10)
v=$(fetch vps101 "$LAB_INET_V4")
check "the filter stops vps-101's new connections by its router (${d:-none})" test "${d:-000}" != 200
check "... and through the hypervisor (${v:-none})" test "${v:-000}" != 200
lab_summary
