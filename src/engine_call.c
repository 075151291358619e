/* engine_call.c - a pass's branch calls: starting them (gated by the hold,
 * engine_hold.c), their answers (to take_result, engine_write.c) and
 * cancelling them. */
#include "engine_int.h"

#include "alert.h"
#include "jsonrpc.h"
#include "last_error.h"
#include "log.h"
#include "metrics.h"

#include <stdlib.h>
#include <string.h>

/* Unlink a call from the pass's bookkeeping and free its context. */
static void call_forget(call_ctx *c) {
    if (c->prev)
        c->prev->next = c->next;
    else
        eng.calls = c->next;
    if (c->next) c->next->prev = c->prev;
    c->p->calls--;
    free(c);
}

/* Cancel the pass's queued and running calls: their slots are freed and
 * nothing more of them is sent. */
void cancel_calls(pass *p) {
    for (call_ctx *c = eng.calls, *next; c; c = next) {
        next = c->next;
        if (c->p != p) continue;
        branch_call_cancel(c->call);
        call_forget(c);
    }
}

/* branch_request.may_send: checked right before the request goes out,
 * also for a call that waited in the Limits.MaxInflightCalls queue. */
static int call_may_send(void *arg) {
    call_ctx *c = arg;
    return !c->p->stopped && hold_live(c->p);
}

/* Keep what a call that did not succeed answered: the next result write
 * stores it (result_fields). */
static void note_error(pass *p, int bi, const char *op, const char *url, branch_outcome o,
                       long status, const char *body, size_t len) {
    if (o == BR_SUCCESS) return;
    free(p->last_err);
    p->last_err = last_error_json(bi >= 0 ? p->t->branches[bi].branch_id : "00", op, url, o, status,
                                  body, len, now_ms());
}

static void call_done(void *arg, branch_outcome o, long status, const char *body, size_t len) {
    call_ctx *c = arg;
    pass *p = c->p;
    int bi = c->bi;
    double seconds = metrics_now() - c->start;
    note_error(p, bi, c->op, c->url, o, status, body, len);
    call_forget(c);
    metrics_branch(trans_type_name(p->t->type), bi >= 0 ? p->t->branches[bi].branch_id : "00",
                   bi >= 0 ? p->t->branches[bi].op : "special", (int)o, seconds);
    if (bi >= 0) {
        branch *b = &p->t->branches[bi];
        log_debug("gid %s: branch %s %s -> %s (HTTP %ld)", p->t->gid, b->branch_id, b->op,
                  branch_outcome_name(o), status);
        if (o == BR_ERROR)
            log_warn("gid %s: branch %s %s %s failed: HTTP %ld %.*s", p->t->gid, b->branch_id,
                     b->op, b->url, status, (int)(len > 200 ? 200 : len), body);
    } else {
        log_debug("gid %s: %s -> %s (HTTP %ld)", p->t->gid, p->t->query_prepared,
                  branch_outcome_name(o), status);
        if (o == BR_ERROR)
            log_warn("gid %s: call of %s failed: HTTP %ld %.*s", p->t->gid,
                     p->t->query_prepared ? p->t->query_prepared : "", status,
                     (int)(len > 200 ? 200 : len), body);
    }
    if (!p->stopped && !eng.stopping && hold_live(p)) {
        take_result(p, bi, o, body, len, 0);
        /* A saga action's FAILURE is an answer, not a fault worth an alert. */
        int answered = bi >= 0 && p->t->branches[bi].status == BS_FAILED;
        if (o == BR_ERROR || (o == BR_FAILURE && !answered))
            alert_maybe(p->cfg, p->t, bi >= 0 ? p->t->branches[bi].url : p->t->query_prepared, body,
                        len);
    }
    pass_advance(p);
}

/* Start one HTTP call for the pass; its answer goes to take_result. */
static void start_call(pass *p, int bi, const branch_request *req) {
    if (!hold_live(p)) return;
    hold_lease(p);
    call_ctx *c = xcalloc(1, sizeof *c);
    c->p = p;
    c->bi = bi;
    c->op = req->op;
    c->url = req->url;
    c->start = metrics_now();
    branch_request gated = *req;
    gated.may_send = call_may_send;
    c->call = branch_call_start(&gated, call_done, c);
    if (!c->call) {
        free(c);
        note_error(p, bi, req->op, req->url, BR_ERROR, 0, "cannot start call", 17);
        take_result(p, bi, BR_ERROR, "cannot start call", 17, 0);
        return;
    }
    c->next = eng.calls;
    if (eng.calls) eng.calls->prev = c;
    eng.calls = c;
    p->calls++;
}

/* Call branch bi (op URL, payload, headers of the transaction). An empty
 * URL succeeds at once, its result only in memory: returns 1 then. */
int call_branch(pass *p, int bi) {
    trans *t = p->t;
    branch *b = &t->branches[bi];
    p->started[bi] = 1;
    if (!b->url[0]) {
        take_result(p, bi, BR_SUCCESS, "", 0, 1);
        return 1;
    }
    branch_request req = {
        .url = b->url,
        .gid = t->gid,
        .trans_type = trans_type_name(t->type),
        .branch_id = b->branch_id,
        .op = b->op,
        .body = b->data,
        .body_len = b->data_len,
        .force_post = t->type == TT_XA,
        .headers = (const char *const *)t->header_lines,
        .nheaders = t->nheaders,
        .timeout_s = (double)trans_request_timeout_ms(t, p->cfg) / 1000.0,
    };
    char *rpc = NULL; /* protocol json-rpc: the call's JSON-RPC request */
    if (jsonrpc_branch_url(t->protocol, b->url)) {
        char err[200];
        size_t len;
        rpc = jsonrpc_branch_body(b->url, b->data, b->data_len, req.gid, req.trans_type,
                                  req.branch_id, req.op, &len, err, sizeof err);
        if (!rpc) { /* as a call that errs: retried, as dtm does */
            take_result(p, bi, BR_ERROR, err, strlen(err), 0);
            return 0;
        }
        req = (branch_request){.url = b->url,
                               .body = rpc,
                               .body_len = len,
                               .force_post = 1,
                               .headers = req.headers,
                               .nheaders = req.nheaders,
                               .timeout_s = req.timeout_s,
                               .jsonrpc = 1};
    }
    start_call(p, bi, &req);
    free(rpc);
    return 0;
}

/* Call a URL for the transaction itself rather than a branch (msg
 * query_prepared, workflow resume): branch_id "00", the decision's op, its
 * body sent verbatim (GET when empty). Its result comes with bi = -1. */
void call_special(pass *p, const mode_decision *d) {
    trans *t = p->t;
    if (!d->special_url || !d->special_url[0]) {
        take_result(p, -1, BR_SUCCESS, "", 0, 0);
        return;
    }
    branch_request req = {
        .url = d->special_url,
        .gid = t->gid,
        .trans_type = trans_type_name(t->type),
        .branch_id = "00",
        .op = d->special_op,
        .body = d->special_body,
        .body_len = d->special_len,
        .headers = (const char *const *)t->header_lines,
        .nheaders = t->nheaders,
        .timeout_s = (double)trans_request_timeout_ms(t, p->cfg) / 1000.0,
    };
    start_call(p, -1, &req);
}
