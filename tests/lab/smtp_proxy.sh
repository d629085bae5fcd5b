#!/bin/bash
# Lab scenario (step 4): portcullis-smtpd, provider A's transparent SMTP
# proxy, with real clients (swaks, scripted sessions) and a real postfix.
# Usage: smtp_proxy.sh BUILD_DIR SOURCE_ROOT
# Builds its own namespaces (prefix pcm) and removes them however it ends.
# LAB_TOPOLOGY=bridged runs it with every VPS a port of a bridge in hv (step
# 8; prefix pcmb), where the proxy connects from the hypervisor's address.
set -u
here=$(dirname "$(readlink -f "$0")")
export LAB_TOPOLOGY=${LAB_TOPOLOGY:-routed}
[ "$LAB_TOPOLOGY" = bridged ] && export LAB_PREFIX=${LAB_PREFIX:-pcmb}
export LAB_PREFIX=${LAB_PREFIX:-pcm} LAB_QUIET=1
. "$here/lab.sh"
. "$here/common.sh"

lab_deps || exit 1
lab_up --trap || { echo "FAIL lab_up"; exit 1; }
pc_setup "$1" "$2"
smtpd_user_ensure

# A second copy of provider A's profile with tight limits and timeouts, at
# its own site, so that limits are shown without slowing the rest down.
sed -e "s/^profile: lenoir/profile: lenoir-tight/" \
    -e "s/messages-per-hour: .*/messages-per-hour: 3/" \
    -e "s/recipients-per-message: .*/recipients-per-message: 5/" \
    -e "s/sessions-per-vps: .*/sessions-per-vps: 2/" \
    -e "s/window: .*/window: 6s/" \
    -e "s/command: .*/command: 3s/" \
    -e "s/upstream-tls: off/upstream-tls: opportunistic/" \
    -e "s/^  source: vps/  source: $( [ "$LAB_TOPOLOGY" = bridged ] && echo hypervisor || echo vps)/" \
    "$PC_ROOT/etc/profiles/lenoir.yaml" >"$LAB_DIR/tight.yaml"
sed -i -e "s|^  - $PC_ROOT/etc/profiles/blocked-services.yaml|&\n  - $LAB_DIR/tight.yaml|" \
       -e "s|^sites:|&\n  tight:\n    policy: lenoir-tight|" "$PC_CFG"
[ "$LAB_TOPOLOGY" = bridged ] && sed -i "s|^    policy: lenoir-tight\$|&\n    topology: bridged|" "$PC_CFG"
# The address the MTA sees the proxy's connections come from: the VPS's own,
# or at a bridged site the hypervisor's.
SRC101_V4=$VPS101_V4 SRC101_V6=$VPS101_V6 SRC202_V4=$VPS202_V4
if [ "$LAB_TOPOLOGY" = bridged ]; then
        SRC101_V4=$LAB_HV_UPLINK_V4 SRC101_V6=$LAB_HV_UPLINK_V6 SRC202_V4=$LAB_HV_UPLINK_V4
fi
check "the lab config with the tight profile loads" pc check

# shellcheck disable=SC2046 # word splitting of the link options is meant
pc vps add vps-101 --site lenoir --owner ada@example.net $(pc_vps_link VPS101) --by lab >/dev/null 2>&1
# shellcheck disable=SC2046
pc vps add vps-202 --site tight --owner carla@example.it --lang it $(pc_vps_link VPS202) --by lab >/dev/null 2>&1
# shellcheck disable=SC2046
pc vps add vps-201 --site milano --owner bruno@example.it $(pc_vps_link VPS201) --by lab >/dev/null 2>&1
check "agent starts" agent_start
check "portcullis-smtpd starts" smtpd_start
check "the proxy runs unprivileged (uid of portcullis-smtpd, its own user)" \
        test "$(awk '/^Uid:/ {print $2}' "/proc/$SMTPD_PID/status")" = "$(id -u portcullis-smtpd)"
# CAP_NET_RAW only for IP_TRANSPARENT (source: vps); none at bridged sites
caps=0000000000002000
[ "$LAB_TOPOLOGY" = bridged ] && caps=0000000000000000
check "the proxy kept only the capabilities its sources need ($caps)" \
        test "$(awk '/^CapEff:/ {print $2}' "/proc/$SMTPD_PID/status")" = $caps

msg=$LAB_DIR/message.eml
printf 'From: Owner <owner@vps.example>\r\nTo: customer@example.net\r\nSubject: intact-%s\r\nMessage-ID: <intact-%s@vps.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nCiao, questo è un messaggio.\r\n..a line that starts with a dot\r\n\tindented line\r\n' "$$" "$$" >"$msg"

echo "# vps-101 (provider A, lenoir): outbound port 25 goes through the proxy"
out=$(lab_exec vps101 timeout 10 swaks --server "$LAB_INET_V4" --port 25 --to customer@example.net \
        --from owner@vps.example --data "$msg" --timeout 5 2>&1)
check "swaks over IPv4 to the MTA's port 25 succeeds" grep -q "^<-  250 2.0.0 Ok: queued" <<<"$out"
check "the EHLO reply the client saw has no STARTTLS" check_not_grep STARTTLS "$out"
check "... but has PIPELINING, CHUNKING, 8BITMIME, SMTPUTF8" \
        /usr/bin/python3 -c 'import sys; sys.exit(0 if all(k in sys.argv[1] for k in ("PIPELINING","CHUNKING","8BITMIME","SMTPUTF8")) else 1)' "$out"
direct=$(lab_exec hv timeout 10 swaks --server "$LAB_INET_V4" --port 25 --quit-after EHLO 2>&1)
check "(control: the MTA itself offers STARTTLS to the hypervisor)" grep -q "STARTTLS" <<<"$direct"
check "the message arrives" lab_mail_wait "intact-$$" 5
delivered=$(grep -l "intact-$$" "$LAB_MAILDIR"/new/* 2>/dev/null | head -1)
# The MTA adds its own headers on top; everything the VPS sent follows, byte
# for byte (Maildir stores LF line ends).
check "it arrives intact: every header and body byte the VPS sent" \
        /usr/bin/python3 -c 'import sys; sent=open(sys.argv[1],"rb").read().replace(b"\r\n",b"\n"); got=open(sys.argv[2],"rb").read(); sys.exit(0 if got.rstrip(b"\n").endswith(sent.rstrip(b"\n")) and got.count(b"Subject:")==1 else 1)' "$msg" "$delivered"
check "the MTA logged the VPS's own address (bridged: the hypervisor's) as the client" \
        grep -q "connect from [^ ]*\[$SRC101_V4\]" "$LAB_DIR/maillog"
check "one log line for the message, with vps, helo, sender and result" \
        grep -q "message session=[0-9]* vps=vps-101 src=$VPS101_V4 mx=$LAB_INET_V4:25 helo=[^ ]* from=owner@vps.example rcpts=1 accepted=1 .*result=sent final=250" \
        "$LAB_DIR/log/portcullis-smtpd.log"

check "swaks over IPv6 delivers through the proxy" \
        swaks_send vps101 "$LAB_INET_V6" 25 "proxied-v6-$$"
check "the IPv6 message arrives" lab_mail_wait "proxied-v6-$$" 5
check "the MTA logged the VPS's IPv6 address" grep -q "connect from [^ ]*\[$SRC101_V6\]" "$LAB_DIR/maillog"

tls=$(swaks_send vps101 "$LAB_INET_V4" 25 "tls-25" --tls 2>&1)
check "swaks --tls on port 25 fails" test $? -ne 0
check "... because the proxy did not offer STARTTLS" grep -q "Host did not advertise STARTTLS" <<<"$tls"
check_not "openssl s_client -starttls smtp (which asks anyway) gets no TLS either" \
        lab_exec vps101 timeout 10 openssl s_client -starttls smtp -connect "$LAB_INET_V4:25" -brief </dev/null
raw=$(printf 'EHLO vps.example\r\nSTARTTLS\r\nQUIT\r\n' | lab_exec vps101 timeout 5 socat -T3 "TCP:$LAB_INET_V4:25" - 2>&1)
check "asked for STARTTLS, the proxy says TLS is not available and names port 587" \
        grep -q "502 5.5.1 STARTTLS is not available.*port 587" <<<"$raw"
tls587=$(swaks_send vps101 "$LAB_INET_V4" 587 "tls-587-$$" --tls 2>&1)
check "swaks --tls on port 587 works (not intercepted)" grep -q "TLS started" <<<"$tls587"
check "the TLS message on 587 arrives" lab_mail_wait "tls-587-$$" 5

echo "# scripted sessions through the proxy (tests/smtp/scripts)"
out=$(lab_exec vps101 /usr/bin/python3 "$PC_ROOT/tests/smtp/run_script.py" "$LAB_INET_V4" 25 \
        "$PC_ROOT"/tests/smtp/scripts/*.smtp 2>&1)
echo "$out" | sed 's/^/     /'
check "every scripted session passes" test "$(grep -c '^FAIL' <<<"$out")" = 0
check "pipelined message delivered" lab_mail_wait pipelined-lab-message 5
check "BDAT message delivered" lab_mail_wait bdat-lab-message 5
check "both halves of the 'smuggling' attempt were two proper messages" \
        lab_mail_wait smuggle-lab-second 5
sleep 1
check_not "the aborted message was not delivered" lab_mail_find aborted-lab-message
check "the proxy logged it as abandoned" grep -q "from=x@vps.example .*result=abandoned" \
        "$LAB_DIR/log/portcullis-smtpd.log"

echo "# vps-202 (tight profile): limits and timeouts"
out=$(lab_exec vps202 /usr/bin/python3 "$PC_ROOT/tests/smtp/run_script.py" "$LAB_INET_V4" 25 \
        "$PC_ROOT"/tests/smtp/tight/*.smtp 2>&1)
echo "$out" | sed 's/^/     /'
check "every scripted session passes" test "$(grep -c '^FAIL' <<<"$out")" = 0
for i in 1 2 3; do
        check "message $i of 3 within the window is accepted" swaks_send vps202 "$LAB_INET_V4" 25 "rate-$i-$$"
done
rate=$(swaks_send vps202 "$LAB_INET_V4" 25 "rate-4-$$" 2>&1)
check "the 4th is refused: 451 4.7.1 naming the limit" \
        grep -q "451 4.7.1 Too many messages from vps-202: the limit is 3 per 6s" <<<"$rate"
sleep 6.5
check "after the window it is accepted again" swaks_send vps202 "$LAB_INET_V4" 25 "rate-5-$$"
lab_mail_wait "rate-5-$$" 5 >/dev/null 2>&1 # postfix delivers after it queued
check "the MTA got exactly the 4 accepted ones" \
        test "$(grep -l "rate-[0-9]-$$" "$LAB_MAILDIR"/new/* 2>/dev/null | wc -l)" = 4
echo "# upstream-tls: opportunistic (tight profile): encrypted to the MX, plain for the VPS"
# (port 587 logs as postfix/submission/smtpd, port 25 as postfix/smtpd)
check "the MTA's port 25 saw TLS from vps-202's own address" \
        grep -q "postfix/smtpd\[.*TLS connection established from [^ ]*\[$SRC202_V4\]" "$LAB_DIR/maillog"
check "the proxy logged its messages with tls=yes" \
        grep -q "vps=vps-202 .*result=sent .*tls=yes" "$LAB_DIR/log/portcullis-smtpd.log"
# (bridged: both VPSes' proxied connections come from the hypervisor's address)
[ "$LAB_TOPOLOGY" = routed ] && check "(control: vps-101's profile says off: no TLS from it on port 25)" \
        check_not_grep "postfix/smtpd\[.*TLS connection established from [^ ]*\[$VPS101_V4\]" "$(cat "$LAB_DIR/maillog")"
check "(control: vps-101's messages logged with tls=no)" \
        grep -q "vps=vps-101 .*result=sent .*tls=no" "$LAB_DIR/log/portcullis-smtpd.log"
plain=$(swaks_send vps202 "$LAB_INET_V4" 25 "tls-hidden-$$" --quit-after EHLO 2>&1)
check "vps-202 still sees no STARTTLS in the EHLO reply" check_not_grep STARTTLS "$plain"
lab_bg idle1 vps202 socat -T20 "TCP:$LAB_INET_V4:25" SYSTEM:"sleep 10" >/dev/null
lab_bg idle2 vps202 socat -T20 "TCP:$LAB_INET_V4:25" SYSTEM:"sleep 10" >/dev/null
sleep 1
third=$(lab_exec vps202 timeout 5 socat -T3 "TCP:$LAB_INET_V4:25" - </dev/null 2>&1)
check "a 3rd concurrent session is refused (sessions-per-vps 2)" \
        grep -q "421 4.7.0 Too many concurrent sessions from vps-202: the limit is 2" <<<"$third"

echo "# a filter on vps-101's port 25: the proxy refuses its mail, with the reason"
pc filter place vps-101 --service smtp --by abuse-desk --reason "lab: spam complaint" >/dev/null 2>&1
refused=$(swaks_send vps101 "$LAB_INET_V4" 25 "filtered-$$" 2>&1)
check "swaks gets 421 4.7.0 with the filter's reason" \
        grep -q "421 4.7.0 Mail from vps-101 is refused: .*lab: spam complaint" <<<"$refused"
fid=$(pc --json vps show vps-101 | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["filters"][0]["id"])')
pc filter lift vps-101 "$fid" --by abuse-desk --reason "lab: resolved" >/dev/null 2>&1
check "after the filter is lifted mail flows again" swaks_send vps101 "$LAB_INET_V4" 25 "unfiltered-$$"

echo "# a broken MX: the client gets a 421 that says what happened, never a 250"
# A fake MX on vps-201's address (any host is an MX to vps-101).
cat >"$LAB_DIR/fakemx.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 25))
s.listen(5)
while True:
    c, _ = s.accept()
    try:
        c.sendall(b"220 fake ESMTP\r\n")
        if c.recv(1000):
            c.sendall(b"250 ok\r\nhello garbage\r\n" if sys.argv[2] == "garbage" else b"")
    except OSError:
        pass
    c.close()
PY
fakemx=$(lab_bg fakemx vps201 /usr/bin/python3 "$LAB_DIR/fakemx.py" "$VPS201_V4" close)
lab_bg fakemx6 vps201 /usr/bin/python3 "$LAB_DIR/fakemx.py" "$VPS201_V6" garbage >/dev/null
lab_wait_port vps201 "$VPS201_V4" 25 5 >/dev/null 2>&1
lab_wait_port vps201 "$VPS201_V6" 25 5 >/dev/null 2>&1
out=$(printf 'EHLO vps.example\r\n' | lab_exec vps101 timeout 5 socat -T3 "TCP:$VPS201_V4:25" - 2>&1)
check "an MX that hangs up after EHLO: 421 4.4.2 ... closed the connection" \
        grep -q "^421 4.4.2 The receiving mail server closed the connection" <<<"$out"
out=$(printf 'EHLO vps.example\r\n' | lab_exec vps101 timeout 5 socat -T3 "TCP:[$VPS201_V6]:25" - 2>&1)
check "an MX that answers garbage: 421 4.4.2 ... malformed reply" \
        grep -q "^421 4.4.2 The receiving mail server sent a malformed reply" <<<"$out"
check "... and the client never saw the garbage" check_not_grep "hello garbage" "$out"
kill "$fakemx"
sleep 0.2
out=$(printf 'EHLO vps.example\r\n' | lab_exec vps101 timeout 5 socat -T3 "TCP:$VPS201_V4:25" - 2>&1)
check "an MX that refuses the connection: 421 4.4.1 Could not connect" \
        grep -q "^421 4.4.1 Could not connect to $VPS201_V4:25: Connection refused" <<<"$out"

echo "# what the proxy refuses, and what it is not for"
direct=$(lab_exec inet timeout 5 socat -T3 "TCP:$LAB_HV_UPLINK_V4:10025" - </dev/null 2>&1)
check "a direct (not redirected) connection to the proxy port is refused" \
        grep -q "421 4.3.2 This port only takes mail redirected from VPSes" <<<"$direct"
check "vps-201 (provider B) is not proxied: port 25 is blocked there" \
        refused_fast 1 lab_tcp_hello vps201 "$LAB_INET_V4" 25

echo "# a reload while a session is open: the session carries on"
chmod o+rx "$LAB_DIR" && chmod o+r "$PC_CFG" "$LAB_DIR/tight.yaml" # the proxy reloads unprivileged
cat >"$LAB_DIR/slow.smtp" <<'EOF'
< 220 *
> EHLO vps.example
< 250 *
sleep 2
> MAIL FROM:<slow@vps.example>
< 250 *
> QUIT
< 221 *
EOF
lab_exec vps101 /usr/bin/python3 "$PC_ROOT/tests/smtp/run_script.py" "$LAB_INET_V4" 25 "$LAB_DIR/slow.smtp" \
        >"$LAB_DIR/slow.out" 2>&1 &
slow=$!
sleep 0.7
check "reload through the control socket" grep -q '"ok":true' <<<"$(smtpd_ask reload)"
wait "$slow"
check "the session opened before the reload finished normally" grep -q "^ok" "$LAB_DIR/slow.out"

echo "# the figures reach the agent (the spam detector's input)"
sleep 1.5 # one attempts-interval
show=$(pc vps show vps-101 2>&1)
check "vps show prints the proxy's figures for vps-101" \
        grep -q "Mail through the SMTP proxy" <<<"$show"
check "... counting the messages it sent" grep -Eq "[0-9]+ messages sent" <<<"$show"
stats=$(smtpd_ask stats)
check "stats count vps-202's refusals by limits" /usr/bin/python3 -c '
import json, sys
v = {x["vps"]: x for x in json.loads(sys.argv[1])["vps"]}
# vps-101: intact, IPv6, pipelined, BDAT, two "smuggled", after the filter
ok = v["vps-202"]["limited"] >= 3 and v["vps-101"]["messages"] >= 7
sys.exit(0 if ok else print(sys.argv[1]) or 1)' "$stats"
check "the proxy is still running after all of it" kill -0 "$SMTPD_PID"
check "its log has no sanitizer report" check_not_grep "Sanitizer" "$(smtpd_log)"
lab_summary
