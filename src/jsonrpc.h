/* jsonrpc.h - dtm's JSON-RPC 2.0 protocol, both sides.
 *
 * Server: POST /api/json-rpc takes {"jsonrpc":"2.0","id":<string>,"method",
 * "params"} for newGid, prepare, submit, abort and registerBranch
 * (api_jsonrpc.c) and always answers HTTP 200 with {"error","id","jsonrpc",
 * "result"}: a FAILURE is error code -32901, anything else that went wrong
 * -32603 (dtm's server has no ONGOING code), a bad envelope -32700 / -32600 /
 * -32601. Branches: a transaction with "protocol":"json-rpc" has each
 * branch URL that contains "method" called with a JSON-RPC request (POST to
 * the URL as it is; the payload object plus gid, trans_type, branch_id and op
 * as params), whose answer's error code -32901 / -32902 means FAILURE /
 * ONGOING. */
#ifndef DTMD_JSONRPC_H
#define DTMD_JSONRPC_H

#include "outcome.h"

#include <stddef.h>

#define JSONRPC_FAILURE (-32901)
#define JSONRPC_ONGOING (-32902)
#define JSONRPC_PARSE_ERROR (-32700)
#define JSONRPC_INVALID_REQUEST (-32600)
#define JSONRPC_NO_METHOD (-32601)
#define JSONRPC_INTERNAL (-32603)

/* The JSON-RPC answer to request id for what an endpoint answered over HTTP
 * (code, JSON body): 200 -> result (the body without dtm_result; null when
 * nothing is left); 409 -> error -32901; other codes -> error -32603; the
 * message is the body's. Returns a malloc'd string. */
char *jsonrpc_answer(const char *id, int http_code, const char *body);

/* An error answer for a request that reached no endpoint. */
char *jsonrpc_error(const char *id, int code, const char *message);

/* Does a transaction of this protocol call url with JSON-RPC (dtm: protocol
 * "json-rpc" and "method" anywhere in the URL)? */
int jsonrpc_branch_url(const char *protocol, const char *url);

/* The request body of a JSON-RPC branch call: method is the URL's query
 * parameter "method" (may be empty), params the payload's object with gid,
 * trans_type, branch_id and op set, id a fresh random one. Returns a
 * malloc'd string and its length, or NULL with a message in err when the
 * payload is not a JSON object (dtm cannot call such a branch either). */
char *jsonrpc_branch_body(const char *url, const char *payload, size_t payload_len, const char *gid,
                          const char *trans_type, const char *branch_id, const char *op,
                          size_t *out_len, char *err, size_t errlen);

/* The outcome of a JSON-RPC branch answer that HTTP classed as success:
 * error code -32901 FAILURE, -32902 ONGOING, any other error or a body that
 * is not JSON ERROR, else SUCCESS. */
branch_outcome jsonrpc_classify(const char *body, size_t len);

#endif
