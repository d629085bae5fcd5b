# Shared setup for the fleet_hostile repros (sourced): one throwaway
# PostgreSQL cluster, an "inet" namespace with a bridge and a tcp/8080
# listener, N hypervisor namespaces (pch...-hvN) each with its agent.
# Everything is removed in the EXIT trap.  Usage in a repro:
#   . "$(dirname "$0")/lib.sh"; fh_init 2  (2 hypervisors)
# BUILD (default: build/ of the worktree) holds the binaries.
set -u
FH_HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
FH_SRC=$(readlink -f "$FH_HERE/../..")
FH_BUILD=$(readlink -f "${BUILD:-$FH_SRC/build}")
# Its own prefix whatever the caller set (make test may set one for every
# lab): each repro, then each run, a namespace set of its own.
export LAB_PREFIX=pch$$ LAB_QUIET=1
. "$FH_SRC/tests/lab/lab.sh"
. "$FH_SRC/tests/lab/common.sh"
PC_BIN=$FH_BUILD/src/cli/portcullis PC_AGENT=$FH_BUILD/src/agent/portcullisd
case $LAB_PREFIX in pch*) ;; *) echo "LAB_PREFIX must start with pch" >&2; exit 2 ;; esac

fh_cleanup() {
        "$FH_SRC/tests/pg/cluster.sh" stop "$LAB_DIR/pg" >/dev/null 2>&1
        lab_down >/dev/null 2>&1
        [ -n "${LAB_DIR:-}" ] && [ -f "$LAB_DIR/.portcullis-lab" ] && rm -rf "$LAB_DIR"
}
ns() { echo "$LAB_PREFIX-$1"; }
mkns() { ip netns add "$(ns "$1")" && ip -n "$(ns "$1")" link set lo up; }

fh_init() { # NHOSTS
        local n=$1 h
        LAB_DIR=$(mktemp -d /tmp/portcullis-fh.XXXXXX)
        export LAB_DIR
        touch "$LAB_DIR/.portcullis-lab"
        chmod 0755 "$LAB_DIR"
        mkdir -p "$LAB_DIR/log"
        : >"$LAB_DIR/pids"
        trap fh_cleanup EXIT
        trap 'exit 1' INT TERM
        "$FH_SRC/tests/pg/cluster.sh" start "$LAB_DIR/pg" >/dev/null || { echo "SETUP the PostgreSQL cluster does not start"; exit 2; }
        FH_URL="postgresql:///portcullis?host=$LAB_DIR/pg&port=5432&user=portcullis"
        mkns inet
        ip -n "$(ns inet)" link add br0 type bridge
        ip -n "$(ns inet)" addr add 192.0.2.2/24 dev br0
        ip -n "$(ns inet)" link set br0 up
        for h in $(seq 1 "$n"); do
                mkns hv$h
                ip link add up$h netns "$(ns hv$h)" type veth peer name hv$h netns "$(ns inet)"
                ip -n "$(ns inet)" link set hv$h master br0 up
                ip -n "$(ns hv$h)" addr add 192.0.2.1$h/24 dev up$h
                ip -n "$(ns hv$h)" link set up$h up
                ip netns exec "$(ns hv$h)" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0
                sed -e "s|^database:.*|database: \"${FH_URL//&/\\&}\"|" \
                    -e "s|control-socket: /run/portcullis/control.sock|control-socket: $LAB_DIR/hv$h.sock|" \
                    -e "s|control-socket: /run/portcullis/smtpd.sock|control-socket: $LAB_DIR/smtpd$h.sock|" \
                    -e "s|attempts-interval: .*|attempts-interval: 1s\n  snapshot: $LAB_DIR/snapshot-hv$h|" \
                    -e "s|  - profiles/|  - $FH_SRC/etc/profiles/|" \
                    -e "s|^  templates: templates|  templates: $FH_SRC/etc/templates|" \
                    -e "s|^  relay: .*|  relay: smtp://192.0.2.2:25|" -e "s|^  tls-verify: .*|  tls-verify: false|" \
                    "$FH_SRC/etc/portcullis.yaml" >"$LAB_DIR/hv$h.yaml"
        done
        lab_bg listen8080 inet socat "TCP-LISTEN:8080,fork,reuseaddr" SYSTEM:true >/dev/null
}
# vps_link NAME HOST IFACE LAST-OCTET: the VPS NAME (a namespace) behind IFACE of hvHOST.
vps_link() {
        local v=$1 h=$2 ifc=$3 o=$4
        [ -e "/run/netns/$(ns $v)" ] || mkns "$v"
        ip link add "$ifc" netns "$(ns hv$h)" type veth peer name eth0 netns "$(ns $v)"
        ip -n "$(ns hv$h)" addr add 203.0.113.1/32 dev "$ifc"
        ip -n "$(ns hv$h)" link set "$ifc" up
        ip -n "$(ns hv$h)" route add 198.51.100.$o/32 dev "$ifc"
        ip -n "$(ns $v)" addr add 198.51.100.$o/32 dev eth0
        ip -n "$(ns $v)" link set eth0 up
        ip -n "$(ns $v)" route add 203.0.113.1/32 dev eth0
        ip -n "$(ns $v)" route replace default via 203.0.113.1 dev eth0 onlink
        ip -n "$(ns inet)" route replace 198.51.100.$o/32 via 192.0.2.1$h
}
pc_on() { local h=$1; shift; ip netns exec "$(ns hv$h)" "$PC_BIN" -c "$LAB_DIR/hv$h.yaml" "$@"; }
declare -A AGENT
agent_up() { # HOST
        rm -f "$LAB_DIR/hv$1.sock"
        AGENT[$1]=$(lab_bg "portcullisd-hv$1" hv$1 "$PC_AGENT" -c "$LAB_DIR/hv$1.yaml" --host hv$1)
        wait_for 15 test -S "$LAB_DIR/hv$1.sock"
}
connects() { timeout 1 ip netns exec "$(ns $1)" bash -c "exec 3<>/dev/tcp/192.0.2.2/$2"; }
blocked() { ! connects "$@" >/dev/null 2>&1; }
in_table() { ip netns exec "$(ns hv$1)" nft list map inet portcullis vps_out 2>/dev/null | grep -q "\"$2\""; }
# fh_one_vps [ATTEMPTS_INTERVAL]: one hypervisor (hv1) with its agent
# (its periodic pass every ATTEMPTS_INTERVAL, 1s by default), enforcing
# vps-s (site lenoir, behind interface vs, 198.51.100.15) with
# anti-spoofing; exits 2 (set-up failed) if any of it does not come up.
fh_one_vps() {
        fh_init 1
        vps_link s 1 vs 15
        pc_on 1 init >/dev/null 2>&1 || { echo "SETUP init"; exit 2; }
        pc_on 1 vps add vps-s --site lenoir --owner sue@example.org --iface vs --addr 198.51.100.15 --host hv1 \
                --by lab >/dev/null || exit 2
        [ -z "${1:-}" ] || sed -i "s/attempts-interval: .*/attempts-interval: $1/" "$LAB_DIR/hv1.yaml"
        agent_up 1 || { echo "SETUP agent"; exit 2; }
        wait_for 10 sh -c "ip netns exec $(ns hv1) nft list map inet portcullis antispoof | grep -q vs" ||
                { echo "SETUP vs"; exit 2; }
}
# fh_migrated_vps: two hypervisors with their agents; vps-m (behind vm1 of
# hv1, 198.51.100.14) filtered on tcp/8080, then moved to hv2 (interface
# vm2) and arrived there, its VM still on hv1 (a live migration's copy);
# exits 2 (set-up failed) if any of it does not come up.
fh_migrated_vps() {
        fh_init 2
        vps_link m 1 vm1 14
        pc_on 1 init >/dev/null 2>&1 || { echo "SETUP init"; exit 2; }
        pc_on 1 vps add vps-m --owner max@example.org --iface vm1 --addr 198.51.100.14 --host hv1 --by lab \
                >/dev/null || exit 2
        pc_on 1 filter place vps-m --ports tcp/8080 --by sam --reason "abuse report" >/dev/null || exit 2
        agent_up 1 && agent_up 2 || { echo "SETUP agents"; exit 2; }
        wait_for 5 blocked m 8080 || { echo "SETUP the filter does not hold"; exit 2; }
        pc_on 2 vps move vps-m --host hv2 --iface vm2 --by orchestrator --reason "live migration" >/dev/null || exit 2
        wait_for 5 sh -c "ip netns exec $(ns hv1) $PC_BIN -c $LAB_DIR/hv1.yaml --json audit vps-m | grep -q vps.arrive" ||
                { echo "SETUP no arrival"; exit 2; }
}
