#!/bin/bash
# Lab scenario (step 9): floods and reflection, counted in the kernel on a
# sample of packets.  hping3 floods from a VPS: an outbound filter within
# 2 s, and the flood stops reaching the internet.  An open resolver on a
# VPS answering forged sources (scapy): an inbound filter on udp/53.  A VPS
# flooded from the internet: an inbound filter (provider A) or a record
# (provider B).  A steady iperf3 transfer below the line is no incident.
# LAB_TOPOLOGY=bridged runs it all on a bridge (lab/flood_bridged): the
# meters are then the bridge table's, keyed on the VPS's port.
# Usage: flood.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
export LAB_PREFIX=${LAB_PREFIX:-pcf} LAB_QUIET=1
. "$here/lab.sh"
. "$here/common.sh"

lab_deps || exit 1
lab_install hping3 python3-scapy iperf3 dnsmasq-base || exit 1
PY=/usr/bin/python3 # Debian's, which has scapy
lab_up --trap || { echo "FAIL lab_up"; exit 1; }
pc_setup "$1" "$2"
# The reflection line compressed for the lab: 1 Mbit/s of replies (scapy
# sends a few thousand forged queries a second, not millions).
sed -i 's/^    megabits-per-second: 8$/    megabits-per-second: 1/' "$PC_CFG"
# The flood line at half the default: hping3 --flood manages 25-40,000
# packets/s here, and a busy CI machine gives it less.  A flood k times the
# line drains the meter's one-second burst in 1/(k-1) s: at the default
# line that is 1-3 s of hping3's speed, not the agent's; at 10,000 it is
# 0.3-0.7 s, and the 2 s below measure Portcullis.
sed -i 's/^    packets-per-second: 20000$/    packets-per-second: 10000/' "$PC_CFG"
grep -q '^    packets-per-second: 10000$' "$PC_CFG" || { echo "FAIL the lab's flood line is not set"; exit 1; }
DB=$LAB_DIR/portcullis.db
sql() { sqlite3 "$DB" "$1"; }
lab_vps_add vps102 v102 203.0.113.20 2001:db8:102:: >/dev/null 2>&1 || { echo "FAIL lab_vps_add"; exit 1; }
pc vps add vps-101 --site lenoir --owner ada@example.net $(pc_vps_link VPS101) --by lab >/dev/null
pc vps add vps-102 --site lenoir --owner eve@example.net $(pc_vps_link VPS102) --by lab >/dev/null
pc vps add vps-201 --site milano --owner bruno@example.it $(pc_vps_link VPS201) --by lab >/dev/null
pc vps add vps-202 --site lenoir --owner carl@example.net $(pc_vps_link VPS202) --by lab >/dev/null
check "agent starts" agent_start
# The reflected replies to forged sources reach inet (routed: hv would ask
# for their neighbours first; bridged: they cross the bridge to inet, the
# VPSes' router, whatever it does with them).
FAM=inet
[ "$LAB_TOPOLOGY" = bridged ] && FAM=bridge
if [ "$FAM" = inet ]; then
        inet_mac=$(lab_exec inet cat /sys/class/net/eth0/address)
        for i in $(seq 128 254); do
                ip -n "$LAB_HV" neigh replace "192.0.2.$i" lladdr "$inet_mac" dev "$LAB_UPLINK_IF" nud permanent
        done
fi
in_set() { nft_hv list set $FAM portcullis "$1" 2>/dev/null | grep -q "$2"; }
incidents() { sql "SELECT count(*) FROM incident WHERE vps_id='$1' AND kind='$2'"; }

echo "# a steady transfer below the line is not a flood"
lab_bg iperf3 inet iperf3 -s -B "$LAB_INET_V4" >/dev/null
# Not lab_wait_port: iperf3's server takes a probe connection for a client
# and answers the real one "busy" for a while.  The client retries.
iperf_client() {
        local i
        for i in 1 2 3 4 5; do
                lab_exec vps101 iperf3 -c "$LAB_INET_V4" -b 50M -t 3 -l 1400 >>"$LAB_DIR/log/iperf3-client.log" 2>&1 &&
                        return 0
                sleep 0.5
        done
        return 1
}
check "vps-101 sends 50 Mbit/s to one host for 3 s (iperf3: about 4,400 packets/s, the line 10,000)" iperf_client
grep -q "busy\|refused\|error" "$LAB_DIR/log/iperf3-client.log" && sed 's/^/     iperf3: /' "$LAB_DIR/log/iperf3-client.log" | grep -i "busy\|refused\|error" | head -3
check "... and it is no incident" test "$(sql "SELECT count(*) FROM incident WHERE vps_id='vps-101'")" = 0

echo "# hping3 --flood from vps-101"
cap=$(lab_capture inet eth0 flood "src host $VPS101_V4 and udp port 9") || exit 1
t0=$(lab_now_ms)
# One flow (-s 40000 -k): a new source port per packet would make each one
# a new conntrack entry, and the flood is then what the machine can create.
lab_exec vps101 timeout 6 hping3 --flood --udp -s 40000 -k -p 9 -d 64 "$LAB_INET_V4" >/dev/null 2>&1 &
hp=$!
wait_for 4 in_set filter_out "\"$VPS101_IF\""
t1=$(lab_now_ms)
sleep 1
before=$(tcpdump -r "$LAB_DIR/flood.pcap" -nn 2>/dev/null | wc -l)
sleep 1
after=$(tcpdump -r "$LAB_DIR/flood.pcap" -nn 2>/dev/null | wc -l)
wait "$hp" 2>/dev/null
kill "$cap"; wait "$cap" 2>/dev/null
# From the capture: when the flood began and how fast it went (its first
# 300 ms), so that a slow reaction says whether the flood was weak.
first=$(tcpdump -r "$LAB_DIR/flood.pcap" -nn -tt -c 1 2>/dev/null | awk '{ print $1 }')
first_ms=0
[[ "$first" =~ ^([0-9]+)\.([0-9]{3}) ]] && first_ms=$((BASH_REMATCH[1] * 1000 + 10#${BASH_REMATCH[2]}))
rate=$(tcpdump -r "$LAB_DIR/flood.pcap" -nn -tt 2>/dev/null |
        awk -v f="${first:-0}" '$1 < f + 0.3 { n++ } END { printf "%d", n / 0.3 }')
echo "     the flood began $((first_ms - t0)) ms after hping3's start, at $rate packets/s (the line: 10,000);" \
     "$before packets reached the internet before the filter took hold"
bound=${FLOOD_FILTER_MS:-2000}
check "vps-101 is filtered outbound within $((bound / 1000)) s of its flood's first packet ($((t1 - first_ms)) ms)" \
        test "$first_ms" -gt 0 -a $((t1 - first_ms)) -le "$bound" -a "$(in_set filter_out "\"$VPS101_IF\"" && echo y)" = y
# Over the line, not twice it: the 2 s above already bound the reaction
# whatever hping3's speed; a busy CI machine gave it 19,803 packets/s in
# its first 300 ms, and a flood under the line that got filtered would be
# the false positive this check is for.
check "... and the flood was one (over the line: $rate packets/s)" test "$rate" -gt 10000
check "once filtered, the flood no longer reaches the internet ($((after - before)) packets in the next second)" \
        test $((after - before)) -le 10
check "a flood incident names the destination" grep -q "\"destination\":\"$LAB_INET_V4\"" <(sql "SELECT evidence FROM incident WHERE vps_id='vps-101' AND kind='flood'")
check "the filter is the ladder's first step (1h) and names the incident" test \
        "$(sql "SELECT count(*) FROM action a JOIN incident i ON a.incident_id = i.id WHERE a.vps_id='vps-101' AND i.kind='flood' AND a.direction='egress' AND a.scope='all' AND a.until - a.created BETWEEN 3590 AND 3610")" = 1

echo "# an open resolver on vps-102 reflects forged queries"
lab_bg dnsmasq vps102 dnsmasq --no-daemon --no-resolv --no-hosts --port 53 --listen-address "$VPS102_V4" \
        --bind-interfaces --txt-record="big.lab.test,$(printf 'x%.0s' $(seq 1 190)),$(printf 'y%.0s' $(seq 1 190))" >/dev/null
sleep 0.5
check "vps-102's resolver answers a real client" sh -c "ip netns exec $LAB_INET $PY - <<'PYEOF'
from scapy.all import IP, UDP, DNS, DNSQR, sr1, conf
conf.verb = 0
r = sr1(IP(dst='$VPS102_V4')/UDP(sport=40000, dport=53)/DNS(rd=1, qd=DNSQR(qname='big.lab.test', qtype='TXT')), timeout=2)
assert r is not None and r.haslayer(DNS) and r[DNS].ancount == 1
PYEOF"
t0=$(lab_now_ms)
ip netns exec "$LAB_INET" "$PY" - "$VPS102_V4" >"$LAB_DIR/log/reflect.log" 2>&1 <<'PYEOF' &
# Forged queries built once with scapy, sent from a raw socket in a tight
# loop: scapy's own send() is too slow to be sure of the rate on a busy CI.
import random, socket, sys, time
from scapy.all import IP, UDP, DNS, DNSQR, raw
q = [raw(IP(src='192.0.2.%d' % random.randint(128, 254), dst=sys.argv[1]) /
         UDP(sport=random.randint(1024, 65535), dport=53) / DNS(rd=1, qd=DNSQR(qname='big.lab.test', qtype='TXT')))
     for _ in range(500)]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
end = time.time() + 5
while time.time() < end:
    for p in q:
        s.sendto(p, (sys.argv[1], 0))
    time.sleep(0.05) # about 10,000 queries a second at most: replies far over 1 Mbit/s
PYEOF
sc=$!
wait_for 5 in_set filter_ports_in "\"$VPS102_IF\" . udp . 53"
t1=$(lab_now_ms)
check "vps-102 gets an inbound filter on udp/53 ($((t1 - t0)) ms after the forged queries began)" \
        in_set filter_ports_in "\"$VPS102_IF\" . udp . 53"
kill "$sc" 2>/dev/null; wait "$sc" 2>/dev/null
check "a reflection incident names the port" grep -q '"port":"udp/53"' <(sql "SELECT evidence FROM incident WHERE vps_id='vps-102' AND kind='reflection'")
check "vps-102's other traffic is untouched (curl)" lab_exec vps102 curl -sf --max-time 3 "http://$LAB_INET_V4/"
check "vps-102 is not filtered whole" test "$(in_set filter_in "\"$VPS102_IF\"" && echo y)" = ""

echo "# vps-202 (provider A) and vps-201 (provider B) flooded from the internet"
# The source said (-a): at the bridged lab inet also holds the VPSes'
# gateway address, and hping3 then picked 127.0.0.1, whose ARP requests
# no VPS answers.
lab_exec inet timeout 4 hping3 --flood --udp -a "$LAB_INET_V4" -s 40000 -k -p 7 -d 64 "$VPS202_V4" >/dev/null 2>&1 &
h1=$!
check "vps-202 gets an inbound filter within 2 s" wait_for 2 in_set filter_in "\"$VPS202_IF\""
wait "$h1" 2>/dev/null
check "... an 'attacked' incident, filtered for 1h (a victim never climbs the ladder)" test \
        "$(sql "SELECT count(*) FROM action a JOIN incident i ON a.incident_id = i.id WHERE a.vps_id='vps-202' AND i.kind='attacked' AND a.direction='ingress' AND a.until - a.created BETWEEN 3590 AND 3610")" = 1
lab_exec inet timeout 3 hping3 --flood --udp -a "$LAB_INET_V4" -s 40000 -k -p 7 -d 64 "$VPS201_V4" >/dev/null 2>&1
check "vps-201's attack is recorded" wait_for 2 cmd_is = 1 incidents vps-201 attacked
check "... and not filtered (provider B records)" test "$(sql "SELECT count(*) FROM action WHERE vps_id='vps-201'")" = 0
lab_summary
