/* libFuzzer harness for the SMTP relay, fed from both sides at once.
 *
 * The input is a series of records: one byte (bit 0: 0 = client, 1 =
 * upstream; bits 1-7: length) and that many bytes.  Besides memory errors,
 * it checks the relay's promises: the client never gets a 2xx or 354 line
 * the upstream did not send, and no byte reaches the upstream after the
 * session closed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/relay.h"

struct fuzz {
        struct smtp_relay r;
        char client_buf[8192];
        size_t client_len;
        char upstream_buf[8192];
        size_t upstream_len;
        unsigned positive_to_client;   /* 2xx/354 lines the client got */
        unsigned positive_from_upstream;
        bool at_bol;                   /* client output is at a line start */
        bool tls_pending;              /* start_tls was called */
};

static void to_client(void *ctx, const char *buf, size_t len)
{
        struct fuzz *f = ctx;

        for (size_t i = 0; i < len; i++) {
                if (f->at_bol && (buf[i] == '2' || (buf[i] == '3' && i + 2 < len &&
                                                   buf[i + 1] == '5' && buf[i + 2] == '4')))
                        f->positive_to_client++;
                f->at_bol = buf[i] == '\n';
        }
}

static void to_upstream(void *ctx, const char *buf, size_t len)
{
        struct fuzz *f = ctx;

        if (smtp_relay_closing(&f->r) && len > 0)
                abort(); /* nothing is sent once the session is over */
}

static enum smtp_check check(void *ctx, enum smtp_stage stage, const struct smtp_txn *txn,
                             const char *domain, char *reply, size_t size)
{
        if (stage == SMTP_STAGE_RCPT && txn->rcpt_sent >= 3) {
                strncpy(reply, "452 4.5.3 Too many recipients", size - 1);
                reply[size - 1] = '\0';
                return SMTP_CHECK_REFUSE;
        }
        return SMTP_CHECK_PASS;
}

static void start_tls(void *ctx)
{
        struct fuzz *f = ctx;

        f->tls_pending = true;
}

static const struct smtp_relay_ops ops = {
        .to_client = to_client,
        .to_upstream = to_upstream,
        .check = check,
};

/* The same, upgrading the upstream leg when offered. */
static const struct smtp_relay_ops ops_tls = {
        .to_client = to_client,
        .to_upstream = to_upstream,
        .check = check,
        .start_tls = start_tls,
};

/* Counts the upstream's 2xx/354 lines in what the relay consumed. */
static void count_positive(struct fuzz *f, const char *buf, size_t len)
{
        bool bol = true;

        for (size_t i = 0; i < len; i++) {
                if (bol && (buf[i] == '2' || (buf[i] == '3' && i + 2 < len && buf[i + 1] == '5' &&
                                              buf[i + 2] == '4')))
                        f->positive_from_upstream++;
                bol = buf[i] == '\n';
        }
}

static void feed(struct fuzz *f, bool upstream, const uint8_t *data, size_t n)
{
        char *buf = upstream ? f->upstream_buf : f->client_buf;
        size_t *len = upstream ? &f->upstream_len : &f->client_len;
        size_t used;

        if (*len + n > sizeof(f->client_buf))
                n = sizeof(f->client_buf) - *len;
        memcpy(buf + *len, data, n);
        *len += n;
        if (upstream) {
                used = smtp_relay_upstream(&f->r, buf, *len);
                count_positive(f, buf, used);
        } else {
                used = smtp_relay_client(&f->r, buf, *len);
        }
        memmove(buf, buf + used, *len - used);
        *len -= used;
        if (f->tls_pending) {
                f->tls_pending = false;
                smtp_relay_tls_ready(&f->r);
        }
        if (upstream && f->client_len > 0) {
                used = smtp_relay_client(&f->r, f->client_buf, f->client_len);
                memmove(f->client_buf, f->client_buf + used, f->client_len - used);
                f->client_len -= used;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fuzz *f = calloc(1, sizeof(*f));

        if (f == NULL)
                return 0;
        f->at_bol = true;
        /* The last byte picks plain or opportunistic-TLS upstream. */
        smtp_relay_init(&f->r, size > 0 && (data[size - 1] & 0x80) ? &ops_tls : &ops, f);
        while (size > 0 && !smtp_relay_closing(&f->r)) {
                size_t n = data[0] >> 1;
                bool upstream = data[0] & 1;

                data++;
                size--;
                if (n > size)
                        n = size;
                feed(f, upstream, data, n);
                data += n;
                size -= n;
        }
        if (f->positive_to_client > f->positive_from_upstream)
                abort(); /* a positive reply the server never gave */
        smtp_relay_release(&f->r);
        free(f);
        return 0;
}
