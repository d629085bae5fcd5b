/* The notification worker: a thread of the agent that sends the outbox.
 *
 * It has its own store connection and a copy of the notifications config
 * (a reload restarts it), so it shares nothing with the agent's loop but a
 * wake-up eventfd and a stop flag.  Each due notification is rendered from
 * its templates, given its stable Message-ID in the store (before the
 * send: see pc_store_notification_sending), and sent through the relay with
 * libcurl; then it is marked sent, retried later with exponential backoff,
 * or kept as failed (a relay's 5xx, a template that cannot render, or
 * max-attempts reached).  Delivery is at least once: a crash after the
 * relay accepted a message and before the row was marked resends the same
 * bytes with the same Message-ID, which receivers can recognise.
 *
 * The agents of a fleet share one outbox (PostgreSQL): each reads the due
 * rows, and the claim (pc_store_notification_sending) gives each row to one
 * of them; the others are told -EBUSY, or -EALREADY once it is settled,
 * and skip it without a word -- it is not theirs to send, fail or retry. */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "agent/agent.h"
#include "base/strbuf.h"
#include "base/util.h"
#include "notify/mime.h"
#include "notify/template.h"
#include "notify/webhook.h"
#include "ops/ops.h"

#define BATCH 20
#define BACKOFF_MAX (6 * 3600)
#define IDLE_POLL_MS 1000

struct notifier {
        pthread_t thread;
        atomic_bool stop;
        int wake_fd;
        char db_url[512];
        struct pc_notify_config nc; /* a copy: the agent's may be reloaded */
        char password[256];
        char webhook_secret[512]; /* the HMAC key, from notifications.webhook.secret-file */
        size_t webhook_secret_len; /* 0: none could be read (webhook events wait and retry) */
        /* Delivered, but the database did not hear it (it was away):
         * told again before anything else, so that the lease running out
         * does not send them twice. */
        int64_t unrecorded[64];
        int64_t unrecorded_at[64];
        size_t n_unrecorded;
        struct notifier *next_retired; /* notifier_retire's list */
};

/* Records that <id> was delivered at <at>, now or, if the database does
 * not answer, on a later turn (kept; beyond 64 at once, the lease ends
 * and it may be sent again: at least once). */
static void record_sent(struct notifier *nt, struct pc_store *store, int64_t id, int64_t at)
{
        int r = pc_store_notification_sent(store, id, at);

        if (r >= 0 || r == -EALREADY || r == -ENOENT || pc_store_connected(store))
                return;
        if (nt->n_unrecorded < PC_ARRAY_SIZE(nt->unrecorded)) {
                nt->unrecorded[nt->n_unrecorded] = id;
                nt->unrecorded_at[nt->n_unrecorded++] = at;
        }
        agent_log("Notification #%" PRId64 " was delivered, but the database is away: recorded when it is back", id);
}

/* Tells the database what was delivered while it was away. */
static void record_unrecorded(struct notifier *nt, struct pc_store *store)
{
        size_t kept = 0;

        for (size_t i = 0; i < nt->n_unrecorded; i++) {
                int r = pc_store_notification_sent(store, nt->unrecorded[i], nt->unrecorded_at[i]);

                if (r < 0 && r != -EALREADY && r != -ENOENT && !pc_store_connected(store)) {
                        nt->unrecorded[kept] = nt->unrecorded[i];
                        nt->unrecorded_at[kept++] = nt->unrecorded_at[i];
                }
        }
        nt->n_unrecorded = kept;
}

/* What one send attempt gave. */
struct send_result {
        bool ok;
        bool permanent; /* the relay refused with a 5xx: no retry */
        char error[512];
};

struct reader {
        const char *data;
        size_t len, off;
};

static void settle_failure(struct notifier *nt, struct pc_store *store, const struct pc_notification *n,
                           const struct send_result *res);

static size_t read_cb(char *buf, size_t size, size_t n, void *userdata)
{
        struct reader *r = userdata;
        size_t want = size * n, left = r->len - r->off;

        if (want > left)
                want = left;
        memcpy(buf, r->data + r->off, want);
        r->off += want;
        return want;
}

static int progress_cb(void *userdata, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
        struct notifier *nt = userdata;

        return atomic_load(&nt->stop) ? 1 : 0; /* a stopping agent aborts the send */
}

/* The address of "Name <addr>" or "addr", as the envelope's "<addr>". */
static void envelope(const char *mailbox, char *buf, size_t size)
{
        char addr[256];

        if (pc_mailbox_address(mailbox, addr, sizeof(addr)) < 0)
                snprintf(addr, sizeof(addr), "%s", mailbox); /* the relay will say what is wrong */
        snprintf(buf, size, "<%s>", addr);
}

/* One SMTP transaction through the relay. */
static void send_mail(struct notifier *nt, const char *to, const struct strbuf *msg, struct send_result *res)
{
        const struct pc_notify_config *nc = &nt->nc;
        char from[300], rcpt[300], errbuf[CURL_ERROR_SIZE] = "";
        struct reader rd = { msg->s, msg->len, 0 };
        struct curl_slist *rcpts = NULL;
        long code = 0;
        CURLcode rc;
        CURL *c = curl_easy_init();

        memset(res, 0, sizeof(*res));
        if (c == NULL) {
                snprintf(res->error, sizeof(res->error), "cannot start libcurl");
                return;
        }
        envelope(nc->from, from, sizeof(from));
        envelope(to, rcpt, sizeof(rcpt));
        rcpts = curl_slist_append(NULL, rcpt);
        curl_easy_setopt(c, CURLOPT_URL, nc->relay);
        curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
        curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpts);
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(c, CURLOPT_READDATA, &rd);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)msg->len);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)nc->timeout);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)(nc->timeout < 10 ? nc->timeout : 10));
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, nt);
        if (strncmp(nc->relay, "smtp://", 7) == 0)
                curl_easy_setopt(c, CURLOPT_USE_SSL,
                                 nc->starttls == PC_STARTTLS_REQUIRED ? (long)CURLUSESSL_ALL
                                 : nc->starttls == PC_STARTTLS_OFF    ? (long)CURLUSESSL_NONE
                                                                      : (long)CURLUSESSL_TRY);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, nc->tls_verify ? 1L : 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, nc->tls_verify ? 2L : 0L);
        if (nc->username[0] != '\0') {
                curl_easy_setopt(c, CURLOPT_USERNAME, nc->username);
                curl_easy_setopt(c, CURLOPT_PASSWORD, nt->password);
        }
        rc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        if (rc == CURLE_OK) {
                res->ok = true;
        } else {
                res->permanent = code >= 500 && code < 600;
                snprintf(res->error, sizeof(res->error), "%s%s%s (relay %s, last reply %ld)",
                         curl_easy_strerror(rc), errbuf[0] != '\0' ? ": " : "", errbuf, nc->relay, code);
        }
        curl_slist_free_all(rcpts);
        curl_easy_cleanup(c);
}

/* The abuse team's copy: technical, best effort (the owner's message is
 * what the outbox tracks; a lost copy is logged). */
static void send_abuse_copy(struct notifier *nt, const struct pc_notification *n, const char *domain)
{
        _cleanup_free_ char *subject = NULL, *text = NULL;
        struct strbuf msg = { 0 };
        struct send_result res;
        char err[512], mid[300];
        int r;

        r = pc_template_render_abuse(nt->nc.templates, n->payload, n->id, n->created, &subject, &text,
                                     err, sizeof(err));
        if (r == 0) {
                r = pc_mime_message_id(n->id, n->created, domain, mid, sizeof(mid));
                if (r == 0) {
                        /* Its own Message-ID: "<portcullis.N1.T@d>" -> "<abuse.portcullis.N1.T@d>" */
                        char abuse_mid[320];

                        snprintf(abuse_mid, sizeof(abuse_mid), "<abuse.%s", mid + 1);
                        r = pc_mime_compose(nt->nc.from, nt->nc.abuse_copy, NULL, subject, text, NULL,
                                            abuse_mid, n->created, &msg);
                }
                if (r < 0)
                        snprintf(err, sizeof(err), "cannot compose it (%s)", strerror(-r));
        }
        if (r == 0) {
                send_mail(nt, nt->nc.abuse_copy, &msg, &res);
                if (!res.ok)
                        snprintf(err, sizeof(err), "%s", res.error);
                r = res.ok ? 0 : -EIO;
        }
        if (r < 0)
                agent_log("Notification #%" PRId64 ": the abuse team's copy to %s was not sent: %s", n->id,
                          nt->nc.abuse_copy, err);
        strbuf_free(&msg);
}

/* Renders, records the Message-ID, sends and records the outcome. */
static void deliver(struct notifier *nt, struct pc_store *store, const struct pc_notification *n)
{
        const struct pc_notify_config *nc = &nt->nc;
        _cleanup_free_ char *subject = NULL, *text = NULL, *html = NULL;
        struct strbuf msg = { 0 };
        struct send_result res;
        char err[512] = "", domain[256], mid[PC_NOTIFICATION_MESSAGE_ID_MAX];
        int64_t now = pc_now();
        int r;

        r = pc_template_render(nc->templates, n->language, nc->default_language, n->kind, n->payload, n->id,
                               n->created, &subject, &text, &html, err, sizeof(err));
        if (r == 0 && (r = pc_mime_domain(nc->from, domain, sizeof(domain))) == 0 &&
            (r = pc_mime_message_id(n->id, n->created, domain, mid, sizeof(mid))) == 0 &&
            (r = pc_store_notification_sending(store, n->id, mid, now, mid)) == 0) {
                /* Dated when it was queued, so that a resend is the same message. */
                r = pc_mime_compose(nc->from, n->recipient, NULL, subject, text, html, mid, n->created, &msg);
                if (r < 0)
                        snprintf(err, sizeof(err), "cannot compose the message for %s (%s)", n->recipient,
                                 strerror(-r));
        } else if (r == -EALREADY || r == -EBUSY) {
                return; /* settled, or another agent claimed it after our read: theirs to send */
        } else if (r < 0 && err[0] == '\0') {
                snprintf(err, sizeof(err), "cannot prepare the message: %s", strerror(-r));
        }
        if (r < 0) {
                /* Nothing a retry would change. */
                agent_log("Notification #%" PRId64 " (%s to %s) failed: %s", n->id, n->kind, n->recipient, err);
                pc_store_notification_failed(store, n->id, err);
                strbuf_free(&msg);
                return;
        }
        send_mail(nt, n->recipient, &msg, &res);
        strbuf_free(&msg);
        if (res.ok) {
                record_sent(nt, store, n->id, pc_now());
                agent_log("Notification #%" PRId64 " (%s, %s) sent to %s as %s", n->id, n->kind, n->language,
                          n->recipient, mid);
                if (nc->abuse_copy[0] != '\0')
                        send_abuse_copy(nt, n, domain);
        } else
                settle_failure(nt, store, n, &res);
}

/* Settles a send attempt of <n> that failed: a dead letter if the failure
 * is permanent or it was the last attempt, else retried with exponential
 * backoff -- emails and webhook events alike. */
static void settle_failure(struct notifier *nt, struct pc_store *store, const struct pc_notification *n,
                           const struct send_result *res)
{
        const struct pc_notify_config *nc = &nt->nc;
        unsigned attempts = n->attempts + 1;
        char err[600];

        if (res->permanent || attempts >= nc->max_attempts) {
                snprintf(err, sizeof(err), "%s%s", res->permanent ? "refused: " : "gave up after the last attempt: ",
                         res->error);
                pc_store_notification_failed(store, n->id, err);
                agent_log("Notification #%" PRId64 " (%s to %s) failed for good after %u attempt%s: %s", n->id,
                          n->kind, n->recipient, attempts, attempts == 1 ? "" : "s", res->error);
        } else {
                int64_t delay = nc->retry_base;

                for (unsigned i = 1; i < attempts && delay < BACKOFF_MAX; i++)
                        delay *= 2;
                if (delay > BACKOFF_MAX)
                        delay = BACKOFF_MAX;
                pc_store_notification_retry_later(store, n->id, res->error, pc_now() + delay);
                agent_log("Notification #%" PRId64 " (%s to %s) not sent (attempt %u of %u), retrying in %llds: %s",
                          n->id, n->kind, n->recipient, attempts, nc->max_attempts, (long long)delay, res->error);
        }
}

static size_t discard_cb(char *buf, size_t size, size_t n, void *userdata)
{
        return size * n; /* the receiver's answer body is not kept */
}

/* One POST of <body> to <url>, signed: 2xx is delivered; a 4xx other
 * than 408 and 429 is the receiver refusing it for good; anything else
 * (no connection, a timeout, 5xx) is tried again. */
static void send_webhook(struct notifier *nt, const char *url, const char *event, const char *delivery,
                         const char *body, struct send_result *res)
{
        const struct pc_notify_config *nc = &nt->nc;
        char sig[PC_WEBHOOK_SIGNATURE_MAX], h_sig[PC_WEBHOOK_SIGNATURE_MAX + 32], h_event[128];
        char h_id[PC_WEBHOOK_DELIVERY_MAX + 32];
        char errbuf[CURL_ERROR_SIZE] = "";
        struct curl_slist *hdrs = NULL;
        long code = 0;
        CURLcode rc;
        CURL *c;

        memset(res, 0, sizeof(*res));
        if (nt->webhook_secret_len == 0) {
                snprintf(res->error, sizeof(res->error), "no webhook secret could be read from %s",
                         nc->webhook_secret_file);
                return;
        }
        if (pc_webhook_sign(nt->webhook_secret, nt->webhook_secret_len, pc_now(), body, strlen(body), sig) < 0) {
                snprintf(res->error, sizeof(res->error), "cannot sign the event");
                return;
        }
        c = curl_easy_init();
        if (c == NULL) {
                snprintf(res->error, sizeof(res->error), "cannot start libcurl");
                return;
        }
        snprintf(h_sig, sizeof(h_sig), "X-Portcullis-Signature: %s", sig);
        snprintf(h_event, sizeof(h_event), "X-Portcullis-Event: %s", event);
        snprintf(h_id, sizeof(h_id), "X-Portcullis-Delivery: %s", delivery);
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        hdrs = curl_slist_append(hdrs, h_sig);
        hdrs = curl_slist_append(hdrs, h_event);
        hdrs = curl_slist_append(hdrs, h_id);
        hdrs = curl_slist_append(hdrs, "Expect:");
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_cb);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)nc->webhook_timeout);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)(nc->webhook_timeout < 10 ? nc->webhook_timeout : 10));
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, nt);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, nc->tls_verify ? 1L : 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, nc->tls_verify ? 2L : 0L);
        rc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        if (rc == CURLE_OK && code >= 200 && code < 300)
                res->ok = true;
        else if (rc == CURLE_OK) {
                res->permanent = code >= 400 && code < 500 && code != 408 && code != 429;
                snprintf(res->error, sizeof(res->error), "the receiver answered HTTP %ld (%s)", code, url);
        } else
                snprintf(res->error, sizeof(res->error), "%s%s%s (%s)", curl_easy_strerror(rc),
                         errbuf[0] != '\0' ? ": " : "", errbuf, url);
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(c);
}

/* A webhook event of the outbox: built, claimed (its delivery id as the
 * Message-ID the outbox keeps), POSTed and settled like an email. */
static void deliver_webhook(struct notifier *nt, struct pc_store *store, const struct pc_notification *n)
{
        _cleanup_free_ char *body = NULL;
        struct send_result res;
        char mid[PC_NOTIFICATION_MESSAGE_ID_MAX], delivery[PC_WEBHOOK_DELIVERY_MAX];
        int r;

        r = pc_webhook_body(n->id, n->kind, n->created, n->payload, delivery, &body);
        if (r < 0) {
                agent_log("Notification #%" PRId64 " (webhook %s to %s) failed: its payload is not a JSON object",
                          n->id, n->kind, n->recipient);
                pc_store_notification_failed(store, n->id, "the payload is not a JSON object");
                return;
        }
        snprintf(mid, sizeof(mid), "<webhook.portcullis.N%" PRId64 ".%" PRId64 "@portcullis>", n->id, n->created);
        r = pc_store_notification_sending(store, n->id, mid, pc_now(), mid);
        if (r == -EALREADY || r == -EBUSY)
                return; /* as deliver() */
        if (r < 0) {
                agent_log("Notification #%" PRId64 " (webhook %s): cannot claim it: %s", n->id, n->kind,
                          pc_store_errmsg(store));
                return;
        }
        send_webhook(nt, n->recipient, n->kind, delivery, body, &res);
        if (res.ok) {
                record_sent(nt, store, n->id, pc_now());
                agent_log("Notification #%" PRId64 " (webhook %s) delivered to %s", n->id, n->kind, n->recipient);
        } else
                settle_failure(nt, store, n, &res);
}

struct batch {
        struct pc_notification items[BATCH];
        size_t n;
};

static int collect(const struct pc_notification *n, void *userdata)
{
        struct batch *b = userdata;
        struct pc_notification *copy;

        if (b->n == BATCH)
                return 0;
        copy = &b->items[b->n];
        *copy = *n;
        copy->payload = strdup(n->payload != NULL ? n->payload : "{}");
        if (copy->payload == NULL)
                return -ENOMEM;
        b->n++;
        return 0;
}

static void *run(void *arg)
{
        struct notifier *nt = arg;
        struct pc_store *store = NULL;
        char err[512];

        if (pc_store_open(nt->db_url, &store, err, sizeof(err)) < 0) {
                agent_log("The notification worker cannot open the database, nothing will be sent: %s", err);
                return NULL;
        }
        while (!atomic_load(&nt->stop)) {
                struct batch b = { .n = 0 };
                struct pollfd p = { .fd = nt->wake_fd, .events = POLLIN };
                uint64_t v;

                if (nt->n_unrecorded > 0)
                        record_unrecorded(nt, store);
                if (pc_store_notification_due(store, pc_now(), BATCH, collect, &b) < 0)
                        agent_log("The notification worker cannot read the outbox: %s", pc_store_errmsg(store));
                for (size_t i = 0; i < b.n && !atomic_load(&nt->stop); i++)
                        if (strcmp(b.items[i].channel, "webhook") == 0)
                                deliver_webhook(nt, store, &b.items[i]);
                        else
                                deliver(nt, store, &b.items[i]);
                for (size_t i = 0; i < b.n; i++)
                        pc_notification_clear(&b.items[i]);
                if (b.n == BATCH)
                        continue; /* more are due */
                if (poll(&p, 1, IDLE_POLL_MS) > 0 && read(nt->wake_fd, &v, sizeof(v)) < 0)
                        continue;
        }
        /* Delivered while the database was away: told before going (a
         * reload retires this worker, or the agent stops), or they are
         * sent again once their lease runs out. */
        if (nt->n_unrecorded > 0)
                record_unrecorded(nt, store);
        if (nt->n_unrecorded > 0)
                agent_log("%zu notification(s) delivered while the database was away could not be recorded: they "
                          "may be sent again",
                          nt->n_unrecorded);
        pc_store_close(store);
        return NULL;
}

int notifier_start(struct agent *a)
{
        struct notifier *nt = calloc(1, sizeof(*nt));
        const char *langs[] = { "en", "it", NULL };
        char err[512];
        int r;

        if (nt == NULL)
                return -ENOMEM;
        nt->nc = a->cfg->notify;
        snprintf(nt->db_url, sizeof(nt->db_url), "%s", a->db_url != NULL ? a->db_url : a->cfg->database);
        r = pc_template_check(nt->nc.templates, langs, err, sizeof(err));
        if (r < 0) {
                /* The outbox keeps everything until the templates are fixed. */
                agent_log("Notifications are not sent: the templates in %s are broken: %s", nt->nc.templates, err);
                free(nt);
                return r;
        }
        if (nt->nc.password_file[0] != '\0') {
                FILE *f = fopen(nt->nc.password_file, "re");

                if (f == NULL || fgets(nt->password, sizeof(nt->password), f) == NULL) {
                        agent_log("Notifications are not sent: cannot read the relay password from %s: %s",
                                  nt->nc.password_file, strerror(errno));
                        if (f != NULL)
                                fclose(f);
                        free(nt);
                        return -EIO;
                }
                fclose(f);
                nt->password[strcspn(nt->password, "\r\n")] = '\0';
        }
        if (nt->nc.webhook_url[0] != '\0') {
                FILE *f = fopen(nt->nc.webhook_secret_file, "re");
                size_t n = f != NULL ? fread(nt->webhook_secret, 1, sizeof(nt->webhook_secret) - 1, f) : 0;

                while (n > 0 && (nt->webhook_secret[n - 1] == '\n' || nt->webhook_secret[n - 1] == '\r'))
                        n--;
                nt->webhook_secret_len = n;
                if (n == 0)
                        /* Emails go on; webhook events wait in the outbox, retried. */
                        agent_log("Webhook events to %s are not sent: cannot read a secret from %s: %s",
                                  nt->nc.webhook_url, nt->nc.webhook_secret_file,
                                  f == NULL ? strerror(errno) : "it is empty");
                if (f != NULL)
                        fclose(f);
        }
        nt->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (nt->wake_fd == -1 || (r = -pthread_create(&nt->thread, NULL, run, nt)) < 0) {
                r = nt->wake_fd == -1 ? -errno : r;
                if (nt->wake_fd != -1)
                        close(nt->wake_fd);
                free(nt);
                return r;
        }
        a->notifier = nt;
        agent_log("Notifications go through %s (templates %s)", nt->nc.relay, nt->nc.templates);
        return 0;
}

void notifier_wake(struct agent *a)
{
        uint64_t one = 1;

        if (a->notifier != NULL && write(a->notifier->wake_fd, &one, sizeof(one)) < 0)
                return; /* the counter is full: it is awake anyway */
}

static void notifier_free(struct notifier *nt)
{
        close(nt->wake_fd);
        explicit_bzero(nt->password, sizeof(nt->password));
        explicit_bzero(nt->webhook_secret, sizeof(nt->webhook_secret));
        free(nt);
}

void notifier_reap(struct agent *a, bool wait)
{
        for (struct notifier **p = &a->notifier_retired; *p != NULL;) {
                struct notifier *nt = *p;

                if ((wait ? pthread_join(nt->thread, NULL) : pthread_tryjoin_np(nt->thread, NULL)) != 0) {
                        p = &nt->next_retired;
                        continue;
                }
                *p = nt->next_retired;
                notifier_free(nt);
        }
}

void notifier_retire(struct agent *a)
{
        struct notifier *nt = a->notifier;

        if (nt == NULL)
                return;
        atomic_store(&nt->stop, true);
        notifier_wake(a);
        a->notifier = NULL;
        nt->next_retired = a->notifier_retired;
        a->notifier_retired = nt;
        notifier_reap(a, false);
}

void notifier_stop(struct agent *a)
{
        notifier_retire(a);
        notifier_reap(a, true);
}

/* Incident notices: one per episode, at most one per VPS and kind within
 * notifications.notice-gap.  Episodes in between are counted here
 * ({vps: {kind: {at, suppressed, first, last}}}) and summed up in one
 * "incident.digest" when the gap is over (notifier_digest_pass). */

static json_t *notice_state(struct agent *a, const char *vps_id, const char *kind)
{
        json_t *per_vps, *st;

        if (a->incident_notices == NULL)
                a->incident_notices = json_object();
        per_vps = json_object_get(a->incident_notices, vps_id);
        if (per_vps == NULL) {
                per_vps = json_object();
                json_object_set_new(a->incident_notices, vps_id, per_vps);
        }
        st = json_object_get(per_vps, kind);
        if (st == NULL) {
                st = json_pack("{s:I, s:I, s:I, s:I}", "at", (json_int_t)0, "suppressed", (json_int_t)0,
                               "first", (json_int_t)0, "last", (json_int_t)0);
                json_object_set_new(per_vps, kind, st);
        }
        return st;
}

static int64_t field(json_t *st, const char *key)
{
        return json_integer_value(json_object_get(st, key));
}

bool notifier_incident_notice_due(struct agent *a, const char *vps_id, const char *kind)
{
        int64_t at = field(notice_state(a, vps_id, kind), "at");

        return at == 0 || pc_now() - at >= a->cfg->notify.notice_gap;
}

void notifier_incident_opened(struct agent *a, const char *vps_id, const char *kind, bool noticed, int64_t when)
{
        json_t *st = notice_state(a, vps_id, kind);

        if (noticed) {
                json_object_set_new(st, "at", json_integer(pc_now()));
                notifier_wake(a);
                return;
        }
        if (field(st, "suppressed") == 0)
                json_object_set_new(st, "first", json_integer(when));
        json_object_set_new(st, "last", json_integer(when));
        json_object_set_new(st, "suppressed", json_integer(field(st, "suppressed") + 1));
}

/* A digest on its way to the outbox, by the database thread: its facts,
 * and what its state was before it was taken (restored if it fails). */
struct digest {
        char vps[PC_NAME_MAX];
        char kind[32];
        char *facts;
        int64_t now, at_before, first, last, episodes;
};

static int digest_run(struct pc_store *store, const struct pc_config *cfg, void *arg)
{
        struct digest *d = arg;

        (void)cfg;
        return pc_store_notification_queue(store, d->vps, "incident.digest", d->facts, d->now, NULL);
}

static void digest_done(struct agent *a, void *arg, const struct agent_db_result *res)
{
        struct digest *d = arg;

        if (res->r >= 0) {
                agent_log("Queued a digest of %" PRId64 " more %s episode(s) of %s", d->episodes, d->kind, d->vps);
                notifier_wake(a);
        } else {
                /* Kept: tried again next pass, with what came meanwhile. */
                json_t *st = notice_state(a, d->vps, d->kind);

                agent_log("Failed to queue the digest of %s's %s incidents: %s", d->vps, d->kind, res->err);
                if (field(st, "suppressed") == 0 || d->first < field(st, "first"))
                        json_object_set_new(st, "first", json_integer(d->first));
                if (d->last > field(st, "last"))
                        json_object_set_new(st, "last", json_integer(d->last));
                json_object_set_new(st, "suppressed", json_integer(field(st, "suppressed") + d->episodes));
                json_object_set_new(st, "at", json_integer(d->at_before));
        }
        free(d->facts);
        free(d);
}

void notifier_digest_pass(struct agent *a)
{
        const char *vps_id, *kind;
        json_t *per_vps, *st;
        int64_t now = pc_now();

        if (a->store == NULL)
                return; /* a snapshot: the digests wait for the database */
        json_object_foreach(a->incident_notices, vps_id, per_vps) {
                json_object_foreach(per_vps, kind, st) {
                        struct digest *d;
                        json_t *f;

                        if (field(st, "suppressed") == 0 || now - field(st, "at") < a->cfg->notify.notice_gap)
                                continue;
                        d = calloc(1, sizeof(*d));
                        if (d == NULL)
                                return;
                        snprintf(d->vps, sizeof(d->vps), "%s", vps_id);
                        snprintf(d->kind, sizeof(d->kind), "%s", kind);
                        d->now = now;
                        d->at_before = field(st, "at");
                        d->first = field(st, "first");
                        d->last = field(st, "last");
                        d->episodes = field(st, "suppressed");
                        f = json_pack("{s:s, s:I, s:I, s:I}", "kind", kind, "episodes", (json_int_t)d->episodes,
                                      "first_seen", (json_int_t)d->first, "last_seen", (json_int_t)d->last);
                        d->facts = f != NULL ? json_dumps(f, JSON_COMPACT) : NULL;
                        json_decref(f);
                        if (d->facts == NULL) {
                                agent_log("Failed to queue the digest of %s's %s incidents: out of memory", vps_id,
                                          kind);
                                free(d);
                                continue;
                        }
                        /* Taken now: the next pass does not queue it twice. */
                        json_object_set_new(st, "at", json_integer(now));
                        json_object_set_new(st, "suppressed", json_integer(0));
                        if (agent_db_submit(a, digest_run, digest_done, d) < 0)
                                digest_done(a, d, &(struct agent_db_result){ .r = -ENOBUFS,
                                                                             .err = "the database thread is full" });
                }
        }
}

/* Owners hear this long before an exception ends. */
#define EXPIRY_NOTICE_WINDOW (3 * 86400)

/* The expiry pass, by the database thread: what it did, to log. */
struct expiry {
        char host[PC_NAME_MAX];
        size_t tickets, notices;
        int tickets_r;
        struct pc_ops_error err;
};

static int expiry_run(struct pc_store *store, const struct pc_config *cfg, void *arg)
{
        struct expiry *x = arg;
        struct pc_ops o = { .cfg = cfg, .store = store };
        struct pc_ops_actor who = { .principal = "portcullisd", .role = PC_ROLE_AGENT };

        /* Approved tickets whose exception ran out: expired, audited.
         * This host's VPSes only: each host's agent does its own (and a
         * host's database role may change no other host's rows). */
        x->tickets_r = pc_ops_ticket_expire_due(&o, &who, x->host, &x->tickets, &x->err);
        return pc_store_exception_expiry_notices(store, pc_now(), EXPIRY_NOTICE_WINDOW, x->host, &x->notices);
}

static void expiry_done(struct agent *a, void *arg, const struct agent_db_result *res)
{
        struct expiry *x = arg;
        size_t n = x->tickets;

        if (x->tickets_r < 0)
                agent_log("Failed to record the tickets whose exception ended: %s", x->err.message);
        else if (n > 0)
                agent_log("%zu ticket%s expired with %s exception", n, n == 1 ? "" : "s", n == 1 ? "its" : "their");
        n = x->notices;
        if (res->r < 0)
                agent_log("Failed to queue the notices of exceptions ending soon: %s", res->err);
        else if (n > 0) {
                agent_log("Queued %zu notice%s of exceptions ending within 3 days", n, n == 1 ? "" : "s");
                notifier_wake(a);
        }
        free(x);
}

void notifier_expiry_pass(struct agent *a)
{
        struct expiry *x;

        if (a->store == NULL)
                return;
        x = calloc(1, sizeof(*x));
        if (x == NULL)
                return;
        snprintf(x->host, sizeof(x->host), "%s", agent_host(a));
        if (agent_db_submit(a, expiry_run, expiry_done, x) < 0)
                free(x);
}
