# shellcheck shell=bash
# shellcheck disable=SC2154 # root, build: the including script's
# The configurations the forwarding benchmarks compare, installed in the
# lab's hv (sourced after tests/lab/lab.sh; needs $root, $build, $LAB_DIR).
#	fwd_program CONFIG	none | conntrack-only | pc-N (provider B's site,
#				N VPSes, vps-201 one of them) | antispoof-N
#				(site lenoir, vps-101 one of them) | b-N (provider
#				B's site alone: no redirect, no nat chain) | bridged-pc-N
#				(LAB_TOPOLOGY=bridged: provider B's site bridged)
#				CONFIG~CUT[~CUT...]: the same, then CUT (see
#				_fwd_cut) taken out of the programmed table: what a
#				part of the ruleset costs, to measure, never to ship
#	fwd_clear CONFIG	removes what fwd_program CONFIG installed
#	fwd_vps CONFIG		the VPS whose packets CONFIG is measured with
fwd_vps() {
	case ${1%%~*} in
	antispoof-*) echo vps101 ;;
	*) echo vps201 ;;
	esac
}

_fwd_bench_nft() { # VPS-VAR ARGS...: bench_nft --here with the measured VPS registered
	local v=$1 ifv addr4 addr6
	shift
	ifv=${v}_IF addr4=${v}_V4NET addr6=${v}_V6NET
	(cd "$root" && lab_exec hv "$build/bench/bench_nft" --here "$@" --extra-iface "${!ifv}" \
		--extra-addr "${!addr4}" --extra-addr "${!addr6}" >/dev/null)
}

_fwd_del() { # CHAIN REGEX: deletes CHAIN's rules that match REGEX
	local h
	for h in $(lab_exec hv nft -a list chain inet portcullis "$1" | grep -E -- "$2" | sed 's/.*# handle //'); do
		lab_exec hv nft delete rule inet portcullis "$1" handle "$h" || return 1
	done
}

_fwd_cut() { # CUT: takes a part out of inet portcullis
	case $1 in
	no-sampling) _fwd_del forward 'numgen random' ;;	# flood sampling
	no-fwd-suspended) _fwd_del forward '@suspended' ;;	# forward's suspended lookup(s)
	no-raw-suspended) _fwd_del raw_prerouting '@suspended' ;;	# older builds: now one vmap lookup does both
	no-antispoof) _fwd_del raw_prerouting '@antispoof' ;;	# the whole source check
	no-as-dhcp) _fwd_del antispoof 'udp (s|d)port' ;;	# rogue DHCP checks
	no-as-generic) _fwd_del antispoof 'ct state untracked|nd-router-advert|udp (s|d)port' ;;
	no-proxy-return) # older builds: its own base chain; now a rule in raw_prerouting
		lab_exec hv nft delete chain inet portcullis proxy_return 2>/dev/null || _fwd_del raw_prerouting 'socket transparent' ;;
	no-nat) lab_exec hv nft delete chain inet portcullis prerouting ;;	# the nat chain (and with it NAT's hooks)
	no-port25) _fwd_del forward 'tcp (d|s)port 25' ;;	# the proxied-port guards
	est-first) lab_exec hv nft insert rule inet portcullis forward ct state established accept ;;
	*) echo "fwd_program: unknown cut $1" >&2; return 1 ;;
	esac
}

fwd_program() {
	local n=${1%%~*} cut cuts
	if [ "$n" != "$1" ]; then
		fwd_program "$n" || return 1
		IFS='~' read -r -a cuts <<<"${1#*~}"
		for cut in "${cuts[@]}"; do _fwd_cut "$cut" || return 1; done
		return 0
	fi
	n=${1##*-}
	case $1 in
	none) ;;
	conntrack-only)
		# Conntrack alone (Portcullis decides at a connection's first
		# packet, so conntrack runs beside it; this separates its cost
		# from the lookups').
		printf 'table inet ctonly {\n chain forward {\n  type filter hook forward priority filter; policy accept;\n  ct state established,related accept\n }\n}\n' >"$LAB_DIR/ctonly.nft"
		lab_exec hv nft -f "$LAB_DIR/ctonly.nft"
		;;
	# Every routed VPS's sources are checked (BCP 38 at every site), so
	# the measured VPS is registered with its addresses.
	pc-*) _fwd_bench_nft VPS201 --vps $((n - 1)) ;;
	# the same with agent.max-vps: the per-VPS sets in the kernel's
	# fixed-size hash (docs/DATAPLANE.md, "The size of the per-VPS sets")
	antispoof-sized-*) _fwd_bench_nft VPS101 --site lenoir --max-vps 131072 --vps $((n - 1)) ;;
	antispoof-*) _fwd_bench_nft VPS101 --site lenoir --vps $((n - 1)) ;;
	# Provider B's site alone, as its provider ships it: no policy
	# redirects, so the table has no nat chain (and NAT no hooks).
	b-*)
		sed -e "s|  - profiles/|  - $root/etc/profiles/|" -e "/profiles\/lenoir.yaml/d" \
			-e "/^  lenoir:/,/^    description:/d" "$root/etc/portcullis.yaml" >"$LAB_DIR/b.yaml"
		_fwd_bench_nft VPS201 --config "$LAB_DIR/b.yaml" --site milano --vps $((n - 1))
		;;
	bridged-pc-*)
		sed -e "s|  - profiles/|  - $root/etc/profiles/|" -e "s|^    policy: blocked-services|&\n    topology: bridged|" \
			"$root/etc/portcullis.yaml" >"$LAB_DIR/bridged.yaml"
		_fwd_bench_nft VPS201 --config "$LAB_DIR/bridged.yaml" --site milano --vps $((n - 1))
		;;
	*) echo "fwd_program: unknown configuration $1" >&2; return 1 ;;
	esac
}

fwd_clear() {
	case ${1%%~*} in
	none) ;;
	conntrack-only) lab_exec hv nft delete table inet ctonly ;;
	bridged-pc-*) lab_exec hv nft delete table inet portcullis; lab_exec hv nft delete table bridge portcullis ;;
	*) lab_exec hv nft delete table inet portcullis ;;
	esac
}
