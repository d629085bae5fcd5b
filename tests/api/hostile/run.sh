#!/bin/bash
# Hostile-client checks of portcullis-apid: each script starts its own apid
# on a free loopback port with a temporary database (harness.py), attacks
# it as a customer or an unauthenticated client, and exits 1 while the hole
# it shows is open, 0 once it is closed.  Usage: run.sh [BUILD_DIR] [NAME...]
set -u
here=$(cd "$(dirname "$0")" && pwd)
export BUILD=$(readlink -f "${1:-$here/../../../build}")
shift || true
names=("$@")
[ ${#names[@]} = 0 ] && names=(slowloris ticket_flood ticket_list_cost rate_forget prefix_oracle
                               duration_overflow log_method smuggle_cl_te
                               notification_reused_id investigation_note slowloris_spread
                               source_prefix_shared hook_guest_name log_flood_malformed
                               slowloris_body page_before_cost move_host_text agent_host_oracle agent_host_oracle_iface
                               ticket_ports_canonical)
open=0
for n in "${names[@]}"; do
        echo "== $n"
        if timeout 180 python3 "$here/$n.py"; then
                echo "closed $n"
        else
                echo "OPEN   $n"
                open=$((open + 1))
        fi
done
echo "$open of ${#names[@]} holes open"
[ $open = 0 ]
