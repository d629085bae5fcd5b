#!/usr/bin/python3
"""The lab's BitTorrent-like peers and client (tests/lab/benign.sh).

serve ADDR:PORT...  in the internet namespace: every ADDR:PORT is a peer
    listening on TCP (the peer wire protocol's handshake, bitfield, unchoke
    and one 16 KiB block) and on UDP (a DHT ping, answered).
fetch INFOHASH ADDR:PORT...  in a VPS: a client that opens peers as
    clients do (a new one every 50 ms, at most 10 connecting at once),
    over TCP (handshake, interested, one block) and UDP (a DHT ping,
    resent every second, 3 times); prints
    "tcp_ok=N tcp_fail=N udp_ok=N udp_fail=N bytes=N" and the failed peers.
"""
import os
import socket
import struct
import sys
import threading
import time

PSTR = b"\x13BitTorrent protocol"
BLOCK = 16384


def handshake(infohash, peer_id):
    return PSTR + b"\0" * 8 + infohash + peer_id


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("peer closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def recv_msg(s):
    (length,) = struct.unpack(">I", recv_exact(s, 4))
    return recv_exact(s, length) if length else b""


def ping(tid, node_id):
    return b"d1:ad2:id20:" + node_id + b"e1:q4:ping1:t2:" + tid + b"1:y1:qe"


def pong(tid, node_id):
    return b"d1:rd2:id20:" + node_id + b"e1:t2:" + tid + b"1:y1:re"


# --- the peers ---------------------------------------------------------

def serve_conn(c):
    try:
        c.settimeout(10)
        hs = recv_exact(c, 68)
        if not hs.startswith(PSTR):
            return
        c.sendall(handshake(hs[28:48], b"-LB0001-" + os.urandom(12)))
        c.sendall(struct.pack(">IB", 2, 5) + b"\xff")    # bitfield: 8 pieces
        while True:
            m = recv_msg(c)
            if m[:1] == b"\x02":                          # interested
                c.sendall(struct.pack(">IB", 1, 1))       # unchoke
            elif m[:1] == b"\x06":                        # request
                index, begin, length = struct.unpack(">III", m[1:13])
                c.sendall(struct.pack(">IBII", 9 + length, 7, index, begin) + b"\xa5" * length)
                return
    except (OSError, EOFError, struct.error):
        pass
    finally:
        c.close()


def serve_tcp(ls):
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve_conn, args=(c,), daemon=True).start()


def serve_udp(us):
    node = os.urandom(20)
    while True:
        data, addr = us.recvfrom(1500)
        if data.startswith(b"d1:ad2:id20:") and b"4:ping1:t2:" in data:
            tid = data.split(b"1:t2:", 1)[1][:2]
            us.sendto(pong(tid, node), addr)


def serve(peers):
    for p in peers:
        addr, port = p.rsplit(":", 1)
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((addr, int(port)))
        ls.listen(64)
        threading.Thread(target=serve_tcp, args=(ls,), daemon=True).start()
        us = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        us.bind((addr, int(port)))
        threading.Thread(target=serve_udp, args=(us,), daemon=True).start()
    print("ready", flush=True)
    while True:
        time.sleep(3600)


# --- the client --------------------------------------------------------

def tcp_peer(addr, port, infohash, res, sem):
    with sem:
        try:
            s = socket.create_connection((addr, port), timeout=5)
        except OSError as e:
            res.append(("tcp", addr, port, False, 0, str(e)))
            return
    try:
        s.settimeout(5)
        s.sendall(handshake(infohash, b"-BN0001-" + os.urandom(12)))
        hs = recv_exact(s, 68)
        if hs[28:48] != infohash:
            raise EOFError("wrong infohash")
        s.sendall(struct.pack(">IB", 1, 2))               # interested
        got = 0
        while True:
            m = recv_msg(s)
            if m[:1] == b"\x01":                          # unchoke
                s.sendall(struct.pack(">IBIII", 13, 6, 0, 0, BLOCK))
            elif m[:1] == b"\x07":                        # piece
                got = len(m) - 9
                break
        res.append(("tcp", addr, port, got == BLOCK, got, ""))
    except (OSError, EOFError, struct.error) as e:
        res.append(("tcp", addr, port, False, 0, str(e)))
    finally:
        s.close()


def udp_peers(peers, res):
    """DHT pings from one socket (a client's DHT port), each resent every
    second until answered, 3 times at most."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("0.0.0.0", 0))
    node = os.urandom(20)
    left = {}
    for i, (addr, port) in enumerate(peers):
        left[(addr, port)] = b"%02x" % (i % 256)
    sent = {}
    deadline = time.monotonic() + 4
    while left and time.monotonic() < deadline:
        now = time.monotonic()
        for k, tid in left.items():
            if now - sent.get(k, (-9, 0))[0] >= 1 and sent.get(k, (0, 0))[1] < 3:
                u.sendto(ping(tid, node), k)
                sent[k] = (now, sent.get(k, (0, 0))[1] + 1)
                time.sleep(0.002)
        u.settimeout(0.1)
        try:
            data, addr = u.recvfrom(1500)
        except socket.timeout:
            continue
        except OSError:
            continue                                      # ICMP errors (unconnected: ignored)
        k = (addr[0], addr[1])
        if k in left and data.startswith(b"d1:rd2:id20:"):
            del left[k]
            res.append(("udp", k[0], k[1], True, len(data), ""))
    for k in left:
        res.append(("udp", k[0], k[1], False, 0, "no answer"))


def fetch(infohash, peers):
    infohash = bytes.fromhex(infohash)
    peers = [(p.rsplit(":", 1)[0], int(p.rsplit(":", 1)[1])) for p in peers]
    res = []
    sem = threading.Semaphore(10)
    threads = [threading.Thread(target=udp_peers, args=(peers, res))]
    threads[0].start()
    for addr, port in peers:
        t = threading.Thread(target=tcp_peer, args=(addr, port, infohash, res, sem))
        t.start()
        threads.append(t)
        time.sleep(0.05)
    for t in threads:
        t.join()
    n = {k: 0 for k in ("tcp_ok", "tcp_fail", "udp_ok", "udp_fail")}
    size = 0
    for proto, addr, port, ok, got, why in res:
        n["%s_%s" % (proto, "ok" if ok else "fail")] += 1
        size += got if proto == "tcp" else 0
    print(" ".join("%s=%d" % kv for kv in n.items()) + " bytes=%d" % size)
    for proto, addr, port, ok, got, why in sorted(res):
        if not ok:
            print("failed %s %s:%d %s" % (proto, addr, port, why))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2:])
    elif sys.argv[1] == "fetch":
        fetch(sys.argv[2], sys.argv[3:])
    else:
        sys.exit("usage: peer.py serve ADDR:PORT... | fetch INFOHASH ADDR:PORT...")
