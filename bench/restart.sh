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
#   drift    one element deleted by hand while the agent was stopped
# Usage: bench/restart.sh BUILD_DIR [VPS=100000] [ROUNDS=3] [BUILD_DIR...]
# Further build folders (e.g. the build before a change) are measured in the
# same rounds, each after the first, one case at a time.  LAB_PREFIX (default
# pcrs) names the namespace.  Prints per case and build the medians and
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
    -e "s|state-file: .*|state-file: $dir/agent.state|" \
    -e "s|nft-table: .*|nft-table: $table|" \
    -e "s|  - profiles/|  - $root/etc/profiles/|" \
    -e "s|^  templates: templates|  templates: $root/etc/templates|" \
    "$root/etc/portcullis.yaml" >"$cfg"
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

# start BUILD: starts the agent, waits until it listens and says the kernel
# is in sync; sets out to "listen_ms sync_ms rss_kb what-it-logged".
start() {
        local log=$dir/agent.log t0 listen= sync= line
        : >"$log"
        t0=$(now_ms)
        ip netns exec "$ns" "$1/src/agent/portcullisd" -c "$cfg" >"$log" 2>&1 &
        pid=$!
        while [ -z "$listen" ] || [ -z "$sync" ]; do
                kill -0 "$pid" 2>/dev/null || { echo "portcullisd exited:" >&2; cat "$log" >&2; exit 1; }
                [ -z "$listen" ] && grep -q "Listening on" "$log" && listen=$(($(now_ms) - t0))
                [ -z "$sync" ] && grep -qE "Programmed the whole|already enforces|Repaired drift" "$log" &&
                        sync=$(($(now_ms) - t0))
                sleep 0.01
        done
        line=$(grep -E "Programmed the whole|already enforces|Repaired drift" "$log" | head -1)
        out="$listen $sync $(awk '/VmHWM/ { print $2 }' "/proc/$pid/status") ${line#portcullisd: }"
}

stop() { # SIGNAL
        kill "-$1" "$pid"
        wait "$pid" 2>/dev/null || true
        pid=
}

cases=(cold restart kill9 changed drift)
declare -A res=()
for r in $(seq 1 "$rounds"); do
        for b in "${builds[@]}"; do
                nsx nft delete table inet "$table" 2>/dev/null || true
                nsx nft delete table bridge "$table" 2>/dev/null || true
                rm -f "$dir/agent.state"
                for c in "${cases[@]}"; do
                        case $c in
                        changed) "$b/src/cli/portcullis" -c "$cfg" vps add new-vps --site lenoir --owner x@example.net \
                                        --iface tapnew --addr 192.0.2.1 --addr 2001:db8:ffff::/64 \
                                        --mac 02:ff:00:00:00:01 --by bench >/dev/null 2>&1 ;;
                        drift) nsx nft delete element inet "$table" vps '{ "tap7" }' ;;
                        esac
                        start "$b"
                        echo "round $r $c ${b}: $out"
                        res[$c,$b]+="${out%% [A-Z]*}
"
                        case $c in
                        restart) stop 9 ;;
                        changed) "$b/src/cli/portcullis" -c "$cfg" vps remove new-vps --by bench >/dev/null 2>&1
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
echo "$n VPSes, $rounds rounds; ms from the agent's start, medians [min-max]; peak RSS in MiB"
printf '%-8s %-40s %-20s %-20s %s\n' case build listen in-sync rss
for c in "${cases[@]}"; do
        for b in "${builds[@]}"; do
                v=$(printf '%s' "${res[$c,$b]}")
                printf '%-8s %-40s %-20s %-20s %s\n' "$c" "$b" "$(stat 1 <<<"$v")" "$(stat 2 <<<"$v")" \
                        "$(awk '{ print int($3 / 1024) }' <<<"$v" | stat 1)"
        done
done
