/* liveness.c - identity and per-shard liveness (see liveness.h). */
#include "liveness.h"

#include "trans_store.h"
#include "log.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SHARDS 1024 /* Store.Shards' bound */

static struct {
    const dtmd_config *cfg;
    struct event *timer;
    char id[17];
    live_view view[MAX_SHARDS];
    int64_t sent_us[MAX_SHARDS];       /* the refresh in flight, 0 = none */
    unsigned char failing[MAX_SHARDS]; /* the last refresh failed: said once */
    void (*takeover_cb)(void);
} lv;

int64_t liveness_now_us(void) {
    struct timespec ts;
#ifdef CLOCK_BOOTTIME
    clock_gettime(CLOCK_BOOTTIME, &ts);
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

const char *liveness_id(void) {
    return lv.id;
}

void liveness_set_takeover_cb(void (*cb)(void)) {
    lv.takeover_cb = cb;
}

void liveness_view_note(live_view *v, int64_t t0, int64_t e) {
    if (e <= 0 || e < v->epoch) return;
    int64_t until = t0 + (int64_t)(LIVENESS_TTL_MS - LIVENESS_MARGIN_MS) * 1000;
    if (e > v->epoch) {
        v->epoch = e;
        v->until_us = until;
    } else if (until > v->until_us) {
        v->until_us = until;
    }
}

int liveness_view_holds(const live_view *v, int64_t e, int64_t now) {
    return v->epoch != 0 && e == v->epoch && now < v->until_us;
}

void liveness_note(int shard, int64_t sent_us, int64_t epoch) {
    if (shard < 0 || shard >= MAX_SHARDS) return;
    live_view *v = &lv.view[shard];
    int64_t before = v->epoch;
    liveness_view_note(v, sent_us, epoch);
    if (before && v->epoch != before)
        log_warn("liveness: shard %d: liveness had lapsed; holds taken before are given up", shard);
}

int liveness_holds(int shard, int64_t epoch) {
    if (shard < 0 || shard >= MAX_SHARDS) return 0;
    return liveness_view_holds(&lv.view[shard], epoch, liveness_now_us());
}

int64_t liveness_epoch(int shard) {
    if (shard < 0 || shard >= MAX_SHARDS) return 0;
    const live_view *v = &lv.view[shard];
    return liveness_now_us() < v->until_us ? v->epoch : 0;
}

static void refreshed(void *arg, redisReply *reply, const char *err) {
    int shard = (int)(intptr_t)arg;
    int64_t t0 = lv.sent_us[shard];
    lv.sent_us[shard] = 0;
    if (err || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_INTEGER) {
        if (!lv.cfg || lv.failing[shard]) return; /* shutting down, or said already */
        lv.failing[shard] = 1;
        log_warn("liveness: shard %d: refresh failed: %s", shard, err ? err : "unexpected reply");
        return;
    }
    if (lv.failing[shard]) log_info("liveness: shard %d: refreshed again", shard);
    lv.failing[shard] = 0;
    liveness_note(shard, t0, reply->element[0]->integer);
    if (reply->element[1]->integer > 0) {
        log_info("liveness: shard %d: %lld transaction(s) of a process no longer live made due",
                 shard, (long long)reply->element[1]->integer);
        if (lv.takeover_cb) lv.takeover_cb();
    }
}

/* One refresh per shard. wait: the first, at start-up, waits for the store's
 * connection like any command, so the process is live as soon as it is
 * connected; the periodic ones do not (below). */
static void refresh_round(int wait) {
    for (int s = 0; s < lv.cfg->store_shards && s < MAX_SHARDS; s++) {
        if (lv.sent_us[s]) continue; /* still unanswered: its t0 is older anyway */
        lv.sent_us[s] = liveness_now_us();
        /* Not kept waiting for a connection: a refresh that cannot go out
         * now is worth nothing later, and must not take the place of
         * requests in the node's queue (Store.MaxQueued). */
        tstore_live(s, wait, refreshed, (void *)(intptr_t)s);
    }
}

static void refresh_all(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    refresh_round(0);
}

/* 64 random bits from the kernel; the time and pid if that fails (two
 * processes must not pick the same identity). */
static void pick_id(void) {
    uint64_t r = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&r, sizeof r, 1, f) != 1)
        r = (uint64_t)liveness_now_us() * 6364136223846793005ULL ^ (uint64_t)getpid() ^
            (uint64_t)now_ms();
    if (f) fclose(f);
    snprintf(lv.id, sizeof lv.id, "%016llx", (unsigned long long)r);
}

int liveness_init(struct event_base *base, const dtmd_config *cfg) {
    memset(&lv, 0, sizeof lv);
    lv.cfg = cfg;
    pick_id();
    tstore_set_holder(lv.id, LIVENESS_TTL_MS);
    log_info("process identity %s (liveness TTL %d ms, refreshed every %d ms)", lv.id,
             LIVENESS_TTL_MS, LIVENESS_PERIOD_MS);
    lv.timer = event_new(base, -1, EV_PERSIST, refresh_all, NULL);
    if (!lv.timer) return -1;
    struct timeval tv = {LIVENESS_PERIOD_MS / 1000, (LIVENESS_PERIOD_MS % 1000) * 1000};
    evtimer_add(lv.timer, &tv);
    refresh_round(1);
    return 0;
}

void liveness_shutdown(void) {
    if (lv.timer) event_free(lv.timer);
    lv.timer = NULL;
    lv.cfg = NULL;
    lv.takeover_cb = NULL;
}
