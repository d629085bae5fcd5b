# shellcheck shell=bash
# Shared by the lab scenarios: assertions, a Portcullis config for the lab,
# the agent in the hypervisor namespace.  Source after lab.sh.

LAB_PASS=0
LAB_FAIL=0

ok() { LAB_PASS=$((LAB_PASS + 1)); echo "ok   $*"; }
fail() { LAB_FAIL=$((LAB_FAIL + 1)); echo "FAIL $*"; }
check() { # DESCRIPTION CMD...: passes if CMD succeeds
        local what=$1
        shift
        if "$@" >/dev/null 2>&1; then ok "$what"; else fail "$what"; fi
}
check_not() { # DESCRIPTION CMD...: passes if CMD fails
        local what=$1
        shift
        if "$@" >/dev/null 2>&1; then fail "$what"; else ok "$what"; fi
}
# check_not_grep PATTERN TEXT: TEXT has no line matching PATTERN.
check_not_grep() { ! grep -q -- "$1" <<<"$2"; }

# lab_install PKG...: the Debian packages a scenario needs beyond lab_deps
# are installed (apt-get, once per machine); says which failed.
lab_install() {
        local p
        for p in "$@"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' && continue
                lab_apt install -y -q --no-install-recommends "$p" >/dev/null 2>&1 ||
                        { lab_apt update -q >/dev/null 2>&1 &&
                          lab_apt install -y -q --no-install-recommends "$p" >/dev/null 2>&1; } ||
                        { echo "FAIL cannot install $p"; return 1; }
        done
}

lab_summary() {
        echo "$LAB_PASS passed, $LAB_FAIL failed"
        [ "$LAB_FAIL" = 0 ]
}

# pc_setup BUILD_DIR SOURCE_ROOT: writes $LAB_DIR/portcullis.yaml (the shipped
# config, with the lab's database, control socket and profile paths) and
# creates the database: only `portcullis init` and the agent's first start
# do, and the scenarios register VPSes before they start the agent.
pc_setup() {
        PC_BIN=$(readlink -f "$1/src/cli/portcullis")
        PC_AGENT=$(readlink -f "$1/src/agent/portcullisd")
        PC_SMTPD=$(readlink -f "$1/src/smtpd/portcullis-smtpd")
        PC_ROOT=$(readlink -f "$2")
        PC_CFG=$LAB_DIR/portcullis.yaml
        sed -e "s|^database:.*|database: sqlite:$LAB_DIR/portcullis.db|" \
            -e "s|control-socket: /run/portcullis/control.sock|control-socket: $LAB_DIR/control.sock|" \
            -e "s|control-socket: /run/portcullis/smtpd.sock|control-socket: $LAB_DIR/smtpd.sock|" \
            -e "s|attempts-interval: .*|attempts-interval: 1s|" \
            -e "s|  - profiles/|  - $PC_ROOT/etc/profiles/|" \
            -e "s|^  templates: templates|  templates: $PC_ROOT/etc/templates|" \
            -e "s|^  relay: .*|  relay: smtp://$LAB_INET_V4:25|" \
            -e "s|^  tls-verify: .*|  tls-verify: false|" \
            "$PC_ROOT/etc/portcullis.yaml" >"$PC_CFG"
        # LAB_TOPOLOGY=bridged: every site's VPSes are ports of br0
        # and provider A's proxy connects from the hypervisor's address (a
        # bridged site cannot take the MX's replies to the VPS's)
        if [ "$LAB_TOPOLOGY" = bridged ]; then
                sed -i "s|^    policy: .*|&\n    topology: bridged|" "$PC_CFG"
                sed "s|^  source: vps|  source: hypervisor|" "$PC_ROOT/etc/profiles/lenoir.yaml" >"$LAB_DIR/lenoir.yaml"
                sed -i "s|^  - $PC_ROOT/etc/profiles/lenoir.yaml|  - $LAB_DIR/lenoir.yaml|" "$PC_CFG"
        fi
        # LAB_MAX_VPS=N: agent.max-vps, the per-VPS sets declared with that
        # size (docs/DATAPLANE.md, "The size of the per-VPS sets")
        if [ -n "${LAB_MAX_VPS:-}" ]; then
                sed -i "s|^  nft-table: .*|&\n  max-vps: $LAB_MAX_VPS|" "$PC_CFG"
        fi
        "$PC_BIN" -c "$PC_CFG" init >/dev/null
}

# pc_no_terminate: the config's provider A profile (lenoir) without
# 'terminate' in its spoofing response, for a scenario that spoofs again and
# again on purpose, unsuspending in between, to test detection: there each
# episode is suspended.  Termination (spoofing again after a lifted
# suspension) is lab/terminate.sh's.
pc_no_terminate() {
        local src
        src=$(sed -n 's|^  - \(.*/lenoir\.yaml\)$|\1|p' "$PC_CFG")
        sed 's/^  spoofing: \[suspend, notify, terminate\]$/  spoofing: [suspend, notify]/' "$src" \
                >"$LAB_DIR/lenoir-noterm.yaml"
        sed -i "s|^  - $src\$|  - $LAB_DIR/lenoir-noterm.yaml|" "$PC_CFG"
        grep -q '^  spoofing: \[suspend, notify\]$' "$LAB_DIR/lenoir-noterm.yaml" &&
                grep -q "^  - $LAB_DIR/lenoir-noterm.yaml$" "$PC_CFG" ||
                { echo "FAIL pc_no_terminate: cannot write the lab's config"; exit 1; }
}

# pc_vps_link NAME: the options that register lab VPS NAME's link: its
# interface, addresses and (bridged lab) MAC, e.g. pc_vps_link VPS201.
pc_vps_link() {
        local i=${1}_IF v4=${1}_V4NET v6=${1}_V6NET mac=${1}_MAC
        echo "--iface ${!i} --addr ${!v4} --addr ${!v6}${!mac:+ --mac ${!mac}}"
}

# pc ARGS...: the CLI, in the hypervisor namespace, on the lab's config.
pc() { ip netns exec "$LAB_HV" "$PC_BIN" -c "$PC_CFG" "$@"; }

# daemon_start NAME SOCKET BINARY: starts a daemon in hv on the lab's config
# and waits for its control socket; prints its pid.
daemon_start() {
        local pid
        pid=$(lab_bg "$1" hv "$3" -c "$PC_CFG")
        for _ in $(seq 1 50); do
                [ -S "$2" ] && { echo "$pid"; return 0; }
                sleep 0.1
        done
        echo "$1 did not start:" >&2; tail -5 "$LAB_DIR/log/$1.log" >&2
        return 1
}

# agent_start: starts portcullisd in hv and waits for its control socket.
agent_start() { AGENT_PID=$(daemon_start portcullisd "$LAB_DIR/control.sock" "$PC_AGENT"); }
agent_kill() { kill -9 "$AGENT_PID" 2>/dev/null; wait "$AGENT_PID" 2>/dev/null; rm -f "$LAB_DIR/control.sock"; }
agent_log() { cat "$LAB_DIR/log/portcullisd.log"; }

# smtpd_start: starts portcullis-smtpd in hv and waits for its control socket.
smtpd_start() {
        smtpd_user_ensure
        SMTPD_PID=$(daemon_start portcullis-smtpd "$LAB_DIR/smtpd.sock" "$PC_SMTPD")
}
smtpd_kill() { kill "$SMTPD_PID" 2>/dev/null; wait "$SMTPD_PID" 2>/dev/null; rm -f "$LAB_DIR/smtpd.sock"; }
smtpd_log() { cat "$LAB_DIR/log/portcullis-smtpd.log"; }
# smtpd_ask VERB [ARG]: one request on the proxy's control socket.
smtpd_ask() { echo "$*" | ip netns exec "$LAB_HV" socat -t2 - "UNIX-CONNECT:$LAB_DIR/smtpd.sock"; }

# nft_hv ARGS...: nft in the hypervisor namespace.
nft_hv() { ip netns exec "$LAB_HV" nft "$@"; }
# filter_port_elem FAM IFACE PORT: the kernel's outbound port filter
# element over tcp/PORT of IFACE, as "LO-HI EXPIRES" (nothing if none).
filter_port_elem() {
        nft_hv -j list set "$1" portcullis filter_ports_out | python3 -c '
import json, sys
iface, port = sys.argv[1], int(sys.argv[2])
for item in json.load(sys.stdin)["nftables"]:
    for e in item.get("set", {}).get("elem", []):
        if not isinstance(e, dict) or "elem" not in e:
            continue
        c = e["elem"]["val"]["concat"]
        r = c[2]["range"] if isinstance(c[2], dict) else [c[2], c[2]]
        if c[0] == iface and c[1] == "tcp" and r[0] <= port <= r[1]:
            print("%d-%d %d" % (r[0], r[1], e["elem"].get("expires", 0)))' "$2" "$3"
}

# refused_fast SECONDS CMD...: CMD (a shell function or a program, which
# bounds its own time) fails with "Connection refused" -- the TCP reset
# Portcullis sends -- within SECONDS.  Any other failure (a typo, a server
# that is not there, a timeout) does not count: this must be able to fail.
refused_fast() {
        local limit=$1 t0 t1
        shift
        t0=$(lab_now_ms)
        if FAIL_OUT=$("$@" 2>&1); then return 1; fi
        t1=$(lab_now_ms)
        FAIL_MS=$((t1 - t0))
        grep -q "Connection refused" <<<"$FAIL_OUT" && [ "$FAIL_MS" -lt $((limit * 1000)) ]
}

# swaks_send NS SERVER PORT SUBJECT [swaks options...]: one message.
swaks_send() {
        local ns=$1 server=$2 port=$3 subject=$4
        shift 4
        lab_exec "$ns" timeout 10 swaks --server "$server" --port "$port" --to customer@example.net \
                --from owner@example.org --header "Subject: $subject" --timeout 5 "$@"
}

# tcp_open NS ADDR PORT: a TCP connection from NS succeeds within 2 s.
tcp_open() {
        local addr=$2
        case $addr in *:*) addr="[$addr]" ;; esac
        timeout 3 ip netns exec "$(lab_ns "$1")" socat -T2 -u "TCP:$addr:$3,connect-timeout=2" /dev/null
}

# spoof_count IFACE SET [FAMILY=inet]: packets the kernel counted for IFACE
# in the dynamic set SET (spoof4, spoof6, spoof_ra...) of the agent's table.
spoof_count() {
        nft_hv -j list set "${3:-inet}" portcullis "$2" | /usr/bin/python3 -c '
import json, sys
n = 0
for item in json.load(sys.stdin)["nftables"]:
    for e in item.get("set", {}).get("elem", []):
        e = e.get("elem", e)
        if e.get("val") == sys.argv[1]:
            n = e.get("counter", {}).get("packets", 0)
print(n)' "$1"
}

# verdict REASON [FAMILY=inet]: the packets the kernel counted for REASON
# (docs/API.md, "Verdicts") as the agent last wrote them to agent.prom;
# nothing if it has no such line (or no agent.prom).
verdict() {
        local key="portcullis_verdict_packets_total{reason=\"$1\",family=\"${2:-inet}\"}"
        cat "$LAB_DIR/agent.prom" 2>/dev/null | awk -v k="$key" '$1 == k { print $2 }'
}
# verdict_above REASON FAMILY N: agent.prom counts more than N for REASON.
verdict_above() { local n; n=$(verdict "$1" "$2"); [ -n "$n" ] && [ "$n" -gt "$3" ]; }

# suspended IFACE [FAMILY=inet]: IFACE is in the agent's `suspended` set.
suspended() { nft_hv list set "${2:-inet}" portcullis suspended | grep -q "\"$1\""; }

# wait_for TIMEOUT_S CMD...: CMD succeeds within TIMEOUT_S (polled every 50 ms).
# cmd_is OP VALUE CMD...: CMD's output compared with VALUE (test's OP),
# run again at each try of wait_for (`wait_for 2 test "$(CMD)" = 1` would
# run CMD once, before the wait).
cmd_is() {
        local op=$1 v=$2
        shift 2
        test "$("$@")" "$op" "$v"
}
wait_for() {
        local deadline=$(($(lab_now_ms) + $1 * 1000))
        shift
        until "$@" >/dev/null 2>&1; do
                [ "$(lab_now_ms)" -ge "$deadline" ] && return 1
                sleep 0.05
        done
}

# smtpd_user_ensure: the proxy's own system user exists (created from the
# shipped etc/sysusers.d/portcullis.conf, as a package install would).
smtpd_user_ensure() {
        id -u portcullis-smtpd >/dev/null 2>&1 && return 0
        if command -v systemd-sysusers >/dev/null 2>&1; then
                systemd-sysusers "$PC_ROOT/etc/sysusers.d/portcullis.conf" >/dev/null 2>&1
        else
                useradd --system --no-create-home --home-dir / --shell /usr/sbin/nologin portcullis-smtpd
        fi
}

# pc_site_variant SITE POLICY SED_EXPR...: a copy of provider A's profile
# (etc/profiles/lenoir.yaml) named POLICY with the sed expressions applied,
# at a new site SITE of the lab's config; readable by the proxy's user.
pc_site_variant() {
        local site=$1 policy=$2 e args=()
        shift 2
        for e in "$@"; do args+=(-e "$e"); done
        [ "$LAB_TOPOLOGY" = bridged ] && args+=(-e "s|^  source: vps|  source: hypervisor|")
        sed -e "s/^profile: lenoir/profile: $policy/" "${args[@]}" \
                "$PC_ROOT/etc/profiles/lenoir.yaml" >"$LAB_DIR/$site.yaml"
        sed -i -e "s|^  - $PC_ROOT/etc/profiles/blocked-services.yaml|&\n  - $LAB_DIR/$site.yaml|" \
               -e "s|^sites:|&\n  $site:\n    policy: $policy|" "$PC_CFG"
        if [ "$LAB_TOPOLOGY" = bridged ]; then sed -i "s|^    policy: $policy\$|&\n    topology: bridged|" "$PC_CFG"; fi
        chmod o+rx "$LAB_DIR" && chmod o+r "$PC_CFG" "$LAB_DIR/$site.yaml"
}

# pc_proxied_vps101 [SITE=lenoir]: vps-101 registered at SITE, the agent and
# the proxy started (checked), the MTA's port 25 up.
pc_proxied_vps101() {
        chmod o+rx "$LAB_DIR" && chmod o+r "$PC_CFG" # the proxy reloads unprivileged
        # shellcheck disable=SC2046 # word splitting of the link options is meant
        pc vps add vps-101 --site "${1:-lenoir}" --owner ada@example.net $(pc_vps_link VPS101) --by lab >/dev/null 2>&1
        check "agent starts" agent_start
        check "portcullis-smtpd starts" smtpd_start
        lab_wait_port inet "$LAB_INET_V4" 25 10 >/dev/null 2>&1
}

# udp_refused NS ADDR PORT [LIMIT_MS=1000]: a connected UDP client in NS
# sends one datagram to ADDR:PORT and waits up to 3 s for an answer; passes
# if the ICMP administratively-prohibited error arrives (ICMP 3/13 for IPv4,
# ICMPv6 1/1 for IPv6, read from the socket's error queue) and the client's
# recv() fails with it (EHOSTUNREACH, EACCES) within LIMIT_MS.  A silent drop
# (a timeout), an answer, or any other error fails.  UDP_REFUSAL is set to
# what the client saw ("errno=... icmp=TYPE/CODE ms=..."), for the log.
udp_refused() {
        local limit=${4:-1000}
        UDP_REFUSAL=$(timeout 5 ip netns exec "$(lab_ns "$1")" /usr/bin/python3 -c '
import errno, socket, struct, sys, time
addr, port = sys.argv[1], int(sys.argv[2])
v6 = ":" in addr
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
if v6:
    level, opt = socket.IPPROTO_IPV6, 25  # IPV6_RECVERR
else:
    level, opt = socket.IPPROTO_IP, 11    # IP_RECVERR
s.setsockopt(level, opt, 1)
s.settimeout(3)
t0 = time.monotonic()
s.connect((addr, port))
s.send(b"portcullis-lab-udp-refused\n")
try:
    s.recv(512)
    print("answered ms=%d" % ((time.monotonic() - t0) * 1000))
    sys.exit(1)
except socket.timeout:
    print("timeout ms=%d" % ((time.monotonic() - t0) * 1000))
    sys.exit(1)
except OSError as e:
    ms = (time.monotonic() - t0) * 1000
    name = errno.errorcode.get(e.errno, str(e.errno))
s.setblocking(False)
icmp = "none"
try:
    _, anc, _, _ = s.recvmsg(512, 512, socket.MSG_ERRQUEUE)
    for lv, ty, data in anc:
        if lv == level and ty == opt and len(data) >= 16:
            ee_errno, origin, itype, icode = struct.unpack("=IBBB", data[:7])
            icmp = "%s%d/%d" % ("icmp6:" if origin == 3 else "icmp:" if origin == 2 else "local:", itype, icode)
except OSError:
    pass
print("errno=%s %s ms=%d" % (name, icmp, ms))
' "$2" "$3" 2>&1) || return 1
        local want="errno=EHOSTUNREACH icmp:3/13"
        case $2 in *:*) want="errno=EACCES icmp6:1/1" ;; esac
        case $UDP_REFUSAL in "$want ms="*) ;; *) return 1 ;; esac
        [ "${UDP_REFUSAL##*ms=}" -lt "$limit" ]
}
