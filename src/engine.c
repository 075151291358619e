/* engine.c - the pass table and a pass's lifecycle: start (drive), the
 * mode's decisions (pass_advance), the end (pass_finish, rerun), cancel.
 *
 * Ownership: a pass owns its trans and everything hanging off it; it lives
 * in the active table from engine_drive until pass_finish, which calls every
 * waiter exactly once and frees it all. Branch calls and store writes hold a
 * pointer to the pass; the pass cannot finish while any is in flight
 * (calls/writes counters), so those pointers never dangle. At shutdown the
 * calls are cancelled and the store fails pending writes, which drains it.
 * The branch calls are engine_call.c's, the holds engine_hold.c's, what a
 * pass stores engine_write.c's (engine_int.h). */
#include "engine_int.h"

#include "keys.h"
#include "log.h"
#include "metrics.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

engine_state eng;

static void drive(trans *t, waiter *waiters);

unsigned bucket_of(const char *gid) {
    return (unsigned)key_shard(gid, strlen(gid), NBUCKETS);
}

pass *find_pass(const char *gid) {
    for (pass *p = eng.buckets[bucket_of(gid)]; p; p = p->hnext)
        if (strcmp(p->t->gid, gid) == 0) return p;
    return NULL;
}

int engine_active(const char *gid) {
    return find_pass(gid) != NULL;
}

int engine_active_count(void) {
    return eng.active;
}

/* Free the pass and everything it owns except its trans and waiters. */
static void pass_free(pass *p) {
    mode_plan_free(&p->plan);
    ra_free(&p->pending);
    free(p->decided); /* started too */
    free(p->fail_msg);
    free(p->halt_msg);
    free(p->last_err);
    free(p->err);
    free(p);
}

static void notify(waiter *w, const trans *t, const pass_end *e) {
    while (w) {
        waiter *next = w->next;
        w->cb(w->arg, t, e);
        free(w);
        w = next;
    }
}

/* A rerun reloads the transaction as stored now and drives it again; the
 * waiters hear the outcome of that new pass. */
typedef struct rerun_ctx {
    trans *old; /* as the ended pass left it: answers the waiters on failure */
    waiter *waiters;
} rerun_ctx;

static void rerun_loaded(void *arg, tstore_reply *reply, const char *err) {
    rerun_ctx *r = arg;
    trans *t = err ? NULL : reply->t;
    if (t) reply->t = NULL;
    if (t && !eng.stopping) {
        t->hold_epoch = r->old->hold_epoch; /* the same hold, if still ours */
        trans_free(r->old);
        drive(t, r->waiters);
    } else {
        trans_free(t);
        pass_end e = {err            ? err
                      : eng.stopping ? "shutting down"
                                     : "transaction vanished",
                      BR_SUCCESS, NULL, 1};
        notify(r->waiters, r->old, &e);
        trans_free(r->old);
    }
    free(r);
}

static void lease_given_back(void *arg, tstore_reply *reply, const char *err) {
    (void)arg, (void)reply;
    if (err) log_debug("giving a lease back failed: %s", err);
}

void pass_finish(pass *p) {
    pass **pp = &eng.buckets[bucket_of(p->t->gid)];
    while (*pp && *pp != p) pp = &(*pp)->hnext;
    if (*pp) *pp = p->hnext;
    eng.active--;
    if (eng.backlog && !eng.stopping && eng.room_cb && room_for(room_chunk())) {
        /* Parked work waits in the store: let the scanner fetch it now, not
         * at its next tick. Not on every freed slot, so that one scan takes
         * a useful batch. */
        eng.backlog = 0;
        eng.room_cb();
    }
    log_debug("gid %s: pass ends, status %s%s%s", p->t->gid, global_status_name(p->t->status),
              p->err ? ", stopped: " : "", p->err ? p->err : "");
    if (p->rerun && !eng.stopping) {
        /* A request changed the stored status while this pass ran (e.g. a
         * submit during a msg check-back): this pass's CAS failed or it saw
         * the old state, so run again on what is stored now. */
        log_debug("gid %s: status changed during the pass, running again", p->t->gid);
        rerun_ctx *r = xcalloc(1, sizeof *r);
        r->old = p->t;
        r->waiters = p->waiters;
        tstore_load(p->t->gid, rerun_loaded, r);
        pass_free(p);
        return;
    }
    if (!global_status_final(p->t->status) && !eng.stopping && !p->lost &&
        p->t->lease_until_ms > now_ms())
        /* Unfinished: give the hold back, so a repeated submit or abort may
         * drive it at once (its due time stays the retry time). */
        tstore_lease_move(p->t->gid, "", p->t->lease_until_ms, 0, lease_given_back, NULL);
    metrics_trans(trans_type_name(p->t->type), !p->err && p->halted == BR_SUCCESS,
                  (double)(now_ms() - p->t->create_ms) / 1000.0);
    pass_end e = {p->err, p->halted, p->halt_msg, p->unknown};
    notify(p->waiters, p->t, &e);
    trans_free(p->t);
    pass_free(p);
}

void pass_stop(pass *p, const char *why) {
    if (!p->stopped) {
        p->stopped = 1;
        p->err = xstrdup(why);
        log_warn("gid %s: pass stopped: %s", p->t->gid, why);
    }
}

void engine_cancel(const char *gid, int status, const char *why) {
    pass *p = find_pass(gid);
    if (!p) return;
    cancel_calls(p);
    pass_stop(p, why);
    /* What the request stored; writes of the pass still in flight fail
     * their compare-and-set on it. */
    p->t->status = status;
    free(p->t->rollback_reason);
    p->t->rollback_reason = xstrdup(why);
    p->rerun = 0;
    if (p->calls == 0 && p->writes == 0) pass_finish(p);
}

mode_pass view_of(const pass *p) {
    mode_pass v = {
        .cfg = p->cfg,
        .plan = &p->plan,
        .now = now_ms(),
        .started = p->started,
        .calls = p->calls,
        .special_called = p->special_called,
        .postponed = p->postponed,
        .halted = p->halted,
        .retry_exhausted = p->retry_exhausted,
        .fail_msg = p->fail_msg,
    };
    return v;
}

/* Ask the mode what to do now and start it. Returns 1 when all it did was
 * apply empty-URL successes in memory: the mode must be asked again, as the
 * end of their writes would have made us do. */
static int run_decision(pass *p) {
    mode_pass v = view_of(p);
    mode_decision d;
    mode_decision_init(&d, p->decided);
    p->mode->decide(p->t, &v, &d);
    if (d.status >= 0) {
        set_status(p, d.status, d.reason);
        return 0;
    }
    if (d.postpone_until > 0) {
        p->postponed = 1;
        postpone(p, d.postpone_until);
        return 0;
    }
    if (d.special) {
        p->special_called = 1;
        call_special(p, &d);
        return 0;
    }
    int again = 0;
    /* A call that cannot start writes its error at once: launch no more
     * until that is stored. */
    for (int k = 0; k < d.ncalls && !p->stopped && p->writes == 0; k++)
        again |= call_branch(p, d.calls[k]);
    return again && p->writes == 0;
}

/* Called after every asynchronous event of the pass. Bounded: each round of
 * the loop needs a branch not called before in this pass. */
void pass_advance(pass *p) {
    if (p->writes > 0) return;
    while (!p->stopped && !eng.stopping && run_decision(p)) {
    }
    if (p->calls == 0 && p->writes == 0 && p->pending.argc > 0 && !p->stopped && !eng.stopping) {
        /* Nothing else to write: store the deferred results on their own. */
        rargs none;
        ra_init(&none);
        pass_write(p, p->t->status, &none, 0, 0);
        return;
    }
    if (p->calls == 0 && p->writes == 0) pass_finish(p);
}

void engine_drive(trans *t, pass_done_cb *done, void *arg) {
    waiter *w = NULL;
    if (done) {
        w = xcalloc(1, sizeof *w);
        w->cb = done;
        w->arg = arg;
    }
    drive(t, w);
}

/* Start a pass over t with these waiters, or join the running one. */
static void drive(trans *t, waiter *waiters) {
    pass *p = find_pass(t->gid);
    if (p) {
        /* The caller saw a different status than the running pass (it just
         * changed it): that pass may act on stale state, so it runs again. */
        if (t->status != p->t->status) p->rerun = 1;
        waiter **tail = &p->waiters;
        while (*tail) tail = &(*tail)->next;
        *tail = waiters;
        trans_free(t);
        return;
    }
    p = xcalloc(1, sizeof *p);
    p->t = t;
    p->due_ms = t->next_cron_ms; /* a cron lease may hold it longer: conservative */
    p->cfg = eng.cfg;
    p->shard = key_shard(t->gid, strlen(t->gid), eng.cfg->store_shards);
    p->mode = mode_for(t->type);
    if (p->mode->plan) p->mode->plan(&p->plan, t);
    p->started_ms = now_ms();
    int cap = t->nbranches > 0 ? t->nbranches : 1;
    /* One block: room for two decisions' calls, then the started flags. */
    p->cap = cap;
    p->decided = xcalloc((size_t)cap, 2 * sizeof *p->decided + 1);
    p->started = (unsigned char *)(p->decided + 2 * cap);
    p->waiters = waiters;
    ra_init(&p->pending);
    unsigned b = bucket_of(t->gid);
    p->hnext = eng.buckets[b];
    eng.buckets[b] = p;
    eng.active++;
    log_debug("gid %s: pass starts, %s %s", t->gid, trans_type_name(t->type),
              global_status_name(t->status));
    if (t->stop_recorded) {
        /* A request ended it while another process held it, and that one
         * died before storing the stop: store it now, calling nothing. */
        pass_stop_requested(p);
        if (p->calls == 0 && p->writes == 0) pass_finish(p);
        return;
    }
    pass_advance(p);
}

int engine_settle_new(trans *t, int64_t now) {
    if (!mode_settle(t, eng.cfg, now)) return 0;
    t->lease_until_ms = 0; /* no pass will hold it */
    return 1;
}

void engine_settled(const trans *t) {
    log_info("gid %s: stored as %s at once: every branch to call has an empty URL", t->gid,
             global_status_name(t->status));
    metrics_trans(trans_type_name(t->type), t->status == GS_SUCCEED,
                  (double)(now_ms() - t->create_ms) / 1000.0);
}

int engine_init(struct event_base *base, const dtmd_config *cfg) {
    memset(&eng, 0, sizeof eng);
    eng.base = base;
    eng.cfg = cfg;
    return 0;
}

void engine_shutdown(void) {
    eng.stopping = 1;
    /* Cancel calls; each pass then finishes once its writes drain (the store
     * fails them when it shuts down). */
    while (eng.calls) {
        call_ctx *c = eng.calls;
        eng.calls = c->next;
        branch_call_cancel(c->call);
        pass *p = c->p;
        free(c);
        p->calls--;
        pass_stop(p, "shutting down");
        if (p->calls == 0 && p->writes == 0) pass_finish(p);
    }
}
