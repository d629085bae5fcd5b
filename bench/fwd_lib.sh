# shellcheck shell=bash
# shellcheck disable=SC2154 # root, build: the including script's
# The configurations the forwarding benchmarks compare, installed in the
# lab's hv (sourced after tests/lab/lab.sh; needs $root, $build, $LAB_DIR).
#	fwd_program CONFIG	none | conntrack-only | pc-N (provider B's site,
#				N VPSes, vps-201 one of them) | antispoof-N
#				(site lenoir, vps-101 one of them) | bridged-pc-N
#				(LAB_TOPOLOGY=bridged: provider B's site bridged)
#	fwd_clear CONFIG	removes what fwd_program CONFIG installed
#	fwd_vps CONFIG		the VPS whose packets CONFIG is measured with
fwd_vps() {
	case $1 in
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

fwd_program() {
	local n=${1##*-}
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
	antispoof-*) _fwd_bench_nft VPS101 --site lenoir --vps $((n - 1)) ;;
	bridged-pc-*)
		sed -e "s|  - profiles/|  - $root/etc/profiles/|" -e "s|^    policy: blocked-services|&\n    topology: bridged|" \
			"$root/etc/portcullis.yaml" >"$LAB_DIR/bridged.yaml"
		_fwd_bench_nft VPS201 --config "$LAB_DIR/bridged.yaml" --site milano --vps $((n - 1))
		;;
	*) echo "fwd_program: unknown configuration $1" >&2; return 1 ;;
	esac
}

fwd_clear() {
	case $1 in
	none) ;;
	conntrack-only) lab_exec hv nft delete table inet ctonly ;;
	bridged-pc-*) lab_exec hv nft delete table inet portcullis; lab_exec hv nft delete table bridge portcullis ;;
	*) lab_exec hv nft delete table inet portcullis ;;
	esac
}
