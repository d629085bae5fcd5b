/* The SMTP proxy's return path: the fwmark rules and the local routes, kept
 * through rtnetlink.  See proxy_route.h.
 *
 * Four objects, each a step: the local default route of table
 * PC_PROXY_ROUTE_TABLE for IPv4 and for IPv6, then the rule sending marked
 * packets to that table for IPv4 and for IPv6.  Routes go first, so that a
 * rule never points at an empty table; removal goes the other way. */
#include "dataplane/proxy_route.h"

#include <errno.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>

enum step_kind {
        STEP_ROUTE,
        STEP_RULE,
};

struct step {
        enum step_kind kind;
        int family;
        const char *what; /* for messages */
};

static const struct step steps[] = {
        { STEP_ROUTE, AF_INET, "the IPv4 route 'local 0.0.0.0/0 dev lo table " PC_PROXY_ROUTE_TABLE_STR "'" },
        { STEP_ROUTE, AF_INET6, "the IPv6 route 'local ::/0 dev lo table " PC_PROXY_ROUTE_TABLE_STR "'" },
        { STEP_RULE, AF_INET, "the IPv4 rule 'fwmark " PC_PROXY_FWMARK_STR " lookup " PC_PROXY_ROUTE_TABLE_STR "'" },
        { STEP_RULE, AF_INET6, "the IPv6 rule 'fwmark " PC_PROXY_FWMARK_STR " lookup " PC_PROXY_ROUTE_TABLE_STR "'" },
};

#define N_STEPS (sizeof(steps) / sizeof(steps[0]))

/* An open rtnetlink socket and what talking on it needs. */
struct rtnl {
        struct mnl_socket *nl;
        uint32_t portid;
        uint32_t seq;
        unsigned lo; /* ifindex of the loopback interface */
};

static int rtnl_open(struct rtnl *ret_rt);
static void rtnl_close(struct rtnl *rt);
static int step_request(struct rtnl *rt, const struct step *s, uint16_t type, uint16_t flags);
static int step_add(struct rtnl *rt, const struct step *s, bool *ret_added);
static int step_del(struct rtnl *rt, const struct step *s);

bool pc_proxy_route_needed(const struct pc_config *cfg)
{
        for (size_t i = 0; i < cfg->n_policies; i++)
                if (pc_policy_proxy_from_vps(&cfg->policies[i]))
                        return true;
        return false;
}

/* Opens a NETLINK_ROUTE socket (close-on-exec) in the current namespace and
 * finds the loopback interface.  Negative errno. */
static int rtnl_open(struct rtnl *ret_rt)
{
        struct rtnl rt = { .seq = (uint32_t)time(NULL) };
        int r;

        rt.lo = if_nametoindex("lo");
        if (rt.lo == 0)
                return -errno;
        rt.nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
        if (rt.nl == NULL)
                return -errno;
        if (mnl_socket_bind(rt.nl, 0, MNL_SOCKET_AUTOPID) == -1) {
                r = -errno;
                mnl_socket_close(rt.nl);
                return r;
        }
        rt.portid = mnl_socket_get_portid(rt.nl);
        *ret_rt = rt;
        return 0;
}

static void rtnl_close(struct rtnl *rt)
{
        if (rt->nl != NULL)
                mnl_socket_close(rt->nl);
        rt->nl = NULL;
}

/* Sends one request of <type> (RTM_NEWROUTE, RTM_DELRULE...) about step <s>
 * with extra <flags> and waits for the kernel's answer.  0 or the kernel's
 * negative errno. */
static int step_request(struct rtnl *rt, const struct step *s, uint16_t type, uint16_t flags)
{
        char buf[8192];
        struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
        uint32_t seq = ++rt->seq;
        ssize_t n;
        int r;

        nlh->nlmsg_type = type;
        nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        nlh->nlmsg_seq = seq;
        if (s->kind == STEP_RULE) {
                struct fib_rule_hdr *frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));

                frh->family = (uint8_t)s->family;
                frh->action = FR_ACT_TO_TBL;
                frh->table = RT_TABLE_UNSPEC; /* > 255: in FRA_TABLE */
                mnl_attr_put_u32(nlh, FRA_PRIORITY, PC_PROXY_RULE_PRIORITY);
                mnl_attr_put_u32(nlh, FRA_FWMARK, PC_PROXY_FWMARK);
                mnl_attr_put_u32(nlh, FRA_FWMASK, 0xffffffffu);
                mnl_attr_put_u32(nlh, FRA_TABLE, PC_PROXY_ROUTE_TABLE);
        } else {
                struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
                bool del = type == RTM_DELROUTE;

                rtm->rtm_family = (uint8_t)s->family;
                rtm->rtm_dst_len = 0; /* the default route: no RTA_DST */
                rtm->rtm_table = RT_TABLE_UNSPEC;
                /* A deletion matches any protocol and scope: the table is ours. */
                rtm->rtm_protocol = del ? RTPROT_UNSPEC : RTPROT_STATIC;
                rtm->rtm_scope = del ? RT_SCOPE_NOWHERE : RT_SCOPE_HOST;
                rtm->rtm_type = RTN_LOCAL;
                mnl_attr_put_u32(nlh, RTA_TABLE, PC_PROXY_ROUTE_TABLE);
                mnl_attr_put_u32(nlh, RTA_OIF, rt->lo);
        }
        if (mnl_socket_sendto(rt->nl, nlh, nlh->nlmsg_len) == -1)
                return -errno;
        do {
                n = mnl_socket_recvfrom(rt->nl, buf, sizeof(buf));
                if (n == -1)
                        return -errno;
                r = mnl_cb_run(buf, (size_t)n, seq, rt->portid, NULL, NULL);
        } while (r == MNL_CB_OK);
        return r == MNL_CB_ERROR ? -errno : 0;
}

/* Makes step <s> hold.  *<ret_added> says whether this call created the
 * object (so that a rollback removes only that).  An existing route of the
 * same key is rewritten as ours; an identical rule is kept. */
static int step_add(struct rtnl *rt, const struct step *s, bool *ret_added)
{
        uint16_t type = s->kind == STEP_RULE ? RTM_NEWRULE : RTM_NEWROUTE;
        int r = step_request(rt, s, type, NLM_F_CREATE | NLM_F_EXCL);

        if (r == 0) {
                *ret_added = true;
                return 0;
        }
        if (r != -EEXIST)
                return r;
        *ret_added = false;
        /* A rule only clashes with an identical one; a route with the same
         * destination in our table might differ (another type or device). */
        return s->kind == STEP_RULE ? 0 : step_request(rt, s, type, NLM_F_CREATE | NLM_F_REPLACE);
}

/* Deletes every copy of step <s>'s object; absent is fine.  A rule added
 * twice (by `ip rule add` without NLM_F_EXCL) needs a delete per copy. */
static int step_del(struct rtnl *rt, const struct step *s)
{
        uint16_t type = s->kind == STEP_RULE ? RTM_DELRULE : RTM_DELROUTE;

        for (int i = 0; i < 64; i++) {
                int r = step_request(rt, s, type, 0);

                if (r == -ENOENT || r == -ESRCH || r == -EAFNOSUPPORT)
                        return 0;
                if (r < 0)
                        return r;
        }
        return -ELOOP;
}

int pc_proxy_route_ensure(char *err, size_t errsz)
{
        struct rtnl rt = { 0 };
        bool added[N_STEPS] = { false };
        bool no_ipv6 = false;
        size_t i;
        int r;

        r = rtnl_open(&rt);
        if (r < 0) {
                snprintf(err, errsz, "opening rtnetlink: %s", strerror(-r));
                return r;
        }
        for (i = 0; i < N_STEPS; i++) {
                if (steps[i].family == AF_INET6 && no_ipv6)
                        continue;
                r = step_add(&rt, &steps[i], &added[i]);
                if (r == -EAFNOSUPPORT && steps[i].family == AF_INET6) {
                        no_ipv6 = true; /* a kernel without IPv6: nothing to route */
                        r = 0;
                        continue;
                }
                if (r < 0)
                        break;
        }
        if (r < 0) {
                snprintf(err, errsz, "adding %s: %s", steps[i].what, strerror(-r));
                /* Take back what this call added, newest first. */
                while (i-- > 0)
                        if (added[i])
                                (void)step_del(&rt, &steps[i]);
        }
        rtnl_close(&rt);
        return r;
}

int pc_proxy_route_remove(char *err, size_t errsz)
{
        struct rtnl rt = { 0 };
        int r, first = 0;

        r = rtnl_open(&rt);
        if (r < 0) {
                snprintf(err, errsz, "opening rtnetlink: %s", strerror(-r));
                return r;
        }
        for (size_t i = N_STEPS; i-- > 0;) {
                r = step_del(&rt, &steps[i]);
                if (r < 0 && first == 0) {
                        first = r;
                        snprintf(err, errsz, "removing %s: %s", steps[i].what, strerror(-r));
                }
        }
        rtnl_close(&rt);
        return first;
}
