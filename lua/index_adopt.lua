-- index_adopt.lua: give gids of the shard's index that have no expiry time
-- (stored by an older dtmd: index_legacy.lua) the time their hash expires,
-- or drop them from the index if the hash is gone.
--
-- Checked here again, in one atomic step with the hash: a gid that a current
-- dtmd stored meanwhile has its time already and is left alone. A hash
-- without a TTL (never written by dtmd) keeps its gid as it is.
--
-- KEYS[1] shard index zset, KEYS[2] shard expiry zset, KEYS[2 + i] the hash of ARGV[i]
-- ARGV[1..n] gids
-- Returns {<gids given a time>, <gids dropped>}.
local now = redis.call('TIME')
local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
local adopted, dropped = 0, 0
for i, gid in ipairs(ARGV) do
  if redis.call('ZSCORE', KEYS[1], gid) and not redis.call('ZSCORE', KEYS[2], gid) then
    local pttl = redis.call('PTTL', KEYS[2 + i])
    if pttl == -2 then
      redis.call('ZREM', KEYS[1], gid)
      dropped = dropped + 1
    elseif pttl >= 0 then
      redis.call('ZADD', KEYS[2], string.format('%.0f', now_ms + pttl), gid)
      adopted = adopted + 1
    end
  end
end
return {adopted, dropped}
