/* nf_tables netlink without libnftables.  See nft_netlink.h. */
#include "dataplane/nft_netlink.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
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

struct dump_ctx {
        nft_nl_elem_cb cb;
        void *userdata;
        int r;
};

/* The value of a nested nft_data attribute <a> into <buf> (<size>), its
 * length in *<ret_len>. */
static void data_value(const struct nlattr *a, uint8_t *buf, size_t size, uint8_t *ret_len)
{
        const struct nlattr *v;

        mnl_attr_for_each_nested(v, a)
                if (mnl_attr_get_type(v) == NFTA_DATA_VALUE && mnl_attr_get_payload_len(v) <= size) {
                        memcpy(buf, mnl_attr_get_payload(v), mnl_attr_get_payload_len(v));
                        *ret_len = (uint8_t)mnl_attr_get_payload_len(v);
                }
}

/* A map element's verdict: its jump target into <e>. */
static void data_verdict(const struct nlattr *a, struct nft_raw_elem *e)
{
        const struct nlattr *v, *w;
        bool jump = false;
        const char *chain = NULL;

        mnl_attr_for_each_nested(v, a) {
                if (mnl_attr_get_type(v) != NFTA_DATA_VERDICT)
                        continue;
                mnl_attr_for_each_nested(w, v) {
                        if (mnl_attr_get_type(w) == NFTA_VERDICT_CODE && mnl_attr_validate(w, MNL_TYPE_U32) == 0)
                                jump = (int32_t)be32toh(mnl_attr_get_u32(w)) == NFT_JUMP;
                        else if (mnl_attr_get_type(w) == NFTA_VERDICT_CHAIN && mnl_attr_validate(w, MNL_TYPE_STRING) == 0)
                                chain = mnl_attr_get_str(w);
                }
        }
        if (jump && chain != NULL && strlen(chain) < sizeof(e->chain))
                memcpy(e->chain, chain, strlen(chain) + 1);
}

/* One NFT_MSG_NEWSETELEM of a dump: each element to the callback. */
static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
        struct dump_ctx *c = data;
        struct nlattr *a, *e, *k;

        mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
                if (mnl_attr_get_type(a) != NFTA_SET_ELEM_LIST_ELEMENTS)
                        continue;
                mnl_attr_for_each_nested(e, a) {
                        struct nft_raw_elem x;
                        uint8_t end_len = 0;

                        memset(&x, 0, sizeof(x));
                        mnl_attr_for_each_nested(k, e) {
                                switch (mnl_attr_get_type(k)) {
                                case NFTA_SET_ELEM_KEY:
                                        data_value(k, x.key, sizeof(x.key), &x.len);
                                        break;
                                case NFTA_SET_ELEM_KEY_END:
                                        data_value(k, x.key_end, sizeof(x.key_end), &end_len);
                                        x.has_end = true;
                                        break;
                                case NFTA_SET_ELEM_FLAGS:
                                        if (mnl_attr_validate(k, MNL_TYPE_U32) == 0)
                                                x.interval_end = be32toh(mnl_attr_get_u32(k)) & NFT_SET_ELEM_INTERVAL_END;
                                        break;
                                case NFTA_SET_ELEM_TIMEOUT:
                                        if (mnl_attr_validate(k, MNL_TYPE_U64) == 0)
                                                x.timeout_ms = be64toh(mnl_attr_get_u64(k));
                                        break;
                                case NFTA_SET_ELEM_EXPIRATION:
                                        if (mnl_attr_validate(k, MNL_TYPE_U64) == 0)
                                                x.expires_ms = be64toh(mnl_attr_get_u64(k));
                                        break;
                                case NFTA_SET_ELEM_DATA:
                                        data_verdict(k, &x);
                                        break;
                                }
                        }
                        c->r = c->cb(&x, c->userdata);
                        if (c->r < 0)
                                return MNL_CB_ERROR;
                }
        }
        return MNL_CB_OK;
}

/* Opens <n> and starts a dump request <type> in the table family named
 * <family> ("inet" or "bridge"): its attributes are the caller's. */
static int dump_begin(struct nfnl *n, const char *family, uint16_t type, struct nlmsghdr **ret)
{
        int r;

        if (strcmp(family, "inet") != 0 && strcmp(family, "bridge") != 0)
                return -EINVAL;
        r = nfnl_open(n);
        if (r < 0)
                return r;
        *ret = nfnl_request(n, type, NLM_F_DUMP, strcmp(family, "inet") == 0 ? NFPROTO_INET : NFPROTO_BRIDGE);
        return 0;
}

/* Sends the dump <nlh> of dump_begin, reads it through <cb>, closes <n>. */
static int dump_end(struct nfnl *n, struct nlmsghdr *nlh, mnl_cb_t cb, void *data, int *cb_r)
{
        int r = nfnl_talk(n, nlh, cb, data);

        nfnl_close(n);
        return *cb_r < 0 ? *cb_r : r;
}

int nft_nl_set_dump(const char *family, const char *table, const char *set, nft_nl_elem_cb cb, void *userdata)
{
        struct dump_ctx c = { cb, userdata, 0 };
        struct nlmsghdr *nlh;
        struct nfnl n;
        int r = dump_begin(&n, family, NFT_MSG_GETSETELEM, &nlh);

        if (r < 0)
                return r;
        mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, table);
        mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set);
        return dump_end(&n, nlh, dump_cb, &c, &c.r);
}

struct counters_ctx {
        nft_nl_counter_cb cb;
        void *userdata;
        int r;
};

/* One NFT_MSG_NEWOBJ of a dump: a counter to the callback. */
static int counter_cb(const struct nlmsghdr *nlh, void *data)
{
        struct counters_ctx *c = data;
        struct nft_nl_counter x = { { 0 }, 0, 0 };
        struct nlattr *a, *v;
        bool counter = false;

        mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
                switch (mnl_attr_get_type(a)) {
                case NFTA_OBJ_NAME:
                        if (mnl_attr_validate(a, MNL_TYPE_STRING) == 0)
                                snprintf(x.name, sizeof(x.name), "%s", mnl_attr_get_str(a));
                        break;
                case NFTA_OBJ_TYPE:
                        counter = mnl_attr_validate(a, MNL_TYPE_U32) == 0 &&
                                  be32toh(mnl_attr_get_u32(a)) == NFT_OBJECT_COUNTER;
                        break;
                case NFTA_OBJ_DATA:
                        mnl_attr_for_each_nested(v, a) {
                                if (mnl_attr_validate(v, MNL_TYPE_U64) != 0)
                                        continue;
                                if (mnl_attr_get_type(v) == NFTA_COUNTER_PACKETS)
                                        x.packets = be64toh(mnl_attr_get_u64(v));
                                else if (mnl_attr_get_type(v) == NFTA_COUNTER_BYTES)
                                        x.bytes = be64toh(mnl_attr_get_u64(v));
                        }
                        break;
                }
        }
        if (!counter || x.name[0] == '\0')
                return MNL_CB_OK;
        c->r = c->cb(&x, c->userdata);
        return c->r < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

int nft_nl_counters(const char *family, const char *table, nft_nl_counter_cb cb, void *userdata)
{
        struct counters_ctx c = { cb, userdata, 0 };
        struct nlmsghdr *nlh;
        struct nfnl n;
        int r = dump_begin(&n, family, NFT_MSG_GETOBJ, &nlh);

        if (r < 0)
                return r;
        /* the kernel filters the dump by table and type */
        mnl_attr_put_strz(nlh, NFTA_OBJ_TABLE, table);
        mnl_attr_put_u32(nlh, NFTA_OBJ_TYPE, htobe32(NFT_OBJECT_COUNTER));
        return dump_end(&n, nlh, counter_cb, &c, &c.r);
}

/* A message of a batch: what its errors are about. */
struct batch_msg {
        uint32_t seq;
        char what[96];
};

struct nft_nl_batch {
        char *buf;
        size_t len, cap;
        struct batch_msg *msgs;
        size_t n_msgs, cap_msgs;
        struct nlattr *open_list;  /* the elements' nest of the message being filled */
        struct nlmsghdr *open_msg;
        uint32_t seq;
};

/* The nest of one message's elements stays under nlattr's 64 KiB. */
#define BATCH_MSG_ELEMS 60000
#define BATCH_MSG_MAX (BATCH_MSG_ELEMS + 1024)

int nft_nl_batch_new(struct nft_nl_batch **ret)
{
        struct nft_nl_batch *b = calloc(1, sizeof(*b));

        if (b == NULL)
                return -ENOMEM;
        b->seq = (uint32_t)time(NULL);
        *ret = b;
        return 0;
}

struct nft_nl_batch *nft_nl_batch_free(struct nft_nl_batch *b)
{
        if (b != NULL) {
                if (b->buf != NULL)
                        munmap(b->buf, b->cap);
                free(b->msgs);
                free(b);
        }
        return NULL;
}

/* Room for one more message at the end of <b>'s buffer.  -ENOMEM.  The
 * buffer is mapped and grown by mremap: realloc below glibc's mmap
 * threshold (up to 32 MB) would copy it at each doubling into fresh pages,
 * 100,000 VPSes' batch being about 50 MB. */
static int batch_reserve(struct nft_nl_batch *b)
{
        if (b->len + BATCH_MSG_MAX > b->cap) {
                size_t cap = b->cap == 0 ? 1 << 20 : b->cap * 2;
                void *buf = b->buf == NULL ? mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                                           : mremap(b->buf, b->cap, cap, MREMAP_MAYMOVE);

                if (buf == MAP_FAILED)
                        return -ENOMEM;
                b->buf = buf;
                b->cap = cap;
        }
        if (b->n_msgs == b->cap_msgs) {
                size_t cap = b->cap_msgs == 0 ? 64 : b->cap_msgs * 2;
                struct batch_msg *m = realloc(b->msgs, cap * sizeof(*m));

                if (m == NULL)
                        return -ENOMEM;
                b->msgs = m;
                b->cap_msgs = cap;
        }
        return 0;
}

/* Closes the message being filled, if any. */
static void batch_close(struct nft_nl_batch *b)
{
        if (b->open_msg == NULL)
                return;
        if (b->open_list != NULL)
                mnl_attr_nest_end(b->open_msg, b->open_list);
        b->len += b->open_msg->nlmsg_len;
        b->open_msg = NULL;
        b->open_list = NULL;
}

/* Starts a message of <type> about set <set> in <b>: its elements follow. */
static int batch_open(struct nft_nl_batch *b, uint16_t type, const char *family, const char *table,
                      const char *set, bool elems)
{
        struct nlmsghdr *nlh;
        struct nfgenmsg *g;
        struct batch_msg *m;
        int r;

        batch_close(b);
        r = batch_reserve(b);
        if (r < 0)
                return r;
        nlh = mnl_nlmsg_put_header(b->buf + b->len);
        nlh->nlmsg_type = (uint16_t)(NFNL_SUBSYS_NFTABLES << 8 | type);
        nlh->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | (type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0));
        nlh->nlmsg_seq = ++b->seq;
        g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
        g->nfgen_family = strcmp(family, "inet") == 0 ? NFPROTO_INET : NFPROTO_BRIDGE;
        g->version = NFNETLINK_V0;
        g->res_id = 0;
        mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, table);
        mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set);
        b->open_msg = nlh;
        b->open_list = elems ? mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS) : NULL;
        m = &b->msgs[b->n_msgs++];
        m->seq = nlh->nlmsg_seq;
        snprintf(m->what, sizeof(m->what), "%s %s in %s %s", type == NFT_MSG_NEWSETELEM ? "adding to" : "deleting from",
                 set, family, table);
        return 0;
}

/* Puts <e> into the open message's elements. */
static void put_elem(struct nlmsghdr *nlh, const struct nft_raw_elem *e, bool add)
{
        struct nlattr *el = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM), *k;

        k = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_KEY);
        mnl_attr_put(nlh, NFTA_DATA_VALUE, e->len, e->key);
        mnl_attr_nest_end(nlh, k);
        if (e->has_end) {
                k = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_KEY_END);
                mnl_attr_put(nlh, NFTA_DATA_VALUE, e->len, e->key_end);
                mnl_attr_nest_end(nlh, k);
        }
        if (e->interval_end)
                mnl_attr_put_u32(nlh, NFTA_SET_ELEM_FLAGS, htobe32(NFT_SET_ELEM_INTERVAL_END));
        if (add && e->timeout_ms != 0)
                mnl_attr_put_u64(nlh, NFTA_SET_ELEM_TIMEOUT, htobe64(e->timeout_ms));
        if (add && e->chain[0] != '\0') {
                struct nlattr *d = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_DATA);
                struct nlattr *v = mnl_attr_nest_start(nlh, NFTA_DATA_VERDICT);

                mnl_attr_put_u32(nlh, NFTA_VERDICT_CODE, htobe32((uint32_t)NFT_JUMP));
                mnl_attr_put_strz(nlh, NFTA_VERDICT_CHAIN, e->chain);
                mnl_attr_nest_end(nlh, v);
                mnl_attr_nest_end(nlh, d);
        }
        mnl_attr_nest_end(nlh, el);
}

int nft_nl_batch_elems(struct nft_nl_batch *b, const char *family, const char *table, const char *set, bool add,
                       const struct nft_raw_elem *v, size_t n)
{
        uint16_t type = add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM;
        int r;

        if (strcmp(family, "inet") != 0 && strcmp(family, "bridge") != 0)
                return -EINVAL;
        if (n == 0 && !add) { /* a flush */
                r = batch_open(b, type, family, table, set, false);
                batch_close(b);
                return r;
        }
        for (size_t i = 0; i < n; i++) {
                if (v[i].len == 0 || v[i].len > NFT_KEY_MAX)
                        return -EINVAL;
                if (i == 0 || b->open_msg == NULL ||
                    (size_t)((char *)mnl_nlmsg_get_payload_tail(b->open_msg) - (char *)b->open_list) > BATCH_MSG_ELEMS) {
                        r = batch_open(b, type, family, table, set, true);
                        if (r < 0)
                                return r;
                }
                put_elem(b->open_msg, &v[i], add);
        }
        batch_close(b);
        return 0;
}

/* The batch's begin (with <genid>, if not 0) or end message at <p>. */
static size_t batch_mark(char *p, uint16_t type, uint32_t seq, uint32_t genid)
{
        struct nlmsghdr *nlh = mnl_nlmsg_put_header(p);
        struct nfgenmsg *g;

        nlh->nlmsg_type = type;
        nlh->nlmsg_flags = NLM_F_REQUEST;
        nlh->nlmsg_seq = seq;
        g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
        g->nfgen_family = AF_UNSPEC;
        g->version = NFNETLINK_V0;
        g->res_id = htobe16(NFNL_SUBSYS_NFTABLES);
        if (genid != 0)
                mnl_attr_put_u32(nlh, NFNL_BATCH_GENID, htobe32(genid));
        return nlh->nlmsg_len;
}

struct ack_ctx {
        const struct nft_nl_batch *b;
        size_t acked;
        int err;
        char *msg;
        size_t size;
};

/* An acknowledgement: counted, and the first error kept with what it was
 * about and the kernel's message (extended ack). */
static int ack_cb(const struct nlmsghdr *nlh, void *data)
{
        struct ack_ctx *c = data;
        const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
        const char *why = NULL, *what = "the transaction";
        const struct nlattr *a;

        if (nlh->nlmsg_type != NLMSG_ERROR)
                return MNL_CB_OK;
        c->acked++;
        if (e->error == 0 || c->err != 0)
                return MNL_CB_OK;
        c->err = e->error;
        if (nlh->nlmsg_flags & NLM_F_ACK_TLVS)
                mnl_attr_for_each(a, nlh, sizeof(*e))
                        if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
                                why = mnl_attr_get_str(a);
        for (size_t i = 0; i < c->b->n_msgs; i++)
                if (c->b->msgs[i].seq == e->msg.nlmsg_seq)
                        what = c->b->msgs[i].what;
        snprintf(c->msg, c->size, "%s: %s%s%s", what, strerror(-c->err), why != NULL ? ": " : "", why != NULL ? why : "");
        return MNL_CB_OK;
}

int nft_nl_batch_commit(struct nft_nl_batch *b, uint32_t genid, char *err, size_t size)
{
        struct ack_ctx c = { .b = b, .msg = err, .size = size };
        struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
        _Alignas(struct nlmsghdr) char begin[128], end[128];
        /* the batch between its marks, sent as it lies (not copied) */
        struct iovec iov[3] = { { begin, 0 }, { b->buf, b->len }, { end, 0 } };
        struct msghdr mh = { .msg_name = &kernel, .msg_namelen = sizeof(kernel), .msg_iov = iov, .msg_iovlen = 3 };
        struct nfnl n;
        size_t len;
        int one = 1, r, buf;

        batch_close(b);
        iov[0].iov_len = batch_mark(begin, NFNL_MSG_BATCH_BEGIN, b->seq + 1, genid);
        iov[2].iov_len = batch_mark(end, NFNL_MSG_BATCH_END, b->seq + 2, 0);
        len = iov[0].iov_len + b->len + iov[2].iov_len;
        r = nfnl_open(&n);
        if (r < 0)
                return r;
        /* the whole batch in one message (nf_tables takes a transaction
         * from one), and room for every acknowledgement */
        buf = (int)(len > (size_t)INT32_MAX / 2 ? INT32_MAX / 2 : len + 4096);
        setsockopt(mnl_socket_get_fd(n.nl), SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf));
        buf = (int)(b->n_msgs * 512 + 65536);
        setsockopt(mnl_socket_get_fd(n.nl), SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf));
        mnl_socket_setsockopt(n.nl, NETLINK_CAP_ACK, &one, sizeof(one));
        mnl_socket_setsockopt(n.nl, NETLINK_EXT_ACK, &one, sizeof(one));
        if (sendmsg(mnl_socket_get_fd(n.nl), &mh, 0) < 0)
                r = -errno;
        /* one acknowledgement per message, or one error for the batch */
        while (r == 0 && c.acked < b->n_msgs) {
                ssize_t got = mnl_socket_recvfrom(n.nl, n.buf, sizeof(n.buf));
                int left = (int)got;

                if (got == -1) {
                        r = -errno;
                        break;
                }
                for (const struct nlmsghdr *h = (const struct nlmsghdr *)n.buf; mnl_nlmsg_ok(h, left);
                     h = mnl_nlmsg_next(h, &left)) {
                        ack_cb(h, &c);
                        /* the first error is the answer (a refused batch,
                         * or a stale generation, ends there) */
                        if (c.err != 0)
                                c.acked = b->n_msgs;
                }
        }
        nfnl_close(&n);
        if (r == 0 && c.err != 0)
                r = c.err;
        return r;
}
