/* fuzz_hash.h - the check fuzz_hash.c runs on a stored hash, and the reply
 * it builds, shared with the unit tests. */
#ifndef DTMD_FUZZ_HASH_H
#define DTMD_FUZZ_HASH_H

#include "rargs.h"
#include "util.h"

#include <hiredis/hiredis.h>
#include <stddef.h>

/* data: an HGETALL reply, its strings separated by NUL bytes. 0 if dtmd
 * refuses it, or reads it and, written anew and read again, shows the same;
 * -1 with what differed appended to why. */
int hash_read_check(const char *data, size_t size, sbuf *why);

/* An HGETALL reply of the "name value" pairs in a (as trans_hash_fields
 * builds them), its strings NUL-terminated as hiredis makes them; freed with
 * freeReplyObject. */
redisReply *hgetall_reply(const rargs *a);

#endif
