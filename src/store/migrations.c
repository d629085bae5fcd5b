/* The SQLite schema, as an ordered list of migrations.  The version a
 * database is at lives in PRAGMA user_version; a migration is never
 * edited once released: a change to the schema is a new entry at the end.
 *
 * Conventions: times are INTEGER unix seconds UTC; NULL means "none"
 * (no end, not revoked, no ticket).  The audit and notification tables
 * hold vps_id as plain text without a foreign key, so that history
 * survives the removal of a VPS. */
#include "store/store-internal.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>

#include <sqlite3.h>

#include "base/util.h"

static const char schema_v1[] =
        "CREATE TABLE vps (\n"
        "        id TEXT PRIMARY KEY NOT NULL,\n"
        "        owner TEXT NOT NULL,\n"
        "        lang TEXT NOT NULL,\n"
        "        site TEXT NOT NULL,\n"
        "        iface TEXT NOT NULL DEFAULT '',\n"
        "        mac TEXT,\n" /* "aa:bb:cc:dd:ee:ff" or NULL */
        "        created INTEGER NOT NULL\n"
        ");\n"
        "CREATE INDEX vps_iface ON vps(iface);\n"
        "CREATE TABLE vps_address (\n"
        "        vps_id TEXT NOT NULL REFERENCES vps(id) ON DELETE CASCADE,\n"
        "        family INTEGER NOT NULL CHECK (family IN (4, 6)),\n"
        "        prefix TEXT NOT NULL UNIQUE\n" /* canonical "addr/len" */
        ");\n"
        "CREATE INDEX vps_address_vps ON vps_address(vps_id);\n"
        "\n"
        "CREATE TABLE ticket (\n"
        "        id INTEGER PRIMARY KEY,\n"
        "        vps_id TEXT NOT NULL REFERENCES vps(id) ON DELETE CASCADE,\n"
        "        service TEXT NOT NULL,\n"
        "        state TEXT NOT NULL DEFAULT 'pending'\n"
        "                CHECK (state IN ('pending', 'approved', 'denied', 'closed')),\n"
        "        opened_by TEXT NOT NULL,\n"
        "        opened INTEGER NOT NULL,\n"
        "        text TEXT NOT NULL\n"
        ");\n"
        "CREATE INDEX ticket_vps ON ticket(vps_id);\n"
        "CREATE TABLE ticket_event (\n"
        "        id INTEGER PRIMARY KEY,\n"
        "        ticket_id INTEGER NOT NULL REFERENCES ticket(id) ON DELETE CASCADE,\n"
        "        at INTEGER NOT NULL,\n"
        "        \"by\" TEXT NOT NULL,\n"
        "        kind TEXT NOT NULL,\n" /* "opened", "approved", ... */
        "        text TEXT\n"
        ");\n"
        "CREATE INDEX ticket_event_ticket ON ticket_event(ticket_id);\n"
        "\n"
        "CREATE TABLE exception (\n"
        "        id INTEGER PRIMARY KEY,\n"
        "        vps_id TEXT NOT NULL REFERENCES vps(id) ON DELETE CASCADE,\n"
        "        service TEXT NOT NULL,\n"
        "        ticket_id INTEGER REFERENCES ticket(id) ON DELETE SET NULL,\n"
        "        \"by\" TEXT NOT NULL,\n"
        "        reason TEXT,\n"
        "        created INTEGER NOT NULL,\n"
        "        until INTEGER,\n"
        "        revoked_at INTEGER,\n"
        "        revoked_by TEXT\n"
        ");\n"
        /* At most one unrevoked exception per VPS and service. */
        "CREATE UNIQUE INDEX exception_active ON exception(vps_id, service)\n"
        "        WHERE revoked_at IS NULL;\n"
        "CREATE INDEX exception_vps ON exception(vps_id);\n"
        "CREATE INDEX exception_live ON exception(vps_id) WHERE revoked_at IS NULL;\n"
        "CREATE INDEX exception_ticket ON exception(ticket_id) WHERE ticket_id IS NOT NULL;\n"
        "\n"
        "CREATE TABLE incident (\n"
        "        id INTEGER PRIMARY KEY,\n"
        "        vps_id TEXT NOT NULL REFERENCES vps(id) ON DELETE CASCADE,\n"
        "        kind TEXT NOT NULL,\n" /* "scan", "spam", "spoof", ... */
        "        first_seen INTEGER NOT NULL,\n"
        "        last_seen INTEGER NOT NULL,\n"
        "        count INTEGER NOT NULL DEFAULT 0,\n"
        "        evidence TEXT,\n" /* JSON */
        "        state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed'))\n"
        ");\n"
        "CREATE INDEX incident_vps ON incident(vps_id, first_seen);\n"
        "\n"
        /* Filters and suspensions. */
        "CREATE TABLE action (\n"
        "        id INTEGER PRIMARY KEY,\n"
        "        vps_id TEXT NOT NULL REFERENCES vps(id) ON DELETE CASCADE,\n"
        "        kind TEXT NOT NULL CHECK (kind IN ('filter', 'suspension')),\n"
        "        direction TEXT NOT NULL CHECK (direction IN ('egress', 'ingress', 'both')),\n"
        "        scope TEXT NOT NULL,\n" /* 'all', 'service:NAME', 'tcp/25' */
        "        incident_id INTEGER REFERENCES incident(id) ON DELETE SET NULL,\n"
        "        \"by\" TEXT NOT NULL,\n"
        "        reason TEXT,\n"
        "        created INTEGER NOT NULL,\n"
        "        until INTEGER,\n"
        "        lifted_at INTEGER,\n"
        "        lifted_by TEXT\n"
        ");\n"
        "CREATE INDEX action_vps ON action(vps_id);\n"
        "CREATE INDEX action_live ON action(vps_id) WHERE lifted_at IS NULL;\n"
        "CREATE INDEX action_incident ON action(incident_id) WHERE incident_id IS NOT NULL;\n"
        /* At most one suspension in force per VPS. */
        "CREATE UNIQUE INDEX action_one_suspension ON action(vps_id)\n"
        "        WHERE kind = 'suspension' AND lifted_at IS NULL;\n"
        "\n"
        /* The outbox: what the notifier must send.  Nothing here is sent by
         * the store. */
        "CREATE TABLE notification (\n"
        "        id INTEGER PRIMARY KEY,\n"
        "        created INTEGER NOT NULL,\n"
        "        vps_id TEXT NOT NULL,\n"
        "        kind TEXT NOT NULL,\n" /* "exception.granted", ... */
        "        recipient TEXT NOT NULL,\n"
        "        language TEXT NOT NULL,\n"
        "        payload TEXT NOT NULL,\n" /* JSON */
        "        state TEXT NOT NULL DEFAULT 'pending'\n"
        "                CHECK (state IN ('pending', 'sent', 'failed')),\n"
        "        attempts INTEGER NOT NULL DEFAULT 0,\n"
        "        next_attempt INTEGER NOT NULL,\n"
        "        last_error TEXT,\n"
        "        message_id TEXT\n"
        ");\n"
        "CREATE INDEX notification_due ON notification(state, next_attempt);\n"
        "CREATE INDEX notification_vps ON notification(vps_id);\n"
        "\n"
        "CREATE TABLE audit (\n"
        "        id INTEGER PRIMARY KEY,\n"
        "        at INTEGER NOT NULL,\n"
        "        \"by\" TEXT NOT NULL,\n"
        "        action TEXT NOT NULL,\n"
        "        object TEXT NOT NULL,\n"
        "        vps_id TEXT,\n"
        "        reason TEXT,\n"
        "        \"before\" TEXT,\n"
        "        \"after\" TEXT\n"
        ");\n"
        "CREATE INDEX audit_vps ON audit(vps_id);\n"
        "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit\n"
        "BEGIN\n"
        "        SELECT RAISE(ABORT, 'audit log is append-only');\n"
        "END;\n"
        "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit\n"
        "BEGIN\n"
        "        SELECT RAISE(ABORT, 'audit log is append-only');\n"
        "END;\n";

/* The outbox's delivery state machine: when a notification was sent, and
 * two rules the delivery worker relies on, kept by the schema so that no
 * bug or hand edit can break them: a Message-ID, once recorded, never
 * changes (a retry after a crash must reuse it) and names one notification
 * only, and a sent notification stays sent (it must not be mailed
 * twice). */
static const char schema_v2[] =
        "ALTER TABLE notification ADD COLUMN sent_at INTEGER;\n"
        "CREATE UNIQUE INDEX notification_message_id ON notification(message_id)\n"
        "        WHERE message_id IS NOT NULL;\n"
        "CREATE TRIGGER notification_message_id_fixed BEFORE UPDATE OF message_id ON notification\n"
        "WHEN OLD.message_id IS NOT NULL AND NEW.message_id IS NOT OLD.message_id\n"
        "BEGIN\n"
        "        SELECT RAISE(ABORT, 'a notification''s message_id never changes once set');\n"
        "END;\n"
        "CREATE TRIGGER notification_sent_final BEFORE UPDATE OF state ON notification\n"
        "WHEN OLD.state = 'sent' AND NEW.state != 'sent'\n"
        "BEGIN\n"
        "        SELECT RAISE(ABORT, 'a sent notification stays sent');\n"
        "END;\n";

/* v3: when the owner was told that an exception ends soon (once each). */
static const char schema_v3[] = "ALTER TABLE exception ADD COLUMN warned_at INTEGER;\n";

/* v4: ids are never given twice.  Without AUTOINCREMENT SQLite takes the
 * highest id + 1, so removing the newest VPS (and with it its tickets,
 * exceptions, filters and incidents) let the next VPS's objects take the
 * same numbers, and the audit log named two objects with one id.  Each
 * table is rebuilt with AUTOINCREMENT (SQLite cannot alter a key), rows and
 * ids kept, and its sequence starts past every id it or the audit log has
 * seen.  Runs with foreign keys off (pc_sqlite_migrate), so that dropping a
 * parent table cascades nothing. */
#define SEQ_FROM(table, object, skip) \
        "DELETE FROM sqlite_sequence WHERE name = '" table "';\n" \
        "INSERT INTO sqlite_sequence (name, seq) VALUES ('" table "', max(\n" \
        "        coalesce((SELECT max(id) FROM " table "), 0),\n" \
        "        coalesce((SELECT max(CAST(substr(object, " skip ") AS INTEGER)) FROM audit\n" \
        "                  WHERE object LIKE '" object "/%'), 0)));\n"

static const char schema_v4[] =
        "CREATE TABLE ticket_v4 (\n"
        "        id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
        "        vps_id TEXT NOT NULL REFERENCES vps(id) ON DELETE CASCADE,\n"
        "        service TEXT NOT NULL,\n"
        "        state TEXT NOT NULL DEFAULT 'pending'\n"
        "                CHECK (state IN ('pending', 'approved', 'denied', 'closed')),\n"
        "        opened_by TEXT NOT NULL,\n"
        "        opened INTEGER NOT NULL,\n"
        "        text TEXT NOT NULL\n"
        ");\n"
        "INSERT INTO ticket_v4 (id, vps_id, service, state, opened_by, opened, text)\n"
        "        SELECT id, vps_id, service, state, opened_by, opened, text FROM ticket;\n"
        "DROP TABLE ticket;\n"
        "ALTER TABLE ticket_v4 RENAME TO ticket;\n"
        "CREATE INDEX ticket_vps ON ticket(vps_id);\n"
        SEQ_FROM("ticket", "ticket", "8")
        "\n"
        "CREATE TABLE ticket_event_v4 (\n"
        "        id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
        "        ticket_id INTEGER NOT NULL REFERENCES ticket(id) ON DELETE CASCADE,\n"
        "        at INTEGER NOT NULL,\n"
        "        \"by\" TEXT NOT NULL,\n"
        "        kind TEXT NOT NULL,\n"
        "        text TEXT\n"
        ");\n"
        "INSERT INTO ticket_event_v4 (id, ticket_id, at, \"by\", kind, text)\n"
        "        SELECT id, ticket_id, at, \"by\", kind, text FROM ticket_event;\n"
        "DROP TABLE ticket_event;\n"
        "ALTER TABLE ticket_event_v4 RENAME TO ticket_event;\n"
        "CREATE INDEX ticket_event_ticket ON ticket_event(ticket_id);\n"
        "\n"
        "CREATE TABLE exception_v4 (\n"
        "        id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
        "        vps_id TEXT NOT NULL REFERENCES vps(id) ON DELETE CASCADE,\n"
        "        service TEXT NOT NULL,\n"
        "        ticket_id INTEGER REFERENCES ticket(id) ON DELETE SET NULL,\n"
        "        \"by\" TEXT NOT NULL,\n"
        "        reason TEXT,\n"
        "        created INTEGER NOT NULL,\n"
        "        until INTEGER,\n"
        "        revoked_at INTEGER,\n"
        "        revoked_by TEXT,\n"
        "        warned_at INTEGER\n"
        ");\n"
        "INSERT INTO exception_v4 (id, vps_id, service, ticket_id, \"by\", reason, created, until,\n"
        "                          revoked_at, revoked_by, warned_at)\n"
        "        SELECT id, vps_id, service, ticket_id, \"by\", reason, created, until, revoked_at,\n"
        "               revoked_by, warned_at FROM exception;\n"
        "DROP TABLE exception;\n"
        "ALTER TABLE exception_v4 RENAME TO exception;\n"
        "CREATE UNIQUE INDEX exception_active ON exception(vps_id, service)\n"
        "        WHERE revoked_at IS NULL;\n"
        "CREATE INDEX exception_vps ON exception(vps_id);\n"
        "CREATE INDEX exception_live ON exception(vps_id) WHERE revoked_at IS NULL;\n"
        "CREATE INDEX exception_ticket ON exception(ticket_id) WHERE ticket_id IS NOT NULL;\n"
        SEQ_FROM("exception", "exception", "11")
        "\n"
        "CREATE TABLE incident_v4 (\n"
        "        id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
        "        vps_id TEXT NOT NULL REFERENCES vps(id) ON DELETE CASCADE,\n"
        "        kind TEXT NOT NULL,\n"
        "        first_seen INTEGER NOT NULL,\n"
        "        last_seen INTEGER NOT NULL,\n"
        "        count INTEGER NOT NULL DEFAULT 0,\n"
        "        evidence TEXT,\n"
        "        state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed'))\n"
        ");\n"
        "INSERT INTO incident_v4 (id, vps_id, kind, first_seen, last_seen, count, evidence, state)\n"
        "        SELECT id, vps_id, kind, first_seen, last_seen, count, evidence, state FROM incident;\n"
        "DROP TABLE incident;\n"
        "ALTER TABLE incident_v4 RENAME TO incident;\n"
        "CREATE INDEX incident_vps ON incident(vps_id, first_seen);\n"
        SEQ_FROM("incident", "incident", "10")
        "\n"
        "CREATE TABLE action_v4 (\n"
        "        id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
        "        vps_id TEXT NOT NULL REFERENCES vps(id) ON DELETE CASCADE,\n"
        "        kind TEXT NOT NULL CHECK (kind IN ('filter', 'suspension')),\n"
        "        direction TEXT NOT NULL CHECK (direction IN ('egress', 'ingress', 'both')),\n"
        "        scope TEXT NOT NULL,\n"
        "        incident_id INTEGER REFERENCES incident(id) ON DELETE SET NULL,\n"
        "        \"by\" TEXT NOT NULL,\n"
        "        reason TEXT,\n"
        "        created INTEGER NOT NULL,\n"
        "        until INTEGER,\n"
        "        lifted_at INTEGER,\n"
        "        lifted_by TEXT\n"
        ");\n"
        "INSERT INTO action_v4 (id, vps_id, kind, direction, scope, incident_id, \"by\", reason, created,\n"
        "                       until, lifted_at, lifted_by)\n"
        "        SELECT id, vps_id, kind, direction, scope, incident_id, \"by\", reason, created, until,\n"
        "               lifted_at, lifted_by FROM action;\n"
        "DROP TABLE action;\n"
        "ALTER TABLE action_v4 RENAME TO action;\n"
        "CREATE INDEX action_vps ON action(vps_id);\n"
        "CREATE INDEX action_live ON action(vps_id) WHERE lifted_at IS NULL;\n"
        "CREATE INDEX action_incident ON action(incident_id) WHERE incident_id IS NOT NULL;\n"
        "CREATE UNIQUE INDEX action_one_suspension ON action(vps_id)\n"
        "        WHERE kind = 'suspension' AND lifted_at IS NULL;\n"
        "DELETE FROM sqlite_sequence WHERE name = 'action';\n"
        "INSERT INTO sqlite_sequence (name, seq) VALUES ('action', max(\n"
        "        coalesce((SELECT max(id) FROM action), 0),\n"
        "        coalesce((SELECT max(CAST(substr(object, 8) AS INTEGER)) FROM audit\n"
        "                  WHERE object LIKE 'filter/%'), 0),\n"
        "        coalesce((SELECT max(CAST(substr(object, 12) AS INTEGER)) FROM audit\n"
        "                  WHERE object LIKE 'suspension/%'), 0)));\n";

/* Terminations and webhooks: a suspension may be a termination (only an
 * admin lifts it, and it stays a termination), and the outbox carries,
 * beside the owners' emails, the provider's webhook events (recipient: the
 * URL they go to). */
static const char schema_v5[] =
        "ALTER TABLE action ADD COLUMN terminated INTEGER NOT NULL DEFAULT 0\n"
        "        CHECK (terminated IN (0, 1));\n"
        "CREATE TRIGGER action_terminated_final BEFORE UPDATE OF terminated ON action\n"
        "        WHEN OLD.terminated = 1 AND NEW.terminated = 0\n"
        "BEGIN\n"
        "        SELECT RAISE(ABORT, 'a termination stays a termination');\n"
        "END;\n"
        "ALTER TABLE notification ADD COLUMN channel TEXT NOT NULL DEFAULT 'email'\n"
        "        CHECK (channel IN ('email', 'webhook'));\n";

/* v6: what an operation asks of the fleet is answered by an index, not by
 * loading every VPS (`vps add` at 100,000 VPSes read them all to check
 * one address).  Each address keeps its network in bytes (4 or 16, network
 * order, so that byte order is address order) and its length: the
 * addresses inside a prefix are a range of <net>, those around it one
 * point per shorter length (pc_store_addr_holder).  MACs and live
 * source-prefix exceptions get their own index for the same reason.
 * fill_v6 computes <net> and <len> of the addresses already there. */
static const char schema_v6[] =
        "ALTER TABLE vps_address ADD COLUMN net BLOB;\n"
        "ALTER TABLE vps_address ADD COLUMN len INTEGER;\n"
        "CREATE INDEX vps_address_net ON vps_address(family, net);\n"
        "CREATE INDEX vps_mac ON vps(mac) WHERE mac IS NOT NULL;\n"
        "CREATE INDEX exception_live_service ON exception(service) WHERE revoked_at IS NULL;\n";

/* v7: tickets as a process (docs/OPERATIONS.md): open -> investigating ->
 * approved | denied, approved -> revoked | expired, with the ports asked
 * (NULL: the whole service), the duration asked, the evidence, the last
 * transition (who, when, note) and the exception an approval created.
 * 'pending' becomes 'open'; 'closed' stays for tickets closed before (no
 * transition leaves it).  An approved ticket whose exception was revoked
 * early is 'revoked', one whose exception ran out 'expired'.  Exceptions
 * get the ports they open (NULL: the service's every port).  The table is
 * rebuilt for its CHECK, ids and sequence kept. */
static const char schema_v7[] =
        "ALTER TABLE exception ADD COLUMN ports TEXT;\n"
        "CREATE TABLE ticket_v7 (\n"
        "        id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
        "        vps_id TEXT NOT NULL REFERENCES vps(id) ON DELETE CASCADE,\n"
        "        service TEXT NOT NULL,\n"
        "        ports TEXT,\n"
        "        duration INTEGER,\n"
        "        state TEXT NOT NULL DEFAULT 'open'\n"
        "                CHECK (state IN ('open', 'investigating', 'approved', 'denied', 'revoked',\n"
        "                                 'expired', 'closed')),\n"
        "        opened_by TEXT NOT NULL,\n"
        "        opened INTEGER NOT NULL,\n"
        "        text TEXT NOT NULL,\n"
        "        evidence TEXT,\n"
        "        updated INTEGER,\n"
        "        updated_by TEXT,\n"
        "        note TEXT,\n"
        "        exception_id INTEGER REFERENCES exception(id) ON DELETE SET NULL\n"
        ");\n"
        "INSERT INTO ticket_v7 (id, vps_id, service, state, opened_by, opened, text, exception_id)\n"
        "        SELECT id, vps_id, service, CASE state WHEN 'pending' THEN 'open' ELSE state END,\n"
        "               opened_by, opened, text,\n"
        "               (SELECT max(e.id) FROM exception e WHERE e.ticket_id = ticket.id) FROM ticket;\n"
        "UPDATE ticket_v7 SET state = 'revoked' WHERE state = 'approved' AND exception_id IN\n"
        "        (SELECT id FROM exception WHERE revoked_at IS NOT NULL\n"
        "         AND (until IS NULL OR revoked_at < until));\n"
        "UPDATE ticket_v7 SET state = 'expired' WHERE state = 'approved' AND exception_id IN\n"
        "        (SELECT id FROM exception WHERE until IS NOT NULL AND until <= CAST(strftime('%s', 'now') AS INTEGER)\n"
        "         AND (revoked_at IS NULL OR revoked_at >= until));\n"
        "DROP TABLE ticket;\n"
        "ALTER TABLE ticket_v7 RENAME TO ticket;\n"
        "CREATE INDEX ticket_vps ON ticket(vps_id);\n"
        "CREATE INDEX ticket_state ON ticket(state);\n"
        SEQ_FROM("ticket", "ticket", "8");

/* Version 8: the HTTP API's bearer tokens (docs/API.md), stored only as
 * the SHA-256 of the token: a copy of the database lets nobody in.  A name
 * is unique among the tokens in force, so a revoked one can be reissued.
 * And the index a customer's lists need: their VPSes by owner. */
static const char schema_v8[] =
        "CREATE TABLE api_token (\n"
        "        id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
        "        name TEXT NOT NULL,\n"
        "        hash BLOB NOT NULL UNIQUE,\n"
        "        role TEXT NOT NULL CHECK (role IN ('admin', 'support', 'customer', 'agent')),\n"
        "        customer TEXT,\n"
        "        created INTEGER NOT NULL,\n"
        "        created_by TEXT NOT NULL,\n"
        "        expires INTEGER,\n"
        "        revoked INTEGER,\n"
        "        last_used INTEGER,\n"
        "        CHECK ((role = 'customer') = (customer IS NOT NULL))\n"
        ");\n"
        "CREATE UNIQUE INDEX api_token_live_name ON api_token(name) WHERE revoked IS NULL;\n"
        "CREATE INDEX vps_owner ON vps(owner);\n";

/* v9: whether a VPS is running, as its VM manager last said (`vps
 * start`, `vps stop`, the hooks of contrib/), and since when (NULL: since
 * it was registered).  Informational: a stopped VPS keeps its policy.
 * Every VPS registered before is running: it was enforced as one. */
static const char schema_v9[] =
        "ALTER TABLE vps ADD COLUMN run_state TEXT NOT NULL DEFAULT 'running'\n"
        "        CHECK (run_state IN ('running', 'stopped'));\n"
        "ALTER TABLE vps ADD COLUMN run_since INTEGER;\n";

/* v10: the kernel's blocked attempts per VPS, as portcullisd last read
 * them (agent_attempts_pass), so that the unprivileged readers -- the HTTP
 * API, `portcullis ticket show` -- see them beside a ticket without the
 * kernel.  One row per VPS, direction, protocol and port: the kernel's
 * count of that element and its latest attempt.  The kernel forgets an
 * element after 7 days without attempts and counts again from 0; the row
 * keeps the old count until the next attempt.  Goes with its VPS. */
static const char schema_v10[] =
        "CREATE TABLE vps_attempt (\n"
        "        vps_id TEXT NOT NULL REFERENCES vps(id) ON DELETE CASCADE,\n"
        "        direction TEXT NOT NULL CHECK (direction IN ('egress', 'ingress')),\n"
        "        proto TEXT NOT NULL CHECK (proto IN ('tcp', 'udp')),\n"
        "        port INTEGER NOT NULL CHECK (port BETWEEN 0 AND 65535),\n"
        "        packets INTEGER NOT NULL CHECK (packets >= 0),\n"
        "        last_seen INTEGER NOT NULL,\n"
        "        PRIMARY KEY (vps_id, proto, port, direction)\n"
        ") WITHOUT ROWID;\n";

/* v11: an address's row has an id of its own, the order it was given in,
 * which SQLite kept as the hidden rowid: SQL that PostgreSQL shares says
 * ORDER BY id.  The table is made again with the id (the rowid's alias,
 * so each row keeps its number) and its indexes; nothing refers to it. */
static const char schema_v11[] =
        "CREATE TABLE vps_address_v11 (\n"
        "        id INTEGER PRIMARY KEY,\n"
        "        vps_id TEXT NOT NULL REFERENCES vps(id) ON DELETE CASCADE,\n"
        "        family INTEGER NOT NULL CHECK (family IN (4, 6)),\n"
        "        prefix TEXT NOT NULL UNIQUE,\n" /* canonical "addr/len" */
        "        net BLOB,\n"
        "        len INTEGER\n"
        ");\n"
        "INSERT INTO vps_address_v11 (id, vps_id, family, prefix, net, len)\n"
        "        SELECT rowid, vps_id, family, prefix, net, len FROM vps_address;\n"
        "DROP TABLE vps_address;\n"
        "ALTER TABLE vps_address_v11 RENAME TO vps_address;\n"
        "CREATE INDEX vps_address_vps ON vps_address(vps_id);\n"
        "CREATE INDEX vps_address_net ON vps_address(family, net);\n";

/* v12: the fleet.  Where each VPS runs (host; NULL on a single-host
 * installation) and, while it moves, the host that enforced it before
 * (and its interface there), which keeps it until the new host says it
 * enforces it; and each agent's
 * heartbeat, for `portcullis fleet status`. */
static const char schema_v12[] =
        "ALTER TABLE vps ADD COLUMN host TEXT;\n"
        "ALTER TABLE vps ADD COLUMN moving_from TEXT;\n"
        "ALTER TABLE vps ADD COLUMN moving_iface TEXT;\n"
        "CREATE INDEX vps_host ON vps(host) WHERE host IS NOT NULL;\n"
        "CREATE INDEX vps_moving_from ON vps(moving_from) WHERE moving_from IS NOT NULL;\n"
        "CREATE TABLE agent (\n"
        "        host TEXT PRIMARY KEY NOT NULL,\n"
        "        started INTEGER NOT NULL,\n"
        "        heartbeat INTEGER NOT NULL,\n"
        "        change_seen INTEGER NOT NULL DEFAULT 0,\n"
        "        changes INTEGER NOT NULL DEFAULT 0,\n"
        "        vpses INTEGER NOT NULL DEFAULT 0,\n"
        "        in_sync INTEGER NOT NULL DEFAULT 0,\n"
        "        version TEXT NOT NULL DEFAULT ''\n"
        ");\n"
        /* What agents did while the database was away, replayed once
         * each (pc_store_journal_mark) */
        "CREATE TABLE agent_journal (\n"
        "        op TEXT PRIMARY KEY NOT NULL,\n"
        "        at INTEGER NOT NULL\n"
        ");\n";

/* v13: an agent token's host.  A token of role agent bound to a
 * hypervisor acts only on that host's VPSes (pc_ops_authorize_vps); NULL:
 * not bound (every other role, and an agent token made with --any-host,
 * as every agent token was before). */
static const char schema_v13[] =
        "ALTER TABLE api_token ADD COLUMN host TEXT CHECK (host IS NULL OR role = 'agent');\n";

/* v14: the hosts of PostgreSQL's per-host roles (`portcullis init
 * --agent-role`, whose row-level security is PostgreSQL's alone:
 * schema_pg.sql).  A SQLite database has one hypervisor and no roles; the
 * table stays empty, there for both engines to have the same tables. */
static const char schema_v14[] =
        "CREATE TABLE agent_role (\n"
        "        role TEXT PRIMARY KEY NOT NULL,\n"
        "        host TEXT NOT NULL\n"
        ");\n";

/* v15: nothing for SQLite.  PostgreSQL's step (db_pg.c, schema_pg.sql)
 * signs the audit rows of a host's role with its host, takes table-wide
 * UPDATE and DELETE from those roles (LOCK TABLE) and ends sessions idle
 * in a transaction after 30 s; a SQLite database has no roles and one
 * writer.  The version moves so that both engines read the same number. */
static const char schema_v15[] = "";
/* v16: a move's confirmation by the host the VPS left.  A move between
 * hosts names the host that enforced it (departing_from, with its
 * interface there) until that host's agent says the VM's interface has
 * left it (pc_store_vps_departed, audited vps.depart): kept through the
 * new host's arrival, which clears moving_from only.  Until then the move
 * is unconfirmed (a bound agent token may pull any VPS: a claim), and
 * moving it back there needs no interface. */
static const char schema_v16[] =
        "ALTER TABLE vps ADD COLUMN departing_from TEXT;\n"
        "ALTER TABLE vps ADD COLUMN departing_iface TEXT;\n"
        "CREATE INDEX vps_departing_from ON vps(departing_from) WHERE departing_from IS NOT NULL;\n";

/* Sets net and len of every address from its text: v6's data step. */
static int fill_v6(sqlite3 *db)
{
        sqlite3_stmt *sel = NULL, *upd = NULL;
        int rc;

        rc = sqlite3_prepare_v2(db, "SELECT rowid, prefix FROM vps_address", -1, &sel, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v2(db, "UPDATE vps_address SET net = ?, len = ? WHERE rowid = ?", -1, &upd,
                                        NULL);
        while (rc == SQLITE_OK && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
                struct pc_prefix p;

                /* Written canonical by every version: anything else is damage. */
                if (pc_parse_prefix((const char *)sqlite3_column_text(sel, 1), false, &p) < 0) {
                        rc = SQLITE_CORRUPT;
                        break;
                }
                sqlite3_bind_blob(upd, 1, p.bytes, p.family == AF_INET ? 4 : 16, SQLITE_TRANSIENT);
                sqlite3_bind_int(upd, 2, p.len);
                sqlite3_bind_int64(upd, 3, sqlite3_column_int64(sel, 0));
                rc = sqlite3_step(upd);
                sqlite3_reset(upd);
                rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        }
        sqlite3_finalize(sel);
        sqlite3_finalize(upd);
        return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

const struct pc_migration pc_sqlite_migrations[] = {
        { 1, schema_v1, NULL },
        { 2, schema_v2, NULL },
        { 3, schema_v3, NULL },
        { 4, schema_v4, NULL },
        { 5, schema_v5, NULL },
        { 6, schema_v6, fill_v6 },
        { 7, schema_v7, NULL },
        { 8, schema_v8, NULL },
        { 9, schema_v9, NULL },
        { 10, schema_v10, NULL },
        { 11, schema_v11, NULL },
        { 12, schema_v12, NULL },
        { 13, schema_v13, NULL },
        { 14, schema_v14, NULL },
        { 15, schema_v15, NULL },
        { 16, schema_v16, NULL },
};

const size_t pc_sqlite_n_migrations = sizeof(pc_sqlite_migrations) / sizeof(pc_sqlite_migrations[0]);

/* Returns the version of the last migration. */
int pc_sqlite_schema_latest(void)
{
        return pc_sqlite_migrations[pc_sqlite_n_migrations - 1].version;
}

/* Reads PRAGMA user_version of <db>. */
int pc_sqlite_user_version(sqlite3 *db, int *ret_version)
{
        sqlite3_stmt *st = NULL;
        int rc, r = -EIO;

        rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
        if (rc != SQLITE_OK)
                goto out;
        if (sqlite3_step(st) != SQLITE_ROW)
                goto out;
        *ret_version = sqlite3_column_int(st, 0);
        r = 0;
out:
        sqlite3_finalize(st);
        return r;
}

/* Runs every statement of the constant script <sql> in turn.  The scripts
 * are part of this build, never user data.  Returns a SQLite result code. */
static int exec_script(sqlite3 *db, const char *sql)
{
        const char *tail = sql;

        while (*tail != '\0') {
                sqlite3_stmt *st = NULL;
                int rc;

                rc = sqlite3_prepare_v2(db, tail, -1, &st, &tail);
                if (rc != SQLITE_OK)
                        return rc;
                if (st == NULL) /* only whitespace or comments left */
                        break;
                do
                        rc = sqlite3_step(st);
                while (rc == SQLITE_ROW);
                sqlite3_finalize(st);
                if (rc != SQLITE_DONE)
                        return rc;
        }
        return SQLITE_OK;
}

/* Applies <mig> to <db> (the file <path>) inside one IMMEDIATE
 * transaction, unless another process got there first.  *<version> is the
 * database's version, updated.  Returns 0, -EPROTONOSUPPORT if the database
 * turned out newer than <latest> (no message), or -EIO with a message in
 * <err>. */
static int migrate_step(sqlite3 *db, const char *path, const struct pc_migration *mig,
                        int latest, int *version, char *err, size_t errsz)
{
        char pragma[64];
        int r = -EIO;

        if (exec_script(db, "BEGIN IMMEDIATE") != SQLITE_OK)
                goto out;
        /* Another process may have migrated while we waited for the lock. */
        if (pc_sqlite_user_version(db, version) < 0)
                goto out;
        if (*version > latest) {
                r = -EPROTONOSUPPORT;
                goto out;
        }
        if (*version >= mig->version) {
                r = 0;
                goto out;
        }
        if (exec_script(db, mig->sql) != SQLITE_OK)
                goto out;
        if (mig->fill != NULL && mig->fill(db) != SQLITE_OK)
                goto out;
        /* PRAGMA takes no parameters; the version is ours, not input. */
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", mig->version);
        if (exec_script(db, pragma) != SQLITE_OK)
                goto out;
        if (exec_script(db, "COMMIT") != SQLITE_OK)
                goto out;
        *version = mig->version;
        return 0;
out:
        if (r == -EIO)
                snprintf(err, errsz, "database %s: migration to schema version %d failed: %s",
                         path, mig->version, sqlite3_errmsg(db));
        if (!sqlite3_get_autocommit(db))
                exec_script(db, "ROLLBACK");
        return r;
}

/* Applies the missing migrations to <db>, one transaction each. */
int pc_sqlite_migrate(sqlite3 *db, const char *path, char *err, size_t errsz)
{
        int latest = pc_sqlite_schema_latest();
        int version, r;

        r = pc_sqlite_user_version(db, &version);
        if (r < 0) {
                snprintf(err, errsz, "database %s: cannot read its schema version: %s", path,
                         sqlite3_errmsg(db));
                return r;
        }
        for (size_t i = 0; i < pc_sqlite_n_migrations && version <= latest; i++) {
                if (pc_sqlite_migrations[i].version <= version)
                        continue;
                r = migrate_step(db, path, &pc_sqlite_migrations[i], latest, &version, err,
                                 errsz);
                if (r == -EIO)
                        return r;
        }
        if (version > latest) {
                snprintf(err, errsz,
                         "database %s is at schema version %d but this portcullis knows "
                         "versions up to %d; upgrade portcullis",
                         path, version, latest);
                return -EPROTONOSUPPORT;
        }
        return 0;
}
