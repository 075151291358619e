/* test_branch_queue.c - Limits.MaxInflightCalls in branch_call.c: calls over
 * the limit wait in a FIFO queue and start as running ones finish; none is
 * dropped, a queued call can be cancelled, and the server never sees more
 * than the limit at once. */
#include "branch_call.h"
#include "unit.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

static struct event_base *q_base;
static int q_port, q_active, q_peak, q_served, q_done, q_expect;
static int q_order[16], q_norder;

/* Each request is answered 30 ms later, so calls overlap when allowed to. */
static void q_reply(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    struct evhttp_request *req = arg;
    q_active--;
    q_served++;
    evhttp_send_reply(req, 200, "OK", NULL);
}

static void q_handler(struct evhttp_request *req, void *arg) {
    (void)arg;
    if (++q_active > q_peak) q_peak = q_active;
    struct timeval tv = {0, 30000};
    event_base_once(q_base, -1, EV_TIMEOUT, q_reply, req, &tv);
}

static void q_cb(void *arg, branch_outcome o, long status, const char *body, size_t len) {
    (void)body, (void)len;
    CHECK_INT(o, BR_SUCCESS);
    CHECK_INT(status, 200);
    if (q_norder < 16) q_order[q_norder++] = (int)(intptr_t)arg;
    if (++q_done == q_expect) event_base_loopbreak(q_base);
}

static void q_safety(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    fprintf(stderr, "  branch queue test: safety timer fired\n");
    CHECK(0);
    event_base_loopbreak(q_base);
}

void test_branch_call_inflight_queue(void) {
    q_base = event_base_new();
    struct evhttp *http = evhttp_new(q_base);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
    CHECK(bs != NULL);
    if (!bs) return;
    struct sockaddr_in sin;
    socklen_t slen = sizeof sin;
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &slen);
    q_port = ntohs(sin.sin_port);
    evhttp_set_gencb(http, q_handler, NULL);
    struct event *safety = evtimer_new(q_base, q_safety, NULL);
    struct timeval tv = {10, 0};
    evtimer_add(safety, &tv);
    CHECK_INT(branch_call_init(q_base), 0);
    branch_call_set_max_inflight(2);

    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/q", q_port);
    branch_request r = {.url = url, .timeout_s = 5};
    branch_call *calls[6];
    for (int i = 0; i < 6; i++) calls[i] = branch_call_start(&r, q_cb, (void *)(intptr_t)i);
    for (int i = 0; i < 6; i++) CHECK(calls[i] != NULL);
    CHECK_INT(branch_call_pending(), 6);
    CHECK_INT(branch_call_queued(), 4);
    branch_call_cancel(calls[3]); /* a queued call: gone, no callback */
    CHECK_INT(branch_call_pending(), 5);
    CHECK_INT(branch_call_queued(), 3);
    q_expect = 5;
    event_base_dispatch(q_base);
    CHECK_INT(q_done, 5);
    CHECK_INT(q_served, 5);
    CHECK(q_peak <= 2);
    CHECK_INT(q_peak, 2);
    CHECK_INT(branch_call_pending(), 0);
    CHECK_INT(branch_call_queued(), 0);
    /* queued calls start in order */
    if (q_norder == 5) {
        CHECK_INT(q_order[2], 2);
        CHECK_INT(q_order[3], 4);
        CHECK_INT(q_order[4], 5);
    }
    /* shutdown with calls still queued frees them without callbacks */
    branch_call_set_max_inflight(1);
    q_done = 0;
    for (int i = 0; i < 3; i++) branch_call_start(&r, q_cb, (void *)(intptr_t)i);
    CHECK_INT(branch_call_queued(), 2);
    branch_call_shutdown();
    CHECK_INT(q_done, 0);
    branch_call_set_max_inflight(0);
    event_free(safety);
    evhttp_free(http);
    event_base_free(q_base);
    q_base = NULL;
}
