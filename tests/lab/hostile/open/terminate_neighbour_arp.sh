#!/bin/bash
# Hostile review (terminate, bridged site): a neighbour gets another VPS
# terminated without forging anything itself.  Linux answers ARP for every
# address of the host on any interface (arp_ignore 0, the weak host
# model), and accepts an IPv4 packet for any of its addresses on any
# interface.  A VPS with a second address on an internal interface -- Docker's
# docker0 (172.17.0.1 on millions of VPSes), a WireGuard or libvirt
# bridge; here 203.0.113.77 on a "docker0" bridge of vps-201 -- therefore
#   - answers "who-has 203.0.113.77" (from any neighbour, a broadcast) with
#     an ARP reply whose sender address is not its own: arp-claims-foreign-
#     address, and
#   - answers an echo request to 203.0.113.77 (sent to its MAC by the
#     neighbour) from 203.0.113.77: ipv4-source.
# Two frames from vps-202, both from its own MAC and address (nothing to
# detect at its port), make vps-201 show two kinds of spoofing in one
# episode, the "trying one protection after another" rule: vps-201 is
# terminated on its first incident, and only an admin's override lifts it.
# With the ARP request broadcast, every such VPS on the segment answers.
# Goal under test: nothing a neighbour sends that is not itself spoofing
# gets another VPS suspended, let alone terminated.
# Seen on main (LAB_TOPOLOGY=bridged, LAB_PREFIX=pchr): vps-201's ARP
# reply made incident #1 (arp-claims-foreign-address) and a suspension
# 13.1 ms later; its echo reply from 203.0.113.77 arrived within those
# 13 ms, "its 2nd kind of spoofing": terminated, vps.terminated emailed to
# its owner (and, with a webhook, sent to billing).  vps-202: no incident.
# The broadcast ARP request alone suspends every such VPS of the segment.
# Usage: terminate_neighbour_arp.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/../..
export LAB_PREFIX=${LAB_PREFIX:-pchr} LAB_QUIET=1 LAB_TOPOLOGY=bridged
. "$lab/lab.sh"
. "$lab/common.sh"
PY=/usr/bin/python3
lab_deps || exit 1
lab_install python3-scapy || exit 1
lab_up --trap || { echo "FAIL lab_up"; exit 1; }
pc_setup "$1" "$2"
DB=$LAB_DIR/portcullis.db
sql() { sqlite3 "$DB" "$1"; }
state() { pc --json vps show "$1" | $PY -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }
# shellcheck disable=SC2046
pc vps add vps-201 --site lenoir --owner ada@example.net $(pc_vps_link VPS201) --by lab >/dev/null 2>&1
# shellcheck disable=SC2046
pc vps add vps-202 --site lenoir --owner mallory@example.net $(pc_vps_link VPS202) --by lab >/dev/null 2>&1
check "agent starts" agent_start
check "lenoir answers spoofing with terminate" grep -q "spoofing: \[.*terminate\]" <(pc config)
# vps-201 runs Docker (or WireGuard, libvirt...): an internal interface
# with an address of its own that is not one of its registered addresses
lab_exec vps201 ip link add docker0 type bridge
lab_exec vps201 ip addr add 203.0.113.77/32 dev docker0
lab_exec vps201 ip link set docker0 up
check "(control) vps-201 reaches the web" lab_exec vps201 curl -sf --max-time 3 "http://$LAB_INET_V4/"
check "(control) ... and vps-202" lab_exec vps202 curl -sf --max-time 3 "http://$LAB_INET_V4/"
check "(control) no incident so far" test "$(sql 'SELECT count(*) FROM incident')" = 0

echo "# vps-202: a broadcast ARP request for 203.0.113.77 and an echo request to it, from its own MAC and address"
lab_exec vps202 $PY -c '
import sys
from scapy.all import Ether, ARP, IP, ICMP, sendp, get_if_hwaddr, conf
conf.verb = 0
me, ip, victim = get_if_hwaddr("eth0"), sys.argv[1], sys.argv[2]
sendp([Ether(src=me, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=me, psrc=ip, pdst="203.0.113.77"),
       Ether(src=me, dst=victim) / IP(src=ip, dst="203.0.113.77") / ICMP()], iface="eth0")
' "$VPS202_V4" "$VPS201_MAC" 2>/dev/null
sleep 2
echo "     incidents: $(sql "SELECT vps_id || ':' || kind FROM incident" | tr '\n' ' ')"
echo "     vps-201: $(state vps-201); vps-202: $(state vps-202)"
sed -n 's/^portcullisd: //p' "$LAB_DIR/log/portcullisd.log" | grep -i "spoof\|terminat\|source\|arp" | sed 's/^/     /' | head -5
check "vps-202 sent nothing forged: no incident of vps-202" test "$(sql "SELECT count(*) FROM incident WHERE vps_id='vps-202'")" = 0
check_not "vps-201, which forged nothing, is not terminated" test "$(state vps-201)" = terminated
check_not "... nor suspended in the kernel" suspended "$VPS201_IF"
check "... and still reaches the web" lab_exec vps201 curl -sf --max-time 3 "http://$LAB_INET_V4/"
lab_summary
