/* trans_store.c - transactions in Redis: keys, hash encoding, script
 * arguments and replies (see trans_store.h). */
#include "trans_store.h"

#include "keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
    const char *prefix;
    int nshards;
    const char *holder; /* this process's identity ("" until liveness sets it) */
    int64_t holder_ttl_ms;
} ts = {"", 1, "", 0};

void tstore_init(const dtmd_config *cfg) {
    ts.prefix = cfg->redis_prefix;
    ts.nshards = cfg->store_shards;
}

void tstore_set_holder(const char *id, int64_t ttl_ms) {
    ts.holder = id;
    ts.holder_ttl_ms = ttl_ms;
}

int tstore_shard(const char *gid) {
    return key_shard(gid, strlen(gid), ts.nshards);
}

/* ---- keys ---------------------------------------------------------------- */

typedef enum { K_TRANS, K_DUE, K_INDEX, K_OLD_INDEX, K_EXPIRY, K_LIVE } key_kind;

/* Append the key of one kind for a shard (gid: the transaction's). */
static void add_key(rargs *a, key_kind k, int shard, const char *gid) {
    sbuf s;
    sb_init(&s);
    switch (k) {
        case K_TRANS:
            key_trans(&s, ts.prefix, shard, gid);
            break;
        case K_DUE:
            key_due(&s, ts.prefix, shard);
            break;
        case K_INDEX:
            key_index(&s, ts.prefix, shard);
            break;
        case K_OLD_INDEX:
            key_old_index(&s, ts.prefix, shard);
            break;
        case K_EXPIRY:
            key_expiry(&s, ts.prefix, shard);
            break;
        case K_LIVE:
            key_live(&s, ts.prefix, shard);
            break;
    }
    ra_add(a, s.ptr, s.len);
    sb_free(&s);
}

/* Append the keys of gid, in the order given (n of them). */
static void add_gid_keys(rargs *a, const char *gid, int n, const key_kind *kinds) {
    int shard = tstore_shard(gid);
    for (int i = 0; i < n; i++) add_key(a, kinds[i], shard, gid);
}

/* The holder's two arguments every hold-taking script reads. */
static void add_holder(rargs *a) {
    ra_adds(a, ts.holder);
    ra_addi(a, ts.holder_ttl_ms);
}

/* ---- replies ------------------------------------------------------------- */

static const struct {
    const char *text;
    tstore_tag tag;
} tag_names[] = {
    {"OK", TS_OK},
    {"EXISTS", TS_EXISTS},
    {"CONFLICT", TS_CONFLICT},
    {"WRONG_TYPE", TS_WRONG_TYPE},
    {"NOT_FOUND", TS_NOT_FOUND},
    {"BUSY", TS_BUSY},
    {"LOST", TS_LOST},
    {"STOP", TS_STOP},
    {"HELD", TS_HELD},
    {"SAME", TS_SAME},
    {"DUPLICATE", TS_DUPLICATE},
    {"TOO_MANY", TS_TOO_MANY},
    {"NONE", TS_NONE},
    {"NOT_OURS", TS_NOT_OURS},
};

static int is_text(const redisReply *r) {
    return r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS;
}

/* Element i as text, "" if absent or not text. */
static const char *text_at(const redisReply *r, size_t i) {
    return i < r->elements && is_text(r->element[i]) ? r->element[i]->str : "";
}

static tstore_tag tag_of(const char *s) {
    for (size_t i = 0; i < sizeof tag_names / sizeof tag_names[0]; i++)
        if (strcmp(s, tag_names[i].text) == 0) return tag_names[i].tag;
    return TS_BAD;
}

/* How a script's reply is read. */
typedef enum {
    R_TRIPLE,     /* {tag, status[, type]}: every element text */
    R_SAVE_NEW,   /* R_TRIPLE, OK's third element the hold's epoch */
    R_CAS,        /* {tag, status, ...}: at least two elements */
    R_CLAIM,      /* OK {tag, status, hash, epoch}, BUSY {tag, status, until}, else R_TRIPLE */
    R_LEASE_LOAD, /* OK {tag, hash, epoch}, else {tag} */
    R_STOP_APPLY, /* {tag, status[, reason]}: the first two text */
    R_EPOCH,      /* an integer: the hold's epoch, 0 = not moved */
    R_HASH,       /* HGETALL */
} reply_kind;

static void parse_triple(const redisReply *r, tstore_reply *o) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->elements > 3) return;
    for (size_t i = 0; i < r->elements; i++)
        if (!is_text(r->element[i])) return;
    o->tag_text = r->element[0]->str;
    o->tag = tag_of(o->tag_text);
    o->status = r->element[1]->str;
    o->type = text_at(r, 2);
}

/* The reply of kind k (about gid's hash, if it loads one) as o (o->tag TS_BAD if its shape is not
 * the script's). */
static void parse_reply(reply_kind k, const char *gid, const redisReply *r, tstore_reply *o) {
    memset(o, 0, sizeof *o);
    o->tag = TS_BAD;
    o->tag_text = o->status = o->type = "";
    switch (k) {
        case R_TRIPLE:
            parse_triple(r, o);
            break;
        case R_SAVE_NEW:
            parse_triple(r, o);
            if (o->tag == TS_OK) {
                o->epoch = strtoll(o->type, NULL, 10);
                o->type = "";
            }
            break;
        case R_CAS:
            if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || !is_text(r->element[0])) break;
            o->tag_text = r->element[0]->str;
            o->tag = tag_of(o->tag_text);
            o->status = text_at(r, 1);
            o->type = text_at(r, 2);
            break;
        case R_CLAIM:
            if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
                r->element[0]->type != REDIS_REPLY_STRING)
                break;
            if (strcmp(r->element[0]->str, "OK") == 0 && r->elements == 4 &&
                r->element[3]->type == REDIS_REPLY_INTEGER) {
                o->tag = TS_OK;
                o->tag_text = "OK";
                o->status = text_at(r, 1);
                o->t = trans_from_hash(r->element[2], gid);
                o->epoch = r->element[3]->integer;
            } else if (strcmp(r->element[0]->str, "BUSY") == 0 && r->elements == 3) {
                o->tag = TS_BUSY;
                o->tag_text = "BUSY";
                o->status = text_at(r, 1);
                o->held_until = strtoll(text_at(r, 2), NULL, 10);
            } else {
                parse_triple(r, o);
                if (o->tag == TS_OK || o->tag == TS_BUSY) o->tag = TS_BAD;
            }
            break;
        case R_LEASE_LOAD:
            if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
                r->element[0]->type != REDIS_REPLY_STRING)
                break;
            o->tag_text = r->element[0]->str;
            o->tag = tag_of(o->tag_text);
            if (o->tag == TS_OK) {
                if (r->elements == 3 && r->element[2]->type == REDIS_REPLY_INTEGER) {
                    o->t = trans_from_hash(r->element[1], gid);
                    o->epoch = r->element[2]->integer;
                }
            } else if (o->tag != TS_NOT_FOUND && o->tag != TS_BUSY) {
                o->tag = TS_BAD;
            }
            break;
        case R_STOP_APPLY:
            if (r->type != REDIS_REPLY_ARRAY || (r->elements != 2 && r->elements != 3) ||
                r->element[0]->type != REDIS_REPLY_STRING ||
                r->element[1]->type != REDIS_REPLY_STRING)
                break;
            o->tag_text = r->element[0]->str;
            o->tag = tag_of(o->tag_text);
            o->status = r->element[1]->str;
            if (r->elements == 3 && r->element[2]->type == REDIS_REPLY_STRING)
                o->reason = r->element[2]->str;
            break;
        case R_EPOCH:
            if (r->type == REDIS_REPLY_INTEGER) {
                o->tag = TS_OK;
                o->tag_text = "OK";
                o->epoch = r->integer;
            }
            break;
        case R_HASH:
            if (r->type == REDIS_REPLY_ARRAY && r->elements == 0) {
                o->tag = TS_NOT_FOUND;
                o->tag_text = "NOT_FOUND";
            } else if ((o->t = trans_from_hash(r, gid))) {
                o->tag = TS_OK;
                o->tag_text = "OK";
            }
            break;
    }
}

/* Who hears a command's reply, and how it is read. */
typedef struct pending {
    tstore_cb *cb;
    void *arg;
    reply_kind kind;
    char *gid; /* owned: the key's gid, for a reply that loads the hash */
} pending;

static void replied(void *arg, redisReply *reply, const char *err) {
    pending p = *(pending *)arg;
    free(arg);
    if (err) {
        free(p.gid);
        p.cb(p.arg, NULL, err);
        return;
    }
    tstore_reply r;
    parse_reply(p.kind, p.gid, reply, &r);
    free(p.gid);
    p.cb(p.arg, &r, NULL);
    trans_free(r.t);
}

static pending *pending_new(reply_kind k, const char *gid, tstore_cb *cb, void *arg) {
    pending *p = xmalloc(sizeof *p);
    p->cb = cb;
    p->arg = arg;
    p->kind = k;
    p->gid = gid ? xstrdup(gid) : NULL;
    return p;
}

static void script(const char *name, int nkeys, rargs *a, reply_kind k, tstore_cb *cb, void *arg) {
    store_script(name, nkeys, a, replied, pending_new(k, NULL, cb, arg));
}

/* A script whose reply carries gid's hash. */
static void script_load(const char *name, int nkeys, rargs *a, reply_kind k, const char *gid,
                        tstore_cb *cb, void *arg) {
    store_script(name, nkeys, a, replied, pending_new(k, gid, cb, arg));
}

/* Append fields (consumed) to a. */
static void add_fields(rargs *a, rargs *fields) {
    for (int i = 0; i < fields->argc; i++) ra_add(a, fields->argv[i], fields->lens[i]);
    ra_free(fields);
}

/* ---- commands ------------------------------------------------------------ */

void tstore_load(const char *gid, tstore_cb *cb, void *arg) {
    rargs a;
    ra_init(&a);
    ra_adds(&a, "HGETALL");
    add_key(&a, K_TRANS, tstore_shard(gid), gid);
    store_command(&a, replied, pending_new(R_HASH, gid, cb, arg));
}

void tstore_save_new(const trans *t, int64_t due_ms, int64_t ttl_s, int held, tstore_cb *cb,
                     void *arg) {
    static const key_kind keys[] = {K_TRANS, K_DUE, K_INDEX, K_LIVE, K_OLD_INDEX};
    rargs a;
    ra_init(&a);
    add_gid_keys(&a, t->gid, 5, keys);
    ra_adds(&a, t->gid);
    if (due_ms < 0)
        ra_adds(&a, "-"); /* finished: not due */
    else
        ra_addi(&a, due_ms);
    ra_addi(&a, ttl_s);
    ra_addi(&a, t->create_ms); /* the old index zset's score, while it exists */
    if (held) {
        add_holder(&a);
    } else {
        ra_adds(&a, "");
        ra_adds(&a, "0");
    }
    trans_hash_fields(t, &a);
    script("save_new", 5, &a, R_SAVE_NEW, cb, arg);
}

void tstore_cas_args(const tstore_cas *c, rargs *fields, rargs *out) {
    static const key_kind keys[] = {K_TRANS, K_DUE, K_LIVE};
    ra_init(out);
    add_gid_keys(out, c->gid, 3, keys);
    ra_adds(out, c->gid);
    ra_adds(out, c->type ? c->type : "");
    ra_adds(out, c->from);
    if (c->due_ms < 0)
        ra_adds(out, "-");
    else if (c->due_ms == 0)
        ra_adds(out, "");
    else
        ra_addi(out, c->due_ms);
    ra_addi(out, c->ttl_s);
    ra_adds(out, c->fenced ? ts.holder : ""); /* a request holds nothing: not fenced */
    if (c->stop_id) {
        ra_adds(out, c->stop_id);
        ra_adds(out, c->stop_channel);
    } else {
        if (c->pass)
            ra_addi(out, c->hold);
        else
            ra_adds(out, "");
        ra_adds(out, ""); /* not a request's stop */
    }
    if (c->check_nb)
        ra_addi(out, c->nb);
    else
        ra_adds(out, "");
    /* Earlier fields first: a later value of the same field wins in HSET. */
    if (c->first)
        for (int i = 0; i < c->first->argc; i++) ra_add(out, c->first->argv[i], c->first->lens[i]);
    add_fields(out, fields);
}

void tstore_cas_send(const rargs *args, tstore_cb *cb, void *arg) {
    rargs a;
    ra_init(&a);
    for (int i = 0; i < args->argc; i++) ra_add(&a, args->argv[i], args->lens[i]);
    script("cas_update", 3, &a, R_CAS, cb, arg);
}

void tstore_cas_update(const tstore_cas *c, rargs *fields, tstore_cb *cb, void *arg) {
    rargs a;
    tstore_cas_args(c, fields, &a);
    script("cas_update", 3, &a, R_CAS, cb, arg);
}

void tstore_claim(const char *gid, const char *type, const char *from, const char *busy,
                  int64_t now, int64_t lease_end, rargs *fields, tstore_cb *cb, void *arg) {
    static const key_kind keys[] = {K_TRANS, K_DUE, K_LIVE};
    rargs a;
    ra_init(&a);
    add_gid_keys(&a, gid, 3, keys);
    ra_adds(&a, gid);
    ra_adds(&a, type);
    ra_adds(&a, from);
    ra_adds(&a, busy);
    ra_addi(&a, now);
    ra_addi(&a, lease_end);
    add_holder(&a);
    add_fields(&a, fields);
    script_load("claim", 3, &a, R_CLAIM, gid, cb, arg);
}

void tstore_lease_load(const char *gid, int64_t now, int64_t lease_end, tstore_cb *cb, void *arg) {
    static const key_kind keys[] = {K_TRANS, K_LIVE, K_DUE};
    rargs a;
    ra_init(&a);
    add_gid_keys(&a, gid, 3, keys);
    ra_addi(&a, now);
    ra_addi(&a, lease_end);
    ra_adds(&a, ts.holder);
    ra_adds(&a, gid);
    ra_addi(&a, ts.holder_ttl_ms);
    script_load("lease_load", 3, &a, R_LEASE_LOAD, gid, cb, arg);
}

void tstore_lease_move(const char *gid, const char *due, int64_t ours, int64_t until, tstore_cb *cb,
                       void *arg) {
    static const key_kind keys[] = {K_TRANS, K_DUE, K_LIVE};
    rargs a;
    ra_init(&a);
    add_gid_keys(&a, gid, 3, keys);
    ra_adds(&a, gid);
    ra_adds(&a, due);
    ra_addi(&a, ours);
    ra_addi(&a, until);
    add_holder(&a);
    script("lease_move", 3, &a, R_EPOCH, cb, arg);
}

void tstore_stop_apply(const char *gid, tstore_cb *cb, void *arg) {
    static const key_kind keys[] = {K_TRANS, K_DUE, K_LIVE};
    rargs a;
    ra_init(&a);
    add_gid_keys(&a, gid, 3, keys);
    ra_adds(&a, gid);
    ra_adds(&a, ts.holder);
    script("stop_apply", 3, &a, R_STOP_APPLY, cb, arg);
}

/* Fields each registered branch brings (register_branch.lua's m). */
#define BRANCH_FIELDS 2

/* A registered branch as (suffix, value) pairs: register_branch.lua stores
 * them in the hash's layout (trans_hash.h): "" the definition, ".s" the
 * state. */
static void add_registered(rargs *a, const char *id, const char *op, const char *url,
                           const char *data, const char *status, int64_t now) {
    branch b = {.branch_id = (char *)id,
                .op = (char *)op,
                .url = (char *)url,
                .data = (char *)data,
                .data_len = strlen(data),
                .status = branch_status_parse(status),
                .create_ms = now,
                .update_ms = now,
                .finish_ms = strcmp(status, "prepared") == 0 ? 0 : now};
    ra_adds(a, "");
    branch_def_value(&b, a);
    ra_adds(a, ".s");
    branch_state_value(&b, a);
}

void tstore_register_branch(const tstore_registration *r, tstore_cb *cb, void *arg) {
    int64_t now = now_ms();
    rargs a;
    ra_init(&a);
    add_key(&a, K_TRANS, tstore_shard(r->gid), r->gid);
    ra_adds(&a, trans_type_name(r->type));
    ra_adds(&a, r->from);
    sbuf b;
    sb_init(&b);
    sb_printf(&b, "k:%zu:%s:%s", strlen(r->bid), r->bid, r->ident_op);
    ra_add(&a, b.ptr, b.len);
    sb_reset(&b);
    for (int i = 0; i < 3 && r->sig[i]; i++) sb_printf(&b, "%s|", r->sig[i]);
    sb_puts(&b, r->data);
    ra_add(&a, b.ptr, b.len);
    sb_free(&b);
    ra_addi(&a, now);
    ra_addi(&a, r->n);
    ra_addi(&a, BRANCH_FIELDS);
    ra_addi(&a, r->max_branches);
    for (int i = 0; i < r->n; i++)
        add_registered(&a, r->bid, r->op[i], r->url[i], r->data, r->status, now);
    script("register_branch", 1, &a, R_TRIPLE, cb, arg);
}

/* ---- the shards' indexes --------------------------------------------------- */

void tstore_lease_due(int shard, int64_t now, int64_t until, int batch, store_cb *cb, void *arg) {
    rargs a;
    ra_init(&a);
    add_key(&a, K_DUE, shard, NULL);
    ra_addi(&a, now);
    ra_addi(&a, until);
    ra_addi(&a, batch);
    store_script("lease_due", 1, &a, cb, arg);
}

void tstore_drop_due(int shard, const char *gid, store_cb *cb, void *arg) {
    rargs a;
    ra_init(&a);
    ra_adds(&a, "ZREM");
    add_key(&a, K_DUE, shard, NULL);
    ra_adds(&a, gid);
    store_command(&a, cb, arg);
}

void tstore_list_due(int shard, int64_t until, int limit, store_cb *cb, void *arg) {
    rargs a;
    ra_init(&a);
    ra_adds(&a, "ZRANGEBYSCORE");
    add_key(&a, K_DUE, shard, NULL);
    ra_adds(&a, "-inf");
    ra_addi(&a, until);
    ra_adds(&a, "LIMIT");
    ra_adds(&a, "0");
    ra_addi(&a, limit);
    store_command(&a, cb, arg);
}

void tstore_live(int shard, int wait, store_cb *cb, void *arg) {
    rargs a;
    ra_init(&a);
    add_key(&a, K_LIVE, shard, NULL);
    add_key(&a, K_DUE, shard, NULL);
    add_holder(&a);
    if (wait)
        store_script("live", 2, &a, cb, arg);
    else
        store_script_nowait("live", 2, &a, cb, arg);
}

/* The shard's transaction hash key without the gid (keys.h: the same slot):
 * the index scripts append each gid. */
static void add_hash_prefix(rargs *a, int shard) {
    sbuf hash;
    sb_init(&hash);
    key_trans(&hash, ts.prefix, shard, "");
    ra_add(a, hash.ptr, hash.len);
    sb_free(&hash);
}

void tstore_index_trim(int shard, const tstore_trim *t, store_cb *cb, void *arg) {
    rargs a;
    ra_init(&a);
    add_key(&a, K_INDEX, shard, NULL);
    add_hash_prefix(&a, shard);
    ra_adds(&a, t->cursor);
    ra_addi(&a, t->batch);
    ra_addi(&a, t->min_ttl_ms);
    ra_addi(&a, t->margin_ms);
    ra_addi(&a, t->stale_ms);
    store_script("index_trim", 1, &a, cb, arg);
}

void tstore_index_drop_expiry(int shard, store_cb *cb, void *arg) {
    rargs a;
    ra_init(&a);
    ra_adds(&a, "UNLINK"); /* freed in the background: it may be large */
    add_key(&a, K_EXPIRY, shard, NULL);
    store_command(&a, cb, arg);
}

void tstore_index_migrate(int shard, int batch, store_cb *cb, void *arg) {
    rargs a;
    ra_init(&a);
    add_key(&a, K_OLD_INDEX, shard, NULL);
    add_key(&a, K_INDEX, shard, NULL);
    add_hash_prefix(&a, shard);
    ra_addi(&a, batch);
    store_script("index_migrate", 2, &a, cb, arg);
}

void tstore_all_page(int shard, int64_t from_ms, const char *from_gid, int count, store_cb *cb,
                     void *arg) {
    rargs a;
    ra_init(&a);
    add_key(&a, K_INDEX, shard, NULL);
    add_key(&a, K_OLD_INDEX, shard, NULL);
    if (from_gid) {
        ra_addi(&a, from_ms);
        ra_adds(&a, from_gid);
    } else {
        ra_adds(&a, "");
        ra_adds(&a, "");
    }
    ra_addi(&a, count);
    store_script("all_page", 2, &a, cb, arg);
}

void tstore_reset_cron(int shard, int64_t threshold, int64_t now, int64_t limit, store_cb *cb,
                       void *arg) {
    rargs a;
    ra_init(&a);
    add_key(&a, K_DUE, shard, NULL);
    ra_addi(&a, threshold);
    ra_addi(&a, now);
    ra_addi(&a, limit);
    store_script("reset_cron", 1, &a, cb, arg);
}
