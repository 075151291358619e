/* rargs.c - a Redis command line under construction (see rargs.h).
 *
 * Why its own allocator: every command dtmd sends is built here, and a
 * command waiting for Redis keeps its arguments until answered (for
 * redirections and NOSCRIPT retries), so the bytes go to one arena per
 * command and the argument vectors to one block. */
#include "rargs.h"

#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Arguments' bytes: the arena starts small and doubles: most commands are
 * a few short arguments, and every command waiting for Redis keeps its
 * arena (Store.MaxQueued of them per node while one reconnects; 10,000
 * SIGTERM hand-backs at once), so a fixed 4 kB chunk plus 64 argument
 * slots cost 5 kB per command where 300 bytes do. */
#define RA_FIRST_CHUNK 240
#define RA_FIRST_ARGS 8

void ra_init(rargs *a) {
    memset(a, 0, sizeof *a);
    arena_init(&a->bytes, RA_FIRST_CHUNK);
}

static char *ra_copy(rargs *a, const char *s, size_t n) {
    return arena_strndup(&a->bytes, s, n);
}

/* Room for n more arguments (slots double, starting at RA_FIRST_ARGS).
 * argv and lens share one block, lens after the cap pointers: one
 * allocation per growth instead of two reallocs. */
static void ra_reserve(rargs *a, int n) {
    if (a->argc + n <= a->cap) return;
    int cap = a->cap ? a->cap : RA_FIRST_ARGS;
    while (cap < a->argc + n) cap *= 2;
    char **argv = xmalloc((sizeof(char *) + sizeof(size_t)) * (size_t)cap);
    size_t *lens = (size_t *)(argv + cap);
    if (a->argc) {
        memcpy(argv, a->argv, sizeof(char *) * (size_t)a->argc);
        memcpy(lens, a->lens, sizeof(size_t) * (size_t)a->argc);
    }
    free(a->argv);
    a->argv = argv;
    a->lens = lens;
    a->cap = cap;
}

void ra_add(rargs *a, const char *s, size_t n) {
    ra_reserve(a, 1);
    if (!s) n = 0;
    a->argv[a->argc] = ra_copy(a, s, n);
    a->lens[a->argc] = n;
    a->argc++;
}

char *ra_alloc(rargs *a, size_t n) {
    ra_reserve(a, 1);
    char *p = arena_alloc(&a->bytes, n + 1, 1);
    p[n] = '\0';
    a->argv[a->argc] = p;
    a->lens[a->argc] = n;
    a->argc++;
    return p;
}

/* Put n arguments in front of a's, copied into a's arena, without copying
 * a's own: how store_script puts "EVALSHA <sha> <nkeys>" before a script's
 * keys and arguments, without copying the 30 or so arguments of every
 * command into a new rargs. */
void ra_prepend(rargs *a, int n, const char *const *s, const size_t *lens) {
    ra_reserve(a, n);
    memmove(a->argv + n, a->argv, sizeof(char *) * (size_t)a->argc);
    memmove(a->lens + n, a->lens, sizeof(size_t) * (size_t)a->argc);
    for (int i = 0; i < n; i++) {
        a->argv[i] = ra_copy(a, s[i], lens[i]);
        a->lens[i] = lens[i];
    }
    a->argc += n;
}

void ra_set(rargs *a, int i, const char *s, size_t n) {
    a->argv[i] = ra_copy(a, s, n);
    a->lens[i] = n;
}

void ra_adds(rargs *a, const char *s) {
    ra_add(a, s, s ? strlen(s) : 0);
}

void ra_addi(rargs *a, int64_t v) {
    char tmp[24];
    ra_add(a, tmp, fmt_i64(tmp, v));
}

void ra_free(rargs *a) {
    arena_free(&a->bytes);
    free(a->argv); /* lens too: the same block */
    ra_init(a);
}
