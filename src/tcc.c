/* tcc.c - TCC and XA pass logic (PROTOCOL.md 4.4, 4.5).
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
#include "modes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct phase2 {
    const char *commit, *rollback; /* op names */
    int reverse;                   /* walk from the last branch */
} phase2;

static const phase2 tcc_phase2 = {"confirm", "cancel", 1};
static const phase2 xa_phase2 = {"commit", "rollback", 0};

static const phase2 *phase_of(const pass *p) {
    return p->t->type == TT_XA ? &xa_phase2 : &tcc_phase2;
}

static void phase2_advance(pass *p) {
    trans *t = p->t;
    const phase2 *ph = phase_of(p);
    if (t->status == GS_PREPARED) {
        if (trans_timed_out(t, p->cfg, pass_now())) {
            char reason[128];
            snprintf(reason, sizeof reason, "Timeout after %lld seconds",
                     (long long)(trans_timeout_ms(t, p->cfg) / 1000));
            pass_set_status(p, GS_ABORTING, reason);
        }
        return;
    }
    if (t->status != GS_SUBMITTED && t->status != GS_ABORTING) return;
    if (p->calls > 0 || p->halted != BR_SUCCESS || !pass_can_launch(p)) return;
    const char *op = t->status == GS_SUBMITTED ? ph->commit : ph->rollback;
    for (int k = 0; k < t->nbranches; k++) {
        int i = ph->reverse ? t->nbranches - 1 - k : k;
        branch *b = &t->branches[i];
        if (strcmp(b->op, op) != 0 || b->status == BS_SUCCEED) continue;
        if (p->started[i]) return; /* called in this pass without success */
        pass_call(p, i);
        return;
    }
    pass_set_status(p, t->status == GS_SUBMITTED ? GS_SUCCEED : GS_FAILED, NULL);
}

static void phase2_on_result(pass *p, int bi, branch_outcome o, long status, const char *body,
                             size_t len) {
    (void)status;
    trans *t = p->t;
    if (o == BR_SUCCESS) {
        /* The last confirm/cancel: result and final status in one write, as
         * phase2_advance would set it right after persisting the result. */
        const phase2 *ph = phase_of(p);
        const char *op = t->status == GS_SUBMITTED ? ph->commit : ph->rollback;
        int last = pass_alone(p) && p->halted == BR_SUCCESS &&
                   (t->status == GS_SUBMITTED || t->status == GS_ABORTING) &&
                   strcmp(t->branches[bi].op, op) == 0;
        for (int i = 0; i < t->nbranches && last; i++)
            last = i == bi || strcmp(t->branches[i].op, op) != 0 ||
                   t->branches[i].status == BS_SUCCEED;
        if (last)
            pass_record_final(p, bi, BS_SUCCEED, o,
                              t->status == GS_SUBMITTED ? GS_SUCCEED : GS_FAILED);
        else
            pass_record_result(p, bi, BS_SUCCEED, o);
        return;
    }
    pass_halt(p, o, t->branches[bi].url, body, len);
    pass_record_result(p, bi, -1, o);
}

const pass_ops tcc_ops = {phase2_advance, phase2_on_result, NULL, NULL};
const pass_ops xa_ops = {phase2_advance, phase2_on_result, NULL, NULL};
