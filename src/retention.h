/* retention.h - keeps each shard's gid index as small as the store.
 *
 * The index stream (keys.h "ix", for /all) gets an entry with every stored
 * transaction, its id Redis' time of the store; the hash itself expires
 * (Store.DataExpire, then Store.FinishedDataExpire once finished) but the
 * entry would stay for ever. At each retry scanner tick (cron.c), at most
 * once a second, retention_tick walks each shard's stream a few bounded
 * steps further from its oldest id, deleting the entries whose hash is gone
 * or which are stale (lua/index_trim.lua, reading each hash in the same
 * atomic step). The walk's cursor (the last id looked at) lives here, in
 * memory; a walk ends where entries are too recent to have expired (the
 * shorter of the two TTLs ago) and the next tick starts again from the
 * oldest id, so a long-running transaction is looked at once per pass and
 * leaves once its hash has expired. Processes sharing a store each walk on
 * their own: a deletion is the same whoever does it.
 *
 * Stale entries: a gid stored again after its hash expired gets a second
 * entry; the first one's ms is then earlier than the new hash's creation
 * time (ct) by at least the first hash's TTL, its own entry's by at most the
 * skew between dtmd's and Redis' clocks. Half the shortest TTL tells them
 * apart (retention_stale_ms): /all skips such entries, the walk deletes
 * them. Nothing else is stored for it.
 *
 * An older dtmd's index is a zset per shard ("idx", gid -> creation time):
 * each tick moves it into the stream in bounded batches, oldest first
 * (lua/index_migrate.lua; its score-0 gids of an even older dtmd first get
 * their hash's creation time, gids whose hash is gone are dropped); /all
 * reads both until the zset is gone. A dtmd before the walk also kept a
 * zset gid -> expiry time ("exp"); its gids are all in the index, so it is
 * deleted once per shard after each start. */
#ifndef DTMD_RETENTION_H
#define DTMD_RETENTION_H

#include "config.h"

#include <stdint.h>

void retention_init(const dtmd_config *cfg);
void retention_tick(void);
void retention_shutdown(void); /* replies arriving later are ignored */
/* How much later than its index entry's ms a hash's creation time may be
 * for the entry to be the hash's own (a later one: stale). */
int64_t retention_stale_ms(const dtmd_config *cfg);

#endif
