#!/bin/bash
# Lab scenario: portcullis-smtpd under attack (docs/SMTPD.md, "Hostile
# peers").  Each part is a finding of a security review, tested by outcome:
#   - privileges: its own user, no write-capable descriptor on the database;
#   - local destinations: a VPS cannot make the proxy connect to loopback,
#     the hypervisor's own addresses or an internal prefix;
#   - memory: an MX streaming 220- lines to 20 sessions of a VPS that never
#     reads leaves the proxy's RSS under a bound, other mail still flows,
#     and the sessions end (client-write timeout, lifetime);
#   - logs: a flood of refused connections gives a bounded number of lines
#     plus a summary with the right count;
#   - the agent tells the proxy to reload when it starts.
# Usage: smtpd_hostile.sh BUILD_DIR SOURCE_ROOT
# Builds its own namespaces (prefix sdh) and removes them however it ends.
set -u
here=$(dirname "$(readlink -f "$0")")
export LAB_PREFIX=${LAB_PREFIX:-sdh} LAB_QUIET=1
. "$here/lab.sh"
. "$here/common.sh"

RSS_BOUND_KB=65536       # docs/SMTPD.md: the proxy under the hostile MX
LOG_BURST=10             # refusal lines per VPS (or unknown source) per window
LOG_WINDOW=10            # seconds

lab_deps || exit 1
lab_up --trap || { echo "FAIL lab_up"; exit 1; }
pc_setup "$1" "$2"
smtpd_user_ensure

# A copy of provider A's profile with short client-write and lifetime
# timeouts at its own site, for vps-101 (the hostile client).
sed -e "s/^profile: lenoir/profile: lenoir-short/" \
    -e "s/^    client-write: .*/    client-write: 3s/" -e "s/^    lifetime: .*/    lifetime: 12s/" \
    "$PC_ROOT/etc/profiles/lenoir.yaml" >"$LAB_DIR/short.yaml"
sed -i -e "s|^  - $PC_ROOT/etc/profiles/blocked-services.yaml|&\n  - $LAB_DIR/short.yaml|" \
       -e "s|^sites:|&\n  short:\n    policy: lenoir-short|" \
       -e "s|^  internal-prefixes: .*|  internal-prefixes: [192.0.2.64/26, \"2001:db8:ffff::40/122\"]|" "$PC_CFG"
if ! pc check >/dev/null 2>&1; then
        fail "the config with client-write, lifetime and internal-prefixes loads: $(pc check 2>&1 | head -1)"
        # Go on without them, so that the rest still shows what it shows.
        sed -i -e '/client-write:/d' -e '/lifetime:/d' "$LAB_DIR/short.yaml"
        sed -i -e '/internal-prefixes:/d' "$PC_CFG"
else
        ok "the config with client-write, lifetime and internal-prefixes loads"
fi
chmod o+rx "$LAB_DIR" && chmod o+r "$PC_CFG" "$LAB_DIR/short.yaml" # reloads run unprivileged

pc vps add vps-101 --site short --owner ada@example.net --iface "$VPS101_IF" \
        --addr "$VPS101_V4NET" --addr "$VPS101_V6NET" --by lab >/dev/null 2>&1
pc vps add vps-202 --site lenoir --owner carla@example.it --iface "$VPS202_IF" \
        --addr "$VPS202_V4NET" --addr "$VPS202_V6NET" --by lab >/dev/null 2>&1
check "agent starts" agent_start
check "portcullis-smtpd starts" smtpd_start

echo "# privileges: the proxy cannot write the database"
db=$LAB_DIR/portcullis.db
read -r _ uid _ < <(grep '^Uid:' "/proc/$SMTPD_PID/status")
read -r _ gid _ < <(grep '^Gid:' "/proc/$SMTPD_PID/status")
check "it runs as its own system user, portcullis-smtpd" test "$uid" = "$(id -u portcullis-smtpd 2>/dev/null)"
check "... with no root uid or gid" test "$uid" != 0 -a "$gid" != 0
check "... and does not own the database" test "$uid" != "$(stat -c %u "$db")"
# What the kernel allows its credentials on each database file.
db_writable_by() { # UID GID FILE: the mode bits that apply give w
        local m u g
        read -r m u g < <(stat -c '%a %u %g' "$3")
        m=$((8#$m))
        if [ "$1" = "$u" ]; then ((m & 0200)); elif [ "$2" = "$g" ]; then ((m & 020)); else ((m & 02)); fi
}
for f in "$db" "$db-wal" "$db-shm"; do
        [ -e "$f" ] && check_not "the mode of $(basename "$f") denies the proxy's uid/gid writes" db_writable_by "$uid" "$gid" "$f"
done
# Every descriptor it holds on the database files was opened read-only.
db_fds() { # prints "PATH FLAGS" for each fd of the proxy on the database files
        local fd target
        for fd in /proc/"$SMTPD_PID"/fd/*; do
                target=$(readlink "$fd" 2>/dev/null) || continue
                case $target in "$db" | "$db-wal" | "$db-shm")
                        echo "$target $(awk '/^flags:/ {print $2}' "/proc/$SMTPD_PID/fdinfo/${fd##*/}")" ;;
                esac
        done
}
fds=$(db_fds)
echo "$fds" | sed 's/^/     fd on /'
check "it holds the database open" grep -q "portcullis.db " <<<"$fds"
check "no descriptor it holds on the db, -wal or -shm allows writing (O_RDONLY only)" \
        /usr/bin/python3 -c 'import sys; sys.exit(0 if all(int(l.split()[1], 8) & 3 == 0 for l in sys.argv[1].splitlines() if l) else 1)' "$fds"
check "it kept only CAP_NET_RAW" \
        test "$(awk '/^CapEff:/ {print $2}' "/proc/$SMTPD_PID/status")" = 0000000000002000

# The lifetime test runs in the background while the rest goes on: a
# session that stays busy (NOOP every second) is still ended at `lifetime`.
cat >"$LAB_DIR/busy.py" <<'PY'
import socket, sys, time
s = socket.create_connection((sys.argv[1], 25), timeout=30)
f = s.makefile("rb")
t0 = time.time()
print(f.readline().decode().strip(), flush=True)
while time.time() - t0 < 30:
    try:
        s.sendall(b"NOOP\r\n")
        line = f.readline().decode().strip()
    except OSError as e:
        line = "error %s" % e
    if not line.startswith("250"):
        print("after %.1f s: %s" % (time.time() - t0, line), flush=True)
        break
    time.sleep(1)
PY
busy=$(lab_bg busy vps101 /usr/bin/python3 "$LAB_DIR/busy.py" "$LAB_INET_V4")

echo "# local destinations: refused before connecting"
# A listener on every hypervisor address, port 25 (127.0.0.1 included).
cat >"$LAB_DIR/listen.py" <<'PY'
import socket, sys, threading
def serve(family, addr):
    s = socket.socket(family)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, 25))
    s.listen(16)
    while True:
        c, peer = s.accept()
        print("accepted from", peer[0], flush=True)
        c.close()
threading.Thread(target=serve, args=(socket.AF_INET6, "::"), daemon=True).start()
serve(socket.AF_INET, "0.0.0.0")
PY
lab_bg hvlisten hv /usr/bin/python3 "$LAB_DIR/listen.py" >/dev/null
lab_wait_port hv 127.0.0.1 25 5 >/dev/null 2>&1
: >"$LAB_DIR/log/hvlisten.log" # (lab_wait_port's own connection)
# An internal host at 192.0.2.66 in inet (in internal-prefixes); postfix
# listens on every address there, a capture shows whether anything came.
ip -n "$LAB_INET" addr add 192.0.2.66/24 dev eth0
cap=$(lab_capture inet eth0 internal "host 192.0.2.66 and tcp port 25")
# 127.0.0.1 never leaves a VPS's own stack: a hand-made handshake (scapy),
# with the VPS kernel's resets to it dropped.
cat >"$LAB_DIR/syn.py" <<'PY'
import random, sys
from scapy.all import Ether, IP, TCP, srp1, sendp, sniff, conf
conf.verb = 0
src, dst, mac = sys.argv[1], sys.argv[2], sys.argv[3]
sport = random.randint(20000, 60000)
eth = Ether(dst=mac)
syn = eth / IP(src=src, dst=dst) / TCP(sport=sport, dport=25, flags="S", seq=1000)
sa = srp1(syn, iface="eth0", timeout=3)
if sa is None or not sa.haslayer(TCP) or (sa[TCP].flags & 0x12) != 0x12:
    print("no SYN-ACK"); sys.exit(1)
ack = eth / IP(src=src, dst=dst) / TCP(sport=sport, dport=25, flags="A", seq=1001, ack=sa[TCP].seq + 1)
got = []
def data(p):
    if p.haslayer(TCP) and p[TCP].dport == sport and len(p[TCP].payload) > 0:
        got.append(bytes(p[TCP].payload)); return True
    return False
import threading
t = threading.Thread(target=lambda: sniff(iface="eth0", stop_filter=data, timeout=4, store=False))
t.start()
import time; time.sleep(0.3)
sendp(ack, iface="eth0")
t.join()
print(b"".join(got).decode(errors="replace").strip() or "no data")
rst = eth / IP(src=src, dst=dst) / TCP(sport=sport, dport=25, flags="R", seq=1001)
sendp(rst, iface="eth0")
PY
lab_exec vps202 nft -f - <<'EOF'
table inet labrst {
        chain out {
                type filter hook output priority 0;
                tcp flags & rst == rst drop
        }
}
EOF
dbg=$(lab_capture hv "$VPS202_IF" syndbg "tcp port 25 or tcp port 10025")
gwmac=$(ip -n "$LAB_HV" -j link show "$VPS202_IF" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
out=$(lab_exec vps202 timeout 15 /usr/bin/python3 "$LAB_DIR/syn.py" "$VPS202_V4" 127.0.0.1 "$gwmac" 2>&1)
echo "     127.0.0.1:25 (scapy): $out"
# Either the hypervisor's kernel never completes the handshake (seen in this
# lab: no SYN-ACK), or the proxy refuses: never a connection to 127.0.0.1.
check "127.0.0.1:25 by a hand-made SYN: no handshake, or a 421 naming a loopback address" \
        grep -Eq "^(no SYN-ACK|421 4.3.2 Not relaying to 127.0.0.1: a loopback address)" <<<"$out"
kill "$dbg" 2>/dev/null; wait "$dbg" 2>/dev/null
[ "${SD_DEBUG:-0}" = 1 ] && tcpdump -nn -r "$LAB_DIR/syndbg.pcap" 2>/dev/null | head -8 | sed 's/^/     hv saw: /'
lab_exec vps202 nft delete table inet labrst
# The hypervisor's own addresses are not redirected to the proxy at all
# (DATAPLANE.md): nothing on the hypervisor answers port 25 to a proxied
# VPS.  The internal prefixes go to the proxy, which refuses them.
for dst in "$LAB_GW_V4" "$LAB_HV_UPLINK_V4" "$LAB_HV_UPLINK_V6"; do
        a=$dst
        case $a in *:*) a="[$a]" ;; esac
        out=$(lab_exec vps202 timeout 4 socat -T2 "TCP:$a:25,connect-timeout=2" - </dev/null 2>&1)
        echo "     $dst:25: ${out:-nothing}"
        check "$dst:25: dropped, no answer (neither the hypervisor's listener nor the proxy)" \
                grep -q "Connection timed out" <<<"$out"
done
for dst in 192.0.2.66 2001:db8:ffff::42; do
        a=$dst
        case $a in *:*) a="[$a]" ;; esac
        out=$(lab_exec vps202 timeout 5 socat -T3 "TCP:$a:25,connect-timeout=3" - </dev/null 2>&1)
        echo "     $dst:25: $out"
        check "$dst:25: 421 naming an internal address" \
                grep -q "^421 4.3.2 Not relaying to $dst: an internal address" <<<"$out"
done
sleep 0.5
kill "$cap" 2>/dev/null; wait "$cap" 2>/dev/null
check "the hypervisor's port-25 listener got no connection" test ! -s "$LAB_DIR/log/hvlisten.log"
check "the internal host got no packet on port 25" \
        test "$(tcpdump -nn -r "$LAB_DIR/internal.pcap" 2>/dev/null | wc -l)" = 0
check_not "the proxy connected to none of them" grep -Eq \
        "event=connect .*mx=(127\.0\.0\.1|$LAB_GW_V4|$LAB_HV_UPLINK_V4|\[$LAB_HV_UPLINK_V6\]|192\.0\.2\.66|\[2001:db8:ffff::42\]):25" \
        "$LAB_DIR/log/portcullis-smtpd.log"
check "the proxy logged the refusals with the reason" \
        grep -q "event=refuse vps=vps-202 src=$VPS202_V4 .*Not relaying to 192.0.2.66: an internal address" \
        "$LAB_DIR/log/portcullis-smtpd.log"
ip -n "$LAB_INET" addr del 192.0.2.66/24 dev eth0

echo "# hostile MXes: an endless greeting, and megabytes of replies to 20 sessions of a VPS that never reads"
# The MXes at 192.0.2.25 and .26 in inet (postfix keeps the rest of port 25 there).
ip -n "$LAB_INET" addr add 192.0.2.25/24 dev eth0
ip -n "$LAB_INET" addr add 192.0.2.26/24 dev eth0
lab_exec inet nft -f - <<'EOF'
table ip labmx {
        chain pre {
                type nat hook prerouting priority -100;
                ip daddr 192.0.2.25 tcp dport 25 redirect to :2525
                ip daddr 192.0.2.26 tcp dport 25 redirect to :2526
        }
}
EOF
# Two hostile MXes: one streams 220- continuation lines for ever (the relay
# caps a reply: 421 at once); the other answers every command with a long
# but allowed reply, so that a client pipelining NOOPs and never reading
# gets megabytes (the proxy pauses the MX and the client-write timeout ends
# the session).
cat >"$LAB_DIR/hostile_mx.py" <<'PY'
import socket, sys, threading
stream = b"".join(b"220-hostile %05d %s\r\n" % (i, b"x" * 60) for i in range(800))
big = b"".join(b"250-big %02d %s\r\n" % (i, b"y" * 100) for i in range(60)) + b"250 ok\r\n"
def flood(c):
    try:
        while True:
            c.sendall(stream)
    except OSError:
        pass
    c.close()
def chatty(c):
    try:
        c.sendall(b"220 big.example ESMTP\r\n")
        f = c.makefile("rb")
        for line in f:
            c.sendall(big)
    except OSError:
        pass
    c.close()
def serve(port, fn):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=fn, args=(c,), daemon=True).start()
threading.Thread(target=serve, args=(2525, flood), daemon=True).start()
serve(2526, chatty)
PY
cat >"$LAB_DIR/deaf.py" <<'PY'
import socket, sys, time
n, hold = int(sys.argv[2]), float(sys.argv[3])
socks = []
for i in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((sys.argv[1], 25))
    s.setblocking(False)
    try:
        s.send(b"EHLO deaf.example\r\n" + b"NOOP\r\n" * 3000)
    except BlockingIOError:
        pass
    socks.append(s)
print("connected", len(socks), flush=True)
time.sleep(hold)   # never reads
PY
lab_bg hostile_mx inet /usr/bin/python3 "$LAB_DIR/hostile_mx.py" >/dev/null
lab_wait_port vps202 192.0.2.25 25 5 >/dev/null 2>&1 # (through the proxy: one short session)
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$SMTPD_PID/status"; }
rss0=$(rss)
out=$(lab_exec vps202 timeout 5 socat -T3 TCP:192.0.2.25:25,connect-timeout=3 - </dev/null 2>&1 | head -3)
check "an endless 220- greeting ends in a 421 from the proxy (the reply cap)" grep -q "^421 " <<<"$out"
check "... and none of the MX's lines reached the client" check_not_grep "hostile" "$out"
deaf=$(lab_bg deaf vps101 /usr/bin/python3 "$LAB_DIR/deaf.py" 192.0.2.26 20 25)
# vps-202's mail goes on meanwhile (in the background, while RSS is sampled).
(swaks_send vps202 "$LAB_INET_V4" 25 "during-flood-$$" >"$LAB_DIR/during.out" 2>&1; echo "rc=$?" >>"$LAB_DIR/during.out") &
during=$!
max=$rss0
t_end=$(($(lab_now_ms) + 8000))
while [ "$(lab_now_ms)" -lt "$t_end" ]; do
        r=$(rss) || break
        [ "$r" -gt "$max" ] && max=$r
        if [ "$r" -gt $((512 * 1024)) ]; then # do not take the machine down
                kill "$deaf" 2>/dev/null
                echo "     RSS passed 512 MiB: the deaf client was stopped"
                break
        fi
        sleep 0.2
done
wait "$during"
echo "     proxy RSS: $((rss0 / 1024)) MiB before, at most $((max / 1024)) MiB during the flood (bound $((RSS_BOUND_KB / 1024)) MiB)"
check "the deaf client had its 20 sessions" grep -q "connected 20" "$LAB_DIR/log/deaf.log"
check "the proxy's RSS stayed under $((RSS_BOUND_KB / 1024)) MiB" test "$max" -lt "$RSS_BOUND_KB"
check "vps-202's mail went through the proxy meanwhile" grep -q "^<-  250 2.0.0 Ok: queued" "$LAB_DIR/during.out"
check "... and arrived" lab_mail_wait "during-flood-$$" 5
sessions() { smtpd_ask status | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["sessions"])'; }
# client-write 3s: the deaf client still holds its sockets, the proxy lets go.
check "client-write (3 s): every session of the deaf client is closed while it still holds them" \
        wait_for 6 cmd_is = 0 sessions
check "... logged as a client that did not read" \
        grep -q "event=close vps=vps-101 .*why=\"the client did not read for 3 s\"" "$LAB_DIR/log/portcullis-smtpd.log"
echo "     proxy RSS after the sessions closed: $(($(rss) / 1024)) MiB"
check "... and the proxy's RSS is back under $((RSS_BOUND_KB / 1024)) MiB" test "$(rss)" -lt "$RSS_BOUND_KB"
kill "$deaf" 2>/dev/null

echo "# lifetime (12 s): a busy session is ended at its lifetime"
check "the busy session (NOOP every second) ends" wait_for 20 grep -q "^after" "$LAB_DIR/log/busy.log"
echo "     $(grep '^after' "$LAB_DIR/log/busy.log")"
check "... with 421 naming the lifetime, after 11-14 s" /usr/bin/python3 -c '
import re, sys
m = re.search(r"after ([0-9.]+) s: 421 4.4.2 .*lifetime of 12s", open(sys.argv[1]).read())
sys.exit(0 if m and 11 <= float(m.group(1)) <= 14 else 1)' "$LAB_DIR/log/busy.log"

echo "# a flood of refused connections: bounded log lines and a summary"
pc filter place vps-101 --service smtp --by abuse-desk --reason "lab: flood" >/dev/null 2>&1
before=$(wc -l <"$LAB_DIR/log/portcullis-smtpd.log")
cat >"$LAB_DIR/burst.py" <<'PY'
import socket, sys
n, ok = int(sys.argv[2]), 0
for i in range(n):
    try:
        s = socket.create_connection((sys.argv[1], 25), timeout=3)
        if s.recv(200).startswith(b"421"):
            ok += 1
        s.close()
    except OSError:
        pass
print("refused", ok)
PY
out=$(lab_exec vps101 timeout 60 /usr/bin/python3 "$LAB_DIR/burst.py" "$LAB_INET_V4" 2000 2>&1)
echo "     $out"
check "2000 connections, each refused with a 421" test "$out" = "refused 2000"
pc filter lift vps-101 "$(pc --json vps show vps-101 | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["filters"][0]["id"])')" \
        --by abuse-desk --reason "lab: done" >/dev/null 2>&1

echo "# the agent tells the proxy to reload when it starts"
lab_vps_add vps303 v303 198.51.100.30 2001:db8:303::
agent_kill
pc vps add vps-303 --site lenoir --owner dora@example.net --iface v303 \
        --addr 198.51.100.30/32 --addr 2001:db8:303::/64 --by lab >/dev/null 2>&1
check "agent starts again" agent_start
check "vps-303, added while the agent was down, sends through the proxy (no SIGHUP)" \
        wait_for 5 swaks_send vps303 "$LAB_INET_V4" 25 "after-restart-$$"
check "... and the message arrives" lab_mail_wait "after-restart-$$" 5

echo "# (the flood's summary, once its window is over)"
flood_log() { tail -n +"$((before + 1))" "$LAB_DIR/log/portcullis-smtpd.log"; }
flood_summary() { flood_log | grep -q "vps-101: .* connections refused in the last"; }
check "a summary line for vps-101 within $((LOG_WINDOW + 3)) s" wait_for $((LOG_WINDOW + 3)) flood_summary
lines=$(flood_log | grep -c "event=refuse.* src=$VPS101_V4 ")
flood_log | grep "vps-101: .* connections refused in the last" | sed 's/^/     /'
suppressed=$(flood_log | sed -n 's/.*vps-101: [0-9,]* connections refused in the last [0-9]* s, \([0-9,]*\) not logged.*/\1/p' |
        tr -d , | awk '{ n += $1 } END { print n + 0 }')
echo "     $lines refusal lines for vps-101, $suppressed more counted in summaries"
check "at most $((2 * LOG_BURST)) refusal lines for 2000 connections" test "$lines" -le $((2 * LOG_BURST))
check "lines + summarised = 2000 exactly" test $((lines + suppressed)) = 2000
check "the summary names the reason" grep -q "vps-101: .* connections refused .*: 421 4.7.0 Mail from vps-101 is refused: .*lab: flood" <(flood_log)

check "the proxy is still running after all of it" kill -0 "$SMTPD_PID"
check "its log has no sanitizer report" check_not_grep "Sanitizer" "$(smtpd_log)"
lab_summary
