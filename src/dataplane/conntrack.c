/* Conntrack entries that the policy no longer allows (see conntrack.h). */
#include "dataplane/conntrack.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/addr_index.h"
#include "policy/evaluate.h"

/* Whose entries a pass looks at: one VPS, or every VPS of a model. */
struct purge {
        const struct pc_vps *vps;
        const struct pc_model *model;
        const struct addr_index *index;
        int64_t now;
        struct pc_ct_purge *ret;
        struct nf_conntrack **doomed;
        size_t n_doomed, cap_doomed;
        bool oom;
};

/* The VPS of the pass that owns <addr>, or NULL. */
static const struct pc_vps *owner(const struct purge *pg, int family, const uint8_t *addr)
{
        if (pg->vps != NULL) {
                struct pc_prefix host = { .family = family, .len = family == AF_INET ? 32 : 128 };

                memcpy(host.bytes, addr, 16);
                for (size_t i = 0; i < pg->vps->n_addrs; i++)
                        if (pc_prefix_overlaps(&pg->vps->addrs[i], &host))
                                return pg->vps;
                return NULL;
        }
        struct sockaddr_storage ss = { 0 };
        const char *id;

        if (family == AF_INET) {
                struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

                sin->sin_family = AF_INET;
                memcpy(&sin->sin_addr, addr, 4);
        } else {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

                sin6->sin6_family = AF_INET6;
                memcpy(&sin6->sin6_addr, addr, 16);
        }
        id = addr_index_lookup(pg->index, (const struct sockaddr *)&ss);
        return id != NULL ? pc_model_find(pg->model, id) : NULL;
}

/* Would the ruleset let a new flow with this tuple through for <vps>?  Its
 * own direction decides by destination port, the other direction's rules by
 * source port (the flow in disguise); a redirected port is never forwarded.
 * As in the ruleset, a whole-VPS filter counts the other way round only for
 * datagrams towards an outbound-filtered VPS (DATAPLANE.md): a TCP session
 * towards it (SSH) survives the filter, and so do the flows an
 * inbound-filtered VPS opened itself. */
static bool passes(const struct pc_vps *vps, uint8_t proto, uint16_t sport, uint16_t dport, unsigned dir,
                   int64_t now)
{
        struct pc_flow own = { proto, dport, dir };
        struct pc_flow rev = { proto, sport, dir == PC_DIR_EGRESS ? PC_DIR_INGRESS : PC_DIR_EGRESS };
        struct pc_verdict v;

        if (pc_evaluate_fast(vps, &own, now) != PC_VERDICT_ALLOW)
                return false;
        pc_evaluate(vps, &rev, now, &v);
        if (v.verdict == PC_VERDICT_ALLOW)
                return true;
        for (unsigned i = 0; i < v.n_reasons; i++) {
                const struct pc_reason *x = &v.reasons[i];

                if (!x->decisive || x->kind != PC_REASON_FILTER || x->filter->scope != PC_SCOPE_ALL)
                        continue;
                /* An inbound filter leaves the VPS's own flows alone;
                 * an outbound one, flows towards it but datagrams. */
                return dir == PC_DIR_EGRESS || proto == IPPROTO_TCP || proto == IPPROTO_ICMP ||
                       proto == IPPROTO_ICMPV6;
        }
        return false;
}

static void addr_of(const struct nf_conntrack *ct, int family, bool src, uint8_t *out)
{
        memset(out, 0, 16);
        if (family == AF_INET)
                memcpy(out, nfct_get_attr(ct, src ? ATTR_ORIG_IPV4_SRC : ATTR_ORIG_IPV4_DST), 4);
        else
                memcpy(out, nfct_get_attr(ct, src ? ATTR_ORIG_IPV6_SRC : ATTR_ORIG_IPV6_DST), 16);
}

static int entry_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *data)
{
        struct purge *pg = data;
        int family = nfct_get_attr_u8(ct, ATTR_L3PROTO);
        uint8_t proto = nfct_get_attr_u8(ct, ATTR_L4PROTO);
        uint16_t sport = 0, dport = 0;
        uint8_t src[16], dst[16];
        const struct pc_vps *from, *to;
        bool keep = true;

        (void)type;
        if (family != AF_INET && family != AF_INET6)
                return NFCT_CB_CONTINUE;
        /* The proxy's own connections live in their own zone; redirected
         * connections end at the proxy, which decides them itself. */
        if ((nfct_attr_is_set(ct, ATTR_ZONE) && nfct_get_attr_u16(ct, ATTR_ZONE) != 0) ||
            (nfct_get_attr_u32(ct, ATTR_STATUS) & IPS_DST_NAT))
                return NFCT_CB_CONTINUE;
        addr_of(ct, family, true, src);
        addr_of(ct, family, false, dst);
        from = owner(pg, family, src);
        to = owner(pg, family, dst);
        if (from == NULL && to == NULL)
                return NFCT_CB_CONTINUE;
        if (proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP || proto == IPPROTO_UDPLITE ||
            proto == IPPROTO_DCCP) {
                sport = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_SRC));
                dport = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST));
        }
        pg->ret->examined++;
        if (from != NULL)
                keep = passes(from, proto, sport, dport, PC_DIR_EGRESS, pg->now);
        if (keep && to != NULL)
                keep = passes(to, proto, sport, dport, PC_DIR_INGRESS, pg->now);
        if (keep)
                return NFCT_CB_CONTINUE;
        if (pg->n_doomed == pg->cap_doomed) {
                size_t cap = pg->cap_doomed == 0 ? 64 : pg->cap_doomed * 2;
                struct nf_conntrack **v = realloc(pg->doomed, cap * sizeof(*v));

                if (v == NULL) {
                        pg->oom = true;
                        return NFCT_CB_STOP;
                }
                pg->doomed = v;
                pg->cap_doomed = cap;
        }
        pg->doomed[pg->n_doomed] = nfct_clone(ct);
        if (pg->doomed[pg->n_doomed] == NULL) {
                pg->oom = true;
                return NFCT_CB_STOP;
        }
        if (pg->n_doomed++ == 0) {
                char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];

                inet_ntop(family, src, a, sizeof(a));
                inet_ntop(family, dst, b, sizeof(b));
                const char *name = pc_proto_name(proto);

                snprintf(pg->ret->example, sizeof(pg->ret->example), "%s: %s %s:%u -> %s:%u",
                         (from != NULL ? from : to)->id, name != NULL ? name : "ip", a, sport, b, dport);
        }
        return NFCT_CB_CONTINUE;
}

static int run(struct purge *pg, char *err, size_t errsize)
{
        uint32_t family = AF_UNSPEC;
        struct nfct_handle *h;
        int r = 0;

        *pg->ret = (struct pc_ct_purge){ 0 };
        h = nfct_open(CONNTRACK, 0);
        if (h == NULL) {
                snprintf(err, errsize, "cannot open conntrack: %s", strerror(errno));
                return -errno;
        }
        nfct_callback_register(h, NFCT_T_ALL, entry_cb, pg);
        if (nfct_query(h, NFCT_Q_DUMP, &family) < 0) {
                r = -errno;
                snprintf(err, errsize, "cannot read the conntrack table: %s", strerror(errno));
        } else if (pg->oom) {
                r = -ENOMEM;
                snprintf(err, errsize, "out of memory reading the conntrack table");
        }
        /* Deleted after the dump: a handle answers one request at a time.
         * An entry that ended meanwhile is not an error. */
        for (size_t i = 0; i < pg->n_doomed; i++) {
                if (r == 0 && nfct_query(h, NFCT_Q_DESTROY, pg->doomed[i]) == 0)
                        pg->ret->deleted++;
                else if (r == 0 && errno != ENOENT) {
                        r = -errno;
                        snprintf(err, errsize, "cannot delete a conntrack entry (%s): %s", pg->ret->example,
                                 strerror(errno));
                }
                nfct_destroy(pg->doomed[i]);
        }
        free(pg->doomed);
        nfct_close(h);
        return r;
}

int pc_ct_purge_vps(const struct pc_vps *vps, int64_t now, struct pc_ct_purge *ret, char *err, size_t errsize)
{
        struct purge pg = { .vps = vps, .now = now, .ret = ret };

        return run(&pg, err, errsize);
}

int pc_ct_purge_model(const struct pc_model *m, int64_t now, struct pc_ct_purge *ret, char *err,
                      size_t errsize)
{
        struct addr_index *ix = NULL;
        struct purge pg = { .model = m, .now = now, .ret = ret };
        int r = addr_index_build(m, &ix);

        if (r < 0) {
                snprintf(err, errsize, "out of memory indexing the VPSes' addresses");
                return r;
        }
        pg.index = ix;
        r = run(&pg, err, errsize);
        addr_index_free(ix);
        return r;
}
