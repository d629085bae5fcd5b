#!/bin/bash
# Hole: once the new host records the arrival, the old host keeps a
# moved VPS (its VM still running there: a live migration copies it first)
# frozen as it was: agent_sync_vps_from's "departing" branch drops every
# later change.  A filter support places, a suspension the response engine
# decides (the detectors of the old host see the VM's traffic), an
# exception revoked: none reaches the kernel that carries the VM's traffic
# until the switch-over.  Exits 1 while the hole is open.
. "$(dirname "$0")/lib.sh"
fh_init 2
vps_link m 1 vm1 14
pc_on 1 init >/dev/null 2>&1 || { echo "SETUP init"; exit 2; }
pc_on 1 vps add vps-m --owner max@example.org --iface vm1 --addr 198.51.100.14 --host hv1 --by lab >/dev/null || exit 2
agent_up 1 && agent_up 2 || { echo "SETUP agents"; exit 2; }
wait_for 5 connects m 8080 || { echo "SETUP vps-m does not reach 8080"; exit 2; }
pc_on 2 vps move vps-m --host hv2 --iface vm2 --by orchestrator --reason "live migration" >/dev/null || exit 2
wait_for 5 sh -c "ip netns exec $(ns hv1) $PC_BIN -c $LAB_DIR/hv1.yaml --json audit vps-m | grep -q vps.arrive" || { echo "SETUP no arrival"; exit 2; }
sleep 1
# While the VM is still on hv1 (being copied), support filters it.
pc_on 2 filter place vps-m --ports tcp/8080 --by sam --reason "abuse report: now" >/dev/null || { echo "SETUP filter"; exit 2; }
sleep 2 # feed + periodic passes
in2=$(ip netns exec "$(ns hv2)" nft list ruleset 2>/dev/null | grep -c vm2)
if blocked m 8080; then echo "HELD: the filter holds on hv1 where the VM still runs"; exit 0; fi
echo "HOLE: the filter placed during the migration is not enforced on hv1, where vps-m still runs (hv2 has vm2: $in2 lines)"
exit 1
