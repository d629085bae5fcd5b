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
# Seen before the fix (LAB_TOPOLOGY=bridged, LAB_PREFIX=pchr): vps-201's ARP
# reply made incident #1 (arp-claims-foreign-address) and a suspension
# 13.1 ms later; its echo reply from 203.0.113.77 arrived within those
# 13 ms, "its 2nd kind of spoofing": terminated, vps.terminated emailed to
# its owner (and, with a webhook, sent to billing).  vps-202: no incident.
# The broadcast ARP request alone suspended every such VPS of the segment.
# Now (nft_ruleset.c, bridge_answers): the bridge table remembers what a
# port was sent for an address it does not own, and the VPS's answers
# (the ARP reply, the echo reply and TCP reset from 203.0.113.77, its ARP
# request from 203.0.113.77 for the next hop) are dropped and counted in
# @spoof_answer, with no finding.  Still incidents: an answer that opens
# something (a SYN from 203.0.113.77 after the echo request) and a
# reply-shaped frame that answers nothing (an unsolicited ARP reply).
# At a routed site (LAB_TOPOLOGY=routed) the neighbour's frames never reach
# vps-201 (the hypervisor routes only a VPS's own addresses to it): no
# answer, no incident; the claims are incidents there too.
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_PREFIX=${LAB_PREFIX:-pchr} LAB_QUIET=1 LAB_TOPOLOGY=${LAB_TOPOLOGY:-bridged}
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

bridged() { [ "$LAB_TOPOLOGY" = bridged ]; }
answers() { if bridged; then spoof_count "$VPS201_IF" spoof_answer bridge; else echo 0; fi; }
incidents() { sql "SELECT count(*) FROM incident WHERE vps_id='$1'"; }
incidents_are() { [ "$(incidents "$1")" = "$2" ]; } # VPS N (for wait_for: asks again each time)
# vps-202's frames, from its own MAC and address: "arp" a broadcast who-has
# 203.0.113.77, "echo" and "syn" (to port 80) to it at vps-201's MAC (at a
# routed site: at its gateway's).  Prints what was answered.
neighbour_asks() {
        lab_exec vps202 $PY -c '
import sys
from scapy.all import Ether, ARP, IP, ICMP, TCP, srp1, get_if_hwaddr, getmacbyip, conf
conf.verb = 0
me, ip, dst = get_if_hwaddr("eth0"), sys.argv[1], sys.argv[2] or getmacbyip(sys.argv[3])
frames = {"arp": Ether(src=me, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=me, psrc=ip, pdst="203.0.113.77"),
          "echo": Ether(src=me, dst=dst) / IP(src=ip, dst="203.0.113.77") / ICMP(id=77),
          "syn": Ether(src=me, dst=dst) / IP(src=ip, dst="203.0.113.77") / TCP(sport=47700, dport=80, flags="S")}
for what in sys.argv[4:]:
    print(what, "answered" if srp1(frames[what], iface="eth0", timeout=1) is not None else "unanswered")
' "$VPS202_V4" "${VPS201_MAC:-}" "$LAB_GW_V4" "$@" 2>/dev/null
}

echoes() { lab_exec vps201 nstat -az IcmpInEchos | awk '$1 == "IcmpInEchos" { print $2 }'; }

echo "# vps-202: a broadcast ARP request for 203.0.113.77, an echo request and a SYN to it, from its own MAC and address"
e0=$(echoes)
seen=$(neighbour_asks arp echo syn)
e1=$(echoes)
echo "$seen" | sed 's/^/     /'
sleep 1
echo "     incidents: $(sql "SELECT vps_id || ':' || kind FROM incident" | tr '\n' ' ')"
echo "     vps-201: $(state vps-201); vps-202: $(state vps-202); answers dropped at vps-201's port: $(answers)"
sed -n 's/^portcullisd: //p' "$LAB_DIR/log/portcullisd.log" | grep -i "spoof\|terminat\|source\|arp" | sed 's/^/     /' | head -5
check "vps-202 sent nothing forged: no incident of vps-202" test "$(incidents vps-202)" = 0
check "vps-201, which forged nothing, has no incident" test "$(incidents vps-201)" = 0
check_not "... is not terminated" test "$(state vps-201)" = terminated
check_not "... nor suspended in the kernel" suspended "$VPS201_IF" "$(bridged && echo bridge || echo inet)"
check "... and still reaches the web" lab_exec vps201 curl -sf --max-time 3 "http://$LAB_INET_V4/"
check "the ARP reply for 203.0.113.77 never reached vps-202" grep -qx "arp unanswered" <<<"$seen"
if bridged; then
        check "vps-201 received the echo request ($e0 -> $e1 echo requests)" test "$e1" -gt "$e0"
        # anti-spoofing still holds: vps-201's claims never reached vps-202
        check "... its echo reply from 203.0.113.77 never reached vps-202" grep -qx "echo unanswered" <<<"$seen"
        check "... nor its TCP reset" grep -qx "syn unanswered" <<<"$seen"
        n1=$(answers)
        check "vps-201's answers were dropped and counted at its port (ARP reply, echo reply, reset: $n1)" test "$n1" -ge 3
        # Having forgotten vps-202 (and its router), vps-201 answers an echo
        # request that came without an ARP request by first asking for the
        # next hop, from 203.0.113.77 (arp_announce 0: the packet's source)
        lab_exec vps201 ip neigh flush dev eth0
        seen=$(neighbour_asks echo)
        sleep 1
        n2=$(answers)
        echo "     $seen; answers dropped at vps-201's port: $n2"
        check "an echo request alone: vps-201's ARP request from 203.0.113.77 and echo reply dropped ($n1 -> $n2)" test "$n2" -ge $((n1 + 2))
        check "... and no incident" test "$(sql 'SELECT count(*) FROM incident')" = 0
else
        # the hypervisor routes only vps-201's own addresses to it
        check "(routed) vps-201 never received the echo request for 203.0.113.77 ($e0 -> $e1)" test "$e1" = "$e0"
fi

echo "# what stays spoofing: claims, even right after a neighbour's question"
# vps-201 (now the spoofer, vps-202 its accomplice who just asked): a SYN
# from 203.0.113.77 is no answer to an echo request
neighbour_asks echo >/dev/null
lab_exec vps201 $PY -c '
from scapy.all import IP, TCP, send, conf
conf.verb = 0
send(IP(src="203.0.113.77", dst="'"$VPS202_V4"'") / TCP(sport=80, dport=47701, flags="S"))
' 2>/dev/null
wait_for 3 incidents_are vps-201 1
check "a SYN from 203.0.113.77 right after the echo request: an incident of vps-201" test "$(incidents vps-201)" = 1
check "... ipv4-source" grep -q '"kind":"ipv4-source"' <<<"$(sql "SELECT evidence FROM incident WHERE vps_id='vps-201'")"
# vps-202: a reply that answers no request (ARP cache poisoning of its
# neighbour), to vps-201's MAC (routed: the gateway's)
lab_exec vps202 $PY -c '
import sys
from scapy.all import Ether, ARP, sendp, get_if_hwaddr, getmacbyip, conf
conf.verb = 0
me, dst = get_if_hwaddr("eth0"), sys.argv[1] or getmacbyip(sys.argv[2])
sendp(Ether(src=me, dst=dst) / ARP(op=2, hwsrc=me, psrc="203.0.113.78", hwdst=dst, pdst=sys.argv[3]), iface="eth0")
' "${VPS201_MAC:-}" "$LAB_GW_V4" "$VPS201_V4" 2>/dev/null
if bridged; then
        wait_for 3 incidents_are vps-202 1
        check "an unsolicited ARP reply claiming 203.0.113.78: an incident of vps-202" test "$(incidents vps-202)" = 1
        check "... arp-claims-foreign-address" grep -q '"kind":"arp-claims-foreign-address"' <<<"$(sql "SELECT evidence FROM incident WHERE vps_id='vps-202'")"
else
        sleep 1
        check "(routed: ARP goes to the hypervisor only, unchecked) no incident of vps-202" test "$(incidents vps-202)" = 0
fi
lab_summary
