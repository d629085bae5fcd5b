#!/bin/bash
# Hostile review (a/d): an outbound filter on the whole VPS (`filter place ID
# --all`, what provider A places for spam or scanning) is not checked "both
# ways round".  The forward chain drops `iifname @filter_out` for new flows
# only; a new flow *towards* the VPS is never checked against @filter_out.
# So the accomplice forges one datagram "VICTIM:PORT -> VPS:41xxx"; the VPS
# drops it in its own firewall; conntrack now holds an entry whose reply
# direction is the VPS's datagram to VICTIM:PORT, which is "established" and
# forwarded, and so are VICTIM's answers.  One forged packet per destination
# reopens the filtered VPS to any UDP service of any third party.  (The
# agent's conntrack purge does treat such an entry as filtered, so the ruleset
# and conntrack.c disagree.)  TCP needs the victim's SYN-ACK to fit the
# window conntrack learned from the forged SYN (about 1 in 65536 per try).
# Exits non-zero while the hole exists.
# Usage: filter_all_disguise.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_PREFIX=${LAB_PREFIX:-hr} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
PY=/usr/bin/python3
FORGE=$lab/forge.py
lab_deps || exit 1
lab_up --trap || { echo "FAIL lab_up"; exit 1; }
pc_setup "$1" "$2"
pc vps add vps-101 --site lenoir --owner ada@example.net --iface "$VPS101_IF" \
        --addr "$VPS101_V4NET" --addr "$VPS101_V6NET" --by lab >/dev/null 2>&1
check "agent starts" agent_start
lab_exec vps101 nft -f - <<'NFT'
table inet customer {
        chain input {
                type filter hook input priority 0; policy accept;
                udp dport 41000-41999 drop
        }
}
NFT
forge() { lab_exec "$1" "$PY" "$FORGE" "${@:2}" 2>/dev/null; }

lab_udp_send vps101 "$LAB_INET_V4" 1701 before-filter >/dev/null 2>&1
sleep 0.3
check "(control: unfiltered vps-101 reaches udp/1701)" test "$(lab_udp_received 1701 "$VPS101_V4")" -ge 1
pc filter place vps-101 --all --direction out --by abuse --reason "lab: scanning" >/dev/null 2>&1
n0=$(lab_udp_received 1701 "$VPS101_V4")
forge vps101 udpsend "$LAB_INET_V4" 1701 41001 filtered-plain
sleep 0.3
check "(control: the filter stops a plain datagram)" test "$(lab_udp_received 1701 "$VPS101_V4")" = "$n0"

forge inet udp "$LAB_INET_V4" 1701 "$VPS101_V4" 41002 primer
forge vps101 udpsend "$LAB_INET_V4" 1701 41002 filtered-after-forgery
sleep 0.3
check "after one forged datagram from the victim, the filtered VPS still cannot send to it (IPv4)" \
        test "$(lab_udp_received 1701 "$VPS101_V4")" = "$n0"

n6=$(lab_udp_received 1701 "$VPS101_V6")
forge inet udp "$LAB_INET_V6" 1701 "$VPS101_V6" 41003 primer
forge vps101 udpsend "$LAB_INET_V6" 1701 41003 filtered-after-forgery-v6
sleep 0.3
check "... nor over IPv6" test "$(lab_udp_received 1701 "$VPS101_V6")" = "$n6"
lab_summary
