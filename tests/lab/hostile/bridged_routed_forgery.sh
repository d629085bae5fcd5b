#!/bin/bash
# Hostile review (bridged sites): the site policy of a bridged VPS is decided
# by the bridge table's forward chain, which only sees frames the bridge
# forwards.  A frame addressed to the hypervisor's own MAC is not forwarded by
# the bridge: it goes up to the hypervisor, which routes it (it has an
# on-link route to every bridged VPS, and forwarding on for its routed sites)
# back out of the bridge -- through the bridge's output hook, never its
# forward hook, and unmarked, so the inet table lets it through as any
# routed packet.  An accomplice on the segment (here in inet) uses that to
# plant conntrack state the bridge table never judged:
#   - a forged "reply" MTA:500 -> VPS:41500 (UDP): the VPS's datagrams to the
#     blocked IKE port are then replies, and so are the answers;
#   - a forged SYN MTA:587 -> VPS:41587: the VPS's SYN to the blocked 587 is
#     no longer refused, it leaves for the MTA;
#   - a forged SYN *from the VPS's address* VPS:41600 -> MTA:587: the MTA's
#     SYN-ACK, bridged to the VPS, is a reply; the VPS finishes the handshake
#     and reads the MTA's greeting on a port its policy blocks;
#   - an inbound datagram to the VPS's blocked BitTorrent port.
# Exits non-zero while the hole exists.
# Usage: bridged_routed_forgery.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_TOPOLOGY=bridged LAB_PREFIX=${LAB_PREFIX:-hbr} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
PY=/usr/bin/python3
lab_deps || exit 1
lab_up --trap || { echo "FAIL lab_up"; exit 1; }
pc_setup "$1" "$2"
# shellcheck disable=SC2046 # word splitting of the link options is meant
pc vps add vps-201 --site milano --owner bruno@example.it $(pc_vps_link VPS201) --by lab >/dev/null 2>&1
check "agent starts" agent_start

# The customer's own firewall drops what the accomplice sends it, so that
# its kernel never answers with a reset that would end the entry.
lab_exec vps201 nft -f - <<'NFT'
table inet customer {
        chain input {
                type filter hook input priority 0; policy accept;
                tcp flags & (syn | ack) == syn tcp dport 41000-41999 drop
                udp dport 41000-41999 drop
                tcp sport 587 tcp dport 41600 drop
        }
}
NFT
HVMAC=$(lab_exec hv cat /sys/class/net/br0/address)
l2() { lab_exec "$1" timeout 10 "$PY" "$here/l2x.py" "${@:2}" 2>/dev/null; }

echo "# a forged UDP reply through the hypervisor's MAC"
l2 inet frame "$HVMAC" udp "$LAB_INET_V4" 500 "$VPS201_V4" 41500 ike-forged
lab_exec vps201 timeout 5 "$PY" "$lab/forge.py" udpsend "$LAB_INET_V4" 500 41500 ike-after-forgery
sleep 0.5
check "vps-201's datagrams from 41500 never reach the IKE port (received: $(lab_udp_received 500 "$VPS201_V4"))" \
        test "$(lab_udp_received 500 "$VPS201_V4")" = 0

echo "# a forged SYN through the hypervisor's MAC"
l2 inet frame "$HVMAC" tcp "$LAB_INET_V4" 587 "$VPS201_V4" 41587 S
check "swaks from port 41587 to 587 is still refused at once (IPv4)" \
        refused_fast 2 swaks_send vps201 "$LAB_INET_V4" 587 "routed-forged-587" --local-port 41587
l2 inet frame "$HVMAC" tcp "$LAB_INET_V6" 587 "$VPS201_V6" 41588 S
check "swaks from port 41588 to 587 is still refused at once (IPv6)" \
        refused_fast 2 swaks_send vps201 "$LAB_INET_V6" 587 "routed-forged-587-v6" --local-port 41588

echo "# the VPS's own SYN, forged by the accomplice through the hypervisor's MAC"
lab_bg finish vps201 "$PY" "$here/l2x.py" finish "$VPS201_V4" 41600 "$LAB_INET_V4" 587 >/dev/null
wait_for 10 grep -q listening "$LAB_DIR/log/finish.log"
sleep 0.3
l2 inet frame "$HVMAC" tcp "$VPS201_V4" 41600 "$LAB_INET_V4" 587 S
wait_for 10 grep -q '^\(data\|no syn-ack\)' "$LAB_DIR/log/finish.log"
sleep 2.5
greeting=$(grep -m1 '^data' "$LAB_DIR/log/finish.log")
check_not "vps-201 never reads the MTA's 587 greeting (${greeting:-nothing})" grep -q "^data: 220" "$LAB_DIR/log/finish.log"

echo "# an inbound datagram to the blocked BitTorrent port, through the hypervisor's MAC"
lab_bg seed vps201 socat -u UDP-RECV:6881 "OPEN:$LAB_DIR/seed.txt,creat,append" >/dev/null
sleep 0.3
l2 inet frame "$HVMAC" udp "$LAB_INET_V4" 41881 "$VPS201_V4" 6881 routed-seed
sleep 0.5
check "vps-201's udp/6881 receives nothing ($(cat "$LAB_DIR/seed.txt" 2>/dev/null))" test ! -s "$LAB_DIR/seed.txt"
lab_summary
