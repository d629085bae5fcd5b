#!/bin/bash
# The SMTP proxy (portcullis-smtpd), measured in the netns lab, all in one run
# so that the ratios mean something on a noisy machine:
#
#  1. messages/s of 10 kB messages (1 and 10 recipients) at 1, 100 and 1,000
#     concurrent sessions, postfix's smtp-source in vps-101 -> smtp-sink in
#     the internet namespace, (a) direct: to port 2526 (only forwarded by hv)
#     and (b) through the proxy: to port 25, which the agent redirects to
#     portcullis-smtpd; plus each side's CPU per message.  Twice: "shared",
#     every process on every core, and "pinned", the load generator and the
#     sinks on CPU 0 and the proxy on the other cores (as on a hypervisor,
#     where the proxy does not share a core with the VPS and the MX);
#  2. idle sessions held open through the proxy (10,000, or fewer if the
#     file-descriptor limit cannot hold two per session): the proxy's VmRSS
#     per session, and the kernel's socket memory (labelled as such);
#  3. (full run only) the same message workload through proxsmtp in
#     transparent mode ('full': it connects from the VPS's address too), from
#     vps-201 with its own nft redirect in a table of its own.
#
# In 1, each case also runs through the floor: bench/relay_floor, a plain
# TCP relay (one thread, epoll, read/write, no parsing) in hv on port 2527
# of hv's own address, connecting to the same sink as the proxy.  What it
# costs per message is what any relay of these bytes costs (two connections,
# every byte moved twice); the report gives the proxy's CPU per message
# over the floor's, per run.
#
# Usage: bench/smtp.sh BUILD_DIR [--smoke]
# --smoke: 1 and 10 sessions, 50 messages each, 100 idle sessions, no
# proxsmtp; well under a minute.  Either way the exit status is non-zero if
# a message failed, the sink received fewer messages than were sent, or the
# proxy did not hold every idle session.  Needs root (namespaces, nft).
# LAB_KEEP=1 keeps the lab's directory (logs) after the run; LAB_PREFIX
# names its namespaces (default pcsmtp).  For a shorter full run:
# SMTP_SESSIONS="100" (the shared sessions list), SMTP_MODES=shared,
# SMTP_PEER=0 (no proxsmtp), SMTP_FLOOR_SPLICE=1 adds the floor relay with
# splice() instead of read/write, as a second floor.
set -u
here=$(dirname "$(readlink -f "$0")")
root=$(readlink -f "$here/..")
build=$(readlink -f "${1:-build}")
smoke=0
[ "${2:-}" = --smoke ] && smoke=1
export LAB_PREFIX=${LAB_PREFIX:-pcsmtp} LAB_QUIET=1
. "$root/tests/lab/lab.sh"
. "$root/tests/lab/common.sh"
. "$here/smtp_lib.sh"

die() { echo "smtp.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (network namespaces, nftables)"
for b in src/smtpd/portcullis-smtpd src/agent/portcullisd src/cli/portcullis bench/relay_floor; do
	[ -x "$build/$b" ] || die "no $build/$b (build first)"
done
# smtp-source and smtp-sink come with postfix, socat is for smtpd_ask.
if ! command -v smtp-source >/dev/null || ! command -v smtp-sink >/dev/null || ! command -v socat >/dev/null; then
	lab_deps || die "cannot install the lab's packages"
fi

if [ "$smoke" = 1 ]; then
	sessions_list="1 10" pinned_sessions_list=10 rcpts_list="1 10" reps=1 idle_want=100 peer=0
	msgs_for() { echo 50; }
else
	sessions_list="1 100 1000" pinned_sessions_list="100 1000" rcpts_list="1 10" reps=2 idle_want=10000 peer=1
	msgs_for() { case $1 in 1) echo 2000 ;; 100) echo 5000 ;; *) echo 10000 ;; esac; }
	sessions_list=${SMTP_SESSIONS:-$sessions_list}
	[ "${SMTP_PEER:-1}" = 0 ] && peer=0
	# proxsmtp drops most connection attempts at these rates (see
	# docs/BENCHMARKS.md): fewer messages keep the run under 10 minutes.
	peer_msgs_for() { case $1 in 1) echo 200 ;; 100) echo 300 ;; *) echo 1000 ;; esac; }
	if ! command -v proxsmtpd >/dev/null; then
		echo "installing proxsmtp (the peer baseline)" >&2
		env DEBIAN_FRONTEND=noninteractive apt-get -y -qq --no-install-recommends install proxsmtp >/dev/null 2>&1 ||
			{ env DEBIAN_FRONTEND=noninteractive apt-get -qq update >/dev/null 2>&1 &&
				env DEBIAN_FRONTEND=noninteractive apt-get -y -qq --no-install-recommends install proxsmtp >/dev/null 2>&1; } ||
			{ echo "smtp.sh: cannot install proxsmtp; skipping the peer baseline" >&2; peer=0; }
	fi
fi

# Two descriptors per proxied session (the VPS's and the MX's side), plus a
# few: the idle test holds as many sessions as the hard limit allows, up to
# idle_want (raising the hard limit needs CAP_SYS_RESOURCE).
hard=$(ulimit -Hn)
nofile=65536
[ "$hard" != unlimited ] && [ "$hard" -lt "$nofile" ] && nofile=$hard
ulimit -n "$nofile" || die "cannot raise ulimit -n to $nofile"
idle_n=$idle_want
[ $(((nofile - 64) / 2)) -lt "$idle_n" ] && idle_n=$(((nofile - 64) / 2))

FAILED=0
SOURCE_PIN=()
fail() { FAILED=1; echo "FAIL: $*"; }

smtp_bench_up

# ---- measuring helpers ----

cpu_ticks() { # PID: user+system clock ticks of the whole process (all threads)
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
	s=${s##*) }
	awk '{ print $12 + $13 }' <<<"$s"
}
machine_ticks() { awk '/^cpu / { print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6 }' /proc/stat; } # total idle
listen_drops() { # NS: TcpExt ListenDrops in NS
	lab_exec "$1" cat /proc/net/netstat | awk '$1 == "TcpExt:" { if (!h) { for (i = 1; i <= NF; i++) c[$i] = i; h = 1 } else print $c["ListenDrops"] }'
}
proxy_counts() { # messages messages_failed recipients of vps-101 in the proxy's stats
	smtpd_ask stats | /usr/bin/python3 -c '
import json, sys
for v in json.load(sys.stdin).get("vps", []):
    if v["vps"] == "vps-101":
        print(v["messages"], v["messages_failed"], v["recipients"]); break
else:
    print(0, 0, 0)'
}
rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }
hwm_kb() { awk '$1 == "VmHWM:" { print $2 }' "/proc/$1/status"; }
HZ=$(getconf CLK_TCK)
div() { # A B [FORMAT]: A / B (numbers), "-" if B is 0
	awk -v a="$1" -v b="$2" -v f="${3:-%.0f}" 'BEGIN { if (b == 0) print "-"; else printf f "\n", a / b }'; }

# run_case PATH SESSIONS MESSAGES RCPTS: one smtp-source run; PATH is direct,
# proxy, floor, floor_splice or proxsmtp.  Sets R_MS R_RATE R_PCPU (the
# proxy's, or the floor relay's, CPU, us/message)
# R_SCPU (the sink's) R_BUSY (% of the whole machine) R_DROPS (hv listen
# drops); checks that every message arrived.
run_case() {
	local path=$1 s=$2 m=$3 r=$4 from=vps101 port=25 sink=sink25 spid=$SINK25 ppid=$SMTPD_PID to=$LAB_INET_V4
	local sink0 sink1 pc0 pc1 sc0 sc1 mt0 mt1 d0 d1 t0 t1 rc got=0 deadline px0 px1 a0 f0 r0 a1 f1 r1
	case $path in
	direct) port=2526 sink=sink2526 spid=$SINK2526 ppid= ;;
	proxsmtp) from=vps201 ppid=$PROXSMTP_PID ;;
	floor) to=$FLOOR_ADDR port=2527 ppid=$FLOOR ;;
	floor_splice) to=$FLOOR_ADDR port=2528 ppid=$FLOOR_SPLICE ;;
	esac
	sink0=$(sink_count "$sink")
	[ "$path" = proxy ] && px0=$(proxy_counts)
	pc0=0; [ -n "$ppid" ] && pc0=$(cpu_ticks "$ppid")
	sc0=$(cpu_ticks "$spid")
	d0=$(listen_drops hv)
	mt0=$(machine_ticks)
	t0=$(lab_now_ms)
	lab_exec "$from" "${SOURCE_PIN[@]}" smtp-source -s "$s" -m "$m" -l 10240 -r "$r" -f a@vps.example -t b@example.net \
		"$to:$port" >"$LAB_DIR/source.out" 2>&1
	rc=$?
	t1=$(lab_now_ms)
	mt1=$(machine_ticks)
	pc1=0; [ -n "$ppid" ] && pc1=$(cpu_ticks "$ppid")
	sc1=$(cpu_ticks "$spid")
	d1=$(listen_drops hv)
	# the sink's counters reach its log a moment later
	deadline=$(($(lab_now_ms) + 5000))
	while :; do
		sink1=$(sink_count "$sink")
		got=$((sink1 - sink0))
		[ "$got" -ge "$m" ] || [ "$(lab_now_ms)" -ge "$deadline" ] && break
		sleep 0.05
	done
	R_MS=$((t1 - t0))
	R_RATE=$(div $((m * 1000)) "$R_MS")
	R_PCPU=-; [ -n "$ppid" ] && R_PCPU=$(div $(((pc1 - pc0) * 1000000 / HZ)) "$m")
	R_SCPU=$(div $(((sc1 - sc0) * 1000000 / HZ)) "$m")
	R_BUSY=$(awk -v a="$mt0" -v b="$mt1" 'BEGIN { split(a, x, " "); split(b, y, " ");
		t = y[1] - x[1]; i = y[2] - x[2]; if (t <= 0) print "-"; else printf "%.0f\n", 100 * (t - i) / t }')
	R_DROPS=$((d1 - d0))
	printf '  %-12s sessions=%-4s rcpts=%-2s messages=%-5s %7.2f s %6s msg/s  proxy %5s us/msg  sink %4s us/msg  machine %3s%%  listen drops %s\n' \
		"$path" "$s" "$r" "$m" "$(div "$R_MS" 1000 %.3f)" "$R_RATE" "$R_PCPU" "$R_SCPU" "$R_BUSY" "$R_DROPS"
	local failed0=$FAILED
	FAILED=0
	if [ "$rc" != 0 ]; then
		fail "$path: smtp-source -s $s -m $m -r $r exited $rc: $(tail -3 "$LAB_DIR/source.out" | tr '\n' ' ')"
	fi
	if [ "$got" -lt "$m" ]; then
		fail "$path: the sink received $got of $m messages"
	fi
	if [ "$path" = proxy ]; then
		px1=$(proxy_counts)
		read -r a0 f0 r0 <<<"$px0"
		read -r a1 f1 r1 <<<"$px1"
		[ $((a1 - a0)) = "$m" ] && [ $((f1 - f0)) = 0 ] && [ $((r1 - r0)) = $((m * r)) ] ||
			fail "proxy: its stats count $((a1 - a0)) messages ($((f1 - f0)) failed, $((r1 - r0)) recipients) for $m sent with $r recipients each"
	fi
	# a failed run has no rate
	[ "$FAILED" = 0 ] || R_RATE=-
	[ "$failed0" = 0 ] || FAILED=1
}

echo "smtp bench: $(uname -r), $(nproc) cores, ulimit -n $nofile, postfix $(postconf -d -h mail_version 2>/dev/null)," \
	"10240-byte messages, one message per SMTP session; $( [ "$smoke" = 1 ] && echo smoke || echo "best of $reps" )"

# ---- 1. messages/s, direct and through portcullis-smtpd ----
# shared: every process where the scheduler puts it (the proxy competes with
# the load generator and the MX for this VM's cores); pinned (2 cores or
# more): smtp-source and the sinks on CPU 0, the proxy on the others -- a
# hypervisor's proxy does not share a core with the VPS and the MX.
declare -A best_direct best_proxy cpu_proxy cpu_sink busy_proxy busy_direct run_cpu
ncpu=$(nproc)
modes=shared
[ "$ncpu" -ge 2 ] && command -v taskset >/dev/null && modes="shared pinned"
[ "$smoke" = 0 ] && [ -n "${SMTP_MODES:-}" ] && modes=$SMTP_MODES
pin() { # MODE: sets the affinity of the sinks and the proxy (all threads)
	local gen=0-$((ncpu - 1)) proxy=0-$((ncpu - 1))
	command -v taskset >/dev/null || return 0
	[ "$1" = pinned ] && gen=0 proxy=1-$((ncpu - 1))
	taskset -a -p -c "$gen" "$SINK25" >/dev/null && taskset -a -p -c "$gen" "$SINK2526" >/dev/null &&
		taskset -a -p -c "$proxy" "$SMTPD_PID" >/dev/null && taskset -a -p -c "$proxy" "$FLOOR" >/dev/null &&
		{ [ -z "${FLOOR_SPLICE:-}" ] || taskset -a -p -c "$proxy" "$FLOOR_SPLICE" >/dev/null; } || die "taskset failed"
	SOURCE_PIN=(taskset -c "$gen")
}
for mode in $modes; do
	pin "$mode"
	list=$sessions_list
	[ "$mode" = pinned ] && list=$pinned_sessions_list
	for rep in $(seq 1 "$reps"); do
		echo "$mode, run $rep:"
		for s in $list; do
			for r in $rcpts_list; do
				m=$(msgs_for "$s")
				k="$mode/$s/$r"
				order="direct proxy $floor_paths"
				[ $((rep % 2)) = 0 ] && order="$(echo $floor_paths | tr ' ' '\n' | tac | tr '\n' ' ')proxy direct"
				for path in $order; do
					run_case "$path" "$s" "$m" "$r"
					run_cpu[$k/$rep/$path]=$R_PCPU
					[ "$path" = floor ] || [ "$path" = floor_splice ] && continue
					if [ "$path" = direct ]; then
						if [ "${R_RATE}" != - ] && [ "${R_RATE}" -gt "${best_direct[$k]:-0}" ]; then
							best_direct[$k]=$R_RATE busy_direct[$k]=$R_BUSY
						fi
					elif [ "${R_RATE}" != - ] && [ "${R_RATE}" -gt "${best_proxy[$k]:-0}" ]; then
						best_proxy[$k]=$R_RATE cpu_proxy[$k]=$R_PCPU cpu_sink[$k]=$R_SCPU busy_proxy[$k]=$R_BUSY
					fi
				done
			done
		done
	done
done
pin shared
proxy_errors=$(grep -c 'event=error' "$LAB_DIR/log/portcullis-smtpd.log")
[ "$proxy_errors" = 0 ] || fail "the proxy logged $proxy_errors errors: $(grep 'event=error' "$LAB_DIR/log/portcullis-smtpd.log" | head -3)"
proxy_hwm=$(hwm_kb "$SMTPD_PID")

# ---- 3. proxsmtp, the peer baseline ----
declare -A peer_rate peer_cpu peer_drops
if [ "$peer" = 1 ]; then
	echo "proxsmtp $(proxsmtpd -v 2>&1 | head -1 | grep -o '[0-9][0-9.]*' | head -1) (TransparentProxy: full), from vps-201:"
	mkdir -p "$LAB_DIR/proxsmtp-tmp"
	cat >"$LAB_DIR/proxsmtpd.conf" <<EOF
# no FilterCommand: pass every message through (proxsmtp still spools it)
Listen: 0.0.0.0:10026
OutAddress: 127.0.0.1:25
TransparentProxy: full
MaxConnections: 4000
TempDirectory: $LAB_DIR/proxsmtp-tmp
TimeOut: 180
EOF
	# vps-201 is not registered with Portcullis: its port 25 is sent to
	# proxsmtp by this table (deleted below).  The MX's replies to
	# proxsmtp's transparent sockets are delivered locally by the agent's
	# proxy_return chain, which matches any transparent socket on port 25.
	printf 'table ip pcsmtp_bench {\n chain pre {\n  type nat hook prerouting priority dstnat; policy accept;\n  iifname "%s" tcp dport 25 redirect to :10026\n }\n}\n' \
		"$VPS201_IF" >"$LAB_DIR/pcsmtp_bench.nft"
	nft_hv -f "$LAB_DIR/pcsmtp_bench.nft" || die "cannot add the proxsmtp redirect"
	PROXSMTP_PID=$(lab_bg proxsmtpd hv /usr/sbin/proxsmtpd -d 1 -f "$LAB_DIR/proxsmtpd.conf" -p "$LAB_DIR/proxsmtpd.pid")
	# (not lab_wait_port: a connection that was not redirected would be
	# relayed to its own destination, proxsmtp itself)
	wait_for 5 bash -c "ip netns exec $LAB_HV ss -ltnH | grep -q ':10026 '" || die "proxsmtpd did not start: $(cat "$LAB_DIR/log/proxsmtpd.log")"
	for s in $sessions_list; do
		for r in $rcpts_list; do
			run_case proxsmtp "$s" "$(peer_msgs_for "$s")" "$r"
			peer_rate[$s/$r]=$R_RATE peer_cpu[$s/$r]=$R_PCPU peer_drops[$s/$r]=$R_DROPS
		done
	done
	_lab_kill "$PROXSMTP_PID"
	nft_hv delete table ip pcsmtp_bench
fi

# ---- 2. idle sessions through the proxy ----
# A fresh proxy, so that memory freed by the runs above is not reused.
smtpd_kill
smtpd_start >/dev/null || die "portcullis-smtpd did not restart"
cat >"$LAB_DIR/idle.py" <<'EOF'
import os, socket, sys, time
host, port, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
socks, bad = [], 0
for i in range(n):
    try:
        s = socket.create_connection((host, port), timeout=10)
        banner = b""
        while not banner.endswith(b"\n"):
            chunk = s.recv(512)
            if not chunk:
                break
            banner += chunk
        if banner.startswith(b"220"):
            socks.append(s)
        else:
            bad += 1
            s.close()
            if bad == 1:
                print("unexpected banner: %r" % banner, flush=True)
    except OSError as e:
        bad += 1
        if bad == 1:
            print("connection %d: %s" % (i, e), flush=True)
with open(os.path.join(d, "idle.tmp"), "w") as f:
    f.write("%d %d\n" % (len(socks), bad))
os.rename(os.path.join(d, "idle.tmp"), os.path.join(d, "idle.ready"))
deadline = time.time() + 300
while not os.path.exists(os.path.join(d, "idle.release")) and time.time() < deadline:
    time.sleep(0.05)
for s in socks:
    s.close()
EOF
skmem() { # NS: bytes charged to TCP sockets in NS (ss -tm: r+t+f+w+o), and their count
	lab_exec "$1" ss -tmnH | /usr/bin/python3 -c '
import re, sys
total = n = 0
for m in re.finditer(r"skmem:\(([^)]*)\)", sys.stdin.read()):
    n += 1
    for f in m.group(1).split(","):
        k, v = re.match(r"([a-z]+)(\d+)", f).groups()
        if k in ("r", "t", "f", "w", "o"):
            total += int(v)
print(total, n)'
}
sleep 0.5
rss0=$(rss_kb "$SMTPD_PID")
slab0=$(awk '$1 == "Slab:" { print $2 }' /proc/meminfo)
rm -f "$LAB_DIR/idle.ready" "$LAB_DIR/idle.release"
t0=$(lab_now_ms)
IDLE_PID=$(lab_bg idle vps101 /usr/bin/python3 "$LAB_DIR/idle.py" "$LAB_INET_V4" 25 "$idle_n" "$LAB_DIR")
deadline=$(($(lab_now_ms) + 180000))
until [ -e "$LAB_DIR/idle.ready" ] || [ "$(lab_now_ms)" -ge "$deadline" ] || ! _lab_alive "$IDLE_PID"; do sleep 0.1; done
t1=$(lab_now_ms)
read -r held bad <"$LAB_DIR/idle.ready" 2>/dev/null || { held=0 bad=$idle_n; }
sleep 1
rss1=$(rss_kb "$SMTPD_PID")
slab1=$(awk '$1 == "Slab:" { print $2 }' /proc/meminfo)
open_sessions=$(smtpd_ask status | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["sessions"])')
proxy_fds=$(find "/proc/$SMTPD_PID/fd" -mindepth 1 -maxdepth 1 | wc -l)
read -r hv_sk hv_socks <<<"$(skmem hv)"
# What one socket costs the kernel at least, from the slab object sizes
# (an estimate: the socket, its inode, file and dentry).
sock_obj=$(awk '$1 == "TCP" || $1 == "sock_inode_cache" || $1 == "filp" || $1 == "dentry" { b += $4 } END { print b + 0 }' /proc/slabinfo 2>/dev/null)
sockstat=$(lab_exec hv grep '^TCP:' /proc/net/sockstat)
touch "$LAB_DIR/idle.release"
wait_for 30 bash -c "! kill -0 $IDLE_PID 2>/dev/null"
wait_for 30 bash -c "echo status | ip netns exec $LAB_HV socat -t2 - UNIX-CONNECT:$LAB_DIR/smtpd.sock | grep -q '\"sessions\":0,'"
rss2=$(rss_kb "$SMTPD_PID")

[ "$held" = "$idle_n" ] && [ "$open_sessions" = "$idle_n" ] ||
	fail "idle: held $held of $idle_n sessions ($bad failed; the proxy counted $open_sessions open): $(head -3 "$LAB_DIR/log/idle.log")"

# ---- report ----
echo
for mode in $modes; do
	list=$sessions_list
	[ "$mode" = pinned ] && list=$pinned_sessions_list
	if [ "$mode" = shared ]; then
		echo "messages/s, best of $reps; direct: smtp-source -> smtp-sink; proxy: the same through portcullis-smtpd; all processes on all $ncpu cores"
	else
		echo "messages/s, best of $reps, pinned: smtp-source and smtp-sink on CPU 0, portcullis-smtpd on CPU $( [ "$ncpu" = 2 ] && echo 1 || echo "1-$((ncpu - 1))")"
	fi
	printf '%-9s %-6s %9s %10s %10s %7s %13s %12s %14s\n' sessions rcpts messages direct proxy ratio "proxy us/msg" "sink us/msg" "machine busy"
	for s in $list; do
		for r in $rcpts_list; do
			k="$mode/$s/$r"
			printf '%-9s %-6s %9s %10s %10s %7s %13s %12s %14s\n' "$s" "$r" "$(msgs_for "$s")" "${best_direct[$k]:--}" \
				"${best_proxy[$k]:--}" "$(div "${best_proxy[$k]:-0}" "${best_direct[$k]:-0}" %.2f)" "${cpu_proxy[$k]:--}" \
				"${cpu_sink[$k]:--}" "${busy_direct[$k]:--}% / ${busy_proxy[$k]:--}%"
		done
	done
	echo
done
echo "(us/msg: CPU time per message of the proxy and of the sink, in the proxy run; machine busy: % of all $ncpu cores, direct / proxy run)"
echo
echo "CPU per message, us: the proxy and the floor (bench/relay_floor: a plain TCP relay, read/write) in each run"
for mode in $modes; do
	list=$sessions_list
	[ "$mode" = pinned ] && list=$pinned_sessions_list
	printf '%-7s %-9s %-6s %-4s %8s %8s %12s%s\n' mode sessions rcpts run proxy floor proxy/floor \
		"$( [ -n "${FLOOR_SPLICE:-}" ] && printf ' %13s' 'floor(splice)')"
	for s in $list; do
		for r in $rcpts_list; do
			for rep in $(seq 1 "$reps"); do
				k="$mode/$s/$r/$rep"
				printf '%-7s %-9s %-6s %-4s %8s %8s %12s%s\n' "$mode" "$s" "$r" "$rep" "${run_cpu[$k/proxy]:--}" \
					"${run_cpu[$k/floor]:--}" "$(div "${run_cpu[$k/proxy]:-0}" "${run_cpu[$k/floor]:-0}" %.2f)" \
					"$( [ -n "${FLOOR_SPLICE:-}" ] && printf ' %13s' "${run_cpu[$k/floor_splice]:--}")"
			done
		done
	done
done
echo "proxy peak RSS over these runs (VmHWM): ${proxy_hwm} kB"
if [ "$peer" = 1 ]; then
	echo
	echo "proxsmtp (TransparentProxy: full, no filter), one run"
	printf '%-9s %-6s %9s %10s %14s %16s %13s\n' sessions rcpts messages proxsmtp "ratio/direct" "proxsmtp us/msg" "listen drops"
	for s in $sessions_list; do
		for r in $rcpts_list; do
			k="$s/$r"
			printf '%-9s %-6s %9s %10s %14s %16s %13s\n' "$s" "$r" "$(peer_msgs_for "$s")" "${peer_rate[$k]:--}" \
				"$(div "${peer_rate[$k]:-0}" "${best_direct[shared/$k]:-0}" %.3f)" "${peer_cpu[$k]:--}" "${peer_drops[$k]:--}"
		done
	done
fi
echo
[ "$idle_n" -lt "$idle_want" ] && echo "(idle sessions capped at $idle_n: the hard limit on open files is $nofile, two per session)"
echo "idle sessions through the proxy: $held held (banner read) in $(div "$((t1 - t0))" 1000 %.1f) s, proxy counts $open_sessions open, $proxy_fds descriptors"
echo "proxy VmRSS: $rss0 kB before, $rss1 kB with $held sessions, $rss2 kB after they closed"
echo "proxy memory per session: $(div $(((rss1 - rss0) * 1024)) "$held") bytes (goal: under 16384)"
echo "kernel, not the proxy's own memory:"
echo "  buffers charged to hv's $hv_socks TCP sockets (ss -tm: r+t+f+w+o): $(div "$hv_sk" "$held") bytes per session"
echo "  slab objects of the proxy's two sockets (TCP + sock_inode + filp + dentry sizes, an estimate): $((2 * ${sock_obj:-0})) bytes per session"
echo "  Slab growth, whole machine (client socket, the proxy's two, the sink's): $(div $(((slab1 - slab0) * 1024)) "$held") bytes per session"
echo "  hv /proc/net/sockstat: $sockstat"
if [ "$FAILED" != 0 ]; then
	echo "smtp bench: FAILED (proxy log: $LAB_DIR/log/portcullis-smtpd.log; LAB_KEEP=1 keeps it)"
	tail -5 "$LAB_DIR/log/portcullis-smtpd.log"
	exit 1
fi
echo "smtp bench: ok"
