#!/bin/bash
# Hostile review (floods): the outbound flood meter is per VPS *and
# destination* (flood_out4 keyed iifname . ip daddr), and scan containment
# ignores ICMP.  hping3 --flood --rand-dest spreads the same ICMP flood over
# a /24 (carpet bombing one victim network): each destination stays under
# the line (here 10,000 packets/s) while the total goes far over, and no flood incident is
# raised.  (Control: the same flood to one destination from vps-202 is
# filtered.)  Measured: the flood's packets per second at the internet side.
# Usage: flood_spread.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_PREFIX=${LAB_PREFIX:-pch9} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
. "$here/scanlab.sh"
sl_up "$1" "$2" nostart
sl_flood_line
check "agent starts" agent_start
for i in $(seq 3 9) $(seq 60 127) 255 0; do
        ip -n "$LAB_HV" neigh replace "192.0.2.$i" lladdr "$inet_mac" dev "$LAB_UPLINK_IF" nud permanent
done
lab_exec inet nft -f - <<NFT
table ip pch9m {
        chain in {
                type filter hook prerouting priority -300;
                ip saddr $VPS101_V4 icmp type echo-request counter name spread
                ip saddr $VPS202_V4 icmp type echo-request counter name one
        }
        counter spread {}
        counter one {}
}
NFT
pkts() { lab_exec inet nft list counter ip pch9m "$1" | awk '/packets/ { print $2 }'; }

echo "# control: vps-202 floods one destination with ICMP"
lab_exec vps202 timeout 3 hping3 --flood --icmp -d 64 192.0.2.130 >/dev/null 2>&1
check "(control: the one-destination flood is filtered)" wait_for 3 filtered "$VPS202_IF"
echo "     control: $(pkts one) packets in 3 s"

echo "# vps-101 floods 192.0.2.0/24 with ICMP, random destinations"
a=$(pkts spread)
hp=""
for _ in 1 2 3; do
        lab_exec vps101 timeout 5 hping3 --flood --icmp -d 64 -I eth0 --rand-dest 192.0.2.x >/dev/null 2>&1 &
        hp="$hp $!"
done
# shellcheck disable=SC2086
wait $hp
b=$(pkts spread)
echo "     spread: $(((b - a) / 5)) packets/s reached the internet for 5 s"
# At provider A's site the scan containment holds back echo requests to
# new hosts before the flood meter sees a flood: either way it must not
# get a flood's rate out, and vps-101 ends filtered.
check "the spread flood never reaches the internet at a flood's rate ($(((b - a) / 5)) packets/s)" \
        test $(((b - a) / 5)) -lt 10000
check "... it is a flood or scan incident" test "$(($(incidents vps-101 flood) + $(incidents vps-101 scan)))" -ge 1
check "... vps-101 is filtered" filtered "$VPS101_IF"

echo "# vps-201 (provider B: no containment) floods 192.0.2.0/24: the per-VPS meter sees it"
# shellcheck disable=SC2046
pc vps add vps-201 --site milano --owner bruno@example.it $(pc_vps_link VPS201) --by lab >/dev/null 2>&1
hp=""
for _ in 1 2 3; do
        lab_exec vps201 timeout 4 hping3 --flood --icmp -d 64 -I eth0 --rand-dest 192.0.2.x >/dev/null 2>&1 &
        hp="$hp $!"
done
# shellcheck disable=SC2086
wait $hp
has_flood() { test "$(incidents "$1" flood)" -ge 1; } # evaluated at each try of wait_for
check "vps-201's spread flood is a flood incident (recorded: provider B)" wait_for 3 has_flood vps-201
[ "$(incidents vps-201 flood)" -ge 1 ] || { echo "     vps-201's incidents:"; sql "SELECT id, kind, count, evidence FROM incident WHERE vps_id='vps-201'" | head -c 600; echo; grep "vps-201" "$LAB_DIR/log/portcullisd.log" | tail -5; }
lab_summary
