#!/bin/bash
# The VM-manager hooks of contrib/, called exactly as libvirt and Proxmox
# call them (argv, the domain XML on stdin, the environment libvirt gives:
# LC_ALL, PATH, HOME, USER, LOGNAME; plus PORTCULLIS_HOOK_CONF for the
# settings) against a temporary config and database, with a logger(1)
# that records what would go to syslog.  The store is read back with
# `portcullis vps show --json` and `audit --json`.
# Usage: run.sh PATH_TO_portcullis SOURCE_ROOT
set -u
bin=$(readlink -f "$1")
root=$2
tmp=$(mktemp -d /tmp/portcullis-hooks.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cd "$root"
failures=0
n=0

# The shipped config with its database, profiles, templates and control
# socket in $tmp (portcullisd is not running: a change is stored only).
sed -e "s|^database:.*|database: sqlite:$tmp/portcullis.db|" -e "s|  - profiles/|  - $root/etc/profiles/|" \
    -e "s|^  templates: templates|  templates: $root/etc/templates|" \
    -e "s|control-socket: /run/portcullis/|control-socket: $tmp/|" etc/portcullis.yaml >"$tmp/portcullis.yaml"
"$bin" -c "$tmp/portcullis.yaml" init >/dev/null || { echo "FAIL init"; exit 1; }
mkdir -p "$tmp/fakebin" "$tmp/vms" "$tmp/pve"
cat >"$tmp/fakebin/logger" <<EOF
#!/bin/sh
# logger(1) as the hooks call it: -t TAG -p PRIORITY -- MESSAGE
echo "\$*" >>"$tmp/syslog"
EOF
chmod +x "$tmp/fakebin/logger"
conf() { # [KEY=VALUE...]: writes the hooks' settings
        {
                echo "# written by tests/hooks/run.sh"
                echo "PORTCULLIS = $bin"
                echo "PORTCULLIS_CONFIG = $tmp/portcullis.yaml"
                echo "VMS_DIR = $tmp/vms"
                echo "PVE_QEMU_DIR = $tmp/pve"
                for kv in "$@"; do echo "$kv"; done
        } >"$tmp/hooks.conf"
}
conf

fail() {
        echo "FAIL $*"
        failures=$((failures + 1))
}

# hook NAME WANT_EXIT STDIN_FILE HOOK ARGS...: runs HOOK as its VM manager
# does, keeps stderr in $err and what it logged in $log; stdout must stay
# empty (libvirt reads a qemu hook's stdout as domain XML).
hook() {
        local name=$1 want=$2 in=$3
        shift 3
        n=$((n + 1))
        : >"$tmp/syslog"
        env -i LC_ALL=C PATH="$tmp/fakebin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
                HOME=/root USER=root LOGNAME=root PORTCULLIS_HOOK_CONF="$tmp/hooks.conf" \
                "$@" <"$in" >"$tmp/out" 2>"$tmp/err"
        got=$?
        err=$(cat "$tmp/err")
        log=$(cat "$tmp/syslog"); [ -n "${HOOKS_VERBOSE:-}" ] && echo "== $name: $log"
        if [ "$got" != "$want" ]; then
                fail "$name: exit $got, want $want"
                echo "  stderr: $err" | head -5
                return 1
        fi
        if [ -s "$tmp/out" ]; then
                fail "$name: wrote to stdout: $(head -c 300 "$tmp/out")"
                return 1
        fi
        return 0
}
libvirt() { # NAME WANT XML GUEST OPERATION SUB [EXTRA]
        local name=$1 want=$2 xml=$3
        shift 3
        hook "$name" "$want" "$xml" contrib/libvirt/qemu "$1" "$2" "$3" "${4:--}"
}
proxmox() { # NAME WANT VMID PHASE
        hook "$1" "$2" /dev/null contrib/proxmox/portcullis-hook.sh "$3" "$4"
}
has() { # NAME TEXT HAYSTACK
        grep -qF -- "$2" <<<"$3" || { fail "$1: missing '$2' in:"; echo "$3" | head -10; }
}
quiet() { # NAME: nothing was logged
        [ -z "$log" ] || fail "$1: logged: $log"
}
# vps NAME ID PY-EXPR: `vps show ID --json` as j
vps() {
        local out
        n=$((n + 1))
        out=$("$bin" -c "$tmp/portcullis.yaml" vps show "$2" --json 2>&1) ||
                { fail "$1: vps show $2: $out"; return; }
        python3 -c "import json,sys; j=json.loads(sys.stdin.read()); assert $3, 'assertion'" <<<"$out" ||
                fail "$1: $3 on: $(tr -d '\n ' <<<"$out" | head -c 600)"
}
absent() { # NAME ID: not registered
        n=$((n + 1))
        "$bin" -c "$tmp/portcullis.yaml" vps show "$2" --json >/dev/null 2>&1 && fail "$1: $2 is registered"
}
# audit NAME ID PY-EXPR: the actions of `audit ID --json`, oldest first, as a
actions() {
        local out
        n=$((n + 1))
        out=$("$bin" -c "$tmp/portcullis.yaml" audit "$2" --json --limit 0 2>&1)
        python3 -c "import json,sys; a=[(e['action'], e['by'], e['reason']) for e in json.loads(sys.stdin.read())['audit']]; assert $3, a" <<<"$out" ||
                fail "$1: audit of $2"
}
rows() { sqlite3 "$tmp/portcullis.db" "SELECT count(*) FROM audit"; }

# ---- libvirt: /etc/libvirt/hooks/qemu GUEST OPERATION SUB EXTRA, XML on stdin
# domain FILE N ADDRESS...: the domain "web-N" of VPS vps-N (owner
# ada@example.net, site milano), its first interface the VPS's (tapN,
# 52:54:00:aa:00:N), its second another (vnetN, 52:54:00:bb:00:N).
domain() {
        local file=$1 id=$2 a
        shift 2
        {
                echo "<domain type='kvm' id='7'>"
                echo "  <name>web-$id</name>"
                echo "  <uuid>0e3f6b3c-1d7a-4c64-9a4e-5e2a4b8f0c11</uuid>"
                echo "  <metadata>"
                echo "    <app:other xmlns:app='https://example.net/app'><app:x>1</app:x></app:other>"
                echo "    <portcullis:vps xmlns:portcullis='https://portcullis.example/ns/1' id='vps-$id' owner='ada@example.net' site='milano'>"
                for a in "$@"; do echo "      <portcullis:address>$a</portcullis:address>"; done
                echo "    </portcullis:vps>"
                echo "  </metadata>"
                echo "  <devices>"
                echo "    <interface type='bridge'>"
                echo "      <mac address='52:54:00:aa:00:$id'/>"
                echo "      <source bridge='br0'/>"
                echo "      <target dev='tap$id'/>"
                echo "      <model type='virtio'/>"
                echo "    </interface>"
                echo "    <interface type='network'>"
                echo "      <mac address='52:54:00:bb:00:$id'/>"
                echo "      <source network='backup'/>"
                echo "      <target dev='vnet$id'/>"
                echo "    </interface>"
                echo "  </devices>"
                echo "</domain>"
        } >"$file"
}
domain "$tmp/d11.xml" 11 198.51.100.10 2001:db8:11::/64

# First start: registered before the guest runs, running.
libvirt lv-start 0 "$tmp/d11.xml" web-11 start begin && has lv-start "vps-11: registered at site milano, interface tap11" "$log" &&
        has lv-start "daemon.notice -- libvirt domain web-11: vps-11: portcullisd is not running: the change is stored" "$log"
vps lv-start vps-11 'j["iface"] == "tap11" and j["mac"] == "52:54:00:aa:00:11" and j["addresses"] == ["198.51.100.10/32", "2001:db8:11::/64"] and j["owner"] == "ada@example.net" and j["site"] == "milano" and j["run_state"] == "running"'
actions lv-start-audit vps-11 'a == [("vps.add", "libvirt-hook", "libvirt: web-11 start")]'
# "started" repeats it: nothing changes, nothing is written
rows_before=$(rows)
libvirt lv-started 0 "$tmp/d11.xml" web-11 started begin && quiet lv-started
[ "$(rows)" = "$rows_before" ] || fail "lv-started: the audit log grew"
# libvirtd restarted: reconnect, the same
libvirt lv-reconnect 0 "$tmp/d11.xml" web-11 reconnect begin && quiet lv-reconnect
# operations the hook has nothing to do with: no output, no change
for op in "prepare begin" "release end" "migrate begin" "restore begin"; do
        libvirt "lv-ignored-$op" 0 "$tmp/d11.xml" web-11 $op && quiet "lv-ignored-$op"
done
[ "$(rows)" = "$rows_before" ] || fail "lv-ignored: the audit log grew"
# stopped: marked, its policy kept
libvirt lv-stopped 0 "$tmp/d11.xml" web-11 stopped end && has lv-stopped "vps-11: stopped (its policy stays in force)" "$log"
vps lv-stopped vps-11 'j["run_state"] == "stopped" and j["run_since"] is not None and j["addresses"] == ["198.51.100.10/32", "2001:db8:11::/64"]'
libvirt lv-stopped-again 0 "$tmp/d11.xml" web-11 stopped end && quiet lv-stopped-again
# started again after an address change: updated and running
domain "$tmp/d11b.xml" 11 198.51.100.11 2001:db8:11::/64
libvirt lv-restart 0 "$tmp/d11b.xml" web-11 start begin && has lv-restart "addresses 198.51.100.11 2001:db8:11::/64 (updated)" "$log" &&
        has lv-restart "vps-11: running" "$log"
vps lv-restart vps-11 'j["addresses"] == ["198.51.100.11/32", "2001:db8:11::/64"] and j["run_state"] == "running" and j["iface"] == "tap11"'
actions lv-restart-audit vps-11 '[x[0] for x in a] == ["vps.add", "vps.stop", "vps.update", "vps.start"] and a[2][2] == "libvirt: web-11 start"'

# The metadata's mac picks the interface.
domain "$tmp/d12.xml" 12 198.51.100.20
sed -i "s|owner='ada@example.net'|& mac='52:54:00:BB:00:12'|" "$tmp/d12.xml"
libvirt lv-mac 0 "$tmp/d12.xml" web-12 start begin
vps lv-mac vps-12 'j["iface"] == "vnet12" and j["mac"] == "52:54:00:bb:00:12"'

# A domain without Portcullis metadata is left alone: no change, no log.
sed -e '/portcullis/d' "$tmp/d11.xml" >"$tmp/plain.xml"
rows_before=$(rows)
for op in "start begin" "started begin" "stopped end"; do
        libvirt "lv-plain-$op" 0 "$tmp/plain.xml" plain $op && quiet "lv-plain-$op"
done
[ "$(rows)" = "$rows_before" ] || fail "lv-plain: the audit log grew"

# Bad metadata: a clear error in syslog and on stderr, the domain starts.
bad() { # NAME SED-SCRIPT TEXT: vps-13's domain edited by SED-SCRIPT is refused saying TEXT
        domain "$tmp/d13.xml" 13 198.51.100.30
        sed -i "$2" "$tmp/d13.xml"
        libvirt "$1" 0 "$tmp/d13.xml" web-13 start begin &&
                has "$1" "portcullis-hook -p daemon.err -- libvirt domain web-13: bad Portcullis metadata, the VPS is not registered: $3" "$log" &&
                has "$1" "$3" "$err"
        absent "$1" vps-13
}
bad lv-bad-noaddr '/portcullis:address/d' "<portcullis:vps> has no <portcullis:address>"
bad lv-bad-noowner "s| owner='ada@example.net'||" "<portcullis:vps> has no owner attribute"
bad lv-bad-noid "s| id='vps-13'||" "<portcullis:vps> has no id attribute"
bad lv-bad-attr "s| site='milano'| site='milano' ip='198.51.100.30'|" "<portcullis:vps> has unknown attributes: ip"
bad lv-bad-space "s|>198.51.100.30<|>198.51.100.30 198.51.100.31<|" "address '198.51.100.30 198.51.100.31' is not a value"
bad lv-bad-ns "s|https://portcullis.example/ns/1|https://portcullis.example/ns/2|" "<vps> in namespace 'https://portcullis.example/ns/2'"
bad lv-bad-xml "s|</metadata>|</metadata|" "the domain XML does not parse"
bad lv-bad-notarget "s|<target dev='tap13'/>||" "its <interface> has no <target dev=...>"
bad lv-bad-mac "s|owner='ada@example.net'|& mac='52:54:00:00:00:99'|" "the domain has no <interface> with MAC 52:54:00:00:00:99"
bad lv-bad-noiface "/<interface/,/<\/interface>/d" "the domain has no <interface>"
# ... values portcullis refuses, as the CLI says them; nothing registered
domain "$tmp/d14.xml" 14 198.51.100.11
libvirt lv-conflict 0 "$tmp/d14.xml" web-14 start begin &&
        has lv-conflict "libvirt domain web-14: Failed to add vps-14: address 198.51.100.11/32 overlaps 198.51.100.11/32 of vps-11" "$log"
absent lv-conflict vps-14
domain "$tmp/d15.xml" 15 198.51.100.50/33
libvirt lv-badaddr 0 "$tmp/d15.xml" web-15 start begin &&
        has lv-badaddr "Failed to register or update vps-15: --addr '198.51.100.50/33' is not an IPv4 or IPv6 address" "$log"
absent lv-badaddr vps-15
# ... an update refused leaves the VPS as it was
domain "$tmp/d11c.xml" 11 198.51.100.20
libvirt lv-update-conflict 0 "$tmp/d11c.xml" web-11 start begin &&
        has lv-update-conflict "Failed to update vps-11: address 198.51.100.20/32 overlaps 198.51.100.20/32 of vps-12" "$log"
vps lv-update-conflict vps-11 'j["addresses"] == ["198.51.100.11/32", "2001:db8:11::/64"]'
# ... the owner in the metadata changed: kept, and said
sed "s|owner='ada@example.net'|owner='bob@example.net'|" "$tmp/d11b.xml" >"$tmp/d11d.xml"
libvirt lv-owner 0 "$tmp/d11d.xml" web-11 start begin &&
        has lv-owner "vps-11: owner stays 'ada@example.net' (the VM says 'bob@example.net')" "$log"
vps lv-owner vps-11 'j["owner"] == "ada@example.net"'

# STRICT=yes: a failure refuses "start" (exit 1, libvirt does not start
# the guest), never another operation.
conf "STRICT = yes"
domain "$tmp/d13.xml" 13 198.51.100.30
sed -i "/portcullis:address/d" "$tmp/d13.xml"
libvirt lv-strict-start 1 "$tmp/d13.xml" web-13 start begin && has lv-strict-start "STRICT=yes: refusing the start" "$log"
libvirt lv-strict-started 0 "$tmp/d13.xml" web-13 started begin
libvirt lv-strict-reconnect 0 "$tmp/d13.xml" web-13 reconnect begin
libvirt lv-strict-stopped 0 "$tmp/d13.xml" web-13 stopped end && has lv-strict-stopped "bad Portcullis metadata, its VPS not marked stopped" "$log"
libvirt lv-strict-conflict 1 "$tmp/d14.xml" web-14 start begin && has lv-strict-conflict "overlaps" "$log"
libvirt lv-strict-ok 0 "$tmp/d11b.xml" web-11 start begin
# ... and no database (a wrong PORTCULLIS_CONFIG): logged; the start refused
# only with STRICT=yes.
sed "s|^database:.*|database: sqlite:$tmp/nowhere/p.db|" "$tmp/portcullis.yaml" >"$tmp/nodb.yaml"
conf "PORTCULLIS_CONFIG = $tmp/nodb.yaml" "STRICT = yes"
libvirt lv-nodb-strict 1 "$tmp/d11b.xml" web-11 start begin && has lv-nodb-strict "no database at $tmp/nowhere/p.db" "$log"
conf "PORTCULLIS_CONFIG = $tmp/nodb.yaml"
libvirt lv-nodb 0 "$tmp/d11b.xml" web-11 start begin && has lv-nodb "no database at $tmp/nowhere/p.db" "$err"
libvirt lv-nodb-stop 0 "$tmp/d11b.xml" web-11 stopped end && has lv-nodb-stop "Failed to mark vps-11 stopped: no database at" "$log"
[ -e "$tmp/nowhere" ] && fail "lv-nodb: a database was created"
# ... bad settings: said, and nothing blocked
conf "STRICT = maybe"
libvirt lv-badconf 0 "$tmp/d11b.xml" web-11 start begin && has lv-badconf "STRICT is yes or no, not 'maybe'" "$log"
conf "FROB = 1"
libvirt lv-badkey 0 "$tmp/d11b.xml" web-11 start begin && has lv-badkey "hooks.conf:6: unknown setting FROB" "$log"
conf

# ---- Proxmox: portcullis-hook.sh VMID PHASE
cat >"$tmp/vms/201.conf" <<'EOF'
# Portcullis: VM 201 is vps-201
id = vps-201
owner = bruno@example.it
lang = it
address = 198.51.100.60
address = 2001:db8:201::/64
EOF
cat >"$tmp/pve/201.conf" <<'EOF'
boot: order=scsi0;net0
cores: 2
memory: 2048
name: vps-201
net0: virtio=BC:24:11:5E:02:01,bridge=vmbr0,firewall=1
net1: e1000=BC:24:11:5E:02:02,bridge=vmbr1
scsi0: local-lvm:vm-201-disk-0,size=32G

[PENDING]
net0: virtio=BC:24:11:5E:02:99,bridge=vmbr0

[before-upgrade]
net0: virtio=BC:24:11:5E:02:77,bridge=vmbr0
EOF
proxmox px-pre-start 0 201 pre-start && has px-pre-start "vps-201: registered at site milano, interface tap201i0, MAC BC:24:11:5E:02:01" "$log"
vps px-pre-start vps-201 'j["iface"] == "tap201i0" and j["mac"] == "bc:24:11:5e:02:01" and j["addresses"] == ["198.51.100.60/32", "2001:db8:201::/64"] and j["lang"] == "it" and j["site"] == "milano" and j["run_state"] == "running"'
actions px-pre-start vps-201 'a == [("vps.add", "proxmox-hook", "proxmox: VM 201 pre-start")]'
rows_before=$(rows)
proxmox px-post-start 0 201 post-start && quiet px-post-start
proxmox px-pre-stop 0 201 pre-stop && quiet px-pre-stop
proxmox px-unknown-phase 0 201 pre-migrate && quiet px-unknown-phase
[ "$(rows)" = "$rows_before" ] || fail "px-post-start: the audit log grew"
proxmox px-post-stop 0 201 post-stop && has px-post-stop "vps-201: stopped" "$log"
vps px-post-stop vps-201 'j["run_state"] == "stopped"'
# started again, the file's addresses changed and the VPS on net1
sed -i 's|198.51.100.60|198.51.100.61|; $a net = net1' "$tmp/vms/201.conf"
proxmox px-restart 0 201 pre-start && has px-restart "(updated)" "$log" && has px-restart "vps-201: running" "$log"
vps px-restart vps-201 'j["iface"] == "tap201i1" and j["mac"] == "bc:24:11:5e:02:02" and j["addresses"] == ["198.51.100.61/32", "2001:db8:201::/64"] and j["run_state"] == "running"'
actions px-restart vps-201 '[x[0] for x in a] == ["vps.add", "vps.stop", "vps.update", "vps.start"]'
# a VM without a file is left alone
proxmox px-plain 0 202 pre-start && quiet px-plain
proxmox px-plain-stop 0 202 post-stop && quiet px-plain-stop
absent px-plain 202
# bad files: a clear error, the VM starts (STRICT=yes: pre-start refuses it)
printf 'id = vps-203\nowner = x@example.net\naddr = 198.51.100.70\n' >"$tmp/vms/203.conf"
proxmox px-bad-key 0 203 pre-start && has px-bad-key "Proxmox VM 203: $tmp/vms/203.conf:3: unknown key 'addr' (id, owner, site, lang, net, address): the VPS is not registered" "$log"
printf 'id = vps-203\nowner = x@example.net\n' >"$tmp/vms/203.conf"
proxmox px-bad-noaddr 0 203 pre-start && has px-bad-noaddr "$tmp/vms/203.conf has no address" "$log"
printf 'id = vps-203\nowner = x@example.net\naddress = 198.51.100.70 198.51.100.71\n' >"$tmp/vms/203.conf"
proxmox px-bad-value 0 203 pre-start && has px-bad-value "203.conf:3: not 'key = value' (one word)" "$log"
printf 'id = vps-203\nowner = x@example.net\naddress = 198.51.100.70\n' >"$tmp/vms/203.conf"
proxmox px-bad-novm 0 203 pre-start && has px-bad-novm "$tmp/pve/203.conf has no net0" "$log"
printf 'name: vps-203\nnet0: virtio,bridge=vmbr0\n' >"$tmp/pve/203.conf"
proxmox px-bad-nomac 0 203 pre-start && has px-bad-nomac "net0 has no MAC" "$log"
printf 'name: vps-203\nnet0: bridge=vmbr0,macaddr=BC:24:11:5E:02:02\n' >"$tmp/pve/203.conf"
proxmox px-samemac 0 203 pre-start && has px-samemac "Proxmox VM 203: Failed to add vps-203: MAC bc:24:11:5e:02:02 is already vps-201's" "$log"
absent px-bad 203
conf "STRICT = yes"
proxmox px-strict 1 203 pre-start && has px-strict "STRICT=yes: refusing the start" "$log"
proxmox px-strict-post 0 203 post-start
printf 'name: vps-203\nnet0: virtio=BC:24:11:5E:03:01,bridge=vmbr0\n' >"$tmp/pve/203.conf"
proxmox px-strict-ok 0 203 pre-start
vps px-strict-ok vps-203 'j["iface"] == "tap203i0" and j["site"] == "milano"'
conf

echo "$n hook calls and checks, $failures failures"
[ $failures = 0 ]
