/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target of TCPStore mode's reading of a store's replies
 * (src/metadata/tcpstore.c). The first byte picks the kind of reply, the
 * rest is read as a stream of such replies, fed as a socket would: the
 * bytes so far, growing. A whole reply never claims more bytes than it
 * was given nor a value over the cap; a refused one stops the stream.
 * The same bytes also go out as a request's key and value, whose
 * encoding must have exactly its documented size. */
#include <stdlib.h>
#include <string.h>

#include "metadata/tcpstore.h"

#define CAP 4096u /* max_value, small so that the cap is reached */

/* Feeds buf[0..n) a byte at a time, then whole: the two must agree. */
static size_t one_reply(fy_ts_reply_kind kind, const uint8_t *buf, size_t n)
{
    fy_ts_reply rep;
    size_t used = 0;
    int r = fy_ts_decode(kind, buf, n, CAP, &rep, &used);
    for (size_t k = 0; k < n && r == 0; k++) {
        fy_ts_reply part;
        size_t u;
        if (fy_ts_decode(kind, buf, k, CAP, &part, &u) == 1)
            abort(); /* complete on fewer bytes than the whole call found missing */
    }
    if (r == 1 && (used > n || rep.len > CAP ||
                   (rep.value && (rep.value < buf || rep.value + rep.len > buf + n))))
        abort();
    return r == 1 ? used : 0;
}

static void encode(const uint8_t *data, size_t size)
{
    char key[64];
    size_t klen = size < sizeof(key) - 1 ? size : sizeof(key) - 1;
    memcpy(key, data, klen);
    key[klen] = '\0';
    fy_ts_req req = {0};
    fy_ts_req_add(&req, FY_TS_V2, FY_TS_SET, key, data, size, 0);
    size_t want = 1 + 8 + strlen(key) + 8 + size;
    if (!req.failed && req.len != want)
        abort();
    fy_ts_req_free(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    fy_ts_reply_kind kind = (fy_ts_reply_kind)(data[0] % 4);
    const uint8_t *p = data + 1;
    size_t left = size - 1, used;
    while (left && (used = one_reply(kind, p, left)) > 0) {
        p += used;
        left -= used;
    }
    encode(data, size);
    return 0;
}
