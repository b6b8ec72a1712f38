/* SPDX-License-Identifier: Apache-2.0 */
/* The few things OBJ reads from S3's XML answers (an upload id, an error's
 * code and message), through libxml2. The input is what a server sent, so
 * it is treated as hostile: the caller bounds its size, the parser runs
 * without network access, DTD loading or entity substitution, and its
 * own limits (depth, entity amplification) stay on (no XML_PARSE_HUGE). */
#include <limits.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "obj_internal.h"

#define FY_OBJ_XML_OPTS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

static xmlDocPtr fy_obj_xml_read(const char *xml, size_t len)
{
    if (!xml || len == 0 || len > FY_OBJ_BODY_MAX || len > INT_MAX)
        return NULL;
    return xmlReadMemory(xml, (int)len, "s3.xml", NULL, FY_OBJ_XML_OPTS);
}

/* Depth-first, without recursion: a deep document costs no stack. */
static xmlNodePtr fy_obj_xml_next(xmlNodePtr n, xmlNodePtr root)
{
    if (n->children)
        return n->children;
    while (n && n != root && !n->next)
        n = n->parent;
    return n && n != root ? n->next : NULL;
}

static xmlNodePtr fy_obj_xml_find(xmlNodePtr root, const char *name)
{
    for (xmlNodePtr n = root; n; n = fy_obj_xml_next(n, root))
        if (n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name))
            return n;
    return NULL;
}

/* The element's text into out; false when it does not fit. */
static bool fy_obj_xml_copy(xmlNodePtr n, char *out, size_t out_len)
{
    xmlChar *s = xmlNodeGetContent(n);
    size_t len = s ? strlen((const char *)s) : 0;
    bool ok = s && len < out_len;

    if (ok)
        memcpy(out, s, len + 1);
    xmlFree(s);
    return ok;
}

bool fy_obj_xml_text(const char *xml, size_t len, const char *name, char *out, size_t out_len)
{
    xmlDocPtr doc = fy_obj_xml_read(xml, len);
    xmlNodePtr n;
    bool ok = false;

    if (!doc)
        return false;
    n = fy_obj_xml_find(xmlDocGetRootElement(doc), name);
    if (n && out_len)
        ok = fy_obj_xml_copy(n, out, out_len);
    xmlFreeDoc(doc);
    return ok;
}

/* A text that does not fit is cut (it is only a message for a human). */
static void fy_obj_xml_cut(xmlNodePtr root, const char *name, char *out, size_t out_len)
{
    xmlNodePtr n = fy_obj_xml_find(root, name);
    xmlChar *s = n ? xmlNodeGetContent(n) : NULL;

    if (!out_len)
        goto free_s;
    out[0] = '\0';
    if (s) {
        strncat(out, (const char *)s, out_len - 1);
    }
free_s:
    xmlFree(s);
}

bool fy_obj_xml_error(const char *xml, size_t len, char *code, size_t code_len, char *msg,
                      size_t msg_len)
{
    xmlDocPtr doc = fy_obj_xml_read(xml, len);
    xmlNodePtr root;
    bool is_error;

    if (code_len)
        code[0] = '\0';
    if (msg_len)
        msg[0] = '\0';
    if (!doc)
        return false;
    root = xmlDocGetRootElement(doc);
    is_error = root && !strcmp((const char *)root->name, "Error");
    if (is_error) {
        fy_obj_xml_cut(root, "Code", code, code_len);
        fy_obj_xml_cut(root, "Message", msg, msg_len);
    }
    xmlFreeDoc(doc);
    return is_error;
}
