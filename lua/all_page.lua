-- all_page.lua: the next entries of one shard's index for /all, newest first.
--
-- The index (keys.h) is a stream: one entry per stored transaction, its id
-- Redis' time of the store, its field g the gid. /all lists by (entry ms,
-- gid), both descending. Within one ms the stream keeps entries in the order
-- they were added, not by gid: each ms answered here is read whole and
-- sorted, so every shard answers in the merge's order, and a cursor inside a
-- ms goes on exactly after its gid. The cursor is the last (ms, gid) a page
-- looked at, in whichever shard; an entry added meanwhile has a later id and
-- never shifts the pages after it. Entries whose hash is gone, or stale (the
-- gid stored again: api_query.c), are left to the caller.
--
-- While an older dtmd's index zset (gid -> creation ms) is being moved into
-- the stream (index_migrate.lua), its entries after the cursor are merged in
-- the same order; the lookup by rank keeps that O(log n) per call.
--
-- KEYS[1] shard index stream, KEYS[2] the older dtmd's index zset
-- ARGV[1] cursor ms ('' = from the newest), ARGV[2] cursor gid, ARGV[3] count
-- Returns {gid, ms, gid, ms, ...}: at most count entries.
--@include ix
local n = tonumber(ARGV[3])
local cur = ARGV[1] ~= ''
local t, g = tonumber(ARGV[1]), ARGV[2]

-- the gids of the stream's ms m, in entry order
local function whole_ms(m)
  local gids = {}
  for _, e in ipairs(redis.call('XRANGE', KEYS[1], m, m)) do
    gids[#gids + 1] = entry_gid(e)
  end
  return gids
end

local out = {} -- {gid, ms} newest first
-- one whole ms of the stream, greatest gid first; at the cursor's ms only
-- the gids below the cursor's
local function add_ms(gids, m, at_cursor)
  table.sort(gids, function(a, b)
    return before(b, a)
  end)
  for _, x in ipairs(gids) do
    if not at_cursor or before(x, g) then
      out[#out + 1] = {x, m}
    end
  end
end

local top = '+'
if cur then
  add_ms(whole_ms(ARGV[1]), ARGV[1], true)
  top = t >= 1 and string.format('%.0f', t - 1) or nil
end
if top and #out < n then
  local want = n - #out
  local r = redis.call('XREVRANGE', KEYS[1], top, '-', 'COUNT', want)
  local i = 1
  while i <= #r do
    local m, gids, j = id_ms(r[i][1]), {}, i
    while j <= #r and id_ms(r[j][1]) == m do
      gids[#gids + 1] = entry_gid(r[j])
      j = j + 1
    end
    if j > #r and #r == want then
      gids = whole_ms(m) -- the COUNT may have cut the oldest ms
    end
    add_ms(gids, m, false)
    i = j
  end
end

-- the older dtmd's zset, while it is moved into the stream
if redis.call('EXISTS', KEYS[2]) == 1 then
  local start = 0
  if cur then
    -- reverse ranks [lo, hi) hold the gids of time t in descending gid
    -- order: find the first one below g
    local lo = redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[1], '+inf')
    local hi = lo + redis.call('ZCOUNT', KEYS[2], ARGV[1], ARGV[1])
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if before(redis.call('ZREVRANGE', KEYS[2], mid, mid)[1], g) then
        hi = mid
      else
        lo = mid + 1
      end
    end
    start = lo
  end
  local z = redis.call('ZREVRANGE', KEYS[2], start, start + n - 1, 'WITHSCORES')
  if #z > 0 then
    local merged, a, b = {}, 1, 1
    while #merged < n and (a <= #out or b < #z) do
      local take_z = b < #z
      if take_z and a <= #out then
        local sm, zm = tonumber(out[a][2]), tonumber(z[b + 1])
        take_z = zm > sm or (zm == sm and before(out[a][1], z[b]))
      end
      if take_z then
        merged[#merged + 1] = {z[b], z[b + 1]}
        b = b + 2
      else
        merged[#merged + 1] = out[a]
        a = a + 1
      end
    end
    out = merged
  end
end

local reply = {}
for i = 1, math.min(n, #out) do
  reply[#reply + 1] = out[i][1]
  reply[#reply + 1] = out[i][2]
end
return reply
