#!/bin/bash
# Hostile review (scan containment at a bridged site): the kernel's hold
# keyed on the VPS's interface, which the inet table never sees at a
# bridged site (there a frame comes in on the bridge): a bridged VPS's
# scan reached every target until the agent's filter, from conntrack, a
# few seconds later.  The bridge table now contains it on the port.  Also
# what a bridge carries and a router never forwards (mDNS, SSDP, DHCP to
# multicast and broadcast addresses) is no first contact, and a burst to
# many answering hosts is no scan.
# Goal under test: at most 10 distinct probes of a scanner reach the
# internet, as at a routed site (lab/scan).
# Usage (LAB_TOPOLOGY=bridged): scan_bridged.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_PREFIX=${LAB_PREFIX:-pch9} LAB_QUIET=1 LAB_TOPOLOGY=bridged
. "$lab/lab.sh"
. "$lab/common.sh"
. "$here/scanlab.sh"
sl_up "$1" "$2"

echo "# vps-202 speaks to its segment: DHCP, NetBIOS, SSDP, WS-Discovery, mDNS, LLMNR"
lab_exec vps202 "$PY" - <<'PYEOF' >"$LAB_DIR/log/multicast.log" 2>&1
import socket
v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
v4.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
eth0 = socket.if_nametoindex("eth0")
# what a booting Windows or Linux host sends: 15 destinations, three
# times over hold-after (5), none of them answered
for dst, port in [("255.255.255.255", 67), ("255.255.255.255", 137), ("255.255.255.255", 138),
                  ("239.255.255.250", 1900), ("239.255.255.250", 3702), ("224.0.0.251", 5353),
                  ("224.0.0.252", 5355)]:
    for _ in range(3):
        v4.sendto(b"x", (dst, port))
for dst, port in [("ff02::1:2", 547), ("ff02::c", 1900), ("ff02::c", 3702), ("ff02::fb", 5353),
                  ("ff02::1:3", 5355), ("ff05::c", 1900), ("ff02::1:3", 5355), ("ff0e::c", 1900)]:
    for _ in range(3):
        v6.sendto(b"x", (dst, port, 0, eth0))
PYEOF
sleep 3 # the detector's pending-timeout (2 s): unanswered by then, a failed contact
check "vps-202 is not held back for its multicast and broadcast" test "$(held "$VPS202_IF" && echo y)" = ""
check "... and no incident" test "$(incidents vps-202 scan)" = 0

echo "# vps-202 fetches from 30 answering hosts at once (a crawler)"
ok=$(lab_exec vps202 "$PY" - <<'PYEOF'
import concurrent.futures, urllib.request
def get(i):
    try:
        return urllib.request.urlopen("http://192.0.2.%d/" % i, timeout=5).status == 200
    except Exception:
        return False
with concurrent.futures.ThreadPoolExecutor(30) as ex:
    print(sum(ex.map(get, range(10, 40))))
PYEOF
)
check "all 30 fetches succeed (${ok:-0})" test "${ok:-0}" = 30
check "... and vps-202 is no scan incident" test "$(incidents vps-202 scan)" = 0

echo "# nmap -sS from vps-101: 127 absent hosts, port 80"
cap=$(lab_capture inet eth0 syn "src host $VPS101_V4 and tcp[tcpflags] & tcp-syn != 0") || exit 1
lab_exec vps101 timeout 30 nmap -sS -T4 -Pn -n -p 80 --max-retries 0 192.0.2.128-254 >"$LAB_DIR/log/nmap.log" 2>&1
capture_stop "$cap" 1
p=$(distinct "$LAB_DIR/syn.pcap" "src host $VPS101_V4")
echo "     $p distinct probes reached the internet"
check "at most 10 distinct probes reached the internet ($p)" test "$p" -le 10
held_or_filtered() { held "$1" || filtered "$1"; }
check "vps-101 is held back or filtered in the bridge table" held_or_filtered "$VPS101_IF"
check "vps-101's scan is an incident" wait_for 10 cmd_is -ge 1 incidents vps-101 scan

echo "# nmap -sn -PE from vps-202: ICMP echo sweep of the same hosts"
cap=$(lab_capture inet eth0 icmp "src host $VPS202_V4 and icmp") || exit 1
lab_exec vps202 timeout 30 nmap -sn -PE -T4 -n --max-retries 0 192.0.2.128-254 >"$LAB_DIR/log/icmp.log" 2>&1
capture_stop "$cap" 1
p=$(distinct "$LAB_DIR/icmp.pcap" "src host $VPS202_V4")
echo "     $p distinct ICMP probes reached the internet"
check "ICMP sweep: at most 10 distinct probes reached the internet ($p)" test "$p" -le 10
lab_summary
