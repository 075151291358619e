-- lease_due.lua: hand out due transactions of one shard to one dtmd process.
--
-- Every member whose due time has come is moved to now + lease in the same
-- atomic step, so two dtmd processes sharing a store never drive the same
-- transaction at the same time; if the process dies, the lease runs out and
-- another one picks the transaction up.
--
-- KEYS[1] shard due zset
-- ARGV[1] now (ms), ARGV[2] lease end (ms), ARGV[3] max count
-- Returns the leased gids.
local gids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, gid in ipairs(gids) do
  redis.call('ZADD', KEYS[1], ARGV[2], gid)
end
return gids
