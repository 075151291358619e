-- index_trim.lua: one bounded step of a walk over a shard's gid index from
-- its oldest end, forgetting the gids whose transaction hash has expired.
--
-- The index (for /all) would otherwise keep every gid ever stored. Its score
-- is the creation time, and every TTL dtmd gives a hash is set at or after
-- creation, so a hash can have expired only if it was created at least the
-- shortest TTL ago (ARGV[5]: the smaller of Store.DataExpire and
-- Store.FinishedDataExpire): the walk stops there. The margin (ARGV[6]) lets
-- a creation time read on a dtmd clock slightly ahead of Redis' still count.
-- A gid is removed only if its hash does not exist, checked here in the same
-- atomic step, so a gid stored again meanwhile (a new hash) keeps its entry.
--
-- The caller keeps the cursor: the (score, gid) last looked at; the step
-- starts just after it in the zset's order (score, then gid bytes), found by
-- rank so that gids sharing a millisecond are neither skipped nor seen twice,
-- even when the cursor's own entry has just been removed.
--
-- KEYS[1] shard index zset
-- ARGV[1] the shard's transaction hash key without the gid (keys.h: the same
-- slot), ARGV[2] cursor score ('' = from the oldest end), ARGV[3] cursor gid,
-- ARGV[4] entries to look at at most, ARGV[5] shortest TTL (ms), ARGV[6]
-- margin (ms)
-- Returns {<gids removed>, <entries looked at>, <last score>, <last gid>,
-- <1 = the walk is over: it reached the bound or the index's end>}.
local now = redis.call('TIME')
local bound = now[1] * 1000 + math.floor(now[2] / 1000) - tonumber(ARGV[5]) + tonumber(ARGV[6])
local n = tonumber(ARGV[4])
local start = 0
if ARGV[2] ~= '' then
  local s, g = ARGV[2], ARGV[3]
  -- byte order, as the zset orders members (Lua's < follows the locale)
  local function after(a, b)
    local m = math.min(#a, #b)
    for i = 1, m do
      local x, y = string.byte(a, i), string.byte(b, i)
      if x ~= y then
        return x > y
      end
    end
    return #a > #b
  end
  -- ranks [lo, hi) hold the gids of score s in ascending gid order: find the
  -- first one after g
  local lo = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. s)
  local hi = lo + redis.call('ZCOUNT', KEYS[1], s, s)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if after(redis.call('ZRANGE', KEYS[1], mid, mid)[1], g) then
      hi = mid
    else
      lo = mid + 1
    end
  end
  start = lo
end
local page = redis.call('ZRANGE', KEYS[1], start, start + n - 1, 'WITHSCORES')
local removed, looked = 0, 0
local last_s, last_g = ARGV[2], ARGV[3]
local over = #page < 2 * n
for i = 1, #page, 2 do
  local gid, score = page[i], page[i + 1]
  if tonumber(score) > bound then
    over = true
    break
  end
  looked = looked + 1
  last_s, last_g = score, gid
  if redis.call('EXISTS', ARGV[1] .. gid) == 0 then
    redis.call('ZREM', KEYS[1], gid)
    removed = removed + 1
  end
end
return {removed, looked, last_s, last_g, over and 1 or 0}
