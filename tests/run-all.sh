#!/bin/bash
# Runs every test: the meson suites (unit, golden, CLI) in the plain build and
# again under ASan+UBSan, a bounded fuzzing run of every harness, and a smoke
# run of every benchmark.  Ends with one line "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
pass=0
fail=0
failed=()

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
        grep -q '^Ok:' "$dir/meson-logs/run-all.out" || true
        if grep -qE '^(Fail|Timeout|Unexpected Pass|Skipped): *[1-9]' "$dir/meson-logs/run-all.out"; then
                sed -n '/^===* [0-9]* \/ [0-9]* =*/,/^=====*$/p' "$dir/meson-logs/run-all.out" | tail -60
        fi
}

meson_suite build plain
meson_suite build-asan asan

# Fuzzing: each harness for a bounded time from its seed corpus.
for fz in build-fuzz/tests/fuzz/fuzz_*; do
        [ -f "$fz" ] && [ -x "$fz" ] || continue
        name=$(basename "$fz")
        corpus=tests/fuzz/corpus/${name#fuzz_}
        tests/fuzz/run.sh "$fz" "$corpus" "${FUZZ_SECONDS:-30}" >"build-fuzz/$name.log" 2>&1
        st=$?
        record "fuzz: $name (${FUZZ_SECONDS:-30}s)" $st
        [ $st = 0 ] || tail -30 "build-fuzz/$name.log"
done
ls build-fuzz/tests/fuzz/fuzz_* >/dev/null 2>&1 || record "fuzz: no harness was built" 1

# Benchmarks: a short smoke run each (the real runs are `make bench`).
bench/run.sh build --smoke >build/bench-smoke.log 2>&1
st=$?
record "bench: smoke run" $st
[ $st = 0 ] || tail -30 build/bench-smoke.log

for f in "${failed[@]+"${failed[@]}"}"; do echo "failed: $f"; done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
