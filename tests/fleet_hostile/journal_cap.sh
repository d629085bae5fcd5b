#!/bin/bash
# Hole: while the database is away, a finding is answered in the kernel
# only if it fits in the journal (256 entries).  Once other VPSes' findings
# fill it, agent_offline_note returns -ENOSPC and agent_incident's caller
# (spoof_cb, agent_abuse) gives up before agent_offline_respond: a VPS that
# spoofs then is neither suspended nor recorded.  Here 256 VPSes of one
# customer (lenoir: spoofing -> suspend) each spoof once during the outage,
# then another customer's VPS spoofs.  Exits 1 while the hole is open.
. "$(dirname "$0")/lib.sh"
N=${N:-256}
fh_init 1
pc_on 1 init >/dev/null 2>&1 || { echo "SETUP init"; exit 2; }
# The attacker: N VPSes (one namespace, N interfaces).
mkns a
for i in $(seq 0 $((N - 1))); do
        ip link add x$i netns "$(ns hv1)" type veth peer name e$i netns "$(ns a)"
done
for i in $(seq 0 $((N - 1))); do echo "link set x$i up"; done | ip -n "$(ns hv1)" -batch -
for i in $(seq 0 $((N - 1))); do echo "link set e$i up"; done | ip -n "$(ns a)" -batch -
t0=$(date +%s)
seq 0 $((N - 1)) | xargs -P 2 -I{} sh -c "ip netns exec $(ns hv1) $PC_BIN -c $LAB_DIR/hv1.yaml vps add att-{} --site lenoir \
        --owner eve@example.org --iface x{} --addr 10.20.\$(({} / 250)).\$(({} % 250 + 1)) --host hv1 --by lab >/dev/null 2>&1"
echo "registered $N attacker VPSes in $(( $(date +%s) - t0 )) s"
# The victim's neighbour: another customer's VPS that will spoof.
vps_link v 1 vv 30
pc_on 1 vps add vps-v --site lenoir --owner val@example.org --iface vv --addr 198.51.100.30 --host hv1 --by lab >/dev/null || exit 2
agent_up 1 || { echo "SETUP agent"; exit 2; }
wait_for 20 sh -c "ip netns exec $(ns hv1) nft list map inet portcullis antispoof | grep -q vv" || { echo "SETUP vv not enforced"; tail -5 "$LAB_DIR/log/portcullisd-hv1.log"; ip netns exec "$(ns hv1)" nft list map inet portcullis vps_out | head -5; exit 2; }
"$FH_SRC/tests/pg/cluster.sh" halt "$LAB_DIR/pg" >/dev/null || { echo "SETUP halt"; exit 2; }
sleep 1
# Each attacker VPS sends one spoofed UDP packet (source 10.66.0.1), paced
# under the kernel's log rate (20/s).
ip netns exec "$(ns a)" python3 - "$N" <<'PY'
import socket, struct, sys, time
n = int(sys.argv[1])
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
for i in range(n):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind(("e%d" % i, 0))
    mac = s.getsockname()[4]
    udp = struct.pack("!HHHH", 4444, 9, 8, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, i, 0, 64, 17, 0, socket.inet_aton("10.66.0.1"), socket.inet_aton("192.0.2.2"))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    s.send(b"\xff" * 6 + mac + b"\x08\x00" + ip + udp)
    s.close()
    time.sleep(0.07)
PY
sleep 1
n_j=$(python3 -c "import json; print(len(json.load(open('$LAB_DIR/journal-hv1.json'))))" 2>/dev/null || echo 0)
n_s=$(ip netns exec "$(ns hv1)" nft list set inet portcullis suspended | grep -o '"x[0-9]*"' | wc -l)
echo "during the outage: $n_j journal entries, $n_s attacker VPSes suspended in the kernel"
[ "$n_j" -ge 256 ] || { echo "SETUP the journal did not fill ($n_j)"; exit 2; }
# Another customer's VPS spoofs now.
ip -n "$(ns v)" addr add 198.51.100.99/32 dev eth0
ip netns exec "$(ns v)" ping -c 3 -i 0.3 -W 1 -I 198.51.100.99 192.0.2.2 >/dev/null 2>&1
if wait_for 3 sh -c "ip netns exec $(ns hv1) nft list set inet portcullis suspended | grep -q '\"vv\"'"; then
        echo "HELD: vps-v is suspended in the kernel although the journal is full"
        exit 0
fi
grep -c "Spoof\|spoof" "$LAB_DIR/log/portcullisd-hv1.log" >/dev/null
echo "HOLE: vps-v spoofed during the outage with the journal full: not suspended (nor recorded)"
exit 1
