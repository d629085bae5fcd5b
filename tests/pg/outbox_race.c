/* Several agents drain one outbox on a real PostgreSQL server: ROWS
 * notifications are queued, then WORKERS processes, each with its own
 * connection, loop as the agent's notifier does -- read the due rows
 * (BATCH of them, oldest first), claim each (pc_store_notification_sending),
 * "send" it (a short sleep), mark it sent -- all at once, released
 * together.  Every claim is counted in memory the processes share: each
 * notification must be claimed exactly once (a second claim is a second
 * email to the customer), and all must end sent after one attempt.
 *
 * Usage: outbox_race URL SOURCE_ROOT   (URL: tests/pg/cluster.sh's) */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "policy/config.h"
#include "store/store.h"

#define ROWS 300
#define WORKERS 4
#define BATCH 20      /* as the notifier reads them */
#define SEND_US 2000  /* a send attempt, between the claim and sent */

/* What the processes share: claims per notification, refusals. */
struct shared {
        atomic_uint claims[ROWS];
        atomic_uint busy;     /* -EBUSY: another worker holds it */
        atomic_uint settled;  /* -EALREADY: already sent */
        atomic_uint sent_lost; /* sent() found it sent by another: a duplicate */
};

static const struct pc_actor orch = { .by = "orch", .reason = "outbox race" };

struct due {
        int64_t id[BATCH];
        size_t n;
};

static int collect(const struct pc_notification *n, void *userdata)
{
        struct due *d = userdata;

        if (d->n < BATCH)
                d->id[d->n++] = n->id;
        return 0;
}

static double seconds(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One worker: connects, says it is ready on <ready>, waits for <go> to
 * close, then drains the outbox.  Returns the process's exit status. */
static int worker(int k, const char *url, int64_t first, struct shared *sh, int ready, int go)
{
        struct pc_store *s = NULL;
        char err[512], mid[PC_NOTIFICATION_MESSAGE_ID_MAX], c;

        if (pc_store_open(url, &s, err, sizeof(err)) < 0) {
                fprintf(stderr, "worker %d: %s\n", k, err);
                return 1;
        }
        if (write(ready, "r", 1) != 1 || read(go, &c, 1) != 0) {
                fprintf(stderr, "worker %d: lost the start signal\n", k);
                return 1;
        }
        for (;;) {
                struct due d = { .n = 0 };

                if (pc_store_notification_due(s, pc_now(), BATCH, collect, &d) < 0) {
                        fprintf(stderr, "worker %d: due: %s\n", k, pc_store_errmsg(s));
                        return 1;
                }
                if (d.n == 0)
                        break;
                for (size_t i = 0; i < d.n; i++) {
                        int64_t id = d.id[i];
                        int r;

                        if (id < first || id >= first + ROWS) {
                                fprintf(stderr, "worker %d: notification #%" PRId64 " was not queued\n", k, id);
                                return 1;
                        }
                        snprintf(mid, sizeof(mid), "<race.%" PRId64 "@test>", id);
                        r = pc_store_notification_sending(s, id, mid, pc_now(), mid);
                        if (r == -EBUSY) {
                                atomic_fetch_add(&sh->busy, 1);
                                continue;
                        }
                        if (r == -EALREADY) {
                                atomic_fetch_add(&sh->settled, 1);
                                continue;
                        }
                        if (r < 0) {
                                fprintf(stderr, "worker %d: sending #%" PRId64 ": %s\n", k, id, pc_store_errmsg(s));
                                return 1;
                        }
                        atomic_fetch_add(&sh->claims[id - first], 1);
                        usleep(SEND_US);
                        r = pc_store_notification_sent(s, id, pc_now());
                        if (r == -EALREADY)
                                atomic_fetch_add(&sh->sent_lost, 1);
                        else if (r < 0) {
                                fprintf(stderr, "worker %d: sent #%" PRId64 ": %s\n", k, id, pc_store_errmsg(s));
                                return 1;
                        }
                }
        }
        pc_store_close(s);
        return 0;
}

/* Counts the sent notifications with one attempt into *<userdata>. */
static int count_sent_once(const struct pc_notification *n, void *userdata)
{
        size_t *count = userdata;

        if (strcmp(n->state, "sent") == 0 && n->attempts == 1)
                (*count)++;
        return 0;
}

/* Queues ROWS notifications to the owner of a new VPS; the first's id
 * into *<ret_first> (they are consecutive: one transaction). */
static int queue_rows(const char *url, const char *src, int64_t *ret_first)
{
        struct pc_config *cfg = NULL;
        struct pc_store *s = NULL;
        struct pc_vps *v = NULL;
        struct pc_prefix p;
        char path[4096], err[1024];
        int64_t now = pc_now(), id = 0, prev = 0;
        int r;

        snprintf(path, sizeof(path), "%s/etc/portcullis.yaml", src);
        if (pc_config_load(path, &cfg, err, sizeof(err)) < 0 || pc_store_init(url, NULL, &s, err, sizeof(err)) < 0) {
                fprintf(stderr, "%s\n", err);
                pc_config_free(cfg);
                return -1;
        }
        r = pc_vps_new(&v);
        if (r == 0) {
                snprintf(v->id, sizeof(v->id), "vps-101");
                snprintf(v->owner, sizeof(v->owner), "owner@example.net");
                snprintf(v->lang, sizeof(v->lang), "en");
                v->site = pc_config_site(cfg, "milano");
                r = pc_parse_prefix("192.0.2.10", false, &p);
        }
        if (r == 0)
                r = pc_vps_add_addr(v, &p);
        if (r == 0)
                r = pc_store_vps_add(s, v, &orch);
        if (r == 0 && (r = pc_store_tx_begin(s)) == 0) {
                for (int i = 0; r == 0 && i < ROWS; i++) {
                        r = pc_store_notification_queue(s, "vps-101", "incident.opened", NULL, now, &id);
                        if (r == 0 && i == 0)
                                *ret_first = id;
                        if (r == 0 && i > 0 && id != prev + 1)
                                r = -EINVAL;
                        prev = id;
                }
                r = pc_store_tx_end(s, r);
        }
        if (r < 0)
                fprintf(stderr, "queueing: %s\n", r == -EINVAL ? "the ids are not consecutive" : pc_store_errmsg(s));
        pc_vps_free(v);
        pc_store_close(s);
        pc_config_free(cfg);
        return r;
}

int main(int argc, char **argv)
{
        struct shared *sh;
        struct pc_store *s = NULL;
        pid_t pids[WORKERS];
        int ready[2], go[2], failed = 0, twice = 0, never = 0;
        int64_t first = 0;
        size_t sent_once = 0;
        double t0;
        char err[512], c;

        if (argc != 3) {
                fprintf(stderr, "usage: outbox_race URL SOURCE_ROOT\n");
                return 2;
        }
        if (queue_rows(argv[1], argv[2], &first) < 0)
                return 1;
        sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (sh == MAP_FAILED || pipe(ready) == -1 || pipe(go) == -1) {
                perror("outbox_race");
                return 1;
        }
        memset(sh, 0, sizeof(*sh));
        for (int k = 0; k < WORKERS; k++) {
                pids[k] = fork();
                if (pids[k] == -1) {
                        perror("fork");
                        return 1;
                }
                if (pids[k] == 0) {
                        close(ready[0]);
                        close(go[1]);
                        _exit(worker(k, argv[1], first, sh, ready[1], go[0]));
                }
        }
        close(ready[1]);
        close(go[0]);
        for (int k = 0; k < WORKERS; k++)
                if (read(ready[0], &c, 1) != 1) {
                        fprintf(stderr, "a worker did not connect\n");
                        failed = 1;
                        break;
                }
        t0 = seconds();
        close(go[1]); /* all at once */
        for (int k = 0; k < WORKERS; k++) {
                int status;

                if (waitpid(pids[k], &status, 0) == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        failed = 1;
        }
        for (int i = 0; i < ROWS; i++) {
                unsigned n = atomic_load(&sh->claims[i]);

                if (n > 1) {
                        if (twice < 10)
                                printf("notification #%" PRId64 " was claimed %u times\n", first + i, n);
                        twice++;
                } else if (n == 0)
                        never++;
        }
        if (pc_store_open(argv[1], &s, err, sizeof(err)) < 0 ||
            pc_store_notification_list(s, "vps-101", "sent", 0, 0, count_sent_once, &sent_once) < 0) {
                fprintf(stderr, "reading the outbox: %s\n", s != NULL ? pc_store_errmsg(s) : err);
                failed = 1;
        }
        pc_store_close(s);
        printf("%d notifications, %d workers, %.2f s: %d claimed more than once, %d never; "
               "%u claims refused as held by another, %u as already sent, %u sent() found it sent by another; "
               "%zu sent after exactly one attempt\n",
               ROWS, WORKERS, seconds() - t0, twice, never, atomic_load(&sh->busy), atomic_load(&sh->settled),
               atomic_load(&sh->sent_lost), sent_once);
        if (failed)
                printf("FAIL a worker failed (see above)\n");
        if (twice > 0 || never > 0 || sent_once != ROWS) {
                printf("FAIL every notification must be claimed exactly once and sent after one attempt\n");
                failed = 1;
        }
        return failed ? 1 : 0;
}
