#!/bin/bash
# Per-packet cost of the ruleset, interleaved so that a shared, noisy machine
# cannot tilt it: one lab per configuration, all built and programmed once,
# then ROUNDS rounds in which every configuration is measured in turn (the
# order rotates each round), and medians with their spread and ratios to
# "none" of the same round.  Usage:
#	bench/packet_cost.sh BUILD_DIR [ROUNDS=5] [SECONDS=2] [CONFIGS...]
# CONFIGS default: none conntrack-only pc-10 pc-100000 antispoof-10
# antispoof-100000 (LAB_TOPOLOGY=bridged: none conntrack-only bridged-pc-10
# bridged-pc-10000); see bench/fwd_lib.sh.  LAB_PREFIX (default pcpc) is the
# base of the labs' prefixes.  PC_NO_PERF=1: no CPU profile.  A configuration
# written CONFIG@DIR is programmed by DIR/bench/bench_nft (another build, e.g.
# the one before a change), so that before and after are measured in the
# same rounds.
#
# Per configuration and round:
#   udp  the established path: one replied UDP flow (so conntrack has it
#        ESTABLISHED) of 18-byte payloads (64-byte frames) from the VPS to
#        the internet namespace for SECONDS; packets/s the server received.
#   crr  the new-connection path: TCP connect + reset (SO_LINGER 0) in a
#        loop for SECONDS; connections/s.
#   cpu  during udp, `perf record -e cpu-clock` samples CPU 0 (the sender's
#        CPU: veth forwarding runs in the sender's softirq, so hv's whole
#        path is there) every 250 us with call chains; the samples whose
#        stack holds nf_hook_slow (every netfilter hook: conntrack and the
#        nft chains), nft_do_chain (the rules alone) or nf_conntrack_in,
#        times 250 us, divided by the packets hv forwarded (its uplink's
#        TX counter), are the ns per packet spent there; "all" is every
#        sample of the sender and ksoftirqd/0 (the sender's own work too).
# The sender is pinned to CPU 0, the server to CPU 1.
set -u
here=$(dirname "$(readlink -f "$0")")
root=$(readlink -f "$here/..")
build=$(readlink -f "${1:-build}")
rounds=${2:-5}
secs=${3:-2}
shift $(($# < 3 ? $# : 3))
export LAB_QUIET=1 LAB_TOPOLOGY=${LAB_TOPOLOGY:-routed}
base=${LAB_PREFIX:-pcpc}
. "$root/tests/lab/lab.sh"
# shellcheck source=bench/fwd_lib.sh
. "$here/fwd_lib.sh"
if [ "$#" -gt 0 ]; then
	configs=("$@")
elif [ "$LAB_TOPOLOGY" = bridged ]; then
	configs=(none conntrack-only bridged-pc-10 bridged-pc-10000)
else
	configs=(none conntrack-only pc-10 pc-100000 antispoof-10 antispoof-100000)
fi
perf=1
[ "${PC_NO_PERF:-0}" = 1 ] && perf=0
command -v perf >/dev/null || { echo "no perf: CPU profile skipped"; perf=0; }
port=5399
out=$(mktemp -d "${TMPDIR:-/tmp}/packet_cost.XXXXXX")

declare -A dirs=() index=()
for i in "${!configs[@]}"; do index[${configs[$i]}]=$i; done
use() { # CONFIG: the lab.sh functions now act on CONFIG's lab (prefixes
	# BASE0, BASE1...: none of them starts another)
	LAB_PREFIX=$base${index[$1]}
	LAB_DIR=${dirs[$1]:-}
	export LAB_PREFIX LAB_DIR
}
cleanup() {
	local c
	set +e
	[ -n "${perf_pid:-}" ] && kill "$perf_pid" 2>/dev/null
	for c in "${!dirs[@]}"; do
		use "$c"
		lab_down
	done
	rm -rf "$out"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t0=$(date +%s)
for c in "${configs[@]}"; do
	use "$c"
	LAB_DIR=
	lab_up --no-servers || exit 1
	dirs[$c]=$LAB_DIR
	b=$build
	case $c in *@*) build=$(readlink -f "${c#*@}") ;; esac
	fwd_program "${c%@*}" || { echo "$c: programming failed"; exit 1; }
	build=$b
	lab_bg server inet taskset -c 1 "$build/bench/bench_pkt" server "$port" >/dev/null
	lab_wait_port inet "$LAB_INET_V4" "$port" 5 >/dev/null || { echo "$c: server did not start"; exit 1; }
done
echo "kernel $(uname -r); $rounds rounds of ${secs} s per path and configuration; labs ready in $(($(date +%s) - t0)) s"

tx_packets() { lab_exec hv cat "/sys/class/net/$LAB_UPLINK_IF/statistics/tx_packets"; }

n=${#configs[@]}
for ((r = 0; r < rounds; r++)); do
	for ((k = 0; k < n; k++)); do
		c=${configs[$(((r + k) % n))]}
		use "$c"
		from=$(fwd_vps "${c%@*}")
		tx0=$(tx_packets)
		perf_pid=
		if [ "$perf" = 1 ]; then
			perf record -q -e cpu-clock -c 250000 -C 0 -g -o "$out/${index[$c]}.$r.perf" -- sleep $((secs + 1)) \
				>/dev/null 2>&1 &
			perf_pid=$!
			sleep 0.3
		fi
		u=$(lab_exec "$from" taskset -c 0 "$build/bench/bench_pkt" udp "$LAB_INET_V4" "$port" "$secs")
		tx1=$(tx_packets)
		if [ -n "$perf_pid" ]; then
			wait "$perf_pid"
			perf_pid=
		fi
		t=$(lab_exec "$from" taskset -c 0 "$build/bench/bench_pkt" crr "$LAB_INET_V4" "$port" "$secs")
		echo "$r $c $u forwarded $((tx1 - tx0)) $t" >>"$out/raw"
		printf 'round %d %-24s %s | %s\n' "$((r + 1))" "$c" "$u" "$t"
	done
done

if [ "$perf" = 1 ]; then
	for f in "$out"/*.perf; do
		perf script -i "$f" -F comm,ip,sym 2>/dev/null | python3 -c '
import sys
want = ("bench_pkt", "ksoftirqd/0")
keys = ("nf_hook_slow", "nft_do_chain", "nf_conntrack_in")
tot = {k: 0 for k in ("all",) + keys}
comm, syms = None, set()
def flush():
    if comm is not None and comm.startswith(want):
        tot["all"] += 1
        for k in keys:
            if k in syms:
                tot[k] += 1
for line in sys.stdin:
    if not line.strip():
        continue
    if not line[0].isspace():
        flush()
        comm, syms = line.split()[0], set()
    else:
        p = line.split()
        if len(p) >= 2:
            syms.add(p[1].split("+")[0])
flush()
print(" ".join("%s %d" % (k, v) for k, v in tot.items()))
' >"$f.txt"
	done
fi

python3 - "$out" "$secs" "${configs[@]}" <<'EOF'
import os, statistics, sys
out, secs, configs = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
rows = {}
for line in open(os.path.join(out, "raw")):
    p = line.split()
    r, c = int(p[0]), p[1]
    q = [w for w in p[2:] if w not in ("udp", "crr")]
    kv = dict(zip(q[0::2], q[1::2]))
    d = {"udp": float(kv["pps"]), "crr": float(kv["cps"]), "fwd": int(kv["forwarded"])}
    f = os.path.join(out, "%d.%d.perf.txt" % (configs.index(c), r))
    if os.path.exists(f):
        q = open(f).read().split()
        s = dict(zip(q[0::2], map(int, q[1::2])))
        for k, v in s.items():
            d[k] = v * 250000.0 / max(d["fwd"], 1)  # ns per forwarded packet
    rows.setdefault(c, {})[r] = d
def med(xs):
    return statistics.median(xs) if xs else float("nan")
def spread(xs, fmt):
    return ("%s [%s-%s]" % (fmt % med(xs), fmt % min(xs), fmt % max(xs))) if xs else "-"
def ratios(c, key, ref):
    return [rows[c][r][key] / rows[ref][r][key] for r in rows[c] if r in rows.get(ref, {}) and rows[ref][r][key]]
print()
print("medians over %d rounds [min-max]; ratios are per round against the same round's none (or conntrack-only)"
      % len(rows[configs[0]]))
print("%-24s %-26s %-19s %-22s %-19s %-19s" % ("configuration", "UDP-64 est. packets/s", "ratio to none",
      "TCP connections/s", "ratio to none", "ratio to ct-only"))
for c in configs:
    v = rows[c]
    print("%-24s %-26s %-19s %-22s %-19s %-19s" % (c,
          spread([d["udp"] for d in v.values()], "%.0f"), spread(ratios(c, "udp", "none"), "%.2f"),
          spread([d["crr"] for d in v.values()], "%.0f"), spread(ratios(c, "crr", "none"), "%.2f"),
          spread(ratios(c, "crr", "conntrack-only"), "%.2f")))
if any("all" in d for v in rows.values() for d in v.values()):
    print()
    print("CPU 0 (sender + hv's forwarding), ns per forwarded packet of the UDP flow, medians [min-max]")
    print("%-24s %-20s %-20s %-20s %-20s" % ("configuration", "all (sender incl.)", "netfilter hooks",
          "nft rules", "conntrack"))
    for c in configs:
        v = rows[c].values()
        print("%-24s %-20s %-20s %-20s %-20s" % (c, spread([d["all"] for d in v], "%.0f"),
              spread([d["nf_hook_slow"] for d in v], "%.0f"), spread([d["nft_do_chain"] for d in v], "%.0f"),
              spread([d["nf_conntrack_in"] for d in v], "%.0f")))
EOF
