-- index_adopt.lua: take over index entries an older dtmd wrote (score 0).
--
-- An older dtmd put gids in the shard's index with score 0 (it listed /all in
-- gid order), and the oldest gave them no expiry time either. Each gid given
-- here (retention.c lists the score-0 ones) gets, in one atomic step with its
-- hash: its creation time as score (the hash's create_time, so /all lists it
-- in its place, newest first), the time its hash expires if it has none
-- (index_trim.lua), or leaves both zsets if the hash is gone. A gid that a
-- current dtmd stored meanwhile has its time already and is left alone. A
-- hash without a create_time keeps score 0 (listed last); one without a TTL
-- (never written by dtmd) gets no expiry time.
--
-- KEYS[1] shard index zset, KEYS[2] shard expiry zset, KEYS[2 + i] the hash of ARGV[i]
-- ARGV[1..n] gids
-- Returns {<gids given a time>, <gids dropped>, <gids left at score 0>}.
local now = redis.call('TIME')
local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
local adopted, dropped, kept = 0, 0, 0
for i, gid in ipairs(ARGV) do
  if tonumber(redis.call('ZSCORE', KEYS[1], gid)) == 0 then
    local pttl = redis.call('PTTL', KEYS[2 + i])
    if pttl == -2 then
      redis.call('ZREM', KEYS[1], gid)
      redis.call('ZREM', KEYS[2], gid)
      dropped = dropped + 1
    else
      if pttl >= 0 and not redis.call('ZSCORE', KEYS[2], gid) then
        redis.call('ZADD', KEYS[2], string.format('%.0f', now_ms + pttl), gid)
      end
      local c = redis.call('HMGET', KEYS[2 + i], 'ct', 'create_time')
      local created = tonumber(c[1] or c[2])
      if created and created > 0 then
        redis.call('ZADD', KEYS[1], string.format('%.0f', created), gid)
        adopted = adopted + 1
      else
        kept = kept + 1
      end
    end
  end
end
return {adopted, dropped, kept}
