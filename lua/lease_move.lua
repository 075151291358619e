-- lease_move.lua: the driving process extends or gives back its hold on a
-- transaction (claim.lua says what the hold is for).
--
-- While a branch call runs, the hold and the due time must stay ahead of it
-- (engine_hold.c hold_lease); a pass that ends without finishing the transaction
-- gives the hold back, so a repeated submit may drive it at once; SIGTERM
-- gives back both hold and due time (cron.c). The hold is only changed while
-- it is still the caller's - the same lease_until, owner and membership of
-- the owner's set (live.lua) - so a process whose hold was taken over must
-- not take it back from the one that holds it now (docs/failover.md).
--
-- KEYS[1] transaction hash, KEYS[2] shard due zset, KEYS[3] shard live hash
-- ARGV[1] gid
-- ARGV[2] due time: '' = leave, 'GT:<ms>' = raise to, 'XX:<ms>' = set (if listed)
-- ARGV[3] the caller's hold as it knows it ('0' = none: take it if nobody has)
-- ARGV[4] new hold end (ms, '0' = nobody)
-- ARGV[5] the caller's identity, ARGV[6] its liveness TTL (ms)
-- Returns the epoch of the caller's liveness (live.lua, > 0) if the hold
-- changed, else 0.
--@include hold
local mode, due = string.match(ARGV[2], '^(%u%u):(%d+)$')
if mode == 'GT' then
  redis.call('ZADD', KEYS[2], 'XX', 'GT', due, ARGV[1])
elseif mode == 'XX' then
  redis.call('ZADD', KEYS[2], 'XX', due, ARGV[1])
end
local h = redis.call('HMGET', KEYS[1], 'lease_until', 'lease_owner')
if not h[1] and redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local ours = tonumber(ARGV[3]) or 0
if (tonumber(h[1] or '0') or 0) ~= ours then
  return 0
end
local set = KEYS[3] .. ':' .. ARGV[5]
if ours ~= 0 and h[2] and h[2] ~= '' and
    (h[2] ~= ARGV[5] or redis.call('SISMEMBER', set, ARGV[1]) == 0) then
  return 0
end
if ARGV[4] == '0' then
  redis.call('HSET', KEYS[1], 'lease_until', '0', 'lease_owner', '')
  redis.call('SREM', set, ARGV[1])
  return 1
end
if ours ~= 0 then
  -- extending: only within the liveness the hold was taken in; a lapsed
  -- process's holds are lost, not revived with it
  local t = redis.call('TIME')
  if (tonumber(redis.call('HGET', KEYS[3], ARGV[5]) or '0') or 0) <=
      t[1] * 1000 + math.floor(t[2] / 1000) then
    return 0
  end
end
local ep = touch(KEYS[3], KEYS[2], ARGV[5], ARGV[6])
redis.call('HSET', KEYS[1], 'lease_until', ARGV[4], 'lease_owner', ARGV[5])
redis.call('SADD', set, ARGV[1])
return ep
