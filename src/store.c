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

#define UNAVAILABLE "store unavailable"

#define MAX_REDIRECTS 5    /* MOVED/ASK followed per command */
#define PARK_GRACE_MS 2000 /* commands wait this long for a connection, then "unavailable" */
#define PARK_TICK 0.05     /* seconds between tries to send the waiting ones */
#define MAX_TRYAGAIN 10    /* TRYAGAIN (slot mid-migration) retries per command ... */
#define TRYAGAIN_DELAY 0.1 /* ... this many seconds apart */

typedef struct store_req {
    rargs args;       /* full command as sent (EVALSHA form for scripts) */
    int script;       /* index into lua_scripts, or -1 for plain commands */
    int retried;      /* already re-sent as EVAL after NOSCRIPT */
    int slot;         /* hash slot of the first key (cluster), -1 = none */
    store_node *node; /* where it was last sent, with ASKING or not */
    int asking;
    int redirects, tryagains;
    int64_t park_until;     /* waiting for a connection until then (ms), 0 = never waited */
    int nowait;             /* fail rather than wait for a connection (store_script_nowait) */
    struct store_req *next; /* in st.delayed or st.parked */
    store_cb *cb;
    void *arg;
    double t0; /* created (metrics_now), for dtmd_redis_command_duration_seconds */
} store_req;

static struct {
    struct event_base *base;
    store_req *delayed; /* waiting to be sent again after TRYAGAIN */
    struct event *delayed_ev;
    store_req *parked, *parked_tail; /* waiting for their node to (re)connect, FIFO */
    int *parked_per_node;            /* [0]: no node known yet, [1 + node_index]: that node */
    int parked_per_node_cap;
    int park_max; /* Store.MaxQueued: parked commands per node, at most */
    struct event *park_ev;
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
 * allocation per growth instead of two reallocs (ra_reserve made 28 of
 * dtmd's allocations per saga, callgrind). */
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
 * keys and arguments. It copied all of them (about 30 per call) into a new
 * rargs: 3.6 % of dtmd's instructions in the saga bench (callgrind). */
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

static void req_free(store_req *r) {
    ra_free(&r->args);
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
 * slot's owner is not known yet. Rather than fail at once, it waits up to
 * PARK_GRACE_MS for a connection (so a Redis restart or a failover that
 * takes a second is not a burst of 503s), re-routed every PARK_TICK (the
 * slot may have moved to a promoted replica). Bounded per node (Store.MaxQueued),
 * so the backlog of one dead master cannot turn away the commands that wait
 * for another one that is only reconnecting. */
static void park(store_req *r) {
    int64_t now = now_ms();
    if (!r->park_until) r->park_until = now + PARK_GRACE_MS;
    int *count = parked_count(r);
    if (st.stopping || r->nowait || *count >= st.park_max || now >= r->park_until) {
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
 * attempt needs a connected node, and otherwise waits in park(). */
static void send_to(store_req *r, store_node *n, int asking, int queue) {
    static const char *asking_argv[] = {"ASKING"};
    static const size_t asking_len[] = {6};
    r->node = n;
    r->asking = asking;
    int ok = n != NULL;
    if (ok && asking) /* pipelined: ASKING applies to the very next command */
        ok = node_send(n, queue, NULL, NULL, 1, asking_argv, asking_len) == REDIS_OK;
    if (ok)
        ok = node_send(n, queue, reply_cb, r, r->args.argc, (const char **)r->args.argv,
                       r->args.lens) == REDIS_OK;
    if (!ok) park(r);
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

static void reply_cb(redisAsyncContext *ac, void *replyp, void *privdata) {
    store_req *r = privdata;
    redisReply *reply = replyp;
    if (!reply) {
        req_fail(r, UNAVAILABLE ": connection lost");
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
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
    metrics_redis(metrics_now() - r->t0);
    r->cb(r->arg, reply, NULL);
    req_free(r);
}

static store_req *req_new(store_cb *cb, void *arg) {
    store_req *r = xcalloc(1, sizeof *r);
    r->script = -1;
    r->slot = -1;
    r->cb = cb;
    r->arg = arg;
    r->t0 = metrics_now();
    return r;
}

void store_command(rargs *cmd, store_cb *cb, void *arg) {
    store_req *r = req_new(cb, arg);
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
    store_req *r = req_new(cb, arg);
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
    return nodes_init(base, cfg);
}

void store_shutdown(void) {
    st.stopping = 1;
    nodes_shutdown(); /* pending callbacks get "store unavailable" */
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
