/* http_api.c - evhttp server and routing.
 *
 * Routes: /api/dtmsvr/<name>, with /api/dtms/<name> and the bare
 * /api/<name> accepted as aliases (older guides use them), plus /api/ping
 * and dtm's JSON-RPC entry point /api/json-rpc (api_jsonrpc.c). Every route
 * is described in docs/openapi.json, served at /api/openapi.json.
 * The request body is read whole (evhttp already buffered it) and checked
 * against Limits.MaxBodyBytes before any parsing. Client connections are
 * http_conn.c's, the reply envelope api_call.c's. */
#include "http_api.h"

#include "admin.h"
#include "api_handlers.h"
#include "auth.h"
#include "branch_call.h"
#include "http_conn.h"
#include "log.h"
#include "metrics.h"
#include "util.h"
#include "version.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/time.h>
#include <time.h>

static struct {
    struct evhttp *http;
    struct event_base *base;
    const dtmd_config *cfg;
} api;

/* Message framing a proxy in front could read differently from evhttp
 * (request smuggling): a header name with white space or control bytes
 * ("Transfer-Encoding : chunked" is not Transfer-Encoding to evhttp, which
 * then frames the body by Content-Length), several Content-Length headers
 * (evhttp uses the first) or one that is not plain digits. NULL when the
 * request is fine. */
static const char *bad_framing(struct evhttp_request *req) {
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    int ncl = 0;
    for (struct evkeyval *kv = h ? h->tqh_first : NULL; kv; kv = kv->next.tqe_next) {
        for (const unsigned char *p = (const unsigned char *)kv->key; *p; p++)
            if (*p <= ' ' || *p == 0x7f) return "malformed header name";
        if (strcasecmp(kv->key, "Content-Length") == 0) {
            ncl++;
            /* 1*DIGIT: strtoll would also take "+5" or " 5" */
            const char *v = kv->value;
            if (!*v || v[strspn(v, "0123456789")] != '\0') return "malformed Content-Length";
        }
    }
    if (ncl > 1) return "more than one Content-Length header";
    return NULL;
}

/* ---- simple endpoints ------------------------------------------------ */

/* Prometheus exposition text (not JSON), for scrapers. */
static void api_metrics(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)q, (void)body, (void)len;
    sbuf b;
    sb_init(&b);
    metrics_render(&b);
    api_reply_raw(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.ptr, b.len);
    sb_free(&b);
}

/* docs/openapi.json, compiled in by src/gen_openapi.sh. */
extern const char openapi_json[];
extern const size_t openapi_json_len;

static void api_openapi(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)q, (void)body, (void)len;
    api_reply_raw(c, 200, "application/json; charset=utf-8", openapi_json, openapi_json_len);
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
    http_conn_touch(req);
    const char *framing = bad_framing(req);
    if (framing) {
        /* the rest of the connection cannot be trusted to be framed right */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        api_reply_error(api_call_new(req, api.cfg), 400, framing);
        return;
    }
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

struct event_base *http_api_base(void) {
    return api.base;
}

int http_api_init(struct event_base *base, const dtmd_config *cfg) {
    api.cfg = cfg;
    api.base = base;
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
    http_conn_start(base, api.http, evhttp_bound_socket_get_listener(bound), cfg);
    log_info("http: listening on %s:%d", cfg->http_host, cfg->http_port);
    return 0;
}

void http_api_shutdown(void) {
    http_conn_stop();
    if (api.http) evhttp_free(api.http);
    api.http = NULL;
}
