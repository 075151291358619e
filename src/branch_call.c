/* branch_call.c - outgoing HTTP calls to branch URLs (see branch_call.h).
 *
 * Why this shape: dtmd is one thread around one libevent event_base, so a
 * branch call must never block. libcurl's multi interface does the HTTP work,
 * driven by the event loop (branch_loop.c); what a call sends and how its
 * answer is classified is branch_request.c's. This file is the calls' life:
 * starting, the Limits.MaxInflightCalls queue, completion and cancellation,
 * and the things kept between calls (easy handles, parsed origins). One
 * multi handle lives for the whole process so its connection cache keeps
 * keep-alive connections to business services between calls.
 *
 * Ownership: a branch_call copies everything it needs (URL, body, headers) at
 * start, so the caller's request may go away. It sits on a doubly linked list
 * of pending calls until it completes (callback, then freed) or is cancelled
 * (freed, no callback); shutdown cancels whatever is left.
 *
 * Re-entrancy: a callback may start new calls, cancel other calls or even
 * shut the module down. Completed transfers are therefore handled one at a
 * time: the call is detached from the multi handle and the pending list
 * before its callback runs, and curl_multi_info_read is asked afresh after
 * every callback (curl_multi_remove_handle drops a cancelled handle's queued
 * message, so a stale message is never seen). */
#include "branch_call.h"

#include "branch_loop.h"

#include "jsonrpc.h"
#include "log.h"
#include "util.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Larger responses are truncated silently: dtm only looks for substrings in
 * the body and an error message does not need more. */
#define BRANCH_MAX_RESPONSE (1u << 20)
#define BRANCH_MAX_CONNECTS 256
/* curl's receive buffer per running call (its default is 16 kB), held from
 * connect to the answer. Branch answers (status line, headers, a short
 * JSON body) are a few hundred bytes, so curl's smallest, 1 kB, reads them
 * in one go; a longer answer takes a few more reads. With
 * Limits.MaxInflightCalls = 1024 hanging calls the default cost 16 MB
 * (bench/soak.sh), this costs 1 MB (docs/footprint.md). */
#define BRANCH_RECV_BUFFER 1024L
/* A keep-alive connection idle for longer than this many whole seconds
 * (curl's granularity: idle 2 s or more) is closed instead of reused.
 * Services close idle connections after a timeout of their own (gunicorn
 * 2 s, Node and Apache 5 s); a request sent just as that happens is lost
 * with the connection, and since curl does not re-send it (prereq_cb)
 * that costs a retry after RetryInterval. Busy connections never idle this
 * long, so reuse under load is unchanged. */
#define BRANCH_MAX_IDLE_S 1L
/* The error of a call whose reused connection closed without an answer
 * (prereq_cb). */
#define BRANCH_NO_ANSWER "connection closed without an answer"

enum call_state { CALL_PENDING, CALL_COMPLETING };

struct branch_call {
    struct branch_call *prev, *next; /* pending list */
    struct branch_call *qnext;       /* waiting queue (Limits.MaxInflightCalls) */
    int queued;                      /* not yet added to the multi handle */
    double timeout_s;
    enum call_state state;
    CURL *easy; /* NULL while queued: a waiting call holds no curl handle */
    struct curl_slist *headers;
    char *url;
    char *body; /* our copy of the POST payload (NULL for GET) */
    size_t body_len;
    sbuf resp;
    char *errbuf;               /* CURL_ERROR_SIZE bytes, only while running (as easy) */
    CURLU *cu;                  /* url parsed for curl, only while running (easy_setup says why) */
    struct origin *origin;      /* cu is this cached origin's (origin_get), or NULL: cu is ours */
    int shared_headers;         /* headers is g_default_headers, not ours to free */
    int sends;                  /* requests curl set out to send for this call (prereq_cb) */
    int (*may_send)(void *arg); /* branch_request.may_send */
    int jsonrpc;                /* branch_request.jsonrpc */
    branch_call_cb *cb;
    void *arg;
    int64_t start_ms;
};

static CURLM *g_multi;
static struct branch_call *g_calls; /* head of the pending list */
static int g_pending;
static int g_completing;          /* callbacks running (shutdown may come from one) */
static int g_global_cleanup_owed; /* shutdown ran inside a callback */
/* Limits.MaxInflightCalls: calls beyond it wait here, oldest first. */
static int g_max_inflight;
static int g_running; /* calls added to the multi handle */
static struct branch_call *g_qhead, *g_qtail;
static int g_queued;
static struct event *g_pump; /* starts queued calls from the loop */

/* Finished easy handles, kept for the next call: creating one per call
 * costs several allocations of curl's buffers on the hot path. A pooled
 * handle is not curl_easy_reset, which redoes every default per call: the
 * options every call shares are set once when the handle is made (easy_new),
 * easy_setup sets all the others on every call, and easy_put clears the
 * pointers into the finished call. */
#define EASY_POOL_MAX 256
static CURL *g_easy_pool[EASY_POOL_MAX];
static int g_easy_pooled;

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata);
static int prereq_cb(void *clientp, char *conn_primary_ip, char *conn_local_ip,
                     int conn_primary_port, int conn_local_port);

/* No proxy variable in dtmd's environment (read at branch_call_init; a
 * process's environment does not change from outside): then every handle
 * says "no proxy" itself, and curl skips the five getenv calls with which
 * it looks for one on every transfer. With one set, curl reads them as
 * usual. */
static int g_no_proxy_env;

static int proxy_env_absent(void) {
    static const char *const vars[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                       "all_proxy",  "ALL_PROXY",  "no_proxy",    "NO_PROXY"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return 0;
    return 1;
}

static CURL *easy_new(void) {
    CURL *e = curl_easy_init();
    if (!e) return NULL;
    if (g_no_proxy_env) {
        curl_easy_setopt(e, CURLOPT_PROXY, "");
        curl_easy_setopt(e, CURLOPT_NOPROXY, "");
    }
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, BRANCH_RECV_BUFFER);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, branch_loop_opensocket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, branch_loop_closesocket);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, prereq_cb);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, BRANCH_MAX_IDLE_S);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    return e;
}

static CURL *easy_get(void) {
    return g_easy_pooled > 0 ? g_easy_pool[--g_easy_pooled] : easy_new();
}

static void easy_put(CURL *e) {
    if (g_multi && g_easy_pooled < EASY_POOL_MAX) {
        /* Nothing of the finished call may be reachable from the pool. */
        curl_easy_setopt(e, CURLOPT_PRIVATE, NULL);
        curl_easy_setopt(e, CURLOPT_PREREQDATA, NULL);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, NULL);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(e, CURLOPT_CURLU, NULL);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
        g_easy_pool[g_easy_pooled++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}

/* Parsed origins (scheme://host:port as written) for CURLOPT_CURLU, shared
 * by the calls to them. curl only reads the CURLU it is given: it works on
 * its own copy (curl_url_dup at connect), so one parse serves every call to
 * an origin instead of a parse per call on the hot path. Services are few;
 * at most ORIGINS_MAX are kept, the least recently used one replaced, never
 * one a running call uses (refs): with every entry in use, a call parses its
 * own. */
#define ORIGINS_MAX 64
struct origin {
    char *text;
    size_t len;
    CURLU *cu;
    int refs;          /* running calls using cu */
    uint64_t last_use; /* g_origin_clock at the last origin_get */
};
static struct origin g_origins[ORIGINS_MAX];
static int g_norigins;
static uint64_t g_origin_clock;

static CURLU *parse_url(char *url, size_t len);

static void origin_clear(struct origin *o) {
    curl_url_cleanup(o->cu);
    free(o->text);
    o->cu = NULL;
    o->text = NULL;
    o->len = 0;
}

/* The parsed origin url[0..len) for call c, cached; NULL if curl cannot
 * parse it. c->origin says whether c borrows it (origin_put) or owns it. */
static CURLU *origin_get(struct branch_call *c, char *url, size_t len) {
    struct origin *lru = NULL;
    for (int i = 0; i < g_norigins; i++) {
        struct origin *o = &g_origins[i];
        if (o->len == len && memcmp(o->text, url, len) == 0) {
            o->refs++;
            o->last_use = ++g_origin_clock;
            c->origin = o;
            return o->cu;
        }
        if (o->refs == 0 && (!lru || o->last_use < lru->last_use)) lru = o;
    }
    CURLU *cu = parse_url(url, len);
    if (!cu) return NULL;
    struct origin *o = g_norigins < ORIGINS_MAX ? &g_origins[g_norigins++] : lru;
    if (!o) return cu; /* every entry in use: c's own */
    if (o->cu) origin_clear(o);
    o->text = xstrndup(url, len);
    o->len = len;
    o->cu = cu;
    o->refs = 1;
    o->last_use = ++g_origin_clock;
    c->origin = o;
    return cu;
}

/* c is done with its url: give a cached origin back, free its own. After
 * shutdown (no multi handle) an origin goes with its last call. */
static void origin_put(struct branch_call *c) {
    if (c->origin) {
        if (--c->origin->refs == 0 && !g_multi) origin_clear(c->origin);
    } else if (c->cu) {
        curl_url_cleanup(c->cu);
    }
    c->origin = NULL;
    c->cu = NULL;
}

/* ---- completed transfers ---------------------------------------------- */

static void finish_call(struct branch_call *c, CURLcode res);

/* Drain curl's completion queue. One message at a time, re-reading the queue
 * after every callback because the callback may cancel other calls (which
 * removes their messages) or shut the module down. */
static void check_multi_info(void) {
    CURLMsg *msg;
    int left;
    while (g_multi && (msg = curl_multi_info_read(g_multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURL *easy = msg->easy_handle;
        CURLcode res = msg->data.result;
        char *priv = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        if (!priv) continue;
        finish_call((struct branch_call *)(void *)priv, res);
    }
}

/* CURLOPT_WRITEFUNCTION: collect the body up to the cap, drop the rest
 * (returning less than offered would abort the transfer). */
static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userp) {
    struct branch_call *c = userp;
    size_t n = size * nmemb;
    size_t room = c->resp.len < BRANCH_MAX_RESPONSE ? BRANCH_MAX_RESPONSE - c->resp.len : 0;
    sb_append(&c->resp, ptr, n < room ? n : room);
    return n;
}

/* CURLOPT_PREREQFUNCTION: curl is about to send c's request on a
 * connection. A second time means curl would re-send it on a fresh
 * connection because a reused one died without an answer: the branch may
 * have read and run the first copy, so the call fails instead, and the
 * engine's back-off is the only retry. */
static int prereq_cb(void *clientp, char *conn_primary_ip, char *conn_local_ip,
                     int conn_primary_port, int conn_local_port) {
    (void)conn_primary_ip, (void)conn_local_ip, (void)conn_primary_port, (void)conn_local_port;
    struct branch_call *c = clientp;
    if (!c) return CURL_PREREQFUNC_OK;
    if (c->sends++ > 0) return CURL_PREREQFUNC_ABORT;
    /* The caller's last word (engine.c: is the transaction still ours?). */
    return c->may_send && !c->may_send(c->arg) ? CURL_PREREQFUNC_ABORT : CURL_PREREQFUNC_OK;
}

/* ---- call lifecycle --------------------------------------------------- */

static void queue_remove(struct branch_call *c) {
    struct branch_call **pp = &g_qhead, *prev = NULL;
    while (*pp && *pp != c) {
        prev = *pp;
        pp = &(*pp)->qnext;
    }
    if (!*pp) return;
    *pp = c->qnext;
    if (g_qtail == c) g_qtail = prev;
    c->qnext = NULL;
    g_queued--;
}

static void call_unlink(struct branch_call *c) {
    if (c->queued)
        queue_remove(c);
    else
        g_running--;
    if (c->prev)
        c->prev->next = c->next;
    else
        g_calls = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    g_pending--;
}

static void call_free(struct branch_call *c) {
    /* A handle whose re-send prereq_cb stopped is not pooled: curl counts
     * those retries per handle, not per transfer (only curl_easy_reset
     * clears the count), and after five it fails with a misleading text. */
    if (c->easy && c->sends > 1)
        curl_easy_cleanup(c->easy);
    else if (c->easy)
        easy_put(c->easy);
    origin_put(c);
    free(c->errbuf);
    if (!c->shared_headers) curl_slist_free_all(c->headers);
    free(c->url);
    free(c->body);
    sb_free(&c->resp);
    free(c);
}

/* Detach a completed call, run its callback, free it. */
static void finish_call(struct branch_call *c, CURLcode res) {
    curl_multi_remove_handle(g_multi, c->easy);
    call_unlink(c);
    c->state = CALL_COMPLETING;
    long status = 0;
    const char *body;
    size_t body_len;
    if (res == CURLE_OK) {
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
        body = c->resp.ptr ? c->resp.ptr : "";
        body_len = c->resp.len;
    } else if (c->sends > 1) {
        body = BRANCH_NO_ANSWER; /* rather than curl's "aborted by pre-request callback" */
        body_len = strlen(body);
    } else {
        body = c->errbuf && c->errbuf[0] ? c->errbuf : curl_easy_strerror(res);
        body_len = strlen(body);
    }
    branch_outcome o = branch_classify(status, body, body_len);
    if (o == BR_SUCCESS && c->jsonrpc) o = jsonrpc_classify(body, body_len);
    log_debug("branch call %p done: %s status %ld in %lld ms: %.*s", (void *)c,
              branch_outcome_name(o), status, (long long)(now_ms() - c->start_ms),
              (int)(body_len > 200 ? 200 : body_len), body);
    g_completing++;
    c->cb(c->arg, o, status, body, body_len);
    g_completing--;
    call_free(c);
    if (g_qhead && g_pump) event_active(g_pump, 0, 0);
    if (g_global_cleanup_owed && !g_completing) {
        /* only now is the last easy handle gone */
        g_global_cleanup_owed = 0;
        curl_global_cleanup();
    }
}

/* The headers of a call without branch_headers (nearly all of them): built
 * once and shared, instead of a list of 2 copied strings per call. */
static struct curl_slist *g_default_headers;

/* The parsed URL for curl (CURLOPT_CURLU), from url[0..len); NULL if curl
 * cannot parse it. */
static CURLU *parse_url(char *url, size_t len) {
    CURLU *cu = curl_url();
    char keep = url[len];
    url[len] = '\0'; /* curl copies what it keeps */
    if (cu && curl_url_set(cu, CURLUPART_URL, url, 0) != CURLUE_OK) {
        curl_url_cleanup(cu);
        cu = NULL;
    }
    url[len] = keep;
    return cu;
}

/* Give c a curl handle set up for its request. Only when it starts running:
 * a curl handle is several kilobytes, and with Limits.MaxInflightCalls
 * thousands of calls may wait (bench/soak.sh: 10,000 transactions in flight
 * took 96 MB of private memory with a handle per waiting call). */
static int easy_setup(struct branch_call *c) {
    CURL *e = c->easy = easy_get();
    if (!e) return -1;
    c->errbuf = xcalloc(1, CURL_ERROR_SIZE);
    curl_easy_setopt(e, CURLOPT_URL, c->url);
    /* Given only CURLOPT_URL, curl parses the URL and then rebuilds it with
     * its own aprintf to normalise it; handed the parsed URL as well, it
     * skips the rebuild. A URL curl cannot parse is left to CURLOPT_URL, so
     * that curl reports the error itself.
     *
     * Without a proxy, curl is given only the origin to parse and the
     * request target (path and query) as it is, with CURLOPT_REQUEST_TARGET:
     * otherwise libcurl prints the path and the long dtm query through its
     * own printf, a function call per byte, twice (the request line, and a
     * copy for authentication it builds whether or not there is any), and
     * parses the query first. The path goes out as written, as dtm's Go
     * client sends it; curl would have removed "." and ".." segments.
     * Through a proxy the target must be the whole URL, so curl builds it. */
    size_t at, len;
    int split = g_no_proxy_env && branch_url_target(c->url, &at, &len);
    c->cu = split ? origin_get(c, c->url, at) : parse_url(c->url, strlen(c->url));
    if (split && c->cu) {
        char *end = c->url + at + len, keep = *end;
        *end = '\0'; /* curl copies it */
        curl_easy_setopt(e, CURLOPT_REQUEST_TARGET, c->url + at);
        *end = keep;
    } else {
        curl_easy_setopt(e, CURLOPT_REQUEST_TARGET, NULL);
        if (split) c->cu = parse_url(c->url, strlen(c->url)); /* curl reports what it refuses */
    }
    curl_easy_setopt(e, CURLOPT_CURLU, c->cu); /* NULL: CURLOPT_URL alone */
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)c);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, c);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
    long ms = 0; /* no limit */
    if (c->timeout_s > 0) {
        /* round up so a tiny positive timeout does not become "no limit" */
        ms = (long)(c->timeout_s * 1000.0 + 0.999);
        if (ms <= 0) ms = 1;
    }
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms);
    if (c->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    return 0;
}

/* Add a call to the multi handle (it starts running). -1 if curl refused. */
static int call_activate(struct branch_call *c) {
    c->queued = 0;
    g_running++;
    c->start_ms = now_ms();
    if (easy_setup(c) != 0 || curl_multi_add_handle(g_multi, c->easy) != CURLM_OK) return -1;
    log_debug("branch call %p start: %s %s (timeout %.3fs)", (void *)c, c->body ? "POST" : "GET",
              c->url, c->timeout_s);
    return 0;
}

/* Start queued calls while there is room (runs from the event loop). A call
 * curl refuses completes as a transport error, so its pass retries it. */
static void pump_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    while (g_multi && g_qhead && (g_max_inflight < 1 || g_running < g_max_inflight)) {
        struct branch_call *c = g_qhead;
        g_qhead = c->qnext;
        if (!g_qhead) g_qtail = NULL;
        c->qnext = NULL;
        g_queued--;
        if (call_activate(c) != 0) {
            log_warn("branch call: could not start a call to %s", c->url);
            call_unlink(c);
            c->state = CALL_COMPLETING;
            const char *msg = "dtmd could not start the call";
            g_completing++;
            c->cb(c->arg, BR_ERROR, 0, msg, strlen(msg));
            g_completing--;
            call_free(c);
        }
    }
}

void branch_call_set_max_inflight(int n) {
    g_max_inflight = n;
    if (g_qhead && g_pump) event_active(g_pump, 0, 0);
}

int branch_call_queued(void) {
    return g_queued;
}

int branch_call_init(struct event_base *base) {
    if (g_multi) return 0;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return -1;
    g_no_proxy_env = proxy_env_absent();
    g_multi = curl_multi_init();
    g_pump = event_new(base, -1, 0, pump_cb, NULL);
    if (!g_multi || !g_pump || branch_loop_init(base, g_multi, check_multi_info) != 0) {
        if (g_multi) curl_multi_cleanup(g_multi);
        if (g_pump) event_free(g_pump);
        g_pump = NULL;
        g_multi = NULL;
        curl_global_cleanup();
        return -1;
    }
    curl_multi_setopt(g_multi, CURLMOPT_MAXCONNECTS, (long)BRANCH_MAX_CONNECTS);
    const branch_request plain = {.nheaders = 0};
    g_default_headers = branch_build_headers(&plain); /* NULL: each call builds its own */
    return 0;
}

/* Cancels everything, then tears down the multi handle (closing cached
 * connections) and any socket events curl did not ask us to remove. */
void branch_call_shutdown(void) {
    if (!g_multi) return;
    while (g_calls) branch_call_cancel(g_calls);
    while (g_easy_pooled > 0) curl_easy_cleanup(g_easy_pool[--g_easy_pooled]);
    curl_multi_cleanup(g_multi);
    /* a call whose callback is running keeps it but does not free it */
    curl_slist_free_all(g_default_headers);
    g_default_headers = NULL;
    g_multi = NULL;
    int origins_in_use = 0; /* one in use goes with its call (origin_put) */
    for (int i = 0; i < g_norigins; i++) {
        if (g_origins[i].refs == 0)
            origin_clear(&g_origins[i]);
        else
            origins_in_use = 1;
    }
    if (!origins_in_use) g_norigins = 0;
    branch_loop_shutdown();
    event_free(g_pump);
    g_pump = NULL;
    if (g_completing)
        g_global_cleanup_owed = 1;
    else
        curl_global_cleanup();
}

int branch_call_pending(void) {
    return g_pending;
}

branch_call *branch_call_start(const branch_request *req, branch_call_cb *cb, void *arg) {
    if (!g_multi || !req || !req->url || !cb) return NULL;
    struct branch_call *c = xcalloc(1, sizeof *c);
    sb_init(&c->resp);
    c->cb = cb;
    c->arg = arg;
    c->url = branch_build_url(req->url, req->gid, req->trans_type, req->branch_id, req->op);
    if (req->nheaders <= 0 && g_default_headers) {
        c->headers = g_default_headers;
        c->shared_headers = 1;
    } else {
        c->headers = branch_build_headers(req);
    }
    if (!c->headers) goto fail;
    size_t body_len = req->body ? req->body_len : 0;
    if (body_len > 0 || req->force_post) {
        c->body = xmalloc(body_len + 1);
        if (body_len) memcpy(c->body, req->body, body_len);
        c->body[body_len] = '\0';
        c->body_len = body_len;
    }
    c->timeout_s = req->timeout_s;
    c->jsonrpc = req->jsonrpc;
    c->may_send = req->may_send;
    c->state = CALL_PENDING;
    c->next = g_calls;
    if (g_calls) g_calls->prev = c;
    g_calls = c;
    g_pending++;
    if (g_max_inflight > 0 && (g_running >= g_max_inflight || g_qhead)) {
        /* Limits.MaxInflightCalls reached: wait in line, in order. */
        c->queued = 1;
        if (g_qtail)
            g_qtail->qnext = c;
        else
            g_qhead = c;
        g_qtail = c;
        g_queued++;
        log_debug("branch call %p queued (%d in flight, %d waiting): %s", (void *)c, g_running,
                  g_queued, c->url);
        return c;
    }
    if (call_activate(c) != 0) {
        call_unlink(c);
        goto fail;
    }
    return c;

fail:
    log_warn("branch call: could not start a call to %s", c->url ? c->url : req->url);
    call_free(c);
    return NULL;
}

/* Removing the easy handle from the multi also drops any completion message
 * curl queued for it, so a cancelled call's callback can never run. A call
 * whose callback is running is already detached: cancelling it is a no-op. */
void branch_call_cancel(branch_call *call) {
    if (!call || call->state != CALL_PENDING) return;
    log_debug("branch call %p cancelled", (void *)call);
    int was_running = !call->queued;
    if (was_running) curl_multi_remove_handle(g_multi, call->easy);
    call_unlink(call);
    call_free(call);
    if (was_running && g_qhead && g_pump) event_active(g_pump, 0, 0);
}
