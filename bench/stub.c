/* bench/stub.c - the business service for the benchmark, on libevent evhttp.
 *
 * Answers every request with 200 {"dtm_result":"SUCCESS"} at once (HTTP/1.1
 * keep-alive, one reused output buffer), so dtmd's branch calls always
 * succeed and the stub costs a fraction of what dtmd does per call: it is
 * never the bottleneck. GET /__count answers the number of requests served
 * so far (the runner reads it to count branch calls). SIGINT/SIGTERM stop it.
 *
 * usage: stub PORT   (listens on 127.0.0.1) */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char BODY[] = "{\"dtm_result\":\"SUCCESS\"}";
static unsigned long long served;
static struct evbuffer *out;

static void handle(struct evhttp_request *req, void *arg) {
    (void)arg;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    const char *uri = evhttp_request_get_uri(req);
    if (uri && strcmp(uri, "/__count") == 0) {
        evhttp_add_header(h, "Content-Type", "text/plain");
        evbuffer_add_printf(out, "%llu", served);
    } else {
        served++;
        evhttp_add_header(h, "Content-Type", "application/json");
        evbuffer_add_reference(out, BODY, sizeof BODY - 1, NULL, NULL);
    }
    evhttp_send_reply(req, 200, "OK", out); /* drains out */
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new();
    struct evhttp *http = evhttp_new(base);
    out = evbuffer_new();
    if (!base || !http || !out) return 1;
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                         EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(http, handle, NULL);
    struct evhttp_bound_socket *s =
        evhttp_bind_socket_with_handle(http, "127.0.0.1", (ev_uint16_t)atoi(argv[1]));
    if (!s) {
        fprintf(stderr, "stub: cannot listen on 127.0.0.1:%s\n", argv[1]);
        return 1;
    }
    struct event *sint = evsignal_new(base, SIGINT, on_signal, base);
    struct event *sterm = evsignal_new(base, SIGTERM, on_signal, base);
    event_add(sint, NULL);
    event_add(sterm, NULL);
    event_base_dispatch(base);
    event_free(sint);
    event_free(sterm);
    evbuffer_free(out);
    evhttp_free(http);
    event_base_free(base);
    return 0;
}
