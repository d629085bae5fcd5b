#!/bin/bash
# Hostile review (e): a VPS at provider A's site (lenoir) makes the SMTP proxy
# connect to the hypervisor itself.  The nat chain skips destinations that
# `fib daddr type` calls local/broadcast/multicast, and the proxy only refuses
# a destination equal to its own listening address.  Two IPv6 destinations
# slip through both:
#   [::]:25               the unspecified address: fib calls it unicast, so it
#                         is redirected; the proxy's connect() to :: goes to
#                         the hypervisor's loopback, [::1]:25
#   [::ffff:127.0.0.1]:25 IPv4-mapped: the proxy connects to 127.0.0.1:25 (and
#   [::ffff:192.0.2.1]:25 to the hypervisor's own uplink address)
# The VPS's kernel would turn both into local connections, so the VPS sends
# the handshake by hand (scapy).  With `source: vps` (shipped) the proxy's SYN
# reaches [::1]:25 (a half-open connection on the hypervisor's loopback
# service, whose answer -- from ::1 -- is sent to the VPS); with
# `source: hypervisor` (a supported setting) the VPS talks to the
# hypervisor's local MTA through the proxy.
# Exits non-zero while the hole exists.
# Usage: proxy_to_hypervisor.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_PREFIX=${LAB_PREFIX:-hr} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
PY=/usr/bin/python3
HX=$here/hx.py
lab_deps || exit 1
lab_up --trap || { echo "FAIL lab_up"; exit 1; }
pc_setup "$1" "$2"
chmod o+rx "$LAB_DIR" && chmod o+r "$PC_CFG" # the proxy reloads as nobody
pc vps add vps-101 --site lenoir --owner ada@example.net --iface "$VPS101_IF" \
        --addr "$VPS101_V4NET" --addr "$VPS101_V6NET" --by lab >/dev/null 2>&1
check "agent starts" agent_start
check "portcullis-smtpd starts" smtpd_start

# The hypervisor's own local MTA (loopback and all addresses), as on many hosts.
lab_bg hvmta hv socat TCP6-LISTEN:25,ipv6only=0,reuseaddr,fork \
        SYSTEM:'echo 220 HYPERVISOR-LOCAL-MTA\; sleep 5' >/dev/null
lab_wait_port hv 127.0.0.1 25 5 >/dev/null 2>&1
# The customer's kernel must not reset the hand-made connections.
lab_exec vps101 nft -f - <<'NFT'
table inet customer {
        chain output {
                type filter hook output priority 0; policy accept;
                tcp sport 40000-40999 tcp flags & rst == rst drop
        }
}
NFT
talk() { lab_exec vps101 "$PY" "$HX" talk "$VPS101_V6" "$1" "$2" 25 "EHLO vps.example" 2>/dev/null; }
synrecv_on_hv_loopback() {
        ip netns exec "$LAB_HV" ss -Htn state syn-recv "( sport = :25 )" | grep -q "\[::1\]:25 *\[$VPS101_V6\]"
}
proxy_tried() { grep -q "event=connect vps=vps-101 .* mx=\[$1\]:25" "$LAB_DIR/log/portcullis-smtpd.log"; }

echo "# source: vps (as shipped)"
check "(control: the hand-made handshake reaches the proxy)" talk 40001 "$LAB_INET_V6"
talk 40002 "::" >/dev/null
check_not "the proxy does not connect to [::]:25 (the hypervisor's [::1]:25)" proxy_tried "::"
check_not "no half-open connection from the VPS's address on the hypervisor's [::1]:25" \
        wait_for 2 synrecv_on_hv_loopback
talk 40003 "::ffff:127.0.0.1" >/dev/null
check_not "the proxy does not try [::ffff:127.0.0.1]:25 (the hypervisor's loopback)" \
        proxy_tried "::ffff:127.0.0.1"

echo "# source: hypervisor (the other supported setting)"
mkdir -p "$LAB_DIR/prof"
sed 's/^  source: vps/  source: hypervisor/' "$2/etc/profiles/lenoir.yaml" >"$LAB_DIR/prof/lenoir.yaml"
chmod -R o+rX "$LAB_DIR/prof"
sed -i "s|- .*/profiles/lenoir.yaml|- $LAB_DIR/prof/lenoir.yaml|" "$PC_CFG"
kill -HUP "$AGENT_PID" "$SMTPD_PID"
wait_for 5 grep -q "reloaded" "$LAB_DIR/log/portcullis-smtpd.log"
for dst in "::" "::ffff:127.0.0.1" "::ffff:$LAB_HV_UPLINK_V4"; do
        port=$((40010 + ${#dst}))
        out=$(talk "$port" "$dst")
        check_not "the VPS does not get the hypervisor's local MTA via [$dst]:25" \
                grep -q "HYPERVISOR-LOCAL-MTA" <<<"$out"
done
lab_summary
