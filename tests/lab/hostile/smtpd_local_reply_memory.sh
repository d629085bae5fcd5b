#!/bin/bash
# Hostile review 2 (3): one session of a VPS grows portcullis-smtpd without
# bound.  Its watermarks stop reading the MX while 64 KiB wait for the
# client, and stop reading the client while 256 KiB wait for the MX; but a
# reply the relay writes itself goes to the client's output whatever is
# there.  RCPTs over recipients-per-message (or MAILs over messages-per-hour)
# are answered locally with a 4xx (452/451), which is not counted toward the
# 20-error cutoff, and nothing is forwarded, so the client keeps being read:
# each 25-byte RCPT line becomes a 65-byte reply held in memory for a client
# that never reads (until client-write, 5 min by default, with no progress).
# docs/SMTPD.md claims about 600 KiB per session at worst and the lab's
# bound is 64 MiB; 100 MB from one session takes the proxy far past it
# (20 sessions per VPS, MemoryMax=2G: the proxy is killed and restarted,
# dropping every VPS's sessions and its in-memory rate windows).
# Exits non-zero while the hole exists.
# Usage: smtpd_local_reply_memory.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_PREFIX=${LAB_PREFIX:-hs} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
PY=/usr/bin/python3
RSS_BOUND_KB=65536
lab_deps || exit 1
lab_up --trap || { echo "FAIL lab_up"; exit 1; }
pc_setup "$1" "$2"
pc_proxied_vps101

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$SMTPD_PID/status" 2>/dev/null || echo 0; }
before=$(rss)
lab_exec vps101 timeout 60 "$PY" "$here/smtpx.py" flood "$LAB_INET_V4" 100 4 &
flood=$!
peak=$before
while kill -0 "$flood" 2>/dev/null; do
        r=$(rss)
        [ "${r:-0}" -gt "$peak" ] && peak=$r
        sleep 0.2
done
wait "$flood"
echo "     proxy RSS: ${before} kB before, ${peak} kB at most, while one session sent 100 MB of RCPTs"
check "the proxy is still running" kill -0 "$SMTPD_PID"
check "one session's replies stay under ${RSS_BOUND_KB} kB of RSS (peak ${peak} kB)" test "$peak" -lt "$RSS_BOUND_KB"
lab_summary
