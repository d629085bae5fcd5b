#!/bin/bash
# Hostile review (terminate): only an admin's --admin-override lifts a
# termination -- `unsuspend`, `action lift` and `incident close
# --lift-actions` refuse it.  But `vps remove` deletes the VPS row, and
# every action, incident and exception of it goes with it (ON DELETE
# CASCADE, no check of a suspension or a termination), and `vps add` of the
# same id, interface and addresses then registers a clean VPS: support (or
# a script that "re-provisions" a customer's VPS) lifts the termination
# with no override, audited only as vps.remove and vps.add.  The agent
# takes the interface out of @suspended, and the customer's history is
# gone too: the next spoofing is "the first time" again (suspension, not
# termination).
# Goal under test: a terminated VPS stays terminated (in the store and in
# the kernel) until an admin's override lifts it; `vps remove` of a
# terminated VPS is refused without --admin-override, or the termination
# survives a remove and re-add.
# Seen on main (LAB_PREFIX=pchr): remove and re-add succeed, vps show says
# "active", the VPS reaches the web again, `action list` has no
# termination; the audit log has vps.remove and vps.add, no
# vps.unterminate.
# Closed: `vps remove` of a terminated VPS is refused without
# --admin-override (store: vps_remove_tx).
# Usage: terminate_remove_readd.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_PREFIX=${LAB_PREFIX:-pchr} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
lab_deps || exit 1
lab_up --trap || { echo "FAIL lab_up"; exit 1; }
pc_setup "$1" "$2"
state() { pc --json vps show vps-101 | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }
# shellcheck disable=SC2046
pc vps add vps-101 --site lenoir --owner ada@example.net $(pc_vps_link VPS101) --by lab >/dev/null 2>&1
check "agent starts" agent_start
check "terminate vps-101 (by hand, the abuse team)" pc terminate vps-101 --by abuse-team --reason "spoofed again after a lifted suspension"
check "vps-101 is suspended in the kernel" wait_for 5 suspended "$VPS101_IF"
check "(control) unsuspend without the override is refused" \
        bash -c "! '$PC_BIN' -c '$PC_CFG' unsuspend vps-101 --by support --reason 'customer asked'"
echo "# support re-provisions the VPS: vps remove, vps add"
if pc vps remove vps-101 --by support >"$LAB_DIR/log/remove.log" 2>&1; then
        echo "     vps remove: $(cat "$LAB_DIR/log/remove.log")"
        # shellcheck disable=SC2046
        pc vps add vps-101 --site lenoir --owner ada@example.net $(pc_vps_link VPS101) --by support \
                >"$LAB_DIR/log/readd.log" 2>&1
        echo "     vps add: $(cat "$LAB_DIR/log/readd.log")"
        sleep 3 # the agent reconciles
        echo "     vps show: state $(state); action list: $(pc action list vps-101 2>&1 | grep -c termination) termination(s)"
        echo "     audit: $(pc audit vps-101 2>/dev/null | awk '{print $4}' | grep -E '^vps\.' | sort | uniq -c | tr '\n' ' ')"
        check "after remove and re-add vps-101 is still terminated (vps show)" test "$(state)" = terminated
        check "... still suspended in the kernel" suspended "$VPS101_IF"
        check_not "... and cannot reach the web" lab_exec vps101 curl -sf --max-time 2 "http://$LAB_INET_V4/"
else
        ok "vps remove of a terminated VPS is refused: $(cat "$LAB_DIR/log/remove.log")"
        check "... and it is still suspended in the kernel" suspended "$VPS101_IF"
fi
lab_summary
