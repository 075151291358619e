-- lease_load.lua: the cron scanner takes one transaction it leased from the
-- due index (lease_due.lua) and reads it, unless a process holds it (a
-- request's claim.lua, or a pass still running): then that process drives
-- it. A hold whose owner's liveness lapsed is taken over (docs/failover.md).
--
-- KEYS[1] transaction hash, KEYS[2] shard live hash, KEYS[3] shard due zset
-- ARGV[1] now (ms), ARGV[2] lease end (ms), ARGV[3] this process's identity,
-- ARGV[4] gid, ARGV[5] its liveness TTL (ms)
-- Returns {'OK', <hash>, <epoch>} / {'BUSY'} / {'NOT_FOUND'}.
--@include hold
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'NOT_FOUND'}
end
if holder(KEYS[1], KEYS[2], ARGV[4], tonumber(ARGV[1])) then
  return {'BUSY'}
end
local ep = touch(KEYS[2], KEYS[3], ARGV[3], ARGV[5])
take(KEYS[1], KEYS[2], ARGV[4], ARGV[3], ARGV[2])
return {'OK', redis.call('HGETALL', KEYS[1]), ep}
