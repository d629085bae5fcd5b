#!/bin/bash
# Hole: when a filter or exception of a VPS ends, the agent reads the VPS
# again to match the kernel's own expiry -- as the database has it, not
# as this host enforces it.  For a VPS that left this host but whose VM is
# still here, that moved its elements to the interface of the host it went
# to: the VM here was left unenforced until it went.  Exits 1 while the
# hole is open.
. "$(dirname "$0")/lib.sh"
fh_migrated_vps
# A second filter, on tcp/8083, that ends while the VM is still on hv1.
pc_on 1 filter place vps-m --ports tcp/8083 --by sam --reason "an hour's worth" --until +4s >/dev/null || exit 2
lab_bg listen8083 inet socat "TCP-LISTEN:8083,fork,reuseaddr" SYSTEM:true >/dev/null
sleep 1
blocked m 8080 && blocked m 8083 || { echo "SETUP the filters do not hold on hv1"; exit 2; }
sleep 5 # the 8083 filter ends; hv1's expiry pass (every second here) reads vps-m again
wait_for 5 connects m 8083 >/dev/null || { echo "SETUP the ended filter still holds"; exit 2; }
sleep 1.5
in_table 1 vm1 || { echo "HOLE: hv1 no longer enforces vps-m on vm1 (its VM is still there)"; exit 1; }
blocked m 8080 || { echo "HOLE: after its other filter ended, vps-m reaches tcp/8080 on hv1"; exit 1; }
echo "HELD: the filter that did not end holds on hv1 after the other ended"
exit 0
