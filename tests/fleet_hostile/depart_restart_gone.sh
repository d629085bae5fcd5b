#!/bin/bash
# Hole: a VM that leaves the old host while its agent is down (a restart,
# an upgrade; with or without the snapshot) is never confirmed: at the
# start the agent no longer holds the VPS (its interface is gone, nothing
# to keep), so nothing lets it go and nothing records vps.depart.  The move
# shows unconfirmed for good.  Exits 1 while the mark is not cleared within
# 8 s of the agent's start.
. "$(dirname "$0")/lib.sh"
fh_migrated_vps
member() { # MEMBER: vps-m's MEMBER in `vps show --json`, "" if none
        pc_on 2 --json vps show vps-m 2>/dev/null |
                python3 -c "import json,sys; print(json.load(sys.stdin).get('$1') or '')" 2>/dev/null
}
[ "$(member departing_from)" = hv1 ] || { echo "SETUP the migration does not show unconfirmed"; exit 2; }
sleep 2.5 # the snapshot is written at most every 2 s: it holds vps-m
kill "${AGENT[1]}"; wait_for 5 sh -c "! kill -0 ${AGENT[1]}"
ip -n "$(ns hv1)" link del vm1
echo "hv1's agent is down while the VM's interface leaves hv1"
agent_up 1 || { echo "SETUP the agent does not start again"; exit 2; }
confirmed() { [ -z "$(member departing_from)" ]; }
if wait_for 8 confirmed; then
        echo "HELD: hv1's agent, started after the VM left, recorded vps-m's departure"
        exit 0
fi
echo "HOLE: started after the VM left, hv1 never confirms vps-m's move ($(member departing_from))"
exit 1
