#!/bin/bash
# Hostile review (false positive, data loss): the detector remembers a
# destination for contact-memory since it was LAST reached (a repeat moves
# last_ms), but the kernel's @contacts4/6 element is looked up, never
# refreshed (`... @contacts4 return`): it expires contact-memory after the
# FIRST contact, however busy the destination is.  A VPS that polls the
# same hosts all the time (SNMP, a monitoring system, statsd or syslog to
# several collectors, a DNS client with several resolvers) finds every one
# of them a first contact again in the kernel at each expiry, all at once:
# past the budget the kernel holds the VPS, the agent (to which they are
# repeats) releases it, and meanwhile the datagrams are dropped -- UDP is
# not retransmitted by the kernel (TCP pays a 1 s retransmission).  Here
# contact-memory is 12 s (10 min shipped: the same every 10 minutes), and
# vps-101 asks 20 hosts' udp/5000 (they all answer), a new socket per
# poll as SNMP and DNS clients do, every 2 s for 32 s.  The first burst's
# hold is by design and not counted.  Fix: refresh the element on use
# (`update @contacts4 { ... }` instead of a lookup), as the detector does.
# Goal under test: a VPS that only talks to destinations it reaches
# continuously, all answering, never loses a datagram to containment.
# Seen on main (LAB_PREFIX=pchr): after the first burst, 4 more holds in
# 50 s and 2 rounds (at 46 s and 48 s) with 5 of 20 answers lost; no
# incident.
# Closed: repeat contacts refresh their element (`... @contacts4 update
# @contacts4 { ... } return`).
# Usage: scan_contact_memory_drift.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_PREFIX=${LAB_PREFIX:-pchr} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
. "$here/scanlab.sh"
sl_up "$1" "$2" nostart
sed -i 's|^    contact-memory: 10m|    contact-memory: 12s|' "$PC_CFG"
check "(the lab config's contact-memory is 12 s)" grep -q "contact-memory: 12s" "$PC_CFG"
check "agent starts" agent_start
# 20 hosts answering udp/5000, each from its own address
lab_bg responders inet "$PY" -c '
import selectors, socket
sel = selectors.DefaultSelector()
for i in range(10, 30):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("192.0.2.%d" % i, 5000))
    sel.register(s, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for k, _ in sel.select():
        d, a = k.fileobj.recvfrom(100); k.fileobj.sendto(b"ok", a)
' >/dev/null
wait_for 5 grep -q ready "$LAB_DIR/log/responders.log" || fail "the responders listen"
# the holds of the first burst (20 new hosts, a budget of 5: several)
(sleep 10; grep -c 'holds back' "$LAB_DIR/log/portcullisd.log" >"$LAB_DIR/holds-10s") &
lab_exec vps101 timeout 70 "$PY" -c '
import select, socket, time
hosts = ["192.0.2.%d" % i for i in range(10, 30)]
lost = []
t0 = time.monotonic()
rnd = 0
while time.monotonic() - t0 < 32:
    socks = []
    for h in hosts:                   # a new socket per poll, as SNMP and DNS clients do
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect((h, 5000)); s.send(b"poll")
        socks.append(s)
    got, deadline = set(), time.monotonic() + 1.5
    while len(got) < len(hosts) and time.monotonic() < deadline:
        r, _, _ = select.select(socks, [], [], 0.1)
        for s in r:
            try:
                s.recv(100); got.add(s.getpeername()[0])
            except OSError:
                pass
    for s in socks:
        s.close()
    at = time.monotonic() - t0
    if len(got) < len(hosts) and at > 8:   # after the first burst (held by design)
        lost.append("round %d at %.0f s: %d of %d unanswered" % (rnd, at, len(hosts) - len(got), len(hosts)))
    rnd += 1
    time.sleep(max(0, t0 + 2 * rnd - time.monotonic()))
print("rounds %d, rounds with losses after the first 8 s %d" % (rnd, len(lost)))
print("\n".join(lost))
' >"$LAB_DIR/log/poll.log" 2>&1
sed 's/^/     /' "$LAB_DIR/log/poll.log"
echo "     holds: $(grep -c 'holds back' "$LAB_DIR/log/portcullisd.log"); scan incidents: $(incidents vps-101 scan)"
check "no poll round after the first burst lost a datagram" grep -q "rounds with losses after the first 8 s 0$" "$LAB_DIR/log/poll.log"
check "... and vps-101 was not held after the first burst ($(cat "$LAB_DIR/holds-10s") in the first 10 s)" \
        test "$(grep -c 'holds back' "$LAB_DIR/log/portcullisd.log")" = "$(cat "$LAB_DIR/holds-10s")"
lab_summary
