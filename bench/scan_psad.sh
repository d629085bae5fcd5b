#!/bin/bash
# psad beside Portcullis, on the scans of tests/lab/scan.sh, in one lab run.
#
#   Portcullis, containing (provider A's site lenoir): each scanner from its
#     own VPS, as scan.sh runs them; the probes that reached the internet
#     and the ms until the VPS was filtered.
#   psad (Debian's), at the site that does not contain (provider B's milano,
#     where every probe leaves): the hypervisor logs every new flow a milano
#     VPS forwards (an nft `log` rule of its own table), a reader copies
#     those kernel lines from /dev/kmsg into a syslog-format file, and psad
#     reads that file.  Each scanner again from its own VPS (psad's danger
#     level is per source address); detected = psad wrote the source's
#     danger_level (DL >= 1), the same moment it logs and mails its alert.
#     Portcullis' agent watches the same VPSes (milano records incidents):
#     the ms until its incident are in the same rows.
#
# The scanners run to their end at milano (capped at 60 s) and psad gets
# its CHECK_INTERVAL and 10 s more after that to decide.  The probes "before" a
# detection are the distinct (destination, port) first packets the capture
# in the internet namespace saw before that moment (same clock).
#
# The hypervisor is a network namespace: the kernel logs nft `log` lines
# from it only with net.netfilter.nf_log_all_netns=1, a global sysctl; it
# is set for the run and its old value restored on exit.  While it is set,
# `log` statements of other namespaces on this machine reach the kernel log
# too; psad reads only lines with this run's prefix (FW_SEARCH_ALL N).
#
# psad runs in the hypervisor namespace in the foreground (--no-daemon), on
# a config under $LAB_DIR (its own state, run and fifo directories), and is
# killed by pid with the lab; it is never a system service here.
#
# Usage: bench/scan_psad.sh BUILD_DIR [CHECK_INTERVAL=5]   (as root, ~4 min)
set -u
here=$(dirname "$(readlink -f "$0")")
root=$(readlink -f "$here/..")
build=$(readlink -f "${1:-build}")
interval=${2:-5}
export LAB_PREFIX=${LAB_PREFIX:-pcps} LAB_QUIET=1
. "$root/tests/lab/lab.sh"
. "$root/tests/lab/common.sh"

lab_deps >/dev/null || exit 1
lab_install nmap masscan psad || exit 1
lab_up --trap || { echo "lab_up failed"; exit 1; }

log_all_old=$(cat /proc/sys/net/netfilter/nf_log_all_netns)
bench_down() {
        echo "$log_all_old" >/proc/sys/net/netfilter/nf_log_all_netns
        lab_down
}
trap 'bench_down' EXIT
trap 'trap "" INT TERM; bench_down; trap - EXIT; exit 130' INT TERM

pc_setup "$build" "$root"
DB=$LAB_DIR/portcullis.db
sql() { sqlite3 "$DB" "$1"; }

# The cases: a label, then the scanner (ROUTER is replaced by the hv-side
# MAC of the scanning VPS's link, for masscan).  Targets as in scan.sh.
CASES=(
        "nmap -sS -T4, 127 absent hosts, port 80|nmap -sS -T4 -Pn -n -p 80 --max-retries 1 192.0.2.128-254"
        "nmap -sT -T4, one host, 200 ports|nmap -sT -T4 -Pn -n -p 1000-1199 --max-retries 1 192.0.2.10"
        "nmap -sU -T4 --top-ports 50, one host|nmap -sU -T4 -Pn -n --top-ports 50 --max-retries 1 192.0.2.11"
        "nmap -sS -T5, absent hosts, 3 ports|nmap -sS -T5 -Pn -n -p 22,80,443 --max-retries 0 192.0.2.128-254"
        "masscan 1,000 packets/s over a /25|masscan -p80 192.0.2.128/25 --rate 1000 --wait 0 --router-mac ROUTER"
        "masscan 10,000 packets/s, 127 hosts x 8 ports|masscan -p80,443,22,25,8080,3389,21,23 192.0.2.128/25 --rate 10000 --wait 0 --router-mac ROUTER"
        "nmap -sS -T2, one host, 40 ports|nmap -sS -T2 -Pn -n -p 1-40 --max-retries 0 192.0.2.12"
)

# One VPS per case and site: vps11N at lenoir (v11N, 203.0.113.11N), vps21N
# at milano (v21N, 198.51.100.11N).
n=0
for c in "${CASES[@]}"; do
        n=$((n + 1))
        if ! lab_vps_add "vps11$n" "v11$n" "203.0.113.11$n" "2001:db8:11$n::" >/dev/null 2>&1 ||
                ! lab_vps_add "vps21$n" "v21$n" "198.51.100.11$n" "2001:db8:21$n::" >/dev/null 2>&1; then
                echo "lab_vps_add failed"; exit 1
        fi
        # shellcheck disable=SC2046 # word splitting of the link options is meant
        if ! pc vps add "vps-11$n" --site lenoir --owner "a$n@example.net" $(pc_vps_link "VPS11$n") --by lab >/dev/null 2>&1 ||
                ! pc vps add "vps-21$n" --site milano --owner "b$n@example.it" $(pc_vps_link "VPS21$n") --by lab >/dev/null 2>&1; then
                echo "vps add failed"; exit 1
        fi
done
agent_start || exit 1

# The internet as in scan.sh: 50 answering hosts, absent hosts that the
# hypervisor can still send to.
for i in $(seq 10 59); do ip -n "$LAB_INET" addr add "192.0.2.$i/32" dev eth0; done
inet_mac=$(lab_exec inet cat /sys/class/net/eth0/address)
for i in $(seq 128 254); do
        ip -n "$LAB_HV" neigh replace "192.0.2.$i" lladdr "$inet_mac" dev "$LAB_UPLINK_IF" nud permanent
done

# psad's input: every new flow forwarded from a milano VPS (v2*), logged
# with TCP options (psad's fingerprints expect them, EXPECT_TCP_OPTIONS).
tag=PCPS$$
cat >"$LAB_DIR/psad-log.nft" <<NFT
table inet pcps_psad {
        chain forward {
                type filter hook forward priority filter - 10; policy accept;
                iifname "v2*" ct state new log prefix "$tag " level info flags tcp options
        }
}
NFT
nft_hv -f "$LAB_DIR/psad-log.nft" || exit 1
echo 1 >/proc/sys/net/netfilter/nf_log_all_netns

# The syslog file: this run's lines of the kernel log, from its end on, as
# "Mon DD HH:MM:SS host kernel: MESSAGE" (what psad parses).
P=$LAB_DIR/psad
mkdir -p "$P/state" "$P/run" "$P/fifo"
: >"$P/kern.log"
lab_bg kmsg hv /usr/bin/python3 -u -c '
import os, sys, time
tag, out = sys.argv[1], open(sys.argv[2], "a")
fd = os.open("/dev/kmsg", os.O_RDONLY)
os.lseek(fd, 0, os.SEEK_END)
while True:
    try:
        rec = os.read(fd, 8192).decode("utf-8", "replace")
    except BrokenPipeError:          # the ring overwrote what we had not read
        continue
    msg = rec.split(";", 1)[1].split("\n", 1)[0] if ";" in rec else ""
    if msg.startswith(tag):
        out.write(time.strftime("%b %e %H:%M:%S") + " pcps-hv kernel: " + msg + "\n")
        out.flush()
' "$tag" "$P/kern.log" >/dev/null

# psad's config: Debian's, with (1) the lab's file and this run's prefix,
# (2) its own directories, (3) nothing that reaches out of the lab (mail,
# whois, DNS) or checks iptables (the ruleset is nftables), (4)
# CHECK_INTERVAL from the command line.  Danger levels, thresholds and
# signatures are the defaults.
sed -e "s|^HOSTNAME .*|HOSTNAME pcps-hv;|" \
    -e "s|^FW_SEARCH_ALL .*|FW_SEARCH_ALL N;|" \
    -e "s|^FW_MSG_SEARCH .*|FW_MSG_SEARCH $tag;|" \
    -e "s|^IPT_SYSLOG_FILE .*|IPT_SYSLOG_FILE $P/kern.log;|" \
    -e "s|^AUTO_DETECT_JOURNALCTL .*|AUTO_DETECT_JOURNALCTL N;|" \
    -e "s|^ALERTING_METHODS .*|ALERTING_METHODS noemail;|" \
    -e "s|^ENABLE_FW_LOGGING_CHECK .*|ENABLE_FW_LOGGING_CHECK N;|" \
    -e "s|^ENABLE_WHOIS_LOOKUPS .*|ENABLE_WHOIS_LOOKUPS N;|" \
    -e "s|^ENABLE_DNS_LOOKUPS .*|ENABLE_DNS_LOOKUPS N;|" \
    -e "s|^CHECK_INTERVAL .*|CHECK_INTERVAL $interval;|" \
    -e "s|^PSAD_DIR .*|PSAD_DIR $P/state;|" \
    -e "s|^PSAD_RUN_DIR .*|PSAD_RUN_DIR $P/run;|" \
    -e "s|^PSAD_FIFO_DIR .*|PSAD_FIFO_DIR $P/fifo;|" \
    /etc/psad/psad.conf >"$P/psad.conf"
PSAD_PID=$(lab_bg psad hv psad --config "$P/psad.conf" --no-daemon --no-netstat --no-whois --no-rdns)
sleep 2
_lab_alive "$PSAD_PID" || { echo "psad did not start:"; tail -20 "$LAB_DIR/log/psad.log"; exit 1; }

filtered() { nft_hv list set inet portcullis filter_out 2>/dev/null | grep -q "\"$1\""; }
incident() { [ "$(sql "SELECT count(*) FROM incident WHERE vps_id='$1' AND kind='scan'")" -ge 1 ]; }
psad_dl() { cat "$P/state/$1/danger_level" 2>/dev/null; }
# probes PCAP ADDR [BEFORE_MS]: distinct (destination, port) first packets
# from ADDR (SYNs and datagrams) in PCAP, sent before BEFORE_MS if given.
probes() {
        tcpdump -tt -r "$1" -nn "src host $2 and ((tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack == 0) or udp)" \
                2>/dev/null | awk -v before="${3:-}" 'before == "" || $1 * 1000 < before { print $5 }' | sort -u | wc -l
}
router() { ip -n "$LAB_HV" link show "$1" | awk '/ether/ { print $2 }'; }

# scan V CMD...: runs CMD in V in the background (its pid in $SCANNER),
# with a capture in inet ($CAP); T0 is its start.
scan() {
        local v=$1 addr
        shift
        addr=$(_lab_var "$v")_V4
        CAP=$(lab_capture inet eth0 "scan-$v" "src host ${!addr}") || return 1
        T0=$(lab_now_ms)
        ip netns exec "$(lab_ns "$v")" "$@" >"$LAB_DIR/log/scanner-$v.log" 2>&1 &
        SCANNER=$!
}
scan_end() { kill "$SCANNER" 2>/dev/null; wait "$SCANNER" 2>/dev/null; sleep 0.3; kill "$CAP"; wait "$CAP" 2>/dev/null; }

echo "# kernel $(uname -r), psad $(dpkg-query -W -f='${Version}' psad), CHECK_INTERVAL $interval s"
echo "# scanner | Portcullis at lenoir: probes out, ms to filter | at milano: probes out in all, Portcullis incident ms (probes before), psad ms (probes before) DL"
n=0
for c in "${CASES[@]}"; do
        n=$((n + 1))
        what=${c%%|*}
        cmd=${c#*|}
        # Portcullis, containing: cut short 1 s after the filter (scan.sh's
        # 8 s at most); what gets out after the filter is nothing.
        # shellcheck disable=SC2086 # the command's words
        scan "vps11$n" timeout 20 ${cmd//ROUTER/$(router "v11$n")} || exit 1
        if wait_for 20 filtered "v11$n"; then pc_ms=$(($(lab_now_ms) - T0)); else pc_ms=never; fi
        sleep 1
        scan_end
        a=VPS11${n}_V4
        pc_p=$(probes "$LAB_DIR/scan-vps11$n.pcap" "${!a}")
        addr=VPS21${n}_V4
        addr=${!addr}
        # psad and Portcullis' records, not containing: the scan runs out.
        # shellcheck disable=SC2086
        scan "vps21$n" timeout 60 ${cmd//ROUTER/$(router "v21$n")} || exit 1
        inc_t='' psad_t='' end_t=''
        while :; do
                now=$(lab_now_ms)
                [ -z "$inc_t" ] && incident "vps-21$n" && inc_t=$now
                [ -z "$psad_t" ] && [ -n "$(psad_dl "$addr")" ] && psad_t=$now
                if [ -z "$end_t" ] && ! _lab_alive "$SCANNER"; then end_t=$now; fi
                [ -n "$inc_t" ] && [ -n "$psad_t" ] && [ -n "$end_t" ] && break
                [ -n "$end_t" ] && [ $((now - end_t)) -gt $((interval * 1000 + 10000)) ] && break
                sleep 0.1
        done
        scan_end
        all=$(probes "$LAB_DIR/scan-vps21$n.pcap" "$addr")
        if [ -n "$inc_t" ]; then inc="$((inc_t - T0)) ms ($(probes "$LAB_DIR/scan-vps21$n.pcap" "$addr" "$inc_t"))"; else inc=never; fi
        if [ -n "$psad_t" ]; then
                ps="$((psad_t - T0)) ms ($(probes "$LAB_DIR/scan-vps21$n.pcap" "$addr" "$psad_t")) DL$(psad_dl "$addr")"
        else ps="not detected"; fi
        echo "$what | $pc_p, $pc_ms ms | $all | $inc | $ps"
done
# psad's danger levels once every scan is over (they only grow)
echo "# psad's final danger level per milano VPS:$(for i in $(seq 1 $n); do a=VPS21${i}_V4; printf ' vps-21%s=%s' "$i" "$(psad_dl "${!a}" || echo -)"; done)"
echo "# kernel log lines psad was given: $(wc -l <"$P/kern.log")"
