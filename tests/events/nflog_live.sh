#!/bin/bash
# NFLOG against a real kernel: in a private network namespace, an nftables
# rule on lo's input logs UDP to 127.0.0.2 and ::2 to group 7; nflog_probe
# must print both packets with the rule's prefix, the interface and the
# addresses.  Exit 0 on success, 1 on failure, 77 (skip) if not root.
# Usage: tests/events/nflog_live.sh PATH/TO/nflog_probe
set -u
probe=${1:?usage: nflog_live.sh PATH/TO/nflog_probe}
if [ "$(id -u)" != 0 ]; then
	echo "SKIP: needs root (network namespaces, nftables, NFLOG)"
	exit 77
fi
for tool in ip nft; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done

ns="pcnflog-$$"
tmp=$(mktemp -d)
probe_pid=
cleanup() {
	[ -n "$probe_pid" ] && kill "$probe_pid" 2>/dev/null && wait "$probe_pid" 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	echo "FAIL $*"
	echo "--- probe stdout:"; cat "$tmp/out" 2>/dev/null
	echo "--- probe stderr:"; cat "$tmp/err" 2>/dev/null
	exit 1
}
in_ns() { ip netns exec "$ns" "$@"; }

ip netns add "$ns" || fail "ip netns add $ns"
in_ns ip link set lo up || fail "lo up"
in_ns ip -6 addr add ::2/128 dev lo 2>/dev/null
in_ns ip -6 addr show dev lo | grep -q 'inet6 ::2/128' || fail "::2 on lo"
in_ns nft -f - <<'NFT' || fail "loading the ruleset"
table inet t {
	chain c {
		type filter hook input priority 0;
		ip daddr 127.0.0.2 meta l4proto udp log group 7 prefix "pc-test"
		ip6 daddr ::2 meta l4proto udp log group 7 prefix "pc-test6"
	}
}
NFT

in_ns "$probe" 7 2 3 >"$tmp/out" 2>"$tmp/err" &
probe_pid=$!
for _ in $(seq 50); do
	grep -q '^ready$' "$tmp/out" && break
	kill -0 "$probe_pid" 2>/dev/null || break
	sleep 0.1
done
grep -q '^ready$' "$tmp/out" || fail "the probe did not bind group 7"

# One UDP datagram each ("x\n": 2 bytes of payload); nothing listens, and
# the rules log only UDP, not the ICMP port-unreachable replies (which for
# IPv6 go to ::2 too: the source address the kernel picks is ::2).
in_ns bash -c 'echo x >/dev/udp/127.0.0.2/9' 2>/dev/null
in_ns bash -c 'echo x >/dev/udp/::2/9' 2>/dev/null

wait "$probe_pid"
rc=$?
probe_pid=
[ "$rc" = 0 ] || fail "probe exited $rc (wanted 2 packets within 3 s)"

# "prefix iface family src dst proto len"
grep -qx 'pc-test lo ipv4 127.0.0.1 127.0.0.2 17 30' "$tmp/out" || fail "no IPv4 line"
grep -qx 'pc-test6 lo ipv6 ::2 ::2 17 50' "$tmp/out" || grep -qx 'pc-test6 lo ipv6 ::1 ::2 17 50' "$tmp/out" ||
	fail "no IPv6 line"
[ "$(grep -vc '^ready$' "$tmp/out")" = 2 ] || fail "expected exactly 2 packet lines"
echo "ok   events/nflog: $(grep -v '^ready$' "$tmp/out" | tr '\n' ';')"
exit 0
