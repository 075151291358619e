/* msg.c - two-phase message pass logic (PROTOCOL.md 4.3).
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
#include "log.h"
#include "modes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct msg_state {
    int queried;    /* query_prepared was called in this pass */
    int delay_done; /* the delay check ran (once per pass) */
    int blocked;    /* sequential delivery stopped at a non-success */
} msg_state;

static msg_state *state_of(pass *p) {
    if (!p->mode) p->mode = xcalloc(1, sizeof(msg_state));
    return p->mode;
}

/* custom_data "delay" in ms; validated at create time, so anything odd here
 * (a foreign writer) counts as no delay rather than a wedged msg. */
static int64_t delay_ms(const trans *t) {
    if (!t->custom_data || !t->custom_data[0]) return 0;
    char err[64];
    yajl_val root = json_parse(t->custom_data, strlen(t->custom_data), err, sizeof err);
    yajl_val d = json_field(root, "delay");
    int64_t ms =
        d && YAJL_IS_INTEGER(d) && YAJL_GET_INTEGER(d) > 0 ? YAJL_GET_INTEGER(d) * 1000 : 0;
    if (root) json_free(root);
    return ms;
}

/* Still inside the delay: push the due time to its end and stop. */
static int delayed(pass *p) {
    trans *t = p->t;
    int64_t d = delay_ms(t), now = pass_now();
    if (d <= 0 || now - t->create_ms >= d) return 0;
    t->next_cron_ms = t->create_ms + d;
    t->update_ms = now;
    rargs f;
    ra_init(&f);
    ra_adds(&f, "next_cron_time");
    ra_addi(&f, t->next_cron_ms);
    ra_adds(&f, "update_time");
    ra_addi(&f, now);
    log_debug("gid %s: msg delayed until %lld", t->gid, (long long)t->next_cron_ms);
    pass_write(p, t->status, &f, t->next_cron_ms, 0);
    return 1;
}

static void deliver(pass *p, msg_state *s) {
    trans *t = p->t;
    int all_ok = 1;
    for (int i = 0; i < t->nbranches; i++) {
        branch *b = &t->branches[i];
        if (strcmp(b->op, "action") != 0 || b->status == BS_SUCCEED) continue;
        all_ok = 0;
        if (s->blocked || !pass_can_launch(p)) break;
        if (!p->started[i]) {
            pass_call(p, i);
            if (!t->concurrent) break; /* wait for it before the next one */
        } else if (!t->concurrent) {
            break; /* called in this pass and not succeeded (or still in flight) */
        }
    }
    if (all_ok && p->calls == 0 && p->writes == 0) pass_set_status(p, GS_SUCCEED, NULL);
}

static void msg_advance(pass *p) {
    trans *t = p->t;
    msg_state *s = state_of(p);
    if (t->status == GS_PREPARED) {
        if (!s->queried && p->calls == 0 && trans_timed_out(t, p->cfg, pass_now())) {
            s->queried = 1;
            pass_call_special(p, t->query_prepared, "msg", NULL, 0);
        }
        return;
    }
    if (t->status != GS_SUBMITTED) return;
    if (!s->delay_done) {
        s->delay_done = 1;
        if (delayed(p)) {
            s->blocked = 1;
            return;
        }
    }
    deliver(p, s);
}

static void msg_on_result(pass *p, int bi, branch_outcome o, long status, const char *body,
                          size_t len) {
    (void)status;
    trans *t = p->t;
    msg_state *s = state_of(p);
    if (bi < 0) { /* query_prepared */
        if (o == BR_SUCCESS) {
            pass_set_status(p, GS_SUBMITTED, NULL);
        } else if (o == BR_FAILURE) {
            sbuf m;
            sb_init(&m);
            sb_printf(&m, "query_prepared %s returned FAILURE: %.*s", t->query_prepared,
                      (int)(len > 1000 ? 1000 : len), body);
            pass_set_status(p, GS_FAILED, m.ptr);
            sb_free(&m);
        } else {
            if (o == BR_ERROR) pass_halt(p, o, t->query_prepared, body, len);
            /* ONGOING: the application is still deciding; ask again after the
             * base interval, even if errors had backed it off (dtm). */
            if (o == BR_ONGOING) t->next_cron_interval_ms = trans_base_interval_ms(t, p->cfg);
            pass_record_result(p, -1, -1, o);
        }
        return;
    }
    if (o == BR_SUCCESS) {
        /* The last delivery: result and succeed in one write, as deliver()
         * would set succeed right after persisting it. */
        int last = pass_alone(p) && t->status == GS_SUBMITTED;
        for (int i = 0; i < t->nbranches && last; i++)
            last = i == bi || strcmp(t->branches[i].op, "action") != 0 ||
                   t->branches[i].status == BS_SUCCEED;
        if (last)
            pass_record_final(p, bi, BS_SUCCEED, o, GS_SUCCEED);
        else
            pass_record_result(p, bi, BS_SUCCEED, o);
        return;
    }
    if (!t->concurrent) s->blocked = 1;
    if (o != BR_ONGOING) pass_halt(p, o, t->branches[bi].url, body, len);
    pass_record_result(p, bi, -1, o);
}

/* A new submitted msg without a delay whose actions all have empty URLs:
 * deliver() would "call" each (an instant success) and set succeed. */
static int msg_settle_new(trans *t, const dtmd_config *cfg, int64_t now) {
    (void)cfg;
    return t->status == GS_SUBMITTED && delay_ms(t) == 0 && pass_settle_actions(t, now);
}

const pass_ops msg_ops = {msg_advance, msg_on_result, free, msg_settle_new};
