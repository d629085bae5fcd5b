/* portcullis-smtpd's state: configuration, store and the VPS model. */
#include "smtpd/smtpd.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "policy/evaluate.h"
#include "policy/explain.h"
#include "policy/addr_index.h"

void smtpd_log(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        fputs("portcullis-smtpd: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
}

int smtpd_load(struct smtpd *d, char *err, size_t errsz)
{
        struct pc_config *cfg = NULL;
        struct pc_store *store = d->store;
        struct pc_model *m = NULL;
        struct addr_index *ix = NULL;
        int r;

        r = pc_config_load(d->config_path, &cfg, err, errsz);
        if (r < 0)
                return r;
        /* A reload keeps the open store: after dropping privileges the
         * proxy may not be able to open it again. */
        if (store == NULL) {
                r = pc_store_open(d->db_url != NULL ? d->db_url : cfg->database, &store, err, errsz);
                if (r < 0)
                        goto fail;
        }
        r = pc_model_new(cfg, &m);
        if (r == 0)
                r = pc_store_load(store, m);
        if (r < 0) {
                snprintf(err, errsz, "cannot load the VPSes: %s", pc_store_errmsg(store));
                goto fail;
        }
        r = addr_index_build(m, &ix);
        if (r < 0) {
                snprintf(err, errsz, "cannot index the VPS addresses: %s", strerror(-r));
                goto fail;
        }
        addr_index_free(d->index);
        pc_model_free(d->model);
        pc_config_free(d->cfg);
        d->cfg = cfg;
        d->store = store;
        d->model = m;
        d->index = ix;
        return 0;
fail:
        pc_model_free(m);
        if (store != d->store)
                pc_store_close(store);
        pc_config_free(cfg);
        return r;
}

int smtpd_sync_vps(struct smtpd *d, const char *id, char *err, size_t errsz)
{
        struct pc_vps *fresh = NULL;
        struct addr_index *ix = NULL;
        int r;

        r = pc_store_vps_fetch(d->store, d->cfg, id, &fresh);
        if (r < 0 && r != -ENOENT) {
                snprintf(err, errsz, "cannot read %s: %s", id, pc_store_errmsg(d->store));
                return r;
        }
        if (pc_model_find(d->model, id) != NULL)
                pc_model_remove(d->model, id);
        if (fresh != NULL && (r = pc_model_add(d->model, fresh)) < 0) {
                pc_vps_free(fresh);
                snprintf(err, errsz, "cannot add %s: %s", id, strerror(-r));
                return r;
        }
        /* Addresses may have changed: the index is rebuilt (milliseconds
         * even with 100,000 VPSes). */
        r = addr_index_build(d->model, &ix);
        if (r < 0) {
                snprintf(err, errsz, "cannot index the VPS addresses: %s", strerror(-r));
                return r;
        }
        addr_index_free(d->index);
        d->index = ix;
        return 0;
}

const struct pc_policy *smtpd_policy_of(const struct pc_vps *vps)
{
        const struct pc_policy *p = vps->site != NULL ? vps->site->policy : NULL;

        return p != NULL && p->has_smtp_proxy ? p : NULL;
}

bool smtpd_vps_allowed(const struct pc_vps *vps, char *why, size_t size)
{
        const struct pc_flow flow = { .proto = IPPROTO_TCP, .port = 25, .dir = PC_DIR_EGRESS };
        struct pc_verdict v;

        pc_evaluate(vps, &flow, pc_now(), &v);
        if (v.verdict == PC_VERDICT_REDIRECT || v.verdict == PC_VERDICT_ALLOW)
                return true;
        snprintf(why, size, "outbound port 25 is blocked");
        for (unsigned i = 0; i < v.n_reasons; i++)
                if (v.reasons[i].decisive)
                        pc_explain_reason(&v.reasons[i], vps, &flow, why, size);
        return false;
}
