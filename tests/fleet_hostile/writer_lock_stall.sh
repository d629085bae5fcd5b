#!/bin/bash
# Hole: every Portcullis writer of the fleet begins with
# pg_advisory_xact_lock(1346568193), waited for without any lock or
# statement timeout, on the agent's loop.  Whoever holds that lock --
# any role that may connect (advisory locks need no privilege), or a CLI/API session stuck mid-transaction (a partitioned
# client is noticed by the server only after its TCP keepalive, 2 h by
# default) -- freezes every agent at its next write: a VPS that spoofs is
# not suspended, the database counts as connected so the journal is not
# used, and the control socket stops answering.  Exits 1 while the hole
# is open.
. "$(dirname "$0")/lib.sh"
fh_one_vps
# A session stuck mid-transaction takes the writers' lock and keeps it.
# (The database's owner: since hole 9 a role without CONNECT on the
# database -- a stranger -- cannot even log in, so it could not hold it.)
( echo "SELECT pg_advisory_lock(1346568193);"; sleep 25 ) |
        runuser -u postgres -- psql -X -q -h "$LAB_DIR/pg" -p 5432 -d portcullis >/dev/null 2>&1 &
echo "$! holder" >>"$LAB_DIR/pids"
# (the set-up holds, or this proves nothing)
wait_for 5 sh -c "[ \"\$(runuser -u postgres -- psql -X -qtA -h '$LAB_DIR/pg' -p 5432 -d portcullis -c \"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 1346568193 AND granted\")\" = 1 ]" ||
        { echo "SET-UP: the writers' lock is not held"; exit 2; }
ip -n "$(ns s)" addr add 198.51.100.99/32 dev eth0
ip netns exec "$(ns s)" ping -c 3 -i 0.3 -W 1 -I 198.51.100.99 192.0.2.2 >/dev/null 2>&1
if wait_for 4 sh -c "ip netns exec $(ns hv1) nft list set inet portcullis suspended | grep -q '\"vs\"'"; then
        echo "HELD: vps-s is suspended although another session holds the writers' lock"
        exit 0
fi
st=$(timeout 3 ip netns exec "$(ns hv1)" "$PC_BIN" -c "$LAB_DIR/hv1.yaml" status >/dev/null 2>&1 && echo answers || echo "does not answer")
echo "HOLE: a session holding advisory lock 1346568193 froze the agent: vps-s spoofed and is not suspended; its control socket $st"
exit 1
