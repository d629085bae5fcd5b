#!/bin/bash
# The agent's CPU while VPSes scan with masscan at 100,000 packets/s, in the
# lab of tests/lab/scan.sh (absent hosts 192.0.2.128/25 that the hypervisor
# can send to), each window SECONDS long:
#   idle          no scanner: the baseline of the same run;
#   lenoir x1     one VPS at provider A's site (containing): the kernel holds
#                 it after 5 first contacts, the agent filters it;
#   lenoir x4     four such VPSes at once;
#   milano x1     one VPS at provider B's site (records only): every probe
#                 is forwarded, every one a conntrack NEW event for the agent;
#   milano 1k, milano 10k  first, other VPSes there at 1,000 and 10,000
#                 packets/s (what the agent keeps up with).
# The agent's CPU and the events it reports lost are counted until 2 s
# after the scanners stop (it drains its queue then); agent% is that CPU
# over the scanners' window, everything else is over the window alone.
# For each: the packets the scanners sent (the hv side of their links), the
# new flows the hypervisor forwarded (an nft counter in postrouting, after
# Portcullis' verdicts: each one a NEW event), portcullisd's user+sys CPU
# (/proc/PID/stat) and the conntrack events it reports lost, masscan's own
# CPU, and the machine's system and softirq time (/proc/stat, both cores).
# Each scanning VPS is fresh (a filtered one would be dropped from its first
# packet).  The milano window is at most 2 s: its SYNs to absent hosts stay
# in conntrack 120 s, and nf_conntrack_max (262,144 here, the machine's)
# would be reached after 2.6 s, after which the kernel drops new flows.
# SCAN_CPU_STRACE=1: strace -c counts the agent's fdatasync, pwrite64 and
# recvfrom calls in each scanning window (it slows the agent: the CPU
# figures of such a run are not the agent's own).
# Usage: bench/scan_cpu.sh BUILD_DIR [SECONDS=5]   (as root, ~1 min)
set -u
here=$(dirname "$(readlink -f "$0")")
root=$(readlink -f "$here/..")
build=$(readlink -f "${1:-build}")
secs=${2:-5}
export LAB_PREFIX=${LAB_PREFIX:-pcps} LAB_QUIET=1
. "$root/tests/lab/lab.sh"
. "$root/tests/lab/common.sh"

lab_deps >/dev/null || exit 1
lab_install masscan || exit 1
lab_up --trap || { echo "lab_up failed"; exit 1; }
pc_setup "$build" "$root"
hz=$(getconf CLK_TCK)
ncpu=$(nproc)

for i in 1 2 3 4 5; do
        lab_vps_add "vps12$i" "v12$i" "203.0.113.12$i" "2001:db8:12$i::" >/dev/null 2>&1 || exit 1
        # shellcheck disable=SC2046 # word splitting of the link options is meant
        pc vps add "vps-12$i" --site lenoir --owner "a$i@example.net" $(pc_vps_link "VPS12$i") --by lab >/dev/null 2>&1 || exit 1
done
for i in 1 2 3; do
        lab_vps_add "vps22$i" "v22$i" "198.51.100.12$i" "2001:db8:22$i::" >/dev/null 2>&1 || exit 1
        # shellcheck disable=SC2046
        pc vps add "vps-22$i" --site milano --owner "b$i@example.it" $(pc_vps_link "VPS22$i") --by lab >/dev/null 2>&1 || exit 1
done
agent_start || exit 1
inet_mac=$(lab_exec inet cat /sys/class/net/eth0/address)
for i in $(seq 128 254); do
        ip -n "$LAB_HV" neigh replace "192.0.2.$i" lladdr "$inet_mac" dev "$LAB_UPLINK_IF" nud permanent
done
# new flows forwarded (confirmed after this hook: one NEW event each)
nft_hv -f - <<'NFT' || exit 1
table inet pcps_cpu {
        counter fwd_new { }
        chain post {
                type filter hook postrouting priority 100; policy accept;
                iifname "v*" ct state new counter name "fwd_new"
        }
}
NFT

agent_ticks() { awk '{ print $14, $15 }' "/proc/$AGENT_PID/stat"; } # user sys
stat_cpu() { awk '/^cpu / { print $4, $8, $2 + $3 + $4 + $6 + $7 + $8 + $9 + $5 }' /proc/stat; } # sys softirq total
fwd_new() { nft_hv list counter inet pcps_cpu fwd_new | awk '/packets/ { print $2 }'; }
rx() { ip netns exec "$LAB_HV" cat "/sys/class/net/$1/statistics/rx_packets"; }
lost() { grep -o 'Lost [0-9]* conntrack events' "$LAB_DIR/log/portcullisd.log" | tail -1 | awk '{ print $2 }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b > 0) ? 100 * a / b : 0 }'; }

echo "# kernel $(uname -r), $ncpu CPUs, CLK_TCK $hz; sys% and sirq% (softirq) of all CPUs, agent% and mscan% (masscan, all its processes) of one"
printf '%-10s %4s %7s %7s %6s %6s %6s %6s %7s %8s %6s %5s %5s\n' window s sent/s fwd-new lost usr-s sys-s agent% us/fwd us/read mscan% sys% sirq%
# window LABEL SECONDS RATE VPS...: masscan at RATE packets/s from each VPS
# at once (none: idle), SECONDS long.
window() {
        local label=$1 s=$2 rate=$3 v pids=() sent0=0 sent1=0 a0 a1 f0 f1 l0 l1 c0 c1 t0 t1 m=0 u
        shift 3
        for v in "$@"; do sent0=$((sent0 + $(rx "v${v#vps}"))); done
        local tr=
        if [ -n "${SCAN_CPU_STRACE:-}" ] && [ $# -gt 0 ]; then
                strace -c -e trace=fdatasync,pwrite64,recvfrom -p "$AGENT_PID" -o "$LAB_DIR/strace-$1" 2>/dev/null &
                tr=$!
                sleep 0.5
        fi
        a0=$(agent_ticks) f0=$(fwd_new) l0=$(lost) c0=$(stat_cpu) t0=$(lab_now_ms)
        for v in "$@"; do
                ip netns exec "$(lab_ns "$v")" /usr/bin/time -f '%U %S' -o "$LAB_DIR/time-$v" \
                        timeout "$s" masscan -p1-65535 192.0.2.128/25 --rate "$rate" --wait 0 \
                        --router-mac "$(ip -n "$LAB_HV" link show "v${v#vps}" | awk '/ether/ { print $2 }')" \
                        >"$LAB_DIR/log/masscan-$v.log" 2>&1 &
                pids+=($!)
        done
        [ $# -eq 0 ] && sleep "$s"
        [ $# -gt 0 ] && wait "${pids[@]}"
        t1=$(lab_now_ms) c1=$(stat_cpu) f1=$(fwd_new)
        sleep 2 # the agent drains what the kernel queued for it
        a1=$(agent_ticks) l1=$(lost)
        if [ -n "$tr" ]; then
                kill -INT "$tr"
                wait "$tr" 2>/dev/null
                echo "# strace of the agent, $label:$(awk '$NF ~ /^(fdatasync|pwrite64|recvfrom)$/ { printf " %s %s", $4, $NF }' "$LAB_DIR/strace-$1")"
        fi
        for v in "$@"; do
                sent1=$((sent1 + $(rx "v${v#vps}")))
                u=$(tail -1 "$LAB_DIR/time-$v")
                m=$(awk -v m="$m" -v u="$u" 'BEGIN { split(u, x, " "); print m + x[1] + x[2] }')
        done
        local au0 as0 au1 as1 sys0 si0 tot0 sys1 si1 tot1
        read -r au0 as0 <<<"$a0"
        read -r au1 as1 <<<"$a1"
        read -r sys0 si0 tot0 <<<"$c0"
        read -r sys1 si1 tot1 <<<"$c1"
        local wall=$((t1 - t0)) du=$((au1 - au0)) ds=$((as1 - as0)) df=$((f1 - f0)) dl=$((${l1:-0} - ${l0:-0}))
        local da=$((du + ds)) w
        w=$(awk -v w="$wall" 'BEGIN { printf "%.1f", w / 1000 }')
        # us/fwd: agent CPU per NEW event the kernel made; us/read: per
        # event it did not report lost (those it read)
        printf '%-10s %4s %7d %7d %6d %6s %6s %6s %7s %8s %6s %5s %5s\n' "$label" "$w" \
                $(((sent1 - sent0) * 1000 / wall)) "$df" "$dl" \
                "$(awk -v a="$du" -v h="$hz" 'BEGIN { printf "%.2f", a / h }')" \
                "$(awk -v a="$ds" -v h="$hz" 'BEGIN { printf "%.2f", a / h }')" \
                "$(pct "$((da * 1000))" "$((wall * hz))")" \
                "$(awk -v a="$da" -v h="$hz" -v f="$df" 'BEGIN { if (f > 0) printf "%.1f", a / h * 1e6 / f; else print "-" }')" \
                "$(awk -v a="$da" -v h="$hz" -v f="$((df - dl))" 'BEGIN { if (f > 0) printf "%.1f", a / h * 1e6 / f; else print "-" }')" \
                "$(pct "$m" "$w")" "$(pct $((sys1 - sys0)) $((tot1 - tot0)))" "$(pct $((si1 - si0)) $((tot1 - tot0)))"
}

window idle "$secs" 0
window "lenoir x1" "$secs" 100000 vps121
window "lenoir x4" "$secs" 100000 vps122 vps123 vps124 vps125
milano=$secs
[ "$milano" -gt 2 ] && milano=2
window "milano 1k" "$milano" 1000 vps223
window "milano 10k" "$milano" 10000 vps222
window "milano x1" "$milano" 100000 vps221
window idle "$secs" 0
echo "# agent: $(grep -c 'filtered\|Filter' "$LAB_DIR/log/portcullisd.log") filter lines; incidents: $(sqlite3 "$LAB_DIR/portcullis.db" "SELECT group_concat(vps_id || '=' || kind, ' ') FROM incident")"
grep -h 'Lost' "$LAB_DIR/log/portcullisd.log" | tail -2
