#!/bin/bash
# Golden tests of the configuration loader, in the style of pfctl's regress:
#   ok/NAME.yaml    loads, and `portcullis -c ok/NAME.yaml config` prints
#                   exactly ok/NAME.ok, and `... ruleset` (the nftables
#                   tables the agent loads) exactly ok/NAME.nft;
#   fail/NAME.yaml  is refused: `check` exits 1 and the first line of its
#                   stderr is exactly fail/NAME.err.
# Usage: run.sh PORTCULLIS_BINARY SOURCE_ROOT
# UPDATE_GOLDEN=1 rewrites the .ok/.err files from the current output.
set -u

if [ $# -ne 2 ]; then
        echo "usage: $0 PORTCULLIS_BINARY SOURCE_ROOT" >&2
        exit 2
fi
bin=$(realpath "$1") || exit 2
root=$(realpath "$2") || exit 2
cd "$root" || exit 2   # relative paths keep the messages stable

tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
failed=0
count=0

# golden_ok COMMAND EXT: for every ok/NAME.yaml, `portcullis -c NAME.yaml
# COMMAND` exits 0 and prints exactly ok/NAME.EXT.
golden_ok() {
        local cmd=$1 ext=$2 case name want rc
        for case in tests/golden/ok/*.yaml; do
                name=ok/$(basename "$case" .yaml)
                [ "$ext" = ok ] || name=$name.$ext
                want=${case%.yaml}.$ext
                count=$((count + 1))
                "$bin" -c "$case" "$cmd" >"$tmp/out" 2>"$tmp/err"
                rc=$?
                if [ "${UPDATE_GOLDEN:-0}" = 1 ] && [ $rc -eq 0 ]; then
                        cp "$tmp/out" "$want"
                fi
                if [ $rc -ne 0 ]; then
                        echo "FAIL $name (exit $rc: $(head -n 1 "$tmp/err"))"
                        failed=$((failed + 1))
                elif ! diff -u "$want" "$tmp/out"; then
                        echo "FAIL $name"
                        failed=$((failed + 1))
                else
                        echo "ok $name"
                fi
        done
}

golden_ok config ok
# The whole ruleset: a change of dispatch, verdicts or anti-spoofing shows
# here as a diff, without a kernel.
golden_ok ruleset nft

for case in tests/golden/fail/*.yaml; do
        name=fail/$(basename "$case" .yaml)
        want=${case%.yaml}.err
        count=$((count + 1))
        "$bin" -c "$case" check >"$tmp/out" 2>"$tmp/err"
        rc=$?
        head -n 1 "$tmp/err" >"$tmp/first"
        if [ "${UPDATE_GOLDEN:-0}" = 1 ] && [ $rc -eq 1 ]; then
                cp "$tmp/first" "$want"
        fi
        if [ $rc -ne 1 ]; then
                echo "FAIL $name (exit $rc, expected 1)"
                failed=$((failed + 1))
        elif ! diff -u "$want" "$tmp/first"; then
                echo "FAIL $name"
                failed=$((failed + 1))
        else
                echo "ok $name"
        fi
done

echo "$((count - failed))/$count golden cases passed"
[ $failed -eq 0 ]
