-- live.lua: one process says it is alive on one shard, and takes note of the
-- processes that stopped saying so (docs/failover.md).
--
-- A hold on a transaction names its owner (lease_owner); it counts only while
-- the owner's field here has not expired by Redis' clock and the gid is in
-- the owner's set <live key>:<owner>. Every process runs this once a second
-- per shard. Each run also sweeps: an owner whose field expired loses its
-- field and its set, and the gids of that set become due now, so the next
-- scan of any process takes them over (lease_load.lua) without waiting for
-- the hold's own lease_until. The set key is built here from the live key:
-- it carries the same hash tag, so it lives in the same cluster slot.
--
-- KEYS[1] shard live hash, KEYS[2] shard due zset
-- ARGV[1] this process's identity, ARGV[2] liveness TTL (ms)
-- Returns {1 if this process's field was still valid before this run else 0,
--          number of gids made due by the sweep}.
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local prev = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') or 0
local swept = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if (tonumber(all[i + 1]) or 0) <= now then
    local set = KEYS[1] .. ':' .. all[i]
    for _, gid in ipairs(redis.call('SMEMBERS', set)) do
      redis.call('ZADD', KEYS[2], 'XX', now, gid)
      swept = swept + 1
    end
    redis.call('DEL', set)
    redis.call('HDEL', KEYS[1], all[i])
  end
end
redis.call('HSET', KEYS[1], ARGV[1], now + tonumber(ARGV[2]))
return {prev > now and 1 or 0, swept}
