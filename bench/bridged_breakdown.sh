#!/bin/bash
# Where a bridged site's per-frame cost goes: 64-byte UDP from a bridged VPS
# of provider B's site, with Portcullis' tables programmed (10 VPSes), then
# with its chains emptied one group at a time, in one run.  Usage:
# bench/bridged_breakdown.sh BUILD_DIR [SECONDS]
set -u
here=$(dirname "$(readlink -f "$0")")
root=$(readlink -f "$here/..")
build=$(readlink -f "${1:-build}")
secs=${2:-2}
export LAB_PREFIX=pcbrk LAB_QUIET=1 LAB_TOPOLOGY=bridged
. "$root/tests/lab/lab.sh"
lab_up --trap --no-servers || exit 1
lab_bg iperf3 inet iperf3 -s >/dev/null
lab_wait_port inet ::1 5201 5 >/dev/null || { echo "iperf3 server did not start"; exit 1; }
measure() { # LABEL: best of two
        local u best=0
        for _ in 1 2; do
                u=$(lab_exec vps201 iperf3 -c "$LAB_INET_V4" -u -l 64 -b 0 -t "$secs" -J 2>/dev/null |
                        python3 -c 'import json,sys; e=json.load(sys.stdin)["end"]["sum"]; print("%.0f" % ((e["packets"]-e["lost_packets"])/e["seconds"]))')
                best=$(python3 -c "print(max($best, ${u:-0}))")
        done
        printf '%-40s UDP-64 %9s packets/s received\n' "$1" "$best"
}
table() { lab_exec hv nft "$@"; }
measure "no ruleset"
sed -e "s|  - profiles/|  - $root/etc/profiles/|" -e "s|^    policy: blocked-services|&\n    topology: bridged|" \
        "$root/etc/portcullis.yaml" >"$LAB_DIR/bridged.yaml"
(cd "$root" && lab_exec hv "$build/bench/bench_nft" --config "$LAB_DIR/bridged.yaml" --here --site milano --vps 9 \
        --extra-iface "$VPS201_IF" --extra-addr "$VPS201_V4NET" --extra-addr "$VPS201_V6NET" >/dev/null) || exit 1
measure "Portcullis, bridged site (all of it)"
table flush chain bridge portcullis enforce
measure "- the bridge table's policy checks"
table flush chain bridge portcullis prerouting
measure "- and its anti-spoofing"
table flush chain inet portcullis forward
table flush chain inet portcullis raw_prerouting
measure "- and the inet rules (empty base chains left)"
