-- save_new.lua: store a new transaction atomically, unless its gid exists.
--
-- KEYS[1] transaction hash, KEYS[2] shard due zset, KEYS[3] shard index
-- stream (gets an entry, its id Redis' time: /all lists newest first,
-- all_page.lua; the trimmer, index_trim.lua, walks it from the oldest id),
-- KEYS[4] shard live hash, KEYS[5] the older dtmd's index zset: while it
-- exists the gid goes there instead, scored by its creation time, so that
-- its entries, moved into the stream oldest first (index_migrate.lua), keep
-- the stream's ids in creation order
-- ARGV[1] gid, ARGV[2] due time (ms), or '-' for a transaction stored already
-- finished (it settled at creation: engine_settle_new), ARGV[3] TTL (s),
-- ARGV[4] creation time (ms, the hash's create_time; the zset's score),
-- ARGV[5] the identity of the process that holds it from now on ('' = none:
-- the fields then carry no lease_until), ARGV[6] its liveness TTL (ms),
-- ARGV[7..] field/value pairs
-- Returns {'OK', '', <epoch of the hold, 0 = none>} or {'EXISTS', <current
-- status>, <current type>}; an
-- existing transaction is never modified (dtmd never overwrites stored fields).
--@include hold
local cur = redis.call('HMGET', KEYS[1], 'status', 'trans_type')
if cur[1] then
  return {'EXISTS', cur[1], cur[2] or ''}
end
-- Lua's unpack takes at most about 8,000 values: write in bounded chunks.
for i = 7, #ARGV, 1000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
local ep = 0
if ARGV[5] ~= '' then
  ep = touch(KEYS[4], KEYS[2], ARGV[5], ARGV[6])
  redis.call('HSET', KEYS[1], 'lease_owner', ARGV[5])
  redis.call('SADD', KEYS[4] .. ':' .. ARGV[5], ARGV[1])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
if ARGV[2] ~= '-' then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
end
if redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('ZADD', KEYS[5], ARGV[4], ARGV[1])
else
  redis.call('XADD', KEYS[3], '*', 'g', ARGV[1])
end
return {'OK', '', tostring(ep)}
