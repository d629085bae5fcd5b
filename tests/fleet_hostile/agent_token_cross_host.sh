#!/bin/bash
# Hole: an `agent` token is not bound to a hypervisor.  The VM manager's
# hooks of hv1 hold one (POST /v1/vps/{id}/move is an agent operation); if
# hv1 is compromised, its token moves hv2's VPS "to hv2 on another
# interface" and hv2's kernel stops enforcing the VM's real interface at
# once (or moves it anywhere, or removes it).  Exits 1 while an agent token
# of one host can change where another host's VPS is enforced, or change
# it at all.
#
# Since schema 13 an agent token is minted for a host (hv1's hooks: --host
# hv1): it acts on hv1's VPSes only and moves a VPS onto hv1 only (a live
# migration's destination pulls it).  The pull is then probed too: hv2
# must keep enforcing the VM while its interface is still on hv2.
. "$(dirname "$0")/lib.sh"
fh_hv2_vps_and_hv1_token
code=$(api POST /v1/vps/vps-b/move '{"host":"hv2","iface":"vnet999","reason":"hooks"}')
echo "hv1's agent token: POST /v1/vps/vps-b/move (vps-b is hv2's) -> $code"
sleep 2
if [ "$code" = 200 ] && connects b 8080 >/dev/null 2>&1; then
        echo "HOLE: hv1's token re-pointed hv2's VPS; vps-b now reaches tcp/8080 through its filter"
        exit 1
fi
[ "$code" = 200 ] && { echo "HOLE: hv1's token moved hv2's VPS (200)"; exit 1; }
for req in "PATCH /v1/vps/vps-b {\"addresses\":[\"198.51.100.0/24\"]}" "POST /v1/vps/vps-b/stop {}" \
           "DELETE /v1/vps/vps-b {\"reason\":\"gone\"}" "POST /v1/vps/vps-b/suspend {\"reason\":\"x\"}"; do
        set -- $req
        c=$(api "$1" "$2" "$3")
        echo "hv1's agent token: $1 $2 -> $c"
        case $c in 2*) echo "HOLE: hv1's token changed hv2's VPS ($1 $2: $c)"; exit 1 ;; esac
done
blocked b 8080 || { echo "HOLE: vps-b reaches tcp/8080 through its filter"; exit 1; }
echo "HELD ($code)"
exit 0
