#!/usr/bin/python3
"""A provider's billing/CRM webhook receiver, as docs/NOTIFICATIONS.md tells
one to verify Portcullis's events: X-Portcullis-Signature is
"t=<unix seconds>,v1=<hex>", <hex> the HMAC-SHA256 of "<t>.<body>" under
the shared secret; the timestamp must be within 5 minutes.  Each POST is
appended to OUT as one JSON line (verified or not); a verified one is
answered 200, any other 401.

Usage: webhook_receiver.py ADDRESS PORT SECRET_FILE OUT"""
import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

addr, port, secret_file, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
with open(secret_file, "rb") as f:
    SECRET = f.read().rstrip(b"\r\n")
TOLERANCE = 300


def verify(header, body):
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError, AttributeError):
        return False
    if abs(time.time() - t) > TOLERANCE:
        return False
    want = hmac.new(SECRET, str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, given)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        ok = verify(self.headers.get("X-Portcullis-Signature", ""), body)
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        rec = {"verified": ok, "path": self.path, "event": self.headers.get("X-Portcullis-Event"),
               "delivery": self.headers.get("X-Portcullis-Delivery"), "body": parsed}
        with open(out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, fmt, *args):
        sys.stderr.write("webhook receiver: " + fmt % args + "\n")


class Server(HTTPServer):
    allow_reuse_address = True


Server((addr, port), Handler).serve_forever()
