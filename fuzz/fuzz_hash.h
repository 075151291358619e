/* fuzz_hash.h - the check fuzz_hash.c runs on a stored hash, shared with the
 * unit tests that replay its corpus. */
#ifndef DTMD_FUZZ_HASH_H
#define DTMD_FUZZ_HASH_H

#include "util.h"

#include <stddef.h>

/* data: an HGETALL reply, its strings separated by NUL bytes. 0 if dtmd
 * refuses it, or reads it and, written anew and read again, shows the same;
 * -1 with what differed appended to why. */
int hash_read_check(const char *data, size_t size, sbuf *why);

#endif
