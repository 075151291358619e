-- cas_update.lua: one state transition of a stored transaction.
--
-- Compare-and-set on the global status, then write fields and keep the shard's
-- due index in step, all in one atomic script, so that a crash between any two
-- Redis calls can never leave a transaction half-changed or unscheduled.
--
-- KEYS[1] transaction hash, KEYS[2] shard due zset, KEYS[3] shard expiry zset
-- (needed with a TTL: it gets the time the hash expires, index_trim.lua)
-- ARGV[1] gid
-- ARGV[2] expected statuses: '' = any, else a comma list ('submitted,aborting')
-- ARGV[3] due index: '' = leave, '-' = remove (finished), else the new due time (ms)
-- ARGV[4] TTL in seconds for the hash, '0' = leave
-- ARGV[5..] field/value pairs to write
-- Returns {'OK', <status before>} / {'CONFLICT', <status>} / {'NOT_FOUND', ''}.
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then
  return {'NOT_FOUND', ''}
end
if ARGV[2] ~= '' and not string.find(',' .. ARGV[2] .. ',', ',' .. cur .. ',', 1, true) then
  return {'CONFLICT', cur}
end
if #ARGV >= 6 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 5))
end
if ARGV[3] == '-' then
  redis.call('ZREM', KEYS[2], ARGV[1])
elseif ARGV[3] ~= '' then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
end
if ARGV[4] ~= '0' then
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  -- the hash's expiry by Redis' clock, as EXPIRE counts it (index_trim.lua)
  local now = redis.call('TIME')
  redis.call('ZADD', KEYS[3], string.format('%.0f', now[1] * 1000 + math.floor(now[2] / 1000) + ARGV[4] * 1000), ARGV[1])
end
return {'OK', cur}
