/* retention.h - keeps each shard's gid index as small as the store.
 *
 * The index zset (keys.h "idx", for /all) gets a gid with every stored
 * transaction, scored by its creation time; the hash itself expires
 * (Store.DataExpire, then Store.FinishedDataExpire once finished) but the
 * index entry would stay for ever. At each retry scanner tick (cron.c), at
 * most once a second, retention_tick walks each shard's index a few bounded
 * steps further from its oldest end, removing the gids whose hash is gone
 * (lua/index_trim.lua, EXISTS per gid in the same atomic step). The walk's
 * cursor (the last score and gid looked at) lives here, in memory; a walk
 * ends where entries are too recent to have expired (the shorter of the two
 * TTLs ago) and the next tick starts again from the oldest end, so a
 * long-running transaction is looked at once per pass and leaves once its
 * hash has expired. Processes sharing a store each walk on their own: a
 * removal is the same whoever does it.
 *
 * A dtmd before the walk also kept a second zset per shard, gid -> expiry
 * time ("exp"); its gids are all in the index, so it is deleted once per
 * shard after each start.
 *
 * Gids stored by an older dtmd still have score 0 in the index (it listed
 * /all in gid order): after each start every shard's score-0 gids are walked
 * once in batches (a few per shard and tick), and get their creation time as
 * score, or leave the index if the hash is gone (lua/index_adopt.lua). */
#ifndef DTMD_RETENTION_H
#define DTMD_RETENTION_H

#include "config.h"

void retention_init(const dtmd_config *cfg);
void retention_tick(void);
void retention_shutdown(void); /* replies arriving later are ignored */

#endif
