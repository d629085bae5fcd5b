# shellcheck shell=bash
# Portcullis network-namespace test lab.  Source this file, never run it:
#
#	. tests/lab/lab.sh
#	lab_deps			# apt-get what is missing (once per machine)
#	lab_up --trap			# build hv + inet + 3 VPSes, start the servers
#	lab_exec vps201 curl -s http://192.0.2.2/
#	lab_down			# (the --trap does it on EXIT/INT/TERM too)
#
# Only documentation addresses are used, and only inside namespaces that this
# file creates; the root namespace's interfaces, routes and firewall are never
# touched.  Scenario scripts MUST make sure lab_down runs however they end:
# either call `lab_up --trap`, or install their own trap that calls lab_down.
#
# Settings (environment, read when the functions run):
#	LAB_PREFIX	namespace name prefix, default "pc" (namespaces are
#			"$LAB_PREFIX-hv", "$LAB_PREFIX-inet", "$LAB_PREFIX-vps201"...).
#			Two labs can coexist with two prefixes, as long as neither
#			prefix plus "-" starts the other ("pc" and "pc-x" clash).
#	LAB_INSTANCE	appended to LAB_PREFIX (letters and digits only, so
#			that no two instances clash): tests/meson.build gives
#			each lab test its own, so that two tests run at once
#			never share a namespace, a LAB_DIR or a sweep of stale
#			ones.  Applied once (unset for child shells).
#	LAB_DIR		all state (pids, logs, postfix instance, mail, UDP logs),
#			default a fresh `mktemp -d` made by lab_up; removed by lab_down
#	LAB_KEEP=1	lab_down keeps $LAB_DIR (to read logs after a failure)
#	LAB_QUIET=1	no progress lines from lab_up/lab_down on stderr
#	LAB_TOPOLOGY	routed (default: each VPS behind its own hv interface,
#			hv routes) or bridged: each VPS's hv-side interface is a
#			port of bridge br0 in hv, with the uplink; inet is then
#			also the VPSes' router on that segment (LAB_GW_V4 and
#			fe80::1 are inet's), and hv keeps LAB_HV_UPLINK_V4/V6 on
#			br0 with an on-link route to every VPS (for its resets,
#			ICMP errors and the SMTP proxy's replies)
#	LAB_MAX_VPS	agent.max-vps in the config pc_setup writes (common.sh):
#			the per-VPS sets declared with that size
#
# Variables set (and exported) by lab_up; also written to $LAB_DIR/env so
# another shell can `. "$LAB_DIR/env"`:
#	LAB_HV, LAB_INET		namespace names (pc-hv, pc-inet)
#	LAB_UPLINK_IF=uplink		hv's interface towards inet
#	LAB_HV_UPLINK_V4=192.0.2.1	LAB_HV_UPLINK_V6=2001:db8:ffff::1
#	LAB_INET_V4=192.0.2.2		LAB_INET_V6=2001:db8:ffff::2  (all servers)
#	LAB_GW_V4=203.0.113.1		LAB_GW_V6=fe80::1  (hv side of every VPS link)
#	LAB_VPSES="vps201 vps202 vps101"	VPS short names, in creation order
#	LAB_MAILDIR			Maildir (new/ cur/) where postfix delivers
#	LAB_SMTP_BANNER_NAME=portcullis-lab-mta	(in postfix's 220 greeting)
#	LAB_WEB_BODY=portcullis-lab-ok	body of http://192.0.2.2/
# and, for each VPS (NAME upper-cased, e.g. VPS201_V4), by lab_vps_add:
#	NAME_NS  namespace (pc-vps201)	NAME_IF  hv-side interface (v201)
#	NAME_V4  198.51.100.10		NAME_V4NET 198.51.100.10/32 (routed by hv)
#	NAME_V6  2001:db8:201::10	NAME_V6NET 2001:db8:201::/64 (routed by hv)
#	NAME_MAC 52:54:00:00:02:01 (bridged only: from the digits of IFNAME)
# Default VPSes: vps201 v201 198.51.100.10 2001:db8:201::
#		 vps202 v202 198.51.100.20 2001:db8:202::
#		 vps101 v101 203.0.113.10  2001:db8:101::
#
# Servers in inet (all on :: dual-stack, i.e. 192.0.2.2 and 2001:db8:ffff::2):
#	tcp/25, tcp/587	a real postfix instance (own config/queue/data dirs under
#			$LAB_DIR/postfix), STARTTLS on both (self-signed), no auth,
#			accepts mail for every domain and delivers it to
#			$LAB_MAILDIR; never relays anything anywhere
#	tcp/80		python3 http.server, body "portcullis-lab-ok"
#	udp/500, udp/4500, udp/1701  every datagram logged as a line
#			"EPOCH SRC_ADDR SRC_PORT LEN HEX(first 64 bytes)" in
#			$LAB_DIR/udp-PORT.log (IPv4 sources written as a.b.c.d),
#			and answered with "udp PORT ok"
#	tcp/1723, tcp/6881  answer "hello from PORT" and close
#
# Functions (see each one's comment):
#	lab_deps  lab_up [--trap] [--no-servers] [--no-vps]  lab_down
#	lab_vps_add NAME IFNAME V4[/LEN] V6PREFIX   lab_exec NS CMD...
#	lab_ns NS  lab_wait_port NS ADDR PORT [TIMEOUT]  lab_serve_tcp NS PORT
#	lab_tcp_hello NS ADDR PORT [TIMEOUT]  lab_udp_send NS ADDR PORT [TEXT]
#	lab_udp_received PORT [SRC]  lab_mail_count  lab_mail_find TEXT
#	lab_mail_wait TEXT [TIMEOUT]  lab_now_ms  lab_pids  lab_bg NAME NS CMD...
#	lab_postfix_check  lab_udp_ask NS ADDR PORT [TEXT]  lab_capture NS IFACE NAME [FILTER]
#
# Every function returns promptly: each wait is bounded by a timeout.

: "${LAB_PREFIX:=pc}"
if [ -n "${LAB_INSTANCE:-}" ]; then
	case $LAB_INSTANCE in
	*[!a-z0-9]*) echo "lab.sh: LAB_INSTANCE=$LAB_INSTANCE: letters and digits only" >&2; exit 2 ;;
	esac
	LAB_PREFIX=$LAB_PREFIX$LAB_INSTANCE
	unset LAB_INSTANCE
fi
: "${LAB_TOPOLOGY:=routed}"
: "${LAB_DIR:=}"

LAB_UPLINK_IF=uplink
LAB_HV_UPLINK_V4=192.0.2.1
LAB_HV_UPLINK_V6=2001:db8:ffff::1
LAB_INET_V4=192.0.2.2
LAB_INET_V6=2001:db8:ffff::2
LAB_GW_V4=203.0.113.1
LAB_GW_V6=fe80::1
LAB_SMTP_BANNER_NAME=portcullis-lab-mta
LAB_WEB_BODY=portcullis-lab-ok
LAB_UDP_PORTS="500 4500 1701"
LAB_TCP_PORTS="1723 6881"
LAB_MTA_HOSTNAME=mx.portcullis-lab.example.net

# The Debian python3, not whatever shim is first in PATH.
if [ -x /usr/bin/python3 ]; then LAB_PY=/usr/bin/python3; else LAB_PY=python3; fi

_lab_log() {
	[ "${LAB_QUIET:-0}" = 1 ] || echo "lab: $*" >&2
}

# lab_now_ms: prints the wall-clock time in milliseconds (no fork).
lab_now_ms() {
	local t=${EPOCHREALTIME:-}
	if [ -n "$t" ]; then
		t=${t//[!0-9]/}		# drop the "." (or a locale's ",")
		echo "$((10#${t} / 1000))"
	else
		date +%s%3N
	fi
}

# lab_ns NS: prints the full namespace name (NS may be short or full).
lab_ns() {
	case $1 in
	"$LAB_PREFIX"-*) echo "$1" ;;
	*) echo "$LAB_PREFIX-$1" ;;
	esac
}

# lab_exec NS CMD...: runs CMD inside namespace $LAB_PREFIX-NS.
lab_exec() {
	local ns
	ns=$(lab_ns "$1")
	shift
	ip netns exec "$ns" "$@"
}

_lab_ns_list() { # every existing namespace of this prefix
	ip netns list 2>/dev/null | awk -v p="$LAB_PREFIX-" 'index($1, p) == 1 { print $1 }'
}

_lab_ns_exists() { # (ip netns keeps its names in /run/netns)
	[ -e "/run/netns/$1" ]
}

_lab_var() { # NAME -> upper-case, [^A-Z0-9] -> _
	local v=${1^^}
	echo "${v//[!A-Z0-9]/_}"
}

_lab_setvar() { # NAME VALUE: set, export and persist to $LAB_DIR/env
	printf -v "$1" '%s' "$2"
	export "${1?}"
	if [ -n "$LAB_DIR" ] && [ -d "$LAB_DIR" ]; then
		printf '%s=%q\n' "$1" "$2" >>"$LAB_DIR/env"
	fi
}

# lab_apt ARGS...: apt-get ARGS, one at a time on this machine: meson runs
# two lab tests at once, and a second apt-get would find dpkg locked.
lab_apt() {
	flock -w 900 /run/lock/portcullis-lab-apt.lock env DEBIAN_FRONTEND=noninteractive apt-get "$@"
}

# lab_deps: installs the Debian packages the lab needs (only the missing ones).
# Installing postfix never configures or leaves running a system postfix.
lab_deps() {
	local want="postfix swaks socat curl tcpdump iproute2 python3 openssl ncat
		iputils-ping procps libio-socket-ssl-perl libnet-ssleay-perl
		libio-socket-inet6-perl"
	local p missing=()
	for p in $want; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
			missing+=("$p")
	done
	[ "${#missing[@]}" = 0 ] && return 0
	_lab_log "installing: ${missing[*]}"
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	local apt=(lab_apt -y -qq
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold
		--no-install-recommends install "${missing[@]}")
	if ! "${apt[@]}" >/dev/null 2>&1; then
		lab_apt -qq update >/dev/null 2>&1 || true
		"${apt[@]}" >/dev/null || { echo "lab_deps: apt-get install failed" >&2; return 1; }
	fi
	# No system postfix: stop and disable it if installing started it.
	if command -v systemctl >/dev/null 2>&1 &&
		systemctl is-system-running 2>/dev/null | grep -qvx offline; then
		systemctl disable --now postfix.service >/dev/null 2>&1 || true
	fi
	if [ -f /etc/postfix/main.cf ] && postfix status >/dev/null 2>&1; then
		postfix stop >/dev/null 2>&1 || true
	fi
	if [ -x /usr/sbin/update-rc.d ] && [ -e /etc/init.d/postfix ]; then
		update-rc.d postfix disable >/dev/null 2>&1 || true
	fi
	return 0
}

# lab_bg NAME NS CMD...: starts CMD in the background inside NS, output to
# $LAB_DIR/log/NAME.log, pid recorded so lab_down kills it.  Prints the pid.
lab_bg() {
	local name=$1 ns
	ns=$(lab_ns "$2")
	shift 2
	mkdir -p "$LAB_DIR/log"
	ip netns exec "$ns" "$@" </dev/null >>"$LAB_DIR/log/$name.log" 2>&1 &
	local pid=$!
	echo "$pid $name" >>"$LAB_DIR/pids"
	echo "$pid"
}

# lab_pids: prints every recorded pid and the pid of every process inside a
# lab namespace (for a caller that wants to check they are all gone).
lab_pids() {
	local ns
	{
		[ -n "$LAB_DIR" ] && [ -f "$LAB_DIR/pids" ] && awk '{print $1}' "$LAB_DIR/pids"
		for ns in $(_lab_ns_list); do ip netns pids "$ns" 2>/dev/null; done
	} | sort -un
}

_lab_alive() { # PID: running and not a zombie
	local st
	[ -r "/proc/$1/stat" ] || return 1
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

_lab_kill() { # PID...: TERM, wait up to 2 s, then KILL; reap own children
	local p i left
	[ "$#" = 0 ] && return 0
	kill -TERM "$@" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		left=()
		for p in "$@"; do _lab_alive "$p" && left+=("$p"); done
		[ "${#left[@]}" = 0 ] && break
		sleep 0.02
	done
	if [ "${#left[@]}" != 0 ]; then
		kill -KILL "${left[@]}" 2>/dev/null || true
		sleep 0.05
	fi
	for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

_lab_destroy_ns() { # NS...: kill everything inside, delete the namespace
	local ns pids=()
	for ns in "$@"; do
		_lab_ns_exists "$ns" || continue
		mapfile -t -O "${#pids[@]}" pids < <(ip netns pids "$ns" 2>/dev/null)
	done
	_lab_kill "${pids[@]}"
	for ns in "$@"; do
		_lab_ns_exists "$ns" || continue
		ip netns del "$ns" 2>/dev/null || true
	done
}

_lab_stale_dirs() { # remove LAB_DIRs of earlier runs of this prefix (killed -9)
	local d tmp=${TMPDIR:-/tmp}
	for d in "$tmp/portcullis-lab-$LAB_PREFIX."*; do
		[ -d "$d" ] && [ "$d" != "$LAB_DIR" ] && [ -f "$d/.portcullis-lab" ] &&
			[ ! -f "$d/.keep" ] && rm -rf -- "$d"
	done
	return 0
}

# lab_down: kills every recorded process, stops the postfix instance, deletes
# every $LAB_PREFIX-* namespace, removes $LAB_DIR (unless LAB_KEEP=1).
# Idempotent, safe to call when nothing is up.
lab_down() {
	local t0 pids=() master
	t0=$(lab_now_ms)
	if [ -n "$LAB_DIR" ] && [ -d "$LAB_DIR" ]; then
		# postfix master: SIGTERM makes it stop all its children
		master=$(tr -dc 0-9 2>/dev/null <"$LAB_DIR/postfix/spool/pid/master.pid") || master=
		[ -n "$master" ] && pids+=("$master")
		[ -f "$LAB_DIR/pids" ] && mapfile -t -O "${#pids[@]}" pids < <(awk '{print $1}' "$LAB_DIR/pids")
		_lab_kill "${pids[@]}"
		: >"$LAB_DIR/pids"
	fi
	local nss
	mapfile -t nss < <(_lab_ns_list)
	_lab_destroy_ns "${nss[@]}"
	if [ -n "$LAB_DIR" ] && [ -f "$LAB_DIR/.portcullis-lab" ]; then
		if [ "${LAB_KEEP:-0}" = 1 ]; then
			touch "$LAB_DIR/.keep"
			_lab_log "kept $LAB_DIR"
		else
			rm -rf -- "$LAB_DIR"
		fi
	fi
	_lab_log "down in $(($(lab_now_ms) - t0)) ms"
	return 0
}

_lab_trap_handler() { # EXIT-CODE: for INT/TERM
	set +e
	trap '' INT TERM
	lab_down
	trap - EXIT INT TERM
	exit "$1"
}

_lab_ns_create() { # NS: fresh namespace with lo up
	_lab_destroy_ns "$1"
	ip netns add "$1"
	ip -n "$1" link set lo up
	echo "$1" >>"$LAB_DIR/netns"
}

_lab_sysctl() { # NS key=value...
	local ns=$1
	shift
	ip netns exec "$ns" sysctl -qw "$@" >/dev/null
}

# lab_vps_add NAME IFNAME V4[/LEN] V6PREFIX
#   e.g. lab_vps_add vps201 v201 198.51.100.10 2001:db8:201::
# Namespace $LAB_PREFIX-NAME behind hv's interface IFNAME (LAB_TOPOLOGY=bridged:
# a port of br0, the VPS routed by inet on that segment).
# V4 alone: the VPS gets V4/32, hv routes V4/32.  V4/LEN (e.g.
# 198.51.100.24/29): the VPS gets the first host (.25/32), hv routes the whole
# block to it (the VPS may add more addresses of it to eth0).  The VPS gets
# V6PREFIX"10"/64, hv routes V6PREFIX/64.  Gateways: 203.0.113.1 and fe80::1.
lab_vps_add() {
	local name=$1 ifname=$2 v4=$3 v6p=${4%/*}
	local ns hv v4net v4addr v6addr v6net var
	ns=$(lab_ns "$name")
	hv=$(lab_ns hv)
	name=${ns#"$LAB_PREFIX"-}
	if [ "${#ifname}" -gt 15 ]; then echo "lab_vps_add: $ifname: name too long" >&2; return 1; fi
	_lab_ns_exists "$hv" || { echo "lab_vps_add: no $hv (lab_up first)" >&2; return 1; }
	case $v4 in
	*/32 | */*) ;;
	*) v4=$v4/32 ;;
	esac
	v4net=$v4
	if [ "${v4#*/}" = 32 ]; then
		v4addr=${v4%/*}
	else
		v4net=$(_lab_v4_network "$v4") || return 1
		v4addr=$(_lab_v4_first_host "$v4net") || return 1
	fi
	v6addr=${v6p}10
	v6net=$v6p/64
	ip -n "$hv" link del "$ifname" 2>/dev/null || true
	_lab_ns_create "$ns"
	ip -n "$hv" link add "$ifname" type veth peer name eth0 netns "$ns"
	_lab_sysctl "$ns" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
		net.ipv6.conf.eth0.accept_dad=0 net.ipv6.conf.eth0.accept_ra=0
	var=$(_lab_var "$name")
	# hv side: a bridge port, or gateway addresses with no automatic
	# link-local (only fe80::1)
	if [ "$LAB_TOPOLOGY" = bridged ]; then
		_lab_vps_port "$ns" "$ifname" "$var" || return 1
	else
		_lab_sysctl "$hv" "net.ipv6.conf.$ifname.accept_dad=0" "net.ipv6.conf.$ifname.accept_ra=0" \
			"net.ipv6.conf.$ifname.addr_gen_mode=1"
		ip -n "$hv" addr add "$LAB_GW_V4/32" dev "$ifname"
		ip -n "$hv" addr add "$LAB_GW_V6/64" dev "$ifname" nodad
		ip -n "$hv" link set "$ifname" up
	fi
	ip -n "$ns" addr add "$v4addr/32" dev eth0
	ip -n "$ns" addr add "$v6addr/64" dev eth0 nodad
	ip -n "$ns" link set eth0 up
	ip -n "$ns" route add "$LAB_GW_V4" dev eth0 scope link
	ip -n "$ns" route add default via "$LAB_GW_V4" dev eth0
	ip -n "$ns" -6 route add default via "$LAB_GW_V6" dev eth0
	if [ "$LAB_TOPOLOGY" = bridged ]; then
		# hv reaches it over the bridge; inet, its router, on the
		# segment (from the servers' address: a datagram's answer comes
		# from where it went)
		ip -n "$hv" route replace "$v4net" dev br0
		ip -n "$hv" -6 route replace "$v6net" dev br0
		ip -n "$LAB_INET" route replace "$v4net" dev eth0 src "$LAB_INET_V4"
		ip -n "$LAB_INET" -6 route replace "$v6net" dev eth0 src "$LAB_INET_V6"
	else
		ip -n "$hv" route replace "$v4net" dev "$ifname"
		ip -n "$hv" -6 route replace "$v6net" dev "$ifname"
	fi
	_lab_setvar "${var}_NS" "$ns"
	_lab_setvar "${var}_IF" "$ifname"
	_lab_setvar "${var}_V4" "$v4addr"
	_lab_setvar "${var}_V4NET" "$v4net"
	_lab_setvar "${var}_V6" "$v6addr"
	_lab_setvar "${var}_V6NET" "$v6net"
	case " ${LAB_VPSES:-} " in
	*" $name "*) ;;
	*) _lab_setvar LAB_VPSES "${LAB_VPSES:+$LAB_VPSES }$name" ;;
	esac
}

# The bridged lab's hv side of a VPS: IFNAME a port of br0 (no address), the
# VPS's MAC from IFNAME's digits (v201 -> 52:54:00:00:02:01) as NAME_MAC.
_lab_vps_port() { # NS IFNAME VAR
	local ns=$1 ifname=$2 var=$3 hv digits mac
	hv=$(lab_ns hv)
	digits=$(printf '%04d' "$((10#$(tr -dc 0-9 <<<"$ifname" | tail -c 4) + 0))")
	mac=52:54:00:00:${digits:0:2}:${digits:2:2}
	_lab_sysctl "$hv" "net.ipv6.conf.$ifname.disable_ipv6=1"
	ip -n "$ns" link set eth0 address "$mac"
	ip -n "$hv" link set "$ifname" master br0
	ip -n "$hv" link set "$ifname" up
	_lab_setvar "${var}_MAC" "$mac"
}

_lab_v4_network() { # a.b.c.d/len -> network/len
	local ip=${1%/*} len=${1#*/} a b c d n
	IFS=. read -r a b c d <<<"$ip"
	n=$(((a << 24) | (b << 16) | (c << 8) | d))
	n=$((n & ((0xffffffff << (32 - len)) & 0xffffffff)))
	echo "$((n >> 24 & 255)).$((n >> 16 & 255)).$((n >> 8 & 255)).$((n & 255))/$len"
}

_lab_v4_first_host() { # network/len -> network+1
	local ip=${1%/*} a b c d n
	IFS=. read -r a b c d <<<"$ip"
	n=$((((a << 24) | (b << 16) | (c << 8) | d) + 1))
	echo "$((n >> 24 & 255)).$((n >> 16 & 255)).$((n >> 8 & 255)).$((n & 255))"
}

# lab_wait_port NS ADDR PORT [TIMEOUT_S=10]: waits until ADDR:PORT accepts a
# TCP connection from inside NS.  Returns 1 on timeout.
lab_wait_port() {
	local ns addr=$2 port=$3 timeout=${4:-10} deadline
	ns=$(lab_ns "$1")
	deadline=$(($(lab_now_ms) + timeout * 1000))
	while :; do
		# shellcheck disable=SC2016 # $0 $1 are the inner bash's
		if ip netns exec "$ns" timeout 1 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$addr" "$port" 2>/dev/null; then
			return 0
		fi
		[ "$(lab_now_ms)" -ge "$deadline" ] && break
		sleep 0.05
	done
	echo "lab_wait_port: $addr:$port in $ns not ready after ${timeout}s" >&2
	return 1
}

_lab_wait_file() { # FILE TIMEOUT_S
	local deadline
	deadline=$(($(lab_now_ms) + $2 * 1000))
	until [ -e "$1" ]; do
		[ "$(lab_now_ms)" -ge "$deadline" ] && return 1
		sleep 0.02
	done
}

# lab_serve_tcp NS PORT: in NS, a TCP server on [::]:PORT (IPv4 too) that
# answers "hello from PORT" to every connection.  Waits until it listens.
lab_serve_tcp() {
	local ns port=$2
	ns=$(lab_ns "$1")
	lab_bg "tcp-$port-${ns#"$LAB_PREFIX"-}" "$ns" socat -T5 \
		"TCP6-LISTEN:$port,ipv6only=0,reuseaddr,fork,backlog=128" \
		"EXEC:/bin/echo hello from $port" >/dev/null
	lab_wait_port "$ns" ::1 "$port" 5
}

# lab_tcp_hello NS ADDR PORT [TIMEOUT_S=3]: connects from NS, prints what the
# server says (e.g. "hello from 6881").  Non-zero if the connection failed.
lab_tcp_hello() {
	local ns addr=$2 port=$3 t=${4:-3}
	ns=$(lab_ns "$1")
	case $addr in *:*) addr="[$addr]" ;; esac
	timeout $((t + 1)) ip netns exec "$ns" socat -T"$t" -u \
		"TCP:$addr:$port,connect-timeout=$t" STDOUT
}

# lab_udp_send NS ADDR PORT [TEXT]: sends one datagram from NS.
lab_udp_send() {
	local ns addr=$2 port=$3 text=${4:-portcullis-lab-udp}
	ns=$(lab_ns "$1")
	case $addr in *:*) addr="[$addr]" ;; esac
	printf '%s\n' "$text" | timeout 3 ip netns exec "$ns" socat -u STDIN "UDP:$addr:$port"
}

# lab_udp_ask NS ADDR PORT [TEXT] [TIMEOUT_S=2]: sends one datagram from NS
# and prints the answer (the inet listeners answer "udp PORT ok").
lab_udp_ask() {
	local ns addr=$2 port=$3 text=${4:-portcullis-lab-udp} t=${5:-2}
	ns=$(lab_ns "$1")
	case $addr in *:*) addr="[$addr]" ;; esac
	printf '%s\n' "$text" | timeout $((t + 1)) ip netns exec "$ns" socat -T"$t" STDIO "UDP:$addr:$port"
}

# lab_capture NS IFACE NAME [FILTER...]: starts tcpdump in NS on IFACE ("any"
# for all), writing $LAB_DIR/NAME.pcap; waits until it captures, prints the
# pid (kill it, then read with `tcpdump -nn -r $LAB_DIR/NAME.pcap`).
lab_capture() {
	local ns=$1 ifc=$2 name=$3 pid deadline
	shift 3
	pid=$(lab_bg "capture-$name" "$ns" tcpdump -i "$ifc" -nn -U --immediate-mode -Z root -w "$LAB_DIR/$name.pcap" "$@")
	deadline=$(($(lab_now_ms) + 5000))
	until grep -q 'listening on' "$LAB_DIR/log/capture-$name.log" 2>/dev/null; do
		if [ "$(lab_now_ms)" -ge "$deadline" ] || ! _lab_alive "$pid"; then
			echo "lab_capture: tcpdump did not start:" >&2
			cat "$LAB_DIR/log/capture-$name.log" >&2
			return 1
		fi
		sleep 0.02
	done
	echo "$pid"
}

# lab_udp_received PORT [SRC_ADDR]: prints how many datagrams the inet
# listener on PORT received (only those from SRC_ADDR if given).
lab_udp_received() {
	local f="$LAB_DIR/udp-$1.log"
	if [ ! -f "$f" ]; then echo 0; return 0; fi
	if [ -n "${2:-}" ]; then
		awk -v s="$2" '$2 == s { n++ } END { print n + 0 }' "$f"
	else
		awk 'END { print NR }' "$f"
	fi
}

# lab_mail_count: prints how many messages postfix delivered.
lab_mail_count() {
	local n=0 f
	for f in "$LAB_MAILDIR"/new/* "$LAB_MAILDIR"/cur/*; do
		[ -f "$f" ] && n=$((n + 1))
	done
	echo "$n"
}

# lab_mail_find TEXT: prints the delivered message files containing TEXT
# (fixed string); status 0 if at least one.
lab_mail_find() {
	local files=()
	shopt -s nullglob
	files=("$LAB_MAILDIR"/new/* "$LAB_MAILDIR"/cur/*)
	shopt -u nullglob
	[ "${#files[@]}" = 0 ] && return 1
	grep -lF -- "$1" "${files[@]}"
}

# lab_mail_wait TEXT [TIMEOUT_S=10]: waits until a message containing TEXT
# is delivered (delivery is asynchronous after the 250 reply).
lab_mail_wait() {
	local deadline
	deadline=$(($(lab_now_ms) + ${2:-10} * 1000))
	until lab_mail_find "$1" >/dev/null; do
		[ "$(lab_now_ms)" -ge "$deadline" ] && return 1
		sleep 0.05
	done
}

_lab_udp_listener() { # writes the UDP recorder script
	cat >"$LAB_DIR/udp_listener.py" <<'EOF'
import os, selectors, socket, sys, time
logdir, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
sel = selectors.DefaultSelector()
logs = {}
for p in ports:
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", p))
    sel.register(s, selectors.EVENT_READ, p)
    logs[p] = open(os.path.join(logdir, "udp-%d.log" % p), "a", buffering=1)
open(os.path.join(logdir, "udp.ready"), "w").close()
while True:
    for key, _ in sel.select():
        p = key.data
        try:
            data, addr = key.fileobj.recvfrom(65535)
        except OSError:
            continue
        ip = addr[0]
        if ip.startswith("::ffff:") and "." in ip:
            ip = ip[7:]
        logs[p].write("%.3f %s %d %d %s\n" % (time.time(), ip, addr[1], len(data), data[:64].hex()))
        try:
            key.fileobj.sendto(b"udp %d ok\n" % p, addr)
        except OSError:
            pass
EOF
}

_lab_postfix_config() { # writes the postfix instance under $LAB_DIR/postfix
	local pf=$LAB_DIR/postfix uid gid
	if ! uid=$(id -u postfix) || ! gid=$(id -g postfix); then
		echo "lab: no postfix user (lab_deps)" >&2
		return 1
	fi
	mkdir -p "$pf/etc" "$pf/spool" "$pf/data" "$LAB_DIR/tls" "$LAB_MAILDIR"
	chown "$uid:$gid" "$pf/data" "$LAB_DIR/mail" "$LAB_MAILDIR"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
		-subj "/CN=$LAB_MTA_HOSTNAME" -keyout "$LAB_DIR/tls/key.pem" \
		-out "$LAB_DIR/tls/cert.pem" >/dev/null 2>&1 || { echo "lab: openssl failed" >&2; return 1; }
	chmod 600 "$LAB_DIR/tls/key.pem"
	cat >"$pf/etc/main.cf" <<EOF
# Portcullis lab MTA: a private postfix instance, generated by tests/lab/lab.sh
compatibility_level = 3.6
queue_directory = $pf/spool
data_directory = $pf/data
mail_owner = postfix
setgid_group = postdrop
myhostname = $LAB_MTA_HOSTNAME
mydomain = portcullis-lab.example.net
myorigin = \$myhostname
smtpd_banner = \$myhostname ESMTP $LAB_SMTP_BANNER_NAME
inet_interfaces = all
inet_protocols = all
mynetworks = 127.0.0.0/8 [::1]/128 192.0.2.0/24 198.51.100.0/24 203.0.113.0/24 [2001:db8::]/32
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
# recipients whose local part starts with "nobody" are refused (spam.sh's
# remote refusals); every other address is accepted as before
smtpd_recipient_restrictions = check_recipient_access regexp:$pf/etc/refused_recipients, permit
smtpd_peername_lookup = no
# every domain is delivered here, into one Maildir; nothing ever leaves
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
virtual_mailbox_domains = static:all
virtual_mailbox_base = $LAB_DIR/mail
virtual_mailbox_maps = static:inbox/
virtual_uid_maps = static:$uid
virtual_gid_maps = static:$gid
virtual_minimum_uid = 1
default_transport = error:the lab MTA relays nothing
relay_transport = error:the lab MTA relays nothing
smtp_dns_support_level = disabled
biff = no
smtpd_tls_cert_file = $LAB_DIR/tls/cert.pem
smtpd_tls_key_file = $LAB_DIR/tls/key.pem
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
smtp_tls_security_level = none
# no syslog in the namespace: postlogd (see master.cf) writes this file
maillog_file = $LAB_DIR/maillog
maillog_file_prefixes = $LAB_DIR
EOF
	printf '/^nobody[^@]*@/ 550 5.1.1 No such user here (portcullis lab)\n' >"$pf/etc/refused_recipients"
	cat >"$pf/etc/master.cf" <<'EOF'
# service type  private unpriv  chroot  wakeup  maxproc command
smtp      inet  n       -       n       -       -       smtpd
submission inet n       -       n       -       -       smtpd
  -o syslog_name=postfix/submission
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
	chmod 644 "$pf/etc/main.cf" "$pf/etc/master.cf"
}

# lab_postfix_check: `postfix -c DIR check` of the lab instance; prints its
# output (warnings) and fails if it fails or warns.
lab_postfix_check() {
	local out
	out=$(ip netns exec "$LAB_INET" postfix -c "$LAB_DIR/postfix/etc" check 2>&1) || {
		echo "lab: postfix check failed: $out" >&2
		return 1
	}
	[ -z "$out" ] || { echo "lab: postfix check warns: $out" >&2; return 1; }
}

_lab_start_servers() {
	local inet=$LAB_INET p
	# web
	mkdir -p "$LAB_DIR/www"
	echo "$LAB_WEB_BODY" >"$LAB_DIR/www/index.html"
	lab_bg http "$inet" "$LAB_PY" -m http.server --bind :: --directory "$LAB_DIR/www" 80 >/dev/null
	# UDP recorders
	_lab_udp_listener
	rm -f "$LAB_DIR/udp.ready"
	# shellcheck disable=SC2086
	lab_bg udp "$inet" "$LAB_PY" "$LAB_DIR/udp_listener.py" "$LAB_DIR" $LAB_UDP_PORTS >/dev/null
	# TCP hello servers
	for p in $LAB_TCP_PORTS; do
		lab_bg "tcp-$p" "$inet" socat -T5 "TCP6-LISTEN:$p,ipv6only=0,reuseaddr,fork,backlog=128" \
			"EXEC:/bin/echo hello from $p" >/dev/null
	done
	# postfix
	_lab_postfix_config || return 1
	# `postfix start` runs the fatal checks itself; the full `postfix check`
	# (with warnings) costs 2 s, so only on demand (LAB_POSTFIX_CHECK=1;
	# selftest.sh does it with lab_postfix_check).
	if [ "${LAB_POSTFIX_CHECK:-0}" = 1 ]; then lab_postfix_check || return 1; fi
	ip netns exec "$inet" postfix -c "$LAB_DIR/postfix/etc" start </dev/null >"$LAB_DIR/log/postfix-start.log" 2>&1 ||
		{ echo "lab: postfix start failed:" >&2; cat "$LAB_DIR/log/postfix-start.log" "$LAB_DIR/maillog" >&2; return 1; }
	# readiness
	_lab_wait_file "$LAB_DIR/udp.ready" 10 || { echo "lab: UDP listener did not start" >&2; return 1; }
	for p in 25 587 80 $LAB_TCP_PORTS; do
		lab_wait_port "$inet" "$LAB_INET_V4" "$p" 10 || return 1
	done
	lab_wait_port "$inet" "$LAB_INET_V6" 25 10 || return 1
}

# lab_up [--trap] [--no-servers] [--no-vps]
# Builds the lab from scratch (an earlier lab of the same prefix is torn down
# first).  --trap: registers lab_down on EXIT, INT and TERM (before building,
# so an interrupted lab_up cleans up too).  --no-servers: no servers in inet.
# --no-vps: no default VPSes (add your own with lab_vps_add).
# Must run in the caller's shell (not in $(...)): it sets variables.
lab_up() {
	local trap=0 servers=1 vps=1 a t0
	for a in "$@"; do
		case $a in
		--trap) trap=1 ;;
		--no-servers) servers=0 ;;
		--no-vps) vps=0 ;;
		*) echo "lab_up: unknown option $a" >&2; return 2 ;;
		esac
	done
	t0=$(lab_now_ms)
	if [ "$trap" = 1 ]; then
		trap 'set +e; lab_down' EXIT
		trap '_lab_trap_handler 130' INT
		trap '_lab_trap_handler 143' TERM
	fi
	# start from nothing: an earlier lab of this prefix (even a killed one)
	if [ -n "$LAB_DIR" ] && [ -d "$LAB_DIR" ]; then
		lab_down
	else
		local nss
		mapfile -t nss < <(_lab_ns_list)
		_lab_destroy_ns "${nss[@]}"
	fi
	if [ -z "$LAB_DIR" ]; then
		_lab_stale_dirs
		LAB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-lab-$LAB_PREFIX.XXXXXX")
	fi
	export LAB_DIR LAB_PREFIX
	mkdir -p "$LAB_DIR/log"
	chmod 755 "$LAB_DIR"	# postfix's unprivileged daemons must reach their dirs
	touch "$LAB_DIR/.portcullis-lab"
	: >"$LAB_DIR/env"
	: >"$LAB_DIR/pids"
	LAB_VPSES=
	_lab_setvar LAB_PREFIX "$LAB_PREFIX"
	_lab_setvar LAB_DIR "$LAB_DIR"
	_lab_setvar LAB_HV "$(lab_ns hv)"
	_lab_setvar LAB_INET "$(lab_ns inet)"
	_lab_setvar LAB_MAILDIR "$LAB_DIR/mail/inbox"
	_lab_setvar LAB_TOPOLOGY "$LAB_TOPOLOGY"
	local v
	for v in LAB_UPLINK_IF LAB_HV_UPLINK_V4 LAB_HV_UPLINK_V6 LAB_INET_V4 LAB_INET_V6 \
		LAB_GW_V4 LAB_GW_V6 LAB_SMTP_BANNER_NAME LAB_WEB_BODY; do
		_lab_setvar "$v" "${!v}"
	done

	# hypervisor: a router
	_lab_ns_create "$LAB_HV"
	_lab_sysctl "$LAB_HV" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
		net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
		net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
	# internet
	_lab_ns_create "$LAB_INET"
	_lab_sysctl "$LAB_INET" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
	ip -n "$LAB_HV" link add "$LAB_UPLINK_IF" type veth peer name eth0 netns "$LAB_INET"
	local hvif=$LAB_UPLINK_IF
	if [ "$LAB_TOPOLOGY" = bridged ]; then
		# one segment: the uplink and every VPS port in br0; hv's own
		# addresses on the bridge; inet also routes for the VPSes
		hvif=br0
		ip -n "$LAB_HV" link add br0 type bridge stp_state 0 mcast_snooping 0
		_lab_sysctl "$LAB_HV" "net.ipv6.conf.$LAB_UPLINK_IF.disable_ipv6=1"
		ip -n "$LAB_HV" link set "$LAB_UPLINK_IF" master br0
		ip -n "$LAB_HV" link set br0 up
		_lab_sysctl "$LAB_INET" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
		ip -n "$LAB_INET" addr add "$LAB_GW_V4/32" dev eth0
		ip -n "$LAB_INET" addr add "$LAB_GW_V6/64" dev eth0 nodad
	fi
	ip -n "$LAB_HV" addr add "$LAB_HV_UPLINK_V4/24" dev "$hvif"
	ip -n "$LAB_HV" addr add "$LAB_HV_UPLINK_V6/64" dev "$hvif" nodad
	ip -n "$LAB_HV" link set "$LAB_UPLINK_IF" up
	ip -n "$LAB_INET" addr add "$LAB_INET_V4/24" dev eth0
	ip -n "$LAB_INET" addr add "$LAB_INET_V6/64" dev eth0 nodad
	ip -n "$LAB_INET" link set eth0 up
	ip -n "$LAB_INET" route add default via "$LAB_HV_UPLINK_V4"
	ip -n "$LAB_INET" -6 route add default via "$LAB_HV_UPLINK_V6"

	if [ "$vps" = 1 ]; then
		lab_vps_add vps201 v201 198.51.100.10 2001:db8:201:: || return 1
		lab_vps_add vps202 v202 198.51.100.20 2001:db8:202:: || return 1
		lab_vps_add vps101 v101 203.0.113.10 2001:db8:101:: || return 1
	fi
	if [ "$servers" = 1 ]; then
		_lab_start_servers || { echo "lab_up: servers failed (logs in $LAB_DIR/log)" >&2; return 1; }
	fi
	_lab_log "up in $(($(lab_now_ms) - t0)) ms ($LAB_DIR)"
}
