/* store_wait.c - Store.WaitReplicas: a write is answered only once
 * enough replicas have it.
 *
 * Why batched: a WAIT covers every earlier write of its connection, so one
 * WAIT per node and loop turn, pipelined behind the turn's writes, confirms
 * them all; a burst of writes costs one WAIT, and commands behind it are
 * held up by one WAIT at most. A write's own reply is held (r->held) until
 * its WAIT answers; then the store settles it (store.c), delivering the
 * reply or failing it as unavailable. */
#include "store_wait.h"

#include "util.h"

#include <event2/event.h>
#include <hiredis/async.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
    int wait_replicas;            /* Store.WaitReplicas, 0 = no WAIT */
    int wait_timeout_ms;          /* Store.WaitTimeout */
    char wait_n[24], wait_ms[24]; /* WAIT's arguments, formatted once */
    wait_ticket **open;           /* per node index: writes sent this turn, WAIT not yet */
    int open_cap;
    struct event *flush_ev; /* sends the open WAITs once the turn's callbacks are done */
    void (*settle)(store_req *r, const char *err);
} wt;

static void wait_cb(redisAsyncContext *ac, void *replyp, void *privdata);

/* r was just sent to n: it joins n's open WAIT, sent at the end of this
 * loop turn on the same connection, behind r. */
void store_wait_join(store_req *r, store_node *n) {
    int i = node_index(n);
    if (i >= wt.open_cap) {
        int cap = i + 8;
        wt.open = xrealloc(wt.open, (size_t)cap * sizeof *wt.open);
        memset(wt.open + wt.open_cap, 0, (size_t)(cap - wt.open_cap) * sizeof *wt.open);
        wt.open_cap = cap;
    }
    wait_ticket *t = wt.open[i];
    if (!t) {
        t = wt.open[i] = xcalloc(1, sizeof *t);
        t->node = n;
        event_active(wt.flush_ev, EV_TIMEOUT, 0);
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
    const char *argv[3] = {"WAIT", wt.wait_n, wt.wait_ms};
    size_t lens[3] = {4, strlen(wt.wait_n), strlen(wt.wait_ms)};
    for (int i = 0; i < wt.open_cap; i++) {
        wait_ticket *t = wt.open[i];
        if (!t) continue;
        wt.open[i] = NULL;
        if (node_send(t->node, 1, wait_cb, t, 3, argv, lens) != REDIS_OK) ticket_free(t);
    }
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
    else if (reply->integer < wt.wait_replicas)
        snprintf(msg, sizeof msg,
                 "%s: replication: the write reached %lld of %d replicas within %g s "
                 "(Store.WaitReplicas, Store.WaitTimeout)",
                 UNAVAILABLE, (long long)reply->integer, wt.wait_replicas,
                 wt.wait_timeout_ms / 1000.0);
    /* Entries are read afresh: a callback may detach later ones. */
    for (int i = 0; i < t->n; i++) {
        store_req *r = t->rs[i];
        if (!r) continue; /* answered or sent again meanwhile */
        t->rs[i] = NULL;
        r->ticket = NULL;
        if (!r->held) continue; /* its own reply still to come: it fails r then */
        wt.settle(r, msg[0] ? msg : NULL);
    }
    ticket_free(t);
}

void store_wait_init(struct event_base *base, const dtmd_config *cfg,
                     void (*settle)(store_req *r, const char *err)) {
    memset(&wt, 0, sizeof wt);
    wt.wait_replicas = cfg->store_wait_replicas;
    wt.wait_timeout_ms = cfg->store_wait_timeout_ms;
    snprintf(wt.wait_n, sizeof wt.wait_n, "%d", wt.wait_replicas);
    snprintf(wt.wait_ms, sizeof wt.wait_ms, "%d", wt.wait_timeout_ms);
    wt.settle = settle;
    wt.flush_ev = event_new(base, -1, 0, flush_cb, NULL);
}

void store_wait_shutdown(void) {
    for (int i = 0; i < wt.open_cap; i++)
        if (wt.open[i]) ticket_free(wt.open[i]);
    free(wt.open);
    wt.open = NULL;
    wt.open_cap = 0;
    if (wt.flush_ev) event_free(wt.flush_ev);
    wt.flush_ev = NULL;
}
