/* store_sentinel.c - the Redis master named by Redis Sentinel (see
 * store_sentinel.h).
 *
 * Why one connection both asks and listens: SENTINEL get-master-addr-by-name
 * answers once, +switch-master tells of every later failover; sent
 * back to back on one connection, nothing can happen between the answer and
 * the subscription that the subscription would not report. A connection in
 * subscribed mode takes no other command (RESP2), so asking again means a
 * new connection: to the next sentinel, as the one asked may be the one that
 * is cut off. A sentinel that does not know the master, or answers nonsense,
 * is also left for the next one. */
#include "store_sentinel.h"

#include "log.h"
#include "util.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_FIRST 0.1 /* seconds before trying the next sentinel, doubled per failure ... */
#define RETRY_MAX 1.0   /* ... up to this */
#define REASK_MIN 1.0   /* seconds between two re-asks caused by master connection errors */

static struct {
    struct event_base *base;
    const dtmd_config *cfg;
    sentinel_master_fn *fn;
    int cur;               /* the sentinel asked (index into cfg->sentinels) */
    redisAsyncContext *ac; /* connection to it, NULL while none */
    struct event *retry_ev;
    double retry_delay;
    double asked_at; /* monotonic seconds of the last connection made */
    int stopping;
} sn;

static void watch_connect(void);

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void arm_retry(double secs) {
    if (sn.stopping || evtimer_pending(sn.retry_ev, NULL)) return;
    struct timeval tv = {(time_t)secs, (suseconds_t)((secs - (double)(time_t)secs) * 1e6)};
    evtimer_add(sn.retry_ev, &tv);
}

/* Give up on the current sentinel: the next one, after a back-off. */
static void next_sentinel(void) {
    sn.cur = (sn.cur + 1) % sn.cfg->nsentinels;
    arm_retry(sn.retry_delay);
    sn.retry_delay = sn.retry_delay * 2 > RETRY_MAX ? RETRY_MAX : sn.retry_delay * 2;
}

/* Close the connection now (or, from its own callback, once that returns);
 * its disconnect callback then moves on to the next sentinel. */
static void watch_drop(void) {
    if (!sn.ac) return;
    redisAsyncContext *ac = sn.ac;
    sn.ac = NULL;
    ac->data = NULL;
    redisAsyncFree(ac);
    next_sentinel();
}

static const dtmd_addr *cur_addr(void) {
    return &sn.cfg->sentinels[sn.cur];
}

static void auth_cb(redisAsyncContext *ac, void *replyp, void *privdata) {
    (void)privdata;
    redisReply *reply = replyp;
    if (reply && reply->type == REDIS_REPLY_ERROR && ac == sn.ac) {
        log_error("store: sentinel %s:%d: AUTH failed: %s", cur_addr()->host, cur_addr()->port,
                  reply->str);
        watch_drop();
    }
}

/* Parse a port number from n bytes; 0 if it is not one. */
static int parse_port(const char *s, size_t n) {
    if (n == 0 || n > 5) return 0;
    int p = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        p = p * 10 + (s[i] - '0');
    }
    return p >= 1 && p <= 65535 ? p : 0;
}

static void master_is(const char *host, size_t hlen, int port) {
    char h[256];
    if (hlen == 0 || hlen >= sizeof h || !port) return;
    memcpy(h, host, hlen);
    h[hlen] = '\0';
    sn.fn(h, port);
}

static void query_cb(redisAsyncContext *ac, void *replyp, void *privdata) {
    (void)privdata;
    redisReply *reply = replyp;
    if (!reply || ac != sn.ac) return; /* connection gone: its disconnect handles it */
    const dtmd_addr *a = cur_addr();
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING &&
        parse_port(reply->element[1]->str, reply->element[1]->len)) {
        sn.retry_delay = RETRY_FIRST;
        master_is(reply->element[0]->str, reply->element[0]->len,
                  parse_port(reply->element[1]->str, reply->element[1]->len));
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR)
        log_warn("store: sentinel %s:%d: %s", a->host, a->port, reply->str);
    else
        log_warn("store: sentinel %s:%d does not know master '%s'", a->host, a->port,
                 sn.cfg->sentinel_master);
    watch_drop();
}

/* +switch-master "<name> <old ip> <old port> <new ip> <new port>". */
static void switch_cb(redisAsyncContext *ac, void *replyp, void *privdata) {
    (void)privdata;
    redisReply *reply = replyp;
    if (!reply || ac != sn.ac || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
    redisReply *kind = reply->element[0], *payload = reply->element[2];
    if (kind->type != REDIS_REPLY_STRING || strcmp(kind->str, "message") != 0 ||
        payload->type != REDIS_REPLY_STRING)
        return;
    const char *f[5];
    size_t fl[5];
    int nf = 0;
    const char *p = payload->str, *end = payload->str + payload->len;
    while (p < end && nf < 5) {
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        const char *e = sp ? sp : end;
        f[nf] = p;
        fl[nf++] = (size_t)(e - p);
        p = sp ? sp + 1 : end;
    }
    const char *name = sn.cfg->sentinel_master;
    if (nf != 5 || fl[0] != strlen(name) || memcmp(f[0], name, fl[0]) != 0) return;
    log_info("store: sentinel %s:%d: +switch-master %.*s", cur_addr()->host, cur_addr()->port,
             (int)payload->len, payload->str);
    master_is(f[3], fl[3], parse_port(f[4], fl[4]));
}

static void connect_cb(const redisAsyncContext *ac, int status) {
    if (ac->data == NULL) return; /* dropped meanwhile */
    if (status != REDIS_OK) {
        log_warn("store: cannot connect to sentinel %s:%d: %s", cur_addr()->host, cur_addr()->port,
                 ac->errstr);
        sn.ac = NULL; /* hiredis frees it after this callback */
        next_sentinel();
    }
}

static void disconnect_cb(const redisAsyncContext *ac, int status) {
    if (ac->data == NULL || sn.stopping) return; /* dropped on purpose */
    log_warn("store: sentinel %s:%d connection lost%s%s", cur_addr()->host, cur_addr()->port,
             status == REDIS_OK ? "" : ": ", status == REDIS_OK ? "" : ac->errstr);
    sn.ac = NULL;
    next_sentinel();
}

static void watch_connect(void) {
    if (sn.stopping || sn.ac) return;
    const dtmd_addr *a = cur_addr();
    sn.asked_at = mono_now();
    redisAsyncContext *ac = redisAsyncConnect(a->host, a->port);
    if (!ac || ac->err) {
        log_warn("store: cannot connect to sentinel %s:%d: %s", a->host, a->port,
                 ac ? ac->errstr : "out of memory");
        if (ac) redisAsyncFree(ac);
        next_sentinel();
        return;
    }
    ac->data = &sn; /* NULL once dropped on purpose */
    sn.ac = ac;
    redisLibeventAttach(ac, sn.base);
    redisAsyncSetConnectCallback(ac, connect_cb);
    redisAsyncSetDisconnectCallback(ac, disconnect_cb);
    if (sn.cfg->sentinel_password[0])
        redisAsyncCommand(ac, auth_cb, NULL, "AUTH %s", sn.cfg->sentinel_password);
    redisAsyncCommand(ac, query_cb, NULL, "SENTINEL get-master-addr-by-name %s",
                      sn.cfg->sentinel_master);
    redisAsyncCommand(ac, switch_cb, NULL, "SUBSCRIBE +switch-master");
}

static void retry_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    if (sn.ac) { /* a re-ask: a fresh connection to the next sentinel */
        redisAsyncContext *ac = sn.ac;
        sn.ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac);
        sn.cur = (sn.cur + 1) % sn.cfg->nsentinels;
    }
    watch_connect();
}

void sentinel_reask(void) {
    if (sn.stopping || !sn.cfg || evtimer_pending(sn.retry_ev, NULL)) return;
    double wait = sn.asked_at + REASK_MIN - mono_now();
    if (wait < 0) wait = 0;
    arm_retry(wait);
}

void sentinel_init(struct event_base *base, const dtmd_config *cfg, sentinel_master_fn *fn) {
    memset(&sn, 0, sizeof sn);
    sn.base = base;
    sn.cfg = cfg;
    sn.fn = fn;
    sn.retry_delay = RETRY_FIRST;
    sn.retry_ev = evtimer_new(base, retry_cb, NULL);
    log_info("store: asking %d sentinel(s) for master '%s'", cfg->nsentinels, cfg->sentinel_master);
    watch_connect();
}

void sentinel_shutdown(void) {
    if (!sn.cfg) return;
    sn.stopping = 1;
    if (sn.ac) {
        redisAsyncContext *ac = sn.ac;
        sn.ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    if (sn.retry_ev) event_free(sn.retry_ev);
    sn.retry_ev = NULL;
    sn.cfg = NULL;
}
