/* engine_int.h - what the engine's files share (engine.c, engine_call.c,
 * engine_hold.c, engine_write.c); not for the modes (mode.h) nor anyone
 * outside the engine (engine.h). */
#ifndef DTMD_ENGINE_INT_H
#define DTMD_ENGINE_INT_H

#include "branch_call.h"
#include "engine.h"
#include "mode.h"
#include "trans_store.h"

typedef struct waiter {
    pass_done_cb *cb;
    void *arg;
    struct waiter *next;
} waiter;

/* One pass over a transaction: the mode decides (mode.h), the pass acts.
 *
 * Contract: every effect on the transaction is applied in memory and
 * persisted at once; the mode is asked again only when no write is pending,
 * so it never acts on a change that is not stored. The one exception is an
 * empty URL's success: nothing external happened for such a branch, so its
 * result fields wait in `pending` and ride along with the pass's next write.
 * If dtmd dies before that write, calling it again on recovery is harmless;
 * this saves a Redis round trip per empty branch. */
typedef struct pass {
    trans *t;
    const dtmd_config *cfg;
    const mode_ops *mode;
    mode_plan plan;
    int64_t due_ms;         /* the due index holds the transaction at least until then */
    int calls;              /* calls in flight */
    int writes;             /* store writes in flight */
    int stopped;            /* a write failed: finish as soon as nothing is in flight */
    int unknown;            /* a write failed without an answer: what is stored is unknown */
    int lost;               /* the hold is no longer this process's: write and call nothing */
    int stop_sent;          /* a requested stop is being stored (stop_apply) */
    int shard;              /* of the gid (keys.h) */
    char *err;              /* why it stopped */
    unsigned char *started; /* per branch: called during this pass */
    int *decided;           /* room for the calls of two decisions (mode_decision) */
    int cap;                /* branches that room is for */
    int special_called;     /* the special call was made in this pass */
    int postponed;          /* the mode's delay was stored in this pass */
    int retry_exhausted;    /* a retry was refused by retry_limit */
    char *fail_msg;         /* first FAILURE message of this pass (rollback reason) */
    branch_outcome halted;  /* a walk stopped on this outcome */
    char *halt_msg;
    char *last_err; /* last_error.h record of a failed call, not stored yet */
    int64_t started_ms;
    struct waiter *waiters;
    int rerun;          /* the stored status changed under the pass: run again when it ends */
    rargs pending;      /* result fields of empty-URL successes not written yet */
    struct pass *hnext; /* active-pass hash chain */
} pass;

typedef struct call_ctx {
    pass *p;
    int bi;
    const char *op, *url; /* of the request: the branch's, or the special call's */
    branch_call *call;
    double start;                 /* metrics_now() when asked for: the latency includes queueing */
    struct call_ctx *next, *prev; /* for cancellation at shutdown */
} call_ctx;

#define NBUCKETS 4096

typedef struct engine_state {
    struct event_base *base;
    const dtmd_config *cfg;
    pass *buckets[NBUCKETS];
    int active;
    call_ctx *calls;
    int stopping;
    /* Limits.MaxActivePasses: transactions parked in the store for want of
     * room, and who to tell when room comes back (cron.c's scanner). */
    int backlog;
    long long parked;
    void (*room_cb)(void);
} engine_state;

extern engine_state eng; /* engine.c */

/* engine.c: the pass table and lifecycle */
unsigned bucket_of(const char *gid);
pass *find_pass(const char *gid);
void pass_advance(pass *p);
void pass_finish(pass *p);
void pass_stop(pass *p, const char *why);
mode_pass view_of(const pass *p);

/* engine_call.c: branch calls */
int call_branch(pass *p, int bi);
void call_special(pass *p, const mode_decision *d);
void cancel_calls(pass *p);

/* engine_hold.c: holds, Limits.MaxActivePasses, stops asked elsewhere */
void hold_lease(pass *p);
int hold_live(pass *p);
void pass_stop_requested(pass *p);
int room_chunk(void);
int room_for(int n);

/* engine_write.c: what a pass stores */
void pass_write(pass *p, int expected_status, rargs *fields, int64_t due_ms, int finished);
void postpone(pass *p, int64_t until);
void set_status(pass *p, int status, const char *reason);
void take_result(pass *p, int bi, branch_outcome o, const char *body, size_t len, int deferred);

#endif
