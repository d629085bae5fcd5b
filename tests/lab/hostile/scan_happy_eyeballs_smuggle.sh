#!/bin/bash
# Hostile review (confirmation, credits, Happy Eyeballs): a failed IPv6
# first contact followed within 300 ms by an answered IPv4 one to the same
# port is "one site reached" (fallback() in detect/scan.c): neither counts,
# in the walk or in the slow test.  The IPv4 answer must be a credited
# success, and DETECTION.md says "a scanner pairing its IPv6 probes with its
# own server needs one host per probe".  It does not: credits are a ring of
# 64 hosts, so 65 IPv4 addresses answering on every port, used in turn,
# are each a fresh success again by the time they come round.  A scanner
# with such a server (a /26 and one more address -- or any 65 public
# servers answering on the port it scans) sends, per IPv6 probe, one IPv4
# connection to host i mod 65 on the same port 20 ms later.  Every IPv6
# probe that times out is paired away: the walk never moves, the slow test
# never sees a failure, and Weaver's count C stays at 0-2, so the agent
# refills the kernel's budget at every answer and nothing is ever held.
# Goal under test: a scanner gets at most about 100 distinct probes out an
# hour (the slow test's threshold; the fast test's is 5-10), whatever it
# pads them with.
# Seen on main (LAB_PREFIX=pchr1): 300 of 300 IPv6 probes (ports 1000-1299
# of one silent host) reached the internet in 33 s, no scan incident, never
# held, no filter, not one agent log line about vps-101; control: the same
# scan unpaired from vps-202, 5 of 50 out, an incident.
# Possible fix: a pairing needs the IPv4 answer from a host that this VPS's
# IPv6 attempt could be the same site as -- at least not one used for
# another pairing within contact-memory -- and pairings should be capped
# per walk/window (a browser falls back to IPv4 for a handful of sites a
# minute, not hundreds); or count a paired IPv6 failure in the slow test.
# Usage: scan_happy_eyeballs_smuggle.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_PREFIX=${LAB_PREFIX:-pchr} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
. "$here/scanlab.sh"
sl_up "$1" "$2"
# the scanner's own server: 65 IPv4 addresses 192.0.2.10-74 answering on
# every TCP port; the target: 2001:db8:ffff::99, silent
for i in $(seq 60 74); do ip -n "$LAB_INET" addr add "192.0.2.$i/32" dev eth0; done
ip -n "$LAB_INET" addr add "2001:db8:ffff::99/128" dev eth0 nodad
lab_exec inet nft -f - <<'NFT'
table ip pad {
        chain pre {
                type nat hook prerouting priority dstnat;
                ip daddr 192.0.2.10-192.0.2.74 tcp dport != 80 redirect to :80
        }
}
table ip6 silent {
        chain in {
                type filter hook input priority filter;
                ip6 daddr 2001:db8:ffff::99 drop
        }
}
NFT
check "(control: 192.0.2.74 answers on any port)" tcp_open vps202 192.0.2.74 4321
N=${PROBES:-100}
cap=$(lab_capture inet eth0 he6 "ip6 and dst host 2001:db8:ffff::99 and tcp") || exit 1
scan() { # NS N PAIRED FIRST_PORT
        lab_exec "$1" timeout 120 "$PY" -c '
import resource, socket, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
n, paired, first = int(sys.argv[1]), sys.argv[2] == "1", int(sys.argv[3])
keep = []
t0 = time.time()
for k in range(n):
    port = first + k
    s = socket.socket(socket.AF_INET6); s.setblocking(False)
    s.connect_ex(("2001:db8:ffff::99", port)); keep.append(s)
    if paired:
        time.sleep(0.02)
        a = socket.socket(); a.setblocking(False)
        a.connect_ex(("192.0.2.%d" % (10 + k % 65), port)); keep.append(a)
    time.sleep(0.08)
print("sent %d probes in %.1f s" % (n, time.time() - t0), flush=True)
time.sleep(3)
' "$2" "$3" "$4"
}
t0=$(lab_now_ms)
scan vps101 "$N" 1 1000 >"$LAB_DIR/log/he6.log" 2>&1
t1=$(lab_now_ms)
sleep 3
capture_stop "$cap" 1
p=$(distinct "$LAB_DIR/he6.pcap" "ip6 and src host $VPS101_V6")
sed 's/^/     /' "$LAB_DIR/log/he6.log"
echo "     paired: $p of $N distinct IPv6 probes reached the internet in $((t1 - t0)) ms;" \
     "scan incidents: $(incidents vps-101 scan); filtered: $(filtered "$VPS101_IF" && echo yes || echo no)"
grep -c 'vps-101' "$LAB_DIR/log/portcullisd.log" | sed 's/^/     agent log lines about vps-101: /'
grep 'vps-101' "$LAB_DIR/log/portcullisd.log" | tail -3 | sed 's/^/       /'
# control: the same scan, unpaired, from vps-202
cap=$(lab_capture inet eth0 he6c "ip6 and dst host 2001:db8:ffff::99 and tcp") || exit 1
scan vps202 50 0 5000 >/dev/null 2>&1
capture_stop "$cap" 1
c=$(distinct "$LAB_DIR/he6c.pcap" "ip6 and src host $VPS202_V6")
echo "     control, unpaired from vps-202: $c of 50 out; scan incidents $(incidents vps-202 scan)"
check "(control: the unpaired scan is held back: at most 10 out)" test "$c" -le 10
check "paired with 65 answering IPv4 hosts: at most 100 distinct IPv6 probes out ($p of $N)" test "$p" -le 100
check "... and vps-101 has a scan incident" test "$(incidents vps-101 scan)" -ge 1
lab_summary
