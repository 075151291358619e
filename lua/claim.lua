-- claim.lua: a request takes a stored transaction over to drive it now.
--
-- A repeated submit or abort may reach any dtmd process sharing the store
-- while another one is calling the transaction's branches; driving it there
-- too would call a branch twice at once. Whoever drives a transaction holds
-- it: the hash field lease_until, set when it starts (save_new for a new
-- submit, lease_load.lua for the cron scanner, this script for a request),
-- extended while calls run and cleared when the pass ends unfinished
-- (lease_move.lua). A request drives at once, as dtm does, unless somebody
-- holds the transaction: then it answers from the stored state instead. A
-- request that moves the status out of one (prepared -> submitted) needs no
-- hold: its compare-and-set excludes every other driver, whose own CAS fails.
-- The due index moves to the lease end in the same step, so no scanner
-- offers the transaction meanwhile.
--
-- KEYS[1] transaction hash, KEYS[2] shard due zset
-- ARGV[1] gid
-- ARGV[2] expected statuses (comma list)
-- ARGV[3] statuses that a hold blocks (comma list, '' = none)
-- ARGV[4] now (ms), ARGV[5] lease end (ms)
-- ARGV[6..] field/value pairs to write
-- Returns {'OK', <status before>, <hash as after the write>}
--       / {'BUSY', <status>, <held until>} / {'CONFLICT', <status>} / {'NOT_FOUND', ''}.
local function listed(list, s)
  return list ~= '' and string.find(',' .. list .. ',', ',' .. s .. ',', 1, true) ~= nil
end
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then
  return {'NOT_FOUND', ''}
end
if not listed(ARGV[2], cur) then
  return {'CONFLICT', cur}
end
local held = tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0') or 0
if listed(ARGV[3], cur) and held > tonumber(ARGV[4]) then
  return {'BUSY', cur, tostring(held)}
end
if #ARGV >= 7 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 6))
end
redis.call('HSET', KEYS[1], 'lease_until', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
return {'OK', cur, redis.call('HGETALL', KEYS[1])}
