#!/usr/bin/env python3
"""The libvirt hook builds the audit reason from the domain's name, so a
name with a tab or a bidi control leaves the VPS unregistered -- and
unfiltered -- and reaches syslog raw.

contrib/libvirt/qemu checks every value it takes from <portcullis:vps>
(one word of printable text), but not GUEST_NAME, its first argument: it
passes "libvirt: $guest start" as --reason to `portcullis vps add/update`,
and the operations layer refuses a reason with a control character
(pc_ops_text_check: C0, C1, U+202A-202E, U+2066-2069...).  libvirt forbids
only '/' and a newline in a domain's name; XML carries &#9; &#13; and
U+202E.  The registration fails, and with the default STRICT=no the domain
starts anyway with no site policy on its interface (no blocked services,
no anti-spoofing); its stop is not recorded either.  pch_what ("libvirt
domain $guest") goes to logger(1) and stderr unescaped: a CR or U+202E
rewrites the line a reader sees.  Whoever may name a domain (a panel's
"hostname" or "label") unregisters their VPS.

Exits 1 while a domain named "web<TAB>7" (or "web<U+202E>7") with valid
metadata is not registered by "start begin", or its name reaches the log
raw; 0 once the hook escapes the name (or leaves it out of the reason)."""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ROOT, CLI = harness.ROOT, harness.CLI
tmp = tempfile.mkdtemp(prefix="portcullis-hostile-hook.")
try:
    conf = open(os.path.join(ROOT, "etc", "portcullis.yaml")).read().splitlines()
    out = []
    for line in conf:
        if line.startswith("database:"):
            line = "database: sqlite:%s/p.db" % tmp
        line = line.replace("  - profiles/", "  - %s/etc/profiles/" % ROOT)
        if line.startswith("  templates: templates"):
            line = "  templates: %s/etc/templates" % ROOT
        line = line.replace("control-socket: /run/portcullis/", "control-socket: %s/" % tmp)
        out.append(line)
    cfg = os.path.join(tmp, "portcullis.yaml")
    open(cfg, "w").write("\n".join(out) + "\n")
    subprocess.check_call([CLI, "-c", cfg, "init"], stdout=subprocess.DEVNULL)
    os.mkdir(os.path.join(tmp, "bin"))
    logger = os.path.join(tmp, "bin", "logger")
    open(logger, "w").write("#!/bin/sh\nprintf '%%s\\n' \"$*\" >>%s/syslog\n" % tmp)
    os.chmod(logger, 0o755)
    open(os.path.join(tmp, "hooks.conf"), "w").write("PORTCULLIS = %s\nPORTCULLIS_CONFIG = %s\n" % (CLI, cfg))
    holes = []
    for n, guest in ((7, "web\t7"), (8, "web\u202e8")):
        xml = ("<domain type='kvm'><name>%s</name><metadata>"
               "<portcullis:vps xmlns:portcullis='https://portcullis.example/ns/1' id='vps-%d' "
               "owner='ada@example.net' site='milano'><portcullis:address>198.51.100.%d</portcullis:address>"
               "</portcullis:vps></metadata><devices><interface type='bridge'>"
               "<mac address='52:54:00:aa:00:%02d'/><target dev='tap%d'/></interface></devices></domain>"
               % (guest.replace("\t", "&#9;"), n, n, n, n))
        env = {"LC_ALL": "C", "PATH": os.path.join(tmp, "bin") + ":/usr/bin:/bin",
               "PORTCULLIS_HOOK_CONF": os.path.join(tmp, "hooks.conf")}
        p = subprocess.run([os.path.join(ROOT, "contrib", "libvirt", "qemu"), guest, "start", "begin", "-"],
                           input=xml.encode(), env=env, capture_output=True)
        show = subprocess.run([CLI, "-c", cfg, "vps", "show", "vps-%d" % n], capture_output=True)
        log = open(os.path.join(tmp, "syslog"), "rb").read() if os.path.exists(os.path.join(tmp, "syslog")) else b""
        print("guest %r: hook exit %d; vps show vps-%d exit %d; log %r" % (guest, p.returncode, n, show.returncode,
                                                                          log[-160:]))
        if show.returncode != 0:
            holes.append("domain %r started with vps-%d unregistered" % (guest, n))
        if guest.encode() in log:
            holes.append("the name %r reached syslog raw" % guest)
    if holes:
        print("HOLE: " + "; ".join(holes))
        sys.exit(1)
    print("ok")
finally:
    shutil.rmtree(tmp, ignore_errors=True)
