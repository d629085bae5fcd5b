"""Shared set-up for the hostile API tests: a temporary database with two
customers' VPSes and tokens of every role, and a portcullis-apid of its own
on a free loopback port (started as nobody when run as root), stopped and
removed at exit.  Usage in a test:

    import harness
    h = harness.Apid(extra_args=["--rate", "1000", "--burst", "1000"])
    st, j, text = h.call("GET", "/v1/whoami", token=h.tok["ann"])

Environment: BUILD (default build), the repository root is found from this
file's place."""
import atexit
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time



def _terminated(signum, frame):
    raise SystemExit(128 + signum)


# A SIGTERM (a timeout of the caller) still stops apid and removes the folder.
signal.signal(signal.SIGTERM, _terminated)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BUILD = os.path.abspath(os.environ.get("BUILD", os.path.join(ROOT, "build")))
APID = os.path.join(BUILD, "src", "api", "portcullis-apid")
CLI = os.path.join(BUILD, "src", "cli", "portcullis")
CONFIG = os.path.join(ROOT, "etc", "portcullis.yaml")


class Apid:
    def __init__(self, extra_args=(), vpses=True):
        self.tmp = tempfile.mkdtemp(prefix="portcullis-hostile.")
        os.chmod(self.tmp, 0o755)
        os.mkdir(os.path.join(self.tmp, "db"))
        self.dbpath = os.path.join(self.tmp, "db", "p.db")
        self.db = "sqlite:" + self.dbpath
        self.proc = None
        atexit.register(self.stop)
        self.pc("init")
        if vpses:
            self.pc("vps", "add", "vps-a1", "--owner", "ann@example.org", "--iface", "tapa1",
                    "--addr", "198.51.100.11", "--by", "t")
            self.pc("vps", "add", "vps-b1", "--owner", "bob@example.org", "--iface", "tapb1",
                    "--addr", "198.51.100.21", "--by", "t")
        self.tok = {}
        for r in ("admin", "support", "agent"):
            # The agent's token of every host, as portcullisd's own engine acts.
            self.tok[r] = self.pc("token", "create", "t-" + r, "--role", r, "--by", "t",
                                  *(["--any-host"] if r == "agent" else [])).strip()
        for c in ("ann", "bob"):
            self.tok[c] = self.pc("token", "create", c, "--role", "customer", "--customer",
                                  c + "@example.org", "--by", "t").strip()
        self.log = os.path.join(self.tmp, "apid.log")
        self.start(extra_args)

    def start(self, extra_args=()):
        """Starts apid (again, after stop_apid) with <extra_args>."""
        user = []
        if os.geteuid() == 0:
            subprocess.check_call(["chown", "-R", "nobody", os.path.join(self.tmp, "db")])
            user = ["--user", "nobody"]
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen([APID, "-c", CONFIG, "--db", self.db, "--port", "0", "--agent-metrics", ""]
                                     + user + list(extra_args),
                                     stdout=subprocess.DEVNULL, stderr=self.logf, cwd=ROOT)
        self.port = None
        for _ in range(100):
            m = re.search(r"listening on 127\.0\.0\.1 port (\d+) ", open(self.log).read())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if self.port is None:
            raise SystemExit("apid did not start:\n" + open(self.log).read())
        return self.port

    def fail(self, msg):
        """Prints the hole and exits 1 (apid's log tail with it)."""
        print("HOLE: " + msg)
        raise SystemExit(1)

    def pc(self, *args):
        return subprocess.check_output([CLI, "-c", CONFIG, "--db", self.db] + list(args),
                                       stderr=subprocess.DEVNULL, cwd=ROOT).decode()

    def call(self, method, path, body=None, token=None, raw=None, headers=None, timeout=10, src=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout,
                                       source_address=(src, 0) if src else None)
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = "Bearer " + token
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        text = r.read().decode(errors="replace")
        c.close()
        try:
            j = json.loads(text)
        except ValueError:
            j = None
        return r.status, j, text

    def rss_kib(self):
        for line in open("/proc/%d/status" % self.proc.pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop_apid(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        # A sanitizer build (build-asan) reports into apid's log.
        report = [l for l in open(self.log, errors="replace") if "Sanitizer" in l or "runtime error:" in l] \
            if os.path.exists(self.log) else []
        shutil.rmtree(self.tmp, ignore_errors=True)
        if report:
            print("apid's sanitizer report:\n" + "".join(report[:20]))
            os._exit(1)
