-- index_adopt.lua: take over index entries an older dtmd wrote (score 0).
--
-- An older dtmd put gids in the shard's index with score 0 (it listed /all in
-- gid order). Each gid given here (retention.c lists the score-0 ones) gets,
-- in one atomic step with its hash: its creation time as score (the hash's
-- create_time, so /all lists it in its place, newest first), or leaves the
-- index if the hash is gone. A gid that a current dtmd stored meanwhile has
-- its time already and is left alone. A hash without a create_time keeps
-- score 0 (listed last; index_trim.lua removes it once the hash is gone).
--
-- KEYS[1] shard index zset, KEYS[1 + i] the hash of ARGV[i]
-- ARGV[1..n] gids
-- Returns {<gids given a time>, <gids dropped>, <gids left at score 0>}.
local adopted, dropped, kept = 0, 0, 0
for i, gid in ipairs(ARGV) do
  if tonumber(redis.call('ZSCORE', KEYS[1], gid)) == 0 then
    if redis.call('EXISTS', KEYS[1 + i]) == 0 then
      redis.call('ZREM', KEYS[1], gid)
      dropped = dropped + 1
    else
      local c = redis.call('HMGET', KEYS[1 + i], 'ct', 'create_time')
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
