#!/bin/bash
# Conntrack events against a real kernel.  Three private namespaces: a
# client, a router (the hypervisor: ct_events_probe listens here, as the
# agent would) and a server; the client opens one flow per case below
# through the router, each from its own source port, and the probe's lines
# must show each flow's life as ct_events.h documents it.  The router's
# conntrack timeouts are cut to a few seconds so that DESTROY comes within
# the test.  Exit 0 on success, 1 on failure, 77 (skip) if not root.
# Usage: tests/events/ct_events_live.sh PATH/TO/ct_events_probe
set -u
probe=${1:?usage: ct_events_live.sh PATH/TO/ct_events_probe}
if [ "$(id -u)" != 0 ]; then
	echo "SKIP: needs root (network namespaces, nftables, ctnetlink)"
	exit 77
fi
# ping (the paths checked first) and conntrack (the table dumps below)
# are the lab's: installed here if missing, as a lab scenario does.
here=$(dirname "$(readlink -f "$0")")
# shellcheck source=../lab/lab.sh
. "$here/../lab/lab.sh"
# shellcheck source=../lab/common.sh
. "$here/../lab/common.sh"
lab_install iputils-ping conntrack || exit 1
for tool in ip nft python3 ping conntrack; do
	command -v "$tool" >/dev/null || { echo "FAIL $tool not installed"; exit 1; }
done

c="ctev-c-$$" r="ctev-r-$$" s="ctev-s-$$"
tmp=$(mktemp -d)
probe_pid= server_pid=
cleanup() {
	[ -n "$probe_pid" ] && kill "$probe_pid" 2>/dev/null && wait "$probe_pid" 2>/dev/null
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
	for ns in "$c" "$r" "$s"; do ip netns del "$ns" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	echo "FAIL $*"
	echo "--- probe stdout:"; cat "$tmp/out" 2>/dev/null
	echo "--- probe stderr:"; cat "$tmp/err" 2>/dev/null
	echo "--- clients:"; cat "$tmp"/client.* 2>/dev/null
	exit 1
}
in_c() { ip netns exec "$c" "$@"; }
in_r() { ip netns exec "$r" "$@"; }
in_s() { ip netns exec "$s" "$@"; }

# client c0 192.0.2.1 -- r0 192.0.2.2 [router] r1 192.0.2.129 -- s0 192.0.2.130 server
for ns in "$c" "$r" "$s"; do
	ip netns add "$ns" || fail "ip netns add $ns"
	ip netns exec "$ns" ip link set lo up
done
ip link add c0 netns "$c" type veth peer name r0 netns "$r" || fail "veth c0/r0"
ip link add s0 netns "$s" type veth peer name r1 netns "$r" || fail "veth s0/r1"
in_c ip addr add 192.0.2.1/25 dev c0
in_c ip -6 addr add 2001:db8:1::1/64 dev c0 nodad
in_r ip addr add 192.0.2.2/25 dev r0
in_r ip -6 addr add 2001:db8:1::2/64 dev r0 nodad
in_r ip addr add 192.0.2.129/25 dev r1
in_r ip -6 addr add 2001:db8:2::1/64 dev r1 nodad
in_s ip addr add 192.0.2.130/25 dev s0
in_s ip -6 addr add 2001:db8:2::2/64 dev s0 nodad
in_c ip link set c0 up; in_r ip link set r0 up; in_r ip link set r1 up; in_s ip link set s0 up
in_c ip route add default via 192.0.2.2 || fail "client route"
in_c ip -6 route add default via 2001:db8:1::2 || fail "client route6"
in_s ip route add default via 192.0.2.129 || fail "server route"
in_s ip -6 route add default via 2001:db8:2::1 || fail "server route6"
in_r sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 || fail "forwarding"

# Conntrack tracks nothing in a namespace until a rule there uses it.
in_r nft -f - <<'NFT' || fail "router ruleset"
table inet ctev {
	chain c {
		type filter hook forward priority 0;
		ct state invalid counter
	}
}
NFT
# Short timeouts, so DESTROY comes within the test; counters on (they
# apply to flows created from now on).  nf_conntrack_events stays at the
# kernel's default: the probe must see events as the agent would.
in_r sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_syn_sent=3 \
	net.netfilter.nf_conntrack_tcp_timeout_syn_recv=3 \
	net.netfilter.nf_conntrack_tcp_timeout_close=2 \
	net.netfilter.nf_conntrack_tcp_timeout_time_wait=2 \
	net.netfilter.nf_conntrack_tcp_timeout_fin_wait=2 \
	net.netfilter.nf_conntrack_tcp_timeout_last_ack=2 \
	net.netfilter.nf_conntrack_udp_timeout=3 \
	net.netfilter.nf_conntrack_udp_timeout_stream=3 \
	net.netfilter.nf_conntrack_acct=1 || fail "conntrack sysctls"
events_sysctl=$(in_r sysctl -n net.netfilter.nf_conntrack_events)

# The server drops TCP 82 and UDP 5301 silently; TCP 81 and UDP 5302 are
# closed (RST, ICMP port unreachable).
in_s nft -f - <<'NFT' || fail "server ruleset"
table inet ctev {
	chain c {
		type filter hook input priority 0;
		tcp dport 82 drop
		udp dport 5301 drop
	}
}
NFT
cat >"$tmp/server.py" <<'PY'
import select, socket
tcp = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
tcp.bind(("::", 80)); tcp.listen(16)
udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
udp.bind(("::", 5300))
print("listening", flush=True)
while True:
    for s in select.select([tcp, udp], [], [])[0]:
        if s is tcp:
            conn, _ = tcp.accept()
            conn.sendall(b"hi\n"); conn.close()
        else:
            data, peer = udp.recvfrom(2048)
            udp.sendto(data, peer)
PY
# not through in_s: a function in the background is a subshell, and
# killing it would leave the server running
ip netns exec "$s" python3 "$tmp/server.py" >"$tmp/server" 2>&1 &
server_pid=$!
for _ in $(seq 50); do grep -q listening "$tmp/server" && break; sleep 0.1; done
grep -q listening "$tmp/server" || fail "the server did not start"

# Both paths work (neighbour discovery done) before anything is measured.
# These pings make flows in the router before the probe subscribes: under
# nf_conntrack_events=2 those must never produce an event.
for dst in 192.0.2.130 2001:db8:2::2; do
	for _ in $(seq 30); do in_c ping -c1 -W1 -q "$dst" >/dev/null 2>&1 && break; sleep 0.1; done
	in_c ping -c1 -W1 -q "$dst" >/dev/null 2>&1 || fail "no path from the client to $dst"
done

cat >"$tmp/client.py" <<'PY'
import socket, sys
kind, fam, dst, sport, dport = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
af = socket.AF_INET6 if fam == "6" else socket.AF_INET
src = "2001:db8:1::1" if fam == "6" else "192.0.2.1"
s = socket.socket(af, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((src, sport))
s.settimeout(1.5)
try:
    if kind == "tcp":
        s.connect((dst, dport))
        print(sport, "connected", s.recv(16), flush=True)
    else:
        s.connect((dst, dport))  # so that an ICMP error shows as ECONNREFUSED
        s.send(b"x\n")
        print(sport, "reply", s.recv(16), flush=True)
except Exception as e:
    print(sport, type(e).__name__, flush=True)
s.close()
PY

# The probe stops after the 8 flows' DESTROY events.  The kernel's gc
# worker reaps expired flows (and sends their DESTROY) only when its scan
# comes round, up to a minute later (GC_SCAN_INTERVAL_MAX); a table dump
# reaps expired flows at once, so the test dumps the router's table every
# second once the timeouts are past.  CT_EVENTS_NATURAL=1 waits for the gc
# worker instead (slow: to measure).
natural=${CT_EVENTS_NATURAL:-0}
in_r "$probe" 90 7 8 >"$tmp/out" 2>"$tmp/err" &
probe_pid=$!
for _ in $(seq 50); do
	grep -q '^ready$' "$tmp/out" && break
	kill -0 "$probe_pid" 2>/dev/null || break
	sleep 0.1
done
grep -q '^ready$' "$tmp/out" || fail "the probe did not subscribe"

# source port: case
#   40001 TCP SYN to a closed port (RST)      40002 TCP to a listener
#   40003 TCP SYN dropped (never answered)    40004 UDP answered
#   40005 UDP dropped (never answered)        40006 UDP to a closed port (ICMP)
#   40007 IPv6 TCP to a listener              40008 IPv6 UDP answered
# Each client writes a file of its own: with one file for all, CI twice
# missed a line of a client answered at the same moment as another whose
# line had the same length (most likely one append over the other).
client() { # KIND FAMILY DST SPORT DPORT
	in_c python3 "$tmp/client.py" "$@" >"$tmp/client.$4" 2>&1
}
client tcp 4 192.0.2.130 40001 81 &
client tcp 4 192.0.2.130 40002 80 &
client tcp 4 192.0.2.130 40003 82 &
client udp 4 192.0.2.130 40004 5300 &
client udp 4 192.0.2.130 40005 5301 &
client udp 4 192.0.2.130 40006 5302 &
client tcp 6 2001:db8:2::2 40007 80 &
client udp 6 2001:db8:2::2 40008 5300 &
wait $(jobs -p | grep -vx -e "$probe_pid" -e "$server_pid")
if [ "$natural" != 1 ]; then
	sleep 3 # past every timeout
	while kill -0 "$probe_pid" 2>/dev/null; do
		in_r conntrack -L -f ipv4 >/dev/null 2>&1
		in_r conntrack -L -f ipv6 >/dev/null 2>&1
		sleep 1
	done
fi

wait "$probe_pid"
rc=$?
probe_pid=
[ "$rc" = 0 ] || fail "probe exited $rc (wanted 8 DESTROY events within 90 s)"

# The client's view, to make sure each case was what it claims.
# saw PORT REGEX: the client from source port PORT printed exactly REGEX.
saw() { grep -qxE "$1 ($2)" "$tmp/client.$1" 2>/dev/null; }
said() { tr '\n' ' ' <"$tmp/client.$1" 2>/dev/null; }
saw 40001 'ConnectionRefusedError' || fail "40001 was not refused (the client: $(said 40001))"
saw 40002 "connected b'hi\\\\n'" || fail "40002 did not connect (the client: $(said 40002))"
saw 40003 'TimeoutError|timeout' || fail "40003 did not time out (the client: $(said 40003))"
saw 40004 "reply b'x\\\\n'" || fail "40004 got no reply (the client: $(said 40004))"
saw 40005 'TimeoutError|timeout' || fail "40005 did not time out (the client: $(said 40005))"
saw 40006 'ConnectionRefusedError' || fail "40006 got no ICMP port unreachable (the client: $(said 40006))"
saw 40007 "connected b'hi\\\\n'" || fail "40007 did not connect (the client: $(said 40007))"
saw 40008 "reply b'x\\\\n'" || fail "40008 got no reply (the client: $(said 40008))"

# The events of the flow from source port <$1>, one "TYPE st=N rep=N as=N ctr=..." per line.
life() { awk -v p="$1" '$4 == p { print $1, $7, $8, $9, $11 }' "$tmp/out"; }
timed() { awk -v p="$1" '$4 == p { print $1, $7, $8, $9, $11, $12 }' "$tmp/out"; }
# Asserts that the life of <$1> is exactly the regular expression <$2> (lines joined by ';').
expect() {
	local got
	got=$(life "$1" | tr '\n' ';')
	[[ "$got" =~ ^$2$ ]] || fail "flow $1 ($3): got '$got', wanted /^$2\$/"
}
echo "$(date +%T) measured with nf_conntrack_events=$events_sysctl:"
for p in 40001 40002 40003 40004 40005 40006 40007 40008; do echo "  $p: $(timed "$p" | tr '\n' ';')"; done

# RST-refused: NEW SYN_SENT, then DESTROY at once in CLOSE; never
# SYN_RECV/ESTABLISHED, no UPDATE, and (forwarded) not even SEEN_REPLY: the
# kernel kills the flow before it marks the reply, which only the reply
# counter shows.
expect 40001 'NEW st=1 rep=0 as=0 ctr=-;DESTROY st=8 rep=0 as=0 ctr=1/60/1/40;' "TCP refused by RST"
# Accepted: SYN_RECV with the SYN-ACK, ESTABLISHED and assured, the close,
# and DESTROY with counters.
expect 40002 'NEW st=1 rep=0 as=0 ctr=-;UPDATE st=2 rep=1 as=0 ctr=-;UPDATE st=3 rep=1 as=1 ctr=-;(UPDATE st=[4-8] rep=1 as=1 ctr=-;)+DESTROY st=[78] rep=1 as=1 ctr=[0-9]+/[0-9]+/[0-9]+/[0-9]+;' "TCP accepted"
# Never answered: NEW, then DESTROY in SYN_SENT at the timeout; retransmitted
# SYNs make no event.
expect 40003 'NEW st=1 rep=0 as=0 ctr=-;DESTROY st=1 rep=0 as=0 ctr=[12]/[0-9]+/0/0;' "TCP never answered"
expect 40004 'NEW st=0 rep=0 as=0 ctr=-;UPDATE st=0 rep=1 as=0 ctr=-;DESTROY st=0 rep=1 as=0 ctr=1/30/1/30;' "UDP answered"
expect 40005 'NEW st=0 rep=0 as=0 ctr=-;DESTROY st=0 rep=0 as=0 ctr=1/30/0/0;' "UDP never answered"
expect 40006 'NEW st=0 rep=0 as=0 ctr=-;DESTROY st=0 rep=0 as=0 ctr=1/30/0/0;' "UDP answered by ICMP port unreachable"
expect 40007 'NEW st=1 rep=0 as=0 ctr=-;UPDATE st=2 rep=1 as=0 ctr=-;UPDATE st=3 rep=1 as=1 ctr=-;(UPDATE st=[4-8] rep=1 as=1 ctr=-;)+DESTROY st=[78] rep=1 as=1 ctr=[0-9]+/[0-9]+/[0-9]+/[0-9]+;' "IPv6 TCP accepted"
expect 40008 'NEW st=0 rep=0 as=0 ctr=-;UPDATE st=0 rep=1 as=0 ctr=-;DESTROY st=0 rep=1 as=0 ctr=1/50/1/50;' "IPv6 UDP answered"
# The tuple itself, both families.
grep -q '^NEW tcp 192.0.2.1 40002 192.0.2.130 80 st=1 rep=0 as=0 rsrc=192.0.2.130 ctr=- t=' "$tmp/out" || fail "IPv4 tuple"
grep -q '^NEW udp 2001:db8:1::1 40008 2001:db8:2::2 5300 st=0 rep=0 as=0 rsrc=2001:db8:2::2 ctr=- t=' "$tmp/out" ||
	fail "IPv6 tuple"
# The pings' flows existed before the probe subscribed.
if [ "$events_sysctl" = 2 ]; then
	! grep -q '^[A-Z]* icmp' "$tmp/out" || fail "events for flows created before subscribing"
fi
[ -s "$tmp/err" ] && fail "the probe complained"
echo "ok   events/ct_events: 8 flows, events as documented"
exit 0
