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

/* <path> as the address of a Unix socket: -ENAMETOOLONG if it does not fit. */
static int unix_addr(const char *path, struct sockaddr_un *sa)
{
        *sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(sa->sun_path))
                return -ENAMETOOLONG;
        snprintf(sa->sun_path, sizeof(sa->sun_path), "%s", path);
        return 0;
}

/* A socket of <type> (SOCK_STREAM, SOCK_DGRAM), non-blocking and CLOEXEC,
 * bound at <path> with mode <mode>: its folder made if missing (0750), a
 * socket a killed process left there replaced.  0 and *<ret_fd>, or
 * -errno. */
static int bind_at(const char *path, int type, mode_t mode, int *ret_fd)
{
        struct sockaddr_un sa;
        int fd, r;

        if ((r = unix_addr(path, &sa)) < 0 || (r = make_parent(path)) < 0)
                return r;
        fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd == -1)
                return -errno;
        /* A socket left by a killed process would make bind() fail.
         * bind() creates the file under the umask, never wider: chmod()
         * then sets <mode> itself, wider (0666) or narrower. */
        if ((unlink(path) == -1 && errno != ENOENT) || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
            chmod(path, mode) == -1) {
                r = -errno;
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

int pc_unix_listen(const char *path, int *ret_fd)
{
        int fd, r;

        r = bind_at(path, SOCK_STREAM, 0660, &fd);
        if (r < 0)
                return r;
        if (listen(fd, 64) == -1) {
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

/* Makes the folder of <path> traversable by all (o+x), not readable. */
static void open_folder(const char *path)
{
        char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
        struct stat st;
        char *slash;

        snprintf(dir, sizeof(dir), "%s", path);
        slash = strrchr(dir, '/');
        if (slash == NULL || slash == dir)
                return;
        *slash = '\0';
        if (stat(dir, &st) == 0 && !(st.st_mode & S_IXOTH))
                chmod(dir, (st.st_mode & 07777) | S_IXOTH);
}

int pc_unix_wake_listen(const char *path, int *ret_fd)
{
        int r;

        r = bind_at(path, SOCK_DGRAM, 0666, ret_fd);
        if (r < 0)
                return r;
        open_folder(path);
        return 0;
}

int pc_unix_wake(const char *path)
{
        struct sockaddr_un sa;
        int fd, r;

        if ((r = unix_addr(path, &sa)) < 0)
                return r;
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
        int64_t deadline = now_ms() + timeout_ms;
        size_t n = 0, cap = 4096;
        struct sockaddr_un sa;
        char *buf = NULL;
        json_t *j;
        int fd, r;

        if ((r = unix_addr(path, &sa)) < 0)
                return r;
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
