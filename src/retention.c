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
#define MIGRATE_BATCH 1000 /* zset entries one index_migrate step takes at most */
#define MIGRATE_CALLS 8    /* steps per shard and tick, while entries are left */
#define MIN_PERIOD_MS 1000 /* trimming needs no finer grain than the margin */
#define MAX_SHARDS 1024    /* Store.Shards <= 1024 */
#define ID_MAX 48          /* "<ms>-<seq>": two 64-bit numbers */

static struct {
    const dtmd_config *cfg;
    char cursor[MAX_SHARDS][ID_MAX];        /* the last id the walk looked at, "" = none */
    unsigned char trimming[MAX_SHARDS];     /* an index_trim in flight */
    unsigned char trims[MAX_SHARDS];        /* index_trim calls this tick */
    unsigned char exp_deleting[MAX_SHARDS]; /* the expiry zset's UNLINK in flight */
    unsigned char exp_deleted[MAX_SHARDS];  /* ... done since the start */
    unsigned char migrating[MAX_SHARDS];    /* an index_migrate in flight */
    unsigned char migrates[MAX_SHARDS];     /* index_migrate calls this tick */
    /* by the migration, for its log line once the zset is gone */
    long long moved[MAX_SHARDS], adopted[MAX_SHARDS], dropped[MAX_SHARDS];
    int64_t last_tick_ms;
    int stopping;
} rt;

/* Every TTL dtmd gives a hash (save_new, cas_update) is one of these two,
 * set at or after creation: nothing created more recently can have expired. */
static int64_t min_ttl_ms(const dtmd_config *cfg) {
    int64_t a = cfg->data_expire, b = cfg->finished_data_expire;
    return (a < b ? a : b) * 1000;
}

int64_t retention_stale_ms(const dtmd_config *cfg) {
    return min_ttl_ms(cfg) / 2;
}

/* ---- trimming ---------------------------------------------------------- */

static void trim(int shard);

/* index_trim's reply {removed, looked, id, over}, or 0. */
static int trim_reply_ok(const redisReply *r) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) return 0;
    const redisReply *const *e = (const redisReply *const *)r->element;
    return e[0]->type == REDIS_REPLY_INTEGER && e[1]->type == REDIS_REPLY_INTEGER &&
           e[2]->type == REDIS_REPLY_STRING && e[3]->type == REDIS_REPLY_INTEGER &&
           e[2]->len < ID_MAX;
}

static void trimmed(void *arg, redisReply *reply, const char *err) {
    int shard = (int)(intptr_t)arg;
    char *c = rt.cursor[shard];
    rt.trimming[shard] = 0;
    if (rt.stopping) return;
    if (err || !trim_reply_ok(reply)) {
        /* the next tick goes on from the same cursor */
        log_debug("index: shard %d: trim failed: %s", shard, err ? err : "unexpected reply");
        return;
    }
    redisReply **e = reply->element;
    if (e[0]->integer > 0)
        log_debug("index: shard %d: %lld expired or stale entries deleted", shard, e[0]->integer);
    if (e[3]->integer) {
        c[0] = '\0'; /* the next tick starts again from the oldest id */
        return;
    }
    memcpy(c, e[2]->str, e[2]->len);
    c[e[2]->len] = '\0';
    if (rt.trims[shard] < TRIM_CALLS) trim(shard);
}

static void trim(int shard) {
    tstore_trim t = {rt.cursor[shard], TRIM_BATCH, min_ttl_ms(rt.cfg), TRIM_MARGIN_MS,
                     retention_stale_ms(rt.cfg)};
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

/* ---- migrating an older dtmd's zset ------------------------------------ */

/* Every tick looks (one script call per shard: an older dtmd sharing the
 * store may write the zset again at any time); a zset with entries goes on
 * moving within the tick. */

static void migrate(int shard);

static void migrated(void *arg, redisReply *reply, const char *err) {
    int shard = (int)(intptr_t)arg;
    rt.migrating[shard] = 0;
    if (rt.stopping) return;
    if (err || reply->type != REDIS_REPLY_ARRAY || reply->elements != 4) {
        /* the next tick tries again */
        log_debug("index: shard %d: migrating failed: %s", shard, err ? err : "unexpected reply");
        return;
    }
    redisReply **e = reply->element;
    rt.moved[shard] += e[0]->integer;
    rt.adopted[shard] += e[1]->integer;
    rt.dropped[shard] += e[2]->integer;
    if (e[3]->integer > 0) {
        if (rt.migrates[shard] < MIGRATE_CALLS) migrate(shard);
        return;
    }
    if (rt.moved[shard] || rt.dropped[shard])
        log_info("index: shard %d: an older dtmd's index moved into the stream: %lld gid(s) "
                 "moved (%lld given their creation time), %lld of expired transactions dropped",
                 shard, rt.moved[shard], rt.adopted[shard], rt.dropped[shard]);
    rt.moved[shard] = rt.adopted[shard] = rt.dropped[shard] = 0;
}

static void migrate(int shard) {
    rt.migrating[shard] = 1;
    rt.migrates[shard]++;
    tstore_index_migrate(shard, MIGRATE_BATCH, migrated, (void *)(intptr_t)shard);
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
        if (!rt.migrating[s]) {
            rt.migrates[s] = 0;
            migrate(s);
        }
        if (!rt.trimming[s]) {
            rt.trims[s] = 0;
            trim(s);
        }
        if (!rt.exp_deleted[s] && !rt.exp_deleting[s]) {
            rt.exp_deleting[s] = 1;
            tstore_index_drop_expiry(s, expiry_dropped, (void *)(intptr_t)s);
        }
    }
}

void retention_shutdown(void) {
    rt.stopping = 1;
}
