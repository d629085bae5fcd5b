#!/bin/bash
# Hostile review (false positive): Linux traceroute (UDP, the default)
# sends each probe to a new destination port (33434 upwards) of the same
# host.  Every probe is a first contact; the routers on the path answer with
# ICMP time-exceeded, which conntrack files as RELATED and never marks the
# flow as replied, so every probe is a failure.  One traceroute of a host a
# few hops away is a FAST scan finding and provider A filters the whole VPS
# for an hour.  Here the path is hv (hop 1) and inet (hop 2, both answer
# time-exceeded) and the target 192.0.2.200 is silent (a host behind a
# firewall that drops: hops 3..8 time out), 18 probes in all; a real path
# of 10+ routers fails the same way even when the target answers.
# Usage: scan_traceroute_fp.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/../..
export LAB_PREFIX=${LAB_PREFIX:-pch9} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
. "$here/../scanlab.sh"
sl_up "$1" "$2"
ip netns exec "$LAB_INET" sysctl -qw net.ipv4.ip_forward=1 # inet answers time-exceeded as a router

echo "# vps-101: traceroute -n -m 8 192.0.2.200 (UDP, the default)"
lab_exec vps101 timeout 60 traceroute -n -m 8 -w 1 192.0.2.200 >"$LAB_DIR/log/tr.log" 2>&1
sed 's/^/     /' "$LAB_DIR/log/tr.log"
sleep 2
check "one traceroute is no scan incident" test "$(incidents vps-101 scan)" = 0
check_not "... and vps-101 is not filtered" filtered "$VPS101_IF"
check "vps-101 still reaches the web" lab_exec vps101 curl -sf --max-time 3 "http://$LAB_INET_V4/"
lab_summary
