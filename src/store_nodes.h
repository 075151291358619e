/* store_nodes.h - the Redis servers behind the store; private to store.c.
 *
 * A node is one Redis server and dtmd's one hiredis async connection to it.
 * With a single Redis there is exactly one node. With Redis Cluster
 * (Store.Host is a comma list) there is one node per master, found with
 * CLUSTER SLOTS from any seed, and a map from each of the 16384 hash slots to
 * the node serving it; store.c routes each command by its first key's slot
 * and reports redirections back here.
 *
 * Every connection sends AUTH (when configured) and SCRIPT LOAD of every
 * script first, ahead of any command, and reconnects in the background with
 * a capped back-off while its node is needed. Nodes live until
 * nodes_shutdown(), so a store_node pointer held by a request stays valid. */
#ifndef DTMD_STORE_NODES_H
#define DTMD_STORE_NODES_H

#include "config.h"

#include <hiredis/async.h>
#include <stddef.h>

struct event_base;
typedef struct store_node store_node;

int nodes_init(struct event_base *base, const dtmd_config *cfg);
/* Close every connection: their pending callbacks get a NULL reply. */
void nodes_shutdown(void);

int nodes_cluster(void); /* Redis Cluster mode */
/* With Redis Sentinel: the master's address as the sentinels last named it;
 * -1 when not known yet (or no Sentinel). Valid until the master moves. */
int nodes_sentinel_master(const char **host, int *port);

/* The whole keyspace is reachable: the Redis is connected, or (cluster)
 * every slot has a node and every such node is connected. */
int nodes_all_up(void);

/* The node for a key's slot: the single Redis whatever the slot; in a
 * cluster the slot's master, any connected node for slot -1 (no key), NULL
 * while the slot's owner is unknown (a refresh is then scheduled). */
store_node *nodes_for_slot(int slot);

/* The node at host:port, added and connected if it is new (a redirection
 * target). NULL only while shutting down. */
store_node *nodes_at(const char *host, int port);

/* MOVED: slot is served by n from now on; the whole map is refreshed soon. */
void nodes_slot_moved(int slot, store_node *n);

/* Close n's connection now (a command on it got no answer in time, or the
 * server is not the master): its unanswered commands get a NULL reply; it is
 * opened again after the usual back-off. */
void nodes_drop(store_node *n, const char *why);

/* A command on n was refused as it is not a master (READONLY): with
 * Sentinel, close and ask the sentinels again; otherwise only logged. */
void nodes_not_master(store_node *n, const char *err);

/* The script's SHA1 once a SCRIPT LOAD answered, else "". */
const char *nodes_script_sha(int idx);

const char *node_host(const store_node *n);
int node_port(const store_node *n);
int node_index(const store_node *n);              /* 0.. in the order nodes became known; stable */
store_node *node_of(const redisAsyncContext *ac); /* the node a reply came from */

/* Send a command to n. With queue, also while the connection is still being
 * established (hiredis buffers it behind AUTH and SCRIPT LOAD); without, only
 * when connected. REDIS_OK, or REDIS_ERR when it cannot be sent (fn is then
 * not called). */
int node_send(store_node *n, int queue, redisCallbackFn *fn, void *privdata, int argc,
              const char **argv, const size_t *lens);

#endif
