/* test_hash_corpus.c - fuzz_hash's check (fuzz/fuzz_hash.h) on every input of
 * its corpus: hashes as dtmd stores them in each layout, and what fuzzing
 * found, kept so that what was fixed stays fixed. */
#include "fuzz_hash.h"
#include "unit.h"

#include <dirent.h>
#include <stdlib.h>

#define CORPUS "fuzz/corpus/fuzz_hash"

static char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    sbuf b;
    sb_init(&b);
    char buf[4096];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) sb_append(&b, buf, k);
    fclose(f);
    *n = b.len;
    return sb_detach(&b);
}

void test_hash_corpus(void) {
    DIR *d = opendir(CORPUS);
    CHECK(d != NULL); /* run from the repository's top */
    if (!d) return;
    int files = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", CORPUS, e->d_name);
        size_t n;
        char *data = read_file(path, &n);
        CHECK(data != NULL);
        if (!data) continue;
        files++;
        sbuf why;
        sb_init(&why);
        if (hash_read_check(data, n, &why)) {
            fprintf(stderr, "  %s:\n%s\n", path, why.ptr);
            unit_failures++;
        }
        sb_free(&why);
        free(data);
    }
    closedir(d);
    CHECK(files >= 15);
}
