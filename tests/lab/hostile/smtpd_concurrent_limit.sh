#!/bin/bash
# Hostile review 2 (1): messages-per-hour is checked at MAIL but counted at
# the MX's final 250, so sessions-per-vps transactions opened together all
# pass the check before any is counted.  With messages-per-hour: 1 and five
# sessions that each reach DATA before any ends its message, five messages
# arrive; at every window edge a VPS can send up to sessions-per-vps (20)
# messages for one allowed.
# Exits non-zero while the hole exists.
# Usage: smtpd_concurrent_limit.sh BUILD_DIR SOURCE_ROOT
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
pc_site_variant hs lenoir-hs "s/messages-per-hour: .*/messages-per-hour: $N/" "s/window: .*/window: 10m/"
pc_proxied_vps101 hs

lab_exec vps101 timeout 60 "$PY" "$here/smtpx.py" race "$LAB_INET_V4" "raced-$$" 5 | sed 's/^/     /'
sleep 1
got=$(grep -l "^Subject: raced-$$-" "$LAB_MAILDIR"/new/* 2>/dev/null | wc -l)
check "(control: the MX accepted at least one)" test "$got" -ge 1
check "at most $N message(s) per window reach the MX (got $got)" test "$got" -le "$N"
lab_summary
