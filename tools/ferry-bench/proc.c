/* SPDX-License-Identifier: Apache-2.0 */
/* The processes a run starts on this host (this program again, with a role
 * option), and the pipes to them. Like engines, the processes tell each
 * other where their buffers are out of band (here: these pipes); ferry's
 * side channel carries the metadata. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define FB_MAX_CHILDREN 256

static pid_t fb_children[FB_MAX_CHILDREN];
static size_t fb_num_children;

void fb_children_kill(void); /* also called by fb_exit (common.c) */

void fb_children_kill(void)
{
    for (size_t i = 0; i < fb_num_children; i++)
        if (fb_children[i] > 0)
            kill(fb_children[i], SIGTERM);
}

/* Exit code of a finished child, FB_EXIT_ERROR when it was killed. */
static int fb_child_code(int status)
{
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : FB_EXIT_ERROR;
    return code <= FB_EXIT_PLOT ? code : FB_EXIT_ERROR; /* 127: exec failed */
}

/* Errors outrank mismatches, which outrank plot and usage problems. */
int fb_exit_worse(int a, int b)
{
    static const int rank[] = {0, 4, 1, 3, 2}; /* by FB_EXIT_* */
    a = a < 0 || a > FB_EXIT_PLOT ? FB_EXIT_ERROR : a;
    b = b < 0 || b > FB_EXIT_PLOT ? FB_EXIT_ERROR : b;
    return rank[a] >= rank[b] ? a : b;
}

int fb_children_wait(void)
{
    int worst = FB_EXIT_OK;
    for (size_t i = 0; i < fb_num_children; i++) {
        int status = 0;
        while (waitpid(fb_children[i], &status, 0) < 0 && errno == EINTR)
            ;
        fb_children[i] = 0;
        worst = fb_exit_worse(worst, fb_child_code(status));
    }
    fb_num_children = 0;
    return worst;
}

/* In the child: keep only its own pipe ends across exec, die with the
 * parent, run this program again with the role appended. */
static void fb_exec_child(int argc, char **argv, const char *role, int in, int out, pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(FB_EXIT_ERROR); /* the parent is already gone */
    fcntl(in, F_SETFD, 0);
    fcntl(out, F_SETFD, 0);
    char arg[128];
    snprintf(arg, sizeof(arg), "--fb_role=%s:%d:%d", role, in, out);
    char **args = calloc((size_t)argc + 2, sizeof(*args));
    if (!args)
        _exit(FB_EXIT_ERROR);
    memcpy(args, argv, (size_t)argc * sizeof(*args));
    args[argc] = arg;
    execv("/proc/self/exe", args);
    _exit(127);
}

fb_child fb_spawn(int argc, char **argv, const char *role)
{
    int down[2], up[2];
    if (fb_num_children == FB_MAX_CHILDREN)
        fb_die("too many processes (at most %d)", FB_MAX_CHILDREN);
    if (pipe2(down, O_CLOEXEC) || pipe2(up, O_CLOEXEC))
        fb_die("pipe: %s", strerror(errno));
    fflush(NULL); /* nothing buffered may be written twice */
    pid_t parent = getpid(), pid = fork();
    if (pid < 0)
        fb_die("fork: %s", strerror(errno));
    if (pid == 0)
        fb_exec_child(argc, argv, role, down[0], up[1], parent);
    close(down[0]);
    close(up[1]);
    fb_children[fb_num_children++] = pid;
    return (fb_child){.pid = pid, .to = down[1], .from = up[0]};
}

bool fb_role_parse(const char *arg, char *kind, size_t kind_len, unsigned *id, int *in, int *out)
{
    const char *colon = strchr(arg, ':');
    if (!colon || (size_t)(colon - arg) >= kind_len)
        return false;
    snprintf(kind, kind_len, "%.*s", (int)(colon - arg), arg);
    return sscanf(colon + 1, "%u:%d:%d", id, in, out) == 3;
}

/* ---- messages ---- */

static void fb_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fb_die("the other process went away (write: %s)", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

static void fb_read_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fb_die("the other process went away");
        p += n;
        len -= (size_t)n;
    }
}

void fb_msg_send(int fd, uint32_t type, const void *buf, uint32_t len)
{
    uint32_t hdr[2] = {type, len};
    fb_write_all(fd, hdr, sizeof(hdr));
    if (len)
        fb_write_all(fd, buf, len);
}

void *fb_msg_recv(int fd, uint32_t type, uint32_t *len)
{
    uint32_t hdr[2];
    fb_read_all(fd, hdr, sizeof(hdr));
    if (hdr[0] != type)
        fb_die("unexpected message %u from the other process (expected %u)", hdr[0], type);
    void *buf = fb_alloc(hdr[1]);
    fb_read_all(fd, buf, hdr[1]);
    *len = hdr[1];
    return buf;
}
