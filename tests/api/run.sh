#!/bin/bash
# The HTTP API against a real portcullis-apid on loopback and a temporary
# database: the authorisation matrix (every route x every role x own and
# another customer's object), the error statuses, the limits, the fleet
# (moves, and a real portcullisd --host in a network namespace of its own
# beating, woken by the API, going stale), and that docs/openapi.yaml
# describes exactly the routes the server serves.
# Usage: run.sh BUILD_DIR SOURCE_ROOT
set -u
build=$(readlink -f "$1")
root=$(readlink -f "$2")
tmp=$(mktemp -d /tmp/portcullis-api.XXXXXX)
pids=()
cleanup() {
        for p in "${pids[@]+"${pids[@]}"}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
        rm -rf "$tmp"
}
trap cleanup EXIT
cd "$root"
chmod 755 "$tmp"
mkdir "$tmp/db"
db="sqlite:$tmp/db/p.db"
pc() { "$build/src/cli/portcullis" -c etc/portcullis.yaml --db "$db" "$@"; }
pc init >/dev/null || exit 1
pc vps add vps-a1 --owner ann@example.org --iface tapa1 --addr 198.51.100.11 --by t >/dev/null 2>&1 || exit 1
pc vps add vps-b1 --owner bob@example.org --iface tapb1 --addr 198.51.100.21 --by t >/dev/null 2>&1 || exit 1
for r in admin support; do
        pc token create "t-$r" --role "$r" --by t >"$tmp/tok-$r" 2>/dev/null || exit 1
done
# The agent role's matrix with a token of every host (portcullisd's own
# response engine acts so); a hypervisor's hooks hold one bound to it.
pc token create t-agent --role agent --any-host --by t >"$tmp/tok-agent" 2>/dev/null || exit 1
pc token create hv1-hooks --role agent --host hv1 --by t >"$tmp/tok-hv1" 2>/dev/null || exit 1
pc token create ann --role customer --customer ann@example.org --by t >"$tmp/tok-ann" 2>/dev/null || exit 1
pc token create bob --role customer --customer bob@example.org --by t >"$tmp/tok-bob" 2>/dev/null || exit 1
pc token create gone --role admin --by t >"$tmp/tok-gone" 2>/dev/null || exit 1
pc token revoke gone --by t >/dev/null || exit 1
user=()
if [ "$(id -u)" = 0 ]; then
        chown -R nobody "$tmp/db"
        user=(--user nobody)
fi

# The fleet's checks (a real portcullisd --host in a network namespace of
# its own, woken by the API): the shipped config with the agent's sockets
# here, its periodic pass every 2 s (stale after 6 s).
mkdir -m 755 "$tmp/run"
sed -e "s|control-socket: /run/portcullis/|control-socket: $tmp/run/|" \
    -e "s|attempts-interval: .*|attempts-interval: 2s|" \
    -e "s|  - profiles/|  - $root/etc/profiles/|" \
    -e "s|^  templates: templates|  templates: $root/etc/templates|" \
    etc/portcullis.yaml >"$tmp/fleet.yaml"
chmod 644 "$tmp/fleet.yaml"

# start_apid LOG ARGS...: starts apid on a free port (in this shell, so
# that cleanup knows it), with $apid_cfg's config (the shipped one unless
# set).  apid_port LOG: waits for it and prints the port.
start_apid() {
        local log=$1
        shift
        "$build/src/api/portcullis-apid" -c "${apid_cfg:-etc/portcullis.yaml}" --db "$db" --port 0 \
                "${user[@]+"${user[@]}"}" \
                --agent-metrics "" "$@" >/dev/null 2>"$log" &
        pids+=($!)
}
apid_port() {
        local port
        for _ in $(seq 1 50); do
                port=$(sed -n 's/.*listening on 127.0.0.1 port \([0-9]*\) .*/\1/p' "$1")
                [ -n "$port" ] && { echo "$port"; return 0; }
                sleep 0.1
        done
        echo "apid did not start:" >&2
        cat "$1" >&2
        return 1
}
# HTTPS: a self-signed certificate for 127.0.0.1, read as root before the
# privileges go (the key is root's only).
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
        -keyout "$tmp/key.pem" -out "$tmp/cert.pem" >/dev/null 2>&1 || { echo "FAIL openssl"; exit 1; }
chmod 600 "$tmp/key.pem"
start_apid "$tmp/apid.log" --rate 1000 --burst 1000
start_apid "$tmp/apid-slow.log" --rate 1 --burst 3
start_apid "$tmp/apid-tls.log" --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem"
apid_cfg=$tmp/fleet.yaml start_apid "$tmp/apid-fleet.log" --rate 1000 --burst 1000
port=$(apid_port "$tmp/apid.log") || exit 1
fleet=$(apid_port "$tmp/apid-fleet.log") || exit 1
slow=$(apid_port "$tmp/apid-slow.log") || exit 1
tls=$(apid_port "$tmp/apid-tls.log") || exit 1
tls_fail=0
out=$(curl -sS --cacert "$tmp/cert.pem" -H "Authorization: Bearer $(cat "$tmp/tok-admin")" "https://127.0.0.1:$tls/v1/whoami" 2>&1)
if grep -q '"role": "admin"' <<<"$out"; then echo "ok   https: whoami over TLS, certificate verified"
else echo "FAIL https: $out"; tls_fail=1; fi
if curl -sS -m 5 "http://127.0.0.1:$tls/v1/whoami" >/dev/null 2>&1; then
        echo "FAIL https: plain HTTP answered on the TLS port"; tls_fail=1
else echo "ok   https: plain HTTP refused on the TLS port"; fi
grep -q "port $tls (https)" "$tmp/apid-tls.log" || { echo "FAIL https: the log does not say https"; tls_fail=1; }
"$build/src/api/portcullis-apid" --routes >"$tmp/routes" || exit 1

PC_CLI="$build/src/cli/portcullis" PC_DB="$db" PC_DB_FILE="$tmp/db/p.db" PC_AGENT="$build/src/agent/portcullisd" \
        PC_FLEET_CFG="$tmp/fleet.yaml" PC_FLEET_PORT="$fleet" python3 "$root/tests/api/api_test.py" "$port" "$slow" "$tmp" "$root/docs/openapi.yaml" "$tmp/routes"
rc=$?
[ $tls_fail = 0 ] || rc=1
if [ $rc != 0 ]; then
        echo "--- apid log (tail)"
        tail -20 "$tmp/apid.log"
        [ -f "$tmp/agent.log" ] && { echo "--- portcullisd --host hv1 log (tail)"; tail -20 "$tmp/agent.log"; }
fi
# Stopped as systemd stops it: a sanitizer's report (the ASan build) fails the test.
for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
pids=()
# The agent of the fleet's checks too, stopped by the test.
logs=("$tmp"/apid*.log)
[ -f "$tmp/agent.log" ] && logs+=("$tmp/agent.log")
if grep -lE "ERROR: (Address|Leak)Sanitizer|runtime error:" "${logs[@]}"; then
        grep -hE -A12 "ERROR: (Address|Leak)Sanitizer|runtime error:" "${logs[@]}" | head -40
        rc=1
fi
# apid ran as nobody and wrote the database: nothing was left owned by root.
if [ "$(id -u)" = 0 ] && [ -n "$(find "$tmp/db" ! -user nobody)" ]; then
        echo "FAIL files in the database folder not owned by nobody: $(find "$tmp/db" ! -user nobody)"
        rc=1
fi
exit $rc
