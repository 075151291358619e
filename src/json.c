/* json.c - yajl tree helpers (see json.h). */
#include "json.h"

#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

yajl_val json_parse(const char *text, size_t len, char *err, size_t errlen) {
    char *copy = xstrndup(text, len);
    if (strlen(copy) != len) { /* embedded NUL: yajl_tree would silently stop there */
        free(copy);
        snprintf(err, errlen, "invalid JSON: NUL byte in body");
        return NULL;
    }
    char yerr[256] = "";
    yajl_val v = yajl_tree_parse(copy, yerr, sizeof yerr);
    free(copy);
    if (!v) {
        /* yajl's message spans lines; keep the first. */
        char *nl = strchr(yerr, '\n');
        if (nl) *nl = '\0';
        snprintf(err, errlen, "invalid JSON: %s", yerr[0] ? yerr : "parse error");
    }
    return v;
}

yajl_val json_field(yajl_val obj, const char *key) {
    if (!obj || !YAJL_IS_OBJECT(obj)) return NULL;
    for (size_t i = 0; i < obj->u.object.len; i++) {
        if (strcmp(obj->u.object.keys[i], key) == 0) {
            yajl_val v = obj->u.object.values[i];
            return (v && !YAJL_IS_NULL(v)) ? v : NULL;
        }
    }
    return NULL;
}

void json_write(sbuf *out, yajl_val v) {
    if (!v || YAJL_IS_NULL(v)) {
        sb_puts(out, "null");
    } else if (YAJL_IS_STRING(v)) {
        sb_json_str(out, v->u.string, strlen(v->u.string));
    } else if (YAJL_IS_NUMBER(v)) {
        sb_puts(out, v->u.number.r);
    } else if (YAJL_IS_TRUE(v)) {
        sb_puts(out, "true");
    } else if (YAJL_IS_FALSE(v)) {
        sb_puts(out, "false");
    } else if (YAJL_IS_ARRAY(v)) {
        sb_putc(out, '[');
        for (size_t i = 0; i < v->u.array.len; i++) {
            if (i) sb_putc(out, ',');
            json_write(out, v->u.array.values[i]);
        }
        sb_putc(out, ']');
    } else if (YAJL_IS_OBJECT(v)) {
        sb_putc(out, '{');
        for (size_t i = 0; i < v->u.object.len; i++) {
            if (i) sb_putc(out, ',');
            sb_json_str(out, v->u.object.keys[i], strlen(v->u.object.keys[i]));
            sb_putc(out, ':');
            json_write(out, v->u.object.values[i]);
        }
        sb_putc(out, '}');
    }
}
