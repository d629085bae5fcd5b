#!/bin/bash
# Per-host database roles (schema 14, docs/FLEET.md) on a real server:
# `portcullis init --agent-role hv1` makes role portcullis_hv1 hv1's, and
# with it hv1 -- its hooks through the CLI, its agent, or a hand with psql
# -- changes hv1's VPSes and nothing of hv2's: not its VPS, filters,
# heartbeat, journal or audit, and no token.  The owner is not bound.
# (issue 14: a compromised hypervisor held the owner's credentials.)
# Schema 15: its audit rows are signed with its name, it locks no table
# but vps_address, and a session of it left in a transaction with the
# writers' lock is ended within 30 s.
#
# Usage: agent_role_test.sh BUILD_DIR SOURCE_ROOT
set -u
build=$(readlink -f "$1") src=$(readlink -f "$2")
tmp=$(mktemp -d /tmp/portcullis-pgrole.XXXXXX)
chmod 0711 "$tmp"
cluster=$tmp/pg
agent_pid=
trap '[ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null; "$src/tests/pg/cluster.sh" stop "$cluster"; rm -rf "$tmp"' EXIT
checks=0 failures=0
check() { # NAME CONDITION-EXIT-STATUS [DETAIL]
        checks=$((checks + 1))
        if [ "$2" = 0 ]; then
                echo "ok   $1"
        else
                failures=$((failures + 1))
                echo "FAIL $1${3:+: $3}"
        fi
}

url=$("$src/tests/pg/cluster.sh" start "$cluster") || exit 1
hv1=${url/user=portcullis/user=portcullis_hv1}
su_() { # SQL as the cluster's superuser (roles are made by a role that may)
        if [ "$(id -u)" = 0 ]; then
                runuser -u postgres -- psql -X -q -h "$cluster" -p 5432 -d portcullis -v ON_ERROR_STOP=1 "$@"
        else
                psql -X -q -h "$cluster" -p 5432 -U postgres -d portcullis -v ON_ERROR_STOP=1 "$@"
        fi
}
pc() { "$build/src/cli/portcullis" -c "$src/etc/portcullis.yaml" --db "$url" "$@" 2>"$tmp/err"; }
pc1() { "$build/src/cli/portcullis" -c "$src/etc/portcullis.yaml" --db "$hv1" "$@" 2>"$tmp/err"; }
# as1 SQL: one statement as portcullis_hv1; prints its rows or its error.
as1() { psql "$hv1" -X -q -tA -v ON_ERROR_STOP=1 -c "$1" 2>&1; }
as2() { psql "${url/user=portcullis/user=hv2_db}" -X -q -tA -v ON_ERROR_STOP=1 -c "$1" 2>&1; }
owner() { psql "$url" -X -q -tA -v ON_ERROR_STOP=1 -c "$1"; }
refused() { grep -q "row-level security\|permission denied" <<<"$1"; }

pc init >/dev/null || exit 1
out=$(pc init --agent-role hv1) && exit_=0 || exit_=$?
check "a role that does not exist is refused" "$([ "$exit_" = 2 ] && grep -q "has no role portcullis_hv1: create it first" "$tmp/err"; echo $?)" "$(cat "$tmp/err")"
su_ -c "CREATE ROLE portcullis_hv1 LOGIN" -c "CREATE ROLE hv2_db LOGIN" >/dev/null || exit 1
out=$(pc init --agent-role hv1)
check "init --agent-role hv1: portcullis_hv1 is hv1's" $? "$(cat "$tmp/err")"
check "  and says so" "$(grep -q "role portcullis_hv1 is host hv1's" <<<"$out"; echo $?)" "$out"
out=$(pc --json init --agent-role hv2 --db-role hv2_db)
check "--db-role names the role (JSON)" "$(python3 -c 'import json,sys; j=json.loads(sys.argv[1]); sys.exit(j["agent_role"] != {"role": "hv2_db", "host": "hv2"})' "$out"; echo $?)" "$out"
check "the map" "$([ "$(owner "SELECT role || '=' || host FROM agent_role ORDER BY role" | tr '\n' ' ')" = "hv2_db=hv2 portcullis_hv1=hv1 " ]; echo $?)"
pc init --agent-role 'HV 1' >/dev/null
check "a host that is not a name" "$(grep -q "'HV 1' is not a host name" "$tmp/err"; echo $?)" "$(cat "$tmp/err")"
pc init --agent-role hv1 --db-role 'Robert"; DROP' >/dev/null
check "a role name that would need quoting" "$(grep -q "is not a role name here" "$tmp/err"; echo $?)" "$(cat "$tmp/err")"
"$build/src/cli/portcullis" -c "$src/etc/portcullis.yaml" --db "sqlite:$tmp/s.db" init >/dev/null
"$build/src/cli/portcullis" -c "$src/etc/portcullis.yaml" --db "sqlite:$tmp/s.db" init --agent-role hv1 >/dev/null 2>"$tmp/err"
check "SQLite has no roles" "$(grep -q "per-host roles are PostgreSQL's" "$tmp/err"; echo $?)" "$(cat "$tmp/err")"

pc vps add vps-b --owner bob@example.org --iface vb --addr 198.51.100.12 --host hv2 --by lab >/dev/null || exit 1
pc filter place vps-b --ports tcp/8080 --by sam --reason "abuse report" >/dev/null 2>&1 || exit 1

# hv1's hooks (the CLI, as libvirt's and Proxmox's hooks call it) with hv1's role.
pc1 vps add vps-a --owner ann@example.org --iface va --addr 198.51.100.11 --host hv1 --by hooks >/dev/null 2>&1
check "hv1 registers on hv1" $? "$(cat "$tmp/err")"
pc1 vps update vps-a --addr 198.51.100.21 --by hooks >/dev/null 2>&1
check "hv1 updates its VPS" $? "$(cat "$tmp/err")"
pc1 vps stop vps-a --by hooks >/dev/null 2>&1
check "hv1 stops its VPS" $? "$(cat "$tmp/err")"
pc1 filter place vps-a --ports tcp/6881 --by portcullisd --reason "bittorrent" >/dev/null 2>&1
check "hv1 filters its VPS" $? "$(cat "$tmp/err")"
# Its audit rows carry its name: the agent's principal, or the hooks' own
# name signed with the host (schema 15; a host wrote in anybody's name).
out=$(owner "SELECT string_agg(DISTINCT \"by\", ',' ORDER BY \"by\") FROM audit WHERE vps_id = 'vps-a'")
check "  its audit rows are hooks@hv1's and portcullisd's" "$([ "$out" = "hooks@hv1,portcullisd" ]; echo $?)" "$out"
audit0=$(owner "SELECT count(*) FROM audit")
for cmd in "vps add vps-c --owner ann@example.org --iface vc --addr 198.51.100.13 --host hv2 --by hooks" \
           "vps update vps-b --addr 198.51.100.99 --by hooks" \
           "vps move vps-b --host hv2 --iface vnet999 --by hooks" \
           "vps move vps-b --host hv1 --iface vx --by hooks" \
           "vps move vps-a --host hv2 --iface vx --by hooks" \
           "vps stop vps-b --by hooks" \
           "vps remove vps-b --by hooks --reason gone" \
           "filter place vps-b --all --by hooks --reason x" \
           "suspend vps-b --by hooks --reason x" \
           "token create root --role admin --by hooks" \
           "token list"; do
        # shellcheck disable=SC2086
        pc1 $cmd >/dev/null 2>&1
        code=$?
        check "hv1 may not: $cmd" "$([ $code = 2 ] && refused "$(cat "$tmp/err")"; echo $?)" "exit $code: $(cat "$tmp/err")"
done
# (Its row is not hv1's to update: the store goes on to its addresses,
# which are refused, whatever the message says.)
pc1 vps update vps-b --iface vnet999 --by hooks >/dev/null 2>&1
check "hv1 may not repoint hv2's VPS at vnet999" "$([ $? = 2 ]; echo $?)" "$(cat "$tmp/err")"
check "  nothing of it was written" "$([ "$(owner "SELECT count(*) FROM audit")" = "$audit0" ]; echo $?)"
check "  vps-b is as it was: hv2's, on vb, filtered, running" \
        "$([ "$(owner "SELECT host || ' ' || iface || ' ' || run_state || ' ' || (SELECT count(*) FROM action WHERE vps_id = 'vps-b' AND lifted_at IS NULL) FROM vps WHERE id = 'vps-b'")" = "hv2 vb running 1" ]; echo $?)"

# A hand with psql and hv1's password: what the CLI does not do, neither.
out=$(as1 "UPDATE vps SET iface = 'vnet999' WHERE id = 'vps-b' RETURNING id")
check "psql as hv1: hv2's VPS repointed: no row" "$([ -z "$out" ]; echo $?)" "$out"
out=$(as1 "UPDATE vps SET host = 'hv1' WHERE id = 'vps-b' RETURNING id")
check "  claimed: no row" "$([ -z "$out" ]; echo $?)" "$out"
out=$(as1 "DELETE FROM vps WHERE id = 'vps-b' RETURNING id")
check "  removed: refused (no host removes a VPS since schema 15)" "$(refused "$out"; echo $?)" "$out"
out=$(as1 "UPDATE action SET lifted_at = 1 WHERE vps_id = 'vps-b' RETURNING id")
check "  its filter lifted: no row" "$([ -z "$out" ]; echo $?)" "$out"
out=$(as1 "UPDATE vps SET host = 'hv2' WHERE id = 'vps-a'")
check "  its own VPS pushed to hv2: refused" "$(refused "$out"; echo $?)" "$out"
out=$(as1 "INSERT INTO action (vps_id, kind, direction, scope, \"by\", created) VALUES ('vps-b', 'suspension', 'both', 'all', 'x', 1)")
check "  an action on hv2's VPS: refused" "$(refused "$out"; echo $?)" "$out"
out=$(as1 "INSERT INTO vps_address (vps_id, family, prefix) VALUES ('vps-b', 4, '198.51.100.0/24')")
check "  an address of hv2's VPS: refused" "$(refused "$out"; echo $?)" "$out"
out=$(as1 "INSERT INTO agent (host, started, heartbeat) VALUES ('hv2', 1, 1)")
check "  hv2's heartbeat: refused" "$(refused "$out"; echo $?)" "$out"
out=$(as1 "INSERT INTO agent_journal VALUES ('hv2:1:1', 1)")
check "  hv2's journal: refused" "$(refused "$out"; echo $?)" "$out"
out=$(as1 "INSERT INTO audit (at, \"by\", action, object, vps_id) VALUES (1, 'alice', 'vps.move', 'vps/vps-b', 'vps-b')")
check "  an audit row of hv2's VPS: refused" "$(refused "$out"; echo $?)" "$out"
out=$(as1 "INSERT INTO audit (at, \"by\", action, object) VALUES (1, 'alice', 'token.create', 'token/9')")
check "  an audit row of no VPS: refused" "$(refused "$out"; echo $?)" "$out"
out=$(as1 "SELECT count(*) FROM api_token")
check "  the tokens: refused" "$(refused "$out"; echo $?)" "$out"
out=$(as1 "INSERT INTO agent_role VALUES ('portcullis_hv1', 'hv2')")
check "  remapping itself: refused" "$(refused "$out"; echo $?)" "$out"
out=$(as1 "SELECT portcullis_agent_role('portcullis_hv1', 'hv2')")
check "  through the owner's function: refused" "$(refused "$out"; echo $?)" "$out"
out=$(as1 "SELECT count(*) FROM vps")
check "  it reads the fleet (the ladder counts a VPS's history across hosts)" "$([ "$out" = 2 ]; echo $?)" "$out"
out=$(as1 "INSERT INTO agent_journal VALUES ('hv1:1:1', 1) RETURNING op")
check "  its own journal: yes" "$([ "$out" = hv1:1:1 ]; echo $?)" "$out"

# The audit log's "by" (schema 15): hv1 writes as its agent, or signed
# with its name; never as somebody else.
out=$(as1 "INSERT INTO audit (at, \"by\", action, object, vps_id) VALUES (1, 'alice', 'exception.grant', 'exception/99', 'vps-a') RETURNING \"by\"")
check "  an audit row of its VPS in alice's name: signed alice@hv1" "$([ "$out" = alice@hv1 ]; echo $?)" "$out"
out=$(as1 "INSERT INTO audit (at, \"by\", action, object, vps_id) VALUES (1, 'bob@hv2', 'vps.update', 'vps/vps-a', 'vps-a')")
check "  in another host's name (bob@hv2): refused" "$(refused "$out"; echo $?)" "$out"
out=$(as1 "INSERT INTO audit (at, \"by\", action, object, vps_id) VALUES (1, 'alice@example.org', 'vps.update', 'vps/vps-a', 'vps-a')")
check "  in an address's (alice@example.org): refused" "$(refused "$out"; echo $?)" "$out"
out=$(as1 "INSERT INTO audit (at, \"by\", action, object, vps_id) VALUES (1, 'portcullisd', 'incident.open', 'incident/99', 'vps-a') RETURNING \"by\"")
check "  as its agent (portcullisd): yes" "$([ "$out" = portcullisd ]; echo $?)" "$out"
out=$(psql "$url" -X -q -tA -c "INSERT INTO audit (at, \"by\", action, object, vps_id) VALUES (1, 'alice', 'vps.update', 'vps/vps-a', 'vps-a') RETURNING \"by\"")
check "  the owner writes alice's as alice" "$([ "$out" = alice ]; echo $?)" "$out"

# No table lock that stalls the fleet (schema 15): hv1 updates through
# column privileges and deletes nothing but its VPSes' addresses, so
# LOCK TABLE (which wants UPDATE, DELETE or TRUNCATE on the table) is
# refused on every table but vps_address (vps update replaces them).
for t in vps ticket ticket_event exception incident action notification audit agent agent_journal vps_attempt; do
        out=$(as1 "BEGIN; LOCK TABLE $t IN ACCESS EXCLUSIVE MODE; ROLLBACK")
        check "  LOCK TABLE $t IN ACCESS EXCLUSIVE MODE: refused" "$(refused "$out"; echo $?)" "$out"
done
out=$(as1 "BEGIN; SELECT id FROM vps WHERE id = 'vps-b' FOR UPDATE; ROLLBACK")
check "  hv2's row locked FOR UPDATE: no row" "$([ -z "$out" ]; echo $?)" "$out"
out=$(as1 "BEGIN; DELETE FROM vps WHERE id = 'vps-a' RETURNING id; ROLLBACK")
check "  its own VPS removed (and its history with it): refused" "$(refused "$out"; echo $?)" "$out"

# A session cut off in a transaction that holds the writers' lock (an
# agent's, its network gone) is ended by the server within 30 s (the
# database's idle_in_transaction_session_timeout, schema 15), not after
# TCP keepalive's 2 h: a writer waiting behind it gets through.
out=$(as1 "SHOW idle_in_transaction_session_timeout")
check "hv1's sessions: idle_in_transaction_session_timeout 30s" "$([ "$out" = 30s ]; echo $?)" "$out"
( echo "BEGIN; SELECT pg_advisory_xact_lock(1346568193);"; sleep 50; echo "COMMIT;" ) |
        psql "$hv1" -X -q >"$tmp/hold.log" 2>&1 &
hold_pid=$!
for _ in $(seq 1 50); do
        [ "$(owner "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 1346568193 AND granted")" = 1 ] && break
        sleep 0.1
done
t0=$(date +%s%N)
pc vps stop vps-b --by alice >/dev/null
t1=$(date +%s%N)
waited=$(( (t1 - t0) / 1000000 ))
echo "     (the owner's write waited ${waited} ms behind hv1's idle transaction)"
check "  a writer behind hv1's idle transaction with the writers' lock gets through within 30 s (+3)" \
        "$([ "$waited" -le 33000 ]; echo $?)" "waited ${waited} ms"
check "  the lock is gone with the session" \
        "$([ "$(owner "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 1346568193")" = 0 ]; echo $?)"
kill "$hold_pid" 2>/dev/null
wait "$hold_pid" 2>/dev/null

# Exceptions ending within 3 days on both hosts: each host's agent warns
# its own VPS's owner (the pass met hv2's and failed, every pass, when it
# was fleet-wide).
pc exception grant vps-a smtp --by alice --reason "trial" --until +2d >/dev/null || { cat "$tmp/err"; exit 1; }
pc exception grant vps-b smtp --by alice --reason "trial" --until +2d >/dev/null || { cat "$tmp/err"; exit 1; }

# hv1's agent with hv1's role: it starts, enforces and beats, and sends
# the owner's email of its own VPS (the relay is absent: a retry).
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
        mkdir -m 755 "$tmp/run"
        sed -e "s|control-socket: /run/portcullis/|control-socket: $tmp/run/|" \
            -e "s|attempts-interval: .*|attempts-interval: 1s|" \
            -e "s|  - profiles/|  - $src/etc/profiles/|" \
            -e "s|^  templates: templates|  templates: $src/etc/templates|" \
            "$src/etc/portcullis.yaml" >"$tmp/agent.yaml"
        unshare -n "$build/src/agent/portcullisd" -c "$tmp/agent.yaml" --db "$hv1" --host hv1 >"$tmp/agent.log" 2>&1 &
        agent_pid=$!
        for _ in $(seq 1 50); do
                [ "$(owner "SELECT count(*) FROM agent WHERE host = 'hv1' AND vpses = 1")" = 1 ] && break
                sleep 0.2
        done
        check "hv1's agent with hv1's role beats (1 VPS)" \
                "$([ "$(owner "SELECT count(*) FROM agent WHERE host = 'hv1' AND vpses = 1")" = 1 ]; echo $?)" \
                "$(tail -5 "$tmp/agent.log")"
        for _ in $(seq 1 30); do
                [ "$(owner "SELECT attempts FROM notification n WHERE vps_id = 'vps-a' AND kind = 'filter.placed'")" -ge 1 ] 2>/dev/null && break
                sleep 0.2
        done
        check "  and tries its VPS's email" \
                "$([ "$(owner "SELECT attempts FROM notification WHERE vps_id = 'vps-a' AND kind = 'filter.placed'")" -ge 1 ] 2>/dev/null; echo $?)" \
                "$(tail -5 "$tmp/agent.log")"
        check "  not hv2's" "$([ "$(owner "SELECT coalesce(sum(attempts), 0) FROM notification WHERE vps_id = 'vps-b'")" = 0 ]; echo $?)"
        for _ in $(seq 1 30); do
                [ "$(owner "SELECT count(*) FROM notification WHERE kind = 'exception.expiring'")" -ge 1 ] && break
                sleep 0.2
        done
        check "  it warns its VPS's owner of the exception ending" \
                "$([ "$(owner "SELECT string_agg(vps_id, ',') FROM notification WHERE kind = 'exception.expiring'")" = vps-a ]; echo $?)" \
                "$(owner "SELECT string_agg(vps_id, ',') FROM notification WHERE kind = 'exception.expiring'")"
        check "  nothing refused on the way" "$(! grep -q "row-level security\|permission denied" "$tmp/agent.log"; echo $?)" \
                "$(grep -m3 "row-level security\|permission denied" "$tmp/agent.log")"
        kill "$agent_pid" 2>/dev/null
        wait "$agent_pid" 2>/dev/null
        agent_pid=

        # A spoofing episode of an hv1 VPS noted while the database was
        # away, in the journal the agent keeps beside its socket (the
        # agent was stopped meanwhile): its start with hv1's role replays
        # it (offline.c: the mark, the incident, the policy's response,
        # the owner's email, in one transaction).  At lenoir, whose
        # policy suspends a spoofer.
        pc1 vps add vps-j --owner jo@example.org --site lenoir --iface vj --addr 198.51.100.14 --host hv1 --by hooks \
                >/dev/null || { cat "$tmp/err"; exit 1; }
        now=$(date +%s)
        printf '[{"op": "hv1:%s:1", "vps": "vps-j", "kind": "spoof", "count": 3, "first": %s, "last": %s, "gap": 300, "evidence": "{\\"source\\": \\"198.51.100.99\\"}", "what": "spoofed 198.51.100.99", "kinds": 1}]\n' \
                "$((now - 60))" "$((now - 60))" "$((now - 30))" >"$tmp/run/journal-hv1.json"
        # And a VPS moving from hv2 to hv1 (the orchestrator's move, as the
        # owner): hv1's agent records its arrival.
        pc vps add vps-m --owner mo@example.org --iface vm --addr 198.51.100.15 --host hv2 --by lab >/dev/null &&
                pc vps move vps-m --host hv1 --iface vm1 --by alice >/dev/null || { cat "$tmp/err"; exit 1; }
        unshare -n "$build/src/agent/portcullisd" -c "$tmp/agent.yaml" --db "$hv1" --host hv1 >"$tmp/agent2.log" 2>&1 &
        agent_pid=$!
        for _ in $(seq 1 50); do
                [ ! -e "$tmp/run/journal-hv1.json" ] && break
                sleep 0.2
        done
        check "hv1's agent replays its journal with hv1's role: the spoofing incident stored" \
                "$([ "$(owner "SELECT count(*) FROM incident WHERE vps_id = 'vps-j' AND kind = 'spoof' AND count = 3")" = 1 ]; echo $?)" \
                "$(grep -i journal "$tmp/agent2.log" | tail -3)"
        check "  marked once, as hv1's" \
                "$([ "$(owner "SELECT count(*) FROM agent_journal WHERE op = 'hv1:$((now - 60)):1'")" = 1 ]; echo $?)"
        check "  the policy's response (a suspension) stored, by portcullisd" \
                "$([ "$(owner "SELECT count(*) FROM action a JOIN incident i ON i.id = a.incident_id WHERE i.vps_id = 'vps-j' AND i.kind = 'spoof' AND a.kind = 'suspension' AND a.\"by\" = 'portcullisd'")" = 1 ]; echo $?)" \
                "$(owner "SELECT kind || ' ' || scope || ' ' || \"by\" FROM action WHERE vps_id = 'vps-j'")"
        check "  audited as portcullisd's" \
                "$([ "$(owner "SELECT count(*) FROM audit WHERE vps_id = 'vps-j' AND \"by\" = 'portcullisd'")" -ge 2 ]; echo $?)" \
                "$(owner "SELECT action || ' ' || \"by\" FROM audit WHERE vps_id = 'vps-j'")"
        check "  the owner's email queued" \
                "$([ "$(owner "SELECT count(*) FROM notification WHERE vps_id = 'vps-j'")" -ge 1 ]; echo $?)"
        check "  the journal is empty" "$([ ! -e "$tmp/run/journal-hv1.json" ]; echo $?)"
        for _ in $(seq 1 30); do
                [ "$(owner "SELECT count(*) FROM vps WHERE id = 'vps-m' AND moving_from IS NULL")" = 1 ] && break
                sleep 0.2
        done
        check "  it records vps-m's arrival from hv2, as portcullisd" \
                "$([ "$(owner "SELECT count(*) FROM audit WHERE vps_id = 'vps-m' AND action = 'vps.arrive' AND \"by\" = 'portcullisd'")" = 1 ]; echo $?)" \
                "$(owner "SELECT host || ' ' || coalesce(moving_from, '-') FROM vps WHERE id = 'vps-m'")"
        check "  nothing refused on the way" "$(! grep -q "row-level security\|permission denied" "$tmp/agent2.log"; echo $?)" \
                "$(grep -m3 "row-level security\|permission denied" "$tmp/agent2.log")"
        kill "$agent_pid" 2>/dev/null
        wait "$agent_pid" 2>/dev/null
        agent_pid=
else
        echo "skip the agent's checks (root and unshare needed)"
fi

# A move's confirmation (schema 16): hv2's vps-b pulled onto hv1 (by hv1's
# agent token, through the API: as the owner) is hv2's to confirm.  hv1
# cannot confirm it, nor remove the VPS before; hv2 confirms it and does
# nothing else with it.
pc vps move vps-b --host hv1 --iface vx --by hv1-hooks >/dev/null 2>&1
check "vps-b pulled onto hv1: hv2 has to confirm it" \
        "$([ "$(owner "SELECT host || ' ' || departing_from || ' ' || departing_iface FROM vps WHERE id = 'vps-b'")" = "hv1 hv2 vb" ]; echo $?)"
out=$(as1 "UPDATE vps SET departing_from = NULL, departing_iface = NULL WHERE id = 'vps-b'")
check "  psql as hv1: confirmed for hv2: refused" "$(refused "$out"; echo $?)" "$out"
out=$(as1 "UPDATE vps SET departing_from = 'hv1' WHERE id = 'vps-b'")
check "  another host named: refused" "$(refused "$out"; echo $?)" "$out"
out=$(as1 "DELETE FROM vps WHERE id = 'vps-b'")
check "  removed before hv2 confirmed: refused" "$(refused "$out"; echo $?)" "$out"
pc1 vps remove vps-b --by hooks --reason claimed >/dev/null 2>&1
check "  hv1's CLI: removed: refused" "$([ $? = 2 ] && refused "$(cat "$tmp/err")"; echo $?)" "$(cat "$tmp/err")"
pc1 vps move vps-b --host hv1 --iface vy --by hooks >/dev/null 2>&1
check "  pulled again on hv1 (its interface there)" $? "$(cat "$tmp/err")"
check "    still hv2's to confirm" "$([ "$(owner "SELECT departing_from FROM vps WHERE id = 'vps-b'")" = hv2 ]; echo $?)"
out=$(as1 "UPDATE vps SET moving_from = NULL, moving_iface = NULL WHERE id = 'vps-b' RETURNING departing_from")
check "  its arrival on hv1 (hv1's to record): still hv2's to confirm" "$([ "$out" = hv2 ]; echo $?)" "$out"
out=$(as2 "UPDATE vps SET host = 'hv2', departing_from = NULL, departing_iface = NULL WHERE id = 'vps-b'")
check "  psql as hv2: taken back while confirming: refused" "$(refused "$out"; echo $?)" "$out"
out=$(as2 "INSERT INTO audit (at, \"by\", action, object, vps_id) VALUES (1, 'x', 'vps.move', 'vps/vps-b', 'vps-b')")
check "  another audit row of it: refused" "$(refused "$out"; echo $?)" "$out"
out=$(as2 "INSERT INTO audit (at, \"by\", action, object, vps_id) VALUES (1, 'portcullisd', 'vps.depart', 'vps/vps-b', 'vps-b') RETURNING action")
check "  its vps.depart: yes" "$([ "$out" = vps.depart ]; echo $?)" "$out"
out=$(as2 "UPDATE vps SET departing_from = NULL, departing_iface = NULL WHERE id = 'vps-b' RETURNING host")
check "  confirmed: yes, still hv1's" "$([ "$out" = hv1 ]; echo $?)" "$out"

# The owner is not bound (it owns the tables): the API and the admins' CLI.
pc vps move vps-b --host hv3 --iface vnet3 --by alice >/dev/null 2>&1
check "the owner moves hv2's VPS" $? "$(cat "$tmp/err")"

echo "$checks checks, $failures failures"
[ "$failures" = 0 ]
