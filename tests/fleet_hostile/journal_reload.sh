#!/bin/bash
# Hole: a reload (SIGHUP) reads the database's policy and programs the
# kernel from it, but the journal's holds were not put back into the
# model it read (a start and the database's return do so): a VPS that
# the journal suspended in the kernel while the database was away, its
# entry not stored yet (here a session holds a lock on agent_journal, so
# that the replay keeps failing), was let out by the reload until the
# replay stored its suspension.  Exits 1 while the hole is open.
. "$(dirname "$0")/lib.sh"
fh_one_vps
sleep 2 # periodic passes: their statements are prepared on the session
( echo "BEGIN; LOCK TABLE agent_journal IN ACCESS EXCLUSIVE MODE;"
  while [ ! -e "$LAB_DIR/unlock" ]; do sleep 0.1; done; echo "COMMIT;" ) |
        runuser -u postgres -- psql -X -q -h "$LAB_DIR/pg" -p 5432 -d portcullis >/dev/null 2>&1 &
echo "$! locker" >>"$LAB_DIR/pids"
sleep 1
fh_pg_freeze
fh_spoof_timed
[ -n "$FH_TOOK" ] || { echo "SETUP vps-s not suspended from the journal"; exit 2; }
wait_for 8 test -s "$LAB_DIR/journal-hv1.json" || { echo "SETUP no journal"; exit 2; }
# The heartbeat found it away too (else "answers again" may never be said).
wait_for 10 grep -q "The database does not answer" "$LAB_DIR/log/portcullisd-hv1.log" ||
        { echo "SETUP the heartbeat did not find the database away"; exit 2; }
fh_pg_thaw
wait_for 10 grep -q "The database answers again" "$LAB_DIR/log/portcullisd-hv1.log" ||
        { echo "SETUP the database did not answer again"; exit 2; }
kill -HUP "${AGENT[1]}"
wait_for 10 grep -q "Reloaded" "$LAB_DIR/log/portcullisd-hv1.log" || { echo "SETUP no reload"; exit 2; }
sleep 1
test -s "$LAB_DIR/journal-hv1.json" || { echo "SETUP the journal was stored before the reload"; exit 2; }
if ip netns exec "$(ns hv1)" nft list set inet portcullis suspended 2>/dev/null | grep -q '"vs"'; then
        touch "$LAB_DIR/unlock"
        echo "HELD: vps-s stays suspended through the reload while its entry waits in the journal"
        exit 0
fi
touch "$LAB_DIR/unlock"
echo "HOLE: the reload let vps-s out while its suspension was only in the journal"
exit 1
