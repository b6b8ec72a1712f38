/* SPDX-License-Identifier: Apache-2.0 */
/* Plugin support: who an agent of this host is, for backends that reach
 * peers on the same host (CUDA, SHM). An identity names the process (pid
 * and the pid's start time, so a reused pid does not pass for the peer),
 * this boot of this host, the network and pid namespaces, and the abstract
 * socket of the backend's channel (fyp_chan.h).
 *
 * Wire form, little endian, behind the plugin's own 4-byte magic:
 * magic u16 major=1 u16 sock_len | u64 uid | u32 pid u32 0 | u64 starttime |
 * boot_id[16] | u64 netns | u64 pidns | sock bytes. A decoder refuses
 * another major version and ignores bytes a newer minor version appends;
 * it treats its input as hostile. */
#ifndef FYP_IDENT_H
#define FYP_IDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/plugin.h"

#define FYP_SOCK_MAX    100u /* abstract socket names: sun_path less the NUL */
#define FYP_IDENT_FIXED 64u

typedef struct fyp_ident {
    uint64_t uid;        /* the agent instance (host->agent_uid) */
    uint32_t pid;        /* in pidns */
    uint64_t starttime;  /* of pid, clock ticks after boot: tells a reused pid */
    uint8_t boot_id[16]; /* this boot of this host */
    uint64_t netns;      /* abstract sockets live in a network namespace */
    uint64_t pidns;      /* pids mean something only in one pid namespace */
    char sock[FYP_SOCK_MAX + 1];
} fyp_ident;

/* Bytes written (FYP_IDENT_FIXED + strlen(sock)), 0 when cap is too small. */
size_t fyp_ident_encode(const char magic[4], const fyp_ident *c, uint8_t *out, size_t cap);
/* BAD_METADATA on anything malformed. */
ferry_status fyp_ident_decode(const char magic[4], const void *buf, size_t len, fyp_ident *out);
/* This process, read from /proc (fields it cannot read stay 0: then every
 * agent counts as on this host). */
void fyp_ident_self(fyp_ident *c, uint64_t uid, const char *sock);
/* NULL when peer is on this host's boot and in our network namespace (its
 * socket is in reach), else why not, for a log line. */
const char *fyp_ident_unreachable(const fyp_ident *self, const fyp_ident *peer);
/* Whether peer is this very process (same pid, pid namespace, start time). */
bool fyp_ident_same_process(const fyp_ident *self, const fyp_ident *peer);

/* ---- /proc ---- */

/* Fields 3 (state: 'R', 'S', 'Z'...) and 22 (starttime) of a
 * /proc/<pid>/stat line; the command name (field 2) may hold spaces and
 * parentheses, so fields are counted after the last ')'. */
bool fyp_stat_parse(const char *stat, size_t len, char *state, uint64_t *starttime);
/* /proc/sys/kernel/random/boot_id ("8-4-4-4-12" hex) into 16 bytes. */
bool fyp_parse_boot_id(const char *text, uint8_t out[16]);
/* false when pid is gone, a zombie, or now runs another program (its start
 * time differs; 0: not checked). */
bool fyp_pid_alive(uint32_t pid, uint64_t starttime);

#endif
