#!/usr/bin/python3
"""Hand-made TCP dialogues for the hostile-customer scenarios (scapy).

  hx.py talk SRC SPORT DST DPORT [TEXT]
      A TCP handshake from SRC:SPORT to DST:DPORT built by hand (so that DST
      can be anything: an IPv4-mapped IPv6 address, ::, ...), then TEXT (\\r\\n
      added) if given; prints every payload received as "data: ..." and exits
      0 if any payload came back.  The caller must stop its own kernel from
      resetting the connection (drop outgoing RSTs from SPORT).
  hx.py raw HEX
      Sends one raw IP packet (hex) as is.
"""
import sys
import time


def talk(src, sport, dst, dport, text=None):
    from scapy.all import IP, IPv6, TCP, Raw, conf, sr1, send, sniff, AsyncSniffer
    conf.verb = 0
    v6 = ":" in dst
    L3 = (lambda: IPv6(src=src, dst=dst)) if v6 else (lambda: IP(src=src, dst=dst))
    sport, dport = int(sport), int(dport)
    got = []

    def mine(p):
        return TCP in p and p[TCP].dport == sport and p[TCP].sport == dport

    sn = AsyncSniffer(iface=conf.route6.route(dst)[0] if v6 else conf.route.route(dst)[0], lfilter=mine,
                      prn=got.append, store=False)
    sn.start()
    time.sleep(0.3)
    seq = 1000
    send(L3() / TCP(sport=sport, dport=dport, flags="S", seq=seq))
    deadline = time.time() + 3
    synack = None
    while time.time() < deadline and synack is None:
        for p in list(got):
            if (int(p[TCP].flags) & 0x12) == 0x12:
                synack = p
                break
        time.sleep(0.05)
    if synack is None:
        sn.stop()
        print("no syn-ack")
        return 1
    print("syn-ack from", synack[IPv6 if v6 else IP].src)
    ack = synack[TCP].seq + 1
    seq += 1
    send(L3() / TCP(sport=sport, dport=dport, flags="A", seq=seq, ack=ack))
    time.sleep(0.5)
    if text:
        data = (text + "\r\n").encode()
        send(L3() / TCP(sport=sport, dport=dport, flags="PA", seq=seq, ack=ack) / Raw(data))
        seq += len(data)
    time.sleep(1.5)
    sn.stop()
    n = 0
    for p in got:
        if Raw in p:
            n += 1
            print("data:", bytes(p[Raw].load).decode(errors="replace").strip())
    return 0 if n else 1


def raw(hexs):
    from scapy.all import IP, IPv6, send, conf
    conf.verb = 0
    b = bytes.fromhex(hexs)
    send(IPv6(b) if b[0] >> 4 == 6 else IP(b))
    return 0


if __name__ == "__main__":
    a = sys.argv
    if len(a) >= 6 and a[1] == "talk":
        sys.exit(talk(*a[2:8]))
    if len(a) == 3 and a[1] == "raw":
        sys.exit(raw(a[2]))
    sys.stderr.write(__doc__)
    sys.exit(2)
