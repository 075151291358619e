/* transition.h - which request may change which stored transaction: the one
 * table of the API's state transitions (docs/requests.md).
 *
 * A request names a transaction type; the stored transaction has a type and
 * a status. Every endpoint that acts on a stored transaction looks its row up
 * here, and hands the row's expected type and statuses to the Lua script that
 * makes the change: the script re-checks both atomically with the write
 * (another dtmd may be racing), so this table is the only place a rule lives
 * and the store is the only place it is enforced. The passes' own status
 * changes (a mode's decision) are compare-and-set on the status they read. */
#ifndef DTMD_TRANSITION_H
#define DTMD_TRANSITION_H

typedef enum {
    RQ_SUBMIT,           /* submit of a stored gid (a new gid is simply stored) */
    RQ_PREPARE,          /* prepare of a stored gid: idempotent while prepared */
    RQ_ABORT,            /* abort: by the stored type */
    RQ_REGISTER,         /* registerBranch */
    RQ_WORKFLOW_SUBMIT,  /* submit of a workflow: the outcome the SDK reached */
    RQ_PREPARE_WORKFLOW, /* prepareWorkflow of a stored gid: answers its progress */
    RQ_FORCE_STOP,       /* forceStop: any type */
    RQ_RESET_CRON,       /* resetNextCronTime: any type */
    RQ_COUNT
} trans_request;

/* What a request does to a stored transaction of one type. */
typedef struct transition {
    const char *from; /* stored statuses it may act on, a comma list as the scripts take it */
    int to;           /* new global status; -1: unchanged; -2: given by the request (workflow) */
    int drive;        /* then run a pass over it at once */
    int cancel;       /* then end this process's calls of it (a final status was stored) */
} transition;

/* The row for request rq on a transaction of type type, or NULL when that
 * request does not apply to that type at all (answered 400). */
const transition *transition_find(trans_request rq, int type);

const char *trans_request_name(trans_request rq); /* "submit", "abort", ... */

typedef enum {
    TV_OK = 0,
    TV_NOT_FOUND,  /* 404 */
    TV_WRONG_TYPE, /* 400: the request names another type than the stored one */
    TV_NO_SUCH,    /* 400: the request does not apply to the stored type */
    TV_CONFLICT    /* 409: the stored status does not allow it */
} transition_verdict;

/* The check a script makes, for answers that write nothing (prepare of a
 * stored gid) and for unit tests: req_type -1 = the request names none (it
 * then applies by the stored type). */
transition_verdict transition_check(trans_request rq, int req_type, int stored_type,
                                    int stored_status);

/* May a stored status be listed in row->from? */
int transition_allows(const transition *row, int stored_status);

#endif
