/* msg.c - two-phase message decisions (docs/modes.md#msg).
 *
 * A msg is prepared by the application before its local transaction and
 * submitted after it commits. If the application dies in between, the msg
 * stays prepared; once it is older than its timeout, the pass asks the
 * application's query_prepared URL what became of the local transaction:
 * SUCCESS -> submitted (and delivered in the same pass), FAILURE -> failed,
 * ONGOING or an error -> ask again later.
 *
 * A submitted msg (after custom_data "delay" seconds, if any) delivers every
 * action branch: in storage order, stopping at the first one that does not
 * succeed, or all at once when "concurrent". Delivery cannot fail: a branch
 * answering FAILURE is retried like an error until it succeeds. */
#include "mode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* custom_data "delay" in ms; validated at create time, so anything odd here
 * (a foreign writer) counts as no delay rather than a wedged msg. */
static void msg_plan(mode_plan *pl, const trans *t) {
    if (!t->custom_data || !t->custom_data[0]) return;
    char err[64];
    yajl_val root = json_parse(t->custom_data, strlen(t->custom_data), err, sizeof err);
    yajl_val d = json_field(root, "delay");
    if (d && YAJL_IS_INTEGER(d) && YAJL_GET_INTEGER(d) > 0)
        pl->delay_ms = YAJL_GET_INTEGER(d) * 1000;
    if (root) json_free(root);
}

static void deliver(const trans *t, const mode_pass *v, mode_decision *d) {
    int all_ok = 1;
    for (int i = 0; i < t->nbranches; i++) {
        const branch *b = &t->branches[i];
        if (strcmp(b->op, "action") != 0 || b->status == BS_SUCCEED) continue;
        all_ok = 0;
        if (v->postponed) break; /* waiting for the delay */
        if (!v->started[i]) {
            mode_call(d, i);
            if (!t->concurrent) break; /* wait for it before the next one */
        } else if (!t->concurrent) {
            break; /* called in this pass and not succeeded (or still in flight) */
        }
    }
    if (all_ok && v->calls == 0) mode_set_status(d, GS_SUCCEED, NULL);
}

static void msg_decide(const trans *t, const mode_pass *v, mode_decision *d) {
    if (t->status == GS_PREPARED) {
        if (!v->special_called && v->calls == 0 && trans_timed_out(t, v->cfg, v->now)) {
            d->special = 1;
            d->special_url = t->query_prepared;
            d->special_op = "msg";
        }
        return;
    }
    if (t->status != GS_SUBMITTED) return;
    /* Still inside the delay: the due time goes to its end, nothing more. */
    int64_t delay = v->plan->delay_ms;
    if (!v->postponed && delay > 0 && v->now - t->create_ms < delay) {
        d->postpone_until = t->create_ms + delay;
        return;
    }
    deliver(t, v, d);
}

static void msg_result(const trans *t, const mode_pass *v, int bi, branch_outcome o,
                       const char *body, size_t len, mode_effect *e, sbuf *text) {
    (void)v;
    if (bi < 0) { /* query_prepared */
        if (o == BR_SUCCESS) {
            e->status = GS_SUBMITTED;
        } else if (o == BR_FAILURE) {
            e->status = GS_FAILED;
            sb_printf(text, "query_prepared %s returned FAILURE: %.*s", t->query_prepared,
                      (int)(len > 1000 ? 1000 : len), body);
        } else {
            e->record = 1;
            if (o == BR_ERROR) {
                e->halt = 1;
                mode_halt_text(text, t->query_prepared, o, body, len);
            }
            /* ONGOING: the application is still deciding; ask again after the
             * base interval, even if errors had backed it off (dtm). */
            if (o == BR_ONGOING) e->base_interval = 1;
        }
        return;
    }
    e->record = 1;
    if (o == BR_SUCCESS) {
        e->branch_status = BS_SUCCEED;
        return;
    }
    if (o != BR_ONGOING) {
        e->halt = 1;
        mode_halt_text(text, t->branches[bi].url, o, body, len);
    }
}

const mode_ops msg_mode = {msg_plan, msg_decide, msg_result, 1};
