/* test_arena.c - arena.c: alignment, growth past the first chunk and past
 * the doubling, pieces that stay where they were, copies with NULs. */
#include "unit.h"

#include "arena.h"

#include <stdint.h>
#include <string.h>

void test_arena(void) {
    arena a;
    arena_init(&a, 64);
    /* text is packed, nodes aligned */
    char *s1 = arena_strndup(&a, "abc", 3);
    char *s2 = arena_strndup(&a, "de", 2);
    CHECK(s2 == s1 + 4);
    void *p8 = arena_alloc(&a, 24, 8);
    CHECK(((uintptr_t)p8 & 7) == 0);
    void *p16 = arena_alloc(&a, 8, 16);
    CHECK(((uintptr_t)p16 & 15) == 0);
    /* NULs inside, and the empty copy of nothing */
    char *z = arena_strndup(&a, "x\0y", 3);
    CHECK(memcmp(z, "x\0y\0", 4) == 0);
    char *e = arena_strndup(&a, NULL, 0);
    CHECK(e && e[0] == '\0');
    /* past the first chunk, and one piece larger than any doubling */
    char *pieces[200];
    for (int i = 0; i < 200; i++) {
        char buf[16];
        int n = snprintf(buf, sizeof buf, "piece-%d", i);
        pieces[i] = arena_strndup(&a, buf, (size_t)n);
    }
    char big[5000];
    memset(big, 'b', sizeof big);
    char *bp = arena_strndup(&a, big, sizeof big);
    void *after = arena_alloc(&a, 32, 8);
    CHECK(((uintptr_t)after & 7) == 0);
    memset(after, 0xff, 32);
    /* everything is still where it was, unchanged */
    CHECK(strcmp(s1, "abc") == 0 && strcmp(s2, "de") == 0);
    int bad = 0;
    for (int i = 0; i < 200; i++) {
        char buf[16];
        snprintf(buf, sizeof buf, "piece-%d", i);
        if (strcmp(pieces[i], buf) != 0) bad++;
    }
    CHECK_INT(bad, 0);
    CHECK(memcmp(bp, big, sizeof big) == 0 && bp[sizeof big] == '\0');
    arena_free(&a);
    CHECK(a.chunks == NULL);
    arena_free(&a); /* twice is fine */
    /* a zeroed arena works with the default first size */
    arena d = {0};
    CHECK(strcmp(arena_strndup(&d, "ok", 2), "ok") == 0);
    arena_free(&d);
}
