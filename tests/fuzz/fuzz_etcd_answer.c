/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target of what etcd mode reads from etcd's JSON gateway
 * (src/metadata/etcd.c over jansson): a range answer's value (base64) and
 * revisions, and a watch stream message's events. Any bytes are refused
 * cleanly or give a value no longer than the base64 text could hold. */
#include <stdint.h>
#include <stdlib.h>

#include "metadata/etcd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    fy_etcd_kv kv;
    if (fy_etcd_range_answer(text, size, &kv) == FERRY_OK && kv.len > size)
        abort();
    free(kv.val);
    int ev = fy_etcd_watch_event(text, size);
    if (ev < -1 || ev > 1)
        abort();
    return 0;
}
