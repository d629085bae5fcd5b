#!/usr/bin/python3
"""Hand-made Ethernet frames for the bridged hostile-customer scenarios (scapy).

  l2x.py frame DSTMAC tcp SRC SPORT DST DPORT FLAGS
  l2x.py frame DSTMAC udp SRC SPORT DST DPORT TEXT
      One frame out of eth0 to DSTMAC (e.g. the hypervisor's bridge MAC, so
      that the hypervisor routes it instead of bridging it).  TCP segments
      carry seq 1000.
  l2x.py finish SRC SPORT DST DPORT
      The other half of a handshake someone else opened with a SYN of seq
      1000 from SRC:SPORT: waits (4 s at most) for DST's SYN-ACK, acknowledges
      it, prints every payload that follows within 2 s as "data: ..." and
      exits 0 if any came.  The caller must stop its own kernel from
      answering the SYN-ACK (drop it in its input chain: the sniffer still
      sees it).
"""
import sys
import time


def frame(dmac, kind, src, sport, dst, dport, extra):
    from scapy.all import Ether, IP, IPv6, TCP, UDP, Raw, conf, sendp
    conf.verb = 0
    ip = IPv6(src=src, dst=dst) if ":" in dst else IP(src=src, dst=dst)
    if kind == "tcp":
        l4 = TCP(sport=int(sport), dport=int(dport), flags=extra, seq=1000)
    else:
        l4 = UDP(sport=int(sport), dport=int(dport)) / Raw(extra.encode() + b"\n")
    sendp(Ether(dst=dmac) / ip / l4, iface="eth0")
    return 0


def finish(src, sport, dst, dport):
    from scapy.all import IP, IPv6, TCP, Raw, conf, send, AsyncSniffer
    conf.verb = 0
    v6 = ":" in dst
    L3 = (lambda: IPv6(src=src, dst=dst)) if v6 else (lambda: IP(src=src, dst=dst))
    sport, dport = int(sport), int(dport)
    got = []
    sn = AsyncSniffer(iface="eth0", store=False, prn=got.append,
                      lfilter=lambda p: TCP in p and p[TCP].dport == sport and p[TCP].sport == dport)
    sn.start()
    print("listening", flush=True)
    deadline = time.time() + 4
    synack = None
    while time.time() < deadline and synack is None:
        for p in list(got):
            if (int(p[TCP].flags) & 0x12) == 0x12 and p[TCP].ack == 1001:
                synack = p
                break
        time.sleep(0.05)
    if synack is None:
        sn.stop()
        print("no syn-ack")
        return 1
    ack = synack[TCP].seq + 1
    send(L3() / TCP(sport=sport, dport=dport, flags="A", seq=1001, ack=ack))
    time.sleep(2)
    sn.stop()
    n = 0
    for p in got:
        if Raw in p:
            n += 1
            print("data:", bytes(p[Raw].load).decode(errors="replace").strip())
    return 0 if n else 1


if __name__ == "__main__":
    a = sys.argv
    if len(a) == 9 and a[1] == "frame":
        sys.exit(frame(*a[2:9]))
    if len(a) == 6 and a[1] == "finish":
        sys.exit(finish(*a[2:6]))
    sys.stderr.write(__doc__)
    sys.exit(2)
