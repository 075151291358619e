-- index_trim.lua: forget the gids whose transaction hash has expired.
--
-- The shard's index zset (for /all) would otherwise keep every gid ever
-- stored. The expiry zset holds, for each gid, when its hash expires (ms, by
-- Redis' clock, written by save_new.lua and cas_update.lua together with the
-- EXPIRE; index_adopt.lua for gids stored by an older dtmd). A gid whose time
-- lies more than a margin in the past (covering the few microseconds between
-- EXPIRE's clock and TIME's) has no hash any more: it leaves both zsets. A gid
-- stored again meanwhile got a later time from save_new, so it stays.
--
-- KEYS[1] shard index zset, KEYS[2] shard expiry zset
-- ARGV[1] max count, ARGV[2] margin (ms)
-- Returns the number of gids removed.
local now = redis.call('TIME')
local before = now[1] * 1000 + math.floor(now[2] / 1000) - ARGV[2]
local gids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. string.format('%.0f', before),
  'LIMIT', 0, ARGV[1])
for _, gid in ipairs(gids) do
  redis.call('ZREM', KEYS[1], gid)
end
if #gids > 0 then
  -- the lowest scores, so ranks 0 .. n-1
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, #gids - 1)
end
return #gids
