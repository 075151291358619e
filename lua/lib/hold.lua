-- lib/hold.lua: the hold and liveness helpers of the scripts that take or
-- keep a hold (claim, lease_load, lease_move, live, save_new), written once:
-- src/gen_lua.sh puts this file where a script says "--@include hold".
-- Every key they touch shares the script's shard tag (keys.h), so the
-- per-owner set (<live hash>:<owner>) is in the script's slot.
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
-- This process is live on the shard from now for ttl ms (live.lua). If
-- its liveness had lapsed, it starts a new epoch and its holds of the old
-- one become due now: it gave them up. An epoch is never reused, even when
-- the store lost the shard's counter (a flush, a restart without its data,
-- a failover to a replica behind): a new one is the counter plus one or
-- Redis' time in ms, whichever is larger, so it is above every epoch a
-- process can still remember (src/liveness.c ignores lower ones as late).
-- Returns the epoch the process's holds taken now belong to.
local function touch(live, due, me, ttl)
  local t = redis.call('TIME')
  local now = t[1] * 1000 + math.floor(t[2] / 1000)
  local ep = redis.call('HGET', live, 'e:' .. me)
  if not ep or (tonumber(redis.call('HGET', live, me) or '0') or 0) <= now then
    ep = math.max((tonumber(redis.call('HGET', live, '#epoch') or '0') or 0) + 1, now)
    ep = string.format('%.0f', ep)
    redis.call('HSET', live, '#epoch', ep)
    redis.call('HSET', live, 'e:' .. me, ep)
    local set = live .. ':' .. me
    for _, gid in ipairs(redis.call('SMEMBERS', set)) do
      redis.call('ZADD', due, 'XX', now, gid)
    end
    redis.call('DEL', set)
  end
  redis.call('HSET', live, me, now + tonumber(ttl))
  return tonumber(ep)
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
