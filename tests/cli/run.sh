#!/bin/bash
# CLI tests: the real `portcullis` binary against a temporary database.
# Usage: run.sh PATH_TO_portcullis SOURCE_ROOT
#
# On PostgreSQL (issue 14): PC_TEST_PG_DIR=DIR, the folder of a cluster
# started by tests/pg/cluster.sh (tests/pg/cli_test.sh, meson's pg/cli, does
# it), makes each of the databases below (t, step8, step9, tix, orch, tok)
# a fresh database cli_NAME there, and each raw query (sql) run with psql.
# Step 8's tests of SQLite's files (paths, modes, a deleted file, README's
# commands) keep their own sqlite: databases on both runs.
set -u
bin=$1
root=$2
tmp=$(mktemp -d /tmp/portcullis-cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cd "$root"
pg=${PC_TEST_PG_DIR:-}
pg_admin() { # psql ARGS... as the cluster's superuser (its owner, postgres, when root)
        if [ "$(id -u)" = 0 ]; then
                runuser -u postgres -- psql -X -q -h "$pg" -p 5432 -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"
        else
                psql -X -q -h "$pg" -p 5432 -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"
        fi
}
# usedb NAME: $db is the database NAME (on PostgreSQL created empty at its
# first use, as cluster.sh creates `portcullis`; `init` makes its schema).
usedb() {
        if [ -z "$pg" ]; then
                db="sqlite:$tmp/$1.db"
                return
        fi
        if [ ! -e "$tmp/pgdb.$1" ]; then
                pg_admin -c "CREATE DATABASE cli_$1 OWNER portcullis TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'" >/dev/null ||
                        { echo "FAIL usedb: cannot create the database cli_$1 in $pg"; exit 1; }
                touch "$tmp/pgdb.$1"
        fi
        db="postgresql:///cli_$1?host=$pg&port=5432&user=portcullis"
}
# sql NAME SQL [PG_SQL]: a raw query on database NAME, printed as sqlite3
# prints it (columns by |, NULL empty); PG_SQL, when given, is its
# PostgreSQL spelling (where SQL is not portable).
sql() {
        if [ -z "$pg" ]; then
                sqlite3 "$tmp/$1.db" "$2"
        else
                psql -X -q -At -v ON_ERROR_STOP=1 -h "$pg" -p 5432 -U portcullis -d "cli_$1" -c "${3:-$2}"
        fi
}
# now_s: the SQL for the time now in seconds, in each engine's spelling
if [ -z "$pg" ]; then now_s="strftime('%s', 'now')"; else now_s="extract(epoch FROM now())::bigint"; fi
usedb t
failures=0
n=0

# t NAME WANT_EXIT CMD... : runs portcullis, keeps stdout/stderr in $out/$err.
t() {
        local name=$1 want=$2
        shift 2
        n=$((n + 1))
        "$bin" -c "${cli_cfg:-etc/portcullis.yaml}" --db "$db" "$@" >"$tmp/out" 2>"$tmp/err"
        got=$?
        out=$(cat "$tmp/out")
        err=$(cat "$tmp/err")
        if [ "$got" != "$want" ]; then
                echo "FAIL $name: exit $got, want $want"
                echo "  stdout: $out" | head -20
                echo "  stderr: $err" | head -5
                failures=$((failures + 1))
                return 1
        fi
        return 0
}
# has NAME TEXT HAYSTACK
has() {
        if ! grep -qF -- "$2" <<<"$3"; then
                echo "FAIL $1: missing '$2' in:"
                echo "$3" | head -20
                failures=$((failures + 1))
        fi
}
# hasnt NAME TEXT HAYSTACK
hasnt() {
        if grep -qF -- "$2" <<<"$3"; then
                echo "FAIL $1: unexpected '$2' in:"
                echo "$3" | head -20
                failures=$((failures + 1))
        fi
}
json() { # NAME PY-EXPR (on the variable j, from $out)
        if ! python3 -c "import json,sys; j=json.loads(sys.stdin.read()); assert $2, 'assertion: $2'" <<<"$out"; then
                echo "FAIL $1: JSON check $2 on: $out" | head -20
                failures=$((failures + 1))
        fi
}

# Help comes from the dispatch table.
t help 0 --help && for c in check config services vps explain exception ticket audit notification; do has help "  $c " "$out"; done
t help-vps 0 vps --help && has help-vps "vps add ID --owner EMAIL" "$out"
t unknown-command 2 frobnicate && has unknown-command "unknown command 'frobnicate'" "$err"
t unknown-option 2 --frob && has unknown-option "unknown option '--frob'" "$err"

# Only `init` creates a database (step 8 below tests what the others do).
t init 0 init && has init "created at schema version" "$out"
t check 0 check && has check "ok" "$out"
t check-json 0 --json check && json check-json 'j["ok"] is True and j["schema_version"] >= 1'
# A broken email template is refused at check, naming file, line and column.
mkdir -p "$tmp/tpl" && cp -r etc/templates/. "$tmp/tpl/" && cp etc/portcullis.yaml "$tmp/bad-tpl.yaml"
sed -i -e "s|^  templates: .*|  templates: $tmp/tpl|" -e "s|  - profiles/|  - $root/etc/profiles/|" "$tmp/bad-tpl.yaml"
printf 'Subject: {{vps}} suspended\n\nYour VPS {{no_such_key}} is suspended.\n' >"$tmp/tpl/en/vps.suspended.txt"
n=$((n + 1))
if "$bin" -c "$tmp/bad-tpl.yaml" --db "$db" check >"$tmp/out" 2>"$tmp/err"; then
        echo "FAIL check-bad-template: exit 0"; failures=$((failures + 1))
else
        has check-bad-template "$tmp/tpl/en/vps.suspended.txt:3:" "$(cat "$tmp/err")"
        has check-bad-template "no_such_key" "$(cat "$tmp/err")"
fi

t services 0 services && has services "smtp" "$out" && has services "block egress tcp 25,26,465,587,2525" "$out"
t services-json 0 services --json && json services-json '[s for s in j["services"] if s["name"]=="smtp"][0]["sites"]["lenoir"]["exemptable"] is False'

# Registering VPSes, with every kind of bad input named.
t add-101 0 vps add vps-101 --site lenoir --owner ada@example.net --iface tap101 --addr 203.0.113.10 --addr 2001:db8:101::/64 --mac 52:54:00:00:01:01 --by orch
t add-201 0 vps add vps-201 --site milano --owner bruno@example.it --lang it --iface tap201 --addr 198.51.100.10 --by orch
t add-202 0 vps add vps-202 --owner carla@example.it --iface tap202 --addr 198.51.100.24/29
t add-dup 2 vps add vps-201 --owner x@example.net --iface tap9 --addr 198.51.100.99 && has add-dup "vps vps-201 already exists" "$err"
t add-sameiface 2 vps add vps-301 --owner x@example.net --iface tap201 --addr 198.51.100.99 && has add-sameiface "interface tap201 is already vps-201's" "$err"
t add-overlap 2 vps add vps-301 --owner x@example.net --iface tap301 --addr 198.51.100.26 && has add-overlap "overlaps 198.51.100.24/29 of vps-202" "$err"
t add-hostbits 2 vps add vps-301 --owner x@example.net --iface tap301 --addr 198.51.100.33/29 && has add-hostbits "host bits" "$err"
t add-badaddr 2 vps add vps-301 --owner x@example.net --iface tap301 --addr 300.1.1.1 && has add-badaddr "'300.1.1.1' is not an IPv4 or IPv6 address" "$err"
t add-noaddr 2 vps add vps-301 --owner x@example.net --iface tap301 && has add-noaddr "--addr is required: at least one address or prefix" "$err"
t add-badowner 2 vps add vps-301 --owner nobody --iface tap301 --addr 198.51.100.40 && has add-badowner "--owner 'nobody' is not a valid email" "$err"
t add-badsite 2 vps add vps-301 --site mars --owner x@example.net --iface tap301 --addr 198.51.100.40 && has add-badsite "site 'mars' is not in" "$err"
t add-badlang 2 vps add vps-301 --lang fr --owner x@example.net --iface tap301 --addr 198.51.100.40 && has add-badlang "--lang 'fr' is not supported" "$err"
t add-badid 2 vps add "x'); DROP TABLE vps;--" --owner x@example.net --iface tap301 --addr 198.51.100.40 && has add-badid "is not a valid VPS id" "$err"
t add-badmac 2 vps add vps-301 --mac ff:ff:ff:ff:ff:ff --owner x@example.net --iface tap301 --addr 198.51.100.40 && has add-badmac "is not a unicast MAC" "$err"
# Addresses no VPS can own: each refused, naming the address and why.
for a in 0.0.0.0/0 ::/0 127.0.0.1 224.0.0.1 255.255.255.255 :: ::1 fe80::1 ff02::1 ::ffff:198.51.100.77 169.254.1.1 0.1.2.3 10.0.0.0/8 2001::/16; do
        t "add-unassignable-$a" 2 vps add vps-301 --site lenoir --owner x@example.net --iface tap301 --addr "$a" &&
                has "add-unassignable-$a" "--addr $a cannot be a VPS's" "$err"
done
t add-lo 2 vps add vps-301 --owner x@example.net --iface lo --addr 198.51.100.40 && has add-lo "--iface lo is the hypervisor's loopback" "$err"
t add-samemac 2 vps add vps-301 --site lenoir --owner x@example.net --iface tap301 --addr 203.0.113.77 --mac 52:54:00:00:01:01 &&
        has add-samemac "MAC 52:54:00:00:01:01 is already vps-101's" "$err"
t list 0 vps list && has list "vps-202" "$out" && has list "milano" "$out"
t list-json 0 vps list --json && json list-json 'len(j["vps"]) == 3 and j["vps"][0]["id"] == "vps-101" and j["vps"][0]["addresses"] == ["203.0.113.10/32", "2001:db8:101::/64"]'

# Explain: verdict, reasons, exit status.
t explain-465 1 explain vps-201 tcp/465 out
has explain-465 "reject: vps-201 tcp/465 egress" "$out"
has explain-465 "service smtp blocked by site policy blocked-services, rule 1" "$out"
has explain-465 "no exception for smtp on vps-201" "$out"
t explain-443 0 explain vps-201 tcp/443 && has explain-443 "allow: vps-201 tcp/443 egress" "$out"
t explain-25-in 0 explain vps-201 tcp/25 in && has explain-25-in "allowed by default" "$out"
t explain-6881-in 1 explain vps-201 tcp/6881 in && has explain-6881-in "drop: vps-201 tcp/6881 ingress" "$out"
t explain-1728 1 explain vps-201 tcp/1728 out && has explain-1728 "service vpn blocked" "$out"
t explain-lenoir-25 1 explain vps-101 tcp/25 out && has explain-lenoir-25 "redirect: vps-101" "$out" && has explain-lenoir-25 "not exemptable" "$out"
t explain-lenoir-465 0 explain vps-101 tcp/465 out
t explain-json 1 explain vps-201 udp/500 out --json && json explain-json 'j["verdict"] == "reject" and j["reasons"][0]["service"] == "vpn" and j["reasons"][0]["decisive"]'
t explain-multi 1 explain vps-201 tcp/443 tcp/25 out tcp/6881 in && has explain-multi "tcp/25 egress" "$out" && has explain-multi "drop" "$out"
t explain-badflow 2 explain vps-201 tcp/70000 && has explain-badflow "'tcp/70000' is not a flow" "$err"
t explain-baddir 2 explain vps-201 tcp/25 sideways && has explain-baddir "'sideways' is not a direction" "$err"
t explain-novps 2 explain vps-999 tcp/25 && has explain-novps "vps vps-999 does not exist" "$err"

# Exceptions: grant lifts the block for that VPS only; revoke restores it.
t grant-noby 2 exception grant vps-201 smtp --reason x && has grant-noby "--by WHO is required" "$err"
t grant-noreason 2 exception grant vps-201 smtp --by alice && has grant-noreason "--reason is required: the audit log and the customer's email say why" "$err"
t grant-lenoir 2 exception grant vps-101 smtp --by alice --reason x && has grant-lenoir "is not exemptable" "$err"
t grant-unrestricted 2 exception grant vps-101 vpn --by alice --reason x && has grant-unrestricted "does not restrict vpn" "$err"
t grant-unknown 2 exception grant vps-201 gopher --by alice --reason x && has grant-unknown "unknown service 'gopher'" "$err"
t grant-past 2 exception grant vps-201 smtp --by alice --reason x --until 2001-01-01 && has grant-past "--until '2001-01-01' is in the past" "$err"
t grant-badtime 2 exception grant vps-201 smtp --by alice --reason x --until tomorrow &&
        has grant-badtime "--until 'tomorrow' is not a valid time (2026-12-31, 2026-12-31T18:00:00Z or +30d)" "$err"
t grant-far 2 exception grant vps-201 smtp --by alice --reason x --until +99999999d &&
        has grant-far "--until '+99999999d' is after 9999-12-31T23:59:59Z" "$err"
t filter-far 2 filter place vps-201 --all --by alice --reason x --until 10000-01-01 &&
        has filter-far "--until '10000-01-01'" "$err"
t ticket-open 0 ticket open vps-201 smtp --by bruno --text "invoices from our billing app" && has ticket-open "ticket #1 opened" "$out"
t ticket-badsvc 2 ticket open vps-201 gopher --by bruno --text x && has ticket-badsvc "unknown service 'gopher'" "$err"
t ticket-novps 2 ticket open vps-999 smtp --by bruno --text x
t ticket-notext 2 ticket open vps-201 smtp --by bruno && has ticket-notext "--text TEXT is required" "$err"
t explain-pending 1 explain vps-201 tcp/465 out && has explain-pending "ticket #1 pending" "$out"
t grant-noticket 2 exception grant vps-201 smtp --by alice --reason x --ticket 99 && has grant-noticket "ticket #99 does not exist" "$err"
t grant-wrongvps 2 exception grant vps-202 smtp --by alice --reason x --ticket 1 && has grant-wrongvps "ticket #1 is for vps-201" "$err"
t grant 0 exception grant vps-201 smtp --by alice --reason "invoices; SPF+DKIM ok" --ticket 1 --until +30d
t ticket-approved 0 ticket list vps-201 --json && json ticket-approved 'j["tickets"][0]["state"] == "approved"'
t grant-again 2 exception grant vps-201 smtp --by alice --reason again && has grant-again "smtp" "$err"
t explain-granted 0 explain vps-201 tcp/465 out && has explain-granted "lifts the block" "$out" && has explain-granted "ticket #1" "$out"
t explain-other-vps 1 explain vps-202 tcp/465 out
t show 0 vps show vps-201 && has show "lifted by an exception" "$out" && has show "bruno@example.it" "$out"
t show-json 0 vps show vps-201 --json && json show-json 'j["exceptions"][0]["service"] == "smtp" and j["exceptions"][0]["ticket"] == 1'
t exc-list 0 exception list && has exc-list "vps-201" "$out"
t revoke 0 exception revoke vps-201 smtp --by alice --reason "abuse report"
t explain-revoked 1 explain vps-201 tcp/465 out
t revoke-again 2 exception revoke vps-201 smtp --by alice --reason again && has revoke-again "no exception" "$err"
t revoke-until 2 exception revoke vps-201 smtp --by alice --until 1d && has revoke-until "exception revoke takes no --until or --ticket" "$err"
t revoke-extra 2 exception revoke vps-201 smtp now --by alice && has revoke-extra "exception revoke takes a VPS id and a service" "$err"

# Suspension by hand, and anti-spoofing exceptions.
t suspend-noreason 2 suspend vps-201 --by alice && has suspend-noreason "--reason TEXT is required" "$err"
t suspend 0 suspend vps-201 --by alice --reason "abuse report #7" && has suspend "suspended vps-201" "$out"
t suspend-again 2 suspend vps-201 --by alice --reason again && has suspend-again "already suspended" "$err"
t explain-suspended 1 explain vps-201 tcp/443 && has explain-suspended "drop: vps-201" "$out" && has explain-suspended "is suspended" "$out"
t unsuspend 0 unsuspend vps-201 --by alice --reason "customer fixed it"
t explain-unsuspended 0 explain vps-201 tcp/443
t outbox 0 check
[ "$(sql t "SELECT count(*) FROM notification WHERE vps_id = 'vps-201' AND kind IN ('vps.suspended', 'vps.unsuspended')")" = 2 ] ||
        { echo "FAIL outbox: suspend/unsuspend did not queue two notifications"; failures=$((failures + 1)); }
t srcpfx-bad 2 exception grant vps-101 source-prefix:198.51.100.999/29 --by alice --reason x && has srcpfx-bad "is not source-prefix:CIDR" "$err"
t srcpfx-overlap 2 exception grant vps-101 source-prefix:198.51.100.0/24 --by alice --reason x && has srcpfx-overlap "overlaps 198.51.100.10/32 of vps-201" "$err"
t srcpfx-nocheck 2 exception grant vps-201 source-prefix:192.0.2.64/29 --by alice --reason x && has srcpfx-nocheck "has no anti-spoofing policy to except from" "$err"
t srcpfx 0 exception grant vps-101 source-prefix:192.0.2.64/29 --by alice --reason "VPN gateway" && has srcpfx "may also send from 192.0.2.64/29" "$out"
# ... and no new VPS may take an address inside it (the overlap holds both ways).
t add-in-srcpfx 2 vps add vps-399 --owner x@example.net --iface tap399 --addr 192.0.2.66 &&
        has add-in-srcpfx "address 192.0.2.66/32 overlaps source-prefix:192.0.2.64/29 granted to vps-101" "$err"
t srcpfx-unassignable 2 exception grant vps-101 source-prefix:127.0.0.0/8 --by alice --reason x &&
        has srcpfx-unassignable "127.0.0.0/8 cannot be a VPS's" "$err"

# The notification outbox: list, show, retry a dead letter, never a sent one.
# Queued so far: vps-201 #1 ticket received, #2 ticket approved, #3 revoked,
# #4 suspended, #5 unsuspended; vps-101 #6 granted (source prefix).
t notif-help 0 notification --help && has notif-help "notification retry N --by WHO --reason TEXT" "$out"
t notif-nosub 2 notification && has notif-nosub "needs a subcommand" "$err"
t notif-badsub 2 notification frob && has notif-badsub "unknown notification subcommand 'frob'" "$err"
t notif-list 0 notification list && has notif-list "exception.granted" "$out" && has notif-list "bruno@example.it" "$out" && has notif-list "LAST ERROR" "$out"
t notif-list-json 0 notification list --json && json notif-list-json '[n["id"] for n in j["notifications"]] == [6, 5, 4, 3, 2, 1] and all(n["state"] == "pending" and n["attempts"] == 0 and n["sent_at"] is None and n["message_id"] is None for n in j["notifications"])'
t notif-list-vps 0 notification list vps-201 --limit 2 --json && json notif-list-vps '[n["id"] for n in j["notifications"]] == [5, 4] and j["notifications"][0]["language"] == "it"'
t notif-list-badstate 2 notification list --state lost && has notif-list-badstate "--state is pending, sent or failed, not 'lost'" "$err"
t notif-list-badlimit 2 notification list --limit x && has notif-list-badlimit "--limit 'x' is not a number" "$err"
t notif-show 0 notification show 4 && has notif-show "notification #4: vps.suspended to bruno@example.it (it)" "$out" && has notif-show "payload:" "$out" && has notif-show '"reason": "abuse report #7"' "$out"
t notif-show-json 0 notification show 4 --json && json notif-show-json 'j["id"] == 4 and j["state"] == "pending" and j["payload"]["event"] == "vps.suspended" and j["payload"]["vps"] == "vps-201" and j["payload"]["addresses"] == ["198.51.100.10/32"]'
t notif-show-missing 2 notification show 99 && has notif-show-missing "notification #99 does not exist" "$err"
t notif-show-bad 2 notification show x && has notif-show-bad "'x' is not a notification number" "$err"
# What the notifier would have done: #4 given up on, #5 delivered.
sql t "UPDATE notification SET attempts = 5, message_id = '<4.t@portcullis.test>', state = 'failed', last_error = '550 5.1.1 user unknown' WHERE id = 4;
UPDATE notification SET attempts = 1, message_id = '<5.t@portcullis.test>', state = 'sent', sent_at = 1767225600 WHERE id = 5;"
t notif-failed 0 notification list --state failed --json && json notif-failed '[n["id"] for n in j["notifications"]] == [4] and j["notifications"][0]["last_error"] == "550 5.1.1 user unknown"'
t notif-sent 0 notification list vps-201 --state sent && has notif-sent "2026-01-01T00:00:00Z" "$out"
t notif-retry-noby 2 notification retry 4 --reason x && has notif-retry-noby "--by WHO is required" "$err"
t notif-retry-noreason 2 notification retry 4 --by alice && has notif-retry-noreason "--reason TEXT is required" "$err"
t notif-retry 0 notification retry 4 --by alice --reason "mailbox fixed" && has notif-retry "notification #4 (vps.suspended for vps-201) queued again for bruno@example.it" "$out"
t notif-retried 0 notification show 4 --json && json notif-retried 'j["state"] == "pending" and j["attempts"] == 0 and j["message_id"] == "<4.t@portcullis.test>" and j["next_attempt"] is not None'
t notif-retry-sent 2 notification retry 5 --by alice --reason again && has notif-retry-sent "was sent at 2026-01-01T00:00:00Z" "$err" && has notif-retry-sent "it is not sent twice" "$err"
t notif-retry-missing 2 notification retry 99 --by alice --reason x && has notif-retry-missing "notification #99 does not exist" "$err"
t notif-retry-json 0 notification retry 4 --by alice --reason "again" --json && json notif-retry-json 'j == {"retried": 4, "vps": "vps-201", "kind": "vps.suspended", "recipient": "bruno@example.it", "state": "pending"}'
t notif-audit 0 audit vps-201 && has notif-audit "notification.retry" "$out" && has notif-audit "mailbox fixed" "$out"

# Audit: every change, who and why, oldest first.
t audit 0 audit vps-201 && has audit "exception.grant" "$out" && has audit "exception.revoke" "$out" && has audit "alice" "$out"
t audit-json 0 audit --json && json audit-json '[e["action"] for e in j["audit"]].count("vps.add") == 3'
t remove 0 vps remove vps-202 --by orch --reason "cancelled"
t explain-removed 2 explain vps-202 tcp/25
t audit-removed 0 audit vps-202 && has audit-removed "vps.remove" "$out"

# A database from a newer Portcullis is refused, and not touched.
# (PostgreSQL's schema version is the row of schema_version.)
sql t "PRAGMA user_version = 99;" "UPDATE schema_version SET version = 99"
t newer-db 1 check && has newer-db "schema version 99" "$err"
[ "$(sql t 'PRAGMA user_version;' 'SELECT version FROM schema_version')" = 99 ] || { echo "FAIL newer-db: version changed"; failures=$((failures + 1)); }

# A broken config names file, line and key, and is refused.
printf 'database: sqlite:%s/x.db\nservicez: {}\n' "$tmp" >"$tmp/bad.yaml"
n=$((n + 1))
"$bin" -c "$tmp/bad.yaml" check >/dev/null 2>"$tmp/err"; got=$?
err=$(cat "$tmp/err")
[ $got = 1 ] || { echo "FAIL bad-config: exit $got"; failures=$((failures + 1)); }
has bad-config "$tmp/bad.yaml:2:1:" "$err"
has bad-config "servicez" "$err"
PORTCULLIS_CONFIG="$tmp/bad.yaml" "$bin" check >/dev/null 2>&1 && { echo "FAIL env-config: PORTCULLIS_CONFIG ignored"; failures=$((failures + 1)); }

# ---- step 8: tickets, control characters, explain
# A database of its own (the one above ends at a newer schema version) and
# the shipped config plus a site "strict" whose profile has exceptions: none.
usedb step8
q8() { sql step8 "$@"; }
printf 'profile: strict\ndescription: grants no exceptions\nexceptions: none\nrules:\n  - service: smtp\n    action: block\n  - service: vpn\n    action: block\n' >"$tmp/strict.yaml"
sed -e "s|^  templates: .*|  templates: $root/etc/templates|" -e "s|^  - profiles/\(.*\)|  - $root/etc/profiles/\1|" \
        -e "s|^  - $root/etc/profiles/blocked-services.yaml|&\n  - $tmp/strict.yaml|" -e "s|^sites:|&\n  strict:\n    policy: strict|" \
        etc/portcullis.yaml >"$tmp/step8.yaml"
t8() { local name=$1 want=$2; shift 2; t "$name" "$want" -c "$tmp/step8.yaml" "$@"; }
t8 s8-init 0 init
t8 s8-add-801 0 vps add vps-801 --site milano --owner dora@example.it --iface tap801 --addr 198.51.100.80 --by orch
t8 s8-add-802 0 vps add vps-802 --site milano --owner elio@example.it --iface tap802 --addr 198.51.100.81 --by orch
t8 s8-add-803 0 vps add vps-803 --site lenoir --owner fede@example.net --iface tap803 --addr 203.0.113.83 --by orch
t8 s8-add-804 0 vps add vps-804 --site strict --owner gino@example.net --iface tap804 --addr 203.0.113.84 --by orch
audit_rows() { q8 "SELECT count(*) FROM audit"; }

# Free text given on the command line is one line of text: a control
# character (C0 such as newline and ESC, DEL, C1) or a byte that is not
# UTF-8 is refused, naming the option, and nothing is stored.
rows=$(audit_rows)
t8 s8-reason-newline 2 exception grant vps-801 smtp --by alice --reason $'ok\n2026-01-01T00:00:00Z  mallory  exception.grant' &&
        has s8-reason-newline "--reason holds the control character U+000A at byte 3" "$err"
# a bidirectional override: "approved" that reads as written, reversed
t8 s8-reason-bidi 2 suspend vps-801 --by alice --reason $'ok \xe2\x80\xaedevorppa' &&
        has s8-reason-bidi "--reason holds the control character U+202E at byte 4" "$err"
t8 s8-text-esc 2 ticket open vps-801 smtp --by dora --text $'mail\e[2J\e]0;owned\a' &&
        has s8-text-esc "--text holds the control character U+001B at byte 5" "$err"
t8 s8-suspend-c1 2 suspend vps-801 --by alice --reason $'abuse \xc2\x9b31m' &&
        has s8-suspend-c1 "--reason holds the control character U+009B at byte 7" "$err"
t8 s8-filter-del 2 filter place vps-801 --all --by alice --reason $'x\x7f' && has s8-filter-del "--reason holds the control character U+007F" "$err"
t8 s8-filter-tab 2 filter place vps-801 --all --by alice --reason $'a\tb' && has s8-filter-tab "--reason holds the control character U+0009" "$err"
t8 s8-owner-c1 2 vps add vps-809 --owner $'x\xc2\x85y@example.net' --iface tap809 --addr 198.51.100.89 &&
        has s8-owner-c1 "--owner holds the control character U+0085" "$err"
t8 s8-add-reason 2 vps add vps-809 --owner x@example.net --iface tap809 --addr 198.51.100.89 --reason $'\r' &&
        has s8-add-reason "--reason holds the control character U+000D" "$err"
t8 s8-remove-utf8 2 vps remove vps-802 --by orch --reason $'bye \xff' && has s8-remove-utf8 "--reason is not valid UTF-8 at byte 5" "$err"
t8 s8-revoke-esc 2 exception revoke vps-801 smtp --by alice --reason $'\e[1m' && has s8-revoke-esc "--reason holds the control character U+001B" "$err"
t8 s8-retry-nl 2 notification retry 1 --by alice --reason $'a\nb' && has s8-retry-nl "--reason holds the control character U+000A" "$err"
[ "$(audit_rows)" = "$rows" ] || { echo "FAIL s8-nothing-stored: the audit log grew from $rows to $(audit_rows)"; failures=$((failures + 1)); }
t8 s8-utf8-ok 0 ticket open vps-801 smtp --by dora --text "fatture per i clienti, perché servono" && has s8-utf8-ok "ticket #1 opened" "$out"
# ... and what another writer stored is shown escaped: no fake row, no raw
# ESC or C1 reaching the terminal; JSON carries it exactly.
# (SQLite's char(N) is PostgreSQL's chr(N): the same code points.)
q="INSERT INTO audit (at, \"by\", action, object, vps_id, reason)
        VALUES (1767225600, 'import', 'vps.note', 'vps/vps-801', 'vps-801',
                'ok' || char(10) || '2026-01-01T00:00:00Z  mallory  exception.grant ' || char(27) || '[2J' || char(155) || 'x');
UPDATE ticket SET text = 'mail' || char(27) || ']0;owned' || char(7) WHERE id = 1;
UPDATE vps SET owner = 'dora' || char(27) || '[8m@example.it' WHERE id = 'vps-801';"
q8 "$q" "${q//char(/chr(}"
raw_control() { LC_ALL=C grep -q $'[\x01-\x09\x0b-\x1f\x7f]\|\xc2[\x80-\x9f]' <<<"$1"; }
t8 s8-audit-escaped 0 audit vps-801 && has s8-audit-escaped 'ok\n2026-01-01T00:00:00Z  mallory  exception.grant \x1b[2J\u009bx' "$out"
raw_control "$out" && { echo "FAIL s8-audit-escaped: a raw control character in: $out"; failures=$((failures + 1)); }
[ "$(grep -c '^[0-9]' <<<"$out")" = "$(q8 "SELECT count(*) FROM audit WHERE vps_id = 'vps-801'")" ] ||
        { echo "FAIL s8-audit-escaped: not one line per row: $out"; failures=$((failures + 1)); }
t8 s8-audit-json 0 audit vps-801 --json && json s8-audit-json '[e["reason"] for e in j["audit"] if e["action"] == "vps.note"][0].startswith("ok\n2026") and "\x1b[2J\u009bx" in [e["reason"] for e in j["audit"] if e["action"] == "vps.note"][0]'
t8 s8-tickets-escaped 0 ticket list vps-801 && has s8-tickets-escaped 'mail\x1b]0;owned\x07' "$out"
raw_control "$out" && { echo "FAIL s8-tickets-escaped: a raw control character in: $out"; failures=$((failures + 1)); }
t8 s8-show-escaped 0 vps show vps-801 && has s8-show-escaped 'dora\x1b[8m@example.it' "$out" && has s8-show-escaped 'mail\x1b]0;owned\x07' "$out"
raw_control "$out" && { echo "FAIL s8-show-escaped: a raw control character in: $out"; failures=$((failures + 1)); }
t8 s8-list-escaped 0 vps list && has s8-list-escaped 'dora\x1b[8m@example.it' "$out"
raw_control "$out" && { echo "FAIL s8-list-escaped: a raw control character in: $out"; failures=$((failures + 1)); }
q8 "UPDATE vps SET owner = 'dora@example.it' WHERE id = 'vps-801';"

# Explain's text is escaped too (an exception's reason stored by another writer).
t8 s8-explain-grant 0 exception grant vps-802 smtp --by alice --reason "billing mail" --until +1d
q8 "UPDATE exception SET reason = 'billing' || char(27) || '[8m mail' WHERE vps_id = 'vps-802'" \
        "UPDATE exception SET reason = 'billing' || chr(27) || '[8m mail' WHERE vps_id = 'vps-802'"
t8 s8-explain-escaped 0 explain vps-802 tcp/465 out && has s8-explain-escaped 'billing\x1b[8m mail' "$out"
raw_control "$out" && { echo "FAIL s8-explain-escaped: a raw control character in: $out"; failures=$((failures + 1)); }

# A ticket asks for a service that a grant could give at the VPS's site;
# one that no grant could answer is refused when opened, saying why.
tickets() { q8 "SELECT count(*) FROM ticket"; }
n_tickets=$(tickets)
t8 s8-ticket-unrestricted 2 ticket open vps-803 vpn --by fede --text "office VPN" &&
        has s8-ticket-unrestricted "site lenoir (policy lenoir) does not restrict vpn; there is nothing to exempt" "$err"
t8 s8-ticket-not-exemptable 2 ticket open vps-803 smtp --by fede --text "direct mail" &&
        has s8-ticket-not-exemptable "rule 1 of policy lenoir" "$err" && has s8-ticket-not-exemptable "is not exemptable" "$err"
t8 s8-ticket-exceptions-none 2 ticket open vps-804 smtp --by gino --text "mail" &&
        has s8-ticket-exceptions-none "policy strict of site strict" "$err" && has s8-ticket-exceptions-none "has exceptions: none" "$err"
[ "$(tickets)" = "$n_tickets" ] || { echo "FAIL s8-ticket-nothing-stored: $(tickets) tickets, want $n_tickets"; failures=$((failures + 1)); }

# exception grant --ticket N is ticket approve N: the ticket must be this
# VPS's, ask for this service and be open or investigating; refused
# otherwise, the ticket left as it was.
t8 s8-ticket-vpn 0 ticket open vps-801 vpn --by dora --text "office VPN" && has s8-ticket-vpn "ticket #2 opened" "$out"
t8 s8-ticket-bt 0 ticket open vps-801 bittorrent --by dora --text "linux ISOs" && has s8-ticket-bt "ticket #3 opened" "$out"
t8 s8-grant-other-service 2 exception grant vps-801 vpn --by alice --reason x --ticket 1 &&
        has s8-grant-other-service "ticket #1 asks for smtp, not vpn" "$err"
t8 s8-grant-other-vps 2 exception grant vps-802 vpn --by alice --reason x --ticket 2 &&
        has s8-grant-other-vps "ticket #2 is for vps-801, not vps-802" "$err"
q8 "UPDATE ticket SET state = 'denied' WHERE id = 2; UPDATE ticket SET state = 'closed' WHERE id = 3;"
t8 s8-grant-denied 2 exception grant vps-801 vpn --by alice --reason x --ticket 2 &&
        has s8-grant-denied "ticket #2 is denied: only an open or investigating ticket can be approved" "$err"
t8 s8-grant-closed 2 exception grant vps-801 bittorrent --by alice --reason x --ticket 3 &&
        has s8-grant-closed "ticket #3 is closed: only an open or investigating ticket can be approved" "$err"
t8 s8-grant-ticket 0 exception grant vps-801 smtp --by alice --reason "invoices" --ticket 1
t8 s8-grant-approved 2 exception grant vps-801 smtp --by alice --reason "again" --ticket 1 &&
        has s8-grant-approved "ticket #1 is approved: only an open or investigating ticket can be approved" "$err"
# revoking the exception revokes the ticket it answered
t8 s8-revoke 0 exception revoke vps-801 smtp --by alice --reason "abuse report"
[ "$(q8 "SELECT group_concat(id || ':' || state) FROM ticket WHERE vps_id = 'vps-801'" \
        "SELECT string_agg(id || ':' || state, ',' ORDER BY id) FROM ticket WHERE vps_id = 'vps-801'")" = "1:revoked,2:denied,3:closed" ] ||
        { echo "FAIL s8-grant-tickets-kept: $(q8 "SELECT group_concat(id || ':' || state) FROM ticket" "SELECT string_agg(id || ':' || state, ',' ORDER BY id) FROM ticket")"; failures=$((failures + 1)); }
[ "$(q8 "SELECT count(*) FROM exception WHERE vps_id = 'vps-801' AND revoked_at IS NULL")" = 0 ] ||
        { echo "FAIL s8-grant-nothing-granted: vps-801 has an exception"; failures=$((failures + 1)); }

# A profile with exceptions: none exempts nothing: services, explain and
# vps show say so, and an exception left in the database (granted before
# the profile changed) lifts nothing.
# (the site strict is the first column: block ... (not exemptable))
t8 s8-services-none 0 services && has s8-services-none "SITE strict" "$out" &&
        has s8-services-none "block egress tcp 25,26,465,587,2525 (not exemptable)    redirect egress tcp 25" "$out" &&
        has s8-services-none "block both tcp 1723 udp 500,1701,4500 (not exemptable)  allow" "$out"
t8 s8-services-none-json 0 services --json &&
        json s8-services-none-json '[s for s in j["services"] if s["name"]=="smtp"][0]["sites"]["strict"]["exemptable"] is False and [s for s in j["services"] if s["name"]=="smtp"][0]["sites"]["milano"]["exemptable"] is True'
t8 s8-explain-none 1 explain vps-804 tcp/465 out && has s8-explain-none "not exemptable" "$out"
grep -q "exemptable by ticket" <<<"$out" && { echo "FAIL s8-explain-none: says exemptable by ticket: $out"; failures=$((failures + 1)); }
t8 s8-explain-none-json 1 explain vps-804 udp/500 out --json && json s8-explain-none-json 'j["reasons"][0]["exemptable"] is False'
t8 s8-show-none 0 vps show vps-804 --json && json s8-show-none 'all(r["exemptable"] is False for r in j["rules"])'
q8 "INSERT INTO exception (vps_id, service, \"by\", reason, created) VALUES ('vps-804', 'smtp', 'alice', 'before the profile changed', $now_s - 60)"
t8 s8-explain-none-stale 1 explain vps-804 tcp/465 out && has s8-explain-none-stale "does not apply: the rule is not exemptable" "$out"

# An exception that ran to its end is shown as such (exception-expired),
# not as "no exception"; one revoked before its end is not.
q8 "UPDATE exception SET created = $now_s - 7200, until = $now_s - 60 WHERE vps_id = 'vps-802' AND service = 'smtp'"
t8 s8-explain-expired 1 explain vps-802 tcp/465 out && has s8-explain-expired "reject: vps-802 tcp/465 egress" "$out" &&
        has s8-explain-expired "exception #1 for smtp granted by alice" "$out" && has s8-explain-expired "has ended" "$out"
grep -q "no exception for smtp" <<<"$out" && { echo "FAIL s8-explain-expired: says no exception: $out"; failures=$((failures + 1)); }
t8 s8-explain-expired-json 1 explain vps-802 tcp/465 out --json &&
        json s8-explain-expired-json '[r["kind"] for r in j["reasons"]] == ["site-rule", "exception-expired"] and j["reasons"][0]["decisive"] and j["reasons"][1]["exception"] == 1 and j["reasons"][1]["until"].endswith("Z")'
t8 s8-explain-revoked 1 explain vps-801 tcp/465 out && has s8-explain-revoked "no exception for smtp on vps-801" "$out"
grep -q "has ended" <<<"$out" && { echo "FAIL s8-explain-revoked: a revoked exception shown as ended: $out"; failures=$((failures + 1)); }
# ---- step 8: databases, config --json, README
# tx NAME WANT CMD...: like t, but runs CMD as given (its own -c, --db, folder).
tx() {
        local name=$1 want=$2
        shift 2
        n=$((n + 1))
        "$@" >"$tmp/out" 2>"$tmp/err"
        got=$?
        out=$(cat "$tmp/out")
        err=$(cat "$tmp/err")
        if [ "$got" != "$want" ]; then
                echo "FAIL $name: exit $got, want $want"
                echo "  stdout: $out" | head -20
                echo "  stderr: $err" | head -5
                failures=$((failures + 1))
                return 1
        fi
        return 0
}
bin_abs=$(readlink -f "$bin")
in_dir() { (cd "$1" && shift && "$@"); } # in_dir DIR CMD...
absent() { # NAME PATH: PATH was not created
        if [ -e "$2" ]; then echo "FAIL $1: $2 was created"; failures=$((failures + 1)); fi
}
present() { # NAME PATH
        if [ ! -e "$2" ]; then echo "FAIL $1: $2 is missing"; failures=$((failures + 1)); fi
}
# s8_config FILE DATABASE: the shipped config at FILE with DATABASE, its
# profiles, templates and control socket made absolute.
s8_config() {
        mkdir -p "$(dirname "$1")"
        sed -e "s|^database:.*|database: $2|" -e "s|  - profiles/|  - $root/etc/profiles/|" \
            -e "s|^  templates: templates|  templates: $root/etc/templates|" \
            -e "s|control-socket: /run/portcullis/|control-socket: $tmp/|" \
            etc/portcullis.yaml >"$1"
}

# Only `init` creates a database; every other command says there is none
# and how to make one, and leaves no file or folder behind.
s8_config "$tmp/s8/shipped.yaml" "sqlite:$tmp/s8/var/lib/portcullis/portcullis.db"
tx db-check-creates-nothing 1 "$bin" -c "$tmp/s8/shipped.yaml" check &&
        has db-check-creates-nothing "no database at $tmp/s8/var/lib/portcullis/portcullis.db" "$err" &&
        has db-check-creates-nothing "create it with \`portcullis -c $tmp/s8/shipped.yaml init\`" "$err"
absent db-check-creates-nothing "$tmp/s8/var"
tx db-check-json-creates-nothing 1 "$bin" -c "$tmp/s8/shipped.yaml" --json check &&
        json db-check-json-creates-nothing 'j["ok"] is False and "no database at" in j["errors"][0]'
absent db-check-json-creates-nothing "$tmp/s8/var"
missing=$tmp/s8/nowhere/state/p.db
for c in "vps list" "vps show vps-201" "audit" "exception list" "ticket list" "notification list" \
         "explain vps-201 tcp/25" "vps add vps-801 --owner x@example.net --iface tap801 --addr 198.51.100.80 --by t" \
         "suspend vps-201 --by t --reason x"; do
        # shellcheck disable=SC2086 # the command's words
        tx "db-missing-$c" 2 "$bin" -c etc/portcullis.yaml --db "sqlite:$missing" $c &&
                has "db-missing-$c" "no database at $missing; create it with \`portcullis -c etc/portcullis.yaml --db sqlite:$missing init\`, or by starting portcullisd" "$err"
done
absent db-missing "$tmp/s8/nowhere"
# ... and on PostgreSQL, a database with no Portcullis schema is "no
# database" alike: refused, naming it, and left without a table.
if [ -n "$pg" ]; then
        usedb empty
        for c in "check" "vps list" "vps add vps-801 --owner x@example.net --iface tap801 --addr 198.51.100.80 --by t" \
                 "suspend vps-201 --by t --reason x"; do
                want=2
                [ "$c" = check ] && want=1
                # shellcheck disable=SC2086 # the command's words
                tx "db-empty-pg-$c" $want "$bin" -c etc/portcullis.yaml --db "$db" $c &&
                        has "db-empty-pg-$c" "no database at" "$err" && has "db-empty-pg-$c" "dbname=cli_empty" "$err" &&
                        has "db-empty-pg-$c" "(it has no Portcullis schema); create it with" "$err"
        done
        [ "$(sql empty "" "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")" = 0 ] ||
                { echo "FAIL db-empty-pg: tables were created"; failures=$((failures + 1)); }
        tx db-empty-pg-init 0 "$bin" -c etc/portcullis.yaml --db "$db" init && has db-empty-pg-init "created at schema version" "$out"
        tx db-empty-pg-check 0 "$bin" -c etc/portcullis.yaml --db "$db" check && has db-empty-pg-check "ok" "$out"
fi
tx db-init-help 0 "$bin" init --help && has db-init-help "Usage: portcullis [-c FILE] [--json] init" "$out" &&
        has db-init-help "the only command that does" "$out" &&
        has db-init-help "relative to the working directory" "$out" && has db-init-help "Exit status:" "$out"
tx db-help-lists-init 0 "$bin" --help && has db-help-lists-init "  init " "$out"
tx db-init 0 "$bin" -c "$tmp/s8/shipped.yaml" init &&
        has db-init "database sqlite:$tmp/s8/var/lib/portcullis/portcullis.db created at schema version" "$out"
[ "$(stat -c %a "$tmp/s8/var/lib/portcullis/portcullis.db" 2>/dev/null)" = 640 ] &&
        [ "$(stat -c %a "$tmp/s8/var/lib/portcullis" 2>/dev/null)" = 750 ] ||
        { echo "FAIL db-init: not mode 0640 in a folder 0750"; failures=$((failures + 1)); }
tx db-init-again 0 "$bin" -c "$tmp/s8/shipped.yaml" init && has db-init-again "exists, at schema version" "$out" &&
        has db-init-again "nothing created" "$out"
tx db-init-json 0 "$bin" -c "$tmp/s8/shipped.yaml" --json init &&
        json db-init-json "j == {\"database\": \"sqlite:$tmp/s8/var/lib/portcullis/portcullis.db\", \"created\": False, \"schema_version\": j[\"schema_version\"]} and j[\"schema_version\"] >= 4"
tx db-init-json-created 0 "$bin" -c "$tmp/s8/shipped.yaml" --db "sqlite:$tmp/s8/j/p.db" init --json &&
        json db-init-json-created 'j["created"] is True'
tx db-after-init 0 "$bin" -c "$tmp/s8/shipped.yaml" check && has db-after-init "ok" "$out"
tx db-init-extra 2 "$bin" -c "$tmp/s8/shipped.yaml" init now && has db-init-extra "init takes no arguments" "$err"

# A relative sqlite:PATH in the config file is relative to the file's
# folder, whatever the working directory; a relative --db to the working
# directory.
mkdir -p "$tmp/s8/wd"
s8_config "$tmp/s8/cfgdir/rel.yaml" "sqlite:state/rel.db"
tx db-relative-config 0 in_dir "$tmp/s8/wd" "$bin_abs" -c ../cfgdir/rel.yaml init &&
        has db-relative-config "database sqlite:$tmp/s8/cfgdir/state/rel.db created" "$out"
present db-relative-config "$tmp/s8/cfgdir/state/rel.db"
absent db-relative-config "$tmp/s8/wd/state"
tx db-relative-config-shown 0 "$bin" -c "$tmp/s8/cfgdir/rel.yaml" config &&
        has db-relative-config-shown "database: \"sqlite:$tmp/s8/cfgdir/state/rel.db\"" "$out"
tx db-relative-cli 0 in_dir "$tmp/s8/wd" "$bin_abs" -c "$root/etc/portcullis.yaml" --db sqlite:cli.db init &&
        has db-relative-cli "database sqlite:cli.db created" "$out"
present db-relative-cli "$tmp/s8/wd/cli.db"
absent db-relative-cli "$root/cli.db"

# A database deleted under a loop of changes: every change after it fails
# (it used to recreate the database and exit 0, the earlier changes lost).
loopdb=$tmp/s8/loop/p.db
"$bin" -c etc/portcullis.yaml --db "sqlite:$loopdb" init >/dev/null 2>&1
written=0 refused=0
for i in $(seq 1 60); do
        [ "$i" = 3 ] && rm -f "$loopdb" "$loopdb-wal" "$loopdb-shm"
        if "$bin" -c etc/portcullis.yaml --db "sqlite:$loopdb" vps add "vps-$((800 + i))" --owner x@example.net \
                --iface "tap$((800 + i))" --addr "198.51.100.$i" --by loop >/dev/null 2>"$tmp/err"; then
                written=$((written + 1))
        elif grep -qF "no database at $loopdb" "$tmp/err"; then
                refused=$((refused + 1))
        fi
done
n=$((n + 1))
[ "$written/$refused" = 2/58 ] ||
        { echo "FAIL db-deleted-loop: $written changes written and $refused refused, want 2 and 58"; failures=$((failures + 1)); }
absent db-deleted-loop "$loopdb"

# `config --json`: the effective config as JSON, the same as the YAML.
tx config-json 0 "$bin" -c etc/portcullis.yaml --json config &&
        json config-json 'j["database"] == "sqlite:/var/lib/portcullis/portcullis.db" and j["default-site"] == "milano" and j["sites"]["lenoir"] == {"policy": "lenoir", "description": "Provider A, Lenoir, North Carolina", "topology": "routed"} and "tcp/25" in j["services"]["smtp"]["ports"] and j["policies"]["lenoir"]["smtp-proxy"]["limits"]["messages-per-hour"] > 0 and j["escalation"]["steps"][-1] == "suspend" and isinstance(j["detectors"]["scan"]["false-positive-rate"], float)'
yaml_out=$("$bin" -c etc/portcullis.yaml config)
n=$((n + 1))
if ! python3 - "$out" "$yaml_out" <<'EOF'
# The JSON holds what the canonical YAML holds, key for key in the same
# order, scalars typed (YAML read as plain strings here, so no YAML 1.1
# guessing of off/on).
import json, sys, yaml
j = json.loads(sys.argv[1])
y = yaml.load(sys.argv[2], Loader=yaml.BaseLoader)
def same(a, b, where):
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: {a} != {b}"
        for i, (x, z) in enumerate(zip(a, b)):
            same(x, z, f"{where}[{i}]")
    elif isinstance(a, bool):
        assert b == ("true" if a else "false"), f"{where}: {a} != {b}"
    elif isinstance(a, int):
        assert b == str(a), f"{where}: {a} != {b}"
    elif isinstance(a, float):
        assert float(b) == a, f"{where}: {a} != {b}"
    else:
        assert isinstance(a, str) and a == b, f"{where}: {a!r} != {b!r}"
same(j, y, "config")
EOF
then
        echo "FAIL config-json-same: the JSON and the canonical YAML differ"; failures=$((failures + 1))
fi
tx config-json-relative 0 "$bin" -c "$tmp/s8/cfgdir/rel.yaml" config --json &&
        json config-json-relative "j[\"database\"] == \"sqlite:$tmp/s8/cfgdir/state/rel.db\""

# README.md's "Using it" commands run as written on a fresh install: the
# block after the marker, verbatim, each command (with its continuation
# lines) exiting 0, or the status its "# exit N" comment gives.  Only the
# binary and the config differ: a `portcullis` function and
# $PORTCULLIS_CONFIG, the shipped config with the database in a folder of
# its own.
readme=$tmp/s8/readme
s8_config "$readme/etc/portcullis.yaml" "sqlite:../state/portcullis.db"
mapfile -t readme_cmds < <(python3 - README.md <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"<!-- tests/cli/run.sh: readme-using-it -->\s*```sh\n(.*?)\n```", text, re.S)
if m is None:
    sys.exit("README.md: no ```sh block after <!-- tests/cli/run.sh: readme-using-it -->")
for cmd in re.sub(r"\\\n\s*", "", m.group(1)).splitlines():
    if cmd.strip():
        print(cmd)
EOF
)
portcullis() { PORTCULLIS_CONFIG=$readme/etc/portcullis.yaml "$bin_abs" "$@"; }
n=$((n + 1))
[ "${#readme_cmds[@]}" -ge 8 ] ||
        { echo "FAIL readme-using-it: ${#readme_cmds[@]} commands found in README.md"; failures=$((failures + 1)); }
for c in "${readme_cmds[@]}"; do
        want=0
        [[ $c =~ \#\ exit\ ([0-9]+) ]] && want=${BASH_REMATCH[1]}
        n=$((n + 1))
        (cd "$readme" && eval "$c") >"$tmp/out" 2>"$tmp/err"
        got=$?
        if [ "$got" != "$want" ]; then
                echo "FAIL readme-using-it: exit $got, want $want: $c"
                head -5 "$tmp/err"
                failures=$((failures + 1))
        fi
done
present readme-using-it "$readme/state/portcullis.db"
unset -f portcullis

# ---- step 9: incident and action commands
# A database of its own; incidents written as portcullisd's incident_note
# writes them, filters and suspensions placed with the commands above.
usedb step9
q9() { sql step9 "$@"; }
audit9() { q9 "SELECT count(*) FROM audit"; }
t s9-help 0 --help && has s9-help "  incident " "$out" && has s9-help "  action " "$out"
t s9-help-incident 0 incident --help && has s9-help-incident "incident close N --by WHO --reason TEXT [--lift-actions]" "$out" &&
        has s9-help-incident "Closing lifts nothing" "$out"
t s9-help-action 0 action --help && has s9-help-action "action extend N --until TIME --by WHO --reason TEXT" "$out" &&
        has s9-help-action "action make-permanent N" "$out"
t s9-init 0 init
t s9-add-901 0 vps add vps-901 --site milano --owner hana@example.it --iface tap901 --addr 198.51.100.90 --by orch
t s9-add-902 0 vps add vps-902 --site milano --owner ivo@example.it --iface tap902 --addr 198.51.100.91 --by orch
# #1 scan and #2 spam of vps-901 (#2 with an ESC in its kind), #3 spoof of vps-902, closed.
q="INSERT INTO incident (vps_id, kind, first_seen, last_seen, count, evidence, state) VALUES
        ('vps-901', 'scan', 1767225600, 1767225660, 42, '{\"ports\": [22, 23], \"sample\": \"203.0.113.7\"}', 'open'),
        ('vps-901', 'sp' || char(27) || '[2Jam', 1767225700, 1767225800, 7, NULL, 'open'),
        ('vps-902', 'spoof', 1767225000, 1767225001, 1, NULL, 'closed');"
q9 "$q" "${q//char(/chr(}"
t s9-filter-1 0 filter place vps-901 --all --by alice --reason "scan contained" --until +1d
t s9-filter-2 0 filter place vps-901 --ports tcp/25 --by alice --reason "spam"
t s9-suspend-3 0 suspend vps-902 --by alice --reason "spoofing"
q9 "UPDATE action SET incident_id = 1 WHERE id = 1; UPDATE action SET incident_id = 2 WHERE id = 2;"

t s9-inc-list 0 incident list && has s9-inc-list "FIRST SEEN" "$out" && has s9-inc-list "2026-01-01T00:00:00Z" "$out" &&
        has s9-inc-list 'sp\x1b[2Jam' "$out"
[[ $out == *$'\e'* ]] && { echo "FAIL s9-inc-list: a raw ESC reached the terminal"; failures=$((failures + 1)); }
t s9-inc-list-json 0 incident list --json &&
        json s9-inc-list-json '[i["id"] for i in j["incidents"]] == [2, 1] and j["incidents"][1]["evidence"]["ports"] == [22, 23] and j["incidents"][1]["count"] == 42 and j["incidents"][1]["actions"] == 1 and j["incidents"][0]["kind"] == "sp\x1b[2Jam"'
t s9-inc-list-all 0 incident list --all --json && json s9-inc-list-all '[i["id"] for i in j["incidents"]] == [3, 2, 1] and j["incidents"][0]["state"] == "closed"'
t s9-inc-list-kind 0 incident list vps-901 --kind scan --json && json s9-inc-list-kind '[i["id"] for i in j["incidents"]] == [1]'
t s9-inc-list-vps 0 incident list vps-902 --open --json && json s9-inc-list-vps 'j["incidents"] == []'
t s9-inc-list-novps 2 incident list vps-999 && has s9-inc-list-novps "no VPS 'vps-999'" "$err"
t s9-inc-list-both 2 incident list --open --all && has s9-inc-list-both "--open and --all exclude each other" "$err"
t s9-inc-list-badkind 2 incident list --kind 'a b' && has s9-inc-list-badkind "--kind 'a b' is not a kind" "$err"
t s9-inc-show 0 incident show 1 && has s9-inc-show "incident #1: scan by vps-901 (open)" "$out" &&
        has s9-inc-show "count       42" "$out" && has s9-inc-show '"sample":"203.0.113.7"' "$out" && has s9-inc-show "scan contained" "$out"
t s9-inc-show-json 0 incident show 1 --json &&
        json s9-inc-show-json 'j["id"] == 1 and j["first_seen"] == "2026-01-01T00:00:00Z" and j["last_seen"] == "2026-01-01T00:01:00Z" and j["evidence"]["sample"] == "203.0.113.7" and [a["id"] for a in j["actions"]] == [1] and j["actions"][0]["state"] == "active" and j["actions"][0]["kind"] == "filter"'
t s9-inc-show-missing 2 incident show 99 && has s9-inc-show-missing "incident #99 does not exist" "$err"
t s9-inc-show-bad 2 incident show x && has s9-inc-show-bad "'x' is not an incident number" "$err"
t s9-inc-nosub 2 incident && has s9-inc-nosub "needs a subcommand" "$err"
t s9-inc-badsub 2 incident frob && has s9-inc-badsub "unknown incident subcommand 'frob'" "$err"

t s9-act-list 0 action list && has s9-act-list "suspension" "$out" && has s9-act-list "tcp/25" "$out" && has s9-act-list "scan contained" "$out"
t s9-act-list-json 0 action list --json &&
        json s9-act-list-json '[a["id"] for a in j["actions"]] == [3, 2, 1] and j["actions"][0]["kind"] == "suspension" and j["actions"][1]["until"] is None and j["actions"][2]["incident"] == 1 and all(a["state"] == "active" for a in j["actions"])'
t s9-act-list-vps 0 action list vps-902 --active --json && json s9-act-list-vps '[a["id"] for a in j["actions"]] == [3]'
t s9-act-list-novps 2 action list vps-999 && has s9-act-list-novps "no VPS 'vps-999'" "$err"
t s9-act-badsub 2 action frob && has s9-act-badsub "unknown action subcommand 'frob'" "$err"

# Refusals name the argument and change nothing.
rows=$(audit9)
t s9-lift-noby 2 action lift 1 --reason x && has s9-lift-noby "--by WHO is required" "$err"
t s9-lift-noreason 2 action lift 1 --by alice && has s9-lift-noreason "--reason TEXT is required" "$err"
t s9-lift-esc 2 action lift 1 --by alice --reason $'ok\e[2J' && has s9-lift-esc "--reason holds the control character U+001B" "$err"
t s9-lift-bad 2 action lift x --by alice --reason x && has s9-lift-bad "'x' is not an action number" "$err"
t s9-lift-missing 2 action lift 99 --by alice --reason x && has s9-lift-missing "action #99 does not exist" "$err"
t s9-ext-nountil 2 action extend 1 --by alice --reason x && has s9-ext-nountil "--until TIME is required" "$err"
t s9-ext-badtime 2 action extend 1 --until tomorrow --by alice --reason x && has s9-ext-badtime "--until 'tomorrow' is not a valid time" "$err"
t s9-ext-past 2 action extend 1 --until 2001-01-01 --by alice --reason x && has s9-ext-past "--until '2001-01-01' is in the past" "$err"
t s9-ext-shorter 2 action extend 1 --until +1h --by alice --reason x && has s9-ext-shorter "the new end must be later" "$err"
t s9-ext-permanent 2 action extend 2 --until +30d --by alice --reason x && has s9-ext-permanent "filter #2 of vps-901 is permanent" "$err"
t s9-ext-suspension 2 action extend 3 --until +30d --by alice --reason x && has s9-ext-suspension "action #3 of vps-902 is a suspension" "$err"
t s9-perm-again 2 action make-permanent 2 --by alice --reason x && has s9-perm-again "permanent already" "$err"
t s9-lift-until 2 action lift 1 --until +2d --by alice --reason x && has s9-lift-until "--until is for \`action extend\` only" "$err"
t s9-close-noreason 2 incident close 1 --by alice && has s9-close-noreason "--reason TEXT is required" "$err"
t s9-close-missing 2 incident close 99 --by alice --reason x && has s9-close-missing "incident #99 does not exist" "$err"
t s9-close-closed 2 incident close 3 --by alice --reason x && has s9-close-closed "incident #3 of vps-902 is closed already" "$err"
[ "$(audit9)" = "$rows" ] || { echo "FAIL s9-nothing-changed: the audit log grew from $rows to $(audit9)"; failures=$((failures + 1)); }
[ "$(q9 "SELECT count(*) FROM action WHERE lifted_at IS NULL AND (until IS NULL OR until > $now_s + 86000)")" = 3 ] ||
        { echo "FAIL s9-nothing-changed: an action changed"; failures=$((failures + 1)); }

# extend, make-permanent: the new end in the store, the audit log and vps show.
t s9-extend 0 action extend 1 --until 2099-01-01 --by alice --reason "still scanning" --json &&
        json s9-extend 'j["extended"] == 1 and j["vps"] == "vps-901" and j["until"] == "2099-01-01T00:00:00Z" and "agent" in j'
[ "$(q9 "SELECT until FROM action WHERE id = 1")" = 4070908800 ] || { echo "FAIL s9-extend: until not stored"; failures=$((failures + 1)); }
t s9-extend-audit 0 audit vps-901 --json &&
        json s9-extend-audit '[(e["before"]["until"], e["after"]["until"], e["reason"]) for e in j["audit"] if e["action"] == "filter.extend" and e["object"] == "filter/1"][0][1:] == (4070908800, "still scanning")'
t s9-extend-show 0 vps show vps-901 --json && json s9-extend-show '[f["until"] for f in j["filters"] if f["id"] == 1] == ["2099-01-01T00:00:00Z"]'
t s9-perm 0 action make-permanent 1 --by alice --reason "repeat offender" && has s9-perm "filter #1 of vps-901 is now permanent (no end)" "$out"
[ "$(q9 "SELECT count(*) FROM action WHERE id = 1 AND until IS NULL")" = 1 ] || { echo "FAIL s9-perm: until kept"; failures=$((failures + 1)); }
t s9-perm-show 0 vps show vps-901 --json && json s9-perm-show '[f["until"] for f in j["filters"] if f["id"] == 1] == [None]'
t s9-perm-audit 0 audit vps-901 && has s9-perm-audit "filter.make-permanent" "$out" && has s9-perm-audit "repeat offender" "$out"

# lift: the filter is gone from vps show and explain, audited, the owner emailed; once only.
t s9-explain-filtered 1 explain vps-901 tcp/443 && has s9-explain-filtered "filter #1" "$out"
t s9-lift 0 action lift 1 --by alice --reason "customer patched" && has s9-lift "lifted filter #1 of vps-901; the owner will be emailed" "$out"
t s9-lift-show 0 vps show vps-901 --json && json s9-lift-show '[f["id"] for f in j["filters"]] == [2]'
t s9-lift-explain 0 explain vps-901 tcp/443
t s9-lift-list 0 action list vps-901 --json && json s9-lift-list '[(a["id"], a["state"], a["lifted_by"]) for a in j["actions"]] == [(2, "active", None), (1, "lifted", "alice")]'
[ "$(q9 "SELECT count(*) FROM audit WHERE action = 'filter.lift' AND object = 'filter/1' AND reason = 'customer patched'")" = 1 ] ||
        { echo "FAIL s9-lift: no audit row"; failures=$((failures + 1)); }
[ "$(q9 "SELECT count(*) FROM notification WHERE vps_id = 'vps-901' AND kind = 'filter.lifted'")" = 1 ] ||
        { echo "FAIL s9-lift: no notification"; failures=$((failures + 1)); }
# ... and lifting it ends the episode it answered: incident #1 is closed, audited
t s9-lift-closes 0 incident show 1 --json && json s9-lift-closes 'j["state"] == "closed"'
[ "$(q9 "SELECT count(*) FROM audit WHERE action = 'incident.close' AND object = 'incident/1' AND \"by\" = 'alice' AND reason = 'customer patched'")" = 1 ] ||
        { echo "FAIL s9-lift-closes: no incident.close audit row"; failures=$((failures + 1)); }
t s9-lift-again 2 action lift 1 --by alice --reason again && has s9-lift-again "filter #1 of vps-901 was lifted already (by alice at" "$err"
t s9-perm-lifted 2 action make-permanent 1 --by alice --reason x && has s9-perm-lifted "was lifted already" "$err"
# ... a suspension as unsuspend
t s9-explain-suspended 1 explain vps-902 tcp/443
t s9-lift-susp 0 action lift 3 --by alice --reason "verified" --json && json s9-lift-susp 'j["lifted"] == 3 and j["kind"] == "suspension" and j["vps"] == "vps-902"'
t s9-lift-susp-explain 0 explain vps-902 tcp/443
t s9-lift-susp-audit 0 audit vps-902 && has s9-lift-susp-audit "vps.unsuspend" "$out"
# ... an expired filter neither.
t s9-filter-4 0 filter place vps-902 --all --by alice --reason "flood" --until +1d
q9 "UPDATE action SET until = 1767225600 WHERE id = 4"
t s9-expired-list 0 action list vps-902 --json && json s9-expired-list 'j["actions"][0]["id"] == 4 and j["actions"][0]["state"] == "expired"'
t s9-expired-active 0 action list vps-902 --active --json && json s9-expired-active 'j["actions"] == []'
t s9-lift-expired 2 action lift 4 --by alice --reason x && has s9-lift-expired "filter #4 of vps-902 ended already (at 2026-01-01T00:00:00Z)" "$err"

# close: the actions stay, unless --lift-actions; audited either way.
q9 "INSERT INTO incident (id, vps_id, kind, first_seen, last_seen, count, state) VALUES (4, 'vps-901', 'scan', 1767225900, 1767225960, 5, 'open')"
t s9-close 0 incident close 4 --by alice --reason "handled" && has s9-close "closed incident #4 of vps-901; its actions stay in force" "$out"
t s9-close-again 2 incident close 1 --by alice --reason again && has s9-close-again "closed already" "$err"
t s9-close-lift 0 incident close 2 --lift-actions --by alice --reason "spam stopped" --json &&
        json s9-close-lift 'j["closed"] == 2 and j["lifted"] == 1 and j["vps"] == "vps-901" and "agent" in j'
t s9-close-lift-show 0 vps show vps-901 --json && json s9-close-lift-show 'j["filters"] == []'
# tcp/25 stays blocked at milano by the site's rule, no longer by filter #2
t s9-close-lift-explain 1 explain vps-901 tcp/25 && has s9-close-lift-explain "blocked by site policy" "$out"
[[ $out == *"filter #2"* ]] && { echo "FAIL s9-close-lift-explain: filter #2 still explains it"; failures=$((failures + 1)); }
t s9-close-audit 0 audit vps-901 --json &&
        json s9-close-audit '[(e["object"], e["before"]["state"], e["after"]["state"]) for e in j["audit"] if e["action"] == "incident.close"] == [("incident/1", "open", "closed"), ("incident/4", "open", "closed"), ("incident/2", "open", "closed")] and [e["object"] for e in j["audit"] if e["action"] == "filter.lift"] == ["filter/1", "filter/2"]'
t s9-inc-list-closed 0 incident list vps-901 --json && json s9-inc-list-closed 'j["incidents"] == []'

# Termination: a suspension only an admin's override lifts.
t term-noreason 2 terminate vps-902 --by alice && has term-noreason "--reason TEXT is required" "$err"
t term 0 terminate vps-902 --by alice --reason "spoofed again after the lift" && has term "terminated vps-902" "$out"
t term-again 2 terminate vps-902 --by alice --reason again && has term-again "terminated already" "$err"
t term-show 0 vps show vps-902 && has term-show "state       terminated" "$out" && has term-show "only an admin lifts" "$out"
t term-show-json 0 vps show vps-902 --json && json term-show-json 'j["state"] == "terminated" and j["suspension"]["terminated"] is True'
t term-explain 1 explain vps-902 tcp/443 && has term-explain "is terminated" "$out"
t term-unsuspend 2 unsuspend vps-902 --by bob --reason "customer says sorry" && has term-unsuspend "vps-902 is terminated" "$err" && has term-unsuspend "--admin-override" "$err"
term_id=$(q9 "SELECT id FROM action WHERE vps_id = 'vps-902' AND terminated = 1")
t term-lift 2 action lift "$term_id" --by bob --reason "customer says sorry" && has term-lift "is terminated" "$err"
t term-action-list 0 action list vps-902 --active && has term-action-list "termination" "$out"
# removing it (and adding it back) would lift it with no override
t term-remove 2 vps remove vps-902 --by bob --reason "start afresh" && has term-remove "vps-902 is terminated" "$err" && has term-remove "--admin-override" "$err"
t term-remove-kept 0 vps show vps-902 --json && json term-remove-kept 'j["state"] == "terminated"'
t term-override-suspend 2 suspend vps-902 --admin-override --by bob --reason x && has term-override-suspend "for unsuspend only" "$err"
t term-list 0 notification list vps-902 && has term-list "vps.terminated" "$out"
t term-override 0 unsuspend vps-902 --admin-override --by carol --reason "billing reviewed it"
t term-audit 0 audit vps-902 --json && json term-audit '[e["by"] for e in j["audit"] if e["action"] == "vps.unterminate"] == ["carol"] and [e["action"] for e in j["audit"] if e["action"] == "vps.terminate"] == ["vps.terminate"]'
t term-show-after 0 vps show vps-902 --json && json term-show-after 'j["state"] != "terminated"'
# Lifting a termination tells billing: vps.unterminated to the webhook (and
# the owner), queued with the change, by every path an override opens.
sed 's|^notifications:$|notifications:\n  webhook:\n    url: https://crm.example.net/hook\n    secret-file: /nonexistent/webhook.key|' \
        etc/portcullis.yaml >"$tmp/webhook.yaml"
ln -s "$PWD/etc/profiles" "$tmp/profiles" # its profiles, relative to it
cli_cfg=$tmp/webhook.yaml
unterminated() { q9 "SELECT count(*) FROM notification WHERE vps_id = '$1' AND kind = 'vps.unterminated' AND channel = '$2'"; }
# the override above, with no webhook configured: the owner's email only
t unterm-no-event 0 notification list vps-902 && has unterm-no-event "vps.unterminated" "$out"
[ "$(unterminated vps-902 webhook)" = 0 ] && [ "$(unterminated vps-902 email)" = 1 ] ||
        { echo "FAIL unterm-no-event: $(unterminated vps-902 webhook) webhook events, $(unterminated vps-902 email) emails, want 0 and 1"; failures=$((failures + 1)); }
t unterm-term 0 terminate vps-902 --by alice --reason "spoofed once more" && has unterm-term "the webhook told" "$out"
t unterm-override 0 unsuspend vps-902 --admin-override --by carol --reason "reviewed: a neighbour's ARP request"
[ "$(unterminated vps-902 webhook)" = 1 ] || { echo "FAIL unterm-override: $(unterminated vps-902 webhook) webhook events, want 1"; failures=$((failures + 1)); }
[ "$(q9 "SELECT recipient FROM notification WHERE kind = 'vps.unterminated' AND channel = 'webhook'")" = https://crm.example.net/hook ] ||
        { echo "FAIL unterm-override: not to the configured webhook"; failures=$((failures + 1)); }
t unterm-term2 0 terminate vps-902 --by alice --reason "and again"
term_id=$(q9 "SELECT id FROM action WHERE vps_id = 'vps-902' AND terminated = 1 AND lifted_at IS NULL")
t unterm-lift 0 action lift "$term_id" --admin-override --by carol --reason "reviewed again"
[ "$(unterminated vps-902 webhook)" = 2 ] || { echo "FAIL unterm-lift: $(unterminated vps-902 webhook) webhook events, want 2"; failures=$((failures + 1)); }
t unterm-term3 0 terminate vps-902 --by alice --reason "for good"
t unterm-remove 0 vps remove vps-902 --admin-override --by carol --reason "contract ended"
[ "$(unterminated vps-902 webhook)" = 3 ] || { echo "FAIL unterm-remove: $(unterminated vps-902 webhook) webhook events, want 3"; failures=$((failures + 1)); }
q9 "SELECT payload FROM notification WHERE kind = 'vps.unterminated' AND channel = 'webhook' ORDER BY id DESC LIMIT 1" | grep -q '"removed":true' ||
        { echo "FAIL unterm-remove: the event does not say the VPS was removed"; failures=$((failures + 1)); }
[ "$(unterminated vps-902 email)" = 3 ] || { echo "FAIL unterm-remove: $(unterminated vps-902 email) owner emails, want 3 (none for the removal)"; failures=$((failures + 1)); }
unset cli_cfg

# ---- issue 13: the ticket process (a fresh database)
usedb tix
qt() { sql tix "$@"; }
t tix-init 0 init
t tix-add 0 vps add vps-301 --site milano --owner ada@example.it --lang it --iface tap301 --addr 198.51.100.31 --by orch
t tix-add2 0 vps add vps-302 --site milano --owner bea@example.org --iface tap302 --addr 198.51.100.32 --by orch
t tix-add3 0 vps add vps-303 --site lenoir --owner ada@example.it --iface tap303 --addr 203.0.113.33 --by orch
t tix-help 0 ticket --help && has tix-help "ticket approve N --by WHO [--ports PORTS] [--until TIME] [--note TEXT]" "$out" &&
        has tix-help "open -> investigating -> approved | denied" "$out" && has tix-help "--role support|customer" "$out"
t tix-nosub 2 ticket && has tix-nosub "open, list, show, investigate, approve, deny or revoke" "$err"
t tix-badsub 2 ticket close 1 && has tix-badsub "unknown ticket subcommand 'close'" "$err"
t tix-unknown-opt 2 ticket list --frob && has tix-unknown-opt "--frob is not an option of ticket list" "$err"
# open: the customer's own VPS, what is asked, refused with why
t tix-open 0 ticket open vps-301 smtp --by ada --role customer --customer ada@example.it --ports 587 --duration 90d \
        --text "invoices from our billing app" --evidence "https://example.it/spf" --evidence "DKIM selector s1" &&
        has tix-open "ticket #1 opened: vps-301 asks for smtp ports 587" "$out"
t tix-open-json 0 ticket open vps-301 vpn --by ada --text "office VPN" --json &&
        json tix-open-json 'j == {"ticket": 2, "vps": "vps-301", "service": "vpn", "ports": None, "state": "open"}'
t tix-open-other 2 ticket open vps-302 smtp --by ada --role customer --customer ada@example.it --text x &&
        has tix-open-other "vps vps-302 does not exist" "$err"
t tix-open-notexempt 2 ticket open vps-303 smtp --by ada --text "direct mail" &&
        has tix-open-notexempt "rule 1 of policy lenoir" "$err" && has tix-open-notexempt "is not exemptable" "$err"
t tix-open-nothing 2 ticket open vps-303 vpn --by ada --text "vpn" && has tix-open-nothing "nothing to exempt" "$err"
t tix-open-ports 2 ticket open vps-301 smtp --by ada --text x --ports tcp/80 &&
        has tix-open-ports "--ports 'tcp/80' is not within the ports the site blocks for the service" "$err"
t tix-open-dur 2 ticket open vps-301 smtp --by ada --text x --duration soon && has tix-open-dur "--duration 'soon' is not a duration" "$err"
t tix-open-notext 2 ticket open vps-301 smtp --by ada && has tix-open-notext "--text TEXT is required" "$err"
t tix-open-noby 2 ticket open vps-301 smtp --text x && has tix-open-noby "--by WHO is required" "$err"
t tix-open-badopt 2 ticket open vps-301 smtp --by ada --text x --reason y && has tix-open-badopt "--reason is not an option of ticket open" "$err"
t tix-open-role 2 ticket open vps-301 smtp --by ada --text x --role root && has tix-open-role "--role 'root' is not a role" "$err"
t tix-open-nocust 2 ticket open vps-301 smtp --by ada --text x --role customer && has tix-open-nocust "--role customer needs --customer EMAIL" "$err"
[ "$(qt "SELECT count(*) FROM ticket")" = 2 ] || { echo "FAIL tix-refused-nothing-stored: $(qt "SELECT count(*) FROM ticket") tickets"; failures=$((failures + 1)); }
[ "$(qt "SELECT group_concat(kind || ':' || language) FROM notification" \
        "SELECT string_agg(kind || ':' || language, ',' ORDER BY id) FROM notification")" = "ticket.received:it,ticket.received:it" ] ||
        { echo "FAIL tix-received: $(qt "SELECT group_concat(kind) FROM notification" "SELECT string_agg(kind, ',' ORDER BY id) FROM notification")"; failures=$((failures + 1)); }
# list and show, --json
t tix-list 0 ticket list && has tix-list "smtp tcp/587" "$out" && has tix-list "open" "$out"
t tix-list-json 0 ticket list --json && json tix-list-json '[t["id"] for t in j["tickets"]] == [2, 1] and j["tickets"][1]["ports"] == "tcp/587" and j["tickets"][1]["duration"] == 7776000 and j["tickets"][1]["evidence"] == "https://example.it/spf | DKIM selector s1"'
t tix-list-state 0 ticket list --state investigating --json && json tix-list-state 'j["tickets"] == []'
t tix-list-badstate 2 ticket list --state pending && has tix-list-badstate "--state 'pending' is not a state" "$err"
t tix-list-other 0 ticket list --role customer --customer bea@example.org --json && json tix-list-other 'j["tickets"] == []'
t tix-list-novps 2 ticket list vps-999 && has tix-list-novps "vps vps-999 does not exist" "$err"
t tix-show 0 ticket show 1 && has tix-show "Ticket #1: vps-301 asks for smtp ports tcp/587 -- open" "$out" &&
        has tix-show "duration:  90 days" "$out" && has tix-show "opened" "$out" && has tix-show "The customer's earlier tickets:" "$out" &&
        has tix-show "#2 vps-301 vpn: open" "$out" && has tix-show "Blocked attempts for smtp (the kernel's counters, as portcullisd last read them):" "$out" &&
        has tix-show-none "  none" "$(sed -n '/^Blocked attempts/{n;p}' <<<"$out")"
# The counts portcullisd records (the store, not the kernel): smtp's ports only.
qt "INSERT INTO vps_attempt (vps_id, direction, proto, port, packets, last_seen) VALUES
    ('vps-301', 'egress', 'tcp', 587, 12, 1767225600), ('vps-301', 'egress', 'tcp', 6881, 3, 1767225600)"
t tix-show-attempts 0 ticket show 1 --role support --by sam && has tix-show-attempts "  tcp/587 egress: 12 packets, last 2026-01-01T00:00:00Z" "$out" &&
        hasnt tix-show-attempts "6881" "$out"
t tix-show-attempts-json 0 ticket show 1 --json && json tix-show-attempts-json 'j["findings"]["blocked_attempts"] == [{"proto": "tcp", "port": 587, "direction": "egress", "packets": 12, "last_seen": "2026-01-01T00:00:00Z"}]'
t tix-show-customer-text 0 ticket show 1 --role customer --customer ada@example.it && hasnt tix-show-customer-text "Blocked attempts" "$out"
t tix-show-json 0 ticket show 1 --json && json tix-show-json 'j["state"] == "open" and j["history"][0]["kind"] == "opened" and [x["id"] for x in j["findings"]["earlier_tickets"]] == [2] and j["findings"]["incidents"] == [] and j["findings"]["actions"] == []'
t tix-show-customer 0 ticket show 1 --role customer --customer ada@example.it --json && json tix-show-customer '"findings" not in j and j["id"] == 1'
t tix-show-other 2 ticket show 1 --role customer --customer bea@example.org && has tix-show-other "ticket #1 does not exist" "$err"
t tix-show-missing 2 ticket show 99 && has tix-show-missing "ticket #99 does not exist" "$err"
t tix-show-bad 2 ticket show x && has tix-show-bad "'x' is not a ticket number" "$err"
# decisions: a customer never, not even their own
t tix-approve-cust 2 ticket approve 1 --by ada --role customer --customer ada@example.it &&
        has tix-approve-cust "ada (role customer) may not approve tickets: only admin or support may" "$err"
t tix-investigate 0 ticket investigate 1 --by sam --role support --note "asked for the mail logs" && has tix-investigate "ticket #1 under investigation" "$out"
t tix-investigate-again 2 ticket investigate 1 --by sam && has tix-investigate-again "ticket #1 is investigating: only an open ticket can be investigated" "$err"
t tix-approve-more 2 ticket approve 1 --by sam --ports 25 && has tix-approve-more "--ports '25' is not within the ports the ticket asks for (tcp/587)" "$err"
t tix-approve-past 2 ticket approve 1 --by sam --until 2020-01-01 && has tix-approve-past "--until '2020-01-01' is in the past" "$err"
t tix-approve 0 ticket approve 1 --by sam --role support --note "SPF and DKIM checked" &&
        has tix-approve "ticket #1 approved: exception #1 for vps-301" "$out"
t tix-approved-json 0 ticket show 1 --json && json tix-approved-json 'j["state"] == "approved" and j["exception"] == 1 and j["until"] is not None and [h["kind"] for h in j["history"]] == ["opened", "investigating", "approved"] and j["history"][2]["note"] == "SPF and DKIM checked"'
t tix-explain-587 0 explain vps-301 tcp/587 && has tix-explain-587 "allow" "$out"
t tix-explain-25 1 explain vps-301 tcp/25 && has tix-explain-25 "reject" "$out"
t tix-vps-show 0 vps show vps-301 && has tix-vps-show "only tcp/587, ticket #1" "$out" && has tix-vps-show "Filters:
  none" "$out"
[ "$(qt "SELECT ports || ':' || ticket_id FROM exception WHERE id = 1")" = "tcp/587:1" ] || { echo "FAIL tix-exception: $(qt "SELECT ports, ticket_id FROM exception")"; failures=$((failures + 1)); }
[ "$(qt "SELECT kind FROM notification ORDER BY id DESC LIMIT 1")" = "ticket.approved" ] || { echo "FAIL tix-approved-mail"; failures=$((failures + 1)); }
t tix-approve-again 2 ticket approve 1 --by sam && has tix-approve-again "ticket #1 is approved: only an open or investigating ticket can be approved" "$err"
t tix-deny-approved 2 ticket deny 1 --by sam --reason x && has tix-deny-approved "ticket #1 is approved: only an open or investigating ticket can be denied" "$err"
t tix-deny-noreason 2 ticket deny 2 --by sam && has tix-deny-noreason "--reason is required" "$err"
t tix-deny 0 ticket deny 2 --by sam --reason "VPNs need a business contract" --json && json tix-deny 'j["state"] == "denied" and j["note"] == "VPNs need a business contract"'
[ "$(qt "SELECT json_extract(payload, '$.reason') FROM notification WHERE kind = 'ticket.denied'" \
        "SELECT payload::json->>'reason' FROM notification WHERE kind = 'ticket.denied'")" = "VPNs need a business contract" ] ||
        { echo "FAIL tix-denied-mail"; failures=$((failures + 1)); }
t tix-revoke-denied 2 ticket revoke 2 --by sam --reason x && has tix-revoke-denied "ticket #2 is denied: only an approved ticket can be revoked" "$err"
t tix-revoke 0 ticket revoke 1 --by sam --reason "spam complaints" && has tix-revoke "ticket #1 revoked" "$out"
t tix-explain-revoked 1 explain vps-301 tcp/587 && has tix-explain-revoked "reject" "$out"
[ "$(qt "SELECT count(*) FROM exception WHERE revoked_at IS NULL")" = 0 ] || { echo "FAIL tix-revoked-exception"; failures=$((failures + 1)); }
ga="SELECT string_agg(action, ',' ORDER BY id) FROM audit WHERE object = 'ticket/1'"
[ "$(qt "SELECT group_concat(action) FROM audit WHERE object = 'ticket/1'" "$ga")" = "ticket.open,ticket.investigate,ticket.approve,ticket.revoke" ] ||
        { echo "FAIL tix-audit: $(qt "SELECT group_concat(action) FROM audit WHERE object = 'ticket/1'" "$ga")"; failures=$((failures + 1)); }
t tix-audit 0 audit vps-301 && has tix-audit "ticket.approve" "$out"

# ---- step 10: vps update, start, stop (a fresh database)
usedb orch
qo() { sql orch "$@"; }
t orch-init 0 init
t orch-add-501 0 vps add vps-501 --site lenoir --owner ada@example.net --iface tap501 --addr 203.0.113.51 --mac 52:54:00:00:05:01 --by orch
t orch-add-502 0 vps add vps-502 --owner bea@example.it --iface tap502 --addr 198.51.100.52 --addr 2001:db8:502::/64 --by orch
t orch-help 0 vps --help && has orch-help "vps update ID [--addr CIDR...] [--iface IF] [--mac MAC]" "$out" &&
        has orch-help "vps stop ID [--by WHO] [--reason TEXT]" "$out" && has orch-help "keeps its exceptions, filters" "$out"
t orch-update 0 vps update vps-501 --addr 203.0.113.52 --addr 2001:db8:501::/64 --by libvirt-hook --reason "VM started" &&
        has orch-update "updated vps-501: interface tap501, MAC 52:54:00:00:05:01, addresses 203.0.113.52/32 2001:db8:501::/64" "$out"
t orch-update-json 0 vps update vps-501 --address 203.0.113.52 --address 2001:db8:501::/64 --by libvirt-hook --json &&
        json orch-update-json 'j["updated"] == "vps-501" and j["changed"] is False and j["addresses"] == ["203.0.113.52/32", "2001:db8:501::/64"] and j["owner"] == "ada@example.net" and j["run_state"] == "running" and "agent" not in j'
t orch-update-same 0 vps update vps-501 --iface tap501 && has orch-update-same "unchanged vps-501" "$out"
[ "$(qo "SELECT count(*) FROM audit WHERE action = 'vps.update'")" = 1 ] ||
        { echo "FAIL orch-update-once: $(qo "SELECT count(*) FROM audit WHERE action = 'vps.update'") vps.update rows, want 1"; failures=$((failures + 1)); }
t orch-update-iface 0 vps update vps-501 --iface tap501b --mac 52:54:00:00:05:0a --json &&
        json orch-update-iface 'j["changed"] is True and j["iface"] == "tap501b" and j["mac"] == "52:54:00:00:05:0a" and j["agent"]["state"] == "not running"'
t orch-show 0 vps show vps-501 --json && json orch-show 'j["iface"] == "tap501b" and j["addresses"] == ["203.0.113.52/32", "2001:db8:501::/64"] and j["site"] == "lenoir"'
t orch-audit 0 audit vps-501 --json &&
        json orch-audit '[(e["before"]["addresses"], e["after"]["addresses"], e["by"], e["reason"]) for e in j["audit"] if e["action"] == "vps.update"][0] == (["203.0.113.51/32"], ["203.0.113.52/32", "2001:db8:501::/64"], "libvirt-hook", "VM started")'
# refused as vps add refuses, naming the option; nothing written
rows=$(qo "SELECT count(*) FROM audit")
t orch-overlap 2 vps update vps-501 --addr 198.51.100.52 && has orch-overlap "Failed to update vps-501: address 198.51.100.52/32 overlaps 198.51.100.52/32 of vps-502" "$err"
t orch-overlap6 2 vps update vps-501 --addr 2001:db8:502::1 && has orch-overlap6 "overlaps 2001:db8:502::/64 of vps-502" "$err"
t orch-self-overlap 2 vps update vps-501 --addr 203.0.113.48/29 --addr 203.0.113.52 && has orch-self-overlap "--addr values 203.0.113.48/29 and 203.0.113.52 overlap each other" "$err"
t orch-unassignable 2 vps update vps-501 --addr 10.0.0.0/8 && has orch-unassignable "--addr 10.0.0.0/8 cannot be a VPS's" "$err"
t orch-hostbits 2 vps update vps-501 --addr 203.0.113.53/29 && has orch-hostbits "host bits" "$err"
t orch-unknown 2 vps update vps-999 --addr 203.0.113.99 && has orch-unknown "Failed to update vps-999: vps vps-999 does not exist" "$err"
t orch-badmac 2 vps update vps-501 --mac ff:ff:ff:ff:ff:ff && has orch-badmac "--mac 'ff:ff:ff:ff:ff:ff' is not a unicast MAC address" "$err"
t orch-badmac2 2 vps update vps-501 --mac 52:54:00:zz:00:01 && has orch-badmac2 "--mac '52:54:00:zz:00:01' is not a unicast MAC address" "$err"
t orch-samemac 2 vps update vps-502 --mac 52:54:00:00:05:0a && has orch-samemac "MAC 52:54:00:00:05:0a is already vps-501's" "$err"
t orch-sameiface 2 vps update vps-502 --iface tap501b && has orch-sameiface "interface tap501b is already vps-501's" "$err"
t orch-lo 2 vps update vps-502 --iface lo && has orch-lo "--iface lo is the hypervisor's loopback" "$err"
t orch-nothing 2 vps update vps-502 && has orch-nothing "vps update needs what changes: --addr" "$err"
t orch-owner 2 vps update vps-502 --owner x@example.net && has orch-owner "--owner is not an option of vps update" "$err"
t orch-site 2 vps update vps-502 --site lenoir --addr 198.51.100.53 && has orch-site "--site is not an option of vps update" "$err"
t orch-reason 2 vps update vps-502 --iface tap502b --reason $'a\nb' && has orch-reason "--reason holds the control character U+000A" "$err"
t orch-twoids 2 vps update vps-501 vps-502 --iface tap9 && has orch-twoids "vps update takes exactly one ID" "$err"
[ "$(qo "SELECT count(*) FROM audit")" = "$rows" ] || { echo "FAIL orch-nothing-written: the audit log grew"; failures=$((failures + 1)); }
# start and stop: informational; a stopped VPS keeps what is in force
t orch-filter 0 filter place vps-502 --all --by alice --reason "abuse report" --until +1d
t orch-stop 0 vps stop vps-502 --by libvirt-hook --reason "VM stopped" && has orch-stop "vps-502 is stopped; its policy stays in force" "$out"
t orch-stop-again 0 vps stop vps-502 --by libvirt-hook && has orch-stop-again "vps-502 was stopped already" "$out"
t orch-stop-json 0 vps stop vps-502 --json && json orch-stop-json 'j == {"vps": "vps-502", "run_state": "stopped", "changed": False}'
t orch-list 0 vps list && has orch-list "RUN" "$out" && has orch-list "stopped" "$out"
t orch-list-json 0 vps list --json && json orch-list-json '[(v["id"], v["run_state"], v["state"]) for v in j["vps"]] == [("vps-501", "running", "active"), ("vps-502", "stopped", "filtered")]'
t orch-show-stopped 0 vps show vps-502 && has orch-show-stopped "run state   stopped since " "$out" && has orch-show-stopped "(its policy stays in force)" "$out"
t orch-show-stopped-json 0 vps show vps-502 --json && json orch-show-stopped-json 'j["run_state"] == "stopped" and j["run_since"].endswith("Z") and len(j["filters"]) == 1 and j["state"] == "filtered"'
t orch-explain-stopped 1 explain vps-502 tcp/443 && has orch-explain-stopped "filter #1" "$out"
t orch-ruleset 0 ruleset --elements && has orch-ruleset "tap502" "$out"
t orch-start 0 vps start vps-502 --by libvirt-hook --json && json orch-start 'j["vps"] == "vps-502" and j["run_state"] == "running" and j["changed"] is True and "agent" in j'
t orch-start-audit 0 audit vps-502 --json &&
        json orch-start-audit '[(e["action"], e["before"], e["after"], e["reason"]) for e in j["audit"] if e["action"] in ("vps.stop", "vps.start")] == [("vps.stop", {"run_state": "running"}, {"run_state": "stopped"}, "VM stopped"), ("vps.start", {"run_state": "stopped"}, {"run_state": "running"}, None)]'
t orch-start-unknown 2 vps start vps-999 && has orch-start-unknown "Failed to start vps-999: vps vps-999 does not exist" "$err"
t orch-start-unknown-by 2 vps start vps-999 --by libvirt-hook &&
        has orch-start-unknown-by "Failed to start vps-999: vps vps-999 does not exist" "$err"
t orch-stop-extra-by 2 vps stop vps-502 now --by libvirt-hook && has orch-stop-extra-by "vps stop takes exactly one ID" "$err"
t orch-stop-badid 2 vps stop "x y" && has orch-stop-badid "is not a valid VPS id" "$err"
t orch-stop-badby 2 vps stop vps-502 --by "A B" && has orch-stop-badby "--by 'A B' is not a valid name" "$err"
t orch-stop-extra 2 vps stop vps-502 now && has orch-stop-extra "vps stop takes exactly one ID" "$err"
t orch-stop-badopt 2 vps stop vps-502 --addr 198.51.100.52 && has orch-stop-badopt "bad option for vps stop" "$err"
t orch-badsub 2 vps pause vps-502 && has orch-badsub "unknown vps subcommand 'pause' (add, update, move, depart, start, stop, remove, list, show)" "$err"

# A move its old host cannot confirm (dead for good, or its agent started
# without the VM): the admin's `vps depart`, audited as vps.depart.
t dep-add 0 vps add vps-503 --owner bea@example.it --iface tap503 --addr 198.51.100.53 --host hv1 --by orch
t dep-none 1 vps depart vps-503 --by alice --reason "hv1 is dead" &&
        has dep-none "Failed to confirm that vps-503 left its old host: vps vps-503 has no move to confirm" "$err"
t dep-move 0 vps move vps-503 --host hv2 --iface tap7 --by orch --reason "migration"
t dep-shown 0 vps show vps-503 && has dep-shown "not confirmed by hv1" "$out"
t dep-noreason 2 vps depart vps-503 --by alice && has dep-noreason "vps depart needs --reason TEXT" "$err"
t dep-emptyreason 2 vps depart vps-503 --by alice --reason "" && has dep-emptyreason "--reason is required" "$err"
t dep-two 2 vps depart vps-503 vps-502 --by alice --reason x && has dep-two "vps depart takes exactly one ID" "$err"
t dep-badopt 2 vps depart vps-503 --host hv1 --by alice --reason x && has dep-badopt "bad option for vps depart" "$err"
t dep-unknown 2 vps depart vps-999 --by alice --reason "gone" &&
        has dep-unknown "Failed to confirm that vps-999 left its old host: vps vps-999 does not exist" "$err"
t dep-still 0 --json vps show vps-503 && json dep-still 'j["departing_from"] == "hv1"'
t dep-json 0 --json vps depart vps-503 --by alice --reason "hv1 is dead: its disks are gone" &&
        json dep-json 'j["departed"] == "vps-503" and j["from"] == "hv1" and j["host"] == "hv2"'
t dep-gone 0 --json vps show vps-503 && json dep-gone '"departing_from" not in j and j["host"] == "hv2"'
t dep-show 0 vps show vps-503 && hasnt dep-show "not confirmed" "$out"
t dep-audit 0 --json audit vps-503 &&
        json dep-audit '[(e["by"], e["reason"], e["before"].get("departing_from"), "departing_from" in e["after"]) for e in j["audit"] if e["action"] == "vps.depart"] == [("alice", "hv1 is dead: its disks are gone", "hv1", False)]'
t dep-again 1 vps depart vps-503 --by alice --reason "again" && has dep-again "has no move to confirm" "$err"
t dep-text 0 vps move vps-503 --host hv3 --iface tap8 --by orch --reason "again"
t dep-text-ok 0 vps depart vps-503 --by alice --reason "hv2 is dead" &&
        has dep-text-ok "confirmed that vps-503 left hv2 (vps.depart by alice): it runs on hv3" "$out"
t dep-help 0 vps --help && has dep-help "vps depart ID --reason TEXT [--by WHO]" "$out"
usedb t

# API tokens: shown once, stored as a hash, refused with the field at fault.
usedb tok
t tok-init 0 init
qt() { sql tok "$@"; }
t tok-norole 2 token create panel --by alice && has tok-norole "--role ROLE is required" "$err"
t tok-badrole 2 token create panel --role root --by alice && has tok-badrole "--role 'root' is not a role" "$err"
t tok-nocust 2 token create c1 --role customer --by alice && has tok-nocust "--customer is required" "$err"
t tok-custrole 2 token create s1 --role support --customer a@example.org --by alice &&
        has tok-custrole "--customer is only for a customer token" "$err"
t tok-badname 2 token create 'Panel!' --role agent --host hv1 --by alice && has tok-badname "'Panel!' is not a valid token name" "$err"
t tok-past 2 token create p2 --role agent --host hv1 --expires 2001-01-01 --by alice && has tok-past "in the past" "$err"
# An agent token is bound to a hypervisor (issue 14): --host, the config's
# agent.host, or --any-host said explicitly; only an agent's.
t tok-nohost 2 token create p3 --role agent --by alice && has tok-nohost "--host H is required for an agent token" "$err"
t tok-bothhost 2 token create p3 --role agent --host hv1 --any-host --by alice && has tok-bothhost "not both" "$err"
t tok-badhost 2 token create p3 --role agent --host 'HV 1' --by alice && has tok-badhost "host 'HV 1' is not a name" "$err"
t tok-hostrole 2 token create p3 --role support --host hv1 --by alice && has tok-hostrole "a host is only for an agent token (role support has none)" "$err"
t tok-anyrole 2 token create p3 --role admin --any-host --by alice && has tok-anyrole "a host is only for an agent token" "$err"
t tok-nohost-none 0 --json token list && json tok-nohost-none 'j["tokens"] == []'
sed 's|^agent:$|agent:\n  host: hv17|' etc/portcullis.yaml >"$tmp/hv17.yaml"
[ -e "$tmp/profiles" ] || ln -s "$PWD/etc/profiles" "$tmp/profiles"
cli_cfg=$tmp/hv17.yaml
t tok-cfghost 0 --json token create hv17-hooks --role agent --by alice &&
        json tok-cfghost 'j["host"] == "hv17" and j["role"] == "agent" and j["token"].startswith("pct_")'
t tok-cfghost-other 0 --json token create hv18-hooks --role agent --host hv18 --by alice && json tok-cfghost-other 'j["host"] == "hv18"'
t tok-cfghost-any 0 token create every-hooks --role agent --any-host --by alice && has tok-cfghost-any "(role agent, any host)" "$err"
unset cli_cfg
t tok-hostlist 0 token list && has tok-hostlist "HOST" "$out" && grep -qE "^hv17-hooks +agent +- +hv17 " <<<"$out" &&
        grep -qE "^every-hooks +agent +- +any " <<<"$out" || { echo "FAIL tok-hostlist: $out"; failures=$((failures + 1)); }
[ "$(qt "SELECT count(*) FROM audit WHERE action = 'token.create' AND \"after\" LIKE '%\"host\":\"hv17\"%'")" = 1 ] ||
        { echo "FAIL tok-host-audited"; failures=$((failures + 1)); }
for name in hv17-hooks hv18-hooks every-hooks; do t "tok-hostrevoke-$name" 0 token revoke "$name" --by alice; done
t tok-create 0 token create panel --role agent --host hv1 --by alice && has tok-create "pct_" "$out" &&
        has tok-create "(role agent, host hv1)" "$err"
tok=$out
[ ${#tok} = 47 ] || { echo "FAIL tok-length: ${#tok}"; failures=$((failures + 1)); }
hex=$(printf %s "$tok" | sha256sum | cut -c1-64)
[ "$(qt "SELECT count(*) FROM api_token WHERE hash = X'$hex'" "SELECT count(*) FROM api_token WHERE hash = '\\x$hex'::bytea")" = 1 ] ||
        { echo "FAIL tok-hash-stored"; failures=$((failures + 1)); }
[ "$(qt "SELECT count(*) FROM audit WHERE action = 'token.create' AND \"after\" LIKE '%pct_%'")" = 0 ] ||
        { echo "FAIL tok-audit-leaks-token"; failures=$((failures + 1)); }
t tok-dup 2 token create panel --role admin --by alice && has tok-dup "a token named panel is in force already" "$err"
t tok-cust 0 --json token create carol --role customer --customer carol@example.org --expires +30d --by alice &&
        json tok-cust 'j["role"] == "customer" and j["customer"] == "carol@example.org" and j["token"].startswith("pct_") and j["expires"]'
t tok-list 0 --json token list && json tok-list '[t["name"] for t in j["tokens"]] == ["carol", "panel"] and "token" not in j["tokens"][0] and [t["host"] for t in j["tokens"]] == [None, "hv1"]'
t tok-revoke 0 token revoke panel --by alice && has tok-revoke "token panel revoked" "$out"
t tok-revoke-again 2 token revoke panel --by alice && has tok-revoke-again "no token named panel is in force" "$err"
t tok-list-live 0 --json token list && json tok-list-live '[t["name"] for t in j["tokens"]] == ["carol"]'
t tok-list-all 0 --json token list --all && json tok-list-all 'len(j["tokens"]) == 5'
t tok-reissue 0 token create panel --role agent --any-host --by alice
usedb t

echo "$n commands, $failures failures"
[ $failures = 0 ]
