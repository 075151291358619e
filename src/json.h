/* json.h - request JSON as a tree of yajl's public node type.
 *
 * Requests are small and read once, so a tree is the right tool: parse,
 * look fields up by name, free. json_parse builds it with yajl's event
 * parser in an arena (json.c says why); the nodes are yajl_tree's, read
 * with its YAJL_* accessors, but freed with json_free, never
 * yajl_tree_free. JSON null is treated as absent everywhere (the Python
 * SDK sends nulls for unset fields). Output JSON is written with sbuf +
 * sb_json_str (util.h), which lets stored JSON text be embedded as is. */
#ifndef DTMD_JSON_H
#define DTMD_JSON_H

#include <stddef.h>
#include <yajl/yajl_tree.h>

/* Parse text (len bytes, need not be NUL-terminated). NULL on error with a
 * message in err. The caller frees the result with json_free. */
yajl_val json_parse(const char *text, size_t len, char *err, size_t errlen);

/* Free a document json_parse returned (NULL is fine); not a part of one. */
void json_free(yajl_val root);

/* Field of an object; NULL if obj is not an object, the key is absent, or the
 * value is null. */
yajl_val json_field(yajl_val obj, const char *key);

/* Serialise a parsed value back to compact JSON text (appends to out). */
struct sbuf;
void json_write(struct sbuf *out, yajl_val v);

/* An array of strings with their exact lengths (strings may hold NUL bytes). */
typedef struct json_strs {
    size_t n;
    char **s;          /* each also NUL-terminated */
    size_t *len;       /* byte length of s[i] */
    int nul_elsewhere; /* some other string or key of the document holds a NUL */
} json_strs;

/* Read the array of strings in text: the document itself (field NULL) or the
 * top-level object's member field. Unlike yajl_tree this keeps strings that
 * contain "\u0000" whole. 0 ok (an absent or null member gives n = 0; a null
 * element is an empty string); -1 if the JSON is invalid or the value is not
 * an array of strings. */
int json_strings(const char *text, size_t len, const char *field, json_strs *out);
void json_strs_free(json_strs *s);

#endif
