/* trans_hash.h - a transaction as a Redis hash: the field names and the
 * encoding both ways; part of the store layer (trans_store.h), the only
 * place a field name is spelled.
 *
 * A transaction is ONE Redis hash (one key keeps every state change a
 * single-key write inside one Lua script). Every value is at most
 * HASH_PIECE bytes (hash_pieces.h), so Redis keeps the hash a listpack (its default
 * hash-max-listpack-value is 64): a hash table costs about three times the
 * memory. The fields (docs/design.md "Redis key layout"):
 *   status, trans_type   as every script's compare-and-set reads them
 *   ct ut ft rbt nc ci   create/update/finish/rollback/next-cron time (ms;
 *                        ut ft rbt nc as ms after the stored time,
 *                        ct - cs: trans_set_time, trans_stored_ms),
 *                        retry interval (ms); wr cc tf rt ri rl rc the
 *                        options and the retry count; numbers that are 0
 *                        are left out
 *   lease_until, lease_owner, stop_req, stop_done, nb   read by the scripts
 *                        (the lease fields only while unfinished)
 *   st pl pr cd qp bh rr rs le   texts (steps, payloads, protocol,
 *                        custom_data, query_prepared, branch_headers,
 *                        rollback_reason, result, last_error), each cut into
 *                        pieces: "<name>" = "<n>:" + the first bytes, then
 *                        "<name>.1" .. "<name>.<n-1>"; a shorter value
 *                        written later has a smaller n, so stale pieces of a
 *                        longer one are never read
 *   b<i>                 branch i's definition, "<n>:<id><n>:<op><n>:<url>"
 *                        + payload, in pieces; not stored for a saga, whose
 *                        branches follow from st and pl
 *   bs bs1 bs2 ...       the branch states in groups of 8 (branch_states.h)
 * st and pl are packed when they have the usual shape (def_text.h).
 * The gid is the key's. The previous layout (a "gid" field; long names,
 * "b<i>" and "b<i>.s" whole) is still read: such a transaction keeps its
 * branch fields in that layout (t->old_layout), while the global fields a
 * new dtmd writes go to the compact names, which win over the old ones.
 * Times are kept in milliseconds. */
#ifndef DTMD_TRANS_HASH_H
#define DTMD_TRANS_HASH_H

#include "store.h"
#include "trans.h"

#include <stddef.h>
#include <stdint.h>

/* The fields a request or a pass writes to a stored transaction. */
typedef enum {
    TF_STATUS = 0,
    TF_CUSTOM_DATA,
    TF_QUERY_PREPARED,
    TF_ROLLBACK_REASON,
    TF_LAST_ERROR,
    TF_RESULT,
    TF_BRANCH_HEADERS,
    TF_CREATE_TIME,
    TF_UPDATE_TIME,
    TF_FINISH_TIME,
    TF_ROLLBACK_TIME,
    TF_NEXT_CRON_TIME,
    TF_NEXT_CRON_INTERVAL,
    TF_WAIT_RESULT,
    TF_CONCURRENT,
    TF_TIMEOUT_TO_FAIL,
    TF_REQUEST_TIMEOUT,
    TF_RETRY_INTERVAL,
    TF_RETRY_LIMIT,
    TF_RETRY_COUNT,
} trans_field;

/* Append a field/value pair to a write's field list. */
void trans_set(rargs *f, trans_field k, const char *v);
void trans_set_int(rargs *f, trans_field k, int64_t v);
/* A time field of t (update, finish, rollback, next cron; ms): stored as ms
 * after the time t was stored (trans_stored_ms), which Redis keeps as a small integer instead of a
 * 13-digit one; read back by adding it. A time before the create time, or a
 * write that does not know it (trans_set_int), is stored as it is: a value
 * of TIME_DELTA_MAX or more is a time, not a distance. */
void trans_set_time(rargs *f, const trans *t, trans_field k, int64_t ms);
/* Append the state of branch i (with the compact layout: of every branch,
 * field "bs"), from memory: what a branch result writes. */
void trans_set_branch_state(rargs *f, const trans *t, int i);

/* Build from an HGETALL-shaped reply of the key of gid (NULL: the hash's
 * own "gid" field, the previous layout); NULL if the reply is
 * empty/invalid. */
trans *trans_from_hash(const redisReply *r, const char *gid);
/* Append every field as "name value" pairs (save_new: a new hash). */
void trans_hash_fields(const trans *t, rargs *a);
/* The two values of a branch as one argument each (register_branch.lua
 * stores them in either layout): the definition,
 * "<n>:<id><n>:<op><n>:<url><payload>" (lengths in decimal bytes), and the
 * state, "<status> <create> <update> <finish> <rollback>" (ms, 0 = unset). */
void branch_def_value(const branch *b, rargs *a);
void branch_state_value(const branch *b, rargs *a);

#endif
