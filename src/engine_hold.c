/* engine_hold.c - holding the transactions this process drives: the hold
 * taken and extended around branch calls (docs/failover.md), parking under
 * Limits.MaxActivePasses, and a stop asked for through another process. */
#include "engine_int.h"

#include "liveness.h"
#include "log.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int room_for(int n) {
    return limit_active() < 1 || eng.active + n <= limit_active();
}

/* Room that makes a scan worth it: an eighth of the limit. */
int room_chunk(void) {
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
void pass_stop_requested(pass *p) {
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

/* ---- holds --------------------------------------------------------------- */

/* May the pass act on its hold now (docs/failover.md)? Only while this
 * process has stayed live on the shard since the hold was taken; a pass
 * that has not taken one (hold_epoch 0) takes it with its first call
 * (hold_lease), so being live now is what counts then. Once lost, the pass
 * calls nothing, records nothing and ends: another process may drive the
 * transaction now. */
int hold_live(pass *p) {
    if (p->lost) return 0;
    int64_t e = p->t->hold_epoch ? p->t->hold_epoch : liveness_epoch(p->shard);
    if (e && liveness_holds(p->shard, e)) return 1;
    p->lost = 1;
    pass_stop(p, "this process's liveness lapsed: the transaction is left to whoever holds it");
    return 0;
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
void hold_lease(pass *p) {
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
