/* retention.h - keeps each shard's gid index as small as the store.
 *
 * The index zset (keys.h "idx", for /all) gets a gid with every stored
 * transaction; the hash itself expires (Store.DataExpire, then
 * Store.FinishedDataExpire once finished) but the index entry would stay for
 * ever. Every script that sets a hash's TTL also records when it expires in
 * the shard's expiry zset ("exp"); at each retry scanner tick (cron.c), at
 * most once a second, retention_tick trims, per shard, the gids whose time
 * has passed from both zsets (lua/index_trim.lua, a bounded batch, repeated a
 * few times while the batches come back full).
 *
 * Gids stored by an older dtmd have score 0 in the index (it listed /all in
 * gid order), and from the oldest no time in the expiry zset: after each
 * start every shard's score-0 gids are walked once in batches (a few per
 * shard and tick), and get their creation time as score and, if missing,
 * their hash's remaining TTL, or leave the index if the hash is gone
 * (lua/index_adopt.lua). */
#ifndef DTMD_RETENTION_H
#define DTMD_RETENTION_H

#include "config.h"

void retention_init(const dtmd_config *cfg);
void retention_tick(void);
void retention_shutdown(void); /* replies arriving later are ignored */

#endif
