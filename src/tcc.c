/* tcc.c - TCC and XA decisions (docs/modes.md#tcc-and-xa).
 *
 * Both modes are a second phase over branches the application registered
 * while the transaction was prepared: TCC stores [cancel, confirm] per
 * branch, XA [rollback, commit] (one URL told the op by the query string).
 * Submitted -> call every confirm/commit; aborting -> every cancel/rollback;
 * prepared past its timeout -> aborting first. Calls are made one at a time:
 * TCC walks from the last registered branch to the first (for confirm too,
 * as dtm does), XA from first to last. The walk stops at the first call that
 * does not succeed; second-phase ops must not fail, so FAILURE is retried
 * like an error until it succeeds. All done -> succeed / failed. */
#include "mode.h"

#include <string.h>

typedef struct phase2 {
    const char *commit, *rollback; /* op names */
    int reverse;                   /* walk from the last branch */
} phase2;

static const phase2 tcc_phase2 = {"confirm", "cancel", 1};
static const phase2 xa_phase2 = {"commit", "rollback", 0};

static void phase2_decide(const trans *t, const mode_pass *v, mode_decision *d) {
    const phase2 *ph = t->type == TT_XA ? &xa_phase2 : &tcc_phase2;
    if (t->status == GS_PREPARED) {
        if (trans_timed_out(t, v->cfg, v->now)) mode_timeout(d, t, v->cfg);
        return;
    }
    if (t->status != GS_SUBMITTED && t->status != GS_ABORTING) return;
    if (v->calls > 0 || v->halted != BR_SUCCESS) return;
    const char *op = t->status == GS_SUBMITTED ? ph->commit : ph->rollback;
    for (int k = 0; k < t->nbranches; k++) {
        int i = ph->reverse ? t->nbranches - 1 - k : k;
        const branch *b = &t->branches[i];
        if (strcmp(b->op, op) != 0 || b->status == BS_SUCCEED) continue;
        if (!v->started[i]) mode_call(d, i);
        return; /* one at a time; called in this pass without success: later */
    }
    mode_set_status(d, t->status == GS_SUBMITTED ? GS_SUCCEED : GS_FAILED, NULL);
}

static void phase2_result(const trans *t, const mode_pass *v, int bi, branch_outcome o,
                          const char *body, size_t len, mode_effect *e, sbuf *text) {
    (void)v;
    e->record = 1;
    if (o == BR_SUCCESS) {
        e->branch_status = BS_SUCCEED;
        return;
    }
    e->halt = 1;
    mode_halt_text(text, bi >= 0 ? t->branches[bi].url : NULL, o, body, len);
}

const mode_ops tcc_mode = {NULL, phase2_decide, phase2_result, 0};
const mode_ops xa_mode = {NULL, phase2_decide, phase2_result, 0};
