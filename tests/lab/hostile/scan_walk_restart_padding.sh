#!/bin/bash
# Hostile review (scan containment): "successes count once per host" holds
# within one walk only.  When Λ falls to the benign threshold the walk
# restarts (walk_restart), and with it the list of hosts already credited.
# A scanner with 8 hosts of its own that answer on every TCP port (a second
# VPS elsewhere with a /29, or one IPv6 /64 server with AnyIP) repeats:
#   8 first contacts to its own hosts (new port each time): 8 successes,
#   Λ reaches -4.6 twice, the walk restarts at 0 (and C, Weaver's count,
#   is 0: the agent refills the kernel's budget);
#   4 real probes to targets, then it waits 3 s (pending-timeout 2 s) for
#   them to count as failed: Λ = 4 x 1.386 = 5.5, under ln(β/α) = 6.9.
# Λ never reaches the threshold, C never reaches the budget: the fast test
# never fires and the kernel never holds the VPS; 4 probes get out per
# cycle (about 4 s), about 60 a minute, until the slow test's 100 distinct
# failures in its hour-long window.  Goal under test: a scanner gets at
# most 10 distinct probes to the internet before it is held back and
# filtered, however it pads them with answered contacts.
# Seen on main (LAB_PREFIX=pchr, 15 cycles): 60 of 60 probes reached the
# internet in 61.5 s, no scan incident, no filter; the kernel held the VPS
# and the agent released it 29 times (its own hosts' answers), which only
# cost the padding connections a SYN retransmission each time.
# Fixed: a host pays once per contact memory, not once per walk: 8 probes
# out, then an incident and the filter.
# Usage: scan_walk_restart_padding.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_PREFIX=${LAB_PREFIX:-pchr} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
. "$here/scanlab.sh"
sl_up "$1" "$2"
# the customer's own 8 hosts: every TCP port of 192.0.2.10-17 answers
lab_exec inet nft -f - <<'NFT'
table ip pad {
        chain pre {
                type nat hook prerouting priority dstnat;
                ip daddr 192.0.2.10-192.0.2.17 tcp dport != 80 redirect to :80
        }
}
NFT
check "(control: 192.0.2.17 answers on any port)" tcp_open vps202 192.0.2.17 4321

cycles=${CYCLES:-5}
cap=$(lab_capture inet eth0 pad "src host $VPS101_V4 and tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack == 0") || exit 1
t0=$(lab_now_ms)
ip netns exec "$(lab_ns vps101)" timeout 100 "$PY" -c '
import socket, sys, time
cycles = int(sys.argv[1])
bad = []
n = 0
for cyc in range(cycles):
    for h in range(8):                     # 8 successes: the walk restarts
        g = socket.socket(); g.settimeout(2)   # one SYN retransmission
        try:
            g.connect(("192.0.2.%d" % (10 + h), 2000 + cyc)); g.close()
        except OSError as e:
            print("own host %d: %s" % (h, e), flush=True)
    for k in range(4):                     # 4 real probes
        b = socket.socket(); b.setblocking(False)
        b.connect_ex(("192.0.2.%d" % (128 + n % 127), 80 + n // 127))
        bad.append(b); n += 1
    time.sleep(3)                          # they count as failed
print("sent %d probes" % n, flush=True)
' "$cycles" >"$LAB_DIR/log/pad.log" 2>&1 &
sp=$!
# once filtered nothing more gets out: the rest of its run proves nothing
wait_for 100 filtered "$VPS101_IF"
sleep 2
kill "$sp" 2>/dev/null
wait "$sp" 2>/dev/null
t1=$(lab_now_ms)
capture_stop "$cap" 1
p=$(distinct "$LAB_DIR/pad.pcap" "src host $VPS101_V4 and not dst net 192.0.2.0/27")
holds=$(grep -c "held\|hold" "$LAB_DIR/log/portcullisd.log")
sed 's/^/     /' "$LAB_DIR/log/pad.log"
echo "     $p distinct probes reached the internet in $((t1 - t0)) ms;" \
     "scan incidents: $(incidents vps-101 scan); agent log lines about holds: $holds"
check "padded scan with 8 own hosts: at most 10 distinct probes reached the internet ($p)" test "$p" -le 10
check "... and vps-101 is filtered" filtered "$VPS101_IF"
lab_summary
