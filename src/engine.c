/* engine.c - pass lifecycle, branch calls, result persistence.
 *
 * Ownership: a pass owns its trans and everything hanging off it; it lives
 * in the active table from engine_drive until pass_finish, which calls every
 * waiter exactly once and frees it all. Branch calls and store writes hold a
 * pointer to the pass; the pass cannot finish while any is in flight
 * (calls/writes counters), so those pointers never dangle. At shutdown the
 * calls are cancelled and the store fails pending writes, which drains it. */
#include "engine.h"

#include "alert.h"
#include "backoff.h"
#include "jsonrpc.h"
#include "keys.h"
#include "last_error.h"
#include "liveness.h"
#include "log.h"
#include "metrics.h"
#include "mode.h"
#include "trans_store.h"

#include <event2/event.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct waiter {
    pass_done_cb *cb;
    void *arg;
    struct waiter *next;
} waiter;

/* One pass over a transaction: the mode decides (mode.h), the pass acts.
 *
 * Contract: every effect on the transaction is applied in memory and
 * persisted at once; the mode is asked again only when no write is pending,
 * so it never acts on a change that is not stored. The one exception is an
 * empty URL's success: nothing external happened for such a branch, so its
 * result fields wait in `pending` and ride along with the pass's next write.
 * If dtmd dies before that write, calling it again on recovery is harmless;
 * this saves a Redis round trip per empty branch. */
typedef struct pass {
    trans *t;
    const dtmd_config *cfg;
    const mode_ops *mode;
    mode_plan plan;
    int64_t due_ms;         /* the due index holds the transaction at least until then */
    int calls;              /* calls in flight */
    int writes;             /* store writes in flight */
    int stopped;            /* a write failed: finish as soon as nothing is in flight */
    int unknown;            /* a write failed without an answer: what is stored is unknown */
    int lost;               /* the hold is no longer this process's: write and call nothing */
    int stop_sent;          /* a requested stop is being stored (stop_apply) */
    int shard;              /* of the gid (keys.h) */
    char *err;              /* why it stopped */
    unsigned char *started; /* per branch: called during this pass */
    int *decided;           /* room for the calls of two decisions (mode_decision) */
    int cap;                /* branches that room is for */
    int special_called;     /* the special call was made in this pass */
    int postponed;          /* the mode's delay was stored in this pass */
    int retry_exhausted;    /* a retry was refused by retry_limit */
    char *fail_msg;         /* first FAILURE message of this pass (rollback reason) */
    branch_outcome halted;  /* a walk stopped on this outcome */
    char *halt_msg;
    char *last_err; /* last_error.h record of a failed call, not stored yet */
    int64_t started_ms;
    struct waiter *waiters;
    int rerun;          /* the stored status changed under the pass: run again when it ends */
    rargs pending;      /* result fields of empty-URL successes not written yet */
    struct pass *hnext; /* active-pass hash chain */
} pass;

typedef struct call_ctx {
    pass *p;
    int bi;
    const char *op, *url; /* of the request: the branch's, or the special call's */
    branch_call *call;
    double start;                 /* metrics_now() when asked for: the latency includes queueing */
    struct call_ctx *next, *prev; /* for cancellation at shutdown */
} call_ctx;

#define NBUCKETS 4096

static struct {
    struct event_base *base;
    const dtmd_config *cfg;
    pass *buckets[NBUCKETS];
    int active;
    call_ctx *calls;
    int stopping;
    /* Limits.MaxActivePasses: transactions parked in the store for want of
     * room, and who to tell when room comes back (cron.c's scanner). */
    int backlog;
    long long parked;
    void (*room_cb)(void);
} eng;

static unsigned bucket_of(const char *gid) {
    return (unsigned)key_shard(gid, strlen(gid), NBUCKETS);
}

static pass *find_pass(const char *gid) {
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

static void drive(trans *t, waiter *waiters);
static void pass_stop(pass *p, const char *why);
static void pass_advance(pass *p);
static void set_status(pass *p, int status, const char *reason);
static void postpone(pass *p, int64_t until);
static void call_special(pass *p, const mode_decision *d);
static int call_branch(pass *p, int bi);
static void take_result(pass *p, int bi, branch_outcome o, const char *body, size_t len,
                        int deferred);
static void pass_write(pass *p, int expected_status, rargs *fields, int64_t due_ms, int finished);

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

/* ---- Limits.MaxActivePasses --------------------------------------------
 *
 * Every pass keeps its transaction in memory (steps, payloads, branch
 * calls): about 2 kB, plus a curl handle while a call runs. Transactions
 * whose branches hang (a service down, RequestTimeout long) would otherwise
 * pile up without bound; past the limit, a transaction is left in the store
 * instead, due at once and held by nobody ("parked"), and the retry scanner
 * (of this or any process sharing the store) drives it when there is room.
 * Its record is already complete there, so parking loses nothing and costs
 * one Redis round trip to park plus the scanner's two to resume.
 * wait_result requests are never parked: a client waits on them, and their
 * number is bounded by the client connections. */

static int limit_active(void) {
    return eng.cfg ? eng.cfg->max_active_passes : 0;
}

static int room_for(int n) {
    return limit_active() < 1 || eng.active + n <= limit_active();
}

/* Room that makes a scan worth it: an eighth of the limit. */
static int room_chunk(void) {
    int n = limit_active() / 8;
    return n > 0 ? n : 1;
}

int engine_has_room(void) {
    return room_for(1);
}

int engine_room(void) {
    if (limit_active() < 1) return INT_MAX;
    return eng.active < limit_active() ? limit_active() - eng.active : 0;
}

static void parked_back(void *arg, tstore_reply *reply, const char *err) {
    char *gid = arg;
    (void)reply;
    /* Nothing is lost either way: if the hold was not given back, the
     * transaction is due again when the hold runs out. */
    if (err) log_warn("gid %s: parking failed (driven when its hold ends): %s", gid, err);
    free(gid);
}

void engine_park(trans *t) {
    char due[32];
    snprintf(due, sizeof due, "XX:%lld", (long long)now_ms());
    log_debug("gid %s: parked (Limits.MaxActivePasses %d reached)", t->gid, limit_active());
    tstore_lease_move(t->gid, due, t->lease_until_ms, 0, parked_back, xstrdup(t->gid));
    eng.parked++;
    eng.backlog = 1;
    trans_free(t);
}

void engine_note_backlog(void) {
    eng.backlog = 1;
}

void engine_set_room_cb(void (*cb)(void)) {
    eng.room_cb = cb;
}

long long engine_parked_total(void) {
    return eng.parked;
}

static void lease_given_back(void *arg, tstore_reply *reply, const char *err) {
    (void)arg, (void)reply;
    if (err) log_debug("giving a lease back failed: %s", err);
}

static void pass_finish(pass *p) {
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

static void pass_stop(pass *p, const char *why) {
    if (!p->stopped) {
        p->stopped = 1;
        p->err = xstrdup(why);
        log_warn("gid %s: pass stopped: %s", p->t->gid, why);
    }
}

/* Unlink a call from the pass's bookkeeping and free its context. */
static void call_forget(call_ctx *c) {
    if (c->prev)
        c->prev->next = c->next;
    else
        eng.calls = c->next;
    if (c->next) c->next->prev = c->prev;
    c->p->calls--;
    free(c);
}

/* Cancel the pass's queued and running calls: their slots are freed and
 * nothing more of them is sent. */
static void cancel_calls(pass *p) {
    for (call_ctx *c = eng.calls, *next; c; c = next) {
        next = c->next;
        if (c->p != p) continue;
        branch_call_cancel(c->call);
        call_forget(c);
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

/* ---- a stop asked for through another process ----------------------------
 *
 * A request that ends a transaction this process holds, sent to another
 * process, records the stop on the transaction (stop_req, lua/cas_update.lua)
 * and publishes the gid (stop_sub.c); this process's own next write is told
 * so too (STOP). Either way: cancel the pass's calls first, then store the
 * stop (lua/stop_apply.lua), so no call starts after the final status. */

typedef struct stop_ctx {
    pass *p; /* NULL: no pass of the gid here; a write of the pass otherwise */
    char gid[];
} stop_ctx;

static void stop_applied(void *arg, tstore_reply *r, const char *err) {
    stop_ctx *x = arg;
    int ok = !err && r->tag != TS_BAD;
    if (!ok)
        log_warn("gid %s: storing a requested stop failed: %s", x->gid,
                 err ? err : "unexpected reply");
    else if (r->tag == TS_OK)
        log_info("gid %s: stopped as another process's request asked: %s", x->gid, r->status);
    pass *p = x->p;
    if (p) {
        if (ok && (r->tag == TS_OK || r->tag == TS_CONFLICT)) {
            int st = global_status_parse(r->status);
            if (st >= 0) p->t->status = st;
            /* what its waiters hear, as with engine_cancel */
            if (r->reason && r->reason[0]) {
                free(p->t->rollback_reason);
                p->t->rollback_reason = xstrdup(r->reason);
            }
        } else if (!ok) {
            p->unknown = 1;
        }
        p->writes--;
        pass_advance(p);
    }
    free(x);
}

static void send_stop_apply(const char *gid, pass *p) {
    size_t n = strlen(gid) + 1;
    stop_ctx *x = xmalloc(sizeof *x + n);
    x->p = p;
    memcpy(x->gid, gid, n);
    if (p) p->writes++;
    tstore_stop_apply(gid, stop_applied, x);
}

/* The pass learned of a stop: it calls nothing more and stores the stop. */
static void pass_stop_requested(pass *p) {
    cancel_calls(p);
    pass_stop(p, "stopped by a request to another process");
    p->rerun = 0;
    if (p->stop_sent) return;
    p->stop_sent = 1;
    send_stop_apply(p->t->gid, p);
}

void engine_stop_requested(const char *gid) {
    pass *p = find_pass(gid);
    if (p) {
        pass_stop_requested(p);
        if (p->calls == 0 && p->writes == 0) pass_finish(p);
    } else {
        /* Held here without a pass (its hold not given back yet): only the
         * holder may store it, and the script checks that. */
        send_stop_apply(gid, NULL);
    }
}

static mode_pass view_of(const pass *p) {
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
static void pass_advance(pass *p) {
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
    pass_advance(p);
}

/* ---- branch calls ---------------------------------------------------- */

/* May the pass act on its hold now (docs/failover.md)? Only while this
 * process has stayed live on the shard since the hold was taken; a pass
 * that has not taken one (hold_epoch 0) takes it with its first call
 * (hold_lease), so being live now is what counts then. Once lost, the pass
 * calls nothing, records nothing and ends: another process may drive the
 * transaction now. */
static int hold_live(pass *p) {
    if (p->lost) return 0;
    int64_t e = p->t->hold_epoch ? p->t->hold_epoch : liveness_epoch(p->shard);
    if (e && liveness_holds(p->shard, e)) return 1;
    p->lost = 1;
    pass_stop(p, "this process's liveness lapsed: the transaction is left to whoever holds it");
    return 0;
}

/* branch_request.may_send: checked right before the request goes out,
 * also for a call that waited in the Limits.MaxInflightCalls queue. */
static int call_may_send(void *arg) {
    call_ctx *c = arg;
    return !c->p->stopped && hold_live(c->p);
}

/* Keep what a call that did not succeed answered: the next result write
 * stores it (result_fields). */
static void note_error(pass *p, int bi, const char *op, const char *url, branch_outcome o,
                       long status, const char *body, size_t len) {
    if (o == BR_SUCCESS) return;
    free(p->last_err);
    p->last_err = last_error_json(bi >= 0 ? p->t->branches[bi].branch_id : "00", op, url, o, status,
                                  body, len, now_ms());
}

static void call_done(void *arg, branch_outcome o, long status, const char *body, size_t len) {
    call_ctx *c = arg;
    pass *p = c->p;
    int bi = c->bi;
    double seconds = metrics_now() - c->start;
    note_error(p, bi, c->op, c->url, o, status, body, len);
    call_forget(c);
    metrics_branch(trans_type_name(p->t->type), bi >= 0 ? p->t->branches[bi].branch_id : "00",
                   bi >= 0 ? p->t->branches[bi].op : "special", (int)o, seconds);
    if (bi >= 0) {
        branch *b = &p->t->branches[bi];
        log_debug("gid %s: branch %s %s -> %s (HTTP %ld)", p->t->gid, b->branch_id, b->op,
                  branch_outcome_name(o), status);
        if (o == BR_ERROR)
            log_warn("gid %s: branch %s %s %s failed: HTTP %ld %.*s", p->t->gid, b->branch_id,
                     b->op, b->url, status, (int)(len > 200 ? 200 : len), body);
    } else {
        log_debug("gid %s: %s -> %s (HTTP %ld)", p->t->gid, p->t->query_prepared,
                  branch_outcome_name(o), status);
        if (o == BR_ERROR)
            log_warn("gid %s: call of %s failed: HTTP %ld %.*s", p->t->gid,
                     p->t->query_prepared ? p->t->query_prepared : "", status,
                     (int)(len > 200 ? 200 : len), body);
    }
    if (!p->stopped && !eng.stopping && hold_live(p)) {
        take_result(p, bi, o, body, len, 0);
        /* A saga action's FAILURE is an answer, not a fault worth an alert. */
        int answered = bi >= 0 && p->t->branches[bi].status == BS_FAILED;
        if (o == BR_ERROR || (o == BR_FAILURE && !answered))
            alert_maybe(p->cfg, p->t, bi >= 0 ? p->t->branches[bi].url : p->t->query_prepared, body,
                        len);
    }
    pass_advance(p);
}

#define LEASE_MARGIN_MS 1000

/* Distinct per gid bucket, not per process: one process-wide "last + 1"
 * needed a value per hold, and at thousands of holds a second (three per
 * saga) the values ran ahead of the clock by seconds for every second of
 * load - a process killed after an hour at full load would have held its
 * transactions for hours. Per bucket the holds are ~1,000 times rarer. */
int64_t engine_new_hold(const char *gid, int64_t until) {
    static int64_t last[NBUCKETS];
    int64_t *l = &last[bucket_of(gid)];
    if (until <= *l) until = *l + 1;
    *l = until;
    return until;
}

int64_t engine_held_until(const char *gid) {
    pass *p = find_pass(gid);
    return p ? p->t->lease_until_ms : 0;
}

/* What a hold_lease reply needs: the pass may have ended meanwhile, and
 * another pass of the same gid may run by then, so it is found by gid and
 * recognised by the hold it asked for. Owned by the reply callback. */
typedef struct hold_ctx {
    int64_t until;
    int64_t sent_us; /* liveness.h: the script refreshes it */
    int shard;
    char gid[];
} hold_ctx;

static void lease_held(void *arg, tstore_reply *reply, const char *err) {
    hold_ctx *h = arg;
    if (err) {
        log_debug("gid %s: holding the lease failed: %s", h->gid, err);
    } else if (reply->tag == TS_OK && reply->epoch == 0) {
        /* Our hold ran out and another process holds it now (lua/claim.lua):
         * call nothing more, that process drives it. */
        pass *p = find_pass(h->gid);
        if (p && p->t->lease_until_ms == h->until) {
            p->lost = 1;
            pass_stop(p, "another process took the transaction over");
        }
    } else if (reply->tag == TS_OK) {
        /* Held, in the epoch the reply names (liveness.h): a pass that
         * counted on another one has lost it. */
        liveness_note(h->shard, h->sent_us, reply->epoch);
        pass *p = find_pass(h->gid);
        if (p && p->t->lease_until_ms == h->until && p->t->hold_epoch != reply->epoch) {
            p->lost = 1;
            pass_stop(p, "this process's liveness lapsed: the transaction is left to whoever "
                         "holds it");
        }
    }
    free(h);
}

/* A branch call may take up to the request timeout. While it runs, the
 * transaction must stay held (lease_until) and its due time ahead, or
 * another process would call the same branch a second time at once. The
 * stored due time is the retry time, which can be shorter than a call. With
 * the defaults (RetryInterval 10 s > RequestTimeout 3 s) what the pass holds
 * already covers the call, so this only sends something at the first call of
 * a pass whose hold or due time is nearly over. ZADD XX GT never re-adds a
 * finished transaction nor shortens a later due time. It is not waited for:
 * the call's own timeout is far longer than one Redis round trip; a hold
 * found lost stops the pass. */
static void hold_lease(pass *p) {
    int64_t rt = trans_request_timeout_ms(p->t, p->cfg), now = now_ms();
    int64_t need = now + rt + LEASE_MARGIN_MS;
    if (p->due_ms >= need && p->t->lease_until_ms >= need) return;
    int64_t until =
        engine_new_hold(p->t->gid, now + 2 * rt + LEASE_MARGIN_MS); /* room for next calls */
    char due[32];
    snprintf(due, sizeof due, "GT:%lld", (long long)until);
    size_t n = strlen(p->t->gid) + 1;
    hold_ctx *h = xmalloc(sizeof *h + n);
    h->until = until;
    memcpy(h->gid, p->t->gid, n);
    h->sent_us = liveness_now_us();
    h->shard = p->shard;
    /* Taking one now: in the epoch this process is live in (hold_live). */
    if (!p->t->hold_epoch) p->t->hold_epoch = liveness_epoch(p->shard);
    tstore_lease_move(p->t->gid, due, p->t->lease_until_ms, until, lease_held, h);
    if (until > p->due_ms) p->due_ms = until;
    p->t->lease_until_ms = until;
}

/* Start one HTTP call for the pass; its answer goes to take_result. */
static void start_call(pass *p, int bi, const branch_request *req) {
    if (!hold_live(p)) return;
    hold_lease(p);
    call_ctx *c = xcalloc(1, sizeof *c);
    c->p = p;
    c->bi = bi;
    c->op = req->op;
    c->url = req->url;
    c->start = metrics_now();
    branch_request gated = *req;
    gated.may_send = call_may_send;
    c->call = branch_call_start(&gated, call_done, c);
    if (!c->call) {
        free(c);
        note_error(p, bi, req->op, req->url, BR_ERROR, 0, "cannot start call", 17);
        take_result(p, bi, BR_ERROR, "cannot start call", 17, 0);
        return;
    }
    c->next = eng.calls;
    if (eng.calls) eng.calls->prev = c;
    eng.calls = c;
    p->calls++;
}

/* Call branch bi (op URL, payload, headers of the transaction). An empty
 * URL succeeds at once, its result only in memory: returns 1 then. */
static int call_branch(pass *p, int bi) {
    trans *t = p->t;
    branch *b = &t->branches[bi];
    p->started[bi] = 1;
    if (!b->url[0]) {
        take_result(p, bi, BR_SUCCESS, "", 0, 1);
        return 1;
    }
    branch_request req = {
        .url = b->url,
        .gid = t->gid,
        .trans_type = trans_type_name(t->type),
        .branch_id = b->branch_id,
        .op = b->op,
        .body = b->data,
        .body_len = b->data_len,
        .force_post = t->type == TT_XA,
        .headers = (const char *const *)t->header_lines,
        .nheaders = t->nheaders,
        .timeout_s = (double)trans_request_timeout_ms(t, p->cfg) / 1000.0,
    };
    char *rpc = NULL; /* protocol json-rpc: the call's JSON-RPC request */
    if (jsonrpc_branch_url(t->protocol, b->url)) {
        char err[200];
        size_t len;
        rpc = jsonrpc_branch_body(b->url, b->data, b->data_len, req.gid, req.trans_type,
                                  req.branch_id, req.op, &len, err, sizeof err);
        if (!rpc) { /* as a call that errs: retried, as dtm does */
            take_result(p, bi, BR_ERROR, err, strlen(err), 0);
            return 0;
        }
        req = (branch_request){.url = b->url,
                               .body = rpc,
                               .body_len = len,
                               .force_post = 1,
                               .headers = req.headers,
                               .nheaders = req.nheaders,
                               .timeout_s = req.timeout_s,
                               .jsonrpc = 1};
    }
    start_call(p, bi, &req);
    free(rpc);
    return 0;
}

/* Call a URL for the transaction itself rather than a branch (msg
 * query_prepared, workflow resume): branch_id "00", the decision's op, its
 * body sent verbatim (GET when empty). Its result comes with bi = -1. */
static void call_special(pass *p, const mode_decision *d) {
    trans *t = p->t;
    if (!d->special_url || !d->special_url[0]) {
        take_result(p, -1, BR_SUCCESS, "", 0, 0);
        return;
    }
    branch_request req = {
        .url = d->special_url,
        .gid = t->gid,
        .trans_type = trans_type_name(t->type),
        .branch_id = "00",
        .op = d->special_op,
        .body = d->special_body,
        .body_len = d->special_len,
        .headers = (const char *const *)t->header_lines,
        .nheaders = t->nheaders,
        .timeout_s = (double)trans_request_timeout_ms(t, p->cfg) / 1000.0,
    };
    start_call(p, -1, &req);
}

/* ---- store writes ---------------------------------------------------- */

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
static void pass_write(pass *p, int expected_status, rargs *fields, int64_t due_ms, int finished) {
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
    trans_set_int(f, TF_UPDATE_TIME, now);
    trans_set_int(f, TF_NEXT_CRON_TIME, t->next_cron_ms);
    trans_set_int(f, TF_NEXT_CRON_INTERVAL, t->next_cron_interval_ms);
    trans_set_int(f, TF_RETRY_COUNT, t->retry_count);
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
    trans_set_int(f, TF_UPDATE_TIME, now);
    if (reason) {
        free(t->rollback_reason);
        t->rollback_reason = xstrdup(reason);
        trans_set(f, TF_ROLLBACK_REASON, reason);
    }
    if (status == GS_SUCCEED) {
        t->finish_ms = now;
        trans_set_int(f, TF_FINISH_TIME, now);
    } else if (status == GS_FAILED) {
        t->rollback_ms = now;
        trans_set_int(f, TF_ROLLBACK_TIME, now);
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
        trans_set_int(f, TF_NEXT_CRON_TIME, *due);
    }
    return finished;
}

/* Change the global status (CAS from the current in-memory status), with an
 * optional rollback reason; finishing statuses leave the due index and get
 * the finished TTL. */
static void set_status(pass *p, int status, const char *reason) {
    int from = p->t->status;
    int64_t due;
    rargs f;
    ra_init(&f);
    int finished = status_fields(p, status, reason, &f, &due);
    pass_write(p, from, &f, due, finished);
}

/* The mode waits until `until` (msg delay): the due time moves there. */
static void postpone(pass *p, int64_t until) {
    trans *t = p->t;
    t->next_cron_ms = until;
    t->update_ms = now_ms();
    rargs f;
    ra_init(&f);
    trans_set_int(&f, TF_NEXT_CRON_TIME, t->next_cron_ms);
    trans_set_int(&f, TF_UPDATE_TIME, t->update_ms);
    log_debug("gid %s: delayed until %lld", t->gid, (long long)t->next_cron_ms);
    pass_write(p, t->status, &f, t->next_cron_ms, 0);
}

/* A call's answer (bi = -1: the special call): apply the mode's effect in
 * memory, then persist it. deferred: an empty URL's success, whose fields
 * wait for the pass's next write. When nothing else of the pass is in
 * flight and the mode's next decision is a final status with nothing to
 * call, the result and that status go in ONE write: a Redis round trip
 * saved per transaction, and both are stored before anything acts on them. */
static void take_result(pass *p, int bi, branch_outcome o, const char *body, size_t len,
                        int deferred) {
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
