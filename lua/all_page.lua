-- all_page.lua: the next entries of one shard's index for /all, newest first.
--
-- The index (keys.h) holds gid -> creation time (ms); /all lists by
-- (creation time, gid), both descending, which is the zset's reverse order.
-- The cursor is the last (time, gid) a page looked at, in whichever shard:
-- this finds where it would stand in this shard's index by rank, so the cost
-- stays O(log n) per call even when many gids share one time (the score-0
-- gids of an older dtmd not adopted yet: retention.c), and a transaction
-- stored meanwhile (a later time) never shifts the pages after the cursor.
--
-- KEYS[1] shard index zset
-- ARGV[1] cursor time ('' = from the newest), ARGV[2] cursor gid, ARGV[3] count
-- Returns {gid, time, gid, time, ...} (ZREVRANGE WITHSCORES).
local n = tonumber(ARGV[3])
local start = 0
if ARGV[1] ~= '' then
  local t, g = ARGV[1], ARGV[2]
  -- byte order, as the zset orders members (Lua's < follows the locale)
  local function before(a, b)
    local m = math.min(#a, #b)
    for i = 1, m do
      local x, y = string.byte(a, i), string.byte(b, i)
      if x ~= y then
        return x < y
      end
    end
    return #a < #b
  end
  -- reverse ranks [lo, hi) hold the gids of time t, in descending gid order:
  -- find the first one below g
  local lo = redis.call('ZCOUNT', KEYS[1], '(' .. t, '+inf')
  local hi = lo + redis.call('ZCOUNT', KEYS[1], t, t)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local m = redis.call('ZREVRANGE', KEYS[1], mid, mid)[1]
    if before(m, g) then
      hi = mid
    else
      lo = mid + 1
    end
  end
  start = lo
end
return redis.call('ZREVRANGE', KEYS[1], start, start + n - 1, 'WITHSCORES')
