#!/bin/bash
# Hole (found in review of the reload's thread): a suspension committed
# after the reload thread read the database, and applied by the loop
# before the take, was undone by the take (the kernel synced to the load's
# older copy of the VPS) until the change feed was read again.  gdb
# (non-stop) holds only the reload thread between its load and the take,
# while the loop runs on; the kernel is sampled through the take.  Exits 1
# while the hole is open: the VPS is seen out of the suspended set.
. "$(dirname "$0")/lib.sh"
fh_one_vps 10
sleep 2
in_susp() { ip netns exec "$(ns hv1)" nft list set inet portcullis suspended 2>/dev/null | grep -q '"vs"'; }
fh_hold_reload
pc_on 1 suspend vps-s --by lab --reason "spam run" >/dev/null || { echo "SETUP suspend"; exit 2; }
wait_for 5 in_susp || { echo "SETUP the loop did not suspend vs"; exit 2; }
echo "the reload thread is held after its load; the loop suspended vs meanwhile"
# No new connection of the agent's role from now on (the open ones stay):
# the take's reconnecting listener cannot read the feed again by chance.
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
psqlq() { runuser -u postgres -- "$bindir/psql" -X -qtA -h "$LAB_DIR/pg" -p 5432 -U postgres -d portcullis -c "$1"; }
c=$(psqlq "SELECT count(*) FROM pg_stat_activity WHERE usename = 'portcullis'")
psqlq "ALTER ROLE portcullis CONNECTION LIMIT $c" >/dev/null || { echo "SETUP connection limit"; exit 2; }
( end=$(($(lab_now_ms) + 4000)); while [ "$(lab_now_ms)" -lt "$end" ]; do in_susp && echo S || echo U; done \
        >"$LAB_DIR/samples" ) &
sampler=$!
sleep 0.3
fh_release_reload
wait "$sampler"
wait_for 10 grep -q "Reloaded\|Reload refused" "$LAB_DIR/log/portcullisd-hv1.log" || { echo "SETUP no reload"; exit 2; }
out=$(grep -c U "$LAB_DIR/samples")
echo "$(grep -c . "$LAB_DIR/samples") samples of the kernel through the take, $out without vs suspended"
if [ "$out" = 0 ] && in_susp; then echo "HELD: the take kept the suspension the loop applied while it loaded"; exit 0; fi
echo "HOLE: the reload's take let vs out of the suspended set"
exit 1
