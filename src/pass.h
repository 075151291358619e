/* pass.h - what the mode modules (saga.c, msg.c, tcc.c, workflow.c) see of
 * a running pass. Internal to the engine; not used by the API layer.
 *
 * Contract: mode code mutates the in-memory transaction and immediately
 * persists the change with pass_write / pass_record_result. It must not act
 * on a change before it is persisted: advance() is only called when no write
 * is pending (pass_idle), and launch loops check pass_can_launch. */
#ifndef DTMD_PASS_H
#define DTMD_PASS_H

#include "branch_call.h"
#include "engine.h"

typedef struct pass pass;

typedef struct pass_ops {
    /* Look at the state and start calls / status changes. Doing nothing
     * while nothing is in flight ends the pass. */
    void (*advance)(pass *p);
    /* A branch call finished: update memory and persist (pass_record_result). */
    void (*on_result)(pass *p, int bi, branch_outcome o, long status, const char *body, size_t len);
    /* Free p->mode (mode-private state); NULL if the mode keeps none. */
    void (*free_mode)(void *mode);
    /* A new transaction about to be stored: would its first pass end at once
     * without calling anything (every branch it would call has an empty URL,
     * which succeeds without a call)? Then apply that pass's outcome to t in
     * memory and return 1: it is stored finished, in one write and without a
     * pass (engine_settle_new). NULL: the mode never settles at creation. */
    int (*settle_new)(trans *t, const dtmd_config *cfg, int64_t now);
} pass_ops;

struct pass {
    trans *t;
    const dtmd_config *cfg;
    const pass_ops *ops;
    sbuf key, due_key;
    int64_t due_ms;         /* the due index holds the transaction at least until then */
    int calls;              /* branch calls in flight */
    int writes;             /* store writes in flight */
    int stopped;            /* a write failed: finish as soon as nothing is in flight */
    int unknown;            /* a write failed without an answer: what is stored is unknown */
    char *err;              /* why it stopped */
    unsigned char *started; /* per branch: called during this pass */
    branch_outcome *last;   /* per branch: outcome of the last call in this pass */
    char *fail_msg;         /* first FAILURE message of this pass (rollback reason) */
    branch_outcome halted;  /* a walk stopped on this outcome (pass_halt) */
    char *halt_msg;
    char *last_err; /* last_error.h record of the latest call that did not succeed, not stored yet */
    int64_t started_ms;
    struct waiter *waiters;
    int rerun; /* the stored status changed under the pass: run again when it ends */
    /* Fields of empty-URL successes not written yet: they ride along with
     * the pass's next write (pass_write). Nothing external happened for such
     * a branch, so if dtmd dies before that write, calling it again on
     * recovery is harmless; this saves a Redis round trip per empty branch
     * (a 2-step saga with empty URLs: 4 -> 2 round trips). */
    rargs pending;
    int empty_call;     /* bi + 1 while pass_call reports an empty URL's success */
    int deferred;       /* advance() deferred such a result: advance again */
    struct pass *hnext; /* active-pass hash chain */
    void *mode;         /* mode-private state */
};

/* Start calling branch bi (op URL, payload, headers of the transaction). An
 * empty URL succeeds at once. on_result is called when it completes. */
void pass_call(pass *p, int bi);

/* Call url for the transaction itself rather than a branch (msg
 * query_prepared, workflow resume): branch_id "00", the given op, body sent
 * verbatim (GET when empty). on_result gets bi = -1. */
void pass_call_special(pass *p, const char *url, const char *op, const char *body, size_t len);

/* The mode stops walking its branches because a call did not succeed; the
 * outcome and message reach wait_result callers (PROTOCOL.md 5.5). */
void pass_halt(pass *p, branch_outcome o, const char *url, const char *body, size_t len);

/* Persist fields (name/value pairs) with a CAS on expected_status (the status
 * before the in-memory change). due_ms: 0 = leave the due index, -1 = remove
 * (finished), else the new due time. */
void pass_write(pass *p, int expected_status, rargs *fields, int64_t due_ms, int finished);

/* Persist a branch call result per PROTOCOL.md 5.1: branch status (pass
 * new_status = -1 to keep), next_cron_interval / next_cron_time by outcome,
 * retry_count. Updates memory as well. bi = -1: a special call (no branch). */
void pass_record_result(pass *p, int bi, int new_status, branch_outcome o);

/* pass_record_result and pass_set_status(status, NULL) in ONE atomic write,
 * for a result that ends the transaction (the last saga action or
 * compensation, the last msg delivery, the last TCC/XA confirm/cancel).
 * Saves a Redis round trip per transaction; both are persisted together
 * before anything acts on them, so the contract above holds. */
void pass_record_final(pass *p, int bi, int new_status, branch_outcome o, int status);

/* May a branch result just received end the transaction in the same write:
 * no other call or write of the pass is in flight and it is not stopped. */
static inline int pass_alone(const pass *p) {
    return !p->stopped && p->calls == 0 && p->writes == 0;
}

/* Change the global status (CAS from the current in-memory status), with an
 * optional rollback reason; finishing statuses leave the due index and get
 * the finished TTL. */
void pass_set_status(pass *p, int status, const char *reason);

static inline int pass_can_launch(const pass *p) {
    return !p->stopped && p->writes == 0;
}

/* For settle_new: if every action branch of t has an empty URL, mark them
 * all succeeded at now and return 1; else change nothing and return 0. */
int pass_settle_actions(trans *t, int64_t now);

/* now, as the pass sees it */
int64_t pass_now(void);

#endif
