#!/bin/bash
# Lab scenario (bridged topology): VPSes share one layer-2 segment (a Linux
# bridge in the hypervisor) with the provider's router, and a VPS can only
# speak as itself there: its own source MAC, only IPv4/IPv6/ARP, ARP and
# neighbour advertisements for its own addresses only, no router
# advertisements, no DHCP server replies, its own IP source addresses only.
# Every attack is first run WITHOUT Portcullis (the controls: it works, so
# each assertion below can fail), then with it: dropped (the victim's
# neighbour table, a capture), counted per bridge port in `table bridge
# portcullis`, and each episode suspends the attacker (provider A) and
# queues its owner's email.  Usage: antispoof_bridged.sh BUILD_DIR SOURCE_ROOT
#
#                 pcb-inet  eth0 52:54:00:03:00:01  "the provider's router"
#                   |       198.51.100.1/24  2001:db8:300::1/64  http :80
#                uplink
#   pcb-hv   br0 (no address, no VLAN filtering; portcullisd here)
#          b301          b302                       (bridge ports, no address)
#           |              |
#    pcb-vps301        pcb-vps302        eth0, default via .1 / 2001:db8:300::1
#    52:54:00:03:00:31 52:54:00:03:00:32
#    198.51.100.31/24  198.51.100.32/24
#    2001:db8:300::31  2001:db8:300::32  (one shared /64, on-link)
#
# Built on `lab_up --trap --no-servers --no-vps` (hv, inet, the uplink veth,
# LAB_DIR, lab_bg, and lab_down on every exit); the uplink's and inet's
# addresses are then replaced, and the VPS namespaces ($LAB_PREFIX-vps301,
# -vps302) are added here (lab_down deletes every $LAB_PREFIX-* namespace).
# Registration: each VPS has its IPv4 /32 and its IPv6 /128 in the shared
# /64 (two VPSes cannot register overlapping prefixes), plus its MAC; its
# EUI-64 link-local comes from the MAC.  The spoof episode gap is 1 s (not
# 5 min), so every phase is its own episode: it suspends vps-302, and the
# phase ends by lifting the suspension and waiting for the gap to pass.
set -u
here=$(dirname "$(readlink -f "$0")")
export LAB_PREFIX=${LAB_PREFIX:-pcb} LAB_QUIET=1
. "$here/lab.sh"
. "$here/common.sh"
[ $# -ge 2 ] || { echo "usage: $0 BUILD_DIR SOURCE_ROOT" >&2; exit 2; }

lab_deps || exit 1
lab_install hping3 python3-scapy || exit 1
PY=/usr/bin/python3 # Debian's, which has scapy
T0=$(lab_now_ms)
lab_up --trap --no-servers --no-vps || { echo "FAIL lab_up"; exit 1; }
# A watchdog: the whole run (~40 s) is bounded (TERM runs lab_down through
# the trap; lab_down kills the watchdog, which lives in hv).
lab_bg watchdog hv sh -c "sleep ${PCB_TIMEOUT:-90}; echo 'watchdog: run too long'; kill -TERM $$" >/dev/null

HV=$LAB_HV
INET=$LAB_INET
MAC_INET=52:54:00:03:00:01
MAC301=52:54:00:03:00:31
MAC302=52:54:00:03:00:32
MAC_FORGED=52:54:00:03:00:99
GW4=198.51.100.1
GW6=2001:db8:300::1
V4_301=198.51.100.31
V4_302=198.51.100.32
V6_301=2001:db8:300::31
V6_302=2001:db8:300::32
lla() { # MAC -> its EUI-64 link-local address
	$PY -c '
import ipaddress, sys
b = bytes.fromhex(sys.argv[1].replace(":", ""))
print(ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + bytes([b[0] ^ 2]) + b[1:3] + b"\xff\xfe" + b[3:]))' "$1"
}
LL301=$(lla $MAC301)
LL302=$(lla $MAC302)

# ---- topology ---------------------------------------------------------
build() {
	set -e
	# inet: the provider's router on the shared segment, nothing else
	ip -n "$INET" route del default
	ip -n "$INET" -6 route del default
	ip -n "$INET" addr flush dev eth0 scope global
	ip -n "$INET" link set eth0 down
	ip -n "$INET" link set eth0 address $MAC_INET
	ip -n "$INET" addr add $GW4/24 dev eth0
	ip -n "$INET" addr add $GW6/64 dev eth0 nodad
	# it takes router advertisements (what a rogue RA would abuse) and
	# accepts a neighbour's new MAC at once (no 1 s ARP lock time)
	_lab_sysctl "$INET" net.ipv6.conf.eth0.accept_ra=2 net.ipv6.conf.eth0.autoconf=1 \
		net.ipv4.neigh.eth0.locktime=0
	ip -n "$INET" link set eth0 up
	# hv: a bridge (VLAN filtering off: the kernel default, and this
	# kernel cannot even be told "vlan_filtering 0" without
	# CONFIG_BRIDGE_VLAN_FILTERING), no addresses at all; no multicast snooping (every port
	# gets ND multicast, whatever MLD reports were seen or dropped)
	ip -n "$HV" addr flush dev "$LAB_UPLINK_IF"
	ip -n "$HV" link add br0 type bridge stp_state 0 mcast_snooping 0
	_lab_sysctl "$HV" net.ipv6.conf.br0.disable_ipv6=1
	ip -n "$HV" link set "$LAB_UPLINK_IF" master br0
	ip -n "$HV" link set br0 up
	local name port mac v4 v6 ns
	while read -r name port mac v4 v6; do
		ns=$(lab_ns "$name")
		_lab_ns_create "$ns"
		_lab_sysctl "$ns" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
		ip -n "$HV" link add "$port" type veth peer name eth0 netns "$ns"
		_lab_sysctl "$HV" "net.ipv6.conf.$port.disable_ipv6=1"
		ip -n "$ns" link set eth0 address "$mac"
		_lab_sysctl "$ns" net.ipv6.conf.eth0.accept_ra=0 net.ipv6.conf.eth0.accept_dad=0
		ip -n "$ns" addr add "$v4/24" dev eth0
		ip -n "$ns" addr add "$v6/64" dev eth0 nodad
		ip -n "$ns" link set eth0 up
		ip -n "$ns" route add default via $GW4
		ip -n "$ns" -6 route add default via $GW6
		ip -n "$HV" link set "$port" master br0
		ip -n "$HV" link set "$port" up
	done <<EOF
vps301 b301 $MAC301 $V4_301 $V6_301
vps302 b302 $MAC302 $V4_302 $V6_302
EOF
	mkdir -p "$LAB_DIR/www"
	echo "$LAB_WEB_BODY" >"$LAB_DIR/www/index.html"
	lab_bg http inet $PY -m http.server --bind :: --directory "$LAB_DIR/www" 80 >/dev/null
	set +e
}
(build) # a subshell, for set -e (not in a condition, where it would be ignored)
# shellcheck disable=SC2181
[ $? = 0 ] || { echo "FAIL building the bridged topology"; exit 1; }
lab_wait_port inet 127.0.0.1 80 5 || { echo "FAIL no web server in inet"; exit 1; }
# PCB_BRNF=0|1: bridged IP packets (not) through hv's inet/ip hooks too
# (br_netfilter, per namespace); default: the kernel's default, untouched.
[ -n "${PCB_BRNF:-}" ] && _lab_sysctl "$HV" net.bridge.bridge-nf-call-iptables="$PCB_BRNF" \
	net.bridge.bridge-nf-call-ip6tables="$PCB_BRNF" net.bridge.bridge-nf-call-arptables="$PCB_BRNF"
brnf=$(lab_exec hv cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo absent)
echo "# bridged lab up in $(($(lab_now_ms) - T0)) ms (hv's bridge-nf-call-iptables: $brnf)"

# ---- helpers ----------------------------------------------------------
# scapy in NS: the argument is the body of a script that has every scapy name,
# M301 M302 MF MI (MACs), LL301 LL302, and s(frame, n=2) = sendp on eth0.
scapy_in() {
	lab_exec "$1" timeout 10 $PY -c "
from scapy.all import *
M301, M302, MF, MI = '$MAC301', '$MAC302', '$MAC_FORGED', '$MAC_INET'
LL301, LL302 = '$LL301', '$LL302'
def s(f, n=2):
    sendp(f, iface='eth0', count=n, verbose=0)
$2"
}
# One dynamic set per kind of forged frame, keyed by bridge port, with
# per-element counters (the IP ones are spoof_ipv4/spoof_ipv6 here, not
# spoof4/spoof6 as in the routed `table inet portcullis`).
SETS="spoof_mac spoof_arp spoof_nd spoof_ra spoof_dhcp spoof_ipv4 spoof_ipv6"
ZERO="spoof_mac=0 spoof_arp=0 spoof_nd=0 spoof_ra=0 spoof_dhcp=0 spoof_ipv4=0 spoof_ipv6=0"
spoof_count() { # PORT SET -> packets counted for PORT (0 if none, "?" if no set)
	nft_hv -j list set bridge portcullis "$2" 2>/dev/null | $PY -c '
import json, sys
try:
    doc = json.load(sys.stdin)
except ValueError:
    print("?"); sys.exit()
n = 0
for item in doc["nftables"]:
    for e in item.get("set", {}).get("elem", []):
        e = e.get("elem", e)
        if e.get("val") == sys.argv[1]:
            n = e.get("counter", {}).get("packets", 0)
print(n)' "$1"
}
counters() { # PORT -> every counter of PORT, "set=n set=n ..."
	local s out=
	for s in $SETS; do out+="$s=$(spoof_count "$1" "$s") "; done
	echo "${out% }"
}
counted() { # PORT SET MIN: the counter reached MIN
	local n
	n=$(spoof_count "$1" "$2")
	[ "$n" != "?" ] && [ "$n" -ge "$3" ]
}
suspended() { nft_hv list set bridge portcullis suspended 2>/dev/null | grep -q "\"$1\""; }
not_suspended() { ! suspended "$1"; }
sql() { sqlite3 "$DB" "$1"; }
notifications() { sql "SELECT count(*) FROM notification WHERE vps_id='$1' AND kind='vps.suspended'"; }
neigh_mac() { # NS ADDR -> the MAC NS's neighbour table has for ADDR (or "none")
	local m
	m=$(lab_exec "$1" ip neigh show to "$2" dev eth0 | awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1) }')
	echo "${m:-none}"
}
neigh_is() { [ "$(neigh_mac "$1" "$2")" = "$3" ]; }
cap_start() { # NAME NS FILTER: starts a capture in NS's eth0
	local pid
	pid=$(lab_capture "$2" eth0 "$1" "$3") || return 1
	printf -v "CAP_$1" '%s' "$pid"
}
cap_count() { # NAME [READ_FILTER]: stops capture NAME, prints how many packets it got
	local v="CAP_$1"
	kill "${!v}" 2>/dev/null
	for _ in $(seq 1 40); do _lab_alive "${!v}" || break; sleep 0.025; done
	tcpdump -nn -r "$LAB_DIR/$1.pcap" ${2:+"$2"} 2>/dev/null | wc -l
}
cap_show() { tcpdump -nn -e -r "$LAB_DIR/$1.pcap" 2>/dev/null | head -5 | sed 's/^/       /'; }
inet_ra_taken() { # inet has an address or a route from the rogue RA
	lab_exec inet ip -6 addr show dev eth0 | grep -q 2001:db8:bad: ||
		lab_exec inet ip -6 route show | grep -q "via $LL302"
}
inet_reset() { # forget what the controls taught inet
	lab_exec inet ip -6 addr flush dev eth0 scope global dynamic
	lab_exec inet ip -6 route flush proto ra 2>/dev/null
	lab_exec inet ip -6 route del 2001:db8:bad::/64 dev eth0 2>/dev/null
	lab_exec inet ip neigh flush dev eth0
}
# inet learns vps-301's current MAC for both its addresses (a poisoning can
# only change an entry that exists: Linux does not create one from an
# unsolicited reply or advertisement).
inet_knows_301() {
	lab_exec inet ping -c1 -W2 $V4_301 >/dev/null 2>&1 &&
		lab_exec inet ping -c1 -W2 $V6_301 >/dev/null 2>&1 &&
		neigh_is inet $V4_301 $MAC301 && neigh_is inet $V6_301 $MAC301
}

# The attacks, all from vps302 (each also used by the controls).
attack_mac() { # a forged source MAC; a frame of another ethertype; an 802.1Q-tagged one
	scapy_in vps302 "
s(Ether(src=MF, dst='ff:ff:ff:ff:ff:ff')/IP(src='$V4_302', dst='198.51.100.255')/UDP(sport=4000, dport=9997)/Raw(b'forged-mac'))
s(Ether(src=M302, dst='ff:ff:ff:ff:ff:ff', type=0x88b5)/Raw(b'local-experimental-ethertype' * 2))
s(Ether(src=M302, dst='ff:ff:ff:ff:ff:ff')/Dot1Q(vlan=300)/IP(src='$V4_302', dst='198.51.100.255')/UDP(sport=4000, dport=9996)/Raw(b'tagged'))"
}
attack_arp_reply() { # ARP reply: 198.51.100.31 is at vps302's MAC
	scapy_in vps302 "
s(Ether(src=M302, dst=MI)/ARP(op=2, hwsrc=M302, psrc='$V4_301', hwdst=MI, pdst='$GW4'))"
}
attack_garp() { # gratuitous ARP (request and reply forms) for 198.51.100.31
	scapy_in vps302 "
s(Ether(src=M302, dst='ff:ff:ff:ff:ff:ff')/ARP(op=1, hwsrc=M302, psrc='$V4_301', hwdst='00:00:00:00:00:00', pdst='$V4_301'))
s(Ether(src=M302, dst='ff:ff:ff:ff:ff:ff')/ARP(op=2, hwsrc=M302, psrc='$V4_301', hwdst='ff:ff:ff:ff:ff:ff', pdst='$V4_301'))"
}
attack_na() { # unsolicited NA (override): 2001:db8:300::31 is at vps302's MAC
	scapy_in vps302 "
na = ICMPv6ND_NA(tgt='$V6_301', R=0, S=0, O=1)/ICMPv6NDOptDstLLAddr(lladdr=M302)
s(Ether(src=M302, dst=MI)/IPv6(src=LL302, dst='$GW6', hlim=255)/na)
s(Ether(src=M302, dst='33:33:00:00:00:01')/IPv6(src=LL302, dst='ff02::1', hlim=255)/na)"
}
attack_ra() { # a router advertisement with a SLAAC prefix
	scapy_in vps302 "
s(Ether(src=M302, dst='33:33:00:00:00:01')/IPv6(src=LL302, dst='ff02::1', hlim=255)/ICMPv6ND_RA(routerlifetime=1800)/
  ICMPv6NDOptSrcLLAddr(lladdr=M302)/ICMPv6NDOptPrefixInfo(prefix='2001:db8:bad::', prefixlen=64, L=1, A=1))"
}
attack_dhcp() { # DHCPv4 OFFER (broadcast) and DHCPv6 REPLY, from its own addresses
	scapy_in vps302 "
s(Ether(src=M302, dst='ff:ff:ff:ff:ff:ff')/IP(src='$V4_302', dst='255.255.255.255')/UDP(sport=67, dport=68)/
  BOOTP(op=2, yiaddr='198.51.100.99', chaddr=bytes.fromhex(M301.replace(':', '')), xid=0x301)/
  DHCP(options=[('message-type', 'offer'), ('server_id', '$V4_302'), ('router', '$V4_302'), 'end']))
s(Ether(src=M302, dst=M301)/IPv6(src=LL302, dst=LL301)/UDP(sport=547, dport=546)/
  DHCP6_Reply(trid=0x301)/DHCP6OptServerId(duid=DUID_LL(lladdr=M302)))"
}

# ---- Portcullis config, registration ----------------------------------
pc_setup "$1" "$2"
DB=$LAB_DIR/portcullis.db
# provider A's profile, its proxy connecting from the hypervisor's address
# (a bridged site cannot take the MX's replies to the VPS's own); without
# 'terminate': each spoofing episode below is suspended anew, unsuspended
# in between (detection, not lab/terminate.sh's circumvention rule)
sed -e "s/^profile: lenoir/profile: lenoir-br/" -e "s/^  source: vps/  source: hypervisor/" \
	-e "s/^  spoofing: \[suspend, notify, terminate\]$/  spoofing: [suspend, notify]/" \
	"$PC_ROOT/etc/profiles/lenoir.yaml" >"$LAB_DIR/lenoir-br.yaml"
sed -i -e "s|^  - $PC_ROOT/etc/profiles/blocked-services.yaml|&\n  - $LAB_DIR/lenoir-br.yaml|" \
	-e '/^sites:$/a\  lenoir-br:\n    policy: lenoir-br\n    topology: bridged' \
	-e 's/^\(    episode-gap:\).*/\1 1s/' "$PC_CFG"
if ! grep -q '^    topology: bridged$' "$PC_CFG" || ! grep -q '^    episode-gap: 1s$' "$PC_CFG" ||
	! grep -q '^  spoofing: \[suspend, notify\]$' "$LAB_DIR/lenoir-br.yaml"; then
	echo "FAIL cannot write the lab's config"
	exit 1
fi
check "register vps-301 (site lenoir-br, bridge port b301)" pc vps add vps-301 --site lenoir-br \
	--owner ada@example.net --iface b301 --mac $MAC301 --addr $V4_301 --addr $V6_301/128 --by lab
check "register vps-302 (site lenoir-br, bridge port b302)" pc vps add vps-302 --site lenoir-br \
	--owner eve@example.net --lang it --iface b302 --mac $MAC302 --addr $V4_302 --addr $V6_302/128 --by lab

# ---- controls: without Portcullis every attack works -------------------
echo "# controls, no Portcullis yet: the segment works, and so does every attack"
check "vps301 pings inet, IPv4" lab_exec vps301 ping -c1 -W2 $GW4
check "vps301 pings vps302, IPv6" lab_exec vps301 ping -c1 -W2 $V6_302
check "inet knows vps301's MAC (IPv4, IPv6)" inet_knows_301
cap_start c_mac vps301 "ether src $MAC_FORGED or ether proto 0x88b5 or udp src port 67 or udp src port 547 or vlan"
attack_mac
sleep 0.1
check "control: the forged-MAC, 0x88b5 and VLAN-tagged frames reach vps301" sh -c "
	[ \$(tcpdump -nn -r '$LAB_DIR/c_mac.pcap' 'ether src $MAC_FORGED' 2>/dev/null | wc -l) -ge 2 ] &&
	[ \$(tcpdump -nn -r '$LAB_DIR/c_mac.pcap' 'ether proto 0x88b5' 2>/dev/null | wc -l) -ge 2 ] &&
	[ \$(tcpdump -nn -r '$LAB_DIR/c_mac.pcap' 'vlan 300' 2>/dev/null | wc -l) -ge 2 ]"
attack_arp_reply
check "control: the ARP reply poisons inet (198.51.100.31 -> vps302's MAC)" wait_for 1 neigh_is inet $V4_301 $MAC302
inet_knows_301 >/dev/null 2>&1
attack_garp
check "control: the gratuitous ARP poisons inet" wait_for 1 neigh_is inet $V4_301 $MAC302
inet_knows_301 >/dev/null 2>&1
attack_na
check "control: the NA poisons inet (2001:db8:300::31 -> vps302's MAC)" wait_for 1 neigh_is inet $V6_301 $MAC302
attack_ra
check "control: inet configures an address/route from the rogue RA" wait_for 2 inet_ra_taken
attack_dhcp
sleep 0.2
check "control: vps301 sees the DHCPv4 OFFER and the DHCPv6 REPLY" \
	test "$(cap_count c_mac "udp src port 67 or udp src port 547")" -ge 4
inet_reset
check "inet forgot the rogue RA" sh -c "! { ip netns exec $INET ip -6 addr show dev eth0 | grep -q 2001:db8:bad: ||
	ip netns exec $INET ip -6 route show | grep -q 'via $LL302'; }"

# ---- Portcullis --------------------------------------------------------
check "agent starts" agent_start
bridge_ready() { nft_hv list table bridge portcullis >/dev/null && counted b302 spoof_mac 0; }
if ! wait_for 5 bridge_ready; then
	fail "table bridge portcullis with its counters (e.g. spoof_mac) is programmed"
	nft_hv list tables 2>&1 | sed 's/^/     /'
	tail -5 "$LAB_DIR/log/portcullisd.log" | sed 's/^/     agent: /'
	lab_summary
	exit
fi
ok "table bridge portcullis is programmed"

# phase_begin NAME ... phase_end: vps-301 (the victim) never counted; the
# attacker's episode suspended it within 1 s and queued one email; then
# the suspension is lifted and the 1 s episode gap allowed to pass.
phase_begin() {
	PHASE=$1
	PHASE_NOTES=$(notifications vps-302)
	PHASE_T0=$(lab_now_ms)
	PHASE_FAILS=$LAB_FAIL
	echo "# $PHASE"
}
phase_attack_done() { # the attack's last frame is sent: when is vps-302 suspended?
	PHASE_T1=$(lab_now_ms)
	PHASE_SUSP_MS=-1
	wait_for 1 suspended b302 && PHASE_SUSP_MS=$(($(lab_now_ms) - PHASE_T1))
}
phase_end() {
	local expect_suspend=${1:-1} t
	if [ "$expect_suspend" = 1 ]; then
		if [ "$PHASE_SUSP_MS" -ge 0 ] && suspended b302; then
			ok "the episode suspended vps-302 ($PHASE_SUSP_MS ms after the attack's last frame)"
		else
			fail "the episode suspended vps-302 within 1 s"
		fi
		check "its owner's email is queued" wait_for 1 cmd_is -gt "$PHASE_NOTES" notifications vps-302
	fi
	check "vps-301 (the victim) is never counted, never suspended" sh -c "
		[ '$(counters b301)' = '$ZERO' ] &&
		! ip netns exec $HV nft list set bridge portcullis suspended | grep -q '\"b301\"'"
	if [ "$LAB_FAIL" != "$PHASE_FAILS" ] || [ "${LAB_VERBOSE:-0}" = 1 ]; then
		echo "     b302: $(counters b302)"
		sql "SELECT evidence FROM incident WHERE vps_id='vps-302' ORDER BY id DESC LIMIT 1" 2>/dev/null |
			sed 's/^/     latest incident: /'
		grep -v "^$" "$LAB_DIR/log/portcullisd.log" | tail -3 | sed 's/^/     agent: /'
	fi
	if suspended b302; then
		pc unsuspend vps-302 --by lab --reason "lab: next phase" >/dev/null 2>&1
		wait_for 2 not_suspended b302 || fail "vps-302 could not be unsuspended"
	fi
	# a new episode needs last_seen < now - 1 s in whole seconds
	t=$((PHASE_T1 + 2100 - $(lab_now_ms)))
	[ "$t" -gt 0 ] && sleep "$(printf '%d.%03d' $((t / 1000)) $((t % 1000)))"
}

# 1. legitimate traffic
phase_begin "1. legitimate traffic on the bridge (ARP, ND, ping, http, DHCP discover, DAD)"
check "vps301 pings vps302 (IPv4)" lab_exec vps301 ping -c1 -W2 $V4_302
check "vps301 pings vps302 (IPv6)" lab_exec vps301 ping -c1 -W2 $V6_302
check "vps301 pings inet (IPv4)" lab_exec vps301 ping -c1 -W2 $GW4
check "vps301 pings inet (IPv6)" lab_exec vps301 ping -c1 -W2 $GW6
check "vps302 pings inet (IPv4, IPv6)" sh -c "ip netns exec $(lab_ns vps302) ping -c1 -W2 $GW4 && ip netns exec $(lab_ns vps302) ping -c1 -W2 $GW6"
check "vps301 pings vps302's link-local (EUI-64)" lab_exec vps301 ping -c1 -W2 "$LL302%eth0"
check "vps301 curl http://$GW4/" lab_exec vps301 curl -sf --max-time 3 "http://$GW4/"
check "vps301 curl http://[$GW6]/" lab_exec vps301 curl -sf --max-time 3 "http://[$GW6]/"
check "vps302 curl http://$GW4/" lab_exec vps302 curl -sf --max-time 3 "http://$GW4/"
check "inet knows vps301 (ARP and ND answered through the bridge)" inet_knows_301
# a DHCP DISCOVER from 0.0.0.0, an ARP probe (sender IP 0.0.0.0) and a DAD
# neighbour solicitation from ::, as a booting VPS sends them
cap_start legit inet "ether src $MAC301"
scapy_in vps301 "
s(Ether(src=M301, dst='ff:ff:ff:ff:ff:ff')/IP(src='0.0.0.0', dst='255.255.255.255')/UDP(sport=68, dport=67)/
  BOOTP(chaddr=bytes.fromhex(M301.replace(':', '')), xid=0x3011)/DHCP(options=[('message-type', 'discover'), 'end']))
s(Ether(src=M301, dst='ff:ff:ff:ff:ff:ff')/ARP(op=1, hwsrc=M301, psrc='0.0.0.0', pdst='$V4_301'))
s(Ether(src=M301, dst='33:33:ff:00:00:31')/IPv6(src='::', dst='ff02::1:ff00:31', hlim=255)/ICMPv6ND_NS(tgt='$V6_301'))" >/dev/null 2>&1
sleep 0.2
check "inet got the DHCP DISCOVER from 0.0.0.0" test "$(cap_count legit "udp dst port 67")" -ge 2
check "inet got the ARP probe" test "$(tcpdump -nn -r "$LAB_DIR/legit.pcap" "arp and arp[14:4] = 0" 2>/dev/null | wc -l)" -ge 2
check "inet got the DAD solicitation from ::" test "$(tcpdump -nn -r "$LAB_DIR/legit.pcap" "ip6 src ::" 2>/dev/null | wc -l)" -ge 2
check "nothing counted for vps-302" test "$(counters b302)" = "$ZERO"
check "nobody is suspended" sh -c "! ip netns exec $HV nft list set bridge portcullis suspended | grep -q '\"b30'"
PHASE_T1=$((PHASE_T0 - 3000))
phase_end 0

# 2. forged source MAC, foreign ethertype
phase_begin "2. vps302 sends from a forged MAC, frames of ethertype 0x88b5, 802.1Q-tagged frames"
cap_start p2 vps301 "ether src $MAC_FORGED or ether proto 0x88b5 or vlan"
attack_mac
phase_attack_done
check "counted in spoof_mac (6 frames)" wait_for 1 counted b302 spoof_mac 6
n=$(cap_count p2)
check "vps301 received none of them (capture: $n)" test "$n" = 0
[ "$n" = 0 ] || cap_show p2
phase_end

# 3. ARP reply claiming vps301's address
phase_begin "3. ARP reply: 198.51.100.31 is at vps302's MAC (to inet)"
check "inet maps 198.51.100.31 to vps301's MAC before" inet_knows_301
attack_arp_reply
phase_attack_done
check "counted in spoof_arp" wait_for 1 counted b302 spoof_arp 2
sleep 0.1
check "inet's neighbour table does not point 198.51.100.31 to vps302 (has: $(neigh_mac inet $V4_301))" \
	test "$(neigh_mac inet $V4_301)" != $MAC302
check "inet still reaches vps301" lab_exec inet ping -c1 -W2 $V4_301
phase_end

# 4. gratuitous ARP for vps301's address
phase_begin "4. gratuitous ARP from vps302 for 198.51.100.31 (request and reply forms)"
check "inet maps 198.51.100.31 to vps301's MAC before" inet_knows_301
cap_start p4 vps301 "arp and ether src $MAC302"
attack_garp
phase_attack_done
check "counted in spoof_arp" wait_for 1 counted b302 spoof_arp 6
sleep 0.1
check "inet's neighbour table does not point 198.51.100.31 to vps302 (has: $(neigh_mac inet $V4_301))" \
	test "$(neigh_mac inet $V4_301)" != $MAC302
n=$(cap_count p4)
check "vps301 did not see them either (capture: $n)" test "$n" = 0
phase_end

# 5. neighbour advertisement for vps301's IPv6 address
phase_begin "5. unsolicited NA from vps302 for 2001:db8:300::31 (override, its own MAC)"
check "inet maps 2001:db8:300::31 to vps301's MAC before" inet_knows_301
attack_na
phase_attack_done
check "counted in spoof_nd" wait_for 1 counted b302 spoof_nd 4
sleep 0.1
check "inet's ip -6 neigh does not point 2001:db8:300::31 to vps302 (has: $(neigh_mac inet $V6_301))" \
	test "$(neigh_mac inet $V6_301)" != $MAC302
check "inet still reaches vps301 (IPv6)" lab_exec inet ping -c1 -W2 $V6_301
phase_end

# 6. rogue router advertisement
phase_begin "6. rogue RA from vps302 (prefix 2001:db8:bad::/64; inet has accept_ra=2)"
attack_ra
phase_attack_done
check "counted in spoof_ra" wait_for 1 counted b302 spoof_ra 2
sleep 0.3
check_not "inet got no address or route from it" inet_ra_taken
phase_end

# 7. DHCP server replies
phase_begin "7. DHCPv4 OFFER and DHCPv6 REPLY from vps302 (its own addresses)"
cap_start p7 vps301 "udp src port 67 or udp src port 547"
attack_dhcp
phase_attack_done
check "counted in spoof_dhcp" wait_for 1 counted b302 spoof_dhcp 4
n=$(cap_count p7)
check "vps301 saw none of them (capture: $n)" test "$n" = 0
phase_end

# 8. IPv4 source spoofing with hping3: suspension within 1 s
phase_begin "8. hping3 -a 198.51.100.31 from vps302"
cap_start p8 inet "udp port 9999"
t0=$(lab_now_ms)
lab_exec vps302 hping3 --udp -p 9999 -a $V4_301 -c 3 -i u20000 $GW4 >/dev/null 2>&1 &
hping=$!
wait_for 1 suspended b302
t1=$(lab_now_ms)
wait "$hping"
phase_attack_done
check "vps-302 is suspended in the kernel within 1 s ($((t1 - t0)) ms after hping3 started)" \
	sh -c "ip netns exec $HV nft list set bridge portcullis suspended | grep -q '\"b302\"' && [ $((t1 - t0)) -lt 1000 ]"
grep "Suspended vps-302" "$LAB_DIR/log/portcullisd.log" | tail -1 | sed 's/^/     /'
check "counted in spoof_ipv4" wait_for 1 counted b302 spoof_ipv4 1
check "an incident names the forged source" grep -q "\"claimed_source\":\"$V4_301\"" \
	<(sql "SELECT evidence FROM incident WHERE vps_id='vps-302' ORDER BY id DESC LIMIT 1")
check "a notification row is queued (vps.suspended, Italian)" wait_for 1 test \
	"$(sql "SELECT count(*) FROM notification WHERE vps_id='vps-302' AND kind='vps.suspended' AND language='it'")" -gt "$PHASE_NOTES"
check_not "suspended vps302 cannot ping inet" lab_exec vps302 ping -c1 -W1 $GW4
# what the bridge dropped towards a suspended port (forward and output)
fwd_dropped() { nft_hv list counter bridge portcullis verdict_suspended_in | grep -o 'packets [0-9]*' | awk '{ s += $2 } END { print s + 0 }'; }
fwd_before=$(fwd_dropped)
cap_start in302 vps302 "udp port 7777"
lab_exec inet bash -c "for i in 1 2 3; do echo x > /dev/udp/$V4_302/7777; done" 2>/dev/null
sleep 0.3
n=$(cap_count in302)
check "nothing reaches suspended vps302 either (capture: $n)" test "$n" = 0
check "frames towards it were dropped by the bridge (verdict_suspended_in: $fwd_before -> $(fwd_dropped))" \
	test "$(fwd_dropped)" -gt "$fwd_before"
check "vps301 still can" lab_exec vps301 ping -c1 -W2 $GW4
sleep 0.1
n=$(cap_count p8)
check "nothing forged arrived at inet (capture: $n)" test "$n" = 0
check "pc unsuspend vps-302" pc unsuspend vps-302 --by lab --reason "x"
check "vps302 pings inet again" wait_for 2 lab_exec vps302 ping -c1 -W1 $GW4
check "the unsuspension email is queued" test "$(sql "SELECT count(*) FROM notification WHERE vps_id='vps-302' AND kind='vps.unsuspended'")" -ge 1
phase_end 0

# 9. IPv6 source spoofing with scapy
phase_begin "9. IPv6 packets from vps302 claiming 2001:db8:300::31"
cap_start p9 inet "udp port 9998"
scapy_in vps302 "
s(Ether(src=M302, dst=MI)/IPv6(src='$V6_301', dst='$GW6')/UDP(sport=4444, dport=9998)/Raw(b'forged6'))"
phase_attack_done
check "counted in spoof_ipv6" wait_for 1 counted b302 spoof_ipv6 2
n=$(cap_count p9)
check "nothing arrived at inet (capture: $n)" test "$n" = 0
phase_end

echo "# 10. a DHCP server on another source port, and DAD aimed at vps301's address (holes found while writing this test)"
before_dhcp=$(spoof_count b302 spoof_dhcp)
before_nd=$(spoof_count b302 spoof_nd)
scapy_in vps302 "
s(Ether(src=M302, dst='ff:ff:ff:ff:ff:ff')/IP(src='$V4_302', dst='255.255.255.255')/UDP(sport=6767, dport=68)/
  BOOTP(op=2, yiaddr='198.51.100.99', chaddr=bytes.fromhex(M301.replace(':', '')), xid=0x302)/
  DHCP(options=[('message-type', 'offer'), ('server_id', '$V4_302'), ('router', '$V4_302'), 'end']))
s(Ether(src=M302, dst='33:33:ff:00:00:31')/IPv6(src='::', dst='ff02::1:ff00:31')/ICMPv6ND_NS(tgt='$V6_301'))"
sleep 0.3
check "a DHCP OFFER from port 6767 to a client's port 68 is counted" test "$(spoof_count b302 spoof_dhcp)" -gt "$before_dhcp"
check "DAD for vps301's address sent by vps302 is counted" test "$(spoof_count b302 spoof_nd)" -gt "$before_nd"
pc unsuspend vps-302 --by lab --reason "lab: phase 10" >/dev/null 2>&1
before_nd=$(spoof_count b302 spoof_nd)
scapy_in vps302 "
s(Ether(src=M302, dst=MI)/IPv6(src=LL302, dst='ff02::1')/ICMPv6ND_NA(tgt=LL302, R=0, S=0, O=1)/ICMPv6NDOptDstLLAddr(lladdr=M301))
s(Ether(src=M302, dst='33:33:ff:00:00:01')/IPv6(src='$V6_302', dst='ff02::1:ff00:1')/ICMPv6ND_NS(tgt='$GW6')/ICMPv6NDOptSrcLLAddr(lladdr=M301))"
sleep 0.3
check "ND naming vps301's MAC in a link-layer option is counted" test "$(spoof_count b302 spoof_nd)" -gt "$before_nd"
pc unsuspend vps-302 --by lab --reason "lab: phase 10" >/dev/null 2>&1
sleep 0.2

echo "# afterwards"
check "vps302 works (ping inet IPv4 and IPv6, curl)" sh -c "ip netns exec $(lab_ns vps302) ping -c1 -W2 $GW4 &&
	ip netns exec $(lab_ns vps302) ping -c1 -W2 $GW6 && ip netns exec $(lab_ns vps302) curl -sf --max-time 3 http://$GW4/ >/dev/null"
check "vps301 and vps302 reach each other" lab_exec vps302 ping -c1 -W2 $V6_301
echo "     b302: $(counters b302)"
echo "     incidents of vps-302: $(sql "SELECT count(*) FROM incident WHERE vps_id='vps-302' AND kind='spoof'"), emails queued: $(notifications vps-302)"
echo "     run took $(($(lab_now_ms) - T0)) ms"
lab_summary
