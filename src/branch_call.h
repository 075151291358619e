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

#include "branch_request.h"

#include <stddef.h>

struct event_base;

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

#endif
