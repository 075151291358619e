/* api_query.c - read-only and admin endpoints: query, all, resetCronTime.
 *
 * /all pages through the shards' index zsets (keys.h) instead of SCANning
 * the keyspace: the cursor "<shard>:<last gid>" is stable while transactions
 * are added, works the same on Redis Cluster, and each page costs one
 * ZRANGEBYLEX plus one HGETALL per listed transaction (pipelined). Index
 * members whose record has expired are skipped; the retry scanner removes
 * them (retention.h), in one script with the check, so a gid stored again
 * meanwhile is never dropped. */
#include "api_handlers.h"

#include "engine.h"
#include "keys.h"
#include "log.h"
#include "store.h"
#include "trans_json.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>

/* ---- query ------------------------------------------------------------- */

static void query_loaded(void *arg, redisReply *reply, const char *err) {
    api_call *c = arg;
    if (err) {
        api_reply_store_error(c, c->extra, err);
        return;
    }
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 0) {
        api_reply_json(c, 200, "{\"transaction\":null,\"branches\":[]}");
        return;
    }
    trans *t = trans_from_hash(reply);
    if (!t) {
        api_reply_error(c, 500, "stored transaction is malformed");
        return;
    }
    sbuf b;
    sb_init(&b);
    sb_puts(&b, "{\"transaction\":");
    trans_to_json(t, &b);
    sb_puts(&b, ",\"branches\":[");
    for (int i = 0; i < t->nbranches; i++) {
        if (i) sb_putc(&b, ',');
        branch_to_json(t, i, &b);
    }
    sb_puts(&b, "]}");
    api_reply_json(c, 200, b.ptr);
    sb_free(&b);
    trans_free(t);
}

void api_query(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)body, (void)len;
    const char *gid = evhttp_find_header(q, "gid");
    if (!gid || !*gid) {
        api_reply_error(c, 400, "no gid specified");
        return;
    }
    c->extra = xstrdup(gid);
    rargs a;
    ra_init(&a);
    sbuf k;
    sb_init(&k);
    engine_trans_key(&k, gid);
    ra_adds(&a, "HGETALL");
    ra_add(&a, k.ptr, k.len);
    sb_free(&k);
    store_command(&a, query_loaded, c);
}

/* ---- all ---------------------------------------------------------------- */

typedef struct all_ctx {
    int shard;
    char *after; /* last gid seen in this shard, or NULL */
    int limit;
    int found;      /* records written to out */
    int scanned;    /* index entries looked at (bounds work for selective filters) */
    int pending;    /* HGETALLs in flight */
    int asked;      /* index entries asked for in this batch */
    int batch_full; /* the batch was as long as asked: the shard may have more */
    int store_failed;
    int budget_hit;  /* the answer reached Limits.MaxAllBytes: stop adding */
    char *last_done; /* last gid of this batch looked at before the budget was hit */
    char *status, *type;
    int64_t ct_start, ct_end; /* ms, 0 = unset */
    /* "stuck" filter (admin UI): unfinished and retried at least this many
     * times, or created at least this long ago (ms); 0 = unset. */
    int64_t stuck_retries, stuck_age_ms, now_ms;
    char *only_gid;
    sbuf out;
} all_ctx;

static void all_fetch(api_call *c);

/* c->extra (the all_ctx itself) is freed with the api_call; its members here. */
static void all_ctx_release(all_ctx *x) {
    free(x->after);
    free(x->status);
    free(x->type);
    free(x->only_gid);
    free(x->last_done);
    sb_free(&x->out);
    x->after = x->status = x->type = x->only_gid = x->last_done = NULL;
}

static void all_finish(api_call *c, int done) {
    all_ctx *x = c->extra;
    sbuf b;
    sb_init(&b);
    sb_puts(&b, "{\"transactions\":");
    if (x->found == 0 && x->only_gid) {
        sb_puts(&b, "null");
    } else {
        sb_putc(&b, '[');
        sb_append(&b, x->out.ptr ? x->out.ptr : "", x->out.len);
        sb_putc(&b, ']');
    }
    sb_puts(&b, ",\"next_position\":");
    if (done || x->only_gid) {
        sb_puts(&b, "\"\"");
    } else {
        sbuf pos;
        sb_init(&pos);
        sb_printf(&pos, "%d:", x->shard);
        if (x->after) sb_puts(&pos, x->after);
        sb_json_str(&b, pos.ptr, pos.len);
        sb_free(&pos);
    }
    sb_putc(&b, '}');
    all_ctx_release(x);
    api_reply_json(c, 200, b.ptr);
    sb_free(&b);
}

static int all_match(all_ctx *x, const trans *t) {
    if (x->status && strcmp(x->status, global_status_name(t->status)) != 0) return 0;
    if (x->type && strcmp(x->type, trans_type_name(t->type)) != 0) return 0;
    /* dtm compares whole seconds, strictly after / before. */
    if (x->ct_start && !(t->create_ms / 1000 > x->ct_start / 1000)) return 0;
    if (x->ct_end && !(t->create_ms / 1000 < x->ct_end / 1000)) return 0;
    if (x->stuck_retries || x->stuck_age_ms) {
        if (global_status_final(t->status)) return 0;
        int retried = x->stuck_retries && t->retry_count >= x->stuck_retries;
        int old = x->stuck_age_ms && x->now_ms - t->create_ms >= x->stuck_age_ms;
        if (!retried && !old) return 0;
    }
    return 1;
}

static void all_batch_done(api_call *c) {
    all_ctx *x = c->extra;
    if (x->store_failed) {
        all_ctx_release(x);
        api_reply_error(c, 503, "store unavailable");
        return;
    }
    if (x->budget_hit) { /* page on after the last transaction looked at */
        free(x->after);
        x->after = x->last_done;
        x->last_done = NULL;
        all_finish(c, 0);
        return;
    }
    if (!x->batch_full) { /* this shard is exhausted */
        x->shard++;
        free(x->after);
        x->after = NULL;
    }
    int all_done = x->shard >= c->cfg->store_shards;
    if (all_done || x->only_gid || x->found >= x->limit || x->scanned >= x->limit * 10) {
        all_finish(c, all_done);
        return;
    }
    all_fetch(c);
}

/* One HGETALL of a listing: the gid rides along, as the cursor to page on
 * from when the byte budget stops the answer after it. */
typedef struct all_item {
    api_call *c;
    char *gid;
} all_item;

/* Replies arrive in the order the HGETALLs were sent (one connection), so
 * records are listed in index order. An index entry whose hash has expired
 * is skipped here and left to the scanner's trim (src/retention.c). */
static void all_item_loaded(void *arg, redisReply *reply, const char *err) {
    all_item *it = arg;
    api_call *c = it->c;
    all_ctx *x = c->extra;
    if (err) {
        x->store_failed = 1;
    } else if (!x->budget_hit) {
        trans *t = trans_from_hash(reply);
        if (t && all_match(x, t)) {
            if (x->found++) sb_putc(&x->out, ',');
            trans_to_json(t, &x->out);
        }
        trans_free(t);
        free(x->last_done);
        x->last_done = it->gid;
        it->gid = NULL;
        if (x->out.len >= c->cfg->max_all_bytes) x->budget_hit = 1;
    }
    free(it->gid);
    free(it);
    if (--x->pending == 0) all_batch_done(c);
}

static void all_load(api_call *c, int shard, const char *gid) {
    all_ctx *x = c->extra;
    all_item *it = xcalloc(1, sizeof *it);
    it->c = c;
    it->gid = xstrdup(gid);
    rargs a;
    ra_init(&a);
    sbuf k;
    sb_init(&k);
    key_trans(&k, c->cfg->redis_prefix, shard, gid);
    ra_adds(&a, "HGETALL");
    ra_add(&a, k.ptr, k.len);
    sb_free(&k);
    x->pending++;
    store_command(&a, all_item_loaded, it);
}

static void all_index_listed(void *arg, redisReply *reply, const char *err) {
    api_call *c = arg;
    all_ctx *x = c->extra;
    if (err) {
        all_ctx_release(x);
        api_reply_store_error(c, NULL, err);
        return;
    }
    size_t n = reply->type == REDIS_REPLY_ARRAY ? reply->elements : 0;
    x->batch_full = (int)n >= x->asked;
    x->scanned += (int)n;
    if (n == 0) {
        all_batch_done(c);
        return;
    }
    free(x->after);
    x->after = xstrdup(reply->element[n - 1]->str);
    for (size_t i = 0; i < n; i++) all_load(c, x->shard, reply->element[i]->str);
}

/* Records are fetched in batches sized to the byte budget left, judged by
 * the records seen so far: a batch of huge records cannot make Redis (its
 * output buffer) or dtmd hold far more than one answer's worth. */
static int all_batch_size(const api_call *c, const all_ctx *x) {
    int want = x->limit - x->found;
    int n = 64;
    if (x->found > 0) {
        size_t avg = x->out.len / (size_t)x->found + 1;
        size_t left = c->cfg->max_all_bytes > x->out.len ? c->cfg->max_all_bytes - x->out.len : 0;
        size_t fit = left / avg + 1;
        n = fit > 1000 ? 1000 : (int)fit;
    }
    return want < n ? want : n;
}

static void all_fetch(api_call *c) {
    all_ctx *x = c->extra;
    rargs a;
    ra_init(&a);
    sbuf k;
    sb_init(&k);
    key_index(&k, c->cfg->redis_prefix, x->shard);
    ra_adds(&a, "ZRANGEBYLEX");
    ra_add(&a, k.ptr, k.len);
    if (x->after) {
        sb_reset(&k);
        sb_putc(&k, '(');
        sb_puts(&k, x->after);
        ra_add(&a, k.ptr, k.len);
    } else {
        ra_adds(&a, "-");
    }
    ra_adds(&a, "+");
    ra_adds(&a, "LIMIT");
    ra_adds(&a, "0");
    x->asked = all_batch_size(c, x);
    ra_addi(&a, x->asked);
    sb_free(&k);
    store_command(&a, all_index_listed, c);
}

static int param_int(struct evkeyvalq *q, const char *name, int64_t def, int64_t *out) {
    const char *v = evhttp_find_header(q, name);
    if (!v || !*v) {
        *out = def;
        return 0;
    }
    return parse_i64(v, out);
}

void api_all(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)body, (void)len;
    all_ctx *x = xcalloc(1, sizeof *x);
    int64_t limit, cts, cte;
    char msg[160];
    if (param_int(q, "limit", 100, &limit) || limit <= 0 || limit > 10000) {
        free(x);
        api_reply_error(c, 400, "limit must be an integer between 1 and 10000");
        return;
    }
    if (param_int(q, "createTimeStart", 0, &cts) || param_int(q, "createTimeEnd", 0, &cte) ||
        cts < 0 || cte < 0) {
        free(x);
        api_reply_error(c, 400, "createTimeStart/createTimeEnd must be epoch milliseconds");
        return;
    }
    int64_t sr, sa;
    if (param_int(q, "stuckRetries", 0, &sr) || param_int(q, "stuckAge", 0, &sa) || sr < 0 ||
        sa < 0 || sa > INT64_MAX / 1000) {
        free(x);
        api_reply_error(c, 400, "stuckRetries/stuckAge must be non-negative integers");
        return;
    }
    x->limit = (int)limit;
    x->ct_start = cts;
    x->ct_end = cte;
    x->stuck_retries = sr;
    x->stuck_age_ms = sa * 1000;
    x->now_ms = now_ms();
    const char *v;
    if ((v = evhttp_find_header(q, "status")) && *v) x->status = xstrdup(v);
    if ((v = evhttp_find_header(q, "transType")) && *v) x->type = xstrdup(v);
    const char *pos = evhttp_find_header(q, "position");
    if (pos && *pos) {
        char *colon = strchr(pos, ':');
        int64_t shard;
        char num[16];
        size_t nl = colon ? (size_t)(colon - pos) : 0;
        if (!colon || nl == 0 || nl >= sizeof num) goto bad_pos;
        memcpy(num, pos, nl);
        num[nl] = '\0';
        if (parse_i64(num, &shard) || shard < 0 || shard >= c->cfg->store_shards) goto bad_pos;
        x->shard = (int)shard;
        if (colon[1]) x->after = xstrdup(colon + 1);
    }
    c->extra = x;
    if ((v = evhttp_find_header(q, "gid")) && *v) {
        /* One transaction: look it up directly in its shard. */
        x->only_gid = xstrdup(v);
        x->shard = key_shard(v, strlen(v), c->cfg->store_shards);
        all_load(c, x->shard, v);
        return;
    }
    all_fetch(c);
    return;
bad_pos:
    snprintf(msg, sizeof msg, "position '%.60s' is not a cursor returned by /all", pos);
    all_ctx_release(x);
    free(x);
    api_reply_error(c, 400, msg);
}

/* ---- resetCronTime ------------------------------------------------------ */

/* Shards are asked one after the other so the limit is exact. The
 * transactions' own next_cron_time fields are not rewritten: the due index
 * is what schedules them, and their next pass rewrites the field. */
typedef struct reset_ctx {
    int shard;
    int64_t threshold, now, remaining;
    int64_t moved;
    int more;
} reset_ctx;

static void reset_next(api_call *c);

#define RESET_MAX_TIMEOUT 1000000000LL
#define RESET_MAX_LIMIT 10000LL

static void reset_done(void *arg, redisReply *reply, const char *err) {
    api_call *c = arg;
    reset_ctx *x = c->extra;
    if (err) {
        api_reply_store_error(c, NULL, err);
        return;
    }
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
        x->moved += reply->element[0]->integer;
        x->remaining -= reply->element[0]->integer;
        if (reply->element[1]->integer) x->more = 1;
    }
    x->shard++;
    reset_next(c);
}

static void reset_next(api_call *c) {
    reset_ctx *x = c->extra;
    /* Once the limit is used up, the remaining shards are still asked (with
     * limit 0, moving nothing) whether they hold a match: has_remaining. */
    if (x->shard >= c->cfg->store_shards || (x->remaining <= 0 && x->more)) {
        char json[96];
        snprintf(json, sizeof json, "{\"has_remaining\":%s,\"succeed_count\":%lld}",
                 x->more ? "true" : "false", (long long)x->moved);
        api_reply_json(c, 200, json);
        return;
    }
    rargs a;
    ra_init(&a);
    sbuf k;
    sb_init(&k);
    key_due(&k, c->cfg->redis_prefix, x->shard);
    ra_add(&a, k.ptr, k.len);
    sb_free(&k);
    ra_addi(&a, x->threshold);
    ra_addi(&a, x->now);
    ra_addi(&a, x->remaining > 0 ? x->remaining : 0);
    store_script("reset_cron", 1, &a, reset_done, c);
}

void api_reset_cron_time(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)body, (void)len;
    int64_t timeout, limit;
    int64_t def_timeout = (int64_t)(c->cfg->timeout_to_fail * 3);
    /* bounded so that now + timeout in milliseconds cannot overflow, and the
     * one script call (one shard) stays short */
    if (param_int(q, "timeout", def_timeout, &timeout) || timeout < 0 ||
        timeout > RESET_MAX_TIMEOUT) {
        api_reply_error(c, 400, "timeout must be an integer between 0 and 1000000000 (seconds)");
        return;
    }
    if (param_int(q, "limit", 100, &limit) || limit <= 0 || limit > RESET_MAX_LIMIT) {
        api_reply_error(c, 400, "limit must be an integer between 1 and 10000");
        return;
    }
    reset_ctx *x = xcalloc(1, sizeof *x);
    x->now = now_ms();
    x->threshold = x->now + timeout * 1000;
    x->remaining = limit;
    c->extra = x;
    reset_next(c);
}
