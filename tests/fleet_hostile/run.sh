#!/bin/bash
# The fleet's hostile checks (issue 14): each script builds its own
# hypervisor namespaces and throwaway PostgreSQL (lib.sh), attacks, and
# exits 1 while its hole is open, 0 once it is closed (2: its set-up
# failed, which counts as open).  Usage: run.sh [BUILD_DIR] [NAME...]
set -u
here=$(cd "$(dirname "$0")" && pwd)
export BUILD=$(readlink -f "${1:-$here/../../build}")
shift || true
names=("$@")
[ ${#names[@]} = 0 ] && names=(writer_lock_stall iface_reuse move_back_iface departing_stale departing_reload
                               journal_cap notify_flood journal_replay_twice journal_restart_gap api_authz
                               reboot_during_outage db_hang db_hang_idle departing_restart agent_token_cross_host
                               agent_token_pull departing_expiry db_hang_loop
                               move_unconfirmed depart_retry depart_restart_gone depart_admin replay_hang journal_reload
                               departing_loosened_reload reload_db_hang restart_changed
                               reload_during_change reload_take_db_hang db_back_departing_hang reload_barrier_stop
                               departing_restart_db_fail)
open=0
for n in "${names[@]}"; do
        echo "== $n"
        if timeout 180 bash "$here/$n.sh"; then
                echo "closed $n"
        else
                echo "OPEN   $n"
                open=$((open + 1))
        fi
done
echo "$open of ${#names[@]} holes open"
[ $open = 0 ]
