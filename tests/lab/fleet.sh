#!/bin/bash
# Lab scenario (issue 14, the fleet): three hypervisors, each its own
# network namespace with its own portcullisd (--host hv1..hv3) and VPSes,
# sharing one real PostgreSQL (a throwaway cluster; the agents reach its
# Unix socket through the shared filesystem).  Real TCP clients in the
# VPSes, real listeners in "inet":
#   - each agent enforces its own VPSes only;
#   - an exception granted from another hypervisor's CLI reaches the right
#     kernel at once (LISTEN/NOTIFY), measured from the grant to the first
#     connection that gets through;
#   - a VPS migrates from hv1 to hv2 with its exception and its filter's
#     remaining time, and nothing is open in between: a probe from the
#     VPS to the filtered port runs the whole time, and inet counts every
#     SYN that reaches it (none may);
#   - an agent killed during a burst of changes ends in sync;
#   - the primary stops and its streaming replica is promoted while
#     changes are made: agents and CLI follow (a multi-host URL), nothing
#     is lost or doubled, and the agents apply what came after;
#   - PostgreSQL stops for 30 s (FLEET_OUTAGE_S) while a VPS spoofs: its
#     agent suspends it in the kernel at once and keeps the incident in its
#     journal; when the database is back, the incident, the suspension and
#     the owner's email are there exactly once;
#   - `portcullis fleet status` shows every agent.
#
#            inet 192.0.2.2 (br0): postfix (25, 587), tcp/8080 and 8083 listeners
#             |            |            |
#      hv1 192.0.2.11  hv2 192.0.2.12  hv3 192.0.2.13
#        va  vm1         vb  (vm2)       vc
#        |    |          |    |          |
#      vps-a vps-m     vps-b (vps-m)   vps-c       198.51.100.11/.14/.12/.13
#
# Usage: fleet.sh BUILD_DIR SOURCE_ROOT.  Namespaces prefixed $LAB_PREFIX
# (default pcfl), removed however it ends.
set -u
here=$(dirname "$(readlink -f "$0")")
export LAB_PREFIX=${LAB_PREFIX:-pcfl} LAB_QUIET=1
. "$here/lab.sh"
. "$here/common.sh"
. "$here/fleet_topology.sh"

build=$(readlink -f "$1") src=$(readlink -f "$2")
PC_BIN=$build/src/cli/portcullis PC_AGENT=$build/src/agent/portcullisd
lab_deps || exit 1
LAB_DIR=$(mktemp -d /tmp/portcullis-fleet.XXXXXX)
export LAB_DIR
touch "$LAB_DIR/.portcullis-lab"
chmod 0755 "$LAB_DIR" # postgres and postfix's daemons reach their folders inside
mkdir -p "$LAB_DIR/log"
: >"$LAB_DIR/pids"
LAB_MAILDIR=$LAB_DIR/mail/inbox
trap '"$src/tests/pg/cluster.sh" stop "$LAB_DIR/pg" >/dev/null 2>&1; "$src/tests/pg/cluster.sh" stop "$LAB_DIR/pgr" >/dev/null 2>&1; lab_down' EXIT
trap 'exit 1' INT TERM
for ns in $(ip netns list | awk -v p="$LAB_PREFIX-" 'index($1, p) == 1 { print $1 }'); do ip netns del "$ns"; done

cluster() { "$src/tests/pg/cluster.sh" "$@"; }
cluster start "$LAB_DIR/pg" >/dev/null || { echo "FAIL the PostgreSQL cluster does not start"; exit 1; }
cluster replica "$LAB_DIR/pg" "$LAB_DIR/pgr" >/dev/null || { echo "FAIL its streaming replica does not start"; exit 1; }
# Both servers; libpq takes whichever is the primary (a failover needs no
# configuration change).
url="postgresql:///portcullis?host=$LAB_DIR/pg,$LAB_DIR/pgr&port=5432,5433&user=portcullis&target_session_attrs=read-write"

# ---- the topology (fleet_topology.sh) ----
fleet_topology 3
for v in a:1:va:11 b:2:vb:12 c:3:vc:13 m:1:vm1:14 s:3:vs:15; do
        IFS=: read -r name h ifc o <<<"$v"
        vps_link "$name" "$h" "$ifc" "$o"
done
# inet: listeners that accept and close, and a counter of every SYN to
# 8080 from vps-m (what reached the internet, whatever happened to it).
for p in 8080 8083; do # (587 is postfix's)
        lab_bg "listen$p" inet socat "TCP-LISTEN:$p,fork,reuseaddr" SYSTEM:true >/dev/null
done
# The relay every agent's notifier sends through: a real postfix.
_lab_postfix_config && ip netns exec "$(ns inet)" postfix -c "$LAB_DIR/postfix/etc" start </dev/null >"$LAB_DIR/log/postfix-start.log" 2>&1 ||
        { echo "FAIL postfix does not start in inet"; cat "$LAB_DIR/log/postfix-start.log" "$LAB_DIR/maillog"; exit 1; }
ip netns exec "$(ns inet)" nft -f - <<'EOF'
table inet watch {
        chain input {
                type filter hook input priority 0;
                ip saddr 198.51.100.14 tcp dport 8080 tcp flags & (syn | ack) == syn counter name m8080
        }
        counter m8080 {}
}
EOF

# ---- Portcullis on each hypervisor ----
for h in 1 2 3; do fleet_config "$h" "$url" "$src"; done
refused() { # VPS PORT: refused (the reset Portcullis sends), not a timeout
        local out
        out=$(timeout 1 ip netns exec "$(ns $1)" bash -c "exec 3<>/dev/tcp/192.0.2.2/$2" 2>&1)
        [ $? -ne 0 ] && grep -q "Connection refused" <<<"$out"
}

echo "# one database, three hypervisors"
check "portcullis init on PostgreSQL" pc_on 1 init
check "vps-a registered on hv1" pc_on 1 vps add vps-a --owner ann@example.org --iface va --addr 198.51.100.11 --host hv1 --by lab
check "vps-b on hv2 (registered from hv1's CLI)" pc_on 1 vps add vps-b --owner bob@example.org --iface vb --addr 198.51.100.12 --host hv2 --by lab
check "vps-c on hv3" pc_on 3 vps add vps-c --owner cid@example.org --iface vc --addr 198.51.100.13 --host hv3 --by lab
check "vps-m on hv1" pc_on 1 vps add vps-m --owner max@example.org --iface vm1 --addr 198.51.100.14 --host hv1 --by lab
check "vps-s on hv3, at provider A's site (anti-spoofing; spoofing: suspend)" pc_on 3 vps add vps-s --site lenoir --owner sue@example.org --iface vs --addr 198.51.100.15 --host hv3 --by lab
for h in 1 2 3; do check "hv$h's agent starts" agent_up $h; done
check "each agent enforces its own VPSes: hv1 vps-a, vps-m" wait_for 5 in_table 1 va
check "  hv2 vps-b" in_table 2 vb
check "  hv3 vps-c" in_table 3 vc
check "and no other host's: vb is not in hv1's kernel" sh -c "! ip netns exec $(ns hv1) nft list map inet portcullis vps_out | grep -q '\"vb\"'"
check "  va is not in hv2's" sh -c "! ip netns exec $(ns hv2) nft list map inet portcullis vps_out | grep -q '\"va\"'"
check "fleet status: three agents, all ok" wait_for 5 sh -c "\"$PC_BIN\" -c $LAB_DIR/hv1.yaml --json fleet status |
        python3 -c 'import json,sys; a=json.load(sys.stdin)[\"agents\"]; sys.exit(not (len(a)==3 and all(x[\"state\"]==\"ok\" for x in a)))'"

echo "# an exception granted from hv3 reaches hv2's kernel"
check "before: vps-b's 587 is refused (smtp blocked at milano)" refused b 587
t0=$(lab_now_ms)
check "support grants vps-b smtp, on hv3's CLI" pc_on 3 exception grant vps-b smtp --by sam --reason "ticket 1"
until connects b 587 >/dev/null 2>&1; do [ $(($(lab_now_ms) - t0)) -gt 5000 ] && break; done
ms=$(($(lab_now_ms) - t0))
echo "  grant (CLI on hv3, its process start included) to vps-b's first connection through hv2: $ms ms"
check "vps-b connects to 587 within 1 s of the grant ($ms ms)" test "$ms" -lt 1000
check "vps-a (hv1) is still refused on 587" refused a 587

echo "# vps-m migrates from hv1 to hv2 with its exception and filter"
check "vps-m gets smtp" pc_on 1 exception grant vps-m smtp --by sam --reason "ticket 2"
check "and a filter on tcp/8080 for 10 minutes" pc_on 1 filter place vps-m --ports tcp/8080 --by sam --reason "abuse report" --until +10m
until_before=$(pc_on 1 --json vps show vps-m | python3 -c 'import json,sys; print(json.load(sys.stdin)["filters"][0]["until"])')
check "vps-m: 587 connects" wait_for 3 connects m 587
check "vps-m: 8080 blocked (the filter drops)" wait_for 3 blocked m 8080
# The probe: every 50 ms a connection to 8080, for the whole migration.
( while :; do timeout 1 ip netns exec "$(ns m)" socat -T0.3 -u "TCP:192.0.2.2:8080,connect-timeout=0.3" /dev/null 2>/dev/null
          sleep 0.05; done ) &
probe=$!
echo "$probe probe" >>"$LAB_DIR/pids"
sleep 0.3
check "vps move vps-m --host hv2 --iface vm2" pc_on 2 vps move vps-m --host hv2 --iface vm2 --by orchestrator --reason "live migration"
arrived() { pc_on 1 --json audit vps-m | grep -q '"vps.arrive"'; }
check "hv2 enforces it and says so (vps.arrive)" wait_for 5 arrived
check "hv2's kernel has vm2 before the VM is there" in_table 2 vm2
sleep 1.5 # a periodic pass of hv1 at least
check "hv1 still enforces vm1 while the VM is on hv1" in_table 1 vm1
check "vps-m, still on hv1: 8080 blocked" blocked m 8080
# The switch: the VM leaves hv1 and runs behind hv2.
ip -n "$(ns hv1)" link del vm1
vps_link m 2 vm2 14
check "vps-m, now behind hv2: 587 connects (its exception moved)" wait_for 3 connects m 587
check "vps-m: 8080 blocked by hv2" blocked m 8080
check "hv1 lets it go once its interface is gone" wait_for 5 sh -c "! ip netns exec $(ns hv1) nft list map inet portcullis vps_out | grep -q '\"vm1\"'"
kill "$probe" 2>/dev/null; wait "$probe" 2>/dev/null
syn=$(ip netns exec "$(ns inet)" nft -j list counter inet watch m8080 | python3 -c 'import json,sys
print([o["counter"]["packets"] for o in json.load(sys.stdin)["nftables"] if "counter" in o][0])')
check "nothing was open in between: no SYN from vps-m reached 8080 at inet ($syn)" test "$syn" = 0
until_after=$(pc_on 2 --json vps show vps-m | python3 -c 'import json,sys; print(json.load(sys.stdin)["filters"][0]["until"])')
check "the filter keeps its end ($until_after)" test "$until_before" = "$until_after"

echo "# an agent killed during a burst of changes ends in sync"
kill -9 "${AGENT[3]}"; wait "${AGENT[3]}" 2>/dev/null; rm -f "$LAB_DIR/hv3.sock"
for i in 1 2 3 4 5 6; do
        pc_on 1 exception grant vps-c smtp --by sam --reason "burst $i" >/dev/null 2>&1
        pc_on 1 exception revoke vps-c smtp --by sam --reason "burst $i" >/dev/null 2>&1
done
pc_on 1 exception grant vps-c smtp --by sam --reason "burst: the last word" >/dev/null 2>&1
( for i in 1 2 3 4 5; do pc_on 2 filter place vps-c --ports tcp/808$i --by sam --reason "burst $i" >/dev/null 2>&1; done ) &
burst=$!
check "hv3's agent starts again during the burst" agent_up 3
wait "$burst"
check "hv3: status in sync" wait_for 5 pc_on 3 status
check "hv3's kernel has every filter of the burst" wait_for 5 sh -c "
        [ \$(ip netns exec $(ns hv3) \"$PC_BIN\" -c $LAB_DIR/hv3.yaml --json vps show vps-c | grep -c '\"tcp/808[1-5]\"') -ge 5 ]"
check "vps-c: 587 connects (the burst ended granted)" wait_for 3 connects c 587
check "vps-c: 8083 blocked (a filter of the burst; inet listens there)" wait_for 3 blocked c 8083
check "vps-a: 8083 connects (no filter)" connects a 8083

for h in 1 2 3; do
        check "hv$h's agent logged no failure" sh -c "! grep -q 'Failed' $LAB_DIR/log/portcullisd-hv$h.log"
done

echo "# the primary stops and its replica is promoted, during changes"
( for i in 1 2 3 4 5 6 7 8; do
        for _ in $(seq 1 100); do
                pc_on 1 filter place vps-a --ports tcp/90$i --by sam --reason "failover $i" >/dev/null 2>&1 && break
                sleep 0.1
        done
  done ) &
changes=$!
sleep 0.2
check "the primary stops" cluster halt "$LAB_DIR/pg"
check "its replica is promoted" cluster promote "$LAB_DIR/pgr"
wait "$changes"
t0=$(lab_now_ms)
check "a grant on the new primary" pc_on 3 exception grant vps-a vpn --by sam --reason "after the failover"
check "support grants vps-a smtp on the new primary" pc_on 2 exception grant vps-a smtp --by sam --reason "after the failover"
check "hv1 enforces it: vps-a connects to 587" wait_for 10 connects a 587
echo "  from the grants to vps-a's connection through hv1: $(($(lab_now_ms) - t0)) ms"
nfilters=$(pc_on 1 --json vps show vps-a | grep -c '"tcp/90[1-8]"')
check "every change of the window is stored, once ($nfilters of 8 filters)" test "$nfilters" = 8
check "every agent follows the new primary: in sync, none behind" wait_for 10 sh -c "\"$PC_BIN\" -c $LAB_DIR/hv1.yaml --json fleet status |
        python3 -c 'import json,sys; f=json.load(sys.stdin); a=f[\"agents\"]
sys.exit(not (len(a)==3 and all(x[\"state\"]==\"ok\" and x[\"change_seen\"]==f[\"last_change\"] for x in a)))'"
# (Its listener tries again after 1 s, backing off to 8 s while the
# failover lasts; the feed is followed meanwhile, as the check above shows.)
for h in 1 2 3; do
        check "hv$h's agent listens to the new primary (within 10 s)" wait_for 10 grep -q \
                "Following the database's change notices again" "$LAB_DIR/log/portcullisd-hv$h.log"
done

outage=${FLEET_OUTAGE_S:-30}
echo "# PostgreSQL away for $outage s while vps-s spoofs"
suspended_on() { ip netns exec "$(ns hv$1)" nft list set inet portcullis suspended 2>/dev/null | grep -q "\"$2\""; }
check "before: vps-s is not suspended" sh -c "! ip netns exec $(ns hv3) nft list set inet portcullis suspended | grep -q '\"vs\"'"
t_out=$(lab_now_ms)
check "the database stops (the promoted primary)" cluster halt "$LAB_DIR/pgr"
ip -n "$(ns s)" addr add 198.51.100.99/32 dev eth0
ip netns exec "$(ns s)" ping -c 3 -i 0.2 -W 1 -I 198.51.100.99 192.0.2.2 >/dev/null 2>&1
check "hv3 suspends vps-s in its kernel, without the database" wait_for 5 suspended_on 3 vs
check "vps-s is held back (8080 blocked)" blocked s 8080
check "hv3 keeps the incident in its journal, on disk" test -s "$LAB_DIR/journal-hv3.json"
check "and logged why" grep -q "recorded in the journal" "$LAB_DIR/log/portcullisd-hv3.log"
ip netns exec "$(ns s)" ping -c 2 -i 0.2 -W 1 -I 198.51.100.99 192.0.2.2 >/dev/null 2>&1 # more of the episode
rest=$(( outage * 1000 - ($(lab_now_ms) - t_out) ))
[ "$rest" -gt 0 ] && sleep "$(awk -v m="$rest" 'BEGIN { printf "%.3f", m / 1000 }')"
check "the database is back after $outage s" cluster resume "$LAB_DIR/pgr"
spoof_incidents() { pc_on 1 --json incident list vps-s --all --kind spoof |
        python3 -c 'import json,sys; print(len(json.load(sys.stdin)["incidents"]))'; }
check "the spoofing incident is stored, once" wait_for 15 sh -c "[ \"\$(pc_on() { ip netns exec $(ns hv1) $PC_BIN -c $LAB_DIR/hv1.yaml \"\$@\"; }; pc_on --json incident list vps-s --all --kind spoof |
        python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"incidents\"]))')\" = 1 ]"
n_susp=$(pc_on 1 --json action list vps-s | python3 -c 'import json,sys
print(sum(1 for x in json.load(sys.stdin)["actions"] if x["kind"] == "suspension"))')
check "and its suspension, once ($n_susp)" test "$n_susp" = 1
check "vps-s stays suspended" suspended_on 3 vs
check "the journal is emptied" wait_for 5 test ! -e "$LAB_DIR/journal-hv3.json"
owner_mail() { python3 "$here/mailbox.py" "$LAB_MAILDIR" --to sue@example.org | grep -ci "suspen"; }
check "sue's suspension email arrives" wait_for 20 sh -c "[ \$(python3 $here/mailbox.py $LAB_MAILDIR --to sue@example.org | grep -ci suspen) -ge 1 ]"
sleep 1
check "once ($(owner_mail))" test "$(owner_mail)" = 1

echo "# three notifiers, one outbox: every email once"
all_sent() {
        pc_on 1 --json notification list | python3 -c 'import json,sys
n = json.load(sys.stdin)["notifications"]
sys.exit(not (n and all(x["state"] == "sent" for x in n)))'
}
check "every notification is sent (each agent's notifier takes its share)" wait_for 20 all_sent
all_sent || pc_on 1 notification list | grep -v " sent " | head -5
queued=$(pc_on 1 --json notification list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["notifications"]))')
# (each also goes to the abuse desk, abuse-copy: counted apart)
mails=$(python3 "$here/mailbox.py" "$LAB_MAILDIR" | python3 -c 'import json,sys
m = [json.loads(l) for l in sys.stdin if l.strip()]
owners = [x["message_id"] for x in m if x["to"] != "abuse@example.net"]
print(len(owners), len(set(owners)), len(m) - len(owners))')
check "postfix delivered each of the $queued once to its owner, and once to the abuse desk ($mails: delivered, distinct, copies)" \
        test "$mails" = "$queued $queued $queued"

echo "# fleet status"
pc_on 1 fleet status
check "fleet status: every agent ok" pc_on 1 fleet status
lab_summary
