#!/bin/bash
# Hostile review (scan containment): what counts as an answer is whatever
# conntrack sees come back on the VPS's flow, and anyone on the internet
# can send that.  The scanner's accomplice (a host anywhere that can forge
# source addresses, as in open/scan_inbound_primer.sh, but here the VPS's
# flows are its own, opened first and contained) follows the scan's
# schedule and forges one datagram TARGET:161 -> VPS:40000 right after
# each probe.  Each probe is then an answered first contact of a new host:
# a credited success (ln 0.25 off Λ), C goes down by 2 and the agent keeps
# refilling the kernel's budget.  Nothing is ever held, the walk only ever
# restarts benign, and no failure reaches the slow test either: the scan
# is unlimited, and the targets' real answers come back too.  (For TCP the
# accomplice must also get the SYN's sequence number right, which a
# stateless scanner choosing its own sequence numbers, as masscan does,
# shares with it.)  Not closed by the primer's fix (flows that start
# inbound): these start outbound.
# Goal under test: at most 10 distinct probes of a UDP sweep of 127 absent
# hosts reach the internet, whatever comes back from the internet.
# Seen on main (LAB_PREFIX=pchr): control 5 of 127 out; with forged
# answers 127 of 127 out at 20 probes/s, no incident, never held (the one
# hold in the log is the control's).
# Usage: scan_forged_answers.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/../..
export LAB_PREFIX=${LAB_PREFIX:-pchr} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
. "$here/../scanlab.sh"
sl_up "$1" "$2"
sweep() { # VPS_NS VPS_ADDR FORGE(0/1): 127 probes to 192.0.2.128-254:161 from port 40000
        "$PY" -c '
import ctypes, os, socket, struct, sys, time
libc = ctypes.CDLL("libc.so.6", use_errno=True)
def enter(ns):
    fd = os.open("/run/netns/" + ns, os.O_RDONLY)
    if libc.setns(fd, 0) != 0:
        raise OSError(ctypes.get_errno(), "setns " + ns)
    os.close(fd)
vps_ns, inet_ns, vps_addr, forge = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
enter(vps_ns)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 40000))
enter(inet_ns)                     # the accomplice, somewhere on the internet
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
def csum(b):
    if len(b) % 2:
        b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xffff); t += t >> 16
    return ~t & 0xffff
def forged(src, dst, sport, dport, data):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return ip + udp
for i in range(128, 255):
    t = "192.0.2.%d" % i
    s.sendto(b"\x30\x26probe", (t, 161))
    if forge:
        time.sleep(0.01)
        raw.sendto(forged(t, vps_addr, 161, 40000, b"\x30\x26reply"), (vps_addr, 0))
    time.sleep(0.04)
' "$(lab_ns "$1")" "$LAB_INET" "$2" "$3"
}
echo "# control: vps-202 sweeps udp/161 of 127 absent hosts, nothing comes back"
cap=$(lab_capture inet eth0 control "src host $VPS202_V4 and udp") || exit 1
sweep vps202 "$VPS202_V4" 0
capture_stop "$cap" 1
c=$(distinct "$LAB_DIR/control.pcap" "src host $VPS202_V4")
echo "     $c distinct probes reached the internet"
check "(control: the sweep is contained: $c <= 10)" test "$c" -le 10

echo "# vps-101 sweeps the same; its accomplice forges an answer from each target"
cap=$(lab_capture inet eth0 forged "src host $VPS101_V4 and udp") || exit 1
sweep vps101 "$VPS101_V4" 1
capture_stop "$cap" 3
p=$(distinct "$LAB_DIR/forged.pcap" "src host $VPS101_V4")
echo "     $p distinct probes reached the internet; scan incidents: $(incidents vps-101 scan);" \
     "holds: $(grep -c 'holds back' "$LAB_DIR/log/portcullisd.log")"
check "forged answers: at most 10 distinct probes reached the internet ($p)" test "$p" -le 10
check "... and vps-101's scan is an incident" test "$(incidents vps-101 scan)" -ge 1
lab_summary
