/* Unix stream sockets for local control channels. */
#include "base/unixsock.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>
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

int pc_unix_sibling_path(const char *control, const char *name, char *buf, size_t size)
{
        const char *slash = strrchr(control, '/');
        int dir = slash != NULL ? (int)(slash - control) : 0;
        int n;

        n = slash != NULL ? snprintf(buf, size, "%.*s/%s", dir, control, name) : snprintf(buf, size, "%s", name);
        if (n < 0 || (size_t)n >= size || (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path))
                return -ENAMETOOLONG;
        return 0;
}

int pc_unix_wake_path(const char *control, char *buf, size_t size)
{
        return pc_unix_sibling_path(control, "changes.sock", buf, size);
}

int pc_unix_wake_listen(const char *path, int *ret_fd)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char dir[sizeof(sa.sun_path)];
        struct stat st;
        char *slash;
        int fd, r;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        r = make_parent(path);
        if (r < 0)
                return r;
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        snprintf(dir, sizeof(dir), "%s", path);
        slash = strrchr(dir, '/');
        if (slash != NULL && slash != dir) {
                *slash = '\0';
                if (stat(dir, &st) == 0 && !(st.st_mode & S_IXOTH))
                        chmod(dir, (st.st_mode & 07777) | S_IXOTH);
        }
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd == -1)
                return -errno;
        if ((unlink(path) == -1 && errno != ENOENT) || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
            chmod(path, 0666) == -1) {
                r = -errno;
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

int pc_unix_wake(const char *path)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd, r = 0;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd == -1)
                return -errno;
        /* A full queue (EAGAIN) means a wake is pending already. */
        if (sendto(fd, "w", 1, MSG_NOSIGNAL, (struct sockaddr *)&sa, sizeof(sa)) == -1 && errno != EAGAIN)
                r = -errno;
        close(fd);
        return r;
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

#define REPLY_MAX (16u << 20) /* a stats reply of a large fleet */

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int pc_unix_request(const char *path, const char *request, int timeout_ms, json_t **ret)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int64_t deadline = now_ms() + timeout_ms;
        size_t n = 0, cap = 4096;
        char *buf = NULL;
        json_t *j;
        int fd, r = 0;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd == -1)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
            dprintf(fd, "%s\n", request) < 0) {
                r = -errno;
                goto out;
        }
        buf = malloc(cap);
        if (buf == NULL) {
                r = -ENOMEM;
                goto out;
        }
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int64_t left = deadline - now_ms();
                ssize_t got;

                if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
                        r = -ETIMEDOUT;
                        goto out;
                }
                if (n + 1 == cap) {
                        char *bigger = cap >= REPLY_MAX ? NULL : realloc(buf, cap * 2);

                        if (bigger == NULL) {
                                r = -EMSGSIZE;
                                goto out;
                        }
                        buf = bigger;
                        cap *= 2;
                }
                got = read(fd, buf + n, cap - 1 - n);
                if (got <= 0)
                        break;
                n += (size_t)got;
                if (memchr(buf + n - (size_t)got, '\n', (size_t)got) != NULL)
                        break;
        }
        buf[n] = '\0';
        j = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
        if (!json_is_object(j)) {
                json_decref(j);
                r = -EPROTO;
                goto out;
        }
        *ret = j;
out:
        free(buf);
        close(fd);
        return r;
}
