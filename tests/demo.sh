#!/bin/bash
# The demo: the shipped configuration (both providers' profiles), a fresh
# SQLite database with a few VPSes, and what each site does with a handful
# of flows, and why.  Usage: tests/demo.sh PATH_TO_portcullis
set -eu
bin=$(readlink -f "${1:-build/src/cli/portcullis}")
cd "$(dirname "$0")/.."
tmp=$(mktemp -d /tmp/portcullis-demo.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pc() { "$bin" -c etc/portcullis.yaml --db "sqlite:$tmp/demo.db" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ portcullis %s\n' "$*"; pc "$@" || true; }

say "The database (only init, or the agent's first start, creates it) and the configuration"
run init
run check
run services

say "Registering VPSes (orchestration would do this)"
run vps add vps-101 --site lenoir --owner ada@example.net --iface tap101i0 \
        --addr 203.0.113.10 --addr 2001:db8:101::/64 --mac 52:54:00:00:01:01 --by orchestrator
run vps add vps-201 --site milano --owner bruno@example.it --lang it --iface tap201i0 \
        --addr 198.51.100.10 --addr 2001:db8:201::/64 --by orchestrator
run vps add vps-202 --site milano --owner carla@example.it --lang it --iface tap202i0 \
        --addr 198.51.100.24/29 --addr 2001:db8:202::/64 --by orchestrator

say "Two customers ask for SMTP through a support ticket"
run ticket open vps-202 smtp --by carla --text "Invoices from our billing app; SPF and DKIM set up; about 200 mails a day"
run ticket open vps-201 smtp --by bruno --text "I want to run a mail server"
say "Support reviews ticket #1 and approves it: vps-202 may send mail"
run exception grant vps-202 smtp --ticket 1 --by alice \
        --reason "transactional mail for an invoicing app; SPF and DKIM checked" --until +90d
say "Provider A's proxy cannot be exempted (the seed: 'We cannot exempt your network')"
run exception grant vps-101 smtp --by alice --reason "customer asked"

flows=(tcp/25 out tcp/587 out tcp/465 out tcp/443 out udp/500 out tcp/1723 in
       tcp/6881 in udp/6969 out tcp/25 in gre out)
for v in vps-101 vps-201 vps-202; do
        say "What $v may do"
        run explain "$v" "${flows[@]}"
done

say "Why is vps-201 blocked on 465?  (exit status 1 = blocked; its ticket is still pending)"
run explain vps-201 tcp/465 out
say "And vps-202?"
run explain vps-202 tcp/465 out
say "Provider A's site redirects port 25 to the SMTP proxy"
run explain vps-101 tcp/25 out

say "vps-202 in full"
run vps show vps-202
run ticket list
say "Everything is in the append-only audit log"
run audit
