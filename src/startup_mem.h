/* startup_mem.h - keeping dtmd's resident memory small from start-up: the
 * library pages only start-up needed, the allocator's free pages
 * (docs/footprint.md, "dtmd's RSS").
 *
 * The module also defines GnuTLS's hook that skips its implicit
 * initialisation (startup_mem.c says why). */
#ifndef DTMD_STARTUP_MEM_H
#define DTMD_STARTUP_MEM_H

/* Unmap the pages of shared libraries and of dtmd's own code mapped so
 * far; those used again are mapped again on their first use. Called when
 * main starts (what loading the libraries and their constructors mapped)
 * and once more after start-up, before the event loop (what initialising
 * them mapped: OpenSSL's, by curl_global_init), so that neither stays in
 * the peak. Returns the kB of resident memory released. */
long startup_mem_release(void);

/* When main starts: the allocator's options (mimalloc's delay before it
 * returns free pages to the system), unless its environment sets them. */
void startup_mem_allocator(void);

#endif
