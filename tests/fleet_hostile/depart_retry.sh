#!/bin/bash
# Hole: the old host's agent records vps.depart once, as it lets a VPS go
# whose VM left it; if that write fails (the database away, the writers'
# lock held past lock_timeout, an error) it is logged and never tried
# again, and the move shows as unconfirmed for good (vps show, fleet
# status; the new host's token gets 409 on removing the VPS).  Here a
# session holds the writers' lock while vps-m's VM leaves hv1: hv1 lets
# it go, its vps.depart fails; the lock is released and nobody moves the
# VPS.  Exits 1 while the mark is not cleared within 8 s.
. "$(dirname "$0")/lib.sh"
fh_migrated_vps
member() { # MEMBER: vps-m's MEMBER in `vps show --json`, "" if none
        pc_on 2 --json vps show vps-m 2>/dev/null |
                python3 -c "import json,sys; print(json.load(sys.stdin).get('$1') or '')" 2>/dev/null
}
[ "$(member departing_from)" = hv1 ] || { echo "SETUP the migration does not show unconfirmed"; exit 2; }
# (A session of the cluster's owner: since hole 9 a stranger cannot connect.)
( echo "SELECT pg_advisory_lock(1346568193);"; sleep 60 ) |
        runuser -u postgres -- psql -X -q -h "$LAB_DIR/pg" -p 5432 -d portcullis >/dev/null 2>&1 &
holder=$!
echo "$holder holder" >>"$LAB_DIR/pids"
sleep 1
ip -n "$(ns hv1)" link del vm1
log=$LAB_DIR/log/portcullisd-hv1.log
wait_for 15 grep -q "vps-m left this host, but telling the fleet so failed" "$log" ||
        { echo "SETUP hv1's vps.depart did not fail"; tail -5 "$log"; exit 2; }
grep "vps-m left this host, but telling" "$log" | tail -1
kill "$holder" 2>/dev/null
wait_for 5 sh -c "! runuser -u postgres -- psql -X -qtA -h $LAB_DIR/pg -p 5432 -d portcullis -c \
        \"SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted\" | grep -q 1" ||
        { echo "SETUP the lock is not released"; exit 2; }
echo "the writers' lock is released; nobody moves vps-m"
confirmed() { [ -z "$(member departing_from)" ]; }
if wait_for 8 confirmed; then
        pc_on 2 --json audit vps-m | grep -c '"vps.depart"' | sed 's/^/vps.depart entries: /'
        echo "HELD: hv1 recorded vps-m's departure once the database took writes again"
        exit 0
fi
echo "HOLE: hv1's failed vps.depart is never tried again: vps-m's move stays unconfirmed ($(member departing_from))"
exit 1
