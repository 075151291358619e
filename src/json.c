/* json.c - yajl tree helpers (see json.h). */
#include "json.h"

#include "util.h"

#include <yajl/yajl_parse.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deepest nesting of arrays/objects accepted. yajl_tree frees (and
 * json_write walks) a document recursively, so a body of a million '[' would
 * overflow the stack; no dtm request nests more than a few levels. */
#define JSON_MAX_DEPTH 256

/* Does the nesting of text exceed JSON_MAX_DEPTH? Strings are skipped. */
static int too_deep(const char *text, size_t len) {
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = 0;
        } else if (ch == '"') {
            in_str = 1;
        } else if (ch == '[' || ch == '{') {
            if (++depth > JSON_MAX_DEPTH) return 1;
        } else if (ch == ']' || ch == '}') {
            depth--;
        }
    }
    return 0;
}

yajl_val json_parse(const char *text, size_t len, char *err, size_t errlen) {
    if (too_deep(text, len)) {
        snprintf(err, errlen, "invalid JSON: nested deeper than %d levels", JSON_MAX_DEPTH);
        return NULL;
    }
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

/* ---- length-preserving string arrays ------------------------------------- */

/* yajl_tree hands out NUL-terminated strings, so a payload carrying "\u0000"
 * would be cut short. Payloads are sent to branches byte for byte, so they
 * are read with yajl's event parser, which reports every string's length. */
typedef struct strs_ctx {
    const char *field; /* NULL: the document is the array */
    int depth;         /* nesting depth of the current value */
    int in_target;     /* inside the wanted array (at depth target_depth) */
    int target_depth;
    int pending_key;   /* the last top-level key was field */
    int bad;           /* the target holds something other than strings */
    int nul_elsewhere; /* a key or string outside the target holds a NUL */
    json_strs *out;
} strs_ctx;

static int strs_scalar(strs_ctx *x) {
    if (x->depth == 0) x->bad = 1; /* a scalar document: neither array nor object */
    if (x->in_target && x->depth == x->target_depth) x->bad = 1;
    if (x->field && x->depth == 1 && x->pending_key) x->bad = 1; /* field is not an array */
    x->pending_key = 0;
    return 1;
}
static int strs_null(void *c) {
    strs_ctx *x = c;
    if (x->field && x->depth == 1 && x->pending_key) { /* "field": null = absent */
        x->pending_key = 0;
        return 1;
    }
    return strs_scalar(x);
}
static int strs_bool(void *c, int b) {
    (void)b;
    return strs_scalar(c);
}
static int strs_number(void *c, const char *s, size_t l) {
    (void)s;
    (void)l;
    return strs_scalar(c);
}
static int strs_string(void *c, const unsigned char *s, size_t l) {
    strs_ctx *x = c;
    if (!(x->in_target && x->depth == x->target_depth) && memchr(s, 0, l)) x->nul_elsewhere = 1;
    if (x->in_target && x->depth == x->target_depth) {
        json_strs *o = x->out;
        o->s = xrealloc(o->s, (o->n + 1) * sizeof(char *));
        o->len = xrealloc(o->len, (o->n + 1) * sizeof(size_t));
        o->s[o->n] = xstrndup((const char *)s, l); /* copies all l bytes */
        o->len[o->n++] = l;
        return 1;
    }
    return strs_scalar(x);
}
static int strs_start_map(void *c) {
    strs_ctx *x = c;
    if (x->in_target && x->depth == x->target_depth) x->bad = 1;
    if (x->field && x->depth == 1 && x->pending_key) x->bad = 1;
    if (!x->field && x->depth == 0) x->bad = 1;
    x->pending_key = 0;
    x->depth++;
    return 1;
}
static int strs_key(void *c, const unsigned char *k, size_t l) {
    strs_ctx *x = c;
    if (memchr(k, 0, l)) x->nul_elsewhere = 1;
    if (x->depth == 1 && x->field)
        x->pending_key = strlen(x->field) == l && memcmp(x->field, k, l) == 0;
    return 1;
}
static int strs_end(void *c) {
    strs_ctx *x = c;
    x->depth--;
    if (x->in_target && x->depth == x->target_depth - 1) x->in_target = 0;
    return 1;
}
static int strs_start_array(void *c) {
    strs_ctx *x = c;
    if (x->in_target && x->depth == x->target_depth) x->bad = 1;
    if ((x->field && x->depth == 1 && x->pending_key) || (!x->field && x->depth == 0)) {
        x->in_target = 1;
        x->target_depth = x->depth + 1;
    } else if (x->field && x->depth == 0) {
        x->bad = 1; /* document is not an object */
    }
    x->pending_key = 0;
    x->depth++;
    return 1;
}

int json_strings(const char *text, size_t len, const char *field, json_strs *out) {
    static const yajl_callbacks cbs = {
        strs_null,   strs_bool,        NULL,           NULL,
        strs_number, strs_string,      strs_start_map, strs_key,
        strs_end,    strs_start_array, strs_end,
    };
    memset(out, 0, sizeof *out);
    strs_ctx x = {.field = field, .out = out};
    yajl_handle h = yajl_alloc(&cbs, NULL, &x);
    int ok = yajl_parse(h, (const unsigned char *)text, len) == yajl_status_ok &&
             yajl_complete_parse(h) == yajl_status_ok && !x.bad;
    yajl_free(h);
    if (!ok) json_strs_free(out);
    out->nul_elsewhere = ok && x.nul_elsewhere;
    return ok ? 0 : -1;
}

void json_strs_free(json_strs *s) {
    for (size_t i = 0; i < s->n; i++) free(s->s[i]);
    free(s->s);
    free(s->len);
    memset(s, 0, sizeof *s);
}
