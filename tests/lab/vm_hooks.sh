#!/bin/bash
# Lab scenario (issue 13, orchestration): the VM managers' hooks of
# contrib/ against the running agent.  libvirt's qemu hook is called as
# libvirtd calls it (GUEST OPERATION SUB-OPERATION EXTRA, the domain XML on
# stdin, libvirt's environment) for vps201's link (v201): the VPS is
# registered at milano and the kernel blocks its smtp at once; its stop is
# recorded and the policy stays; a start with new addresses updates it.
# Proxmox's hookscript is called as `SCRIPT VMID PHASE` for a VM whose tap
# device is tap203i0: registered, then blocked.
# Usage: vm_hooks.sh BUILD_DIR SOURCE_ROOT.  Namespaces prefixed pcvmh.
set -u
here=$(dirname "$(readlink -f "$0")")
export LAB_TOPOLOGY=${LAB_TOPOLOGY:-routed}
export LAB_PREFIX=${LAB_PREFIX:-pcvmh} LAB_QUIET=1
. "$here/lab.sh"
. "$here/common.sh"

lab_deps || exit 1
lab_up --trap || { echo "FAIL lab_up"; exit 1; }
lab_vps_add vps203 tap203i0 198.51.100.30 2001:db8:203:: || { echo "FAIL lab_vps_add"; exit 1; }
pc_setup "$1" "$2"
root=$(readlink -f "$2")
check "agent starts (no VPS registered yet)" agent_start

mkdir -p "$LAB_DIR/vms" "$LAB_DIR/pve"
cat >"$LAB_DIR/hooks.conf" <<EOF2
PORTCULLIS = $PC_BIN
PORTCULLIS_CONFIG = $PC_CFG
VMS_DIR = $LAB_DIR/vms
PVE_QEMU_DIR = $LAB_DIR/pve
EOF2
# As the VM manager runs it, in the hypervisor: libvirt's environment only.
as_vm_manager() {
        ip netns exec "$LAB_HV" env -i LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
                HOME=/root USER=root LOGNAME=root PORTCULLIS_HOOK_CONF="$LAB_DIR/hooks.conf" "$@"
}
domain() { # ADDRESS...: vps-201's domain XML, its interface v201
        echo "<domain type='kvm'><name>web-201</name><metadata>"
        echo "<portcullis:vps xmlns:portcullis='https://portcullis.example/ns/1' id='vps-201'"
        echo "  owner='bruno@example.it' site='milano' lang='it'>"
        for a in "$@"; do echo "<portcullis:address>$a</portcullis:address>"; done
        echo "</portcullis:vps></metadata><devices><interface type='ethernet'>"
        echo "<mac address='52:54:00:00:02:01'/><target dev='$VPS201_IF'/></interface></devices></domain>"
}
run_state() { pc vps show "$1" --json 2>/dev/null | python3 -c 'import json, sys; print(json.load(sys.stdin)["run_state"])'; }

echo "# libvirt: vps-201 starts (qemu hook: start begin)"
domain "$VPS201_V4NET" "$VPS201_V6NET" >"$LAB_DIR/d201.xml"
check "the hook exits 0 and prints nothing (libvirt reads its stdout)" \
        test -z "$(as_vm_manager "$root/contrib/libvirt/qemu" web-201 start begin - <"$LAB_DIR/d201.xml")"
check "vps-201 is registered, running" test "$(run_state vps-201)" = running
check "the kernel blocks its smtp at once: 587 refused fast" refused_fast 1 swaks_send vps201 "$LAB_INET_V4" 587 "hook-587"
check "its web traffic passes" lab_tcp_hello vps201 "$LAB_INET_V4" 80
check "its own address reaches the internet (ping)" \
        lab_exec vps201 ping -c1 -W2 "$LAB_INET_V4"

echo "# libvirt: vps-201 stops (stopped end); its policy stays"
as_vm_manager "$root/contrib/libvirt/qemu" web-201 stopped end - <"$LAB_DIR/d201.xml" >/dev/null
check "vps-201 is stopped" test "$(run_state vps-201)" = stopped
check "still blocked: 587 refused fast" refused_fast 1 swaks_send vps201 "$LAB_INET_V4" 587 "hook-stopped-587"

echo "# libvirt: it starts again with an address more"
domain "$VPS201_V4NET" "198.51.100.11" "$VPS201_V6NET" >"$LAB_DIR/d201b.xml"
as_vm_manager "$root/contrib/libvirt/qemu" web-201 start begin - <"$LAB_DIR/d201b.xml" >/dev/null
check "running again, with 198.51.100.11 registered" \
        test "$(pc vps show vps-201 --json | python3 -c 'import json, sys; v = json.load(sys.stdin); print(v["run_state"], "198.51.100.11/32" in v["addresses"])')" = "running True"

echo "# Proxmox: VM 203 starts (hookscript: pre-start)"
cat >"$LAB_DIR/vms/203.conf" <<EOF2
id = vps-203
owner = carla@example.it
site = milano
address = 198.51.100.30
address = 2001:db8:203::/64
EOF2
printf 'name: vps-203\nnet0: virtio=BC:24:11:5E:02:03,bridge=vmbr0\n' >"$LAB_DIR/pve/203.conf"
check "the hookscript exits 0" as_vm_manager "$root/contrib/proxmox/portcullis-hook.sh" 203 pre-start
check "vps-203 is registered on tap203i0" test "$(pc vps show vps-203 --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["iface"])')" = tap203i0
check "the kernel blocks its smtp: 587 refused fast" refused_fast 1 swaks_send vps203 "$LAB_INET_V4" 587 "px-587"
as_vm_manager "$root/contrib/proxmox/portcullis-hook.sh" 203 post-stop >/dev/null
check "post-stop: vps-203 stopped" test "$(run_state vps-203)" = stopped
lab_summary
