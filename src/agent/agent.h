/* portcullisd: the agent on one hypervisor.  It holds the model, keeps the
 * kernel enforcing it, and answers the control socket. */
#pragma once

#include <event2/event.h>
#include <jansson.h>
#include <time.h>

#include "dataplane/dataplane.h"
#include "events/nflog.h"
#include "policy/snapshot.h"
#include "store/store.h"

struct pc_attempts;        /* last counter values per (iface, dir, proto, port) */
struct notifier;           /* the outbox worker thread (notifier.c) */
struct pc_ct_events;       /* conntrack events (events/ct_events.h) */
struct pc_scan;            /* the port-scan detector (detect/scan.h) */
struct pc_spam;            /* the spam detector (detect/spam.h) */
struct addr_index;         /* address -> VPS (policy/addr_index.h) */
struct agent_db;           /* the findings' database thread (dbthread.c) */

/* A detector's last note about (vps, kind) that reached the store, and
 * the counts of those that waited on it (respond.c, coalesced()). */
#define AGENT_NOTES 256
struct agent_note {
        char vps[PC_NAME_MAX];
        char kind[16];
        int64_t when;             /* 0: a free slot */
        uint64_t changes;         /* a->changes then */
        uint64_t count;           /* waiting */
};

/* The agent's figures for Prometheus (metrics.c). */
#define AGENT_LATENCY_BUCKETS 8
#define AGENT_BLOCKED_KEYS 128
struct agent_blocked {
        unsigned dir;
        uint8_t proto;
        uint16_t port;
        uint64_t packets;
};
struct agent_metrics {
        uint64_t latency[AGENT_LATENCY_BUCKETS]; /* cumulative, as Prometheus buckets are */
        uint64_t latency_count, latency_sum_us;
        struct agent_blocked blocked[AGENT_BLOCKED_KEYS];
        size_t n_blocked;
        uint64_t blocked_other;  /* beyond AGENT_BLOCKED_KEYS keys */
        bool verdicts_failed;    /* the kernel's verdict counters could not be read (logged once) */
};

struct agent {
        const char *config_path;
        const char *db_url;       /* overrides the config's database; may be NULL */
        const char *host_arg;     /* --host: overrides the config's agent.host; may be NULL */
        struct pc_config *cfg;
        struct pc_store *store;
        struct pc_model *model;
        struct pc_dataplane *dp;
        int64_t started;
        int64_t expiry_checked;   /* exceptions ending up to here were purged */
        bool in_sync;             /* the kernel holds what the model says */
        bool purge_due;           /* the start's purge of flows, once listening */
        bool once;                /* --once: nothing in the background */
        int sync_fd;              /* eventfd: the kernel's read in the background is done */
        bool verifying;           /* ... and is still to be finished (pc_dp_sync_start) */
        struct timespec verify_t0;
        char last_error[512];
        uint64_t changes;
        int64_t last_change_at;
        long last_change_us;
        int64_t last_enforced_ns; /* CLOCK_MONOTONIC: the last change's kernel commit */
        char last_change[128];
        size_t elements;
        struct pc_nflog *nflog;   /* spoofed packets; NULL if it could not be opened */
        bool spoof_off_told;      /* logged that detectors.spoof.enabled is false */
        struct pc_attempts *attempts; /* NULL until the first attempts pass */
        size_t attempts_refused;      /* counter elements not tracked in this pass */
        /* The counts of this pass that grew, for the store (their vps_id
         * point into the model); written at the pass's end. */
        struct pc_attempt_count *attempts_grew;
        size_t n_attempts_grew, attempts_grew_cap;
        size_t attempts_unkept;       /* of them, not kept (out of memory) */
        struct notifier *notifier; /* NULL if not running */
        struct notifier *notifier_retired; /* stopping, not reaped yet (notifier_retire) */
        json_t *incident_notices; /* {vps: {kind: when}}: notices sent, for storms */
        struct agent_note notes[AGENT_NOTES]; /* findings not yet written (respond.c) */
        json_t *spoof_episodes;   /* {vps: {incident, kinds: {kind: true}}}: spoofing kinds per episode */
        struct pc_ct_events *ct;  /* conntrack events for the detectors; NULL if off */
        struct pc_scan *scan;     /* the port-scan detector; NULL if off */
        uint32_t held_unread;     /* held packets whose port was not logged (scan.c) */
        struct addr_index *addr_ix; /* which VPS a flow's source is, as of change #addr_ix_gen */
        uint64_t addr_ix_gen;
        uint64_t ct_lost_told;    /* conntrack events lost, as last logged */
        char scan_forget[16][PC_NAME_MAX]; /* scanners answered, to forget after the callback */
        size_t n_scan_forget;
        char scan_refill[64][16];  /* interfaces whose budget to refill after this dispatch */
        size_t n_scan_refill;
        json_t *mail_stats;       /* the SMTP proxy's per-VPS figures, last read */
        int64_t mail_stats_at;
        struct pc_spam *spam;     /* the spam detector; NULL if off */
        struct account *direct_mail; /* VPSes' SMTP not through the proxy, from conntrack (spam.c) */
        json_t *direct_prev;      /* its figures as last fed */
        int64_t change_seen;      /* the change feed's last entry applied (changes.c) */
        bool following;           /* a turn of the feed is with the database thread */
        bool follow_again;        /* ... and another was asked for meanwhile */
        bool departures_checking; /* the moves away not confirmed are being read (agent_departures) */
        char departures_after[PC_NAME_MAX]; /* ... from after this id at the next pass ("": the first) */
        struct agent_metrics metrics;
        int wake_fd;              /* the wake socket; -1 none */
        char wake_path[108];
        struct pc_store_watch *watch; /* the database's change notices; NULL none (changes.c) */
        struct event *watch_ev;       /* its event on the loop */
        struct event_base *base;      /* the loop's (loop.c) */
        struct control_client *control_clients; /* waiting for their request line (control.c) */
        unsigned n_control_clients;
        int64_t watch_retry_at;       /* when to connect again after losing it; 0: now */
        unsigned watch_failures;      /* in a row, for the back-off */
        bool watch_told;              /* its loss was logged */
        bool watch_none;              /* the engine has no notices (SQLite) */
        int64_t followed_at;          /* CLOCK_MONOTONIC ms of the last read on a notice */
        bool follow_scheduled;        /* a paced read is due (changes.c) */
        struct agent_journal_entry *journal; /* findings the database has not heard of (offline.c) */
        size_t n_journal, journal_cap;
        uint64_t journal_seq, journal_lost;
        bool replaying;               /* an entry's replay is with the database thread (offline.c) */
        bool replay_submitting;       /* ... being submitted (without the thread, it runs meanwhile) */
        bool replay_ok;               /* ... and the last one was stored */
        /* The snapshot of the host's policy (snapshot.c). */
        struct agent_snapshot *snap;  /* its writer; NULL until a write is due */
        int64_t policy_loaded;        /* when the policy in force was read from the database */
        bool from_snapshot;           /* the policy in force is the snapshot's: <store> is NULL */
        struct pc_snapshot_head snapshot_head; /* ... of that snapshot */
        struct agent_dbwait *dbwait;  /* the thread trying the database meanwhile */
        struct agent_db *db;          /* the findings' database thread (dbthread.c); NULL: on the loop */
        bool probing;                 /* the periodic pass's heartbeat is with it (agent_probe) */
        bool db_quiet;                /* ... and found the database not answering */
        int64_t dbwait_nag;           /* when the log last said it is still away */
        struct agent_reload *reload;  /* a reload loading off the loop (reload.c); NULL: none */
};

/* This agent's host in a fleet ("": a single host, every VPS its own). */
const char *agent_host(const struct agent *a);

/* Whether <vps> is this agent's to enforce: on its host, or moving away
 * from it and not yet enforced by the new one. */
bool agent_owns(const struct agent *a, const struct pc_vps *vps);

/* Says, for each VPS that moved here and is in the kernel (the agent is in
 * sync), that the host it left may let it go: a start, or an earlier
 * attempt that failed, leaves them to the periodic pass. */
void agent_arrivals(struct agent *a);

/* Lets go of the VPSes that moved to another host, are enforced there,
 * and whose interface is gone from this one (their VM left); and records
 * the departures the database still waits for from this host whose VM is
 * not here (a write that failed, a start without the VM), read by the
 * database thread. */
void agent_departures(struct agent *a);

/* ---- without the database (offline.c) ---- */
/* <count> observations of <kind> by <vps> with <evidence> that the
 * database could not take: kept in the journal, in the episode of <gap>.
 * 1 if this began an episode (answer it: agent_respond with incident 0),
 * 0 if it extended one, a negative errno. */
struct agent_journal_entry;
int agent_offline_note(struct agent *a, const struct pc_vps *vps, const char *kind, uint64_t count,
                       const char *evidence, int64_t gap);
/* The policy's first response to it, in the kernel only (<vps> is not
 * valid afterwards).  0, or a negative errno after logging why. */
int agent_offline_respond(struct agent *a, struct pc_vps *vps, const char *kind, const char *what,
                          const struct pc_port_range *ports, size_t episode_kinds);
/* Stores what the journal holds, once each, if the database answers:
 * an entry at a time through the database thread, the next once it is
 * stored, the change feed followed once the journal is empty; nothing if
 * one is on its way already. */
void agent_offline_replay(struct agent *a);
/* Reads the journal an earlier run left (at the start); frees it. */
void agent_offline_load(struct agent *a);
void agent_offline_free(struct agent *a);

/* Re-holds in the model (not the kernel) what the journal's entries held
 * back in the kernel: a load from the database does not know it yet. */
void agent_offline_hold(struct agent *a);

/* ---- the database thread (dbthread.c) ---- */
/* What a job's run() gave: its return, and if negative, whether the
 * database is away (the journal's) and the store's message. */
struct agent_db_result {
        int r;
        bool away;
        char err[256];
};
/* A job's halves: run() on the thread, with its store and the config in
 * force, touching nothing of the agent; done() on the loop, in the order
 * of submission, which frees <arg>. */
typedef int (*agent_db_run_fn)(struct pc_store *store, const struct pc_config *cfg, void *arg);
typedef void (*agent_db_done_fn)(struct agent *a, void *arg, const struct agent_db_result *res);
/* Starts the thread (its store is opened at its first job).  0, or a
 * negative errno: the jobs then run on the loop. */
int agent_db_start(struct agent *a);
/* The eventfd the loop watches: agent_db_complete() when readable; -1 none. */
int agent_db_fd(const struct agent *a);
/* Queues a job: 0, -ENOBUFS if too many wait (the database hangs under a
 * flood of findings), -ENOMEM.  Without the thread, runs it here on the
 * loop's store and calls done() before returning 0. */
int agent_db_submit(struct agent *a, agent_db_run_fn run, agent_db_done_fn done, void *arg);
/* Runs a job here, on <store> (NULL: the database away), done() included
 * (agent_db_submit without the thread, or with the snapshot in force).
 * Returns what run() returned. */
int agent_db_run_here(struct agent *a, struct pc_store *store, agent_db_run_fn run, agent_db_done_fn done,
                      void *arg);
/* Queues a barrier: once every job submitted before it is done, <then>
 * is called on the loop with the thread paused (no job submitted after it
 * has run) until agent_db_resume.  What a job's run() read under a
 * config is then taken on the loop under the same one, though the config
 * is swapped meanwhile, without the loop waiting for the database
 * (a reload's take).  Without the thread: drains, then calls <then>. */
void agent_db_barrier(struct agent *a, agent_db_done_fn then, void *arg);
/* The thread goes on after a barrier, with a->cfg (its store opened
 * again if that is another config). */
void agent_db_resume(struct agent *a);
/* Calls done() of the jobs the thread finished. */
void agent_db_complete(struct agent *a);
/* Jobs submitted and not completed yet. */
size_t agent_db_queued(const struct agent *a);
/* Waits for every job, and those their done() submit, to complete. */
void agent_db_drain(struct agent *a);
/* After a reload or the database's return: drains, then the thread takes
 * a->cfg and opens its store again. */
void agent_db_reconfigure(struct agent *a);
/* Drains and stops the thread. */
void agent_db_stop(struct agent *a);

/* ---- the snapshot of the host's policy (snapshot.c) ---- */
/* Its path under <cfg> (agent.snapshot; "" if none is kept). */
void agent_snapshot_path(const struct agent *a, const struct pc_config *cfg, char *buf, size_t size);
/* A full load: the snapshot is written at the next tick, whatever changed. */
void agent_snapshot_due(struct agent *a);
/* Something the kernel's fingerprint does not show changed (where a VPS
 * runs): the snapshot is written again, when its pace allows. */
void agent_snapshot_changed(struct agent *a);
/* What is in force was just read from the snapshot of fingerprint <fp>:
 * no write until it changes. */
void agent_snapshot_written(struct agent *a, uint64_t fp);
/* Every tick: takes a finished write, starts one if the model changed
 * (bounded, see snapshot.c), and takes the database back if the thread
 * waiting for it has loaded it. */
void agent_snapshot_tick(struct agent *a);
/* Reads the snapshot under <cfg> at <now> into *<ret_model> (over <cfg>)
 * and *<ret_head>; logs what it left out.  0, or a negative errno with
 * why in <err> (-ENOENT: none kept, or no file). */
int agent_snapshot_read(struct agent *a, const struct pc_config *cfg, int64_t now, struct pc_model **ret_model,
                        struct pc_snapshot_head *ret_head, char *err, size_t errsz);
/* Adds "policy" ("database" or "snapshot") and "snapshot" to <reply>. */
void agent_snapshot_status(struct agent *a, json_t *reply);
/* Waits for a write in flight and stops the thread waiting for the database. */
void agent_snapshot_stop(struct agent *a);
/* The thread that loads the database (agent_load_all) every 2 s until it
 * answers, <why> it did not, and reads with the load the VPSes of the
 * running model (listed as it starts) the load may keep for their
 * interface (agent_departing_read); why its last attempt failed;
 * stopping it; taking its load (agent_db_back). */
int agent_dbwait_start(struct agent *a, const char *why);
/* The loop's event for the waiting thread's load, made with the thread
 * (or once the loop runs, for one started before it), freed with it or
 * before the loop's event base goes (unwatch). */
void agent_dbwait_watch(struct agent *a);
void agent_dbwait_unwatch(struct agent *a);
void agent_dbwait_why(struct agent *a, char *buf, size_t size);
void agent_dbwait_stop(struct agent *a);
void agent_dbwait_ready(struct agent *a);

/* Loads the configuration, the store and this host's model, with the
 * change feed's last entry before the load (<create>: a missing database
 * is created, as at a first start).  Logs nothing (the notifier's thread
 * and the snapshot's call it too): 0, or a negative errno with why in
 * <err>; nothing is kept on failure. */
int agent_load_all(struct agent *a, bool create, struct pc_config **ret_cfg, struct pc_store **ret_store,
                   struct pc_model **ret_model, int64_t *ret_seen, char *err, size_t errsz);

/* A VPS of the running model (its id and interface, copied on the loop)
 * and, once read, what the database has of it: a new load that does not
 * have it may keep it for its interface here (a VM that moved away and
 * has not left yet).  The reads wait for the database, so they are made
 * where a wait is allowed (the thread that waits for it, a start); the
 * loop decides from them (keep_departing in agent.c). */
struct agent_departing {
        char id[PC_NAME_MAX];
        char iface[16];
        bool read;
        int r;                 /* pc_store_vps_fetch's, once <read> */
        struct pc_vps *fresh;  /* NULL unless read and found */
};
/* The VPSes of <model> that have an interface, into *<ret> (n: *<ret_n>;
 * none: NULL, 0), ordered by id.  0, or -ENOMEM. */
int agent_departing_list(const struct pc_model *model, struct agent_departing **ret, size_t *ret_n);
/* Reads from <store> (of <cfg>) each of the <n> VPSes <d> the load <m>
 * does not have and whose interface is here.  0, or the first error but
 * -ENOENT (the database did not answer; each read's is in <d>). */
int agent_departing_read(struct pc_store *store, const struct pc_config *cfg, const struct pc_model *m,
                         struct agent_departing *d, size_t n);
/* Frees <d> and the records it still holds; returns NULL. */
struct agent_departing *agent_departing_free(struct agent_departing *d, size_t n);

/* The database answers while the agent enforces a snapshot: <cfg>,
 * <store> and <model> (loaded with the change feed at <seen>) replace it,
 * the kernel is reconciled with them, the journal replayed; the VPSes
 * the running model keeps for their interface are kept as <departing>
 * (<n>, agent_departing_read from the list of the running model) says
 * the database has them: nothing is read on the loop.  Takes <cfg>,
 * <store> and <model> whatever it returns, and the records of
 * <departing> it keeps (the caller frees it): 0, or a negative errno
 * after logging why (the snapshot stays in force; -EAGAIN: a VPS kept
 * was not read, the running model changed since the list: load again). */
int agent_db_back(struct agent *a, struct pc_config *cfg, struct pc_store *store, struct pc_model *model,
                  int64_t seen, struct agent_departing *departing, size_t n);

/* Records the agent's heartbeat in the database (only with a host). */
void agent_heartbeat(struct agent *a);
/* The heartbeat (or, without a host, a read) through the database thread,
 * then <then> on the loop, with a->db_quiet saying whether the database
 * answered it: the loop's own statements wait for a database that just
 * answered, not for one that hangs.  0; -EINPROGRESS if one is on its way
 * already; -ENOTCONN without a thread or a database (call <then> now). */
int agent_probe(struct agent *a, void (*then)(struct agent *a));

/* Loads config, store and model and makes the kernel enforce them
 * (reconciling with what it already holds).  Logs what it repaired.
 * Returns 0, or a negative errno after logging why. */
int agent_start(struct agent *a);

/* Ends the flows the policy no longer allows, once, after agent_start():
 * they are no rules, so the agent takes changes first (reading the
 * conntrack table takes about a second at 200,000 entries, BENCHMARKS.md).
 * Nothing if it ran already. */
void agent_start_purge(struct agent *a);

/* Finishes the start's read of the kernel in the background, once
 * <a->sync_fd> says it is done: repairs what drifted (logged, as at a
 * start), or reads again if a change was applied meanwhile. */
void agent_sync_finish(struct agent *a);

/* Frees everything; the kernel keeps enforcing (fail closed). */
void agent_stop(struct agent *a);

/* What became of agent_sync_vpses(), on the loop: <reply> (a JSON object)
 * says what happened to the last VPS applied; <pending> if one could not
 * be read (the rest were not applied: the database does not answer). */
typedef void (*agent_fetched_fn)(struct agent *a, void *arg, json_t *reply, bool pending);
#define AGENT_FETCH_MAX 64
/* Re-reads <n> (at most AGENT_FETCH_MAX) VPSes <ids> from the store and
 * applies their changes to the kernel, in their order: read by the
 * database thread, applied on the loop, then <then> (may be NULL).
 * <feed>: the change feed asks, and a VPS whose kernel state did not
 * change is applied silently (`portcullis` told us first).  0, or a
 * negative errno (<then> not called). */
int agent_sync_vpses(struct agent *a, const char (*ids)[PC_NAME_MAX], size_t n, bool feed, agent_fetched_fn then,
                     void *arg);
/* Its second half: applies <fresh> (taken; NULL: none), VPS <id> as the
 * store read it (<fetched>: what pc_store_vps_fetch returned, -ENOENT
 * removed, another error with <why> leaves the kernel as it is); the
 * change's latency counts from <since> (CLOCK_MONOTONIC; NULL: now). */
int agent_sync_vps_apply(struct agent *a, const char *id, int fetched, struct pc_vps *fresh, const char *why,
                         const struct timespec *since, bool feed, json_t *reply);

/* ---- metrics (metrics.c) ---- */
/* A change reached the kernel in <us>. */
void agent_metrics_change(struct agent *a, long us);
/* <packets> more blocked attempts on (dir, proto, port). */
void agent_metrics_blocked(struct agent *a, unsigned dir, uint8_t proto, uint16_t port, uint64_t packets);
/* Writes agent.prom beside the control socket; removes it (at stop). */
void agent_metrics_write(struct agent *a);
void agent_metrics_remove(struct agent *a);

/* ---- the change feed (changes.c) ---- */
/* Listens on the wake socket beside the control socket.  Logs a failure:
 * the feed is then followed on the periodic timer alone. */
void agent_changes_open(struct agent *a);
void agent_changes_close(struct agent *a);
/* Drains the wake socket, then follows the feed. */
void agent_changes_wake(struct agent *a);
/* The database's notices (PostgreSQL's LISTEN): opened without blocking
 * once the loop runs (a no-op where the engine has none), followed as
 * they come, opened again after a loss (the periodic pass follows the feed
 * meanwhile). */
void agent_watch_start(struct agent *a);
void agent_watch_close(struct agent *a);
/* Applies the VPSes the store's changes since the last one seen name. */
void agent_changes_follow(struct agent *a);

/* ---- reload (reload.c) ---- */
/* Reads the configuration and the database's policy again: a thread
 * loads them (the loop goes on meanwhile), the loop takes the load
 * (agent_reload_take), then <then>(a, arg, reply, false) on the loop
 * (<then> may be NULL; at once if refused: the snapshot is in force).  A
 * reload asked for while one loads runs again after it (the files may
 * have changed after the thread read them), and answers then. */
void agent_reload(struct agent *a, agent_fetched_fn then, void *arg);
/* Takes a load that has finished (its eventfd, or the tick, says so). */
void agent_reload_ready(struct agent *a);
/* Waits for a load in flight, drops it and answers its callers (a stop,
 * before the loop's event base goes). */
void agent_reload_stop(struct agent *a);
/* The loop changed VPS <id> in the model: while a reload loads, the take
 * keeps the running copy of it. */
void agent_reload_touched(struct agent *a, const char *id);

/* The second half of a reload, on the loop, at the database thread's
 * barrier (agent_db_barrier; the caller resumes it): <cfg>, <store> and <model>
 * (loaded with the change feed at <seen>, in <load_us>; the loop changed
 * the VPSes <touched> meanwhile) replace the ones in force if the kernel
 * takes them; otherwise the old stay and the error is logged and put in
 * <reply>.  Takes them whatever it returns: 0 or a negative errno. */
int agent_reload_take(struct agent *a, struct pc_config *cfg, struct pc_store *store, struct pc_model *model,
                      int64_t seen, long load_us, const char (*touched)[PC_NAME_MAX], size_t n_touched,
                      json_t *reply);

/* Re-checks the whole kernel state against the model, repairing drift. */
int agent_reconcile(struct agent *a, json_t *reply);

/* Reads the blocked-attempt counters and records terms-of-service events. */
int agent_attempts_pass(struct agent *a);

/* Ends the connections of VPSes whose exceptions ended since the last
 * pass: the kernel drops the element on time by itself, but a connection
 * opened under the exception would outlive it.  Re-reads the VPSes whose
 * exceptions or filters ended, so that the model (and the kernel's record
 * of it, pc_dp_sync_all) is what a fresh start would load. */
void agent_expiry_pass(struct agent *a);

/* Fills <reply> with the agent's health. */
void agent_status(struct agent *a, json_t *reply);

/* Logs one line to stderr ("portcullisd: ..."); journald keeps it. */
void agent_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Called on the loop when a response is in the kernel: with the VPS's id
 * (scan.c releases the hold the response made redundant). */
typedef void (*agent_answered_fn)(struct agent *a, const char *vps_id);

/* The response to new incident #<incident> of <kind> ("spoof", "scan",
 * "spam") by <vps> (respond.c): the policy's response stepped up by the
 * ladder, decided and placed in the store by the database thread, then
 * carried out in the kernel and logged on the loop; <what> says what
 * happened, in words, for the reason; <first_ns> (CLOCK_MONOTONIC) when its
 * first evidence reached the agent.  The episode has shown <episode_kinds>
 * different kinds of the abuse so far (spoofing: a forged source, a forged
 * MAC, ARP claims...): with a policy that lists 'terminate', several kinds
 * are an attempt to circumvent (respond/response.h); called again when an
 * open episode shows a new kind.  A filter covers <ports> (NULL: the whole
 * VPS).  Incident 0 (in the journal): the kernel's part only, at once.
 * <answered> (may be NULL) once it is in the kernel.  0 (queued), or a
 * negative errno after logging why.  <vps> is not valid afterwards. */
int agent_respond_episode(struct agent *a, struct pc_vps *vps, const char *kind, int64_t incident,
                          const char *what, const struct pc_port_range *ports, int64_t first_ns,
                          size_t episode_kinds, agent_answered_fn answered);
/* The response to a finding the journal's replay stores (offline.c), in
 * the replay's transaction on the database thread: made on the loop from
 * <vps> (not kept), decided and placed by agent_response_run() once the
 * replay opened incident <incident> (a negative errno: the replay rolls
 * back), then carried out in the kernel and logged by
 * agent_response_done() on the loop once the replay committed (<res>
 * NULL: it did not, nothing is done), which frees it. */
struct agent_response;
struct agent_response *agent_response_new(struct pc_vps *vps, const char *kind, const char *what,
                                          size_t episode_kinds);
int agent_response_run(struct pc_store *store, const struct pc_config *cfg, struct agent_response *x,
                       int64_t incident);
void agent_response_done(struct agent *a, struct agent_response *x, const struct agent_db_result *res);

/* What became of a finding agent_incident() took, on the loop: <r> 1 if
 * it opened a new incident (answer it: agent_respond_episode), 0 if it
 * extended the open one, a negative errno after logging why; <id> the
 * incident (0: in the journal, the database away). */
typedef void (*agent_noted_fn)(struct agent *a, int r, int64_t id, void *arg);

/* Records <count> observations of <kind> by <vps> with <evidence> (JSON
 * text) in its incident of this episode (observations <gap> seconds apart
 * are separate episodes), queueing the owner's notice where the policy
 * only notifies: through the database thread, then <then> (may be NULL)
 * with <then_arg> on the loop, always called once.  0, or a negative errno
 * (out of memory, logged; <then> not called). */
int agent_incident(struct agent *a, const struct pc_vps *vps, const char *kind, uint64_t count,
                   const char *evidence, int64_t gap, agent_noted_fn then, void *then_arg);
/* As agent_incident(), for observations whose last was at <at>. */
int agent_incident_at(struct agent *a, const struct pc_vps *vps, const char *kind, uint64_t count, int64_t at,
                      const char *evidence, int64_t gap, agent_noted_fn then, void *then_arg);

/* A detector's finding of <kind> by <vps>: agent_incident(), and if that
 * opened a new incident, logged with <what> and answered
 * (agent_respond_episode, a filter covering <ports>, NULL: the whole VPS;
 * <answered> once in the kernel).  0, or a negative errno after logging
 * why. */
int agent_abuse(struct agent *a, struct pc_vps *vps, const char *kind, uint64_t count, const char *evidence,
                int64_t gap, const char *what, const struct pc_port_range *ports, agent_answered_fn answered);

/* The policy's response bits (enum pc_response) to incidents of <kind> by <vps>. */
unsigned agent_response_bits(const struct pc_vps *vps, const char *kind);

/* Floods and reflection (abuse.c): a sampled rate over a threshold, as
 * logged by the kernel with <prefix> (PC_FLOOD_*_PREFIX, PC_REFLECT_PREFIX),
 * becomes an incident and the policy's response. */
void agent_sampled_event(struct agent *a, const struct pc_nflog_packet *p);

/* Spoofing events (spoof.c): open the NFLOG group; turn what is ready
 * into incidents and the policy's response. */
int agent_events_open(struct agent *a);
void agent_events_dispatch(struct agent *a);

void control_serve(struct agent *a, int listen_fd);
/* Closes the clients still waiting for their request line (at stop). */
void control_close(struct agent *a);

/* The event loop (loop.c) until a signal stops it: 0, or a negative errno. */
int agent_run(struct agent *a, int listen_fd, int sig_fd);

/* Port scans (scan.c): open the conntrack events and the detector when
 * detectors.scan.enabled (logs why not, and goes on without); the fd to
 * watch (-1 if none); read what is ready; the detector's clock; the kernel
 * put the VPS on <iface> on hold (an NFLOG message); close. */
int agent_scan_open(struct agent *a);
int agent_scan_fd(const struct agent *a);
void agent_scan_dispatch(struct agent *a);
void agent_scan_tick(struct agent *a);
void agent_scan_hold(struct agent *a, const char *iface);
/* A first contact the kernel held back (logged, PC_SCAN_HELD_PREFIX). */
void agent_scan_held_contact(struct agent *a, const struct pc_nflog_packet *p);
void agent_scan_close(struct agent *a);
/* After a reload: the detector restarts with the new parameters (what it
 * knew is lost: holds in the kernel end by their timeout), or stops, or
 * starts. */
void agent_scan_reconfigure(struct agent *a);

/* The SMTP proxy (smtpd_link.c): forward a change ("sync", id) or
 * ("reload", NULL); read its per-VPS figures; answer "mail [ID]". */
void agent_smtpd_tell(struct agent *a, const char *verb, const char *arg);
/* At start, after the first sync: the proxy reloads (silent if none runs). */
void agent_smtpd_started(struct agent *a);
void agent_smtpd_poll(struct agent *a);
void agent_mail_stats(struct agent *a, const char *id, json_t *reply);

/* Spam (spam.c): create the detector when detectors.spam.enabled (logs
 * why not; 0, or a negative errno after logging why); feed it the proxy's
 * figures just read (a->mail_stats; <prev>, the reading before or NULL,
 * tells which VPSes began sending since), each finding an incident and
 * the policy's response; free it (accepts none). */
int agent_spam_open(struct agent *a);
void agent_spam_pass(struct agent *a, const json_t *prev);
void agent_spam_close(struct agent *a);
/* The same for SMTP no proxy carries, from conntrack: <ev>, a connection
 * <vps> opened to port 25 that was not redirected; the figures fed every
 * attempts-interval; freed. */
struct pc_ct_event;
void agent_spam_direct(struct agent *a, const struct pc_vps *vps, const struct pc_ct_event *ev);
void agent_spam_direct_pass(struct agent *a);
void agent_spam_direct_close(struct agent *a);

/* The notification worker (notifier.c): starts the thread that sends the
 * outbox (logs and returns an error if the templates are broken), wakes it
 * after a change, stops it (waiting for a send in progress to abort). */
int notifier_start(struct agent *a);
void notifier_wake(struct agent *a);
void notifier_stop(struct agent *a);
/* Tells the worker to stop without waiting for it (a reload: it may be in
 * a statement to a database that hangs, up to its bound, or a send); a
 * new one may start at once (the outbox is claimed under a lease: nothing
 * is sent twice).  notifier_reap() frees the stopped ones that ended
 * (<wait>: waits for them, at the agent's stop). */
void notifier_retire(struct agent *a);
void notifier_reap(struct agent *a, bool wait);

/* Queues the owners' notices of exceptions ending within 3 days (once each). */
void notifier_expiry_pass(struct agent *a);

/* Incident notices to owners: one per episode (the store queues it with
 * the incident, PC_INCIDENT_NOTICE), at most one per VPS and kind within
 * notice-gap.  Ask before noting an incident; report each new episode the
 * policy wanted told (<noticed>: it was); the pass sends the digest of the
 * episodes that were not, once the gap is over. */
bool notifier_incident_notice_due(struct agent *a, const char *vps_id, const char *kind);
void notifier_incident_opened(struct agent *a, const char *vps_id, const char *kind, bool noticed, int64_t when);
void notifier_digest_pass(struct agent *a);
