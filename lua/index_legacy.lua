-- index_legacy.lua: find gids of the shard's index that have no expiry time.
--
-- A dtmd from before the expiry zset (index_trim.lua) put gids in the index
-- only; their hashes expire all the same, and nothing would ever remove them
-- from it. Each dtmd walks every index once after it starts (retention.c),
-- in gid order (every score is 0), and hands the gids found here to
-- index_adopt.lua.
--
-- KEYS[1] shard index zset, KEYS[2] shard expiry zset
-- ARGV[1] the last gid of the previous batch ('' = from the start), ARGV[2] batch size
-- Returns {<last gid of this batch, '' = the index ends here>, <gids without expiry time>...}.
local from = '-'
if ARGV[1] ~= '' then
  from = '(' .. ARGV[1]
end
local n = tonumber(ARGV[2])
local gids = redis.call('ZRANGEBYLEX', KEYS[1], from, '+', 'LIMIT', 0, n)
local out = {''}
if #gids == n then
  out[1] = gids[n]
end
for _, gid in ipairs(gids) do
  if not redis.call('ZSCORE', KEYS[2], gid) then
    out[#out + 1] = gid
  end
end
return out
