/* branch_request.h - a branch call's request (URL, headers, body) and the
 * classification of its answer, as dtm does them
 * (docs/protocol.md#calling-a-branch). No I/O: branch_call.h sends them. */
#ifndef DTMD_BRANCH_REQUEST_H
#define DTMD_BRANCH_REQUEST_H

#include "outcome.h"

#include <curl/curl.h>
#include <stddef.h>

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

/* The header lines of a call: Content-Type and curl's Expect and Accept
 * switched off, then req's lines; a later line with the same name replaces
 * an earlier one, lines with CR/LF are dropped. NULL if curl could not
 * allocate. */
struct curl_slist *branch_build_headers(const branch_request *req);

#endif
