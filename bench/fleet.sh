#!/bin/bash
# Benchmark: the fleet (issue 14).  One throwaway PostgreSQL cluster, VPSES
# VPSes registered in it spread over AGENTS hosts (hv1..hvAGENTS, VPS k on
# hv(1 + k % AGENTS), interface bvK, site milano), and one portcullisd
# --host hvN per host, each in a network namespace of its own.  No VPS has
# a real interface: the kernel enforces by interface name.
#   1. change-to-enforced: CHANGES changes, one at a time (an exception for
#      smtp granted to a random VPS, or one granted before revoked), each
#      made with `portcullis` on hv1; for each, the time from the change's
#      commit (PostgreSQL's own commit timestamp of its audit row,
#      track_commit_timestamp) to the moment the kernel of the VPS's host
#      holds it (the nf_tables notification of that element, received on a
#      netlink socket in that host's namespace: sent by the kernel when the
#      agent's transaction commits; nothing is polled; a thread that
#      wakes on it can only add to the figure).  The next change waits
#      0.1 s after that.  p50/p90/p99/max, and the agents' own part (their
#      log: database read to kernel commit).
#   2. database load per change: pg_stat_statements and pg_stat_database
#      over the changes, less the idle fleet's own load (measured before,
#      IDLE_S seconds), divided by CHANGES: every agent reads the change
#      feed on every notice, so the feed's share grows with AGENTS.  Each
#      change queues the owner's email; no relay answers in the namespaces,
#      so each is tried once and put back for later (a write, as a
#      delivery's would be).
#   3. a new agent coming up: hv1's agent stopped, its tables deleted
#      (a host with nothing in its kernel), a new portcullisd --host hv1
#      started STARTS times: ms from its start to the kernel programmed
#      and to listening (in sync, taking changes), medians [min-max].
# Usage: bench/fleet.sh BUILD_DIR [--smoke] [VPSES=100000] [AGENTS=10]
#        [CHANGES=200] [STARTS=5]
# --smoke: 2,000 VPSes, 2 agents, 20 changes, 2 starts, no idle window
# (make test).  Needs root (namespaces, nftables) and PostgreSQL's server
# (tests/pg/cluster.sh).  Namespaces are named LAB_PREFIX-PID-hvN (LAB_PREFIX
# defaults to pcfb) and removed however the run ends.
set -eu
build=$(readlink -f "${1:-build}")
shift || true
smoke=0
[ "${1:-}" = --smoke ] && { smoke=1; shift; }
n=${1:-100000}
agents=${2:-10}
changes=${3:-200}
starts=${4:-5}
idle=${IDLE_S:-20}
if [ $smoke = 1 ]; then n=2000 agents=2 changes=20 starts=2 idle=0; fi
cd "$(dirname "$0")/.."
root=$PWD
[ "$agents" -ge 1 ] && [ "$n" -ge "$agents" ] || { echo "bench/fleet.sh: VPSES must be at least AGENTS >= 1" >&2; exit 2; }
tmp=$(mktemp -d /tmp/portcullis-bench-fleet.XXXXXX)
chmod 755 "$tmp" # postgres reaches its folder inside
prefix=${LAB_PREFIX:-pcfb}-$$
pids=()
namespaces=()
cleanup() {
        set +e # every step, whatever the one before did (an agent already stopped)
        for p in "${pids[@]+"${pids[@]}"}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
        for ns in "${namespaces[@]+"${namespaces[@]}"}"; do ip netns del "$ns" 2>/dev/null; done
        tests/pg/cluster.sh stop "$tmp/pg" >/dev/null 2>&1
        rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ---- the database: commit timestamps and statement statistics on ----
tests/pg/cluster.sh start "$tmp/pg" >/dev/null
pgsu() { psql -X -q -h "$tmp/pg" -U postgres -v ON_ERROR_STOP=1 "$@"; }
pgsu -d postgres -c "ALTER SYSTEM SET track_commit_timestamp = on" \
        -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'" >/dev/null
tests/pg/cluster.sh halt "$tmp/pg" && tests/pg/cluster.sh resume "$tmp/pg"
pgsu -d postgres -c "CREATE EXTENSION pg_stat_statements" >/dev/null
url=$(tests/pg/cluster.sh url "$tmp/pg")
for h in $(seq 1 "$agents"); do
        sed -e "s|^database:.*|database: \"${url//&/\\&}\"|" \
            -e "s|control-socket: /run/portcullis/control.sock|control-socket: $tmp/hv$h.sock|" \
            -e "s|control-socket: /run/portcullis/smtpd.sock|control-socket: $tmp/smtpd$h.sock|" \
            -e "s|^  nft-table: .*|&\n  snapshot: $tmp/snapshot-hv$h|" \
            -e "s|  - profiles/|  - $root/etc/profiles/|" -e "s|^  templates: templates|  templates: $root/etc/templates|" \
            etc/portcullis.yaml >"$tmp/hv$h.yaml"
done
# The CLI on hv1 connects as a role of its own (a member of portcullis,
# with its rights), so that its statements are told from the agents'.
pgsu -d postgres -c "CREATE ROLE portcullis_cli LOGIN IN ROLE portcullis" >/dev/null
sed "s|user=portcullis\"|user=portcullis_cli\"|" "$tmp/hv1.yaml" >"$tmp/cli.yaml"
"$build/src/cli/portcullis" -c "$tmp/hv1.yaml" init >/dev/null

# N VPSes, one IPv4 /32 each (100.64.0.0/10), 1,000 customers: setup, bulk
# SQL in the store's schema, not timed.
t0=$(now_ms)
psql -X -q -v ON_ERROR_STOP=1 "$url" <<SQL
BEGIN;
INSERT INTO vps (id, owner, lang, site, iface, created, host)
        SELECT 'vps-' || x, 'c' || (x % 1000) || '@example.org', 'en', 'milano', 'bv' || x, 0, 'hv' || (1 + x % $agents)
        FROM generate_series(0, $n - 1) x;
INSERT INTO vps_address (vps_id, family, prefix, net, len)
        SELECT 'vps-' || x, 4, '100.' || (64 + x / 65536) || '.' || (x / 256 % 256) || '.' || (x % 256) || '/32',
               decode(lpad(to_hex((100::bigint << 24) | ((64 + x / 65536)::bigint << 16) | (x % 65536)), 8, '0'), 'hex'), 32
        FROM generate_series(0, $n - 1) x;
COMMIT;
ANALYZE vps, vps_address;
SQL
echo "setup: $n VPSes on $agents hosts written in $(($(now_ms) - t0)) ms"

# ---- the agents ----
t0=$(now_ms)
for h in $(seq 1 "$agents"); do
        ns=$prefix-hv$h
        ip netns add "$ns"
        namespaces+=("$ns")
        ip -n "$ns" link set lo up
        ip netns exec "$ns" "$build/src/agent/portcullisd" -c "$tmp/hv$h.yaml" --host "hv$h" >"$tmp/hv$h.log" 2>&1 &
        pids+=($!)
done
insync() { grep -qE "Programmed the whole|already enforces|Repaired drift" "$tmp/hv$1.log" && grep -q "Listening on" "$tmp/hv$1.log"; }
for h in $(seq 1 "$agents"); do
        until insync "$h"; do
                kill -0 "${pids[h - 1]}" 2>/dev/null || { echo "hv$h's agent exited:" >&2; cat "$tmp/hv$h.log" >&2; exit 1; }
                [ $(($(now_ms) - t0)) -gt 600000 ] && { echo "hv$h's agent is not in sync after 600 s" >&2; exit 1; }
                sleep 0.1
        done
done
echo "setup: $agents agents started at once, all in sync after $(($(now_ms) - t0)) ms;" \
        "hv1: $(grep -m1 -oE "Programmed the whole ruleset.* ms" "$tmp/hv1.log")"

# ---- 1 and 2: changes, their latency and their database load ----
python3 - "$build/src/cli/portcullis" "$tmp" "$prefix" "$n" "$agents" "$changes" "$idle" <<'PY'
import ctypes, json, os, random, select, socket, struct, subprocess, sys, threading, time
cli, tmp, prefix, n, agents, k, idle = sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:8])
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
NEWSETELEM, DELSETELEM = (10 << 8) | 12, (10 << 8) | 14  # NFNL_SUBSYS_NFTABLES

def nft_events(ns):
    """A netlink socket in namespace <ns> subscribed to nf_tables' notifications."""
    me, there = os.open("/proc/self/ns/net", os.O_RDONLY), os.open("/run/netns/" + ns, os.O_RDONLY)
    try:
        if libc.setns(there, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + ns)
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        s.bind((0, 1 << (7 - 1)))  # NFNLGRP_NFTABLES
    finally:
        libc.setns(me, CLONE_NEWNET)
        os.close(me)
        os.close(there)
    return s

socks = [nft_events("%s-hv%d" % (prefix, h + 1)) for h in range(agents)]
target, seen_at, hit = None, None, threading.Event()
events = [0] * agents  # element notifications per host
lost = [0] * agents    # overruns of the sockets' buffers

def reader():
    global seen_at
    p = select.poll()
    host = {}
    for h, s in enumerate(socks):
        p.register(s, select.POLLIN)
        host[s.fileno()] = (h, s)
    while True:
        for fd, _ in p.poll():
            h, s = host[fd]
            try:
                data = s.recv(1 << 20)
            except OSError:  # ENOBUFS: notifications lost (a change waits for its own and times out)
                lost[h] += 1
                continue
            t = time.time()
            off = 0
            while off + 16 <= len(data):
                ln, ty = struct.unpack_from("=IH", data, off)
                if ln < 16:
                    break
                if ty in (NEWSETELEM, DELSETELEM):
                    events[h] += 1
                    tg = target
                    if tg is not None and not hit.is_set() and tg[0] == h and tg[2] == ty and \
                            tg[1] in data[off + 16:off + ln]:
                        seen_at = t
                        hit.set()
                off += (ln + 3) & ~3

threading.Thread(target=reader, daemon=True).start()

def psql(db, sql):
    return subprocess.run(["psql", "-X", "-At", "-h", tmp + "/pg", "-U", "postgres", "-d", db, "-c", sql],
                          check=True, capture_output=True, text=True).stdout.strip()

def snapshot():
    """Cumulative counters: pg_stat_database's, and pg_stat_statements' by role and statement."""
    d = psql("postgres", "SELECT json_build_array(xact_commit, tup_returned, tup_fetched, tup_inserted + "
             "tup_updated + tup_deleted, blks_hit + blks_read) FROM pg_stat_database WHERE datname = 'portcullis'")
    st = psql("postgres", "SELECT coalesce(json_agg(json_build_array(r.rolname, s.queryid, s.calls, s.rows, "
              "s.shared_blks_hit + s.shared_blks_read, s.total_exec_time, s.query)), '[]') FROM pg_stat_statements s "
              "JOIN pg_roles r ON r.oid = s.userid JOIN pg_database d ON d.oid = s.dbid AND d.datname = 'portcullis'")
    tb = psql("portcullis", "SELECT coalesce(json_object_agg(relname, json_build_array(coalesce(seq_scan, 0), "
              "coalesce(seq_tup_read, 0), coalesce(idx_scan, 0), coalesce(idx_tup_fetch, 0))), '{}') FROM "
              "(SELECT relname, seq_scan, seq_tup_read, idx_scan, idx_tup_fetch FROM pg_stat_user_tables UNION ALL "
              "SELECT '(catalogs)', sum(seq_scan), sum(seq_tup_read), sum(idx_scan), sum(idx_tup_fetch) "
              "FROM pg_stat_sys_tables) t")
    return time.monotonic(), json.loads(d), {(r[0], r[1]): r for r in json.loads(st)}, json.loads(tb)

def delta(a, b, idle_rate=None):
    """<b> - <a>, less what the idle fleet does in as long (idle_rate: a delta over 1 s)."""
    secs = b[0] - a[0]
    db = [y - x for x, y in zip(a[1], b[1])]
    tb = {t: [y - x for x, y in zip(a[3].get(t, [0] * 4), r)] for t, r in b[3].items()}
    st = {}
    for key, r in b[2].items():
        r0 = a[2].get(key)
        st[key] = [r[2] - (r0[2] if r0 else 0), r[3] - (r0[3] if r0 else 0), r[4] - (r0[4] if r0 else 0),
                   r[5] - (r0[5] if r0 else 0), r[6]]
    if idle_rate is not None:
        db = [x - y * secs for x, y in zip(db, idle_rate[1])]
        for key, r in idle_rate[2].items():
            if key in st:
                st[key][:4] = [x - y * secs for x, y in zip(st[key][:4], r[:4])]
        tb = {t: [x - y * secs for x, y in zip(r, idle_rate[3].get(t, [0] * 4))] for t, r in tb.items()}
    return secs, db, st, tb

def per_second(d):
    secs, db, st, tb = d
    return (secs, [x / secs for x in db], {key: [x / secs for x in r[:4]] + [r[4]] for key, r in st.items()},
            {t: [x / secs for x in r] for t, r in tb.items()})

idle_rate = None
if idle > 0:
    time.sleep(11)  # every backend's statistics flushed (an idle one flushes within 10 s)
    s0 = snapshot()
    time.sleep(idle)
    s1 = snapshot()
    idle_rate = per_second(delta(s0, s1))
else:
    s1 = snapshot()

last_audit = int(psql("portcullis", "SELECT coalesce(max(id), 0) FROM audit"))
rng = random.Random(14)
granted, log = set(), []
gap = 0.1
for i in range(k):
    if granted and rng.random() < 0.4:
        v, verb = rng.choice(sorted(granted)), "revoke"
        granted.discard(v)
    else:
        v, verb = rng.randrange(n), "grant"
        while v in granted:
            v = rng.randrange(n)
        granted.add(v)
    h = v % agents
    before = list(events)
    hit.clear()
    target = (h, b"bv%d\0" % v, NEWSETELEM if verb == "grant" else DELSETELEM)
    t0 = time.time()
    r = subprocess.run([cli, "-c", tmp + "/cli.yaml", "exception", verb, "vps-%d" % v, "smtp", "--by", "bench",
                        "--reason", "fleet bench %d" % i], capture_output=True, text=True)
    t1 = time.time()
    if r.returncode != 0:
        sys.exit("portcullis exception %s vps-%d failed: %s" % (verb, v, r.stderr.strip()))
    if not hit.wait(5):
        sys.exit("vps-%d's %s is not in hv%d's kernel within 5 s (notifications lost: %d)" % (v, verb, h + 1, lost[h]))
    time.sleep(gap)
    target = None
    others = sum(e - b for j, (e, b) in enumerate(zip(events, before)) if j != h)
    log.append((v, verb, h, t0, t1, seen_at, others))
if idle > 0:
    time.sleep(11)
s2 = snapshot()

# The commit of each change: its transaction's timestamp (the audit rows of
# one change share it).
rows = psql("portcullis", "SELECT string_agg(DISTINCT vps_id, ','), min(extract(epoch FROM "
            "pg_xact_commit_timestamp(xmin))) FROM audit WHERE id > %d AND action LIKE 'exception.%%' "
            "GROUP BY xmin::text ORDER BY min(id)" % last_audit).splitlines()
if len(rows) != k:
    sys.exit("%d changes but %d transactions in the audit log" % (k, len(rows)))
lat, local, remote, cli_ms, commit_ms = [], [], [], [], []
for (v, verb, h, t0, t1, seen, others), row in zip(log, rows):
    vid, commit = row.split("|")
    if vid != "vps-%d" % v:
        sys.exit("the audit log's order is not the changes' (%s, vps-%d)" % (vid, v))
    ms = (seen - float(commit)) * 1000
    lat.append(ms)
    (local if h == 0 else remote).append(ms)
    cli_ms.append((t1 - t0) * 1000)
    commit_ms.append((float(commit) - t0) * 1000)

def pct(a, p):
    a = sorted(a)
    return a[min(len(a) - 1, int(round(p / 100 * (len(a) - 1))))]

def line(a):
    return "p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms" % (pct(a, 50), pct(a, 90), pct(a, 99), max(a))

print("change-to-enforced over %d changes (%d grants, %d revokes) at %d VPSes, %d agents:" %
      (k, sum(1 for x in log if x[1] == "grant"), sum(1 for x in log if x[1] == "revoke"), n, agents))
print("  commit to the host's kernel: " + line(lat))
if remote:
    print("    another host's VPS (the notice, %d): %s" % (len(remote), line(remote)))
if local:
    print("    hv1's own VPS (hv1's CLI tells its agent, %d): %s" % (len(local), line(local)))
print("  the CLI, whole process: p50 %.1f ms (its commit at p50 %.1f ms after its start)" %
      (pct(cli_ms, 50), pct(commit_ms, 50)))
stray = sum(x[6] for x in log)
print("  element notifications in other hosts' kernels during the changes: %d" % stray)

# ---- database load ----
secs, db, st, tb = delta(s1, s2, idle_rate)
kind = "less the idle fleet's (%d s measured before)" % idle if idle_rate else "idle load not subtracted"
print("database load per change over %.1f s, %s:" % (secs, kind))
print("  pg_stat_database: %.1f transactions, %.0f tuples returned (scans), %.1f fetched, %.1f written, "
      "%.0f buffer reads" % (db[0] / k, db[1] / k, db[2] / k, db[3] / k, db[4] / k))
groups = {}
for (role, _), (calls, nrows, blks, ms, q) in st.items():
    g = "the CLI" if role == "portcullis_cli" else "agents"
    t = groups.setdefault(g, [0, 0, 0, 0])
    t[0] += calls; t[1] += nrows; t[2] += blks; t[3] += ms
for g in ("agents", "the CLI"):
    if g in groups:
        t = groups[g]
        print("  %-7s %6.1f statements, %6.1f rows, %7.1f buffer reads, %6.2f ms of execution" %
              (g + ":", t[0] / k, t[1] / k, t[2] / k, t[3] / k))
print("  rows read per change, by table (sequential scans, their rows; index scans, their rows; all roles):")
for t, r in sorted(tb.items(), key=lambda x: -(x[1][1] + x[1][3])):
    if r[1] + r[3] >= 0.5 * k:
        print("    %-14s %6.1f %7.0f %7.1f %7.1f" % (t, *(max(0, x) / k for x in r)))
print("  the agents' statements per change (calls, rows, buffers, ms):")
top = sorted(((r[0], key, r) for key, r in st.items() if key[0] == "portcullis"), key=lambda x: -x[0])
for calls, key, (c, nrows, blks, ms, q) in top[:12]:
    if c / k < 0.05:
        break
    print("    %6.2f %6.2f %7.1f %6.3f  %s" % (c / k, nrows / k, blks / k, ms / k, " ".join(q.split())[:90]))
PY

# The agents' own part of it: database read to kernel commit, as they log each change.
cat "$tmp"/hv*.log | grep -oE "changed vps-[0-9]+: [1-9][0-9]* kernel elements changed in [0-9.]+ ms" |
        awk '{print $(NF-1)}' | sort -n | awk '{a[NR] = $1} END {if (NR) printf "  the agents'"'"' part, database read to kernel commit (their log, %d changes): p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", NR, a[int((NR - 1) * 0.5) + 1], a[int((NR - 1) * 0.99) + 1], a[NR]}'

# ---- 3: a new agent with one host's share ----
kill "${pids[0]}"
wait "${pids[0]}" 2>/dev/null || true
python3 - "$build/src/agent/portcullisd" "$tmp" "$prefix-hv1" "$starts" "$n" "$agents" <<'PY'
import ctypes, json, os, re, subprocess, sys, threading, time
agent, tmp, ns, runs, n, agents = sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:7])
libc = ctypes.CDLL(None, use_errno=True)
netns = os.open("/run/netns/" + ns, os.O_RDONLY)
def enter():
    if libc.setns(netns, 0x40000000) != 0:
        os._exit(127)
def statements():
    out = subprocess.run(["psql", "-X", "-At", "-h", tmp + "/pg", "-U", "postgres", "-d", "postgres", "-c",
                          "SELECT coalesce(json_agg(json_build_array(s.queryid, s.calls, s.rows, s.total_exec_time, "
                          "s.query)), '[]') FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid AND "
                          "d.datname = 'portcullis'"], check=True, capture_output=True, text=True).stdout
    return {r[0]: r for r in json.loads(out)}

before = statements()
res = []
for r in range(runs):
    for fam in ("inet", "bridge"):
        subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", fam, "portcullis"], capture_output=True)
    t0 = time.time()
    p = subprocess.Popen([agent, "-c", tmp + "/hv1.yaml", "--host", "hv1"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, preexec_fn=enter)
    timer = threading.Timer(120, p.kill)
    timer.start()
    prog = listen = None
    for l in p.stdout:
        t = (time.time() - t0) * 1000
        m = re.search(r"Programmed the whole ruleset \((\d+) per-VPS elements\) in ([0-9.]+) ms", l)
        if m:
            prog, elements, kernel = t, int(m.group(1)), float(m.group(2))
        if "Listening on" in l:
            listen = t
        if prog is not None and listen is not None:
            break
    p.terminate()
    p.wait()
    timer.cancel()
    if prog is None or listen is None:
        sys.exit("the new agent did not come up in sync: %s" % l)
    res.append((prog, listen, kernel, prog - kernel))

after = statements()

def med(i):
    v = sorted(x[i] for x in res)
    return "%.0f [%.0f-%.0f]" % (v[(len(v) - 1) // 2], v[0], v[-1])

print("a new agent with hv1's %d of %d VPSes (%d elements), nothing in its kernel, %d starts, ms from its start, "
      "median [min-max]:" % (n // agents + (1 if n % agents else 0), n, elements, runs))
print("  listening, in sync: %s   kernel programmed: %s" % (med(1), med(0)))
print("  of which programming the kernel (its log): %s; before it (process, database load): %s" % (med(2), med(3)))
top = sorted(((r[3] - before.get(q, [0] * 4)[3], r[1] - before.get(q, [0] * 4)[1], r[2] - before.get(q, [0] * 4)[2],
              " ".join(r[4].split())[:90]) for q, r in after.items()), reverse=True)
print("  the database's part, per start (pg_stat_statements: ms of execution, calls, rows): %.1f ms in all; the longest:" %
      (sum(x[0] for x in top) / runs))
for ms, calls, nrows, q in top[:4]:
    print("    %7.1f %5.0f %7.0f  %s" % (ms / runs, calls / runs, nrows / runs, q))
PY
