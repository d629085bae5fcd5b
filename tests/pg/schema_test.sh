#!/bin/bash
# The PostgreSQL schema (src/store/schema_pg.sql) on a real server: it
# loads, it has every table and column SQLite's migrations reach (so a new
# SQLite step without its PostgreSQL twin fails here), and it keeps the
# same rules (append-only audit, final states, one live exception per
# service, one live suspension per VPS).
#
# Usage: schema_test.sh BUILD_DIR SOURCE_ROOT
set -u
build=$(readlink -f "$1") src=$(readlink -f "$2")
tmp=$(mktemp -d /tmp/portcullis-pgschema.XXXXXX)
chmod 0711 "$tmp" # postgres, the server's user, reaches its folder inside
cluster=$tmp/pg
trap '"$src/tests/pg/cluster.sh" stop "$cluster"; rm -rf "$tmp"' EXIT
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
psql_() { psql "$url" -X -q -tA -v ON_ERROR_STOP=1 "$@"; }
# ERR SQL: runs SQL, which must fail with SQLSTATE ERR.
refused() {
        local out
        out=$(psql "$url" -X -q -tA -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c "$2" 2>&1)
        [ $? -ne 0 ] && grep -q "ERROR:  $1" <<<"$out"
}

# An empty database again, without the setting schema 15 gives it.
fresh_db() {
        psql_ -c "DROP SCHEMA public CASCADE" -c "CREATE SCHEMA public" \
              -c "ALTER DATABASE portcullis RESET idle_in_transaction_session_timeout" >/dev/null 2>&1
}
su_() { # SQL as the cluster's superuser (roles are made by a role that may)
        if [ "$(id -u)" = 0 ]; then
                runuser -u postgres -- psql -X -q -h "$cluster" -p 5432 -d portcullis -v ON_ERROR_STOP=1 "$@"
        else
                psql -X -q -h "$cluster" -p 5432 -U postgres -d portcullis -v ON_ERROR_STOP=1 "$@"
        fi
}

out=$(psql_ -f "$src/src/store/schema_pg.sql" 2>&1)
check "the schema loads" $? "$out"
check "at version 16" "$([ "$(psql_ -c 'SELECT version FROM schema_version')" = 16 ]; echo $?)"
# Row-level security as schemas 14 and 16 made it and schema 15 bound (the
# audit log's by, the database's idle-in-transaction bound), to compare with a
# migrated one.
security() {
        psql_ -c "SELECT tablename || ' ' || policyname || ' ' || cmd || ' ' || coalesce(qual, '-') || ' ' || coalesce(with_check, '-')
                  FROM pg_policies WHERE schemaname = 'public' ORDER BY 1" \
              -c "SELECT relname FROM pg_class WHERE relrowsecurity AND relnamespace = 'public'::regnamespace ORDER BY 1" \
              -c "SELECT proname || ' ' || md5(prosrc) || ' ' || prosecdef FROM pg_proc
                  WHERE proname IN ('portcullis_host', 'portcullis_mine', 'portcullis_gone', 'portcullis_agent_role',
                                    'portcullis_audit_by', 'portcullis_departure_guard')
                  ORDER BY 1" \
              -c "SELECT tgrelid::regclass || ' ' || tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1" \
              -c "SELECT array_to_string(setconfig, ' ') FROM pg_db_role_setting
                  WHERE setrole = 0 AND setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())"
}
fresh_security=$(security)
check "sessions idle in a transaction ended after 30 s" "$(grep -q "^idle_in_transaction_session_timeout=30s$" <<<"$fresh_security"; echo $?)" "$fresh_security"
check "row-level security on the per-VPS tables" "$(grep -c "^vps host_change UPDATE" <<<"$fresh_security" | grep -q 1; echo $?)" "$fresh_security"

# Every SQLite table and column, from a database the build creates.
"$build/src/cli/portcullis" -c "$src/etc/portcullis.yaml" --db "sqlite:$tmp/s.db" init >/dev/null
sqlite_cols=$(sqlite3 "$tmp/s.db" "SELECT m.name || '.' || p.name FROM sqlite_master m, pragma_table_info(m.name) p
                                    WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY 1")
pg_cols=$(psql_ -c "SELECT table_name || '.' || column_name FROM information_schema.columns
                     WHERE table_schema = 'public' AND table_name <> 'schema_version' ORDER BY 1")
missing=$(comm -23 <(sort <<<"$sqlite_cols") <(sort <<<"$pg_cols"))
extra=$(comm -13 <(sort <<<"$sqlite_cols") <(sort <<<"$pg_cols"))
check "every SQLite column is in PostgreSQL's schema" "$([ -z "$missing" ]; echo $?)" "$missing"
check "and no other" "$([ -z "$extra" ]; echo $?)" "$extra"
check "SQLite's schema is at version 16 too" \
        "$([ "$(sqlite3 "$tmp/s.db" 'PRAGMA user_version')" = 16 ]; echo $?)"

psql_ -c "INSERT INTO vps (id, owner, lang, site, created) VALUES ('vps-1', 'ann@example.org', 'en', 'milano', 1)" \
      -c "INSERT INTO audit (at, \"by\", action, object) VALUES (1, 'alice', 'vps.add', 'vps/vps-1')" \
      -c "INSERT INTO exception (vps_id, service, \"by\", created) VALUES ('vps-1', 'smtp', 'alice', 1)" \
      -c "INSERT INTO action (vps_id, kind, direction, scope, \"by\", created, terminated)
          VALUES ('vps-1', 'suspension', 'both', 'all', 'alice', 1, 1)" \
      -c "INSERT INTO notification (created, vps_id, kind, recipient, language, payload, state, next_attempt, message_id)
          VALUES (1, 'vps-1', 'k', 'ann@example.org', 'en', '{}', 'sent', 1, '<m@x>')"
check "rows go in" $?
check "the audit log refuses an update (23000)" "$(refused 23000 "UPDATE audit SET reason = 'x'"; echo $?)"
check "and a delete" "$(refused 23000 "DELETE FROM audit"; echo $?)"
check "a sent notification stays sent" "$(refused 23000 "UPDATE notification SET state = 'pending'"; echo $?)"
check "its message id never changes" "$(refused 23000 "UPDATE notification SET message_id = '<n@x>'"; echo $?)"
check "a termination stays one" "$(refused 23000 "UPDATE action SET terminated = 0"; echo $?)"
check "one live exception per VPS and service (23505)" \
        "$(refused 23505 "INSERT INTO exception (vps_id, service, \"by\", created) VALUES ('vps-1', 'smtp', 'bob', 2)"; echo $?)"
check "one live suspension per VPS" "$(refused 23505 "INSERT INTO action (vps_id, kind, direction, scope, \"by\", created)
                                                        VALUES ('vps-1', 'suspension', 'both', 'all', 'bob', 2)"; echo $?)"
check "a row of a VPS that does not exist (23503)" \
        "$(refused 23503 "INSERT INTO exception (vps_id, service, \"by\", created) VALUES ('vps-9', 'vpn', 'bob', 2)"; echo $?)"
psql_ -c "DELETE FROM vps WHERE id = 'vps-1'" 2>/dev/null
check "removing a VPS takes its rows along (the audit log stays)" \
        "$([ "$(psql_ -c 'SELECT (SELECT count(*) FROM exception) + (SELECT count(*) FROM action), (SELECT count(*) FROM audit)')" = "0|1" ]; echo $?)"

# A database an older build created is brought to this one's version.
fresh_db
out=$(psql_ -f "$src/tests/pg/schema_v11.sql" 2>&1)
check "a version 11 database loads" $? "$out"
psql_ -c "INSERT INTO vps (id, owner, lang, site, iface, created) VALUES ('vps-2', 'ann@example.org', 'en', 'milano', 'tap2', 1)"
out=$("$build/src/cli/portcullis" -c "$src/etc/portcullis.yaml" --db "$url" --json vps show vps-2 2>&1)
check "this build opens it" $? "$out"
check "and migrated it to version 16" "$([ "$(psql_ -c 'SELECT version FROM schema_version')" = 16 ]; echo $?)"
check "  its row-level security as a new one's" "$([ "$(security)" = "$fresh_security" ]; echo $?)" \
        "$(diff <(echo "$fresh_security") <(security) | head -5)"
pg_cols=$(psql_ -c "SELECT table_name || '.' || column_name FROM information_schema.columns
                     WHERE table_schema = 'public' AND table_name <> 'schema_version' ORDER BY 1")
missing=$(comm -23 <(sort <<<"$sqlite_cols") <(sort <<<"$pg_cols"))
check "with every column a new one has" "$([ -z "$missing" ]; echo $?)" "$missing"
check "and the change notices" "$([ "$(psql_ -c "SELECT count(*) FROM pg_trigger WHERE tgname = 'audit_notify'")" = 1 ]; echo $?)"
check "and the guard of a move's confirmation" \
        "$([ "$(psql_ -c "SELECT count(*) FROM pg_trigger WHERE tgname = 'vps_departure_guard'")" = 1 ]; echo $?)"
check "its VPS kept" "$([ "$(psql_ -c "SELECT iface FROM vps WHERE id = 'vps-2'")" = tap2 ]; echo $?)"

# A version 12 database (the fleet's, before an agent token's host) too,
# its tokens kept: an agent token of then is bound to no host.
fresh_db
out=$(psql_ -f "$src/tests/pg/schema_v12.sql" 2>&1)
check "a version 12 database loads" $? "$out"
psql_ -c "INSERT INTO api_token (name, hash, role, created, created_by) VALUES ('hooks', '\\x00', 'agent', 1, 'alice')"
out=$("$build/src/cli/portcullis" -c "$src/etc/portcullis.yaml" --db "$url" --json token list 2>&1)
check "this build opens it" $? "$out"
check "and migrated it to version 16" "$([ "$(psql_ -c 'SELECT version FROM schema_version')" = 16 ]; echo $?)"
check "  its row-level security as a new one's" "$([ "$(security)" = "$fresh_security" ]; echo $?)" \
        "$(diff <(echo "$fresh_security") <(security) | head -5)"
pg_cols=$(psql_ -c "SELECT table_name || '.' || column_name FROM information_schema.columns
                     WHERE table_schema = 'public' AND table_name <> 'schema_version' ORDER BY 1")
missing=$(comm -23 <(sort <<<"$sqlite_cols") <(sort <<<"$pg_cols"))
check "with every column a new one has" "$([ -z "$missing" ]; echo $?)" "$missing"
check "its agent token kept, bound to no host" "$(python3 -c '
import json, sys
t = json.loads(sys.argv[1])["tokens"]
sys.exit(0 if [(x["name"], x["role"], x["host"]) for x in t] == [("hooks", "agent", None)] else 1)' "$out"; echo $?)" "$out"
check "a host only on an agent token (23514)" \
        "$(refused 23514 "INSERT INTO api_token (name, hash, role, created, created_by, host) VALUES ('s', '\\x01', 'support', 1, 'a', 'hv1')"; echo $?)"

# A version 14 database with a host's role mapped (table-wide UPDATE and
# DELETE, its audit rows as written): migrated, the role keeps what it
# may do through column privileges and loses what lets it lock a table.
fresh_db
out=$(psql_ -f "$src/tests/pg/schema_v14.sql" 2>&1)
check "a version 14 database loads" $? "$out"
su_ -c "CREATE ROLE portcullis_hv9 LOGIN" >/dev/null
psql_ -c "SELECT portcullis_agent_role('portcullis_hv9', 'hv9')" >/dev/null
check "  its role of hv9 may update and delete vps (14)" \
        "$([ "$(psql_ -c "SELECT has_table_privilege('portcullis_hv9', 'vps', 'UPDATE') AND has_table_privilege('portcullis_hv9', 'vps', 'DELETE')")" = t ]; echo $?)"
out=$("$build/src/cli/portcullis" -c "$src/etc/portcullis.yaml" --db "$url" --json vps list 2>&1)
check "this build opens it" $? "$out"
check "and migrated it to version 16" "$([ "$(psql_ -c 'SELECT version FROM schema_version')" = 16 ]; echo $?)"
check "  its row-level security as a new one's" "$([ "$(security)" = "$fresh_security" ]; echo $?)" \
        "$(diff <(echo "$fresh_security") <(security) | head -5)"
privs() { # TABLE COLUMN: hv9's table UPDATE, table DELETE, column UPDATE
        psql_ -c "SELECT has_table_privilege('portcullis_hv9', '$1', 'UPDATE') || ' ' || has_table_privilege('portcullis_hv9', '$1', 'DELETE')
                         || ' ' || has_column_privilege('portcullis_hv9', '$1', '$2', 'UPDATE')"
}
check "  hv9's role updates vps's columns, not the table; deletes no VPS" "$([ "$(privs vps iface)" = "false false true" ]; echo $?)" "$(privs vps iface)"
check "  and deletes addresses" "$([ "$(privs vps_address prefix)" = "false true true" ]; echo $?)" "$(privs vps_address prefix)"
check "  and the columns schema 16 added (a departure's)" "$([ "$(privs vps departing_from)" = "false false true" ]; echo $?)" "$(privs vps departing_from)"
check "  its heartbeat's columns" "$([ "$(privs agent heartbeat)" = "false false true" ]; echo $?)" "$(privs agent heartbeat)"

echo "$checks checks, $failures failures"
[ "$failures" = 0 ]
