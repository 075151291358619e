/* api_call.h - one incoming API request awaiting an asynchronous answer.
 *
 * The client may go away while dtmd waits for Redis or for a transaction;
 * the connection's close callback then clears `req`, and the eventual answer
 * is dropped instead of written to freed memory. Whoever completes the call
 * (api_reply_*) frees it: exactly one reply per api_call. */
#ifndef DTMD_API_CALL_H
#define DTMD_API_CALL_H

#include "config.h"
#include "trans.h"
#include "transition.h"

#include <stdint.h>

struct evhttp_request;
struct evhttp_connection;

typedef struct api_call {
    struct evhttp_request *req; /* NULL once the client is gone */
    struct evhttp_connection *conn;
    const dtmd_config *cfg;
    trans *t; /* owned until handed to the engine */
    /* What the endpoint is doing, for its callbacks; each field is set only
     * by the endpoints named, and the owned ones are freed with the call. */
    trans_request rq;        /* submit, prepare, abort, forceStop, resetNextCronTime */
    int wait_result;         /* submit / abort: answered when the pass ends */
    int trans_type;          /* registerBranch: the registration's type */
    char *gid;               /* query, registerBranch, forceStop, resetNextCronTime (owned) */
    char **topics;           /* a msg's submit: topic names being read (owned) */
    size_t ntopics;          /* ... and their count */
    struct all_ctx *all;     /* GET all: its paging state (api_query.c; owned) */
    struct reset_ctx *reset; /* resetCronTime: its walk over the shards (api_query.c; owned) */
    enum { KV_WHOLE = 0, KV_ONE_KEY, KV_SCAN } kv_read; /* api_kv.c: how a listing reads */
    const char *api;      /* route name for metrics (static), NULL = unrouted */
    char *rpc_id;         /* a JSON-RPC call's id: answers become JSON-RPC answers */
    double start;         /* metrics_now() at arrival */
    int64_t hold_sent_us; /* a script taking a hold was sent then (liveness.h) */
} api_call;

api_call *api_call_new(struct evhttp_request *req, const dtmd_config *cfg);

/* Send data as it is (not JSON-RPC wrapped), then free the call. */
void api_reply_raw(api_call *c, int code, const char *content_type, const char *data, size_t len);
/* Send a JSON body with a status code, then free the call. A JSON-RPC call
 * (rpc_id set) gets it as a JSON-RPC answer instead (jsonrpc_answer). */
void api_reply_json(api_call *c, int code, const char *json);
/* 200 {"dtm_result":"SUCCESS"} */
void api_reply_ok(api_call *c);
/* 409 {"dtm_result":"FAILURE","message":msg (+" FAILURE" unless it ends so)} */
void api_reply_failure(api_call *c, const char *msg);
/* 425 {"dtm_result":"ONGOING","message":msg} */
void api_reply_ongoing(api_call *c, const char *msg);
/* code {"message":msg}: 400 bad input, 404, 500, 503 */
void api_reply_error(api_call *c, int code, const char *msg);
/* Map a store error: 503 when unreachable, else 500. */
void api_reply_store_error(api_call *c, const char *gid, const char *err);

#endif
