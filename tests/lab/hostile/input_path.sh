#!/bin/bash
# Hostile review (a/b): the site rules live only in the forward chain, so
# traffic to the hypervisor's own addresses (INPUT) is never checked.  A VPS
# at milano reaches a service on a blocked port of the hypervisor itself
# (here a local MTA on 25 and 587, as many hosts run), and a VPS at lenoir
# reaches the hypervisor's port 25 without the proxy: the nat chain returns
# for `fib daddr type local` and nothing else looks.  (A service on udp/500
# or tcp/6881 of the hypervisor would be reachable the same way.)
# Exits non-zero while the hole exists.
# Usage: input_path.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_PREFIX=${LAB_PREFIX:-hr} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
lab_deps || exit 1
lab_up --trap --no-servers || { echo "FAIL lab_up"; exit 1; }
pc_setup "$1" "$2"
pc vps add vps-201 --site milano --owner bruno@example.it --iface "$VPS201_IF" \
        --addr "$VPS201_V4NET" --addr "$VPS201_V6NET" --by lab >/dev/null 2>&1
pc vps add vps-101 --site lenoir --owner ada@example.net --iface "$VPS101_IF" \
        --addr "$VPS101_V4NET" --addr "$VPS101_V6NET" --by lab >/dev/null 2>&1
check "agent starts" agent_start
for port in 25 587; do
        lab_bg "hvmta$port" hv socat "TCP6-LISTEN:$port,ipv6only=0,reuseaddr,fork" \
                SYSTEM:"echo 220 HYPERVISOR-LOCAL-MTA-$port" >/dev/null
        lab_wait_port hv 127.0.0.1 "$port" 5 >/dev/null 2>&1
done
for addr in "$LAB_GW_V4" "$LAB_HV_UPLINK_V4" "$LAB_HV_UPLINK_V6"; do
        for port in 25 587; do
                out=$(lab_tcp_hello vps201 "$addr" "$port" 2 2>/dev/null)
                check_not "milano vps-201 cannot reach the hypervisor's own $addr port $port, smtp being blocked (greeting: ${out:-none})" grep -q HYPERVISOR <<<"$out"
        done
        out=$(lab_tcp_hello vps101 "$addr" 25 2 2>/dev/null)
        check_not "lenoir vps-101 reaches port 25 at $addr only through the proxy (greeting: ${out:-none})" \
                grep -q HYPERVISOR <<<"$out"
done
lab_summary
