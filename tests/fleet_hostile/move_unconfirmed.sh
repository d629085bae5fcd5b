#!/bin/bash
# What agent_token_pull (12) left: a pull is not confirmed by the host it
# leaves.  hv1, compromised, pulls hv2's vps-b with its bound agent token
# (and its agent records the arrival): hv2 keeps the VM enforced, but the
# claim must be visible (vps show / list, the API's VPS object: moved
# from hv2, not confirmed by hv2), hv1's token must not make it final by
# removing the VPS, and an admin must undo it by moving vps-b back to hv2
# without knowing its interface there.  Then an honest move to hv1 is
# confirmed by hv2's agent (vps.depart) once the VM's interface is gone
# from hv2.  Exits 1 while any of that does not hold.
. "$(dirname "$0")/lib.sh"
fh_hv2_vps_and_hv1_token
member() { # MEMBER: vps-b's MEMBER in `vps show --json`, "" if none
        pc_on 1 --json vps show vps-b 2>/dev/null |
                python3 -c "import json,sys; print(json.load(sys.stdin).get('$1') or '')" 2>/dev/null
}
audited() { # ACTION: vps-b's audit log has ACTION
        pc_on 1 --json audit vps-b 2>/dev/null | grep -q "\"$1\""
}
code=$(api POST /v1/vps/vps-b/move '{"host":"hv1","iface":"vnet999","reason":"migrate begin"}')
echo "hv1's agent token pulls hv2's vps-b onto hv1 -> $code"
[ "$code" = 200 ] || { echo "SETUP the pull was refused ($code)"; cat "$LAB_DIR/api.out"; exit 2; }
wait_for 5 audited vps.arrive || { echo "SETUP hv1's agent does not record the arrival"; exit 2; }
echo "hv1's agent recorded vps.arrive"

# Visible.
[ "$(member host)" = hv1 ] || { echo "SETUP vps-b is not on hv1 ($(member host))"; exit 2; }
[ "$(member departing_from)" = hv2 ] ||
        { echo "HOLE: vps show --json does not say that hv2 has not confirmed the move"; exit 1; }
pc_on 1 vps show vps-b | grep -q "not confirmed by hv2" ||
        { echo "HOLE: vps show does not say that hv2 has not confirmed the move"; exit 1; }
pc_on 1 vps list | grep vps-b | grep -q "not confirmed by hv2" ||
        { echo "HOLE: vps list does not say that hv2 has not confirmed the move"; exit 1; }
code=$(api GET /v1/vps/vps-b)
grep -q '"departing_from": *"hv2"' "$LAB_DIR/api.out" ||
        { echo "HOLE: the API's VPS object ($code) does not say that hv2 has not confirmed the move"; exit 1; }
pc_on 1 fleet status | grep -q "hv2 has not confirmed that 1 VPS moved away from it left it" ||
        { echo "HOLE: fleet status does not say that hv2 has a move to confirm"; exit 1; }
echo "the claim shows: moved from hv2, not confirmed by hv2 (vps show, vps list, --json, the API, fleet status)"

# hv1 cannot wipe it: pulling again, or removing the VPS (which would
# leave nothing to move back).
code=$(api POST /v1/vps/vps-b/move '{"host":"hv1","iface":"vnet998","reason":"again"}')
[ "$(member departing_from)" = hv2 ] ||
        { echo "HOLE: hv1's second pull ($code) wiped hv2's missing confirmation"; exit 1; }
code=$(api DELETE /v1/vps/vps-b '{"reason":"claimed"}')
echo "hv1's agent token removes the VPS it claimed -> $code"
[ "$code" = 409 ] || { echo "HOLE: hv1 removed the VPS it claimed before hv2 confirmed the move ($code)"; exit 1; }
code=$(api PATCH /v1/vps/vps-b '{"addresses":["198.51.100.12","198.51.100.99"],"reason":"claimed"}')
echo "hv1's agent token gives the VPS it claimed another address -> $code"
[ "$code" = 409 ] || { echo "HOLE: hv1 loosened the VPS it claimed before hv2 confirmed the move ($code)"; exit 1; }
blocked b 8080 || { echo "HOLE: after hv1's claim, vps-b on hv2 reaches tcp/8080 through its filter"; exit 1; }

# The admin undoes it: back to hv2, on its interface there.
out=$(pc_on 1 vps move vps-b --host hv2 --by admin --reason "claim by hv1 undone" 2>&1)
echo "admin: vps move vps-b --host hv2 -> $out"
[ "$(member host)" = hv2 ] && [ "$(member iface)" = vb ] ||
        { echo "HOLE: the admin cannot move vps-b back to hv2 without its interface there"; exit 1; }
[ -z "$(member departing_from)" ] || { echo "HOLE: moved back, the move still shows unconfirmed"; exit 1; }
back() { [ -z "$(member moving_from)" ]; }
wait_for 5 back || { echo "SETUP hv2 does not record vps-b's arrival back"; exit 2; }
blocked b 8080 || { echo "HOLE: moved back, vps-b reaches tcp/8080 through its filter"; exit 1; }
echo "undone: vps-b is hv2's again, on vb, its filter held"

# An honest migration: confirmed by hv2 once its VM has left.
pc_on 1 vps move vps-b --host hv1 --iface vnet7 --by orchestrator --reason "live migration" >/dev/null || exit 2
arrived() { [ "$(member host)" = hv1 ] && [ -z "$(member moving_from)" ]; }
wait_for 5 arrived || { echo "SETUP hv1 does not record the migration's arrival"; exit 2; }
[ "$(member departing_from)" = hv2 ] || { echo "HOLE: the migration is confirmed before the VM left hv2"; exit 1; }
sleep 1
audited vps.depart && { echo "HOLE: vps.depart recorded while the VM is still on hv2"; exit 1; }
ip -n "$(ns hv2)" link del vb
wait_for 8 audited vps.depart || { echo "HOLE: hv2's agent does not record vps.depart when the VM left it"; exit 1; }
[ -z "$(member departing_from)" ] || { echo "HOLE: vps.depart recorded, the move still shows unconfirmed"; exit 1; }
pc_on 1 --json audit vps-b | grep '"vps.depart"' | head -1
echo "HELD: hv1's claim showed unconfirmed, could not be made final, was undone; hv2 confirmed the migration when the VM left"
exit 0
