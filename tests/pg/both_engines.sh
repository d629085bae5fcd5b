#!/bin/bash
# The store on both engines: the same `portcullis` commands against a
# SQLite file and a real PostgreSQL server (a throwaway cluster,
# cluster.sh) must answer the same -- status, output and JSON, times and
# minted tokens aside.  Covers the registry, exceptions (a service, some
# of its ports, a source prefix), filters, suspensions, the ticket process,
# tokens, the audit log, the outbox and the refusals (overlaps, illegal
# transitions, limits), so that a query one engine reads differently, a
# constraint it maps to another error, or a transaction it nests otherwise
# shows as a difference.
#
# Fleet: hosts, an interface free on one host and taken on another, moves
# (the host left keeps the VPS, on its interface there, until the new one
# says it enforces it), and fleet status with no agent.
#
# Usage: both_engines.sh BUILD_DIR SOURCE_ROOT
set -u
build=$(readlink -f "$1") src=$(readlink -f "$2")
bin=$build/src/cli/portcullis
tmp=$(mktemp -d /tmp/portcullis-both.XXXXXX)
chmod 0711 "$tmp" # postgres, the server's user, reaches its folder inside
keep=${KEEP:-}; trap '"$src/tests/pg/cluster.sh" stop "$tmp/pg"; [ -n "$keep" ] || rm -rf "$tmp"' EXIT
pg=$("$src/tests/pg/cluster.sh" start "$tmp/pg") || exit 1
cd "$src"

# The commands, one per line (words split by the shell: no quoting games).
# VPS ids whose byte order is not a locale's (vps_7, vps-7, vps.7: the
# cluster's database collates en-US) check that the store compares bytes,
# as the load's merge of rows by VPS id needs.
cat >"$tmp/script" <<'EOF'
init
check
vps add vps-101 --site lenoir --owner ann@example.org --iface tap101 --addr 203.0.113.10 --addr 2001:db8:101::/64 --mac 52:54:00:00:01:01 --by orch
vps add vps-201 --site milano --owner bob@example.org --lang it --iface tap201 --addr 198.51.100.10 --by orch
vps add vps-202 --owner bob@example.org --iface tap202 --addr 198.51.100.24/29
vps add vps-301 --owner x@example.net --iface tap301 --addr 198.51.100.26
vps add vps-301 --owner x@example.net --iface tap201 --addr 198.51.100.99
vps add vps-101 --owner x@example.net --iface tap9 --addr 198.51.100.99
vps update vps-202 --addr 198.51.100.32/29 --by orch
vps stop vps-202 --by orch --reason maintenance
vps start vps-202 --by orch
--json vps list
exception grant vps-201 vpn --by alice --reason tunnel
exception grant vps-201 vpn --by alice --reason again
exception grant vps-101 source-prefix:192.0.2.64/29 --by alice --reason failover
exception grant vps-201 source-prefix:192.0.2.64/29 --by alice --reason failover
exception revoke vps-201 vpn --by alice --reason done
--json vps show vps-201
filter place vps-201 --service bittorrent --by carla --reason torrent --until 2099-01-01
filter place vps-201 --ports tcp/6667 --direction in --by carla --reason irc
--json vps show vps-201
filter lift vps-201 1 --by carla --reason ok
suspend vps-202 --by carla --reason abuse
suspend vps-202 --by carla --reason again
unsuspend vps-202 --by carla --reason fixed
ticket open vps-201 smtp --ports 587,465 --by bob --text newsletter
ticket open vps-201 smtp --by bob --text again
ticket open vps-201 vpn --by bob --text office
ticket investigate 1 --by alice --note looking
ticket approve 1 --by alice --ports 587 --note transactional
ticket approve 1 --by alice
ticket deny 2 --by alice --reason no
ticket revoke 1 --by alice --reason abuse
--json ticket list
--json ticket show 1
--json ticket list vps-201 --state denied
--json vps show vps-201
token create panel --role agent --host hv1 --by alice
token create ann --role customer --customer ann@example.org --by alice
token create panel --role admin --by alice
token revoke panel --by alice
--json token list --all
--json incident list --all
--json action list vps-201
--json notification list
--json audit
--json audit vps-201 --limit 5
vps remove vps-202 --by orch --reason gone
vps add vps_7 --owner ann@example.org --iface tap7u --addr 198.51.100.70 --by orch
vps add vps-7 --owner ann@example.org --iface tap7 --addr 198.51.100.71 --by orch
vps add vps.7 --owner ann@example.org --iface tap7d --addr 198.51.100.72 --by orch
exception grant vps_7 vpn --by alice --reason byte-order
exception grant vps.7 bittorrent --by alice --reason byte-order
--json vps list
vps add vps-901 --owner ann@example.org --iface vnet1 --addr 198.51.100.90 --host hv1 --by orch
vps add vps-902 --owner ann@example.org --iface vnet1 --addr 198.51.100.91 --host hv2 --by orch
vps add vps-903 --owner ann@example.org --iface vnet1 --addr 198.51.100.92 --host hv1 --by orch
vps add vps-904 --owner ann@example.org --iface vnet4 --addr 198.51.100.93 --host Bad! --by orch
vps move vps-901 --host hv2 --by orch
vps move vps-901 --host hv2 --iface vnet5 --by orch --reason migration
--json vps show vps-901
vps add vps-905 --owner ann@example.org --iface vnet1 --addr 198.51.100.94 --host hv1 --by orch
vps move vps-901 --host hv3 --iface vnet5 --by orch
--json vps show vps-901
vps move vps-901 --host hv1 --iface vnet1 --by orch
vps move vps-905 --host hv1 --iface vnet1 --by orch
vps move vps-901 --host hv1 --iface vnet1 --by orch
vps update vps-901 --host hv2
--json audit vps-901 --limit 4
--json fleet status
fleet status
EOF

# STATUS, then the output with what differs by nature masked: times,
# tokens (random), the database's own name.
run_all() { # DB_URL OUT
        local line n=0
        while IFS= read -r line; do
                n=$((n + 1))
                # shellcheck disable=SC2086
                "$bin" -c etc/portcullis.yaml --db "$1" $line >"$tmp/o" 2>"$tmp/e"
                echo "## $n: $line -> $?"
                out=$(cat "$tmp/o" "$tmp/e")
                printf '%s\n' "${out//"$1"/DB}" |
                        sed -E -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z/TIME/g' -e 's/pct_[A-Za-z0-9_-]+/TOKEN/g' \
                        -e 's/(: |=)1[0-9]{9}\b/\1T/g' -e 's#database [^ :]+( |:)#database DB\1#g' |
                        grep -v 'portcullisd is not running'
        done <"$tmp/script" >"$2"
}

run_all "sqlite:$tmp/t.db" "$tmp/sqlite.out"
run_all "$pg" "$tmp/pg.out"
checks=0 failures=0
check() {
        checks=$((checks + 1))
        if [ "$2" = 0 ]; then echo "ok   $1"; else failures=$((failures + 1)); echo "FAIL $1"; fi
}
diff -u "$tmp/sqlite.out" "$tmp/pg.out" >"$tmp/diff"
rc=$?
check "every command answers the same on SQLite and PostgreSQL ($(grep -c '^## ' "$tmp/sqlite.out") commands)" $rc
head -80 "$tmp/diff"
# The script itself must have done what it says (not both engines failing alike).
grep -q '^## 1: init -> 0' "$tmp/pg.out"
check "PostgreSQL: init created the schema" $?
[ "$(grep -c -- '-> 0$' "$tmp/pg.out")" -ge 35 ]
check "most commands succeed ($(grep -c -- '-> 0$' "$tmp/pg.out") of $(grep -c '^## ' "$tmp/pg.out"))" $?
grep -A1 '^## 7: vps add vps-301' "$tmp/pg.out" | grep -q 'interface tap201 is already vps-201'
check "PostgreSQL: a refusal keeps its message (the interface taken)" $?
grep -q '^## 8: vps add vps-101 .* -> 2' "$tmp/pg.out"
check "PostgreSQL: a duplicate id is refused (23505 as -EEXIST)" $?
echo "$checks checks, $failures failures"
[ "$failures" = 0 ]
