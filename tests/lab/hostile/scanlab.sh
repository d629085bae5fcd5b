# shellcheck shell=bash
# Shared by the hostile scan_*/flood_* scenarios (source after lab.sh and
# common.sh): the lab up, the config written, vps-101 and vps-202 at
# provider A's site (lenoir: scanners and flooders filtered outbound),
# absent internet hosts 192.0.2.128-254 that the hypervisor can still send
# to (permanent neighbour entries, as in tests/lab/scan.sh), and helpers.
# LAB_TOPOLOGY=bridged: the VPSes are ports of a bridge and inet is their
# router (their probes reach it whatever it does with them); the sets are
# then the bridge table's ($FAM).
PY=/usr/bin/python3
FAM=inet
[ "${LAB_TOPOLOGY:-routed}" = bridged ] && FAM=bridge
sl_up() { # BUILD_DIR SOURCE_ROOT [start]: the lab, the VPSes, the agent unless "nostart"
        lab_deps || exit 1
        lab_install nmap masscan hping3 python3-scapy traceroute iperf3 || exit 1
        lab_up --trap || { echo "FAIL lab_up"; exit 1; }
        pc_setup "$1" "$2"
        DB=$LAB_DIR/portcullis.db
        # shellcheck disable=SC2046
        pc vps add vps-101 --site lenoir --owner ada@example.net $(pc_vps_link VPS101) --by lab >/dev/null 2>&1
        # shellcheck disable=SC2046
        pc vps add vps-202 --site lenoir --owner carl@example.net $(pc_vps_link VPS202) --by lab >/dev/null 2>&1
        if [ "$FAM" = inet ]; then
                inet_mac=$(lab_exec inet cat /sys/class/net/eth0/address)
                for i in $(seq 128 254); do
                        ip -n "$LAB_HV" neigh replace "192.0.2.$i" lladdr "$inet_mac" dev "$LAB_UPLINK_IF" nud permanent
                done
        fi
        for i in $(seq 10 59); do ip -n "$LAB_INET" addr add "192.0.2.$i/32" dev eth0; done
        [ "${3:-start}" = nostart ] || check "agent starts" agent_start
}
# The flood line at half the default (lab/flood says why: hping3's speed on
# a busy machine, not the agent's, decided how soon the meter tripped).
sl_flood_line() {
        sed -i 's/^    packets-per-second: 20000$/    packets-per-second: 10000/' "$PC_CFG"
        grep -q '^    packets-per-second: 10000$' "$PC_CFG" || { echo "FAIL the lab's flood line is not set"; exit 1; }
}
sql() { sqlite3 "$DB" "$1"; }
filtered() { nft_hv list set $FAM portcullis filter_out 2>/dev/null | grep -q "\"$1\""; }
held() { nft_hv list set $FAM portcullis scan_hold 2>/dev/null | grep -q "\"$1\""; }
incidents() { sql "SELECT count(*) FROM incident WHERE vps_id='$1' AND kind='$2'"; }
# distinct DST.PORT (or DST for ICMP) first packets from ADDR in PCAP matching FILTER
distinct() { tcpdump -r "$1" -nn "$2" 2>/dev/null | awk '{ print $5 }' | sort -u | wc -l; }
capture_stop() { sleep "${2:-0.3}"; kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
