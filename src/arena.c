/* arena.c - chunked region allocator (see arena.h). */
#include "arena.h"

#include "util.h"

#include <stdlib.h>
#include <string.h>

#define ARENA_DEFAULT_FIRST 256

struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    _Alignas(16) char data[];
};

void arena_init(arena *a, size_t first_cap) {
    a->chunks = NULL;
    a->first_cap = first_cap;
}

void *arena_alloc(arena *a, size_t n, size_t align) {
    struct arena_chunk *c = a->chunks;
    size_t at = c ? (c->used + align - 1) & ~(align - 1) : 0;
    if (!c || at > c->cap || c->cap - at < n) {
        size_t cap = c ? c->cap * 2 : a->first_cap ? a->first_cap : ARENA_DEFAULT_FIRST;
        if (cap < n) cap = n;
        c = xmalloc(sizeof *c + cap);
        c->used = 0;
        c->cap = cap;
        c->next = a->chunks;
        a->chunks = c;
        at = 0;
    }
    c->used = at + n;
    return c->data + at;
}

char *arena_strndup(arena *a, const char *s, size_t n) {
    char *p = arena_alloc(a, n + 1, 1);
    if (n) memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void arena_free(arena *a) {
    while (a->chunks) {
        struct arena_chunk *next = a->chunks->next;
        free(a->chunks);
        a->chunks = next;
    }
}
