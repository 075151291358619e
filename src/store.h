/* store.h - the Redis connection(s): async commands and Lua scripts.
 *
 * One hiredis async connection on the shared event loop, or with Redis
 * Cluster (Store.Host is a comma list) one per master, each command going to
 * the master of its first key's hash slot (every script's keys share one
 * slot, keys.h) and following MOVED/ASK redirections. Scripts from lua/ are
 * loaded with SCRIPT LOAD on every (re)connect and called with EVALSHA; a
 * NOSCRIPT answer (Redis restarted or flushed its script cache) is retried
 * once as EVAL. When Redis goes away the connection is re-established in the
 * background; meanwhile a new command waits for the connection (at most
 * Store.CommandTimeout, at most Store.MaxQueued commands), then fails (from
 * the loop, never re-entrantly) with a "store unavailable" error, which the
 * API maps to 503 and the transaction engine to "try again on the next
 * scan". A command already sent when the connection drops, or not answered
 * within Store.CommandTimeout, fails the same way (it may have run: an
 * unknown outcome; a late answer is dropped). With Store.WaitReplicas, a
 * write is answered only once a WAIT behind it confirmed the replicas, and
 * fails as unavailable otherwise. With Redis Sentinel the single Redis is
 * whatever master the sentinels name (store_sentinel.h). */
#ifndef DTMD_STORE_H
#define DTMD_STORE_H

#include "config.h"

#include "rargs.h"

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

/* Exactly one of reply / err is non-NULL. An error reply from Redis arrives as
 * err (its text); err starts with "store unavailable" when the connection is
 * down. The reply is freed by the store after the callback returns. */
typedef void store_cb(void *arg, redisReply *reply, const char *err);

int store_init(struct event_base *base, const dtmd_config *cfg);
void store_shutdown(void); /* pending callbacks get "store unavailable" */
int store_is_up(void);     /* every key reachable: connected (cluster: every slot) */

/* Send a command; takes ownership of cmd's contents (cmd is reset). */
void store_command(rargs *cmd, store_cb *cb, void *arg);

/* Run script `name` (lua/<name>.lua) with nkeys keys: args holds the keys
 * followed by the arguments; takes ownership of args' contents. */
void store_script(const char *name, int nkeys, rargs *args, store_cb *cb, void *arg);

/* The same, but failing at once (from the loop) when its node is not
 * connected, instead of waiting for the connection: for periodic commands
 * that are worth nothing late (liveness.h). */
void store_script_nowait(const char *name, int nkeys, rargs *args, store_cb *cb, void *arg);

/* True if err means the store could not be reached (vs a Redis error). */
int store_err_unavailable(const char *err);

#endif
