/* store_nodes.c - Redis connections, and the slot map of a Redis Cluster
 * (see store_nodes.h).
 *
 * Why nodes are never freed before shutdown: requests in flight remember the
 * node they were sent to (a NOSCRIPT retry or an ASK must go back to it), and
 * a cluster has a handful of addresses, so keeping every node ever seen is
 * cheaper than reference counting. A node the map no longer uses keeps its
 * connection while it lasts but is not reconnected.
 *
 * How the map stays right: it is loaded with CLUSTER SLOTS from any connected
 * node once the first connection is up; a MOVED answer corrects one slot at
 * once and asks for a fresh map; a lost connection asks for one too, and while
 * some slot has no connected node the map is reloaded every second, which is
 * how a failover to a replica is noticed; otherwise every ten seconds. One
 * CLUSTER SLOTS is in flight at a time. If no node is connected at all, the
 * configured seeds are tried again.
 *
 * With Redis Sentinel there is one node, whose address is whatever the
 * sentinels name as the master (store_sentinel.c): it moves when they say so,
 * and a connection is used only once ROLE says the server is the master, so
 * a demoted master that comes back is not written to. */
#include "store_nodes.h"

#include "cluster_slot.h"
#include "log.h"
#include "lua_scripts.h"
#include "store_sentinel.h"
#include "util.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NODES 1024         /* node indexes fit the int16_t slot map */
#define REFRESH_SOON 0.1       /* seconds: after MOVED or a lost connection */
#define REFRESH_INCOMPLETE 1.0 /* seconds: while some slot is unreachable */
#define REFRESH_PERIODIC 10.0  /* seconds: otherwise, to notice changes no error shows */
#define RECONNECT_FIRST 0.1    /* seconds, doubled per failure ... */
#define RECONNECT_MAX 2.0      /* ... up to this */

struct store_node {
    char *host;
    int port;
    int idx;               /* in nd.nodes */
    redisAsyncContext *ac; /* NULL while down */
    int up;                /* connected (ac is usable for any command) */
    int wanted;            /* reconnect when lost: the Redis, a master, or a seed */
    int seed;              /* from Store.Host: tried again when no node answers */
    int nslots;            /* slots the map gives it */
    struct event *reconnect_ev;
    double reconnect_delay;
};

static struct {
    struct event_base *base;
    const dtmd_config *cfg;
    int cluster;
    int sentinel; /* Redis Sentinel names node 0's address */
    int stopping;
    store_node **nodes;
    int nnodes;
    int16_t slot_node[CLUSTER_SLOTS]; /* node index per slot, -1 = unknown */
    int mapped;                       /* slots with a node */
    char (*shas)[41];                 /* per script, "" until a SCRIPT LOAD answered */
    int nscripts;
    struct event *refresh_ev;
    double refresh_armed; /* delay the pending refresh timer was armed with */
    int refresh_inflight, refresh_again;
    int refresh_next; /* round robin over the nodes asked */
} nd;

static void node_connect(store_node *n);

/* ---- small accessors ---------------------------------------------------- */

int nodes_cluster(void) {
    return nd.cluster;
}

const char *node_host(const store_node *n) {
    return n->host;
}

int node_port(const store_node *n) {
    return n->port;
}

int node_index(const store_node *n) {
    return n->idx;
}

store_node *node_of(const redisAsyncContext *ac) {
    return ac ? ac->data : NULL;
}

const char *nodes_script_sha(int idx) {
    return nd.shas[idx];
}

/* The RESP array of argv into out (cap bytes), NUL-terminated; returns its
 * length (without the NUL), or more than cap - 1 when it does not fit.
 * The NUL matters: hiredis peeks one byte past a command's first argument
 * to see whether another follows ("ASKING" has none), as the sds string of
 * its own formatting allows. */
static size_t digits(size_t v) {
    size_t n = 1;
    while (v >= 10) v /= 10, n++;
    return n;
}

static size_t resp_format(char *out, size_t cap, int argc, const char **argv, const size_t *lens) {
    size_t need = 1 + digits((size_t)argc) + 2;
    for (int i = 0; i < argc; i++) need += 1 + digits(lens[i]) + 2 + lens[i] + 2;
    if (need >= cap) return need;
    char *p = out;
    *p++ = '*';
    p += fmt_i64(p, argc);
    *p++ = '\r', *p++ = '\n';
    for (int i = 0; i < argc; i++) {
        *p++ = '$';
        p += fmt_i64(p, (int64_t)lens[i]);
        *p++ = '\r', *p++ = '\n';
        if (lens[i]) memcpy(p, argv[i], lens[i]);
        p += lens[i];
        *p++ = '\r', *p++ = '\n';
    }
    *p = '\0';
    return need;
}

/* The command is formatted here and handed over with
 * redisAsyncFormattedCommand: hiredis' own argv formatting (sds, sdscatfmt)
 * is costly for every command; this is a length pass and one copy, on the
 * stack for the usual small command. */
int node_send(store_node *n, int queue, redisCallbackFn *fn, void *privdata, int argc,
              const char **argv, const size_t *lens) {
    if (nd.stopping || !n->ac || (!n->up && !queue)) return REDIS_ERR;
    char stack[2048];
    size_t len = resp_format(stack, sizeof stack, argc, argv, lens);
    if (len < sizeof stack) return redisAsyncFormattedCommand(n->ac, fn, privdata, stack, len);
    char *heap = xmalloc(len + 1);
    resp_format(heap, len + 1, argc, argv, lens);
    int rc = redisAsyncFormattedCommand(n->ac, fn, privdata, heap, len);
    free(heap);
    return rc;
}

int nodes_all_up(void) {
    if (nd.stopping || nd.nnodes == 0) return 0; /* not started (or stopped) */
    if (!nd.cluster) return nd.nodes[0]->up;
    if (nd.mapped < CLUSTER_SLOTS) return 0;
    for (int i = 0; i < nd.nnodes; i++)
        if (nd.nodes[i]->nslots && !nd.nodes[i]->up) return 0;
    return 1;
}

/* ---- the node table ----------------------------------------------------- */

static store_node *node_find(const char *host, int port) {
    for (int i = 0; i < nd.nnodes; i++)
        if (nd.nodes[i]->port == port && strcmp(nd.nodes[i]->host, host) == 0) return nd.nodes[i];
    return NULL;
}

/* Both the back-off before a reconnection and the limit on how long a
 * connection may take to become usable (a Redis that is paused or
 * unreachable can leave a connect, or the ROLE asked first, unanswered for
 * minutes). */
static void reconnect_timer_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    store_node *n = arg;
    if (nd.stopping) return;
    if (n->ac && !n->up)
        nodes_drop(n, "not ready within Store.CommandTimeout");
    else if (!n->ac && n->wanted)
        node_connect(n);
}

/* Find or add; a new node is not connected yet. NULL when the table is full. */
static store_node *node_get(const char *host, int port) {
    store_node *n = node_find(host, port);
    if (n || nd.nnodes >= MAX_NODES) return n;
    n = xcalloc(1, sizeof *n);
    n->host = xstrdup(host);
    n->port = port;
    n->idx = nd.nnodes;
    n->reconnect_delay = RECONNECT_FIRST;
    n->reconnect_ev = evtimer_new(nd.base, reconnect_timer_cb, n);
    nd.nodes = xrealloc(nd.nodes, sizeof *nd.nodes * (size_t)(nd.nnodes + 1));
    nd.nodes[nd.nnodes++] = n;
    return n;
}

/* Connect n now unless it is connected, connecting or waiting to retry. */
static void node_wake(store_node *n) {
    n->wanted = 1;
    if (!nd.stopping && !n->ac && !evtimer_pending(n->reconnect_ev, NULL)) node_connect(n);
}

/* ---- refreshing the slot map (cluster) ----------------------------------- */

static void refresh_start(void);

static void refresh_timer_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    refresh_start();
}

/* Refresh in secs, unless a refresh is due sooner anyway. While one is in
 * flight, an urgent request (the map just proved wrong) queues another one;
 * a slow one is left to slots_cb. */
static void refresh_arm(double secs) {
    if (!nd.cluster || nd.stopping) return;
    if (nd.refresh_inflight) {
        if (secs <= REFRESH_SOON) nd.refresh_again = 1;
        return;
    }
    if (evtimer_pending(nd.refresh_ev, NULL) && nd.refresh_armed <= secs) return;
    struct timeval tv = {(time_t)secs, (suseconds_t)((secs - (double)(time_t)secs) * 1e6)};
    evtimer_add(nd.refresh_ev, &tv);
    nd.refresh_armed = secs;
}

typedef struct map_build {
    int16_t map[CLUSTER_SLOTS];
    store_node *asked;
    int full; /* the node table overflowed */
} map_build;

static void map_range(void *arg, int first, int last, const char *host, int port) {
    map_build *b = arg;
    store_node *n = node_get(host ? host : b->asked->host, port);
    if (!n) {
        b->full = 1;
        return;
    }
    for (int s = first; s <= last; s++) b->map[s] = (int16_t)n->idx;
}

/* Replace the map; connect the masters, let go of the nodes it leaves out. */
static void map_apply(const int16_t *map, const store_node *asked) {
    int changed = memcmp(nd.slot_node, map, sizeof nd.slot_node) != 0;
    memcpy(nd.slot_node, map, sizeof nd.slot_node);
    nd.mapped = 0;
    for (int i = 0; i < nd.nnodes; i++) nd.nodes[i]->nslots = 0;
    for (int s = 0; s < CLUSTER_SLOTS; s++) {
        if (map[s] < 0) continue;
        nd.mapped++;
        nd.nodes[map[s]]->nslots++;
    }
    for (int i = 0; i < nd.nnodes; i++) {
        store_node *n = nd.nodes[i];
        if (n->nslots) {
            if (!n->wanted)
                log_info("store: redis %s:%d serves %d slots", n->host, n->port, n->nslots);
            node_wake(n);
        } else {
            if (n->wanted) log_info("store: redis %s:%d serves no slot", n->host, n->port);
            n->wanted = 0;
        }
    }
    if (changed) {
        int masters = 0;
        for (int i = 0; i < nd.nnodes; i++) masters += nd.nodes[i]->nslots > 0;
        log_info("store: cluster slot map from %s:%d: %d of %d slots on %d masters", asked->host,
                 asked->port, nd.mapped, CLUSTER_SLOTS, masters);
    }
}

static void slots_cb(redisAsyncContext *ac, void *replyp, void *privdata) {
    (void)ac;
    redisReply *reply = replyp;
    store_node *asked = privdata;
    nd.refresh_inflight = 0;
    if (nd.stopping) return;
    if (!reply) {
        log_debug("store: CLUSTER SLOTS on %s:%d: connection lost", asked->host, asked->port);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        log_warn("store: CLUSTER SLOTS on %s:%d failed: %s", asked->host, asked->port, reply->str);
    } else {
        map_build *b = xmalloc(sizeof *b);
        memset(b->map, 0xff, sizeof b->map); /* every slot -1 */
        b->asked = asked;
        b->full = 0;
        int n = cluster_slots_parse(reply, map_range, b);
        if (n < 0)
            log_warn("store: CLUSTER SLOTS on %s:%d: malformed answer", asked->host, asked->port);
        else if (n == 0)
            log_warn("store: CLUSTER SLOTS on %s:%d: no slot is assigned yet", asked->host,
                     asked->port);
        else if (b->full)
            log_error("store: more than %d redis nodes, map not updated", MAX_NODES);
        else
            map_apply(b->map, asked);
        free(b);
    }
    if (nd.refresh_again)
        refresh_arm(REFRESH_SOON);
    else if (!nodes_all_up())
        refresh_arm(REFRESH_INCOMPLETE);
    else
        refresh_arm(REFRESH_PERIODIC);
}

/* Ask a connected node (round robin, so one confused node is not asked
 * forever); with none connected, wake the seeds: the first to connect asks. */
static void refresh_start(void) {
    if (!nd.cluster || nd.stopping) return;
    if (nd.refresh_inflight) {
        nd.refresh_again = 1;
        return;
    }
    store_node *ask = NULL;
    for (int k = 0; k < nd.nnodes && !ask; k++) {
        store_node *n = nd.nodes[(nd.refresh_next + k) % nd.nnodes];
        if (n->up) ask = n;
    }
    if (!ask) {
        for (int i = 0; i < nd.nnodes; i++)
            if (nd.nodes[i]->seed) node_wake(nd.nodes[i]);
        return;
    }
    nd.refresh_next = (ask->idx + 1) % nd.nnodes;
    if (redisAsyncCommand(ask->ac, slots_cb, ask, "CLUSTER SLOTS") != REDIS_OK) {
        refresh_arm(REFRESH_INCOMPLETE);
        return;
    }
    nd.refresh_inflight = 1;
    nd.refresh_again = 0;
}

store_node *nodes_for_slot(int slot) {
    if (nd.stopping) return NULL;
    if (!nd.cluster) return nd.nodes[0];
    if (slot < 0) {
        for (int i = 0; i < nd.nnodes; i++)
            if (nd.nodes[i]->up) return nd.nodes[i];
        return NULL;
    }
    int i = nd.slot_node[slot];
    if (i < 0) {
        refresh_arm(REFRESH_SOON);
        return NULL;
    }
    return nd.nodes[i];
}

store_node *nodes_at(const char *host, int port) {
    if (nd.stopping) return NULL;
    store_node *n = node_get(host, port);
    if (n) node_wake(n);
    return n;
}

void nodes_slot_moved(int slot, store_node *n) {
    int old = nd.slot_node[slot];
    if (old == n->idx) return;
    if (old >= 0)
        nd.nodes[old]->nslots--;
    else
        nd.mapped++;
    nd.slot_node[slot] = (int16_t)n->idx;
    n->nslots++;
    refresh_arm(REFRESH_SOON);
}

/* ---- one connection ----------------------------------------------------- */

static void schedule_reconnect(store_node *n) {
    if (nd.stopping || !n->wanted) return;
    double d = n->reconnect_delay;
    struct timeval tv = {(time_t)d, (suseconds_t)((d - (double)(time_t)d) * 1e6)};
    evtimer_add(n->reconnect_ev, &tv);
    n->reconnect_delay = d * 2 > RECONNECT_MAX ? RECONNECT_MAX : d * 2;
}

static void script_loaded_cb(redisAsyncContext *ac, void *replyp, void *privdata) {
    (void)ac;
    redisReply *reply = replyp;
    int idx = (int)(intptr_t)privdata;
    if (reply && reply->type == REDIS_REPLY_STRING && reply->len == 40) {
        memcpy(nd.shas[idx], reply->str, 41);
    } else if (reply) {
        log_error("store: SCRIPT LOAD %s failed: %s", lua_scripts[idx].name,
                  reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    }
}

static void auth_cb(redisAsyncContext *ac, void *replyp, void *privdata) {
    store_node *n = privdata;
    redisReply *reply = replyp;
    if (reply && reply->type == REDIS_REPLY_ERROR) {
        log_error("store: AUTH on redis %s:%d failed: %s", n->host, n->port, reply->str);
        redisAsyncDisconnect(ac);
    }
}

/* Sentinel: a connection becomes usable once the server says it is the
 * master; a replica (a demoted master, or sentinels not yet agreed) sends us
 * back to the sentinels. */
static void role_cb(redisAsyncContext *ac, void *replyp, void *privdata) {
    store_node *n = privdata;
    redisReply *reply = replyp;
    if (!reply || nd.stopping || ac != n->ac) return;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(reply->element[0]->str, "master") == 0) {
        n->up = 1;
        log_info("store: redis %s:%d is the master", n->host, n->port);
        return;
    }
    nodes_not_master(n, reply->type == REDIS_REPLY_ERROR ? reply->str : "ROLE is not master");
}

static void connect_cb(const redisAsyncContext *ac, int status) {
    store_node *n = ac->data;
    if (!n) return; /* dropped meanwhile */
    if (status != REDIS_OK) {
        log_warn("store: cannot connect to redis %s:%d: %s", n->host, n->port, ac->errstr);
        n->ac = NULL; /* hiredis frees the context after this callback */
        schedule_reconnect(n);
        refresh_arm(REFRESH_INCOMPLETE); /* with no node up, this wakes the seeds again */
        if (nd.sentinel) sentinel_reask();
        return;
    }
    if (!nd.sentinel) n->up = 1; /* with Sentinel: once ROLE answered */
    n->reconnect_delay = RECONNECT_FIRST;
    log_info("store: connected to redis %s:%d", n->host, n->port);
    /* The first connection loads the map; a later one may complete it. */
    if (nd.cluster && !nd.refresh_inflight && !nodes_all_up())
        refresh_arm(nd.mapped ? REFRESH_INCOMPLETE : 0);
}

static void disconnect_cb(const redisAsyncContext *ac, int status) {
    store_node *n = ac->data;
    if (!n) return; /* dropped on purpose (nodes_drop) */
    n->up = 0;
    n->ac = NULL;
    if (nd.stopping) return;
    log_warn("store: redis %s:%d connection lost%s%s", n->host, n->port,
             status == REDIS_OK ? "" : ": ", status == REDIS_OK ? "" : ac->errstr);
    schedule_reconnect(n);
    if (n->nslots) refresh_arm(REFRESH_SOON);
    if (nd.sentinel) sentinel_reask();
}

void nodes_drop(store_node *n, const char *why) {
    if (nd.stopping || !n || !n->ac) return;
    log_warn("store: redis %s:%d: %s: closing the connection", n->host, n->port, why);
    redisAsyncContext *ac = n->ac;
    n->ac = NULL;
    n->up = 0;
    ac->data = NULL;
    redisAsyncFree(ac); /* from a reply callback: once it returns */
    schedule_reconnect(n);
    if (n->nslots) refresh_arm(REFRESH_SOON);
}

void nodes_not_master(store_node *n, const char *err) {
    if (!n || nd.stopping) return;
    if (!nd.sentinel) {
        log_warn("store: redis %s:%d is not a master: %s", n->host, n->port, err);
        return;
    }
    log_warn("store: redis %s:%d is not the master (%s): asking the sentinels", n->host, n->port,
             err);
    nodes_drop(n, "not the master");
    sentinel_reask();
}

int nodes_sentinel_master(const char **host, int *port) {
    if (!nd.sentinel || !nd.nodes || !nd.nodes[0] || !nd.nodes[0]->host[0]) return -1;
    *host = nd.nodes[0]->host;
    *port = nd.nodes[0]->port;
    return 0;
}

/* The sentinels name the master: move node 0 there if it is elsewhere. */
static void sentinel_master(const char *host, int port) {
    store_node *n = nd.nodes[0];
    if (nd.stopping) return;
    if (n->port == port && strcmp(n->host, host) == 0) {
        if (!n->ac) node_wake(n);
        return;
    }
    if (n->host[0])
        log_info("store: sentinel: master '%s' is %s:%d (was %s:%d)", nd.cfg->sentinel_master, host,
                 port, n->host, n->port);
    else
        log_info("store: sentinel: master '%s' is %s:%d", nd.cfg->sentinel_master, host, port);
    nodes_drop(n, "the master moved");
    free(n->host);
    n->host = xstrdup(host);
    n->port = port;
    n->reconnect_delay = RECONNECT_FIRST;
    evtimer_del(n->reconnect_ev);
    node_wake(n);
}

/* AUTH and SCRIPT LOAD are queued before the connection is even up, so they
 * precede anything else sent on it, including a redirected command queued
 * while connecting. */
static void node_connect(store_node *n) {
    redisAsyncContext *ac = redisAsyncConnect(n->host, n->port);
    if (!ac || ac->err) {
        log_warn("store: cannot connect to redis %s:%d: %s", n->host, n->port,
                 ac ? ac->errstr : "out of memory");
        if (ac) redisAsyncFree(ac);
        schedule_reconnect(n);
        return;
    }
    ac->data = n;
    n->ac = ac;
    redisLibeventAttach(ac, nd.base);
    double d = nd.cfg->store_command_timeout_ms / 1000.0;
    if (d < 1) d = 1; /* a connect on a busy machine, with AUTH and ROLE, in 1 s */
    struct timeval tv = {(time_t)d, (suseconds_t)((d - (double)(time_t)d) * 1e6)};
    evtimer_add(n->reconnect_ev, &tv);
    redisAsyncSetConnectCallback(ac, connect_cb);
    redisAsyncSetDisconnectCallback(ac, disconnect_cb);
    const dtmd_config *cfg = nd.cfg;
    if (cfg->store_password[0]) {
        if (cfg->store_user[0])
            redisAsyncCommand(ac, auth_cb, n, "AUTH %s %s", cfg->store_user, cfg->store_password);
        else
            redisAsyncCommand(ac, auth_cb, n, "AUTH %s", cfg->store_password);
    }
    if (nd.sentinel) redisAsyncCommand(ac, role_cb, n, "ROLE");
    for (int i = 0; i < nd.nscripts; i++)
        redisAsyncCommand(ac, script_loaded_cb, (void *)(intptr_t)i, "SCRIPT LOAD %b",
                          lua_scripts[i].text, lua_scripts[i].len);
}

/* ---- life cycle --------------------------------------------------------- */

int nodes_init(struct event_base *base, const dtmd_config *cfg) {
    memset(&nd, 0, sizeof nd);
    nd.base = base;
    nd.cfg = cfg;
    nd.cluster = cfg->store_nseeds > 0;
    memset(nd.slot_node, 0xff, sizeof nd.slot_node); /* every slot -1 */
    while (lua_scripts[nd.nscripts].name) nd.nscripts++;
    nd.shas = xcalloc((size_t)nd.nscripts, sizeof *nd.shas);
    nd.refresh_ev = evtimer_new(base, refresh_timer_cb, NULL);
    if (cfg->nsentinels > 0) {
        nd.sentinel = 1;
        node_get("", 0); /* its address comes from the sentinels */
        sentinel_init(base, cfg, sentinel_master);
        return 0;
    }
    if (!nd.cluster) {
        node_wake(node_get(cfg->store_host, cfg->store_port));
        return 0;
    }
    for (int i = 0; i < cfg->store_nseeds; i++) {
        store_node *n = node_get(cfg->store_seeds[i].host, cfg->store_seeds[i].port);
        if (!n) break;
        n->seed = 1;
        node_wake(n);
    }
    return 0;
}

void nodes_shutdown(void) {
    nd.stopping = 1;
    sentinel_shutdown();
    for (int i = 0; i < nd.nnodes; i++) {
        store_node *n = nd.nodes[i];
        n->up = 0;
        if (n->ac) {
            redisAsyncContext *ac = n->ac;
            n->ac = NULL;
            redisAsyncFree(ac); /* pending callbacks get a NULL reply */
        }
    }
    for (int i = 0; i < nd.nnodes; i++) {
        event_free(nd.nodes[i]->reconnect_ev);
        free(nd.nodes[i]->host);
        free(nd.nodes[i]);
    }
    free(nd.nodes);
    nd.nodes = NULL;
    nd.nnodes = 0;
    if (nd.refresh_ev) event_free(nd.refresh_ev);
    nd.refresh_ev = NULL;
    free(nd.shas);
    nd.shas = NULL;
}
