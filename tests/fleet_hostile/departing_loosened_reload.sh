#!/bin/bash
# Hole: a VPS that moved away, its VM still on the old host, whose filter
# support lifts meanwhile, is kept on the old host as it was (a loosening
# waits for the VM to go, agent_token_pull.sh).  What the old host keeps is
# a copy of the VPS from its running model, which points into the
# configuration in force: a reload replaces that configuration and freed
# it under the copy (seen under ASan as a use after free as soon as the
# snapshot is written; in a plain build the kept VPS's site and services
# are whatever the allocator put there since).  Exits 1 while the hole is
# open: the agent died, or the VM got out after the reload.
. "$(dirname "$0")/lib.sh"
fh_migrated_vps
sleep 1.5
blocked m 8080 || { echo "SETUP the filter does not hold on hv1 before the lift"; exit 2; }
fid=$(pc_on 2 --json vps show vps-m | python3 -c 'import json,sys; print(json.load(sys.stdin)["filters"][0]["id"])') ||
        { echo "SETUP no filter id"; exit 2; }
pc_on 2 filter lift vps-m "$fid" --by sam --reason "resolved" >/dev/null || { echo "SETUP lift"; exit 2; }
sleep 2 # feed + periodic passes
blocked m 8080 || { echo "SETUP hv1 let the lift through while the VM is there (agent_token_pull.sh's hole)"; exit 2; }
# The VM is still being copied; the operator reloads hv1's agent, twice
# (the second replaces the configuration the first put in force).
for i in 1 2; do
        kill -HUP "${AGENT[1]}"
        wait_for 10 sh -c "grep -c Reloaded $LAB_DIR/log/portcullisd-hv1.log | grep -qx $i" || break
done
sleep 2.5 # the snapshot's next write (every 2 s at most)
kill -0 "${AGENT[1]}" 2>/dev/null || { echo "HOLE: hv1's agent died after the reload"; tail -5 "$LAB_DIR/log/portcullisd-hv1.log"; exit 1; }
grep -c Reloaded "$LAB_DIR/log/portcullisd-hv1.log" | grep -qx 2 ||
        { echo "HOLE: hv1's agent did not reload twice"; tail -5 "$LAB_DIR/log/portcullisd-hv1.log"; exit 1; }
if blocked m 8080; then echo "HELD: vps-m stays filtered on hv1 through two reloads"; exit 0; fi
echo "HOLE: after the reloads, vps-m (its VM still on hv1) reaches tcp/8080"
exit 1
