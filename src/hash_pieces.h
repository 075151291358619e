/* hash_pieces.h - values of a Redis hash kept at most HASH_PIECE bytes, and
 * an HGETALL reply looked up by field name; below trans_hash.h.
 *
 * Redis keeps a hash whose every value is at most hash-max-listpack-value
 * bytes (64 by default) as a listpack, about a third of the memory of a
 * hash table. A longer value is cut into pieces: field "<name>" holds
 * "<n>:" and the first bytes, "<name>.1" .. "<name>.<n-1>" the rest (the
 * same cut as lua/lib/pieces.lua's put). A shorter value written later
 * has a smaller n, so the pieces of a longer one before it are never read.
 * A value that fits one piece is stored as it is, without "1:", unless it
 * starts with digits and a colon itself (then "1:" tells it apart): most
 * texts are short. A value that would take more than HASH_MAX_PIECES pieces is stored whole
 * ("1:" and all of it): its hash could not stay a listpack anyway (Redis'
 * hash-max-listpack-entries), and thousands of small fields would cost more
 * memory, in Redis and in every reply read, than one long value. */
#ifndef DTMD_HASH_PIECES_H
#define DTMD_HASH_PIECES_H

#include "rargs.h"

#include <hiredis/hiredis.h>
#include <stddef.h>

/* The longest value stored (Redis' default hash-max-listpack-value). */
#define HASH_PIECE 64
/* The most pieces a value is cut into; longer values are stored whole. */
#define HASH_MAX_PIECES 16

/* Append field name with value v (len bytes) in pieces, as name/value pairs. */
void pieces_put(rargs *a, const char *name, const char *v, size_t len);

/* An HGETALL reply (every element a string) with its field names sorted. */
typedef struct hview {
    const redisReply *r;
    size_t *ord; /* element indexes of the names, sorted by name */
    size_t n;
} hview;

void hv_init(hview *h, const redisReply *r);
void hv_free(hview *h);
/* The value of field name (len bytes), or NULL. */
const redisReply *hv_get(const hview *h, const char *name, size_t len);
/* A value written by pieces_put, joined: 1 found (*out owned and
 * NUL-terminated, *len bytes), 0 absent, -1 malformed (a piece missing, a
 * bad count). */
int hv_long(const hview *h, const char *name, char **out, size_t *len);

#endif
