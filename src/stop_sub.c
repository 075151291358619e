/* stop_sub.c - the stop channel's subscriber (see stop_sub.h). */
#include "stop_sub.h"

#include "engine.h"
#include "log.h"
#include "store_nodes.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <string.h>

#define RECONNECT_S 1

static struct {
    struct event_base *base;
    const dtmd_config *cfg;
    redisAsyncContext *ac;
    struct event *retry;
    sbuf channel;
    int next_seed; /* Redis Cluster: the node to try next */
    int stopping;
} ss;

void stop_sub_channel(sbuf *out, const char *prefix) {
    sb_reset(out);
    sb_puts(out, prefix);
    sb_puts(out, "stop");
}

static void arm_retry(void) {
    if (ss.stopping) return;
    struct timeval tv = {RECONNECT_S, 0};
    evtimer_add(ss.retry, &tv);
}

static void on_message(redisAsyncContext *ac, void *r, void *privdata) {
    (void)ac, (void)privdata;
    redisReply *reply = r;
    if (!reply || ss.stopping) return;
    if (reply->type == REDIS_REPLY_ERROR) {
        log_warn("stop channel: %s", reply->str);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(reply->element[0]->str, "message") != 0 ||
        reply->element[2]->type != REDIS_REPLY_STRING)
        return; /* the subscription's confirmation */
    const char *gid = reply->element[2]->str;
    log_debug("gid %s: a stop was asked for through another process", gid);
    engine_stop_requested(gid);
}

static void connected(const redisAsyncContext *ac, int status) {
    if (status != REDIS_OK) {
        log_warn("stop channel: cannot connect: %s", ac->errstr);
        ss.ac = NULL; /* hiredis frees it after this callback */
        arm_retry();
    }
}

static void disconnected(const redisAsyncContext *ac, int status) {
    (void)status;
    if (!ss.stopping) log_warn("stop channel: connection lost: %s", ac->errstr);
    ss.ac = NULL;
    arm_retry();
}

static void connect_now(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    const char *host = ss.cfg->store_host;
    int port = ss.cfg->store_port;
    if (ss.cfg->nsentinels > 0) {
        /* the master the store follows; a demoted one still gets its
         * replicated messages until this connection moves on */
        if (nodes_sentinel_master(&host, &port) != 0) {
            arm_retry();
            return;
        }
    } else if (ss.cfg->store_nseeds > 0) {
        const dtmd_addr *a = &ss.cfg->store_seeds[ss.next_seed++ % ss.cfg->store_nseeds];
        host = a->host;
        port = a->port;
    }
    redisAsyncContext *ac = redisAsyncConnect(host, port);
    if (!ac || ac->err) {
        log_warn("stop channel: cannot connect to %s:%d: %s", host, port,
                 ac ? ac->errstr : "out of memory");
        if (ac) redisAsyncFree(ac);
        arm_retry();
        return;
    }
    ss.ac = ac;
    redisLibeventAttach(ac, ss.base);
    redisAsyncSetConnectCallback(ac, connected);
    redisAsyncSetDisconnectCallback(ac, disconnected);
    if (ss.cfg->store_password[0]) {
        if (ss.cfg->store_user[0])
            redisAsyncCommand(ac, NULL, NULL, "AUTH %s %s", ss.cfg->store_user,
                              ss.cfg->store_password);
        else
            redisAsyncCommand(ac, NULL, NULL, "AUTH %s", ss.cfg->store_password);
    }
    redisAsyncCommand(ac, on_message, NULL, "SUBSCRIBE %b", ss.channel.ptr, ss.channel.len);
}

int stop_sub_init(struct event_base *base, const dtmd_config *cfg) {
    memset(&ss, 0, sizeof ss);
    ss.base = base;
    ss.cfg = cfg;
    sb_init(&ss.channel);
    stop_sub_channel(&ss.channel, cfg->redis_prefix);
    ss.retry = evtimer_new(base, connect_now, NULL);
    if (!ss.retry) return -1;
    connect_now(-1, 0, NULL);
    return 0;
}

void stop_sub_shutdown(void) {
    ss.stopping = 1;
    if (ss.ac) redisAsyncFree(ss.ac); /* its callbacks see stopping */
    ss.ac = NULL;
    if (ss.retry) event_free(ss.retry);
    ss.retry = NULL;
    sb_free(&ss.channel);
}
