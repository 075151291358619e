/* hash_pieces.h - values of a Redis hash kept at most HASH_PIECE bytes, and
 * an HGETALL reply looked up by field name; below trans_hash.h.
 *
 * Redis keeps a hash whose every value is at most hash-max-listpack-value
 * bytes (64 by default) as a listpack, about a third of the memory of a
 * hash table. A longer value is cut into pieces: field "<name>" holds
 * "<n>:" and the first bytes, "<name>.1" .. "<name>.<n-1>" the rest (the
 * same cut as lua/register_branch.lua's put). A shorter value written later
 * has a smaller n, so the pieces of a longer one before it are never read. */
#ifndef DTMD_HASH_PIECES_H
#define DTMD_HASH_PIECES_H

#include "rargs.h"

#include <hiredis/hiredis.h>
#include <stddef.h>

/* The longest value stored (Redis' default hash-max-listpack-value). */
#define HASH_PIECE 64

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
