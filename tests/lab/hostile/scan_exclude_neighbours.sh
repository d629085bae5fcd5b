#!/bin/bash
# Hostile review (scan containment): detectors.scan.exclude is documented
# (DETECTION.md, CONFIG.md, the shipped portcullis.yaml) for "the
# provider's resolvers, its own ranges", and an excluded destination is no
# first contact at all: never held back, never detected.  A provider's own
# ranges are where its customers' VPSes are.  With them excluded, a VPS
# scans every other customer of the provider without limit and without an
# incident -- the one scan a provider most wants to stop, and the one that
# stays invisible to everyone else's abuse desk.  Nothing warns: `check`
# accepts an exclude that covers registered VPSes' addresses.
# Here the lab's customer ranges are 198.51.100.0/24 and 203.0.113.0/24;
# the provider excludes 198.51.100.0/24, and vps-101 (203.0.113.10) sweeps
# port 22 of 198.51.100.30-200 (hosts of the range, reached through inet).
# Goal under test: a scan of other VPSes of the provider is contained like
# any other (the exclude does not apply to destinations that are VPSes, or
# a config excluding registered VPSes' addresses is refused).
# Seen on main (LAB_PREFIX=pchr): `check` accepts the config (vps-201 at
# 198.51.100.10 registered); nmap -sS -T4 port 22 over 171 hosts of the
# range: 171 of 171 probes out, no incident, no hold.
# Closed: `portcullis check` refuses it (and the detector counts
# contacts to VPSes in an excluded range).
# Usage: scan_exclude_neighbours.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_PREFIX=${LAB_PREFIX:-pchr} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
. "$here/scanlab.sh"
sl_up "$1" "$2" nostart
sed -i 's|^    exclude: \[\]|    exclude: [198.51.100.0/24]|' "$PC_CFG"
check "(the lab config excludes 198.51.100.0/24)" grep -q "exclude: \[198.51.100.0/24\]" "$PC_CFG"
# shellcheck disable=SC2046
pc vps add vps-201 --site lenoir --owner bo@example.net $(pc_vps_link VPS201) --by lab >/dev/null 2>&1
if pc check >"$LAB_DIR/log/check.log" 2>&1; then
        echo "     portcullis check accepts it: $(tail -1 "$LAB_DIR/log/check.log")"
else
        ok "portcullis check refuses an exclude covering vps-201's address: $(tail -1 "$LAB_DIR/log/check.log")"
        lab_summary
        exit $?
fi
check "agent starts" agent_start
# the rest of the customer range sits behind inet (absent hosts)
ip -n "$LAB_HV" route add 198.51.100.0/24 via "$LAB_INET_V4"
for i in $(seq 30 200); do ip -n "$LAB_INET" addr add "198.51.100.$i/32" dev eth0; done
lab_exec inet nft -f - <<'NFT'
table ip silent {
        chain in {
                type filter hook input priority filter;
                ip daddr 198.51.100.0/24 tcp dport 22 drop
        }
}
NFT
cap=$(lab_capture inet eth0 nb "src host $VPS101_V4 and tcp[tcpflags] & tcp-syn != 0") || exit 1
lab_exec vps101 timeout 30 nmap -sS -T4 -Pn -n -p 22 --max-retries 0 198.51.100.30-200 >/dev/null 2>&1
capture_stop "$cap" 1
n=$(distinct "$LAB_DIR/nb.pcap" "src host $VPS101_V4")
sleep 2
echo "     $n distinct probes to other customers' range got out; scan incidents: $(incidents vps-101 scan)"
check "the neighbour sweep: at most 10 distinct probes ($n)" test "$n" -le 10
check "... and vps-101 is filtered" filtered "$VPS101_IF"
lab_summary
