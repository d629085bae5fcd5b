#!/bin/bash
# Hole 7: a hypervisor that reboots (or whose ruleset is flushed) while the
# database is away came up with nothing enforced: portcullisd refused to
# start without its database and kept nothing local to start from, so its
# VMs, started by the hypervisor, ran with no policy at all -- no filter,
# no suspension, no anti-spoofing -- until the database answered.
# Closed by the snapshot of the host's policy (FLEET.md, "When the
# database is away"): at boot `portcullisd --once` (the unit's
# ExecStartPre) programs the kernel from it, the agent then runs on it
# ("policy": "snapshot" in its status), and when the database answers it
# loads its policy and follows its changes again.
# Exits 1 while the hole is open.
. "$(dirname "$0")/lib.sh"
fh_init 1
vps_link m 1 vm1 14
pc_on 1 init >/dev/null 2>&1 || { echo "SETUP init"; exit 2; }
pc_on 1 vps add vps-m --site lenoir --owner max@example.org --iface vm1 --addr 198.51.100.14 --host hv1 --by lab >/dev/null || exit 2
pc_on 1 filter place vps-m --ports tcp/8080 --by sam --reason "abuse report" >/dev/null || exit 2
agent_up 1 || { echo "SETUP agent"; exit 2; }
wait_for 5 blocked m 8080 || { echo "SETUP the filter does not hold"; exit 2; }
wait_for 5 test -s "$LAB_DIR/snapshot-hv1" || { echo "HOLE: no snapshot of hv1's policy was written"; exit 1; }
# The database goes away; the hypervisor reboots (its ruleset is gone).
"$FH_SRC/tests/pg/cluster.sh" halt "$LAB_DIR/pg" >/dev/null || { echo "SETUP halt"; exit 2; }
kill "${AGENT[1]}"; wait_for 5 sh -c "! kill -0 ${AGENT[1]}"
ip netns exec "$(ns hv1)" nft flush ruleset
# systemd starts the agent at boot (and retries).
for i in 1 2 3; do
        timeout 10 ip netns exec "$(ns hv1)" "$PC_AGENT" -c "$LAB_DIR/hv1.yaml" --host hv1 --once >>"$LAB_DIR/log/boot.log" 2>&1
        rc=$?
        sleep 1
done
echo "portcullisd --once at boot, database away: exit $rc; $(grep -c . "$LAB_DIR/log/boot.log") log lines, e.g.: $(tail -1 "$LAB_DIR/log/boot.log")"
if ! blocked m 8080; then
        echo "HOLE: rebooted during the outage, hv1 enforces nothing: vps-m reaches tcp/8080 through its filter"
        exit 1
fi
echo "held: after the reboot vps-m is still filtered on tcp/8080"
[ "$rc" = 0 ] || { echo "HOLE: --once (the unit's ExecStartPre) exits $rc: the agent would never start"; exit 1; }
# Then the agent itself (ExecStart), still without the database.
agent_up 1 || { echo "HOLE: the agent does not start from the snapshot"; exit 1; }
policy() { pc_on 1 --json status 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("policy"))'; }
[ "$(policy)" = snapshot ] || { echo "HOLE: status does not say the policy is the snapshot's ($(policy))"; exit 1; }
blocked m 8080 || { echo "HOLE: the agent's start let vps-m through"; exit 1; }
echo "held: the agent runs on the snapshot: $(pc_on 1 status 2>/dev/null | grep -i snapshot | head -1)"
# The database answers: its policy, and its changes, reach the kernel again.
"$FH_SRC/tests/pg/cluster.sh" resume "$LAB_DIR/pg" >/dev/null || { echo "SETUP resume"; exit 2; }
policy_is() { [ "$(policy)" = "$1" ]; }
wait_for 15 policy_is database ||
        { echo "HOLE: the agent does not take the database back ($(policy))"; exit 1; }
fid=$(pc_on 1 --json vps show vps-m | python3 -c 'import json,sys; print(json.load(sys.stdin)["filters"][0]["id"])')
pc_on 1 filter lift vps-m "$fid" --by sam --reason "resolved" >/dev/null || { echo "SETUP lift"; exit 2; }
wait_for 5 connects m 8080 || { echo "HOLE: after the database came back, a lifted filter still holds"; exit 1; }
echo "held: the database is back: its policy is loaded and its changes are followed"
exit 0
