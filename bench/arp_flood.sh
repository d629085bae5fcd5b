#!/bin/bash
# The libvirt nwfilter anchor, on a bridge: a VPS floods ARP broadcasts
# (legitimate requests from its own MAC and IP) into a bridge with N VPS
# ports, with and without Portcullis' bridged anti-spoofing; reports the
# CPU the whole machine spent (from /proc/stat) while the flood ran.
# Portcullis checks a frame once, where it enters (bridge prerouting,
# sets keyed by the port), so the cost must not grow with N; per-port rule
# chains check it again on every port it is flooded to.
# Usage: bench/arp_flood.sh BUILD_DIR [PORTS...]   (default: 100 1000)
set -u
build=$(readlink -f "${1:-build}")
shift
ports=("${@:-100}")
[ $# -eq 0 ] && ports=(100 1000)
root=$(readlink -f "$(dirname "$0")/..")
ns=pcaf-hv
vns=pcaf-vps
rate=2000     # frames per second
secs=5
tmp=$(mktemp -d /tmp/pcaf.XXXXXX)
cleanup() { ip netns del "$ns" 2>/dev/null; ip netns del "$vns" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

busy() { # jiffies the machine was not idle
        awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat
}

# CONFIG_LABEL: floods for $secs seconds and prints CPU% of one core.
flood() {
        local b0 b1 t0 t1
        b0=$(busy)
        t0=$(date +%s%N)
        ip netns exec "$vns" timeout $((secs + 5)) /usr/bin/python3 -c "
from scapy.all import Ether, ARP, sendp, conf
import time
f = Ether(src='52:54:00:0a:00:01', dst='ff:ff:ff:ff:ff:ff')/ARP(op=1, hwsrc='52:54:00:0a:00:01', psrc='198.51.100.201', pdst='198.51.100.202')
s = conf.L2socket(iface='eth0')
n = $rate * $secs
t0 = time.time()
for i in range(n):
    try:
        s.send(f)
    except OSError:          # ENOBUFS: the bridge is saturated; wait, go on
        time.sleep(0.001)
    d = t0 + (i + 1) / $rate - time.time()
    if d > 0:
        time.sleep(d)
s.close()
"
        b1=$(busy)
        t1=$(date +%s%N)
        # CPU over the flood's real duration; and the rate the sender reached
        echo "$(( (b1 - b0) * 100 * 1000000000 / ((t1 - t0) * $(getconf CLK_TCK)) ))% at $(( rate * secs * 1000000000 / (t1 - t0) ))/s"
}

setup() { # N
        cleanup 2>/dev/null; mkdir -p "$tmp"
        ip netns add "$ns"; ip netns add "$vns"
        ip -n "$ns" link add br0 type bridge
        ip -n "$ns" link set br0 type bridge stp_state 0
        ip -n "$ns" link set br0 up
        ip -n "$ns" link add b0 type veth peer name eth0 netns "$vns"
        ip -n "$vns" link set eth0 address 52:54:00:0a:00:01
        ip -n "$vns" link set eth0 up
        ip -n "$ns" link set b0 master br0 up
        for i in $(seq 1 "$1"); do
                echo "link add p$i type veth peer name q$i"
                echo "link set p$i master br0"
                echo "link set p$i up"
                echo "link set q$i up"
        done | ip -n "$ns" -batch -
}

cat >"$tmp.cfg" <<CFG
database: sqlite:$tmp/db
profiles:
  - $root/etc/profiles/lenoir.yaml
sites:
  br:
    policy: lenoir
    topology: bridged
agent:
  control-socket: $tmp/control.sock
CFG
echo "target $rate ARP broadcasts/s, $((rate * secs)) frames; CPU is % of one core over the flood, whole machine ($(nproc) cores), sender included"
idle0=$(busy); sleep 2; idle1=$(busy)
echo "machine at rest: $(( (idle1 - idle0) * 100 / (2 * $(getconf CLK_TCK)) ))%"
for n in "${ports[@]}"; do
        setup "$n" || exit 1
        none=$(flood)
        ip netns exec "$ns" "$build/bench/bench_nft" --config "$tmp.cfg" --here --site br --vps "$n" \
                --extra-iface b0 --extra-mac 52:54:00:0a:00:01 --extra-addr 198.51.100.201 >/dev/null || exit 1
        pc=$(flood)
        passed=$(ip netns exec "$ns" nft -j list set bridge portcullis spoof_arp | grep -c '"b0"')
        printf 'ports=%-5s no ruleset %-16s portcullis %-16s (the flood is legitimate; counted as forged: %s)\n' \
                "$n" "$none" "$pc" "$passed"
done
