/* store.c - the store's requests: routing, script calls, redirections.
 *
 * Why a wrapper at all: hiredis gives us connections, but dtmd needs things
 * around them that every caller would otherwise repeat: failing fast (and
 * asynchronously) while Redis is down, calling scripts by SHA with a
 * transparent fallback when Redis forgot them, and, on a Redis Cluster,
 * sending each command to the master of its first key's hash slot and
 * following MOVED/ASK when a slot has moved. Requests keep their arguments
 * until answered for those retries, and each is answered by its deadline
 * (Store.CommandTimeout) whatever Redis does. The connections themselves
 * (reconnect, AUTH, SCRIPT LOAD, the cluster's slot map) are store_nodes.c's,
 * the WAIT behind writes (Store.WaitReplicas) store_wait.c's, and a
 * command's argument list rargs.c's. */
#include "store.h"

#include "store_int.h"
#include "store_wait.h"

#include "cluster_slot.h"
#include "log.h"
#include "metrics.h"
#include "lua_scripts.h"
#include "store_nodes.h"
#include "util.h"

#include <event2/event.h>
#include <hiredis/async.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_REDIRECTS 5    /* MOVED/ASK followed per command */
#define PARK_TICK 0.05     /* seconds between tries to send the waiting ones */
#define SWEEP_TICK 0.1     /* seconds between looks for commands past Store.CommandTimeout */
#define MAX_TRYAGAIN 10    /* TRYAGAIN (slot mid-migration) retries per command ... */
#define TRYAGAIN_DELAY 0.1 /* ... this many seconds apart */

static struct {
    struct event_base *base;
    store_req *delayed; /* waiting to be sent again after TRYAGAIN */
    struct event *delayed_ev;
    store_req *parked, *parked_tail; /* waiting for their node to (re)connect, FIFO */
    int *parked_per_node;            /* [0]: no node known yet, [1 + node_index]: that node */
    int parked_per_node_cap;
    int park_max; /* Store.MaxQueued: parked commands per node, at most */
    struct event *park_ev;
    store_req *sent; /* sent and unanswered, newest first */
    struct event *sweep_ev;
    double cmd_timeout;  /* Store.CommandTimeout, seconds */
    int wait_replicas;   /* Store.WaitReplicas, 0 = no WAIT */
    int wait_timeout_ms; /* Store.WaitTimeout */
    int stopping;
} st;

int store_err_unavailable(const char *err) {
    return err && strncmp(err, UNAVAILABLE, strlen(UNAVAILABLE)) == 0;
}

int store_is_up(void) {
    return nodes_all_up();
}

static void sent_link(store_req *r) {
    if (r->linked) return;
    r->linked = 1;
    r->sent_prev = NULL;
    r->sent_next = st.sent;
    if (st.sent) st.sent->sent_prev = r;
    st.sent = r;
}

static void sent_unlink(store_req *r) {
    if (!r->linked) return;
    r->linked = 0;
    if (r->sent_prev)
        r->sent_prev->sent_next = r->sent_next;
    else
        st.sent = r->sent_next;
    if (r->sent_next) r->sent_next->sent_prev = r->sent_prev;
    r->sent_prev = r->sent_next = NULL;
}

/* Everything r owns except r itself (which hiredis may still hold). */
static void req_release(store_req *r) {
    sent_unlink(r);
    ticket_detach(r);
    if (r->held) freeReplyObject(r->held);
    r->held = NULL;
    ra_free(&r->args);
}

static void req_free(store_req *r) {
    req_release(r);
    free(r);
}

/* Answer r with an error now (from a reply callback, so not re-entrant). */
static void req_fail(store_req *r, const char *err) {
    r->cb(r->arg, NULL, err);
    req_free(r);
}

/* Deferred failure: callers must never be called back re-entrantly. */
static void fail_later_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    req_fail(arg, UNAVAILABLE ": redis is not reachable");
}

static void fail_later(store_req *r) {
    if (event_base_once(st.base, -1, EV_TIMEOUT, fail_later_cb, r, NULL) != 0)
        req_fail(r, UNAVAILABLE);
}

static void reply_cb(redisAsyncContext *ac, void *replyp, void *privdata);

/* The parked-command count of r's node (its slot's owner when r was last
 * routed; one shared count while no owner is known). */
static int *parked_count(const store_req *r) {
    int i = r->node ? 1 + node_index(r->node) : 0;
    if (i >= st.parked_per_node_cap) {
        int cap = i + 8;
        st.parked_per_node = xrealloc(st.parked_per_node, (size_t)cap * sizeof(int));
        memset(st.parked_per_node + st.parked_per_node_cap, 0,
               (size_t)(cap - st.parked_per_node_cap) * sizeof(int));
        st.parked_per_node_cap = cap;
    }
    return &st.parked_per_node[i];
}

/* r cannot be sent now: its node is being (re)connected, or (cluster) its
 * slot's owner is not known yet. Rather than fail at once, it waits until
 * its deadline (Store.CommandTimeout after it was made) for a connection,
 * so a Redis restart or a failover that takes a second is not a burst of
 * 503s, re-routed every PARK_TICK (the slot may have moved to a promoted
 * replica). Bounded per node (Store.MaxQueued), so the backlog of one dead
 * master cannot turn away the commands that wait for another one that is
 * only reconnecting. */
static void park(store_req *r) {
    sent_unlink(r);
    int *count = parked_count(r);
    if (st.stopping || r->nowait || *count >= st.park_max || metrics_now() >= r->deadline) {
        fail_later(r);
        return;
    }
    (*count)++;
    r->next = NULL;
    if (st.parked_tail)
        st.parked_tail->next = r;
    else
        st.parked = r;
    st.parked_tail = r;
    if (!evtimer_pending(st.park_ev, NULL)) {
        struct timeval tv = {0, (suseconds_t)(PARK_TICK * 1e6)};
        evtimer_add(st.park_ev, &tv);
    }
}

/* Send r to n (NULL: nowhere to send yet). A redirected or retried command
 * may be queued behind a connection still being set up (queue); a first
 * attempt needs a connected node, and otherwise waits in park(). Once sent,
 * r is in st.sent (its deadline watched) and hiredis holds it. */
static void send_to(store_req *r, store_node *n, int asking, int queue) {
    static const char *asking_argv[] = {"ASKING"};
    static const size_t asking_len[] = {6};
    r->node = n;
    r->asking = asking;
    ticket_detach(r);
    int ok = n != NULL;
    if (ok && asking) /* pipelined: ASKING applies to the very next command */
        ok = node_send(n, queue, NULL, NULL, 1, asking_argv, asking_len) == REDIS_OK;
    if (ok)
        ok = node_send(n, queue, reply_cb, r, r->args.argc, (const char **)r->args.argv,
                       r->args.lens) == REDIS_OK;
    if (!ok) {
        park(r);
        return;
    }
    r->in_hiredis = 1;
    sent_link(r);
    if (r->wait) store_wait_join(r, n);
}

static void park_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    store_req *list = st.parked;
    st.parked = st.parked_tail = NULL;
    if (st.parked_per_node)
        memset(st.parked_per_node, 0, (size_t)st.parked_per_node_cap * sizeof(int));
    while (list) {
        store_req *r = list;
        list = r->next;
        r->next = NULL;
        /* Routed afresh: the slot's master may have changed meanwhile. */
        send_to(r, nodes_for_slot(r->slot), 0, 0);
    }
}

static void delayed_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    store_req *list = st.delayed;
    st.delayed = NULL;
    while (list) {
        store_req *r = list;
        list = r->next;
        r->next = NULL;
        send_to(r, nodes_for_slot(r->slot), 0, 1);
    }
}

/* TRYAGAIN: the keys of a multi-key command are split by a slot migration
 * in progress; send it again (routed afresh) shortly. */
static void send_later(store_req *r) {
    r->next = st.delayed;
    st.delayed = r;
    if (!evtimer_pending(st.delayed_ev, NULL)) {
        struct timeval tv = {0, (suseconds_t)(TRYAGAIN_DELAY * 1e6)};
        evtimer_add(st.delayed_ev, &tv);
    }
}

/* Cluster answers that are not the command's own: a redirection (MOVED: the
 * slot has a new master, remember it; ASK: this key only, this once), a slot
 * mid-migration (TRYAGAIN) or a cluster without quorum or coverage
 * (CLUSTERDOWN, reported as unavailable so it is retried like a Redis that
 * is down). Returns 1 when r was taken care of. */
static int cluster_reply(store_req *r, store_node *from, const char *err) {
    char host[256], msg[320];
    int slot, port;
    cluster_redirect kind = cluster_parse_redirect(err, &slot, host, sizeof host, &port);
    if (kind == CLUSTER_NO_REDIRECT) {
        if (strncmp(err, "TRYAGAIN", 8) == 0 && ++r->tryagains <= MAX_TRYAGAIN) {
            log_debug("store: TRYAGAIN slot %d, sending again in %.0f ms", r->slot,
                      TRYAGAIN_DELAY * 1000);
            send_later(r);
            return 1;
        }
        if (strncmp(err, "CLUSTERDOWN", 11) == 0 || strncmp(err, "TRYAGAIN", 8) == 0) {
            snprintf(msg, sizeof msg, "%s: %s", UNAVAILABLE, err);
            req_fail(r, msg);
            return 1;
        }
        return 0;
    }
    if (++r->redirects > MAX_REDIRECTS) {
        snprintf(msg, sizeof msg, "%s: more than %d cluster redirections, last %.200s", UNAVAILABLE,
                 MAX_REDIRECTS, err);
        req_fail(r, msg);
        return 1;
    }
    store_node *to = nodes_at(host[0] || !from ? host : node_host(from), port);
    log_debug("store: %s slot %d -> %s:%d", kind == CLUSTER_MOVED ? "MOVED" : "ASK", slot,
              to ? node_host(to) : host, port);
    if (to && kind == CLUSTER_MOVED) nodes_slot_moved(slot, to);
    send_to(r, to, kind == CLUSTER_ASK, 1);
    return 1;
}

/* A copy of a reply that outlives hiredis' callback (hiredis frees its own
 * right after): made with the allocator freeReplyObject expects. */
static redisReply *reply_copy(const redisReply *src) {
    redisReply *r = xcalloc(1, sizeof *r);
    r->type = src->type;
    r->integer = src->integer;
    if (src->str) {
        r->len = src->len;
        r->str = xmalloc(src->len + 1);
        memcpy(r->str, src->str, src->len);
        r->str[src->len] = '\0';
    }
    if (src->element) {
        r->elements = src->elements;
        r->element = xcalloc(src->elements ? src->elements : 1, sizeof *r->element);
        for (size_t i = 0; i < src->elements; i++)
            if (src->element[i]) r->element[i] = reply_copy(src->element[i]);
    }
    return r;
}

/* The end of a write that waited for its WAIT (store_wait.c): err NULL
 * delivers its held reply, else it fails with err. */
static void wait_settle(store_req *r, const char *err) {
    if (err) {
        req_fail(r, err);
        return;
    }
    redisReply *held = r->held;
    r->held = NULL;
    sent_unlink(r);
    metrics_redis(metrics_now() - r->t0);
    r->cb(r->arg, held, NULL);
    freeReplyObject(held);
    req_free(r);
}

static void reply_cb(redisAsyncContext *ac, void *replyp, void *privdata) {
    store_req *r = privdata;
    redisReply *reply = replyp;
    r->in_hiredis = 0;
    if (r->done) { /* answered by the sweep already: the outcome is dropped */
        if (r->answered) free(r);
        return;
    }
    sent_unlink(r);
    if (!reply) {
        req_fail(r, UNAVAILABLE ": connection lost");
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        ticket_detach(r); /* the WAIT behind it confirms nothing */
        if (strncmp(reply->str, "READONLY", 8) == 0 || strncmp(reply->str, "LOADING", 7) == 0) {
            /* A master turned replica (a failover moved it) or a Redis still
             * loading its data: the store is not usable there right now. */
            char msg[300];
            snprintf(msg, sizeof msg, "%s: %.200s", UNAVAILABLE, reply->str);
            if (reply->str[0] == 'R') nodes_not_master(node_of(ac), reply->str);
            req_fail(r, msg);
            return;
        }
        if (r->script >= 0 && !r->retried && strncmp(reply->str, "NOSCRIPT", 8) == 0) {
            /* This Redis lost its script cache: send the body once, to the
             * same node, which also caches it again for the following
             * EVALSHA calls. */
            const lua_script *s = &lua_scripts[r->script];
            ra_set(&r->args, 0, "EVAL", 4);
            ra_set(&r->args, 1, s->text, s->len);
            r->retried = 1;
            send_to(r, r->node, r->asking, 1);
            return;
        }
        if (nodes_cluster() && cluster_reply(r, node_of(ac), reply->str)) return;
        req_fail(r, reply->str);
        return;
    }
    if (r->wait) {
        if (!r->ticket) {
            req_fail(r, UNAVAILABLE ": replication not confirmed: WAIT could not be sent");
            return;
        }
        r->held = reply_copy(reply);
        sent_link(r); /* still answered by its deadline if WAIT hangs */
        return;
    }
    metrics_redis(metrics_now() - r->t0);
    r->cb(r->arg, reply, NULL);
    req_free(r);
}

/* wait: r writes, and Store.WaitReplicas asks for its replication. */
static store_req *req_new(store_cb *cb, void *arg, int wait) {
    store_req *r = xcalloc(1, sizeof *r);
    r->script = -1;
    r->slot = -1;
    r->cb = cb;
    r->arg = arg;
    r->t0 = metrics_now();
    r->wait = wait && st.wait_replicas > 0;
    r->deadline = r->t0 + st.cmd_timeout + (r->wait ? st.wait_timeout_ms / 1000.0 : 0);
    return r;
}

/* Commands that change nothing: no WAIT for them. Anything else dtmd sends
 * with store_command is taken as a write. */
static int command_reads(const rargs *a) {
    static const char *const reads[] = {
        "HGETALL", "HGET",   "HMGET",         "HSCAN",  "HEXISTS",     "HLEN",   "GET",
        "MGET",    "EXISTS", "ZRANGEBYSCORE", "ZRANGE", "ZRANGEBYLEX", "ZSCORE", "ZCARD",
        "SCAN",    "PING",   "TTL",           "PTTL",   "TYPE",        NULL};
    if (a->argc < 1) return 1;
    for (int i = 0; reads[i]; i++)
        if (strcasecmp(a->argv[0], reads[i]) == 0) return 1;
    return 0;
}

/* Scripts that change nothing (the others all write, the liveness refresh
 * too: a takeover on a promoted replica must see it). */
static int script_reads(const char *name) {
    return strcmp(name, "all_page") == 0;
}

/* Fail every request past its deadline (Store.CommandTimeout, plus
 * Store.WaitTimeout for a write waiting for replicas) with "unavailable": its
 * outcome is unknown, as for a lost connection, which callers handle. A
 * request that hiredis still holds stays allocated, marked done, until its
 * late reply (dropped) or the connection's end. A connection whose command
 * hangs that long is stuck (a paused or overloaded Redis answers in order,
 * so everything behind it hangs too), and its unanswered commands would pile
 * up in hiredis' buffers: it is closed and opened again. */
static void sweep_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    if (!st.sent) return;
    double now = metrics_now();
    store_node **stuck = NULL;
    int nstuck = 0;
    for (store_req *r = st.sent; r; r = r->sent_next) {
        if (r->deadline > now || !r->node) continue;
        int known = 0;
        for (int i = 0; i < nstuck && !known; i++) known = stuck[i] == r->node;
        if (!known) {
            stuck = xrealloc(stuck, sizeof *stuck * (size_t)(nstuck + 1));
            stuck[nstuck++] = r->node;
        }
    }
    /* The expired requests, and every other one sent to a stuck node: the
     * connection is closed below, and they are answered for the same reason
     * (not as a lost connection). */
    store_req *expired = NULL;
    for (store_req *r = st.sent, *next; r; r = next) {
        next = r->sent_next;
        int on_stuck = 0;
        for (int i = 0; i < nstuck && !on_stuck; i++) on_stuck = stuck[i] == r->node;
        if (r->deadline > now && !on_stuck) continue;
        sent_unlink(r);
        r->done = 1;
        r->next = expired;
        expired = r;
    }
    char msg[256];
    while (expired) {
        store_req *r = expired;
        expired = r->next;
        if (r->deadline <= now)
            snprintf(msg, sizeof msg,
                     "%s: no answer from redis %s:%d within %g s (Store.CommandTimeout%s)",
                     UNAVAILABLE, r->node ? node_host(r->node) : "?",
                     r->node ? node_port(r->node) : 0, r->deadline - r->t0,
                     r->wait ? " + Store.WaitTimeout" : "");
        else
            snprintf(msg, sizeof msg,
                     "%s: redis %s:%d stopped answering (a command before this one got no "
                     "answer within Store.CommandTimeout)",
                     UNAVAILABLE, node_host(r->node), node_port(r->node));
        ticket_detach(r);
        r->cb(r->arg, NULL, msg);
        r->answered = 1;
        if (r->in_hiredis)
            req_release(r); /* r itself goes with the late reply */
        else
            req_free(r);
    }
    for (int i = 0; i < nstuck; i++) nodes_drop(stuck[i], "a command got no answer in time");
    free(stuck);
}

void store_command(rargs *cmd, store_cb *cb, void *arg) {
    store_req *r = req_new(cb, arg, !command_reads(cmd));
    r->args = *cmd;
    ra_init(cmd);
    /* Every command dtmd sends names its key first. */
    if (nodes_cluster() && r->args.argc >= 2)
        r->slot = cluster_key_slot(r->args.argv[1], r->args.lens[1]);
    send_to(r, nodes_for_slot(r->slot), 0, 0);
}

static void script_send(const char *name, int nkeys, rargs *args, store_cb *cb, void *arg,
                        int nowait) {
    int idx = -1;
    for (int i = 0; lua_scripts[i].name; i++) {
        if (strcmp(lua_scripts[i].name, name) == 0) {
            idx = i;
            break;
        }
    }
    if (idx < 0) {
        log_error("store: no script named %s", name);
        abort();
    }
    store_req *r = req_new(cb, arg, !script_reads(name));
    r->script = idx;
    r->nowait = nowait;
    /* Every key of a script shares one slot (keys.h): KEYS[1] routes it. */
    if (nodes_cluster() && nkeys >= 1 && args->argc >= 1)
        r->slot = cluster_key_slot(args->argv[0], args->lens[0]);
    r->args = *args; /* taken over as they are; the command head goes in front */
    ra_init(args);
    const char *sha = nodes_script_sha(idx);
    char nk[24];
    const char *head[3] = {"EVALSHA", sha, nk};
    size_t head_len[3] = {7, strlen(sha), fmt_i64(nk, nkeys)};
    if (!sha[0]) {
        head[0] = "EVAL";
        head_len[0] = 4;
        head[1] = lua_scripts[idx].text;
        head_len[1] = lua_scripts[idx].len;
        r->retried = 1;
    }
    ra_prepend(&r->args, 3, head, head_len);
    send_to(r, nodes_for_slot(r->slot), 0, 0);
}

void store_script(const char *name, int nkeys, rargs *args, store_cb *cb, void *arg) {
    script_send(name, nkeys, args, cb, arg, 0);
}

void store_script_nowait(const char *name, int nkeys, rargs *args, store_cb *cb, void *arg) {
    script_send(name, nkeys, args, cb, arg, 1);
}

int store_init(struct event_base *base, const dtmd_config *cfg) {
    memset(&st, 0, sizeof st);
    st.base = base;
    st.delayed_ev = evtimer_new(base, delayed_cb, NULL);
    st.park_ev = evtimer_new(base, park_cb, NULL);
    st.park_max = cfg->store_max_queued;
    st.cmd_timeout = cfg->store_command_timeout_ms / 1000.0;
    st.wait_replicas = cfg->store_wait_replicas;
    st.wait_timeout_ms = cfg->store_wait_timeout_ms;
    store_wait_init(base, cfg, wait_settle);
    st.sweep_ev = event_new(base, -1, EV_PERSIST, sweep_cb, NULL);
    struct timeval tv = {0, (suseconds_t)(SWEEP_TICK * 1e6)};
    evtimer_add(st.sweep_ev, &tv);
    return nodes_init(base, cfg);
}

void store_shutdown(void) {
    st.stopping = 1;
    if (st.sweep_ev) event_free(st.sweep_ev);
    st.sweep_ev = NULL;
    nodes_shutdown(); /* pending callbacks get "store unavailable" */
    store_wait_shutdown();
    while (st.parked) {
        store_req *r = st.parked;
        st.parked = r->next;
        req_fail(r, UNAVAILABLE);
    }
    st.parked_tail = NULL;
    free(st.parked_per_node);
    st.parked_per_node = NULL;
    st.parked_per_node_cap = 0;
    if (st.park_ev) event_free(st.park_ev);
    st.park_ev = NULL;
    while (st.delayed) {
        store_req *r = st.delayed;
        st.delayed = r->next;
        req_fail(r, UNAVAILABLE);
    }
    if (st.delayed_ev) event_free(st.delayed_ev);
    st.delayed_ev = NULL;
}
