#!/bin/bash
# Lab scenario (step 9): what scan containment leaves alone.  Destinations
# in detectors.scan.exclude (the provider's resolvers, its own ranges) are
# no first contacts: a VPS sweeps them freely and no incident opens.  A VPS
# with an exception for scanning (an approved audit, `exception grant ID
# scanning`) is neither held back nor detected while it lasts; the kernel
# ends the exception on time even with the agent stopped, and a revoked one
# ends at once.
# Usage: scan_exceptions.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
export LAB_PREFIX=${LAB_PREFIX:-pcsx} LAB_QUIET=1
. "$here/lab.sh"
. "$here/common.sh"
. "$here/hostile/scanlab.sh"
sl_up "$1" "$2" nostart
# the "provider's own range": 16 of the absent hosts
sed -i 's|^    exclude: .*|    exclude: [192.0.2.128/28, 2001:db8:fffe::/48]|' "$PC_CFG"
# the ladder's first step shortened, so that a detector's filter ends
# within the scenario (while the agent is down)
sed -i 's|^  steps: .*|  steps: [30s, 24h, suspend]|' "$PC_CFG"
# and holds of 20 s, so that the scanner's hold is over when its filter is
sed -i 's|^    hold-timeout: .*|    hold-timeout: 20s|' "$PC_CFG"
check "the config names the excluded range" pc check
check "agent starts" agent_start
excepted() { nft_hv list set inet portcullis scan_excepted 2>/dev/null | grep -q "\"$1\""; }
excepted_until() { nft_hv list set inet portcullis scan_excepted 2>/dev/null | grep -q "\"$1\" timeout"; }
check "the kernel has the excluded range" sh -c "ip netns exec $LAB_HV nft list set inet portcullis scan_exclude4 | grep -q '192.0.2.128/28'"

# sweep VPS FIRST LAST TAG: nmap -sS port 80 over 192.0.2.FIRST-LAST (absent
# hosts); prints the distinct probes that reached the internet
sweep() {
        local V addr cap
        V=$(_lab_var "$1")
        addr=${V}_V4
        cap=$(lab_capture inet eth0 "$4" "src host ${!addr} and tcp") || return 1
        lab_exec "$1" timeout 15 nmap -sS -T4 -Pn -n -p 80 --max-retries 0 "192.0.2.$2-$3" >/dev/null 2>&1
        capture_stop "$cap" 1
        distinct "$LAB_DIR/$4.pcap" "src host ${!addr} and tcp[tcpflags] & tcp-syn != 0"
}

echo "# vps-101 sweeps the excluded range (16 hosts)"
p=$(sweep vps101 128 143 excl)
echo "     $p distinct probes reached them"
check "all 16 probes reached the excluded hosts ($p)" test "$p" = 16
sleep 2
check "... no scan incident" test "$(incidents vps-101 scan)" = 0
check_not "... vps-101 is not held back" held "$VPS101_IF"
check_not "... nor filtered" filtered "$VPS101_IF"
echo "# ... and then 32 hosts outside it"
p=$(sweep vps101 160 191 out)
check "outside the range it is held back after 5 ($p)" test "$p" -le 10
check "... and filtered" wait_for 5 filtered "$VPS101_IF"
check "... for the ladder's first step (30 s)" test \
        "$(sql "SELECT count(*) FROM action WHERE vps_id='vps-101' AND kind='filter' AND lifted_at IS NULL AND until - created BETWEEN 29 AND 31")" = 1

echo "# vps-202: an approved audit (exception for scanning, 20 s)"
check "the exception is granted" pc exception grant vps-202 scanning --until +20s --by lab --reason "lab: approved audit"
check "... and listed" sh -c "ip netns exec $LAB_HV $PC_BIN -c $PC_CFG exception list vps-202 | grep -q 'scanning'"
check "the kernel has it, with its end" wait_for 3 excepted_until "$VPS202_IF"
p=$(sweep vps202 128 254 audit)
echo "     $p distinct probes of 127 reached the internet"
check "every probe of the audit left ($p)" test "$p" -ge 120
sleep 2
check "... no scan incident" test "$(incidents vps-202 scan)" = 0
check_not "... not filtered" filtered "$VPS202_IF"

echo "# the exception and vps-101's filter end in the kernel with the agent killed"
agent_kill
check "the exception's element is gone on time" wait_for 25 sh -c "! ip netns exec $LAB_HV nft list set inet portcullis scan_excepted | grep -q '\"$VPS202_IF\"'"
p=$(sweep vps202 192 223 after)
check "the next sweep is held back after 5 ($p)" test "$p" -le 10
check "vps-101's filter is gone from the kernel on time" wait_for 25 sh -c "! ip netns exec $LAB_HV nft list set inet portcullis filter_out | grep -q '\"$VPS101_IF\"'"
# (its first contacts may still be held back for what is left of the
# hold, which began with the sweep)
check "... and vps-101 reaches the web again, the agent still down" \
        wait_for 20 lab_exec vps101 curl -sf --max-time 2 "http://$LAB_INET_V4/"
check "agent restarts" agent_start
check_not "... and does not put the ended exception back" excepted "$VPS202_IF"
check_not "... nor the ended filter" filtered "$VPS101_IF"
show=$(pc vps show vps-101)
echo "$show" | sed 's/^/     /' | head -12
check "vps show: vps-101 is active, with no filter in force" grep -q "active" <<<"$show"
check "action list: the filter expired" sh -c "ip netns exec $LAB_HV $PC_BIN -c $PC_CFG action list vps-101 | grep -q expired"

echo "# a revoked exception ends at once"
check "vps-101 is granted an audit" pc exception grant vps-101 scanning --by lab --reason "lab: approved audit"
check "... in the kernel" wait_for 3 excepted "$VPS101_IF"
check "... and revoked" pc exception revoke vps-101 scanning --by lab --reason "lab: audit over"
check "... gone from the kernel" wait_for 3 sh -c "! ip netns exec $LAB_HV nft list set inet portcullis scan_excepted | grep -q '\"$VPS101_IF\"'"
lab_summary
