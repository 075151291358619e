/* saga.c - SAGA pass logic (PROTOCOL.md 4.2).
 *
 * Storage order per step i is [compensate, action] (branch 2i and 2i+1).
 * Forward phase: call every action that is prepared and runnable (its
 * predecessor, or in a concurrent saga its "orders" prerequisites, have
 * succeeded). When nothing is in flight: all actions succeeded -> succeed;
 * an action answered FAILURE, the saga timed out or retry_limit ran out ->
 * aborting. Compensation phase: every step whose action may have run gets
 * its compensate called, from the last step backwards (in a concurrent saga:
 * after every step that depends on it is rolled back); all done -> failed. */
#include "log.h"
#include "modes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct saga_state {
    int nsteps;
    int concurrent;
    int *dep_off; /* deps of step i: deps[dep_off[i] .. dep_off[i+1]) */
    int *deps;
    int retry_exhausted;
} saga_state;

#define COMP(i) (2 * (i))
#define ACT(i) (2 * (i) + 1)

/* Parse custom_data once per pass. It was validated at submit time, so a
 * malformed value here can only come from a foreign writer: treat it as a
 * plain sequential saga rather than wedge the transaction. */
static saga_state *state_of(pass *p) {
    if (p->mode) return p->mode;
    saga_state *s = xcalloc(1, sizeof *s);
    trans *t = p->t;
    s->nsteps = t->nbranches / 2;
    s->dep_off = xcalloc((size_t)s->nsteps + 1, sizeof(int));
    yajl_val root = NULL, orders = NULL;
    if (t->custom_data && t->custom_data[0]) {
        char err[64];
        root = json_parse(t->custom_data, strlen(t->custom_data), err, sizeof err);
        yajl_val c = json_field(root, "concurrent");
        s->concurrent = c && YAJL_IS_TRUE(c);
        orders = json_field(root, "orders");
        if (orders && !YAJL_IS_OBJECT(orders)) orders = NULL;
    }
    if (!orders) { /* the usual saga: no dependencies to lay out */
        if (root) json_free(root);
        p->mode = s;
        return s;
    }
    /* Count then fill (CSR layout). */
    int total = 0;
    int *count = xcalloc((size_t)s->nsteps + 1, sizeof(int));
    for (size_t k = 0; k < orders->u.object.len; k++) {
        int64_t step;
        yajl_val d = orders->u.object.values[k];
        if (parse_i64(orders->u.object.keys[k], &step) || step < 0 || step >= s->nsteps ||
            !YAJL_IS_ARRAY(d))
            continue;
        count[step] += (int)d->u.array.len;
        total += (int)d->u.array.len;
    }
    for (int i = 0; i < s->nsteps; i++) s->dep_off[i + 1] = s->dep_off[i] + count[i];
    s->deps = xcalloc((size_t)total + 1, sizeof(int));
    memset(count, 0, sizeof(int) * ((size_t)s->nsteps + 1));
    for (size_t k = 0; k < orders->u.object.len; k++) {
        int64_t step;
        yajl_val d = orders->u.object.values[k];
        if (parse_i64(orders->u.object.keys[k], &step) || step < 0 || step >= s->nsteps ||
            !YAJL_IS_ARRAY(d))
            continue;
        for (size_t j = 0; j < d->u.array.len; j++) {
            yajl_val x = d->u.array.values[j];
            int dep = YAJL_IS_INTEGER(x) ? (int)YAJL_GET_INTEGER(x) : -1;
            s->deps[s->dep_off[step] + count[step]++] = dep;
        }
    }
    free(count);
    if (root) json_free(root);
    p->mode = s;
    return s;
}

static void saga_free_state(void *mode) {
    saga_state *s = mode;
    free(s->dep_off);
    free(s->deps);
    free(s);
}

static int act_status(const pass *p, int i) {
    return p->t->branches[ACT(i)].status;
}

static int runnable(pass *p, saga_state *s, int i) {
    if (!s->concurrent && i > 0 && act_status(p, i - 1) != BS_SUCCEED) return 0;
    for (int k = s->dep_off[i]; k < s->dep_off[i + 1]; k++) {
        int d = s->deps[k];
        if (d < 0 || d >= s->nsteps || act_status(p, d) != BS_SUCCEED) return 0;
    }
    return 1;
}

/* May the action of step i have run? Then its compensate is needed. */
static int comp_needed(pass *p, saga_state *s, int i) {
    return act_status(p, i) != BS_PREPARED || p->started[ACT(i)] || runnable(p, s, i);
}

static int rolled_back(pass *p, saga_state *s, int i) {
    return !comp_needed(p, s, i) || p->t->branches[COMP(i)].status == BS_SUCCEED;
}

static int rollback_ready(pass *p, saga_state *s, int i) {
    if (!s->concurrent) return i == s->nsteps - 1 || rolled_back(p, s, i + 1);
    for (int k = 0; k < s->nsteps; k++) {
        for (int j = s->dep_off[k]; j < s->dep_off[k + 1]; j++)
            if (s->deps[j] == i && !rolled_back(p, s, k)) return 0;
    }
    return 1;
}

static void forward(pass *p, saga_state *s) {
    trans *t = p->t;
    int any_failed = 0, all_ok = 1;
    for (int i = 0; i < s->nsteps; i++) {
        if (act_status(p, i) == BS_FAILED) any_failed = 1;
        if (act_status(p, i) != BS_SUCCEED) all_ok = 0;
    }
    int timed_out = trans_timed_out(t, p->cfg, pass_now());
    if (!any_failed && !timed_out && !s->retry_exhausted) {
        for (int i = 0; i < s->nsteps && pass_can_launch(p); i++) {
            if (act_status(p, i) == BS_PREPARED && !p->started[ACT(i)] && runnable(p, s, i))
                pass_call(p, ACT(i));
        }
    }
    if (p->calls > 0 || p->writes > 0) return;
    char reason[512];
    if (any_failed) {
        pass_set_status(p, GS_ABORTING, p->fail_msg ? p->fail_msg : "fail message lost");
    } else if (timed_out) {
        snprintf(reason, sizeof reason, "Timeout after %lld seconds",
                 (long long)(trans_timeout_ms(t, p->cfg) / 1000));
        pass_set_status(p, GS_ABORTING, reason);
    } else if (s->retry_exhausted) {
        snprintf(reason, sizeof reason, "RetryCount is greater than RetryLimit, RetryLimit: %lld",
                 (long long)t->retry_limit);
        pass_set_status(p, GS_ABORTING, reason);
    } else if (all_ok) {
        pass_set_status(p, GS_SUCCEED, NULL);
    }
    /* else: some action is ONGOING or erroring; the scanner comes back. */
}

static void compensate(pass *p, saga_state *s) {
    trans *t = p->t;
    for (int i = s->nsteps - 1; i >= 0 && pass_can_launch(p); i--) {
        branch *c = &t->branches[COMP(i)];
        if (c->status == BS_PREPARED && !p->started[COMP(i)] && comp_needed(p, s, i) &&
            rollback_ready(p, s, i))
            pass_call(p, COMP(i));
    }
    if (p->calls > 0 || p->writes > 0) return;
    for (int i = 0; i < s->nsteps; i++)
        if (!rolled_back(p, s, i)) return; /* a compensate is failing: retry later */
    pass_set_status(p, GS_FAILED, NULL);
}

static void saga_advance(pass *p) {
    saga_state *s = state_of(p);
    if (p->t->status == GS_SUBMITTED)
        forward(p, s);
    else if (p->t->status == GS_ABORTING)
        compensate(p, s);
}

/* Would a success of branch bi end the saga (forward: every action
 * succeeded; rollback: every step rolled back), with nothing else of the pass
 * in flight? Then forward() / compensate() would set the final status right
 * after persisting the result: both go in one write (pass_record_final). The
 * conditions mirror those functions. */
static int success_ends(pass *p, saga_state *s, int bi) {
    trans *t = p->t;
    branch *b = &t->branches[bi];
    int forward_phase = bi == ACT(bi / 2);
    if (!pass_alone(p) || t->status != (forward_phase ? GS_SUBMITTED : GS_ABORTING)) return 0;
    if (forward_phase && (s->retry_exhausted || trans_timed_out(t, p->cfg, pass_now()))) return 0;
    int was = b->status, ends = 1;
    b->status = BS_SUCCEED;
    for (int i = 0; i < s->nsteps && ends; i++)
        ends = forward_phase ? act_status(p, i) == BS_SUCCEED : rolled_back(p, s, i);
    b->status = was;
    return ends;
}

static void saga_on_result(pass *p, int bi, branch_outcome o, long status, const char *body,
                           size_t len) {
    (void)status;
    trans *t = p->t;
    branch *b = &t->branches[bi];
    saga_state *s = state_of(p);
    if (o == BR_SUCCESS && success_ends(p, s, bi)) {
        pass_record_final(p, bi, BS_SUCCEED, o, t->status == GS_SUBMITTED ? GS_SUCCEED : GS_FAILED);
        return;
    }
    if (strcmp(b->op, "action") != 0) {
        pass_record_result(p, bi, o == BR_SUCCESS ? BS_SUCCEED : -1, o);
        return;
    }
    if (o == BR_SUCCESS) {
        pass_record_result(p, bi, BS_SUCCEED, o);
    } else if (o == BR_FAILURE) {
        if (!p->fail_msg) {
            sbuf m;
            sb_init(&m);
            sb_printf(&m, "url:%s return failed: %.*s", b->url, (int)(len > 1000 ? 1000 : len),
                      body);
            /* dtm's reason always ends " FAILURE", added unless already there */
            if (m.len < 8 || memcmp(m.ptr + m.len - 8, " FAILURE", 8) != 0) sb_puts(&m, " FAILURE");
            p->fail_msg = sb_detach(&m);
        }
        pass_record_result(p, bi, BS_FAILED, o);
    } else {
        if (t->retry_limit > 0) {
            if (t->retry_count < t->retry_limit) {
                t->retry_count++;
                p->started[bi] = 0; /* call it again in this pass */
            } else {
                s->retry_exhausted = 1;
            }
        }
        pass_record_result(p, bi, -1, o);
    }
}

/* A new saga whose actions all have empty URLs: forward() would "call"
 * each (an instant success), find them all succeeded and set succeed. */
static int saga_settle_new(trans *t, const dtmd_config *cfg, int64_t now) {
    return t->status == GS_SUBMITTED && !trans_timed_out(t, cfg, now) &&
           pass_settle_actions(t, now);
}

const pass_ops saga_ops = {saga_advance, saga_on_result, saga_free_state, saga_settle_new};
