/* cron.c - the retry scanner (see cron.h). */
#include "cron.h"

#include "engine.h"
#include "trans_store.h"
#include "liveness.h"
#include "log.h"
#include "metrics.h"
#include "retention.h"
#include "store.h"
#include "trans.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 100

static struct {
    struct event_base *base;
    const dtmd_config *cfg;
    struct event *timer;
    struct event *kick;           /* scan now: room for parked work (engine_hold.c) */
    unsigned char scanning[1024]; /* per shard (Store.Shards <= 1024): lease in flight */
    int batch[1024];              /* per shard: the count its scan asked for */
    int reserved;                 /* sum of batch[] over the scans in flight */
    int first_shard;              /* where the next round starts (rotates) */
    int round_left, round_next;   /* shards the round has yet to scan; the next */
    long long round_parked;       /* engine_parked_total() when the round began */
    int again;                    /* a shard had more due than room: scan it again */
    int pending;                  /* loads in flight */
    int stopping;
} cr;

typedef struct load_ctx {
    int shard;
    char *gid;
    int64_t lease_end; /* the hold lease_load.lua takes */
    int64_t sent_us;   /* when it was asked for (liveness.h) */
} load_ctx;

static int scan_shard(int shard);
static void scan_more(void);
static void release_one(const char *gid, int64_t ours);

static void ignore_reply(void *arg, redisReply *r, const char *err) {
    (void)arg, (void)r;
    if (err) log_debug("cron: cleanup failed: %s", err);
}

/* Remove a gid from the due index (record expired or already finished). */
static void drop_due(int shard, const char *gid) {
    tstore_drop_due(shard, gid, ignore_reply, NULL);
}

static void loaded(void *arg, tstore_reply *reply, const char *err) {
    load_ctx *c = arg;
    cr.pending--;
    if (cr.stopping) {
        if (!err) release_one(c->gid, c->lease_end); /* leased, never driven: give it back */
        goto out;
    }
    if (err) {
        log_warn("cron: gid %s: cannot load: %s", c->gid, err);
        goto out;
    }
    if (reply->tag == TS_NOT_FOUND) {
        log_debug("cron: gid %s: record gone, dropping it from the due index", c->gid);
        drop_due(c->shard, c->gid);
        goto out;
    }
    if (reply->tag == TS_BUSY) {
        log_debug("cron: gid %s: held by another process, left to it", c->gid);
        goto out;
    }
    trans *t = reply->tag == TS_OK ? reply->t : NULL;
    if (!t) {
        log_error("cron: gid %s: stored record is malformed", c->gid);
        goto out;
    }
    reply->t = NULL;
    t->hold_epoch = reply->epoch;
    liveness_note(c->shard, c->sent_us, t->hold_epoch);
    if (global_status_final(t->status)) {
        drop_due(c->shard, c->gid);
        trans_free(t);
        goto out;
    }
    if (!engine_has_room() && !engine_active(t->gid)) {
        /* Requests filled the room while this load was in flight. */
        engine_park(t);
        goto out;
    }
    if (t->next_cron_ms > 0) metrics_cron_lag((double)(now_ms() - t->next_cron_ms) / 1000.0);
    engine_drive(t, NULL, NULL);
out:
    free(c->gid);
    free(c);
    scan_more(); /* this load's room is free again */
}

static void leased(void *arg, redisReply *reply, const char *err) {
    int shard = (int)(intptr_t)arg;
    cr.scanning[shard] = 0;
    cr.reserved -= cr.batch[shard];
    if (cr.stopping) {
        /* Leased while shutting down: give back what nobody here drives. */
        for (size_t i = 0; !err && reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++)
            if (!engine_active(reply->element[i]->str)) release_one(reply->element[i]->str, -1);
        return;
    }
    if (err || reply->type != REDIS_REPLY_ARRAY) {
        if (err) log_debug("cron: shard %d: lease failed: %s", shard, err);
        scan_more();
        return;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const char *gid = reply->element[i]->str;
        if (engine_active(gid)) continue; /* already being driven here */
        load_ctx *c = xcalloc(1, sizeof *c);
        c->shard = shard;
        c->gid = xstrdup(gid);
        int64_t now = now_ms();
        c->lease_end = engine_new_hold(gid, now + config_lease_ms(cr.cfg));
        c->sent_us = liveness_now_us();
        cr.pending++;
        tstore_lease_load(gid, now, c->lease_end, loaded, c);
    }
    /* A full batch: more may be due. Scan again, or have the next round
     * do it if there is no room now (this round may be past the shard). */
    if (reply->elements == (size_t)cr.batch[shard] && !scan_shard(shard)) cr.again = 1;
    scan_more(); /* the room this scan did not use may serve the next shard */
}

/* Passes this process may still start from scans: its room under
 * Limits.MaxActivePasses less what scans and loads in flight will take. */
static int free_room(void) {
    int room = engine_room() - cr.reserved - cr.pending;
    return room > 0 ? room : 0;
}

/* Lease up to BATCH due gids of a shard, no more than there is room for.
 * Returns 0 when there is no room: the due work is left to a later scan,
 * which ending passes ask for (engine_note_backlog). */
static int scan_shard(int shard) {
    if (cr.scanning[shard] || !store_is_up()) return 1;
    int batch = free_room();
    if (batch > BATCH) batch = BATCH;
    if (batch == 0) {
        engine_note_backlog();
        return 0;
    }
    cr.batch[shard] = batch;
    cr.reserved += batch;
    int64_t now = now_ms();
    int64_t lease = config_lease_ms(cr.cfg);
    cr.scanning[shard] = 1;
    tstore_lease_due(shard, now, now + lease, batch, leased, (void *)(intptr_t)shard);
    return 1;
}

static void arm_timer(void) {
    /* Jitter: 75%..100% of the interval, so processes sharing a store spread. */
    double d = cr.cfg->trans_cron_interval * (0.75 + 0.25 * ((double)random() / RAND_MAX));
    struct timeval tv = {(time_t)d, (suseconds_t)((d - (double)(time_t)d) * 1e6)};
    evtimer_add(cr.timer, &tv);
}

/* A round scans every shard once: the timer starts one (retries coming
 * due), and so does work left in the store for want of room
 * (Limits.MaxActivePasses: transactions parked meanwhile, maybe in a shard
 * already scanned, or a shard with more due than there was room for).
 * Without the limit a round is one loop. With it, the room may run out part
 * way (each scan reserves its batch until its reply, each load its pass),
 * so the round goes on from replies, loads and passes ending (kick_cb). Each
 * round starts at another shard, so none waits behind the others for ever. */
static void round_begin(void) {
    int n = cr.cfg->store_shards;
    cr.round_left = n;
    cr.round_next = cr.first_shard;
    cr.first_shard = (cr.first_shard + 1) % n;
    cr.round_parked = engine_parked_total();
    cr.again = 0;
}

static void round_pump(void) {
    int n = cr.cfg->store_shards;
    while (cr.round_left > 0 && !cr.stopping) {
        int s = cr.round_next;
        if (!scan_shard(s)) return; /* no room: engine_note_backlog was called */
        cr.round_next = (s + 1) % n;
        cr.round_left--;
    }
}

/* Room came back (a reply, a load, passes ending): go on with the round, or
 * start another if work was left in the store. Ends: left work needs parking
 * or a full batch, and both need a full room. */
static void scan_more(void) {
    if (cr.stopping) return;
    if (cr.round_left == 0 && (cr.again || engine_parked_total() != cr.round_parked)) {
        if (free_room() == 0) {
            engine_note_backlog(); /* passes ending will call again */
            return;
        }
        round_begin();
    }
    round_pump();
}

static void tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    if (cr.round_left == 0) round_begin();
    round_pump();
    retention_tick();
    arm_timer();
}

/* Passes ended with room for waiting work (engine_set_room_cb): scan from
 * the loop, not from inside the engine's pass_finish. */
static void kick_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    scan_more();
}

static void room_again(void) {
    if (cr.kick) event_active(cr.kick, 0, 0);
}

/* A process's liveness lapsed and its transactions were made due
 * (liveness.h): scan every shard now, not at the next tick. */
static void takeover(void) {
    cr.again = 1;
    if (cr.kick) event_active(cr.kick, 0, 0);
}

int cron_init(struct event_base *base, const dtmd_config *cfg) {
    memset(&cr, 0, sizeof cr);
    cr.base = base;
    cr.cfg = cfg;
    cr.timer = evtimer_new(base, tick, NULL);
    cr.kick = event_new(base, -1, 0, kick_cb, NULL);
    engine_set_room_cb(room_again);
    liveness_set_takeover_cb(takeover);
    retention_init(cfg);
    arm_timer();
    return 0;
}

/* ---- handing leases back at shutdown ------------------------------------
 *
 * A transaction this process is driving has a due time in the future (its
 * lease, or the wait set by its last write). Stopping without a word would
 * leave it to the other processes only when that time comes (up to
 * RetryInterval, or a transaction's own retry_interval). So on SIGTERM the
 * due index of every shard is read up to the longest possible wait, and
 * each gid the engine is still driving gets its due time set to now (ZADD
 * XX: not re-added if it finished meanwhile): the next scan of any process
 * picks it up. The branch calls in flight are cancelled right after, by
 * engine_shutdown. Bounded: at most RELEASE_SCAN gids per shard and
 * RELEASE_WAIT_S of waiting for Redis. */

#define RELEASE_SCAN 10000
#define RELEASE_WAIT_S 1.0

static struct {
    int pending; /* store commands of the release in flight */
    int released;
} rel;

static void release_done(void *arg, tstore_reply *reply, const char *err) {
    (void)arg, (void)reply;
    rel.pending--;
    if (err) log_warn("cron: handing leases back failed: %s", err);
}

static void release_listed(void *arg, redisReply *reply, const char *err) {
    (void)arg;
    rel.pending--;
    if (err || reply->type != REDIS_REPLY_ARRAY) return;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *g = reply->element[i];
        if (g->type != REDIS_REPLY_STRING || !engine_active(g->str)) continue;
        release_one(g->str, engine_held_until(g->str));
    }
}

/* A gid this process holds (ours: the hold it knows, -1 = none taken) but
 * will not drive: due now again and the hold given back. Only while
 * release_leases runs the loop (later replies are failures). */
static void release_one(const char *gid, int64_t ours) {
    char due[32];
    snprintf(due, sizeof due, "XX:%lld", (long long)now_ms());
    rel.pending++;
    rel.released++;
    tstore_lease_move(gid, due, ours, 0, release_done, NULL);
}

static void release_timeout(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    *(int *)arg = 1;
}

static void release_leases(void) {
    if (engine_active_count() == 0 || !store_is_up()) return;
    int64_t now = now_ms();
    /* Far enough to see every due time this process may have set: a lease
     * (at most RetryMaxInterval) or a running call's hold (engine_hold.c
     * hold_lease: up to twice the request timeout plus a second). */
    double wait = cr.cfg->retry_max_interval + 2 * cr.cfg->request_timeout + 2;
    memset(&rel, 0, sizeof rel);
    for (int s = 0; s < cr.cfg->store_shards; s++) {
        rel.pending++;
        tstore_list_due(s, now + (int64_t)(wait * 1000), RELEASE_SCAN, release_listed,
                        (void *)(intptr_t)s);
    }
    /* The main loop has stopped: run it here until Redis has answered. */
    int expired = 0;
    struct event *guard = evtimer_new(cr.base, release_timeout, &expired);
    struct timeval tv = {(time_t)RELEASE_WAIT_S,
                         (suseconds_t)((RELEASE_WAIT_S - (double)(time_t)RELEASE_WAIT_S) * 1e6)};
    evtimer_add(guard, &tv);
    while (rel.pending > 0 && !expired) event_base_loop(cr.base, EVLOOP_ONCE);
    event_free(guard);
    if (rel.released)
        log_info("cron: handed back %d transaction(s) in progress for another process",
                 rel.released);
    if (rel.pending) log_warn("cron: handing leases back: no answer from redis in time");
}

void cron_shutdown(void) {
    cr.stopping = 1;
    if (cr.timer) event_free(cr.timer);
    cr.timer = NULL;
    if (cr.kick) event_free(cr.kick);
    cr.kick = NULL;
    engine_set_room_cb(NULL);
    liveness_set_takeover_cb(NULL);
    retention_shutdown();
    release_leases();
}
