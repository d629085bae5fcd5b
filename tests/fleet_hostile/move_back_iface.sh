#!/bin/bash
# Hole: a migration aborted with `vps move VPS --host OLD` (no --iface)
# kept the interface name of the host it was going to, so the host the
# VM never left reprogrammed it on that name: the VM's real interface was
# left unenforced.  Fixed: a move to another host must name the interface
# there (or, back to the host that has not confirmed the move, the
# database's name there: schema 16); the move back with the VM's name
# keeps it filtered.  Exits 1
# while the hole is open, 0 once fixed.
. "$(dirname "$0")/lib.sh"
# The orchestrator starts a live migration to hv2 ...
fh_migrated_vps
# ... and aborts it: the VM never left hv1 (still behind vm1).
# Without --iface the move back must go to vm1 -- since schema 16 the
# database keeps the VM's name on hv1 until hv1 confirms the move -- or be
# refused: a name is the host's, never the destination's.
if out=$(pc_on 1 vps move vps-m --host hv1 --by orchestrator --reason "migration aborted" 2>&1); then
        iface=$(pc_on 1 --json vps show vps-m | python3 -c 'import json,sys; print(json.load(sys.stdin).get("iface"))')
        [ "$iface" = vm1 ] || { echo "HOLE: the move back without --iface took $iface, not the VM's vm1 ($out)"; exit 1; }
        echo "the move back without --iface is on vm1, the VM's interface on hv1 (the move was unconfirmed)"
else
        grep -q "needs its interface there" <<<"$out" || { echo "HOLE: not refused for the interface: $out"; exit 1; }
        pc_on 1 vps move vps-m --host hv1 --iface vm1 --by orchestrator --reason "migration aborted" >/dev/null ||
                { echo "SETUP move back refused"; exit 2; }
fi
sleep 2 # a periodic pass or two of both agents
iface=$(pc_on 1 --json vps show vps-m | python3 -c 'import json,sys; print(json.load(sys.stdin).get("iface"))')
echo "after the move back the database says iface=$iface; hv1's kernel has vm1: $(in_table 1 vm1 && echo yes || echo no)"
if blocked m 8080; then
        echo "HELD: vps-m, still behind vm1 on hv1, is still filtered on tcp/8080"
        exit 0
fi
echo "HOLE: vps-m (still on hv1 behind vm1) reaches tcp/8080 through its filter after the aborted move"
exit 1
