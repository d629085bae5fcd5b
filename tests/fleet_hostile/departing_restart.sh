#!/bin/bash
# Hole: a VPS that moved away and whose VM is still on the old host (a live
# migration copies the VM first) is kept there from the agent's memory and
# its snapshot: the database says host=new, moving_from cleared by the
# arrival.  A restart of the old host's agent (an upgrade, a crash) loaded
# only what the database gives that host and let the VM out for the rest of
# the migration.  Exits 1 while the hole is open.
. "$(dirname "$0")/lib.sh"
fh_migrated_vps
sleep 2.5 # the snapshot is written at most every 2 s
blocked m 8080 || { echo "HOLE (before the restart): vps-m reaches 8080 while its VM is on hv1"; exit 1; }
# The VM is still being copied; hv1's agent restarts (SIGTERM, then again).
kill "${AGENT[1]}"; wait_for 5 sh -c "! kill -0 ${AGENT[1]}"
agent_up 1 || { echo "SETUP the agent does not start again"; exit 2; }
sleep 1.5
if ! blocked m 8080; then
        echo "HOLE: after a restart of hv1's agent, vps-m (its VM still on hv1) reaches tcp/8080 through its filter"
        exit 1
fi
echo "held: vps-m is still filtered on hv1 after the restart"
# The copy ends: the VM's interface on hv1 goes, and hv1 lets vps-m go.
ip -n "$(ns hv1)" link del vm1
if wait_for 8 sh -c "! ip netns exec $(ns hv1) nft list map inet portcullis vps_out | grep -q '\"vm1\"'"; then
        echo "HELD: kept across the restart, and let go once its interface was gone"
        exit 0
fi
echo "HOLE: hv1 keeps vps-m's elements after its interface is gone"
exit 1
