#!/bin/bash
# Hostile review (bridged sites, @filtered_rate; a false positive for the
# customer): "Whole-VPS filters never cut neighbour discovery or DHCP
# towards the provider's router ... a port filtered whole outbound sends at
# most 20 frames a second" (docs/DATAPLANE.md).  The meter is in the bridge
# table's forward hook (`enforce` -> `filters`), and the bridge runs that
# hook once for every port it floods a frame out of: a broadcast or
# multicast frame (ARP request, DHCP discover/rebind, neighbour
# solicitation, when no MLD querier prunes it) takes one token per port of
# the bridge, not one.  With 20/s and a burst of 40 a segment of more than
# 40 ports (a hypervisor with 45 VPSes on one bridge) lets a filtered VPS's
# broadcast out of only the first 40 ports the bridge walks: the newest
# ports first (br_add_if puts a port at the head of the list), the
# uplink, enslaved at boot, last.  So the provider's router never gets a
# single ARP request, DHCP discover or rebind from a VPS that is filtered
# whole outbound, even at one frame a second: once its neighbour entry for
# the router expires, the VPS's inbound service (which an outbound filter
# is meant to spare: TCP towards it survives, conntrack.c `passes`) goes
# down, and a lease that lapses during the filter is not renewed.
# Goal under test: a VPS filtered whole outbound still gets its ARP
# requests and DHCP discovers, at 2 a second, to the provider's router,
# whatever the number of ports of the bridge.
# Measured (this review, 3 Dec 2026, plain build): the lab's bridge (3 VPS
# ports + uplink): 10 of 10 reach the router; 45 more ports on br0 (49):
# 0 of 10.
# Fixed: the meter is per (port in, port out), so each neighbour and the
# router get their own 20 a second (prerouting would meter the kept
# inbound sessions' frames too: only the forward hook knows a flow is
# established): 10 of 10 on 49 ports.
# Usage: bridged_filtered_rate_clones.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_PREFIX=${LAB_PREFIX:-pchrrc} LAB_QUIET=1 LAB_TOPOLOGY=bridged
. "$lab/lab.sh"
. "$lab/common.sh"
. "$here/scanlab.sh"
sl_up "$1" "$2"
# say N: vps-101 sends N ARP requests (who-has its gateway) and N DHCP
# discovers, 2 frames a second; prints how many of them reached the router
say() {
        local cap n
        cap=$(lab_capture inet eth0 "say$1" "ether src $VPS101_MAC and (arp or udp dst port 67)") || exit 1
        lab_exec vps101 "$PY" - "$here" "$1" "$VPS101_MAC" "$VPS101_V4" "$LAB_GW_V4" <<'PYEOF'
import struct, sys, time
sys.path.insert(0, sys.argv[1])
from frames import mac, ipv4, udp, arp_request, eth0
n, me, src, gw = int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
arp = arp_request(me, src, gw)
bootp = struct.pack("!BBBBIHH", 1, 1, 6, 0, 0x12345678, 0, 0x8000) + b"\0" * 16 + mac(me) + b"\0" * 10 + b"\0" * 192 + bytes([99, 130, 83, 99, 53, 1, 1, 255])
dhcp = mac("ff:ff:ff:ff:ff:ff") + mac(me) + b"\x08\x00" + ipv4("0.0.0.0", "255.255.255.255", 17, udp(68, 67, bootp))
s = eth0()
for _ in range(n):
    s.send(arp); time.sleep(0.25)
    s.send(dhcp); time.sleep(0.25)
PYEOF
        capture_stop "$cap" 0.5
        n=$(tcpdump -r "$LAB_DIR/say$1.pcap" -nn 2>/dev/null | wc -l)
        echo "$n"
}

echo "# vps-101 is filtered whole outbound"
pc filter place vps-101 --all --by abuse --reason "lab: flood" --until +1h >/dev/null 2>&1
check "vps-101 is filtered outbound" wait_for 6 filtered "$VPS101_IF"
sleep 2
got=$(say 5)
echo "# the lab's bridge ($(ip -n "$LAB_HV" -o link show master br0 | wc -l) ports): 10 frames at 2/s, the router got $got"
check "(control: a small bridge: the filtered VPS's ARP and DHCP reach the router: $got of 10)" test "$got" -ge 9

echo "# 45 more ports on the bridge (other VPSes' taps)"
for i in $(seq 1 45); do
        ip -n "$LAB_HV" link add "pcx$i" type veth peer name "pcy$i"
        ip netns exec "$LAB_HV" sysctl -qw "net.ipv6.conf.pcx$i.disable_ipv6=1" "net.ipv6.conf.pcy$i.disable_ipv6=1"
        ip -n "$LAB_HV" link set "pcx$i" master br0
        ip -n "$LAB_HV" link set "pcx$i" up
        ip -n "$LAB_HV" link set "pcy$i" up
done
sleep 3
got=$(say 5)
echo "# the bridge with $(ip -n "$LAB_HV" -o link show master br0 | wc -l) ports: 10 frames at 2/s, the router got $got"
check "the filtered VPS's ARP and DHCP still reach the provider's router at 2 frames/s ($got of 10)" test "$got" -ge 9
lab_summary
