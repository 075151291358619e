/* test_branch_call.c - tests for branch_call: the pure helpers (dtm's
 * response classification and query-string building) and the asynchronous
 * machinery against a real HTTP server.
 *
 * Why a real server: the libcurl <-> libevent glue only shows its bugs with
 * real sockets (readiness, timeouts, connection reuse, re-entrant callbacks).
 * The server is libevent's evhttp on 127.0.0.1, port 0, running in the same
 * event_base as the calls, so the whole test stays single-threaded. Every
 * network test arms a 10 s safety timer that fails the test and stops the
 * loop if callbacks never arrive. */
#include "unit.h"

#include "branch_call.h"
#include "util.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ---- pure helpers ----------------------------------------------------- */

void test_branch_classify(void) {
    /* transport error always wins */
    CHECK_INT(branch_classify(0, NULL, 0), BR_ERROR);
    CHECK_INT(branch_classify(0, "ONGOING", 7), BR_ERROR);
    /* 200, any body */
    CHECK_INT(branch_classify(200, "", 0), BR_SUCCESS);
    CHECK_INT(branch_classify(200, NULL, 0), BR_SUCCESS);
    CHECK_INT(branch_classify(200, "null", 4), BR_SUCCESS);
    CHECK_INT(branch_classify(200, "{}", 2), BR_SUCCESS);
    CHECK_INT(branch_classify(200, "{\"dtm_result\":\"SUCCESS\"}", 24), BR_SUCCESS);
    /* substring checks apply at any status */
    CHECK_INT(branch_classify(200, "{\"dtm_result\":\"FAILURE\"}", 24), BR_FAILURE);
    CHECK_INT(branch_classify(200, "{\"dtm_result\":\"ONGOING\"}", 24), BR_ONGOING);
    CHECK_INT(branch_classify(500, "FAILURE", 7), BR_FAILURE);
    CHECK_INT(branch_classify(500, "xx ONGOING xx", 13), BR_ONGOING);
    /* ONGOING is tested before FAILURE */
    CHECK_INT(branch_classify(409, "ONGOING", 7), BR_ONGOING);
    CHECK_INT(branch_classify(200, "FAILURE ONGOING", 15), BR_ONGOING);
    CHECK_INT(branch_classify(425, "FAILURE", 7), BR_ONGOING);
    /* status codes */
    CHECK_INT(branch_classify(425, "", 0), BR_ONGOING);
    CHECK_INT(branch_classify(409, "", 0), BR_FAILURE);
    CHECK_INT(branch_classify(409, "conflict", 8), BR_FAILURE);
    CHECK_INT(branch_classify(500, "boom", 4), BR_ERROR);
    CHECK_INT(branch_classify(201, "", 0), BR_ERROR);
    CHECK_INT(branch_classify(204, "", 0), BR_ERROR);
    CHECK_INT(branch_classify(404, "not found", 9), BR_ERROR);
    CHECK_INT(branch_classify(302, "", 0), BR_ERROR);
    /* the body is length-bounded, not NUL-terminated */
    CHECK_INT(branch_classify(200, "FAILURExx", 6), BR_SUCCESS);
    CHECK_INT(branch_classify(200, "ONGOING", 6), BR_SUCCESS);
    const char nul_inside[] = "ab\0FAILURE";
    CHECK_INT(branch_classify(200, nul_inside, sizeof nul_inside - 1), BR_FAILURE);
    /* case matters, as in dtm's strings.Contains */
    CHECK_INT(branch_classify(200, "failure", 7), BR_SUCCESS);
}

void test_branch_outcome_name(void) {
    CHECK_STR(branch_outcome_name(BR_SUCCESS), "SUCCESS");
    CHECK_STR(branch_outcome_name(BR_FAILURE), "FAILURE");
    CHECK_STR(branch_outcome_name(BR_ONGOING), "ONGOING");
    CHECK_STR(branch_outcome_name(BR_ERROR), "ERROR");
}

static void check_url(const char *url, const char *gid, const char *tt, const char *bid,
                      const char *op, const char *want) {
    char *got = branch_build_url(url, gid, tt, bid, op);
    CHECK_STR(got, want);
    free(got);
}

void test_branch_build_url(void) {
    check_url("http://svc/api/busi/TransOut", "g1", "saga", "01", "action",
              "http://svc/api/busi/TransOut?branch_id=01&gid=g1&op=action&trans_type=saga");
    /* existing query string: appended after '&' */
    check_url("http://svc/api/busi/TransOut?a=1", "g1", "saga", "01", "action",
              "http://svc/api/busi/TransOut?a=1&branch_id=01&gid=g1&op=action&trans_type=saga");
    check_url("http://svc/x?", "g1", "msg", "00", "msg",
              "http://svc/x?branch_id=00&gid=g1&op=msg&trans_type=msg");
    check_url("http://svc/x?a=1&", "g1", "msg", "00", "msg",
              "http://svc/x?a=1&branch_id=00&gid=g1&op=msg&trans_type=msg");
    /* QueryEscape: space -> '+', reserved and non-ASCII bytes -> %XX */
    check_url("http://svc/x", "g 1&b=/c?d", "saga", "01", "action",
              "http://svc/x?branch_id=01&gid=g+1%26b%3D%2Fc%3Fd&op=action&trans_type=saga");
    check_url("http://svc/x", "\xc3\xa9\xe4\xb8\xad", "tcc", "01", "try",
              "http://svc/x?branch_id=01&gid=%C3%A9%E4%B8%AD&op=try&trans_type=tcc");
    check_url("http://svc/x", "a-b_c.d~e+f%g", "tcc", "01", "try",
              "http://svc/x?branch_id=01&gid=a-b_c.d~e%2Bf%25g&op=try&trans_type=tcc");
    check_url("http://svc/x", "", "saga", "01", "action",
              "http://svc/x?branch_id=01&gid=&op=action&trans_type=saga");
    /* NULL values are omitted */
    check_url("http://svc/x", "g1", NULL, NULL, "action", "http://svc/x?gid=g1&op=action");
    check_url("http://svc/x", NULL, NULL, NULL, "cb", "http://svc/x?op=cb");
    check_url("http://svc/x", NULL, NULL, NULL, NULL, "http://svc/x");
    check_url("http://svc/x?a=1", NULL, NULL, NULL, NULL, "http://svc/x?a=1");
    /* a fragment stays after the query ('?' inside it does not count) */
    check_url("http://svc/x#f?g", "g1", NULL, NULL, NULL, "http://svc/x?gid=g1#f?g");
}

static void check_target(const char *url, const char *origin, const char *target) {
    size_t at = 99, len = 99;
    int ok = branch_url_target(url, &at, &len);
    if (!origin) {
        CHECK_INT(ok, 0);
        return;
    }
    CHECK_INT(ok, 1);
    char *o = xstrndup(url, at), *t = xstrndup(url + at, len);
    CHECK_STR(o, origin);
    CHECK_STR(t, target);
    free(o);
    free(t);
}

void test_branch_url_target(void) {
    check_target("http://svc/api/x?branch_id=01&gid=g", "http://svc", "/api/x?branch_id=01&gid=g");
    check_target("https://u:p@svc:8443/a/../b?q=1#frag?x", "https://u:p@svc:8443", "/a/../b?q=1");
    check_target("http://[::1]:8080/p", "http://[::1]:8080", "/p");
    check_target("HTTP://svc/", "HTTP://svc", "/");
    check_target("http://svc/p%20q?a=%0D", "http://svc", "/p%20q?a=%0D");
    /* no path: curl adds the "/" itself */
    check_target("http://svc?gid=g", NULL, NULL);
    check_target("http://svc#/x", NULL, NULL);
    check_target("http://svc", NULL, NULL);
    /* bytes that must not reach a request line as they are */
    check_target("http://svc/p q", NULL, NULL);
    check_target("http://svc/p?a=\r\nX: y", NULL, NULL);
    check_target("http://svc/p\x7f", NULL, NULL);
    check_target("http://svc/p#f g", "http://svc", "/p"); /* the fragment is never sent */
    /* not an absolute URL */
    check_target("/just/a/path", NULL, NULL);
    check_target("", NULL, NULL);
    check_target("thisisnotascheme://svc/p", NULL, NULL);
}

/* ---- test HTTP server ------------------------------------------------- */

static struct event_base *t_base;
static struct evhttp *t_http;
static int t_port;
static struct event *t_safety;
static int t_calls;    /* callbacks seen */
static int t_expected; /* stop the loop when t_calls reaches this (0 = never) */

/* Number of request headers with this name (to prove overrides). */
static int count_header(struct evkeyvalq *h, const char *name) {
    int n = 0;
    for (struct evkeyval *kv = h->tqh_first; kv; kv = kv->next.tqe_next)
        if (strcasecmp(kv->key, name) == 0) n++;
    return n;
}

/* /slow answers 0.4 s after the request came. */
static void slow_reply(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    struct evbuffer *out = evbuffer_new();
    evbuffer_add_printf(out, "{\"dtm_result\":\"SUCCESS\"}");
    evhttp_send_reply(arg, 200, "OK", out);
    evbuffer_free(out);
}

/* Routes by path; /echo reports what arrived so the client side can check
 * method, query, headers and body. /hang never answers. */
static void srv_handler(struct evhttp_request *req, void *arg) {
    (void)arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    struct evbuffer *out = evbuffer_new();
    int code = 200;
    const char *reason = "OK";
    if (!path) path = "";
    if (strcmp(path, "/hang") == 0) {
        evbuffer_free(out);
        return; /* evhttp frees the request when the client goes away */
    } else if (strcmp(path, "/s200") == 0) {
        evbuffer_add_printf(out, "{\"dtm_result\":\"SUCCESS\"}");
    } else if (strcmp(path, "/f200") == 0) {
        evbuffer_add_printf(out, "{\"dtm_result\":\"FAILURE\"}");
    } else if (strcmp(path, "/o200") == 0) {
        evbuffer_add_printf(out, "{\"dtm_result\":\"ONGOING\"}");
    } else if (strcmp(path, "/s409") == 0) {
        code = 409, reason = "Conflict";
        evbuffer_add_printf(out, "conflict");
    } else if (strcmp(path, "/s425") == 0) {
        code = 425, reason = "Too Early";
        evbuffer_add_printf(out, "later");
    } else if (strcmp(path, "/s500") == 0) {
        code = 500, reason = "Internal Server Error";
        evbuffer_add_printf(out, "boom");
    } else if (strcmp(path, "/s204") == 0) {
        code = 204, reason = "No Content";
    } else if (strcmp(path, "/big") == 0) {
        char *chunk = malloc(65536);
        memset(chunk, 'a', 65536);
        for (int i = 0; i < 32; i++) evbuffer_add(out, chunk, 65536); /* 2 MiB */
        free(chunk);
    } else if (strcmp(path, "/slow") == 0) {
        evbuffer_free(out);
        struct timeval tv = {0, 400 * 1000};
        event_base_once(t_base, -1, EV_TIMEOUT, slow_reply, req, &tv);
        return;
    } else if (strcmp(path, "/peer") == 0) {
        char *addr = NULL;
        ev_uint16_t port = 0;
        evhttp_connection_get_peer(evhttp_request_get_connection(req), &addr, &port);
        evbuffer_add_printf(out, "%u", (unsigned)port);
    } else if (strlen(path) >= 9 && strcmp(path + strlen(path) - 9, "/echo-raw") == 0) {
        /* the request target exactly as it arrived, and the Host header */
        struct evkeyvalq *h = evhttp_request_get_input_headers(req);
        const char *host = evhttp_find_header(h, "Host"), *acc = evhttp_find_header(h, "Accept");
        evbuffer_add_printf(out, "%s|accept=%s|host=%s", evhttp_request_get_uri(req),
                            acc ? acc : "-", host ? host : "-");
    } else if (strcmp(path, "/echo") == 0) {
        struct evkeyvalq *h = evhttp_request_get_input_headers(req);
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        const char *ct = evhttp_find_header(h, "Content-Type");
        const char *expect = evhttp_find_header(h, "Expect");
        const char *x = evhttp_find_header(h, "X-Test");
        const char *cl = evhttp_find_header(h, "Content-Length");
        enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
        evbuffer_add_printf(out, "%s %s|ct=%s*%d|x=%s*%d|expect=%s|evil=%d|cl=%s|",
                            cmd == EVHTTP_REQ_POST  ? "POST"
                            : cmd == EVHTTP_REQ_GET ? "GET"
                                                    : "OTHER",
                            evhttp_request_get_uri(req), ct ? ct : "-",
                            count_header(h, "Content-Type"), x ? x : "-", count_header(h, "X-Test"),
                            expect ? expect : "-", count_header(h, "X-Evil"), cl ? cl : "-");
        evbuffer_add_buffer(out, in);
    } else {
        code = 404, reason = "Not Found";
        evbuffer_add_printf(out, "no route");
    }
    evhttp_send_reply(req, code, reason, out);
    evbuffer_free(out);
}

static void safety_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    (void)arg;
    fprintf(stderr, "  branch_call test: safety timer fired (callbacks missing)\n");
    CHECK(0);
    event_base_loopbreak(t_base);
}

/* Base + server + branch_call module; returns 0 when everything is up. */
static int env_setup(void) {
    t_calls = 0;
    t_expected = 0;
    t_base = event_base_new();
    t_http = evhttp_new(t_base);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(t_http, "127.0.0.1", 0);
    CHECK(bs != NULL);
    if (!bs) return -1;
    struct sockaddr_in sin;
    socklen_t slen = sizeof sin;
    CHECK(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &slen) == 0);
    t_port = ntohs(sin.sin_port);
    evhttp_set_gencb(t_http, srv_handler, NULL);
    t_safety = evtimer_new(t_base, safety_cb, NULL);
    struct timeval tv = {10, 0};
    evtimer_add(t_safety, &tv);
    CHECK_INT(branch_call_init(t_base), 0);
    return 0;
}

static void env_teardown(void) {
    branch_call_shutdown();
    evhttp_free(t_http);
    event_free(t_safety);
    event_base_free(t_base);
    t_http = NULL;
    t_base = NULL;
}

static char *url_for(const char *path) {
    sbuf b;
    sb_init(&b);
    sb_printf(&b, "http://127.0.0.1:%d%s", t_port, path);
    return sb_detach(&b);
}

/* ---- concurrent calls: outcomes, statuses, bodies, what arrived -------- */

struct result {
    int called;
    branch_outcome outcome;
    long status;
    char *body;
    size_t body_len;
    int64_t elapsed_ms;
    int64_t start_ms;
};

static void record_cb(void *arg, branch_outcome o, long status, const char *body, size_t len) {
    struct result *r = arg;
    r->called++;
    r->outcome = o;
    r->status = status;
    r->body = xstrndup(body, len);
    CHECK(body[len] == '\0');
    r->body_len = len;
    r->elapsed_ms = now_ms() - r->start_ms;
    t_calls++;
    if (t_expected && t_calls == t_expected) event_base_loopbreak(t_base);
}

struct http_case {
    const char *path; /* relative to the test server, or an absolute URL */
    const char *gid, *trans_type, *branch_id, *op;
    const char *body;
    size_t body_len; /* 0 = strlen(body) when body is set */
    int force_post;
    const char *headers[3];
    double timeout_s;
    branch_outcome want;
    long want_status;
    const char *want_body;     /* exact, or NULL */
    const char *want_contains; /* substring, or NULL */
};

#define ECHO_Q "/echo?branch_id=01&gid=g1&op=action&trans_type=saga"

void test_branch_call_http(void) {
    if (env_setup() != 0) return;
    static char big_body[1536 * 1024]; /* curl 7.88 adds Expect above 1 MiB */
    memset(big_body, 'b', sizeof big_body);
    char refused[64];
    snprintf(refused, sizeof refused, "http://127.0.0.1:1/x");
    char ftp[64], file[] = "file:///etc/hostname";
    snprintf(ftp, sizeof ftp, "ftp://127.0.0.1:%d/", t_port);
    const struct http_case cases[] = {
        {"/s200",
         "g1",
         "saga",
         "01",
         "action",
         NULL,
         0,
         0,
         {0},
         3,
         BR_SUCCESS,
         200,
         "{\"dtm_result\":\"SUCCESS\"}",
         NULL},
        {"/s409",
         "g1",
         "saga",
         "01",
         "action",
         "{}",
         0,
         0,
         {0},
         3,
         BR_FAILURE,
         409,
         "conflict",
         NULL},
        {"/s425", "g1", "saga", "01", "action", "{}", 0, 0, {0}, 3, BR_ONGOING, 425, "later", NULL},
        {"/s500", "g1", "saga", "01", "action", "{}", 0, 0, {0}, 3, BR_ERROR, 500, "boom", NULL},
        {"/s204", "g1", "saga", "01", "action", NULL, 0, 0, {0}, 3, BR_ERROR, 204, "", NULL},
        {"/f200",
         "g1",
         "saga",
         "01",
         "action",
         NULL,
         0,
         0,
         {0},
         3,
         BR_FAILURE,
         200,
         "{\"dtm_result\":\"FAILURE\"}",
         NULL},
        {"/o200",
         "g1",
         "saga",
         "01",
         "action",
         NULL,
         0,
         0,
         {0},
         3,
         BR_ONGOING,
         200,
         "{\"dtm_result\":\"ONGOING\"}",
         NULL},
        {"/nowhere",
         "g1",
         "saga",
         "01",
         "action",
         NULL,
         0,
         0,
         {0},
         3,
         BR_ERROR,
         404,
         "no route",
         NULL},
        /* never answered: the 0.3 s timeout must fire */
        {"/hang",
         "g1",
         "saga",
         "01",
         "action",
         NULL,
         0,
         0,
         {0},
         0.3,
         BR_ERROR,
         0,
         NULL,
         "timed out"},
        /* GET: no body, Content-Type still sent, no Expect, encoded gid */
        {"/echo",
         "g 1&/\xc3\xa9",
         "saga",
         "01",
         "action",
         NULL,
         0,
         0,
         {0},
         3,
         BR_SUCCESS,
         200,
         "GET /echo?branch_id=01&gid=g+1%26%2F%C3%A9&op=action&trans_type=saga|"
         "ct=application/json*1|x=-*0|expect=-|evil=0|cl=-|",
         NULL},
        /* POST with body; the later X-Test overrides the earlier */
        {"/echo",
         "g1",
         "saga",
         "01",
         "action",
         "{\"a\":1}",
         0,
         0,
         {"X-Test: one", "X-Test: two"},
         3,
         BR_SUCCESS,
         200,
         "POST " ECHO_Q "|ct=application/json*1|x=two*1|expect=-|evil=0|cl=7|{\"a\":1}",
         NULL},
        /* force_post with an empty body (xa) */
        {"/echo",
         "g1",
         "xa",
         "01",
         "commit",
         NULL,
         0,
         1,
         {0},
         3,
         BR_SUCCESS,
         200,
         "POST /echo?branch_id=01&gid=g1&op=commit&trans_type=xa|ct=application/json*1|x=-*0|"
         "expect=-|evil=0|cl=0|",
         NULL},
        /* an extra Content-Type replaces the default one */
        {"/echo",
         "g1",
         "saga",
         "01",
         "action",
         "hi",
         0,
         0,
         {"Content-Type: text/plain"},
         3,
         BR_SUCCESS,
         200,
         "POST " ECHO_Q "|ct=text/plain*1|x=-*0|expect=-|evil=0|cl=2|hi",
         NULL},
        /* CR/LF in a header line is dropped, not injected */
        {"/echo",
         "g1",
         "saga",
         "01",
         "action",
         NULL,
         0,
         0,
         {"X-Test: a\r\nX-Evil: 1", "X-T: b"},
         3,
         BR_SUCCESS,
         200,
         "GET " ECHO_Q "|ct=application/json*1|x=-*0|expect=-|evil=0|cl=-|",
         NULL},
        /* existing query string kept, NULL params omitted */
        {"/echo?x=1",
         NULL,
         NULL,
         "00",
         "msg",
         NULL,
         0,
         0,
         {0},
         3,
         BR_SUCCESS,
         200,
         "GET /echo?x=1&branch_id=00&op=msg|ct=application/json*1|x=-*0|expect=-|evil=0|cl=-|",
         NULL},
        /* a large POST is sent without "Expect: 100-continue" (the echoed
         * reply is cut at 1 MiB) */
        {"/echo",
         "g1",
         "saga",
         "01",
         "action",
         big_body,
         sizeof big_body,
         0,
         {0},
         3,
         BR_SUCCESS,
         200,
         NULL,
         "|ct=application/json*1|x=-*0|expect=-|evil=0|cl=1572864|bbbb"},
        /* the path goes out as written (dot segments too, as dtm's Go client
         * sends it), the fragment never; no Accept header (nor does dtm send
         * one) */
        {"/a/./b/../echo-raw#frag?x",
         "g1",
         "saga",
         "01",
         "action",
         NULL,
         0,
         0,
         {0},
         3,
         BR_SUCCESS,
         200,
         NULL,
         "/a/./b/../"
         "echo-raw?branch_id=01&gid=g1&op=action&trans_type=saga|accept=-|host=127.0.0.1:"},
        /* a branch header replaces a default one */
        {"/echo-raw",
         "g1",
         "saga",
         "01",
         "action",
         NULL,
         0,
         0,
         {"Accept: text/plain"},
         3,
         BR_SUCCESS,
         200,
         NULL,
         "|accept=text/plain|host="},
        /* a 2 MiB response is truncated to 1 MiB */
        {"/big", "g1", "saga", "01", "action", NULL, 0, 0, {0}, 3, BR_SUCCESS, 200, NULL, NULL},
        /* transport errors and refused schemes */
        {refused, "g1", "saga", "01", "action", NULL, 0, 0, {0}, 3, BR_ERROR, 0, NULL, NULL},
        {ftp, "g1", "saga", "01", "action", NULL, 0, 0, {0}, 3, BR_ERROR, 0, NULL, "not supported"},
        {file, NULL, NULL, NULL, NULL, NULL, 0, 0, {0}, 3, BR_ERROR, 0, NULL, "not supported"},
    };
    enum { N = sizeof cases / sizeof cases[0] };
    static struct result res[N];
    memset(res, 0, sizeof res);
    for (int i = 0; i < N; i++) {
        const struct http_case *tc = &cases[i];
        /* everything handed over is freed right after start: the call must
         * have copied it */
        char *url = tc->path[0] == '/' ? url_for(tc->path) : xstrdup(tc->path);
        size_t blen = tc->body ? (tc->body_len ? tc->body_len : strlen(tc->body)) : 0;
        char *body = tc->body ? xstrndup(tc->body, blen) : NULL;
        char *hdr[3] = {0};
        int nh = 0;
        while (nh < 3 && tc->headers[nh]) {
            hdr[nh] = xstrdup(tc->headers[nh]);
            nh++;
        }
        branch_request req = {
            .url = url,
            .gid = tc->gid,
            .trans_type = tc->trans_type,
            .branch_id = tc->branch_id,
            .op = tc->op,
            .body = body,
            .body_len = blen,
            .force_post = tc->force_post,
            .headers = (const char *const *)hdr,
            .nheaders = nh,
            .timeout_s = tc->timeout_s,
        };
        res[i].start_ms = now_ms();
        branch_call *c = branch_call_start(&req, record_cb, &res[i]);
        CHECK(c != NULL);
        if (body) memset(body, 'Z', blen);
        free(url);
        free(body);
        for (int k = 0; k < nh; k++) free(hdr[k]);
    }
    CHECK_INT(branch_call_pending(), N);
    t_expected = N;
    event_base_dispatch(t_base);
    CHECK_INT(t_calls, N);
    CHECK_INT(branch_call_pending(), 0);
    for (int i = 0; i < N; i++) {
        const struct http_case *tc = &cases[i];
        struct result *r = &res[i];
        if (r->called != 1) {
            fprintf(stderr, "  case %d (%s): called %d times\n", i, tc->path, r->called);
            CHECK(0);
            continue;
        }
        int ok = r->outcome == tc->want && r->status == tc->want_status;
        if (tc->want_body) ok = ok && strcmp(r->body, tc->want_body) == 0;
        if (tc->want_contains) ok = ok && strstr(r->body, tc->want_contains) != NULL;
        if (!ok) {
            fprintf(stderr, "  case %d (%s): got %s %ld \"%.300s\"\n", i, tc->path,
                    branch_outcome_name(r->outcome), r->status, r->body);
            CHECK(0);
        }
        if (tc->want_status == 0) CHECK(r->body_len > 0); /* curl's error text */
        if (strcmp(tc->path, "/hang") == 0) {
            CHECK(r->elapsed_ms >= 250);
            CHECK(r->elapsed_ms < 3000);
        }
        if (strcmp(tc->path, "/big") == 0) {
            CHECK_INT(r->body_len, 1 << 20);
            CHECK(r->body[0] == 'a' && r->body[r->body_len - 1] == 'a');
        }
        if (tc->body && tc->body == big_body) {
            /* our copy arrived, not the caller's buffer scribbled after start */
            const char *p = strstr(r->body, "cl=1572864|");
            CHECK(p && p[11] == 'b' && !strchr(p, 'Z'));
            CHECK_INT(r->body_len, 1 << 20);
        }
        free(r->body);
    }
    env_teardown();
}

/* ---- connection reuse, and starting calls from a callback -------------- */

static char *t_first_peer;
static int t_peer_same;
static int t_chain_left;

static void start_peer_call(void);

static void peer_cb(void *arg, branch_outcome o, long status, const char *body, size_t len) {
    (void)arg;
    (void)len;
    CHECK_INT(o, BR_SUCCESS);
    CHECK_INT(status, 200);
    if (!t_first_peer)
        t_first_peer = xstrdup(body);
    else if (strcmp(t_first_peer, body) == 0)
        t_peer_same++;
    t_calls++;
    if (--t_chain_left > 0)
        start_peer_call();
    else
        event_base_loopbreak(t_base);
}

static void start_peer_call(void) {
    char *url = url_for("/peer");
    branch_request req = {.url = url, .gid = "g", .op = "action", .timeout_s = 3};
    CHECK(branch_call_start(&req, peer_cb, NULL) != NULL);
    free(url);
}

void test_branch_call_reuse(void) {
    if (env_setup() != 0) return;
    t_first_peer = NULL;
    t_peer_same = 0;
    t_chain_left = 10;
    start_peer_call();
    event_base_dispatch(t_base);
    CHECK_INT(t_calls, 10);
    CHECK_INT(t_peer_same, 9); /* every later call came over the first connection */
    free(t_first_peer);
    t_first_peer = NULL;
    env_teardown();
}

/* ---- idle connections are reused only for a while ----------------------
 * A connection idle for 2 s or more is closed instead of reused
 * (BRANCH_MAX_IDLE_S: the service may be closing it just then); one idle
 * for half a second is reused. /peer tells which connection a call came
 * over. */

static const int t_idle_gap_ms[3] = {0, 500, 2100}; /* before each call */
static struct result t_idle_res[3];
static int t_idle_at;

static void idle_start(evutil_socket_t fd, short what, void *arg);

static void idle_cb(void *arg, branch_outcome o, long status, const char *body, size_t len) {
    record_cb(arg, o, status, body, len);
    if (++t_idle_at < 3) {
        int ms = t_idle_gap_ms[t_idle_at];
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        event_base_once(t_base, -1, EV_TIMEOUT, idle_start, NULL, &tv);
    } else {
        event_base_loopbreak(t_base);
    }
}

static void idle_start(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    char *url = url_for("/peer");
    branch_request req = {.url = url, .gid = "g", .op = "action", .timeout_s = 3};
    t_idle_res[t_idle_at].start_ms = now_ms();
    CHECK(branch_call_start(&req, idle_cb, &t_idle_res[t_idle_at]) != NULL);
    free(url);
}

void test_branch_call_idle_max_age(void) {
    if (env_setup() != 0) return;
    memset(t_idle_res, 0, sizeof t_idle_res);
    t_idle_at = 0;
    idle_start(-1, 0, NULL);
    event_base_dispatch(t_base);
    CHECK_INT(t_idle_at, 3);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(t_idle_res[i].outcome, BR_SUCCESS);
        if (!t_idle_res[i].body) t_idle_res[i].body = xstrdup("");
    }
    CHECK_STR(t_idle_res[1].body, t_idle_res[0].body);          /* reused after 0.5 s */
    CHECK(strcmp(t_idle_res[2].body, t_idle_res[1].body) != 0); /* not after 2.1 s */
    for (int i = 0; i < 3; i++) free(t_idle_res[i].body);
    env_teardown();
}

/* ---- parsed origins, cached and shared (branch_call.c origin_get) -------
 * More origins than the cache holds (64), first all at once (every entry in
 * use: the calls past it parse their own), then again (cached ones shared
 * by calls running together), then one by one (the least recently used
 * entry replaced). Each origin is a listener of its own on the test server,
 * and each call must reach its own: its Host header says which. */

#define N_ORIGINS 70
static int t_origin_port[N_ORIGINS];
static struct result t_origin_res[N_ORIGINS];

static void origin_call(int i) {
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/o%d/echo-raw", t_origin_port[i], i);
    branch_request req = {.url = url, .gid = "g", .op = "action", .timeout_s = 5};
    t_origin_res[i].start_ms = now_ms();
    CHECK(branch_call_start(&req, record_cb, &t_origin_res[i]) != NULL);
}

static void origin_check(int i) {
    char want[96];
    snprintf(want, sizeof want, "/o%d/echo-raw?gid=g&op=action|accept=-|host=127.0.0.1:%d", i,
             t_origin_port[i]);
    CHECK_INT(t_origin_res[i].called, 1);
    CHECK_INT(t_origin_res[i].outcome, BR_SUCCESS);
    CHECK_STR(t_origin_res[i].body ? t_origin_res[i].body : "", want);
    free(t_origin_res[i].body);
    memset(&t_origin_res[i], 0, sizeof t_origin_res[i]);
}

void test_branch_call_origins(void) {
    if (env_setup() != 0) return;
    for (int i = 0; i < N_ORIGINS; i++) {
        struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(t_http, "127.0.0.1", 0);
        CHECK(bs != NULL);
        if (!bs) return;
        struct sockaddr_in sin;
        socklen_t slen = sizeof sin;
        CHECK(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &slen) == 0);
        t_origin_port[i] = ntohs(sin.sin_port);
    }
    memset(t_origin_res, 0, sizeof t_origin_res);
    for (int round = 0; round < 2; round++) { /* all at once, twice */
        t_calls = 0;
        t_expected = N_ORIGINS;
        for (int i = 0; i < N_ORIGINS; i++) origin_call(i);
        event_base_dispatch(t_base);
        for (int i = 0; i < N_ORIGINS; i++) origin_check(i);
    }
    for (int k = 0; k < 2 * N_ORIGINS; k++) { /* one at a time, from the end */
        int i = N_ORIGINS - 1 - k % N_ORIGINS;
        t_calls = 0;
        t_expected = 1;
        origin_call(i);
        event_base_dispatch(t_base);
        origin_check(i);
    }
    env_teardown();
}

/* ---- one pooled curl handle, call after call ---------------------------
 * A finished call's handle is pooled without curl_easy_reset: nothing of
 * one call (method, body, headers, timeout) may carry over to the next.
 * Each call starts from a timer after the previous callback, when its
 * handle is back in the pool, so all of them run on the same handle. */

struct seq_step {
    const char *path;
    const char *body;
    const char *header;
    double timeout_s;
    branch_outcome want;
    const char *want_body;
};
static const struct seq_step *t_seq;
static int t_seq_n, t_seq_at;
static struct result t_seq_res[8];

static void seq_start(evutil_socket_t fd, short what, void *arg);

static void seq_cb(void *arg, branch_outcome o, long status, const char *body, size_t len) {
    record_cb(arg, o, status, body, len);
    if (++t_seq_at < t_seq_n) {
        struct timeval now = {0, 0};
        event_base_once(t_base, -1, EV_TIMEOUT, seq_start, NULL, &now);
    } else {
        event_base_loopbreak(t_base);
    }
}

static void seq_start(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    const struct seq_step *st = &t_seq[t_seq_at];
    char *url = url_for(st->path);
    branch_request req = {.url = url,
                          .gid = "g1",
                          .trans_type = "saga",
                          .branch_id = "01",
                          .op = "action",
                          .body = st->body,
                          .body_len = st->body ? strlen(st->body) : 0,
                          .headers = st->header ? &st->header : NULL,
                          .nheaders = st->header ? 1 : 0,
                          .timeout_s = st->timeout_s};
    t_seq_res[t_seq_at].start_ms = now_ms();
    CHECK(branch_call_start(&req, seq_cb, &t_seq_res[t_seq_at]) != NULL);
    free(url);
}

void test_branch_call_handle_reuse(void) {
    if (env_setup() != 0) return;
    static const struct seq_step steps[] = {
        /* POST, a header, a 0.3 s limit */
        {"/echo", "{\"a\":1}", "X-Test: one", 0.3, BR_SUCCESS,
         "POST " ECHO_Q "|ct=application/json*1|x=one*1|expect=-|evil=0|cl=7|{\"a\":1}"},
        /* no limit: answered after 0.4 s, not cut at the previous 0.3 */
        {"/slow", NULL, NULL, 0, BR_SUCCESS, "{\"dtm_result\":\"SUCCESS\"}"},
        /* GET: neither the body nor the header of the first call */
        {"/echo", NULL, NULL, 3, BR_SUCCESS,
         "GET " ECHO_Q "|ct=application/json*1|x=-*0|expect=-|evil=0|cl=-|"},
        /* a limit again after none */
        {"/hang", NULL, NULL, 0.2, BR_ERROR, NULL},
        {"/echo", "{}", NULL, 3, BR_SUCCESS,
         "POST " ECHO_Q "|ct=application/json*1|x=-*0|expect=-|evil=0|cl=2|{}"},
    };
    t_seq = steps;
    t_seq_n = (int)(sizeof steps / sizeof steps[0]);
    t_seq_at = 0;
    memset(t_seq_res, 0, sizeof t_seq_res);
    struct timeval now = {0, 0};
    event_base_once(t_base, -1, EV_TIMEOUT, seq_start, NULL, &now);
    event_base_dispatch(t_base);
    CHECK_INT(t_seq_at, t_seq_n);
    for (int i = 0; i < t_seq_n; i++) {
        struct result *r = &t_seq_res[i];
        CHECK_INT(r->called, 1);
        CHECK_INT(r->outcome, steps[i].want);
        if (steps[i].want_body) CHECK_STR(r->body ? r->body : "", steps[i].want_body);
        free(r->body);
    }
    CHECK(t_seq_res[1].elapsed_ms >= 380);
    CHECK(t_seq_res[3].elapsed_ms >= 150 && t_seq_res[3].elapsed_ms < 3000);
    env_teardown();
}

/* ---- one attempt, one request on the wire -------------------------------
 * A service that reads a request sent over a reused keep-alive connection
 * and closes the connection without answering: libcurl would send the
 * request again on a fresh connection by itself (up to five times), so a
 * branch would run one attempt twice. The call must fail instead, with the
 * request sent exactly once, and the engine's back-off retries it.
 *
 * The service is a raw socket server on the test loop: every request is
 * answered 200 (keep-alive), except /second when it is not the first
 * request of its connection: that one is read in full and the connection
 * closed. Calls run one after another (seq_start), so /second reuses the
 * connection /first was answered on. */

struct raw_conn {
    evutil_socket_t fd;
    struct event *ev;
    int requests; /* complete requests read on this connection */
    size_t len;
    char buf[8192];
};

#define RAW_CONNS_MAX 16
static struct raw_conn *t_raw_conns[RAW_CONNS_MAX];
static evutil_socket_t t_raw_listen = -1;
static struct event *t_raw_accept_ev;
static int t_raw_first, t_raw_second, t_raw_third; /* copies of each request seen */
static int t_raw_closed;                           /* /second requests answered by closing */
static char t_raw_second_seen[128];                /* method, Content-Length, body of /second */

static void raw_conn_close(struct raw_conn *rc) {
    for (int i = 0; i < RAW_CONNS_MAX; i++)
        if (t_raw_conns[i] == rc) t_raw_conns[i] = NULL;
    event_free(rc->ev);
    evutil_closesocket(rc->fd);
    free(rc);
}

static void raw_conn_cb(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    struct raw_conn *rc = arg;
    ssize_t n = recv(fd, rc->buf + rc->len, sizeof rc->buf - 1 - rc->len, 0);
    if (n <= 0) {
        raw_conn_close(rc);
        return;
    }
    rc->len += (size_t)n;
    rc->buf[rc->len] = '\0';
    char *end;
    while ((end = strstr(rc->buf, "\r\n\r\n"))) {
        size_t head = (size_t)(end + 4 - rc->buf);
        *end = '\0';
        const char *cl = strcasestr(rc->buf, "\r\nContent-Length:");
        size_t body = cl ? strtoul(cl + 17, NULL, 10) : 0;
        *end = '\r';
        if (rc->len < head + body) return; /* the rest of the body is on its way */
        rc->requests++;
        char method[8] = "", target[256] = "";
        sscanf(rc->buf, "%7s %255s", method, target);
        if (strncmp(target, "/first", 6) == 0) t_raw_first++;
        if (strncmp(target, "/third", 6) == 0) t_raw_third++;
        if (strncmp(target, "/second", 7) == 0) {
            t_raw_second++;
            snprintf(t_raw_second_seen, sizeof t_raw_second_seen, "%s cl=%zu %.*s", method, body,
                     (int)body, rc->buf + head);
            if (rc->requests > 1) { /* over a reused connection: no answer */
                t_raw_closed++;
                raw_conn_close(rc);
                return;
            }
        }
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 "Content-Length: 24\r\n\r\n{\"dtm_result\":\"SUCCESS\"}";
        CHECK(send(fd, ok, sizeof ok - 1, 0) == (ssize_t)(sizeof ok - 1));
        memmove(rc->buf, rc->buf + head + body, rc->len - head - body + 1);
        rc->len -= head + body;
    }
    CHECK(rc->len < sizeof rc->buf - 1); /* requests this test sends are small */
}

static void raw_accept_cb(evutil_socket_t lfd, short what, void *arg) {
    (void)what, (void)arg;
    evutil_socket_t fd = accept(lfd, NULL, NULL);
    if (fd < 0) return;
    evutil_make_socket_nonblocking(fd);
    struct raw_conn *rc = xcalloc(1, sizeof *rc);
    rc->fd = fd;
    rc->ev = event_new(t_base, fd, EV_READ | EV_PERSIST, raw_conn_cb, rc);
    event_add(rc->ev, NULL);
    int i = 0;
    while (i < RAW_CONNS_MAX && t_raw_conns[i]) i++;
    CHECK(i < RAW_CONNS_MAX);
    if (i < RAW_CONNS_MAX)
        t_raw_conns[i] = rc;
    else
        raw_conn_close(rc);
}

/* The raw server on 127.0.0.1; it takes t_port, so url_for and seq_start
 * reach it. */
static int raw_server_start(void) {
    t_raw_first = t_raw_second = t_raw_third = t_raw_closed = 0;
    t_raw_second_seen[0] = '\0';
    t_raw_listen = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t slen = sizeof sin;
    if (t_raw_listen < 0 || bind(t_raw_listen, (struct sockaddr *)&sin, sizeof sin) != 0 ||
        listen(t_raw_listen, 16) != 0 ||
        getsockname(t_raw_listen, (struct sockaddr *)&sin, &slen) != 0) {
        CHECK(0);
        return -1;
    }
    evutil_make_socket_nonblocking(t_raw_listen);
    t_port = ntohs(sin.sin_port);
    t_raw_accept_ev = event_new(t_base, t_raw_listen, EV_READ | EV_PERSIST, raw_accept_cb, NULL);
    event_add(t_raw_accept_ev, NULL);
    return 0;
}

static void raw_server_stop(void) {
    for (int i = 0; i < RAW_CONNS_MAX; i++)
        if (t_raw_conns[i]) raw_conn_close(t_raw_conns[i]);
    if (t_raw_accept_ev) event_free(t_raw_accept_ev);
    if (t_raw_listen >= 0) evutil_closesocket(t_raw_listen);
    t_raw_accept_ev = NULL;
    t_raw_listen = -1;
}

void test_branch_call_no_resend(void) {
    static const struct seq_step post[] = {
        {"/first", "{\"n\":1}", NULL, 3, BR_SUCCESS, "{\"dtm_result\":\"SUCCESS\"}"},
        {"/second", "{\"n\":2}", NULL, 3, BR_ERROR, "connection closed without an answer"},
        {"/third", "{\"n\":3}", NULL, 3, BR_SUCCESS, "{\"dtm_result\":\"SUCCESS\"}"},
    };
    static const struct seq_step get[] = {
        {"/first", NULL, NULL, 3, BR_SUCCESS, "{\"dtm_result\":\"SUCCESS\"}"},
        {"/second", NULL, NULL, 3, BR_ERROR, "connection closed without an answer"},
        {"/third", NULL, NULL, 3, BR_SUCCESS, "{\"dtm_result\":\"SUCCESS\"}"},
    };
    const struct seq_step *const cases[2] = {post, get};
    const char *const second_seen[2] = {"POST cl=7 {\"n\":2}", "GET cl=0 "};
    for (int k = 0; k < 2; k++) {
        if (env_setup() != 0) return;
        if (raw_server_start() != 0) {
            raw_server_stop();
            env_teardown();
            return;
        }
        t_seq = cases[k];
        t_seq_n = 3;
        t_seq_at = 0;
        memset(t_seq_res, 0, sizeof t_seq_res);
        struct timeval now = {0, 0};
        event_base_once(t_base, -1, EV_TIMEOUT, seq_start, NULL, &now);
        event_base_dispatch(t_base);
        CHECK_INT(t_seq_at, t_seq_n);
        for (int i = 0; i < t_seq_n; i++) {
            struct result *r = &t_seq_res[i];
            CHECK_INT(r->called, 1);
            CHECK_INT(r->outcome, cases[k][i].want);
            CHECK_INT(r->status, cases[k][i].want == BR_ERROR ? 0 : 200);
            CHECK_STR(r->body ? r->body : "", cases[k][i].want_body);
            free(r->body);
        }
        CHECK_INT(t_raw_closed, 1); /* /second came over the connection /first used */
        CHECK_INT(t_raw_second, 1); /* and was not sent again */
        CHECK_STR(t_raw_second_seen, second_seen[k]);
        CHECK_INT(t_raw_first, 1);
        CHECK_INT(t_raw_third, 1);
        raw_server_stop();
        env_teardown();
    }
}

/* ---- proxy variables ------------------------------------------------------
 * Without any, each handle tells curl "no proxy" (it then skips looking);
 * with http_proxy set when the module starts, calls go through the proxy as
 * with curl's defaults. The test server plays the proxy: it is sent the
 * absolute URL of a host that does not exist. */
void test_branch_call_proxy_env(void) {
    if (env_setup() != 0) return;
    branch_call_shutdown();
    char proxy[64];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", t_port);
    setenv("http_proxy", proxy, 1);
    CHECK_INT(branch_call_init(t_base), 0);
    struct result r = {0};
    branch_request req = {.url = "http://dtmd-proxy-test.invalid/echo",
                          .gid = "g1",
                          .trans_type = "saga",
                          .branch_id = "01",
                          .op = "action",
                          .timeout_s = 3};
    t_expected = 1;
    CHECK(branch_call_start(&req, record_cb, &r) != NULL);
    event_base_dispatch(t_base);
    CHECK_INT(r.called, 1);
    CHECK_INT(r.outcome, BR_SUCCESS);
    CHECK_STR(
        r.body ? r.body : "",
        "GET http://dtmd-proxy-test.invalid/echo?branch_id=01&gid=g1&op=action&trans_type=saga|"
        "ct=application/json*1|x=-*0|expect=-|evil=0|cl=-|");
    free(r.body);
    unsetenv("http_proxy");
    env_teardown();
}

/* ---- cancellation ------------------------------------------------------ */

static branch_call *t_victim;
static int t_victim_called;
static branch_call *t_pair[2];
static int t_pair_called;
static struct result t_followup;

static void victim_cb(void *arg, branch_outcome o, long status, const char *body, size_t len) {
    (void)arg, (void)o, (void)status, (void)body, (void)len;
    t_victim_called++;
}

static void stop_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    event_base_loopbreak(t_base);
}

/* Stop the loop a little later, so stray callbacks would still show up. */
static void stop_soon(int ms) {
    struct timeval tv = {0, ms * 1000};
    event_base_once(t_base, -1, EV_TIMEOUT, stop_cb, NULL, &tv);
}

/* The call started from pair_cb: record it, then let the loop run a bit
 * longer so a callback of a cancelled call would still be noticed. */
static void followup_cb(void *arg, branch_outcome o, long status, const char *body, size_t len) {
    record_cb(arg, o, status, body, len);
    stop_soon(300);
}

/* First of the pair to finish cancels the other (whether it is still in
 * flight or already finished in the same batch), cancels itself (a no-op
 * during its own callback) and starts a new call. */
static void pair_cb(void *arg, branch_outcome o, long status, const char *body, size_t len) {
    (void)body, (void)len;
    int me = (int)(intptr_t)arg;
    CHECK_INT(o, BR_SUCCESS);
    CHECK_INT(status, 200);
    t_pair_called++;
    if (t_pair_called == 1) {
        branch_call_cancel(t_pair[1 - me]);
        branch_call_cancel(t_pair[me]);
        branch_call_cancel(t_victim);
        char *url = url_for("/s200");
        branch_request req = {.url = url, .timeout_s = 3};
        t_followup.start_ms = now_ms();
        CHECK(branch_call_start(&req, followup_cb, &t_followup) != NULL);
        free(url);
    }
}

void test_branch_call_cancel(void) {
    if (env_setup() != 0) return;
    char *hang = url_for("/hang");
    char *ok = url_for("/s200");
    /* cancelled before the loop even runs */
    branch_request hreq = {.url = hang, .timeout_s = 0.2};
    branch_call *c = branch_call_start(&hreq, victim_cb, NULL);
    CHECK(c != NULL);
    CHECK_INT(branch_call_pending(), 1);
    branch_call_cancel(c);
    CHECK_INT(branch_call_pending(), 0);
    /* cancelled from another call's callback */
    hreq.timeout_s = 5;
    t_victim = branch_call_start(&hreq, victim_cb, NULL);
    t_victim_called = 0;
    t_pair_called = 0;
    memset(&t_followup, 0, sizeof t_followup);
    branch_request oreq = {.url = ok, .timeout_s = 3};
    t_pair[0] = branch_call_start(&oreq, pair_cb, (void *)(intptr_t)0);
    t_pair[1] = branch_call_start(&oreq, pair_cb, (void *)(intptr_t)1);
    CHECK_INT(branch_call_pending(), 3);
    event_base_dispatch(t_base);
    CHECK_INT(t_pair_called, 1);
    CHECK_INT(t_victim_called, 0);
    CHECK_INT(t_followup.called, 1);
    CHECK_INT(t_followup.outcome, BR_SUCCESS);
    free(t_followup.body);
    CHECK_INT(branch_call_pending(), 0);
    /* the hung request was given 0.2 s and cancelled: its timeout never
     * produced a callback either (we ran for > 0.3 s) */
    CHECK_INT(t_victim_called, 0);
    free(hang);
    free(ok);
    env_teardown();
}

/* ---- shutdown ------------------------------------------------------------ */

static int t_shutdown_calls;

static void shutdown_cb(void *arg, branch_outcome o, long status, const char *body, size_t len) {
    (void)arg, (void)o, (void)status, (void)body, (void)len;
    t_shutdown_calls++;
    branch_call_shutdown(); /* from inside a callback: the others never report */
    CHECK_INT(branch_call_pending(), 0);
    stop_soon(300);
}

void test_branch_call_shutdown(void) {
    /* shutdown with calls in flight, loop never run */
    if (env_setup() != 0) return;
    char *ok = url_for("/s200");
    branch_request req = {.url = ok, .body = "{}", .body_len = 2, .timeout_s = 3};
    t_victim_called = 0;
    for (int i = 0; i < 5; i++) CHECK(branch_call_start(&req, victim_cb, NULL) != NULL);
    CHECK_INT(branch_call_pending(), 5);
    branch_call_shutdown();
    CHECK_INT(branch_call_pending(), 0);
    CHECK(branch_call_start(&req, victim_cb, NULL) == NULL); /* not initialised */
    free(ok);
    env_teardown();
    CHECK_INT(t_victim_called, 0);

    /* shutdown from inside a callback, with other calls pending */
    if (env_setup() != 0) return;
    ok = url_for("/s200");
    char *hang = url_for("/hang");
    req.url = ok;
    t_shutdown_calls = 0;
    for (int i = 0; i < 3; i++) CHECK(branch_call_start(&req, shutdown_cb, NULL) != NULL);
    req.url = hang;
    CHECK(branch_call_start(&req, shutdown_cb, NULL) != NULL);
    event_base_dispatch(t_base);
    CHECK_INT(t_shutdown_calls, 1);
    free(ok);
    free(hang);
    env_teardown();
}
