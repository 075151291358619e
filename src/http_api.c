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
#include "http_reply.h"
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
#include <strings.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

static struct {
    struct evhttp *http;
    struct event_base *base;
    const dtmd_config *cfg;
    struct evconnlistener *listener; /* of the bound socket; NULL once shut down */
    int max_conns;                   /* Limits.MaxConnections; 0 = unlimited */
    int nconns;                      /* accepted client connections not yet freed */
    int paused;                      /* listener disabled because nconns hit max_conns */
    int close_idle;                  /* Limits.CloseIdleAtLimit */
    int nclosing;                    /* connections shut down for room, not yet freed */
    time_t last_warn;                /* rate limit of the "limit reached" warning */
    struct event *accept_retry;      /* re-enables the listener after EMFILE & co */
    int accept_backoff;              /* listener disabled until accept_retry fires */
    time_t accept_err_sec;           /* second of the last accept-error log line */
    long accept_errs;                /* accept errors since that line */
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
    /* with Limits.CloseIdleAtLimit: the connection, in accept order */
    struct conn_lock *prev, *next;
    struct bufferevent *bev;
    double last_active; /* accepted, or a request on it started or was answered */
    int closing;        /* shut down to make room; counted in api.nclosing */
} conn_lock;

static int tag_next_lock;      /* set while conn_bev_new creates the bufferevent */
static conn_lock *last_tagged; /* the lock allocated for it */
static conn_lock *conns, *conns_tail;

/* bufferevent -> its conn_lock: open addressing, linear probing. */
static conn_lock **bev_tab;
static size_t bev_cap, bev_n;

static size_t bev_home(const struct bufferevent *bev) {
    uintptr_t p = (uintptr_t)bev;
    return (size_t)((p >> 4) * 0x9E3779B97F4A7C15ULL) & (bev_cap - 1);
}

static size_t bev_find(const struct bufferevent *bev) {
    size_t i = bev_home(bev);
    while (bev_tab[i] && bev_tab[i]->bev != bev) i = (i + 1) & (bev_cap - 1);
    return i;
}

static void bev_insert(conn_lock *l) {
    if (2 * (bev_n + 1) > bev_cap) {
        conn_lock **old = bev_tab;
        size_t n = bev_cap;
        bev_cap = bev_cap ? bev_cap * 2 : 256;
        bev_tab = xcalloc(bev_cap, sizeof *bev_tab);
        for (size_t i = 0; i < n; i++)
            if (old[i]) bev_tab[bev_find(old[i]->bev)] = old[i];
        free(old);
    }
    bev_tab[bev_find(l->bev)] = l;
    bev_n++;
}

/* Backward-shift deletion keeps every probe chain unbroken. */
static void bev_remove(const struct bufferevent *bev) {
    if (!bev_cap) return;
    size_t i = bev_find(bev);
    if (!bev_tab[i]) return;
    bev_tab[i] = NULL;
    bev_n--;
    for (size_t j = (i + 1) & (bev_cap - 1); bev_tab[j]; j = (j + 1) & (bev_cap - 1)) {
        size_t k = bev_home(bev_tab[j]->bev);
        int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays) continue;
        bev_tab[i] = bev_tab[j];
        bev_tab[j] = NULL;
        i = j;
    }
    if (bev_n == 0) { /* the last connection: nothing left to free at exit */
        free(bev_tab);
        bev_tab = NULL;
        bev_cap = 0;
    }
}

static conn_lock *conn_of(struct evhttp_request *req) {
    struct evhttp_connection *evcon = req ? evhttp_request_get_connection(req) : NULL;
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    if (!bev || !bev_cap) return NULL;
    return bev_tab[bev_find(bev)];
}

/* A request started or was answered on req's connection. */
static void conn_touch(struct evhttp_request *req) {
    if (!api.close_idle) return;
    conn_lock *l = conn_of(req);
    if (l) l->last_active = metrics_now();
}

static void *lock_alloc(unsigned locktype) {
    (void)locktype;
    conn_lock *l = xcalloc(1, sizeof *l);
    l->is_conn = tag_next_lock;
    if (l->is_conn) last_tagged = l;
    tag_next_lock = 0;
    return l;
}

/* Connections shut down to make room (Limits.CloseIdleAtLimit) and not yet
 * closed, at most; each still holds its descriptor. */
#define CLOSING_MAX 16

static void conn_closed(void) {
    api.nconns--;
    if (api.paused &&
        (api.nconns < api.max_conns || (api.close_idle && api.nclosing < CLOSING_MAX))) {
        api.paused = 0;
        if (api.listener && !api.accept_backoff) evconnlistener_enable(api.listener);
    }
}

/* ---- descriptor exhaustion --------------------------------------------- */

/* Descriptors dtmd needs besides client connections and branch calls: Redis
 * connections, the listener, log files, the event loop's own, curl's. */
#define FD_RESERVE 64

void http_api_fit_fd_limit(dtmd_config *cfg) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    /* without a connection limit: as many as allowed (within reason) */
    rlim_t need = cfg->max_connections > 0
                      ? (rlim_t)cfg->max_connections + (rlim_t)cfg->max_inflight_calls + FD_RESERVE
                      : (rlim_t)1 << 20;
    if (rl.rlim_cur < need && rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            log_info("http: file descriptor limit raised from %llu to %llu",
                     (unsigned long long)was, (unsigned long long)rl.rlim_cur);
        else
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (cfg->max_connections == 0 || rl.rlim_cur >= need) return;
    /* A connection limit the descriptors cannot honour ends in accept()
     * failing with EMFILE instead of clients waiting in the backlog. */
    rlim_t reserve = (rlim_t)cfg->max_inflight_calls + FD_RESERVE;
    int fit = rl.rlim_cur > reserve + 16 ? (int)(rl.rlim_cur - reserve) : (int)(rl.rlim_cur / 4);
    if (fit < 1) fit = 1;
    log_warn("http: Limits.MaxConnections %d and Limits.MaxInflightCalls %d do not fit in %llu "
             "file descriptors (ulimit -n); MaxConnections lowered to %d",
             cfg->max_connections, cfg->max_inflight_calls, (unsigned long long)rl.rlim_cur, fit);
    cfg->max_connections = fit;
}

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    api.accept_backoff = 0;
    if (api.listener && !api.paused) evconnlistener_enable(api.listener);
}

/* accept() failed (not EAGAIN/EINTR, which libevent retries itself). With
 * no descriptor left (EMFILE, ENFILE) or no memory, the pending connection
 * stays in the backlog and the listener would fire again at once: pause it
 * for a moment instead of spinning, and log once a second with a count. */
static void accept_error_cb(struct evconnlistener *l, void *arg) {
    (void)arg;
    int err = EVUTIL_SOCKET_ERROR();
    api.accept_errs++;
    time_t now = time(NULL);
    if (now != api.accept_err_sec) {
        log_warn("http: accept failed: %s (%ld time(s) since the last such line); pausing new "
                 "connections for 100 ms",
                 evutil_socket_error_to_string(err), api.accept_errs);
        api.accept_err_sec = now;
        api.accept_errs = 0;
    }
    if (!api.accept_retry) return;
    evconnlistener_disable(l);
    api.accept_backoff = 1;
    struct timeval tv = {0, 100000};
    evtimer_add(api.accept_retry, &tv);
}

static void lock_free(void *lock, unsigned locktype) {
    (void)locktype;
    conn_lock *l = lock;
    if (l->bev) { /* tracked for CloseIdleAtLimit */
        bev_remove(l->bev);
        if (l->prev)
            l->prev->next = l->next;
        else
            conns = l->next;
        if (l->next)
            l->next->prev = l->prev;
        else
            conns_tail = l->prev;
        if (l->closing) api.nclosing--;
    }
    if (l->is_conn) conn_closed();
    free(l);
}

/* Make room for a new client: shut down the connection idle the longest -
 * waiting for a request, nothing being answered or still being written -
 * other than keep. evhttp sees the end of the stream and frees it as if the
 * client had closed (its lock's release counts it out). 1 if one was found
 * (and, unless dry, shut down). */
static int close_longest_idle(const conn_lock *keep, int dry) {
    conn_lock *best = NULL;
    for (conn_lock *l = conns; l; l = l->next) {
        if (l == keep || l->closing) continue;
        /* evhttp turns reading off while a request waits for its answer */
        if (!(bufferevent_get_enabled(l->bev) & EV_READ)) continue;
        if (evbuffer_get_length(bufferevent_get_output(l->bev)) > 0) continue;
        if (bufferevent_getfd(l->bev) < 0) continue;
        if (!best || l->last_active < best->last_active) best = l;
    }
    if (!best) return 0;
    if (dry) return 1;
    shutdown(bufferevent_getfd(best->bev), SHUT_RDWR);
    best->closing = 1;
    api.nclosing++;
    log_debug("http: connection limit reached, closed the connection idle for %.1f s",
              metrics_now() - best->last_active);
    return 1;
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
    last_tagged = NULL;
    struct bufferevent *bev =
        bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_THREADSAFE);
    int counted = !tag_next_lock; /* its lock was allocated, and tagged */
    tag_next_lock = 0;
    if (!bev) return NULL; /* evhttp makes its own (uncounted) one */
    if (!counted) return bev;
    conn_lock *l = last_tagged;
    last_tagged = NULL;
    ++api.nconns;
    if (api.close_idle && l) {
        l->bev = bev;
        l->last_active = metrics_now();
        l->prev = conns_tail;
        if (conns_tail)
            conns_tail->next = l;
        else
            conns = l;
        conns_tail = l;
        bev_insert(l);
        /* over the limit: make room now; at it: stay open while room can be made */
        int live = api.nconns - api.nclosing;
        if ((live > api.max_conns && close_longest_idle(l, 0)) ||
            (live == api.max_conns && close_longest_idle(l, 1))) {
            /* A shut-down connection keeps its descriptor until the loop sees
             * it close: stop accepting while many are on their way out, or a
             * burst of accepts runs out of descriptors (EMFILE). */
            if (api.nclosing >= CLOSING_MAX && !api.paused && api.listener) {
                evconnlistener_disable(api.listener);
                api.paused = 1;
            }
            return bev;
        }
    }
    if (api.nconns - api.nclosing >= api.max_conns && !api.paused && api.listener) {
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

/* Send the answer (if the client is still there), record it, free c. */
static void reply_raw(api_call *c, int code, const char *content_type, const char *data,
                      size_t len) {
    if (c->api) record_metrics(c, code);
    if (c->req) conn_touch(c->req);
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
    conn_touch(req);
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
    api.max_conns = cfg->max_connections;
    api.close_idle = cfg->close_idle_at_limit && cfg->max_connections > 0;
    api.nclosing = 0;
    api.nconns = 0;
    api.paused = 0;
    api.listener = evhttp_bound_socket_get_listener(bound);
    api.accept_backoff = 0;
    api.accept_retry = evtimer_new(base, accept_retry_cb, NULL);
    evconnlistener_set_error_cb(api.listener, accept_error_cb);
    if (api.max_conns > 0) evhttp_set_bevcb(api.http, conn_bev_new, NULL);
    log_info("http: listening on %s:%d", cfg->http_host, cfg->http_port);
    return 0;
}

/* The listener goes with evhttp; connections freed afterwards (their
 * finalizers may run as late as event_base_free) must not touch it. */
void http_api_shutdown(void) {
    api.listener = NULL;
    if (api.accept_retry) event_free(api.accept_retry);
    api.accept_retry = NULL;
    if (api.http) evhttp_free(api.http);
    api.http = NULL;
}
