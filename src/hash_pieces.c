/* hash_pieces.c - long values in pieces, replies by name (see hash_pieces.h). */
#include "hash_pieces.h"

#include "util.h"

#include <stdlib.h>
#include <string.h>

static size_t digits_of(size_t n) {
    size_t d = 1;
    while (n >= 10) n /= 10, d++;
    return d;
}

/* How many pieces a value of len bytes takes: the first carries "<n>:"
 * before its bytes, every piece is at most HASH_PIECE bytes (the same
 * count lua/register_branch.lua's put computes). */
static size_t pieces_of(size_t len) {
    size_t n = 1;
    for (;;) {
        size_t cap0 = HASH_PIECE - digits_of(n) - 1;
        size_t need = len <= cap0 ? 1 : 1 + (len - cap0 + HASH_PIECE - 1) / HASH_PIECE;
        if (need <= n) return need;
        n = need;
    }
}

/* name, name.1, name.2...: the piece names. */
static void add_piece_name(rargs *a, const char *name, size_t k) {
    char buf[96];
    size_t nl = strlen(name);
    if (nl > sizeof buf - 24) nl = sizeof buf - 24;
    memcpy(buf, name, nl);
    if (k) {
        buf[nl++] = '.';
        nl += fmt_i64(buf + nl, (int64_t)k);
    }
    ra_add(a, buf, nl);
}

/* Does v start with "<digits>:", like a piece count? */
static int count_like(const char *v, size_t len) {
    size_t i = 0;
    while (i < len && v[i] >= '0' && v[i] <= '9') i++;
    return i > 0 && i < len && v[i] == ':';
}

void pieces_put(rargs *a, const char *name, const char *v, size_t len) {
    if (len <= HASH_PIECE && !count_like(v, len)) { /* one piece, no count */
        add_piece_name(a, name, 0);
        ra_add(a, v, len);
        return;
    }
    size_t n = pieces_of(len);
    if (n > HASH_MAX_PIECES) { /* stored whole (hash_pieces.h) */
        add_piece_name(a, name, 0);
        char *p = ra_alloc(a, 2 + len);
        memcpy(p, "1:", 2);
        if (len) memcpy(p + 2, v, len);
        return;
    }
    char head[24];
    size_t hl = fmt_i64(head, (int64_t)n);
    head[hl++] = ':';
    size_t cap0 = HASH_PIECE - hl, first = len < cap0 ? len : cap0;
    add_piece_name(a, name, 0);
    char *p = ra_alloc(a, hl + first);
    memcpy(p, head, hl);
    if (first) memcpy(p + hl, v, first);
    size_t at = first;
    for (size_t k = 1; k < n; k++) {
        size_t m = len - at < HASH_PIECE ? len - at : HASH_PIECE;
        add_piece_name(a, name, k);
        ra_add(a, v + at, m);
        at += m;
    }
}

static int name_cmp(const redisReply *x, const char *name, size_t len) {
    size_t m = x->len < len ? x->len : len;
    int c = memcmp(x->str, name, m);
    return c ? c : (x->len < len ? -1 : x->len > len);
}

static const redisReply *qsort_reply; /* qsort has no context argument */
static int ord_cmp(const void *a, const void *b) {
    const redisReply *x = qsort_reply->element[*(const size_t *)a];
    const redisReply *y = qsort_reply->element[*(const size_t *)b];
    return name_cmp(x, y->str, y->len);
}

void hv_init(hview *h, const redisReply *r) {
    h->r = r;
    h->n = r->elements / 2;
    h->ord = xmalloc((h->n ? h->n : 1) * sizeof(size_t));
    for (size_t i = 0; i < h->n; i++) h->ord[i] = 2 * i;
    qsort_reply = r;
    qsort(h->ord, h->n, sizeof(size_t), ord_cmp);
}

/* The value of field name (len bytes), or NULL. */
const redisReply *hv_get(const hview *h, const char *name, size_t len) {
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = name_cmp(h->r->element[h->ord[mid]], name, len);
        if (c == 0) return h->r->element[h->ord[mid] + 1];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* (hash_pieces.h) A value written by pieces_put, joined: 1 found (*out owned, *len
 * bytes), 0 absent, -1 malformed (a piece missing, a bad count). */
int hv_long(const hview *h, const char *name, char **out, size_t *len) {
    size_t nl = strlen(name);
    const redisReply *v = hv_get(h, name, nl);
    if (!v) return 0;
    if (!count_like(v->str, v->len)) { /* one piece without a count */
        *out = xstrndup(v->str, v->len);
        *len = v->len;
        return 1;
    }
    const char *p = v->str, *end = v->str + v->len;
    size_t n = 0;
    while (p < end && *p >= '0' && *p <= '9' && n < 1000000) n = n * 10 + (size_t)(*p++ - '0');
    if (p == v->str || p >= end || *p != ':' || n < 1 || n > h->n) return -1;
    p++;
    sbuf s;
    sb_init(&s);
    sb_append(&s, p, (size_t)(end - p));
    char k[96];
    if (nl > sizeof k - 24) nl = sizeof k - 24;
    memcpy(k, name, nl);
    for (size_t i = 1; i < n; i++) {
        size_t kl = nl;
        k[kl++] = '.';
        kl += fmt_i64(k + kl, (int64_t)i);
        const redisReply *piece = hv_get(h, k, kl);
        if (!piece) {
            sb_free(&s);
            return -1;
        }
        sb_append(&s, piece->str, piece->len);
    }
    *len = s.len;
    *out = sb_detach(&s);
    return 1;
}

void hv_free(hview *h) {
    free(h->ord);
    h->ord = NULL;
}
