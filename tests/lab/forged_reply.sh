#!/bin/bash
# Lab scenario (step 7): a hostile customer with an accomplice cannot walk
# around the data plane.  The trick: the accomplice forges one SYN
# "MTA:587 -> VPS:41587"; the VPS drops it in its own firewall; conntrack
# then holds a flow whose reply direction is VPS:41587 -> MTA:587, and the
# VPS's own SYN from 41587 would be taken as a reply.  Also: connections
# opened before registration or before a revoke, and packets conntrack calls
# invalid (SYN+ACK, SYN+FIN) aimed at port 25.
# Usage: forged_reply.sh BUILD_DIR SOURCE_ROOT (namespaces prefix pcf).
# LAB_TOPOLOGY=bridged: the same with every VPS a port of a bridge in hv
# (step 8; prefix pcfb), where the proxy connects from the hypervisor.
set -u
here=$(dirname "$(readlink -f "$0")")
export LAB_TOPOLOGY=${LAB_TOPOLOGY:-routed}
[ "$LAB_TOPOLOGY" = bridged ] && export LAB_PREFIX=${LAB_PREFIX:-pcfb}
export LAB_PREFIX=${LAB_PREFIX:-pcf} LAB_QUIET=1
. "$here/lab.sh"
. "$here/common.sh"

lab_install python3-scapy || exit 1
PY=/usr/bin/python3 # Debian's, which has scapy
FORGE=$here/forge.py
lab_deps || exit 1
lab_up --trap || { echo "FAIL lab_up"; exit 1; }
pc_setup "$1" "$2"
chmod o+rx "$LAB_DIR" && chmod o+r "$PC_CFG" # the proxy reloads as nobody

# shellcheck disable=SC2046 # word splitting of the link options is meant
pc vps add vps-201 --site milano --owner bruno@example.it --lang it $(pc_vps_link VPS201) --by lab >/dev/null 2>&1
# shellcheck disable=SC2046
pc vps add vps-202 --site milano --owner carla@example.it $(pc_vps_link VPS202) --by lab >/dev/null 2>&1
FAM=inet # the table that counts blocked attempts
[ "$LAB_TOPOLOGY" = bridged ] && FAM=bridge
check "agent starts" agent_start
check "portcullis-smtpd starts" smtpd_start

forge() { lab_exec "$1" "$PY" "$FORGE" "${@:2}" 2>/dev/null; }

# The customer's own firewall in its VPS drops what the accomplice sends, so
# the VPS's kernel never answers it with a reset that would end the entry.
customer_firewall() { # NS
        lab_exec "$1" nft -f - <<'EOF'
table inet customer {
        chain input {
                type filter hook input priority 0; policy accept;
                tcp flags & (syn | ack) == syn tcp dport 41000-41999 drop
                udp dport 41000-41999 drop
        }
}
EOF
}
customer_firewall vps201
customer_firewall vps202
customer_firewall inet # the accomplice's own server drops what the VPS forges

# attempts IFACE PROTO PORT: blocked egress attempts the kernel counted.
attempts() {
        nft_hv -j list set $FAM portcullis attempts_out | "$PY" -c '
import json, sys
n = 0
for item in json.load(sys.stdin)["nftables"]:
    for e in item.get("set", {}).get("elem", []):
        e = e.get("elem", e)
        v = e.get("val", {}).get("concat", [])
        if v[:1] == [sys.argv[1]] and str(v[1]) == sys.argv[2] and v[2] == int(sys.argv[3]):
            n += e.get("counter", {}).get("packets", 0)
print(n)' "$1" "$2" "$3"
}

# counted_more IFACE PROTO PORT BEFORE: the counter went up.
counted_more() { [ "$(attempts "$1" "$2" "$3")" -gt "$4" ]; }

echo "# provider B (milano): the accomplice in inet forges the first packet"
before=$(attempts "$VPS201_IF" tcp 587)
forge inet tcp "$LAB_INET_V4" 587 "$VPS201_V4" 41587 S
check "swaks from port 41587 to 587 still fails fast (IPv4)" \
        refused_fast 2 swaks_send vps201 "$LAB_INET_V4" 587 "forged-587" --local-port 41587
check "... and is counted as a blocked attempt" counted_more "$VPS201_IF" tcp 587 "$before"
check "nothing was delivered" test -z "$(lab_mail_find forged-587)"

before=$(attempts "$VPS201_IF" tcp 25)
forge inet tcp "$LAB_INET_V6" 25 "$VPS201_V6" 41025 S
check "swaks from port 41025 to 25 still fails fast (IPv6)" \
        refused_fast 2 swaks_send vps201 "$LAB_INET_V6" 25 "forged-25-v6" --local-port 41025
check "... and is counted as a blocked attempt" counted_more "$VPS201_IF" tcp 25 "$before"

before=$(attempts "$VPS201_IF" udp 500)
forge inet udp "$LAB_INET_V4" 500 "$VPS201_V4" 41500 ike-forged
forge vps201 udpsend "$LAB_INET_V4" 500 41500 ike-after-forgery
sleep 0.3
check "UDP from 41500 to 500 never reaches the listener" test "$(lab_udp_received 500 "$VPS201_V4")" = 0
check "... and is counted as a blocked attempt" counted_more "$VPS201_IF" udp 500 "$before"

before=$(attempts "$VPS201_IF" tcp 6881)
forge inet tcp "$LAB_INET_V4" 6881 "$VPS201_V4" 41881 S
check "TCP from 41881 to 6881 still fails fast" \
        refused_fast 2 lab_exec vps201 socat -T2 -u "TCP:$LAB_INET_V4:6881,sourceport=41881,connect-timeout=2" -
check "... and is counted as a blocked attempt" counted_more "$VPS201_IF" tcp 6881 "$before"

echo "# provider B: the accomplice is another VPS of the site (vps-202 forges the MTA)"
forge vps202 tcp "$LAB_INET_V4" 587 "$VPS201_V4" 41588 S
before=$(attempts "$VPS201_IF" tcp 587)
check "swaks from port 41588 to 587 still fails fast" \
        refused_fast 2 swaks_send vps201 "$LAB_INET_V4" 587 "forged-by-vps" --local-port 41588
check "... and is counted as a blocked attempt" counted_more "$VPS201_IF" tcp 587 "$before"

echo "# provider B: the ingress side in disguise (a server on blocked 6881)"
lab_serve_tcp vps201 6881 >/dev/null 2>&1
forge vps201 tcp "$VPS201_V4" 6881 "$LAB_INET_V4" 41999 S
check_not "inet -> vps-201:6881 from port 41999 is still blocked" \
        lab_exec inet socat -T2 -u "TCP:$VPS201_V4:6881,sourceport=41999,connect-timeout=2" -

echo "# a connection open before a revoke is cut"
pc exception grant vps-201 smtp --by alice --reason "lab: invoices" >/dev/null 2>&1
ctl=$LAB_DIR/hold-revoke && mkdir -p "$ctl"
lab_bg hold-revoke vps201 "$PY" "$FORGE" hold "$LAB_INET_V4" 587 0 "$ctl" >/dev/null
check "(control: vps-201 holds a session with the MTA's 587 while granted)" wait_for 5 test -e "$ctl/open"
pc exception revoke vps-201 smtp --by alice --reason "lab: done" >/dev/null 2>&1
touch "$ctl/go"
wait_for 8 grep -q '^\(cut\|reply\)' "$LAB_DIR/log/hold-revoke.log"
check "after the revoke the open session gets no answer" grep -q '^cut' "$LAB_DIR/log/hold-revoke.log"

echo "# a connection open when an exception ends by itself is cut"
pc exception grant vps-201 smtp --by alice --reason "lab: two seconds" --until +2s >/dev/null 2>&1
ctl=$LAB_DIR/hold-expiry && mkdir -p "$ctl"
lab_bg hold-expiry vps201 "$PY" "$FORGE" hold "$LAB_INET_V4" 587 0 "$ctl" >/dev/null
check "(control: vps-201 holds a session with the MTA's 587 while granted)" wait_for 3 test -e "$ctl/open"
sleep 3.5 # the exception ends, then the agent's next pass (1 s in the lab)
touch "$ctl/go"
wait_for 8 grep -q '^\(cut\|reply\)' "$LAB_DIR/log/hold-expiry.log"
check "after the exception ended the open session gets no answer" grep -q '^cut' "$LAB_DIR/log/hold-expiry.log"

echo "# provider A (lenoir): port 25 only ever goes through the proxy"
ctl=$LAB_DIR/hold-before && mkdir -p "$ctl"
lab_bg hold-before vps101 "$PY" "$FORGE" hold "$LAB_INET_V4" 25 0 "$ctl" >/dev/null
check "(control: unregistered vps-101 talks to the MTA's 25 directly)" wait_for 5 test -e "$ctl/open"
# shellcheck disable=SC2046
pc vps add vps-101 --site lenoir --owner ada@example.net $(pc_vps_link VPS101) --by lab >/dev/null 2>&1
touch "$ctl/go"
wait_for 8 grep -q '^\(cut\|reply\)' "$LAB_DIR/log/hold-before.log"
check "the session opened before registration is cut at registration" \
        grep -q '^cut' "$LAB_DIR/log/hold-before.log"

lab_serve_tcp vps101 25 >/dev/null 2>&1
check "(control: inbound mail to a server on vps-101's port 25 still arrives)" \
        test "$(lab_tcp_hello inet "$VPS101_V4" 25 2)" = "hello from 25"

echo "# a filter placed ends the flows it covers, and only those"
ctl=$LAB_DIR/hold-587 && mkdir -p "$ctl"
lab_bg hold-587 vps101 "$PY" "$FORGE" hold "$LAB_INET_V4" 587 0 "$ctl" >/dev/null
ctl25=$LAB_DIR/hold-25 && mkdir -p "$ctl25"
lab_bg hold-25 vps101 "$PY" "$FORGE" hold "$LAB_INET_V4" 25 0 "$ctl25" >/dev/null
check "(control: vps-101 holds a session with 587 directly and one with 25 through the proxy)" \
        wait_for 5 test -e "$ctl/open" -a -e "$ctl25/open"
pc filter place vps-101 --ports tcp/587 --by abuse --reason "lab: complaint" >/dev/null 2>&1
touch "$ctl/go" "$ctl25/go"
wait_for 8 grep -q '^\(cut\|reply\)' "$LAB_DIR/log/hold-587.log"
wait_for 8 grep -q '^\(cut\|reply\)' "$LAB_DIR/log/hold-25.log"
check "the session on the filtered port is cut" grep -q '^cut' "$LAB_DIR/log/hold-587.log"
check "the session with the proxy goes on" grep -q '^reply: 250' "$LAB_DIR/log/hold-25.log"

customer_firewall vps101
forge inet tcp "$LAB_INET_V4" 25 "$VPS101_V4" 41026 S
out=$(swaks_send vps101 "$LAB_INET_V4" 25 "forged-25-a" --local-port 41026 --quit-after EHLO 2>&1)
check "after a forged SYN from the MTA's 25, vps-101 still talks to the proxy (EHLO answered)" \
        grep -q '^<-  250' <<<"$out"
check "... which offers no STARTTLS" check_not_grep STARTTLS "$out"
forge inet tcp "$LAB_INET_V4" 25 "$VPS101_V4" 41027 S
out=$(swaks_send vps101 "$LAB_INET_V4" 25 "forged-25-a-tls" --local-port 41027 -tls 2>&1)
check "swaks --tls after the forgery cannot get TLS from the MTA" check_not_grep "TLS started" "$out"

cap=$(lab_capture inet eth0 invalid "tcp port 25 and host $VPS101_V4")
forge vps101 tcp "$VPS101_V4" 41100 "$LAB_INET_V4" 25 SA
forge vps101 tcp "$VPS101_V4" 41101 "$LAB_INET_V4" 25 SF
forge vps101 tcp "$VPS101_V4" 41102 "$LAB_INET_V4" 25 A
sleep 0.5
kill "$cap" 2>/dev/null; wait "$cap" 2>/dev/null
check "SYN+ACK, SYN+FIN and a stray ACK to port 25 never reach the MTA" \
        test "$(lab_exec inet tcpdump -nn -r "$LAB_DIR/invalid.pcap" 2>/dev/null | wc -l)" = 0

echo "# BCP 38 at a site without anti-spoofing: vps-201 cannot forge a source"
cap=$(lab_capture inet eth0 bcp38 "host 192.0.2.77 or host 2001:db8:ffff::77")
forge vps201 tcp 192.0.2.77 5000 "$LAB_INET_V4" 80 S
forge vps201 tcp 2001:db8:ffff::77 5000 "$LAB_INET_V6" 80 S
sleep 0.5
kill "$cap" 2>/dev/null; wait "$cap" 2>/dev/null
check "packets from vps-201 with forged sources (IPv4, IPv6) never reach inet" \
        test "$(lab_exec inet tcpdump -nn -r "$LAB_DIR/bcp38.pcap" 2>/dev/null | wc -l)" = 0
check_not "... silently: vps-201 is not suspended (provider B has no anti-spoofing response)" suspended "$VPS201_IF"

echo "# the agent's control socket and a request with a NUL before its newline"
out=$(printf 'sta\0tus\n' | ip netns exec "$LAB_HV" socat -t2 - "UNIX-CONNECT:$LAB_DIR/control.sock" 2>&1)
check "it is refused with a reason" grep -q "NUL byte" <<<"$out"
check "and the agent still answers" pc status

check "agent still running" kill -0 "$AGENT_PID"
check "proxy still running" kill -0 "$SMTPD_PID"
lab_summary
