/* SPDX-License-Identifier: Apache-2.0 */
/* Two-process plumbing of the GPU tests and the benchmark: a peer is a copy
 * of the same program started with "--peer RFD WFD ARGS...", reached over two
 * pipes (messages: u32 length + bytes, every wait bounded). With two GPUs
 * the peer sees them in the opposite order (CUDA_VISIBLE_DEVICES, or
 * FY_MOCK_VISIBLE for the mock driver), so it runs on our GPU 1 under its
 * own index 0. Include after gpu_test.h. */
#ifndef FY_GPU_PROC_H
#define FY_GPU_PROC_H

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gpu_test.h"

#define GP_PIPE_MS 120000

static bool gp_io(int fd, void *buf, size_t len, bool wr)
{
    uint8_t *p = buf;
    uint64_t deadline = tu_now_ms() + GP_PIPE_MS;
    while (len) {
        struct pollfd pfd = {fd, wr ? POLLOUT : POLLIN, 0};
        if (tu_now_ms() > deadline || poll(&pfd, 1, 100) < 0)
            return false;
        if (!pfd.revents)
            continue;
        ssize_t n = wr ? write(fd, p, len) : read(fd, p, len);
        if (n <= 0 && !(n < 0 && errno == EINTR))
            return false;
        if (n > 0)
            p += n, len -= (size_t)n;
    }
    return true;
}

static bool gp_send(int fd, const void *buf, uint32_t len)
{
    return gp_io(fd, &len, 4, true) && gp_io(fd, (void *)buf, len, true);
}

/* The next message (malloc'd), NULL on EOF, timeout or nonsense. */
static void *gp_recv(int fd, uint32_t *len)
{
    if (!gp_io(fd, len, 4, false) || *len > (256u << 20))
        return NULL;
    void *b = malloc(*len ? *len : 1);
    if (b && !gp_io(fd, b, *len, false)) {
        free(b);
        return NULL;
    }
    return b;
}

/* The peer's visible GPUs: `forced` (e.g. "1"), else the first two of ours,
 * swapped; nothing with one GPU. */
static void gp_visibility(const char *forced, char *env, size_t cap)
{
    const char *var = GT.mock ? "FY_MOCK_VISIBLE" : "CUDA_VISIBLE_DEVICES";
    const char *ours = getenv(var);
    if (forced) {
        snprintf(env, cap, "%s=%s", var, forced);
        return;
    }
    if (GT.ndev < 2) {
        env[0] = '\0';
        return;
    }
    char a[64] = "0", b[64] = "1";
    if (ours && *ours) {
        const char *comma = strchr(ours, ',');
        snprintf(a, sizeof(a), "%.*s", comma ? (int)(comma - ours) : (int)strlen(ours), ours);
        if (comma)
            snprintf(b, sizeof(b), "%.*s", (int)strcspn(comma + 1, ","), comma + 1);
    }
    snprintf(env, cap, "%s=%s,%s", var, b, a);
}

typedef struct gp_child {
    pid_t pid;
    int rfd, wfd;
} gp_child;

/* This program's path, for re-running it as the peer. /proc/self/exe would
 * name valgrind's tool under valgrind; argv[0] names the program. */
static const char *gp_self = "/proc/self/exe";
static inline void gp_set_self(const char *argv0)
{
    if (argv0 && strchr(argv0, '/'))
        gp_self = argv0;
}

/* Starts this program as "--peer RFD WFD a1 a2" (a2 may be NULL). */
static bool gp_start(gp_child *c, const char *visible, const char *a1, const char *a2)
{
    int to[2], from[2];
    char env[160], rs[16], ws[16];
    if (pipe(to) || pipe(from))
        return false;
    gp_visibility(visible, env, sizeof(env));
    c->pid = fork();
    if (c->pid == 0) {
        close(to[1]);
        close(from[0]);
        dup2(2, 1); /* the peer's output must not mix into our TAP stream */
        if (env[0])
            putenv(env);
        snprintf(rs, sizeof(rs), "%d", to[0]);
        snprintf(ws, sizeof(ws), "%d", from[1]);
        execl(gp_self, "peer", "--peer", rs, ws, a1, a2, (char *)NULL);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    c->wfd = to[1];
    c->rfd = from[0];
    return c->pid > 0;
}

/* Waits for the peer's exit (SIGKILL first when kill_it, or after 30 s);
 * its exit status, or 128 + signal. */
static int gp_reap(gp_child *c, bool kill_it)
{
    int st = 0;
    if (kill_it)
        kill(c->pid, SIGKILL);
    uint64_t deadline = tu_now_ms() + 30000;
    while (waitpid(c->pid, &st, WNOHANG) == 0) {
        if (tu_now_ms() > deadline) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &st, 0);
            break;
        }
        tu_sleep_us(1000);
    }
    close(c->rfd);
    close(c->wfd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

#endif
