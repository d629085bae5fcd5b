#!/bin/bash
# Hostile review (get another customer filtered, confirmation): a suspect
# is confirmed by "confirm-probes (20) more first contacts within
# hold-timeout, failed or held back by the kernel".  Held back, every new
# destination of the VPS counts, whoever it is for: the kernel holds the
# VPS's own ordinary traffic too, and its answers never come (the SYNs are
# dropped), so nothing tells it from a scanner going on.  DETECTION.md
# says a stranger must make a VPS open about 25 contacts to silent hosts
# within a minute to get it filtered; for any VPS that makes 20 new
# destinations a minute of its own (a crawler, a feed reader, a mail
# server delivering to new MXes, a resolver, a DHT or Tor node), a stranger
# needs only the walk's threshold: the 6 pingbacks of
# scan_induced_victim.sh.  Holding the VPS even discards the successes its
# walk banked (pc_scan_held restarts a walk with Λ < 0), so its own answers
# do not shield it; and its held SYNs are retransmitted (1, 3, 7, 15 s):
# with more than 16 held destinations the dedup ring forgets them and each
# retransmission counts again.
# Here vps-201 runs the pingback-like fetcher of scan_induced_victim.sh
# and a crawler opening one new connection a second, all answered.
# Goal under test: a VPS whose outbound contacts are requests a stranger
# made to its services is not filtered for 6 of them (confirmation's
# purpose), busy or not.
# Seen on main (LAB_PREFIX=pchr2): crawler alone 30 s, no incident; then 6
# pingbacks from a stranger: a fast-scan incident 19 s later (5 failed,
# 0 answered, "confirming_first_contacts": 20, the sample only the 5
# induced hosts), vps-201 filtered 1 h.  RATE=0.5 (30 a minute, pchr6):
# incident 38 s after the pingbacks; RATE=0.5 PINGBACKS=5 (pchr5): none.
# Usage: scan_busy_victim_confirmed.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/../..
export LAB_PREFIX=${LAB_PREFIX:-pchr} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
. "$here/../scanlab.sh"
sl_up "$1" "$2" nostart
# shellcheck disable=SC2046
pc vps add vps-201 --site lenoir --owner crawl@example.net $(pc_vps_link VPS201) --by lab >/dev/null 2>&1
check "agent starts" agent_start
# the web: 192.0.2.10-74 answer on every TCP port
for i in $(seq 60 74); do ip -n "$LAB_INET" addr add "192.0.2.$i/32" dev eth0; done
lab_exec inet nft -f - <<'NFT'
table ip web {
        chain pre {
                type nat hook prerouting priority dstnat;
                ip daddr 192.0.2.10-192.0.2.74 tcp dport != 80 redirect to :80
        }
}
NFT
lab_bg fetcher vps201 "$PY" -c '
import http.server, urllib.parse, urllib.request
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        try:
            urllib.request.urlopen(q["url"][0], timeout=3).read(1024)
            r = b"fetched\n"
        except Exception as e:
            r = ("failed: %s\n" % e).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(r)
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), H).serve_forever()
' >/dev/null
lab_wait_port vps201 127.0.0.1 8080 5 >/dev/null 2>&1
check "(control) the fetcher fetches the lab's web page" \
        bash -c "ip netns exec '$LAB_INET' curl -s --max-time 5 'http://$VPS201_V4:8080/?url=http://$LAB_INET_V4/' | grep -q fetched"
# vps-201's own business: one new site a second (host k mod 65, a new
# port each round), each connection kept 5 s
RATE=${RATE:-1}
lab_bg crawler vps201 "$PY" -c '
import socket, sys, threading, time
rate = float(sys.argv[1])
ok = [0, 0]
def one(k):
    s = socket.socket(); s.settimeout(10)
    try:
        s.connect(("192.0.2.%d" % (10 + k % 65), 2000 + k // 65)); ok[0] += 1
        time.sleep(5)
    except OSError:
        ok[1] += 1
    s.close()
k = 0
while True:
    threading.Thread(target=one, args=(k,), daemon=True).start()
    k += 1
    if k % 10 == 0:
        print("%.0f opened %d connected %d failed %d" % (time.time(), k, ok[0], ok[1]), flush=True)
    time.sleep(1 / rate)
' "$RATE" >/dev/null
sleep 30
inc0=$(incidents vps-201 scan)
echo "     the crawler alone, 30 s: $(tail -1 "$LAB_DIR/log/crawler.log"); scan incidents $inc0"
check "(control: the crawler alone is no scan incident)" test "$inc0" = 0
N=${PINGBACKS:-6}
echo "# a stranger on the internet: $N pingbacks naming hosts that do not answer"
t0=$(lab_now_ms)
pids=()
for i in $(seq 130 $((129 + N))); do
        ip netns exec "$LAB_INET" curl -s --max-time 6 "http://$VPS201_V4:8080/?url=http://192.0.2.$i/" >/dev/null &
        pids+=($!)
done
wait "${pids[@]}"
for _ in $(seq 1 50); do
        [ "$(incidents vps-201 scan)" -gt 0 ] && break
        sleep 1
done
t1=$(lab_now_ms)
echo "     $((t1 - t0)) ms after the pingbacks: scan incidents $(incidents vps-201 scan);" \
     "filtered: $(filtered "$VPS201_IF" && echo yes || echo no); crawler: $(tail -1 "$LAB_DIR/log/crawler.log")"
grep 'vps-201' "$LAB_DIR/log/portcullisd.log" | sed 's/^/       /' | tail -6
ev=$(sql "SELECT evidence FROM incident WHERE vps_id='vps-201' AND kind='scan'" | head -c 400)
[ -n "$ev" ] && echo "     evidence: $ev"
check "vps-201, busy but only answering a stranger's $N requests, has no scan incident" \
        test "$(incidents vps-201 scan)" = 0
check_not "... and is not filtered" filtered "$VPS201_IF"
lab_summary
