#!/bin/bash
# Hostile review (false positive): a dual-stack VPS whose IPv6 does not get
# through to the sites it fetches (a broken upstream route, or sites whose
# AAAA records point at dead hosts -- Happy Eyeballs, RFC 8305, exists for
# exactly this) opens each site twice: an IPv6 SYN that is never answered,
# and 200 ms later (curl's --happy-eyeballs-timeout-ms, browsers' 250 ms)
# the IPv4 connection that works.  Every fetch succeeds for the user.  The
# walk sees, per site, one success (after 0.2 s) and one failure (after
# pending-timeout, 2 s): in a parallel burst the successes come first, the
# walk restarts at -4.6 after every 4 of them (what is under the benign
# threshold is thrown away), and then the failures arrive together: 5 of
# them make a scanner.  At provider A's site the kernel's hold makes it
# worse: the v6 SYNs are the burst's first 5 contacts, the v4 ones are held
# behind them, nothing is answered, and the 5 v6 failures are the finding.
# Goal under test: a client whose every fetch succeeds (over IPv4) is no
# scan incident and is not filtered.
# Seen on main (LAB_PREFIX=pchr), bursts one after the other, 4 s apart:
#   lenoir: 3 sites, 3 of 3 fetched, no incident; then 6 sites: 0 of 6
#     fetched (the v4 connections held behind the v6 SYNs, then the
#     filter), a fast-scan incident (6 failed, 1 answered), filtered 1 h;
#   milano: 3 and 6 sites fine; 10 sites: 10 of 10 fetched and a
#     fast-scan incident (7 failed, 2 answered, "horizontal").
# Usage: scan_happy_eyeballs_fp.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/../..
export LAB_PREFIX=${LAB_PREFIX:-pchr} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
. "$here/../scanlab.sh"
sl_up "$1" "$2" nostart
# vps-201 at provider B's site (nothing held back; an incident is a notice)
# shellcheck disable=SC2046
pc vps add vps-201 --site milano --owner bo@example.it $(pc_vps_link VPS201) --by lab >/dev/null 2>&1
check "agent starts" agent_start
# 40 dual-stack sites: 192.0.2.10-49 answer on port 80, their IPv6
# addresses 2001:db8:ffff::1:10-49 exist (neighbour discovery works) but
# their SYNs are lost
for i in $(seq 10 49); do ip -n "$LAB_INET" addr add "2001:db8:ffff::1:$i/128" dev eth0 nodad; done
lab_exec inet nft -f - <<'NFT'
table ip6 brokenv6 {
        chain in {
                type filter hook input priority filter;
                ip6 daddr 2001:db8:ffff::1:0/112 tcp dport 80 drop
        }
}
NFT
fetch() { # NS FIRST N: curl --parallel over N sites from 192.0.2.FIRST, Happy Eyeballs
        local ns=$1 first=$2 n=$3 args=() i
        for ((i = first; i < first + n; i++)); do
                args+=(--resolve "site$i.example:80:[2001:db8:ffff::1:$i],192.0.2.$i" -o /dev/null "http://site$i.example/")
        done
        lab_exec "$ns" timeout 30 curl -s --parallel --parallel-max 20 --happy-eyeballs-timeout-ms 200 \
                --connect-timeout 10 -w '%{http_code} %{remote_ip}\n' "${args[@]}" 2>/dev/null
}
check "(control: one fetch works, over IPv4)" test "$(fetch vps202 49 1)" = "200 192.0.2.49"
rows=""
for pair in "vps101 vps-101 lenoir" "vps201 vps-201 milano"; do
        # shellcheck disable=SC2086 # the words of pair are meant
        set -- $pair
        ns=$1 id=$2 site=$3
        first=10
        for n in 3 6 10; do
                [ "$(incidents "$id" scan)" = 0 ] || break
                out=$(fetch "$ns" "$first" "$n")
                ok200=$(grep -c '^200 ' <<<"$out")
                sleep 3
                rows="$rows     $site, a burst of $n sites: $ok200 of $n fetched (all over IPv4), scan incidents $(incidents "$id" scan)\n"
                first=$((first + n))
                sleep 1
        done
        ev=$(sql "SELECT evidence FROM incident WHERE vps_id='$id' AND kind='scan'" | head -c 300)
        [ -n "$ev" ] && rows="$rows       evidence: $ev\n"
done
printf "%b" "$rows"
check "lenoir: fetches that all succeed are no scan incident" test "$(incidents vps-101 scan)" = 0
check_not "... and vps-101 is not filtered" filtered "$VPS101_IF"
check "milano: no scan incident either" test "$(incidents vps-201 scan)" = 0
lab_summary
