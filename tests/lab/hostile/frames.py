"""Raw Ethernet frames for the bridged flood scenarios (no scapy: built
once, sent from an AF_PACKET socket as fast as the VPS can).  Imported by
the scripts' inline Python, which puts this folder on sys.path."""
import socket
import struct
import time


def mac(text):
    """b'...' of "aa:bb:cc:dd:ee:ff"."""
    return bytes.fromhex(text.replace(":", ""))


def csum(b):
    """The Internet checksum of <b>."""
    if len(b) % 2:
        b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xffff)
    t += t >> 16
    return ~t & 0xffff


def ipv4(src, dst, proto, payload):
    """An IPv4 packet (TTL 64, no options) around <payload>."""
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


def udp(sport, dport, payload):
    """A UDP header (no checksum) and <payload>."""
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def arp_request(src_mac, src_ip, target_ip, pad=b""):
    """A broadcast who-has <target_ip>, tell <src_ip>."""
    return (mac("ff:ff:ff:ff:ff:ff") + mac(src_mac) + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
            + mac(src_mac) + socket.inet_aton(src_ip) + b"\0" * 6 + socket.inet_aton(target_ip) + pad)


def eth0():
    """A raw socket on eth0."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind(("eth0", 0))
    return s


def blast(frame, secs):
    """Sends <frame> out of eth0 as fast as it can for <secs>; the count sent."""
    s = eth0()
    n, end = 0, time.time() + secs
    while time.time() < end:
        for _ in range(64):
            try:
                s.send(frame)
                n += 1
            except OSError:
                time.sleep(0.0005)
    return n
