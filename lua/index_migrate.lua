-- index_migrate.lua: move a bounded batch of an older dtmd's index zset
-- (gid -> creation ms) into the shard's index stream, oldest first.
--
-- A stream takes ids only above its last one, so entries go over lowest
-- score first, each with the id '<score>-<seq>' (seq counting within the
-- ms): /all then lists them in their place. While the zset exists, new
-- transactions go into it too (save_new.lua), so the stream gets no id of
-- Redis' clock before the zset is empty and gone; an entry that comes late
-- anyway (a dtmd still writing the zset, or a creation time below an id
-- already moved) gets the stream's last ms, a few ms off in /all's order.
--
-- A gid whose hash is gone is dropped. A hash whose creation time (ct) an
-- older dtmd's submit moved past its score gets cs (claim.lua). A gid of an
-- even older dtmd has score
-- 0: it first gets its hash's creation time (ct, or create_time) as score,
-- and goes over in its turn; one without either goes over at ms 0 (listed
-- last). Each batch is one atomic step, so processes running it together
-- never move an entry twice.
--
-- KEYS[1] the older dtmd's index zset, KEYS[2] shard index stream
-- ARGV[1] the shard's transaction hash key without the gid (keys.h: the same
-- slot), ARGV[2] zset entries to look at at most
-- Returns {<moved>, <given a creation time>, <dropped>, <entries left>}.
local n = tonumber(ARGV[2])
local moved, adopted, dropped = 0, 0, 0
local last_ms, last_seq -- the stream's last id, read once needed

local function read_last()
  last_ms, last_seq = 0, 0
  if redis.call('EXISTS', KEYS[2]) == 0 then
    return
  end
  local info = redis.call('XINFO', 'STREAM', KEYS[2])
  for i = 1, #info - 1, 2 do
    if info[i] == 'last-generated-id' then
      local m, s = string.match(info[i + 1], '^(%d+)-(%d+)$')
      last_ms, last_seq = tonumber(m), tonumber(s)
    end
  end
end

for _ = 1, n do
  local e = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #e == 0 then
    break
  end
  local gid, score = e[1], math.floor(tonumber(e[2]))
  local h = ARGV[1] .. gid
  local c = redis.call('HMGET', h, 'ct', 'create_time', 'cs')
  local created = tonumber(c[1] or c[2])
  if redis.call('EXISTS', h) == 0 then
    redis.call('ZREM', KEYS[1], gid)
    dropped = dropped + 1
  elseif score <= 0 and created and created > 0 then
    redis.call('ZADD', KEYS[1], string.format('%.0f', created), gid)
    adopted = adopted + 1
  else
    -- an older dtmd's submit of a prepared transaction moved ct past the
    -- score: cs records it (claim.lua), so that ct - cs is the entry's ms
    local shift = created and created - (tonumber(c[3]) or 0) - score or 0
    if score > 0 and shift > 0 then
      redis.call('HINCRBY', h, 'cs', string.format('%.0f', shift))
    end
    if not last_ms then
      read_last()
    end
    local ms, seq = math.max(score, 0), 0
    if ms <= last_ms then
      ms, seq = last_ms, last_seq + 1
    end
    redis.call('XADD', KEYS[2], string.format('%.0f-%.0f', ms, seq), 'g', gid)
    redis.call('ZREM', KEYS[1], gid)
    last_ms, last_seq = ms, seq
    moved = moved + 1
  end
end
return {moved, adopted, dropped, redis.call('ZCARD', KEYS[1])}
