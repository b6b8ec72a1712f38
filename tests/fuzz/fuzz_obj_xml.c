/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target of what the OBJ backend reads from an S3 server's answers
 * (plugins/obj/obj_xml.c over libxml2): an error document's code and
 * message, an upload id. Any bytes are refused cleanly or give strings that
 * fit the caller's buffers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "obj/obj_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char code[64], msg[128], id[256];
    const char *xml = (const char *)data;

    if (fy_obj_xml_error(xml, size, code, sizeof(code), msg, sizeof(msg)) &&
        (strlen(code) >= sizeof(code) || strlen(msg) >= sizeof(msg)))
        abort();
    if (fy_obj_xml_text(xml, size, "UploadId", id, sizeof(id)) && strlen(id) >= sizeof(id))
        abort();
    return 0;
}
