/* The SMTP relay: one customer session spliced onto one upstream session.
 *
 * A pure state machine with no sockets, so that it can be unit-tested and
 * fuzzed from both sides.  The caller feeds it the bytes each side sent and
 * it writes, through <ops>, what each side must receive.  Its contract:
 *   - every client command gets exactly one reply, in order: the upstream's
 *     reply to it, or a local one (STARTTLS, limits, bad syntax) slotted in
 *     at its place in the pipeline;
 *   - nothing is answered on the server's behalf with a 2xx or 354: a local
 *     reply is always a 4xx or 5xx;
 *   - a command line goes upstream only if it is well formed (a verb of
 *     letters at column 0, then the end of the line or one SP and the
 *     arguments, no control byte) and its verb is on the allow-list (EHLO
 *     HELO MAIL RCPT DATA BDAT RSET NOOP HELP QUIT); it is re-written
 *     canonically (MAIL and RCPT from their parsed path and parameters), so
 *     that the upstream reads the command the relay counted; anything else
 *     gets a local 500/501/502;
 *   - STARTTLS and AUTH are removed from the EHLO reply and refused when
 *     asked for;
 *   - an upstream reply reaches the client whole, after its last line, or
 *     not at all: a reply over SMTP_REPLY_LINES_MAX lines or SMTP_REPLY_MAX
 *     bytes ends the session with a 421;
 *   - a BDAT chunk that would take the message over the upstream's SIZE is
 *     refused locally (552) and its bytes are read and dropped, as are
 *     those of every later chunk of that transaction;
 *   - message data goes upstream only after the upstream's 354, with bare
 *     CR and LF turned into CRLF, so that the upstream and the relay agree
 *     on where the data ends (no "SMTP smuggling", no desynchronisation);
 *     BDAT chunks are relayed by length, byte for byte;
 *   - a reply that fits no command (unsolicited, a 354 to anything but
 *     DATA, a malformed line) ends the session with a 421;
 *   - with ops->start_tls, the relay itself upgrades the upstream leg with
 *     STARTTLS when the server offers it (after the client's first EHLO,
 *     before the client sees the EHLO reply, which is then the one given
 *     inside TLS); the client's leg stays plain text.  Any byte the server
 *     sends after its 220 to that STARTTLS, in the same read or before
 *     smtp_relay_tls_ready(), ends the session with a 421 and TLS is never
 *     started (the CVE-2011-0411 class: bytes sent in plain text must not
 *     be taken as said inside TLS). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/strbuf.h"

#define SMTP_LINE_MAX 2048      /* longest command or reply line, CRLF included */
#define SMTP_PENDING_MAX 64     /* pipelined commands awaiting their replies */
/* A reply is held until its last line (so that the client never sees half
 * of one) and capped, so that a server cannot make the relay hold or the
 * client read a reply without end.  Real EHLO replies are under 20 lines
 * and 1 KiB; HELP texts under 40 lines. */
#define SMTP_REPLY_MAX 8192     /* longest reply, all lines and CRLFs included */
#define SMTP_REPLY_LINES_MAX 64 /* most lines in one reply */

/* What a pending reply answers. */
enum smtp_stage {
        SMTP_STAGE_GREETING,
        SMTP_STAGE_EHLO,
        SMTP_STAGE_HELO,
        SMTP_STAGE_MAIL,
        SMTP_STAGE_RCPT,
        SMTP_STAGE_DATA,     /* the DATA command: 354 expected */
        SMTP_STAGE_DOT,      /* the end of the message data */
        SMTP_STAGE_BDAT,     /* a BDAT chunk */
        SMTP_STAGE_BDAT_LAST,
        SMTP_STAGE_RSET,
        SMTP_STAGE_QUIT,
        SMTP_STAGE_OTHER,
        SMTP_STAGE_LOCAL,    /* a reply written by the relay */
        SMTP_STAGE_TLS,      /* the relay's own STARTTLS to the upstream */
};

/* The upstream leg's TLS (with ops->start_tls). */
enum smtp_tls {
        SMTP_TLS_NONE,      /* not tried yet */
        SMTP_TLS_ASKED,     /* STARTTLS sent */
        SMTP_TLS_HANDSHAKE, /* 220 received: the caller is negotiating */
        SMTP_TLS_ON,
        SMTP_TLS_DECLINED,  /* not offered, or refused by the server */
};

/* The message in progress, as far as the relay has seen it. */
struct smtp_txn {
        char helo[64];          /* HELO/EHLO argument, truncated */
        char mail_from[128];    /* reverse path, truncated; "" for <> */
        unsigned rcpt_sent;     /* RCPT commands forwarded in this transaction */
        unsigned rcpt_accepted; /* ... that the upstream accepted */
        unsigned rcpt_refused;  /* ... that it refused (4xx/5xx) */
        unsigned rcpt_local;    /* refused by the relay (limits) */
        uint64_t size;          /* message bytes relayed (DATA or BDAT) */
        int mail_reply;         /* upstream reply codes, 0 = none yet */
        int data_reply;
        int final_reply;        /* to the end of data / BDAT LAST */
        char final_text[96];    /* first line of that reply, truncated */
        bool active;            /* a MAIL was sent and no end/RSET since */
        bool data_done;         /* the end of its data went upstream: the
                                 * server may have taken it, reply or not */
        bool oversize;          /* a BDAT went over the server's SIZE: the
                                 * rest of this message is refused locally */
};

/* What the relay asks the caller before forwarding MAIL or RCPT. */
enum smtp_check {
        SMTP_CHECK_PASS = 0,    /* forward it */
        SMTP_CHECK_REFUSE,      /* answer <reply> locally, go on */
        SMTP_CHECK_CLOSE,       /* answer <reply> locally, end the session */
};

struct smtp_relay_ops {
        /* Bytes for the client and for the upstream server. */
        void (*to_client)(void *ctx, const char *buf, size_t len);
        void (*to_upstream)(void *ctx, const char *buf, size_t len);
        /* Before MAIL (<stage> SMTP_STAGE_MAIL), each RCPT, DATA and each
         * BDAT goes upstream; <domain> is the recipient's domain (RCPT only,
         * may be "").  Writes a full reply line without CRLF into <reply>
         * unless it passes.  May be NULL: everything passes. */
        enum smtp_check (*check)(void *ctx, enum smtp_stage stage, const struct smtp_txn *txn,
                                 const char *domain, char *reply, size_t size);
        /* A recipient's fate: the upstream's <code> to a RCPT whose domain
         * hashed to <domain_hash>.  May be NULL. */
        void (*recipient)(void *ctx, uint32_t domain_hash, int code);
        /* A transaction ended: upstream's final reply to the data
         * (txn->final_reply), or RSET/EHLO/QUIT/close before it (0). */
        void (*message)(void *ctx, const struct smtp_txn *txn);
        /* The upstream said 220 to the relay's STARTTLS: the caller starts
         * the TLS handshake on the upstream connection once the current
         * input call returns, then calls smtp_relay_tls_ready() (or
         * smtp_relay_upstream_gone() if it fails).  NULL: no upstream TLS. */
        void (*start_tls)(void *ctx);
};

struct smtp_relay {
        const struct smtp_relay_ops *ops;
        void *ctx;

        /* client side */
        uint8_t mode;           /* enum in relay.c: commands, DATA or BDAT bytes */
        bool hold;              /* DATA awaits its reply: client bytes stay unread */
        bool discarding;        /* inside an over-long command line */
        bool pending_cr;        /* DATA: a CR ended the last chunk */
        bool quit_sent;
        uint16_t data_line_len; /* DATA: bytes in the current line, capped */
        bool data_line_dot;     /* DATA: the current line began with '.' */
        uint64_t bdat_left;     /* BDAT bytes still to relay (or to drop) */

        /* upstream side */
        bool chunking;          /* the upstream's EHLO offered CHUNKING */
        uint64_t size_max;      /* ... and SIZE, 0 for none */
        bool ehlo_hold;         /* <hold> is for an EHLO that may start TLS */
        uint8_t tls;            /* enum smtp_tls */
        bool tls_due;           /* call ops->start_tls once this input is read */
        struct strbuf ehlo_cmd; /* the client's EHLO line, replayed inside TLS */
        bool in_reply;          /* inside a multi-line reply */
        int reply_code;
        unsigned reply_lines;   /* lines of it so far */
        struct strbuf reply;    /* its lines so far, CRLF-terminated */
        struct strbuf ehlo;     /* a complete EHLO reply, until it is given */

        /* replies awaited, in order; SMTP_STAGE_LOCAL ones are in <locals> */
        uint8_t q[SMTP_PENDING_MAX];
        uint32_t qarg[SMTP_PENDING_MAX]; /* RCPT: the domain's hash */
        unsigned qhead, qlen;
        struct strbuf locals;   /* local reply lines, CRLF-terminated, FIFO */
        size_t locals_off;

        bool closing;           /* flush what the client has, then close */
        bool failed;            /* closing because of a protocol error */
        unsigned local_errors;  /* local 5xx replies in this session */
        struct smtp_txn txn;    /* the transaction being sent */
        struct smtp_txn fin;    /* a message whose final reply is awaited */
        unsigned fin_pending;   /* replies still due up to and including it */
};

/* Prepares <r> for a new session; the upstream greeting is awaited. */
void smtp_relay_init(struct smtp_relay *r, const struct smtp_relay_ops *ops, void *ctx);

/* Frees what <r> holds (not <r>); ends an open transaction (message cb). */
void smtp_relay_release(struct smtp_relay *r);

/* Consumes bytes the client sent.  Returns how many were used; fewer than
 * <len> when the relay must wait (an incomplete line, a DATA awaiting its
 * reply, a full pipeline): the caller keeps the rest and offers it again
 * after the next upstream input. */
size_t smtp_relay_client(struct smtp_relay *r, const char *buf, size_t len);

/* Consumes bytes the upstream sent; returns how many were used (fewer than
 * <len> only when a line is incomplete).  If the input ends exactly with
 * the server's 220 to the relay's STARTTLS, ops->start_tls is called
 * before it returns. */
size_t smtp_relay_upstream(struct smtp_relay *r, const char *buf, size_t len);

/* The upstream closed or failed (<why>, e.g. "connection reset"): the
 * client gets one 421 if a reply was owed, and the session closes. */
void smtp_relay_upstream_gone(struct smtp_relay *r, const char *why);

/* Answers the client locally with <line> (no CRLF) and closes: a timeout,
 * a refusal at connect time.  Written at once, ahead of pending replies. */
void smtp_relay_abort(struct smtp_relay *r, const char *line);

/* True once the session is over: flush the client's output, then close. */
static inline bool smtp_relay_closing(const struct smtp_relay *r) { return r->closing; }

/* The caller's TLS handshake with the upstream succeeded: the relay says
 * EHLO again inside TLS and gives the client that reply. */
void smtp_relay_tls_ready(struct smtp_relay *r);

/* True while client input is held back (DATA reply or pipeline full). */
bool smtp_relay_waiting(const struct smtp_relay *r);

/* True while the relay owes the client replies from the upstream. */
static inline bool smtp_relay_busy(const struct smtp_relay *r) { return r->qlen > 0; }

/* True in the DATA or BDAT byte phase (for the caller's timeouts). */
bool smtp_relay_in_data(const struct smtp_relay *r);

/* Hash of a recipient domain, case-insensitive (FNV-1a). */
uint32_t smtp_domain_hash(const char *domain, size_t len);
