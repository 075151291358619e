/* trans_hash.h - a transaction as a Redis hash: the field names and the
 * encoding both ways; part of the store layer (trans_store.h), the only
 * place a field name is spelled.
 *
 * A transaction is ONE Redis hash whose fields are the global record's fields
 * (numbers that are 0 are left out) plus "nb" (branch count) and two fields
 * per branch: "b<i>", what never changes (id, op, URL, payload), and
 * "b<i>.s", its state (status and times). One key per transaction keeps every
 * state change a single-key write inside one Lua script, and few fields keep
 * Redis' cost per write low. Times are kept in milliseconds. */
#ifndef DTMD_TRANS_HASH_H
#define DTMD_TRANS_HASH_H

#include "store.h"
#include "trans.h"

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
/* Append branch i's state ("b<i>.s"): what a branch result writes. */
void trans_set_branch_state(rargs *f, const trans *t, int i);

/* Build from an HGETALL-shaped reply; NULL if the reply is empty/invalid. */
trans *trans_from_hash(const redisReply *r);
/* Append every field as "name value" pairs (save_new: a new hash). */
void trans_hash_fields(const trans *t, rargs *a);
/* The two values of a branch as one argument each: the definition,
 * "<n>:<id><n>:<op><n>:<url><payload>" (lengths in decimal bytes), and the
 * state, "<status> <create> <update> <finish> <rollback>" (ms, 0 = unset). */
void branch_def_value(const branch *b, rargs *a);
void branch_state_value(const branch *b, rargs *a);

#endif
