/* startup_mem.c - what dtmd does at start-up to keep its resident memory
 * small (see startup_mem.h): GnuTLS left uninitialised, and the allocator's
 * delay before returning free pages.
 *
 * Why: libcurl as Debian builds it links some 40 libraries (OpenSSL,
 * GnuTLS, Kerberos, LDAP, libssh2, ...) whether or not a transfer ever uses
 * them, and some of them do work at load time (docs/footprint.md, "dtmd's
 * RSS"). */
#include "startup_mem.h"

#include <stdlib.h>

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
