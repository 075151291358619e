/* arena.h - many small allocations with one lifetime, freed at once.
 *
 * Chunks are malloc'd as needed: the first of a chosen size, each next one
 * twice the last (or the request, if larger). A piece never moves, so
 * pointers into the arena stay valid until arena_free. Used for a Redis
 * command's arguments (rargs.c) and for a parsed JSON document (json.c),
 * where one allocation per piece was the cost that showed in profiles.
 * Moving the struct (plain assignment) moves the ownership. */
#ifndef DTMD_ARENA_H
#define DTMD_ARENA_H

#include <stddef.h>

struct arena_chunk;
typedef struct arena {
    struct arena_chunk *chunks; /* newest first */
    size_t first_cap;           /* size of the first chunk (0: a default) */
} arena;

void arena_init(arena *a, size_t first_cap);

/* n bytes aligned to align (a power of two up to 16; 1 for text). */
void *arena_alloc(arena *a, size_t n, size_t align);

/* A NUL-terminated copy of s[0..n) (s may hold NULs; NULL if n is 0). */
char *arena_strndup(arena *a, const char *s, size_t n);

void arena_free(arena *a);

#endif
