/* json.c - the request JSON tree: parse (into an arena), look up, write
 * back; and length-preserving string arrays (see json.h). */
#include "json.h"

#include "arena.h"
#include "util.h"

#include <yajl/yajl_parse.h>

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deepest nesting of arrays/objects accepted (json_parse stops at it).
 * json_write walks a document recursively, so a body of a million '[' would
 * overflow the stack; no dtm request nests more than a few levels. */
#define JSON_MAX_DEPTH 256

/* ---- the tree, built in an arena -------------------------------------
 *
 * yajl_tree_parse makes an allocation for every value, key and string and
 * reallocs an object's key and value arrays at every member: dozens of
 * allocations per submit. Here yajl's event parser fills nodes of the same public
 * layout (struct yajl_val_s: callers keep the YAJL_* accessors) in an
 * arena (arena.h), each container's members gathered on a stack and copied
 * out at its end, and json_free frees the arena at once. What
 * yajl_tree_parse would give is kept: comments allowed, number flags set
 * the same way, duplicate keys kept in order. */

/* The document header comes first in its own arena and holds it, with the
 * root node, so json_free finds the arena from the pointer json_parse
 * returned. */
typedef struct json_doc {
    arena mem;
    struct yajl_val_s root;
} json_doc;

typedef struct json_item {
    const char *key; /* NULL in an array */
    yajl_val val;
} json_item;

typedef struct build_ctx {
    json_doc *doc;
    int root_taken;
    json_item *items; /* members of the open containers, innermost last */
    size_t nitems, items_cap;
    json_item *items_local; /* items starts as this array on json_parse's stack */
    struct {
        yajl_val node;
        size_t first; /* its members start at items[first] */
        const char *key;
    } open[JSON_MAX_DEPTH];
    int depth;
    int too_deep; /* parsing stopped at JSON_MAX_DEPTH */
} build_ctx;

#define NODE_ALIGN _Alignof(struct yajl_val_s)

static void *arena_node(build_ctx *x, size_t n) {
    return arena_alloc(&x->doc->mem, n, NODE_ALIGN);
}

static char *arena_str(build_ctx *x, const unsigned char *s, size_t n) {
    return arena_strndup(&x->doc->mem, (const char *)s, n);
}

/* A new node; the document's first is the root in the header. */
static yajl_val node_new(build_ctx *x, yajl_type type) {
    yajl_val v;
    if (!x->root_taken) {
        v = &x->doc->root;
        x->root_taken = 1;
    } else {
        v = arena_node(x, sizeof *v);
    }
    memset(v, 0, sizeof *v);
    v->type = type;
    return v;
}

/* Hand v to the open container (as a member), if any. */
static int node_place(build_ctx *x, yajl_val v) {
    if (x->depth == 0) return 1;
    if (x->nitems == x->items_cap) {
        x->items_cap *= 2;
        if (x->items == x->items_local) {
            x->items = xmalloc(x->items_cap * sizeof *x->items);
            memcpy(x->items, x->items_local, x->nitems * sizeof *x->items);
        } else {
            x->items = xrealloc(x->items, x->items_cap * sizeof *x->items);
        }
    }
    x->items[x->nitems].key = x->open[x->depth - 1].key;
    x->items[x->nitems].val = v;
    x->nitems++;
    x->open[x->depth - 1].key = NULL;
    return 1;
}

static int on_null(void *ctx) {
    build_ctx *x = ctx;
    return node_place(x, node_new(x, yajl_t_null));
}

static int on_boolean(void *ctx, int b) {
    build_ctx *x = ctx;
    return node_place(x, node_new(x, b ? yajl_t_true : yajl_t_false));
}

/* yajl_tree's number: the raw text, an integer if the text is one that
 * fits (digits only, optional sign), a double if strtod takes all of it. */
static int on_number(void *ctx, const char *s, size_t n) {
    build_ctx *x = ctx;
    yajl_val v = node_new(x, yajl_t_number);
    char *r = arena_str(x, (const unsigned char *)s, n);
    v->u.number.r = r;
    const char *p = r;
    int neg = 0, int_ok = 1;
    if (*p == '-' || *p == '+') neg = *p++ == '-';
    long long i = 0;
    for (; *p; p++) {
        int digit = *p - '0';
        if (digit < 0 || digit > 9 || i > (LLONG_MAX - digit) / 10) {
            int_ok = 0;
            break;
        }
        i = i * 10 + digit;
    }
    if (int_ok) {
        v->u.number.i = neg ? -i : i;
        v->u.number.flags |= YAJL_NUMBER_INT_VALID;
    } else {
        v->u.number.i = neg ? LLONG_MIN : LLONG_MAX;
    }
    char *end = NULL;
    errno = 0;
    v->u.number.d = strtod(r, &end);
    if (errno == 0 && end && *end == '\0') v->u.number.flags |= YAJL_NUMBER_DOUBLE_VALID;
    return node_place(x, v);
}

static int on_string(void *ctx, const unsigned char *s, size_t n) {
    build_ctx *x = ctx;
    yajl_val v = node_new(x, yajl_t_string);
    v->u.string = arena_str(x, s, n);
    return node_place(x, v);
}

static int on_open(build_ctx *x, yajl_type type) {
    if (x->depth == JSON_MAX_DEPTH) {
        x->too_deep = 1;
        return 0; /* yajl stops parsing */
    }
    yajl_val v = node_new(x, type);
    node_place(x, v);
    x->open[x->depth].node = v;
    x->open[x->depth].first = x->nitems;
    x->open[x->depth].key = NULL;
    x->depth++;
    return 1;
}

static int on_start_map(void *ctx) {
    return on_open(ctx, yajl_t_object);
}

static int on_start_array(void *ctx) {
    return on_open(ctx, yajl_t_array);
}

static int on_map_key(void *ctx, const unsigned char *s, size_t n) {
    build_ctx *x = ctx;
    x->open[x->depth - 1].key = arena_str(x, s, n);
    return 1;
}

/* The container's members move from the stack into arrays of their own. */
static int on_close(void *ctx) {
    build_ctx *x = ctx;
    x->depth--;
    yajl_val v = x->open[x->depth].node;
    size_t first = x->open[x->depth].first, n = x->nitems - first;
    yajl_val *vals = n ? arena_node(x, n * sizeof *vals) : NULL;
    for (size_t i = 0; i < n; i++) vals[i] = x->items[first + i].val;
    if (v->type == yajl_t_object) {
        const char **keys = n ? arena_node(x, n * sizeof *keys) : NULL;
        for (size_t i = 0; i < n; i++) keys[i] = x->items[first + i].key;
        v->u.object.keys = keys;
        v->u.object.values = vals;
        v->u.object.len = n;
    } else {
        v->u.array.values = vals;
        v->u.array.len = n;
    }
    x->nitems = first;
    return 1;
}

static const yajl_callbacks build_callbacks = {
    on_null,      on_boolean, NULL,     NULL,           on_number, on_string,
    on_start_map, on_map_key, on_close, on_start_array, on_close,
};

yajl_val json_parse(const char *text, size_t len, char *err, size_t errlen) {
    if (memchr(text, '\0', len)) {
        snprintf(err, errlen, "invalid JSON: NUL byte in body");
        return NULL;
    }
    /* Nodes, strings and arrays of a typical request fit the first chunk.
     * x is not zeroed as a whole: its open[] is 6 kB. */
    build_ctx x;
    arena mem;
    arena_init(&mem, sizeof(json_doc) + 2 * len + 1024);
    x.doc = arena_alloc(&mem, sizeof *x.doc, _Alignof(json_doc));
    x.doc->mem = mem; /* from here on the arena is the document's */
    json_item items[32];
    x.root_taken = 0;
    x.items = x.items_local = items;
    x.nitems = 0;
    x.items_cap = sizeof items / sizeof items[0];
    x.depth = 0;
    x.too_deep = 0;
    yajl_handle h = yajl_alloc(&build_callbacks, NULL, &x);
    yajl_config(h, yajl_allow_comments, 1);
    yajl_status st = yajl_parse(h, (const unsigned char *)text, len);
    if (st == yajl_status_ok) st = yajl_complete_parse(h);
    if (x.items != items) free(x.items);
    if (st != yajl_status_ok || !x.root_taken) {
        if (x.too_deep) {
            snprintf(err, errlen, "invalid JSON: nested deeper than %d levels", JSON_MAX_DEPTH);
        } else {
            unsigned char *msg = st != yajl_status_ok
                                     ? yajl_get_error(h, 1, (const unsigned char *)text, len)
                                     : NULL;
            /* yajl's message spans lines; keep the first. */
            const char *m = msg ? (const char *)msg : "parse error";
            snprintf(err, errlen, "invalid JSON: %.*s", (int)strcspn(m, "\n"), m);
            if (msg) yajl_free_error(h, msg);
        }
        yajl_free(h);
        json_free(&x.doc->root);
        return NULL;
    }
    yajl_free(h);
    return &x.doc->root;
}

void json_free(yajl_val root) {
    if (!root) return;
    json_doc *d = (json_doc *)((char *)root - offsetof(json_doc, root));
    arena mem = d->mem; /* d itself lives in it */
    arena_free(&mem);
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
static int strs_string(void *c, const unsigned char *s, size_t l);
static int strs_null(void *c) {
    strs_ctx *x = c;
    if (x->field && x->depth == 1 && x->pending_key) { /* "field": null = absent */
        x->pending_key = 0;
        return 1;
    }
    /* an element null is an empty string, as Go's decoding of []string has it */
    if (x->in_target && x->depth == x->target_depth)
        return strs_string(c, (const unsigned char *)"", 0);
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
    if (!(x->in_target && x->depth == x->target_depth) && l && memchr(s, 0, l))
        x->nul_elsewhere = 1;
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
