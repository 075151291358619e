-- lease_load.lua: the cron scanner takes one transaction it leased from the
-- due index (lease_due.lua) and reads it, unless a request of another
-- process claimed it meanwhile (claim.lua): then that process drives it.
--
-- KEYS[1] transaction hash
-- ARGV[1] now (ms), ARGV[2] lease end (ms)
-- Returns {'OK', <hash>} / {'BUSY'} / {'NOT_FOUND'}.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'NOT_FOUND'}
end
local held = tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0') or 0
if held > tonumber(ARGV[1]) then
  return {'BUSY'}
end
redis.call('HSET', KEYS[1], 'lease_until', ARGV[2])
return {'OK', redis.call('HGETALL', KEYS[1])}
