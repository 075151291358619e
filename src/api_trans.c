/* api_trans.c - endpoints that create or change transactions: submit,
 * prepare, abort, forceStop, resetNextCronTime (docs/protocol.md#endpoints,
 * docs/requests.md); prepareWorkflow is api_workflow.c's, registerBranch
 * api_register.c's, what they share api_cas.h's.
 *
 * Each request is validated completely before anything is written, so bad
 * input is answered 400 with nothing stored. State changes are single Lua
 * scripts (save_new, cas_update, claim: trans_store.h); a request for a gid
 * that exists never overwrites what is stored
 * (docs/protocol.md#where-dtmd-differs-from-dtm). */
#include "api_cas.h"
#include "api_handlers.h"

#include "engine.h"
#include "http_api.h"
#include "liveness.h"
#include "log.h"
#include "outcome.h"
#include "trans_json.h"
#include "trans_request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- driving and answering -------------------------------------------- */

/* wait_result answer (docs/protocol.md#wait_result): a pass that halted on a branch call
 * answers by that call (ONGOING 425, FAILURE 409, error 500); then submit
 * answers 200 only when the transaction succeeded, abort once it failed. */
static void wait_done(void *arg, const trans *t, const pass_end *e) {
    api_call *c = arg;
    if (e->unknown) {
        /* Only what the store confirmed is ever answered as a result. */
        api_reply_store_error(c, t->gid, e->err ? e->err : "store write not confirmed");
    } else if (t->status == GS_SUCCEED ||
               (c->rq == RQ_ABORT && !e->err && t->status == GS_FAILED)) {
        api_reply_ok(c);
    } else if (e->halted == BR_ONGOING) {
        api_reply_ongoing(c, e->halt_msg);
    } else if (e->halted == BR_FAILURE) {
        api_reply_failure(c, e->halt_msg);
    } else if (e->halted == BR_ERROR) {
        api_reply_error(c, 500, e->halt_msg);
    } else if (c->rq == RQ_ABORT && !e->err) {
        api_reply_ongoing(c, "abort is in progress: a branch did not answer yet");
    } else if (e->err && !global_status_final(t->status)) {
        /* This process stopped driving it (its liveness lapsed, another
         * writer moved it): not an outcome, so not FAILURE. */
        api_reply_ongoing(c, e->err);
    } else if (t->rollback_reason && t->rollback_reason[0]) {
        api_reply_failure(c, t->rollback_reason);
    } else {
        api_reply_failure(c, "wait result not return success: FAILURE");
    }
}

/* Hand t to the engine; answer now, or when the pass ends (wait_result).
 * At Limits.MaxActivePasses the stored transaction is parked for the
 * scanner instead (engine_hold.c); the answer is the same: it is accepted. */
static void drive(api_call *c, trans *t) {
    if (c->wait_result) {
        engine_drive(t, wait_done, c);
    } else {
        api_reply_ok(c);
        if (engine_has_room() || engine_active(t->gid))
            engine_drive(t, NULL, NULL);
        else
            engine_park(t);
    }
}

static void loaded_then_drive(void *arg, tstore_reply *reply, const char *err) {
    api_call *c = arg;
    if (err) {
        api_reply_store_error(c, c->t->gid, err);
        return;
    }
    trans *t = reply->t;
    if (!t) {
        api_reply_error(c, 500, "stored transaction vanished or is malformed");
        return;
    }
    reply->t = NULL;
    drive(c, t);
}

/* The request an api_call of this file stands for in the transition table. */
static trans_request request_of(const api_call *c) {
    switch (c->rq) {
        case RQ_ABORT:
            return RQ_ABORT;
        case RQ_PREPARE:
            return RQ_PREPARE;
        default:
            return RQ_SUBMIT;
    }
}

/* After a msg abort's CAS stored it failed: end this process's calls of it
 * (a query_prepared check-back may be in flight); the pass only reports. */
static void cas_then_drive(void *arg, tstore_reply *reply, const char *err) {
    api_call *c = arg;
    if (err) {
        api_reply_store_error(c, c->t->gid, err);
        return;
    }
    if (reply->tag != TS_OK) {
        api_reply_for_tag(c, RQ_ABORT, c->t->gid, reply, trans_type_name(c->t->type));
        return;
    }
    engine_cancel(c->t->gid, GS_FAILED, "aborted");
    tstore_load(c->t->gid, loaded_then_drive, c);
}

static void claimed(void *arg, tstore_reply *reply, const char *err) {
    api_call *c = arg;
    const char *gid = c->t->gid;
    if (err) {
        api_reply_store_error(c, gid, err);
        return;
    }
    if (reply->tag == TS_OK) {
        trans *t = reply->t;
        if (!t) {
            api_reply_error(c, 500, "stored transaction is malformed");
            return;
        }
        reply->t = NULL;
        t->hold_epoch = reply->epoch;
        liveness_note(tstore_shard(gid), c->hold_sent_us, t->hold_epoch);
        drive(c, t);
    } else if (reply->tag == TS_BUSY) {
        if (engine_active(gid)) {
            /* Held by this process: join its pass. */
            tstore_load(gid, loaded_then_drive, c);
        } else if (c->wait_result) {
            char msg[256];
            long long due = reply->held_until - now_ms();
            snprintf(msg, sizeof msg,
                     "gid %s: being processed by another dtmd process or waiting for its "
                     "next retry (due in %lld ms)",
                     gid, due > 0 ? due : 0);
            api_reply_ongoing(c, msg);
        } else {
            api_reply_ok(c); /* accepted: it is in progress */
        }
    } else {
        api_reply_for_tag(c, request_of(c), gid, reply, trans_type_name(c->t->type));
    }
}

/* Take a stored transaction over and drive it (claim.lua) as row allows:
 * the script checks the stored type and row->from; busy are the statuses
 * another process may be driving (kept by the request, so only a due time
 * that has come lets it drive); fields are written with the claim and
 * consumed. A request never drives a transaction while another process
 * holds it, which dtm's API path ignores (a repeated submit there re-runs
 * the pass at once). */
static void claim_and_drive(api_call *c, const char *type, const transition *row, const char *busy,
                            rargs *fields) {
    int64_t now = now_ms();
    int64_t lease_end = engine_new_hold(c->t->gid, now + config_lease_ms(c->cfg));
    c->hold_sent_us = liveness_now_us();
    tstore_claim(c->t->gid, type, row->from, busy, now, lease_end, fields, claimed, c);
}

/* The options a submit of a prepared transaction brings. dtm runs that pass
 * with the submit's own request (svcSubmit: only the branches come from the
 * store, its Redis store then saves that request), so an SDK that adds
 * custom_data's delay only at submit (Go, Node.js, C#) gets its delay, and
 * the delay counts from the submit (create_time is the submit's). A field
 * the submit leaves out (absent, null, empty or 0) keeps its stored value;
 * steps and payloads never change the stored branches. */
static void submit_options(const trans *rq, rargs *f, int64_t now) {
    const struct {
        trans_field name;
        const char *value;
    } strs[] = {{TF_CUSTOM_DATA, rq->custom_data},
                {TF_QUERY_PREPARED, rq->query_prepared},
                {TF_BRANCH_HEADERS, rq->branch_headers}};
    const struct {
        trans_field name;
        int64_t value;
    } nums[] = {
        {TF_WAIT_RESULT, rq->wait_result},         {TF_CONCURRENT, rq->concurrent},
        {TF_TIMEOUT_TO_FAIL, rq->timeout_to_fail}, {TF_REQUEST_TIMEOUT, rq->request_timeout},
        {TF_RETRY_INTERVAL, rq->retry_interval},   {TF_RETRY_LIMIT, rq->retry_limit}};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (strs[i].value && strs[i].value[0]) trans_set(f, strs[i].name, strs[i].value);
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        if (nums[i].value) trans_set_int(f, nums[i].name, nums[i].value);
    trans_set_int(f, TF_CREATE_TIME, now);
}

/* A submit of a stored prepared or submitted transaction: prepared moves to
 * submitted, with the options the submit brings (stored_status is what the
 * store answered: the claim re-checks the status atomically); a repeated
 * submit re-drives what is stored unless it is held. */
static void submit_stored(api_call *c, const transition *row, int stored_status) {
    int64_t now = now_ms();
    rargs f;
    ra_init(&f);
    trans_set(&f, TF_STATUS, global_status_name(row->to));
    trans_set_int(&f, TF_UPDATE_TIME, now);
    if (stored_status == GS_PREPARED) submit_options(c->t, &f, now);
    claim_and_drive(c, trans_type_name(c->t->type), row, "submitted", &f);
}

static void saved(void *arg, tstore_reply *reply, const char *err) {
    api_call *c = arg;
    if (err) {
        api_reply_store_error(c, c->t->gid, err);
        return;
    }
    if (reply->tag == TS_OK) {
        if (c->rq == RQ_PREPARE) {
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
        t->hold_epoch = reply->epoch; /* of the hold save_new took (lua/save_new.lua) */
        liveness_note(tstore_shard(t->gid), c->hold_sent_us, t->hold_epoch);
        drive(c, t);
        return;
    }
    if (reply->tag != TS_EXISTS) {
        api_reply_error(c, 500, "unexpected reply from store");
        return;
    }
    /* The gid exists: what the request may do to it is the table's. A
     * prepare writes nothing, so its check here is the whole check; a
     * submit's claim checks again atomically with its write. */
    trans_request rq = request_of(c);
    int status = global_status_parse(reply->status);
    transition_verdict v = transition_check(rq, c->t->type, trans_type_parse(reply->type), status);
    if (v != TV_OK) {
        api_reply_refused(c, rq, c->t->gid, v, reply->status, reply->type,
                          trans_type_name(c->t->type));
    } else if (c->rq == RQ_PREPARE) {
        api_reply_ok(c);
    } else {
        submit_stored(c, transition_find(rq, c->t->type), status);
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
    int settled = c->rq == RQ_SUBMIT && engine_settle_new(t, now);
    /* A new submit is driven here at once: held until its first due time
     * (lua/claim.lua), which is also when the scanner would look at it. */
    int held = c->rq == RQ_SUBMIT && !settled;
    if (held) {
        t->lease_until_ms = engine_new_hold(t->gid, t->next_cron_ms);
        c->hold_sent_us = liveness_now_us();
    }
    tstore_save_new(t, settled ? -1 : t->next_cron_ms,
                    settled ? c->cfg->finished_data_expire : c->cfg->data_expire, held, saved, c);
}
/* ---- submit / prepare ------------------------------------------------- */

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

/* HMGET of the topics a msg names, in the order of c->topics. */
static void topics_loaded(void *arg, redisReply *reply, const char *err) {
    api_call *c = arg;
    topic_set ts = {0};
    if (err) {
        api_reply_store_error(c, c->t->gid, err);
        return;
    }
    char **names = c->topics;
    size_t n = c->ntopics;
    c->topics = NULL; /* the topic_set owns them now */
    c->ntopics = 0;
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
    if (api_parse_trans(c, body, len)) return;
    trans *t = c->t;
    c->wait_result = t->wait_result;
    if (t->type == TT_WORKFLOW && status == GS_SUBMITTED) {
        api_workflow_submit(c);
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
     * any dtmd sharing it counts at once (docs/protocol.md#topics-and-kv). */
    c->topics = names;
    c->ntopics = n;
    api_load_topics(c->cfg, names, n, topics_loaded, c);
}

void api_submit(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)q;
    c->rq = RQ_SUBMIT;
    create_or_continue(c, GS_SUBMITTED, body, len);
}

void api_prepare(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)q;
    c->rq = RQ_PREPARE;
    create_or_continue(c, GS_PREPARED, body, len);
}
/* ---- abort ---------------------------------------------------------------- */

/* An abort its row never allows (a saga or workflow): read the stored
 * transaction only to say why, as dtm does, with nothing written. */
static void abort_refused(void *arg, tstore_reply *reply, const char *err) {
    api_call *c = arg;
    if (err) {
        api_reply_store_error(c, c->t->gid, err);
        return;
    }
    const trans *stored = reply->t;
    transition_verdict v =
        stored ? transition_check(RQ_ABORT, c->t->type, stored->type, stored->status)
               : TV_NOT_FOUND;
    if (v == TV_OK) v = TV_CONFLICT; /* changed meanwhile: the client may try again */
    api_reply_refused(c, RQ_ABORT, c->t->gid, v, stored ? global_status_name(stored->status) : "",
                      stored ? trans_type_name(stored->type) : "", trans_type_name(c->t->type));
}

/* Abort by the row of the request's type; the script checks that the stored
 * transaction has that type and a status the row allows. TCC/XA move to
 * aborting and are driven (cancel / rollback every branch); a prepared msg
 * fails at once. */
void api_abort(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)q;
    c->rq = RQ_ABORT;
    if (api_parse_trans(c, body, len)) return;
    c->wait_result = c->t->wait_result;
    const transition *row = transition_find(RQ_ABORT, c->t->type);
    if (!row || !row->from[0]) {
        tstore_load(c->t->gid, abort_refused, c);
        return;
    }
    const char *type = trans_type_name(c->t->type);
    int64_t now = now_ms();
    rargs f;
    ra_init(&f);
    trans_set(&f, TF_STATUS, global_status_name(row->to));
    trans_set_int(&f, TF_UPDATE_TIME, now);
    if (c->t->rollback_reason && c->t->rollback_reason[0]) {
        trans_set(&f, TF_ROLLBACK_REASON, c->t->rollback_reason);
    }
    if (global_status_final(row->to)) {
        trans_set_int(&f, TF_ROLLBACK_TIME, now);
        api_cas(c->t->gid, type, row, -1, c->cfg->finished_data_expire, &f, cas_then_drive, c);
    } else {
        claim_and_drive(c, type, row, global_status_name(row->to), &f);
    }
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

/* resetNextCronTime's writes: next_cron_time and update_time, now. */
static void reset_cron_fields(rargs *f) {
    int64_t now = now_ms();
    ra_init(f);
    trans_set_int(f, TF_NEXT_CRON_TIME, now);
    trans_set_int(f, TF_UPDATE_TIME, now);
}

/* forceStop / resetNextCronTime: c->rq is the request. */
static void simple_cas_done(void *arg, tstore_reply *reply, const char *err) {
    api_call *c = arg;
    const char *gid = c->gid;
    if (err) {
        api_reply_store_error(c, gid, err);
        return;
    }
    if (reply->tag == TS_OK) {
        const transition *row = transition_find(c->rq, trans_type_parse(reply->type));
        if (row && row->cancel) engine_cancel(gid, GS_FAILED, "force stopped");
        api_reply_ok(c);
    } else if (reply->tag != TS_BAD && api_verdict_of(reply->tag) == TV_CONFLICT &&
               c->rq == RQ_RESET_CRON) {
        /* Finished: dtm still rewrites its times; it stays out of the due
         * index and keeps its expiry. */
        rargs f;
        reset_cron_fields(&f);
        c->rq = RQ_RESET_CRON_FINAL;
        api_cas(gid, NULL, transition_find(RQ_RESET_CRON_FINAL, TT_SAGA), 0, 0, &f, simple_cas_done,
                c);
    } else {
        api_reply_for_tag(c, c->rq, gid, reply, NULL);
    }
}

/* Both apply to every type: the script checks the status only. */
static void any_type_cas(api_call *c, trans_request rq, int64_t due, int64_t ttl, rargs *f) {
    c->rq = rq;
    api_cas(c->gid, NULL, transition_find(rq, TT_SAGA), due, ttl, f, simple_cas_done, c);
}

void api_force_stop(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)q;
    char *gid = parse_gid_body(c, body, len);
    if (!gid) return;
    c->gid = gid;
    int64_t now = now_ms();
    rargs f;
    ra_init(&f);
    trans_set(&f, TF_STATUS, "failed");
    trans_set_int(&f, TF_UPDATE_TIME, now);
    trans_set_int(&f, TF_ROLLBACK_TIME, now);
    trans_set(&f, TF_ROLLBACK_REASON, "force stopped");
    log_info("gid %s: force stop requested", gid);
    any_type_cas(c, RQ_FORCE_STOP, -1, c->cfg->finished_data_expire, &f);
}

/* Make an unfinished transaction due now (the retry scanner picks it up on
 * its next tick). Unlike dtm's Redis store this really moves the due time;
 * a finished one only gets its times rewritten, as dtm does. */
void api_reset_next_cron_time(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)q;
    char *gid = parse_gid_body(c, body, len);
    if (!gid) return;
    c->gid = gid;
    rargs f;
    reset_cron_fields(&f);
    any_type_cas(c, RQ_RESET_CRON, now_ms(), 0, &f);
}
