/* The snapshot of the host's policy: what the agent enforces, kept on a
 * local disk (policy/snapshot.h has the format), so that a hypervisor
 * that boots while the database is away enforces the last policy it knew
 * rather than nothing (docs/FLEET.md, "When the database is away").
 *
 * Writing.  After a full load, and after changes once the kernel's
 * fingerprint of the model (pc_dp_fingerprint) moved: at most every
 * SNAPSHOT_GAP_MS, or 50 times what the last one took to format if more
 * (at 100,000 VPSes a write cannot take more than 2% of the loop).  The
 * model is formatted in the loop (it changes under the loop only); a
 * thread of its own seals it, writes it to a temporary file, fsyncs it
 * and renames it over the last: the loop never waits for the disk, and a
 * crash leaves the old file or the new one, whole.
 *
 * Reading (agent_snapshot_read) at a start without the database.  While
 * the agent enforces a snapshot, a thread of its own tries to load the
 * database every SNAPSHOT_RETRY_MS (a connection may take connect_timeout,
 * which the loop must not wait for), and reads with it the VPSes the
 * running model keeps for their interface that the load does not have
 * (their ids and interfaces handed over by the loop as it starts the
 * wait: the thread never reads the running model, which the loop
 * changes); when it has loaded, the loop takes the load as a reload
 * (agent_db_back), deciding from those reads. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "policy/snapshot.h"

#define SNAPSHOT_GAP_MS 2000       /* between writes, at least */
#define SNAPSHOT_RETRY_MS 2000     /* between attempts to load the database */
#define SNAPSHOT_NAG_S 60          /* how often to say the database is still away */
#define SNAPSHOT_MAX (1u << 30)    /* a larger file is not one of ours */

/* One write, handed to the writer thread. */
struct snapshot_job {
        struct strbuf text;        /* unsealed */
        size_t vpses;
        char path[256], tmp[264];
        atomic_bool done;
        int err;                   /* 0, or the errno of <what> */
        const char *what;
        size_t bytes;
        long us;                   /* sealing, writing, fsync and rename */
};

struct agent_snapshot {
        pthread_t thread;
        struct snapshot_job *job;  /* the write in flight, or NULL */
        uint64_t written_fp;       /* the fingerprint last written */
        bool due;                  /* a full load: write whatever the fingerprint */
        bool failing;              /* the last write failed (logged once) */
        bool told;                 /* the first write was logged */
        int64_t next_ms;           /* CLOCK_MONOTONIC: no write before */
        long format_us;            /* of the last */
        int64_t gap_ms;            /* to the next, at least */
        int64_t at;                /* unix time of the last write done */
        size_t bytes;
        long write_us;
};

/* The thread that waits for the database while a snapshot is enforced. */
struct agent_dbwait {
        pthread_t thread;
        struct agent *a;           /* reads its config path, URL and host only */
        int fd;                    /* eventfd: loaded */
        struct event *ev;          /* on the loop, for <fd> (agent_dbwait_watch) */
        atomic_bool stop;
        atomic_bool loaded;
        pthread_mutex_t lock;
        char why[512];             /* why the last attempt failed */
        struct pc_config *cfg;     /* the load, once <loaded> */
        struct pc_store *store;
        struct pc_model *model;
        int64_t seen;
        struct agent_departing *departing; /* the running model's VPSes; read after the load */
        size_t n_departing;
};

void agent_snapshot_path(const struct agent *a, const struct pc_config *cfg, char *buf, size_t size)
{
        const char *set = cfg->agent.snapshot, *host = cfg->agent.host;

        (void)a;
        if (strcmp(set, "none") == 0 || (set[0] == '\0' && host[0] == '\0'))
                snprintf(buf, size, "%s", "");
        else if (set[0] != '\0')
                snprintf(buf, size, "%s", set);
        else
                snprintf(buf, size, "/var/lib/portcullis/snapshot-%s", host);
}

/* ---- writing ---- */

/* Writes <j>'s text to <j>->path through <j>->tmp: the file, whole, or
 * the old one. */
static void *write_run(void *arg)
{
        struct snapshot_job *j = arg;
        struct timespec t0;
        char dir[256];
        const char *slash;
        int fd = -1;
        size_t off = 0;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        pc_snapshot_seal(&j->text, j->vpses);
        j->what = "out of memory";
        j->err = ENOMEM;
        if (j->text.oom)
                goto out;
        j->err = 0;
        j->bytes = j->text.len;
        fd = open(j->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd == -1 || fchmod(fd, 0600) == -1) {
                j->what = "creating";
                goto fail;
        }
        while (off < j->text.len) {
                ssize_t n = write(fd, j->text.s + off, j->text.len - off);

                if (n == -1 && errno == EINTR)
                        continue;
                if (n == -1) {
                        j->what = "writing";
                        goto fail;
                }
                off += (size_t)n;
        }
        if (fsync(fd) == -1) {
                j->what = "writing";
                goto fail;
        }
        if (close(fd) == -1) {
                fd = -1;
                j->what = "writing";
                goto fail;
        }
        fd = -1;
        if (rename(j->tmp, j->path) == -1) {
                j->what = "renaming";
                goto fail;
        }
        /* The rename itself, on disk. */
        slash = strrchr(j->path, '/');
        snprintf(dir, sizeof(dir), "%.*s", slash != NULL && slash != j->path ? (int)(slash - j->path) : 1,
                 slash != NULL ? j->path : ".");
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
                fsync(fd);
                close(fd);
        }
        fd = -1;
        goto out;
fail:
        j->err = errno;
        if (fd >= 0)
                close(fd);
        unlink(j->tmp);
out:
        strbuf_free(&j->text);
        j->us = pc_elapsed_us(&t0);
        atomic_store(&j->done, true);
        return NULL;
}

/* Takes the write in flight if it is done (or waits for it, <wait>). */
static void write_reap(struct agent *a, bool wait)
{
        struct agent_snapshot *s = a->snap;
        struct snapshot_job *j = s != NULL ? s->job : NULL;

        if (j == NULL || (!wait && !atomic_load(&j->done)))
                return;
        pthread_join(s->thread, NULL);
        s->job = NULL;
        if (j->err != 0) {
                s->written_fp = ~s->written_fp; /* tried again after the gap */
                if (!s->failing)
                        agent_log("Failed to write the policy snapshot %s (%s: %s): a reboot while the database "
                                  "is away would start from %s; tried again",
                                  j->path, j->what, strerror(j->err),
                                  s->told ? "an older one" : "none");
                s->failing = true;
        } else {
                if (!s->told || s->failing)
                        agent_log("Wrote the policy snapshot %s: %zu VPSes, %zu bytes, formatted in %.1f ms, "
                                  "written in %.1f ms (again after changes, at most every %.1f s)",
                                  j->path, j->vpses, j->bytes, s->format_us / 1000.0, j->us / 1000.0,
                                  s->gap_ms / 1000.0);
                s->told = true;
                s->failing = false;
                s->at = pc_now();
                s->bytes = j->bytes;
                s->write_us = j->us;
        }
        free(j);
}

void agent_snapshot_due(struct agent *a)
{
        if (a->snap == NULL)
                a->snap = calloc(1, sizeof(*a->snap));
        if (a->snap != NULL) {
                a->snap->due = true;
                a->snap->next_ms = 0;
        }
}

void agent_snapshot_changed(struct agent *a)
{
        if (a->snap != NULL)
                a->snap->due = true;
}

/* Starts a write of the model if one is due. */
static void write_start(struct agent *a)
{
        struct agent_snapshot *s = a->snap;
        struct pc_snapshot_head h = { .written = pc_now(), .loaded = a->policy_loaded };
        struct snapshot_job *j;
        struct timespec t0;
        uint64_t fp;
        int r;

        if (s == NULL || s->job != NULL || a->dp == NULL || a->model == NULL)
                return;
        fp = pc_dp_fingerprint(a->dp);
        if ((!s->due && fp == s->written_fp) || pc_mono_ms() < s->next_ms)
                return;
        j = calloc(1, sizeof(*j));
        if (j == NULL)
                return;
        agent_snapshot_path(a, a->cfg, j->path, sizeof(j->path));
        if (j->path[0] == '\0') {
                free(j);
                return;
        }
        snprintf(j->tmp, sizeof(j->tmp), "%s.tmp", j->path);
        snprintf(h.host, sizeof(h.host), "%s", agent_host(a));
        h.fingerprint = fp;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        r = pc_snapshot_format(a->model, &h, &j->text, &j->vpses);
        s->format_us = pc_elapsed_us(&t0);
        s->gap_ms = s->format_us / 20 > SNAPSHOT_GAP_MS ? s->format_us / 20 : SNAPSHOT_GAP_MS;
        s->next_ms = pc_mono_ms() + s->gap_ms;
        if (r < 0) {
                strbuf_free(&j->text);
                free(j);
                agent_log("Failed to write the policy snapshot: out of memory");
                return;
        }
        s->due = false;
        s->written_fp = fp;
        s->job = j;
        if (pthread_create(&s->thread, NULL, write_run, j) != 0) {
                s->job = NULL;
                s->written_fp = ~fp;
                strbuf_free(&j->text);
                free(j);
                agent_log("Failed to write the policy snapshot: no thread");
        }
}

/* ---- reading ---- */

int agent_snapshot_read(struct agent *a, const struct pc_config *cfg, int64_t now, struct pc_model **ret_model,
                        struct pc_snapshot_head *ret_head, char *err, size_t errsz)
{
        char path[256], perr[256];
        struct pc_snapshot_stats st;
        struct pc_model *m = NULL;
        struct stat sb;
        char *text = NULL;
        size_t off = 0;
        int fd, r;

        agent_snapshot_path(a, cfg, path, sizeof(path));
        if (path[0] == '\0') {
                snprintf(err, errsz, "no snapshot is kept (agent.snapshot)");
                return -ENOENT;
        }
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd == -1) {
                r = -errno;
                snprintf(err, errsz, "%s: %s", path, strerror(errno));
                return r;
        }
        if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > SNAPSHOT_MAX) {
                close(fd);
                snprintf(err, errsz, "%s: not a regular file of at most %u bytes", path, SNAPSHOT_MAX);
                return -EINVAL;
        }
        text = malloc((size_t)sb.st_size + 1);
        if (text == NULL) {
                close(fd);
                snprintf(err, errsz, "%s: out of memory", path);
                return -ENOMEM;
        }
        while (off < (size_t)sb.st_size) {
                ssize_t n = read(fd, text + off, (size_t)sb.st_size - off);

                if (n == -1 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                off += (size_t)n;
        }
        close(fd);
        r = pc_model_new(cfg, &m);
        if (r >= 0)
                r = pc_snapshot_parse(text, off, m, now, ret_head, &st, perr, sizeof(perr));
        else
                snprintf(perr, sizeof(perr), "out of memory");
        free(text);
        if (r >= 0 && strcmp(ret_head->host, cfg->agent.host) != 0) {
                snprintf(perr, sizeof(perr), "it is the policy of host '%s', this is '%s'", ret_head->host,
                         cfg->agent.host);
                r = -EINVAL;
        }
        if (r < 0) {
                snprintf(err, errsz, "%s is refused: %s", path, perr);
                pc_model_free(m);
                return r;
        }
        if (st.no_site + st.unresolved > 0)
                agent_log("The snapshot %s names what the configuration no longer has: %zu VPSes and %zu filters "
                          "left out (e.g. %s)",
                          path, st.no_site, st.unresolved, st.example);
        if (st.ended > 0)
                agent_log("The snapshot %s: %zu exceptions and filters ended since it was written, not applied",
                          path, st.ended);
        *ret_model = m;
        return 0;
}

/* ---- waiting for the database ---- */

static void *dbwait_run(void *arg)
{
        struct agent_dbwait *w = arg;

        while (!atomic_load(&w->stop)) {
                char why[512];
                int r = agent_load_all(w->a, false, &w->cfg, &w->store, &w->model, &w->seen, why, sizeof(why));
                uint64_t one = 1;

                /* A load whose kept VPSes could not be read is no load:
                 * the loop would otherwise let them out (or wait). */
                if (r >= 0 && (r = agent_departing_read(w->store, w->cfg, w->model, w->departing,
                                                        w->n_departing)) < 0) {
                        snprintf(why, sizeof(why), "cannot read the VPSes kept for their interface: %s",
                                 pc_store_errmsg(w->store));
                        w->model = pc_model_free(w->model);
                        w->store = pc_store_close(w->store);
                        w->cfg = pc_config_free(w->cfg);
                }
                if (r >= 0) {
                        atomic_store(&w->loaded, true);
                        (void)!write(w->fd, &one, sizeof(one)); /* if not, the tick looks too */
                        return NULL;
                }
                pthread_mutex_lock(&w->lock);
                snprintf(w->why, sizeof(w->why), "%s", why);
                pthread_mutex_unlock(&w->lock);
                for (int i = 0; i < SNAPSHOT_RETRY_MS / 100 && !atomic_load(&w->stop); i++)
                        poll(NULL, 0, 100);
        }
        return NULL;
}

int agent_dbwait_start(struct agent *a, const char *why)
{
        struct agent_dbwait *w;

        if (a->dbwait != NULL || a->once)
                return 0;
        w = calloc(1, sizeof(*w));
        if (w == NULL)
                return -ENOMEM;
        w->a = a;
        snprintf(w->why, sizeof(w->why), "%s", why);
        pthread_mutex_init(&w->lock, NULL);
        w->fd = -1;
        if (agent_departing_list(a->model, &w->departing, &w->n_departing) < 0 ||
            (w->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1 ||
            pthread_create(&w->thread, NULL, dbwait_run, w) != 0) {
                if (w->fd >= 0)
                        close(w->fd);
                pthread_mutex_destroy(&w->lock);
                agent_departing_free(w->departing, w->n_departing);
                free(w);
                agent_log("Failed to start waiting for the database: the agent must be restarted once it answers");
                return -ENOMEM;
        }
        a->dbwait = w;
        a->dbwait_nag = pc_now();
        agent_dbwait_watch(a);
        return 0;
}

static void on_loaded(evutil_socket_t fd, short what, void *arg)
{
        uint64_t n;

        (void)what;
        while (read(fd, &n, sizeof(n)) == sizeof(n))
                ;
        agent_dbwait_ready(arg);
}

void agent_dbwait_watch(struct agent *a)
{
        struct agent_dbwait *w = a->dbwait;

        if (w == NULL || w->ev != NULL || a->base == NULL)
                return;
        w->ev = event_new(a->base, w->fd, EV_READ | EV_PERSIST, on_loaded, a);
        if (w->ev != NULL && event_add(w->ev, NULL) < 0) {
                event_free(w->ev);
                w->ev = NULL; /* the tick (100 ms) takes it */
        }
}

void agent_dbwait_unwatch(struct agent *a)
{
        if (a->dbwait != NULL && a->dbwait->ev != NULL) {
                event_free(a->dbwait->ev);
                a->dbwait->ev = NULL;
        }
}

void agent_dbwait_why(struct agent *a, char *buf, size_t size)
{
        struct agent_dbwait *w = a->dbwait;

        buf[0] = '\0';
        if (w == NULL)
                return;
        pthread_mutex_lock(&w->lock);
        snprintf(buf, size, "%s", w->why);
        pthread_mutex_unlock(&w->lock);
}

/* Stops the thread and frees it, with what it loaded if <take> is not
 * set; returns it otherwise (the caller frees it). */
static struct agent_dbwait *dbwait_end(struct agent *a)
{
        struct agent_dbwait *w = a->dbwait;

        if (w == NULL)
                return NULL;
        if (w->ev != NULL)
                event_free(w->ev);
        a->dbwait = NULL;
        atomic_store(&w->stop, true);
        pthread_join(w->thread, NULL);
        close(w->fd);
        pthread_mutex_destroy(&w->lock);
        return w;
}

void agent_dbwait_stop(struct agent *a)
{
        struct agent_dbwait *w = dbwait_end(a);

        if (w == NULL)
                return;
        pc_model_free(w->model);
        pc_store_close(w->store);
        pc_config_free(w->cfg);
        agent_departing_free(w->departing, w->n_departing);
        free(w);
}

void agent_dbwait_ready(struct agent *a)
{
        struct agent_dbwait *w = a->dbwait;
        char why[512];
        int r;

        if (w == NULL || !atomic_load(&w->loaded))
                return;
        w = dbwait_end(a);
        snprintf(why, sizeof(why), "%s", w->why);
        r = agent_db_back(a, w->cfg, w->store, w->model, w->seen, w->departing, w->n_departing);
        agent_departing_free(w->departing, w->n_departing);
        free(w);
        if (r < 0)
                agent_dbwait_start(a, why); /* it said why; the snapshot stays in force */
}

void agent_snapshot_tick(struct agent *a)
{
        write_reap(a, false);
        write_start(a);
        agent_dbwait_ready(a);
        if (a->from_snapshot && a->dbwait != NULL && pc_now() - a->dbwait_nag >= SNAPSHOT_NAG_S) {
                char why[512], t[32];

                a->dbwait_nag = pc_now();
                agent_dbwait_why(a, why, sizeof(why));
                pc_format_time(a->snapshot_head.loaded, t, sizeof(t));
                agent_log("The database still cannot be read (%s): enforcing the snapshot of the policy of %s", why,
                          t);
        }
}

void agent_snapshot_status(struct agent *a, json_t *reply)
{
        char path[256], t[32], why[512];
        json_t *s = json_object();

        agent_snapshot_path(a, a->cfg, path, sizeof(path));
        json_object_set_new(reply, "policy", json_string(a->from_snapshot ? "snapshot" : "database"));
        if (s == NULL)
                return;
        json_object_set_new(s, "path", path[0] != '\0' ? json_string(path) : json_null());
        if (a->from_snapshot) {
                pc_format_time(a->snapshot_head.loaded, t, sizeof(t));
                json_object_set_new(s, "policy_of", json_string(t));
                json_object_set_new(s, "age_s", json_integer((json_int_t)(pc_now() - a->snapshot_head.loaded)));
                pc_format_time(a->snapshot_head.written, t, sizeof(t));
                json_object_set_new(s, "written", json_string(t));
                agent_dbwait_why(a, why, sizeof(why));
                json_object_set_new(s, "database", json_string(why));
        } else if (a->snap != NULL && a->snap->at != 0) {
                pc_format_time(a->snap->at, t, sizeof(t));
                json_object_set_new(s, "written", json_string(t));
                json_object_set_new(s, "bytes", json_integer((json_int_t)a->snap->bytes));
                json_object_set_new(s, "format_us", json_integer((json_int_t)a->snap->format_us));
                json_object_set_new(s, "write_us", json_integer((json_int_t)a->snap->write_us));
        }
        json_object_set_new(reply, "snapshot", s);
}

void agent_snapshot_stop(struct agent *a)
{
        agent_dbwait_stop(a);
        if (a->snap != NULL) {
                write_reap(a, true);
                free(a->snap);
                a->snap = NULL;
        }
}

void agent_snapshot_written(struct agent *a, uint64_t fp)
{
        agent_snapshot_due(a);
        if (a->snap != NULL) {
                a->snap->due = false;
                a->snap->written_fp = fp;
        }
}
