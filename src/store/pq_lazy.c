/* libpq, loaded on first use (pq_lazy.h says why). */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "store/pq_lazy.h"

#define PQ_SONAME "libpq.so.5" /* Debian's libpq5 */

struct pq_api pq;

static pthread_once_t pq_once = PTHREAD_ONCE_INIT;
static char pq_missing[256]; /* empty: loaded */

static void pq_open(void)
{
        void *h = dlopen(PQ_SONAME, RTLD_NOW | RTLD_LOCAL);

        if (h == NULL) {
                snprintf(pq_missing, sizeof(pq_missing), "%s", dlerror());
                return;
        }
#define PQ_RESOLVE(name)                                                                 \
        if (pq_missing[0] == '\0' && (pq.name = (__typeof__(name) *)dlsym(h, #name)) == NULL) \
                snprintf(pq_missing, sizeof(pq_missing), "%s has no %s", PQ_SONAME, #name);
        PQ_FUNCTIONS(PQ_RESOLVE)
#undef PQ_RESOLVE
        /* (kept loaded for the process's life: its connections use it) */
}

int pq_load(char *err, size_t errsz)
{
        pthread_once(&pq_once, pq_open);
        if (pq_missing[0] == '\0')
                return 0;
        snprintf(err, errsz, "PostgreSQL's client library could not be loaded (%s): install it with "
                             "`apt-get install libpq5`", pq_missing);
        return -ELIBACC; /* (not -ENOENT: "no database there") */
}
