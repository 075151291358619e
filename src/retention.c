/* retention.c - trimming the shards' gid indexes (see retention.h). */
#include "retention.h"

#include "keys.h"
#include "log.h"
#include "store.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TRIM_BATCH 1000 /* gids one index_trim call removes at most */
#define TRIM_CALLS 4    /* per shard and tick, while batches come back full */
#define TRIM_MARGIN_MS 1000
#define LEGACY_BATCH 500   /* index entries one index_legacy call looks at */
#define WALK_CALLS 4       /* batches per shard and tick */
#define MIN_PERIOD_MS 1000 /* trimming needs no finer grain than the margin */
#define MAX_SHARDS 1024    /* Store.Shards <= 1024 */

static struct {
    const dtmd_config *cfg;
    unsigned char trimming[MAX_SHARDS];                 /* an index_trim in flight */
    unsigned char trims[MAX_SHARDS];                    /* index_trim calls this tick */
    unsigned char walking[MAX_SHARDS];                  /* an index_legacy/adopt in flight */
    unsigned char walks[MAX_SHARDS];                    /* legacy batches this tick */
    unsigned char walked[MAX_SHARDS];                   /* the legacy walk reached the end */
    char *after[MAX_SHARDS];                            /* the walk's last gid, NULL = start */
    long long adopted[MAX_SHARDS], dropped[MAX_SHARDS]; /* by the walk, for its log line */
    int64_t last_tick_ms;
    int stopping;
} rt;

typedef struct adopt_ctx {
    int shard;
    char *next; /* where the walk goes on once adopted ("" = it ends) */
} adopt_ctx;

static void walk(int shard);

static void add_shard_keys(rargs *a, int shard) {
    sbuf k;
    sb_init(&k);
    key_index(&k, rt.cfg->redis_prefix, shard);
    ra_add(a, k.ptr, k.len);
    key_expiry(&k, rt.cfg->redis_prefix, shard);
    ra_add(a, k.ptr, k.len);
    sb_free(&k);
}

/* ---- trimming ---------------------------------------------------------- */

static void trim(int shard);

static void trimmed(void *arg, redisReply *reply, const char *err) {
    int shard = (int)(intptr_t)arg;
    rt.trimming[shard] = 0;
    if (rt.stopping) return;
    if (err || reply->type != REDIS_REPLY_INTEGER) {
        log_debug("index: shard %d: trim failed: %s", shard, err ? err : "unexpected reply");
        return;
    }
    if (reply->integer > 0)
        log_debug("index: shard %d: %lld expired gid(s) removed", shard, reply->integer);
    if (reply->integer >= TRIM_BATCH && rt.trims[shard] < TRIM_CALLS) trim(shard);
}

static void trim(int shard) {
    rargs a;
    ra_init(&a);
    add_shard_keys(&a, shard);
    ra_addi(&a, TRIM_BATCH);
    ra_addi(&a, TRIM_MARGIN_MS);
    rt.trimming[shard] = 1;
    rt.trims[shard]++;
    store_script("index_trim", 2, &a, trimmed, (void *)(intptr_t)shard);
}

/* ---- the legacy walk --------------------------------------------------- */

/* The batch up to next is done: go on from there, now or next tick. */
static void walk_advance(int shard, const char *next) {
    rt.walking[shard] = 0;
    free(rt.after[shard]);
    rt.after[shard] = NULL;
    if (*next) {
        rt.after[shard] = xstrdup(next);
    } else {
        rt.walked[shard] = 1;
        if (rt.adopted[shard] || rt.dropped[shard])
            log_info("index: shard %d: %lld gid(s) stored by an older dtmd given their expiry "
                     "time, %lld of expired transactions removed",
                     shard, rt.adopted[shard], rt.dropped[shard]);
    }
    if (!rt.walked[shard] && rt.walks[shard] < WALK_CALLS) walk(shard);
}

static void adopted(void *arg, redisReply *reply, const char *err) {
    adopt_ctx *x = arg;
    rt.walking[x->shard] = 0;
    if (rt.stopping) goto out;
    if (err || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        /* the next tick looks at the same batch again */
        log_debug("index: shard %d: adopting failed: %s", x->shard, err ? err : "unexpected reply");
        goto out;
    }
    rt.adopted[x->shard] += reply->element[0]->integer;
    rt.dropped[x->shard] += reply->element[1]->integer;
    walk_advance(x->shard, x->next);
out:
    free(x->next);
    free(x);
}

static void legacy_listed(void *arg, redisReply *reply, const char *err) {
    int shard = (int)(intptr_t)arg;
    if (rt.stopping) {
        rt.walking[shard] = 0;
        return;
    }
    if (err || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        reply->element[0]->type != REDIS_REPLY_STRING) {
        log_debug("index: shard %d: legacy walk failed: %s", shard, err ? err : "unexpected reply");
        rt.walking[shard] = 0;
        return;
    }
    const char *next = reply->element[0]->str;
    if (reply->elements == 1) { /* every gid of the batch has its time */
        walk_advance(shard, next);
        return;
    }
    /* The hashes are passed as keys (the shard's slot: keys.h), so the
     * script may read them on Redis Cluster too. */
    size_t n = reply->elements - 1;
    rargs a;
    ra_init(&a);
    add_shard_keys(&a, shard);
    sbuf k;
    sb_init(&k);
    for (size_t i = 1; i <= n; i++) {
        key_trans(&k, rt.cfg->redis_prefix, shard, reply->element[i]->str);
        ra_add(&a, k.ptr, k.len);
    }
    sb_free(&k);
    for (size_t i = 1; i <= n; i++) ra_add(&a, reply->element[i]->str, reply->element[i]->len);
    adopt_ctx *x = xcalloc(1, sizeof *x);
    x->shard = shard;
    x->next = xstrdup(next);
    store_script("index_adopt", 2 + (int)n, &a, adopted, x);
}

static void walk(int shard) {
    rargs a;
    ra_init(&a);
    add_shard_keys(&a, shard);
    ra_adds(&a, rt.after[shard] ? rt.after[shard] : "");
    ra_addi(&a, LEGACY_BATCH);
    rt.walking[shard] = 1;
    rt.walks[shard]++;
    store_script("index_legacy", 2, &a, legacy_listed, (void *)(intptr_t)shard);
}

/* ---- entry points ------------------------------------------------------ */

void retention_init(const dtmd_config *cfg) {
    for (int s = 0; s < MAX_SHARDS; s++) free(rt.after[s]);
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
        if (!rt.walked[s] && !rt.walking[s]) {
            rt.walks[s] = 0;
            walk(s);
        }
    }
}

void retention_shutdown(void) {
    rt.stopping = 1;
    for (int s = 0; s < MAX_SHARDS; s++) {
        free(rt.after[s]);
        rt.after[s] = NULL;
    }
}
