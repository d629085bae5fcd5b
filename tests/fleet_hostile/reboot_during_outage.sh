#!/bin/bash
# Hole: a hypervisor that reboots (or whose ruleset is flushed) while the
# database is away comes up with nothing enforced: portcullisd refuses to
# start without its database (FLEET.md, "Limits") and keeps nothing local
# to start from, so its VMs, started by the hypervisor, run with no policy
# at all -- no filter, no suspension, no anti-spoofing -- until the
# database answers.  (Shipped unit: Restart=on-failure, RestartSec=1s and
# systemd's default start limit of 5 in 10 s: the unit gives up after a
# few seconds and stays down even once the database is back.)
# Exits 1 while the hole is open.
. "$(dirname "$0")/lib.sh"
fh_init 1
vps_link m 1 vm1 14
pc_on 1 init >/dev/null 2>&1 || { echo "SETUP init"; exit 2; }
pc_on 1 vps add vps-m --site lenoir --owner max@example.org --iface vm1 --addr 198.51.100.14 --host hv1 --by lab >/dev/null || exit 2
pc_on 1 filter place vps-m --ports tcp/8080 --by sam --reason "abuse report" >/dev/null || exit 2
agent_up 1 || { echo "SETUP agent"; exit 2; }
wait_for 5 blocked m 8080 || { echo "SETUP the filter does not hold"; exit 2; }
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
if blocked m 8080; then echo "HELD: after the reboot vps-m is still filtered on tcp/8080"; exit 0; fi
echo "HOLE: rebooted during the outage, hv1 enforces nothing: vps-m reaches tcp/8080 through its filter"
exit 1
