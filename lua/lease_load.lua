-- lease_load.lua: the cron scanner takes one transaction it leased from the
-- due index (lease_due.lua) and reads it, unless a process holds it (a
-- request's claim.lua, or a pass still running): then that process drives
-- it. A hold whose owner's liveness lapsed is taken over (docs/failover.md).
--
-- KEYS[1] transaction hash, KEYS[2] shard live hash
-- ARGV[1] now (ms), ARGV[2] lease end (ms), ARGV[3] this process's identity,
-- ARGV[4] gid
-- Returns {'OK', <hash>} / {'BUSY'} / {'NOT_FOUND'}.
-- The owner of a hold that still counts, '' for a hold without an owner
-- (its lease_until alone counts), or nil: no hold, its lease_until passed,
-- or its owner's liveness lapsed (docs/failover.md; live.lua).
local function holder(hash, live, gid, now)
  local h = redis.call('HMGET', hash, 'lease_until', 'lease_owner')
  if (tonumber(h[1] or '0') or 0) <= now then
    return nil
  end
  if not h[2] or h[2] == '' then
    return ''
  end
  local t = redis.call('TIME')
  local exp = tonumber(redis.call('HGET', live, h[2]) or '0') or 0
  if exp <= t[1] * 1000 + math.floor(t[2] / 1000) then
    return nil
  end
  if redis.call('SISMEMBER', live .. ':' .. h[2], gid) == 0 then
    return nil
  end
  return h[2]
end
-- Take the hold for owner me until `untl`, from whoever had it.
local function take(hash, live, gid, me, untl)
  local old = redis.call('HGET', hash, 'lease_owner')
  if old and old ~= '' and old ~= me then
    redis.call('SREM', live .. ':' .. old, gid)
  end
  redis.call('HSET', hash, 'lease_until', untl, 'lease_owner', me)
  redis.call('SADD', live .. ':' .. me, gid)
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'NOT_FOUND'}
end
if holder(KEYS[1], KEYS[2], ARGV[4], tonumber(ARGV[1])) then
  return {'BUSY'}
end
take(KEYS[1], KEYS[2], ARGV[4], ARGV[3], ARGV[2])
return {'OK', redis.call('HGETALL', KEYS[1])}
