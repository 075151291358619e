-- live.lua: one process says it is alive on one shard, and takes note of the
-- processes that stopped saying so (docs/failover.md).
--
-- A hold on a transaction names its owner (lease_owner); it counts only while
-- the owner's field here has not expired by Redis' clock and the gid is in
-- the owner's set <live key>:<owner>. Every process runs this once a second
-- per shard (and the scripts that take a hold do the same, touch()). Each
-- run also sweeps: an owner whose field expired loses its field and its set,
-- and the gids of that set become due now, so the next scan of any process
-- takes them over (lease_load.lua) without waiting for the hold's own
-- lease_until. The set key is built here from the live key: it carries the
-- same hash tag, so it lives in the same cluster slot.
--
-- A process that was swept, or whose field lapsed, gets a new epoch when it
-- is next live: field 'e:<owner>', from the shard's counter '#epoch'. Its
-- holds of an older epoch are lost to it (src/liveness.h).
--
-- KEYS[1] shard live hash, KEYS[2] shard due zset
-- ARGV[1] this process's identity, ARGV[2] liveness TTL (ms)
-- Returns {epoch, number of gids made due by the sweep}.
--@include hold
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local swept = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local f = all[i]
  if f ~= '#epoch' and string.sub(f, 1, 2) ~= 'e:' and f ~= ARGV[1] and
      (tonumber(all[i + 1]) or 0) <= now then
    local set = KEYS[1] .. ':' .. f
    for _, gid in ipairs(redis.call('SMEMBERS', set)) do
      redis.call('ZADD', KEYS[2], 'XX', now, gid)
      swept = swept + 1
    end
    redis.call('DEL', set)
    redis.call('HDEL', KEYS[1], f, 'e:' .. f)
  end
end
return {touch(KEYS[1], KEYS[2], ARGV[1], ARGV[2]), swept}
