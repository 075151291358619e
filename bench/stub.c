/* bench/stub.c - the business service for the benchmark, on libevent.
 *
 * Answers every request with 200 {"dtm_result":"SUCCESS"} at once, HTTP/1.1
 * keep-alive, so dtmd's branch calls always succeed. GET /__count answers
 * the number of requests served so far (the runner reads it to count branch
 * calls). SIGINT/SIGTERM stop it.
 *
 * Why not evhttp: the stub shares the benchmark machine's two cores with
 * dtmd, Redis and wrk, so whatever it spends is taken from dtmd. On evhttp
 * it cost about 18 us of CPU per request (a third of a core in the saga
 * workload): per request evhttp allocates a request and its header lists,
 * parses every header, and switches the socket's epoll interest four times.
 * Here a connection is one persistent read event and a fixed buffer: a read
 * takes every complete request in it, the answers go out in one write, and
 * the only header looked at is Content-Length (to find the next request).
 * That is all a keep-alive client of this stub needs; anything else it does
 * not understand (a chunked body, an oversized header) closes the
 * connection with a 400.
 *
 * usage: stub PORT   (listens on 127.0.0.1) */
#include <event2/event.h>
#include <event2/listener.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define IN_CAP 16384  /* a request's head must fit; bodies may be larger */
#define OUT_CAP 16384 /* answers of one read, pending a slow reader */

static const char OK_REPLY[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: application/json\r\n"
                               "Content-Length: 24\r\n"
                               "\r\n"
                               "{\"dtm_result\":\"SUCCESS\"}";
static const char BAD_REPLY[] = "HTTP/1.1 400 Bad Request\r\n"
                                "Content-Length: 0\r\n"
                                "Connection: close\r\n"
                                "\r\n";

static unsigned long long served;

typedef struct conn {
    evutil_socket_t fd;
    struct event *ev;
    size_t in_len;   /* bytes in in[] */
    size_t skip;     /* body bytes still to drop before the next request */
    size_t out_len;  /* answers not yet written */
    size_t out_off;  /* of which written */
    int close_after; /* close once out[] is written */
    char in[IN_CAP];
    char out[OUT_CAP];
} conn;

static void conn_free(conn *c) {
    event_free(c->ev);
    close(c->fd);
    free(c);
}

static void conn_cb(evutil_socket_t fd, short what, void *arg);

static void watch(conn *c, short what) {
    event_del(c->ev);
    event_assign(c->ev, event_get_base(c->ev), c->fd, what | EV_PERSIST, conn_cb, c);
    event_add(c->ev, NULL);
}

static void out_add(conn *c, const char *s, size_t n) {
    if (c->out_len + n > OUT_CAP) { /* the client does not read: give up on it */
        c->close_after = 1;
        return;
    }
    memcpy(c->out + c->out_len, s, n);
    c->out_len += n;
}

/* The value of header name in the head [h, end), or NULL. */
static const char *header(const char *h, const char *end, const char *name) {
    size_t n = strlen(name);
    for (const char *p = memchr(h, '\n', (size_t)(end - h)); p && p + 1 < end;
         p = memchr(p + 1, '\n', (size_t)(end - p - 1))) {
        const char *line = p + 1;
        if ((size_t)(end - line) > n && line[n] == ':' && strncasecmp(line, name, n) == 0) {
            line += n + 1;
            while (line < end && (*line == ' ' || *line == '\t')) line++;
            return line;
        }
    }
    return NULL;
}

/* Answer every complete request in c->in; keep a partial one. */
static void take_requests(conn *c) {
    char *p = c->in, *end = c->in + c->in_len;
    while (p < end && !c->close_after) {
        if (c->skip) { /* the rest of a body */
            size_t n = (size_t)(end - p) < c->skip ? (size_t)(end - p) : c->skip;
            p += n;
            c->skip -= n;
            continue;
        }
        char *head_end = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!head_end) break;
        head_end += 4;
        const char *v = header(p, head_end, "Transfer-Encoding");
        if (v && strncasecmp(v, "identity", 8) != 0) {
            out_add(c, BAD_REPLY, sizeof BAD_REPLY - 1);
            c->close_after = 1;
            break;
        }
        v = header(p, head_end, "Content-Length");
        c->skip = v ? strtoull(v, NULL, 10) : 0;
        v = header(p, head_end, "Connection");
        if (v && strncasecmp(v, "close", 5) == 0) c->close_after = 1;
        if (strncmp(p, "GET /__count ", 13) == 0) {
            char body[32], msg[160];
            int bn = snprintf(body, sizeof body, "%llu", served);
            int n = snprintf(msg, sizeof msg,
                             "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                             "Content-Length: %d\r\n\r\n%s",
                             bn, body);
            out_add(c, msg, (size_t)n);
        } else {
            served++;
            out_add(c, OK_REPLY, sizeof OK_REPLY - 1);
        }
        p = head_end;
    }
    c->in_len = (size_t)(end - p);
    memmove(c->in, p, c->in_len);
}

/* Write what is pending; 0 = all written (or will be, EV_WRITE is on), -1 =
 * the connection is done. */
static int flush(conn *c) {
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* the client reads slowly: wait until it can take more, and
             * read nothing more from it meanwhile */
            watch(c, EV_WRITE);
            return 0;
        }
        if (n <= 0) return -1;
        c->out_off += (size_t)n;
    }
    c->out_len = c->out_off = 0;
    return c->close_after ? -1 : 0;
}

static void conn_cb(evutil_socket_t fd, short what, void *arg) {
    conn *c = arg;
    if (what & EV_WRITE) {
        if (flush(c) < 0) {
            conn_free(c);
            return;
        }
        if (c->out_len == 0) watch(c, EV_READ); /* all written: back to reading */
        return;
    }
    ssize_t n = read(fd, c->in + c->in_len, IN_CAP - c->in_len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        conn_free(c);
        return;
    }
    c->in_len += (size_t)n;
    take_requests(c);
    if (c->in_len == IN_CAP) { /* a head that does not fit */
        out_add(c, BAD_REPLY, sizeof BAD_REPLY - 1);
        c->close_after = 1;
    }
    if (flush(c) < 0) conn_free(c);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg) {
    (void)l, (void)sa, (void)len;
    struct event_base *base = arg;
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->ev = event_new(base, fd, EV_READ | EV_PERSIST, conn_cb, c);
    if (!c->ev || event_add(c->ev, NULL) != 0) {
        if (c->ev) event_free(c->ev);
        close(fd);
        free(c);
    }
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
    if (!base) return 1;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct evconnlistener *l = evconnlistener_new_bind(
        base, accept_cb, base, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
        1024, (struct sockaddr *)&sin, sizeof sin);
    if (!l) {
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
    evconnlistener_free(l);
    event_base_free(base);
    return 0;
}
