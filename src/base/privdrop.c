/* Dropping root after setup, keeping only what a daemon needs (the SMTP
 * proxy's transparent sockets: CAP_NET_RAW; the API: nothing).  Built into
 * each daemon that uses it: the core library does not link libcap. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "base/privdrop.h"

int privdrop(const char *user, bool keep_net_raw, char *err, size_t errsz)
{
        struct passwd *pw;
        cap_t caps;
        int r = 0;

        if (geteuid() != 0)
                return 0; /* started unprivileged: nothing to drop */
        pw = getpwnam(user);
        if (pw == NULL) {
                snprintf(err, errsz, "no such user '%s' (smtpd: user)", user);
                return -ENOENT;
        }
        /* Capabilities survive setuid() only with KEEPCAPS. */
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == -1 || setgroups(0, NULL) == -1 ||
            setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
            setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1) {
                snprintf(err, errsz, "cannot become user '%s': %s", user, strerror(errno));
                return -errno;
        }
        /* IP_TRANSPARENT needs CAP_NET_RAW (or CAP_NET_ADMIN); nothing else. */
        caps = cap_from_text(keep_net_raw ? "cap_net_raw=ep" : "=");
        if (caps == NULL || cap_set_proc(caps) == -1) {
                r = -errno;
                snprintf(err, errsz, "cannot drop capabilities: %s", strerror(errno));
        }
        cap_free(caps);
        prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
        if (r == 0 && (setuid(0) != -1 || seteuid(0) != -1)) {
                snprintf(err, errsz, "root could be regained after dropping privileges");
                return -EPERM;
        }
        return r;
}
