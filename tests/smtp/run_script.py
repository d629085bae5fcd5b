#!/usr/bin/python3
"""Scripted SMTP sessions, in the spirit of OpenSMTPD's and HAProxy's
regression scripts.  Usage: run_script.py HOST PORT SCRIPT...

Each SCRIPT is a session: a fresh TCP connection, then one step per line.
  # text            a comment
  > TEXT            send TEXT and CRLF
  >> TEXT           send TEXT as is, after \\r \\n \\t \\\\ and \\xHH escapes
  >* N TEXT         send TEXT repeated N times (no CRLF)
  < GLOB            read the next reply (all its lines); its last line must
                    match GLOB (fnmatch, case-sensitive)
  ~ GLOB            some line of the last reply matches GLOB
  !~ GLOB           no line of the last reply matches GLOB
  trickle SECS TEXT send TEXT one byte a second, for at most SECS seconds
  sleep SECS
  shut              half-close: no more bytes from the client (FIN)
  close             reset the connection (SO_LINGER 0) and end the session
  eof [SECS]        the server closes the connection within SECS (default 5)
  $VAR in a line is replaced from the environment (e.g. $SUBJECT).
Prints "ok SCRIPT" or "FAIL SCRIPT:LINE: why" with the reply seen; exits 1
if any script failed.
"""
import fnmatch
import os
import re
import socket
import struct
import sys
import time

READ_TIMEOUT = 10.0


class Failed(Exception):
    pass


class Session:
    def __init__(self, host, port):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(READ_TIMEOUT)
        self.sock.connect((host, port))
        self.buf = b""
        self.last = []

    def line(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failed("no reply within %.0f s" % READ_TIMEOUT)
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise Failed("no reply within %.0f s" % READ_TIMEOUT)
            if not data:
                raise Failed("connection closed; last reply %r" % self.last)
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        deadline = time.monotonic() + READ_TIMEOUT
        lines = [self.line(deadline)]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line(deadline))
        self.last = lines
        return lines

    def eof(self, secs):
        deadline = time.monotonic() + secs
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failed("still open after %s s" % secs)
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return
            if not data:
                return
            self.buf += data


def unescape(text):
    def sub(m):
        s = m.group(0)
        return {"\\r": "\r", "\\n": "\n", "\\t": "\t", "\\\\": "\\"}.get(s) or chr(int(s[2:], 16))
    return re.sub(r"\\x[0-9a-fA-F]{2}|\\[rnt\\]", sub, text).encode("latin-1")


def run(host, port, path):
    s = Session(host, port)
    with open(path) as f:
        lines = f.read().splitlines()
    for no, raw in enumerate(lines, 1):
        text = os.path.expandvars(raw)
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        op, _, arg = text.partition(" ")
        try:
            if op == ">":
                s.sock.sendall(arg.encode("utf-8") + b"\r\n")
            elif op == ">>":
                s.sock.sendall(unescape(arg))
            elif op == ">*":
                n, _, what = arg.partition(" ")
                s.sock.sendall(unescape(what) * int(n))
            elif op == "<":
                got = s.reply()
                if not fnmatch.fnmatchcase(got[-1], arg):
                    raise Failed("expected %r, got %r" % (arg, got))
            elif op == "~":
                if not any(fnmatch.fnmatchcase(x, arg) for x in s.last):
                    raise Failed("no line matches %r in %r" % (arg, s.last))
            elif op == "!~":
                if any(fnmatch.fnmatchcase(x, arg) for x in s.last):
                    raise Failed("a line matches %r in %r" % (arg, s.last))
            elif op == "trickle":
                secs, _, what = arg.partition(" ")
                end = time.monotonic() + float(secs)
                for ch in unescape(what):
                    if time.monotonic() >= end:
                        break
                    try:
                        s.sock.sendall(bytes([ch]))
                    except OSError:
                        break
                    time.sleep(1)
            elif op == "sleep":
                time.sleep(float(arg))
            elif op == "shut":
                s.sock.shutdown(socket.SHUT_WR)
            elif op == "close":
                s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.sock.close()
                return None
            elif op == "eof":
                s.eof(float(arg or 5))
            else:
                raise Failed("unknown step %r" % op)
        except Failed as e:
            return "%s:%d: %s" % (path, no, e)
        except OSError as e:
            return "%s:%d: %s" % (path, no, e)
    s.sock.close()
    return None


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    host, port = sys.argv[1], int(sys.argv[2])
    failed = 0
    for path in sys.argv[3:]:
        try:
            why = run(host, port, path)
        except OSError as e:
            why = "%s: %s" % (path, e)
        if why:
            failed += 1
            print("FAIL " + why)
        else:
            print("ok   " + os.path.basename(path))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
