/* stop_sub.h - hears stops asked for through other processes.
 *
 * A request that ends a transaction another live process holds (forceStop,
 * msg abort, workflow submit) records the stop on it and publishes the gid
 * on <prefix>stop (lua/cas_update.lua). Every dtmd subscribes on a
 * connection of its own (Redis Cluster delivers a PUBLISH to subscribers on
 * every node) and hands each gid to engine_stop_requested. A message lost
 * while disconnected only delays the stop: the holder's next write is told
 * of it, and the request publishes again while it waits (docs/requests.md). */
#ifndef DTMD_STOP_SUB_H
#define DTMD_STOP_SUB_H

#include "config.h"
#include "util.h"

struct event_base;

int stop_sub_init(struct event_base *base, const dtmd_config *cfg);
void stop_sub_shutdown(void);

/* The channel's name: <prefix>stop. */
void stop_sub_channel(sbuf *out, const char *prefix);

#endif
