#!/bin/bash
# Runs the benchmarks.  Usage: bench/run.sh BUILD_DIR [--smoke]
# --smoke: tiny sizes, a fraction of a second each, the SMTP proxy's a few
# seconds (make test runs this);
# without it, the sizes the issues set goals for (see docs/BENCHMARKS.md).
set -eu
build=${1:-build}
cd "$(dirname "$0")/.."
if [ "${2:-}" = --smoke ]; then
        "$build/bench/bench_evaluate" --vps 2000 --exceptions 200 --flows 20000 --seconds 0.1
        "$build/bench/bench_load" --vps 2000 --exceptions 200 --runs 1
        "$build/bench/bench_vps_add" --vps 2000 --runs 3
        "$build/bench/bench_nft" --vps 200 --changes 50
        bench/restart.sh "$build" 500 1
        "$build/bench/bench_conntrack" --entries 2000 --vps 20 --calls 3
        "$build/bench/bench_attempts" --vps 2000 --elements 20000 --linear-elements 2000
        "$build/bench/bench_scan" --vps 2000 --events 50000
        bench/smtp.sh "$build" --smoke
        bench/api.sh "$build" --smoke
        bench/fleet.sh "$build" --smoke
else
        "$build/bench/bench_evaluate" --vps 100000 --exceptions 10000 --seconds 2
        "$build/bench/bench_load" --vps 100000 --exceptions 10000 --runs 3
        "$build/bench/bench_vps_add" --vps 100000 --runs 20
        for n in 100 10000 100000; do "$build/bench/bench_nft" --vps $n --changes 200; done
        "$build/bench/bench_nft" --site lenoir --vps 100000 --changes 10
        bench/restart.sh "$build" 100001 3
        for n in 10000 200000; do "$build/bench/bench_conntrack" --entries $n --vps 100 --calls 20; done
        "$build/bench/bench_attempts" --vps 100000 --elements 1000000 --linear-elements 20000
        "$build/bench/bench_scan" --vps 10000 --events 4000000
        bench/smtp.sh "$build"
        bench/api.sh "$build"
        bench/fleet.sh "$build"
fi
