-- claim.lua: a request takes a stored transaction over to drive it now.
--
-- A repeated submit or abort may reach any dtmd process sharing the store
-- while another one is calling the transaction's branches; driving it there
-- too would call a branch twice at once. Whoever drives a transaction holds
-- it: the hash fields lease_until and lease_owner (the process's identity),
-- set when it starts (save_new for a new submit, lease_load.lua for the cron
-- scanner, this script for a request), extended while calls run and cleared
-- when the pass ends unfinished (lease_move.lua). A hold counts while its
-- owner is live on the shard (live.lua) and its lease_until has not passed
-- (docs/failover.md). A request drives at once, as dtm does, unless somebody
-- holds the transaction: then it answers from the stored state instead. A
-- request that moves the status out of one (prepared -> submitted) needs no
-- hold: its compare-and-set excludes every other driver, whose own CAS fails.
-- The due index moves to the lease end in the same step, so no scanner
-- offers the transaction meanwhile.
--
-- A submit of a prepared transaction sets its creation time (ct) to its own
-- time, as dtm does; the hash's field cs adds up how far ct moved so, so that
-- ct - cs stays the time it was stored, which its index entry records (the
-- trimmer and /all tell a gid's stale entries by it: retention.h).
--
-- KEYS[1] transaction hash, KEYS[2] shard due zset, KEYS[3] shard live hash
-- ARGV[1] gid
-- ARGV[2] expected trans_type ('' = any)
-- ARGV[3] expected statuses (comma list)
-- ARGV[4] statuses that a hold blocks (comma list, '' = none)
-- ARGV[5] now (ms), ARGV[6] lease end (ms)
-- ARGV[7] this process's identity, ARGV[8] its liveness TTL (ms)
-- ARGV[9..] field/value pairs to write
-- Returns {'OK', <status before>, <hash as after the write>, <epoch>}
--       / {'BUSY', <status>, <held until>} / {'CONFLICT', <status>, <type>}
--       / {'WRONG_TYPE', <status>, <type>} / {'NOT_FOUND', ''}.
--@include hold
local function listed(list, s)
  return list ~= '' and string.find(',' .. list .. ',', ',' .. s .. ',', 1, true) ~= nil
end
local st = redis.call('HMGET', KEYS[1], 'status', 'trans_type', 'lease_until')
local cur = st[1]
if not cur then
  return {'NOT_FOUND', ''}
end
if ARGV[2] ~= '' and st[2] ~= ARGV[2] then
  return {'WRONG_TYPE', cur, st[2] or ''}
end
if not listed(ARGV[3], cur) then
  return {'CONFLICT', cur, st[2] or ''}
end
if listed(ARGV[4], cur) and holder(KEYS[1], KEYS[3], ARGV[1], tonumber(ARGV[5])) then
  return {'BUSY', cur, st[3]}
end
local ct
if cur == 'prepared' then
  local c = redis.call('HMGET', KEYS[1], 'ct', 'create_time')
  ct = tonumber(c[1] or c[2])
end
-- Lua's unpack takes at most about 8,000 values: write in bounded chunks.
for i = 9, #ARGV, 1000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if ct then
  local moved = (tonumber(redis.call('HGET', KEYS[1], 'ct')) or ct) - ct
  if moved ~= 0 then
    redis.call('HINCRBY', KEYS[1], 'cs', string.format('%.0f', moved))
  end
end
local ep = touch(KEYS[3], KEYS[2], ARGV[7], ARGV[8])
take(KEYS[1], KEYS[3], ARGV[1], ARGV[7], ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])
return {'OK', cur, redis.call('HGETALL', KEYS[1]), ep}
