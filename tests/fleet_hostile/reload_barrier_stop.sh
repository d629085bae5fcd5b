#!/bin/bash
# Hostile timing of a reload's take at the database thread's barrier
# (agent_db_barrier): the reload is held by gdb after its load, the server
# frozen, three `sync` statements queued, the load let go, so that the
# take waits at the barrier behind statements that hang.  Meanwhile:
#  1. a second SIGHUP and a `reload` on the control socket: once the
#     server goes on, both reloads are taken, the caller is answered
#     `reloaded`, and the kernel is in sync;
#  2. again, then SIGTERM while the take waits: the agent ends (within
#     20 s of the server going on), its `reload` caller is answered, and (BUILD=build-asan) no sanitizer report.
# Exits 1 if any of it fails, 2 if the set-up did.
. "$(dirname "$0")/lib.sh"
fh_one_vps 10
sleep 2
log=$LAB_DIR/log/portcullisd-hv1.log
ctl() { timeout "${2:-20}" ip netns exec "$(ns hv1)" socat -t "${2:-20}" - "UNIX-CONNECT:$LAB_DIR/hv1.sock" <<<"$1"; }

# hold_at_barrier N: the reload held after its load, the server frozen,
# three syncs queued, the load let go; then waits for the take to be at
# the barrier (the thread's queue still holds the syncs).
hold_at_barrier() {
        fh_hold_reload "$1"
        fh_pg_freeze
        for _ in 1 2 3; do ctl "sync vps-s" >/dev/null 2>&1 & done
        sleep 0.5
        fh_release_reload
        sleep 0.5
}

echo "# 1. a second reload while the first waits at the barrier"
n0=$(grep -c "Reloaded" "$log")
hold_at_barrier 1
kill -HUP "${AGENT[1]}"
ctl reload 30 >"$LAB_DIR/reload1.out" 2>&1 &
caller=$!
sleep 0.5
t0=$(lab_now_ms)
st=$(ctl status 3)
echo "status while the take waits at the barrier: $(($(lab_now_ms) - t0)) ms, queued $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["database_thread"]["queued"])' "$st" 2>/dev/null)"
fh_pg_thaw
wait "$caller"
echo "the control socket's reload: $(cat "$LAB_DIR/reload1.out")"
fail=0
wait_for 20 sh -c "[ \$(grep -c Reloaded $log) -ge $((n0 + 2)) ]" || { echo "FAIL: not two reloads taken: $(grep -c Reloaded "$log") - $n0"; fail=1; }
grep -q '"reloaded":true' "$LAB_DIR/reload1.out" || { echo "FAIL: the caller was not answered reloaded"; fail=1; }
wait_for 10 sh -c "ip netns exec $(ns hv1) $PC_BIN -c $LAB_DIR/hv1.yaml --json status | grep -q '\"in_sync\": *true'" ||
        { echo "FAIL: not in sync after both reloads"; fail=1; }
wait_for 5 sh -c "ip netns exec $(ns hv1) nft list map inet portcullis antispoof | grep -q vs" ||
        { echo "FAIL: vs left the kernel"; fail=1; }

echo "# 2. SIGTERM while the take waits at the barrier"
hold_at_barrier 2
ctl reload 40 >"$LAB_DIR/reload2.out" 2>&1 &
caller=$!
sleep 0.3
kill -TERM "${AGENT[1]}"
sleep 1
fh_pg_thaw
t0=$(lab_now_ms)
ended=
for _ in $(seq 1 200); do kill -0 "${AGENT[1]}" 2>/dev/null || { ended=1; break; }; sleep 0.1; done
if [ -z "$ended" ]; then
        echo "FAIL: the agent did not end within 20 s of the server going on"
        gdb -q -nx -batch -p "${AGENT[1]}" -ex "thread apply all bt 8" 2>/dev/null | grep -E "^#|^Thread" | head -40
        kill -9 "${AGENT[1]}"
        fail=1
fi
echo "the agent ended $(($(lab_now_ms) - t0)) ms after the server went on"
wait "$caller"
echo "the control socket's reload: $(cat "$LAB_DIR/reload2.out")"
grep -q "Stopping on signal 15" "$log" || { echo "FAIL: no orderly stop"; fail=1; }
grep -q '"error"\|"reloaded"' "$LAB_DIR/reload2.out" || { echo "FAIL: the caller was not answered"; fail=1; }
if grep -q "Sanitizer\|runtime error" "$log"; then
        echo "FAIL: sanitizer reports:"; grep -A12 "Sanitizer\|runtime error" "$log" | head -40; fail=1
fi
tail -4 "$log"
[ "$fail" = 0 ] && echo "HELD: reloads at the barrier taken, a stop there ends cleanly"
exit "$fail"
