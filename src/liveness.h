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
 * suspended host counts): every script that refreshes its field (live.lua,
 * and those that take a hold) answers with the epoch it is live in; one
 * sent at t0 and answered keeps it live in that epoch until t0 +
 * LIVENESS_TTL_MS - LIVENESS_MARGIN_MS. Redis counts the field from when it
 * runs the script (not before t0), by its own clock; the margin covers the
 * two clocks' rates differing. A lapse, seen by Redis or by the process,
 * means a new epoch, and a hold is acted on only in the epoch it was taken
 * in: another process may have taken it over in the gap. */
#ifndef DTMD_LIVENESS_H
#define DTMD_LIVENESS_H

#include "config.h"
#include "store.h"

#include <stdint.h>

struct event_base;

#define LIVENESS_TTL_MS 2000
#define LIVENESS_MARGIN_MS 250
#define LIVENESS_PERIOD_MS 1000

int liveness_init(struct event_base *base, const dtmd_config *cfg);
void liveness_shutdown(void);

/* This process's identity (16 hex digits, new at every start). */
const char *liveness_id(void);

/* Monotonic microseconds (CLOCK_BOOTTIME): when a script was sent. */
int64_t liveness_now_us(void);

/* A script that refreshed this process's liveness on shard, sent at sent_us,
 * answered with epoch (0 or less: it did not; ignored). */
void liveness_note(int shard, int64_t sent_us, int64_t epoch);

/* May this process act on a hold in shard taken in epoch, now? */
int liveness_holds(int shard, int64_t epoch);

/* The epoch this process is live in on shard now, 0 if it is not. */
int64_t liveness_epoch(int shard);

/* The view of one shard, and its arithmetic (pure, unit tested). */
typedef struct live_view {
    int64_t epoch;    /* 0 = never live */
    int64_t until_us; /* live in epoch until then */
} live_view;

/* A refresh sent at t0 answered with epoch e. An older epoch's answer
 * (overtaken by a newer one) changes nothing; a newer epoch replaces the
 * view: the holds of the old one are lost. */
void liveness_view_note(live_view *v, int64_t t0, int64_t e);
/* May a hold taken in epoch e be acted on at now? */
int liveness_view_holds(const live_view *v, int64_t e, int64_t now);

/* cb runs when a refresh found a dead process's holds and made them due
 * (the scanner should look now rather than at its next tick). */
void liveness_set_takeover_cb(void (*cb)(void));

#endif
