#!/bin/bash
# Lab scenario (step 3, routed topology): a VPS can only speak as itself.
# Spoofed packets never reach the internet, are counted, become an
# incident, and provider A's profile suspends the VPS within a second and
# queues the owner's email.  Usage: antispoof.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
export LAB_PREFIX=${LAB_PREFIX:-pcs} LAB_QUIET=1
. "$here/lab.sh"
. "$here/common.sh"

lab_deps || exit 1
lab_install hping3 python3-scapy || exit 1
PY=/usr/bin/python3 # Debian's, which has scapy
lab_up --trap || { echo "FAIL lab_up"; exit 1; }
lab_vps_add vps102 v102 203.0.113.20 2001:db8:102:: >/dev/null 2>&1 || { echo "FAIL lab_vps_add"; exit 1; }
pc_setup "$1" "$2"
pc_no_terminate # each spoofing episode below is suspended anew: detection, not lab/terminate's rule
DB=$LAB_DIR/portcullis.db
mac101=$(lab_exec vps101 cat /sys/class/net/eth0/address)
pc vps add vps-101 --site lenoir --owner ada@example.net --iface "$VPS101_IF" --mac "$mac101" \
        --addr "$VPS101_V4NET" --addr "$VPS101_V6NET" --by lab >/dev/null 2>&1
pc vps add vps-102 --site lenoir --owner eve@example.net --lang it --iface v102 \
        --addr 203.0.113.20 --addr 2001:db8:102::/64 --by lab >/dev/null 2>&1
pc vps add vps-201 --site milano --owner bruno@example.it --iface "$VPS201_IF" \
        --addr "$VPS201_V4NET" --addr "$VPS201_V6NET" --by lab >/dev/null 2>&1
check "agent starts" agent_start
sql() { sqlite3 "$DB" "$1"; }
spoof_at_least() { [ "$(spoof_count "$1" "$2")" -ge "$3" ]; } # IFACE SET N

echo "# legitimate traffic is never hurt"
check "vps-101 pings the internet (IPv4)" lab_exec vps101 ping -c1 -W2 "$LAB_INET_V4"
check "vps-101 pings the internet (IPv6, via its link-local gateway)" lab_exec vps101 ping -c1 -W2 "$LAB_INET_V6"
check "vps-101 curl IPv4" lab_exec vps101 curl -sf --max-time 3 "http://$LAB_INET_V4/"
check "vps-101 curl IPv6" lab_exec vps101 curl -sf --max-time 3 "http://[$LAB_INET_V6]/"
check "vps-102 curl IPv4 (no MAC registered)" lab_exec vps102 curl -sf --max-time 3 "http://$LAB_INET_V4/"
check "vps-101 reaches vps-102" lab_exec vps101 ping -c1 -W2 203.0.113.20
check "vps-101 reaches vps-102 over IPv6" lab_exec vps101 ping -c1 -W2 2001:db8:102::10
check "nothing counted as spoofed so far" test "$(spoof_count "$VPS101_IF" spoof4)$(spoof_count v102 spoof4)" = 00
check "agent.prom: no verdict for spoofing yet" wait_for 3 cmd_is = 0 verdict spoof

echo "# vps-102 spoofs vps-101's address with hping3"
lab_capture inet eth0 spoof "udp port 9999" >/dev/null || exit 1
t0=$(lab_now_ms)
lab_exec vps102 hping3 --udp -p 9999 -a "$VPS101_V4" -c 3 -i u20000 "$LAB_INET_V4" >/dev/null 2>&1 &
hping=$!
for _ in $(seq 1 80); do suspended v102 && break; sleep 0.0125; done
t1=$(lab_now_ms)
wait "$hping"
grep "Suspended vps-102" "$LAB_DIR/log/portcullisd.log" | sed 's/^/     /' 
check "vps-102 is suspended in the kernel within 1 s" suspended v102
echo "     suspended $((t1 - t0)) ms after hping3 started"
check "within 1 s" test $((t1 - t0)) -lt 1000
check "the spoof counter of vps-102 rose" test "$(spoof_count v102 spoof4)" -ge 1
check "agent.prom counts the spoofed packets as verdicts" wait_for 3 verdict_above spoof inet 0
check "an incident was recorded" test "$(sql "SELECT count(*) FROM incident WHERE vps_id='vps-102' AND kind='spoof'")" = 1
check "its evidence names the forged source" grep -q "\"claimed_source\":\"$VPS101_V4\"" <(sql "SELECT evidence FROM incident WHERE vps_id='vps-102'")
check "the suspension names the incident" test "$(sql "SELECT count(*) FROM action a JOIN incident i ON a.incident_id = i.id WHERE a.vps_id='vps-102' AND a.kind='suspension' AND a.lifted_at IS NULL")" = 1
check "the owner's email is queued (in Italian)" test "$(sql "SELECT count(*) FROM notification WHERE vps_id='vps-102' AND kind='vps.suspended' AND recipient='eve@example.net' AND language='it'")" = 1
check "explain says why" grep -q "is suspended" <(pc explain vps-102 tcp/443 out)
check "vps show counts the spoofed packets" grep -Eq "ipv4 source spoofing: [0-9,]+ packets dropped" <(pc vps show vps-102)
check_not "suspended vps-102 cannot reach the internet" lab_exec vps102 curl -sf --max-time 2 "http://$LAB_INET_V4/"
check "vps-101 is not affected" lab_exec vps101 curl -sf --max-time 3 "http://$LAB_INET_V4/"
pc unsuspend vps-102 --by alice --reason "customer fixed a misconfigured NAT" >/dev/null 2>&1
check "after unsuspend vps-102 works again" lab_exec vps102 curl -sf --max-time 3 "http://$LAB_INET_V4/"
check "the unsuspension email is queued" test "$(sql "SELECT count(*) FROM notification WHERE vps_id='vps-102' AND kind='vps.unsuspended'")" = 1

echo "# other forged sources: a random address, the hypervisor's own, IPv6 (scapy)"
# The unsuspension closed the first episode: each of these is a new one,
# answered again (a suspended VPS's packets are dropped before they are counted).
before=$(spoof_count v102 spoof4)
lab_exec vps102 hping3 --udp -p 9999 -a 198.51.100.250 -c 1 "$LAB_INET_V4" >/dev/null 2>&1
check "a random forged source is counted" wait_for 2 cmd_is -ge $((before + 1)) spoof_count v102 spoof4
check "spoofing after the unsuspension is a new incident" \
        test "$(sql "SELECT count(*) FROM incident WHERE vps_id='vps-102' AND kind='spoof'")" = 2
check "... and vps-102 is suspended again" wait_for 2 suspended v102
pc unsuspend vps-102 --by alice --reason "lab: next test" >/dev/null 2>&1
before=$(spoof_count v102 spoof4)
lab_exec vps102 hping3 --udp -p 9999 -a "$LAB_GW_V4" -c 1 "$LAB_INET_V4" >/dev/null 2>&1
check "the hypervisor's address as source is counted" wait_for 2 cmd_is -ge $((before + 1)) spoof_count v102 spoof4
check "... and suspends again" wait_for 2 suspended v102
pc unsuspend vps-102 --by alice --reason "lab: next test" >/dev/null 2>&1
lab_exec vps102 $PY -c "
from scapy.all import IPv6, UDP, Raw, send
send(IPv6(src='$VPS101_V6', dst='$LAB_INET_V6')/UDP(sport=4444, dport=9999)/Raw(b'forged'), iface='eth0', count=2, verbose=0)
" >/dev/null 2>&1
sleep 0.3
check "forged IPv6 packets are counted" test "$(spoof_count v102 spoof6)" -ge 1
check "four episodes, four incidents" \
        test "$(sql "SELECT count(*) FROM incident WHERE vps_id='vps-102' AND kind='spoof'")" = 4
sleep 0.5
kill "$(cat "$LAB_DIR/pids" | awk '/capture-spoof/ { print $1 }')" 2>/dev/null
sleep 0.3
arrived=$(tcpdump -nn -r "$LAB_DIR/spoof.pcap" 2>/dev/null | wc -l)
check "nothing forged arrived in the internet (capture: $arrived packets)" test "$arrived" = 0

echo "# rogue router advertisements and DHCP server replies (scapy) from its own address"
pc unsuspend vps-102 --by alice --reason "lab: next test" >/dev/null 2>&1
lab_exec vps102 $PY -c "
from scapy.all import Ether, IPv6, ICMPv6ND_RA, ICMPv6NDOptPrefixInfo, IP, UDP, BOOTP, DHCP, sendp, get_if_hwaddr
m = get_if_hwaddr('eth0')
sendp(Ether(src=m, dst='33:33:00:00:00:01')/IPv6(src='fe80::1:2', dst='ff02::1')/ICMPv6ND_RA()/ICMPv6NDOptPrefixInfo(prefix='2001:db8:bad::', prefixlen=64), iface='eth0', count=1, verbose=0)
" >/dev/null 2>&1
check "the rogue RA is dropped and counted" wait_for 2 spoof_at_least v102 spoof_ra 1
wait_for 2 suspended v102
pc unsuspend vps-102 --by alice --reason "lab: next test" >/dev/null 2>&1
lab_exec vps102 $PY -c "
from scapy.all import Ether, IP, UDP, BOOTP, DHCP, sendp, get_if_hwaddr
m = get_if_hwaddr('eth0')
sendp(Ether(src=m, dst='ff:ff:ff:ff:ff:ff')/IP(src='203.0.113.20', dst='255.255.255.255')/UDP(sport=67, dport=68)/BOOTP(op=2, yiaddr='203.0.113.99')/DHCP(options=[('message-type', 'offer'), 'end']), iface='eth0', count=1, verbose=0)
" >/dev/null 2>&1
check "the DHCP OFFER from a VPS is dropped and counted" wait_for 2 spoof_at_least v102 spoof_dhcp 1
# (read again at each try: a <(...) is read once, before the wait)
latest_evidence_has() { sql "SELECT evidence FROM incident WHERE vps_id='$1' ORDER BY id DESC LIMIT 1" | grep -q "$2"; }
check "the latest incident's evidence is the latest sample" \
        wait_for 2 latest_evidence_has vps-102 '"kind":"rogue-dhcp-server"'
wait_for 2 suspended v102
pc unsuspend vps-102 --by alice --reason "lab: next test" >/dev/null 2>&1
n_before=$(sql "SELECT count(*) FROM incident WHERE vps_id='vps-102' AND kind='spoof'")
# nmap -sU probes port 68 of internet hosts: no DHCP client is there
lab_exec vps102 $PY -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for p in (67, 68):
    s.sendto(b'probe', ('$LAB_INET_V4', p))
" >/dev/null 2>&1
sleep 1
check "a datagram to an internet host's port 68 is no rogue DHCP server" \
        test "$(sql "SELECT count(*) FROM incident WHERE vps_id='vps-102' AND kind='spoof'")" = "$n_before"
check_not "... and vps-102 is not suspended for it" suspended v102

echo "# an extra prefix granted to vps-101 (a VPN gateway), not to vps-102"
lab_exec hv ip route add 198.51.100.64/29 dev "$VPS101_IF"
lab_exec vps101 ip addr add 198.51.100.65/32 dev eth0
check_not "before the grant vps-101 cannot send from 198.51.100.65" \
        lab_exec vps101 curl -sf --max-time 2 --interface 198.51.100.65 "http://$LAB_INET_V4/"
for _ in $(seq 1 40); do suspended "$VPS101_IF" && break; sleep 0.025; done
check "that attempt was spoofing too: vps-101 got suspended" suspended "$VPS101_IF"
pc unsuspend vps-101 --by alice --reason "lab: the test above tripped it" >/dev/null 2>&1
check "grant source-prefix:198.51.100.64/29" pc exception grant vps-101 source-prefix:198.51.100.64/29 --by alice --reason "VPN gateway, ticket reviewed"
check "now vps-101 can send from it" lab_exec vps101 curl -sf --max-time 3 --interface 198.51.100.65 "http://$LAB_INET_V4/"
wait_for 2 suspended v102
pc unsuspend vps-102 --by alice --reason "lab: next test" >/dev/null 2>&1
before=$(spoof_count v102 spoof4)
lab_exec vps102 hping3 --udp -p 9999 -a 198.51.100.66 -c 1 "$LAB_INET_V4" >/dev/null 2>&1
check "vps-102 still cannot" wait_for 2 cmd_is -ge $((before + 1)) spoof_count v102 spoof4

echo "# provider B's profile has no spoofing response (its page says nothing of it): BCP 38, silently"
check "vps-201's sources are checked" sh -c "ip netns exec $LAB_HV nft list map inet portcullis antispoof | grep -q $VPS201_IF"
check "... but not reported" sh -c "ip netns exec $LAB_HV nft list map inet portcullis antispoof | grep -q \"\\\"$VPS201_IF\\\" : jump antispoof_quiet\""
cap=$(lab_capture inet eth0 bcp38 "udp port 9998")
lab_exec vps201 hping3 --udp -p 9998 -a 198.51.100.99 -c 3 -i u20000 "$LAB_INET_V4" >/dev/null 2>&1
sleep 0.3
kill "$cap" 2>/dev/null; wait "$cap" 2>/dev/null
check "vps-201's forged packets never reach inet" \
        test "$(lab_exec inet tcpdump -nn -r "$LAB_DIR/bcp38.pcap" 2>/dev/null | wc -l)" = 0
check "... and are not counted as spoofing" test "$(spoof_count "$VPS201_IF" spoof4)" = 0
check_not "vps-201 is not suspended" suspended "$VPS201_IF"
check "vps-201's legitimate traffic flows" lab_exec vps201 curl -sf --max-time 3 "http://$LAB_INET_V4/"

echo "# a suspended VPS, seen from its own side: nothing reaches it, nothing leaves it"
# Captured in the VPS's namespace (what its interface really receives) and
# in inet (what really left it); then unsuspended, the same packets arrive,
# so that the captures are shown to see them.
V102=203.0.113.20 V102_6=2001:db8:102::10
pc unsuspend vps-102 --by alice --reason "lab: next test" >/dev/null 2>&1
v102_free() { ! suspended v102; }
wait_for 2 v102_free
pc suspend vps-102 --by alice --reason "lab: suspended both ways" >/dev/null 2>&1
check "vps-102 is suspended by hand" wait_for 2 suspended v102
susp_traffic() { # TAG: inet -> vps-102 and vps-102 -> inet, UDP (IPv4, IPv6) and ping
        lab_udp_send inet "$V102" 7777 "in-$1-v4" >/dev/null 2>&1
        lab_udp_send inet "$V102_6" 7777 "in-$1-v6" >/dev/null 2>&1
        lab_exec inet ping -c1 -W1 "$V102" >/dev/null 2>&1
        lab_udp_send vps102 "$LAB_INET_V4" 500 "out-$1-v4" >/dev/null 2>&1
        lab_udp_send vps102 "$LAB_INET_V6" 500 "out-$1-v6" >/dev/null 2>&1
        lab_exec vps102 ping -c1 -W1 "$LAB_INET_V4" >/dev/null 2>&1
        sleep 0.3
}
susp_caps() { # TAG: starts the two captures
        CAP_IN=$(lab_capture vps102 eth0 "$1-in" "(src host $LAB_INET_V4 or src host $LAB_INET_V6) and (udp port 7777 or icmp)")
        CAP_OUT=$(lab_capture inet eth0 "$1-out" "src host $V102 or src host $V102_6")
}
susp_count() { # NAME: stops its capture, prints how many packets it holds
        local pid=$CAP_IN
        case $1 in *-out) pid=$CAP_OUT ;; esac
        kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
        tcpdump -nn -r "$LAB_DIR/$1.pcap" 2>/dev/null | wc -l
}
susp_caps susp
susp_traffic susp
n_in=$(susp_count susp-in) n_out=$(susp_count susp-out)
check "nothing from inet reaches suspended vps-102's interface (capture in vps-102: $n_in)" test "$n_in" = 0
check "nothing from suspended vps-102 reaches inet (capture in inet: $n_out)" test "$n_out" = 0
pc unsuspend vps-102 --by alice --reason "lab: control" >/dev/null 2>&1
check "vps-102 is unsuspended" wait_for 2 v102_free
susp_caps live
susp_traffic live
n_in=$(susp_count live-in) n_out=$(susp_count live-out)
check "(control) unsuspended, the same packets reach vps-102 (capture: $n_in, want 3)" test "$n_in" -ge 3
check "(control) ... and leave it (capture: $n_out, want 3)" test "$n_out" -ge 3

echo "# detectors.spoof.enabled: false: the kernel still drops and counts, but no incident, no response"
pc_reload() { echo reload | ip netns exec "$LAB_HV" socat -t5 - "UNIX-CONNECT:$LAB_DIR/control.sock"; }
check_not "(before) vps-102 is not suspended" suspended v102
sed -i '/^  spoof:/,/^[^ ]/ s/^    enabled: true/    enabled: false/' "$PC_CFG"
check "the agent reloads with spoofing detection off" grep -q '"ok": *true' <<<"$(pc_reload)"
n_inc=$(sql "SELECT count(*) FROM incident WHERE vps_id='vps-102' AND kind='spoof'")
before=$(spoof_count v102 spoof4)
cap=$(lab_capture inet eth0 disabled "udp port 9997")
for _ in 1 2; do # two episodes' worth: the agent says why once
        lab_exec vps102 hping3 --udp -p 9997 -a 198.51.100.251 -c 2 -i u20000 "$LAB_INET_V4" >/dev/null 2>&1
        sleep 0.3
done
check "the forged packets are still counted" wait_for 2 cmd_is -ge $((before + 2)) spoof_count v102 spoof4
sleep 0.5
kill "$cap" 2>/dev/null; wait "$cap" 2>/dev/null
check "... and dropped (capture in inet: $(tcpdump -nn -r "$LAB_DIR/disabled.pcap" 2>/dev/null | wc -l))" \
        test "$(tcpdump -nn -r "$LAB_DIR/disabled.pcap" 2>/dev/null | wc -l)" = 0
check_not "vps-102 is not suspended" suspended v102
check "no incident is opened" test "$(sql "SELECT count(*) FROM incident WHERE vps_id='vps-102' AND kind='spoof'")" = "$n_inc"
check "the agent says why, once" test "$(grep -c 'detectors.spoof.enabled is false' "$LAB_DIR/log/portcullisd.log")" = 1
check "vps-102's legitimate traffic flows" lab_exec vps102 curl -sf --max-time 3 "http://$LAB_INET_V4/"

echo "# the ladder: at a site that answers spoofing with an outbound filter, the 2nd episode within the memory gets the 2nd step"
sed -i -e '/^  spoof:/,/^[^ ]/ { s/^    enabled: false/    enabled: true/; s/^    episode-gap: .*/    episode-gap: 1s/ }' \
       -e 's/^  steps: .*/  steps: [2s, 1h]/' "$PC_CFG"
pc_site_variant ladder lenoir-ladder "s/^  spoofing: .*/  spoofing: [outbound-filter, notify]/"
check "the agent reloads (episode-gap 1s, steps [2s, 1h])" grep -q '"ok": *true' <<<"$(pc_reload)"
pc vps remove vps-102 --by lab >/dev/null 2>&1
check "vps-102 moves to the filtering site" pc vps add vps-102 --site ladder --owner eve@example.net --lang it \
        --iface v102 --addr 203.0.113.20 --addr 2001:db8:102::/64 --by lab
filtered_out() { nft_hv list set inet portcullis filter_out | grep -q '"v102"'; }
filter_len() { # the n-th newest filter's length in the store
        sql "SELECT until - created FROM action WHERE vps_id='vps-102' AND kind='filter' ORDER BY id DESC LIMIT 1 OFFSET $1"
}
lab_exec vps102 hping3 --udp -p 9999 -a 198.51.100.252 -c 1 "$LAB_INET_V4" >/dev/null 2>&1
check "1st episode: vps-102 is filtered outbound" wait_for 2 filtered_out
check "... for the 1st step, 2 s (store: $(filter_len 0))" test "$(filter_len 0)" -ge 1 -a "$(filter_len 0)" -le 3
check_not "... and not suspended" suspended v102
check "the 2 s filter ends in the kernel" wait_for 4 eval '! filtered_out'
sleep 1.2 # the episode gap
lab_exec vps102 hping3 --udp -p 9999 -a 198.51.100.253 -c 1 "$LAB_INET_V4" >/dev/null 2>&1
check "2nd episode: a 2nd incident" wait_for 2 cmd_is = 2 sql "SELECT count(*) FROM incident WHERE vps_id='vps-102' AND kind='spoof'"
check "... vps-102 is filtered outbound again" wait_for 2 filtered_out
check "... for the 2nd step, 1 h (store: $(filter_len 0))" test "$(filter_len 0)" -ge 3599 -a "$(filter_len 0)" -le 3601
check "... and so in the kernel" grep -q '"v102" timeout 1h' <(nft_hv list set inet portcullis filter_out)
check_not "... and not suspended" suspended v102

lab_summary
