#!/bin/bash
# Runs every test: the meson suites (unit, golden, CLI) in the plain build and
# again under ASan+UBSan, a bounded fuzzing run of every harness, and a smoke
# run of every benchmark.  Ends with one line "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
pass=0
fail=0
failed=()
why_log=$(mktemp)
trap 'rm -f "$why_log"' EXIT

record() { # NAME STATUS
        if [ "$2" = 0 ]; then pass=$((pass + 1)); echo "ok   $1"
        else fail=$((fail + 1)); failed+=("$1"); echo "FAIL $1"; fi
}

# A skipped test is a failure: only OK counts as passed.
meson_suite() { # BUILD_DIR LABEL
        local dir=$1 label=$2 log=$1/meson-logs/testlog.json
        rm -f "$log"
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
                meson test -C "$dir" --print-errorlogs --num-processes 2 >"$dir/meson-logs/run-all.out" 2>&1
        if [ ! -s "$log" ]; then
                record "$label: meson test did not run" 1
                tail -20 "$dir/meson-logs/run-all.out"
                return
        fi
        while IFS=$'\t' read -r name result; do
                record "$label: $name" "$([ "$result" = OK ] && echo 0 || echo 1)"
        done < <(python3 -c 'import json,sys
for line in open(sys.argv[1]):
    t = json.loads(line)
    print(t["name"] + "\t" + t["result"])' "$log")
        # why each failed, kept for the end (CI shows the output's tail)
        python3 -c 'import json,sys
for line in open(sys.argv[1]):
    t = json.loads(line)
    if t["result"] == "OK":
        continue
    out = (t.get("stdout") or "").splitlines()
    why = [l for l in out if l.startswith(("FAIL", "not ok", "[  FAILED", "ERROR", "==")) or "runtime error" in l]
    print("why %s: %s (%s):" % (sys.argv[2], t["name"], t["result"]))
    for l in (why or out)[-12:]:
        print("    " + l[:200])' "$log" "$label" >>"$why_log"
        grep -q '^Ok:' "$dir/meson-logs/run-all.out" || true
        if grep -qE '^(Fail|Timeout|Unexpected Pass|Skipped): *[1-9]' "$dir/meson-logs/run-all.out"; then
                sed -n '/^===* [0-9]* \/ [0-9]* =*/,/^=====*$/p' "$dir/meson-logs/run-all.out" | tail -60
        fi
}

# phase NAME: ends the phase before (its wall time goes to the summary)
phases=
phase_t0=$SECONDS
phase() { phases+="${phases:+, }$1 $((SECONDS - phase_t0)) s"; phase_t0=$SECONDS; }

meson_suite build plain
phase plain
meson_suite build-asan asan
phase asan

# Fuzzing: each harness for a bounded time from its seed corpus, two at a
# time (one per core).
fuzz_one() { # HARNESS: runs it, leaves its status in build-fuzz/NAME.status
        local name corpus
        name=$(basename "$1")
        corpus=tests/fuzz/corpus/${name#fuzz_}
        tests/fuzz/run.sh "$1" "$corpus" "${FUZZ_SECONDS:-10}" >"build-fuzz/$name.log" 2>&1
        echo $? >"build-fuzz/$name.status"
}
harnesses=()
for fz in build-fuzz/tests/fuzz/fuzz_*; do
        [ -f "$fz" ] && [ -x "$fz" ] && harnesses+=("$fz")
done
for ((i = 0; i < ${#harnesses[@]}; i += 2)); do
        fuzz_one "${harnesses[i]}" &
        [ $((i + 1)) -lt ${#harnesses[@]} ] && fuzz_one "${harnesses[i + 1]}" &
        wait
done
for fz in "${harnesses[@]+"${harnesses[@]}"}"; do
        name=$(basename "$fz")
        st=$(cat "build-fuzz/$name.status" 2>/dev/null || echo 1)
        record "fuzz: $name (${FUZZ_SECONDS:-10}s)" "$st"
        [ "$st" = 0 ] || tail -30 "build-fuzz/$name.log"
done
ls build-fuzz/tests/fuzz/fuzz_* >/dev/null 2>&1 || record "fuzz: no harness was built" 1
phase fuzz

# Benchmarks: a short smoke run each (the real runs are `make bench`).
bench/run.sh build --smoke >build/bench-smoke.log 2>&1
st=$?
record "bench: smoke run" $st
[ $st = 0 ] || tail -30 build/bench-smoke.log
phase bench

cat "$why_log"
for f in "${failed[@]+"${failed[@]}"}"; do echo "failed: $f"; done
echo "wall time: $phases; $SECONDS s in all"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
