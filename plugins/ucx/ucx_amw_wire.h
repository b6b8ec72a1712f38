/* SPDX-License-Identifier: Apache-2.0 */
/* UCX backend: the bytes of transfers sent as active messages (WRITEs with
 * their data, READ requests), of the acknowledgements of WRITEs and of the
 * answers to READs. No UCX in here, so the fuzzer takes it alone.
 *
 * A write message, little-endian, nothing padded:
 *   u32 magic "FYW1" | u64 id | u32 count | u32 notif_len | u16 from_len
 *   count x { u64 addr, u32 len }        where to copy, in the target
 *   from_len bytes: the sender's agent name (no NUL)
 *   notif_len bytes: the notification (none when 0)
 *   the data of every segment, back to back, in order
 * A read request: the same with magic "FYR1", notif_len 0 and no data; the
 * segments say what to read, at most FY_AMW_MAX_READ bytes in all.
 * An acknowledgement: u32 magic "FYA1" | u64 id | i32 ferry_status.
 * The answer to a read: the same 16 bytes with magic "FYD1" as the active
 * message's header, and (status OK) the requested bytes, in order, as its
 * data.
 *
 * They come from peers, so parsing checks every length and count against
 * the bytes that arrived before anything is used. */
#ifndef FY_UCX_AMW_WIRE_H
#define FY_UCX_AMW_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FY_AMW_MAGIC       0x31575946u /* "FYW1" */
#define FY_AMW_READ_MAGIC  0x31525946u /* "FYR1" */
#define FY_AMW_ACK_MAGIC   0x31415946u /* "FYA1" */
#define FY_AMW_RDATA_MAGIC 0x31445946u /* "FYD1" */
#define FY_AMW_FIXED       22u         /* magic, id, count, notif_len, from_len */
#define FY_AMW_SEG         12u         /* addr, len */
#define FY_AMW_ACK_LEN     16u
#define FY_AMW_MAX_SEGS    4096u /* more is not a small write */
#define FY_AMW_MAX_FROM    255u
#define FY_AMW_MAX_NOTIF   (64u * 1024u)
#define FY_AMW_MAX_READ    (64ull << 20) /* bytes one read request may ask for */

/* A parsed write message: pointers into the received bytes. */
typedef struct fy_amw_msg {
    bool read; /* a read request: data_len is 0, read_len what it asks for */
    uint64_t id;
    uint32_t count;
    const uint8_t *segs; /* count x FY_AMW_SEG bytes: fy_amw_seg reads one */
    const char *from;
    size_t from_len;
    const uint8_t *notif;
    size_t notif_len;
    const uint8_t *data;
    uint64_t data_len;
    uint64_t read_len;
} fy_amw_msg;

/* Bytes before the data: fixed part, segment table, name, notification. */
size_t fy_amw_prefix_len(uint32_t count, size_t from_len, size_t notif_len);

/* Writes the prefix into buf (fy_amw_prefix_len bytes); the caller sends
 * the segments' data after it (a write), or nothing (a read request: no
 * notification either). */
void fy_amw_prefix_begin(uint8_t *buf, bool read, uint64_t id, uint32_t count, const char *from,
                         size_t from_len, const void *notif, size_t notif_len);
void fy_amw_prefix_seg(uint8_t *buf, uint32_t i, uint64_t addr, uint32_t len);

/* false when b is not one whole, well-formed write message or read request. */
bool fy_amw_parse(const uint8_t *b, size_t n, fy_amw_msg *m);
void fy_amw_seg(const fy_amw_msg *m, uint32_t i, uint64_t *addr, uint32_t *len);
/* The id and kind of a message too broken to parse, when its first 12
 * bytes are whole (so the sender can still be told); false otherwise. */
bool fy_amw_peek_id(const uint8_t *b, size_t n, uint64_t *id, bool *read);

void fy_amw_ack_encode(uint8_t out[FY_AMW_ACK_LEN], uint64_t id, int32_t status);
bool fy_amw_ack_parse(const uint8_t *b, size_t n, uint64_t *id, int32_t *status);
/* The header of a read's answer: the layout of an acknowledgement. */
void fy_amw_rdata_encode(uint8_t out[FY_AMW_ACK_LEN], uint64_t id, int32_t status);
bool fy_amw_rdata_parse(const uint8_t *b, size_t n, uint64_t *id, int32_t *status);

/* Whether b is shaped as a UCX packed remote key (UCX 1.13 and later:
 * u64 map of memory domains, u8 memory type, then per domain in the map a
 * u8 size and that many bytes; later versions may append more). UCX
 * unpacks a key without knowing its length, so a peer's key is checked
 * here before UCX ever sees it: a short or inconsistent one would make it
 * read past the bytes (seen: a 1-byte key crashed uct_rkey_release). */
bool fy_ucx_rkey_well_formed(const uint8_t *b, size_t n);

#endif
