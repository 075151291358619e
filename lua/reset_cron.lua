-- reset_cron.lua: make long-stalled transactions of one shard due now.
--
-- Transactions whose due time lies at least `timeout` in the future (their
-- back-off grew long) are moved to now, up to `limit` of them.
-- KEYS[1] shard due zset
-- ARGV[1] threshold (now + timeout, ms), ARGV[2] now (ms), ARGV[3] limit
-- Returns {moved, more} where more = 1 if further members matched.
local limit = tonumber(ARGV[3])
local gids = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf', 'LIMIT', 0, limit + 1)
local moved = 0
for i, gid in ipairs(gids) do
  if i > limit then
    break
  end
  redis.call('ZADD', KEYS[1], ARGV[2], gid)
  moved = moved + 1
end
local more = 0
if #gids > limit then
  more = 1
end
return {moved, more}
