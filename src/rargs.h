/* rargs.h - a Redis command line under construction: the arguments of one
 * command or script call, built by the store layer and handed to
 * store_command / store_script (store.h). */
#ifndef DTMD_RARGS_H
#define DTMD_RARGS_H

#include "arena.h"

#include <stddef.h>
#include <stdint.h>

/* A Redis command line under construction; owns copies of its arguments.
 * The bytes live in an arena (each argument NUL-terminated), so building a
 * command of fifty fields costs a few allocations, not a hundred; argv[i]
 * stays valid until ra_free. Moving the struct (plain assignment) moves the
 * ownership. */
typedef struct rargs {
    int argc, cap;
    char **argv;
    size_t *lens; /* in the block argv points to (ra_reserve) */
    arena bytes;
} rargs;

void ra_init(rargs *a);
void ra_add(rargs *a, const char *s, size_t n);
/* Add an argument of n bytes for the caller to fill in (returned; it is
 * NUL-terminated after them): for values built from parts, without a
 * buffer to copy from. */
char *ra_alloc(rargs *a, size_t n);
/* Replace argument i with a copy of s (n bytes). */
void ra_set(rargs *a, int i, const char *s, size_t n);
void ra_adds(rargs *a, const char *s); /* NULL is added as "" */
void ra_addi(rargs *a, int64_t v);
void ra_free(rargs *a);
/* Put n arguments s[0..n) (lens[i] bytes each) in front of the others. */
void ra_prepend(rargs *a, int n, const char *const *s, const size_t *lens);

#endif
