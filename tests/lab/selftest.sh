#!/bin/bash
# Proves the lab works, with no firewall at all: real clients in the VPS
# namespaces reach the real servers in "inet", inet reaches a VPS, VPSes reach
# each other, and lab_down leaves nothing behind.  Prints "ok ..."/"FAIL ..."
# per check and a closing "selftest: N passed, N failed"; exit 1 on a failure.
# Usage: tests/lab/selftest.sh   (as root; LAB_KEEP=1 keeps $LAB_DIR)
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lab.sh
. "$here/lab.sh"

pass=0
fail=0
check() { # DESCRIPTION CMD...: runs CMD, records ok/FAIL
	local what=$1
	shift
	if "$@"; then
		pass=$((pass + 1))
		echo "ok   $what"
	else
		fail=$((fail + 1))
		echo "FAIL $what"
	fi
}

t_start=$(lab_now_ms)
lab_deps || { echo "FAIL lab_deps"; exit 1; }
t0=$(lab_now_ms)
if ! lab_up --trap; then
	echo "FAIL lab_up"
	echo "selftest: 0 passed, 1 failed"
	exit 1
fi
t_up=$(($(lab_now_ms) - t0))
echo "lab_up took $t_up ms"
tag="pc-selftest-$$-$(lab_now_ms)"

# --- mail ---------------------------------------------------------------
check "smtp: postfix -c \$LAB_DIR/postfix/etc check is clean" lab_postfix_check
swaks_ok() { # PORT SUBJECT [swaks options...]
	local port=$1 subject=$2 out
	shift 2
	out=$(lab_exec vps201 swaks --server "$LAB_INET_V4" --port "$port" --timeout 10 \
		--helo vps201.example.org --to someone@example.net --from a@example.org \
		--header "Subject: $subject" --body "portcullis lab selftest" "$@" 2>&1) || {
		echo "$out" | tail -5 | sed 's/^/    /'
		return 1
	}
	lab_mail_wait "$subject" 10
}
check "smtp: 587 with STARTTLS from vps201 delivers" swaks_ok 587 "$tag-587tls" --tls
check "smtp: 25 without TLS from vps201 delivers" swaks_ok 25 "$tag-25plain"
check "smtp: two messages in the mailbox" test "$(lab_mail_count)" = 2

ehlo() { # ADDR PORT -> swaks transcript up to EHLO
	lab_exec vps201 swaks --server "$1" --port "$2" --timeout 10 --helo vps201.example.org \
		--quit-after EHLO 2>&1
}
ehlo_25=$(ehlo "$LAB_INET_V4" 25)
check "smtp: EHLO on 25 advertises STARTTLS" grep -qE '^<- +250[- ]STARTTLS' <<<"$ehlo_25"
check "smtp: banner names the lab MTA" grep -q "220 .*$LAB_SMTP_BANNER_NAME" <<<"$ehlo_25"
check "smtp: EHLO on 587 advertises STARTTLS" grep -qE '^<- +250[- ]STARTTLS' <<<"$(ehlo "$LAB_INET_V4" 587)"
check "smtp: IPv6 [$LAB_INET_V6]:25 delivers" swaks_ok 25 "$tag-25v6" --server "$LAB_INET_V6" --tls

# --- web ------------------------------------------------------------------
curl_body() { # URL
	local body
	body=$(lab_exec vps201 curl -sS --max-time 5 "$1") || return 1
	[ "$body" = "$LAB_WEB_BODY" ]
}
check "http: http://$LAB_INET_V4/ from vps201" curl_body "http://$LAB_INET_V4/"
check "http: http://[$LAB_INET_V6]/ from vps201" curl_body "http://[$LAB_INET_V6]/"

# --- UDP ------------------------------------------------------------------
udp_recorded() { # ADDR PORT SRC
	local before
	before=$(lab_udp_received "$2" "$3")
	lab_udp_send vps201 "$1" "$2" "$tag" || return 1
	local i
	for ((i = 0; i < 100; i++)); do
		[ "$(lab_udp_received "$2" "$3")" -gt "$before" ] && return 0
		sleep 0.02
	done
	return 1
}
check "udp: $LAB_INET_V4:500 records a datagram from $VPS201_V4" udp_recorded "$LAB_INET_V4" 500 "$VPS201_V4"
check "udp: [$LAB_INET_V6]:4500 records a datagram from $VPS201_V6" udp_recorded "$LAB_INET_V6" 4500 "$VPS201_V6"
check "udp: $LAB_INET_V4:1701 records a datagram from $VPS201_V4" udp_recorded "$LAB_INET_V4" 1701 "$VPS201_V4"

# --- TCP ------------------------------------------------------------------
hello() { # NS ADDR PORT
	[ "$(lab_tcp_hello "$1" "$2" "$3")" = "hello from $3" ]
}
check "tcp: $LAB_INET_V4:6881 answers vps201" hello vps201 "$LAB_INET_V4" 6881
check "tcp: $LAB_INET_V4:1723 answers vps201" hello vps201 "$LAB_INET_V4" 1723
check "tcp: [$LAB_INET_V6]:1723 answers vps202" hello vps202 "$LAB_INET_V6" 1723

# --- ingress: inet -> VPS -------------------------------------------------
check "ingress: lab_serve_tcp vps201 6881" lab_serve_tcp vps201 6881
check "ingress: inet -> $VPS201_V4:6881 answers" hello inet "$VPS201_V4" 6881
check "ingress: inet -> [$VPS201_V6]:6881 answers" hello inet "$VPS201_V6" 6881

# --- VPS <-> VPS ----------------------------------------------------------
pings() { lab_exec "$1" ping -c1 -W2 -q "$2" >/dev/null; }
check "vps: vps201 pings vps202 ($VPS202_V4)" pings vps201 "$VPS202_V4"
check "vps: vps201 pings vps202 ($VPS202_V6)" pings vps201 "$VPS202_V6"
check "vps: vps101 pings vps201 ($VPS201_V4)" pings vps101 "$VPS201_V4"
check "vps: inet pings vps101 ($VPS101_V6)" pings inet "$VPS101_V6"

# --- teardown -------------------------------------------------------------
mapfile -t lab_procs < <(lab_pids)
dir=$LAB_DIR
t0=$(lab_now_ms)
lab_down
t_down=$(($(lab_now_ms) - t0))
echo "lab_down took $t_down ms"
no_ns() { [ -z "$(ip netns list | awk -v p="$LAB_PREFIX-" 'index($1, p) == 1')" ]; }
no_procs() {
	local p left=()
	for p in "${lab_procs[@]}"; do
		_lab_alive "$p" && left+=("$p")
	done
	[ "${#left[@]}" = 0 ] || { ps -o pid,args -p "${left[@]}" | sed 's/^/    /'; return 1; }
}
check "down: no $LAB_PREFIX-* namespace left" no_ns
check "down: none of the ${#lab_procs[@]} lab processes left" no_procs
if [ "${LAB_KEEP:-0}" = 1 ]; then
	echo "(LAB_KEEP=1: $dir kept)"
else
	check "down: \$LAB_DIR removed" test ! -e "$dir"
fi

echo "selftest took $(($(lab_now_ms) - t_start)) ms (lab_up $t_up ms, lab_down $t_down ms)"
echo "selftest: $pass passed, $fail failed"
[ "$fail" = 0 ]
