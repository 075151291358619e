/* http_api.c - evhttp server, routing and the reply envelope.
 *
 * Routes: /api/dtmsvr/<name>, with /api/dtms/<name> and the bare
 * /api/<name> accepted as aliases (older guides use them), plus /api/ping
 * and dtm's JSON-RPC entry point /api/json-rpc (api_jsonrpc.c). Every route
 * is described in docs/openapi.json, served at /api/openapi.json.
 * The request body is read whole (evhttp already buffered it) and checked
 * against Limits.MaxBodyBytes before any parsing. Limits.MaxConnections is
 * enforced by pausing the listener (see "connection limit" below). */
#include "http_api.h"

#include "admin.h"
#include "api_handlers.h"
#include "auth.h"
#include "branch_call.h"
#include "jsonrpc.h"
#include "log.h"
#include "metrics.h"
#include "util.h"
#include "version.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <time.h>

static struct {
    struct evhttp *http;
    const dtmd_config *cfg;
    struct evconnlistener *listener; /* of the bound socket; NULL once shut down */
    int max_conns;                   /* Limits.MaxConnections; 0 = unlimited */
    int nconns;                      /* accepted client connections not yet freed */
    int paused;                      /* listener disabled because nconns hit max_conns */
    time_t last_warn;                /* rate limit of the "limit reached" warning */
} api;

/* ---- connection limit (Limits.MaxConnections) -------------------------- */

/* libevent 2.1 has neither evhttp_set_max_connections nor a hook for "this
 * incoming connection is gone", and a bufferevent filter per connection
 * (the usual way in) is not safe: valgrind found libevent freeing a filter
 * whose write timeout was still in the timer heap. What libevent does tell,
 * reliably, is when a bufferevent's lock is freed: in the bufferevent's
 * finalizer, after every callback of it has run, whatever freed it (client
 * close, error, IdleTimeout, shutdown). So with a limit each accepted
 * connection gets a plain socket bufferevent made here (evhttp_set_bevcb)
 * with BEV_OPT_THREADSAFE, and dtmd's lock callbacks (single-threaded: they
 * only count) tag the lock allocated for it and count the connection out
 * when that lock is freed. At the limit the listener stops accepting:
 * further clients wait in the kernel's listen backlog instead of being
 * accepted and starved, like nginx's worker_connections; each close lets
 * the next one in. The lock callbacks must be installed before the event
 * base exists (http_api_prepare). */

typedef struct conn_lock {
    int is_conn; /* the lock of a connection's bufferevent */
} conn_lock;

static int tag_next_lock; /* set while conn_bev_new creates the bufferevent */

static void *lock_alloc(unsigned locktype) {
    (void)locktype;
    conn_lock *l = xcalloc(1, sizeof *l);
    l->is_conn = tag_next_lock;
    tag_next_lock = 0;
    return l;
}

static void conn_closed(void) {
    api.nconns--;
    if (api.paused && api.nconns < api.max_conns) {
        api.paused = 0;
        if (api.listener) evconnlistener_enable(api.listener);
    }
}

static void lock_free(void *lock, unsigned locktype) {
    (void)locktype;
    conn_lock *l = lock;
    if (l->is_conn) conn_closed();
    free(l);
}

static int lock_nop(unsigned mode, void *lock) {
    (void)mode, (void)lock;
    return 0;
}

void http_api_prepare(const dtmd_config *cfg) {
    static const struct evthread_lock_callbacks cbs = {EVTHREAD_LOCK_API_VERSION,
                                                       EVTHREAD_LOCKTYPE_RECURSIVE,
                                                       lock_alloc,
                                                       lock_free,
                                                       lock_nop,
                                                       lock_nop};
    if (cfg->max_connections > 0) evthread_set_lock_callbacks(&cbs);
}

static struct bufferevent *conn_bev_new(struct event_base *base, void *arg) {
    (void)arg;
    tag_next_lock = 1;
    struct bufferevent *bev =
        bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_THREADSAFE);
    int counted = !tag_next_lock; /* its lock was allocated, and tagged */
    tag_next_lock = 0;
    if (!bev) return NULL; /* evhttp makes its own (uncounted) one */
    if (!counted) return bev;
    if (++api.nconns >= api.max_conns && !api.paused && api.listener) {
        /* evconnlistener's accept loop checks this after each callback */
        evconnlistener_disable(api.listener);
        api.paused = 1;
        time_t now = time(NULL);
        if (now - api.last_warn >= 60) {
            api.last_warn = now;
            log_warn("http: %d client connections open (Limits.MaxConnections); new ones "
                     "wait until one closes",
                     api.nconns);
        }
    }
    return bev;
}

/* ---- api_call and replies -------------------------------------------- */

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
    free(c->extra);
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

/* The Date header of the current second. evhttp formats one for every
 * answer that has none (gmtime_r and a printf: about 1,200 instructions per
 * saga, callgrind); the text only changes once a second. */
static const char *date_header(void) {
    static time_t last = -1;
    static char text[64];
    time_t now = time(NULL);
    if (now != last) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        last = now;
    }
    return text;
}

/* Send the answer (if the client is still there), record it, free c. */
static void reply_raw(api_call *c, int code, const char *content_type, const char *data,
                      size_t len) {
    if (c->api) record_metrics(c, code);
    log_access(c->req, code, metrics_now() - c->start);
    if (c->req) {
        if (c->conn) evhttp_connection_set_closecb(c->conn, NULL, NULL);
        struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
        evhttp_add_header(h, "Content-Type", content_type);
        evhttp_add_header(h, "Date", date_header());
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
        evhttp_send_reply(c->req, code, reason, out);
        evbuffer_free(out);
    }
    api_call_free(c);
}

void api_reply_json(api_call *c, int code, const char *json) {
    if (c->rpc_id) { /* JSON-RPC answers are HTTP 200 (api_jsonrpc.c) */
        char *answer = jsonrpc_answer(c->rpc_id, code, json);
        reply_raw(c, 200, "application/json; charset=utf-8", answer, strlen(answer));
        free(answer);
        return;
    }
    reply_raw(c, code, "application/json; charset=utf-8", json, strlen(json));
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

void api_reply_store_error(api_call *c, const char *gid, const char *err) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s%s%s%s", gid ? "gid " : "", gid ? gid : "", gid ? ": " : "", err);
    api_reply_error(c, store_err_unavailable(err) ? 503 : 500, msg);
}

/* ---- simple endpoints ------------------------------------------------ */

/* Prometheus exposition text (not JSON), for scrapers. */
static void api_metrics(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)q, (void)body, (void)len;
    sbuf b;
    sb_init(&b);
    metrics_render(&b);
    reply_raw(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.ptr, b.len);
    sb_free(&b);
}

/* docs/openapi.json, compiled in by src/gen_openapi.sh. */
extern const char openapi_json[];
extern const size_t openapi_json_len;

static void api_openapi(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)q, (void)body, (void)len;
    reply_raw(c, 200, "application/json; charset=utf-8", openapi_json, openapi_json_len);
}

static void api_version(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)q, (void)body, (void)len;
    api_reply_json(c, 200, "{\"version\":\"" DTMD_VERSION "\"}");
}

/* A 22-character id in the alphabet of Go's shortuuid (base57 of 128 random
 * bits), like dtm's gids. getrandom() does not block once the kernel pool
 * is initialised, which it is long before dtmd serves requests. */
void api_new_gid(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)q, (void)body, (void)len;
    static const char alphabet[] = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        for (size_t i = 0; i < sizeof rnd; i++) rnd[i] = (unsigned char)random();
    }
    unsigned __int128 v = 0;
    for (size_t i = 0; i < sizeof rnd; i++) v = (v << 8) | rnd[i];
    char gid[23];
    for (int i = 21; i >= 0; i--) {
        gid[i] = alphabet[(int)(v % 57)];
        v /= 57;
    }
    gid[22] = '\0';
    char json[96];
    snprintf(json, sizeof json, "{\"gid\":\"%s\",\"dtm_result\":\"SUCCESS\"}", gid);
    api_reply_json(c, 200, json);
}

/* ---- routing --------------------------------------------------------- */

enum { M_GET = 1, M_POST = 2, M_ANY = 0xff };

static const struct route {
    const char *name;
    int methods;
    api_handler *fn;
} routes[] = {
    {"version", M_GET, api_version},
    {"newGid", M_GET, api_new_gid},
    {"submit", M_POST, api_submit},
    {"prepare", M_POST, api_prepare},
    {"abort", M_POST, api_abort},
    {"registerBranch", M_POST, api_register_branch},
    {"registerXaBranch", M_POST, api_register_branch},
    {"registerTccBranch", M_POST, api_register_branch},
    {"prepareWorkflow", M_POST, api_prepare_workflow},
    {"query", M_GET, api_query},
    {"all", M_GET, api_all},
    {"resetCronTime", M_GET | M_POST, api_reset_cron_time},
    {"resetNextCronTime", M_POST, api_reset_next_cron_time},
    {"forceStop", M_POST, api_force_stop},
    {"subscribe", M_GET | M_POST, api_subscribe},
    {"unsubscribe", M_GET | M_POST, api_unsubscribe},
    {"queryKV", M_GET, api_query_kv},
    {"scanKV", M_GET, api_scan_kv},
    {"metrics", M_GET, api_metrics},
    {"json-rpc", M_POST, api_json_rpc},
    {"openapi.json", M_GET, api_openapi},
    {NULL, 0, NULL},
};

static int method_bit(enum evhttp_cmd_type m) {
    switch (m) {
        case EVHTTP_REQ_GET:
            return M_GET;
        case EVHTTP_REQ_POST:
            return M_POST;
        default:
            return 0x100;
    }
}

static void route_request(struct evhttp_request *req, void *arg) {
    (void)arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path) path = "/";
    if (admin_path(path)) { /* static UI, no data; its API calls carry the token */
        admin_serve(req, path);
        return;
    }
    api_call *c = api_call_new(req, api.cfg);
    if (strcmp(path, "/api/ping") == 0 || strcmp(path, "/api/dtmsvr/ping") == 0) {
        c->api = "ping";
        api_reply_json(c, 200, "{\"msg\":\"pong\"}");
        return;
    }
    /* Bearer tokens (Auth.*) before any route; /api/ping above and the static
     * admin UI files (no data) are the only open paths. */
    const char *why = NULL;
    auth_scope scope = auth_route_scope(path, evhttp_request_get_command(req) == EVHTTP_REQ_DELETE);
    if (auth_check(api.cfg, scope,
                   evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization"),
                   &why) != 0) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"dtmd\"");
        api_reply_error(c, 401, why);
        return;
    }
    const char *name = NULL;
    static const char *prefixes[] = {"/api/dtmsvr/", "/api/dtms/", "/api/"};
    for (size_t i = 0; i < 3 && !name; i++)
        if (strncmp(path, prefixes[i], strlen(prefixes[i])) == 0) name = path + strlen(prefixes[i]);
    if (!name) {
        api_reply_error(c, 404, "not found");
        return;
    }
    int mbit = method_bit(evhttp_request_get_command(req));
    if (strncmp(name, "topic/", 6) == 0 && name[6]) {
        if (evhttp_request_get_command(req) != EVHTTP_REQ_DELETE) {
            api_reply_error(c, 404, "not found: use DELETE on /topic/{name}");
            return;
        }
        c->api = "topic";
        char *topic = evhttp_uridecode(name + 6, 0, NULL);
        api_delete_topic(c, topic ? topic : "");
        free(topic);
        return;
    }
    const struct route *r = routes;
    while (r->name && strcmp(r->name, name) != 0) r++;
    if (!r->name) {
        api_reply_error(c, 404, "not found");
        return;
    }
    c->api = r->name;
    if (!(r->methods & mbit)) {
        /* gin (dtm) answers a wrong method with 404; keep it, but say why. */
        api_reply_error(c, 404,
                        r->methods & M_POST ? "not found: this endpoint takes POST"
                                            : "not found: this endpoint takes GET");
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len > api.cfg->max_body_bytes) {
        char msg[128];
        snprintf(msg, sizeof msg,
                 "request body is %zu bytes, the limit is %zu (Limits.MaxBodyBytes)", len,
                 api.cfg->max_body_bytes);
        api_reply_error(c, 400, msg);
        return;
    }
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    struct evkeyvalq query;
    query.tqh_first = NULL;
    query.tqh_last = &query.tqh_first;
    const char *qs = uri ? evhttp_uri_get_query(uri) : NULL;
    if (qs && evhttp_parse_query_str(qs, &query) != 0) {
        evhttp_clear_headers(&query);
        api_reply_error(c, 400, "malformed query string");
        return;
    }
    r->fn(c, &query, body, len);
    evhttp_clear_headers(&query);
}

int http_api_init(struct event_base *base, const dtmd_config *cfg) {
    api.cfg = cfg;
    api.http = evhttp_new(base);
    if (!api.http) return -1;
    /* Bodies up to 4x the limit are read so the client gets dtmd's clear 400;
     * anything larger is cut off by evhttp itself (413). */
    evhttp_set_max_body_size(api.http, (ev_ssize_t)(cfg->max_body_bytes * 4 + 65536));
    evhttp_set_allowed_methods(api.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE |
                                             EVHTTP_REQ_PUT | EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
    /* Limits.*: header bytes per request; a connection silent for
     * Limits.IdleTimeout (mid-request or between requests) is closed. */
    evhttp_set_max_headers_size(api.http, (ev_ssize_t)cfg->max_header_bytes);
    struct timeval idle = {
        (time_t)cfg->idle_timeout,
        (suseconds_t)((cfg->idle_timeout - (double)(time_t)cfg->idle_timeout) * 1e6)};
    evhttp_set_timeout_tv(api.http, &idle);
    branch_call_set_max_inflight(cfg->max_inflight_calls);
    evhttp_set_gencb(api.http, route_request, NULL);
    struct evhttp_bound_socket *bound =
        evhttp_bind_socket_with_handle(api.http, cfg->http_host, (ev_uint16_t)cfg->http_port);
    if (!bound) {
        log_error("http: cannot listen on %s:%d", cfg->http_host, cfg->http_port);
        evhttp_free(api.http);
        api.http = NULL;
        return -1;
    }
    api.max_conns = cfg->max_connections;
    api.nconns = 0;
    api.paused = 0;
    api.listener = evhttp_bound_socket_get_listener(bound);
    if (api.max_conns > 0) evhttp_set_bevcb(api.http, conn_bev_new, NULL);
    log_info("http: listening on %s:%d", cfg->http_host, cfg->http_port);
    return 0;
}

/* The listener goes with evhttp; connections freed afterwards (their
 * finalizers may run as late as event_base_free) must not touch it. */
void http_api_shutdown(void) {
    api.listener = NULL;
    if (api.http) evhttp_free(api.http);
    api.http = NULL;
}
