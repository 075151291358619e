/* keys.h - the Redis key layout, in one place.
 *
 * Every transaction belongs to one of N shards, chosen by a hash of its gid.
 * All keys of a shard carry the same hash tag "{<shard>}", so one Lua script
 * sees a transaction and its shard's indexes in one Redis Cluster slot, and
 * the shards spread over a cluster's masters:
 *
 *   <prefix>{<shard>}:t:<gid>   hash  the transaction and its branches
 *   <prefix>{<shard>}:due       zset  gid -> next due time (ms), unfinished only
 *   <prefix>{<shard>}:ix        stream one entry per stored transaction,
 *                                     its field g = the gid, its id Redis'
 *                                     time of the store (ms-seq); /all merges
 *                                     the shards newest first
 *                                     (lua/all_page.lua); the trimmer walks
 *                                     it from the oldest id and deletes the
 *                                     entries whose hash is gone, or stale
 *                                     (lua/index_trim.lua, retention.h)
 *   <prefix>{<shard>}:idx       zset  the index of an older dtmd: gid ->
 *                                     creation time (ms); written only while
 *                                     it exists, moved into ix in creation
 *                                     order (lua/index_migrate.lua)
 *   <prefix>{<shard>}:exp       zset  no longer written: an older dtmd's gid
 *                                     -> expiry time; deleted at start
 *   <prefix>{<shard>}:live      hash  process identity -> liveness expiry (ms,
 *                                     Redis' clock), e:<identity> -> its epoch,
 *                                     #epoch -> the shard's counter:
 *                                     docs/failover.md
 *   <prefix>{<shard>}:live:<id> set   gids that process holds in the shard;
 *                                     named in the scripts from the live key
 *   <prefix>{kv}:kv:<cat>       hash  key -> KV record JSON (topics, ...) */
#ifndef DTMD_KEYS_H
#define DTMD_KEYS_H

#include "util.h"

#include <stdint.h>

/* FNV-1a of the gid, modulo nshards. Stable across versions: changing it
 * would orphan stored transactions. */
int key_shard(const char *gid, size_t len, int nshards);

void key_trans(sbuf *out, const char *prefix, int shard, const char *gid);
void key_due(sbuf *out, const char *prefix, int shard);
void key_index(sbuf *out, const char *prefix, int shard);     /* ix */
void key_old_index(sbuf *out, const char *prefix, int shard); /* idx */
void key_expiry(sbuf *out, const char *prefix, int shard);
void key_live(sbuf *out, const char *prefix, int shard);
void key_kv(sbuf *out, const char *prefix, const char *cat);

#endif
