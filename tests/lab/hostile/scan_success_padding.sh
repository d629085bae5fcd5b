#!/bin/bash
# Hostile review (scan containment): the Threshold Random Walk needs about 5
# *net* failures (failures minus successes), and every answered first
# contact takes 2 off the hold budget's C and refills the kernel's budget
# (refill_maybe: C*2 < hold-after).  A scanner that pairs each probe with a
# first contact to its own server (here 192.0.2.10, which answers TCP on
# every port, as any host of the customer's can) keeps Λ between 0 and one
# step, is never held for long and never a FAST finding: only the slow test
# (100 distinct failures per hour) stops it.  Measured: how many distinct
# probes to absent hosts reach the internet before vps-101 is filtered.
# Usage: scan_success_padding.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_PREFIX=${LAB_PREFIX:-pch9} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
. "$here/scanlab.sh"
sl_up "$1" "$2"
# the customer's own server: every TCP port of 192.0.2.10 answers
lab_exec inet nft -f - <<'NFT'
table ip pad {
        chain pre {
                type nat hook prerouting priority dstnat;
                ip daddr 192.0.2.10 tcp dport != 80 redirect to :80
        }
}
NFT
check "(control: 192.0.2.10 answers on any port)" tcp_open vps202 192.0.2.10 4321

cap=$(lab_capture inet eth0 pad "src host $VPS101_V4 and tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack == 0") || exit 1
t0=$(lab_now_ms)
lab_exec vps101 timeout 120 "$PY" -c '
import errno, socket, time
fails = []
for i in range(300):
    good = socket.socket(); good.settimeout(2)
    try:
        good.connect(("192.0.2.10", 2000 + i)); good.close()
    except OSError:
        pass  # held back, or filtered at last
    bad = socket.socket(); bad.setblocking(False)
    bad.connect_ex(("192.0.2.%d" % (128 + i % 127), 80 + i // 127))
    fails.append(bad)
    time.sleep(0.05)
' >"$LAB_DIR/log/pad.log" 2>&1 &
sp=$!
wait_for 120 filtered "$VPS101_IF"
t1=$(lab_now_ms)
kill "$sp" 2>/dev/null; wait "$sp" 2>/dev/null
capture_stop "$cap" 1
p=$(distinct "$LAB_DIR/pad.pcap" "src host $VPS101_V4 and not dst host 192.0.2.10")
ev=$(sql "SELECT evidence FROM incident WHERE vps_id='vps-101' AND kind='scan'")
echo "     $p distinct probes to absent hosts reached the internet in $((t1 - t0)) ms; evidence: $ev"
check "padded scan: at most 10 distinct probes reached the internet ($p)" test "$p" -le 10
check "padded scan: vps-101 filtered within a minute (a suspect at once, held back, confirmed by the 20 contacts it goes on trying: one a second, as each held connect waits 2 s)" test $((t1 - t0)) -lt 60000
lab_summary
