#!/bin/bash
# Hole: a host that is dead for good never confirms the moves away from it
# (vps.depart is its agent's alone), and nothing else can: the move stays
# unconfirmed, and the new host's token gets 409 on removing the VPS or
# changing its addresses.  Only moving it back cleared the mark.  Wanted:
# an admin confirms it (`portcullis vps depart`, POST /v1/vps/{id}/depart,
# audited vps.depart by the admin with a reason) -- and no agent token,
# the claimer's least of all, may confirm another host's departure.
# hv1's bound token pulls vps-b from hv2; hv2 dies with the VM.  Exits 1
# while any of that does not hold.
. "$(dirname "$0")/lib.sh"
fh_hv2_vps_and_hv1_token
member() { # MEMBER: vps-b's MEMBER in `vps show --json`, "" if none
        pc_on 1 --json vps show vps-b 2>/dev/null |
                python3 -c "import json,sys; print(json.load(sys.stdin).get('$1') or '')" 2>/dev/null
}
code=$(api POST /v1/vps/vps-b/move '{"host":"hv1","iface":"vnet9","reason":"migrate begin"}')
[ "$code" = 200 ] || { echo "SETUP the pull was refused ($code)"; exit 2; }
arrived() { [ -z "$(member moving_from)" ]; }
wait_for 5 arrived || { echo "SETUP hv1's agent does not record the arrival"; exit 2; }
# hv2 dies for good, and its VM with it.
kill "${AGENT[2]}"; wait_for 5 sh -c "! kill -0 ${AGENT[2]}"
ip -n "$(ns hv2)" link del vb
sleep 2
[ "$(member departing_from)" = hv2 ] || { echo "SETUP the move does not show unconfirmed"; exit 2; }
echo "hv2 is dead: vps-b's move from hv2 stays unconfirmed"

# The claimer's token confirms for hv2.
code=$(api POST /v1/vps/vps-b/depart '{"reason":"hv2 is dead"}')
echo "hv1's agent token confirms hv2's departure -> $code"
[ "$code" = 403 ] || { echo "HOLE: hv1's bound token confirmed hv2's departure ($code)"; exit 1; }
[ "$(member departing_from)" = hv2 ] || { echo "HOLE: hv1's token cleared hv2's missing confirmation"; exit 1; }
code=$(api DELETE /v1/vps/vps-b '{"reason":"claimed"}')
[ "$code" = 409 ] || { echo "HOLE: hv1 removed vps-b before anyone confirmed the move ($code)"; exit 1; }

# The admin does.
out=$(pc_on 1 vps depart vps-b --by alice --reason "hv2 is dead: its disks are gone" 2>&1)
rc=$?
echo "admin: vps depart vps-b -> $rc: $out"
[ $rc = 0 ] || { echo "HOLE: the admin cannot confirm a dead host's departure"; exit 1; }
[ -z "$(member departing_from)" ] || { echo "HOLE: confirmed by the admin, the move still shows unconfirmed"; exit 1; }
pc_on 1 --json audit vps-b | python3 -c '
import json, sys
d = [(e["by"], e["reason"]) for e in json.load(sys.stdin)["audit"] if e["action"] == "vps.depart"]
sys.exit(0 if d == [("alice", "hv2 is dead: its disks are gone")] else 1)' ||
        { echo "HOLE: the confirmation is not audited as vps.depart by alice with the reason"; exit 1; }
pc_on 1 fleet status | grep -q "hv2 has not confirmed" && { echo "HOLE: fleet status still counts it"; exit 1; }
out=$(pc_on 1 vps depart vps-b --by alice --reason "again" 2>&1)
rc=$?
[ $rc = 1 ] && grep -q "has no move to confirm" <<<"$out" ||
        { echo "HOLE: a second confirmation is not told there is none to confirm ($rc: $out)"; exit 1; }
code=$(api DELETE /v1/vps/vps-b '{"reason":"VM destroyed"}')
echo "confirmed, hv1's agent token removes vps-b -> $code"
[ "$code" = 200 ] || { echo "HOLE: confirmed, hv1's token still cannot remove vps-b ($code)"; exit 1; }
echo "HELD: only the admin confirmed the dead host's departure (audited vps.depart); hv1's token could not"
exit 0
