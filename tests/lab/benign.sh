#!/bin/bash
# Lab scenario: the benign corpus, zero incidents.  Real clients in VPS
# namespaces against real servers in the internet namespace, each workload
# run twice: from a VPS at provider A's site (lenoir: the kernel holds back
# a VPS's unanswered first contacts after hold-after of them, and a scanner
# is filtered) and from one at provider B's (milano: nothing held back,
# incidents only), the baseline.  Each must complete with exactly the
# outcome its servers give, be no incident (of any kind) and, at lenoir,
# not be filtered; both wall times go to a table (docs/DETECTION.md,
# "Benign corpus").
#
#   crawl    curl --parallel: 500 URLs from 50 hosts, 20 at a time, one
#            404 per host, and 5 hosts' port 8080 closed (RST), in a
#            fixed shuffled order
#   apt      curl as apt fetches: from 3 mirrors at once, an InRelease and
#            3 large files per mirror over one kept-alive connection each,
#            the mirrors sending at 20 MB/s a connection (fast mirrors: 480
#            Mbit/s in all; unpaced, the lab's veths carry 0.6-0.9 Gbit/s,
#            near the flood meters' 1 Gbit/s line, over which everything to
#            one VPS is an attack on it by definition)
#   dns      dig: 300 queries (250 names, 50 NXDOMAIN) to dnsmasq, each
#            from a new source port
#   backup   rsync over ssh (sshd on a host key made here) of a tree
#            of 1,000 files
#   torrent  a BitTorrent-like client (tests/lab/peer.py): 30 peers over
#            TCP (peer wire handshake, one block) and UDP (DHT ping) on
#            high ports outside every profile's BitTorrent ports; 2 peers
#            have no host, 2 a closed port
#   monitor  fping and check_tcp (monitoring-plugins-basic): 30 hosts,
#            ICMP and TCP/80, 4 rounds 2 s apart
# A real MTA relaying 100 legitimate messages is lab/spam (spam.sh).
#
# Usage: benign.sh BUILD_DIR SOURCE_ROOT
# BENIGN_TABLE=FILE also appends the table's rows to FILE (kept after the
# lab is gone); BENIGN_HTTP_BACKLOG=N gives the web server's listen queue
# (default 511, see below).
set -u
here=$(dirname "$(readlink -f "$0")")
export LAB_PREFIX=${LAB_PREFIX:-pcbn} LAB_QUIET=1
. "$here/lab.sh"
. "$here/common.sh"

lab_deps || exit 1
lab_install openssh-server rsync fping monitoring-plugins-basic bind9-dnsutils dnsmasq-base || exit 1
lab_up --trap --no-vps || { echo "FAIL lab_up"; exit 1; }
pc_setup "$1" "$2"
DB=$LAB_DIR/portcullis.db
sql() { sqlite3 "$DB" "$1"; }
PY=/usr/bin/python3

# One VPS per workload at each site, so that an incident names its
# workload: vps-121..126 at lenoir, vps-221..226 at milano.
WORKLOADS="crawl apt dns backup torrent monitor busy"
RUN=${BENIGN_ONLY:-$WORKLOADS} # BENIGN_ONLY="torrent": run only these
n=0
for w in $WORKLOADS; do
        n=$((n + 1))
        lab_vps_add "vps12$n" "v12$n" "203.0.113.2$n" "2001:db8:12$n::" >/dev/null 2>&1 &&
                lab_vps_add "vps22$n" "v22$n" "198.51.100.3$n" "2001:db8:22$n::" >/dev/null 2>&1 ||
                { echo "FAIL lab_vps_add $w"; exit 1; }
        # shellcheck disable=SC2046 # word splitting of the link options is meant
        pc vps add "vps-12$n" --site lenoir --owner "a$n@example.net" $(pc_vps_link "VPS12$n") --by lab >/dev/null &&
                pc vps add "vps-22$n" --site milano --owner "b$n@example.it" $(pc_vps_link "VPS22$n") --by lab >/dev/null ||
                { echo "FAIL vps add ($w)"; exit 1; }
done
check "agent starts" agent_start

# The internet: crawled hosts 192.0.2.10-59, mirrors .60-62, the resolver
# .63, the backup host .64, peers .100-127 (.128 and .129 absent, reached
# through permanent neighbour entries as on a real uplink, so that their
# packets leave and vanish), monitored hosts .160-189.
for i in $(seq 10 64) $(seq 100 127) $(seq 160 189); do
        ip -n "$LAB_INET" addr add "192.0.2.$i/32" dev eth0
done
inet_mac=$(lab_exec inet cat /sys/class/net/eth0/address)
for i in 128 129; do
        ip -n "$LAB_HV" neigh replace "192.0.2.$i" lladdr "$inet_mac" dev "$LAB_UPLINK_IF" nud permanent
done

# The web server, in place of the lab's: http.server made like real
# servers, HTTP/1.1 (keep-alive) and a listen queue of 511 (nginx's);
# BENIGN_HTTP_BACKLOG=N gives it another.  Workload 7 meets a busy one.
www=$LAB_DIR/www
mkdir -p "$www/crawl" "$www/debian/dists/bookworm" "$www/debian/pool"
for k in $(seq 0 8); do head -c $((1024 + k * 3000)) /dev/urandom | base64 >"$www/crawl/p$k.html"; done
head -c 150000 /dev/urandom | base64 >"$www/debian/dists/bookworm/InRelease"
for k in $(seq 1 9); do head -c $((k * 1024 * 1024 + 4096 * k)) /dev/urandom >"$www/debian/pool/pkg$k.deb"; done
cat >"$LAB_DIR/httpd.py" <<'EOF'
import functools, http.server, socket, sys, time
class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    request_queue_size = int(sys.argv[3])
    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()
class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def copyfile(self, source, outputfile):
        # a mirror's pool: RATE bytes/s per connection, paced here since
        # a client's socket buffers take megabytes before it reads
        if not self.path.startswith("/debian/pool/"):
            return super().copyfile(source, outputfile)
        t0, sent = time.monotonic(), 0
        while chunk := source.read(65536):
            outputfile.write(chunk)
            sent += len(chunk)
            ahead = sent / RATE - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
RATE = int(sys.argv[2])
Server(("::", int(sys.argv[4]) if len(sys.argv) > 4 else 80), functools.partial(Handler, directory=sys.argv[1])).serve_forever()
EOF
lab_http=$(awk '$2 == "http" { print $1 }' "$LAB_DIR/pids")
kill "$lab_http"
wait_for 5 sh -c "! kill -0 $lab_http" || { echo "FAIL the lab's web server stops"; exit 1; }
lab_bg http11 inet "$PY" "$LAB_DIR/httpd.py" "$www" $((20 * 1000 * 1000)) "${BENIGN_HTTP_BACKLOG:-511}" >/dev/null
lab_wait_port inet 192.0.2.10 80 10 || { echo "FAIL http server"; exit 1; }
# and a busy one (workload 7): http.server's own 5-deep listen queue for
# all 50 hosts, on port 8081
lab_bg httpbusy inet "$PY" "$LAB_DIR/httpd.py" "$www" $((20 * 1000 * 1000)) 5 8081 >/dev/null
lab_wait_port inet 192.0.2.10 8081 10 || { echo "FAIL busy http server"; exit 1; }

# not_filtered IFACE: the agent's filter sets can be read and IFACE is in
# neither.
not_filtered() {
        local sets
        sets=$(nft_hv list set inet portcullis filter_out && nft_hv list set inet portcullis filter_in) || return 1
        ! grep -q "\"$1\"" <<<"$sets"
}
held_times() { grep -c "$1: more than 5 unanswered first contacts" "$LAB_DIR/log/portcullisd.log"; }

# workload NAME DESCRIPTION FUNC: runs FUNC VPS (which prints its outcome
# and succeeds if it is exactly what the servers give) from NAME's lenoir
# VPS, then from its milano VPS, timed; then, after the pending timeout,
# neither may be an incident or filtered.
workload() {
        local name=$1 what=$2 fn=$3 i=0 w v s out st t0 ms ms_a ms_b
        for w in $WORKLOADS; do i=$((i + 1)); [ "$w" = "$name" ] && break; done
        case " $RUN " in *" $name "*) ;; *) return 0 ;; esac
        echo "# $what"
        for s in lenoir milano; do
                if [ $s = lenoir ]; then v=vps12$i; else v=vps22$i; fi
                t0=$(lab_now_ms)
                out=$("$fn" "$v" 2>&1)
                st=$?
                ms=$(($(lab_now_ms) - t0))
                echo "$out" | sed 's/^/     /'
                check "$name from vps-${v#vps} ($s): completes with the servers' outcome (${ms} ms)" test "$st" = 0
                if [ $s = lenoir ]; then ms_a=$ms; else ms_b=$ms; fi
        done
        sleep 2.5 # the pending timeout (2 s) and a tick: every outcome judged
        for v in vps12$i vps22$i; do
                check "$name: vps-${v#vps} has no incident" \
                        test "$(sql "SELECT count(*) FROM incident WHERE vps_id='vps-${v#vps}'")" = 0
        done
        for v in v12$i v22$i; do
                check "$name: vps-${v#v} is not filtered (out or in)" not_filtered "$v"
        done
        sql "SELECT vps_id, kind, evidence FROM incident WHERE vps_id IN ('vps-12$i', 'vps-22$i')" |
                sed 's/^/     incident: /'
        grep -E "vps-(12|22)$i: " "$LAB_DIR/log/portcullisd.log" | sed 's/^/     agent: /' | tail -8
        echo "     held back $(held_times "vps-12$i") time(s) at lenoir"
        echo "$what|$ms_a ms|$ms_b ms" >>"$LAB_DIR/benign-table"
        [ -n "${BENIGN_TABLE:-}" ] && echo "$(date -u +%FT%TZ) $what|$ms_a ms|$ms_b ms" >>"$BENIGN_TABLE"
        return 0
}

# --- 1. crawl -------------------------------------------------------------
# 50 hosts x (p0..p8 and one missing page); hosts .14, .24, .34, .44, .54
# link to their port 8080 instead of p8, where nothing listens.
"$PY" - "$LAB_DIR/crawl.cfg" <<'EOF'
import random, sys
urls = []
for h in range(10, 60):
    for k in range(9):
        if k == 8 and h % 10 == 4:
            urls.append("http://192.0.2.%d:8080/" % h)
        else:
            urls.append("http://192.0.2.%d/crawl/p%d.html" % (h, k))
    urls.append("http://192.0.2.%d/crawl/missing-%d.html" % (h, h))
random.Random(1).shuffle(urls)
with open(sys.argv[1], "w") as f:
    for u in urls:
        f.write('url = "%s"\noutput = "/dev/null"\n' % u)
EOF
crawl_bytes=0
for k in $(seq 0 8); do
        s=$(stat -c %s "$www/crawl/p$k.html")
        crawl_bytes=$((crawl_bytes + s * (k == 8 ? 45 : 50)))
done
# crawl_of NAME VPS: curl over $LAB_DIR/NAME.cfg, 20 at a time; checks
# every outcome against what the servers hold.
crawl_of() {
        lab_exec "$2" timeout 60 curl -s --parallel --parallel-max 20 --connect-timeout 10 --max-time 30 \
                -K "$LAB_DIR/$1.cfg" -w '%{http_code} %{exitcode} %{size_download}\n' >"$LAB_DIR/$1-$2.out" 2>"$LAB_DIR/$1-$2.err"
        awk -v want="$crawl_bytes" '
                $1 == 200 && $2 == 0 { ok++; bytes += $3 } $1 == 404 && $2 == 0 { nf++ } $1 == "000" && $2 == 7 { refused++ }
                END { printf "200=%d 404=%d refused=%d other=%d bytes=%d (want 445 50 5 0 %d)\n", ok, nf, refused, NR - ok - nf - refused, bytes, want
                      exit !(ok == 445 && nf == 50 && refused == 5 && NR == 500 && bytes == want) }' "$LAB_DIR/$1-$2.out"
}
crawl() { crawl_of crawl "$1"; }
workload crawl "crawler: 500 URLs, 50 hosts, 20 in parallel, 50 404s, 5 closed ports" crawl

# --- 2. apt ---------------------------------------------------------------
apt_sums=$(cd "$www/debian" && sha256sum dists/bookworm/InRelease pool/*.deb | awk '{ print $1 }' | sort)
apt() {
        local d=$LAB_DIR/apt-$1 m pids=() st=0
        rm -rf "$d"
        mkdir -p "$d"
        for m in 0 1 2; do
                lab_exec "$1" timeout 60 curl -sf --connect-timeout 10 -w '%{num_connects} %{size_download}\n' \
                        -o "$d/InRelease.$m" "http://192.0.2.6$m/debian/dists/bookworm/InRelease" \
                        -o "$d/pkg$((3 * m + 1)).deb" "http://192.0.2.6$m/debian/pool/pkg$((3 * m + 1)).deb" \
                        -o "$d/pkg$((3 * m + 2)).deb" "http://192.0.2.6$m/debian/pool/pkg$((3 * m + 2)).deb" \
                        -o "$d/pkg$((3 * m + 3)).deb" "http://192.0.2.6$m/debian/pool/pkg$((3 * m + 3)).deb" \
                        >"$d/mirror$m.out" &
                pids+=($!)
        done
        for m in "${pids[@]}"; do wait "$m" || st=1; done
        local conns bytes sums
        conns=$(cat "$d"/mirror*.out | awk '{ n += $1 } END { print n + 0 }')
        bytes=$(cat "$d"/mirror*.out | awk '{ n += $2 } END { print n + 0 }')
        sums=$(cd "$d" && sha256sum InRelease.0 pkg*.deb | awk '{ print $1 }' | sort)
        echo "curl status $st, $conns connections for 12 files, $bytes bytes"
        [ "$st" = 0 ] && [ "$conns" = 3 ] && [ "$sums" = "$apt_sums" ] &&
                cmp -s "$d/InRelease.0" "$d/InRelease.1" && cmp -s "$d/InRelease.0" "$d/InRelease.2"
}
workload apt "apt-like: 3 mirrors at once, 4 files each over one connection ($(du -sm "$www/debian" | cut -f1) MB)" apt

# --- 3. dns ---------------------------------------------------------------
lab_bg dnsmasq inet dnsmasq --keep-in-foreground --no-resolv --no-hosts --no-poll --bind-interfaces \
        --listen-address=192.0.2.63 --port=53 --user=root --pid-file= --cache-size=0 \
        --address=/bn.example/192.0.2.10 --local=/nx.example/ \
        --log-queries=extra --log-facility="$LAB_DIR/dns-queries.log"
for i in $(seq 1 250); do echo "host$i.bn.example A"; done >"$LAB_DIR/dns.batch"
for i in $(seq 1 50); do echo "gone$i.nx.example A"; done >>"$LAB_DIR/dns.batch"
dns() {
        lab_exec "$1" timeout 60 dig @192.0.2.63 +tries=1 +time=2 +noall +comments +answer -f "$LAB_DIR/dns.batch" \
                >"$LAB_DIR/dns-$1.out" 2>&1
        local st=$? ok nx ans
        ok=$(grep -c 'status: NOERROR' "$LAB_DIR/dns-$1.out")
        nx=$(grep -c 'status: NXDOMAIN' "$LAB_DIR/dns-$1.out")
        ans=$(grep -c 'bn\.example\..*IN[[:space:]]*A[[:space:]]*192\.0\.2\.10$' "$LAB_DIR/dns-$1.out")
        echo "dig status $st: NOERROR $ok (answers $ans), NXDOMAIN $nx (want 250 250 50)"
        [ "$st" = 0 ] && [ "$ok" = 250 ] && [ "$ans" = 250 ] && [ "$nx" = 50 ]
}
workload dns "DNS: 300 queries to a resolver, each from a new source port" dns
case " $RUN " in *" dns "*) dns_vps="vps123 vps223" ;; *) dns_vps="" ;; esac
for v in $dns_vps; do
        V=$(_lab_var "$v")
        a=${V}_V4
        # counted by the resolver, which logs each query it is asked with its
        # source ("N ADDR/PORT query[A] NAME"): a capture can drop packets
        # under load, dnsmasq's synchronous log cannot
        grep -o " ${!a//./\\.}/[0-9]* query\\[A\\] " "$LAB_DIR/dns-queries.log" >"$LAB_DIR/dns-$v.queries"
        q=$(wc -l <"$LAB_DIR/dns-$v.queries")
        p=$(sort -u "$LAB_DIR/dns-$v.queries" | wc -l)
        # dig picks each query's port at random: a few of 300 repeat
        check "dns: vps-${v#vps} sent 300 queries ($q) from at least 290 source ports ($p)" \
                test "$q" = 300 -a "$p" -ge 290
done

# --- 4. backup ------------------------------------------------------------
ssh_dir=$LAB_DIR/ssh
mkdir -p "$ssh_dir" /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$ssh_dir/host_key" && ssh-keygen -q -t ed25519 -N '' -f "$ssh_dir/client_key"
cp "$ssh_dir/client_key.pub" "$ssh_dir/authorized_keys"
echo "192.0.2.64 $(cut -d' ' -f1,2 "$ssh_dir/host_key.pub")" >"$ssh_dir/known_hosts"
cat >"$ssh_dir/sshd_config" <<EOF
ListenAddress 192.0.2.64:22
HostKey $ssh_dir/host_key
PidFile none
AuthorizedKeysFile $ssh_dir/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
LogLevel ERROR
EOF
lab_bg sshd inet /usr/sbin/sshd -D -e -f "$ssh_dir/sshd_config" >/dev/null
lab_wait_port inet 192.0.2.64 22 10 >/dev/null || fail "sshd listens"
src=$LAB_DIR/backup-src
for d in $(seq 1 20); do
        mkdir -p "$src/d$d"
        for f in $(seq 1 50); do head -c $(((d * 7 + f * 131) % 16384 + 100)) /dev/urandom >"$src/d$d/f$f"; done
done
backup() {
        local dst=$LAB_DIR/backup-$1
        lab_exec "$1" timeout 60 rsync -a --stats -e "ssh -F /dev/null -i $ssh_dir/client_key -o BatchMode=yes \
-o UserKnownHostsFile=$ssh_dir/known_hosts -o StrictHostKeyChecking=yes -o ConnectTimeout=10" \
                "$src/" "root@192.0.2.64:$dst/" >"$LAB_DIR/rsync-$1.out" 2>&1
        local st=$?
        grep -E 'Number of regular files transferred|Total bytes sent' "$LAB_DIR/rsync-$1.out" | tr '\n' ' '
        echo "(rsync status $st)"
        [ "$st" = 0 ] && diff -r -q "$src" "$dst" >/dev/null && [ "$(find "$dst" -type f | wc -l)" = 1000 ]
}
workload backup "backup: rsync over ssh, 1,000 files in 20 directories ($(du -sk "$src" | cut -f1) KB)" backup

# --- 5. torrent -----------------------------------------------------------
# 30 peers on ports 40000-59999 (not 6881-6889, 6969, 6660-6669, which
# milano blocks); .128 and .129 have no host, .110 and .120 nothing on
# their port.  The order is a tracker's: shuffled.
peers=()
serving=()
for i in $(seq 100 129); do
        p=$((40000 + (i * 7919) % 20000))
        peers+=("192.0.2.$i:$p")
        case $i in 110 | 120 | 128 | 129) ;; *) serving+=("192.0.2.$i:$p") ;; esac
done
mapfile -t peers < <(printf '%s\n' "${peers[@]}" | "$PY" -c 'import random,sys; l=sys.stdin.read().split(); random.Random(2).shuffle(l); print("\n".join(l))')
lab_bg peers inet "$PY" "$here/peer.py" serve "${serving[@]}" >/dev/null
wait_for 5 grep -q ready "$LAB_DIR/log/peers.log" || fail "the peers listen"
torrent() {
        local out
        out=$(lab_exec "$1" timeout 60 "$PY" "$here/peer.py" fetch 0123456789abcdef0123456789abcdef01234567 "${peers[@]}")
        echo "$out"
        [ "$(head -1 <<<"$out")" = "tcp_ok=26 tcp_fail=4 udp_ok=26 udp_fail=4 bytes=$((26 * 16384))" ]
}
workload torrent "BitTorrent-like: 30 peers over TCP and UDP, 4 dead (2 no host, 2 closed ports)" torrent

# --- 6. monitor -----------------------------------------------------------
monitored=$(seq -f '192.0.2.%g' 160 189)
CHECK_TCP=/usr/lib/nagios/plugins/check_tcp
monitor() {
        local r up open
        for r in 1 2 3 4; do
                [ "$r" = 1 ] || sleep 2
                # shellcheck disable=SC2086 # one address a word
                up=$(lab_exec "$1" fping -a -r 1 -t 500 $monitored 2>/dev/null | wc -l)
                open=$(echo "$monitored" | lab_exec "$1" xargs -P 10 -I{} $CHECK_TCP -H {} -p 80 -t 3 | grep -c '^TCP OK')
                echo "round $r: $up of 30 answer ping, $open of 30 have port 80 open"
                [ "$up" = 30 ] && [ "$open" = 30 ] || return 1
        done
}
workload monitor "monitoring: 30 hosts, ping and TCP/80, 4 rounds 2 s apart" monitor

# --- 7. the crawl against busy servers -----------------------------------
# The same 500 URLs on port 8081, where one listen queue 5 deep serves all
# 50 hosts: 20 connections at once overflow it, and the dropped SYNs are
# answered on their retransmission 1 s later.  With pending-timeout 1 s
# (TCP's first retransmission) these were failed first contacts, and this
# crawl a scan incident from milano in 4 of 5 runs and from lenoir in 1
# of 2 (filtered, the crawl cut short): pending-timeout is 2 s since.
sed -e 's|^url = "http://\(192\.0\.2\.[0-9]*\)/|url = "http://\1:8081/|' "$LAB_DIR/crawl.cfg" >"$LAB_DIR/busy.cfg"
busy() { crawl_of busy "$1"; }
workload busy "crawler against busy servers: the same 500 URLs, one 5-deep listen queue for the 50 hosts" busy

echo "# MTA: 100 legitimate messages through provider A's proxy are lab/spam (spam.sh), not repeated here"
echo "# benign corpus (workload | lenoir, held back | milano, nothing held back)"
sed 's/^/     /' "$LAB_DIR/benign-table"
lab_summary
