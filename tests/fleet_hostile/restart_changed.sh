#!/bin/bash
# Probe: an agent restarted after changes made while it was down (a VPS
# registered, one removed, a filter placed) takes only those from the
# snapshot of its last run when the kernel's record vouches for that
# snapshot -- nothing read back -- and the kernel ends exactly as the
# policy says (reconcile: nothing missing, nothing extra).  When something
# else wrote the ruleset meanwhile (an element deleted by hand), the record
# does not vouch for it, and the kernel is read back and repaired.  Exits 1
# if either leaves the kernel stale.
. "$(dirname "$0")/lib.sh"
fh_one_vps
vps_link t 1 vt 16
pc_on 1 vps add vps-t2 --owner t@example.org --iface vt2 --addr 198.51.100.17 --host hv1 --by lab >/dev/null ||
        { echo "SETUP vps-t2"; exit 2; }
stop_agent() {
        kill "${AGENT[1]}"
        wait_for 5 sh -c "! kill -0 ${AGENT[1]} 2>/dev/null" || { echo "SETUP the agent does not stop"; exit 2; }
        rm -f "$LAB_DIR/hv1.sock"
}
reconciled() {
        echo reconcile | ip netns exec "$(ns hv1)" socat -t5 - "UNIX-CONNECT:$LAB_DIR/hv1.sock" |
                grep -q '"missing":0,"extra":0'
}
fail() { echo "HOLE: $*"; grep -E "enforced the policy|Programmed|Repaired|reading it back" "$LAB_DIR/log/portcullisd-hv1.log" | tail -3; exit 1; }
sleep 3 # the snapshot written after the last change (every 2 s at most)
stop_agent
pc_on 1 vps add vps-t --owner t@example.org --iface vt --addr 198.51.100.16 --host hv1 --by lab >/dev/null
pc_on 1 filter place vps-s --ports tcp/8080 --by sam --reason "abuse report" >/dev/null
pc_on 1 vps remove vps-t2 --by lab --reason "cancelled" >/dev/null
agent_up 1 || { echo "SETUP the agent does not start again"; exit 2; }
wait_for 5 grep -q "changed the 3 VPSes that differ" "$LAB_DIR/log/portcullisd-hv1.log" ||
        fail "the restart did not take the three changes from its last run's snapshot"
ip netns exec "$(ns hv1)" nft list map inet portcullis antispoof | grep -q '"vt"' || fail "vps-t (added) is not anti-spoofed"
! ip netns exec "$(ns hv1)" nft list ruleset | grep -q '"vt2"' || fail "vps-t2 (removed) is still in the kernel"
blocked s 8080 || fail "vps-s's filter (placed while the agent was down) does not hold"
reconciled || fail "reconcile found the kernel stale after the restart"
echo "changes made while the agent was down: taken from its last run's snapshot, the kernel exact"
sleep 2.5
stop_agent
ip netns exec "$(ns hv1)" nft delete element inet portcullis antispoof '{ "vt" }' || { echo "SETUP hand edit"; exit 2; }
pc_on 1 filter place vps-t --ports tcp/8080 --by sam --reason "abuse report" >/dev/null
agent_up 1 || { echo "SETUP the agent does not start a third time"; exit 2; }
wait_for 10 grep -q "Repaired drift" "$LAB_DIR/log/portcullisd-hv1.log" ||
        fail "a ruleset edited by hand while the agent was down was not read back and repaired"
[ "$(grep -c "changed the .* VPSes that differ" "$LAB_DIR/log/portcullisd-hv1.log")" = 1 ] ||
        fail "the record vouched for a ruleset edited by hand"
ip netns exec "$(ns hv1)" nft list map inet portcullis antispoof | grep -q '"vt"' || fail "vps-t's element deleted by hand is not back"
reconciled || fail "reconcile found the kernel stale after the repair"
echo "a ruleset edited by hand while the agent was down: read back and repaired"
# A reload: an address written to the database behind the change feed's
# back (by hand, in SQL) is in what the reload reads and not in what the
# kernel holds; the record vouches for the running model, so only vps-t's
# elements are written.
q() { runuser -u postgres -- psql -X -qtA -h "$LAB_DIR/pg" -p 5432 -d portcullis -c "$1"; }
q "INSERT INTO vps_address (vps_id, family, prefix, net, len) VALUES ('vps-t', 4, '198.51.100.18/32', '\\xc6336412', 32)" \
        >/dev/null || { echo "SETUP the address by hand"; exit 2; }
wait_for 5 sh -c "grep -c 'Wrote the policy snapshot' $LAB_DIR/log/portcullisd-hv1.log | grep -q ." # (settled)
kill -HUP "${AGENT[1]}"
wait_for 10 grep -q "changed the 1 VPSes that differ" "$LAB_DIR/log/portcullisd-hv1.log" ||
        fail "the reload did not write only what differs from the running model"
ip netns exec "$(ns hv1)" nft list ruleset | grep -q '198.51.100.18' || fail "the address the reload read is not in the kernel"
reconciled || fail "reconcile found the kernel stale after the reload"
echo "HELD: a start takes the changes made while it was down, and reads the kernel back when something else wrote it; a reload writes what differs"
exit 0
