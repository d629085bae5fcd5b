#!/bin/bash
# Lab scenario: overlapping port filters cut into pieces, after one of them
# ended.  Three filters on vps-101: tcp/7000-7012 for 4 s, tcp/7000-7009 and
# tcp/7010-7015 until one time an hour away.  While all three hold, the
# pieces are joined into one element, 7000-7015 for the hour; once the
# short one ended, the two left do not overlap, and the model's elements
# are 7000-7009 and 7010-7015 -- not what the kernel holds.  A change of
# the VPS then (the filter over 7000-7009 lifted) must reach the kernel,
# and a reconcile must find nothing to repair.
# Usage: filter_pieces.sh BUILD_DIR SOURCE_ROOT (prefix pcfp, or LAB_PREFIX).
set -u
here=$(dirname "$(readlink -f "$0")")
export LAB_TOPOLOGY=${LAB_TOPOLOGY:-routed}
export LAB_PREFIX=${LAB_PREFIX:-pcfp} LAB_QUIET=1
. "$here/lab.sh"
. "$here/common.sh"

lab_deps || exit 1
lab_up --trap || { echo "FAIL lab_up"; exit 1; }
pc_setup "$1" "$2"
FAM=inet
# shellcheck disable=SC2046 # word splitting of the link options is meant
pc vps add vps-101 --site lenoir --owner ada@example.net $(pc_vps_link VPS101) --by lab >/dev/null 2>&1
check "agent starts and programs the kernel" agent_start

port_elem() { filter_port_elem $FAM "$VPS101_IF" "$1"; } # "lo-hi expires"
filter_id() { # the active filter action of vps-101 over $1
        pc --json action list vps-101 --active | python3 -c '
import json, sys
for a in json.load(sys.stdin)["actions"]:
    if sys.argv[1] in json.dumps(a):
        print(a["id"]); break' "$1"
}

end=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
pc filter place vps-101 --ports tcp/7000-7012 --by abuse --reason "lab: short" --until +4s >/dev/null 2>&1
placed=$(lab_now_ms)
pc filter place vps-101 --ports tcp/7000-7009 --by abuse --reason "lab: low" --until "$end" >/dev/null 2>&1
pc filter place vps-101 --ports tcp/7010-7015 --by abuse --reason "lab: high" --until "$end" >/dev/null 2>&1
echo "     the kernel over 7005: $(port_elem 7005); over 7014: $(port_elem 7014)"
check "three filters: 7000-7015 filtered for the hour" test "$(port_elem 7005 | cut -d' ' -f1)" != ""
sleep "$(python3 -c "print(max(0, 5 - ($(lab_now_ms) - $placed) / 1000))")"
echo "     after the short one ended: over 7005: $(port_elem 7005); over 7014: $(port_elem 7014)"
check "status: in sync once the short filter ended" pc status
out=$(echo reconcile | ip netns exec "$LAB_HV" socat -t5 - "UNIX-CONNECT:$LAB_DIR/control.sock")
echo "     reconcile: $out"
check "a reconcile after the short filter ended finds nothing to repair" \
        python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(r.get("missing",1)+r.get("extra",1))' "$out"

low=$(filter_id 7000-7009)
before_fail=$(agent_log | grep -c "Failed\|did not take")
pc action lift "$low" --by abuse --reason "lab: lifted" >/dev/null 2>&1
sleep 0.5
echo "     after lifting 7000-7009: over 7005: '$(port_elem 7005)'; over 7014: '$(port_elem 7014)'"
check "the lift of 7000-7009 reached the kernel: nothing over 7005" test -z "$(port_elem 7005)"
check "... and 7010-7015 is still filtered" test -n "$(port_elem 7014)"
check "... and the agent logged no failure" test "$(agent_log | grep -c "Failed\|did not take")" = "$before_fail"
agent_log | grep -i "fail\|did not take" | tail -5 | sed 's/^/     log: /'
lab_summary
