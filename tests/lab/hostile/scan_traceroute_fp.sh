#!/bin/bash
# Hostile review (false positive, now closed): Linux traceroute (UDP, the
# default) sends each probe to a new destination port (33434 upwards) of
# the same host.  The routers on the path answer with ICMP time-exceeded,
# which conntrack files as RELATED and never as a reply, so each probe was
# a failed first contact and one traceroute of a host a few hops away was a
# FAST scan finding: provider A filtered the whole VPS for an hour.  Now a
# host's traceroute ports are one destination (detect/scan.h), in the
# kernel's containment and in the detector.  Here the path is hv (hop 1)
# and inet (hop 2, both answer time-exceeded) and the target 192.0.2.200 is
# silent (hops 3..8 time out), 18 probes; then a traceroute over IPv6 to a
# host that answers each probe with port-unreachable (which conntrack does
# not report either).  And the exception is no way round containment: a
# UDP sweep of port 33434 over 127 absent hosts is still one contact per
# host, held back and filtered.
# Usage: scan_traceroute_fp.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_PREFIX=${LAB_PREFIX:-pch9} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
. "$here/scanlab.sh"
sl_up "$1" "$2"
ip netns exec "$LAB_INET" sysctl -qw net.ipv4.ip_forward=1 # inet answers time-exceeded as a router

echo "# vps-101: traceroute -n -m 8 192.0.2.200 (UDP, the default)"
lab_exec vps101 timeout 60 traceroute -n -m 8 -w 1 192.0.2.200 >"$LAB_DIR/log/tr.log" 2>&1
sed 's/^/     /' "$LAB_DIR/log/tr.log"
check "the traceroute saw both routers" grep -q "^ 2  192.0.2.2 " "$LAB_DIR/log/tr.log"
echo "# vps-101: traceroute -6 -n $LAB_INET_V6 (answered by port-unreachable)"
lab_exec vps101 timeout 30 traceroute -6 -n -m 8 -w 1 "$LAB_INET_V6" >"$LAB_DIR/log/tr6.log" 2>&1
sed 's/^/     /' "$LAB_DIR/log/tr6.log"
check "the IPv6 traceroute reached its host" grep -q "$LAB_INET_V6  [0-9]" "$LAB_DIR/log/tr6.log"
sleep 2
check "two traceroutes are no scan incident" test "$(incidents vps-101 scan)" = 0
check_not "... and vps-101 is not filtered" filtered "$VPS101_IF"
check "vps-101 still reaches the web" lab_exec vps101 curl -sf --max-time 3 "http://$LAB_INET_V4/"

echo "# vps-202: nmap -sU -p 33434 over 127 absent hosts (traceroute's port, many hosts)"
cap=$(lab_capture inet eth0 trsweep "src host $VPS202_V4 and udp") || exit 1
lab_exec vps202 timeout 10 nmap -sU -T4 -Pn -n -p 33434 --max-retries 0 192.0.2.128-254 >/dev/null 2>&1
capture_stop "$cap" 1
p=$(distinct "$LAB_DIR/trsweep.pcap" "src host $VPS202_V4")
echo "     $p distinct probes reached the internet"
check "the sweep: at most 10 distinct probes reached the internet ($p)" test "$p" -le 10
check "... and vps-202 is filtered" wait_for 5 filtered "$VPS202_IF"
lab_summary
