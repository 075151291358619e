/* branch_call.h - outgoing HTTP calls to branch URLs (libcurl multi on the
 * shared libevent loop).
 *
 * A call is started with everything it needs copied in; the callback fires
 * exactly once, from the event loop, unless the call was cancelled first.
 * Connections are reused between calls (one curl multi handle), but a call
 * sends its request once: if the connection dies without an answer, the call
 * fails rather than being sent again, so the caller's retry is the only one.
 * The result of a call is classified exactly as dtm does
 * (docs/protocol.md#calling-a-branch). */
#ifndef DTMD_BRANCH_CALL_H
#define DTMD_BRANCH_CALL_H

#include "outcome.h"

#include <stddef.h>

struct event_base;

typedef struct branch_request {
    const char *url; /* stored branch URL, may already carry a query string */
    const char *gid; /* the four query parameters dtm appends; NULL = omitted */
    const char *trans_type;
    const char *branch_id;
    const char *op;
    const char *body; /* payload bytes sent verbatim; NULL/0 = empty */
    size_t body_len;
    int force_post;             /* POST even with an empty body (xa); otherwise GET when empty */
    const char *const *headers; /* extra "Name: value" lines, applied after Content-Type */
    int nheaders;
    double timeout_s; /* whole-request timeout, seconds (fractional ok) */
    int jsonrpc;      /* body is a JSON-RPC request: its answer's error code counts too */
    /* NULL, or asked right before the request goes out (also after waiting
     * in the Limits.MaxInflightCalls queue) with the callback's arg: 0 =
     * send nothing, the call fails as a transport error. */
    int (*may_send)(void *arg);
} branch_request;

typedef struct branch_call branch_call;

/* outcome: classification; http_status: 0 on transport error; body: response
 * body (NUL-terminated, may be empty) or, on transport error, the curl error
 * text. The strings are only valid during the callback. */
typedef void branch_call_cb(void *arg, branch_outcome outcome, long http_status, const char *body,
                            size_t body_len);

int branch_call_init(struct event_base *base);
void branch_call_shutdown(void); /* cancels every pending call without callbacks */

/* Start a call. Returns a handle (owned by the module, valid until the
 * callback returns or branch_call_cancel is called) or NULL if it could not
 * be started (the callback is then not called). */
branch_call *branch_call_start(const branch_request *req, branch_call_cb *cb, void *arg);

/* Cancel a pending call: its callback will not be called. */
void branch_call_cancel(branch_call *call);

/* Number of calls in flight (for metrics and tests), queued ones included. */
int branch_call_pending(void);

/* Limits.MaxInflightCalls: at most n calls run at once (n < 1 = no limit);
 * further calls wait in a FIFO queue and start as running ones finish.
 * Nothing is dropped; a queued call's timeout starts when it starts. */
void branch_call_set_max_inflight(int n);
/* Calls waiting in that queue. */
int branch_call_queued(void);

/* Pure helpers (unit tested). */

/* dtm's classification: 425 or body containing "ONGOING" -> ONGOING; 409 or
 * body containing "FAILURE" -> FAILURE; other non-200 -> ERROR; 200 -> SUCCESS.
 * http_status 0 means transport error -> ERROR. */
branch_outcome branch_classify(long http_status, const char *body, size_t body_len);

/* Split an absolute http(s) URL into its origin (scheme://authority,
 * url[0..*at)) and its request target: the path and query, url[*at..*at +
 * *len), without a fragment. Returns 0 if the URL has no path starting with
 * '/' or its target holds a byte that must not go on a request line as it is
 * (space, control, DEL). */
int branch_url_target(const char *url, size_t *at, size_t *len);

/* url + "?" or "&" + branch_id=..&gid=..&op=..&trans_type=.. (sorted keys,
 * percent-encoded values, NULL values omitted). Returns a malloc'd string. */
char *branch_build_url(const char *url, const char *gid, const char *trans_type,
                       const char *branch_id, const char *op);

const char *branch_outcome_name(branch_outcome o);

#endif
