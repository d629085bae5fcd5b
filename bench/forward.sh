#!/bin/bash
# Forwarding cost through the hypervisor: TCP throughput (iperf3) and the
# 64-byte UDP packet rate from a VPS to the internet namespace, with
#   none        no ruleset at all,
#   pc-10       Portcullis' table with 10 VPSes (provider B's profile),
#   pc-100000   the same with 100,000 VPSes,
#   naive-N     one rule per VPS and service in one chain (what per-VPS
#               chains such as libvirt's nwfilter amount to), N VPSes,
# all in one run.  The measured VPS is one of the registered ones, so its
# packets walk the whole lookup path.  Usage: bench/forward.sh BUILD_DIR
# [SECONDS] [NAIVE_VPS]
# LAB_TOPOLOGY=bridged: the VPS is a port of a bridge with the uplink, and
# provider B's site is bridged: none, conntrack-only (br_netfilter's
# conntrack of bridged frames) and pc-10 / pc-10000 (the bridge table's
# per-frame checks and marks, the inet table's verdicts after conntrack).
set -u
here=$(dirname "$(readlink -f "$0")")
root=$(readlink -f "$here/..")
build=$(readlink -f "${1:-build}")
secs=${2:-3}
naive_n=${3:-10000}
export LAB_PREFIX=${LAB_PREFIX:-pcfwd} LAB_QUIET=1 LAB_TOPOLOGY=${LAB_TOPOLOGY:-routed}
. "$root/tests/lab/lab.sh"
# shellcheck source=bench/fwd_lib.sh
. "$here/fwd_lib.sh"
command -v iperf3 >/dev/null || {
        echo "iperf3 iperf3/start_daemon boolean false" | debconf-set-selections
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q iperf3 >/dev/null
}
lab_up --trap --no-servers || exit 1
lab_bg iperf3 inet iperf3 -s >/dev/null
lab_wait_port inet ::1 5201 5 >/dev/null || { echo "iperf3 server did not start"; exit 1; }

# Best of two runs of each: the machine is shared and noisy.
measure() { # LABEL [VPS]
        local tcp=0 udp=0 t u from=${2:-vps201}
        for _ in 1 2; do
                t=$(lab_exec "$from" iperf3 -c "$LAB_INET_V4" -t "$secs" -J 2>/dev/null |
                        python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))')
                u=$(lab_exec "$from" iperf3 -c "$LAB_INET_V4" -u -l 64 -b 0 -t "$secs" -J 2>/dev/null |
                        python3 -c 'import json,sys; e=json.load(sys.stdin)["end"]["sum"]; print("%.0f" % ((e["packets"]-e["lost_packets"])/e["seconds"]))')
                tcp=$(python3 -c "print(max($tcp, ${t:-0}))")
                udp=$(python3 -c "print(max($udp, ${u:-0}))")
        done
        printf '%-14s TCP %6s Gbit/s   UDP-64 %9s packets/s received\n' "$1" "$tcp" "$udp"
}

echo "seconds=$secs per measurement; kernel $(uname -r)"
measure none
if [ "$LAB_TOPOLOGY" = bridged ]; then
        configs="conntrack-only bridged-pc-10 bridged-pc-10000"
else
        configs="conntrack-only pc-10 pc-100000 none antispoof-10 antispoof-100000"
fi
for c in $configs; do
        if [ "$c" = none ]; then # the anti-spoofed VPS's own baseline
                measure "none(vps101)" vps101
                continue
        fi
        fwd_program "$c" || exit 1
        measure "$c" "$(fwd_vps "$c")"
        fwd_clear "$c"
done
[ "$LAB_TOPOLOGY" = bridged ] && exit 0
{
        echo "table inet naive { chain forward { type filter hook forward priority filter; policy accept;"
        for i in $(seq 1 "$naive_n"); do
                echo "iifname \"tap$i\" tcp dport { 25, 26, 465, 587, 2525 } reject"
                echo "iifname \"tap$i\" meta l4proto . th dport { tcp . 1723, tcp . 1728, udp . 500, udp . 1701, udp . 4500 } reject"
                echo "iifname \"tap$i\" meta l4proto { tcp, udp } th dport { 6660-6669, 6881-6889, 6969 } reject"
        done
        echo "iifname \"$VPS201_IF\" tcp dport { 25, 26, 465, 587, 2525 } reject"
        echo "}"
        echo "}"
} >"$LAB_DIR/naive.nft"
lab_exec hv nft -f "$LAB_DIR/naive.nft" || exit 1
measure "naive-$naive_n"
