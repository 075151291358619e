/* def_text.h - a transaction's steps and payloads as compact stored text;
 * part of the store layer (trans_hash.c is its only user).
 *
 * Steps and payloads are kept in memory as the JSON the query answer shows
 * (json_write's and sb_json_str's output). Stored as JSON, a 2-step saga's
 * steps spell out "action", "compensate", the quotes and the common URL
 * prefix four times: 230 bytes in 4 hash pieces, against 80 bytes here.
 * Both packed forms start with '~', which JSON text never does, so a value
 * stored as JSON (by an earlier dtmd, or because it has an unusual shape)
 * is still read as it is.
 *
 *   steps     "~" <shape> <prefix> then " " <rest> per URL: shape 'c' when
 *             every step is exactly {"action":..,"compensate":..}, 'a' when
 *             every step is exactly {"action":..}; each non-empty URL is
 *             <prefix><rest> with a non-empty rest, an empty URL is an empty
 *             rest (a URL never holds a space or a control byte).
 *   payloads  "~" then "<n>:" and the n bytes of each payload, or "=" for
 *             one equal to the one before it (steps often carry the same).
 *
 * Packing is exact by construction and checked: a text that would not
 * unpack to the same bytes is not packed. */
#ifndef DTMD_DEF_TEXT_H
#define DTMD_DEF_TEXT_H

#include "util.h"

#include <stddef.h>

/* Pack the steps JSON into *out: 0, or -1 when it has another shape (store
 * the JSON as it is). */
int steps_pack(const char *json, size_t len, sbuf *out);
/* Pack the payloads JSON (an array of strings) into *out: 0, or -1. */
int payloads_pack(const char *json, size_t len, sbuf *out);
/* A stored value back to its JSON (appended to *json): 0, or -1 if
 * malformed. A value not starting with '~' is JSON already and copied. */
int steps_unpack(const char *v, size_t len, sbuf *json);
int payloads_unpack(const char *v, size_t len, sbuf *json);

#endif
