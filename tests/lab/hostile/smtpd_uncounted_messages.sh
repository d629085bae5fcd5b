#!/bin/bash
# Hostile review 2 (1): messages the MX accepted that portcullis-smtpd never
# counts against messages-per-hour.  A message is counted when the relay
# reads the MX's final 250; the relay stops reading the MX while more than
# CLIENT_BACKLOG (64 KiB) waits for the client, and a client that never
# reads can put that much there for free: RCPTs over recipients-per-message
# get a local 452 (not forwarded, not an error, so the 20-error cutoff never
# comes), and local replies go to the client's output with no bound.  Then
# BDAT LAST goes out (BDAT, unlike DATA, needs no reply first), the MX
# queues the message, its 250 sits unread, the client resets the
# connection, and the proxy logs `result=abandoned`: not counted, not in
# the spam detector's figures.  With messages-per-hour: 1, three messages
# arrive (and the limit then still lets a fourth through).
# Exits non-zero while the hole exists.
# Usage: smtpd_uncounted_messages.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_PREFIX=${LAB_PREFIX:-hs} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
PY=/usr/bin/python3
lab_deps || exit 1
lab_up --trap || { echo "FAIL lab_up"; exit 1; }
pc_setup "$1" "$2"
N=1
pc_site_variant hs lenoir-hs "s/messages-per-hour: .*/messages-per-hour: $N/" "s/recipients-per-message: .*/recipients-per-message: 1/" "s/window: .*/window: 10m/"
pc_proxied_vps101 hs

lab_exec vps101 timeout 60 "$PY" "$here/smtpx.py" uncounted "$LAB_INET_V4" "uncounted-$$" 3
sleep 1
got=$(grep -l "^Subject: uncounted-$$-" "$LAB_MAILDIR"/new/* 2>/dev/null | xargs -r grep -h "^Subject:" | sort -u | wc -l)
echo "     messages delivered: $got (limit $N); proxy: $(grep -c 'result=abandoned' <<<"$(smtpd_log)") logged abandoned"
# (Before the fix the MX accepted three and a plain message was still let
# through; now the proxy stops reading a client that does not read its
# replies, and a message whose end went upstream counts, reply or not.)
check "at most $N message(s) per window reach the MX (got $got)" test "$got" -le "$N"
out=$(swaks_send vps101 "$LAB_INET_V4" 25 "control-$$" 2>&1)
plain=0
grep -q "^<-  250 2.0.0 Ok: queued" <<<"$out" && plain=1
check "with a plain message after them, still at most $N (got $((got + plain)))" test $((got + plain)) -le "$N"
lab_summary
