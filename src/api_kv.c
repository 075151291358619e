/* api_kv.c - topics (msg fan-out) and the KV endpoints queryKV / scanKV.
 *
 * KV records live in one hash per category (keys.h), so every topic
 * operation is a single-key script and /scanKV is an HSCAN: both behave the
 * same on Redis Cluster. Topics are read from the store when a msg is
 * created (not from a cache), so a subscription is visible at once to every
 * dtmd sharing the store and deleted topics are gone (docs/protocol.md#topics-and-kv). */
#include "api_handlers.h"
#include "auth.h"

#include "keys.h"
#include "log.h"
#include "store.h"

#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

static void kv_key(api_call *c, sbuf *k, const char *cat) {
    sb_init(k);
    key_kv(k, c->cfg->redis_prefix, cat);
}

static void sub_done(void *arg, redisReply *reply, const char *err) {
    api_call *c = arg;
    if (err) {
        api_reply_store_error(c, NULL, err);
        return;
    }
    const char *s =
        reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS ? reply->str : "";
    if (strcmp(s, "OK") == 0)
        api_reply_ok(c);
    else if (strcmp(s, "EXISTS") == 0)
        api_reply_failure(c, "this url exists");
    else if (strcmp(s, "NO_TOPIC") == 0)
        api_reply_error(c, 404, "no such a topic");
    else if (strcmp(s, "EMPTY") == 0)
        api_reply_failure(c, "this topic is empty");
    else if (strcmp(s, "NO_URL") == 0)
        api_reply_error(c, 404, "no such an url");
    else
        api_reply_error(c, 500, "unexpected reply from store");
}

/* Parameters come from the query string (dtm) or, for POST, a JSON body. */
static const char *param(struct evkeyvalq *q, yajl_val body, const char *name) {
    const char *v = evhttp_find_header(q, name);
    if (v) return v;
    yajl_val j = json_field(body, name);
    return j && YAJL_IS_STRING(j) ? j->u.string : NULL;
}

static void topic_change(api_call *c, struct evkeyvalq *q, const char *body, size_t len,
                         int subscribe) {
    yajl_val root = NULL;
    if (len) {
        char err[256];
        root = json_parse(body, len, err, sizeof err);
        if (!root) {
            api_reply_error(c, 400, err);
            return;
        }
    }
    const char *topic = param(q, root, "topic"), *url = param(q, root, "url");
    const char *remark = param(q, root, "remark");
    char allow_err[320];
    if (!topic || !*topic) {
        api_reply_error(c, 400, "empty topic");
    } else if (!url || !*url) {
        api_reply_error(c, 400, "empty url");
    } else if (!url_is_http(url)) {
        api_reply_error(c, 400, "url must be an http(s) URL");
    } else if (branch_url_check(c->cfg, url, "url", allow_err, sizeof allow_err)) {
        api_reply_error(c, 400, allow_err);
    } else {
        char ts[48];
        format_time_ms(now_ms(), ts, sizeof ts);
        rargs a;
        ra_init(&a);
        sbuf k;
        kv_key(c, &k, "topics");
        ra_add(&a, k.ptr, k.len);
        sb_free(&k);
        ra_adds(&a, topic);
        ra_adds(&a, url);
        if (subscribe) ra_adds(&a, remark ? remark : "");
        ra_adds(&a, ts);
        store_script(subscribe ? "kv_subscribe" : "kv_unsubscribe", 1, &a, sub_done, c);
    }
    if (root) json_free(root);
}

void api_subscribe(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    topic_change(c, q, body, len, 1);
}

void api_unsubscribe(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    topic_change(c, q, body, len, 0);
}

static void deleted(void *arg, redisReply *reply, const char *err) {
    api_call *c = arg;
    if (err)
        api_reply_store_error(c, NULL, err);
    else if (reply->integer == 0)
        api_reply_error(c, 404, "storage: NotFound: no such topic");
    else
        api_reply_ok(c);
}

void api_delete_topic(api_call *c, const char *topic) {
    rargs a;
    ra_init(&a);
    sbuf k;
    kv_key(c, &k, "topics");
    ra_adds(&a, "HDEL");
    ra_add(&a, k.ptr, k.len);
    ra_adds(&a, topic);
    sb_free(&k);
    store_command(&a, deleted, c);
}

/* ---- queryKV / scanKV --------------------------------------------------- */

static void kv_listed(void *arg, redisReply *reply, const char *err) {
    api_call *c = arg;
    if (err) {
        api_reply_store_error(c, NULL, err);
        return;
    }
    sbuf b;
    sb_init(&b);
    const redisReply *items = reply;
    const char *cursor = NULL;
    int scan = c->kv_read == KV_SCAN;
    if (scan && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
        cursor = reply->element[0]->str;
        items = reply->element[1];
    }
    int by_key = c->kv_read == KV_ONE_KEY;
    sb_puts(&b, "{\"kv\":");
    size_t n = 0;
    if (by_key) {
        sb_putc(&b, '[');
        if (items->type == REDIS_REPLY_STRING) {
            sb_append(&b, items->str, items->len);
            n = 1;
        }
        sb_putc(&b, ']');
    } else if (items->type == REDIS_REPLY_ARRAY && items->elements >= 2) {
        sb_putc(&b, '[');
        for (size_t i = 1; i < items->elements; i += 2) {
            if (i > 1) sb_putc(&b, ',');
            sb_append(&b, items->element[i]->str, items->element[i]->len);
            n++;
        }
        sb_putc(&b, ']');
    } else {
        sb_puts(&b, scan ? "[]" : "null");
    }
    if (scan) {
        sb_puts(&b, ",\"next_position\":");
        const char *next = cursor && strcmp(cursor, "0") != 0 ? cursor : "";
        sb_json_str(&b, next, strlen(next));
    }
    sb_putc(&b, '}');
    (void)n;
    api_reply_json(c, 200, b.ptr);
    sb_free(&b);
}

void api_query_kv(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)body, (void)len;
    const char *cat = evhttp_find_header(q, "cat"), *key = evhttp_find_header(q, "key");
    if (!cat || !*cat) {
        api_reply_error(c, 400, "cat is required");
        return;
    }
    rargs a;
    ra_init(&a);
    sbuf k;
    kv_key(c, &k, cat);
    if (key && *key) {
        c->kv_read = KV_ONE_KEY;
        ra_adds(&a, "HGET");
        ra_add(&a, k.ptr, k.len);
        ra_adds(&a, key);
    } else {
        ra_adds(&a, "HGETALL");
        ra_add(&a, k.ptr, k.len);
    }
    sb_free(&k);
    store_command(&a, kv_listed, c);
}

void api_scan_kv(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)body, (void)len;
    const char *cat = evhttp_find_header(q, "cat"), *pos = evhttp_find_header(q, "position");
    const char *lim = evhttp_find_header(q, "limit");
    int64_t limit = 100, cursor = 0;
    if (!cat || !*cat) {
        api_reply_error(c, 400, "cat is required");
        return;
    }
    /* COUNT bounds the work of one HSCAN call in Redis */
    if ((lim && *lim && (parse_i64(lim, &limit) || limit <= 0 || limit > 10000)) ||
        (pos && *pos && (parse_i64(pos, &cursor) || cursor < 0))) {
        api_reply_error(c, 400,
                        "limit must be an integer between 1 and 10000, position a non-negative "
                        "integer");
        return;
    }
    c->kv_read = KV_SCAN;
    rargs a;
    ra_init(&a);
    sbuf k;
    kv_key(c, &k, cat);
    ra_adds(&a, "HSCAN");
    ra_add(&a, k.ptr, k.len);
    ra_addi(&a, cursor);
    ra_adds(&a, "COUNT");
    ra_addi(&a, limit);
    sb_free(&k);
    store_command(&a, kv_listed, c);
}

void api_load_topics(const dtmd_config *cfg, char *const *names, size_t n, store_cb *cb,
                     void *arg) {
    rargs a;
    ra_init(&a);
    sbuf k;
    sb_init(&k);
    key_kv(&k, cfg->redis_prefix, "topics");
    ra_adds(&a, "HMGET");
    ra_add(&a, k.ptr, k.len);
    sb_free(&k);
    for (size_t i = 0; i < n; i++) ra_adds(&a, names[i]);
    store_command(&a, cb, arg);
}
