#!/bin/bash
# Hostile review (scan containment at bridged sites): multicast and
# broadcast destinations are "no contacts", in the kernel (scan_contain
# returns for 224.0.0.0/4, 255.255.255.255, ff00::/8) and in the detector
# (scan.c to_group), because "nobody answers those flows".  But every host
# is a member of the all-hosts groups (224.0.0.1, ff02::1), and a UDP
# socket bound to the wildcard address (0.0.0.0:PORT or [::]:PORT: chrony,
# dnsmasq, snmpd, memcached, SSDP/WS-Discovery daemons, game servers...)
# receives a datagram sent to that group on its port, and answers it from
# its own unicast address.  A bridge with multicast snooping off (or any
# bridge, for link-local groups) floods the group to every port: one
# datagram per port reaches every neighbour on the segment at once.  A
# VPS sweeps all UDP ports of all its bridge neighbours, uncontained and
# unseen, and learns which services each one runs from their answers
# (a router never forwards these, so at a routed site nothing reaches
# anyone).
# Goal under test: at most 10 distinct probes of a sweep reach a
# neighbour, whatever destination address carries them (as for the
# unicast sweep of the same ports, the control).
# Seen before the fix (the hostile review): udp/1-1024 (but DHCP's) of 224.0.0.1
# and of ff02::1 from vps-101: 1020 of 1020 probes reached vps-202 each
# time, and vps-101 mapped its 5 services in range (53, 123, 161, 389,
# 623), over IPv6 the router's udp/500 too; never held, no incident.
# Control, the same sweep of vps-202's unicast address: 9 probes reached it.
# Fixed: only the link's own services (DHCP, NetBIOS, SSDP, WS-Discovery,
# mDNS, LLMNR ports; IGMP) at a multicast or broadcast address are no
# contacts (pc_scan_link_service, the kernel's scan_contain the same).
# Usage: bridged_multicast_sweep.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_PREFIX=${LAB_PREFIX:-pchrms} LAB_QUIET=1 LAB_TOPOLOGY=bridged
. "$lab/lab.sh"
. "$lab/common.sh"
. "$here/scanlab.sh"
sl_up "$1" "$2"
SERVICES="53 123 161 389 623 1900 3702 5060 11211 27015"
# vps-202, the neighbour: UDP services on the wildcard addresses (0.0.0.0
# and [::]: a dual-stack socket is not given IPv4 multicast)
lab_bg udpsvc vps202 "$PY" -c '
import select, socket, sys
socks = []
for p in map(int, sys.argv[1:]):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(("::", p))
    socks.append(s)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", p))
    socks.append(s)
while True:
    for s in select.select(socks, [], [])[0]:
        data, addr = s.recvfrom(2048)
        s.sendto(b"service on port %d" % s.getsockname()[1], addr)
' $SERVICES >/dev/null
sleep 0.5
sweep() { # GROUP_OR_ADDR: udp/1-1024 from vps-101 (port 40000), the answers counted;
        # not DHCP's ports (a datagram to 68 or 546 is a rogue DHCP server's:
        # the bridge table rightly suspends for that)
        lab_exec vps101 "$PY" -c '
import socket, sys, time
dst = sys.argv[1]
v6 = ":" in dst
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("::" if v6 else "0.0.0.0", 40000))
s.settimeout(0.001)
target = (dst, 0, 0, socket.if_nametoindex("eth0")) if v6 else (dst, 0)
seen = set()
def drain():
    try:
        while True:
            d, a = s.recvfrom(2048)
            seen.add((a[0], a[1]))
    except (socket.timeout, BlockingIOError):
        pass
for p in range(1, 1025):
    if p in (67, 68, 546, 547):
        continue
    try:
        s.sendto(b"probe", target[:1] + (p,) + target[2:])
    except OSError:
        pass
    time.sleep(0.004)
    drain()
end = time.time() + 2
while time.time() < end:
    drain()
print(" ".join("%s:%d" % a for a in sorted(seen)))
' "$1"
}
reached() { tcpdump -r "$1" -nn 2>/dev/null | awk '{ print $5 }' | sed 's/.*\.//; s/:$//' | sort -u | wc -l; }

for grp in 224.0.0.1 ff02::1; do
        echo "# vps-101 sweeps udp/1-1024 of $grp (all hosts on its segment)"
        cap=$(lab_capture vps202 eth0 "m$grp" "udp and dst port not 40000 and (src host $VPS101_V4 or src host $VPS101_V6 or ip6 src net fe80::/10)") || exit 1
        ans=$(sweep "$grp")
        capture_stop "$cap" 1
        r=$(reached "$LAB_DIR/m$grp.pcap")
        n=$(wc -w <<<"$ans")
        echo "     $r distinct probes reached vps-202; $n services answered: $ans"
        check "$grp: at most 10 distinct probes reached the neighbour ($r)" test "$r" -le 10
done
echo "     vps-101 held: $(held "$VPS101_IF" && echo yes || echo no); scan incidents: $(incidents vps-101 scan)"

echo "# control: vps-101 sweeps the same ports of vps-202's own address"
cap=$(lab_capture vps202 eth0 control "udp and src host $VPS101_V4 and dst port not 40000") || exit 1
ans=$(sweep "$VPS202_V4")
capture_stop "$cap" 1
c=$(reached "$LAB_DIR/control.pcap")
echo "     $c distinct probes reached vps-202; $(wc -w <<<"$ans") services answered"
check "(control: the unicast sweep is contained: $c <= 10)" test "$c" -le 10
lab_summary
