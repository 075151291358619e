-- index_trim.lua: one bounded step of a walk over a shard's index stream
-- from its oldest id, deleting the entries of transactions whose hash has
-- expired, and stale ones.
--
-- The index (for /all) would otherwise keep every gid ever stored. An
-- entry's id is Redis' time of the store, and every TTL dtmd gives a hash is
-- set at or after creation, so a hash can have expired only if it was stored
-- at least the shortest TTL ago (ARGV[4]: the smaller of Store.DataExpire and
-- Store.FinishedDataExpire): the walk stops there. The margin (ARGV[5]) lets
-- entries moved from an older dtmd's zset, whose ms is a dtmd's clock
-- (index_migrate.lua), count even when that clock ran slightly ahead.
--
-- A gid stored again after its hash expired has a second, newer entry; the
-- first is stale: the time the hash was stored (ct - cs, a dtmd's clock:
-- claim.lua) is then later than the stale entry's ms by at least the first
-- hash's TTL, while for its own entry it is at most the clocks' skew later.
-- The entry goes when it is later than its ms by more than ARGV[6] (half
-- the shortest TTL: retention.h); /all skips it the same way (api_query.c). Both checks read
-- the hash in the same atomic step, so a gid stored meanwhile keeps its
-- entry. A stream emptied so is deleted (an empty stream stays otherwise).
--
-- The caller keeps the cursor, the id last looked at; the step goes on after
-- it (exclusive XRANGE: Redis 6.2), even when that entry was just deleted.
--
-- KEYS[1] shard index stream
-- ARGV[1] the shard's transaction hash key without the gid (keys.h: the same
-- slot), ARGV[2] cursor id ('' = from the oldest), ARGV[3] entries to look
-- at at most, ARGV[4] shortest TTL (ms), ARGV[5] margin (ms), ARGV[6] how
-- much later than an entry's ms its hash's creation time may be (ms)
-- Returns {<entries deleted>, <entries looked at>, <last id looked at>,
-- <1 = the walk is over: it reached the bound or the stream's end>}.
--@include ix
local now = redis.call('TIME')
local bound = now[1] * 1000 + math.floor(now[2] / 1000) - tonumber(ARGV[4]) + tonumber(ARGV[5])
local stale = tonumber(ARGV[6])
local n = tonumber(ARGV[3])
local start = ARGV[2] == '' and '-' or '(' .. ARGV[2]
local page = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', n)
local removed, looked, last = 0, 0, ARGV[2]
local over = #page < n
for _, e in ipairs(page) do
  local ms = tonumber(id_ms(e[1]))
  if ms > bound then
    over = true
    break
  end
  looked = looked + 1
  last = e[1]
  local gid, drop = entry_gid(e), true
  if gid then
    local h = ARGV[1] .. gid
    local c = redis.call('HMGET', h, 'ct', 'create_time', 'cs')
    local created = tonumber(c[1] or c[2])
    if created then
      drop = created - (tonumber(c[3]) or 0) > ms + stale
    else
      drop = redis.call('EXISTS', h) == 0
    end
  end
  if drop then
    redis.call('XDEL', KEYS[1], e[1])
    removed = removed + 1
  end
end
if removed > 0 and redis.call('XLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1])
end
return {removed, looked, last, over and 1 or 0}
