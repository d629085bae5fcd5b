#!/usr/bin/python3
"""Hostile SMTP clients for the portcullis-smtpd scenarios (tests/lab/hostile/smtpd_*.sh).

  smtpx.py uncounted HOST SUBJECT COUNT
      COUNT messages, each in its own session, that the MX accepts and the
      proxy logs as "abandoned" (never counted against messages-per-hour):
      the client never reads; after the transaction's recipients it sends
      RCPTs over recipients-per-message, which the proxy answers locally
      (452, not an error, not forwarded) into its unbounded output towards
      the client, until the proxy stops reading the MX (CLIENT_BACKLOG);
      then BDAT LAST goes out, the MX queues the message, its 250 is never
      read, and the client resets the connection.
  smtpx.py flood HOST MEGABYTES SECONDS
      Sends MEGABYTES of RCPTs over recipients-per-message and never reads;
      every one gets a local 452 that the proxy keeps in memory; stays
      connected for SECONDS.
  smtpx.py hold HOST SUBJECT FLAGFILE
      Opens a transaction (MAIL, RCPT), writes FLAGFILE, waits for
      FLAGFILE.go, then sends DATA and the message; prints the replies.
  smtpx.py race HOST SUBJECT SESSIONS
      SESSIONS sessions open a transaction each (MAIL, RCPT, DATA -> 354)
      before any of them ends its message; then all end; prints the final
      replies.
"""
import os
import socket
import struct
import sys
import time


def connect(host, rcvbuf=None):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(20)
    s.connect((host, 25))
    return s


def reset(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


class Talk:
    def __init__(self, host):
        self.s = connect(host)
        self.f = self.s.makefile("rb")

    def reply(self):
        while True:
            line = self.f.readline().decode("latin-1")
            if not line or len(line) < 4 or line[3] != "-":
                return line.strip() or "EOF"

    def cmd(self, text):
        self.s.sendall(text.encode() + b"\r\n")
        return self.reply()


def uncounted(host, subject, count):
    for k in range(int(count)):
        s = connect(host, rcvbuf=1024)  # never read
        s.sendall(b"EHLO vps.example\r\nMAIL FROM:<a@vps.example>\r\nRCPT TO:<customer@example.net>\r\n")
        time.sleep(0.5)
        s.sendall(b"RCPT TO:<over-the-limit@example.net>\r\n" * 20000)  # 452 each, locally
        time.sleep(0.5)
        body = ("Subject: %s-%d\r\n\r\nnot counted by the proxy\r\n" % (subject, k)).encode()
        s.sendall(b"BDAT %d LAST\r\n" % len(body) + body)
        time.sleep(1.0)
        reset(s)


def flood(host, megabytes, seconds):
    s = connect(host, rcvbuf=1024)
    s.sendall(b"EHLO vps.example\r\nMAIL FROM:<a@vps.example>\r\nRCPT TO:<customer@example.net>\r\n")
    time.sleep(0.5)
    chunk = b"RCPT TO:<x@example.net>\r\n" * 4000
    sent = 0
    while sent < int(megabytes) * 1024 * 1024:
        s.sendall(chunk)
        sent += len(chunk)
    time.sleep(float(seconds))
    reset(s)


def hold(host, subject, flag):
    t = Talk(host)
    print("greeting", t.reply())
    for c in ("EHLO vps.example", "MAIL FROM:<a@vps.example>", "RCPT TO:<customer@example.net>"):
        print(c, "->", t.cmd(c))
    open(flag, "w").write("open\n")
    deadline = time.time() + 30
    while not os.path.exists(flag + ".go") and time.time() < deadline:
        time.sleep(0.1)
    print("DATA ->", t.cmd("DATA"))
    print("end ->", t.cmd("Subject: %s\r\n\r\nsent after the filter\r\n." % subject))


def race(host, subject, sessions):
    talks = []
    for k in range(int(sessions)):
        t = Talk(host)
        t.reply()
        ok = [t.cmd("EHLO vps.example"), t.cmd("MAIL FROM:<a@vps.example>"),
              t.cmd("RCPT TO:<customer@example.net>"), t.cmd("DATA")]
        print("session", k, ok[1:])
        if ok[3].startswith("354"):
            talks.append((k, t))
    for k, t in talks:
        print("session", k, "end ->", t.cmd("Subject: %s-%d\r\n\r\nraced\r\n." % (subject, k)))


if __name__ == "__main__":
    {"uncounted": uncounted, "flood": flood, "hold": hold, "race": race}[sys.argv[1]](*sys.argv[2:])
