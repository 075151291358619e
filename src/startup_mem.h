/* startup_mem.h - keeping dtmd's resident memory small from start-up: no
 * GnuTLS initialisation, the allocator's free pages returned soon
 * (docs/footprint.md, "dtmd's RSS").
 *
 * The module also defines GnuTLS's hook that skips its implicit
 * initialisation (startup_mem.c says why). */
#ifndef DTMD_STARTUP_MEM_H
#define DTMD_STARTUP_MEM_H

/* When main starts: the allocator's options (mimalloc's delay before it
 * returns free pages to the system), unless its environment sets them. */
void startup_mem_allocator(void);

#endif
