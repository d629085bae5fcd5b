#!/bin/bash
# Hole: the agents' wake-up channel is open to every role of the cluster.
# PostgreSQL lets any role that can connect NOTIFY any channel, and a new
# database grants CONNECT to PUBLIC: a role that is not portcullis's (a
# monitoring user, another application on the cluster) floods
# `NOTIFY portcullis_change`, and every agent of the fleet reads the feed
# again for each batch that reaches it: its loop spends its time on
# queries.  Exits 1 while a foreign role can make the agent work (NOTIFY
# accepted and the agent's CPU climbs), 0 once it cannot (CONNECT revoked
# from PUBLIC, or the agent paces its reads).
. "$(dirname "$0")/lib.sh"
fh_init 1
pc_on 1 init >/dev/null 2>&1 || { echo "SETUP init"; exit 2; }
agent_up 1 || { echo "SETUP agent"; exit 2; }
pg() { runuser -u postgres -- psql -X -q -h "$LAB_DIR/pg" -p 5432 "$@"; }
pg -d postgres -c "CREATE ROLE stranger LOGIN" >/dev/null || { echo "SETUP role"; exit 2; }
cpu() { awk '{print $14 + $15}' /proc/"$(pgrep -n -f "portcullisd -c $LAB_DIR/hv1.yaml")"/stat; }
sleep 2
c0=$(cpu); sleep 3; idle=$(( $(cpu) - c0 ))
yes "NOTIFY portcullis_change;" | head -60000 >"$LAB_DIR/flood.sql"
c0=$(cpu); t0=$(lab_now_ms)
if ! timeout 20 runuser -u postgres -- psql -X -q -h "$LAB_DIR/pg" -p 5432 -U stranger -d portcullis -f "$LAB_DIR/flood.sql" >/dev/null 2>"$LAB_DIR/flood.err"; then
        echo "HELD: the stranger role cannot notify the agents: $(head -1 "$LAB_DIR/flood.err")"
        exit 0
fi
ms=$(( $(lab_now_ms) - t0 )); busy=$(( $(cpu) - c0 ))
echo "agent CPU: ${idle} ticks in 3 s idle; ${busy} ticks during the stranger's 60000 NOTIFYs (${ms} ms)"
if [ "$busy" -gt $(( idle + ms / 10 / 20 )) ]; then # more than 5% of a core above idle
        echo "HOLE: a role foreign to Portcullis drives the agent's loop (and every agent of the fleet) through NOTIFY"
        exit 1
fi
echo "HELD: the NOTIFYs cost the agent nothing noticeable"
exit 0
