#!/bin/bash
# Hostile review (get another customer filtered): the walk counts every
# first contact a VPS opens, whoever asked for it.  Many ordinary services
# open connections to destinations a stranger chooses: WordPress's
# pingback (on by default: xmlrpc.php pingback.ping fetches the "source"
# URL), link previews (Mastodon, Matrix, chat bots), webhooks a user sets,
# a mail server's resolver asking the name servers of the sender's domain
# or of the client's reverse zone (NS records the attacker points at
# silent addresses).  Here vps-201 runs such a fetcher on port 8080
# (GET /?url=URL fetches URL with a 3 s timeout, as pingback does), and a
# stranger on the internet asks it for 6 URLs on hosts that do not answer.
# The 6 failed first contacts are vps-201's: a fast-scan incident, and
# provider A filters vps-201 outbound for an hour -- the next time 24 h,
# the third time within 30 days a suspension (escalation.steps).  The
# stranger sent 6 HTTP requests and is nobody's incident.
# Goal under test: a VPS whose outbound contacts are requests a stranger
# made to its services (inbound first) is not filtered for them; at least
# not after 6 requests.
# Seen on main (LAB_PREFIX=pchr): 6 requests from the stranger, a fast-scan
# incident of vps-201 (5 failed first contacts, 0 answered, "horizontal")
# and its outbound filter about 3 s later; the stranger: nothing.
# Fixed: the fast test's finding makes a suspect, held back for a minute;
# an incident only if it makes 20 more first contacts meanwhile
# (detectors.scan.confirm-probes).  The 6 requests: no incident, released.
# Usage: scan_induced_victim.sh BUILD_DIR SOURCE_ROOT
set -u
here=$(dirname "$(readlink -f "$0")")
lab=$here/..
export LAB_PREFIX=${LAB_PREFIX:-pchr} LAB_QUIET=1
. "$lab/lab.sh"
. "$lab/common.sh"
. "$here/scanlab.sh"
sl_up "$1" "$2" nostart
# shellcheck disable=SC2046
pc vps add vps-201 --site lenoir --owner blog@example.net $(pc_vps_link VPS201) --by lab >/dev/null 2>&1
check "agent starts" agent_start
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
echo "# a stranger on the internet: 6 pingbacks naming hosts that do not answer"
pids=()
for i in 130 131 132 133 134 135; do
        ip netns exec "$LAB_INET" curl -s --max-time 6 "http://$VPS201_V4:8080/?url=http://192.0.2.$i/" >/dev/null &
        pids+=($!)
done
wait "${pids[@]}"
sleep 3
ev=$(sql "SELECT evidence FROM incident WHERE vps_id='vps-201' AND kind='scan'" | head -c 240)
echo "     vps-201 scan incidents: $(incidents vps-201 scan); filtered: $(filtered "$VPS201_IF" && echo yes || echo no)"
[ -n "$ev" ] && echo "     evidence: $ev"
check "vps-201, which only answered requests, has no scan incident" test "$(incidents vps-201 scan)" = 0
check_not "... and is not filtered" filtered "$VPS201_IF"
check "... and still reaches the web" lab_exec vps201 curl -sf --max-time 3 "http://$LAB_INET_V4/"
lab_summary
