# Shared setup for the fleet_hostile repros (sourced): one throwaway
# PostgreSQL cluster, an "inet" namespace with a bridge and a tcp/8080
# listener, N hypervisor namespaces (pch...-hvN) each with its agent.
# Everything is removed in the EXIT trap.  Usage in a repro:
#   . "$(dirname "$0")/lib.sh"; fh_init 2  (2 hypervisors)
# BUILD (default: build/ of the worktree) holds the binaries.
set -u
FH_HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
FH_SRC=$(readlink -f "$FH_HERE/../..")
FH_BUILD=$(readlink -f "${BUILD:-$FH_SRC/build}")
# Its own prefix whatever the caller set (make test may set one for every
# lab): each repro, then each run, a namespace set of its own.
export LAB_PREFIX=pch$$ LAB_QUIET=1
. "$FH_SRC/tests/lab/lab.sh"
. "$FH_SRC/tests/lab/common.sh"
. "$FH_SRC/tests/lab/fleet_topology.sh"
PC_BIN=$FH_BUILD/src/cli/portcullis PC_AGENT=$FH_BUILD/src/agent/portcullisd
case $LAB_PREFIX in pch*) ;; *) echo "LAB_PREFIX must start with pch" >&2; exit 2 ;; esac

fh_cleanup() {
        "$FH_SRC/tests/pg/cluster.sh" stop "$LAB_DIR/pg" >/dev/null 2>&1
        lab_down >/dev/null 2>&1
        [ -n "${LAB_DIR:-}" ] && [ -f "$LAB_DIR/.portcullis-lab" ] && rm -rf "$LAB_DIR"
}

fh_init() { # NHOSTS
        local n=$1 h
        # socat and ping are the lab's: a repro run alone on a fresh
        # machine installs them, not an earlier scenario
        lab_deps >/dev/null || { echo "SETUP the lab's packages do not install"; exit 2; }
        LAB_DIR=$(mktemp -d /tmp/portcullis-fh.XXXXXX)
        export LAB_DIR
        touch "$LAB_DIR/.portcullis-lab"
        chmod 0755 "$LAB_DIR"
        mkdir -p "$LAB_DIR/log"
        : >"$LAB_DIR/pids"
        trap fh_cleanup EXIT
        trap 'exit 1' INT TERM
        "$FH_SRC/tests/pg/cluster.sh" start "$LAB_DIR/pg" >/dev/null || { echo "SETUP the PostgreSQL cluster does not start"; exit 2; }
        FH_URL="postgresql:///portcullis?host=$LAB_DIR/pg&port=5432&user=portcullis"
        fleet_topology "$n"
        for h in $(seq 1 "$n"); do fleet_config "$h" "$FH_URL" "$FH_SRC"; done
        lab_bg listen8080 inet socat "TCP-LISTEN:8080,fork,reuseaddr" SYSTEM:true >/dev/null
}
# fh_one_vps [ATTEMPTS_INTERVAL]: one hypervisor (hv1) with its agent
# (its periodic pass every ATTEMPTS_INTERVAL, 1s by default), enforcing
# vps-s (site lenoir, behind interface vs, 198.51.100.15) with
# anti-spoofing; exits 2 (set-up failed) if any of it does not come up.
fh_one_vps() {
        fh_init 1
        vps_link s 1 vs 15
        pc_on 1 init >/dev/null 2>&1 || { echo "SETUP init"; exit 2; }
        pc_on 1 vps add vps-s --site lenoir --owner sue@example.org --iface vs --addr 198.51.100.15 --host hv1 \
                --by lab >/dev/null || exit 2
        [ -z "${1:-}" ] || sed -i "s/attempts-interval: .*/attempts-interval: $1/" "$LAB_DIR/hv1.yaml"
        agent_up 1 || { echo "SETUP agent"; exit 2; }
        wait_for 10 sh -c "ip netns exec $(ns hv1) nft list map inet portcullis antispoof | grep -q vs" ||
                { echo "SETUP vs"; exit 2; }
}
# fh_migrated_vps: two hypervisors with their agents; vps-m (behind vm1 of
# hv1, 198.51.100.14) filtered on tcp/8080, then moved to hv2 (interface
# vm2) and arrived there, its VM still on hv1 (a live migration's copy);
# exits 2 (set-up failed) if any of it does not come up.
fh_migrated_vps() {
        fh_init 2
        vps_link m 1 vm1 14
        pc_on 1 init >/dev/null 2>&1 || { echo "SETUP init"; exit 2; }
        pc_on 1 vps add vps-m --owner max@example.org --iface vm1 --addr 198.51.100.14 --host hv1 --by lab \
                >/dev/null || exit 2
        pc_on 1 filter place vps-m --ports tcp/8080 --by sam --reason "abuse report" >/dev/null || exit 2
        agent_up 1 && agent_up 2 || { echo "SETUP agents"; exit 2; }
        wait_for 5 blocked m 8080 || { echo "SETUP the filter does not hold"; exit 2; }
        pc_on 2 vps move vps-m --host hv2 --iface vm2 --by orchestrator --reason "live migration" >/dev/null || exit 2
        wait_for 5 sh -c "ip netns exec $(ns hv1) $PC_BIN -c $LAB_DIR/hv1.yaml --json audit vps-m | grep -q vps.arrive" ||
                { echo "SETUP no arrival"; exit 2; }
}
# fh_pg_freeze: the cluster's postmaster and its backends stopped (SIGSTOP:
# connections open, nothing answered), and made to go on (SIGCONT) however
# the repro ends; fh_pg_thaw: now.
fh_pg_pids() {
        local pm
        pm=$(head -1 "$LAB_DIR/pg/data/postmaster.pid" 2>/dev/null) || return
        echo "$pm" $(pgrep -P "$pm")
}
fh_pg_thaw() { local p; for p in $(fh_pg_pids); do kill -CONT "$p" 2>/dev/null; done; }
fh_pg_freeze() {
        local p
        trap 'fh_pg_thaw; fh_cleanup' EXIT
        [ -n "$(fh_pg_pids)" ] || { echo "SETUP no postmaster"; exit 2; }
        for p in $(fh_pg_pids); do kill -STOP "$p"; done
}
# fh_hv2_vps_and_hv1_token: two hypervisors with their agents; vps-b (behind
# vb of hv2, 198.51.100.12) filtered on tcp/8080; hv1's hooks' agent token
# bound to hv1 in TOK, and hv1's portcullis-apid on 127.0.0.1:8470 there.
# api METHOD PATH [BODY] prints the status of a request with TOK (the body
# of the answer in $LAB_DIR/api.out).
fh_hv2_vps_and_hv1_token() {
        fh_init 2
        vps_link b 2 vb 12
        pc_on 1 init >/dev/null 2>&1 || { echo "SETUP init"; exit 2; }
        pc_on 1 vps add vps-b --owner bob@example.org --iface vb --addr 198.51.100.12 --host hv2 --by lab \
                >/dev/null || exit 2
        pc_on 1 filter place vps-b --ports tcp/8080 --by sam --reason "abuse report" >/dev/null || exit 2
        agent_up 1 && agent_up 2 || { echo "SETUP agents"; exit 2; }
        wait_for 5 blocked b 8080 || { echo "SETUP the filter does not hold"; exit 2; }
        TOK=$(pc_on 1 token create hv1-hooks --role agent --host hv1 --by lab 2>/dev/null)
        [ -n "$TOK" ] || { echo "SETUP no token"; exit 2; }
        lab_bg apid hv1 "$FH_BUILD/src/api/portcullis-apid" -c "$LAB_DIR/hv1.yaml" --user nobody --port 8470 >/dev/null
        wait_for 5 grep -q "listening on" "$LAB_DIR/log/apid.log" || { echo "SETUP apid"; cat "$LAB_DIR/log/apid.log"; exit 2; }
}
api() {
        ip netns exec "$(ns hv1)" curl -sS -m 5 -o "$LAB_DIR/api.out" -w '%{http_code}' -X "$1" \
                -H "Authorization: Bearer $TOK" -H "Content-Type: application/json" ${3:+--data "$3"} \
                "http://127.0.0.1:8470$2"
}
# fh_spoof_timed: vps-s (fh_one_vps) sends from an address not its own;
# FH_TOOK: ms until hv1's kernel suspends it ("" if not within 8 s);
# FH_CONTROL: whether hv1's control socket answers then ("answers").
fh_spoof_timed() {
        local t0
        ip -n "$(ns s)" addr add 198.51.100.99/32 dev eth0
        t0=$(lab_now_ms)
        ip netns exec "$(ns s)" ping -c 3 -i 0.3 -W 1 -I 198.51.100.99 192.0.2.2 >/dev/null 2>&1
        FH_TOOK=
        wait_for 8 sh -c "ip netns exec $(ns hv1) nft list set inet portcullis suspended 2>/dev/null | grep -q '\"vs\"'" &&
                FH_TOOK=$(($(lab_now_ms) - t0))
        FH_CONTROL="does not answer"
        timeout 3 ip netns exec "$(ns hv1)" "$PC_BIN" -c "$LAB_DIR/hv1.yaml" status >/dev/null 2>&1 && FH_CONTROL=answers
}
# fh_status_probe N PAUSE: asks hv1's control socket `status` N times,
# PAUSE s apart; FH_WORST: the slowest answer in ms, FH_SLOW: how many
# took over 500 ms (unanswered: 5 s).
fh_status_probe() {
        local i s0 dt
        FH_WORST=0 FH_SLOW=0
        for i in $(seq 1 "$1"); do
                s0=$(lab_now_ms)
                # (Its exit says the agent's health, not whether it answered.)
                timeout 5 ip netns exec "$(ns hv1)" "$PC_BIN" -c "$LAB_DIR/hv1.yaml" status >/dev/null 2>&1
                dt=$(($(lab_now_ms) - s0))
                [ "$dt" -gt "$FH_WORST" ] && FH_WORST=$dt
                [ "$dt" -gt 500 ] && FH_SLOW=$((FH_SLOW + 1))
                sleep "$2"
        done
        return 0
}
# fh_hold_reload [N]: gdb (non-stop, fed through fd 8; its log
# $LAB_DIR/gdbN.log) holds hv1's reload thread after its load (the line
# that times it in src/agent/reload.c) while the loop runs on; then
# SIGHUP.  Let go with fh_release_reload.
fh_hold_reload() {
        local line
        command -v gdb >/dev/null || { echo "SETUP no gdb"; exit 2; }
        line=$(grep -n "rl->us = pc_elapsed_us(&t0);" "$FH_SRC/src/agent/reload.c" | cut -d: -f1)
        [ -n "$line" ] || { echo "SETUP no line to hold the reload thread at"; exit 2; }
        rm -f "$LAB_DIR/gdbfifo${1:-}"
        mkfifo "$LAB_DIR/gdbfifo${1:-}"
        gdb -q -nx <"$LAB_DIR/gdbfifo${1:-}" >"$LAB_DIR/gdb${1:-}.log" 2>&1 &
        exec 8>"$LAB_DIR/gdbfifo${1:-}"
        printf 'set pagination off\nset confirm off\nset non-stop on\nattach %s\nbreak reload.c:%s\ncontinue -a &\n' \
                "${AGENT[1]}" "$line" >&8
        sleep 3
        kill -HUP "${AGENT[1]}"
        wait_for 20 grep -q "hit Breakpoint 1" "$LAB_DIR/gdb${1:-}.log" ||
                { echo "SETUP the reload thread was not held"; exit 2; }
}
fh_release_reload() {
        printf 'delete\ndetach\nquit\n' >&8
        exec 8>&-
}
# fh_hold_at_fetch_cmds: gdb commands that stop the agent at its read of a
# VPS (pc_store_vps_fetch), touch $LAB_DIR/fetch-hit, wait for
# $LAB_DIR/frozen, then let it go on, detached.
fh_hold_at_fetch_cmds() {
        cat <<CMDS
break pc_store_vps_fetch
commands 1
shell touch $LAB_DIR/fetch-hit; while [ ! -e $LAB_DIR/frozen ]; do sleep 0.05; done
delete
detach
quit
end
CMDS
}
