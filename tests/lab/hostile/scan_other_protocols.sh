#!/bin/bash
# Hostile review (scan containment): the kernel's containment (scan_contain)
# returns at once for anything but TCP and UDP ("other protocols have no
# ports to count"), and the agent ignores every conntrack event but TCP's and
# UDP's.  So a port scan over SCTP (nmap -sY, INIT to each port: SCTP has
# ports, and conntrack tracks it) and a host sweep over ICMP (nmap -sn -PE)
# reach every target, are never held back and are never an incident.
# Goal under test: at most 10 distinct probes of a scanner reach the internet.
# Usage: scan_other_protocols.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_PREFIX=${LAB_PREFIX:-pch9} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
. "$here/scanlab.sh"
sl_up "$1" "$2"

echo "# nmap -sY: SCTP INIT scan of 127 absent hosts, port 80"
cap=$(lab_capture inet eth0 sctp "src host $VPS101_V4 and ip proto 132") || exit 1
lab_exec vps101 timeout 30 nmap -sY -T4 -Pn -n -p 80 --max-retries 0 192.0.2.128-254 >"$LAB_DIR/log/sctp.log" 2>&1
capture_stop "$cap" 1
p=$(distinct "$LAB_DIR/sctp.pcap" "src host $VPS101_V4")
echo "     $p distinct SCTP probes reached the internet"
check "SCTP scan: at most 10 distinct probes reached the internet ($p)" test "$p" -le 10
check "SCTP scan: vps-101 is filtered or held" ip netns exec "$LAB_HV" sh -c "nft list set inet portcullis filter_out | grep -q '\"$VPS101_IF\"' || nft list set inet portcullis scan_hold | grep -q '\"$VPS101_IF\"'" 

echo "# nmap -sn -PE: ICMP echo sweep of 127 absent hosts (from vps-202)"
cap=$(lab_capture inet eth0 icmp "src host $VPS202_V4 and icmp") || exit 1
lab_exec vps202 timeout 30 nmap -sn -PE -T4 -n --max-retries 0 192.0.2.128-254 >"$LAB_DIR/log/icmp.log" 2>&1
capture_stop "$cap" 1
p=$(distinct "$LAB_DIR/icmp.pcap" "src host $VPS202_V4")
echo "     $p distinct ICMP probes reached the internet"
check "ICMP sweep: at most 10 distinct probes reached the internet ($p)" test "$p" -le 10
check "either one is a scan incident" test "$(sql "SELECT count(*) FROM incident WHERE kind='scan'")" -ge 1
lab_summary
