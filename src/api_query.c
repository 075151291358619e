/* api_query.c - read-only and admin endpoints: query, all, resetCronTime.
 *
 * /all lists newest first across all shards: it merges the shards' index
 * streams (keys.h: an entry per stored gid, its id Redis' time of the store)
 * instead of SCANning the keyspace. The cursor "<entry ms>:<gid>" is the
 * last entry a page looked at, so a page
 * goes on strictly after it in every shard, transactions created meanwhile
 * (later) never shift it, and it works the same on Redis Cluster. A page
 * costs one all_page script per shard (pipelined) plus one HGETALL per
 * listed transaction (pipelined). Index entries whose record has expired,
 * and stale ones (the gid stored again since: retention.h), are skipped; the
 * retry scanner deletes them. */
#include "api_handlers.h"

#include "log.h"
#include "retention.h"
#include "trans_json.h"
#include "trans_store.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>

/* ---- query ------------------------------------------------------------- */

static void query_loaded(void *arg, tstore_reply *reply, const char *err) {
    api_call *c = arg;
    if (err) {
        api_reply_store_error(c, c->gid, err);
        return;
    }
    if (reply->tag == TS_NOT_FOUND) {
        api_reply_json(c, 200, "{\"transaction\":null,\"branches\":[]}");
        return;
    }
    const trans *t = reply->t;
    if (!t) {
        api_reply_error(c, 500, "stored transaction is malformed");
        return;
    }
    sbuf b;
    sb_init(&b);
    trans_answer_json(t, "branches", &b);
    api_reply_json(c, 200, b.ptr);
    sb_free(&b);
}

void api_query(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)body, (void)len;
    const char *gid = evhttp_find_header(q, "gid");
    if (!gid || !*gid) {
        api_reply_error(c, 400, "no gid specified");
        return;
    }
    c->gid = xstrdup(gid);
    tstore_load(gid, query_loaded, c);
}

/* ---- all ---------------------------------------------------------------- */

/* One shard's index entries fetched and not yet merged, and where its next
 * fetch starts: after the last entry fetched from it (or the page's cursor). */
typedef struct all_shard {
    char **gids;
    int64_t *ms;
    int n, next;  /* entries fetched, the next to merge */
    int ended;    /* the last fetch came back short: nothing after them */
    int fetching; /* an all_page in flight */
    int64_t from_ms;
    char *from_gid; /* NULL = from the page's cursor */
} all_shard;

/* One HGETALL of a listing: its index entry rides along, as the cursor to
 * page on from when the byte budget stops the answer after it. */
typedef struct all_item {
    api_call *c;
    char *gid;
    int64_t ms;
    trans *t;   /* its record once loaded and until listed, NULL if none */
    int loaded; /* its HGETALL answered */
} all_item;

struct all_ctx {
    int limit;
    int found;   /* records written to out */
    int scanned; /* index entries looked at (bounds work for selective filters) */
    int pending; /* HGETALLs in flight */
    int fetches; /* all_page calls in flight */
    int store_failed;
    int budget_hit; /* the answer reached Limits.MaxAllBytes: stop adding */
    /* the cursor: the last entry looked at, newest first; NULL = the start */
    int64_t pos_ms;
    char *pos_gid;
    all_item **batch; /* merged entries to load, in order */
    int nbatch;
    int emitted;       /* batch entries listed so far (all_emit) */
    all_shard *shards; /* Store.Shards of them */
    int nshards;
    char *status, *type;
    int64_t ct_start, ct_end; /* ms, 0 = unset */
    /* "stuck" filter (admin UI): unfinished and retried at least this many
     * times, or created at least this long ago (ms); 0 = unset. */
    int64_t stuck_retries, stuck_age_ms, now_ms;
    char *only_gid;
    sbuf out;
};
typedef struct all_ctx all_ctx;

#define ALL_FETCH_MAX 256 /* index entries one all_page call returns at most */

static void all_next(api_call *c);
static void all_items_free(all_ctx *x);

static void all_shard_clear(all_shard *s) {
    for (int i = 0; i < s->n; i++) free(s->gids[i]);
    free(s->gids);
    free(s->ms);
    s->gids = NULL;
    s->ms = NULL;
    s->n = s->next = 0;
}

/* c->all (the all_ctx itself) is freed with the api_call; its members here. */
static void all_ctx_release(all_ctx *x) {
    for (int i = 0; x->shards && i < x->nshards; i++) {
        all_shard_clear(&x->shards[i]);
        free(x->shards[i].from_gid);
    }
    free(x->shards);
    all_items_free(x);
    free(x->batch);
    free(x->pos_gid);
    free(x->status);
    free(x->type);
    free(x->only_gid);
    sb_free(&x->out);
    x->shards = NULL;
    x->nshards = x->nbatch = 0;
    x->batch = NULL;
    x->pos_gid = x->status = x->type = x->only_gid = NULL;
}

static void all_finish(api_call *c, int done) {
    all_ctx *x = c->all;
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
    if (done || x->only_gid || !x->pos_gid) {
        sb_puts(&b, "\"\"");
    } else {
        sbuf pos;
        sb_init(&pos);
        sb_printf(&pos, "%lld:%s", (long long)x->pos_ms, x->pos_gid);
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

/* Every shard fetched to its end and merged: the listing is complete. */
static int all_exhausted(const all_ctx *x) {
    for (int i = 0; i < x->nshards; i++)
        if (!x->shards[i].ended || x->shards[i].next < x->shards[i].n) return 0;
    return 1;
}

static void all_items_free(all_ctx *x) {
    for (int i = 0; i < x->nbatch; i++) {
        trans_free(x->batch[i]->t);
        free(x->batch[i]->gid);
        free(x->batch[i]);
    }
    x->nbatch = x->emitted = 0;
}

/* Every record of the batch is in (and listed): page on, or answer. */
static void all_batch_done(api_call *c) {
    all_ctx *x = c->all;
    if (x->store_failed) {
        all_ctx_release(x);
        api_reply_error(c, 503, "store unavailable");
        return;
    }
    all_items_free(x);
    if (x->budget_hit) {
        all_finish(c, 0);
        return;
    }
    if (x->only_gid || all_exhausted(x)) {
        all_finish(c, 1);
        return;
    }
    if (x->found >= x->limit || x->scanned >= x->limit * 10) {
        all_finish(c, 0);
        return;
    }
    all_next(c);
}

/* An entry older than its record's creation by more than the clocks' skew
 * can be: the gid's earlier entry, from before its hash expired and it was
 * stored again (retention.h). Its newer entry lists it. */
static int all_stale(const api_call *c, const all_item *it) {
    const all_ctx *x = c->all;
    int64_t stored = it->t->create_ms - it->t->create_shift_ms;
    return !x->only_gid && stored > it->ms + retention_stale_ms(c->cfg);
}

/* List the batch's records in merge order as far as they are in: one Redis
 * answers in the order asked, so each at once; a cluster's masters in any
 * order, so a record may wait for those before it. The cursor moves past
 * each one looked at, up to the byte budget. */
static void all_emit(api_call *c) {
    all_ctx *x = c->all;
    while (x->emitted < x->nbatch && x->batch[x->emitted]->loaded && !x->budget_hit) {
        all_item *it = x->batch[x->emitted++];
        if (it->t && !all_stale(c, it) && all_match(x, it->t)) {
            if (x->found++) sb_putc(&x->out, ',');
            trans_to_json(it->t, &x->out);
        }
        trans_free(it->t);
        it->t = NULL;
        free(x->pos_gid);
        x->pos_gid = it->gid;
        x->pos_ms = it->ms;
        it->gid = NULL;
        if (x->out.len >= c->cfg->max_all_bytes) x->budget_hit = 1;
    }
}

/* An index entry whose hash has expired reads as no record: skipped, and
 * left to the scanner's trim (src/retention.c). Past the byte budget the
 * records still arriving are not even parsed. */
static void all_item_loaded(void *arg, tstore_reply *reply, const char *err) {
    all_item *it = arg;
    api_call *c = it->c;
    all_ctx *x = c->all;
    if (err) {
        x->store_failed = 1;
    } else if (!x->budget_hit && !x->store_failed) {
        it->t = reply->t;
        reply->t = NULL;
        it->loaded = 1;
        all_emit(c);
    }
    if (--x->pending == 0) all_batch_done(c);
}

static void all_load(api_call *c, all_item *it) {
    all_ctx *x = c->all;
    x->pending++;
    tstore_load(it->gid, all_item_loaded, it);
}

/* Records are fetched in batches sized to the byte budget left, judged by
 * the records seen so far: a batch of huge records cannot make Redis (its
 * output buffer) or dtmd hold far more than one answer's worth. The first
 * batch, with no size known yet, is small for the same reason. */
static int all_batch_size(const api_call *c, const all_ctx *x) {
    int want = x->limit - x->found;
    int n = 8;
    if (x->found > 0) {
        size_t avg = x->out.len / (size_t)x->found + 1;
        size_t left = c->cfg->max_all_bytes > x->out.len ? c->cfg->max_all_bytes - x->out.len : 0;
        size_t fit = left / avg + 1;
        n = fit > 1000 ? 1000 : (int)fit;
    }
    int scan_left = x->limit * 10 - x->scanned;
    if (scan_left < n) n = scan_left;
    return want < n ? want : n;
}

/* Newest first: the later entry ms, then the greater gid (bytes), the order
 * each shard's all_page answers in (lua/all_page.lua). */
static int all_newer(int64_t ams, const char *agid, int64_t bms, const char *bgid) {
    if (ams != bms) return ams > bms;
    return strcmp(agid, bgid) > 0;
}

typedef struct all_fetch_arg {
    api_call *c;
    int shard;
} all_fetch_arg;

static void all_page_listed(void *arg, redisReply *reply, const char *err) {
    all_fetch_arg *fa = arg;
    api_call *c = fa->c;
    all_ctx *x = c->all;
    all_shard *s = &x->shards[fa->shard];
    int asked = s->fetching;
    free(fa);
    s->fetching = 0;
    x->fetches--;
    if (err || reply->type != REDIS_REPLY_ARRAY || reply->elements % 2) {
        if (!x->store_failed) log_warn("all: shard index unreadable: %s", err ? err : "bad reply");
        x->store_failed = 1;
    } else {
        all_shard_clear(s);
        int n = (int)reply->elements / 2;
        s->gids = xcalloc((size_t)n + 1, sizeof *s->gids);
        s->ms = xcalloc((size_t)n + 1, sizeof *s->ms);
        for (int i = 0; i < n; i++) {
            redisReply *g = reply->element[2 * i], *sc = reply->element[2 * i + 1];
            s->gids[i] = xstrndup(g->str ? g->str : "", g->len);
            s->ms[i] = sc->str ? (int64_t)strtod(sc->str, NULL) : 0;
        }
        s->n = n;
        s->ended = n < asked;
        if (n > 0) {
            free(s->from_gid);
            s->from_gid = xstrdup(s->gids[n - 1]);
            s->from_ms = s->ms[n - 1];
        }
    }
    if (x->fetches > 0) return;
    if (x->store_failed) {
        all_ctx_release(x);
        api_reply_error(c, 503, "store unavailable");
        return;
    }
    all_next(c);
}

/* One all_page per shard whose merged entries ran out, pipelined. */
static void all_fetch(api_call *c, int count) {
    all_ctx *x = c->all;
    if (count > ALL_FETCH_MAX) count = ALL_FETCH_MAX;
    for (int i = 0; i < x->nshards; i++) {
        all_shard *s = &x->shards[i];
        if (s->ended || s->next < s->n) continue;
        const char *from = s->from_gid ? s->from_gid : x->pos_gid;
        int64_t from_ms = s->from_gid ? s->from_ms : x->pos_ms;
        all_fetch_arg *fa = xcalloc(1, sizeof *fa);
        fa->c = c;
        fa->shard = i;
        s->fetching = count;
        x->fetches++;
        tstore_all_page(i, from_ms, from, count, all_page_listed, fa);
    }
}

/* Merge the shards' entries, newest first, into the next batch and load its
 * records; fetch from the shards first wherever the merge cannot tell what
 * comes next. One page thus costs one all_page per shard (more only for long
 * pages or selective filters) and one HGETALL per entry looked at. */
static void all_next(api_call *c) {
    all_ctx *x = c->all;
    int want = all_batch_size(c, x);
    if (!x->batch) /* all_batch_size's most */
        x->batch = xcalloc((size_t)(x->limit < 1000 ? x->limit : 1000) + 1, sizeof *x->batch);
    while (x->nbatch < want) {
        int best = -1, need_fetch = 0;
        for (int i = 0; i < x->nshards; i++) {
            all_shard *s = &x->shards[i];
            if (s->next >= s->n) {
                if (!s->ended) need_fetch = 1;
                continue;
            }
            if (best < 0 || all_newer(s->ms[s->next], s->gids[s->next],
                                      x->shards[best].ms[x->shards[best].next],
                                      x->shards[best].gids[x->shards[best].next]))
                best = i;
        }
        if (need_fetch) {
            /* one more than needed: a full answer then means more follow */
            all_fetch(c, want - x->nbatch + 1);
            return;
        }
        if (best < 0) break;
        all_shard *s = &x->shards[best];
        all_item *it = xcalloc(1, sizeof *it);
        it->c = c;
        it->ms = s->ms[s->next];
        it->gid = s->gids[s->next];
        s->gids[s->next++] = NULL;
        x->batch[x->nbatch++] = it;
    }
    if (x->nbatch == 0) {
        all_finish(c, 1);
        return;
    }
    x->scanned += x->nbatch;
    for (int i = 0; i < x->nbatch; i++) all_load(c, x->batch[i]);
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
        /* "<creation time ms>:<gid>": the last entry the page before looked at */
        const char *colon = strchr(pos, ':');
        int64_t when;
        char num[24];
        size_t nl = colon ? (size_t)(colon - pos) : 0;
        if (!colon || nl == 0 || nl >= sizeof num || !colon[1] ||
            (int)strlen(colon + 1) > c->cfg->max_gid_length)
            goto bad_pos;
        memcpy(num, pos, nl);
        num[nl] = '\0';
        if (num[0] < '0' || num[0] > '9' || parse_i64(num, &when) || when < 0) goto bad_pos;
        x->pos_ms = when;
        x->pos_gid = xstrdup(colon + 1);
    }
    c->all = x;
    x->nshards = c->cfg->store_shards;
    if ((v = evhttp_find_header(q, "gid")) && *v) {
        /* One transaction: look it up directly in its shard. */
        x->only_gid = xstrdup(v);
        all_item *it = xcalloc(1, sizeof *it);
        it->c = c;
        it->gid = xstrdup(v);
        x->batch = xcalloc(1, sizeof *x->batch);
        x->batch[x->nbatch++] = it;
        all_load(c, it);
        return;
    }
    x->shards = xcalloc((size_t)x->nshards, sizeof *x->shards);
    all_next(c);
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
struct reset_ctx {
    int shard;
    int64_t threshold, now, remaining;
    int64_t moved;
    int more;
};
typedef struct reset_ctx reset_ctx;

static void reset_next(api_call *c);

#define RESET_MAX_TIMEOUT 1000000000LL
#define RESET_MAX_LIMIT 10000LL

static void reset_done(void *arg, redisReply *reply, const char *err) {
    api_call *c = arg;
    reset_ctx *x = c->reset;
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
    reset_ctx *x = c->reset;
    /* Once the limit is used up, the remaining shards are still asked (with
     * limit 0, moving nothing) whether they hold a match: has_remaining. */
    if (x->shard >= c->cfg->store_shards || (x->remaining <= 0 && x->more)) {
        char json[96];
        snprintf(json, sizeof json, "{\"has_remaining\":%s,\"succeed_count\":%lld}",
                 x->more ? "true" : "false", (long long)x->moved);
        api_reply_json(c, 200, json);
        return;
    }
    tstore_reset_cron(x->shard, x->threshold, x->now, x->remaining > 0 ? x->remaining : 0,
                      reset_done, c);
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
    c->reset = x;
    reset_next(c);
}
