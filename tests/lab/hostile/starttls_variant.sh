#!/bin/bash
# Hostile review (b): provider A's proxy must never let a VPS start TLS with
# the MX on port 25.  The relay recognises STARTTLS only as "STARTTLS" alone
# or followed by a space; "STARTTLS<TAB>" (a tab is allowed in commands) is
# relayed as an unknown verb, and the MX (postfix, which splits on any
# whitespace) answers "220 2.0.0 Ready to start TLS" and switches to TLS.
# The relay's line parser still refuses the binary ClientHello, so no TLS
# session was completed in the lab; but the MX has entered TLS mode at the
# VPS's request, which the proxy exists to prevent.
# Exits non-zero while the hole exists.
# Usage: starttls_variant.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_PREFIX=${LAB_PREFIX:-hr} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
lab_deps || exit 1
lab_up --trap || { echo "FAIL lab_up"; exit 1; }
pc_setup "$1" "$2"
chmod o+rx "$LAB_DIR" && chmod o+r "$PC_CFG"
pc vps add vps-101 --site lenoir --owner ada@example.net --iface "$VPS101_IF" \
        --addr "$VPS101_V4NET" --addr "$VPS101_V6NET" --by lab >/dev/null 2>&1
check "agent starts" agent_start
check "portcullis-smtpd starts" smtpd_start
lab_wait_port inet "$LAB_INET_V4" 25 10 >/dev/null 2>&1

dialogue() { # COMMAND: EHLO, COMMAND, QUIT through the proxy; prints the replies
        printf 'EHLO vps.example\r\n%b\r\nQUIT\r\n' "$1" |
                lab_exec vps101 timeout 8 socat -T5 "TCP:$LAB_INET_V4:25" - 2>/dev/null
}
out=$(dialogue 'STARTTLS')
check "(control: plain STARTTLS is refused by the proxy)" grep -q "^502 5.5.1 STARTTLS is not available" <<<"$out"
check "(control: the greeting came from the MX, through the proxy)" grep -q "portcullis-lab-mta" <<<"$out"
for variant in 'STARTTLS\t' 'starttls\t' 'STARTTLS\t\t'; do
        out=$(dialogue "$variant")
        check_not "the MX never answers 'Ready to start TLS' to the VPS ($variant)" \
                grep -q "^220 2.0.0 Ready to start TLS" <<<"$out"
done
lab_summary
