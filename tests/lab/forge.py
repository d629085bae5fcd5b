#!/usr/bin/python3
"""What a hostile customer and an accomplice send, for the lab scenarios.

  forge.py tcp SRC SPORT DST DPORT FLAGS   one hand-made TCP segment (scapy),
                                           FLAGS as scapy spells them: S, SA, SF
  forge.py udp SRC SPORT DST DPORT TEXT    one hand-made UDP datagram
  forge.py hold DST DPORT LPORT DIR        a real TCP connection from local port
                                           LPORT (0: any): reads the greeting,
                                           writes DIR/open, waits (20 s at most)
                                           for DIR/go, then sends EHLO and prints
                                           "reply: LINE" or "cut: WHY"; exit 0 only
                                           if the server still answered
  forge.py udpsend DST DPORT LPORT TEXT    a datagram from local port LPORT
                                           (a plain socket, not forged)

Addresses with a colon are IPv6.  Every wait is bounded.
"""
import os
import socket
import sys
import time


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def forge(kind, src, sport, dst, dport, extra):
    from scapy.all import IP, IPv6, TCP, UDP, Raw, send  # slow import: only here
    ip = IPv6(src=src, dst=dst) if ":" in dst else IP(src=src, dst=dst)
    if kind == "tcp":
        pkt = ip / TCP(sport=int(sport), dport=int(dport), flags=extra, seq=1000)
    else:
        pkt = ip / UDP(sport=int(sport), dport=int(dport)) / Raw(extra.encode())
    send(pkt, verbose=False)


def hold(dst, dport, lport, ctl):
    s = socket.socket(family(dst), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(5)
    s.bind(("::" if ":" in dst else "0.0.0.0", int(lport)))
    s.connect((dst, int(dport)))
    greeting = s.recv(4096).decode(errors="replace").strip()
    print("greeting:", greeting.splitlines()[0] if greeting else "")
    open(os.path.join(ctl, "open"), "w").close()
    deadline = time.time() + 20
    while not os.path.exists(os.path.join(ctl, "go")):
        if time.time() > deadline:
            print("cut: nobody said go")
            return 1
        time.sleep(0.05)
    try:
        s.settimeout(3)
        s.sendall(b"EHLO hold.example\r\n")
        data = s.recv(4096)
    except OSError as e:
        print("cut:", e)
        return 1
    if not data:
        print("cut: closed")
        return 1
    print("reply:", data.decode(errors="replace").splitlines()[0])
    return 0


def udpsend(dst, dport, lport, text):
    s = socket.socket(family(dst), socket.SOCK_DGRAM)
    s.bind(("::" if ":" in dst else "0.0.0.0", int(lport)))
    s.sendto(text.encode() + b"\n", (dst, int(dport)))
    return 0


def main(argv):
    if len(argv) >= 7 and argv[1] in ("tcp", "udp"):
        forge(argv[1], *argv[2:7])
        return 0
    if len(argv) == 6 and argv[1] == "hold":
        return hold(*argv[2:6])
    if len(argv) == 6 and argv[1] == "udpsend":
        return udpsend(*argv[2:6])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
