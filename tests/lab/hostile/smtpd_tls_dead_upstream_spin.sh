#!/bin/bash
# Hostile review 3 (conn.c): a VPS that picks its own MX spins the proxy's
# only thread at 100% CPU, for every VPS on the hypervisor, as long as it
# keeps one session open (client-write, 5 min by default, restarted by each
# byte it reads; lifetime, 1 h).
#
# With `upstream-tls: opportunistic` the MX (the VPS's accomplice: any
# address on the internet) offers STARTTLS, says 220 to the proxy's
# STARTTLS and then never answers the ClientHello.  conn_handshake() left
# tls_wants_read set; upstream-timeout ends the upstream leg
# (upstream_lost: "failed the TLS handshake (no answer)"), which disarms it
# with conn_arm(false, false) -- but conn_arm() adds what TLS last wanted,
# so the read event stays added.  The socket is not closed until the
# session is freed, and the session lives on while its 421 waits for a
# client that does not read.  Once the MX closes (or sends a byte), the
# socket is readable for good: the level-triggered persistent event fires
# on every pass of the loop, upstream_event() sees upstream_dead and
# returns, and the loop goes round again.
#
# The client holds its replies unread: it asks HELP (the MX answers each
# with ~7 KB) before its EHLO so that the proxy's socket buffer towards it
# is full and the 421 stays in the proxy's own buffer.  How much the kernel
# takes is not known in advance, so four sessions try four amounts.
# Exits non-zero while the hole exists.
# Usage: smtpd_tls_dead_upstream_spin.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_PREFIX=${LAB_PREFIX:-hs} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
PY=/usr/bin/python3
lab_deps || exit 1
lab_up --trap || { echo "FAIL lab_up"; exit 1; }
pc_setup "$1" "$2"

# Provider A's profile with TLS to the MX and short timeouts, at its own site.
sed -e "s/^profile: lenoir/profile: lenoir-spin/" \
    -e "s/upstream-tls: off/upstream-tls: opportunistic/" \
    -e "s/^    upstream: .*/    upstream: 2s/" \
    -e "s/^    client-write: .*/    client-write: 25s/" -e "s/^    lifetime: .*/    lifetime: 40s/" \
    "$PC_ROOT/etc/profiles/lenoir.yaml" >"$LAB_DIR/spin.yaml"
sed -i -e "s|^  - $PC_ROOT/etc/profiles/blocked-services.yaml|&\n  - $LAB_DIR/spin.yaml|" \
       -e "s|^sites:|&\n  spin:\n    policy: lenoir-spin|" "$PC_CFG"
check "the config with the spin profile loads" pc check
pc_proxied_vps101 spin

# The accomplice's MX at 192.0.2.27 (postfix keeps the rest of port 25).
ip -n "$LAB_INET" addr add 192.0.2.27/24 dev eth0
lab_exec inet nft -f - <<'EOF'
table ip labspin {
        chain pre {
                type nat hook prerouting priority -100;
                ip daddr 192.0.2.27 tcp dport 25 redirect to :2527
        }
}
EOF
cat >"$LAB_DIR/spin_mx.py" <<'PY'
import socket, threading, time
help_reply = b"".join(b"214-help %02d %s\r\n" % (i, b"h" * 100) for i in range(59)) + b"214 end\r\n"
def serve(c):
    try:
        c.sendall(b"220 spin.example ESMTP\r\n")
        f = c.makefile("rb")
        for line in f:
            verb = line.strip().upper()
            if verb == b"HELP":
                c.sendall(help_reply)
            elif verb.startswith(b"EHLO"):
                c.sendall(b"250-spin.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
            elif verb == b"STARTTLS":
                c.sendall(b"220 2.0.0 Ready to start TLS\r\n")
                c.recv(4096)      # the ClientHello, never answered
                time.sleep(4)     # past the proxy's upstream timeout (2 s)
                break             # then close: the proxy's socket is readable for good
    except OSError:
        pass
    c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 2527))
s.listen(16)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
cat >"$LAB_DIR/spin_client.py" <<'PY'
import socket, sys, time
socks = []
for n in (8, 12, 16, 20):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    s.connect((sys.argv[1], 25))
    s.sendall(b"HELP\r\n" * n + b"EHLO vps.example\r\n")
    socks.append(s)
print("connected", flush=True)
time.sleep(float(sys.argv[2]))   # never reads
PY
lab_bg spin_mx inet "$PY" "$LAB_DIR/spin_mx.py" >/dev/null
lab_wait_port inet 192.0.2.27 2527 5 >/dev/null 2>&1

ticks() { awk '{ print $14 + $15 }' "/proc/$SMTPD_PID/stat"; }
hz=$(getconf CLK_TCK)
idle0=$(ticks); sleep 3; idle1=$(ticks)
echo "     proxy CPU before: $(( (idle1 - idle0) * 100 / (3 * hz) ))% of a core"
client=$(lab_bg spin_client vps101 "$PY" "$LAB_DIR/spin_client.py" 192.0.2.27 22)
sleep 7 # 2 s to the upstream timeout, 4 s to the MX's close
t0=$(ticks); sleep 5; t1=$(ticks)
pct=$(( (t1 - t0) * 100 / (5 * hz) ))
echo "     proxy CPU with the sessions of a dead TLS upstream: ${pct}% of a core over 5 s"
# The state itself: sessions still open whose MX has closed (the proxy's
# upstream sockets in CLOSE-WAIT), else the check proves nothing.
held=$(ip netns exec "$LAB_HV" ss -Htan state close-wait dst 192.0.2.27 | wc -l)
echo "     upstream sockets the MX closed, held by open sessions: $held"
check "(control: at least one session reached the state: $held)" test "$held" -ge 1
check "the proxy does not spin on an upstream it gave up (${pct}% of a core, want < 30%)" test "$pct" -lt 30
kill "$client" 2>/dev/null
check "the proxy is still running" kill -0 "$SMTPD_PID"
lab_summary
