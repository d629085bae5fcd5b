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
fh_init 2
vps_link b 2 vb 12
pc_on 1 init >/dev/null 2>&1 || { echo "SETUP init"; exit 2; }
pc_on 1 vps add vps-b --owner bob@example.org --iface vb --addr 198.51.100.12 --host hv2 --by lab >/dev/null || exit 2
pc_on 1 filter place vps-b --ports tcp/8080 --by sam --reason "abuse report" >/dev/null || exit 2
agent_up 1 && agent_up 2 || { echo "SETUP agents"; exit 2; }
wait_for 5 blocked b 8080 || { echo "SETUP the filter does not hold"; exit 2; }
TOK=$(pc_on 1 token create hv1-hooks --role agent --host hv1 --by lab 2>/dev/null)
[ -n "$TOK" ] || { echo "SETUP no token"; exit 2; }
lab_bg apid hv1 "$FH_BUILD/src/api/portcullis-apid" -c "$LAB_DIR/hv1.yaml" --user nobody --port 8470 >/dev/null
wait_for 5 grep -q "listening on" "$LAB_DIR/log/apid.log" || { echo "SETUP apid"; cat "$LAB_DIR/log/apid.log"; exit 2; }
# api METHOD PATH [BODY]: the status of hv1's hooks' request.
api() {
        ip netns exec "$(ns hv1)" curl -sS -m 5 -o "$LAB_DIR/api.out" -w '%{http_code}' -X "$1" \
                -H "Authorization: Bearer $TOK" -H "Content-Type: application/json" ${3:+--data "$3"} \
                "http://127.0.0.1:8470$2"
}
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
