#!/bin/bash
# Lab scenario: the SMTP proxy's limits hold whatever the spelling of MAIL
# and RCPT.  Postfix splits a command on any white space and takes its verb
# in any case, so " MAIL", "MAIL<TAB>FROM", "MAIL  FROM" are MAIL to it; the
# proxy must refuse each such line itself or count it, never pass it on
# unseen.  Real clients (raw sockets) from a VPS, through the real proxy, to
# the real postfix; the Maildir is the judge.
# Usage: smtp_bypass.sh BUILD_DIR SOURCE_ROOT
# Builds its own namespaces (prefix pcb, or $LAB_PREFIX) and removes them
# however it ends.
set -u
here=$(dirname "$(readlink -f "$0")")
export LAB_PREFIX=${LAB_PREFIX:-pcb} LAB_QUIET=1
. "$here/lab.sh"
. "$here/common.sh"

t0=$(date +%s)
lab_deps || exit 1
lab_up --trap || { echo "FAIL lab_up"; exit 1; }
pc_setup "$1" "$2"

# Provider A's profile with N messages per window and 2 recipients per
# message; the window outlasts the scenario.
N=3
sed -e "s/^profile: lenoir/profile: lenoir-bypass/" \
    -e "s/messages-per-hour: .*/messages-per-hour: $N/" \
    -e "s/recipients-per-message: .*/recipients-per-message: 2/" \
    -e "s/window: .*/window: 10m/" \
    "$PC_ROOT/etc/profiles/lenoir.yaml" >"$LAB_DIR/bypass.yaml"
sed -i -e "s|^  - $PC_ROOT/etc/profiles/blocked-services.yaml|&\n  - $LAB_DIR/bypass.yaml|" \
       -e "s|^sites:|&\n  bypass:\n    policy: lenoir-bypass|" "$PC_CFG"
check "the lab config with the bypass profile loads" pc check
pc vps add vps-101 --site bypass --owner ada@example.net --iface "$VPS101_IF" \
        --addr "$VPS101_V4NET" --addr "$VPS101_V6NET" --by lab >/dev/null 2>&1
check "agent starts" agent_start
check "portcullis-smtpd starts" smtpd_start

# send.py HOST PORT MAIL_LINE RCPT_LINE... SUBJECT: one session; the MAIL
# and RCPT lines are sent as given (\t, \x escapes), the rest canonical.
# Prints "mail=CODE rcpt=CODE,... data=CODE final=CODE" (0: not reached).
cat >"$LAB_DIR/send.py" <<'PY'
import re, socket, sys
host, port, mail, rcpts, subject = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:-1], sys.argv[-1]
def raw(text):
    return re.sub(r"\\x([0-9a-fA-F]{2})|\\t", lambda m: chr(int(m.group(1), 16)) if m.group(1) else "\t",
                  text).encode("latin-1") + b"\r\n"
s = socket.create_connection((host, port), timeout=10)
f = s.makefile("rb")
def reply():
    while True:
        line = f.readline().decode("latin-1")
        if not line:
            return 0
        if len(line) < 4 or line[3] != "-":
            return int(line[:3])
out = {"mail": 0, "rcpt": [], "data": 0, "final": 0}
reply()
s.sendall(b"EHLO vps.example\r\n")
reply()
s.sendall(raw(mail))
out["mail"] = reply()
for r in rcpts:
    s.sendall(raw(r))
    out["rcpt"].append(reply())
if out["mail"] == 250 and 250 in out["rcpt"]:
    s.sendall(b"DATA\r\n")
    out["data"] = reply()
    if out["data"] == 354:
        s.sendall(("Subject: %s\r\n\r\nspelling test\r\n.\r\n" % subject).encode())
        out["final"] = reply()
s.sendall(b"QUIT\r\n")
reply()
print("mail=%d rcpt=%s data=%d final=%d" % (out["mail"], ",".join(map(str, out["rcpt"])) or "-",
                                            out["data"], out["final"]))
PY
send() { lab_exec vps101 timeout 20 /usr/bin/python3 "$LAB_DIR/send.py" "$LAB_INET_V4" 25 "$@" 2>&1; }

echo "# scripted: each spelling is refused (500/501) or understood (tests/smtp/scripts/spellings.smtp)"
out=$(lab_exec vps101 /usr/bin/python3 "$PC_ROOT/tests/smtp/run_script.py" "$LAB_INET_V4" 25 \
        "$PC_ROOT/tests/smtp/scripts/spellings.smtp" 2>&1)
echo "$out" | sed 's/^/     /'
check "the spellings session passes" grep -q "^ok" <<<"$out"

echo "# recipients per message (2), whatever the spelling of RCPT"
out=$(send "MAIL FROM:<rcpt@vps.example>" " RCPT TO:<r1@example.net>" "RCPT\tTO:<r2@example.net>" \
        "RCPT  TO:<r3@example.net>" "rcpt to:<r4@example.net>" "RCPT TO: <r5@example.net>" \
        "Rcpt To:<r6@example.net>" "bypass-$$-rcpt")
echo "     $out"
check "blank, TAB and doubled-space RCPTs refused with 500; two accepted; the third gets 452" \
        grep -q "^mail=250 rcpt=500,500,500,250,250,452 data=354 final=250" <<<"$out"
check "the message arrives" lab_mail_wait "bypass-$$-rcpt" 5
check "postfix saw it for exactly the two recipients it was counted for" \
        test "$(grep -c "to=<r[0-9]@example.net>.*status=sent" "$LAB_DIR/maillog")" = 2

echo "# $N messages per window, whatever the spelling of MAIL"
i=0
for spelling in " MAIL FROM:<s@vps.example>" "MAIL\tFROM:<s@vps.example>" "\tMAIL FROM:<s@vps.example>" \
                "MAIL  FROM:<s@vps.example>" "MAIL FROM :<s@vps.example>" "MAIL\x0bFROM:<s@vps.example>" \
                "mail from:<s@vps.example>" "MAIL FROM: <s@vps.example>" "Mail From:<s@vps.example>" \
                " mail from:<s@vps.example>" "MAIL FROM:<s@vps.example>"; do
        i=$((i + 1))
        out=$(send "$spelling" "RCPT TO:<customer@example.net>" "bypass-$$-mail-$i")
        echo "     $(printf '%-30s' "'$spelling'") $out"
        case $out in
        "mail=500 "* | "mail=501 "*) ok "'$spelling' refused by the proxy" ;;
        "mail=250 rcpt=250 data=354 final=250") ok "'$spelling' understood and counted (delivered)" ;;
        "mail=451 "*) ok "'$spelling' understood and counted (over the limit: 451)" ;;
        *) fail "'$spelling': $out" ;;
        esac
done
sleep 1
# (one file per recipient: the first message had two)
delivered=$(lab_mail_find "bypass-$$-" 2>/dev/null | xargs -r grep -h "^Subject: bypass-$$-" | sort -u | wc -l)
check "exactly $N messages reached the Maildir (got $delivered)" test "$delivered" = "$N"
out=$(lab_exec vps101 timeout 10 swaks --server "$LAB_INET_V4" --port 25 --to customer@example.net \
        --from owner@example.org --header "Subject: bypass-$$-swaks" --timeout 5 2>&1)
check "a plain client after them is refused by the limit, which names it" \
        grep -q "451 4.7.1 Too many messages from vps-101: the limit is $N per 10m" <<<"$out"
check "the proxy is still running after all of it" kill -0 "$SMTPD_PID"
check "its log has no sanitizer report" check_not_grep "Sanitizer" "$(smtpd_log)"
echo "# took $(($(date +%s) - t0)) s"
lab_summary
