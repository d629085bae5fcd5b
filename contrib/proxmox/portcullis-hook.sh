#!/bin/bash
# Proxmox VE hookscript for Portcullis (contrib/README.md): copy to a
# storage with snippets (/var/lib/vz/snippets/portcullis-hook.sh) and set it
# on each VM with `qm set VMID --hookscript local:snippets/portcullis-hook.sh`.
# Proxmox calls it as
#
#     portcullis-hook.sh VMID PHASE
#
# PHASE: pre-start, post-start, pre-stop, post-stop.  A VM is a VPS of
# Portcullis if /etc/portcullis/vms/VMID.conf says which:
#
#     id = vps-101
#     owner = ada@example.net
#     site = milano          # optional: the configuration's default-site
#     lang = en              # optional
#     net = net0             # optional: the VM's network device (net0)
#     address = 198.51.100.10
#     address = 2001:db8:101::/64
#
# Its interface is the tap device Proxmox makes for that network device
# (tap<VMID>i<N> for netN), its MAC the device's, from the VM's config
# (/etc/pve/qemu-server/VMID.conf, its current section).
#
#   pre-start:  register the VPS, or update its interface, MAC and
#               addresses, and mark it running (before the guest runs)
#   post-start: the same again, a no-op unless the start applied pending
#               changes to the network device (or pre-start failed)
#   post-stop:  mark it stopped (Proxmox runs it however the VM ended)
#   pre-stop:   nothing
#
# A VM without a file is left alone.  A failure is logged (syslog, tag
# portcullis-hook) and the VM starts anyway, unless STRICT=yes in
# /etc/portcullis/hooks.conf, which refuses pre-start only.
set -u

lib=${PORTCULLIS_HOOK_LIB:-/usr/share/portcullis/hooks/common.sh}
[ -r "$lib" ] || lib=$(dirname "$(readlink -f "$0")")/../hooks/common.sh
if ! . "$lib"; then
        logger -t portcullis-hook -p daemon.err -- "proxmox hook: cannot read $lib; VM ${1:-} left alone" 2>/dev/null
        exit 0
fi

vmid=${1:-} phase=${2:-}
case $phase in
pre-start | post-start | post-stop) ;;
*) exit 0 ;;
esac
[[ $vmid =~ ^[1-9][0-9]{2,8}$ ]] || exit 0
pch_init proxmox-hook "Proxmox VM $vmid" || pch_exit no
may_block=$([ "$phase" = pre-start ] && echo yes || echo no)
file=$VMS_DIR/$vmid.conf
[ -e "$file" ] || exit 0 # not a VPS of ours

# The VM's file: KEY = VALUE lines, '#' comments.
if [ ! -r "$file" ]; then
        pch_error "cannot read $file: the VPS is not registered"
        pch_exit "$may_block"
fi
id= owner= site= lang= net=net0
addrs=()
n=0
while IFS= read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        line=${line%%#*}
        [[ $line =~ ^[[:space:]]*$ ]] && continue
        if [[ ! $line =~ ^[[:space:]]*([a-z]+)[[:space:]]*=[[:space:]]*([^[:space:]]+)[[:space:]]*$ ]]; then
                pch_error "$file:$n: not 'key = value' (one word): the VPS is not registered"
                pch_exit "$may_block"
        fi
        case ${BASH_REMATCH[1]} in
        id | owner | site | lang | net) printf -v "${BASH_REMATCH[1]}" '%s' "${BASH_REMATCH[2]}" ;;
        address) addrs+=("${BASH_REMATCH[2]}") ;;
        *)
                pch_error "$file:$n: unknown key '${BASH_REMATCH[1]}' (id, owner, site, lang, net, address): the VPS is not registered"
                pch_exit "$may_block"
                ;;
        esac
done <"$file"
missing=
[ -z "$id" ] && missing="id"
[ -z "$owner" ] && missing="${missing:+$missing, }owner"
[ ${#addrs[@]} = 0 ] && missing="${missing:+$missing, }address"
if [ -n "$missing" ]; then
        pch_error "$file has no $missing: the VPS is not registered"
        pch_exit "$may_block"
fi

if [ "$phase" = post-stop ]; then
        pch_stopped "$id" "proxmox: VM $vmid stopped"
        pch_exit no
fi

# The network device in the VM's current config (up to its first
# [snapshot] or [PENDING] section): "netN: virtio=BC:24:11:..,bridge=...".
if [[ ! $net =~ ^net([0-9]+)$ ]]; then
        pch_error "$file: net '$net' is not a network device (net0, net1, ...): the VPS is not registered"
        pch_exit "$may_block"
fi
iface=tap${vmid}i${BASH_REMATCH[1]}
vmconf=$PVE_QEMU_DIR/$vmid.conf
device=
if [ -r "$vmconf" ]; then
        while IFS= read -r line || [ -n "$line" ]; do
                [[ $line == \[* ]] && break
                [[ $line == "$net: "* ]] && device=${line#"$net: "}
        done <"$vmconf"
fi
if [ -z "$device" ]; then
        pch_error "$vmconf has no $net (the network device $file names): the VPS is not registered"
        pch_exit "$may_block"
fi
mac=
IFS=, read -ra kvs <<<"$device"
for kv in "${kvs[@]}"; do
        # model=MAC (virtio=..., e1000=...) or macaddr=MAC
        if [[ ${kv#*=} =~ ^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$ ]]; then
                mac=${kv#*=}
                break
        fi
done
if [ -z "$mac" ]; then
        pch_error "$vmconf: $net has no MAC ('$device'): the VPS is not registered"
        pch_exit "$may_block"
fi

pch_started "$id" "$owner" "$site" "$lang" "$iface" "$mac" "proxmox: VM $vmid $phase" "${addrs[@]}"
pch_exit "$may_block"
