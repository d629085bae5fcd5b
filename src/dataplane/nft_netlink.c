/* nf_tables netlink without libnftables.  See nft_netlink.h. */
#include "dataplane/nft_netlink.h"

#include <endian.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

/* A dump's messages come in buffers of at most 32 KiB. */
#define NFNL_BUF 65536

/* One request's socket and buffer. */
struct nfnl {
        struct mnl_socket *nl;
        uint32_t portid;
        uint32_t seq;
        char buf[NFNL_BUF];
};

static int nfnl_open(struct nfnl *n);
static void nfnl_close(struct nfnl *n);
static struct nlmsghdr *nfnl_request(struct nfnl *n, uint16_t type, uint16_t flags, int family);
static int nfnl_talk(struct nfnl *n, struct nlmsghdr *nlh, mnl_cb_t cb, void *data);

/* Opens a NETLINK_NETFILTER socket (close-on-exec).  Negative errno. */
static int nfnl_open(struct nfnl *n)
{
        int r;

        n->seq = (uint32_t)time(NULL);
        n->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
        if (n->nl == NULL)
                return -errno;
        if (mnl_socket_bind(n->nl, 0, MNL_SOCKET_AUTOPID) == -1) {
                r = -errno;
                mnl_socket_close(n->nl);
                return r;
        }
        n->portid = mnl_socket_get_portid(n->nl);
        return 0;
}

static void nfnl_close(struct nfnl *n)
{
        mnl_socket_close(n->nl);
}

/* Starts nf_tables message <type> in <n>'s buffer. */
static struct nlmsghdr *nfnl_request(struct nfnl *n, uint16_t type, uint16_t flags, int family)
{
        struct nlmsghdr *nlh = mnl_nlmsg_put_header(n->buf);
        struct nfgenmsg *g;

        nlh->nlmsg_type = (uint16_t)(NFNL_SUBSYS_NFTABLES << 8 | type);
        nlh->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags);
        nlh->nlmsg_seq = ++n->seq;
        g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
        g->nfgen_family = (uint8_t)family;
        g->version = NFNETLINK_V0;
        g->res_id = 0;
        return nlh;
}

/* Sends <nlh> and runs <cb> on every answer until the last (a dump's end,
 * or the kernel's acknowledgement).  The kernel's error as a negative errno. */
static int nfnl_talk(struct nfnl *n, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
        uint32_t seq = nlh->nlmsg_seq;
        int r;

        if (mnl_socket_sendto(n->nl, nlh, nlh->nlmsg_len) < 0)
                return -errno;
        do {
                ssize_t len = mnl_socket_recvfrom(n->nl, n->buf, sizeof(n->buf));

                if (len == -1)
                        return -errno;
                r = mnl_cb_run(n->buf, (size_t)len, seq, n->portid, cb, data);
        } while (r > 0);
        return r == -1 ? -errno : 0;
}

static int genid_cb(const struct nlmsghdr *nlh, void *data)
{
        struct nlattr *a;

        mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
                if (mnl_attr_get_type(a) == NFTA_GEN_ID && mnl_attr_validate(a, MNL_TYPE_U32) == 0)
                        *(uint32_t *)data = be32toh(mnl_attr_get_u32(a));
        return MNL_CB_OK;
}

int nft_nl_genid(uint32_t *ret)
{
        struct nfnl n;
        uint32_t id = 0;
        int r = nfnl_open(&n);

        if (r < 0)
                return r;
        r = nfnl_talk(&n, nfnl_request(&n, NFT_MSG_GETGEN, NLM_F_ACK, AF_UNSPEC), genid_cb, &id);
        nfnl_close(&n);
        if (r == 0 && id == 0)
                r = -EIO; /* no NFTA_GEN_ID: not an answer we know */
        if (r == 0)
                *ret = id;
        return r;
}

struct keys_ctx {
        nft_nl_key_cb cb;
        void *userdata;
        int r;
};

/* One NFT_MSG_NEWSETELEM of a dump: each element's NFTA_SET_ELEM_KEY value. */
static int keys_cb(const struct nlmsghdr *nlh, void *data)
{
        struct keys_ctx *c = data;
        struct nlattr *a, *e, *k, *v;

        mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
                if (mnl_attr_get_type(a) != NFTA_SET_ELEM_LIST_ELEMENTS)
                        continue;
                mnl_attr_for_each_nested(e, a) {
                        mnl_attr_for_each_nested(k, e) {
                                if (mnl_attr_get_type(k) != NFTA_SET_ELEM_KEY)
                                        continue;
                                mnl_attr_for_each_nested(v, k) {
                                        if (mnl_attr_get_type(v) != NFTA_DATA_VALUE)
                                                continue;
                                        c->r = c->cb(mnl_attr_get_payload(v), mnl_attr_get_payload_len(v),
                                                     c->userdata);
                                        if (c->r < 0)
                                                return MNL_CB_ERROR;
                                }
                        }
                }
        }
        return MNL_CB_OK;
}

int nft_nl_set_keys(const char *family, const char *table, const char *set, nft_nl_key_cb cb, void *userdata)
{
        struct keys_ctx c = { cb, userdata, 0 };
        struct nlmsghdr *nlh;
        struct nfnl n;
        int r;

        if (strcmp(family, "inet") != 0 && strcmp(family, "bridge") != 0)
                return -EINVAL;
        r = nfnl_open(&n);
        if (r < 0)
                return r;
        nlh = nfnl_request(&n, NFT_MSG_GETSETELEM, NLM_F_DUMP,
                           strcmp(family, "inet") == 0 ? NFPROTO_INET : NFPROTO_BRIDGE);
        mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, table);
        mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set);
        r = nfnl_talk(&n, nlh, keys_cb, &c);
        nfnl_close(&n);
        return c.r < 0 ? c.r : r;
}
