/* api_trans.c - endpoints that create or change transactions: submit,
 * prepare, abort, registerBranch, prepareWorkflow, forceStop,
 * resetNextCronTime (PROTOCOL.md 1.2, 4.7).
 *
 * Each request is validated completely before anything is written, so bad
 * input is answered 400 with nothing stored. State changes are single Lua
 * scripts (save_new, cas_update, register_branch); a request for a gid that
 * exists never overwrites what is stored (PROTOCOL.md 12.2). */
#include "api_handlers.h"
#include "auth.h"

#include "branch_call.h"
#include "engine.h"
#include "keys.h"
#include "log.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>

enum { OP_SUBMIT = 1, OP_PREPARE, OP_ABORT, OP_WORKFLOW };
#define F_WAIT 0x100 /* wait_result requested */

/* ---- store helpers ----------------------------------------------------- */

static void add_keys(rargs *a, const char *gid, int with_index) {
    sbuf k;
    sb_init(&k);
    engine_trans_key(&k, gid);
    ra_add(a, k.ptr, k.len);
    engine_due_key(&k, gid);
    ra_add(a, k.ptr, k.len);
    if (with_index) {
        engine_index_key(&k, gid);
        ra_add(a, k.ptr, k.len);
    }
    sb_free(&k);
}

/* The shard's expiry zset: every script that sets the hash's TTL records it
 * there (lua/index_trim.lua). */
static void add_expiry_key(rargs *a, const char *gid) {
    sbuf k;
    sb_init(&k);
    engine_expiry_key(&k, gid);
    ra_add(a, k.ptr, k.len);
    sb_free(&k);
}

static void load_trans(const char *gid, store_cb *cb, api_call *c) {
    rargs a;
    ra_init(&a);
    sbuf k;
    sb_init(&k);
    engine_trans_key(&k, gid);
    ra_adds(&a, "HGETALL");
    ra_add(&a, k.ptr, k.len);
    sb_free(&k);
    store_command(&a, cb, c);
}

/* cas_update with expected statuses; fields are consumed. */
static void cas(const char *gid, const char *expected, int64_t due, int64_t ttl, rargs *fields,
                store_cb *cb, api_call *c) {
    rargs a;
    ra_init(&a);
    add_keys(&a, gid, 0);
    if (ttl) add_expiry_key(&a, gid);
    ra_adds(&a, gid);
    ra_adds(&a, expected);
    if (due < 0)
        ra_adds(&a, "-");
    else if (due == 0)
        ra_adds(&a, "");
    else
        ra_addi(&a, due);
    ra_addi(&a, ttl);
    for (int i = 0; i < fields->argc; i++) ra_add(&a, fields->argv[i], fields->lens[i]);
    ra_free(fields);
    store_script("cas_update", ttl ? 3 : 2, &a, cb, c);
}

/* {'OK'|'EXISTS'|..., status} replies of our scripts. */
static int script_reply(const redisReply *r, const char **tag, const char **status) {
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) return -1;
    *tag = r->element[0]->str;
    *status = r->element[1]->str;
    return 0;
}

/* ---- driving and answering -------------------------------------------- */

/* wait_result answer (PROTOCOL.md 5.5): a pass that halted on a branch call
 * answers by that call (ONGOING 425, FAILURE 409, error 500); then submit
 * answers 200 only when the transaction succeeded, abort once it failed. */
static void wait_done(void *arg, const trans *t, const pass_end *e) {
    api_call *c = arg;
    int op = c->op & 0xff;
    if (e->err && store_err_unavailable(e->err)) {
        api_reply_store_error(c, t->gid, e->err);
    } else if (t->status == GS_SUCCEED || (op == OP_ABORT && !e->err && t->status == GS_FAILED)) {
        api_reply_ok(c);
    } else if (e->halted == BR_ONGOING) {
        api_reply_ongoing(c, e->halt_msg);
    } else if (e->halted == BR_FAILURE) {
        api_reply_failure(c, e->halt_msg);
    } else if (e->halted == BR_ERROR) {
        api_reply_error(c, 500, e->halt_msg);
    } else if (op == OP_ABORT && !e->err) {
        api_reply_ongoing(c, "abort is in progress: a branch did not answer yet");
    } else if (t->rollback_reason && t->rollback_reason[0]) {
        api_reply_failure(c, t->rollback_reason);
    } else {
        api_reply_failure(c, "wait result not return success: FAILURE");
    }
}

/* Hand t to the engine; answer now, or when the pass ends (wait_result).
 * At Limits.MaxActivePasses the stored transaction is parked for the
 * scanner instead (engine.c); the answer is the same: it is accepted. */
static void drive(api_call *c, trans *t) {
    if (c->op & F_WAIT) {
        engine_drive(t, wait_done, c);
    } else {
        api_reply_ok(c);
        if (engine_has_room() || engine_active(t->gid))
            engine_drive(t, NULL, NULL);
        else
            engine_park(t);
    }
}

static void loaded_then_drive(void *arg, redisReply *reply, const char *err) {
    api_call *c = arg;
    if (err) {
        api_reply_store_error(c, c->t->gid, err);
        return;
    }
    trans *t = trans_from_hash(reply);
    if (!t) {
        api_reply_error(c, 500, "stored transaction vanished or is malformed");
        return;
    }
    drive(c, t);
}

/* After a msg abort's CAS: the pass of a failed msg only reports it. */
static void cas_then_drive(void *arg, redisReply *reply, const char *err) {
    api_call *c = arg;
    const char *tag, *status;
    if (err) {
        api_reply_store_error(c, c->t->gid, err);
        return;
    }
    if (script_reply(reply, &tag, &status)) {
        api_reply_error(c, 500, "unexpected reply from store");
        return;
    }
    if (strcmp(tag, "OK") == 0) {
        load_trans(c->t->gid, loaded_then_drive, c);
    } else if (strcmp(tag, "NOT_FOUND") == 0) {
        api_reply_error(c, 404, "no such transaction");
    } else {
        char msg[256];
        snprintf(msg, sizeof msg, "gid %s: current status '%s', cannot abort", c->t->gid, status);
        api_reply_failure(c, msg);
    }
}

static void claimed(void *arg, redisReply *reply, const char *err) {
    api_call *c = arg;
    const char *gid = c->t->gid;
    const char *tag, *status;
    if (err) {
        api_reply_store_error(c, gid, err);
        return;
    }
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
        api_reply_error(c, 500, "unexpected reply from store");
        return;
    }
    tag = reply->element[0]->str;
    status = reply->element[1]->str;
    if (strcmp(tag, "OK") == 0 && reply->elements == 3) {
        trans *t = trans_from_hash(reply->element[2]);
        if (!t) {
            api_reply_error(c, 500, "stored transaction is malformed");
            return;
        }
        drive(c, t);
    } else if (strcmp(tag, "BUSY") == 0 && reply->elements == 3) {
        if (engine_active(gid)) {
            /* Held by this process: join its pass. */
            load_trans(gid, loaded_then_drive, c);
        } else if (c->op & F_WAIT) {
            char msg[256];
            long long due = strtoll(reply->element[2]->str, NULL, 10) - now_ms();
            snprintf(msg, sizeof msg,
                     "gid %s: being processed by another dtmd process or waiting for its "
                     "next retry (due in %lld ms)",
                     gid, due > 0 ? due : 0);
            api_reply_ongoing(c, msg);
        } else {
            api_reply_ok(c); /* accepted: it is in progress */
        }
    } else if (strcmp(tag, "NOT_FOUND") == 0) {
        api_reply_error(c, 404, "no such transaction");
    } else {
        char msg[256];
        snprintf(msg, sizeof msg, "gid %s: current status '%s', cannot %s", gid, status,
                 (c->op & 0xff) == OP_ABORT ? "abort" : "submit");
        api_reply_failure(c, msg);
    }
}

/* Take a stored transaction over and drive it (claim.lua): expected are the
 * statuses the request may act on, busy those another process may be driving
 * (kept by the request, so only a due time that has come lets it drive);
 * fields are written with the claim and consumed. A request never drives a
 * transaction while another process holds it: PROTOCOL.md 5.4's lease, which
 * dtm's API path ignores (a repeated submit there re-runs the pass at once). */
static void claim_and_drive(api_call *c, const char *expected, const char *busy, rargs *fields) {
    int64_t now = now_ms();
    rargs a;
    ra_init(&a);
    add_keys(&a, c->t->gid, 0);
    ra_adds(&a, c->t->gid);
    ra_adds(&a, expected);
    ra_adds(&a, busy);
    ra_addi(&a, now);
    ra_addi(&a, engine_new_hold(c->t->gid, now + config_lease_ms(c->cfg)));
    for (int i = 0; i < fields->argc; i++) ra_add(&a, fields->argv[i], fields->lens[i]);
    ra_free(fields);
    store_script("claim", 2, &a, claimed, c);
}

/* A submit of a stored prepared or submitted transaction: prepared moves to
 * submitted; a repeated submit re-drives what is stored unless it is held. */
static void submit_stored(api_call *c) {
    rargs f;
    ra_init(&f);
    ra_adds(&f, "status");
    ra_adds(&f, "submitted");
    ra_adds(&f, "update_time");
    ra_addi(&f, now_ms());
    claim_and_drive(c, "prepared,submitted", "submitted", &f);
}

static void saved(void *arg, redisReply *reply, const char *err) {
    api_call *c = arg;
    const char *tag, *status;
    if (err) {
        api_reply_store_error(c, c->t->gid, err);
        return;
    }
    if (script_reply(reply, &tag, &status)) {
        api_reply_error(c, 500, "unexpected reply from store");
        return;
    }
    int op = c->op & 0xff;
    if (strcmp(tag, "OK") == 0) {
        if (op == OP_PREPARE) {
            api_reply_ok(c);
            return;
        }
        if (global_status_final(c->t->status)) { /* settled at creation: done */
            engine_settled(c->t);
            api_reply_ok(c);
            return;
        }
        trans *t = c->t;
        c->t = NULL;
        drive(c, t);
        return;
    }
    /* The gid exists: PROTOCOL.md 4.7. */
    int cur = global_status_parse(status);
    char msg[256];
    if (op == OP_PREPARE) {
        if (cur == GS_PREPARED) {
            api_reply_ok(c);
            return;
        }
        snprintf(msg, sizeof msg, "gid %s: current status '%s', cannot prepare", c->t->gid, status);
        api_reply_failure(c, msg);
        return;
    }
    if (cur == GS_PREPARED || cur == GS_SUBMITTED) {
        submit_stored(c);
    } else {
        snprintf(msg, sizeof msg, "gid %s: current status '%s', cannot submit", c->t->gid, status);
        api_reply_failure(c, msg);
    }
}

static void save_new(api_call *c) {
    trans *t = c->t;
    int64_t now = now_ms();
    trans_drop_request(t); /* saga/msg branches are made: it served */
    t->create_ms = t->update_ms = now;
    t->next_cron_interval_ms = trans_base_interval_ms(t, c->cfg);
    t->next_cron_ms = now + t->next_cron_interval_ms;
    for (int i = 0; i < t->nbranches; i++)
        t->branches[i].create_ms = t->branches[i].update_ms = now;
    int settled = (c->op & 0xff) == OP_SUBMIT && engine_settle_new(t, now);
    /* A new submit is driven here at once: held until its first due time
     * (lua/claim.lua), which is also when the scanner would look at it. */
    if ((c->op & 0xff) == OP_SUBMIT && !settled)
        t->lease_until_ms = engine_new_hold(t->gid, t->next_cron_ms);
    rargs a;
    ra_init(&a);
    add_keys(&a, t->gid, 1);
    add_expiry_key(&a, t->gid);
    ra_adds(&a, t->gid);
    if (settled)
        ra_adds(&a, "-"); /* finished: not due */
    else
        ra_addi(&a, t->next_cron_ms);
    ra_addi(&a, settled ? c->cfg->finished_data_expire : c->cfg->data_expire);
    trans_hash_fields(t, &a);
    store_script("save_new", 4, &a, saved, c);
}

/* Parse the body into c->t; answers 400 and returns -1 on bad input. */
static int parse_trans(api_call *c, const char *body, size_t len) {
    char err[512];
    if (trans_from_body(body, len, c->cfg, &c->t, err, sizeof err)) {
        api_reply_error(c, 400, err);
        return -1;
    }
    return 0;
}

/* ---- submit / prepare ------------------------------------------------- */

static void workflow_submit(api_call *c);

/* Generate the branches of a new saga/msg and store it. */
static void make_and_save(api_call *c, const topic_set *topics) {
    char err[512];
    if (trans_make_branches(c->t, c->cfg, topics, err, sizeof err)) {
        api_reply_error(c, 400, err);
        return;
    }
    save_new(c);
}

/* A topic's KV record is {"v": "[{\"url\":...,\"remark\":...},...]", ...}
 * (kv_subscribe.lua): collect its URLs. */
static void topic_record_urls(const char *rec, size_t len, json_strs *out) {
    char err[64];
    memset(out, 0, sizeof *out);
    yajl_val root = json_parse(rec, len, err, sizeof err);
    yajl_val v = json_field(root, "v");
    yajl_val subs = v && YAJL_IS_STRING(v)
                        ? json_parse(v->u.string, strlen(v->u.string), err, sizeof err)
                        : NULL;
    for (size_t i = 0; subs && YAJL_IS_ARRAY(subs) && i < subs->u.array.len; i++) {
        yajl_val u = json_field(subs->u.array.values[i], "url");
        if (!u || !YAJL_IS_STRING(u) || !u->u.string[0]) continue;
        out->s = xrealloc(out->s, (out->n + 1) * sizeof(char *));
        out->len = xrealloc(out->len, (out->n + 1) * sizeof(size_t));
        out->s[out->n] = xstrdup(u->u.string);
        out->len[out->n++] = strlen(u->u.string);
    }
    if (subs) json_free(subs);
    if (root) json_free(root);
}

/* HMGET of the topics a msg names, in the order of c->extra's names. */
static void topics_loaded(void *arg, redisReply *reply, const char *err) {
    api_call *c = arg;
    topic_set ts = {0};
    char **names = c->extra;
    size_t n = c->extra_n;
    c->extra = NULL;
    if (err) {
        for (size_t i = 0; i < n; i++) free(names[i]);
        free(names);
        api_reply_store_error(c, c->t->gid, err);
        return;
    }
    ts.n = n;
    ts.names = names;
    ts.urls = xcalloc(n ? n : 1, sizeof(json_strs));
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < n && i < reply->elements; i++) {
        redisReply *r = reply->element[i];
        if (r->type == REDIS_REPLY_STRING) topic_record_urls(r->str, r->len, &ts.urls[i]);
    }
    make_and_save(c, &ts);
    topic_set_free(&ts);
}

static void create_or_continue(api_call *c, int status, const char *body, size_t len) {
    if (parse_trans(c, body, len)) return;
    trans *t = c->t;
    if (t->wait_result) c->op |= F_WAIT;
    if (t->type == TT_WORKFLOW && status == GS_SUBMITTED) {
        workflow_submit(c);
        return;
    }
    t->status = status;
    if (t->type != TT_SAGA && t->type != TT_MSG) {
        if (t->steps) {
            api_reply_error(c, 400, "steps are only used by saga and msg transactions");
            return;
        }
        save_new(c);
        return;
    }
    char **names;
    size_t n = trans_step_topics(t, &names);
    if (n == 0) {
        make_and_save(c, NULL);
        return;
    }
    /* Topics are read fresh from the store, so a subscription made through
     * any dtmd sharing it counts at once (PROTOCOL.md 12.2). */
    rargs a;
    ra_init(&a);
    sbuf k;
    sb_init(&k);
    key_kv(&k, c->cfg->redis_prefix, "topics");
    ra_adds(&a, "HMGET");
    ra_add(&a, k.ptr, k.len);
    sb_free(&k);
    for (size_t i = 0; i < n; i++) ra_adds(&a, names[i]);
    c->extra = names;
    c->extra_n = n;
    store_command(&a, topics_loaded, c);
}

void api_submit(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)q;
    c->op = OP_SUBMIT;
    create_or_continue(c, GS_SUBMITTED, body, len);
}

void api_prepare(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)q;
    c->op = OP_PREPARE;
    create_or_continue(c, GS_PREPARED, body, len);
}

/* ---- workflow ----------------------------------------------------------- */

static void workflow_loaded(void *arg, redisReply *reply, const char *err) {
    api_call *c = arg;
    if (err) {
        api_reply_store_error(c, c->t->gid, err);
        return;
    }
    trans *t = trans_from_hash(reply);
    if (!t) {
        api_reply_error(c, 500, "stored transaction vanished or is malformed");
        return;
    }
    sbuf b;
    sb_init(&b);
    sb_puts(&b, "{\"transaction\":");
    trans_to_json(t, &b);
    sb_puts(&b, ",\"progresses\":[");
    for (int i = 0; i < t->nbranches; i++) {
        if (i) sb_putc(&b, ',');
        branch_to_json(t, i, &b);
    }
    sb_puts(&b, "]}");
    api_reply_json(c, 200, b.ptr);
    sb_free(&b);
    trans_free(t);
}

static void workflow_saved(void *arg, redisReply *reply, const char *err) {
    api_call *c = arg;
    const char *tag, *status;
    if (err) {
        api_reply_store_error(c, c->t->gid, err);
        return;
    }
    if (script_reply(reply, &tag, &status)) {
        api_reply_error(c, 500, "unexpected reply from store");
        return;
    }
    load_trans(c->t->gid, workflow_loaded, c);
}

void api_prepare_workflow(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)q;
    c->op = OP_WORKFLOW;
    if (parse_trans(c, body, len)) return;
    if (c->t->type != TT_WORKFLOW) {
        api_reply_error(c, 400, "prepareWorkflow needs trans_type 'workflow'");
        return;
    }
    trans *t = c->t;
    int64_t now = now_ms();
    t->status = GS_PREPARED;
    t->create_ms = t->update_ms = now;
    t->next_cron_interval_ms = trans_base_interval_ms(t, c->cfg);
    t->next_cron_ms = now + t->next_cron_interval_ms;
    rargs a;
    ra_init(&a);
    add_keys(&a, t->gid, 1);
    add_expiry_key(&a, t->gid);
    ra_adds(&a, t->gid);
    ra_addi(&a, t->next_cron_ms);
    ra_addi(&a, c->cfg->data_expire);
    trans_hash_fields(t, &a);
    store_script("save_new", 4, &a, workflow_saved, c);
}

static void workflow_submitted(void *arg, redisReply *reply, const char *err) {
    api_call *c = arg;
    const char *tag, *status;
    if (err) {
        api_reply_store_error(c, c->t->gid, err);
        return;
    }
    if (script_reply(reply, &tag, &status)) {
        api_reply_error(c, 500, "unexpected reply from store");
        return;
    }
    if (strcmp(tag, "OK") == 0) {
        api_reply_ok(c);
    } else if (strcmp(tag, "NOT_FOUND") == 0) {
        api_reply_error(c, 404, "no such workflow: call prepareWorkflow first");
    } else {
        char msg[256];
        snprintf(msg, sizeof msg, "gid %s: current status '%s', cannot submit", c->t->gid, status);
        api_reply_failure(c, msg);
    }
}

/* Workflow submit carries the outcome the client reached: prepared ->
 * succeed/failed directly, merged into the stored record (12.2). */
static void workflow_submit(api_call *c) {
    trans *t = c->t;
    char err[256];
    yajl_val extra = NULL;
    const char *status = NULL, *reason = NULL, *result = NULL;
    if (t->req_extra) extra = json_parse(t->req_extra, strlen(t->req_extra), err, sizeof err);
    yajl_val v;
    if ((v = json_field(extra, "status"))) status = v->u.string;
    if ((v = json_field(extra, "rollback_reason"))) reason = v->u.string;
    if ((v = json_field(extra, "result"))) result = v->u.string;
    if (!status || (strcmp(status, "succeed") != 0 && strcmp(status, "failed") != 0)) {
        if (extra) json_free(extra);
        api_reply_error(c, 400, "workflow submit needs req_extra.status 'succeed' or 'failed'");
        return;
    }
    int64_t now = now_ms();
    rargs f;
    ra_init(&f);
    ra_adds(&f, "status");
    ra_adds(&f, status);
    ra_adds(&f, "update_time");
    ra_addi(&f, now);
    ra_adds(&f, strcmp(status, "succeed") == 0 ? "finish_time" : "rollback_time");
    ra_addi(&f, now);
    if (reason && *reason) {
        ra_adds(&f, "rollback_reason");
        ra_adds(&f, reason);
    }
    if (result && *result) {
        ra_adds(&f, "result");
        ra_adds(&f, result);
    }
    if (extra) json_free(extra);
    cas(t->gid, "prepared", -1, c->cfg->finished_data_expire, &f, workflow_submitted, c);
}

/* ---- abort ---------------------------------------------------------------- */

static void abort_loaded(void *arg, redisReply *reply, const char *err) {
    api_call *c = arg;
    if (err) {
        api_reply_store_error(c, c->t->gid, err);
        return;
    }
    trans *stored = trans_from_hash(reply);
    if (!stored) {
        api_reply_error(c, 404, "no such transaction");
        return;
    }
    int type = stored->type, status = stored->status;
    trans_free(stored);
    char msg[256];
    int64_t now = now_ms();
    rargs f;
    ra_init(&f);
    ra_adds(&f, "update_time");
    ra_addi(&f, now);
    if ((type == TT_TCC || type == TT_XA) && (status == GS_PREPARED || status == GS_ABORTING)) {
        ra_adds(&f, "status");
        ra_adds(&f, "aborting");
        if (c->t->rollback_reason && c->t->rollback_reason[0]) {
            ra_adds(&f, "rollback_reason");
            ra_adds(&f, c->t->rollback_reason);
        }
        claim_and_drive(c, "prepared,aborting", "aborting", &f);
    } else if (type == TT_MSG && status == GS_PREPARED) {
        ra_adds(&f, "status");
        ra_adds(&f, "failed");
        ra_adds(&f, "rollback_time");
        ra_addi(&f, now);
        if (c->t->rollback_reason && c->t->rollback_reason[0]) {
            ra_adds(&f, "rollback_reason");
            ra_adds(&f, c->t->rollback_reason);
        }
        cas(c->t->gid, "prepared", -1, c->cfg->finished_data_expire, &f, cas_then_drive, c);
    } else {
        ra_free(&f);
        snprintf(msg, sizeof msg, "gid %s: current status '%s' of a %s transaction, cannot abort",
                 c->t->gid, global_status_name(status), trans_type_name(type));
        api_reply_failure(c, msg);
    }
}

void api_abort(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)q;
    c->op = OP_ABORT;
    if (parse_trans(c, body, len)) return;
    if (c->t->wait_result) c->op |= F_WAIT;
    load_trans(c->t->gid, abort_loaded, c);
}

/* ---- forceStop / resetNextCronTime -------------------------------------- */

/* Bodies of these two are just {"gid": "..."}. */
static char *parse_gid_body(api_call *c, const char *body, size_t len) {
    char err[256];
    yajl_val root = json_parse(body, len, err, sizeof err);
    if (!root) {
        api_reply_error(c, 400, err);
        return NULL;
    }
    yajl_val g = json_field(root, "gid");
    char *gid = NULL;
    if (!g || !YAJL_IS_STRING(g) || !g->u.string[0])
        api_reply_error(c, 400, "gid is required (a non-empty string)");
    else if (!(gid = trans_clean_gid(g->u.string, c->cfg, err, sizeof err)))
        api_reply_error(c, 400, err);
    json_free(root);
    return gid;
}

static void simple_cas_done(void *arg, redisReply *reply, const char *err) {
    api_call *c = arg;
    const char *gid = c->extra;
    const char *tag, *status;
    if (err) {
        api_reply_store_error(c, gid, err);
        return;
    }
    if (script_reply(reply, &tag, &status)) {
        api_reply_error(c, 500, "unexpected reply from store");
        return;
    }
    char msg[256];
    if (strcmp(tag, "OK") == 0) {
        api_reply_ok(c);
    } else if (strcmp(tag, "NOT_FOUND") == 0) {
        snprintf(msg, sizeof msg, "gid %s: no such transaction", gid);
        api_reply_error(c, 404, msg);
    } else if (c->op == 2) { /* resetNextCronTime of a finished transaction: nothing to do */
        api_reply_ok(c);
    } else {
        snprintf(msg, sizeof msg, "gid %s: current status '%s', cannot force stop", gid, status);
        api_reply_failure(c, msg);
    }
}

void api_force_stop(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)q;
    char *gid = parse_gid_body(c, body, len);
    if (!gid) return;
    c->extra = gid;
    c->op = 1;
    int64_t now = now_ms();
    rargs f;
    ra_init(&f);
    ra_adds(&f, "status");
    ra_adds(&f, "failed");
    ra_adds(&f, "update_time");
    ra_addi(&f, now);
    ra_adds(&f, "rollback_time");
    ra_addi(&f, now);
    ra_adds(&f, "rollback_reason");
    ra_adds(&f, "force stopped");
    log_info("gid %s: force stop requested", gid);
    cas(gid, "prepared,submitted,aborting", -1, c->cfg->finished_data_expire, &f, simple_cas_done,
        c);
}

/* Make an unfinished transaction due now (the retry scanner picks it up on
 * its next tick). Unlike dtm's Redis store this really moves the due time. */
void api_reset_next_cron_time(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)q;
    char *gid = parse_gid_body(c, body, len);
    if (!gid) return;
    c->extra = gid;
    c->op = 2;
    int64_t now = now_ms();
    rargs f;
    ra_init(&f);
    ra_adds(&f, "next_cron_time");
    ra_addi(&f, now);
    ra_adds(&f, "update_time");
    ra_addi(&f, now);
    cas(gid, "prepared,submitted,aborting", now, 0, &f, simple_cas_done, c);
}

/* ---- registerBranch --------------------------------------------------------- */

static void registered(void *arg, redisReply *reply, const char *err) {
    api_call *c = arg;
    const char *gid = c->extra;
    const char *tag, *status;
    if (err) {
        api_reply_store_error(c, gid, err);
        return;
    }
    if (script_reply(reply, &tag, &status)) {
        api_reply_error(c, 500, "unexpected reply from store");
        return;
    }
    char msg[256];
    if (strcmp(tag, "OK") == 0 || strcmp(tag, "SAME") == 0) {
        api_reply_ok(c);
    } else if (strcmp(tag, "DUPLICATE") == 0) {
        snprintf(msg, sizeof msg, "gid %s: branch already registered with different content", gid);
        api_reply_failure(c, msg);
    } else {
        snprintf(msg, sizeof msg, "no trans with gid: %s status: prepared found", gid);
        api_reply_failure(c, msg);
    }
}

/* Fields add_branch_fields writes per branch (register_branch.lua's m). */
#define BRANCH_FIELDS 2

/* A registered branch as (suffix, value) pairs: register_branch.lua stores
 * them as "b<index><suffix>", the layout of trans_branch_fields. */
static void add_branch_fields(rargs *a, const char *id, const char *op, const char *url,
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

void api_register_branch(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)q;
    char err[256], aerr[224];
    char *gid = NULL;
    yajl_val root = json_parse(body, len, err, sizeof err);
    if (!root) {
        api_reply_error(c, 400, err);
        return;
    }
#define BAD(...)                                                                                   \
    do {                                                                                           \
        snprintf(err, sizeof err, __VA_ARGS__);                                                    \
        api_reply_error(c, 400, err);                                                              \
        goto out;                                                                                  \
    } while (0)
    if (!YAJL_IS_OBJECT(root)) BAD("request body must be a JSON object");
    for (size_t i = 0; i < root->u.object.len; i++) {
        yajl_val v = root->u.object.values[i];
        if (v && !YAJL_IS_NULL(v) && !YAJL_IS_STRING(v))
            BAD("registerBranch: %s must be a string (all values are strings)",
                root->u.object.keys[i]);
    }
    const char *type = NULL, *bid = NULL, *data = "";
    yajl_val v;
    if ((v = json_field(root, "gid")) &&
        !(gid = trans_clean_gid(v->u.string, c->cfg, err, sizeof err))) {
        api_reply_error(c, 400, err);
        goto out;
    }
    if ((v = json_field(root, "trans_type"))) type = v->u.string;
    if ((v = json_field(root, "branch_id"))) bid = v->u.string;
    if ((v = json_field(root, "data"))) data = v->u.string;
    if (!gid) BAD("gid is required");
    if (!bid || !*bid) BAD("branch_id is required");
    if (!type) BAD("trans_type is required");
    int64_t now = now_ms();
    rargs a;
    ra_init(&a);
    sbuf k, sig;
    sb_init(&k);
    sb_init(&sig);
    engine_trans_key(&k, gid);
    ra_add(&a, k.ptr, k.len);
    ra_adds(&a, "prepared");
    int tt = trans_type_parse(type);
    if (tt == TT_TCC) {
        const char *confirm = "", *cancel = "";
        if ((v = json_field(root, "confirm"))) confirm = v->u.string;
        if ((v = json_field(root, "cancel"))) cancel = v->u.string;
        if (!url_is_http(confirm) || !url_is_http(cancel)) {
            ra_free(&a);
            sb_free(&k);
            sb_free(&sig);
            BAD("confirm and cancel must be http(s) URLs");
        }
        if (branch_url_check(c->cfg, confirm, "confirm", aerr, sizeof aerr) ||
            branch_url_check(c->cfg, cancel, "cancel", aerr, sizeof aerr)) {
            ra_free(&a);
            sb_free(&k);
            sb_free(&sig);
            BAD("%s", aerr);
        }
        sb_printf(&k, "%s", ""); /* reuse k below */
        sb_reset(&k);
        sb_printf(&k, "k:%zu:%s:cancel", strlen(bid), bid);
        sb_printf(&sig, "%s|%s|", confirm, cancel);
        sb_puts(&sig, data);
        ra_add(&a, k.ptr, k.len);
        ra_add(&a, sig.ptr, sig.len);
        ra_addi(&a, now);
        ra_addi(&a, 2);
        ra_addi(&a, BRANCH_FIELDS);
        add_branch_fields(&a, bid, "cancel", cancel, data, "prepared", now);
        add_branch_fields(&a, bid, "confirm", confirm, data, "prepared", now);
    } else if (tt == TT_XA) {
        const char *url = "";
        if ((v = json_field(root, "url"))) url = v->u.string;
        if (!*url || !url_is_http(url)) {
            ra_free(&a);
            sb_free(&k);
            sb_free(&sig);
            BAD("url is required and must be an http(s) URL");
        }
        if (branch_url_check(c->cfg, url, "url", aerr, sizeof aerr)) {
            ra_free(&a);
            sb_free(&k);
            sb_free(&sig);
            BAD("%s", aerr);
        }
        sb_reset(&k);
        sb_printf(&k, "k:%zu:%s:rollback", strlen(bid), bid);
        sb_printf(&sig, "%s|", url);
        sb_puts(&sig, data);
        ra_add(&a, k.ptr, k.len);
        ra_add(&a, sig.ptr, sig.len);
        ra_addi(&a, now);
        ra_addi(&a, 2);
        ra_addi(&a, BRANCH_FIELDS);
        add_branch_fields(&a, bid, "rollback", url, data, "prepared", now);
        add_branch_fields(&a, bid, "commit", url, data, "prepared", now);
    } else if (tt == TT_WORKFLOW) {
        const char *op = NULL, *st = NULL;
        if ((v = json_field(root, "op"))) op = v->u.string;
        if ((v = json_field(root, "status"))) st = v->u.string;
        if (!op || !*op || !st || (strcmp(st, "succeed") != 0 && strcmp(st, "failed") != 0)) {
            ra_free(&a);
            sb_free(&k);
            sb_free(&sig);
            BAD("workflow registerBranch needs op and status 'succeed' or 'failed'");
        }
        sb_reset(&k);
        sb_printf(&k, "k:%zu:%s:%s", strlen(bid), bid, op);
        sb_printf(&sig, "%s|", st);
        sb_puts(&sig, data);
        ra_add(&a, k.ptr, k.len);
        ra_add(&a, sig.ptr, sig.len);
        ra_addi(&a, now);
        ra_addi(&a, 1);
        ra_addi(&a, BRANCH_FIELDS);
        add_branch_fields(&a, bid, op, "", data, st, now);
    } else {
        ra_free(&a);
        sb_free(&k);
        sb_free(&sig);
        BAD("registerBranch: trans_type '%s' has no branches to register (tcc, xa, workflow)",
            type);
    }
    sb_free(&k);
    sb_free(&sig);
    c->extra = gid;
    gid = NULL;
    store_script("register_branch", 1, &a, registered, c);
out:
    free(gid);
    json_free(root);
#undef BAD
}
