#!/bin/bash
# Lab scenario (step 6): customer notifications through a real relay.
# The lab's postfix (in inet) is the relay; it delivers every address to
# $LAB_MAILDIR, which tests/lab/mailbox.py reads as a mail client would.
# Usage: notify.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
export LAB_PREFIX=${LAB_PREFIX:-pcn} LAB_QUIET=1
. "$here/lab.sh"
. "$here/common.sh"

lab_deps || exit 1
lab_up --trap || { echo "FAIL lab_up"; exit 1; }
pc_setup "$1" "$2"
# The relay is the lab's postfix (self-signed certificate: STARTTLS without
# verification); quick retries so that the scenario stays short.
sed -i -e "s|^  relay: .*|  relay: smtp://$LAB_INET_V4:25|" \
       -e "s|^  from: .*|  from: Portcullis NOC <noc@provider.example>|" \
       -e "s|^  abuse-copy: .*|  abuse-copy: abuse@provider.example|" \
       -e "s|^  retry-base: .*|  retry-base: 1s|" \
       -e "s|^  timeout: .*|  timeout: 5s|" \
       -e "s|^  max-attempts: .*|  max-attempts: 6|" \
       -e "s|^  tls-verify: .*|  tls-verify: false|" "$PC_CFG"
# A site that only tells the owner about spoofing, with short episode and
# notice gaps, for the digest.
sed -e "s/^profile: lenoir/profile: watch/" -e "s/^  spoofing: .*/  spoofing: [notify]/" \
    "$PC_ROOT/etc/profiles/lenoir.yaml" >"$LAB_DIR/watch.yaml"
sed -i -e "s|^  - $PC_ROOT/etc/profiles/blocked-services.yaml|&\n  - $LAB_DIR/watch.yaml|" \
       -e "s|^sites:|&\n  watch:\n    policy: watch|" \
       -e "s|^    episode-gap: .*|    episode-gap: 1s|" \
       -e "s|^  notice-gap: .*|  notice-gap: 10s|" "$PC_CFG"
check "the lab config loads (templates included)" pc check

pc vps add vps-101 --site lenoir --owner ada@example.net --lang en --iface "$VPS101_IF" \
        --addr "$VPS101_V4NET" --addr "$VPS101_V6NET" --by lab >/dev/null 2>&1
pc vps add vps-202 --site milano --owner carla@example.it --lang it --iface "$VPS202_IF" \
        --addr "$VPS202_V4NET" --addr "$VPS202_V6NET" --by lab >/dev/null 2>&1
pc vps add vps-201 --site watch --owner dora@example.net --lang en --iface "$VPS201_IF" \
        --addr "$VPS201_V4NET" --addr "$VPS201_V6NET" --by lab >/dev/null 2>&1
check "agent starts" agent_start

# mails TO: the messages delivered to TO, one JSON line each.
mails() { /usr/bin/python3 "$here/mailbox.py" "$LAB_MAILDIR" --to "$1"; }
# mail_count TO: how many messages TO received.
mail_count() { mails "$1" | wc -l; }
# wait_mails TO N [SECONDS]: until TO has received N messages.
wait_mails() { wait_for "${3:-10}" bash -c "[ \$(/usr/bin/python3 '$here/mailbox.py' '$LAB_MAILDIR' --to '$1' | wc -l) -ge $2 ]"; }
# last_mail TO FIELD: a field of the newest message to TO.
last_mail() { mails "$1" | tail -1 | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"; }
# state N: the outbox state of notification N.
state() { pc --json notification show "$1" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }
# newest: the id of the newest notification.
newest() { pc --json notification list --limit 1 | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["notifications"][0]["id"])'; }

echo "# a suspension by hand: the owner hears of it once, in Italian"
pc suspend vps-202 --by alice --reason "Verifica dell'attività sospetta — àèìòù" >/dev/null
check "carla@example.it receives a message" wait_mails carla@example.it 1
sleep 1
check "... exactly one" test "$(mail_count carla@example.it)" = 1
check "... in Italian, naming the VPS" /usr/bin/python3 -c '
import json, sys
m = json.loads(sys.argv[1])
ok = "vps-202" in m["subject"] and "sospes" in (m["subject"] + m["text"]).lower()
ok = ok and "àèìòù" in m["text"] and m["has_html"] and m["defects"] == 0
sys.exit(0 if ok else print(m) or 1)' "$(mails carla@example.it | tail -1)"
check "... from the configured sender, with a stable Message-ID" \
        grep -q "portcullis.N[0-9]*\.[0-9]*@provider.example" <<<"$(last_mail carla@example.it message_id)"
check "the abuse team gets its own copy" wait_mails abuse@provider.example 1
check "the outbox says sent" test "$(state "$(newest)")" = sent

pc unsuspend vps-202 --by alice --reason "verificato" >/dev/null
check "the unsuspension is one more message" wait_mails carla@example.it 2
sleep 1
check "... and no other" test "$(mail_count carla@example.it)" = 2

echo "# an incident notice: vps-202 keeps trying blocked SMTP (provider B); one message per episode"
for i in 1 2 3; do
        swaks_send vps202 "$LAB_INET_V4" 587 "blocked-$i" >/dev/null 2>&1
        sleep 1.2
done
check "carla@example.it receives a notice of the incident" wait_mails carla@example.it 3 10
sleep 2
check "... one for the whole episode, not one per attempt" test "$(mail_count carla@example.it)" = 3
check "... in Italian, naming the service and how to ask for an exception" /usr/bin/python3 -c '
import json, sys
m = json.loads(sys.argv[1])
t = m["text"]
ok = "vps-202" in m["subject"] and "smtp" in t.lower() and "eccezione" in t.lower() and "PC-" in t
sys.exit(0 if ok else print(m) or 1)' "$(mails carla@example.it | tail -1)"

echo "# an exception that ends soon: granted (one message), then announced before it ends (one more)"
pc exception grant vps-202 smtp --by alice --reason "fatture ai clienti" --until +2d >/dev/null
check "carla@example.it is told of the exception, then that it ends within 3 days" wait_mails carla@example.it 5 10
sleep 2
check "... exactly those two" test "$(mail_count carla@example.it)" = 5
# (the two may reach the Maildir in the same second: look for it, not at the last)
check "... one says when it ends, in Italian" /usr/bin/python3 -c '
import json, sys
ms = [json.loads(l) for l in sys.argv[1].splitlines()[-2:]]
ok = any("scade" in m["subject"] and "smtp" in m["text"] and "Scadenza:" in m["text"] for m in ms)
sys.exit(0 if ok else print(ms) or 1)' "$(mails carla@example.it)"

echo "# a suspension by the agent: vps-101 spoofs (hping3), its owner is told in English"
lab_install hping3 || exit 1
lab_exec vps101 hping3 --udp -p 9999 -a "$VPS202_V4" -c 3 -i u20000 "$LAB_INET_V4" >/dev/null 2>&1
check "vps-101 is suspended" wait_for 5 suspended v101
check "ada@example.net receives one message" wait_mails ada@example.net 1
sleep 1
check "... exactly one for the whole spoofing episode" test "$(mail_count ada@example.net)" = 1
check "... in English, saying why (spoofing) and what to do" /usr/bin/python3 -c '
import json, sys
m = json.loads(sys.argv[1])
t = (m["subject"] + m["text"]).lower()
ok = "vps-101" in t and "spoof" in t and "suspend" in t and "PC-" in m["text"]
sys.exit(0 if ok else print(m) or 1)' "$(mails ada@example.net | tail -1)"
pc unsuspend vps-101 --by alice --reason "misconfigured VPN" >/dev/null
check "the unsuspension reaches ada too" wait_mails ada@example.net 2

echo "# a storm of spoofing episodes at a notify-only site: one notice, then one digest"
for i in 1 2 3; do
        lab_exec vps201 hping3 --udp -p 9999 -a "$VPS202_V4" -c 2 -i u20000 "$LAB_INET_V4" >/dev/null 2>&1
        sleep 1.6 # longer than the 1 s episode gap: a new episode each time
done
check "dora@example.net gets a notice for the first episode" wait_mails dora@example.net 1 5
check "... and one digest for the other two once the 10 s notice gap is over" wait_mails dora@example.net 2 15
sleep 2
check "... and nothing else" test "$(mail_count dora@example.net)" = 2
check "the digest counts the two episodes it sums up" /usr/bin/python3 -c '
import json, sys
m = json.loads(sys.argv[1])
ok = "(2 more)" in m["subject"] and "since our last message: 2," in m["text"] and "spoofing" in m["text"]
sys.exit(0 if ok else print(m) or 1)' "$(mails dora@example.net | tail -1)"
check "vps-201 is not suspended (its site only notifies)" check_not_grep . "$(suspended v201 && echo yes)"

echo "# the relay is down: nothing is lost, and the message arrives once"
ip netns exec "$LAB_INET" postfix -c "$LAB_DIR/postfix/etc" stop >/dev/null 2>&1
pc filter place vps-101 --ports tcp/22 --by abuse-desk --reason "ssh brute force from your VPS" >/dev/null
n=$(newest)
check "the send fails and the notification stays pending, with the error" \
        wait_for 8 bash -c "pc_state=\$('$PC_BIN' -c '$PC_CFG' --json notification show $n); grep -q '\"state\": \"pending\"' <<<\"\$pc_state\" && grep -q 'last_error\": \"[A-Za-z]' <<<\"\$pc_state\""
agent_kill
check "agent restarts" agent_start
ip netns exec "$LAB_INET" postfix -c "$LAB_DIR/postfix/etc" start >/dev/null 2>&1
check "once the relay is back the message arrives" wait_mails ada@example.net 3 20
sleep 2
check "... exactly once" test "$(mail_count ada@example.net)" = 3
check "... and the outbox says sent" test "$(state "$n")" = sent

echo "# a relay that refuses (5xx): a clear failed state, then retry by support"
cat >"$LAB_DIR/refusing_relay.py" <<'PY'
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("192.0.2.2", 2626)); s.listen(5)
while True:
    c, _ = s.accept()
    try:
        f = c.makefile("rwb")
        f.write(b"220 refusing relay\r\n"); f.flush()
        for line in f:
            v = line[:4].upper()
            if v in (b"EHLO", b"HELO"): f.write(b"250 refusing relay\r\n")
            elif v == b"MAIL": f.write(b"250 ok\r\n")
            elif v == b"RCPT": f.write(b"550 5.1.1 <recipient>: no such mailbox here\r\n")
            elif v == b"QUIT": f.write(b"221 bye\r\n"); f.flush(); break
            else: f.write(b"503 5.5.1 no\r\n")
            f.flush()
    except OSError:
        pass
    c.close()
PY
lab_bg refusing-relay inet /usr/bin/python3 "$LAB_DIR/refusing_relay.py" >/dev/null
lab_wait_port inet "$LAB_INET_V4" 2626 5 >/dev/null 2>&1
sed -i "s|^  relay: .*|  relay: smtp://$LAB_INET_V4:2626|" "$PC_CFG"
pc_reload() { echo reload | ip netns exec "$LAB_HV" socat -t5 - "UNIX-CONNECT:$LAB_DIR/control.sock"; }
check "the agent reloads the new relay" grep -q '"ok": *true' <<<"$(pc_reload)"
fid=$(pc --json vps show vps-101 | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["filters"][0]["id"])')
pc filter lift vps-101 "$fid" --by abuse-desk --reason "resolved" >/dev/null
n=$(newest)
check "the refused notification ends failed at once (no retries)" wait_for 8 bash -c "[ \"\$('$PC_BIN' -c '$PC_CFG' --json notification show $n | grep -c '\"state\": \"failed\"')\" = 1 ]"
check "... with the relay's reply in its error" grep -q "550" <<<"$(pc notification show "$n")"
check "notification list --state failed shows it" grep -q "^ *$n " <<<"$(pc notification list --state failed)"
sed -i "s|^  relay: .*|  relay: smtp://$LAB_INET_V4:25|" "$PC_CFG"
pc_reload >/dev/null
check "support retries it" pc notification retry "$n" --by alice --reason "relay fixed"
check "... and it is delivered" wait_mails ada@example.net 4 10

echo "# a relay nobody answers, and an owner address that cannot be written"
sed -i -e "s|^  relay: .*|  relay: smtp://$LAB_INET_V4:2727|" -e "s|^  max-attempts: .*|  max-attempts: 3|" "$PC_CFG"
pc_reload >/dev/null
pc filter place vps-202 --all --by abuse-desk --reason "scan" >/dev/null
n=$(newest)
check "connection refused 3 times (1 s, 2 s backoff), then failed" \
        wait_for 15 bash -c "'$PC_BIN' -c '$PC_CFG' --json notification show $n | grep -q '\"state\": \"failed\"'"
check "... after max-attempts (3)" grep -q '"attempts": 3' <<<"$(pc --json notification show "$n")"
sed -i "s|^  relay: .*|  relay: smtp://$LAB_INET_V4:25|" "$PC_CFG"
pc_reload >/dev/null
sqlite3 "$LAB_DIR/portcullis.db" "UPDATE vps SET owner = 'not an address' WHERE id = 'vps-202'"
echo "sync vps-202" | ip netns exec "$LAB_HV" socat -t5 - "UNIX-CONNECT:$LAB_DIR/control.sock" >/dev/null
fid=$(pc --json vps show vps-202 | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["filters"][0]["id"])')
pc filter lift vps-202 "$fid" --by abuse-desk --reason "done" >/dev/null
n=$(newest)
check "a message to an invalid owner address fails with a clear error" \
        wait_for 8 bash -c "'$PC_BIN' -c '$PC_CFG' --json notification show $n | grep -q '\"state\": \"failed\"'"
check "the agent is still running after all of it" kill -0 "$AGENT_PID"
check "its log has no sanitizer report" check_not_grep "Sanitizer" "$(agent_log)"
lab_summary
