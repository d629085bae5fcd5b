/* libpq, loaded the first time a PostgreSQL database is opened.
 *
 * Linked in, libpq brings about 25 libraries (Kerberos, LDAP, GnuTLS,
 * OpenSSL...) whose loading took 23 ms of CPU at every start of every
 * program, two thirds of a `portcullis` command's whole cost on the
 * default single host, which uses SQLite.  db_pg.c calls libpq through
 * pq.NAME. */
#ifndef PC_STORE_PQ_LAZY_H
#define PC_STORE_PQ_LAZY_H

#include <libpq-fe.h>
#include <stddef.h>

#define PQ_FUNCTIONS(X) \
        X(PQclear) \
        X(PQcmdTuples) \
        X(PQconnectPoll) \
        X(PQconnectStartParams) \
        X(PQconnectdbParams) \
        X(PQconninfoFree) \
        X(PQconninfoParse) \
        X(PQconsumeInput) \
        X(PQerrorMessage) \
        X(PQexec) \
        X(PQexecPrepared) \
        X(PQfinish) \
        X(PQflush) \
        X(PQfreemem) \
        X(PQgetResult) \
        X(PQgetisnull) \
        X(PQgetvalue) \
        X(PQisBusy) \
        X(PQnotifies) \
        X(PQntuples) \
        X(PQprepare) \
        X(PQreset) \
        X(PQresetPoll) \
        X(PQresetStart) \
        X(PQresultErrorField) \
        X(PQresultErrorMessage) \
        X(PQresultStatus) \
        X(PQsendPrepare) \
        X(PQsendQuery) \
        X(PQsendQueryPrepared) \
        X(PQsetnonblocking) \
        X(PQsocket) \
        X(PQstatus) \
        X(PQtransactionStatus) \
        X(PQunescapeBytea)

struct pq_api {
#define PQ_POINTER(name) __typeof__(name) *name;
        PQ_FUNCTIONS(PQ_POINTER)
#undef PQ_POINTER
};

/* Valid once pq_load() returned 0. */
extern struct pq_api pq;

/* Loads libpq (once; thread-safe).  0, or -ELIBACC with <err> saying what
 * is missing and how to install it. */
int pq_load(char *err, size_t errsz);

#endif
