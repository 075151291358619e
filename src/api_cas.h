/* api_cas.h - what the endpoints that change a stored transaction share
 * (api_trans.c, api_workflow.c, api_register.c): the request's
 * compare-and-set and the HTTP answer to a script's refusal. */
#ifndef DTMD_API_CAS_H
#define DTMD_API_CAS_H

#include "api_call.h"
#include "trans_store.h"
#include "transition.h"

/* cas_update (lua/cas_update.lua) under a transition row: the script
 * checks the stored type (NULL = any) and status; fields are consumed. A
 * row that ends the transaction (cancel, due -1) waits for another process
 * that holds it to store the stop (docs/requests.md), answering 503 if it
 * does not within 10 s. */
void api_cas(const char *gid, const char *type, const transition *row, int64_t due, int64_t ttl,
             rargs *fields, tstore_cb *cb, api_call *c);

/* Answer a request the store (or the table) refused: 404 absent, 400 a
 * type mismatch or a request that never applies to the stored type, 409 a
 * status that does not allow it (dtm's FAILURE answer, which SDKs test). */
void api_reply_refused(api_call *c, trans_request rq, const char *gid, transition_verdict v,
                       const char *status, const char *stored_type, const char *req_type);

/* The verdict a script's reply tag stands for. */
transition_verdict api_verdict_of(tstore_tag tag);

/* Answer a script's refusal r of request rq on gid (req_type: the type the
 * request named, NULL = any): the HTTP answer its tag stands for; 500 for a
 * reply of an unexpected shape. */
void api_reply_for_tag(api_call *c, trans_request rq, const char *gid, const tstore_reply *r,
                       const char *req_type);

/* Parse the body into c->t; answers 400 and returns -1 on bad input. */
int api_parse_trans(api_call *c, const char *body, size_t len);

#endif
