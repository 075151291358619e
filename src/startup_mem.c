/* startup_mem.c - what dtmd does at start-up to keep its resident memory
 * small (see startup_mem.h): library pages it does not need after start-up,
 * and the allocator's delay before returning free pages.
 *
 * Why: libcurl as Debian builds it links some 40 libraries (OpenSSL,
 * GnuTLS, Kerberos, LDAP, libssh2, ...) whether or not a transfer ever uses
 * them. Loading them (the dynamic linker reads their symbol and relocation
 * tables: they are linked BIND_NOW), their constructors and curl's global
 * initialisation (OpenSSL's, whether or not a URL is https) leave about
 * 9 MB of their pages mapped in dtmd, of which about 3 MB are used again
 * once dtmd serves (docs/footprint.md, "dtmd's RSS"). */
#include "startup_mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* mimalloc's options, when dtmd is linked with it (the Makefile's default);
 * a build on glibc's malloc (ALLOC_LIBS=, the sanitizer builds) leaves the
 * weak reference unresolved, NULL. */
#if defined(__has_include)
#if __has_include(<mimalloc.h>)
#include <mimalloc.h>
#pragma weak mi_option_set
#define HAVE_MIMALLOC_H 1
#endif
#endif

/* GnuTLS initialises itself from a library constructor (its ASN.1 trees,
 * random generator, ...: about 1 MB of its and nettle's pages and 0.2 MB
 * of heap), unless the program defines this hook to say no. dtmd never uses
 * GnuTLS: libcurl's TLS is OpenSSL here, and GnuTLS comes only with
 * librtmp and libldap, whose protocols dtmd's handles refuse
 * (CURLOPT_PROTOCOLS_STR). A libcurl built on GnuTLS still works: it calls
 * gnutls_global_init itself, which this hook does not affect. The symbol
 * is exported from the executable (Makefile: --export-dynamic-symbol) so
 * that GnuTLS's call, through its PLT, finds it. */
int _gnutls_global_init_skip(void);
int _gnutls_global_init_skip(void) {
    return 1;
}

/* Resident kB of the process (VmRSS), or -1. */
static long rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[128];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1) break;
    fclose(f);
    return kb;
}

#define TRIM_MAX 512

/* Unmap the clean pages of read-only file mappings (code, constants,
 * symbol tables: r-xp and r--p with a path and no anonymous, i.e. copied
 * on write, page). MADV_DONTNEED on a private file mapping drops dtmd's
 * mapping of the pages, not the pages: they stay in the page cache and
 * the next use maps them again (a minor fault). A mapping with an
 * anonymous page (relocated data made read-only) is left alone: there
 * MADV_DONTNEED would bring back the file's bytes. dtmd is still one
 * thread here, so no page is copied between reading smaps and madvise. */
long startup_mem_release(void) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return 0;
    unsigned long lo[TRIM_MAX], hi[TRIM_MAX];
    int n = 0, candidate = 0;
    unsigned long a = 0, b = 0;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char perms[8];
        int path_at = 0;
        long anon;
        unsigned long x, y; /* a field line ("Anonymous:") may match the first %lx */
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &x, &y, perms, &path_at) == 3) {
            a = x;
            b = y;
            candidate = path_at > 0 && line[path_at] == '/' &&
                        (strcmp(perms, "r-xp") == 0 || strcmp(perms, "r--p") == 0);
        } else if (candidate && sscanf(line, "Anonymous: %ld", &anon) == 1) {
            if (anon == 0 && n < TRIM_MAX) {
                lo[n] = a;
                hi[n] = b;
                n++;
            }
            candidate = 0;
        }
    }
    fclose(f);
    long before = rss_kb();
    for (int i = 0; i < n; i++) madvise((void *)lo[i], hi[i] - lo[i], MADV_DONTNEED);
    long after = rss_kb();
    return before >= 0 && after >= 0 && before > after ? before - after : 0;
}

/* mimalloc returns the pages of freed memory to the system 25 ms after they
 * fell free (its decommit delay); at full load that leaves 1 - 2 MB of free
 * pages resident at the peak. 5 ms returns most of them at the cost of
 * about 0.3 more page faults per transaction (docs/footprint.md, measured
 * against 0 ms: 1.2 faults and a madvise every 12 transactions, 4 % more
 * CPU). The environment (MIMALLOC_DECOMMIT_DELAY, or MIMALLOC_PURGE_DELAY
 * as later mimalloc versions call it) still wins. */
#define DECOMMIT_DELAY_MS 5

void startup_mem_allocator(void) {
#ifdef HAVE_MIMALLOC_H
    if (mi_option_set && !getenv("MIMALLOC_DECOMMIT_DELAY") && !getenv("MIMALLOC_PURGE_DELAY"))
        mi_option_set(mi_option_decommit_delay, DECOMMIT_DELAY_MS);
#endif
}
