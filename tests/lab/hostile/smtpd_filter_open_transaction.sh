#!/bin/bash
# Hostile review 2 (1): a filter on tcp/25 does not stop a transaction that
# was already open.  The proxy checks the VPS's policy only before MAIL and
# RCPT; DATA and BDAT are not checked, and a sync from the agent does not
# end open sessions.  A VPS that keeps transactions open (MAIL + up to
# recipients-per-message RCPTs, in each of sessions-per-vps sessions,
# refreshed within the command timeout) sends them all after abuse-desk's
# filter: here one message, accepted by the MX after `pc filter place`
# while a new session of the same VPS is already refused.
# Exits non-zero while the hole exists.
# Usage: smtpd_filter_open_transaction.sh BUILD_DIR SOURCE_ROOT
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
pc_proxied_vps101

flag=$LAB_DIR/hold
lab_exec vps101 timeout 60 "$PY" "$here/smtpx.py" hold "$LAB_INET_V4" "after-filter-$$" "$flag" >"$LAB_DIR/hold.out" 2>&1 &
held=$!
wait_for 10 test -f "$flag"
pc filter place vps-101 --service smtp --by abuse-desk --reason "lab: spam complaint" >/dev/null 2>&1
sleep 1
out=$(swaks_send vps101 "$LAB_INET_V4" 25 "new-session-$$" 2>&1)
check "(control: a new session after the filter is refused)" grep -q "421 4.7.0 Mail from vps-101 is refused" <<<"$out"
touch "$flag.go"
wait "$held"
sed 's/^/     /' "$LAB_DIR/hold.out"
check_not "the open transaction's message does not reach the MX after the filter" lab_mail_wait "after-filter-$$" 3
lab_summary
