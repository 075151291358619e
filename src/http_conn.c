/* http_conn.c - the API's client connections: Limits.MaxConnections,
 * Limits.CloseIdleAtLimit, and running out of file descriptors.
 *
 * Why a module of its own: evhttp knows requests, not connections, and
 * libevent 2.1 offers no connection limit; counting connections takes
 * libevent's lock callbacks (explained below), a table from bufferevent to
 * connection, and the listener paused and resumed. None of it concerns what
 * a request asks, which is http_api.c's. */
#include "http_conn.h"

#include "log.h"
#include "metrics.h"
#include "util.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

static struct {
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
} hc;

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
 * base exists (http_conn_prepare). */

typedef struct conn_lock {
    int is_conn; /* the lock of a connection's bufferevent */
    /* with Limits.CloseIdleAtLimit: the connection, in accept order */
    struct conn_lock *prev, *next;
    struct bufferevent *bev;
    double last_active; /* accepted, or a request on it started or was answered */
    int closing;        /* shut down to make room; counted in hc.nclosing */
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
void http_conn_touch(struct evhttp_request *req) {
    if (!hc.close_idle) return;
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
    hc.nconns--;
    if (hc.paused && (hc.nconns < hc.max_conns || (hc.close_idle && hc.nclosing < CLOSING_MAX))) {
        hc.paused = 0;
        if (hc.listener && !hc.accept_backoff) evconnlistener_enable(hc.listener);
    }
}

/* ---- descriptor exhaustion --------------------------------------------- */

/* Descriptors dtmd needs besides client connections and branch calls: Redis
 * connections, the listener, log files, the event loop's own, curl's. */
#define FD_RESERVE 64

void http_conn_fit_fd_limit(dtmd_config *cfg) {
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
    hc.accept_backoff = 0;
    if (hc.listener && !hc.paused) evconnlistener_enable(hc.listener);
}

/* accept() failed (not EAGAIN/EINTR, which libevent retries itself). With
 * no descriptor left (EMFILE, ENFILE) or no memory, the pending connection
 * stays in the backlog and the listener would fire again at once: pause it
 * for a moment instead of spinning, and log once a second with a count. */
static void accept_error_cb(struct evconnlistener *l, void *arg) {
    (void)arg;
    int err = EVUTIL_SOCKET_ERROR();
    hc.accept_errs++;
    time_t now = time(NULL);
    if (now != hc.accept_err_sec) {
        log_warn("http: accept failed: %s (%ld time(s) since the last such line); pausing new "
                 "connections for 100 ms",
                 evutil_socket_error_to_string(err), hc.accept_errs);
        hc.accept_err_sec = now;
        hc.accept_errs = 0;
    }
    if (!hc.accept_retry) return;
    evconnlistener_disable(l);
    hc.accept_backoff = 1;
    struct timeval tv = {0, 100000};
    evtimer_add(hc.accept_retry, &tv);
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
        if (l->closing) hc.nclosing--;
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
    hc.nclosing++;
    log_debug("http: connection limit reached, closed the connection idle for %.1f s",
              metrics_now() - best->last_active);
    return 1;
}

static int lock_nop(unsigned mode, void *lock) {
    (void)mode, (void)lock;
    return 0;
}

void http_conn_prepare(const dtmd_config *cfg) {
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
    ++hc.nconns;
    if (hc.close_idle && l) {
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
        int live = hc.nconns - hc.nclosing;
        if ((live > hc.max_conns && close_longest_idle(l, 0)) ||
            (live == hc.max_conns && close_longest_idle(l, 1))) {
            /* A shut-down connection keeps its descriptor until the loop sees
             * it close: stop accepting while many are on their way out, or a
             * burst of accepts runs out of descriptors (EMFILE). */
            if (hc.nclosing >= CLOSING_MAX && !hc.paused && hc.listener) {
                evconnlistener_disable(hc.listener);
                hc.paused = 1;
            }
            return bev;
        }
    }
    if (hc.nconns - hc.nclosing >= hc.max_conns && !hc.paused && hc.listener) {
        /* evconnlistener's accept loop checks this after each callback */
        evconnlistener_disable(hc.listener);
        hc.paused = 1;
        time_t now = time(NULL);
        if (now - hc.last_warn >= 60) {
            hc.last_warn = now;
            log_warn("http: %d client connections open (Limits.MaxConnections); new ones "
                     "wait until one closes",
                     hc.nconns);
        }
    }
    return bev;
}

void http_conn_start(struct event_base *base, struct evhttp *http, struct evconnlistener *listener,
                     const dtmd_config *cfg) {
    hc.max_conns = cfg->max_connections;
    hc.close_idle = cfg->close_idle_at_limit && cfg->max_connections > 0;
    hc.nclosing = 0;
    hc.nconns = 0;
    hc.paused = 0;
    hc.listener = listener;
    hc.accept_backoff = 0;
    hc.accept_retry = evtimer_new(base, accept_retry_cb, NULL);
    evconnlistener_set_error_cb(hc.listener, accept_error_cb);
    if (hc.max_conns > 0) evhttp_set_bevcb(http, conn_bev_new, NULL);
}

/* The listener goes with evhttp; connections freed afterwards (their
 * finalizers may run as late as event_base_free) must not touch it. */
void http_conn_stop(void) {
    hc.listener = NULL;
    if (hc.accept_retry) event_free(hc.accept_retry);
    hc.accept_retry = NULL;
}
