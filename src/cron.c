/* cron.c - the retry scanner (see cron.h). */
#include "cron.h"

#include "engine.h"
#include "keys.h"
#include "log.h"
#include "store.h"
#include "trans.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 100
#define MAX_ACTIVE 20000 /* back-pressure: do not lease more than we can drive */

static struct {
    struct event_base *base;
    const dtmd_config *cfg;
    struct event *timer;
    unsigned char scanning[1024]; /* per shard (Store.Shards <= 1024): lease in flight */
    int pending;                  /* loads in flight */
    int stopping;
} cr;

typedef struct load_ctx {
    int shard;
    char *gid;
} load_ctx;

static void scan_shard(int shard);

static void ignore_reply(void *arg, redisReply *r, const char *err) {
    (void)arg, (void)r;
    if (err) log_debug("cron: cleanup failed: %s", err);
}

/* Remove a gid from the due index (record expired or already finished). */
static void drop_due(int shard, const char *gid) {
    rargs a;
    ra_init(&a);
    sbuf k;
    sb_init(&k);
    key_due(&k, cr.cfg->redis_prefix, shard);
    ra_adds(&a, "ZREM");
    ra_add(&a, k.ptr, k.len);
    ra_adds(&a, gid);
    sb_free(&k);
    store_command(&a, ignore_reply, NULL);
}

static void loaded(void *arg, redisReply *reply, const char *err) {
    load_ctx *c = arg;
    cr.pending--;
    if (cr.stopping) goto out;
    if (err) {
        log_warn("cron: gid %s: cannot load: %s", c->gid, err);
        goto out;
    }
    trans *t = trans_from_hash(reply);
    if (!t) {
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 0) {
            log_debug("cron: gid %s: record gone, dropping it from the due index", c->gid);
            drop_due(c->shard, c->gid);
        } else {
            log_error("cron: gid %s: stored record is malformed", c->gid);
        }
        goto out;
    }
    if (global_status_final(t->status)) {
        drop_due(c->shard, c->gid);
        trans_free(t);
        goto out;
    }
    engine_drive(t, NULL, NULL);
out:
    free(c->gid);
    free(c);
}

static void leased(void *arg, redisReply *reply, const char *err) {
    int shard = (int)(intptr_t)arg;
    cr.scanning[shard] = 0;
    if (cr.stopping) return;
    if (err) {
        log_debug("cron: shard %d: lease failed: %s", shard, err);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY) return;
    for (size_t i = 0; i < reply->elements; i++) {
        const char *gid = reply->element[i]->str;
        if (engine_active(gid)) continue; /* already being driven here */
        load_ctx *c = xcalloc(1, sizeof *c);
        c->shard = shard;
        c->gid = xstrdup(gid);
        rargs a;
        ra_init(&a);
        sbuf k;
        sb_init(&k);
        key_trans(&k, cr.cfg->redis_prefix, shard, gid);
        ra_adds(&a, "HGETALL");
        ra_add(&a, k.ptr, k.len);
        sb_free(&k);
        cr.pending++;
        store_command(&a, loaded, c);
    }
    if (reply->elements == BATCH && engine_active_count() < MAX_ACTIVE) scan_shard(shard);
}

static void scan_shard(int shard) {
    if (cr.scanning[shard] || !store_is_up()) return;
    int64_t now = now_ms();
    /* The lease is the longest a leased transaction waits for its next look,
     * so RetryMaxInterval caps it like every other wait (PROTOCOL.md 12.3). */
    double secs = cr.cfg->retry_interval < cr.cfg->retry_max_interval ? cr.cfg->retry_interval
                                                                      : cr.cfg->retry_max_interval;
    int64_t lease = (int64_t)(secs * 1000);
    rargs a;
    ra_init(&a);
    sbuf k;
    sb_init(&k);
    key_due(&k, cr.cfg->redis_prefix, shard);
    ra_add(&a, k.ptr, k.len);
    sb_free(&k);
    ra_addi(&a, now);
    ra_addi(&a, now + lease);
    ra_addi(&a, BATCH);
    cr.scanning[shard] = 1;
    store_script("lease_due", 1, &a, leased, (void *)(intptr_t)shard);
}

static void arm_timer(void) {
    /* Jitter: 75%..100% of the interval, so processes sharing a store spread. */
    double d = cr.cfg->trans_cron_interval * (0.75 + 0.25 * ((double)random() / RAND_MAX));
    struct timeval tv = {(time_t)d, (suseconds_t)((d - (double)(time_t)d) * 1e6)};
    evtimer_add(cr.timer, &tv);
}

static void tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    if (engine_active_count() < MAX_ACTIVE)
        for (int s = 0; s < cr.cfg->store_shards; s++) scan_shard(s);
    arm_timer();
}

int cron_init(struct event_base *base, const dtmd_config *cfg) {
    memset(&cr, 0, sizeof cr);
    cr.base = base;
    cr.cfg = cfg;
    cr.timer = evtimer_new(base, tick, NULL);
    arm_timer();
    return 0;
}

void cron_shutdown(void) {
    cr.stopping = 1;
    if (cr.timer) event_free(cr.timer);
    cr.timer = NULL;
}
