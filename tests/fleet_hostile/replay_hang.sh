#!/bin/bash
# Hole (issue 14, "libpq calls never block the enforcement loop"): the
# journal's replay ran on the agent's loop, one transaction per entry,
# as soon as the heartbeat found the database answering again.  A server
# that hangs while the replay runs holds the loop for the statement's
# bound (3 s; a lock waited for: 1 s), again at every try: the kernel's
# events are not read, the control socket does not answer.
#
# Here: the server hangs (SIGSTOP) while vps-s spoofs, so its finding is
# in the journal.  Meanwhile a session of the cluster holds a lock on the
# journal's marks (agent_journal), so that every replay the agent tries
# once the server answers waits on it: the replay is in flight for sure
# while the control socket is asked, and then the server is frozen again
# under it.  The control socket is asked its status every 0.2 s, through
# the lock and the second freeze: each answer must come within 500 ms.
# Once both end, the finding must be stored exactly once (one incident,
# one suspension).  Exits 1 while the hole is open.
. "$(dirname "$0")/lib.sh"
fh_one_vps
q() { runuser -u postgres -- psql -X -qtA -h "$LAB_DIR/pg" -p 5432 -d portcullis -c "$1"; }
sleep 2 # periodic passes: their statements are prepared on the session
# The lock on the journal's marks, held until $LAB_DIR/unlock appears.
( echo "BEGIN; LOCK TABLE agent_journal IN ACCESS EXCLUSIVE MODE;"
  while [ ! -e "$LAB_DIR/unlock" ]; do sleep 0.1; done; echo "COMMIT;" ) |
        runuser -u postgres -- psql -X -q -h "$LAB_DIR/pg" -p 5432 -d portcullis >/dev/null 2>&1 &
locker=$!
echo "$locker locker" >>"$LAB_DIR/pids"
wait_for 5 cmd_is -ge 1 q "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'agent_journal' AND l.mode = 'AccessExclusiveLock' AND l.granted" ||
        { echo "SETUP no lock"; exit 2; }
fh_pg_freeze
fh_spoof_timed
[ -n "$FH_TOOK" ] || { echo "SETUP vps-s not suspended from the journal"; exit 2; }
wait_for 8 test -s "$LAB_DIR/journal-hv1.json" || { echo "SETUP no journal"; exit 2; }
# The heartbeat found it away too (else, queued behind the finding, it may
# first meet the server thawed, and "answers again" is never said).
wait_for 10 grep -q "The database does not answer" "$LAB_DIR/log/portcullisd-hv1.log" ||
        { echo "SETUP the heartbeat did not find the database away"; exit 2; }
fh_pg_thaw
# The server answers: the heartbeat goes through, the replay waits on the lock.
wait_for 10 grep -q "The database answers again" "$LAB_DIR/log/portcullisd-hv1.log" ||
        { echo "SETUP the database did not answer again"; exit 2; }
fh_status_probe 15 0.2
w1=$FH_WORST s1=$FH_SLOW
# ... and the server hangs again under the replay.
fh_pg_freeze
fh_status_probe 15 0.2
w2=$FH_WORST s2=$FH_SLOW
fh_pg_thaw
touch "$LAB_DIR/unlock"
wait "$locker" 2>/dev/null
echo "replay held by a lock: the control socket's slowest answer of 15 took $w1 ms ($s1 over 500 ms);" \
     "the server frozen under it: $w2 ms ($s2 over 500 ms)"
wait_for 20 test ! -e "$LAB_DIR/journal-hv1.json" || { echo "HOLE: the journal was not replayed once the server went on"; exit 1; }
sleep 2
n=$(q "SELECT count(*) FROM incident WHERE vps_id = 'vps-s'")
s=$(q "SELECT count(*) FROM action WHERE vps_id = 'vps-s' AND kind = 'suspension'")
echo "after the lock and the freeze: $n incident(s), $s suspension(s) stored"
if [ "$s1" != 0 ] || [ "$s2" != 0 ]; then
        echo "HOLE: the agent's loop waited for the journal's replay ($w1 ms, $w2 ms)"
        exit 1
fi
[ "$n" = 1 ] || { echo "HOLE: the finding was not stored exactly once ($n incidents)"; exit 1; }
[ "$s" = 1 ] || { echo "HOLE: its suspension was not stored once ($s)"; exit 1; }
echo "HELD: the loop answered within $w1 ms, $w2 ms while the replay hung; stored once"
exit 0
