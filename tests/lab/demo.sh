#!/bin/bash
# The demo: a simulated hypervisor (network namespaces) with three VPSes
# under both providers' profiles, enforced by portcullisd in the kernel,
# with real clients showing what is blocked, proxied and allowed, and why.
# Usage: tests/lab/demo.sh BUILD_DIR   (as root; cleans up after itself)
set -u
here=$(dirname "$(readlink -f "$0")")
root=$(readlink -f "$here/../..")
export LAB_PREFIX=pcdemo LAB_QUIET=1
. "$here/lab.sh"
. "$here/common.sh"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ portcullis %s\n' "$*"; pc "$@"; printf '\n'; }
see() { # DESCRIPTION CMD...: runs a real client and says what it saw
        local what=$1 t0 t1 out st
        shift
        t0=$(lab_now_ms)
        out=$("$@" 2>&1)
        st=$?
        t1=$(lab_now_ms)
        if [ $st = 0 ]; then
                printf '  %-58s -> works (%d ms)\n' "$what" $((t1 - t0))
        else
                printf '  %-58s -> FAILS in %d ms: %s\n' "$what" $((t1 - t0)) \
                        "$(grep -Eo 'Connection refused|timed out|Connection reset|No route to host|Host did not advertise STARTTLS' <<<"$out" | head -1)"
        fi
}

lab_deps || exit 1
say "Building the lab: hypervisor hv, an 'internet' with a real postfix (25, 587 + STARTTLS), a web server, VPN and BitTorrent listeners"
lab_up --trap || exit 1
pc_setup "${1:-build}" "$root"
echo "  vps-201 $VPS201_V4 $VPS201_V6 and vps-202 $VPS202_V4: site milano, provider B's profile 'blocked-services'"
echo "  vps-101 $VPS101_V4 $VPS101_V6: site lenoir, provider A's profile 'lenoir'"
pc vps add vps-201 --site milano --owner bruno@example.it --lang it --iface "$VPS201_IF" \
        --addr "$VPS201_V4NET" --addr "$VPS201_V6NET" --by orchestrator >/dev/null 2>&1
pc vps add vps-202 --site milano --owner carla@example.it --lang it --iface "$VPS202_IF" \
        --addr "$VPS202_V4NET" --addr "$VPS202_V6NET" --by orchestrator >/dev/null 2>&1
pc vps add vps-101 --site lenoir --owner ada@example.net --iface "$VPS101_IF" \
        --addr "$VPS101_V4NET" --addr "$VPS101_V6NET" --by orchestrator >/dev/null 2>&1

say "What each site does with each service (from etc/profiles/)"
run services

say "Starting portcullisd on the hypervisor"
agent_start || exit 1
sed 's/^/  /' "$LAB_DIR/log/portcullisd.log"
run status

say "Provider B: what vps-201 sees"
lab_serve_tcp vps201 6881 >/dev/null 2>&1
see "swaks to the MTA on 587 (mail submission)" swaks_send vps201 "$LAB_INET_V4" 587 demo
see "swaks to the MTA on 587 over IPv6" swaks_send vps201 "$LAB_INET_V6" 587 demo
see "curl http://$LAB_INET_V4/" lab_exec vps201 curl -sf --max-time 3 "http://$LAB_INET_V4/"
see "TCP to a BitTorrent peer on port 6881" lab_tcp_hello vps201 "$LAB_INET_V4" 6881
lab_udp_send vps201 "$LAB_INET_V4" 500 ike >/dev/null 2>&1
sleep 0.3
echo "  UDP to IKE port 500                                        -> $(lab_udp_received 500 "$VPS201_V4") datagrams reached the listener"
see "the internet connects to a BitTorrent peer on vps-201:6881" lab_tcp_hello inet "$VPS201_V4" 6881 2
run explain vps-201 tcp/587 out

say "The customer opens a ticket; support approves it"
run ticket open vps-201 smtp --by bruno --text "Invoices from our billing app; SPF and DKIM in place"
run exception grant vps-201 smtp --ticket 1 --by alice --reason "reviewed: transactional mail only"
see "swaks from vps-201 to 587, now" swaks_send vps201 "$LAB_INET_V4" 587 "demo-granted-$$"
lab_mail_wait "demo-granted-$$" 5 >/dev/null 2>&1 && echo "  the MTA's mailbox holds the message: $(lab_mail_find "demo-granted-$$" | head -1)"
see "swaks from vps-202 (no exception) to 587" swaks_send vps202 "$LAB_INET_V4" 587 demo
run explain vps-201 tcp/587 out

say "A hostile customer: an accomplice forges the MTA's first packet, so that vps-202's SYN would pass as a reply"
dpkg-query -W -f='${Status}\n' python3-scapy 2>/dev/null | grep -q '^install ok installed$' ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-scapy >/dev/null 2>&1
lab_exec vps202 nft add table inet customer
lab_exec vps202 nft add chain inet customer input "{ type filter hook input priority 0; }"
lab_exec vps202 nft add rule inet customer input "tcp flags & (syn | ack) == syn tcp dport 41587 drop" # hides the forgery
echo "  inet sends a forged SYN $LAB_INET_V4:587 -> $VPS202_V4:41587 (scapy); vps-202 drops it"
lab_exec inet /usr/bin/python3 "$here/forge.py" tcp "$LAB_INET_V4" 587 "$VPS202_V4" 41587 S >/dev/null 2>&1
see "swaks from vps-202's port 41587 to 587, the 'reply'" swaks_send vps202 "$LAB_INET_V4" 587 demo --local-port 41587
echo "  the hypervisor dropped the forged SYN: a new flow towards a VPS from a port it may not send to"
echo "  is that VPS's blocked flow in disguise (docs/DATAPLANE.md), so vps-202's own SYN was new, and refused"

say "Provider A: nothing blocked for vps-101; outbound port 25 goes to the SMTP proxy"
lab_serve_tcp vps101 6881 >/dev/null 2>&1
see "swaks --tls to 587" swaks_send vps101 "$LAB_INET_V4" 587 demo --tls
see "TCP to 6881" lab_tcp_hello vps101 "$LAB_INET_V4" 6881
see "the internet connects to vps-101:6881" lab_tcp_hello inet "$VPS101_V4" 6881 2
smtpd_start >/dev/null || exit 1
see "swaks to the MTA's port 25 (through portcullis-smtpd)" swaks_send vps101 "$LAB_INET_V4" 25 "demo-proxied-$$"
lab_mail_wait "demo-proxied-$$" 5 >/dev/null 2>&1 && echo "  delivered; the MTA saw the VPS's own address: $(grep -o "connect from [^ ]*\[$VPS101_V4\]" "$LAB_DIR/maillog" | tail -1)"
echo "  the proxy's log line for it:"
grep "message session=.*demo-proxied\|message session=" "$LAB_DIR/log/portcullis-smtpd.log" | tail -1 | fold -w 100 | sed 's/^/    /'
see "swaks --tls to port 25 (the proxy offers no STARTTLS)" swaks_send vps101 "$LAB_INET_V4" 25 demo --tls
echo "  asked for STARTTLS anyway, the proxy answers:"
printf 'EHLO vps.example\r\nSTARTTLS\r\nQUIT\r\n' | lab_exec vps101 timeout 5 socat -T3 "TCP:$LAB_INET_V4:25" - 2>/dev/null | grep "^502" | sed 's/^/    /'
run explain vps-101 tcp/25 out

say "What support sees: blocked attempts counted in the kernel, terms-of-service evidence"
sleep 1.5
run vps show vps-201
grep "terms-of-service" "$LAB_DIR/log/portcullisd.log" | head -3 | sed 's/^/  /'

say "Provider A: vps-101 forges another VPS's address (hping3 -a $VPS201_V4)"
command -v hping3 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q hping3 >/dev/null 2>&1
lab_exec vps101 hping3 --udp -p 9999 -a "$VPS201_V4" -c 2 -i u20000 "$LAB_INET_V4" >/dev/null 2>&1
sleep 0.3
grep -E "ipv4-source|Suspended" "$LAB_DIR/log/portcullisd.log" | sed 's/^/  /'
run explain vps-101 tcp/443 out
wait_for 10 bash -c "/usr/bin/python3 '$here/mailbox.py' '$LAB_MAILDIR' --to ada@example.net | grep -q ." 2>/dev/null
echo "  the owner's email, as delivered by the relay (the lab's postfix):"
/usr/bin/python3 "$here/mailbox.py" "$LAB_MAILDIR" --to ada@example.net | head -1 | /usr/bin/python3 -c '
import json, sys
m = json.loads(sys.stdin.read())
print("    To: %s\n    Subject: %s\n    Message-ID: %s" % (m["to"], m["subject"], m["message_id"]))
for line in m["text"].splitlines()[:12]:
    print("    | " + line)'
run notification list vps-101
run unsuspend vps-101 --by alice --reason "customer explained: a misconfigured VPN"

say "Provider A: vps-101 port-scans 127 absent hosts (nmap -sS -T4); the kernel holds it back after 5 first contacts"
lab_install nmap >/dev/null || true
inet_mac=$(lab_exec inet cat /sys/class/net/eth0/address)
for i in $(seq 128 254); do # as a real uplink would: probes to absent hosts leave
        ip -n "$LAB_HV" neigh replace "192.0.2.$i" lladdr "$inet_mac" dev "$LAB_UPLINK_IF" nud permanent
done
cap=$(lab_capture inet eth0 demo-scan "src host $VPS101_V4 and tcp[tcpflags] & tcp-syn != 0")
lab_exec vps101 timeout 15 nmap -sS -T4 -Pn -n -p 80 --max-retries 1 192.0.2.128-254 >/dev/null 2>&1
# the agent suspects it a second after its first probes (unanswered by
# then), holds it back, and its next probes confirm it: filtered
wait_for 5 sh -c "ip netns exec $LAB_HV nft list set inet portcullis filter_out | grep -q '\"$VPS101_IF\"'"
kill "$cap" 2>/dev/null; wait "$cap" 2>/dev/null
echo "  distinct hosts its SYNs reached on the internet: $(tcpdump -r "$LAB_DIR/demo-scan.pcap" -nn 2>/dev/null | awk '{ print $5 }' | sort -u | wc -l) of 127"
grep -E "unanswered first contacts|suspected port scan|port scanning|Filtered vps-101" "$LAB_DIR/log/portcullisd.log" | sed 's/^/  /'
run incident list vps-101
run action list vps-101 --active

say "kill -9 the agent: the rules stay (fail closed); someone deletes an element; restart repairs it"
agent_kill
see "swaks from vps-202 to 587 with the agent dead" swaks_send vps202 "$LAB_INET_V4" 587 demo
nft_hv delete element inet portcullis vps_out "{ \"$VPS202_IF\" }"
see "after deleting vps-202's element by hand" tcp_open vps202 "$LAB_INET_V4" 587
agent_start >/dev/null
tail -3 "$LAB_DIR/log/portcullisd.log" | sed 's/^/  /'
see "swaks from vps-202 to 587 after the restart" swaks_send vps202 "$LAB_INET_V4" 587 demo
run audit --limit 8

say "Done; tearing the lab down"
