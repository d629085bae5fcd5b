#!/bin/bash
# Hole: the agent's queries wait for the server without any bound.  A
# server that hangs with its connections open (SIGSTOP here; in a fleet a
# frozen VM, a disk that stops answering, a partition the kernel has not
# noticed: keepalives and tcp_user_timeout only help on TCP, and only
# after 15 s) freezes the agent's loop at its next statement: a VPS that
# spoofs is not suspended, the journal is not used, the control socket
# does not answer.  Exits 1 while the hole is open.
. "$(dirname "$0")/lib.sh"
fh_one_vps
fh_pg_freeze
fh_spoof_timed
took=$FH_TOOK st=$FH_CONTROL
echo "database hung: vps-s suspended ${took:+after $took ms}$([ -n "$took" ] || echo "never (8 s)"); the control socket $st"
fh_pg_thaw
if [ -z "$took" ] || [ "$st" != answers ]; then
        echo "HOLE: a hung database server froze the agent"
        exit 1
fi
# The server answers again: the journal's finding is stored once.
q() { runuser -u postgres -- psql -X -qtA -h "$LAB_DIR/pg" -p 5432 -d portcullis -c "$1"; }
wait_for 20 cmd_is -ge 1 q "SELECT count(*) FROM incident WHERE vps_id = 'vps-s'"
n=$(q "SELECT count(*) FROM incident WHERE vps_id = 'vps-s'")
sleep 2
n2=$(q "SELECT count(*) FROM incident WHERE vps_id = 'vps-s'")
echo "after the server came back: $n incident(s), $n2 two seconds later"
[ "$n" = 1 ] && [ "$n2" = 1 ] || { echo "HOLE: the finding was not stored exactly once ($n, $n2)"; exit 1; }
echo "HELD: suspended in $took ms while the server hung; stored once afterwards"
exit 0
