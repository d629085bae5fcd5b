#!/bin/bash
# Probe (held today): the agent is killed between the replay's commit and
# the journal file's rewrite (simulated: the file as it was before the
# replay is put back), and starts again: the entry must not be stored
# twice (agent_journal's mark).  Exits 1 if the incident or suspension is
# doubled, 0 if not.
. "$(dirname "$0")/lib.sh"
fh_one_vps
"$FH_SRC/tests/pg/cluster.sh" halt "$LAB_DIR/pg" >/dev/null || exit 2
ip -n "$(ns s)" addr add 198.51.100.99/32 dev eth0
ip netns exec "$(ns s)" ping -c 2 -i 0.3 -W 1 -I 198.51.100.99 192.0.2.2 >/dev/null 2>&1
wait_for 5 test -s "$LAB_DIR/journal-hv1.json" || { echo "SETUP no journal"; exit 2; }
cp "$LAB_DIR/journal-hv1.json" "$LAB_DIR/journal.saved"
"$FH_SRC/tests/pg/cluster.sh" resume "$LAB_DIR/pg" >/dev/null || exit 2
wait_for 15 test ! -e "$LAB_DIR/journal-hv1.json" || { echo "SETUP not replayed"; exit 2; }
kill -9 "${AGENT[1]}"; wait_for 5 sh -c "! kill -0 ${AGENT[1]}"
cp "$LAB_DIR/journal.saved" "$LAB_DIR/journal-hv1.json"
agent_up 1 || { echo "SETUP restart"; exit 2; }
wait_for 10 test ! -e "$LAB_DIR/journal-hv1.json"
sleep 1
inc=$(pc_on 1 --json incident list vps-s --all --kind spoof | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["incidents"]))')
sus=$(pc_on 1 --json action list vps-s | python3 -c 'import json,sys; print(sum(1 for x in json.load(sys.stdin)["actions"] if x["kind"] == "suspension"))')
echo "after the replay, a kill -9 and the old journal put back: $inc incident(s), $sus suspension(s)"
[ "$inc" = 1 ] && [ "$sus" = 1 ] && { echo "HELD"; exit 0; }
echo "HOLE: doubled"; exit 1
