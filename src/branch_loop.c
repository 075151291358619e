/* branch_loop.c - libcurl's multi interface driven by the libevent loop.
 *
 * Why: dtmd is one thread around one event_base, so curl must never block
 * or poll on its own. Through CURLMOPT_SOCKETFUNCTION and
 * CURLMOPT_TIMERFUNCTION curl says which sockets to watch and when to wake
 * it; this module turns that into libevent events and feeds readiness back
 * with curl_multi_socket_action (the pattern of libcurl's hiperfifo.c /
 * multi-event.c examples). It knows nothing of calls: after curl made
 * progress it tells its owner (branch_call.c), which collects finished
 * transfers. */
#include "branch_loop.h"

#include "util.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* One socket curl uses, found by its fd (g_fds) and attached to curl's
 * socket with curl_multi_assign while curl watches it.
 *
 * A keep-alive connection's event stays registered between calls: curl says
 * CURL_POLL_REMOVE when a call ends and asks for the same socket again at
 * the next call, and deleting and re-adding the event cost two epoll_ctl
 * calls per branch call. Only for the connections curl opens through
 * branch_loop_opensocket, because it closes them through
 * branch_loop_closesocket, where the event goes; any other socket (a
 * resolver's) is let go at once. An event
 * that fires while curl does not watch its socket (the peer closed an idle
 * connection) is deleted then. */
struct sock_ctx {
    curl_socket_t fd;
    struct event *ev; /* NULL until first watched */
    short kind;       /* the events ev is registered for; 0 = not registered */
    int watched;      /* curl asked for this socket and did not remove it */
    int conn;         /* opened by branch_loop_opensocket: closed by branch_loop_closesocket */
};

static struct event_base *g_base;
static CURLM *g_multi;
static struct event *g_timer;
static struct sock_ctx **g_fds; /* fd -> its sock_ctx, NULL if none */
static int g_nfds;              /* length of g_fds */
static void (*g_progress)(void);

/* libevent says a socket is ready: tell curl if it watches it; else the
 * lingering event of an idle connection fired (its peer closed it or sent
 * something): stop watching until curl asks again. */
static void sock_event_cb(evutil_socket_t fd, short what, void *arg) {
    struct sock_ctx *s = arg;
    if (!s->watched) {
        event_del(s->ev);
        s->kind = 0;
        return;
    }
    int action =
        ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running = 0;
    curl_multi_socket_action(g_multi, (curl_socket_t)fd, action, &running);
    g_progress();
}

/* curl's timeout expired (or curl asked to be kicked immediately). */
static void timer_event_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    (void)arg;
    int running = 0;
    curl_multi_socket_action(g_multi, CURL_SOCKET_TIMEOUT, 0, &running);
    g_progress();
}

static struct sock_ctx *sock_find(curl_socket_t fd) {
    return fd >= 0 && fd < g_nfds ? g_fds[fd] : NULL;
}

static struct sock_ctx *sock_new(curl_socket_t fd, int conn) {
    if (fd >= g_nfds) {
        int n = g_nfds ? g_nfds : 64;
        while (n <= fd) n *= 2;
        g_fds = xrealloc(g_fds, (size_t)n * sizeof *g_fds);
        memset(g_fds + g_nfds, 0, (size_t)(n - g_nfds) * sizeof *g_fds);
        g_nfds = n;
    }
    struct sock_ctx *s = xcalloc(1, sizeof *s);
    s->fd = fd;
    s->conn = conn;
    g_fds[fd] = s;
    return s;
}

static void sock_free(struct sock_ctx *s) {
    g_fds[s->fd] = NULL;
    if (s->ev) event_free(s->ev);
    free(s);
}

/* CURLOPT_OPENSOCKETFUNCTION: the socket of a new connection, known from
 * now on so that its event may outlive a call (struct sock_ctx). */
curl_socket_t branch_loop_opensocket(void *clientp, curlsocktype purpose,
                                     struct curl_sockaddr *addr) {
    (void)clientp;
    (void)purpose;
    curl_socket_t fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    if (fd != CURL_SOCKET_BAD) {
        struct sock_ctx *old = sock_find(fd);
        if (old) sock_free(old); /* a socket closed without telling us */
        sock_new(fd, 1);
    }
    return fd;
}

/* CURLOPT_CLOSESOCKETFUNCTION: curl closes a connection: its event goes
 * first, while the fd is still valid and not yet reused. */
int branch_loop_closesocket(void *clientp, curl_socket_t fd) {
    (void)clientp;
    struct sock_ctx *s = sock_find(fd);
    if (s) sock_free(s);
    return close(fd);
}

/* CURLMOPT_SOCKETFUNCTION: start, change or stop watching a socket. */
static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
    (void)easy;
    (void)userp;
    struct sock_ctx *s = socketp ? socketp : sock_find(fd);
    if (what == CURL_POLL_REMOVE) {
        if (!s) return 0;
        s->watched = 0;
        if (!s->conn) sock_free(s);
        /* else the event stays registered for the connection's next call */
        return 0;
    }
    short kind = EV_PERSIST;
    if (what & CURL_POLL_IN) kind |= EV_READ;
    if (what & CURL_POLL_OUT) kind |= EV_WRITE;
    if (!s) s = sock_new(fd, 0);
    if (!socketp) curl_multi_assign(g_multi, fd, s);
    s->watched = 1;
    if (s->kind == kind) return 0; /* already registered for exactly this */
    if (!s->ev) {
        s->ev = event_new(g_base, fd, kind, sock_event_cb, s);
        if (!s->ev) return -1;
    } else {
        if (s->kind) event_del(s->ev);
        event_assign(s->ev, g_base, fd, kind, sock_event_cb, s);
    }
    s->kind = kind;
    event_add(s->ev, NULL);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer, 0 means "call me soon"
 * (never call socket_action from inside this callback). */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp) {
    (void)multi;
    (void)userp;
    if (timeout_ms < 0) {
        evtimer_del(g_timer);
    } else {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        evtimer_add(g_timer, &tv);
    }
    return 0;
}

int branch_loop_init(struct event_base *base, CURLM *multi, void (*progress)(void)) {
    g_timer = evtimer_new(base, timer_event_cb, NULL);
    if (!g_timer) return -1;
    g_base = base;
    g_multi = multi;
    g_progress = progress;
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    return 0;
}

void branch_loop_shutdown(void) {
    /* curl closed its connections (branch_loop_closesocket); free what is left */
    for (int fd = 0; fd < g_nfds; fd++)
        if (g_fds[fd]) sock_free(g_fds[fd]);
    free(g_fds);
    g_fds = NULL;
    g_nfds = 0;
    if (g_timer) event_free(g_timer);
    g_timer = NULL;
    g_multi = NULL;
    g_base = NULL;
}
