#!/bin/bash
# Probe (held today): a customer token (owner of the VPS) and a support
# token cannot move a VPS; a customer reads neither /v1/fleet nor /metrics.
# Exits 1 if any of them is allowed.
. "$(dirname "$0")/lib.sh"
fh_init 1
pc_on 1 init >/dev/null 2>&1 || { echo "SETUP init"; exit 2; }
pc_on 1 vps add vps-m --owner max@example.org --iface vm1 --addr 198.51.100.14 --host hv1 --by lab >/dev/null 2>&1 || exit 2
CUST=$(pc_on 1 token create max --role customer --customer max@example.org --by lab 2>/dev/null)
SUP=$(pc_on 1 token create sam --role support --by lab 2>/dev/null)
lab_bg apid hv1 "$FH_BUILD/src/api/portcullis-apid" -c "$LAB_DIR/hv1.yaml" --user nobody --port 8470 >/dev/null
wait_for 5 grep -q "listening on" "$LAB_DIR/log/apid.log" || { echo "SETUP apid"; exit 2; }
req() { ip netns exec "$(ns hv1)" curl -sS -m 5 -o /dev/null -w '%{http_code}' -X "$2" -H "Authorization: Bearer $1" \
        ${4:+-H "Content-Type: application/json" --data "$4"} "http://127.0.0.1:8470$3"; }
bad=0
for t in CUST SUP; do
        c=$(req "${!t}" POST /v1/vps/vps-m/move '{"host":"hv9","iface":"x1"}'); echo "$t move: $c"; [ "$c" = 200 ] && bad=1
done
c=$(req "$CUST" GET /v1/fleet); echo "CUST fleet: $c"; [ "$c" = 200 ] && bad=1
c=$(req "$CUST" GET /metrics); echo "CUST metrics: $c"; [ "$c" = 200 ] && bad=1
c=$(req "" GET /v1/fleet); echo "no token fleet: $c"; [ "$c" = 200 ] && bad=1
host=$(pc_on 1 --json vps show vps-m | python3 -c 'import json,sys; print(json.load(sys.stdin).get("host"))')
echo "vps-m's host: $host"; [ "$host" = hv1 ] || bad=1
[ $bad = 0 ] && { echo HELD; exit 0; }
echo HOLE; exit 1
