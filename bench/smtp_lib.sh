# Shared by bench/smtp.sh and bench/smtp_cpu.sh: the SMTP proxy's lab, and
# what both measure with.  Sourced after tests/lab/lab.sh and common.sh,
# with $build, $root and die() set.

# smtp_bench_up: the lab (no servers), vps-101 registered at site lenoir on a
# copy of its profile with limits a benchmark does not reach, no spam or
# flood detection; the agent and the proxy in hv; two smtp-sinks in inet
# (SINK25 behind the redirected port, SINK2526 not); the floor relay
# (FLOOR, bench/relay_floor on $FLOOR_ADDR:2527 to the proxy's sink) and,
# with SMTP_FLOOR_SPLICE=1, its splice() variant (FLOOR_SPLICE, :2528).
# Sets floor_paths ("floor" or "floor floor_splice").
smtp_bench_up() {
	lab_up --trap --no-servers || die "lab_up failed"

	# The lab's config, pointing at a copy of provider A's profile with limits
	# that a benchmark does not hit, and no spam or flood detection.
	pc_setup "$build" "$root"
	mkdir -p "$LAB_DIR/profiles"
	sed -e '/^  limits:/,/^  [a-z]/{
	s/messages-per-hour: .*/messages-per-hour: 10000000/
	s/recipients-per-message: .*/recipients-per-message: 1000/
	s/recipients-per-hour: .*/recipients-per-hour: 10000000/
	s/sessions-per-vps: .*/sessions-per-vps: 20000/
	}' "$root/etc/profiles/lenoir.yaml" >"$LAB_DIR/profiles/lenoir.yaml"
	# The spam and flood detectors would filter vps-101 (200 messages in an
	# hour; 20,000 packets/s to the sink).
	sed -i -e "s|^  - $PC_ROOT/etc/profiles/lenoir.yaml\$|  - $LAB_DIR/profiles/lenoir.yaml|" \
		-e "s|^  max-sessions: .*|  max-sessions: 20000|" \
		-e '/^  spam:$/,/^  [a-z]/s/^    enabled: true$/    enabled: false/' \
		-e '/^  flood:$/,/^  [a-z]/s/^    enabled: true$/    enabled: false/' "$PC_CFG"
	grep -q "sessions-per-vps: 20000" "$LAB_DIR/profiles/lenoir.yaml" &&
		grep -q "^  - $LAB_DIR/profiles/lenoir.yaml\$" "$PC_CFG" && grep -q "^  max-sessions: 20000" "$PC_CFG" &&
		sed -n '/^  spam:$/,/^  [a-z]/p' "$PC_CFG" | grep -q "^    enabled: false$" &&
		sed -n '/^  flood:$/,/^  [a-z]/p' "$PC_CFG" | grep -q "^    enabled: false$" ||
		die "could not write the benchmark's config"

	pc vps add vps-101 --site lenoir --owner ada@example.net --iface "$VPS101_IF" \
		--addr "$VPS101_V4NET" --addr "$VPS101_V6NET" --by bench >/dev/null 2>&1 || die "pc vps add failed"
	agent_start >/dev/null || die "portcullisd did not start: $(tail -5 "$LAB_DIR/log/portcullisd.log")"
	smtpd_start >/dev/null || die "portcullis-smtpd did not start: $(tail -5 "$LAB_DIR/log/portcullis-smtpd.log")"

	# The MX: two smtp-sinks in inet, one on the redirected port, one not.
	SINK25=$(lab_bg sink25 inet smtp-sink -u nobody -c -m 15000 -t 600 "$LAB_INET_V4:25" 4096)
	SINK2526=$(lab_bg sink2526 inet smtp-sink -u nobody -c -m 15000 -t 600 "$LAB_INET_V4:2526" 4096)
	lab_wait_port inet "$LAB_INET_V4" 25 5 >/dev/null && lab_wait_port inet "$LAB_INET_V4" 2526 5 >/dev/null ||
		die "smtp-sink did not start: $(cat "$LAB_DIR"/log/sink*.log)"

	# The floor: a plain relay on hv's own address (the VPS's gateway), to the
	# proxy's sink; with SMTP_FLOOR_SPLICE=1 a second one that splices.
	FLOOR_ADDR=203.0.113.1
	FLOOR=$(lab_bg floor hv "$build/bench/relay_floor" "$FLOOR_ADDR:2527" "$LAB_INET_V4:25")
	floor_paths=floor
	if [ "${SMTP_FLOOR_SPLICE:-0}" = 1 ]; then
		FLOOR_SPLICE=$(lab_bg floor_splice hv "$build/bench/relay_floor" --splice "$FLOOR_ADDR:2528" "$LAB_INET_V4:25")
		floor_paths="floor floor_splice"
	fi
	wait_for 5 bash -c "ip netns exec $LAB_HV ss -ltnH | grep -q '$FLOOR_ADDR:2527 '" ||
		die "relay_floor did not start: $(cat "$LAB_DIR/log/floor.log")"
}

sink_count() { # NAME: messages the sink has received (its -c counters)
	local n
	n=$(tr '\r' '\n' <"$LAB_DIR/log/$1.log" | grep -o 'mesg=[0-9]*' | tail -1)
	n=${n#mesg=}
	echo "${n:-0}"
}
