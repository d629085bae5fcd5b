/* Unix stream sockets for local control channels. */
#include "base/unixsock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Creates the socket's folder if needed (0750). */
static int make_parent(const char *path)
{
        char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
        char *slash;

        snprintf(dir, sizeof(dir), "%s", path);
        slash = strrchr(dir, '/');
        if (slash == NULL || slash == dir)
                return 0;
        *slash = '\0';
        if (mkdir(dir, 0750) == -1 && errno != EEXIST)
                return -errno;
        return 0;
}

int pc_unix_listen(const char *path, int *ret_fd)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd, r;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        r = make_parent(path);
        if (r < 0)
                return r;
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd == -1)
                return -errno;
        /* A socket left by a killed agent would make bind() fail. */
        if (unlink(path) == -1 && errno != ENOENT) {
                r = -errno;
                close(fd);
                return r;
        }
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 || chmod(path, 0660) == -1 ||
            listen(fd, 64) == -1) {
                r = -errno;
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

bool pc_unix_peer_trusted(int fd, int *ret_uid)
{
        struct ucred cred;
        socklen_t len = sizeof(cred);

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
                return false;
        *ret_uid = (int)cred.uid;
        return cred.uid == 0 || cred.uid == geteuid();
}
