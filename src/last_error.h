/* last_error.h - the "why is it stuck" record of a transaction.
 *
 * Each branch call (or msg/workflow check-back) that does not succeed leaves
 * a small JSON object that is stored in the transaction's hash field
 * last_error with the result write that follows the call, and shown as is by
 * query and the admin UI:
 *
 *   {"branch_id":"01","op":"action","url":"http://svc/x","outcome":"ERROR",
 *    "http_status":500,"body":"<first bytes>","time":"2026-..."}
 *
 * A transport error (no HTTP answer) has "transport_error":"<curl message>"
 * instead of http_status and body. */
#ifndef DTMD_LAST_ERROR_H
#define DTMD_LAST_ERROR_H

#include "branch_call.h"

#include <stddef.h>
#include <stdint.h>

/* Bytes of a response body kept in the record. */
#define LAST_ERROR_BODY_MAX 200

/* The record as JSON text (caller frees). body is cut after
 * LAST_ERROR_BODY_MAX bytes at a UTF-8 character boundary; bytes that are not
 * UTF-8 become '?', so the text is always valid JSON. */
char *last_error_json(const char *branch_id, const char *op, const char *url, branch_outcome o,
                      long http_status, const char *body, size_t len, int64_t now_ms);

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when s[0..n) does not
 * start with one. */
size_t utf8_seq_len(const unsigned char *s, size_t n);

#endif
