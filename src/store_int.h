/* store_int.h - one store request, as store.c and its WAIT batching
 * (store_wait.c) both see it. Private to the store: the rest of dtmd sees
 * store.h. */
#ifndef DTMD_STORE_INT_H
#define DTMD_STORE_INT_H

#include "rargs.h"
#include "store.h"
#include "store_nodes.h"

#include <hiredis/hiredis.h>

#define UNAVAILABLE "store unavailable"

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

/* The WAIT sent for r's current attempt no longer concerns r. */
static inline void ticket_detach(store_req *r) {
    if (r->ticket) r->ticket->rs[r->ticket_idx] = NULL;
    r->ticket = NULL;
}

#endif
