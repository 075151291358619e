/* api_cas.c - what the endpoints that change a stored transaction share:
 * the request's compare-and-set (waiting for the holder when it ends a
 * transaction another process drives) and the answer to a refusal (see
 * api_cas.h). */
#include "api_cas.h"

#include "http_api.h"
#include "liveness.h"
#include "stop_sub.h"
#include "trans_request.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- ending a transaction another process holds ------------------------
 *
 * A request that stores a final status (a row with cancel: forceStop, msg
 * abort, workflow submit) must not do so while another live process holds
 * the transaction: that process may be about to send a call it queued. The
 * script records the stop there and publishes it instead (HELD); the
 * holder cancels its calls and stores the stop (engine_stop_requested). The
 * request asks again every STOP_POLL_MS - hearing OK once the holder stored
 * it, or writing itself once the holder's liveness lapsed - for at most
 * STOP_WAIT_MS, then answers 503 (the stop stays recorded: the holder's next
 * write stores it). docs/requests.md "No branch call after the end". */

#define STOP_POLL_MS 50
#define STOP_WAIT_MS 10000

typedef struct stop_wait {
    api_call *c;
    tstore_cb *cb;
    rargs args; /* the script's arguments, sent again as they are */
    int64_t deadline;
    struct event *ev;
} stop_wait;

static void stop_wait_send(stop_wait *w);

static void stop_wait_free(stop_wait *w) {
    ra_free(&w->args);
    if (w->ev) event_free(w->ev);
    free(w);
}

static void stop_wait_tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    stop_wait_send(arg);
}

static void stop_wait_reply(void *arg, tstore_reply *reply, const char *err) {
    stop_wait *w = arg;
    if (err || reply->tag != TS_HELD) {
        w->cb(w->c, reply, err);
        stop_wait_free(w);
        return;
    }
    if (now_ms() >= w->deadline) {
        api_call *c = w->c;
        stop_wait_free(w);
        api_reply_error(c, 503,
                        "the transaction is driven by another dtmd process, which has not stored "
                        "the stop yet; it is recorded and will be applied");
        return;
    }
    if (!w->ev) w->ev = evtimer_new(http_api_base(), stop_wait_tick, w);
    struct timeval tv = {0, STOP_POLL_MS * 1000};
    evtimer_add(w->ev, &tv);
}

static void stop_wait_send(stop_wait *w) {
    tstore_cas_send(&w->args, stop_wait_reply, w);
}

/* cas_update (lua/cas_update.lua) under a transition row: the script
 * checks the stored type (NULL = any) and status; fields are consumed. */
void api_cas(const char *gid, const char *type, const transition *row, int64_t due, int64_t ttl,
             rargs *fields, tstore_cb *cb, api_call *c) {
    static uint64_t stops;
    int ending = row->cancel && due < 0;
    tstore_cas x = {.gid = gid, .type = type, .from = row->from, .due_ms = due, .ttl_s = ttl};
    if (!ending) {
        tstore_cas_update(&x, fields, cb, c);
        return;
    }
    char id[64];
    snprintf(id, sizeof id, "%s:%llu", liveness_id(), (unsigned long long)++stops);
    sbuf ch;
    sb_init(&ch);
    stop_sub_channel(&ch, c->cfg->redis_prefix);
    x.stop_id = id;
    x.stop_channel = ch.ptr;
    stop_wait *w = xcalloc(1, sizeof *w);
    w->c = c;
    w->cb = cb;
    tstore_cas_args(&x, fields, &w->args);
    sb_free(&ch);
    w->deadline = now_ms() + STOP_WAIT_MS;
    stop_wait_send(w);
}

/* Answer a request the store (or the table) refused: 404 absent, 400 a
 * type mismatch or a request that never applies to the stored type, 409 a
 * status that does not allow it (dtm's FAILURE answer, which SDKs test). */
void api_reply_refused(api_call *c, trans_request rq, const char *gid, transition_verdict v,
                       const char *status, const char *stored_type, const char *req_type) {
    char msg[384];
    switch (v) {
        case TV_OK:
            api_reply_error(c, 500, "refusal without a reason");
            break;
        case TV_NOT_FOUND:
            snprintf(msg, sizeof msg, "gid %s: no such transaction", gid);
            api_reply_error(c, 404, msg);
            break;
        case TV_WRONG_TYPE:
            snprintf(msg, sizeof msg,
                     "gid %s is a %s transaction (status '%s'), not %s: cannot %s it", gid,
                     stored_type, status, req_type ? req_type : "?", trans_request_name(rq));
            api_reply_error(c, 400, msg);
            break;
        case TV_NO_SUCH:
            snprintf(msg, sizeof msg, "gid %s: %s does not apply to a %s transaction", gid,
                     trans_request_name(rq), stored_type);
            api_reply_error(c, 400, msg);
            break;
        case TV_CONFLICT:
            snprintf(msg, sizeof msg, "gid %s: current status '%s' of a %s transaction, cannot %s",
                     gid, status, stored_type, trans_request_name(rq));
            api_reply_failure(c, msg);
            break;
    }
}

/* The verdict a script's reply tag stands for. */
transition_verdict api_verdict_of(tstore_tag tag) {
    switch (tag) {
        case TS_OK:
            return TV_OK;
        case TS_NOT_FOUND:
            return TV_NOT_FOUND;
        case TS_WRONG_TYPE:
            return TV_WRONG_TYPE;
        default:
            return TV_CONFLICT;
    }
}

/* Answer a script's refusal r of request rq on gid (req_type: the type the
 * request named, NULL = any): the HTTP answer its tag stands for. */
void api_reply_for_tag(api_call *c, trans_request rq, const char *gid, const tstore_reply *r,
                       const char *req_type) {
    if (r->tag == TS_BAD)
        api_reply_error(c, 500, "unexpected reply from store");
    else
        api_reply_refused(c, rq, gid, api_verdict_of(r->tag), r->status, r->type, req_type);
}

/* Parse the body into c->t; answers 400 and returns -1 on bad input. */
int api_parse_trans(api_call *c, const char *body, size_t len) {
    char err[512];
    if (trans_from_body(body, len, c->cfg, &c->t, err, sizeof err)) {
        api_reply_error(c, 400, err);
        return -1;
    }
    return 0;
}
