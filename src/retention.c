/* retention.c - trimming the shards' gid indexes (see retention.h). */
#include "retention.h"

#include "log.h"
#include "trans_store.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TRIM_BATCH 1000 /* index entries one index_trim step looks at at most */
#define TRIM_CALLS 4    /* steps per shard and tick, while the walk goes on */
#define TRIM_MARGIN_MS 1000
#define LEGACY_BATCH 500   /* score-0 index entries one walk step looks at */
#define WALK_CALLS 4       /* batches per shard and tick */
#define MIN_PERIOD_MS 1000 /* trimming needs no finer grain than the margin */
#define MAX_SHARDS 1024    /* Store.Shards <= 1024 */

/* Where the trimmer's walk over a shard's index stands: the last entry it
 * looked at (index_trim.lua); no gid = from the oldest end. */
typedef struct trim_cursor {
    char score[32];
    char *gid;
    size_t gid_len;
} trim_cursor;

static struct {
    const dtmd_config *cfg;
    trim_cursor cursor[MAX_SHARDS];
    unsigned char trimming[MAX_SHARDS];                 /* an index_trim in flight */
    unsigned char trims[MAX_SHARDS];                    /* index_trim calls this tick */
    unsigned char exp_deleting[MAX_SHARDS];             /* the expiry zset's UNLINK in flight */
    unsigned char exp_deleted[MAX_SHARDS];              /* ... done since the start */
    unsigned char walking[MAX_SHARDS];                  /* a listing/index_adopt in flight */
    unsigned char walks[MAX_SHARDS];                    /* legacy batches this tick */
    unsigned char walked[MAX_SHARDS];                   /* the legacy walk reached the end */
    long long skip[MAX_SHARDS];                         /* score-0 gids the walk leaves so */
    long long adopted[MAX_SHARDS], dropped[MAX_SHARDS]; /* by the walk, for its log line */
    int64_t last_tick_ms;
    int stopping;
} rt;

typedef struct adopt_ctx {
    int shard;
    int last; /* the listing reached the index's end: the walk ends here */
} adopt_ctx;

static void walk(int shard);

/* ---- trimming ---------------------------------------------------------- */

static void trim(int shard);

static void cursor_reset(trim_cursor *c) {
    free(c->gid);
    memset(c, 0, sizeof *c);
}

/* Every TTL dtmd gives a hash (save_new, cas_update) is one of these two,
 * set at or after creation: nothing created more recently can have expired. */
static int64_t min_ttl_ms(void) {
    int64_t a = rt.cfg->data_expire, b = rt.cfg->finished_data_expire;
    return (a < b ? a : b) * 1000;
}

/* index_trim's reply {removed, looked, score, gid, over}, or 0. */
static int trim_reply_ok(const redisReply *r) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 5) return 0;
    const redisReply *const *e = (const redisReply *const *)r->element;
    return e[0]->type == REDIS_REPLY_INTEGER && e[1]->type == REDIS_REPLY_INTEGER &&
           e[2]->type == REDIS_REPLY_STRING && e[3]->type == REDIS_REPLY_STRING &&
           e[4]->type == REDIS_REPLY_INTEGER && e[2]->len < sizeof rt.cursor[0].score;
}

static void trimmed(void *arg, redisReply *reply, const char *err) {
    int shard = (int)(intptr_t)arg;
    trim_cursor *c = &rt.cursor[shard];
    rt.trimming[shard] = 0;
    if (rt.stopping) return;
    if (err || !trim_reply_ok(reply)) {
        /* the next tick goes on from the same cursor */
        log_debug("index: shard %d: trim failed: %s", shard, err ? err : "unexpected reply");
        return;
    }
    redisReply **e = reply->element;
    if (e[0]->integer > 0)
        log_debug("index: shard %d: %lld expired gid(s) removed", shard, e[0]->integer);
    if (e[4]->integer) {
        cursor_reset(c); /* the next tick starts again from the oldest end */
        return;
    }
    memcpy(c->score, e[2]->str, e[2]->len);
    c->score[e[2]->len] = 0;
    free(c->gid);
    c->gid = xmalloc(e[3]->len + 1);
    memcpy(c->gid, e[3]->str, e[3]->len);
    c->gid[e[3]->len] = 0;
    c->gid_len = e[3]->len;
    if (rt.trims[shard] < TRIM_CALLS) trim(shard);
}

static void trim(int shard) {
    const trim_cursor *c = &rt.cursor[shard];
    tstore_trim t = {c->gid ? c->score : "", c->gid ? c->gid : "", c->gid_len, TRIM_BATCH,
                     min_ttl_ms(),           TRIM_MARGIN_MS};
    rt.trimming[shard] = 1;
    rt.trims[shard]++;
    tstore_index_trim(shard, &t, trimmed, (void *)(intptr_t)shard);
}

/* The expiry zset a dtmd before the walk kept ("exp", keys.h): its gids are
 * all in the index too, which the walk covers, so it is simply deleted. */
static void expiry_dropped(void *arg, redisReply *reply, const char *err) {
    int shard = (int)(intptr_t)arg;
    rt.exp_deleting[shard] = 0;
    if (rt.stopping) return;
    if (err || reply->type != REDIS_REPLY_INTEGER) {
        log_debug("index: shard %d: deleting the expiry zset failed: %s", shard,
                  err ? err : "unexpected reply");
        return; /* again next tick */
    }
    rt.exp_deleted[shard] = 1;
    if (reply->integer > 0)
        log_info("index: shard %d: the expiry zset of an older dtmd deleted", shard);
}

/* ---- the legacy walk --------------------------------------------------- */

/* The walk lists the index's score-0 gids (an older dtmd's: index_adopt.lua)
 * from the start each time, skipping those it has seen stay at 0: adopting a
 * gid moves it out of score 0, so the rest move up. */

/* The batch is done: go on, now or next tick, or end the walk. */
static void walk_advance(int shard, int last) {
    rt.walking[shard] = 0;
    if (last) {
        rt.walked[shard] = 1;
        if (rt.adopted[shard] || rt.dropped[shard])
            log_info("index: shard %d: %lld gid(s) stored by an older dtmd given their creation "
                     "time, %lld of expired transactions removed",
                     shard, rt.adopted[shard], rt.dropped[shard]);
        return;
    }
    if (rt.walks[shard] < WALK_CALLS) walk(shard);
}

static void adopted(void *arg, redisReply *reply, const char *err) {
    adopt_ctx *x = arg;
    rt.walking[x->shard] = 0;
    if (rt.stopping) goto out;
    if (err || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) {
        /* the next tick looks at the same batch again */
        log_debug("index: shard %d: adopting failed: %s", x->shard, err ? err : "unexpected reply");
        goto out;
    }
    rt.adopted[x->shard] += reply->element[0]->integer;
    rt.dropped[x->shard] += reply->element[1]->integer;
    rt.skip[x->shard] += reply->element[2]->integer;
    walk_advance(x->shard, x->last);
out:
    free(x);
}

static void legacy_listed(void *arg, redisReply *reply, const char *err) {
    int shard = (int)(intptr_t)arg;
    if (rt.stopping) {
        rt.walking[shard] = 0;
        return;
    }
    if (err || reply->type != REDIS_REPLY_ARRAY) {
        log_debug("index: shard %d: legacy walk failed: %s", shard, err ? err : "unexpected reply");
        rt.walking[shard] = 0;
        return;
    }
    size_t n = reply->elements;
    int last = n < LEGACY_BATCH;
    if (n == 0) {
        walk_advance(shard, last);
        return;
    }
    adopt_ctx *x = xcalloc(1, sizeof *x);
    x->shard = shard;
    x->last = last;
    tstore_index_adopt(shard, reply->element, n, adopted, x);
}

static void walk(int shard) {
    rt.walking[shard] = 1;
    rt.walks[shard]++;
    tstore_index_legacy(shard, rt.skip[shard], LEGACY_BATCH, legacy_listed,
                        (void *)(intptr_t)shard);
}

/* ---- entry points ------------------------------------------------------ */

void retention_init(const dtmd_config *cfg) {
    memset(&rt, 0, sizeof rt);
    rt.cfg = cfg;
}

void retention_tick(void) {
    if (rt.stopping || !rt.cfg || !store_is_up()) return;
    int64_t now = now_ms();
    if (now - rt.last_tick_ms < MIN_PERIOD_MS) return;
    rt.last_tick_ms = now;
    int n = rt.cfg->store_shards < MAX_SHARDS ? rt.cfg->store_shards : MAX_SHARDS;
    for (int s = 0; s < n; s++) {
        if (!rt.trimming[s]) {
            rt.trims[s] = 0;
            trim(s);
        }
        if (!rt.exp_deleted[s] && !rt.exp_deleting[s]) {
            rt.exp_deleting[s] = 1;
            tstore_index_drop_expiry(s, expiry_dropped, (void *)(intptr_t)s);
        }
        if (!rt.walked[s] && !rt.walking[s]) {
            rt.walks[s] = 0;
            walk(s);
        }
    }
}

void retention_shutdown(void) {
    rt.stopping = 1;
    for (int s = 0; s < MAX_SHARDS; s++) cursor_reset(&rt.cursor[s]);
}
