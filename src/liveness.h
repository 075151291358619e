/* liveness.h - this process's identity and its liveness on each shard.
 *
 * A hold on a transaction (engine.h) names the process that holds it; it
 * counts only while that process is live on the transaction's shard, so a
 * process that dies or stalls loses its holds within LIVENESS_TTL_MS and
 * another one takes its transactions over (docs/failover.md). Liveness is
 * per shard, kept in the shard's own slot (keys.h: <prefix>{<shard>}:live),
 * so on Redis Cluster one script sees a transaction and its holder's
 * liveness together, and a node that stops answering only costs the holds of
 * the shards it serves. Once a second lua/live.lua refreshes this process's
 * field in every shard (one round, pipelined: a constant cost, not one per
 * transaction).
 *
 * The process's own view, by its monotonic clock (CLOCK_BOOTTIME, so that a
 * suspended host counts): a refresh sent at t0 and answered OK keeps it live
 * on that shard until t0 + LIVENESS_TTL_MS - LIVENESS_MARGIN_MS. Redis
 * counts the field from when it runs the script (not before t0), by its own
 * clock; the margin covers the two clocks' rates differing. */
#ifndef DTMD_LIVENESS_H
#define DTMD_LIVENESS_H

#include "config.h"

#include <stdint.h>

struct event_base;

#define LIVENESS_TTL_MS 2000
#define LIVENESS_MARGIN_MS 250
#define LIVENESS_PERIOD_MS 1000

int liveness_init(struct event_base *base, const dtmd_config *cfg);
void liveness_shutdown(void);

/* This process's identity (16 hex digits, new at every start). */
const char *liveness_id(void);

/* Monotonic microseconds (CLOCK_BOOTTIME): when a hold was asked for. */
int64_t liveness_now_us(void);

/* May this process act on a hold of a transaction in shard, taken by a
 * command sent at sent_us? Only while it is live on the shard now and has
 * stayed live without a gap since before that command was sent: a gap means
 * another process may have taken the hold over meanwhile. */
int liveness_holds(int shard, int64_t sent_us);

/* The view of one shard, and its arithmetic (pure, unit tested). */
typedef struct live_view {
    int64_t since_us; /* holds asked for after this count (0 = never live) */
    int64_t until_us; /* live until then */
} live_view;

/* A refresh sent at t0 was answered at now; prev_valid: live.lua found this
 * process's field unexpired. A gap - the field had expired in Redis, or the
 * view had (t0 at or past until) - loses every hold taken before: holds
 * count again only when asked for after now. A command sent after this
 * answer runs after the refresh, whatever order the store sent the two in
 * (a command may wait for a connection and go out after a later one). */
void liveness_view_refreshed(live_view *v, int64_t t0, int64_t now, int prev_valid);
/* May a hold asked for at sent be acted on at now? */
int liveness_view_holds(const live_view *v, int64_t sent, int64_t now);

/* cb runs when a refresh found a dead process's holds and made them due
 * (the scanner should look now rather than at its next tick). */
void liveness_set_takeover_cb(void (*cb)(void));

#endif
