/* The agent without its database.  In a fleet the database is a server
 * that can go away (a restart, a failover, the network).  The kernel
 * keeps enforcing what it had; the detectors go on; and what they find is
 * answered here at once -- the policy's first response, in the kernel
 * only -- and kept in a journal (a file beside the control socket, so an
 * agent restarted meanwhile keeps it).  When the database answers again,
 * each entry is replayed once, by the database thread (a server that
 * hangs again holds no loop): its incident, the policy's response as the
 * store decides it (the ladder counts the fleet's history) and the
 * owner's email, in one transaction with a mark of the entry
 * (pc_store_journal_mark), so that a replay that is cut short and tried
 * again neither loses nor doubles anything.  The entry leaves the
 * journal on the loop once that transaction committed. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "respond/response.h"

#define JOURNAL_MAX 4096   /* entries at once: a storm beyond it is counted, not kept */
#define JOURNAL_PER_VPS 16 /* one VPS's episodes beyond it extend its newest of the kind */

struct agent_journal_entry {
        char op[96];          /* "HOST:EPOCH:SEQ": its mark in the database */
        char vps[PC_NAME_MAX];
        char kind[16];
        uint64_t count;       /* observations */
        int64_t first, last;  /* unix times */
        int64_t gap;          /* the episode gap of its kind */
        char *evidence;       /* JSON text of the first observation */
        char what[192];       /* in words, for the response's reason */
        size_t kinds;         /* kinds of spoofing in the episode */
        bool replaying;       /* with the database thread: extended by no finding (not saved) */
};

/* journal.json beside the control socket (journal-HOST.json in a fleet:
 * hosts may share a folder). */
static void journal_path(const struct agent *a, char *buf, size_t size)
{
        const char *sock = a->cfg->agent.control_socket, *slash = strrchr(sock, '/');

        snprintf(buf, size, "%.*s/journal%s%s.json", slash != NULL ? (int)(slash - sock) : 1,
                 slash != NULL ? sock : ".", agent_host(a)[0] != '\0' ? "-" : "", agent_host(a));
}

/* Writes the journal (replacing the file at once), or removes the file
 * when it is empty.  A failure is logged: the entries stay in memory. */
static void journal_save(struct agent *a)
{
        char path[256], tmp[272];
        json_t *arr;
        int r;

        journal_path(a, path, sizeof(path));
        if (a->n_journal == 0) {
                unlink(path);
                return;
        }
        arr = json_array();
        for (size_t i = 0; arr != NULL && i < a->n_journal; i++) {
                const struct agent_journal_entry *e = &a->journal[i];

                json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s?, s:s, s:I}", "op",
                                                     e->op, "vps", e->vps, "kind", e->kind, "count",
                                                     (json_int_t)e->count, "first", (json_int_t)e->first, "last",
                                                     (json_int_t)e->last, "gap", (json_int_t)e->gap, "evidence",
                                                     e->evidence, "what", e->what, "kinds", (json_int_t)e->kinds));
        }
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        r = arr != NULL ? json_dump_file(arr, tmp, JSON_COMPACT) : -1;
        json_decref(arr);
        if (r < 0 || rename(tmp, path) < 0)
                agent_log("Failed to write the journal %s: what it holds is kept in memory only", path);
}

/* The entry of (<vps>, <kind>) whose episode <now> extends, or NULL.  A
 * VPS with JOURNAL_PER_VPS entries already extends its newest of the kind
 * whatever the gap: one customer cannot fill the journal for the others. */
static struct agent_journal_entry *journal_find(struct agent *a, const char *vps, const char *kind, int64_t now)
{
        struct agent_journal_entry *newest = NULL;
        size_t of_vps = 0;

        for (size_t i = a->n_journal; i-- > 0;) {
                struct agent_journal_entry *e = &a->journal[i];

                if (strcmp(e->vps, vps) != 0)
                        continue;
                of_vps++;
                /* What the thread stores now has its count: a new entry
                 * (its episode's incident, if stored, takes it). */
                if (e->replaying)
                        continue;
                if (strcmp(e->kind, kind) != 0)
                        continue;
                if (now - e->last < e->gap)
                        return e;
                if (newest == NULL)
                        newest = e;
        }
        return of_vps >= JOURNAL_PER_VPS ? newest : NULL;
}

/* Room for one more entry: -ENOSPC at JOURNAL_MAX. */
static int journal_grow(struct agent *a)
{
        size_t cap = a->journal_cap == 0 ? 64 : 2 * a->journal_cap;
        struct agent_journal_entry *j;

        if (a->n_journal < a->journal_cap)
                return 0;
        if (a->journal_cap >= JOURNAL_MAX)
                return -ENOSPC;
        j = realloc(a->journal, cap * sizeof(*j));
        if (j == NULL)
                return -ENOMEM;
        a->journal = j;
        a->journal_cap = cap;
        return 0;
}

static void entry_free(struct agent_journal_entry *e)
{
        free(e->evidence);
        e->evidence = NULL;
}

int agent_offline_note(struct agent *a, const struct pc_vps *vps, const char *kind, uint64_t count,
                       const char *evidence, int64_t gap)
{
        int64_t now = pc_now();
        struct agent_journal_entry *e = journal_find(a, vps->id, kind, now);
        int r;

        if (e != NULL) {
                e->count += count;
                e->last = now;
                journal_save(a);
                return 0;
        }
        r = journal_grow(a);
        if (r < 0) {
                a->journal_lost += count;
                return r;
        }
        e = &a->journal[a->n_journal++];
        memset(e, 0, sizeof(*e));
        snprintf(e->op, sizeof(e->op), "%s:%" PRId64 ":%" PRIu64, agent_host(a)[0] != '\0' ? agent_host(a) : "-",
                 a->started, ++a->journal_seq);
        snprintf(e->vps, sizeof(e->vps), "%s", vps->id);
        snprintf(e->kind, sizeof(e->kind), "%s", kind);
        e->count = count;
        e->first = e->last = now;
        e->gap = gap;
        e->evidence = evidence != NULL ? strdup(evidence) : NULL;
        e->kinds = 1;
        agent_log("The database is unreachable: %s's %s is recorded in the journal (%s), to be stored when it "
                  "answers",
                  vps->id, kind, e->op);
        journal_save(a);
        return 1;
}

/* The policy's first response to <kind> by <vps>: into the kernel and the
 * model (<kernel>), or the model only (a start: the kernel is programmed
 * from it next).  <vps> is not valid afterwards. */
static int hold_back(struct agent *a, struct pc_vps *vps, const char *kind, const char *what,
                     const struct pc_port_range *ports, bool kernel);

int agent_offline_respond(struct agent *a, struct pc_vps *vps, const char *kind, const char *what,
                          const struct pc_port_range *ports, size_t episode_kinds)
{
        struct agent_journal_entry *e = journal_find(a, vps->id, kind, pc_now());

        if (e != NULL) {
                snprintf(e->what, sizeof(e->what), "%s", what);
                e->kinds = episode_kinds > e->kinds ? episode_kinds : e->kinds;
                journal_save(a);
        }
        return hold_back(a, vps, kind, what, ports, true);
}

static int hold_back(struct agent *a, struct pc_vps *vps, const char *kind, const char *what,
                     const struct pc_port_range *ports, bool kernel)
{
        unsigned resp = agent_response_bits(vps, kind);
        struct pc_response_plan p = pc_response_decide(resp, &a->cfg->escalation, NULL, 0, pc_now(),
                                                       strcmp(kind, "attacked") == 0);
        struct pc_vps *copy = NULL;
        char id[PC_NAME_MAX];
        int r;

        /* Only the kernel's part, and only what holds the VPS back; the
         * replay asks the store (a termination is a suspension here). */
        if (p.kind != PC_RESPONSE_SUSPEND && p.kind != PC_RESPONSE_TERMINATE && p.kind != PC_RESPONSE_FILTER)
                return 0;
        if (vps->suspended)
                return 0;
        for (size_t i = 0; p.kind == PC_RESPONSE_FILTER && i < vps->n_filters; i++)
                if (vps->filters[i].id == 0)
                        return 0; /* held back already, by the journal's own */
        snprintf(id, sizeof(id), "%s", vps->id);
        r = pc_vps_clone(vps, &copy);
        if (r < 0)
                return r;
        if (p.kind == PC_RESPONSE_FILTER) {
                struct pc_filter f = { .scope = ports != NULL ? PC_SCOPE_PORTS : PC_SCOPE_ALL,
                                       .direction = p.direction, .until = p.until, .created = pc_now() };

                if (ports != NULL)
                        f.ports = *ports;
                snprintf(f.by, sizeof(f.by), "portcullisd");
                snprintf(f.reason, sizeof(f.reason), "%s (database unreachable: journal)", what);
                r = pc_vps_add_filter(copy, &f);
        } else {
                copy->suspended = true;
                copy->suspension = (struct pc_suspension){ .created = pc_now() };
                snprintf(copy->suspension.by, sizeof(copy->suspension.by), "portcullisd");
                snprintf(copy->suspension.reason, sizeof(copy->suspension.reason),
                         "%s (database unreachable: journal)", what);
        }
        if (r >= 0 && kernel)
                r = pc_dp_vps_change(a->dp, vps, copy, pc_now(), NULL);
        if (r < 0) {
                agent_log("Failed to hold %s back in the kernel while the database is unreachable: %s", id,
                          r == -ENOMEM ? "out of memory" : pc_dp_errmsg(a->dp));
                pc_vps_free(copy);
                return r;
        }
        pc_model_remove(a->model, id); /* frees <vps> */
        if (pc_model_add(a->model, copy) < 0)
                pc_vps_free(copy);
        a->changes++;
        agent_log("%s %s in the kernel for %s while the database %s; stored with its incident when it answers",
                  p.kind == PC_RESPONSE_FILTER ? "Filtered" : "Suspended", id, kind,
                  kernel ? "is unreachable" : "was unreachable (the journal, at the start)");
        return 0;
}

/* One entry's replay, on the database thread: a copy of the entry, and
 * the response to its incident if it opens one (made on the loop). */
struct replay {
        struct agent_journal_entry e;
        bool wanted;
        struct agent_response *resp;  /* NULL: its VPS is gone from the model */
        int64_t id;                   /* its incident, if stored now (0: before, its mark says) */
        bool begun;                   /* its transaction began: a failure is the entry's own */
};

/* The entry's incident, the policy's response and the mark, in one
 * transaction: all of it, or nothing (kept for the next try). */
static int replay_run(struct pc_store *store, const struct pc_config *cfg, void *arg)
{
        struct replay *x = arg;
        const struct agent_journal_entry *e = &x->e;
        bool opened = false;
        int r;

        r = pc_store_tx_begin(store);
        if (r < 0)
                return r; /* (the writers' lock, a file replaced...: kept) */
        x->begun = true;
        r = pc_store_journal_mark(store, e->op, e->first);
        if (r == -EEXIST) {
                pc_store_tx_end(store, -ECANCELED);
                return 0;
        }
        if (r >= 0)
                r = pc_store_incident_note(store, e->vps, e->kind, e->count, e->first, e->evidence, e->gap, &x->id,
                                           &opened, x->wanted ? PC_INCIDENT_NOTICE : 0);
        if (r >= 0 && opened && x->resp != NULL)
                r = agent_response_run(store, cfg, x->resp, x->id);
        return pc_store_tx_end(store, r < 0 ? r : 0);
}

static void replay_next(struct agent *a);

/* Takes entry <op> out of the journal (saved). */
static void journal_drop(struct agent *a, const char *op)
{
        for (size_t i = 0; i < a->n_journal; i++) {
                if (strcmp(a->journal[i].op, op) != 0)
                        continue;
                entry_free(&a->journal[i]);
                memmove(a->journal + i, a->journal + i + 1, (a->n_journal - i - 1) * sizeof(*a->journal));
                a->n_journal--;
                break;
        }
        if (a->journal_lost > 0 && a->n_journal == 0) {
                agent_log("%" PRIu64 " observation(s) beyond the journal's %d entries were not kept",
                          a->journal_lost, JOURNAL_MAX);
                a->journal_lost = 0;
        }
        journal_save(a);
}

/* On the loop: the entry leaves the journal only once stored; the next
 * follows, and once the journal is empty, the change feed. */
static void replay_done(struct agent *a, void *arg, const struct agent_db_result *res)
{
        struct replay *x = arg;
        const struct agent_journal_entry *e = &x->e;
        bool ok = res->r >= 0;

        a->replaying = false;
        for (size_t i = 0; i < a->n_journal; i++)
                if (strcmp(a->journal[i].op, e->op) == 0)
                        a->journal[i].replaying = false;
        /* Kept, tried again on the next turn, unless the entry's own
         * statements failed: a store that is away, busy past its bound or
         * replaced does not lose what the journal holds. */
        if (!ok && (res->away || !x->begun)) {
                if (!res->away)
                        agent_log("Failed to begin storing %s's %s from the journal (%s), kept for the next try: %s",
                                  e->vps, e->kind, e->op, res->err);
                agent_response_done(a, x->resp, NULL);
                goto out;
        }
        if (!ok)
                agent_log("Failed to store %s's %s from the journal (%s), dropping it: %s", e->vps, e->kind, e->op,
                          res->err);
        else if (x->id != 0)
                agent_log("Stored %s's %s from the journal (%s): incident #%" PRId64 ", %" PRIu64 " observation(s) "
                          "while the database was unreachable",
                          e->vps, e->kind, e->op, x->id, e->count);
        journal_drop(a, e->op);
        /* Its response, in the kernel, once the database has it all. */
        agent_response_done(a, x->resp, ok ? res : NULL);
        x->resp = NULL;
        a->replay_ok = true;
        if (a->replay_submitting)
                goto out; /* ran here: replay_next goes on */
        replay_next(a);
        /* The journal is empty: what changed meanwhile, only now (the
         * feed would undo the kernel's part of what it held). */
        if (a->n_journal == 0 && !a->replaying)
                agent_changes_follow(a);
out:
        free(x->e.evidence);
        free(x);
}

/* Hands the journal's first entry to the database thread; with no thread
 * (the job ran here), goes on with the next while they are stored. */
static void replay_next(struct agent *a)
{
        while (!a->replaying && a->n_journal > 0) {
                struct agent_journal_entry *e = &a->journal[0];
                struct replay *x = calloc(1, sizeof(*x));
                struct pc_vps *vps = pc_model_find(a->model, e->vps);
                unsigned resp = vps != NULL ? agent_response_bits(vps, e->kind) : PC_RESP_NOTIFY;
                int r;

                if (x == NULL)
                        return;
                x->e = *e;
                x->e.evidence = e->evidence != NULL ? strdup(e->evidence) : NULL;
                x->wanted = (resp & PC_RESP_NOTIFY) &&
                            !(resp & (PC_RESP_SUSPEND | PC_RESP_OUTBOUND_FILTER | PC_RESP_INBOUND_FILTER));
                if (vps != NULL)
                        x->resp = agent_response_new(vps, e->kind, e->what[0] != '\0' ? e->what : e->kind,
                                                     e->kinds);
                if ((e->evidence != NULL && x->e.evidence == NULL) || (vps != NULL && x->resp == NULL)) {
                        agent_response_done(a, x->resp, NULL);
                        free(x->e.evidence);
                        free(x);
                        return; /* (out of memory) tried again on the next turn */
                }
                e->replaying = true;
                a->replaying = true;
                a->replay_ok = false;
                a->replay_submitting = true;
                r = agent_db_submit(a, replay_run, replay_done, x);
                a->replay_submitting = false;
                if (r < 0) {
                        e->replaying = false;
                        a->replaying = false;
                        agent_response_done(a, x->resp, NULL);
                        free(x->e.evidence);
                        free(x);
                        return;
                }
                if (a->replaying || !a->replay_ok)
                        return; /* with the thread, or ran here and failed */
        }
}

void agent_offline_replay(struct agent *a)
{
        if (a->replaying)
                return; /* one entry at a time: replay_done takes the next */
        replay_next(a);
}

void agent_offline_load(struct agent *a)
{
        char path[256];
        json_error_t jerr;
        json_t *arr, *x;
        size_t i;

        journal_path(a, path, sizeof(path));
        if (access(path, F_OK) != 0)
                return;
        arr = json_load_file(path, 0, &jerr);
        if (!json_is_array(arr)) {
                agent_log("Failed to read the journal %s (line %d: %s): left as it is", path, jerr.line, jerr.text);
                json_decref(arr);
                return;
        }
        json_array_foreach(arr, i, x) {
                struct agent_journal_entry *e;
                const char *evidence = json_string_value(json_object_get(x, "evidence"));

                if (journal_grow(a) < 0 || !json_is_string(json_object_get(x, "op")))
                        break;
                e = &a->journal[a->n_journal++];
                memset(e, 0, sizeof(*e));
                snprintf(e->op, sizeof(e->op), "%s", json_string_value(json_object_get(x, "op")));
                snprintf(e->vps, sizeof(e->vps), "%s", json_string_value(json_object_get(x, "vps")) ?: "");
                snprintf(e->kind, sizeof(e->kind), "%s", json_string_value(json_object_get(x, "kind")) ?: "");
                snprintf(e->what, sizeof(e->what), "%s", json_string_value(json_object_get(x, "what")) ?: "");
                e->count = (uint64_t)json_integer_value(json_object_get(x, "count"));
                e->first = json_integer_value(json_object_get(x, "first"));
                e->last = json_integer_value(json_object_get(x, "last"));
                e->gap = json_integer_value(json_object_get(x, "gap"));
                e->kinds = (size_t)json_integer_value(json_object_get(x, "kinds"));
                e->evidence = evidence != NULL ? strdup(evidence) : NULL;
        }
        json_decref(arr);
        agent_log("The journal %s holds %zu entr%s from while the database was unreachable: stored %s", path,
                  a->n_journal, a->n_journal == 1 ? "y" : "ies", a->store != NULL ? "now" : "when it answers");
        agent_offline_hold(a);
}

void agent_offline_hold(struct agent *a)
{
        /* What the kernel held meanwhile holds again until they are: the
         * database does not know it yet. */
        for (size_t k = 0; k < a->n_journal; k++) {
                const struct agent_journal_entry *e = &a->journal[k];
                struct pc_vps *vps = pc_model_find(a->model, e->vps);

                if (vps != NULL)
                        hold_back(a, vps, e->kind, e->what[0] != '\0' ? e->what : e->kind, NULL, false);
        }
}

void agent_offline_free(struct agent *a)
{
        for (size_t i = 0; i < a->n_journal; i++)
                entry_free(&a->journal[i]);
        free(a->journal);
        a->journal = NULL;
        a->n_journal = a->journal_cap = 0;
}
