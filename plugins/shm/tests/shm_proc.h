/* SPDX-License-Identifier: Apache-2.0 */
/* The driver's side of an shm_peer process: start it (posix_spawn, pipes
 * on its stdin and stdout), send a command, read a reply line. A watchdog
 * alarm bounds every test: on expiry the peers are killed and the driver
 * bails out, so a hang is reported and never waited out. */
#ifndef SHM_PROC_H
#define SHM_PROC_H

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#include "shm_test.h"

#define SP_MAX_LIVE 8

typedef struct sp_peer {
    pid_t pid;
    FILE *to, *from;
    uint64_t base; /* its buffer, in its address space */
    char *md;      /* hex of its metadata */
} sp_peer;

static const char *sp_exe; /* the shm_peer program */
static volatile pid_t sp_live[SP_MAX_LIVE];

static inline void sp_kill_live(void)
{
    for (int i = 0; i < SP_MAX_LIVE; i++)
        if (sp_live[i] > 0) {
            kill(sp_live[i], SIGKILL);
            waitpid(sp_live[i], NULL, 0);
            sp_live[i] = 0;
        }
}

static void sp_on_alarm(int sig)
{
    static const char msg[] = "Bail out! a test hung past its watchdog\n";
    (void)sig;
    ssize_t ignored = write(STDOUT_FILENO, msg, sizeof(msg) - 1);
    (void)ignored;
    sp_kill_live();
    _exit(1);
}

static inline void sp_watchdog(unsigned seconds)
{
    signal(SIGALRM, sp_on_alarm);
    alarm(seconds);
}

static inline void sp_track(pid_t old, pid_t pid)
{
    for (int i = 0; i < SP_MAX_LIVE; i++)
        if (sp_live[i] == old) {
            sp_live[i] = pid;
            return;
        }
}

/* Reads one reply line into buf (without the newline); false at EOF. */
static inline bool sp_line(sp_peer *p, char *buf, size_t cap)
{
    if (!fgets(buf, (int)cap, p->from))
        return false;
    buf[strcspn(buf, "\n")] = '\0';
    return true;
}

static inline bool sp_cmd(sp_peer *p, char *reply, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline bool sp_cmd(sp_peer *p, char *reply, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->to, fmt, ap);
    va_end(ap);
    fputc('\n', p->to);
    fflush(p->to);
    return reply ? sp_line(p, reply, cap) : true;
}

/* posix_spawn, not fork: no atfork handler of a library in this process
 * (UCX has some) runs while its other threads hold their locks. */
static inline pid_t sp_spawn(int in, int out, char **argv)
{
    posix_spawn_file_actions_t fa;
    pid_t pid = -1;
    if (posix_spawn_file_actions_init(&fa) != 0)
        return -1;
    posix_spawn_file_actions_adddup2(&fa, in, STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, out, STDOUT_FILENO);
    if (posix_spawn(&pid, sp_exe, &fa, NULL, argv, environ) != 0)
        pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

/* Starts "shm_peer NAME KIND [extra...]" and reads its MD and BASE lines. */
static inline bool sp_start(sp_peer *p, const char *name, const char *kind, const char *extra1,
                            const char *extra2)
{
    static char line[ST_LINE_MAX + 64];
    int in[2], out[2];
    char *argv[] = {(char *)sp_exe, (char *)name,   (char *)kind,
                    (char *)extra1, (char *)extra2, NULL};
    memset(p, 0, sizeof(*p));
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
        return false;
    p->pid = sp_spawn(in[0], out[1], argv);
    close(in[0]);
    close(out[1]);
    sp_track(0, p->pid);
    p->to = fdopen(in[1], "w");
    p->from = fdopen(out[0], "r");
    if (p->pid < 0 || !p->to || !p->from || !sp_line(p, line, sizeof(line)) ||
        strncmp(line, "MD ", 3))
        return false;
    p->md = strdup(line + 3);
    return sp_line(p, line, sizeof(line)) && sscanf(line, "BASE %" SCNx64, &p->base) == 1;
}

/* SIGSTOP, returning once the peer is stopped: the signal takes effect
 * asynchronously, and a peer still running for a moment would answer what
 * the test sends to a stopped one. */
static inline void sp_stop(pid_t pid)
{
    int st;
    kill(pid, SIGSTOP);
    while (waitpid(pid, &st, WUNTRACED) < 0 && errno == EINTR)
        ;
}

/* SIGKILL and reap: the kill -9 of the tests, and the cleanup. */
static inline void sp_kill(sp_peer *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        sp_track(p->pid, 0);
    }
    if (p->to)
        fclose(p->to);
    if (p->from)
        fclose(p->from);
    free(p->md);
    memset(p, 0, sizeof(*p));
}

#endif
