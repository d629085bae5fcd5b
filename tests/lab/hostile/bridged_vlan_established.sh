#!/bin/bash
# Hostile review (bridged sites): a VPS port receives IPv4, IPv6 and ARP
# only, never a VLAN-tagged frame (the bridge table's enforce drops the rest,
# verdict "ethertype").  With net.bridge.bridge-nf-filter-vlan-tagged=1 the
# hypervisor's br_netfilter hands tagged IP frames to the inet hooks too,
# where conntrack ignores the tag: an accomplice that tags a frame of a flow
# the VPS opened made it "established", and the established shortcut of
# enforce (PC_BR_MARK_ESTABLISHED) let it through before the ethertype
# check: frames on a VLAN inside the VPS.  Untagged, the same frame is a
# reply and arrives.  Exits non-zero while the hole exists.
# Usage: bridged_vlan_established.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_TOPOLOGY=bridged LAB_PREFIX=${LAB_PREFIX:-hbv} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
PY=/usr/bin/python3
lab_deps || exit 1
lab_install python3-scapy tcpdump || exit 1
lab_up --trap --no-servers || { echo "FAIL lab_up"; exit 1; }
pc_setup "$1" "$2"
# shellcheck disable=SC2046 # word splitting of the link options is meant
pc vps add vps-201 --site milano --owner bruno@example.it $(pc_vps_link VPS201) --by lab >/dev/null 2>&1
check "agent starts" agent_start
for f in bridge-nf-filter-vlan-tagged bridge-nf-filter-pppoe-tagged; do
        lab_exec hv sh -c "echo 1 >/proc/sys/net/bridge/$f"
done
check "br_netfilter hands tagged frames to the inet hooks here" \
        test "$(lab_exec hv cat /proc/sys/net/bridge/bridge-nf-filter-vlan-tagged)" = 1
# the accomplice takes the VPS's datagrams without answering (no ICMP to end the flow)
lab_exec inet nft -f - <<'NFT'
table inet accomplice {
        chain input {
                type filter hook input priority 0; policy accept;
                udp dport 7777 drop
        }
}
NFT
cap=$LAB_DIR/vps.pcap
cap_pid=$(lab_bg cap vps201 tcpdump -U -e -nn -i eth0 -w "$cap" udp)
sleep 1
sent() { # VPS-ADDR INET-ADDR: the VPS opens the flow, the accomplice sends it back untagged and tagged
        lab_exec vps201 timeout 5 "$PY" "$lab/forge.py" udpsend "$2" 7777 40000 open-flow
        sleep 0.3
        lab_exec inet timeout 10 "$PY" - "$INET_MAC" "$VPS201_MAC" "$2" "$1" <<'PY'
import sys, time
from scapy.all import Ether, Dot1Q, IP, IPv6, UDP, Raw, sendp
src, dst, a, b = sys.argv[1:5]
ip = IPv6(src=a, dst=b) if ":" in a else IP(src=a, dst=b)
for tag, payload in ((None, b"untagged-reply"), (100, b"tagged-reply")):
    f = Ether(src=src, dst=dst)
    if tag is not None:
        f = f / Dot1Q(vlan=tag)
    sendp(f / ip / UDP(sport=7777, dport=40000) / Raw(payload), iface="eth0", verbose=False)
    time.sleep(0.2)
PY
}
INET_MAC=$(lab_exec inet cat /sys/class/net/eth0/address)
before=$(nft_hv list counter bridge portcullis verdict_ethertype | awk '/packets/ { print $2 }')
sent "$VPS201_V4" "$LAB_INET_V4"
sent "$VPS201_V6" "$LAB_INET_V6"
sleep 1
kill "$cap_pid" 2>/dev/null
sleep 0.5
got=$(lab_exec vps201 tcpdump -e -nn -r "$cap" 2>/dev/null)
after=$(nft_hv list counter bridge portcullis verdict_ethertype | awk '/packets/ { print $2 }')
untagged=$(grep -v "vlan" <<<"$got" | grep -c "\.7777 > .*\.40000: UDP")
check "the untagged replies arrive (IPv4 and IPv6: $untagged seen)" test "$untagged" -ge 2
check_not "no VLAN-tagged frame reaches vps-201's port ($(grep -c 'vlan 100' <<<"$got") seen)" \
        grep -q "vlan 100" <<<"$got"
check "both tagged frames were dropped as ethertype (counter ${before:-?} -> ${after:-?})" \
        test "$((${after:-0} - ${before:-0}))" -ge 2
lab_summary
