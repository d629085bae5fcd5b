#!/bin/bash
# Lab scenario (routed topology): anti-spoofing never hurts legitimate
# address configuration.  vps-101 (provider A, site lenoir, MAC registered)
# gets its IPv4 address by DHCP (DISCOVER/REQUEST from 0.0.0.0) and its IPv6
# address by SLAAC with duplicate address detection (NS and MLD reports from
# ::, router solicitation from its EUI-64 link-local) from router
# advertisements sent by the hypervisor, reaches the internet from both, and
# none of it is counted (spoof4, spoof6, spoof_ra, spoof_dhcp) or suspends it.
# Then a negative control: a forged source IS counted and suspends it, so the
# counters the legitimate checks rely on are proven to work.
# Usage: antispoof_legit.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
export LAB_PREFIX=${LAB_PREFIX:-pcl} LAB_QUIET=1
. "$here/lab.sh"
. "$here/common.sh"

lab_deps || exit 1
# dnsmasq-base is the binary alone: no system service is installed or started.
lab_install dnsmasq-base isc-dhcp-client python3-scapy || exit 1
T0=$(lab_now_ms)
lab_up --trap || { echo "FAIL lab_up"; exit 1; }
pc_setup "$1" "$2"
# One incident per spoofing episode, and only an episode's first packet acts:
# a 1 s gap (not 5 min) keeps each phase below, and the negative control,
# from being hidden in an episode opened by an earlier failure.
sed -i 's/^\(    episode-gap:\).*/\1 1s/' "$LAB_DIR/portcullis.yaml"
grep -q '^    episode-gap: 1s$' "$LAB_DIR/portcullis.yaml" || { echo "FAIL no spoof episode-gap in the config"; exit 1; }
DB=$LAB_DIR/portcullis.db
IF=$VPS101_IF

not_suspended() { ! suspended "$IF"; }
counters() { # IFACE -> what each anti-spoofing set counted for IFACE
	local s
	for s in spoof4 spoof6 spoof_ra spoof_dhcp; do printf '%s=%s ' "$s" "$(spoof_count "$1" "$s")"; done
}
incidents() { sqlite3 "$DB" "SELECT count(*) FROM incident WHERE vps_id='vps-101' AND kind='spoof'"; }
# phase_begin N ... phase_end WHAT: anti-spoofing counted nothing from $IF in
# between and did not suspend vps-101.  On failure: which packets were
# dropped (counters, the incident's evidence, what vps-101 and hv sent on
# the link), then the suspension is lifted so the next phase stands alone.
phase_begin() {
	PHASE_COUNTERS=$(counters "$IF")
	PHASE_PCAP=$LAB_DIR/phase$1.pcap
	PHASE_CAPTURE=$(lab_capture hv "$IF" "phase$1") || exit 1
}
phase_end() {
	local now clean=1
	sleep 0.3 # a late drop would be counted, logged and acted on by now
	now=$(counters "$IF")
	{ [ "$now" = "$PHASE_COUNTERS" ] && ! suspended "$IF"; } || clean=0
	if [ "$clean" = 1 ]; then
		ok "$1 was not counted as spoofed, vps-101 not suspended"
	else
		fail "$1 was not counted as spoofed, vps-101 not suspended"
		echo "     before: $PHASE_COUNTERS"
		echo "     after:  ${now}suspended=$(suspended "$IF" && echo yes || echo no)"
		sqlite3 "$DB" "SELECT evidence FROM incident WHERE vps_id='vps-101' ORDER BY id DESC LIMIT 1" 2>/dev/null |
			sed 's/^/     incident evidence (latest sample): /'
		grep "vps-101" "$LAB_DIR/log/portcullisd.log" | tail -3 | sed 's/^/     agent: /'
	fi
	kill "$PHASE_CAPTURE" 2>/dev/null
	sleep 0.1
	if [ "$clean" = 0 ] || [ "${LAB_VERBOSE:-0}" = 1 ]; then
		echo "     on the link ($IF, hv side):"
		tcpdump -nn -r "$PHASE_PCAP" 2>/dev/null | head -40 | sed 's/^/       /'
	fi
	if suspended "$IF"; then
		pc unsuspend vps-101 --by lab --reason "lab: $1 tripped anti-spoofing" >/dev/null 2>&1
		wait_for 3 not_suspended
	fi
}

mac=$(lab_exec vps101 cat /sys/class/net/eth0/address)
check "register vps-101 (lenoir, MAC $mac)" pc vps add vps-101 --site lenoir --owner ada@example.net \
	--iface "$IF" --mac "$mac" --addr "$VPS101_V4NET" --addr "$VPS101_V6NET" --by lab
check "agent starts" agent_start
antispoofed() { nft_hv list map inet portcullis antispoof | grep -q "\"$IF\""; }
check "$IF is under anti-spoofing" wait_for 5 antispoofed
# The EUI-64 link-local of the registered MAC, the only link-local allowed.
lla=$(/usr/bin/python3 -c '
import ipaddress, sys
b = bytes.fromhex(sys.argv[1].replace(":", ""))
iid = bytes([b[0] ^ 2]) + b[1:3] + b"\xff\xfe" + b[3:]
print(ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + iid))' "$mac")
check "its EUI-64 link-local $lla is an allowed source" grep -q "\"$IF\" \. $lla\b" \
	<(nft_hv list set inet portcullis src6)
check "nothing counted as spoofed yet" test "$(counters "$IF")" = "spoof4=0 spoof6=0 spoof_ra=0 spoof_dhcp=0 "

# dnsmasq in hv (two instances: DHCPv4 first, router advertisements from
# the IPv6 phase on, so that each phase stands alone), no DNS (port=0), no
# system config, logs in $LAB_DIR/log, leases and pids under $LAB_DIR.
# DHCPv4: dnsmasq only answers from a dhcp-range that puts the address of the
# receiving interface and the range in one network.  hv's side of the link
# has 203.0.113.1/32 only, so a /32 range never answers ("no address range
# available for DHCP request via v101"); the range is declared /24 (which
# contains 203.0.113.1), static (only the dhcp-host lease, for vps-101's
# MAC), and the netmask handed to the client is forced to 255.255.255.255:
# the VPS gets the same /32 + on-link gateway as its static setup, and hv
# keeps routing 203.0.113.10/32 to it.
DNSMASQ=(dnsmasq --keep-in-foreground --log-facility=- --log-dhcp --conf-file=/dev/null --port=0
	--no-resolv --no-hosts --user=root --interface="$IF" --bind-interfaces)
lab_bg dnsmasq-dhcp hv "${DNSMASQ[@]}" --dhcp-leasefile="$LAB_DIR/dnsmasq.leases" \
	--pid-file="$LAB_DIR/dnsmasq-dhcp.pid" \
	--dhcp-range=203.0.113.10,static,255.255.255.0,1h --dhcp-host="$mac,$VPS101_V4" \
	--dhcp-option=option:netmask,255.255.255.255 --dhcp-option=option:router,"$LAB_GW_V4" >/dev/null
check "dnsmasq (DHCPv4) starts" wait_for 5 grep -q "sockets bound exclusively" "$LAB_DIR/log/dnsmasq-dhcp.log"

echo "# DHCPv4: vps-101 boots without an address (dhclient)"
lab_exec vps101 ip -4 route del default via "$LAB_GW_V4" dev eth0
lab_exec vps101 ip -4 addr del "$VPS101_V4/32" dev eth0
check_not "vps-101 has no IPv4 address left" lab_exec vps101 sh -c "ip -4 addr show dev eth0 | grep -q inet"
# dhclient runs our script, not /sbin/dhclient-script: that one runs the
# system's hooks and may rewrite the machine's /etc/resolv.conf.  Ours does
# what Debian's does with a /32 lease (address, on-link router, default
# route).  dhclient gives its script a clean environment: absolute paths.
cat >"$LAB_DIR/dhclient-script" <<SCRIPT
#!/bin/sh
echo "\$reason \$new_ip_address \$new_subnet_mask \$new_routers" >>"$LAB_DIR/dhclient-script.log"
case \$reason in
BOUND | RENEW | REBIND | REBOOT)
	ip -4 addr replace "\$new_ip_address/32" dev "\$interface"
	for r in \$new_routers; do
		ip -4 route replace "\$r" dev "\$interface" scope link
		ip -4 route replace default via "\$r" dev "\$interface"
		break
	done ;;
esac
exit 0
SCRIPT
chmod 755 "$LAB_DIR/dhclient-script"
: >"$LAB_DIR/dhclient.conf"
phase_begin 1
t0=$(lab_now_ms)
# -d: stays in the foreground, so lab_down kills it; -1: one attempt only.
lab_bg dhclient vps101 dhclient -d -v -1 -cf "$LAB_DIR/dhclient.conf" -lf "$LAB_DIR/dhclient.leases" \
	-pf "$LAB_DIR/dhclient.pid" -sf "$LAB_DIR/dhclient-script" eth0 >/dev/null
has_v4() { lab_exec vps101 ip -4 addr show dev eth0 | grep -q "inet $VPS101_V4/32"; }
check "vps-101 configures $VPS101_V4 by DHCP (within 10 s)" wait_for 10 has_v4
echo "     DHCP took $(($(lab_now_ms) - t0)) ms"
check "dhclient's lease: $VPS101_V4/32 from $LAB_GW_V4" sh -c \
	"grep -q 'fixed-address $VPS101_V4;' '$LAB_DIR/dhclient.leases' &&
	 grep -q 'subnet-mask 255.255.255.255;' '$LAB_DIR/dhclient.leases' &&
	 grep -q 'dhcp-server-identifier $LAB_GW_V4;' '$LAB_DIR/dhclient.leases'"
check "dnsmasq acked it (DISCOVER and REQUEST from 0.0.0.0 got through)" \
	grep -q "DHCPACK($IF) $VPS101_V4 $mac" "$LAB_DIR/log/dnsmasq-dhcp.log"
check "vps-101 pings the internet from its DHCP address" \
	lab_exec vps101 ping -c1 -W2 -I "$VPS101_V4" "$LAB_INET_V4"
phase_end "DHCP (dhclient)"

echo "# DHCPv4 with the broadcast flag (RFC 2131: replies to 255.255.255.255)"
# Clients that cannot take unicast before they are configured (systemd-
# networkd's RequestBroadcast=, some firmware) ask for broadcast replies.
phase_begin 2
offer=$(lab_exec vps101 timeout 8 /usr/bin/python3 -c '
import sys
from scapy.all import Ether, IP, UDP, BOOTP, DHCP, srp1, conf
conf.checkIPaddr = False
mac = sys.argv[1]
d = Ether(src=mac, dst="ff:ff:ff:ff:ff:ff")/IP(src="0.0.0.0", dst="255.255.255.255")/UDP(sport=68, dport=67)/ \
    BOOTP(chaddr=bytes.fromhex(mac.replace(":", "")), xid=0x5eed, flags=0x8000)/ \
    DHCP(options=[("message-type", "discover"), "end"])
r = srp1(d, iface="eth0", timeout=3, verbose=0)
if r is not None and BOOTP in r:
    print(r[IP].dst, r[BOOTP].yiaddr)' "$mac" 2>/dev/null)
check "vps-101 gets a broadcast OFFER of $VPS101_V4 (got: ${offer:-nothing})" test "$offer" = "255.255.255.255 $VPS101_V4"
phase_end "DHCP with broadcast replies"

echo "# IPv6: SLAAC with duplicate address detection, from the hypervisor's RAs"
# dnsmasq advertises a prefix only if the interface has an address in it
# (with fe80::1 alone it receives the router solicitations and never
# answers), so hv's side gets 2001:db8:101::1/64 -- the provider's router
# address in the customer's /64, as often done; the /64 stays routed to
# $IF.  The advertisements come from fe80::1, the VPS's usual gateway.
phase_begin 3
lab_exec vps101 ip -6 addr del "$VPS101_V6/64" dev eth0
lab_exec vps101 ip -6 route del default via "$LAB_GW_V6" dev eth0
lab_exec vps101 sysctl -qw net.ipv6.conf.eth0.accept_ra=2 net.ipv6.conf.eth0.autoconf=1 \
	net.ipv6.conf.eth0.accept_dad=1 net.ipv6.conf.eth0.dad_transmits=1
lab_exec hv ip -6 addr add 2001:db8:101::1/64 dev "$IF" nodad
DNSMASQ_RA=$(lab_bg dnsmasq-ra hv "${DNSMASQ[@]}" --pid-file="$LAB_DIR/dnsmasq-ra.pid" \
	--enable-ra --dhcp-range=2001:db8:101::,ra-only,64,1h)
check "dnsmasq (RA) starts" wait_for 5 grep -q "router advertisement enabled" "$LAB_DIR/log/dnsmasq-ra.log"
# down/up: a fresh link-local (DAD from ::), a router solicitation, then the
# SLAAC address (DAD from :: again), as at boot.
t0=$(lab_now_ms)
lab_exec vps101 ip link set eth0 down
lab_exec vps101 ip link set eth0 up
slaac() { # the global address of vps-101 in 2001:db8:101::/64, once DAD is done
	lab_exec vps101 ip -6 -o addr show dev eth0 scope global |
		awk '/inet6 2001:db8:101:0?:/ && !/tentative|dadfailed/ { sub("/.*", "", $4); print $4; f = 1 } END { exit !f }'
}
check "vps-101 gets a SLAAC address in 2001:db8:101::/64, DAD done (within 10 s)" wait_for 10 slaac
echo "     SLAAC took $(($(lab_now_ms) - t0)) ms"
v6=$(slaac | head -1)
echo "     address: ${v6:-none}"
check "it is the EUI-64 of the registered MAC" test "${v6#2001:db8:101:0:}" = "${lla#fe80::}"
check "its link-local passed DAD too" sh -c "ip netns exec $VPS101_NS ip -6 addr show dev eth0 scope link | grep -q '$lla/64' &&
	! ip netns exec $VPS101_NS ip -6 addr show dev eth0 | grep -q 'tentative\|dadfailed'"
check "the default route came from the router advertisement" \
	sh -c "ip netns exec $VPS101_NS ip -6 route show default | grep -q 'via $LAB_GW_V6 .*proto ra'"
check "vps-101 pings the internet from its SLAAC address" \
	lab_exec vps101 ping -6 -c1 -W2 -I "${v6:-::1}" "$LAB_INET_V6"
# (the link went down: its IPv4 routes are gone, dhclient does not notice)
lab_exec vps101 ip -4 route replace "$LAB_GW_V4" dev eth0 scope link
lab_exec vps101 ip -4 route replace default via "$LAB_GW_V4" dev eth0
check "vps-101 still pings the internet over IPv4" lab_exec vps101 ping -c1 -W2 "$LAB_INET_V4"
# No more unsolicited advertisements from here on (the SLAAC address lives 1 h).
kill "$DNSMASQ_RA" 2>/dev/null
phase_end "SLAAC (RA, RS, DAD, MLD)"
check "no spoofing incident for vps-101 so far" test "$(incidents)" = 0

echo "# negative control: forged sources are counted (so the checks above can fail)"
[ "$(incidents)" = 0 ] || sleep 1.2 # let an earlier failure's episode end
lab_exec vps101 ip -4 addr add 198.51.100.250/32 dev eth0
before=$(spoof_count "$IF" spoof4)
t0=$(lab_now_ms)
lab_exec vps101 ping -c1 -W1 -I 198.51.100.250 "$LAB_INET_V4" >/dev/null 2>&1 &
forged=$!
check "vps-101 is suspended (within 3 s)" wait_for 3 suspended "$IF"
echo "     suspended $(($(lab_now_ms) - t0)) ms after the forged packet was sent"
wait "$forged"
check "the packet from 198.51.100.250 was counted in spoof4" test "$(spoof_count "$IF" spoof4)" -ge $((before + 1))
check "its evidence names the forged source" grep -q '"claimed_source":"198.51.100.250"' \
	<(sqlite3 "$DB" "SELECT evidence FROM incident WHERE vps_id='vps-101' ORDER BY id DESC LIMIT 1")
check_not "suspended vps-101 cannot reach the internet from its own address" \
	lab_exec vps101 ping -c1 -W1 -I "$VPS101_V4" "$LAB_INET_V4"
lab_exec vps101 ip -4 addr del 198.51.100.250/32 dev eth0
check "unsuspend vps-101" pc unsuspend vps-101 --by lab --reason "lab: negative control done"
check "vps-101 is no longer suspended" wait_for 3 not_suspended
before=$(spoof_count "$IF" spoof6)
lab_exec vps101 ip -6 addr add 2001:db8:999::250/128 dev eth0 nodad
lab_exec vps101 ping -6 -c1 -W1 -I 2001:db8:999::250 "$LAB_INET_V6" >/dev/null 2>&1
check "a packet from 2001:db8:999::250 is counted in spoof6" test "$(spoof_count "$IF" spoof6)" -ge $((before + 1))
lab_exec vps101 ip -6 addr del 2001:db8:999::250/128 dev eth0

echo "     scenario took $(($(lab_now_ms) - T0)) ms"
lab_summary
