/* SPDX-License-Identifier: Apache-2.0 */
/* The driver's side of a ucx_peer process: start it (fork + exec, pipes on
 * its stdin and stdout, optionally inside a network namespace through
 * `ip netns exec`), send it commands, stop or kill it. Every wait has a
 * deadline. Peers still alive when the driver exits, or when it is killed
 * by SIGTERM/SIGINT (meson's timeout), are killed with SIGKILL: a failed
 * test never leaves a peer behind. (A driver killed by SIGKILL leaves the
 * peer an end of input, on which it exits, and its own alarm as backstop.) */
#ifndef RT_PROC_H
#define RT_PROC_H

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "rt_util.h"

#define RT_START_MS 30000u /* peer start: UCX init and listener */
#define RT_REPLY_MS 60000u /* one command (a 64 MiB comparison included) */
#define RT_STOP_MS  10000u /* quit to exit */
#define RT_MAX_LIVE 8
#define RT_MAX_ARGS 48

typedef struct rt_peer {
    pid_t pid; /* the peer itself: `ip netns exec` execs in place */
    int to;    /* its stdin */
    rt_lines from;
    uint16_t port; /* its side-channel listener */
    uint64_t base; /* its buffer, in its address space */
    size_t size, region_size;
    unsigned regions;
} rt_peer;

static volatile pid_t rt_live[RT_MAX_LIVE];

static void rt_live_set(pid_t old, pid_t new_pid)
{
    for (int i = 0; i < RT_MAX_LIVE; i++)
        if (rt_live[i] == old) {
            rt_live[i] = new_pid;
            return;
        }
}

/* Async-signal-safe: kill(2) and waitpid(2) only. */
static void rt_kill_live(void)
{
    for (int i = 0; i < RT_MAX_LIVE; i++) {
        pid_t pid = rt_live[i];
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            rt_live[i] = 0;
        }
    }
}

static void rt_on_signal(int sig)
{
    rt_kill_live();
    signal(sig, SIG_DFL);
    raise(sig);
}

static const char *volatile rt_watch_what = "";

/* A hang is reported, not waited out: TAP bail-out, peers killed, exit. */
static void rt_on_alarm(int sig)
{
    (void)sig;
    static const char head[] = "Bail out! hung: ";
    const char *what = rt_watch_what;
    ssize_t ignored = write(STDOUT_FILENO, head, sizeof(head) - 1);
    ignored = write(STDOUT_FILENO, what, strlen(what));
    ignored = write(STDOUT_FILENO, "\n", 1);
    (void)ignored;
    rt_kill_live();
    _exit(1);
}

/* Bounds a call that must not hang (but would, through a library bug)
 * by seconds; 0 disarms. */
static void rt_watchdog(unsigned seconds, const char *what)
{
    rt_watch_what = what;
    signal(SIGALRM, rt_on_alarm);
    alarm(seconds);
}

/* Kills leftover peers at exit and on SIGTERM/SIGINT; a write to a dead
 * peer's stdin fails with EPIPE instead of killing the driver. */
static void rt_proc_init(void)
{
    atexit(rt_kill_live);
    signal(SIGTERM, rt_on_signal);
    signal(SIGINT, rt_on_signal);
    signal(SIGPIPE, SIG_IGN);
}

static void rt_child(int in[2], int out[2], char **argv)
{
    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    execvp(argv[0], argv);
    fprintf(stderr, "rt_proc: cannot run %s\n", argv[0]);
    _exit(127);
}

static bool rt_spawn(rt_peer *p, char **argv)
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) < 0)
        return false;
    if (pipe2(out, O_CLOEXEC) < 0) {
        close(in[0]), close(in[1]);
        return false;
    }
    p->pid = fork();
    if (p->pid == 0)
        rt_child(in, out, argv);
    close(in[0]);
    close(out[1]);
    if (p->pid < 0) {
        close(in[1]), close(out[0]);
        p->pid = 0;
        return false;
    }
    rt_live_set(0, p->pid);
    p->to = in[1];
    p->from = (rt_lines){.fd = out[0]};
    return true;
}

/* Sends one command line and reads the first line of the answer. */
static bool rt_cmdv(rt_peer *p, char *reply, size_t cap, const char *fmt, va_list ap)
{
    char line[1024];
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    if (n < 0 || (size_t)n >= sizeof(line) - 1)
        return false;
    line[n++] = '\n';
    if (!rt_write_all(p->to, line, (size_t)n))
        return false;
    return rt_read_line(&p->from, reply, cap, rt_now_ms() + RT_REPLY_MS) == 1;
}

static bool rt_cmd(rt_peer *p, char *reply, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool rt_cmd(rt_peer *p, char *reply, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool ok = rt_cmdv(p, reply, cap, fmt, ap);
    va_end(ap);
    return ok;
}

/* Reads "READY <port> <pid>", then asks where the buffer lies. */
static bool rt_handshake(rt_peer *p)
{
    char line[256];
    unsigned port;
    long pid;
    if (rt_read_line(&p->from, line, sizeof(line), rt_now_ms() + RT_START_MS) != 1 ||
        sscanf(line, "READY %u %ld", &port, &pid) != 2 || pid != p->pid) {
        printf("# peer did not start (pid %ld)\n", (long)p->pid);
        return false;
    }
    p->port = (uint16_t)port;
    unsigned long long base;
    if (!rt_cmd(p, line, sizeof(line), "info") ||
        sscanf(line, "INFO %llx %zu %u", &base, &p->size, &p->regions) != 3 || !p->regions)
        return false;
    p->base = base;
    p->region_size = p->size / p->regions;
    return true;
}

/* Waits (bounded) for the peer to exit; its exit status, or -1 when it
 * had to be killed, 128 + n when a signal n ended it. */
static int rt_reap(rt_peer *p, unsigned ms)
{
    int status = 0;
    pid_t got = 0;
    for (uint64_t end = rt_now_ms() + ms; (got = waitpid(p->pid, &status, WNOHANG)) == 0;) {
        if (rt_now_ms() >= end) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            got = -1;
            break;
        }
        rt_sleep_ms(5);
    }
    rt_live_set(p->pid, 0);
    close(p->to);
    close(p->from.fd);
    p->pid = 0;
    if (got < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Asks the peer to quit; its exit status (see rt_reap). */
static inline int rt_stop(rt_peer *p)
{
    if (p->pid <= 0)
        return -1;
    rt_write_all(p->to, "quit\n", 5);
    return rt_reap(p, RT_STOP_MS);
}

/* kill -9, without waiting: the caller measures what the survivor sees. */
static void rt_kill9(rt_peer *p)
{
    kill(p->pid, SIGKILL);
}

#endif
