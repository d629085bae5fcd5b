#!/bin/bash
# The agent's start at scale: how long portcullisd takes from its start to
# listening on its control socket (taking changes) and to the kernel in sync
# with the database, with VPS VPSes registered (half at each of the shipped
# config's sites, each with an IPv4 /32, an IPv6 /64 and a MAC), in a network
# namespace of its own.  Per round, in turn:
#   cold     no table in the kernel: the whole ruleset programmed
#   restart  the table in place, the agent stopped with SIGTERM before
#   kill9    the same after kill -9
#   changed  one VPS registered while the agent was stopped
#   drift    one element deleted by hand while the agent was stopped; once
#            the agent listens (reading the kernel back in the background),
#            a VPS is registered, and how long that change took is printed
#            ("change", ms for the whole `portcullis vps add`) and checked in
#            the kernel after
# Usage: bench/restart.sh BUILD_DIR [VPS=100000] [ROUNDS=3] [BUILD_DIR...]
# CASES="cold changed" runs only those (default: all five, in that order).
# Further build folders (e.g. the build before a change) are measured in the
# same rounds, each after the first, one case at a time.  LAB_PREFIX (default
# pcrs) names the namespace.  SNAPSHOT=1 gives the agent a snapshot file
# (agent.snapshot, as a fleet host has by default), each run waiting for
# its write before it stops: a start whose kernel holds its last run's
# snapshot takes only what changed meanwhile.  MAX_VPS=N sets agent.max-vps (the per-VPS sets'
# size, docs/DATAPLANE.md) for the builds that know the key.  Prints per case and build the medians and
# min-max of: listen (ms to "Listening on"), sync (ms to the log line that
# says the kernel is in sync), and the agent's peak RSS.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
n=${2:-100000}
rounds=${3:-3}
builds=("$(readlink -f "${1:-build}")")
[ "$#" -gt 3 ] && for b in "${@:4}"; do builds+=("$(readlink -f "$b")"); done
ns=${LAB_PREFIX:-pcrs}
table=${ns}bench
dir=$(mktemp -d "${TMPDIR:-/tmp}/restart.XXXXXX")
cfg=$dir/portcullis.yaml
pid=

cleanup() {
        [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
        ip netns del "$ns" 2>/dev/null || true
        rm -rf "$dir"
}
trap cleanup EXIT

sed -e "s|^database:.*|database: sqlite:$dir/pc.db|" \
    -e "s|control-socket: /run/portcullis/control.sock|control-socket: $dir/control.sock|" \
    -e "s|control-socket: /run/portcullis/smtpd.sock|control-socket: $dir/smtpd.sock|" \
    -e "s|nft-table: .*|nft-table: $table|" \
    -e "s|  - profiles/|  - $root/etc/profiles/|" \
    -e "s|^  templates: templates|  templates: $root/etc/templates|" \
    "$root/etc/portcullis.yaml" >"$cfg"
if [ "${SNAPSHOT:-0}" = 1 ]; then
        sed -i "s|^  nft-table: .*|&\n  snapshot: $dir/snapshot|" "$cfg"
fi
base_cfg=$cfg
if [ -n "${MAX_VPS:-}" ]; then
        sed "s|^  nft-table: .*|&\n  max-vps: $MAX_VPS|" "$base_cfg" >"$dir/portcullis-max.yaml"
fi
# cfg_of BUILD: the config BUILD runs with (agent.max-vps if it knows it)
cfg_of() {
        if [ -n "${MAX_VPS:-}" ] && "$1/src/cli/portcullis" -c "$dir/portcullis-max.yaml" check >/dev/null 2>&1; then
                echo "$dir/portcullis-max.yaml"
        else
                echo "$base_cfg"
        fi
}
"${builds[0]}/src/cli/portcullis" -c "$cfg" init >/dev/null
python3 - "$dir/pc.db" "$n" <<'EOF'
import sqlite3, sys
db, n = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(db)
vps, addr = [], []
for i in range(n):
    b = [(i >> s) & 255 for s in (24, 16, 8, 0)]
    vid = "vps-%d" % i
    vps.append((vid, "owner%d@example.net" % i, ("lenoir", "milano")[i % 2], "tap%d" % i,
                "02:00:%02x:%02x:%02x:%02x" % tuple(b)))
    addr.append((vid, 4, "10.%d.%d.%d/32" % tuple(b[1:]), bytes([10] + b[1:]), 32))
    addr.append((vid, 6, "2001:db8:%x:%x::/64" % (i >> 16, i & 0xffff),
                 bytes([0x20, 0x01, 0x0d, 0xb8] + b) + bytes(8), 64))
c.executemany("INSERT INTO vps (id, owner, lang, site, iface, mac, created) VALUES (?, ?, 'en', ?, ?, ?, 0)", vps)
c.executemany("INSERT INTO vps_address (vps_id, family, prefix, net, len) VALUES (?, ?, ?, ?, ?)", addr)
c.commit()
EOF
ip netns del "$ns" 2>/dev/null || true
ip netns add "$ns"
nsx() { ip netns exec "$ns" "$@"; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# The log lines that say the kernel is in sync.
synced="Programmed the whole|already enforces|Repaired drift|enforced the policy of this agent's last run"

# start BUILD [CMD...]: starts the agent, waits until it listens and says
# the kernel is in sync, running CMD once it listens if it is not in sync
# yet (its ms in $change); sets out to "listen_ms sync_ms rss_kb logged".
start() {
        local log=$dir/agent.log t0 t1 listen= sync= line b=$1
        shift
        change=-
        : >"$log"
        t0=$(now_ms)
        ip netns exec "$ns" "$b/src/agent/portcullisd" -c "$cfg" >"$log" 2>&1 &
        pid=$!
        while [ -z "$listen" ] || [ -z "$sync" ]; do
                kill -0 "$pid" 2>/dev/null || { echo "portcullisd exited:" >&2; cat "$log" >&2; exit 1; }
                if [ -z "$listen" ] && grep -q "Listening on" "$log"; then
                        listen=$(($(now_ms) - t0))
                        if [ $# -gt 0 ] && ! grep -qE "$synced" "$log"; then
                                t1=$(now_ms)
                                "$@" >/dev/null 2>&1 || { echo "failed while verifying: $*" >&2; exit 1; }
                                change=$(($(now_ms) - t1))
                        fi
                fi
                [ -z "$sync" ] && grep -qE "$synced" "$log" &&
                        sync=$(($(now_ms) - t0))
                sleep 0.01
        done
        line=$(grep -E "$synced" "$log" | head -1)
        out="$listen $sync $(awk '/VmHWM/ { print $2 }' "/proc/$pid/status") $change ${line#portcullisd: }"
}

stop() { # SIGNAL
        local i
        if [ "${SNAPSHOT:-0}" = 1 ]; then # its snapshot written first
                for i in $(seq 1 500); do
                        grep -q "Wrote the policy snapshot" "$dir/agent.log" && break
                        sleep 0.01
                done
        fi
        kill "-$1" "$pid"
        wait "$pid" 2>/dev/null || true
        pid=
}

cases=(${CASES:-cold restart kill9 changed drift})
declare -A res=()
for r in $(seq 1 "$rounds"); do
        for b in "${builds[@]}"; do
                cfg=$(cfg_of "$b")
                nsx nft delete table inet "$table" 2>/dev/null || true
                nsx nft delete table bridge "$table" 2>/dev/null || true
                for c in "${cases[@]}"; do
                        case $c in
                        changed) "$b/src/cli/portcullis" -c "$cfg" vps add new-vps --site lenoir --owner x@example.net \
                                        --iface tapnew --addr 192.0.2.1 --addr 2001:db8:ffff::/64 \
                                        --mac 02:ff:00:00:00:01 --by bench >/dev/null 2>&1 ;;
                        drift) nsx nft delete element inet "$table" vps '{ "tap7" }' ;;
                        esac
                        if [ "$c" = drift ]; then
                                start "$b" "$b/src/cli/portcullis" -c "$cfg" vps add dv-vps --site milano \
                                        --owner x@example.net --iface tapdv --addr 192.0.2.2 --by bench
                                if [ "$change" != - ]; then
                                        nsx nft list set inet "$table" vps | grep -q '"tapdv"' ||
                                                { echo "the change made while verifying is not in the kernel" >&2; exit 1; }
                                fi
                                "$b/src/cli/portcullis" -c "$cfg" vps remove dv-vps --by bench >/dev/null 2>&1 || true
                        else
                                start "$b"
                        fi
                        echo "round $r $c ${b} ($(basename "$cfg")): $out"
                        res[$c,$b]+="$(cut -d' ' -f1-4 <<<"$out")
"
                        case $c in
                        restart) stop 9 ;;
                        changed) "$b/src/cli/portcullis" -c "$cfg" vps remove new-vps --by bench >/dev/null 2>&1 || true
                                 stop TERM ;;
                        *) stop TERM ;;
                        esac
                done
        done
done

# median and min-max of column COL of the lines on stdin
stat() {
        sort -n -k"$1" | awk -v c="$1" '{ v[NR] = $c } END { printf "%d [%d-%d]", v[int((NR + 1) / 2)], v[1], v[NR] }'
}
echo "$n VPSes, $rounds rounds; ms from the agent's start, medians [min-max]; peak RSS in MiB;"
echo "change: ms of a \`portcullis vps add\` made once the agent listens, before it is in sync (drift)"
printf '%-8s %-36s %-20s %-20s %-12s %s\n' case build listen in-sync rss change
for c in "${cases[@]}"; do
        for b in "${builds[@]}"; do
                v=$(printf '%s' "${res[$c,$b]}")
                ch=-
                grep -qv -- ' -$' <<<"$v" && ch=$(grep -v -- ' -$' <<<"$v" | stat 4)
                printf '%-8s %-36s %-20s %-20s %-12s %s\n' "$c" "$b" "$(stat 1 <<<"$v")" "$(stat 2 <<<"$v")" \
                        "$(awk '{ print int($3 / 1024) }' <<<"$v" | stat 1)" "$ch"
        done
done
