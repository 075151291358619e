/* store.c - the store's requests: routing, script calls, redirections.
 *
 * Why a wrapper at all: hiredis gives us connections, but dtmd needs things
 * around them that every caller would otherwise repeat: failing fast (and
 * asynchronously) while Redis is down, calling scripts by SHA with a
 * transparent fallback when Redis forgot them, and, on a Redis Cluster,
 * sending each command to the master of its first key's hash slot and
 * following MOVED/ASK when a slot has moved. Requests keep their arguments
 * until answered for those retries. The connections themselves (reconnect,
 * AUTH, SCRIPT LOAD, the cluster's slot map) are store_nodes.c's. */
#include "store.h"

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

#define UNAVAILABLE "store unavailable"

#define MAX_REDIRECTS 5    /* MOVED/ASK followed per command */
#define PARK_TICK 0.05     /* seconds between tries to send the waiting ones */
#define SWEEP_TICK 0.1     /* seconds between looks for commands past Store.CommandTimeout */
#define MAX_TRYAGAIN 10    /* TRYAGAIN (slot mid-migration) retries per command ... */
#define TRYAGAIN_DELAY 0.1 /* ... this many seconds apart */

struct wait_ticket;

typedef struct store_req {
    rargs args;       /* full command as sent (EVALSHA form for scripts) */
    int script;       /* index into lua_scripts, or -1 for plain commands */
    int retried;      /* already re-sent as EVAL after NOSCRIPT */
    int slot;         /* hash slot of the first key (cluster), -1 = none */
    store_node *node; /* where it was last sent, with ASKING or not */
    int asking;
    int redirects, tryagains;
    int nowait;             /* fail rather than wait for a connection (store_script_nowait) */
    struct store_req *next; /* in st.delayed or st.parked (or a sweep's expired list) */
    store_cb *cb;
    void *arg;
    double t0;       /* created (metrics_now), for dtmd_redis_command_duration_seconds */
    double deadline; /* metrics_now() by which the caller is answered, whatever Redis does */
    /* Sent and not answered yet: in st.sent, which the sweep walks. */
    struct store_req *sent_prev, *sent_next;
    int linked;
    /* hiredis holds r: reply_cb is still to come, so r outlives an answer
     * given early (timed out: done), to drop the late reply. */
    int in_hiredis;
    int done;     /* the caller has its (timeout) answer; nothing more is delivered */
    int answered; /* the sweep has called back: free r once hiredis lets go of it */
    /* Store.WaitReplicas: a write is answered only after a pipelined WAIT
     * confirmed it; the script's reply waits in held meanwhile. */
    int wait;
    struct wait_ticket *ticket; /* the WAIT behind the current attempt */
    int ticket_idx;             /* r's place in ticket->rs */
    redisReply *held;
} store_req;

/* One WAIT and the writes it confirms: every write sent to a node during
 * one turn of the event loop is followed by a single WAIT (it covers all of
 * the connection's earlier writes), so a burst of writes costs one WAIT,
 * and commands behind it are held up by one WAIT at most. hiredis holds the
 * ticket once the WAIT is sent; a request answered or sent again meanwhile
 * is detached (its entry set to NULL), so a late or stale answer is
 * dropped. */
typedef struct wait_ticket {
    store_node *node;
    int n, cap;
    store_req **rs;
} wait_ticket;

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
    double cmd_timeout;           /* Store.CommandTimeout, seconds */
    int wait_replicas;            /* Store.WaitReplicas, 0 = no WAIT */
    int wait_timeout_ms;          /* Store.WaitTimeout */
    char wait_n[24], wait_ms[24]; /* WAIT's arguments, formatted once */
    wait_ticket **open;           /* per node index: writes sent this turn, WAIT not yet */
    int open_cap;
    struct event *flush_ev; /* sends the open WAITs once the turn's callbacks are done */
    int stopping;
} st;

/* Arguments' bytes: the arena starts small and doubles: most commands are
 * a few short arguments, and every command waiting for Redis keeps its
 * arena (Store.MaxQueued of them per node while one reconnects; 10,000
 * SIGTERM hand-backs at once), so a fixed 4 kB chunk plus 64 argument
 * slots cost 5 kB per command where 300 bytes do. */
#define RA_FIRST_CHUNK 240
#define RA_FIRST_ARGS 8

void ra_init(rargs *a) {
    memset(a, 0, sizeof *a);
    arena_init(&a->bytes, RA_FIRST_CHUNK);
}

static char *ra_copy(rargs *a, const char *s, size_t n) {
    return arena_strndup(&a->bytes, s, n);
}

/* Room for n more arguments (slots double, starting at RA_FIRST_ARGS).
 * argv and lens share one block, lens after the cap pointers: one
 * allocation per growth instead of two reallocs. */
static void ra_reserve(rargs *a, int n) {
    if (a->argc + n <= a->cap) return;
    int cap = a->cap ? a->cap : RA_FIRST_ARGS;
    while (cap < a->argc + n) cap *= 2;
    char **argv = xmalloc((sizeof(char *) + sizeof(size_t)) * (size_t)cap);
    size_t *lens = (size_t *)(argv + cap);
    if (a->argc) {
        memcpy(argv, a->argv, sizeof(char *) * (size_t)a->argc);
        memcpy(lens, a->lens, sizeof(size_t) * (size_t)a->argc);
    }
    free(a->argv);
    a->argv = argv;
    a->lens = lens;
    a->cap = cap;
}

void ra_add(rargs *a, const char *s, size_t n) {
    ra_reserve(a, 1);
    if (!s) n = 0;
    a->argv[a->argc] = ra_copy(a, s, n);
    a->lens[a->argc] = n;
    a->argc++;
}

char *ra_alloc(rargs *a, size_t n) {
    ra_reserve(a, 1);
    char *p = arena_alloc(&a->bytes, n + 1, 1);
    p[n] = '\0';
    a->argv[a->argc] = p;
    a->lens[a->argc] = n;
    a->argc++;
    return p;
}

/* Put n arguments in front of a's, copied into a's arena, without copying
 * a's own: how store_script puts "EVALSHA <sha> <nkeys>" before a script's
 * keys and arguments, without copying the 30 or so arguments of every
 * command into a new rargs. */
static void ra_prepend(rargs *a, int n, const char *const *s, const size_t *lens) {
    ra_reserve(a, n);
    memmove(a->argv + n, a->argv, sizeof(char *) * (size_t)a->argc);
    memmove(a->lens + n, a->lens, sizeof(size_t) * (size_t)a->argc);
    for (int i = 0; i < n; i++) {
        a->argv[i] = ra_copy(a, s[i], lens[i]);
        a->lens[i] = lens[i];
    }
    a->argc += n;
}

void ra_set(rargs *a, int i, const char *s, size_t n) {
    a->argv[i] = ra_copy(a, s, n);
    a->lens[i] = n;
}

void ra_adds(rargs *a, const char *s) {
    ra_add(a, s, s ? strlen(s) : 0);
}

void ra_addi(rargs *a, int64_t v) {
    char tmp[24];
    ra_add(a, tmp, fmt_i64(tmp, v));
}

void ra_free(rargs *a) {
    arena_free(&a->bytes);
    free(a->argv); /* lens too: the same block */
    ra_init(a);
}

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

/* The WAIT sent for r's current attempt no longer concerns r. */
static void ticket_detach(store_req *r) {
    if (r->ticket) r->ticket->rs[r->ticket_idx] = NULL;
    r->ticket = NULL;
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

static void wait_cb(redisAsyncContext *ac, void *replyp, void *privdata);

/* r was just sent to n: it joins n's open WAIT, sent at the end of this
 * loop turn on the same connection, behind r. */
static void wait_join(store_req *r, store_node *n) {
    int i = node_index(n);
    if (i >= st.open_cap) {
        int cap = i + 8;
        st.open = xrealloc(st.open, (size_t)cap * sizeof *st.open);
        memset(st.open + st.open_cap, 0, (size_t)(cap - st.open_cap) * sizeof *st.open);
        st.open_cap = cap;
    }
    wait_ticket *t = st.open[i];
    if (!t) {
        t = st.open[i] = xcalloc(1, sizeof *t);
        t->node = n;
        event_active(st.flush_ev, EV_TIMEOUT, 0);
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->rs = xrealloc(t->rs, (size_t)t->cap * sizeof *t->rs);
    }
    r->ticket = t;
    r->ticket_idx = t->n;
    t->rs[t->n++] = r;
}

static void ticket_free(wait_ticket *t) {
    for (int i = 0; i < t->n; i++)
        if (t->rs[i]) t->rs[i]->ticket = NULL;
    free(t->rs);
    free(t);
}

/* Send every open WAIT. One that cannot be sent (the connection went away
 * this turn) leaves its requests without a ticket: their own replies (NULL,
 * from the closed connection) fail them. */
static void flush_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    const char *argv[3] = {"WAIT", st.wait_n, st.wait_ms};
    size_t lens[3] = {4, strlen(st.wait_n), strlen(st.wait_ms)};
    for (int i = 0; i < st.open_cap; i++) {
        wait_ticket *t = st.open[i];
        if (!t) continue;
        st.open[i] = NULL;
        if (node_send(t->node, 1, wait_cb, t, 3, argv, lens) != REDIS_OK) ticket_free(t);
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
    if (r->wait) wait_join(r, n);
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

/* The answer to a WAIT: deliver the held replies of the writes it covers
 * when enough replicas have them, else fail them as unavailable (the writes
 * happened on the master but are not confirmed as replicated: an unknown
 * outcome). */
static void wait_cb(redisAsyncContext *ac, void *replyp, void *privdata) {
    (void)ac;
    wait_ticket *t = privdata;
    redisReply *reply = replyp;
    char msg[200] = "";
    if (!reply || reply->type != REDIS_REPLY_INTEGER)
        snprintf(msg, sizeof msg, "%s: replication not confirmed: %.100s", UNAVAILABLE,
                 !reply                             ? "connection lost"
                 : reply->type == REDIS_REPLY_ERROR ? reply->str
                                                    : "unexpected reply to WAIT");
    else if (reply->integer < st.wait_replicas)
        snprintf(msg, sizeof msg,
                 "%s: replication: the write reached %lld of %d replicas within %g s "
                 "(Store.WaitReplicas, Store.WaitTimeout)",
                 UNAVAILABLE, (long long)reply->integer, st.wait_replicas,
                 st.wait_timeout_ms / 1000.0);
    /* Entries are read afresh: a callback may detach later ones. */
    for (int i = 0; i < t->n; i++) {
        store_req *r = t->rs[i];
        if (!r) continue; /* answered or sent again meanwhile */
        t->rs[i] = NULL;
        r->ticket = NULL;
        if (!r->held) continue; /* its own reply still to come: it fails r then */
        if (msg[0]) {
            req_fail(r, msg);
            continue;
        }
        redisReply *held = r->held;
        r->held = NULL;
        sent_unlink(r);
        metrics_redis(metrics_now() - r->t0);
        r->cb(r->arg, held, NULL);
        freeReplyObject(held);
        req_free(r);
    }
    ticket_free(t);
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
    store_req *expired = NULL;
    for (store_req *r = st.sent, *next; r; r = next) {
        next = r->sent_next;
        if (r->deadline > now) continue;
        sent_unlink(r);
        r->done = 1;
        r->next = expired;
        expired = r;
    }
    if (!expired) return;
    store_node **stuck = NULL;
    int nstuck = 0;
    char msg[256];
    while (expired) {
        store_req *r = expired;
        expired = r->next;
        int known = 0;
        for (int i = 0; i < nstuck && !known; i++) known = stuck[i] == r->node;
        if (!known && r->node) {
            stuck = xrealloc(stuck, sizeof *stuck * (size_t)(nstuck + 1));
            stuck[nstuck++] = r->node;
        }
        snprintf(msg, sizeof msg,
                 "%s: no answer from redis %s:%d within %g s (Store.CommandTimeout%s)", UNAVAILABLE,
                 r->node ? node_host(r->node) : "?", r->node ? node_port(r->node) : 0,
                 r->deadline - r->t0, r->wait ? " + Store.WaitTimeout" : "");
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
    snprintf(st.wait_n, sizeof st.wait_n, "%d", st.wait_replicas);
    snprintf(st.wait_ms, sizeof st.wait_ms, "%d", st.wait_timeout_ms);
    st.flush_ev = event_new(base, -1, 0, flush_cb, NULL);
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
    for (int i = 0; i < st.open_cap; i++)
        if (st.open[i]) ticket_free(st.open[i]);
    free(st.open);
    st.open = NULL;
    st.open_cap = 0;
    if (st.flush_ev) event_free(st.flush_ev);
    st.flush_ev = NULL;
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
