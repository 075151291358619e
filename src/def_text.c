/* def_text.c - steps and payloads as compact stored text (see def_text.h). */
#include "def_text.h"

#include "json.h"

#include <stdlib.h>
#include <string.h>

#define ACTION "{\"action\":\""
#define COMPENSATE ",\"compensate\":\"" /* after the action's closing quote */

typedef struct span {
    const char *p;
    size_t n;
} span;

/* Does the text at *p start with lit? Then step over it. */
static int eat(const char **p, const char *end, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(end - *p) < n || memcmp(*p, lit, n)) return 0;
    *p += n;
    return 1;
}

/* A URL up to its closing quote: no escape, no space or control byte. */
static int url_at(const char **p, const char *end, span *u) {
    const char *q = *p;
    while (q < end && *q != '"') {
        if ((unsigned char)*q <= ' ' || *q == '\\') return -1;
        q++;
    }
    if (q == end) return -1;
    u->p = *p;
    u->n = (size_t)(q - *p);
    *p = q + 1;
    return 0;
}

/* The URLs of the steps in *urls (the caller frees), their count in *n and
 * the shape 'a' or 'c'; -1 if the steps have another shape. */
static int steps_scan(const char *json, size_t len, span **urls, size_t *n, char *shape) {
    const char *p = json, *end = json + len;
    size_t cap = len / 8 + 2, k = 0;
    span *u = xmalloc(cap * sizeof *u);
    *shape = 0;
    if (!eat(&p, end, "[")) goto bad;
    for (;;) {
        if (!eat(&p, end, ACTION) || url_at(&p, end, &u[k++])) goto bad;
        char s = 'a';
        if (eat(&p, end, COMPENSATE)) {
            if (url_at(&p, end, &u[k++])) goto bad;
            s = 'c';
        }
        if (!eat(&p, end, "}") || (*shape && *shape != s)) goto bad;
        *shape = s;
        if (eat(&p, end, "]")) break;
        if (!eat(&p, end, ",") || k + 2 > cap) goto bad;
    }
    if (p != end) goto bad;
    *urls = u;
    *n = k;
    return 0;
bad:
    free(u);
    return -1;
}

/* The text packed into out from start unpacks to json (len bytes) exactly:
 * keep it (0); else take it back out (-1: the caller stores the JSON). */
static int keep_if_exact(sbuf *out, size_t start, const char *json, size_t len,
                         int (*unpack)(const char *, size_t, sbuf *)) {
    sbuf check;
    sb_init(&check);
    int same = !unpack(out->ptr + start, out->len - start, &check) && check.len == len &&
               !memcmp(check.ptr, json, len);
    sb_free(&check);
    if (same) return 0;
    out->len = start;
    out->ptr[start] = 0;
    return -1;
}

int steps_pack(const char *json, size_t len, sbuf *out) {
    span *u;
    size_t n;
    char shape;
    if (steps_scan(json, len, &u, &n, &shape)) return -1;
    /* the common prefix of the non-empty URLs, leaving each a non-empty rest */
    const span *first = NULL;
    size_t plen = 0;
    for (size_t i = 0; i < n; i++) {
        if (!u[i].n) continue;
        if (!first) {
            first = &u[i];
            plen = u[i].n;
        }
        size_t m = 0;
        while (m < plen && m < u[i].n && u[i].p[m] == first->p[m]) m++;
        plen = m;
        if (plen >= u[i].n) plen = u[i].n - 1;
    }
    size_t start = out->len;
    sb_putc(out, '~');
    sb_putc(out, shape);
    if (first) sb_append(out, first->p, plen);
    for (size_t i = 0; i < n; i++) {
        sb_putc(out, ' ');
        const span *a = i % 2 ? &u[i - 1] : NULL; /* a compensate's action */
        if (shape == 'c' && a && a->n && u[i].n > a->n && !memcmp(u[i].p, a->p, a->n)) {
            sb_putc(out, '+'); /* e.g. .../TransOut and .../TransOutRevert */
            sb_append(out, u[i].p + a->n, u[i].n - a->n);
        } else if (u[i].n) {
            sb_append(out, u[i].p + plen, u[i].n - plen);
        }
    }
    free(u);
    return keep_if_exact(out, start, json, len, steps_unpack);
}

int steps_unpack(const char *v, size_t len, sbuf *json) {
    if (!len || v[0] != '~') {
        sb_append(json, v, len);
        return 0;
    }
    if (len < 2 || (v[1] != 'a' && v[1] != 'c')) return -1;
    int per_step = v[1] == 'c' ? 2 : 1;
    const char *end = v + len, *prefix = v + 2;
    const char *p = memchr(prefix, ' ', (size_t)(end - prefix));
    if (!p) return -1;
    size_t plen = (size_t)(p - prefix);
    const char *action = NULL; /* the step's action, after the prefix */
    size_t action_n = 0;
    sb_putc(json, '[');
    for (int k = 0; p < end; k++) {
        const char *rest = p + 1, *next = memchr(rest, ' ', (size_t)(end - rest));
        if (!next) next = end;
        if (k % per_step == 0)
            sb_puts(json, k ? "}," ACTION : ACTION);
        else
            sb_puts(json, COMPENSATE);
        if (k % per_step && next > rest && *rest == '+') { /* the action's URL and more */
            if (!action_n) return -1;
            sb_append(json, prefix, plen);
            sb_append(json, action, action_n);
            sb_append(json, rest + 1, (size_t)(next - rest - 1));
        } else if (next > rest) {
            sb_append(json, prefix, plen);
            sb_append(json, rest, (size_t)(next - rest));
        }
        if (k % per_step == 0) {
            action = rest;
            action_n = (size_t)(next - rest);
        }
        sb_putc(json, '"');
        if (next == end && (k + 1) % per_step) return -1;
        p = next;
    }
    sb_puts(json, "}]");
    return 0;
}

int payloads_pack(const char *json, size_t len, sbuf *out) {
    json_strs s;
    if (json_strings(json, len, NULL, &s)) return -1;
    size_t start = out->len;
    sb_putc(out, '~');
    for (size_t i = 0; i < s.n; i++) {
        if (i && s.len[i] == s.len[i - 1] && !memcmp(s.s[i], s.s[i - 1], s.len[i])) {
            sb_putc(out, '='); /* steps often carry the same payload */
            continue;
        }
        sb_put_i64(out, (int64_t)s.len[i]);
        sb_putc(out, ':');
        sb_append(out, s.s[i], s.len[i]);
    }
    json_strs_free(&s);
    return keep_if_exact(out, start, json, len, payloads_unpack);
}

int payloads_unpack(const char *v, size_t len, sbuf *json) {
    if (!len || v[0] != '~') {
        sb_append(json, v, len);
        return 0;
    }
    const char *p = v + 1, *end = v + len, *prev = NULL;
    size_t prev_n = 0;
    sb_putc(json, '[');
    for (int k = 0; p < end; k++) {
        if (k) sb_putc(json, ',');
        if (*p == '=') {
            if (!prev) return -1;
            sb_json_str(json, prev, prev_n);
            p++;
            continue;
        }
        size_t n = 0;
        const char *q = p;
        while (q < end && *q >= '0' && *q <= '9' && n <= (size_t)(end - v))
            n = n * 10 + (size_t)(*q++ - '0');
        if (q == p || q >= end || *q != ':' || n > (size_t)(end - q - 1)) return -1;
        sb_json_str(json, q + 1, n);
        prev = q + 1;
        prev_n = n;
        p = q + 1 + n;
    }
    sb_putc(json, ']');
    return 0;
}
