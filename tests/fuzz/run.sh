#!/bin/bash
# Runs a libFuzzer harness over a seed corpus for a while.
# Usage: run.sh FUZZER_BINARY CORPUS_DIR SECONDS
# New inputs go to a scratch folder, so the checked-in corpus stays small;
# a crash leaves crash-* in the current directory and exits non-zero.
set -u
if [ $# -ne 3 ]; then
        echo "usage: $0 FUZZER_BINARY CORPUS_DIR SECONDS" >&2
        exit 2
fi
work=$(mktemp -d) || exit 2
trap 'rm -rf "$work"' EXIT
"$1" -max_total_time="$3" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "$work" "$2"
