/* portcullis: the command-line interface to the policy and the store. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int cmd_init(struct cli *c, int argc, char **argv);
int cmd_check(struct cli *c, int argc, char **argv);
int cmd_config(struct cli *c, int argc, char **argv);
int cmd_ruleset(struct cli *c, int argc, char **argv);
int cmd_services(struct cli *c, int argc, char **argv);
int cmd_vps(struct cli *c, int argc, char **argv);
int cmd_explain(struct cli *c, int argc, char **argv);
int cmd_exception(struct cli *c, int argc, char **argv);
int cmd_audit(struct cli *c, int argc, char **argv);
int cmd_ticket(struct cli *c, int argc, char **argv);
int cmd_status(struct cli *c, int argc, char **argv);
int cmd_fleet(struct cli *c, int argc, char **argv);
int cmd_filter(struct cli *c, int argc, char **argv);
int cmd_suspend(struct cli *c, int argc, char **argv);
int cmd_unsuspend(struct cli *c, int argc, char **argv);
int cmd_terminate(struct cli *c, int argc, char **argv);
int cmd_notification(struct cli *c, int argc, char **argv);
int cmd_incident(struct cli *c, int argc, char **argv);
int cmd_action(struct cli *c, int argc, char **argv);
int cmd_token(struct cli *c, int argc, char **argv);

#define DEFAULT_CONFIG "/etc/portcullis/portcullis.yaml"

const struct cli_command cli_commands[] = {
        { "init", cmd_init, "[--agent-role HOST [--db-role ROLE]]",
          "create the database (the only command that does)",
          "Creates the database the configuration names (its `database`, or --db URL)\n"
          "with this build's schema, and the folders above it: folders mode 0750, the\n"
          "file 0640.  Run it once, when installing; portcullisd creates the database\n"
          "at its first start too.  No other command creates one: without a database\n"
          "they exit 2 (check: 1) saying there is no database at PATH and how to\n"
          "create it, and a change written to a database file deleted or replaced\n"
          "since the command opened it fails, with nothing written.\n"
          "\n"
          "On an existing database init creates nothing: it applies the schema\n"
          "migrations of this build, as every command does, and says so.  A database\n"
          "written by a newer Portcullis is refused and left untouched.\n"
          "\n"
          "Where: a relative sqlite:PATH in the configuration file is relative to the\n"
          "file's folder; a relative --db sqlite:PATH on the command line is\n"
          "relative to the working directory.\n"
          "\n"
          "--agent-role HOST [--db-role ROLE] (PostgreSQL, as the database's owner):\n"
          "makes ROLE (default portcullis_HOST), which must exist (createuser\n"
          "--pwprompt ROLE), hypervisor HOST's own: it may connect, read everything\n"
          "and change, under row-level security, only HOST's VPSes and what hangs off\n"
          "them, HOST's agent heartbeat and journal, and its changes' audit rows; no\n"
          "token, no other host's VPS, no move.  Give HOST that role instead of the\n"
          "owner's (docs/FLEET.md).  Again: the role is HOST's now.\n"
          "\n"
          "Output: 'database URL created at schema version N', or 'database URL\n"
          "exists, at schema version N: nothing created'.  With --json:\n"
          "{\"database\": URL, \"created\": true|false, \"schema_version\": N}.\n"
          "Exit status: 0 the database is there now (created or not), 2 an error (the\n"
          "configuration, a folder or file that cannot be created, a newer schema).\n"
          "Example: portcullis -c /etc/portcullis/portcullis.yaml init\n"
          "         portcullis init --agent-role hv17   # role portcullis_hv17 is hv17's\n" },
        { "check", cmd_check, "",
          "validate the configuration and the database schema",
          "Loads the configuration and every profile it names, and opens the existing\n"
          "database (applying schema migrations; it creates none: see init).  Prints\n"
          "'FILE: ok' and exits 0, or prints each error as FILE:LINE:COL: message (or\n"
          "'no database at PATH' and how to create it) and exits 1.\n" },
        { "config", cmd_config, "",
          "print the configuration in canonical form",
          "Prints the loaded configuration with every default made explicit, every\n"
          "service's ports resolved, relative paths joined to the file's folder and a\n"
          "stable order: what Portcullis will enforce.  YAML in the config's own\n"
          "vocabulary; with --json the same keys, in the same order, as one JSON\n"
          "object (docs/JSON.md).\n" },
        { "ruleset", cmd_ruleset, "[--elements]",
          "print the nftables ruleset the agent programs",
          "Prints, in nft(8) syntax, the tables portcullisd loads into the kernel for\n"
          "this configuration: chains, verdict maps and the policies' port maps.  With\n"
          "--elements, also the set elements of every VPS in the database, as\n"
          "`add element` commands.  Nothing is sent to the kernel: compare it with\n"
          "`nft list table inet portcullis` (and `... bridge portcullis`), or review\n"
          "what a configuration change will do before reloading the agent.\n" },
        { "services", cmd_services, "",
          "the service catalog and what each site does with each service",
          "Lists every service (built-in and configured) with its ports, and for each\n"
          "site whether it blocks, redirects or allows it, in which direction, and\n"
          "whether an exception can be granted.\n" },
        { "vps", cmd_vps, "add|update|move|depart|start|stop|remove|list|show ...",
          "register, update, start/stop, remove, list and inspect VPSes",
          "  vps add ID --owner EMAIL --iface IF --addr CIDR [--addr CIDR...]\n"
          "          [--mac MAC] [--site SITE] [--lang en|it] [--host H] [--by WHO]\n"
          "      Registers a VPS: its owner's email and language (for notifications),\n"
          "      the host-side interface it is behind, its MAC, and every address or\n"
          "      routed prefix it may use (IPv4 and IPv6): the only sources it may\n"
          "      send from, at every site.  Refused: addresses or a MAC another VPS\n"
          "      has (or was granted), prefixes shorter than /16 or /32, loopback,\n"
          "      link-local, multicast, broadcast, unspecified, reserved and\n"
          "      IPv4-mapped addresses.  --site defaults to the config's default-site.\n"
          "      --host: the hypervisor it runs on, in a fleet sharing one PostgreSQL\n"
          "      database (default: the config's agent.host; none on a single host).\n"
          "      Only that host's portcullisd enforces it.\n"
          "  vps update ID [--addr CIDR...] [--iface IF] [--mac MAC] [--by WHO]\n"
          "          [--reason TEXT]\n"
          "      Changes a registered VPS's addresses (--addr, also --address: the\n"
          "      list given replaces every one), interface or MAC, refused as vps add\n"
          "      refuses them.  Owner, site and language stay.  Values it has already\n"
          "      are no change: nothing is written (\"unchanged\").\n"
          "  vps move ID --host H [--iface IF] [--by WHO] [--reason TEXT]\n"
          "      The VPS now runs on hypervisor H, on interface IF there (required to\n"
          "      another host: a name is the host's; back to the host that still\n"
          "      holds it, a migration called off, its interface there).  Its\n"
          "      exceptions, filters (with their remaining time), suspension and\n"
          "      history stay with it.  The host it leaves keeps enforcing it until\n"
          "      H's portcullisd has it in its kernel (vps.arrive in the audit log),\n"
          "      and while the VM's interface is still there: no moment is\n"
          "      unenforced.  Refused: an interface another VPS has on H.  Until the\n"
          "      host it left records that the VM's interface is gone from it\n"
          "      (vps.depart), the move is unconfirmed: list and show say \"not\n"
          "      confirmed by\" that host (--json: \"departing_from\").  An agent\n"
          "      token may pull any VPS onto its host: an admin undoes a claim by\n"
          "      moving the VPS back there (no --iface: its interface there).\n"
          "  vps depart ID --reason TEXT [--by WHO]\n"
          "      Confirms, for the host a VPS moved away from, that its VM has left\n"
          "      it: for a host that cannot say so itself -- dead for good, or its\n"
          "      portcullisd started without the VM and without a snapshot.  (A live\n"
          "      host's agent records vps.depart by itself once the VM's interface is\n"
          "      gone, and tries again at each periodic pass until the database has\n"
          "      it.)  Audited as vps.depart by WHO with TEXT, which is required: how\n"
          "      you know.  Afterwards the move shows as confirmed, and a token of\n"
          "      the host it moved to may remove it or change its addresses.  Only\n"
          "      an admin: the API refuses every agent token (403).  Exits 1,\n"
          "      changing nothing, if the VPS has no move to confirm (never moved\n"
          "      between hosts, moved back, or confirmed already); 2 on an error.\n"
          "  vps start ID [--by WHO] [--reason TEXT]\n"
          "  vps stop ID [--by WHO] [--reason TEXT]\n"
          "      Records that the VM runs or was stopped, as its VM manager says\n"
          "      (contrib/ has libvirt and Proxmox hooks that call them).  Shown by\n"
          "      list and show; a stopped VPS keeps its exceptions, filters and\n"
          "      suspension in force.  A new VPS is running.\n"
          "  vps remove ID [--by WHO] [--reason TEXT] [--admin-override]\n"
          "      Deletes the VPS and its exceptions and filters; the audit log keeps\n"
          "      its history.  A terminated VPS only with --admin-override.\n"
          "  vps list\n"
          "      One line per VPS: site, interface, addresses, state, run state.\n"
          "  vps show ID\n"
          "      The VPS and the restrictions in force: site rules, exceptions,\n"
          "      filters, suspension.\n" },
        { "explain", cmd_explain, "ID PROTO/PORT [out|in] [PROTO/PORT...]",
          "the verdict for a flow of a VPS, and why",
          "Prints the verdict (allow, reject, redirect, drop) for a flow of the VPS ID\n"
          "and the chain of reasons: suspension, filter, site rule, exception (or the\n"
          "last one, if it ran out), with their ids, tickets and incidents.\n"
          "PROTO/PORT is tcp/465, udp/500, or a port-less protocol (gre, esp).  The\n"
          "direction is out (egress: the VPS connects out; the default) or in\n"
          "(ingress: someone connects to the VPS).\n"
          "Several flows print a table.\n"
          "Exit status: 0 allowed, 1 blocked or redirected (any flow), 2 error.\n"
          "Example: portcullis explain vps-101 tcp/465 out\n" },
        { "exception", cmd_exception, "grant|revoke|list ...",
          "grant or revoke a VPS's exception to a blocked service",
          "  exception grant ID SERVICE --by WHO --reason TEXT [--ticket N] [--until TIME]\n"
          "      Lifts the site's rule for SERVICE on this one VPS.  Refused when the\n"
          "      site does not restrict SERVICE, its rule is not exemptable or its\n"
          "      profile has `exceptions: none`.  --ticket N approves that ticket\n"
          "      (`ticket approve N`): it must be this VPS's, ask for SERVICE and be\n"
          "      open or investigating.  TIME is\n"
          "      2026-12-31, 2026-12-31T18:00:00Z or +30d.\n"
          "  exception grant ID source-prefix:CIDR --by WHO --reason TEXT [...]\n"
          "      At a site with anti-spoofing: the VPS may also send from CIDR (an extra\n"
          "      routed prefix, a VPS acting as a router or VPN gateway).\n"
          "  exception grant ID scanning --by WHO --reason TEXT [...]\n"
          "      An approved security audit: the VPS's port scans are neither held\n"
          "      back nor detected (until TIME, if given; the kernel ends it on time).\n"
          "      Where the site's policy answers port scans.\n"
          "  exception revoke ID SERVICE --by WHO --reason TEXT\n"
          "  exception list [ID]\n"
          "Both changes are audited and queue an email to the VPS's owner.\n" },
        { "filter", cmd_filter, "place|lift ...",
          "filter a VPS's traffic in one direction (abuse handling)",
          "  filter place ID (--service NAME | --ports PROTO/PORT[-PORT] | --all)\n"
          "               [--direction out|in|both] --by WHO --reason TEXT [--until TIME]\n"
          "      Blocks that traffic of one VPS in the kernel (default: outbound),\n"
          "      whatever its site allows; a filter covering tcp/25 also makes the SMTP\n"
          "      proxy refuse the VPS's mail with the reason.  TIME as for exceptions.\n"
          "  filter lift ID FILTER --by WHO --reason TEXT\n"
          "Both are audited and queue an email to the owner; `vps show` lists filters.\n" },
        { "suspend", cmd_suspend, "ID --by WHO --reason TEXT [--incident N]",
          "suspend a VPS: all its traffic dropped, both ways",
          "Drops every packet from and to the VPS in the kernel (and its traffic to\n"
          "the hypervisor), records the suspension with who and why (and the incident\n"
          "behind it, if any) in the audit log, and queues an email to the owner.\n" },
        { "unsuspend", cmd_unsuspend, "ID --by WHO --reason TEXT [--admin-override]",
          "lift a VPS's suspension",
          "Lifts the suspension, audited, and queues an email to the owner.\n"
          "A termination (an attempt to circumvent a response: docs/DETECTION.md)\n"
          "is refused unless an admin gives --admin-override, audited as\n"
          "vps.unterminate with WHO and TEXT.\n" },
        { "terminate", cmd_terminate, "ID --by WHO --reason TEXT [--incident N]",
          "terminate a VPS: a suspension only an admin lifts",
          "Suspends the VPS for good (or makes its suspension a termination),\n"
          "audited as vps.terminate, and queues in one transaction the owner's\n"
          "email (the abuse team gets its copy with the evidence) and, with\n"
          "notifications.webhook, the signed event for the provider's billing.\n"
          "portcullisd terminates by itself an attempt to circumvent a response\n"
          "whose policy lists 'terminate' (docs/DETECTION.md).  Lifted only by\n"
          "`unsuspend --admin-override` or `action lift --admin-override`.\n" },
        { "ticket", cmd_ticket, "open|list|show|investigate|approve|deny|revoke ...",
          "a customer's request for an exception: investigation, decision, evidence",
          "A ticket asks for an exception for one VPS: a service (or only some of its\n"
          "ports), port scanning, or a source prefix.  It goes\n"
          "\n"
          "    open -> investigating -> approved | denied,   approved -> revoked | expired\n"
          "\n"
          "and every step records who, when and a note (the ticket's history and the\n"
          "audit log).  Only support and admins decide; a customer opens and reads\n"
          "tickets of their own VPSes.  The owner is emailed (in their language) when\n"
          "the ticket is received, approved (what opened, until when) or denied (why).\n"
          "\n"
          "  ticket open ID SERVICE --by WHO --text TEXT [--ports PORTS]\n"
          "              [--duration DURATION] [--evidence TEXT]...\n"
          "      Records the request.  SERVICE is a service (see `portcullis\n"
          "      services`), `scanning` or `source-prefix:CIDR`.  --ports asks for only\n"
          "      these ports of the service, e.g. tcp/587,tcp/465 (a bare port is tcp).\n"
          "      --duration is how long it is needed: 30d, 12h, 2w.  --evidence is\n"
          "      documentation or a link (repeat it for more).  Refused at once, with\n"
          "      the reason, when no approval could answer it: a rule that is not\n"
          "      exemptable (provider A's port-25 proxy), a policy without\n"
          "      exceptions, a service the site does not restrict (\"nothing to\n"
          "      exempt\"), ports the site does not block for the service.\n"
          "  ticket list [ID] [--state STATE]\n"
          "      Newest first, of the VPS ID or of every VPS; STATE is open,\n"
          "      investigating, approved, denied, revoked, expired or closed.\n"
          "  ticket show N\n"
          "      The ticket, its history and, for support, its findings: the VPS's\n"
          "      blocked attempts on the service's ports (the kernel's counters as\n"
          "      portcullisd last recorded them: no root needed), its incidents\n"
          "      (blocked-use ones are the terms of service's events) and actions,\n"
          "      and the customer's earlier tickets, 100 of each at most.  --json\n"
          "      puts them in `findings`, as the HTTP API does.\n"
          "  ticket investigate N --by WHO [--note TEXT]\n"
          "      open -> investigating: support is on it.\n"
          "  ticket approve N --by WHO [--ports PORTS] [--until TIME] [--note TEXT]\n"
          "      open or investigating -> approved: grants exactly what was asked,\n"
          "      the whole service or only its ports (--ports: fewer than asked,\n"
          "      never more), with the ticket's number, until TIME (2026-12-31,\n"
          "      2026-12-31T18:00:00Z, +30d; default: the duration asked from now,\n"
          "      or no end).  portcullisd enforces it as any exception.\n"
          "  ticket deny N --by WHO --reason TEXT\n"
          "      open or investigating -> denied; the owner's email gives TEXT.\n"
          "  ticket revoke N --by WHO --reason TEXT\n"
          "      approved -> revoked: the exception is revoked, the block is back.\n"
          "An approved ticket becomes expired when its exception ends.\n"
          "`exception grant ID SERVICE --ticket N` is the same as `ticket approve N`.\n"
          "\n"
          "The CLI acts as an admin; --role support|customer (and --customer EMAIL\n"
          "for a customer: the owner they are) acts as another role, to check what\n"
          "that role may do.  Illegal steps are refused naming the ticket's state\n"
          "(\"ticket #3 is denied: only an open or investigating ticket can be\n"
          "approved\"); exit status 2 for every error.\n" },
        { "token", cmd_token, "create|list|revoke ...",
          "bearer tokens of the HTTP API (portcullis-apid)",
          "  token create NAME --role ROLE [--customer EMAIL] [--host H | --any-host]\n"
          "          [--expires TIME] --by WHO\n"
          "      Mints a token and prints it on stdout, this once: the database keeps\n"
          "      only its SHA-256.  NAME is who its changes are audited as.  ROLE:\n"
          "        admin     everything, the VPS registry and tokens included\n"
          "        support   tickets, exceptions, incidents and actions; not the registry\n"
          "        customer  bound to --customer EMAIL, the owner address of their VPSes:\n"
          "                  sees and asks about those only, never decides\n"
          "        agent     the VM manager's hooks: keeps the registry in step;\n"
          "                  bound to hypervisor --host H (default: the config's\n"
          "                  agent.host): registers onto H, sees and changes H's\n"
          "                  VPSes only, and moves a VPS only onto H (a migration's\n"
          "                  destination pulls it).  --any-host: every host's, said\n"
          "                  explicitly (a single host; a fleet should not)\n"
          "      TIME is 2026-12-31, 2026-12-31T18:00:00Z or +90d (default: never).\n"
          "  token list [--all]\n"
          "      The tokens in force (--all: the revoked too), with the host an agent\n"
          "      token is bound to (any: none) and when each was last used (to the\n"
          "      minute).\n"
          "  token revoke NAME --by WHO\n"
          "      The API refuses the token from the next request on.\n"
          "Both changes are audited (token.create, token.revoke), never with the token.\n"
          "Example: TOKEN=$(portcullis token create hv17-hooks --role agent --host hv17 --by alice)\n" },
        { "status", cmd_status, "",
          "the agent's health: ruleset in sync, VPSes, last change and its latency",
          "Asks portcullisd (through the control socket of the configuration) whether\n"
          "the kernel enforces what the database says, how many VPSes and elements it\n"
          "holds, and the last change with how long it took to reach the kernel.\n"
          "Exit status: 0 in sync, 1 out of sync or the agent is not running.\n" },
        { "fleet", cmd_fleet, "status",
          "every hypervisor's agent: heartbeat, VPSes, how far it follows the changes",
          "For a fleet sharing one PostgreSQL database: one line per hypervisor whose\n"
          "portcullisd runs with a host (agent.host, or portcullisd --host): its last\n"
          "heartbeat (every agent.attempts-interval), the VPSes it enforces, the last\n"
          "change of the feed it applied and how many newer ones the database has\n"
          "(an agent follows them as they commit: it catches up within a second),\n"
          "the changes it applied since it started, and whether its kernel holds\n"
          "what its model says.  STATE is ok, out-of-sync, or stale (no heartbeat\n"
          "for three intervals: the agent is stopped, hung or cut off; its kernel\n"
          "keeps enforcing what it last had).\n"
          "Exit status: 0 every agent ok, 1 one is not (or none reported), 2 error.\n" },
        { "audit", cmd_audit, "[ID] [--limit N]",
          "the audit log, of one VPS or of everything",
          "Prints the append-only audit log, oldest first: when, who, what, the\n"
          "object, the reason, and the state before and after (with --json).\n"
          "--limit N shows the newest N entries (default 50; 0 for all).\n" },
        { "notification", cmd_notification, "list|show|retry ...",
          "the owners' email outbox: what was sent, what waits, dead letters",
          "Every change that concerns a VPS's owner (exceptions, filters, suspensions)\n"
          "queues an email in the database, in the same transaction as the change, and\n"
          "so do the agent's incidents; portcullisd's notifier delivers it through the\n"
          "configured relay, retrying temporary failures.  A notification is pending\n"
          "(waiting for its next attempt), sent (the relay accepted it) or failed (a\n"
          "dead letter: the notifier gave up; the audit log has a notification.fail\n"
          "entry).\n"
          "\n"
          "  notification list [ID] [--state pending|sent|failed] [--limit N]\n"
          "      The newest notifications first, of the VPS ID (removed ones included)\n"
          "      or of every VPS: when queued, VPS, kind, recipient, language, state,\n"
          "      attempts, the next attempt (pending) or when it was sent, and the\n"
          "      last error.  --limit N shows the newest N (default 50; 0 for all).\n"
          "  notification show N\n"
          "      Every field of notification N, its Message-ID, and the payload the\n"
          "      email is written from.\n"
          "  notification retry N --by WHO --reason TEXT\n"
          "      Queues a failed (or waiting) notification again: due now, attempts\n"
          "      back to 0, the same Message-ID.  Audited.  A sent notification is\n"
          "      refused: the owner would get the email twice.\n"
          "\n"
          "Delivery is at least once: if portcullisd stops between the relay accepting\n"
          "a message and recording it, the message is sent again with the same\n"
          "Message-ID.\n"
          "Exit status: 0 success, 2 an error (no such notification, a sent one\n"
          "retried, bad arguments).\n"
          "Example: portcullis notification list vps-101 --state failed\n" },
        { "incident", cmd_incident, "list|show|close ...",
          "the abuse incidents the detectors opened, and closing them",
          "An incident is one episode of abuse of one kind by one VPS (scan, spam,\n"
          "spoof, blocked-use, ...): when it was first and last seen, how many\n"
          "observations, the detector's evidence, and the actions (filters,\n"
          "suspensions) placed for it.  portcullisd opens them; support reads and\n"
          "closes them.\n"
          "\n"
          "  incident list [ID] [--open|--all] [--kind KIND]\n"
          "      The newest first, of the VPS ID or of every VPS: open ones only\n"
          "      (--open, the default) or closed ones too (--all), of one KIND.\n"
          "  incident show N\n"
          "      Incident N: first and last seen, count, evidence, and every action\n"
          "      placed for it with its state (active, expired, lifted).\n"
          "  incident close N --by WHO --reason TEXT [--lift-actions]\n"
          "      Support's verdict that the episode is over: the next abuse of that\n"
          "      kind opens a new incident (and the escalation ladder still counts\n"
          "      this one).  Audited (incident.close).  Closing lifts nothing: the\n"
          "      filters placed for it run to their end, so that a VPS is not let\n"
          "      loose by closing the paperwork.  With --lift-actions its active\n"
          "      actions are lifted too, in the same transaction, each as `action\n"
          "      lift` does.  A closed incident is refused.\n"
          "\n"
          "Stored text (kind, evidence, reasons) is shown escaped; --json carries it\n"
          "as it is (docs/JSON.md).\n"
          "Exit status: 0 success, 2 an error (no such incident or VPS, closed\n"
          "already, bad arguments), with nothing changed.\n"
          "Example: portcullis incident close 12 --by alice --reason \"customer patched\"\n" },
        { "action", cmd_action, "list|lift|extend|make-permanent ...",
          "the filters and suspensions in force or past: lift, extend, keep",
          "An action is a filter or a suspension, placed by support (`filter place`,\n"
          "`suspend`) or by portcullisd's response to an incident.  Its number is\n"
          "the filter's or the suspension's number.  At any time it is active,\n"
          "expired (its end passed: the kernel dropped it) or lifted.\n"
          "\n"
          "  action list [ID] [--active]\n"
          "      The newest first, of the VPS ID or of every VPS; --active: only\n"
          "      those in force now.\n"
          "  action lift N --by WHO --reason TEXT\n"
          "      Ends the active filter or suspension N now: a filter as `filter\n"
          "      lift`, a suspension as `unsuspend` (which also closes the VPS's open\n"
          "      incidents).  Audited (filter.lift, vps.unsuspend); the owner is\n"
          "      emailed.  An action lifted or expired already is refused, and so\n"
          "      is a termination without --admin-override (an admin's, audited as\n"
          "      vps.unterminate).\n"
          "  action extend N --until TIME --by WHO --reason TEXT\n"
          "      Gives the active filter N a later end (TIME as for `filter place`:\n"
          "      2026-12-31, 2026-12-31T18:00:00Z or +30d).  Audited (filter.extend,\n"
          "      before and after).  Refused: an earlier end, a permanent filter, a\n"
          "      suspension (it has no end).\n"
          "  action make-permanent N --by WHO --reason TEXT\n"
          "      Removes the end of the active filter N: it stays until lifted.\n"
          "      Audited (filter.make-permanent).\n"
          "\n"
          "Every change is told to portcullisd, which changes the kernel at once (a\n"
          "lifted filter's element goes, a new end is the element's new timeout).\n"
          "extend and make-permanent queue no email to the owner.\n"
          "Exit status: 0 success, 2 an error (no such action or VPS, wrong state,\n"
          "bad arguments), with nothing changed.\n"
          "Example: portcullis action extend 7 --until +7d --by alice --reason \"scanning again\"\n" },
        { NULL, NULL, NULL, NULL, NULL },
};

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: portcullis [-c FILE] [--db URL] [--json] COMMAND [ARGS...]\n"
                "\n"
                "Portcullis enforces a VPS hosting provider's network policy: services\n"
                "blocked per site with exceptions per VPS, the transparent SMTP proxy,\n"
                "anti-spoofing, abuse filters and suspensions.  This command manages the\n"
                "policy and its state, and explains any verdict.\n"
                "\n"
                "Commands:\n");
        for (const struct cli_command *cmd = cli_commands; cmd->name != NULL; cmd++)
                fprintf(out, "  %-10s %s\n", cmd->name, cmd->summary);
        fprintf(out,
                "\n"
                "Options:\n"
                "  -c, --config FILE  configuration file (default $PORTCULLIS_CONFIG, then\n"
                "                     " DEFAULT_CONFIG ")\n"
                "      --db URL       database to use instead of the config's `database`\n"
                "                     (sqlite:PATH; a relative PATH is relative to the\n"
                "                     working directory, one in the config file to the\n"
                "                     file's folder); only `init` creates a database\n"
                "      --json         machine-readable output (see docs/JSON.md)\n"
                "  -h, --help         this help; `portcullis COMMAND --help` for a command\n"
                "      --version      print the version\n"
                "\n"
                "Free text (--reason, --text, --owner) is one line of UTF-8 without control\n"
                "characters (newline, tab, ESC, DEL, U+0080-U+009F) or bidirectional\n"
                "controls (U+202A-U+202E, U+2066-U+2069, U+200E-U+200F, U+061C: text a\n"
                "terminal would show reordered); anything else is refused, naming the\n"
                "option.  Text output shows stored control characters escaped (\\n, \\x1b,\n"
                "\\u009b, \\u202e, and a backslash as \\\\); --json carries them as they are.\n"
                "\n"
                "Exit status: 0 success, 1 a negative answer (check failed; explain: the\n"
                "flow is blocked or redirected), 2 an error.\n");
}

static const struct cli_command *command_find(const char *name)
{
        for (const struct cli_command *cmd = cli_commands; cmd->name != NULL; cmd++)
                if (strcmp(cmd->name, name) == 0)
                        return cmd;
        return NULL;
}

/* Removes every "--json" before a "--" from argv, setting c->json. */
static int strip_json(struct cli *c, int argc, char **argv)
{
        int out = 0;

        for (int i = 0; i < argc; i++) {
                if (strcmp(argv[i], "--") == 0) {
                        while (i < argc)
                                argv[out++] = argv[i++];
                        break;
                }
                if (strcmp(argv[i], "--json") == 0)
                        c->json = true;
                else
                        argv[out++] = argv[i];
        }
        argv[out] = NULL;
        return out;
}

int main(int argc, char **argv)
{
        struct cli c = { 0 };
        const struct cli_command *cmd;
        int i, r;

        argc = strip_json(&c, argc, argv);
        c.config_path = getenv("PORTCULLIS_CONFIG");
        for (i = 1; i < argc && argv[i][0] == '-'; i++) {
                const char *a = argv[i];

                if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
                        usage(stdout);
                        return CLI_OK;
                } else if (strcmp(a, "--version") == 0) {
                        printf("portcullis %s\n", PC_VERSION);
                        return CLI_OK;
                } else if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && i + 1 < argc)
                        c.config_path = argv[++i];
                else if (strcmp(a, "--db") == 0 && i + 1 < argc)
                        c.db_url = argv[++i];
                else {
                        cli_error("unknown option '%s' (see portcullis --help)", a);
                        return CLI_ERROR;
                }
        }
        if (c.config_path == NULL || c.config_path[0] == '\0')
                c.config_path = DEFAULT_CONFIG;
        if (i == argc) {
                usage(stderr);
                return CLI_ERROR;
        }
        cmd = command_find(argv[i]);
        if (cmd == NULL) {
                cli_error("unknown command '%s' (see portcullis --help)", argv[i]);
                return CLI_ERROR;
        }
        if (cli_wants_help(cmd->name, argc - i, argv + i))
                return CLI_OK;
        r = cmd->run(&c, argc - i, argv + i);
        c.model = pc_model_free(c.model);
        c.store = pc_store_close(c.store);
        c.cfg = pc_config_free(c.cfg);
        return r;
}
