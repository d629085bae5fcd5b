#!/bin/bash
# The SMTP proxy's CPU per message against the floor (issue 15), and one
# build of the proxy against another, in the same run: the numbers a change
# to the proxy is judged by on a shared, noisy machine.
#
# Usage: bench/smtp_cpu.sh BUILD [BUILD_B]
#
# The lab of bench/smtp.sh (bench/smtp_lib.sh).  Each round runs every case
# (SESSIONS/RCPTS: postfix's smtp-source in vps-101, 10,240-byte messages,
# one per session) through the floor (bench/relay_floor of BUILD, a plain
# read/write TCP relay), through BUILD's portcullis-smtpd and, if given,
# through BUILD_B's (the proxy is restarted with the other binary, on the
# same config, between the two); the order of the paths rotates from round
# to round.  CPU is each relay's sum_exec_runtime (/proc/PID/task/*/
# schedstat, nanoseconds, every thread) over the run, per message.  The
# report gives, per case, the median and the range over the rounds of
# proxy/floor (each proxy run over the floor run of its own round) and,
# with BUILD_B, of B/A (paired by round).
#
# Environment: SMTP_CPU_ROUNDS (default 5), SMTP_CPU_CASES (default
# "100/1 100/10 1000/1"), SMTP_CPU_MODE pinned (default: smtp-source and the
# sinks on CPU 0, the relays on the others) or shared, SMTP_CPU_MSGS
# (messages per run, default 3000), SMTP_CPU_PERF=DIR (perf record -g of
# each run, the floor's too, into DIR), SMTP_CPU_STRACE=DIR (strace -c -f of every
# path in round 1, into DIR); a traced run is not counted.  For CPU
# placement (Nice=): SMTP_CPU_NICE_B=N runs proxy b at nice N (b is BUILD's
# own proxy if no BUILD_B is given), SMTP_CPU_HOG=1 keeps a busy loop (a
# guest's vCPU) on the relays' first core at nice 0, and the report adds
# messages/s and the loop's share of its core.  LAB_PREFIX (default
# pcsmtp), LAB_KEEP as bench/smtp.sh.
# Needs root.  Exit status non-zero if a message was lost or refused.
set -u
here=$(dirname "$(readlink -f "$0")")
root=$(readlink -f "$here/..")
build=$(readlink -f "${1:-build}")
build_b=
[ -n "${2:-}" ] && build_b=$(readlink -f "$2")
export LAB_PREFIX=${LAB_PREFIX:-pcsmtp} LAB_QUIET=1
. "$root/tests/lab/lab.sh"
. "$root/tests/lab/common.sh"
. "$here/smtp_lib.sh"

die() { echo "smtp_cpu.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (network namespaces, nftables)"
for b in src/smtpd/portcullis-smtpd src/agent/portcullisd src/cli/portcullis bench/relay_floor; do
	[ -x "$build/$b" ] || die "no $build/$b (build first)"
done
[ -z "$build_b" ] || [ -x "$build_b/src/smtpd/portcullis-smtpd" ] || die "no $build_b/src/smtpd/portcullis-smtpd"
[ -z "$build_b" ] && [ -n "${SMTP_CPU_NICE_B:-}" ] && build_b=$build
if ! command -v smtp-source >/dev/null || ! command -v smtp-sink >/dev/null || ! command -v socat >/dev/null; then
	lab_deps || die "cannot install the lab's packages"
fi
rounds=${SMTP_CPU_ROUNDS:-5}
cases=${SMTP_CPU_CASES:-100/1 100/10 1000/1}
mode=${SMTP_CPU_MODE:-pinned}
msgs=${SMTP_CPU_MSGS:-3000}
ncpu=$(nproc)
[ "$mode" = pinned ] && [ "$ncpu" -lt 2 ] && die "pinned needs 2 cores"
hard=$(ulimit -Hn)
nofile=65536
[ "$hard" != unlimited ] && [ "$hard" -lt "$nofile" ] && nofile=$hard
ulimit -n "$nofile" || die "cannot raise ulimit -n to $nofile"

smtp_bench_up
BIN_A=$build/src/smtpd/portcullis-smtpd
BIN_B=${build_b:+$build_b/src/smtpd/portcullis-smtpd}
CUR=a # the binary running now

gen_cpus=0-$((ncpu - 1)) relay_cpus=0-$((ncpu - 1))
[ "$mode" = pinned ] && gen_cpus=0 relay_cpus=1-$((ncpu - 1))
taskset -a -p -c "$gen_cpus" "$SINK25" >/dev/null && taskset -a -p -c "$relay_cpus" "$FLOOR" >/dev/null &&
	taskset -a -p -c "$relay_cpus" "$SMTPD_PID" >/dev/null || die "taskset failed"

# use_proxy a|b: the proxy running is that build's.
use_proxy() {
	[ "$1" = "$CUR" ] && return 0
	smtpd_kill
	SMTPD_PID=$(daemon_start portcullis-smtpd "$LAB_DIR/smtpd.sock" "$([ "$1" = a ] && echo "$BIN_A" || echo "$BIN_B")") ||
		die "portcullis-smtpd ($1) did not start"
	taskset -a -p -c "$relay_cpus" "$SMTPD_PID" >/dev/null || die "taskset failed"
	[ "$1" = b ] && [ -n "${SMTP_CPU_NICE_B:-}" ] && { renice -n "$SMTP_CPU_NICE_B" -p "$SMTPD_PID" >/dev/null || die "renice failed"; }
	CUR=$1
	wait_for 5 bash -c "ip netns exec $LAB_HV ss -ltnH | grep -q ':10025 '" || die "portcullis-smtpd ($1) does not listen"
}

run_ns() { # PID: nanoseconds of CPU of every thread
	cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ t += $1 } END { printf "%.0f\n", t }'
}

HOG=
if [ "${SMTP_CPU_HOG:-0}" = 1 ]; then
	HOG=$(lab_bg hog hv taskset -c "${relay_cpus%%-*}" sh -c 'while :; do :; done')
fi

FAILED=0
declare -A cpu rate hog
# one_run PATH SESSIONS RCPTS ROUND: PATH floor, a or b.
one_run() {
	local path=$1 s=$2 r=$3 k=$4 to=$LAB_INET_V4 port=25 pid sink0 sink1 c0 c1 t0 t1 rc st=()
	case $path in
	floor) to=$FLOOR_ADDR port=2527 pid=$FLOOR ;;
	*) use_proxy "$path"; pid=$SMTPD_PID ;;
	esac
	if [ -n "${SMTP_CPU_STRACE:-}" ] && [ "$k" = 1 ]; then
		mkdir -p "$SMTP_CPU_STRACE"
		strace -c -f -o "$SMTP_CPU_STRACE/$path-$s-$r.txt" -p "$pid" 2>/dev/null &
		st=($!)
		sleep 0.5
	fi
	if [ -n "${SMTP_CPU_PERF:-}" ]; then
		mkdir -p "$SMTP_CPU_PERF"
		perf record -q -g -p "$pid" -o "$SMTP_CPU_PERF/$path-$s-$r-$k.data" >/dev/null 2>&1 &
		st+=($!)
		sleep 0.5
	fi
	sink0=$(sink_count sink25)
	c0=$(run_ns "$pid")
	local h0=0 h1=0
	[ -n "$HOG" ] && h0=$(run_ns "$HOG")
	t0=$(lab_now_ms)
	lab_exec vps101 taskset -c "$gen_cpus" smtp-source -s "$s" -m "$msgs" -l 10240 -r "$r" -f a@vps.example \
		-t b@example.net "$to:$port" >"$LAB_DIR/source.out" 2>&1
	rc=$?
	t1=$(lab_now_ms)
	c1=$(run_ns "$pid")
	[ -n "$HOG" ] && h1=$(run_ns "$HOG")
	for p in "${st[@]}"; do kill -INT "$p"; wait "$p" 2>/dev/null; done
	local deadline=$(($(lab_now_ms) + 5000))
	while :; do
		sink1=$(sink_count sink25)
		[ $((sink1 - sink0)) -ge "$msgs" ] || [ "$(lab_now_ms)" -ge "$deadline" ] && break
		sleep 0.05
	done
	local us=$(((c1 - c0) / msgs / 1000))
	# a traced run is slower: not counted
	if [ "${#st[@]}" = 0 ]; then
		cpu[$path/$s/$r/$k]=$us
		rate[$path/$s/$r/$k]=$((msgs * 1000 / (t1 - t0 > 0 ? t1 - t0 : 1)))
		[ -n "$HOG" ] && hog[$path/$s/$r/$k]=$(((h1 - h0) / 10000 / (t1 - t0 > 0 ? t1 - t0 : 1)))
	fi
	printf '  round %s %-5s sessions=%-4s rcpts=%-2s %6.2f s %5s us/msg%s\n' "$k" "$path" "$s" "$r" \
		"$(awk -v m=$((t1 - t0)) 'BEGIN { print m / 1000 }')" "$us" "$([ "${#st[@]}" = 0 ] || echo " (traced: not counted)")"
	[ "$rc" = 0 ] || { FAILED=1; echo "FAIL: $path: smtp-source exited $rc: $(tail -3 "$LAB_DIR/source.out" | tr '\n' ' ')"; }
	[ $((sink1 - sink0)) -ge "$msgs" ] || { FAILED=1; echo "FAIL: $path: the sink received $((sink1 - sink0)) of $msgs"; }
}

paths="floor a"
[ -n "$build_b" ] && paths="floor a b"
echo "smtp_cpu: $(uname -r), $ncpu cores, $mode, $rounds rounds, $msgs messages of 10240 bytes per run, one per session"
echo "  a: $BIN_A${BIN_B:+
  b: $BIN_B}"
for k in $(seq 1 "$rounds"); do
	# rotate the order: floor a b, a b floor, b floor a, ...
	set -- $paths
	for _ in $(seq 2 "$k"); do set -- "${@:2}" "$1"; done
	order="$*"
	for c in $cases; do
		for path in $order; do
			one_run "$path" "${c%/*}" "${c#*/}" "$k"
		done
	done
done
use_proxy a

# stats VALUES...: median min max
stats() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f %.2f %.2f\n", m, v[1], v[NR] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", (b > 0 ? a / b : 0) }'; }
echo
echo "CPU per message, us: median [min-max] over $rounds rounds; ratios per round, then their median [min-max]"
printf '%-10s %-16s %-16s %-16s %-20s %-20s %-20s\n' case floor a b a/floor b/floor b/a
for c in $cases; do
	s=${c%/*} r=${c#*/}
	row=("$c")
	for path in floor a b; do
		v=()
		for k in $(seq 1 "$rounds"); do [ -n "${cpu[$path/$s/$r/$k]:-}" ] && v+=("${cpu[$path/$s/$r/$k]}"); done
		if [ "${#v[@]}" = 0 ]; then row+=(-); continue; fi
		read -r m lo hi <<<"$(stats "${v[@]}")"
		row+=("$(printf '%.0f [%.0f-%.0f]' "$m" "$lo" "$hi")")
	done
	for pair in a/floor b/floor b/a; do
		x=${pair%/*} y=${pair#*/} v=()
		for k in $(seq 1 "$rounds"); do
			[ -n "${cpu[$x/$s/$r/$k]:-}" ] && [ -n "${cpu[$y/$s/$r/$k]:-}" ] &&
				v+=("$(ratio "${cpu[$x/$s/$r/$k]}" "${cpu[$y/$s/$r/$k]}")")
		done
		if [ "${#v[@]}" = 0 ]; then row+=(-); continue; fi
		read -r m lo hi <<<"$(stats "${v[@]}")"
		row+=("$m [$lo-$hi]")
	done
	printf '%-10s %-16s %-16s %-16s %-20s %-20s %-20s\n' "${row[@]}"
done
if [ -n "${SMTP_CPU_NICE_B:-}" ] || [ -n "$HOG" ]; then
	echo
	echo "messages/s${HOG:+, and the share of its core the busy loop had (%)}: median [min-max] over $rounds rounds${SMTP_CPU_NICE_B:+ (b at nice $SMTP_CPU_NICE_B)}"
	printf '%-10s %-18s %-18s %-18s %-16s %-16s %-16s\n' case floor a b "loop, floor" "loop, a" "loop, b"
	for c in $cases; do
		s=${c%/*} r=${c#*/}
		row=("$c")
		for table in rate hog; do
			[ "$table" = hog ] && [ -z "$HOG" ] && { row+=(- - -); continue; }
			for path in floor a b; do
				v=()
				for k in $(seq 1 "$rounds"); do
					eval "x=\${$table[\$path/\$s/\$r/\$k]:-}"
					[ -n "$x" ] && v+=("$x")
				done
				if [ "${#v[@]}" = 0 ]; then row+=(-); continue; fi
				read -r m lo hi <<<"$(stats "${v[@]}")"
				row+=("$(printf '%.0f [%.0f-%.0f]' "$m" "$lo" "$hi")")
			done
		done
		printf '%-10s %-18s %-18s %-18s %-16s %-16s %-16s\n' "${row[@]}"
	done
fi
errors=$(grep -c 'event=error' "$LAB_DIR/log/portcullis-smtpd.log")
[ "$errors" = 0 ] || { FAILED=1; echo "FAIL: the proxy logged $errors errors"; }
[ "$FAILED" = 0 ] || { echo "smtp_cpu: FAILED"; exit 1; }
echo "smtp_cpu: ok"
