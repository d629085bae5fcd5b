# The fleet's namespaces and hypervisors, shared by lab/fleet and the
# fleet's hostile repros (sourced, after lab.sh and common.sh; LAB_PREFIX,
# LAB_DIR, PC_BIN and PC_AGENT set):
#
#            inet 192.0.2.2 (br0)
#             |            |            |
#      hv1 192.0.2.11  hv2 192.0.2.12  ...  each with its portcullisd --host hvN
#        IFACE ...
#        |
#      a VPS 198.51.100.OCTET (vps_link)
ns() { echo "$LAB_PREFIX-$1"; }
mkns() { ip netns add "$(ns "$1")" && ip -n "$(ns "$1")" link set lo up; }

# fleet_topology N: inet's bridge, and hypervisors hv1..hvN on it,
# forwarding, without reverse-path filtering (Portcullis' own checks).
fleet_topology() {
        local h
        mkns inet
        ip -n "$(ns inet)" link add br0 type bridge
        ip -n "$(ns inet)" addr add 192.0.2.2/24 dev br0
        ip -n "$(ns inet)" link set br0 up
        for h in $(seq 1 "$1"); do
                mkns hv$h
                ip link add up$h netns "$(ns hv$h)" type veth peer name hv$h netns "$(ns inet)"
                ip -n "$(ns inet)" link set hv$h master br0 up
                ip -n "$(ns hv$h)" addr add 192.0.2.1$h/24 dev up$h
                ip -n "$(ns hv$h)" link set up$h up
                ip netns exec "$(ns hv$h)" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0
        done
}

# vps_link NAME HOST IFACE LAST-OCTET: the VPS NAME (a namespace, made if
# new) behind IFACE of hvHOST, 198.51.100.LAST-OCTET.
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

# fleet_config HOST URL SOURCE_ROOT: $LAB_DIR/hvHOST.yaml, the shipped
# configuration on database URL, its sockets and snapshot in $LAB_DIR, a
# periodic pass every second, mail through inet's relay.
fleet_config() {
        local h=$1 url=$2 src=$3
        sed -e "s|^database:.*|database: \"${url//&/\\&}\"|" \
            -e "s|control-socket: /run/portcullis/control.sock|control-socket: $LAB_DIR/hv$h.sock|" \
            -e "s|control-socket: /run/portcullis/smtpd.sock|control-socket: $LAB_DIR/smtpd$h.sock|" \
            -e "s|attempts-interval: .*|attempts-interval: 1s\n  snapshot: $LAB_DIR/snapshot-hv$h|" \
            -e "s|  - profiles/|  - $src/etc/profiles/|" \
            -e "s|^  templates: templates|  templates: $src/etc/templates|" \
            -e "s|^  relay: .*|  relay: smtp://192.0.2.2:25|" -e "s|^  tls-verify: .*|  tls-verify: false|" \
            "$src/etc/portcullis.yaml" >"$LAB_DIR/hv$h.yaml"
}

pc_on() { local h=$1; shift; ip netns exec "$(ns hv$h)" "$PC_BIN" -c "$LAB_DIR/hv$h.yaml" "$@"; }
declare -A AGENT
agent_up() { # HOST: starts hvHOST's agent (its pid in AGENT[HOST]), waits for its socket
        rm -f "$LAB_DIR/hv$1.sock"
        AGENT[$1]=$(lab_bg "portcullisd-hv$1" hv$1 "$PC_AGENT" -c "$LAB_DIR/hv$1.yaml" --host hv$1)
        wait_for 15 test -S "$LAB_DIR/hv$1.sock"
}
connects() { # VPS PORT: a TCP connection to inet is established within 1 s
        timeout 1 ip netns exec "$(ns $1)" bash -c "exec 3<>/dev/tcp/192.0.2.2/$2"
}
blocked() { # VPS PORT: does not get through
        ! connects "$@" >/dev/null 2>&1
}
in_table() { # HOST IFACE: hvHOST's kernel knows IFACE as a VPS's
        ip netns exec "$(ns hv$1)" nft list map inet portcullis vps_out 2>/dev/null | grep -q "\"$2\""
}
