/* api_call.c - the reply envelope of the API: one request awaiting its
 * answer (api_call.h), and every answer's shape.
 *
 * Why a module of its own: every endpoint (api_*.c) answers through these
 * functions, and routing (http_api.c) hands requests to the endpoints; with
 * the envelope here neither needs the other. An answer is sent only if the
 * client is still connected, is counted in the metrics and the access log,
 * and frees the call: the one owner of an api_call is whoever answers it. */
#include "api_call.h"

#include "http_conn.h"
#include "http_reply.h"
#include "jsonrpc.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "util.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_close(struct evhttp_connection *conn, void *arg) {
    (void)conn;
    api_call *c = arg;
    c->req = NULL;
}

api_call *api_call_new(struct evhttp_request *req, const dtmd_config *cfg) {
    api_call *c = xcalloc(1, sizeof *c);
    c->req = req;
    c->cfg = cfg;
    c->conn = evhttp_request_get_connection(req);
    c->start = metrics_now();
    if (c->conn) evhttp_connection_set_closecb(c->conn, on_close, c);
    return c;
}

static void api_call_free(api_call *c) {
    trans_free(c->t);
    free(c->gid);
    for (size_t i = 0; i < c->ntopics; i++) free(c->topics[i]);
    free(c->topics);
    free(c->all);   /* their members are released by api_query.c */
    free(c->reset); /* when it answers */
    free(c->rpc_id);
    free(c);
}

/* dtm's api label: the route name in lower case. */
static void record_metrics(const api_call *c, int code) {
    char api_lc[32];
    size_t i = 0;
    for (; c->api[i] && i + 1 < sizeof api_lc; i++)
        api_lc[i] = (char)(c->api[i] >= 'A' && c->api[i] <= 'Z' ? c->api[i] + 32 : c->api[i]);
    api_lc[i] = '\0';
    metrics_http(api_lc, code, metrics_now() - c->start);
}
/* Send the answer (if the client is still there), record it, free c. */
void api_reply_raw(api_call *c, int code, const char *content_type, const char *data, size_t len) {
    if (c->api) record_metrics(c, code);
    if (c->req) http_conn_touch(c->req);
    log_access(c->req, code, metrics_now() - c->start);
    if (c->req) {
        if (c->conn) evhttp_connection_set_closecb(c->conn, NULL, NULL);
        struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
        evhttp_add_header(h, "Content-Type", content_type);
        evhttp_add_header(h, "Date", http_date_header());
        struct evbuffer *out = evbuffer_new();
        evbuffer_add(out, data, len);
        const char *reason = code == 200   ? "OK"
                             : code == 400 ? "Bad Request"
                             : code == 401 ? "Unauthorized"
                             : code == 404 ? "Not Found"
                             : code == 409 ? "Conflict"
                             : code == 425 ? "Too Early"
                             : code == 503 ? "Service Unavailable"
                                           : "Internal Server Error";
        http_send_reply(c->req, code, reason, out);
        evbuffer_free(out);
    }
    api_call_free(c);
}

void api_reply_json(api_call *c, int code, const char *json) {
    if (c->rpc_id) { /* JSON-RPC answers are HTTP 200 (api_jsonrpc.c) */
        char *answer = jsonrpc_answer(c->rpc_id, code, json);
        api_reply_raw(c, 200, "application/json; charset=utf-8", answer, strlen(answer));
        free(answer);
        return;
    }
    api_reply_raw(c, code, "application/json; charset=utf-8", json, strlen(json));
}

void api_reply_ok(api_call *c) {
    api_reply_json(c, 200, "{\"dtm_result\":\"SUCCESS\"}");
}

static void reply_result(api_call *c, int code, const char *result, const char *msg,
                         const char *suffix) {
    sbuf b;
    sb_init(&b);
    if (result)
        sb_printf(&b, "{\"dtm_result\":\"%s\",\"message\":", result);
    else
        sb_puts(&b, "{\"message\":");
    sbuf m;
    sb_init(&m);
    sb_puts(&m, msg);
    /* dtm ends every such message with " <suffix>", added unless there */
    size_t ml = strlen(msg), sl = suffix ? strlen(suffix) : 0;
    if (suffix && !(ml > sl && msg[ml - sl - 1] == ' ' && strcmp(msg + ml - sl, suffix) == 0)) {
        sb_putc(&m, ' ');
        sb_puts(&m, suffix);
    }
    sb_json_str(&b, m.ptr, m.len);
    sb_putc(&b, '}');
    api_reply_json(c, code, b.ptr);
    sb_free(&m);
    sb_free(&b);
}

void api_reply_failure(api_call *c, const char *msg) {
    reply_result(c, 409, "FAILURE", msg, "FAILURE");
}

void api_reply_ongoing(api_call *c, const char *msg) {
    reply_result(c, 425, "ONGOING", msg, NULL);
}

void api_reply_error(api_call *c, int code, const char *msg) {
    if (code >= 500) log_warn("api: %d %s", code, msg);
    reply_result(c, code, NULL, msg, NULL);
}

/* Redis' own text (script SHAs, OOM, key names) stays in dtmd's log: the
 * client gets a message in dtmd's words. */
void api_reply_store_error(api_call *c, const char *gid, const char *err) {
    int unavailable = store_err_unavailable(err);
    log_warn("api: %s%s%s%s failed in the store: %s", gid ? "gid " : "", gid ? gid : "",
             gid ? ": " : "", c->api ? c->api : "request", err ? err : "");
    /* Why it is unavailable (a timeout, replication not confirmed) is
     * dtmd's own text after "store unavailable: ": the client may see it. */
    const char *why = unavailable && err[17] == ':' ? err + 17 : "";
    char msg[512];
    snprintf(
        msg, sizeof msg, "%s%s%s%s%.300s%s", gid ? "gid " : "", gid ? gid : "", gid ? ": " : "",
        unavailable ? "store unavailable" : "the store failed the request (details in dtmd's log)",
        why, unavailable ? "; try again later" : "");
    reply_result(c, unavailable ? 503 : 500, NULL, msg, NULL);
}
