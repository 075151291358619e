/* engine_write.c - what a pass stores: a call's result and the mode's
 * effect, a global status change, a delay; every write one cas_update
 * (trans_store.h) fenced by the pass's hold. */
#include "engine_int.h"

#include "backoff.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void write_done(void *arg, tstore_reply *r, const char *err) {
    pass *p = arg;
    p->writes--;
    if (err) {
        p->unknown = 1;
        pass_stop(p, err);
    } else if (r->tag == TS_BAD) {
        p->unknown = 1;
        pass_stop(p, "unexpected reply from cas_update");
    } else if (r->tag == TS_LOST) {
        p->lost = 1;
        pass_stop(p, "another process took the transaction over");
    } else if (r->tag == TS_STOP) {
        pass_stop_requested(p);
    } else if (r->tag != TS_OK) {
        char why[160];
        snprintf(why, sizeof why, "status changed by another writer (%s %s)", r->tag_text,
                 r->status);
        int cur = global_status_parse(r->status);
        if (cur >= 0) p->t->status = cur;
        pass_stop(p, why);
    }
    pass_advance(p);
}

/* Persist fields (name/value pairs) with a CAS on expected_status (the
 * status before the in-memory change). due_ms: 0 = leave the due index,
 * -1 = remove (finished), else the new due time. */
void pass_write(pass *p, int expected_status, rargs *fields, int64_t due_ms, int finished) {
    /* While other calls of the pass run, do not shorten the lease they hold. */
    if (due_ms > 0 && p->calls > 0 && due_ms < p->due_ms) due_ms = p->due_ms;
    if (due_ms > 0) p->due_ms = due_ms;
    tstore_cas c = {
        .gid = p->t->gid,
        .type = trans_type_name(p->t->type),
        .from = global_status_name(expected_status),
        .due_ms = due_ms,
        .ttl_s = finished ? p->cfg->finished_data_expire : 0,
        .pass = 1,
        .fenced = p->t->hold_epoch != 0, /* by the hold this pass took (none taken: not) */
        .hold = p->t->lease_until_ms,
        .first = &p->pending, /* deferred fields */
        /* Out of 'prepared', where registerBranch adds branches: only with
         * every branch this pass knows (a timed-out TCC must cancel all). */
        .check_nb = expected_status == GS_PREPARED,
        .nb = p->t->nbranches,
    };
    p->writes++;
    tstore_cas_update(&c, fields, write_done, p);
    ra_free(&p->pending);
    ra_init(&p->pending);
}

/* The fields of a branch result (docs/protocol.md#retries-and-back-off); updates memory. */
static void result_fields(pass *p, int bi, int new_status, branch_outcome o, rargs *f) {
    trans *t = p->t;
    branch *b = bi >= 0 ? &t->branches[bi] : NULL;
    int64_t now = now_ms();
    int64_t base = trans_base_interval_ms(t, p->cfg);
    int64_t max = (int64_t)(p->cfg->retry_max_interval * 1000);
    if (t->next_cron_interval_ms <= 0) t->next_cron_interval_ms = base;
    switch (o) {
        case BR_SUCCESS:
            t->next_cron_interval_ms = base;
            break;
        case BR_ONGOING:
            break;
        case BR_FAILURE:
            /* A saga action's FAILURE is a result; other ops must not fail:
             * for them it is an error, retried with back-off. */
            if (new_status != BS_FAILED)
                t->next_cron_interval_ms = backoff_next(t->next_cron_interval_ms, max);
            break;
        case BR_ERROR:
            t->next_cron_interval_ms = backoff_next(t->next_cron_interval_ms, max);
            break;
    }
    /* Every call to be made again counts (saga's retry_limit reads it). */
    if (o == BR_ERROR || o == BR_ONGOING || (o == BR_FAILURE && new_status != BS_FAILED))
        t->retry_count++;
    if (p->last_err) { /* why it is not done yet rides along with this write */
        trans_set(f, TF_LAST_ERROR, p->last_err);
        free(t->last_error);
        t->last_error = p->last_err;
        p->last_err = NULL;
    }
    t->next_cron_ms = now + t->next_cron_interval_ms;
    t->update_ms = now;
    if (b && new_status >= 0 && new_status != b->status) {
        b->status = new_status;
        b->finish_ms = now;
        b->update_ms = now;
        trans_set_branch_state(f, t, bi);
    }
    trans_set_time(f, t, TF_UPDATE_TIME, now);
    trans_set_time(f, t, TF_NEXT_CRON_TIME, t->next_cron_ms);
    trans_set_int(f, TF_NEXT_CRON_INTERVAL, t->next_cron_interval_ms);
    if (t->retry_count) trans_set_int(f, TF_RETRY_COUNT, t->retry_count); /* it only grows */
}

/* The fields of a global status change; updates memory. Returns whether
 * the status is final; *due: the due index argument of pass_write. */
static int status_fields(pass *p, int status, const char *reason, rargs *f, int64_t *due) {
    trans *t = p->t;
    int from = t->status;
    int64_t now = now_ms();
    t->status = status;
    t->update_ms = now;
    trans_set(f, TF_STATUS, global_status_name(status));
    trans_set_time(f, t, TF_UPDATE_TIME, now);
    if (reason) {
        free(t->rollback_reason);
        t->rollback_reason = xstrdup(reason);
        trans_set(f, TF_ROLLBACK_REASON, reason);
    }
    if (status == GS_SUCCEED) {
        t->finish_ms = now;
        trans_set_time(f, t, TF_FINISH_TIME, now);
    } else if (status == GS_FAILED) {
        t->rollback_ms = now;
        trans_set_time(f, t, TF_ROLLBACK_TIME, now);
    }
    log_info("gid %s: %s -> %s%s%s", t->gid, global_status_name(from), global_status_name(status),
             reason ? ": " : "", reason ? reason : "");
    int finished = global_status_final(status);
    if (finished) {
        *due = -1;
    } else {
        /* Not finished: make sure the scanner comes back if this process dies. */
        t->next_cron_ms = now + trans_base_interval_ms(t, p->cfg);
        *due = t->next_cron_ms;
        trans_set_time(f, t, TF_NEXT_CRON_TIME, *due);
    }
    return finished;
}

/* Change the global status (CAS from the current in-memory status), with an
 * optional rollback reason; finishing statuses leave the due index and get
 * the finished TTL. */
void set_status(pass *p, int status, const char *reason) {
    int from = p->t->status;
    int64_t due;
    rargs f;
    ra_init(&f);
    int finished = status_fields(p, status, reason, &f, &due);
    pass_write(p, from, &f, due, finished);
}

/* The mode waits until `until` (msg delay): the due time moves there. */
void postpone(pass *p, int64_t until) {
    trans *t = p->t;
    t->next_cron_ms = until;
    t->update_ms = now_ms();
    rargs f;
    ra_init(&f);
    trans_set_time(&f, t, TF_NEXT_CRON_TIME, t->next_cron_ms);
    trans_set_time(&f, t, TF_UPDATE_TIME, t->update_ms);
    log_debug("gid %s: delayed until %lld", t->gid, (long long)t->next_cron_ms);
    pass_write(p, t->status, &f, t->next_cron_ms, 0);
}

/* A call's answer (bi = -1: the special call): apply the mode's effect in
 * memory, then persist it. deferred: an empty URL's success, whose fields
 * wait for the pass's next write. When nothing else of the pass is in
 * flight and the mode's next decision is a final status with nothing to
 * call, the result and that status go in ONE write: a Redis round trip
 * saved per transaction, and both are stored before anything acts on them. */
void take_result(pass *p, int bi, branch_outcome o, const char *body, size_t len, int deferred) {
    trans *t = p->t;
    mode_pass v = view_of(p);
    mode_effect e;
    mode_effect_init(&e);
    sbuf text;
    sb_init(&text);
    p->mode->result(t, &v, bi, o, body, len, &e, &text);
    if (e.retry && bi >= 0) p->started[bi] = 0; /* result_fields counts it in retry_count */
    if (e.retry_exhausted) p->retry_exhausted = 1;
    if (e.halt && p->halted == BR_SUCCESS) {
        p->halted = o;
        p->halt_msg = xstrdup(text.ptr ? text.ptr : "");
    }
    if (e.fail && !p->fail_msg) p->fail_msg = xstrdup(text.ptr ? text.ptr : "");
    if (e.base_interval) t->next_cron_interval_ms = trans_base_interval_ms(t, p->cfg);
    int from = t->status;
    rargs f;
    ra_init(&f);
    if (e.record) result_fields(p, bi, e.branch_status, o, &f);
    if (deferred && e.status < 0) {
        for (int i = 0; i < f.argc; i++) ra_add(&p->pending, f.argv[i], f.lens[i]);
        ra_free(&f);
        sb_free(&text);
        return;
    }
    int status = e.status;
    const char *reason = status >= 0 && text.len ? text.ptr : NULL;
    mode_decision d;
    if (status < 0 && e.record && !p->stopped && p->calls == 0 && p->writes == 0) {
        /* Its own room for calls: run_decision may be walking the first. */
        mode_decision_init(&d, p->decided + p->cap);
        v = view_of(p);
        status = mode_final_now(p->mode, t, &v, &d);
        reason = d.reason;
    }
    int64_t due = t->next_cron_ms;
    int finished = 0;
    if (status >= 0) finished = status_fields(p, status, reason, &f, &due);
    if (f.argc > 0)
        pass_write(p, from, &f, due, finished);
    else
        ra_free(&f);
    sb_free(&text);
}
