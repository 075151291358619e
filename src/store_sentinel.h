/* store_sentinel.h - finding the Redis master through Redis Sentinel;
 * private to store_nodes.c.
 *
 * With Store.SentinelAddrs the master's address is not configured but asked
 * for: one connection to a sentinel at a time asks SENTINEL
 * get-master-addr-by-name and, pipelined behind it, subscribes to
 * +switch-master, so a failover is heard of as soon as the sentinels decide
 * it. Each answer goes to the callback given to sentinel_init, which moves
 * the store to that address when it changed. When the master's connection
 * fails, sentinel_reask() asks again (another sentinel, in turn), at most
 * once a second. Nothing here blocks the loop. */
#ifndef DTMD_STORE_SENTINEL_H
#define DTMD_STORE_SENTINEL_H

#include "config.h"

struct event_base;

/* The sentinels name host:port as the master (possibly the same as before). */
typedef void sentinel_master_fn(const char *host, int port);

void sentinel_init(struct event_base *base, const dtmd_config *cfg, sentinel_master_fn *fn);
/* The master's connection failed, or the server is not a master: ask again. */
void sentinel_reask(void);
void sentinel_shutdown(void);

#endif
