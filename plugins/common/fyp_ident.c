/* SPDX-License-Identifier: Apache-2.0 */
/* Plugin support: identities of agents of this host (see fyp_ident.h). */
#include "fyp_ident.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/le.h"

size_t fyp_ident_encode(const char magic[4], const fyp_ident *c, uint8_t *out, size_t cap)
{
    size_t sock_len = strnlen(c->sock, FYP_SOCK_MAX);
    size_t need = FYP_IDENT_FIXED + sock_len;
    if (cap < need)
        return 0;
    memcpy(out, magic, 4);
    fy_le_put(out + 4, 1, 2);
    fy_le_put(out + 6, sock_len, 2);
    fy_le_put(out + 8, c->uid, 8);
    fy_le_put(out + 16, c->pid, 4);
    fy_le_put(out + 20, 0, 4);
    fy_le_put(out + 24, c->starttime, 8);
    memcpy(out + 32, c->boot_id, 16);
    fy_le_put(out + 48, c->netns, 8);
    fy_le_put(out + 56, c->pidns, 8);
    memcpy(out + FYP_IDENT_FIXED, c->sock, sock_len);
    return need;
}

ferry_status fyp_ident_decode(const char magic[4], const void *buf, size_t len, fyp_ident *out)
{
    const uint8_t *p = buf;
    if (!p || len < FYP_IDENT_FIXED || memcmp(p, magic, 4) || fy_le_get(p + 4, 2) != 1)
        return FERRY_ERR_BAD_METADATA;
    size_t sock_len = (size_t)fy_le_get(p + 6, 2);
    if (!sock_len || sock_len > FYP_SOCK_MAX || sock_len > len - FYP_IDENT_FIXED)
        return FERRY_ERR_BAD_METADATA;
    fyp_ident c = {.uid = fy_le_get(p + 8, 8),
                   .pid = (uint32_t)fy_le_get(p + 16, 4),
                   .starttime = fy_le_get(p + 24, 8),
                   .netns = fy_le_get(p + 48, 8),
                   .pidns = fy_le_get(p + 56, 8)};
    memcpy(c.boot_id, p + 32, 16);
    memcpy(c.sock, p + FYP_IDENT_FIXED, sock_len);
    c.sock[sock_len] = '\0';
    if (memchr(c.sock, '\0', sock_len) || !c.pid)
        return FERRY_ERR_BAD_METADATA;
    *out = c;
    return FERRY_OK;
}

static void fyp_read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "re");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
}

static uint64_t fyp_ns_inode(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

void fyp_ident_self(fyp_ident *c, uint64_t uid, const char *sock)
{
    char buf[1024];
    char state;
    memset(c, 0, sizeof(*c));
    c->uid = uid;
    c->pid = (uint32_t)getpid();
    fyp_read_file("/proc/self/stat", buf, sizeof(buf));
    if (!fyp_stat_parse(buf, strlen(buf), &state, &c->starttime))
        c->starttime = 0;
    fyp_read_file("/proc/sys/kernel/random/boot_id", buf, sizeof(buf));
    if (!fyp_parse_boot_id(buf, c->boot_id))
        memset(c->boot_id, 0, sizeof(c->boot_id));
    c->netns = fyp_ns_inode("/proc/self/ns/net");
    c->pidns = fyp_ns_inode("/proc/self/ns/pid");
    snprintf(c->sock, sizeof(c->sock), "%s", sock);
}

const char *fyp_ident_unreachable(const fyp_ident *self, const fyp_ident *peer)
{
    if (memcmp(peer->boot_id, self->boot_id, 16))
        return "it is on another host";
    if (peer->netns != self->netns)
        return "it is in another network namespace (its socket is out of reach)";
    return NULL;
}

bool fyp_ident_same_process(const fyp_ident *self, const fyp_ident *peer)
{
    return peer->pid == self->pid && peer->pidns == self->pidns &&
           peer->starttime == self->starttime;
}

/* ---- /proc ---- */

bool fyp_stat_parse(const char *stat, size_t len, char *state, uint64_t *out)
{
    const char *end = stat + len, *p = NULL;
    for (const char *q = stat; q < end; q++)
        if (*q == ')')
            p = q;
    if (!p || end - p < 3 || p[1] != ' ')
        return false;
    *state = p[2];
    /* ") " ends field 2; each space starts the next field, up to 22. */
    unsigned field = 2;
    for (p++; p < end && field < 22; p++)
        if (*p == ' ')
            field++;
    if (p >= end || field != 22 || !isdigit((unsigned char)*p))
        return false;
    uint64_t v = 0;
    for (; p < end && isdigit((unsigned char)*p); p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    return true;
}

static int fyp_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

bool fyp_parse_boot_id(const char *text, uint8_t out[16])
{
    unsigned n = 0;
    for (const char *p = text; *p && *p != '\n' && n < 32; p++) {
        if (*p == '-')
            continue;
        int v = fyp_hexval(*p);
        if (v < 0)
            return false;
        if (n % 2 == 0)
            out[n / 2] = (uint8_t)(v << 4);
        else
            out[n / 2] |= (uint8_t)v;
        n++;
    }
    return n == 32;
}

bool fyp_pid_alive(uint32_t pid, uint64_t starttime)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%u/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno != ENOENT && errno != ESRCH;
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    uint64_t st;
    char state;
    if (n <= 0 || !fyp_stat_parse(buf, (size_t)n, &state, &st))
        return n != 0;
    /* A zombie ('Z') has exited, only its parent has not reaped it yet. */
    return state != 'Z' && state != 'X' && (!starttime || st == starttime);
}
