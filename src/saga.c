/* saga.c - SAGA decisions (docs/modes.md#saga).
 *
 * Storage order per step i is [compensate, action] (branch 2i and 2i+1).
 * Forward phase: call every action that is prepared and runnable (its
 * predecessor, or in a concurrent saga its "orders" prerequisites, have
 * succeeded). When nothing is in flight: all actions succeeded -> succeed;
 * an action answered FAILURE, the saga timed out or retry_limit ran out ->
 * aborting. Compensation phase: every step whose action may have run gets
 * its compensate called, from the last step backwards (in a concurrent saga:
 * after every step that depends on it is rolled back); all done -> failed. */
#include "mode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMP(i) (2 * (i))
#define ACT(i) (2 * (i) + 1)

/* Parse custom_data once per pass. It was validated at submit time, so a
 * malformed value here can only come from a foreign writer: treat it as a
 * plain sequential saga rather than wedge the transaction. */
static void saga_plan(mode_plan *pl, const trans *t) {
    if (!t->custom_data || !t->custom_data[0]) return;
    int nsteps = t->nbranches / 2;
    char err[64];
    yajl_val root = json_parse(t->custom_data, strlen(t->custom_data), err, sizeof err);
    yajl_val c = json_field(root, "concurrent");
    pl->concurrent = c && YAJL_IS_TRUE(c);
    yajl_val orders = json_field(root, "orders");
    if (!orders || !YAJL_IS_OBJECT(orders)) { /* the usual saga: no dependencies */
        if (root) json_free(root);
        return;
    }
    /* Count then fill (CSR layout). */
    int total = 0;
    pl->dep_off = xcalloc((size_t)nsteps + 1, sizeof(int));
    int *count = xcalloc((size_t)nsteps + 1, sizeof(int));
    for (size_t k = 0; k < orders->u.object.len; k++) {
        int64_t step;
        yajl_val d = orders->u.object.values[k];
        if (parse_i64(orders->u.object.keys[k], &step) || step < 0 || step >= nsteps ||
            !YAJL_IS_ARRAY(d))
            continue;
        count[step] += (int)d->u.array.len;
        total += (int)d->u.array.len;
    }
    for (int i = 0; i < nsteps; i++) pl->dep_off[i + 1] = pl->dep_off[i] + count[i];
    pl->deps = xcalloc((size_t)total + 1, sizeof(int));
    memset(count, 0, sizeof(int) * ((size_t)nsteps + 1));
    for (size_t k = 0; k < orders->u.object.len; k++) {
        int64_t step;
        yajl_val d = orders->u.object.values[k];
        if (parse_i64(orders->u.object.keys[k], &step) || step < 0 || step >= nsteps ||
            !YAJL_IS_ARRAY(d))
            continue;
        for (size_t j = 0; j < d->u.array.len; j++) {
            yajl_val x = d->u.array.values[j];
            int dep = YAJL_IS_INTEGER(x) ? (int)YAJL_GET_INTEGER(x) : -1;
            pl->deps[pl->dep_off[step] + count[step]++] = dep;
        }
    }
    free(count);
    json_free(root);
}

/* The steps that step i waits for: deps[*from .. *to). */
static void deps_of(const mode_plan *pl, int i, int *from, int *to) {
    *from = pl->dep_off ? pl->dep_off[i] : 0;
    *to = pl->dep_off ? pl->dep_off[i + 1] : 0;
}

static int act_status(const trans *t, int i) {
    return t->branches[ACT(i)].status;
}

static int runnable(const trans *t, const mode_plan *pl, int i) {
    if (!pl->concurrent && i > 0 && act_status(t, i - 1) != BS_SUCCEED) return 0;
    int from, to, nsteps = t->nbranches / 2;
    deps_of(pl, i, &from, &to);
    for (int k = from; k < to; k++) {
        int d = pl->deps[k];
        if (d < 0 || d >= nsteps || act_status(t, d) != BS_SUCCEED) return 0;
    }
    return 1;
}

/* May the action of step i have run? Then its compensate is needed. */
static int comp_needed(const trans *t, const mode_pass *v, int i) {
    return act_status(t, i) != BS_PREPARED || v->started[ACT(i)] || runnable(t, v->plan, i);
}

static int rolled_back(const trans *t, const mode_pass *v, int i) {
    return !comp_needed(t, v, i) || t->branches[COMP(i)].status == BS_SUCCEED;
}

static int rollback_ready(const trans *t, const mode_pass *v, int i) {
    int nsteps = t->nbranches / 2;
    if (!v->plan->concurrent) return i == nsteps - 1 || rolled_back(t, v, i + 1);
    for (int k = 0; k < nsteps; k++) {
        int from, to;
        deps_of(v->plan, k, &from, &to);
        for (int j = from; j < to; j++)
            if (v->plan->deps[j] == i && !rolled_back(t, v, k)) return 0;
    }
    return 1;
}

static void forward(const trans *t, const mode_pass *v, mode_decision *d) {
    int nsteps = t->nbranches / 2, any_failed = 0, all_ok = 1;
    for (int i = 0; i < nsteps; i++) {
        if (act_status(t, i) == BS_FAILED) any_failed = 1;
        if (act_status(t, i) != BS_SUCCEED) all_ok = 0;
    }
    int timed_out = trans_timed_out(t, v->cfg, v->now);
    if (!any_failed && !timed_out && !v->retry_exhausted) {
        for (int i = 0; i < nsteps; i++)
            if (act_status(t, i) == BS_PREPARED && !v->started[ACT(i)] && runnable(t, v->plan, i))
                mode_call(d, ACT(i));
    }
    /* The outcome waits for every call in flight. */
    if (d->ncalls > 0 || v->calls > 0) return;
    if (any_failed) {
        mode_set_status(d, GS_ABORTING, v->fail_msg ? v->fail_msg : "fail message lost");
    } else if (timed_out) {
        mode_timeout(d, t, v->cfg);
    } else if (v->retry_exhausted) {
        snprintf(d->reason_buf, sizeof d->reason_buf,
                 "RetryCount is greater than RetryLimit, RetryLimit: %lld",
                 (long long)t->retry_limit);
        mode_set_status(d, GS_ABORTING, d->reason_buf);
    } else if (all_ok) {
        mode_set_status(d, GS_SUCCEED, NULL);
    }
    /* else: some action is ONGOING or erroring; the scanner comes back. */
}

static void compensate(const trans *t, const mode_pass *v, mode_decision *d) {
    int nsteps = t->nbranches / 2;
    for (int i = nsteps - 1; i >= 0; i--) {
        const branch *c = &t->branches[COMP(i)];
        if (c->status == BS_PREPARED && !v->started[COMP(i)] && comp_needed(t, v, i) &&
            rollback_ready(t, v, i))
            mode_call(d, COMP(i));
    }
    if (d->ncalls > 0 || v->calls > 0) return;
    for (int i = 0; i < nsteps; i++)
        if (!rolled_back(t, v, i)) return; /* a compensate is failing: retry later */
    mode_set_status(d, GS_FAILED, NULL);
}

static void saga_decide(const trans *t, const mode_pass *v, mode_decision *d) {
    if (t->status == GS_SUBMITTED)
        forward(t, v, d);
    else if (t->status == GS_ABORTING)
        compensate(t, v, d);
}

static void saga_result(const trans *t, const mode_pass *v, int bi, branch_outcome o,
                        const char *body, size_t len, mode_effect *e, sbuf *text) {
    e->record = 1;
    if (o == BR_SUCCESS) {
        e->branch_status = BS_SUCCEED;
        return;
    }
    /* A compensate must not fail: anything but success is retried later. */
    if (bi < 0 || strcmp(t->branches[bi].op, "action") != 0) return;
    if (o == BR_FAILURE) {
        e->branch_status = BS_FAILED;
        if (!v->fail_msg) {
            e->fail = 1;
            size_t at = text->len;
            sb_printf(text, "url:%s return failed: %.*s", t->branches[bi].url,
                      (int)(len > 1000 ? 1000 : len), body);
            /* dtm's reason always ends " FAILURE", added unless already there */
            if (text->len - at < 8 || memcmp(text->ptr + text->len - 8, " FAILURE", 8) != 0)
                sb_puts(text, " FAILURE");
        }
        return;
    }
    if (t->retry_limit > 0) {
        if (t->retry_count < t->retry_limit)
            e->retry = 1; /* call it again in this pass */
        else
            e->retry_exhausted = 1;
    }
}

const mode_ops saga_mode = {saga_plan, saga_decide, saga_result, 1};
