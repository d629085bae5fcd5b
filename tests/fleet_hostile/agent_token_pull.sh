#!/bin/bash
# Probe of the rule that closed agent_token_cross_host (hostile #6): a
# bound agent token moves a VPS onto its own host only -- it pulls, as a
# live migration's destination does.  A compromised hv1 can therefore
# claim hv2's VPS.  hv2 must keep enforcing the VM for as long as its
# interface is still on hv2, whatever hv1 then does with the VPS it
# claimed: loosen it (its addresses), lift nothing it may not, remove it
# (or, since hv1's token may not before hv2 confirms the move, an admin).
# Exits 1 while hv1's claim lets the VM on hv2 out through its filter.
# Closed: a VPS leaving a host is only ever tightened there (FLEET.md).
. "$(dirname "$0")/lib.sh"
fh_hv2_vps_and_hv1_token
code=$(api POST /v1/vps/vps-b/move '{"host":"hv1","iface":"vnet999","reason":"migrate begin"}')
echo "hv1's agent token pulls hv2's vps-b onto hv1 -> $code"
[ "$code" = 200 ] || { echo "SETUP the pull was refused ($code)"; cat "$LAB_DIR/api.out"; exit 2; }
sleep 2
blocked b 8080 || { echo "HOLE: after hv1's pull, vps-b on hv2 reaches tcp/8080 through its filter"; exit 1; }
echo "after the pull, hv2 still holds vps-b's filter on vb"
code=$(api DELETE /v1/vps/vps-b '{"reason":"claimed"}')
echo "hv1's agent token removes the VPS it pulled -> $code"
# Refused since schema 16 (409: hv2 has not confirmed the move,
# move_unconfirmed.sh); an admin's removal is not, and hv2 must hold
# through it all the same.
if [ "$code" = 409 ]; then
        # (Its exit status says whether hv1's agent had it yet: not ours.)
        pc_on 1 vps remove vps-b --by admin --reason "removed during the migration" >/dev/null 2>&1
        pc_on 1 vps show vps-b >/dev/null 2>&1 && { echo "SETUP the admin's removal was refused"; exit 2; }
        echo "an admin removes it instead"
fi
sleep 2
blocked b 8080 || { echo "HOLE: hv1 pulled then removed hv2's VPS: vps-b on hv2 reaches tcp/8080"; exit 1; }
echo "after the removal, hv2 still holds vps-b's filter on vb"
# hv2's agent restarts (an upgrade): the database has no vps-b any more.
sleep 2.5 # the snapshot is written at most every 2 s
kill "${AGENT[2]}"; wait_for 5 sh -c "! kill -0 ${AGENT[2]}"
agent_up 2 || { echo "SETUP hv2's agent does not start again"; exit 2; }
sleep 1.5
blocked b 8080 || { echo "HOLE: after hv2's restart, the VPS hv1 pulled and removed reaches tcp/8080 on hv2"; exit 1; }
# The VM goes from hv2 (its interface with it): let go.
ip -n "$(ns hv2)" link del vb
wait_for 8 sh -c "! ip netns exec $(ns hv2) nft list map inet portcullis vps_out | grep -q '\"vb\"'" ||
        { echo "HOLE: hv2 keeps vps-b's elements after its interface is gone"; exit 1; }
echo "HELD: hv2 kept vps-b as it was through hv1's removal and its own restart, and let it go with its interface"
exit 0
