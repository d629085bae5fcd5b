#!/bin/bash
# Hole: a VPS that moved away and is still running on the old host (a live
# migration copies the VM first) is enforced there only from the agent's
# memory: the database says host=new, moving_from cleared by the arrival.
# Any reload of the old host's agent (SIGHUP, `portcullis reload`: a
# routine config change) -- not only a restart, which FLEET.md lists as a
# limit -- reprograms the kernel from the database and drops it: the VM,
# still running on the old host, is unenforced for the rest of the
# migration.  Exits 1 while the hole is open.
. "$(dirname "$0")/lib.sh"
fh_migrated_vps
sleep 1.5
blocked m 8080 || { echo "HOLE (before the reload): vps-m reaches 8080 while its VM is on hv1"; exit 1; }
# The VM is still being copied; the operator reloads hv1's agent.
pc_on 1 reload >/dev/null 2>&1 || kill -HUP "${AGENT[1]}"
sleep 1.5
if blocked m 8080; then echo "HELD: vps-m is still filtered on hv1 after the reload"; exit 0; fi
echo "HOLE: after a reload of hv1's agent, vps-m (its VM still on hv1) reaches tcp/8080 through its filter"
exit 1
