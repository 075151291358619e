/* mode.h - the transaction modes as pure decisions (docs/modes.md).
 *
 * A mode (saga.c, msg.c, tcc.c for TCC and XA, workflow.c) only decides;
 * the engine (engine.c) acts: it starts the calls, persists every effect
 * before asking again, and changes the global status by compare-and-set.
 * A mode has two functions, neither doing I/O nor touching the store:
 *
 *   decide  the transaction as it stands and what the running pass knows
 *           -> the branches to call now, or the special call (msg
 *           query_prepared, workflow resume), or a delay, or a new global
 *           status with its reason; or nothing (the pass ends when nothing
 *           is in flight; the retry scanner comes back at the due time).
 *   result  a call's answer -> its effect: the branch's new status, retry
 *           counting, whether the walk halts, the message that goes with it.
 *
 * The engine's shortcuts are derived from decide, never restated:
 * mode_settle (a transaction finished at creation), mode_final_now (a
 * result stored together with the final status it leads to), and the
 * empty-URL successes the engine applies in memory and decides again on. */
#ifndef DTMD_MODE_H
#define DTMD_MODE_H

#include "branch_call.h"
#include "config.h"
#include "trans.h"
#include "util.h"

#include <stdint.h>

/* What a mode prepares once per pass from the transaction's custom_data, so
 * that neither decide nor result parses anything. Zeroed = nothing. */
typedef struct mode_plan {
    int concurrent;     /* saga: custom_data "concurrent" */
    int *dep_off;       /* saga "orders": deps of step i are deps[dep_off[i] .. dep_off[i+1]) */
    int *deps;          /* NULL (and dep_off NULL) without orders */
    int64_t delay_ms;   /* msg: custom_data "delay" */
    char *resume_op;    /* workflow resume call: the workflow name ... */
    char *resume_input; /* ... and its decoded input */
    size_t resume_len;
} mode_plan;

/* What the running pass knows beyond the transaction itself. */
typedef struct mode_pass {
    const dtmd_config *cfg;
    const mode_plan *plan;
    int64_t now;
    const unsigned char *started; /* per branch: nonzero = called in this pass */
    int calls;                    /* calls of the pass in flight */
    int special_called;           /* the special call was made in this pass */
    int postponed;                /* msg: the delay was stored in this pass */
    int halted;                   /* branch_outcome the walk halted on; BR_SUCCESS = none */
    int retry_exhausted;          /* saga: a retry was refused by retry_limit */
    const char *fail_msg;         /* saga: the first FAILURE answer's message, or NULL */
} mode_pass;

/* At most one of: calls, the special call, a delay, a status. */
typedef struct mode_decision {
    int *calls;  /* given by the caller, room for every branch */
    int ncalls;  /* branches to call now, in this order */
    int special; /* call special_url for the transaction itself */
    const char *special_url, *special_op, *special_body;
    size_t special_len;
    int64_t postpone_until; /* > 0: store this due time and wait for it */
    int status;             /* -1, or the new global status */
    const char *reason;     /* with status: the rollback reason, or NULL */
    char reason_buf[96];
} mode_decision;

/* The effect of one call's answer. bi is a branch, or -1 for the special
 * call. The message (halt, fail or status reason) is appended to text. */
typedef struct mode_effect {
    int branch_status;   /* -1: keep */
    int record;          /* store the result fields (docs/protocol.md#retries-and-back-off) */
    int retry;           /* retry_count + 1, and call the branch again in this pass */
    int retry_exhausted; /* a retry is refused: retry_limit is reached */
    int halt;            /* the walk stops here; text says why (wait_result) */
    int fail;            /* text is the rollback reason, if it is the pass's first */
    int base_interval;   /* next_cron_interval back to the base before storing */
    int status;          /* -1, or a global status to set instead (text: reason, if any) */
} mode_effect;

typedef struct mode_ops {
    /* Fill a zeroed plan; NULL when the mode needs none. */
    void (*plan)(mode_plan *pl, const trans *t);
    void (*decide)(const trans *t, const mode_pass *v, mode_decision *d);
    void (*result)(const trans *t, const mode_pass *v, int bi, branch_outcome o, const char *body,
                   size_t len, mode_effect *e, sbuf *text);
    /* Does a submit carry every branch the mode will call (saga, msg)? Only
     * then may mode_settle decide on the transaction before it is stored. */
    int settles;
} mode_ops;

extern const mode_ops saga_mode;     /* saga.c */
extern const mode_ops msg_mode;      /* msg.c */
extern const mode_ops tcc_mode;      /* tcc.c: try/confirm/cancel */
extern const mode_ops xa_mode;       /* tcc.c: commit/rollback */
extern const mode_ops workflow_mode; /* workflow.c */

const mode_ops *mode_for(int type);

void mode_plan_free(mode_plan *pl);

/* An empty decision whose calls go to calls[]. */
void mode_decision_init(mode_decision *d, int *calls);
/* An empty effect: keep the branch, record nothing. */
void mode_effect_init(mode_effect *e);

/* The pass's result just applied in memory, nothing else in flight: does
 * the mode's next decision set a final status without calling anything?
 * Returns that status (to store with the result in one write) or -1; d
 * holds the decision (its reason). */
int mode_final_now(const mode_ops *m, const trans *t, const mode_pass *v, mode_decision *d);

/* A transaction about to be stored by its submit: decide again and again
 * with every call to an empty URL succeeding in memory (no pass, no call).
 * If that ends in a final status with nothing left to call, apply it to t
 * (branches, status, times = now) and return 1; else leave t as it was and
 * return 0. */
int mode_settle(trans *t, const dtmd_config *cfg, int64_t now);

/* Helpers for the modes. */
void mode_call(mode_decision *d, int bi);
void mode_set_status(mode_decision *d, int status, const char *reason);
/* status ABORTING with "Timeout after N seconds". */
void mode_timeout(mode_decision *d, const trans *t, const dtmd_config *cfg);
/* The halt message: "url:<url> returned <OUTCOME>: <body, 1000 bytes at most>". */
void mode_halt_text(sbuf *text, const char *url, branch_outcome o, const char *body, size_t len);

#endif
