/* outcome.h - what one branch call came to, as dtm classifies it: shared by
 * the plain HTTP (branch_request.c) and JSON-RPC (jsonrpc.c) classifiers. */
#ifndef DTMD_OUTCOME_H
#define DTMD_OUTCOME_H

typedef enum { BR_SUCCESS = 0, BR_FAILURE, BR_ONGOING, BR_ERROR } branch_outcome;

#endif
