#!/bin/bash
# Benchmark: the HTTP API at N VPSes (default 100,000).
#   1. wrk, 64 connections: GET /v1/vps/{id} (random VPSes), and, last,
#      POST /v1/tickets (each a new ticket, its audit row and the owner's
#      email); requests/s and latency percentiles.
#   2. approve-to-enforced through the API: portcullisd (in a network
#      namespace of its own, programming the N VPSes) and portcullis-apid
#      (as nobody); for each of K approvals of a ticket, the time from
#      sending POST /v1/tickets/{id}/approve to the agent's change counter
#      moving (its control socket, polled), p50/p90/p99, beside the API's
#      own answer time.
# Usage: bench/api.sh BUILD_DIR [--smoke] [VPS] [SECONDS] [APPROVALS]
# Needs root (the namespace, nftables), wrk and curl.  BENCH_STRACE=FILE
# (the agent) or BENCH_STRACE_APID=FILE (the API) record where the time
# goes with strace, at its own cost.
set -eu
build=$(readlink -f "${1:-build}")
shift || true
smoke=0
[ "${1:-}" = --smoke ] && { smoke=1; shift; }
n=${1:-100000}
secs=${2:-10}
approvals=${3:-200}
if [ $smoke = 1 ]; then n=2000; secs=1; approvals=10; fi
cd "$(dirname "$0")/.."
root=$PWD
command -v wrk >/dev/null || { echo "bench/api.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/portcullis-bench-api.XXXXXX)
ns=pcbench-api-$$
pids=()
cleanup() {
        for p in "${pids[@]+"${pids[@]}"}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null || true
        rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
chmod 755 "$tmp"
mkdir "$tmp/db"
cfg=$tmp/portcullis.yaml
sed -e "s|^database:.*|database: sqlite:$tmp/db/p.db|" \
    -e "s|control-socket: /run/portcullis/control.sock|control-socket: $tmp/control.sock|" \
    -e "s|control-socket: /run/portcullis/smtpd.sock|control-socket: $tmp/smtpd.sock|" \
    -e "s|  - profiles/|  - $root/etc/profiles/|" -e "s|^  templates: .*|  templates: $root/etc/templates|" \
    etc/portcullis.yaml >"$cfg"
pc() { "$build/src/cli/portcullis" -c "$cfg" "$@"; }
pc init >/dev/null

# N VPSes at milano (provider B: smtp blocked, exemptable by ticket), one
# IPv4 address each, 1,000 customers: setup, bulk SQL, not timed.
t0=$(date +%s%N)
sqlite3 "$tmp/db/p.db" <<SQL
BEGIN;
WITH RECURSIVE i(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM i WHERE x + 1 < $n)
INSERT INTO vps (id, owner, lang, site, iface, created)
        SELECT 'vps-' || x, 'c' || (x % 1000) || '@example.org', 'en', 'milano', 'bv' || x, 0 FROM i;
INSERT INTO vps_address (vps_id, family, prefix)
        SELECT id, 4, '100.' || (64 + CAST(substr(id, 5) AS INTEGER) / 65536) || '.' ||
               ((CAST(substr(id, 5) AS INTEGER) / 256) % 256) || '.' || (CAST(substr(id, 5) AS INTEGER) % 256) || '/32'
        FROM vps;
COMMIT;
SQL
echo "setup: $n VPSes written in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
admin=$(pc token create bench --role admin --by bench 2>/dev/null)
support=$(pc token create desk --role support --by bench 2>/dev/null)
chown -R nobody "$tmp/db"

"$build/src/api/portcullis-apid" -c "$cfg" --port 0 --user nobody --rate 1000000 --burst 1000000 \
        --connections 1024 --per-client 1024 >/dev/null 2>"$tmp/apid.log" &
pids+=($!)
port=
for _ in $(seq 1 100); do
        port=$(sed -n 's/.*listening on 127.0.0.1 port \([0-9]*\) .*/\1/p' "$tmp/apid.log")
        [ -n "$port" ] && break
        sleep 0.1
done
[ -n "$port" ] || { cat "$tmp/apid.log"; exit 1; }
url=http://127.0.0.1:$port

cat >"$tmp/get.lua" <<EOF2
math.randomseed(os.time())
wrk.headers["Authorization"] = "Bearer $admin"
request = function() return wrk.format("GET", "/v1/vps/vps-" .. math.random(0, $n - 1)) end
EOF2
# Each thread its own VPSes (odd, even): one pending ticket per VPS and service.
cat >"$tmp/post.lua" <<EOF2
local threads = 0
function setup(thread)
        threads = threads + 1
        thread:set("tid", threads)
end
function init(args)
        counter = 0
end
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $admin"
wrk.headers["Content-Type"] = "application/json"
request = function()
        counter = counter + 1
        return wrk.format("POST", "/v1/tickets", nil,
                '{"vps": "vps-' .. ((2 * counter + tid) % $n) .. '", "service": "smtp", "ports": "587", "text": "bench"}')
end
EOF2
run_wrk() { # LABEL SCRIPT
        local out
        out=$(wrk -t2 -c64 -d"${secs}s" --latency -s "$2" "$url" 2>&1)
        printf '%-28s %10s req/s   p50 %8s   p99 %8s   (%s)\n' "$1" \
                "$(awk '/^Requests\/sec/ {print $2}' <<<"$out")" "$(awk '$1 == "50%" {print $2}' <<<"$out")" \
                "$(awk '$1 == "99%" {print $2}' <<<"$out")" \
                "$(grep -oE '[0-9]+ requests in [^,]+' <<<"$out"), $(grep -oE 'Non-2xx or 3xx responses: [0-9]+' <<<"$out" || echo "all 2xx")"
}
echo "# wrk -t2 -c64 -d${secs}s at $n VPSes"
run_wrk "GET /v1/vps/{id}" "$tmp/get.lua"

# Approve-to-enforced: the agent in a namespace of its own.
ip netns add "$ns"
ip netns exec "$ns" "$build/src/agent/portcullisd" -c "$cfg" >"$tmp/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do [ -S "$tmp/control.sock" ] && break; sleep 0.1; done
[ -S "$tmp/control.sock" ] || { tail "$tmp/agent.log"; exit 1; }
grep -m1 "Programmed\|Repaired\|in sync" "$tmp/agent.log" | sed 's/^/agent: /' || true
if [ -n "${BENCH_PERF_APID:-}" ]; then # where the API's CPU goes
        perf record -g -o "$BENCH_PERF_APID" -p "$(pgrep -n -f "portcullis-apid -c $cfg")" >/dev/null 2>&1 &
        pids+=($!)
        sleep 1
fi
if [ -n "${BENCH_STRACE_APID:-}" ]; then # where the API's time goes
        strace -f -c -o "$BENCH_STRACE_APID" -p "$(pgrep -n -f "portcullis-apid -c $cfg")" 2>/dev/null &
        pids+=($!)
        sleep 1
fi
if [ -n "${BENCH_STRACE:-}" ]; then # where the time goes: the agent's system calls
        strace -f -tt -T -o "$BENCH_STRACE" -p "$(pgrep -n -f "portcullisd -c $cfg")" 2>/dev/null &
        pids+=($!)
        sleep 1
fi
python3 - "$url" "$support" "$tmp/control.sock" "$n" "$approvals" <<'PY'
import http.client, json, socket, sys, time, urllib.parse
url, token, sock, n, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
u = urllib.parse.urlparse(url)
conn = http.client.HTTPConnection(u.hostname, u.port)
def api(method, path, body):
    conn.request(method, path, json.dumps(body), {"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    r = conn.getresponse()
    return r.status, json.loads(r.read())
def changes():
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.sendall(b"status\n")
    data = b""
    while not data.endswith(b"\n"):
        data += s.recv(65536)
    s.close()
    return json.loads(data)["changes"]
enforced, answered = [], []
for i in range(k):
    v = n - 1 - i  # VPSes the ticket benchmark did not reach
    st, t = api("POST", "/v1/tickets", {"vps": "vps-%d" % v, "service": "smtp", "ports": "587", "text": "bench"})
    assert st == 201, (st, t)
    c0 = changes()
    time.sleep(0.02)  # the open's own feed entry (no kernel change) is behind us
    c0 = changes()
    t0 = time.monotonic()
    st, _ = api("POST", "/v1/tickets/%d/approve" % t["id"], {})
    t1 = time.monotonic()
    assert st == 200, st
    # Polled every 0.5 ms: a busy loop would take a core from the agent.
    while changes() == c0:
        if time.monotonic() - t0 > 5:
            sys.exit("not enforced within 5 s")
        time.sleep(0.0005)
    t2 = time.monotonic()
    answered.append((t1 - t0) * 1000)
    enforced.append((t2 - t0) * 1000)
def pct(a, p):
    a = sorted(a)
    return a[min(len(a) - 1, int(round(p / 100 * (len(a) - 1))))]
print("approve-to-enforced over %d approvals: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms "
      "(the API's answer: p50 %.1f ms, p99 %.1f ms)" % (k, pct(enforced, 50), pct(enforced, 90), pct(enforced, 99),
                                                         max(enforced), pct(answered, 50), pct(answered, 99)))
PY
# Tickets last: each queues the owner's email, which the agent's notifier
# then works through (a backlog would slow the approvals above).
run_wrk "POST /v1/tickets (agent running)" "$tmp/post.lua"
# The agent's own part of it: database read to kernel commit, as it logs each change.
grep -oE "changed vps-[0-9]+: [0-9]+ kernel elements changed in [0-9.]+ ms" "$tmp/agent.log" |
        awk '{print $(NF-1)}' | sort -n | awk '{a[NR] = $1} END {if (NR) printf "agent: database read to kernel commit over %d changes: p50 %.2f ms, p99 %.2f ms\n", NR, a[int((NR - 1) * 0.5) + 1], a[int((NR - 1) * 0.99) + 1]}'
