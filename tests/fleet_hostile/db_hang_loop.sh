#!/bin/bash
# Hole (issue 14, "libpq calls never block the enforcement loop"): after
# db_hang and db_hang_idle each statement is bounded (3 s of a silent
# server), but the agent's loop still waits out that bound: while a hung
# server holds a finding's statements or the periodic pass's, the loop
# neither reads the kernel's events nor answers its control socket, for
# 3 s each time.  Here the server hangs while vps-s spoofs, and the control
# socket is asked its status 15 times over 4.5 s: each answer must come
# within 500 ms (the loop free), the VPS still be suspended (from the
# journal, once the thread's statement is given up), and the finding be
# stored once when the server goes on.  Exits 1 while the hole is open.
. "$(dirname "$0")/lib.sh"
fh_one_vps
sleep 2 # periodic passes: their statements are prepared on the session
fh_pg_freeze
ip -n "$(ns s)" addr add 198.51.100.99/32 dev eth0
t0=$(lab_now_ms)
ip netns exec "$(ns s)" ping -c 10 -i 0.3 -W 1 -I 198.51.100.99 192.0.2.2 >/dev/null 2>&1 &
spoofer=$!
fh_status_probe 15 0.3
worst=$FH_WORST slow=$FH_SLOW
took=
wait_for 8 sh -c "ip netns exec $(ns hv1) nft list set inet portcullis suspended 2>/dev/null | grep -q '\"vs\"'" &&
        took=$(($(lab_now_ms) - t0))
wait "$spoofer" 2>/dev/null
echo "database hung while vps-s spoofed: the control socket's slowest answer of 15 took $worst ms ($slow over 500 ms); vps-s suspended ${took:+after $took ms}$([ -n "$took" ] || echo "never (within 8 s after)")"
fh_pg_thaw
if [ "$slow" != 0 ]; then
        echo "HOLE: the agent's loop waited for the hung database ($worst ms)"
        exit 1
fi
[ -n "$took" ] || { echo "HOLE: vps-s was not suspended while the database hung"; exit 1; }
q() { runuser -u postgres -- psql -X -qtA -h "$LAB_DIR/pg" -p 5432 -d portcullis -c "$1"; }
wait_for 20 cmd_is -ge 1 q "SELECT count(*) FROM incident WHERE vps_id = 'vps-s'"
n=$(q "SELECT count(*) FROM incident WHERE vps_id = 'vps-s'")
sleep 2
n2=$(q "SELECT count(*) FROM incident WHERE vps_id = 'vps-s'")
s=$(q "SELECT count(*) FROM action WHERE vps_id = 'vps-s' AND kind = 'suspension'")
echo "after the server came back: $n incident(s), $n2 two seconds later; $s suspension(s) stored"
[ "$n" = 1 ] && [ "$n2" = 1 ] || { echo "HOLE: the finding was not stored exactly once ($n, $n2)"; exit 1; }
[ "$s" = 1 ] || { echo "HOLE: its suspension was not stored once ($s)"; exit 1; }
echo "HELD: the loop answered within $worst ms while the server hung; suspended in $took ms; stored once"
exit 0
