/* mode.c - what the modes share, and the shortcuts derived from their
 * decisions (mode.h). */
#include "mode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const mode_ops *mode_for(int type) {
    switch (type) {
        case TT_MSG:
            return &msg_mode;
        case TT_TCC:
            return &tcc_mode;
        case TT_XA:
            return &xa_mode;
        case TT_WORKFLOW:
            return &workflow_mode;
        default:
            return &saga_mode;
    }
}

void mode_plan_free(mode_plan *pl) {
    free(pl->dep_off);
    free(pl->deps);
    free(pl->resume_op);
    free(pl->resume_input);
    memset(pl, 0, sizeof *pl);
}

void mode_decision_init(mode_decision *d, int *calls) {
    d->calls = calls;
    d->ncalls = 0;
    d->special = 0;
    d->special_url = d->special_op = d->special_body = NULL;
    d->special_len = 0;
    d->postpone_until = 0;
    d->status = -1;
    d->reason = NULL;
    d->reason_buf[0] = '\0';
}

void mode_effect_init(mode_effect *e) {
    memset(e, 0, sizeof *e);
    e->branch_status = -1;
    e->status = -1;
}

void mode_call(mode_decision *d, int bi) {
    d->calls[d->ncalls++] = bi;
}

void mode_set_status(mode_decision *d, int status, const char *reason) {
    d->status = status;
    d->reason = reason;
}

void mode_timeout(mode_decision *d, const trans *t, const dtmd_config *cfg) {
    snprintf(d->reason_buf, sizeof d->reason_buf, "Timeout after %lld seconds",
             (long long)(trans_timeout_ms(t, cfg) / 1000));
    mode_set_status(d, GS_ABORTING, d->reason_buf);
}

void mode_halt_text(sbuf *text, const char *url, branch_outcome o, const char *body, size_t len) {
    sb_printf(text, "url:%s returned %s: %.*s", url ? url : "", branch_outcome_name(o),
              (int)(len > 1000 ? 1000 : len), body ? body : "");
}

static int only_final(const mode_decision *d) {
    return d->ncalls == 0 && !d->special && d->postpone_until <= 0 && d->status >= 0 &&
           global_status_final(d->status);
}

int mode_final_now(const mode_ops *m, const trans *t, const mode_pass *v, mode_decision *d) {
    m->decide(t, v, d);
    return only_final(d) ? d->status : -1;
}

/* Apply an empty URL's success to branch bi in memory, as the engine would
 * (without times: they are set once the outcome is known). Returns 0 if the
 * effect is more than a new branch status: nothing to settle then. */
static int settle_success(const mode_ops *m, trans *t, const mode_pass *v, int bi) {
    mode_effect e;
    mode_effect_init(&e);
    sbuf text;
    sb_init(&text);
    m->result(t, v, bi, BR_SUCCESS, "", 0, &e, &text);
    sb_free(&text);
    if (e.status >= 0 || e.retry || e.retry_exhausted || e.halt || e.fail) return 0;
    if (e.branch_status >= 0) t->branches[bi].status = e.branch_status;
    return 1;
}

int mode_settle(trans *t, const dtmd_config *cfg, int64_t now) {
    const mode_ops *m = mode_for(t->type);
    if (!m->settles) return 0;
    enum { SMALL = 64 };
    unsigned char small_seen[SMALL];
    int small_calls[SMALL];
    size_t n = t->nbranches > 0 ? (size_t)t->nbranches : 1;
    /* seen[i]: 0 = not called, else branch i's status before + 1, to undo. */
    unsigned char *seen = n <= SMALL ? small_seen : xmalloc(n);
    int *calls = n <= SMALL ? small_calls : xmalloc(n * sizeof *calls);
    memset(seen, 0, n);
    mode_plan pl;
    memset(&pl, 0, sizeof pl);
    if (m->plan) m->plan(&pl, t);
    mode_pass v = {.cfg = cfg, .plan = &pl, .now = now, .started = seen, .halted = BR_SUCCESS};
    mode_decision d;
    int status = -1;
    for (;;) {
        mode_decision_init(&d, calls);
        m->decide(t, &v, &d);
        if (d.ncalls == 0) {
            if (only_final(&d)) status = d.status;
            break;
        }
        int k = 0;
        while (k < d.ncalls && !t->branches[d.calls[k]].url[0]) k++;
        if (k < d.ncalls) break; /* a real call is needed */
        for (k = 0; k < d.ncalls; k++) {
            int bi = d.calls[k];
            seen[bi] = (unsigned char)(t->branches[bi].status + 1);
            if (!settle_success(m, t, &v, bi)) break;
        }
        if (k < d.ncalls) break;
    }
    for (int i = 0; i < t->nbranches; i++) {
        if (!seen[i]) continue;
        branch *b = &t->branches[i];
        if (status < 0) {
            b->status = seen[i] - 1;
        } else {
            b->finish_ms = b->update_ms = now;
        }
    }
    if (status >= 0) {
        t->status = status;
        t->update_ms = now;
        if (status == GS_SUCCEED) t->finish_ms = now;
        if (status == GS_FAILED) t->rollback_ms = now;
        if (d.reason) {
            free(t->rollback_reason);
            t->rollback_reason = xstrdup(d.reason);
        }
    }
    mode_plan_free(&pl);
    if (seen != small_seen) free(seen);
    if (calls != small_calls) free(calls);
    return status >= 0;
}
