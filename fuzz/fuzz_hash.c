/* fuzz_hash.c - libFuzzer target: a stored transaction hash read back, and
 * the layout's round trip.
 *
 * dtmd reads whatever the store holds: hashes of every layout it knows, and
 * whatever a bug, an operator or another program left there. The input is
 * an HGETALL reply, its strings separated by NUL bytes (field, value, ...).
 * trans_from_hash must refuse it or build a transaction; one it builds is
 * shown as the query shows it, written as a new hash (trans_hash_fields)
 * and read again, and must show the same: the compact layout loses nothing
 * of what it accepted. (A hash of the layout before the compact one is only
 * read: dtmd never writes one anew, and its branches may disagree with what
 * the compact layout derives from its steps.)
 *
 * Build and run with `make fuzz`. fuzz/corpus/fuzz_hash holds hashes as
 * dtmd stores them, and the inputs fuzzing found; the unit tests run the
 * same check on each (test/unit/test_hash_corpus.c). */
#include "fuzz_hash.h"

#include "trans.h"
#include "trans_hash.h"
#include "trans_json.h"
#include "util.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static redisReply *string_reply(const char *s, size_t n) {
    redisReply *e = xcalloc(1, sizeof *e);
    e->type = REDIS_REPLY_STRING;
    e->str = xmalloc(n + 1);
    memcpy(e->str, s, n);
    e->str[n] = 0;
    e->len = n;
    return e;
}

static void push(redisReply *r, redisReply *e) {
    r->element = xrealloc(r->element, (r->elements + 1) * sizeof *r->element);
    r->element[r->elements++] = e;
}

/* The NUL-separated strings of d as an array reply, an even count. */
static redisReply *reply_of_bytes(const char *d, size_t n) {
    redisReply *r = xcalloc(1, sizeof *r);
    r->type = REDIS_REPLY_ARRAY;
    size_t at = 0;
    while (at <= n) {
        const char *end = at < n ? memchr(d + at, 0, n - at) : NULL;
        size_t len = end ? (size_t)(end - (d + at)) : n - at;
        push(r, string_reply(d + at, len));
        at += len + 1;
    }
    if (r->elements % 2) freeReplyObject(r->element[--r->elements]);
    return r;
}

redisReply *hgetall_reply(const rargs *a) {
    redisReply *r = xcalloc(1, sizeof *r);
    r->type = REDIS_REPLY_ARRAY;
    for (int i = 0; i < a->argc; i++) push(r, string_reply(a->argv[i], a->lens[i]));
    return r;
}

static void shown(const trans *t, sbuf *o) {
    trans_to_json(t, o);
    for (int i = 0; i < t->nbranches; i++) branch_to_json(t, i, o);
}

int hash_read_check(const char *data, size_t size, sbuf *why) {
    redisReply *r = reply_of_bytes(data, size);
    trans *t = trans_from_hash(r, "fuzz-gid");
    freeReplyObject(r);
    if (!t) return 0;
    int rc = 0;
    sbuf before, after;
    sb_init(&before);
    sb_init(&after);
    shown(t, &before);
    if (!t->old_layout) {
        rargs a;
        ra_init(&a);
        trans_hash_fields(t, &a);
        redisReply *again = hgetall_reply(&a);
        ra_free(&a);
        trans *t2 = trans_from_hash(again, t->gid);
        freeReplyObject(again);
        if (t2) shown(t2, &after);
        if (!t2 || before.len != after.len || memcmp(before.ptr, after.ptr, before.len)) {
            sb_puts(why, "read:\n");
            sb_append(why, before.ptr, before.len);
            sb_puts(why, t2 ? "\nwritten anew and read again:\n" : "\nwritten anew: refused");
            sb_append(why, after.ptr, after.len);
            rc = -1;
        }
        trans_free(t2);
    }
    sb_free(&before);
    sb_free(&after);
    trans_free(t);
    return rc;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    sbuf why;
    sb_init(&why);
    if (hash_read_check((const char *)data, size, &why)) {
        fprintf(stderr, "%s\n", why.ptr);
        abort();
    }
    sb_free(&why);
    return 0;
}
