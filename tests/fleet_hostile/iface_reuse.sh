#!/bin/bash
# Hole: a VPS that moved away is kept on its old host for as long as an
# interface of its old name exists there (agent_departures looks at the
# name only).  Hypervisors reuse names (libvirt's vnetN): when the VM
# leaves and a new VM takes the same name before the next periodic pass,
# the departed VPS is never let go, and the new customer's VPS on that
# interface collides with it.  Exits 1 while the hole is open, 0 once fixed.
. "$(dirname "$0")/lib.sh"
fh_init 2
vps_link x 1 vnet0 14
pc_on 1 init >/dev/null 2>&1 || { echo "SETUP init"; exit 2; }
pc_on 1 vps add vps-x --owner xav@example.org --iface vnet0 --addr 198.51.100.14 --host hv1 --by lab >/dev/null || exit 2
pc_on 1 filter place vps-x --ports tcp/8080 --by sam --reason "abuse report" >/dev/null || exit 2
agent_up 1 && agent_up 2 || { echo "SETUP agents"; exit 2; }
wait_for 5 blocked x 8080 || { echo "SETUP the filter does not hold"; exit 2; }
pc_on 2 vps move vps-x --host hv2 --iface vnet9 --by orchestrator --reason "live migration" >/dev/null || exit 2
wait_for 5 sh -c "ip netns exec $(ns hv1) $PC_BIN -c $LAB_DIR/hv1.yaml --json audit vps-x | grep -q vps.arrive" || { echo "SETUP no arrival"; exit 2; }
# The VM leaves hv1; hv1 at once starts another customer's VM, which the
# hypervisor gives the free name vnet0.
ip -n "$(ns hv1)" link del vnet0
ip netns del "$(ns x)"
vps_link y 1 vnet0 15
pc_on 1 vps add vps-y --owner yan@example.org --iface vnet0 --addr 198.51.100.15 --host hv1 --by lab >/dev/null 2>&1 ||
        { echo "SETUP vps-y refused"; exit 2; }
sleep 3 # three periodic passes of hv1
st=$(pc_on 1 --json status 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("vps"))')
echo "hv1's agent holds $st VPS(es) (vps-y only: 1)"
grep -E "vps-x|vps-y" "$LAB_DIR/log/portcullisd-hv1.log" | tail -4 | sed 's/^/  hv1: /'
ok=1
[ "$st" = 1 ] || { echo "HOLE: hv1 still holds vps-x, which runs on hv2, on the reused name vnet0"; ok=0; }
connects y 8080 >/dev/null 2>&1 || { echo "HOLE: vps-y (no filter) is blocked on 8080 by vps-x's filter"; ok=0; }
[ $ok = 1 ] && { echo "HELD"; exit 0; }
exit 1
