/* startup_mem.h - keeping start-up's library pages out of dtmd's resident
 * memory (docs/footprint.md, "dtmd's RSS").
 *
 * The module also defines GnuTLS's hook that skips its implicit
 * initialisation (startup_mem.c says why). */
#ifndef DTMD_STARTUP_MEM_H
#define DTMD_STARTUP_MEM_H

/* Once, after start-up and before the event loop: unmap the pages of
 * shared libraries and of dtmd's own code that start-up mapped; those used
 * again are mapped again on their first use. Logs the resident memory
 * released. */
void startup_mem_release(void);

#endif
